/* mime_test.c - unit tests for mime.c, mime_envelope.c and mime_decode.c:
 * BODYSTRUCTURE / BODY / ENVELOPE golden strings, part ranges, section
 * lookup, header fields, RFC 2047 and body decoding, nesting and part
 * limits.  Messages are written with LF and converted to CRLF, as the
 * caller of mime_parse() does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/mime.h"

/* LF -> CRLF; new string. */
static char *crlf(const char *s)
{
	struct buf b = BUF_INIT;
	for (; *s != '\0'; s++) {
		if (*s == '\n')
			buf_append_char(&b, '\r');
		buf_append_char(&b, *s);
	}
	return buf_steal(&b);
}

static void check_str(const char *what, const char *got, const char *want)
{
	if (strcmp(got, want) != 0) {
		print_error("%s:\n got: %s\nwant: %s\n", what, got, want);
		fail();
	}
}

/* ---- BODYSTRUCTURE / BODY ---- */

struct bs_case {
	const char *name;
	const char *msg; /* LF line ends */
	const char *bodystructure;
	const char *body;
};

static const struct bs_case bs_cases[] = {
	{ "simple text",
	  "From: a@b.c\nSubject: hi\nContent-Type: text/plain; charset=UTF-8\n\nhello\nworld\n",
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\") NIL NIL \"7BIT\" 14 2 NIL NIL NIL NIL)",
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\") NIL NIL \"7BIT\" 14 2)" },
	{ "no content-type, last line without CRLF", "Subject: x\n\nabc",
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 3 1 NIL NIL NIL NIL)",
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 3 1)" },
	{ "invalid content-type is text/plain", "Content-Type: garbage\n\nabc\n",
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 5 1 NIL NIL NIL NIL)",
	  NULL },
	{ "no header/body separator", "Subject: x\nTo: y",
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL)",
	  NULL },
	{ "empty message", "",
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL)",
	  NULL },
	{ "fields, comments, quoting, RFC 2231",
	  "Content-Type: Text/HTML (comment) ; CharSet=\"iso-8859-1\";\n"
	  " title*1*=%20b; title*0*=us-ascii'en'a\n"
	  "Content-ID: <c1@x>\nContent-Description: say \"hi\"\n"
	  "Content-Transfer-Encoding: Quoted-Printable\nContent-MD5: Q2hlY2s=\n"
	  "Content-Disposition: INLINE\nContent-Language: fr\n"
	  "Content-Location: http://x/y\n\nx=\n",
	  "(\"TEXT\" \"HTML\" (\"CHARSET\" \"iso-8859-1\" \"TITLE*\" \"us-ascii'en'a%20b\") "
	  "\"<c1@x>\" \"say \\\"hi\\\"\" \"QUOTED-PRINTABLE\" 4 1 \"Q2hlY2s=\" (\"INLINE\" NIL) "
	  "\"fr\" \"http://x/y\")",
	  "(\"TEXT\" \"HTML\" (\"CHARSET\" \"iso-8859-1\" \"TITLE*\" \"us-ascii'en'a%20b\") "
	  "\"<c1@x>\" \"say \\\"hi\\\"\" \"QUOTED-PRINTABLE\" 4 1)" },
	{ "multipart/mixed with base64 attachment",
	  "From: a@b.c\nContent-Type: multipart/mixed; boundary=\"XX\"\n\npreamble\n--XX\n"
	  "Content-Type: text/plain\n\nBody text\n--XX\n"
	  "Content-Type: application/octet-stream; name=\"a.bin\"\n"
	  "Content-Transfer-Encoding: base64\n"
	  "Content-Disposition: attachment; filename=\"a.bin\"\n\nAAEC\n--XX--\nepilogue\n",
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 9 1 NIL NIL NIL NIL)"
	  "(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"a.bin\") NIL NIL \"BASE64\" 4 NIL "
	  "(\"ATTACHMENT\" (\"FILENAME\" \"a.bin\")) NIL NIL) \"MIXED\" (\"BOUNDARY\" \"XX\") "
	  "NIL NIL NIL)",
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 9 1)"
	  "(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"a.bin\") NIL NIL \"BASE64\" 4) "
	  "\"MIXED\")" },
	{ "alternative in mixed, inner boundary a prefix of the outer",
	  "Content-Type: multipart/mixed; boundary=\"abc-outer\"\n\n--abc-outer\n"
	  "Content-Type: multipart/alternative; boundary=abc\n\n--abc\n"
	  "Content-Type: text/plain\n\nplain\n--abc \t\nContent-Type: text/html\n\n"
	  "<b>html</b>\n--abc--\n\n--abc-outer\nContent-Type: text/plain; name=x.txt\n\n"
	  "att\n--abc-outer--\n",
	  "(((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 5 1 NIL NIL NIL NIL)"
	  "(\"TEXT\" \"HTML\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 11 1 NIL NIL NIL NIL) "
	  "\"ALTERNATIVE\" (\"BOUNDARY\" \"abc\") NIL NIL NIL)"
	  "(\"TEXT\" \"PLAIN\" (\"NAME\" \"x.txt\") NIL NIL \"7BIT\" 3 1 NIL NIL NIL NIL) "
	  "\"MIXED\" (\"BOUNDARY\" \"abc-outer\") NIL NIL NIL)",
	  NULL },
	{ "message/rfc822 part",
	  "Subject: fwd\nContent-Type: multipart/mixed; boundary=B\n\n--B\n\nsee attached\n--B\n"
	  "Content-Type: message/rfc822\n\n"
	  "From: \"Doe, John\" <john@example.com>\nSubject: inner\n\ninner body\nline2\n--B--\n",
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 12 1 NIL NIL NIL NIL)"
	  "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 73 (NIL \"inner\" "
	  "((\"Doe, John\" NIL \"john\" \"example.com\")) "
	  "((\"Doe, John\" NIL \"john\" \"example.com\")) "
	  "((\"Doe, John\" NIL \"john\" \"example.com\")) NIL NIL NIL NIL NIL) "
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 17 2 NIL NIL NIL NIL) "
	  "5 NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"B\") NIL NIL NIL)",
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 12 1)"
	  "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 73 (NIL \"inner\" "
	  "((\"Doe, John\" NIL \"john\" \"example.com\")) "
	  "((\"Doe, John\" NIL \"john\" \"example.com\")) "
	  "((\"Doe, John\" NIL \"john\" \"example.com\")) NIL NIL NIL NIL NIL) "
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 17 2) 5) \"MIXED\")" },
	{ "base64 message/rfc822 is a basic body",
	  "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeA0K\n",
	  "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"BASE64\" 18 NIL NIL NIL NIL)", NULL },
	{ "multipart/digest default type",
	  "Content-Type: multipart/digest; boundary=D\n\n--D\n\nSubject: one\n\n1\n--D\n"
	  "Content-Type: text/plain\n\ntwo\n--D--\n",
	  "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 17 (NIL \"one\" NIL NIL NIL NIL NIL NIL "
	  "NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 1 1 NIL NIL "
	  "NIL NIL) 3 NIL NIL NIL NIL)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL "
	  "\"7BIT\" 3 1 NIL NIL NIL NIL) \"DIGEST\" (\"BOUNDARY\" \"D\") NIL NIL NIL)",
	  NULL },
	{ "missing end boundary",
	  "Content-Type: multipart/mixed; boundary=E\n\n--E\n\none\n--E\n\ntwo\nthree\n",
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 3 1 NIL NIL NIL NIL)"
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 12 2 NIL NIL NIL NIL) "
	  "\"MIXED\" (\"BOUNDARY\" \"E\") NIL NIL NIL)",
	  NULL },
	{ "multipart without any boundary line",
	  "Content-Type: multipart/mixed; boundary=Z\n\nno parts here\n",
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL) "
	  "\"MIXED\" (\"BOUNDARY\" \"Z\") NIL NIL NIL)",
	  NULL },
	{ "boundary followed by text is no delimiter",
	  "Content-Type: multipart/mixed; boundary=Q\n\n--Q\n\na\n--Qx\nb\n--Q--\n",
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 10 3 NIL NIL NIL NIL) "
	  "\"MIXED\" (\"BOUNDARY\" \"Q\") NIL NIL NIL)",
	  NULL },
	{ "8-bit and long values are literals",
	  "Content-Type: text/plain; name=\"caf\xc3\xa9\"\n\nx",
	  "(\"TEXT\" \"PLAIN\" (\"NAME\" {5}\r\ncaf\xc3\xa9) NIL NIL \"7BIT\" 1 1 NIL NIL NIL NIL)",
	  NULL },
};

