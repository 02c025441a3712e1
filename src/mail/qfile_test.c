/* qfile_test.c - queue file writer/reader round trips, corruption and
 * torn appends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/fs.h"
#include "mail/qfile.h"
#include "mail/queue.h"

static char qdir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(qdir, sizeof(qdir), "/tmp/qfile-test-XXXXXX");
	if (mkdtemp(qdir) == NULL)
		return -1;
	const char *error;
	return queue_dirs_create(qdir, getuid(), getgid(), &error);
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", qdir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *write_sample(const char *content, size_t n_rcpts)
{
	struct qfile_writer *w;
	const char *error;
	assert_int_equal(qfile_writer_open(qdir, &w, &error), 0);
	char *id = strdup(qfile_writer_id(w));
	assert_true(queue_id_valid(id));
	qfile_writer_time(w, 1700000000, 123456);
	qfile_writer_attr(w, "client_name", "localhost");
	qfile_writer_attr(w, "client_addr", "127.0.0.1");
	qfile_writer_sender(w, "fred@truc.test");
	for (size_t i = 0; i < n_rcpts; i++) {
		char addr[64];
		snprintf(addr, sizeof(addr), "user%zu@example.test", i);
		struct qfile_rcpt_in r = { addr, i == 0 ? "rfc822;x@y" : NULL,
					   i == 0 ? "SUCCESS,FAILURE" : NULL,
					   i == 0 ? "root" : NULL };
		qfile_writer_rcpt(w, &r);
	}
	qfile_writer_end_envelope(w);
	qfile_writer_content(w, content, strlen(content));
	assert_int_equal(qfile_writer_commit(&w, QUEUE_INCOMING, &error), 0);
	assert_null(w);
	return id;
}

static int open_q(const char *id)
{
	struct buf p = BUF_INIT;
	queue_path(&p, qdir, QUEUE_INCOMING, id);
	int fd = open(buf_cstr(&p), O_RDWR);
	buf_deinit(&p);
	assert_true(fd >= 0);
	return fd;
}

static int collect(void *ctx, const uint8_t *data, size_t len)
{
	buf_append(ctx, data, len);
	return 0;
}

static void test_round_trip(void **state)
{
	(void)state;
	char *id = write_sample("Subject: hi\n\nbody\n", 3);
	int fd = open_q(id);
	struct qfile_msg *m;
	const char *error;
	assert_int_equal(qfile_read(fd, &m, &error), 0);
	assert_string_equal(m->sender, "fred@truc.test");
	assert_int_equal(m->arrival_sec, 1700000000);
	assert_int_equal(m->arrival_usec, 123456);
	assert_int_equal(m->n_rcpts, 3);
	assert_string_equal(m->rcpts[0].address, "user0@example.test");
	assert_string_equal(m->rcpts[0].orcpt, "rfc822;x@y");
	assert_string_equal(m->rcpts[0].notify, "SUCCESS,FAILURE");
	assert_string_equal(m->rcpts[0].orig_to, "root");
	assert_null(m->rcpts[1].orig_to);
	assert_string_equal(qfile_msg_attr(m, "client_addr"), "127.0.0.1");
	assert_null(qfile_msg_attr(m, "nothing"));
	assert_int_equal(qfile_msg_pending(m), 3);
	struct buf content = BUF_INIT;
	assert_int_equal(qfile_content_read(fd, m, collect, &content, &error), 0);
	assert_string_equal(buf_cstr(&content), "Subject: hi\n\nbody\n");
	assert_int_equal(m->content_size, content.len);
	buf_deinit(&content);

	/* State changes survive a re-read. */
	assert_int_equal(qfile_append_done(fd, m, 1, QRCPT_SENT, "2.0.0", "delivered to mailbox"), 0);
	struct qfile_rcpt_in fwd = { "far@away.test", NULL, NULL, "root" };
	assert_int_equal(qfile_append_rcpt(fd, m, 0, &fwd), 0);
	assert_int_equal(qfile_append_done(fd, m, 0, QRCPT_EXPANDED, NULL, NULL), 0);
	assert_int_equal(qfile_append_retry(fd, m, 1700000300, 1, "connection refused"), 0);
	assert_int_equal(qfile_append_notice(fd, m, "delay"), 0);
	qfile_msg_free(&m);
	assert_int_equal(qfile_read(fd, &m, &error), 0);
	assert_int_equal(m->n_rcpts, 4);
	assert_int_equal(m->rcpts[1].status, QRCPT_SENT);
	assert_string_equal(m->rcpts[1].reason, "delivered to mailbox");
	assert_int_equal(m->rcpts[0].status, QRCPT_EXPANDED);
	assert_int_equal(m->rcpts[3].parent, 0);
	assert_string_equal(m->rcpts[3].address, "far@away.test");
	assert_int_equal(m->next_attempt, 1700000300);
	assert_int_equal(m->attempts, 1);
	assert_string_equal(m->defer_reason, "connection refused");
	assert_true(m->delay_warned);
	assert_int_equal(qfile_msg_pending(m), 2);
	/* The unsynced variant writes the same record. */
	assert_int_equal(qfile_append_done_nosync(fd, m, 2, QRCPT_BOUNCED, "5.1.1", "unknown"), 0);
	qfile_msg_free(&m);
	assert_int_equal(qfile_read(fd, &m, &error), 0);
	assert_int_equal(m->rcpts[2].status, QRCPT_BOUNCED);
	assert_string_equal(m->rcpts[2].dsn, "5.1.1");
	assert_int_equal(qfile_msg_pending(m), 1);
	qfile_msg_free(&m);
	close(fd);
	free(id);
}

