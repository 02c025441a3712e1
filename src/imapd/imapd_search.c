/* imapd_search.c - SEARCH keys on one message (RFC 3501 6.4.4).
 *
 * Cheap keys run first: an AND evaluates its keys by cost class (flags,
 * sequence numbers, UIDs and dates; then sizes; then header keys, which
 * read only the header; then BODY/TEXT, which read and parse the whole
 * message), so that "UNSEEN FROM x" never opens a seen message.
 *
 * Strings match case-insensitively: both sides are folded to lower case as
 * UTF-8 (ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic capitals)
 * after decoding RFC 2047 encoded-words (header) or the transfer encoding
 * and charset (text parts).  Header values are unfolded first.
 *
 * Dates: BEFORE/ON/SINCE compare the UTC day of the internal date;
 * SENTBEFORE/SENTON/SENTSINCE the day written in the Date: field, in its
 * own zone ("disregarding time and timezone"); a message without a
 * readable Date: matches none of the SENT keys (NOT SENTON then matches). */
#include "imapd/imapd.h"
#include "imapd/imapd_msgcache.h"

#include "lib/buf.h"
#include "mail/mailbox.h"
#include "mail/mime.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SECS_PER_DAY 86400

enum search_cost {
	SEARCH_COST_CHEAP,  /* in-memory view only */
	SEARCH_COST_SIZE,   /* vsize: may read the message once */
	SEARCH_COST_HEADER, /* reads the header */
	SEARCH_COST_BODY,   /* reads and parses the message */
	SEARCH_COST_COUNT
};

struct search_ctx {
	struct imapd_msgcache *mc;
	struct mailbox *mb;
	size_t seq;
	const char **error_r;
	struct buf value;  /* unfolded/decoded text */
	struct buf folded; /* lower-cased text */
	struct buf needle; /* lower-cased search string */
};

/* ---- case folding ---- */

static uint32_t search_fold_cp(uint32_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c + 32;
	if (c < 0xc0)
		return c;
	if (c <= 0xde && c != 0xd7) /* Latin-1 capitals, not the multiplication sign */
		return c + 32;
	if ((c >= 0x100 && c <= 0x12f) || (c >= 0x132 && c <= 0x137) ||
	    (c >= 0x14a && c <= 0x177))
		return (c & 1) == 0 ? c + 1 : c;
	if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
		return (c & 1) == 1 ? c + 1 : c;
	if (c == 0x178)
		return 0xff;
	if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) /* Greek */
		return c + 32;
	if (c >= 0x410 && c <= 0x42f) /* Cyrillic */
		return c + 32;
	if (c >= 0x400 && c <= 0x40f)
		return c + 80;
	return c;
}

