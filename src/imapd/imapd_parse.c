/* imapd_parse.c - the IMAP4rev1 command reader (RFC 3501 section 9 grammar,
 * LITERAL+ from RFC 7888): turns the client's byte stream into a tag, a
 * command name and a tree of generic arguments.
 *
 * The reader works in two passes so that it stays linear however the bytes
 * arrive (a 10 MB APPEND literal fed in 4 KB chunks):
 *  1. a scanner that remembers how far it got finds where the command ends:
 *     line by line, a line ending in "{n}" or "{n+}" (outside a quoted
 *     string) is followed by n literal bytes and another line; limits are
 *     checked here, and a synchronizing literal is reported (CONTINUE) once;
 *  2. when the whole command is in the buffer, a recursive-descent parser
 *     builds the arguments from it in one go.
 * A syntax error found by the parser skips exactly that command.
 */
#include "imapd/imapd_parse.h"

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/mem.h"

struct imap_reader {
	struct imap_reader_limits limits;
	struct buf in;
	size_t start;	      /* offset in `in` of the current command */
	/* Scanner state, offsets relative to start. */
	size_t scan;	      /* bytes of the command examined so far */
	size_t line_start;    /* start of the current line */
	bool in_quote, escape;
	bool in_literal;
	size_t lit_remaining;
	/* Results kept for the caller. */
	char *tag;
	const char *error;
	bool fatal;
	struct buf line; /* imap_reader_line() */
};

/* ---- argument helpers ---- */

static void imap_args_free(struct imap_arg *args, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(args[i].str);
		imap_args_free(args[i].list, args[i].count);
	}
	free(args);
}

void imap_cmd_free(struct imap_cmd **cmd)
{
	struct imap_cmd *c = *cmd;
	if (c == NULL)
		return;
	free(c->tag);
	free(c->name);
	imap_args_free(c->args, c->argc);
	free(c);
	*cmd = NULL;
}

const char *imap_arg_astring(const struct imap_arg *a)
{
	switch (a->type) {
	case IMAP_ARG_ATOM:
	case IMAP_ARG_QUOTED:
	case IMAP_ARG_LITERAL:
		if (memchr(a->str, '\0', a->len) != NULL)
			return NULL;
		return a->str;
	case IMAP_ARG_NIL:
	case IMAP_ARG_LIST:
		break;
	}
	return NULL;
}

/* ---- character classes (RFC 3501 section 9) ---- */

/* CHAR minus atom-specials "(" ")" "{" SP CTL DQUOTE; list-wildcards,
 * "\" and "]" are accepted here (flags, LIST patterns, sequence sets,
 * astrings) and checked by the specific parsers. */
static bool imap_atom_char(uint8_t c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return c != '(' && c != ')' && c != '{' && c != '"';
}

/* tag = 1*<any ASTRING-CHAR except "+"> */
static bool imap_tag_char(uint8_t c)
{
	return imap_atom_char(c) && c != '%' && c != '*' && c != '\\' && c != '+';
}

/* ---- the parser (pass 2) ---- */

struct imap_pctx {
	const uint8_t *p, *end;
	size_t depth_max;
	const char *error;
};

static bool pctx_eol(const struct imap_pctx *x)
{
	if (x->p >= x->end)
		return true;
	if (*x->p == '\n')
		return true;
	return *x->p == '\r' && x->p + 1 < x->end && x->p[1] == '\n';
}

static void pctx_skip_eol(struct imap_pctx *x)
{
	if (x->p < x->end && *x->p == '\r')
		x->p++;
	if (x->p < x->end && *x->p == '\n')
		x->p++;
}

/* Does text (before "[") start a FETCH attribute whose section may hold
 * spaces and parentheses (RFC 3501: section, RFC 3516: section-binary)? */
static bool imap_section_prefix(const uint8_t *s, size_t n)
{
	static const char *const names[] = { "BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK",
					     "BINARY.SIZE" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i]) == n &&
		    strv_case_eq(strv_make((const char *)s, n), names[i]))
			return true;
	}
	return false;
}

