/* access.c - the privileged mail access services (pop3 and imap keep
 * root, like local): receive login requests from the login front end
 * (mail/access_proto.h), and for each one fork a child that
 *   1. verifies the credentials (auth_db_verify: auth_passwd_file, then
 *      system users, whose shadow hashes need root);
 *   2. finds the mailbox: a virtual user "user@domain" of
 *      virtual_mailbox_domains through virtual_mailbox_maps under
 *      virtual_mailbox_base (uid/gid from the passwd-file entry, else
 *      virtual_uid_maps/virtual_gid_maps); a system user's Maildir
 *      (home_mailbox ending in '/') or mbox (home_mailbox, else
 *      mail_spool_directory/USER);
 *   3. replies to the login process, becomes the mailbox owner (setgroups,
 *      setgid, setuid, then checks that root cannot be regained) and serves
 *      the session - one process per logged-in session, as Dovecot's.
 * When facteur does not run as root, no identity switch happens.
 * SIGTERM: stop the sessions too; SIGHUP: stop accepting (the master starts
 * a successor), sessions in progress continue.
 */
#include "mail/access.h"

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/access_proto.h"
#include "mail/auth.h"
#include "mail/config.h"
#include "mail/ipc.h"
#include "mail/role.h"
#include "mail/table.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ACCESS_REQ_TIMEOUT_MS 10000

static volatile sig_atomic_t access_stop_sig;

static void access_on_signal(int sig)
{
	access_stop_sig = sig;
}

struct access_dest {
	char *path;
	bool maildir;
	char *home;
	uid_t uid;
	gid_t gid;
};

/* Look address up, then "@domain".  1/0/-1. */
static int access_map_lookup(struct config *cfg, const char *param, const char *address,
			   char **value_r)
{
	const char *spec = config_get(cfg, param);
	if (spec == NULL || spec[0] == '\0')
		return 0;
	const char *error = NULL;
	struct table_list *l = table_list_open(spec, &error);
	if (l == NULL) {
		log_error("%s: %s", param, error != NULL ? error : "cannot open");
		return -1;
	}
	int r = table_list_lookup(l, address, value_r, &error);
	const char *at = strrchr(address, '@');
	if (r == 0 && at != NULL)
		r = table_list_lookup(l, at, value_r, &error);
	if (r < 0)
		log_error("%s: %s", param, error != NULL ? error : "lookup failed");
	table_list_free(&l);
	return r;
}

static int access_map_id(struct config *cfg, const char *param, const char *address,
		       unsigned long *id_r)
{
	char *value = NULL;
	uint64_t id;
	int r = access_map_lookup(cfg, param, address, &value);
	if (r == 1 && str_to_u64(value, 1, 0x7fffffffu, &id) == 0) {
		*id_r = (unsigned long)id;
		free(value);
		return 0;
	}
	if (r >= 0)
		log_error("%s: no usable entry for %s", param, address);
	free(value);
	return -1;
}

static bool access_domain_is_virtual(struct config *cfg, const char *domain)
{
	char **doms = config_get_list(cfg, "virtual_mailbox_domains");
	bool found = false;
	for (size_t i = 0; doms != NULL && doms[i] != NULL; i++)
		found = found || str_casecmp(doms[i], domain) == 0;
	return found;
}

/* 0, or -1 (logged). */
static int access_dest_find(struct config *cfg, const struct auth_user *u, bool as_root,
			  struct access_dest *d)
{
	memset(d, 0, sizeof(*d));
	const char *at = strrchr(u->name, '@');
	if (at != NULL) {
		if (!access_domain_is_virtual(cfg, at + 1)) {
			log_error("user %s: domain not in virtual_mailbox_domains", u->name);
			return -1;
		}
		char *key = str_lower_dup(u->name);
		char *value = NULL;
		int r = access_map_lookup(cfg, "virtual_mailbox_maps", key, &value);
		const char *base = config_get(cfg, "virtual_mailbox_base");
		if (r <= 0 || base == NULL || base[0] != '/' || strstr(value, "..") != NULL) {
			if (r == 0)
				log_error("user %s: not in virtual_mailbox_maps", u->name);
			else if (r > 0)
				log_error("user %s: bad virtual mailbox \"%s\"", u->name, value);
			free(key);
			free(value);
			return -1;
		}
		struct strv v = strv_trim(strv_from_cstr(value));
		char *rel = strv_dup(v);
		size_t n = strlen(rel);
		d->maildir = n > 0 && rel[n - 1] == '/';
		while (n > 0 && rel[n - 1] == '/')
			rel[--n] = '\0';
		const char *r0 = rel;
		while (*r0 == '/')
			r0++;
		struct buf path = BUF_INIT;
		buf_printf(&path, "%s/%s", base, r0);
		d->path = buf_steal(&path);
		free(rel);
		free(value);
		unsigned long uid = u->uid, gid = u->gid;
		int ret = 0;
		if (as_root && u->uid == (uid_t)-1)
			ret = access_map_id(cfg, "virtual_uid_maps", key, &uid);
		if (ret == 0 && as_root && u->gid == (gid_t)-1)
			ret = access_map_id(cfg, "virtual_gid_maps", key, &gid);
		free(key);
		if (u->home != NULL && u->home[0] == '/')
			d->home = xstrdup(u->home);
		d->uid = (uid_t)uid;
		d->gid = (gid_t)gid;
		return ret;
	}
	struct passwd *pw = getpwnam(u->name);
	if (pw == NULL) {
		log_error("user %s: no system account for the mailbox", u->name);
		return -1;
	}
	d->uid = pw->pw_uid;
	d->gid = pw->pw_gid;
	d->home = xstrdup(pw->pw_dir);
	const char *hm = config_get(cfg, "home_mailbox");
	struct buf path = BUF_INIT;
	if (hm != NULL && hm[0] != '\0') {
		size_t n = strlen(hm);
		d->maildir = hm[n - 1] == '/';
		buf_printf(&path, "%s/%.*s", pw->pw_dir, (int)(d->maildir ? n - 1 : n), hm);
	} else {
		buf_printf(&path, "%s/%s", config_get(cfg, "mail_spool_directory"), pw->pw_name);
	}
	d->path = buf_steal(&path);
	return 0;
}