static void search_utf8_put(struct buf *out, uint32_t c)
{
	char b[4];
	size_t n;
	if (c < 0x80) {
		b[0] = (char)c;
		n = 1;
	} else if (c < 0x800) {
		b[0] = (char)(0xc0 | (c >> 6));
		b[1] = (char)(0x80 | (c & 0x3f));
		n = 2;
	} else if (c < 0x10000) {
		b[0] = (char)(0xe0 | (c >> 12));
		b[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		b[2] = (char)(0x80 | (c & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (c >> 18));
		b[1] = (char)(0x80 | ((c >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((c >> 6) & 0x3f));
		b[3] = (char)(0x80 | (c & 0x3f));
		n = 4;
	}
	buf_append(out, b, n);
}

/* Lower-case s[0..len) into out (replacing its contents).  Bytes that are
 * not valid UTF-8 are copied as they are. */
static void search_fold(const char *s, size_t len, struct buf *out)
{
	const uint8_t *p = (const uint8_t *)s;
	buf_reset(out);
	buf_reserve(out, len);
	size_t i = 0;
	while (i < len) {
		uint8_t b = p[i];
		if (b < 0x80) {
			out->data[out->len++] = (b >= 'A' && b <= 'Z') ? (uint8_t)(b + 32) : b;
			i++;
			continue;
		}
		size_t n = b >= 0xf0 && b < 0xf8 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 ? 2 : 0;
		uint32_t c = n == 4 ? b & 0x07u : n == 3 ? b & 0x0fu : b & 0x1fu;
		bool ok = n > 0 && i + n <= len;
		for (size_t k = 1; ok && k < n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				ok = false;
			else
				c = (c << 6) | (p[i + k] & 0x3fu);
		}
		if (!ok) {
			buf_append_char(out, (char)b);
			i++;
			continue;
		}
		search_utf8_put(out, search_fold_cp(c));
		i += n;
	}
	if (out->data != NULL)
		out->data[out->len] = '\0';
}

/* Does s[0..len), folded into c->folded, contain the folded needle? */
static bool search_text_has(struct search_ctx *c, const char *s, size_t len)
{
	if (c->needle.len == 0)
		return true;
	search_fold(s, len, &c->folded);
	return c->folded.len >= c->needle.len &&
	       memmem(c->folded.data, c->folded.len, c->needle.data, c->needle.len) != NULL;
}

/* ---- header fields ---- */

struct search_field {
	const char *name;
	size_t name_len;
	const char *value; /* raw, folded lines included */
	size_t value_len;
};

/* The next field of hdr[*pos..len); 0 at the end. */
static int search_field_next(const char *hdr, size_t len, size_t *pos, struct search_field *f)
{
	size_t i = *pos;
	while (i < len) {
		size_t line_end = i;
		while (line_end < len && hdr[line_end] != '\n')
			line_end++;
		/* the end of the field: the next line not starting with WSP */
		size_t end = line_end;
		while (end < len && end + 1 < len && (hdr[end + 1] == ' ' || hdr[end + 1] == '\t')) {
			end++;
			while (end < len && hdr[end] != '\n')
				end++;
		}
		size_t next = end < len ? end + 1 : len;
		const char *colon = memchr(hdr + i, ':', line_end - i);
		if (hdr[i] == ' ' || hdr[i] == '\t' || colon == NULL) {
			/* stray continuation or not a field (the empty line) */
			i = next;
			continue;
		}
		size_t nlen = (size_t)(colon - (hdr + i));
		while (nlen > 0 && (hdr[i + nlen - 1] == ' ' || hdr[i + nlen - 1] == '\t'))
			nlen--;
		f->name = hdr + i;
		f->name_len = nlen;
		f->value = colon + 1;
		f->value_len = (size_t)(hdr + end - f->value);
		*pos = next;
		return 1;
	}
	*pos = len;
	return 0;
}

/* The value unfolded (RFC 5322 2.2.3: CRLF before WSP removed), trimmed,
 * encoded-words decoded, into c->value. */
static void search_field_value(struct search_ctx *c, const struct search_field *f)
{
	struct buf raw = BUF_INIT;
	const char *v = f->value;
	size_t n = f->value_len;
	for (size_t i = 0; i < n; i++)
		if (v[i] != '\r' && v[i] != '\n')
			buf_append_char(&raw, v[i]);
	size_t s = 0, e = raw.len;
	while (s < e && (raw.data[s] == ' ' || raw.data[s] == '\t'))
		s++;
	while (e > s && (raw.data[e - 1] == ' ' || raw.data[e - 1] == '\t'))
		e--;
	buf_reset(&c->value);
	mime_header_decode_append((const char *)raw.data + s, e - s, &c->value);
	buf_deinit(&raw);
}

static bool search_name_is(const struct search_field *f, const char *name)
{
	return strv_case_eq(strv_make(f->name, f->name_len), name);
}

/* HEADER name str: any field of that name containing str. */
static int search_header(struct search_ctx *c, const char *hdr, size_t hlen, const char *name)
{
	size_t pos = 0;
	struct search_field f;
	while (search_field_next(hdr, hlen, &pos, &f) == 1) {
		if (!search_name_is(&f, name))
			continue;
		if (c->needle.len == 0)
			return 1; /* "" matches the field's presence */
		search_field_value(c, &f);
		if (search_text_has(c, (const char *)c->value.data, c->value.len))
			return 1;
	}
	return 0;
}

/* TEXT, header half: every field as "name: decoded value". */
static int search_header_any(struct search_ctx *c, const char *hdr, size_t hlen)
{
	size_t pos = 0;
	struct search_field f;
	struct buf all = BUF_INIT;
	while (search_field_next(hdr, hlen, &pos, &f) == 1) {
		search_field_value(c, &f);
		buf_append(&all, f.name, f.name_len);
		buf_append_str(&all, ": ");
		buf_append(&all, c->value.data, c->value.len);
		buf_append_str(&all, "\r\n");
	}
	int r = search_text_has(c, (const char *)all.data, all.len) ? 1 : 0;
	buf_deinit(&all);
	return r;
}

/* ---- RFC 5322 dates ---- */

static void date_skip_cfws(const char **sp)
{
	const char *s = *sp;
	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			s++;
		if (*s != '(')
			break;
		int depth = 0;
		do {
			if (*s == '\\' && s[1] != '\0')
				s++;
			else if (*s == '(')
				depth++;
			else if (*s == ')')
				depth--;
			s++;
		} while (*s != '\0' && depth > 0);
	}
	*sp = s;
}

static int date_month(const char **sp)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	const char *s = *sp;
	char m[3];
	for (int i = 0; i < 3; i++) {
		char ch = s[i];
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch + 32);
		if (ch < 'a' || ch > 'z')
			return -1;
		m[i] = ch;
	}
	for (int i = 0; i < 12; i++) {
		if (memcmp(months + 3 * i, m, 3) == 0) {
			s += 3;
			while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))
				s++; /* "January" */
			*sp = s;
			return i;
		}
	}
	return -1;
}

