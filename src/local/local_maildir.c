/* local_maildir.c - deliver one message into a Maildir.
 *
 * Called in a child that has the mailbox owner's identity.  The Maildir
 * protocol (as Courier, Dovecot, mutt and mbsync read it): the message is
 * written under tmp/ with a unique name, made durable (fsync), then made
 * visible atomically by link() into new/ (rename() where the file system
 * refuses hard links), the tmp/ name removed and new/ fsync'd: only then
 * is the delivery reported (STYLE.md 6.8).  A reader never sees a partial
 * file in new/.  The Maildir and its tmp/ new/ cur/ are created (0700) on
 * first delivery, as PRODUCT.md requires.
 *
 * Unique names "SEC.M<usec>P<pid>Q<seq>.HOST" are Dovecot's and Courier's
 * shape; '/' and ':' in the host name would break the name (':' starts the
 * info part) and are written "\057" and "\072" as Dovecot does.
 */
#include "local/local.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/str.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static unsigned local_maildir_seq;

void local_maildir_unique(struct buf *out, long sec, long usec, long pid, unsigned seq,
			  const char *hostname)
{
	buf_printf(out, "%ld.M%ldP%ldQ%u.", sec, usec, pid, seq);
	for (const char *p = hostname; *p != '\0'; p++) {
		if (*p == '/')
			buf_append_str(out, "\\057");
		else if (*p == ':')
			buf_append_str(out, "\\072");
		else
			buf_append_char(out, *p);
	}
}

static int local_maildir_mkdir(const char *path, struct buf *err)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	buf_printf(err, "create maildir directory %s: %s", path, strerror(errno));
	return -1;
}

int local_maildir_deliver(const char *dir, const struct local_msg *m, const struct local_rcpt *r,
			  struct buf *err)
{
	struct buf tmp = BUF_INIT, new = BUF_INIT, sub = BUF_INIT, name = BUF_INIT;
	int ret = -1, fd = -1;

	/* First delivery: create the Maildir (and missing parents: virtual
	 * mailboxes live under per-domain directories). */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		if (errno != ENOENT || fs_mkdir_p(dir, 0700) < 0) {
			buf_printf(err, "create maildir directory %s: %s", dir, strerror(errno));
			goto out;
		}
	}
	static const char *const subs[] = { "tmp", "new", "cur" };
	for (size_t i = 0; i < 3; i++) {
		buf_reset(&sub);
		buf_printf(&sub, "%s/%s", dir, subs[i]);
		if (local_maildir_mkdir(buf_cstr(&sub), err) < 0)
			goto out;
	}

	char host[HOST_NAME_MAX + 1];
	if (gethostname(host, sizeof(host)) < 0)
		str_copy(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';

	for (int attempt = 0; attempt < 10; attempt++) {
		struct timeval tv;
		gettimeofday(&tv, NULL);
		buf_reset(&name);
		local_maildir_unique(&name, (long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
				     ++local_maildir_seq, host);
		buf_reset(&tmp);
		buf_printf(&tmp, "%s/tmp/%s", dir, buf_cstr(&name));
		fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		buf_printf(err, "create maildir file %s: %s", buf_cstr(&tmp), strerror(errno));
		goto out;
	}

	const char *cerr = NULL;
	if (local_copy(fd, m, r, 0, time(NULL), &cerr) < 0) {
		buf_printf(err, "write maildir file %s: %s: %s", buf_cstr(&tmp), cerr, strerror(errno));
		goto out_unlink;
	}
	if (fsync(fd) < 0) {
		buf_printf(err, "fsync maildir file %s: %s", buf_cstr(&tmp), strerror(errno));
		goto out_unlink;
	}
	int cfd = fd;
	fd = -1;
	if (close(cfd) < 0) {
		buf_printf(err, "close maildir file %s: %s", buf_cstr(&tmp), strerror(errno));
		goto out_unlink;
	}

	buf_printf(&new, "%s/new/%s", dir, buf_cstr(&name));
	if (link(buf_cstr(&tmp), buf_cstr(&new)) == 0) {
		if (unlink(buf_cstr(&tmp)) < 0)
			log_warning("remove %s: %s", buf_cstr(&tmp), strerror(errno));
	} else if (errno == EPERM || errno == ENOSYS || errno == EOPNOTSUPP || errno == EXDEV ||
		   errno == EMLINK) {
		/* File systems without hard links (some FUSE, vfat, AFS). */
		if (rename(buf_cstr(&tmp), buf_cstr(&new)) < 0) {
			buf_printf(err, "rename %s to %s: %s", buf_cstr(&tmp), buf_cstr(&new),
				   strerror(errno));
			goto out_unlink;
		}
	} else {
		buf_printf(err, "link %s to %s: %s", buf_cstr(&tmp), buf_cstr(&new), strerror(errno));
		goto out_unlink;
	}

	buf_reset(&sub);
	buf_printf(&sub, "%s/new", dir);
	if (fs_fsync_dir(buf_cstr(&sub)) < 0) {
		/* The file is visible but maybe not durable: report a temporary
		 * failure (a retry may deliver twice, never lose). */
		buf_printf(err, "fsync directory %s: %s", buf_cstr(&sub), strerror(errno));
		goto out;
	}
	ret = 0;
	goto out;

out_unlink:
	if (fd >= 0)
		(void)close(fd);
	fd = -1;
	if (unlink(buf_cstr(&tmp)) < 0 && errno != ENOENT)
		log_warning("remove %s: %s", buf_cstr(&tmp), strerror(errno));
out:
	if (fd >= 0)
		(void)close(fd);
	buf_deinit(&tmp);
	buf_deinit(&new);
	buf_deinit(&sub);
	buf_deinit(&name);
	return ret;
}
