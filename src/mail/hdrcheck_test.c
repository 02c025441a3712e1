/* hdrcheck_test.c - unit tests for header_checks / body_checks (hdrcheck.h):
 * action parsing, lookups in real regexp:/pcre: tables written under a
 * mkdtemp() directory (the seeds' rules as written), folded headers, body
 * lines, SMTP replies and Postfix's cleanup log lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mail/hdrcheck.h"
#include "mail/table.h"

#include "lib/buf.h"
#include "lib/fs.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char test_dir[] = "/tmp/facteur-hdrcheck-test.XXXXXX";

static int test_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int test_setup(void **state)
{
	(void)state;
	return mkdtemp(test_dir) == NULL ? -1 : 0;
}

static int test_teardown(void **state)
{
	(void)state;
	return nftw(test_dir, test_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write a table source and open "type:path" as a list. */
static struct table_list *test_table(const char *type, const char *name, const char *text)
{
	struct buf path = BUF_INIT, spec = BUF_INIT;
	const char *error = NULL;

	buf_printf(&path, "%s/%s", test_dir, name);
	assert_int_equal(fs_write_atomic(buf_cstr(&path), text, strlen(text), 0644), 0);
	buf_printf(&spec, "%s:%s", type, buf_cstr(&path));
	struct table_list *l = table_list_open(buf_cstr(&spec), &error);
	if (l == NULL)
		fail_msg("open %s: %s", buf_cstr(&spec), error);
	buf_deinit(&path);
	buf_deinit(&spec);
	return l;
}

/* ---- action parsing ---- */

struct parse_row {
	const char *name;
	const char *value;
	enum hdrcheck_context ctx;
	int ret;
	enum hdrcheck_action action;
	const char *text;
	bool is_temporary;
	const char *warning;	/* NULL: no warning expected */
};

