/* mailbox_test.c - unit tests for the mailbox layer, each in its own
 * mkdtemp() directory.  Maildir: creation, UIDs in delivery order and
 * stable across reopen, changes by other tools (delete, rename, flags),
 * flags round trip through file names, two handles syncing interleaved,
 * corrupted index, append, CRLF sizes, and limits (long names, many files,
 * UID space).  mbox: listing, UIDs stable across reopen, delivery, removal
 * by another tool and replacement; flags and expunge rewriting the file
 * byte-exactly; append; reading after an external rewrite; locks; and
 * \Recent for both formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/mem.h"
#include "mail/mailbox.h"

struct fixture {
	char dir[64];
	char md[PATH_MAX];
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
	snprintf(f->dir, sizeof(f->dir), "/tmp/facteur-mailbox-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->md, sizeof(f->md), "%s/Maildir", f->dir);
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

/* Write a message file as another tool would (sub: "new" or "cur"). */
static void put(const struct fixture *f, const char *sub, const char *name, const char *body)
{
	char path[PATH_MAX * 2];
	const char *error;
	assert_int_equal(mailbox_maildir_create(f->md, &error), 0);
	snprintf(path, sizeof(path), "%s/%s/%s", f->md, sub, name);
	/* no fsync: thousands of files in the limits test */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fs_write_full(fd, body, strlen(body)), 0);
	assert_int_equal(close(fd), 0);
}

static bool exists(const struct fixture *f, const char *sub, const char *name)
{
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/%s/%s", f->md, sub, name);
	return access(path, F_OK) == 0;
}

static void rename_cur(const struct fixture *f, const char *from, const char *to)
{
	char a[PATH_MAX * 2], b[PATH_MAX * 2];
	snprintf(a, sizeof(a), "%s/cur/%s", f->md, from);
	snprintf(b, sizeof(b), "%s/cur/%s", f->md, to);
	assert_int_equal(rename(a, b), 0);
}

static struct mailbox *open_ok(const struct fixture *f)
{
	const char *error = NULL;
	struct mailbox *mb = mailbox_open(f->md, MAILBOX_MAILDIR, &error);
	if (mb == NULL)
		fail_msg("mailbox_open: %s", error);
	return mb;
}

static void sync_ok(struct mailbox *mb)
{
	const char *error = NULL;
	if (mailbox_sync(mb, &error) < 0)
		fail_msg("mailbox_sync: %s", error);
}

static void test_create(void **state)
{
	struct fixture *f = *state;
	struct mailbox *mb = open_ok(f);
	static const char *const subs[] = { "", "/tmp", "/new", "/cur" };
	for (size_t i = 0; i < 4; i++) {
		char p[PATH_MAX + 8];
		struct stat st;
		snprintf(p, sizeof(p), "%s%s", f->md, subs[i]);
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 0777, 0700);
	}
	assert_int_equal(mailbox_count(mb), 0);
	assert_int_equal(mailbox_uidnext(mb), 1);
	assert_true(mailbox_uidvalidity(mb) != 0);
	assert_true(exists(f, "", MAILBOX_UIDLIST_NAME));
	assert_false(exists(f, "", MAILBOX_UIDLIST_LOCK_NAME));
	mailbox_free(&mb);
	assert_null(mb);

	const char *error = NULL;
	/* A path under a regular file cannot be created. */
	char bad[PATH_MAX + 16];
	snprintf(bad, sizeof(bad), "%s/new/x/Maildir", f->md);
	put(f, "new", "x", "body\n");
	assert_null(mailbox_open(bad, MAILBOX_MAILDIR, &error));
	assert_non_null(strstr(error, "create maildir"));
}

static void test_uids_in_delivery_order(void **state)
{
	struct fixture *f = *state;
	struct mailbox *mb = open_ok(f);
	uint32_t uv = mailbox_uidvalidity(mb);
	/* Readdir order is arbitrary; usec is not zero-padded. */
	put(f, "new", "1000.M1000P1Q2.h", "third\n");
	put(f, "new", "1000.M999P1Q1.h", "second\n");
	put(f, "new", "999.M5P1Q3.h", "first\n");
	put(f, "new", ".hidden", "not a message\n");
	sync_ok(mb);
	static const char *const order[] = { "999.M5P1Q3.h", "1000.M999P1Q1.h",
					     "1000.M1000P1Q2.h" };
	assert_int_equal(mailbox_count(mb), 3);
	for (size_t i = 0; i < 3; i++) {
		char name[64];
		assert_int_equal(mailbox_msg_uid(mb, i + 1), i + 1);
		assert_int_equal(mailbox_msg_flags(mb, i + 1), 0);
		snprintf(name, sizeof(name), "%s:2,", order[i]);
		assert_true(exists(f, "cur", name));
		assert_false(exists(f, "new", order[i]));
		char want[PATH_MAX * 2];
		snprintf(want, sizeof(want), "%s/cur/%s", f->md, name);
		assert_string_equal(mailbox_msg_path(mb, i + 1), want);
	}
	assert_int_equal(mailbox_msg_size(mb, 1), 6);
	assert_int_equal(mailbox_uidnext(mb), 4);
	assert_int_equal(mailbox_uidvalidity(mb), uv);
	size_t seq;
	assert_int_equal(mailbox_uid_lookup(mb, 2, &seq), 1);
	assert_int_equal(seq, 2);
	assert_int_equal(mailbox_uid_lookup(mb, 4, &seq), 0);
	assert_int_equal(mailbox_uid_lookup(mb, 0, &seq), 0);

	/* A file that arrives with an info part keeps it. */
	put(f, "new", "1001.M1P1Q1.h:2,S", "seen\n");
	sync_ok(mb);
	assert_int_equal(mailbox_count(mb), 4);
	assert_int_equal(mailbox_msg_uid(mb, 4), 4);
	assert_int_equal(mailbox_msg_flags(mb, 4), MAILBOX_FLAG_SEEN);
	assert_true(exists(f, "cur", "1001.M1P1Q1.h:2,S"));
	mailbox_free(&mb);

	/* Reopen: same UIDs, same UIDVALIDITY; later mail continues. */
	mb = open_ok(f);
	assert_int_equal(mailbox_uidvalidity(mb), uv);
	assert_int_equal(mailbox_count(mb), 4);
	assert_int_equal(mailbox_uidnext(mb), 5);
	put(f, "new", "1.M0P1Q1.h", "old timestamp, new arrival\n");
	sync_ok(mb);
	assert_int_equal(mailbox_count(mb), 5);
	/* New UID even though its name sorts first: UIDs only ascend. */
	assert_int_equal(mailbox_msg_uid(mb, 5), 5);
	char want[PATH_MAX * 2];
	snprintf(want, sizeof(want), "%s/cur/1.M0P1Q1.h:2,", f->md);
	assert_string_equal(mailbox_msg_path(mb, 5), want);
	mailbox_free(&mb);
}

