/* imapd_search_test.c - unit tests for SEARCH (imapd_search.c) on a
 * mkdtemp() Maildir: every key kind with its expected set of matching
 * messages (flags, \Recent, sequence and UID sets with '*', internal and
 * sent dates including obsolete Date: forms and a foreign zone, size
 * limits at max-1/max/max+1, header keys on encoded-word, 8-bit, folded and
 * repeated fields, BODY in decoded text, raw non-text parts and an
 * encapsulated message, TEXT, OR/NOT/AND), case folding beyond ASCII, and
 * the cheap-keys-first order (a seen test never opens the file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imapd/imapd.h"
#include "lib/buf.h"
#include "lib/mem.h"
#include "mail/mailbox.h"

#define S1                                                                                     \
	"From: Alice <alice@example.org>\n"                                                    \
	"To: bob@example.com\n"                                                                \
	"Subject: Hello\n"                                                                     \
	" there\n"                                                                             \
	"Date: Fri, 13 Jan 2006 11:00:00 +0100\n"                                              \
	"Message-ID: <1@example.org>\n"                                                        \
	"\n"                                                                                   \
	"Hello world\n"                                                                        \
	"second line\n"

#define S2                                                                                     \
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

#define S3                                                                                     \
	"Received: from a\n"                                                                   \
	"Received: from b\n"                                                                   \
	"From: bob@example.com\n"                                                              \
	"To: alice@example.org\n"                                                              \
	"Subject: \xc3\x89t\xc3\xa9 chaud\n"                                                   \
	"Date: Mon, 24 Dec 12 18:00:00 GMT\n"                                                  \
	"X-Spam: yes\n"                                                                        \
	"\n"                                                                                   \
	"Corps du message \xc3\xa0 8 bits\n"

#define S4                                                                                     \
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

/* 33 bytes on disk, RFC822.SIZE 35 */
#define S5 "Subject: only header\nDate: bogus\n"

#define S6                                                                                     \
	"Subject: fresh\n"                                                                     \
	"Date: (comment) 1 February 2001 (x) 10:00:00 +0000\n"                                 \
	"\n"                                                                                   \
	"new\n"

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
	{ S1, 0, 1137146400 },						/* 13-Jan-2006 10:00:00 */
	{ S2, MAILBOX_FLAG_SEEN, 1274344200 },				/* 20-May-2010 08:30:00 */
	{ S3, MAILBOX_FLAG_SEEN | MAILBOX_FLAG_FLAGGED, 1356372000 },	/* 24-Dec-2012 18:00:00 */
	{ S4, MAILBOX_FLAG_ANSWERED | MAILBOX_FLAG_DELETED, 1425978000 }, /* 10-Mar-2015 09:00:00 */
	{ S5, MAILBOX_FLAG_DRAFT, 1582977600 },				/* 29-Feb-2020 12:00:00 */
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
	uint32_t uid;
	snprintf(f->dir, sizeof(f->dir), "/tmp/facteur-imapsearch-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->md, sizeof(f->md), "%s/Maildir", f->dir);
	struct mailbox *mb = mailbox_open(f->md, MAILBOX_MAILDIR, &error);
	assert_non_null(mb);
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
		assert_int_equal(mailbox_append(mb, msgs[i].data, strlen(msgs[i].data),
						msgs[i].flags, msgs[i].date, &uid, &error),
				 0);
	mailbox_free(&mb);
	/* reopened: 1-5 are old; 6 arrives now and is \Recent */
	f->mb = mailbox_open(f->md, MAILBOX_MAILDIR, &error);
	assert_non_null(f->mb);
	assert_int_equal(mailbox_append(f->mb, S6, strlen(S6), 0, 1583020800 /* 1-Mar-2020 */,
					&uid, &error),
			 0);
	assert_int_equal(uid, 6);
	f->mc = imapd_msgcache_new();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	imapd_msgcache_free(&f->mc);
	mailbox_free(&f->mb);
	int ret = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return ret;
}