static const struct parse_row parse_rows[] = {
	{ "reject bare", "REJECT", HDRCHECK_CTX_HEADER, 0, HDRCHECK_REJECT,
	  "5.7.1 message content rejected", false, NULL },
	{ "reject text", "REJECT go away", HDRCHECK_CTX_HEADER, 0, HDRCHECK_REJECT,
	  "5.7.1 go away", false, NULL },
	{ "reject lower case, tab", "reject\t\tgo away", HDRCHECK_CTX_HEADER, 0,
	  HDRCHECK_REJECT, "5.7.1 go away", false, NULL },
	{ "reject own dsn", "REJECT 5.7.0 no uuencode", HDRCHECK_CTX_BODY, 0,
	  HDRCHECK_REJECT, "5.7.0 no uuencode", false, NULL },
	{ "reject temporary", "REJECT 4.7.1 try later", HDRCHECK_CTX_HEADER, 0,
	  HDRCHECK_REJECT, "4.7.1 try later", true, NULL },
	{ "reject dsn only", "REJECT 5.2.3", HDRCHECK_CTX_HEADER, 0, HDRCHECK_REJECT,
	  "5.2.3", false, NULL },
	{ "reject dsn 3 digits", "REJECT 5.123.456 x", HDRCHECK_CTX_HEADER, 0,
	  HDRCHECK_REJECT, "5.123.456 x", false, NULL },
	{ "reject dsn 4 digits is text", "REJECT 5.1234.1 x", HDRCHECK_CTX_HEADER, 0,
	  HDRCHECK_REJECT, "5.7.1 5.1234.1 x", false, NULL },
	{ "reject dsn glued is text", "REJECT 5.7.1x", HDRCHECK_CTX_HEADER, 0,
	  HDRCHECK_REJECT, "5.7.1 5.7.1x", false, NULL },
	{ "reject smtp code not parsed", "REJECT 554 go away", HDRCHECK_CTX_HEADER, 0,
	  HDRCHECK_REJECT, "5.7.1 554 go away", false, NULL },
	{ "reject class 3 is text", "REJECT 3.0.0 x", HDRCHECK_CTX_HEADER, 0,
	  HDRCHECK_REJECT, "5.7.1 3.0.0 x", false, NULL },
	{ "reject success code", "REJECT 2.0.0 fine", HDRCHECK_CTX_HEADER, 0,
	  HDRCHECK_REJECT, "4.0.0 fine", true,
	  "bad DSN action in 2.0.0 fine -- need 4.x.x or 5.x.x" },
	{ "reject success code, tab shown as ?", "REJECT 2.0.0 a\tb", HDRCHECK_CTX_HEADER,
	  0, HDRCHECK_REJECT, "4.0.0 a\tb", true,
	  "bad DSN action in 2.0.0 a?b -- need 4.x.x or 5.x.x" },
	{ "warn", "WARN spam subject", HDRCHECK_CTX_HEADER, 0, HDRCHECK_WARN,
	  "spam subject", false, NULL },
	{ "warn bare", "WARN", HDRCHECK_CTX_HEADER, 0, HDRCHECK_WARN, "", false, NULL },
	{ "info", "INFO noted", HDRCHECK_CTX_BODY, 0, HDRCHECK_INFO, "noted", false, NULL },
	{ "ignore", "IGNORE", HDRCHECK_CTX_HEADER, 0, HDRCHECK_IGNORE, "", false, NULL },
	{ "ignore with text", "IGNORE whatever", HDRCHECK_CTX_HEADER, 0, HDRCHECK_IGNORE,
	  "", false, NULL },
	{ "discard", "DISCARD bye", HDRCHECK_CTX_HEADER, 0, HDRCHECK_DISCARD, "bye",
	  false, NULL },
	{ "hold", "HOLD look at it", HDRCHECK_CTX_HEADER, 0, HDRCHECK_HOLD,
	  "look at it", false, NULL },
	{ "redirect", "REDIRECT abuse@example.com", HDRCHECK_CTX_HEADER, 0,
	  HDRCHECK_REDIRECT, "abuse@example.com", false, NULL },
	{ "redirect no at", "REDIRECT abuse", HDRCHECK_CTX_HEADER, -1, HDRCHECK_DUNNO, "",
	  false, "bad REDIRECT target \"abuse\" in header_checks map -- need user@domain" },
	{ "redirect empty", "REDIRECT", HDRCHECK_CTX_BODY, -1, HDRCHECK_DUNNO, "", false,
	  "bad REDIRECT target \"\" in body_checks map -- need user@domain" },
	{ "prepend", "PREPEND X-Seen: yes", HDRCHECK_CTX_HEADER, 0, HDRCHECK_PREPEND,
	  "X-Seen: yes", false, NULL },
	{ "prepend space before colon", "PREPEND X-Seen : yes", HDRCHECK_CTX_HEADER, 0,
	  HDRCHECK_PREPEND, "X-Seen : yes", false, NULL },
	{ "prepend not a header", "PREPEND hello world", HDRCHECK_CTX_HEADER, -1,
	  HDRCHECK_DUNNO, "", false,
	  "bad PREPEND header text \"hello world\" in header_checks map -- "
	  "need \"headername: headervalue\"" },
	{ "prepend body any text", "PREPEND hello world", HDRCHECK_CTX_BODY, 0,
	  HDRCHECK_PREPEND, "hello world", false, NULL },
	{ "prepend empty", "PREPEND", HDRCHECK_CTX_HEADER, -1, HDRCHECK_DUNNO, "", false,
	  "PREPEND action without text in header_checks map" },
	{ "replace", "REPLACE Subject: [spam] hi", HDRCHECK_CTX_HEADER, 0,
	  HDRCHECK_REPLACE, "Subject: [spam] hi", false, NULL },
	{ "replace empty name", "REPLACE : x", HDRCHECK_CTX_HEADER, -1, HDRCHECK_DUNNO, "",
	  false,
	  "bad REPLACE header text \": x\" in header_checks map -- "
	  "need \"headername: headervalue\"" },
	{ "replace empty", "REPLACE", HDRCHECK_CTX_BODY, -1, HDRCHECK_DUNNO, "", false,
	  "REPLACE action without text in body_checks map" },
	{ "dunno", "DUNNO", HDRCHECK_CTX_HEADER, 0, HDRCHECK_DUNNO, "", false, NULL },
	{ "ok is dunno", "OK", HDRCHECK_CTX_HEADER, 0, HDRCHECK_DUNNO, "", false, NULL },
	{ "unknown", "FROB x y", HDRCHECK_CTX_HEADER, -1, HDRCHECK_DUNNO, "", false,
	  "unknown command in header_checks map: FROB x y" },
	{ "prefix of a word", "REJ", HDRCHECK_CTX_HEADER, -1, HDRCHECK_DUNNO, "", false,
	  "unknown command in header_checks map: REJ" },
	{ "word too long", "REJECTED", HDRCHECK_CTX_BODY, -1, HDRCHECK_DUNNO, "", false,
	  "unknown command in body_checks map: REJECTED" },
	{ "empty value", "", HDRCHECK_CTX_HEADER, -1, HDRCHECK_DUNNO, "", false,
	  "unknown command in header_checks map: " },
	{ "control chars in warning", "FROB\nx", HDRCHECK_CTX_HEADER, -1, HDRCHECK_DUNNO,
	  "", false, "unknown command in header_checks map: FROB?x" },
};

