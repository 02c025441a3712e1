/* mailbox.c - format-independent part of the mailbox layer: open/free,
 * dispatch to the format (mailbox_maildir.c, mailbox_mbox.c), accessors,
 * the batch (*_many) entry points, the \Recent set (RFC 3501 2.3.2: UIDs
 * that this struct mailbox gave out, kept sorted) and the CRLF octet count
 * that POP3 (RFC 1939 LIST/STAT) and IMAP (RFC 3501 RFC822.SIZE) report.
 *
 * Maildir \Recent: the Maildir backend assigns UIDs from the index's
 * UIDNEXT under its lock; we read UIDNEXT just before its sync and count
 * every UID at or above it as ours.  A second session syncing in the short
 * window between that read and the lock would also count them (both show
 * \Recent), which RFC 3501 tolerates better than showing it to none. */
#include "mail/mailbox.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
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

/* "<dir>/.<name>.facteur-uidlist"; when the user cannot write in <dir>
 * (a spool such as Debian's /var/mail, root:mail 2775), the same name in
 * the home directory, as Dovecot keeps INBOX indexes under ~/mail. */
static char *mailbox_mbox_index_default(const char *path)
{
	struct buf ip = BUF_INIT;
	const char *slash = strrchr(path, '/');
	const char *name = slash != NULL ? slash + 1 : path;
	char *dir = slash == NULL ? xstrdup(".")
		    : slash == path ? xstrdup("/")
				    : xstrndup(path, (size_t)(slash - path));
	const struct passwd *pw;
	if (faccessat(AT_FDCWD, dir, W_OK, AT_EACCESS) < 0 &&
	    (errno == EACCES || errno == EROFS || errno == EPERM) &&
	    (pw = getpwuid(geteuid())) != NULL && pw->pw_dir != NULL && pw->pw_dir[0] == '/' &&
	    faccessat(AT_FDCWD, pw->pw_dir, W_OK, AT_EACCESS) == 0)
		buf_printf(&ip, "%s/.%s%s", pw->pw_dir, name, MAILBOX_MBOX_INDEX_SUFFIX);
	else
		buf_printf(&ip, "%s/.%s%s", strcmp(dir, "/") == 0 ? "" : dir, name,
			   MAILBOX_MBOX_INDEX_SUFFIX);
	free(dir);
	return buf_steal(&ip);
}

struct mailbox *mailbox_open_ex(const char *path, enum mailbox_format fmt, const char *index_path,
				const char **error_r)
{
	if (fmt == MAILBOX_MAILDIR && mailbox_maildir_create(path, error_r) < 0) {
		(void)snprintf(mailbox_open_error, sizeof(mailbox_open_error), "%s", *error_r);
		*error_r = mailbox_open_error;
		return NULL;
	}
	struct mailbox *mb = xcalloc(1, sizeof(*mb));
	mb->fmt = fmt;
	mb->path = xstrdup(path);
	if (fmt == MAILBOX_MBOX) {
		if (index_path != NULL) {
			mb->index_path = xstrdup(index_path);
		} else {
			mb->index_path = mailbox_mbox_index_default(path);
		}
	}
	if (mailbox_sync(mb, error_r) < 0) {
		(void)snprintf(mailbox_open_error, sizeof(mailbox_open_error), "%s", *error_r);
		*error_r = mailbox_open_error;
		mailbox_free(&mb);
		return NULL;
	}
	return mb;
}

struct mailbox *mailbox_open(const char *path, enum mailbox_format fmt, const char **error_r)
{
	return mailbox_open_ex(path, fmt, NULL, error_r);
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
	free(mb->index_path);
	free(mb->recent_uids);
	free(mb);
}

void mailbox_recent_clear(struct mailbox *mb)
{
	mb->recent_count = 0;
}

