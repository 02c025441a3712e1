/* smtp_deliver.c - the SMTP client's delivery engine: one delivery is the
 * recipients of one message for one nexthop (a request of the queue
 * manager, mail/smtp_proto.h).
 *
 * Life of a delivery:
 *   1. the queue file QDIR/active/ID is read (sender, content, RET, ENVID,
 *      BODY, each recipient's NOTIFY/ORCPT): the request is input, not
 *      truth; every recipient index must name the same, still pending,
 *      address;
 *   2. an idle cached connection to the same nexthop is reused, else the
 *      nexthop is resolved (dns_resolve_mx; an IP literal needs no DNS);
 *   3. each address is tried in order until one gives a 2xx greeting and
 *      accepts EHLO (or HELO): connection failures, timeouts and 4xx/5xx
 *      greetings move on to the next address; when none is left the last
 *      error decides (5xx from the last server: bounced, else deferred),
 *      as Postfix's smtp(8) does;
 *   4. the transaction: MAIL, RCPT..., DATA (sent as one group when the
 *      server offers PIPELINING, RFC 2920), content with dot-stuffing,
 *      end of data; per-recipient results (2xx accepted, 4xx deferred,
 *      5xx bounced), then the end-of-data reply for the accepted ones.
 *      The content is streamed: one queue file record at a time is read,
 *      encoded and queued only while less than SMTP_XFER_QUEUE_MAX bytes
 *      wait in the output buffer, so a delivery holds a bounded amount of
 *      memory whatever the message size.  A connection lost or timed out
 *      before the end-of-data reply (no recipient delivered yet) moves the
 *      recipients without a final result on to the next address, as
 *      Postfix does; a 5xx RCPT reply stays final;
 *   5. one log line per recipient, the reply to the queue manager; the
 *      connection is reset (RSET) and kept idle for
 *      smtp_connection_cache_time_limit for the next message to the same
 *      nexthop, then closed with QUIT.
 *
 * Each session has one state (enum smtp_state), changed only by
 * session_set_state(), which also arms the stage's timeout (Postfix's
 * smtp_*_timeout).  Replies are read line by line (smtp_reply.c), a line
 * longer than SMTP_REPLY_LINE_MAX ends the session.
 */
#include "smtp/smtp.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/addr.h"
#include "mail/dns.h"
#include "mail/mail_log.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "mail/smtp_proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

/* Content streaming: refill below SMTP_XFER_QUEUE_LOW (libevent's write
 * low watermark), stop above SMTP_XFER_QUEUE_MAX queued bytes. */
#define SMTP_XFER_QUEUE_MAX (256u * 1024)
#define SMTP_XFER_QUEUE_LOW (64u * 1024)

enum smtp_state {
	SMTP_ST_CONNECTING,
	SMTP_ST_GREETING,
	SMTP_ST_EHLO,
	SMTP_ST_HELO,
	SMTP_ST_MAIL,      /* waiting for the MAIL reply */
	SMTP_ST_RCPT,      /* waiting for RCPT replies */
	SMTP_ST_DATA,      /* waiting for the DATA reply */
	SMTP_ST_DATA_XFER, /* content being written */
	SMTP_ST_DATA_DONE, /* waiting for the end-of-data reply */
	SMTP_ST_RSET,
	SMTP_ST_IDLE,      /* in the connection cache */
	SMTP_ST_QUIT,
};

static const struct {
	const char *name;
	const char *stage; /* "... while STAGE" in timeout/lost connection texts */
} smtp_states[] = {
	[SMTP_ST_CONNECTING] = { "connecting", "connecting" },
	[SMTP_ST_GREETING] = { "greeting", "receiving the initial server greeting" },
	[SMTP_ST_EHLO] = { "ehlo", "performing the EHLO handshake" },
	[SMTP_ST_HELO] = { "helo", "performing the HELO handshake" },
	[SMTP_ST_MAIL] = { "mail", "sending MAIL FROM" },
	[SMTP_ST_RCPT] = { "rcpt", "sending RCPT TO" },
	[SMTP_ST_DATA] = { "data", "sending DATA command" },
	[SMTP_ST_DATA_XFER] = { "data-xfer", "sending message body" },
	[SMTP_ST_DATA_DONE] = { "data-done",
				"sending end of data -- message may be sent more than once" },
	[SMTP_ST_RSET] = { "rset", "sending RSET" },
	[SMTP_ST_IDLE] = { "idle", "idle" },
	[SMTP_ST_QUIT] = { "quit", "sending QUIT" },
};

struct smtp_addr {
	char *host;
	struct sockaddr_storage ss;
	socklen_t len;
};

struct smtp_delivery;

struct smtp_session {
	TAILQ_ENTRY(smtp_session) link; /* engine->sessions */
	struct smtp_engine *eng;
	struct bufferevent *bev;
	struct event *timer;
	enum smtp_state state;
	char *key;   /* nexthop key, for the cache */
	char *host;
	char ip[INET6_ADDRSTRLEN];
	unsigned port;
	char *name;  /* "host[ip]" */
	char *relay; /* "host[ip]:port" */
	struct smtp_ehlo ehlo;
	struct smtp_reply reply;
	struct smtp_delivery *dlv; /* NULL when idle */
	bool is_idle;
};
TAILQ_HEAD(smtp_session_list, smtp_session);

struct smtp_rcpt_state {
	const struct qfile_rcpt *qr; /* in qm */
	bool is_final;
	bool accepted;
	enum smtp_proto_status status;
	char *dsn;
	char *text;
	bool relayed;
};

