/* qmgr_scan_test.c - the queue manager on crafted queue files: recovery,
 * the active window, routing, replies from a fake local agent (the other
 * end of a socketpair driven by the test), deferral, expiry, removal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define _XOPEN_SOURCE_EXTENDED 1
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "mail/dlv.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "qmgr/qmgr.h"

struct fixture {
	char dir[64];
	char log_path[128];
	struct event_base *base;
	struct qmgr *q;
	int peer; /* the fake local agent's end */
	char *mydest[3];
	char *virt[2];
};

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static struct qmgr_settings settings_default(struct fixture *f)
{
	struct qmgr_settings s = {
		.queue_dir = f->dir,
		.mydestination = f->mydest,
		.virtual_mailbox_domains = f->virt,
		.message_active_limit = 100,
		.process_limit = 10,
		.local_concurrency = 2,
		.queue_run_delay = 300,
		.minimal_backoff_time = 300,
		.maximal_backoff_time = 4000,
		.maximal_queue_lifetime = 5 * 86400,
		.bounce_queue_lifetime = 86400,
	};
	return s;
}

static void fixture_start(struct fixture *f, const struct qmgr_settings *s)
{
	int sv[2];
	f->base = event_base_new();
	assert_non_null(f->base);
	f->q = qmgr_new(s, f->base, NULL);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	qmgr_local_attach(f->q->local, sv[0]);
	f->peer = sv[1];
}

