/* smtp_proto.h - the delivery protocol between the queue manager (qmgr) and
 * the SMTP client (smtp), both unprivileged.
 *
 * Transport: a SOCK_SEQPACKET UNIX socket at QDIR/private/smtp, created by
 * the smtp role (mode 0600, owner mail_owner); the smtp role accepts only
 * peers with mail_owner's uid or its own (SO_PEERCRED).  One packet per
 * request and per reply, at most SMTP_PROTO_MAX_PACKET bytes of text lines
 * "key=value" separated by '\n'.  Writers replace control characters in
 * values by '?' (so no value holds '\n' or '\t').
 *
 * One request carries the recipients of ONE message for ONE nexthop (at
 * most smtp_destination_recipient_limit of them); replies come back in any
 * order, matched by req.
 *
 * Request (qmgr -> smtp), keys in any order except that the rcpt lines
 * keep the order of the recipients:
 *   req=N                 request number, echoed in the reply
 *   queue_id=ID           the message; the file is QDIR/active/ID
 *   sender=ADDR           envelope sender ("" for <>)
 *   nexthop=HOST          domain (MX lookup) or host
 *   no_mx=0|1             1: "[host]", no MX lookup
 *   port=N                TCP port (25 unless the route says otherwise)
 *   active=SEC.USEC       when the message entered the active queue (logs)
 *   rcpt=INDEX\tNOTIFY\tORCPT\tADDRESS   one per recipient; NOTIFY and
 *                         ORCPT are "" when absent
 * The smtp role treats the request as input, not truth: it re-reads the
 * queue file (sender, content, RET/ENVID/BODY attributes, each recipient's
 * NOTIFY/ORCPT) and checks that every index names that address.
 *
 * Reply (smtp -> qmgr):
 *   req=N
 *   relay=HOST[IP]:PORT   the server that gave the results, or "none"
 *   dsn_announced=0|1     the server offered the DSN extension
 *   result=INDEX\tSTATUS\tDSN\tRELAYED\tTEXT   one per recipient of the
 *                         request; STATUS sent|deferred|bounced; DSN
 *                         X.Y.Z; RELAYED "relayed" when NOTIFY=SUCCESS
 *                         was asked and the server does not do DSN (a
 *                         "relayed" notice is then due), else "-"; TEXT
 *                         Postfix-shaped ("host mx1.machin.test[127.0.0.3]
 *                         said: 550 5.1.1 ... (in reply to RCPT TO
 *                         command)", "250 2.0.0 Ok: queued as X",
 *                         "connect to HOST[IP]:25: Connection refused").
 * The smtp role logs the "to=<...>, relay=..., status=..." lines itself;
 * the queue manager logs nothing for these deliveries.
 */
#ifndef FACTEUR_MAIL_SMTP_PROTO_H
#define FACTEUR_MAIL_SMTP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define SMTP_PROTO_SOCKET_NAME "private/smtp"
#define SMTP_PROTO_MAX_PACKET 131072
/* Hard limit on recipients in one request (smtp_destination_recipient_limit
 * is capped to it). */
#define SMTP_PROTO_MAX_RCPTS 1000
/* Texts are cut to this many bytes by the writer. */
#define SMTP_PROTO_MAX_TEXT 2000

enum smtp_proto_status {
	SMTP_PROTO_SENT,
	SMTP_PROTO_DEFERRED,
	SMTP_PROTO_BOUNCED,
};

struct smtp_proto_rcpt {
	unsigned index;
	char *address;
	char *notify; /* "" when absent */
	char *orcpt;  /* "" when absent */
};

struct smtp_proto_request {
	uint64_t req;
	char *queue_id;
	char *sender;
	char *nexthop;
	bool no_mx;
	unsigned port;
	int64_t active_sec; /* 0: unknown */
	long active_usec;
	struct smtp_proto_rcpt *rcpts;
	size_t n_rcpts;
};

struct smtp_proto_result {
	unsigned index;
	enum smtp_proto_status status;
	char *dsn;
	char *text;
	bool relayed;
};

struct smtp_proto_reply {
	uint64_t req;
	char *relay;
	bool dsn_announced;
	struct smtp_proto_result *results;
	size_t n_results;
};

/* Encode into out (reset first).  Strings of r are borrowed.  -1 with
 * *error_r when the packet would exceed SMTP_PROTO_MAX_PACKET or the
 * request has no or too many recipients. */
int smtp_proto_request_encode(struct buf *out, const struct smtp_proto_request *r,
			      const char **error_r);
/* Decode and validate (queue id syntax, port 1-65535, 1..MAX recipients,
 * no empty address).  On 0 free with smtp_proto_request_clear(); on -1
 * *error_r says why, r->req holds the request number when it was read (so
 * that an error reply can echo it) and nothing needs freeing. */
int smtp_proto_request_decode(const uint8_t *data, size_t len, struct smtp_proto_request *r,
			      const char **error_r);
void smtp_proto_request_clear(struct smtp_proto_request *r);

int smtp_proto_reply_encode(struct buf *out, const struct smtp_proto_reply *r,
			    const char **error_r);
int smtp_proto_reply_decode(const uint8_t *data, size_t len, struct smtp_proto_reply *r,
			    const char **error_r);
void smtp_proto_reply_clear(struct smtp_proto_reply *r);

const char *smtp_proto_status_name(enum smtp_proto_status s);

#endif
