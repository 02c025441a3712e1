/* imapd_parse_fetch.c - FETCH attribute parsing (RFC 3501 section 6.4.5
 * and the section/partial grammar of section 9).  The reader hands
 * "BODY.PEEK[1.HEADER.FIELDS (From To)]<0.100>" over as one atom; this
 * file splits it into part numbers, section kind, header names and the
 * partial range, and keeps a normalized upper-case section text for the
 * answer (RFC 3501 7.4.2).
 */
#include "imapd/imapd_parse.h"

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/str.h"

static void imap_fetch_item_free(struct imap_fetch_item *it)
{
	for (size_t i = 0; i < it->field_count; i++)
		free(it->fields[i]);
	free(it->fields);
	free(it->section_text);
}

void imap_fetch_deinit(struct imap_fetch *f)
{
	for (size_t i = 0; i < f->count; i++)
		imap_fetch_item_free(&f->items[i]);
	free(f->items);
	f->items = NULL;
	f->count = 0;
}

static struct imap_fetch_item *imap_fetch_add(struct imap_fetch *f, enum imap_fetch_att att)
{
	f->items = xreallocarray(f->items, f->count + 1, sizeof(*f->items));
	struct imap_fetch_item *it = &f->items[f->count++];
	memset(it, 0, sizeof(*it));
	it->att = att;
	return it;
}

static bool imap_upper_eq(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strv_case_eq(strv_make(s, n), word);
}

/* A 32-bit number at *p (nz: no leading zero and not 0). */
static int imap_fetch_number(const char **p, bool nz, uint32_t *n_r)
{
	const char *s = *p;
	uint64_t n = 0;
	if (*s < '0' || *s > '9' || (nz && *s == '0'))
		return -1;
	while (*s >= '0' && *s <= '9') {
		n = n * 10 + (uint64_t)(*s - '0');
		if (n > UINT32_MAX)
			return -1;
		s++;
	}
	*n_r = (uint32_t)n;
	*p = s;
	return 0;
}

/* Header field names: "(" astring *(SP astring) ")" where an astring is an
 * atom or a quoted string (literals cannot appear inside an atom). */
static int imap_fetch_fields(const char *s, const char *end, struct imap_fetch_item *it)
{
	if (s >= end || *s != '(')
		return -1;
	s++;
	for (;;) {
		struct buf name = BUF_INIT;
		if (s < end && *s == '"') {
			for (s++;; s++) {
				if (s >= end) {
					buf_deinit(&name);
					return -1;
				}
				if (*s == '"')
					break;
				if (*s == '\\' && s + 1 < end)
					s++;
				buf_append_char(&name, *s);
			}
			s++;
		} else {
			while (s < end && *s != ' ' && *s != ')' && *s != '(' && *s != '"' &&
			       *s != '\\' && *s != '%' && *s != '*')
				buf_append_char(&name, *s++);
		}
		if (name.len == 0 || strlen(buf_cstr(&name)) != name.len) {
			buf_deinit(&name);
			return -1;
		}
		it->fields = xreallocarray(it->fields, it->field_count + 1, sizeof(char *));
		it->fields[it->field_count++] = buf_steal(&name);
		if (s < end && *s == ')')
			break;
		if (s >= end || *s != ' ')
			return -1;
		s++;
	}
	s++;
	return s == end ? 0 : -1;
}

/* section-spec inside the brackets: [s, end). */
static int imap_fetch_section(const char *s, const char *end, struct imap_fetch_item *it)
{
	struct buf text = BUF_INIT;
	it->kind = IMAP_SECTION_ALL;
	/* section-part = nz-number *("." nz-number) */
	while (s < end && *s >= '0' && *s <= '9') {
		uint32_t n;
		if (it->part_count == IMAP_SECTION_DEPTH_MAX || imap_fetch_number(&s, true, &n) < 0)
			goto fail;
		it->part[it->part_count++] = n;
		buf_printf(&text, "%s%u", it->part_count > 1 ? "." : "", n);
		if (s == end)
			break;
		if (*s != '.')
			goto fail;
		s++;
		if (s == end)
			goto fail;
	}
	if (s < end) {
		const char *w = s;
		while (s < end && *s != ' ')
			s++;
		size_t n = (size_t)(s - w);
		if (imap_upper_eq(w, n, "HEADER"))
			it->kind = IMAP_SECTION_HEADER;
		else if (imap_upper_eq(w, n, "HEADER.FIELDS"))
			it->kind = IMAP_SECTION_HEADER_FIELDS;
		else if (imap_upper_eq(w, n, "HEADER.FIELDS.NOT"))
			it->kind = IMAP_SECTION_HEADER_FIELDS_NOT;
		else if (imap_upper_eq(w, n, "TEXT"))
			it->kind = IMAP_SECTION_TEXT;
		else if (imap_upper_eq(w, n, "MIME") && it->part_count > 0)
			it->kind = IMAP_SECTION_MIME;
		else
			goto fail;
		if (text.len > 0)
			buf_append_char(&text, '.');
		for (size_t i = 0; i < n; i++) {
			char c = w[i];
			buf_append_char(&text, c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c);
		}
		if (it->kind == IMAP_SECTION_HEADER_FIELDS ||
		    it->kind == IMAP_SECTION_HEADER_FIELDS_NOT) {
			if (s >= end || *s != ' ' || imap_fetch_fields(s + 1, end, it) < 0)
				goto fail;
			buf_append_str(&text, " (");
			for (size_t i = 0; i < it->field_count; i++) {
				char *up = xstrdup(it->fields[i]);
				for (char *c = up; *c != '\0'; c++) {
					if (*c >= 'a' && *c <= 'z')
						*c = (char)(*c - 'a' + 'A');
				}
				if (i > 0)
					buf_append_char(&text, ' ');
				imap_astring_append(&text, up);
				free(up);
			}
			buf_append_char(&text, ')');
		} else if (s != end) {
			goto fail;
		}
	}
	it->section_text = buf_steal(&text);
	return 0;
fail:
	buf_deinit(&text);
	return -1;
}

