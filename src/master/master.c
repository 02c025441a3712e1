/* master.c - the facteur supervisor (see master.h).
 *
 * Start-up: look up mail_owner, create the queue tree, clean tmp/, take the
 * pid file lock, bind every listener with a large backlog, then fork the
 * roles: local (keeps root: it must become each recipient), smtp, qmgr,
 * pickup and smtpd (each drops to mail_owner before touching any input).
 *
 * Run: the master only waits for signals (sigtimedwait), so there is no
 * asynchronous-signal-safety trap in it:
 *   SIGCHLD  a role exited: restart it (at most once per second per role,
 *            with a growing pause while it keeps crashing);
 *   SIGHUP   reload: re-read main.cf; if it is valid, start a new smtpd at
 *            once and ask the old one to finish its sessions (SIGHUP); ask
 *            qmgr, pickup and local to finish their work and restart them
 *            when they have exited, so that two queue managers never work
 *            on active/ at the same time;
 *   SIGTERM, SIGINT  stop: SIGTERM to every role, wait (10 s, then
 *            SIGKILL), remove the pid file, exit 0.
 */
#include "master/master.h"
#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/config.h"
#include "mail/queue.h"
#include "mail/role.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MASTER_LISTEN_BACKLOG 4096

enum master_role_id {
	ROLE_LOCAL,
	ROLE_SMTP,
	ROLE_QMGR,
	ROLE_PICKUP,
	ROLE_SMTPD,
	ROLE_POP3,	 /* started only when pop3_listen is set */
	ROLE_POP3_LOGIN, /* idem */
	ROLE_IMAP,	 /* started only when imap_listen is set */
	ROLE_IMAP_LOGIN, /* idem */
	ROLE_COUNT
};

struct master_role {
	const char *name;
	int (*main)(const struct role_env *env);
	bool keeps_root;
	pid_t pid;
	pid_t old_pid;        /* smtpd finishing sessions after a reload */
	time_t started;
	unsigned fast_crashes;
	time_t restart_at;    /* 0: no restart pending */
	bool waiting_reload;  /* exit requested by a reload: restart at once */
};

static struct master_role master_roles[ROLE_COUNT] = {
	[ROLE_LOCAL] = { "local", local_main, true, 0, 0, 0, 0, 0, false },
	[ROLE_SMTP] = { "smtp", smtp_main, false, 0, 0, 0, 0, 0, false },
	[ROLE_QMGR] = { "qmgr", qmgr_main, false, 0, 0, 0, 0, 0, false },
	[ROLE_PICKUP] = { "pickup", pickup_main, false, 0, 0, 0, 0, 0, false },
	/* smtpd starts as root only to read the TLS key, then drops to
	 * mail_owner itself before it touches the network. */
	[ROLE_SMTPD] = { "smtpd", smtpd_main, true, 0, 0, 0, 0, 0, false },
	/* pop3 keeps root: it reads /etc/shadow and becomes each user. */
	[ROLE_POP3] = { "pop3", pop3_main, true, 0, 0, 0, 0, 0, false },
	[ROLE_POP3_LOGIN] = { "pop3-login", pop3_login_main, false, 0, 0, 0, 0, 0, false },
	/* imap keeps root for the same reasons as pop3. */
	[ROLE_IMAP] = { "imap", imap_main, true, 0, 0, 0, 0, 0, false },
	[ROLE_IMAP_LOGIN] = { "imap-login", imap_login_main, false, 0, 0, 0, 0, 0, false },
};

struct master_state {
	struct role_env env;
	struct config *cfg;
	char *config_dir;
	char *queue_dir;
	char *data_dir;
	char *pid_path;
	int pid_fd;
};

char *master_pid_path(struct config *cfg)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s/pid/master.pid", config_get(cfg, "queue_directory"));
	return buf_steal(&b);
}

pid_t master_running_pid(struct config *cfg)
{
	char *path = master_pid_path(cfg);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	/* The running master holds an exclusive lock on the file. */
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		(void)close(fd);
		return 0;
	}
	char text[32] = "";
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	(void)close(fd);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	text[strcspn(text, "\n")] = '\0';
	long pid;
	if (str_to_long(text, 1, 1L << 30, &pid) < 0)
		return -1;
	return (pid_t)pid;
}

