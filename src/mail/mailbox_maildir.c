/* mailbox_maildir.c - Maildir backend of the mailbox layer.
 *
 * On-disk layout as Courier, Dovecot, mutt and mbsync share it: messages
 * arrive in new/, are moved to cur/ on first access with an info part
 * ":2,FLAGS" appended (D F P R S T in ASCII order; lower-case letters are
 * Dovecot keywords and are kept untouched), and flag changes rename the
 * file.  The base name (the part before ':') never changes, so it is the
 * key of the UID index (mailbox_uidlist.c).
 *
 * mailbox_maildir_sync() runs entirely under the index lock: read index,
 * move new/ to cur/, scan cur/, keep UIDs of known base names, drop
 * vanished ones, give new ones UIDNEXT onward in delivery order (the
 * "SEC.M<usec>" prefix of the name), write the index.  Doing this under one
 * lock is what lets two sessions or two facteur instances sharing a store
 * agree on UIDs.  A malformed index is rebuilt with a new UIDVALIDITY so
 * that clients drop their caches (RFC 3501 2.3.1.1: UIDs are never reused
 * within one UIDVALIDITY).
 */
#include "mail/mailbox.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char mailbox_maildir_flag_chars[] = "DFPRST";
static unsigned mailbox_maildir_seq;

int mailbox_maildir_create(const char *path, const char **error_r)
{
	static _Thread_local char err[1024];
	struct buf sub = BUF_INIT;
	int ret = 0;
	if (mkdir(path, 0700) < 0 && errno != EEXIST &&
	    (errno != ENOENT || fs_mkdir_p(path, 0700) < 0)) {
		(void)snprintf(err, sizeof(err), "create maildir %s: %s", path, strerror(errno));
		*error_r = err;
		return -1;
	}
	static const char *const subs[] = { "tmp", "new", "cur" };
	for (size_t i = 0; i < 3 && ret == 0; i++) {
		buf_reset(&sub);
		buf_printf(&sub, "%s/%s", path, subs[i]);
		if (mkdir(buf_cstr(&sub), 0700) < 0 && errno != EEXIST) {
			(void)snprintf(err, sizeof(err), "create maildir directory %s: %s",
				       buf_cstr(&sub), strerror(errno));
			*error_r = err;
			ret = -1;
		}
	}
	buf_deinit(&sub);
	return ret;
}

/* A base name that the index can hold (same rules as its parser). */
static bool mailbox_maildir_base_ok(const char *base, size_t len)
{
	if (len == 0 || len > MAILBOX_NAME_MAX || base[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)base[i];
		if (c < 0x20 || c == 0x7f || c == '/')
			return false;
	}
	return true;
}

/* Split the info part ":2,LETTERS" into flags and other letters. */
static void mailbox_maildir_info_parse(const char *info, unsigned *flags_r, struct buf *keywords)
{
	*flags_r = 0;
	if (info == NULL || strncmp(info, ":2,", 3) != 0)
		return;
	for (const char *p = info + 3; *p != '\0'; p++) {
		const char *f = strchr(mailbox_maildir_flag_chars, *p);
		if (f != NULL)
			*flags_r |= 1u << (f - mailbox_maildir_flag_chars);
		else if (*p != ',' && *p != '/' && (unsigned char)*p >= 0x20)
			buf_append_char(keywords, *p);
	}
}

/* base + ":2," + letters of flags and keywords in ASCII order, each once
 * (the Maildir specification asks for alphabetical order). */
static char *mailbox_maildir_name_make(const char *base, unsigned flags, const char *keywords)
{
	bool set[256] = { false };
	struct buf name = BUF_INIT;
	for (size_t i = 0; mailbox_maildir_flag_chars[i] != '\0'; i++)
		if ((flags & (1u << i)) != 0)
			set[(unsigned char)mailbox_maildir_flag_chars[i]] = true;
	for (const char *p = keywords; p != NULL && *p != '\0'; p++)
		set[(unsigned char)*p] = true;
	buf_printf(&name, "%s:2,", base);
	for (unsigned c = 1; c < 256; c++)
		if (set[c])
			buf_append_char(&name, (char)c);
	return buf_steal(&name);
}