static void test_bodystructure(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bs_cases) / sizeof(bs_cases[0]); i++) {
		const struct bs_case *c = &bs_cases[i];
		char *msg = crlf(c->msg);
		struct mime_part *root = mime_parse(msg, strlen(msg));
		struct buf out = BUF_INIT;
		mime_bodystructure_append(root, msg, true, &out);
		check_str(c->name, buf_cstr(&out), c->bodystructure);
		if (c->body != NULL) {
			buf_reset(&out);
			mime_bodystructure_append(root, msg, false, &out);
			check_str(c->name, buf_cstr(&out), c->body);
		}
		buf_deinit(&out);
		mime_part_free(&root);
		assert_null(root);
		free(msg);
	}
}

/* ---- part lookup and byte ranges ---- */

static const char *find_msg =
	"Subject: top\nContent-Type: multipart/mixed; boundary=\"o\"\n\n"
	"--o\nContent-Type: text/plain\n\npart one\n"
	"--o\nContent-Type: multipart/alternative; boundary=\"i\"\n\n"
	"--i\nContent-Type: text/plain\n\nalt plain\n--i\nContent-Type: text/html\n\n<p>alt</p>\n"
	"--i--\n"
	"--o\nContent-Type: message/rfc822\n\nSubject: inner\n"
	"Content-Type: multipart/mixed; boundary=\"n\"\n\n--n\n\ninner one\n--n\n\ninner two\n"
	"\n--n--\n"
	"--o--\n";

