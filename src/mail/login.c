/* login.c - the login front end shared by pop3-login and imap-login (see
 * login.h): listeners, per-session buffers and timers, the hand-off of the
 * client connection to the privileged service (access_proto.h) and the
 * throttling of failed logins per client address.
 *
 * SIGTERM closes everything; SIGHUP stops listening and exits once the
 * pending sessions are gone (the master has started a successor).
 */
#include "mail/login.h"

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/access_proto.h"
#include "mail/auth.h"
#include "mail/config.h"
#include "mail/role.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LOGIN_AUTH_REPLY_SECS 60
/* The service may still be starting (its socket not there yet, right
 * after "facteur start" or a restart): retry the connection for a while. */
#define LOGIN_CONNECT_RETRY_MS 100
#define LOGIN_CONNECT_TRIES 100

enum login_state { LOGIN_CMD, LOGIN_CONNECT_RETRY, LOGIN_WAIT_AUTH, LOGIN_DELAY };

struct login_server {
	struct event_base *base;
	const struct role_env *env;
	const struct login_proto *proto;
	struct evconnlistener **listeners;
	size_t n_listeners;
	struct auth_throttle *throttle;
	bool disable_plaintext;
	unsigned idle_ms;
	size_t max_sessions;
	size_t n_sessions;
	bool draining;
	char *socket_path;
};

struct login_session {
	struct login_server *srv;
	void *state; /* the protocol's */
	int fd;
	char rip[ACCESS_PROTO_ADDR_MAX];
	bool secure; /* loopback (no TLS yet) */
	enum login_state lstate;
	bool delayed_temp;
	struct event *ev_read;
	struct event *ev_timer;
	struct event *ev_auth;
	int auth_fd;
	struct buf in;
	char *auth_user; /* being verified, for the log */
	struct buf req;	 /* the request packet (holds the password: wiped) */
	unsigned connect_tries;
};

static void login_session_free(struct login_session *s)
{
	struct login_server *srv = s->srv;
	if (s->state != NULL)
		srv->proto->session_free(s->state);
	if (s->ev_read != NULL)
		event_free(s->ev_read);
	if (s->ev_timer != NULL)
		event_free(s->ev_timer);
	if (s->ev_auth != NULL)
		event_free(s->ev_auth);
	if (s->auth_fd >= 0)
		(void)close(s->auth_fd);
	(void)close(s->fd);
	if (s->in.data != NULL)
		explicit_bzero(s->in.data, s->in.cap);
	buf_deinit(&s->in);
	if (s->req.data != NULL)
		explicit_bzero(s->req.data, s->req.cap);
	buf_deinit(&s->req);
	free(s->auth_user);
	free(s);
	srv->n_sessions--;
	if (srv->draining && srv->n_sessions == 0)
		event_base_loopbreak(srv->base);
}

/* Replies are a few lines: a client that does not read them while it
 * fills our receive side is dropped rather than buffered for. */
bool login_send(struct login_session *s, const char *text)
{
	size_t len = strlen(text);
	ssize_t n = send(s->fd, text, len, MSG_NOSIGNAL);
	return n == (ssize_t)len;
}

bool login_sendf(struct login_session *s, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	bool ok = login_send(s, buf_cstr(&b));
	buf_deinit(&b);
	return ok;
}

const char *login_rip(const struct login_session *s)
{
	return s->rip;
}

bool login_plaintext_allowed(const struct login_session *s)
{
	return !s->srv->disable_plaintext || s->secure;
}

bool login_busy(const struct login_session *s)
{
	return s->lstate != LOGIN_CMD;
}

struct config *login_config(const struct login_session *s)
{
	return s->srv->env->cfg;
}

static void login_timer_arm(struct login_session *s, unsigned ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	event_add(s->ev_timer, &tv);
}

/* Let the protocol take buffered input; close when it says so. */
static void login_process(struct login_session *s)
{
	if (!s->srv->proto->input(s, s->state, &s->in))
		login_session_free(s);
}

static void login_resume(struct login_session *s)
{
	s->lstate = LOGIN_CMD;
	event_add(s->ev_read, NULL);
	login_timer_arm(s, s->srv->idle_ms);
	login_process(s);
}

static void login_auth_reply_cb(evutil_socket_t fd, short what, void *arg)
{
	struct login_session *s = arg;
	struct login_server *srv = s->srv;
	unsigned char reply = 0;
	if ((what & EV_READ) != 0 && recv(fd, &reply, 1, MSG_DONTWAIT) != 1)
		reply = 0;
	event_free(s->ev_auth);
	s->ev_auth = NULL;
	(void)close(s->auth_fd);
	s->auth_fd = -1;
	time_t now = time(NULL);
	if (reply == ACCESS_PROTO_OK) {
		auth_throttle_success(srv->throttle, s->rip, now);
		/* The service owns the connection now: forget it. */
		login_session_free(s);
		return;
	}
	if (reply == ACCESS_PROTO_FAIL) {
		log_info("auth failed: user=<%s>, rip=%s", s->auth_user, s->rip);
		auth_throttle_failure(srv->throttle, s->rip, now);
		s->delayed_temp = false;
	} else {
		log_warning("auth: no answer from the %s service for user=<%s>, rip=%s",
			    srv->proto->name, s->auth_user, s->rip);
		s->delayed_temp = true;
	}
	free(s->auth_user);
	s->auth_user = NULL;
	s->lstate = LOGIN_DELAY;
	login_timer_arm(s, auth_throttle_delay_ms(srv->throttle, s->rip, now));
}

