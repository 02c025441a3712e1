/* qmgr.h - the queue manager's internal interfaces (shared by the files of
 * src/qmgr/ and their unit tests; no other role includes this header).
 *
 * The queue manager moves messages incoming/ -> active/ (at most
 * qmgr_message_active_limit at once), chooses a transport for each pending
 * recipient, hands deliveries to the transports under the concurrency
 * limits, records each outcome in the queue file, and finally removes the
 * file or moves it to deferred/ with its next attempt time.
 *
 * Everything it knows lives in the queue files; the structures below are a
 * cache rebuilt at every start.
 *
 * Modules:
 *   qmgr.c          qmgr_main: configuration, signals, FIFO, timers
 *   qmgr_scan.c     queue directory scans and the active window
 *   qmgr_message.c  one active message: read, route, record, finish
 *   qmgr_sched.c    per-destination queues and the dispatcher
 *   qmgr_resolve.c  recipient classification and the transport table
 *   qmgr_local.c    client side of the dlv.h protocol (local transport)
 *   qmgr_smtp.c     client side of the smtp_proto.h protocol (smtp transport)
 *   qmgr_retry.c    backoff and queue lifetimes
 */
#ifndef FACTEUR_QMGR_QMGR_H
#define FACTEUR_QMGR_QMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/time.h>

#include "lib/buf.h"
#include "mail/qfile.h"

struct event_base;
struct event;
struct qmgr;
struct qmgr_message;
struct qmgr_local;
struct qmgr_smtp;
struct route;

/* Forwarding deeper than this is a loop (Postfix's hop counts protect
 * headers; the queue manager's own guard is on the expansion tree). */
#define QMGR_EXPAND_DEPTH_MAX 20
/* A message may not grow beyond this many recipients by expansion. */
#define QMGR_EXPAND_RCPT_MAX 10000
/* How long deliveries wait for the local agent to (re)appear before they
 * are deferred (seconds). */
#define QMGR_LOCAL_HOLD_MAX 30

#define QMGR_REASON_REMOTE \
	"delivery to other domains is not available yet (mail waits in the queue)"
#define QMGR_REASON_LOCAL_DOWN "local delivery agent unavailable"
#define QMGR_REASON_SMTP_DOWN "smtp delivery agent unavailable"

/* The parameters the queue manager uses, in seconds / counts.  Filled from
 * main.cf by qmgr_main, directly by unit tests.  Lists are borrowed. */
struct qmgr_settings {
	const char *queue_dir;
	char *const *mydestination;           /* expanded, NULL-terminated */
	char *const *virtual_mailbox_domains; /* expanded, NULL-terminated */
	unsigned message_active_limit;        /* qmgr_message_active_limit */
	unsigned process_limit;               /* default_process_limit */
	unsigned local_concurrency;           /* local_destination_concurrency_limit */
	unsigned virtual_concurrency;         /* default_destination_concurrency_limit */
	unsigned smtp_concurrency;            /* smtp_destination_concurrency_limit */
	unsigned smtp_rcpt_limit;             /* smtp_destination_recipient_limit */
	long queue_run_delay;
	long minimal_backoff_time;
	long maximal_backoff_time;
	long maximal_queue_lifetime;
	long bounce_queue_lifetime;
	/* Reports (qmgr_message.c, mail/dsn.h), filled by
	 * qmgr_message_settings(); NULL/0/false where tests leave them. */
	const char *myhostname;
	const char *myorigin;
	long delay_warning_time;              /* 0: no delay warnings */
	bool notify_bounce;                   /* notify_classes has "bounce" */
	bool notify_2bounce;                  /* notify_classes has "2bounce" */
	const char *bounce_notice_recipient;
	const char *double_bounce_recipient;  /* 2bounce_notice_recipient */
	const char *double_bounce_sender;
};

/* ---- qmgr_resolve.c: classes and transports ---- */

enum qmgr_class {
	QMGR_CLASS_LOCAL,
	QMGR_CLASS_VIRTUAL,
	QMGR_CLASS_REMOTE,  /* no routing table (unit tests): deferred */
	QMGR_CLASS_SMTP,    /* route.h ROUTE_SMTP: the smtp agent */
	QMGR_CLASS_ERROR,   /* route.h ROUTE_ERROR: bounced with the text */
	QMGR_CLASS_DISCARD, /* route.h ROUTE_DISCARD: "sent", discarded */
	QMGR_CLASS_RETRY,   /* routing failed temporarily: deferred */
};

