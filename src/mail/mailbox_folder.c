/* mailbox_folder.c - the folders of one user (see mailbox_folder.h): name
 * checks, LIST with RFC 3348 children and RFC 6154 special-use attributes,
 * CREATE, DELETE, RENAME, SUBSCRIBE on the Maildir++ and mbox-directory
 * layouts that Dovecot and Courier users already have.  Called by imapd
 * (after authentication, as the mailbox owner).
 *
 * Invariants:
 *  - folders are found with opendir/readdir only; messages are never read,
 *    except by RENAME INBOX which must move them (RFC 3501 6.3.5);
 *  - names are canonical inside: "INBOX" in any case becomes "INBOX" (and,
 *    in Maildir++, a first component "inbox" of "inbox.x" too);
 *  - the subscriptions file is re-read before every use (another session of
 *    the same user may have changed it) and replaced atomically (tmp file,
 *    fsync, rename, fsync directory: fs_write_atomic);
 *  - deletion never follows a symbolic link and, in Maildir++, never touches
 *    the inferiors, which are sibling directories (".a.b" beside ".a").
 *
 * Choices recorded:
 *  - Missing special-use folders are created at every folder_store_open()
 *    (as Dovecot's auto=create): a user who deletes "Junk" gets it back at
 *    the next login.  Subscribing (them and INBOX) happens when they are
 *    created, and for all of them when no subscriptions file exists yet, so
 *    an UNSUBSCRIBE of INBOX is not undone at every login.
 *  - Subscriptions are never removed by DELETE (RFC 3501 6.3.6: the server
 *    MUST NOT unilaterally remove a name); RENAME moves them.
 *  - mbox: a file has \NoInferiors \HasNoChildren, a directory \Noselect
 *    with \HasChildren or \HasNoChildren; INBOX (the spool file, outside
 *    root) has \NoInferiors \HasNoChildren ("INBOX/x" is refused).
 *  - Maildir++: a missing parent of an existing folder is listed as
 *    \Noselect \HasChildren (what Dovecot shows), without NONEXISTENT, so a
 *    plain LIST shows it; NONEXISTENT is only for subscribed names that do
 *    not exist (LSUB, RFC 5258 \NonExistent).
 *  - Names with '*', '%' or 8-bit bytes are refused: they could not be
 *    listed unambiguously, and names are modified UTF-7 (RFC 3501 5.1.3).
 */
#include "mail/mailbox_folder.h"

#include <dirent.h>
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

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"

/* Largest subscriptions file read (Dovecot's has one name per line). */
#define FOLDER_SUBS_MAX_SIZE (4u * 1024 * 1024)
/* Maildir++: ".facteur-*" entries in the Maildir (the index, its lock,
 * folders being deleted) are ours, never folders. */
#define FOLDER_RESERVED_PREFIX "facteur-"
/* Deepest directory tree removed or listed below one folder. */
#define FOLDER_TREE_DEPTH_MAX 64

struct folder_special {
	char *name;
	unsigned attr;
};

struct folder_store {
	enum folder_layout layout;
	char sep;
	char *root;
	char *inbox_path;
	char *subs_path;
	struct folder_special *special;
	size_t special_count;
	char **subs; /* canonical names, as read from the file */
	size_t sub_count;
	char error[1024];
};

static _Thread_local char folder_open_error[1024];

__attribute__((format(printf, 3, 4))) static const char *
folder_set_error(struct folder_store *st, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(st->error, sizeof(st->error), fmt, ap);
	va_end(ap);
	errno = err;
	return st->error;
}

/* ---- names */

static bool folder_is_inbox_n(const char *name, size_t len)
{
	return len == 5 && strncasecmp(name, "INBOX", 5) == 0;
}

static bool folder_is_inbox(const char *name)
{
	return str_casecmp(name, "INBOX") == 0;
}

char folder_store_sep(const struct folder_store *st)
{
	return st->sep;
}

int folder_name_check(const struct folder_store *st, const char *name, const char **error_r)
{
	static _Thread_local char err[128];
	const char *why = NULL;
	size_t len = strlen(name);
	if (folder_is_inbox(name))
		return 0;
	if (len == 0)
		why = "Mailbox name is empty";
	else if (len > FOLDER_NAME_MAX)
		why = "Mailbox name is too long";
	else if (name[0] == st->sep || name[len - 1] == st->sep)
		why = "Mailbox name begins or ends with the hierarchy separator";
	for (size_t i = 0; why == NULL && i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f)
			why = "Mailbox name contains control characters";
		else if (c >= 0x80)
			why = "Mailbox name is not modified UTF-7";
		else if (c == '*' || c == '%')
			why = "Mailbox name contains a wildcard";
		else if (c == '/' && st->layout == FOLDER_MAILDIRPP)
			why = "Mailbox name contains '/'";
	}
	/* Components: not empty, no "." or "..", no hidden (mbox) file. */
	const char *p = name;
	while (why == NULL) {
		const char *end = strchr(p, st->sep);
		size_t clen = end != NULL ? (size_t)(end - p) : strlen(p);
		if (clen == 0)
			why = "Mailbox name has an empty hierarchy level";
		else if (p[0] == '.')
			why = "Mailbox name has a level beginning with '.'";
		else if (p == name && end != NULL && st->layout == FOLDER_MBOX &&
			 folder_is_inbox_n(p, clen))
			why = "INBOX cannot have inferiors";
		else if (p == name && st->layout == FOLDER_MAILDIRPP &&
			 strncmp(p, FOLDER_RESERVED_PREFIX, strlen(FOLDER_RESERVED_PREFIX)) == 0)
			why = "Mailbox names beginning with \"" FOLDER_RESERVED_PREFIX
			      "\" are reserved";
		if (end == NULL)
			break;
		p = end + 1;
	}
	if (why == NULL)
		return 0;
	(void)snprintf(err, sizeof(err), "%s", why);
	*error_r = err;
	errno = EINVAL;
	return -1;
}

/* Check and canonicalize (caller frees). */
static char *folder_canon(struct folder_store *st, const char *name, const char **error_r)
{
	if (folder_name_check(st, name, error_r) < 0) {
		(void)folder_set_error(st, EINVAL, "%s", *error_r);
		*error_r = st->error;
		return NULL;
	}
	char *c = xstrdup(name);
	size_t len = strlen(c);
	if (len >= 5 && strncasecmp(c, "INBOX", 5) == 0 && (len == 5 || c[5] == st->sep))
		memcpy(c, "INBOX", 5);
	return c;
}

