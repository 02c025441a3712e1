/* smtpd_proto_test.c - unit tests for the SMTP server's protocol pieces:
 * command line splitting, the line reader and its limit (max-1, max,
 * max+1, bare LF, draining), the command/state table, and the DATA decoder
 * (dot-unstuffing, end of data, smuggling policy) with the input split at
 * every byte position. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "smtpd/smtpd_int.h"

static void test_cmd_split(void **state)
{
	(void)state;
	static const struct {
		const char *name, *line, *verb, *arg;
	} rows[] = {
		{ "plain", "MAIL FROM:<a@b>", "MAIL", "FROM:<a@b>" },
		{ "space after colon", "MAIL FROM: <a@b>", "MAIL", "FROM: <a@b>" },
		{ "no arg", "DATA", "DATA", "" },
		{ "trailing spaces", "NOOP   ", "NOOP", "" },
		{ "leading spaces", "  QUIT", "QUIT", "" },
		{ "several spaces", "EHLO    toto.com  ", "EHLO", "toto.com" },
		{ "tab", "HELO\tx", "HELO", "x" },
		{ "empty", "", "", "" },
		{ "spaces only", "   ", "", "" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct strv verb, arg;
		smtpd_cmd_split(strv_from_cstr(rows[i].line), &verb, &arg);
		if (!strv_eq(verb, rows[i].verb) || !strv_eq(arg, rows[i].arg))
			fail_msg("row %s: got verb '%.*s' arg '%.*s'", rows[i].name, (int)verb.len,
				 verb.ptr, (int)arg.len, arg.ptr);
	}
}

static void test_cmd_find(void **state)
{
	(void)state;
	static const struct {
		const char *verb;
		int id; /* -1: unknown */
	} rows[] = {
		{ "EHLO", SMTPD_CMD_EHLO }, { "ehlo", SMTPD_CMD_EHLO }, { "MaIl", SMTPD_CMD_MAIL },
		{ "QUIT", SMTPD_CMD_QUIT }, { "ETRN", SMTPD_CMD_ETRN }, { "OUIT", -1 },
		{ "EXPN", -1 },		    { "MAILX", -1 },		{ "MAI", -1 },
		{ "", -1 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct smtpd_cmd *c = smtpd_cmd_find(strv_from_cstr(rows[i].verb));
		if (rows[i].id < 0)
			assert_null(c);
		else
			assert_int_equal(c->id, rows[i].id);
	}
}

static void test_state_table(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *verb;
		enum smtpd_state st;
		bool helo_required;
		unsigned code; /* 0: allowed */
		const char *text;
	} rows[] = {
		{ "MAIL before HELO", "MAIL", SMTPD_ST_GREETED, false, 0, NULL },
		{ "MAIL before HELO, required", "MAIL", SMTPD_ST_GREETED, true, 503,
		  "Error: send HELO/EHLO first" },
		{ "MAIL after HELO, required", "MAIL", SMTPD_ST_HELO, true, 0, NULL },
		{ "nested MAIL", "MAIL", SMTPD_ST_MAIL, false, 503, "Error: nested MAIL command" },
		{ "nested MAIL after RCPT", "MAIL", SMTPD_ST_RCPT, false, 503,
		  "Error: nested MAIL command" },
		{ "RCPT without MAIL", "RCPT", SMTPD_ST_HELO, false, 503, "Error: need MAIL command" },
		{ "RCPT before HELO", "RCPT", SMTPD_ST_GREETED, false, 503, "Error: need MAIL command" },
		{ "RCPT in MAIL", "RCPT", SMTPD_ST_MAIL, false, 0, NULL },
		{ "RCPT in RCPT", "RCPT", SMTPD_ST_RCPT, false, 0, NULL },
		{ "DATA without MAIL", "DATA", SMTPD_ST_HELO, false, 503, "Error: need RCPT command" },
		{ "DATA without RCPT", "DATA", SMTPD_ST_MAIL, false, 554, "Error: no valid recipients" },
		{ "DATA", "DATA", SMTPD_ST_RCPT, false, 0, NULL },
		{ "ETRN before HELO", "ETRN", SMTPD_ST_GREETED, false, 503,
		  "Error: send HELO/EHLO first" },
		{ "ETRN in MAIL", "ETRN", SMTPD_ST_MAIL, false, 503,
		  "Error: MAIL transaction in progress" },
		{ "ETRN", "ETRN", SMTPD_ST_HELO, false, 0, NULL },
		{ "EHLO in RCPT", "EHLO", SMTPD_ST_RCPT, false, 0, NULL },
		{ "HELO required does not block EHLO", "EHLO", SMTPD_ST_GREETED, true, 0, NULL },
		{ "RSET before HELO", "RSET", SMTPD_ST_GREETED, true, 0, NULL },
		{ "NOOP in MAIL", "NOOP", SMTPD_ST_MAIL, false, 0, NULL },
		{ "QUIT anywhere", "QUIT", SMTPD_ST_RCPT, false, 0, NULL },
		{ "VRFY before HELO, required", "VRFY", SMTPD_ST_GREETED, true, 503,
		  "Error: send HELO/EHLO first" },
		{ "nothing during DATA", "NOOP", SMTPD_ST_DATA, false, 503,
		  "Error: bad sequence of commands" },
		{ "nothing before greeting", "EHLO", SMTPD_ST_CONNECT, false, 503,
		  "Error: bad sequence of commands" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct smtpd_cmd *c = smtpd_cmd_find(strv_from_cstr(rows[i].verb));
		struct smtpd_reply_text r = { 0, NULL, NULL };
		assert_non_null(c);
		bool refused = smtpd_cmd_state_refusal(c, rows[i].st, rows[i].helo_required, &r);
		if (refused != (rows[i].code != 0))
			fail_msg("row %s: refused=%d", rows[i].name, refused);
		if (refused) {
			if (r.code != rows[i].code || strcmp(r.text, rows[i].text) != 0)
				fail_msg("row %s: got %u %s", rows[i].name, r.code, r.text);
			assert_string_equal(r.status, "5.5.1");
		}
	}
}