int master_listen_parse(const char *item, struct sockaddr_storage **addrs_r, const char **error_r)
{
	char host[256];
	const char *port;
	const char *colon;

	if (item[0] == '[') {
		const char *close = strchr(item, ']');
		if (close == NULL || close[1] != ':') {
			*error_r = "expected [address]:port";
			return -1;
		}
		size_t n = (size_t)(close - item - 1);
		if (n == 0 || n >= sizeof(host)) {
			*error_r = "bad address";
			return -1;
		}
		memcpy(host, item + 1, n);
		host[n] = '\0';
		port = close + 2;
	} else {
		colon = strrchr(item, ':');
		if (colon == NULL) {
			*error_r = "expected address:port";
			return -1;
		}
		size_t n = (size_t)(colon - item);
		if (n == 0 || n >= sizeof(host)) {
			*error_r = "bad address";
			return -1;
		}
		memcpy(host, item, n);
		host[n] = '\0';
		port = colon + 1;
	}
	uint64_t portnum;
	if (str_to_u64(port, 1, 65535, &portnum) < 0) {
		*error_r = "bad port (1-65535)";
		return -1;
	}
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	const char *node = host;
	if (strcmp(host, "all") == 0 || strcmp(host, "*") == 0) {
		node = NULL; /* wildcard */
	} else if (strcmp(host, "loopback-only") == 0) {
		node = "127.0.0.1";
	}
	int rc = getaddrinfo(node, port, &hints, &res);
	if (rc != 0) {
		*error_r = gai_strerror(rc);
		return -1;
	}
	int count = 0;
	struct sockaddr_storage *addrs = NULL;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		addrs = xreallocarray(addrs, (size_t)count + 1, sizeof(*addrs));
		memset(&addrs[count], 0, sizeof(addrs[count]));
		memcpy(&addrs[count], ai->ai_addr, ai->ai_addrlen);
		count++;
	}
	freeaddrinfo(res);
	if (count == 0) {
		free(addrs);
		*error_r = "no usable address";
		return -1;
	}
	*addrs_r = addrs;
	return count;
}

static void sockaddr_text(const struct sockaddr_storage *ss, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		(void)inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
		(void)snprintf(out, size, "%s:%u", host, port);
	} else {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		(void)inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		(void)snprintf(out, size, "[%s]:%u", host, port);
	}
}

