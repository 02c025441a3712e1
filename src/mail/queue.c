/* queue.c - queue directory helpers (see queue.h). */
#include "mail/queue.h"
#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
	const char *name;
	mode_t mode;
	char kind; /* d directory, f fifo */
} queue_layout[] = {
	{ QUEUE_MAILDROP, 01733, 'd' },
	{ QUEUE_TMP, 0700, 'd' },
	{ QUEUE_INCOMING, 0700, 'd' },
	{ QUEUE_ACTIVE, 0700, 'd' },
	{ QUEUE_DEFERRED, 0700, 'd' },
	{ QUEUE_HOLD, 0700, 'd' },
	{ QUEUE_CORRUPT, 0700, 'd' },
	{ "public", 0755, 'd' },
	{ "private", 0700, 'd' },
	{ "pid", 0755, 'd' },
	{ "public/qmgr", 0622, 'f' },
	{ "public/pickup", 0622, 'f' },
};

int queue_dirs_create(const char *queue_dir, uid_t owner, gid_t group, const char **error_r)
{
	struct buf path = BUF_INIT;
	bool is_root = geteuid() == 0;

	if (fs_mkdir_p(queue_dir, 0755) < 0) {
		*error_r = "create queue_directory";
		return -1;
	}
	if (is_root && chown(queue_dir, 0, 0) < 0) {
		*error_r = "chown queue_directory";
		return -1;
	}
	for (size_t i = 0; i < sizeof(queue_layout) / sizeof(queue_layout[0]); i++) {
		buf_reset(&path);
		buf_printf(&path, "%s/%s", queue_dir, queue_layout[i].name);
		const char *p = buf_cstr(&path);
		int ret = queue_layout[i].kind == 'd' ? mkdir(p, queue_layout[i].mode)
						      : mkfifo(p, queue_layout[i].mode);
		if (ret < 0 && errno != EEXIST) {
			*error_r = queue_layout[i].kind == 'd' ? "mkdir in queue_directory"
							       : "mkfifo in queue_directory";
			buf_deinit(&path);
			return -1;
		}
		struct stat st;
		if (lstat(p, &st) < 0 ||
		    (queue_layout[i].kind == 'd' ? !S_ISDIR(st.st_mode) : !S_ISFIFO(st.st_mode))) {
			*error_r = "unexpected file type in queue_directory";
			buf_deinit(&path);
			return -1;
		}
		/* mkdir/mkfifo apply the umask: set the intended mode. */
		if (chmod(p, queue_layout[i].mode) < 0 ||
		    (is_root && chown(p, owner, group) < 0)) {
			*error_r = "chmod/chown in queue_directory";
			buf_deinit(&path);
			return -1;
		}
	}
	buf_deinit(&path);
	return 0;
}

int queue_tmp_clean(const char *queue_dir)
{
	struct buf path = BUF_INIT;
	int n = 0;
	buf_printf(&path, "%s/%s", queue_dir, QUEUE_TMP);
	DIR *d = opendir(buf_cstr(&path));
	if (d == NULL) {
		buf_deinit(&path);
		return 0;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
		else
			log_warning("unlink %s/%s: %s", buf_cstr(&path), de->d_name, strerror(errno));
	}
	(void)closedir(d);
	if (n > 0)
		(void)fs_fsync_dir(buf_cstr(&path));
	buf_deinit(&path);
	return n;
}

bool queue_id_valid(const char *id)
{
	size_t n = 0;
	for (; id[n] != '\0'; n++) {
		char c = id[n];
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')))
			return false;
	}
	return n > 0 && n < 32;
}

void queue_path(struct buf *out, const char *queue_dir, const char *sub, const char *id)
{
	buf_reset(out);
	buf_printf(out, "%s/%s/%s", queue_dir, sub, id);
}

int queue_move(const char *queue_dir, const char *id, const char *from, const char *to)
{
	struct buf src = BUF_INIT, dst = BUF_INIT;
	int ret = -1;
	queue_path(&src, queue_dir, from, id);
	queue_path(&dst, queue_dir, to, id);
	if (rename(buf_cstr(&src), buf_cstr(&dst)) < 0)
		goto out;
	if (fs_fsync_parent(buf_cstr(&dst)) < 0 || fs_fsync_parent(buf_cstr(&src)) < 0)
		goto out;
	ret = 0;
out:
	buf_deinit(&src);
	buf_deinit(&dst);
	return ret;
}

int queue_rename(const char *queue_dir, const char *id, const char *from, const char *to)
{
	struct buf src = BUF_INIT, dst = BUF_INIT;
	queue_path(&src, queue_dir, from, id);
	queue_path(&dst, queue_dir, to, id);
	int ret = rename(buf_cstr(&src), buf_cstr(&dst));
	buf_deinit(&src);
	buf_deinit(&dst);
	return ret;
}

char **queue_dir_ids(const char *queue_dir, const char *sub)
{
	struct buf path = BUF_INIT;
	char **ids = xcalloc(1, sizeof(char *));
	size_t n = 0;
	buf_printf(&path, "%s/%s", queue_dir, sub);
	DIR *d = opendir(buf_cstr(&path));
	buf_deinit(&path);
	if (d == NULL)
		return ids;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!queue_id_valid(de->d_name))
			continue;
		ids = xreallocarray(ids, n + 2, sizeof(char *));
		ids[n++] = xstrdup(de->d_name);
		ids[n] = NULL;
	}
	(void)closedir(d);
	return ids;
}

const char *queue_find(const char *queue_dir, const char *id)
{
	static const char *const dirs[] = { QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED,
					    QUEUE_HOLD, QUEUE_CORRUPT };
	struct buf p = BUF_INIT;
	const char *found = NULL;
	if (!queue_id_valid(id))
		return NULL;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && found == NULL; i++) {
		queue_path(&p, queue_dir, dirs[i], id);
		if (access(buf_cstr(&p), F_OK) == 0)
			found = dirs[i];
	}
	buf_deinit(&p);
	return found;
}

int queue_notify(const char *queue_dir, const char *fifo_name, const char *line)
{
	struct buf p = BUF_INIT;
	buf_printf(&p, "%s/public/%s", queue_dir, fifo_name);
	int fd = open(buf_cstr(&p), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	buf_deinit(&p);
	if (fd < 0)
		return (errno == ENXIO || errno == ENOENT) ? 0 : -1;
	size_t len = strlen(line);
	ssize_t n = write(fd, line, len);
	int saved = errno;
	(void)close(fd);
	if (n < 0 && saved != EAGAIN) {
		errno = saved;
		return -1;
	}
	return 0;
}
