/* auth_test.c - unit tests for auth: passwd-file entries of every scheme
 * (hashes made here with crypt_r), unknown user vs wrong password, limits,
 * malformed lines, re-reading the file, system accounts, constant-time
 * comparison and failure throttling with a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mail/auth.h"
#include "mail/config.h"

#include "lib/buf.h"
#include "lib/fs.h"

#include <crypt.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char test_dir[] = "/tmp/facteur-auth-test.XXXXXX";

static int test_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int test_setup(void **state)
{
	(void)state;
	return mkdtemp(test_dir) == NULL ? -1 : 0;
}

static int test_teardown(void **state)
{
	(void)state;
	return nftw(test_dir, test_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static char *test_path(const char *name)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s/%s", test_dir, name);
	return buf_steal(&b);
}

static void test_write(const char *path, const char *text)
{
	assert_int_equal(fs_write_atomic(path, text, strlen(text), 0600), 0);
}

/* A hash of password with the crypt(3) method of prefix ("$6$", ...). */
static char *test_hash(const char *prefix, const char *password)
{
	unsigned long count = strcmp(prefix, "$2b$") == 0 ? 4 : 0;
	char *setting = crypt_gensalt_ra(prefix, count, NULL, 0);
	assert_non_null(setting);
	struct crypt_data cd;
	memset(&cd, 0, sizeof(cd));
	const char *h = crypt_r(password, setting, &cd);
	assert_non_null(h);
	assert_true(h[0] == '$');
	free(setting);
	return strdup(h);
}

static void test_schemes(void **state)
{
	(void)state;
	static const struct {
		const char *user, *scheme, *prefix, *password;
	} entries[] = {
		{ "yes@example.test", "CRYPT", "$y$", "pw-yescrypt" },
		{ "sha512@example.test", "SHA512-CRYPT", "$6$", "pw sha512" },
		{ "crypt6@example.test", "CRYPT", "$6$", "pw-crypt6" },
		{ "sha256@example.test", "SHA256-CRYPT", "$5$", "pw-sha256" },
		{ "blf@example.test", "BLF-CRYPT", "$2b$", "pw-blf" },
		{ "md5@example.test", "MD5-CRYPT", "$1$", "pw-md5" },
		{ "bare@example.test", NULL, "$6$", "pw-bare" },
		{ "lower@example.test", "sha512-crypt", "$6$", "pw-lower" },
		{ "plain@example.test", "PLAIN", NULL, "pw plain" },
		{ "sysname", "SHA256-CRYPT", "$5$", "pw-sysname" },
	};
	struct buf file = BUF_INIT;
	buf_append_str(&file, "# virtual users\n\n");
	for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
		char *h = entries[i].prefix != NULL ? test_hash(entries[i].prefix, entries[i].password)
						    : strdup(entries[i].password);
		if (entries[i].scheme != NULL)
			buf_printf(&file, "%s:{%s}%s:%zu:%zu::/home/v%zu::userdb_quota=1G\n",
				   entries[i].user, entries[i].scheme, h, 1000 + i, 2000 + i, i);
		else
			buf_printf(&file, "%s:%s\n", entries[i].user, h);
		free(h);
	}
	char *path = test_path("passwd");
	test_write(path, buf_cstr(&file));
	buf_deinit(&file);
	const char *error = NULL;
	struct auth_db *db = auth_db_new(path, false, &error);
	assert_non_null(db);
	assert_int_equal(auth_db_count(db), sizeof(entries) / sizeof(entries[0]));
	assert_int_equal(auth_db_diags(db)->count, 0);

	for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
		struct auth_user u;
		int ret = auth_db_verify(db, entries[i].user, entries[i].password, &u, &error);
		if (ret != 1)
			fail_msg("%s: %d %s", entries[i].user, ret, error);
		assert_string_equal(u.name, entries[i].user);
		assert_true(u.is_virtual);
		if (entries[i].scheme != NULL) {
			assert_int_equal(u.uid, 1000 + i);
			assert_int_equal(u.gid, 2000 + i);
			char home[32];
			snprintf(home, sizeof(home), "/home/v%zu", i);
			assert_string_equal(u.home, home);
		} else {
			assert_int_equal(u.uid, (uid_t)-1);
			assert_int_equal(u.gid, (gid_t)-1);
			assert_null(u.home);
		}
		auth_user_deinit(&u);
		/* wrong password, and the right password with one byte more */
		assert_int_equal(auth_db_verify(db, entries[i].user, "wrong", &u, &error), 0);
		char longer[64];
		snprintf(longer, sizeof(longer), "%sx", entries[i].password);
		assert_int_equal(auth_db_verify(db, entries[i].user, longer, &u, &error), 0);
		assert_null(u.name);
	}

	static const struct {
		const char *name, *user, *password;
		int ret;
		const char *canonical;
	} rows[] = {
		{ "domain case-insensitive", "yes@EXAMPLE.Test", "pw-yescrypt", 1, "yes@example.test" },
		{ "local part case-sensitive", "YES@example.test", "pw-yescrypt", 0, NULL },
		{ "unknown user", "nobody@example.test", "pw-yescrypt", 0, NULL },
		{ "unknown domain", "yes@example.org", "pw-yescrypt", 0, NULL },
		{ "empty user", "", "x", 0, NULL },
		{ "empty password", "yes@example.test", "", 0, NULL },
		{ "space in user", "yes @example.test", "pw-yescrypt", 0, NULL },
		{ "plain prefix only", "plain@example.test", "pw", 0, NULL },
		{ "name without domain", "sysname", "pw-sysname", 1, "sysname" },
		{ "no system fallback", "root", "x", 0, NULL },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct auth_user u;
		int ret = auth_db_verify(db, rows[i].user, rows[i].password, &u, &error);
		if (ret != rows[i].ret)
			fail_msg("row %s: got %d", rows[i].name, ret);
		if (ret == 1) {
			assert_string_equal(u.name, rows[i].canonical);
			auth_user_deinit(&u);
		}
	}
	auth_db_free(&db);
	assert_null(db);
	unlink(path);
	free(path);
}