/* header_checks REDIRECT: every recipient expanded into the new address. */
static void test_redirect(void **state)
{
	(void)state;
	struct qfile_writer *w;
	const char *error;
	assert_int_equal(qfile_writer_open(qdir, &w, &error), 0);
	char *id = strdup(qfile_writer_id(w));
	qfile_writer_time(w, 1700000000, 0);
	qfile_writer_sender(w, "fred@truc.test");
	struct qfile_rcpt_in r0 = { "user0@example.test", NULL, NULL, "root@example.test" };
	struct qfile_rcpt_in r1 = { "user1@example.test", NULL, NULL, NULL };
	qfile_writer_rcpt(w, &r0);
	qfile_writer_rcpt(w, &r1);
	qfile_writer_end_envelope(w);
	qfile_writer_content(w, "Subject: x\n\nbody\n", strlen("Subject: x\n\nbody\n"));
	qfile_writer_redirect(w, "other@example.test");
	assert_int_equal(qfile_writer_commit(&w, QUEUE_INCOMING, &error), 0);
	int fd = open_q(id);
	struct qfile_msg *m;
	assert_int_equal(qfile_read(fd, &m, &error), 0);
	assert_int_equal(m->n_rcpts, 3);
	assert_int_equal(m->rcpts[0].status, QRCPT_EXPANDED);
	assert_int_equal(m->rcpts[1].status, QRCPT_EXPANDED);
	assert_int_equal(m->rcpts[2].status, QRCPT_PENDING);
	assert_int_equal(m->rcpts[2].parent, 0);
	assert_string_equal(m->rcpts[2].address, "other@example.test");
	assert_string_equal(m->rcpts[2].orig_to, "root@example.test");
	assert_int_equal(qfile_msg_pending(m), 1);
	struct buf content = BUF_INIT;
	assert_int_equal(qfile_content_read(fd, m, collect, &content, &error), 0);
	assert_string_equal(buf_cstr(&content), "Subject: x\n\nbody\n");
	buf_deinit(&content);
	qfile_msg_free(&m);
	close(fd);
	free(id);
}

static void test_large_content(void **state)
{
	(void)state;
	size_t n = QFILE_CONTENT_CHUNK * 3 + 17;
	char *big = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	big[n] = '\0';
	char *id = write_sample(big, 1);
	int fd = open_q(id);
	struct qfile_msg *m;
	const char *error;
	assert_int_equal(qfile_read(fd, &m, &error), 0);
	struct buf content = BUF_INIT;
	assert_int_equal(qfile_content_read(fd, m, collect, &content, &error), 0);
	assert_int_equal(content.len, n);
	assert_memory_equal(content.data, big, n);
	buf_deinit(&content);
	qfile_msg_free(&m);
	close(fd);
	free(big);
	free(id);
}

/* The resumable reader returns the same bytes as qfile_content_read(),
 * whatever the content size (around the record size) and the caller's
 * buffer size, never more than cap per call and never across a record. */
