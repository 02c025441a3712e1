/* imapd_parse_test.c - unit tests for the IMAP command reader and parsers:
 * table-driven transcripts of the reader (fed whole, byte by byte and in
 * chunks, which must give the same transcript), limits at max-1/max/max+1,
 * FETCH, SEARCH, STORE, flags, sequence sets, dates, strings and mUTF-7.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imapd/imapd_parse.h"
#include "lib/buf.h"
#include "lib/mem.h"

static const struct imap_reader_limits test_limits = {
	.line_max = 64, .literal_max = 100, .total_max = 300, .depth_max = 3
};

/* ---- serialization of results ---- */

static void args_dump(const struct imap_arg *args, size_t count, struct buf *out)
{
	for (size_t i = 0; i < count; i++) {
		const struct imap_arg *a = &args[i];
		if (i > 0)
			buf_append_char(out, ' ');
		switch (a->type) {
		case IMAP_ARG_ATOM:
			buf_printf(out, "A:%s", a->str);
			break;
		case IMAP_ARG_QUOTED:
			buf_printf(out, "Q:%s", a->str);
			break;
		case IMAP_ARG_LITERAL:
			buf_printf(out, "L%zu:", a->len);
			for (size_t j = 0; j < a->len; j++) {
				char c = a->str[j];
				if (c == '\0')
					buf_append_str(out, "\\0");
				else if (c == '\r')
					buf_append_str(out, "\\r");
				else if (c == '\n')
					buf_append_str(out, "\\n");
				else
					buf_append_char(out, c);
			}
			break;
		case IMAP_ARG_NIL:
			buf_append_str(out, "NIL");
			break;
		case IMAP_ARG_LIST:
			buf_append_char(out, '(');
			args_dump(a->list, a->count, out);
			buf_append_char(out, ')');
			break;
		}
	}
}

/* Drain the reader into out; returns false once the connection must close. */
static bool reader_drain(struct imap_reader *r, struct buf *out)
{
	for (;;) {
		struct imap_cmd *cmd;
		const char *tag, *error;
		bool too_big;
		enum imap_read_result res = imap_reader_next(r, &cmd, &tag, &error, &too_big);
		switch (res) {
		case IMAP_READ_MORE:
			return true;
		case IMAP_READ_CMD:
			assert_string_equal(tag, cmd->tag);
			buf_printf(out, "CMD %s %s%s", cmd->tag, cmd->name, cmd->uid ? " uid" : "");
			if (cmd->argc > 0)
				buf_append_char(out, ' ');
			args_dump(cmd->args, cmd->argc, out);
			buf_append_str(out, "|");
			imap_cmd_free(&cmd);
			break;
		case IMAP_READ_CONTINUE:
			buf_append_str(out, "CONT|");
			break;
		case IMAP_READ_BAD:
			assert_null(cmd);
			buf_printf(out, "BAD %s %s|", tag, error);
			break;
		case IMAP_READ_TOO_LONG:
			buf_printf(out, "TOOLONG %s %s%s|", tag, error, too_big ? " big" : "");
			if (!too_big)
				return false;
			break;
		}
	}
}

static char *reader_run(const char *in, size_t len, size_t chunk)
{
	struct imap_reader *r = imap_reader_new(&test_limits);
	struct buf out = BUF_INIT;
	bool alive = reader_drain(r, &out);
	for (size_t off = 0; alive && off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		imap_reader_feed(r, in + off, n);
		alive = reader_drain(r, &out);
	}
	if (!alive) {
		/* a fatal error stays fatal */
		struct imap_cmd *cmd;
		const char *tag, *error;
		bool too_big;
		assert_int_equal(imap_reader_next(r, &cmd, &tag, &error, &too_big),
				 IMAP_READ_TOO_LONG);
		assert_false(too_big);
	}
	imap_reader_free(&r);
	assert_null(r);
	return buf_steal(&out);
}

/* ---- reader transcripts ---- */

#define L64 "0123456789012345678901234567890123456789012345678901234567890123"
#define L90 L64 "abcdefghijklmnopqrstuvwxyz"