struct smtp_delivery {
	TAILQ_ENTRY(smtp_delivery) link;
	struct smtp_engine *eng;
	struct smtp_proto_request req;
	smtp_engine_done_fn *done;
	void *ctx;
	char *key;
	int fd;
	struct qfile_msg *qm;
	struct smtp_rcpt_state *rs; /* req.n_rcpts */
	struct dns_query *dq;
	struct smtp_addr *addrs;
	size_t n_addrs, next_addr;
	struct buf last_error;
	char last_dsn[16];
	char *last_relay;
	struct smtp_session *sess;
	struct event *ev_done;
	/* transaction */
	size_t *txn_rcpts; /* indexes in rs of the recipients sent RCPT */
	size_t n_txn;      /* (those without a result when it started) */
	size_t rcpt_sent, rcpt_replied, n_accepted;
	bool mail_ok;
	bool data_discard; /* 354 with no accepted recipient: send "." only */
	bool dsn_announced;
	struct timeval t_handoff, t_conn;
	bool finished;
	bool is_reused; /* the session came from the connection cache */
	/* content streaming (SMTP_ST_DATA_XFER) */
	struct qfile_content_cursor cursor;
	struct smtp_data_writer writer;
	uint8_t *chunk;        /* one record's payload, QFILE_CONTENT_CHUNK */
	struct buf xfer_out;   /* the same, encoded for the wire */
	bool xfer_queued;      /* the final "." is in the output buffer */
	uint64_t xfer_added;   /* bytes of content queued to the bufferevent */
	uint64_t xfer_sent_at_arm; /* of them sent when the timer was armed */
};
TAILQ_HEAD(smtp_delivery_list, smtp_delivery);

struct smtp_engine {
	struct event_base *base;
	struct dns *dns;
	struct smtp_settings s;
	struct smtp_session_list sessions; /* all, busy and idle */
	struct smtp_delivery_list deliveries;
	unsigned busy;
};

static void session_free(struct smtp_session *s);
static void session_connect_next(struct smtp_delivery *d);
static void delivery_finish(struct smtp_delivery *d);
static void delivery_route(struct smtp_delivery *d);
static void transaction_start(struct smtp_session *s);
static void xfer_release(struct smtp_delivery *d);

/* ------------------------------------------------------------ results */

static void rcpt_set(struct smtp_delivery *d, size_t i, enum smtp_proto_status st,
		     const char *dsn, const char *text)
{
	struct smtp_rcpt_state *r = &d->rs[i];
	if (r->is_final)
		return;
	r->is_final = true;
	r->status = st;
	r->dsn = xstrdup(dsn);
	r->text = xstrdup(text);
}

/* Every recipient without a result gets this one. */
static void rcpt_set_all(struct smtp_delivery *d, enum smtp_proto_status st, const char *dsn,
			 const char *text)
{
	for (size_t i = 0; i < d->req.n_rcpts; i++)
		rcpt_set(d, i, st, dsn, text);
}

static enum smtp_proto_status status_of_code(unsigned code)
{
	return code >= 500 ? SMTP_PROTO_BOUNCED
	       : code >= 400 ? SMTP_PROTO_DEFERRED : SMTP_PROTO_SENT;
}

/* "host NAME[IP] said: 550 5.1.1 text (in reply to RCPT TO command)" */
static void said_text(struct buf *out, const struct smtp_session *s, const char *cmd)
{
	buf_reset(out);
	buf_printf(out, "host %s said: %s (in reply to %s command)", s->name,
		   buf_cstr(&s->reply.text), cmd);
}

/* ------------------------------------------------------------ sessions */

static long state_timeout(const struct smtp_engine *e, enum smtp_state st)
{
	switch (st) {
	case SMTP_ST_CONNECTING: return e->s.connect_timeout;
	case SMTP_ST_GREETING:
	case SMTP_ST_EHLO:
	case SMTP_ST_HELO: return e->s.helo_timeout;
	case SMTP_ST_MAIL: return e->s.mail_timeout;
	case SMTP_ST_RCPT: return e->s.rcpt_timeout;
	case SMTP_ST_DATA: return e->s.data_init_timeout;
	case SMTP_ST_DATA_XFER: return e->s.data_xfer_timeout;
	case SMTP_ST_DATA_DONE: return e->s.data_done_timeout;
	case SMTP_ST_RSET: return e->s.rset_timeout;
	case SMTP_ST_IDLE: return e->s.cache_time;
	case SMTP_ST_QUIT: return e->s.quit_timeout;
	}
	return 300;
}

static void session_timer_arm(struct smtp_session *s)
{
	long secs = state_timeout(s->eng, s->state);
	struct timeval tv = { secs > 0 ? secs : 1, 0 };
	evtimer_add(s->timer, &tv);
}

/* The one place where a session changes state (and its timer). */
static void session_set_state(struct smtp_session *s, enum smtp_state st)
{
	log_debug("smtp session %s: %s -> %s", s->name, smtp_states[s->state].name,
		  smtp_states[st].name);
	s->state = st;
	session_timer_arm(s);
}