static void test_external_changes(void **state)
{
	struct fixture *f = *state;
	put(f, "new", "100.M1P1Q1.h", "a\n");
	put(f, "new", "100.M2P1Q1.h", "b\n");
	put(f, "new", "100.M3P1Q1.h", "c\n");
	put(f, "new", "100.M4P1Q1.h", "d\n");
	struct mailbox *mb = open_ok(f);
	assert_int_equal(mailbox_count(mb), 4);
	const char *error = NULL;

	/* mutt deletes #2 and marks #3 seen; mbsync adds one in cur/. */
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/cur/100.M2P1Q1.h:2,", f->md);
	assert_int_equal(unlink(p), 0);
	rename_cur(f, "100.M3P1Q1.h:2,", "100.M3P1Q1.h:2,RS");
	put(f, "cur", "100.M5P1Q1.h:2,F", "e\n");
	sync_ok(mb);
	assert_int_equal(mailbox_count(mb), 4);
	static const struct {
		uint32_t uid;
		unsigned flags;
	} want[] = {
		{ 1, 0 },
		{ 3, MAILBOX_FLAG_ANSWERED | MAILBOX_FLAG_SEEN },
		{ 4, 0 },
		{ 5, MAILBOX_FLAG_FLAGGED },
	};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(mailbox_msg_uid(mb, i + 1), want[i].uid);
		assert_int_equal(mailbox_msg_flags(mb, i + 1), want[i].flags);
	}

	/* Renamed behind our back: open and flag changes find it again. */
	rename_cur(f, "100.M1P1Q1.h:2,", "100.M1P1Q1.h:2,T");
	int fd = -1;
	assert_int_equal(mailbox_msg_open(mb, 1, &fd, &error), 0);
	char buf[8];
	assert_int_equal(read(fd, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "a\n", 2);
	close(fd);
	assert_int_equal(mailbox_msg_flags(mb, 1), MAILBOX_FLAG_DELETED);
	rename_cur(f, "100.M1P1Q1.h:2,T", "100.M1P1Q1.h:2,ST");
	assert_int_equal(mailbox_flags_set(mb, 1, MAILBOX_FLAG_FLAGGED, &error), 0);
	assert_true(exists(f, "cur", "100.M1P1Q1.h:2,F"));
	assert_false(exists(f, "cur", "100.M1P1Q1.h:2,ST"));

	/* Deleted behind our back: ENOENT for open and flags; expunge is ok. */
	snprintf(p, sizeof(p), "%s/cur/100.M4P1Q1.h:2,", f->md);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mailbox_msg_open(mb, 3, &fd, &error), -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(error, "expunged"));
	assert_int_equal(mailbox_flags_set(mb, 3, MAILBOX_FLAG_SEEN, &error), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(mailbox_expunge(mb, 3, &error), 0);
	assert_int_equal(mailbox_count(mb), 3);
	assert_int_equal(mailbox_msg_uid(mb, 3), 5);

	/* Our expunge of a renamed message removes the renamed file. */
	rename_cur(f, "100.M5P1Q1.h:2,F", "100.M5P1Q1.h:2,FS");
	assert_int_equal(mailbox_expunge(mb, 3, &error), 0);
	assert_false(exists(f, "cur", "100.M5P1Q1.h:2,FS"));
	assert_int_equal(mailbox_count(mb), 2);
	sync_ok(mb);
	assert_int_equal(mailbox_count(mb), 2);
	assert_int_equal(mailbox_uidnext(mb), 6);
	mailbox_free(&mb);

	/* The index forgot the expunged names. */
	struct buf idx = BUF_INIT;
	snprintf(p, sizeof(p), "%s/%s", f->md, MAILBOX_UIDLIST_NAME);
	assert_int_equal(fs_read_file(p, 1 << 20, &idx), 0);
	assert_null(strstr(buf_cstr(&idx), "M4P1"));
	assert_null(strstr(buf_cstr(&idx), "M5P1"));
	assert_non_null(strstr(buf_cstr(&idx), "3 :100.M3P1Q1.h\n"));
	buf_deinit(&idx);
}

static void test_flags_round_trip(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *name;
		const char *initial; /* info part of the file as another tool left it */
		unsigned set;
		const char *want; /* resulting info part */
	} rows[] = {
		{ "none", ":2,", 0, ":2," },
		{ "seen", ":2,", MAILBOX_FLAG_SEEN, ":2,S" },
		{ "all in order", ":2,", MAILBOX_FLAGS_ALL, ":2,DFPRST" },
		{ "clear all", ":2,DFPRST", 0, ":2," },
		{ "keywords kept", ":2,Sab", MAILBOX_FLAG_FLAGGED | MAILBOX_FLAG_DRAFT, ":2,DFab" },
		{ "no info part", "", MAILBOX_FLAG_ANSWERED, ":2,R" },
		{ "old info version", ":1,xyz", MAILBOX_FLAG_SEEN, ":2,S" },
		{ "unknown bits ignored", ":2,", 0xffffffffu, ":2,DFPRST" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char base[32], name[64];
		snprintf(base, sizeof(base), "%zu.M1P1Q1.h", 200 + i);
		snprintf(name, sizeof(name), "%s%s", base, rows[i].initial);
		put(f, i == 0 ? "new" : "cur", i == 0 ? base : name, "x\n");
	}
	struct mailbox *mb = open_ok(f);
	assert_int_equal(mailbox_count(mb), sizeof(rows) / sizeof(rows[0]));
	const char *error = NULL;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char want[64];
		snprintf(want, sizeof(want), "%zu.M1P1Q1.h%s", 200 + i, rows[i].want);
		if (mailbox_flags_set(mb, i + 1, rows[i].set, &error) < 0)
			fail_msg("row %s: %s", rows[i].name, error);
		if (!exists(f, "cur", want))
			fail_msg("row %s: no file %s", rows[i].name, want);
		assert_int_equal(mailbox_msg_flags(mb, i + 1), rows[i].set & MAILBOX_FLAGS_ALL);
	}
	mailbox_free(&mb);
	/* Read back from the names by a fresh handle. */
	mb = open_ok(f);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(mailbox_msg_flags(mb, i + 1), rows[i].set & MAILBOX_FLAGS_ALL);
	mailbox_free(&mb);
}

static void test_two_handles(void **state)
{
	struct fixture *f = *state;
	struct mailbox *a = open_ok(f), *b = open_ok(f);
	assert_int_equal(mailbox_uidvalidity(a), mailbox_uidvalidity(b));
	char name[64];
	unsigned n = 0;
	for (int round = 0; round < 6; round++) {
		for (int k = 0; k < 3; k++) {
			snprintf(name, sizeof(name), "%u.M%uP1Q1.h", 500 + n, n);
			put(f, "new", name, "m\n");
			n++;
		}
		sync_ok(round % 2 == 0 ? a : b);
		if (round == 3) {
			/* b expunges; a must notice */
			const char *error;
			assert_int_equal(mailbox_expunge(b, 1, &error), 0);
		}
	}
	sync_ok(a);
	sync_ok(b);
	assert_int_equal(mailbox_count(a), n - 1);
	assert_int_equal(mailbox_count(b), n - 1);
	assert_int_equal(mailbox_uidnext(a), n + 1);
	assert_int_equal(mailbox_uidnext(b), n + 1);
	for (size_t i = 1; i <= mailbox_count(a); i++) {
		assert_int_equal(mailbox_msg_uid(a, i), mailbox_msg_uid(b, i));
		assert_int_equal(mailbox_msg_uid(a, i), i + 1);
		assert_string_equal(mailbox_msg_path(a, i), mailbox_msg_path(b, i));
	}
	mailbox_free(&a);
	mailbox_free(&b);
}