struct find_case {
	const char *name;
	uint32_t path[4];
	size_t count;
	const char *header; /* NULL: the part does not exist */
	const char *body;
};

static const struct find_case find_cases[] = {
	{ "whole message", { 0 }, 0, "Subject: top\r\n", NULL },
	{ "1", { 1 }, 1, "Content-Type: text/plain\r\n\r\n", "part one" },
	{ "2", { 2 }, 1, "Content-Type: multipart/alternative; boundary=\"i\"\r\n\r\n", NULL },
	{ "2.1", { 2, 1 }, 2, "Content-Type: text/plain\r\n\r\n", "alt plain" },
	{ "2.2", { 2, 2 }, 2, "Content-Type: text/html\r\n\r\n", "<p>alt</p>" },
	{ "3", { 3 }, 1, "Content-Type: message/rfc822\r\n\r\n", NULL },
	{ "3.1 into the attached message", { 3, 1 }, 2, "\r\n", "inner one" },
	{ "3.2", { 3, 2 }, 2, "\r\n", "inner two\r\n" },
	{ "1.1 of a leaf is itself", { 1, 1 }, 2, "Content-Type: text/plain\r\n\r\n",
	  "part one" },
	{ "4 does not exist", { 4 }, 1, NULL, NULL },
	{ "0 does not exist", { 0 }, 1, NULL, NULL },
	{ "2.3 does not exist", { 2, 3 }, 2, NULL, NULL },
	{ "3.3 does not exist", { 3, 3 }, 2, NULL, NULL },
	{ "1.2 does not exist", { 1, 2 }, 2, NULL, NULL },
	{ "2.1.1.2 does not exist", { 2, 1, 1, 2 }, 4, NULL, NULL },
};

