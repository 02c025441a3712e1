/* table.c - Postfix-style lookup tables: the "type:name" dispatcher, table
 * lists (*_maps parameters), the source file format of postmap(1), and the
 * table types that need no file of their own format: texthash:, inline:,
 * static:, unix: (passwd.byname, group.byname).
 *
 * hash:/lmdb: live in table_lmdb.c, regexp:/pcre: in table_regexp.c.
 *
 * Source file format (postmap(1)), followed exactly:
 *   - a logical line is "key whitespace value"; a line starting with white
 *     space continues the previous one;
 *   - a line whose first non-blank character is '#' is a comment, blank
 *     lines are ignored; a '#' after the key is NOT a comment: Postfix
 *     keeps it as part of the value ("root  a@b # me" maps root to
 *     "a@b # me"), and so do we, so that a file means the same thing to
 *     postmap and to facteur;
 *   - keys are folded to lower case (the lookup key too);
 *   - a duplicate key keeps the FIRST value with a warning: postmap's
 *     mkmap_append() sets DICT_FLAG_DUP_WARN and the dict modules store with
 *     "no overwrite" (dict_db R_NOOVERWRITE), so the first entry wins.
 *     We rejected "last wins": it would change the meaning of existing files.
 */
#include "mail/table.h"
#include "mail/config.h"
#include "mail/table_int.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- errors */

static struct buf table_open_error_buf = BUF_INIT;
static struct buf table_diag_error_buf = BUF_INIT;

const char *table_open_error(const char *fmt, ...)
{
	va_list ap;
	/* fmt's arguments may point into the buffer itself: format aside. */
	struct buf tmp = BUF_INIT;
	va_start(ap, fmt);
	buf_vprintf(&tmp, fmt, ap);
	va_end(ap);
	buf_reset(&table_open_error_buf);
	buf_append(&table_open_error_buf, tmp.data, tmp.len);
	buf_deinit(&tmp);
	return buf_cstr(&table_open_error_buf);
}

const char *table_lookup_error(struct table *t, const char *fmt, ...)
{
	va_list ap;
	struct buf tmp = BUF_INIT;
	va_start(ap, fmt);
	buf_vprintf(&tmp, fmt, ap);
	va_end(ap);
	buf_reset(&t->error);
	buf_append(&t->error, tmp.data, tmp.len);
	buf_deinit(&tmp);
	return buf_cstr(&t->error);
}

const char *table_diags_first_error(const struct config_diags *diags)
{
	for (size_t i = 0; i < diags->count; i++) {
		const struct config_diag *d = &diags->items[i];
		if (!d->is_error)
			continue;
		buf_reset(&table_diag_error_buf);
		if (d->line > 0)
			buf_printf(&table_diag_error_buf, "%s:%u: %s", d->file, d->line,
				   d->message);
		else
			buf_printf(&table_diag_error_buf, "%s: %s", d->file, d->message);
		return buf_cstr(&table_diag_error_buf);
	}
	return NULL;
}

/* --------------------------------------------------------- logical lines */

static bool table_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Trim line in place; returns the start. */
static char *table_trim(char *s, size_t *len)
{
	size_t n = *len;
	while (n > 0 && (table_is_blank(s[n - 1]) || s[n - 1] == '\n'))
		n--;
	s[n] = '\0';
	while (*s != '\0' && table_is_blank(*s)) {
		s++;
		n--;
	}
	*len = n;
	return s;
}

struct table_lines {
	const char *file;
	struct config_diags *diags;
	int (*cb)(void *ctx, char *line, unsigned lineno);
	void *ctx;
	struct buf logical;
	unsigned start_line;
	bool have_line;
	bool too_long;
	bool stopped;
};

static void table_lines_flush(struct table_lines *tl)
{
	if (!tl->have_line)
		return;
	tl->have_line = false;
	if (tl->too_long) {
		config_diag_add(tl->diags, tl->file, tl->start_line, true,
				"line too long (more than %d bytes)", TABLE_LINE_MAX);
		tl->too_long = false;
		buf_reset(&tl->logical);
		return;
	}
	size_t len = tl->logical.len;
	char *line = table_trim((char *)tl->logical.data, &len);
	if (len > 0 && !tl->stopped && tl->cb(tl->ctx, line, tl->start_line) < 0)
		tl->stopped = true;
	buf_reset(&tl->logical);
}

