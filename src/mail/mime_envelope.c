/* mime_envelope.c - IMAP FETCH answers built from a parsed message:
 * ENVELOPE and BODY/BODYSTRUCTURE (RFC 3501 7.4.2).
 *
 * Called by imapd.  Output shapes follow Dovecot where RFC 3501 leaves a
 * choice: type, subtype, encoding, disposition and parameter names are
 * upper-cased ("TEXT" "PLAIN" ("CHARSET" "us-ascii")), values are kept as
 * written; an address without a domain has host "" (NIL host means group
 * syntax); Sender and Reply-To default to From when absent or empty.
 * Strings are quoted when they are short printable ASCII, literals
 * otherwise (CR, LF, 8-bit); NUL bytes, which no IMAP string may hold, are
 * dropped.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/mime.h"

/* Longer strings go as literals: clients handle those best. */
#define MIME_QUOTED_MAX 1024

static void mime_imap_string(struct buf *out, const char *s, size_t len, bool upper)
{
	size_t n = 0;
	bool literal = len > MIME_QUOTED_MAX;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\0')
			continue;
		n++;
		if (c < 0x20 || c >= 0x7f)
			literal = true;
	}
	if (literal) {
		buf_printf(out, "{%zu}\r\n", n);
		for (size_t i = 0; i < len; i++) {
			if (s[i] != '\0')
				buf_append_char(out, s[i]);
		}
		return;
	}
	buf_append_char(out, '"');
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '\0')
			continue;
		if (c == '"' || c == '\\')
			buf_append_char(out, '\\');
		if (upper && c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		buf_append_char(out, c);
	}
	buf_append_char(out, '"');
}

static void mime_imap_nstring(struct buf *out, const char *s)
{
	if (s == NULL)
		buf_append_str(out, "NIL");
	else
		mime_imap_string(out, s, strlen(s), false);
}

static void mime_imap_upper(struct buf *out, const char *s)
{
	mime_imap_string(out, s, strlen(s), true);
}

/* ---- ENVELOPE addresses (RFC 5322 3.4, lenient) ---- */

enum mime_tok_type { TOK_END, TOK_ATOM, TOK_QUOTED, TOK_LITERAL, TOK_SPECIAL };

struct mime_tok {
	enum mime_tok_type type;
	char special;
	bool space_before; /* white space or a comment before it */
	struct buf text; /* atom, unescaped quoted string, or "[literal]" */
};

struct mime_addr_lexer {
	const char *s;
	size_t len, pos;
};

static bool mime_addr_is_atext(unsigned char c)
{
	if (c >= 0x80)
		return true; /* 8-bit: RFC 6532, or broken, keep it */
	if (c <= ' ' || c == 0x7f)
		return false;
	return strchr("()<>[]:;@\\,.\"", c) == NULL;
}

/* Next token, comments and white space skipped (RFC 5322 3.2.2 CFWS). */
static void mime_addr_next(struct mime_addr_lexer *lx, struct mime_tok *t)
{
	const char *s = lx->s;
	size_t start = lx->pos;
	buf_reset(&t->text);
	for (;;) {
		while (lx->pos < lx->len && (s[lx->pos] == ' ' || s[lx->pos] == '\t' ||
					     s[lx->pos] == '\r' || s[lx->pos] == '\n'))
			lx->pos++;
		if (lx->pos >= lx->len || s[lx->pos] != '(')
			break;
		unsigned depth = 0;
		while (lx->pos < lx->len) {
			char c = s[lx->pos++];
			if (c == '\\' && lx->pos < lx->len)
				lx->pos++;
			else if (c == '(')
				depth++;
			else if (c == ')' && --depth == 0)
				break;
		}
	}
	t->space_before = lx->pos > start;
	if (lx->pos >= lx->len) {
		t->type = TOK_END;
		return;
	}
	unsigned char c = (unsigned char)s[lx->pos];
	if (c == '"') {
		t->type = TOK_QUOTED;
		lx->pos++;
		while (lx->pos < lx->len && s[lx->pos] != '"') {
			if (s[lx->pos] == '\\' && lx->pos + 1 < lx->len)
				lx->pos++;
			if (s[lx->pos] != '\r' && s[lx->pos] != '\n')
				buf_append_char(&t->text, s[lx->pos]);
			lx->pos++;
		}
		if (lx->pos < lx->len)
			lx->pos++;
	} else if (c == '[') {
		t->type = TOK_LITERAL;
		while (lx->pos < lx->len && s[lx->pos] != ']') {
			if (s[lx->pos] == '\\' && lx->pos + 1 < lx->len)
				lx->pos++;
			buf_append_char(&t->text, s[lx->pos++]);
		}
		buf_append_char(&t->text, ']');
		if (lx->pos < lx->len)
			lx->pos++;
	} else if (mime_addr_is_atext(c)) {
		t->type = TOK_ATOM;
		while (lx->pos < lx->len && mime_addr_is_atext((unsigned char)s[lx->pos]))
			buf_append_char(&t->text, s[lx->pos++]);
	} else {
		t->type = TOK_SPECIAL;
		t->special = (char)c;
		lx->pos++;
	}
}

