# shellcheck shell=bash disable=SC2034
# bench/lib.sh - functions of the side-by-side benchmark (sourced by
# bench/run.sh; bash).  One function per phase and per system; a benchmark
# mode is a pair of <system>_conf_<mode> functions and a case in run.sh.
# Modes: "local" (SMTP in, Maildir delivery) and "relay" (SMTP in, SMTP out
# to an smtp-sink on another loopback address).
#
# Every system lives in its own folder under $BENCH_DIR, listens on
# 127.0.0.1 only, and is stopped by PID.  Every wait is bounded.

BENCH_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FACTEUR_BIN=${FACTEUR_BIN:-$BENCH_TOP/build/facteur}
PY=/usr/bin/python3

bench_log() { printf 'bench: %s\n' "$*" >&2; }
bench_die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# ---------------------------------------------------------------- setup

# Installs Debian's postfix (for smtp-source and the peer) without letting
# it configure or start the system-wide instance.
bench_deps() {
	local missing=""
	[ -x /usr/sbin/smtp-source ] && [ -x /usr/sbin/postfix ] || missing=" postfix"
	[ -z "$missing" ] && return 0
	is_root || bench_die "run as root to install:$missing"
	bench_log "installing:$missing"
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing >/dev/null ||
		{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $missing >/dev/null; } ||
		bench_die "apt-get install$missing failed"
	# With "No configuration" the postinst starts nothing; should a system
	# instance be running anyway, stop it (only the one we just installed).
	local pidf=/var/spool/postfix/pid/master.pid
	if [ -s $pidf ] && kill -0 "$(cat $pidf)" 2>/dev/null; then
		bench_log "stopping the system postfix started by the package"
		postfix stop >/dev/null 2>&1 || kill "$(cat $pidf)" 2>/dev/null || true
	fi
}

# Accounts: the virtual mailbox owner of both systems (fbench) and
# facteur's mail_owner (facteur).  Unprivileged runs use the caller.
bench_users() {
	if is_root; then
		id fbench >/dev/null 2>&1 || useradd --system --no-create-home \
			--home-dir /nonexistent --shell /usr/sbin/nologin fbench ||
			bench_die "cannot create user fbench"
		id facteur >/dev/null 2>&1 || useradd --system --no-create-home \
			--home-dir /nonexistent --shell /usr/sbin/nologin facteur ||
			bench_die "cannot create user facteur"
		VMAIL_USER=fbench
		FACTEUR_OWNER=facteur
	else
		VMAIL_USER=$(id -un)
		FACTEUR_OWNER=$(id -un)
	fi
	VUID=$(id -u "$VMAIL_USER")
	VGID=$(id -g "$VMAIL_USER")
}

bench_free_port() { # [ADDR]
	"$PY" -c 'import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "${1:-127.0.0.1}"
}

# wait_smtp PORT SECONDS [ADDR]: until ADDR:PORT (127.0.0.1 unless given)
# answers with a 220 banner.
wait_smtp() {
	local port=$1 limit=$2 addr=${3:-127.0.0.1} i=0 banner
	while [ "$i" -lt $((limit * 5)) ]; do
		banner=$(timeout 3 bash -c "exec 3<>/dev/tcp/$addr/$port && head -c 3 <&3" 2>/dev/null) || true
		[ "$banner" = 220 ] && return 0
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}