/* ",W=<n>" (CRLF size) written by Dovecot and by us into base names. */
static uint64_t mailbox_maildir_name_vsize(const char *base)
{
	const char *p = strstr(base, ",W=");
	if (p == NULL)
		return MAILBOX_VSIZE_UNKNOWN;
	p += 3;
	uint64_t v = 0;
	if (*p < '0' || *p > '9')
		return MAILBOX_VSIZE_UNKNOWN;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 10) / 10)
			return MAILBOX_VSIZE_UNKNOWN;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p != '\0' && *p != ',')
		return MAILBOX_VSIZE_UNKNOWN;
	return v;
}

static uint64_t mailbox_maildir_leading_num(const char **p)
{
	uint64_t v = 0;
	if (**p < '0' || **p > '9')
		return UINT64_MAX;
	for (; **p >= '0' && **p <= '9'; (*p)++)
		v = v > (UINT64_MAX - 10) / 10 ? UINT64_MAX - 1 : v * 10 + (uint64_t)(**p - '0');
	return v;
}

/* Delivery order: "SEC.M<usec>..." compared numerically (usec is not
 * zero-padded), then the whole name. */
static int mailbox_maildir_base_cmp_time(const char *a, const char *b)
{
	const char *pa = a, *pb = b;
	uint64_t sa = mailbox_maildir_leading_num(&pa), sb = mailbox_maildir_leading_num(&pb);
	if (sa != sb)
		return sa < sb ? -1 : 1;
	uint64_t ua = 0, ub = 0;
	if (strncmp(pa, ".M", 2) == 0) {
		pa += 2;
		ua = mailbox_maildir_leading_num(&pa);
	}
	if (strncmp(pb, ".M", 2) == 0) {
		pb += 2;
		ub = mailbox_maildir_leading_num(&pb);
	}
	if (ua != ub)
		return ua < ub ? -1 : 1;
	return strcmp(a, b);
}

static int mailbox_maildir_msg_cmp_time(const void *a, const void *b)
{
	const struct mailbox_msg *ma = a, *mb = b;
	/* messages with UIDs first in UID order, then new ones by time */
	if (ma->uid != 0 || mb->uid != 0) {
		if (ma->uid == 0)
			return 1;
		if (mb->uid == 0)
			return -1;
		return ma->uid < mb->uid ? -1 : ma->uid > mb->uid;
	}
	return mailbox_maildir_base_cmp_time(ma->base, mb->base);
}

static int mailbox_maildir_msg_cmp_base(const void *a, const void *b)
{
	return strcmp(((const struct mailbox_msg *)a)->base, ((const struct mailbox_msg *)b)->base);
}

static int mailbox_maildir_entry_cmp_name(const void *a, const void *b)
{
	const struct mailbox_uidlist_entry *const *ea = a, *const *eb = b;
	return strcmp((*ea)->name, (*eb)->name);
}