static void table_lines_append(struct table_lines *tl, const char *p, size_t n)
{
	if (tl->too_long)
		return;
	if (n > TABLE_LINE_MAX || tl->logical.len > TABLE_LINE_MAX - n) {
		tl->too_long = true;
		return;
	}
	buf_append(&tl->logical, p, n);
}

int table_lines_parse(const char *file, const char *text, size_t len,
		      int (*cb)(void *ctx, char *line, unsigned lineno), void *ctx,
		      struct config_diags *diags)
{
	struct table_lines tl = {
		.file = file, .diags = diags, .cb = cb, .ctx = ctx,
	};
	size_t errors_before = diags->n_errors;
	unsigned lineno = 0;
	size_t pos = 0;

	buf_init(&tl.logical);
	while (pos < len && !tl.stopped) {
		const char *p = text + pos;
		const char *nl = memchr(p, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - p) : len - pos;
		pos += n + (nl != NULL ? 1 : 0);
		lineno++;

		if (memchr(p, '\0', n) != NULL) {
			table_lines_flush(&tl);
			config_diag_add(diags, file, lineno, true, "NUL character in line");
			continue;
		}
		size_t i = 0;
		while (i < n && table_is_blank(p[i]))
			i++;
		if (i == n || p[i] == '#')
			continue; /* blank or comment: ignored, even between continuations */
		if (i > 0) {
			if (tl.have_line) {
				table_lines_append(&tl, p, n);
				continue;
			}
			/* Postfix readllines(): warn and take it as a new line. */
			config_diag_add(diags, file, lineno, false,
					"logical line must not start with white space");
		}
		table_lines_flush(&tl);
		tl.have_line = true;
		tl.start_line = lineno;
		table_lines_append(&tl, p, n);
	}
	table_lines_flush(&tl);
	buf_deinit(&tl.logical);
	if (tl.stopped || diags->n_errors > errors_before)
		return -1;
	return 0;
}

int table_lines_read(const char *path, int (*cb)(void *ctx, char *line, unsigned lineno),
		     void *ctx, struct config_diags *diags)
{
	struct buf text = BUF_INIT;
	if (fs_read_file(path, TABLE_SOURCE_MAX, &text) < 0) {
		config_diag_add(diags, path, 0, true, "open: %s", strerror(errno));
		buf_deinit(&text);
		return -1;
	}
	int ret = table_lines_parse(path, (const char *)text.data, text.len, cb, ctx, diags);
	buf_deinit(&text);
	return ret;
}

/* ----------------------------------------------------- key value sources */

struct table_source {
	const char *path;
	struct config_diags *diags;
	int (*cb)(void *ctx, const char *key, const char *value, unsigned line);
	void *ctx;
};

static int table_source_line(void *ctx, char *line, unsigned lineno)
{
	struct table_source *src = ctx;
	char *value = line;
	while (*value != '\0' && !table_is_blank(*value))
		value++;
	if (*value != '\0')
		*value++ = '\0';
	while (table_is_blank(*value))
		value++;
	if (*value == '\0') {
		config_diag_add(src->diags, src->path, lineno, true,
				"expected format: key whitespace value");
		return 0;
	}
	return src->cb(src->ctx, line, value, lineno);
}

int table_source_parse(const char *path,
		       int (*cb)(void *ctx, const char *key, const char *value, unsigned line),
		       void *ctx, struct config_diags *diags)
{
	struct table_source src = { path, diags, cb, ctx };
	return table_lines_read(path, table_source_line, &src, diags);
}

/* --------------------------------------------------- in-memory hash table */

/* Open addressing with linear probing; at most half full.  Used by
 * texthash: and inline:. */
struct table_mem_entry {
	char *key;
	char *value;
};

