/* aliases_test.c - unit tests for aliases(5): right-hand side splitting,
 * source parsing, compilation into LMDB and lookup through table_open(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mail/aliases.h"
#include "mail/config.h"
#include "mail/table.h"
#include "mail/table_int.h"

#include "lib/buf.h"
#include "lib/fs.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char test_dir[] = "/tmp/facteur-aliases-test.XXXXXX";

static char *test_write(const char *name, const char *text)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s/%s", test_dir, name);
	char *path = buf_steal(&b);
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

#define A ALIAS_TARGET_ADDRESS
#define P ALIAS_TARGET_PIPE
#define F ALIAS_TARGET_FILE
#define I ALIAS_TARGET_INCLUDE

static void test_parse_rhs(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *rhs;
		int count; /* -1: error */
		struct {
			enum alias_target_kind kind;
			const char *value;
		} t[4];
		const char *error;
	} rows[] = {
		{ "one address", "root", 1, { { A, "root" } }, NULL },
		{ "list", "a, b@example.test,c", 3, { { A, "a" }, { A, "b@example.test" }, { A, "c" } },
		  NULL },
		{ "blanks and empty items", "  a ,, ,b  ", 2, { { A, "a" }, { A, "b" } }, NULL },
		{ "empty", "", 0, { { A, NULL } }, NULL },
		{ "only commas", " , ,", 0, { { A, NULL } }, NULL },
		{ "pipe", "|/usr/bin/vacation joe", 1, { { P, "/usr/bin/vacation joe" } }, NULL },
		{ "quoted pipe with comma", "\"|cmd -a x, y\", joe", 2,
		  { { P, "cmd -a x, y" }, { A, "joe" } }, NULL },
		{ "file", "/var/log/mail.archive", 1, { { F, "/var/log/mail.archive" } }, NULL },
		{ "quoted file", "\"/tmp/a b\"", 1, { { F, "/tmp/a b" } }, NULL },
		{ "include", ":include:/etc/mail/staff", 1, { { I, "/etc/mail/staff" } }, NULL },
		{ "include upper case", ":INCLUDE: /etc/x", 1, { { I, "/etc/x" } }, NULL },
		{ "quoted include", "\":include:/etc/x\"", 1, { { I, "/etc/x" } }, NULL },
		{ "quoted local part", "\"john doe\"@example.test, x", 2,
		  { { A, "\"john doe\"@example.test" }, { A, "x" } }, NULL },
		{ "escaped quote", "\"|echo \\\"hi\\\"\"", 1, { { P, "echo \"hi\"" } }, NULL },
		{ "backslash user", "\\joe, joe@x", 2, { { A, "\\joe" }, { A, "joe@x" } }, NULL },
		{ "blank-separated addresses", "a b\tc", 3, { { A, "a" }, { A, "b" }, { A, "c" } },
		  NULL },
		{ "empty quoted item", "\"\", a", 1, { { A, "a" } }, NULL },
		{ "mixed", "chris, |/bin/cat, /tmp/f, :include:/etc/i", 4,
		  { { A, "chris" }, { P, "/bin/cat" }, { F, "/tmp/f" }, { I, "/etc/i" } }, NULL },
		{ "unbalanced quote", "a, \"|cmd", -1, { { A, NULL } }, "unbalanced" },
		{ "unbalanced quote in address", "\"john@x", -1, { { A, NULL } }, "unbalanced" },
		{ "empty pipe", "|  ", -1, { { A, NULL } }, "empty command" },
		{ "empty include", ":include:", -1, { { A, NULL } }, "missing file name" },
		{ "relative include", ":include:staff", -1, { { A, NULL } }, "absolute" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct alias_target *targets = NULL;
		const char *error = NULL;
		int n = aliases_parse_rhs(rows[i].rhs, &targets, &error);
		if (n != rows[i].count)
			fprintf(stderr, "row %s: %d (%s)\n", rows[i].name, n, error ? error : "");
		assert_int_equal(n, rows[i].count);
		if (n < 0) {
			assert_null(targets);
			assert_non_null(strstr(error, rows[i].error));
			continue;
		}
		for (int k = 0; k < n; k++) {
			assert_int_equal(targets[k].kind, rows[i].t[k].kind);
			assert_string_equal(targets[k].value, rows[i].t[k].value);
		}
		alias_targets_free(&targets, (size_t)n);
		assert_null(targets);
	}
}

/* The seeds' /etc/aliases plus the other target forms. */
static const char seeds_aliases[] =
	"# Basic system aliases -- these MUST be present.\n"
	"MAILER-DAEMON:\tpostmaster\n"
	"postmaster:\troot\n"
	"\n"
	"# General redirections for pseudo accounts.\n"
	"bin:\t\troot\n"
	"daemon:\t\troot\n"
	"nobody:\t\troot\n"
	"root:\tchris\n"
	"archive: /var/mail/archive, chris\n"
	"vacation: \"|/usr/bin/vacation -a chris, again\"\n"
	"staff:\t:include:/etc/mail/staff\n"
	"\"Quoted Name\": chris\n"
	"multi: a,\n"
	"   b,\n"
	"\tc\n"
	"Root: duplicate\n";