static void test_ends_group_flags(void **state)
{
	(void)state;
	/* RFC 2920 3.1: these end a group; MAIL and RCPT do not. */
	static const struct {
		const char *verb;
		bool ends;
	} rows[] = {
		{ "EHLO", true }, { "DATA", true },  { "QUIT", true },  { "NOOP", true },
		{ "VRFY", true }, { "RSET", true },  { "MAIL", false }, { "RCPT", false },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct smtpd_cmd *c = smtpd_cmd_find(strv_from_cstr(rows[i].verb));
		assert_int_equal((c->flags & SMTPD_CMDF_ENDS_GROUP) != 0, rows[i].ends);
	}
}

/* Feed text to the line reader in one piece; report result and line. */
static enum smtpd_line_result read_one(const char *text, size_t len, size_t max, bool *draining,
				       struct buf *line, size_t *left_r)
{
	struct evbuffer *in = evbuffer_new();
	evbuffer_add(in, text, len);
	enum smtpd_line_result r = smtpd_line_read(in, max, draining, line);
	*left_r = evbuffer_get_length(in);
	evbuffer_free(in);
	return r;
}

static void test_line_limits(void **state)
{
	(void)state;
	const size_t max = 16;
	static const struct {
		const char *name;
		size_t text_len; /* 'x' * text_len */
		const char *eol;
		enum smtpd_line_result r;
	} rows[] = {
		{ "max-1 CRLF", 15, "\r\n", SMTPD_LINE_OK },
		{ "max CRLF", 16, "\r\n", SMTPD_LINE_OK },
		{ "max+1 CRLF", 17, "\r\n", SMTPD_LINE_TOO_LONG },
		{ "max-1 LF", 15, "\n", SMTPD_LINE_OK },
		{ "max LF", 16, "\n", SMTPD_LINE_OK },
		{ "max+1 LF", 17, "\n", SMTPD_LINE_TOO_LONG },
		{ "max no LF", 16, "", SMTPD_LINE_MORE },
		{ "max+CR no LF", 16, "\r", SMTPD_LINE_MORE },
		{ "max+2 no LF", 18, "", SMTPD_LINE_MORE },
		{ "empty", 0, "\r\n", SMTPD_LINE_OK },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct buf text = BUF_INIT, line = BUF_INIT;
		bool draining = false;
		size_t left;
		for (size_t k = 0; k < rows[i].text_len; k++)
			buf_append_char(&text, 'x');
		buf_append_str(&text, rows[i].eol);
		enum smtpd_line_result r = read_one(buf_cstr(&text), text.len, max, &draining,
						    &line, &left);
		if (r != rows[i].r)
			fail_msg("row %s: result %d", rows[i].name, r);
		if (r == SMTPD_LINE_OK) {
			assert_int_equal(line.len, rows[i].text_len);
			assert_int_equal(left, 0);
		}
		buf_deinit(&text);
		buf_deinit(&line);
	}
}

static void test_line_draining(void **state)
{
	(void)state;
	struct evbuffer *in = evbuffer_new();
	struct buf line = BUF_INIT;
	bool draining = false;
	char big[100];

	memset(big, 'y', sizeof(big));
	/* An over-long line arriving in pieces is dropped as it comes. */
	evbuffer_add(in, big, sizeof(big));
	assert_int_equal(smtpd_line_read(in, 10, &draining, &line), SMTPD_LINE_MORE);
	assert_true(draining);
	assert_int_equal(evbuffer_get_length(in), 0);
	evbuffer_add(in, "zz\r\nNOOP\r\n", 10);
	assert_int_equal(smtpd_line_read(in, 10, &draining, &line), SMTPD_LINE_TOO_LONG);
	assert_false(draining);
	assert_int_equal(smtpd_line_read(in, 10, &draining, &line), SMTPD_LINE_OK);
	assert_string_equal(buf_cstr(&line), "NOOP");
	/* Pipelined commands come out one at a time, in order. */
	evbuffer_add(in, "A\r\nB\nC\r\n", 8);
	const char *want[] = { "A", "B", "C" };
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(smtpd_line_read(in, 10, &draining, &line), SMTPD_LINE_OK);
		assert_string_equal(buf_cstr(&line), want[i]);
	}
	assert_int_equal(smtpd_line_read(in, 10, &draining, &line), SMTPD_LINE_MORE);
	buf_deinit(&line);
	evbuffer_free(in);
}

