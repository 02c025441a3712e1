/* qmgr_local_test.c - the dlv.h protocol as the queue manager speaks it:
 * request encoding, reply decoding (round trip, malformed replies, sizes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mail/dlv.h"
#include "qmgr/qmgr.h"

static void test_request_encode(void **state)
{
	struct buf b = BUF_INIT;
	const char *error = NULL;
	(void)state;
	struct qmgr_dlv_request r = { 7, "ABC123", 2, "joe@example.com", "alias@example.com",
				      "local" };
	assert_int_equal(qmgr_dlv_request_encode(&b, &r, &error), 0);
	assert_string_equal(buf_cstr(&b), "req=7\nqueue_id=ABC123\nrcpt=2\naddress=joe@example.com\n"
					  "orig_to=alias@example.com\nclass=local");
	/* No orig_to: the key is absent; control characters cannot split
	 * a line. */
	struct qmgr_dlv_request r2 = { 8, "ABC123", 0, "evil\nreq=9@x", NULL, "virtual" };
	assert_int_equal(qmgr_dlv_request_encode(&b, &r2, &error), 0);
	assert_string_equal(buf_cstr(&b),
			    "req=8\nqueue_id=ABC123\nrcpt=0\naddress=evil?req=9@x\nclass=virtual");
	buf_deinit(&b);
}

