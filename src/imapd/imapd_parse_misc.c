/* imapd_parse_misc.c - the small IMAP parsers and writers: sequence sets
 * (RFC 3501 section 9 sequence-set), flag lists, STORE (6.4.6), dates
 * (date, date-time) and strings out (quoted or literal, section 4.3).
 */
#include "imapd/imapd_parse.h"

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/str.h"

/* ---- sequence sets ---- */

/* seq-number = nz-number / "*"; nz-number is a 32-bit number, but
 * 4294967295 is IMAP_SEQ_STAR so it is refused (no UID reaches it). */
static int imap_seq_number(const char **p, uint32_t *n_r)
{
	const char *s = *p;
	if (*s == '*') {
		*n_r = IMAP_SEQ_STAR;
		*p = s + 1;
		return 0;
	}
	if (*s < '1' || *s > '9')
		return -1;
	uint64_t n = 0;
	while (*s >= '0' && *s <= '9') {
		n = n * 10 + (uint64_t)(*s - '0');
		if (n >= IMAP_SEQ_STAR)
			return -1;
		s++;
	}
	*n_r = (uint32_t)n;
	*p = s;
	return 0;
}

int imap_seqset_parse(const char *s, struct imap_seqset *set_r, const char **error_r)
{
	size_t alloc = 0;
	memset(set_r, 0, sizeof(*set_r));
	if (strcmp(s, "$") == 0) {
		set_r->saved = true;
		*error_r = "SEARCHRES ($) not supported";
		return -1;
	}
	for (;;) {
		struct imap_seq_range r;
		if (imap_seq_number(&s, &r.lo) < 0)
			goto bad;
		r.hi = r.lo;
		if (*s == ':') {
			s++;
			if (imap_seq_number(&s, &r.hi) < 0)
				goto bad;
		}
		if (set_r->count == alloc) {
			alloc = alloc == 0 ? 4 : alloc * 2;
			set_r->ranges = xreallocarray(set_r->ranges, alloc, sizeof(r));
		}
		set_r->ranges[set_r->count++] = r;
		if (*s == '\0')
			return 0;
		if (*s != ',')
			goto bad;
		s++;
	}
bad:
	imap_seqset_deinit(set_r);
	*error_r = "Invalid sequence set";
	return -1;
}

void imap_seqset_deinit(struct imap_seqset *set)
{
	free(set->ranges);
	set->ranges = NULL;
	set->count = 0;
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star_value)
{
	for (size_t i = 0; i < set->count; i++) {
		uint32_t lo = set->ranges[i].lo, hi = set->ranges[i].hi;
		if (lo == IMAP_SEQ_STAR)
			lo = star_value;
		if (hi == IMAP_SEQ_STAR)
			hi = star_value;
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		if (n >= lo && n <= hi)
			return true;
	}
	return false;
}

void imap_seqset_format(const uint32_t *values, size_t count, struct buf *out)
{
	size_t i = 0;
	while (i < count) {
		size_t j = i;
		while (j + 1 < count &&
		       (values[j + 1] == values[j] || values[j + 1] == values[j] + 1))
			j++;
		if (i > 0)
			buf_append_char(out, ',');
		if (j == i)
			buf_printf(out, "%u", values[i]);
		else
			buf_printf(out, "%u:%u", values[i], values[j]);
		i = j + 1;
	}
}

/* ---- flags ---- */

static const struct {
	const char *name;
	unsigned flag;
} imap_system_flags[] = {
	{ "\\Answered", IMAP_FLAG_ANSWERED }, { "\\Flagged", IMAP_FLAG_FLAGGED },
	{ "\\Deleted", IMAP_FLAG_DELETED },   { "\\Seen", IMAP_FLAG_SEEN },
	{ "\\Draft", IMAP_FLAG_DRAFT },
};

/* flag-keyword = atom: no list-wildcards, quoted-specials or resp-specials. */
static bool imap_keyword_valid(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s == '%' || *s == '*' || *s == '\\' || *s == ']')
			return false;
	}
	return true;
}