/* Move every new/ message to cur/ with an empty info part. */
static int mailbox_maildir_move_new(struct mailbox *mb, const char **error_r)
{
	struct buf dir = BUF_INIT, target = BUF_INIT;
	buf_printf(&dir, "%s/new", mb->path);
	int ret = 0;
	DIR *d = opendir(buf_cstr(&dir));
	if (d == NULL) {
		*error_r = mailbox_set_error(mb, "open %s: %s", buf_cstr(&dir), strerror(errno));
		buf_deinit(&dir);
		return -1;
	}
	buf_reset(&dir);
	buf_printf(&dir, "%s/cur", mb->path);
	int curfd = open(buf_cstr(&dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (curfd < 0) {
		*error_r = mailbox_set_error(mb, "open %s: %s", buf_cstr(&dir), strerror(errno));
		ret = -1;
		goto out;
	}
	bool moved = false;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		buf_reset(&target);
		buf_append_str(&target, de->d_name);
		if (strchr(de->d_name, ':') == NULL)
			buf_append_str(&target, ":2,");
		if (target.len > NAME_MAX) {
			/* No room for ":2,": cur/ without info part is valid too. */
			buf_reset(&target);
			buf_append_str(&target, de->d_name);
		}
		if (renameat(dirfd(d), de->d_name, curfd, buf_cstr(&target)) < 0) {
			if (errno == ENOENT)
				continue; /* another session moved it */
			*error_r = mailbox_set_error(mb, "rename %s/new/%s to cur/: %s", mb->path,
						     de->d_name, strerror(errno));
			ret = -1;
			break;
		}
		moved = true;
	}
	if (moved && ret == 0 && fsync(curfd) < 0)
		log_warning("fsync %s/cur: %s", mb->path, strerror(errno));
	(void)close(curfd);
out:
	(void)closedir(d);
	buf_deinit(&dir);
	buf_deinit(&target);
	return ret;
}

/* Read cur/ into *msgs_r (uid 0, sorted by base name). */
static int mailbox_maildir_scan(struct mailbox *mb, struct mailbox_msg **msgs_r, size_t *count_r,
				const char **error_r)
{
	struct buf dir = BUF_INIT, kw = BUF_INIT;
	struct mailbox_msg *msgs = NULL;
	size_t count = 0, cap = 0;
	buf_printf(&dir, "%s/cur", mb->path);
	DIR *d = opendir(buf_cstr(&dir));
	if (d == NULL) {
		*error_r = mailbox_set_error(mb, "open %s: %s", buf_cstr(&dir), strerror(errno));
		buf_deinit(&dir);
		return -1;
	}
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		const char *colon = strchr(de->d_name, ':');
		size_t blen = colon != NULL ? (size_t)(colon - de->d_name) : strlen(de->d_name);
		if (!mailbox_maildir_base_ok(de->d_name, blen)) {
			log_warning("%s/cur: ignoring file with unusable name", mb->path);
			continue;
		}
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue; /* expunged or renamed meanwhile */
			*error_r = mailbox_set_error(mb, "stat %s/%s: %s", buf_cstr(&dir),
						     de->d_name, strerror(errno));
			goto fail;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		if (count == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			msgs = xreallocarray(msgs, cap, sizeof(*msgs));
		}
		struct mailbox_msg *m = &msgs[count++];
		memset(m, 0, sizeof(*m));
		m->base = xstrndup(de->d_name, blen);
		m->name = xstrdup(de->d_name);
		buf_reset(&kw);
		mailbox_maildir_info_parse(colon, &m->flags, &kw);
		m->keywords = kw.len > 0 ? xstrdup(buf_cstr(&kw)) : NULL;
		m->size = (uint64_t)st.st_size;
		m->date = st.st_mtime;
		m->vsize = mailbox_maildir_name_vsize(m->base);
		errno = 0;
	}
	if (errno != 0) {
		*error_r = mailbox_set_error(mb, "read %s: %s", buf_cstr(&dir), strerror(errno));
		goto fail;
	}
	(void)closedir(d);
	buf_deinit(&dir);
	buf_deinit(&kw);
	if (count > 1)
		qsort(msgs, count, sizeof(*msgs), mailbox_maildir_msg_cmp_base);
	*msgs_r = msgs;
	*count_r = count;
	return 0;
fail:
	(void)closedir(d);
	for (size_t i = 0; i < count; i++)
		mailbox_msg_deinit(&msgs[i]);
	free(msgs);
	buf_deinit(&dir);
	buf_deinit(&kw);
	return -1;
}

/* A UIDVALIDITY for a new or rebuilt index: the time (as Dovecot), but
 * never one the mailbox had before. */
static uint32_t mailbox_maildir_new_uidvalidity(const struct mailbox *mb, uint32_t hint)
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