/* 1 to max_digits decimal digits; -1 when none or too many. */
static int date_number(const char **sp, int max_digits, int *digits_r)
{
	const char *s = *sp;
	int v = 0, n = 0;
	while (*s >= '0' && *s <= '9' && n < max_digits) {
		v = v * 10 + (*s - '0');
		s++;
		n++;
	}
	if (n == 0 || (*s >= '0' && *s <= '9'))
		return -1;
	*sp = s;
	*digits_r = n;
	return v;
}

/* RFC 5322 4.3 obs-year: two digits are 19xx from 50, else 20xx; three
 * digits add 1900. */
static int date_year(int v, int digits)
{
	if (digits == 2)
		return v < 50 ? 2000 + v : 1900 + v;
	if (digits == 3)
		return 1900 + v;
	return v;
}

/* The day of a Date: value ("[dow ,] d mon yyyy hh:mm[:ss] zone", with the
 * obsolete forms: comments, 2- or 3-digit years, full month names, "d-mon-
 * yyyy"; also the asctime() form "dow mon d hh:mm:ss yyyy"), as 00:00 UTC
 * of that calendar day.  0 or -1. */
static int search_date_parse(const char *s, time_t *day_r)
{
	int mday, mon, year, digits;
	date_skip_cfws(&s);
	/* optional day of week */
	if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')) {
		const char *t = s;
		if (date_month(&t) < 0) {
			while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
				s++;
			date_skip_cfws(&s);
			if (*s == ',')
				s++;
			date_skip_cfws(&s);
		}
	}
	const char *t = s;
	if ((mon = date_month(&t)) >= 0) {
		/* asctime: mon d hh:mm:ss yyyy */
		s = t;
		date_skip_cfws(&s);
		if ((mday = date_number(&s, 2, &digits)) < 0)
			return -1;
		date_skip_cfws(&s);
		while ((*s >= '0' && *s <= '9') || *s == ':')
			s++;
		date_skip_cfws(&s);
		if ((year = date_number(&s, 4, &digits)) < 0)
			return -1;
	} else {
		if ((mday = date_number(&s, 2, &digits)) < 0)
			return -1;
		date_skip_cfws(&s);
		if (*s == '-')
			s++;
		if ((mon = date_month(&s)) < 0)
			return -1;
		date_skip_cfws(&s);
		if (*s == '-')
			s++;
		if ((year = date_number(&s, 4, &digits)) < 0)
			return -1;
	}
	year = date_year(year, digits);
	if (mday < 1 || mday > 31 || year < 1900)
		return -1;
	struct tm tm = { .tm_mday = mday, .tm_mon = mon, .tm_year = year - 1900 };
	*day_r = timegm(&tm);
	return 0;
}

