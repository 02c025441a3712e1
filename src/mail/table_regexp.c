/* table_regexp.c - regexp: (POSIX regcomp) and pcre: (PCRE2) tables, with
 * the syntax of Postfix's regexp_table(5) and pcre_table(5):
 *
 *   /pattern/flags result        first matching rule wins
 *   !/pattern/flags result       rule applies when the pattern does NOT match
 *   if /pattern/flags            rules up to the matching endif apply only
 *   endif                        when the key matches (if !/.../: when not)
 *
 * The delimiter is the first character of the pattern and may be any
 * character that is not a letter, digit, white space or backslash ("|"
 * is handy for patterns full of '/'; "#" only after a '!', since a line
 * starting with '#' is a comment, as in Postfix).  A backslash hides the next character
 * from the delimiter search and stays in the pattern, as in Postfix.
 * Lines starting with white space continue the previous line; '#' lines
 * and blank lines are comments.
 *
 * Flags: regexp: i (toggle case-insensitivity, on by default), x (toggle
 * extended syntax, on by default), m (toggle REG_NEWLINE).  pcre: i (on by
 * default), m, s, x, A, E, U, and X which Postfix ignores with PCRE2.
 *
 * The result may use $1..$9 (any group number up to the pattern's count,
 * $0 is the whole match), ${n}, $(n) and $$ for a literal '$'; a group
 * that did not take part in the match expands to nothing.  A reference to
 * a missing group, or any reference in a negated rule, is an error when
 * the table is opened, as in Postfix.
 *
 * We are stricter than Postfix in one way: Postfix logs a warning and skips
 * a bad line, we refuse to open the table (table_open returns NULL with
 * "file:line: message") so that `facteur check` fails loudly instead of a
 * header_checks rule silently doing nothing.
 *
 * PCRE2 runs with a match limit; a match that exceeds it (or another
 * matcher error) is logged and the rule is skipped, as Postfix does, so
 * that one pathological header cannot defer all mail.
 */
#include "mail/config.h"
#include "mail/table.h"
#include "mail/table_int.h"

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <pcre2.h>
#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Highest $n accepted in a result. */
#define TABLE_RE_MAX_REF 99
#define TABLE_PCRE_MATCH_LIMIT 1000000
#define TABLE_PCRE_DEPTH_LIMIT 10000

enum table_re_kind {
	TABLE_RE_MATCH,
	TABLE_RE_IF,
	TABLE_RE_ENDIF,
};

struct table_re_rule {
	enum table_re_kind kind;
	bool negate;
	unsigned line;
	bool has_regex;
	regex_t regex;
	pcre2_code *pcre;
	pcre2_match_data *md;
	char *result;	/* TABLE_RE_MATCH */
	size_t endif;	/* TABLE_RE_IF: index of the matching endif */
	unsigned max_ref; /* highest $n in result */
};

struct table_re {
	bool is_pcre;
	char *path;
	struct config_diags *diags;
	struct table_re_rule *rules;
	size_t count;
	size_t *if_stack;
	size_t if_depth;
	pcre2_match_context *mctx;
};

static void table_re_free(void *priv)
{
	struct table_re *re = priv;
	for (size_t i = 0; i < re->count; i++) {
		struct table_re_rule *r = &re->rules[i];
		if (r->has_regex)
			regfree(&r->regex);
		pcre2_match_data_free(r->md);
		pcre2_code_free(r->pcre);
		free(r->result);
	}
	pcre2_match_context_free(re->mctx);
	free(re->rules);
	free(re->if_stack);
	free(re->path);
	free(re);
}

/* Parse one "$..." reference at p (p[0] == '$').  Returns the number of
 * characters used and sets *index_r (-1 for "$$" or a '$' at the end,
 * meaning a literal '$'); 0 on a syntax error with *error_r. */