static int mailbox_maildir_sync_locked(struct mailbox *mb, const char *index_path,
				       const char **error_r)
{
	struct mailbox_uidlist ul;
	struct mailbox_msg *msgs = NULL;
	struct mailbox_uidlist_entry **byname = NULL;
	size_t count = 0;
	bool malformed = false, changed = false;
	uint32_t hint = 0;
	int ret = -1;

	int r = mailbox_uidlist_read(index_path, &ul, &malformed, &hint, error_r);
	if (r < 0 && !malformed)
		return -1;
	if (r <= 0) {
		if (r < 0)
			log_warning("%s; rebuilding it with a new UIDVALIDITY", *error_r);
		if (hint == 0)
			hint = mb->uidvalidity;
		mailbox_uidlist_init(&ul);
		ul.uidvalidity = mailbox_maildir_new_uidvalidity(mb, hint);
		ul.uidnext = 1;
		changed = true;
	}
	if (mailbox_maildir_move_new(mb, error_r) < 0 ||
	    mailbox_maildir_scan(mb, &msgs, &count, error_r) < 0)
		goto out;

	/* Known base names keep their UIDs. */
	byname = xreallocarray(NULL, ul.count + 1, sizeof(*byname));
	for (size_t i = 0; i < ul.count; i++)
		byname[i] = &ul.entries[i];
	if (ul.count > 1)
		qsort(byname, ul.count, sizeof(*byname), mailbox_maildir_entry_cmp_name);
	bool *present = xcalloc(ul.count + 1, sizeof(bool));
	size_t fresh = 0;
	for (size_t i = 0; i < count; i++) {
		struct mailbox_msg *m = &msgs[i];
		if (i > 0 && strcmp(m->base, msgs[i - 1].base) == 0) {
			/* Two files, one message (a crashed rename by some tool):
			 * keep the first, leave the other for an administrator. */
			log_warning("%s/cur: duplicate message %s ignored", mb->path, m->name);
			m->uid = UINT32_MAX;
			continue;
		}
		struct mailbox_uidlist_entry key = { 0, 0, m->base }, *keyp = &key;
		struct mailbox_uidlist_entry **e =
			bsearch(&keyp, byname, ul.count, sizeof(*byname),
				mailbox_maildir_entry_cmp_name);
		if (e == NULL) {
			fresh++;
			continue;
		}
		m->uid = (*e)->uid;
		present[*e - ul.entries] = true;
		if (m->vsize == MAILBOX_VSIZE_UNKNOWN)
			m->vsize = (*e)->vsize;
		/* A size this session computed goes into the index. */
		size_t seq;
		if ((*e)->vsize == MAILBOX_VSIZE_UNKNOWN && ul.uidvalidity == mb->uidvalidity &&
		    mailbox_uid_lookup(mb, m->uid, &seq) == 1 &&
		    mb->msgs[seq - 1].vsize != MAILBOX_VSIZE_UNKNOWN &&
		    strcmp(mb->msgs[seq - 1].base, m->base) == 0 &&
		    mailbox_maildir_name_vsize(m->base) == MAILBOX_VSIZE_UNKNOWN) {
			m->vsize = (*e)->vsize = mb->msgs[seq - 1].vsize;
			changed = true;
		}
	}
	/* Entries whose files vanished: expunged by another session or tool. */
	size_t kept = 0;
	for (size_t i = 0; i < ul.count; i++) {
		if (present[i]) {
			ul.entries[kept++] = ul.entries[i];
		} else {
			free(ul.entries[i].name);
			changed = true;
		}
	}
	ul.count = kept;
	free(present);

	/* UIDs for new messages, in delivery order.  When UIDNEXT would
	 * overflow, start again from 1 under a new UIDVALIDITY. */
	if (fresh > 0 && (uint64_t)ul.uidnext + fresh > UINT32_MAX) {
		log_warning("%s: UID space exhausted; renumbering with a new UIDVALIDITY",
			    mb->path);
		ul.uidvalidity = mailbox_maildir_new_uidvalidity(mb, ul.uidvalidity);
		ul.uidnext = 1;
		for (size_t i = 0; i < ul.count; i++)
			free(ul.entries[i].name);
		ul.count = 0;
		for (size_t i = 0; i < count; i++)
			if (msgs[i].uid != UINT32_MAX)
				msgs[i].uid = 0;
	}
	if (count > 1)
		qsort(msgs, count, sizeof(*msgs), mailbox_maildir_msg_cmp_time);
	for (size_t i = 0; i < count; i++) {
		struct mailbox_msg *m = &msgs[i];
		if (m->uid == 0) {
			m->uid = ul.uidnext++;
			uint64_t vs = mailbox_maildir_name_vsize(m->base) == MAILBOX_VSIZE_UNKNOWN
					      ? m->vsize
					      : MAILBOX_VSIZE_UNKNOWN;
			mailbox_uidlist_add(&ul, m->uid, vs, xstrdup(m->base));
			changed = true;
		}
	}
	/* Drop the duplicates (UINT32_MAX sorts last). */
	while (count > 0 && msgs[count - 1].uid == UINT32_MAX)
		mailbox_msg_deinit(&msgs[--count]);

	if (changed && mailbox_uidlist_write(index_path, &ul, error_r) < 0)
		goto out;

	for (size_t i = 0; i < mb->count; i++)
		mailbox_msg_deinit(&mb->msgs[i]);
	free(mb->msgs);
	mb->msgs = msgs;
	mb->count = count;
	msgs = NULL;
	count = 0;
	mb->uidvalidity = ul.uidvalidity;
	mb->uidnext = ul.uidnext;
	mb->vsize_dirty = false;
	ret = 0;
out:
	for (size_t i = 0; i < count; i++)
		mailbox_msg_deinit(&msgs[i]);
	free(msgs);
	free(byname);
	mailbox_uidlist_deinit(&ul);
	return ret;
}