static void session_send(struct smtp_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void session_send(struct smtp_session *s, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	log_debug("smtp %s > %s", s->name, buf_cstr(&b));
	buf_append(&b, "\r\n", 2);
	if (bufferevent_write(s->bev, b.data, b.len) < 0)
		log_warning("smtp %s: cannot queue a command", s->name);
	buf_deinit(&b);
}

static void session_detach(struct smtp_session *s)
{
	if (s->dlv != NULL) {
		s->dlv->sess = NULL;
		s->dlv = NULL;
	}
}

/* May the recipients of d still go to another server after this one
 * failed during the transaction?  Postfix's smtp(8) moves the recipients
 * without a final result on to the next MX address after a site-level
 * soft error (lost connection, timeout) as long as the server's
 * end-of-data reply did not deliver anything; a 5xx RCPT reply is final.
 * A cached connection that fails is replaced by a fresh route. */
static bool delivery_can_retry(const struct smtp_delivery *d)
{
	size_t left = 0;
	for (size_t i = 0; i < d->req.n_rcpts; i++) {
		if (d->rs[i].is_final && d->rs[i].status == SMTP_PROTO_SENT)
			return false;
		if (!d->rs[i].is_final)
			left++;
	}
	return left > 0 && (d->next_addr < d->n_addrs || d->is_reused);
}

/* The session cannot go on (timeout, lost connection, protocol error).
 * Before a transaction, or during one that delivered nothing, the
 * delivery tries the next address; when none is left its recipients
 * without a result are deferred with this error. */
static void session_fail(struct smtp_session *s, const char *dsn, const char *why)
{
	struct smtp_delivery *d = s->dlv;
	enum smtp_state st = s->state;
	session_detach(s);
	session_free(s);
	if (d == NULL)
		return;
	xfer_release(d);
	buf_reset(&d->last_error);
	buf_append_str(&d->last_error, why);
	(void)str_copy(d->last_dsn, sizeof(d->last_dsn), dsn);
	if (st <= SMTP_ST_HELO) {
		session_connect_next(d);
		return;
	}
	if (delivery_can_retry(d)) {
		log_debug("%s: %s; trying the next address", d->req.queue_id, why);
		/* What this server accepted does not bind the next one. */
		for (size_t i = 0; i < d->req.n_rcpts; i++)
			if (!d->rs[i].is_final)
				d->rs[i].accepted = false;
		if (d->next_addr >= d->n_addrs) {
			d->is_reused = false;
			delivery_route(d);
		} else {
			session_connect_next(d);
		}
		return;
	}
	rcpt_set_all(d, SMTP_PROTO_DEFERRED, dsn, why);
	delivery_finish(d);
}

/* A local failure (queue file read error): no other server can help. */
static void session_fail_local(struct smtp_session *s, const char *dsn, const char *why)
{
	struct smtp_delivery *d = s->dlv;
	session_detach(s);
	session_free(s);
	if (d == NULL)
		return;
	xfer_release(d);
	rcpt_set_all(d, SMTP_PROTO_DEFERRED, dsn, why);
	delivery_finish(d);
}

/* Content bytes the kernel took since DATA_XFER began. */
static uint64_t xfer_sent(const struct smtp_session *s)
{
	size_t pending = evbuffer_get_length(bufferevent_get_output(s->bev));
	return s->dlv->xfer_added > pending ? s->dlv->xfer_added - pending : 0;
}

static void session_on_timer(evutil_socket_t fd, short what, void *ctx)
{
	struct smtp_session *s = ctx;
	(void)fd;
	(void)what;
	if (s->state == SMTP_ST_IDLE) {
		/* Nobody needed the connection: say goodbye. */
		s->is_idle = false;
		session_send(s, "QUIT");
		session_set_state(s, SMTP_ST_QUIT);
		return;
	}
	if (s->state == SMTP_ST_QUIT) {
		session_free(s);
		return;
	}
	if (s->state == SMTP_ST_DATA_XFER && s->dlv != NULL &&
	    xfer_sent(s) > s->dlv->xfer_sent_at_arm) {
		/* smtp_data_xfer_timeout is a limit on no progress (Postfix):
		 * a slow but moving transfer goes on. */
		s->dlv->xfer_sent_at_arm = xfer_sent(s);
		session_timer_arm(s);
		return;
	}
	struct buf why = BUF_INIT;
	if (s->state == SMTP_ST_CONNECTING)
		buf_printf(&why, "connect to %s:%u: Connection timed out", s->name, s->port);
	else
		buf_printf(&why, "conversation with %s timed out while %s", s->name,
			   smtp_states[s->state].stage);
	session_fail(s, "4.4.2", buf_cstr(&why));
	buf_deinit(&why);
}

static void session_free(struct smtp_session *s)
{
	if (s == NULL)
		return;
	session_detach(s);
	TAILQ_REMOVE(&s->eng->sessions, s, link);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	event_free(s->timer);
	smtp_reply_deinit(&s->reply);
	free(s->key);
	free(s->host);
	free(s->name);
	free(s->relay);
	free(s);
}

/* ------------------------------------------------------------ replies */

static void on_greeting(struct smtp_session *s)
{
	struct smtp_delivery *d = s->dlv;
	if (s->reply.code / 100 != 2) {
		/* Postfix: a server that refuses to talk (4xx or 5xx greeting)
		 * is skipped; the next MX may take the mail. */
		struct buf why = BUF_INIT;
		buf_printf(&why, "host %s refused to talk to me: %s", s->name,
			   buf_cstr(&s->reply.text));
		free(d->last_relay);
		d->last_relay = xstrdup(s->relay);
		session_send(s, "QUIT");
		session_fail(s, s->reply.dsn, buf_cstr(&why));
		buf_deinit(&why);
		return;
	}
	session_send(s, "EHLO %s", s->eng->s.helo_name);
	session_set_state(s, SMTP_ST_EHLO);
}

static void on_helo(struct smtp_session *s)
{
	struct smtp_delivery *d = s->dlv;
	unsigned code = s->reply.code;
	if (s->state == SMTP_ST_EHLO && code / 100 == 5) {
		/* RFC 5321 4.1.4: a server without EHLO; fall back to HELO. */
		session_send(s, "HELO %s", s->eng->s.helo_name);
		session_set_state(s, SMTP_ST_HELO);
		return;
	}
	if (code / 100 != 2) {
		struct buf why = BUF_INIT;
		said_text(&why, s, s->state == SMTP_ST_EHLO ? "EHLO" : "HELO");
		free(d->last_relay);
		d->last_relay = xstrdup(s->relay);
		session_send(s, "QUIT");
		session_fail(s, s->reply.dsn, buf_cstr(&why));
		buf_deinit(&why);
		return;
	}
	if (s->state == SMTP_ST_EHLO)
		smtp_ehlo_parse(&s->reply, &s->ehlo);
	else
		memset(&s->ehlo, 0, sizeof(s->ehlo));
	(void)gettimeofday(&d->t_conn, NULL);
	transaction_start(s);
}

/* Reset after a transaction, then idle in the cache. */
static void transaction_end(struct smtp_session *s)
{
	struct smtp_delivery *d = s->dlv;
	session_detach(s);
	session_send(s, "RSET");
	session_set_state(s, SMTP_ST_RSET);
	if (d != NULL)
		delivery_finish(d);
}

static void send_rcpt(struct smtp_session *s, size_t i)
{
	struct smtp_delivery *d = s->dlv;
	const struct qfile_rcpt *qr = d->rs[i].qr;
	struct buf cmd = BUF_INIT;
	buf_printf(&cmd, "RCPT TO:<%s>", qr->address);
	if (s->ehlo.dsn) {
		if (qr->notify != NULL && *qr->notify != '\0')
			buf_printf(&cmd, " NOTIFY=%s", qr->notify);
		if (qr->orcpt != NULL && *qr->orcpt != '\0') {
			const char *semi = strchr(qr->orcpt, ';');
			if (semi != NULL) {
				char *x = xtext_encode(semi + 1);
				buf_printf(&cmd, " ORCPT=%.*s;%s", (int)(semi - qr->orcpt), qr->orcpt,
					   x);
				free(x);
			}
		}
	}
	session_send(s, "%s", buf_cstr(&cmd));
	buf_deinit(&cmd);
	d->rcpt_sent++;
}

static void transaction_start(struct smtp_session *s)
{
	struct smtp_delivery *d = s->dlv;
	struct qfile_msg *qm = d->qm;
	d->dsn_announced = s->ehlo.dsn;
	d->rcpt_sent = d->rcpt_replied = d->n_accepted = 0;
	/* After another server failed, only the recipients it did not
	 * finalise (a 5xx RCPT reply is final) are tried here. */
	d->n_txn = 0;
	for (size_t i = 0; i < d->req.n_rcpts; i++)
		if (!d->rs[i].is_final)
			d->txn_rcpts[d->n_txn++] = i;
	d->mail_ok = false;
	d->data_discard = false;
	free(d->last_relay);
	d->last_relay = xstrdup(s->relay);

	/* RFC 1870: do not send what the server said it will refuse. */
	if (s->ehlo.has_size && s->ehlo.size > 0 && qm->content_size > s->ehlo.size) {
		struct buf why = BUF_INIT;
		buf_printf(&why, "message size %llu exceeds size limit %llu of server %s",
			   (unsigned long long)qm->content_size, (unsigned long long)s->ehlo.size,
			   s->name);
		rcpt_set_all(d, SMTP_PROTO_BOUNCED, "5.3.4", buf_cstr(&why));
		buf_deinit(&why);
		transaction_end(s);
		return;
	}
	struct buf cmd = BUF_INIT;
	buf_printf(&cmd, "MAIL FROM:<%s>", qm->sender);
	if (s->ehlo.has_size)
		buf_printf(&cmd, " SIZE=%llu", (unsigned long long)qm->content_size);
	const char *body = qfile_msg_attr(qm, "body");
	if (body != NULL && str_casecmp(body, "8BITMIME") == 0 && s->ehlo.eightbitmime)
		buf_append_str(&cmd, " BODY=8BITMIME");
	if (s->ehlo.dsn) {
		const char *ret = qfile_msg_attr(qm, "ret");
		const char *envid = qfile_msg_attr(qm, "envid");
		if (ret != NULL && *ret != '\0')
			buf_printf(&cmd, " RET=%s", ret);
		if (envid != NULL && *envid != '\0') {
			char *x = xtext_encode(envid);
			buf_printf(&cmd, " ENVID=%s", x);
			free(x);
		}
	}
	session_send(s, "%s", buf_cstr(&cmd));
	buf_deinit(&cmd);
	if (s->ehlo.pipelining) {
		/* RFC 2920: MAIL, every RCPT and DATA in one group. */
		for (size_t k = 0; k < d->n_txn; k++)
			send_rcpt(s, d->txn_rcpts[k]);
		session_send(s, "DATA");
	}
	session_set_state(s, SMTP_ST_MAIL);
}

/* Free the streaming buffers (the transfer ended one way or another). */
static void xfer_release(struct smtp_delivery *d)
{
	free(d->chunk);
	d->chunk = NULL;
	buf_deinit(&d->xfer_out);
}

/* Queue content while less than SMTP_XFER_QUEUE_MAX bytes wait to be
 * sent: one queue file record is read and encoded at a time, so memory
 * stays bounded whatever the message size.  Called on 354 and each time
 * the output drains to the low watermark.  May free s. */
static void xfer_fill(struct smtp_session *s)
{
	struct smtp_delivery *d = s->dlv;
	struct evbuffer *out = bufferevent_get_output(s->bev);
	while (!d->xfer_queued && evbuffer_get_length(out) < SMTP_XFER_QUEUE_MAX) {
		size_t n = 0;
		int r = 0;
		const char *error = NULL;
		buf_reset(&d->xfer_out);
		/* data_discard: 354 with no accepted recipient, send "." only. */
		if (!d->data_discard)
			r = qfile_content_next(d->fd, d->qm, &d->cursor, d->chunk, QFILE_CONTENT_CHUNK,
					       &n, &error);
		if (r < 0) {
			/* Dropping the connection without the final dot
			 * aborts the transaction (RFC 5321 4.1.1.4). */
			log_error("%s: read queue file content: %s", d->req.queue_id, error);
			session_fail_local(s, "4.3.0", "queue file read error");
			return;
		}
		if (r > 0) {
			smtp_data_write(&d->writer, d->chunk, n, &d->xfer_out);
		} else {
			smtp_data_finish(&d->writer, &d->xfer_out);
			d->xfer_queued = true;
			/* Now the write callback means "all sent". */
			bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
		}
		if (bufferevent_write(s->bev, d->xfer_out.data, d->xfer_out.len) < 0) {
			session_fail_local(s, "4.3.0", "cannot queue the message content");
			return;
		}
		d->xfer_added += d->xfer_out.len;
	}
	if (d->xfer_queued)
		xfer_release(d);
}

/* 354: start streaming the content. */
static void xfer_start(struct smtp_session *s)
{
	struct smtp_delivery *d = s->dlv;
	smtp_data_writer_init(&d->writer);
	qfile_content_cursor_init(&d->cursor, d->qm);
	if (d->chunk == NULL)
		d->chunk = xmalloc(QFILE_CONTENT_CHUNK);
	d->xfer_queued = false;
	d->xfer_added = d->xfer_sent_at_arm = 0;
	bufferevent_setwatermark(s->bev, EV_WRITE, SMTP_XFER_QUEUE_LOW, 0);
	session_set_state(s, SMTP_ST_DATA_XFER);
	xfer_fill(s);
}

/* After MAIL, RCPT or DATA replies: what comes next. */
static void trans_on_reply(struct smtp_session *s)
{
	struct smtp_delivery *d = s->dlv;
	unsigned code = s->reply.code;
	bool pipe = s->ehlo.pipelining;
	struct buf why = BUF_INIT;

	if (s->state == SMTP_ST_MAIL) {
		if (code / 100 == 2) {
			d->mail_ok = true;
		} else {
			said_text(&why, s, "MAIL FROM");
			rcpt_set_all(d, status_of_code(code) == SMTP_PROTO_BOUNCED
						? SMTP_PROTO_BOUNCED : SMTP_PROTO_DEFERRED,
				     s->reply.dsn, buf_cstr(&why));
		}
		if (!pipe) {
			if (!d->mail_ok) {
				transaction_end(s);
				goto out;
			}
			send_rcpt(s, d->txn_rcpts[0]);
		}
		session_set_state(s, SMTP_ST_RCPT);
		goto out;
	}
	if (s->state == SMTP_ST_RCPT) {
		size_t i = d->txn_rcpts[d->rcpt_replied++];
		if (d->mail_ok) {
			if (code / 100 == 2) {
				d->rs[i].accepted = true;
				d->n_accepted++;
			} else {
				said_text(&why, s, "RCPT TO");
				rcpt_set(d, i, status_of_code(code) == SMTP_PROTO_BOUNCED
							? SMTP_PROTO_BOUNCED : SMTP_PROTO_DEFERRED,
					 s->reply.dsn, buf_cstr(&why));
			}
		}
		if (d->rcpt_replied < d->n_txn) {
			if (!pipe)
				send_rcpt(s, d->txn_rcpts[d->rcpt_replied]);
			session_set_state(s, SMTP_ST_RCPT);
			goto out;
		}
		if (!pipe) {
			if (d->n_accepted == 0) {
				transaction_end(s);
				goto out;
			}
			session_send(s, "DATA");
		}
		session_set_state(s, SMTP_ST_DATA);
		goto out;
	}
	/* SMTP_ST_DATA */
	if (code == 354) {
		/* RFC 2920 3.1: a pipelined DATA may get 354 although no
		 * recipient was accepted; the client then sends only the
		 * final dot. */
		d->data_discard = !d->mail_ok || d->n_accepted == 0;
		xfer_start(s);
		goto out;
	}
	if (d->n_accepted > 0) {
		said_text(&why, s, "DATA");
		for (size_t i = 0; i < d->req.n_rcpts; i++)
			if (d->rs[i].accepted)
				rcpt_set(d, i, status_of_code(code) == SMTP_PROTO_BOUNCED
							? SMTP_PROTO_BOUNCED : SMTP_PROTO_DEFERRED,
					 s->reply.dsn, buf_cstr(&why));
	}
	transaction_end(s);
out:
	buf_deinit(&why);
}

static void on_data_done(struct smtp_session *s)
{
	struct smtp_delivery *d = s->dlv;
	unsigned code = s->reply.code;
	/* A reply before the final "." was queued: the server gave up on the
	 * content (a 552 and close, say).  Its refusal stands, but it cannot
	 * have accepted a message it did not get; and the stream is out of
	 * step, so the connection is closed, not reused. */
	bool is_early = s->state == SMTP_ST_DATA_XFER && !d->xfer_queued;
	if (!d->data_discard) {
		struct buf why = BUF_INIT;
		const char *dsn = s->reply.dsn;
		enum smtp_proto_status st = status_of_code(code);
		if (is_early && st == SMTP_PROTO_SENT) {
			buf_printf(&why, "host %s said: %s (before the end of data)", s->name,
				   buf_cstr(&s->reply.text));
			st = SMTP_PROTO_DEFERRED;
			dsn = "4.4.2";
		} else if (code / 100 == 2) {
			buf_append_str(&why, buf_cstr(&s->reply.text));
		} else {
			said_text(&why, s, "end of DATA");
		}
		for (size_t i = 0; i < d->req.n_rcpts; i++) {
			if (!d->rs[i].accepted)
				continue;
			rcpt_set(d, i, st, dsn, buf_cstr(&why));
			/* RFC 3461 5.2.2: the next hop does not do DSN, so
			 * this is where a requested success notice ends:
			 * "relayed". */
			const char *notify = d->rs[i].qr->notify;
			if (st == SMTP_PROTO_SENT && !s->ehlo.dsn && notify != NULL &&
			    strstr(notify, "SUCCESS") != NULL)
				d->rs[i].relayed = true;
		}
		buf_deinit(&why);
	}
	if (is_early) {
		xfer_release(d);
		session_detach(s);
		session_free(s);
		delivery_finish(d);
		return;
	}
	transaction_end(s);
}

static void session_on_reply(struct smtp_session *s)
{
	log_debug("smtp %s < %s", s->name, buf_cstr(&s->reply.text));
	switch (s->state) {
	case SMTP_ST_GREETING:
		on_greeting(s);
		break;
	case SMTP_ST_EHLO:
	case SMTP_ST_HELO:
		on_helo(s);
		break;
	case SMTP_ST_MAIL:
	case SMTP_ST_RCPT:
	case SMTP_ST_DATA:
		trans_on_reply(s);
		break;
	case SMTP_ST_DATA_XFER:
	case SMTP_ST_DATA_DONE:
		on_data_done(s);
		break;
	case SMTP_ST_RSET:
		if (s->reply.code / 100 != 2) {
			session_send(s, "QUIT");
			session_set_state(s, SMTP_ST_QUIT);
			break;
		}
		s->is_idle = true;
		session_set_state(s, SMTP_ST_IDLE);
		break;
	case SMTP_ST_QUIT:
		session_free(s);
		break;
	case SMTP_ST_IDLE:
	case SMTP_ST_CONNECTING: {
		/* Unsolicited (e.g. a 421 of an idle server about to close):
		 * the session ends. */
		struct buf why = BUF_INIT;
		buf_printf(&why, "host %s said: %s (unexpected reply)", s->name,
			   buf_cstr(&s->reply.text));
		session_fail(s, "4.4.2", buf_cstr(&why));
		buf_deinit(&why);
		break;
	}
	}
}

static void session_on_read(struct bufferevent *bev, void *ctx)
{
	struct smtp_session *s = ctx;
	struct evbuffer *in = bufferevent_get_input(bev);
	/* The greeting may be read before libevent reports the connection
	 * (both ready in one loop turn): data means we are connected. */
	if (s->state == SMTP_ST_CONNECTING)
		session_set_state(s, SMTP_ST_GREETING);
	for (;;) {
		struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_CRLF);
		if (eol.pos < 0) {
			if (evbuffer_get_length(in) > SMTP_REPLY_LINE_MAX) {
				struct buf why = BUF_INIT;
				buf_printf(&why, "host %s sent a reply line that is too long",
					   s->name);
				session_fail(s, "4.4.2", buf_cstr(&why));
				buf_deinit(&why);
			}
			return;
		}
		size_t n;
		char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
		if (line == NULL)
			return;
		const char *error = NULL;
		enum smtp_parse p = smtp_reply_feed(&s->reply, line, n, &error);
		free(line);
		if (p == SMTP_PARSE_MORE)
			continue;
		if (p == SMTP_PARSE_ERR) {
			struct buf why = BUF_INIT;
			buf_printf(&why, "host %s sent a malformed reply: %s", s->name, error);
			session_fail(s, "4.4.2", buf_cstr(&why));
			buf_deinit(&why);
			return;
		}
		/* The handler may free s: re-check through the engine list
		 * is not possible, so stop when the session ends. */
		struct smtp_engine *e = s->eng;
		struct smtp_session *it;
		session_on_reply(s);
		TAILQ_FOREACH(it, &e->sessions, link)
			if (it == s)
				break;
		if (it == NULL)
			return;
	}
}

