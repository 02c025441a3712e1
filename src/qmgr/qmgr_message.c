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
 *            carries the reason).
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
#include "mail/mail_log.h"
#include "mail/queue.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
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
	char *notify = pr->notify != NULL ? xstrdup(pr->notify) : NULL;
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
	/* TODO(#outbound): a bounced recipient (and an expired message)
	 * gets its non-delivery notification before the file goes. */
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
	for (size_t i = 0; i < m->n_rcpts; i++) {
		if (m->rcpts[i].status != QRCPT_PENDING)
			continue;
		const char *dsn = msg->rs[i].defer_dsn != NULL ? msg->rs[i].defer_dsn : "4.4.7";
		const char *why = msg->rs[i].defer_reason != NULL ? msg->rs[i].defer_reason
								   : "message expired";
		if (qfile_append_done(msg->fd, m, (unsigned)i, QRCPT_BOUNCED, dsn, why) < 0) {
			log_error("%s: update queue file: %s", msg->id, strerror(errno));
			return -1;
		}
	}
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