/* ---- paths */

static char *folder_path_make(const struct folder_store *st, const char *canon)
{
	struct buf b = BUF_INIT;
	if (strcmp(canon, "INBOX") == 0)
		buf_append_str(&b, st->layout == FOLDER_MAILDIRPP ? st->root : st->inbox_path);
	else if (st->layout == FOLDER_MAILDIRPP)
		buf_printf(&b, "%s/.%s", st->root, canon);
	else
		buf_printf(&b, "%s/%s", st->root, canon);
	return buf_steal(&b);
}

int folder_path(const struct folder_store *st, const char *name, char **path_r,
		enum mailbox_format *fmt_r, const char **error_r)
{
	if (folder_name_check(st, name, error_r) < 0)
		return -1;
	char *c = xstrdup(name);
	size_t len = strlen(c);
	if (len >= 5 && strncasecmp(c, "INBOX", 5) == 0 && (len == 5 || c[5] == st->sep))
		memcpy(c, "INBOX", 5);
	*path_r = folder_path_make(st, c);
	*fmt_r = st->layout == FOLDER_MAILDIRPP ? MAILBOX_MAILDIR : MAILBOX_MBOX;
	free(c);
	return 0;
}

/* Is path a Maildir (has cur/)?  1, 0, or -1 on an unexpected error. */
static int folder_maildir_is(const char *path)
{
	struct buf b = BUF_INIT;
	struct stat sb;
	buf_printf(&b, "%s/cur", path);
	int r = stat(buf_cstr(&b), &sb);
	buf_deinit(&b);
	if (r == 0)
		return S_ISDIR(sb.st_mode) ? 1 : 0;
	return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
}

static int folder_exists_canon(struct folder_store *st, const char *canon, const char **error_r)
{
	if (strcmp(canon, "INBOX") == 0)
		return 1;
	char *path = folder_path_make(st, canon);
	int ret;
	if (st->layout == FOLDER_MAILDIRPP) {
		ret = folder_maildir_is(path);
	} else {
		struct stat sb;
		if (stat(path, &sb) == 0)
			ret = S_ISREG(sb.st_mode) ? 1 : 0;
		else
			ret = errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	}
	if (ret < 0)
		*error_r = folder_set_error(st, errno, "Cannot access %s: %s", canon,
					    strerror(errno));
	free(path);
	return ret;
}

int folder_exists(const struct folder_store *cst, const char *name, const char **error_r)
{
	/* The error buffer is the only thing written. */
	struct folder_store *st = (struct folder_store *)cst;
	char *c = folder_canon(st, name, error_r);
	if (c == NULL)
		return -1;
	int ret = folder_exists_canon(st, c, error_r);
	free(c);
	return ret;
}

/* ---- subscriptions */

static void folder_subs_clear(struct folder_store *st)
{
	for (size_t i = 0; i < st->sub_count; i++)
		free(st->subs[i]);
	free(st->subs);
	st->subs = NULL;
	st->sub_count = 0;
}

static void folder_subs_add(struct folder_store *st, const char *name, size_t len)
{
	st->subs = xreallocarray(st->subs, st->sub_count + 1, sizeof(*st->subs));
	char *c = xstrndup(name, len);
	if (len >= 5 && strncasecmp(c, "INBOX", 5) == 0 && (len == 5 || c[5] == st->sep))
		memcpy(c, "INBOX", 5);
	st->subs[st->sub_count++] = c;
}

static ssize_t folder_subs_find(const struct folder_store *st, const char *canon)
{
	for (size_t i = 0; i < st->sub_count; i++)
		if (strcmp(st->subs[i], canon) == 0)
			return (ssize_t)i;
	return -1;
}

/* Read the file: one name per line (Dovecot's version 1).  Dovecot 2.3's
 * version 2 ("V\t2" header, '\t' as hierarchy separator) is read too.
 * 1 read, 0 no file, -1 error. */
static int folder_subs_load(struct folder_store *st, const char **error_r)
{
	struct buf b = BUF_INIT;
	folder_subs_clear(st);
	if (fs_read_file(st->subs_path, FOLDER_SUBS_MAX_SIZE, &b) < 0) {
		int err = errno;
		buf_deinit(&b);
		if (err == ENOENT)
			return 0;
		*error_r = folder_set_error(st, err, "Cannot read subscriptions: %s",
					    strerror(err));
		return -1;
	}
	char *data = (char *)b.data;
	size_t len = b.len;
	bool v2 = len >= 2 && data[0] == 'V' && data[1] == '\t';
	size_t pos = 0;
	bool first = true;
	while (pos < len) {
		char *nl = memchr(data + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - data) : len;
		size_t n = end - pos;
		if (n > 0 && data[end - 1] == '\r')
			n--;
		if (!(first && v2) && n > 0) {
			if (v2)
				for (size_t i = pos; i < pos + n; i++)
					if (data[i] == '\t')
						data[i] = st->sep;
			if (memchr(data + pos, '\0', n) == NULL) {
				char *tmp = xstrndup(data + pos, n);
				if (folder_subs_find(st, tmp) < 0)
					folder_subs_add(st, data + pos, n);
				free(tmp);
			}
		}
		first = false;
		pos = end + 1;
	}
	buf_deinit(&b);
	return 1;
}

static int folder_subs_save(struct folder_store *st, const char **error_r)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < st->sub_count; i++)
		buf_printf(&b, "%s\n", st->subs[i]);
	int r = fs_write_atomic(st->subs_path, b.data != NULL ? b.data : (const uint8_t *)"",
				b.len, 0600);
	int err = errno;
	buf_deinit(&b);
	if (r < 0) {
		log_error("write %s: %s", st->subs_path, strerror(err));
		*error_r = folder_set_error(st, err, "Cannot write subscriptions: %s",
					    strerror(err));
		return -1;
	}
	return 0;
}

static int folder_subscribe_canon(struct folder_store *st, const char *canon, bool on,
				  const char **error_r)
{
	if (folder_subs_load(st, error_r) < 0)
		return -1;
	ssize_t i = folder_subs_find(st, canon);
	if (on == (i >= 0))
		return 0; /* already so: SUBSCRIBE/UNSUBSCRIBE are idempotent */
	if (on) {
		folder_subs_add(st, canon, strlen(canon));
	} else {
		free(st->subs[i]);
		memmove(&st->subs[i], &st->subs[i + 1],
			(st->sub_count - (size_t)i - 1) * sizeof(*st->subs));
		st->sub_count--;
	}
	return folder_subs_save(st, error_r);
}