static const struct {
	const char *name;
	const char *in;
	size_t len; /* 0: strlen */
	const char *out;
} reader_rows[] = {
	{ "noop", "a NOOP\r\n", 0, "CMD a NOOP|" },
	{ "lower-case name, bare LF", "a1 noop\n", 0, "CMD a1 NOOP|" },
	{ "uid", "b uid fetch 1:* FLAGS\r\n", 0, "CMD b FETCH uid A:1:* A:FLAGS|" },
	{ "uid alone", "b UID\r\n", 0, "BAD b Missing UID command|" },
	{ "quoted escapes", "c LOGIN \"us\\\"er\" \"p\\\\ss\"\r\n", 0,
	  "CMD c LOGIN Q:us\"er Q:p\\ss|" },
	{ "quoted empty", "c LOGIN \"\" x\r\n", 0, "CMD c LOGIN Q: A:x|" },
	{ "quoted bad escape", "c LOGIN \"a\\b\" x\r\n", 0,
	  "BAD c Invalid escape in quoted string|" },
	{ "quoted unterminated", "c LOGIN \"abc\r\n", 0, "BAD c Missing '\"'|" },
	{ "literal in unterminated quote", "c LOGIN \"x {5}\r\nd NOOP\r\n", 0,
	  "BAD c Missing '\"'|CMD d NOOP|" },
	{ "sync literals", "d LOGIN {4}\r\nuser {4}\r\npass\r\n", 0,
	  "CONT|CONT|CMD d LOGIN L4:user L4:pass|" },
	{ "non-sync literal", "e APPEND INBOX {3+}\r\nabc\r\n", 0,
	  "CMD e APPEND A:INBOX L3:abc|" },
	{ "literal with NUL and CRLF", "e APPEND INBOX {5+}\r\na\0\r\nb\r\n", 28,
	  "CMD e APPEND A:INBOX L5:a\\0\\r\\nb|" },
	{ "empty literal", "e X {0}\r\n\r\n", 0, "CONT|CMD e X L0:|" },
	{ "literal then args", "e APPEND INBOX (\\Seen) {2+}\r\nhi (x)\r\n", 0,
	  "CMD e APPEND A:INBOX (A:\\Seen) L2:hi (A:x)|" },
	{ "literal not at a token", "e LOGIN x{3}\r\nabc\r\n", 0,
	  "CONT|BAD e Missing space between arguments|" },
	{ "literal8 sync", "e APPEND x ~{3}\r\nf NOOP\r\n", 0,
	  "BAD e literal8 not supported|CMD f NOOP|" },
	{ "literal8 non-sync", "e APPEND x ~{3+}\r\nabc\r\nf NOOP\r\n", 0,
	  "BAD e literal8 not supported|CMD f NOOP|" },
	{ "literal bad size", "e X {3a}\r\nf NOOP\r\n", 0,
	  "BAD e Invalid literal|CMD f NOOP|" },
	{ "nil and lists", "f X nil (NIL (a \"b\") ()) Nil\r\n", 0,
	  "CMD f X NIL (NIL (A:a Q:b) ()) NIL|" },
	{ "depth max", "f X (((a)))\r\n", 0, "CMD f X (((A:a)))|" },
	{ "depth max+1", "f X ((((a))))\r\ng NOOP\r\n", 0,
	  "BAD f Too deep parenthesized list|CMD g NOOP|" },
	{ "list unclosed", "f X (a b\r\n", 0, "BAD f Missing ')'|" },
	{ "list space before close", "f X (a )\r\n", 0, "BAD f Invalid characters in atom|" },
	{ "list extra close", "f X a)\r\n", 0, "BAD f Missing space between arguments|" },
	{ "fetch section atom", "g FETCH 1 BODY.PEEK[HEADER.FIELDS (From To)]<0.100>\r\n", 0,
	  "CMD g FETCH A:1 A:BODY.PEEK[HEADER.FIELDS (From To)]<0.100>|" },
	{ "fetch section in list", "g FETCH 1 (UID BODY[1.MIME] body[])\r\n", 0,
	  "CMD g FETCH A:1 (A:UID A:BODY[1.MIME] A:body[])|" },
	{ "brackets in other atoms", "g SELECT [Gmail]/Sent\r\n", 0,
	  "CMD g SELECT A:[Gmail]/Sent|" },
	{ "unclosed section", "g FETCH 1 BODY[HEADER (a\r\n", 0, "BAD g Missing ')'|" },
	{ "pipelined", "a NOOP\r\nb CHECK\r\nc LOGOUT\r\n", 0,
	  "CMD a NOOP|CMD b CHECK|CMD c LOGOUT|" },
	{ "empty lines skipped", "\r\n\na NOOP\r\n", 0, "CMD a NOOP|" },
	{ "trailing space", "a NOOP \r\n", 0, "CMD a NOOP|" },
	{ "double space", "a X  y\r\n", 0, "BAD a Invalid characters in atom|" },
	{ "missing command", "a\r\n", 0, "BAD a Missing command|" },
	{ "tag with plus", "a+ NOOP\r\nb NOOP\r\n", 0, "BAD * Invalid tag|CMD b NOOP|" },
	{ "star tag", "* NOOP\r\n", 0, "BAD * Invalid tag|" },
	{ "bad name", "a NO(OP\r\n", 0, "BAD a Invalid command name|" },
	{ "bare CR", "a X b\rc\r\n", 0, "BAD a Missing space between arguments|" },
	{ "8-bit atom", "a X \xc3\xa9\r\n", 0, "BAD a Invalid characters in atom|" },
	{ "8-bit quoted", "a X \"\xc3\xa9\"\r\n", 0, "CMD a X Q:\xc3\xa9|" },
	{ "garbage after quoted", "a X \"b\"c\r\n", 0, "BAD a Missing space between arguments|" },
	{ "sync literal max", "h APPEND x {100}\r\n", 0, "CONT|" },
	{ "sync literal max+1", "h APPEND x {101}\r\ni NOOP\r\n", 0,
	  "TOOLONG h Literal too big big|CMD i NOOP|" },
	{ "sync literal huge", "h APPEND x {99999999999999999999}\r\ni NOOP\r\n", 0,
	  "TOOLONG h Literal too big big|CMD i NOOP|" },
	{ "sync literal second too big", "h X {2}\r\nab {101}\r\ni NOOP\r\n", 0,
	  "CONT|TOOLONG h Literal too big big|CMD i NOOP|" },
	{ "non-sync literal max", "h X {100+}\r\n" L90 "0123456789\r\n", 0,
	  "CMD h X L100:" L90 "0123456789|" },
	{ "non-sync literal max+1", "h APPEND x {101+}\r\ni NOOP\r\n", 0,
	  "TOOLONG h Too long literal|" },
	{ "sync literal over total max", "h X {90}\r\n" L90 " {90}\r\n" L90 " {97}\r\ni NOOP\r\n",
	  0, "CONT|CONT|TOOLONG h Literal too big big|CMD i NOOP|" },
	{ "total max", "h X {90+}\r\n" L90 " {90+}\r\n" L90 " {90+}\r\n" L90 " {90+}\r\n", 0,
	  "TOOLONG h Too long command|" },
};

static void test_reader_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(reader_rows) / sizeof(reader_rows[0]); i++) {
		const char *in = reader_rows[i].in;
		size_t len = reader_rows[i].len != 0 ? reader_rows[i].len : strlen(in);
		static const size_t chunks[] = { SIZE_MAX, 1, 2, 3, 7 };
		for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
			char *got = reader_run(in, len, chunks[c]);
			if (strcmp(got, reader_rows[i].out) != 0) {
				print_error("row '%s' chunk %zu:\n got: %s\nwant: %s\n",
					    reader_rows[i].name, chunks[c], got,
					    reader_rows[i].out);
				fail();
			}
			free(got);
		}
	}
}

