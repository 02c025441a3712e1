/* imapd_session.c - the logged-in IMAP4rev1 session (RFC 3501 sections 3.2
 * and 3.3: authenticated and selected states), run by the imap child that
 * has become the mailbox owner.  One process per session.
 *
 * The loop takes complete commands from the reader one at a time, in order
 * (pipelined commands are answered in order, RFC 3501 5.5), and flushes the
 * buffered output only before it blocks, so a pipelined group is answered
 * with few writes.  Reads wait in poll(2) with the autologout timer (RFC
 * 3501 5.4); writes are blocking with SO_SNDTIMEO so that a client that
 * stops reading cannot hold the process.  While a mailbox is selected an
 * inotify descriptor watches it; IDLE (RFC 2177) sleeps on it and on a 30 s
 * re-check timer.
 *
 * The client's view of the selected mailbox (UIDs and flags as last told)
 * is kept here; imapd_view_update() syncs the mailbox and sends the
 * untagged EXPUNGE / FETCH FLAGS / EXISTS / RECENT that bring the client up
 * to date (RFC 3501 7.4.1, 5.2).
 */
#include "imapd/imapd_int.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/mailbox.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Defaults for parameters left at 0 by a caller. */
#define IMAPD_LINE_MAX_DEFAULT (64u * 1024)
#define IMAPD_LITERAL_MAX_DEFAULT (50u * 1024 * 1024)
#define IMAPD_TIMEOUT_DEFAULT 1800
#define IMAPD_BAD_MAX_DEFAULT 20
#define IMAPD_DEPTH_MAX 32

void imapd_out_flush(struct imapd_session *s)
{
	if (!s->broken && s->out.len > 0) {
		if (fs_write_full(s->fd, s->out.data, s->out.len) < 0) {
			s->broken = true;
			if (s->end == NULL)
				s->end = errno == EAGAIN || errno == EWOULDBLOCK ? "Write timeout"
										 : "Connection closed";
		} else {
			s->out_bytes += s->out.len;
		}
	}
	buf_reset(&s->out);
}

void imapd_out_maybe_flush(struct imapd_session *s)
{
	if (s->out.len >= IMAPD_OUT_FLUSH)
		imapd_out_flush(s);
}

void imapd_untagged(struct imapd_session *s, const char *fmt, ...)
{
	va_list ap;
	buf_append_str(&s->out, "* ");
	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	buf_append(&s->out, "\r\n", 2);
}

void imapd_reply(struct imapd_session *s, const char *status, const char *fmt, ...)
{
	va_list ap;
	s->reply_status = status;
	buf_reset(&s->reply_text);
	va_start(ap, fmt);
	buf_vprintf(&s->reply_text, fmt, ap);
	va_end(ap);
}

/* The one place a tagged answer goes out; counts BADs in a row. */
static void imapd_tagged_send(struct imapd_session *s, const char *tag, const char *status,
			      const char *text)
{
	buf_printf(&s->out, "%s %s %s\r\n", tag, status, text);
	if (strcmp(status, "BAD") != 0) {
		s->bad_in_row = 0;
		return;
	}
	unsigned max = s->p->max_bad_commands > 0 ? s->p->max_bad_commands : IMAPD_BAD_MAX_DEFAULT;
	if (++s->bad_in_row >= max) {
		imapd_untagged(s, "BYE Too many invalid commands");
		s->logout = true;
		s->end = "Too many invalid commands";
	}
}

int imapd_wait(struct imapd_session *s, int timeout_ms, bool watch_mailbox,
	       bool *mailbox_event_r)
{
	imapd_out_flush(s);
	if (s->broken)
		return -1;
	struct pollfd pfd[2] = { { s->fd, POLLIN, 0 }, { -1, POLLIN, 0 } };
	nfds_t n = 1;
	if (watch_mailbox && s->ino_fd >= 0) {
		pfd[1].fd = s->ino_fd;
		n = 2;
	}
	int r = poll(pfd, n, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -1;
	if (r == 0)
		return 0;
	if (n == 2 && (pfd[1].revents & POLLIN) != 0) {
		char evbuf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
		while (read(s->ino_fd, evbuf, sizeof(evbuf)) > 0)
			;
		if (mailbox_event_r != NULL)
			*mailbox_event_r = true;
	}
	if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
		char tmp[16384];
		ssize_t got = read(s->fd, tmp, sizeof(tmp));
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			return 1;
		if (got <= 0)
			return -1;
		imap_reader_feed(s->reader, tmp, (size_t)got);
		s->in_bytes += (uint64_t)got;
		s->last_input = time(NULL);
	}
	return 1;
}

