/* qmgr_local.c - the queue manager's side of the delivery protocol with the
 * local delivery agent (protocol in mail/dlv.h).
 *
 * One SOCK_SEQPACKET connection to QDIR/private/local carries every
 * request; replies come back in any order and are matched by their req
 * number.  Requests wait in outq until written (the socket may be full or
 * not connected yet) and then in `sent` until their reply.
 *
 * Failures: when connecting fails we retry with a backoff from 100 ms to
 * 5 s; deliveries keep waiting for QMGR_LOCAL_HOLD_MAX seconds of outage
 * (the master may be (re)starting the agent) and are then deferred.  When
 * the connection breaks, or the agent sends a malformed reply (the peer is
 * then dropped: its data is input, not truth), every request written and
 * not answered is deferred with "local delivery agent unavailable"; the
 * agent may have delivered some of them, which the next attempt repeats
 * (at-least-once).
 */
#include "qmgr/qmgr.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/dlv.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- encoding and decoding ---- */

static void put_field(struct buf *out, const char *key, const char *value)
{
	if (out->len > 0)
		buf_append_char(out, '\n');
	buf_append_str(out, key);
	buf_append_char(out, '=');
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++)
		buf_append_char(out, (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p);
}

int qmgr_dlv_request_encode(struct buf *out, const struct qmgr_dlv_request *r,
			    const char **error_r)
{
	char num[32];
	buf_reset(out);
	(void)snprintf(num, sizeof(num), "%" PRIu64, r->req);
	put_field(out, "req", num);
	put_field(out, "queue_id", r->queue_id);
	(void)snprintf(num, sizeof(num), "%u", r->rcpt);
	put_field(out, "rcpt", num);
	put_field(out, "address", r->address);
	if (r->orig_to != NULL && *r->orig_to != '\0')
		put_field(out, "orig_to", r->orig_to);
	put_field(out, "class", r->class_name);
	if (out->len > DLV_MAX_PACKET) {
		*error_r = "request too long";
		return -1;
	}
	return 0;
}

/* RFC 3463 section 2: class "." subject "." detail, class 2, 4 or 5,
 * subject and detail 1-3 digits. */