static void login_request_build(struct login_session *s, const char *user, const char *password,
				const char *tag, const void *pending, size_t pending_len)
{
	struct access_proto_req req;
	size_t ulen = strlen(user), plen = strlen(password), alen = strlen(s->rip);
	size_t tlen = tag != NULL ? strlen(tag) : 0;
	memset(&req, 0, sizeof(req));
	req.magic = ACCESS_PROTO_MAGIC;
	req.user_len = (uint16_t)ulen;
	req.password_len = (uint16_t)plen;
	req.addr_len = (uint16_t)alen;
	req.tag_len = (uint16_t)tlen;
	req.pending_len = (uint16_t)pending_len;
	struct buf *pkt = &s->req;
	buf_reset(pkt);
	buf_reserve(pkt, sizeof(req) + ulen + plen + alen + tlen + pending_len);
	buf_append(pkt, &req, sizeof(req));
	buf_append(pkt, user, ulen);
	buf_append(pkt, password, plen);
	buf_append(pkt, s->rip, alen);
	buf_append(pkt, tag != NULL ? tag : "", tlen);
	if (pending_len > 0)
		buf_append(pkt, pending, pending_len);
}

/* Send the request with the client socket attached; 0, or -1 with errno. */
static int login_request_send(struct login_session *s, int afd)
{
	struct iovec iov = { s->req.data, s->req.len };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	memset(&cbuf, 0, sizeof(cbuf));
	struct msghdr msg;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf.buf;
	msg.msg_controllen = sizeof(cbuf.buf);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &s->fd, sizeof(int));
	return sendmsg(afd, &msg, MSG_NOSIGNAL) == (ssize_t)s->req.len ? 0 : -1;
}

static void login_req_wipe(struct login_session *s)
{
	if (s->req.data != NULL)
		explicit_bzero(s->req.data, s->req.cap);
	buf_reset(&s->req);
}

/* Connect to the service and hand the request over (s->req). */
static void login_request_start(struct login_session *s)
{
	struct login_server *srv = s->srv;
	int afd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	bool connected = afd >= 0 && str_copy(sun.sun_path, sizeof(sun.sun_path), srv->socket_path) &&
			 connect(afd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	int err = errno;
	if (!connected && afd >= 0 && (err == ENOENT || err == ECONNREFUSED) &&
	    ++s->connect_tries < LOGIN_CONNECT_TRIES) {
		(void)close(afd);
		s->lstate = LOGIN_CONNECT_RETRY;
		login_timer_arm(s, LOGIN_CONNECT_RETRY_MS);
		return;
	}
	if (!connected || login_request_send(s, afd) < 0) {
		log_error("cannot reach the %s service at %s: %s", srv->proto->name,
			  srv->socket_path, strerror(connected ? errno : err));
		if (afd >= 0)
			(void)close(afd);
		login_req_wipe(s);
		free(s->auth_user);
		s->auth_user = NULL;
		s->delayed_temp = true;
		s->lstate = LOGIN_DELAY;
		login_timer_arm(s, 0);
		return;
	}
	login_req_wipe(s);
	evutil_make_socket_nonblocking(afd);
	s->auth_fd = afd;
	s->lstate = LOGIN_WAIT_AUTH;
	s->ev_auth = event_new(srv->base, afd, EV_READ, login_auth_reply_cb, s);
	struct timeval tv = { LOGIN_AUTH_REPLY_SECS, 0 };
	event_add(s->ev_auth, &tv);
}

void login_authenticate(struct login_session *s, const char *user, const char *password,
			const char *tag, const void *pending, size_t pending_len)
{
	s->lstate = LOGIN_DELAY;
	event_del(s->ev_read);
	event_del(s->ev_timer);
	if (strlen(user) > AUTH_USER_MAX || strlen(password) > AUTH_PASSWORD_MAX ||
	    (tag != NULL && strlen(tag) > ACCESS_PROTO_TAG_MAX) ||
	    pending_len > ACCESS_PROTO_PENDING_MAX) {
		s->delayed_temp = false;
		login_timer_arm(s, 0);
		return;
	}
	login_request_build(s, user, password, tag, pending, pending_len);
	free(s->auth_user);
	s->auth_user = xstrdup(user);
	s->connect_tries = 0;
	login_request_start(s);
}

static void login_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct login_session *s = arg;
	(void)what;
	char tmp[4096];
	ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		login_session_free(s);
		return;
	}
	if (s->in.len + (size_t)n > s->srv->proto->input_max) {
		(void)login_send(s, s->srv->proto->too_much_input);
		login_session_free(s);
		return;
	}
	buf_append(&s->in, tmp, (size_t)n);
	explicit_bzero(tmp, sizeof(tmp));
	login_timer_arm(s, s->srv->idle_ms);
	login_process(s);
}