static size_t table_re_ref_parse(const char *p, long *index_r, const char **error_r)
{
	const char *s, *e;
	size_t used;
	if (p[1] == '$' || p[1] == '\0') {
		*index_r = -1;
		return p[1] == '$' ? 2 : 1;
	}
	if (p[1] == '{' || p[1] == '(') {
		char close = p[1] == '{' ? '}' : ')';
		s = p + 2;
		e = strchr(s, close);
		if (e == NULL) {
			*error_r = table_open_error("missing '%c' in result", close);
			return 0;
		}
		used = (size_t)(e - p) + 1;
	} else {
		s = p + 1;
		e = s;
		while (isalnum((unsigned char)*e) || *e == '_')
			e++;
		if (e == s) {
			*error_r = table_open_error("'$' must be followed by a group number "
						    "(use $$ for a '$')");
			return 0;
		}
		used = (size_t)(e - p);
	}
	long n = 0;
	if (e == s || (size_t)(e - s) > 3) {
		*error_r = table_open_error("bad replacement index \"%.*s\"", (int)(e - s), s);
		return 0;
	}
	for (const char *q = s; q < e; q++) {
		if (!isdigit((unsigned char)*q)) {
			*error_r = table_open_error("non-numeric replacement index \"%.*s\"",
						    (int)(e - s), s);
			return 0;
		}
		n = n * 10 + (*q - '0');
	}
	if (n > TABLE_RE_MAX_REF) {
		*error_r = table_open_error("out of range replacement index \"%ld\"", n);
		return 0;
	}
	*index_r = n;
	return used;
}

/* Check the references of result; sets *max_ref_r (0 when none) and
 * *has_ref_r. */
static int table_re_result_check(const char *result, unsigned *max_ref_r, bool *has_ref_r,
				 const char **error_r)
{
	*max_ref_r = 0;
	*has_ref_r = false;
	for (const char *p = result; *p != '\0';) {
		if (*p != '$') {
			p++;
			continue;
		}
		long idx;
		size_t used = table_re_ref_parse(p, &idx, error_r);
		if (used == 0)
			return -1;
		if (idx >= 0) {
			*has_ref_r = true;
			if ((unsigned)idx > *max_ref_r)
				*max_ref_r = (unsigned)idx;
		}
		p += used;
	}
	return 0;
}

/* Expand result with the groups of key (starts/ends of n groups; -1 for a
 * group that did not match). */
static char *table_re_expand(const char *result, const char *key, const long *starts,
			     const long *ends, size_t n)
{
	struct buf b = BUF_INIT;
	const char *error;
	for (const char *p = result; *p != '\0';) {
		const char *dollar = strchr(p, '$');
		if (dollar == NULL) {
			buf_append_str(&b, p);
			break;
		}
		buf_append(&b, p, (size_t)(dollar - p));
		long idx;
		size_t used = table_re_ref_parse(dollar, &idx, &error);
		if (used == 0) /* validated at open: cannot happen */
			log_panic("regexp table: bad result \"%s\"", result);
		if (idx < 0)
			buf_append_char(&b, '$');
		else if ((size_t)idx < n && starts[idx] >= 0 && ends[idx] >= starts[idx])
			buf_append(&b, key + starts[idx], (size_t)(ends[idx] - starts[idx]));
		p = dollar + used;
	}
	return buf_steal(&b);
}

/* glibc's regcomp copies the pattern's tree once per repetition of an
 * interval "{n,m}", so nested or chained intervals multiply: "(a{99}){99}
 * {99}" asks for gigabytes.  Refuse a pattern whose interval bounds
 * multiply beyond this (a conservative estimate: every interval counts as
 * if nested). */
#define TABLE_RE_REPEAT_MAX 10000u

static bool table_re_repeats_ok(const char *pattern)
{
	uint64_t product = 1;
	for (const char *p = pattern; *p != '\0'; p++) {
		if (*p != '{' || p[1] < '0' || p[1] > '9')
			continue;
		uint64_t lo = 0, hi = 0;
		const char *q = p + 1;
		while (*q >= '0' && *q <= '9' && lo <= TABLE_RE_REPEAT_MAX)
			lo = lo * 10 + (uint64_t)(*q++ - '0');
		hi = lo;
		if (*q == ',') {
			q++;
			if (*q >= '0' && *q <= '9') {
				hi = 0;
				while (*q >= '0' && *q <= '9' && hi <= TABLE_RE_REPEAT_MAX)
					hi = hi * 10 + (uint64_t)(*q++ - '0');
			} else {
				hi = lo + 1; /* {n,}: n copies and a star */
			}
		}
		uint64_t n = hi > lo ? hi : lo;
		if (n > 1)
			product *= n;
		if (product > TABLE_RE_REPEAT_MAX)
			return false;
	}
	return true;
}

