/* smtp.c - the SMTP client role: smtp_main.
 *
 * Forked by the master, unprivileged (mail_owner).  Serves the queue
 * manager on the SOCK_SEQPACKET socket QDIR/private/smtp (mode 0600; a peer
 * must have mail_owner's uid or ours, SO_PEERCRED) with the protocol of
 * mail/smtp_proto.h.  One process, one libevent loop: every request is a
 * delivery of smtp_deliver.c running concurrently with the others (the
 * queue manager bounds how many per destination and overall).
 *
 * A malformed request gets a reply that defers its recipients (when its
 * req and recipients could be read) and a warning; otherwise it is
 * dropped with a warning (the queue manager's own timeout... none: it
 * defers when the connection breaks, so a peer that sends garbage is
 * disconnected).
 *
 * Signals: SIGTERM/SIGINT stop now (deliveries in flight are abandoned;
 * the queue manager has them still pending and retries them:
 * at-least-once); SIGHUP stops reading requests, finishes the deliveries
 * in flight, then exits.  The socket is never unlinked at exit: a
 * successor may already have replaced it.
 */
#include "smtp/smtp.h"
#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/config.h"
#include "mail/dns.h"
#include "mail/ipc.h"
#include "mail/role.h"
#include "mail/smtp_proto.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct smtp_conn {
	LIST_ENTRY(smtp_conn) link;
	struct smtp_server *srv;
	int fd;
	unsigned long id;
	struct event *ev;
};

struct smtp_server {
	const struct role_env *env;
	struct event_base *base;
	struct smtp_engine *eng;
	int listen_fd;
	struct event *ev_listen;
	LIST_HEAD(, smtp_conn) conns;
	unsigned long next_id;
	uint8_t *rbuf;
	bool is_draining;
};

/* What a delivery carries to find its connection again. */
struct smtp_req_ctx {
	struct smtp_server *srv;
	unsigned long conn_id;
};

static struct smtp_conn *conn_find(struct smtp_server *srv, unsigned long id)
{
	struct smtp_conn *c;
	LIST_FOREACH(c, &srv->conns, link)
		if (c->id == id)
			return c;
	return NULL;
}

static void conn_close(struct smtp_conn *c)
{
	LIST_REMOVE(c, link);
	event_free(c->ev);
	if (close(c->fd) < 0)
		log_warning("close queue manager connection: %s", strerror(errno));
	free(c);
}

static void conn_send(struct smtp_conn *c, const struct smtp_proto_reply *rep)
{
	struct buf b = BUF_INIT;
	const char *error;
	if (smtp_proto_reply_encode(&b, rep, &error) < 0) {
		log_warning("cannot encode a reply: %s", error);
	} else if (send(c->fd, b.data, b.len, MSG_NOSIGNAL) != (ssize_t)b.len) {
		/* Blocking send on a non-blocking socket may fail when the
		 * queue manager does not read: it then defers them all when
		 * we drop the connection. */
		log_warning("cannot send a reply to the queue manager: %s", strerror(errno));
	}
	buf_deinit(&b);
}

static void on_delivery_done(void *ctx, const struct smtp_proto_reply *rep)
{
	struct smtp_req_ctx *rc = ctx;
	struct smtp_server *srv = rc->srv;
	struct smtp_conn *c = conn_find(srv, rc->conn_id);
	if (c != NULL)
		conn_send(c, rep);
	free(rc);
	if (srv->is_draining && smtp_engine_busy(srv->eng) == 0)
		event_base_loopexit(srv->base, NULL);
}

/* A request we cannot run: a reply without results, so the queue manager
 * defers every recipient of that request (or, when even req could not be
 * read, drops the connection and defers everything in flight). */
static void reply_malformed(struct smtp_conn *c, uint64_t req, const char *why)
{
	log_warning("malformed delivery request: %s", why);
	struct smtp_proto_reply rep;
	memset(&rep, 0, sizeof(rep));
	rep.req = req;
	rep.relay = (char *)"none";
	conn_send(c, &rep);
}

static void on_conn_read(evutil_socket_t fd, short what, void *ctx)
{
	struct smtp_conn *c = ctx;
	struct smtp_server *srv = c->srv;
	(void)what;
	for (;;) {
		if (srv->is_draining)
			return;
		ssize_t n = recv(fd, srv->rbuf, SMTP_PROTO_MAX_PACKET + 1,
				 MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			log_warning("recv from the queue manager: %s", strerror(errno));
			conn_close(c);
			return;
		}
		if (n == 0) {
			conn_close(c);
			return;
		}
		struct smtp_proto_request req;
		const char *error = "packet too large";
		if ((size_t)n > SMTP_PROTO_MAX_PACKET) {
			reply_malformed(c, 0, error);
			continue;
		}
		if (smtp_proto_request_decode(srv->rbuf, (size_t)n, &req, &error) < 0) {
			reply_malformed(c, req.req, error);
			continue;
		}
		struct smtp_req_ctx *rc = xmalloc(sizeof(*rc));
		rc->srv = srv;
		rc->conn_id = c->id;
		smtp_engine_deliver(srv->eng, &req, on_delivery_done, rc);
	}
}

