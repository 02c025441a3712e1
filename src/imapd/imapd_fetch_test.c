/* imapd_fetch_test.c - unit tests for FETCH (imapd_fetch.c) and the message
 * cache, on a mkdtemp() Maildir holding a plain LF message, a multipart one
 * with mixed CRLF/LF line ends and an encoded-word subject, one with an
 * 8-bit subject, one with a message/rfc822 part, one that is all header:
 * exact answers for every item kind, partials, sections of parts, \Seen
 * setting (not by PEEK, not when read-only), a message expunged behind the
 * session's back, and reading only the header when that is enough. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imapd/imapd.h"
#include "lib/buf.h"
#include "lib/mem.h"
#include "mail/mailbox.h"

#define M1                                                                                     \
	"From: Alice <alice@example.org>\n"                                                    \
	"To: bob@example.com\n"                                                                \
	"Subject: Hello\n"                                                                     \
	"Date: Fri, 13 Jan 2006 11:00:00 +0100\n"                                              \
	"Message-ID: <1@example.org>\n"                                                        \
	"\n"                                                                                   \
	"Hello world\n"                                                                        \
	"second line\n"
#define M1_HDR_CRLF                                                                            \
	"From: Alice <alice@example.org>\r\n"                                                  \
	"To: bob@example.com\r\n"                                                              \
	"Subject: Hello\r\n"                                                                   \
	"Date: Fri, 13 Jan 2006 11:00:00 +0100\r\n"                                            \
	"Message-ID: <1@example.org>\r\n"                                                      \
	"\r\n"
#define M1_TEXT_CRLF "Hello world\r\nsecond line\r\n"

#define M2                                                                                     \
	"From: =?UTF-8?Q?Ren=C3=A9?= <rene@example.fr>\r\n"                                    \
	"To: alice@example.org\r\n"                                                            \
	"Cc: carol@example.net\r\n"                                                            \
	"Subject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?=\r\n"                                         \
	"Date: 20 May 2010 23:59:00 -0700\r\n"                                                 \
	"MIME-Version: 1.0\r\n"                                                                \
	"Content-Type: multipart/mixed; boundary=\"XYZ\"\n"                                    \
	"\n"                                                                                   \
	"preamble\n"                                                                           \
	"--XYZ\n"                                                                              \
	"Content-Type: text/plain; charset=iso-8859-1\n"                                       \
	"Content-Transfer-Encoding: quoted-printable\n"                                        \
	"\n"                                                                                   \
	"Le r=E9veil sonne\n"                                                                  \
	"--XYZ\n"                                                                              \
	"Content-Type: application/octet-stream\n"                                             \
	"Content-Transfer-Encoding: base64\n"                                                  \
	"\n"                                                                                   \
	"AAECAwQF\n"                                                                           \
	"--XYZ--\n"

#define M3                                                                                     \
	"From: bob@example.com\n"                                                              \
	"To: alice@example.org\n"                                                              \
	"Subject: \xc3\x89t\xc3\xa9 chaud\n"                                                   \
	"Date: Mon, 24 Dec 12 18:00:00 GMT\n"                                                  \
	"X-Spam: yes\n"                                                                        \
	"\n"                                                                                   \
	"Corps du message \xc3\xa0 8 bits\n"

#define M4                                                                                     \
	"From: carol@example.net\n"                                                            \
	"To: alice@example.org\n"                                                              \
	"Subject: Fwd: note\n"                                                                 \
	"Date: Tue, 10 Mar 2015 09:00:00 +0000\n"                                              \
	"MIME-Version: 1.0\n"                                                                  \
	"Content-Type: multipart/mixed; boundary=b1\n"                                         \
	"\n"                                                                                   \
	"--b1\n"                                                                               \
	"Content-Type: text/plain\n"                                                           \
	"\n"                                                                                   \
	"See attached.\n"                                                                      \
	"--b1\n"                                                                               \
	"Content-Type: message/rfc822\n"                                                       \
	"\n"                                                                                   \
	"From: dave@example.com\n"                                                             \
	"Subject: inner secret\n"                                                              \
	"\n"                                                                                   \
	"Inner body text\n"                                                                    \
	"--b1--\n"

#define M5 "Subject: only header\n"

struct fixture {
	char dir[64];
	char md[128];
	struct mailbox *mb;
	struct imapd_msgcache *mc;
};

static const struct {
	const char *data;
	unsigned flags;
	time_t date;
} msgs[] = {
	{ M1, 0, 1137146400 },						/* 13-Jan-2006 10:00:00 */
	{ M2, MAILBOX_FLAG_SEEN, 1274344200 },				/* 20-May-2010 08:30:00 */
	{ M3, MAILBOX_FLAG_SEEN | MAILBOX_FLAG_FLAGGED, 1356372000 },	/* 24-Dec-2012 18:00:00 */
	{ M4, MAILBOX_FLAG_ANSWERED | MAILBOX_FLAG_DELETED, 1425978000 }, /* 10-Mar-2015 09:00:00 */
	{ M5, MAILBOX_FLAG_DRAFT, 1582977600 },				/* 29-Feb-2020 12:00:00 */
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *error;
	snprintf(f->dir, sizeof(f->dir), "/tmp/facteur-imapfetch-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->md, sizeof(f->md), "%s/Maildir", f->dir);
	struct mailbox *mb = mailbox_open(f->md, MAILBOX_MAILDIR, &error);
	assert_non_null(mb);
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		uint32_t uid;
		assert_int_equal(mailbox_append(mb, msgs[i].data, strlen(msgs[i].data),
						msgs[i].flags, msgs[i].date, &uid, &error),
				 0);
		assert_int_equal(uid, i + 1);
	}
	mailbox_free(&mb);
	/* reopened: the messages are no longer \Recent for this handle */
	f->mb = mailbox_open(f->md, MAILBOX_MAILDIR, &error);
	assert_non_null(f->mb);
	f->mc = imapd_msgcache_new();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	imapd_msgcache_free(&f->mc);
	assert_null(f->mc);
	mailbox_free(&f->mb);
	int ret = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return ret;
}