int folder_subscribe(struct folder_store *st, const char *name, bool on, const char **error_r)
{
	char *c = folder_canon(st, name, error_r);
	if (c == NULL)
		return -1;
	int r = folder_subscribe_canon(st, c, on, error_r);
	free(c);
	return r;
}

/* ---- special-use (RFC 6154) */

static const struct {
	const char *name;
	unsigned attr;
} folder_special_attrs[] = {
	{ "\\Drafts", FOLDER_ATTR_DRAFTS }, { "\\Sent", FOLDER_ATTR_SENT },
	{ "\\Trash", FOLDER_ATTR_TRASH },   { "\\Junk", FOLDER_ATTR_JUNK },
	{ "\\Archive", FOLDER_ATTR_ARCHIVE }, { "\\All", FOLDER_ATTR_ALL },
	{ "\\Flagged", FOLDER_ATTR_FLAGGED },
};

/* "Name \Attr, Name \Attr": every item exactly a name and one attribute;
 * names cannot contain white space or commas. */
static int folder_special_parse(struct folder_store *st, const char *spec, const char **error_r)
{
	const char *p = spec;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return 0;
	for (;;) {
		const char *end = strchr(p, ',');
		struct strv item = strv_trim(strv_make(p, end != NULL ? (size_t)(end - p) : strlen(p)));
		size_t ws = 0;
		while (ws < item.len && item.ptr[ws] != ' ' && item.ptr[ws] != '\t')
			ws++;
		struct strv attrv = strv_trim(strv_make(item.ptr + ws, item.len - ws));
		if (item.len == 0 || ws == item.len || attrv.len == 0) {
			*error_r = folder_set_error(st, EINVAL,
						    "special-use: \"%.*s\" is not \"Name \\Attribute\"",
						    (int)item.len, item.ptr);
			return -1;
		}
		unsigned attr = 0;
		for (size_t i = 0; i < sizeof(folder_special_attrs) / sizeof(folder_special_attrs[0]);
		     i++)
			if (strv_case_eq(attrv, folder_special_attrs[i].name))
				attr = folder_special_attrs[i].attr;
		if (attr == 0) {
			*error_r = folder_set_error(st, EINVAL,
						    "special-use: unknown attribute \"%.*s\"",
						    (int)attrv.len, attrv.ptr);
			return -1;
		}
		char *name = xstrndup(item.ptr, ws);
		const char *nerr;
		char *canon = folder_canon(st, name, &nerr);
		if (canon == NULL) {
			*error_r = folder_set_error(st, EINVAL, "special-use: \"%s\": %s", name,
						    nerr);
			free(name);
			return -1;
		}
		free(name);
		for (size_t i = 0; i < st->special_count; i++) {
			if (strcmp(st->special[i].name, canon) == 0) {
				*error_r = folder_set_error(st, EINVAL,
							    "special-use: \"%s\" listed twice", canon);
				free(canon);
				return -1;
			}
		}
		st->special = xreallocarray(st->special, st->special_count + 1,
					    sizeof(*st->special));
		st->special[st->special_count].name = canon;
		st->special[st->special_count].attr = attr;
		st->special_count++;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return 0;
}

/* ---- open / free */

static int folder_create_canon(struct folder_store *st, const char *canon, bool want_dir,
			       const char **error_r);

struct folder_store *folder_store_open(const struct folder_store_params *p, const char **error_r)
{
	if (p->root == NULL || p->root[0] == '\0' ||
	    (p->layout == FOLDER_MBOX && (p->inbox_path == NULL || p->inbox_path[0] == '\0'))) {
		(void)snprintf(folder_open_error, sizeof(folder_open_error),
			       "folder store: root (and for mbox inbox_path) must be set");
		*error_r = folder_open_error;
		errno = EINVAL;
		return NULL;
	}
	struct folder_store *st = xcalloc(1, sizeof(*st));
	st->layout = p->layout;
	st->sep = p->layout == FOLDER_MAILDIRPP ? '.' : '/';
	st->root = xstrdup(p->root);
	st->inbox_path = p->inbox_path != NULL ? xstrdup(p->inbox_path) : NULL;
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s/%s", st->root,
		   p->layout == FOLDER_MAILDIRPP ? "subscriptions" : ".subscriptions");
	st->subs_path = buf_steal(&b);

	const char *err = NULL;
	int ret = 0;
	if (p->layout == FOLDER_MAILDIRPP) {
		ret = mailbox_maildir_create(st->root, &err);
	} else if (fs_mkdir_p(st->root, 0700) < 0) {
		err = folder_set_error(st, errno, "Cannot create %s: %s", st->root,
				       strerror(errno));
		ret = -1;
	}
	if (ret == 0 && p->special_use != NULL)
		ret = folder_special_parse(st, p->special_use, &err);
	int loaded = ret == 0 ? folder_subs_load(st, &err) : -1;
	if (loaded < 0)
		ret = -1;
	bool changed = false;
	if (ret == 0 && loaded == 0) {
		/* First login: INBOX and the special-use folders subscribed. */
		folder_subs_add(st, "INBOX", 5);
		changed = true;
	}
	for (size_t i = 0; ret == 0 && i < st->special_count; i++) {
		const char *name = st->special[i].name;
		int ex = folder_exists_canon(st, name, &err);
		if (ex < 0) {
			ret = -1;
		} else if (ex == 0) {
			if (folder_create_canon(st, name, false, &err) == 0)
				ex = 2;
			else if (errno != EEXIST)
				ret = -1;
		}
		if (ret == 0 && (ex == 2 || loaded == 0) && folder_subs_find(st, name) < 0) {
			folder_subs_add(st, name, strlen(name));
			changed = true;
		}
	}
	if (ret == 0 && changed)
		ret = folder_subs_save(st, &err);
	if (ret < 0) {
		int saved = errno;
		(void)snprintf(folder_open_error, sizeof(folder_open_error), "%s", err);
		*error_r = folder_open_error;
		folder_store_free(&st);
		errno = saved;
		return NULL;
	}
	return st;
}

void folder_store_free(struct folder_store **stp)
{
	struct folder_store *st = *stp;
	if (st == NULL)
		return;
	folder_subs_clear(st);
	for (size_t i = 0; i < st->special_count; i++)
		free(st->special[i].name);
	free(st->special);
	free(st->root);
	free(st->inbox_path);
	free(st->subs_path);
	free(st);
	*stp = NULL;
}

