/* mime.c - the MIME part tree of a message (RFC 2045, 2046, 2231), header
 * field access (RFC 5322 2.2) and BODY[section] lookup (RFC 3501 6.4.5).
 *
 * Called by imapd (FETCH, SEARCH) through mime.h.  The parser never fails
 * and never copies the message: parts are byte ranges in the caller's
 * buffer.  Parsing is top-down: a multipart finds its delimiter lines in
 * its own body range once, then each child is parsed inside its range, so
 * the cost is O(size x depth) with depth <= MIME_DEPTH_MAX, never
 * quadratic in the size.  A boundary must be followed by "--", white
 * space (transport padding) or the line end to match, so an inner boundary
 * that is a prefix of the outer one (or the reverse) is not confused.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/mime.h"

/* Hostile headers: at most this many parameters are kept per field (the
 * RFC 2231 join is quadratic in the count). */
#define MIME_PARAMS_MAX 64
/* RFC 2046 5.1.1: boundaries are 1 to 70 characters; we accept up to 200. */
#define MIME_BOUNDARY_MAX 200

struct mime_parse_ctx {
	const char *msg;
	size_t parts;
};

/* ---- header fields ---- */

static bool mime_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* End of the line starting at pos (the offset past its LF, or end). */
static size_t mime_line_end(const char *s, size_t pos, size_t end)
{
	const char *lf = memchr(s + pos, '\n', end - pos);
	return lf == NULL ? end : (size_t)(lf - s) + 1;
}

static bool mime_line_is_empty(const char *s, size_t pos, size_t end)
{
	return (pos < end && s[pos] == '\n') ||
	       (pos + 1 < end && s[pos] == '\r' && s[pos + 1] == '\n');
}

/* Iterate over the fields of hdr[0..len): on 1, the field occupies
 * [*start_r, *pos) (continuation lines included), its name is
 * [*start_r, *name_end_r) without trailing white space, its value starts at
 * *value_r.  Lines without a colon are skipped (lenient, like mail readers);
 * the iteration stops at the empty line. */
static int mime_header_next(const char *hdr, size_t len, size_t *pos, size_t *start_r,
			    size_t *name_end_r, size_t *value_r)
{
	while (*pos < len && !mime_line_is_empty(hdr, *pos, len)) {
		size_t start = *pos;
		size_t end = mime_line_end(hdr, start, len);
		while (end < len && mime_is_wsp(hdr[end]))
			end = mime_line_end(hdr, end, len);
		*pos = end;
		if (mime_is_wsp(hdr[start]))
			continue; /* continuation without a field */
		const char *colon = memchr(hdr + start, ':', end - start);
		if (colon == NULL || colon == hdr + start)
			continue;
		size_t name_end = (size_t)(colon - hdr);
		if (memchr(hdr + start, '\n', name_end - start) != NULL)
			continue; /* no colon on the first line */
		*value_r = name_end + 1;
		while (name_end > start && mime_is_wsp(hdr[name_end - 1]))
			name_end--;
		*start_r = start;
		*name_end_r = name_end;
		return 1;
	}
	return 0;
}

static bool mime_name_eq(const char *s, size_t len, const char *name)
{
	size_t n = strlen(name);
	if (n != len)
		return false;
	for (size_t i = 0; i < n; i++) {
		char a = s[i], b = name[i];
		if (a >= 'A' && a <= 'Z')
			a = (char)(a - 'A' + 'a');
		if (b >= 'A' && b <= 'Z')
			b = (char)(b - 'A' + 'a');
		if (a != b)
			return false;
	}
	return true;
}

/* Unfold (RFC 5322 2.2.3: drop CR and LF) and trim; new string. */
static char *mime_value_dup(const char *s, size_t len)
{
	struct buf b = BUF_INIT;
	buf_reserve(&b, len);
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\r' && s[i] != '\n')
			buf_append_char(&b, s[i]);
	}
	size_t start = 0, end = b.len;
	while (start < end && mime_is_wsp((char)b.data[start]))
		start++;
	while (end > start && mime_is_wsp((char)b.data[end - 1]))
		end--;
	char *out = xstrndup((const char *)b.data + start, end - start);
	buf_deinit(&b);
	return out;
}

char *mime_header_get(const char *hdr, size_t len, const char *name)
{
	size_t pos = 0, start, name_end, value;
	while (mime_header_next(hdr, len, &pos, &start, &name_end, &value) > 0) {
		if (mime_name_eq(hdr + start, name_end - start, name))
			return mime_value_dup(hdr + value, pos - value);
	}
	return NULL;
}

