/* qmgr_message.c - one message in the active queue.
 *
 * Life of a message (the queue file is the truth at every step):
 *   take:    rename into active/ (durable), open, flock (one queue manager
 *            per file, also across a reload), qfile_read; a file the reader
 *            rejects goes to corrupt/ and is never deleted.
 *   route:   each pending recipient gets a class and a transport and is
 *            queued on its destination (qmgr_sched.c).
 *   record:  each outcome is an fsync'd append before anything depends on
 *            it: D for final recipients, N then D for expansions (children
 *            first: a crash in between redoes the parent, never loses the
 *            children), nothing for a deferral (the W record at the end
 *            carries the reason).  A recipient that needs a report
 *            (bounced, or NOTIFY=SUCCESS) keeps its final state in
 *            memory until the report is committed (message_reports).
 *   report:  at the end of each pass, one failure report for the pass's
 *            bounced recipients (plus postmaster notices, success
 *            notices), committed into incoming/ BEFORE their D records;
 *            a deferred message past delay_warning_time gets one delay
 *            warning, then a Y "delay" record.
 *   finish:  no pending recipient -> unlink, "removed";
 *            outlived its queue lifetime -> pending recipients bounced
 *            (D records), "status=expired, returned to sender", removed;
 *            otherwise W record (next attempt, count, reason), mtime set to
 *            the next attempt (a cheap hint for deferred/ scans, as
 *            Postfix does), rename into deferred/.
 * Called by qmgr_scan.c (take) and qmgr_sched.c (results).
 */
#include "qmgr/qmgr.h"
#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/addr.h"
#include "mail/config.h"
#include "mail/dsn.h"
#include "mail/mail_log.h"
#include "mail/queue.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static void rs_ensure(struct qmgr_message *msg)
{
	size_t n = msg->qm->n_rcpts;
	if (n <= msg->rs_cap)
		return;
	size_t cap = msg->rs_cap == 0 ? 8 : msg->rs_cap;
	while (cap < n)
		cap *= 2;
	msg->rs = xreallocarray(msg->rs, cap, sizeof(*msg->rs));
	memset(msg->rs + msg->rs_cap, 0, (cap - msg->rs_cap) * sizeof(*msg->rs));
	msg->rs_cap = cap;
}

static void message_free(struct qmgr_message **mp)
{
	struct qmgr_message *msg = *mp;
	if (msg == NULL)
		return;
	if (msg->fd >= 0 && close(msg->fd) < 0)
		log_warning("%s: close queue file: %s", msg->id, strerror(errno));
	for (size_t i = 0; i < msg->rs_cap; i++) {
		free(msg->rs[i].defer_dsn);
		free(msg->rs[i].defer_reason);
		free(msg->rs[i].held_dsn);
		free(msg->rs[i].held_text);
	}
	free(msg->rs);
	free(msg->last_reason);
	qfile_msg_free(&msg->qm);
	free(msg);
	*mp = NULL;
}

static void replace_str(char **slot, const char *value)
{
	free(*slot);
	*slot = value != NULL ? xstrdup(value) : NULL;
}

void qmgr_message_log_rcpt(struct qmgr_message *msg, unsigned rcpt, const char *dsn,
			   const char *status, const char *reason)
{
	const struct qfile_rcpt *r = &msg->qm->rcpts[rcpt];
	struct buf line = BUF_INIT;
	struct mail_log_delivery d;
	memset(&d, 0, sizeof(d));
	d.queue_id = msg->id;
	d.to = r->address;
	d.orig_to = r->orig_to;
	d.relay = "none";
	d.arrival = msg->arrival;
	d.active = msg->active_time;
	d.dsn = dsn;
	d.status = status;
	d.reason = reason;
	mail_log_delivery(&line, &d);
	log_info("%s", buf_cstr(&line));
	buf_deinit(&line);
}

static void route_rcpt(struct qmgr *q, struct qmgr_message *msg, unsigned rcpt)
{
	enum qmgr_class c = qmgr_resolve_class(&q->s, msg->qm->rcpts[rcpt].address);
	qmgr_sched_add(q, msg, rcpt, c);
}

static void append_failed(struct qmgr_message *msg, unsigned rcpt)
{
	log_error("%s: update queue file: %s", msg->id, strerror(errno));
	msg->io_error = true;
	/* The recipient stays pending: its delivery is redone later
	 * (at-least-once), never dropped. */
	replace_str(&msg->rs[rcpt].defer_dsn, "4.3.0");
	replace_str(&msg->rs[rcpt].defer_reason, "queue file write error");
	replace_str(&msg->last_reason, "queue file write error");
}

