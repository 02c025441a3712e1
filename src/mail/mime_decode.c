/* mime_decode.c - text extraction for IMAP SEARCH: RFC 2047 encoded-words
 * in header values, and part bodies decoded from base64 / quoted-printable
 * (RFC 2045 6.7, 6.8) and converted to UTF-8 with iconv(3).
 *
 * Decoding is lenient (mail readers show what they can): bad base64
 * characters are skipped, a bad "=" escape is kept literally, bytes invalid
 * in their charset become U+FFFD.  Only the charsets listed in mime.h are
 * converted, so a hostile charset name never reaches iconv_open().
 */
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/mime.h"

/* Longest charset name we look at ("iso-8859-15" plus room). */
#define MIME_CHARSET_MAX 32

/* iconv name of a supported charset; "" when the bytes are already UTF-8
 * (or ASCII); NULL when unknown. */
static const char *mime_charset_iconv_name(const char *cs, size_t len)
{
	static const struct {
		const char *name, *iconv;
	} table[] = {
		{ "us-ascii", "" },	   { "ascii", "" },
		{ "utf-8", "" },	   { "utf8", "" },
		{ "iso-8859-1", "ISO-8859-1" }, { "latin1", "ISO-8859-1" },
		{ "iso-8859-15", "ISO-8859-15" }, { "windows-1252", "WINDOWS-1252" },
		{ "cp1252", "WINDOWS-1252" },
	};
	char name[MIME_CHARSET_MAX];
	if (len >= sizeof(name))
		return NULL;
	memcpy(name, cs, len);
	name[len] = '\0';
	/* RFC 2231 5: charset "*" language */
	char *star = strchr(name, '*');
	if (star != NULL)
		*star = '\0';
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (str_casecmp(name, table[i].name) == 0)
			return table[i].iconv;
	}
	return NULL;
}

/* Append in[0..len) converted from charset (an iconv name, "" for UTF-8)
 * to UTF-8. */
static void mime_convert_append(const char *charset, const char *in, size_t len,
				struct buf *out)
{
	if (charset[0] == '\0') {
		buf_append(out, in, len);
		return;
	}
	iconv_t cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1) {
		buf_append(out, in, len);
		return;
	}
	char *src = (char *)in;
	size_t left = len;
	while (left > 0) {
		buf_reserve(out, left * 4 + 16);
		char *dst = (char *)out->data + out->len;
		size_t room = out->cap - out->len - 1;
		size_t before = room;
		size_t r = iconv(cd, &src, &left, &dst, &room);
		out->len += before - room;
		out->data[out->len] = '\0';
		if (r == (size_t)-1 && errno != E2BIG) {
			/* EILSEQ / EINVAL: replace one byte and go on */
			buf_append(out, "\xef\xbf\xbd", 3);
			src++;
			left--;
			iconv(cd, NULL, NULL, NULL, NULL);
		}
	}
	iconv_close(cd);
}

static int mime_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int mime_base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Lenient base64 (RFC 2045 6.8): characters outside the alphabet are
 * ignored, decoding stops at the first '='. */
static void mime_base64_append(const char *in, size_t len, struct buf *out)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	buf_reserve(out, len / 4 * 3 + 3);
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '=')
			break;
		int v = mime_base64_value(in[i]);
		if (v < 0)
			continue;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_append_char(out, (char)((acc >> bits) & 0xff));
		}
	}
}

/* Quoted-printable (RFC 2045 6.7); q_encoding: RFC 2047 4.2 "Q" ('_' is
 * a space, no soft line breaks). */
static void mime_qp_append(const char *in, size_t len, bool q_encoding, struct buf *out)
{
	buf_reserve(out, len);
	size_t i = 0;
	while (i < len) {
		char c = in[i];
		if (c == '=' && i + 2 < len && mime_hex_value(in[i + 1]) >= 0 &&
		    mime_hex_value(in[i + 2]) >= 0) {
			buf_append_char(out, (char)(mime_hex_value(in[i + 1]) * 16 +
						    mime_hex_value(in[i + 2])));
			i += 3;
			continue;
		}
		if (c == '=' && !q_encoding) {
			/* soft line break: "=" transport-padding CRLF */
			size_t j = i + 1;
			while (j < len && (in[j] == ' ' || in[j] == '\t'))
				j++;
			if (j < len && in[j] == '\r')
				j++;
			if (j >= len || in[j] == '\n') {
				i = j < len ? j + 1 : j;
				continue;
			}
		}
		if ((c == ' ' || c == '\t') && !q_encoding) {
			/* rule 3: white space at a line end was added in transport */
			size_t j = i;
			while (j < len && (in[j] == ' ' || in[j] == '\t'))
				j++;
			if (j >= len || in[j] == '\n' || (in[j] == '\r' && j + 1 < len &&
							   in[j + 1] == '\n')) {
				i = j;
				continue;
			}
			buf_append(out, in + i, j - i);
			i = j;
			continue;
		}
		buf_append_char(out, q_encoding && c == '_' ? ' ' : c);
		i++;
	}
}

/* ---- RFC 2047 encoded-words ---- */

struct mime_word {
	size_t end;		/* offset past "?=" */
	const char *charset;	/* iconv name */
	size_t cs_start, cs_len;
	char enc;		/* 'B' or 'Q' */
	size_t text_start, text_len;
};

/* encoded-word = "=?" charset "?" encoding "?" encoded-text "?=" at v[pos];
 * returns false when there is none or its charset is unknown. */