static void test_corrupted_index(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *name;
		const char *content;
	} rows[] = {
		{ "garbage", "not an index\n" },
		{ "truncated", "1 V1 N3\n1 :100.M1P1" },
		{ "uid beyond uidnext", "1 V1 N2\n7 :100.M1P1Q1.h\n" },
		{ "empty", "" },
		{ "NUL byte", "1 V1 N3\n1 :a\0b\n" },
	};
	put(f, "new", "100.M1P1Q1.h", "a\n");
	put(f, "new", "100.M2P1Q1.h", "b\n");
	struct mailbox *mb = open_ok(f);
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/%s", f->md, MAILBOX_UIDLIST_NAME);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint32_t old = mailbox_uidvalidity(mb);
		size_t len = i == 4 ? 15 : strlen(rows[i].content);
		assert_int_equal(fs_write_atomic(p, rows[i].content, len, 0600), 0);
		sync_ok(mb);
		if (mailbox_uidvalidity(mb) == old)
			fail_msg("row %s: UIDVALIDITY kept", rows[i].name);
		assert_int_equal(mailbox_count(mb), 2);
		assert_int_equal(mailbox_msg_uid(mb, 1), 1);
		assert_int_equal(mailbox_msg_uid(mb, 2), 2);
		/* A second handle agrees with the rebuilt index. */
		struct mailbox *other = open_ok(f);
		assert_int_equal(mailbox_uidvalidity(other), mailbox_uidvalidity(mb));
		mailbox_free(&other);
	}
	/* Index deleted: also a new UIDVALIDITY, never the old one. */
	uint32_t old = mailbox_uidvalidity(mb);
	assert_int_equal(unlink(p), 0);
	sync_ok(mb);
	assert_true(mailbox_uidvalidity(mb) != old);
	mailbox_free(&mb);
}

static void test_append(void **state)
{
	struct fixture *f = *state;
	put(f, "new", "100.M1P1Q1.h", "a\n");
	struct mailbox *mb = open_ok(f);
	const char *error = NULL;
	static const char msg[] = "Subject: hi\n\nline\r\nline\n";
	uint32_t uid = 0;
	assert_int_equal(mailbox_append(mb, msg, strlen(msg), MAILBOX_FLAG_SEEN | 0x100,
					1600000000, &uid, &error),
			 0);
	assert_int_equal(uid, 2);
	assert_int_equal(mailbox_count(mb), 2);
	assert_int_equal(mailbox_msg_uid(mb, 2), 2);
	assert_int_equal(mailbox_msg_flags(mb, 2), MAILBOX_FLAG_SEEN);
	assert_int_equal(mailbox_msg_date(mb, 2), 1600000000);
	assert_int_equal(mailbox_msg_size(mb, 2), strlen(msg));
	uint64_t vsize = 0;
	assert_int_equal(mailbox_msg_vsize(mb, 2, &vsize, &error), 0);
	assert_int_equal(vsize, strlen(msg) + 3);
	const char *path = mailbox_msg_path(mb, 2);
	assert_non_null(strstr(path, ",W=27:2,S"));
	/* nothing left in tmp/ */
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/tmp", f->md);
	DIR *d = opendir(p);
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	assert_int_equal(n, 0);
	int fd;
	assert_int_equal(mailbox_msg_open(mb, 2, &fd, &error), 0);
	char back[64];
	assert_int_equal(read(fd, back, sizeof(back)), (ssize_t)strlen(msg));
	assert_memory_equal(back, msg, strlen(msg));
	close(fd);
	/* Next one gets the next UID; date 0 means now. */
	assert_int_equal(mailbox_append(mb, "", 0, 0, 0, &uid, &error), 0);
	assert_int_equal(uid, 3);
	assert_true(time(NULL) - mailbox_msg_date(mb, 3) < 60);
	mailbox_free(&mb);
}

static void test_crlf_size(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *data;
		uint64_t want;
	} rows[] = {
		{ "empty", "", 0 },
		{ "no newline", "abc", 3 },
		{ "LF", "a\n", 3 },
		{ "CRLF", "a\r\n", 3 },
		{ "blank lines", "\n\n", 4 },
		{ "mixed", "a\r\nb\nc", 7 },
		{ "lone CR", "a\rb", 3 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		bool cr = false;
		uint64_t got = mailbox_crlf_size(rows[i].data, strlen(rows[i].data), &cr);
		if (got != rows[i].want)
			fail_msg("row %s: %llu", rows[i].name, (unsigned long long)got);
	}
	/* CR at the end of one chunk, LF at the start of the next. */
	bool cr = false;
	uint64_t total = mailbox_crlf_size("ab\r", 3, &cr);
	assert_true(cr);
	total += mailbox_crlf_size("\ncd\n", 4, &cr);
	assert_int_equal(total, 8);
	cr = false;
	total = mailbox_crlf_size("ab", 2, &cr);
	total += mailbox_crlf_size("\n", 1, &cr);
	assert_int_equal(total, 4);
}

static void test_vsize_cached(void **state)
{
	struct fixture *f = *state;
	put(f, "new", "100.M1P1Q1.h", "a\nb\n");
	put(f, "new", "100.M2P1Q1.h,S=3,W=42", "c\n\n");
	struct mailbox *mb = open_ok(f);
	const char *error;
	uint64_t v = 0;
	/* From the name's W= field, without reading. */
	assert_int_equal(mailbox_msg_vsize(mb, 2, &v, &error), 0);
	assert_int_equal(v, 42);
	assert_int_equal(mailbox_msg_vsize(mb, 1, &v, &error), 0);
	assert_int_equal(v, 6);
	sync_ok(mb);
	mailbox_free(&mb);
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/%s", f->md, MAILBOX_UIDLIST_NAME);
	struct buf idx = BUF_INIT;
	assert_int_equal(fs_read_file(p, 1 << 20, &idx), 0);
	assert_non_null(strstr(buf_cstr(&idx), "\n1 W6 :100.M1P1Q1.h\n"));
	assert_non_null(strstr(buf_cstr(&idx), "\n2 :100.M2P1Q1.h,S=3,W=42\n"));
	buf_deinit(&idx);
	/* The next handle trusts the index: prove it by changing the file. */
	put(f, "cur", "100.M1P1Q1.h:2,", "a\nb\nc\n");
	mb = open_ok(f);
	assert_int_equal(mailbox_msg_vsize(mb, 1, &v, &error), 0);
	assert_int_equal(v, 6);
	mailbox_free(&mb);
}

static void test_long_names(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *name;
		size_t len;
		bool has_info; /* whether ":2," fitted */
		bool flag_fits; /* whether ":2,S" fits */
	} rows[] = {
		{ "room for a flag", NAME_MAX - 4, true, true },
		{ "room for info only", NAME_MAX - 3, true, false },
		{ "max-1", NAME_MAX - 2, false, false },
		{ "max", NAME_MAX, false, false },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char name[NAME_MAX + 1];
		snprintf(name, sizeof(name), "%zu.M1P1Q1.", 300 + i);
		size_t l = strlen(name);
		memset(name + l, 'h', rows[i].len - l);
		name[rows[i].len] = '\0';
		put(f, "new", name, "x\n");
	}
	struct mailbox *mb = open_ok(f);
	const char *error;
	assert_int_equal(mailbox_count(mb), 4);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *p = mailbox_msg_path(mb, i + 1);
		assert_int_equal(strstr(p, ":2,") != NULL, rows[i].has_info);
		int ret = mailbox_flags_set(mb, i + 1, MAILBOX_FLAG_SEEN, &error);
		if (rows[i].flag_fits) {
			assert_int_equal(ret, 0);
		} else {
			assert_int_equal(ret, -1);
			assert_int_equal(errno, ENAMETOOLONG);
		}
	}
	mailbox_free(&mb);
	mb = open_ok(f);
	assert_int_equal(mailbox_count(mb), 4);
	assert_int_equal(mailbox_msg_uid(mb, 4), 4);
	assert_int_equal(mailbox_msg_flags(mb, 1), MAILBOX_FLAG_SEEN);
	mailbox_free(&mb);
}