static void fixture_stop(struct fixture *f)
{
	if (f->q != NULL)
		qmgr_free(&f->q);
	if (f->base != NULL)
		event_base_free(f->base);
	f->base = NULL;
	if (f->peer >= 0)
		(void)close(f->peer);
	f->peer = -1;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *error;
	snprintf(f->dir, sizeof(f->dir), "/tmp/qmgr-test-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	if (queue_dirs_create(f->dir, getuid(), getgid(), &error) < 0)
		return -1;
	snprintf(f->log_path, sizeof(f->log_path), "%s/test.log", f->dir);
	log_init("qmgr", LOG_DEST_FILE, f->log_path);
	f->mydest[0] = "localhost";
	f->mydest[1] = "example.com";
	f->virt[0] = "virt.test";
	f->peer = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	fixture_stop(f);
	log_init("qmgr", LOG_DEST_STDERR, NULL);
	(void)nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Write a complete queue file into QDIR/sub; returns its id (static). */
static const char *qfile_make(struct fixture *f, const char *sub, const char *sender,
			      const char *const *rcpts, int64_t arrival)
{
	static char id[QFILE_ID_MAX];
	struct qfile_writer *w;
	const char *error;
	assert_int_equal(qfile_writer_open(f->dir, &w, &error), 0);
	snprintf(id, sizeof(id), "%s", qfile_writer_id(w));
	qfile_writer_time(w, arrival, 0);
	qfile_writer_sender(w, sender);
	for (size_t i = 0; rcpts[i] != NULL; i++) {
		struct qfile_rcpt_in r = { rcpts[i], NULL, NULL, NULL };
		qfile_writer_rcpt(w, &r);
	}
	qfile_writer_end_envelope(w);
	qfile_writer_content(w, "Subject: t\n\nhello\n", 18);
	assert_int_equal(qfile_writer_commit(&w, sub, &error), 0);
	return id;
}

static bool in_queue(struct fixture *f, const char *sub, const char *id)
{
	struct buf p = BUF_INIT;
	queue_path(&p, f->dir, sub, id);
	bool ok = access(buf_cstr(&p), F_OK) == 0;
	buf_deinit(&p);
	return ok;
}

static struct qfile_msg *read_back(struct fixture *f, const char *sub, const char *id)
{
	struct buf p = BUF_INIT;
	struct qfile_msg *m = NULL;
	const char *error;
	queue_path(&p, f->dir, sub, id);
	int fd = open(buf_cstr(&p), O_RDONLY);
	buf_deinit(&p);
	assert_true(fd >= 0);
	assert_int_equal(qfile_read(fd, &m, &error), 0);
	close(fd);
	return m;
}

static void pump(struct fixture *f)
{
	for (int i = 0; i < 20; i++)
		(void)event_base_loop(f->base, EVLOOP_NONBLOCK);
}

static bool log_has(struct fixture *f, const char *needle)
{
	struct buf b = BUF_INIT;
	bool found = fs_read_file(f->log_path, 1 << 22, &b) == 0 &&
		     strstr(buf_cstr(&b), needle) != NULL;
	buf_deinit(&b);
	return found;
}

struct agent_req {
	char req[32];
	char queue_id[QFILE_ID_MAX];
	char rcpt[16];
	char address[256];
	char orig_to[256];
	char cls[16];
};

static void field(const char *pkt, const char *key, char *out, size_t size)
{
	size_t klen = strlen(key);
	out[0] = '\0';
	for (const char *p = pkt; p != NULL && *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t n = len - klen - 1 < size - 1 ? len - klen - 1 : size - 1;
			memcpy(out, p + klen + 1, n);
			out[n] = '\0';
			return;
		}
		p = nl != NULL ? nl + 1 : NULL;
	}
}

/* Receive one request as the local agent; false when none comes. */
static bool agent_recv(struct fixture *f, struct agent_req *r)
{
	char pkt[DLV_MAX_PACKET + 1];
	for (int i = 0; i < 50; i++) {
		struct pollfd pfd = { f->peer, POLLIN, 0 };
		if (poll(&pfd, 1, 0) == 1) {
			ssize_t n = recv(f->peer, pkt, DLV_MAX_PACKET, 0);
			if (n <= 0)
				return false;
			pkt[n] = '\0';
			field(pkt, "req", r->req, sizeof(r->req));
			field(pkt, "queue_id", r->queue_id, sizeof(r->queue_id));
			field(pkt, "rcpt", r->rcpt, sizeof(r->rcpt));
			field(pkt, "address", r->address, sizeof(r->address));
			field(pkt, "orig_to", r->orig_to, sizeof(r->orig_to));
			field(pkt, "class", r->cls, sizeof(r->cls));
			return true;
		}
		pump(f);
	}
	return false;
}

static void agent_reply(struct fixture *f, const char *req, const char *rest)
{
	char pkt[4096];
	int n = snprintf(pkt, sizeof(pkt), "req=%s\n%s", req, rest);
	assert_int_equal(send(f->peer, pkt, (size_t)n, 0), n);
	pump(f);
}

static void start_default(struct fixture *f)
{
	struct qmgr_settings s = settings_default(f);
	fixture_start(f, &s);
}

/* ---- tests ---- */

static void test_corrupt_files_quarantined(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *name;
		const char *id;
		const char *data;
		size_t len;
	} rows[] = {
		{ "garbage", "GARBAGE1", "this is not a queue file\n", 25 },
		{ "empty file", "EMPTY2", "", 0 },
		{ "version record only", "VONLY3", "V\0\0\0\x0f" "facteur-queue 1", 20 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct buf p = BUF_INIT;
		queue_path(&p, f->dir, QUEUE_ACTIVE, rows[i].id);
		assert_int_equal(fs_write_atomic(buf_cstr(&p), rows[i].data, rows[i].len, 0600), 0);
		buf_deinit(&p);
	}
	start_default(f);
	qmgr_scan_recover(f->q);
	pump(f);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (!in_queue(f, QUEUE_CORRUPT, rows[i].id) || in_queue(f, QUEUE_ACTIVE, rows[i].id))
			fail_msg("%s: not moved to corrupt/", rows[i].name);
	}
	assert_true(log_has(f, "GARBAGE1: corrupt queue file: "));
	assert_true(log_has(f, "VONLY3: corrupt queue file: no end record; moved to corrupt/"));
	assert_int_equal(f->q->n_active, 0);
}

