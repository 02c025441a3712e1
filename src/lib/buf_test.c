/* buf_test.c - unit tests for struct buf and struct strv. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"

static void test_append_grow(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	for (int i = 0; i < 1000; i++)
		buf_append_str(&b, "abc");
	assert_int_equal(b.len, 3000);
	assert_true(b.cap > b.len);
	assert_int_equal(buf_cstr(&b)[3000], '\0');
	assert_memory_equal(b.data + 2997, "abc", 3);
	buf_consume(&b, 2998);
	assert_string_equal(buf_cstr(&b), "bc");
	buf_deinit(&b);
	assert_string_equal(buf_cstr(&b), "");
}

static void test_printf(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s=%d", "x", 42);
	buf_printf(&b, ";%05d", 7);
	assert_string_equal(buf_cstr(&b), "x=42;00007");
	char *s = buf_steal(&b);
	assert_string_equal(s, "x=42;00007");
	assert_int_equal(b.len, 0);
	free(s);
}

static void test_strv(void **state)
{
	(void)state;
	struct strv v = strv_trim(strv_from_cstr("  Hello \t"));
	assert_true(strv_eq(v, "Hello"));
	assert_true(strv_case_eq(v, "hELLO"));
	assert_false(strv_eq(v, "Hell"));
	assert_true(strv_case_prefix(v, "he"));
	char *d = strv_dup(v);
	assert_string_equal(d, "Hello");
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_grow),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_strv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
