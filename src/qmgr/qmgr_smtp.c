/* qmgr_smtp.c - the queue manager's side of the delivery protocol with the
 * SMTP client (protocol in mail/smtp_proto.h).
 *
 * One SOCK_SEQPACKET connection to QDIR/private/smtp carries every
 * request: one per batch (the recipients of one message for one nexthop,
 * qmgr_sched.c), matched with its reply by req.  Requests wait in outq
 * until written, then in `sent` until their reply.  Built like
 * qmgr_local.c: reconnect with a backoff from 100 ms to 5 s; deliveries
 * wait QMGR_LOCAL_HOLD_MAX seconds for the agent, then are deferred; a
 * broken connection or malformed reply defers every request written and
 * not answered ("smtp delivery agent unavailable"): the agent may have
 * delivered some of them, which the next attempt repeats (at-least-once).
 *
 * Each result goes through qmgr_entry_done (members of a batch first, the
 * head, which holds the slot, last); a recipient the reply does not name
 * is deferred.  The smtp agent logs the delivery lines itself.
 */
#include "qmgr/qmgr.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/smtp_proto.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct qmgr_smtp {
	struct qmgr *q;
	char *path;
	int fd;
	struct event *ev_read;
	struct event *ev_write;
	struct event *ev_retry;
	struct qmgr_entry_list outq; /* batch heads */
	struct qmgr_entry_list sent;
	uint64_t next_req;
	long retry_ms;
	int64_t down_since;
	bool in_flush;
	bool warned_down;
	uint8_t *rbuf;
};

static void smtp_flush(struct qmgr_smtp *sm);
static void smtp_connect(struct qmgr_smtp *sm);

int qmgr_smtp_request_build(struct buf *out, uint64_t req, struct qmgr_entry *e,
			    const char **error_r)
{
	struct qmgr_message *msg = e->msg;
	struct smtp_proto_request r;
	size_t n = 1;
	struct qmgr_entry *m;
	TAILQ_FOREACH(m, &e->batch, batch_link)
		n++;
	memset(&r, 0, sizeof(r));
	r.req = req;
	r.queue_id = msg->id;
	r.sender = msg->qm->sender;
	r.nexthop = e->nexthop;
	r.no_mx = e->no_mx;
	r.port = e->port;
	r.active_sec = (int64_t)msg->active_time.tv_sec;
	r.active_usec = (long)msg->active_time.tv_usec;
	r.rcpts = xcalloc(n, sizeof(*r.rcpts));
	size_t i = 0;
	for (m = e; m != NULL; m = (m == e ? TAILQ_FIRST(&e->batch) : TAILQ_NEXT(m, batch_link))) {
		const struct qfile_rcpt *qr = &msg->qm->rcpts[m->rcpt];
		r.rcpts[i].index = m->rcpt;
		r.rcpts[i].address = qr->address;
		r.rcpts[i].notify = qr->notify;
		r.rcpts[i].orcpt = qr->orcpt;
		i++;
	}
	r.n_rcpts = n;
	int ret = smtp_proto_request_encode(out, &r, error_r);
	free(r.rcpts);
	return ret;
}

/* Report every entry of batch head e: results from rep when given (by
 * recipient index), else (or when missing) deferred with why.  Members
 * first, the head last (it holds the slot). */
static void smtp_batch_done(struct qmgr_smtp *sm, struct qmgr_entry *e,
			    const struct smtp_proto_reply *rep, const char *why)
{
	struct qmgr_entry_list members;
	struct qmgr_entry *m;
	TAILQ_INIT(&members);
	while ((m = TAILQ_FIRST(&e->batch)) != NULL) {
		TAILQ_REMOVE(&e->batch, m, batch_link);
		TAILQ_INSERT_TAIL(&members, m, agent_link);
	}
	TAILQ_INSERT_TAIL(&members, e, agent_link);
	while ((m = TAILQ_FIRST(&members)) != NULL) {
		TAILQ_REMOVE(&members, m, agent_link);
		const struct smtp_proto_result *res = NULL;
		for (size_t i = 0; rep != NULL && i < rep->n_results; i++) {
			if (rep->results[i].index == m->rcpt) {
				res = &rep->results[i];
				break;
			}
		}
		if (res == NULL) {
			qmgr_entry_done(sm->q, m, QMGR_RESULT_DEFERRED, "4.3.0",
					why != NULL ? why : "no result from the smtp delivery agent",
					NULL, 0);
			continue;
		}
		/* "relayed": sent with NOTIFY=SUCCESS to a next hop that did
		 * not offer DSN, so the sender gets a "relayed" notice from us
		 * (RFC 3461 4.2). */
		enum qmgr_result r = res->status == SMTP_PROTO_SENT
					     ? (res->relayed ? QMGR_RESULT_RELAYED : QMGR_RESULT_SENT)
				     : res->status == SMTP_PROTO_BOUNCED ? QMGR_RESULT_BOUNCED
									 : QMGR_RESULT_DEFERRED;
		qmgr_entry_done(sm->q, m, r, res->dsn, res->text, NULL, 0);
	}
}

