/* imapd_session_test.c - black-box tests of the logged-in IMAP session:
 * imap_session_run() runs in a forked child over a socketpair, on a
 * mkdtemp() Maildir++ root (and one mbox-layout case), and scripted rows
 * send commands and check the tagged answer and the untagged lines that
 * must (or must not) come with it.  Hooks between rows change the mailbox
 * behind the session's back, as a delivery or another client would.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "imapd/imapd.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/str.h"
#include "mail/mailbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Rows leave unwanted[] out when there is none. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* Generous: the tests must not depend on the machine's speed. */
#define WAIT_SECS 20

struct fixture {
	char dir[64];
	char maildir[128];
	char mbox_root[128];
	char mbox_inbox[128];
	int fd;
	pid_t pid;
	struct buf in;
	unsigned seq; /* file name counter */
};

/* ---- Files ---- */

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	assert_int_equal(close(fd), 0);
}

static void mkdir_ok(const char *path)
{
	assert_true(mkdir(path, 0700) == 0 || errno == EEXIST);
}

static void maildir_make(const char *root)
{
	char p[256];
	mkdir_ok(root);
	(void)snprintf(p, sizeof(p), "%s/new", root);
	mkdir_ok(p);
	(void)snprintf(p, sizeof(p), "%s/cur", root);
	mkdir_ok(p);
	(void)snprintf(p, sizeof(p), "%s/tmp", root);
	mkdir_ok(p);
}

static void msg_text(char *out, size_t size, unsigned n)
{
	(void)snprintf(out, size,
		       "From: sender@example.test\nTo: user@example.test\n"
		       "Subject: message %u\nDate: Mon, 23 Nov 2026 09:00:00 +0000\n\nbody %u\n",
		       n, n);
}

/* A message delivered into cur/ with flags, or into new/ (flags NULL),
 * through tmp/ and rename(2) as deliveries do. */
static void deliver(struct fixture *fx, const char *root, const char *flags)
{
	char tmp[256], dst[256], text[512];
	unsigned n = ++fx->seq;
	msg_text(text, sizeof(text), n);
	(void)snprintf(tmp, sizeof(tmp), "%s/tmp/17000000%02u.M%uP1.test", root, n, n);
	write_file(tmp, text);
	if (flags == NULL)
		(void)snprintf(dst, sizeof(dst), "%s/new/17000000%02u.M%uP1.test", root, n, n);
	else
		(void)snprintf(dst, sizeof(dst), "%s/cur/17000000%02u.M%uP1.test:2,%s", root, n, n,
			       flags);
	assert_int_equal(rename(tmp, dst), 0);
}

/* Index the Maildir as an earlier session would: its messages are then
 * not \\Recent for the next one (RFC 3501 2.3.2). */
static void preindex(struct fixture *fx)
{
	const char *error;
	struct mailbox *mb = mailbox_open(fx->maildir, MAILBOX_MAILDIR, &error);
	assert_non_null(mb);
	mailbox_free(&mb);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int fx_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	str_copy(fx->dir, sizeof(fx->dir), "/tmp/imapsess-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	(void)snprintf(fx->maildir, sizeof(fx->maildir), "%s/Maildir", fx->dir);
	(void)snprintf(fx->mbox_root, sizeof(fx->mbox_root), "%s/mail", fx->dir);
	(void)snprintf(fx->mbox_inbox, sizeof(fx->mbox_inbox), "%s/inbox.mbox", fx->dir);
	fx->fd = -1;
	buf_init(&fx->in);
	*state = fx;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fixture *fx = *state;
	if (fx->fd >= 0)
		(void)close(fx->fd);
	if (fx->pid > 0) {
		(void)kill(fx->pid, SIGTERM);
		(void)waitpid(fx->pid, NULL, 0);
	}
	assert_int_equal(nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
	buf_deinit(&fx->in);
	free(fx);
	return 0;
}

/* ---- The session and the client side ---- */

static void params_init(struct fixture *fx, struct imap_session_params *p, bool mbox)
{
	memset(p, 0, sizeof(*p));
	p->user = "user";
	p->rip = "127.0.0.1";
	p->tag = "L1";
	p->line_max = 8192;
	p->literal_max = 100000;
	p->timeout_secs = 1800;
	p->max_bad_commands = 20;
	p->folders.special_use = "Drafts \\Drafts, Sent \\Sent, Trash \\Trash";
	if (mbox) {
		p->folders.layout = FOLDER_MBOX;
		p->folders.root = fx->mbox_root;
		p->folders.inbox_path = fx->mbox_inbox;
	} else {
		p->folders.layout = FOLDER_MAILDIRPP;
		p->folders.root = fx->maildir;
	}
}

static void session_start(struct fixture *fx, const struct imap_session_params *p)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		(void)close(sv[0]);
		log_init("imapd-test", LOG_DEST_STDERR, NULL);
		struct imap_session_params cp = *p;
		cp.fd = sv[1];
		exit(imap_session_run(&cp));
	}
	(void)close(sv[1]);
	fx->fd = sv[0];
	fx->pid = pid;
	buf_reset(&fx->in);
}