/* From "[" at p, the end of the matching "]" on this line, or NULL. */
static const uint8_t *imap_section_end(const uint8_t *p, const uint8_t *end)
{
	bool quote = false;
	for (p++; p < end; p++) {
		uint8_t c = *p;
		if (c == '\r' || c == '\n' || c == '\0' || c >= 0x80)
			return NULL;
		if (quote) {
			if (c == '\\') {
				if (p + 1 >= end)
					return NULL;
				p++;
			} else if (c == '"') {
				quote = false;
			}
			continue;
		}
		if (c == '"')
			quote = true;
		else if (c == '{' || c == '[')
			return NULL;
		else if (c == ']')
			return p;
	}
	return NULL;
}

static int pctx_atom(struct imap_pctx *x, struct imap_arg *a)
{
	const uint8_t *s = x->p;
	while (x->p < x->end) {
		uint8_t c = *x->p;
		if (c == '[' && imap_section_prefix(s, (size_t)(x->p - s))) {
			const uint8_t *e = imap_section_end(x->p, x->end);
			if (e != NULL) {
				x->p = e + 1;
				continue;
			}
		}
		if (!imap_atom_char(c))
			break;
		x->p++;
	}
	if (x->p == s) {
		x->error = "Invalid characters in atom";
		return -1;
	}
	a->len = (size_t)(x->p - s);
	a->str = xstrndup((const char *)s, a->len);
	a->type = strv_case_eq(strv_make(a->str, a->len), "NIL") ? IMAP_ARG_NIL : IMAP_ARG_ATOM;
	return 0;
}

static int pctx_quoted(struct imap_pctx *x, struct imap_arg *a)
{
	struct buf b = BUF_INIT;
	x->p++;
	for (;;) {
		if (x->p >= x->end) {
			x->error = "Missing '\"'";
			goto fail;
		}
		uint8_t c = *x->p++;
		if (c == '"')
			break;
		if (c == '\\') {
			/* quoted-specials only (RFC 3501 section 9) */
			if (x->p >= x->end || (*x->p != '"' && *x->p != '\\')) {
				x->error = "Invalid escape in quoted string";
				goto fail;
			}
			c = *x->p++;
		} else if (c == '\r' || c == '\n' || c == '\0') {
			x->error = "Missing '\"'";
			goto fail;
		} else if (c >= 0x80) {
			/* RFC 3501 forbids 8-bit in quoted strings; UTF-8
			 * clients (RFC 6855 style) are common enough that
			 * refusing only NUL, CR and LF is kinder. */
		}
		buf_append_char(&b, (char)c);
	}
	a->type = IMAP_ARG_QUOTED;
	a->len = b.len;
	a->str = buf_steal(&b);
	return 0;
fail:
	buf_deinit(&b);
	return -1;
}

static int pctx_literal(struct imap_pctx *x, struct imap_arg *a)
{
	uint64_t n = 0;
	bool digits = false;
	x->p++;
	while (x->p < x->end && *x->p >= '0' && *x->p <= '9') {
		n = n * 10 + (uint64_t)(*x->p - '0');
		if (n > UINT32_MAX) {
			x->error = "Literal size too large";
			return -1;
		}
		digits = true;
		x->p++;
	}
	if (x->p < x->end && *x->p == '+')
		x->p++;
	if (!digits || x->p >= x->end || *x->p != '}') {
		x->error = "Invalid literal";
		return -1;
	}
	x->p++;
	if (x->p >= x->end || !pctx_eol(x)) {
		x->error = "Literal must end the line";
		return -1;
	}
	pctx_skip_eol(x);
	if ((uint64_t)(x->end - x->p) < n) {
		x->error = "Truncated literal"; /* cannot happen: the scanner waited */
		return -1;
	}
	a->type = IMAP_ARG_LITERAL;
	a->len = (size_t)n;
	/* may hold NUL bytes: not a string copy */
	a->str = xmalloc(a->len + 1);
	memcpy(a->str, x->p, a->len);
	a->str[a->len] = '\0';
	x->p += n;
	return 0;
}

static int pctx_list(struct imap_pctx *x, struct imap_arg *a, size_t depth);

static int pctx_arg(struct imap_pctx *x, struct imap_arg *a, size_t depth)
{
	memset(a, 0, sizeof(*a));
	if (x->p >= x->end) {
		x->error = "Missing argument";
		return -1;
	}
	switch (*x->p) {
	case '"':
		return pctx_quoted(x, a);
	case '{':
		return pctx_literal(x, a);
	case '(':
		return pctx_list(x, a, depth + 1);
	case '~':
		if (x->p + 1 < x->end && x->p[1] == '{') {
			x->error = "literal8 not supported";
			return -1;
		}
		return pctx_atom(x, a);
	default:
		return pctx_atom(x, a);
	}
}

