/* mailbox_mbox.c - mbox backend of the mailbox layer (called through
 * mailbox.c): listing, persistent UIDs, flags, expunge and append.
 *
 * The file, as local delivery (local_mbox.c) writes it and mutt reads it: a
 * message starts with a "From " line at the start of the file or after an
 * empty line and ends before the empty line that precedes the next one.
 * Body lines were quoted ">From " (mboxo), which is not reversible, so sizes
 * count the bytes as stored, as Dovecot does.  Flags live in the Status:
 * (R seen, O old) and X-Status: (A answered, F flagged, T draft, D deleted)
 * headers that mutt, Pine/UW and Dovecot write.
 *
 * UIDs: the index (mailbox_uidlist.c's format, lock and atomic write) keeps,
 * in file order, one entry per message whose name is the message's
 * fingerprint "<fnv1a-64 hex>.<body length>" over the From_ line, the
 * header lines except those that mail tools rewrite in place (Status,
 * X-Status, X-Keywords, X-UID, X-IMAP, X-IMAPbase, Content-Length, Lines)
 * and the body without one trailing newline.  A sync matches the messages
 * in file order against the entries in index order (equal fingerprints,
 * e.g. a duplicated delivery, match in order): matched messages keep their
 * UID, unmatched index entries are messages removed by another tool, and
 * unmatched messages after the last matched one were appended (delivery,
 * procmail) and get UIDNEXT onward.  A new message before a known one, or
 * no match at all for a non-empty index and file (the file was replaced),
 * cannot keep UIDs ascending: the index is rebuilt under a new UIDVALIDITY
 * (RFC 3501 2.3.1.1).
 *
 * Locks, in local delivery's order so that the two never deadlock: the
 * index lock, then for changes the dotlock "<mbox>.lock" (skipped when the
 * directory does not let us create it: Debian's /var/mail is root:mail
 * 2775) and an fcntl write lock; for reading an fcntl read lock.
 *
 * Changes rewrite the file from the first changed message on: the original
 * tail is copied to a temporary file (beside the mbox, else in $TMPDIR),
 * fsync'd, then the new tail is written in place from that copy, the file
 * truncated and fsync'd, and the copy removed.  Writing in place keeps the
 * inode, owner and mode (and the spool directory need not be writable).
 * If the in-place write fails, the original tail is put back; after a crash
 * in between, the copy (".<name>.facteur-rewrite.*", or
 * "$TMPDIR/facteur-mbox-rewrite.*") holds the original tail from the first
 * changed message on, for an administrator to restore.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How long to wait for a delivery's or a mail reader's locks. */
#define MBOX_LOCK_WAIT_MS 10000
/* A dotlock older than this was left by a crash (local_mbox.c's value). */
#define MBOX_DOTLOCK_STALE_SECS 300
/* Output is written in chunks of this size. */
#define MBOX_OUT_CHUNK (256u * 1024)

/* ---- parsing ------------------------------------------------------- */

static bool mbox_header_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);
	return len >= n && strv_case_prefix(strv_make(line, len), name);
}

