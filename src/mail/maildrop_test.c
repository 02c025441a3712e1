/* maildrop_test.c - unit tests for the maildrop file format: encode/parse
 * round trip, malformed files (table-driven), limits at max-1/max/max+1,
 * file names, and the writer's publish protocol (mode 0644 only at
 * commit, nothing left behind on abort). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "mail/maildrop.h"

static void test_round_trip(void **state)
{
	(void)state;
	static const char body[] = "Subject: t\n\ncoucou\n";
	static const struct {
		const char *name;
		const char *sender;
		const char *full_name;
		const char *rcpts[3];
		bool extract;
		const char *notify, *ret, *envid;
	} rows[] = {
		{ "one rcpt", NULL, NULL, { "root", NULL }, false, NULL, NULL, NULL },
		{ "all fields", "chris@x.test", "Christian Cal\xc3\xa9" "ca", { "a", "b@c", "d" }, true,
		  "SUCCESS,FAILURE", "HDRS", "id-42" },
		{ "null sender", "", NULL, { "root", NULL }, false, NULL, NULL, NULL },
		{ "extract only", NULL, NULL, { NULL }, true, NULL, NULL, NULL },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct maildrop_env env, got;
		struct buf file = BUF_INIT;
		const char *error = NULL;
		size_t off = 0;
		maildrop_env_init(&env);
		env.sender = rows[i].sender ? xstrdup(rows[i].sender) : NULL;
		env.full_name = rows[i].full_name ? xstrdup(rows[i].full_name) : NULL;
		for (size_t k = 0; k < 3 && rows[i].rcpts[k] != NULL; k++)
			maildrop_env_add_rcpt(&env, rows[i].rcpts[k]);
		env.extract = rows[i].extract;
		env.notify = rows[i].notify ? xstrdup(rows[i].notify) : NULL;
		env.ret = rows[i].ret ? xstrdup(rows[i].ret) : NULL;
		env.envid = rows[i].envid ? xstrdup(rows[i].envid) : NULL;
		assert_int_equal(maildrop_envelope_encode(&env, &file, &error), 0);
		/* Fill the size as the writer does. */
		char digits[32];
		snprintf(digits, sizeof(digits), "%020zu", strlen(body));
		memcpy(file.data + file.len - MAILDROP_SIZE_OFFSET_FROM_END, digits, 20);
		buf_append_str(&file, body);
		int ret = maildrop_parse(file.data, file.len, &got, &off, &error);
		if (ret != 0)
			fail_msg("%s: %s", rows[i].name, error);
		assert_string_equal((const char *)file.data + off, body);
		if (rows[i].sender == NULL)
			assert_null(got.sender);
		else
			assert_string_equal(got.sender, rows[i].sender);
		if (rows[i].full_name == NULL)
			assert_null(got.full_name);
		else
			assert_string_equal(got.full_name, rows[i].full_name);
		assert_int_equal(got.n_rcpts, env.n_rcpts);
		for (size_t k = 0; k < env.n_rcpts; k++)
			assert_string_equal(got.rcpts[k], env.rcpts[k]);
		assert_int_equal(got.extract, rows[i].extract);
		if (rows[i].notify != NULL) {
			assert_string_equal(got.notify, rows[i].notify);
			assert_string_equal(got.ret, rows[i].ret);
			assert_string_equal(got.envid, rows[i].envid);
		}
		maildrop_env_deinit(&got);
		maildrop_env_deinit(&env);
		buf_deinit(&file);
	}
}

#define V MAILDROP_VERSION_LINE "\n"
#define Z "body 00000000000000000000\n"

