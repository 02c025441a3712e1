/* qmgr_retry_test.c - backoff table and queue lifetime decisions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>

#include "qmgr/qmgr.h"

static void test_backoff_table(void **state)
{
	static const struct {
		const char *name;
		unsigned attempts;
		long min, max;
		long expect;
	} rows[] = {
		{ "first failure waits the minimum", 1, 300, 4000, 300 },
		{ "zero attempts treated as first", 0, 300, 4000, 300 },
		{ "second doubles", 2, 300, 4000, 600 },
		{ "third doubles again", 3, 300, 4000, 1200 },
		{ "fourth", 4, 300, 4000, 2400 },
		{ "fifth capped at the maximum", 5, 300, 4000, 4000 },
		{ "many attempts stay capped", 1000, 300, 4000, 4000 },
		{ "huge count does not overflow", UINT_MAX, 300, LONG_MAX, LONG_MAX },
		{ "large values near overflow", 70, LONG_MAX / 2 + 1, LONG_MAX, LONG_MAX },
		{ "max below min: min wins", 3, 300, 100, 300 },
		{ "min equal max", 7, 60, 60, 60 },
		{ "cap exactly reached (max-1 step)", 3, 1, 4, 4 },
		{ "just below the cap", 2, 1, 3, 2 },
		{ "just above the cap", 3, 1, 3, 3 },
		{ "minimum clamped to 1", 1, 0, 10, 1 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		long got = qmgr_retry_backoff(rows[i].attempts, rows[i].min, rows[i].max);
		if (got != rows[i].expect)
			fail_msg("%s: got %ld, want %ld", rows[i].name, got, rows[i].expect);
	}
}

static void test_expired_table(void **state)
{
	struct qmgr_settings s = { .maximal_queue_lifetime = 5 * 86400,
				   .bounce_queue_lifetime = 86400 };
	static const struct {
		const char *name;
		const char *sender;
		int64_t age;
		bool expect;
	} rows[] = {
		{ "fresh message", "a@b", 0, false },
		{ "one second before the lifetime", "a@b", 5 * 86400 - 1, false },
		{ "exactly the lifetime", "a@b", 5 * 86400, true },
		{ "past the lifetime", "a@b", 5 * 86400 + 1, true },
		{ "null sender uses bounce_queue_lifetime", "", 86400, true },
		{ "null sender just before", "", 86400 - 1, false },
		{ "normal sender not expired at bounce lifetime", "a@b", 86400, false },
		{ "arrival in the future (clock step)", "a@b", -100, false },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		bool got = qmgr_retry_expired(&s, rows[i].sender, 1000000, 1000000 + rows[i].age);
		if (got != rows[i].expect)
			fail_msg("%s: got %d", rows[i].name, got);
	}
	/* Lifetime 0: a single attempt. */
	s.maximal_queue_lifetime = 0;
	assert_true(qmgr_retry_expired(&s, "a@b", 1000, 1000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_table),
		cmocka_unit_test(test_expired_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
