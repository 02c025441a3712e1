/* mail_log.h - the texts of mail event log lines, in Postfix's shapes.
 *
 * Every function appends exactly one line (no trailing newline) to a
 * struct buf; the caller passes buf_cstr() to log_info("%s", ...).  Keeping
 * the shapes identical to Postfix lets pflogsumm and admins' greps work.
 * Addresses are printed between angle brackets, "<>" for the null sender;
 * control characters in any field are replaced by '?' so that a peer cannot
 * forge log lines.
 */
#ifndef FACTEUR_MAIL_MAIL_LOG_H
#define FACTEUR_MAIL_MAIL_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include "lib/buf.h"

/* "connect from NAME[ADDR]" */
void mail_log_connect(struct buf *out, const char *name, const char *addr);

/* One SMTP command counter of a session. */
struct mail_log_cmd_count {
	const char *name;	/* lower case: "ehlo", "mail", ..., "unknown" */
	unsigned ok;
	unsigned total;
};

/* "disconnect from NAME[ADDR] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4":
 * the counters in the given order (Postfix: helo ehlo xclient xforward
 * starttls auth mail rcpt data bdat rset noop vrfy etrn quit unknown),
 * only those with total > 0, "ok/total" when some failed. */
void mail_log_disconnect(struct buf *out, const char *name, const char *addr,
			 const struct mail_log_cmd_count *counts, size_t n);

/* "QUEUEID: client=NAME[ADDR]" plus ", sasl_method=M, sasl_username=U"
 * when sasl_method is not NULL. */
void mail_log_client(struct buf *out, const char *queue_id, const char *name, const char *addr,
		     const char *sasl_method, const char *sasl_username);

/* "QUEUEID: uid=1000 from=<chris>" (pickup of a local submission). */
void mail_log_pickup(struct buf *out, const char *queue_id, unsigned long uid,
		     const char *sender);

/* "QUEUEID: message-id=<ID>" (id given without brackets; "" gives "<>"). */
void mail_log_message_id(struct buf *out, const char *queue_id, const char *message_id);

/* "QUEUEID: from=<SENDER>, size=BYTES, nrcpt=N (queue active)" */
void mail_log_queue_active(struct buf *out, const char *queue_id, const char *sender,
			   uint64_t size, unsigned nrcpt);

/* A delivery attempt.  Time stamps as Postfix's MSG_STATS: a zero
 * timeval means "did not happen"; delivered zero means "now". */
struct mail_log_delivery {
	const char *queue_id;
	const char *to;
	const char *orig_to;	/* omitted when NULL, "" or equal to to */
	const char *relay;	/* "local", "host[addr]:port", "none" */
	struct timeval arrival;		/* message entered the queue */
	struct timeval active;		/* entered the active queue */
	struct timeval handoff;		/* given to the delivery agent */
	struct timeval conn_setup;	/* connection set up (SMTP client) */
	struct timeval delivered;	/* delivery finished */
	const char *dsn;	/* "2.0.0" */
	const char *status;	/* "sent", "deferred", "bounced", "expired" */
	const char *reason;	/* text in parentheses */
};

/* "QUEUEID: to=<R>, orig_to=<A>, relay=local, delay=0.12,
 *  delays=0.05/0.01/0/0.06, dsn=2.0.0, status=sent (REASON)" */
void mail_log_delivery(struct buf *out, const struct mail_log_delivery *d);

/* A duration as Postfix prints delays: two significant digits, at most two
 * decimals, trailing zeros dropped, large values rounded to whole seconds
 * ("0.05", "0", "1.2", "34"). */
void mail_log_format_delay(struct buf *out, long sec, long usec);

/* "QUEUEID: removed" */
void mail_log_removed(struct buf *out, const char *queue_id);

/* "QUEUEID: sender non-delivery notification: NEWQUEUEID"; kind may be
 * "non-delivery" (default when NULL), "delay status", "delivery status". */
void mail_log_notification(struct buf *out, const char *queue_id, const char *kind,
			   const char *new_queue_id);

/* An SMTP server refusal. */
struct mail_log_reject {
	const char *queue_id;	/* NULL: "NOQUEUE" */
	const char *action;	/* NULL: "reject"; "defer", "warn"... */
	const char *stage;	/* "RCPT", "MAIL", "DATA", "CONNECT", ... */
	const char *client_name;
	const char *client_addr;
	const char *reply;	/* "554 5.7.1 <R>: Relay access denied" */
	const char *sender;	/* NULL: omitted; "" gives from=<> */
	const char *recipient;	/* NULL: omitted */
	const char *protocol;	/* NULL: omitted */
	const char *helo;	/* NULL: omitted */
};

/* "NOQUEUE: reject: RCPT from NAME[ADDR]: REPLY; from=<S> to=<R>
 *  proto=ESMTP helo=<H>" */
void mail_log_reject(struct buf *out, const struct mail_log_reject *r);

#endif
