/* header.c - RFC 5322 header blocks: split into fields, rewrite addresses.
 *
 * Callers: cleanup (header rewriting on submission), sendmail -t (recipient
 * extraction), delivery agents.  The block parser copies each field's bytes
 * unchanged; the address-list parser works on (offset, length) spans of the
 * field and rebuilds it by replacing only addr-spec text, so everything it
 * does not understand (encoded words, comments, odd spacing) survives.
 */
#include "mail/header.h"

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <stdlib.h>
#include <sys/types.h>
#include <string.h>

/* ---- header block ---- */

void header_block_deinit(struct header_block *hb)
{
	for (size_t i = 0; i < hb->count; i++) {
		free(hb->fields[i].name);
		free(hb->fields[i].raw);
	}
	free(hb->fields);
	hb->fields = NULL;
	hb->count = 0;
}

/* RFC 5322 3.6.8: field-name = 1*ftext, ftext = %d33-57 / %d59-126; obs
 * syntax (4.5) allows white space before the colon.  Returns the name
 * length or 0 when the line is not a field start. */
static size_t header_name_len(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && (unsigned char)p[i] >= 33 && (unsigned char)p[i] <= 126 && p[i] != ':')
		i++;
	size_t name_len = i;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (name_len == 0 || i >= n || p[i] != ':')
		return 0;
	return name_len;
}

int header_block_parse(const char *data, size_t len, size_t size_limit, size_t count_limit,
		       struct header_block *hb_r, const char **error_r)
{
	struct header_block hb = { NULL, 0, 0 };
	size_t pos = 0, field_start = 0, name_len = 0;
	bool in_field = false;

	for (;;) {
		size_t next = len;
		if (pos < len) {
			const char *lf = memchr(data + pos, '\n', len - pos);
			next = lf != NULL ? (size_t)(lf - data) + 1 : len;
		}
		const char *line = data + pos;
		size_t line_len = next - pos;
		bool continues = pos < len && (line[0] == ' ' || line[0] == '\t');
		/* A line of white space only is not an empty line and continues
		 * the field (RFC 5322 obs-FWS); an empty line ends the block. */
		if (in_field && !continues) {
			if (hb.count == count_limit) {
				*error_r = "too many message header fields";
				goto fail;
			}
			hb.fields = xreallocarray(hb.fields, hb.count + 1, sizeof(*hb.fields));
			struct header_field *f = &hb.fields[hb.count++];
			f->name = xstrndup(data + field_start, name_len);
			f->raw_len = pos - field_start;
			/* Not xstrndup: the bytes may contain NULs. */
			f->raw = xmalloc(f->raw_len + 1);
			memcpy(f->raw, data + field_start, f->raw_len);
			f->raw[f->raw_len] = '\0';
			in_field = false;
		}
		if (pos >= len)
			break;
		if (!continues) {
			name_len = header_name_len(line, line_len);
			if (name_len == 0)
				break;	/* empty line or not a header: the body starts */
			field_start = pos;
			in_field = true;
		} else if (!in_field) {
			break;		/* continuation without a field: body */
		}
		if (next > size_limit) {
			*error_r = "message header size exceeds header_size_limit";
			goto fail;
		}
		pos = next;
	}
	hb.header_end = pos;
	*hb_r = hb;
	return 0;
fail:
	header_block_deinit(&hb);
	return -1;
}

bool header_name_is(const struct header_field *f, const char *name)
{
	return str_casecmp(f->name, name) == 0;
}

/* ---- address lists (RFC 5322 3.4, 4.4) ---- */

enum header_tok_type {
	HEADER_TOK_WORD,	/* atom or quoted-string */
	HEADER_TOK_LITERAL,	/* [domain literal] */
	HEADER_TOK_SPECIAL,	/* one of < > , : ; @ . */
};

struct header_tok {
	enum header_tok_type type;
	size_t start, end;	/* offsets in the field */
};

struct header_span {
	size_t start, end;
	char *addr;
};

struct header_addr_list {
	struct header_span *spans;
	size_t count;
};

static void header_addr_list_free(struct header_addr_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->spans[i].addr);
	free(l->spans);
	l->spans = NULL;
	l->count = 0;
}

