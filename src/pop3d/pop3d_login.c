/* pop3d_login.c - the pop3-login role: the unprivileged (mail_owner),
 * event-driven POP3 front end of the AUTHORIZATION state (RFC 1939 section
 * 4, CAPA from RFC 2449, AUTH from RFC 5034).  It never sees a mailbox and
 * never checks a password itself: the credentials and the client socket
 * go to the privileged pop3 role (mail/pop3_proto.h), which verifies them
 * and, on success, serves the rest of the session as the mailbox owner.
 *
 * Failed logins are logged and the answer is delayed per client address
 * (auth_throttle, a timer: the process never blocks).  Plaintext logins are
 * accepted only from loopback while disable_plaintext_auth = yes (no TLS
 * yet).  SIGTERM closes everything; SIGHUP stops listening and exits once
 * the pending sessions are gone.
 */
#include "pop3d/pop3d.h"

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/auth.h"
#include "mail/config.h"
#include "mail/pop3_proto.h"
#include "mail/role.h"
#include "mail/sasl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LOGIN_AUTH_REPLY_SECS 60
#define LOGIN_MAX_BAD_COMMANDS 10
#define LOGIN_LINE_MAX SASL_LINE_MAX
#define LOGIN_MAX_SESSIONS 1000

enum login_state { LOGIN_CMD, LOGIN_SASL, LOGIN_WAIT_AUTH, LOGIN_DELAY };

struct login_server {
	struct event_base *base;
	const struct role_env *env;
	struct evconnlistener **listeners;
	size_t n_listeners;
	struct auth_throttle *throttle;
	bool disable_plaintext;
	unsigned idle_ms; /* pop3_login_timeout */
	size_t n_sessions;
	bool draining;
	char *socket_path;
};

struct login_session {
	struct login_server *srv;
	int fd;
	char rip[POP3_PROTO_ADDR_MAX];
	bool secure; /* loopback (no TLS yet) */
	enum login_state state;
	struct event *ev_read;
	struct event *ev_timer;
	struct event *ev_auth;
	int auth_fd;
	struct buf in;
	char *user;	  /* from USER */
	char *auth_user;  /* being verified, for the log */
	struct sasl_server *sasl;
	unsigned bad_commands;
	const char *delayed_reply;
};

static void login_session_process(struct login_session *s);

static void login_session_free(struct login_session *s, bool close_fd)
{
	struct login_server *srv = s->srv;
	if (s->ev_read != NULL)
		event_free(s->ev_read);
	if (s->ev_timer != NULL)
		event_free(s->ev_timer);
	if (s->ev_auth != NULL)
		event_free(s->ev_auth);
	if (s->auth_fd >= 0)
		(void)close(s->auth_fd);
	if (close_fd)
		(void)close(s->fd);
	if (s->in.data != NULL)
		explicit_bzero(s->in.data, s->in.cap);
	buf_deinit(&s->in);
	free(s->user);
	free(s->auth_user);
	sasl_server_free(&s->sasl);
	free(s);
	srv->n_sessions--;
	if (srv->draining && srv->n_sessions == 0)
		event_base_loopbreak(srv->base);
}

/* Replies are a few lines: a client that does not read them while it
 * fills our receive side is dropped rather than buffered for. */
static bool login_send(struct login_session *s, const char *text)
{
	size_t len = strlen(text);
	ssize_t n = send(s->fd, text, len, MSG_NOSIGNAL);
	return n == (ssize_t)len;
}

static void login_timer_arm(struct login_session *s, unsigned ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	event_add(s->ev_timer, &tv);
}

static void login_resume(struct login_session *s)
{
	s->state = LOGIN_CMD;
	event_add(s->ev_read, NULL);
	login_timer_arm(s, s->srv->idle_ms);
	login_session_process(s);
}

