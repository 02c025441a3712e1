#!/bin/bash
# bench/imap.sh (also BENCH_MODE=imap ./bench/run.sh): facteur's IMAP
# server beside a private Dovecot, both serving the same mailbox.
# One Maildir of BENCH_IMAP_MESSAGES messages is generated per run
# (bench/gen_maildir.py, fixed seed); each server gets its own identical
# copy (cp -a: both write index files into the Maildir).  Each system in
# turn is started alone in a temp folder, on 127.0.0.1 at a free port,
# timed by bench/imap_bench.py (imaplib), and stopped by PID; a table
# compares them at the end.  A facteur without a working IMAP server is
# reported as "IMAP not available (reason)"; Dovecot's figures still come.
# Not part of make test.  See bench/README.md, "IMAP benchmark".
#
# Environment:
#   BENCH_IMAP_MESSAGES messages in the mailbox (10000)
#   BENCH_IMAP_TIMEOUT  seconds allowed per IMAP command (120)
#   BENCH_IMAP_SEED     random seed of the mailbox (20261123)
#   BENCH_SYSTEMS       systems to run, in order ("facteur dovecot"; "both")
#   BENCH_KEEP=1        keep the temp folder (configurations, logs, mailboxes)
#   BENCH_TMPDIR        where the temp folder is made (/tmp)
#   FACTEUR_BIN         facteur binary (build/facteur)
# Functions are called indirectly ("${s}_imap", traps, lib.sh's
# facteur_conf_$MODE):
# shellcheck disable=SC2317
set -u

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

BENCH_IMAP_MESSAGES=${BENCH_IMAP_MESSAGES:-10000}
BENCH_IMAP_TIMEOUT=${BENCH_IMAP_TIMEOUT:-120}
BENCH_IMAP_SEED=${BENCH_IMAP_SEED:-20261123}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_SYSTEMS=${BENCH_SYSTEMS:-facteur dovecot}
[ "$BENCH_SYSTEMS" = both ] && BENCH_SYSTEMS="facteur dovecot"
DOVECOT_BIN=/usr/sbin/dovecot

for v in BENCH_IMAP_MESSAGES BENCH_IMAP_TIMEOUT BENCH_IMAP_SEED; do
	case ${!v} in ''|*[!0-9]*) bench_die "$v must be a positive integer";; esac
done
[ "$BENCH_IMAP_MESSAGES" -gt 0 ] || bench_die "BENCH_IMAP_MESSAGES must be positive"
for s in $BENCH_SYSTEMS; do
	case $s in facteur|dovecot) ;; *) bench_die "unknown system '$s' in BENCH_SYSTEMS (imap: facteur, dovecot)";; esac
done

IMAP_USER=bench@bench.test
IMAP_PASSWORD=bench-imap-pass

# Installs Debian's dovecot-imapd without letting it run the system-wide
# instance.
dovecot_deps() {
	[ -x "$DOVECOT_BIN" ] && [ -x /usr/lib/dovecot/imap ] && return 0
	is_root || bench_die "run as root to install: dovecot-core dovecot-imapd"
	bench_log "installing: dovecot-core dovecot-imapd"
	# The system instance was not running before: if the package starts
	# it, it is stopped below (only then).
	local before=0
	pgrep -x dovecot >/dev/null 2>&1 && before=1
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends dovecot-core dovecot-imapd >/dev/null ||
		{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends dovecot-core dovecot-imapd >/dev/null; } ||
		bench_die "apt-get install dovecot-core dovecot-imapd failed"
	local pidf=/run/dovecot/master.pid
	if [ "$before" = 0 ] && [ -s $pidf ] && kill -0 "$(cat $pidf)" 2>/dev/null; then
		bench_log "stopping the system dovecot started by the package"
		kill -TERM "$(cat $pidf)" 2>/dev/null || true
	fi
}

# wait_imap PORT SECONDS: until 127.0.0.1:PORT greets with "* OK".
wait_imap() {
	local port=$1 limit=$2 i=0 banner
	while [ "$i" -lt $((limit * 5)) ]; do
		banner=$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && head -c 4 <&3" 2>/dev/null) || true
		[ "$banner" = "* OK" ] && return 0
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}