static bool header_is_special(char c) { return c != '\0' && strchr("<>,:;@.", c) != NULL; }
static bool header_is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Tokenise s[from..n); comments are skipped (nested, RFC 5322 3.2.2). */
static int header_tokenize(const char *s, size_t from, size_t n, struct header_tok **toks_r,
			   size_t *count_r)
{
	struct header_tok *toks = NULL;
	size_t count = 0, i = from;
	while (i < n) {
		char c = s[i];
		if (header_is_ws(c)) {
			i++;
			continue;
		}
		if (c == '(') {
			unsigned depth = 0;
			for (; i < n; i++) {
				if (s[i] == '\\')
					i++;
				else if (s[i] == '(')
					depth++;
				else if (s[i] == ')' && --depth == 0)
					break;
			}
			if (i >= n)
				goto fail;
			i++;
			continue;
		}
		if (c == ')' || c == ']')
			goto fail;
		struct header_tok t = { HEADER_TOK_WORD, i, 0 };
		if (c == '"') {
			for (i++; i < n && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			if (i >= n)
				goto fail;
			i++;
		} else if (c == '[') {
			t.type = HEADER_TOK_LITERAL;
			for (i++; i < n && s[i] != ']'; i++)
				if (s[i] == '\\' || s[i] == '[')
					goto fail;
			if (i >= n)
				goto fail;
			i++;
		} else if (header_is_special(c)) {
			t.type = HEADER_TOK_SPECIAL;
			i++;
		} else {
			i++;	/* always progress, even on a stray byte */
			while (i < n && !header_is_ws(s[i]) && !header_is_special(s[i]) &&
			       strchr("()[]\"", s[i]) == NULL)
				i++;
		}
		t.end = i;
		toks = xreallocarray(toks, count + 1, sizeof(*toks));
		toks[count++] = t;
	}
	*toks_r = toks;
	*count_r = count;
	return 0;
fail:
	free(toks);
	return -1;
}

/* Does toks[first..last] look like an addr-spec (local-part ["@" domain])?
 * A phrase ("John Doe", two words in a row) does not. */
static bool header_span_is_addr(const char *s, const struct header_tok *toks, size_t first,
				size_t last)
{
	bool prev_word = false, seen_at = false;
	for (size_t i = first; i <= last; i++) {
		const struct header_tok *t = &toks[i];
		if (t->type == HEADER_TOK_SPECIAL) {
			char c = s[t->start];
			if (c == '@') {
				if (seen_at || !prev_word)
					return false;
				seen_at = true;
			} else if (c != '.') {
				return false;
			}
			prev_word = false;
		} else {
			if (prev_word)
				return false;
			if (t->type == HEADER_TOK_LITERAL && !seen_at)
				return false;
			prev_word = true;
		}
	}
	return prev_word;
}

static void header_span_add(struct header_addr_list *l, const char *s,
			    const struct header_tok *toks, ssize_t first, ssize_t last)
{
	if (first < 0 || !header_span_is_addr(s, toks, (size_t)first, (size_t)last))
		return;
	struct buf b = BUF_INIT;
	for (ssize_t i = first; i <= last; i++)
		buf_append(&b, s + toks[i].start, toks[i].end - toks[i].start);
	l->spans = xreallocarray(l->spans, l->count + 1, sizeof(*l->spans));
	struct header_span *sp = &l->spans[l->count++];
	sp->start = toks[first].start;
	sp->end = toks[last].end;
	sp->addr = buf_steal(&b);
}

/* Find the addr-spec spans of an address-list field. */
static int header_addr_list_parse(const char *raw, size_t n, struct header_addr_list *l)
{
	const char *colon = memchr(raw, ':', n);
	struct header_tok *toks;
	size_t count;
	l->spans = NULL;
	l->count = 0;
	if (colon == NULL)
		return -1;
	if (header_tokenize(raw, (size_t)(colon - raw) + 1, n, &toks, &count) < 0)
		return -1;

	ssize_t plain_first = -1, plain_last = -1, angle_first = -1, angle_last = -1;
	bool in_angle = false, have_angle = false, in_group = false;
	for (size_t i = 0; i <= count; i++) {
		char c = i < count && toks[i].type == HEADER_TOK_SPECIAL ? raw[toks[i].start] : '\0';
		if (in_angle && i < count) {
			if (c == '>') {
				in_angle = false;
				have_angle = true;
			} else if (c == '<') {
				goto fail;
			} else if (c == ':') {
				angle_first = angle_last = -1;	/* obs-route: strip it */
			} else if (c == ',' && angle_first < 0) {
				;	/* separator inside an obs-route */
			} else {
				if (angle_first < 0)
					angle_first = (ssize_t)i;
				angle_last = (ssize_t)i;
			}
			continue;
		}
		if (i == count && in_angle)
			goto fail;
		if (i == count || c == ',' || c == ';') {
			if (have_angle)
				header_span_add(l, raw, toks, angle_first, angle_last);
			else
				header_span_add(l, raw, toks, plain_first, plain_last);
			plain_first = plain_last = angle_first = angle_last = -1;
			have_angle = false;
			if (c == ';')
				in_group = false;
			continue;
		}
		if (c == '<') {
			in_angle = true;
			angle_first = angle_last = -1;
		} else if (c == '>') {
			goto fail;
		} else if (c == ':' && !in_group) {
			/* group display name: "name:" starts a group */
			in_group = true;
			plain_first = plain_last = -1;
		} else {
			if (plain_first < 0)
				plain_first = (ssize_t)i;
			plain_last = (ssize_t)i;
		}
	}
	free(toks);
	return 0;
fail:
	free(toks);
	header_addr_list_free(l);
	return -1;
}

int header_rewrite_addresses(const char *field_raw, char *(*rewrite)(void *ctx, const char *addr),
			     void *ctx, char **out_r)
{
	size_t n = strlen(field_raw), pos = 0;
	struct header_addr_list l;
	if (header_addr_list_parse(field_raw, n, &l) < 0)
		return -1;
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < l.count; i++) {
		char *repl = rewrite(ctx, l.spans[i].addr);
		if (repl == NULL)
			continue;
		buf_append(&b, field_raw + pos, l.spans[i].start - pos);
		buf_append_str(&b, repl);
		pos = l.spans[i].end;
		free(repl);
	}
	buf_append(&b, field_raw + pos, n - pos);
	header_addr_list_free(&l);
	*out_r = buf_steal(&b);
	return 0;
}

int header_extract_addresses(const char *field_raw, char ***addrs_r)
{
	struct header_addr_list l;
	if (header_addr_list_parse(field_raw, strlen(field_raw), &l) < 0)
		return -1;
	char **addrs = xcalloc(l.count + 1, sizeof(char *));
	for (size_t i = 0; i < l.count; i++) {
		addrs[i] = l.spans[i].addr;
		l.spans[i].addr = NULL;
	}
	int count = (int)l.count;
	header_addr_list_free(&l);
	*addrs_r = addrs;
	return count;
}
