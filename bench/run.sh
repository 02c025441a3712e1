#!/bin/bash
# make bench: facteur and a private Postfix side by side on 127.0.0.1.
# Each system in turn is started in a temp folder, receives BENCH_MESSAGES
# messages from smtp-source over BENCH_SESSIONS parallel sessions, delivers
# them into a Maildir (BENCH_MODE=local) or relays them over SMTP to an
# smtp-sink on 127.0.0.2 (BENCH_MODE=relay), and is stopped; a table
# compares them at the end.
# Not part of make test.  See bench/README.md.
#
# Environment:
#   BENCH_MESSAGES  messages per system (5000)
#   BENCH_SESSIONS  parallel SMTP sessions (20)
#   BENCH_SIZE      message size in bytes (4096)
#   BENCH_TIMEOUT   seconds allowed per system for sending and delivery (600)
#   BENCH_SYSTEMS   systems to run, in order ("facteur postfix")
#   BENCH_MODE      benchmark mode: local (Maildir) or relay (to smtp-sink);
#                   imap runs bench/imap.sh instead (facteur beside Dovecot)
#   BENCH_SINK_ADDR loopback address of the relay mode's sink (127.0.0.2)
#   BENCH_KEEP=1    keep the temp folder (configurations, logs, mailboxes)
#   BENCH_TMPDIR    where the temp folder is made (/tmp)
#   FACTEUR_BIN     facteur binary (build/facteur)
set -u

# IMAP: a benchmark of its own (facteur's IMAP server beside Dovecot).
[ "${BENCH_MODE:-}" = imap ] && exec "$(dirname "$0")/imap.sh" "$@"

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

BENCH_MESSAGES=${BENCH_MESSAGES:-5000}
BENCH_SESSIONS=${BENCH_SESSIONS:-20}
BENCH_SIZE=${BENCH_SIZE:-4096}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-600}
BENCH_MODE=${BENCH_MODE:-local}
BENCH_KEEP=${BENCH_KEEP:-0}
if is_root; then
	BENCH_SYSTEMS=${BENCH_SYSTEMS:-facteur postfix}
else
	# Postfix runs its daemons as its own mail_owner: it needs root.
	BENCH_SYSTEMS=${BENCH_SYSTEMS:-facteur}
	bench_log "not root: Postfix is left out"
fi

for v in BENCH_MESSAGES BENCH_SESSIONS BENCH_SIZE BENCH_TIMEOUT; do
	case ${!v} in ''|*[!0-9]*|0) bench_die "$v must be a positive integer";; esac
done
case $BENCH_MODE in
local|relay) ;;
*) bench_die "unknown BENCH_MODE '$BENCH_MODE' (known: local, relay, imap)";;
esac
for s in $BENCH_SYSTEMS; do
	case $s in facteur|postfix) ;; *) bench_die "unknown system '$s' in BENCH_SYSTEMS";; esac
done

# shellcheck disable=SC2317  # called by the EXIT trap
bench_cleanup() {
	trap - EXIT INT TERM
	facteur_stop
	postfix_stop
	sink_stop
	if [ -n "${BENCH_DIR:-}" ] && [ -d "$BENCH_DIR" ]; then
		if [ "$BENCH_KEEP" = 1 ]; then
			bench_log "kept $BENCH_DIR"
		else
			rm -rf "$BENCH_DIR"
		fi
	fi
}

bench_deps
bench_users
BENCH_DIR=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/facteur-bench.XXXXXX") || bench_die "mktemp failed"
# The daemons' own users must reach their folders.
chmod 755 "$BENCH_DIR"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

bench_log "mode $BENCH_MODE: $BENCH_MESSAGES messages of $BENCH_SIZE bytes, $BENCH_SESSIONS sessions, in $BENCH_DIR"

# One system: setup, start, measure, stop.  The other is not running
# meanwhile, so they do not compete for the CPUs or the disk.  In relay
# mode a fresh sink runs around each system.
bench_system() { # SYSTEM
	local rc=0
	[ "$BENCH_MODE" = relay ] && sink_start "$1"
	case $1 in
	facteur)
		facteur_setup "$BENCH_MODE"
		facteur_start
		bench_measure facteur "$FACTEUR_PORT" "$FACTEUR_MAILDIR" "$FACTEUR_PID" || rc=1
		facteur_stop
		;;
	postfix)
		postfix_setup "$BENCH_MODE"
		postfix_start
		bench_measure postfix "$POSTFIX_PORT" "$POSTFIX_MAILDIR" "$POSTFIX_PID" || rc=1
		postfix_stop
		;;
	esac
	sink_stop
	sync
	return $rc
}

status=0
for s in $BENCH_SYSTEMS; do
	# A subshell per system: a failing system (bench_die) does not stop
	# the other one; its own cleanup runs on its way out.
	( trap 'facteur_stop; postfix_stop; sink_stop' EXIT; trap 'exit 130' INT TERM; bench_system "$s" ) || status=1
done

echo
if [ -s "$BENCH_DIR/results.jsonl" ]; then
	"$PY" "$BENCH_TOP/bench/measure.py" table "$BENCH_DIR/results.jsonl"
else
	echo "bench: no results"
	status=1
fi
exit $status