static void test_action_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_rows) / sizeof(parse_rows[0]); i++) {
		const struct parse_row *row = &parse_rows[i];
		struct hdrcheck_result r = HDRCHECK_RESULT_INIT;
		const char *error = NULL;
		int ret = hdrcheck_action_parse(row->value, row->ctx, &r, &error);
		if (ret != row->ret || r.action != row->action ||
		    strcmp(r.text, row->text) != 0 || r.is_temporary != row->is_temporary ||
		    (row->warning == NULL) != (r.warning == NULL) ||
		    (row->warning != NULL && strcmp(row->warning, r.warning) != 0))
			fail_msg("%s: ret %d action %d text '%s' temp %d warning '%s'", row->name,
				 ret, r.action, r.text, r.is_temporary,
				 r.warning != NULL ? r.warning : "(null)");
		if (ret < 0)
			assert_ptr_equal(error, r.warning);
		hdrcheck_result_clear(&r);
		assert_null(r.text);
		assert_null(r.warning);
	}
}

/* Parsing into a used result frees the previous texts (ASan checks). */
static void test_action_parse_reuse(void **state)
{
	(void)state;
	struct hdrcheck_result r = HDRCHECK_RESULT_INIT;
	const char *error;
	assert_int_equal(hdrcheck_action_parse("FROB", HDRCHECK_CTX_HEADER, &r, &error), -1);
	assert_int_equal(hdrcheck_action_parse("REJECT 4.1.1 x", HDRCHECK_CTX_HEADER, &r, &error),
			 0);
	assert_true(r.is_temporary);
	assert_null(r.warning);
	assert_int_equal(hdrcheck_action_parse("WARN y", HDRCHECK_CTX_HEADER, &r, &error), 0);
	assert_false(r.is_temporary);
	assert_string_equal(r.text, "y");
	hdrcheck_result_clear(&r);
	hdrcheck_result_clear(&r);
}

/* ---- keys ---- */

static void test_key(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *raw;
		size_t len;
		const char *key;
	} rows[] = {
		{ "plain", "Subject: hi", 11, "Subject: hi" },
		{ "crlf end", "Subject: hi\r\n", 13, "Subject: hi" },
		{ "lf end", "Subject: hi\n", 12, "Subject: hi" },
		{ "folded crlf", "Subject: a\r\n\tb\r\n c\r\n", 20, "Subject: a\n\tb\n c" },
		{ "folded lf", "Subject: a\n b", 13, "Subject: a\n b" },
		{ "lone cr kept", "A: x\ry", 6, "A: x\ry" },
		{ "len shorter", "Subject: hi", 7, "Subject" },
		{ "nul ends", "A: x\0y", 6, "A: x" },
		{ "empty", "", 0, "" },
		{ "only crlf", "\r\n", 2, "" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *key = hdrcheck_key(rows[i].raw, rows[i].len);
		if (strcmp(key, rows[i].key) != 0)
			fail_msg("%s: got '%s'", rows[i].name, key);
		free(key);
	}
}