/* Line length limits at max-1, max and max+1 (line_max 64, CRLF excluded). */
static void test_reader_line_max(void **state)
{
	(void)state;
	for (size_t n = 62; n <= 66; n++) {
		struct buf in = BUF_INIT;
		buf_append_str(&in, "a X ");
		while (in.len < n)
			buf_append_char(&in, 'y');
		buf_append_str(&in, "\r\n");
		for (size_t chunk = 1; chunk <= in.len; chunk += in.len - 1) {
			char *got = reader_run((const char *)in.data, in.len, chunk);
			if (n <= 64)
				assert_true(strncmp(got, "CMD a X A:yy", 12) == 0);
			else
				assert_string_equal(got, "TOOLONG a Too long line|");
			free(got);
		}
		/* without the LF: max+1 waits (could be the CR), max+2 fails */
		char *got = reader_run((const char *)in.data, in.len - 2, SIZE_MAX);
		assert_string_equal(got, n <= 65 ? "" : "TOOLONG a Too long line|");
		free(got);
		buf_deinit(&in);
	}
}

/* CONTINUE is reported once, then MORE until the literal is complete. */
static void test_reader_continue(void **state)
{
	(void)state;
	struct imap_reader *r = imap_reader_new(&test_limits);
	struct imap_cmd *cmd;
	const char *tag, *error;
	bool big;
	imap_reader_feed(r, "a APPEND x {5}\r\n", 16);
	assert_int_equal(imap_reader_next(r, &cmd, &tag, &error, &big), IMAP_READ_CONTINUE);
	assert_int_equal(imap_reader_next(r, &cmd, &tag, &error, &big), IMAP_READ_MORE);
	imap_reader_feed(r, "ab", 2);
	assert_int_equal(imap_reader_next(r, &cmd, &tag, &error, &big), IMAP_READ_MORE);
	assert_int_equal(imap_reader_next(r, &cmd, &tag, &error, &big), IMAP_READ_MORE);
	imap_reader_feed(r, "cde\r", 4);
	assert_int_equal(imap_reader_next(r, &cmd, &tag, &error, &big), IMAP_READ_MORE);
	imap_reader_feed(r, "\nb NOOP\r\n", 9);
	assert_int_equal(imap_reader_next(r, &cmd, &tag, &error, &big), IMAP_READ_CMD);
	assert_string_equal(cmd->name, "APPEND");
	assert_int_equal(cmd->argc, 2);
	assert_memory_equal(cmd->args[1].str, "abcde", 6);
	imap_cmd_free(&cmd);
	assert_null(cmd);
	const void *p;
	assert_int_equal(imap_reader_pending(r, &p), 8);
	assert_memory_equal(p, "b NOOP\r\n", 8);
	assert_int_equal(imap_reader_next(r, &cmd, &tag, &error, &big), IMAP_READ_CMD);
	assert_string_equal(tag, "b");
	imap_cmd_free(&cmd);
	assert_int_equal(imap_reader_pending(r, &p), 0);
	assert_int_equal(imap_reader_next(r, &cmd, &tag, &error, &big), IMAP_READ_MORE);
	imap_reader_free(&r);
}

static void test_reader_pending(void **state)
{
	(void)state;
	struct imap_reader *r = imap_reader_new(&test_limits);
	struct imap_cmd *cmd;
	const char *tag, *error;
	bool big;
	const void *p;
	assert_int_equal(imap_reader_pending(r, &p), 0);
	const char *in = "a LOGIN u p\r\nb SELECT INBOX\r\nc NO";
	imap_reader_feed(r, in, strlen(in));
	assert_int_equal(imap_reader_next(r, &cmd, &tag, &error, &big), IMAP_READ_CMD);
	imap_cmd_free(&cmd);
	size_t n = imap_reader_pending(r, &p);
	assert_int_equal(n, strlen("b SELECT INBOX\r\nc NO"));
	assert_memory_equal(p, "b SELECT INBOX\r\nc NO", n);
	imap_reader_free(&r);
}

static void test_reader_line(void **state)
{
	(void)state;
	struct imap_reader *r = imap_reader_new(&test_limits);
	const char *line;
	size_t len;
	assert_int_equal(imap_reader_line(r, &line, &len), 0);
	imap_reader_feed(r, "dXNl", 4);
	assert_int_equal(imap_reader_line(r, &line, &len), 0);
	imap_reader_feed(r, "cg==\r\n*\na NOOP\r\n", 16);
	assert_int_equal(imap_reader_line(r, &line, &len), 1);
	assert_string_equal(line, "dXNlcg==");
	assert_int_equal(len, 8);
	assert_int_equal(imap_reader_line(r, &line, &len), 1);
	assert_string_equal(line, "*");
	struct imap_cmd *cmd;
	const char *tag, *error;
	bool big;
	assert_int_equal(imap_reader_next(r, &cmd, &tag, &error, &big), IMAP_READ_CMD);
	imap_cmd_free(&cmd);
	/* line_max (64) and line_max+1 */
	imap_reader_feed(r, L64 "\r\n", 66);
	assert_int_equal(imap_reader_line(r, &line, &len), 1);
	assert_int_equal(len, 64);
	imap_reader_feed(r, L64 "x\r\n", 67);
	assert_int_equal(imap_reader_line(r, &line, &len), -1);
	imap_reader_free(&r);
	r = imap_reader_new(&test_limits);
	imap_reader_feed(r, L64 "xy", 66);
	assert_int_equal(imap_reader_line(r, &line, &len), -1);
	imap_reader_free(&r);
}

/* A 10 MB literal fed in 4 KB chunks: must be linear (the test would take
 * minutes if each feed rescanned the buffer). */
static void test_reader_big_literal(void **state)
{
	(void)state;
	const size_t size = 10 * 1024 * 1024;
	struct imap_reader_limits lim = { 1024, size, size + 1024, 8 };
	struct imap_reader *r = imap_reader_new(&lim);
	struct imap_cmd *cmd;
	const char *tag, *error;
	bool big;
	char hdr[64];
	int n = snprintf(hdr, sizeof(hdr), "A1 APPEND INBOX {%zu}\r\n", size);
	imap_reader_feed(r, hdr, (size_t)n);
	assert_int_equal(imap_reader_next(r, &cmd, &tag, &error, &big), IMAP_READ_CONTINUE);
	char chunk[4096];
	memset(chunk, 'x', sizeof(chunk));
	clock_t t0 = clock();
	for (size_t off = 0; off < size; off += sizeof(chunk)) {
		imap_reader_feed(r, chunk, sizeof(chunk));
		assert_int_equal(imap_reader_next(r, &cmd, &tag, &error, &big), IMAP_READ_MORE);
	}
	imap_reader_feed(r, "\r\n", 2);
	assert_int_equal(imap_reader_next(r, &cmd, &tag, &error, &big), IMAP_READ_CMD);
	assert_int_equal(cmd->args[1].len, size);
	imap_cmd_free(&cmd);
	assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0);
	imap_reader_free(&r);
}