/* The output drained to the write low watermark: more content, or, once
 * the final "." is queued and everything is sent, wait for the verdict. */
static void session_on_write(struct bufferevent *bev, void *ctx)
{
	struct smtp_session *s = ctx;
	struct smtp_delivery *d = s->dlv;
	if (s->state != SMTP_ST_DATA_XFER || d == NULL)
		return;
	if (!d->xfer_queued) {
		xfer_fill(s); /* may free s */
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		session_set_state(s, SMTP_ST_DATA_DONE);
}

static void session_on_event(struct bufferevent *bev, short what, void *ctx)
{
	struct smtp_session *s = ctx;
	struct buf why = BUF_INIT;
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		if (s->state == SMTP_ST_CONNECTING)
			session_set_state(s, SMTP_ST_GREETING);
		buf_deinit(&why);
		return;
	}
	if (s->state == SMTP_ST_CONNECTING) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
		    soerr != 0)
			err = soerr;
		buf_printf(&why, "connect to %s:%u: %s", s->name, s->port,
			   err != 0 ? strerror(err) : "Connection refused");
		session_fail(s, "4.4.1", buf_cstr(&why));
	} else if (s->state == SMTP_ST_IDLE || s->state == SMTP_ST_QUIT) {
		session_free(s);
	} else {
		buf_printf(&why, "lost connection with %s while %s", s->name,
			   smtp_states[s->state].stage);
		session_fail(s, "4.4.2", buf_cstr(&why));
	}
	buf_deinit(&why);
}

