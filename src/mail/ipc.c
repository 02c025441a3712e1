/* ipc.c - private sockets (see ipc.h), shared by the delivery agents
 * (local, smtp) that serve the queue manager. */
#include "mail/ipc.h"
#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/str.h"
#include "mail/role.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int ipc_listen(const struct role_env *env, const char *name)
{
	struct buf path = BUF_INIT, dir = BUF_INIT;
	buf_printf(&path, "%s/%s", env->queue_dir, name);
	buf_printf(&dir, "%s/private", env->queue_dir);
	if (fs_mkdir_p(buf_cstr(&dir), 0700) < 0 && errno != EEXIST)
		log_fatal("mkdir %s: %s", buf_cstr(&dir), strerror(errno));
	buf_deinit(&dir);

	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (!str_copy(sun.sun_path, sizeof(sun.sun_path), buf_cstr(&path)))
		log_fatal("socket path too long: %s", buf_cstr(&path));
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		log_fatal("socket: %s", strerror(errno));
	if (unlink(buf_cstr(&path)) < 0 && errno != ENOENT)
		log_fatal("unlink %s: %s", buf_cstr(&path), strerror(errno));
	mode_t old = umask(0077);
	int r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0)
		log_fatal("bind %s: %s", buf_cstr(&path), strerror(errno));
	if (chmod(buf_cstr(&path), 0600) < 0)
		log_fatal("chmod %s: %s", buf_cstr(&path), strerror(errno));
	/* A root-run agent (local) hands its socket to the queue manager's
	 * account; an unprivileged agent owns it already. */
	if (geteuid() == 0 && env->mail_uid != 0 &&
	    chown(buf_cstr(&path), env->mail_uid, env->mail_gid) < 0)
		log_fatal("chown %s: %s", buf_cstr(&path), strerror(errno));
	if (listen(fd, 128) < 0)
		log_fatal("listen %s: %s", buf_cstr(&path), strerror(errno));
	buf_deinit(&path);
	return fd;
}

int ipc_accept(const struct role_env *env, int listen_fd)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return -1;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cred.uid != env->mail_uid && cred.uid != geteuid())) {
		log_warning("connection refused from pid %ld uid %lu: not mail_owner",
			    (long)cred.pid, (unsigned long)cred.uid);
		(void)close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}