static void on_accept(evutil_socket_t lfd, short what, void *ctx)
{
	struct smtp_server *srv = ctx;
	(void)what;
	for (;;) {
		int fd = ipc_accept(srv->env, lfd);
		if (fd < 0) {
			if (errno == EPERM)
				continue; /* not mail_owner: refused and logged */
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warning("accept: %s", strerror(errno));
			return;
		}
		struct smtp_conn *c = xcalloc(1, sizeof(*c));
		c->srv = srv;
		c->fd = fd;
		c->id = ++srv->next_id;
		c->ev = event_new(srv->base, fd, EV_READ | EV_PERSIST, on_conn_read, c);
		if (c->ev == NULL)
			mem_fail("event_new");
		event_add(c->ev, NULL);
		LIST_INSERT_HEAD(&srv->conns, c, link);
	}
}

static void on_sigterm(evutil_socket_t sig, short what, void *ctx)
{
	struct smtp_server *srv = ctx;
	(void)what;
	log_info("stopping on signal %d", (int)sig);
	event_base_loopbreak(srv->base);
}

static void on_sighup(evutil_socket_t sig, short what, void *ctx)
{
	struct smtp_server *srv = ctx;
	(void)sig;
	(void)what;
	if (srv->is_draining)
		return;
	srv->is_draining = true;
	if (srv->ev_listen != NULL)
		event_del(srv->ev_listen);
	smtp_engine_close_idle(srv->eng);
	if (smtp_engine_busy(srv->eng) == 0)
		event_base_loopexit(srv->base, NULL);
}

/* inet_protocols: "all", "ipv4", "ipv6" or a list of them. */
static void protocols(struct config *cfg, bool *v4, bool *v6)
{
	char **list = config_get_list(cfg, "inet_protocols");
	*v4 = *v6 = false;
	for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
		if (str_casecmp(list[i], "all") == 0)
			*v4 = *v6 = true;
		else if (str_casecmp(list[i], "ipv4") == 0)
			*v4 = true;
		else if (str_casecmp(list[i], "ipv6") == 0)
			*v6 = true;
	}
	if (!*v4 && !*v6)
		*v4 = *v6 = true;
}

int smtp_main(const struct role_env *env)
{
	struct config *cfg = env->cfg;
	struct smtp_server srv;
	struct smtp_settings s;
	const char *error;

	log_set_role("smtp");
	if (role_drop_privileges(env, &error) < 0)
		log_fatal("drop privileges: %s: %s", error, strerror(errno));
	(void)signal(SIGPIPE, SIG_IGN);

	memset(&s, 0, sizeof(s));
	s.queue_dir = env->queue_dir;
	s.helo_name = config_get(cfg, "smtp_helo_name");
	s.bind_address = config_get(cfg, "smtp_bind_address");
	protocols(cfg, &s.want_ipv4, &s.want_ipv6);
	s.connect_timeout = config_get_time(cfg, "smtp_connect_timeout");
	s.helo_timeout = config_get_time(cfg, "smtp_helo_timeout");
	s.mail_timeout = config_get_time(cfg, "smtp_mail_timeout");
	s.rcpt_timeout = config_get_time(cfg, "smtp_rcpt_timeout");
	s.data_init_timeout = config_get_time(cfg, "smtp_data_init_timeout");
	s.data_xfer_timeout = config_get_time(cfg, "smtp_data_xfer_timeout");
	s.data_done_timeout = config_get_time(cfg, "smtp_data_done_timeout");
	s.rset_timeout = config_get_time(cfg, "smtp_rset_timeout");
	s.quit_timeout = config_get_time(cfg, "smtp_quit_timeout");
	s.cache_time = config_get_time(cfg, "smtp_connection_cache_time_limit");
	if (s.connect_timeout < 1)
		s.connect_timeout = 30;

	memset(&srv, 0, sizeof(srv));
	srv.env = env;
	LIST_INIT(&srv.conns);
	srv.base = event_base_new();
	if (srv.base == NULL)
		log_fatal("event_base_new failed");
	/* dns_servers, dns_timeout, dns_tries, smtp_mx_address_limit. */
	struct dns *dns = dns_new_config(srv.base, cfg, &error);
	if (dns == NULL)
		log_fatal("DNS resolver: %s", error);
	srv.eng = smtp_engine_new(srv.base, dns, &s);
	srv.rbuf = xmalloc(SMTP_PROTO_MAX_PACKET + 1);
	srv.listen_fd = ipc_listen(env, SMTP_PROTO_SOCKET_NAME);
	srv.ev_listen = event_new(srv.base, srv.listen_fd, EV_READ | EV_PERSIST, on_accept, &srv);
	struct event *ev_term = evsignal_new(srv.base, SIGTERM, on_sigterm, &srv);
	struct event *ev_int = evsignal_new(srv.base, SIGINT, on_sigterm, &srv);
	struct event *ev_hup = evsignal_new(srv.base, SIGHUP, on_sighup, &srv);
	if (srv.ev_listen == NULL || ev_term == NULL || ev_int == NULL || ev_hup == NULL)
		log_fatal("event_new failed");
	event_add(srv.ev_listen, NULL);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	event_add(ev_hup, NULL);

	(void)event_base_dispatch(srv.base);

	smtp_engine_free(&srv.eng);
	while (!LIST_EMPTY(&srv.conns))
		conn_close(LIST_FIRST(&srv.conns));
	event_free(srv.ev_listen);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	(void)close(srv.listen_fd);
	dns_free(&dns);
	free(srv.rbuf);
	event_base_free(srv.base);
	return 0;
}
