/* local_mbox_test.c - unit tests of the bytes written into mailboxes
 * (local_copy.c), mbox appends with locking and truncation on failure
 * (local_mbox.c, local_file.c) and Maildir naming and layout
 * (local_maildir.c).  Everything is written under a mkdtemp() directory. */
#include "local/local.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* A content source made of chunks; fails before chunk fail_at when >= 0. */
struct fake_content {
	const char *const *chunks;
	int fail_at;
};

static int fake_content_read(void *ctx, int (*cb)(void *cbctx, const uint8_t *data, size_t len),
			     void *cbctx, const char **error_r)
{
	struct fake_content *fc = ctx;
	for (int i = 0; fc->chunks[i] != NULL; i++) {
		if (i == fc->fail_at) {
			*error_r = "fake read error";
			return -1;
		}
		if (cb(cbctx, (const uint8_t *)fc->chunks[i], strlen(fc->chunks[i])) < 0) {
			*error_r = NULL;
			return -1;
		}
	}
	return 0;
}

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	str_copy(tmpdir, sizeof(tmpdir), "/tmp/local_mbox_test.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Write the message with flags into a temporary file, return its text. */
static char *copy_to_string(const char *const *chunks, unsigned flags, const char *sender,
			    const char *orig_to)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/copy", tmpdir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	struct fake_content fc = { chunks, -1 };
	struct local_msg m = { "QID", sender, fake_content_read, &fc };
	struct local_rcpt r = { "joe@example.test", orig_to };
	const char *err = NULL;
	assert_int_equal(local_copy(fd, &m, &r, flags, 0, &err), 0);
	assert_int_equal(close(fd), 0);
	struct buf b = BUF_INIT;
	assert_int_equal(fs_read_file(path, 1 << 20, &b), 0);
	return buf_steal(&b);
}

static void test_copy_quoting(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *chunks[6];
		unsigned flags;
		const char *body; /* expected after the headers */
	} rows[] = {
		{ "plain", { "Subject: a\n\nbody\n", NULL }, 0, "Subject: a\n\nbody\n" },
		{ "adds final newline", { "a\n\nno newline", NULL }, 0, "a\n\nno newline\n" },
		{ "mbox blank line", { "a\n\nb\n", NULL }, LOCAL_COPY_QUOTE | LOCAL_COPY_BLANK,
		  "a\n\nb\n\n" },
		{ "quote From", { "a\n\nFrom me\nx From y\n", NULL }, LOCAL_COPY_QUOTE,
		  "a\n\n>From me\nx From y\n" },
		{ "quote only From", { "a\n\n>From me\nFrom\nFromage\n", NULL }, LOCAL_COPY_QUOTE,
		  "a\n\n>From me\nFrom\nFromage\n" },
		{ "no quote without flag", { "a\n\nFrom me\n", NULL }, 0, "a\n\nFrom me\n" },
		{ "From split over chunks", { "a\n\nFr", "o", "m me\nFro", "m\n", NULL },
		  LOCAL_COPY_QUOTE, "a\n\n>From me\nFrom\n" },
		{ "From at the very start", { "From x\n", NULL }, LOCAL_COPY_QUOTE, ">From x\n" },
		{ "ends inside prefix", { "a\n\nFro", NULL }, LOCAL_COPY_QUOTE, "a\n\nFro\n" },
		{ "newline split", { "a\n", "From b\n", NULL }, LOCAL_COPY_QUOTE, "a\n>From b\n" },
		{ "empty content", { NULL }, LOCAL_COPY_BLANK, "\n" },
	};
	const char *headers = "Return-Path: <s@x.test>\nX-Original-To: orig\n"
			      "Delivered-To: joe@example.test\n";
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *got = copy_to_string(rows[i].chunks, rows[i].flags, "s@x.test", "orig");
		struct buf want = BUF_INIT;
		buf_printf(&want, "%s%s", headers, rows[i].body);
		if (strcmp(got, buf_cstr(&want)) != 0)
			fail_msg("%s: got [%s] want [%s]", rows[i].name, got, buf_cstr(&want));
		buf_deinit(&want);
		free(got);
	}
}

static void test_copy_headers(void **state)
{
	(void)state;
	const char *chunks[] = { "x\n", NULL };
	/* Null sender, no original recipient, injection attempt in the
	 * original recipient. */
	char *got = copy_to_string(chunks, LOCAL_COPY_FROM, "", NULL);
	assert_true(strncmp(got, "From MAILER-DAEMON ", 19) == 0);
	char *nl = strchr(got, '\n');
	assert_non_null(nl);
	/* asctime: "Thu Jan  1 00:00:00 1970" is 24 characters. */
	assert_int_equal(nl - got, 19 + 24);
	assert_string_equal(nl + 1, "Return-Path: <>\nDelivered-To: joe@example.test\nx\n");
	free(got);
	got = copy_to_string(chunks, 0, "a@b", "evil\nBcc: x");
	assert_string_equal(got, "Return-Path: <a@b>\nX-Original-To: evil?Bcc: x\n"
				 "Delivered-To: joe@example.test\nx\n");
	free(got);
}