/* The class of a recipient address: no domain or a domain in mydestination
 * is local; a domain in virtual_mailbox_domains is virtual; anything else
 * is remote. */
enum qmgr_class qmgr_resolve_class(const struct qmgr_settings *s, const char *address);
const char *qmgr_class_name(enum qmgr_class c);

struct qmgr_entry;

/* A transport takes one recipient delivery.  deliver() must eventually
 * call qmgr_entry_done() for the entry (it may do so before returning).
 * dest_key() gives the string that groups deliveries for the per
 * destination concurrency limit (new string). */
struct qmgr_transport {
	const char *name;
	char *(*dest_key)(const char *address);
	unsigned (*dest_limit)(const struct qmgr *q);
	void (*deliver)(struct qmgr *q, struct qmgr_entry *e);
	/* NULL: one recipient per delivery.  Else at most this many
	 * recipients of one message at one destination go as one delivery
	 * (a batch: the head entry holds the slot, the others hang on its
	 * batch list). */
	unsigned (*rcpt_limit)(const struct qmgr *q);
};

const struct qmgr_transport *qmgr_transport_for(enum qmgr_class c);

/* ---- qmgr_retry.c ---- */

/* Delay before the next attempt after the attempts-th failed one
 * (attempts >= 1): minimal_backoff_time doubled per earlier failure,
 * capped at maximal_backoff_time (never below the minimum). */
long qmgr_retry_backoff(unsigned attempts, long minimal, long maximal);
/* True when a message that arrived at arrival_sec has outlived its queue
 * lifetime at now (bounce_queue_lifetime for the null sender). */
bool qmgr_retry_expired(const struct qmgr_settings *s, const char *sender,
			int64_t arrival_sec, int64_t now);
/* True when a deferred message is due its (single) delay warning. */
bool qmgr_retry_delay_warning_due(const struct qmgr_settings *s, const char *sender,
				  int64_t arrival_sec, bool already_warned, int64_t now);

/* ---- qmgr_sched.c: entries, destinations, dispatcher ---- */

/* The result of one delivery attempt of one recipient. */
enum qmgr_result {
	QMGR_RESULT_SENT,
	QMGR_RESULT_DEFERRED,
	QMGR_RESULT_BOUNCED,
	QMGR_RESULT_EXPANDED,
	/* SENT to a next hop that does not do DSN while NOTIFY=SUCCESS was
	 * asked: recorded as sent, reported as "relayed" (RFC 3461 5.2.2). */
	QMGR_RESULT_RELAYED,
};

struct qmgr_dest;

/* One recipient delivery waiting for, or holding, a delivery slot. */
struct qmgr_entry {
	TAILQ_ENTRY(qmgr_entry) dest_link;   /* in dest->waiting */
	TAILQ_ENTRY(qmgr_entry) agent_link;  /* owned by the transport */
	struct qmgr_message *msg;
	unsigned rcpt;                        /* index in the queue file */
	enum qmgr_class cls;
	const struct qmgr_transport *transport;
	struct qmgr_dest *dest;
	uint64_t req;                         /* local: request number */
	bool is_sent;                         /* local: written to the socket */
	struct timeval handoff;
	/* Routing (route.h), when a routing table is in use. */
	char *nexthop;                        /* SMTP: host or domain */
	bool no_mx;
	unsigned port;
	char *text;                           /* ERROR/RETRY/DISCARD text */
	/* Batches (transport rcpt_limit): the head holds the slot. */
	bool holds_slot;
	TAILQ_HEAD(, qmgr_entry) batch;
	TAILQ_ENTRY(qmgr_entry) batch_link;
};
TAILQ_HEAD(qmgr_entry_list, qmgr_entry);

/* Queue a delivery of recipient rcpt of msg; it starts when a slot is
 * free. */