/* ---- lookups ---- */

/* The seed's rules exactly as written (002, "header_checks"), then ours. */
static const char header_table[] =
	"# seed 002\n"
	"/^Received:*/  IGNORE\n"
	"/^from: * chose@public\\.com$/ REJECT\n"
	"# the WARN example of the issue\n"
	"/^Subject:.*viagra/ WARN\n"
	"/^Subject: anchored$/ HOLD anchored\n"
	"/^X-Multi: a$/m DISCARD multiline flag\n"
	"/^X-Redirect:/ REDIRECT abuse@example.com\n"
	"/^X-Bad-Action:/ FROB it\n"
	"/^X-Tag: (.*)$/ PREPEND X-Seen-Tag: $1\n"
	"/^X-Later:/ REJECT 4.7.1 try later\n";

struct lookup_row {
	const char *name;
	const char *input;
	int ret;
	enum hdrcheck_action action;
	const char *text;
	bool has_warning;
};

static void test_lookup_rows(struct table_list *l, bool body, const struct lookup_row *rows,
			     size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct hdrcheck_result r = HDRCHECK_RESULT_INIT;
		const char *error = NULL;
		size_t len = strlen(rows[i].input);
		int ret = body ? hdrcheck_body_line(l, rows[i].input, len, &r, &error)
			       : hdrcheck_header(l, rows[i].input, len, &r, &error);
		if (ret != rows[i].ret)
			fail_msg("%s: ret %d (%s)", rows[i].name, ret,
				 error != NULL ? error : "");
		if (ret == 1 &&
		    (r.action != rows[i].action || strcmp(r.text, rows[i].text) != 0 ||
		     (r.warning != NULL) != rows[i].has_warning))
			fail_msg("%s: action %d text '%s' warning %s", rows[i].name, r.action,
				 r.text, r.warning != NULL ? r.warning : "(null)");
		if (ret == 0)
			assert_null(r.text);
		hdrcheck_result_clear(&r);
	}
}

static void test_header_lookup(void **state)
{
	(void)state;
	static const struct lookup_row rows[] = {
		{ "seed received, folded",
		  "Received: from chris (chris.maison.mrs [192.168.0.10])\r\n"
		  "          by gw1.maison.mrs (Postfix) with SMTP id A38181105F\r\n",
		  1, HDRCHECK_IGNORE, "", false },
		{ "received lower case", "received: from x", 1, HDRCHECK_IGNORE, "", false },
		{ "x-received not anchored", "X-Received: from x", 0, HDRCHECK_DUNNO, "",
		  false },
		{ "seed from reject", "From: chose@public.com\r\n", 1, HDRCHECK_REJECT,
		  "5.7.1 message content rejected", false },
		{ "seed from, spaces", "FROM:    chose@public.com", 1, HDRCHECK_REJECT,
		  "5.7.1 message content rejected", false },
		{ "seed from, display name", "From: Chris <chose@public.com>", 0,
		  HDRCHECK_DUNNO, "", false },
		{ "seed from, longer domain", "From: chose@public.com.example", 0,
		  HDRCHECK_DUNNO, "", false },
		{ "subject warn", "Subject: cheap VIAGRA", 1, HDRCHECK_WARN, "", false },
		{ "subject warn across fold", "Subject: cheap\r\n viagra", 1, HDRCHECK_WARN,
		  "", false },
		{ "other subject", "Subject: hello", 0, HDRCHECK_DUNNO, "", false },
		{ "anchored", "Subject: anchored\r\n", 1, HDRCHECK_HOLD, "anchored", false },
		{ "$ is end of logical header", "Subject: anchored\r\n more", 0,
		  HDRCHECK_DUNNO, "", false },
		{ "m flag matches first line", "X-Multi: a\r\n b", 1, HDRCHECK_DISCARD,
		  "multiline flag", false },
		{ "redirect", "X-Redirect: yes", 1, HDRCHECK_REDIRECT, "abuse@example.com",
		  false },
		{ "bad action acts as dunno", "X-Bad-Action: 1", 1, HDRCHECK_DUNNO, "", true },
		{ "prepend with $1", "X-Tag: blue", 1, HDRCHECK_PREPEND, "X-Seen-Tag: blue",
		  false },
		{ "temporary reject", "X-Later: 1", 1, HDRCHECK_REJECT, "4.7.1 try later",
		  false },
	};
	struct table_list *l = test_table("regexp", "header_checks", header_table);
	test_lookup_rows(l, false, rows, sizeof(rows) / sizeof(rows[0]));
	table_list_free(&l);
	assert_null(l);
}

