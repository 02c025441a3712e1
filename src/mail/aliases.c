/* aliases.c - aliases(5): split right-hand sides into targets, parse the
 * source file and compile it into the LMDB format of hash:/lmdb: tables
 * (table_lmdb.c), so that the local delivery agent looks aliases up with
 * table_open("hash:/etc/aliases") like any other table.
 *
 * Source: "name: value, value" per logical line (white-space-started lines
 * continue it, '#' lines are comments).  The name may be quoted
 * ("\"a b\": x"); it is stored unquoted and lower-cased.  The stored value
 * is the raw right-hand side, trimmed; it was checked with
 * aliases_parse_rhs() so that delivery never meets a syntax error.
 * Duplicates keep the first entry with a warning, as postalias(1).
 *
 * Right-hand side: items separated by commas outside double quotes.  An
 * item is "|command", "/file", ":include:/file" or an address; any of them
 * may be written inside double quotes (needed when it contains a comma),
 * with backslash escaping the next character.  Unquoted address items
 * separated only by white space are separate addresses (a forgotten comma
 * across a continuation line must not glue two addresses together).
 */
#include "mail/aliases.h"
#include "mail/config.h"
#include "mail/table.h"
#include "mail/table_int.h"

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool aliases_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Index of the quote closing the one at s[start], or len when missing. */
static size_t aliases_quote_end(const char *s, size_t len, size_t start)
{
	size_t i = start + 1;
	while (i < len && s[i] != '"') {
		if (s[i] == '\\' && i + 1 < len)
			i++;
		i++;
	}
	return i;
}

static char *aliases_unquote(const char *s, size_t len)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len)
			i++;
		buf_append_char(&b, s[i]);
	}
	return buf_steal(&b);
}

static void aliases_target_add(struct alias_target **targets, size_t *count,
			       enum alias_target_kind kind, char *value)
{
	*targets = xreallocarray(*targets, *count + 1, sizeof(**targets));
	(*targets)[*count].kind = kind;
	(*targets)[*count].value = value;
	(*count)++;
}

/* Classify an unquoted item text s (owned, consumed). */
static int aliases_target_classify(struct alias_target **targets, size_t *count, char *s,
				   const char **error_r)
{
	if (s[0] == '|') {
		struct strv cmd = strv_trim(strv_from_cstr(s + 1));
		if (cmd.len == 0) {
			free(s);
			*error_r = "empty command after '|'";
			return -1;
		}
		char *v = strv_dup(cmd);
		free(s);
		aliases_target_add(targets, count, ALIAS_TARGET_PIPE, v);
		return 0;
	}
	if (s[0] == '/') {
		aliases_target_add(targets, count, ALIAS_TARGET_FILE, s);
		return 0;
	}
	if (strncasecmp(s, ":include:", 9) == 0) {
		struct strv path = strv_trim(strv_from_cstr(s + 9));
		if (path.len == 0 || path.ptr[0] != '/') {
			free(s);
			*error_r = path.len == 0 ? "missing file name after :include:"
						 : ":include: needs an absolute file name";
			return -1;
		}
		char *v = strv_dup(path);
		free(s);
		aliases_target_add(targets, count, ALIAS_TARGET_INCLUDE, v);
		return 0;
	}
	aliases_target_add(targets, count, ALIAS_TARGET_ADDRESS, s);
	return 0;
}

/* One comma-separated item, trimmed, not empty. */
static int aliases_item_parse(struct alias_target **targets, size_t *count, struct strv item,
			      const char **error_r)
{
	const char *s = item.ptr;
	size_t len = item.len;
	if (s[0] == '"') {
		size_t end = aliases_quote_end(s, len, 0);
		if (end >= len) {
			*error_r = "unbalanced double quote";
			return -1;
		}
		if (end == len - 1) {
			/* Entirely quoted: the content is the item. */
			if (end == 1)
				return 0;
			return aliases_target_classify(targets, count,
						       aliases_unquote(s + 1, end - 1), error_r);
		}
	}
	if (s[0] == '|' || s[0] == '/' || (len >= 9 && strncasecmp(s, ":include:", 9) == 0))
		return aliases_target_classify(targets, count, xstrndup(s, len), error_r);

	/* Addresses: split on white space outside quotes. */
	size_t i = 0;
	while (i < len) {
		while (i < len && aliases_is_space(s[i]))
			i++;
		if (i >= len)
			break;
		size_t start = i;
		while (i < len && !aliases_is_space(s[i])) {
			if (s[i] == '"') {
				i = aliases_quote_end(s, len, i);
				if (i >= len) {
					*error_r = "unbalanced double quote";
					return -1;
				}
			} else if (s[i] == '\\' && i + 1 < len) {
				i++;
			}
			i++;
		}
		aliases_target_add(targets, count, ALIAS_TARGET_ADDRESS,
				   xstrndup(s + start, i - start));
	}
	return 0;
}

