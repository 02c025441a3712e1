/* pop3d.h - internals of the POP3 server (RFC 1939, RFC 2449 CAPA, RFC 5034
 * AUTH): the command parser and the message encoder (pop3d_proto.c), shared
 * by pop3-login (pop3d_login.c) and the per-user session (pop3d_session.c).
 */
#ifndef FACTEUR_POP3D_POP3D_H
#define FACTEUR_POP3D_POP3D_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct role_env;

/* RFC 2449 section 4: a command line is at most 255 octets with CRLF; we
 * accept a little more, and SASL lines up to SASL_LINE_MAX. */
#define POP3_CMD_LINE_MAX 512
/* RFC 2449 section 4: arguments at most 40 octets (PASS may hold spaces
 * and is longer: the rest of the line). */
#define POP3_ARG_MAX 40
/* RFC 1939 section 3: autologout timer of at least 10 minutes. */

enum pop3_cmd_id {
	POP3_CMD_UNKNOWN,
	POP3_CMD_USER,
	POP3_CMD_PASS,
	POP3_CMD_AUTH,
	POP3_CMD_CAPA,
	POP3_CMD_QUIT,
	POP3_CMD_STAT,
	POP3_CMD_LIST,
	POP3_CMD_RETR,
	POP3_CMD_DELE,
	POP3_CMD_NOOP,
	POP3_CMD_RSET,
	POP3_CMD_TOP,
	POP3_CMD_UIDL,
	POP3_CMD_APOP,
	POP3_CMD_STLS,
};

struct pop3_cmd {
	enum pop3_cmd_id id;
	char name[8];		   /* upper-cased keyword, for logs */
	size_t argc;		   /* 0..2 */
	char argv[2][POP3_ARG_MAX + 1];
	const char *rest;	   /* the text after "KEYWORD " (USER, PASS), points into line */
};

/* Parse one line without its CRLF.  0, or -1 with *error_r (the text after
 * "-ERR "): empty line, keyword not 3-4 letters, more than 2 arguments, an
 * argument over POP3_ARG_MAX (AUTH's initial response excepted), control
 * characters.  USER and PASS are not split: their argument is rest. */
int pop3_cmd_parse(const char *line, struct pop3_cmd *cmd_r, const char **error_r);

/* A message number argument: 1..max.  0 or -1. */
int pop3_msgnum_parse(const char *arg, size_t max, size_t *num_r);

/* Encoder of a message for RETR/TOP (RFC 1939 section 3): line ends
 * become CRLF, lines starting with '.' get another '.', and TOP keeps the
 * headers, the blank line and body_lines lines of the body. */
struct pop3_enc {
	bool at_line_start;
	bool last_cr;
	bool in_headers;
	bool line_empty;     /* nothing but an optional CR on this line yet */
	bool limited;	     /* TOP */
	bool done;	     /* TOP limit reached: ignore the rest */
	uint64_t body_lines; /* left to send (TOP) */
	uint64_t octets;     /* bytes written to out, without the terminator */
};

/* body_lines: UINT64_MAX for the whole message (RETR). */
void pop3_enc_init(struct pop3_enc *e, uint64_t body_lines);
void pop3_enc_feed(struct pop3_enc *e, const void *data, size_t len, struct buf *out);
/* Ends the last line when needed and appends ".\r\n". */
void pop3_enc_finish(struct pop3_enc *e, struct buf *out);

/* Role entry points (mail/role.h declares them too). */
int pop3_login_main(const struct role_env *env);
int pop3_main(const struct role_env *env);

/* The session after login, in the process that became the user: serves
 * TRANSACTION and UPDATE (RFC 1939 sections 5, 6) on fd with blocking I/O;
 * pending: client bytes already read.  Returns the exit status. */
struct pop3_session_params {
	int fd;
	const char *user;
	const char *rip;
	const char *mailbox_path;
	bool maildir;
	const char *mbox_index_path; /* mbox: its index (mailbox_open_ex), NULL: default */
	const void *pending;
	size_t pending_len;
	long timeout_secs; /* pop3_timeout: idle reads and blocked writes */
};
int pop3_session_run(const struct pop3_session_params *p);

#endif
