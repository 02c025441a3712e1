/* hdrcheck.c - header_checks / body_checks actions, lookups, SMTP reply
 * and log line, with the behaviour and texts of Postfix's cleanup(8)
 * (header_checks(5); see hdrcheck.h for the list).  Pure: the caller
 * applies the action and writes the log. */
#include "mail/hdrcheck.h"

#include "mail/table.h"

#include "lib/mem.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Postfix's cleanup_stat_detail(CLEANUP_STAT_CONT). */
#define HDRCHECK_REJECT_DSN "5.7.1"
#define HDRCHECK_REJECT_TEXT "message content rejected"

void hdrcheck_result_clear(struct hdrcheck_result *r)
{
	free(r->text);
	free(r->warning);
	r->action = HDRCHECK_DUNNO;
	r->text = NULL;
	r->is_temporary = false;
	r->warning = NULL;
}

static const char *hdrcheck_map_class(enum hdrcheck_context ctx)
{
	return ctx == HDRCHECK_CTX_HEADER ? "header_checks" : "body_checks";
}

static const char *hdrcheck_ctx_word(enum hdrcheck_context ctx)
{
	return ctx == HDRCHECK_CTX_HEADER ? "header" : "body";
}

/* Append s with control characters shown as '?' (log lines must stay one
 * line whatever a matched header or a $1 substitution contains). */
static void hdrcheck_append_printable(struct buf *out, const char *s, size_t max)
{
	for (size_t i = 0; s[i] != '\0' && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		buf_append_char(out, c < 0x20 || c == 0x7f ? '?' : (char)c);
	}
}

static void hdrcheck_set_warning(struct hdrcheck_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Set r->warning, control characters shown as '?' (the text may hold
 * parts of the table value, after $1 substitution from the message). */
static void hdrcheck_set_warning(struct hdrcheck_result *r, const char *fmt, ...)
{
	struct buf raw = BUF_INIT, clean = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&raw, fmt, ap);
	va_end(ap);
	hdrcheck_append_printable(&clean, buf_cstr(&raw), (size_t)-1);
	buf_deinit(&raw);
	free(r->warning);
	r->warning = buf_steal(&clean);
}

/* A bad action (after hdrcheck_set_warning): make the result DUNNO as
 * Postfix does, and return -1. */
static int hdrcheck_make_dunno(struct hdrcheck_result *r, const char **error_r)
{
	free(r->text);
	r->action = HDRCHECK_DUNNO;
	r->text = xstrdup("");
	r->is_temporary = false;
	*error_r = r->warning;
	return -1;
}

/* Length of an RFC 3463 enhanced status code at the start of s
 * ("5.7.1", class 2/4/5, 1-3 digits, 1-3 digits) followed by white space
 * or the end, 0 when there is none: what Postfix's dsn_valid() accepts. */