static unsigned mbox_header_flags(const char *line, size_t len)
{
	unsigned flags = 0;
	if (mbox_header_is(line, len, "Status:")) {
		if (memchr(line + 7, 'R', len - 7) != NULL)
			flags |= MAILBOX_FLAG_SEEN;
	} else if (mbox_header_is(line, len, "X-Status:")) {
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

/* Headers we rewrite (Status, X-Status). */
static bool mbox_header_ours(const char *line, size_t len)
{
	return mbox_header_is(line, len, "Status:") || mbox_header_is(line, len, "X-Status:");
}

/* Headers any mail tool may rewrite in place: not part of the fingerprint. */
static bool mbox_header_volatile(const char *line, size_t len)
{
	static const char *const names[] = { "Status:",	 "X-Status:",  "X-Keywords:",
					     "X-UID:",	 "X-IMAP:",    "X-IMAPbase:",
					     "Content-Length:", "Lines:" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (mbox_header_is(line, len, names[i]))
			return true;
	return false;
}

/* "From sender Www Mmm dd hh:mm:ss yyyy" (asctime, local time). */
static time_t mbox_from_date(const char *line, size_t len, time_t fallback)
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

#define MBOX_FNV_BASIS 0xcbf29ce484222325ull
#define MBOX_FNV_PRIME 0x100000001b3ull

static uint64_t mbox_fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= MBOX_FNV_PRIME;
	}
	return h;
}

/* Split a message's content [start, end) into headers and body: the first
 * byte after the empty line ending the headers (end when there is none)
 * and, through *blank_r, where that empty line starts (end when none). */
static uint64_t mbox_body_start(const uint8_t *data, uint64_t start, uint64_t end,
				uint64_t *blank_r)
{
	uint64_t pos = start;
	while (pos < end) {
		const uint8_t *nl = memchr(data + pos, '\n', (size_t)(end - pos));
		uint64_t e = nl != NULL ? (uint64_t)(nl - data) : end;
		uint64_t len = e - pos;
		if (len == 0 || (len == 1 && data[pos] == '\r')) {
			*blank_r = pos;
			return e < end ? e + 1 : end;
		}
		pos = e + 1;
	}
	*blank_r = end;
	return end;
}

/* The fingerprint of the message whose From_ line starts at from and whose
 * content is [start, end); also its flags. */
static char *mbox_fingerprint(const uint8_t *data, uint64_t from, uint64_t start, uint64_t end,
			      unsigned *flags_r)
{
	uint64_t h = MBOX_FNV_BASIS;
	uint64_t fl_end = start > from && data[start - 1] == '\n' ? start - 1 : start;
	h = mbox_fnv(h, data + from, (size_t)(fl_end - from));
	h = mbox_fnv(h, (const uint8_t *)"\n", 1);
	uint64_t blank;
	uint64_t body = mbox_body_start(data, start, end, &blank);
	bool skipping = false;
	unsigned flags = 0;
	for (uint64_t pos = start; pos < blank;) {
		const uint8_t *nl = memchr(data + pos, '\n', (size_t)(blank - pos));
		uint64_t e = nl != NULL ? (uint64_t)(nl - data) : blank;
		const char *line = (const char *)data + pos;
		size_t len = (size_t)(e - pos);
		bool cont = len > 0 && (line[0] == ' ' || line[0] == '\t');
		if (!cont)
			skipping = mbox_header_volatile(line, len);
		if (!cont)
			flags |= mbox_header_flags(line, len);
		if (!skipping) {
			h = mbox_fnv(h, (const uint8_t *)line, len);
			h = mbox_fnv(h, (const uint8_t *)"\n", 1);
		}
		pos = e + 1;
	}
	uint64_t body_end = end;
	if (body_end > body && data[body_end - 1] == '\n')
		body_end--;
	h = mbox_fnv(h, (const uint8_t *)"\n", 1);
	h = mbox_fnv(h, data + body, (size_t)(body_end - body));
	*flags_r = flags;
	struct buf fp = BUF_INIT;
	buf_printf(&fp, "%016llx.%llu", (unsigned long long)h,
		   (unsigned long long)(body_end - body));
	return buf_steal(&fp);
}

static void mbox_add(struct mailbox_msg **msgs, size_t *count, size_t *cap, const uint8_t *data,
		     uint64_t from, uint64_t start, uint64_t end, time_t date)
{
	if (*count == *cap) {
		*cap = *cap == 0 ? 64 : *cap * 2;
		*msgs = xreallocarray(*msgs, *cap, sizeof(**msgs));
	}
	struct mailbox_msg *m = &(*msgs)[(*count)++];
	memset(m, 0, sizeof(*m));
	m->from_offset = from;
	m->offset = start;
	m->size = end - start;
	bool cr = false;
	m->vsize = mailbox_crlf_size(data + start, (size_t)(end - start), &cr);
	m->date = date;
	m->base = mbox_fingerprint(data, from, start, end, &m->flags);
}

static void mbox_msgs_free(struct mailbox_msg *msgs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		mailbox_msg_deinit(&msgs[i]);
	free(msgs);
}

/* Split data into messages (uid 0).  -1 when it is not an mbox. */
static int mbox_parse(const uint8_t *data, size_t n, time_t mtime, struct mailbox_msg **msgs_r,
		      size_t *count_r)
{
	struct mailbox_msg *msgs = NULL;
	size_t count = 0, cap = 0;
	*msgs_r = NULL;
	*count_r = 0;
	if (n == 0)
		return 0;
	if (n < 5 || memcmp(data, "From ", 5) != 0)
		return -1;
	uint64_t from = 0, start = 0;
	time_t date = 0;
	bool in_msg = false, prev_empty = true;
	size_t pos = 0;
	while (pos < n) {
		const uint8_t *nl = memchr(data + pos, '\n', n - pos);
		size_t e = nl != NULL ? (size_t)(nl - data) : n;
		const char *line = (const char *)data + pos;
		size_t len = e - pos;
		if (prev_empty && len >= 5 && memcmp(line, "From ", 5) == 0) {
			if (in_msg)
				mbox_add(&msgs, &count, &cap, data, from, start, pos - 1, date);
			in_msg = true;
			from = pos;
			start = e < n ? e + 1 : n;
			date = mbox_from_date(line, len, mtime);
		}
		prev_empty = len == 0;
		pos = e + 1;
	}
	if (in_msg) {
		/* the final empty line is the separator local delivery wrote */
		uint64_t end = n;
		if (n >= 2 && data[n - 1] == '\n' && data[n - 2] == '\n' && end > start)
			end--;
		mbox_add(&msgs, &count, &cap, data, from, start, end, date);
	}
	*msgs_r = msgs;
	*count_r = count;
	return 0;
}

/* ---- UIDs ---------------------------------------------------------- */

struct mbox_key {
	const char *name;
	size_t pos;
};

static int mbox_key_cmp(const void *a, const void *b)
{
	const struct mbox_key *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c != 0)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* The index entry for name at position >= from (the first such), or -1. */
static long mbox_key_find(const struct mbox_key *keys, size_t n, const char *name, size_t from)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(keys[mid].name, name);
		if (c < 0 || (c == 0 && keys[mid].pos < from))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && strcmp(keys[lo].name, name) == 0)
		return (long)keys[lo].pos;
	return -1;
}

static uint32_t mbox_new_uidvalidity(const struct mailbox *mb, uint32_t hint)
{
	uint32_t uv = (uint32_t)time(NULL);
	if (uv == 0)
		uv = 1;
	if (hint != 0 && uv <= hint)
		uv = hint == UINT32_MAX ? 1 : hint + 1;
	if (mb->uidvalidity != 0 && uv == mb->uidvalidity)
		uv = uv == UINT32_MAX ? 1 : uv + 1;
	return uv;
}

/* Give msgs (file order) their UIDs from ul, and update ul to describe
 * msgs.  *changed_r: ul must be written. */
static void mbox_assign(struct mailbox *mb, struct mailbox_msg *msgs, size_t count,
			struct mailbox_uidlist *ul, bool *changed_r)
{
	struct mbox_key *keys = xreallocarray(NULL, ul->count + 1, sizeof(*keys));
	for (size_t i = 0; i < ul->count; i++) {
		keys[i].name = ul->entries[i].name;
		keys[i].pos = i;
	}
	if (ul->count > 1)
		qsort(keys, ul->count, sizeof(*keys), mbox_key_cmp);
	size_t next = 0, matched = 0, pending = 0;
	bool broken = false;
	long *match = xreallocarray(NULL, count + 1, sizeof(*match));
	for (size_t i = 0; i < count; i++) {
		long p = mbox_key_find(keys, ul->count, msgs[i].base, next);
		match[i] = p;
		if (p < 0) {
			pending++;
			continue;
		}
		if (pending > 0)
			broken = true; /* a new message before a known one */
		matched++;
		next = (size_t)p + 1;
	}
	free(keys);
	size_t fresh = count - matched;
	if (broken || (matched == 0 && ul->count > 0 && count > 0) ||
	    (uint64_t)ul->uidnext + fresh > UINT32_MAX) {
		log_warning("%s: messages do not match the index %s; new UIDVALIDITY", mb->path,
			    mb->index_path);
		uint32_t hint = ul->uidvalidity;
		mailbox_uidlist_deinit(ul);
		mailbox_recent_clear(mb);
		ul->uidvalidity = mbox_new_uidvalidity(mb, hint);
		ul->uidnext = 1;
		for (size_t i = 0; i < count; i++)
			match[i] = -1;
		matched = 0;
		*changed_r = true;
	}
	struct mailbox_uidlist out;
	mailbox_uidlist_init(&out);
	out.uidvalidity = ul->uidvalidity;
	out.uidnext = ul->uidnext;
	for (size_t i = 0; i < count; i++) {
		uint64_t vs = MAILBOX_VSIZE_UNKNOWN;
		if (match[i] >= 0) {
			struct mailbox_uidlist_entry *e = &ul->entries[match[i]];
			msgs[i].uid = e->uid;
			mailbox_uidlist_add(&out, e->uid, vs, e->name);
			e->name = NULL;
		} else {
			msgs[i].uid = out.uidnext++;
			mailbox_uidlist_add(&out, msgs[i].uid, vs, xstrdup(msgs[i].base));
			mailbox_recent_add(mb, msgs[i].uid);
			*changed_r = true;
		}
	}
	if (matched != ul->count)
		*changed_r = true; /* entries of removed messages dropped */
	free(match);
	mailbox_uidlist_deinit(ul);
	*ul = out;
}

