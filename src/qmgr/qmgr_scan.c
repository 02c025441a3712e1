/* qmgr_scan.c - the queue manager object, queue directory scans and the
 * active window.
 *
 * The window holds at most qmgr_message_active_limit messages.  It is
 * filled from incoming/ in arrival order (mtime, then name) and from the
 * part of deferred/ that is due (mtime = next attempt, set when the
 * message was deferred); the two take turns to go first so that neither
 * starves the other.  Scans are plain readdir+stat and run when asked
 * (wake-up line, 1 s tick for incoming/, queue_run_delay tick for
 * deferred/) and a slot is free; the flags stay set while a scan left
 * candidates behind, so the next free slot continues it.
 *
 * A flush ("F") snapshots the names in deferred/ and takes them whatever
 * their time; a snapshot, not a flag, so that a message that fails again
 * during the flush is not taken a second time.
 *
 * Recovery at start takes every file of active/ (left by a crash or a
 * killed predecessor); a file another queue manager still holds (flock,
 * during a reload) is skipped and looked at again at the next deferred
 * tick.
 */
#include "qmgr/qmgr.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "mail/queue.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct scan_item {
	char *name;
	int64_t mtime_ns;
};

static int scan_item_cmp(const void *a, const void *b)
{
	const struct scan_item *x = a, *y = b;
	if (x->mtime_ns != y->mtime_ns)
		return x->mtime_ns < y->mtime_ns ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* List the queue ids in QDIR/sub.  due_before >= 0: only files whose mtime
 * is not later (deferred/).  Sorted by mtime, then name. */
static size_t scan_list(struct qmgr *q, const char *sub, int64_t due_before,
			struct scan_item **items_r)
{
	struct buf dir = BUF_INIT;
	struct scan_item *items = NULL;
	size_t n = 0;

	buf_printf(&dir, "%s/%s", q->s.queue_dir, sub);
	DIR *d = opendir(buf_cstr(&dir));
	if (d == NULL) {
		log_error("open %s: %s", buf_cstr(&dir), strerror(errno));
		buf_deinit(&dir);
		*items_r = NULL;
		return 0;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		if (de->d_name[0] == '.' || !queue_id_valid(de->d_name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (due_before >= 0 && (int64_t)st.st_mtim.tv_sec > due_before)
			continue;
		items = xreallocarray(items, n + 1, sizeof(*items));
		items[n].name = xstrdup(de->d_name);
		items[n].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		n++;
	}
	(void)closedir(d);
	buf_deinit(&dir);
	if (n > 1)
		qsort(items, n, sizeof(*items), scan_item_cmp);
	*items_r = items;
	return n;
}

static void scan_items_free(struct scan_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(items[i].name);
	free(items);
}

static unsigned window_room(const struct qmgr *q)
{
	return q->n_active >= q->s.message_active_limit ? 0
							: q->s.message_active_limit - q->n_active;
}

/* Take candidates from sub while there is room; returns true when some
 * were left behind. */
static bool scan_take(struct qmgr *q, const char *sub, int64_t due_before)
{
	struct scan_item *items;
	size_t n = scan_list(q, sub, due_before, &items), i;
	for (i = 0; i < n && window_room(q) > 0 && !q->is_draining; i++)
		(void)qmgr_message_take(q, items[i].name, sub);
	scan_items_free(items, n);
	return i < n;
}

static void scan_incoming(struct qmgr *q)
{
	if (!q->want_incoming || window_room(q) == 0)
		return;
	q->want_incoming = false;
	if (scan_take(q, QUEUE_INCOMING, -1))
		q->want_incoming = true;
}

static void flush_clear(struct qmgr *q)
{
	for (size_t i = 0; i < q->n_flush; i++)
		free(q->flush_ids[i]);
	free(q->flush_ids);
	q->flush_ids = NULL;
	q->n_flush = q->flush_pos = 0;
}

static void scan_deferred(struct qmgr *q)
{
	while (q->flush_pos < q->n_flush && window_room(q) > 0 && !q->is_draining)
		(void)qmgr_message_take(q, q->flush_ids[q->flush_pos++], QUEUE_DEFERRED);
	if (q->flush_pos >= q->n_flush)
		flush_clear(q);
	if (!q->want_deferred || window_room(q) == 0)
		return;
	q->want_deferred = false;
	if (scan_take(q, QUEUE_DEFERRED, qmgr_now(q)))
		q->want_deferred = true;
}

void qmgr_scan_refill(struct qmgr *q)
{
	if (q->is_draining)
		return;
	if (q->deferred_first) {
		scan_deferred(q);
		scan_incoming(q);
	} else {
		scan_incoming(q);
		scan_deferred(q);
	}
	q->deferred_first = !q->deferred_first;
}

void qmgr_scan_want(struct qmgr *q, bool incoming, bool deferred)
{
	q->want_incoming |= incoming;
	q->want_deferred |= deferred;
	if (q->ev_refill != NULL)
		event_active(q->ev_refill, EV_TIMEOUT, 0);
}

void qmgr_scan_flush(struct qmgr *q)
{
	struct scan_item *items;
	size_t n = scan_list(q, QUEUE_DEFERRED, -1, &items);
	flush_clear(q);
	q->flush_ids = xreallocarray(NULL, n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		q->flush_ids[i] = items[i].name; /* ownership moves */
	free(items);
	q->n_flush = n;
	qmgr_scan_want(q, true, true);
}

/* Files in active/ that no queue manager holds (a crashed one's, or one
 * whose move to deferred/ failed). */
static void scan_active_orphans(struct qmgr *q)
{
	struct scan_item *items;
	size_t n = scan_list(q, QUEUE_ACTIVE, -1, &items);
	for (size_t i = 0; i < n && !q->is_draining; i++)
		(void)qmgr_message_take(q, items[i].name, QUEUE_ACTIVE);
	scan_items_free(items, n);
}

void qmgr_scan_recover(struct qmgr *q)
{
	scan_active_orphans(q);
	q->want_incoming = q->want_deferred = true;
	qmgr_scan_refill(q);
}

void qmgr_scan_periodic(struct qmgr *q)
{
	if (q->is_draining)
		return;
	scan_active_orphans(q);
	qmgr_scan_want(q, true, true);
}

void qmgr_scan_released(struct qmgr *q)
{
	if (q->is_draining) {
		if (q->n_active == 0 && q->base != NULL)
			event_base_loopexit(q->base, NULL);
		return;
	}
	if ((q->want_incoming || q->want_deferred || q->n_flush > 0) && q->ev_refill != NULL)
		event_active(q->ev_refill, EV_TIMEOUT, 0);
}

int64_t qmgr_now(const struct qmgr *q)
{
	return q->now != NULL ? q->now() : (int64_t)time(NULL);
}

static void on_finish(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd;
	(void)what;
	qmgr_message_finish_all(ctx);
}

static void on_refill(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd;
	(void)what;
	qmgr_scan_refill(ctx);
}

struct qmgr *qmgr_new(const struct qmgr_settings *s, struct event_base *base,
		      const char *local_socket)
{
	struct qmgr *q = xcalloc(1, sizeof(*q));
	q->s = *s;
	q->s.queue_dir = xstrdup(s->queue_dir);
	if (q->s.message_active_limit == 0)
		q->s.message_active_limit = 1;
	if (q->s.process_limit == 0)
		q->s.process_limit = 1;
	if (q->s.local_concurrency == 0)
		q->s.local_concurrency = 1;
	if (q->s.virtual_concurrency == 0)
		q->s.virtual_concurrency = 1;
	q->base = base;
	TAILQ_INIT(&q->active);
	TAILQ_INIT(&q->finished);
	q->ev_finish = event_new(base, -1, 0, on_finish, q);
	q->ev_refill = event_new(base, -1, 0, on_refill, q);
	if (q->ev_finish == NULL || q->ev_refill == NULL)
		mem_fail("event_new");
	qmgr_sched_init(q);
	q->local = qmgr_local_new(q, local_socket);
	return q;
}

void qmgr_free(struct qmgr **qp)
{
	struct qmgr *q = *qp;
	if (q == NULL)
		return;
	qmgr_local_free(&q->local);
	qmgr_sched_deinit(q);
	qmgr_message_forget_all(q);
	flush_clear(q);
	event_free(q->ev_finish);
	event_free(q->ev_refill);
	free((char *)q->s.queue_dir);
	free(q);
	*qp = NULL;
}