static void test_find(void **state)
{
	(void)state;
	char *msg = crlf(find_msg);
	struct mime_part *root = mime_parse(msg, strlen(msg));
	for (size_t i = 0; i < sizeof(find_cases) / sizeof(find_cases[0]); i++) {
		const struct find_case *c = &find_cases[i];
		const struct mime_part *p = mime_part_find(root, c->path, c->count);
		if (c->header == NULL) {
			if (p != NULL)
				print_error("%s: found\n", c->name);
			assert_null(p);
			continue;
		}
		assert_non_null(p);
		char *hdr = xstrndup(msg + p->header_start, p->header_len);
		if (strncmp(hdr, c->header, strlen(c->header)) != 0)
			check_str(c->name, hdr, c->header);
		free(hdr);
		assert_int_equal(p->body_start, p->header_start + p->header_len);
		if (c->body != NULL) {
			char *body = xstrndup(msg + p->body_start, p->body_len);
			check_str(c->name, body, c->body);
			free(body);
		}
	}
	/* 3 is the message/rfc822 part: its message's header is the inner one */
	const uint32_t three[] = { 3 };
	const struct mime_part *p = mime_part_find(root, three, 1);
	assert_non_null(p->message);
	assert_int_equal(p->message->header_start, p->body_start);
	char *inner = mime_header_get(msg + p->message->header_start, p->message->header_len,
				      "subject");
	assert_string_equal(inner, "inner");
	free(inner);
	assert_int_equal(p->body_lines, 11);
	mime_part_free(&root);
	free(msg);
}

/* ---- ENVELOPE ---- */

struct env_case {
	const char *name;
	const char *hdr;
	const char *envelope;
};

static const struct env_case env_cases[] = {
	{ "full",
	  "Date: Mon, 1 Jan 2024 10:00:00 +0100\nSubject: Hello\n  world\n"
	  "From: \"Doe, John\" <john@example.com>\nSender: sec@example.com\n"
	  "Reply-To: list@example.com\nTo: Jane Q. Public <jane@example.org>, bob@x.y\n"
	  "Cc: (comment) carol@z.w (Carol)\nBcc: dave@v.u\nIn-Reply-To: <a@b>\n"
	  "Message-ID: <m1@example.com>\n",
	  "(\"Mon, 1 Jan 2024 10:00:00 +0100\" \"Hello  world\" "
	  "((\"Doe, John\" NIL \"john\" \"example.com\")) ((NIL NIL \"sec\" \"example.com\")) "
	  "((NIL NIL \"list\" \"example.com\")) "
	  "((\"Jane Q. Public\" NIL \"jane\" \"example.org\")(NIL NIL \"bob\" \"x.y\")) "
	  "((NIL NIL \"carol\" \"z.w\")) ((NIL NIL \"dave\" \"v.u\")) \"<a@b>\" "
	  "\"<m1@example.com>\")" },
	{ "empty header", "",
	  "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)" },
	{ "sender and reply-to default to from, empty sender too",
	  "From: a@b.c\nSender:\n",
	  "(NIL NIL ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) "
	  "((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL)" },
	{ "groups",
	  "To: friends: a@b.c, \"Q, R\" <r@s.t>;, solo@x.y\nCc: undisclosed-recipients:;\n",
	  "(NIL NIL NIL NIL NIL ((NIL NIL \"friends\" NIL)(NIL NIL \"a\" \"b.c\")"
	  "(\"Q, R\" NIL \"r\" \"s.t\")(NIL NIL NIL NIL)(NIL NIL \"solo\" \"x.y\")) "
	  "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL)" },
	{ "unterminated group, local-only address, route, quoted local part",
	  "To: g: root\nCc: <@r1,@r2:u@h>, \"a b\"@c.d, <>\n",
	  "(NIL NIL NIL NIL NIL ((NIL NIL \"g\" NIL)(NIL NIL \"root\" \"\")(NIL NIL NIL NIL)) "
	  "((NIL \"@r1,@r2\" \"u\" \"h\")(NIL NIL \"a b\" \"c.d\")) NIL NIL NIL)" },
	{ "encoded-word kept raw, quotes and backslashes escaped",
	  "Subject: =?iso-8859-1?q?caf=E9?= \"q\" \\\nFrom: =?utf-8?b?w6k=?= <e@f.g>\n",
	  "(NIL \"=?iso-8859-1?q?caf=E9?= \\\"q\\\" \\\\\" "
	  "((\"=?utf-8?b?w6k=?=\" NIL \"e\" \"f.g\")) ((\"=?utf-8?b?w6k=?=\" NIL \"e\" \"f.g\")) "
	  "((\"=?utf-8?b?w6k=?=\" NIL \"e\" \"f.g\")) NIL NIL NIL NIL NIL)" },
	{ "8-bit subject is a literal",
	  "Subject: caf\xc3\xa9\n",
	  "(NIL {5}\r\ncaf\xc3\xa9 NIL NIL NIL NIL NIL NIL NIL NIL)" },
	{ "first field of a name wins, case-insensitive, stops at the body",
	  "SUBJECT: one\nsubject: two\n\nSubject: body\n",
	  "(NIL \"one\" NIL NIL NIL NIL NIL NIL NIL NIL)" },
};