/* After our own change: the file holds the messages we kept, in order,
 * plus (append) one new at the end.  Give them their UIDs directly rather
 * than by fingerprint, which cannot tell identical messages apart. */
static void mbox_assign_known(struct mailbox *mb, struct mailbox_msg *msgs, size_t count,
			      const uint32_t *uids, size_t nuids, struct mailbox_uidlist *ul,
			      bool *changed_r)
{
	if (count != nuids && count != nuids + 1) {
		mbox_assign(mb, msgs, count, ul, changed_r); /* cannot happen under our locks */
		return;
	}
	struct mailbox_uidlist out;
	mailbox_uidlist_init(&out);
	out.uidvalidity = ul->uidvalidity;
	out.uidnext = ul->uidnext;
	for (size_t i = 0; i < count; i++) {
		if (i < nuids) {
			msgs[i].uid = uids[i];
		} else {
			msgs[i].uid = out.uidnext++;
			mailbox_recent_add(mb, msgs[i].uid);
		}
		mailbox_uidlist_add(&out, msgs[i].uid, MAILBOX_VSIZE_UNKNOWN,
				    xstrdup(msgs[i].base));
	}
	*changed_r = true;
	mailbox_uidlist_deinit(ul);
	*ul = out;
}

/* ---- locking ------------------------------------------------------- */

struct mbox_lock {
	char *index_lock; /* held index lock, or NULL */
	char *dotlock;	  /* held dotlock, or NULL */
	bool index_writable;
	int fd; /* the mbox, fcntl-locked; -1 when it does not exist */
	struct stat st;
};

static void mbox_nap(void)
{
	struct timespec pause = { 0, 100 * 1000 * 1000 };
	nanosleep(&pause, NULL);
}

/* 1 held, 0 not possible here (directory not writable), -1 error. */
static int mbox_dotlock(struct mailbox *mb, const char *lock, const char **error_r)
{
	for (int waited = 0;; waited += 100) {
		int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			if (close(fd) < 0)
				log_warning("close %s: %s", lock, strerror(errno));
			return 1;
		}
		if (errno == EACCES || errno == EROFS || errno == EPERM)
			return 0; /* fcntl alone, as mutt does without a writable spool */
		if (errno != EEXIST) {
			*error_r = mailbox_set_error(mb, "create lock file %s: %s", lock,
						     strerror(errno));
			return -1;
		}
		struct stat st;
		if (lstat(lock, &st) == 0 && time(NULL) - st.st_mtime > MBOX_DOTLOCK_STALE_SECS) {
			log_warning("removing stale lock file %s", lock);
			if (unlink(lock) < 0 && errno != ENOENT) {
				*error_r = mailbox_set_error(mb, "remove stale lock file %s: %s",
							     lock, strerror(errno));
				return -1;
			}
			continue;
		}
		if (waited >= MBOX_LOCK_WAIT_MS) {
			*error_r = mailbox_set_error(mb, "%s: locked by another process", lock);
			errno = EAGAIN;
			return -1;
		}
		mbox_nap();
	}
}

static int mbox_fcntl(struct mailbox *mb, int fd, short type, const char **error_r)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };
	for (int waited = 0;; waited += 100) {
		if (fcntl(fd, F_SETLK, &fl) == 0)
			return 0;
		if ((errno != EAGAIN && errno != EACCES && errno != EINTR) ||
		    waited >= MBOX_LOCK_WAIT_MS) {
			*error_r = mailbox_set_error(mb, "lock %s: %s", mb->path, strerror(errno));
			return -1;
		}
		mbox_nap();
	}
}

static void mbox_unlock(struct mbox_lock *l)
{
	if (l->fd >= 0) {
		struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
		(void)fcntl(l->fd, F_SETLK, &fl);
		(void)close(l->fd); /* everything written was fsync'd */
		l->fd = -1;
	}
	if (l->dotlock != NULL && unlink(l->dotlock) < 0)
		log_warning("remove lock file %s: %s", l->dotlock, strerror(errno));
	free(l->dotlock);
	l->dotlock = NULL;
	if (l->index_lock != NULL)
		mailbox_uidlist_unlock(l->index_lock);
	free(l->index_lock);
	l->index_lock = NULL;
}

/* Take the index lock, then (write) the dotlock, open and fcntl-lock. */
static int mbox_lock(struct mailbox *mb, bool write, bool create, struct mbox_lock *l,
		     const char **error_r)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	struct buf p = BUF_INIT;
	buf_printf(&p, "%s.lock", mb->index_path);
	const char *lerr = NULL;
	errno = 0;
	if (mailbox_uidlist_lock(buf_cstr(&p), MAILBOX_LOCK_WAIT_SECS, &lerr) == 0) {
		l->index_lock = buf_steal(&p);
		l->index_writable = true;
	} else if (errno == EACCES || errno == EROFS || errno == EPERM || errno == ENOENT) {
		log_warning("%s; UIDs of %s will not be kept across sessions", lerr, mb->path);
		buf_deinit(&p);
	} else {
		*error_r = mailbox_set_error(mb, "%s", lerr);
		buf_deinit(&p);
		return -1;
	}
	if (write) {
		struct buf d = BUF_INIT;
		buf_printf(&d, "%s.lock", mb->path);
		int r = mbox_dotlock(mb, buf_cstr(&d), error_r);
		if (r < 0) {
			buf_deinit(&d);
			goto fail;
		}
		if (r > 0)
			l->dotlock = buf_steal(&d);
		else
			buf_deinit(&d);
	}
	int oflags = (write ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC;
	if (create)
		oflags |= O_CREAT;
	l->fd = open(mb->path, oflags, 0600);
	if (l->fd < 0) {
		if (errno == ENOENT && !create)
			return 0; /* no mbox yet: empty */
		*error_r = mailbox_set_error(mb, "open %s: %s", mb->path, strerror(errno));
		goto fail;
	}
	if (mbox_fcntl(mb, l->fd, write ? F_WRLCK : F_RDLCK, error_r) < 0)
		goto fail;
	if (fstat(l->fd, &l->st) < 0) {
		*error_r = mailbox_set_error(mb, "stat %s: %s", mb->path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(l->st.st_mode)) {
		*error_r = mailbox_set_error(mb, "%s: not a regular file", mb->path);
		errno = EINVAL;
		goto fail;
	}
	return 0;
fail:;
	int saved = errno;
	mbox_unlock(l);
	errno = saved;
	return -1;
}

/* ---- reading the locked file ----------------------------------------- */

struct mbox_map {
	const uint8_t *data;
	size_t len;
};

static int mbox_map(struct mailbox *mb, int fd, size_t len, struct mbox_map *m,
		    const char **error_r)
{
	m->data = NULL;
	m->len = len;
	if (len == 0)
		return 0;
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		*error_r = mailbox_set_error(mb, "mmap %s: %s", mb->path, strerror(errno));
		return -1;
	}
	m->data = p;
	return 0;
}