struct table_mem {
	struct table_mem_entry *slots;
	size_t cap; /* power of two */
	size_t count;
};

static uint64_t table_mem_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct table_mem_entry *table_mem_find(struct table_mem *m, const char *key)
{
	size_t i = (size_t)table_mem_hash(key) & (m->cap - 1);
	while (m->slots[i].key != NULL && strcmp(m->slots[i].key, key) != 0)
		i = (i + 1) & (m->cap - 1);
	return &m->slots[i];
}

static struct table_mem *table_mem_new(void)
{
	struct table_mem *m = xcalloc(1, sizeof(*m));
	m->cap = 16;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
	return m;
}

static void table_mem_free(void *priv)
{
	struct table_mem *m = priv;
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->cap; i++) {
		free(m->slots[i].key);
		free(m->slots[i].value);
	}
	free(m->slots);
	free(m);
}

/* Returns true when stored, false when key was already there (first wins). */
static bool table_mem_put(struct table_mem *m, const char *key, const char *value)
{
	if (m->count + 1 > m->cap / 2) {
		struct table_mem old = *m;
		m->cap = old.cap * 2;
		m->slots = xreallocarray(NULL, m->cap, sizeof(*m->slots));
		memset(m->slots, 0, m->cap * sizeof(*m->slots));
		for (size_t i = 0; i < old.cap; i++) {
			if (old.slots[i].key != NULL)
				*table_mem_find(m, old.slots[i].key) = old.slots[i];
		}
		free(old.slots);
	}
	struct table_mem_entry *e = table_mem_find(m, key);
	if (e->key != NULL)
		return false;
	e->key = xstrdup(key);
	e->value = xstrdup(value);
	m->count++;
	return true;
}

static int table_mem_lookup(struct table *t, const char *key, char **value_r,
			    const char **error_r)
{
	(void)error_r;
	struct table_mem_entry *e = table_mem_find(t->priv, key);
	if (e->key == NULL)
		return 0;
	*value_r = xstrdup(e->value);
	return 1;
}

/* --------------------------------------------------------------- texthash */

static int table_texthash_entry(void *ctx, const char *key, const char *value, unsigned line)
{
	struct table *t = ctx;
	char *folded = str_lower_dup(key);
	if (!table_mem_put(t->priv, folded, value))
		log_warning("%s, line %u: duplicate entry \"%s\"; keeping the first one",
			    t->name, line, folded);
	free(folded);
	return 0;
}

static int table_texthash_open(struct table *t, const char **error_r)
{
	struct config_diags diags;
	config_diags_init(&diags);
	t->priv = table_mem_new();
	t->free_priv = table_mem_free;
	t->lookup = table_mem_lookup;
	int ret = table_source_parse(t->name, table_texthash_entry, t, &diags);
	if (ret < 0) {
		const char *e = table_diags_first_error(&diags);
		*error_r = table_open_error("%s", e != NULL ? e : "parse error");
	}
	config_diags_deinit(&diags);
	return ret;
}

/* ----------------------------------------------------------------- inline */

/* inline:{ key=value, { key = value with, commas } } as Postfix's
 * dict_inline: items are separated by commas or white space; an item in
 * braces may contain both; each item is name=value with white space around
 * name and value removed. */