static void test_from_line(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	setenv("TZ", "UTC", 1);
	tzset();
	local_copy_from_line(&b, "chris@gw1.maison.mrs", 1052659282); /* seeds' date */
	assert_string_equal(buf_cstr(&b), "From chris@gw1.maison.mrs Sun May 11 13:21:22 2003\n");
	buf_reset(&b);
	local_copy_from_line(&b, "", 0);
	assert_string_equal(buf_cstr(&b), "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n");
	buf_deinit(&b);
}

static void mbox_path(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", tmpdir, name);
}

static void test_mbox_append_and_truncate(void **state)
{
	(void)state;
	char path[128];
	mbox_path(path, sizeof(path), "box");
	const char *ok_chunks[] = { "Subject: 1\n\nFrom a\n", NULL };
	struct fake_content ok = { ok_chunks, -1 };
	struct local_msg m = { "QID", "s@x", fake_content_read, &ok };
	struct local_rcpt r = { "joe@x", "joe" };
	struct buf err = BUF_INIT;
	assert_int_equal(local_mbox_deliver(path, &m, &r, 0, &err), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	off_t size1 = st.st_size;
	assert_true(size1 > 0);

	/* A failing content source after some output: the mailbox is cut
	 * back to its previous size, the lock removed. */
	const char *bad_chunks[] = { "Subject: 2\n\n", "more\n", "never\n", NULL };
	struct fake_content bad = { bad_chunks, 2 };
	m.content_ctx = &bad;
	assert_int_equal(local_mbox_deliver(path, &m, &r, 0, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "fake read error"));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, size1);
	char lock[160];
	snprintf(lock, sizeof(lock), "%s.lock", path);
	assert_int_equal(access(lock, F_OK), -1);

	/* Second good message appended after the first. */
	m.content_ctx = &ok;
	buf_reset(&err);
	assert_int_equal(local_mbox_deliver(path, &m, &r, 0, &err), 0);
	struct buf b = BUF_INIT;
	assert_int_equal(fs_read_file(path, 1 << 20, &b), 0);
	assert_int_equal(b.len, (size_t)size1 * 2);
	assert_non_null(strstr(buf_cstr(&b), "\n>From a\n\nFrom s@x "));
	buf_deinit(&b);
	buf_deinit(&err);
}

static void test_mbox_refusals(void **state)
{
	(void)state;
	const char *chunks[] = { "x\n", NULL };
	struct fake_content fc = { chunks, -1 };
	struct local_msg m = { "QID", "s@x", fake_content_read, &fc };
	struct local_rcpt r = { "joe@x", NULL };
	char target[128], link1[128], hard[128], dir[128];
	mbox_path(target, sizeof(target), "target");
	mbox_path(link1, sizeof(link1), "symlink");
	mbox_path(hard, sizeof(hard), "hardlink");
	mbox_path(dir, sizeof(dir), "adir");
	assert_int_equal(fs_write_atomic(target, "", 0, 0600), 0);
	assert_int_equal(symlink(target, link1), 0);
	assert_int_equal(link(target, hard), 0);
	assert_int_equal(mkdir(dir, 0700), 0);
	const struct {
		const char *name;
		const char *path;
		const char *reason;
	} rows[] = {
		{ "symlink", link1, "symbolic link" },
		{ "hard link", hard, "hard links" },
		{ "directory", dir, "not a regular file" },
	};
	for (size_t i = 0; i < 3; i++) {
		struct buf err = BUF_INIT;
		assert_int_equal(local_mbox_deliver(rows[i].path, &m, &r, 0, &err), -1);
		if (strstr(buf_cstr(&err), rows[i].reason) == NULL)
			fail_msg("%s: %s", rows[i].name, buf_cstr(&err));
		buf_deinit(&err);
	}
	struct stat st;
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_size, 0);

	/* A dot-lock held by someone else: give up after the wait. */
	char box[128], lock[160];
	mbox_path(box, sizeof(box), "locked");
	snprintf(lock, sizeof(lock), "%s.lock", box);
	assert_int_equal(fs_write_atomic(lock, "", 0, 0600), 0);
	unsigned saved = local_mbox_lock_wait;
	local_mbox_lock_wait = 0;
	struct buf err = BUF_INIT;
	assert_int_equal(local_mbox_deliver(box, &m, &r, 0, &err), -1);
	assert_non_null(strstr(buf_cstr(&err), "exists"));
	assert_int_equal(access(lock, F_OK), 0); /* not ours: left alone */
	/* A stale lock (older than 5 minutes) is removed. */
	struct timespec old[2] = { { time(NULL) - 600, 0 }, { time(NULL) - 600, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, lock, old, 0), 0);
	buf_reset(&err);
	assert_int_equal(local_mbox_deliver(box, &m, &r, 0, &err), 0);
	assert_int_equal(access(lock, F_OK), -1);
	local_mbox_lock_wait = saved;
	buf_deinit(&err);
}

