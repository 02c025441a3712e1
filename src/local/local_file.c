/* local_file.c - identities and files: taking a user's identity, reading a
 * file (.forward, :include:) as a given user, delivering to /file targets.
 *
 * Privilege rule (STYLE.md 7): a mailbox, .forward, :include: file or /file
 * target is opened only by a process that already is the user whose
 * privileges apply.  Reading as another user is done by a short-lived
 * child that switches identity for good; the root worker never opens such
 * paths itself, so a symlink in a home directory gives a user nothing he
 * could not read or write already.
 */
#include "local/local.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int local_privs_become(const struct local_privs *p, const char **error_r)
{
	if (geteuid() != 0) {
		if (p->uid == geteuid())
			return 0;
		*error_r = "cannot take another user's identity without root privileges";
		return -1;
	}
	/* Supplementary groups: the user's own (initgroups semantics) plus
	 * the mail spool group when the spool is group-writable (Debian's
	 * /var/mail is 2775 root:mail), so that the mailbox and its dot-lock
	 * can be created. */
	int n = 64;
	gid_t *groups = xreallocarray(NULL, (size_t)n + 1, sizeof(gid_t));
	if (p->user != NULL) {
		int want = n;
		if (getgrouplist(p->user, p->gid, groups, &want) < 0) {
			groups = xreallocarray(groups, (size_t)want + 1, sizeof(gid_t));
			n = want;
			if (getgrouplist(p->user, p->gid, groups, &n) < 0)
				n = 0;
		} else {
			n = want;
		}
	} else {
		n = 0;
	}
	if (n == 0)
		groups[n++] = p->gid;
	if (p->has_extra)
		groups[n++] = p->extra_gid;
	if (setgroups((size_t)n, groups) < 0) {
		free(groups);
		*error_r = "setgroups failed";
		return -1;
	}
	free(groups);
	if (setgid(p->gid) < 0) {
		*error_r = "setgid failed";
		return -1;
	}
	if (setuid(p->uid) < 0) {
		*error_r = "setuid failed";
		return -1;
	}
	if (getuid() != p->uid || geteuid() != p->uid || getgid() != p->gid ||
	    getegid() != p->gid) {
		*error_r = "identity switch did not take effect";
		return -1;
	}
	if (p->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		*error_r = "root privileges could be regained after setuid";
		return -1;
	}
	return 0;
}

static int local_file_read_direct(const char *path, size_t max, struct buf *out, struct buf *err)
{
	if (fs_read_file(path, max, out) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		buf_printf(err, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	return 1;
}

int local_file_read_as(const struct local_privs *p, const char *path, size_t max,
		       struct buf *out, struct buf *err)
{
	if (geteuid() != 0 || p->uid == 0)
		return local_file_read_direct(path, max, out, err);

	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		buf_printf(err, "pipe: %s", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		buf_printf(err, "fork: %s", strerror(errno));
		(void)close(fds[0]);
		(void)close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		/* Child: reply "0\n" + content, "N\n" (missing) or "E text". */
		(void)close(fds[0]);
		const char *perr = "";
		struct buf data = BUF_INIT, e = BUF_INIT;
		if (local_privs_become(p, &perr) < 0) {
			buf_printf(&e, "E%s", perr);
		} else {
			int r = local_file_read_direct(path, max, &data, &e);
			if (r == 1) {
				buf_append_str(&e, "0\n");
				buf_append(&e, data.data, data.len);
			} else if (r == 0) {
				buf_append_str(&e, "N\n");
			} else {
				struct buf t = BUF_INIT;
				buf_printf(&t, "E%s", buf_cstr(&e));
				buf_reset(&e);
				buf_append(&e, t.data, t.len);
				buf_deinit(&t);
			}
		}
		_exit(fs_write_full(fds[1], e.data, e.len) < 0 ? 1 : 0);
	}
	(void)close(fds[1]);
	struct buf in = BUF_INIT;
	char chunk[8192];
	for (;;) {
		ssize_t n = read(fds[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (in.len < max + 64)
			buf_append(&in, chunk, (size_t)n);
	}
	(void)close(fds[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int ret = -1;
	if (in.len >= 2 && in.data[0] == '0' && in.data[1] == '\n') {
		buf_append(out, in.data + 2, in.len - 2);
		ret = 1;
	} else if (in.len >= 1 && in.data[0] == 'N') {
		ret = 0;
	} else if (in.len >= 1 && in.data[0] == 'E') {
		buf_printf(err, "%s", buf_cstr(&in) + 1);
	} else {
		buf_printf(err, "cannot read %s as uid %lu: reader process failed", path,
			   (unsigned long)p->uid);
	}
	buf_deinit(&in);
	return ret;
}

int local_file_deliver(const char *path, const struct local_msg *m, const struct local_rcpt *r,
		       time_t now, struct buf *err)
{
	struct stat st;
	/* /dev/null and other character devices: no locking, no truncation
	 * (Postfix allows "/dev/null" as an alias target). */
	if (stat(path, &st) == 0 && S_ISCHR(st.st_mode)) {
		int fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			buf_printf(err, "cannot open %s: %s", path, strerror(errno));
			return -1;
		}
		const char *cerr = NULL;
		int ret = local_copy(fd, m, r, LOCAL_COPY_MBOX, now, &cerr);
		if (ret < 0)
			buf_printf(err, "cannot write %s: %s: %s", path, cerr, strerror(errno));
		if (close(fd) < 0 && ret == 0) {
			buf_printf(err, "cannot close %s: %s", path, strerror(errno));
			ret = -1;
		}
		return ret;
	}
	return local_mbox_append(path, m, r, now, false, err);
}