static int table_inline_parse(struct table *t, const char **error_r)
{
	const char *s = t->name;
	size_t n = strlen(s);
	while (n > 0 && table_is_blank(s[n - 1]))
		n--;
	while (n > 0 && table_is_blank(*s)) {
		s++;
		n--;
	}
	if (n < 2 || s[0] != '{' || s[n - 1] != '}') {
		*error_r = table_open_error("bad syntax: \"%s\"; need \"inline:{name=value...}\"",
					    t->spec);
		return -1;
	}
	s++;
	n -= 2;
	struct table_mem *m = t->priv;
	size_t i = 0;
	while (i < n) {
		while (i < n && (table_is_blank(s[i]) || s[i] == ',' || s[i] == '\n'))
			i++;
		if (i >= n)
			break;
		size_t start = i, end;
		if (s[i] == '{') {
			int depth = 0;
			for (; i < n; i++) {
				if (s[i] == '{')
					depth++;
				else if (s[i] == '}' && --depth == 0)
					break;
			}
			if (i >= n) {
				*error_r = table_open_error("%s: missing '}'", t->spec);
				return -1;
			}
			start++;
			end = i;
			i++;
		} else {
			while (i < n && !table_is_blank(s[i]) && s[i] != ',' && s[i] != '\n') {
				if (s[i] == '{' || s[i] == '}') {
					*error_r = table_open_error("%s: unexpected '%c'", t->spec, s[i]);
					return -1;
				}
				i++;
			}
			end = i;
		}
		struct strv item = strv_trim(strv_make(s + start, end - start));
		const char *eq = memchr(item.ptr, '=', item.len);
		if (eq == NULL) {
			*error_r = table_open_error("%s: missing '=' after \"%.*s\"", t->spec,
						    (int)item.len, item.ptr);
			return -1;
		}
		struct strv k = strv_trim(strv_make(item.ptr, (size_t)(eq - item.ptr)));
		struct strv v =
			strv_trim(strv_make(eq + 1, (size_t)(item.ptr + item.len - (eq + 1))));
		if (k.len == 0) {
			*error_r = table_open_error("%s: missing name before '='", t->spec);
			return -1;
		}
		char *key = strv_dup(k), *value = strv_dup(v);
		str_lower(key);
		(void)table_mem_put(m, key, value);
		free(key);
		free(value);
	}
	if (m->count == 0) {
		*error_r = table_open_error("%s: empty table", t->spec);
		return -1;
	}
	return 0;
}

static int table_inline_open(struct table *t, const char **error_r)
{
	t->priv = table_mem_new();
	t->free_priv = table_mem_free;
	t->lookup = table_mem_lookup;
	return table_inline_parse(t, error_r);
}

/* ----------------------------------------------------------------- static */

static int table_static_lookup(struct table *t, const char *key, char **value_r,
			       const char **error_r)
{
	(void)key;
	(void)error_r;
	*value_r = xstrdup(t->priv);
	return 1;
}

static int table_static_open(struct table *t, const char **error_r)
{
	struct strv v = strv_trim(strv_from_cstr(t->name));
	if (v.len > 0 && v.ptr[0] == '{') {
		if (v.ptr[v.len - 1] != '}') {
			*error_r = table_open_error("%s: missing '}'", t->spec);
			return -1;
		}
		v = strv_trim(strv_make(v.ptr + 1, v.len - 2));
	}
	t->priv = strv_dup(v);
	t->free_priv = free;
	t->lookup = table_static_lookup;
	return 0;
}

/* ------------------------------------------------------------------- unix */

/* unix:passwd.byname and unix:group.byname as Postfix's dict_unix: the
 * value is the passwd (group) line, "name:passwd:uid:gid:gecos:dir:shell". */
static int table_unix_passwd_lookup(struct table *t, const char *key, char **value_r,
				    const char **error_r)
{
	errno = 0;
	struct passwd *pw = getpwnam(key);
	if (pw == NULL) {
		if (errno == 0 || errno == ENOENT || errno == ESRCH || errno == EBADF ||
		    errno == EPERM)
			return 0;
		*error_r = table_lookup_error(t, "%s: getpwnam(%s): %s", t->spec, key,
					      strerror(errno));
		return -1;
	}
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s:%s:%ld:%ld:%s:%s:%s", pw->pw_name, pw->pw_passwd,
		   (long)pw->pw_uid, (long)pw->pw_gid, pw->pw_gecos, pw->pw_dir, pw->pw_shell);
	*value_r = buf_steal(&b);
	return 1;
}

