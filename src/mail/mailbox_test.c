/* mailbox_test.c - unit tests for the Maildir mailbox layer, each in its own
 * mkdtemp() Maildir: creation, UIDs in delivery order and stable across
 * reopen, changes by other tools (delete, rename, flags), flags round trip
 * through file names, two handles syncing interleaved, corrupted index,
 * append, CRLF sizes, and limits (long names, many files, UID space). */
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
	uint32_t uid;
	assert_int_equal(mailbox_flags_set(mb, 1, MAILBOX_FLAG_SEEN, &error), -1);
	assert_int_equal(errno, ENOTSUP);
	assert_int_equal(mailbox_expunge(mb, 1, &error), -1);
	assert_int_equal(errno, ENOTSUP);
	assert_int_equal(mailbox_append(mb, "x\n", 2, 0, 0, &uid, &error), -1);
	assert_int_equal(errno, ENOTSUP);
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