static void smtp_fail_list(struct qmgr_smtp *sm, struct qmgr_entry_list *list, const char *why)
{
	struct qmgr_entry_list tmp;
	struct qmgr_entry *e;
	TAILQ_INIT(&tmp);
	TAILQ_CONCAT(&tmp, list, agent_link);
	while ((e = TAILQ_FIRST(&tmp)) != NULL) {
		TAILQ_REMOVE(&tmp, e, agent_link);
		smtp_batch_done(sm, e, NULL, why);
	}
}

static void smtp_schedule_retry(struct qmgr_smtp *sm)
{
	if (sm->path == NULL || event_pending(sm->ev_retry, EV_TIMEOUT, NULL))
		return;
	struct timeval tv = { sm->retry_ms / 1000, (sm->retry_ms % 1000) * 1000 };
	evtimer_add(sm->ev_retry, &tv);
	sm->retry_ms = sm->retry_ms * 2 > 5000 ? 5000 : sm->retry_ms * 2;
}

static void smtp_down(struct qmgr_smtp *sm)
{
	if (sm->down_since == 0)
		sm->down_since = qmgr_now(sm->q);
	if (qmgr_now(sm->q) - sm->down_since >= QMGR_LOCAL_HOLD_MAX && !TAILQ_EMPTY(&sm->outq))
		smtp_fail_list(sm, &sm->outq, QMGR_REASON_SMTP_DOWN);
	if (!TAILQ_EMPTY(&sm->outq))
		smtp_schedule_retry(sm);
}

static void smtp_broken(struct qmgr_smtp *sm, const char *why)
{
	log_warning("smtp delivery agent connection: %s", why);
	event_del(sm->ev_read);
	event_del(sm->ev_write);
	if (sm->fd >= 0 && close(sm->fd) < 0)
		log_warning("close smtp delivery agent socket: %s", strerror(errno));
	sm->fd = -1;
	sm->retry_ms = 100;
	sm->down_since = qmgr_now(sm->q);
	smtp_fail_list(sm, &sm->sent, QMGR_REASON_SMTP_DOWN);
	smtp_down(sm);
}

static void smtp_handle_reply(struct qmgr_smtp *sm, const uint8_t *data, size_t len)
{
	struct smtp_proto_reply rep;
	const char *error;
	struct qmgr_entry *e;
	if (smtp_proto_reply_decode(data, len, &rep, &error) < 0) {
		struct buf why = BUF_INIT;
		buf_printf(&why, "malformed reply: %s", error);
		smtp_broken(sm, buf_cstr(&why));
		buf_deinit(&why);
		return;
	}
	for (e = TAILQ_FIRST(&sm->sent); e != NULL && e->req != rep.req;
	     e = TAILQ_NEXT(e, agent_link))
		;
	if (e == NULL) {
		smtp_proto_reply_clear(&rep);
		smtp_broken(sm, "reply to an unknown request");
		return;
	}
	TAILQ_REMOVE(&sm->sent, e, agent_link);
	smtp_batch_done(sm, e, &rep, "malformed delivery request");
	smtp_proto_reply_clear(&rep);
}

static void smtp_on_read(evutil_socket_t fd, short what, void *ctx)
{
	struct qmgr_smtp *sm = ctx;
	(void)what;
	while (sm->fd == fd) {
		ssize_t n = recv(fd, sm->rbuf, SMTP_PROTO_MAX_PACKET + 1, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			smtp_broken(sm, strerror(errno));
			return;
		}
		if (n == 0) {
			smtp_broken(sm, "closed by the agent");
			return;
		}
		if ((size_t)n > SMTP_PROTO_MAX_PACKET) {
			smtp_broken(sm, "malformed reply: reply too long");
			return;
		}
		smtp_handle_reply(sm, sm->rbuf, (size_t)n);
	}
}

static void smtp_on_write(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd;
	(void)what;
	smtp_flush(ctx);
}

static void smtp_on_retry(evutil_socket_t fd, short what, void *ctx)
{
	struct qmgr_smtp *sm = ctx;
	(void)fd;
	(void)what;
	if (sm->fd < 0)
		smtp_connect(sm);
}

static void smtp_connected(struct qmgr_smtp *sm, int fd)
{
	sm->fd = fd;
	if (sm->down_since != 0 && sm->warned_down)
		log_info("connected to the smtp delivery agent");
	sm->down_since = 0;
	sm->warned_down = false;
	sm->retry_ms = 100;
	event_del(sm->ev_read);
	event_del(sm->ev_write);
	event_assign(sm->ev_read, sm->q->base, fd, EV_READ | EV_PERSIST, smtp_on_read, sm);
	event_assign(sm->ev_write, sm->q->base, fd, EV_WRITE, smtp_on_write, sm);
	event_add(sm->ev_read, NULL);
	smtp_flush(sm);
}