static void test_envelope(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(env_cases) / sizeof(env_cases[0]); i++) {
		const struct env_case *c = &env_cases[i];
		char *hdr = crlf(c->hdr);
		struct buf out = BUF_INIT;
		mime_envelope_append(hdr, strlen(hdr), &out);
		check_str(c->name, buf_cstr(&out), c->envelope);
		buf_deinit(&out);
		free(hdr);
	}
}

/* ---- header fields ---- */

static void test_header_fields(void **state)
{
	(void)state;
	char *hdr = crlf("From: a@b\nSubject: x\n y\nTo: c@d\nX-Spam: 1\n\nbody: no\n");
	size_t len = strlen(hdr);
	char *names[] = { "subject", "TO", "missing" };
	struct buf out = BUF_INIT;

	mime_header_fields_append(hdr, len, names, 3, false, &out);
	check_str("include", buf_cstr(&out), "Subject: x\r\n y\r\nTo: c@d\r\n\r\n");
	buf_reset(&out);
	mime_header_fields_append(hdr, len, names, 3, true, &out);
	check_str(".NOT", buf_cstr(&out), "From: a@b\r\nX-Spam: 1\r\n\r\n");
	buf_reset(&out);
	mime_header_fields_append(hdr, len, names, 0, false, &out);
	check_str("no names", buf_cstr(&out), "\r\n");
	buf_reset(&out);
	/* a last field without its line end gets one */
	mime_header_fields_append("A: 1\r\nB: 2", 10, NULL, 0, true, &out);
	check_str("no final CRLF", buf_cstr(&out), "A: 1\r\nB: 2\r\n\r\n");
	buf_deinit(&out);

	char *v = mime_header_get(hdr, len, "subject");
	assert_string_equal(v, "x y");
	free(v);
	assert_null(mime_header_get(hdr, len, "body"));
	assert_null(mime_header_get(hdr, len, "subj"));
	free(hdr);
}

/* ---- RFC 2047 ---- */

struct dec_case {
	const char *name;
	const char *in;
	const char *out;
};