static void test_remote_deferred(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = { "far@remote.example.org", NULL };
	int64_t now = time(NULL);
	char id[QFILE_ID_MAX];
	snprintf(id, sizeof(id), "%s", qfile_make(f, QUEUE_INCOMING, "s@example.com", rcpts, now));
	start_default(f);
	qmgr_scan_recover(f->q);
	pump(f);
	assert_true(in_queue(f, QUEUE_DEFERRED, id));
	assert_false(in_queue(f, QUEUE_INCOMING, id));
	assert_false(in_queue(f, QUEUE_ACTIVE, id));
	struct qfile_msg *m = read_back(f, QUEUE_DEFERRED, id);
	assert_int_equal(m->attempts, 1);
	assert_true(m->next_attempt >= now + 300 && m->next_attempt <= now + 302);
	assert_string_equal(m->defer_reason, QMGR_REASON_REMOTE);
	assert_int_equal(m->rcpts[0].status, QRCPT_PENDING);
	qfile_msg_free(&m);
	char line[256];
	snprintf(line, sizeof(line), "%s: from=<s@example.com>, size=18, nrcpt=1 (queue active)", id);
	assert_true(log_has(f, line));
	snprintf(line, sizeof(line), "%s: to=<far@remote.example.org>, relay=none, delay=", id);
	assert_true(log_has(f, line));
	assert_true(log_has(f, "dsn=4.3.0, status=deferred (" QMGR_REASON_REMOTE ")"));
	/* Second failure: backoff doubles; the mtime says when it is due. */
	fixture_stop(f);
	assert_int_equal(queue_move(f->dir, id, QUEUE_DEFERRED, QUEUE_INCOMING), 0);
	start_default(f);
	qmgr_scan_recover(f->q);
	pump(f);
	m = read_back(f, QUEUE_DEFERRED, id);
	assert_int_equal(m->attempts, 2);
	assert_true(m->next_attempt >= now + 600 && m->next_attempt <= now + 602);
	qfile_msg_free(&m);
	struct stat st;
	struct buf p = BUF_INIT;
	queue_path(&p, f->dir, QUEUE_DEFERRED, id);
	assert_int_equal(stat(buf_cstr(&p), &st), 0);
	buf_deinit(&p);
	assert_true(st.st_mtime >= now + 600);
}

static void test_local_sent_removed(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = { "joe@example.com", "root", NULL };
	char id[QFILE_ID_MAX];
	/* Left in active/ by a crash. */
	snprintf(id, sizeof(id), "%s", qfile_make(f, QUEUE_ACTIVE, "", rcpts, time(NULL)));
	start_default(f);
	qmgr_scan_recover(f->q);
	struct agent_req r1, r2;
	assert_true(agent_recv(f, &r1));
	assert_true(agent_recv(f, &r2));
	assert_string_equal(r1.queue_id, id);
	assert_string_equal(r1.address, "joe@example.com");
	assert_string_equal(r1.rcpt, "0");
	assert_string_equal(r1.cls, "local");
	assert_string_equal(r2.address, "root");
	assert_string_equal(r2.rcpt, "1");
	agent_reply(f, r2.req, "status=sent\ndsn=2.0.0\ntext=delivered to mailbox");
	assert_true(in_queue(f, QUEUE_ACTIVE, id));
	struct qfile_msg *m = read_back(f, QUEUE_ACTIVE, id);
	assert_int_equal(m->rcpts[1].status, QRCPT_SENT);
	assert_int_equal(m->rcpts[0].status, QRCPT_PENDING);
	qfile_msg_free(&m);
	agent_reply(f, r1.req, "status=sent\ndsn=2.0.0\ntext=delivered to mailbox");
	assert_false(in_queue(f, QUEUE_ACTIVE, id));
	assert_false(in_queue(f, QUEUE_DEFERRED, id));
	char line[64];
	snprintf(line, sizeof(line), "%s: removed", id);
	assert_true(log_has(f, line));
	assert_true(log_has(f, "from=<>, size=18, nrcpt=2 (queue active)"));
}