static void args_push(struct imap_arg **args, size_t *count, size_t *alloc,
		      const struct imap_arg *a)
{
	if (*count == *alloc) {
		*alloc = *alloc == 0 ? 4 : *alloc * 2;
		*args = xreallocarray(*args, *alloc, sizeof(**args));
	}
	(*args)[(*count)++] = *a;
}

static int pctx_list(struct imap_pctx *x, struct imap_arg *a, size_t depth)
{
	size_t alloc = 0;
	a->type = IMAP_ARG_LIST;
	if (depth > x->depth_max) {
		x->error = "Too deep parenthesized list";
		return -1;
	}
	x->p++;
	if (x->p < x->end && *x->p == ')') {
		x->p++;
		return 0;
	}
	for (;;) {
		struct imap_arg e;
		if (pctx_arg(x, &e, depth) < 0) {
			args_push(&a->list, &a->count, &alloc, &e);
			return -1;
		}
		args_push(&a->list, &a->count, &alloc, &e);
		if (x->p < x->end && *x->p == ')') {
			x->p++;
			return 0;
		}
		if (x->p >= x->end || *x->p != ' ' || pctx_eol(x)) {
			x->error = "Missing ')'";
			return -1;
		}
		x->p++;
		if (pctx_eol(x)) {
			x->error = "Missing ')'";
			return -1;
		}
	}
}

/* Parse the whole command in [p, end) (the scanner saw all of it). */
static int imap_cmd_parse(const uint8_t *p, const uint8_t *end, size_t depth_max,
			  struct imap_cmd **cmd_r, char **tag_r, const char **error_r)
{
	struct imap_pctx x = { p, end, depth_max, NULL };
	struct imap_cmd *cmd = xcalloc(1, sizeof(*cmd));
	size_t alloc = 0;

	*tag_r = NULL;
	while (x.p < x.end && imap_tag_char(*x.p))
		x.p++;
	if (x.p == p || x.p >= x.end || *x.p != ' ') {
		if (x.p != p && pctx_eol(&x)) {
			*tag_r = xstrndup((const char *)p, (size_t)(x.p - p));
			x.error = "Missing command";
		} else {
			x.error = "Invalid tag";
		}
		goto fail;
	}
	cmd->tag = xstrndup((const char *)p, (size_t)(x.p - p));
	*tag_r = xstrdup(cmd->tag);
	for (int word = 0; word < 2; word++) {
		x.p++; /* SP */
		const uint8_t *s = x.p;
		while (x.p < x.end && imap_atom_char(*x.p) && *x.p != '[' && *x.p != ']')
			x.p++;
		if (x.p == s || (!pctx_eol(&x) && *x.p != ' ')) {
			x.error = "Invalid command name";
			goto fail;
		}
		free(cmd->name);
		cmd->name = xstrndup((const char *)s, (size_t)(x.p - s));
		for (char *c = cmd->name; *c != '\0'; c++) {
			if (*c >= 'a' && *c <= 'z')
				*c = (char)(*c - 'a' + 'A');
		}
		if (word == 1 || strcmp(cmd->name, "UID") != 0)
			break;
		cmd->uid = true;
		if (pctx_eol(&x)) {
			x.error = "Missing UID command";
			goto fail;
		}
	}
	for (;;) {
		if (pctx_eol(&x))
			break;
		x.p++; /* SP */
		if (pctx_eol(&x))
			break; /* tolerate one trailing space */
		struct imap_arg a;
		int ret = pctx_arg(&x, &a, 0);
		args_push(&cmd->args, &cmd->argc, &alloc, &a);
		if (ret < 0)
			goto fail;
		if (!pctx_eol(&x) && *x.p != ' ') {
			x.error = "Missing space between arguments";
			goto fail;
		}
	}
	pctx_skip_eol(&x);
	if (x.p != x.end) {
		x.error = "Garbage after command";
		goto fail;
	}
	*cmd_r = cmd;
	return 0;
fail:
	*error_r = x.error;
	imap_cmd_free(&cmd);
	return -1;
}

