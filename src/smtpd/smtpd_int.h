/* smtpd_int.h - internal interface of the SMTP server role (src/smtpd/).
 *
 * Layout of the role:
 *   smtpd.c          smtpd_main: configuration snapshot, listeners, signals,
 *                    session and per-client limits
 *   smtpd_session.c  one session: command loop, command handlers, replies,
 *                    timeouts, error limits, logging
 *   smtpd_data.c     DATA: end-of-data detection, header block, queue file
 *   smtpd_proto.c    pure protocol pieces: line reader, command table and
 *                    state rules, dot-unstuffing (unit-tested, fuzzed)
 *   smtpd_check.c    mynetworks, recipient validation, relay decision
 *   smtpd_dns.c      c-ares reverse + forward-confirmed client name
 *
 * Nothing outside src/smtpd includes this file; the master reaches the role
 * through smtpd_main() in mail/role.h.
 */
#ifndef FACTEUR_SMTPD_INT_H
#define FACTEUR_SMTPD_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "lib/buf.h"
#include "mail/cleanup.h"

struct event_base;
struct event;
struct evbuffer;
struct bufferevent;
struct evconnlistener;
struct table_list;
struct config;
struct qfile_writer;

/* ---- configuration snapshot (read once at start) ---- */

/* One mynetworks entry: an IPv4 or IPv6 network in CIDR form.  IPv4
 * entries are kept as IPv4-mapped IPv6 so that one comparison serves both
 * families (a client seen as ::ffff:10.1.2.3 matches 10.0.0.0/8). */
struct smtpd_net {
	uint8_t addr[16];
	unsigned prefix; /* 0..128, on the mapped form */
};

struct smtpd_nets {
	struct smtpd_net *items;
	size_t count;
};

struct smtpd_conf {
	char *myhostname;
	char *myorigin;
	char *banner;
	uint64_t message_size_limit; /* 0 = none */
	size_t line_length_limit;
	size_t header_size_limit;
	bool disable_vrfy;
	bool helo_required;
	bool peername_lookup;
	long timeout_sec;
	long error_sleep_sec;
	unsigned max_sessions;
	unsigned client_connection_count_limit; /* 0 = none */
	unsigned soft_error_limit;
	unsigned hard_error_limit;
	unsigned recipient_limit;
	unsigned unknown_local_reject_code;
	/* 454 when smtpd_relay_restrictions says defer_unauth_destination
	 * (and not reject_unauth_destination), else 554. */
	unsigned relay_reject_code;
	char **mydestination;           /* str_list, NULL-terminated */
	char **virtual_mailbox_domains; /* str_list */
	char **relay_domains;           /* str_list */
	struct route *route;            /* relay_domains matching as routing does; NULL in tests */
	struct smtpd_nets mynetworks;
	char *recipient_delimiter;      /* "" = none */
	char *dns_servers;              /* "a:p,b:p" for c-ares, or NULL */
	struct table_list *local_recipient_maps; /* NULL and !broken: accept any */
	bool local_recipient_maps_broken;
	bool reject_unlisted_recipient;
	struct table_list *alias_maps;
	struct table_list *virtual_mailbox_maps;
	struct table_list *virtual_alias_maps;
	struct table_list *canonical_maps;
	struct table_list *sender_canonical_maps;
	struct table_list *recipient_canonical_maps;
	struct table_list *relay_recipient_maps;
	/* Content checks (mail/hdrcheck.h); a table that cannot be opened
	 * makes every message a temporary failure. */
	struct table_list *header_checks;
	struct table_list *body_checks;
	bool content_checks_broken;
	/* STARTTLS (RFC 3207): the server context, NULL when TLS is off;
	 * tls_required: smtpd_tls_security_level = encrypt. */
	struct ssl_ctx_st *tls_ctx;
	bool tls_required;
	uint64_t body_checks_size_limit;
	/* relocated_maps: RCPT of a moved user gets 550 5.1.6 "User has moved
	 * to NEWADDR" (smtpd_check.c). */
	struct table_list *relocated_maps;
	bool relocated_maps_broken;
	bool alias_maps_broken;           /* set but could not be opened */
	bool virtual_mailbox_maps_broken;
	struct cleanup_params cleanup;
	char *mydomain;
	char *mail_name;
};

/* Fill conf from cfg (smtpd.c).  Tables that cannot be opened are logged
 * and make their lookups fail temporarily.  0 or -1 with *error_r. */
