/* header_test.c - unit tests for header.c: block splitting, limits,
 * address-list rewriting and extraction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/header.h"

static void test_block_basic(void **state)
{
	(void)state;
	const char *in =
		"Received: from a\n"
		"\tby b; date\n"
		"Subject: test interne\n"
		"X-Odd  : spaced\n"
		"To: root\r\n"
		"\n"
		"coucou\n";
	struct header_block hb;
	const char *error;
	assert_int_equal(header_block_parse(in, strlen(in), 1000, 10, &hb, &error), 0);
	assert_int_equal(hb.count, 4);
	assert_string_equal(hb.fields[0].name, "Received");
	assert_string_equal(hb.fields[0].raw, "Received: from a\n\tby b; date\n");
	assert_int_equal(hb.fields[0].raw_len, 29);
	assert_string_equal(hb.fields[1].raw, "Subject: test interne\n");
	assert_string_equal(hb.fields[2].name, "X-Odd");
	assert_string_equal(hb.fields[3].raw, "To: root\r\n");
	assert_true(header_name_is(&hb.fields[3], "to"));
	assert_false(header_name_is(&hb.fields[3], "t"));
	assert_int_equal(hb.header_end, strlen(in) - strlen("\ncoucou\n"));
	header_block_deinit(&hb);
}

struct end_case {
	const char *name;
	const char *in;
	size_t count;
	size_t header_end;
};

/* Where does the header block end? */
static const struct end_case end_cases[] = {
	{ "no trailing LF", "A: 1\nB: 2", 2, 9 },
	{ "empty input", "", 0, 0 },
	{ "mbox From line", "A: 1\nFrom chris Sun May 11\nB: 2\n", 1, 5 },
	{ "leading continuation", " x\nA: 1\n", 0, 0 },
	{ "line without colon", "A: 1\nnot a header\n", 1, 5 },
	{ "empty name", ": x\n", 0, 0 },
	{ "blank line", "A: 1\n\nB: 2\n", 1, 5 },
	{ "CRLF blank line", "A: 1\r\n\r\nB: 2\n", 1, 6 },
	{ "continuation of last", "A: 1\n 2\n\t3", 1, 10 },
};

static void test_block_end(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(end_cases) / sizeof(end_cases[0]); i++) {
		const struct end_case *c = &end_cases[i];
		struct header_block hb;
		const char *error;
		assert_int_equal(header_block_parse(c->in, strlen(c->in), 1000, 10, &hb, &error), 0);
		if (hb.count != c->count || hb.header_end != c->header_end)
			fail_msg("%s: count %zu end %zu", c->name, hb.count, hb.header_end);
		/* Fields re-joined give back the header bytes exactly. */
		struct buf b = BUF_INIT;
		for (size_t j = 0; j < hb.count; j++)
			buf_append(&b, hb.fields[j].raw, hb.fields[j].raw_len);
		assert_int_equal(b.len, hb.header_end);
		assert_memory_equal(buf_cstr(&b), c->in, b.len);
		buf_deinit(&b);
		header_block_deinit(&hb);
	}
}

static void test_block_limits(void **state)
{
	(void)state;
	const char *in = "A: 12345\nB: 6789\n";	/* 9 + 8 = 17 bytes */
	struct header_block hb;
	const char *error;
	assert_int_equal(header_block_parse(in, 17, 16, 10, &hb, &error), -1);
	assert_string_equal(error, "message header size exceeds header_size_limit");
	assert_int_equal(header_block_parse(in, 17, 17, 10, &hb, &error), 0);
	header_block_deinit(&hb);
	assert_int_equal(header_block_parse(in, 17, 18, 10, &hb, &error), 0);
	header_block_deinit(&hb);

	/* count limit: max-1, max, max+1 with 1000 fields */
	struct buf b = BUF_INIT;
	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "X-%d: v\n", i);
	assert_int_equal(header_block_parse(buf_cstr(&b), b.len, 1 << 20, 1001, &hb, &error), 0);
	assert_int_equal(hb.count, 1000);
	header_block_deinit(&hb);
	assert_int_equal(header_block_parse(buf_cstr(&b), b.len, 1 << 20, 1000, &hb, &error), 0);
	header_block_deinit(&hb);
	assert_int_equal(header_block_parse(buf_cstr(&b), b.len, 1 << 20, 999, &hb, &error), -1);
	assert_string_equal(error, "too many message header fields");
	buf_deinit(&b);
}

/* Every prefix of a block parses and re-joins to a prefix of the input. */
static void test_block_prefixes(void **state)
{
	(void)state;
	const char *in = "From: a\n (c)\nTo: b,\n\tc\n\nbody\n";
	size_t n = strlen(in);
	for (size_t len = 0; len <= n; len++) {
		char *copy = xmalloc(len + 1);
		memcpy(copy, in, len);
		struct header_block hb;
		const char *error;
		assert_int_equal(header_block_parse(copy, len, 1000, 10, &hb, &error), 0);
		size_t total = 0;
		for (size_t j = 0; j < hb.count; j++)
			total += hb.fields[j].raw_len;
		assert_int_equal(total, hb.header_end);
		assert_true(hb.header_end <= len);
		header_block_deinit(&hb);
		free(copy);
	}
}

/* Rewrite every address to upper case, marking it. */
static char *rewrite_mark(void *ctx, const char *addr)
{
	(void)ctx;
	if (strcmp(addr, "keep@x") == 0)
		return NULL;
	struct buf b = BUF_INIT;
	buf_printf(&b, "[%s]", addr);
	return buf_steal(&b);
}

