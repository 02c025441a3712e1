/* config.c - main.cf: parsing, $name expansion, typed access, checks.
 *
 * Called by every role at startup (config_load + config_get_*) and by
 * "facteur check" (config_load + config_check + config_diags_print).
 *
 * Syntax is Postfix's (postconf(5)): a logical line starts with a
 * non-white-space character and goes on over the following lines that start
 * with white space, joined with one space; blank lines and lines whose first
 * non-white-space character is '#' are ignored wherever they are (they do
 * not end a logical line, as in Postfix's readlline()).  "#" anywhere else
 * is part of the value.  Later settings override earlier ones.
 *
 * Leniency (product choice): a non-indented line without '=' after a
 * parameter line is taken as a continuation of it, with a warning; flattened
 * copies of Postfix's sample main.cf (the seeds') have such lines.
 *
 * Values are stored raw and expanded lazily when read ($name, ${name},
 * $(name), ${name?text}, ${name:text}, $$).  Each expansion is memoized per
 * parameter, so a chain of references costs one expansion per parameter and
 * cannot blow up exponentially; a loop, a nesting deeper than
 * CONFIG_EXPAND_DEPTH or a value longer than CONFIG_VALUE_MAX leaves the
 * value unexpanded with one warning.
 *
 * Memory: strings returned by config_get*() belong to cfg and stay valid
 * until config_free(), even when config_set() invalidates the cache (old
 * expansions move to a list freed with cfg).
 *
 * Diagnostics: config_load adds what is wrong with the text (syntax, names,
 * values without $); config_check adds what can only be known after
 * expansion (values with $, table types, listeners, loops).  Neither
 * repeats the other's.
 */
#include "mail/config.h"
#include "mail/config_params.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Nesting of $name references before giving up (Postfix stops at 100). */
#define CONFIG_EXPAND_DEPTH 100
/* Longest expanded value: far above any real list, small enough that
 * a$a$a... chains cannot exhaust memory. */
#define CONFIG_VALUE_MAX (256u * 1024u)
/* Largest main.cf read by config_load. */
#define CONFIG_FILE_MAX (16u * 1024u * 1024u)
/* Names longer than this are never "close" to an implemented one. */
#define CONFIG_NAME_FUZZY_MAX 64

struct config_entry {
	char *raw;		/* set value; NULL when the default applies */
	char *file;		/* where it was set; NULL for config_set() */
	unsigned line;
	bool checked_at_load;	/* type validated (and reported) by load */
	bool expanding;		/* on the current expansion path: loop guard */
	bool expand_failed;
	bool warned;		/* expansion failure or bad value logged */
	char *expanded;		/* cache */
	char **list;		/* cache of config_get_list() */
};

/* A name facteur does not know, kept for $name references (Postfix lets
 * administrators define helper variables). */
struct config_var {
	char *name;
	struct config_entry e;
};

struct config {
	struct config_entry *params;	/* indexed like config_params[] */
	struct config_var *vars;
	size_t n_vars;
	/* Invalidated caches: callers may still hold them. */
	char **old_strings;
	size_t n_old_strings;
	char ***old_lists;
	size_t n_old_lists;
	char *file;		/* last file loaded, for diagnostics */
	char *hostname;		/* gethostname(), read once */
	bool in_check;		/* config_check reports instead of logging */
};

/* ---------------------------------------------------------------------- */
/* Parameter table index */

static size_t *config_sorted;	/* indexes of config_params sorted by name */

static int config_sorted_cmp(const void *a, const void *b)
{
	const size_t *ia = a, *ib = b;
	return strcmp(config_params[*ia].name, config_params[*ib].name);
}

static void config_index_init(void)
{
	if (config_sorted != NULL)
		return;
	config_sorted = xreallocarray(NULL, config_params_count, sizeof(size_t));
	for (size_t i = 0; i < config_params_count; i++)
		config_sorted[i] = i;
	qsort(config_sorted, config_params_count, sizeof(size_t), config_sorted_cmp);
}

/* Index in config_params of name, or -1. */
static long config_param_find(const char *name)
{
	config_index_init();
	size_t lo = 0, hi = config_params_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, config_params[config_sorted[mid]].name);
		if (c == 0)
			return (long)config_sorted[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

size_t config_param_count(void)
{
	return config_params_count;
}

const char *config_param_name(size_t i)
{
	config_index_init();
	if (i >= config_params_count)
		return NULL;
	return config_params[config_sorted[i]].name;
}

bool config_param_is_implemented(const char *name)
{
	long i = config_param_find(name);
	return i >= 0 && (config_params[i].flags & CONFIG_F_IMPLEMENTED) != 0;
}

/* ---------------------------------------------------------------------- */
/* Diagnostics */

void config_diags_init(struct config_diags *diags)
{
	diags->items = NULL;
	diags->count = 0;
	diags->n_errors = 0;
}

void config_diags_deinit(struct config_diags *diags)
{
	for (size_t i = 0; i < diags->count; i++) {
		free(diags->items[i].file);
		free(diags->items[i].message);
	}
	free(diags->items);
	config_diags_init(diags);
}

void config_diag_add(struct config_diags *diags, const char *file, unsigned line,
		     bool is_error, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	diags->items = xreallocarray(diags->items, diags->count + 1,
				     sizeof(*diags->items));
	struct config_diag *d = &diags->items[diags->count++];
	d->file = xstrdup(file != NULL ? file : "main.cf");
	d->line = line;
	d->is_error = is_error;
	d->message = buf_steal(&b);
	if (is_error)
		diags->n_errors++;
}

void config_diags_print(const struct config_diags *diags, int fd)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < diags->count; i++) {
		const struct config_diag *d = &diags->items[i];
		if (d->line > 0)
			buf_printf(&b, "%s:%u: ", d->file, d->line);
		else
			buf_printf(&b, "%s: ", d->file);
		buf_printf(&b, "%s%s\n", d->is_error ? "" : "warning: ", d->message);
	}
	if (b.len > 0 && fs_write_full(fd, b.data, b.len) < 0)
		log_warning("cannot write configuration diagnostics: %s",
			    strerror(errno));
	buf_deinit(&b);
}