static bool mailbox_recent_find(const struct mailbox *mb, uint32_t uid, size_t *pos_r)
{
	size_t lo = 0, hi = mb->recent_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (mb->recent_uids[mid] == uid) {
			*pos_r = mid;
			return true;
		}
		if (mb->recent_uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos_r = lo;
	return false;
}

void mailbox_recent_add(struct mailbox *mb, uint32_t uid)
{
	size_t pos;
	if (mailbox_recent_find(mb, uid, &pos))
		return;
	if (mb->recent_count == mb->recent_cap) {
		mb->recent_cap = mb->recent_cap == 0 ? 64 : mb->recent_cap * 2;
		mb->recent_uids = xreallocarray(mb->recent_uids, mb->recent_cap,
						sizeof(*mb->recent_uids));
	}
	memmove(mb->recent_uids + pos + 1, mb->recent_uids + pos,
		(mb->recent_count - pos) * sizeof(*mb->recent_uids));
	mb->recent_uids[pos] = uid;
	mb->recent_count++;
}

/* The Maildir index header "1 V<uidvalidity> N<uidnext>": 1 read, 0 no
 * index (or unreadable: then nothing counts as recent by this rule). */
static int mailbox_maildir_index_head(const struct mailbox *mb, uint32_t *uv_r, uint32_t *next_r)
{
	struct buf p = BUF_INIT;
	buf_printf(&p, "%s/%s", mb->path, MAILBOX_UIDLIST_NAME);
	int fd = open(buf_cstr(&p), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	buf_deinit(&p);
	if (fd < 0)
		return 0;
	char head[128];
	ssize_t n = read(fd, head, sizeof(head) - 1);
	(void)close(fd); /* read-only */
	if (n <= 0)
		return 0;
	head[n] = '\0';
	head[strcspn(head, "\n")] = '\0';
	struct mailbox_uidlist ul;
	uint32_t hint;
	const char *error;
	size_t len = strlen(head);
	head[len] = '\n';
	if (mailbox_uidlist_parse(&ul, head, len + 1, &hint, &error) < 0)
		return 0;
	*uv_r = ul.uidvalidity;
	*next_r = ul.uidnext;
	mailbox_uidlist_deinit(&ul);
	return 1;
}

/* After a Maildir sync or append: UIDs from the pre-sync UIDNEXT on are ours. */
static void mailbox_maildir_recent_note(struct mailbox *mb, bool had_index, uint32_t uv,
					uint32_t next, uint32_t old_uv)
{
	if (old_uv != 0 && mb->uidvalidity != old_uv)
		mailbox_recent_clear(mb);
	if (!had_index || uv != mb->uidvalidity)
		next = 1; /* index created or rebuilt by this sync: all ours */
	for (size_t i = mb->count; i > 0 && mb->msgs[i - 1].uid >= next; i--)
		mailbox_recent_add(mb, mb->msgs[i - 1].uid);
}

int mailbox_sync(struct mailbox *mb, const char **error_r)
{
	if (mb->fmt == MAILBOX_MBOX)
		return mailbox_mbox_sync(mb, error_r);
	uint32_t uv = 0, next = 0, old_uv = mb->uidvalidity;
	bool had = mailbox_maildir_index_head(mb, &uv, &next) == 1;
	if (mailbox_maildir_sync(mb, error_r) < 0)
		return -1;
	mailbox_maildir_recent_note(mb, had, uv, next, old_uv);
	return 0;
}

bool mailbox_msg_recent(const struct mailbox *mb, size_t seq)
{
	assert(seq >= 1 && seq <= mb->count);
	size_t pos;
	return mailbox_recent_find(mb, mb->msgs[seq - 1].uid, &pos);
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

int mailbox_flags_set_many(struct mailbox *mb, const size_t *seqs, const unsigned *flags,
			   size_t n, const char **error_r)
{
	for (size_t i = 0; i < n; i++)
		assert(seqs[i] >= 1 && seqs[i] <= mb->count);
	if (mb->fmt == MAILBOX_MBOX)
		return mailbox_mbox_flags_set_many(mb, seqs, flags, n, error_r);
	for (size_t i = 0; i < n; i++)
		if (mailbox_maildir_flags_set(mb, seqs[i], flags[i] & MAILBOX_FLAGS_ALL,
					      error_r) < 0)
			return -1;
	return 0;
}

int mailbox_flags_set(struct mailbox *mb, size_t seq, unsigned flags, const char **error_r)
{
	return mailbox_flags_set_many(mb, &seq, &flags, 1, error_r);
}

static int mailbox_seq_cmp_desc(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

int mailbox_expunge_many(struct mailbox *mb, const size_t *seqs, size_t n, const char **error_r)
{
	for (size_t i = 0; i < n; i++)
		assert(seqs[i] >= 1 && seqs[i] <= mb->count);
	if (mb->fmt == MAILBOX_MBOX)
		return mailbox_mbox_expunge_many(mb, seqs, n, error_r);
	/* Highest first: each expunge shifts the later sequence numbers. */
	size_t *sorted = xreallocarray(NULL, n + 1, sizeof(*sorted));
	if (n > 0)
		memcpy(sorted, seqs, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), mailbox_seq_cmp_desc);
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (i > 0 && sorted[i] == sorted[i - 1])
			continue;
		ret = mailbox_maildir_expunge(mb, sorted[i], error_r);
	}
	free(sorted);
	return ret;
}

int mailbox_expunge(struct mailbox *mb, size_t seq, const char **error_r)
{
	return mailbox_expunge_many(mb, &seq, 1, error_r);
}

int mailbox_append(struct mailbox *mb, const void *data, size_t len, unsigned flags,
		   time_t internal_date, uint32_t *uid_r, const char **error_r)
{
	if (mb->fmt == MAILBOX_MBOX)
		return mailbox_mbox_append(mb, data, len, flags & MAILBOX_FLAGS_ALL, internal_date,
					   uid_r, error_r);
	uint32_t uv = 0, next = 0, old_uv = mb->uidvalidity;
	bool had = mailbox_maildir_index_head(mb, &uv, &next) == 1;
	if (mailbox_maildir_append(mb, data, len, flags & MAILBOX_FLAGS_ALL, internal_date, uid_r,
				   error_r) < 0)
		return -1;
	mailbox_maildir_recent_note(mb, had, uv, next, old_uv);
	return 0;
}