static void mbox_unmap(struct mbox_map *m)
{
	if (m->len > 0 && munmap((void *)m->data, m->len) < 0)
		log_warning("munmap: %s", strerror(errno));
	m->data = NULL;
	m->len = 0;
}

/* Parse the locked file as it is now. */
static int mbox_scan(struct mailbox *mb, struct mbox_lock *l, struct mailbox_msg **msgs_r,
		     size_t *count_r, const char **error_r)
{
	*msgs_r = NULL;
	*count_r = 0;
	if (l->fd < 0)
		return 0;
	if (fstat(l->fd, &l->st) < 0) {
		*error_r = mailbox_set_error(mb, "stat %s: %s", mb->path, strerror(errno));
		return -1;
	}
	struct mbox_map map;
	if (mbox_map(mb, l->fd, (size_t)l->st.st_size, &map, error_r) < 0)
		return -1;
	int r = mbox_parse(map.data, map.len, l->st.st_mtime, msgs_r, count_r);
	mbox_unmap(&map);
	if (r < 0) {
		*error_r = mailbox_set_error(mb, "%s: not an mbox file", mb->path);
		errno = EINVAL;
		return -1;
	}
	return 0;
}

static void mbox_note_stat(struct mailbox *mb, const struct mbox_lock *l)
{
	mb->mbox_stat_valid = true;
	if (l->fd < 0) {
		mb->mbox_dev = mb->mbox_ino = mb->mbox_size = 0;
		mb->mbox_mtime_sec = 0;
		mb->mbox_mtime_nsec = 0;
		return;
	}
	mb->mbox_dev = (uint64_t)l->st.st_dev;
	mb->mbox_ino = (uint64_t)l->st.st_ino;
	mb->mbox_size = (uint64_t)l->st.st_size;
	mb->mbox_mtime_sec = (int64_t)l->st.st_mtim.tv_sec;
	mb->mbox_mtime_nsec = l->st.st_mtim.tv_nsec;
}

/* ---- writing ------------------------------------------------------- */

/* Buffered positional writes into the mbox. */
struct mbox_out {
	int fd;
	uint64_t off;
	struct buf b;
	int err; /* errno of the first failure */
};

static void mbox_out_flush(struct mbox_out *o)
{
	size_t done = 0;
	while (o->err == 0 && done < o->b.len) {
		ssize_t n = pwrite(o->fd, o->b.data + done, o->b.len - done, (off_t)o->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			o->err = n < 0 ? errno : EIO;
			break;
		}
		done += (size_t)n;
		o->off += (uint64_t)n;
	}
	buf_reset(&o->b);
}

static void mbox_out_put(struct mbox_out *o, const void *p, size_t len)
{
	const uint8_t *s = p;
	while (len > 0) {
		size_t room = MBOX_OUT_CHUNK - o->b.len;
		size_t n = len < room ? len : room;
		buf_append(&o->b, s, n);
		s += n;
		len -= n;
		if (o->b.len >= MBOX_OUT_CHUNK)
			mbox_out_flush(o);
	}
}

static void mbox_status_headers(struct mbox_out *o, unsigned flags)
{
	/* "O": a reader has seen the message list since it arrived (not new). */
	mbox_out_put(o, (flags & MAILBOX_FLAG_SEEN) != 0 ? "Status: RO\n" : "Status: O\n",
		     (flags & MAILBOX_FLAG_SEEN) != 0 ? 11 : 10);
	char xs[16] = "X-Status: ";
	size_t n = 10;
	if (flags & MAILBOX_FLAG_ANSWERED)
		xs[n++] = 'A';
	if (flags & MAILBOX_FLAG_FLAGGED)
		xs[n++] = 'F';
	if (flags & MAILBOX_FLAG_DRAFT)
		xs[n++] = 'T';
	if (flags & MAILBOX_FLAG_DELETED)
		xs[n++] = 'D';
	if (n > 10) {
		xs[n++] = '\n';
		mbox_out_put(o, xs, n);
	}
}

/* Write message m (absolute offsets, data mapped from base_off on) with
 * new flags: the header lines except Status/X-Status, then ours, then the
 * rest up to chunk_end (the next From_ line or end of file). */
static void mbox_put_reflagged(struct mbox_out *o, const uint8_t *data, uint64_t base_off,
			       const struct mailbox_msg *m, uint64_t chunk_end, unsigned flags)
{
	const uint8_t *d = data - base_off; /* index by absolute offset */
	uint64_t end = m->offset + m->size;
	uint64_t blank;
	(void)mbox_body_start(d, m->offset, end, &blank);
	mbox_out_put(o, d + m->from_offset, (size_t)(m->offset - m->from_offset));
	if (m->offset == m->from_offset || d[m->offset - 1] != '\n')
		mbox_out_put(o, "\n", 1); /* From_ line at the end of the file */
	bool skipping = false, last_nl = true;
	for (uint64_t pos = m->offset; pos < blank;) {
		const uint8_t *nl = memchr(d + pos, '\n', (size_t)(blank - pos));
		uint64_t e = nl != NULL ? (uint64_t)(nl - d) + 1 : blank;
		const char *line = (const char *)d + pos;
		size_t len = (size_t)(e - pos);
		bool cont = len > 0 && (line[0] == ' ' || line[0] == '\t');
		if (!cont)
			skipping = mbox_header_ours(line, len);
		if (!skipping) {
			mbox_out_put(o, line, len);
			last_nl = nl != NULL;
		}
		pos = e;
	}
	if (!last_nl)
		mbox_out_put(o, "\n", 1);
	mbox_status_headers(o, flags);
	mbox_out_put(o, d + blank, (size_t)(chunk_end - blank));
}