void qmgr_sched_add(struct qmgr *q, struct qmgr_message *msg, unsigned rcpt, enum qmgr_class cls);
/* Start as many queued deliveries as the limits allow. */
void qmgr_sched_run(struct qmgr *q);
/* Free an entry that never reached qmgr_entry_done (shutdown). */
void qmgr_entry_free(struct qmgr_entry *e);
/* A transport reports the outcome of e (frees e).  For a batch, the
 * members are reported first, the head (which holds the slot) last.  forwards: addresses to
 * add as new recipients (SENT and EXPANDED only). */
void qmgr_entry_done(struct qmgr *q, struct qmgr_entry *e, enum qmgr_result result,
		     const char *dsn, const char *text, char *const *forwards, size_t n_forwards);
unsigned qmgr_sched_in_flight(const struct qmgr *q);
void qmgr_sched_init(struct qmgr *q);
void qmgr_sched_deinit(struct qmgr *q);

/* ---- qmgr_message.c ---- */

/* Per-recipient memory state (not on disk: rebuilt at each pass). */
struct qmgr_rcpt_state {
	bool queued;   /* a delivery is queued or in flight */
	char *defer_dsn;
	char *defer_reason;
	/* A final state waiting for its report: written (D record) only
	 * after the report is committed (qmgr_message.c). */
	bool is_held;
	enum qfile_rcpt_status held_status;
	bool is_held_relayed; /* SENT, reported as "relayed" */
	char *held_dsn;
	char *held_text;
};

struct qmgr_message {
	TAILQ_ENTRY(qmgr_message) link;        /* in q->active */
	TAILQ_ENTRY(qmgr_message) finish_link; /* in q->finished */
	char id[QFILE_ID_MAX];
	int fd;
	struct qfile_msg *qm;
	struct qmgr_rcpt_state *rs; /* qm->n_rcpts of them */
	size_t rs_cap;
	unsigned outstanding; /* deliveries queued or in flight */
	bool is_finishing;    /* on q->finished */
	bool io_error;        /* an append failed: do not trust more appends */
	char *last_reason;
	struct timeval active_time;
	struct timeval arrival;
};
TAILQ_HEAD(qmgr_message_list, qmgr_message);

struct config;
/* Fill the report settings of s from main.cf (qmgr_main). */
void qmgr_message_settings(struct qmgr_settings *s, struct config *cfg);
/* Take ID from queue subdirectory `from` (incoming, deferred or active)
 * into the active queue and start its deliveries.  Returns 1 taken, 0 not
 * there or owned by another queue manager, -1 error (logged). */
int qmgr_message_take(struct qmgr *q, const char *id, const char *from);
/* Record the outcome of one delivery in the queue file. */
void qmgr_message_result(struct qmgr *q, struct qmgr_message *msg, unsigned rcpt,
			 enum qmgr_result result, const char *dsn, const char *text,
			 char *const *forwards, size_t n_forwards);
/* Called when msg has no queued or in-flight delivery left. */
void qmgr_message_idle(struct qmgr *q, struct qmgr_message *msg);
/* Finish every message queued by qmgr_message_idle (remove, defer or
 * expire it). */
void qmgr_message_finish_all(struct qmgr *q);
/* Drop every active message from memory, files untouched (SIGTERM). */
void qmgr_message_forget_all(struct qmgr *q);
/* Log "to=<R>, relay=none, ... status=STATUS (REASON)" for a recipient the
 * queue manager itself decided about. */
void qmgr_message_log_rcpt(struct qmgr_message *msg, unsigned rcpt, const char *dsn,
			   const char *status, const char *reason);

/* ---- qmgr_local.c: dlv.h client ---- */

enum qmgr_dlv_status {
	QMGR_DLV_SENT,
	QMGR_DLV_DEFERRED,
	QMGR_DLV_BOUNCED,
	QMGR_DLV_EXPANDED,
};

struct qmgr_dlv_request {
	uint64_t req;
	const char *queue_id;
	unsigned rcpt;
	const char *address;
	const char *orig_to; /* NULL: omitted */
	const char *class_name;
};

struct qmgr_dlv_reply {
	uint64_t req;
	enum qmgr_dlv_status status;
	char *dsn;
	char *text;
	char **forwards;
	size_t n_forwards;
};

#define QMGR_DLV_MAX_FORWARDS 1000