static int imap_flag_one(const struct imap_arg *a, unsigned *flags, size_t *keywords,
			 const char **error_r)
{
	if (a->type != IMAP_ARG_ATOM) {
		*error_r = "Flags must be atoms";
		return -1;
	}
	if (a->str[0] != '\\') {
		if (!imap_keyword_valid(a->str)) {
			*error_r = "Invalid keyword";
			return -1;
		}
		(*keywords)++;
		return 0;
	}
	for (size_t i = 0; i < sizeof(imap_system_flags) / sizeof(imap_system_flags[0]); i++) {
		if (str_casecmp(a->str, imap_system_flags[i].name) == 0) {
			*flags |= imap_system_flags[i].flag;
			return 0;
		}
	}
	*error_r = str_casecmp(a->str, "\\Recent") == 0 ? "\\Recent cannot be set"
							 : "Invalid system flag";
	return -1;
}

int imap_flags_parse(const struct imap_arg *args, size_t argc, unsigned *flags_r,
		     size_t *keywords_r, const char **error_r)
{
	*flags_r = 0;
	*keywords_r = 0;
	if (argc == 0) {
		*error_r = "Missing flags";
		return -1;
	}
	if (argc == 1 && args[0].type == IMAP_ARG_LIST) {
		/* "()" is a valid empty list (STORE 1 FLAGS () clears) */
		argc = args[0].count;
		args = args[0].list;
	}
	for (size_t i = 0; i < argc; i++) {
		if (imap_flag_one(&args[i], flags_r, keywords_r, error_r) < 0)
			return -1;
	}
	return 0;
}

void imap_flags_format(unsigned flags, bool recent, struct buf *out)
{
	bool first = true;
	for (size_t i = 0; i < sizeof(imap_system_flags) / sizeof(imap_system_flags[0]); i++) {
		if ((flags & imap_system_flags[i].flag) == 0)
			continue;
		if (!first)
			buf_append_char(out, ' ');
		buf_append_str(out, imap_system_flags[i].name);
		first = false;
	}
	if (recent) {
		if (!first)
			buf_append_char(out, ' ');
		buf_append_str(out, "\\Recent");
	}
}

/* ---- STORE ---- */

int imap_store_parse(const struct imap_arg *args, size_t argc, struct imap_store *st_r,
		     const char **error_r)
{
	memset(st_r, 0, sizeof(*st_r));
	if (argc == 0 || args[0].type != IMAP_ARG_ATOM) {
		*error_r = "Invalid STORE arguments";
		return -1;
	}
	const char *s = args[0].str;
	if (*s == '+') {
		st_r->mode = IMAP_STORE_ADD;
		s++;
	} else if (*s == '-') {
		st_r->mode = IMAP_STORE_REMOVE;
		s++;
	} else {
		st_r->mode = IMAP_STORE_SET;
	}
	if (str_casecmp(s, "FLAGS.SILENT") == 0) {
		st_r->silent = true;
	} else if (str_casecmp(s, "FLAGS") != 0) {
		*error_r = "Invalid STORE data item";
		return -1;
	}
	return imap_flags_parse(args + 1, argc - 1, &st_r->flags, &st_r->keywords, error_r);
}

/* ---- dates ---- */

static const char *const imap_months[12] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static bool imap_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return true;
}

