/* smtp_reply.c - parser of SMTP server replies and of the EHLO keyword list.
 *
 * Called by the session code one line at a time (the line already cut at
 * its CRLF, its length checked against SMTP_REPLY_LINE_MAX).  The reply
 * text is kept in Postfix's shape for logs and bounce reports: the lines'
 * texts joined by one space after "CODE DSN" ("550 5.1.1 <x>: Recipient
 * address rejected").  The server is untrusted: lengths and line counts are
 * bounded, control characters never reach the text.
 */
#include "smtp/smtp.h"
#include "lib/str.h"

#include <string.h>

void smtp_reply_init(struct smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->text);
	buf_init(&r->lines);
}

void smtp_reply_deinit(struct smtp_reply *r)
{
	buf_deinit(&r->text);
	buf_deinit(&r->lines);
}

void smtp_reply_reset(struct smtp_reply *r)
{
	r->code = 0;
	r->dsn[0] = '\0';
	r->has_dsn = false;
	r->n_lines = 0;
	r->is_done = false;
	buf_reset(&r->text);
	buf_reset(&r->lines);
}

/* Length of an RFC 3463 status code at p, or 0: class "." 1*3digit "."
 * 1*3digit, followed by a space or the end. */
static size_t dsn_len(const char *p, size_t len, char cls)
{
	size_t i = 0, d;
	if (len < 5 || p[0] != cls || p[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		for (d = 0; i < len && p[i] >= '0' && p[i] <= '9'; i++)
			d++;
		if (d < 1 || d > 3)
			return 0;
		if (part == 0) {
			if (i >= len || p[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && p[i] != ' ')
		return 0;
	return i;
}

static void append_clean(struct buf *b, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		buf_append_char(b, (c < 0x20 || c == 0x7f) ? '?' : (char)c);
	}
}

enum smtp_parse smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len,
				const char **error_r)
{
	if (r->is_done)
		smtp_reply_reset(r);
	if (len > SMTP_REPLY_LINE_MAX) {
		*error_r = "reply line too long";
		return SMTP_PARSE_ERR;
	}
	if (r->n_lines >= SMTP_REPLY_LINES_MAX) {
		*error_r = "too many reply lines";
		return SMTP_PARSE_ERR;
	}
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
	    line[2] < '0' || line[2] > '9') {
		*error_r = "malformed reply code";
		return SMTP_PARSE_ERR;
	}
	unsigned code = (unsigned)(line[0] - '0') * 100 + (unsigned)(line[1] - '0') * 10 +
			(unsigned)(line[2] - '0');
	bool more = false;
	if (len > 3) {
		if (line[3] == '-')
			more = true;
		else if (line[3] != ' ') {
			*error_r = "malformed reply separator";
			return SMTP_PARSE_ERR;
		}
	}
	if (r->n_lines > 0 && code != r->code) {
		*error_r = "reply code changed within a multi-line reply";
		return SMTP_PARSE_ERR;
	}
	const char *text = len > 4 ? line + 4 : line + len;
	size_t tlen = len > 4 ? len - 4 : 0;

	if (r->n_lines == 0) {
		r->code = code;
		size_t dl = dsn_len(text, tlen, line[0]);
		if (dl > 0 && dl < sizeof(r->dsn)) {
			memcpy(r->dsn, text, dl);
			r->dsn[dl] = '\0';
			r->has_dsn = true;
		} else {
			r->dsn[0] = line[0];
			memcpy(r->dsn + 1, ".0.0", 5);
		}
		buf_printf(&r->text, "%u %s", code, r->dsn);
	} else {
		buf_append_char(&r->lines, '\n');
	}
	append_clean(&r->lines, text, tlen);
	/* Each line's own status code is not repeated in the joined text. */
	if (r->has_dsn) {
		size_t dl = dsn_len(text, tlen, line[0]);
		if (dl > 0) {
			text += dl;
			tlen -= dl;
			while (tlen > 0 && *text == ' ') {
				text++;
				tlen--;
			}
		}
	}
	if (tlen > 0) {
		buf_append_char(&r->text, ' ');
		append_clean(&r->text, text, tlen);
	}
	r->n_lines++;
	if (more)
		return SMTP_PARSE_MORE;
	r->is_done = true;
	return SMTP_PARSE_OK;
}

void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *e)
{
	memset(e, 0, sizeof(*e));
	const char *p = buf_cstr(&r->lines);
	const char *end = p + r->lines.len;
	bool first = true;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end;
		struct strv l = strv_trim(strv_make(p, (size_t)(le - p)));
		p = nl != NULL ? nl + 1 : end;
		if (first) { /* the server's name and greeting */
			first = false;
			continue;
		}
		const char *sp = memchr(l.ptr, ' ', l.len);
		struct strv kw = strv_make(l.ptr, sp != NULL ? (size_t)(sp - l.ptr) : l.len);
		struct strv arg = sp != NULL ? strv_trim(strv_make(sp + 1, l.len - kw.len - 1))
					     : strv_make("", 0);
		if (strv_case_eq(kw, "PIPELINING")) {
			e->pipelining = true;
		} else if (strv_case_eq(kw, "8BITMIME")) {
			e->eightbitmime = true;
		} else if (strv_case_eq(kw, "DSN")) {
			e->dsn = true;
		} else if (strv_case_eq(kw, "STARTTLS")) {
			e->starttls = true;
		} else if (strv_case_eq(kw, "SMTPUTF8")) {
			e->smtputf8 = true;
		} else if (strv_case_eq(kw, "SIZE")) {
			/* RFC 1870: "SIZE" [SP number]; 0 or none: no fixed
			 * limit.  A malformed number: treated as no limit
			 * (the server will still refuse at end of data). */
			uint64_t v = 0;
			char tmp[24];
			e->has_size = true;
			e->size = 0;
			if (arg.len > 0 && arg.len < sizeof(tmp)) {
				memcpy(tmp, arg.ptr, arg.len);
				tmp[arg.len] = '\0';
				if (str_to_u64(tmp, 0, UINT64_MAX, &v) == 0)
					e->size = v;
			}
		}
	}
}