/* ---- reports (RFC 3464 delivery status notifications) ----
 *
 * Postfix's rules (bounce(8), qmgr(8)):
 *  - a message from the null sender never gets a report; its bounces are
 *    double bounces: a notice to 2bounce_notice_recipient when
 *    notify_classes has "2bounce", else only the status=bounced log lines;
 *  - a notice from double_bounce_sender that fails is discarded (no
 *    triple bounce), with a warning;
 *  - other senders get one failure report per pass for the recipients
 *    whose NOTIFY allows it (no NOTIFY = FAILURE,DELAY), and the
 *    postmaster a copy (headers only) when notify_classes has "bounce";
 *  - success reports for NOTIFY=SUCCESS, delay warnings once after
 *    delay_warning_time for NOTIFY=DELAY or no NOTIFY.
 * Reports are new queue files committed into incoming/ before the state
 * they report is written (see message_reports). */

void qmgr_message_settings(struct qmgr_settings *s, struct config *cfg)
{
	s->myhostname = config_get(cfg, "myhostname");
	s->myorigin = config_get(cfg, "myorigin");
	s->delay_warning_time = config_get_time(cfg, "delay_warning_time");
	s->notify_bounce = false;
	s->notify_2bounce = false;
	char **classes = config_get_list(cfg, "notify_classes");
	for (size_t i = 0; classes != NULL && classes[i] != NULL; i++) {
		if (str_casecmp(classes[i], "bounce") == 0)
			s->notify_bounce = true;
		else if (str_casecmp(classes[i], "2bounce") == 0)
			s->notify_2bounce = true;
	}
	s->bounce_notice_recipient = config_get(cfg, "bounce_notice_recipient");
	s->double_bounce_recipient = config_get(cfg, "2bounce_notice_recipient");
	s->double_bounce_sender = config_get(cfg, "double_bounce_sender");
}

static const char *s_hostname(const struct qmgr_settings *s)
{
	return s->myhostname != NULL && *s->myhostname != '\0' ? s->myhostname : "localhost";
}

static const char *s_origin(const struct qmgr_settings *s)
{
	return s->myorigin != NULL && *s->myorigin != '\0' ? s->myorigin : s_hostname(s);
}

/* double_bounce_sender qualified with myorigin (new string). */
static char *double_bounce_address(const struct qmgr_settings *s)
{
	const char *db = s->double_bounce_sender != NULL && *s->double_bounce_sender != '\0'
				 ? s->double_bounce_sender
				 : "double-bounce";
	return addr_qualify(db, s_origin(s));
}

static bool sender_is_double_bounce(const struct qmgr_settings *s, const char *sender)
{
	if (sender == NULL || *sender == '\0')
		return false;
	char *db = double_bounce_address(s);
	bool is = str_casecmp(sender, db) == 0 ||
		  (s->double_bounce_sender != NULL && str_casecmp(sender, s->double_bounce_sender) == 0);
	free(db);
	return is;
}

/* Whether the final state of rcpt waits for a report.  Success notices
 * (RFC 3461 5.2.2): "delivered" for final deliveries (local, virtual),
 * "expanded" for aliases, "relayed" when the next hop does not do DSN;
 * a next hop that does DSN got NOTIFY passed on and reports itself. */
static bool rcpt_wants_hold(struct qmgr *q, struct qmgr_message *msg, unsigned rcpt,
			    enum qfile_rcpt_status st, bool is_relayed)
{
	const char *sender = msg->qm->sender;
	const struct qfile_rcpt *r = &msg->qm->rcpts[rcpt];
	if (st == QRCPT_BOUNCED)
		return true; /* decided in message_reports (2bounce, discard...) */
	if (sender == NULL || *sender == '\0' || sender_is_double_bounce(&q->s, sender) ||
	    !dsn_notify_wants(r->notify, DSN_REPORT_SUCCESS))
		return false;
	if (st == QRCPT_EXPANDED || is_relayed)
		return true;
	return st == QRCPT_SENT && qmgr_resolve_class(&q->s, r->address) != QMGR_CLASS_REMOTE;
}

struct content_ctx {
	struct buf *out;
	size_t max;
};

static int content_collect(void *ctx, const uint8_t *data, size_t len)
{
	struct content_ctx *c = ctx;
	size_t room = c->max > c->out->len ? c->max - c->out->len : 0;
	buf_append(c->out, data, len < room ? len : room);
	return c->out->len >= c->max ? -1 : 0;
}

/* Write one report as a new queue file in incoming/ (fsync'd, renamed,
 * directory fsync'd).  Returns 0 with the new id in id_r, or -1 (logged). */