static int master_bind_one(const struct sockaddr_storage *ss, const char **error_r)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = "socket";
		return -1;
	}
	int on = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ss->ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	socklen_t len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
						: sizeof(struct sockaddr_in6);
	if (bind(fd, (const struct sockaddr *)ss, len) < 0) {
		*error_r = "bind";
		int saved = errno;
		(void)close(fd);
		errno = saved;
		return -1;
	}
	if (listen(fd, MASTER_LISTEN_BACKLOG) < 0) {
		*error_r = "listen";
		int saved = errno;
		(void)close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Bind every item of a listener list. */
static int master_bind_items(struct master_state *ms, const char *param, enum role_service svc,
			     char **items)
{
	for (size_t i = 0; items != NULL && items[i] != NULL; i++) {
		struct sockaddr_storage *addrs;
		const char *error;
		int n = master_listen_parse(items[i], &addrs, &error);
		if (n < 0) {
			log_error("%s: %s: %s", param, items[i], error);
			return -1;
		}
		for (int j = 0; j < n; j++) {
			char text[INET6_ADDRSTRLEN + 16];
			sockaddr_text(&addrs[j], text, sizeof(text));
			int fd = master_bind_one(&addrs[j], &error);
			if (fd < 0) {
				if (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL) {
					log_warning("%s: %s %s: %s; skipped", param, error, text,
						    strerror(errno));
					continue;
				}
				log_error("%s: %s %s: %s", param, error, text, strerror(errno));
				free(addrs);
				return -1;
			}
			struct role_env *env = &ms->env;
			env->listeners = xreallocarray(env->listeners, env->n_listeners + 1,
						       sizeof(*env->listeners));
			env->listeners[env->n_listeners].fd = fd;
			env->listeners[env->n_listeners].service = svc;
			env->listeners[env->n_listeners].address = xstrdup(text);
			env->n_listeners++;
		}
		free(addrs);
	}
	return 0;
}

/* The default of smtpd_listen: every inet_interfaces address on port 25
 * ("all" is the wildcard, "loopback-only" 127.0.0.1 and ::1), as Postfix
 * listens on its smtp service.  NULL-terminated, str_list_free(). */
static char **master_default_smtpd_listen(struct master_state *ms)
{
	char **ifaces = config_get_list(ms->cfg, "inet_interfaces");
	char **items = xcalloc(1, sizeof(char *));
	size_t n = 0;
	for (size_t i = 0; ifaces != NULL && ifaces[i] != NULL; i++) {
		const char *a = ifaces[i];
		const char *expand[2] = { a, NULL };
		if (strcmp(a, "loopback-only") == 0) {
			expand[0] = "127.0.0.1";
			expand[1] = "[::1]";
		}
		for (size_t k = 0; k < 2 && expand[k] != NULL; k++) {
			struct buf b = BUF_INIT;
			if (strchr(expand[k], ':') != NULL && expand[k][0] != '[')
				buf_printf(&b, "[%s]:25", expand[k]);
			else
				buf_printf(&b, "%s:25", expand[k]);
			items = xreallocarray(items, n + 2, sizeof(char *));
			items[n++] = buf_steal(&b);
			items[n] = NULL;
		}
	}
	return items;
}

/* Bind the listeners of one *_listen parameter. */
static int master_bind_param(struct master_state *ms, const char *param, enum role_service svc)
{
	char **owned = NULL;
	char **items;
	if (strcmp(param, "smtpd_listen") == 0 && config_param_line(ms->cfg, param) == 0)
		items = owned = master_default_smtpd_listen(ms);
	else
		items = config_get_list(ms->cfg, param);
	int ret = master_bind_items(ms, param, svc, items);
	str_list_free(&owned);
	return ret;
}

static void master_close_listeners(struct role_env *env)
{
	for (size_t i = 0; i < env->n_listeners; i++) {
		(void)close(env->listeners[i].fd);
		free(env->listeners[i].address);
	}
	free(env->listeners);
	env->listeners = NULL;
	env->n_listeners = 0;
}

static int master_bind_all(struct master_state *ms)
{
	static const struct {
		const char *param;
		enum role_service svc;
	} params[] = {
		{ "smtpd_listen", ROLE_SVC_SMTPD },
		{ "submission_listen", ROLE_SVC_SUBMISSION },
		{ "smtps_listen", ROLE_SVC_SMTPS },
	};
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		/* smtps (implicit TLS): smtpd refuses to serve it without a
		 * certificate. */
		if (master_bind_param(ms, params[i].param, params[i].svc) < 0)
			return -1;
	}
	if (master_bind_param(ms, "pop3_listen", ROLE_SVC_POP3) < 0)
		return -1;
	if (master_bind_param(ms, "imap_listen", ROLE_SVC_IMAP) < 0)
		return -1;
	static const char *const later[] = { "pop3s_listen", "imaps_listen" };
	for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
		const char *v = config_get(ms->cfg, later[i]);
		if (v != NULL && *v != '\0')
			log_warning("%s: TLS is not implemented yet; not listening on %s",
				    later[i], v);
	}
	return 0;
}

static sigset_t master_sigset(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	return set;
}

static bool master_has_service(const struct master_state *ms, enum role_service svc)
{
	for (size_t i = 0; i < ms->env.n_listeners; i++)
		if (ms->env.listeners[i].service == svc)
			return true;
	return false;
}

/* The listening sockets a role gets: smtpd the SMTP ones, pop3-login the
 * POP3 ones, imap-login the IMAP ones; the other roles none. */
static bool master_role_listens(enum master_role_id id, enum role_service svc)
{
	switch (svc) {
	case ROLE_SVC_POP3:
		return id == ROLE_POP3_LOGIN;
	case ROLE_SVC_IMAP:
		return id == ROLE_IMAP_LOGIN;
	default:
		return id == ROLE_SMTPD;
	}
}