static const struct dec_case dec_cases[] = {
	{ "plain", "hello world", "hello world" },
	{ "Q latin1 and B utf-8, space between words dropped",
	  "=?iso-8859-1?q?caf=E9?= =?utf-8?b?w6k=?=", "caf\xc3\xa9\xc3\xa9" },
	{ "Q underscore", "=?UTF-8?Q?a_b=3Fc?=", "a b?c" },
	{ "text around", "Re: =?utf-8?Q?x?= end", "Re: x end" },
	{ "utf-8 character split over two words", "=?utf-8?b?4oI=?= =?utf-8?b?rA==?=",
	  "\xe2\x82\xac" },
	{ "windows-1252 euro", "=?windows-1252?Q?=80?=", "\xe2\x82\xac" },
	{ "iso-8859-15 euro", "=?ISO-8859-15?B?pA==?=", "\xe2\x82\xac" },
	{ "RFC 2231 language", "=?us-ascii*en?q?hi?=", "hi" },
	{ "unknown charset left encoded", "=?x-klingon?q?a?=", "=?x-klingon?q?a?=" },
	{ "bad encoding letter", "=?utf-8?x?a?=", "=?utf-8?x?a?=" },
	{ "unterminated", "=?utf-8?q?abc", "=?utf-8?q?abc" },
	{ "invalid bytes in charset", "=?utf-8?q?=FF?=", "\xff" },
	{ "space kept before plain text", "=?utf-8?q?a?= b", "a b" },
};

static void test_header_decode(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(dec_cases) / sizeof(dec_cases[0]); i++) {
		struct buf out = BUF_INIT;
		mime_header_decode_append(dec_cases[i].in, strlen(dec_cases[i].in), &out);
		check_str(dec_cases[i].name, buf_cstr(&out), dec_cases[i].out);
		buf_deinit(&out);
	}
}

/* ---- body text ---- */

static const struct dec_case body_cases[] = {
	{ "7bit", "Content-Type: text/plain\n\nhello\n", "hello\r\n" },
	{ "base64 latin1",
	  "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: base64\n\n"
	  "Y2Fm\n6Q==\n",
	  "caf\xc3\xa9" },
	{ "quoted-printable soft breaks and padding",
	  "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n"
	  "\nlong=\nline =C3=A9  \nx=3D1 =zz\n",
	  "longline \xc3\xa9\r\nx=1 =zz\r\n" },
	{ "multipart: text leaves only",
	  "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n"
	  "Content-Type: image/png\nContent-Transfer-Encoding: base64\n\nAAAA\n--b\n"
	  "Content-Type: message/rfc822\n\nSubject: s\n\ninner\n--b--\n",
	  "one\ninner" },
	{ "non-text top part decoded as is",
	  "Content-Type: application/x\nContent-Transfer-Encoding: base64\n\nYWJj\n", "abc" },
};

static void test_body_text(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++) {
		char *msg = crlf(body_cases[i].in);
		struct mime_part *root = mime_parse(msg, strlen(msg));
		struct buf out = BUF_INIT;
		mime_body_text_append(root, msg, &out);
		check_str(body_cases[i].name, buf_cstr(&out), body_cases[i].out);
		buf_deinit(&out);
		mime_part_free(&root);
		free(msg);
	}
}

/* ---- limits ---- */

/* levels nested multiparts around a text/plain "leaf". */
static char *nested_msg(size_t levels)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < levels; i++)
		buf_printf(&b, "Content-Type: multipart/mixed; boundary=\"b%zu\"\r\n\r\n--b%zu\r\n", i,
			   i);
	buf_append_str(&b, "Content-Type: text/plain\r\n\r\nleaf");
	for (size_t i = levels; i > 0; i--)
		buf_printf(&b, "\r\n--b%zu--", i - 1);
	buf_append_str(&b, "\r\n");
	return buf_steal(&b);
}