/* Parse "a FETCH 1 <items>" with the real command reader. */
static void parse_fetch(const char *items, struct imap_fetch *fetch)
{
	struct imap_reader_limits lim = { 65536, 65536, 1 << 20, 16 };
	struct imap_reader *r = imap_reader_new(&lim);
	struct buf line = BUF_INIT;
	struct imap_cmd *cmd = NULL;
	const char *tag, *error;
	bool too_big;
	buf_printf(&line, "a FETCH 1 %s\r\n", items);
	imap_reader_feed(r, line.data, line.len);
	assert_int_equal(imap_reader_next(r, &cmd, &tag, &error, &too_big), IMAP_READ_CMD);
	assert_true(cmd->argc >= 2);
	if (imap_fetch_parse(&cmd->args[1], cmd->argc - 1, fetch, &error) < 0)
		fail_msg("fetch parse of %s: %s", items, error);
	imap_cmd_free(&cmd);
	imap_reader_free(&r);
	buf_deinit(&line);
}

/* Run FETCH and return the answer (caller frees). */
static char *run_fetch(struct fixture *f, size_t seq, const char *items, bool uid_cmd,
		       bool readonly)
{
	struct imap_fetch fetch;
	struct buf out = BUF_INIT;
	const char *error;
	parse_fetch(items, &fetch);
	if (imapd_fetch_msg(f->mc, f->mb, seq, &fetch, uid_cmd, readonly, &out, &error) < 0)
		fail_msg("fetch %zu %s: %s", seq, items, error);
	imap_fetch_deinit(&fetch);
	return buf_steal(&out);
}