static pid_t master_fork_role(struct master_state *ms, enum master_role_id id)
{
	struct master_role *r = &master_roles[id];
	if ((id == ROLE_POP3 || id == ROLE_POP3_LOGIN) && !master_has_service(ms, ROLE_SVC_POP3))
		return 0; /* no pop3_listen */
	if ((id == ROLE_IMAP || id == ROLE_IMAP_LOGIN) && !master_has_service(ms, ROLE_SVC_IMAP))
		return 0; /* no imap_listen */
	pid_t pid = fork();
	if (pid < 0) {
		log_error("fork %s: %s", r->name, strerror(errno));
		return -1;
	}
	if (pid > 0) {
		r->pid = pid;
		r->started = time(NULL);
		return pid;
	}
	/* Child. */
	sigset_t set = master_sigset();
	(void)sigprocmask(SIG_UNBLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_set_role(r->name);
	/* ps -o comm / top show the role ("facteur/qmgr"). */
	char comm[16];
	(void)snprintf(comm, sizeof(comm), "facteur/%s", r->name);
	(void)prctl(PR_SET_NAME, comm, 0, 0, 0);
	(void)close(ms->pid_fd);
	size_t kept = 0;
	for (size_t i = 0; i < ms->env.n_listeners; i++) {
		if (master_role_listens(id, ms->env.listeners[i].service))
			ms->env.listeners[kept++] = ms->env.listeners[i];
		else {
			(void)close(ms->env.listeners[i].fd);
			free(ms->env.listeners[i].address);
		}
	}
	ms->env.n_listeners = kept;
	if (!r->keeps_root) {
		const char *error;
		if (role_drop_privileges(&ms->env, &error) < 0)
			log_fatal("%s: cannot drop privileges: %s: %s", r->name, error,
				  strerror(errno));
	}
	int status = r->main(&ms->env);
	_exit(status);
}

/* Signal every role; with except_local, all but the delivery agents local
 * and smtp (stopped after qmgr, their only client, so that qmgr does not
 * see its delivery agents go away first). */
static void master_signal_roles(int sig, bool except_local)
{
	for (int i = 0; i < ROLE_COUNT; i++) {
		if (except_local && (i == ROLE_LOCAL || i == ROLE_SMTP))
			continue;
		if (master_roles[i].pid > 0)
			(void)kill(master_roles[i].pid, sig);
		if (master_roles[i].old_pid > 0)
			(void)kill(master_roles[i].old_pid, sig);
	}
}

static void master_signal_all(int sig)
{
	master_signal_roles(sig, false);
}

static bool master_any_child(void)
{
	for (int i = 0; i < ROLE_COUNT; i++) {
		if (master_roles[i].pid > 0 || master_roles[i].old_pid > 0)
			return true;
	}
	return false;
}

/* Reap exited children; schedule restarts. */
static void master_reap(bool stopping)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < ROLE_COUNT; i++) {
			struct master_role *r = &master_roles[i];
			if (r->old_pid == pid) {
				r->old_pid = 0;
				continue;
			}
			if (r->pid != pid)
				continue;
			r->pid = 0;
			if (stopping)
				continue;
			time_t now = time(NULL);
			if (r->waiting_reload) {
				r->waiting_reload = false;
				r->restart_at = now;
				continue;
			}
			if (WIFSIGNALED(status))
				log_warning("process %s pid %ld killed by signal %d", r->name,
					    (long)pid, WTERMSIG(status));
			else
				log_warning("process %s pid %ld exit status %d", r->name,
					    (long)pid, WEXITSTATUS(status));
			/* Throttle a role that keeps dying at start. */
			if (now - r->started < 5)
				r->fast_crashes++;
			else
				r->fast_crashes = 0;
			unsigned pause = r->fast_crashes == 0 ? 1 : 1u << (r->fast_crashes < 6 ? r->fast_crashes : 6);
			r->restart_at = now + pause;
		}
	}
}

