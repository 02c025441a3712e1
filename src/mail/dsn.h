/* dsn.h - delivery status notifications: the text of the reports the
 * queue manager sends back to a sender (bounces, delay warnings, success
 * notices) and to the postmaster.
 *
 * A report is one complete RFC 5322 message (LF line ends) of type
 * multipart/report; report-type=delivery-status (RFC 3462, now RFC 6522)
 * with three parts, as Postfix's bounce(8) writes it:
 *   1. text/plain "Notification": Postfix's explanation, then one
 *      "<recipient>: reason" paragraph per recipient, folded at 78 columns;
 *   2. message/delivery-status (RFC 3464): per-message fields
 *      (Reporting-MTA, X-Facteur-Queue-ID, X-Facteur-Sender,
 *      Original-Envelope-Id, Arrival-Date), then per-recipient groups
 *      (Final-Recipient, Original-Recipient, Action, Status, Remote-MTA,
 *      Diagnostic-Code, Will-Retry-Until);
 *   3. the original: message/rfc822 (failures, RET=FULL or no RET) or
 *      text/rfc822-headers (RET=HDRS, and always for delay warnings,
 *      success notices and postmaster copies, as Postfix does), cut at a
 *      line boundary after DSN_SIZE_LIMIT bytes (Postfix bounce_size_limit).
 *
 * Pure functions: no I/O, no configuration, no clock (the caller passes
 * times), so that tests compare whole reports with golden texts.
 */
#ifndef FACTEUR_MAIL_DSN_H
#define FACTEUR_MAIL_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* Postfix bounce_size_limit default: how much of the original a report
 * carries. */
#define DSN_SIZE_LIMIT 50000u
/* RFC 5322 2.1.1: lines SHOULD stay within 78 characters. */
#define DSN_LINE_WIDTH 78u
/* Continuation lines are indented by this many spaces (Postfix's). */
#define DSN_INDENT 4u

enum dsn_report_type {
	DSN_REPORT_FAILURE,    /* "Undelivered Mail Returned to Sender" */
	DSN_REPORT_DELAY,      /* "Delayed Mail (still being retried)" */
	DSN_REPORT_SUCCESS,    /* "Successful Mail Delivery Report" */
	DSN_REPORT_POSTMASTER, /* "Postmaster Copy: Undelivered Mail" */
};

/* RFC 3464 2.3.3 action-value. */
enum dsn_action {
	DSN_ACTION_FAILED,
	DSN_ACTION_DELAYED,
	DSN_ACTION_DELIVERED,
	DSN_ACTION_RELAYED,
	DSN_ACTION_EXPANDED,
};

struct dsn_rcpt {
	const char *address;  /* Final-Recipient */
	const char *orcpt;    /* DSN ORCPT as stored ("RFC822;addr"), or NULL */
	const char *orig_to;  /* address before rewriting/expansion, or NULL */
	enum dsn_action action;
	const char *status;   /* "5.1.1"; NULL: 5.0.0 / 4.0.0 / 2.0.0 by action */
	const char *text;     /* the reason as logged; NULL: none */
};

struct dsn_report {
	enum dsn_report_type type;
	const char *myhostname; /* Reporting-MTA, boundary, Message-Id */
	const char *myorigin;   /* From: MAILER-DAEMON@myorigin */
	const char *queue_id;   /* of the original message */
	const char *report_id;  /* queue id of the report itself (Message-Id) */
	const char *sender;     /* original envelope sender ("" = null sender) */
	const char *to;         /* who receives the report (To:) */
	int64_t arrival;        /* original's arrival time (Arrival-Date) */
	int64_t now;            /* Date:, boundary */
	const char *envid;      /* DSN ENVID, or NULL */
	bool is_ret_hdrs;       /* DSN RET=HDRS */
	long delay_warning_time;     /* seconds, for the delay warning text */
	long maximal_queue_lifetime; /* seconds: Will-Retry-Until, delay text */
	const struct dsn_rcpt *rcpts;
	size_t n_rcpts;
	const char *content;    /* original message, LF line ends (may be NULL) */
	size_t content_len;
	size_t size_limit;      /* 0: DSN_SIZE_LIMIT */
};

/* Append the whole report to out.  Returns 0, or -1 with *error_r (static
 * text) when the input cannot make a report (no recipient, no hostname). */
int dsn_report_build(struct buf *out, const struct dsn_report *r, const char **error_r);

/* "Subject:" text of a report type. */
const char *dsn_report_subject(enum dsn_report_type type);
/* "failed", "delayed", ... */
const char *dsn_action_name(enum dsn_action a);

/* Append "first" + text as folded lines (each ending in LF): break at
 * spaces so that no line exceeds width columns where a space allows it,
 * continuation lines start with DSN_INDENT spaces; control characters and
 * bytes >= 0x7f become '?' (remote replies are untrusted: no header
 * injection, 7-bit only). */
void dsn_fold(struct buf *out, const char *first, const char *text, size_t width);

/* A remote reply in the queue manager's reason text, in Postfix's shape
 * "host NAME[ADDR] said: REPLY (in reply to CMD command)".  On true,
 * *host_r (NAME) and *reply_r (REPLY) are new strings. */
bool dsn_remote_parse(const char *text, char **host_r, char **reply_r);

/* DSN NOTIFY (as stored: "SUCCESS,FAILURE", "NEVER", NULL = not given):
 * whether a report of that type is wanted.  RFC 3461 4.1 leaves the
 * default to the MTA; as Postfix, no NOTIFY means FAILURE,DELAY. */
bool dsn_notify_wants(const char *notify, enum dsn_report_type type);

/* "4 hour(s)", "1 day(s)", "30 second(s)": the largest unit that divides
 * seconds (the delay warning text). */
void dsn_duration_format(struct buf *out, long seconds);

#endif