/* ---- argument helpers ---- */

static struct imap_cmd *cmd_parse(const char *line)
{
	struct imap_reader_limits lim = { 4096, 4096, 65536, 10 };
	struct imap_reader *r = imap_reader_new(&lim);
	struct imap_cmd *cmd = NULL;
	const char *tag, *error;
	bool big;
	imap_reader_feed(r, line, strlen(line));
	enum imap_read_result res;
	while ((res = imap_reader_next(r, &cmd, &tag, &error, &big)) == IMAP_READ_CONTINUE)
		;
	if (res != IMAP_READ_CMD)
		print_error("cannot read: %s\n", line);
	assert_int_equal(res, IMAP_READ_CMD);
	imap_reader_free(&r);
	return cmd;
}

static void test_astring(void **state)
{
	(void)state;
	struct imap_cmd *cmd = cmd_parse("a X atom \"q\" {1+}\r\nL NIL (a)\r\n");
	assert_int_equal(cmd->argc, 5);
	assert_string_equal(imap_arg_astring(&cmd->args[0]), "atom");
	assert_string_equal(imap_arg_astring(&cmd->args[1]), "q");
	assert_string_equal(imap_arg_astring(&cmd->args[2]), "L");
	assert_null(imap_arg_astring(&cmd->args[3]));
	assert_null(imap_arg_astring(&cmd->args[4]));
	imap_cmd_free(&cmd);
	struct imap_arg nul = { IMAP_ARG_LITERAL, (char *)"a\0b", 3, NULL, 0 };
	assert_null(imap_arg_astring(&nul));
}

/* ---- sequence sets ---- */

static const struct {
	const char *in;
	const char *ranges; /* "lo-hi,..." with * for STAR; NULL: error */
} seq_rows[] = {
	{ "1", "1-1" },
	{ "1:3,7", "1-3,7-7" },
	{ "*", "*-*" },
	{ "1:*", "1-*" },
	{ "*:5", "*-5" },
	{ "9:2", "9-2" },
	{ "4294967294", "4294967294-4294967294" },
	{ "4294967295", NULL },
	{ "99999999999", NULL },
	{ "0", NULL },
	{ "1:0", NULL },
	{ "01", NULL },
	{ "", NULL },
	{ "1,", NULL },
	{ ",1", NULL },
	{ "1,,2", NULL },
	{ "1:", NULL },
	{ "1:2:3", NULL },
	{ "1 ", NULL },
	{ "-1", NULL },
	{ "$", NULL },
	{ "**", NULL },
};

static void test_seqset(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(seq_rows) / sizeof(seq_rows[0]); i++) {
		struct imap_seqset set;
		const char *error = NULL;
		int ret = imap_seqset_parse(seq_rows[i].in, &set, &error);
		if (seq_rows[i].ranges == NULL) {
			if (ret != -1)
				print_error("row '%s' should fail\n", seq_rows[i].in);
			assert_int_equal(ret, -1);
			assert_non_null(error);
			assert_null(set.ranges);
			assert_int_equal(set.saved, strcmp(seq_rows[i].in, "$") == 0);
			continue;
		}
		assert_int_equal(ret, 0);
		struct buf b = BUF_INIT;
		for (size_t j = 0; j < set.count; j++) {
			uint32_t v[2] = { set.ranges[j].lo, set.ranges[j].hi };
			if (j > 0)
				buf_append_char(&b, ',');
			for (int k = 0; k < 2; k++) {
				if (k == 1)
					buf_append_char(&b, '-');
				if (v[k] == IMAP_SEQ_STAR)
					buf_append_char(&b, '*');
				else
					buf_printf(&b, "%u", v[k]);
			}
		}
		assert_string_equal(buf_cstr(&b), seq_rows[i].ranges);
		buf_deinit(&b);
		imap_seqset_deinit(&set);
	}
}