static void test_local_deferred_and_bounced(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = { "a@localhost", "b@localhost", NULL };
	char id[QFILE_ID_MAX];
	snprintf(id, sizeof(id), "%s", qfile_make(f, QUEUE_INCOMING, "s@x.org", rcpts, time(NULL)));
	start_default(f);
	qmgr_scan_recover(f->q);
	struct agent_req r1, r2;
	assert_true(agent_recv(f, &r1));
	assert_true(agent_recv(f, &r2));
	agent_reply(f, r1.req, "status=deferred\ndsn=4.2.2\ntext=mailbox full");
	agent_reply(f, r2.req, "status=bounced\ndsn=5.1.1\ntext=unknown user");
	assert_true(in_queue(f, QUEUE_DEFERRED, id));
	struct qfile_msg *m = read_back(f, QUEUE_DEFERRED, id);
	assert_int_equal(m->rcpts[0].status, QRCPT_PENDING);
	assert_int_equal(m->rcpts[1].status, QRCPT_BOUNCED);
	assert_string_equal(m->rcpts[1].dsn, "5.1.1");
	assert_string_equal(m->defer_reason, "mailbox full");
	assert_int_equal(m->attempts, 1);
	qfile_msg_free(&m);
}

static void test_expansion(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = { "list@example.com", NULL };
	char id[QFILE_ID_MAX];
	snprintf(id, sizeof(id), "%s", qfile_make(f, QUEUE_INCOMING, "s@x.org", rcpts, time(NULL)));
	start_default(f);
	qmgr_scan_recover(f->q);
	struct agent_req r1, r2;
	assert_true(agent_recv(f, &r1));
	agent_reply(f, r1.req,
		    "status=expanded\ndsn=2.0.0\ntext=aliased\nforward=far@remote.org\nforward=v@virt.test");
	assert_true(agent_recv(f, &r2));
	assert_string_equal(r2.address, "v@virt.test");
	assert_string_equal(r2.cls, "virtual");
	assert_string_equal(r2.orig_to, "list@example.com");
	assert_string_equal(r2.rcpt, "2");
	agent_reply(f, r2.req, "status=sent\ndsn=2.0.0\ntext=delivered to maildir");
	assert_true(in_queue(f, QUEUE_DEFERRED, id));
	struct qfile_msg *m = read_back(f, QUEUE_DEFERRED, id);
	assert_int_equal(m->n_rcpts, 3);
	assert_int_equal(m->rcpts[0].status, QRCPT_EXPANDED);
	assert_int_equal(m->rcpts[1].parent, 0);
	assert_string_equal(m->rcpts[1].address, "far@remote.org");
	assert_string_equal(m->rcpts[1].orig_to, "list@example.com");
	assert_int_equal(m->rcpts[1].status, QRCPT_PENDING);
	assert_int_equal(m->rcpts[2].status, QRCPT_SENT);
	qfile_msg_free(&m);
	assert_true(log_has(f, "to=<far@remote.org>, orig_to=<list@example.com>, relay=none"));
}

static void test_expansion_loop_bounced(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = { "v0@virt.test", NULL };
	char id[QFILE_ID_MAX];
	snprintf(id, sizeof(id), "%s", qfile_make(f, QUEUE_INCOMING, "s@x.org", rcpts, time(NULL)));
	start_default(f);
	qmgr_scan_recover(f->q);
	/* Each virtual address forwards to the next one: depth grows. */
	int rounds = 0;
	struct agent_req r;
	while (agent_recv(f, &r)) {
		char rest[256];
		snprintf(rest, sizeof(rest), "status=expanded\ndsn=2.0.0\nforward=v%d@virt.test",
			 ++rounds);
		agent_reply(f, r.req, rest);
		assert_true(rounds <= QMGR_EXPAND_DEPTH_MAX + 1);
	}
	assert_int_equal(rounds, QMGR_EXPAND_DEPTH_MAX + 1);
	assert_false(in_queue(f, QUEUE_ACTIVE, id));
	assert_false(in_queue(f, QUEUE_DEFERRED, id));
	assert_true(log_has(f, "dsn=5.4.6, status=bounced (mail forwarding loop for v20@virt.test)"));
}