static bool dsn_valid(struct strv v)
{
	size_t i = 0, digits;
	if (v.len < 5 || (v.ptr[0] != '2' && v.ptr[0] != '4' && v.ptr[0] != '5') || v.ptr[1] != '.')
		return false;
	i = 2;
	for (int part = 0; part < 2; part++) {
		for (digits = 0; i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9'; i++)
			digits++;
		if (digits < 1 || digits > 3)
			return false;
		if (part == 0) {
			if (i >= v.len || v.ptr[i] != '.')
				return false;
			i++;
		}
	}
	return i == v.len;
}

static bool has_ctl(struct strv v)
{
	for (size_t i = 0; i < v.len; i++) {
		unsigned char c = (unsigned char)v.ptr[i];
		if (c < 0x20 || c == 0x7f)
			return true;
	}
	return false;
}

void qmgr_dlv_reply_clear(struct qmgr_dlv_reply *r)
{
	free(r->dsn);
	free(r->text);
	for (size_t i = 0; i < r->n_forwards; i++)
		free(r->forwards[i]);
	free(r->forwards);
	memset(r, 0, sizeof(*r));
}

int qmgr_dlv_reply_decode(const uint8_t *data, size_t len, struct qmgr_dlv_reply *r,
			  const char **error_r)
{
	const char *p = (const char *)data, *end = p + len;
	bool seen_req = false, seen_status = false;

	memset(r, 0, sizeof(*r));
	if (len > DLV_MAX_PACKET) {
		*error_r = "reply too long";
		return -1;
	}
	if (len == 0 || memchr(data, '\0', len) != NULL) {
		*error_r = "empty reply or NUL in reply";
		return -1;
	}
	/* One optional final '\n'. */
	if (end[-1] == '\n')
		end--;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl != NULL ? nl : end;
		const char *eq = memchr(p, '=', (size_t)(eol - p));
		if (eq == NULL || eq == p) {
			*error_r = "reply line without key=value";
			goto fail;
		}
		struct strv key = strv_make(p, (size_t)(eq - p));
		struct strv val = strv_make(eq + 1, (size_t)(eol - eq - 1));
		if (strv_eq(key, "req")) {
			char *s = strv_dup(val);
			int bad = seen_req || str_to_u64(s, 0, UINT64_MAX, &r->req) < 0;
			free(s);
			if (bad) {
				*error_r = "bad or repeated req";
				goto fail;
			}
			seen_req = true;
		} else if (strv_eq(key, "status")) {
			if (seen_status) {
				*error_r = "repeated status";
				goto fail;
			}
			if (strv_eq(val, "sent"))
				r->status = QMGR_DLV_SENT;
			else if (strv_eq(val, "deferred"))
				r->status = QMGR_DLV_DEFERRED;
			else if (strv_eq(val, "bounced"))
				r->status = QMGR_DLV_BOUNCED;
			else if (strv_eq(val, "expanded"))
				r->status = QMGR_DLV_EXPANDED;
			else {
				*error_r = "unknown status";
				goto fail;
			}
			seen_status = true;
		} else if (strv_eq(key, "dsn")) {
			if (r->dsn != NULL || !dsn_valid(val)) {
				*error_r = "bad or repeated dsn";
				goto fail;
			}
			r->dsn = strv_dup(val);
		} else if (strv_eq(key, "text")) {
			if (r->text != NULL) {
				*error_r = "repeated text";
				goto fail;
			}
			r->text = strv_dup(val);
			for (char *c = r->text; *c != '\0'; c++) {
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					*c = '?';
			}
		} else if (strv_eq(key, "forward")) {
			if (val.len == 0 || val.len > 1000 || has_ctl(val)) {
				*error_r = "bad forward address";
				goto fail;
			}
			if (r->n_forwards >= QMGR_DLV_MAX_FORWARDS) {
				*error_r = "too many forward addresses";
				goto fail;
			}
			r->forwards = xreallocarray(r->forwards, r->n_forwards + 1,
						    sizeof(*r->forwards));
			r->forwards[r->n_forwards++] = strv_dup(val);
		}
		/* Other keys: ignored, so that a newer agent can add some. */
		p = nl != NULL ? nl + 1 : end;
		if (nl != NULL && p == end) {
			*error_r = "empty reply line";
			goto fail;
		}
	}
	if (!seen_req || !seen_status || r->dsn == NULL) {
		*error_r = "reply without req, status or dsn";
		goto fail;
	}
	if (r->n_forwards > 0 && r->status != QMGR_DLV_SENT && r->status != QMGR_DLV_EXPANDED) {
		*error_r = "forward addresses with a status other than sent or expanded";
		goto fail;
	}
	if (r->status == QMGR_DLV_EXPANDED && r->n_forwards == 0) {
		/* Accepting it would mark the recipient done with nowhere
		 * for its mail to go. */
		*error_r = "expanded without forward addresses";
		goto fail;
	}
	if (r->text == NULL)
		r->text = xstrdup("");
	return 0;
fail:
	qmgr_dlv_reply_clear(r);
	return -1;
}

/* ---- connection ---- */

struct qmgr_local {
	struct qmgr *q;
	char *path; /* NULL: only qmgr_local_attach() */
	int fd;
	struct event *ev_read;
	struct event *ev_write;
	struct event *ev_retry;
	struct qmgr_entry_list outq;
	struct qmgr_entry_list sent;
	uint64_t next_req;
	long retry_ms;
	int64_t down_since; /* 0: connected or never tried */
	bool in_flush;
	bool warned_down;
	uint8_t *rbuf;
};

static void local_flush(struct qmgr_local *l);
static void local_connect(struct qmgr_local *l);

static void local_fail_list(struct qmgr_local *l, struct qmgr_entry_list *list,
			    const char *why)
{
	struct qmgr_entry *e;
	/* Take the whole list first: completions may queue new requests. */
	struct qmgr_entry_list tmp;
	TAILQ_INIT(&tmp);
	TAILQ_CONCAT(&tmp, list, agent_link);
	while ((e = TAILQ_FIRST(&tmp)) != NULL) {
		TAILQ_REMOVE(&tmp, e, agent_link);
		qmgr_entry_done(l->q, e, QMGR_RESULT_DEFERRED, "4.3.0", why, NULL, 0);
	}
}

static void local_schedule_retry(struct qmgr_local *l)
{
	if (l->path == NULL || event_pending(l->ev_retry, EV_TIMEOUT, NULL))
		return;
	struct timeval tv = { l->retry_ms / 1000, (l->retry_ms % 1000) * 1000 };
	evtimer_add(l->ev_retry, &tv);
	l->retry_ms = l->retry_ms * 2 > 5000 ? 5000 : l->retry_ms * 2;
}