static void login_auth_reply_cb(evutil_socket_t fd, short what, void *arg)
{
	struct login_session *s = arg;
	unsigned char reply = 0;
	if ((what & EV_READ) != 0 && recv(fd, &reply, 1, MSG_DONTWAIT) != 1)
		reply = 0;
	event_free(s->ev_auth);
	s->ev_auth = NULL;
	(void)close(s->auth_fd);
	s->auth_fd = -1;
	time_t now = time(NULL);
	if (reply == POP3_PROTO_OK) {
		auth_throttle_success(s->srv->throttle, s->rip, now);
		/* pop3 owns the connection now: forget it. */
		login_session_free(s, true);
		return;
	}
	if (reply == POP3_PROTO_FAIL) {
		log_info("auth failed: user=<%s>, rip=%s", s->auth_user, s->rip);
		auth_throttle_failure(s->srv->throttle, s->rip, now);
		s->delayed_reply = "-ERR [AUTH] Authentication failed.\r\n";
	} else {
		log_warning("auth: no answer from the pop3 service for user=<%s>, rip=%s",
			    s->auth_user, s->rip);
		s->delayed_reply = "-ERR [SYS/TEMP] Temporary authentication failure.\r\n";
	}
	free(s->auth_user);
	s->auth_user = NULL;
	s->state = LOGIN_DELAY;
	unsigned delay = auth_throttle_delay_ms(s->srv->throttle, s->rip, now);
	login_timer_arm(s, delay);
}

/* Hand the credentials, the client socket and the bytes that followed
 * the login command to the pop3 role (pop3_proto.h). */