static int access_become(const struct access_dest *d, const char **error_r)
{
	if (d->uid == 0) {
		*error_r = "refusing to serve a mailbox as root";
		return -1;
	}
	if (setgroups(1, &d->gid) < 0) {
		*error_r = "setgroups";
		return -1;
	}
	if (setgid(d->gid) < 0) {
		*error_r = "setgid";
		return -1;
	}
	if (setuid(d->uid) < 0) {
		*error_r = "setuid";
		return -1;
	}
	if (setuid(0) == 0 || geteuid() != d->uid || getegid() != d->gid) {
		*error_r = "root could be regained";
		return -1;
	}
	return 0;
}

/* An mbox user's folders live in imap_mbox_directory under the home
 * (Dovecot's mbox:~/mail), or in <absolute directory>/<user>; the INBOX
 * index goes there too, since the spool directory is usually not writable
 * by users.  Created as the user (we have switched already). */
static void access_mbox_paths(struct config *cfg, const struct access_dest *d, const char *user,
			      char **dir_r, char **index_r)
{
	*dir_r = NULL;
	*index_r = NULL;
	const char *sub = config_get(cfg, "imap_mbox_directory");
	if (d->maildir || sub == NULL || sub[0] == '\0')
		return;
	struct buf b = BUF_INIT;
	if (sub[0] == '/') {
		if (strchr(user, '/') != NULL || strcmp(user, ".") == 0 || strcmp(user, "..") == 0)
			return;
		buf_printf(&b, "%s/%s", sub, user);
	} else if (d->home != NULL) {
		buf_printf(&b, "%s/%s", d->home, sub);
	} else {
		return;
	}
	*dir_r = buf_steal(&b);
	if (mkdir(*dir_r, 0700) < 0 && errno != EEXIST) {
		log_warning("mkdir %s: %s", *dir_r, strerror(errno));
		free(*dir_r);
		*dir_r = NULL;
		return;
	}
	buf_printf(&b, "%s/.facteur-INBOX-uidlist", *dir_r);
	*index_r = buf_steal(&b);
}