/* ---- Mailbox names and folders ---- */

char *imapd_name_canon(const char *name)
{
	if (str_casecmp(name, "INBOX") == 0)
		return xstrdup("INBOX");
	return xstrdup(name);
}

struct mailbox *imapd_folder_open(struct imapd_session *s, const char *name,
				  const char **error_r)
{
	char *path = NULL;
	enum mailbox_format fmt;
	if (folder_path(s->st, name, &path, &fmt, error_r) < 0)
		return NULL;
	bool inbox = strcmp(name, "INBOX") == 0;
	const char *index = fmt == MAILBOX_MBOX && inbox ? s->p->inbox_index_path : NULL;
	struct mailbox *mb = mailbox_open_ex(path, fmt, index, error_r);
	if (mb == NULL && fmt == MAILBOX_MBOX && inbox && access(path, F_OK) < 0 &&
	    errno == ENOENT) {
		/* No mail delivered yet: INBOX always exists (RFC 3501 5.1),
		 * so start an empty spool file. */
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0) {
			(void)close(fd);
			mb = mailbox_open_ex(path, fmt, index, error_r);
		}
	}
	free(path);
	return mb;
}

/* ---- The selected mailbox ---- */

static void imapd_watch_start(struct imapd_session *s)
{
	s->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->ino_fd < 0) {
		log_warning("inotify_init1: %s (IDLE falls back to polling)", strerror(errno));
		return;
	}
	const char *path = mailbox_path(s->mb);
	struct stat stbuf;
	int ok = 0;
	if (stat(path, &stbuf) == 0 && S_ISDIR(stbuf.st_mode)) {
		static const char *const subdirs[] = { "new", "cur" };
		for (size_t i = 0; i < 2; i++) {
			struct buf dir = BUF_INIT;
			buf_printf(&dir, "%s/%s", path, subdirs[i]);
			if (inotify_add_watch(s->ino_fd, buf_cstr(&dir),
					      IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE) >= 0)
				ok++;
			buf_deinit(&dir);
		}
	} else if (inotify_add_watch(s->ino_fd, path,
				     IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_MOVE_SELF |
					     IN_DELETE_SELF) >= 0) {
		ok++;
	}
	if (ok == 0) {
		log_warning("inotify_add_watch %s: %s (IDLE falls back to polling)", path,
			    strerror(errno));
		(void)close(s->ino_fd);
		s->ino_fd = -1;
	}
}

static void imapd_view_free(struct imapd_session *s)
{
	free(s->view_uids);
	free(s->view_flags);
	s->view_uids = NULL;
	s->view_flags = NULL;
	s->view_count = 0;
	s->view_recent = 0;
}

static size_t imapd_recent_count(struct mailbox *mb)
{
	size_t n = 0, count = mailbox_count(mb);
	for (size_t seq = 1; seq <= count; seq++)
		if (mailbox_msg_recent(mb, seq))
			n++;
	return n;
}

void imapd_view_reset(struct imapd_session *s)
{
	imapd_view_free(s);
	size_t count = mailbox_count(s->mb);
	s->view_uids = xcalloc(count + 1, sizeof(uint32_t));
	s->view_flags = xcalloc(count + 1, sizeof(unsigned));
	for (size_t seq = 1; seq <= count; seq++) {
		s->view_uids[seq - 1] = mailbox_msg_uid(s->mb, seq);
		s->view_flags[seq - 1] = mailbox_msg_flags(s->mb, seq) & MAILBOX_FLAGS_ALL;
	}
	s->view_count = count;
	s->view_recent = imapd_recent_count(s->mb);
	imapd_msgcache_reset(s->mc);
}

void imapd_view_flags_refresh(struct imapd_session *s)
{
	if (s->mb == NULL)
		return;
	size_t count = mailbox_count(s->mb);
	for (size_t seq = 1; seq <= count && seq <= s->view_count; seq++)
		if (s->view_uids[seq - 1] == mailbox_msg_uid(s->mb, seq))
			s->view_flags[seq - 1] = mailbox_msg_flags(s->mb, seq) & MAILBOX_FLAGS_ALL;
}

static void imapd_flags_fetch_line(struct imapd_session *s, size_t seq, unsigned flags,
				   bool recent)
{
	buf_printf(&s->out, "* %zu FETCH (FLAGS (", seq);
	imap_flags_format(flags, recent, &s->out);
	buf_append_str(&s->out, "))\r\n");
}