int aliases_parse_rhs(const char *rhs, struct alias_target **targets_r, const char **error_r)
{
	struct alias_target *targets = NULL;
	size_t count = 0;
	size_t len = strlen(rhs);
	size_t i = 0;

	*targets_r = NULL;
	while (i <= len) {
		size_t start = i;
		while (i < len && rhs[i] != ',') {
			if (rhs[i] == '"') {
				i = aliases_quote_end(rhs, len, i);
				if (i >= len) {
					alias_targets_free(&targets, count);
					*error_r = "unbalanced double quote";
					return -1;
				}
			} else if (rhs[i] == '\\' && i + 1 < len) {
				i++;
			}
			i++;
		}
		struct strv item = strv_trim(strv_make(rhs + start, i - start));
		if (item.len > 0 && aliases_item_parse(&targets, &count, item, error_r) < 0) {
			alias_targets_free(&targets, count);
			return -1;
		}
		i++; /* past the comma (or the end) */
	}
	*targets_r = targets;
	return (int)count;
}

void alias_targets_free(struct alias_target **targets, size_t count)
{
	if (*targets == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*targets)[i].value);
	free(*targets);
	*targets = NULL;
}

/* ---------------------------------------------------------------- source */

struct aliases_source {
	const char *path;
	struct config_diags *diags;
	int (*cb)(void *ctx, const char *name, const char *rhs, unsigned line);
	void *ctx;
};

static int aliases_source_line(void *ctx, char *line, unsigned lineno)
{
	struct aliases_source *src = ctx;
	size_t len = strlen(line);
	char *name;
	size_t i;

	if (line[0] == '"') {
		size_t end = aliases_quote_end(line, len, 0);
		if (end >= len) {
			config_diag_add(src->diags, src->path, lineno, true,
					"unbalanced double quote in name");
			return 0;
		}
		name = aliases_unquote(line + 1, end - 1);
		i = end + 1;
		while (i < len && aliases_is_space(line[i]))
			i++;
		if (i >= len || line[i] != ':') {
			free(name);
			config_diag_add(src->diags, src->path, lineno, true, "missing colon");
			return 0;
		}
	} else {
		const char *colon = strchr(line, ':');
		if (colon == NULL) {
			config_diag_add(src->diags, src->path, lineno, true, "missing colon");
			return 0;
		}
		i = (size_t)(colon - line);
		struct strv n = strv_trim(strv_make(line, i));
		for (size_t k = 0; k < n.len; k++) {
			if (aliases_is_space(n.ptr[k])) {
				config_diag_add(src->diags, src->path, lineno, true,
						"white space in name \"%.*s\" (missing colon?)",
						(int)n.len, n.ptr);
				return 0;
			}
		}
		name = strv_dup(n);
	}
	if (name[0] == '\0') {
		free(name);
		config_diag_add(src->diags, src->path, lineno, true, "empty name before the colon");
		return 0;
	}
	str_lower(name);
	char *rhs = strv_dup(strv_trim(strv_from_cstr(line + i + 1)));
	struct alias_target *targets;
	const char *error;
	int n = aliases_parse_rhs(rhs, &targets, &error);
	int ret = 0;
	if (n < 0) {
		config_diag_add(src->diags, src->path, lineno, true, "%s: %s", name, error);
	} else if (n == 0) {
		config_diag_add(src->diags, src->path, lineno, true,
				"%s: no addresses after the colon", name);
		alias_targets_free(&targets, 0);
	} else {
		alias_targets_free(&targets, (size_t)n);
		ret = src->cb(src->ctx, name, rhs, lineno);
	}
	free(name);
	free(rhs);
	return ret;
}

int aliases_source_parse(const char *path,
			 int (*cb)(void *ctx, const char *name, const char *rhs, unsigned line),
			 void *ctx, struct config_diags *diags)
{
	struct aliases_source src = { path, diags, cb, ctx };
	return table_lines_read(path, aliases_source_line, &src, diags);
}

/* --------------------------------------------------------------- compile */

int aliases_compile(const char *spec, struct config_diags *diags)
{
	return table_lmdb_compile_source(spec, diags, aliases_source_parse, "alias database: ");
}