static void test_expired(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = { "far@remote.org", NULL };
	char id[QFILE_ID_MAX];
	snprintf(id, sizeof(id), "%s",
		 qfile_make(f, QUEUE_DEFERRED, "s@x.org", rcpts, time(NULL) - 6 * 86400));
	start_default(f);
	qmgr_scan_recover(f->q);
	pump(f);
	assert_false(in_queue(f, QUEUE_DEFERRED, id));
	assert_false(in_queue(f, QUEUE_ACTIVE, id));
	char line[128];
	snprintf(line, sizeof(line), "%s: from=<s@x.org>, status=expired, returned to sender", id);
	assert_true(log_has(f, line));
	snprintf(line, sizeof(line), "%s: removed", id);
	assert_true(log_has(f, line));
}

static void test_null_sender_bounce_lifetime(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = { "far@remote.org", NULL };
	char id1[QFILE_ID_MAX], id2[QFILE_ID_MAX];
	int64_t two_days = time(NULL) - 2 * 86400;
	snprintf(id1, sizeof(id1), "%s", qfile_make(f, QUEUE_INCOMING, "", rcpts, two_days));
	snprintf(id2, sizeof(id2), "%s", qfile_make(f, QUEUE_INCOMING, "s@x.org", rcpts, two_days));
	start_default(f);
	qmgr_scan_recover(f->q);
	pump(f);
	assert_false(in_queue(f, QUEUE_DEFERRED, id1)); /* past bounce_queue_lifetime */
	assert_true(in_queue(f, QUEUE_DEFERRED, id2));  /* within maximal_queue_lifetime */
}

static void test_all_done_removed(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = { "a@localhost", NULL };
	char id[QFILE_ID_MAX];
	snprintf(id, sizeof(id), "%s", qfile_make(f, QUEUE_ACTIVE, "s@x.org", rcpts, time(NULL)));
	/* Crash after the last D record, before the unlink. */
	struct buf p = BUF_INIT;
	struct qfile_msg *m;
	const char *error;
	queue_path(&p, f->dir, QUEUE_ACTIVE, id);
	int fd = open(buf_cstr(&p), O_RDWR);
	buf_deinit(&p);
	assert_int_equal(qfile_read(fd, &m, &error), 0);
	assert_int_equal(qfile_append_done(fd, m, 0, QRCPT_SENT, "2.0.0", "ok"), 0);
	qfile_msg_free(&m);
	close(fd);
	start_default(f);
	qmgr_scan_recover(f->q);
	pump(f);
	struct agent_req r;
	assert_false(agent_recv(f, &r));
	assert_false(in_queue(f, QUEUE_ACTIVE, id));
}