void imapd_view_update(struct imapd_session *s)
{
	if (s->mb == NULL)
		return;
	const char *error;
	if (mailbox_sync(s->mb, &error) < 0) {
		log_warning("sync %s: %s", s->sel_name, error);
		return;
	}
	if (mailbox_uidvalidity(s->mb) != s->uidvalidity) {
		/* The client's UIDs mean nothing any more (RFC 3501 2.3.1.1):
		 * it must resynchronize from scratch. */
		imapd_untagged(s, "BYE Mailbox UIDVALIDITY changed, reconnect");
		s->logout = true;
		s->end = "UIDVALIDITY changed";
		return;
	}
	bool changed = false;
	/* Vanished messages, highest sequence number first: each EXPUNGE
	 * renumbers the messages after it (RFC 3501 7.4.1), so going down
	 * keeps the numbers still to send valid. */
	for (size_t i = s->view_count; i >= 1; i--) {
		size_t seq;
		if (mailbox_uid_lookup(s->mb, s->view_uids[i - 1], &seq) == 1)
			continue;
		imapd_untagged(s, "%zu EXPUNGE", i);
		memmove(&s->view_uids[i - 1], &s->view_uids[i],
			(s->view_count - i) * sizeof(uint32_t));
		memmove(&s->view_flags[i - 1], &s->view_flags[i],
			(s->view_count - i) * sizeof(unsigned));
		s->view_count--;
		changed = true;
	}
	/* Flags changed by other sessions. */
	for (size_t i = 1; i <= s->view_count; i++) {
		size_t seq;
		if (mailbox_uid_lookup(s->mb, s->view_uids[i - 1], &seq) != 1)
			continue;
		unsigned flags = mailbox_msg_flags(s->mb, seq) & MAILBOX_FLAGS_ALL;
		if (flags != s->view_flags[i - 1]) {
			imapd_flags_fetch_line(s, i, flags, mailbox_msg_recent(s->mb, seq));
			s->view_flags[i - 1] = flags;
			changed = true;
		}
	}
	size_t count = mailbox_count(s->mb);
	size_t recent = imapd_recent_count(s->mb);
	if (count != s->view_count) {
		/* New messages get higher UIDs, so they come after the ones the
		 * client knows. */
		imapd_untagged(s, "%zu EXISTS", count);
		imapd_untagged(s, "%zu RECENT", recent);
		changed = true;
	} else if (recent != s->view_recent) {
		imapd_untagged(s, "%zu RECENT", recent);
	}
	if (changed)
		imapd_view_reset(s);
	s->view_recent = recent;
}

int imapd_select_open(struct imapd_session *s, const char *name, bool readonly,
		      const char **error_r)
{
	imapd_select_close(s);
	struct mailbox *mb = imapd_folder_open(s, name, error_r);
	if (mb == NULL)
		return -1;
	s->mb = mb;
	s->sel_name = xstrdup(name);
	s->readonly = readonly;
	s->uidvalidity = mailbox_uidvalidity(mb);
	imapd_view_reset(s);
	imapd_watch_start(s);
	return 0;
}

void imapd_select_close(struct imapd_session *s)
{
	if (s->ino_fd >= 0)
		(void)close(s->ino_fd);
	s->ino_fd = -1;
	mailbox_free(&s->mb);
	free(s->sel_name);
	s->sel_name = NULL;
	s->readonly = false;
	imapd_view_free(s);
	imapd_msgcache_reset(s->mc);
}

/* ---- The session ---- */

static void imapd_session_deinit(struct imapd_session *s)
{
	imapd_select_close(s);
	imapd_msgcache_free(&s->mc);
	folder_store_free(&s->st);
	imap_reader_free(&s->reader);
	buf_deinit(&s->out);
	buf_deinit(&s->reply_text);
}