static void smtp_connect(struct qmgr_smtp *sm)
{
	struct sockaddr_un sun;
	if (sm->path == NULL) {
		smtp_down(sm);
		return;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (!str_copy(sun.sun_path, sizeof(sun.sun_path), sm->path))
		log_fatal("smtp delivery agent socket path too long: %s", sm->path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warning("socket: %s", strerror(errno));
		smtp_down(sm);
		return;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int saved = errno;
		(void)close(fd);
		if (!sm->warned_down && sm->down_since != 0 &&
		    qmgr_now(sm->q) - sm->down_since >= 2) {
			log_warning("connect to smtp delivery agent %s: %s", sm->path,
				    strerror(saved));
			sm->warned_down = true;
		}
		smtp_down(sm);
		return;
	}
	smtp_connected(sm, fd);
}

static void smtp_flush(struct qmgr_smtp *sm)
{
	struct buf pkt = BUF_INIT;
	struct qmgr_entry *e;
	if (sm->in_flush)
		return;
	sm->in_flush = true;
	while (sm->fd >= 0 && (e = TAILQ_FIRST(&sm->outq)) != NULL) {
		const char *error;
		if (qmgr_smtp_request_build(&pkt, e->req, e, &error) < 0) {
			TAILQ_REMOVE(&sm->outq, e, agent_link);
			log_warning("%s: smtp delivery request: %s", e->msg->id, error);
			smtp_batch_done(sm, e, NULL, "delivery request too long");
			continue;
		}
		ssize_t n = send(sm->fd, pkt.data, pkt.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			event_add(sm->ev_write, NULL);
			break;
		}
		if (n != (ssize_t)pkt.len) {
			sm->in_flush = false;
			buf_deinit(&pkt);
			smtp_broken(sm, n < 0 ? strerror(errno) : "short send");
			return;
		}
		TAILQ_REMOVE(&sm->outq, e, agent_link);
		e->is_sent = true;
		TAILQ_INSERT_TAIL(&sm->sent, e, agent_link);
	}
	sm->in_flush = false;
	buf_deinit(&pkt);
}

void qmgr_smtp_deliver(struct qmgr *q, struct qmgr_entry *e)
{
	struct qmgr_smtp *sm = q->smtp;
	e->req = ++sm->next_req;
	e->is_sent = false;
	TAILQ_INSERT_TAIL(&sm->outq, e, agent_link);
	if (sm->fd >= 0) {
		smtp_flush(sm);
		return;
	}
	if (sm->down_since != 0 && qmgr_now(q) - sm->down_since >= QMGR_LOCAL_HOLD_MAX) {
		TAILQ_REMOVE(&sm->outq, e, agent_link);
		smtp_batch_done(sm, e, NULL, QMGR_REASON_SMTP_DOWN);
		smtp_schedule_retry(sm);
		return;
	}
	if (!event_pending(sm->ev_retry, EV_TIMEOUT, NULL))
		smtp_connect(sm);
}

struct qmgr_smtp *qmgr_smtp_new(struct qmgr *q, const char *socket_path)
{
	struct qmgr_smtp *sm = xcalloc(1, sizeof(*sm));
	sm->q = q;
	sm->path = socket_path != NULL ? xstrdup(socket_path) : NULL;
	sm->fd = -1;
	sm->retry_ms = 100;
	TAILQ_INIT(&sm->outq);
	TAILQ_INIT(&sm->sent);
	sm->rbuf = xmalloc(SMTP_PROTO_MAX_PACKET + 1);
	sm->ev_read = event_new(q->base, -1, 0, smtp_on_read, sm);
	sm->ev_write = event_new(q->base, -1, 0, smtp_on_write, sm);
	sm->ev_retry = evtimer_new(q->base, smtp_on_retry, sm);
	if (sm->ev_read == NULL || sm->ev_write == NULL || sm->ev_retry == NULL)
		mem_fail("event_new");
	return sm;
}

void qmgr_smtp_attach(struct qmgr_smtp *sm, int fd)
{
	if (sm->fd >= 0)
		(void)close(sm->fd);
	smtp_connected(sm, fd);
}

void qmgr_smtp_free(struct qmgr_smtp **smp)
{
	struct qmgr_smtp *sm = *smp;
	struct qmgr_entry *e;
	if (sm == NULL)
		return;
	event_free(sm->ev_read);
	event_free(sm->ev_write);
	event_free(sm->ev_retry);
	if (sm->fd >= 0)
		(void)close(sm->fd);
	while ((e = TAILQ_FIRST(&sm->outq)) != NULL) {
		TAILQ_REMOVE(&sm->outq, e, agent_link);
		qmgr_entry_free(e);
	}
	while ((e = TAILQ_FIRST(&sm->sent)) != NULL) {
		TAILQ_REMOVE(&sm->sent, e, agent_link);
		qmgr_entry_free(e);
	}
	free(sm->rbuf);
	free(sm->path);
	free(sm);
	*smp = NULL;
}