int smtpd_conf_tls(struct smtpd_conf *c, struct config *cfg, const char **error_r);
int smtpd_conf_load(struct smtpd_conf *conf, struct config *cfg, const char **error_r);
void smtpd_conf_deinit(struct smtpd_conf *conf);
/* Wire conf->cleanup to conf's fields and tables (after any change). */
void smtpd_conf_wire_cleanup(struct smtpd_conf *conf);

/* ---- protocol pieces (smtpd_proto.c) ---- */

/* Session states.  Bits, so that the command table can list the states in
 * which a command is allowed. */
enum smtpd_state {
	SMTPD_ST_CONNECT = 1u << 0, /* client name lookup, no greeting yet */
	SMTPD_ST_GREETED = 1u << 1, /* 220 sent, no HELO/EHLO */
	SMTPD_ST_HELO = 1u << 2,    /* HELO/EHLO done, no transaction */
	SMTPD_ST_MAIL = 1u << 3,    /* MAIL accepted, no recipient yet */
	SMTPD_ST_RCPT = 1u << 4,    /* at least one recipient accepted */
	SMTPD_ST_DATA = 1u << 5,    /* receiving message content */
	SMTPD_ST_CLOSING = 1u << 6, /* last reply queued; close when flushed */
};
#define SMTPD_ST_COMMANDS (SMTPD_ST_GREETED | SMTPD_ST_HELO | SMTPD_ST_MAIL | SMTPD_ST_RCPT)

const char *smtpd_state_name(enum smtpd_state st);

enum smtpd_cmd_id {
	SMTPD_CMD_HELO,
	SMTPD_CMD_EHLO,
	SMTPD_CMD_STARTTLS,
	SMTPD_CMD_MAIL,
	SMTPD_CMD_RCPT,
	SMTPD_CMD_DATA,
	SMTPD_CMD_RSET,
	SMTPD_CMD_NOOP,
	SMTPD_CMD_VRFY,
	SMTPD_CMD_ETRN,
	SMTPD_CMD_HELP,
	SMTPD_CMD_QUIT,
	SMTPD_CMD_UNKNOWN, /* counter slot for unrecognized verbs */
	SMTPD_CMD_COUNT,
};

enum smtpd_cmd_flag {
	/* Replies are flushed after this command even when more pipelined
	 * input is waiting (RFC 2920 3.1: commands that end a group). */
	SMTPD_CMDF_ENDS_GROUP = 1u << 0,
	/* Refused with "send HELO/EHLO first" before HELO/EHLO when
	 * smtpd_helo_required = yes. */
	SMTPD_CMDF_HELO_REQUIRED = 1u << 1,
	/* Refused before HELO/EHLO whatever smtpd_helo_required says. */
	SMTPD_CMDF_HELO_ALWAYS = 1u << 2,
};

struct smtpd_cmd {
	const char *verb;     /* upper case */
	const char *log_name; /* lower case, for the disconnect line */
	enum smtpd_cmd_id id;
	unsigned states;      /* enum smtpd_state bits where allowed */
	unsigned flags;       /* enum smtpd_cmd_flag */
};

extern const struct smtpd_cmd smtpd_cmds[];
extern const size_t smtpd_cmds_count;

/* A reply without its text expansion: code, enhanced status, text. */
struct smtpd_reply_text {
	unsigned code;
	const char *status;
	const char *text;
};

/* Command lookup by verb (case-insensitive); NULL when unknown. */
const struct smtpd_cmd *smtpd_cmd_find(struct strv verb);
/* The refusal for cmd in state st (bad sequence, HELO required), or false
 * when the command may run: then *r is untouched. */
bool smtpd_cmd_state_refusal(const struct smtpd_cmd *cmd, enum smtpd_state st,
			     bool helo_required, struct smtpd_reply_text *r);

/* Split a command line (without its line end) into verb and argument: the
 * verb runs to the first space; the argument starts after the spaces that
 * follow and has trailing spaces removed.  Views into line. */
void smtpd_cmd_split(struct strv line, struct strv *verb_r, struct strv *arg_r);

enum smtpd_line_result {
	SMTPD_LINE_OK,       /* *line_r holds one command line */
	SMTPD_LINE_MORE,     /* no complete line buffered yet */
	SMTPD_LINE_TOO_LONG, /* a line over the limit was drained */
};

/* Take one command line from in.  A line ends with LF; a CR before the LF
 * is removed (bare LF is accepted for commands, as Postfix does).  A line
 * longer than max bytes (line end excluded) is drained up to and including
 * its LF; *draining keeps the state across calls when the LF has not
 * arrived yet (the bytes seen so far are dropped, so memory stays bounded).
 * line_r is reset and filled on SMTPD_LINE_OK. */