static int table_unix_group_lookup(struct table *t, const char *key, char **value_r,
				   const char **error_r)
{
	errno = 0;
	struct group *gr = getgrnam(key);
	if (gr == NULL) {
		if (errno == 0 || errno == ENOENT || errno == ESRCH || errno == EBADF ||
		    errno == EPERM)
			return 0;
		*error_r = table_lookup_error(t, "%s: getgrnam(%s): %s", t->spec, key,
					      strerror(errno));
		return -1;
	}
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s:%s:%ld:", gr->gr_name, gr->gr_passwd, (long)gr->gr_gid);
	for (char **m = gr->gr_mem; m != NULL && *m != NULL; m++)
		buf_printf(&b, "%s%s", m == gr->gr_mem ? "" : ",", *m);
	*value_r = buf_steal(&b);
	return 1;
}

static int table_unix_open(struct table *t, const char **error_r)
{
	if (strcmp(t->name, "passwd.byname") == 0)
		t->lookup = table_unix_passwd_lookup;
	else if (strcmp(t->name, "group.byname") == 0)
		t->lookup = table_unix_group_lookup;
	else {
		*error_r = table_open_error("unknown table: %s (use unix:passwd.byname or "
					    "unix:group.byname)", t->spec);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------- dispatcher */

struct table_type {
	const char *name;
	int (*open)(struct table *t, const char **error_r);
	bool fold_key;
	bool has_file; /* name is a path */
};

static const struct table_type table_types[] = {
	{ "hash", table_lmdb_open, true, true },
	{ "lmdb", table_lmdb_open, true, true },
	{ "texthash", table_texthash_open, true, true },
	{ "inline", table_inline_open, true, false },
	{ "static", table_static_open, false, false },
	{ "regexp", table_regexp_open, false, true },
	{ "pcre", table_pcre_open, false, true },
	{ "unix", table_unix_open, true, false },
};

static const struct table_type *table_type_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(table_types) / sizeof(table_types[0]); i++) {
		if (strlen(table_types[i].name) == len &&
		    memcmp(table_types[i].name, name, len) == 0)
			return &table_types[i];
	}
	return NULL;
}

/* Split "proxy:type:name" into type and name.  Returns the type entry or
 * NULL with *error_r. */
static const struct table_type *table_spec_split(const char *spec, const char **name_r,
						 const char **error_r)
{
	if (strncmp(spec, "proxy:", 6) == 0)
		spec += 6;
	const char *colon = strchr(spec, ':');
	if (colon == NULL || colon == spec) {
		*error_r = table_open_error("bad table name \"%s\": expected type:name", spec);
		return NULL;
	}
	const struct table_type *tt = table_type_find(spec, (size_t)(colon - spec));
	if (tt == NULL) {
		*error_r = table_open_error("unsupported table type \"%.*s\" in \"%s\"",
					    (int)(colon - spec), spec, spec);
		return NULL;
	}
	*name_r = colon + 1;
	if (**name_r == '\0') {
		*error_r = table_open_error("bad table name \"%s\": empty name", spec);
		return NULL;
	}
	if (tt->has_file && (*name_r)[0] != '/') {
		*error_r = table_open_error("table \"%s\": the file name must be absolute", spec);
		return NULL;
	}
	return tt;
}

struct table *table_open(const char *spec, const char **error_r)
{
	const char *name;
	const struct table_type *tt = table_spec_split(spec, &name, error_r);
	if (tt == NULL)
		return NULL;
	struct table *t = xcalloc(1, sizeof(*t));
	t->type = xstrdup(tt->name);
	t->name = xstrdup(name);
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s:%s", tt->name, name);
	t->spec = buf_steal(&b);
	t->fold_key = tt->fold_key;
	buf_init(&t->error);
	if (tt->open(t, error_r) < 0) {
		table_free(&t);
		return NULL;
	}
	return t;
}

void table_free(struct table **tp)
{
	struct table *t = *tp;
	if (t == NULL)
		return;
	if (t->free_priv != NULL && t->priv != NULL)
		t->free_priv(t->priv);
	buf_deinit(&t->error);
	free(t->spec);
	free(t->type);
	free(t->name);
	free(t);
	*tp = NULL;
}

const char *table_spec(const struct table *t)
{
	return t->spec;
}