/* ---- LIST */

struct folder_vec {
	struct folder_info *v;
	size_t count;
	size_t cap;
};

static void folder_vec_add(struct folder_vec *fv, const char *name, size_t len, unsigned attrs)
{
	if (fv->count == fv->cap) {
		fv->cap = fv->cap == 0 ? 16 : fv->cap * 2;
		fv->v = xreallocarray(fv->v, fv->cap, sizeof(*fv->v));
	}
	fv->v[fv->count].name = xstrndup(name, len);
	fv->v[fv->count].attrs = attrs;
	fv->count++;
}

static int folder_info_cmp(const void *a, const void *b)
{
	const struct folder_info *x = a, *y = b;
	bool xi = strcmp(x->name, "INBOX") == 0, yi = strcmp(y->name, "INBOX") == 0;
	if (xi || yi)
		return xi && yi ? 0 : xi ? -1 : 1;
	return strcmp(x->name, y->name);
}

static struct folder_info *folder_vec_find(struct folder_vec *fv, const char *name)
{
	struct folder_info key = { (char *)name, 0 };
	return bsearch(&key, fv->v, fv->count, sizeof(*fv->v), folder_info_cmp);
}

/* Sort, then merge duplicates (attributes ORed, NOSELECT dropped when one
 * of them is a real folder). */
static void folder_vec_sort(struct folder_vec *fv)
{
	if (fv->count == 0)
		return;
	qsort(fv->v, fv->count, sizeof(*fv->v), folder_info_cmp);
	size_t out = 0;
	for (size_t i = 1; i < fv->count; i++) {
		if (strcmp(fv->v[out].name, fv->v[i].name) == 0) {
			unsigned a = fv->v[out].attrs, b = fv->v[i].attrs;
			bool sel = !(a & FOLDER_ATTR_NOSELECT) || !(b & FOLDER_ATTR_NOSELECT);
			fv->v[out].attrs = a | b;
			if (sel)
				fv->v[out].attrs &= ~FOLDER_ATTR_NOSELECT;
			free(fv->v[i].name);
		} else {
			fv->v[++out] = fv->v[i];
		}
	}
	fv->count = out + 1;
}

static bool folder_dirent_is_dir(const char *dir, struct dirent *de, bool follow)
{
	if (de->d_type == DT_DIR)
		return true;
	if (de->d_type != DT_UNKNOWN && !(follow && de->d_type == DT_LNK))
		return false;
	struct buf b = BUF_INIT;
	struct stat sb;
	buf_printf(&b, "%s/%s", dir, de->d_name);
	int r = follow ? stat(buf_cstr(&b), &sb) : lstat(buf_cstr(&b), &sb);
	buf_deinit(&b);
	return r == 0 && S_ISDIR(sb.st_mode);
}

static int folder_list_maildirpp(struct folder_store *st, struct folder_vec *fv,
				 const char **error_r)
{
	DIR *d = opendir(st->root);
	if (d == NULL) {
		*error_r = folder_set_error(st, errno, "Cannot list folders: %s", strerror(errno));
		return -1;
	}
	struct dirent *de;
	struct buf path = BUF_INIT;
	while ((errno = 0, de = readdir(d)) != NULL) {
		const char *name = de->d_name + 1;
		const char *nerr;
		/* folder_name_check() also skips ".", "..", ".facteur-*". */
		if (de->d_name[0] != '.' || folder_is_inbox(name) ||
		    folder_name_check(st, name, &nerr) < 0 ||
		    !folder_dirent_is_dir(st->root, de, true))
			continue;
		buf_reset(&path);
		buf_printf(&path, "%s/%s", st->root, de->d_name);
		if (folder_maildir_is(buf_cstr(&path)) != 1)
			continue;
		folder_vec_add(fv, name, strlen(name), 0);
		/* Canonical "INBOX" prefix, as folder_canon() makes it. */
		char *n = fv->v[fv->count - 1].name;
		if (strncasecmp(n, "INBOX.", 6) == 0)
			memcpy(n, "INBOX", 5);
	}
	int err = errno;
	buf_deinit(&path);
	(void)closedir(d);
	if (err != 0) {
		*error_r = folder_set_error(st, err, "Cannot list folders: %s", strerror(err));
		return -1;
	}
	/* Missing parents of existing folders: \Noselect (Dovecot's view). */
	size_t n = fv->count;
	for (size_t i = 0; i < n; i++) {
		const char *name = fv->v[i].name;
		for (const char *s = strchr(name, '.'); s != NULL; s = strchr(s + 1, '.'))
			folder_vec_add(fv, name, (size_t)(s - name), FOLDER_ATTR_NOSELECT);
	}
	return 0;
}

static int folder_list_mbox_dir(struct folder_store *st, struct folder_vec *fv,
				struct buf *rel, unsigned depth, const char **error_r)
{
	struct buf dir = BUF_INIT;
	buf_printf(&dir, "%s%s%s", st->root, rel->len > 0 ? "/" : "", buf_cstr(rel));
	DIR *d = opendir(buf_cstr(&dir));
	if (d == NULL) {
		int err = errno;
		buf_deinit(&dir);
		if (depth > 0 && (err == EACCES || err == ENOENT))
			return 0; /* unreadable or just removed subdirectory: skip */
		*error_r = folder_set_error(st, err, "Cannot list folders: %s", strerror(err));
		return -1;
	}
	size_t rel_len = rel->len;
	int ret = 0;
	struct dirent *de;
	while (ret == 0 && (errno = 0, de = readdir(d)) != NULL) {
		const char *nerr;
		if (de->d_name[0] == '.' || (depth == 0 && folder_is_inbox(de->d_name)))
			continue;
		if (rel_len > 0)
			buf_append_char(rel, '/');
		buf_append_str(rel, de->d_name);
		if (folder_name_check(st, buf_cstr(rel), &nerr) == 0) {
			/* Do not descend into symbolic links (loops). */
			if (folder_dirent_is_dir(buf_cstr(&dir), de, false)) {
				folder_vec_add(fv, buf_cstr(rel), rel->len, FOLDER_ATTR_NOSELECT);
				if (depth + 1 < FOLDER_TREE_DEPTH_MAX)
					ret = folder_list_mbox_dir(st, fv, rel, depth + 1, error_r);
			} else {
				struct stat sb;
				struct buf full = BUF_INIT;
				buf_printf(&full, "%s/%s", buf_cstr(&dir), de->d_name);
				if (stat(buf_cstr(&full), &sb) == 0 && S_ISREG(sb.st_mode))
					folder_vec_add(fv, buf_cstr(rel), rel->len,
						       FOLDER_ATTR_NOINFERIORS);
				buf_deinit(&full);
			}
		}
		rel->len = rel_len;
		rel->data[rel_len] = '\0';
	}
	if (ret == 0 && errno != 0) {
		*error_r = folder_set_error(st, errno, "Cannot list folders: %s", strerror(errno));
		ret = -1;
	}
	(void)closedir(d);
	buf_deinit(&dir);
	return ret;
}