struct dot_row {
	const char *name;
	const char *in;
	bool done;
	const char *out;  /* decoded content */
	const char *rest; /* bytes left after the end of data */
};

static const struct dot_row dot_rows[] = {
	{ "simple", "Bonjour\r\nComment ca va ?\r\n.\r\n", true, "Bonjour\nComment ca va ?\n",
	  "" },
	{ "empty message", ".\r\n", true, "", "" },
	{ "pipelined QUIT", "a\r\n.\r\nQUIT\r\n", true, "a\n", "QUIT\r\n" },
	{ "dot-stuffed", "..x\r\n..\r\n.\r\n", true, ".x\n.\n", "" },
	{ "dot inside line", "a.b\r\n .\r\n.\r\n", true, "a.b\n .\n", "" },
	{ "bare LF line ends", "a\nb\n.\r\n", false, "a\nb\n.\n", "" },
	{ "smuggling: LF.LF", "a\n.\nMAIL FROM:<x>\r\n", false, "a\n.\nMAIL FROM:<x>\n", "" },
	{ "smuggling: LF.CRLF", "a\n.\r\nb\r\n", false, "a\n.\nb\n", "" },
	{ "smuggling: CRLF.LF", "a\r\n.\nb\r\n", false, "a\n.\nb\n", "" },
	{ "end after smuggling attempt", "a\r\n.\nb\r\n.\r\n", true, "a\n.\nb\n", "" },
	{ "bare CR kept", "a\rb\r\n.\r\n", true, "a\rb\n", "" },
	{ "CR CR LF", "a\r\r\n.\r\n", true, "a\r\n", "" },
	{ ".CR then text", ".\rx\r\n.\r\n", true, "\rx\n", "" },
	{ "not finished", "abc\r\n", false, "abc\n", "" },
	{ "not finished dot", "abc\r\n.", false, "abc\n", "" },
	{ "not finished dot CR", "abc\r\n.\r", false, "abc\n", "" },
	{ "binary", "\x01\x80\xff\r\n.\r\n", true, "\x01\x80\xff\n", "" },
};

/* Decode in two calls split at pos; returns the output and consumed count. */
static void dot_run_split(const struct dot_row *row, size_t pos)
{
	struct smtpd_dot d;
	struct buf out = BUF_INIT;
	size_t len = strlen(row->in), used = 0;
	bool done = false;

	smtpd_dot_init(&d);
	used = smtpd_dot_decode(&d, (const uint8_t *)row->in, pos, &out, &done);
	if (!done) {
		assert_int_equal(used, pos);
		used += smtpd_dot_decode(&d, (const uint8_t *)row->in + pos, len - pos, &out, &done);
	}
	if (done != row->done || out.len != strlen(row->out) ||
	    memcmp(out.data, row->out, out.len) != 0)
		fail_msg("row %s split at %zu: done=%d out='%s'", row->name, pos, done,
			 buf_cstr(&out));
	if (done) {
		if (strcmp(row->in + used, row->rest) != 0)
			fail_msg("row %s split at %zu: rest '%s'", row->name, pos, row->in + used);
	} else {
		assert_int_equal(used, len);
	}
	buf_deinit(&out);
}

static void test_dot_decode_splits(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(dot_rows) / sizeof(dot_rows[0]); i++) {
		size_t len = strlen(dot_rows[i].in);
		for (size_t pos = 0; pos <= len; pos++)
			dot_run_split(&dot_rows[i], pos);
	}
}

static void test_dot_decode_bytewise(void **state)
{
	(void)state;
	/* One byte per call: the worst split of all. */
	for (size_t i = 0; i < sizeof(dot_rows) / sizeof(dot_rows[0]); i++) {
		const struct dot_row *row = &dot_rows[i];
		struct smtpd_dot d;
		struct buf out = BUF_INIT;
		size_t len = strlen(row->in), k;
		bool done = false;
		smtpd_dot_init(&d);
		for (k = 0; k < len && !done; k++)
			assert_int_equal(smtpd_dot_decode(&d, (const uint8_t *)row->in + k, 1, &out,
							  &done),
					 1);
		assert_int_equal(done, row->done);
		assert_int_equal(out.len, strlen(row->out));
		assert_memory_equal(out.data, row->out, out.len);
		if (done)
			assert_string_equal(row->in + k, row->rest);
		buf_deinit(&out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmd_split),
		cmocka_unit_test(test_cmd_find),
		cmocka_unit_test(test_state_table),
		cmocka_unit_test(test_ends_group_flags),
		cmocka_unit_test(test_line_limits),
		cmocka_unit_test(test_line_draining),
		cmocka_unit_test(test_dot_decode_splits),
		cmocka_unit_test(test_dot_decode_bytewise),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