struct config_diag_pos {
	struct config_diag d;
	size_t order;
};

static int config_diag_pos_cmp(const void *a, const void *b)
{
	const struct config_diag_pos *x = a, *y = b;
	if (x->d.line != y->d.line)
		return x->d.line < y->d.line ? -1 : 1;
	return x->order < y->order ? -1 : (x->order > y->order);
}

/* Sort diagnostics [from, count) by line, keeping the order of equal lines:
 * the syntax pass and the name/value pass each produce them in order. */
static void config_diags_sort_from(struct config_diags *diags, size_t from)
{
	size_t n = diags->count - from;
	if (n < 2)
		return;
	struct config_diag_pos *tmp = xreallocarray(NULL, n, sizeof(*tmp));
	for (size_t i = 0; i < n; i++) {
		tmp[i].d = diags->items[from + i];
		tmp[i].order = i;
	}
	qsort(tmp, n, sizeof(*tmp), config_diag_pos_cmp);
	for (size_t i = 0; i < n; i++)
		diags->items[from + i] = tmp[i].d;
	free(tmp);
}

/* ---------------------------------------------------------------------- */
/* Object */

struct config *config_new(void)
{
	config_index_init();
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	cfg->params = xcalloc(config_params_count, sizeof(*cfg->params));
	return cfg;
}

static void config_entry_drop_cache(struct config *cfg, struct config_entry *e)
{
	if (e->expanded != NULL) {
		cfg->old_strings = xreallocarray(cfg->old_strings, cfg->n_old_strings + 1,
						 sizeof(char *));
		cfg->old_strings[cfg->n_old_strings++] = e->expanded;
		e->expanded = NULL;
	}
	if (e->list != NULL) {
		cfg->old_lists = xreallocarray(cfg->old_lists, cfg->n_old_lists + 1,
					       sizeof(char **));
		cfg->old_lists[cfg->n_old_lists++] = e->list;
		e->list = NULL;
	}
	e->expand_failed = false;
	e->warned = false;
}

static void config_entry_deinit(struct config_entry *e)
{
	free(e->raw);
	free(e->file);
	free(e->expanded);
	str_list_free(&e->list);
}

void config_free(struct config **cfgp)
{
	struct config *cfg = *cfgp;
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < config_params_count; i++)
		config_entry_deinit(&cfg->params[i]);
	for (size_t i = 0; i < cfg->n_vars; i++) {
		free(cfg->vars[i].name);
		config_entry_deinit(&cfg->vars[i].e);
	}
	for (size_t i = 0; i < cfg->n_old_strings; i++)
		free(cfg->old_strings[i]);
	for (size_t i = 0; i < cfg->n_old_lists; i++)
		str_list_free(&cfg->old_lists[i]);
	free(cfg->old_strings);
	free(cfg->old_lists);
	free(cfg->params);
	free(cfg->vars);
	free(cfg->file);
	free(cfg->hostname);
	free(cfg);
	*cfgp = NULL;
}

/* Every expansion may depend on any value: a change drops all caches. */
static void config_invalidate(struct config *cfg)
{
	for (size_t i = 0; i < config_params_count; i++)
		config_entry_drop_cache(cfg, &cfg->params[i]);
	for (size_t i = 0; i < cfg->n_vars; i++)
		config_entry_drop_cache(cfg, &cfg->vars[i].e);
}

static struct config_var *config_var_find(struct config *cfg, const char *name, size_t len)
{
	for (size_t i = 0; i < cfg->n_vars; i++) {
		if (strlen(cfg->vars[i].name) == len &&
		    memcmp(cfg->vars[i].name, name, len) == 0)
			return &cfg->vars[i];
	}
	return NULL;
}

/* The entry of name (a parameter or a variable already set), or NULL. */
static struct config_entry *config_entry_find(struct config *cfg, const char *name,
					      size_t len, const struct config_param **param_r)
{
	char small[CONFIG_NAME_FUZZY_MAX * 2];
	*param_r = NULL;
	if (len < sizeof(small)) {
		memcpy(small, name, len);
		small[len] = '\0';
		long i = config_param_find(small);
		if (i >= 0) {
			*param_r = &config_params[i];
			return &cfg->params[i];
		}
	}
	struct config_var *v = config_var_find(cfg, name, len);
	return v != NULL ? &v->e : NULL;
}

static void config_entry_store(struct config_entry *e, const char *value,
			       const char *file, unsigned line)
{
	free(e->raw);
	free(e->file);
	e->raw = xstrdup(value);
	e->file = file != NULL ? xstrdup(file) : NULL;
	e->line = line;
	e->checked_at_load = false;
}

static struct config_entry *config_set_entry(struct config *cfg, const char *name,
					     const char *value, const char *file,
					     unsigned line)
{
	const struct config_param *p;
	struct config_entry *e = config_entry_find(cfg, name, strlen(name), &p);
	if (e == NULL) {
		cfg->vars = xreallocarray(cfg->vars, cfg->n_vars + 1, sizeof(*cfg->vars));
		struct config_var *v = &cfg->vars[cfg->n_vars++];
		memset(v, 0, sizeof(*v));
		v->name = xstrdup(name);
		e = &v->e;
	}
	config_entry_store(e, value, file, line);
	return e;
}

void config_set(struct config *cfg, const char *name, const char *value)
{
	config_invalidate(cfg);
	(void)config_set_entry(cfg, name, value, NULL, 0);
}