enum smtpd_line_result smtpd_line_read(struct evbuffer *in, size_t max, bool *draining,
				       struct buf *line_r);

/* DATA content decoder (RFC 5321 4.5.2 transparency, 4.1.1.4 end of data).
 *
 * Only <CR><LF>.<CR><LF> ends the content (the DATA command's own line end
 * counts as the first <CR><LF>).  Policy against SMTP smuggling: a bare LF
 * is accepted as a line end inside the content (stored as LF), but a "."
 * line that is preceded or followed by a bare LF does NOT end the data; it
 * is stored as a "." line.  A leading dot followed by other text is removed
 * (dot-unstuffing) at the start of every line.  CR LF becomes LF; a CR not
 * followed by LF is kept. */
enum smtpd_dot_state {
	SMTPD_DOT_BOL,    /* at the start of a line */
	SMTPD_DOT_MID,    /* inside a line */
	SMTPD_DOT_CR,     /* CR seen, line end pending */
	SMTPD_DOT_DOT,    /* "." seen at the start of a line */
	SMTPD_DOT_DOT_CR, /* ".\r" seen at the start of a line */
};

struct smtpd_dot {
	enum smtpd_dot_state state;
	bool bol_after_crlf; /* the current line start follows CRLF */
};

void smtpd_dot_init(struct smtpd_dot *d);
/* Decode in[0..len) into out (appended).  Returns the number of input bytes
 * consumed; *done_r is set when the end of data was seen (the bytes after it
 * are not consumed: they are the next pipelined command). */
size_t smtpd_dot_decode(struct smtpd_dot *d, const uint8_t *in, size_t len,
			struct buf *out, bool *done_r);

/* ---- checks (smtpd_check.c) ---- */

/* Parse a mynetworks list ("127.0.0.0/8 [::1]/128 10.1.2.3"); items that
 * are lookup tables or host names are refused.  0 or -1 with *error_r
 * (static text); unsupported items are logged, skipped and grant nothing. */
int smtpd_nets_parse(struct smtpd_nets *nets, const char *spec, const char **error_r);
void smtpd_nets_deinit(struct smtpd_nets *nets);
/* Does addr (textual IPv4/IPv6, optionally IPv4-mapped) match?  An address
 * that does not parse matches nothing. */
bool smtpd_nets_match(const struct smtpd_nets *nets, const char *addr);

enum smtpd_rcpt_verdict {
	SMTPD_RCPT_OK,
	SMTPD_RCPT_REJECT,  /* *reply filled (5xx) */
	SMTPD_RCPT_TEMPFAIL /* *reply filled (4xx) */
};

struct smtpd_rcpt_check {
	/* Out: the recipient(s) after rewriting (str_list; NULL when refused). */
	char **final;
	/* Out: reply for a refusal; text is in the caller's buffer. */
	unsigned code;
	const char *status;
	struct buf text;
};

/* Decide on one RCPT TO address (already parsed, not yet qualified):
 * qualify with myorigin, rewrite (canonical, virtual aliases), check the
 * domain class (local, virtual, relay, other) and the recipient's
 * existence.  client_in_mynetworks permits relaying. */
enum smtpd_rcpt_verdict smtpd_check_rcpt(const struct smtpd_conf *conf, const char *addr,
					 bool client_in_mynetworks, struct smtpd_rcpt_check *res);
void smtpd_rcpt_check_deinit(struct smtpd_rcpt_check *res);

/* ---- client name (smtpd_dns.c) ---- */

struct smtpd_dns;
typedef void smtpd_dns_cb(void *ctx, const char *name);
struct smtpd_dns *smtpd_dns_new(struct event_base *base, const char *servers,
				const char **error_r);
void smtpd_dns_free(struct smtpd_dns **dns);
/* Start the lookup of the verified name of addr (sa).  cb is called exactly
 * once, later (never from inside this call), with the name or "unknown",
 * unless the query is cancelled first.  Returns an opaque handle. */
struct smtpd_dns_query;
struct smtpd_dns_query *smtpd_dns_lookup(struct smtpd_dns *dns, const struct sockaddr *sa,
					 socklen_t salen, long timeout_sec, smtpd_dns_cb *cb,
					 void *ctx);
void smtpd_dns_cancel(struct smtpd_dns_query **q);

/* ---- server and sessions ---- */

struct smtpd_session;

struct smtpd_listen_ctx {
	struct smtpd_server *srv;
	bool implicit_tls;
};