# wait_gone PID SECONDS: until PID has exited.  Returns 1 on timeout.
wait_gone() {
	local pid=$1 limit=$2 i=0
	while kill -0 "$pid" 2>/dev/null; do
		[ "$i" -ge $((limit * 10)) ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 0
}

# Maildir folder of the single recipient u@bench.test, same for both.
bench_vmail() { # DIR
	mkdir -p "$1/vmail"
	chown "$VUID:$VGID" "$1/vmail"
	printf 'u@bench.test bench.test/u/\n' > "$1/etc/vmailbox"
}

# ---------------------------------------------------------------- postfix
# A private instance: config_directory, queue, data, log and mailboxes
# under $BENCH_DIR/postfix.  Never touches /etc/postfix's instance.

postfix_setup() { # MODE
	PFX=$BENCH_DIR/postfix
	POSTFIX_PORT=${BENCH_POSTFIX_PORT:-$(bench_free_port)}
	mkdir -p "$PFX/etc"
	bench_vmail "$PFX"
	cat > "$PFX/etc/main.cf" <<EOT
# Private Postfix instance of facteur's bench/run.sh
compatibility_level = 3.6
queue_directory = $PFX/queue
data_directory = $PFX/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.bench.test
mydomain = bench.test
mydestination = \$myhostname, localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
maillog_file = $PFX/maillog
maillog_file_prefixes = $BENCH_DIR
# Nothing leaves this host: any non-local destination fails at once.
default_transport = error:benchmark instance, loopback only
relay_transport = error:benchmark instance, loopback only
EOT
	"postfix_conf_$1" >> "$PFX/etc/main.cf"
	# chroot column n everywhere: the queue directory is a temp folder
	# without the files a chroot needs.
	cat > "$PFX/etc/master.cf" <<EOT
127.0.0.1:$POSTFIX_PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOT
	POSTFIX_MAILDIR=$PFX/vmail/bench.test/u
}

postfix_conf_local() {
	cat <<EOT
virtual_mailbox_domains = bench.test
virtual_mailbox_base = $PFX/vmail
virtual_mailbox_maps = texthash:$PFX/etc/vmailbox
virtual_uid_maps = static:$VUID
virtual_gid_maps = static:$VGID
virtual_minimum_uid = 1
EOT
}

# Relay mode: everything not local goes to the sink, over SMTP.  The
# recipient's domain (remote.test) is neither local nor virtual; clients in
# mynetworks may relay.
postfix_conf_relay() {
	cat <<EOT
relayhost = [$SINK_ADDR]:$SINK_PORT
default_transport = smtp
relay_transport = relay
EOT
}

postfix_start() {
	# postfix check creates the queue's subfolders, not the queue itself.
	mkdir -p "$PFX/queue"
	postfix -c "$PFX/etc" check >"$PFX/check.out" 2>&1 ||
		{ cat "$PFX/check.out" >&2; tail -5 "$PFX/maillog" >&2 2>/dev/null
		  bench_die "postfix check failed (see above)"; }
	postfix -c "$PFX/etc" start >"$PFX/start.out" 2>&1 ||
		{ cat "$PFX/start.out" "$PFX/maillog" >&2 2>/dev/null; bench_die "postfix start failed"; }
	local i=0
	while [ ! -s "$PFX/queue/pid/master.pid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	POSTFIX_PID=$(tr -d ' \n' < "$PFX/queue/pid/master.pid" 2>/dev/null)
	[ -n "$POSTFIX_PID" ] || bench_die "postfix: no master.pid; log: $(tail -5 "$PFX/maillog" 2>/dev/null)"
	wait_smtp "$POSTFIX_PORT" 30 ||
		{ tail -20 "$PFX/maillog" >&2; bench_die "postfix does not answer on 127.0.0.1:$POSTFIX_PORT"; }
	bench_log "postfix: master pid $POSTFIX_PID, smtpd on 127.0.0.1:$POSTFIX_PORT"
}

postfix_stop() {
	[ -n "${POSTFIX_PID:-}" ] || return 0
	postfix -c "$PFX/etc" stop >/dev/null 2>&1 || kill -TERM "$POSTFIX_PID" 2>/dev/null
	if ! wait_gone "$POSTFIX_PID" 20; then
		bench_log "postfix: master $POSTFIX_PID still running, SIGKILL"
		kill -KILL "$POSTFIX_PID" 2>/dev/null
	fi
	# The master's children exit when it does; wait for them (bounded) so
	# that nothing still uses the temp folder when it is removed.
	local i=0
	while pgrep -P "$POSTFIX_PID" >/dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	POSTFIX_PID=
}

# ---------------------------------------------------------------- facteur
# build/facteur -c DIR start -f, in its own session (process group = its
# PID), configured like the Postfix instance.

facteur_setup() { # MODE
	FCT=$BENCH_DIR/facteur
	FACTEUR_PORT=${BENCH_FACTEUR_PORT:-$(bench_free_port)}
	[ -x "$FACTEUR_BIN" ] || make -C "$BENCH_TOP" build >&2 ||
		bench_die "$FACTEUR_BIN missing and make build failed"
	[ -x "$FACTEUR_BIN" ] || bench_die "$FACTEUR_BIN missing after make build"
	mkdir -p "$FCT/etc" "$FCT/spool"
	chmod 1777 "$FCT/spool"
	bench_vmail "$FCT"
	printf 'postmaster: root\nMAILER-DAEMON: postmaster\n' > "$FCT/etc/aliases"
	cat > "$FCT/etc/main.cf" <<EOT
# facteur instance of bench/run.sh
myhostname = mail.bench.test
mydomain = bench.test
mydestination = \$myhostname, localhost
queue_directory = $FCT/queue
data_directory = $FCT/data
mail_spool_directory = $FCT/spool
mail_owner = $FACTEUR_OWNER
alias_maps = hash:$FCT/etc/aliases
alias_database = hash:$FCT/etc/aliases
smtpd_listen = 127.0.0.1:$FACTEUR_PORT
inet_interfaces = 127.0.0.1
mynetworks = 127.0.0.0/8
maillog_file = $FCT/maillog
# Nothing leaves this host: any non-local destination fails at once.
default_transport = error:benchmark instance, loopback only
EOT
	"facteur_conf_$1" >> "$FCT/etc/main.cf"
	"$FACTEUR_BIN" -c "$FCT/etc" aliases >"$FCT/aliases.out" 2>&1 ||
		{ cat "$FCT/aliases.out" >&2; bench_die "facteur aliases failed"; }
	FACTEUR_MAILDIR=$FCT/vmail/bench.test/u
}

facteur_conf_local() {
	cat <<EOT
virtual_mailbox_domains = bench.test
virtual_mailbox_base = $FCT/vmail
virtual_mailbox_maps = texthash:$FCT/etc/vmailbox
virtual_uid_maps = static:$VUID
virtual_gid_maps = static:$VGID
EOT
}

facteur_conf_relay() {
	cat <<EOT
relayhost = [$SINK_ADDR]:$SINK_PORT
default_transport = smtp
EOT
}

facteur_start() {
	"$FACTEUR_BIN" -c "$FCT/etc" check >"$FCT/check.out" 2>&1 ||
		{ cat "$FCT/check.out" >&2; bench_die "facteur check failed (see above)"; }
	# setsid: the master leads its own process group, so the whole
	# instance can be found (and, if it must be, killed) by that PID.
	setsid "$FACTEUR_BIN" -c "$FCT/etc" start -f </dev/null >"$FCT/stderr" 2>&1 &
	FACTEUR_PID=$!
	if ! wait_smtp "$FACTEUR_PORT" 30; then
		cat "$FCT/stderr" >&2
		tail -20 "$FCT/maillog" >&2 2>/dev/null
		facteur_stop
		bench_die "facteur does not answer on 127.0.0.1:$FACTEUR_PORT"
	fi
	bench_log "facteur: master pid $FACTEUR_PID, smtpd on 127.0.0.1:$FACTEUR_PORT"
}

facteur_stop() {
	[ -n "${FACTEUR_PID:-}" ] || return 0
	kill -TERM "$FACTEUR_PID" 2>/dev/null
	if ! wait_gone "$FACTEUR_PID" 20; then
		bench_log "facteur: master $FACTEUR_PID still running, SIGKILL to its group"
		kill -KILL -- "-$FACTEUR_PID" 2>/dev/null
	fi
	wait "$FACTEUR_PID" 2>/dev/null
	# Leftovers of its process group (roles that outlived the master).
	if pgrep -g "$FACTEUR_PID" >/dev/null 2>&1; then
		sleep 1
		kill -KILL -- "-$FACTEUR_PID" 2>/dev/null
	fi
	FACTEUR_PID=
}

# ---------------------------------------------------------------- sink
# Relay mode: Postfix's smtp-sink on $SINK_ADDR (another loopback address,
# so that neither system takes it for itself) at a free port, accepting and
# discarding; -c keeps a running count ("sess=S quit=Q mesg=M") in its
# output file, which measure.py reads.  One sink per system, started before
# the system is configured (its relayhost names the sink's port).

SINK_ADDR=${BENCH_SINK_ADDR:-127.0.0.2}

sink_start() { # SYSTEM
	SINK_PORT=$(bench_free_port "$SINK_ADDR") || bench_die "no free port on $SINK_ADDR"
	SINK_OUT=$BENCH_DIR/sink-$1.out
	local user=()
	# As root smtp-sink must drop privileges (-u); Postfix's account exists.
	is_root && user=(-u postfix)
	/usr/sbin/smtp-sink -c "${user[@]}" -h sink.bench.test "$SINK_ADDR:$SINK_PORT" 256 \
		</dev/null >"$SINK_OUT" 2>"$SINK_OUT.err" &
	SINK_PID=$!
	if ! wait_smtp "$SINK_PORT" 10 "$SINK_ADDR"; then
		cat "$SINK_OUT.err" >&2
		sink_stop
		bench_die "smtp-sink does not answer on $SINK_ADDR:$SINK_PORT"
	fi
	bench_log "smtp-sink: pid $SINK_PID on $SINK_ADDR:$SINK_PORT"
}

sink_stop() {
	[ -n "${SINK_PID:-}" ] || return 0
	kill -TERM "$SINK_PID" 2>/dev/null
	wait_gone "$SINK_PID" 10 || kill -KILL "$SINK_PID" 2>/dev/null
	wait "$SINK_PID" 2>/dev/null
	SINK_PID=
}

# ---------------------------------------------------------------- measure

# bench_measure SYSTEM PORT MAILDIR PID
# Local mode: done when MAILDIR/new holds N files.  Relay mode: done when
# the sink counted N messages; the recipient is in a remote domain.
bench_measure() {
	local done_when=(--maildir "$3")
	[ "$BENCH_MODE" = relay ] && done_when=(--sink-out "$SINK_OUT" --recipient u@remote.test)
	"$PY" "$BENCH_TOP/bench/measure.py" run --name "$1" --port "$2" \
		"${done_when[@]}" --pid "$4" --messages "$BENCH_MESSAGES" \
		--sessions "$BENCH_SESSIONS" --size "$BENCH_SIZE" \
		--timeout "$BENCH_TIMEOUT" --results "$BENCH_DIR/results.jsonl"
}