static bool mime_tok_is(const struct mime_tok *t, char c)
{
	return t->type == TOK_SPECIAL && t->special == c;
}

static bool mime_tok_is_word(const struct mime_tok *t)
{
	return t->type == TOK_ATOM || t->type == TOK_QUOTED;
}

static void mime_addr_emit(struct buf *out, size_t *count, const char *name, const char *adl,
			   const char *mailbox, const char *host)
{
	if ((*count)++ == 0)
		buf_append_char(out, '(');
	buf_append_char(out, '(');
	mime_imap_nstring(out, name);
	buf_append_char(out, ' ');
	mime_imap_nstring(out, adl);
	buf_append_char(out, ' ');
	mime_imap_nstring(out, mailbox);
	buf_append_char(out, ' ');
	mime_imap_nstring(out, host);
	buf_append_char(out, ')');
}

/* Domain: atoms, dots and literals up to a delimiter in stops. */
static void mime_addr_domain(struct mime_addr_lexer *lx, struct mime_tok *t, struct buf *dom,
			     const char *stops)
{
	while (t->type != TOK_END && !(t->type == TOK_SPECIAL && strchr(stops, t->special))) {
		if (t->type == TOK_SPECIAL)
			buf_append_char(dom, t->special);
		else
			buf_append(dom, t->text.data, t->text.len);
		mime_addr_next(lx, t);
	}
}

/* Angle address after '<': [route ":"] local "@" domain ">". */
static void mime_addr_angle(struct mime_addr_lexer *lx, struct mime_tok *t, struct buf *adl,
			    struct buf *local, struct buf *dom, bool *has_domain)
{
	mime_addr_next(lx, t);
	if (mime_tok_is(t, '@')) {
		/* obs-route: "@a,@b:" */
		while (t->type != TOK_END && !mime_tok_is(t, ':') && !mime_tok_is(t, '>')) {
			if (t->type == TOK_SPECIAL)
				buf_append_char(adl, t->special);
			else
				buf_append(adl, t->text.data, t->text.len);
			mime_addr_next(lx, t);
		}
		if (mime_tok_is(t, ':'))
			mime_addr_next(lx, t);
	}
	while (t->type != TOK_END && !mime_tok_is(t, '@') && !mime_tok_is(t, '>')) {
		if (t->type == TOK_SPECIAL)
			buf_append_char(local, t->special);
		else
			buf_append(local, t->text.data, t->text.len);
		mime_addr_next(lx, t);
	}
	if (mime_tok_is(t, '@')) {
		*has_domain = true;
		mime_addr_next(lx, t);
		mime_addr_domain(lx, t, dom, ">");
	}
	if (mime_tok_is(t, '>'))
		mime_addr_next(lx, t);
}

/* An address-list field value as ((name adl mailbox host) ...) or NIL. */
static void mime_address_list_append(const char *v, struct buf *out)
{
	struct mime_addr_lexer lx = { v, v == NULL ? 0 : strlen(v), 0 };
	struct mime_tok t = { TOK_END, 0, false, BUF_INIT };
	struct buf name = BUF_INIT, local = BUF_INIT, adl = BUF_INIT, dom = BUF_INIT;
	size_t count = 0;
	bool in_group = false;

	mime_addr_next(&lx, &t);
	while (t.type != TOK_END) {
		if (mime_tok_is(&t, ',')) {
			mime_addr_next(&lx, &t);
			continue;
		}
		buf_reset(&name);
		buf_reset(&local);
		buf_reset(&adl);
		buf_reset(&dom);
		/* phrase, or the local part of a bare addr-spec */
		bool have_words = false;
		while (mime_tok_is_word(&t) || mime_tok_is(&t, '.')) {
			if (t.type == TOK_SPECIAL) {
				buf_append_char(&name, '.');
				buf_append_char(&local, '.');
			} else {
				if (have_words && t.space_before)
					buf_append_char(&name, ' ');
				buf_append(&name, t.text.data, t.text.len);
				buf_append(&local, t.text.data, t.text.len);
			}
			have_words = true;
			mime_addr_next(&lx, &t);
		}
		if (mime_tok_is(&t, ':') && !in_group) {
			/* group start: (NIL NIL "name" NIL) */
			mime_addr_emit(out, &count, NULL, NULL, buf_cstr(&name), NULL);
			in_group = true;
			mime_addr_next(&lx, &t);
		} else if (mime_tok_is(&t, '<')) {
			bool has_domain = false;
			buf_reset(&local);
			mime_addr_angle(&lx, &t, &adl, &local, &dom, &has_domain);
			/* "<>" (a null path) is no address */
			if (local.len > 0 || has_domain)
				mime_addr_emit(out, &count, have_words ? buf_cstr(&name) : NULL,
					       adl.len > 0 ? buf_cstr(&adl) : NULL,
					       buf_cstr(&local), buf_cstr(&dom));
		} else if (mime_tok_is(&t, '@')) {
			mime_addr_next(&lx, &t);
			mime_addr_domain(&lx, &t, &dom, ",;<>:");
			mime_addr_emit(out, &count, NULL, NULL, buf_cstr(&local), buf_cstr(&dom));
		} else if (have_words) {
			/* "user" alone: a mailbox without a domain */
			mime_addr_emit(out, &count, NULL, NULL, buf_cstr(&local), "");
		} else if (mime_tok_is(&t, ';') && in_group) {
			mime_addr_emit(out, &count, NULL, NULL, NULL, NULL);
			in_group = false;
			mime_addr_next(&lx, &t);
		} else {
			mime_addr_next(&lx, &t); /* stray special: skip it */
		}
	}
	if (in_group)
		mime_addr_emit(out, &count, NULL, NULL, NULL, NULL);
	if (count == 0)
		buf_append_str(out, "NIL");
	else
		buf_append_char(out, ')');
	buf_deinit(&t.text);
	buf_deinit(&name);
	buf_deinit(&local);
	buf_deinit(&adl);
	buf_deinit(&dom);
}