static void master_reload(struct master_state *ms)
{
	struct config *cfg = config_new();
	struct config_diags diags;
	config_diags_init(&diags);
	int ret = config_load(cfg, ms->config_dir, &diags);
	if (ret == 0)
		ret = config_check(cfg, &diags);
	for (size_t i = 0; i < diags.count; i++) {
		struct config_diag *d = &diags.items[i];
		if (d->is_error)
			log_error("%s:%u: %s", d->file, d->line, d->message);
	}
	config_diags_deinit(&diags);
	if (ret < 0) {
		log_error("reload: configuration has errors; keeping the running configuration");
		config_free(&cfg);
		return;
	}
	/* Listeners: rebind only when the listener parameters changed (the
	 * running smtpd and pop3-login still hold the sockets, so binding
	 * the same address again would fail with EADDRINUSE). */
	static const char *const listen_params[] = { "inet_interfaces", "smtpd_listen",
						     "submission_listen", "smtps_listen",
						     "pop3_listen", "imap_listen" };
	bool rebind = false;
	for (size_t i = 0; i < sizeof(listen_params) / sizeof(listen_params[0]); i++) {
		const char *a = config_get(ms->cfg, listen_params[i]);
		const char *b = config_get(cfg, listen_params[i]);
		rebind = rebind || strcmp(a != NULL ? a : "", b != NULL ? b : "") != 0;
	}
	/* The old configuration may still be referenced by nothing in this
	 * process but the env: swap it.  (Children have their own copies.) */
	config_free(&ms->cfg);
	ms->cfg = cfg;
	ms->env.cfg = cfg;
	log_set_debug(config_get_bool(cfg, "facteur_debug"));
	log_set_name(config_get(cfg, "syslog_name"));
	if (rebind) {
		master_close_listeners(&ms->env);
		if (master_bind_all(ms) < 0)
			log_error("reload: some listeners could not be bound");
	}
	struct master_role *smtpd = &master_roles[ROLE_SMTPD];
	if (smtpd->pid > 0) {
		if (smtpd->old_pid > 0)
			(void)kill(smtpd->old_pid, SIGTERM);
		smtpd->old_pid = smtpd->pid;
		(void)kill(smtpd->old_pid, SIGHUP);
		smtpd->pid = 0;
	}
	(void)master_fork_role(ms, ROLE_SMTPD);
	for (int i = 0; i < ROLE_COUNT; i++) {
		if (i == ROLE_SMTPD)
			continue;
		if (master_roles[i].pid > 0) {
			master_roles[i].waiting_reload = true;
			(void)kill(master_roles[i].pid, SIGHUP);
		} else if (i == ROLE_POP3 || i == ROLE_POP3_LOGIN || i == ROLE_IMAP ||
			   i == ROLE_IMAP_LOGIN) {
			/* pop3_listen or imap_listen added */
			(void)master_fork_role(ms, (enum master_role_id)i);
		}
	}
	log_info("reload -- version %s, configuration %s", FACTEUR_VERSION, ms->config_dir);
}

static int master_pidfile_take(struct master_state *ms)
{
	int fd = open(ms->pid_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		log_error("open %s: %s", ms->pid_path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		log_error("facteur is already running with queue_directory %s", ms->queue_dir);
		(void)close(fd);
		return -1;
	}
	char text[32];
	int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, text, (size_t)n, 0) != n) {
		log_error("write %s: %s", ms->pid_path, strerror(errno));
		(void)close(fd);
		return -1;
	}
	ms->pid_fd = fd;
	return 0;
}

static int master_setup_identity(struct master_state *ms)
{
	ms->env.started_as_root = geteuid() == 0;
	if (!ms->env.started_as_root) {
		ms->env.mail_uid = getuid();
		ms->env.mail_gid = getgid();
		return 0;
	}
	const char *owner = config_get(ms->cfg, "mail_owner");
	struct passwd *pw = getpwnam(owner);
	if (pw == NULL) {
		log_error("mail_owner: unknown user '%s' (create it: useradd --system %s)",
			  owner, owner);
		return -1;
	}
	if (pw->pw_uid == 0) {
		log_error("mail_owner '%s' must not be root", owner);
		return -1;
	}
	ms->env.mail_uid = pw->pw_uid;
	ms->env.mail_gid = pw->pw_gid;
	return 0;
}

