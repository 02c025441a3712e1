/* table_test.c - unit tests for lookup tables (table.h): compiled hash:/
 * lmdb: tables, texthash:, inline:, static:, unix:, regexp:, pcre:, lists
 * and table_check.  Everything is written under a mkdtemp() directory that
 * is removed at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mail/config.h"
#include "mail/table.h"
#include "mail/table_int.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char test_dir[] = "/tmp/facteur-table-test.XXXXXX";

static char *test_path(const char *name)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s/%s", test_dir, name);
	return buf_steal(&b);
}

static char *test_write(const char *name, const char *text)
{
	char *path = test_path(name);
	assert_int_equal(fs_write_atomic(path, text, strlen(text), 0644), 0);
	return path;
}

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

static bool test_diags_have(const struct config_diags *d, const char *file, unsigned line,
			    bool is_error, const char *needle)
{
	for (size_t i = 0; i < d->count; i++) {
		const struct config_diag *x = &d->items[i];
		if ((file == NULL || strcmp(x->file, file) == 0) && x->line == line &&
		    x->is_error == is_error && strstr(x->message, needle) != NULL)
			return true;
	}
	return false;
}

static void test_diags_dump(const struct config_diags *d)
{
	config_diags_print(d, 2);
}

/* Lookup helper: checks the result and value. */
static void test_expect(struct table *t, const char *key, int ret, const char *value)
{
	char *v = NULL;
	const char *error = NULL;
	int r = table_lookup(t, key, &v, &error);
	if (r != ret)
		fprintf(stderr, "lookup %s in %s: %d (%s) value %s\n", key, table_spec(t), r,
			error != NULL ? error : "", v != NULL ? v : "(null)");
	assert_int_equal(r, ret);
	if (ret == 1)
		assert_string_equal(v, value);
	free(v);
}

/* ------------------------------------------------------ compiled tables */

static void test_compile_lookup(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *type;
		const char *source;
		const char *key;
		int ret;
		const char *value;
	} rows[] = {
		{ "found", "hash", "alice a@example.test\n", "alice", 1, "a@example.test" },
		{ "not found", "hash", "alice a@example.test\n", "bob", 0, NULL },
		{ "key folded", "hash", "Alice a@example.test\n", "alice", 1, "a@example.test" },
		{ "lookup folded", "hash", "alice A@Example.test\n", "ALICE", 1,
		  "A@Example.test" },
		{ "lmdb type", "lmdb", "k v\n", "K", 1, "v" },
		{ "value with spaces", "hash", "k  a b\tc  \n", "k", 1, "a b\tc" },
		{ "no final newline", "hash", "k v", "k", 1, "v" },
		{ "continuation", "hash", "k v1,\n  v2\n", "k", 1, "v1,  v2" },
		{ "comments and blanks", "hash", "# c\n\n  \nk v\n# inside\n\tmore\nz 1\n", "k",
		  1, "v\tmore" },
		{ "comment line indented", "hash", "  # indented comment\nk v\n", "k", 1, "v" },
		{ "trailing # is value (postmap)", "hash",
		  "root    christian.caleca@free.fr # L'administrateur (moi)\n"
		  "chris   christian.caleca@free.fr # autre moi\n",
		  "root", 1, "christian.caleca@free.fr # L'administrateur (moi)" },
		{ "seeds sender_canonical chris", "hash",
		  "root    christian.caleca@free.fr # L'administrateur (moi)\n"
		  "chris   christian.caleca@free.fr # autre moi\n",
		  "chris", 1, "christian.caleca@free.fr # autre moi" },
		{ "seeds transport .aol.fr", "hash",
		  "aol.com smtp:smtp.wanadoo.fr\n.aol.com smtp:smtp.wanadoo.fr\n"
		  "aol.fr smtp:smtp.wanadoo.fr\n.aol.fr smtp:smtp.wanadoo.fr\n",
		  ".aol.fr", 1, "smtp:smtp.wanadoo.fr" },
		{ "seeds transport aol.com", "hash",
		  "aol.com smtp:smtp.wanadoo.fr\n.aol.com smtp:smtp.wanadoo.fr\n"
		  "aol.fr smtp:smtp.wanadoo.fr\n.aol.fr smtp:smtp.wanadoo.fr\n",
		  "AOL.com", 1, "smtp:smtp.wanadoo.fr" },
		{ "seeds transport miss", "hash",
		  "aol.com smtp:smtp.wanadoo.fr\n.aol.com smtp:smtp.wanadoo.fr\n",
		  "wanadoo.fr", 0, NULL },
		{ "duplicate keeps first", "hash", "k first\nK second\n", "k", 1, "first" },
		{ "crlf", "hash", "k v\r\n", "k", 1, "v" },
		{ "empty key lookup", "hash", "k v\n", "", 0, NULL },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *path = test_write("map", rows[i].source);
		struct buf spec = BUF_INIT;
		buf_printf(&spec, "%s:%s", rows[i].type, path);
		struct config_diags diags;
		config_diags_init(&diags);
		int ret = table_compile(buf_cstr(&spec), &diags);
		if (ret != 0) {
			fprintf(stderr, "row %s\n", rows[i].name);
			test_diags_dump(&diags);
		}
		assert_int_equal(ret, 0);
		assert_int_equal(diags.n_errors, 0);
		const char *error;
		struct table *t = table_open(buf_cstr(&spec), &error);
		assert_non_null(t);
		assert_string_equal(table_spec(t), buf_cstr(&spec));
		test_expect(t, rows[i].key, rows[i].ret, rows[i].value);
		table_free(&t);
		assert_null(t);
		/* No LMDB lock file and no temporary file are left behind. */
		char *lock = test_path("map.lmdb-lock");
		assert_int_equal(access(lock, F_OK), -1);
		free(lock);
		config_diags_deinit(&diags);
		buf_deinit(&spec);
		free(path);
	}
}