static void imapd_session_loop(struct imapd_session *s)
{
	while (!s->broken && !s->logout) {
		struct imap_cmd *cmd = NULL;
		const char *tag = NULL, *error = NULL;
		bool too_big = false;
		enum imap_read_result r = imap_reader_next(s->reader, &cmd, &tag, &error, &too_big);
		switch (r) {
		case IMAP_READ_CMD:
			s->reply_status = NULL;
			buf_reset(&s->reply_text);
			imapd_cmd_dispatch(s, cmd);
			if (s->reply_status != NULL)
				imapd_tagged_send(s, cmd->tag, s->reply_status,
						  buf_cstr(&s->reply_text));
			imap_cmd_free(&cmd);
			imapd_out_maybe_flush(s);
			break;
		case IMAP_READ_CONTINUE:
			/* RFC 3501 7.5: ready for the literal. */
			buf_append_str(&s->out, "+ OK\r\n");
			break;
		case IMAP_READ_BAD:
			imapd_tagged_send(s, tag != NULL ? tag : "*", "BAD",
					  error != NULL ? error : "Syntax error");
			break;
		case IMAP_READ_TOO_LONG:
			if (too_big && tag != NULL) {
				struct buf t = BUF_INIT;
				buf_printf(&t, "[TOOBIG] %s", error != NULL ? error : "Too big");
				imapd_tagged_send(s, tag, "NO", buf_cstr(&t));
				buf_deinit(&t);
				break;
			}
			imapd_tagged_send(s, tag != NULL ? tag : "*", "BAD",
					  error != NULL ? error : "Command too long");
			imapd_untagged(s, "BYE Command too long");
			s->logout = true;
			s->end = "Command too long";
			break;
		case IMAP_READ_MORE: {
			time_t now = time(NULL);
			long left = s->timeout_secs - (long)(now - s->last_input);
			if (left <= 0) {
				imapd_untagged(s, "BYE Autologout; idle for too long");
				s->logout = true;
				s->end = "Autologout";
				break;
			}
			if (left > 24L * 3600)
				left = 24L * 3600;
			if (imapd_wait(s, (int)(left * 1000), false, NULL) < 0) {
				s->broken = true;
				if (s->end == NULL)
					s->end = "Connection closed";
			}
			break;
		}
		}
	}
	imapd_out_flush(s);
}

int imap_session_run(const struct imap_session_params *p)
{
	char role[300];
	(void)snprintf(role, sizeof(role), "imap(%s)", p->user);
	log_set_role(role);
	struct imapd_session s;
	memset(&s, 0, sizeof(s));
	s.p = p;
	s.fd = p->fd;
	s.ino_fd = -1;
	s.timeout_secs = p->timeout_secs > 0 ? p->timeout_secs : IMAPD_TIMEOUT_DEFAULT;
	s.last_input = time(NULL);
	buf_init(&s.out);
	buf_init(&s.reply_text);

	/* A client gone while we write: a write error, not a signal. */
	(void)signal(SIGPIPE, SIG_IGN);
	int fl = fcntl(s.fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(s.fd, F_SETFL, fl & ~O_NONBLOCK);
	/* A client that stops reading must not hold the session forever. */
	struct timeval tv = { (time_t)s.timeout_secs, 0 };
	(void)setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

	struct imap_reader_limits lim;
	lim.line_max = p->line_max > 0 ? p->line_max : IMAPD_LINE_MAX_DEFAULT;
	lim.literal_max = p->literal_max > 0 ? p->literal_max : IMAPD_LITERAL_MAX_DEFAULT;
	/* A whole command: one big literal (APPEND) and a few lines. */
	lim.total_max = lim.literal_max > SIZE_MAX - 4 * lim.line_max
				? SIZE_MAX
				: lim.literal_max + 4 * lim.line_max;
	lim.depth_max = IMAPD_DEPTH_MAX;
	s.reader = imap_reader_new(&lim);
	s.mc = imapd_msgcache_new();

	const char *error = NULL;
	s.st = folder_store_open(&p->folders, &error);
	if (s.st == NULL) {
		log_error("cannot open the folders of %s: %s", p->user, error);
		buf_printf(&s.out, "%s NO [SERVERBUG] Cannot open the mailboxes\r\n", p->tag);
		imapd_out_flush(&s);
		log_info("Disconnected: cannot open the mailboxes in=0 out=%" PRIu64 " rip=%s",
			 s.out_bytes, p->rip != NULL ? p->rip : "");
		imapd_session_deinit(&s);
		return 1;
	}
	s.sep = folder_store_sep(s.st);
	buf_printf(&s.out, "%s OK [CAPABILITY " IMAP_CAPABILITY_AUTHED "] Logged in\r\n", p->tag);
	if (p->pending_len > 0) {
		imap_reader_feed(s.reader, p->pending, p->pending_len);
		s.in_bytes += p->pending_len;
	}

	imapd_session_loop(&s);

	if (s.end == NULL)
		log_info("Logged out in=%" PRIu64 " out=%" PRIu64 " rip=%s", s.in_bytes, s.out_bytes,
			 p->rip != NULL ? p->rip : "");
	else
		log_info("Disconnected: %s in=%" PRIu64 " out=%" PRIu64 " rip=%s", s.end, s.in_bytes,
			 s.out_bytes, p->rip != NULL ? p->rip : "");
	imapd_session_deinit(&s);
	return 0;
}