static void master_daemonize(void)
{
	pid_t pid = fork();
	if (pid < 0)
		log_fatal("fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	(void)setsid();
	pid = fork();
	if (pid < 0)
		log_fatal("fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		(void)dup2(fd, 0);
		(void)dup2(fd, 1);
		(void)dup2(fd, 2);
		if (fd > 2)
			(void)close(fd);
	}
	if (chdir("/") < 0)
		log_warning("chdir /: %s", strerror(errno));
}

int master_run(struct master_opts *opts)
{
	struct master_state ms;
	memset(&ms, 0, sizeof(ms));
	ms.cfg = opts->cfg;
	ms.config_dir = xstrdup(opts->config_dir);
	ms.queue_dir = xstrdup(config_get(ms.cfg, "queue_directory"));
	ms.data_dir = xstrdup(config_get(ms.cfg, "data_directory"));
	ms.pid_path = master_pid_path(ms.cfg);
	ms.pid_fd = -1;
	ms.env.cfg = ms.cfg;
	ms.env.config_dir = ms.config_dir;
	ms.env.queue_dir = ms.queue_dir;
	ms.env.data_dir = ms.data_dir;
	ms.env.foreground = opts->foreground;

	const char *error;
	if (master_setup_identity(&ms) < 0)
		return 1;
	if (queue_dirs_create(ms.queue_dir, ms.env.mail_uid, ms.env.mail_gid, &error) < 0) {
		log_error("%s: %s: %s", ms.queue_dir, error, strerror(errno));
		return 1;
	}
	if (fs_mkdir_p(ms.data_dir, 0700) < 0 ||
	    (ms.env.started_as_root && chown(ms.data_dir, ms.env.mail_uid, ms.env.mail_gid) < 0)) {
		log_error("data_directory %s: %s", ms.data_dir, strerror(errno));
		return 1;
	}
	if (!opts->foreground)
		master_daemonize();
	if (master_pidfile_take(&ms) < 0)
		return 1;
	int cleaned = queue_tmp_clean(ms.queue_dir);
	if (cleaned > 0)
		log_info("removed %d unfinished queue file(s) from %s/tmp", cleaned, ms.queue_dir);
	if (master_bind_all(&ms) < 0) {
		(void)unlink(ms.pid_path);
		return 1;
	}

	sigset_t set = master_sigset();
	(void)sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_info("daemon started -- version %s, configuration %s", FACTEUR_VERSION, ms.config_dir);
	for (int i = 0; i < ROLE_COUNT; i++)
		(void)master_fork_role(&ms, (enum master_role_id)i);

	bool stopping = false;
	bool local_signalled = false;
	time_t stop_deadline = 0;
	for (;;) {
		struct timespec ts = { 1, 0 };
		siginfo_t info;
		int sig = sigtimedwait(&set, &info, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			if (!stopping) {
				log_info("terminating on signal %d", sig);
				stopping = true;
				stop_deadline = time(NULL) + 10;
				master_signal_roles(SIGTERM, true);
			}
		} else if (sig == SIGHUP && !stopping) {
			master_reload(&ms);
		}
		master_reap(stopping);
		if (stopping) {
			if (!master_any_child())
				break;
			if (master_roles[ROLE_QMGR].pid == 0 && !local_signalled) {
				/* smtp, then local. */
				if (master_roles[ROLE_SMTP].pid > 0)
					(void)kill(master_roles[ROLE_SMTP].pid, SIGTERM);
				if (master_roles[ROLE_LOCAL].pid > 0)
					(void)kill(master_roles[ROLE_LOCAL].pid, SIGTERM);
				local_signalled = true;
			}
			if (time(NULL) >= stop_deadline) {
				master_signal_all(SIGKILL);
				stop_deadline = time(NULL) + 5;
			}
			continue;
		}
		time_t now = time(NULL);
		for (int i = 0; i < ROLE_COUNT; i++) {
			struct master_role *r = &master_roles[i];
			if (r->pid == 0 && r->restart_at != 0 && now >= r->restart_at &&
			    !r->waiting_reload) {
				r->restart_at = 0;
				(void)master_fork_role(&ms, (enum master_role_id)i);
			}
		}
	}
	master_close_listeners(&ms.env);
	if (unlink(ms.pid_path) < 0)
		log_warning("unlink %s: %s", ms.pid_path, strerror(errno));
	(void)close(ms.pid_fd);
	log_info("stopped");
	config_free(&ms.cfg);
	free(ms.config_dir);
	free(ms.queue_dir);
	free(ms.data_dir);
	free(ms.pid_path);
	return 0;
}