static size_t hdrcheck_dsn_len(const char *s)
{
	if ((s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	size_t i = 2;
	size_t n = strspn(s + i, "0123456789");
	if (n < 1 || n > 3 || s[i + n] != '.')
		return 0;
	i += n + 1;
	n = strspn(s + i, "0123456789");
	if (n < 1 || n > 3 || (s[i + n] != '\0' && s[i + n] != ' ' && s[i + n] != '\t'))
		return 0;
	return i + n;
}

/* "name: value" with name of printable ASCII other than ':', optional
 * blanks before the colon (Postfix is_header()). */
static bool hdrcheck_is_header(const char *s)
{
	size_t i = 0;
	for (; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == ':' || c == ' ' || c == '\t')
			break;
		if (c < 0x21 || c > 0x7e)
			return false;
	}
	if (i == 0)
		return false;
	while (s[i] == ' ' || s[i] == '\t')
		i++;
	return s[i] == ':';
}

/* REJECT: reason = [dsn] text with "5.7.1" when the text has no code. */
static int hdrcheck_parse_reject(const char *text, struct hdrcheck_result *r,
				 const char **error_r)
{
	struct buf reason = BUF_INIT;
	const char *optional_text = text;

	if (*text == '\0') {
		buf_append_str(&reason, HDRCHECK_REJECT_DSN " " HDRCHECK_REJECT_TEXT);
	} else {
		size_t n = hdrcheck_dsn_len(text);
		if (n > 0) {
			buf_append(&reason, text, n);
			text += n;
			while (*text == ' ' || *text == '\t')
				text++;
		} else {
			buf_append_str(&reason, HDRCHECK_REJECT_DSN);
		}
		if (*text != '\0') {
			buf_append_char(&reason, ' ');
			buf_append_str(&reason, text);
		}
	}
	r->action = HDRCHECK_REJECT;
	r->text = buf_steal(&reason);
	if (r->text[0] != '4' && r->text[0] != '5') {
		/* Postfix: a success code cannot reject; make it temporary. */
		hdrcheck_set_warning(r, "bad DSN action in %s -- need 4.x.x or 5.x.x",
				     optional_text);
		r->text[0] = '4';
	}
	r->is_temporary = r->text[0] == '4';
	(void)error_r;
	return 0;
}

int hdrcheck_action_parse(const char *value, enum hdrcheck_context ctx,
			  struct hdrcheck_result *r, const char **error_r)
{
	static const struct {
		const char *word;
		enum hdrcheck_action action;
	} words[] = {
		{ "REJECT", HDRCHECK_REJECT },	   { "WARN", HDRCHECK_WARN },
		{ "INFO", HDRCHECK_INFO },	   { "DISCARD", HDRCHECK_DISCARD },
		{ "HOLD", HDRCHECK_HOLD },	   { "REDIRECT", HDRCHECK_REDIRECT },
		{ "PREPEND", HDRCHECK_PREPEND },   { "REPLACE", HDRCHECK_REPLACE },
		{ "IGNORE", HDRCHECK_IGNORE },	   { "DUNNO", HDRCHECK_DUNNO },
		{ "OK", HDRCHECK_DUNNO },
	};
	const char *map_class = hdrcheck_map_class(ctx);
	size_t word_len = strcspn(value, " \t");
	const char *text = value + word_len;
	size_t i;

	hdrcheck_result_clear(r);
	while (*text == ' ' || *text == '\t')
		text++;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i].word) == word_len &&
		    strncasecmp(value, words[i].word, word_len) == 0)
			break;
	if (i == sizeof(words) / sizeof(words[0])) {
		hdrcheck_set_warning(r, "unknown command in %s map: %s", map_class,
				     value);
		return hdrcheck_make_dunno(r, error_r);
	}

	enum hdrcheck_action action = words[i].action;
	switch (action) {
	case HDRCHECK_REJECT:
		return hdrcheck_parse_reject(text, r, error_r);
	case HDRCHECK_REDIRECT:
		if (strchr(text, '@') == NULL) {
			hdrcheck_set_warning(r, "bad REDIRECT target \"%s\" in %s map -- "
					     "need user@domain",
					     text, map_class);
			return hdrcheck_make_dunno(r, error_r);
		}
		break;
	case HDRCHECK_PREPEND:
	case HDRCHECK_REPLACE: {
		const char *name = action == HDRCHECK_PREPEND ? "PREPEND" : "REPLACE";
		if (*text == '\0') {
			hdrcheck_set_warning(r, "%s action without text in %s map",
					     name, map_class);
			return hdrcheck_make_dunno(r, error_r);
		}
		if (ctx == HDRCHECK_CTX_HEADER && !hdrcheck_is_header(text)) {
			hdrcheck_set_warning(r, "bad %s header text \"%s\" in %s map -- "
					     "need \"headername: headervalue\"",
					     name, text, map_class);
			return hdrcheck_make_dunno(r, error_r);
		}
		break;
	}
	case HDRCHECK_IGNORE:
	case HDRCHECK_DUNNO:
		/* Postfix allows and ignores text after these. */
		text = "";
		break;
	default:
		break;
	}
	r->action = action;
	r->text = xstrdup(text);
	return 0;
}

char *hdrcheck_key(const char *raw, size_t len)
{
	size_t n = strnlen(raw, len);
	struct buf key = BUF_INIT;

	/* Drop the line end(s) of the last physical line. */
	while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
		n--;
	buf_reserve(&key, n);
	for (size_t i = 0; i < n; i++) {
		/* Physical lines of a folded header are joined by "\n", as
		 * Postfix stores them (the CR of CRLF is not part of it). */
		if (raw[i] == '\r' && i + 1 < n && raw[i + 1] == '\n')
			continue;
		buf_append_char(&key, raw[i]);
	}
	return buf_steal(&key);
}