static void test_many_files(void **state)
{
	struct fixture *f = *state;
	enum { N = 3000 };
	for (unsigned i = 0; i < N; i++) {
		char name[64];
		/* same second, usec not padded: order must be numeric */
		snprintf(name, sizeof(name), "1700000000.M%uP7Q%u.h", i, i);
		put(f, "new", name, "m\n");
	}
	struct mailbox *mb = open_ok(f);
	assert_int_equal(mailbox_count(mb), N);
	for (unsigned i = 0; i < N; i += 97) {
		char want[64];
		snprintf(want, sizeof(want), "/cur/1700000000.M%uP7Q%u.h:2,", i, i);
		assert_int_equal(mailbox_msg_uid(mb, i + 1), i + 1);
		assert_non_null(strstr(mailbox_msg_path(mb, i + 1), want));
	}
	mailbox_free(&mb);
	mb = open_ok(f);
	assert_int_equal(mailbox_count(mb), N);
	assert_int_equal(mailbox_uidnext(mb), N + 1);
	assert_int_equal(mailbox_msg_uid(mb, N), N);
	mailbox_free(&mb);
}

static void test_uid_space_exhausted(void **state)
{
	struct fixture *f = *state;
	struct mailbox *mb = open_ok(f);
	mailbox_free(&mb);
	put(f, "cur", "100.M1P1Q1.h:2,S", "a\n");
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/%s", f->md, MAILBOX_UIDLIST_NAME);
	static const char idx[] = "1 V77 N4294967294\n4294967293 :100.M1P1Q1.h\n";
	assert_int_equal(fs_write_atomic(p, idx, strlen(idx), 0600), 0);
	mb = open_ok(f);
	assert_int_equal(mailbox_uidvalidity(mb), 77);
	/* max-1: one more fits */
	put(f, "new", "101.M1P1Q1.h", "b\n");
	sync_ok(mb);
	assert_int_equal(mailbox_uidvalidity(mb), 77);
	assert_int_equal(mailbox_msg_uid(mb, 2), 4294967294u);
	assert_int_equal(mailbox_uidnext(mb), UINT32_MAX);
	/* max: no UID left, renumber under a new UIDVALIDITY */
	put(f, "new", "102.M1P1Q1.h", "c\n");
	sync_ok(mb);
	assert_true(mailbox_uidvalidity(mb) != 77);
	assert_int_equal(mailbox_count(mb), 3);
	for (size_t i = 1; i <= 3; i++)
		assert_int_equal(mailbox_msg_uid(mb, i), i);
	assert_int_equal(mailbox_msg_flags(mb, 1), MAILBOX_FLAG_SEEN);
	mailbox_free(&mb);
}

static void test_stale_lock(void **state)
{
	struct fixture *f = *state;
	struct mailbox *mb = open_ok(f);
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/%s", f->md, MAILBOX_UIDLIST_LOCK_NAME);
	assert_int_equal(fs_write_atomic(p, "1\n", 2, 0600), 0);
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { time(NULL) - 3600, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	put(f, "new", "100.M1P1Q1.h", "a\n");
	sync_ok(mb);
	assert_int_equal(mailbox_count(mb), 1);
	assert_int_equal(access(p, F_OK), -1);
	mailbox_free(&mb);
}

/* Several processes (sessions or facteur instances sharing the store)
 * deliver and sync at the same time: every message gets exactly one UID and
 * every process sees the same UID for it. */
static void test_concurrent_processes(void **state)
{
	struct fixture *f = *state;
	enum { PROCS = 4, MSGS = 40 };
	struct mailbox *mb = open_ok(f);
	mailbox_free(&mb);
	pid_t pids[PROCS];
	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] != 0)
			continue;
		const char *error;
		struct mailbox *own = mailbox_open(f->md, MAILBOX_MAILDIR, &error);
		if (own == NULL)
			_exit(2);
		char name[64], out[PATH_MAX + 32];
		for (int i = 0; i < MSGS; i++) {
			snprintf(name, sizeof(name), "%d.M%dP%dQ1.h", 1000 + i, p, p);
			put(f, "new", name, "m\n");
			if (mailbox_sync(own, &error) < 0)
				_exit(3);
		}
		/* Record "uid base" as this process sees them. */
		snprintf(out, sizeof(out), "%s/view%d", f->dir, p);
		FILE *fp = fopen(out, "w");
		if (fp == NULL)
			_exit(4);
		for (size_t i = 1; i <= mailbox_count(own); i++)
			fprintf(fp, "%u %s\n", (unsigned)mailbox_msg_uid(own, i),
				strrchr(mailbox_msg_path(own, i), '/') + 1);
		if (fclose(fp) != 0)
			_exit(5);
		mailbox_free(&own);
		_exit(0);
	}
	for (int p = 0; p < PROCS; p++) {
		int status;
		assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	mb = open_ok(f);
	assert_int_equal(mailbox_count(mb), PROCS * MSGS);
	assert_int_equal(mailbox_uidnext(mb), PROCS * MSGS + 1);
	for (int p = 0; p < PROCS; p++) {
		char path[PATH_MAX + 32], line[PATH_MAX];
		snprintf(path, sizeof(path), "%s/view%d", f->dir, p);
		FILE *fp = fopen(path, "r");
		assert_non_null(fp);
		size_t lines = 0;
		while (fgets(line, sizeof(line), fp) != NULL) {
			unsigned uid;
			char base[256];
			assert_int_equal(sscanf(line, "%u %255s", &uid, base), 2);
			size_t seq;
			assert_int_equal(mailbox_uid_lookup(mb, uid, &seq), 1);
			assert_non_null(strstr(mailbox_msg_path(mb, seq), base));
			lines++;
		}
		fclose(fp);
		/* each saw at least its own messages */
		assert_true(lines >= MSGS);
	}
	mailbox_free(&mb);
}