/* Parse "a SEARCH <keys>" with the real command reader. */
static void parse_search(const char *keys, struct imap_search_key *key)
{
	struct imap_reader_limits lim = { 65536, 65536, 1 << 20, 16 };
	struct imap_reader *r = imap_reader_new(&lim);
	struct buf line = BUF_INIT;
	struct imap_cmd *cmd = NULL;
	const char *tag, *error;
	bool too_big, bad_charset = false;
	buf_printf(&line, "a SEARCH %s\r\n", keys);
	imap_reader_feed(r, line.data, line.len);
	if (imap_reader_next(r, &cmd, &tag, &error, &too_big) != IMAP_READ_CMD)
		fail_msg("read of %s failed", keys);
	if (imap_search_parse(cmd->args, cmd->argc, key, &bad_charset, &error) < 0)
		fail_msg("search parse of %s: %s", keys, error);
	imap_cmd_free(&cmd);
	imap_reader_free(&r);
	buf_deinit(&line);
}

/* The matching sequence numbers as "1 3 4" (caller frees). */
static char *run_search(struct fixture *f, const char *keys)
{
	struct imap_search_key key;
	struct buf out = BUF_INIT;
	const char *error;
	parse_search(keys, &key);
	for (size_t seq = 1; seq <= mailbox_count(f->mb); seq++) {
		int r = imapd_search_match(f->mc, f->mb, seq, &key, &error);
		if (r < 0)
			fail_msg("search %s on %zu: %s", keys, seq, error);
		if (r == 1)
			buf_printf(&out, "%s%zu", out.len > 0 ? " " : "", seq);
	}
	imap_search_key_deinit(&key);
	return buf_steal(&out);
}

