/* dsn_test.c - tests for dsn.c: folding, remote reply parsing, NOTIFY,
 * durations (tables), one whole failure report against a golden text, and
 * every report type split with a minimal MIME parser to check the
 * boundary, the three parts and their fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "mail/dsn.h"

/* ------------------------------------------------------------ folding */

static void test_fold(void **state)
{
	(void)state;
	/* 78 columns: "x" * n helpers are written out so a row reads as is. */
	char w70[71], w74[75], w80[81];
	memset(w70, 'a', 70);
	w70[70] = '\0';
	memset(w74, 'b', 74);
	w74[74] = '\0';
	memset(w80, 'c', 80);
	w80[80] = '\0';
	struct buf t78 = BUF_INIT, e78 = BUF_INIT, t79 = BUF_INIT, e79 = BUF_INIT, tlong = BUF_INIT,
		   elong = BUF_INIT, tcont = BUF_INIT, econt = BUF_INIT;
	buf_printf(&t78, "%s 1234", w70);
	buf_printf(&e78, "P: %s 1234\n", w70);
	buf_printf(&t79, "%s 123456", w70);
	buf_printf(&e79, "P: %s\n    123456\n", w70);
	buf_printf(&tlong, "x %s y", w80);
	buf_printf(&elong, "P: x\n    %s\n    y\n", w80);
	buf_printf(&tcont, "%s %s z", w70, w74);
	buf_printf(&econt, "P: %s\n    %s\n    z\n", w70, w74);
	const struct {
		const char *name;
		const char *first;
		const char *text;
		const char *expected;
	} rows[] = {
		{ "short", "P: ", "hello world", "P: hello world\n" },
		{ "empty text", "P: ", "", "P: \n" },
		{ "exactly 78", "P: ", buf_cstr(&t78), buf_cstr(&e78) },
		{ "80 breaks", "P: ", buf_cstr(&t79), buf_cstr(&e79) },
		{ "word longer than a line", "P: ", buf_cstr(&tlong), buf_cstr(&elong) },
		{ "continuation indent counts", "P: ", buf_cstr(&tcont), buf_cstr(&econt) },
		{ "control characters", "P: ", "a\r\nb\tc\x01\xc3\xa9", "P: a??b c???\n" },
		{ "several spaces at a break", "P: ",
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa     b",
		  "P: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    b\n" },
	};
	/* The "exactly 78" row is 3 + 75 columns; "80 breaks" one more. */
	assert_int_equal(strlen(rows[2].expected) - 1, 78);
	assert_int_equal(strlen("P: ") + strlen(buf_cstr(&t79)), 80);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct buf out = BUF_INIT;
		dsn_fold(&out, rows[i].first, rows[i].text, DSN_LINE_WIDTH);
		if (strcmp(buf_cstr(&out), rows[i].expected) != 0)
			fail_msg("%s:\n got  '%s'\n want '%s'", rows[i].name, buf_cstr(&out),
				 rows[i].expected);
		buf_deinit(&out);
	}
	buf_deinit(&t78);
	buf_deinit(&e78);
	buf_deinit(&t79);
	buf_deinit(&e79);
	buf_deinit(&tlong);
	buf_deinit(&elong);
	buf_deinit(&tcont);
	buf_deinit(&econt);
}

/* ------------------------------------------------------------ small helpers */

static void test_remote_parse(void **state)
{
	(void)state;
	const struct {
		const char *name;
		const char *text;
		bool ok;
		const char *host;
		const char *reply;
	} rows[] = {
		{ "seeds", "host mx.free.fr[213.228.0.13] said: 553 sorry, your envelope sender "
			   "domain must exist (#5.7.1) (in reply to MAIL FROM command)",
		  true, "mx.free.fr",
		  "553 sorry, your envelope sender domain must exist (#5.7.1)" },
		{ "no in-reply", "host a.test[127.0.0.3] said: 550 5.1.1 no", true, "a.test",
		  "550 5.1.1 no" },
		{ "parenthesis inside reply", "host a.test[::1] said: 550 x (in reply to y) z", true,
		  "a.test", "550 x (in reply to y) z" },
		{ "local reason", "unknown user: \"nobody\"", false, NULL, NULL },
		{ "host without said", "host a.test[1.2.3.4] refused to talk to me", false, NULL,
		  NULL },
		{ "empty reply", "host a.test said:  (in reply to RCPT TO command)", false, NULL, NULL },
		{ "no name", "host [1.2.3.4] said: 550 x", false, NULL, NULL },
		{ "NULL", NULL, false, NULL, NULL },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *host = NULL, *reply = NULL;
		bool ok = dsn_remote_parse(rows[i].text, &host, &reply);
		if (ok != rows[i].ok)
			fail_msg("%s: got %d", rows[i].name, ok);
		if (ok) {
			assert_string_equal(host, rows[i].host);
			assert_string_equal(reply, rows[i].reply);
		}
		free(host);
		free(reply);
	}
}

