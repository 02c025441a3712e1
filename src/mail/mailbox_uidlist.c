/* mailbox_uidlist.c - the persistent UID index of a Maildir.
 *
 * The index maps Maildir base names (the unique part before ':') to UIDs and
 * keeps UIDVALIDITY and UIDNEXT (RFC 3501 2.3.1.1).  It is replaced
 * atomically (tmp file, fsync, rename, fsync directory) and changed only
 * under a lock file created with O_CREAT|O_EXCL, which works between
 * processes, between facteur instances sharing the store and over NFS.  The
 * parser treats the file as untrusted (disk corruption, another tool): every
 * field is range-checked, UIDs must ascend and stay below UIDNEXT, names are
 * bounded and may not hold '/' or control characters.
 */
#include "mail/mailbox.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char mailbox_uidlist_errbuf[512];

__attribute__((format(printf, 1, 2))) static const char *mailbox_uidlist_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(mailbox_uidlist_errbuf, sizeof(mailbox_uidlist_errbuf), fmt, ap);
	va_end(ap);
	return mailbox_uidlist_errbuf;
}

void mailbox_uidlist_init(struct mailbox_uidlist *ul)
{
	memset(ul, 0, sizeof(*ul));
}

void mailbox_uidlist_deinit(struct mailbox_uidlist *ul)
{
	for (size_t i = 0; i < ul->count; i++)
		free(ul->entries[i].name);
	free(ul->entries);
	memset(ul, 0, sizeof(*ul));
}

void mailbox_uidlist_add(struct mailbox_uidlist *ul, uint32_t uid, uint64_t vsize, char *name)
{
	if (ul->count == ul->cap) {
		ul->cap = ul->cap == 0 ? 64 : ul->cap * 2;
		ul->entries = xreallocarray(ul->entries, ul->cap, sizeof(*ul->entries));
	}
	ul->entries[ul->count].uid = uid;
	ul->entries[ul->count].vsize = vsize;
	ul->entries[ul->count].name = name;
	ul->count++;
}

/* Parse decimal digits of v into [min, max]. */
static int mailbox_uidlist_num(struct strv v, uint64_t min, uint64_t max, uint64_t *value_r)
{
	char digits[24];
	if (v.len == 0 || v.len >= sizeof(digits))
		return -1;
	for (size_t i = 0; i < v.len; i++)
		if (v.ptr[i] < '0' || v.ptr[i] > '9')
			return -1;
	memcpy(digits, v.ptr, v.len);
	digits[v.len] = '\0';
	return str_to_u64(digits, min, max, value_r);
}

/* Next space-separated token of line starting at *pos. */
static struct strv mailbox_uidlist_token(struct strv line, size_t *pos)
{
	while (*pos < line.len && line.ptr[*pos] == ' ')
		(*pos)++;
	size_t start = *pos;
	while (*pos < line.len && line.ptr[*pos] != ' ')
		(*pos)++;
	return strv_make(line.ptr + start, *pos - start);
}

static int mailbox_uidlist_parse_header(struct mailbox_uidlist *ul, struct strv line,
					uint32_t *hint_r, const char **error_r)
{
	size_t pos = 0;
	uint64_t v;
	bool have_v = false, have_n = false;
	struct strv tok = mailbox_uidlist_token(line, &pos);
	if (!strv_eq(tok, "1")) {
		*error_r = "unsupported index version";
		return -1;
	}
	for (;;) {
		tok = mailbox_uidlist_token(line, &pos);
		if (tok.len == 0)
			break;
		struct strv val = strv_make(tok.ptr + 1, tok.len - 1);
		if (tok.ptr[0] == 'V') {
			if (mailbox_uidlist_num(val, 1, UINT32_MAX, &v) < 0) {
				*error_r = "bad UIDVALIDITY in index header";
				return -1;
			}
			ul->uidvalidity = (uint32_t)v;
			*hint_r = ul->uidvalidity;
			have_v = true;
		} else if (tok.ptr[0] == 'N') {
			if (mailbox_uidlist_num(val, 1, UINT32_MAX, &v) < 0) {
				*error_r = "bad UIDNEXT in index header";
				return -1;
			}
			ul->uidnext = (uint32_t)v;
			have_n = true;
		} else if (tok.ptr[0] < 'A' || tok.ptr[0] > 'Z') {
			*error_r = "bad field in index header";
			return -1;
		}
		/* other upper-case fields: a later version's, skipped */
	}
	if (!have_v || !have_n) {
		*error_r = "index header lacks UIDVALIDITY or UIDNEXT";
		return -1;
	}
	return 0;
}