static void test_search_keys(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *keys;
		const char *expect;
	} rows[] = {
		{ "ALL", "1 2 3 4 5 6" },
		/* flags and \Recent */
		{ "SEEN", "2 3" },
		{ "UNSEEN", "1 4 5 6" },
		{ "FLAGGED", "3" },
		{ "UNFLAGGED", "1 2 4 5 6" },
		{ "ANSWERED", "4" },
		{ "DELETED", "4" },
		{ "UNDELETED", "1 2 3 5 6" },
		{ "DRAFT", "5" },
		{ "UNDRAFT", "1 2 3 4 6" },
		{ "RECENT", "6" },
		{ "NEW", "6" },
		{ "OLD", "1 2 3 4 5" },
		{ "KEYWORD foo", "" },
		{ "UNKEYWORD foo", "1 2 3 4 5 6" },
		/* sequence and UID sets */
		{ "2,4:5", "2 4 5" },
		{ "*", "6" },
		{ "5:*", "5 6" },
		{ "*:5", "5 6" },
		{ "UID 6", "6" },
		{ "UID *", "6" },
		{ "UID 4:*", "4 5 6" },
		{ "UID 100:*", "6" },
		{ "UID 7:8", "" },
		/* internal date, UTC day */
		{ "ON 29-Feb-2020", "5" },
		{ "SINCE 29-Feb-2020", "5 6" },
		{ "BEFORE 29-Feb-2020", "1 2 3 4" },
		{ "BEFORE 1-Mar-2020", "1 2 3 4 5" },
		{ "ON 1-Mar-2020", "6" },
		{ "ON 20-May-2010", "2" },
		/* Date: header, its own day; bogus Date: never matches */
		{ "SENTON 20-May-2010", "2" },
		{ "SENTON 21-May-2010", "" },
		{ "SENTON 24-Dec-2012", "3" },
		{ "SENTON 1-Feb-2001", "6" },
		{ "SENTBEFORE 13-Jan-2006", "6" },
		{ "SENTBEFORE 14-Jan-2006", "1 6" },
		{ "SENTSINCE 13-Jan-2006", "1 2 3 4" },
		{ "NOT SENTON 20-May-2010", "1 3 4 5 6" },
		/* sizes: message 5 is 35 octets */
		{ "SMALLER 36", "5" },
		{ "SMALLER 35", "" },
		{ "LARGER 34", "1 2 3 4 5 6" },
		{ "LARGER 35", "1 2 3 4 6" },
		/* header keys */
		{ "SUBJECT \"hello there\"", "1" },
		{ "SUBJECT HELLO", "1" },
		{ "SUBJECT {5+}\r\ncaf\xc3\xa9", "2" },
		{ "CHARSET UTF-8 SUBJECT {5+}\r\nCAF\xc3\x89", "2" },
		{ "SUBJECT {5+}\r\n\xc3\xa9t\xc3\xa9", "3" },
		{ "SUBJECT {5+}\r\n\xc3\x89T\xc3\x89", "3" },
		{ "SUBJECT \"=?ISO\"", "" },
		{ "FROM {5+}\r\nren\xc3\xa9", "2" },
		{ "FROM alice@EXAMPLE", "1" },
		{ "TO alice", "2 3 4" },
		{ "CC carol", "2" },
		{ "BCC carol", "" },
		{ "HEADER Received \"from b\"", "3" },
		{ "HEADER X-Spam \"\"", "3" },
		{ "HEADER message-id \"\"", "1" },
		{ "FROM \"\"", "1 2 3 4" },
		{ "SUBJECT \"\"", "1 2 3 4 5 6" },
		{ "SUBJECT secret", "" },
		/* body: decoded text parts, raw other parts, inner messages */
		{ "BODY \"second LINE\"", "1" },
		{ "BODY {7+}\r\nR\xc3\x89VEIL", "2" },
		{ "BODY r=E9veil", "" },
		{ "BODY aaecawqf", "2" },
		{ "BODY \"inner secret\"", "4" },
		{ "BODY {4+}\r\n\xc3\x80 8", "3" },
		{ "BODY fresh", "" },
		{ "BODY new", "6" },
		{ "BODY preamble", "" },
		{ "TEXT fresh", "6" },
		{ "TEXT x-spam", "3" },
		{ "TEXT \"inner body\"", "4" },
		/* combinations */
		{ "OR SEEN DRAFT", "2 3 5" },
		{ "NOT OR SEEN DRAFT", "1 4 6" },
		{ "(SEEN FLAGGED)", "3" },
		{ "SEEN SUBJECT {5+}\r\ncaf\xc3\xa9", "2" },
		{ "UNSEEN SUBJECT {5+}\r\ncaf\xc3\xa9", "" },
		{ "OR (UID 1) BODY new", "1 6" },
		{ "NOT NOT 3", "3" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (i % 3 == 0)
			imapd_msgcache_reset(f->mc);
		char *got = run_search(f, rows[i].keys);
		if (strcmp(got, rows[i].expect) != 0)
			fail_msg("SEARCH %s: got [%s] want [%s]", rows[i].keys, got, rows[i].expect);
		free(got);
	}
}

/* Keys needing the file fail on an expunged message; cheap keys decide
 * first and never open it. */
static void test_search_cheap_first(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *keys;
		int expect;
	} rows[] = {
		{ "SEEN SUBJECT hello", 0 },
		{ "SUBJECT hello SEEN", 0 },
		{ "SUBJECT hello", -1 },
		{ "BODY world", -1 },
		{ "(BODY world) DELETED", 0 },
		{ "OR BODY world UNSEEN", 1 },
		{ "NOT SENTON 1-Jan-2000", -1 },
		{ "LARGER 10", 1 },
		{ "UID 1 FLAGGED", 0 },
	};
	uint64_t vsize;
	const char *error;
	/* the size is known from the index: LARGER does not read */
	assert_int_equal(mailbox_msg_vsize(f->mb, 1, &vsize, &error), 0);
	assert_int_equal(unlink(mailbox_msg_path(f->mb, 1)), 0);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct imap_search_key key;
		parse_search(rows[i].keys, &key);
		imapd_msgcache_reset(f->mc);
		errno = 0;
		int r = imapd_search_match(f->mc, f->mb, 1, &key, &error);
		if (r != rows[i].expect)
			fail_msg("SEARCH %s: got %d want %d", rows[i].keys, r, rows[i].expect);
		if (r < 0)
			assert_int_equal(errno, ENOENT);
		imap_search_key_deinit(&key);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_search_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_search_cheap_first, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