static void test_mbox_listing(void **state)
{
	struct fixture *f = *state;
	static const char m1[] = "Status: RO\nX-Status: AF\nSubject: x\n\nbody\n>From quoted\nFrom not a separator\n";
	static const char m2[] = "Subject: y\n\nline\n";
	static const char m3[] = "X-Status: TD\n\nno trailing separator\n";
	static const struct {
		const char *name;
		const char *content; /* NULL: no file */
		int ret;
		size_t count;
	} rows[] = {
		{ "missing file", NULL, 0, 0 },
		{ "empty file", "", 0, 0 },
		{ "not an mbox", "hello\n", -1, 0 },
		{ "three messages",
		  "From a@b Mon Nov 23 08:00:00 2026\n"
		  "Status: RO\nX-Status: AF\nSubject: x\n\nbody\n>From quoted\nFrom not a separator\n"
		  "\n"
		  "From MAILER-DAEMON Mon Nov 23 09:00:00 2026\nSubject: y\n\nline\n\n"
		  "From c@d garbage-date\nX-Status: TD\n\nno trailing separator\n",
		  0, 3 },
	};
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/mbox", f->dir);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (rows[i].content != NULL)
			assert_int_equal(fs_write_atomic(path, rows[i].content,
							 strlen(rows[i].content), 0600),
					 0);
		const char *error = NULL;
		struct mailbox *mb = mailbox_open(path, MAILBOX_MBOX, &error);
		if ((mb == NULL ? -1 : 0) != rows[i].ret)
			fail_msg("row %s: %s", rows[i].name, error ? error : "opened");
		if (mb == NULL)
			continue;
		assert_int_equal(mailbox_count(mb), rows[i].count);
		mailbox_free(&mb);
	}
	const char *error = NULL;
	struct mailbox *mb = mailbox_open(path, MAILBOX_MBOX, &error);
	assert_non_null(mb);
	static const struct {
		const char *content;
		unsigned flags;
	} want[] = {
		{ m1, MAILBOX_FLAG_SEEN | MAILBOX_FLAG_ANSWERED | MAILBOX_FLAG_FLAGGED },
		{ m2, 0 },
		{ m3, MAILBOX_FLAG_DRAFT | MAILBOX_FLAG_DELETED },
	};
	for (size_t i = 0; i < 3; i++) {
		size_t len = strlen(want[i].content);
		assert_int_equal(mailbox_msg_uid(mb, i + 1), i + 1);
		assert_int_equal(mailbox_msg_flags(mb, i + 1), want[i].flags);
		assert_int_equal(mailbox_msg_size(mb, i + 1), len);
		uint64_t vsize;
		assert_int_equal(mailbox_msg_vsize(mb, i + 1, &vsize, &error), 0);
		bool cr = false;
		assert_int_equal(vsize, mailbox_crlf_size(want[i].content, len, &cr));
		int fd;
		char back[256];
		assert_int_equal(mailbox_msg_open(mb, i + 1, &fd, &error), 0);
		assert_true(read(fd, back, sizeof(back)) >= (ssize_t)len);
		assert_memory_equal(back, want[i].content, len);
		close(fd);
	}
	struct tm tm = { .tm_year = 126, .tm_mon = 10, .tm_mday = 23, .tm_hour = 9,
			 .tm_isdst = -1 };
	assert_int_equal(mailbox_msg_date(mb, 2), mktime(&tm));
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(mailbox_msg_date(mb, 3), st.st_mtime);
	assert_string_equal(mailbox_msg_path(mb, 1), path);
	assert_int_equal(mailbox_count(mb), 3);
	/* A delivery holding its write lock keeps the reader waiting; here
	 * only check that sync re-reads a grown file. */
	FILE *fp = fopen(path, "a");
	assert_non_null(fp);
	fputs("\nFrom e@f Mon Nov 23 10:00:00 2026\n\nfour\n\n", fp);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(mailbox_sync(mb, &error), 0);
	assert_int_equal(mailbox_count(mb), 4);
	assert_int_equal(mailbox_msg_size(mb, 4), 6);
	mailbox_free(&mb);
}

/* ---- mbox: persistent UIDs, flags, expunge, append, recent ---- */

static const char mbox_m1[] = "From a@b Mon Nov 23 08:00:00 2026\n"
			      "Subject: one\nX-Other: keep\n\nbody one\n>From quoted\n\n";
static const char mbox_m2[] = "From c@d Mon Nov 23 08:01:00 2026\n"
			      "Status: O\nSubject: two\n\nbody two\n\n";
static const char mbox_m3[] = "From e@f Mon Nov 23 08:02:00 2026\n"
			      "Subject: three\nX-Status: F\n X-continued\n\n>From x\nbody three\n\n";
static const char mbox_m4[] = "From g@h Mon Nov 23 08:03:00 2026\nSubject: four\n\nfour\n\n";

static void mbox_path(const struct fixture *f, char *path, size_t size)
{
	snprintf(path, size, "%s/mbox", f->dir);
}

/* Write the file in place (same inode), as mutt rewrites an mbox. */
static void mbox_write(const char *path, const char *a, const char *b, const char *c)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	const char *parts[] = { a, b, c };
	for (size_t i = 0; i < 3; i++)
		if (parts[i] != NULL)
			assert_int_equal(fs_write_full(fd, parts[i], strlen(parts[i])), 0);
	assert_int_equal(close(fd), 0);
}

/* Append raw bytes as local_mbox.c does (O_APPEND). */
static void mbox_deliver(const char *path, const char *msg)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fs_write_full(fd, msg, strlen(msg)), 0);
	assert_int_equal(close(fd), 0);
}

static void mbox_expect_file(const char *path, const char *want)
{
	struct buf b = BUF_INIT;
	assert_int_equal(fs_read_file(path, 1 << 20, &b), 0);
	if (b.len != strlen(want) || (b.len > 0 && memcmp(b.data, want, b.len) != 0))
		fail_msg("file is:\n%s\n--- expected:\n%s", buf_cstr(&b), want);
	buf_deinit(&b);
}

static struct mailbox *mbox_open_ok(const char *path)
{
	const char *error = NULL;
	struct mailbox *mb = mailbox_open(path, MAILBOX_MBOX, &error);
	if (mb == NULL)
		fail_msg("mailbox_open mbox: %s", error);
	return mb;
}

static void mbox_expect_uids(struct mailbox *mb, const uint32_t *uids, size_t n)
{
	assert_int_equal(mailbox_count(mb), n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(mailbox_msg_uid(mb, i + 1), uids[i]);
}

/* The content (after the From_ line) of one message chunk. */
static void mbox_expect_msg(struct mailbox *mb, size_t seq, const char *chunk)
{
	const char *content = strchr(chunk, '\n') + 1;
	size_t len = strlen(content);
	if (len >= 2 && content[len - 1] == '\n' && content[len - 2] == '\n')
		len--; /* the separator */
	const char *error = NULL;
	int fd;
	if (mailbox_msg_open(mb, seq, &fd, &error) < 0)
		fail_msg("msg_open %zu: %s", seq, error);
	assert_int_equal(mailbox_msg_size(mb, seq), len);
	char back[512];
	assert_true(len <= sizeof(back));
	assert_int_equal(read(fd, back, len), (ssize_t)len);
	assert_memory_equal(back, content, len);
	close(fd);
}

static void test_mbox_uids_persistent(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX];
	mbox_path(f, path, sizeof(path));
	mbox_write(path, mbox_m1, mbox_m2, mbox_m3);
	struct mailbox *mb = mbox_open_ok(path);
	uint32_t uv = mailbox_uidvalidity(mb);
	assert_true(uv != 0);
	mbox_expect_uids(mb, (const uint32_t[]){ 1, 2, 3 }, 3);
	assert_int_equal(mailbox_uidnext(mb), 4);
	mailbox_free(&mb);
	char index[PATH_MAX + 64];
	snprintf(index, sizeof(index), "%s/.mbox.facteur-uidlist", f->dir);
	assert_int_equal(access(index, F_OK), 0);

	/* Rows applied in turn to the same mbox. */
	static const struct {
		const char *name;
		int action; /* 0 reopen, 1 delivery of m4, 2 mutt removes m2, 3 replaced */
		bool new_uidvalidity;
		size_t count;
		uint32_t uids[4];
	} rows[] = {
		{ "reopen keeps UIDs", 0, false, 3, { 1, 2, 3 } },
		{ "delivery appended gets the next UID", 1, false, 4, { 1, 2, 3, 4 } },
		{ "reopen after delivery", 0, false, 4, { 1, 2, 3, 4 } },
		{ "message removed by another tool", 2, false, 3, { 1, 3, 4 } },
		{ "file replaced by unrelated content", 3, true, 1, { 1 } },
		{ "reopen after replacement", 0, false, 1, { 1 } },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (rows[i].action == 1)
			mbox_deliver(path, mbox_m4);
		else if (rows[i].action == 2)
			mbox_write(path, mbox_m1, mbox_m3, mbox_m4);
		else if (rows[i].action == 3)
			mbox_write(path, "From z@z Mon Nov 23 07:00:00 2026\nSubject: other\n\nx\n\n",
				   NULL, NULL);
		mb = mbox_open_ok(path);
		if (rows[i].new_uidvalidity != (mailbox_uidvalidity(mb) != uv))
			fail_msg("row %s: UIDVALIDITY %u (before %u)", rows[i].name,
				 mailbox_uidvalidity(mb), uv);
		uv = mailbox_uidvalidity(mb);
		mbox_expect_uids(mb, rows[i].uids, rows[i].count);
		mailbox_free(&mb);
	}

	/* A handle that stays open sees the delivery at its next sync. */
	mbox_write(path, mbox_m1, mbox_m2, NULL);
	mb = mbox_open_ok(path);
	uint32_t uv2 = mailbox_uidvalidity(mb);
	assert_true(uv2 != uv);
	mbox_deliver(path, mbox_m3);
	sync_ok(mb);
	mbox_expect_uids(mb, (const uint32_t[]){ 1, 2, 3 }, 3);
	mbox_expect_msg(mb, 3, mbox_m3);
	/* A new message inserted before known ones cannot get an ascending
	 * UID: new UIDVALIDITY. */
	mbox_write(path, mbox_m4, mbox_m1, mbox_m2);
	sync_ok(mb);
	assert_true(mailbox_uidvalidity(mb) != uv2);
	mbox_expect_uids(mb, (const uint32_t[]){ 1, 2, 3 }, 3);
	mailbox_free(&mb);
}