static void test_depth_limit(void **state)
{
	(void)state;
	static const struct {
		size_t levels;
		bool leaf_found;
	} rows[] = {
		{ MIME_DEPTH_MAX - 1, true },
		{ MIME_DEPTH_MAX, true },
		{ MIME_DEPTH_MAX + 1, false },
		{ 1000, false },
	};
	uint32_t path[1000];
	for (size_t i = 0; i < 1000; i++)
		path[i] = 1;
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		char *msg = nested_msg(rows[r].levels);
		struct mime_part *root = mime_parse(msg, strlen(msg));
		const struct mime_part *p = mime_part_find(root, path, rows[r].levels);
		assert_non_null(p);
		if (rows[r].leaf_found) {
			assert_string_equal(p->type, "text");
			assert_int_equal(p->body_len, 4);
			assert_memory_equal(msg + p->body_start, "leaf", 4);
		} else {
			/* below the limit: one empty text/plain part */
			const uint32_t *deep = path;
			p = mime_part_find(root, deep, MIME_DEPTH_MAX + 1);
			assert_non_null(p);
			assert_string_equal(p->type, "text");
			assert_int_equal(p->body_len, 0);
		}
		struct buf out = BUF_INIT;
		mime_bodystructure_append(root, msg, true, &out);
		assert_true(out.len > 0);
		buf_deinit(&out);
		mime_part_free(&root);
		free(msg);
	}
}

static void test_parts_limit(void **state)
{
	(void)state;
	static const struct {
		size_t parts;
		size_t children;
	} rows[] = {
		/* the root counts as one part */
		{ MIME_PARTS_MAX - 2, MIME_PARTS_MAX - 2 },
		{ MIME_PARTS_MAX - 1, MIME_PARTS_MAX - 1 },
		{ MIME_PARTS_MAX, MIME_PARTS_MAX - 1 },
		{ MIME_PARTS_MAX + 1, MIME_PARTS_MAX - 1 },
	};
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		struct buf b = BUF_INIT;
		buf_append_str(&b, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
		for (size_t i = 0; i < rows[r].parts; i++)
			buf_append_str(&b, "--p\r\n\r\nx\r\n");
		buf_append_str(&b, "--p--\r\n");
		struct mime_part *root = mime_parse((const char *)b.data, b.len);
		assert_int_equal(root->child_count, rows[r].children);
		mime_part_free(&root);
		buf_deinit(&b);
	}
}

/* Hostile bytes: NULs, a huge header line, bare LF, CR alone. */
static void test_hostile(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_append_str(&b, "Subject: ");
	for (size_t i = 0; i < 200000; i++)
		buf_append_char(&b, 'a');
	buf_append(&b, "\nTo: x\0y@z\n\nbody\0with nul\r\r\n", 28);
	struct mime_part *root = mime_parse((const char *)b.data, b.len);
	struct buf out = BUF_INIT;
	mime_envelope_append((const char *)b.data + root->header_start, root->header_len, &out);
	/* the subject is longer than a quoted string may be: a literal */
	assert_non_null(strstr(buf_cstr(&out), "(NIL {200000}\r\naaa"));
	assert_null(memchr(out.data, '\0', out.len));
	buf_reset(&out);
	mime_bodystructure_append(root, (const char *)b.data, true, &out);
	assert_int_equal(root->body_len, 16);
	assert_int_equal(root->body_lines, 1);
	mime_body_text_append(root, (const char *)b.data, &out);
	buf_deinit(&out);
	mime_part_free(&root);
	buf_deinit(&b);
}

/* Bare LF line ends are tolerated (mime.h). */
static void test_bare_lf(void **state)
{
	(void)state;
	const char *msg = "Content-Type: multipart/mixed; boundary=L\n\n--L\nContent-Type: text/x\n\n"
			  "lf body\nline\n--L--\n";
	struct mime_part *root = mime_parse(msg, strlen(msg));
	assert_int_equal(root->child_count, 1);
	const struct mime_part *p = &root->children[0];
	assert_string_equal(p->subtype, "x");
	assert_int_equal(p->body_len, strlen("lf body\nline"));
	assert_memory_equal(msg + p->body_start, "lf body\nline", p->body_len);
	assert_int_equal(p->body_lines, 2);
	mime_part_free(&root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bodystructure),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_header_fields),
		cmocka_unit_test(test_header_decode),
		cmocka_unit_test(test_body_text),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_parts_limit),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_bare_lf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
