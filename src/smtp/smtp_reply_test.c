/* smtp_reply_test.c - the server reply parser and the EHLO keyword parser:
 * single and multi-line replies, enhanced status codes, malformed lines,
 * line length and line count limits (max-1, max, max+1). */
#include "smtp/smtp.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Feed lines separated by '\n'; returns the last parse result. */
static enum smtp_parse feed_all(struct smtp_reply *r, const char *text, const char **err)
{
	enum smtp_parse p = SMTP_PARSE_ERR;
	const char *s = text;
	while (*s != '\0') {
		const char *nl = strchr(s, '\n');
		size_t len = nl != NULL ? (size_t)(nl - s) : strlen(s);
		p = smtp_reply_feed(r, s, len, err);
		if (p == SMTP_PARSE_ERR)
			return p;
		s += len + (nl != NULL);
	}
	return p;
}

static void test_replies(void **state)
{
	(void)state;
	static const struct {
		const char *name, *in;
		enum smtp_parse result;
		unsigned code;
		const char *dsn, *text;
		size_t lines;
	} rows[] = {
		{ "simple", "250 Ok", SMTP_PARSE_OK, 250, "2.0.0", "250 2.0.0 Ok", 1 },
		{ "enhanced", "550 5.1.1 <x@y>: Recipient address rejected", SMTP_PARSE_OK, 550,
		  "5.1.1", "550 5.1.1 <x@y>: Recipient address rejected", 1 },
		{ "multi-line joined", "550-5.1.1 first\n550-5.1.1 second\n550 5.1.1 third",
		  SMTP_PARSE_OK, 550, "5.1.1", "550 5.1.1 first second third", 3 },
		{ "continuation pending", "250-mx.test\n250-PIPELINING", SMTP_PARSE_MORE, 250,
		  "2.0.0", NULL, 2 },
		{ "code only", "354", SMTP_PARSE_OK, 354, "3.0.0", "354 3.0.0", 1 },
		{ "dsn class must match code", "450 5.1.1 nope", SMTP_PARSE_OK, 450, "4.0.0",
		  "450 4.0.0 5.1.1 nope", 1 },
		{ "control chars replaced", "421 bye\001now", SMTP_PARSE_OK, 421, "4.0.0",
		  "421 4.0.0 bye?now", 1 },
		{ "bad first digit", "650 x", SMTP_PARSE_ERR, 0, NULL, NULL, 0 },
		{ "bad second digit", "260 x", SMTP_PARSE_ERR, 0, NULL, NULL, 0 },
		{ "letters", "abc", SMTP_PARSE_ERR, 0, NULL, NULL, 0 },
		{ "short", "25", SMTP_PARSE_ERR, 0, NULL, NULL, 0 },
		{ "bad separator", "250+Ok", SMTP_PARSE_ERR, 0, NULL, NULL, 0 },
		{ "code changes", "250-a\n251 b", SMTP_PARSE_ERR, 0, NULL, NULL, 0 },
		{ "empty line", "", SMTP_PARSE_ERR, 0, NULL, NULL, 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smtp_reply r;
		const char *err = NULL;
		smtp_reply_init(&r);
		enum smtp_parse p = rows[i].in[0] == '\0' ? smtp_reply_feed(&r, "", 0, &err)
							 : feed_all(&r, rows[i].in, &err);
		if (p != rows[i].result)
			fail_msg("%s: result %d, expected %d", rows[i].name, p, rows[i].result);
		if (p != SMTP_PARSE_ERR) {
			assert_int_equal(r.code, rows[i].code);
			assert_string_equal(r.dsn, rows[i].dsn);
			assert_int_equal(r.n_lines, rows[i].lines);
			if (rows[i].text != NULL)
				assert_string_equal(buf_cstr(&r.text), rows[i].text);
		} else {
			assert_non_null(err);
		}
		smtp_reply_deinit(&r);
	}
}

static void test_reply_reuse(void **state)
{
	(void)state;
	struct smtp_reply r;
	const char *err;
	smtp_reply_init(&r);
	assert_int_equal(feed_all(&r, "250-a\n250 b", &err), SMTP_PARSE_OK);
	/* The next line starts a new reply. */
	assert_int_equal(smtp_reply_feed(&r, "354 go", 6, &err), SMTP_PARSE_OK);
	assert_int_equal(r.code, 354);
	assert_int_equal(r.n_lines, 1);
	assert_string_equal(buf_cstr(&r.text), "354 3.0.0 go");
	smtp_reply_deinit(&r);
}

static void test_limits(void **state)
{
	(void)state;
	size_t lens[] = { SMTP_REPLY_LINE_MAX - 1, SMTP_REPLY_LINE_MAX, SMTP_REPLY_LINE_MAX + 1 };
	for (size_t i = 0; i < 3; i++) {
		char *line = malloc(lens[i]);
		memset(line, 'x', lens[i]);
		memcpy(line, "250 ", 4);
		struct smtp_reply r;
		const char *err;
		smtp_reply_init(&r);
		enum smtp_parse p = smtp_reply_feed(&r, line, lens[i], &err);
		assert_int_equal(p, lens[i] <= SMTP_REPLY_LINE_MAX ? SMTP_PARSE_OK : SMTP_PARSE_ERR);
		smtp_reply_deinit(&r);
		free(line);
	}
	size_t counts[] = { SMTP_REPLY_LINES_MAX - 1, SMTP_REPLY_LINES_MAX, SMTP_REPLY_LINES_MAX + 1 };
	for (size_t i = 0; i < 3; i++) {
		struct smtp_reply r;
		const char *err;
		enum smtp_parse p = SMTP_PARSE_ERR;
		smtp_reply_init(&r);
		for (size_t n = 0; n < counts[i]; n++) {
			const char *l = n + 1 < counts[i] ? "250-x" : "250 x";
			p = smtp_reply_feed(&r, l, 5, &err);
			if (p == SMTP_PARSE_ERR)
				break;
		}
		assert_int_equal(p, counts[i] <= SMTP_REPLY_LINES_MAX ? SMTP_PARSE_OK
								    : SMTP_PARSE_ERR);
		smtp_reply_deinit(&r);
	}
}

static void test_ehlo(void **state)
{
	(void)state;
	static const struct {
		const char *name, *in;
		bool pipelining, eightbit, dsn, has_size;
		uint64_t size;
	} rows[] = {
		{ "postfix-like",
		  "250-mx.test\n250-PIPELINING\n250-SIZE 10240000\n250-8BITMIME\n250-DSN\n250 CHUNKING",
		  true, true, true, true, 10240000 },
		{ "nothing", "250 mx.test greets you", false, false, false, false, 0 },
		{ "lower case, size without limit", "250-mx\n250-pipelining\n250 size", true, false,
		  false, true, 0 },
		{ "greeting line is not a keyword", "250-PIPELINING\n250 DSN", false, false, true,
		  false, 0 },
		{ "malformed size ignored", "250-mx\n250 SIZE 12abc", false, false, false, true, 0 },
		{ "prefix is not the keyword", "250-mx\n250-PIPELININGX\n250 DSNX", false, false,
		  false, false, 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smtp_reply r;
		struct smtp_ehlo e;
		const char *err;
		smtp_reply_init(&r);
		assert_int_equal(feed_all(&r, rows[i].in, &err), SMTP_PARSE_OK);
		smtp_ehlo_parse(&r, &e);
		if (e.pipelining != rows[i].pipelining || e.eightbitmime != rows[i].eightbit ||
		    e.dsn != rows[i].dsn || e.has_size != rows[i].has_size ||
		    e.size != rows[i].size)
			fail_msg("%s: wrong keywords", rows[i].name);
		smtp_reply_deinit(&r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_reply_reuse),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_ehlo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