static void test_fetch_exact(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *name;
		size_t seq;
		const char *items;
		bool uid_cmd;
		const char *expect; /* whole answer, or a prefix when prefix is set */
		bool prefix;
	} rows[] = {
		{ "flags empty", 1, "FLAGS", false, "* 1 FETCH (FLAGS ())\r\n", false },
		{ "flags two", 3, "FLAGS", false, "* 3 FETCH (FLAGS (\\Flagged \\Seen))\r\n", false },
		{ "flags passed hidden", 4, "FLAGS", false,
		  "* 4 FETCH (FLAGS (\\Answered \\Deleted))\r\n", false },
		{ "uid", 2, "UID", false, "* 2 FETCH (UID 2)\r\n", false },
		{ "uid cmd adds uid first", 2, "FLAGS", true, "* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n",
		  false },
		{ "uid cmd keeps order", 2, "(FLAGS UID)", true,
		  "* 2 FETCH (FLAGS (\\Seen) UID 2)\r\n", false },
		{ "internaldate", 1, "INTERNALDATE", false,
		  "* 1 FETCH (INTERNALDATE \"13-Jan-2006 10:00:00 +0000\")\r\n", false },
		{ "size", 1, "RFC822.SIZE", false, "* 1 FETCH (RFC822.SIZE 166)\r\n", false },
		{ "size header only message", 5, "RFC822.SIZE", false,
		  "* 5 FETCH (RFC822.SIZE 22)\r\n", false },
		{ "body all", 1, "BODY.PEEK[]", false,
		  "* 1 FETCH (BODY[] {166}\r\n" M1_HDR_CRLF M1_TEXT_CRLF ")\r\n", false },
		{ "rfc822 peek-free on seen", 2, "RFC822.SIZE", false,
		  "* 2 FETCH (RFC822.SIZE 469)\r\n", false },
		{ "partial", 1, "BODY.PEEK[]<0.4>", false, "* 1 FETCH (BODY[]<0> {4}\r\nFrom)\r\n",
		  false },
		{ "partial middle", 1, "BODY.PEEK[TEXT]<6.5>", false,
		  "* 1 FETCH (BODY[TEXT]<6> {5}\r\nworld)\r\n", false },
		{ "partial count past end", 1, "BODY.PEEK[TEXT]<20.100>", false,
		  "* 1 FETCH (BODY[TEXT]<20> {6}\r\nline\r\n)\r\n", false },
		{ "partial origin at end", 1, "BODY.PEEK[TEXT]<26.1>", false,
		  "* 1 FETCH (BODY[TEXT]<26> \"\")\r\n", false },
		{ "partial origin past end", 1, "BODY.PEEK[]<1000.10>", false,
		  "* 1 FETCH (BODY[]<1000> \"\")\r\n", false },
		{ "header", 1, "BODY.PEEK[HEADER]", false,
		  "* 1 FETCH (BODY[HEADER] {140}\r\n" M1_HDR_CRLF ")\r\n", false },
		{ "header fields", 1, "BODY.PEEK[HEADER.FIELDS (SUBJECT TO)]", false,
		  "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT TO)] {39}\r\n"
		  "To: bob@example.com\r\nSubject: Hello\r\n\r\n)\r\n",
		  false },
		{ "header fields not", 5, "BODY.PEEK[HEADER.FIELDS.NOT (FROM)]", false,
		  "* 5 FETCH (BODY[HEADER.FIELDS.NOT (FROM)] {24}\r\n"
		  "Subject: only header\r\n\r\n)\r\n",
		  false },
		{ "header fields 8bit", 3, "BODY.PEEK[HEADER.FIELDS (Subject)]", false,
		  "* 3 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {24}\r\n"
		  "Subject: \xc3\x89t\xc3\xa9 chaud\r\n\r\n)\r\n",
		  false },
		{ "text", 1, "BODY.PEEK[TEXT]", false,
		  "* 1 FETCH (BODY[TEXT] {26}\r\n" M1_TEXT_CRLF ")\r\n", false },
		{ "part 1 of single part", 1, "BODY.PEEK[1]", false,
		  "* 1 FETCH (BODY[1] {26}\r\n" M1_TEXT_CRLF ")\r\n", false },
		{ "part 2 of single part", 1, "BODY.PEEK[2]", false,
		  "* 1 FETCH (BODY[2] NIL)\r\n", false },
		{ "multipart part 1", 2, "BODY.PEEK[1]", false,
		  "* 2 FETCH (BODY[1] {17}\r\nLe r=E9veil sonne)\r\n", false },
		{ "multipart part 2 mime", 2, "BODY.PEEK[2.MIME]", false,
		  "* 2 FETCH (BODY[2.MIME] {77}\r\nContent-Type: application/octet-stream\r\n"
		  "Content-Transfer-Encoding: base64\r\n\r\n)\r\n",
		  false },
		{ "multipart part 3", 2, "BODY.PEEK[3]", false, "* 2 FETCH (BODY[3] NIL)\r\n",
		  false },
		{ "rfc822 part header", 4, "BODY.PEEK[2.HEADER]", false,
		  "* 4 FETCH (BODY[2.HEADER] {49}\r\nFrom: dave@example.com\r\n"
		  "Subject: inner secret\r\n\r\n)\r\n",
		  false },
		{ "rfc822 part fields", 4, "BODY.PEEK[2.HEADER.FIELDS (SUBJECT)]", false,
		  "* 4 FETCH (BODY[2.HEADER.FIELDS (SUBJECT)] {25}\r\n"
		  "Subject: inner secret\r\n\r\n)\r\n",
		  false },
		{ "rfc822 part text", 4, "BODY.PEEK[2.TEXT]", false,
		  "* 4 FETCH (BODY[2.TEXT] {15}\r\nInner body text)\r\n", false },
		{ "rfc822 inner part 1", 4, "BODY.PEEK[2.1]", false,
		  "* 4 FETCH (BODY[2.1] {15}\r\nInner body text)\r\n", false },
		{ "header of text part", 4, "BODY.PEEK[1.HEADER]", false,
		  "* 4 FETCH (BODY[1.HEADER] \"\")\r\n", false },
		{ "header only message header", 5, "BODY.PEEK[HEADER]", false,
		  "* 5 FETCH (BODY[HEADER] {22}\r\nSubject: only header\r\n)\r\n", false },
		{ "header only message text", 5, "BODY.PEEK[TEXT]", false,
		  "* 5 FETCH (BODY[TEXT] \"\")\r\n", false },
		{ "rfc822.header", 1, "RFC822.HEADER", false,
		  "* 1 FETCH (RFC822.HEADER {140}\r\n" M1_HDR_CRLF ")\r\n", false },
		{ "rfc822 on seen", 2, "RFC822.TEXT", false, "* 2 FETCH (RFC822.TEXT {", true },
		{ "bodystructure single", 1, "BODYSTRUCTURE", false,
		  "* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\"", true },
		{ "bodystructure multi", 2, "BODYSTRUCTURE", false,
		  "* 2 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\"", true },
		{ "body multi", 4, "BODY", false, "* 4 FETCH (BODY ((\"TEXT\" \"PLAIN\"", true },
		{ "envelope", 1, "ENVELOPE", false,
		  "* 1 FETCH (ENVELOPE (\"Fri, 13 Jan 2006 11:00:00 +0100\" \"Hello\" ((\"Alice\" "
		  "NIL \"alice\" \"example.org\"))",
		  true },
		{ "several", 1, "(UID RFC822.SIZE FLAGS)", false,
		  "* 1 FETCH (UID 1 RFC822.SIZE 166 FLAGS ())\r\n", false },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		/* alternate a fresh and a warm cache */
		if (i % 2 == 0)
			imapd_msgcache_reset(f->mc);
		char *got = run_fetch(f, rows[i].seq, rows[i].items, rows[i].uid_cmd, false);
		bool ok = rows[i].prefix ? strncmp(got, rows[i].expect, strlen(rows[i].expect)) == 0
					 : strcmp(got, rows[i].expect) == 0;
		if (!ok)
			fail_msg("%s: got [%s] want [%s]", rows[i].name, got, rows[i].expect);
		free(got);
	}
	/* nothing above (all PEEK or already seen) changed a flag */
	assert_int_equal(mailbox_msg_flags(f->mb, 1), 0);
}