static int report_commit(struct qmgr *q, struct qmgr_message *msg, struct dsn_report *r,
			 const char *env_sender, const char *kind, char id_r[QFILE_ID_MAX])
{
	struct qfile_msg *m = msg->qm;
	struct qfile_writer *w = NULL;
	const char *error = NULL;
	struct buf content = BUF_INIT, text = BUF_INIT;
	int ret = -1;

	/* The original, up to what a report carries (a line may cross the
	 * limit by up to 1000 bytes, dsn.c). */
	struct content_ctx cc = { &content, DSN_SIZE_LIMIT + 1000 };
	if (qfile_content_read(msg->fd, m, content_collect, &cc, &error) < 0 && error != NULL) {
		log_warning("%s: read message for %s report: %s", msg->id, kind, error);
		buf_reset(&content);
	}
	if (qfile_writer_open(q->s.queue_dir, &w, &error) < 0) {
		log_error("%s: create %s report: %s: %s", msg->id, kind, error, strerror(errno));
		goto out;
	}
	struct timeval now;
	(void)gettimeofday(&now, NULL);
	r->myhostname = s_hostname(&q->s);
	r->myorigin = s_origin(&q->s);
	r->queue_id = msg->id;
	r->report_id = qfile_writer_id(w);
	r->arrival = m->arrival_sec;
	r->now = qmgr_now(q);
	r->envid = qfile_msg_attr(m, "envid");
	const char *ret_attr = qfile_msg_attr(m, "ret");
	r->is_ret_hdrs = ret_attr != NULL && str_casecmp(ret_attr, "HDRS") == 0;
	r->delay_warning_time = q->s.delay_warning_time;
	r->maximal_queue_lifetime = q->s.maximal_queue_lifetime;
	r->content = content.len > 0 ? (const char *)content.data : "";
	r->content_len = content.len;
	if (dsn_report_build(&text, r, &error) < 0) {
		log_error("%s: %s report: %s", msg->id, kind, error);
		qfile_writer_abort(&w);
		goto out;
	}
	(void)str_copy(id_r, QFILE_ID_MAX, qfile_writer_id(w));
	qfile_writer_time(w, now.tv_sec, (long)now.tv_usec);
	qfile_writer_attr(w, "proto", "bounce");
	qfile_writer_attr(w, "dsn_type", kind);
	qfile_writer_attr(w, "dsn_orig_id", msg->id);
	qfile_writer_sender(w, env_sender);
	struct qfile_rcpt_in rin = { r->to, NULL, NULL, NULL };
	qfile_writer_rcpt(w, &rin);
	qfile_writer_end_envelope(w);
	qfile_writer_content(w, text.data, text.len);
	if (qfile_writer_commit(&w, QUEUE_INCOMING, &error) < 0) {
		log_error("%s: commit %s report: %s: %s", msg->id, kind, error, strerror(errno));
		goto out;
	}
	/* The queue manager takes it at its next incoming/ scan. */
	qmgr_scan_want(q, true, false);
	ret = 0;
out:
	buf_deinit(&content);
	buf_deinit(&text);
	return ret;
}

static enum dsn_action held_action(enum qfile_rcpt_status st)
{
	switch (st) {
	case QRCPT_BOUNCED: return DSN_ACTION_FAILED;
	case QRCPT_EXPANDED: return DSN_ACTION_EXPANDED;
	case QRCPT_SENT:
	default: return DSN_ACTION_DELIVERED;
	}
}

/* Send one report about the recipients selected by idx[0..n).  rcpt_to:
 * who receives it; env_sender: "" for reports to senders, the
 * double-bounce address for postmaster notices (so that their own failure
 * is recognised and discarded).  Returns 0 or -1. */
