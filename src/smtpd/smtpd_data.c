/* smtpd_data.c - DATA: from the 354 to the 250, the message content is
 * streamed into a new queue file.
 *
 * Called by smtpd_session.c: smtpd_data_begin() at the DATA command (opens
 * the queue file and writes the envelope), smtpd_data_input() whenever
 * input arrives in the DATA state.  The content goes through the decoder of
 * smtpd_proto.c (CRLF -> LF, dot-unstuffing, end of data: see the SMTP
 * smuggling policy there).  The header block is buffered (at most
 * header_size_limit) and passed through cleanup_headers() (Received:,
 * X-Authentication-Warning:, Message-Id:...); the body is written as it
 * arrives and never held whole in memory.
 *
 * Content checks: header_checks run inside cleanup_headers(); body_checks
 * here, line by line on the first body_checks_size_limit bytes of the body.
 * Their verdict decides the end of DATA: REJECT removes the file and
 * answers 550/451, DISCARD removes it and answers 250 as if queued, HOLD
 * commits it into hold/ (released with "facteur queue release"), REDIRECT
 * replaces the recipients (qfile_writer_redirect).
 *
 * Durability (STYLE.md 6): the 250 is sent only after
 * qfile_writer_commit() has fsync'd the file, renamed it into incoming/ and
 * fsync'd that directory.  Any failure gives 451 4.3.0 and removes the file.
 * The commit runs on the commit pool (lib/workq.h) while the session waits
 * suspended: one session's fsyncs never stop the others, and concurrent
 * commits reach the file system together (one journal write for several).
 */
#include "smtpd/smtpd_int.h"

#include <errno.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "lib/log.h"
#include "lib/workq.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/mail_log.h"
#include "mail/qfile.h"
#include "mail/queue.h"

/* Write decoded body bytes in chunks of this size. */
#define SMTPD_DATA_WRITE_CHUNK 65536u

int smtpd_data_begin(struct smtpd_session *s, const char **error_r)
{
	struct smtpd_txn *t = smtpd_session_txn(s);
	struct cleanup_origin o;
	struct timeval tv;

	if (qfile_writer_open(smtpd_session_queue_dir(s), &t->w, error_r) < 0)
		return -1;
	smtpd_session_origin(s, &o);
	gettimeofday(&tv, NULL);
	qfile_writer_time(t->w, (int64_t)tv.tv_sec, (long)tv.tv_usec);
	qfile_writer_attr(t->w, "client_name", o.client_name);
	qfile_writer_attr(t->w, "client_addr", o.client_addr);
	if (o.helo_name != NULL)
		qfile_writer_attr(t->w, "helo", o.helo_name);
	qfile_writer_attr(t->w, "proto", o.protocol);
	if (t->ret != NULL)
		qfile_writer_attr(t->w, "ret", t->ret);
	if (t->envid != NULL)
		qfile_writer_attr(t->w, "envid", t->envid);
	if (t->body_8bit)
		qfile_writer_attr(t->w, "body", "8BITMIME");
	qfile_writer_sender(t->w, t->sender);
	for (size_t i = 0; i < t->n_rcpts; i++) {
		const struct smtpd_rcpt *r = &t->rcpts[i];
		struct qfile_rcpt_in in = {
			.address = r->address,
			.orcpt = r->orcpt,
			.notify = r->notify,
			.orig_to = r->orig,
		};
		qfile_writer_rcpt(t->w, &in);
	}
	qfile_writer_end_envelope(t->w);
	smtpd_dot_init(&t->dot);
	buf_init(&t->out);
	buf_init(&t->headers);
	t->in_headers = true;
	t->hdr_scan = 0;
	t->size = 0;
	t->too_big = false;
	t->header_error = false;
	hdrcheck_result_clear(&t->verdict);
	buf_init(&t->body_line);
	t->body_seen = 0;
	t->check_error = false;
	return 0;
}

/* Longest body line looked up whole; a longer one is looked up in pieces. */
#define SMTPD_BODY_LINE_MAX 65536u

static bool data_body_checking(const struct smtpd_session *s, const struct smtpd_txn *t)
{
	const struct smtpd_conf *c = smtpd_session_conf(s);
	return c->body_checks != NULL && !t->check_error &&
	       !hdrcheck_action_stops_checks(t->verdict.action) &&
	       t->body_seen < c->body_checks_size_limit;
}

/* One body line (with its LF, except maybe the last): look it up, log,
 * append what the action leaves to out. */