static void test_notify(void **state)
{
	(void)state;
	const struct {
		const char *notify;
		bool failure, delay, success;
	} rows[] = {
		{ NULL, true, true, false },
		{ "", true, true, false },
		{ "NEVER", false, false, false },
		{ "SUCCESS", false, false, true },
		{ "FAILURE", true, false, false },
		{ "DELAY", false, true, false },
		{ "SUCCESS,FAILURE,DELAY", true, true, true },
		{ "failure,delay", true, true, false },
		{ "FAILUREX", false, false, false },
		{ "SUCCESS,", false, false, true },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *n = rows[i].notify != NULL ? rows[i].notify : "(null)";
		if (dsn_notify_wants(rows[i].notify, DSN_REPORT_FAILURE) != rows[i].failure)
			fail_msg("%s: failure", n);
		if (dsn_notify_wants(rows[i].notify, DSN_REPORT_DELAY) != rows[i].delay)
			fail_msg("%s: delay", n);
		if (dsn_notify_wants(rows[i].notify, DSN_REPORT_SUCCESS) != rows[i].success)
			fail_msg("%s: success", n);
		assert_true(dsn_notify_wants(rows[i].notify, DSN_REPORT_POSTMASTER));
	}
}

static void test_duration(void **state)
{
	(void)state;
	const struct {
		long sec;
		const char *text;
	} rows[] = {
		{ 0, "0 second(s)" },     { 1, "1 second(s)" },     { 59, "59 second(s)" },
		{ 60, "1 minute(s)" },    { 90, "90 second(s)" },   { 3600, "1 hour(s)" },
		{ 4 * 3600, "4 hour(s)" }, { 86400, "1 day(s)" },   { 5 * 86400, "5 day(s)" },
		{ 7 * 86400, "1 week(s)" }, { 36 * 3600, "36 hour(s)" }, { -5, "0 second(s)" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct buf b = BUF_INIT;
		dsn_duration_format(&b, rows[i].sec);
		if (strcmp(buf_cstr(&b), rows[i].text) != 0)
			fail_msg("%ld: got '%s' want '%s'", rows[i].sec, buf_cstr(&b), rows[i].text);
		buf_deinit(&b);
	}
}

/* ------------------------------------------------------------ whole reports */

static const char original[] =
	"To: christian.caleca@free.fr\n"
	"Subject: test distant\n"
	"Message-Id: <20030511140623.61D3F800081@gw1.maison.mrs>\n"
	"Date: Sun, 11 May 2003 14:06:23 +0000 (UTC)\n"
	"From: chris@gw1.maison.mrs (Christian Caleca)\n"
	"\n"
	"re re coucou\n";

/* 2003-05-11 14:06:57 UTC and 14:06:23 UTC. */
#define NOW 1052662017
#define ARRIVAL 1052661983

static const struct dsn_rcpt seeds_rcpt = {
	"christian.caleca@free.fr", NULL, NULL, DSN_ACTION_FAILED, "5.7.1",
	"host mx.free.fr[213.228.0.13] said: 553 sorry, your envelope sender domain "
	"must exist (#5.7.1) (in reply to MAIL FROM command)",
};

static struct dsn_report seeds_report(void)
{
	struct dsn_report r;
	memset(&r, 0, sizeof(r));
	r.type = DSN_REPORT_FAILURE;
	r.myhostname = "gw1.maison.mrs";
	r.myorigin = "gw1.maison.mrs";
	r.queue_id = "61D3F800081";
	r.report_id = "25CD28000BD";
	r.sender = "chris@gw1.maison.mrs";
	r.to = "chris@gw1.maison.mrs";
	r.arrival = ARRIVAL;
	r.now = NOW;
	r.delay_warning_time = 4 * 3600;
	r.maximal_queue_lifetime = 5 * 86400;
	r.rcpts = &seeds_rcpt;
	r.n_rcpts = 1;
	r.content = original;
	r.content_len = strlen(original);
	return r;
}

/* The seeds' report (002, "Undelivered Mail Returned to Sender"), in
 * today's Postfix words, with facteur's field names. */
static const char golden_failure[] =
	"Date: Sun, 11 May 2003 14:06:57 +0000 (UTC)\n"
	"From: MAILER-DAEMON@gw1.maison.mrs (Mail Delivery System)\n"
	"Subject: Undelivered Mail Returned to Sender\n"
	"To: chris@gw1.maison.mrs\n"
	"Auto-Submitted: auto-replied\n"
	"Message-Id: <20030511140657.25CD28000BD@gw1.maison.mrs>\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/report; report-type=delivery-status;\n"
	"\tboundary=\"61D3F800081.1052662017/gw1.maison.mrs\"\n"
	"Content-Transfer-Encoding: 7bit\n"
	"\n"
	"This is a MIME-encapsulated message.\n"
	"\n"
	"--61D3F800081.1052662017/gw1.maison.mrs\n"
	"Content-Description: Notification\n"
	"Content-Type: text/plain; charset=us-ascii\n"
	"\n"
	"This is the mail system at host gw1.maison.mrs.\n"
	"\n"
	"I'm sorry to have to inform you that your message could not\n"
	"be delivered to one or more recipients. It's attached below.\n"
	"\n"
	"For further assistance, please send mail to postmaster.\n"
	"\n"
	"If you do so, please include this problem report. You can\n"
	"delete your own text from the attached returned message.\n"
	"\n"
	"                   The mail system\n"
	"\n"
	"<christian.caleca@free.fr>: host mx.free.fr[213.228.0.13] said: 553 sorry,\n"
	"    your envelope sender domain must exist (#5.7.1) (in reply to MAIL FROM\n"
	"    command)\n"
	"\n"
	"--61D3F800081.1052662017/gw1.maison.mrs\n"
	"Content-Description: Delivery report\n"
	"Content-Type: message/delivery-status\n"
	"\n"
	"Reporting-MTA: dns; gw1.maison.mrs\n"
	"X-Facteur-Queue-ID: 61D3F800081\n"
	"X-Facteur-Sender: rfc822; chris@gw1.maison.mrs\n"
	"Arrival-Date: Sun, 11 May 2003 14:06:23 +0000 (UTC)\n"
	"\n"
	"Final-Recipient: rfc822; christian.caleca@free.fr\n"
	"Action: failed\n"
	"Status: 5.7.1\n"
	"Remote-MTA: dns; mx.free.fr\n"
	"Diagnostic-Code: smtp; 553 sorry, your envelope sender domain must exist\n"
	"    (#5.7.1)\n"
	"\n"
	"--61D3F800081.1052662017/gw1.maison.mrs\n"
	"Content-Description: Undelivered Message\n"
	"Content-Type: message/rfc822\n"
	"\n"
	"To: christian.caleca@free.fr\n"
	"Subject: test distant\n"
	"Message-Id: <20030511140623.61D3F800081@gw1.maison.mrs>\n"
	"Date: Sun, 11 May 2003 14:06:23 +0000 (UTC)\n"
	"From: chris@gw1.maison.mrs (Christian Caleca)\n"
	"\n"
	"re re coucou\n"
	"\n"
	"--61D3F800081.1052662017/gw1.maison.mrs--\n";

static void test_golden_failure(void **state)
{
	(void)state;
	struct dsn_report r = seeds_report();
	struct buf out = BUF_INIT;
	const char *error = NULL;
	assert_int_equal(dsn_report_build(&out, &r, &error), 0);
	if (strcmp(buf_cstr(&out), golden_failure) != 0)
		fail_msg("got:\n%s", buf_cstr(&out));
	/* No line is longer than 78 columns. */
	const char *p = buf_cstr(&out);
	while (*p != '\0') {
		size_t n = strcspn(p, "\n");
		assert_true(n <= DSN_LINE_WIDTH);
		p += n + (p[n] == '\n');
	}
	buf_deinit(&out);
}

/* A minimal MIME split: the top-level header block, the boundary, then the
 * parts (each its header block and body), checking the closing delimiter. */
struct part {
	char *headers;
	char *body;
};

struct split {
	char *top;
	char *boundary;
	struct part parts[8];
	size_t n;
	bool closed;
};

static void split_free(struct split *s)
{
	free(s->top);
	free(s->boundary);
	for (size_t i = 0; i < s->n; i++) {
		free(s->parts[i].headers);
		free(s->parts[i].body);
	}
	memset(s, 0, sizeof(*s));
}

static void mime_split(const char *msg, struct split *s)
{
	memset(s, 0, sizeof(*s));
	const char *end = strstr(msg, "\n\n");
	assert_non_null(end);
	s->top = xstrndup(msg, (size_t)(end - msg) + 1);
	const char *b = strstr(s->top, "boundary=\"");
	assert_non_null(b);
	b += 10;
	s->boundary = xstrndup(b, strcspn(b, "\""));
	struct buf delim = BUF_INIT, close = BUF_INIT;
	buf_printf(&delim, "\n--%s\n", s->boundary);
	buf_printf(&close, "\n--%s--\n", s->boundary);
	const char *p = strstr(end + 1, buf_cstr(&delim));
	while (p != NULL && s->n < 8) {
		const char *start = p + delim.len;
		const char *next = strstr(start, buf_cstr(&delim));
		const char *last = strstr(start, buf_cstr(&close));
		const char *stop = next != NULL ? next : last;
		assert_non_null(stop);
		const char *hend = strstr(start, "\n\n");
		assert_non_null(hend);
		assert_true(hend <= stop);
		s->parts[s->n].headers = xstrndup(start, (size_t)(hend - start) + 1);
		s->parts[s->n].body = xstrndup(hend + 2, (size_t)(stop - (hend + 2)) + 1);
		s->n++;
		if (next == NULL) {
			s->closed = last != NULL && strcmp(last, buf_cstr(&close)) == 0;
			break;
		}
		p = next;
	}
	buf_deinit(&delim);
	buf_deinit(&close);
}

static void test_report_types(void **state)
{
	(void)state;
	static const struct dsn_rcpt local_rcpt = {
		"nobody@example.test", "RFC822;alias@example.test", "alias@example.test",
		DSN_ACTION_FAILED, "5.1.1", "unknown user: \"nobody\"",
	};
	static const struct dsn_rcpt delayed_rcpt = {
		"marc@machin.test", NULL, NULL, DSN_ACTION_DELAYED, "4.4.1",
		"connect to mx1.machin.test[127.0.0.3]:25: Connection refused",
	};
	static const struct dsn_rcpt delivered_rcpt = {
		"fred@truc.test", NULL, "fred@truc.test", DSN_ACTION_DELIVERED, "2.0.0",
		"delivered to mailbox",
	};
	static const struct dsn_rcpt two_rcpts[] = {
		{ "a@x.test", NULL, NULL, DSN_ACTION_FAILED, NULL, NULL },
		{ "b@x.test", NULL, "c@x.test", DSN_ACTION_FAILED, "bogus", "no such user" },
	};
	const struct {
		const char *name;
		enum dsn_report_type type;
		const struct dsn_rcpt *rcpts;
		size_t n;
		bool ret_hdrs;
		const char *envid;
		const char *subject;
		const char *part3_type;
		const char *part3_desc;
		const char *const fields[8]; /* must appear in the delivery-status part */
		const char *const absent[4]; /* must not */
		const char *const text[3];   /* must appear in the notification */
	} rows[] = {
		{ "failure local", DSN_REPORT_FAILURE, &local_rcpt, 1, false, NULL,
		  "Undelivered Mail Returned to Sender", "message/rfc822", "Undelivered Message",
		  { "Final-Recipient: rfc822; nobody@example.test\n",
		    "Original-Recipient: rfc822; alias@example.test\n", "Action: failed\n",
		    "Status: 5.1.1\n", "Diagnostic-Code: X-Facteur; unknown user: \"nobody\"\n" },
		  { "Remote-MTA", "Will-Retry-Until", "Original-Envelope-Id" },
		  { "<nobody@example.test> (expanded from <alias@example.test>): unknown user:" } },
		{ "failure RET=HDRS with ENVID", DSN_REPORT_FAILURE, &seeds_rcpt, 1, true, "ENV-42",
		  "Undelivered Mail Returned to Sender", "text/rfc822-headers",
		  "Undelivered Message Headers",
		  { "Original-Envelope-Id: ENV-42\n", "Remote-MTA: dns; mx.free.fr\n",
		    "Action: failed\n" },
		  { "Original-Recipient" },
		  { "It's attached below." } },
		{ "delay warning", DSN_REPORT_DELAY, &delayed_rcpt, 1, false, NULL,
		  "Delayed Mail (still being retried)", "text/rfc822-headers", "Delayed Message Headers",
		  { "Action: delayed\n", "Status: 4.4.1\n",
		    "Diagnostic-Code: X-Facteur; connect to mx1.machin.test[127.0.0.3]:25:\n"
		    "    Connection refused\n",
		    "Will-Retry-Until: Fri, 16 May 2003 14:06:23 +0000 (UTC)\n" },
		  { "Remote-MTA" },
		  { "THIS IS A WARNING ONLY", "for more than 4 hour(s).",
		    "retried until it is 5 day(s) old." } },
		{ "success", DSN_REPORT_SUCCESS, &delivered_rcpt, 1, false, NULL,
		  "Successful Mail Delivery Report", "text/rfc822-headers", "Message Headers",
		  { "Action: delivered\n", "Status: 2.0.0\n",
		    "Diagnostic-Code: X-Facteur; delivered to mailbox\n" },
		  { "Original-Recipient", "Will-Retry-Until" },
		  { "successfully delivered", "<fred@truc.test>: delivered to mailbox" } },
		{ "postmaster copy, two recipients, defaults", DSN_REPORT_POSTMASTER, two_rcpts, 2,
		  false, NULL, "Postmaster Copy: Undelivered Mail", "text/rfc822-headers",
		  "Undelivered Message Headers",
		  { "Final-Recipient: rfc822; a@x.test\nAction: failed\nStatus: 5.0.0\n\n",
		    "Final-Recipient: rfc822; b@x.test\nOriginal-Recipient: rfc822; c@x.test\n"
		    "Action: failed\nStatus: 5.0.0\nDiagnostic-Code: X-Facteur; no such user\n" },
		  { "Remote-MTA" },
		  { "<a@x.test>: delivery failed\n", "<b@x.test> (expanded from <c@x.test>)" } },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct dsn_report r = seeds_report();
		r.type = rows[i].type;
		r.rcpts = rows[i].rcpts;
		r.n_rcpts = rows[i].n;
		r.is_ret_hdrs = rows[i].ret_hdrs;
		r.envid = rows[i].envid;
		struct buf out = BUF_INIT;
		const char *error = NULL;
		assert_int_equal(dsn_report_build(&out, &r, &error), 0);
		struct split s;
		mime_split(buf_cstr(&out), &s);
		if (s.n != 3 || !s.closed)
			fail_msg("%s: %zu parts, closed %d", rows[i].name, s.n, s.closed);
		struct buf subj = BUF_INIT;
		buf_printf(&subj, "\nSubject: %s\n", rows[i].subject);
		if (strstr(s.top, buf_cstr(&subj)) == NULL)
			fail_msg("%s: subject in\n%s", rows[i].name, s.top);
		buf_deinit(&subj);
		assert_non_null(strstr(s.top, "\nAuto-Submitted: auto-replied\n"));
		assert_non_null(strstr(s.top, "report-type=delivery-status;"));
		assert_non_null(strstr(s.parts[0].headers, "Content-Type: text/plain"));
		assert_non_null(strstr(s.parts[1].headers, "Content-Type: message/delivery-status"));
		struct buf t3 = BUF_INIT, d3 = BUF_INIT;
		buf_printf(&t3, "Content-Type: %s\n", rows[i].part3_type);
		buf_printf(&d3, "Content-Description: %s\n", rows[i].part3_desc);
		if (strstr(s.parts[2].headers, buf_cstr(&t3)) == NULL ||
		    strstr(s.parts[2].headers, buf_cstr(&d3)) == NULL)
			fail_msg("%s: part 3 headers\n%s", rows[i].name, s.parts[2].headers);
		buf_deinit(&t3);
		buf_deinit(&d3);
		for (size_t f = 0; f < 8 && rows[i].fields[f] != NULL; f++)
			if (strstr(s.parts[1].body, rows[i].fields[f]) == NULL)
				fail_msg("%s: no '%s' in\n%s", rows[i].name, rows[i].fields[f],
					 s.parts[1].body);
		for (size_t f = 0; f < 4 && rows[i].absent[f] != NULL; f++)
			if (strstr(s.parts[1].body, rows[i].absent[f]) != NULL)
				fail_msg("%s: unexpected '%s'", rows[i].name, rows[i].absent[f]);
		for (size_t f = 0; f < 3 && rows[i].text[f] != NULL; f++)
			if (strstr(s.parts[0].body, rows[i].text[f]) == NULL)
				fail_msg("%s: no '%s' in\n%s", rows[i].name, rows[i].text[f],
					 s.parts[0].body);
		/* Headers only: the body of the original is not there. */
		bool has_body = strstr(s.parts[2].body, "re re coucou") != NULL;
		if (has_body != (strcmp(rows[i].part3_type, "message/rfc822") == 0))
			fail_msg("%s: original body present %d", rows[i].name, has_body);
		assert_non_null(strstr(s.parts[2].body, "Subject: test distant\n"));
		split_free(&s);
		buf_deinit(&out);
	}
}

static void test_limits_and_errors(void **state)
{
	(void)state;
	const char *error = NULL;
	struct buf out = BUF_INIT;

	/* No recipient, no hostname: refused. */
	struct dsn_report r = seeds_report();
	r.n_rcpts = 0;
	assert_int_equal(dsn_report_build(&out, &r, &error), -1);
	assert_non_null(error);
	r = seeds_report();
	r.myhostname = "";
	assert_int_equal(dsn_report_build(&out, &r, &error), -1);
	assert_int_equal(out.len, 0);

	/* size_limit: the original is cut at the end of the line that
	 * crosses the limit (limit-1, limit, limit+1 bytes of 10-byte lines). */
	const struct {
		size_t content_lines;
		size_t limit;
		size_t expect_bytes;
	} rows[] = {
		{ 10, 100, 100 }, /* exactly the limit: everything */
		{ 10, 99, 100 },  /* the last line crosses it: kept whole */
		{ 10, 101, 100 }, /* below the limit */
		{ 20, 100, 100 }, /* longer: cut after line 10 */
		{ 20, 101, 110 }, /* line 11 crosses it */
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct buf c = BUF_INIT;
		buf_append_str(&c, "Subject: x\n\n");
		size_t head = c.len;
		for (size_t l = 0; l < rows[i].content_lines; l++)
			buf_append_str(&c, "123456789\n");
		r = seeds_report();
		r.content = buf_cstr(&c);
		r.content_len = c.len;
		r.size_limit = rows[i].limit + head;
		buf_reset(&out);
		assert_int_equal(dsn_report_build(&out, &r, &error), 0);
		struct split s;
		mime_split(buf_cstr(&out), &s);
		assert_int_equal(s.n, 3);
		/* The part body is the content plus the newline before the
		 * closing delimiter. */
		size_t got = strlen(s.parts[2].body) - 1 - head;
		if (got != rows[i].expect_bytes)
			fail_msg("row %zu: %zu bytes, want %zu", i, got, rows[i].expect_bytes);
		split_free(&s);
		buf_deinit(&c);
	}

	/* 8-bit content is declared; no original at all gives a place holder;
	 * an original without a final newline gets one. */
	static const char eight[] = "Subject: caf\xc3\xa9\n\nbody";
	r = seeds_report();
	r.content = eight;
	r.content_len = strlen(eight);
	buf_reset(&out);
	assert_int_equal(dsn_report_build(&out, &r, &error), 0);
	assert_non_null(strstr(buf_cstr(&out), "\nContent-Transfer-Encoding: 8bit\n"));
	assert_non_null(strstr(buf_cstr(&out), "\n\nbody\n\n--61D3F800081."));
	r.content = NULL;
	r.content_len = 0;
	buf_reset(&out);
	assert_int_equal(dsn_report_build(&out, &r, &error), 0);
	assert_non_null(strstr(buf_cstr(&out), "--- Undelivered message unavailable ---"));

	/* A hostile remote reply cannot add header lines. */
	static const struct dsn_rcpt evil = {
		"x@y.test", NULL, NULL, DSN_ACTION_FAILED, "5.0.0",
		"host h.test[1.2.3.4] said: 550 no\nX-Evil: yes (in reply to RCPT TO command)",
	};
	r = seeds_report();
	r.rcpts = &evil;
	buf_reset(&out);
	assert_int_equal(dsn_report_build(&out, &r, &error), 0);
	assert_null(strstr(buf_cstr(&out), "\nX-Evil"));
	assert_non_null(strstr(buf_cstr(&out), "Diagnostic-Code: smtp; 550 no?X-Evil: yes\n"));
	buf_deinit(&out);
}

int main(void)
{
	/* Dates in golden texts are UTC. */
	setenv("TZ", "UTC", 1);
	tzset();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fold),
		cmocka_unit_test(test_remote_parse),
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_golden_failure),
		cmocka_unit_test(test_report_types),
		cmocka_unit_test(test_limits_and_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