int folder_list(struct folder_store *st, struct folder_info **list_r, size_t *count_r,
		const char **error_r)
{
	struct folder_vec fv = { NULL, 0, 0 };
	int ret;
	folder_vec_add(&fv, "INBOX", 5,
		       st->layout == FOLDER_MBOX ? FOLDER_ATTR_NOINFERIORS : 0);
	if (st->layout == FOLDER_MAILDIRPP) {
		ret = folder_list_maildirpp(st, &fv, error_r);
	} else {
		struct buf rel = BUF_INIT;
		buf_reserve(&rel, 1);
		ret = folder_list_mbox_dir(st, &fv, &rel, 0, error_r);
		buf_deinit(&rel);
	}
	if (ret == 0 && folder_subs_load(st, error_r) < 0)
		ret = -1;
	if (ret < 0) {
		folder_list_free(&fv.v, fv.count);
		return -1;
	}
	folder_vec_sort(&fv);
	/* RFC 3348: a name has children when another listed name is below it. */
	for (size_t i = 0; i < fv.count; i++) {
		const char *name = fv.v[i].name;
		const char *s = strrchr(name, st->sep);
		if (s == NULL)
			continue;
		/* A copy: the array must stay sorted during the search. */
		char *pname = xstrndup(name, (size_t)(s - name));
		struct folder_info *parent = folder_vec_find(&fv, pname);
		free(pname);
		if (parent != NULL)
			parent->attrs |= FOLDER_ATTR_HASCHILDREN;
	}
	for (size_t i = 0; i < fv.count; i++)
		if (!(fv.v[i].attrs & FOLDER_ATTR_HASCHILDREN))
			fv.v[i].attrs |= FOLDER_ATTR_HASNOCHILDREN;
	/* Subscribed names: mark, or add as NONEXISTENT (for LSUB). */
	size_t existing = fv.count;
	for (size_t i = 0; i < st->sub_count; i++) {
		struct folder_info *f = folder_vec_find(&fv, st->subs[i]);
		if (f != NULL)
			f->attrs |= FOLDER_ATTR_SUBSCRIBED;
		else
			folder_vec_add(&fv, st->subs[i], strlen(st->subs[i]),
				       FOLDER_ATTR_SUBSCRIBED | FOLDER_ATTR_NONEXISTENT);
	}
	if (fv.count != existing)
		folder_vec_sort(&fv);
	for (size_t i = 0; i < st->special_count; i++) {
		struct folder_info *f = folder_vec_find(&fv, st->special[i].name);
		if (f != NULL)
			f->attrs |= st->special[i].attr;
	}
	*list_r = fv.v;
	*count_r = fv.count;
	return 0;
}

void folder_list_free(struct folder_info **list, size_t count)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*list)[i].name);
	free(*list);
	*list = NULL;
}

/* ---- pattern matching (RFC 3501 6.3.8) */

/* Dynamic programming over the name, one pattern character at a time:
 * dp[j] tells whether the pattern so far matches the first j bytes of the
 * name.  O(pattern * name) time, O(name) memory, no backtracking, so a
 * hostile pattern such as "*a*a*a*a*b" cannot make it exponential. */
static char folder_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool folder_pattern_match(const struct folder_store *st, const char *pattern, const char *name)
{
	size_t n = strlen(name);
	/* "INBOX" is case-insensitive, also as the first level of a name. */
	size_t ci = n >= 5 && strncasecmp(name, "INBOX", 5) == 0 &&
				    (n == 5 || name[5] == st->sep)
			    ? 5
			    : 0;
	bool small[FOLDER_NAME_MAX + 2];
	bool *dp = n + 1 <= sizeof(small) / sizeof(small[0]) ? small
							       : xcalloc(n + 1, sizeof(bool));
	dp[0] = true;
	for (size_t j = 1; j <= n; j++)
		dp[j] = false;
	bool any = true;
	for (const char *p = pattern; *p != '\0' && any; p++) {
		if (*p == '*') {
			bool acc = false;
			for (size_t j = 0; j <= n; j++) {
				acc = acc || dp[j];
				dp[j] = acc;
			}
		} else if (*p == '%') {
			for (size_t j = 1; j <= n; j++)
				dp[j] = dp[j] || (dp[j - 1] && name[j - 1] != st->sep);
		} else {
			any = false;
			for (size_t j = n; j >= 1; j--) {
				char c = name[j - 1];
				bool eq = j - 1 < ci ? folder_lower(*p) == folder_lower(c) : *p == c;
				dp[j] = dp[j - 1] && eq;
				any = any || dp[j];
			}
			dp[0] = false;
		}
	}
	bool ret = any && dp[n];
	if (dp != small)
		free(dp);
	return ret;
}

/* ---- CREATE */

