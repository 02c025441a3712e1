/* pop3d_session.c - a logged-in POP3 session (RFC 1939 sections 5 and 6:
 * TRANSACTION and UPDATE states), run by the pop3 child that has become
 * the mailbox owner.  Blocking I/O with the autologout timer; one process
 * per session.
 *
 * The maildrop is locked for the session (RFC 1939 section 8: "-ERR
 * [IN-USE]", RFC 2449 section 8.1.1) with a lock file in the Maildir that
 * holds our pid; a lock whose process is gone is broken.  The message list
 * is the mailbox's view at login and does not change during the session;
 * DELE only marks, QUIT expunges (UPDATE state).  UIDL is UIDVALIDITY and
 * UID ("%08x%08x"), stable across sessions and restarts.  mbox mailboxes
 * are served the same way: the mailbox layer keeps their UIDs in an index
 * (beside the mbox, or in the home directory when the spool directory is
 * not writable), and QUIT removes the deleted messages with one rewrite
 * of the mbox (mailbox_expunge_many) under the locks local delivery uses.
 */
#include "pop3d/pop3d.h"

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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define POP3_LOCK_NAME ".facteur-pop3.lock"
#define POP3_OUT_FLUSH (64u * 1024)

struct pop3_session {
	int fd;
	long timeout_secs;
	struct mailbox *mb;
	bool maildir;
	size_t count;
	uint64_t *vsizes;
	bool *deleted;
	struct buf in;
	struct buf out;
	bool broken;
	unsigned top_count, retr_count, del_count;
	uint64_t top_bytes, retr_bytes, total_size;
};

static void pop3_flush(struct pop3_session *s)
{
	if (!s->broken && s->out.len > 0 && fs_write_full(s->fd, s->out.data, s->out.len) < 0)
		s->broken = true;
	buf_reset(&s->out);
}

__attribute__((format(printf, 2, 3))) static void pop3_reply(struct pop3_session *s,
							     const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	buf_append(&s->out, "\r\n", 2);
}

/* 1 and a line (without CRLF) in line_r, 0 on EOF/timeout/error, -1 on a
 * line too long. */
static int pop3_read_line(struct pop3_session *s, char *line_r, size_t size)
{
	for (;;) {
		char *nl = s->in.len > 0 ? memchr(s->in.data, '\n', s->in.len) : NULL;
		if (nl != NULL) {
			size_t n = (size_t)(nl - (char *)s->in.data);
			if (n >= size) {
				buf_consume(&s->in, n + 1);
				return -1;
			}
			memcpy(line_r, s->in.data, n);
			line_r[n] = '\0';
			if (n > 0 && line_r[n - 1] == '\r')
				line_r[n - 1] = '\0';
			buf_consume(&s->in, n + 1);
			return 1;
		}
		if (s->in.len >= size) {
			buf_reset(&s->in);
			return -1;
		}
		/* Answers to pipelined commands go out before we wait. */
		pop3_flush(s);
		struct pollfd pfd = { s->fd, POLLIN, 0 };
		int r = poll(&pfd, 1, (int)(s->timeout_secs * 1000));
		if (r <= 0)
			return 0;
		char tmp[4096];
		ssize_t n = read(s->fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		buf_append(&s->in, tmp, (size_t)n);
	}
}

static int pop3_msg_arg(struct pop3_session *s, const struct pop3_cmd *c, size_t i, size_t *seq_r)
{
	if (c->argc <= i) {
		pop3_reply(s, "-ERR %s: message number expected.", c->name);
		return -1;
	}
	if (pop3_msgnum_parse(c->argv[i], s->count, seq_r) < 0) {
		pop3_reply(s, "-ERR There's no message %s.", c->argv[i]);
		return -1;
	}
	if (s->deleted[*seq_r - 1]) {
		pop3_reply(s, "-ERR Message is deleted.");
		return -1;
	}
	return 0;
}

/* RETR (body_lines UINT64_MAX) and TOP. */
static void pop3_send_msg(struct pop3_session *s, size_t seq, uint64_t body_lines, bool top)
{
	const char *error;
	int fd;
	if (mailbox_msg_open(s->mb, seq, &fd, &error) < 0) {
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot read the message.");
		log_error("message %zu: %s", seq, error);
		return;
	}
	if (top)
		pop3_reply(s, "+OK");
	else
		pop3_reply(s, "+OK %" PRIu64 " octets", s->vsizes[seq - 1]);
	struct pop3_enc enc;
	pop3_enc_init(&enc, body_lines);
	uint64_t left = mailbox_msg_size(s->mb, seq);
	char tmp[65536];
	while (left > 0 && !enc.done) {
		size_t want = left < sizeof(tmp) ? (size_t)left : sizeof(tmp);
		ssize_t n = read(fd, tmp, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* The octet count was sent: the connection must end. */
			log_error("message %zu: short read", seq);
			s->broken = true;
			break;
		}
		left -= (uint64_t)n;
		pop3_enc_feed(&enc, tmp, (size_t)n, &s->out);
		if (s->out.len >= POP3_OUT_FLUSH)
			pop3_flush(s);
	}
	(void)close(fd);
	pop3_enc_finish(&enc, &s->out);
	if (top) {
		s->top_count++;
		s->top_bytes += enc.octets;
	} else {
		s->retr_count++;
		s->retr_bytes += enc.octets;
	}
}

static void pop3_capa(struct pop3_session *s)
{
	buf_append_str(&s->out, "+OK\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n"
				"AUTH-RESP-CODE\r\nUSER\r\nIMPLEMENTATION facteur\r\n.\r\n");
}

static int pop3_quit(struct pop3_session *s)
{
	const char *error = NULL;
	unsigned failed = 0;
	/* RFC 1939 section 6: the UPDATE state removes all marked messages;
	 * one call so that an mbox is rewritten once. */
	size_t *seqs = xcalloc(s->count + 1, sizeof(*seqs));
	size_t n = 0;
	for (size_t seq = 1; seq <= s->count; seq++)
		if (s->deleted[seq - 1])
			seqs[n++] = seq;
	if (n > 0 && mailbox_expunge_many(s->mb, seqs, n, &error) < 0) {
		log_error("expunge %zu message(s): %s", n, error);
		failed++;
	}
	free(seqs);
	if (failed > 0) {
		pop3_reply(s, "-ERR [SYS/TEMP] Some deleted messages were not removed.");
		return -1;
	}
	pop3_reply(s, "+OK Logging out.");
	return 0;
}

/* Lock the maildrop: 1 locked, 0 in use, -1 error. */
static int pop3_lock(const char *path)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0) {
			char text[32];
			int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
			int r = fs_write_full(fd, text, (size_t)n);
			(void)close(fd);
			return r < 0 ? -1 : 1;
		}
		if (errno != EEXIST)
			return -1;
		struct buf b = BUF_INIT;
		long pid = 0;
		if (fs_read_file(path, 64, &b) == 0) {
			char *t = xstrdup(buf_cstr(&b));
			t[strcspn(t, "\n")] = '\0';
			if (str_to_long(t, 1, 1L << 30, &pid) < 0)
				pid = 0;
			free(t);
		}
		buf_deinit(&b);
		if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
			return 0;
		/* Left by a session that is gone. */
		(void)unlink(path);
	}
	return 0;
}