void mime_header_fields_append(const char *hdr, size_t len, char *const *names, size_t n,
			       bool exclude, struct buf *out)
{
	size_t pos = 0, start, name_end, value;
	while (mime_header_next(hdr, len, &pos, &start, &name_end, &value) > 0) {
		bool found = false;
		for (size_t i = 0; i < n && !found; i++)
			found = mime_name_eq(hdr + start, name_end - start, names[i]);
		if (found == exclude)
			continue;
		buf_append(out, hdr + start, pos - start);
		if (hdr[pos - 1] != '\n')
			buf_append(out, "\r\n", 2); /* last field without line end */
	}
	buf_append(out, "\r\n", 2);
}

/* ---- Content-Type / Content-Disposition values (RFC 2045 5.1) ---- */

/* Skip white space, line ends and (nested) comments. */
static size_t mime_skip_cfws(const char *s, size_t pos, size_t len)
{
	while (pos < len) {
		char c = s[pos];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			pos++;
		} else if (c == '(') {
			unsigned depth = 0;
			while (pos < len) {
				c = s[pos++];
				if (c == '\\' && pos < len)
					pos++;
				else if (c == '(')
					depth++;
				else if (c == ')' && --depth == 0)
					break;
			}
		} else {
			break;
		}
	}
	return pos;
}

/* RFC 2045 5.1: token := 1*<any CHAR except SPACE, CTLs, or tspecials>. */
static bool mime_is_token_char(unsigned char c)
{
	if (c <= ' ' || c >= 0x7f)
		return false;
	return strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static size_t mime_token_end(const char *s, size_t pos, size_t len)
{
	while (pos < len && mime_is_token_char((unsigned char)s[pos]))
		pos++;
	return pos;
}

/* A value: quoted-string (unescaped) or, leniently, anything up to ';'. */
static char *mime_param_value(const char *s, size_t *pos, size_t len)
{
	struct buf b = BUF_INIT;
	if (*pos < len && s[*pos] == '"') {
		size_t p = *pos + 1;
		while (p < len && s[p] != '"') {
			if (s[p] == '\\' && p + 1 < len)
				p++;
			if (s[p] != '\r' && s[p] != '\n')
				buf_append_char(&b, s[p]);
			p++;
		}
		*pos = p < len ? p + 1 : p;
		return buf_steal(&b);
	}
	size_t p = *pos;
	while (p < len && s[p] != ';')
		p++;
	size_t end = p;
	while (end > *pos && (mime_is_wsp(s[end - 1]) || s[end - 1] == '\r' || s[end - 1] == '\n'))
		end--;
	for (size_t i = *pos; i < end; i++) {
		if (s[i] != '\r' && s[i] != '\n')
			buf_append_char(&b, s[i]);
	}
	*pos = p;
	return buf_steal(&b);
}

struct mime_raw_param {
	char *base;	  /* lower-cased name without the RFC 2231 section */
	long section;	  /* -1: none */
	bool extended;	  /* name ended with '*' */
	char *value;
};

static int mime_raw_param_cmp(const void *a, const void *b)
{
	const struct mime_raw_param *pa = a, *pb = b;
	return (pa->section > pb->section) - (pa->section < pb->section);
}

/* Parse ";" separated parameters from s[pos..len) and join RFC 2231
 * continuations (name*0, name*1*, ...) in section order.  A joined
 * parameter whose first section was extended keeps a '*' at the end of its
 * name ("filename*" = "utf-8''%E2%82%AC"), so the client can decode it. */
static void mime_params_parse(const char *s, size_t pos, size_t len, struct mime_param **params_r,
			      size_t *count_r)
{
	struct mime_raw_param raw[MIME_PARAMS_MAX];
	size_t nraw = 0;
	while (pos < len && nraw < MIME_PARAMS_MAX) {
		pos = mime_skip_cfws(s, pos, len);
		if (pos < len && s[pos] != ';') {
			/* garbage: skip to the next parameter */
			while (pos < len && s[pos] != ';') {
				if (s[pos] == '"') {
					pos++;
					while (pos < len && s[pos] != '"')
						pos += s[pos] == '\\' ? 2 : 1;
				}
				pos++;
			}
		}
		if (pos >= len)
			break;
		pos = mime_skip_cfws(s, pos + 1, len);
		/* RFC 2231 names contain '*' which is a token char. */
		size_t name_start = pos;
		pos = mime_token_end(s, pos, len);
		size_t name_end = pos;
		if (name_end == name_start)
			continue;
		pos = mime_skip_cfws(s, pos, len);
		if (pos >= len || s[pos] != '=')
			continue;
		pos = mime_skip_cfws(s, pos + 1, len);
		char *value = mime_param_value(s, &pos, len);
		struct mime_raw_param *r = &raw[nraw++];
		r->section = -1;
		r->extended = false;
		if (s[name_end - 1] == '*') {
			r->extended = true;
			name_end--;
		}
		const char *star = memchr(s + name_start, '*', name_end - name_start);
		if (star != NULL && star > s + name_start) {
			char *num = xstrndup(star + 1, (size_t)(s + name_end - star - 1));
			long section;
			if (str_to_long(num, 0, 9999, &section) == 0) {
				r->section = section;
				name_end = (size_t)(star - s);
			}
			free(num);
		}
		r->base = xstrndup(s + name_start, name_end - name_start);
		str_lower(r->base);
		r->value = value;
	}

	struct mime_param *params = NULL;
	size_t count = 0;
	bool used[MIME_PARAMS_MAX] = { false };
	for (size_t i = 0; i < nraw; i++) {
		if (used[i])
			continue;
		struct mime_raw_param group[MIME_PARAMS_MAX];
		size_t ng = 0;
		for (size_t j = i; j < nraw; j++) {
			if (!used[j] && strcmp(raw[j].base, raw[i].base) == 0 &&
			    (raw[i].section >= 0) == (raw[j].section >= 0)) {
				used[j] = true;
				group[ng++] = raw[j];
				if (raw[i].section < 0)
					break; /* a plain name: first one only */
			}
		}
		qsort(group, ng, sizeof(group[0]), mime_raw_param_cmp);
		struct buf v = BUF_INIT;
		for (size_t j = 0; j < ng; j++)
			buf_append_str(&v, group[j].value);
		params = xreallocarray(params, count + 1, sizeof(*params));
		struct buf name = BUF_INIT;
		buf_append_str(&name, raw[i].base);
		if (group[0].extended)
			buf_append_char(&name, '*');
		params[count].name = buf_steal(&name);
		params[count].value = buf_steal(&v);
		count++;
	}
	for (size_t i = 0; i < nraw; i++) {
		free(raw[i].base);
		free(raw[i].value);
	}
	*params_r = params;
	*count_r = count;
}

static void mime_params_free(struct mime_param **params, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free((*params)[i].name);
		free((*params)[i].value);
	}
	free(*params);
	*params = NULL;
}