static void local_down(struct qmgr_local *l)
{
	if (l->down_since == 0)
		l->down_since = qmgr_now(l->q);
	/* Deliveries have waited long enough: defer them. */
	if (qmgr_now(l->q) - l->down_since >= QMGR_LOCAL_HOLD_MAX && !TAILQ_EMPTY(&l->outq))
		local_fail_list(l, &l->outq, QMGR_REASON_LOCAL_DOWN);
	if (!TAILQ_EMPTY(&l->outq))
		local_schedule_retry(l);
}

static void local_broken(struct qmgr_local *l, const char *why)
{
	log_warning("local delivery agent connection: %s", why);
	event_del(l->ev_read);
	event_del(l->ev_write);
	if (l->fd >= 0 && close(l->fd) < 0)
		log_warning("close local delivery agent socket: %s", strerror(errno));
	l->fd = -1;
	l->retry_ms = 100;
	l->down_since = qmgr_now(l->q);
	local_fail_list(l, &l->sent, QMGR_REASON_LOCAL_DOWN);
	local_down(l);
}

static void local_handle_reply(struct qmgr_local *l, const uint8_t *data, size_t len)
{
	struct qmgr_dlv_reply r;
	const char *error;
	struct qmgr_entry *e;

	if (qmgr_dlv_reply_decode(data, len, &r, &error) < 0) {
		struct buf why = BUF_INIT;
		buf_printf(&why, "malformed reply: %s", error);
		local_broken(l, buf_cstr(&why));
		buf_deinit(&why);
		return;
	}
	for (e = TAILQ_FIRST(&l->sent); e != NULL && e->req != r.req;
	     e = TAILQ_NEXT(e, agent_link))
		;
	if (e == NULL) {
		qmgr_dlv_reply_clear(&r);
		local_broken(l, "reply to an unknown request");
		return;
	}
	TAILQ_REMOVE(&l->sent, e, agent_link);
	enum qmgr_result result = QMGR_RESULT_DEFERRED;
	switch (r.status) {
	case QMGR_DLV_SENT: result = QMGR_RESULT_SENT; break;
	case QMGR_DLV_DEFERRED: result = QMGR_RESULT_DEFERRED; break;
	case QMGR_DLV_BOUNCED: result = QMGR_RESULT_BOUNCED; break;
	case QMGR_DLV_EXPANDED: result = QMGR_RESULT_EXPANDED; break;
	}
	qmgr_entry_done(l->q, e, result, r.dsn, r.text, r.forwards, r.n_forwards);
	qmgr_dlv_reply_clear(&r);
}

static void local_on_read(evutil_socket_t fd, short what, void *ctx)
{
	struct qmgr_local *l = ctx;
	(void)what;
	while (l->fd == fd) {
		struct iovec iov = { l->rbuf, DLV_MAX_PACKET + 1 };
		struct msghdr mh;
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			local_broken(l, strerror(errno));
			return;
		}
		if (n == 0) {
			local_broken(l, "closed by the agent");
			return;
		}
		if ((mh.msg_flags & MSG_TRUNC) != 0 || (size_t)n > DLV_MAX_PACKET) {
			local_broken(l, "malformed reply: reply too long");
			return;
		}
		local_handle_reply(l, l->rbuf, (size_t)n);
	}
}

static void local_on_write(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd;
	(void)what;
	local_flush(ctx);
}

static void local_on_retry(evutil_socket_t fd, short what, void *ctx)
{
	struct qmgr_local *l = ctx;
	(void)fd;
	(void)what;
	if (l->fd < 0)
		local_connect(l);
}

static void local_connected(struct qmgr_local *l, int fd)
{
	l->fd = fd;
	if (l->down_since != 0 && l->warned_down)
		log_info("connected to the local delivery agent");
	l->down_since = 0;
	l->warned_down = false;
	l->retry_ms = 100;
	event_del(l->ev_read);
	event_del(l->ev_write);
	event_assign(l->ev_read, l->q->base, fd, EV_READ | EV_PERSIST, local_on_read, l);
	event_assign(l->ev_write, l->q->base, fd, EV_WRITE, local_on_write, l);
	event_add(l->ev_read, NULL);
	local_flush(l);
}