static void data_body_line(struct smtpd_session *s, struct smtpd_txn *t, const char *line,
			   size_t len, struct buf *out)
{
	const struct smtpd_conf *c = smtpd_session_conf(s);
	struct hdrcheck_result r = HDRCHECK_RESULT_INIT;
	const char *error = NULL;
	int found = 0;
	if (data_body_checking(s, t)) {
		t->body_seen += len;
		found = hdrcheck_body_line(c->body_checks, line, len, &r, &error);
		if (found < 0) {
			log_warning("%s: body_checks: %s", qfile_writer_id(t->w),
				    error != NULL ? error : "lookup error");
			t->check_error = true;
			found = 0;
		}
	}
	enum hdrcheck_action a = found > 0 ? r.action : HDRCHECK_DUNNO;
	if (found > 0 && !(a == HDRCHECK_HOLD && t->verdict.action == HDRCHECK_HOLD)) {
		struct cleanup_origin o;
		smtpd_session_origin(s, &o);
		const char *first = t->n_rcpts > 0 ? t->rcpts[0].given : NULL;
		struct cleanup_envelope env = {
			.queue_id = qfile_writer_id(t->w),
			.sender = t->sender,
			.recipients = &first,
			.n_recipients = first != NULL ? 1 : 0,
		};
		cleanup_check_log(&o, &env, HDRCHECK_CTX_BODY, line, len, &r);
	}
	if (a == HDRCHECK_PREPEND || a == HDRCHECK_REPLACE) {
		buf_append_str(out, r.text);
		buf_append_char(out, '\n');
	}
	if (a != HDRCHECK_IGNORE && a != HDRCHECK_REPLACE)
		buf_append(out, line, len);
	cleanup_check_merge(&t->verdict, &r);
}

/* Write the decoded body bytes in t->out: straight, or line by line
 * through body_checks.  all: the content has ended. */
static void data_write_out(struct smtpd_session *s, struct smtpd_txn *t, bool all)
{
	if (!all && t->out.len < SMTPD_DATA_WRITE_CHUNK)
		return;
	if (t->too_big || t->header_error) {
		buf_reset(&t->out);
		buf_reset(&t->body_line);
		return;
	}
	const char *p = (const char *)t->out.data;
	size_t n = t->out.len;
	/* What the checks leave, written at once (not one record per line). */
	struct buf kept = BUF_INIT;
	while (n > 0 && (data_body_checking(s, t) || t->body_line.len > 0)) {
		const char *lf = memchr(p, '\n', n);
		size_t take = lf != NULL ? (size_t)(lf - p) + 1 : n;
		if (t->body_line.len + take > SMTPD_BODY_LINE_MAX)
			take = SMTPD_BODY_LINE_MAX - t->body_line.len;
		buf_append(&t->body_line, p, take);
		p += take;
		n -= take;
		if (t->body_line.data[t->body_line.len - 1] == '\n' ||
		    t->body_line.len >= SMTPD_BODY_LINE_MAX) {
			data_body_line(s, t, (const char *)t->body_line.data, t->body_line.len,
				       &kept);
			buf_reset(&t->body_line);
		}
	}
	if (all && t->body_line.len > 0) {
		data_body_line(s, t, (const char *)t->body_line.data, t->body_line.len, &kept);
		buf_reset(&t->body_line);
	}
	if (kept.len > 0)
		qfile_writer_content(t->w, kept.data, kept.len);
	if (n > 0)
		qfile_writer_content(t->w, p, n);
	buf_deinit(&kept);
	buf_reset(&t->out);
}

/* The header block is complete (or the content ended): run it through
 * cleanup and write it, then what followed it. */
static void data_headers_done(struct smtpd_session *s, struct smtpd_txn *t)
{
	const struct smtpd_conf *c = smtpd_session_conf(s);
	struct cleanup_origin o;
	struct cleanup_result res;
	struct buf hdr = BUF_INIT;
	const char *error = NULL;

	t->in_headers = false;
	if (t->header_error || t->too_big) {
		buf_reset(&t->headers);
		return;
	}
	smtpd_session_origin(s, &o);
	const char **given = xreallocarray(NULL, t->n_rcpts + 1, sizeof(*given));
	for (size_t i = 0; i < t->n_rcpts; i++)
		given[i] = t->rcpts[i].given;
	given[t->n_rcpts] = NULL;
	struct cleanup_envelope env = {
		.queue_id = qfile_writer_id(t->w),
		.sender = t->sender,
		.recipients = given,
		.n_recipients = t->n_rcpts,
		.arrival = time(NULL),
	};
	memset(&res, 0, sizeof(res));
	/* Headers of mail from mynetworks are completed (Message-Id, Date,
	 * From) and rewritten with the canonical maps, like Postfix's
	 * local_header_rewrite_clients = permit_mynetworks; other clients'
	 * headers are left as they came. */
	struct cleanup_params cp = c->cleanup;
	cp.rewrite_remote_headers = smtpd_session_in_mynetworks(s);
	if (cleanup_headers(&cp, &o, &env, (const char *)t->headers.data,
			    t->headers.len, &hdr, &res, &error) < 0) {
		log_warning("%s: %s: header processing: %s", qfile_writer_id(t->w),
			    smtpd_session_peer(s), error != NULL ? error : "error");
		t->header_error = true;
	} else {
		free(t->message_id);
		t->message_id = xstrdup(res.message_id != NULL ? res.message_id : "");
		hdrcheck_result_clear(&t->verdict);
		t->verdict = res.verdict;
		res.verdict = (struct hdrcheck_result)HDRCHECK_RESULT_INIT;
		qfile_writer_content(t->w, hdr.data, hdr.len);
		qfile_writer_content(t->w, "\n", 1);
		size_t rest = res.header_end;
		/* The empty separator line was replaced by ours. */
		if (rest < t->headers.len && t->headers.data[rest] == '\n')
			rest++;
		/* The start of the body goes through the body writer (and
		 * body_checks); t->out is empty here. */
		if (rest < t->headers.len)
			buf_append(&t->out, t->headers.data + rest, t->headers.len - rest);
	}
	cleanup_result_deinit(&res);
	free(given);
	buf_deinit(&hdr);
	buf_deinit(&t->headers);
}