static int bind_source(int fd, int family, const char *bind_address)
{
	if (bind_address == NULL || *bind_address == '\0')
		return 0;
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		if (inet_pton(AF_INET, bind_address, &sin->sin_addr) != 1)
			return 0; /* an IPv6 source does not apply to IPv4 */
		sin->sin_family = AF_INET;
		return bind(fd, (struct sockaddr *)sin, sizeof(*sin));
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET6, bind_address, &sin6->sin6_addr) != 1)
		return 0;
	sin6->sin6_family = AF_INET6;
	return bind(fd, (struct sockaddr *)sin6, sizeof(*sin6));
}

static struct smtp_session *session_new(struct smtp_delivery *d, const struct smtp_addr *a)
{
	struct smtp_engine *e = d->eng;
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	unsigned port = 25;
	s->eng = e;
	s->key = xstrdup(d->key);
	s->host = xstrdup(a->host);
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
		(void)inet_ntop(AF_INET, &sin->sin_addr, s->ip, sizeof(s->ip));
		port = ntohs(sin->sin_port);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
		(void)inet_ntop(AF_INET6, &sin6->sin6_addr, s->ip, sizeof(s->ip));
		port = ntohs(sin6->sin6_port);
	}
	s->port = port;
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s[%s]", s->host, s->ip);
	s->name = buf_steal(&b);
	buf_printf(&b, "%s:%u", s->name, port);
	s->relay = buf_steal(&b);
	smtp_reply_init(&s->reply);
	s->timer = evtimer_new(e->base, session_on_timer, s);
	if (s->timer == NULL)
		mem_fail("evtimer_new");
	TAILQ_INSERT_TAIL(&e->sessions, s, link);
	s->dlv = d;
	d->sess = s;
	return s;
}