/* In the child: read one request, verify, reply, serve.  Exit status. */
static int access_request_handle(const struct role_env *env, const struct access_service *svc,
				 int conn)
{
	size_t max = ACCESS_PROTO_PACKET_MAX;
	char *pkt = xmalloc(max + 1);
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { pkt, max + 1 };
	struct msghdr msg;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf.buf;
	msg.msg_controllen = sizeof(cbuf.buf);
	struct pollfd pfd = { conn, POLLIN, 0 };
	ssize_t n = -1;
	if (poll(&pfd, 1, ACCESS_REQ_TIMEOUT_MS) == 1)
		n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	int client = -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); n >= 0 && cm != NULL;
	     cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (client < 0)
				client = fd;
			else
				(void)close(fd);
		}
	}
	struct access_proto_req req;
	if (n < (ssize_t)sizeof(req) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
	    client < 0) {
		log_warning("malformed login request");
		return 1;
	}
	memcpy(&req, pkt, sizeof(req));
	size_t total = sizeof(req) + (size_t)req.user_len + req.password_len + req.addr_len +
		       req.tag_len + req.pending_len;
	if (req.magic != ACCESS_PROTO_MAGIC || total != (size_t)n || req.user_len > AUTH_USER_MAX ||
	    req.password_len > AUTH_PASSWORD_MAX || req.addr_len >= ACCESS_PROTO_ADDR_MAX ||
	    req.tag_len > ACCESS_PROTO_TAG_MAX || req.pending_len > ACCESS_PROTO_PENDING_MAX) {
		log_warning("malformed login request");
		return 1;
	}
	const char *p = pkt + sizeof(req);
	char *user = xstrndup(p, req.user_len);
	p += req.user_len;
	char password[AUTH_PASSWORD_MAX + 1];
	memcpy(password, p, req.password_len);
	password[req.password_len] = '\0';
	p += req.password_len;
	char *rip = xstrndup(p, req.addr_len);
	p += req.addr_len;
	char *tag = xstrndup(p, req.tag_len);
	p += req.tag_len;
	const char *pending = p;
	size_t pending_len = req.pending_len;

	char reply = ACCESS_PROTO_TEMP;
	const char *error = NULL;
	struct auth_user au;
	memset(&au, 0, sizeof(au));
	struct access_dest dest;
	memset(&dest, 0, sizeof(dest));
	struct auth_db *db = auth_db_new(config_get(env->cfg, "auth_passwd_file"), true, &error);
	int r = -1;
	if (db == NULL) {
		log_error("auth_passwd_file: %s", error);
	} else if (strlen(user) != req.user_len || strlen(password) != req.password_len) {
		r = 0; /* NUL inside */
	} else {
		r = auth_db_verify(db, user, password, &au, &error);
		if (r < 0)
			log_error("auth: %s", error != NULL ? error : "temporary failure");
		else if (r == 0 && error != NULL)
			log_info("auth failed: user=<%s>, rip=%s: %s", user, rip, error);
	}
	explicit_bzero(password, sizeof(password));
	auth_db_free(&db);
	if (r == 0)
		reply = ACCESS_PROTO_FAIL;
	else if (r == 1 && access_dest_find(env->cfg, &au, env->started_as_root, &dest) == 0)
		reply = ACCESS_PROTO_OK;
	(void)send(conn, &reply, 1, MSG_NOSIGNAL);
	(void)close(conn);
	int status = 0;
	if (reply == ACCESS_PROTO_OK) {
		if (env->started_as_root && access_become(&dest, &error) < 0) {
			log_error("user %s: cannot become uid %lu gid %lu: %s: %s", au.name,
				  (unsigned long)dest.uid, (unsigned long)dest.gid, error,
				  strerror(errno));
			svc->internal_error(client, tag);
			status = 1;
		} else {
			log_info("Login: user=<%s>, rip=%s, mailbox=%s", au.name, rip, dest.path);
			char *folder_dir = NULL, *index_path = NULL;
			access_mbox_paths(env->cfg, &dest, au.name, &folder_dir, &index_path);
			struct access_login l = {
				.fd = client,
				.user = au.name,
				.rip = rip,
				.tag = tag,
				.pending = pending,
				.pending_len = pending_len,
				.mailbox_path = dest.path,
				.maildir = dest.maildir,
				.home = dest.home,
				.mbox_index_path = index_path,
				.mbox_folder_dir = folder_dir,
			};
			status = svc->serve(env, &l);
			free(folder_dir);
			free(index_path);
		}
	}
	(void)close(client);
	free(dest.path);
	free(dest.home);
	auth_user_deinit(&au);
	free(user);
	free(rip);
	free(tag);
	explicit_bzero(pkt, max + 1);
	free(pkt);
	return status;
}

int access_main(const struct role_env *env, const struct access_service *svc)
{
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = access_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	int listen_fd = ipc_listen(env, svc->socket_name);
	size_t max_children = (size_t)config_get_int(env->cfg, svc->max_sessions_param);
	pid_t *children = xcalloc(max_children, sizeof(pid_t));
	size_t n_children = 0;
	while (access_stop_sig == 0) {
		struct pollfd pfd = { listen_fd, POLLIN, 0 };
		(void)poll(&pfd, 1, 1000);
		pid_t pid;
		while ((pid = waitpid(-1, NULL, WNOHANG)) > 0) {
			for (size_t i = 0; i < n_children; i++) {
				if (children[i] == pid) {
					children[i] = children[--n_children];
					break;
				}
			}
		}
		for (;;) {
			if (access_stop_sig != 0)
				break;
			int conn = ipc_accept(env, listen_fd);
			if (conn < 0)
				break;
			if (n_children >= max_children) {
				log_warning("too many %s sessions (%s = %zu)", svc->name,
					    svc->max_sessions_param, max_children);
				(void)close(conn);
				continue;
			}
			pid = fork();
			if (pid < 0) {
				log_error("fork: %s", strerror(errno));
				(void)close(conn);
				continue;
			}
			if (pid == 0) {
				(void)close(listen_fd);
				free(children);
				signal(SIGTERM, SIG_DFL);
				signal(SIGINT, SIG_DFL);
				signal(SIGHUP, SIG_IGN);
				int flags = fcntl(conn, F_GETFL);
				(void)fcntl(conn, F_SETFL, flags & ~O_NONBLOCK);
				_exit(access_request_handle(env, svc, conn));
			}
			children[n_children++] = pid;
			(void)close(conn);
		}
	}
	(void)close(listen_fd);
	if (access_stop_sig != SIGHUP) {
		/* Stopping: end the sessions (a POP3 session killed does not
		 * commit its deletions: RFC 1939 section 6 does so only on
		 * QUIT; IMAP changes are already on disk). */
		for (size_t i = 0; i < n_children; i++)
			(void)kill(children[i], SIGTERM);
	}
	free(children);
	return 0;
}