static void test_seqset_contains_format(void **state)
{
	(void)state;
	struct imap_seqset set;
	const char *error;
	assert_int_equal(imap_seqset_parse("2:4,*:9,20", &set, &error), 0);
	static const struct {
		uint32_t n, star;
		bool in;
	} rows[] = {
		{ 1, 12, false }, { 2, 12, true },  { 4, 12, true },  { 5, 12, false },
		{ 9, 12, true },  { 12, 12, true }, { 13, 12, false }, { 20, 12, true },
		{ 7, 5, true },	  { 5, 5, true },   { 10, 5, false },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(imap_seqset_contains(&set, rows[i].n, rows[i].star), rows[i].in);
	imap_seqset_deinit(&set);

	static const uint32_t v1[] = { 1, 2, 3, 7, 9, 10, 10, 11 };
	struct buf b = BUF_INIT;
	imap_seqset_format(v1, 8, &b);
	assert_string_equal(buf_cstr(&b), "1:3,7,9:11");
	buf_reset(&b);
	imap_seqset_format(v1, 0, &b);
	assert_string_equal(buf_cstr(&b), "");
	imap_seqset_format(v1 + 3, 1, &b);
	assert_string_equal(buf_cstr(&b), "7");
	buf_deinit(&b);
}

/* ---- FETCH ---- */

static void fetch_dump(const struct imap_fetch *f, struct buf *out)
{
	static const char *const names[] = { "FLAGS",	      "INTERNALDATE", "RFC822.SIZE",
					     "ENVELOPE",      "BODY",	      "BODYSTRUCTURE",
					     "UID",	      "RFC822",	      "RFC822.HEADER",
					     "RFC822.TEXT",   "SECTION" };
	for (size_t i = 0; i < f->count; i++) {
		const struct imap_fetch_item *it = &f->items[i];
		if (i > 0)
			buf_append_char(out, ' ');
		buf_append_str(out, names[it->att]);
		if (it->att != IMAP_FETCH_BODY_SECTION)
			continue;
		buf_printf(out, "%s[%s]k%d", it->peek ? ".PEEK" : "", it->section_text,
			   (int)it->kind);
		for (size_t j = 0; j < it->part_count; j++)
			buf_printf(out, "/%u", it->part[j]);
		for (size_t j = 0; j < it->field_count; j++)
			buf_printf(out, "|%s", it->fields[j]);
		if (it->partial)
			buf_printf(out, "<%u.%u>", it->origin, it->count);
	}
}

static const struct {
	const char *args;
	const char *out; /* NULL: error */
} fetch_rows[] = {
	{ "ALL", "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE" },
	{ "fast", "FLAGS INTERNALDATE RFC822.SIZE" },
	{ "FULL", "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY" },
	{ "(ALL)", NULL },
	{ "uid", "UID" },
	{ "(FLAGS UID rfc822.size ENVELOPE BODYSTRUCTURE BODY INTERNALDATE)",
	  "FLAGS UID RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY INTERNALDATE" },
	{ "(RFC822 RFC822.HEADER RFC822.TEXT)", "RFC822 RFC822.HEADER RFC822.TEXT" },
	{ "BODY[]", "SECTION[]k0" },
	{ "BODY.PEEK[]<0.100>", "SECTION.PEEK[]k0<0.100>" },
	{ "BODY.PEEK[HEADER.FIELDS (From To)]<0.100>",
	  "SECTION.PEEK[HEADER.FIELDS (FROM TO)]k2|From|To<0.100>" },
	{ "body[1.2.header.fields.not (\"X-A\" b)]",
	  "SECTION[1.2.HEADER.FIELDS.NOT (X-A B)]k3/1/2|X-A|b" },
	{ "BODY[1.2.3]", "SECTION[1.2.3]k0/1/2/3" },
	{ "BODY[1.MIME]", "SECTION[1.MIME]k5/1" },
	{ "BODY[1.TEXT]", "SECTION[1.TEXT]k4/1" },
	{ "BODY[TEXT]<5.0>", "SECTION[TEXT]k4<5.0>" },
	{ "BODY[HEADER]", "SECTION[HEADER]k1" },
	{ "BODY[MIME]", NULL },
	{ "BODY[0]", NULL },
	{ "BODY[1.0]", NULL },
	{ "BODY[1.]", NULL },
	{ "BODY[.1]", NULL },
	{ "BODY[01]", NULL },
	{ "BODY[1.FOO]", NULL },
	{ "BODY[HEADER.FIELDS]", NULL },
	{ "BODY[HEADER.FIELDS ()]", NULL },
	{ "BODY[HEADER.FIELDS (a]", NULL },
	{ "BODY[HEADER.FIELDS (a) x]", NULL },
	{ "BODY[TEXT x]", NULL },
	{ "BODY[]<>", NULL },
	{ "BODY[]<1>", NULL },
	{ "BODY[]<1.>", NULL },
	{ "BODY[]<1.2>x", NULL },
	{ "BODY[]<4294967296.1>", NULL },
	{ "BODY[4294967296]", NULL },
	{ "BODY[]x", NULL },
	{ "BODY<0.1>", NULL },
	{ "BODYX[]", NULL },
	{ "(FLAGS \"UID\")", NULL },
	{ "()", NULL },
	{ "FOO", NULL },
	{ "(FLAGS (UID))", NULL },
	{ "FLAGS UID", NULL },
};

static void test_fetch(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(fetch_rows) / sizeof(fetch_rows[0]); i++) {
		char line[256];
		snprintf(line, sizeof(line), "t FETCH 1 %s\r\n", fetch_rows[i].args);
		struct imap_cmd *cmd = cmd_parse(line);
		struct imap_fetch f;
		const char *error = NULL;
		int ret = imap_fetch_parse(cmd->args + 1, cmd->argc - 1, &f, &error);
		if (fetch_rows[i].out == NULL) {
			if (ret != -1)
				print_error("row '%s' should fail\n", fetch_rows[i].args);
			assert_int_equal(ret, -1);
			assert_non_null(error);
			assert_null(f.items);
		} else {
			if (ret != 0)
				print_error("row '%s': %s\n", fetch_rows[i].args, error);
			assert_int_equal(ret, 0);
			struct buf b = BUF_INIT;
			fetch_dump(&f, &b);
			if (strcmp(buf_cstr(&b), fetch_rows[i].out) != 0)
				print_error("row '%s': got %s\n", fetch_rows[i].args, buf_cstr(&b));
			assert_string_equal(buf_cstr(&b), fetch_rows[i].out);
			buf_deinit(&b);
			imap_fetch_deinit(&f);
		}
		imap_cmd_free(&cmd);
	}
	struct imap_fetch f;
	const char *error;
	assert_int_equal(imap_fetch_parse(NULL, 0, &f, &error), -1);
}

/* ---- SEARCH ---- */

static void search_dump(const struct imap_search_key *k, struct buf *out)
{
	static const char *const ops[] = {
		"ALL",	      "AND",	"OR",	     "NOT",	   "SEQ",	"UID",
		"FLAG",	      "NOFLAG", "RECENT",    "KEYWORD",	   "UNKEYWORD", "BEFORE",
		"ON",	      "SINCE",	"SENTBEFORE", "SENTON",	   "SENTSINCE", "LARGER",
		"SMALLER",    "HEADER", "BODY",	     "TEXT",
	};
	buf_append_str(out, ops[k->op]);
	switch (k->op) {
	case IMAP_SK_FLAG:
	case IMAP_SK_NOFLAG:
		buf_printf(out, "%u", k->flag);
		break;
	case IMAP_SK_SEQSET:
	case IMAP_SK_UIDSET:
		buf_printf(out, "%zu", k->set.count);
		break;
	case IMAP_SK_BEFORE:
	case IMAP_SK_ON:
	case IMAP_SK_SINCE:
	case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SENTON:
	case IMAP_SK_SENTSINCE:
		buf_printf(out, "%lld", (long long)k->date);
		break;
	case IMAP_SK_LARGER:
	case IMAP_SK_SMALLER:
		buf_printf(out, "%llu", (unsigned long long)k->number);
		break;
	case IMAP_SK_HEADER:
		buf_printf(out, ":%s=%s", k->header, k->str);
		break;
	case IMAP_SK_BODY:
	case IMAP_SK_TEXT:
	case IMAP_SK_KEYWORD:
	case IMAP_SK_UNKEYWORD:
		buf_printf(out, "=%s", k->str);
		break;
	default:
		break;
	}
	if (k->count > 0) {
		buf_append_char(out, '(');
		for (size_t i = 0; i < k->count; i++) {
			if (i > 0)
				buf_append_char(out, ',');
			search_dump(&k->children[i], out);
		}
		buf_append_char(out, ')');
	}
}