/* Check the complete lines added to the header buffer: the block ends at
 * an empty line or at a line that is neither "name:" (RFC 5322 3.6.8
 * ftext, optional white space before the colon) nor a continuation (the
 * same rule as header_block_parse, which then does the real parsing).
 * Returns true when the end has been seen. */
static bool data_header_scan(struct smtpd_txn *t)
{
	const uint8_t *h = t->headers.data;
	size_t len = t->headers.len;

	while (t->hdr_scan < len) {
		size_t i = t->hdr_scan;
		const uint8_t *lf = memchr(h + i, '\n', len - i);
		if (lf == NULL)
			return false;
		size_t eol = (size_t)(lf - h);
		if (eol == i)
			return true; /* empty line */
		if (h[i] == ' ' || h[i] == '\t') {
			if (i == 0)
				return true;
		} else {
			size_t j = i;
			while (j < eol && h[j] >= 33 && h[j] <= 126 && h[j] != ':')
				j++;
			if (j == i)
				return true;
			while (j < eol && (h[j] == ' ' || h[j] == '\t'))
				j++;
			if (j >= eol || h[j] != ':')
				return true;
		}
		t->hdr_scan = eol + 1;
	}
	return false;
}

/* Route freshly decoded bytes: to the header buffer until its end is
 * found, then to the body writer. */
static void data_take_output(struct smtpd_session *s, struct smtpd_txn *t, size_t added)
{
	const struct smtpd_conf *c = smtpd_session_conf(s);

	/* Only the bytes decoded now: t->out holds body bytes until a write
	 * chunk is full, and must not be counted twice. */
	t->size += added;
	if (c->message_size_limit > 0 && t->size > c->message_size_limit)
		t->too_big = true;
	if (t->too_big) {
		/* Keep reading to the end of data, store nothing more. */
		buf_reset(&t->out);
		buf_reset(&t->headers);
		return;
	}
	if (!t->in_headers) {
		data_write_out(s, t, false);
		return;
	}
	buf_append(&t->headers, t->out.data, t->out.len);
	buf_reset(&t->out);
	bool end = data_header_scan(t);
	if (!end && t->headers.len > c->header_size_limit) {
		/* Postfix takes the excess as body; we refuse the message
		 * instead of storing a header block cut in the middle of a
		 * field (cleanup_headers enforces the limit too). */
		t->header_error = true;
		buf_reset(&t->headers);
		t->in_headers = false;
		return;
	}
	if (end)
		data_headers_done(s, t);
}

static void commit_work(void *ctx);
static void commit_done(void *ctx);