static void test_body_lookup(void **state)
{
	(void)state;
	static const char body_table[] = "/^begin 644 / REJECT 5.7.0 no uuencoded files\n"
					 "/viagra/ WARN body spam\n"
					 "/^-- $/ REPLACE --\n"
					 "/^X-Not-A-Header/ PREPEND just text\n";
	static const struct lookup_row rows[] = {
		{ "uuencode", "begin 644 evil.exe\r\n", 1, HDRCHECK_REJECT,
		  "5.7.0 no uuencoded files", false },
		{ "not at start", "  begin 644 x", 0, HDRCHECK_DUNNO, "", false },
		{ "warn", "buy Viagra now\n", 1, HDRCHECK_WARN, "body spam", false },
		{ "replace signature dash", "-- \r\n", 1, HDRCHECK_REPLACE, "--", false },
		{ "body prepend any text", "X-Not-A-Header", 1, HDRCHECK_PREPEND,
		  "just text", false },
		{ "empty line", "\r\n", 0, HDRCHECK_DUNNO, "", false },
	};
	struct table_list *l = test_table("regexp", "body_checks", body_table);
	test_lookup_rows(l, true, rows, sizeof(rows) / sizeof(rows[0]));
	table_list_free(&l);
}

static void test_pcre_lookup(void **state)
{
	(void)state;
	static const char pcre_table[] = "/^Subject:.*\\bfree\\s+money\\b/ REJECT 5.7.1 no\n"
					 "/^X-Mailer: (\\w+)/ REPLACE X-Mailer: was $1\n";
	static const struct lookup_row rows[] = {
		{ "pcre reject", "Subject: FREE   money!", 1, HDRCHECK_REJECT, "5.7.1 no",
		  false },
		{ "pcre word boundary", "Subject: freemoney", 0, HDRCHECK_DUNNO, "", false },
		{ "pcre replace", "X-Mailer: Mutt 2.0", 1, HDRCHECK_REPLACE,
		  "X-Mailer: was Mutt", false },
	};
	struct table_list *l = test_table("pcre", "pcre_checks", pcre_table);
	test_lookup_rows(l, false, rows, sizeof(rows) / sizeof(rows[0]));
	table_list_free(&l);
}

/* ---- replies ---- */