static const char *mime_param_find(const struct mime_param *params, size_t count,
				   const char *name)
{
	for (size_t i = 0; i < count; i++) {
		if (strcmp(params[i].name, name) == 0)
			return params[i].value;
	}
	return NULL;
}

static void mime_part_set_default_type(struct mime_part *part, bool digest)
{
	part->type = xstrdup(digest ? "message" : "text");
	part->subtype = xstrdup(digest ? "rfc822" : "plain");
}

/* Content-Type: type "/" subtype *(";" parameter).  RFC 2045 5.2: a
 * missing or invalid one means text/plain; charset=us-ascii (or
 * message/rfc822 inside multipart/digest, RFC 2046 5.1.5). */
static void mime_content_type_parse(struct mime_part *part, const char *v, bool digest)
{
	size_t len = v == NULL ? 0 : strlen(v);
	size_t pos = 0;
	if (v != NULL) {
		pos = mime_skip_cfws(v, 0, len);
		size_t t0 = pos, t1 = mime_token_end(v, pos, len);
		pos = mime_skip_cfws(v, t1, len);
		if (t1 > t0 && pos < len && v[pos] == '/') {
			pos = mime_skip_cfws(v, pos + 1, len);
			size_t s0 = pos, s1 = mime_token_end(v, pos, len);
			if (s1 > s0) {
				part->type = xstrndup(v + t0, t1 - t0);
				part->subtype = xstrndup(v + s0, s1 - s0);
				str_lower(part->type);
				str_lower(part->subtype);
				mime_params_parse(v, s1, len, &part->params, &part->param_count);
			}
		}
	}
	if (part->type == NULL)
		mime_part_set_default_type(part, digest);
	/* Like Dovecot: a text part without parameters reports the default
	 * charset. */
	if (strcmp(part->type, "text") == 0 && part->param_count == 0) {
		part->params = xmalloc(sizeof(*part->params));
		part->params[0].name = xstrdup("charset");
		part->params[0].value = xstrdup("us-ascii");
		part->param_count = 1;
	}
}

