/* smtp_proto_test.c - encoding and decoding of the qmgr <-> smtp protocol:
 * round trips, control characters, and every malformed packet the decoders
 * must refuse (limits at max-1, max, max+1 recipients). */
#include "mail/smtp_proto.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_request_round_trip(void **state)
{
	(void)state;
	struct smtp_proto_rcpt rc[2] = {
		{ 0, "marc@machin.test", "SUCCESS,FAILURE", "rfc822;marc@machin.test" },
		{ 3, "x\ny@machin.test", "", "" },
	};
	struct smtp_proto_request r = { 42, "ABC123", "fred@truc.test", "machin.test", true, 2525,
					1700000000, 123456, rc, 2 };
	struct buf b = BUF_INIT;
	const char *err;
	assert_int_equal(smtp_proto_request_encode(&b, &r, &err), 0);
	struct smtp_proto_request d;
	assert_int_equal(smtp_proto_request_decode(b.data, b.len, &d, &err), 0);
	assert_int_equal(d.req, 42);
	assert_string_equal(d.queue_id, "ABC123");
	assert_string_equal(d.sender, "fred@truc.test");
	assert_string_equal(d.nexthop, "machin.test");
	assert_true(d.no_mx);
	assert_int_equal(d.port, 2525);
	assert_int_equal(d.active_sec, 1700000000);
	assert_int_equal(d.active_usec, 123456);
	assert_int_equal(d.n_rcpts, 2);
	assert_int_equal(d.rcpts[1].index, 3);
	assert_string_equal(d.rcpts[0].notify, "SUCCESS,FAILURE");
	assert_string_equal(d.rcpts[0].orcpt, "rfc822;marc@machin.test");
	/* A newline in a value cannot start a new key. */
	assert_string_equal(d.rcpts[1].address, "x?y@machin.test");
	smtp_proto_request_clear(&d);
	buf_deinit(&b);
}