int mailbox_maildir_sync(struct mailbox *mb, const char **error_r)
{
	struct buf index = BUF_INIT, lock = BUF_INIT;
	buf_printf(&index, "%s/%s", mb->path, MAILBOX_UIDLIST_NAME);
	buf_printf(&lock, "%s/%s", mb->path, MAILBOX_UIDLIST_LOCK_NAME);
	int ret = -1;
	if (mailbox_uidlist_lock(buf_cstr(&lock), MAILBOX_LOCK_WAIT_SECS, error_r) == 0) {
		ret = mailbox_maildir_sync_locked(mb, buf_cstr(&index), error_r);
		if (ret < 0 && *error_r != mb->error)
			*error_r = mailbox_set_error(mb, "%s", *error_r);
		mailbox_uidlist_unlock(buf_cstr(&lock));
	}
	buf_deinit(&index);
	buf_deinit(&lock);
	return ret;
}

/* Find the current file name of base in cur/ (another client may have
 * renamed it to change flags).  1 found, 0 gone, -1 error. */
static int mailbox_maildir_find(struct mailbox *mb, const char *base, char **name_r,
				const char **error_r)
{
	struct buf dir = BUF_INIT;
	buf_printf(&dir, "%s/cur", mb->path);
	DIR *d = opendir(buf_cstr(&dir));
	if (d == NULL) {
		*error_r = mailbox_set_error(mb, "open %s: %s", buf_cstr(&dir), strerror(errno));
		buf_deinit(&dir);
		return -1;
	}
	size_t blen = strlen(base);
	int ret = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, base, blen) == 0 &&
		    (de->d_name[blen] == ':' || de->d_name[blen] == '\0')) {
			*name_r = xstrdup(de->d_name);
			ret = 1;
			break;
		}
	}
	(void)closedir(d);
	buf_deinit(&dir);
	return ret;
}

/* Called after ENOENT on m->name: refresh it.  1 found, 0 gone, -1 error. */
static int mailbox_maildir_refind(struct mailbox *mb, struct mailbox_msg *m, const char **error_r)
{
	char *name = NULL;
	int r = mailbox_maildir_find(mb, m->base, &name, error_r);
	if (r <= 0)
		return r;
	free(m->name);
	m->name = name;
	struct buf kw = BUF_INIT;
	mailbox_maildir_info_parse(strchr(name, ':'), &m->flags, &kw);
	free(m->keywords);
	m->keywords = kw.len > 0 ? xstrdup(buf_cstr(&kw)) : NULL;
	buf_deinit(&kw);
	return 1;
}

static struct mailbox_msg *mailbox_maildir_msg(struct mailbox *mb, size_t seq)
{
	if (seq < 1 || seq > mb->count)
		log_panic("mailbox %s: sequence %zu out of range 1..%zu", mb->path, seq,
			  mb->count);
	return &mb->msgs[seq - 1];
}