static int imap_fetch_att_parse(const struct imap_arg *a, struct imap_fetch *f,
				const char **error_r)
{
	static const struct {
		const char *name;
		enum imap_fetch_att att;
	} simple[] = {
		{ "FLAGS", IMAP_FETCH_FLAGS },
		{ "INTERNALDATE", IMAP_FETCH_INTERNALDATE },
		{ "RFC822.SIZE", IMAP_FETCH_RFC822_SIZE },
		{ "ENVELOPE", IMAP_FETCH_ENVELOPE },
		{ "BODY", IMAP_FETCH_BODY },
		{ "BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE },
		{ "UID", IMAP_FETCH_UID },
		{ "RFC822", IMAP_FETCH_RFC822 },
		{ "RFC822.HEADER", IMAP_FETCH_RFC822_HEADER },
		{ "RFC822.TEXT", IMAP_FETCH_RFC822_TEXT },
	};
	if (a->type != IMAP_ARG_ATOM) {
		*error_r = "Invalid FETCH attribute";
		return -1;
	}
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		if (str_casecmp(a->str, simple[i].name) != 0)
			continue;
		struct imap_fetch_item *it = imap_fetch_add(f, simple[i].att);
		/* the RFC822.* forms described as sections, for convenience */
		if (it->att == IMAP_FETCH_RFC822_HEADER) {
			it->kind = IMAP_SECTION_HEADER;
			it->peek = true;
		} else if (it->att == IMAP_FETCH_RFC822_TEXT) {
			it->kind = IMAP_SECTION_TEXT;
		}
		return 0;
	}
	const char *s = a->str, *end = a->str + a->len;
	const char *br = memchr(s, '[', a->len);
	bool peek;
	if (br != NULL && imap_upper_eq(s, (size_t)(br - s), "BODY")) {
		peek = false;
	} else if (br != NULL && imap_upper_eq(s, (size_t)(br - s), "BODY.PEEK")) {
		peek = true;
	} else {
		*error_r = "Unknown FETCH attribute";
		return -1;
	}
	const char *close = memrchr(br, ']', (size_t)(end - br));
	if (close == NULL) {
		*error_r = "Missing ']' in FETCH section";
		return -1;
	}
	struct imap_fetch_item *it = imap_fetch_add(f, IMAP_FETCH_BODY_SECTION);
	it->peek = peek;
	if (imap_fetch_section(br + 1, close, it) < 0) {
		*error_r = "Invalid FETCH section";
		return -1;
	}
	s = close + 1;
	if (s < end) {
		/* partial = "<" number "." nz-number ">" (a count of 0 is
		 * accepted and gives an empty string) */
		if (*s++ != '<' || imap_fetch_number(&s, false, &it->origin) < 0 || *s++ != '.' ||
		    imap_fetch_number(&s, false, &it->count) < 0 || *s++ != '>' || s != end) {
			*error_r = "Invalid FETCH partial";
			return -1;
		}
		it->partial = true;
	}
	return 0;
}

int imap_fetch_parse(const struct imap_arg *args, size_t argc, struct imap_fetch *f_r,
		     const char **error_r)
{
	memset(f_r, 0, sizeof(*f_r));
	if (argc != 1) {
		*error_r = argc == 0 ? "Missing FETCH attributes" : "Too many FETCH arguments";
		return -1;
	}
	if (args[0].type == IMAP_ARG_ATOM) {
		/* macros (RFC 3501 6.4.5), only alone */
		static const enum imap_fetch_att fast[] = { IMAP_FETCH_FLAGS,
							    IMAP_FETCH_INTERNALDATE,
							    IMAP_FETCH_RFC822_SIZE,
							    IMAP_FETCH_ENVELOPE, IMAP_FETCH_BODY };
		size_t n = 0;
		if (str_casecmp(args[0].str, "FAST") == 0)
			n = 3;
		else if (str_casecmp(args[0].str, "ALL") == 0)
			n = 4;
		else if (str_casecmp(args[0].str, "FULL") == 0)
			n = 5;
		for (size_t i = 0; i < n; i++)
			imap_fetch_add(f_r, fast[i]);
		if (n > 0)
			return 0;
		if (imap_fetch_att_parse(&args[0], f_r, error_r) < 0)
			goto fail;
		return 0;
	}
	if (args[0].type != IMAP_ARG_LIST || args[0].count == 0) {
		*error_r = "Invalid FETCH attributes";
		return -1;
	}
	for (size_t i = 0; i < args[0].count; i++) {
		if (imap_fetch_att_parse(&args[0].list[i], f_r, error_r) < 0)
			goto fail;
	}
	return 0;
fail:
	imap_fetch_deinit(f_r);
	return -1;
}
