/* fs.c - see fs.h. */
#include "fs.h"
#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_write_full(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fs_fsync_dir(const char *dir_path)
{
	int fd = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int ret = fsync(fd);
	int saved = errno;
	if (close(fd) < 0 && ret == 0)
		return -1;
	errno = saved;
	return ret;
}

int fs_fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		return fs_fsync_dir(".");
	size_t n = (size_t)(slash - path);
	if (n == 0)
		return fs_fsync_dir("/");
	if (n >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dir, path, n);
	dir[n] = '\0';
	return fs_fsync_dir(dir);
}

int fs_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

int fs_read_file(const char *path, size_t max_size, struct buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	uint8_t chunk[8192];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int saved = errno;
			(void)close(fd);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		if (out->len + (size_t)n > max_size) {
			(void)close(fd);
			errno = EFBIG;
			return -1;
		}
		buf_append(out, chunk, (size_t)n);
	}
	return close(fd);
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -1;
	if (fs_write_full(fd, data, len) < 0 || fsync(fd) < 0) {
		int saved = errno;
		(void)close(fd);
		(void)unlink(tmp);
		errno = saved;
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		int saved = errno;
		(void)unlink(tmp);
		errno = saved;
		return -1;
	}
	return fs_fsync_parent(path);
}
