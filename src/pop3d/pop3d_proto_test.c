/* pop3d_proto_test.c - unit tests of the POP3 command parser and the
 * RETR/TOP encoder (dot-stuffing, CRLF, octet counts, TOP line limits). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "pop3d/pop3d.h"

#include <string.h>

static void test_cmd_parse(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *line;
		int ret;
		enum pop3_cmd_id id;
		size_t argc;
		const char *arg0;
		const char *arg1;
		const char *rest;
	} rows[] = {
		{ "stat", "STAT", 0, POP3_CMD_STAT, 0, NULL, NULL, "" },
		{ "lower case", "retr 1", 0, POP3_CMD_RETR, 1, "1", NULL, "1" },
		{ "top two args", "TOP 3 10", 0, POP3_CMD_TOP, 2, "3", "10", "3 10" },
		{ "three args", "TOP 1 2 3", -1, POP3_CMD_UNKNOWN, 0, NULL, NULL, NULL },
		{ "pass keeps spaces", "PASS a b  c", 0, POP3_CMD_PASS, 0, NULL, NULL, "a b  c" },
		{ "unknown 4", "XYZW", 0, POP3_CMD_UNKNOWN, 0, NULL, NULL, "" },
		{ "empty", "", -1, POP3_CMD_UNKNOWN, 0, NULL, NULL, NULL },
		{ "keyword 2", "AB", -1, POP3_CMD_UNKNOWN, 0, NULL, NULL, NULL },
		{ "keyword 5", "ABCDE", -1, POP3_CMD_UNKNOWN, 0, NULL, NULL, NULL },
		{ "digit keyword", "R3TR 1", -1, POP3_CMD_UNKNOWN, 0, NULL, NULL, NULL },
		{ "control char", "USER a\tb", -1, POP3_CMD_UNKNOWN, 0, NULL, NULL, NULL },
		{ "arg 39", "LIST 123456789012345678901234567890123456789", 0, POP3_CMD_LIST, 1,
		  "123456789012345678901234567890123456789", NULL, NULL },
		{ "arg 40", "LIST 1234567890123456789012345678901234567890", 0, POP3_CMD_LIST, 1,
		  "1234567890123456789012345678901234567890", NULL, NULL },
		{ "arg 41", "LIST 12345678901234567890123456789012345678901", -1, POP3_CMD_UNKNOWN,
		  0, NULL, NULL, NULL },
		{ "user long", "USER 12345678901234567890123456789012345678901@x.test", 0,
		  POP3_CMD_USER, 0, NULL, NULL, "12345678901234567890123456789012345678901@x.test" },
		{ "user empty", "USER", 0, POP3_CMD_USER, 0, NULL, NULL, "" },
		{ "auth long ir", "AUTH PLAIN AGFsaWNlQHZpcnR1YWwudGVzdABzZWNyZXQtcGFzc3dvcmQ=", 0,
		  POP3_CMD_AUTH, 2, "PLAIN", "", "PLAIN AGFsaWNlQHZpcnR1YWwudGVzdABzZWNyZXQtcGFzc3dvcmQ=" },
		{ "uidl", "UIDL", 0, POP3_CMD_UIDL, 0, NULL, NULL, "" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct pop3_cmd c;
		const char *error = NULL;
		int r = pop3_cmd_parse(rows[i].line, &c, &error);
		if (r != rows[i].ret)
			fail_msg("%s: ret %d", rows[i].name, r);
		if (r < 0) {
			assert_non_null(error);
			continue;
		}
		if (c.id != rows[i].id || c.argc != rows[i].argc)
			fail_msg("%s: id %d argc %zu", rows[i].name, (int)c.id, c.argc);
		if (rows[i].arg0 != NULL)
			assert_string_equal(c.argv[0], rows[i].arg0);
		if (rows[i].arg1 != NULL)
			assert_string_equal(c.argv[1], rows[i].arg1);
		if (rows[i].rest != NULL)
			assert_string_equal(c.rest, rows[i].rest);
	}
}

static void test_msgnum(void **state)
{
	(void)state;
	static const struct {
		const char *arg;
		size_t max;
		int ret;
		size_t num;
	} rows[] = {
		{ "1", 3, 0, 1 }, { "3", 3, 0, 3 }, { "4", 3, -1, 0 }, { "0", 3, -1, 0 },
		{ "-1", 3, -1, 0 }, { "+1", 3, -1, 0 }, { "", 3, -1, 0 }, { "1", 0, -1, 0 },
		{ "1x", 3, -1, 0 }, { "99999999999999999999999", 3, -1, 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		size_t n = 0;
		int r = pop3_msgnum_parse(rows[i].arg, rows[i].max, &n);
		if (r != rows[i].ret || (r == 0 && n != rows[i].num))
			fail_msg("row %zu (%s): ret %d num %zu", i, rows[i].arg, r, n);
	}
}

static void test_encode(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *in;
		uint64_t lines;
		const char *out;
	} rows[] = {
		{ "lf to crlf", "A: b\n\nbody\n", UINT64_MAX, "A: b\r\n\r\nbody\r\n.\r\n" },
		{ "crlf kept", "A: b\r\n\r\nbody\r\n", UINT64_MAX, "A: b\r\n\r\nbody\r\n.\r\n" },
		{ "dot stuffing", "A: b\n\n.\n..x\nx.\n", UINT64_MAX,
		  "A: b\r\n\r\n..\r\n...x\r\nx.\r\n.\r\n" },
		{ "no final newline", "A: b\n\nend", UINT64_MAX, "A: b\r\n\r\nend\r\n.\r\n" },
		{ "empty", "", UINT64_MAX, ".\r\n" },
		{ "top 0", "A: b\nC: d\n\nl1\nl2\n", 0, "A: b\r\nC: d\r\n\r\n.\r\n" },
		{ "top 1", "A: b\n\nl1\nl2\n", 1, "A: b\r\n\r\nl1\r\n.\r\n" },
		{ "top 2 = all", "A: b\n\nl1\nl2\n", 2, "A: b\r\n\r\nl1\r\nl2\r\n.\r\n" },
		{ "top 3 > all", "A: b\n\nl1\nl2\n", 3, "A: b\r\n\r\nl1\r\nl2\r\n.\r\n" },
		{ "top crlf blank", "A: b\r\n\r\n.l1\r\nl2\r\n", 1, "A: b\r\n\r\n..l1\r\n.\r\n" },
		{ "top no body", "A: b\n", 5, "A: b\r\n.\r\n" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		/* Feed byte by byte and all at once: same output. */
		for (int split = 0; split < 2; split++) {
			struct pop3_enc e;
			struct buf out = BUF_INIT;
			pop3_enc_init(&e, rows[i].lines);
			size_t len = strlen(rows[i].in);
			if (split)
				for (size_t k = 0; k < len; k++)
					pop3_enc_feed(&e, rows[i].in + k, 1, &out);
			else
				pop3_enc_feed(&e, rows[i].in, len, &out);
			uint64_t body = out.len;
			pop3_enc_finish(&e, &out);
			if (strcmp(buf_cstr(&out), rows[i].out) != 0)
				fail_msg("%s (split %d): got \"%s\"", rows[i].name, split,
					 buf_cstr(&out));
			/* octets: everything but the ".\r\n" terminator. */
			if (e.octets != out.len - 3 || body > out.len)
				fail_msg("%s: octets %llu, len %zu", rows[i].name,
					 (unsigned long long)e.octets, out.len);
			buf_deinit(&out);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmd_parse),
		cmocka_unit_test(test_msgnum),
		cmocka_unit_test(test_encode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