static int hdrcheck_lookup(struct table_list *tl, enum hdrcheck_context ctx, const char *raw,
			   size_t len, struct hdrcheck_result *r, const char **error_r)
{
	char *key = hdrcheck_key(raw, len);
	char *value = NULL;
	const char *parse_error;

	hdrcheck_result_clear(r);
	int ret = table_list_lookup(tl, key, &value, error_r);
	free(key);
	if (ret <= 0)
		return ret;
	(void)hdrcheck_action_parse(value, ctx, r, &parse_error);
	free(value);
	return 1;
}

int hdrcheck_header(struct table_list *tl, const char *field, size_t len,
		    struct hdrcheck_result *r, const char **error_r)
{
	return hdrcheck_lookup(tl, HDRCHECK_CTX_HEADER, field, len, r, error_r);
}

int hdrcheck_body_line(struct table_list *tl, const char *line, size_t len,
		       struct hdrcheck_result *r, const char **error_r)
{
	return hdrcheck_lookup(tl, HDRCHECK_CTX_BODY, line, len, r, error_r);
}

bool hdrcheck_action_stops_checks(enum hdrcheck_action action)
{
	/* Postfix clears CLEANUP_FLAG_FILTER_ALL for these three. */
	return action == HDRCHECK_REJECT || action == HDRCHECK_DISCARD ||
	       action == HDRCHECK_REDIRECT;
}

void hdrcheck_reject_reply(const struct hdrcheck_result *r, struct buf *out)
{
	/* smtpd: detail->smtp of CLEANUP_STAT_CONT (550) or _DEFER (451),
	 * then the reason, which carries its own enhanced status code. */
	const char *reason = r->text != NULL && r->text[0] != '\0'
				     ? r->text
				     : HDRCHECK_REJECT_DSN " " HDRCHECK_REJECT_TEXT;
	buf_printf(out, "%d ", r->is_temporary ? 451 : 550);
	hdrcheck_append_printable(out, reason, (size_t)-1);
}

bool hdrcheck_log_line(struct buf *out, const struct hdrcheck_log_info *info,
		       enum hdrcheck_context ctx, const char *content,
		       const struct hdrcheck_result *r)
{
	const char *word;

	switch (r->action) {
	case HDRCHECK_REJECT: word = "reject"; break;
	case HDRCHECK_WARN: word = "warning"; break;
	case HDRCHECK_INFO: word = "info"; break;
	case HDRCHECK_DISCARD: word = "discard"; break;
	case HDRCHECK_HOLD: word = "hold"; break;
	case HDRCHECK_REDIRECT: word = "redirect"; break;
	case HDRCHECK_PREPEND: word = "prepend"; break;
	case HDRCHECK_REPLACE: word = "replace"; break;
	default: return false;
	}
	/* "%s: %s: %s %.200s from %s;" then the optional attributes. */
	if (info->queue_id != NULL) {
		hdrcheck_append_printable(out, info->queue_id, (size_t)-1);
		buf_append_str(out, ": ");
	}
	buf_printf(out, "%s: %s ", word, hdrcheck_ctx_word(ctx));
	hdrcheck_append_printable(out, content != NULL ? content : "",
				  HDRCHECK_LOG_CONTENT_MAX);
	buf_append_str(out, " from ");
	hdrcheck_append_printable(out, info->origin != NULL ? info->origin : "unknown",
				  (size_t)-1);
	buf_append_char(out, ';');

	const struct {
		const char *label, *value, *open, *close;
	} attrs[] = {
		{ " from=", info->sender, "<", ">" },
		{ " to=", info->recipient, "<", ">" },
		{ " proto=", info->proto, "", "" },
		{ " helo=", info->helo, "<", ">" },
	};
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		if (attrs[i].value == NULL)
			continue;
		buf_append_str(out, attrs[i].label);
		buf_append_str(out, attrs[i].open);
		hdrcheck_append_printable(out, attrs[i].value, (size_t)-1);
		buf_append_str(out, attrs[i].close);
	}
	if (r->text != NULL && r->text[0] != '\0') {
		buf_append_str(out, ": ");
		hdrcheck_append_printable(out, r->text, (size_t)-1);
	}
	return true;
}