static void mime_disposition_parse(struct mime_part *part, const char *v)
{
	size_t len = strlen(v);
	size_t pos = mime_skip_cfws(v, 0, len);
	size_t t1 = mime_token_end(v, pos, len);
	if (t1 == pos)
		return;
	part->disposition = xstrndup(v + pos, t1 - pos);
	str_lower(part->disposition);
	mime_params_parse(v, t1, len, &part->disp_params, &part->disp_param_count);
}

/* Content-Transfer-Encoding: the token, lower-cased; 7bit is NULL. */
static char *mime_encoding_parse(const char *v)
{
	size_t len = strlen(v);
	size_t pos = mime_skip_cfws(v, 0, len);
	size_t end = mime_token_end(v, pos, len);
	if (end == pos)
		return NULL;
	char *enc = xstrndup(v + pos, end - pos);
	str_lower(enc);
	if (strcmp(enc, "7bit") == 0) {
		free(enc);
		return NULL;
	}
	return enc;
}

/* ---- the part tree ---- */

static size_t mime_count_lines(const char *s, size_t len)
{
	size_t lines = 0;
	const char *p = s, *end = s + len;
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		if (lf == NULL) {
			lines++; /* a last line without line end counts */
			break;
		}
		lines++;
		p = lf + 1;
	}
	return lines;
}

static void mime_part_parse(struct mime_parse_ctx *ctx, struct mime_part *part, size_t start,
			    size_t end, unsigned depth, bool digest);

/* Is the line at pos a delimiter of boundary b?  Returns 0: no, 1:
 * delimiter, 2: close delimiter (RFC 2046 5.1.1). */
static int mime_boundary_match(const char *msg, size_t pos, size_t end, const char *b, size_t blen)
{
	if (end - pos < blen + 2 || msg[pos] != '-' || msg[pos + 1] != '-' ||
	    memcmp(msg + pos + 2, b, blen) != 0)
		return 0;
	pos += blen + 2;
	if (end - pos >= 2 && msg[pos] == '-' && msg[pos + 1] == '-')
		return 2; /* anything may follow a close delimiter */
	/* transport-padding, then the line end */
	while (pos < end && (mime_is_wsp(msg[pos]) || msg[pos] == '\r'))
		pos++;
	return pos == end || msg[pos] == '\n' ? 1 : 0;
}

struct mime_range {
	size_t start, end;
};

static void mime_multipart_parse(struct mime_parse_ctx *ctx, struct mime_part *part,
				 unsigned depth)
{
	const char *msg = ctx->msg;
	const char *b = mime_param_find(part->params, part->param_count, "boundary");
	size_t blen = b == NULL ? 0 : strlen(b);
	struct mime_range *ranges = NULL;
	size_t nranges = 0;
	size_t end = part->body_start + part->body_len;

	if (blen > 0 && blen <= MIME_BOUNDARY_MAX && depth < MIME_DEPTH_MAX) {
		bool in_part = false;
		size_t pos = part->body_start;
		while (pos < end) {
			size_t next = mime_line_end(msg, pos, end);
			int m = mime_boundary_match(msg, pos, end, b, blen);
			if (m != 0) {
				if (in_part) {
					/* the CRLF before the delimiter belongs to it */
					size_t pend = pos;
					if (pend > ranges[nranges - 1].start && msg[pend - 1] == '\n')
						pend--;
					if (pend > ranges[nranges - 1].start && msg[pend - 1] == '\r')
						pend--;
					ranges[nranges - 1].end = pend;
					in_part = false;
				}
				if (m == 2)
					break;
				if (ctx->parts >= MIME_PARTS_MAX)
					break;
				ranges = xreallocarray(ranges, nranges + 1, sizeof(*ranges));
				ranges[nranges].start = next;
				ranges[nranges].end = end;
				nranges++;
				ctx->parts++;
				in_part = true;
			}
			pos = next;
		}
	}
	bool digest = strcmp(part->subtype, "digest") == 0;
	if (nranges == 0) {
		/* RFC 3501 needs at least one part: an empty text/plain one. */
		part->children = xcalloc(1, sizeof(*part->children));
		part->child_count = 1;
		struct mime_part *c = &part->children[0];
		c->header_start = c->body_start = end;
		mime_content_type_parse(c, NULL, false);
		free(ranges);
		return;
	}
	part->children = xcalloc(nranges, sizeof(*part->children));
	part->child_count = nranges;
	for (size_t i = 0; i < nranges; i++)
		mime_part_parse(ctx, &part->children[i], ranges[i].start, ranges[i].end, depth + 1,
				digest);
	free(ranges);
}