static void local_connect(struct qmgr_local *l)
{
	struct sockaddr_un sun;
	if (l->path == NULL) {
		local_down(l);
		return;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (!str_copy(sun.sun_path, sizeof(sun.sun_path), l->path))
		log_fatal("local delivery agent socket path too long: %s", l->path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warning("socket: %s", strerror(errno));
		local_down(l);
		return;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int saved = errno;
		(void)close(fd);
		/* Say it once per outage, not at every retry. */
		if (!l->warned_down && l->down_since != 0 &&
		    qmgr_now(l->q) - l->down_since >= 2) {
			log_warning("connect to local delivery agent %s: %s", l->path,
				    strerror(saved));
			l->warned_down = true;
		}
		local_down(l);
		return;
	}
	local_connected(l, fd);
}

static void local_flush(struct qmgr_local *l)
{
	struct buf pkt = BUF_INIT;
	struct qmgr_entry *e;

	if (l->in_flush)
		return;
	l->in_flush = true;
	while (l->fd >= 0 && (e = TAILQ_FIRST(&l->outq)) != NULL) {
		const struct qfile_rcpt *r = &e->msg->qm->rcpts[e->rcpt];
		struct qmgr_dlv_request req = { e->req, e->msg->id, e->rcpt, r->address,
						r->orig_to, qmgr_class_name(e->cls) };
		const char *error;
		if (qmgr_dlv_request_encode(&pkt, &req, &error) < 0) {
			TAILQ_REMOVE(&l->outq, e, agent_link);
			qmgr_message_log_rcpt(e->msg, e->rcpt, "5.1.3", "bounced",
					      "recipient address too long");
			qmgr_entry_done(l->q, e, QMGR_RESULT_BOUNCED, "5.1.3",
					"recipient address too long", NULL, 0);
			continue;
		}
		ssize_t n = send(l->fd, pkt.data, pkt.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			event_add(l->ev_write, NULL);
			break;
		}
		if (n != (ssize_t)pkt.len) {
			l->in_flush = false;
			buf_deinit(&pkt);
			local_broken(l, n < 0 ? strerror(errno) : "short send");
			return;
		}
		TAILQ_REMOVE(&l->outq, e, agent_link);
		e->is_sent = true;
		TAILQ_INSERT_TAIL(&l->sent, e, agent_link);
	}
	l->in_flush = false;
	buf_deinit(&pkt);
}

void qmgr_local_deliver(struct qmgr *q, struct qmgr_entry *e)
{
	struct qmgr_local *l = q->local;
	e->req = ++l->next_req;
	e->is_sent = false;
	TAILQ_INSERT_TAIL(&l->outq, e, agent_link);
	if (l->fd >= 0) {
		local_flush(l);
		return;
	}
	if (l->down_since != 0 && qmgr_now(q) - l->down_since >= QMGR_LOCAL_HOLD_MAX) {
		TAILQ_REMOVE(&l->outq, e, agent_link);
		qmgr_entry_done(q, e, QMGR_RESULT_DEFERRED, "4.3.0", QMGR_REASON_LOCAL_DOWN,
				NULL, 0);
		local_schedule_retry(l);
		return;
	}
	if (!event_pending(l->ev_retry, EV_TIMEOUT, NULL))
		local_connect(l);
}

struct qmgr_local *qmgr_local_new(struct qmgr *q, const char *socket_path)
{
	struct qmgr_local *l = xcalloc(1, sizeof(*l));
	l->q = q;
	l->path = socket_path != NULL ? xstrdup(socket_path) : NULL;
	l->fd = -1;
	l->retry_ms = 100;
	TAILQ_INIT(&l->outq);
	TAILQ_INIT(&l->sent);
	l->rbuf = xmalloc(DLV_MAX_PACKET + 1);
	l->ev_read = event_new(q->base, -1, 0, local_on_read, l);
	l->ev_write = event_new(q->base, -1, 0, local_on_write, l);
	l->ev_retry = evtimer_new(q->base, local_on_retry, l);
	if (l->ev_read == NULL || l->ev_write == NULL || l->ev_retry == NULL)
		mem_fail("event_new");
	return l;
}

void qmgr_local_attach(struct qmgr_local *l, int fd)
{
	if (l->fd >= 0)
		(void)close(l->fd);
	local_connected(l, fd);
}

void qmgr_local_free(struct qmgr_local **lp)
{
	struct qmgr_local *l = *lp;
	struct qmgr_entry *e;
	if (l == NULL)
		return;
	event_free(l->ev_read);
	event_free(l->ev_write);
	event_free(l->ev_retry);
	if (l->fd >= 0)
		(void)close(l->fd);
	while ((e = TAILQ_FIRST(&l->outq)) != NULL) {
		TAILQ_REMOVE(&l->outq, e, agent_link);
		free(e);
	}
	while ((e = TAILQ_FIRST(&l->sent)) != NULL) {
		TAILQ_REMOVE(&l->sent, e, agent_link);
		free(e);
	}
	free(l->rbuf);
	free(l->path);
	free(l);
	*lp = NULL;
}