static const struct {
	const char *args;
	const char *out; /* NULL: error; "BADCHARSET": bad charset */
} search_rows[] = {
	{ "ALL", "AND(ALL)" },
	{ "CHARSET UTF-8 OR (FROM \"a b\" NOT SEEN) TEXT {3}\r\nx\"y",
	  "AND(OR(AND(HEADER:FROM=a b,NOT(FLAG16)),TEXT=x\"y))" },
	{ "charset us-ascii 1:3,5 UID 7:*", "AND(SEQ2,UID1)" },
	{ "CHARSET \"utf-8\" ALL", "AND(ALL)" },
	{ "CHARSET ISO-8859-1 ALL", "BADCHARSET" },
	{ "CHARSET", NULL },
	{ "ANSWERED DELETED DRAFT FLAGGED SEEN RECENT",
	  "AND(FLAG8,FLAG32,FLAG1,FLAG2,FLAG16,RECENT)" },
	{ "unanswered undeleted undraft unflagged unseen",
	  "AND(NOFLAG8,NOFLAG32,NOFLAG1,NOFLAG2,NOFLAG16)" },
	{ "NEW OLD", "AND(AND(RECENT,NOFLAG16),NOT(RECENT))" },
	{ "BEFORE 1-Feb-1994 ON \"01-feb-1994\" SINCE 2-Feb-1994",
	  "AND(BEFORE760060800,ON760060800,SINCE760147200)" },
	{ "SENTBEFORE 1-Jan-1970 SENTON 1-Jan-1970 SENTSINCE 1-Jan-1970",
	  "AND(SENTBEFORE0,SENTON0,SENTSINCE0)" },
	{ "BEFORE 32-Jan-2000", NULL },
	{ "BEFORE", NULL },
	{ "BEFORE (1-Feb-1994)", NULL },
	{ "LARGER 100 SMALLER 4294967295", "AND(LARGER100,SMALLER4294967295)" },
	{ "LARGER 4294967296", NULL },
	{ "LARGER -1", NULL },
	{ "LARGER x", NULL },
	{ "HEADER X-Spam \"\"", "AND(HEADER:X-Spam=)" },
	{ "HEADER \"\" x", NULL },
	{ "HEADER X", NULL },
	{ "BCC a CC b FROM c SUBJECT d TO e",
	  "AND(HEADER:BCC=a,HEADER:CC=b,HEADER:FROM=c,HEADER:SUBJECT=d,HEADER:TO=e)" },
	{ "BODY x TEXT y", "AND(BODY=x,TEXT=y)" },
	{ "BODY nil", "AND(BODY=nil)" },
	{ "BODY (x)", NULL },
	{ "KEYWORD $Junk UNKEYWORD foo", "AND(KEYWORD=$Junk,UNKEYWORD=foo)" },
	{ "KEYWORD \\Seen", NULL },
	{ "KEYWORD \"x\"", NULL },
	{ "UID", NULL },
	{ "UID 0", NULL },
	{ "UID (1)", NULL },
	{ "0", NULL },
	{ "$", NULL },
	{ "OR SEEN", NULL },
	{ "NOT", NULL },
	{ "(SEEN (DRAFT))", "AND(AND(FLAG16,AND(FLAG1)))" },
	{ "()", NULL },
	{ "", NULL },
	{ "FOO", NULL },
	{ "\"ALL\"", NULL },
	{ "NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT "
	  "NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT "
	  "NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT "
	  "NOT NOT ALL",
	  NULL },
};

static void test_search(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(search_rows) / sizeof(search_rows[0]); i++) {
		char line[1024];
		snprintf(line, sizeof(line), "t SEARCH %s\r\n", search_rows[i].args);
		struct imap_cmd *cmd = cmd_parse(line);
		struct imap_search_key key;
		bool bad_charset = true;
		const char *error = NULL;
		int ret = imap_search_parse(cmd->args, cmd->argc, &key, &bad_charset, &error);
		const char *want = search_rows[i].out;
		if (want == NULL || strcmp(want, "BADCHARSET") == 0) {
			if (ret != -1)
				print_error("row '%s' should fail\n", search_rows[i].args);
			assert_int_equal(ret, -1);
			assert_non_null(error);
			assert_int_equal(bad_charset, want != NULL);
			assert_null(key.children);
		} else {
			if (ret != 0)
				print_error("row '%s': %s\n", search_rows[i].args, error);
			assert_int_equal(ret, 0);
			assert_false(bad_charset);
			struct buf b = BUF_INIT;
			search_dump(&key, &b);
			assert_string_equal(buf_cstr(&b), want);
			buf_deinit(&b);
			imap_search_key_deinit(&key);
		}
		imap_cmd_free(&cmd);
	}
}

/* ---- flags and STORE ---- */

static const struct {
	const char *args;
	int ret;
	unsigned flags;
	size_t keywords;
} flags_rows[] = {
	{ "(\\Seen \\deleted)", 0, IMAP_FLAG_SEEN | IMAP_FLAG_DELETED, 0 },
	{ "()", 0, 0, 0 },
	{ "(\\Answered \\Flagged \\Draft $Junk kw)", 0,
	  IMAP_FLAG_ANSWERED | IMAP_FLAG_FLAGGED | IMAP_FLAG_DRAFT, 2 },
	{ "\\Seen kw", 0, IMAP_FLAG_SEEN, 1 },
	{ "(\\Recent)", -1, 0, 0 },
	{ "(\\Foo)", -1, 0, 0 },
	{ "(\\)", -1, 0, 0 },
	{ "(\"Seen\")", -1, 0, 0 },
	{ "(a*)", -1, 0, 0 },
	{ "(a] b)", -1, 0, 0 },
	{ "((\\Seen))", -1, 0, 0 },
	{ "NIL", -1, 0, 0 },
	{ "", -1, 0, 0 },
};