/* ---------------------------------------------------------------------- */
/* Expansion */

static bool config_is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_';
}

static int config_entry_expand(struct config *cfg, struct config_entry *e,
			       const struct config_param *p, const char *name,
			       unsigned depth, const char **value_r);
static int config_expand(struct config *cfg, const char *text, size_t len,
			 struct buf *out, unsigned depth);

/* Expanded value of $name: "" for a name neither set nor known (Postfix). */
static int config_lookup(struct config *cfg, const char *name, size_t len,
			 unsigned depth, const char **value_r)
{
	const struct config_param *p;
	struct config_entry *e = config_entry_find(cfg, name, len, &p);
	if (e == NULL || (p != NULL && e->raw == NULL && p->def == NULL &&
			  (p->flags & CONFIG_F_COMPUTED) == 0)) {
		*value_r = "";
		return 0;
	}
	return config_entry_expand(cfg, e, p, p != NULL ? p->name : NULL, depth, value_r);
}

/* Offset of the bracket closing the one just before text[0], or len. */
static size_t config_find_close(const char *text, size_t len, char open, char close)
{
	unsigned level = 1;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == open)
			level++;
		else if (text[i] == close && --level == 0)
			return i;
	}
	return len;
}

/* Expand text[0..len) into out.  Returns 0, or -1 on a loop, too deep a
 * nesting, too long a result or an unclosed ${ / $( (the caller then uses
 * the text unexpanded). */
static int config_expand(struct config *cfg, const char *text, size_t len,
			 struct buf *out, unsigned depth)
{
	if (depth > CONFIG_EXPAND_DEPTH)
		return -1;
	size_t i = 0;
	while (i < len) {
		if (out->len > CONFIG_VALUE_MAX)
			return -1;
		const char *dollar = memchr(text + i, '$', len - i);
		if (dollar == NULL) {
			buf_append(out, text + i, len - i);
			break;
		}
		size_t d = (size_t)(dollar - text);
		buf_append(out, text + i, d - i);
		i = d + 1;
		if (i < len && text[i] == '$') {	/* $$ is a literal $ */
			buf_append_char(out, '$');
			i++;
			continue;
		}
		if (i < len && (text[i] == '{' || text[i] == '(')) {
			char open = text[i], close = open == '{' ? '}' : ')';
			size_t start = i + 1;
			size_t end = start + config_find_close(text + start, len - start,
							       open, close);
			if (end >= len)
				return -1;	/* unclosed */
			size_t n = start;
			while (n < end && config_is_name_char(text[n]))
				n++;
			if (n == start)
				return -1;	/* ${} or ${?x} */
			const char *value;
			if (config_lookup(cfg, text + start, n - start, depth + 1, &value) < 0)
				return -1;
			if (n == end) {
				buf_append_str(out, value);
			} else if (text[n] == '?' || text[n] == ':') {
				/* ${name?text}: text when name is not empty;
				 * ${name:text}: text when name is empty. */
				bool take = (text[n] == '?') == (value[0] != '\0');
				if (take && config_expand(cfg, text + n + 1, end - n - 1,
							  out, depth + 1) < 0)
					return -1;
			} else {
				return -1;
			}
			i = end + 1;
			continue;
		}
		size_t n = i;
		while (n < len && config_is_name_char(text[n]))
			n++;
		if (n == i) {
			/* A lone '$' (end of text, "$ ", "$-"): kept as is. */
			buf_append_char(out, '$');
			continue;
		}
		const char *value;
		if (config_lookup(cfg, text + i, n - i, depth + 1, &value) < 0)
			return -1;
		buf_append_str(out, value);
		i = n;
	}
	return out->len > CONFIG_VALUE_MAX ? -1 : 0;
}

static const char *config_hostname(struct config *cfg)
{
	if (cfg->hostname == NULL) {
		char h[256];
		if (gethostname(h, sizeof(h)) < 0 || h[0] == '\0') {
			log_warning("gethostname: %s; using localhost", strerror(errno));
			str_copy(h, sizeof(h), "localhost");
		}
		h[sizeof(h) - 1] = '\0';
		cfg->hostname = xstrdup(h);
	}
	return cfg->hostname;
}

/* Computed defaults, as Postfix's mail_params.c: myhostname is the host
 * name, completed with $mydomain (if set) or "localdomain" when it has no
 * dot; mydomain is myhostname minus its first label unless that would leave
 * a top-level domain alone, then "localdomain". */
static int config_computed_default(struct config *cfg, const char *name,
				   unsigned depth, struct buf *out)
{
	if (strcmp(name, "myhostname") == 0) {
		const char *h = config_hostname(cfg);
		buf_append_str(out, h);
		if (strchr(h, '.') == NULL) {
			const struct config_param *p;
			struct config_entry *e = config_entry_find(cfg, "mydomain", 8, &p);
			const char *domain = "localdomain";
			if (e != NULL && e->raw != NULL &&
			    config_entry_expand(cfg, e, p, "mydomain", depth + 1, &domain) < 0)
				return -1;
			buf_printf(out, ".%s", domain);
		}
		return 0;
	}
	if (strcmp(name, "mydomain") == 0) {
		const char *h;
		if (config_lookup(cfg, "myhostname", 10, depth + 1, &h) < 0)
			return -1;
		const char *dot = strchr(h, '.');
		if (dot != NULL && strchr(dot + 1, '.') != NULL)
			buf_append_str(out, dot + 1);
		else
			buf_append_str(out, "localdomain");
		return 0;
	}
	log_panic("config: no computed default for %s", name);
}

/* "file:line" where e was set, for log lines ("main.cf" when set by
 * config_set or never set). */