static void test_malformed(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *in;
		const char *error; /* NULL: accepted */
	} rows[] = {
		{ "minimal", V "rcpt a\n" Z, NULL },
		{ "body bytes", V "rcpt a\n" "body 00000000000000000003\nabc", NULL },
		{ "empty", "", "empty file" },
		{ "bad version", "facteur-maildrop 9\nrcpt a\n" Z, "not a facteur maildrop file" },
		{ "no newline", "facteur-maildrop 1", "truncated envelope" },
		{ "unknown key", V "rcpt a\nfoo bar\n" Z, "unknown line" },
		{ "repeated sender", V "sender a\nsender b\nrcpt a\n" Z, "repeated line" },
		{ "repeated extract", V "extract\nextract\n" Z, "bad or repeated extract" },
		{ "extract value", V "extract yes\n" Z, "bad or repeated extract" },
		{ "no value", V "rcpt\n" Z, "line without a value" },
		{ "control char", V "rcpt a\tb\n" Z, "control characters" },
		{ "CR in value", V "rcpt a\r\n" Z, "control characters" },
		{ "no body line", V "rcpt a\n", "no body line" },
		{ "body too short", V "rcpt a\n" "body 00000000000000000004\nabc", "does not match" },
		{ "body too long", V "rcpt a\n" "body 00000000000000000002\nabc", "does not match" },
		{ "body digits", V "rcpt a\n" "body 0000000000000000000x\n", "bad body size" },
		{ "body 19 digits", V "rcpt a\n" "body 0000000000000000000\n", "bad body size" },
		{ "body overflow", V "rcpt a\n" "body 99999999999999999999\n", "bad body size" },
		{ "no recipients", V "sender a\n" Z, "no recipients" },
		{ "empty sender ok", V "sender \nrcpt a\n" Z, NULL },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct maildrop_env env;
		const char *error = NULL;
		size_t off = 0;
		int ret = maildrop_parse((const uint8_t *)rows[i].in, strlen(rows[i].in), &env, &off,
					 &error);
		if (rows[i].error == NULL) {
			if (ret != 0)
				fail_msg("%s: refused: %s", rows[i].name, error);
			maildrop_env_deinit(&env);
		} else {
			if (ret != -1)
				fail_msg("%s: accepted", rows[i].name);
			if (strstr(error, rows[i].error) == NULL)
				fail_msg("%s: error '%s', want '%s'", rows[i].name, error, rows[i].error);
			assert_null(env.rcpts);
		}
	}
}

