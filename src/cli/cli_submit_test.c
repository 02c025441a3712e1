/* cli_submit_test.c - unit tests for the sendmail command line, the
 * message input filter, recipient splitting and the mailq format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli_submit.h"
#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/qfile.h"

#define MAXARGS 12

static void test_opts(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *argv[MAXARGS];
		int ret;
		enum sendmail_mode mode;
		bool extract, dot_ends;
		const char *sender, *full_name, *notify, *ret_opt, *envid;
		size_t n_rcpts;
		const char *first_rcpt;
		const char *error;
	} rows[] = {
		{ "plain", { "sendmail", "root" }, 0, SENDMAIL_MODE_ENQUEUE, false, true,
		  NULL, NULL, NULL, NULL, NULL, 1, "root", NULL },
		{ "-t -i", { "sendmail", "-t", "-i" }, 0, SENDMAIL_MODE_ENQUEUE, true, false,
		  NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL },
		{ "grouped -ti", { "sendmail", "-ti" }, 0, SENDMAIL_MODE_ENQUEUE, true, false,
		  NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL },
		{ "-oi", { "sendmail", "-oi", "a", "b" }, 0, SENDMAIL_MODE_ENQUEUE, false, false,
		  NULL, NULL, NULL, NULL, NULL, 2, "a", NULL },
		{ "-f attached", { "sendmail", "-fbob@x", "a" }, 0, SENDMAIL_MODE_ENQUEUE, false,
		  true, "bob@x", NULL, NULL, NULL, NULL, 1, "a", NULL },
		{ "-f separate", { "sendmail", "-f", "bob@x", "a" }, 0, SENDMAIL_MODE_ENQUEUE,
		  false, true, "bob@x", NULL, NULL, NULL, NULL, 1, "a", NULL },
		{ "-r", { "sendmail", "-r", "<>", "a" }, 0, SENDMAIL_MODE_ENQUEUE, false, true,
		  "<>", NULL, NULL, NULL, NULL, 1, "a", NULL },
		{ "-F -N -R -V", { "sendmail", "-F", "Chris C", "-N", "never", "-RHDRS", "-V", "e1",
				   "a" }, 0, SENDMAIL_MODE_ENQUEUE, false, true, NULL, "Chris C",
		  "never", "HDRS", "e1", 1, "a", NULL },
		{ "-bp", { "sendmail", "-bp" }, 0, SENDMAIL_MODE_MAILQ, false, true,
		  NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL },
		{ "-bi", { "sendmail", "-bi" }, 0, SENDMAIL_MODE_NEWALIAS, false, true,
		  NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL },
		{ "-I", { "sendmail", "-I" }, 0, SENDMAIL_MODE_NEWALIAS, false, true,
		  NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL },
		{ "-bs", { "sendmail", "-bs" }, 0, SENDMAIL_MODE_SMTP, false, true,
		  NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL },
		{ "-b s", { "sendmail", "-b", "s" }, 0, SENDMAIL_MODE_SMTP, false, true,
		  NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL },
		{ "-bm", { "sendmail", "-bm", "x" }, 0, SENDMAIL_MODE_ENQUEUE, false, true,
		  NULL, NULL, NULL, NULL, NULL, 1, "x", NULL },
		{ "-q", { "sendmail", "-q" }, 0, SENDMAIL_MODE_FLUSH, false, true,
		  NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL },
		{ "-q30m ignored", { "sendmail", "-q30m", "a" }, 0, SENDMAIL_MODE_ENQUEUE, false, true,
		  NULL, NULL, NULL, NULL, NULL, 1, "a", NULL },
		{ "mailq name", { "/usr/bin/mailq" }, 0, SENDMAIL_MODE_MAILQ, false, true,
		  NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL },
		{ "newaliases name", { "newaliases" }, 0, SENDMAIL_MODE_NEWALIAS, false, true,
		  NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL },
		{ "ignored options", { "sendmail", "-v", "-oem", "-odb", "-m", "-B8BITMIME", "-hx",
				       "a" }, 0, SENDMAIL_MODE_ENQUEUE, false, true, NULL, NULL,
		  NULL, NULL, NULL, 1, "a", NULL },
		{ "-- ends options", { "sendmail", "--", "-t" }, 0, SENDMAIL_MODE_ENQUEUE, false, true,
		  NULL, NULL, NULL, NULL, NULL, 1, "-t", NULL },
		{ "options stop at rcpt", { "sendmail", "a", "-t" }, 0, SENDMAIL_MODE_ENQUEUE, false,
		  true, NULL, NULL, NULL, NULL, NULL, 2, "a", NULL },
		{ "unknown option", { "sendmail", "-y" }, -1, 0, false, true, NULL, NULL, NULL, NULL,
		  NULL, 0, NULL, "usage" },
		{ "-f missing arg", { "sendmail", "-f" }, -1, 0, false, true, NULL, NULL, NULL, NULL,
		  NULL, 0, NULL, "requires an argument" },
		{ "-bz", { "sendmail", "-bz" }, -1, 0, false, true, NULL, NULL, NULL, NULL, NULL, 0,
		  NULL, "unsupported: -bz" },
		{ "-n", { "sendmail", "-n", "a" }, -1, 0, false, true, NULL, NULL, NULL, NULL, NULL,
		  0, NULL, "not supported" },
		{ "-qX", { "sendmail", "-qX" }, -1, 0, false, true, NULL, NULL, NULL, NULL, NULL, 0,
		  NULL, "-qX: only -q (flush the whole queue) is supported" },
		{ "-bp with rcpt", { "sendmail", "-bp", "a" }, -1, 0, false, true, NULL, NULL, NULL,
		  NULL, NULL, 0, NULL, "display queue mode requires no recipient" },
		{ "-t with -bs", { "sendmail", "-t", "-bs" }, -1, 0, false, true, NULL, NULL, NULL,
		  NULL, NULL, 0, NULL, "-t can be used only in delivery mode" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *argv[MAXARGS + 1] = { 0 };
		int argc = 0;
		while (argc < MAXARGS && rows[i].argv[argc] != NULL) {
			argv[argc] = (char *)rows[i].argv[argc];
			argc++;
		}
		struct sendmail_opts o;
		struct buf error = BUF_INIT;
		int ret = sendmail_opts_parse(argc, argv, &o, &error);
		if (ret != rows[i].ret)
			fail_msg("%s: ret %d (%s)", rows[i].name, ret, buf_cstr(&error));
		if (ret < 0) {
			if (strstr(buf_cstr(&error), rows[i].error) == NULL)
				fail_msg("%s: error '%s'", rows[i].name, buf_cstr(&error));
			buf_deinit(&error);
			continue;
		}
		if (o.mode != rows[i].mode || o.extract != rows[i].extract ||
		    o.dot_ends != rows[i].dot_ends || o.n_rcpts != rows[i].n_rcpts)
			fail_msg("%s: mode/flags/rcpts", rows[i].name);
#define CHECK_STR(field, want) do { \
		if ((want) == NULL ? (field) != NULL : \
		    ((field) == NULL || strcmp((field), (want)) != 0)) \
			fail_msg("%s: %s", rows[i].name, #field); \
	} while (0)
		CHECK_STR(o.sender, rows[i].sender);
		CHECK_STR(o.full_name, rows[i].full_name);
		CHECK_STR(o.notify, rows[i].notify);
		CHECK_STR(o.ret, rows[i].ret_opt);
		CHECK_STR(o.envid, rows[i].envid);
		if (rows[i].first_rcpt != NULL)
			assert_string_equal(o.rcpts[0], rows[i].first_rcpt);
		buf_deinit(&error);
	}
}

static void test_sender_normalize(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} rows[] = {
		{ "chris", "chris" },
		{ "<chris@x>", "chris@x" },
		{ "<>", "" },
		{ "", "" },
		{ " <a@b> ", "a@b" },
		{ "<", "<" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *s = sendmail_sender_normalize(rows[i].in);
		assert_string_equal(s, rows[i].out);
		free(s);
	}
}

static void test_input(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		bool dot_ends;
		const char *in;
		const char *out;
		const char *header;
	} rows[] = {
		{ "LF", true, "Subject: a\n\nbody\n", "Subject: a\n\nbody\n", "Subject: a\n" },
		{ "CRLF converted", true, "Subject: a\r\n\r\nbody\r\n", "Subject: a\n\nbody\n",
		  "Subject: a\n" },
		{ "LF input keeps CR", true, "S: a\n\nx\r\n", "S: a\n\nx\r\n", "S: a\n" },
		{ "dot ends", true, "S: a\n\nx\n.\nafter\n", "S: a\n\nx\n", "S: a\n" },
		{ "dot CRLF ends", true, "S: a\r\n\r\nx\r\n.\r\nafter\r\n", "S: a\n\nx\n", "S: a\n" },
		{ "-i keeps dot", false, "S: a\n\nx\n.\nafter\n", "S: a\n\nx\n.\nafter\n", "S: a\n" },
		{ "dot-dot kept", true, "S: a\n\n..\n", "S: a\n\n..\n", "S: a\n" },
		{ "From_ dropped", true, "From chris Sun May 11\n>From x\nS: a\n\nFrom me\n",
		  "S: a\n\nFrom me\n", "S: a\n" },
		{ "no final LF", true, "S: a\n\nlast", "S: a\n\nlast\n", "S: a\n" },
		{ "empty", true, "", "", "" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct sendmail_input in;
		struct buf out = BUF_INIT;
		sendmail_input_init(&in, rows[i].dot_ends, 1000);
		const char *p = rows[i].in;
		while (*p != '\0') {
			const char *nl = strchr(p, '\n');
			size_t len = nl != NULL ? (size_t)(nl - p) + 1 : strlen(p);
			if (!sendmail_input_line(&in, p, len, &out))
				break;
			p += len;
		}
		if (strcmp(buf_cstr(&out), rows[i].out) != 0)
			fail_msg("%s: got '%s'", rows[i].name, buf_cstr(&out));
		assert_string_equal(buf_cstr(&in.header), rows[i].header);
		sendmail_input_deinit(&in);
		buf_deinit(&out);
	}
}

static void test_header_cap(void **state)
{
	(void)state;
	/* The header copy is capped: max-1 and max kept, max+1 not. */
	static const struct {
		size_t cap;
		const char *header;
	} rows[] = {
		{ 6, "S: ab\n" }, { 7, "S: ab\n" }, { 5, "" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct sendmail_input in;
		struct buf out = BUF_INIT;
		sendmail_input_init(&in, true, rows[i].cap);
		assert_true(sendmail_input_line(&in, "S: ab\n", 6, &out));
		assert_string_equal(buf_cstr(&in.header), rows[i].header);
		assert_string_equal(buf_cstr(&out), "S: ab\n");
		sendmail_input_deinit(&in);
		buf_deinit(&out);
	}
}