static void test_mbox_flags(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX];
	mbox_path(f, path, sizeof(path));
	static const char m1_seen[] = "From a@b Mon Nov 23 08:00:00 2026\n"
				      "Subject: one\nX-Other: keep\nStatus: RO\nX-Status: A\n\n"
				      "body one\n>From quoted\n\n";
	static const char m3_fd[] = "From e@f Mon Nov 23 08:02:00 2026\n"
				    "Subject: three\nStatus: O\nX-Status: FD\n\n>From x\nbody three\n\n";
	static const char m3_none[] = "From e@f Mon Nov 23 08:02:00 2026\n"
				      "Subject: three\nStatus: O\n\n>From x\nbody three\n\n";
	static const char m2_all[] = "From c@d Mon Nov 23 08:01:00 2026\n"
				     "Subject: two\nStatus: RO\nX-Status: AFTD\n\nbody two\n\n";
	static const struct {
		const char *name;
		size_t n;
		size_t seqs[3];
		unsigned flags[3];
		const char *want[3]; /* the file: three chunks */
		unsigned want_flags[3];
	} rows[] = {
		{ "no change: no rewrite", 1, { 2 }, { 0 }, { mbox_m1, mbox_m2, mbox_m3 },
		  { 0, 0, MAILBOX_FLAG_FLAGGED } },
		{ "seen+answered on first", 1, { 1 },
		  { MAILBOX_FLAG_SEEN | MAILBOX_FLAG_ANSWERED }, { m1_seen, mbox_m2, mbox_m3 },
		  { MAILBOX_FLAG_SEEN | MAILBOX_FLAG_ANSWERED, 0, MAILBOX_FLAG_FLAGGED } },
		{ "last: folded X-Status replaced, P not stored", 1, { 3 },
		  { MAILBOX_FLAG_FLAGGED | MAILBOX_FLAG_DELETED | MAILBOX_FLAG_PASSED },
		  { m1_seen, mbox_m2, m3_fd },
		  { MAILBOX_FLAG_SEEN | MAILBOX_FLAG_ANSWERED, 0,
		    MAILBOX_FLAG_FLAGGED | MAILBOX_FLAG_DELETED } },
		{ "batch of three", 3, { 3, 2, 1 },
		  { 0, MAILBOX_FLAGS_ALL, MAILBOX_FLAG_SEEN | MAILBOX_FLAG_ANSWERED },
		  { m1_seen, m2_all, m3_none },
		  { MAILBOX_FLAG_SEEN | MAILBOX_FLAG_ANSWERED,
		    MAILBOX_FLAGS_ALL & ~MAILBOX_FLAG_PASSED, 0 } },
	};
	mbox_write(path, mbox_m1, mbox_m2, mbox_m3);
	struct stat before, after;
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(stat(path, &before), 0);
	struct mailbox *mb = mbox_open_ok(path);
	uint32_t uv = mailbox_uidvalidity(mb);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *error = NULL;
		int r = rows[i].n == 1
				? mailbox_flags_set(mb, rows[i].seqs[0], rows[i].flags[0], &error)
				: mailbox_flags_set_many(mb, rows[i].seqs, rows[i].flags, rows[i].n,
							 &error);
		if (r < 0)
			fail_msg("row %s: %s", rows[i].name, error);
		char want[2048];
		snprintf(want, sizeof(want), "%s%s%s", rows[i].want[0], rows[i].want[1],
			 rows[i].want[2]);
		mbox_expect_file(path, want);
		for (int pass = 0; pass < 2; pass++) {
			/* pass 0: this handle; pass 1: a fresh one re-reading the file */
			struct mailbox *m = pass == 0 ? mb : mbox_open_ok(path);
			mbox_expect_uids(m, (const uint32_t[]){ 1, 2, 3 }, 3);
			assert_int_equal(mailbox_uidvalidity(m), uv);
			for (size_t s = 0; s < 3; s++) {
				if (mailbox_msg_flags(m, s + 1) != rows[i].want_flags[s])
					fail_msg("row %s pass %d msg %zu: flags %#x", rows[i].name,
						 pass, s + 1, mailbox_msg_flags(m, s + 1));
				mbox_expect_msg(m, s + 1, rows[i].want[s]);
			}
			if (pass == 1)
				mailbox_free(&m);
		}
	}
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(after.st_ino, before.st_ino);
	assert_int_equal(after.st_mode, before.st_mode);
	/* no dotlock or temporary copy left behind */
	char lock[PATH_MAX + 8];
	snprintf(lock, sizeof(lock), "%s.lock", path);
	assert_int_equal(access(lock, F_OK), -1);
	DIR *d = opendir(f->dir);
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		assert_null(strstr(de->d_name, "rewrite"));
	closedir(d);
	mailbox_free(&mb);
}

static void test_mbox_expunge(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX];
	mbox_path(f, path, sizeof(path));
	static const char m3_last[] = "From e@f Mon Nov 23 08:02:00 2026\n"
				      "Subject: three\n\nno separator\n";
	static const struct {
		const char *name;
		const char *last; /* third message */
		size_t n;
		size_t seqs[3];
		const char *want;
		size_t count;
		uint32_t uids[3];
	} rows[] = {
		{ "first", mbox_m3, 1, { 1 }, "", 2, { 2, 3 } },
		{ "middle", mbox_m3, 1, { 2 }, "", 2, { 1, 3 } },
		{ "last", mbox_m3, 1, { 3 }, "", 2, { 1, 2 } },
		{ "first and last, duplicate", mbox_m3, 3, { 3, 1, 3 }, "", 1, { 2 } },
		{ "all", mbox_m3, 3, { 1, 2, 3 }, "", 0, { 0 } },
		{ "middle before unterminated last", m3_last, 1, { 2 }, "", 2, { 1, 3 } },
		{ "none", mbox_m3, 0, { 0 }, "", 3, { 1, 2, 3 } },
	};
	const char *chunks[3] = { mbox_m1, mbox_m2, NULL };
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		chunks[2] = rows[i].last;
		unlink(path);
		char index[PATH_MAX + 64];
		snprintf(index, sizeof(index), "%s/.mbox.facteur-uidlist", f->dir);
		unlink(index);
		mbox_write(path, chunks[0], chunks[1], chunks[2]);
		struct mailbox *mb = mbox_open_ok(path);
		uint32_t uv = mailbox_uidvalidity(mb);
		const char *error = NULL;
		int r = rows[i].n == 1 ? mailbox_expunge(mb, rows[i].seqs[0], &error)
				       : mailbox_expunge_many(mb, rows[i].seqs, rows[i].n, &error);
		if (r < 0)
			fail_msg("row %s: %s", rows[i].name, error);
		/* expected file: the kept chunks, byte for byte */
		char want[2048] = "";
		size_t wl = 0;
		for (size_t c = 0; c < 3; c++) {
			bool gone = false;
			for (size_t k = 0; k < rows[i].n; k++)
				gone |= rows[i].seqs[k] == c + 1;
			if (!gone)
				wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "%s", chunks[c]);
		}
		mbox_expect_file(path, want);
		mbox_expect_uids(mb, rows[i].uids, rows[i].count);
		struct mailbox *again = mbox_open_ok(path);
		assert_int_equal(mailbox_uidvalidity(again), uv);
		mbox_expect_uids(again, rows[i].uids, rows[i].count);
		for (size_t s = 0; s < rows[i].count; s++)
			mbox_expect_msg(again, s + 1, chunks[rows[i].uids[s] - 1]);
		mailbox_free(&again);
		mailbox_free(&mb);
	}
}