/* Parse the part whose header starts at start and which ends at end. */
static void mime_part_parse(struct mime_parse_ctx *ctx, struct mime_part *part, size_t start,
			    size_t end, unsigned depth, bool digest)
{
	const char *msg = ctx->msg;
	char *ctype = NULL, *cte = NULL, *cdisp = NULL;

	part->header_start = start;
	size_t pos = start, fstart, name_end, value;
	while (mime_header_next(msg, end, &pos, &fstart, &name_end, &value) > 0) {
		const char *name = msg + fstart;
		size_t nlen = name_end - fstart;
		char **slot = NULL;
		if (nlen < 8 || !mime_name_eq(name, 8, "content-"))
			continue;
		if (mime_name_eq(name, nlen, "content-type"))
			slot = &ctype;
		else if (mime_name_eq(name, nlen, "content-transfer-encoding"))
			slot = &cte;
		else if (mime_name_eq(name, nlen, "content-disposition"))
			slot = &cdisp;
		else if (mime_name_eq(name, nlen, "content-id"))
			slot = &part->id;
		else if (mime_name_eq(name, nlen, "content-description"))
			slot = &part->description;
		else if (mime_name_eq(name, nlen, "content-md5"))
			slot = &part->md5;
		else if (mime_name_eq(name, nlen, "content-language"))
			slot = &part->language;
		else if (mime_name_eq(name, nlen, "content-location"))
			slot = &part->location;
		if (slot != NULL && *slot == NULL)
			*slot = mime_value_dup(msg + value, pos - value);
	}
	/* pos is at the empty line or at end (no separator: all header). */
	if (pos < end)
		pos = mime_line_end(msg, pos, end);
	part->header_len = pos - start;
	part->body_start = pos;
	part->body_len = end - pos;
	part->body_lines = mime_count_lines(msg + pos, end - pos);

	mime_content_type_parse(part, ctype, digest);
	if (cte != NULL)
		part->encoding = mime_encoding_parse(cte);
	if (cdisp != NULL)
		mime_disposition_parse(part, cdisp);
	free(ctype);
	free(cte);
	free(cdisp);

	if (strcmp(part->type, "multipart") == 0) {
		mime_multipart_parse(ctx, part, depth);
	} else if (strcmp(part->type, "message") == 0 && strcmp(part->subtype, "rfc822") == 0 &&
		   (part->encoding == NULL || strcmp(part->encoding, "8bit") == 0 ||
		    strcmp(part->encoding, "binary") == 0) &&
		   depth < MIME_DEPTH_MAX && ctx->parts < MIME_PARTS_MAX) {
		/* An encoded message/rfc822 is shown as a basic body, like
		 * Dovecot does: its bytes are not a message. */
		ctx->parts++;
		part->message = xcalloc(1, sizeof(*part->message));
		mime_part_parse(ctx, part->message, part->body_start, end, depth + 1, false);
	}
}

struct mime_part *mime_parse(const char *msg, size_t len)
{
	struct mime_parse_ctx ctx = { msg, 1 };
	struct mime_part *root = xcalloc(1, sizeof(*root));
	mime_part_parse(&ctx, root, 0, len, 0, false);
	return root;
}

static void mime_part_deinit(struct mime_part *part)
{
	free(part->type);
	free(part->subtype);
	mime_params_free(&part->params, part->param_count);
	free(part->id);
	free(part->description);
	free(part->encoding);
	free(part->md5);
	free(part->disposition);
	mime_params_free(&part->disp_params, part->disp_param_count);
	free(part->language);
	free(part->location);
	for (size_t i = 0; i < part->child_count; i++)
		mime_part_deinit(&part->children[i]);
	free(part->children);
	if (part->message != NULL) {
		mime_part_deinit(part->message);
		free(part->message);
	}
}

void mime_part_free(struct mime_part **root)
{
	if (*root == NULL)
		return;
	mime_part_deinit(*root);
	free(*root);
	*root = NULL;
}

const struct mime_part *mime_part_find(const struct mime_part *root, const uint32_t *part,
				       size_t count)
{
	const struct mime_part *cur = root;
	for (size_t i = 0; i < count; i++) {
		/* RFC 3501 6.4.5: the parts of a message/rfc822 part are those
		 * of the encapsulated message. */
		if (i > 0 && cur->message != NULL)
			cur = cur->message;
		if (cur->child_count > 0) {
			if (part[i] < 1 || part[i] > cur->child_count)
				return NULL;
			cur = &cur->children[part[i] - 1];
		} else if (part[i] != 1) {
			return NULL; /* a non-multipart has only part 1: itself */
		}
	}
	return cur;
}