/* Temporary copy of the tail: beside the mbox, else in $TMPDIR. */
static int mbox_tmp_create(struct mailbox *mb, char **path_r, const char **error_r)
{
	struct buf p = BUF_INIT;
	const char *slash = strrchr(mb->path, '/');
	const char *name = slash != NULL ? slash + 1 : mb->path;
	if (slash != NULL)
		buf_printf(&p, "%.*s/", (int)(slash - mb->path), mb->path);
	buf_printf(&p, ".%s.facteur-rewrite.XXXXXX", name);
	char *path = buf_steal(&p);
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM)) {
		free(path);
		const char *tmpdir = getenv("TMPDIR");
		if (tmpdir == NULL || tmpdir[0] != '/')
			tmpdir = "/tmp";
		buf_printf(&p, "%s/facteur-mbox-rewrite.XXXXXX", tmpdir);
		path = buf_steal(&p);
		fd = mkostemp(path, O_CLOEXEC);
	}
	if (fd < 0) {
		*error_r = mailbox_set_error(mb, "create temporary copy %s: %s", path,
					     strerror(errno));
		free(path);
		return -1;
	}
	*path_r = path;
	return fd;
}

/* Rewrite the locked file: msgs (file order) with want[i] the new flags,
 * or UINT_MAX to expunge.  Starts at the first changed message.  1 when
 * the file changed, 0 when nothing had to, -1 on error. */
static int mbox_rewrite(struct mailbox *mb, struct mbox_lock *l, const struct mailbox_msg *msgs,
			size_t count, const unsigned *want, const char **error_r)
{
	size_t first = count;
	for (size_t i = 0; i < count && first == count; i++)
		if (want[i] == UINT_MAX || want[i] != msgs[i].flags)
			first = i;
	if (first == count)
		return 0;
	uint64_t start = msgs[first].from_offset;
	uint64_t fsize = (uint64_t)l->st.st_size;
	uint64_t tail = fsize - start;
	char *tmp_path = NULL;
	int tfd = mbox_tmp_create(mb, &tmp_path, error_r);
	if (tfd < 0)
		return -1;
	int ret = -1;
	struct mbox_map map = { NULL, 0 }, tmap = { NULL, 0 };
	struct mbox_out o = { .fd = tfd, .off = 0, .b = BUF_INIT, .err = 0 };
	/* 1. the original tail, durable, before anything in the mbox changes */
	if (mbox_map(mb, l->fd, (size_t)fsize, &map, error_r) < 0)
		goto out;
	mbox_out_put(&o, map.data + start, (size_t)tail);
	mbox_out_flush(&o);
	mbox_unmap(&map);
	if (o.err == 0 && fsync(tfd) < 0)
		o.err = errno;
	if (o.err != 0) {
		*error_r = mailbox_set_error(mb, "write temporary copy %s: %s", tmp_path,
					     strerror(o.err));
		goto out;
	}
	/* 2. the new tail in place, read from the copy */
	if (mbox_map(mb, tfd, (size_t)tail, &tmap, error_r) < 0)
		goto out;
	o.fd = l->fd;
	o.off = start;
	for (size_t i = first; i < count; i++) {
		uint64_t chunk_end = i + 1 < count ? msgs[i + 1].from_offset : fsize;
		if (want[i] == UINT_MAX)
			continue;
		if (want[i] == msgs[i].flags)
			mbox_out_put(&o, tmap.data + (msgs[i].from_offset - start),
				     (size_t)(chunk_end - msgs[i].from_offset));
		else
			mbox_put_reflagged(&o, tmap.data, start, &msgs[i], chunk_end, want[i]);
	}
	mbox_out_flush(&o);
	if (o.err == 0 && ftruncate(l->fd, (off_t)o.off) < 0)
		o.err = errno;
	if (o.err == 0 && fsync(l->fd) < 0)
		o.err = errno;
	if (o.err != 0) {
		int e = o.err;
		/* 3'. put the original tail back */
		o.err = 0;
		o.off = start;
		mbox_out_put(&o, tmap.data, (size_t)tail);
		mbox_out_flush(&o);
		if (o.err != 0 || ftruncate(l->fd, (off_t)fsize) < 0 || fsync(l->fd) < 0) {
			log_error("%s: cannot restore after a failed rewrite; the original "
				  "content from byte %llu is in %s",
				  mb->path, (unsigned long long)start, tmp_path);
			free(tmp_path);
			tmp_path = NULL; /* keep it */
		}
		*error_r = mailbox_set_error(mb, "rewrite %s: %s", mb->path, strerror(e));
		errno = e;
		goto out;
	}
	ret = 1;
out:;
	int saved = errno;
	mbox_unmap(&tmap);
	buf_deinit(&o.b);
	(void)close(tfd); /* only a copy */
	if (tmp_path != NULL && unlink(tmp_path) < 0)
		log_warning("remove %s: %s", tmp_path, strerror(errno));
	free(tmp_path);
	errno = saved;
	return ret;
}

/* "Return-Path: <addr>" of the message's header, if usable as a From_
 * sender (no white space or control characters). */
static char *mbox_return_path(const uint8_t *data, size_t len)
{
	uint64_t blank;
	(void)mbox_body_start(data, 0, len, &blank);
	for (uint64_t pos = 0; pos < blank;) {
		const uint8_t *nl = memchr(data + pos, '\n', (size_t)(blank - pos));
		uint64_t e = nl != NULL ? (uint64_t)(nl - data) : blank;
		const char *line = (const char *)data + pos;
		size_t n = (size_t)(e - pos);
		if (mbox_header_is(line, n, "Return-Path:")) {
			struct strv v = strv_trim(strv_make(line + 12, n - 12));
			bool angle = v.len > 2 && v.ptr[0] == '<' && v.ptr[v.len - 1] == '>';
			if (angle && v.len < 512) {
				for (size_t i = 1; i + 1 < v.len; i++)
					if ((unsigned char)v.ptr[i] <= 0x20 || v.ptr[i] == 0x7f)
						return NULL;
				return strv_dup(strv_make(v.ptr + 1, v.len - 2));
			}
			return NULL;
		}
		pos = e + 1;
	}
	return NULL;
}

