/* local.c - the local delivery agent's server: local_main.
 *
 * Started by the master, which keeps this role root when facteur was
 * started as root (the only role that does: each delivery takes the
 * recipient's identity); otherwise everything runs as the invoking user
 * and no identity switch happens.
 *
 * Serves the dlv.h protocol on the SOCK_SEQPACKET socket QDIR/private/local
 * (mode 0600, owned by mail_owner): a peer must have mail_owner's uid or
 * ours (SO_PEERCRED).  Each request runs in a forked worker process (at
 * most default_process_limit at once, the rest wait in FIFO order); the
 * worker writes its reply packet on the connection itself (SEQPACKET
 * packets are atomic, so concurrent workers never interleave).  A worker
 * that dies without replying (crash, kill) gets a "deferred" reply from
 * this process, so qmgr never waits forever.  A malformed request gets
 * "deferred 4.3.0" and a warning.
 *
 * Signals: SIGTERM/SIGINT stop taking requests, let running workers finish
 * (they ignore SIGTERM: a half-written mailbox is truncated back anyway,
 * but finishing is better), drop queued ones (qmgr retries them) and exit;
 * SIGHUP stops accepting connections and exits when idle.  The socket is
 * never unlinked at exit: a successor may already have replaced it.
 */
#include "local/local.h"

#include "mail/config.h"
#include "mail/dlv.h"
#include "mail/queue.h"
#include "mail/ipc.h"
#include "mail/role.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------ protocol */

void local_req_free(struct local_req *req)
{
	free(req->req);
	free(req->queue_id);
	free(req->address);
	free(req->orig_to);
	memset(req, 0, sizeof(*req));
}

static int local_req_set(char **field, struct strv value, const char **error_r)
{
	if (*field != NULL) {
		*error_r = "repeated key";
		return -1;
	}
	*field = strv_dup(value);
	return 0;
}

int local_req_parse(const char *data, size_t len, struct local_req *req, const char **error_r)
{
	memset(req, 0, sizeof(*req));
	char *rcpt = NULL, *cls = NULL;
	const char *p = data, *end = data + len;
	int ret = -1;
	if (len == 0 || len > DLV_MAX_PACKET) {
		*error_r = "bad packet size";
		return -1;
	}
	if (memchr(data, '\0', len) != NULL) {
		*error_r = "NUL in request";
		return -1;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end;
		if (le > p) {
			const char *eq = memchr(p, '=', (size_t)(le - p));
			if (eq == NULL) {
				*error_r = "line without '='";
				goto out;
			}
			struct strv key = strv_make(p, (size_t)(eq - p));
			struct strv value = strv_make(eq + 1, (size_t)(le - eq - 1));
			int r = 0;
			if (strv_eq(key, "req"))
				r = local_req_set(&req->req, value, error_r);
			else if (strv_eq(key, "queue_id"))
				r = local_req_set(&req->queue_id, value, error_r);
			else if (strv_eq(key, "rcpt"))
				r = local_req_set(&rcpt, value, error_r);
			else if (strv_eq(key, "address"))
				r = local_req_set(&req->address, value, error_r);
			else if (strv_eq(key, "orig_to"))
				r = local_req_set(&req->orig_to, value, error_r);
			else if (strv_eq(key, "class"))
				r = local_req_set(&cls, value, error_r);
			/* Unknown keys: ignored (a newer qmgr). */
			if (r < 0)
				goto out;
		}
		p = le + 1;
	}
	uint64_t n;
	if (req->req == NULL || str_to_u64(req->req, 0, UINT64_MAX, &n) < 0) {
		*error_r = "missing or bad req";
		free(req->req);
		req->req = NULL;
		goto out;
	}
	if (req->queue_id == NULL || !queue_id_valid(req->queue_id)) {
		*error_r = "missing or bad queue_id";
		goto out;
	}
	if (rcpt == NULL || str_to_u64(rcpt, 0, 1u << 30, &n) < 0) {
		*error_r = "missing or bad rcpt";
		goto out;
	}
	req->rcpt = (unsigned)n;
	if (req->address == NULL || req->address[0] == '\0') {
		*error_r = "missing address";
		goto out;
	}
	for (const char *s = req->address; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f) {
			*error_r = "control character in address";
			goto out;
		}
	}
	if (cls == NULL || (strcmp(cls, "local") != 0 && strcmp(cls, "virtual") != 0)) {
		*error_r = "missing or bad class";
		goto out;
	}
	req->is_virtual = strcmp(cls, "virtual") == 0;
	ret = 0;