static void test_request_bad(void **state)
{
	(void)state;
	static const struct {
		const char *name, *pkt;
		uint64_t req; /* echoed */
	} rows[] = {
		{ "empty", "", 0 },
		{ "no key", "req=1\nnonsense", 1 },
		{ "bad queue id", "req=1\nqueue_id=a/b\nsender=\nnexthop=h\nrcpt=0\t\t\tx", 1 },
		{ "missing rcpt", "req=2\nqueue_id=AB\nsender=\nnexthop=h", 2 },
		{ "rcpt without tabs", "req=1\nqueue_id=AB\nsender=\nnexthop=h\nrcpt=0 x", 1 },
		{ "rcpt empty address", "req=1\nqueue_id=AB\nsender=\nnexthop=h\nrcpt=0\t\t\t", 1 },
		{ "bad index", "req=1\nqueue_id=AB\nsender=\nnexthop=h\nrcpt=-1\t\t\tx", 1 },
		{ "port 0", "req=1\nqueue_id=AB\nsender=\nnexthop=h\nport=0\nrcpt=0\t\t\tx", 1 },
		{ "port 65536", "req=1\nqueue_id=AB\nsender=\nnexthop=h\nport=65536\nrcpt=0\t\t\tx", 1 },
		{ "repeated req", "req=1\nreq=2", 1 },
		{ "bad no_mx", "req=1\nqueue_id=AB\nsender=\nnexthop=h\nno_mx=2\nrcpt=0\t\t\tx", 1 },
		{ "control char", "req=1\nqueue_id=AB\nsender=a\001b\nnexthop=h\nrcpt=0\t\t\tx", 1 },
		{ "no nexthop", "req=1\nqueue_id=AB\nsender=\nrcpt=0\t\t\tx", 1 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smtp_proto_request d;
		const char *err = NULL;
		if (smtp_proto_request_decode((const uint8_t *)rows[i].pkt, strlen(rows[i].pkt), &d,
					      &err) == 0)
			fail_msg("%s: accepted", rows[i].name);
		assert_non_null(err);
		assert_int_equal(d.req, rows[i].req);
	}
	/* The minimal valid request, port defaulting to 25. */
	const char *ok = "req=7\nqueue_id=AB\nsender=\nnexthop=h\nrcpt=0\t\t\tx@y\nfuture=1";
	struct smtp_proto_request d;
	const char *err;
	assert_int_equal(smtp_proto_request_decode((const uint8_t *)ok, strlen(ok), &d, &err), 0);
	assert_int_equal(d.port, 25);
	assert_false(d.no_mx);
	assert_string_equal(d.sender, "");
	smtp_proto_request_clear(&d);
}

static void test_request_rcpt_limit(void **state)
{
	(void)state;
	size_t counts[] = { SMTP_PROTO_MAX_RCPTS - 1, SMTP_PROTO_MAX_RCPTS,
			    SMTP_PROTO_MAX_RCPTS + 1 };
	for (size_t c = 0; c < 3; c++) {
		struct buf b = BUF_INIT;
		buf_append_str(&b, "req=1\nqueue_id=AB\nsender=\nnexthop=h");
		for (size_t i = 0; i < counts[c]; i++)
			buf_printf(&b, "\nrcpt=%zu\t\t\tu%zu@h", i, i);
		struct smtp_proto_request d;
		const char *err;
		int r = smtp_proto_request_decode(b.data, b.len, &d, &err);
		assert_int_equal(r, counts[c] <= SMTP_PROTO_MAX_RCPTS ? 0 : -1);
		if (r == 0) {
			assert_int_equal(d.n_rcpts, counts[c]);
			smtp_proto_request_clear(&d);
		}
		/* The encoder refuses what the decoder would refuse. */
		struct smtp_proto_rcpt *rc = calloc(counts[c], sizeof(*rc));
		for (size_t i = 0; i < counts[c]; i++)
			rc[i] = (struct smtp_proto_rcpt){ (unsigned)i, "u@h", "", "" };
		struct smtp_proto_request req = { 1, "AB", "", "h", false, 25, 0, 0, rc, counts[c] };
		assert_int_equal(smtp_proto_request_encode(&b, &req, &err),
				 counts[c] <= SMTP_PROTO_MAX_RCPTS ? 0 : -1);
		free(rc);
		buf_deinit(&b);
	}
}

static void test_reply_round_trip(void **state)
{
	(void)state;
	struct smtp_proto_result res[3] = {
		{ 0, SMTP_PROTO_SENT, "2.0.0", "250 2.0.0 Ok: queued as X", true },
		{ 1, SMTP_PROTO_BOUNCED, "5.1.1",
		  "host mx[127.0.0.3] said: 550 5.1.1 <x>: nope\t(in reply to RCPT TO command)",
		  false },
		{ 2, SMTP_PROTO_DEFERRED, "4.4.1", "connect to mx[127.0.0.3]:25: refused", false },
	};
	struct smtp_proto_reply r = { 9, "mx[127.0.0.3]:25", true, res, 3 };
	struct buf b = BUF_INIT;
	const char *err;
	assert_int_equal(smtp_proto_reply_encode(&b, &r, &err), 0);
	struct smtp_proto_reply d;
	assert_int_equal(smtp_proto_reply_decode(b.data, b.len, &d, &err), 0);
	assert_int_equal(d.req, 9);
	assert_string_equal(d.relay, "mx[127.0.0.3]:25");
	assert_true(d.dsn_announced);
	assert_int_equal(d.n_results, 3);
	assert_true(d.results[0].relayed);
	assert_int_equal(d.results[1].status, SMTP_PROTO_BOUNCED);
	assert_string_equal(d.results[1].text,
			    "host mx[127.0.0.3] said: 550 5.1.1 <x>: nope?(in reply to RCPT TO command)");
	assert_string_equal(d.results[2].dsn, "4.4.1");
	smtp_proto_reply_clear(&d);
	buf_deinit(&b);
}

static void test_reply_bad(void **state)
{
	(void)state;
	static const struct {
		const char *name, *pkt;
	} rows[] = {
		{ "no req", "relay=none" },
		{ "unknown status", "req=1\nresult=0\tlost\t4.0.0\t-\tx" },
		{ "status/dsn disagree", "req=1\nresult=0\tsent\t5.0.0\t-\tx" },
		{ "bad dsn", "req=1\nresult=0\tdeferred\t4.0\t-\tx" },
		{ "bad relayed", "req=1\nresult=0\tsent\t2.0.0\tyes\tx" },
		{ "missing fields", "req=1\nresult=0\tsent" },
		{ "bad index", "req=1\nresult=x\tsent\t2.0.0\t-\tx" },
		{ "NUL", "req=1\0" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smtp_proto_reply d;
		const char *err = NULL;
		size_t len = strlen(rows[i].pkt) + (strcmp(rows[i].name, "NUL") == 0);
		if (smtp_proto_reply_decode((const uint8_t *)rows[i].pkt, len, &d, &err) == 0)
			fail_msg("%s: accepted", rows[i].name);
		assert_non_null(err);
	}
	struct smtp_proto_reply d;
	const char *err;
	const char *ok = "req=1";
	assert_int_equal(smtp_proto_reply_decode((const uint8_t *)ok, 5, &d, &err), 0);
	assert_string_equal(d.relay, "none");
	assert_int_equal(d.n_results, 0);
	smtp_proto_reply_clear(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_round_trip),
		cmocka_unit_test(test_request_bad),
		cmocka_unit_test(test_request_rcpt_limit),
		cmocka_unit_test(test_reply_round_trip),
		cmocka_unit_test(test_reply_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