int table_lookup(struct table *t, const char *key, char **value_r, const char **error_r)
{
	*value_r = NULL;
	if (!t->fold_key)
		return t->lookup(t, key, value_r, error_r);
	char *folded = str_lower_dup(key);
	int ret = t->lookup(t, folded, value_r, error_r);
	free(folded);
	return ret;
}

/* ------------------------------------------------------------------ lists */

struct table_list {
	struct table **tables;
	size_t count;
};

struct table_list *table_list_open(const char *specs, const char **error_r)
{
	char **items;
	size_t n = str_list_split(specs, &items);
	struct table_list *l = xcalloc(1, sizeof(*l));
	l->tables = xreallocarray(NULL, n + 1, sizeof(*l->tables));
	for (size_t i = 0; i < n; i++) {
		struct table *t = table_open(items[i], error_r);
		if (t == NULL) {
			str_list_free(&items);
			table_list_free(&l);
			return NULL;
		}
		l->tables[l->count++] = t;
	}
	str_list_free(&items);
	return l;
}

void table_list_free(struct table_list **lp)
{
	struct table_list *l = *lp;
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->count; i++)
		table_free(&l->tables[i]);
	free(l->tables);
	free(l);
	*lp = NULL;
}

/* The first table that finds the key wins; an error in a table consulted
 * before that is an error (as Postfix's maps_find(): a table that cannot
 * answer must not let a later table give a different answer). */
int table_list_lookup(struct table_list *l, const char *key, char **value_r,
		      const char **error_r)
{
	*value_r = NULL;
	for (size_t i = 0; i < l->count; i++) {
		int ret = table_lookup(l->tables[i], key, value_r, error_r);
		if (ret != 0)
			return ret;
	}
	return 0;
}

size_t table_list_count(const struct table_list *l)
{
	return l->count;
}

struct table *table_list_get(struct table_list *l, size_t i)
{
	return i < l->count ? l->tables[i] : NULL;
}

/* ------------------------------------------------------------------ check */

static int table_check_source_entry(void *ctx, const char *key, const char *value,
				    unsigned line)
{
	(void)ctx;
	(void)key;
	(void)value;
	(void)line;
	return 0;
}

int table_check(const char *spec, struct config_diags *diags, const char *param_file,
		unsigned param_line)
{
	const char *name, *error;
	size_t errors_before = diags->n_errors;
	const struct table_type *tt = table_spec_split(spec, &name, &error);
	if (tt == NULL) {
		config_diag_add(diags, param_file, param_line, true, "%s", error);
		return -1;
	}
	if (tt->open == table_lmdb_open) {
		char *db = table_lmdb_db_path(name);
		struct stat st_db, st_src;
		if (stat(db, &st_db) < 0) {
			config_diag_add(diags, param_file, param_line, true,
					"table %s: open %s: %s (run 'facteur map %s:%s')", spec,
					db, strerror(errno), tt->name, name);
		} else if (stat(name, &st_src) == 0 &&
			   (st_src.st_mtim.tv_sec > st_db.st_mtim.tv_sec ||
			    (st_src.st_mtim.tv_sec == st_db.st_mtim.tv_sec &&
			     st_src.st_mtim.tv_nsec > st_db.st_mtim.tv_nsec))) {
			config_diag_add(diags, param_file, param_line, false,
					"database %s is older than source file %s", db, name);
		}
		if (diags->n_errors == errors_before) {
			struct table *t = table_open(spec, &error);
			if (t == NULL)
				config_diag_add(diags, param_file, param_line, true, "table %s: %s",
						spec, error);
			table_free(&t);
		}
		free(db);
	} else if (tt->open == table_texthash_open) {
		(void)table_source_parse(name, table_check_source_entry, NULL, diags);
	} else if (tt->open == table_regexp_open || tt->open == table_pcre_open) {
		(void)table_regexp_check(name, tt->open == table_pcre_open, diags);
	} else {
		struct table *t = table_open(spec, &error);
		if (t == NULL)
			config_diag_add(diags, param_file, param_line, true, "%s", error);
		table_free(&t);
	}
	return diags->n_errors > errors_before ? -1 : 0;
}