static void login_authenticate(struct login_session *s, const char *user, const char *password)
{
	struct login_server *srv = s->srv;
	struct pop3_proto_req req;
	size_t ulen = strlen(user), plen = strlen(password), alen = strlen(s->rip);
	size_t pending = s->in.len;
	if (ulen > AUTH_USER_MAX || plen > AUTH_PASSWORD_MAX || pending > POP3_PROTO_PENDING_MAX) {
		(void)login_send(s, "-ERR [AUTH] Authentication failed.\r\n");
		return;
	}
	memset(&req, 0, sizeof(req));
	req.magic = POP3_PROTO_MAGIC;
	req.user_len = (uint16_t)ulen;
	req.password_len = (uint16_t)plen;
	req.addr_len = (uint16_t)alen;
	req.pending_len = (uint16_t)pending;
	struct buf pkt = BUF_INIT;
	buf_reserve(&pkt, sizeof(req) + ulen + plen + alen + pending);
	buf_append(&pkt, &req, sizeof(req));
	buf_append(&pkt, user, ulen);
	buf_append(&pkt, password, plen);
	buf_append(&pkt, s->rip, alen);
	if (pending > 0)
		buf_append(&pkt, s->in.data, pending);

	int afd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	bool ok = afd >= 0 && str_copy(sun.sun_path, sizeof(sun.sun_path), srv->socket_path) &&
		  connect(afd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	if (ok) {
		struct iovec iov = { pkt.data, pkt.len };
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
		ok = sendmsg(afd, &msg, MSG_NOSIGNAL) == (ssize_t)pkt.len;
	}
	explicit_bzero(pkt.data, pkt.cap);
	buf_deinit(&pkt);
	if (!ok) {
		log_error("cannot reach the pop3 service at %s: %s", srv->socket_path,
			  strerror(errno));
		if (afd >= 0)
			(void)close(afd);
		(void)login_send(s, "-ERR [SYS/TEMP] Temporary authentication failure.\r\n");
		return;
	}
	evutil_make_socket_nonblocking(afd);
	s->auth_fd = afd;
	s->auth_user = xstrdup(user);
	s->state = LOGIN_WAIT_AUTH;
	event_del(s->ev_read);
	event_del(s->ev_timer);
	s->ev_auth = event_new(srv->base, afd, EV_READ, login_auth_reply_cb, s);
	struct timeval tv = { LOGIN_AUTH_REPLY_SECS, 0 };
	event_add(s->ev_auth, &tv);
}

static const char login_capa[] = "+OK\r\n"
				 "CAPA\r\n"
				 "TOP\r\n"
				 "UIDL\r\n"
				 "RESP-CODES\r\n"
				 "PIPELINING\r\n"
				 "AUTH-RESP-CODE\r\n"
				 "USER\r\n"
				 "SASL PLAIN LOGIN\r\n"
				 "IMPLEMENTATION facteur\r\n"
				 ".\r\n";

static const char login_plain_refused[] =
	"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n";

static void login_sasl_result(struct login_session *s, int r, char *challenge, const char *error)
{
	if (r == 0) {
		struct buf b = BUF_INIT;
		buf_printf(&b, "+ %s\r\n", challenge);
		free(challenge);
		s->state = LOGIN_SASL;
		if (!login_send(s, buf_cstr(&b)))
			s->bad_commands = LOGIN_MAX_BAD_COMMANDS;
		buf_deinit(&b);
		return;
	}
	if (r < 0) {
		bool cancelled = sasl_server_cancelled(s->sasl);
		sasl_server_free(&s->sasl);
		s->state = LOGIN_CMD;
		s->bad_commands++;
		(void)error;
		(void)login_send(s, cancelled ? "-ERR Authentication cancelled.\r\n"
					      : "-ERR Invalid AUTH data.\r\n");
		return;
	}
	const char *user, *password;
	sasl_server_credentials(s->sasl, &user, &password);
	s->state = LOGIN_CMD;
	login_authenticate(s, user, password);
	sasl_server_free(&s->sasl);
}

static void login_command(struct login_session *s, char *line)
{
	struct pop3_cmd cmd;
	const char *error;
	if (pop3_cmd_parse(line, &cmd, &error) < 0) {
		struct buf b = BUF_INIT;
		buf_printf(&b, "-ERR %s\r\n", error);
		(void)login_send(s, buf_cstr(&b));
		buf_deinit(&b);
		s->bad_commands++;
		return;
	}
	switch (cmd.id) {
	case POP3_CMD_CAPA:
		(void)login_send(s, login_capa);
		return;
	case POP3_CMD_QUIT:
		(void)login_send(s, "+OK Logging out.\r\n");
		s->bad_commands = LOGIN_MAX_BAD_COMMANDS + 1; /* close */
		return;
	case POP3_CMD_NOOP:
		(void)login_send(s, "+OK\r\n");
		return;
	case POP3_CMD_USER:
		if (s->srv->disable_plaintext && !s->secure) {
			(void)login_send(s, login_plain_refused);
			return;
		}
		if (cmd.rest[0] == '\0' || strlen(cmd.rest) > AUTH_USER_MAX) {
			(void)login_send(s, "-ERR USER: expected a user name.\r\n");
			s->bad_commands++;
			return;
		}
		free(s->user);
		s->user = xstrdup(cmd.rest);
		(void)login_send(s, "+OK\r\n");
		return;
	case POP3_CMD_PASS:
		if (s->user == NULL) {
			(void)login_send(s, "-ERR No username given.\r\n");
			s->bad_commands++;
			return;
		} else {
			char *user = s->user;
			s->user = NULL;
			login_authenticate(s, user, cmd.rest);
			free(user);
		}
		return;
	case POP3_CMD_AUTH: {
		if (s->srv->disable_plaintext && !s->secure) {
			(void)login_send(s, login_plain_refused);
			return;
		}
		if (cmd.argc == 0) {
			/* Not in RFC 5034; common clients probe this way. */
			(void)login_send(s, "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n");
			return;
		}
		const char *ir = NULL;
		if (cmd.argc == 2) {
			ir = cmd.rest + strcspn(cmd.rest, " ");
			ir += strspn(ir, " ");
		}
		s->sasl = sasl_server_new(cmd.argv[0], ir);
		if (s->sasl == NULL) {
			(void)login_send(s, "-ERR Unsupported authentication mechanism.\r\n");
			s->bad_commands++;
			return;
		}
		char *challenge = NULL;
		int r = sasl_server_step(s->sasl, NULL, &challenge, &error);
		login_sasl_result(s, r, challenge, error);
		return;
	}
	case POP3_CMD_APOP:
	case POP3_CMD_STLS:
	case POP3_CMD_UNKNOWN:
		(void)login_send(s, "-ERR Unknown command.\r\n");
		s->bad_commands++;
		return;
	default:
		(void)login_send(s, "-ERR [AUTH] Log in first.\r\n");
		s->bad_commands++;
		return;
	}
}

/* Run every complete line buffered, as long as the state takes commands. */
static void login_session_process(struct login_session *s)
{
	while (s->state == LOGIN_CMD || s->state == LOGIN_SASL) {
		if (s->bad_commands >= LOGIN_MAX_BAD_COMMANDS) {
			if (s->bad_commands == LOGIN_MAX_BAD_COMMANDS)
				(void)login_send(s, "-ERR Too many bad commands.\r\n");
			login_session_free(s, true);
			return;
		}
		char *nl = s->in.len > 0 ? memchr(s->in.data, '\n', s->in.len) : NULL;
		if (nl == NULL) {
			if (s->in.len > LOGIN_LINE_MAX) {
				(void)login_send(s, "-ERR Line too long.\r\n");
				login_session_free(s, true);
			}
			return;
		}
		size_t n = (size_t)(nl - (char *)s->in.data);
		if (n > LOGIN_LINE_MAX) {
			(void)login_send(s, "-ERR Line too long.\r\n");
			login_session_free(s, true);
			return;
		}
		char line[LOGIN_LINE_MAX + 1];
		memcpy(line, s->in.data, n);
		line[n] = '\0';
		if (n > 0 && line[n - 1] == '\r')
			line[n - 1] = '\0';
		buf_consume(&s->in, n + 1);
		if (s->state == LOGIN_SASL) {
			char *challenge = NULL;
			const char *error = NULL;
			int r = sasl_server_step(s->sasl, line, &challenge, &error);
			login_sasl_result(s, r, challenge, error);
		} else {
			login_command(s, line);
		}
		explicit_bzero(line, sizeof(line));
	}
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
		login_session_free(s, true);
		return;
	}
	if (s->in.len + (size_t)n > POP3_PROTO_PENDING_MAX + LOGIN_LINE_MAX) {
		(void)login_send(s, "-ERR Too much input.\r\n");
		login_session_free(s, true);
		return;
	}
	buf_append(&s->in, tmp, (size_t)n);
	explicit_bzero(tmp, sizeof(tmp));
	login_timer_arm(s, s->srv->idle_ms);
	login_session_process(s);
}