static void test_content_cursor(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		size_t size;
	} sizes[] = {
		{ "empty", 0 },
		{ "one byte", 1 },
		{ "chunk-1", QFILE_CONTENT_CHUNK - 1 },
		{ "chunk", QFILE_CONTENT_CHUNK },
		{ "chunk+1", QFILE_CONTENT_CHUNK + 1 },
		{ "three chunks and some", QFILE_CONTENT_CHUNK * 3 + 17 },
	};
	static const size_t caps[] = { 1, 7, 4096, QFILE_CONTENT_CHUNK - 1, QFILE_CONTENT_CHUNK,
				       QFILE_CONTENT_CHUNK + 1 };
	uint8_t *chunk = malloc(QFILE_CONTENT_CHUNK + 1);
	assert_non_null(chunk);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i].size;
		char *text = malloc(n + 1);
		for (size_t k = 0; k < n; k++)
			text[k] = (char)(k % 251 == 250 ? '\n' : 'a' + (k * 7) % 26);
		text[n] = '\0';
		char *id = write_sample(text, 1);
		int fd = open_q(id);
		struct qfile_msg *m;
		const char *error;
		assert_int_equal(qfile_read(fd, &m, &error), 0);
		assert_int_equal(m->content_size, n);
		for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
			if (caps[c] == 1 && n > QFILE_CONTENT_CHUNK + 1)
				continue; /* a byte a call: enough on the smaller rows */
			struct qfile_content_cursor cur;
			struct buf got = BUF_INIT;
			size_t len, calls = 0;
			int r;
			qfile_content_cursor_init(&cur, m);
			while ((r = qfile_content_next(fd, m, &cur, chunk, caps[c], &len,
						       &error)) == 1) {
				if (len == 0 || len > caps[c] || len > QFILE_CONTENT_CHUNK)
					fail_msg("%s cap %zu: bad length %zu", sizes[i].name, caps[c],
						 len);
				buf_append(&got, chunk, len);
				calls++;
			}
			if (r != 0)
				fail_msg("%s cap %zu: %s", sizes[i].name, caps[c], error);
			if (got.len != n || (n > 0 && memcmp(got.data, text, n) != 0))
				fail_msg("%s cap %zu: content differs (%zu bytes)", sizes[i].name,
					 caps[c], got.len);
			/* The fewest calls: one per record when the buffer holds one. */
			if (caps[c] >= QFILE_CONTENT_CHUNK)
				assert_int_equal(calls, (n + QFILE_CONTENT_CHUNK - 1) /
								QFILE_CONTENT_CHUNK);
			/* At the end it stays at the end. */
			assert_int_equal(qfile_content_next(fd, m, &cur, chunk, caps[c], &len, &error),
					 0);
			assert_int_equal(len, 0);
			buf_deinit(&got);
		}
		qfile_msg_free(&m);
		close(fd);
		free(id);
		free(text);
	}
	free(chunk);
}

/* A cursor reports a file that no longer holds what qfile_read() saw. */
static void test_content_cursor_errors(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		enum { CUT_FILE, BAD_TYPE, BAD_LENGTH, SIZE_GROWN, ZERO_CAP } how;
	} rows[] = {
		{ "file cut inside the content", CUT_FILE },
		{ "record type overwritten", BAD_TYPE },
		{ "record length over the chunk size", BAD_LENGTH },
		{ "more content expected than stored", SIZE_GROWN },
		{ "no room in the buffer", ZERO_CAP },
	};
	size_t n = QFILE_CONTENT_CHUNK + 100;
	char *text = malloc(n + 1);
	memset(text, 'x', n);
	text[n] = '\0';
	uint8_t *chunk = malloc(QFILE_CONTENT_CHUNK);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *id = write_sample(text, 1);
		int fd = open_q(id);
		struct qfile_msg *m;
		const char *error = NULL;
		assert_int_equal(qfile_read(fd, &m, &error), 0);
		struct qfile_content_cursor cur;
		size_t len = 99, cap = QFILE_CONTENT_CHUNK;
		qfile_content_cursor_init(&cur, m);
		/* The first record reads fine; the damage is in the second. */
		assert_int_equal(qfile_content_next(fd, m, &cur, chunk, cap, &len, &error), 1);
		assert_int_equal(len, QFILE_CONTENT_CHUNK);
		off_t second = m->content_offset + 5 + QFILE_CONTENT_CHUNK;
		switch (rows[i].how) {
		case CUT_FILE:
			assert_int_equal(ftruncate(fd, second + 5 + 10), 0);
			break;
		case BAD_TYPE:
			assert_int_equal(pwrite(fd, "A", 1, second), 1);
			break;
		case BAD_LENGTH:
			assert_int_equal(pwrite(fd, "\0\1\0\1", 4, second + 1), 4);
			break;
		case SIZE_GROWN:
			m->content_size += QFILE_CONTENT_CHUNK;
			break;
		case ZERO_CAP:
			cap = 0;
			break;
		}
		int r = qfile_content_next(fd, m, &cur, chunk, cap, &len, &error);
		if (rows[i].how == SIZE_GROWN && r == 1) /* the real second record */
			r = qfile_content_next(fd, m, &cur, chunk, cap, &len, &error);
		if (r != -1)
			fail_msg("%s: returned %d", rows[i].name, r);
		assert_non_null(error);
		assert_int_equal(len, 0);
		qfile_msg_free(&m);
		close(fd);
		free(id);
	}
	free(chunk);
	free(text);
}