static int folder_create_canon(struct folder_store *st, const char *canon, bool want_dir,
			       const char **error_r)
{
	if (strcmp(canon, "INBOX") == 0) {
		*error_r = folder_set_error(st, EEXIST, "Mailbox already exists");
		return -1;
	}
	char *path = folder_path_make(st, canon);
	int ret = 0;
	if (st->layout == FOLDER_MAILDIRPP) {
		/* A trailing '.' changes nothing: every Maildir++ folder can
		 * have inferiors.  Parents need not exist (".a.b" alone). */
		(void)want_dir;
		const char *err;
		if (mkdir(path, 0700) < 0 && errno == EEXIST && folder_maildir_is(path) == 1) {
			*error_r = folder_set_error(st, EEXIST, "Mailbox already exists");
			ret = -1;
		} else if (mailbox_maildir_create(path, &err) < 0) {
			*error_r = folder_set_error(st, errno, "Cannot create mailbox: %s",
						    strerror(errno));
			log_error("%s", err);
			ret = -1;
		} else {
			struct buf mf = BUF_INIT;
			buf_printf(&mf, "%s/maildirfolder", path);
			int fd = open(buf_cstr(&mf), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
				      0600);
			if (fd < 0 || close(fd) < 0 || fs_fsync_parent(path) < 0) {
				*error_r = folder_set_error(st, errno, "Cannot create mailbox: %s",
							    strerror(errno));
				ret = -1;
			}
			buf_deinit(&mf);
		}
	} else {
		char *slash = strrchr(path, '/');
		*slash = '\0';
		int r = fs_mkdir_p(path, 0700);
		*slash = '/';
		if (r < 0) {
			*error_r = folder_set_error(st, errno == EEXIST ? ENOTDIR : errno,
						    "Cannot create parent of mailbox: %s",
						    strerror(errno == EEXIST ? ENOTDIR : errno));
			ret = -1;
		} else if (want_dir) {
			r = mkdir(path, 0700);
		} else {
			r = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (r >= 0)
				r = close(r);
		}
		if (ret == 0 && r < 0) {
			if (errno == EEXIST)
				*error_r = folder_set_error(st, EEXIST, "Mailbox already exists");
			else
				*error_r = folder_set_error(st, errno, "Cannot create mailbox: %s",
							    strerror(errno));
			ret = -1;
		} else if (ret == 0 && fs_fsync_parent(path) < 0) {
			*error_r = folder_set_error(st, errno, "Cannot create mailbox: %s",
						    strerror(errno));
			ret = -1;
		}
	}
	free(path);
	return ret;
}

int folder_create(struct folder_store *st, const char *name, const char **error_r)
{
	size_t len = strlen(name);
	bool want_dir = len > 1 && name[len - 1] == st->sep;
	char *tmp = xstrndup(name, want_dir ? len - 1 : len);
	char *c = folder_canon(st, tmp, error_r);
	free(tmp);
	if (c == NULL)
		return -1;
	int r = folder_create_canon(st, c, want_dir, error_r);
	free(c);
	return r;
}

/* ---- DELETE */

/* Remove everything inside the directory dfd (consumed), never following a
 * symbolic link: entries are opened with O_NOFOLLOW and removed with
 * unlinkat. */
static int folder_rm_tree(int dfd, unsigned depth)
{
	if (depth >= FOLDER_TREE_DEPTH_MAX) {
		(void)close(dfd);
		errno = ELOOP;
		return -1;
	}
	DIR *d = fdopendir(dfd);
	if (d == NULL) {
		int err = errno;
		(void)close(dfd);
		errno = err;
		return -1;
	}
	int ret = 0;
	struct dirent *de;
	while (ret == 0 && (errno = 0, de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0 || errno == ENOENT)
			continue;
		if (errno != EISDIR && errno != EPERM)
			ret = -1;
		else {
			int sub = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0 || folder_rm_tree(sub, depth + 1) < 0 ||
			    unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0)
				ret = -1;
		}
	}
	if (ret == 0 && errno != 0)
		ret = -1;
	int err = errno;
	(void)closedir(d);
	errno = err;
	return ret;
}