/* Append one message at the end of the locked file (RFC 4155 mboxo). */
static int mbox_write_append(struct mailbox *mb, struct mbox_lock *l, const uint8_t *data,
			     size_t len, unsigned flags, time_t date, const char **error_r)
{
	uint64_t size = (uint64_t)l->st.st_size;
	struct mbox_out o = { .fd = l->fd, .off = size, .b = BUF_INIT, .err = 0 };
	if (size > 0) {
		/* The previous message must end with its empty separator line. */
		uint8_t last[2] = { '\n', '\n' };
		size_t want = size >= 2 ? 2 : 1;
		if (pread(l->fd, last + 2 - want, want, (off_t)(size - want)) != (ssize_t)want) {
			*error_r = mailbox_set_error(mb, "read %s: %s", mb->path, strerror(errno));
			return -1;
		}
		if (last[1] != '\n')
			mbox_out_put(&o, "\n\n", 2);
		else if (last[0] != '\n')
			mbox_out_put(&o, "\n", 1);
	}
	char *sender = mbox_return_path(data, len);
	struct tm tm;
	char when[64];
	time_t t = date != 0 ? date : time(NULL);
	if (localtime_r(&t, &tm) == NULL || asctime_r(&tm, when) == NULL)
		str_copy(when, sizeof(when), "Thu Jan  1 00:00:00 1970\n");
	struct buf from = BUF_INIT;
	const char *who = sender != NULL && sender[0] != '\0' ? sender : "MAILER-DAEMON";
	buf_printf(&from, "From %s %s", who, when);
	free(sender);
	mbox_out_put(&o, from.data, from.len);
	buf_deinit(&from);
	/* Content: CRLF stored as LF; ">From " quoting; our status headers
	 * replace any the message carries. */
	uint64_t blank;
	(void)mbox_body_start(data, 0, len, &blank);
	bool in_header = true, skipping = false;
	for (size_t pos = 0; pos < len;) {
		const uint8_t *nl = memchr(data + pos, '\n', len - pos);
		size_t e = nl != NULL ? (size_t)(nl - data) : len;
		size_t n = e - pos;
		if (n > 0 && data[e - 1] == '\r')
			n--;
		const char *line = (const char *)data + pos;
		if (in_header && pos >= blank) {
			in_header = false;
			if (flags != 0)
				mbox_status_headers(&o, flags);
		}
		bool cont = n > 0 && (line[0] == ' ' || line[0] == '\t');
		if (in_header && !cont)
			skipping = mbox_header_ours(line, n);
		if (!(in_header && skipping)) {
			if (n >= 5 && memcmp(line, "From ", 5) == 0)
				mbox_out_put(&o, ">", 1);
			mbox_out_put(&o, line, n);
			mbox_out_put(&o, "\n", 1);
		}
		pos = e + 1;
	}
	if (in_header && flags != 0)
		mbox_status_headers(&o, flags);
	mbox_out_put(&o, "\n", 1); /* the separator */
	mbox_out_flush(&o);
	buf_deinit(&o.b);
	if (o.err == 0 && fsync(l->fd) < 0)
		o.err = errno;
	if (o.err != 0) {
		int e = o.err;
		/* Give readers the mailbox as it was. */
		if (ftruncate(l->fd, (off_t)size) < 0 || fsync(l->fd) < 0)
			log_error("cannot truncate %s back to %llu bytes: %s", mb->path,
				  (unsigned long long)size, strerror(errno));
		*error_r = mailbox_set_error(mb, "append to %s: %s", mb->path, strerror(e));
		errno = e;
		return -1;
	}
	return 0;
}

/* ---- the operations ------------------------------------------------ */

enum mbox_op { MBOX_OP_SYNC, MBOX_OP_CHANGE, MBOX_OP_APPEND };

struct mbox_req {
	enum mbox_op op;
	/* CHANGE: by UID; flags UINT_MAX = expunge */
	const uint32_t *uids;
	const unsigned *flags;
	size_t n;
	/* APPEND */
	const uint8_t *data;
	size_t len;
	unsigned aflags;
	time_t date;
};