/* Try the next address of d, or give up with the last error. */
static void session_connect_next(struct smtp_delivery *d)
{
	while (d->next_addr < d->n_addrs) {
		const struct smtp_addr *a = &d->addrs[d->next_addr++];
		struct smtp_session *s = session_new(d, a);
		struct buf why = BUF_INIT;
		int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind_source(fd, a->ss.ss_family, d->eng->s.bind_address) < 0) {
			buf_printf(&why, "connect to %s:%u: %s", s->name, s->port, strerror(errno));
			if (fd >= 0)
				(void)close(fd);
			goto failed;
		}
		s->bev = bufferevent_socket_new(d->eng->base, fd, BEV_OPT_CLOSE_ON_FREE);
		if (s->bev == NULL) {
			(void)close(fd);
			buf_printf(&why, "connect to %s:%u: out of memory", s->name, s->port);
			goto failed;
		}
		bufferevent_setcb(s->bev, session_on_read, session_on_write, session_on_event, s);
		s->state = SMTP_ST_CONNECTING;
		session_set_state(s, SMTP_ST_CONNECTING);
		if (bufferevent_socket_connect(s->bev, (const struct sockaddr *)&a->ss,
					       (int)a->len) < 0) {
			buf_printf(&why, "connect to %s:%u: %s", s->name, s->port,
				   strerror(errno != 0 ? errno : ECONNREFUSED));
			goto failed;
		}
		bufferevent_enable(s->bev, EV_READ | EV_WRITE);
		buf_deinit(&why);
		return;
failed:
		buf_reset(&d->last_error);
		buf_append_str(&d->last_error, buf_cstr(&why));
		(void)str_copy(d->last_dsn, sizeof(d->last_dsn), "4.4.1");
		buf_deinit(&why);
		session_free(s);
	}
	/* Every address failed: the last error decides (Postfix's "all MX
	 * hosts failed": a 5xx from the last server bounces). */
	enum smtp_proto_status st = d->last_dsn[0] == '5' ? SMTP_PROTO_BOUNCED
							  : SMTP_PROTO_DEFERRED;
	if (d->last_error.len == 0) {
		buf_printf(&d->last_error, "no address for %s", d->req.nexthop);
		(void)str_copy(d->last_dsn, sizeof(d->last_dsn), "4.4.4");
		st = SMTP_PROTO_DEFERRED;
	}
	if (st == SMTP_PROTO_DEFERRED && d->last_dsn[0] != '4') {
		d->last_dsn[0] = '4';
	}
	rcpt_set_all(d, st, d->last_dsn, buf_cstr(&d->last_error));
	delivery_finish(d);
}

/* ------------------------------------------------------------ deliveries */