/* Encode a request packet into out (reset first).  Control characters in
 * values are replaced by '?'.  -1 with *error_r when it would exceed
 * DLV_MAX_PACKET. */
int qmgr_dlv_request_encode(struct buf *out, const struct qmgr_dlv_request *r,
			    const char **error_r);
/* Decode and validate one reply packet.  On 0, free with
 * qmgr_dlv_reply_clear(); on -1, *error_r says what was wrong and r holds
 * nothing to free. */
int qmgr_dlv_reply_decode(const uint8_t *data, size_t len, struct qmgr_dlv_reply *r,
			  const char **error_r);
void qmgr_dlv_reply_clear(struct qmgr_dlv_reply *r);

struct qmgr_local *qmgr_local_new(struct qmgr *q, const char *socket_path);
void qmgr_local_free(struct qmgr_local **l);
/* Use an already connected socket (unit tests: one end of a socketpair). */
void qmgr_local_attach(struct qmgr_local *l, int fd);
/* The local and virtual transports' deliver(). */
void qmgr_local_deliver(struct qmgr *q, struct qmgr_entry *e);

/* ---- qmgr_smtp.c: smtp_proto.h client ---- */

/* Build the request for batch head e (and its members) into out.  0, or
 * -1 with *error_r (too long). */
int qmgr_smtp_request_build(struct buf *out, uint64_t req, struct qmgr_entry *e,
			    const char **error_r);
struct qmgr_smtp *qmgr_smtp_new(struct qmgr *q, const char *socket_path);
void qmgr_smtp_free(struct qmgr_smtp **sm);
/* Use an already connected socket (unit tests). */
void qmgr_smtp_attach(struct qmgr_smtp *sm, int fd);
/* The smtp transport's deliver(). */
void qmgr_smtp_deliver(struct qmgr *q, struct qmgr_entry *e);

/* ---- qmgr_scan.c: the queue manager object, scans, window ---- */

struct qmgr_dest_table;

struct qmgr {
	struct qmgr_settings s;
	struct event_base *base;
	struct qmgr_message_list active;
	unsigned n_active;
	struct qmgr_message_list finished; /* idle, to be finished */
	struct event *ev_finish;
	struct event *ev_refill;
	struct qmgr_local *local;
	struct qmgr_smtp *smtp;   /* NULL: no smtp agent (unit tests) */
	struct route *route;      /* NULL: classes only (unit tests) */
	/* qmgr_sched.c */
	struct qmgr_dest_table *dests;
	unsigned in_flight;
	/* scans */
	bool want_incoming;
	bool want_deferred;
	bool deferred_first; /* alternate which queue fills the window first */
	char **flush_ids;    /* deferred ids to take regardless of backoff */
	size_t n_flush, flush_pos;
	bool is_draining;    /* SIGHUP: take nothing new */
	int64_t (*now)(void); /* time source (tests may replace it) */
};

/* Create the queue manager on base (settings copied; lists borrowed).
 * local_socket: path of the local agent's socket, or NULL (tests attach
 * one with qmgr_local_attach(q->local, fd)). */
struct qmgr *qmgr_new(const struct qmgr_settings *s, struct event_base *base,
		      const char *local_socket);
void qmgr_free(struct qmgr **q);
/* Recovery at start: take every file in active/, then fill the window
 * from incoming/ and the due part of deferred/. */
void qmgr_scan_recover(struct qmgr *q);
/* Ask for a scan of incoming/ (and deferred/) at the next loop turn. */
void qmgr_scan_want(struct qmgr *q, bool incoming, bool deferred);
/* "F": every deferred message is due now. */
void qmgr_scan_flush(struct qmgr *q);
/* Fill the active window now (what the refill event runs). */
void qmgr_scan_refill(struct qmgr *q);
/* Every queue_run_delay: look for orphans in active/, scan deferred/. */
void qmgr_scan_periodic(struct qmgr *q);
/* A message left the active queue. */
void qmgr_scan_released(struct qmgr *q);

int64_t qmgr_now(const struct qmgr *q);

/* ---- qmgr.c ---- */

/* Apply one line read from QDIR/public/qmgr (without its newline). */
void qmgr_fifo_line(struct qmgr *q, const char *line);

#endif