/* Compile the pattern of rule r.  Returns 0 or -1 with *error_r. */
static int table_re_compile(struct table_re *re, struct table_re_rule *r, const char *pattern,
			    const char *flags, const char **error_r)
{
	unsigned nsub;
	if (!re->is_pcre) {
		int cflags = REG_EXTENDED | REG_ICASE;
		for (const char *f = flags; *f != '\0'; f++) {
			switch (*f) {
			case 'i': cflags ^= REG_ICASE; break;
			case 'x': cflags ^= REG_EXTENDED; break;
			case 'm': cflags ^= REG_NEWLINE; break;
			default:
				*error_r = table_open_error("unknown regexp option \"%c\"", *f);
				return -1;
			}
		}
		if (!table_re_repeats_ok(pattern)) {
			*error_r = table_open_error("regexp \"%s\": repetition counts too large "
						    "(their product may be at most %u)",
						    pattern, TABLE_RE_REPEAT_MAX);
			return -1;
		}
		int rc = regcomp(&r->regex, pattern, cflags);
		if (rc != 0) {
			char msg[256];
			regerror(rc, &r->regex, msg, sizeof(msg));
			*error_r = table_open_error("regexp \"%s\": %s", pattern, msg);
			return -1;
		}
		r->has_regex = true;
		nsub = (unsigned)r->regex.re_nsub;
	} else {
		uint32_t options = PCRE2_CASELESS;
		for (const char *f = flags; *f != '\0'; f++) {
			switch (*f) {
			case 'i': options ^= PCRE2_CASELESS; break;
			case 'm': options ^= PCRE2_MULTILINE; break;
			case 's': options ^= PCRE2_DOTALL; break;
			case 'x': options ^= PCRE2_EXTENDED; break;
			case 'A': options ^= PCRE2_ANCHORED; break;
			case 'E': options ^= PCRE2_DOLLAR_ENDONLY; break;
			case 'U': options ^= PCRE2_UNGREEDY; break;
			case 'X': break; /* PCRE_EXTRA: gone in PCRE2, ignored like Postfix */
			default:
				*error_r = table_open_error("unknown pcre option \"%c\"", *f);
				return -1;
			}
		}
		int errcode;
		PCRE2_SIZE erroff;
		r->pcre = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, options,
					&errcode, &erroff, NULL);
		if (r->pcre == NULL) {
			PCRE2_UCHAR msg[256];
			if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0)
				str_copy((char *)msg, sizeof(msg), "unknown error");
			*error_r = table_open_error("pcre \"%s\": %s at offset %zu", pattern,
						    (const char *)msg, (size_t)erroff);
			return -1;
		}
		uint32_t count = 0;
		(void)pcre2_pattern_info(r->pcre, PCRE2_INFO_CAPTURECOUNT, &count);
		nsub = count;
		r->md = pcre2_match_data_create_from_pattern(r->pcre, NULL);
		if (r->md == NULL)
			mem_fail("pcre2_match_data_create_from_pattern");
	}
	if (r->max_ref > nsub) {
		*error_r = table_open_error("out of range replacement index \"%u\"", r->max_ref);
		return -1;
	}
	return 0;
}

/* Parse "[!]/pattern/flags" at *pp; on success *pp points after the flags
 * and the rule is compiled. */
static int table_re_pattern(struct table_re *re, struct table_re_rule *r, char **pp,
			    const char **error_r)
{
	char *p = *pp;
	if (*p == '!') {
		r->negate = true;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	char delim = *p;
	if (delim == '\0' || isalnum((unsigned char)delim) || isspace((unsigned char)delim) ||
	    delim == '\\') {
		*error_r = table_open_error("expected a pattern such as /regexp/");
		return -1;
	}
	char *start = ++p;
	while (*p != '\0' && *p != delim) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		p++;
	}
	if (*p != delim) {
		*error_r = table_open_error("missing closing delimiter '%c'", delim);
		return -1;
	}
	char *pattern = xstrndup(start, (size_t)(p - start));
	p++;
	char *fstart = p;
	while (*p != '\0' && !isspace((unsigned char)*p))
		p++;
	char *flags = xstrndup(fstart, (size_t)(p - fstart));
	int ret = table_re_compile(re, r, pattern, flags, error_r);
	free(pattern);
	free(flags);
	*pp = p;
	return ret;
}