static void test_compile_lookup(void **state)
{
	(void)state;
	char *path = test_write("aliases", seeds_aliases);
	struct config_diags diags;
	config_diags_init(&diags);
	/* A bare path means hash:. */
	int ret = aliases_compile(path, &diags);
	if (ret != 0)
		config_diags_print(&diags, 2);
	assert_int_equal(ret, 0);
	assert_int_equal(diags.n_errors, 0);
	assert_int_equal(diags.count, 1);
	assert_int_equal(diags.items[0].line, 17);
	assert_false(diags.items[0].is_error);
	assert_non_null(strstr(diags.items[0].message, "duplicate entry \"root\""));

	struct buf spec = BUF_INIT;
	buf_printf(&spec, "hash:%s", path);
	const char *error;
	struct table *t = table_open(buf_cstr(&spec), &error);
	assert_non_null(t);
	static const struct {
		const char *key;
		int ret;
		const char *value;
	} rows[] = {
		{ "mailer-daemon", 1, "postmaster" },
		{ "MAILER-DAEMON", 1, "postmaster" },
		{ "postmaster", 1, "root" },
		{ "bin", 1, "root" },
		{ "nobody", 1, "root" },
		{ "root", 1, "chris" },
		{ "chris", 0, NULL },
		{ "archive", 1, "/var/mail/archive, chris" },
		{ "vacation", 1, "\"|/usr/bin/vacation -a chris, again\"" },
		{ "staff", 1, ":include:/etc/mail/staff" },
		{ "quoted name", 1, "chris" },
		{ "multi", 1, "a,   b,\tc" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *v = NULL;
		assert_int_equal(table_lookup(t, rows[i].key, &v, &error), rows[i].ret);
		if (rows[i].ret == 1)
			assert_string_equal(v, rows[i].value);
		free(v);
	}
	table_free(&t);

	/* lmdb: names the same file. */
	buf_reset(&spec);
	buf_printf(&spec, "lmdb:%s", path);
	assert_int_equal(aliases_compile(buf_cstr(&spec), &diags), 0);
	t = table_open(buf_cstr(&spec), &error);
	assert_non_null(t);
	char *v = NULL;
	assert_int_equal(table_lookup(t, "root", &v, &error), 1);
	assert_string_equal(v, "chris");
	free(v);
	table_free(&t);

	buf_deinit(&spec);
	config_diags_deinit(&diags);
	free(path);
}

static void test_compile_errors(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *source;
		unsigned line;
		const char *message;
	} rows[] = {
		{ "missing colon", "a: b\nroot chris\n", 2, "missing colon" },
		{ "empty name", "a: b\n: chris\n", 2, "empty name" },
		{ "empty quoted name", "\"\": chris\n", 1, "empty name" },
		{ "quoted name without colon", "\"x y\" chris\n", 1, "missing colon" },
		{ "unbalanced quoted name", "\"x y: chris\n", 1, "unbalanced" },
		{ "blank in name", "x y: chris\n", 1, "white space in name" },
		{ "empty rhs", "a: b\nc:\n", 2, "no addresses" },
		{ "rhs syntax", "a: b\n\nc: \"|cmd\n", 3, "c: unbalanced double quote" },
		{ "relative include", "a: :include:x\n", 1, "absolute" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *path = test_write("bad", rows[i].source);
		struct config_diags diags;
		config_diags_init(&diags);
		char *db = table_lmdb_db_path(path);
		(void)unlink(db);
		assert_int_equal(aliases_compile(path, &diags), -1);
		bool found = false;
		for (size_t k = 0; k < diags.count; k++) {
			found |= diags.items[k].is_error && diags.items[k].line == rows[i].line &&
				 strcmp(diags.items[k].file, path) == 0 &&
				 strstr(diags.items[k].message, rows[i].message) != NULL;
		}
		if (!found) {
			fprintf(stderr, "row %s\n", rows[i].name);
			config_diags_print(&diags, 2);
		}
		assert_true(found);
		assert_int_equal(access(db, F_OK), -1); /* nothing published */
		free(db);
		config_diags_deinit(&diags);
		free(path);
	}
	/* Bad specs. */
	struct config_diags diags;
	config_diags_init(&diags);
	assert_int_equal(aliases_compile("texthash:/etc/aliases", &diags), -1);
	assert_int_equal(aliases_compile("relative/aliases", &diags), -1);
	assert_int_equal(aliases_compile("/nonexistent/aliases", &diags), -1);
	assert_int_equal(diags.n_errors, 3);
	config_diags_deinit(&diags);
}

static int test_collect(void *ctx, const char *name, const char *rhs, unsigned line)
{
	buf_printf(ctx, "%u:%s=%s;", line, name, rhs);
	return 0;
}

static void test_source_parse(void **state)
{
	(void)state;
	char *path = test_write("src", "# c\nA: x\n  , y\n\"B c\" : z\n");
	struct config_diags diags;
	config_diags_init(&diags);
	struct buf out = BUF_INIT;
	assert_int_equal(aliases_source_parse(path, test_collect, &out, &diags), 0);
	assert_string_equal(buf_cstr(&out), "2:a=x  , y;4:b c=z;");
	buf_deinit(&out);
	config_diags_deinit(&diags);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_rhs),
		cmocka_unit_test(test_compile_lookup),
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_source_parse),
	};
	return cmocka_run_group_tests(tests, test_setup, test_teardown);
}