/* Value lengths at max-1, max, max+1. */
static void test_value_limit(void **state)
{
	(void)state;
	static const struct {
		size_t len;
		int ret;
	} rows[] = {
		{ MAILDROP_VALUE_MAX - 1, 0 },
		{ MAILDROP_VALUE_MAX, 0 },
		{ MAILDROP_VALUE_MAX + 1, -1 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct buf in = BUF_INIT;
		buf_append_str(&in, V "rcpt ");
		for (size_t k = 0; k < rows[i].len; k++)
			buf_append_char(&in, 'x');
		buf_append_str(&in, "\n" Z);
		struct maildrop_env env;
		const char *error = NULL;
		size_t off;
		assert_int_equal(maildrop_parse(in.data, in.len, &env, &off, &error), rows[i].ret);
		if (rows[i].ret == 0) {
			assert_int_equal(strlen(env.rcpts[0]), rows[i].len);
			maildrop_env_deinit(&env);
		}
		/* The encoder refuses what the parser refuses. */
		struct maildrop_env e2;
		maildrop_env_init(&e2);
		char *v = xmalloc(rows[i].len + 1);
		memset(v, 'x', rows[i].len);
		v[rows[i].len] = '\0';
		maildrop_env_add_rcpt(&e2, v);
		struct buf out = BUF_INIT;
		assert_int_equal(maildrop_envelope_encode(&e2, &out, &error), rows[i].ret);
		free(v);
		buf_deinit(&out);
		maildrop_env_deinit(&e2);
		buf_deinit(&in);
	}
}

static void test_rcpt_limit(void **state)
{
	(void)state;
	static const struct {
		size_t n;
		int ret;
	} rows[] = {
		{ MAILDROP_RCPT_MAX - 1, 0 },
		{ MAILDROP_RCPT_MAX, 0 },
		{ MAILDROP_RCPT_MAX + 1, -1 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct buf in = BUF_INIT;
		buf_append_str(&in, V);
		for (size_t k = 0; k < rows[i].n; k++)
			buf_printf(&in, "rcpt u%zu\n", k);
		buf_append_str(&in, Z);
		struct maildrop_env env;
		const char *error = NULL;
		size_t off;
		assert_int_equal(maildrop_parse(in.data, in.len, &env, &off, &error), rows[i].ret);
		if (rows[i].ret == 0) {
			assert_int_equal(env.n_rcpts, rows[i].n);
			maildrop_env_deinit(&env);
		} else {
			assert_string_equal(error, "too many recipients");
		}
		buf_deinit(&in);
	}
}

static void test_name_valid(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		bool ok;
	} rows[] = {
		{ "0123456789abcdef0123456789abcdef", true },
		{ "0123456789abcdef0123456789abcde", false },
		{ "0123456789abcdef0123456789abcdef0", false },
		{ "0123456789ABCDEF0123456789abcdef", false },
		{ "..", false },
		{ "", false },
		{ "0123456789abcdef0123456789abcdeg", false },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(maildrop_name_valid(rows[i].name), rows[i].ok);
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static size_t count_files(const char *dir, char *name_r, size_t size)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		n++;
		snprintf(name_r, size, "%s", de->d_name);
	}
	closedir(d);
	return n;
}

static void test_writer(void **state)
{
	(void)state;
	char qdir[] = "/tmp/maildrop_test.XXXXXX";
	assert_non_null(mkdtemp(qdir));
	char md[256], name[256], path[600];
	snprintf(md, sizeof(md), "%s/maildrop", qdir);
	assert_int_equal(mkdir(md, 01733), 0);

	struct maildrop_env env;
	maildrop_env_init(&env);
	maildrop_env_add_rcpt(&env, "root");
	const char *error = NULL;

	/* Commit: one file, 0644, parses back with the body. */
	struct maildrop_writer *w = NULL;
	assert_int_equal(maildrop_writer_open(qdir, &env, &w, &error), 0);
	assert_int_equal(count_files(md, name, sizeof(name)), 1);
	snprintf(path, sizeof(path), "%s/%s", md, name);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600); /* not published yet */
	maildrop_writer_body(w, "hello\n", 6);
	maildrop_writer_body(w, "world\n", 6);
	assert_int_equal(maildrop_writer_body_size(w), 12);
	assert_int_equal(maildrop_writer_commit(&w, &error), 0);
	assert_null(w);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_true(maildrop_name_valid(name));
	struct buf data = BUF_INIT;
	FILE *f = fopen(path, "r");
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&data, chunk, n);
	fclose(f);
	struct maildrop_env got;
	size_t off = 0;
	assert_int_equal(maildrop_parse(data.data, data.len, &got, &off, &error), 0);
	assert_string_equal((const char *)data.data + off, "hello\nworld\n");
	maildrop_env_deinit(&got);
	buf_deinit(&data);
	assert_int_equal(unlink(path), 0);

	/* Abort: nothing left. */
	assert_int_equal(maildrop_writer_open(qdir, &env, &w, &error), 0);
	maildrop_writer_body(w, "x\n", 2);
	maildrop_writer_abort(&w);
	assert_int_equal(count_files(md, name, sizeof(name)), 0);

	/* No maildrop directory: a clear error. */
	assert_int_equal(rmdir(md), 0);
	assert_int_equal(maildrop_writer_open(qdir, &env, &w, &error), -1);
	assert_string_equal(error, "create maildrop file");

	maildrop_env_deinit(&env);
	nftw(qdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_value_limit),
		cmocka_unit_test(test_rcpt_limit),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_writer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