static void login_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct login_session *s = arg;
	(void)fd;
	(void)what;
	if (s->state == LOGIN_DELAY) {
		bool ok = login_send(s, s->delayed_reply);
		s->delayed_reply = NULL;
		if (!ok) {
			login_session_free(s, true);
			return;
		}
		login_resume(s);
		return;
	}
	(void)login_send(s, "-ERR Disconnected for inactivity.\r\n");
	login_session_free(s, true);
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
	if (srv->n_sessions >= LOGIN_MAX_SESSIONS) {
		(void)send(fd, "-ERR [SYS/TEMP] Too many connections.\r\n", 39, MSG_NOSIGNAL);
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
	/* RFC 1939 section 4; no APOP timestamp (APOP is not offered). */
	if (!login_send(s, "+OK facteur POP3 ready.\r\n")) {
		login_session_free(s, true);
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

int pop3_login_main(const struct role_env *env)
{
	struct login_server srv;
	memset(&srv, 0, sizeof(srv));
	signal(SIGPIPE, SIG_IGN);
	srv.env = env;
	srv.base = event_base_new();
	if (srv.base == NULL) {
		log_error("event_base_new failed");
		return 1;
	}
	srv.disable_plaintext = config_get_bool(env->cfg, "disable_plaintext_auth");
	srv.idle_ms = (unsigned)config_get_time(env->cfg, "pop3_login_timeout") * 1000u;
	srv.throttle = auth_throttle_new(AUTH_THROTTLE_DELAY_MAX_MS, AUTH_THROTTLE_WINDOW_S,
					 AUTH_THROTTLE_ENTRIES);
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/%s", env->queue_dir, POP3_PROTO_SOCKET_NAME);
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