/* Size of BODY[] equals RFC822.SIZE for every message (CRLF counting). */
static void test_fetch_size_consistent(void **state)
{
	struct fixture *f = *state;
	for (size_t seq = 1; seq <= mailbox_count(f->mb); seq++) {
		uint64_t vsize;
		const char *error;
		assert_int_equal(mailbox_msg_vsize(f->mb, seq, &vsize, &error), 0);
		char *got = run_fetch(f, seq, "BODY.PEEK[]", false, false);
		char want[64];
		snprintf(want, sizeof(want), "* %zu FETCH (BODY[] {%llu}\r\n", seq,
			 (unsigned long long)vsize);
		assert_true(strncmp(got, want, strlen(want)) == 0);
		/* no bare LF left */
		for (const char *p = strchr(got, '\n'); p != NULL; p = strchr(p + 1, '\n'))
			assert_int_equal(p[-1], '\r');
		free(got);
	}
}

static void test_fetch_seen(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *name;
		const char *items;
		bool readonly;
		bool sets_seen;
		const char *tail; /* end of the answer */
	} rows[] = {
		{ "peek", "BODY.PEEK[]", false, false, "second line\r\n)\r\n" },
		{ "rfc822.header", "RFC822.HEADER", false, false, "\r\n\r\n)\r\n" },
		{ "readonly body", "BODY[TEXT]", true, false, "second line\r\n)\r\n" },
		{ "readonly rfc822", "RFC822", true, false, "second line\r\n)\r\n" },
		{ "body sets seen", "BODY[TEXT]", false, true,
		  "second line\r\n FLAGS (\\Seen))\r\n" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *got = run_fetch(f, 1, rows[i].items, false, rows[i].readonly);
		size_t gl = strlen(got), tl = strlen(rows[i].tail);
		if (gl < tl || strcmp(got + gl - tl, rows[i].tail) != 0)
			fail_msg("%s: got [%s]", rows[i].name, got);
		assert_int_equal((mailbox_msg_flags(f->mb, 1) & MAILBOX_FLAG_SEEN) != 0,
				 rows[i].sets_seen);
		free(got);
	}
	/* FLAGS asked: not repeated; \Seen already set: not added */
	char *got = run_fetch(f, 1, "(FLAGS RFC822.TEXT)", false, false);
	assert_string_equal(got, "* 1 FETCH (FLAGS (\\Seen) RFC822.TEXT {26}\r\n" M1_TEXT_CRLF
				 ")\r\n");
	free(got);
	/* on disk too */
	const char *error;
	struct mailbox *mb2 = mailbox_open(f->md, MAILBOX_MAILDIR, &error);
	assert_non_null(mb2);
	assert_int_equal(mailbox_msg_flags(mb2, 1), MAILBOX_FLAG_SEEN);
	mailbox_free(&mb2);
	/* FLAGS asked before the body: shows \Seen already, once */
	got = run_fetch(f, 4, "(FLAGS BODY[1])", false, false);
	assert_string_equal(got, "* 4 FETCH (FLAGS (\\Answered \\Deleted \\Seen) BODY[1] {13}\r\n"
				 "See attached.)\r\n");
	free(got);
}