/* 00:00 UTC of the day holding t. */
static time_t search_day(time_t t)
{
	time_t r = t % SECS_PER_DAY;
	if (r < 0)
		r += SECS_PER_DAY;
	return t - r;
}

static int search_date_cmp(enum imap_search_op op, time_t day, time_t key)
{
	switch (op) {
	case IMAP_SK_BEFORE:
	case IMAP_SK_SENTBEFORE:
		return day < key;
	case IMAP_SK_ON:
	case IMAP_SK_SENTON:
		return day == key;
	default:
		return day >= key;
	}
}

/* ---- body ---- */

static bool search_is_text(const struct mime_part *p)
{
	return p->type != NULL && strcmp(p->type, "text") == 0;
}

/* BODY: the text parts decoded, other leaves as they are; an encapsulated
 * message's header and parts count as body of the outer one. */
static int search_body_part(struct search_ctx *c, const struct mime_part *p, const char *msg,
			    int depth)
{
	if (depth > MIME_DEPTH_MAX)
		return 0;
	if (p->child_count > 0) {
		for (size_t i = 0; i < p->child_count; i++)
			if (search_body_part(c, &p->children[i], msg, depth + 1) == 1)
				return 1;
		return 0;
	}
	if (p->message != NULL) {
		if (search_header_any(c, msg + p->message->header_start,
				      p->message->header_len) == 1)
			return 1;
		return search_body_part(c, p->message, msg, depth + 1);
	}
	if (search_is_text(p)) {
		buf_reset(&c->value);
		mime_body_text_append(p, msg, &c->value);
		return search_text_has(c, (const char *)c->value.data, c->value.len) ? 1 : 0;
	}
	return search_text_has(c, msg + p->body_start, p->body_len) ? 1 : 0;
}

/* ---- keys ---- */

static enum search_cost search_key_cost(const struct imap_search_key *k)
{
	enum search_cost cost = SEARCH_COST_CHEAP;
	switch (k->op) {
	case IMAP_SK_AND:
	case IMAP_SK_OR:
	case IMAP_SK_NOT:
		for (size_t i = 0; i < k->count; i++) {
			enum search_cost cc = search_key_cost(&k->children[i]);
			if (cc > cost)
				cost = cc;
		}
		return cost;
	case IMAP_SK_LARGER:
	case IMAP_SK_SMALLER:
		return SEARCH_COST_SIZE;
	case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SENTON:
	case IMAP_SK_SENTSINCE:
	case IMAP_SK_HEADER:
		return SEARCH_COST_HEADER;
	case IMAP_SK_BODY:
	case IMAP_SK_TEXT:
		return SEARCH_COST_BODY;
	default:
		return SEARCH_COST_CHEAP;
	}
}

static void search_needle_set(struct search_ctx *c, const char *str)
{
	const char *s = str != NULL ? str : "";
	search_fold(s, strlen(s), &c->needle);
}

static int search_key_match(struct search_ctx *c, const struct imap_search_key *k);

static int search_and(struct search_ctx *c, const struct imap_search_key *k)
{
	for (int pass = 0; pass < SEARCH_COST_COUNT; pass++) {
		for (size_t i = 0; i < k->count; i++) {
			if ((int)search_key_cost(&k->children[i]) != pass)
				continue;
			int r = search_key_match(c, &k->children[i]);
			if (r != 1)
				return r;
		}
	}
	return 1;
}