static void test_request_size_limit(void **state)
{
	struct buf b = BUF_INIT;
	const char *error = NULL;
	(void)state;
	/* Fixed part of the request below, then the address fills it up. */
	const char *fixed = "req=1\nqueue_id=A\nrcpt=0\naddress=\nclass=local";
	size_t fixed_len = strlen(fixed);
	static const struct {
		const char *name;
		long delta; /* relative to DLV_MAX_PACKET */
		int expect;
	} rows[] = {
		{ "max-1", -1, 0 },
		{ "max", 0, 0 },
		{ "max+1", 1, -1 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		size_t alen = DLV_MAX_PACKET - fixed_len + (size_t)rows[i].delta;
		char *addr = malloc(alen + 1);
		memset(addr, 'a', alen);
		addr[alen] = '\0';
		struct qmgr_dlv_request r = { 1, "A", 0, addr, NULL, "local" };
		int ret = qmgr_dlv_request_encode(&b, &r, &error);
		if (ret != rows[i].expect)
			fail_msg("%s: got %d", rows[i].name, ret);
		if (ret == 0)
			assert_int_equal(b.len, DLV_MAX_PACKET + rows[i].delta);
		free(addr);
	}
	buf_deinit(&b);
}

static int decode(const char *text, struct qmgr_dlv_reply *r, const char **error)
{
	return qmgr_dlv_reply_decode((const uint8_t *)text, strlen(text), r, error);
}

static void test_reply_valid(void **state)
{
	static const struct {
		const char *name;
		const char *text;
		uint64_t req;
		enum qmgr_dlv_status status;
		const char *dsn;
		const char *reason;
		size_t n_forwards;
	} rows[] = {
		{ "sent", "req=1\nstatus=sent\ndsn=2.0.0\ntext=delivered to mailbox", 1,
		  QMGR_DLV_SENT, "2.0.0", "delivered to mailbox", 0 },
		{ "trailing newline", "req=2\nstatus=deferred\ndsn=4.2.2\ntext=quota\n", 2,
		  QMGR_DLV_DEFERRED, "4.2.2", "quota", 0 },
		{ "keys in any order", "dsn=5.1.1\ntext=unknown user\nstatus=bounced\nreq=3", 3,
		  QMGR_DLV_BOUNCED, "5.1.1", "unknown user", 0 },
		{ "no text", "req=4\nstatus=sent\ndsn=2.0.0", 4, QMGR_DLV_SENT, "2.0.0", "", 0 },
		{ "expanded with forwards",
		  "req=5\nstatus=expanded\ndsn=2.0.0\ntext=aliased\nforward=a@x.org\nforward=b@y.org",
		  5, QMGR_DLV_EXPANDED, "2.0.0", "aliased", 2 },
		{ "sent with a forward", "req=6\nstatus=sent\ndsn=2.0.0\nforward=c@z.org", 6,
		  QMGR_DLV_SENT, "2.0.0", "", 1 },
		{ "unknown key ignored", "req=7\nstatus=sent\ndsn=2.0.0\nnew_key=whatever", 7,
		  QMGR_DLV_SENT, "2.0.0", "", 0 },
		{ "three-digit dsn parts", "req=18446744073709551615\nstatus=deferred\ndsn=4.123.456",
		  UINT64_MAX, QMGR_DLV_DEFERRED, "4.123.456", "", 0 },
		{ "text with = and control char", "req=9\nstatus=sent\ndsn=2.0.0\ntext=a=b\tc", 9,
		  QMGR_DLV_SENT, "2.0.0", "a=b?c", 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct qmgr_dlv_reply r;
		const char *error = NULL;
		if (decode(rows[i].text, &r, &error) < 0)
			fail_msg("%s: rejected: %s", rows[i].name, error);
		assert_true(r.req == rows[i].req);
		assert_int_equal(r.status, rows[i].status);
		assert_string_equal(r.dsn, rows[i].dsn);
		assert_string_equal(r.text, rows[i].reason);
		assert_int_equal(r.n_forwards, rows[i].n_forwards);
		qmgr_dlv_reply_clear(&r);
	}
}

static void test_reply_forwards_content(void **state)
{
	struct qmgr_dlv_reply r;
	const char *error;
	(void)state;
	assert_int_equal(decode("req=1\nstatus=expanded\ndsn=2.0.0\nforward=a@x\nforward=\"q r\"@y",
				&r, &error), 0);
	assert_string_equal(r.forwards[0], "a@x");
	assert_string_equal(r.forwards[1], "\"q r\"@y");
	qmgr_dlv_reply_clear(&r);
}

static void test_reply_malformed(void **state)
{
	static const struct {
		const char *name;
		const char *text;
	} rows[] = {
		{ "empty", "" },
		{ "missing req", "status=sent\ndsn=2.0.0" },
		{ "missing status", "req=1\ndsn=2.0.0" },
		{ "missing dsn", "req=1\nstatus=sent" },
		{ "bad req", "req=x1\nstatus=sent\ndsn=2.0.0" },
		{ "negative req", "req=-1\nstatus=sent\ndsn=2.0.0" },
		{ "req overflow", "req=18446744073709551616\nstatus=sent\ndsn=2.0.0" },
		{ "repeated req", "req=1\nreq=2\nstatus=sent\ndsn=2.0.0" },
		{ "unknown status", "req=1\nstatus=delivered\ndsn=2.0.0" },
		{ "repeated status", "req=1\nstatus=sent\nstatus=sent\ndsn=2.0.0" },
		{ "dsn class 3", "req=1\nstatus=sent\ndsn=3.0.0" },
		{ "dsn too few parts", "req=1\nstatus=sent\ndsn=2.0" },
		{ "dsn four digits", "req=1\nstatus=sent\ndsn=2.1000.0" },
		{ "dsn trailing garbage", "req=1\nstatus=sent\ndsn=2.0.0x" },
		{ "repeated dsn", "req=1\nstatus=sent\ndsn=2.0.0\ndsn=2.0.0" },
		{ "line without =", "req=1\nstatus=sent\ndsn=2.0.0\ngarbage" },
		{ "empty key", "req=1\nstatus=sent\ndsn=2.0.0\n=x" },
		{ "empty line inside", "req=1\n\nstatus=sent\ndsn=2.0.0" },
		{ "two trailing newlines", "req=1\nstatus=sent\ndsn=2.0.0\n\n" },
		{ "forward with deferred", "req=1\nstatus=deferred\ndsn=4.0.0\nforward=a@b" },
		{ "forward with bounced", "req=1\nstatus=bounced\ndsn=5.0.0\nforward=a@b" },
		{ "expanded without forwards", "req=1\nstatus=expanded\ndsn=2.0.0" },
		{ "empty forward", "req=1\nstatus=sent\ndsn=2.0.0\nforward=" },
		{ "forward with control char", "req=1\nstatus=sent\ndsn=2.0.0\nforward=a\tb@c" },
		{ "repeated text", "req=1\nstatus=sent\ndsn=2.0.0\ntext=a\ntext=b" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct qmgr_dlv_reply r;
		const char *error = NULL;
		if (decode(rows[i].text, &r, &error) == 0)
			fail_msg("%s: accepted", rows[i].name);
		assert_non_null(error);
		assert_null(r.dsn);
		assert_null(r.forwards);
	}
	/* A NUL inside the packet. */
	struct qmgr_dlv_reply r;
	const char *error;
	static const char nul[] = "req=1\nstatus=sent\0\ndsn=2.0.0";
	assert_int_equal(qmgr_dlv_reply_decode((const uint8_t *)nul, sizeof(nul) - 1, &r, &error), -1);
}

static void test_reply_limits(void **state)
{
	struct buf b = BUF_INIT;
	struct qmgr_dlv_reply r;
	const char *error;
	(void)state;
	/* Packet size: max accepted, max+1 rejected. */
	const char *head = "req=1\nstatus=sent\ndsn=2.0.0\ntext=";
	for (long delta = -1; delta <= 1; delta++) {
		buf_reset(&b);
		buf_append_str(&b, head);
		while (b.len < (size_t)(DLV_MAX_PACKET + delta))
			buf_append_char(&b, 'x');
		int ret = qmgr_dlv_reply_decode(b.data, b.len, &r, &error);
		assert_int_equal(ret, delta <= 0 ? 0 : -1);
		if (ret == 0)
			qmgr_dlv_reply_clear(&r);
	}
	/* Forward count: QMGR_DLV_MAX_FORWARDS accepted, one more rejected. */
	for (int extra = -1; extra <= 1; extra++) {
		buf_reset(&b);
		buf_append_str(&b, "req=1\nstatus=expanded\ndsn=2.0.0");
		for (int i = 0; i < QMGR_DLV_MAX_FORWARDS + extra; i++)
			buf_printf(&b, "\nforward=u%d@x", i);
		int ret = qmgr_dlv_reply_decode(b.data, b.len, &r, &error);
		assert_int_equal(ret, extra <= 0 ? 0 : -1);
		if (ret == 0) {
			assert_int_equal(r.n_forwards, QMGR_DLV_MAX_FORWARDS + extra);
			qmgr_dlv_reply_clear(&r);
		}
	}
	/* Forward address length: 1000 accepted, 1001 rejected. */
	for (int len = 999; len <= 1001; len++) {
		buf_reset(&b);
		buf_append_str(&b, "req=1\nstatus=expanded\ndsn=2.0.0\nforward=");
		for (int i = 0; i < len; i++)
			buf_append_char(&b, 'a');
		int ret = qmgr_dlv_reply_decode(b.data, b.len, &r, &error);
		assert_int_equal(ret, len <= 1000 ? 0 : -1);
		if (ret == 0)
			qmgr_dlv_reply_clear(&r);
	}
	buf_deinit(&b);
}

/* Every prefix of a valid reply either decodes or is rejected cleanly. */
static void test_reply_truncations(void **state)
{
	const char *full = "req=12\nstatus=expanded\ndsn=2.0.0\ntext=ok\nforward=a@b.c";
	(void)state;
	for (size_t n = 0; n <= strlen(full); n++) {
		struct qmgr_dlv_reply r;
		const char *error;
		if (qmgr_dlv_reply_decode((const uint8_t *)full, n, &r, &error) == 0)
			qmgr_dlv_reply_clear(&r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_encode),
		cmocka_unit_test(test_request_size_limit),
		cmocka_unit_test(test_reply_valid),
		cmocka_unit_test(test_reply_forwards_content),
		cmocka_unit_test(test_reply_malformed),
		cmocka_unit_test(test_reply_limits),
		cmocka_unit_test(test_reply_truncations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