static bool mime_word_parse(const char *v, size_t len, size_t pos, struct mime_word *w)
{
	if (pos + 2 > len || v[pos] != '=' || v[pos + 1] != '?')
		return false;
	size_t p = pos + 2;
	w->cs_start = p;
	while (p < len && v[p] != '?' && v[p] != ' ' && (unsigned char)v[p] > ' ')
		p++;
	if (p + 3 > len || v[p] != '?' || v[p + 2] != '?')
		return false;
	w->cs_len = p - w->cs_start;
	char e = v[p + 1];
	if (e == 'b' || e == 'B')
		w->enc = 'B';
	else if (e == 'q' || e == 'Q')
		w->enc = 'Q';
	else
		return false;
	p += 3;
	w->text_start = p;
	/* encoded-text has no white space and no '?': stopping at the first
	 * '?' keeps the scan linear on "=?a?q?=?a?q?..." garbage */
	while (p < len && v[p] != '?' && v[p] != ' ' && v[p] != '\t' && v[p] != '\r' &&
	       v[p] != '\n')
		p++;
	if (p + 1 >= len || v[p] != '?' || v[p + 1] != '=')
		return false;
	w->text_len = p - w->text_start;
	w->end = p + 2;
	w->charset = mime_charset_iconv_name(v + w->cs_start, w->cs_len);
	return w->charset != NULL;
}

void mime_header_decode_append(const char *value, size_t len, struct buf *out)
{
	struct buf pending = BUF_INIT; /* decoded bytes of adjacent words */
	const char *pending_cs = NULL;
	size_t pos = 0;
	while (pos < len) {
		struct mime_word w;
		if (mime_word_parse(value, len, pos, &w)) {
			/* words of one charset are joined before conversion: a
			 * multi-byte character may be split over two words */
			if (pending_cs != NULL && strcmp(pending_cs, w.charset) != 0) {
				mime_convert_append(pending_cs, (const char *)pending.data,
						    pending.len, out);
				buf_reset(&pending);
			}
			pending_cs = w.charset;
			if (w.enc == 'B')
				mime_base64_append(value + w.text_start, w.text_len, &pending);
			else
				mime_qp_append(value + w.text_start, w.text_len, true, &pending);
			pos = w.end;
			/* RFC 2047 6.2: white space between adjacent encoded-words
			 * is ignored */
			size_t j = pos;
			while (j < len && (value[j] == ' ' || value[j] == '\t' || value[j] == '\r' ||
					   value[j] == '\n'))
				j++;
			struct mime_word next;
			if (j > pos && mime_word_parse(value, len, j, &next))
				pos = j;
			continue;
		}
		if (pending_cs != NULL) {
			mime_convert_append(pending_cs, (const char *)pending.data, pending.len, out);
			buf_reset(&pending);
			pending_cs = NULL;
		}
		/* copy up to the next "=?" */
		const char *next = NULL;
		for (size_t j = pos + 1; j + 1 < len; j++) {
			if (value[j] == '=' && value[j + 1] == '?') {
				next = value + j;
				break;
			}
		}
		size_t stop = next == NULL ? len : (size_t)(next - value);
		buf_append(out, value + pos, stop - pos);
		pos = stop;
	}
	if (pending_cs != NULL)
		mime_convert_append(pending_cs, (const char *)pending.data, pending.len, out);
	buf_deinit(&pending);
}

/* ---- bodies ---- */

static void mime_leaf_text_append(const struct mime_part *part, const char *msg,
				  struct buf *out)
{
	const char *body = msg + part->body_start;
	size_t len = part->body_len;
	struct buf decoded = BUF_INIT;
	const char *enc = part->encoding;
	if (enc != NULL && strcmp(enc, "base64") == 0) {
		mime_base64_append(body, len, &decoded);
		body = (const char *)decoded.data;
		len = decoded.len;
	} else if (enc != NULL && strcmp(enc, "quoted-printable") == 0) {
		mime_qp_append(body, len, false, &decoded);
		body = (const char *)decoded.data;
		len = decoded.len;
	}
	const char *cs = NULL;
	if (strcmp(part->type, "text") == 0) {
		for (size_t i = 0; i < part->param_count; i++) {
			if (strcmp(part->params[i].name, "charset") == 0)
				cs = mime_charset_iconv_name(part->params[i].value,
							     strlen(part->params[i].value));
		}
	}
	if (len > 0) {
		if (cs != NULL)
			mime_convert_append(cs, body, len, out);
		else
			buf_append(out, body, len);
	}
	buf_deinit(&decoded);
}

static void mime_body_walk(const struct mime_part *part, const char *msg, bool top,
			   struct buf *out)
{
	if (part->child_count > 0) {
		for (size_t i = 0; i < part->child_count; i++)
			mime_body_walk(&part->children[i], msg, false, out);
		return;
	}
	if (part->message != NULL) {
		mime_body_walk(part->message, msg, false, out);
		return;
	}
	/* Inside a multipart only text is worth searching: a 10 MB PDF
	 * decoded from base64 would find nothing a user types. */
	if (!top && strcmp(part->type, "text") != 0)
		return;
	if (out->len > 0 && out->data[out->len - 1] != '\n')
		buf_append_char(out, '\n');
	mime_leaf_text_append(part, msg, out);
}

/* A leaf part: its decoded text.  A multipart or message/rfc822: the text
 * of every text/ leaf below it, in order, each starting on a new line. */
void mime_body_text_append(const struct mime_part *part, const char *msg, struct buf *out)
{
	mime_body_walk(part, msg, true, out);
}