static int mbox_uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static struct mailbox_msg *mbox_find_uid(struct mailbox_msg *msgs, size_t count, uint32_t uid)
{
	size_t lo = 0, hi = count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (msgs[mid].uid == uid)
			return &msgs[mid];
		if (msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Lock, read the index, parse, assign UIDs, apply the request, write the
 * index.  *msgs_r: the file's messages afterwards (UID order). */
static int mbox_run(struct mailbox *mb, const struct mbox_req *req, struct mailbox_msg **msgs_r,
		    size_t *count_r, uint32_t uid_r[2], const char **error_r)
{
	struct mbox_lock l;
	struct mailbox_uidlist ul;
	struct mailbox_msg *msgs = NULL;
	size_t count = 0;
	bool changed = false, malformed = false;
	uint32_t hint = 0;
	int ret = -1;
	unsigned *want = NULL;
	*msgs_r = NULL;
	*count_r = 0;
	if (mbox_lock(mb, req->op != MBOX_OP_SYNC, req->op == MBOX_OP_APPEND, &l, error_r) < 0)
		return -1;
	const char *uerr = NULL;
	int r = mailbox_uidlist_read(mb->index_path, &ul, &malformed, &hint, &uerr);
	if (r < 0 && !malformed) {
		*error_r = mailbox_set_error(mb, "%s", uerr);
		goto out_unlocked_ul;
	}
	if (r <= 0) {
		if (r < 0)
			log_warning("%s; rebuilding it with a new UIDVALIDITY", uerr);
		mailbox_uidlist_init(&ul);
		if (r == 0 && mb->uidvalidity != 0) {
			/* The index vanished (or could never be written):
			 * keep this view's UIDVALIDITY and never reuse a UID. */
			ul.uidvalidity = mb->uidvalidity;
			ul.uidnext = mb->uidnext;
		} else {
			ul.uidvalidity = mbox_new_uidvalidity(mb, hint != 0 ? hint : mb->uidvalidity);
			ul.uidnext = 1;
		}
		changed = true;
	}
	if (mb->uidvalidity != 0 && ul.uidvalidity != mb->uidvalidity)
		mailbox_recent_clear(mb);
	if (mbox_scan(mb, &l, &msgs, &count, error_r) < 0)
		goto out;
	mbox_assign(mb, msgs, count, &ul, &changed);
	if (req->op == MBOX_OP_CHANGE && ul.uidvalidity == mb->uidvalidity) {
		want = xreallocarray(NULL, count + 1, sizeof(*want));
		for (size_t i = 0; i < count; i++)
			want[i] = msgs[i].flags;
		for (size_t i = 0; i < req->n; i++) {
			struct mailbox_msg *m = mbox_find_uid(msgs, count, req->uids[i]);
			if (m != NULL && want[m - msgs] != UINT_MAX)
				want[m - msgs] = req->flags[i] == UINT_MAX
							 ? UINT_MAX
							 : req->flags[i] & MAILBOX_FLAGS_ALL &
								   ~MAILBOX_FLAG_PASSED;
		}
		uint32_t *kept = xreallocarray(NULL, count + 1, sizeof(*kept));
		size_t nkept = 0;
		for (size_t i = 0; i < count; i++)
			if (want[i] != UINT_MAX)
				kept[nkept++] = msgs[i].uid;
		int rr = mbox_rewrite(mb, &l, msgs, count, want, error_r);
		if (rr > 0) {
			mbox_msgs_free(msgs, count);
			msgs = NULL;
			count = 0;
			rr = mbox_scan(mb, &l, &msgs, &count, error_r);
			if (rr == 0 && count != nkept) {
				*error_r = mailbox_set_error(mb, "%s: changed under our lock",
							     mb->path);
				errno = EIO;
				rr = -1;
			}
			if (rr == 0)
				mbox_assign_known(mb, msgs, count, kept, nkept, &ul, &changed);
		}
		free(kept);
		if (rr < 0)
			goto out;
	} else if (req->op == MBOX_OP_CHANGE) {
		*error_r = mailbox_set_error(mb, "%s: UIDVALIDITY changed; messages not changed",
					     mb->path);
		errno = ENOENT;
		goto out;
	} else if (req->op == MBOX_OP_APPEND) {
		if (mbox_write_append(mb, &l, req->data, req->len, req->aflags, req->date,
				      error_r) < 0)
			goto out;
		uint32_t *kept = xreallocarray(NULL, count + 1, sizeof(*kept));
		size_t nkept = count;
		for (size_t i = 0; i < count; i++)
			kept[i] = msgs[i].uid;
		mbox_msgs_free(msgs, count);
		msgs = NULL;
		count = 0;
		int rr = mbox_scan(mb, &l, &msgs, &count, error_r);
		if (rr == 0)
			mbox_assign_known(mb, msgs, count, kept, nkept, &ul, &changed);
		free(kept);
		if (rr < 0)
			goto out;
	}
	/* An empty mbox gets its index too: its UIDVALIDITY must stay the
	 * same across sessions (mbsync stops on a changed one). */
	if (changed && l.index_writable) {
		const char *werr = NULL;
		if (mailbox_uidlist_write(mb->index_path, &ul, &werr) < 0) {
			/* The mbox itself is fine; UIDs are kept in memory. */
			log_warning("%s", werr);
		}
	}
	mbox_note_stat(mb, &l);
	uid_r[0] = ul.uidvalidity;
	uid_r[1] = ul.uidnext;
	*msgs_r = msgs;
	*count_r = count;
	msgs = NULL;
	count = 0;
	ret = 0;
out:
	mailbox_uidlist_deinit(&ul);
out_unlocked_ul:;
	int saved = errno;
	mbox_unlock(&l);
	mbox_msgs_free(msgs, count);
	free(want);
	errno = saved;
	return ret;
}

/* uv[0] UIDVALIDITY, uv[1] UIDNEXT */
static void mbox_install(struct mailbox *mb, struct mailbox_msg *msgs, size_t count,
			 const uint32_t uv[2])
{
	mbox_msgs_free(mb->msgs, mb->count);
	mb->msgs = msgs;
	mb->count = count;
	mb->uidvalidity = uv[0];
	mb->uidnext = uv[1];
}

/* True when the file is as our last full sync saw it: same inode, size and
 * mtime, and that mtime old enough that a later change within the same
 * clock tick would have shown (the check Dovecot makes too).  Saves
 * parsing and hashing a large mbox at every IMAP NOOP. */
static bool mbox_unchanged(const struct mailbox *mb)
{
	if (!mb->mbox_stat_valid || mb->mbox_ino == 0)
		return false;
	struct stat st;
	if (stat(mb->path, &st) < 0)
		return false;
	return mb->mbox_dev == (uint64_t)st.st_dev && mb->mbox_ino == (uint64_t)st.st_ino &&
	       mb->mbox_size == (uint64_t)st.st_size &&
	       mb->mbox_mtime_sec == (int64_t)st.st_mtim.tv_sec &&
	       mb->mbox_mtime_nsec == st.st_mtim.tv_nsec && time(NULL) - st.st_mtim.tv_sec > 2;
}

int mailbox_mbox_sync(struct mailbox *mb, const char **error_r)
{
	if (mbox_unchanged(mb))
		return 0;
	struct mbox_req req = { .op = MBOX_OP_SYNC };
	struct mailbox_msg *msgs;
	size_t count;
	uint32_t uv[2];
	if (mbox_run(mb, &req, &msgs, &count, uv, error_r) < 0)
		return -1;
	mbox_install(mb, msgs, count, uv);
	return 0;
}

/* After a change: update the view's messages from the file's (by UID),
 * drop the expunged ones; messages gone meanwhile stay, marked unseen, and
 * the view no longer matches the file as a whole. */
static void mbox_merge(struct mailbox *mb, struct mailbox_msg *msgs, size_t count,
		       const uint32_t *expunged, size_t nexp)
{
	size_t kept = 0;
	bool exact = true;
	for (size_t i = 0; i < mb->count; i++) {
		struct mailbox_msg *v = &mb->msgs[i];
		if (nexp > 0 && bsearch(&v->uid, expunged, nexp, sizeof(*expunged), mbox_uid_cmp)) {
			mailbox_msg_deinit(v);
			continue;
		}
		struct mailbox_msg *f = mbox_find_uid(msgs, count, v->uid);
		if (f != NULL) {
			v->flags = f->flags;
			v->offset = f->offset;
			v->from_offset = f->from_offset;
			v->size = f->size;
			v->vsize = f->vsize;
			v->date = f->date;
			free(v->base);
			v->base = f->base;
			f->base = NULL;
		} else {
			v->from_offset = UINT64_MAX;
			exact = false;
		}
		mb->msgs[kept++] = *v;
	}
	mb->count = kept;
	if (kept != count)
		exact = false;
	if (!exact)
		mb->mbox_stat_valid = false;
	mbox_msgs_free(msgs, count);
}

static int mbox_change(struct mailbox *mb, const size_t *seqs, const unsigned *flags, size_t n,
		       const char **error_r)
{
	uint32_t *uids = xreallocarray(NULL, n + 1, sizeof(*uids));
	for (size_t i = 0; i < n; i++)
		uids[i] = mb->msgs[seqs[i] - 1].uid;
	struct mbox_req req = { .op = MBOX_OP_CHANGE, .uids = uids, .flags = flags, .n = n };
	struct mailbox_msg *msgs;
	size_t count;
	uint32_t uv[2];
	int ret = mbox_run(mb, &req, &msgs, &count, uv, error_r);
	if (ret == 0) {
		size_t nexp = 0;
		for (size_t i = 0; i < n; i++)
			if (flags[i] == UINT_MAX)
				uids[nexp++] = uids[i];
		qsort(uids, nexp, sizeof(*uids), mbox_uid_cmp);
		mbox_merge(mb, msgs, count, uids, nexp);
		if (uv[1] > mb->uidnext)
			mb->uidnext = uv[1];
	}
	free(uids);
	return ret;
}

int mailbox_mbox_flags_set_many(struct mailbox *mb, const size_t *seqs, const unsigned *flags,
				size_t n, const char **error_r)
{
	unsigned *f = xreallocarray(NULL, n + 1, sizeof(*f));
	for (size_t i = 0; i < n; i++)
		f[i] = flags[i] & MAILBOX_FLAGS_ALL;
	int ret = mbox_change(mb, seqs, f, n, error_r);
	free(f);
	return ret;
}

int mailbox_mbox_expunge_many(struct mailbox *mb, const size_t *seqs, size_t n,
			      const char **error_r)
{
	unsigned *f = xreallocarray(NULL, n + 1, sizeof(*f));
	for (size_t i = 0; i < n; i++)
		f[i] = UINT_MAX;
	int ret = mbox_change(mb, seqs, f, n, error_r);
	free(f);
	return ret;
}

int mailbox_mbox_append(struct mailbox *mb, const void *data, size_t len, unsigned flags,
			time_t internal_date, uint32_t *uid_r, const char **error_r)
{
	struct mbox_req req = { .op = MBOX_OP_APPEND,
				.data = data,
				.len = len,
				.aflags = flags & ~MAILBOX_FLAG_PASSED,
				.date = internal_date };
	struct mailbox_msg *msgs;
	size_t count;
	uint32_t uv[2];
	if (mbox_run(mb, &req, &msgs, &count, uv, error_r) < 0)
		return -1;
	/* Under our locks nobody appended after us: ours is the last one. */
	*uid_r = count > 0 ? msgs[count - 1].uid : 0;
	mbox_install(mb, msgs, count, uv);
	return 0;
}

/* Is message m still at its place in the file mapped at data?  The From_
 * line must be there and the bytes must have m's fingerprint: inode, size
 * and mtime alone do not tell (a rewrite in place within one clock tick
 * that keeps the size), and hashing what the caller reads next anyway
 * costs little. */
static bool mbox_still_there(const uint8_t *data, size_t len, const struct mailbox_msg *m)
{
	if (m->from_offset == UINT64_MAX || m->base == NULL || m->offset < m->from_offset ||
	    m->offset > len || m->size > len - m->offset)
		return false;
	if (m->from_offset + 5 > len || memcmp(data + m->from_offset, "From ", 5) != 0 ||
	    (m->from_offset > 0 && data[m->from_offset - 1] != '\n'))
		return false;
	unsigned flags;
	char *fp = mbox_fingerprint(data, m->from_offset, m->offset, m->offset + m->size, &flags);
	bool same = strcmp(fp, m->base) == 0;
	free(fp);
	return same;
}

int mailbox_mbox_msg_open(struct mailbox *mb, size_t seq, int *fd_r, const char **error_r)
{
	struct mailbox_msg *m = &mb->msgs[seq - 1];
	int fd = open(mb->path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		*error_r = mailbox_set_error(mb, "open %s: %s", mb->path, strerror(e));
		errno = e;
		return -1;
	}
	int ret = -1;
	struct stat st;
	if (mbox_fcntl(mb, fd, F_RDLCK, error_r) < 0)
		goto out;
	if (fstat(fd, &st) < 0) {
		*error_r = mailbox_set_error(mb, "stat %s: %s", mb->path, strerror(errno));
		goto out;
	}
	struct mbox_map map;
	if (mbox_map(mb, fd, (size_t)st.st_size, &map, error_r) < 0)
		goto out;
	if (!mbox_still_there(map.data, map.len, m)) {
		/* Rewritten by another program since our view was made: find
		 * the message again by its fingerprint (the k-th message with
		 * it), never serve the bytes now at the old offset. */
		size_t k = 0;
		for (size_t i = 0; i + 1 < seq; i++)
			if (mb->msgs[i].base != NULL && m->base != NULL &&
			    strcmp(mb->msgs[i].base, m->base) == 0)
				k++;
		struct mailbox_msg *msgs = NULL;
		size_t count = 0;
		int pr = mbox_parse(map.data, map.len, st.st_mtime, &msgs, &count);
		mbox_unmap(&map);
		struct mailbox_msg *found = NULL;
		for (size_t i = 0; pr == 0 && m->base != NULL && i < count; i++) {
			if (strcmp(msgs[i].base, m->base) == 0) {
				if (k == 0) {
					found = &msgs[i];
					break;
				}
				k--;
			}
		}
		if (found == NULL) {
			mbox_msgs_free(msgs, count);
			*error_r = mailbox_set_error(mb, "%s: message %u expunged by another "
							 "program",
						     mb->path, (unsigned)m->uid);
			errno = ENOENT;
			goto out;
		}
		/* Same message; the status headers may differ: take its
		 * current place, size and flags (callers ask the size after
		 * opening). */
		m->from_offset = found->from_offset;
		m->offset = found->offset;
		m->size = found->size;
		m->vsize = found->vsize;
		m->flags = found->flags;
		mbox_msgs_free(msgs, count);
	} else {
		mbox_unmap(&map);
	}
	if (lseek(fd, (off_t)m->offset, SEEK_SET) < 0) {
		*error_r = mailbox_set_error(mb, "seek %s: %s", mb->path, strerror(errno));
		goto out;
	}
	/* Do not hold the read lock while a slow client reads: deliveries
	 * would time out. */
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
	(void)fcntl(fd, F_SETLK, &fl);
	*fd_r = fd;
	return 0;
out:;
	int saved = errno;
	(void)close(fd);
	errno = saved;
	return ret;
}