static int session_wait(struct fixture *fx)
{
	int status = -1;
	(void)close(fx->fd);
	fx->fd = -1;
	assert_int_equal(waitpid(fx->pid, &status, 0), fx->pid);
	fx->pid = 0;
	return status;
}

static void send_str(struct fixture *fx, const char *s)
{
	size_t len = strlen(s);
	assert_int_equal(send(fx->fd, s, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Read more bytes; false on EOF or after WAIT_SECS. */
static bool read_more(struct fixture *fx)
{
	struct pollfd pfd = { fx->fd, POLLIN, 0 };
	if (poll(&pfd, 1, WAIT_SECS * 1000) <= 0)
		return false;
	char tmp[8192];
	ssize_t n = read(fx->fd, tmp, sizeof(tmp));
	if (n <= 0)
		return false;
	buf_append(&fx->in, tmp, (size_t)n);
	return true;
}

/* Offset just past the first complete line starting with prefix, or 0. */
static size_t find_line(const struct buf *b, const char *prefix)
{
	const char *s = buf_cstr(b);
	size_t plen = strlen(prefix), pos = 0;
	while (pos < b->len) {
		const char *eol = strstr(s + pos, "\r\n");
		if (eol == NULL)
			return 0;
		if ((size_t)(eol - (s + pos)) >= plen && memcmp(s + pos, prefix, plen) == 0)
			return (size_t)(eol - s) + 2;
		pos = (size_t)(eol - s) + 2;
	}
	return 0;
}

/* Wait for a line starting with prefix; returns the text up to and
 * including it (caller frees) and consumes it; NULL on EOF/timeout. */
static char *read_until_line(struct fixture *fx, const char *prefix)
{
	size_t end;
	while ((end = find_line(&fx->in, prefix)) == 0) {
		if (!read_more(fx))
			return NULL;
	}
	char *text = strndup(buf_cstr(&fx->in), end);
	buf_consume(&fx->in, end);
	return text;
}

/* Everything until the peer closes. */
static char *read_to_eof(struct fixture *fx)
{
	while (read_more(fx))
		;
	char *text = strdup(buf_cstr(&fx->in));
	buf_reset(&fx->in);
	return text;
}

/* ---- Scripted rows ---- */

struct row {
	const char *name;
	void (*before)(struct fixture *fx); /* change the mailbox first */
	/* Chunks separated by "\x01": before each later chunk the client
	 * waits for a "+ " continuation request. */
	const char *send;
	const char *tag;    /* whose tagged answer ends the row; NULL: EOF */
	const char *status; /* "OK", "NO", "BAD" */
	const char *want[8];
	const char *unwanted[3];
};

static void row_run(struct fixture *fx, const struct row *r)
{
	char *chunks = strdup(r->send);
	struct buf got = BUF_INIT;
	if (r->before != NULL)
		r->before(fx);
	bool first = true;
	for (char *part = chunks;; first = false) {
		char *sep = strchr(part, '\x01');
		if (sep != NULL)
			*sep = '\0';
		if (!first) {
			char *cont = read_until_line(fx, "+ ");
			if (cont == NULL)
				fail_msg("%s: no continuation request", r->name);
			buf_append_str(&got, cont);
			free(cont);
		}
		send_str(fx, part);
		if (sep == NULL)
			break;
		part = sep + 1;
	}
	free(chunks);
	char *text;
	if (r->tag != NULL) {
		char prefix[64];
		(void)snprintf(prefix, sizeof(prefix), "%s %s", r->tag, r->status);
		text = read_until_line(fx, prefix);
		if (text == NULL)
			fail_msg("%s: no \"%s\" answer; got:\n%s%s", r->name, prefix, buf_cstr(&got),
				 buf_cstr(&fx->in));
	} else {
		text = read_to_eof(fx);
	}
	buf_append_str(&got, text);
	free(text);
	if (getenv("IMAPSESS_TEST_VERBOSE") != NULL)
		fprintf(stderr, "--- %s: %s", r->name, buf_cstr(&got));
	for (size_t i = 0; i < 8 && r->want[i] != NULL; i++)
		if (strstr(buf_cstr(&got), r->want[i]) == NULL)
			fail_msg("%s: missing \"%s\" in:\n%s", r->name, r->want[i], buf_cstr(&got));
	for (size_t i = 0; i < 3 && r->unwanted[i] != NULL; i++)
		if (strstr(buf_cstr(&got), r->unwanted[i]) != NULL)
			fail_msg("%s: unexpected \"%s\" in:\n%s", r->name, r->unwanted[i],
				 buf_cstr(&got));
	buf_deinit(&got);
}

static void rows_run(struct fixture *fx, const struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		row_run(fx, &rows[i]);
}

/* ---- Hooks ---- */

static void hook_deliver_new(struct fixture *fx)
{
	deliver(fx, fx->maildir, NULL);
}

/* Another client expunges message 1 of the INBOX (the file with the
 * lowest name in cur/) and flags the next one. */
static void hook_other_client(struct fixture *fx)
{
	char cur[256];
	(void)snprintf(cur, sizeof(cur), "%s/cur", fx->maildir);
	struct dirent **names;
	int n = scandir(cur, &names, NULL, alphasort);
	assert_true(n >= 4); /* ".", "..", two messages at least */
	int found = 0;
	for (int i = 0; i < n; i++) {
		const char *nm = names[i]->d_name;
		if (nm[0] != '.') {
			char p[512], q[512];
			(void)snprintf(p, sizeof(p), "%s/%s", cur, nm);
			if (found == 0) {
				assert_int_equal(unlink(p), 0);
			} else if (found == 1) {
				const char *info = strstr(nm, ":2,");
				assert_non_null(info);
				(void)snprintf(q, sizeof(q), "%s/%.*s:2,F", cur, (int)(info - nm), nm);
				assert_int_equal(rename(p, q), 0);
			}
			found++;
		}
		free(names[i]);
	}
	free(names);
}

/* Remove delivered message n (any flags) from cur/, as another client's
 * expunge does. */
static void unlink_msg(struct fixture *fx, unsigned n)
{
	char cur[256], prefix[64];
	(void)snprintf(cur, sizeof(cur), "%s/cur", fx->maildir);
	(void)snprintf(prefix, sizeof(prefix), "17000000%02u.", n);
	DIR *d = opendir(cur);
	assert_non_null(d);
	struct dirent *e;
	int removed = 0;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
			char p[512];
			(void)snprintf(p, sizeof(p), "%s/%s", cur, e->d_name);
			assert_int_equal(unlink(p), 0);
			removed++;
		}
	}
	(void)closedir(d);
	assert_int_equal(removed, 1);
}

static void hook_unlink_1(struct fixture *fx)
{
	unlink_msg(fx, 1);
}

static void hook_unlink_4(struct fixture *fx)
{
	unlink_msg(fx, 4);
}

/* ---- Tests ---- */

static void test_maildir_session(void **state)
{
	struct fixture *fx = *state;
	maildir_make(fx->maildir);
	deliver(fx, fx->maildir, "S");
	deliver(fx, fx->maildir, "");
	/* Indexed by an earlier session: only the next one is \Recent. */
	preindex(fx);
	deliver(fx, fx->maildir, NULL);
	struct imap_session_params p;
	params_init(fx, &p, false);
	/* Bytes the login process had read after LOGIN. */
	p.pending = "p0 NOOP\r\n";
	p.pending_len = strlen(p.pending);
	session_start(fx, &p);
	static const char msg[] = "From: me@example.test\r\nSubject: appended\r\n\r\nhello\r\n";
	char append[256];
	(void)snprintf(append, sizeof(append), "a13 APPEND INBOX (\\Seen) {%zu}\r\n\x01%s\r\n",
		       strlen(msg), msg);
	const struct row rows[] = {
		{ "greeting and pending", NULL, "", "p0", "OK",
		  { "L1 OK [CAPABILITY IMAP4rev1 ", "] Logged in\r\n" } },
		{ "capability", NULL, "a1 CAPABILITY\r\n", "a1", "OK",
		  { "* CAPABILITY " IMAP_CAPABILITY_AUTHED "\r\n" } },
		{ "list root", NULL, "a2 LIST \"\" \"\"\r\n", "a2", "OK",
		  { "* LIST (\\Noselect) \".\" \"\"\r\n" } },
		{ "list all", NULL, "a3 LIST \"\" *\r\n", "a3", "OK",
		  { "* LIST (\\HasNoChildren) \".\" INBOX\r\n", "\\Drafts) \".\" Drafts\r\n",
		    "\\Sent) \".\" Sent\r\n", "\\Trash) \".\" Trash\r\n" } },
		{ "select", NULL, "a4 SELECT inbox\r\n", "a4", "OK [READ-WRITE]",
		  { "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
		    "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)]",
		    "* 3 EXISTS\r\n", "* 1 RECENT\r\n", "* OK [UNSEEN 2]", "* OK [UIDVALIDITY ",
		    "* OK [UIDNEXT 4]" } },
		{ "fetch flags", NULL, "a5 FETCH 1:* (UID FLAGS)\r\n", "a5", "OK",
		  { "* 1 FETCH (", "UID 1", "FLAGS (\\Seen)", "* 3 FETCH (", "\\Recent" } },
		{ "fetch past the end", NULL, "a6 FETCH 4 FLAGS\r\n", "a6", "BAD", { NULL } },
		{ "uid fetch unknown", NULL, "a6b UID FETCH 9 FLAGS\r\n", "a6b", "OK", { NULL },
		  { "FETCH (" } },
		{ "store", NULL, "a7 STORE 2 +FLAGS (\\Flagged)\r\n", "a7", "OK",
		  { "* 2 FETCH (FLAGS (\\Flagged))\r\n" } },
		{ "search flagged", NULL, "a8 SEARCH FLAGGED\r\n", "a8", "OK", { "* SEARCH 2\r\n" } },
		{ "uid search unseen", NULL, "a9 UID SEARCH UNSEEN\r\n", "a9", "OK",
		  { "* SEARCH 2 3\r\n" } },
		{ "bad charset", NULL, "a9b SEARCH CHARSET KOI8-R ALL\r\n", "a9b", "NO",
		  { "[BADCHARSET" } },
		{ "store silent", NULL, "a10 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n", "a10", "OK",
		  { NULL }, { "FETCH" } },
		{ "expunge", NULL, "a11 EXPUNGE\r\n", "a11", "OK", { "* 1 EXPUNGE\r\n" },
		  { "* 2 EXPUNGE" } },
		{ "renumbered", NULL, "a12 FETCH 1 UID\r\n", "a12", "OK", { "* 1 FETCH (UID 2)" } },
		{ "append literal", NULL, append, "a13", "OK",
		  { "+ OK\r\n", "[APPENDUID ", " 4] ", "* 3 EXISTS\r\n" } },
		{ "fetch appended", NULL,
		  "a14 UID FETCH 4 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n", "a14", "OK",
		  { "* 3 FETCH (", "UID 4", "\\Seen", "Subject: appended\r\n" } },
		{ "copy", NULL, "a15 COPY 1:2 Trash\r\n", "a15", "OK",
		  { "[COPYUID ", " 2:3 1:2] " } },
		{ "move", NULL, "a16 UID MOVE 2 Drafts\r\n", "a16", "OK",
		  { "* OK [COPYUID ", " 2 1] ", "* 1 EXPUNGE\r\n" } },
		{ "copy trycreate", NULL, "a17 COPY 1 Nope\r\n", "a17", "NO", { "[TRYCREATE]" } },
		{ "append trycreate", NULL, "a18 APPEND Nope {3+}\r\nabc\r\n", "a18", "NO",
		  { "[TRYCREATE]" } },
		{ "status", NULL, "a19 STATUS Trash (MESSAGES UIDNEXT UNSEEN)\r\n", "a19", "OK",
		  { "* STATUS Trash (MESSAGES 2 UIDNEXT 3 UNSEEN 2)\r\n" } },
		{ "status selected", NULL, "a20 STATUS INBOX (MESSAGES)\r\n", "a20", "OK",
		  { "* STATUS INBOX (MESSAGES 2)\r\n" } },
		{ "status missing", NULL, "a21 STATUS Nope (MESSAGES)\r\n", "a21", "NO",
		  { "[NONEXISTENT]" } },
		{ "other client", hook_other_client, "a22 NOOP\r\n", "a22", "OK",
		  { "* 1 EXPUNGE\r\n", "* 1 FETCH (FLAGS (\\Flagged" } },
		{ "delivery", hook_deliver_new, "a23 NOOP\r\n", "a23", "OK",
		  { "* 2 EXISTS\r\n", "* 1 RECENT\r\n" } },
		{ "no news", NULL, "a24 CHECK\r\n", "a24", "OK", { NULL }, { "EXISTS", "EXPUNGE" } },
		{ "create", NULL, "b1 CREATE Work.Projects\r\n", "b1", "OK", { NULL } },
		{ "list children", NULL, "b2 LIST \"\" Work*\r\n", "b2", "OK",
		  { "\\HasChildren) \".\" Work\r\n",
		    "* LIST (\\HasNoChildren) \".\" Work.Projects\r\n" } },
		{ "rename", NULL, "b3 RENAME Work.Projects Work.Done\r\n", "b3", "OK", { NULL } },
		{ "list percent", NULL, "b4 LIST Work. %\r\n", "b4", "OK",
		  { "* LIST (\\HasNoChildren) \".\" Work.Done\r\n" }, { "Projects" } },
		{ "delete", NULL, "b5 DELETE Work.Done\r\n", "b5", "OK", { NULL } },
		{ "delete missing", NULL, "b6 DELETE Work.Done\r\n", "b6", "NO", { "[NONEXISTENT]" } },
		{ "create inbox", NULL, "b7 CREATE inbox\r\n", "b7", "NO", { "[ALREADYEXISTS]" } },
		{ "create existing", NULL, "b8 CREATE Drafts\r\n", "b8", "NO", { "[ALREADYEXISTS]" } },
		{ "rename missing", NULL, "b9 RENAME Nope Other\r\n", "b9", "NO", { "[NONEXISTENT]" } },
		{ "create parent", NULL, "b10 CREATE Parent.\r\n", "b10", "OK", { NULL } },
		{ "bad name", NULL, "b11 CREATE a..b\r\n", "b11", "NO", { "[CANNOT]" } },
		{ "bad mutf7", NULL, "b12 CREATE &Jjo\r\n", "b12", "NO", { "[CANNOT]" } },
		{ "delete inbox", NULL, "b13 DELETE INBOX\r\n", "b13", "NO", { "[CANNOT]" } },
		{ "mutf7 name", NULL, "b14 CREATE Entw&APw-rfe\r\nb15 LIST \"\" Entw*\r\n", "b15",
		  "OK", { "b14 OK", "\".\" Entw&APw-rfe\r\n" } },
		{ "subscribe missing", NULL, "c1 SUBSCRIBE Ghost\r\n", "c1", "OK", { NULL } },
		{ "lsub", NULL, "c2 LSUB \"\" *\r\n", "c2", "OK",
		  { "* LSUB (\\Noselect) \".\" Ghost\r\n", "* LSUB () \".\" Drafts\r\n" } },
		{ "unsubscribe", NULL, "c3 UNSUBSCRIBE Ghost\r\n", "c3", "OK", { NULL } },
		{ "lsub after", NULL, "c4 LSUB \"\" *\r\n", "c4", "OK", { "Drafts" }, { "Ghost" } },
		{ "examine", NULL, "d1 EXAMINE Trash\r\n", "d1", "OK [READ-ONLY]",
		  { "* 2 EXISTS\r\n", "[PERMANENTFLAGS ()]" } },
		{ "store read-only", NULL, "d2 STORE 1 +FLAGS (\\Seen)\r\n", "d2", "NO", { NULL } },
		{ "fetch does not set seen", NULL, "d2b FETCH 2 BODY[TEXT]\r\n", "d2b", "OK",
		  { "body " }, { "\\Seen" } },
		{ "unselect", NULL, "d3 UNSELECT\r\n", "d3", "OK", { NULL } },
		{ "not selected", NULL, "d4 FETCH 1 FLAGS\r\n", "d4", "BAD", { NULL } },
		{ "select missing", NULL, "d5 SELECT Nope\r\n", "d5", "NO", { "[NONEXISTENT]" } },
		{ "id", NULL, "e1 ID NIL\r\n", "e1", "OK", { "* ID (\"name\" \"facteur\")\r\n" } },
		{ "enable", NULL, "e2 ENABLE CONDSTORE\r\n", "e2", "OK", { "* ENABLED\r\n" } },
		{ "namespace", NULL, "e3 NAMESPACE\r\n", "e3", "OK",
		  { "* NAMESPACE ((\"\" \".\")) NIL NIL\r\n" } },
		{ "login again", NULL, "e4 LOGIN a b\r\n", "e4", "BAD", { "Already logged in" } },
		{ "unknown", NULL, "e5 FROB\r\n", "e5", "BAD", { NULL } },
		{ "uid noop", NULL, "e6 UID NOOP\r\n", "e6", "BAD", { NULL } },
		{ "pipelined", NULL, "p1 NOOP\r\np2 CAPABILITY\r\np3 SELECT INBOX\r\np4 NOOP\r\n",
		  "p4", "OK", { "p1 OK", "* CAPABILITY", "p2 OK", "* 2 EXISTS", "p3 OK" } },
		{ "close expunges silently", NULL,
		  "f1 STORE 1:* +FLAGS.SILENT (\\Deleted)\r\nf2 CLOSE\r\n", "f2", "OK", { "f1 OK" },
		  { "EXPUNGE" } },
		{ "closed", NULL, "f3 STATUS INBOX (MESSAGES)\r\n", "f3", "OK",
		  { "(MESSAGES 0)" } },
		{ "logout", NULL, "z LOGOUT\r\n", "z", "OK", { "* BYE " } },
	};
	rows_run(fx, rows, sizeof(rows) / sizeof(rows[0]));
	int status = session_wait(fx);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* RFC 3501 7.4.1: no EXPUNGE during FETCH, STORE, SEARCH; their UID forms
 * and other commands may send them; UID STORE and UID EXPUNGE (RFC 4315). */
static void test_updates(void **state)
{
	struct fixture *fx = *state;
	maildir_make(fx->maildir);
	for (int i = 0; i < 4; i++)
		deliver(fx, fx->maildir, "");
	preindex(fx);
	struct imap_session_params p;
	params_init(fx, &p, false);
	session_start(fx, &p);
	const struct row rows[] = {
		{ "select", NULL, "u0 SELECT INBOX\r\n", "u0", "OK", { "* 4 EXISTS\r\n" } },
		{ "fetch hides expunge", hook_unlink_1, "u1 FETCH 1:* UID\r\n", "u1", "OK",
		  { "* 1 FETCH (UID 1)", "* 4 FETCH (UID 4)" }, { "EXPUNGE" } },
		{ "store hides expunge", NULL, "u2 STORE 2 +FLAGS (\\Answered)\r\n", "u2", "OK",
		  { "* 2 FETCH (FLAGS (\\Answered))\r\n" }, { "EXPUNGE" } },
		{ "search hides expunge", NULL, "u3 SEARCH ANSWERED\r\n", "u3", "OK",
		  { "* SEARCH 2\r\n" }, { "EXPUNGE" } },
		{ "noop tells", NULL, "u4 NOOP\r\n", "u4", "OK", { "* 1 EXPUNGE\r\n" },
		  { "* 2 EXPUNGE", "FETCH" } },
		{ "uid store", NULL, "u5 UID STORE 3 +FLAGS (\\Deleted)\r\n", "u5", "OK",
		  { "* 2 FETCH (UID 3 FLAGS (\\Deleted))\r\n" } },
		{ "store another", NULL, "u6 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n", "u6", "OK",
		  { NULL } },
		{ "uid expunge", NULL, "u7 UID EXPUNGE 3:4\r\n", "u7", "OK", { "* 2 EXPUNGE\r\n" },
		  { "* 1 EXPUNGE" } },
		{ "still there", NULL, "u8 UID FETCH 1:* FLAGS\r\n", "u8", "OK",
		  { "* 1 FETCH (UID 2 FLAGS (\\Answered \\Deleted))", "* 2 FETCH (UID 4 " } },
		{ "uid fetch may tell", hook_unlink_4, "u9 UID FETCH 1:* UID\r\n", "u9", "OK",
		  { "* 2 EXPUNGE\r\n", "* 1 FETCH (UID 2)" }, { "UID 4" } },
		{ "store replace", NULL, "u10 STORE 1 FLAGS (\\Seen)\r\n", "u10", "OK",
		  { "* 1 FETCH (FLAGS (\\Seen))\r\n" } },
		{ "store remove", NULL, "u11 STORE 1 -FLAGS (\\Seen)\r\n", "u11", "OK",
		  { "* 1 FETCH (FLAGS ())\r\n" } },
		{ "store bad flag", NULL, "u12 STORE 1 +FLAGS (\\Recent)\r\n", "u12", "BAD",
		  { NULL } },
		{ "logout", NULL, "z LOGOUT\r\n", "z", "OK", { "* BYE" } },
	};
	rows_run(fx, rows, sizeof(rows) / sizeof(rows[0]));
	(void)session_wait(fx);
}

static void test_idle(void **state)
{
	struct fixture *fx = *state;
	maildir_make(fx->maildir);
	deliver(fx, fx->maildir, "S");
	struct imap_session_params p;
	params_init(fx, &p, false);
	session_start(fx, &p);
	const struct row rows[] = {
		{ "select", NULL, "s1 SELECT INBOX\r\n", "s1", "OK", { "* 1 EXISTS\r\n" } },
		{ "idle done at once", NULL, "i0 IDLE\r\n\x01" "DONE\r\n", "i0", "OK",
		  { "+ idling\r\n" } },
		{ "idle wrong end", NULL, "i1 IDLE\r\n\x01" "STOP\r\n", "i1", "BAD", { NULL } },
	};
	rows_run(fx, rows, sizeof(rows) / sizeof(rows[0]));

	send_str(fx, "i2 IDLE\r\n");
	char *t = read_until_line(fx, "+ idling");
	assert_non_null(t);
	free(t);
	/* A delivery while idling: the session must tell without a command. */
	deliver(fx, fx->maildir, NULL);
	t = read_until_line(fx, "* 2 EXISTS");
	if (t == NULL)
		fail_msg("no EXISTS during IDLE within %d s", WAIT_SECS);
	free(t);
	/* Another client expunging while idling. */
	char cur[256];
	(void)snprintf(cur, sizeof(cur), "%s/cur/1700000001.M1P1.test:2,S", fx->maildir);
	assert_int_equal(unlink(cur), 0);
	t = read_until_line(fx, "* 1 EXPUNGE");
	if (t == NULL)
		fail_msg("no EXPUNGE during IDLE within %d s", WAIT_SECS);
	free(t);
	const struct row end[] = {
		{ "done", NULL, "DONE\r\n", "i2", "OK", { NULL } },
		{ "idle not selected", NULL, "u1 UNSELECT\r\nu2 IDLE\r\n\x01" "DONE\r\n", "u2", "OK",
		  { "u1 OK" } },
		{ "logout", NULL, "z LOGOUT\r\n", NULL, NULL, { "* BYE", "z OK" } },
	};
	rows_run(fx, end, sizeof(end) / sizeof(end[0]));
	(void)session_wait(fx);
}

/* Two sessions on one INBOX: what one does reaches the other while it
 * idles (inotify on cur/ for APPEND, flags and expunge). */
static void test_two_sessions(void **state)
{
	struct fixture *fx = *state;
	maildir_make(fx->maildir);
	deliver(fx, fx->maildir, "");
	preindex(fx);
	struct imap_session_params p;
	params_init(fx, &p, false);
	session_start(fx, &p);
	struct fixture other = *fx;
	buf_init(&other.in);
	session_start(&other, &p);
	const struct row a1[] = {
		{ "a select", NULL, "a1 SELECT INBOX\r\n", "a1", "OK", { "* 1 EXISTS\r\n" } },
	};
	rows_run(fx, a1, 1);
	send_str(fx, "a2 IDLE\r\n");
	char *t = read_until_line(fx, "+ idling");
	assert_non_null(t);
	free(t);
	const struct row b[] = {
		{ "b append", NULL, "b1 APPEND INBOX {8+}\r\nSubject:\r\n", "b1", "OK",
		  { "[APPENDUID " } },
		{ "b select", NULL, "b2 SELECT INBOX\r\n", "b2", "OK", { "* 2 EXISTS\r\n" } },
	};
	rows_run(&other, b, 2);
	t = read_until_line(fx, "* 2 EXISTS");
	if (t == NULL)
		fail_msg("no EXISTS for the other session's APPEND within %d s", WAIT_SECS);
	free(t);
	const struct row b2[] = {
		{ "b flag", NULL, "b3 STORE 1 +FLAGS (\\Flagged)\r\n", "b3", "OK", { NULL } },
	};
	rows_run(&other, b2, 1);
	t = read_until_line(fx, "* 1 FETCH (FLAGS (\\Flagged))");
	if (t == NULL)
		fail_msg("no FETCH FLAGS for the other session's STORE within %d s", WAIT_SECS);
	free(t);
	const struct row b3[] = {
		{ "b expunge", NULL, "b4 STORE 1 +FLAGS.SILENT (\\Deleted)\r\nb5 EXPUNGE\r\n", "b5",
		  "OK", { "* 1 EXPUNGE\r\n" } },
		{ "b logout", NULL, "z LOGOUT\r\n", "z", "OK", { "* BYE" } },
	};
	rows_run(&other, b3, 2);
	t = read_until_line(fx, "* 1 EXPUNGE");
	if (t == NULL)
		fail_msg("no EXPUNGE for the other session's EXPUNGE within %d s", WAIT_SECS);
	free(t);
	const struct row a3[] = {
		{ "a done", NULL, "DONE\r\n", "a2", "OK", { NULL } },
		{ "a view", NULL, "a3 FETCH 1:* (UID FLAGS)\r\n", "a3", "OK",
		  { "* 1 FETCH (UID 2 FLAGS (" }, { "* 2 FETCH", "Flagged" } },
		{ "a logout", NULL, "z LOGOUT\r\n", "z", "OK", { "* BYE" } },
	};
	rows_run(fx, a3, sizeof(a3) / sizeof(a3[0]));
	(void)session_wait(&other);
	buf_deinit(&other.in);
	(void)session_wait(fx);
}

static void test_bad_limit(void **state)
{
	struct fixture *fx = *state;
	maildir_make(fx->maildir);
	struct imap_session_params p;
	params_init(fx, &p, false);
	p.max_bad_commands = 3;
	session_start(fx, &p);
	/* max-1 BADs, then a good command resets the count. */
	const struct row rows[] = {
		{ "bad 1", NULL, "x1 FOO\r\n", "x1", "BAD", { NULL } },
		{ "bad 2", NULL, "x2 FOO\r\n", "x2", "BAD", { NULL }, { "BYE" } },
		{ "good resets", NULL, "x3 NOOP\r\n", "x3", "OK", { NULL } },
		{ "bad 1 again", NULL, "x4 SELECT\r\n", "x4", "BAD", { NULL } },
	};
	rows_run(fx, rows, sizeof(rows) / sizeof(rows[0]));
	const struct row last[] = {
		{ "bad 2 again", NULL, "x5 FETCH\r\n", "x5", "BAD", { NULL }, { "BYE" } },
		{ "bad 3 closes", NULL, "x6 FOO\r\nx7 NOOP\r\n", NULL, NULL,
		  { "x6 BAD", "* BYE Too many invalid commands\r\n" }, { "x7" } },
	};
	rows_run(fx, last, 2);
	(void)session_wait(fx);
}

static void test_limits(void **state)
{
	struct fixture *fx = *state;
	maildir_make(fx->maildir);
	struct imap_session_params p;
	params_init(fx, &p, false);
	p.literal_max = 100;
	session_start(fx, &p);
	char at_max[256], over[64];
	(void)snprintf(at_max, sizeof(at_max), "t1 APPEND INBOX {100}\r\n\x01%s\r\n",
		       "Subject: x\r\n\r\n"
		       "0123456789012345678901234567890123456789012345678901234567890123456789"
		       "0123456789012345");
	assert_int_equal(strlen(strchr(at_max, '\x01') + 1), 102);
	(void)snprintf(over, sizeof(over), "t2 APPEND INBOX {101}\r\n");
	const struct row rows[] = {
		{ "literal at max", NULL, at_max, "t1", "OK", { "+ OK\r\n", "[APPENDUID " } },
		{ "deleted", NULL, "t1b SELECT INBOX\r\nt1c STORE 1 +FLAGS (\\Deleted)\r\n"
		  "t1d CLOSE\r\n", "t1d", "OK", { "t1b OK", "t1c OK" } },
		{ "again", NULL, at_max, "t1", "OK", { "+ OK\r\n", "[APPENDUID " } },
		{ "literal over max", NULL, over, "t2", "NO", { "[TOOBIG]" }, { "+ OK" } },
		{ "goes on", NULL, "t3 SELECT INBOX\r\nt3b STORE 1 +FLAGS (\\Deleted)\r\n", "t3b",
		  "OK", { "* 1 EXISTS", "t3 OK" } },
		{ "empty message", NULL, "t4 APPEND INBOX {0+}\r\n\r\n", "t4", "NO", { NULL } },
		{ "empty mailbox star", NULL, "t5 EXPUNGE\r\nt6 FETCH * FLAGS\r\n", "t6", "OK",
		  { "* 1 EXPUNGE", "t5 OK" } },
		{ "empty mailbox number", NULL, "t7 FETCH 1 FLAGS\r\n", "t7", "BAD", { NULL } },
	};
	rows_run(fx, rows, sizeof(rows) / sizeof(rows[0]));
	/* A line over line_max (8192) ends the session. */
	struct buf longline = BUF_INIT;
	buf_append_str(&longline, "t8 NOOP ");
	for (int i = 0; i < 9000; i++)
		buf_append_char(&longline, 'x');
	buf_append_str(&longline, "\r\n");
	const struct row last[] = {
		{ "line too long", NULL, buf_cstr(&longline), NULL, NULL,
		  { " BAD ", "* BYE " } },
	};
	rows_run(fx, last, 1);
	buf_deinit(&longline);
	(void)session_wait(fx);
}

static void test_autologout(void **state)
{
	struct fixture *fx = *state;
	maildir_make(fx->maildir);
	struct imap_session_params p;
	params_init(fx, &p, false);
	p.timeout_secs = 1;
	session_start(fx, &p);
	const struct row rows[] = {
		{ "autologout", NULL, "", NULL, NULL,
		  { "L1 OK", "* BYE Autologout; idle for too long\r\n" } },
	};
	rows_run(fx, rows, 1);
	int status = session_wait(fx);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_mbox_layout(void **state)
{
	struct fixture *fx = *state;
	write_file(fx->mbox_inbox, "From a@example.test Mon Nov 23 09:00:00 2026\n"
				   "From: a@example.test\nSubject: first\n\nbody 1\n\n"
				   "From b@example.test Mon Nov 23 09:01:00 2026\n"
				   "From: b@example.test\nSubject: second\nStatus: RO\n\nbody 2\n");
	struct imap_session_params p;
	params_init(fx, &p, true);
	session_start(fx, &p);
	const struct row rows[] = {
		{ "list", NULL, "m1 LIST \"\" \"%\"\r\n", "m1", "OK",
		  { "\"/\" INBOX\r\n", "\"/\" Drafts\r\n" } },
		{ "select", NULL, "m2 SELECT INBOX\r\n", "m2", "OK",
		  { "* 2 EXISTS\r\n", "* OK [UNSEEN 1]" } },
		{ "fetch", NULL, "m3 FETCH 2 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n", "m3",
		  "OK", { "\\Seen", "Subject: second\r\n" } },
		{ "namespace", NULL, "m4 NAMESPACE\r\n", "m4", "OK", { "((\"\" \"/\"))" } },
		{ "create", NULL, "m5 CREATE box/sub\r\n", "m5", "OK", { NULL } },
		{ "list children", NULL, "m6 LIST \"\" box*\r\n", "m6", "OK",
		  { "\\Noselect", "\"/\" box\r\n", "\"/\" box/sub\r\n" } },
		{ "copy", NULL, "m7 COPY 1 box/sub\r\n", "m7", "OK", { NULL } },
		{ "status", NULL, "m8 STATUS box/sub (MESSAGES)\r\n", "m8", "OK",
		  { "(MESSAGES 1)" } },
		{ "store", NULL, "m9 STORE 1 +FLAGS (\\Deleted)\r\n", "m9", "OK",
		  { "* 1 FETCH (FLAGS (\\Deleted \\Recent))" } },
		{ "expunge", NULL, "m10 EXPUNGE\r\n", "m10", "OK", { "* 1 EXPUNGE\r\n" } },
		{ "append", NULL, "m11 APPEND INBOX {19+}\r\nSubject: third\r\n\r\nx\r\n", "m11",
		  "OK", { "* 2 EXISTS\r\n", "[APPENDUID " } },
		{ "search", NULL, "m12 UID SEARCH SUBJECT third\r\n", "m12", "OK",
		  { "* SEARCH 3\r\n" } },
		{ "logout", NULL, "z LOGOUT\r\n", "z", "OK", { "* BYE" } },
	};
	rows_run(fx, rows, sizeof(rows) / sizeof(rows[0]));
	(void)session_wait(fx);
}

int main(void)
{
	log_init("imapd-test", LOG_DEST_STDERR, NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_maildir_session, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_updates, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_idle, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_two_sessions, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_limit, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_limits, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_autologout, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_mbox_layout, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