static int mailbox_maildir_cur_fd(struct mailbox *mb, const char **error_r)
{
	struct buf dir = BUF_INIT;
	buf_printf(&dir, "%s/cur", mb->path);
	int fd = open(buf_cstr(&dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		*error_r = mailbox_set_error(mb, "open %s: %s", buf_cstr(&dir), strerror(errno));
	buf_deinit(&dir);
	return fd;
}

static const char *mailbox_maildir_gone(struct mailbox *mb, const struct mailbox_msg *m)
{
	errno = ENOENT;
	return mailbox_set_error(mb, "%s/cur/%s: message expunged by another client", mb->path,
				 m->base);
}

/* Another client renamed m's file (flags changed): find it again.  False,
 * with *error_r set, when it is gone (expunged, errno ENOENT) or the
 * rescan failed. */
static bool mailbox_maildir_refound(struct mailbox *mb, struct mailbox_msg *m,
				    const char **error_r)
{
	int r = mailbox_maildir_refind(mb, m, error_r);
	if (r == 0)
		*error_r = mailbox_maildir_gone(mb, m);
	return r > 0;
}

int mailbox_maildir_msg_open(struct mailbox *mb, size_t seq, int *fd_r, const char **error_r)
{
	struct mailbox_msg *m = mailbox_maildir_msg(mb, seq);
	int curfd = mailbox_maildir_cur_fd(mb, error_r);
	if (curfd < 0)
		return -1;
	int ret = -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		int fd = openat(curfd, m->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			*fd_r = fd;
			ret = 0;
			break;
		}
		if (errno != ENOENT || attempt == 1) {
			*error_r = mailbox_set_error(mb, "open %s/cur/%s: %s", mb->path, m->name,
						     strerror(errno));
			break;
		}
		if (!mailbox_maildir_refound(mb, m, error_r))
			break;
	}
	int saved = errno;
	(void)close(curfd);
	errno = saved;
	return ret;
}

int mailbox_maildir_flags_set(struct mailbox *mb, size_t seq, unsigned flags, const char **error_r)
{
	struct mailbox_msg *m = mailbox_maildir_msg(mb, seq);
	int curfd = mailbox_maildir_cur_fd(mb, error_r);
	if (curfd < 0)
		return -1;
	int ret = -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		char *name = mailbox_maildir_name_make(m->base, flags, m->keywords);
		if (strcmp(name, m->name) == 0) {
			free(name);
			m->flags = flags;
			ret = 0;
			break;
		}
		if (strlen(name) > NAME_MAX) {
			*error_r = mailbox_set_error(mb, "%s/cur/%s: name too long for flags",
						     mb->path, m->base);
			errno = ENAMETOOLONG;
			free(name);
			break;
		}
		if (renameat(curfd, m->name, curfd, name) == 0) {
			free(m->name);
			m->name = name;
			m->flags = flags;
			ret = 0;
			break;
		}
		free(name);
		if (errno != ENOENT || attempt == 1) {
			*error_r = mailbox_set_error(mb, "rename %s/cur/%s: %s", mb->path, m->name,
						     strerror(errno));
			break;
		}
		if (!mailbox_maildir_refound(mb, m, error_r))
			break;
	}
	int saved = errno;
	(void)close(curfd);
	errno = saved;
	return ret;
}

int mailbox_maildir_expunge(struct mailbox *mb, size_t seq, const char **error_r)
{
	struct mailbox_msg *m = mailbox_maildir_msg(mb, seq);
	int curfd = mailbox_maildir_cur_fd(mb, error_r);
	if (curfd < 0)
		return -1;
	int ret = -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (unlinkat(curfd, m->name, 0) == 0) {
			ret = 0;
			break;
		}
		if (errno != ENOENT || attempt == 1) {
			*error_r = mailbox_set_error(mb, "remove %s/cur/%s: %s", mb->path, m->name,
						     strerror(errno));
			break;
		}
		int r = mailbox_maildir_refind(mb, m, error_r);
		if (r < 0)
			break;
		if (r == 0) {
			ret = 0; /* already expunged by someone else */
			break;
		}
	}
	(void)close(curfd);
	if (ret == 0) {
		mailbox_msg_deinit(m);
		memmove(m, m + 1, (mb->count - seq) * sizeof(*m));
		mb->count--;
	}
	return ret;
}

