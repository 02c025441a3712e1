/* local_mbox.c - append one message to an mbox file, durably.
 *
 * Called in a child that already has the recipient's identity (never as
 * another user: the path checks below are only meaningful then).  Order
 * (STYLE.md 6.8):
 *   1. dot-lock PATH.lock (O_CREAT|O_EXCL; older than 5 minutes = stale),
 *      the lock mutt, s-nail, procmail and Dovecot's mbox code also take;
 *   2. open O_WRONLY|O_APPEND|O_CREAT|O_NOFOLLOW 0600 and check the file
 *      is the one lstat() saw: a regular file with one link, owned by us
 *      (a symlink or hard link planted in /var/mail must not make us
 *      append to another user's file);
 *   3. fcntl write lock (F_SETLK, retried for local_mbox_lock_wait s);
 *   4. note the size, write, fsync; on any failure ftruncate back to the
 *      noted size so that readers never see half a message;
 *   5. unlock, remove the dot-lock.
 * Only after 4 succeeded does the caller report the delivery.
 */
#include "local/local.h"

#include "lib/buf.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

unsigned local_mbox_lock_wait = 10;

#define LOCAL_DOTLOCK_STALE 300 /* seconds: an older PATH.lock is stale */

static void local_mbox_nap(void)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	nanosleep(&ts, NULL);
}

static int local_mbox_dotlock(const char *lock, struct buf *err)
{
	unsigned tries = local_mbox_lock_wait * 10;
	for (unsigned i = 0;; i++) {
		int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			if (close(fd) < 0) {
				buf_printf(err, "close lock file %s: %s", lock, strerror(errno));
				(void)unlink(lock);
				return -1;
			}
			return 0;
		}
		if (errno != EEXIST) {
			int e = errno;
			buf_printf(err, "cannot create lock file %s: %s", lock, strerror(e));
			errno = e;
			return -1;
		}
		struct stat st;
		if (lstat(lock, &st) == 0 && time(NULL) - st.st_mtime > LOCAL_DOTLOCK_STALE) {
			log_warning("removing stale lock file %s", lock);
			if (unlink(lock) < 0 && errno != ENOENT) {
				buf_printf(err, "cannot remove stale lock file %s: %s", lock,
					   strerror(errno));
				return -1;
			}
			continue;
		}
		if (i >= tries) {
			buf_printf(err, "unable to lock for exclusive access: %s exists", lock);
			errno = EAGAIN;
			return -1;
		}
		local_mbox_nap();
	}
}

static int local_mbox_fcntl_lock(int fd, struct buf *err)
{
	unsigned tries = local_mbox_lock_wait * 10;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	for (unsigned i = 0;; i++) {
		if (fcntl(fd, F_SETLK, &fl) == 0)
			return 0;
		if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
			buf_printf(err, "cannot lock file: %s", strerror(errno));
			return -1;
		}
		if (i >= tries) {
			buf_printf(err, "unable to lock for exclusive access: %s", strerror(errno));
			errno = EAGAIN;
			return -1;
		}
		local_mbox_nap();
	}
}

int local_mbox_append(const char *path, const struct local_msg *m, const struct local_rcpt *r,
		      time_t now, bool check_owner, struct buf *err)
{
	struct stat lst, st;
	bool existed = true;
	if (lstat(path, &lst) < 0) {
		if (errno != ENOENT) {
			buf_printf(err, "cannot examine file: %s", strerror(errno));
			return -1;
		}
		existed = false;
	} else if (S_ISLNK(lst.st_mode)) {
		buf_printf(err, "file is a symbolic link");
		return -1;
	} else if (!S_ISREG(lst.st_mode)) {
		buf_printf(err, "file is not a regular file");
		return -1;
	} else if (lst.st_nlink > 1) {
		buf_printf(err, "file has too many hard links");
		return -1;
	} else if (check_owner && lst.st_uid != geteuid()) {
		buf_printf(err, "file is owned by uid %lu, not by uid %lu", (unsigned long)lst.st_uid,
			   (unsigned long)geteuid());
		return -1;
	}

	struct buf lock = BUF_INIT;
	buf_printf(&lock, "%s.lock", path);
	if (local_mbox_dotlock(buf_cstr(&lock), err) < 0) {
		buf_deinit(&lock);
		return -1;
	}

	int ret = -1;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
	if (fd < 0) {
		buf_printf(err, "cannot open file: %s", strerror(errno));
		goto out_unlock;
	}
	if (fstat(fd, &st) < 0) {
		buf_printf(err, "cannot fstat file: %s", strerror(errno));
		goto out_close;
	}
	/* The file opened must be the one examined (no race with a rename or
	 * a link planted between lstat and open). */
	if ((existed && (st.st_dev != lst.st_dev || st.st_ino != lst.st_ino)) ||
	    !S_ISREG(st.st_mode) || st.st_nlink != 1 || (check_owner && st.st_uid != geteuid())) {
		buf_printf(err, "file changed while it was opened (or has links or a wrong owner)");
		goto out_close;
	}
	if (local_mbox_fcntl_lock(fd, err) < 0)
		goto out_close;
	if (fstat(fd, &st) < 0) {
		buf_printf(err, "cannot fstat file: %s", strerror(errno));
		goto out_close;
	}
	off_t size = st.st_size;

	const char *cerr = NULL;
	int fail = local_copy(fd, m, r, LOCAL_COPY_MBOX, now, &cerr);
	if (fail == 0 && fsync(fd) < 0) {
		cerr = "fsync failed";
		fail = -1;
	}
	if (fail < 0) {
		int e = errno;
		buf_printf(err, "%s: %s", cerr, strerror(e));
		/* Give readers the mailbox as it was. */
		if (ftruncate(fd, size) < 0 || fsync(fd) < 0)
			log_error("cannot truncate %s back to %lld bytes: %s", path,
				  (long long)size, strerror(errno));
		errno = e;
		goto out_close;
	}
	ret = 0;
out_close:
	if (fd >= 0 && close(fd) < 0 && ret == 0) {
		/* close after a successful fsync: report, data is on disk. */
		log_warning("close %s: %s", path, strerror(errno));
	}
out_unlock:
	if (unlink(buf_cstr(&lock)) < 0)
		log_warning("cannot remove lock file %s: %s", buf_cstr(&lock), strerror(errno));
	buf_deinit(&lock);
	return ret;
}

int local_mbox_deliver(const char *path, const struct local_msg *m, const struct local_rcpt *r,
		       time_t now, struct buf *err)
{
	return local_mbox_append(path, m, r, now, true, err);
}
