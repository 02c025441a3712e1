/* mailbox_uidlist_test.c - unit tests for the Maildir UID index: parser
 * rows (valid and malformed), limits at max-1/max/max+1, format/parse round
 * trip, atomic write and read back, and the lock file (held, stale). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "mail/mailbox.h"

static void test_parse_rows(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *input;
		int ret;
		uint32_t uidvalidity, uidnext;
		size_t count;
		uint32_t last_uid;
		uint64_t last_vsize;
		const char *last_name;
	} rows[] = {
		{ "empty index", "1 V1 N1\n", 0, 1, 1, 0, 0, 0, NULL },
		{ "two entries", "1 V77 N9\n3 :a.b\n8 W12 :c\n", 0, 77, 9, 2, 8, 12, "c" },
		{ "unknown fields skipped", "1 V5 X99 N4\n2 Q7 W0 :n\n", 0, 5, 4, 1, 2, 0, "n" },
		{ "name with spaces", "1 V5 N4\n3 :a b c\n", 0, 5, 4, 1, 3, MAILBOX_VSIZE_UNKNOWN,
		  "a b c" },
		{ "max values", "1 V4294967295 N4294967295\n4294967294 W18446744073709551614 :x\n",
		  0, UINT32_MAX, UINT32_MAX, 1, UINT32_MAX - 1, UINT64_MAX - 1, "x" },
		{ "empty file", "", -1, 0, 0, 0, 0, 0, NULL },
		{ "no final newline", "1 V1 N2\n1 :a", -1, 0, 0, 0, 0, 0, NULL },
		{ "version 2", "2 V1 N1\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "no uidvalidity", "1 N1\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "no uidnext", "1 V1\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "uidvalidity 0", "1 V0 N1\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "uidvalidity 2^32", "1 V4294967296 N1\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "uidnext 0", "1 V1 N0\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "sign", "1 V+1 N2\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "lower-case header field", "1 V1 N2 x\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "uid 0", "1 V1 N5\n0 :a\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "uid == uidnext", "1 V1 N5\n5 :a\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "uid descending", "1 V1 N9\n3 :a\n2 :b\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "uid repeated", "1 V1 N9\n3 :a\n3 :b\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "no name", "1 V1 N9\n3\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "empty name", "1 V1 N9\n3 :\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "slash in name", "1 V1 N9\n3 :../x\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "dot name", "1 V1 N9\n3 :.facteur-uidlist\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "colon in name", "1 V1 N9\n3 :a:2,S\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "CR in name", "1 V1 N9\n3 :a\r\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "vsize 2^64-1", "1 V1 N9\n3 W18446744073709551615 :a\n", -1, 0, 0, 0, 0, 0,
		  NULL },
		{ "vsize garbage", "1 V1 N9\n3 W12x :a\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "empty line", "1 V1 N9\n\n", -1, 0, 0, 0, 0, 0, NULL },
		{ "garbage", "hello world\n", -1, 0, 0, 0, 0, 0, NULL },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct mailbox_uidlist ul;
		const char *error = NULL;
		uint32_t hint;
		int ret = mailbox_uidlist_parse(&ul, rows[i].input, strlen(rows[i].input), &hint,
						&error);
		if (ret != rows[i].ret)
			fail_msg("row '%s': got %d (%s)", rows[i].name, ret, error ? error : "");
		if (ret < 0) {
			assert_non_null(error);
			assert_int_equal(ul.count, 0);
			continue;
		}
		assert_int_equal(ul.uidvalidity, rows[i].uidvalidity);
		assert_int_equal(ul.uidnext, rows[i].uidnext);
		assert_int_equal(ul.count, rows[i].count);
		if (ul.count > 0) {
			assert_int_equal(ul.entries[ul.count - 1].uid, rows[i].last_uid);
			assert_true(ul.entries[ul.count - 1].vsize == rows[i].last_vsize);
			assert_string_equal(ul.entries[ul.count - 1].name, rows[i].last_name);
		}
		mailbox_uidlist_deinit(&ul);
	}
}

static void test_parse_hint(void **state)
{
	(void)state;
	struct mailbox_uidlist ul;
	const char *error;
	uint32_t hint = 0;
	static const char bad[] = "1 V1234 N5\n9 :a\n";
	assert_int_equal(mailbox_uidlist_parse(&ul, bad, strlen(bad), &hint, &error), -1);
	assert_int_equal(hint, 1234);
}

static void test_name_limits(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		size_t len;
		int ret;
	} rows[] = {
		{ "max-1", MAILBOX_NAME_MAX - 1, 0 },
		{ "max", MAILBOX_NAME_MAX, 0 },
		{ "max+1", MAILBOX_NAME_MAX + 1, -1 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct buf in = BUF_INIT;
		buf_append_str(&in, "1 V1 N3\n2 :");
		for (size_t k = 0; k < rows[i].len; k++)
			buf_append_char(&in, 'n');
		buf_append_char(&in, '\n');
		struct mailbox_uidlist ul;
		const char *error;
		uint32_t hint;
		int ret = mailbox_uidlist_parse(&ul, (const char *)in.data, in.len, &hint, &error);
		if (ret != rows[i].ret)
			fail_msg("row %s: got %d", rows[i].name, ret);
		mailbox_uidlist_deinit(&ul);
		buf_deinit(&in);
	}
}

static void test_round_trip_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/facteur-uidlist-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, MAILBOX_UIDLIST_NAME);

	struct mailbox_uidlist ul, got;
	const char *error = NULL;
	bool malformed = true;
	uint32_t hint;
	assert_int_equal(mailbox_uidlist_read(path, &got, &malformed, &hint, &error), 0);
	assert_false(malformed);

	mailbox_uidlist_init(&ul);
	ul.uidvalidity = 1700000000;
	ul.uidnext = 1000;
	mailbox_uidlist_add(&ul, 1, MAILBOX_VSIZE_UNKNOWN, xstrdup("1.M1P1Q1.host"));
	mailbox_uidlist_add(&ul, 999, 4242, xstrdup("2.M1P1Q1.host,S=4000"));
	assert_int_equal(mailbox_uidlist_write(path, &ul, &error), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_int_equal(mailbox_uidlist_read(path, &got, &malformed, &hint, &error), 1);
	assert_int_equal(got.uidvalidity, ul.uidvalidity);
	assert_int_equal(got.uidnext, ul.uidnext);
	assert_int_equal(got.count, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(got.entries[i].uid, ul.entries[i].uid);
		assert_true(got.entries[i].vsize == ul.entries[i].vsize);
		assert_string_equal(got.entries[i].name, ul.entries[i].name);
	}
	struct buf a = BUF_INIT;
	mailbox_uidlist_format(&got, &a);
	assert_string_equal(buf_cstr(&a),
			    "1 V1700000000 N1000\n1 :1.M1P1Q1.host\n999 W4242 :2.M1P1Q1.host,S=4000\n");
	buf_deinit(&a);
	mailbox_uidlist_deinit(&got);
	mailbox_uidlist_deinit(&ul);

	/* Malformed on disk is reported as such, with the hint. */
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("1 V55 N2\n7 :x\n", f);
	fclose(f);
	assert_int_equal(mailbox_uidlist_read(path, &got, &malformed, &hint, &error), -1);
	assert_true(malformed);
	assert_int_equal(hint, 55);
	assert_non_null(strstr(error, path));

	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void test_lock(void **state)
{
	(void)state;
	char dir[] = "/tmp/facteur-uidlist-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char lock[PATH_MAX];
	snprintf(lock, sizeof(lock), "%s/%s", dir, MAILBOX_UIDLIST_LOCK_NAME);
	const char *error = NULL;

	assert_int_equal(mailbox_uidlist_lock(lock, 1, &error), 0);
	/* Held: a second taker gives up after the wait. */
	time_t t0 = time(NULL);
	assert_int_equal(mailbox_uidlist_lock(lock, 1, &error), -1);
	assert_non_null(strstr(error, "locked"));
	assert_true(time(NULL) - t0 >= 1);

	/* Just under the stale age: still respected. */
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { time(NULL) - MAILBOX_LOCK_STALE_SECS + 5, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, lock, ts, 0), 0);
	assert_int_equal(mailbox_uidlist_lock(lock, 0, &error), -1);
	/* Past it: broken and taken. */
	ts[1].tv_sec = time(NULL) - MAILBOX_LOCK_STALE_SECS - 5;
	assert_int_equal(utimensat(AT_FDCWD, lock, ts, 0), 0);
	assert_int_equal(mailbox_uidlist_lock(lock, 0, &error), 0);
	struct stat st;
	assert_int_equal(stat(lock, &st), 0);
	assert_true(time(NULL) - st.st_mtime < 10);
	mailbox_uidlist_unlock(lock);
	assert_int_equal(access(lock, F_OK), -1);

	/* Unwritable directory: an error, not a wait. */
	char missing[PATH_MAX];
	snprintf(missing, sizeof(missing), "%s/nodir/lock", dir);
	assert_int_equal(mailbox_uidlist_lock(missing, 5, &error), -1);
	assert_non_null(strstr(error, "create"));
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_rows),
		cmocka_unit_test(test_parse_hint),
		cmocka_unit_test(test_name_limits),
		cmocka_unit_test(test_round_trip_file),
		cmocka_unit_test(test_lock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
