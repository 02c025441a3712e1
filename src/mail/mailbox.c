/* mailbox.c - format-independent part of the mailbox layer: open/free,
 * dispatch to the format, accessors and the CRLF octet count that POP3
 * (RFC 1939 LIST/STAT) and IMAP (RFC 3501 RFC822.SIZE) report; and, until
 * it grows into its own file, the read-only mbox listing.
 *
 * mbox as local delivery writes it and mutt reads it: a message starts with
 * a "From " line at the start of the file or after an empty line and ends
 * before the empty line that precedes the next one.  Body lines were quoted
 * ">From " (mboxo), which is not reversible, so sizes count the bytes as
 * stored, as Dovecot does.  Flags come from the Status: (R seen) and
 * X-Status: (A answered, F flagged, T draft, D deleted) headers that mutt,
 * Pine and Dovecot write. */
#include "mail/mailbox.h"

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char mailbox_open_error[1024];

const char *mailbox_set_error(struct mailbox *mb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(mb->error, sizeof(mb->error), fmt, ap);
	va_end(ap);
	return mb->error;
}

void mailbox_msg_deinit(struct mailbox_msg *m)
{
	free(m->base);
	free(m->name);
	free(m->keywords);
	memset(m, 0, sizeof(*m));
}

/* How long to wait for a delivery's write lock to go away. */
#define MAILBOX_MBOX_LOCK_WAIT_MS 10000

static int mailbox_mbox_rdlock(struct mailbox *mb, int fd, const char **error_r)
{
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
	for (int waited = 0;; waited += 100) {
		if (fcntl(fd, F_SETLK, &fl) == 0)
			return 0;
		if ((errno != EAGAIN && errno != EACCES) || waited >= MAILBOX_MBOX_LOCK_WAIT_MS) {
			*error_r = mailbox_set_error(mb, "lock %s: %s", mb->path, strerror(errno));
			return -1;
		}
		struct timespec pause = { 0, 100 * 1000 * 1000 };
		nanosleep(&pause, NULL);
	}
}

static bool mailbox_mbox_header_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);
	return len > n && strv_case_prefix(strv_make(line, len), name);
}

static unsigned mailbox_mbox_header_flags(const char *line, size_t len)
{
	unsigned flags = 0;
	if (mailbox_mbox_header_is(line, len, "Status:")) {
		if (memchr(line + 7, 'R', len - 7) != NULL)
			flags |= MAILBOX_FLAG_SEEN;
	} else if (mailbox_mbox_header_is(line, len, "X-Status:")) {
		static const struct {
			char c;
			unsigned flag;
		} map[] = { { 'A', MAILBOX_FLAG_ANSWERED }, { 'F', MAILBOX_FLAG_FLAGGED },
			    { 'T', MAILBOX_FLAG_DRAFT }, { 'D', MAILBOX_FLAG_DELETED } };
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (memchr(line + 9, map[i].c, len - 9) != NULL)
				flags |= map[i].flag;
	}
	return flags;
}

/* "From sender Www Mmm dd hh:mm:ss yyyy" (asctime, local time). */
static time_t mailbox_mbox_from_date(const char *line, size_t len, time_t fallback)
{
	char text[256];
	if (len >= sizeof(text))
		return fallback;
	memcpy(text, line, len);
	text[len] = '\0';
	const char *p = strchr(text + 5, ' ');
	if (p == NULL)
		return fallback;
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(p, " %a %b %d %H:%M:%S %Y", &tm);
	if (end == NULL)
		return fallback;
	tm.tm_isdst = -1;
	time_t t = mktime(&tm);
	return t == (time_t)-1 ? fallback : t;
}

static void mailbox_mbox_add(struct mailbox_msg **msgs, size_t *count, size_t *cap,
			     const uint8_t *data, uint64_t start, uint64_t end, unsigned flags,
			     time_t date)
{
	if (*count == *cap) {
		*cap = *cap == 0 ? 64 : *cap * 2;
		*msgs = xreallocarray(*msgs, *cap, sizeof(**msgs));
	}
	struct mailbox_msg *m = &(*msgs)[(*count)++];
	memset(m, 0, sizeof(*m));
	m->uid = (uint32_t)*count;
	m->flags = flags;
	m->offset = start;
	m->size = end - start;
	bool cr = false;
	m->vsize = mailbox_crlf_size(data + start, (size_t)(end - start), &cr);
	m->date = date;
}