/* Identical messages (a duplicated delivery) keep their own UIDs. */
static void test_mbox_duplicates(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX];
	mbox_path(f, path, sizeof(path));
	static const struct {
		const char *name;
		size_t expunge;
		uint32_t uids[2];
	} rows[] = {
		{ "first copy", 1, { 2, 3 } },
		{ "second copy", 2, { 1, 3 } },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char index[PATH_MAX + 64];
		snprintf(index, sizeof(index), "%s/.mbox.facteur-uidlist", f->dir);
		unlink(index);
		mbox_write(path, mbox_m2, mbox_m2, mbox_m3);
		struct mailbox *mb = mbox_open_ok(path);
		const char *error = NULL;
		assert_int_equal(mailbox_expunge(mb, rows[i].expunge, &error), 0);
		mbox_expect_uids(mb, rows[i].uids, 2);
		mailbox_free(&mb);
		mb = mbox_open_ok(path);
		mbox_expect_uids(mb, rows[i].uids, 2);
		mbox_expect_msg(mb, 1, mbox_m2);
		mailbox_free(&mb);
	}
}

static void test_mbox_append(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX];
	mbox_path(f, path, sizeof(path));
	static const struct {
		const char *name;
		const char *before; /* NULL: no file */
		const char *data;
		unsigned flags;
		const char *sep;  /* separator we must add before the From_ line */
		const char *want; /* written after "From SENDER DATE\n" */
		const char *sender;
	} rows[] = {
		{ "new file, CRLF, From quoting", NULL,
		  "Subject: a\r\n\r\nFrom me\r\n>From x\r\nend", 0, "",
		  "Subject: a\n\n>From me\n>From x\nend\n\n", "MAILER-DAEMON" },
		{ "Return-Path sender, flags", mbox_m1,
		  "Return-Path: <s@example.test>\nStatus: U\nSubject: b\n\nbody\n",
		  MAILBOX_FLAG_SEEN | MAILBOX_FLAG_FLAGGED, "",
		  "Return-Path: <s@example.test>\nSubject: b\nStatus: RO\nX-Status: F\n\nbody\n\n",
		  "s@example.test" },
		{ "after a message without separator", "From x@y Mon Nov 23 08:00:00 2026\n\nz\n",
		  "Subject: c\n\nc\n", 0, "\n", "Subject: c\n\nc\n\n", "MAILER-DAEMON" },
		{ "after a message without final newline", "From x@y Mon Nov 23 08:00:00 2026\n\nz",
		  "Subject: c\n\nc\n", 0, "\n\n", "Subject: c\n\nc\n\n", "MAILER-DAEMON" },
	};
	time_t date = 1795420800; /* a fixed internal date */
	struct tm tm;
	char when[64];
	localtime_r(&date, &tm);
	asctime_r(&tm, when);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		unlink(path);
		if (rows[i].before != NULL)
			mbox_write(path, rows[i].before, NULL, NULL);
		const char *error = NULL;
		struct mailbox *mb = mbox_open_ok(path);
		size_t n0 = mailbox_count(mb);
		uint32_t next = mailbox_uidnext(mb), uid = 0;
		if (mailbox_append(mb, rows[i].data, strlen(rows[i].data), rows[i].flags, date,
				   &uid, &error) < 0)
			fail_msg("row %s: %s", rows[i].name, error);
		assert_int_equal(uid, next);
		assert_int_equal(mailbox_count(mb), n0 + 1);
		assert_int_equal(mailbox_msg_uid(mb, n0 + 1), uid);
		assert_int_equal(mailbox_msg_date(mb, n0 + 1), date);
		assert_int_equal(mailbox_msg_flags(mb, n0 + 1),
				 rows[i].flags & ~MAILBOX_FLAG_PASSED);
		char want[2048];
		snprintf(want, sizeof(want), "%s%sFrom %s %s%s",
			 rows[i].before != NULL ? rows[i].before : "", rows[i].sep, rows[i].sender,
			 when, rows[i].want);
		mbox_expect_file(path, want);
		mailbox_free(&mb);
		mb = mbox_open_ok(path);
		assert_int_equal(mailbox_msg_uid(mb, n0 + 1), uid);
		mailbox_free(&mb);
	}
}

static void test_mbox_external_rewrite(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX];
	mbox_path(f, path, sizeof(path));
	static const char m1_same_size[] = "From a@b Mon Nov 23 08:00:00 2026\n"
					   "Subject: one\nX-Other: keep\n\nBODY ONE\n>From quoted\n\n";
	static const char m2_flagged[] = "From c@d Mon Nov 23 08:01:00 2026\n"
					 "Subject: two\nStatus: RO\nX-Status: F\n\nbody two\n\n";
	static const struct {
		const char *name;
		const char *a, *b, *c; /* the file rewritten by "another program" */
		int want[3];	       /* per seq: 0 same bytes, -1 ENOENT */
		const char *as[3];     /* the content expected */
	} rows[] = {
		{ "first removed: others moved", mbox_m2, mbox_m3, NULL, { -1, 0, 0 },
		  { NULL, mbox_m2, mbox_m3 } },
		{ "same size, same inode, other bytes", m1_same_size, mbox_m2, mbox_m3,
		  { -1, 0, 0 }, { NULL, mbox_m2, mbox_m3 } },
		{ "flags changed by mutt: found, new size", mbox_m1, m2_flagged, mbox_m3,
		  { 0, 0, 0 }, { mbox_m1, m2_flagged, mbox_m3 } },
		{ "emptied", "", NULL, NULL, { -1, -1, -1 }, { NULL, NULL, NULL } },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		mbox_write(path, mbox_m1, mbox_m2, mbox_m3);
		struct mailbox *mb = mbox_open_ok(path);
		mbox_write(path, rows[i].a, rows[i].b, rows[i].c);
		for (size_t s = 0; s < 3; s++) {
			const char *error = NULL;
			int fd;
			int r = mailbox_msg_open(mb, s + 1, &fd, &error);
			if (rows[i].want[s] < 0) {
				if (r == 0)
					fail_msg("row %s msg %zu: opened", rows[i].name, s + 1);
				assert_int_equal(errno, ENOENT);
				continue;
			}
			if (r < 0)
				fail_msg("row %s msg %zu: %s", rows[i].name, s + 1, error);
			close(fd);
			mbox_expect_msg(mb, s + 1, rows[i].as[s]);
		}
		/* The view is unchanged until the next sync. */
		assert_int_equal(mailbox_count(mb), 3);
		mailbox_free(&mb);
	}
	/* Changes through a handle whose view is stale: only messages still
	 * there are touched, the others count as already expunged. */
	mbox_write(path, mbox_m1, mbox_m2, mbox_m3);
	struct mailbox *mb = mbox_open_ok(path);
	mbox_write(path, mbox_m1, mbox_m3, NULL); /* m2 removed by mutt */
	mbox_deliver(path, mbox_m4);
	const char *error = NULL;
	size_t seqs[] = { 2, 3 };
	assert_int_equal(mailbox_expunge_many(mb, seqs, 2, &error), 0);
	char want[1024];
	snprintf(want, sizeof(want), "%s%s", mbox_m1, mbox_m4);
	mbox_expect_file(path, want);
	mbox_expect_uids(mb, (const uint32_t[]){ 1 }, 1);
	sync_ok(mb);
	mbox_expect_uids(mb, (const uint32_t[]){ 1, 4 }, 2);
	mbox_expect_msg(mb, 2, mbox_m4);
	mailbox_free(&mb);
}