static int report_send(struct qmgr *q, struct qmgr_message *msg, enum dsn_report_type type,
		       const unsigned *idx, size_t n, const char *rcpt_to, const char *env_sender)
{
	static const char *const kinds[] = { "failure", "delay", "success", "postmaster" };
	struct qfile_msg *m = msg->qm;
	struct dsn_rcpt *dr = xcalloc(n, sizeof(*dr));
	for (size_t i = 0; i < n; i++) {
		const struct qfile_rcpt *qr = &m->rcpts[idx[i]];
		const struct qmgr_rcpt_state *rs = &msg->rs[idx[i]];
		dr[i].address = qr->address;
		dr[i].orcpt = qr->orcpt;
		dr[i].orig_to = qr->orig_to;
		if (type == DSN_REPORT_DELAY) {
			dr[i].action = DSN_ACTION_DELAYED;
			dr[i].status = rs->defer_dsn;
			dr[i].text = rs->defer_reason != NULL ? rs->defer_reason : m->defer_reason;
		} else {
			dr[i].action = rs->is_held_relayed ? DSN_ACTION_RELAYED
							   : held_action(rs->held_status);
			dr[i].status = rs->held_dsn;
			dr[i].text = rs->held_text;
		}
	}
	struct dsn_report r;
	memset(&r, 0, sizeof(r));
	r.type = type;
	r.sender = m->sender;
	r.to = rcpt_to;
	r.rcpts = dr;
	r.n_rcpts = n;
	char id[QFILE_ID_MAX] = "";
	int ret = report_commit(q, msg, &r, env_sender, kinds[type], id);
	if (ret == 0) {
		struct buf line = BUF_INIT;
		if (type == DSN_REPORT_POSTMASTER) {
			buf_printf(&line, "%s: postmaster non-delivery notification: %s", msg->id, id);
		} else {
			mail_log_notification(&line, msg->id,
					      type == DSN_REPORT_DELAY	   ? "delay"
					      : type == DSN_REPORT_SUCCESS ? "delivery status"
									   : "non-delivery",
					      id);
		}
		log_info("%s", buf_cstr(&line));
		buf_deinit(&line);
	}
	free(dr);
	return ret;
}

/* Send the reports for the held recipients, then write their D records.
 *
 * Order and crash points (at-least-once, never a lost report):
 *   1. report files committed into incoming/ (fsync, rename, dir fsync);
 *   2. "sender non-delivery notification" logged;
 *   3. D records appended (fsync) for the reported recipients;
 *   4. the caller removes or defers the original.
 * A crash before 1 leaves the recipients pending: they are tried again and
 * bounce again (a report then).  A crash between 1 and 3 does the same,
 * so the sender may get two reports, never none.  After 3 the recipients
 * are final and nothing is reported again.  The D record thus plays the
 * role of a "report sent" notice, per recipient.
 * Returns 0, or -1 when a report could not be written: the held
 * recipients are then left pending with a deferral reason (retried). */
static int message_reports(struct qmgr *q, struct qmgr_message *msg)
{
	struct qfile_msg *m = msg->qm;
	size_t n = m->n_rcpts;
	unsigned *fail = xcalloc(n + 1, sizeof(*fail));
	unsigned *fail_all = xcalloc(n + 1, sizeof(*fail_all));
	unsigned *ok = xcalloc(n + 1, sizeof(*ok));
	size_t n_fail = 0, n_fail_all = 0, n_ok = 0, n_held = 0;
	bool null_sender = m->sender == NULL || *m->sender == '\0';
	bool dbl = sender_is_double_bounce(&q->s, m->sender);
	int ret = 0;

	for (size_t i = 0; i < n && i < msg->rs_cap; i++) {
		const struct qmgr_rcpt_state *rs = &msg->rs[i];
		if (!rs->is_held)
			continue;
		n_held++;
		if (rs->held_status == QRCPT_BOUNCED) {
			fail_all[n_fail_all++] = (unsigned)i;
			if (!null_sender && !dbl && dsn_notify_wants(m->rcpts[i].notify,
								   DSN_REPORT_FAILURE))
				fail[n_fail++] = (unsigned)i;
		} else {
			ok[n_ok++] = (unsigned)i;
		}
	}
	if (n_held == 0)
		goto out;

	char *db = double_bounce_address(&q->s);
	if (n_fail_all > 0 && dbl) {
		log_warning("%s: undeliverable postmaster notification discarded", msg->id);
	} else if (n_fail_all > 0 && null_sender) {
		/* A failed report (or other mail from <>): a double bounce. */
		if (q->s.notify_2bounce) {
			const char *pm = q->s.double_bounce_recipient != NULL &&
						 *q->s.double_bounce_recipient != '\0'
					 ? q->s.double_bounce_recipient
					 : "postmaster";
			char *to = addr_qualify(pm, s_origin(&q->s));
			ret = report_send(q, msg, DSN_REPORT_POSTMASTER, fail_all, n_fail_all, to, db);
			free(to);
		}
	} else if (n_fail_all > 0) {
		if (n_fail > 0)
			ret = report_send(q, msg, DSN_REPORT_FAILURE, fail, n_fail, m->sender, "");
		if (ret == 0 && q->s.notify_bounce) {
			const char *pm = q->s.bounce_notice_recipient != NULL &&
						 *q->s.bounce_notice_recipient != '\0'
					 ? q->s.bounce_notice_recipient
					 : "postmaster";
			char *to = addr_qualify(pm, s_origin(&q->s));
			/* Not critical (as Postfix): a failure is only logged. */
			(void)report_send(q, msg, DSN_REPORT_POSTMASTER, fail_all, n_fail_all, to, db);
			free(to);
		}
	}
	free(db);
	if (ret == 0 && n_ok > 0)
		ret = report_send(q, msg, DSN_REPORT_SUCCESS, ok, n_ok, m->sender, "");
	/* Reports durable, recipients still pending in the file: a crash here
	 * sends the reports again after the restart (at-least-once). */
	qfile_crash_point("qmgr-after-report");

	for (size_t i = 0; i < n && i < msg->rs_cap; i++) {
		struct qmgr_rcpt_state *rs = &msg->rs[i];
		if (!rs->is_held)
			continue;
		rs->is_held = false;
		rs->is_held_relayed = false;
		if (ret < 0) {
			replace_str(&rs->defer_dsn, "4.3.0");
			replace_str(&rs->defer_reason, "delivery status report not written");
			replace_str(&msg->last_reason, "delivery status report not written");
			continue;
		}
		if (msg->io_error)
			continue;
		if (qfile_append_done(msg->fd, m, (unsigned)i, rs->held_status, rs->held_dsn,
				      rs->held_text) < 0) {
			append_failed(msg, (unsigned)i);
			ret = -1;
		}
	}
out:
	free(fail);
	free(fail_all);
	free(ok);
	return ret;
}

