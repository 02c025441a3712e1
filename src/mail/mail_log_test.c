/* mail_log_test.c - golden tests for mail_log.c: each row builds one log
 * text and compares it with the exact line Postfix would log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mail/mail_log.h"

static void check(struct buf *b, const char *name, const char *expected)
{
	if (strcmp(buf_cstr(b), expected) != 0)
		fail_msg("%s:\n got  '%s'\n want '%s'", name, buf_cstr(b), expected);
	buf_reset(b);
}

static void test_session_lines(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	mail_log_connect(&b, "chris.maison.mrs", "192.168.0.10");
	check(&b, "connect", "connect from chris.maison.mrs[192.168.0.10]");
	mail_log_connect(&b, NULL, "2001:db8::1");
	check(&b, "connect unknown", "connect from unknown[2001:db8::1]");

	const struct mail_log_cmd_count all_ok[] = {
		{ "helo", 0, 0 }, { "ehlo", 1, 1 }, { "starttls", 0, 0 }, { "auth", 0, 0 },
		{ "mail", 1, 1 }, { "rcpt", 1, 1 }, { "data", 1, 1 }, { "quit", 1, 1 },
		{ "unknown", 0, 0 },
	};
	mail_log_disconnect(&b, "chris.maison.mrs", "192.168.0.10", all_ok, 9);
	check(&b, "disconnect ok",
	      "disconnect from chris.maison.mrs[192.168.0.10] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5");
	const struct mail_log_cmd_count some_failed[] = {
		{ "ehlo", 1, 1 }, { "mail", 1, 1 }, { "rcpt", 2, 3 }, { "data", 0, 1 },
		{ "rset", 1, 1 }, { "quit", 1, 1 }, { "unknown", 0, 1 },
	};
	mail_log_disconnect(&b, "x", "1.2.3.4", some_failed, 7);
	check(&b, "disconnect failures",
	      "disconnect from x[1.2.3.4] ehlo=1 mail=1 rcpt=2/3 data=0/1 rset=1 quit=1 unknown=0/1 commands=6/9");
	mail_log_disconnect(&b, "x", "1.2.3.4", NULL, 0);
	check(&b, "disconnect nothing", "disconnect from x[1.2.3.4] commands=0");

	mail_log_client(&b, "61D3F800081", "chris.maison.mrs", "192.168.0.10", NULL, NULL);
	check(&b, "client", "61D3F800081: client=chris.maison.mrs[192.168.0.10]");
	mail_log_client(&b, "61D3F800081", "h", "10.0.0.1", "PLAIN", "chris");
	check(&b, "client sasl",
	      "61D3F800081: client=h[10.0.0.1], sasl_method=PLAIN, sasl_username=chris");

	struct mail_log_reject r = { NULL, NULL, "RCPT", "chris.maison.mrs", "192.168.0.10",
				     "554 5.7.1 <x@free.fr>: Relay access denied", "chris@maison.mrs",
				     "x@free.fr", "ESMTP", "chris" };
	mail_log_reject(&b, &r);
	check(&b, "reject",
	      "NOQUEUE: reject: RCPT from chris.maison.mrs[192.168.0.10]: 554 5.7.1 <x@free.fr>: "
	      "Relay access denied; from=<chris@maison.mrs> to=<x@free.fr> proto=ESMTP helo=<chris>");
	struct mail_log_reject r2 = { "ABC", "defer", "MAIL", "h", "1.2.3.4",
				      "451 4.3.0 Temporary lookup failure", "", NULL, "SMTP", NULL };
	mail_log_reject(&b, &r2);
	check(&b, "reject partial",
	      "ABC: defer: MAIL from h[1.2.3.4]: 451 4.3.0 Temporary lookup failure; from=<> proto=SMTP");
	buf_deinit(&b);
}

static void test_queue_lines(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	mail_log_pickup(&b, "61D3F800081", 501, "chris");
	check(&b, "pickup", "61D3F800081: uid=501 from=<chris>");
	mail_log_message_id(&b, "61D3F800081", "20030511140623.61D3F800081@gw1.maison.mrs");
	check(&b, "message-id",
	      "61D3F800081: message-id=<20030511140623.61D3F800081@gw1.maison.mrs>");
	mail_log_message_id(&b, "Q", "");
	check(&b, "message-id empty", "Q: message-id=<>");
	mail_log_queue_active(&b, "61D3F800081", "chris@gw1.maison.mrs", 227, 1);
	check(&b, "active", "61D3F800081: from=<chris@gw1.maison.mrs>, size=227, nrcpt=1 (queue active)");
	mail_log_queue_active(&b, "25CD28000BD", "", 2042, 1);
	check(&b, "active null", "25CD28000BD: from=<>, size=2042, nrcpt=1 (queue active)");
	mail_log_removed(&b, "61D3F800081");
	check(&b, "removed", "61D3F800081: removed");
	mail_log_notification(&b, "61D3F800081", NULL, "25CD28000BD");
	check(&b, "bounce", "61D3F800081: sender non-delivery notification: 25CD28000BD");
	mail_log_notification(&b, "61D3F800081", "delay status", "1A");
	check(&b, "delay notice", "61D3F800081: sender delay status notification: 1A");
	/* control characters cannot forge a new line */
	mail_log_pickup(&b, "Q", 0, "a\nQ: removed");
	check(&b, "control chars", "Q: uid=0 from=<a?Q: removed>");
	buf_deinit(&b);
}