static const char *config_entry_where(const struct config_entry *e, struct buf *b)
{
	buf_reset(b);
	buf_append_str(b, e->file != NULL ? e->file : "main.cf");
	if (e->line > 0)
		buf_printf(b, ":%u", e->line);
	return buf_cstr(b);
}

static const char *config_entry_raw(const struct config_entry *e,
				    const struct config_param *p)
{
	if (e->raw != NULL)
		return e->raw;
	if (p != NULL && p->def != NULL)
		return p->def;
	return "";
}

static int config_entry_expand(struct config *cfg, struct config_entry *e,
			       const struct config_param *p, const char *name,
			       unsigned depth, const char **value_r)
{
	if (e->expanded != NULL) {
		*value_r = e->expanded;
		return e->expand_failed ? -1 : 0;
	}
	if (e->expanding || depth > CONFIG_EXPAND_DEPTH)
		return -1;	/* loop: the caller is on the path */
	struct buf b = BUF_INIT;
	const char *raw = config_entry_raw(e, p);
	int ret;
	e->expanding = true;
	if (e->raw == NULL && p != NULL && (p->flags & CONFIG_F_COMPUTED) != 0)
		ret = config_computed_default(cfg, p->name, depth, &b);
	else
		ret = config_expand(cfg, raw, strlen(raw), &b, depth);
	e->expanding = false;
	if (ret < 0) {
		buf_deinit(&b);
		e->expanded = xstrdup(raw);
		e->expand_failed = true;
		if (!e->warned && !cfg->in_check) {
			e->warned = true;
			if (name == NULL && p == NULL)
				name = ((struct config_var *)(void *)((char *)e -
					offsetof(struct config_var, e)))->name;
			struct buf where = BUF_INIT;
			log_warning("%s: parameter '%s': $name expansion loops, nests "
				    "too deep or is unbalanced; value used unexpanded",
				    config_entry_where(e, &where), name);
			buf_deinit(&where);
		}
	} else {
		e->expanded = buf_steal(&b);
	}
	*value_r = e->expanded;
	return ret;
}

const char *config_get(struct config *cfg, const char *name)
{
	const struct config_param *p;
	struct config_entry *e = config_entry_find(cfg, name, strlen(name), &p);
	if (e == NULL)
		return NULL;
	const char *value;
	(void)config_entry_expand(cfg, e, p, name, 0, &value);
	return value;
}

const char *config_get_raw(struct config *cfg, const char *name)
{
	const struct config_param *p;
	struct config_entry *e = config_entry_find(cfg, name, strlen(name), &p);
	if (e == NULL)
		return NULL;
	if (e->raw == NULL && p != NULL && (p->flags & CONFIG_F_COMPUTED) != 0)
		return config_get(cfg, name);	/* no $ in a computed value */
	return config_entry_raw(e, p);
}

/* ---------------------------------------------------------------------- */
/* Types */

int config_parse_time(const char *value, char default_unit, long *seconds_r)
{
	uint64_t n = 0;
	const char *p = value;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(*p - '0'), &n))
			return -1;
	}
	char unit = *p != '\0' ? *p++ : default_unit;
	if (*p != '\0')
		return -1;
	uint64_t mult;
	switch (unit) {
	case 's': mult = 1; break;
	case 'm': mult = 60; break;
	case 'h': mult = 3600; break;
	case 'd': mult = 86400; break;
	case 'w': mult = 604800; break;
	default: return -1;
	}
	if (__builtin_mul_overflow(n, mult, &n) || n > (uint64_t)LONG_MAX)
		return -1;
	*seconds_r = (long)n;
	return 0;
}

static int config_parse_bool(const char *value, bool *bool_r)
{
	if (str_casecmp(value, "yes") == 0 || str_casecmp(value, "true") == 0) {
		*bool_r = true;
		return 0;
	}
	if (str_casecmp(value, "no") == 0 || str_casecmp(value, "false") == 0) {
		*bool_r = false;
		return 0;
	}
	return -1;
}

/* Whole decimal number, optionally negative, in [min, max]. */
static int config_parse_int(const char *value, long long min, long long max,
			    long long *int_r)
{
	bool neg = value[0] == '-';
	uint64_t u;
	if (str_to_u64(value + (neg ? 1 : 0), 0, (uint64_t)LLONG_MAX, &u) < 0)
		return -1;
	long long v = neg ? -(long long)u : (long long)u;
	if (v < min || v > max)
		return -1;
	*int_r = v;
	return 0;
}

static bool config_choice_ok(const char *choices, const char *value)
{
	size_t n = strlen(value);
	const char *p = choices;
	for (;;) {
		const char *bar = strchr(p, '|');
		size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);
		if (len == n && strncmp(p, value, n) == 0)
			return true;
		if (bar == NULL)
			return false;
		p = bar + 1;
	}
}

static const char *config_unit_name(char unit)
{
	switch (unit) {
	case 's': return "seconds";
	case 'm': return "minutes";
	case 'h': return "hours";
	case 'd': return "days";
	default: return "weeks";
	}
}

