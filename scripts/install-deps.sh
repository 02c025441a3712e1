#!/bin/sh
# Install the Debian 12 packages facteur needs to build, test and run the
# demo, when they are missing.  Needs root (or sudo) only when something
# is missing.
set -e
PKGS="build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
libevent-dev libssl-dev libc-ares-dev liblmdb-dev libpcre2-dev libcmocka-dev
libcrypt-dev python3 python3-pytest swaks s-nail dnsmasq-base bind9-dnsutils
pflogsumm procmail openssl strace valgrind
fetchmail isync mutt"
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
		echo "install-deps: run as root to install:$missing" >&2; exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q || true
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