static unsigned long test_checks(struct auth_db *db, const char *user, const char *password)
{
	struct auth_user u;
	const char *error;
	unsigned long before = auth_hash_check_count();
	assert_int_equal(auth_db_verify(db, user, password, &u, &error), 0);
	return auth_hash_check_count() - before;
}

static void test_unknown_like_wrong(void **state)
{
	(void)state;
	char *h = test_hash("$y$", "secret");
	struct buf b = BUF_INIT;
	buf_printf(&b, "alice@example.test:{CRYPT}%s\n", h);
	free(h);
	struct auth_db *db = auth_db_new_from_text("mem", buf_cstr(&b), b.len, false, NULL);
	buf_deinit(&b);
	/* Same result, and the unknown user costs one real hash computation
	 * (against a dummy hash), as the wrong password does: no timing
	 * difference tells a prober which users exist.  Counted, not timed. */
	assert_int_equal(test_checks(db, "alice@example.test", "bad"), 1);
	assert_int_equal(test_checks(db, "bob@example.test", "bad"), 1);
	auth_db_free(&db);
}

static void test_malformed(void **state)
{
	(void)state;
	char *h = test_hash("$6$", "good");
	struct buf b = BUF_INIT;
	buf_printf(&b,
		   "# comment\n"		/* 1 */
		   "good@example.test:{SHA512-CRYPT}%s:8:8\n" /* 2 */
		   "nopassword\n"		/* 3 */
		   "bad@example.test:{FOO}abc\n" /* 4 unknown scheme: kept, unusable */
		   "uid@example.test:{PLAIN}x:abc:1\n" /* 5 bad uid */
		   "gid@example.test:{PLAIN}x:1:-1\n" /* 6 bad gid */
		   "@example.test:{PLAIN}x\n"	/* 7 empty local part */
		   "a@:{PLAIN}x\n"		/* 8 empty domain */
		   "mis@example.test:{SHA512-CRYPT}$1$abc$def\n" /* 9 wrong prefix */
		   "good@EXAMPLE.test:{PLAIN}dup\n" /* 10 duplicate */
		   "   \t\n"			/* 11 blank */
		   "open@example.test:{PLAIN\n"	/* 12 unterminated scheme */
		   "empty@example.test:{PLAIN}\n" /* 13 empty hash */
		   "locked@example.test:{CRYPT}!%s\n" /* 14 locked */
		   "crlf@example.test:{PLAIN}crlf\r\n" /* 15 */
		   "last@example.test:{PLAIN}last", /* 16, no final newline */
		   h, h);
	free(h);
	struct config_diags diags;
	config_diags_init(&diags);
	struct auth_db *db = auth_db_new_from_text("users.passwd", buf_cstr(&b), b.len, false, &diags);
	buf_deinit(&b);
	static const unsigned lines[] = { 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14 };
	assert_int_equal(diags.count, sizeof(lines) / sizeof(lines[0]));
	for (size_t i = 0; i < diags.count; i++) {
		assert_string_equal(diags.items[i].file, "users.passwd");
		assert_int_equal(diags.items[i].line, lines[i]);
	}
	assert_int_equal(auth_db_count(db), 3);
	static const struct {
		const char *user, *password;
		int ret;
	} rows[] = {
		{ "good@example.test", "good", 1 },
		{ "good@example.test", "dup", 0 },
		{ "bad@example.test", "abc", 0 },
		{ "mis@example.test", "x", 0 },
		{ "locked@example.test", "good", 0 },
		{ "open@example.test", "", 0 },
		{ "crlf@example.test", "crlf", 1 },
		{ "last@example.test", "last", 1 },
		{ "uid@example.test", "x", 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct auth_user u;
		const char *error;
		int ret = auth_db_verify(db, rows[i].user, rows[i].password, &u, &error);
		if (ret != rows[i].ret)
			fail_msg("%s: got %d", rows[i].user, ret);
		if (ret == 1)
			auth_user_deinit(&u);
	}
	auth_db_free(&db);
	config_diags_deinit(&diags);
}

static void test_limits(void **state)
{
	(void)state;
	char u254[256], u255[257], u256[258];
	/* local parts of 254-12, 255-12, 256-12 bytes + "@example.com" */
	const char *dom = "@example.com";
	size_t dl = strlen(dom);
	memset(u254, 'a', 254 - dl), memcpy(u254 + 254 - dl, dom, dl + 1);
	memset(u255, 'a', 255 - dl), memcpy(u255 + 255 - dl, dom, dl + 1);
	memset(u256, 'a', 256 - dl), memcpy(u256 + 256 - dl, dom, dl + 1);
	static char p1023[1024], p1024[1025], p1025[1026];
	memset(p1023, 'p', 1023);
	memset(p1024, 'p', 1024);
	memset(p1025, 'p', 1025);
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s:{PLAIN}%s\n%s:{PLAIN}%s\n%s:{PLAIN}%s\n", u254, p1023, u255, p1024,
		   u256, p1025);
	struct config_diags diags;
	config_diags_init(&diags);
	struct auth_db *db = auth_db_new_from_text("mem", buf_cstr(&b), b.len, false, &diags);
	buf_deinit(&b);
	assert_int_equal(diags.count, 1); /* the 256-byte name */
	assert_int_equal(diags.items[0].line, 3);
	const struct {
		const char *name, *user, *password;
		int ret;
	} rows[] = {
		{ "user max-1, password max-1", u254, p1023, 1 },
		{ "user max, password max", u255, p1024, 1 },
		{ "user max+1", u256, p1025, 0 },
		{ "password max+1", u255, p1025, 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct auth_user u;
		const char *error;
		int ret = auth_db_verify(db, rows[i].user, rows[i].password, &u, &error);
		if (ret != rows[i].ret)
			fail_msg("%s: got %d", rows[i].name, ret);
		if (ret == 1)
			auth_user_deinit(&u);
	}
	auth_db_free(&db);
	config_diags_deinit(&diags);
}

static void test_reread(void **state)
{
	(void)state;
	char *path = test_path("reread");
	const char *error = NULL;
	assert_null(auth_db_new(path, false, &error));
	assert_non_null(error);

	test_write(path, "u@example.test:{PLAIN}one\n");
	struct auth_db *db = auth_db_new(path, false, &error);
	assert_non_null(db);
	static const struct {
		const char *content; /* NULL: remove the file; "": keep */
		const char *password;
		int ret;
	} rows[] = {
		{ "", "one", 1 },
		{ "u@example.test:{PLAIN}two\n", "one", 0 },
		{ "", "two", 1 },
		{ "u@example.test:{PLAIN}three\nv@example.test:{PLAIN}x\n", "three", 1 },
		{ NULL, "three", -1 },
		{ "u@example.test:{PLAIN}four\n", "four", 1 },
		{ "u@example.test:{PLAIN}five\n", "four", 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (rows[i].content == NULL)
			assert_int_equal(unlink(path), 0);
		else if (rows[i].content[0] != '\0')
			test_write(path, rows[i].content);
		struct auth_user u;
		int ret = auth_db_verify(db, "u@example.test", rows[i].password, &u, &error);
		if (ret != rows[i].ret)
			fail_msg("row %zu: got %d", i, ret);
		if (ret == 1)
			auth_user_deinit(&u);
	}
	auth_db_free(&db);
	unlink(path);
	free(path);
}

static void test_system_users(void **state)
{
	(void)state;
	const char *error = NULL;
	struct auth_db *db = auth_db_new(NULL, true, &error);
	assert_non_null(db);
	struct auth_user u;
	/* unknown system user and virtual-looking names never reach getpwnam */
	assert_int_equal(auth_db_verify(db, "no-such-user-facteur", "x", &u, &error), 0);
	assert_int_equal(auth_db_verify(db, "daemon@localhost", "x", &u, &error), 0);
	if (getuid() == 0) {
		/* "daemon" has a locked shadow entry ("*") on Debian */
		assert_int_equal(auth_db_verify(db, "daemon", "", &u, &error), 0);
		assert_int_equal(auth_db_verify(db, "daemon", "*", &u, &error), 0);
		/* Without root the shadow file is unreadable: temporary failure. */
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			if (setgid(65534) < 0 || setuid(65534) < 0)
				_exit(2);
			int r = auth_db_verify(db, "daemon", "x", &u, &error);
			_exit(r == -1 ? 0 : 1);
		}
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	} else {
		assert_int_equal(auth_db_verify(db, "daemon", "x", &u, &error), -1);
	}
	auth_db_free(&db);
}

static void test_secret_equal(void **state)
{
	(void)state;
	static const struct {
		const char *a, *b;
		bool eq;
	} rows[] = {
		{ "", "", true }, { "abc", "abc", true }, { "abc", "abd", false },
		{ "ab", "abc", false }, { "abc", "ab", false }, { "", "a", false },
		{ "xbc", "abc", false },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(auth_secret_equal(rows[i].a, strlen(rows[i].a), rows[i].b,
						   strlen(rows[i].b)),
				 rows[i].eq);
}

enum { T_FAIL, T_OK, T_DELAY };

static void test_throttle(void **state)
{
	(void)state;
	struct auth_throttle *t = auth_throttle_new(15000, 300, 10000);
	static const struct {
		int op;
		const char *addr;
		time_t now;
		unsigned delay; /* for T_DELAY */
	} rows[] = {
		{ T_DELAY, "192.0.2.1", 1000, 0 },
		{ T_FAIL, "192.0.2.1", 1000, 0 },
		{ T_DELAY, "192.0.2.1", 1000, 1000 },
		{ T_DELAY, "192.0.2.2", 1000, 0 },
		{ T_FAIL, "192.0.2.1", 1001, 0 },
		{ T_DELAY, "192.0.2.1", 1001, 2000 },
		{ T_FAIL, "192.0.2.1", 1003, 0 },
		{ T_DELAY, "192.0.2.1", 1003, 4000 },
		{ T_FAIL, "192.0.2.1", 1007, 0 },
		{ T_DELAY, "192.0.2.1", 1007, 8000 },
		{ T_FAIL, "192.0.2.1", 1015, 0 },
		{ T_DELAY, "192.0.2.1", 1015, 15000 }, /* 16 s capped */
		{ T_FAIL, "192.0.2.1", 1030, 0 },
		{ T_DELAY, "192.0.2.1", 1030, 15000 },
		{ T_OK, "192.0.2.1", 1031, 0 },
		{ T_DELAY, "192.0.2.1", 1031, 0 },
		/* the window: a failure 300 s later still counts, 301 s not */
		{ T_FAIL, "2001:db8::1", 2000, 0 },
		{ T_FAIL, "2001:db8::1", 2300, 0 },
		{ T_DELAY, "2001:db8::1", 2300, 2000 },
		{ T_FAIL, "2001:db8::1", 2601, 0 },
		{ T_DELAY, "2001:db8::1", 2601, 1000 },
		{ T_DELAY, "2001:db8::1", 2902, 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		switch (rows[i].op) {
		case T_FAIL:
			auth_throttle_failure(t, rows[i].addr, rows[i].now);
			break;
		case T_OK:
			auth_throttle_success(t, rows[i].addr, rows[i].now);
			break;
		default: {
			unsigned d = auth_throttle_delay_ms(t, rows[i].addr, rows[i].now);
			if (d != rows[i].delay)
				fail_msg("row %zu: delay %u, want %u", i, d, rows[i].delay);
		}
		}
	}
	auth_throttle_free(&t);
	assert_null(t);
}

static void test_throttle_lru(void **state)
{
	(void)state;
	struct auth_throttle *t = auth_throttle_new(AUTH_THROTTLE_DELAY_MAX_MS, 300, 3);
	auth_throttle_failure(t, "a", 10);
	auth_throttle_failure(t, "b", 10);
	auth_throttle_failure(t, "c", 10);
	assert_int_equal(auth_throttle_count(t), 3);
	assert_int_equal(auth_throttle_delay_ms(t, "a", 11), 1000); /* a is now recent */
	auth_throttle_failure(t, "d", 12);			     /* evicts b */
	assert_int_equal(auth_throttle_count(t), 3);
	assert_int_equal(auth_throttle_delay_ms(t, "b", 12), 0);
	assert_int_equal(auth_throttle_delay_ms(t, "a", 12), 1000);
	assert_int_equal(auth_throttle_delay_ms(t, "c", 12), 1000);
	assert_int_equal(auth_throttle_delay_ms(t, "d", 12), 1000);
	/* many addresses: the table never grows past its bound */
	char addr[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(addr, sizeof(addr), "10.0.%d.%d", i / 256, i % 256);
		auth_throttle_failure(t, addr, 20);
	}
	assert_int_equal(auth_throttle_count(t), 3);
	assert_int_equal(auth_throttle_delay_ms(t, addr, 20), 1000);
	auth_throttle_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schemes),
		cmocka_unit_test(test_unknown_like_wrong),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_reread),
		cmocka_unit_test(test_system_users),
		cmocka_unit_test(test_secret_equal),
		cmocka_unit_test(test_throttle),
		cmocka_unit_test(test_throttle_lru),
	};
	return cmocka_run_group_tests(tests, test_setup, test_teardown);
}