static bool table_re_keyword(const char *p, const char *word)
{
	size_t n = strlen(word);
	return strncasecmp(p, word, n) == 0 && !isalnum((unsigned char)p[n]);
}

static int table_re_line(void *ctx, char *line, unsigned lineno)
{
	struct table_re *re = ctx;
	const char *error = NULL;
	struct table_re_rule r = { .line = lineno };
	char *p = line;

	if (table_re_keyword(p, "endif")) {
		p += 5;
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '\0') {
			error = "unexpected text after endif";
			goto fail;
		}
		if (re->if_depth == 0) {
			error = "endif without matching if";
			goto fail;
		}
		r.kind = TABLE_RE_ENDIF;
		re->rules[re->if_stack[--re->if_depth]].endif = re->count;
	} else if (table_re_keyword(p, "if")) {
		r.kind = TABLE_RE_IF;
		p += 2;
		while (isspace((unsigned char)*p))
			p++;
		if (table_re_pattern(re, &r, &p, &error) < 0)
			goto fail;
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '\0') {
			error = "unexpected text after if /pattern/";
			goto fail;
		}
		re->if_stack = xreallocarray(re->if_stack, re->if_depth + 1,
					     sizeof(*re->if_stack));
		re->if_stack[re->if_depth++] = re->count;
	} else {
		r.kind = TABLE_RE_MATCH;
		/* References are checked before compiling (max_ref vs groups). */
		char *q = p;
		if (*q == '!')
			q++;
		while (*q == ' ' || *q == '\t')
			q++;
		/* Find the result: skip the pattern textually first. */
		char delim = *q;
		const char *result = NULL;
		if (delim != '\0' && !isalnum((unsigned char)delim) &&
		    !isspace((unsigned char)delim) && delim != '\\') {
			const char *s = q + 1;
			while (*s != '\0' && *s != delim) {
				if (*s == '\\' && s[1] != '\0')
					s++;
				s++;
			}
			if (*s == delim) {
				s++;
				while (*s != '\0' && !isspace((unsigned char)*s))
					s++;
				while (isspace((unsigned char)*s))
					s++;
				result = s;
			}
		}
		if (result != NULL) {
			bool has_ref;
			if (*result == '\0') {
				error = "missing result after the pattern";
				goto fail;
			}
			if (table_re_result_check(result, &r.max_ref, &has_ref, &error) < 0)
				goto fail;
			if (has_ref && *p == '!') {
				error = "$number found in the result of a negated pattern";
				goto fail;
			}
			r.result = xstrdup(result);
		}
		if (table_re_pattern(re, &r, &p, &error) < 0)
			goto fail;
	}
	re->rules = xreallocarray(re->rules, re->count + 1, sizeof(*re->rules));
	re->rules[re->count++] = r;
	return 0;
fail:
	config_diag_add(re->diags, re->path, lineno, true, "%s", error);
	if (r.has_regex)
		regfree(&r.regex);
	pcre2_match_data_free(r.md);
	pcre2_code_free(r.pcre);
	free(r.result);
	return 0;
}

static struct table_re *table_re_parse(const char *path, bool is_pcre,
				       struct config_diags *diags)
{
	struct table_re *re = xcalloc(1, sizeof(*re));
	re->is_pcre = is_pcre;
	re->path = xstrdup(path);
	re->diags = diags;
	size_t errors_before = diags->n_errors;
	(void)table_lines_read(path, table_re_line, re, diags);
	for (size_t i = 0; i < re->if_depth; i++)
		config_diag_add(diags, path, re->rules[re->if_stack[i]].line, true,
				"if without matching endif");
	re->diags = NULL;
	if (diags->n_errors > errors_before) {
		table_re_free(re);
		return NULL;
	}
	if (is_pcre) {
		re->mctx = pcre2_match_context_create(NULL);
		if (re->mctx == NULL)
			mem_fail("pcre2_match_context_create");
		pcre2_set_match_limit(re->mctx, TABLE_PCRE_MATCH_LIMIT);
		pcre2_set_depth_limit(re->mctx, TABLE_PCRE_DEPTH_LIMIT);
	}
	return re;
}