static int mailbox_uidlist_parse_entry(struct mailbox_uidlist *ul, struct strv line,
				       const char **error_r)
{
	size_t pos = 0;
	uint64_t uid, vsize = MAILBOX_VSIZE_UNKNOWN;
	struct strv tok = mailbox_uidlist_token(line, &pos);
	if (mailbox_uidlist_num(tok, 1, UINT32_MAX, &uid) < 0) {
		*error_r = "bad UID in index";
		return -1;
	}
	if (uid >= ul->uidnext || (ul->count > 0 && uid <= ul->entries[ul->count - 1].uid)) {
		*error_r = "UIDs in index not ascending or not below UIDNEXT";
		return -1;
	}
	for (;;) {
		while (pos < line.len && line.ptr[pos] == ' ')
			pos++;
		if (pos >= line.len) {
			*error_r = "index line without file name";
			return -1;
		}
		if (line.ptr[pos] == ':')
			break;
		tok = mailbox_uidlist_token(line, &pos);
		if (tok.ptr[0] == 'W') {
			/* vsize below UINT64_MAX: that value means unknown */
			if (mailbox_uidlist_num(strv_make(tok.ptr + 1, tok.len - 1), 0,
						UINT64_MAX - 1, &vsize) < 0) {
				*error_r = "bad size in index";
				return -1;
			}
		} else if (tok.ptr[0] < 'A' || tok.ptr[0] > 'Z') {
			*error_r = "bad field in index line";
			return -1;
		}
	}
	struct strv name = strv_make(line.ptr + pos + 1, line.len - pos - 1);
	if (name.len == 0 || name.len > MAILBOX_NAME_MAX || name.ptr[0] == '.') {
		*error_r = "bad file name in index";
		return -1;
	}
	for (size_t i = 0; i < name.len; i++) {
		unsigned char c = (unsigned char)name.ptr[i];
		if (c < 0x20 || c == 0x7f || c == '/' || c == ':') {
			*error_r = "bad character in index file name";
			return -1;
		}
	}
	mailbox_uidlist_add(ul, (uint32_t)uid, vsize, strv_dup(name));
	return 0;
}

int mailbox_uidlist_parse(struct mailbox_uidlist *ul, const char *data, size_t len,
			  uint32_t *uidvalidity_hint_r, const char **error_r)
{
	size_t pos = 0;
	bool header = true;
	mailbox_uidlist_init(ul);
	*uidvalidity_hint_r = 0;
	if (len == 0 || data[len - 1] != '\n') {
		/* rename() makes writes atomic: a missing final newline is damage */
		*error_r = "index truncated";
		goto fail;
	}
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t n = (size_t)(nl - (data + pos));
		struct strv line = strv_make(data + pos, n);
		pos += n + 1;
		if (memchr(line.ptr, '\0', line.len) != NULL) {
			*error_r = "NUL byte in index";
			goto fail;
		}
		if (header) {
			if (mailbox_uidlist_parse_header(ul, line, uidvalidity_hint_r, error_r) < 0)
				goto fail;
			header = false;
		} else if (mailbox_uidlist_parse_entry(ul, line, error_r) < 0) {
			goto fail;
		}
	}
	return 0;
fail:
	mailbox_uidlist_deinit(ul);
	return -1;
}

