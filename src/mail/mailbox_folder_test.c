/* mailbox_folder_test.c - unit tests for the folder store, each in its own
 * mkdtemp() directory: name checks (limits 512/513), LIST patterns,
 * special-use parsing and creation, both layouts' LIST attributes
 * (children, \Noselect parents, \NoInferiors files), subscriptions across
 * reopen, CREATE/DELETE/RENAME with inferiors, rename rollback, RENAME
 * INBOX on both layouts, and that DELETE never follows a symbolic link. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/mem.h"
#include "mail/mailbox_folder.h"

struct fixture {
	char dir[64];
	char root[512];
	char inbox[512];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/facteur-folder-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
	snprintf(f->inbox, sizeof(f->inbox), "%s/spool", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int ret = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return ret;
}

static struct folder_store *open_store(struct fixture *f, enum folder_layout layout,
				       const char *special)
{
	struct folder_store_params p = { layout, f->root, f->inbox, special };
	const char *err = NULL;
	struct folder_store *st = folder_store_open(&p, &err);
	if (st == NULL)
		fail_msg("folder_store_open: %s", err);
	return st;
}

static bool path_exists(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool path_exists(const char *fmt, ...)
{
	char p[PATH_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p, sizeof(p), fmt, ap);
	va_end(ap);
	struct stat sb;
	return lstat(p, &sb) == 0;
}

static void write_file(const char *path, const char *data)
{
	assert_int_equal(fs_write_atomic(path, data, strlen(data), 0600), 0);
}

/* Attributes of name in a fresh LIST, or -1 when not listed. */
static long list_attrs(struct folder_store *st, const char *name)
{
	struct folder_info *list;
	size_t count;
	const char *err;
	assert_int_equal(folder_list(st, &list, &count, &err), 0);
	long ret = -1;
	assert_string_equal(list[0].name, "INBOX");
	for (size_t i = 0; i < count; i++) {
		if (i > 1)
			assert_true(strcmp(list[i - 1].name, list[i].name) < 0);
		if (strcmp(list[i].name, name) == 0)
			ret = list[i].attrs;
	}
	folder_list_free(&list, count);
	return ret;
}

/* ---- names */

struct name_row {
	const char *what;
	enum folder_layout layout;
	const char *name;
	bool ok;
};