static void test_reject_reply(void **state)
{
	(void)state;
	static const struct {
		const char *value;
		const char *reply;
	} rows[] = {
		{ "REJECT", "550 5.7.1 message content rejected" },
		{ "REJECT go away", "550 5.7.1 go away" },
		{ "REJECT 5.7.0 no uuencode", "550 5.7.0 no uuencode" },
		{ "REJECT 4.7.1 try later", "451 4.7.1 try later" },
		{ "REJECT 2.0.0 fine", "451 4.0.0 fine" },
		{ "REJECT 554 5.7.1 x", "550 5.7.1 554 5.7.1 x" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct hdrcheck_result r = HDRCHECK_RESULT_INIT;
		struct buf out = BUF_INIT;
		const char *error;
		assert_int_equal(hdrcheck_action_parse(rows[i].value, HDRCHECK_CTX_HEADER, &r,
						       &error),
				 0);
		hdrcheck_reject_reply(&r, &out);
		if (strcmp(buf_cstr(&out), rows[i].reply) != 0)
			fail_msg("%s: got '%s'", rows[i].value, buf_cstr(&out));
		buf_deinit(&out);
		hdrcheck_result_clear(&r);
	}
	/* A cleared result still gives Postfix's generic reply. */
	struct hdrcheck_result empty = HDRCHECK_RESULT_INIT;
	struct buf out = BUF_INIT;
	hdrcheck_reject_reply(&empty, &out);
	assert_string_equal(buf_cstr(&out), "550 5.7.1 message content rejected");
	buf_deinit(&out);
}

static void test_stops_checks(void **state)
{
	(void)state;
	static const struct {
		enum hdrcheck_action action;
		bool stops;
	} rows[] = {
		{ HDRCHECK_DUNNO, false },   { HDRCHECK_REJECT, true },	  { HDRCHECK_WARN, false },
		{ HDRCHECK_INFO, false },    { HDRCHECK_IGNORE, false },  { HDRCHECK_DISCARD, true },
		{ HDRCHECK_HOLD, false },    { HDRCHECK_REDIRECT, true }, { HDRCHECK_PREPEND, false },
		{ HDRCHECK_REPLACE, false },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (hdrcheck_action_stops_checks(rows[i].action) != rows[i].stops)
			fail_msg("action %d", rows[i].action);
}

/* ---- log lines ---- */

static void test_log_line(void **state)
{
	(void)state;
	static const struct hdrcheck_log_info full = {
		"4A1B2C3D", "localhost[127.0.0.1]", "a@b", "c@d", "ESMTP", "x",
	};
	static const struct hdrcheck_log_info bare = { NULL, NULL, NULL, NULL, NULL, NULL };
	static const struct hdrcheck_log_info local = { "Q1", "local", "", "c@d", NULL, NULL };
	static const struct {
		const char *name;
		const struct hdrcheck_log_info *info;
		enum hdrcheck_context ctx;
		const char *value;
		const char *content;
		bool logged;
		const char *line;
	} rows[] = {
		{ "reject default", &full, HDRCHECK_CTX_HEADER, "REJECT", "Subject: buy now",
		  true,
		  "4A1B2C3D: reject: header Subject: buy now from localhost[127.0.0.1]; "
		  "from=<a@b> to=<c@d> proto=ESMTP helo=<x>: 5.7.1 message content rejected" },
		{ "warn no text", &full, HDRCHECK_CTX_HEADER, "WARN", "Subject: viagra", true,
		  "4A1B2C3D: warning: header Subject: viagra from localhost[127.0.0.1]; "
		  "from=<a@b> to=<c@d> proto=ESMTP helo=<x>" },
		{ "warn text", &full, HDRCHECK_CTX_HEADER, "WARN spam", "Subject: viagra", true,
		  "4A1B2C3D: warning: header Subject: viagra from localhost[127.0.0.1]; "
		  "from=<a@b> to=<c@d> proto=ESMTP helo=<x>: spam" },
		{ "info body", &full, HDRCHECK_CTX_BODY, "INFO seen", "hello", true,
		  "4A1B2C3D: info: body hello from localhost[127.0.0.1]; "
		  "from=<a@b> to=<c@d> proto=ESMTP helo=<x>: seen" },
		{ "discard body", &local, HDRCHECK_CTX_BODY, "DISCARD", "begin 644 x", true,
		  "Q1: discard: body begin 644 x from local; from=<> to=<c@d>" },
		{ "hold", &bare, HDRCHECK_CTX_HEADER, "HOLD why", "X-A: 1", true,
		  "hold: header X-A: 1 from unknown;: why" },
		{ "redirect", &local, HDRCHECK_CTX_HEADER, "REDIRECT r@s", "X-A: 1", true,
		  "Q1: redirect: header X-A: 1 from local; from=<> to=<c@d>: r@s" },
		{ "prepend", &local, HDRCHECK_CTX_HEADER, "PREPEND X-B: 2", "X-A: 1", true,
		  "Q1: prepend: header X-A: 1 from local; from=<> to=<c@d>: X-B: 2" },
		{ "replace", &local, HDRCHECK_CTX_HEADER, "REPLACE X-B: 2", "X-A: 1", true,
		  "Q1: replace: header X-A: 1 from local; from=<> to=<c@d>: X-B: 2" },
		{ "folded content", &local, HDRCHECK_CTX_HEADER, "WARN", "Subject: a\n b", true,
		  "Q1: warning: header Subject: a? b from local; from=<> to=<c@d>" },
		{ "ignore not logged", &full, HDRCHECK_CTX_HEADER, "IGNORE", "Received: x",
		  false, "" },
		{ "dunno not logged", &full, HDRCHECK_CTX_HEADER, "DUNNO", "Received: x", false,
		  "" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct hdrcheck_result r = HDRCHECK_RESULT_INIT;
		struct buf out = BUF_INIT;
		const char *error;
		assert_int_equal(hdrcheck_action_parse(rows[i].value, rows[i].ctx, &r, &error),
				 0);
		bool logged = hdrcheck_log_line(&out, rows[i].info, rows[i].ctx,
						rows[i].content, &r);
		if (logged != rows[i].logged || strcmp(buf_cstr(&out), rows[i].line) != 0)
			fail_msg("%s: logged %d '%s'", rows[i].name, logged, buf_cstr(&out));
		buf_deinit(&out);
		hdrcheck_result_clear(&r);
	}
}

/* Content is cut at HDRCHECK_LOG_CONTENT_MAX bytes: max-1, max, max+1. */
static void test_log_line_limit(void **state)
{
	(void)state;
	static const struct hdrcheck_log_info info = { NULL, "local", NULL, NULL, NULL, NULL };
	static const size_t lens[] = { HDRCHECK_LOG_CONTENT_MAX - 1, HDRCHECK_LOG_CONTENT_MAX,
				       HDRCHECK_LOG_CONTENT_MAX + 1 };
	struct hdrcheck_result r = HDRCHECK_RESULT_INIT;
	const char *error;
	assert_int_equal(hdrcheck_action_parse("WARN", HDRCHECK_CTX_BODY, &r, &error), 0);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char content[HDRCHECK_LOG_CONTENT_MAX + 2];
		memset(content, 'x', lens[i]);
		content[lens[i]] = '\0';
		struct buf out = BUF_INIT, want = BUF_INIT;
		size_t shown = lens[i] > HDRCHECK_LOG_CONTENT_MAX ? HDRCHECK_LOG_CONTENT_MAX
								  : lens[i];
		buf_printf(&want, "warning: body %.*s from local;", (int)shown, content);
		assert_true(hdrcheck_log_line(&out, &info, HDRCHECK_CTX_BODY, content, &r));
		assert_string_equal(buf_cstr(&out), buf_cstr(&want));
		buf_deinit(&out);
		buf_deinit(&want);
	}
	hdrcheck_result_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_action_parse),
		cmocka_unit_test(test_action_parse_reuse),
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_header_lookup),
		cmocka_unit_test(test_body_lookup),
		cmocka_unit_test(test_pcre_lookup),
		cmocka_unit_test(test_reject_reply),
		cmocka_unit_test(test_stops_checks),
		cmocka_unit_test(test_log_line),
		cmocka_unit_test(test_log_line_limit),
	};
	return cmocka_run_group_tests(tests, test_setup, test_teardown);
}