static void test_fetch_expunged(void **state)
{
	struct fixture *f = *state;
	static const char *const items[] = { "BODY.PEEK[]", "BODY.PEEK[HEADER]", "ENVELOPE",
					     "BODYSTRUCTURE", "(UID BODY[TEXT])" };
	const char *path = mailbox_msg_path(f->mb, 2);
	assert_int_equal(unlink(path), 0);
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		struct imap_fetch fetch;
		struct buf out = BUF_INIT;
		const char *error = NULL;
		buf_append_str(&out, "* 1 FETCH (UID 1)\r\n");
		parse_fetch(items[i], &fetch);
		imapd_msgcache_reset(f->mc);
		errno = 0;
		assert_int_equal(imapd_fetch_msg(f->mc, f->mb, 2, &fetch, true, false, &out, &error),
				 -1);
		assert_int_equal(errno, ENOENT);
		assert_non_null(error);
		assert_string_equal(buf_cstr(&out), "* 1 FETCH (UID 1)\r\n");
		imap_fetch_deinit(&fetch);
		buf_deinit(&out);
	}
	/* items from the in-memory view still answer */
	char *got = run_fetch(f, 2, "(UID FLAGS)", false, false);
	assert_string_equal(got, "* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n");
	free(got);
}

/* A header fetch reads the first block only: the rest of the file is read
 * when the body is asked for, through the same cache entry. */