int mailbox_maildir_append(struct mailbox *mb, const void *data, size_t len, unsigned flags,
			   time_t internal_date, uint32_t *uid_r, const char **error_r)
{
	struct buf base = BUF_INIT, tmp = BUF_INIT, cur = BUF_INIT;
	int ret = -1, fd = -1;
	char host[HOST_NAME_MAX + 1];
	if (gethostname(host, sizeof(host)) < 0)
		str_copy(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	bool cr = false;
	uint64_t vsize = mailbox_crlf_size(data, len, &cr);

	for (int attempt = 0; attempt < 10; attempt++) {
		struct timeval tv;
		gettimeofday(&tv, NULL);
		buf_reset(&base);
		buf_printf(&base, "%ld.M%ldP%ldQ%u.", (long)tv.tv_sec, (long)tv.tv_usec,
			   (long)getpid(), ++mailbox_maildir_seq);
		/* '/' and ':' would break the name: written as Dovecot does */
		for (const char *p = host; *p != '\0'; p++) {
			if (*p == '/')
				buf_append_str(&base, "\\057");
			else if (*p == ':')
				buf_append_str(&base, "\\072");
			else
				buf_append_char(&base, *p);
		}
		buf_printf(&base, ",S=%zu,W=%llu", len, (unsigned long long)vsize);
		buf_reset(&tmp);
		buf_printf(&tmp, "%s/tmp/%s", mb->path, buf_cstr(&base));
		fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			  0600);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		*error_r = mailbox_set_error(mb, "create %s: %s", buf_cstr(&tmp), strerror(errno));
		goto out;
	}
	if (fs_write_full(fd, data, len) < 0) {
		*error_r = mailbox_set_error(mb, "write %s: %s", buf_cstr(&tmp), strerror(errno));
		goto out_unlink;
	}
	if (internal_date != 0) {
		struct timespec ts[2] = { { internal_date, 0 }, { internal_date, 0 } };
		if (futimens(fd, ts) < 0)
			log_warning("set date of %s: %s", buf_cstr(&tmp), strerror(errno));
	}
	if (fsync(fd) < 0) {
		*error_r = mailbox_set_error(mb, "fsync %s: %s", buf_cstr(&tmp), strerror(errno));
		goto out_unlink;
	}
	int cfd = fd;
	fd = -1;
	if (close(cfd) < 0) {
		*error_r = mailbox_set_error(mb, "close %s: %s", buf_cstr(&tmp), strerror(errno));
		goto out_unlink;
	}
	char *name = mailbox_maildir_name_make(buf_cstr(&base), flags, NULL);
	buf_printf(&cur, "%s/cur/%s", mb->path, name);
	free(name);
	if (rename(buf_cstr(&tmp), buf_cstr(&cur)) < 0) {
		*error_r = mailbox_set_error(mb, "rename %s to %s: %s", buf_cstr(&tmp),
					     buf_cstr(&cur), strerror(errno));
		goto out_unlink;
	}
	if (fs_fsync_parent(buf_cstr(&cur)) < 0) {
		*error_r = mailbox_set_error(mb, "fsync %s/cur: %s", mb->path, strerror(errno));
		goto out;
	}
	if (mailbox_maildir_sync(mb, error_r) < 0)
		goto out;
	for (size_t i = mb->count; i > 0; i--) {
		if (strcmp(mb->msgs[i - 1].base, buf_cstr(&base)) == 0) {
			*uid_r = mb->msgs[i - 1].uid;
			ret = 0;
			goto out;
		}
	}
	/* Stored, but expunged by another client before we could see it. */
	*uid_r = 0;
	ret = 0;
	goto out;

out_unlink:
	if (fd >= 0)
		(void)close(fd);
	if (unlink(buf_cstr(&tmp)) < 0 && errno != ENOENT)
		log_warning("remove %s: %s", buf_cstr(&tmp), strerror(errno));
out:
	buf_deinit(&base);
	buf_deinit(&tmp);
	buf_deinit(&cur);
	return ret;
}