void mailbox_uidlist_format(const struct mailbox_uidlist *ul, struct buf *out)
{
	buf_printf(out, "1 V%u N%u\n", (unsigned)ul->uidvalidity, (unsigned)ul->uidnext);
	for (size_t i = 0; i < ul->count; i++) {
		const struct mailbox_uidlist_entry *e = &ul->entries[i];
		if (e->vsize != MAILBOX_VSIZE_UNKNOWN)
			buf_printf(out, "%u W%llu :%s\n", (unsigned)e->uid,
				   (unsigned long long)e->vsize, e->name);
		else
			buf_printf(out, "%u :%s\n", (unsigned)e->uid, e->name);
	}
}

int mailbox_uidlist_read(const char *path, struct mailbox_uidlist *ul, bool *malformed_r,
			 uint32_t *uidvalidity_hint_r, const char **error_r)
{
	struct buf data = BUF_INIT;
	*malformed_r = false;
	*uidvalidity_hint_r = 0;
	mailbox_uidlist_init(ul);
	if (fs_read_file(path, MAILBOX_UIDLIST_MAX_SIZE, &data) < 0) {
		int saved = errno;
		buf_deinit(&data);
		if (saved == ENOENT)
			return 0;
		if (saved == EFBIG)
			*malformed_r = true;
		*error_r = mailbox_uidlist_err("read %s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	const char *perr = NULL;
	int ret = mailbox_uidlist_parse(ul, (const char *)data.data, data.len, uidvalidity_hint_r,
					&perr);
	buf_deinit(&data);
	if (ret < 0) {
		*malformed_r = true;
		*error_r = mailbox_uidlist_err("%s: %s", path, perr);
		return -1;
	}
	return 1;
}

int mailbox_uidlist_write(const char *path, const struct mailbox_uidlist *ul,
			  const char **error_r)
{
	struct buf out = BUF_INIT;
	mailbox_uidlist_format(ul, &out);
	int ret = fs_write_atomic(path, out.data, out.len, 0600);
	if (ret < 0)
		*error_r = mailbox_uidlist_err("write %s: %s", path, strerror(errno));
	buf_deinit(&out);
	return ret;
}

int mailbox_uidlist_lock(const char *lock_path, unsigned wait_secs, const char **error_r)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int fd = open(lock_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			      0600);
		if (fd >= 0) {
			/* The pid helps an administrator; nobody parses it. */
			char pid[32];
			int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
			if (fs_write_full(fd, pid, (size_t)n) < 0)
				log_warning("write %s: %s", lock_path, strerror(errno));
			if (close(fd) < 0)
				log_warning("close %s: %s", lock_path, strerror(errno));
			return 0;
		}
		if (errno != EEXIST) {
			*error_r = mailbox_uidlist_err("create %s: %s", lock_path,
						       strerror(errno));
			return -1;
		}
		struct stat st;
		if (stat(lock_path, &st) == 0 &&
		    time(NULL) - st.st_mtime > MAILBOX_LOCK_STALE_SECS) {
			log_warning("%s: breaking stale lock (older than %d seconds)", lock_path,
				    MAILBOX_LOCK_STALE_SECS);
			if (unlink(lock_path) < 0 && errno != ENOENT) {
				*error_r = mailbox_uidlist_err("remove stale %s: %s", lock_path,
							       strerror(errno));
				return -1;
			}
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t waited_ms = (int64_t)(now.tv_sec - start.tv_sec) * 1000 +
				    (now.tv_nsec - start.tv_nsec) / 1000000;
		if (waited_ms >= (int64_t)wait_secs * 1000) {
			*error_r = mailbox_uidlist_err("%s: locked by another process for %u "
						       "seconds",
						       lock_path, wait_secs);
			errno = EWOULDBLOCK;
			return -1;
		}
		struct timespec pause = { 0, 10 * 1000 * 1000 };
		nanosleep(&pause, NULL);
	}
}

void mailbox_uidlist_unlock(const char *lock_path)
{
	if (unlink(lock_path) < 0)
		log_warning("remove %s: %s", lock_path, strerror(errno));
}