static void test_name_check(void **state)
{
	struct fixture *f = *state;
	char max[FOLDER_NAME_MAX + 2];
	memset(max, 'a', sizeof(max));
	max[FOLDER_NAME_MAX + 1] = '\0'; /* 513 bytes */
	char atmax[FOLDER_NAME_MAX + 1];
	memset(atmax, 'a', sizeof(atmax));
	atmax[FOLDER_NAME_MAX] = '\0';
	char below[FOLDER_NAME_MAX];
	memset(below, 'a', sizeof(below));
	below[FOLDER_NAME_MAX - 1] = '\0';
	const struct name_row rows[] = {
		{ "inbox any case", FOLDER_MAILDIRPP, "iNbOx", true },
		{ "simple", FOLDER_MAILDIRPP, "Sent", true },
		{ "hierarchy", FOLDER_MAILDIRPP, "a.b.c", true },
		{ "mutf7", FOLDER_MAILDIRPP, "&AOk-t&AOk-", true },
		{ "inbox child md", FOLDER_MAILDIRPP, "INBOX.x", true },
		{ "empty", FOLDER_MAILDIRPP, "", false },
		{ "double sep", FOLDER_MAILDIRPP, "a..b", false },
		{ "leading sep", FOLDER_MAILDIRPP, ".a", false },
		{ "trailing sep", FOLDER_MAILDIRPP, "a.", false },
		{ "dotdot md", FOLDER_MAILDIRPP, "../x", false },
		{ "slash md", FOLDER_MAILDIRPP, "a/b", false },
		{ "control", FOLDER_MAILDIRPP, "a\tb", false },
		{ "del", FOLDER_MAILDIRPP, "a\x7f", false },
		{ "8bit", FOLDER_MAILDIRPP, "caf\xc3\xa9", false },
		{ "wildcard", FOLDER_MAILDIRPP, "a*", false },
		{ "percent", FOLDER_MAILDIRPP, "a%b", false },
		{ "max-1", FOLDER_MAILDIRPP, below, true },
		{ "max", FOLDER_MAILDIRPP, atmax, true },
		{ "max+1", FOLDER_MAILDIRPP, max, false },
		{ "reserved md", FOLDER_MAILDIRPP, "facteur-uidlist", false },
		{ "reserved md inferior ok", FOLDER_MAILDIRPP, "a.facteur-x", true },
		{ "reserved is mbox ok", FOLDER_MBOX, "facteur-x", true },
		{ "mbox hierarchy", FOLDER_MBOX, "a/b", true },
		{ "mbox dot inside", FOLDER_MBOX, "a.b/c.d", true },
		{ "mbox dotdot", FOLDER_MBOX, "../x", false },
		{ "mbox dotdot inside", FOLDER_MBOX, "a/../x", false },
		{ "mbox dot level", FOLDER_MBOX, "a/./x", false },
		{ "mbox hidden", FOLDER_MBOX, ".a", false },
		{ "mbox hidden inside", FOLDER_MBOX, "a/.b", false },
		{ "mbox double sep", FOLDER_MBOX, "a//b", false },
		{ "mbox leading sep", FOLDER_MBOX, "/a", false },
		{ "mbox trailing sep", FOLDER_MBOX, "a/", false },
		{ "mbox inbox child", FOLDER_MBOX, "inbox/x", false },
		{ "mbox inboxx", FOLDER_MBOX, "INBOXx/y", true },
		{ "mbox max+1", FOLDER_MBOX, max, false },
	};
	struct folder_store *md = open_store(f, FOLDER_MAILDIRPP, NULL);
	struct folder_store *mb = NULL;
	snprintf(f->root, sizeof(f->root), "%s/mail", f->dir);
	mb = open_store(f, FOLDER_MBOX, NULL);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *err = NULL;
		errno = 0;
		int r = folder_name_check(rows[i].layout == FOLDER_MBOX ? mb : md, rows[i].name,
					  &err);
		if ((r == 0) != rows[i].ok)
			fail_msg("row %s: got %d (%s)", rows[i].what, r, r < 0 ? err : "");
		if (r < 0) {
			assert_int_equal(errno, EINVAL);
			assert_non_null(err);
			assert_true(strlen(err) > 0);
		}
	}
	/* CREATE applies the same checks. */
	const char *err;
	assert_int_equal(folder_create(md, "a..b", &err), -1);
	assert_int_equal(errno, EINVAL);
	assert_false(path_exists("%s/root/.a..b", f->dir));
	folder_store_free(&md);
	folder_store_free(&mb);
	assert_null(mb);
}

/* ---- patterns */

struct pattern_row {
	char sep;
	const char *pattern;
	const char *name;
	bool match;
};