static void test_flags(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(flags_rows) / sizeof(flags_rows[0]); i++) {
		char line[256];
		snprintf(line, sizeof(line), "t X %s\r\n", flags_rows[i].args);
		struct imap_cmd *cmd = cmd_parse(line);
		unsigned flags;
		size_t kw;
		const char *error = NULL;
		int ret = imap_flags_parse(cmd->args, cmd->argc, &flags, &kw, &error);
		if (ret != flags_rows[i].ret)
			print_error("row '%s'\n", flags_rows[i].args);
		assert_int_equal(ret, flags_rows[i].ret);
		if (ret == 0) {
			assert_int_equal(flags, flags_rows[i].flags);
			assert_int_equal(kw, flags_rows[i].keywords);
		} else {
			assert_non_null(error);
		}
		imap_cmd_free(&cmd);
	}
	struct buf b = BUF_INIT;
	imap_flags_format(IMAP_FLAG_SEEN | IMAP_FLAG_DELETED | IMAP_FLAG_DRAFT, true, &b);
	assert_string_equal(buf_cstr(&b), "\\Deleted \\Seen \\Draft \\Recent");
	buf_reset(&b);
	imap_flags_format(0, false, &b);
	assert_string_equal(buf_cstr(&b), "");
	imap_flags_format(0, true, &b);
	assert_string_equal(buf_cstr(&b), "\\Recent");
	buf_deinit(&b);
}

static const struct {
	const char *args;
	int ret;
	enum imap_store_mode mode;
	bool silent;
	unsigned flags;
} store_rows[] = {
	{ "FLAGS (\\Seen)", 0, IMAP_STORE_SET, false, IMAP_FLAG_SEEN },
	{ "+flags.silent \\Deleted", 0, IMAP_STORE_ADD, true, IMAP_FLAG_DELETED },
	{ "-FLAGS (\\Draft \\Seen)", 0, IMAP_STORE_REMOVE, false,
	  IMAP_FLAG_DRAFT | IMAP_FLAG_SEEN },
	{ "-FLAGS.SILENT ()", 0, IMAP_STORE_REMOVE, true, 0 },
	{ "FLAGS", -1, 0, false, 0 },
	{ "*FLAGS (\\Seen)", -1, 0, false, 0 },
	{ "+FLAGS.LOUD (\\Seen)", -1, 0, false, 0 },
	{ "\"FLAGS\" (\\Seen)", -1, 0, false, 0 },
	{ "FLAGS (\\Recent)", -1, 0, false, 0 },
	{ "", -1, 0, false, 0 },
};

static void test_store(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(store_rows) / sizeof(store_rows[0]); i++) {
		char line[256];
		snprintf(line, sizeof(line), "t STORE 1 %s\r\n", store_rows[i].args);
		struct imap_cmd *cmd = cmd_parse(line);
		struct imap_store st;
		const char *error = NULL;
		int ret = imap_store_parse(cmd->args + 1, cmd->argc - 1, &st, &error);
		if (ret != store_rows[i].ret)
			print_error("row '%s'\n", store_rows[i].args);
		assert_int_equal(ret, store_rows[i].ret);
		if (ret == 0) {
			assert_int_equal(st.mode, store_rows[i].mode);
			assert_int_equal(st.silent, store_rows[i].silent);
			assert_int_equal(st.flags, store_rows[i].flags);
		} else {
			assert_non_null(error);
		}
		imap_cmd_free(&cmd);
	}
}

/* ---- dates ---- */

static const struct {
	const char *in;
	bool datetime;
	long long t; /* -1: error */
} date_rows[] = {
	{ "1-Feb-1994", false, 760060800 },
	{ "01-FEB-1994", false, 760060800 },
	{ "29-Feb-2000", false, 951782400 },
	{ "29-Feb-1900", false, -1 },
	{ "29-Feb-1999", false, -1 },
	{ "31-Apr-1999", false, -1 },
	{ "0-Jan-1999", false, -1 },
	{ " 1-Feb-1994", false, -1 },
	{ "1-Fev-1994", false, -1 },
	{ "1-Feb-94", false, -1 },
	{ "1-Feb-19944", false, -1 },
	{ "1/Feb/1994", false, -1 },
	{ "123-Feb-1994", false, -1 },
	{ "", false, -1 },
	{ "17-Jul-1996 02:44:25 -0700", true, 837596665 },
	{ " 7-Jul-1996 02:44:25 +0000", true, 836707465 },
	{ "07-jul-1996 02:44:25 +0130", true, 836702065 },
	{ "7-Jul-1996 02:44:25 +0000", true, 836707465 },
	{ "17-Jul-1996 24:00:00 +0000", true, -1 },
	{ "17-Jul-1996 02:60:00 +0000", true, -1 },
	{ "17-Jul-1996 02:44:25 +0060", true, -1 },
	{ "17-Jul-1996 02:44:25", true, -1 },
	{ "17-Jul-1996 02:44:25 0700", true, -1 },
	{ "17-Jul-1996 02:44:25 -0700 ", true, -1 },
	{ "17-Jul-1996  2:44:25 -0700", true, -1 },
};