static void test_window_and_order(void **state)
{
	struct fixture *f = *state;
	char ids[3][QFILE_ID_MAX];
	const char *rcpts[] = { "a@localhost", NULL };
	for (int i = 0; i < 3; i++) {
		snprintf(ids[i], sizeof(ids[i]), "%s",
			 qfile_make(f, QUEUE_INCOMING, "s@x.org", rcpts, time(NULL)));
		/* Arrival order by mtime: make the last written the oldest. */
		struct buf p = BUF_INIT;
		queue_path(&p, f->dir, QUEUE_INCOMING, ids[i]);
		struct timespec ts[2] = { { 1000, 0 }, { 1000 - i, 0 } };
		assert_int_equal(utimensat(AT_FDCWD, buf_cstr(&p), ts, 0), 0);
		buf_deinit(&p);
	}
	struct qmgr_settings s = settings_default(f);
	s.message_active_limit = 2;
	s.local_concurrency = 5;
	fixture_start(f, &s);
	qmgr_scan_recover(f->q);
	struct agent_req r1, r2, r3;
	assert_true(agent_recv(f, &r1));
	assert_true(agent_recv(f, &r2));
	assert_false(agent_recv(f, &r3));
	assert_string_equal(r1.queue_id, ids[2]);
	assert_string_equal(r2.queue_id, ids[1]);
	assert_int_equal(f->q->n_active, 2);
	assert_true(in_queue(f, QUEUE_INCOMING, ids[0]));
	agent_reply(f, r1.req, "status=sent\ndsn=2.0.0\ntext=ok");
	assert_true(agent_recv(f, &r3));
	assert_string_equal(r3.queue_id, ids[0]);
	agent_reply(f, r2.req, "status=sent\ndsn=2.0.0\ntext=ok");
	agent_reply(f, r3.req, "status=sent\ndsn=2.0.0\ntext=ok");
	assert_int_equal(f->q->n_active, 0);
}

static void test_per_recipient_concurrency(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = { "same@localhost", NULL };
	for (int i = 0; i < 3; i++)
		(void)qfile_make(f, QUEUE_INCOMING, "s@x.org", rcpts, time(NULL));
	struct qmgr_settings s = settings_default(f);
	s.local_concurrency = 1;
	fixture_start(f, &s);
	qmgr_scan_recover(f->q);
	struct agent_req r, extra;
	for (int i = 0; i < 3; i++) {
		assert_true(agent_recv(f, &r));
		assert_false(agent_recv(f, &extra)); /* one at a time */
		assert_int_equal(qmgr_sched_in_flight(f->q), 1);
		agent_reply(f, r.req, "status=sent\ndsn=2.0.0\ntext=ok");
	}
	assert_int_equal(f->q->n_active, 0);
}

static void test_process_limit(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = { "a@localhost", "b@localhost", "c@localhost", "d@localhost", NULL };
	(void)qfile_make(f, QUEUE_INCOMING, "s@x.org", rcpts, time(NULL));
	struct qmgr_settings s = settings_default(f);
	s.process_limit = 3;
	fixture_start(f, &s);
	qmgr_scan_recover(f->q);
	struct agent_req r[4];
	for (int i = 0; i < 3; i++)
		assert_true(agent_recv(f, &r[i]));
	assert_false(agent_recv(f, &r[3]));
	agent_reply(f, r[0].req, "status=sent\ndsn=2.0.0\ntext=ok");
	assert_true(agent_recv(f, &r[3]));
	assert_string_equal(r[3].address, "d@localhost");
}

static void test_agent_breaks(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = { "a@localhost", NULL };
	char id[QFILE_ID_MAX];
	snprintf(id, sizeof(id), "%s", qfile_make(f, QUEUE_INCOMING, "s@x.org", rcpts, time(NULL)));
	start_default(f);
	qmgr_scan_recover(f->q);
	struct agent_req r;
	assert_true(agent_recv(f, &r));
	close(f->peer);
	f->peer = -1;
	pump(f);
	assert_true(in_queue(f, QUEUE_DEFERRED, id));
	struct qfile_msg *m = read_back(f, QUEUE_DEFERRED, id);
	assert_string_equal(m->defer_reason, QMGR_REASON_LOCAL_DOWN);
	qfile_msg_free(&m);
	assert_true(log_has(f, "local delivery agent connection: closed by the agent"));
}