static int search_key_match(struct search_ctx *c, const struct imap_search_key *k)
{
	struct mailbox *mb = c->mb;
	const char *hdr, *msg;
	size_t hlen, len;
	const struct mime_part *root;
	int r;
	switch (k->op) {
	case IMAP_SK_ALL:
		return 1;
	case IMAP_SK_AND:
		return search_and(c, k);
	case IMAP_SK_OR: {
		if (k->count == 0)
			return 0;
		size_t a = 0, b = k->count > 1 ? 1 : 0;
		if (search_key_cost(&k->children[b]) < search_key_cost(&k->children[a])) {
			a = b;
			b = 0;
		}
		r = search_key_match(c, &k->children[a]);
		if (r != 0 || a == b)
			return r;
		return search_key_match(c, &k->children[b]);
	}
	case IMAP_SK_NOT:
		if (k->count == 0)
			return 0;
		r = search_key_match(c, &k->children[0]);
		return r < 0 ? r : !r;
	case IMAP_SK_SEQSET:
		return imap_seqset_contains(&k->set, (uint32_t)c->seq,
					    (uint32_t)mailbox_count(mb)) ? 1 : 0;
	case IMAP_SK_UIDSET: {
		size_t count = mailbox_count(mb);
		uint32_t star = count > 0 ? mailbox_msg_uid(mb, count) : 0;
		return imap_seqset_contains(&k->set, mailbox_msg_uid(mb, c->seq), star) ? 1 : 0;
	}
	case IMAP_SK_FLAG:
		return (mailbox_msg_flags(mb, c->seq) & k->flag) != 0 ? 1 : 0;
	case IMAP_SK_NOFLAG:
		return (mailbox_msg_flags(mb, c->seq) & k->flag) == 0 ? 1 : 0;
	case IMAP_SK_RECENT:
		return mailbox_msg_recent(mb, c->seq) ? 1 : 0;
	case IMAP_SK_KEYWORD:
		return 0; /* no keyword is ever stored */
	case IMAP_SK_UNKEYWORD:
		return 1;
	case IMAP_SK_BEFORE:
	case IMAP_SK_ON:
	case IMAP_SK_SINCE:
		return search_date_cmp(k->op, search_day(mailbox_msg_date(mb, c->seq)),
				       search_day(k->date));
	case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SENTON:
	case IMAP_SK_SENTSINCE: {
		if (imapd_msgcache_header(c->mc, mb, c->seq, &hdr, &hlen, c->error_r) < 0)
			return -1;
		size_t pos = 0;
		struct search_field f;
		while (search_field_next(hdr, hlen, &pos, &f) == 1) {
			if (!search_name_is(&f, "Date"))
				continue;
			char *v = strv_dup(strv_make(f.value, f.value_len));
			time_t day;
			r = search_date_parse(v, &day);
			free(v);
			if (r < 0)
				return 0;
			return search_date_cmp(k->op, day, search_day(k->date));
		}
		return 0;
	}
	case IMAP_SK_LARGER:
	case IMAP_SK_SMALLER: {
		uint64_t vsize;
		if (mailbox_msg_vsize(mb, c->seq, &vsize, c->error_r) < 0)
			return -1;
		return (k->op == IMAP_SK_LARGER ? vsize > k->number : vsize < k->number) ? 1 : 0;
	}
	case IMAP_SK_HEADER:
		if (imapd_msgcache_header(c->mc, mb, c->seq, &hdr, &hlen, c->error_r) < 0)
			return -1;
		search_needle_set(c, k->str);
		return search_header(c, hdr, hlen, k->header != NULL ? k->header : "");
	case IMAP_SK_BODY:
	case IMAP_SK_TEXT: {
		size_t hdr_len;
		if (imapd_msgcache_message(c->mc, mb, c->seq, &msg, &len, &hdr_len, c->error_r) <
		    0)
			return -1;
		search_needle_set(c, k->str);
		if (k->op == IMAP_SK_TEXT && search_header_any(c, msg, hdr_len) == 1)
			return 1;
		if (imapd_msgcache_parsed(c->mc, mb, c->seq, &msg, &len, &root, c->error_r) < 0)
			return -1;
		/* The top part's body is the message body: its header was
		 * handled above (TEXT) or is not body (BODY). */
		return search_body_part(c, root, msg, 0);
	}
	}
	return 0;
}

int imapd_search_match(struct imapd_msgcache *mc, struct mailbox *mb, size_t seq,
		       const struct imap_search_key *key, const char **error_r)
{
	struct search_ctx c = { .mc = mc, .mb = mb, .seq = seq, .error_r = error_r };
	buf_init(&c.value);
	buf_init(&c.folded);
	buf_init(&c.needle);
	int r = search_key_match(&c, key);
	buf_deinit(&c.value);
	buf_deinit(&c.folded);
	buf_deinit(&c.needle);
	return r;
}