/* Is an address field present but without any address?  Then Sender and
 * Reply-To default to From (RFC 3501 7.4.2). */
static bool mime_address_list_is_empty(const char *v)
{
	if (v == NULL)
		return true;
	struct buf tmp = BUF_INIT;
	mime_address_list_append(v, &tmp);
	bool empty = strcmp(buf_cstr(&tmp), "NIL") == 0;
	buf_deinit(&tmp);
	return empty;
}

void mime_envelope_append(const char *hdr, size_t len, struct buf *out)
{
	static const char *const fields[] = { "date", "subject", "from", "sender", "reply-to",
					      "to", "cc", "bcc", "in-reply-to", "message-id" };
	char *v[10];
	for (size_t i = 0; i < 10; i++)
		v[i] = mime_header_get(hdr, len, fields[i]);
	for (size_t i = 3; i <= 4; i++) {
		if (mime_address_list_is_empty(v[i])) {
			free(v[i]);
			v[i] = v[2] == NULL ? NULL : xstrdup(v[2]);
		}
	}
	buf_append_char(out, '(');
	for (size_t i = 0; i < 10; i++) {
		if (i > 0)
			buf_append_char(out, ' ');
		if (i >= 2 && i <= 7)
			mime_address_list_append(v[i], out);
		else
			mime_imap_nstring(out, v[i]);
		free(v[i]);
	}
	buf_append_char(out, ')');
}

/* ---- BODY / BODYSTRUCTURE ---- */

static void mime_params_append(struct buf *out, const struct mime_param *params, size_t count)
{
	if (count == 0) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_char(out, '(');
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			buf_append_char(out, ' ');
		mime_imap_upper(out, params[i].name);
		buf_append_char(out, ' ');
		mime_imap_nstring(out, params[i].value);
	}
	buf_append_char(out, ')');
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc (RFC 3501 9). */
static void mime_ext_tail_append(const struct mime_part *part, struct buf *out)
{
	buf_append_char(out, ' ');
	if (part->disposition == NULL) {
		buf_append_str(out, "NIL");
	} else {
		buf_append_char(out, '(');
		mime_imap_upper(out, part->disposition);
		buf_append_char(out, ' ');
		mime_params_append(out, part->disp_params, part->disp_param_count);
		buf_append_char(out, ')');
	}
	buf_append_char(out, ' ');
	mime_imap_nstring(out, part->language);
	buf_append_char(out, ' ');
	mime_imap_nstring(out, part->location);
}

void mime_bodystructure_append(const struct mime_part *part, const char *msg, bool extended,
			       struct buf *out)
{
	buf_append_char(out, '(');
	if (part->child_count > 0) {
		for (size_t i = 0; i < part->child_count; i++)
			mime_bodystructure_append(&part->children[i], msg, extended, out);
		buf_append_char(out, ' ');
		mime_imap_upper(out, part->subtype);
		if (extended) {
			buf_append_char(out, ' ');
			mime_params_append(out, part->params, part->param_count);
			mime_ext_tail_append(part, out);
		}
		buf_append_char(out, ')');
		return;
	}
	mime_imap_upper(out, part->type);
	buf_append_char(out, ' ');
	mime_imap_upper(out, part->subtype);
	buf_append_char(out, ' ');
	mime_params_append(out, part->params, part->param_count);
	buf_append_char(out, ' ');
	mime_imap_nstring(out, part->id);
	buf_append_char(out, ' ');
	mime_imap_nstring(out, part->description);
	buf_append_char(out, ' ');
	mime_imap_upper(out, part->encoding == NULL ? "7bit" : part->encoding);
	buf_printf(out, " %zu", part->body_len);
	if (part->message != NULL) {
		const struct mime_part *m = part->message;
		buf_append_char(out, ' ');
		mime_envelope_append(msg + m->header_start, m->header_len, out);
		buf_append_char(out, ' ');
		mime_bodystructure_append(m, msg, extended, out);
		buf_printf(out, " %zu", part->body_lines);
	} else if (strcmp(part->type, "text") == 0) {
		buf_printf(out, " %zu", part->body_lines);
	}
	if (extended) {
		buf_append_char(out, ' ');
		mime_imap_nstring(out, part->md5);
		mime_ext_tail_append(part, out);
	}
	buf_append_char(out, ')');
}