int folder_delete(struct folder_store *st, const char *name, const char **error_r)
{
	char *c = folder_canon(st, name, error_r);
	if (c == NULL)
		return -1;
	if (strcmp(c, "INBOX") == 0) {
		free(c);
		*error_r = folder_set_error(st, EINVAL, "Cannot delete INBOX");
		return -1;
	}
	char *path = folder_path_make(st, c);
	int ret = 0;
	struct stat sb;
	/* Maildir++: only a Maildir (or a link to one) is a folder; other
	 * dot files in the Maildir (Dovecot's, Courier's) are left alone. */
	if (lstat(path, &sb) < 0 ||
	    (st->layout == FOLDER_MAILDIRPP && folder_maildir_is(path) != 1)) {
		*error_r = folder_set_error(st, ENOENT, "Mailbox does not exist");
		ret = -1;
	} else if (!S_ISDIR(sb.st_mode)) {
		/* mbox file, or a symbolic link in either layout: the link
		 * goes, never what it points to. */
		if (unlink(path) < 0) {
			*error_r = folder_set_error(st, errno, "Cannot delete mailbox: %s",
						    strerror(errno));
			ret = -1;
		}
	} else if (st->layout == FOLDER_MBOX) {
		if (rmdir(path) < 0) {
			int err = errno == EEXIST ? ENOTEMPTY : errno;
			if (err == ENOTEMPTY)
				*error_r = folder_set_error(st, err, "Mailbox has inferiors");
			else
				*error_r = folder_set_error(st, err, "Cannot delete mailbox: %s",
							    strerror(err));
			ret = -1;
		}
	} else {
		/* Rename out of sight first, so the folder disappears at once
		 * for other sessions, then remove its content.  ".facteur-*"
		 * entries are never listed. */
		static unsigned counter;
		struct buf trash = BUF_INIT;
		buf_printf(&trash, "%s/.facteur-deleted-%ld-%lld-%u", st->root, (long)getpid(),
			   (long long)time(NULL), counter++);
		if (rename(path, buf_cstr(&trash)) < 0) {
			*error_r = folder_set_error(st, errno, "Cannot delete mailbox: %s",
						    strerror(errno));
			ret = -1;
		} else {
			int dfd = open(buf_cstr(&trash), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (dfd < 0 || folder_rm_tree(dfd, 0) < 0 || rmdir(buf_cstr(&trash)) < 0) {
				/* The folder is gone for clients already. */
				log_warning("remove %s: %s", buf_cstr(&trash), strerror(errno));
			}
		}
		buf_deinit(&trash);
	}
	if (ret == 0 && fs_fsync_parent(path) < 0)
		log_warning("fsync parent of %s: %s", path, strerror(errno));
	free(path);
	free(c);
	return ret;
}

/* ---- RENAME */

/* rename(2) that never replaces an existing target (an empty directory
 * would otherwise be silently replaced). */
static int folder_rename_noreplace(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	struct stat sb;
	if (lstat(to, &sb) == 0) {
		errno = EEXIST;
		return -1;
	}
	return rename(from, to);
}

static int folder_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Maildir++: ".from" and every ".from.*" to ".to...", rolled back when one
 * rename fails. */
static int folder_rename_maildirpp(struct folder_store *st, const char *from, const char *to,
				   const char **error_r)
{
	DIR *d = opendir(st->root);
	if (d == NULL) {
		*error_r = folder_set_error(st, errno, "Cannot rename mailbox: %s", strerror(errno));
		return -1;
	}
	size_t flen = strlen(from);
	char **ents = NULL;
	size_t count = 0;
	struct dirent *de;
	while ((errno = 0, de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		if (n[0] == '.' && strncmp(n + 1, from, flen) == 0 &&
		    (n[1 + flen] == '\0' || n[1 + flen] == '.') &&
		    folder_dirent_is_dir(st->root, de, true)) {
			ents = xreallocarray(ents, count + 1, sizeof(*ents));
			ents[count++] = xstrdup(n + 1 + flen);
		}
	}
	int rd_err = errno;
	(void)closedir(d);
	/* Parent first (suffix ""), then inferiors. */
	if (count > 0)
		qsort(ents, count, sizeof(*ents), folder_str_cmp);
	int ret = 0;
	if (rd_err != 0) {
		*error_r = folder_set_error(st, rd_err, "Cannot rename mailbox: %s",
					    strerror(rd_err));
		ret = -1;
	} else if (count == 0) {
		*error_r = folder_set_error(st, ENOENT, "Mailbox does not exist");
		ret = -1;
	}
	struct buf a = BUF_INIT, b = BUF_INIT;
	size_t done = 0;
	for (; ret == 0 && done < count; done++) {
		buf_reset(&a);
		buf_reset(&b);
		buf_printf(&a, "%s/.%s%s", st->root, from, ents[done]);
		buf_printf(&b, "%s/.%s%s", st->root, to, ents[done]);
		if (folder_rename_noreplace(buf_cstr(&a), buf_cstr(&b)) < 0) {
			int err = errno;
			if (err == EEXIST || err == ENOTEMPTY)
				*error_r = folder_set_error(st, EEXIST,
							    "Mailbox %s%s already exists", to,
							    ents[done]);
			else
				*error_r = folder_set_error(st, err, "Cannot rename mailbox: %s",
							    strerror(err));
			ret = -1;
			break;
		}
	}
	if (ret < 0) {
		int err = errno;
		while (done-- > 0) {
			buf_reset(&a);
			buf_reset(&b);
			buf_printf(&a, "%s/.%s%s", st->root, from, ents[done]);
			buf_printf(&b, "%s/.%s%s", st->root, to, ents[done]);
			if (rename(buf_cstr(&b), buf_cstr(&a)) < 0)
				log_error("rename %s back to %s: %s", buf_cstr(&b), buf_cstr(&a),
					  strerror(errno));
		}
		errno = err;
	} else if (fs_fsync_dir(st->root) < 0) {
		log_warning("fsync %s: %s", st->root, strerror(errno));
	}
	buf_deinit(&a);
	buf_deinit(&b);
	for (size_t i = 0; i < count; i++)
		free(ents[i]);
	free(ents);
	return ret;
}

/* Maildir++ INBOX: move every message of new/ and cur/ into the same
 * directory of the new folder (created here).  A failure midway leaves the
 * messages moved so far in the new folder (none is lost). */
static int folder_rename_inbox_maildir(struct folder_store *st, const char *to,
				       const char **error_r)
{
	if (folder_create_canon(st, to, false, error_r) < 0)
		return -1;
	char *dest = folder_path_make(st, to);
	static const char *const subs[] = { "new", "cur" };
	struct buf src = BUF_INIT, a = BUF_INIT, b = BUF_INIT;
	int ret = 0;
	for (size_t i = 0; ret == 0 && i < 2; i++) {
		buf_reset(&src);
		buf_printf(&src, "%s/%s", st->root, subs[i]);
		DIR *d = opendir(buf_cstr(&src));
		if (d == NULL) {
			*error_r = folder_set_error(st, errno, "Cannot move INBOX messages: %s",
						    strerror(errno));
			ret = -1;
			break;
		}
		struct dirent *de;
		while (ret == 0 && (de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			buf_reset(&a);
			buf_reset(&b);
			buf_printf(&a, "%s/%s", buf_cstr(&src), de->d_name);
			buf_printf(&b, "%s/%s/%s", dest, subs[i], de->d_name);
			if (folder_rename_noreplace(buf_cstr(&a), buf_cstr(&b)) < 0 &&
			    errno != ENOENT) {
				*error_r = folder_set_error(st, errno,
							    "Cannot move INBOX messages: %s",
							    strerror(errno));
				ret = -1;
			}
		}
		(void)closedir(d);
		buf_reset(&b);
		buf_printf(&b, "%s/%s", dest, subs[i]);
		if (fs_fsync_dir(buf_cstr(&b)) < 0 || fs_fsync_dir(buf_cstr(&src)) < 0)
			log_warning("fsync after moving INBOX messages: %s", strerror(errno));
	}
	buf_deinit(&src);
	buf_deinit(&a);
	buf_deinit(&b);
	free(dest);
	return ret;
}

/* mbox INBOX: copy the spool file into the new folder (fsync), then
 * truncate the spool file, all under the spool's locks: dotlock
 * "<inbox>.lock" when its directory is writable (else fcntl alone, as
 * /var/mail is often not writable by users), and an fcntl write lock. */
static int folder_rename_inbox_mbox(struct folder_store *st, const char *to, const char **error_r)
{
	char *dest = folder_path_make(st, to);
	struct buf lock = BUF_INIT;
	buf_printf(&lock, "%s.lock", st->inbox_path);
	bool dotlocked = false;
	int in = -1, out = -1, ret = 0;
	char *slash = strrchr(dest, '/');
	*slash = '\0';
	int r = fs_mkdir_p(dest, 0700);
	*slash = '/';
	if (r < 0) {
		*error_r = folder_set_error(st, errno, "Cannot create parent of mailbox: %s",
					    strerror(errno));
		ret = -1;
	}
	if (ret == 0) {
		out = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (out < 0) {
			*error_r = folder_set_error(st, errno == EEXIST ? EEXIST : errno,
						    errno == EEXIST ? "Mailbox already exists"
								    : "Cannot create mailbox");
			ret = -1;
		}
	}
	const char *lerr;
	if (ret == 0) {
		if (mailbox_uidlist_lock(buf_cstr(&lock), MAILBOX_LOCK_WAIT_SECS, &lerr) == 0)
			dotlocked = true;
		else if (errno != EACCES && errno != EROFS && errno != EPERM) {
			*error_r = folder_set_error(st, errno, "Cannot lock INBOX: %s", lerr);
			ret = -1;
		}
	}
	if (ret == 0) {
		in = open(st->inbox_path, O_RDWR | O_CLOEXEC);
		if (in < 0 && errno != ENOENT) {
			*error_r = folder_set_error(st, errno, "Cannot open INBOX: %s",
						    strerror(errno));
			ret = -1;
		}
	}
	if (ret == 0 && in >= 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		unsigned waited = 0;
		while (fcntl(in, F_SETLK, &fl) < 0) {
			if ((errno != EAGAIN && errno != EACCES && errno != EINTR) ||
			    waited++ >= MAILBOX_LOCK_WAIT_SECS * 10) {
				*error_r = folder_set_error(st, errno, "Cannot lock INBOX: %s",
							    strerror(errno));
				ret = -1;
				break;
			}
			struct timespec pause = { 0, 100 * 1000 * 1000 };
			nanosleep(&pause, NULL);
		}
	}
	if (ret == 0 && in >= 0) {
		char data[65536];
		ssize_t n;
		while ((n = read(in, data, sizeof(data))) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 || fs_write_full(out, data, (size_t)n) < 0) {
				ret = -1;
				break;
			}
		}
		if (ret == 0 && fsync(out) < 0)
			ret = -1;
		if (ret < 0)
			*error_r = folder_set_error(st, errno, "Cannot copy INBOX: %s",
						    strerror(errno));
	}
	if (out >= 0 && close(out) < 0 && ret == 0) {
		*error_r = folder_set_error(st, errno, "Cannot copy INBOX: %s", strerror(errno));
		ret = -1;
	}
	if (ret == 0 && fs_fsync_parent(dest) < 0) {
		*error_r = folder_set_error(st, errno, "Cannot copy INBOX: %s", strerror(errno));
		ret = -1;
	}
	/* The copy is durable: only now empty the spool file. */
	if (ret == 0 && in >= 0 && (ftruncate(in, 0) < 0 || fsync(in) < 0)) {
		*error_r = folder_set_error(st, errno, "Cannot empty INBOX: %s", strerror(errno));
		ret = -1;
	}
	int err = errno;
	if (ret < 0 && out >= 0)
		(void)unlink(dest); /* INBOX still holds every message */
	if (in >= 0)
		(void)close(in); /* drops the fcntl lock */
	if (dotlocked)
		mailbox_uidlist_unlock(buf_cstr(&lock));
	buf_deinit(&lock);
	free(dest);
	errno = err;
	return ret;
}

int folder_rename(struct folder_store *st, const char *from, const char *to,
		  const char **error_r)
{
	char *f = folder_canon(st, from, error_r);
	if (f == NULL)
		return -1;
	char *t = folder_canon(st, to, error_r);
	if (t == NULL) {
		free(f);
		return -1;
	}
	int ret = 0;
	size_t flen = strlen(f);
	if (strcmp(t, "INBOX") == 0 || strcmp(f, t) == 0) {
		*error_r = folder_set_error(st, EEXIST, "Mailbox already exists");
		ret = -1;
	} else if (strcmp(f, "INBOX") != 0 && strncmp(t, f, flen) == 0 && t[flen] == st->sep) {
		*error_r = folder_set_error(st, EINVAL,
					    "Cannot rename a mailbox to one of its inferiors");
		ret = -1;
	} else if (strcmp(f, "INBOX") == 0) {
		/* RFC 3501 6.3.5: the messages move, INBOX stays (empty),
		 * inferiors of INBOX are not renamed. */
		if (st->layout == FOLDER_MAILDIRPP)
			ret = folder_rename_inbox_maildir(st, t, error_r);
		else
			ret = folder_rename_inbox_mbox(st, t, error_r);
	} else if (st->layout == FOLDER_MAILDIRPP) {
		char *tp = folder_path_make(st, t);
		struct stat sb;
		if (lstat(tp, &sb) == 0) {
			*error_r = folder_set_error(st, EEXIST, "Mailbox already exists");
			ret = -1;
		}
		free(tp);
		if (ret == 0)
			ret = folder_rename_maildirpp(st, f, t, error_r);
	} else {
		char *fp = folder_path_make(st, f), *tp = folder_path_make(st, t);
		struct stat sb;
		if (lstat(fp, &sb) < 0) {
			*error_r = folder_set_error(st, ENOENT, "Mailbox does not exist");
			ret = -1;
		} else {
			char *slash = strrchr(tp, '/');
			*slash = '\0';
			int r = fs_mkdir_p(tp, 0700);
			*slash = '/';
			if (r < 0 || folder_rename_noreplace(fp, tp) < 0) {
				int err = errno == ENOTEMPTY ? EEXIST : errno;
				*error_r = err == EEXIST
						   ? folder_set_error(st, err, "Mailbox already exists")
						   : folder_set_error(st, err, "Cannot rename mailbox: %s",
								      strerror(err));
				ret = -1;
			} else if (fs_fsync_parent(tp) < 0 || fs_fsync_parent(fp) < 0) {
				log_warning("fsync after rename of %s: %s", fp, strerror(errno));
			}
		}
		free(fp);
		free(tp);
	}
	/* Subscriptions follow the renamed folder and its inferiors. */
	if (ret == 0 && strcmp(f, "INBOX") != 0) {
		const char *serr;
		bool changed = false;
		if (folder_subs_load(st, &serr) >= 0) {
			for (size_t i = 0; i < st->sub_count; i++) {
				char *s = st->subs[i];
				if (strncmp(s, f, flen) == 0 && (s[flen] == '\0' || s[flen] == st->sep)) {
					struct buf nb = BUF_INIT;
					buf_printf(&nb, "%s%s", t, s + flen);
					free(s);
					st->subs[i] = buf_steal(&nb);
					changed = true;
				}
			}
			/* Drop duplicates a rename may have made. */
			for (size_t i = 0; changed && i < st->sub_count; i++) {
				for (size_t j = i + 1; j < st->sub_count;) {
					if (strcmp(st->subs[i], st->subs[j]) == 0) {
						free(st->subs[j]);
						st->subs[j] = st->subs[--st->sub_count];
					} else {
						j++;
					}
				}
			}
		}
		/* The folder is renamed: a failure here is only logged. */
		if (changed && folder_subs_save(st, &serr) < 0)
			log_warning("rename %s to %s: subscriptions not updated: %s", f, t, serr);
	}
	if (ret < 0) {
		int err = errno;
		free(f);
		free(t);
		errno = err;
		return -1;
	}
	free(f);
	free(t);
	return 0;
}