static void test_mbox_locks(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX], lock[PATH_MAX + 8];
	mbox_path(f, path, sizeof(path));
	snprintf(lock, sizeof(lock), "%s.lock", path);
	mbox_write(path, mbox_m1, NULL, NULL);
	struct mailbox *mb = mbox_open_ok(path);
	/* A stale dotlock (older than 300 s) is broken. */
	int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	struct timespec old[2] = { { time(NULL) - 400, 0 }, { time(NULL) - 400, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, lock, old, 0), 0);
	const char *error = NULL;
	assert_int_equal(mailbox_flags_set(mb, 1, MAILBOX_FLAG_SEEN, &error), 0);
	assert_int_equal(access(lock, F_OK), -1);
	/* A directory we cannot create the dotlock in (Debian's /var/mail):
	 * fcntl alone.  Root ignores directory permissions, so as root the
	 * check runs in a child that became nobody. */
	char sub[PATH_MAX + 8], subbox[PATH_MAX + 16], subidx[PATH_MAX + 16];
	snprintf(sub, sizeof(sub), "%s/ro", f->dir);
	snprintf(subbox, sizeof(subbox), "%s/box", sub);
	snprintf(subidx, sizeof(subidx), "%s/box.index", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	mbox_write(subbox, mbox_m1, mbox_m2, NULL);
	pid_t pid = 0;
	bool in_child = false;
	if (geteuid() == 0) {
		assert_int_equal(chown(f->dir, 65534, 65534), 0);
		assert_int_equal(chown(sub, 65534, 65534), 0);
		assert_int_equal(chown(subbox, 65534, 65534), 0);
		pid = fork();
		assert_true(pid >= 0);
		in_child = pid == 0;
		if (in_child && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(2);
	}
	if (pid == 0) {
		int bad = chmod(sub, 0500) < 0;
		bad |= access(subbox, W_OK) < 0; /* the file stays writable */
		struct mailbox *ro = mailbox_open_ex(subbox, MAILBOX_MBOX, subidx, &error);
		bad |= ro == NULL;
		bad |= ro != NULL && mailbox_expunge(ro, 1, &error) < 0;
		bad |= ro != NULL && (mailbox_count(ro) != 1 || mailbox_msg_uid(ro, 1) != 2);
		bad |= access(subidx, F_OK) < 0;
		char sublock[PATH_MAX + 24];
		snprintf(sublock, sizeof(sublock), "%s.lock", subbox);
		bad |= access(sublock, F_OK) == 0;
		mailbox_free(&ro);
		bad |= chmod(sub, 0700) < 0;
		if (in_child)
			_exit(bad);
		assert_false(bad);
	} else {
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	mbox_expect_file(subbox, mbox_m2);
	/* Not an mbox: changes refused, file untouched. */
	mbox_write(path, "garbage\n", NULL, NULL);
	assert_int_equal(mailbox_flags_set(mb, 1, 0, &error), -1);
	mbox_expect_file(path, "garbage\n");
	mailbox_free(&mb);
}

static void test_recent(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX];
	mbox_path(f, path, sizeof(path));
	mbox_write(path, mbox_m1, mbox_m2, NULL);
	struct mailbox *a = mbox_open_ok(path); /* indexes both: recent for a */
	struct mailbox *b = mbox_open_ok(path); /* indexed already: not for b */
	mbox_deliver(path, mbox_m3);
	sync_ok(b); /* b indexes m3 */
	sync_ok(a);
	const struct {
		const char *name;
		struct mailbox *mb;
		bool want[3];
	} rows[] = {
		{ "mbox: first handle", a, { true, true, false } },
		{ "mbox: second handle", b, { false, false, true } },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		for (size_t s = 0; s < 3; s++)
			if (mailbox_msg_recent(rows[i].mb, s + 1) != rows[i].want[s])
				fail_msg("%s: msg %zu", rows[i].name, s + 1);
	/* Our own append is recent for us. */
	uint32_t uid;
	const char *error = NULL;
	assert_int_equal(mailbox_append(a, "Subject: x\n\nx\n", 14, 0, 0, &uid, &error), 0);
	assert_true(mailbox_msg_recent(a, 4));
	sync_ok(b);
	assert_false(mailbox_msg_recent(b, 4));
	mailbox_free(&a);
	mailbox_free(&b);

	/* Maildir: moved from new/ and indexed by this handle. */
	put(f, "new", "1000.M1P1.host", "Subject: 1\n\n1\n");
	struct mailbox *m = open_ok(f);
	assert_true(mailbox_msg_recent(m, 1));
	struct mailbox *n = open_ok(f);
	assert_false(mailbox_msg_recent(n, 1));
	put(f, "new", "1001.M1P1.host", "Subject: 2\n\n2\n");
	sync_ok(n);
	sync_ok(m);
	assert_true(mailbox_msg_recent(m, 1));
	assert_false(mailbox_msg_recent(m, 2));
	assert_true(mailbox_msg_recent(n, 2));
	assert_int_equal(mailbox_append(m, "Subject: 3\n\n3\n", 14, 0, 0, &uid, &error), 0);
	assert_true(mailbox_msg_recent(m, 3));
	/* batch calls on Maildir loop over the single ones */
	size_t seqs[] = { 1, 3 };
	unsigned fl[] = { MAILBOX_FLAG_SEEN, MAILBOX_FLAG_FLAGGED };
	assert_int_equal(mailbox_flags_set_many(m, seqs, fl, 2, &error), 0);
	assert_int_equal(mailbox_msg_flags(m, 1), MAILBOX_FLAG_SEEN);
	assert_int_equal(mailbox_msg_flags(m, 3), MAILBOX_FLAG_FLAGGED);
	assert_int_equal(mailbox_expunge_many(m, seqs, 2, &error), 0);
	assert_int_equal(mailbox_count(m), 1);
	assert_int_equal(mailbox_msg_uid(m, 1), 2);
	mailbox_free(&m);
	mailbox_free(&n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uids_in_delivery_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_external_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupted_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append, setup, teardown),
		cmocka_unit_test(test_crlf_size),
		cmocka_unit_test_setup_teardown(test_vsize_cached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uid_space_exhausted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_listing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_uids_persistent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_expunge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_external_rewrite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recent, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