/* Postfix sends a delay warning once, when a message is deferred and has
 * waited longer than delay_warning_time, to a sender that is not the
 * null sender, for the recipients whose NOTIFY asks for it. */
static void message_delay_warning(struct qmgr *q, struct qmgr_message *msg)
{
	struct qfile_msg *m = msg->qm;
	if (!qmgr_retry_delay_warning_due(&q->s, m->sender, m->arrival_sec, m->delay_warned,
					  qmgr_now(q)) ||
	    sender_is_double_bounce(&q->s, m->sender) || msg->io_error)
		return;
	unsigned *idx = xcalloc(m->n_rcpts + 1, sizeof(*idx));
	size_t n = 0;
	for (size_t i = 0; i < m->n_rcpts; i++) {
		if (m->rcpts[i].status == QRCPT_PENDING &&
		    !(i < msg->rs_cap && msg->rs[i].is_held) &&
		    dsn_notify_wants(m->rcpts[i].notify, DSN_REPORT_DELAY))
			idx[n++] = (unsigned)i;
	}
	/* Crash between the report's commit and the Y record: the warning is
	 * sent again at the next deferral (at-least-once). */
	if (n > 0 && report_send(q, msg, DSN_REPORT_DELAY, idx, n, m->sender, "") == 0 &&
	    qfile_append_notice(msg->fd, m, "delay") < 0)
		log_error("%s: update queue file: %s", msg->id, strerror(errno));
	free(idx);
}

/* How many expansions lie between rcpt and an original recipient. */
static unsigned rcpt_depth(const struct qfile_msg *m, unsigned rcpt)
{
	unsigned depth = 0;
	int p = m->rcpts[rcpt].parent;
	while (p >= 0 && depth <= m->n_rcpts) {
		depth++;
		p = m->rcpts[p].parent;
	}
	return depth;
}

/* NOTIFY for the recipients an expansion adds.  RFC 3461 6.2.7.3 / Postfix:
 * the expanded address reports "expanded" itself when SUCCESS was asked,
 * so its children do not report success again (NEVER when nothing is
 * left).  New string or NULL. */
static char *child_notify(const char *notify)
{
	if (notify == NULL)
		return NULL;
	if (!dsn_notify_wants(notify, DSN_REPORT_SUCCESS))
		return xstrdup(notify);
	struct buf b = BUF_INIT;
	const char *p = notify;
	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		if (n > 0 && !(n == 7 && strncasecmp(p, "SUCCESS", 7) == 0)) {
			if (b.len > 0)
				buf_append_char(&b, ',');
			buf_append(&b, p, n);
		}
		p += n;
		if (*p == ',')
			p++;
	}
	if (b.len == 0)
		buf_append_str(&b, "NEVER");
	return buf_steal(&b);
}

/* Add the forward addresses as new recipients, children of rcpt.
 * Returns 0, 1 when rcpt was bounced instead (loop or too many), -1 on
 * a write error. */