/* 0 when value fits the type of p; else -1 with what was expected in why. */
static int config_value_validate(const struct config_param *p, const char *value,
				 struct buf *why)
{
	bool b;
	long long i;
	long t;
	switch (p->type) {
	case CONFIG_T_BOOL:
		if (config_parse_bool(value, &b) == 0)
			return 0;
		buf_append_str(why, "expected yes or no");
		return -1;
	case CONFIG_T_INT:
		if (config_parse_int(value, p->min, p->max, &i) == 0)
			return 0;
		buf_printf(why, "expected a whole number from %lld to %lld", p->min, p->max);
		return -1;
	case CONFIG_T_TIME:
		if (config_parse_time(value, p->unit, &t) < 0) {
			buf_printf(why, "expected a time: a number with an optional unit "
				   "s, m, h, d or w (a bare number is in %s)",
				   config_unit_name(p->unit));
			return -1;
		}
		if (t < p->min || t > p->max) {
			buf_printf(why, "expected a time from %llds to %llds", p->min, p->max);
			return -1;
		}
		return 0;
	case CONFIG_T_SIZE:
		if (config_parse_int(value, p->min, p->max, &i) == 0)
			return 0;
		buf_printf(why, "expected a size in bytes (a whole number, no unit) "
			   "from %lld to %lld", p->min, p->max);
		return -1;
	case CONFIG_T_STR:
		if (p->choices == NULL || config_choice_ok(p->choices, value))
			return 0;
		buf_append_str(why, "expected one of ");
		for (const char *c = p->choices; *c != '\0'; c++) {
			if (*c == '|')
				buf_append_str(why, c == p->choices ? "(empty), " : ", ");
			else
				buf_append_char(why, *c);
		}
		return -1;
	case CONFIG_T_LIST:
		return 0;
	}
	return 0;
}

/* Value of a typed parameter, falling back to the default (with one
 * warning) when the configured value does not parse: config_check reports
 * it; a running role must not crash on it. */
static const char *config_get_typed(struct config *cfg, const char *name,
				    enum config_type type,
				    const struct config_param **param_r,
				    struct config_entry **entry_r)
{
	long i = config_param_find(name);
	if (i < 0 || (config_params[i].flags & CONFIG_F_IMPLEMENTED) == 0)
		log_panic("config: '%s' is not an implemented parameter", name);
	const struct config_param *p = &config_params[i];
	if (p->type != type)
		log_panic("config: parameter '%s' read with the wrong type", name);
	*param_r = p;
	*entry_r = &cfg->params[i];
	return config_get(cfg, name);
}

static void config_bad_value_warn(struct config_entry *e, const struct config_param *p,
				  const char *value)
{
	if (e->warned)
		return;
	e->warned = true;
	struct buf where = BUF_INIT;
	log_warning("%s: bad value '%s' for parameter '%s'; using the default '%s'",
		    config_entry_where(e, &where), value, p->name,
		    p->def != NULL ? p->def : "");
	buf_deinit(&where);
}

bool config_get_bool(struct config *cfg, const char *name)
{
	const struct config_param *p;
	struct config_entry *e;
	const char *v = config_get_typed(cfg, name, CONFIG_T_BOOL, &p, &e);
	bool b = false;
	if (config_parse_bool(v, &b) < 0) {
		config_bad_value_warn(e, p, v);
		(void)config_parse_bool(p->def, &b);
	}
	return b;
}

long config_get_int(struct config *cfg, const char *name)
{
	const struct config_param *p;
	struct config_entry *e;
	const char *v = config_get_typed(cfg, name, CONFIG_T_INT, &p, &e);
	long long i = 0;
	if (config_parse_int(v, p->min, p->max, &i) < 0) {
		config_bad_value_warn(e, p, v);
		(void)config_parse_int(p->def, p->min, p->max, &i);
	}
	return (long)i;
}

long config_get_time(struct config *cfg, const char *name)
{
	const struct config_param *p;
	struct config_entry *e;
	const char *v = config_get_typed(cfg, name, CONFIG_T_TIME, &p, &e);
	long t = 0;
	if (config_parse_time(v, p->unit, &t) < 0 || t < p->min || t > p->max) {
		config_bad_value_warn(e, p, v);
		if (config_parse_time(p->def, p->unit, &t) < 0)
			t = 0;
	}
	return t;
}

uint64_t config_get_size(struct config *cfg, const char *name)
{
	const struct config_param *p;
	struct config_entry *e;
	const char *v = config_get_typed(cfg, name, CONFIG_T_SIZE, &p, &e);
	long long i = 0;
	if (config_parse_int(v, p->min, p->max, &i) < 0) {
		config_bad_value_warn(e, p, v);
		(void)config_parse_int(p->def, p->min, p->max, &i);
	}
	return (uint64_t)i;
}

char **config_get_list(struct config *cfg, const char *name)
{
	const struct config_param *p;
	struct config_entry *e;
	const char *v = config_get_typed(cfg, name, CONFIG_T_LIST, &p, &e);
	if (e->list == NULL)
		(void)str_list_split(v, &e->list);
	return e->list;
}

/* ---------------------------------------------------------------------- */
/* Parsing */

struct config_setting {
	char *name;
	char *value;
	unsigned line;
};

struct config_parse {
	const char *file;
	struct config_diags *diags;
	struct config_setting *settings;
	size_t n_settings;
	struct buf logical;	/* current logical line */
	unsigned logical_line;	/* its first physical line; 0 = none */
	bool logical_ignored;	/* indented text with nothing to continue */
};

static bool config_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static struct strv config_trim(const char *p, size_t n)
{
	while (n > 0 && config_is_space(*p)) {
		p++;
		n--;
	}
	while (n > 0 && config_is_space(p[n - 1]))
		n--;
	return strv_make(p, n);
}

static bool config_name_ok(struct strv name)
{
	if (name.len == 0)
		return false;
	for (size_t i = 0; i < name.len; i++) {
		if (!config_is_name_char(name.ptr[i]))
			return false;
	}
	return true;
}

/* The name part of the current logical line, for messages. */
static struct strv config_logical_name(const struct config_parse *ps)
{
	const char *text = buf_cstr(&ps->logical);
	const char *eq = memchr(text, '=', ps->logical.len);
	return config_trim(text, eq != NULL ? (size_t)(eq - text) : ps->logical.len);
}