static void test_malformed_reply_drops_agent(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = { "a@localhost", NULL };
	char id[QFILE_ID_MAX];
	snprintf(id, sizeof(id), "%s", qfile_make(f, QUEUE_INCOMING, "s@x.org", rcpts, time(NULL)));
	start_default(f);
	qmgr_scan_recover(f->q);
	struct agent_req r;
	assert_true(agent_recv(f, &r));
	agent_reply(f, r.req, "status=sent\ndsn=9.9.9");
	assert_true(in_queue(f, QUEUE_DEFERRED, id));
	assert_true(log_has(f, "malformed reply: bad or repeated dsn"));
	/* A reply to a request never made is also fatal for the connection. */
	fixture_stop(f);
	assert_int_equal(queue_move(f->dir, id, QUEUE_DEFERRED, QUEUE_INCOMING), 0);
	start_default(f);
	qmgr_scan_recover(f->q);
	assert_true(agent_recv(f, &r));
	agent_reply(f, "999", "status=sent\ndsn=2.0.0");
	assert_true(in_queue(f, QUEUE_DEFERRED, id));
	assert_true(log_has(f, "reply to an unknown request"));
}

static void test_deferred_due_and_flush(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = { "far@remote.org", NULL };
	char due[QFILE_ID_MAX], later[QFILE_ID_MAX];
	snprintf(due, sizeof(due), "%s", qfile_make(f, QUEUE_DEFERRED, "s@x.org", rcpts, time(NULL)));
	snprintf(later, sizeof(later), "%s",
		 qfile_make(f, QUEUE_DEFERRED, "s@x.org", rcpts, time(NULL)));
	struct buf p = BUF_INIT;
	queue_path(&p, f->dir, QUEUE_DEFERRED, later);
	struct timespec ts[2] = { { time(NULL), 0 }, { time(NULL) + 3600, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, buf_cstr(&p), ts, 0), 0);
	buf_deinit(&p);
	start_default(f);
	qmgr_scan_recover(f->q);
	pump(f);
	struct qfile_msg *m = read_back(f, QUEUE_DEFERRED, due);
	assert_int_equal(m->attempts, 1); /* tried */
	qfile_msg_free(&m);
	m = read_back(f, QUEUE_DEFERRED, later);
	assert_int_equal(m->attempts, 0); /* not due: untouched */
	qfile_msg_free(&m);
	/* "D" does not take what is not due; "F" takes everything once. */
	qmgr_fifo_line(f->q, "D");
	pump(f);
	m = read_back(f, QUEUE_DEFERRED, later);
	assert_int_equal(m->attempts, 0);
	qfile_msg_free(&m);
	qmgr_fifo_line(f->q, "F");
	pump(f);
	m = read_back(f, QUEUE_DEFERRED, later);
	assert_int_equal(m->attempts, 1);
	qfile_msg_free(&m);
	m = read_back(f, QUEUE_DEFERRED, due);
	assert_int_equal(m->attempts, 2);
	qfile_msg_free(&m);
	qmgr_fifo_line(f->q, "X bogus\x01");
	assert_true(log_has(f, "ignoring unknown wake-up request \"X bogus?\""));
}

static void test_incoming_wakeup(void **state)
{
	struct fixture *f = *state;
	const char *rcpts[] = { "a@localhost", NULL };
	start_default(f);
	qmgr_scan_recover(f->q);
	pump(f);
	char id[QFILE_ID_MAX], line[64];
	snprintf(id, sizeof(id), "%s", qfile_make(f, QUEUE_INCOMING, "s@x.org", rcpts, time(NULL)));
	snprintf(line, sizeof(line), "I %s", id);
	qmgr_fifo_line(f->q, line);
	struct agent_req r;
	assert_true(agent_recv(f, &r));
	assert_string_equal(r.queue_id, id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_corrupt_files_quarantined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remote_deferred, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_sent_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_deferred_and_bounced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expansion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expansion_loop_bounced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_null_sender_bounce_lifetime, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_done_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window_and_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_per_recipient_concurrency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_process_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_breaks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_reply_drops_agent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deferred_due_and_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incoming_wakeup, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