static void addr_add(struct smtp_delivery *d, const char *host, const struct sockaddr *sa,
		     socklen_t len)
{
	d->addrs = xreallocarray(d->addrs, d->n_addrs + 1, sizeof(*d->addrs));
	struct smtp_addr *a = &d->addrs[d->n_addrs++];
	memset(a, 0, sizeof(*a));
	a->host = xstrdup(host);
	memcpy(&a->ss, sa, len);
	a->len = len;
}

static void on_dns(void *ctx, const struct dns_mx_result *res)
{
	struct smtp_delivery *d = ctx;
	struct buf why = BUF_INIT;
	const char *type = d->req.no_mx ? "A" : "MX";
	d->dq = NULL;
	if (res->null_mx) {
		/* RFC 7505 3: the domain accepts no mail. */
		buf_printf(&why, "Domain %s does not accept mail (nullMX)", d->req.nexthop);
		rcpt_set_all(d, SMTP_PROTO_BOUNCED, "5.1.10", buf_cstr(&why));
	} else if (res->status != DNS_OK) {
		/* The resolver's text is Postfix's ("Host or domain name not
		 * found. Name service error for name=N type=T: Host not found[,
		 * try again]"); a permanent failure bounces, others defer. */
		bool perm = res->status == DNS_NOTFOUND || res->status == DNS_PERMFAIL;
		if (res->error != NULL)
			buf_append_str(&why, res->error);
		else
			buf_printf(&why, "Host or domain name not found. Name service error for "
				   "name=%s type=%s: Host not found%s", d->req.nexthop, type,
				   perm ? "" : ", try again");
		const char *dsn = res->dsn != NULL ? res->dsn : perm ? "5.4.4" : "4.4.3";
		rcpt_set_all(d, perm && dsn[0] == '5' ? SMTP_PROTO_BOUNCED : SMTP_PROTO_DEFERRED,
			     dsn, buf_cstr(&why));
	} else {
		for (size_t i = 0; i < res->n_hosts; i++) {
			const struct dns_mx_host *h = &res->hosts[i];
			for (size_t j = 0; j < h->n_addrs; j++) {
				socklen_t len = h->addrs[j].ss_family == AF_INET6
							? sizeof(struct sockaddr_in6)
							: sizeof(struct sockaddr_in);
				addr_add(d, h->host, (const struct sockaddr *)&h->addrs[j], len);
			}
		}
		buf_deinit(&why);
		session_connect_next(d);
		return;
	}
	buf_deinit(&why);
	delivery_finish(d);
}

static void delivery_free(struct smtp_delivery *d)
{
	if (d->sess != NULL)
		d->sess->dlv = NULL;
	dns_cancel(&d->dq);
	if (d->fd >= 0)
		(void)close(d->fd);
	qfile_msg_free(&d->qm);
	if (d->rs != NULL) {
		for (size_t i = 0; i < d->req.n_rcpts; i++) {
			free(d->rs[i].dsn);
			free(d->rs[i].text);
		}
	}
	free(d->rs);
	free(d->txn_rcpts);
	for (size_t i = 0; i < d->n_addrs; i++)
		free(d->addrs[i].host);
	free(d->addrs);
	buf_deinit(&d->last_error);
	xfer_release(d);
	free(d->last_relay);
	free(d->key);
	if (d->ev_done != NULL)
		event_free(d->ev_done);
	smtp_proto_request_clear(&d->req);
	free(d);
}

static void delivery_log(struct smtp_delivery *d)
{
	struct timeval now;
	(void)gettimeofday(&now, NULL);
	for (size_t i = 0; i < d->req.n_rcpts; i++) {
		const struct smtp_rcpt_state *r = &d->rs[i];
		struct mail_log_delivery l;
		struct buf line = BUF_INIT;
		memset(&l, 0, sizeof(l));
		l.queue_id = d->req.queue_id;
		l.to = r->qr != NULL ? r->qr->address : d->req.rcpts[i].address;
		l.orig_to = r->qr != NULL ? r->qr->orig_to : NULL;
		/* Postfix: relay=none when no server was reached. */
		l.relay = d->last_relay != NULL ? d->last_relay : "none";
		if (d->qm != NULL) {
			l.arrival.tv_sec = (time_t)d->qm->arrival_sec;
			l.arrival.tv_usec = (suseconds_t)d->qm->arrival_usec;
		} else {
			l.arrival = d->t_handoff;
		}
		l.active.tv_sec = d->req.active_sec > 0 ? (time_t)d->req.active_sec
							: d->t_handoff.tv_sec;
		l.active.tv_usec = d->req.active_sec > 0 ? (suseconds_t)d->req.active_usec
							 : d->t_handoff.tv_usec;
		l.handoff = d->t_handoff;
		l.conn_setup = d->t_conn;
		l.delivered = now;
		l.dsn = r->dsn;
		l.status = smtp_proto_status_name(r->status);
		l.reason = r->text;
		mail_log_delivery(&line, &l);
		log_info("%s", buf_cstr(&line));
		buf_deinit(&line);
	}
}

static void delivery_on_done(evutil_socket_t fd, short what, void *ctx)
{
	struct smtp_delivery *d = ctx;
	struct smtp_engine *e = d->eng;
	(void)fd;
	(void)what;
	struct smtp_proto_reply rep;
	memset(&rep, 0, sizeof(rep));
	rep.req = d->req.req;
	rep.relay = d->last_relay != NULL ? d->last_relay : (char *)"none";
	rep.dsn_announced = d->dsn_announced;
	rep.n_results = d->req.n_rcpts;
	rep.results = xcalloc(rep.n_results, sizeof(*rep.results));
	for (size_t i = 0; i < d->req.n_rcpts; i++) {
		rep.results[i].index = d->req.rcpts[i].index;
		rep.results[i].status = d->rs[i].status;
		rep.results[i].dsn = d->rs[i].dsn;
		rep.results[i].text = d->rs[i].text;
		rep.results[i].relayed = d->rs[i].relayed;
	}
	delivery_log(d);
	TAILQ_REMOVE(&e->deliveries, d, link);
	e->busy--;
	d->done(d->ctx, &rep);
	free(rep.results);
	delivery_free(d);
}

/* Every recipient has a result (anything left is deferred): report from
 * the loop, not from the caller's stack. */