/* ---- the reader (pass 1) ---- */

struct imap_reader *imap_reader_new(const struct imap_reader_limits *limits)
{
	struct imap_reader *r = xcalloc(1, sizeof(*r));
	r->limits = *limits;
	buf_init(&r->in);
	buf_init(&r->line);
	return r;
}

void imap_reader_free(struct imap_reader **rp)
{
	struct imap_reader *r = *rp;
	if (r == NULL)
		return;
	buf_deinit(&r->in);
	buf_deinit(&r->line);
	free(r->tag);
	free(r);
	*rp = NULL;
}

void imap_reader_feed(struct imap_reader *r, const void *data, size_t len)
{
	/* Drop consumed bytes first: at most once per feed, so pipelined
	 * commands cost a copy of what is left, never a rescan. */
	if (r->start > 0) {
		buf_consume(&r->in, r->start);
		r->start = 0;
	}
	buf_append(&r->in, data, len);
}

size_t imap_reader_pending(const struct imap_reader *r, const void **data_r)
{
	*data_r = r->in.data == NULL ? (const void *)"" : r->in.data + r->start;
	return r->in.len - r->start;
}

/* Forget the scanner state and consume n bytes from the command start. */
static void imap_reader_consume(struct imap_reader *r, size_t n)
{
	r->start += n;
	r->scan = 0;
	r->line_start = 0;
	r->in_quote = false;
	r->escape = false;
	r->in_literal = false;
	r->lit_remaining = 0;
}

/* Read the tag of the current command for an error answer ("*" if none). */
static void imap_reader_take_tag(struct imap_reader *r)
{
	const uint8_t *p = r->in.data + r->start, *s = p;
	const uint8_t *end = r->in.data + r->in.len;
	free(r->tag);
	while (p < end && imap_tag_char(*p))
		p++;
	if (p == s || p >= end || *p != ' ')
		r->tag = xstrdup("*");
	else
		r->tag = xstrndup((const char *)s, (size_t)(p - s));
}

static enum imap_read_result imap_reader_fatal(struct imap_reader *r, const char *error)
{
	imap_reader_take_tag(r);
	r->error = error;
	r->fatal = true;
	return IMAP_READ_TOO_LONG;
}

/* The line [ls, le) (without CRLF) ends in "{n}" or "{n+}", maybe "~{n}".
 * Returns 1 with the size, kind and literal8-ness, 0 when it does not, -1 for a size
 * beyond any limit. */
static int imap_line_literal(const uint8_t *ls, const uint8_t *le, uint64_t *n_r, bool *sync_r,
			     bool *lit8_r)
{
	const uint8_t *p = le;
	if (p == ls || p[-1] != '}')
		return 0;
	p--;
	*sync_r = true;
	if (p > ls && p[-1] == '+') {
		*sync_r = false;
		p--;
	}
	const uint8_t *de = p;
	while (p > ls && p[-1] >= '0' && p[-1] <= '9')
		p--;
	if (p == de || p == ls || p[-1] != '{')
		return 0;
	*lit8_r = p - 1 > ls && p[-2] == '~';
	uint64_t n = 0;
	for (const uint8_t *d = p; d < de; d++) {
		n = n * 10 + (uint64_t)(*d - '0');
		if (n > (uint64_t)UINT32_MAX * 16)
			return -1;
	}
	*n_r = n;
	return 1;
}

