/* smtp_data_test.c - the DATA writer: LF -> CRLF, dot-stuffing and the end
 * marker, with the input split at every position (the result must not
 * depend on how the queue file's records cut the content). */
#include "smtp/smtp.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static const struct {
	const char *name, *in, *out;
} rows[] = {
	{ "empty", "", ".\r\n" },
	{ "one line", "a\n", "a\r\n.\r\n" },
	{ "no final newline", "a", "a\r\n.\r\n" },
	{ "leading dot", ".a\n", "..a\r\n.\r\n" },
	{ "lone dot line", "a\n.\nb\n", "a\r\n..\r\nb\r\n.\r\n" },
	{ "dot not at line start", "a.b\n", "a.b\r\n.\r\n" },
	{ "two dots", "..\n", "...\r\n.\r\n" },
	{ "empty lines", "\n\n", "\r\n\r\n.\r\n" },
	{ "dot last without newline", "x\n.", "x\r\n..\r\n.\r\n" },
	{ "bare CR kept", "a\rb\n", "a\rb\r\n.\r\n" },
	{ "header and body", "Subject: x\n\n.hidden\nend\n",
	  "Subject: x\r\n\r\n..hidden\r\nend\r\n.\r\n" },
};

static void run(const char *in, size_t split1, size_t split2, struct buf *out)
{
	struct smtp_data_writer w;
	size_t len = strlen(in);
	smtp_data_writer_init(&w);
	buf_reset(out);
	smtp_data_write(&w, (const uint8_t *)in, split1, out);
	smtp_data_write(&w, (const uint8_t *)in + split1, split2 - split1, out);
	smtp_data_write(&w, (const uint8_t *)in + split2, len - split2, out);
	smtp_data_finish(&w, out);
	assert_int_equal(w.in_bytes, len);
}

static void test_rows_every_split(void **state)
{
	(void)state;
	struct buf out = BUF_INIT;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		size_t len = strlen(rows[i].in);
		for (size_t a = 0; a <= len; a++) {
			for (size_t b = a; b <= len; b++) {
				run(rows[i].in, a, b, &out);
				if (out.len != strlen(rows[i].out) ||
				    memcmp(out.data, rows[i].out, out.len) != 0)
					fail_msg("%s split %zu/%zu: got \"%s\"", rows[i].name, a, b,
						 buf_cstr(&out));
			}
		}
	}
	buf_deinit(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows_every_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