static void delivery_finish(struct smtp_delivery *d)
{
	if (d->finished)
		return;
	d->finished = true;
	if (d->sess != NULL)
		session_detach(d->sess);
	rcpt_set_all(d, SMTP_PROTO_DEFERRED, "4.3.0",
		     d->last_error.len > 0 ? buf_cstr(&d->last_error) : "delivery not completed");
	event_active(d->ev_done, EV_TIMEOUT, 0);
}

/* Read and check the queue file: 0 or -1 with the reason in d. */
static int delivery_load(struct smtp_delivery *d)
{
	struct buf path = BUF_INIT;
	const char *error = NULL;
	queue_path(&path, d->eng->s.queue_dir, QUEUE_ACTIVE, d->req.queue_id);
	d->fd = open(buf_cstr(&path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (d->fd < 0) {
		log_warning("%s: open %s: %s", d->req.queue_id, buf_cstr(&path), strerror(errno));
		buf_deinit(&path);
		return -1;
	}
	buf_deinit(&path);
	if (qfile_read(d->fd, &d->qm, &error) < 0) {
		log_warning("%s: read queue file: %s", d->req.queue_id, error);
		return -1;
	}
	for (size_t i = 0; i < d->req.n_rcpts; i++) {
		unsigned idx = d->req.rcpts[i].index;
		if (idx >= d->qm->n_rcpts ||
		    strcmp(d->qm->rcpts[idx].address, d->req.rcpts[i].address) != 0 ||
		    d->qm->rcpts[idx].status != QRCPT_PENDING) {
			log_warning("%s: request does not match the queue file (recipient %u)",
				    d->req.queue_id, idx);
			return -1;
		}
		d->rs[i].qr = &d->qm->rcpts[idx];
	}
	return 0;
}

static struct smtp_session *cache_take(struct smtp_engine *e, const char *key)
{
	struct smtp_session *s;
	TAILQ_FOREACH(s, &e->sessions, link) {
		if (s->is_idle && s->state == SMTP_ST_IDLE && strcmp(s->key, key) == 0) {
			s->is_idle = false;
			return s;
		}
	}
	return NULL;
}

void smtp_engine_deliver(struct smtp_engine *e, struct smtp_proto_request *req,
			 smtp_engine_done_fn *done, void *ctx)
{
	struct smtp_delivery *d = xcalloc(1, sizeof(*d));
	d->eng = e;
	d->req = *req;
	memset(req, 0, sizeof(*req));
	d->done = done;
	d->ctx = ctx;
	d->fd = -1;
	buf_init(&d->last_error);
	d->rs = xcalloc(d->req.n_rcpts, sizeof(*d->rs));
	d->txn_rcpts = xcalloc(d->req.n_rcpts, sizeof(*d->txn_rcpts));
	d->ev_done = event_new(e->base, -1, 0, delivery_on_done, d);
	if (d->ev_done == NULL)
		mem_fail("event_new");
	(void)gettimeofday(&d->t_handoff, NULL);
	struct buf key = BUF_INIT;
	buf_printf(&key, "%s%s:%u", d->req.no_mx ? "[" : "", d->req.nexthop, d->req.port);
	d->key = str_lower_dup(buf_cstr(&key));
	buf_deinit(&key);
	TAILQ_INSERT_TAIL(&e->deliveries, d, link);
	e->busy++;

	if (delivery_load(d) < 0) {
		rcpt_set_all(d, SMTP_PROTO_DEFERRED, "4.3.0", "queue file read error");
		delivery_finish(d);
		return;
	}
	struct smtp_session *s = cache_take(e, d->key);
	if (s != NULL) {
		/* Connection reuse: the session was reset (RSET) before it
		 * went idle.  If it fails before delivering, the delivery
		 * routes afresh (session_fail). */
		s->dlv = d;
		d->sess = s;
		d->is_reused = true;
		(void)gettimeofday(&d->t_conn, NULL);
		transaction_start(s);
		return;
	}
	delivery_route(d);
}

/* Find the addresses of the nexthop and connect to the first. */
static void delivery_route(struct smtp_delivery *d)
{
	struct smtp_engine *e = d->eng;
	/* An address literal needs no DNS ("[192.0.2.1]", "[ipv6:...]"). */
	const char *host = d->req.nexthop;
	if (strv_case_prefix(strv_from_cstr(host), "ipv6:"))
		host += 5;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)d->req.port);
		addr_add(d, host, (struct sockaddr *)&sin, sizeof(sin));
		session_connect_next(d);
		return;
	}
	if (inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)d->req.port);
		addr_add(d, host, (struct sockaddr *)&sin6, sizeof(sin6));
		session_connect_next(d);
		return;
	}
	if (e->dns == NULL) {
		rcpt_set_all(d, SMTP_PROTO_DEFERRED, "4.4.3", "no DNS resolver");
		delivery_finish(d);
		return;
	}
	d->dq = dns_resolve_mx(e->dns, d->req.nexthop, d->req.no_mx, d->req.port, e->s.want_ipv4,
			       e->s.want_ipv6, on_dns, d);
}

struct smtp_engine *smtp_engine_new(struct event_base *base, struct dns *dns,
				    const struct smtp_settings *s)
{
	struct smtp_engine *e = xcalloc(1, sizeof(*e));
	e->base = base;
	e->dns = dns;
	e->s = *s;
	TAILQ_INIT(&e->sessions);
	TAILQ_INIT(&e->deliveries);
	return e;
}

unsigned smtp_engine_busy(const struct smtp_engine *e)
{
	return e->busy;
}

void smtp_engine_close_idle(struct smtp_engine *e)
{
	struct smtp_session *s, *next;
	for (s = TAILQ_FIRST(&e->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, link);
		if (s->is_idle) {
			s->is_idle = false;
			session_send(s, "QUIT");
			session_set_state(s, SMTP_ST_QUIT);
		}
	}
}

void smtp_engine_free(struct smtp_engine **ep)
{
	struct smtp_engine *e = *ep;
	struct smtp_delivery *d;
	struct smtp_session *s;
	if (e == NULL)
		return;
	while ((d = TAILQ_FIRST(&e->deliveries)) != NULL) {
		TAILQ_REMOVE(&e->deliveries, d, link);
		delivery_free(d);
	}
	while ((s = TAILQ_FIRST(&e->sessions)) != NULL)
		session_free(s);
	free(e);
	*ep = NULL;
}