struct rewrite_case {
	const char *name;
	const char *in;
	const char *out;	/* NULL: syntax error */
	const char *addrs;	/* extracted addresses joined by '|' */
};

static const struct rewrite_case rewrite_cases[] = {
	{ "simple", "To: a@b\n", "To: [a@b]\n", "a@b" },
	{ "bare name", "To: root\n", "To: [root]\n", "root" },
	{ "obsolete comment", "From: chris@gw1.maison.mrs (Christian Cal\xc3\xa9" "ca)\n",
	  "From: [chris@gw1.maison.mrs] (Christian Cal\xc3\xa9" "ca)\n", "chris@gw1.maison.mrs" },
	{ "display name", "From: \"Christian CALECA\" <christian.caleca@w-n-doo.fr>\n",
	  "From: \"Christian CALECA\" <[christian.caleca@w-n-doo.fr]>\n",
	  "christian.caleca@w-n-doo.fr" },
	{ "angle only", "To: <eme13@enprovence.com>\n", "To: <[eme13@enprovence.com]>\n",
	  "eme13@enprovence.com" },
	{ "list", "To: a@b, Name <c@d>,e\n", "To: [a@b], Name <[c@d]>,[e]\n", "a@b|c@d|e" },
	{ "folded list", "Cc: a@b,\n\t c@d (x, y)\n", "Cc: [a@b],\n\t [c@d] (x, y)\n", "a@b|c@d" },
	{ "group", "To: friends: a@b, c@d;, e@f\n", "To: friends: [a@b], [c@d];, [e@f]\n",
	  "a@b|c@d|e@f" },
	{ "empty group", "To: undisclosed-recipients:;\n", "To: undisclosed-recipients:;\n", "" },
	{ "null address", "From: <>\n", "From: <>\n", "" },
	{ "route addr", "To: <@r1,@r2:u@d>\n", "To: <@r1,@r2:[u@d]>\n", "u@d" },
	{ "quoted local", "To: \"john doe\"@x\n", "To: [\"john doe\"@x]\n", "\"john doe\"@x" },
	{ "comment with specials", "To: (a <b> c) u@d\n", "To: (a <b> c) [u@d]\n", "u@d" },
	{ "nested comment", "To: u@d (a (b) c)\n", "To: [u@d] (a (b) c)\n", "u@d" },
	{ "cfws around dot", "To: u . v @ d\n", "To: [u.v@d]\n", "u.v@d" },
	{ "literal", "To: u@[1.2.3.4]\n", "To: [u@[1.2.3.4]]\n", "u@[1.2.3.4]" },
	{ "keep", "To: keep@x, y@z\n", "To: keep@x, [y@z]\n", "keep@x|y@z" },
	{ "phrase without addr", "To: John Doe\n", "To: John Doe\n", "" },
	{ "empty value", "To:\n", "To:\n", "" },
	{ "obs name colon space", "To : a@b\n", "To : [a@b]\n", "a@b" },
	{ "unbalanced quote", "To: \"a@b\n", NULL, NULL },
	{ "unbalanced comment", "To: a@b (x\n", NULL, NULL },
	{ "unbalanced angle", "To: <a@b\n", NULL, NULL },
	{ "stray angle", "To: a@b>\n", NULL, NULL },
	{ "nested angle", "To: <<a@b>>\n", NULL, NULL },
	{ "stray paren", "To: a@b)\n", NULL, NULL },
};

static void test_rewrite(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rewrite_cases) / sizeof(rewrite_cases[0]); i++) {
		const struct rewrite_case *c = &rewrite_cases[i];
		char *out = NULL;
		int ret = header_rewrite_addresses(c->in, rewrite_mark, NULL, &out);
		char **addrs = NULL;
		int n = header_extract_addresses(c->in, &addrs);
		if (c->out == NULL) {
			if (ret != -1 || n != -1)
				fail_msg("%s: accepted", c->name);
			continue;
		}
		if (ret != 0 || strcmp(out, c->out) != 0)
			fail_msg("%s: got '%s'", c->name, out != NULL ? out : "(error)");
		free(out);
		struct buf b = BUF_INIT;
		for (int j = 0; j < n; j++)
			buf_printf(&b, "%s%s", j > 0 ? "|" : "", addrs[j]);
		if (strcmp(buf_cstr(&b), c->addrs) != 0)
			fail_msg("%s: extracted '%s'", c->name, buf_cstr(&b));
		assert_null(addrs[n]);
		buf_deinit(&b);
		str_list_free(&addrs);
	}
}

static char *rewrite_none(void *ctx, const char *addr)
{
	(*(int *)ctx)++;
	(void)addr;
	return NULL;
}

/* A field with nothing to change comes back byte-identical. */
static void test_rewrite_identity(void **state)
{
	(void)state;
	const char *in = "To:   \"A, B\" <a@b>  (c),\r\n\t=?utf-8?q?x?= <d@e>\r\n";
	char *out;
	int calls = 0;
	assert_int_equal(header_rewrite_addresses(in, rewrite_none, &calls, &out), 0);
	assert_string_equal(out, in);
	assert_int_equal(calls, 2);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_block_basic),
		cmocka_unit_test(test_block_end),
		cmocka_unit_test(test_block_limits),
		cmocka_unit_test(test_block_prefixes),
		cmocka_unit_test(test_rewrite),
		cmocka_unit_test(test_rewrite_identity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