static void test_file_dev_null(void **state)
{
	(void)state;
	const char *chunks[] = { "x\n", NULL };
	struct fake_content fc = { chunks, -1 };
	struct local_msg m = { "QID", "s@x", fake_content_read, &fc };
	struct local_rcpt r = { "joe@x", NULL };
	struct buf err = BUF_INIT;
	assert_int_equal(local_file_deliver("/dev/null", &m, &r, 0, &err), 0);
	/* /dev/full: the write error is reported. */
	if (access("/dev/full", W_OK) == 0) {
		assert_int_equal(local_file_deliver("/dev/full", &m, &r, 0, &err), -1);
		assert_non_null(strstr(buf_cstr(&err), "No space"));
	}
	buf_deinit(&err);
}

static void test_maildir_unique(void **state)
{
	(void)state;
	static const struct {
		const char *host;
		const char *want;
	} rows[] = {
		{ "mail.example.test", "1700000000.M123456P42Q7.mail.example.test" },
		{ "a/b:c", "1700000000.M123456P42Q7.a\\057b\\072c" },
		{ "", "1700000000.M123456P42Q7." },
	};
	for (size_t i = 0; i < 3; i++) {
		struct buf b = BUF_INIT;
		local_maildir_unique(&b, 1700000000, 123456, 42, 7, rows[i].host);
		assert_string_equal(buf_cstr(&b), rows[i].want);
		buf_deinit(&b);
	}
}

static size_t count_dir(const char *path)
{
	DIR *d = opendir(path);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void test_maildir_deliver(void **state)
{
	(void)state;
	char md[128], sub[160];
	snprintf(md, sizeof(md), "%s/deep/er/Maildir", tmpdir);
	const char *chunks[] = { "Subject: m\n\nFrom x\n", NULL };
	struct fake_content fc = { chunks, -1 };
	struct local_msg m = { "QID", "s@x", fake_content_read, &fc };
	struct local_rcpt r = { "joe@x", "joe" };
	struct buf err = BUF_INIT;
	assert_int_equal(local_maildir_deliver(md, &m, &r, &err), 0);
	assert_int_equal(local_maildir_deliver(md, &m, &r, &err), 0);
	static const char *const subs[] = { "tmp", "new", "cur" };
	static const size_t counts[] = { 0, 2, 0 };
	for (size_t i = 0; i < 3; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", md, subs[i]);
		struct stat st;
		assert_int_equal(stat(sub, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0700);
		assert_int_equal(count_dir(sub), counts[i]);
	}
	/* Content: no From line, no quoting. */
	snprintf(sub, sizeof(sub), "%s/new", md);
	DIR *d = opendir(sub);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char p[512];
		snprintf(p, sizeof(p), "%s/%s", sub, e->d_name);
		struct buf b = BUF_INIT;
		assert_int_equal(fs_read_file(p, 1 << 20, &b), 0);
		assert_string_equal(buf_cstr(&b), "Return-Path: <s@x>\nX-Original-To: joe\n"
						  "Delivered-To: joe@x\nSubject: m\n\nFrom x\n");
		buf_deinit(&b);
	}
	closedir(d);

	/* A failing source leaves nothing in tmp/ or new/. */
	const char *bad_chunks[] = { "a\n", "b\n", NULL };
	struct fake_content bad = { bad_chunks, 1 };
	m.content_ctx = &bad;
	assert_int_equal(local_maildir_deliver(md, &m, &r, &err), -1);
	snprintf(sub, sizeof(sub), "%s/tmp", md);
	assert_int_equal(count_dir(sub), 0);
	snprintf(sub, sizeof(sub), "%s/new", md);
	assert_int_equal(count_dir(sub), 2);
	buf_deinit(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_quoting),
		cmocka_unit_test(test_copy_headers),
		cmocka_unit_test(test_from_line),
		cmocka_unit_test(test_mbox_append_and_truncate),
		cmocka_unit_test(test_mbox_refusals),
		cmocka_unit_test(test_file_dev_null),
		cmocka_unit_test(test_maildir_unique),
		cmocka_unit_test(test_maildir_deliver),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