struct smtpd_server {
	struct event_base *base;
	const struct smtpd_conf *conf;
	const char *queue_dir;
	struct smtpd_session *sessions; /* doubly linked */
	unsigned n_sessions;
	struct evconnlistener **listeners;
	size_t n_listeners;
	struct smtpd_listen_ctx *listen_ctx; /* one per listener */
	struct smtpd_dns *dns; /* NULL: no client name lookups */
	struct workq *commitq; /* queue file commits (fsync) off the loop */
	bool draining;         /* SIGHUP: exit when the last session ends */
};

/* Start a session on an accepted, connected socket (takes ownership of fd). */
/* implicit_tls: an smtps_listen connection (RFC 8314): TLS from the
 * first byte. */
void smtpd_session_start(struct smtpd_server *srv, int fd, bool implicit_tls,
			 const struct sockaddr *sa,
			 socklen_t salen);
/* Free every session without replying (SIGTERM, tests). */
void smtpd_sessions_close_all(struct smtpd_server *srv);
/* Called by a session when it is freed (smtpd.c: exit when draining). */
void smtpd_server_session_ended(struct smtpd_server *srv);

/* Threads that commit queue files; their fsyncs overlap. */
#define SMTPD_COMMIT_THREADS 8

/* A queue file commit in flight on the commit pool.  s is cleared when the
 * session ends first (the commit still completes and is queued). */
struct smtpd_commit {
	struct smtpd_session *s;
	struct qfile_writer *w;
	char id[32];
	char *queue_dir;
	char *peer;
	char *message_id;
	int ret;
	const char *error;
	int saved_errno;
	bool hold; /* header/body checks said HOLD: committed into hold/ */
};

/* Suspend the session while c is committed / resume it afterwards. */
void smtpd_session_commit_begin(struct smtpd_session *s, struct smtpd_commit *c);
void smtpd_session_commit_end(struct smtpd_session *s);
struct workq *smtpd_session_commitq(struct smtpd_session *s);

/* Internal between smtpd_session.c and smtpd_data.c. */
struct smtpd_rcpt {
	char *address; /* final, rewritten */
	char *orig;    /* as the client gave it (qualified), or NULL when equal */
	char *given;   /* as the client gave it, for Received: "for <...>" */
	char *notify;
	char *orcpt;
};

struct smtpd_txn {
	char *sender;
	char *envid;
	const char *ret; /* "FULL", "HDRS" or NULL */
	bool body_8bit;
	struct smtpd_rcpt *rcpts;
	size_t n_rcpts;
	/* DATA */
	struct qfile_writer *w;
	struct smtpd_dot dot;
	struct buf out;      /* decoded bytes not yet written */
	struct buf headers;  /* header block being collected */
	bool in_headers;
	size_t hdr_scan;     /* headers: start of the first unchecked line */
	bool too_big;
	bool header_error;   /* header too large: 552 at the end */
	const char *write_error;
	uint64_t size;
	char *message_id;
	/* Content checks: the deciding result so far (cleanup.h), the body
	 * line being collected and how much body has been inspected. */
	struct hdrcheck_result verdict;
	struct buf body_line;
	uint64_t body_seen;
	bool check_error;
};

/* smtpd_data.c: called by the session. */
/* Open the queue file and write the envelope.  0, or -1 with *error_r. */
int smtpd_data_begin(struct smtpd_session *s, const char **error_r);
/* Feed input; returns true when the end of data was reached and the reply
 * has been sent (the session is back in SMTPD_ST_HELO). */
bool smtpd_data_input(struct smtpd_session *s, struct evbuffer *in);
void smtpd_txn_free(struct smtpd_txn **txn);

/* Accessors used by smtpd_data.c. */
struct smtpd_txn *smtpd_session_txn(struct smtpd_session *s);
void smtpd_session_reply(struct smtpd_session *s, unsigned code, const char *status,
			 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The transaction is over (ok: the message was queued); back to HELO. */
void smtpd_session_end_data(struct smtpd_session *s, bool ok);
/* Log "ID: client=NAME[ADDR]" and "ID: message-id=<MSGID>". */
void smtpd_session_log_queued(struct smtpd_session *s, const char *id, const char *msgid);
const struct smtpd_conf *smtpd_session_conf(const struct smtpd_session *s);
const char *smtpd_session_queue_dir(const struct smtpd_session *s);
void smtpd_session_origin(const struct smtpd_session *s, struct cleanup_origin *o);
/* "NAME[ADDR]" */
const char *smtpd_session_peer(const struct smtpd_session *s);
bool smtpd_session_in_mynetworks(const struct smtpd_session *s);

#endif