static void test_header_recipients(void **state)
{
	(void)state;
	static const struct {
		const char *hdr;
		int n;
		const char *first;
	} rows[] = {
		{ "To: a@x\nCc: B <b@x>, c@x\nBcc: d@x\nSubject: s\n", 4, "a@x" },
		{ "Subject: s\nFrom: f@x\n", 0, NULL },
		{ "to: root\n", 1, "root" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char **list = NULL;
		int n = sendmail_header_recipients(rows[i].hdr, strlen(rows[i].hdr), &list);
		assert_int_equal(n, rows[i].n);
		if (rows[i].first != NULL)
			assert_string_equal(list[0], rows[i].first);
		if (list != NULL)
			str_list_free(&list);
	}
}

static void test_rcpt_split(void **state)
{
	(void)state;
	static const struct {
		const char *arg;
		const char *want[3];
	} rows[] = {
		{ "root", { "root" } },
		{ "a@x, b@y", { "a@x", "b@y" } },
		{ "Chris <chris@x>", { "chris@x" } },
		{ "\"unbalanced", { "\"unbalanced" } },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char **l = sendmail_rcpt_split(rows[i].arg);
		size_t k = 0;
		for (; rows[i].want[k] != NULL; k++) {
			assert_non_null(l[k]);
			assert_string_equal(l[k], rows[i].want[k]);
		}
		assert_null(l[k]);
		str_list_free(&l);
	}
}

static void test_queue_format(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	struct qfile_rcpt rcpts[3] = {
		{ .index = 0, .parent = -1, .address = (char *)"root@gw1.maison.mrs",
		  .status = QRCPT_PENDING },
		{ .index = 1, .parent = -1, .address = (char *)"done@x", .status = QRCPT_SENT },
		{ .index = 2, .parent = -1, .address = (char *)"b@x", .status = QRCPT_PENDING },
	};
	struct qfile_msg m = { .arrival_sec = 1606113592, /* Mon Nov 23 06:39:52 2020 UTC */
			       .sender = (char *)"chris@gw1.maison.mrs", .rcpts = rcpts,
			       .n_rcpts = 3, .content_size = 1234 };
	struct buf out = BUF_INIT;
	queue_list_header(&out);
	assert_string_equal(buf_cstr(&out),
			    "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n");

	static const struct {
		const char *name;
		const char *sub;
		const char *reason;
		const char *sender;
		const char *want;
	} rows[] = {
		{ "active", "active", NULL, "chris@gw1.maison.mrs",
		  "3F3B58000A*    1234 Mon Nov 23 06:39:52  chris@gw1.maison.mrs\n"
		  "                                         root@gw1.maison.mrs\n"
		  "                                         b@x\n\n" },
		{ "deferred", "deferred", "connect to x[1.2.3.4]:25: Connection refused",
		  "chris@gw1.maison.mrs",
		  "3F3B58000A     1234 Mon Nov 23 06:39:52  chris@gw1.maison.mrs\n"
		  "(connect to x[1.2.3.4]:25: Connection refused)\n"
		  "                                         root@gw1.maison.mrs\n"
		  "                                         b@x\n\n" },
		{ "hold, null sender", "hold", NULL, "",
		  "3F3B58000A!    1234 Mon Nov 23 06:39:52  MAILER-DAEMON\n"
		  "                                         root@gw1.maison.mrs\n"
		  "                                         b@x\n\n" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		buf_reset(&out);
		m.defer_reason = (char *)rows[i].reason;
		m.sender = (char *)rows[i].sender;
		queue_list_entry(&out, &m, "3F3B58000A", queue_list_mark(rows[i].sub));
		if (strcmp(buf_cstr(&out), rows[i].want) != 0)
			fail_msg("%s: got\n%s", rows[i].name, buf_cstr(&out));
	}
	/* A longer id widens the first column without losing a space. */
	buf_reset(&out);
	m.defer_reason = NULL;
	m.sender = (char *)"chris@gw1.maison.mrs";
	queue_list_entry(&out, &m, "B03E42F8E46EA74112", ' ');
	assert_string_equal(buf_cstr(&out),
			    "B03E42F8E46EA74112     1234 Mon Nov 23 06:39:52  chris@gw1.maison.mrs\n"
			    "                                                 root@gw1.maison.mrs\n"
			    "                                                 b@x\n\n");

	static const struct {
		uint64_t bytes;
		size_t count;
		const char *want;
	} footers[] = {
		{ 0, 0, "Mail queue is empty\n" },
		{ 442, 1, "-- 0 Kbytes in 1 Request.\n" },
		{ 10240, 2, "-- 10 Kbytes in 2 Requests.\n" },
	};
	for (size_t i = 0; i < sizeof(footers) / sizeof(footers[0]); i++) {
		buf_reset(&out);
		queue_list_footer(&out, footers[i].bytes, footers[i].count);
		assert_string_equal(buf_cstr(&out), footers[i].want);
	}
	buf_deinit(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opts),
		cmocka_unit_test(test_sender_normalize),
		cmocka_unit_test(test_input),
		cmocka_unit_test(test_header_cap),
		cmocka_unit_test(test_header_recipients),
		cmocka_unit_test(test_rcpt_split),
		cmocka_unit_test(test_queue_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
