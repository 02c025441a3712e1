/* base64_test.c - unit tests for the strict base64 codec: RFC 4648 section
 * 10 vectors, rejection of every non-canonical form, output size limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/base64.h"

#include <stdlib.h>
#include <string.h>

static void test_encode_rfc_vectors(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} rows[] = {
		{ "", "" },
		{ "f", "Zg==" },
		{ "fo", "Zm8=" },
		{ "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
		{ "\xff\xfe\xfd", "//79" },
		{ "\0user\0pass", "AHVzZXIAcGFzcw==" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		size_t len = strcmp(rows[i].out, "AHVzZXIAcGFzcw==") == 0 ? 10 : strlen(rows[i].in);
		char *e = base64_encode(rows[i].in, len);
		assert_string_equal(e, rows[i].out);
		assert_int_equal(strlen(e), base64_encoded_len(len));
		uint8_t dec[32];
		size_t n;
		const char *err = NULL;
		assert_int_equal(base64_decode(e, strlen(e), dec, sizeof(dec), &n, &err), 0);
		assert_int_equal(n, len);
		assert_memory_equal(dec, rows[i].in, len);
		free(e);
	}
}

static void test_decode_rows(void **state)
{
	(void)state;
	static const struct {
		const char *name, *in;
		int ret;
		const char *out;
	} rows[] = {
		{ "plain", "Zm9vYmFy", 0, "foobar" },
		{ "one pad", "Zm8=", 0, "fo" },
		{ "two pads", "Zg==", 0, "f" },
		{ "empty", "", 0, "" },
		{ "short", "Zm9", -1, NULL },
		{ "no padding", "Zg", -1, NULL },
		{ "three pads", "Z===", -1, NULL },
		{ "four pads", "====", -1, NULL },
		{ "pad in middle", "Zg==Zm9v", -1, NULL },
		{ "data after pad", "Zm=v", -1, NULL },
		{ "space", "Zm9v YmFy", -1, NULL },
		{ "trailing newline", "Zm9v\n", -1, NULL },
		{ "crlf", "Zm9v\r\n", -1, NULL },
		{ "url alphabet", "Zm-_", -1, NULL },
		{ "pad bits set 1", "Zm9=", -1, NULL },
		{ "pad bits set 2", "Zh==", -1, NULL },
		{ "high bit", "Zm9\xc3", -1, NULL },
		{ "star", "*", -1, NULL },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint8_t dec[32];
		size_t n = 99;
		const char *err = NULL;
		int ret = base64_decode(rows[i].in, strlen(rows[i].in), dec, sizeof(dec), &n, &err);
		if (ret != rows[i].ret)
			fail_msg("row %s: got %d", rows[i].name, ret);
		if (ret == 0) {
			assert_int_equal(n, strlen(rows[i].out));
			assert_memory_equal(dec, rows[i].out, n);
		} else {
			assert_non_null(err);
		}
	}
}

static void test_decode_limit(void **state)
{
	(void)state;
	/* "foobar" is 6 bytes: a 5-byte buffer fails, 6 bytes is exactly
	 * enough, 7 is more than enough. */
	static const struct {
		size_t size;
		int ret;
	} rows[] = { { 5, -1 }, { 6, 0 }, { 7, 0 }, { 0, -1 } };
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint8_t dec[8];
		size_t n;
		const char *err = NULL;
		assert_int_equal(base64_decode("Zm9vYmFy", 8, dec, rows[i].size, &n, &err), rows[i].ret);
	}
	assert_int_equal(base64_decoded_max(8), 6);
	assert_int_equal(base64_encoded_len(SIZE_MAX), SIZE_MAX);
}

static void test_roundtrip_all_bytes(void **state)
{
	(void)state;
	uint8_t in[256], out[256];
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	for (size_t len = 0; len <= sizeof(in); len++) {
		char *e = base64_encode(in, len);
		size_t n;
		const char *err;
		assert_int_equal(base64_decode(e, strlen(e), out, sizeof(out), &n, &err), 0);
		assert_int_equal(n, len);
		assert_memory_equal(in, out, len);
		free(e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_rfc_vectors),
		cmocka_unit_test(test_decode_rows),
		cmocka_unit_test(test_decode_limit),
		cmocka_unit_test(test_roundtrip_all_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