# The mailbox, once per run, owned by the mailbox owner; the manifest says
# what the searches must find.
mailbox_make() {
	MAILDIR_ORIG=$BENCH_DIR/maildir.orig
	MANIFEST=$BENCH_DIR/manifest.json
	"$PY" "$BENCH_TOP/bench/gen_maildir.py" --dir "$MAILDIR_ORIG" --messages "$BENCH_IMAP_MESSAGES" \
		--seed "$BENCH_IMAP_SEED" --manifest "$MANIFEST" || bench_die "gen_maildir.py failed"
	is_root && chown -R "$VUID:$VGID" "$MAILDIR_ORIG"
	# One passwd-file for both (Dovecot's format, facteur pw's hash).
	local hash
	hash=$(printf '%s\n' "$IMAP_PASSWORD" | "$FACTEUR_BIN" pw -s SHA512-CRYPT) || hash=
	[ -n "$hash" ] || bench_die "$FACTEUR_BIN pw failed"
	printf '%s:%s:%s:%s::\n' "$IMAP_USER" "$hash" "$VUID" "$VGID" > "$BENCH_DIR/passwd"
	# Read by Dovecot's unprivileged auth process too; a throwaway password.
	chmod 644 "$BENCH_DIR/passwd"
}

# mailbox_copy DEST: an identical copy for one server.
mailbox_copy() {
	mkdir -p "$(dirname "$1")"
	is_root && chown "$VUID:$VGID" "$(dirname "$1")"
	cp -a "$MAILDIR_ORIG" "$1" || bench_die "cp -a $MAILDIR_ORIG $1 failed"
}

bench_result() { # SYSTEM PORT PID [--pop3-port P] [--unavailable REASON]
	local name=$1 port=$2 pid=$3
	shift 3
	"$PY" "$BENCH_TOP/bench/imap_bench.py" run --name "$name" --port "$port" --pid "$pid" \
		--user "$IMAP_USER" --password "$IMAP_PASSWORD" --manifest "$MANIFEST" \
		--timeout "$BENCH_IMAP_TIMEOUT" --results "$BENCH_DIR/results.jsonl" "$@"
}

# ---------------------------------------------------------------- facteur
# bench/lib.sh's instance (mode "imap"): its main.cf plus these lines.

facteur_conf_imap() {
	cat <<EOT
virtual_mailbox_domains = bench.test
virtual_mailbox_base = $FCT/vmail
virtual_mailbox_maps = inline:{ $IMAP_USER=bench.test/bench/ }
virtual_uid_maps = static:$VUID
virtual_gid_maps = static:$VGID
auth_passwd_file = $BENCH_DIR/passwd
imap_listen = 127.0.0.1:$FACTEUR_IMAP_PORT
# POP3 works before IMAP: it tells whether facteur sees the mailbox.
pop3_listen = 127.0.0.1:$FACTEUR_POP3_PORT
EOT
}

facteur_imap() {
	FACTEUR_IMAP_PORT=${BENCH_FACTEUR_IMAP_PORT:-$(bench_free_port)}
	FACTEUR_POP3_PORT=$(bench_free_port)
	facteur_setup imap
	mailbox_copy "$FCT/vmail/bench.test/bench"
	facteur_start
	bench_log "facteur: IMAP expected on 127.0.0.1:$FACTEUR_IMAP_PORT, POP3 on 127.0.0.1:$FACTEUR_POP3_PORT"
	wait_imap "$FACTEUR_IMAP_PORT" 5 || bench_log "facteur: no IMAP greeting on 127.0.0.1:$FACTEUR_IMAP_PORT"
	bench_result facteur "$FACTEUR_IMAP_PORT" "$FACTEUR_PID" --pop3-port "$FACTEUR_POP3_PORT"
	local rc=$?
	facteur_stop
	return "$rc"
}

# ---------------------------------------------------------------- dovecot
# dovecot -F -c FILE in its own session: configuration, base_dir,
# state_dir, log and mailbox under $BENCH_DIR/dovecot; /etc/dovecot and
# the system instance are never used.

dovecot_setup() {
	DC=$BENCH_DIR/dovecot
	DOVECOT_PORT=${BENCH_DOVECOT_PORT:-$(bench_free_port)}
	mkdir -p "$DC/run" "$DC/state" "$DC/home"
	is_root && chown "$VUID:$VGID" "$DC/home"
	mailbox_copy "$DC/mail/Maildir"
	local internal login chroot=""
	if is_root; then
		internal=dovecot
		login=dovenull
	else
		# Unprivileged: every process runs as the caller, no chroot.
		internal=$(id -un)
		login=$internal
		chroot="
service imap-login {
  chroot =
}
service anvil {
  chroot =
}"
	fi
	cat > "$DC/dovecot.conf" <<EOT
# Private Dovecot instance of facteur's bench/imap.sh
protocols = imap
listen = 127.0.0.1
base_dir = $DC/run
state_dir = $DC/state
instance_name = facteur-bench-dovecot
log_path = $DC/dovecot.log
info_log_path = $DC/dovecot.log
ssl = no
# Loopback only.
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = $internal
default_login_user = $login
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:$DC/mail/Maildir
passdb {
  driver = passwd-file
  args = scheme=SHA512-CRYPT $BENCH_DIR/passwd
}
userdb {
  driver = static
  args = uid=$VUID gid=$VGID home=$DC/home
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DOVECOT_PORT
  }
  inet_listener imaps {
    port = 0
  }
}$chroot
EOT
}