static void data_finish(struct smtpd_session *s, struct smtpd_txn *t)
{
	const char *qdir = smtpd_session_queue_dir(s);
	char id[QFILE_ID_MAX];

	if (t->in_headers)
		data_headers_done(s, t);
	data_write_out(s, t, true);
	(void)str_copy(id, sizeof(id), qfile_writer_id(t->w));
	if (t->too_big) {
		log_info("%s: reject: message file too big from %s (%llu bytes)", id,
			 smtpd_session_peer(s), (unsigned long long)t->size);
		qfile_writer_abort(&t->w);
		smtpd_session_reply(s, 552, "5.3.4", "Error: message file too big");
		smtpd_session_end_data(s, false);
		return;
	}
	if (t->header_error) {
		qfile_writer_abort(&t->w);
		smtpd_session_reply(s, 552, "5.3.4", "Error: message header size exceeds limit");
		smtpd_session_end_data(s, false);
		return;
	}
	const struct smtpd_conf *conf = smtpd_session_conf(s);
	if (conf->content_checks_broken || t->check_error) {
		log_warning("%s: content checks unavailable (header_checks/body_checks): "
			    "message from %s deferred", id, smtpd_session_peer(s));
		qfile_writer_abort(&t->w);
		smtpd_session_reply(s, 451, "4.3.0", "Error: temporary content check failure");
		smtpd_session_end_data(s, false);
		return;
	}
	if (t->verdict.action == HDRCHECK_REJECT) {
		qfile_writer_abort(&t->w);
		/* "550 5.7.1 text": the reply code, the status, the text. */
		struct buf reply = BUF_INIT;
		hdrcheck_reject_reply(&t->verdict, &reply);
		const char *r = buf_cstr(&reply);
		char status[16] = "";
		const char *sp = strchr(r, ' ');
		const char *text = sp != NULL ? sp + 1 : r;
		const char *sp2 = strchr(text, ' ');
		if (sp2 != NULL && (size_t)(sp2 - text) < sizeof(status)) {
			memcpy(status, text, (size_t)(sp2 - text));
			status[sp2 - text] = '\0';
			text = sp2 + 1;
		}
		smtpd_session_reply(s, t->verdict.is_temporary ? 451 : 550,
				    status[0] != '\0' ? status : (t->verdict.is_temporary ? "4.7.1" : "5.7.1"),
				    "%s", text);
		buf_deinit(&reply);
		smtpd_session_end_data(s, false);
		return;
	}
	if (t->verdict.action == HDRCHECK_DISCARD) {
		/* Postfix answers as if the message had been queued. */
		qfile_writer_abort(&t->w);
		smtpd_session_reply(s, 250, "2.0.0", "Ok: queued as %s", id);
		smtpd_session_end_data(s, true);
		return;
	}
	if (t->verdict.action == HDRCHECK_REDIRECT)
		qfile_writer_redirect(t->w, t->verdict.text);
	/* The commit (fsync, rename, directory fsync) runs on the commit
	 * pool; the session waits, suspended, and the other sessions go on. */
	struct smtpd_commit *c = xcalloc(1, sizeof(*c));
	c->w = t->w;
	t->w = NULL;
	c->s = s;
	(void)str_copy(c->id, sizeof(c->id), id);
	c->queue_dir = xstrdup(qdir);
	c->peer = xstrdup(smtpd_session_peer(s));
	c->message_id = xstrdup(t->message_id != NULL ? t->message_id : "");
	c->hold = t->verdict.action == HDRCHECK_HOLD;
	smtpd_session_commit_begin(s, c);
	workq_submit(smtpd_session_commitq(s), commit_work, commit_done, c);
}

/* On a pool thread: only the writer, which the job owns. */
static void commit_work(void *ctx)
{
	struct smtpd_commit *c = ctx;
	const char *error = NULL;
	c->ret = qfile_writer_commit(&c->w, c->hold ? QUEUE_HOLD : QUEUE_INCOMING, &error);
	c->error = error;
	c->saved_errno = errno;
}

/* Back in the loop thread. */
static void commit_done(void *ctx)
{
	struct smtpd_commit *c = ctx;
	struct smtpd_session *s = c->s;

	if (c->ret < 0) {
		log_warning("%s: queue file write error for %s: %s: %s", c->id, c->peer,
			    c->error != NULL ? c->error : "error", strerror(c->saved_errno));
	} else {
		/* Queued: logged and handed to the queue manager even when the
		 * client has gone meanwhile (it saw no 250 and may send the
		 * message again: at-least-once). */
		struct buf wake = BUF_INIT;
		if (s != NULL)
			smtpd_session_log_queued(s, c->id, c->message_id);
		else
			log_info("%s: queued after %s disconnected", c->id, c->peer);
		buf_printf(&wake, "I %s\n", c->id);
		if (!c->hold && queue_notify(c->queue_dir, "qmgr", buf_cstr(&wake)) < 0)
			log_warning("%s: queue manager wake-up: %s", c->id, strerror(errno));
		buf_deinit(&wake);
	}
	if (s != NULL) {
		if (c->ret < 0)
			smtpd_session_reply(s, 451, "4.3.0", "Error: queue file write error");
		else
			smtpd_session_reply(s, 250, "2.0.0", "Ok: queued as %s", c->id);
		smtpd_session_end_data(s, c->ret == 0);
		smtpd_session_commit_end(s);
	}
	free(c->queue_dir);
	free(c->peer);
	free(c->message_id);
	free(c);
}

bool smtpd_data_input(struct smtpd_session *s, struct evbuffer *in)
{
	struct smtpd_txn *t = smtpd_session_txn(s);

	while (evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		bool done = false;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		size_t before = t->out.len;
		size_t used = smtpd_dot_decode(&t->dot, v.iov_base, v.iov_len, &t->out, &done);
		evbuffer_drain(in, used);
		data_take_output(s, t, t->out.len - before);
		if (done) {
			data_finish(s, t);
			return true;
		}
	}
	return false;
}