static int imap_num(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* date-day "-" date-month "-" date-year; *p advanced past it.  day may be
 * one digit, or (date-day-fixed) a space and a digit. */
static int imap_date_part(const char **p, struct tm *tm)
{
	const char *s = *p;
	int day;
	if (s[0] == ' ' && imap_digits(s + 1, 1)) {
		day = s[1] - '0';
		s += 2;
	} else if (imap_digits(s, 2)) {
		day = imap_num(s, 2);
		s += 2;
	} else if (imap_digits(s, 1)) {
		day = s[0] - '0';
		s += 1;
	} else {
		return -1;
	}
	if (*s++ != '-')
		return -1;
	int mon = -1;
	for (int i = 0; i < 12; i++) {
		if (strlen(s) >= 3 && strv_case_eq(strv_make(s, 3), imap_months[i]))
			mon = i;
	}
	if (mon < 0 || s[3] != '-')
		return -1;
	s += 4;
	if (!imap_digits(s, 4))
		return -1;
	int year = imap_num(s, 4);
	s += 4;
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (day < 1 || day > mdays[mon] || (mon == 1 && day == 29 && !leap) || year < 1900)
		return -1;
	memset(tm, 0, sizeof(*tm));
	tm->tm_mday = day;
	tm->tm_mon = mon;
	tm->tm_year = year - 1900;
	*p = s;
	return 0;
}

int imap_date_parse(const char *s, time_t *t_r)
{
	struct tm tm;
	if (*s == ' ' || imap_date_part(&s, &tm) < 0 || *s != '\0')
		return -1;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*t_r = t;
	return 0;
}

int imap_datetime_parse(const char *s, time_t *t_r)
{
	struct tm tm;
	if (imap_date_part(&s, &tm) < 0)
		return -1;
	/* SP time SP zone: "02:44:25 -0700" */
	if (strlen(s) != 15 || s[0] != ' ' || !imap_digits(s + 1, 2) || s[3] != ':' ||
	    !imap_digits(s + 4, 2) || s[6] != ':' || !imap_digits(s + 7, 2) || s[9] != ' ' ||
	    (s[10] != '+' && s[10] != '-') || !imap_digits(s + 11, 4))
		return -1;
	tm.tm_hour = imap_num(s + 1, 2);
	tm.tm_min = imap_num(s + 4, 2);
	tm.tm_sec = imap_num(s + 7, 2);
	int zh = imap_num(s + 11, 2), zm = imap_num(s + 13, 2);
	if (tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 || zm > 59)
		return -1;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	long off = (long)zh * 3600 + (long)zm * 60;
	/* local = UTC + zone, so UTC = local - zone */
	*t_r = s[10] == '+' ? t - off : t + off;
	return 0;
}

void imap_datetime_format(time_t t, struct buf *out)
{
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	buf_printf(out, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
		   imap_months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- strings out ---- */

/* Longest string sent quoted; longer ones go as literals, as Dovecot does. */
#define IMAP_QUOTED_MAX 1024

static bool imap_quotable(const char *s, size_t len)
{
	if (len >= IMAP_QUOTED_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)s[i];
		if (c == '\0' || c == '\r' || c == '\n' || c >= 0x80)
			return false;
	}
	return true;
}

void imap_string_append(struct buf *out, const char *s, size_t len)
{
	if (s == NULL) {
		buf_append_str(out, "NIL");
		return;
	}
	if (!imap_quotable(s, len)) {
		buf_printf(out, "{%zu}\r\n", len);
		buf_append(out, s, len);
		return;
	}
	buf_append_char(out, '"');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_append_char(out, '\\');
		buf_append_char(out, s[i]);
	}
	buf_append_char(out, '"');
}

void imap_cstring_append(struct buf *out, const char *s)
{
	imap_string_append(out, s, s == NULL ? 0 : strlen(s));
}

void imap_astring_append(struct buf *out, const char *s)
{
	if (s == NULL) {
		buf_append_str(out, "NIL");
		return;
	}
	/* ASTRING-CHAR: ATOM-CHAR or "]"; "NIL" would read back as NIL. */
	bool atom = *s != '\0' && str_casecmp(s, "NIL") != 0;
	for (const char *p = s; atom && *p != '\0'; p++) {
		uint8_t c = (uint8_t)*p;
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\", c) != NULL)
			atom = false;
	}
	if (atom)
		buf_append_str(out, s);
	else
		imap_cstring_append(out, s);
}