static void config_logical_end(struct config_parse *ps)
{
	if (ps->logical_line == 0)
		return;
	const char *text = buf_cstr(&ps->logical);
	const char *eq = memchr(text, '=', ps->logical.len);
	/* A logical line always starts with a line holding '='. */
	struct strv name = config_trim(text, (size_t)(eq - text));
	struct strv value = config_trim(eq + 1, ps->logical.len - (size_t)(eq + 1 - text));
	if (!config_name_ok(name)) {
		config_diag_add(ps->diags, ps->file, ps->logical_line, true,
				"bad parameter name '%.*s'%s", (int)name.len, name.ptr,
				memchr(name.ptr, '/', name.len) != NULL
				? " (service/name settings belong in master.cf, "
				  "which facteur does not read)" : "");
	} else {
		ps->settings = xreallocarray(ps->settings, ps->n_settings + 1,
					     sizeof(*ps->settings));
		struct config_setting *s = &ps->settings[ps->n_settings++];
		s->name = strv_dup(name);
		s->value = strv_dup(value);
		s->line = ps->logical_line;
	}
	buf_reset(&ps->logical);
	ps->logical_line = 0;
}

static void config_parse_line(struct config_parse *ps, const char *line, size_t len,
			      unsigned line_no)
{
	struct strv t = config_trim(line, len);
	if (t.len == 0 || t.ptr[0] == '#')
		return;		/* blank or comment: ignored, even inside a logical line */
	if (memchr(line, '\0', len) != NULL) {
		config_diag_add(ps->diags, ps->file, line_no, true,
				"NUL character in line; line ignored");
		return;
	}
	if (config_is_space(line[0])) {
		if (ps->logical_line != 0) {
			buf_append_char(&ps->logical, ' ');
			buf_append(&ps->logical, t.ptr, t.len);
		} else if (!ps->logical_ignored) {
			ps->logical_ignored = true;
			config_diag_add(ps->diags, ps->file, line_no, false,
					"indented line does not continue a parameter; ignored");
		}
		return;
	}
	if (memchr(t.ptr, '=', t.len) == NULL) {
		if (ps->logical_line != 0) {
			struct strv name = config_logical_name(ps);
			config_diag_add(ps->diags, ps->file, line_no, false,
					"line without '=': taken as a continuation of "
					"'%.*s' (indent it)", (int)name.len, name.ptr);
			buf_append_char(&ps->logical, ' ');
			buf_append(&ps->logical, t.ptr, t.len);
		} else {
			config_diag_add(ps->diags, ps->file, line_no, true,
					"line without '=': expected 'name = value'");
			ps->logical_ignored = true;
		}
		return;
	}
	config_logical_end(ps);
	ps->logical_ignored = false;
	buf_append(&ps->logical, t.ptr, t.len);
	ps->logical_line = line_no;
}

/* Optimal string alignment distance (Damerau-Levenshtein restricted to
 * adjacent transpositions): catches "mydestinaton", "mydomian". */
static size_t config_name_distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	static size_t d[CONFIG_NAME_FUZZY_MAX + 1][CONFIG_NAME_FUZZY_MAX + 1];
	if (n > CONFIG_NAME_FUZZY_MAX || m > CONFIG_NAME_FUZZY_MAX)
		return SIZE_MAX;
	for (size_t i = 0; i <= n; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= m; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= n; i++) {
		for (size_t j = 1; j <= m; j++) {
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[n][m];
}

/* The implemented parameter name closest to name within distance 2. */
static const char *config_name_suggest(const char *name)
{
	const char *best = NULL;
	size_t best_d = 3;
	if (strlen(name) < 6)
		return NULL;
	for (size_t i = 0; i < config_params_count; i++) {
		if ((config_params[i].flags & CONFIG_F_IMPLEMENTED) == 0)
			continue;
		/* The distance is at least the difference in length. */
		size_t n = strlen(name), m = strlen(config_params[i].name);
		if ((n > m ? n - m : m - n) >= best_d)
			continue;
		size_t dist = config_name_distance(name, config_params[i].name);
		if (dist < best_d) {
			best_d = dist;
			best = config_params[i].name;
		}
	}
	return best;
}

/* True when text references name as $name, ${name...} or $(name...). */
static bool config_text_references(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = strchr(text, '$'); p != NULL; p = strchr(p, '$')) {
		p++;
		if (*p == '$') {
			p++;
			continue;
		}
		if (*p == '{' || *p == '(')
			p++;
		const char *start = p;
		while (config_is_name_char(*p))
			p++;
		if ((size_t)(p - start) == n && memcmp(start, name, n) == 0)
			return true;
	}
	return false;
}

static bool config_name_referenced(struct config *cfg, const struct config_parse *ps,
				   const char *name)
{
	for (size_t i = 0; i < ps->n_settings; i++) {
		if (strcmp(ps->settings[i].name, name) != 0 &&
		    config_text_references(ps->settings[i].value, name))
			return true;
	}
	for (size_t i = 0; i < config_params_count; i++) {
		if (cfg->params[i].raw != NULL &&
		    config_text_references(cfg->params[i].raw, name))
			return true;
	}
	for (size_t i = 0; i < cfg->n_vars; i++) {
		if (strcmp(cfg->vars[i].name, name) != 0 &&
		    config_text_references(cfg->vars[i].e.raw, name))
			return true;
	}
	return false;
}