static void login_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct login_session *s = arg;
	(void)fd;
	(void)what;
	if (s->lstate == LOGIN_CONNECT_RETRY) {
		login_request_start(s);
		return;
	}
	if (s->lstate == LOGIN_DELAY) {
		if (!s->srv->proto->auth_failed(s, s->state, s->delayed_temp)) {
			login_session_free(s);
			return;
		}
		login_resume(s);
		return;
	}
	(void)login_send(s, s->srv->proto->idle_timeout);
	login_session_free(s);
}

static void login_addr_text(const struct sockaddr *sa, char *out, size_t size, bool *loopback_r)
{
	*loopback_r = false;
	(void)str_copy(out, size, "unknown");
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		(void)inet_ntop(AF_INET, &s4->sin_addr, out, (socklen_t)size);
		*loopback_r = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		(void)inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)size);
		*loopback_r = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
			      (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && s6->sin6_addr.s6_addr[12] == 127);
	}
}

static void login_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
			    int salen, void *arg)
{
	struct login_server *srv = arg;
	(void)l;
	(void)salen;
	if (srv->n_sessions >= srv->max_sessions) {
		const char *t = srv->proto->too_many_connections;
		(void)send(fd, t, strlen(t), MSG_NOSIGNAL);
		(void)close(fd);
		return;
	}
	struct login_session *s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->fd = fd;
	s->auth_fd = -1;
	login_addr_text(sa, s->rip, sizeof(s->rip), &s->secure);
	srv->n_sessions++;
	evutil_make_socket_nonblocking(fd);
	s->ev_read = event_new(srv->base, fd, EV_READ | EV_PERSIST, login_read_cb, s);
	s->ev_timer = evtimer_new(srv->base, login_timer_cb, s);
	s->state = srv->proto->session_new(s);
	bool greeted = srv->proto->greeting != NULL ? login_send(s, srv->proto->greeting)
						    : srv->proto->greet(s, s->state);
	if (!greeted) {
		login_session_free(s);
		return;
	}
	login_resume(s);
}

static void login_close_listeners(struct login_server *srv)
{
	for (size_t i = 0; i < srv->n_listeners; i++) {
		if (srv->listeners[i] != NULL)
			evconnlistener_free(srv->listeners[i]);
		srv->listeners[i] = NULL;
	}
}

static void login_sig_cb(evutil_socket_t sig, short what, void *arg)
{
	struct login_server *srv = arg;
	(void)what;
	login_close_listeners(srv);
	if (sig == SIGHUP && srv->n_sessions > 0) {
		srv->draining = true;
		return;
	}
	event_base_loopbreak(srv->base);
}

int login_main(const struct role_env *env, const struct login_proto *proto)
{
	struct login_server srv;
	memset(&srv, 0, sizeof(srv));
	signal(SIGPIPE, SIG_IGN);
	srv.env = env;
	srv.proto = proto;
	srv.base = event_base_new();
	if (srv.base == NULL) {
		log_error("event_base_new failed");
		return 1;
	}
	srv.disable_plaintext = config_get_bool(env->cfg, "disable_plaintext_auth");
	srv.idle_ms = (unsigned)config_get_time(env->cfg, proto->timeout_param) * 1000u;
	srv.max_sessions = (size_t)config_get_int(env->cfg, proto->max_sessions_param);
	srv.throttle = auth_throttle_new(AUTH_THROTTLE_DELAY_MAX_MS, AUTH_THROTTLE_WINDOW_S,
					 AUTH_THROTTLE_ENTRIES);
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/%s", env->queue_dir, proto->socket_name);
	srv.socket_path = buf_steal(&path);
	srv.listeners = xcalloc(env->n_listeners + 1, sizeof(*srv.listeners));
	srv.n_listeners = env->n_listeners;
	for (size_t i = 0; i < env->n_listeners; i++) {
		evutil_make_socket_nonblocking(env->listeners[i].fd);
		srv.listeners[i] = evconnlistener_new(srv.base, login_accept_cb, &srv,
						      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
						      -1, env->listeners[i].fd);
		if (srv.listeners[i] == NULL)
			log_error("listener %s: cannot watch", env->listeners[i].address);
	}
	struct event *ev_term = evsignal_new(srv.base, SIGTERM, login_sig_cb, &srv);
	struct event *ev_int = evsignal_new(srv.base, SIGINT, login_sig_cb, &srv);
	struct event *ev_hup = evsignal_new(srv.base, SIGHUP, login_sig_cb, &srv);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	event_add(ev_hup, NULL);
	event_base_dispatch(srv.base);
	login_close_listeners(&srv);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	free(srv.listeners);
	free(srv.socket_path);
	auth_throttle_free(&srv.throttle);
	event_base_free(srv.base);
	return 0;
}