static void test_delay_format(void **state)
{
	(void)state;
	static const struct {
		long sec, usec;
		const char *out;
	} cases[] = {
		{ 0, 0, "0" },
		{ 0, 4999, "0" },
		{ 0, 5000, "0.01" },
		{ 0, 50000, "0.05" },
		{ 0, 100000, "0.1" },
		{ 0, 123456, "0.12" },
		{ 0, 994999, "0.99" },
		{ 0, 995000, "1" },
		{ 1, 0, "1" },
		{ 1, 230000, "1.2" },
		{ 1, 250000, "1.3" },
		{ 9, 949999, "9.9" },
		{ 9, 950000, "10" },
		{ 10, 0, "10" },
		{ 34, 499999, "34" },
		{ 34, 500000, "35" },
		{ 12345, 0, "12345" },
		{ -1, 0, "0" },
	};
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mail_log_format_delay(&b, cases[i].sec, cases[i].usec);
		if (strcmp(buf_cstr(&b), cases[i].out) != 0)
			fail_msg("%ld.%06ld: got %s want %s", cases[i].sec, cases[i].usec,
				 buf_cstr(&b), cases[i].out);
		buf_reset(&b);
	}
	buf_deinit(&b);
}

static struct timeval tv(long sec, long usec)
{
	struct timeval t = { sec, usec };
	return t;
}

static void test_delivery(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	struct mail_log_delivery d = {
		"351BD800081", "chris@gw1.maison.mrs", "root", "local",
		tv(1000, 0), tv(1000, 50000), tv(1000, 60000), tv(0, 0), tv(1000, 120000),
		"2.0.0", "sent", "delivered to mailbox",
	};
	mail_log_delivery(&b, &d);
	check(&b, "local",
	      "351BD800081: to=<chris@gw1.maison.mrs>, orig_to=<root>, relay=local, delay=0.12, "
	      "delays=0.05/0.01/0/0.06, dsn=2.0.0, status=sent (delivered to mailbox)");

	d.orig_to = "CHRIS@gw1.maison.mrs";
	mail_log_delivery(&b, &d);
	check(&b, "orig_to equal",
	      "351BD800081: to=<chris@gw1.maison.mrs>, relay=local, delay=0.12, "
	      "delays=0.05/0.01/0/0.06, dsn=2.0.0, status=sent (delivered to mailbox)");

	struct mail_log_delivery smtp = {
		"61D3F800081", "christian.caleca@free.fr", "", "mx.free.fr[213.228.0.13]:25",
		tv(1000, 0), tv(1000, 300000), tv(1001, 0), tv(1033, 0), tv(1034, 0),
		"5.7.1", "bounced",
		"host mx.free.fr[213.228.0.13] said: 553 sorry, your envelope sender domain must "
		"exist (#5.7.1) (in reply to MAIL FROM command)",
	};
	mail_log_delivery(&b, &smtp);
	check(&b, "smtp bounced",
	      "61D3F800081: to=<christian.caleca@free.fr>, relay=mx.free.fr[213.228.0.13]:25, "
	      "delay=34, delays=0.3/0.7/32/1, dsn=5.7.1, status=bounced (host mx.free.fr[213.228.0.13] "
	      "said: 553 sorry, your envelope sender domain must exist (#5.7.1) (in reply to MAIL "
	      "FROM command))");

	struct mail_log_delivery qmgr = {
		"A1", "x@y", NULL, "none", tv(1000, 0), tv(1002, 0), tv(0, 0), tv(0, 0),
		tv(1003, 500000), "4.4.1", "deferred", "connect to y: Connection refused",
	};
	mail_log_delivery(&b, &qmgr);
	check(&b, "no agent",
	      "A1: to=<x@y>, relay=none, delay=3.5, delays=2/1.5/0/0, dsn=4.4.1, "
	      "status=deferred (connect to y: Connection refused)");

	struct mail_log_delivery early = {
		"A2", "x@y", NULL, "none", tv(1000, 0), tv(0, 0), tv(0, 0), tv(0, 0),
		tv(999, 0), "5.1.1", "bounced", "unknown user",
	};
	mail_log_delivery(&b, &early);
	check(&b, "no qmgr, clock backwards",
	      "A2: to=<x@y>, relay=none, delay=0, delays=0/0/0/0, dsn=5.1.1, "
	      "status=bounced (unknown user)");
	buf_deinit(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session_lines),
		cmocka_unit_test(test_queue_lines),
		cmocka_unit_test(test_delay_format),
		cmocka_unit_test(test_delivery),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