enum imap_read_result imap_reader_next(struct imap_reader *r, struct imap_cmd **cmd_r,
				       const char **tag_r, const char **error_r, bool *too_big_r)
{
	*cmd_r = NULL;
	*too_big_r = false;
	*tag_r = NULL;
	*error_r = NULL;
	enum imap_read_result res;
	if (r->fatal) {
		*tag_r = r->tag;
		*error_r = r->error;
		return IMAP_READ_TOO_LONG;
	}
	for (;;) {
		const uint8_t *base = r->in.data == NULL ? NULL : r->in.data + r->start;
		size_t avail = r->in.len - r->start;
		if (r->in_literal) {
			size_t take = avail - r->scan;
			if (take > r->lit_remaining)
				take = r->lit_remaining;
			r->scan += take;
			r->lit_remaining -= take;
			if (r->lit_remaining > 0)
				return IMAP_READ_MORE;
			r->in_literal = false;
			r->line_start = r->scan;
			r->in_quote = r->escape = false;
		}
		/* Scan the current line, tracking quoted strings so that
		 * "{5}" inside one is not a literal. */
		size_t i = r->scan;
		bool lf = false;
		for (; i < avail; i++) {
			uint8_t c = base[i];
			if (c == '\n') {
				lf = true;
				break;
			}
			if (r->escape)
				r->escape = false;
			else if (r->in_quote && c == '\\')
				r->escape = true;
			else if (c == '"')
				r->in_quote = !r->in_quote;
		}
		if (!lf) {
			r->scan = avail;
			/* line_max bytes plus the CR may wait for their LF */
			if (r->scan - r->line_start > r->limits.line_max + 1) {
				res = imap_reader_fatal(r, "Too long line");
				goto out_fatal;
			}
			if (r->scan > r->limits.total_max) {
				res = imap_reader_fatal(r, "Too long command");
				goto out_fatal;
			}
			return IMAP_READ_MORE;
		}
		size_t le = i;
		if (le > r->line_start && base[le - 1] == '\r')
			le--;
		r->scan = i + 1;
		if (le - r->line_start > r->limits.line_max) {
			res = imap_reader_fatal(r, "Too long line");
			goto out_fatal;
		}
		if (r->scan > r->limits.total_max) {
			res = imap_reader_fatal(r, "Too long command");
			goto out_fatal;
		}
		uint64_t n = 0;
		bool sync = true, lit8 = false;
		int lit = r->in_quote ? 0
				      : imap_line_literal(base + r->line_start, base + le, &n, &sync,
							  &lit8);
		if (lit == 0) {
			/* The command is complete. */
			if (le == 0) {
				/* An empty line: ignore it (keepalive habits). */
				imap_reader_consume(r, r->scan);
				continue;
			}
			size_t total = r->scan;
			char *tag = NULL;
			const char *error = NULL;
			int ret = imap_cmd_parse(base, base + total, r->limits.depth_max, cmd_r,
						 &tag, &error);
			free(r->tag);
			r->tag = tag != NULL ? tag : xstrdup("*");
			imap_reader_consume(r, total);
			*tag_r = r->tag;
			if (ret < 0) {
				r->error = error;
				*error_r = error;
				return IMAP_READ_BAD;
			}
			return IMAP_READ_CMD;
		}
		bool over = lit < 0 || n > r->limits.literal_max ||
			    n > r->limits.total_max - r->scan;
		if (!sync) {
			if (over) {
				res = imap_reader_fatal(r, "Too long literal");
				goto out_fatal;
			}
			r->in_literal = true;
			r->lit_remaining = (size_t)n;
			continue;
		}
		if (over || lit8) {
			/* RFC 7888 section 4 / RFC 3501 7.5: the client waits for
			 * "+" and will not send the literal: drop what we have of
			 * the command, the next line is a new one. */
			imap_reader_take_tag(r);
			imap_reader_consume(r, r->scan);
			*tag_r = r->tag;
			if (lit8) {
				r->error = "literal8 not supported";
				*error_r = r->error;
				return IMAP_READ_BAD;
			}
			r->error = "Literal too big";
			*error_r = r->error;
			*too_big_r = true;
			return IMAP_READ_TOO_LONG;
		}
		r->in_literal = true;
		r->lit_remaining = (size_t)n;
		return IMAP_READ_CONTINUE;
	}
out_fatal:
	*tag_r = r->tag;
	*error_r = r->error;
	return res;
}

int imap_reader_line(struct imap_reader *r, const char **line_r, size_t *len_r)
{
	const uint8_t *base = r->in.data == NULL ? NULL : r->in.data + r->start;
	size_t avail = r->in.len - r->start;
	const uint8_t *lf = avail == 0 ? NULL : memchr(base, '\n', avail);
	if (lf == NULL) {
		if (avail > r->limits.line_max + 1)
			return -1;
		return 0;
	}
	size_t n = (size_t)(lf - base);
	size_t len = n;
	if (len > 0 && base[len - 1] == '\r')
		len--;
	if (len > r->limits.line_max)
		return -1;
	buf_reset(&r->line);
	buf_append(&r->line, base, len);
	imap_reader_consume(r, n + 1);
	*line_r = buf_cstr(&r->line);
	*len_r = len;
	return 1;
}