/* Every truncation of a complete file before its E record is rejected;
 * a torn append after E is ignored and cut by the next append. */
static void test_truncation(void **state)
{
	(void)state;
	char *id = write_sample("x\n", 1);
	int fd = open_q(id);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	struct buf whole = BUF_INIT;
	struct buf p = BUF_INIT;
	queue_path(&p, qdir, QUEUE_INCOMING, id);
	assert_int_equal(fs_read_file(buf_cstr(&p), 1 << 20, &whole), 0);
	for (off_t cut = 0; cut < st.st_size; cut++) {
		char tmp[128];
		snprintf(tmp, sizeof(tmp), "%s/tmp/cut", qdir);
		int t = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
		assert_int_equal(write(t, whole.data, (size_t)cut), cut);
		struct qfile_msg *m = NULL;
		const char *error = NULL;
		assert_int_equal(qfile_read(t, &m, &error), -1);
		assert_non_null(error);
		assert_null(m);
		close(t);
		unlink(tmp);
	}
	/* Torn append: half a D record after E. */
	struct qfile_msg *m;
	const char *error;
	assert_int_equal(qfile_read(fd, &m, &error), 0);
	off_t end = m->valid_end;
	assert_int_equal(pwrite(fd, "D\0\0\0\x20" "0", 6, end), 6);
	qfile_msg_free(&m);
	assert_int_equal(qfile_read(fd, &m, &error), 0);
	assert_int_equal(m->valid_end, end);
	assert_int_equal(qfile_msg_pending(m), 1);
	assert_int_equal(qfile_append_done(fd, m, 0, QRCPT_SENT, "2.0.0", "ok"), 0);
	qfile_msg_free(&m);
	assert_int_equal(qfile_read(fd, &m, &error), 0);
	assert_int_equal(qfile_msg_pending(m), 0);
	qfile_msg_free(&m);
	buf_deinit(&whole);
	buf_deinit(&p);
	close(fd);
	free(id);
}

static void test_bad_files(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *bytes;
		size_t len;
	} rows[] = {
		{ "empty", "", 0 },
		{ "wrong version", "V\0\0\0\x05hello", 10 },
		{ "unknown type", "V\0\0\0\x0f" "facteur-queue 1" "Z\0\0\0\0", 25 },
		{ "length past end", "V\0\0\0\x0f" "facteur-queue 1" "S\0\0\0\x40" "x", 26 },
		{ "no recipients", "V\0\0\0\x0f" "facteur-queue 1" "T\0\0\0\x08" "1.000001"
				    "S\0\0\0\0" "X\0\0\0\0" "E\0\0\0\0", 48 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char tmp[128];
		snprintf(tmp, sizeof(tmp), "%s/tmp/bad", qdir);
		int t = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
		assert_int_equal(write(t, rows[i].bytes, rows[i].len), (ssize_t)rows[i].len);
		struct qfile_msg *m = NULL;
		const char *error = NULL;
		if (qfile_read(t, &m, &error) != -1)
			fail_msg("row '%s' was accepted", rows[i].name);
		close(t);
		unlink(tmp);
	}
}

static void test_abort_removes_tmp(void **state)
{
	(void)state;
	struct qfile_writer *w;
	const char *error;
	assert_int_equal(qfile_writer_open(qdir, &w, &error), 0);
	qfile_writer_abort(&w);
	assert_null(w);
	assert_int_equal(queue_tmp_clean(qdir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_redirect),
		cmocka_unit_test(test_large_content),
		cmocka_unit_test(test_content_cursor),
		cmocka_unit_test(test_content_cursor_errors),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_abort_removes_tmp),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