static void config_setting_apply(struct config *cfg, struct config_parse *ps,
				 const struct config_setting *s)
{
	long i = config_param_find(s->name);
	if (i < 0) {
		/* Unknown: a helper variable when something uses it (Postfix
		 * allows them), else most likely a typo. */
		if (!config_name_referenced(cfg, ps, s->name)) {
			const char *suggest = config_name_suggest(s->name);
			if (suggest != NULL)
				config_diag_add(ps->diags, ps->file, s->line, true,
						"unknown parameter '%s' (did you mean '%s'?)",
						s->name, suggest);
			else
				config_diag_add(ps->diags, ps->file, s->line, false,
						"unknown parameter '%s'; ignored", s->name);
		}
		(void)config_set_entry(cfg, s->name, s->value, ps->file, s->line);
		return;
	}
	const struct config_param *p = &config_params[i];
	struct config_entry *e = config_set_entry(cfg, s->name, s->value, ps->file, s->line);
	if ((p->flags & CONFIG_F_IMPLEMENTED) == 0) {
		config_diag_add(ps->diags, ps->file, s->line, false,
				"Postfix parameter '%s' is not implemented by facteur yet; "
				"ignored", s->name);
		return;
	}
	/* A value with $name is validated by config_check, once expanded. */
	if (strchr(s->value, '$') != NULL)
		return;
	struct buf why = BUF_INIT;
	if (config_value_validate(p, s->value, &why) < 0)
		config_diag_add(ps->diags, ps->file, s->line, true,
				"bad value '%s' for parameter '%s': %s",
				s->value, s->name, buf_cstr(&why));
	buf_deinit(&why);
	e->checked_at_load = true;
}

int config_load_text(struct config *cfg, const char *file, const char *text,
		     size_t len, struct config_diags *diags)
{
	struct config_parse ps;
	memset(&ps, 0, sizeof(ps));
	ps.file = file;
	ps.diags = diags;
	size_t first_diag = diags->count, first_errors = diags->n_errors;

	free(cfg->file);
	cfg->file = xstrdup(file);
	config_invalidate(cfg);

	unsigned line_no = 0;
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - text) : len;
		if (line_no < UINT_MAX)
			line_no++;
		config_parse_line(&ps, text + pos, end - pos, line_no);
		pos = end + 1;
	}
	config_logical_end(&ps);
	buf_deinit(&ps.logical);

	for (size_t i = 0; i < ps.n_settings; i++)
		config_setting_apply(cfg, &ps, &ps.settings[i]);
	for (size_t i = 0; i < ps.n_settings; i++) {
		free(ps.settings[i].name);
		free(ps.settings[i].value);
	}
	free(ps.settings);
	config_diags_sort_from(diags, first_diag);
	return diags->n_errors > first_errors ? -1 : 0;
}

int config_load(struct config *cfg, const char *config_dir, struct config_diags *diags)
{
	struct buf path = BUF_INIT, text = BUF_INIT;
	buf_printf(&path, "%s/main.cf", config_dir);
	int ret = 0;
	if (fs_read_file(buf_cstr(&path), CONFIG_FILE_MAX, &text) < 0) {
		if (errno != ENOENT) {
			config_diag_add(diags, buf_cstr(&path), 0, true,
					"cannot read: %s", strerror(errno));
			ret = -1;
		}
		/* A missing main.cf means all defaults. */
	} else {
		ret = config_load_text(cfg, buf_cstr(&path), (const char *)text.data,
				       text.len, diags);
	}
	buf_deinit(&path);
	buf_deinit(&text);
	return ret;
}

const char *config_dir_default(void)
{
	const char *dir = getenv("FACTEUR_CONFIG");
	return dir != NULL && dir[0] != '\0' ? dir : "/etc/facteur";
}

/* ---------------------------------------------------------------------- */
/* Checks */

/* "type:name" with a table type facteur has (the table module opens it). */
static int config_table_check(const char *item, struct buf *why)
{
	static const char *const types[] = {
		"hash", "lmdb", "texthash", "inline", "static", "regexp", "pcre",
	};
	const char *s = item;
	if (strncmp(s, "proxy:", 6) == 0)
		s += 6;		/* proxymap is transparent for facteur */
	if (strcmp(s, "unix:passwd.byname") == 0)
		return 0;	/* the system users (getpwnam) */
	const char *colon = strchr(s, ':');
	if (colon == NULL) {
		buf_printf(why, "'%s' has no table type (expected type:name, "
			   "e.g. hash:/etc/aliases)", item);
		return -1;
	}
	size_t tlen = (size_t)(colon - s);
	bool known = false;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strlen(types[i]) == tlen && memcmp(types[i], s, tlen) == 0)
			known = true;
	}
	if (!known) {
		buf_printf(why, "unsupported table type '%.*s' in '%s' (facteur has "
			   "hash, lmdb, texthash, inline, static, regexp, pcre and "
			   "unix:passwd.byname)", (int)tlen, s, item);
		return -1;
	}
	const char *rest = colon + 1;
	if (rest[0] == '\0') {
		buf_printf(why, "'%s' has no table name", item);
		return -1;
	}
	if (tlen == 6 && memcmp(s, "inline", 6) == 0 &&
	    (rest[0] != '{' || rest[strlen(rest) - 1] != '}')) {
		buf_printf(why, "'%s': inline tables are written inline:{ key=value, ... }",
			   item);
		return -1;
	}
	return 0;
}

/* "address:port", "[ipv6]:port"; address "all", "localhost" or an IPv4
 * literal. */