static int mailbox_mbox_sync(struct mailbox *mb, const char **error_r)
{
	struct mailbox_msg *msgs = NULL;
	size_t count = 0, cap = 0;
	int fd = open(mb->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		*error_r = mailbox_set_error(mb, "open %s: %s", mb->path, strerror(errno));
		return -1;
	}
	if (fd >= 0) {
		struct stat st;
		if (mailbox_mbox_rdlock(mb, fd, error_r) < 0)
			goto fail;
		if (fstat(fd, &st) < 0) {
			*error_r = mailbox_set_error(mb, "stat %s: %s", mb->path, strerror(errno));
			goto fail;
		}
		if (!S_ISREG(st.st_mode)) {
			*error_r = mailbox_set_error(mb, "%s: not a regular file", mb->path);
			goto fail;
		}
		size_t n = (size_t)st.st_size;
		const uint8_t *data = NULL;
		if (n > 0) {
			void *map = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
			if (map == MAP_FAILED) {
				*error_r = mailbox_set_error(mb, "mmap %s: %s", mb->path,
							     strerror(errno));
				goto fail;
			}
			data = map;
			if (n < 5 || memcmp(data, "From ", 5) != 0) {
				(void)munmap(map, n);
				*error_r = mailbox_set_error(mb, "%s: not an mbox file", mb->path);
				errno = EINVAL;
				goto fail;
			}
		}
		uint64_t start = 0;
		unsigned flags = 0;
		time_t date = 0;
		bool in_msg = false, in_header = false, prev_empty = true;
		size_t pos = 0;
		while (pos < n) {
			const uint8_t *nl = memchr(data + pos, '\n', n - pos);
			size_t e = nl != NULL ? (size_t)(nl - data) : n;
			const char *line = (const char *)data + pos;
			size_t len = e - pos;
			if (prev_empty && len >= 5 && memcmp(line, "From ", 5) == 0) {
				if (in_msg)
					mailbox_mbox_add(&msgs, &count, &cap, data, start, pos - 1,
							 flags, date);
				in_msg = in_header = true;
				start = e < n ? e + 1 : n;
				flags = 0;
				date = mailbox_mbox_from_date(line, len, st.st_mtime);
			} else if (in_header) {
				if (len == 0 || (len == 1 && line[0] == '\r'))
					in_header = false;
				else
					flags |= mailbox_mbox_header_flags(line, len);
			}
			prev_empty = len == 0;
			pos = e + 1;
		}
		if (in_msg) {
			/* the final empty line is the separator local delivery wrote */
			uint64_t end = n;
			if (n >= 2 && data[n - 1] == '\n' && data[n - 2] == '\n' && end > start)
				end--;
			mailbox_mbox_add(&msgs, &count, &cap, data, start, end, flags, date);
		}
		if (n > 0 && munmap((void *)data, n) < 0)
			log_warning("munmap %s: %s", mb->path, strerror(errno));
		(void)close(fd); /* read-only; closing drops the lock */
		fd = -1;
	}
	for (size_t i = 0; i < mb->count; i++)
		mailbox_msg_deinit(&mb->msgs[i]);
	free(mb->msgs);
	mb->msgs = msgs;
	mb->count = count;
	mb->uidvalidity = 0;
	mb->uidnext = (uint32_t)count + 1;
	return 0;
fail:
	if (fd >= 0)
		(void)close(fd);
	free(msgs);
	return -1;
}

static int mailbox_mbox_msg_open(struct mailbox *mb, size_t seq, int *fd_r, const char **error_r)
{
	const struct mailbox_msg *m = &mb->msgs[seq - 1];
	int fd = open(mb->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || lseek(fd, (off_t)m->offset, SEEK_SET) < 0) {
		*error_r = mailbox_set_error(mb, "open %s: %s", mb->path, strerror(errno));
		if (fd >= 0)
			(void)close(fd);
		return -1;
	}
	*fd_r = fd;
	return 0;
}

static int mailbox_mbox_readonly(struct mailbox *mb, const char **error_r)
{
	*error_r = mailbox_set_error(mb, "%s: changing mbox mailboxes is not supported yet",
				     mb->path);
	errno = ENOTSUP;
	return -1;
}

struct mailbox *mailbox_open(const char *path, enum mailbox_format fmt, const char **error_r)
{
	if (fmt == MAILBOX_MAILDIR && mailbox_maildir_create(path, error_r) < 0) {
		(void)snprintf(mailbox_open_error, sizeof(mailbox_open_error), "%s", *error_r);
		*error_r = mailbox_open_error;
		return NULL;
	}
	struct mailbox *mb = xcalloc(1, sizeof(*mb));
	mb->fmt = fmt;
	mb->path = xstrdup(path);
	if (mailbox_sync(mb, error_r) < 0) {
		(void)snprintf(mailbox_open_error, sizeof(mailbox_open_error), "%s", *error_r);
		*error_r = mailbox_open_error;
		mailbox_free(&mb);
		return NULL;
	}
	return mb;
}

void mailbox_free(struct mailbox **mbp)
{
	struct mailbox *mb = *mbp;
	if (mb == NULL)
		return;
	*mbp = NULL;
	for (size_t i = 0; i < mb->count; i++)
		mailbox_msg_deinit(&mb->msgs[i]);
	free(mb->msgs);
	free(mb->path);
	free(mb->msg_path);
	free(mb);
}

int mailbox_sync(struct mailbox *mb, const char **error_r)
{
	if (mb->fmt == MAILBOX_MBOX)
		return mailbox_mbox_sync(mb, error_r);
	return mailbox_maildir_sync(mb, error_r);
}