static void test_fetch_header_only_read(void **state)
{
	struct fixture *f = *state;
	const char *error;
	struct buf msg = BUF_INIT;
	buf_append_str(&msg, "Subject: big\n\n");
	for (int i = 0; i < 5000; i++)
		buf_append_str(&msg, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
	uint32_t uid;
	assert_int_equal(mailbox_append(f->mb, msg.data, msg.len, 0, 0, &uid, &error), 0);
	size_t seq = mailbox_count(f->mb);
	char *got = run_fetch(f, seq, "BODY.PEEK[HEADER]", false, false);
	assert_string_equal(got, "* 6 FETCH (BODY[HEADER] {16}\r\nSubject: big\r\n\r\n)\r\n");
	free(got);
	/* overwrite the file past the first 8 KB block behind the cache's back */
	int fd = open(mailbox_msg_path(f->mb, seq), O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "ZZZZ", 4, 100000), 4);
	close(fd);
	got = run_fetch(f, seq, "BODY.PEEK[TEXT]", false, false);
	assert_non_null(strstr(got, "ZZZZ"));
	free(got);
	/* a whole read then serves from memory */
	fd = open(mailbox_msg_path(f->mb, seq), O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "YYYY", 4, 150000), 4);
	close(fd);
	got = run_fetch(f, seq, "BODY.PEEK[TEXT]", false, false);
	assert_null(strstr(got, "YYYY"));
	free(got);
	/* until reset */
	imapd_msgcache_reset(f->mc);
	got = run_fetch(f, seq, "BODY.PEEK[TEXT]", false, false);
	assert_non_null(strstr(got, "YYYY"));
	free(got);
	buf_deinit(&msg);
}

/* Line-end conversion across block boundaries: a CRLF split between two
 * 8 KB reads stays one CRLF. */
static void test_fetch_crlf_block_edge(void **state)
{
	struct fixture *f = *state;
	const char *error;
	static const size_t cr_at[] = { 8190, 8191, 8192, 16383 };
	for (size_t i = 0; i < sizeof(cr_at) / sizeof(cr_at[0]); i++) {
		struct buf msg = BUF_INIT;
		buf_append_str(&msg, "Subject: edge\r\n\r\n");
		while (msg.len < cr_at[i])
			buf_append_char(&msg, msg.len % 50 == 0 ? '\n' : 'x');
		buf_append_str(&msg, "\r\nend\n");
		uint32_t uid;
		assert_int_equal(mailbox_append(f->mb, msg.data, msg.len, 0, 0, &uid, &error), 0);
		size_t seq = mailbox_count(f->mb);
		uint64_t vsize;
		assert_int_equal(mailbox_msg_vsize(f->mb, seq, &vsize, &error), 0);
		char *got = run_fetch(f, seq, "BODY.PEEK[]", false, false);
		char want[64];
		snprintf(want, sizeof(want), "* %zu FETCH (BODY[] {%llu}\r\n", seq,
			 (unsigned long long)vsize);
		assert_true(strncmp(got, want, strlen(want)) == 0);
		assert_non_null(strstr(got, "x\r\nend\r\n)"));
		assert_null(strstr(got, "\r\r"));
		free(got);
		buf_deinit(&msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fetch_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_size_consistent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_expunged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_header_only_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_crlf_block_edge, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