static int add_forwards(struct qmgr *q, struct qmgr_message *msg, unsigned rcpt,
			char *const *forwards, size_t n_forwards)
{
	struct qfile_msg *m = msg->qm;
	if (rcpt_depth(m, rcpt) + 1 > QMGR_EXPAND_DEPTH_MAX ||
	    m->n_rcpts + n_forwards > QMGR_EXPAND_RCPT_MAX) {
		struct buf why = BUF_INIT;
		const char *dsn = "5.4.6";
		if (m->n_rcpts + n_forwards > QMGR_EXPAND_RCPT_MAX) {
			dsn = "5.3.4";
			buf_printf(&why, "too many recipients after expansion of %s",
				   m->rcpts[rcpt].address);
		} else {
			buf_printf(&why, "mail forwarding loop for %s", m->rcpts[rcpt].address);
		}
		int ret = qfile_append_done(msg->fd, m, rcpt, QRCPT_BOUNCED, dsn, buf_cstr(&why));
		if (ret == 0)
			qmgr_message_log_rcpt(msg, rcpt, dsn, "bounced", buf_cstr(&why));
		buf_deinit(&why);
		return ret < 0 ? -1 : 1;
	}
	/* Copies: appending reallocates m->rcpts. */
	const struct qfile_rcpt *pr = &m->rcpts[rcpt];
	char *orig_to = xstrdup(pr->orig_to != NULL ? pr->orig_to : pr->address);
	char *orcpt = pr->orcpt != NULL ? xstrdup(pr->orcpt) : NULL;
	char *notify = child_notify(pr->notify);
	size_t first = m->n_rcpts;
	int ret = 0;
	for (size_t i = 0; i < n_forwards; i++) {
		struct qfile_rcpt_in in = { forwards[i], orcpt, notify, orig_to };
		if (qfile_append_rcpt(msg->fd, m, rcpt, &in) < 0) {
			ret = -1;
			break;
		}
	}
	free(orig_to);
	free(orcpt);
	free(notify);
	rs_ensure(msg);
	/* Children that made it to disk are delivered in this pass too. */
	for (size_t i = first; i < m->n_rcpts; i++)
		route_rcpt(q, msg, (unsigned)i);
	return ret;
}

void qmgr_message_result(struct qmgr *q, struct qmgr_message *msg, unsigned rcpt,
			 enum qmgr_result result, const char *dsn, const char *text,
			 char *const *forwards, size_t n_forwards)
{
	enum qfile_rcpt_status st;

	switch (result) {
	case QMGR_RESULT_DEFERRED:
		replace_str(&msg->rs[rcpt].defer_dsn, dsn);
		replace_str(&msg->rs[rcpt].defer_reason, text);
		replace_str(&msg->last_reason, text);
		return;
	case QMGR_RESULT_BOUNCED:
		st = QRCPT_BOUNCED;
		break;
	case QMGR_RESULT_EXPANDED:
		st = QRCPT_EXPANDED;
		break;
	case QMGR_RESULT_RELAYED:
	case QMGR_RESULT_SENT:
	default:
		st = QRCPT_SENT;
		break;
	}
	if (n_forwards > 0 && st != QRCPT_BOUNCED) {
		int ret = add_forwards(q, msg, rcpt, forwards, n_forwards);
		if (ret < 0) {
			append_failed(msg, rcpt);
			return;
		}
		if (ret > 0)
			return; /* bounced as a loop */
	}
	/* A recipient that needs a report keeps its final state in memory
	 * until the report is committed (message_reports): the D record is
	 * the durable proof that the report exists. */
	if (rcpt_wants_hold(q, msg, rcpt, st, result == QMGR_RESULT_RELAYED)) {
		struct qmgr_rcpt_state *rs = &msg->rs[rcpt];
		rs->is_held = true;
		rs->held_status = st;
		rs->is_held_relayed = result == QMGR_RESULT_RELAYED;
		replace_str(&rs->held_dsn, dsn);
		replace_str(&rs->held_text, text);
		return;
	}
	/* The last pending recipient of a message that is removed next: no
	 * fsync (see qfile_append_done_nosync). */
	bool last = st != QRCPT_EXPANDED && qfile_msg_pending(msg->qm) == 1;
	int ret = last ? qfile_append_done_nosync(msg->fd, msg->qm, rcpt, st, dsn, text)
		       : qfile_append_done(msg->fd, msg->qm, rcpt, st, dsn, text);
	if (ret < 0)
		append_failed(msg, rcpt);
}