/* Match key against rule r: 1 match, 0 no match, -1 matcher error (the
 * rule is then skipped).  starts/ends receive up to max_ref+1 groups. */
static int table_re_match(struct table *t, struct table_re *re, struct table_re_rule *r,
			  const char *key, long *starts, long *ends)
{
	size_t ngroups = (size_t)r->max_ref + 1;
	if (!re->is_pcre) {
		regmatch_t m[TABLE_RE_MAX_REF + 1];
		int rc = regexec(&r->regex, key, ngroups, m, 0);
		if (rc == REG_NOMATCH)
			return 0;
		if (rc != 0) {
			char msg[256];
			regerror(rc, &r->regex, msg, sizeof(msg));
			log_warning("%s, line %u: regexec: %s", t->spec, r->line, msg);
			return -1;
		}
		for (size_t i = 0; i < ngroups; i++) {
			starts[i] = m[i].rm_so;
			ends[i] = m[i].rm_eo;
		}
		return 1;
	}
	int rc = pcre2_match(r->pcre, (PCRE2_SPTR)key, strlen(key), 0, 0, r->md, re->mctx);
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	if (rc < 0) {
		PCRE2_UCHAR msg[256];
		if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0)
			str_copy((char *)msg, sizeof(msg), "unknown error");
		log_warning("%s, line %u: matcher error: %s", t->spec, r->line,
			    (const char *)msg);
		return -1;
	}
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
	uint32_t have = pcre2_get_ovector_count(r->md);
	for (size_t i = 0; i < ngroups; i++) {
		if (i < have && (int)i < rc && ov[2 * i] != PCRE2_UNSET) {
			starts[i] = (long)ov[2 * i];
			ends[i] = (long)ov[2 * i + 1];
		} else {
			starts[i] = ends[i] = -1;
		}
	}
	return 1;
}

static int table_re_lookup(struct table *t, const char *key, char **value_r,
			   const char **error_r)
{
	(void)error_r;
	struct table_re *re = t->priv;
	long starts[TABLE_RE_MAX_REF + 1], ends[TABLE_RE_MAX_REF + 1];
	size_t i = 0;
	while (i < re->count) {
		struct table_re_rule *r = &re->rules[i];
		if (r->kind == TABLE_RE_ENDIF) {
			i++;
			continue;
		}
		int m = table_re_match(t, re, r, key, starts, ends);
		bool applies = m >= 0 && (m == 1) != r->negate;
		if (r->kind == TABLE_RE_IF) {
			i = applies ? i + 1 : r->endif + 1;
			continue;
		}
		if (applies) {
			*value_r = table_re_expand(r->result, key, starts, ends,
						   r->negate ? 0 : (size_t)r->max_ref + 1);
			return 1;
		}
		i++;
	}
	return 0;
}

static int table_re_open(struct table *t, bool is_pcre, const char **error_r)
{
	struct config_diags diags;
	config_diags_init(&diags);
	struct table_re *re = table_re_parse(t->name, is_pcre, &diags);
	if (re == NULL) {
		const char *e = table_diags_first_error(&diags);
		*error_r = table_open_error("%s", e != NULL ? e : "parse error");
		config_diags_deinit(&diags);
		return -1;
	}
	config_diags_deinit(&diags);
	t->priv = re;
	t->free_priv = table_re_free;
	t->lookup = table_re_lookup;
	return 0;
}

int table_regexp_open(struct table *t, const char **error_r)
{
	return table_re_open(t, false, error_r);
}

int table_pcre_open(struct table *t, const char **error_r)
{
	return table_re_open(t, true, error_r);
}

int table_regexp_check(const char *path, bool is_pcre, struct config_diags *diags)
{
	struct table_re *re = table_re_parse(path, is_pcre, diags);
	if (re == NULL)
		return -1;
	table_re_free(re);
	return 0;
}