out:
	free(rcpt);
	free(cls);
	if (ret < 0) {
		/* Keep req (when valid) so that the error reply can echo it. */
		char *keep = req->req;
		req->req = NULL;
		local_req_free(req);
		req->req = keep;
	}
	return ret;
}

static void local_reply_field(struct buf *out, const char *key, const char *value)
{
	if (out->len > 0)
		buf_append_char(out, '\n');
	buf_printf(out, "%s=", key);
	for (const char *s = value != NULL ? value : ""; *s != '\0'; s++)
		buf_append_char(out, (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

void local_reply_build(struct buf *out, const char *req, const char *status, const char *dsn,
		       const char *text, char *const *forwards, size_t n_forwards)
{
	buf_reset(out);
	local_reply_field(out, "req", req != NULL ? req : "0");
	local_reply_field(out, "status", status);
	local_reply_field(out, "dsn", dsn);
	/* Leave room for the forwards: a long text is cut, never the list. */
	struct buf t = BUF_INIT;
	buf_append_str(&t, text != NULL ? text : "");
	if (t.len > 2000) {
		t.len = 2000;
		t.data[t.len] = '\0';
	}
	local_reply_field(out, "text", buf_cstr(&t));
	buf_deinit(&t);
	for (size_t i = 0; i < n_forwards; i++)
		local_reply_field(out, "forward", forwards[i]);
}

/* ------------------------------------------------------------ server */

struct local_conn {
	int fd;
	unsigned long id;
};

struct local_pending {
	unsigned long conn_id;
	struct local_req req;
};

struct local_worker {
	pid_t pid;
	unsigned long conn_id;
	char *req;
	char *queue_id;
};

struct local_server {
	const struct role_env *env;
	bool as_root;
	int listen_fd;
	struct local_conn *conns;
	size_t n_conns;
	unsigned long next_conn_id;
	struct local_pending *pending;
	size_t n_pending;
	struct local_worker *workers;
	size_t n_workers;
	size_t max_workers;
};

static volatile sig_atomic_t local_sig_term, local_sig_hup;
static int local_sig_pipe[2] = { -1, -1 };

static void local_on_signal(int sig)
{
	int saved = errno;
	if (sig == SIGTERM || sig == SIGINT)
		local_sig_term = 1;
	else if (sig == SIGHUP)
		local_sig_hup = 1;
	if (local_sig_pipe[1] >= 0)
		(void)!write(local_sig_pipe[1], "x", 1);
	errno = saved;
}

static struct local_conn *local_conn_find(struct local_server *s, unsigned long id)
{
	for (size_t i = 0; i < s->n_conns; i++)
		if (s->conns[i].id == id)
			return &s->conns[i];
	return NULL;
}

static void local_conn_close(struct local_server *s, size_t i)
{
	unsigned long id = s->conns[i].id;
	(void)close(s->conns[i].fd);
	s->conns[i] = s->conns[--s->n_conns];
	/* Queued requests of that peer: nobody waits for them any more. */
	size_t k = 0;
	for (size_t j = 0; j < s->n_pending; j++) {
		if (s->pending[j].conn_id == id)
			local_req_free(&s->pending[j].req);
		else
			s->pending[k++] = s->pending[j];
	}
	s->n_pending = k;
}

static void local_send_reply(int fd, const char *req, const char *status, const char *dsn,
			     const char *text)
{
	struct buf b = BUF_INIT;
	local_reply_build(&b, req, status, dsn, text, NULL, 0);
	if (send(fd, b.data, b.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_warning("cannot send a reply to the queue manager: %s", strerror(errno));
	buf_deinit(&b);
}

static void local_accept(struct local_server *s)
{
	for (;;) {
		int fd = ipc_accept(s->env, s->listen_fd);
		if (fd < 0) {
			if (errno == EPERM)
				continue; /* not mail_owner: refused and logged */
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warning("accept: %s", strerror(errno));
			return;
		}
		s->conns = xreallocarray(s->conns, s->n_conns + 1, sizeof(*s->conns));
		s->conns[s->n_conns].fd = fd;
		s->conns[s->n_conns].id = ++s->next_conn_id;
		s->n_conns++;
	}
}

/* Read the packets of connection i.  Returns false when it was closed. */
static bool local_conn_read(struct local_server *s, size_t i)
{
	char *packet = xmalloc(DLV_MAX_PACKET + 1);
	bool open = true;
	for (;;) {
		ssize_t n = recv(s->conns[i].fd, packet, DLV_MAX_PACKET + 1, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			log_warning("recv from the queue manager: %s", strerror(errno));
			open = false;
			break;
		}
		if (n == 0) {
			open = false;
			break;
		}
		struct local_req req;
		const char *err = "packet too large";
		if ((size_t)n > DLV_MAX_PACKET || local_req_parse(packet, (size_t)n, &req, &err) < 0) {
			if ((size_t)n > DLV_MAX_PACKET)
				memset(&req, 0, sizeof(req));
			log_warning("malformed delivery request: %s", err);
			local_send_reply(s->conns[i].fd, req.req, "deferred", "4.3.0",
					 "malformed delivery request");
			local_req_free(&req);
			continue;
		}
		s->pending = xreallocarray(s->pending, s->n_pending + 1, sizeof(*s->pending));
		s->pending[s->n_pending].conn_id = s->conns[i].id;
		s->pending[s->n_pending].req = req;
		s->n_pending++;
	}
	free(packet);
	return open;
}

static void local_worker_start(struct local_server *s)
{
	struct local_pending p = s->pending[0];
	memmove(s->pending, s->pending + 1, (s->n_pending - 1) * sizeof(*s->pending));
	s->n_pending--;
	struct local_conn *c = local_conn_find(s, p.conn_id);
	if (c == NULL) {
		local_req_free(&p.req);
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_warning("fork: %s", strerror(errno));
		local_send_reply(c->fd, p.req.req, "deferred", "4.3.0",
				 "local delivery agent cannot fork");
		local_req_free(&p.req);
		return;
	}
	if (pid == 0) {
		/* Worker: finish the delivery whatever signals the group gets;
		 * commands it runs get default dispositions back. */
		(void)signal(SIGTERM, SIG_IGN);
		(void)signal(SIGINT, SIG_IGN);
		(void)signal(SIGHUP, SIG_IGN);
		(void)signal(SIGCHLD, SIG_DFL);
		(void)close(s->listen_fd);
		(void)close(local_sig_pipe[0]);
		(void)close(local_sig_pipe[1]);
		int fd = c->fd;
		for (size_t i = 0; i < s->n_conns; i++)
			if (s->conns[i].fd != fd)
				(void)close(s->conns[i].fd);
		/* Replies are sent blocking: the packet must get out. */
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
		local_deliver_request(s->env->cfg, s->env->queue_dir, s->as_root, &p.req, fd);
		_exit(0);
	}
	s->workers = xreallocarray(s->workers, s->n_workers + 1, sizeof(*s->workers));
	struct local_worker *w = &s->workers[s->n_workers++];
	w->pid = pid;
	w->conn_id = p.conn_id;
	w->req = p.req.req;
	w->queue_id = p.req.queue_id;
	p.req.req = NULL;
	p.req.queue_id = NULL;
	local_req_free(&p.req);
}

static void local_reap(struct local_server *s)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return;
		for (size_t i = 0; i < s->n_workers; i++) {
			struct local_worker *w = &s->workers[i];
			if (w->pid != pid)
				continue;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				log_warning("%s: delivery worker %ld died (%s %d)", w->queue_id,
					    (long)pid, WIFSIGNALED(status) ? "signal" : "status",
					    WIFSIGNALED(status) ? WTERMSIG(status)
								: WEXITSTATUS(status));
				struct local_conn *c = local_conn_find(s, w->conn_id);
				if (c != NULL)
					local_send_reply(c->fd, w->req, "deferred", "4.3.0",
							 "local delivery process died");
			}
			free(w->req);
			free(w->queue_id);
			s->workers[i] = s->workers[--s->n_workers];
			break;
		}
	}
}

int local_main(const struct role_env *env)
{
	struct local_server s;
	memset(&s, 0, sizeof(s));
	s.env = env;
	s.as_root = env->started_as_root && geteuid() == 0;
	long limit = config_get_int(env->cfg, "default_process_limit");
	s.max_workers = limit > 0 ? (size_t)limit : 1;

	if (pipe2(local_sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		log_fatal("pipe: %s", strerror(errno));
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = local_on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	s.listen_fd = ipc_listen(s.env, DLV_SOCKET_NAME);
	log_debug("local delivery agent ready (%s, at most %zu workers)",
		  s.as_root ? "root" : "unprivileged", s.max_workers);

	struct pollfd *pfds = NULL;
	for (;;) {
		if (local_sig_term) {
			if (s.listen_fd >= 0) {
				(void)close(s.listen_fd);
				s.listen_fd = -1;
			}
			for (size_t j = 0; j < s.n_pending; j++)
				local_req_free(&s.pending[j].req);
			s.n_pending = 0;
		}
		if (local_sig_hup && s.listen_fd >= 0) {
			(void)close(s.listen_fd);
			s.listen_fd = -1;
		}
		local_reap(&s);
		while (s.n_pending > 0 && s.n_workers < s.max_workers && !local_sig_term)
			local_worker_start(&s);
		if ((local_sig_term || local_sig_hup) && s.n_workers == 0 && s.n_pending == 0)
			break;

		size_t n = 0;
		pfds = xreallocarray(pfds, s.n_conns + 2, sizeof(*pfds));
		pfds[n++] = (struct pollfd){ local_sig_pipe[0], POLLIN, 0 };
		if (s.listen_fd >= 0)
			pfds[n++] = (struct pollfd){ s.listen_fd, POLLIN, 0 };
		size_t conn_base = n;
		/* During a stop no new request is read. */
		bool reading = !local_sig_term && !local_sig_hup;
		if (reading)
			for (size_t i = 0; i < s.n_conns; i++)
				pfds[n++] = (struct pollfd){ s.conns[i].fd, POLLIN, 0 };
		if (poll(pfds, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_fatal("poll: %s", strerror(errno));
		}
		if (pfds[0].revents) {
			char drain[64];
			while (read(local_sig_pipe[0], drain, sizeof(drain)) > 0)
				;
		}
		if (s.listen_fd >= 0 && conn_base == 2 && pfds[1].revents)
			local_accept(&s);
		if (reading) {
			/* Connections are matched by fd: the array may be
			 * reordered by closes. */
			for (size_t k = conn_base; k < n; k++) {
				if (pfds[k].revents == 0)
					continue;
				for (size_t i = 0; i < s.n_conns; i++) {
					if (s.conns[i].fd != pfds[k].fd)
						continue;
					if (!local_conn_read(&s, i))
						local_conn_close(&s, i);
					break;
				}
			}
		}
	}
	free(pfds);
	while (s.n_conns > 0)
		local_conn_close(&s, 0);
	free(s.conns);
	free(s.pending);
	free(s.workers);
	return 0;
}