int pop3_session_run(const struct pop3_session_params *p)
{
	char role[300];
	(void)snprintf(role, sizeof(role), "pop3(%s)", p->user);
	log_set_role(role);
	struct pop3_session s;
	memset(&s, 0, sizeof(s));
	s.fd = p->fd;
	s.timeout_secs = p->timeout_secs > 0 ? p->timeout_secs : 600;
	s.maildir = p->maildir;
	int flags = fcntl(s.fd, F_GETFL);
	(void)fcntl(s.fd, F_SETFL, flags & ~O_NONBLOCK);
	/* A client that stops reading must not hold the session forever. */
	struct timeval tv = { (time_t)p->timeout_secs, 0 };
	(void)setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (p->pending_len > 0)
		buf_append(&s.in, p->pending, p->pending_len);

	const char *error = NULL;
	s.mb = mailbox_open_ex(p->mailbox_path, p->maildir ? MAILBOX_MAILDIR : MAILBOX_MBOX,
			       p->maildir ? NULL : p->mbox_index_path, &error);
	if (s.mb == NULL && !p->maildir && access(p->mailbox_path, F_OK) < 0 && errno == ENOENT) {
		/* No mbox yet: an empty maildrop. */
		s.count = 0;
	} else if (s.mb == NULL) {
		log_error("cannot open mailbox %s: %s", p->mailbox_path, error);
		pop3_reply(&s, "-ERR [SYS/TEMP] Cannot open the mailbox.");
		pop3_flush(&s);
		buf_deinit(&s.out);
		buf_deinit(&s.in);
		return 1;
	}
	char *lock_path = NULL;
	if (s.mb != NULL && p->maildir) {
		struct buf lp = BUF_INIT;
		buf_printf(&lp, "%s/%s", p->mailbox_path, POP3_LOCK_NAME);
		lock_path = buf_steal(&lp);
		int r = pop3_lock(lock_path);
		if (r <= 0) {
			if (r < 0)
				log_error("lock %s: %s", lock_path, strerror(errno));
			else
				log_info("Disconnected: mailbox in use");
			pop3_reply(&s, r == 0 ? "-ERR [IN-USE] Mailbox is locked by another POP3 session."
					      : "-ERR [SYS/TEMP] Cannot lock the mailbox.");
			pop3_flush(&s);
			free(lock_path);
			mailbox_free(&s.mb);
			buf_deinit(&s.out);
			buf_deinit(&s.in);
			return 0;
		}
	}
	s.count = s.mb != NULL ? mailbox_count(s.mb) : 0;
	s.vsizes = xcalloc(s.count + 1, sizeof(uint64_t));
	s.deleted = xcalloc(s.count + 1, sizeof(bool));
	for (size_t i = 1; i <= s.count; i++) {
		if (mailbox_msg_vsize(s.mb, i, &s.vsizes[i - 1], &error) < 0) {
			log_warning("size of message %zu: %s", i, error);
			s.vsizes[i - 1] = mailbox_msg_size(s.mb, i);
		}
		s.total_size += s.vsizes[i - 1];
	}
	pop3_reply(&s, "+OK Logged in.");

	const char *end = "Connection closed";
	unsigned bad = 0;
	char line[POP3_CMD_LINE_MAX + 1];
	while (!s.broken) {
		int r = pop3_read_line(&s, line, sizeof(line));
		if (r == 0)
			break;
		if (r < 0) {
			pop3_reply(&s, "-ERR Line too long.");
			if (++bad >= 10)
				break;
			continue;
		}
		struct pop3_cmd c;
		if (pop3_cmd_parse(line, &c, &error) < 0) {
			pop3_reply(&s, "-ERR %s", error);
			if (++bad >= 10) {
				end = "Too many bad commands";
				break;
			}
			continue;
		}
		size_t seq;
		bool quit = false;
		switch (c.id) {
		case POP3_CMD_STAT: {
			size_t n = 0;
			uint64_t size = 0;
			for (size_t i = 0; i < s.count; i++) {
				if (!s.deleted[i]) {
					n++;
					size += s.vsizes[i];
				}
			}
			pop3_reply(&s, "+OK %zu %" PRIu64, n, size);
			break;
		}
		case POP3_CMD_LIST:
		case POP3_CMD_UIDL: {
			bool uidl = c.id == POP3_CMD_UIDL;
			uint32_t uv = s.mb != NULL ? mailbox_uidvalidity(s.mb) : 0;
			if (c.argc > 0) {
				if (pop3_msg_arg(&s, &c, 0, &seq) == 0) {
					if (uidl)
						pop3_reply(&s, "+OK %zu %08" PRIx32 "%08" PRIx32, seq,
							   uv, mailbox_msg_uid(s.mb, seq));
					else
						pop3_reply(&s, "+OK %zu %" PRIu64, seq,
							   s.vsizes[seq - 1]);
				}
				break;
			}
			pop3_reply(&s, "+OK");
			for (size_t i = 1; i <= s.count; i++) {
				if (s.deleted[i - 1])
					continue;
				if (uidl)
					pop3_reply(&s, "%zu %08" PRIx32 "%08" PRIx32, i, uv,
						   mailbox_msg_uid(s.mb, i));
				else
					pop3_reply(&s, "%zu %" PRIu64, i, s.vsizes[i - 1]);
			}
			pop3_reply(&s, ".");
			break;
		}
		case POP3_CMD_RETR:
			if (pop3_msg_arg(&s, &c, 0, &seq) == 0)
				pop3_send_msg(&s, seq, UINT64_MAX, false);
			break;
		case POP3_CMD_TOP: {
			uint64_t lines;
			if (pop3_msg_arg(&s, &c, 0, &seq) < 0)
				break;
			if (c.argc != 2 || str_to_u64(c.argv[1], 0, UINT64_MAX - 1, &lines) < 0) {
				pop3_reply(&s, "-ERR TOP: number of lines expected.");
				break;
			}
			pop3_send_msg(&s, seq, lines, true);
			break;
		}
		case POP3_CMD_DELE:
			if (pop3_msg_arg(&s, &c, 0, &seq) < 0)
				break;
			s.deleted[seq - 1] = true;
			s.del_count++;
			pop3_reply(&s, "+OK Marked to be deleted.");
			break;
		case POP3_CMD_NOOP:
			pop3_reply(&s, "+OK");
			break;
		case POP3_CMD_RSET:
			memset(s.deleted, 0, s.count * sizeof(bool));
			s.del_count = 0;
			pop3_reply(&s, "+OK");
			break;
		case POP3_CMD_CAPA:
			pop3_capa(&s);
			break;
		case POP3_CMD_QUIT:
			(void)pop3_quit(&s);
			end = "Logged out";
			quit = true;
			break;
		default:
			pop3_reply(&s, "-ERR Unknown command.");
			if (++bad >= 10) {
				end = "Too many bad commands";
				quit = true;
			}
			break;
		}
		if (quit)
			break;
	}
	pop3_flush(&s);
	log_info("Disconnected: %s top=%u/%" PRIu64 ", retr=%u/%" PRIu64 ", del=%u/%zu, size=%" PRIu64,
		 end, s.top_count, s.top_bytes, s.retr_count, s.retr_bytes, s.del_count, s.count,
		 s.total_size);
	if (lock_path != NULL)
		(void)unlink(lock_path);
	free(lock_path);
	mailbox_free(&s.mb);
	free(s.vsizes);
	free(s.deleted);
	buf_deinit(&s.in);
	buf_deinit(&s.out);
	return 0;
}