static void test_pattern_match(void **state)
{
	struct fixture *f = *state;
	const struct pattern_row rows[] = {
		{ '.', "*", "a.b.c", true },
		{ '.', "%", "a.b", false },
		{ '.', "%", "a", true },
		{ '.', "a.%", "a.b", true },
		{ '.', "a.%", "a.b.c", false },
		{ '.', "a.*", "a.b.c", true },
		{ '.', "a.*", "a", false },
		{ '.', "a*", "a", true },
		{ '.', "", "", true },
		{ '.', "", "a", false },
		{ '.', "a%c", "abbc", true },
		{ '.', "a%c", "ab.c", false },
		{ '.', "a*c", "ab.c", true },
		{ '.', "%.%", "a.b", true },
		{ '.', "%.%", "a.b.c", false },
		{ '.', "*.c", "a.b.c", true },
		{ '.', "inbox", "INBOX", true },
		{ '.', "InBoX.%", "INBOX.x", true },
		{ '.', "inb*", "INBOX", true },
		{ '.', "inbox.X", "INBOX.x", false }, /* only INBOX is case-insensitive */
		{ '.', "sent", "Sent", false },
		{ '.', "INBOX", "INBOXES", false },
		{ '/', "%", "a/b", false },
		{ '/', "%/%", "a/b", true },
		{ '/', "%", "a.b", true },
		{ '/', "*a*a*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false },
		{ '/', "%a%a%a%a%a%a%a%a%a%a%b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false },
		{ '/', "*a*a*a*a*a*a*a*a*a*a*a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true },
	};
	struct folder_store *md = open_store(f, FOLDER_MAILDIRPP, NULL);
	snprintf(f->root, sizeof(f->root), "%s/mail", f->dir);
	struct folder_store *mb = open_store(f, FOLDER_MBOX, NULL);
	assert_int_equal(folder_store_sep(md), '.');
	assert_int_equal(folder_store_sep(mb), '/');
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		bool r = folder_pattern_match(rows[i].sep == '.' ? md : mb, rows[i].pattern,
					      rows[i].name);
		if (r != rows[i].match)
			fail_msg("row %zu: \"%s\" vs \"%s\": got %d", i, rows[i].pattern,
				 rows[i].name, r);
	}
	/* A long name (beyond the stack buffer) still matches. */
	char *longname = xmalloc(5000);
	memset(longname, 'x', 4999);
	longname[4999] = '\0';
	assert_true(folder_pattern_match(md, "x*x%", longname));
	assert_false(folder_pattern_match(md, "x*y", longname));
	free(longname);
	folder_store_free(&md);
	folder_store_free(&mb);
}

/* ---- special-use */

struct special_row {
	const char *spec;
	bool ok;
};

static void test_special_use_parse(void **state)
{
	struct fixture *f = *state;
	const struct special_row rows[] = {
		{ NULL, true },
		{ "", true },
		{ "  ", true },
		{ "Drafts \\Drafts", true },
		{ "Drafts \\drafts,Archive \\Archive , All \\All, Flagged \\Flagged", true },
		{ "Drafts \\Bogus", false },
		{ "Drafts", false },
		{ "\\Drafts", false },
		{ "Drafts \\Drafts,", false },
		{ "Drafts \\Drafts \\Sent", false },
		{ "a..b \\Sent", false },
		{ "X \\Sent, X \\Trash", false },
		{ "Drafts Drafts", false },
	};
	struct folder_store_params p = { FOLDER_MAILDIRPP, f->root, NULL, NULL };
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		p.special_use = rows[i].spec;
		const char *err = NULL;
		struct folder_store *st = folder_store_open(&p, &err);
		if ((st != NULL) != rows[i].ok)
			fail_msg("row %zu \"%s\": %s", i, rows[i].spec ? rows[i].spec : "(null)",
				 err ? err : "opened");
		if (st == NULL) {
			assert_int_equal(errno, EINVAL);
			assert_non_null(strstr(err, "special-use"));
		}
		folder_store_free(&st);
	}
}

static void test_maildirpp_list(void **state)
{
	struct fixture *f = *state;
	struct folder_store *st =
		open_store(f, FOLDER_MAILDIRPP, "Drafts \\Drafts, Sent \\Sent, Trash \\Trash, Junk \\Junk");
	const char *err;
	/* Special-use folders made, as Maildir++ folders. */
	assert_true(path_exists("%s/.Drafts/cur", f->root));
	assert_true(path_exists("%s/.Junk/maildirfolder", f->root));
	assert_true(path_exists("%s/tmp", f->root));
	assert_int_equal(list_attrs(st, "Sent"),
			 FOLDER_ATTR_SENT | FOLDER_ATTR_SUBSCRIBED | FOLDER_ATTR_HASNOCHILDREN);
	assert_int_equal(list_attrs(st, "INBOX"), FOLDER_ATTR_SUBSCRIBED | FOLDER_ATTR_HASNOCHILDREN);

	/* Parents need not exist: listed \Noselect \HasChildren. */
	assert_int_equal(folder_create(st, "a.b.c", &err), 0);
	assert_false(path_exists("%s/.a", f->root));
	assert_int_equal(list_attrs(st, "a"), FOLDER_ATTR_NOSELECT | FOLDER_ATTR_HASCHILDREN);
	assert_int_equal(list_attrs(st, "a.b"), FOLDER_ATTR_NOSELECT | FOLDER_ATTR_HASCHILDREN);
	assert_int_equal(list_attrs(st, "a.b.c"), FOLDER_ATTR_HASNOCHILDREN);
	assert_int_equal(folder_exists(st, "a.b", &err), 0);
	assert_int_equal(folder_exists(st, "a.b.c", &err), 1);
	assert_int_equal(folder_exists(st, "inbox", &err), 1);
	/* Creating the parent makes it selectable. */
	assert_int_equal(folder_create(st, "a.", &err), 0); /* trailing separator */
	assert_int_equal(list_attrs(st, "a"), FOLDER_ATTR_HASCHILDREN);
	assert_int_equal(folder_create(st, "a", &err), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(folder_create(st, "INBOX", &err), -1);
	assert_int_equal(errno, EEXIST);
	/* INBOX children (canonical INBOX prefix). */
	assert_int_equal(folder_create(st, "inbox.Lists", &err), 0);
	assert_true(path_exists("%s/.INBOX.Lists", f->root));
	assert_int_equal(list_attrs(st, "INBOX"), FOLDER_ATTR_SUBSCRIBED | FOLDER_ATTR_HASCHILDREN);
	assert_int_equal(list_attrs(st, "INBOX.Lists"), FOLDER_ATTR_HASNOCHILDREN);

	/* Not folders: dot files, dot dirs without cur/, ".facteur-*",
	 * plain directories, ".INBOX" (would shadow INBOX). */
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/.facteur-uidlist", f->root);
	write_file(p, "1 V1 N1\n");
	snprintf(p, sizeof(p), "%s/.notmaildir", f->root);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/plain", f->root);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/.INBOX", f->root);
	assert_int_equal(fs_mkdir_p(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/.INBOX/cur", f->root);
	assert_int_equal(mkdir(p, 0700), 0);
	struct folder_info *list;
	size_t count;
	assert_int_equal(folder_list(st, &list, &count, &err), 0);
	const char *expect[] = { "INBOX", "Drafts", "INBOX.Lists", "Junk", "Sent", "Trash",
				 "a", "a.b", "a.b.c" };
	assert_int_equal(count, sizeof(expect) / sizeof(expect[0]));
	for (size_t i = 0; i < count; i++)
		assert_string_equal(list[i].name, expect[i]);
	folder_list_free(&list, count);
	assert_null(list);
	folder_store_free(&st);
}

static void test_subscriptions(void **state)
{
	struct fixture *f = *state;
	struct folder_store *st = open_store(f, FOLDER_MAILDIRPP, "Trash \\Trash, Junk \\Junk");
	const char *err;
	assert_int_equal(folder_subscribe(st, "Missing.Child", true, &err), 0);
	assert_int_equal(folder_subscribe(st, "Missing.Child", true, &err), 0); /* idempotent */
	assert_int_equal(folder_subscribe(st, "Trash", false, &err), 0);
	assert_int_equal(folder_subscribe(st, "a..b", true, &err), -1);
	assert_int_equal(errno, EINVAL);
	folder_store_free(&st);

	/* The file is Dovecot's: one name per line. */
	struct buf b = BUF_INIT;
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/subscriptions", f->root);
	assert_int_equal(fs_read_file(p, 4096, &b), 0);
	assert_string_equal(buf_cstr(&b), "INBOX\nJunk\nMissing.Child\n");
	buf_deinit(&b);

	/* Reopen: Trash stays unsubscribed; missing name listed for LSUB. */
	st = open_store(f, FOLDER_MAILDIRPP, "Trash \\Trash, Junk \\Junk");
	assert_int_equal(list_attrs(st, "Trash"), FOLDER_ATTR_TRASH | FOLDER_ATTR_HASNOCHILDREN);
	assert_int_equal(list_attrs(st, "Missing.Child"),
			 FOLDER_ATTR_SUBSCRIBED | FOLDER_ATTR_NONEXISTENT);
	assert_int_equal(list_attrs(st, "Missing"), -1);
	/* DELETE keeps the subscription (RFC 3501 6.3.6). */
	assert_int_equal(folder_delete(st, "Junk", &err), 0);
	assert_int_equal(list_attrs(st, "Junk"),
			 FOLDER_ATTR_SUBSCRIBED | FOLDER_ATTR_NONEXISTENT | FOLDER_ATTR_JUNK);
	folder_store_free(&st);
	/* A deleted special-use folder comes back at the next open. */
	st = open_store(f, FOLDER_MAILDIRPP, "Trash \\Trash, Junk \\Junk");
	assert_int_equal(list_attrs(st, "Junk"),
			 FOLDER_ATTR_SUBSCRIBED | FOLDER_ATTR_JUNK | FOLDER_ATTR_HASNOCHILDREN);
	/* Dovecot 2.3 version 2 file: tab is the separator. */
	write_file(p, "V\t2\n\nold\tsub\nINBOX\n");
	assert_int_equal(list_attrs(st, "old.sub"), FOLDER_ATTR_SUBSCRIBED | FOLDER_ATTR_NONEXISTENT);
	folder_store_free(&st);
}

static void test_maildirpp_rename(void **state)
{
	struct fixture *f = *state;
	struct folder_store *st = open_store(f, FOLDER_MAILDIRPP, NULL);
	const char *err;
	assert_int_equal(folder_create(st, "a", &err), 0);
	assert_int_equal(folder_create(st, "a.x", &err), 0);
	assert_int_equal(folder_create(st, "a.x.y", &err), 0);
	assert_int_equal(folder_create(st, "ab", &err), 0); /* not an inferior of a */
	assert_int_equal(folder_subscribe(st, "a.x", true, &err), 0);
	assert_int_equal(folder_subscribe(st, "ab", true, &err), 0);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/.a.x/cur/1.m:2,S", f->root);
	write_file(p, "Subject: x\n\nbody\n");

	assert_int_equal(folder_rename(st, "a", "a.z", &err), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(folder_rename(st, "nope", "z", &err), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(folder_rename(st, "a", "ab", &err), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(folder_rename(st, "a", "INBOX", &err), -1);
	assert_int_equal(errno, EEXIST);

	assert_int_equal(folder_rename(st, "a", "b", &err), 0);
	assert_false(path_exists("%s/.a", f->root));
	assert_false(path_exists("%s/.a.x", f->root));
	assert_true(path_exists("%s/.b/cur", f->root));
	assert_true(path_exists("%s/.b.x/cur/1.m:2,S", f->root));
	assert_true(path_exists("%s/.b.x.y/cur", f->root));
	assert_true(path_exists("%s/.ab/cur", f->root));
	assert_int_equal(list_attrs(st, "b.x"), FOLDER_ATTR_SUBSCRIBED | FOLDER_ATTR_HASCHILDREN);
	assert_int_equal(list_attrs(st, "a.x"), -1);
	assert_int_equal(list_attrs(st, "ab"), FOLDER_ATTR_SUBSCRIBED | FOLDER_ATTR_HASNOCHILDREN);

	/* Rollback: ".c" is free but ".c.x" exists, so the second rename
	 * fails and the first is undone. */
	assert_int_equal(folder_create(st, "c.x", &err), 0);
	assert_int_equal(folder_rename(st, "b", "c", &err), -1);
	assert_int_equal(errno, EEXIST);
	assert_true(path_exists("%s/.b/cur", f->root));
	assert_true(path_exists("%s/.b.x/cur/1.m:2,S", f->root));
	assert_true(path_exists("%s/.b.x.y/cur", f->root));
	assert_false(path_exists("%s/.c", f->root));
	assert_true(path_exists("%s/.c.x/cur", f->root));
	assert_int_equal(list_attrs(st, "b.x"), FOLDER_ATTR_SUBSCRIBED | FOLDER_ATTR_HASCHILDREN);
	/* An empty directory in the way is not silently replaced either. */
	snprintf(p, sizeof(p), "%s/.d.x", f->root);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(folder_rename(st, "b", "d", &err), -1);
	assert_int_equal(errno, EEXIST);
	assert_true(path_exists("%s/.b.x/cur", f->root));
	folder_store_free(&st);
}

static void test_maildirpp_rename_inbox(void **state)
{
	struct fixture *f = *state;
	struct folder_store *st = open_store(f, FOLDER_MAILDIRPP, NULL);
	const char *err;
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/new/1.a.host", f->root);
	write_file(p, "Subject: 1\n\n1\n");
	snprintf(p, sizeof(p), "%s/cur/2.b.host:2,S", f->root);
	write_file(p, "Subject: 2\n\n2\n");
	assert_int_equal(folder_create(st, "Old", &err), 0);
	assert_int_equal(folder_rename(st, "INBOX", "Old", &err), -1);
	assert_int_equal(errno, EEXIST);
	assert_true(path_exists("%s/new/1.a.host", f->root));

	assert_int_equal(folder_rename(st, "inbox", "Saved", &err), 0);
	assert_true(path_exists("%s/.Saved/new/1.a.host", f->root));
	assert_true(path_exists("%s/.Saved/cur/2.b.host:2,S", f->root));
	assert_false(path_exists("%s/new/1.a.host", f->root));
	assert_false(path_exists("%s/cur/2.b.host:2,S", f->root));
	assert_true(path_exists("%s/cur", f->root));
	assert_int_equal(folder_exists(st, "INBOX", &err), 1);
	folder_store_free(&st);
}

static void test_maildirpp_delete(void **state)
{
	struct fixture *f = *state;
	struct folder_store *st = open_store(f, FOLDER_MAILDIRPP, NULL);
	const char *err;
	assert_int_equal(folder_delete(st, "inbox", &err), -1);
	assert_string_equal(err, "Cannot delete INBOX");
	assert_int_equal(folder_create(st, "a", &err), 0);
	assert_int_equal(folder_create(st, "a.b", &err), 0);
	char p[PATH_MAX], target[PATH_MAX];
	snprintf(p, sizeof(p), "%s/.a/cur/1.m:2,", f->root);
	write_file(p, "x\n");
	snprintf(p, sizeof(p), "%s/.a/extra/deeper", f->root);
	assert_int_equal(fs_mkdir_p(p, 0700), 0);
	/* Links inside the folder: removed, never followed. */
	snprintf(target, sizeof(target), "%s/outside", f->dir);
	assert_int_equal(mkdir(target, 0700), 0);
	snprintf(p, sizeof(p), "%s/outside/keep", f->dir);
	write_file(p, "keep\n");
	snprintf(p, sizeof(p), "%s/.a/extra/link", f->root);
	assert_int_equal(symlink(target, p), 0);

	assert_int_equal(folder_delete(st, "a", &err), 0);
	assert_false(path_exists("%s/.a", f->root));
	assert_true(path_exists("%s/outside/keep", f->dir));
	assert_true(path_exists("%s/.a.b/cur", f->root)); /* inferior stays */
	assert_int_equal(list_attrs(st, "a"), FOLDER_ATTR_NOSELECT | FOLDER_ATTR_HASCHILDREN);
	/* Now a \Noselect parent: cannot be deleted. */
	assert_int_equal(folder_delete(st, "a", &err), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(folder_delete(st, "never", &err), -1);
	assert_int_equal(errno, ENOENT);
	/* A symbolic link to a Maildir as the folder itself: only the link
	 * goes. */
	snprintf(p, sizeof(p), "%s/outside/cur", f->dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/.linked", f->root);
	assert_int_equal(symlink(target, p), 0);
	assert_int_equal(folder_delete(st, "linked", &err), 0);
	assert_false(path_exists("%s/.linked", f->root));
	assert_true(path_exists("%s/outside/keep", f->dir));
	assert_true(path_exists("%s/outside/cur", f->dir));
	/* Dot files that are not Maildirs are not folders. */
	snprintf(p, sizeof(p), "%s/.customflags", f->root);
	write_file(p, "0 Junk\n");
	assert_int_equal(folder_delete(st, "customflags", &err), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(folder_rename(st, "customflags", "x", &err), -1);
	assert_int_equal(errno, ENOENT);
	assert_true(path_exists("%s/.customflags", f->root));
	assert_int_equal(unlink(p), 0);
	/* No leftovers of the delete. */
	struct folder_info *list;
	size_t count;
	assert_int_equal(folder_list(st, &list, &count, &err), 0);
	assert_int_equal(count, 3); /* INBOX, a, a.b */
	folder_list_free(&list, count);
	folder_store_free(&st);
}

/* ---- mbox layout */

static void test_mbox_layout(void **state)
{
	struct fixture *f = *state;
	snprintf(f->root, sizeof(f->root), "%s/home/mail", f->dir);
	struct folder_store *st = open_store(f, FOLDER_MBOX, "Sent \\Sent");
	const char *err;
	struct stat sb;
	assert_int_equal(stat(f->root, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(stat(f->root, &sb), 0);
	assert_true(path_exists("%s/Sent", f->root));
	assert_false(path_exists("%s", f->inbox)); /* spool untouched */

	assert_int_equal(folder_create(st, "work/", &err), 0);
	assert_int_equal(stat(f->root, &sb), 0);
	assert_int_equal(folder_create(st, "work/x", &err), 0);
	assert_int_equal(folder_create(st, "a/b/c", &err), 0);
	assert_int_equal(folder_create(st, "a/b/c", &err), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(folder_create(st, "a/b/c/d", &err), -1); /* a file has no inferiors */
	assert_int_equal(folder_create(st, "INBOX/x", &err), -1);
	assert_int_equal(errno, EINVAL);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/.hidden", f->root);
	write_file(p, "x");
	snprintf(p, sizeof(p), "%s/inbox", f->root); /* may not shadow INBOX */
	write_file(p, "x");

	struct folder_info *list;
	size_t count;
	assert_int_equal(folder_list(st, &list, &count, &err), 0);
	const struct {
		const char *name;
		unsigned attrs;
	} expect[] = {
		{ "INBOX", FOLDER_ATTR_SUBSCRIBED | FOLDER_ATTR_NOINFERIORS | FOLDER_ATTR_HASNOCHILDREN },
		{ "Sent", FOLDER_ATTR_SUBSCRIBED | FOLDER_ATTR_SENT | FOLDER_ATTR_NOINFERIORS |
				  FOLDER_ATTR_HASNOCHILDREN },
		{ "a", FOLDER_ATTR_NOSELECT | FOLDER_ATTR_HASCHILDREN },
		{ "a/b", FOLDER_ATTR_NOSELECT | FOLDER_ATTR_HASCHILDREN },
		{ "a/b/c", FOLDER_ATTR_NOINFERIORS | FOLDER_ATTR_HASNOCHILDREN },
		{ "work", FOLDER_ATTR_NOSELECT | FOLDER_ATTR_HASCHILDREN },
		{ "work/x", FOLDER_ATTR_NOINFERIORS | FOLDER_ATTR_HASNOCHILDREN },
	};
	assert_int_equal(count, sizeof(expect) / sizeof(expect[0]));
	for (size_t i = 0; i < count; i++) {
		assert_string_equal(list[i].name, expect[i].name);
		if (list[i].attrs != expect[i].attrs)
			fail_msg("%s: attrs %#x, expected %#x", list[i].name, list[i].attrs,
				 expect[i].attrs);
	}
	folder_list_free(&list, count);

	assert_int_equal(folder_exists(st, "work", &err), 0);
	assert_int_equal(folder_exists(st, "work/x", &err), 1);
	assert_int_equal(folder_exists(st, "INBOX", &err), 1);
	char *path;
	enum mailbox_format fmt;
	assert_int_equal(folder_path(st, "inbox", &path, &fmt, &err), 0);
	assert_string_equal(path, f->inbox);
	assert_int_equal(fmt, MAILBOX_MBOX);
	free(path);
	assert_int_equal(folder_path(st, "work/x", &path, &fmt, &err), 0);
	snprintf(p, sizeof(p), "%s/work/x", f->root);
	assert_string_equal(path, p);
	free(path);
	assert_int_equal(folder_path(st, "../x", &path, &fmt, &err), -1);

	/* DELETE: directory with inferiors refused, then allowed. */
	assert_int_equal(folder_delete(st, "work", &err), -1);
	assert_int_equal(errno, ENOTEMPTY);
	assert_int_equal(folder_delete(st, "work/x", &err), 0);
	assert_int_equal(folder_delete(st, "work", &err), 0);
	assert_false(path_exists("%s/work", f->root));
	assert_int_equal(folder_delete(st, "work", &err), -1);
	assert_int_equal(errno, ENOENT);

	/* RENAME a directory: inferiors follow; parents created. */
	assert_int_equal(folder_subscribe(st, "a/b/c", true, &err), 0);
	assert_int_equal(folder_rename(st, "a", "z/y", &err), 0);
	assert_true(path_exists("%s/z/y/b/c", f->root));
	assert_false(path_exists("%s/a", f->root));
	assert_int_equal(list_attrs(st, "z/y/b/c"),
			 FOLDER_ATTR_SUBSCRIBED | FOLDER_ATTR_NOINFERIORS | FOLDER_ATTR_HASNOCHILDREN);
	assert_int_equal(folder_rename(st, "Sent", "z/y/b/c", &err), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(folder_rename(st, "z", "z/q", &err), -1);
	assert_int_equal(errno, EINVAL);
	folder_store_free(&st);

	/* Subscriptions persisted in root/.subscriptions. */
	struct buf b = BUF_INIT;
	snprintf(p, sizeof(p), "%s/.subscriptions", f->root);
	assert_int_equal(fs_read_file(p, 4096, &b), 0);
	assert_non_null(strstr(buf_cstr(&b), "z/y/b/c\n"));
	buf_deinit(&b);
}

static void test_mbox_rename_inbox(void **state)
{
	struct fixture *f = *state;
	snprintf(f->root, sizeof(f->root), "%s/mail", f->dir);
	struct folder_store *st = open_store(f, FOLDER_MBOX, NULL);
	const char *err;
	/* Missing spool: an empty folder is made. */
	assert_int_equal(folder_rename(st, "INBOX", "empty", &err), 0);
	assert_true(path_exists("%s/empty", f->root));

	const char *mbox = "From a@b Mon Nov 23 09:00:00 2026\nSubject: 1\n\nbody\n\n"
			   "From c@d Mon Nov 23 09:01:00 2026\nSubject: 2\n\nbody 2\n\n";
	write_file(f->inbox, mbox);
	assert_int_equal(folder_create(st, "taken", &err), 0);
	assert_int_equal(folder_rename(st, "INBOX", "taken", &err), -1);
	assert_int_equal(errno, EEXIST);
	struct stat sb;
	assert_int_equal(stat(f->inbox, &sb), 0);
	assert_int_equal((size_t)sb.st_size, strlen(mbox));

	assert_int_equal(folder_rename(st, "INBOX", "old/2026", &err), 0);
	struct buf b = BUF_INIT;
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/old/2026", f->root);
	assert_int_equal(fs_read_file(p, 4096, &b), 0);
	assert_string_equal(buf_cstr(&b), mbox);
	buf_deinit(&b);
	assert_int_equal(stat(f->inbox, &sb), 0);
	assert_int_equal(sb.st_size, 0);
	assert_false(path_exists("%s.lock", f->inbox));
	folder_store_free(&st);
}

/* A spool directory the user cannot write (/var/mail): no dotlock, the
 * fcntl lock alone.  Root can write anywhere, so this needs a plain user. */
static void test_mbox_rename_inbox_readonly_spool(void **state)
{
	struct fixture *f = *state;
	if (geteuid() == 0)
		skip();
	snprintf(f->root, sizeof(f->root), "%s/mail", f->dir);
	char spool[PATH_MAX];
	snprintf(spool, sizeof(spool), "%s/var-mail", f->dir);
	assert_int_equal(mkdir(spool, 0700), 0);
	snprintf(f->inbox, sizeof(f->inbox), "%s/var-mail/user", f->dir);
	write_file(f->inbox, "From a@b Mon Nov 23 09:00:00 2026\n\nx\n\n");
	assert_int_equal(chmod(spool, 0500), 0);
	struct folder_store *st = open_store(f, FOLDER_MBOX, NULL);
	const char *err = NULL;
	int r = folder_rename(st, "INBOX", "saved", &err);
	assert_int_equal(chmod(spool, 0700), 0);
	if (r < 0)
		fail_msg("rename INBOX: %s", err);
	struct stat sb;
	assert_int_equal(stat(f->inbox, &sb), 0);
	assert_int_equal(sb.st_size, 0);
	assert_true(path_exists("%s/saved", f->root));
	folder_store_free(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_name_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pattern_match, setup, teardown),
		cmocka_unit_test_setup_teardown(test_special_use_parse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maildirpp_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subscriptions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maildirpp_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maildirpp_rename_inbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maildirpp_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_rename_inbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_rename_inbox_readonly_spool, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
