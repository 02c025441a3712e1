/* smtp.h - the SMTP client role's internal interfaces (src/smtp/ only).
 *
 * Modules:
 *   smtp.c          smtp_main: the server of QDIR/private/smtp, requests,
 *                   results, log lines
 *   smtp_deliver.c  one delivery: DNS, address list, sessions, the SMTP
 *                   client state machine, connection cache
 *   smtp_reply.c    server reply parser (RFC 5321 4.2) and EHLO keywords
 *   smtp_data.c     the DATA writer: LF -> CRLF, dot-stuffing, end marker
 */
#ifndef FACTEUR_SMTP_SMTP_H
#define FACTEUR_SMTP_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* ---- smtp_reply.c ---- */

/* RFC 5321 4.5.3.1.5 says 512 octets per reply line; servers send longer
 * ones (long EHLO lines, verbose texts): we accept up to this, beyond it
 * the reply is malformed. */
#define SMTP_REPLY_LINE_MAX 4096
/* Lines in one reply (EHLO lists ~20). */
#define SMTP_REPLY_LINES_MAX 200

enum smtp_parse {
	SMTP_PARSE_OK,   /* the reply is complete */
	SMTP_PARSE_MORE, /* a continuation line ("250-"): feed the next line */
	SMTP_PARSE_ERR,  /* malformed: *error_r says why */
};

/* One server reply, possibly multi-line. */
struct smtp_reply {
	unsigned code;   /* 200..599 */
	char dsn[16];    /* enhanced status of the first line, or class.0.0 */
	bool has_dsn;    /* the server sent an enhanced status code */
	struct buf text; /* "CODE DSN text text2 ..." as logged and reported */
	struct buf lines; /* the text part of each line, '\n'-separated (EHLO) */
	size_t n_lines;
	bool is_done;
};

void smtp_reply_init(struct smtp_reply *r);
void smtp_reply_deinit(struct smtp_reply *r);
/* Forget the previous reply (after is_done or an error). */
void smtp_reply_reset(struct smtp_reply *r);
/* Feed one line without its CRLF.  RFC 5321 4.2:
 *   Reply-line = *( Reply-code "-" [ textstring ] CRLF )
 *                   Reply-code [ SP textstring ] CRLF
 *   Reply-code = %x32-35 %x30-35 %x30-39
 * Every line of one reply must carry the same code.  Control characters
 * in the text are replaced by '?' (the text reaches logs and reports). */
enum smtp_parse smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len,
				const char **error_r);

/* ESMTP extensions announced in an EHLO reply (RFC 5321 4.1.1.1). */
struct smtp_ehlo {
	bool pipelining;  /* RFC 2920 */
	bool eightbitmime; /* RFC 6152 */
	bool dsn;         /* RFC 3461 */
	bool has_size;    /* RFC 1870 */
	uint64_t size;    /* SIZE limit; 0: announced without a limit */
	bool starttls;
	bool smtputf8;
};

/* Keywords from the lines after the first (case-insensitive); unknown ones
 * and malformed SIZE values are ignored. */
void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *e);

/* ---- smtp_data.c ---- */

/* Turns the queue file content (LF line ends) into DATA on the wire:
 * each LF becomes CRLF, a line starting with "." gets another "." (RFC
 * 5321 4.5.2), and the end is "CRLF.CRLF" (a final CRLF is added when the
 * content does not end with a line end).  Input may be split anywhere. */
struct smtp_data_writer {
	bool at_line_start;
	uint64_t in_bytes;
};

void smtp_data_writer_init(struct smtp_data_writer *w);
void smtp_data_write(struct smtp_data_writer *w, const uint8_t *data, size_t len,
		     struct buf *out);
void smtp_data_finish(struct smtp_data_writer *w, struct buf *out);

#endif

/* ---- smtp_deliver.c: the delivery engine ---- */

struct event_base;
struct dns;
struct smtp_proto_request;
struct smtp_proto_reply;
struct smtp_engine;

/* Parameters, in seconds; strings borrowed. */
struct smtp_settings {
	const char *queue_dir;
	const char *helo_name;
	const char *bind_address; /* "" or NULL: the kernel chooses */
	bool want_ipv4, want_ipv6;
	long connect_timeout, helo_timeout, mail_timeout, rcpt_timeout;
	long data_init_timeout, data_xfer_timeout, data_done_timeout;
	long rset_timeout, quit_timeout;
	long cache_time; /* smtp_connection_cache_time_limit */
};

/* The result of one request: reply (owned by the engine, valid during the
 * call only). */
typedef void smtp_engine_done_fn(void *ctx, const struct smtp_proto_reply *reply);

/* dns may be NULL (then only IP-literal nexthops work: unit tests). */
struct smtp_engine *smtp_engine_new(struct event_base *base, struct dns *dns,
				    const struct smtp_settings *s);
/* Abandons deliveries in flight (their callbacks do not run) and closes
 * every connection. */
void smtp_engine_free(struct smtp_engine **e);
/* Start a delivery; takes the contents of *req (left cleared).  done runs
 * later, from the loop, exactly once (never inside this call). */
void smtp_engine_deliver(struct smtp_engine *e, struct smtp_proto_request *req,
			 smtp_engine_done_fn *done, void *ctx);
/* Deliveries in flight. */
unsigned smtp_engine_busy(const struct smtp_engine *e);
/* Close idle cached connections now (stop, reload). */
void smtp_engine_close_idle(struct smtp_engine *e);