dovecot_start() {
	"$DOVECOT_BIN" -c "$DC/dovecot.conf" -n >"$DC/doveconf.out" 2>&1 ||
		{ cat "$DC/doveconf.out" >&2; bench_die "dovecot: configuration refused (see above)"; }
	setsid "$DOVECOT_BIN" -F -c "$DC/dovecot.conf" </dev/null >"$DC/stderr" 2>&1 &
	DOVECOT_PID=$!
	if ! wait_imap "$DOVECOT_PORT" 30; then
		cat "$DC/stderr" >&2
		tail -20 "$DC/dovecot.log" >&2 2>/dev/null
		dovecot_stop
		bench_die "dovecot does not answer on 127.0.0.1:$DOVECOT_PORT"
	fi
	bench_log "dovecot: master pid $DOVECOT_PID, imap on 127.0.0.1:$DOVECOT_PORT"
}

dovecot_stop() {
	[ -n "${DOVECOT_PID:-}" ] || return 0
	kill -TERM "$DOVECOT_PID" 2>/dev/null
	if ! wait_gone "$DOVECOT_PID" 20; then
		bench_log "dovecot: master $DOVECOT_PID still running, SIGKILL to its group"
		kill -KILL -- "-$DOVECOT_PID" 2>/dev/null
	fi
	wait "$DOVECOT_PID" 2>/dev/null
	# Its children (log, auth, imap...) leave when the master does.
	if pgrep -g "$DOVECOT_PID" >/dev/null 2>&1; then
		sleep 1
		kill -KILL -- "-$DOVECOT_PID" 2>/dev/null
	fi
	DOVECOT_PID=
}

dovecot_imap() {
	dovecot_setup
	dovecot_start
	bench_result dovecot "$DOVECOT_PORT" "$DOVECOT_PID"
	local rc=$?
	dovecot_stop
	return "$rc"
}

# ---------------------------------------------------------------- run

# shellcheck disable=SC2317  # called by the EXIT trap
bench_cleanup() {
	trap - EXIT INT TERM
	facteur_stop
	dovecot_stop
	if [ -n "${BENCH_DIR:-}" ] && [ -d "$BENCH_DIR" ]; then
		if [ "$BENCH_KEEP" = 1 ]; then
			bench_log "kept $BENCH_DIR"
		else
			rm -rf "$BENCH_DIR"
		fi
	fi
}

case " $BENCH_SYSTEMS " in *" dovecot "*) dovecot_deps;; esac
bench_users
BENCH_DIR=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/facteur-imapbench.XXXXXX") || bench_die "mktemp failed"
chmod 755 "$BENCH_DIR"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$FACTEUR_BIN" ] || make -C "$BENCH_TOP" build >&2 ||
	bench_die "$FACTEUR_BIN missing and make build failed"
bench_log "imap: $BENCH_IMAP_MESSAGES messages (seed $BENCH_IMAP_SEED), systems: $BENCH_SYSTEMS, in $BENCH_DIR"
mailbox_make

status=0
for s in $BENCH_SYSTEMS; do
	# A subshell per system: a failing system (bench_die) does not stop
	# the other one; its own cleanup runs on its way out.
	if ! ( trap 'facteur_stop; dovecot_stop' EXIT; trap 'exit 130' INT TERM; "${s}_imap" ); then
		grep -q "\"name\": \"$s\"" "$BENCH_DIR/results.jsonl" 2>/dev/null ||
			bench_result "$s" 0 0 --unavailable "$s did not start (see the messages above)"
		[ "$s" = facteur ] || status=1
	fi
	sync
done

echo
if [ -s "$BENCH_DIR/results.jsonl" ]; then
	"$PY" "$BENCH_TOP/bench/imap_bench.py" table --manifest "$MANIFEST" "$BENCH_DIR/results.jsonl"
else
	echo "bench: no results"
	status=1
fi
exit $status
