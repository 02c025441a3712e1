/* str_test.c - unit tests for the string helpers (table-driven). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "lib/str.h"

static void test_to_u64(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		uint64_t min, max;
		int ret;
		uint64_t value;
	} rows[] = {
		{ "0", 0, 10, 0, 0 },
		{ "10", 0, 10, 0, 10 },
		{ "11", 0, 10, -1, 0 },
		{ "", 0, 10, -1, 0 },
		{ "1x", 0, 100, -1, 0 },
		{ "-1", 0, 100, -1, 0 },
		{ "18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX },
		{ "18446744073709551616", 0, UINT64_MAX, -1, 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint64_t v = 0;
		int ret = str_to_u64(rows[i].in, rows[i].min, rows[i].max, &v);
		assert_int_equal(ret, rows[i].ret);
		if (ret == 0)
			assert_true(v == rows[i].value);
	}
}

static void test_copy(void **state)
{
	(void)state;
	char small[4];
	assert_true(str_copy(small, sizeof(small), "abc"));
	assert_string_equal(small, "abc");
	assert_false(str_copy(small, sizeof(small), "abcd"));
	assert_string_equal(small, "abc");
}

static void test_list_split(void **state)
{
	(void)state;
	char **items;
	size_t n = str_list_split(" a, b\tc,,d inline:{ x=1, y=2 } ", &items);
	assert_int_equal(n, 5);
	assert_string_equal(items[0], "a");
	assert_string_equal(items[3], "d");
	assert_string_equal(items[4], "inline:{ x=1, y=2 }");
	assert_null(items[5]);
	str_list_free(&items);
	assert_null(items);
	n = str_list_split("", &items);
	assert_int_equal(n, 0);
	str_list_free(&items);
}

static void test_case(void **state)
{
	(void)state;
	assert_int_equal(str_casecmp("Example.TEST", "example.test"), 0);
	assert_true(str_casecmp("a", "b") < 0);
	assert_true(str_case_has_suffix("mx.Example.test", ".example.TEST"));
	assert_false(str_case_has_suffix("test", ".example.test"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_to_u64),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_list_split),
		cmocka_unit_test(test_case),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