static void test_dates(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(date_rows) / sizeof(date_rows[0]); i++) {
		time_t t = 12345;
		int ret = date_rows[i].datetime ? imap_datetime_parse(date_rows[i].in, &t)
						: imap_date_parse(date_rows[i].in, &t);
		if (ret != (date_rows[i].t < 0 ? -1 : 0))
			print_error("row '%s'\n", date_rows[i].in);
		if (date_rows[i].t < 0) {
			assert_int_equal(ret, -1);
			assert_int_equal(t, 12345);
		} else {
			assert_int_equal(ret, 0);
			assert_int_equal((long long)t, date_rows[i].t);
		}
	}
	struct buf b = BUF_INIT;
	imap_datetime_format(837596665, &b);
	assert_string_equal(buf_cstr(&b), "\"17-Jul-1996 09:44:25 +0000\"");
	buf_reset(&b);
	imap_datetime_format(760060800, &b);
	assert_string_equal(buf_cstr(&b), "\"01-Feb-1994 00:00:00 +0000\"");
	/* round trip */
	time_t t;
	assert_int_equal(imap_datetime_parse("01-Feb-1994 00:00:00 +0000", &t), 0);
	assert_int_equal(t, 760060800);
	buf_deinit(&b);
}

/* ---- strings out ---- */

static void test_strings(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		size_t len;
		bool astring;
		const char *out;
	} rows[] = {
		{ "abc", 3, false, "\"abc\"" },
		{ "", 0, false, "\"\"" },
		{ "a\"b\\c", 5, false, "\"a\\\"b\\\\c\"" },
		{ "a\r\nb", 4, false, "{4}\r\na\r\nb" },
		{ "a\0b", 3, false, "{3}\r\na\0b" },
		{ "\xc3\xa9", 2, false, "{2}\r\n\xc3\xa9" },
		{ NULL, 0, false, "NIL" },
		{ "INBOX", 5, true, "INBOX" },
		{ "[Gmail]/Sent", 12, true, "[Gmail]/Sent" },
		{ "a b", 3, true, "\"a b\"" },
		{ "nil", 3, true, "\"nil\"" },
		{ "", 0, true, "\"\"" },
		{ "a*", 2, true, "\"a*\"" },
		{ "a\\", 2, true, "\"a\\\\\"" },
		{ "{x", 2, true, "\"{x\"" },
		{ NULL, 0, true, "NIL" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct buf b = BUF_INIT;
		if (rows[i].astring)
			imap_astring_append(&b, rows[i].in);
		else
			imap_string_append(&b, rows[i].in, rows[i].len);
		size_t want_len = strlen(rows[i].out);
		if (rows[i].in != NULL && memchr(rows[i].in, '\0', rows[i].len) != NULL)
			want_len = 8;
		assert_int_equal(b.len, want_len);
		assert_memory_equal(b.data, rows[i].out, want_len);
		buf_deinit(&b);
	}
	/* quoted up to 1023 bytes, literal from 1024 */
	for (size_t n = 1023; n <= 1024; n++) {
		char *s = xmalloc(n + 1);
		memset(s, 'a', n);
		s[n] = '\0';
		struct buf b = BUF_INIT;
		imap_cstring_append(&b, s);
		assert_int_equal(b.data[0], n < 1024 ? '"' : '{');
		buf_deinit(&b);
		free(s);
	}
	struct buf b = BUF_INIT;
	imap_cstring_append(&b, NULL);
	assert_string_equal(buf_cstr(&b), "NIL");
	buf_deinit(&b);
}

/* ---- modified UTF-7 ---- */

static const struct {
	const char *mutf7;
	const char *utf8; /* NULL: invalid mUTF-7 */
} mutf7_rows[] = {
	{ "INBOX", "INBOX" },
	{ "&-", "&" },
	{ "a&-b&-", "a&b&" },
	{ "&AOk-t&AOk-", "\xc3\xa9t\xc3\xa9" },
	{ "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	  "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
	{ "&2D3eAA-", "\xf0\x9f\x98\x80" }, /* U+1F600, a surrogate pair */
	{ "&AAk-", NULL },	 /* a control character (TAB) */
	{ "&AAA-", NULL },	 /* NUL */
	{ "&", NULL },
	{ "&AOk", NULL },
	{ "&AOl-", NULL },	 /* unused bits not zero */
	{ "&AE4-", NULL },	 /* "N" encoded */
	{ "&2D0-", NULL },	 /* lone high surrogate */
	{ "&3gA-", NULL },	 /* lone low surrogate */
	{ "&AOk-&AOk-", NULL }, /* two adjacent runs */
	{ "&AOk/-", NULL },	 /* "/" is not modified base64 */
	{ "&=-", NULL },
	{ "\xc3\xa9", NULL },
	{ "a\tb", NULL },
	{ "&AOkA6Q-", "\xc3\xa9\xc3\xa9" },
};

static void test_mutf7(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(mutf7_rows) / sizeof(mutf7_rows[0]); i++) {
		struct buf b = BUF_INIT;
		buf_append_str(&b, "x");
		int ret = imap_mutf7_to_utf8(mutf7_rows[i].mutf7, &b);
		assert_int_equal(imap_mutf7_check(mutf7_rows[i].mutf7), ret);
		if (mutf7_rows[i].utf8 == NULL) {
			if (ret != -1)
				print_error("row '%s' should fail\n", mutf7_rows[i].mutf7);
			assert_int_equal(ret, -1);
			assert_string_equal(buf_cstr(&b), "x");
		} else {
			assert_int_equal(ret, 0);
			assert_string_equal(buf_cstr(&b) + 1, mutf7_rows[i].utf8);
			buf_reset(&b);
			assert_int_equal(imap_utf8_to_mutf7(mutf7_rows[i].utf8, &b), 0);
			assert_string_equal(buf_cstr(&b), mutf7_rows[i].mutf7);
		}
		buf_deinit(&b);
	}
	static const char *const bad_utf8[] = {
		"\xc3", "\xc0\x80", "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff",
		"a\xc3(",
	};
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		struct buf b = BUF_INIT;
		assert_int_equal(imap_utf8_to_mutf7(bad_utf8[i], &b), -1);
		assert_string_equal(buf_cstr(&b), "");
		buf_deinit(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_rows),
		cmocka_unit_test(test_reader_line_max),
		cmocka_unit_test(test_reader_continue),
		cmocka_unit_test(test_reader_pending),
		cmocka_unit_test(test_reader_line),
		cmocka_unit_test(test_reader_big_literal),
		cmocka_unit_test(test_astring),
		cmocka_unit_test(test_seqset),
		cmocka_unit_test(test_seqset_contains_format),
		cmocka_unit_test(test_fetch),
		cmocka_unit_test(test_search),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_mutf7),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
