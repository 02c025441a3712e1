/* fs.h - file system helpers for durable writes.  Every failure returns -1
 * with errno set; callers log with the object they know (path, queue id). */
#ifndef FACTEUR_LIB_FS_H
#define FACTEUR_LIB_FS_H

#include <stddef.h>
#include <sys/types.h>

struct buf;

/* write(2) all of len bytes, retrying on EINTR and short writes. */
int fs_write_full(int fd, const void *data, size_t len);
/* Open dir_path and fsync it: makes a rename/creat/unlink in it durable. */
int fs_fsync_dir(const char *dir_path);
/* fsync the directory that contains path. */
int fs_fsync_parent(const char *path);
/* mkdir -p with mode for the created components. */
int fs_mkdir_p(const char *path, mode_t mode);
/* Read a whole file (at most max_size bytes, else EFBIG) into out. */
int fs_read_file(const char *path, size_t max_size, struct buf *out);
/* Write a file atomically: tmp file beside it, fsync, rename, fsync dir. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

#endif