size_t mailbox_count(const struct mailbox *mb)
{
	return mb->count;
}

uint32_t mailbox_uidvalidity(const struct mailbox *mb)
{
	return mb->uidvalidity;
}

uint32_t mailbox_uidnext(const struct mailbox *mb)
{
	return mb->uidnext;
}

const char *mailbox_path(const struct mailbox *mb)
{
	return mb->path;
}

static const struct mailbox_msg *mailbox_msg_get(const struct mailbox *mb, size_t seq)
{
	assert(seq >= 1 && seq <= mb->count);
	return &mb->msgs[seq - 1];
}

uint32_t mailbox_msg_uid(const struct mailbox *mb, size_t seq)
{
	return mailbox_msg_get(mb, seq)->uid;
}

unsigned mailbox_msg_flags(const struct mailbox *mb, size_t seq)
{
	return mailbox_msg_get(mb, seq)->flags;
}

uint64_t mailbox_msg_size(const struct mailbox *mb, size_t seq)
{
	return mailbox_msg_get(mb, seq)->size;
}

time_t mailbox_msg_date(const struct mailbox *mb, size_t seq)
{
	return mailbox_msg_get(mb, seq)->date;
}

const char *mailbox_msg_path(struct mailbox *mb, size_t seq)
{
	struct buf p = BUF_INIT;
	if (mb->fmt == MAILBOX_MBOX)
		buf_append_str(&p, mb->path);
	else
		buf_printf(&p, "%s/cur/%s", mb->path, mailbox_msg_get(mb, seq)->name);
	free(mb->msg_path);
	mb->msg_path = buf_steal(&p);
	return mb->msg_path;
}

int mailbox_uid_lookup(const struct mailbox *mb, uint32_t uid, size_t *seq_r)
{
	size_t lo = 0, hi = mb->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (mb->msgs[mid].uid == uid) {
			*seq_r = mid + 1;
			return 1;
		}
		if (mb->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

uint64_t mailbox_crlf_size(const void *data, size_t len, bool *last_was_cr)
{
	const uint8_t *p = data, *end = p + len;
	uint64_t size = len;
	bool cr = *last_was_cr;
	while (p < end) {
		const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
		if (lf == NULL) {
			cr = end[-1] == '\r';
			break;
		}
		bool prev_cr = lf > p ? lf[-1] == '\r' : cr;
		if (!prev_cr)
			size++;
		cr = false;
		p = lf + 1;
	}
	*last_was_cr = cr;
	return size;
}

int mailbox_msg_vsize(struct mailbox *mb, size_t seq, uint64_t *vsize_r, const char **error_r)
{
	assert(seq >= 1 && seq <= mb->count);
	struct mailbox_msg *m = &mb->msgs[seq - 1];
	if (m->vsize != MAILBOX_VSIZE_UNKNOWN) {
		*vsize_r = m->vsize;
		return 0;
	}
	int fd;
	if (mailbox_maildir_msg_open(mb, seq, &fd, error_r) < 0)
		return -1;
	uint8_t chunk[65536];
	uint64_t vsize = 0;
	bool cr = false;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;
			*error_r = mailbox_set_error(mb, "read %s/cur/%s: %s", mb->path, m->name,
						     strerror(saved));
			(void)close(fd);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		vsize += mailbox_crlf_size(chunk, (size_t)n, &cr);
	}
	(void)close(fd); /* read-only: nothing to lose */
	m->vsize = vsize;
	mb->vsize_dirty = true;
	*vsize_r = vsize;
	return 0;
}

int mailbox_msg_open(struct mailbox *mb, size_t seq, int *fd_r, const char **error_r)
{
	assert(seq >= 1 && seq <= mb->count);
	if (mb->fmt == MAILBOX_MBOX)
		return mailbox_mbox_msg_open(mb, seq, fd_r, error_r);
	return mailbox_maildir_msg_open(mb, seq, fd_r, error_r);
}

int mailbox_flags_set(struct mailbox *mb, size_t seq, unsigned flags, const char **error_r)
{
	if (mb->fmt == MAILBOX_MBOX)
		return mailbox_mbox_readonly(mb, error_r);
	return mailbox_maildir_flags_set(mb, seq, flags & MAILBOX_FLAGS_ALL, error_r);
}

int mailbox_expunge(struct mailbox *mb, size_t seq, const char **error_r)
{
	if (mb->fmt == MAILBOX_MBOX)
		return mailbox_mbox_readonly(mb, error_r);
	return mailbox_maildir_expunge(mb, seq, error_r);
}

int mailbox_append(struct mailbox *mb, const void *data, size_t len, unsigned flags,
		   time_t internal_date, uint32_t *uid_r, const char **error_r)
{
	if (mb->fmt == MAILBOX_MBOX)
		return mailbox_mbox_readonly(mb, error_r);
	return mailbox_maildir_append(mb, data, len, flags & MAILBOX_FLAGS_ALL, internal_date,
				      uid_r, error_r);
}