int qmgr_message_take(struct qmgr *q, const char *id, const char *from)
{
	struct buf path = BUF_INIT;
	const char *error = NULL;
	int fd;

	if (!queue_id_valid(id))
		return 0;
	queue_path(&path, q->s.queue_dir, QUEUE_ACTIVE, id);
	if (strcmp(from, QUEUE_ACTIVE) != 0 &&
	    queue_rename(q->s.queue_dir, id, from, QUEUE_ACTIVE) < 0) {
		int saved = errno;
		if (access(buf_cstr(&path), F_OK) < 0) {
			buf_deinit(&path);
			if (saved == ENOENT)
				return 0; /* taken by someone else, or deleted */
			log_error("%s: move %s/ to active/: %s", id, from, strerror(saved));
			return -1;
		}
		/* Renamed but a directory fsync failed: it is in active/ now. */
		log_warning("%s: move %s/ to active/: %s", id, from, strerror(saved));
	}
	qfile_crash_point("qmgr-after-take");
	fd = open(buf_cstr(&path), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int saved = errno;
		buf_deinit(&path);
		if (saved == ENOENT)
			return 0;
		log_error("%s: open %s/: %s", id, QUEUE_ACTIVE, strerror(saved));
		return -1;
	}
	buf_deinit(&path);
	/* One queue manager per file: after a reload the old one finishes
	 * its messages while the new one starts (role.h). */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int saved = errno;
		(void)close(fd);
		if (saved == EWOULDBLOCK)
			return 0;
		log_error("%s: lock queue file: %s", id, strerror(saved));
		return -1;
	}

	struct qfile_msg *qm = NULL;
	if (qfile_read(fd, &qm, &error) < 0) {
		(void)close(fd);
		if (queue_move(q->s.queue_dir, id, QUEUE_ACTIVE, QUEUE_CORRUPT) < 0)
			log_error("%s: corrupt queue file: %s; move to corrupt/ failed: %s", id,
				  error, strerror(errno));
		else
			log_warning("%s: corrupt queue file: %s; moved to corrupt/", id, error);
		return 0;
	}

	struct qmgr_message *msg = xcalloc(1, sizeof(*msg));
	(void)str_copy(msg->id, sizeof(msg->id), id);
	(void)str_copy(qm->id, sizeof(qm->id), id);
	msg->fd = fd;
	msg->qm = qm;
	msg->arrival.tv_sec = (time_t)qm->arrival_sec;
	msg->arrival.tv_usec = (suseconds_t)qm->arrival_usec;
	(void)gettimeofday(&msg->active_time, NULL);
	rs_ensure(msg);
	TAILQ_INSERT_TAIL(&q->active, msg, link);
	q->n_active++;

	unsigned nrcpt = 0;
	for (size_t i = 0; i < qm->n_rcpts; i++)
		nrcpt += qm->rcpts[i].parent < 0;
	struct buf line = BUF_INIT;
	mail_log_queue_active(&line, id, qm->sender, qm->content_size, nrcpt);
	log_info("%s", buf_cstr(&line));
	buf_deinit(&line);

	size_t n = qm->n_rcpts; /* routing may append (never here, but be exact) */
	for (size_t i = 0; i < n; i++) {
		if (qm->rcpts[i].status == QRCPT_PENDING)
			route_rcpt(q, msg, (unsigned)i);
	}
	if (msg->outstanding == 0)
		qmgr_message_idle(q, msg);
	qmgr_sched_run(q);
	return 1;
}

void qmgr_message_idle(struct qmgr *q, struct qmgr_message *msg)
{
	if (msg->is_finishing)
		return;
	msg->is_finishing = true;
	TAILQ_INSERT_TAIL(&q->finished, msg, finish_link);
	if (q->ev_finish != NULL)
		event_active(q->ev_finish, EV_TIMEOUT, 0);
}

/* Unlink the file of a message with no pending recipient. */
static int message_remove(struct qmgr *q, struct qmgr_message *msg)
{
	struct buf path = BUF_INIT;
	int ret = -1;
	qfile_crash_point("qmgr-before-remove");
	queue_path(&path, q->s.queue_dir, QUEUE_ACTIVE, msg->id);
	if (unlink(buf_cstr(&path)) < 0) {
		log_error("%s: remove %s: %s", msg->id, buf_cstr(&path), strerror(errno));
		goto out;
	}
	/* No directory fsync: every recipient's final state is already an
	 * fsync'd D record, so a file that a crash brings back has nothing
	 * pending and is simply removed again, without a delivery. */
	struct buf line = BUF_INIT;
	mail_log_removed(&line, msg->id);
	log_info("%s", buf_cstr(&line));
	buf_deinit(&line);
	ret = 0;
out:
	buf_deinit(&path);
	return ret;
}