static void test_compile_duplicate_warning(void **state)
{
	(void)state;
	char *path = test_write("dup", "a 1\nb 2\nA 3\n");
	struct buf spec = BUF_INIT;
	buf_printf(&spec, "hash:%s", path);
	struct config_diags diags;
	config_diags_init(&diags);
	assert_int_equal(table_compile(buf_cstr(&spec), &diags), 0);
	assert_int_equal(diags.n_errors, 0);
	assert_true(test_diags_have(&diags, path, 3, false, "duplicate entry \"a\""));
	config_diags_deinit(&diags);
	buf_deinit(&spec);
	free(path);
}

static void test_compile_errors(void **state)
{
	(void)state;
	char *longv = xmalloc(TABLE_LINE_MAX + 8);
	static const struct {
		const char *name;
		const char *source;
		size_t value_len; /* >0: source is "k " + value_len x 'v' */
		unsigned line;
		const char *message; /* NULL: must compile */
	} rows[] = {
		{ "key without value", "a 1\nlonely\n", 0, 2, "expected format: key whitespace value" },
		{ "key with blanks only", "a 1\n\nb   \n", 0, 3,
		  "expected format: key whitespace value" },
		{ "NUL byte", "a 1\nb \0x\n", 0, 2, "NUL character" },
		{ "line max-1", NULL, TABLE_LINE_MAX - 3, 0, NULL },
		{ "line max", NULL, TABLE_LINE_MAX - 2, 0, NULL },
		{ "line max+1", NULL, TABLE_LINE_MAX - 1, 1, "line too long" },
		{ "continued line max+1", NULL, (size_t)-1, 1, "line too long" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *path = test_path("bad");
		struct buf src = BUF_INIT;
		if (rows[i].source != NULL && rows[i].value_len == 0) {
			/* sizeof-based length for the embedded NUL row */
			size_t n = strlen(rows[i].source);
			if (strcmp(rows[i].name, "NUL byte") == 0)
				n = 9;
			buf_append(&src, rows[i].source, n);
		} else if (rows[i].value_len == (size_t)-1) {
			/* two physical lines that only together exceed the limit */
			memset(longv, 'v', TABLE_LINE_MAX / 2);
			buf_append_str(&src, "k ");
			buf_append(&src, longv, TABLE_LINE_MAX / 2);
			buf_append_str(&src, "\n ");
			buf_append(&src, longv, TABLE_LINE_MAX / 2);
			buf_append_str(&src, "\n");
		} else {
			memset(longv, 'v', rows[i].value_len);
			buf_append_str(&src, "k ");
			buf_append(&src, longv, rows[i].value_len);
			buf_append_str(&src, "\n");
		}
		assert_int_equal(fs_write_atomic(path, src.data, src.len, 0644), 0);
		struct buf spec = BUF_INIT;
		buf_printf(&spec, "hash:%s", path);
		struct config_diags diags;
		config_diags_init(&diags);
		char *db = table_lmdb_db_path(path);
		(void)unlink(db);
		int ret = table_compile(buf_cstr(&spec), &diags);
		if (rows[i].message == NULL) {
			assert_int_equal(ret, 0);
			const char *error;
			struct table *t = table_open(buf_cstr(&spec), &error);
			assert_non_null(t);
			char *v = NULL;
			assert_int_equal(table_lookup(t, "k", &v, &error), 1);
			assert_int_equal(strlen(v), rows[i].value_len);
			free(v);
			table_free(&t);
		} else {
			if (!test_diags_have(&diags, path, rows[i].line, true, rows[i].message)) {
				fprintf(stderr, "row %s\n", rows[i].name);
				test_diags_dump(&diags);
			}
			assert_int_equal(ret, -1);
			assert_true(test_diags_have(&diags, path, rows[i].line, true,
						    rows[i].message));
			/* No database was published. */
			assert_int_equal(access(db, F_OK), -1);
		}
		free(db);
		config_diags_deinit(&diags);
		buf_deinit(&spec);
		buf_deinit(&src);
		free(path);
	}
	free(longv);
}

static void test_compile_bad_spec(void **state)
{
	(void)state;
	static const struct {
		const char *spec;
		const char *message;
	} rows[] = {
		{ "regexp:/x", "unsupported table type for compilation" },
		{ "hash:relative", "must be absolute" },
		{ "/nonexistent/dir/map", "No such file or directory" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct config_diags diags;
		config_diags_init(&diags);
		assert_int_equal(table_compile(rows[i].spec, &diags), -1);
		assert_int_equal(diags.n_errors, 1);
		assert_non_null(strstr(diags.items[0].message, rows[i].message));
		config_diags_deinit(&diags);
	}
}

static void test_missing_db(void **state)
{
	(void)state;
	char *path = test_path("nodb");
	struct buf spec = BUF_INIT, expect = BUF_INIT;
	buf_printf(&spec, "hash:%s", path);
	buf_printf(&expect,
		   "open %s.lmdb: No such file or directory (run 'facteur map hash:%s')", path,
		   path);
	const char *error = NULL;
	assert_null(table_open(buf_cstr(&spec), &error));
	assert_string_equal(error, buf_cstr(&expect));

	/* In a list, the open fails the same way. */
	assert_null(table_list_open(buf_cstr(&spec), &error));
	assert_string_equal(error, buf_cstr(&expect));

	/* facteur check: error at the parameter's location. */
	struct config_diags diags;
	config_diags_init(&diags);
	assert_int_equal(table_check(buf_cstr(&spec), &diags, "main.cf", 7), -1);
	assert_true(test_diags_have(&diags, "main.cf", 7, true, "run 'facteur map hash:"));
	config_diags_deinit(&diags);
	buf_deinit(&spec);
	buf_deinit(&expect);
	free(path);
}

static void test_check_older(void **state)
{
	(void)state;
	char *path = test_write("older", "k v\n");
	struct buf spec = BUF_INIT;
	buf_printf(&spec, "hash:%s", path);
	struct config_diags diags;
	config_diags_init(&diags);
	assert_int_equal(table_compile(buf_cstr(&spec), &diags), 0);
	assert_int_equal(table_check(buf_cstr(&spec), &diags, "main.cf", 3), 0);
	assert_int_equal(diags.count, 0);

	/* Source modified after compilation. */
	struct timespec ts[2] = { { time(NULL) + 100, 0 }, { time(NULL) + 100, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	assert_int_equal(table_check(buf_cstr(&spec), &diags, "main.cf", 3), 0);
	assert_int_equal(diags.n_errors, 0);
	struct buf msg = BUF_INIT;
	buf_printf(&msg, "database %s.lmdb is older than source file %s", path, path);
	assert_true(test_diags_have(&diags, "main.cf", 3, false, buf_cstr(&msg)));
	/* Lookups still work. */
	const char *error;
	struct table *t = table_open(buf_cstr(&spec), &error);
	assert_non_null(t);
	test_expect(t, "k", 1, "v");
	table_free(&t);
	buf_deinit(&msg);
	config_diags_deinit(&diags);
	buf_deinit(&spec);
	free(path);
}

static void test_reopen_replaced(void **state)
{
	(void)state;
	char *path = test_write("live", "k old\n");
	struct buf spec = BUF_INIT;
	buf_printf(&spec, "lmdb:%s", path);
	struct config_diags diags;
	config_diags_init(&diags);
	assert_int_equal(table_compile(buf_cstr(&spec), &diags), 0);
	const char *error;
	struct table *t = table_open(buf_cstr(&spec), &error);
	assert_non_null(t);
	test_expect(t, "k", 1, "old");
	test_expect(t, "n", 0, NULL);

	free(test_write("live", "k new\nn added\n"));
	assert_int_equal(table_compile(buf_cstr(&spec), &diags), 0);
	table_lmdb_recheck_now(t);
	test_expect(t, "k", 1, "new");
	test_expect(t, "n", 1, "added");

	/* A broken replacement keeps the previous database in use. */
	char *db = table_lmdb_db_path(path);
	assert_int_equal(fs_write_atomic(db, "garbage", 7, 0644), 0);
	table_lmdb_recheck_now(t);
	test_expect(t, "k", 1, "new");
	free(db);
	table_free(&t);
	config_diags_deinit(&diags);
	buf_deinit(&spec);
	free(path);
}

/* --------------------------------------------------- texthash, inline, ... */

static void test_texthash(void **state)
{
	(void)state;
	char *path = test_write("text", "# comment\nAlice a@x\nbob b@x\n  continued\n"
					"alice dup\n");
	/* Enough entries to grow the hash table past several resizes. */
	struct buf big = BUF_INIT;
	for (int n = 0; n < 300; n++)
		buf_printf(&big, "key%d value%d\n", n, n);
	char *bigpath = test_write("textbig", buf_cstr(&big));
	struct buf spec = BUF_INIT;
	buf_printf(&spec, "texthash:%s", path);
	const char *error;
	struct table *t = table_open(buf_cstr(&spec), &error);
	assert_non_null(t);
	test_expect(t, "ALICE", 1, "a@x");
	test_expect(t, "bob", 1, "b@x  continued");
	test_expect(t, "carol", 0, NULL);
	table_free(&t);

	buf_reset(&spec);
	buf_printf(&spec, "texthash:%s", bigpath);
	t = table_open(buf_cstr(&spec), &error);
	assert_non_null(t);
	test_expect(t, "key0", 1, "value0");
	test_expect(t, "key299", 1, "value299");
	test_expect(t, "key300", 0, NULL);
	table_free(&t);

	/* Syntax error: NULL with file:line. */
	char *bad = test_write("textbad", "a 1\nb\n");
	buf_reset(&spec);
	buf_printf(&spec, "texthash:%s", bad);
	assert_null(table_open(buf_cstr(&spec), &error));
	struct buf expect = BUF_INIT;
	buf_printf(&expect, "%s:2: expected format: key whitespace value", bad);
	assert_string_equal(error, buf_cstr(&expect));
	buf_deinit(&expect);

	/* Missing file. */
	assert_null(table_open("texthash:/nonexistent/x", &error));
	assert_non_null(strstr(error, "/nonexistent/x: open: No such file"));

	buf_deinit(&spec);
	buf_deinit(&big);
	free(path);
	free(bigpath);
	free(bad);
}

static void test_inline_static(void **state)
{
	(void)state;
	static const struct {
		const char *spec;
		const char *key;
		int ret;
		const char *value;
	} rows[] = {
		{ "inline:{ a=1, b=2 }", "a", 1, "1" },
		{ "inline:{ a=1, b=2 }", "B", 1, "2" },
		{ "inline:{ a=1, b=2 }", "c", 0, NULL },
		{ "inline:{a=1,b=2}", "b", 1, "2" },
		{ "inline:{ a=1 b=2 }", "b", 1, "2" },
		{ "inline:{ { k = value with, commas }, x=y }", "k", 1, "value with, commas" },
		{ "inline:{ { k = value with, commas }, x=y }", "x", 1, "y" },
		{ "inline:{ { k = v {nested} w } }", "k", 1, "v {nested} w" },
		{ "inline:{ Key=Value }", "key", 1, "Value" },
		{ "inline:{ e= }", "e", 1, "" },
		{ "static:relay", "anything", 1, "relay" },
		{ "static:{ a b  c }", "x", 1, "a b  c" },
		{ "static:OK", "", 1, "OK" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *error;
		struct table *t = table_open(rows[i].spec, &error);
		assert_non_null(t);
		test_expect(t, rows[i].key, rows[i].ret, rows[i].value);
		table_free(&t);
	}
	static const struct {
		const char *spec;
		const char *message;
	} bad[] = {
		{ "inline:a=b", "bad syntax" },
		{ "inline:{ }", "empty table" },
		{ "inline:{ a }", "missing '='" },
		{ "inline:{ =b }", "missing name" },
		{ "inline:{ { a=b }", "missing '}'" },
		{ "inline:{ a=b} }", "unexpected '}'" },
		{ "static:{ a", "missing '}'" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *error = NULL;
		assert_null(table_open(bad[i].spec, &error));
		if (strstr(error, bad[i].message) == NULL)
			fprintf(stderr, "%s: %s\n", bad[i].spec, error);
		assert_non_null(strstr(error, bad[i].message));
	}
}

static void test_unix(void **state)
{
	(void)state;
	static const char *specs[] = { "unix:passwd.byname", "proxy:unix:passwd.byname" };
	for (size_t i = 0; i < 2; i++) {
		const char *error;
		struct table *t = table_open(specs[i], &error);
		assert_non_null(t);
		assert_string_equal(table_spec(t), "unix:passwd.byname");
		char *v = NULL;
		assert_int_equal(table_lookup(t, "root", &v, &error), 1);
		assert_true(strncmp(v, "root:", 5) == 0);
		free(v);
		assert_int_equal(table_lookup(t, "ROOT", &v, &error), 1);
		free(v);
		assert_int_equal(table_lookup(t, "no-such-user-facteur", &v, &error), 0);
		table_free(&t);
	}
	const char *error;
	assert_null(table_open("unix:shadow.byname", &error));
}

static void test_bad_specs(void **state)
{
	(void)state;
	static const struct {
		const char *spec;
		const char *message;
	} rows[] = {
		{ "hash", "expected type:name" },
		{ ":x", "expected type:name" },
		{ "nosuch:/x", "unsupported table type \"nosuch\"" },
		{ "hash:", "empty name" },
		{ "hash:relative/path", "must be absolute" },
		{ "regexp:relative", "must be absolute" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *error = NULL;
		assert_null(table_open(rows[i].spec, &error));
		assert_non_null(strstr(error, rows[i].message));
	}
}

/* ------------------------------------------------------- regexp and pcre */

struct re_row {
	const char *name;
	const char *source;
	const char *key;
	int ret;
	const char *value;
};

static const char header_checks[] = "/^Received:*/  IGNORE\n"
				    "/^from: * chose@public\\.com$/ REJECT\n";

static const struct re_row re_rows[] = {
	{ "header_checks received", header_checks, "Received: from x by y", 1, "IGNORE" },
	{ "header_checks from", header_checks, "From: chose@public.com", 1, "REJECT" },
	{ "header_checks other from", header_checks, "From: autre@public.com", 0, NULL },
	{ "first match wins", "/a/ first\n/a/ second\n", "a", 1, "first" },
	{ "substitution $1", "/^(.*)@example\\.test$/ $1@other.test\n", "joe@example.test", 1,
	  "joe@other.test" },
	{ "substitution ${2} $(1)", "/^(a+)(b+)$/ ${2}-$(1)\n", "aabbb", 1, "bbb-aa" },
	{ "$$ literal", "/x/ cost $$5\n", "x", 1, "cost $5" },
	{ "$0 whole match", "/b+/ <$0>\n", "abbbc", 1, "<bbb>" },
	{ "unmatched group empty", "/^(a)|(b)$/ [$1][$2]\n", "b", 1, "[][b]" },
	{ "negation matches", "!/^ok/ REJECT not ok\n", "bad", 1, "REJECT not ok" },
	{ "negation no match", "!/^ok/ REJECT\n", "ok then", 0, NULL },
	{ "delimiter |", "|^/usr/bin/| path\n", "/usr/bin/x", 1, "path" },
	{ "line starting with # is a comment", "#^/usr/bin/# path\n", "/usr/bin/x", 0, NULL },
	{ "negated # delimiter", "!#^/usr/bin/# notbin\n", "/etc/x", 1, "notbin" },
	{ "escaped delimiter", "/a\\/b/ slash\n", "a/b", 1, "slash" },
	{ "case insensitive default", "/^hello$/ hi\n", "HELLO", 1, "hi" },
	{ "i toggles to sensitive", "/^hello$/i hi\n", "HELLO", 0, NULL },
	{ "if endif inside", "if /example\\.test$/\n/^joe@/ JOE\nendif\n/./ OTHER\n",
	  "joe@example.test", 1, "JOE" },
	{ "if endif skipped", "if /example\\.test$/\n/^joe@/ JOE\nendif\n/./ OTHER\n",
	  "joe@else.test", 1, "OTHER" },
	{ "if negated", "if !/^root@/\n/./ NOTROOT\nendif\n", "root@x", 0, NULL },
	{ "nested if", "IF /a/\nif /b/\n/c/ ABC\nendif\n/./ A\nENDIF\n", "ac", 1, "A" },
	{ "nested if all", "if /a/\nif /b/\n/c/ ABC\nendif\n/./ A\nendif\n", "abc", 1, "ABC" },
	{ "continuation in result", "/x/ part one\n  part two\n", "x", 1,
	  "part one  part two" },
	{ "comments", "# comment\n\n/x/ X\n", "x", 1, "X" },
};

static void test_re_rows(bool is_pcre)
{
	for (size_t i = 0; i < sizeof(re_rows) / sizeof(re_rows[0]); i++) {
		const struct re_row *row = &re_rows[i];
		char *path = test_write(is_pcre ? "pcre" : "regexp", row->source);
		struct buf spec = BUF_INIT;
		buf_printf(&spec, "%s:%s", is_pcre ? "pcre" : "regexp", path);
		const char *error = NULL;
		struct table *t = table_open(buf_cstr(&spec), &error);
		if (t == NULL)
			fprintf(stderr, "row %s: %s\n", row->name, error);
		assert_non_null(t);
		test_expect(t, row->key, row->ret, row->value);
		table_free(&t);
		buf_deinit(&spec);
		free(path);
	}
}

static void test_regexp(void **state)
{
	(void)state;
	test_re_rows(false);
	/* POSIX-only: x toggles extended syntax off (basic: \( \) groups). */
	char *path = test_write("regexp", "/^\\(a*\\)b$/x basic-$1\n");
	struct buf spec = BUF_INIT;
	buf_printf(&spec, "regexp:%s", path);
	const char *error;
	struct table *t = table_open(buf_cstr(&spec), &error);
	assert_non_null(t);
	test_expect(t, "aab", 1, "basic-aa");
	table_free(&t);
	free(path);
	/* Without x (extended, the default) \( is a literal parenthesis. */
	path = test_write("regexp", "/^\\(a*\\)b$/ ext\n");
	t = table_open(buf_cstr(&spec), &error);
	assert_non_null(t);
	test_expect(t, "aab", 0, NULL);
	test_expect(t, "(aa)b", 1, "ext");
	table_free(&t);
	buf_deinit(&spec);
	free(path);
}

static void test_pcre(void **state)
{
	(void)state;
	test_re_rows(true);
	static const struct re_row rows[] = {
		{ "lazy", "/^(.+?)@/ $1\n", "a@b@c", 1, "a" },
		{ "U ungreedy", "/^(.+)@/U $1\n", "a@b@c", 1, "a" },
		{ "s dotall", "/a.b/s S\n", "a\nb", 1, "S" },
		{ "no dotall", "/a.b/ S\n", "a\nb", 0, NULL },
		{ "x extended", "/a b c/x X\n", "abc", 1, "X" },
		{ "lookahead", "/^(?!root)(\\w+)/ $1\n", "joe", 1, "joe" },
		{ "X ignored", "/a/X A\n", "a", 1, "A" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *path = test_write("pcre2", rows[i].source);
		struct buf spec = BUF_INIT;
		buf_printf(&spec, "pcre:%s", path);
		const char *error = NULL;
		struct table *t = table_open(buf_cstr(&spec), &error);
		if (t == NULL)
			fprintf(stderr, "row %s: %s\n", rows[i].name, error);
		assert_non_null(t);
		test_expect(t, rows[i].key, rows[i].ret, rows[i].value);
		table_free(&t);
		buf_deinit(&spec);
		free(path);
	}
}

static void test_re_errors(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *source;
		int which; /* 1 regexp, 2 pcre, 3 both */
		unsigned line;
		const char *message;
	} rows[] = {
		{ "missing delimiter", "/ok/ x\n/abc x\n", 3, 2, "missing closing delimiter '/'" },
		{ "no pattern", "abc x\n", 3, 1, "expected a pattern" },
		{ "missing result", "/a/ x\n\n/b/\n", 3, 3, "missing result" },
		{ "unknown flag", "/a/q x\n", 3, 1, "unknown" },
		{ "pcre flag in regexp", "/a/s x\n", 1, 1, "unknown regexp option \"s\"" },
		{ "out of range", "/(a)/ $2\n", 3, 1, "out of range replacement index \"2\"" },
		{ "non numeric", "/(a)/ $x\n", 3, 1, "non-numeric replacement index" },
		{ "unclosed brace", "/(a)/ ${1\n", 3, 1, "missing '}'" },
		{ "negated with $1", "!/(a)/ $1\n", 3, 1, "negated pattern" },
		{ "bad regexp", "/a/ x\n/(/ x\n", 3, 2, "\"(\"" },
		{ "huge repeats", "/((a{99}){99}){99}/ x\n", 1, 1, "repetition counts too large" },
		{ "long interval", "/a{1,20000}/ x\n", 1, 1, "repetition counts too large" },
		{ "endif without if", "/a/ x\nendif\n", 3, 2, "endif without matching if" },
		{ "if without endif", "if /a/\n/b/ x\n", 3, 1, "if without matching endif" },
		{ "text after endif", "if /a/\nendif x\n", 3, 2, "unexpected text after endif" },
		{ "text after if", "if /a/ x\nendif\n", 3, 1, "unexpected text after if" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		for (int w = 1; w <= 2; w++) {
			if ((rows[i].which & w) == 0)
				continue;
			bool is_pcre = w == 2;
			char *path = test_write("rebad", rows[i].source);
			struct buf spec = BUF_INIT, expect = BUF_INIT;
			buf_printf(&spec, "%s:%s", is_pcre ? "pcre" : "regexp", path);
			buf_printf(&expect, "%s:%u: ", path, rows[i].line);
			const char *error = NULL;
			struct table *t = table_open(buf_cstr(&spec), &error);
			if (t != NULL || strstr(error, rows[i].message) == NULL ||
			    strncmp(error, buf_cstr(&expect), expect.len) != 0)
				fprintf(stderr, "row %s (%s): %s\n", rows[i].name,
					is_pcre ? "pcre" : "regexp", t == NULL ? error : "opened");
			assert_null(t);
			assert_non_null(strstr(error, rows[i].message));
			assert_true(strncmp(error, buf_cstr(&expect), expect.len) == 0);

			/* facteur check reports the same, at the table's file:line. */
			struct config_diags diags;
			config_diags_init(&diags);
			assert_int_equal(table_check(buf_cstr(&spec), &diags, "main.cf", 1), -1);
			assert_true(test_diags_have(&diags, path, rows[i].line, true,
						    rows[i].message));
			config_diags_deinit(&diags);
			buf_deinit(&spec);
			buf_deinit(&expect);
			free(path);
		}
	}
}

/* ------------------------------------------------------------------ lists */

static int test_failing_lookup(struct table *t, const char *key, char **value_r,
			       const char **error_r)
{
	(void)key;
	(void)value_r;
	*error_r = table_lookup_error(t, "simulated failure");
	return -1;
}

static void test_list(void **state)
{
	(void)state;
	char *map = test_write("lmap", "joe hash-joe\n");
	char *re = test_write("lre", "/^joe$/ re-joe\n/^ann$/ re-ann\n");
	struct config_diags diags;
	config_diags_init(&diags);
	struct buf spec = BUF_INIT;
	buf_printf(&spec, "hash:%s", map);
	assert_int_equal(table_compile(buf_cstr(&spec), &diags), 0);
	buf_reset(&spec);
	buf_printf(&spec, "hash:%s, regexp:%s inline:{ { zed = inline zed } }", map, re);
	const char *error;
	struct table_list *l = table_list_open(buf_cstr(&spec), &error);
	assert_non_null(l);
	assert_int_equal(table_list_count(l), 3);
	static const struct {
		const char *key;
		int ret;
		const char *value;
	} rows[] = {
		{ "joe", 1, "hash-joe" },
		{ "JOE", 1, "hash-joe" },
		{ "ann", 1, "re-ann" },
		{ "zed", 1, "inline zed" },
		{ "nobody", 0, NULL },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *v = NULL;
		assert_int_equal(table_list_lookup(l, rows[i].key, &v, &error), rows[i].ret);
		if (rows[i].ret == 1)
			assert_string_equal(v, rows[i].value);
		free(v);
	}
	/* An error in a table consulted before a hit is an error. */
	struct table *second = table_list_get(l, 1);
	assert_non_null(second);
	second->lookup = test_failing_lookup;
	char *v = NULL;
	assert_int_equal(table_list_lookup(l, "joe", &v, &error), 1); /* hit before */
	free(v);
	v = NULL;
	assert_int_equal(table_list_lookup(l, "zed", &v, &error), -1);
	assert_string_equal(error, "simulated failure");
	assert_null(v);
	table_list_free(&l);
	assert_null(l);

	/* Empty list: nothing found. */
	l = table_list_open("", &error);
	assert_non_null(l);
	assert_int_equal(table_list_count(l), 0);
	assert_int_equal(table_list_lookup(l, "x", &v, &error), 0);
	table_list_free(&l);

	/* One bad spec fails the whole list. */
	assert_null(table_list_open("static:x, nosuch:/y", &error));
	assert_non_null(strstr(error, "nosuch"));

	config_diags_deinit(&diags);
	buf_deinit(&spec);
	free(map);
	free(re);
}

static void test_check(void **state)
{
	(void)state;
	char *text = test_write("ctext", "a b\n");
	char *re = test_write("cre", "/a/ b\n");
	static const struct {
		const char *spec; /* %s is replaced by the test dir */
		int ret;
		const char *message;
	} rows[] = {
		{ "nosuch:/x", -1, "unsupported table type" },
		{ "texthash:%s/ctext", 0, NULL },
		{ "texthash:%s/missing", -1, "No such file" },
		{ "regexp:%s/cre", 0, NULL },
		{ "pcre:%s/cre", 0, NULL },
		{ "inline:{ a=b }", 0, NULL },
		{ "inline:{ a }", -1, "missing '='" },
		{ "static:x", 0, NULL },
		{ "proxy:unix:passwd.byname", 0, NULL },
		{ "unix:nope", -1, "unknown table" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct buf spec = BUF_INIT;
		const char *pct = strstr(rows[i].spec, "%s");
		if (pct != NULL) {
			buf_append(&spec, rows[i].spec, (size_t)(pct - rows[i].spec));
			buf_append_str(&spec, test_dir);
			buf_append_str(&spec, pct + 2);
		} else {
			buf_append_str(&spec, rows[i].spec);
		}
		struct config_diags diags;
		config_diags_init(&diags);
		int ret = table_check(buf_cstr(&spec), &diags, "main.cf", 5);
		if (ret != rows[i].ret)
			test_diags_dump(&diags);
		assert_int_equal(ret, rows[i].ret);
		if (rows[i].message != NULL) {
			bool found = false;
			for (size_t k = 0; k < diags.count; k++)
				found |= strstr(diags.items[k].message, rows[i].message) != NULL;
			assert_true(found);
		} else {
			assert_int_equal(diags.count, 0);
		}
		config_diags_deinit(&diags);
		buf_deinit(&spec);
	}
	free(text);
	free(re);
}

/* The source parser hands keys as written with their line numbers. */
struct test_src_ctx {
	struct buf out;
};

static int test_src_cb(void *ctx, const char *key, const char *value, unsigned line)
{
	struct test_src_ctx *c = ctx;
	buf_printf(&c->out, "%u:%s=%s;", line, key, value);
	return 0;
}

static int test_src_stop(void *ctx, const char *key, const char *value, unsigned line)
{
	(void)ctx;
	(void)key;
	(void)value;
	(void)line;
	return -1;
}

static void test_source_parse(void **state)
{
	(void)state;
	char *path = test_write("srcp", "# c\nKey  v1\n  v2\n\nb x # y\n");
	struct config_diags diags;
	config_diags_init(&diags);
	struct test_src_ctx c = { BUF_INIT };
	assert_int_equal(table_source_parse(path, test_src_cb, &c, &diags), 0);
	assert_string_equal(buf_cstr(&c.out), "2:Key=v1  v2;5:b=x # y;");
	assert_int_equal(table_source_parse(path, test_src_stop, &c, &diags), -1);
	buf_deinit(&c.out);
	config_diags_deinit(&diags);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compile_lookup),
		cmocka_unit_test(test_compile_duplicate_warning),
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_compile_bad_spec),
		cmocka_unit_test(test_missing_db),
		cmocka_unit_test(test_check_older),
		cmocka_unit_test(test_reopen_replaced),
		cmocka_unit_test(test_texthash),
		cmocka_unit_test(test_inline_static),
		cmocka_unit_test(test_unix),
		cmocka_unit_test(test_bad_specs),
		cmocka_unit_test(test_regexp),
		cmocka_unit_test(test_pcre),
		cmocka_unit_test(test_re_errors),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_source_parse),
	};
	return cmocka_run_group_tests(tests, test_setup, test_teardown);
}