static int config_listener_check(const char *item, struct buf *why)
{
	char addr[INET6_ADDRSTRLEN + 8];
	const char *port;
	uint8_t bin[16];
	if (item[0] == '[') {
		const char *close = strchr(item, ']');
		size_t n = close != NULL ? (size_t)(close - item - 1) : 0;
		if (close == NULL || close[1] != ':' || n == 0 || n >= sizeof(addr)) {
			buf_printf(why, "bad listener '%s' (expected [ipv6]:port)", item);
			return -1;
		}
		memcpy(addr, item + 1, n);
		addr[n] = '\0';
		if (inet_pton(AF_INET6, addr, bin) != 1) {
			buf_printf(why, "bad IPv6 address in listener '%s'", item);
			return -1;
		}
		port = close + 2;
	} else {
		const char *colon = strrchr(item, ':');
		size_t n = colon != NULL ? (size_t)(colon - item) : 0;
		if (colon == NULL || n == 0 || n >= sizeof(addr) ||
		    memchr(item, ':', n) != NULL) {
			buf_printf(why, "bad listener '%s' (expected address:port or "
				   "[ipv6]:port)", item);
			return -1;
		}
		memcpy(addr, item, n);
		addr[n] = '\0';
		if (strcmp(addr, "all") != 0 && strcmp(addr, "localhost") != 0 &&
		    inet_pton(AF_INET, addr, bin) != 1) {
			buf_printf(why, "bad address '%s' in listener '%s' (expected an "
				   "IPv4 address, [ipv6], all or localhost)", addr, item);
			return -1;
		}
		port = colon + 1;
	}
	uint64_t p;
	if (str_to_u64(port, 1, 65535, &p) < 0) {
		buf_printf(why, "bad port '%s' in listener '%s' (expected 1 to 65535)",
			   port, item);
		return -1;
	}
	return 0;
}

/* The default listener text: "$inet_interfaces" on a port; the master maps
 * "all" and lists of interfaces, so it is not checked item by item. */
static bool config_listener_is_inet_default(const char *raw)
{
	static const char *const forms[] = {
		"$inet_interfaces:", "${inet_interfaces}:", "$(inet_interfaces):",
	};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		size_t n = strlen(forms[i]);
		uint64_t port;
		if (strncmp(raw, forms[i], n) == 0 &&
		    str_to_u64(raw + n, 1, 65535, &port) == 0)
			return true;
	}
	return false;
}

static void config_check_param(struct config *cfg, size_t idx, struct config_diags *diags)
{
	const struct config_param *p = &config_params[idx];
	struct config_entry *e = &cfg->params[idx];
	const char *file = e->file != NULL ? e->file : cfg->file;
	const char *value;
	if (config_entry_expand(cfg, e, p, p->name, 0, &value) < 0) {
		config_diag_add(diags, file, e->line, true,
				"parameter '%s': $name expansion loops, nests too deep "
				"or is unbalanced in '%s'", p->name, e->raw);
		return;
	}
	struct buf why = BUF_INIT;
	if (!e->checked_at_load && config_value_validate(p, value, &why) < 0) {
		if (strcmp(value, e->raw) != 0)
			config_diag_add(diags, file, e->line, true,
					"bad value '%s' (from '%s') for parameter '%s': %s",
					value, e->raw, p->name, buf_cstr(&why));
		else
			config_diag_add(diags, file, e->line, true,
					"bad value '%s' for parameter '%s': %s",
					value, p->name, buf_cstr(&why));
	}
	bool tables = (p->flags & CONFIG_F_TABLES) != 0;
	bool listener = (p->flags & CONFIG_F_LISTENER) != 0 &&
			!config_listener_is_inet_default(e->raw);
	if (tables || listener) {
		char **items;
		(void)str_list_split(value, &items);
		for (char **it = items; *it != NULL; it++) {
			buf_reset(&why);
			int r = tables ? config_table_check(*it, &why)
				       : config_listener_check(*it, &why);
			if (r < 0)
				config_diag_add(diags, file, e->line, true,
						"parameter '%s': %s", p->name, buf_cstr(&why));
		}
		str_list_free(&items);
	}
	buf_deinit(&why);
}

int config_check(struct config *cfg, struct config_diags *diags)
{
	size_t first_errors = diags->n_errors, first_diag = diags->count;
	cfg->in_check = true;
	/* Only values set in main.cf (or by config_set) can be wrong: the
	 * defaults are valid, and a default that refers to a bad value is
	 * reported where that value is set. */
	for (size_t i = 0; i < config_params_count; i++) {
		size_t idx = config_sorted[i];
		if ((config_params[idx].flags & CONFIG_F_IMPLEMENTED) != 0 &&
		    cfg->params[idx].raw != NULL)
			config_check_param(cfg, idx, diags);
	}
	cfg->in_check = false;
	config_diags_sort_from(diags, first_diag);
	return diags->n_errors > first_errors ? -1 : 0;
}

/* ---------------------------------------------------------------------- */
/* Dump */

static int config_var_cmp(const void *a, const void *b)
{
	const struct config_var *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

void config_dump(struct config *cfg, int fd, bool only_non_default)
{
	struct buf out = BUF_INIT;
	for (size_t i = 0; i < config_params_count; i++) {
		size_t idx = config_sorted[i];
		const struct config_param *p = &config_params[idx];
		bool set = cfg->params[idx].raw != NULL;
		if (only_non_default ? !set
				     : !set && (p->flags & CONFIG_F_IMPLEMENTED) == 0)
			continue;
		buf_printf(&out, "%s = %s\n", p->name, config_get(cfg, p->name));
	}
	if (cfg->n_vars > 0) {
		struct config_var **vars = xreallocarray(NULL, cfg->n_vars, sizeof(*vars));
		for (size_t i = 0; i < cfg->n_vars; i++)
			vars[i] = &cfg->vars[i];
		qsort(vars, cfg->n_vars, sizeof(*vars), config_var_cmp);
		for (size_t i = 0; i < cfg->n_vars; i++)
			buf_printf(&out, "%s = %s\n", vars[i]->name,
				   config_get(cfg, vars[i]->name));
		free(vars);
	}
	if (out.len > 0 && fs_write_full(fd, out.data, out.len) < 0)
		log_warning("cannot write the configuration: %s", strerror(errno));
	buf_deinit(&out);
}

unsigned config_param_line(struct config *cfg, const char *name)
{
	const struct config_param *p;
	struct config_entry *e = config_entry_find(cfg, name, strlen(name), &p);
	return e != NULL && e->raw != NULL ? e->line : 0;
}