/* The sender in a log line: control characters replaced (as mail_log.c). */
static void sanitized(struct buf *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		buf_append_char(out, (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p);
}

/* Postfix qmgr_active.c: when a message with deferred recipients has
 * outlived its lifetime it logs "from=<S>, status=expired, returned to
 * sender" and the deferred recipients become bounces.  Returns 0 when the
 * file was removed. */
static int message_expire(struct qmgr *q, struct qmgr_message *msg)
{
	struct qfile_msg *m = msg->qm;
	struct buf line = BUF_INIT;
	buf_printf(&line, "%s: from=<", msg->id);
	sanitized(&line, m->sender);
	buf_append_str(&line, ">, status=expired, returned to sender");
	log_info("%s", buf_cstr(&line));
	buf_deinit(&line);
	/* The pending recipients fail with their last deferral's status and
	 * reason (Postfix reports those; 4.4.7 "message expired" when this
	 * pass did not try them), through the same report path as bounces. */
	rs_ensure(msg);
	for (size_t i = 0; i < m->n_rcpts; i++) {
		struct qmgr_rcpt_state *rs = &msg->rs[i];
		if (m->rcpts[i].status != QRCPT_PENDING || rs->is_held)
			continue;
		rs->is_held = true;
		rs->held_status = QRCPT_BOUNCED;
		replace_str(&rs->held_dsn, rs->defer_dsn != NULL ? rs->defer_dsn : "4.4.7");
		replace_str(&rs->held_text,
			    rs->defer_reason != NULL ? rs->defer_reason : "message expired");
		/* Every outcome is logged: each recipient given up, with the
		 * reason the report gives. */
		qmgr_message_log_rcpt(msg, (unsigned)i, rs->held_dsn, "expired", rs->held_text);
	}
	if (message_reports(q, msg) < 0)
		return -1;
	return message_remove(q, msg);
}

static void message_defer(struct qmgr *q, struct qmgr_message *msg)
{
	struct qfile_msg *m = msg->qm;
	int64_t now = qmgr_now(q);
	unsigned attempts = m->attempts + 1;
	long delay = qmgr_retry_backoff(attempts, q->s.minimal_backoff_time,
					q->s.maximal_backoff_time);
	int64_t next = now + delay;
	const char *reason = msg->last_reason != NULL ? msg->last_reason : "delivery deferred";

	message_delay_warning(q, msg);
	if (qfile_append_retry(msg->fd, m, next, attempts, reason) < 0)
		log_error("%s: update queue file: %s", msg->id, strerror(errno));
	/* The mtime says when the message is due (a hint for scans; the W
	 * record stays the truth), as Postfix's deferred queue does. */
	struct timespec ts[2] = { { .tv_sec = (time_t)now }, { .tv_sec = (time_t)next } };
	if (futimens(msg->fd, ts) < 0)
		log_warning("%s: set queue file time: %s", msg->id, strerror(errno));
	qfile_crash_point("qmgr-before-defer-move");
	/* Moved while still locked: no other queue manager can take it from
	 * active/ in between. */
	if (queue_rename(q->s.queue_dir, msg->id, QUEUE_ACTIVE, QUEUE_DEFERRED) < 0)
		log_error("%s: move active/ to deferred/: %s", msg->id, strerror(errno));
}

static void message_finish(struct qmgr *q, struct qmgr_message *msg)
{
	struct qfile_msg *m = msg->qm;
	/* Reports for this pass's bounces (and success notices) go out now,
	 * before the file is removed or deferred (Postfix flushes its bounce
	 * log at the end of each pass too). */
	(void)message_reports(q, msg);
	if (qfile_msg_pending(m) == 0) {
		(void)message_remove(q, msg);
	} else if (!msg->io_error &&
		   qmgr_retry_expired(&q->s, m->sender, m->arrival_sec, qmgr_now(q))) {
		if (message_expire(q, msg) < 0)
			message_defer(q, msg);
	} else {
		message_defer(q, msg);
	}
	TAILQ_REMOVE(&q->active, msg, link);
	q->n_active--;
	message_free(&msg);
	qmgr_scan_released(q);
}

void qmgr_message_finish_all(struct qmgr *q)
{
	struct qmgr_message *msg;
	while ((msg = TAILQ_FIRST(&q->finished)) != NULL) {
		TAILQ_REMOVE(&q->finished, msg, finish_link);
		message_finish(q, msg);
	}
}

/* Drop every active message from memory without touching its file
 * (SIGTERM, tests): the files stay in active/ and are taken again at the
 * next start. */
void qmgr_message_forget_all(struct qmgr *q)
{
	struct qmgr_message *msg;
	while ((msg = TAILQ_FIRST(&q->finished)) != NULL)
		TAILQ_REMOVE(&q->finished, msg, finish_link);
	while ((msg = TAILQ_FIRST(&q->active)) != NULL) {
		TAILQ_REMOVE(&q->active, msg, link);
		q->n_active--;
		message_free(&msg);
	}
}
