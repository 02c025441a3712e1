/* qfile.h - the queue file: one message with its envelope and delivery state.
 *
 * A queue file is a sequence of typed records: one type byte, a 4-byte
 * big-endian payload length, the payload.  The layout (ARCHITECTURE.md has
 * the full table):
 *
 *   V "facteur-queue 1"           version, always first
 *   T "SEC.USEC"                  arrival time
 *   A "name\0value"               attributes (client, helo, proto, uid, ...)
 *   S "sender"                    envelope sender ("" = null sender)
 *   R "addr\0orcpt\0notify\0orig" recipient (index 0, 1, ... in order)
 *   X ""                          end of envelope
 *   C bytes                       message content (LF line ends), <= 64 KiB each
 *   E ""                          end of message: the file is complete
 * appended later, each with pwrite + fsync (state changes):
 *   D "index\0status\0dsn\0text"  recipient final (sent, bounced, expanded)
 *   N "parent\0addr\0orcpt\0notify\0orig"  recipient added by expansion
 *   W "next\0attempts\0text"      deferral: next attempt time, count, reason
 *   Y "kind"                      a notice was sent (delay warning)
 *
 * A reader rejects a file without V first, an unknown type, a bad length or
 * no E (the file is then quarantined by the caller, never deleted).  A
 * truncated record after E (crash during an append) is ignored and cut off
 * by the next append: the change it carried is simply redone (at-least-once).
 *
 * Durability: the writer creates the file in tmp/ (O_EXCL, 0600), and
 * qfile_writer_commit() flushes, fsyncs, closes, renames it into its queue
 * directory and fsyncs that directory: only then may the caller say 250.
 */
#ifndef FACTEUR_MAIL_QFILE_H
#define FACTEUR_MAIL_QFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define QFILE_VERSION_TEXT "facteur-queue 1"
#define QFILE_MAX_RECORD (1u << 20)  /* envelope records */
#define QFILE_CONTENT_CHUNK 65536u
#define QFILE_ID_MAX 32

enum qfile_rec_type {
	QREC_VERSION = 'V',
	QREC_TIME = 'T',
	QREC_ATTR = 'A',
	QREC_SENDER = 'S',
	QREC_RCPT = 'R',
	QREC_ENVEND = 'X',
	QREC_CONTENT = 'C',
	QREC_END = 'E',
	QREC_DONE = 'D',
	QREC_ADDRCPT = 'N',
	QREC_RETRY = 'W',
	QREC_NOTICE = 'Y',
};

enum qfile_rcpt_status {
	QRCPT_PENDING = 0,
	QRCPT_SENT,
	QRCPT_BOUNCED,
	QRCPT_EXPANDED, /* replaced by the recipients it expanded to (N records) */
};

/* What a writer records for one recipient. */
struct qfile_rcpt_in {
	const char *address;
	const char *orcpt;   /* DSN ORCPT ("rfc822;addr") or NULL */
	const char *notify;  /* DSN NOTIFY ("SUCCESS,FAILURE") or NULL */
	const char *orig_to; /* address before rewriting/expansion, or NULL */
};

struct qfile_rcpt {
	unsigned index;
	int parent; /* -1, or index of the recipient this one was expanded from */
	char *address;
	char *orcpt;
	char *notify;
	char *orig_to;
	enum qfile_rcpt_status status;
	char *dsn;    /* of the final status, or NULL */
	char *reason; /* of the final status, or NULL */
};

struct qfile_attr {
	char *name;
	char *value;
};

struct qfile_msg {
	char id[QFILE_ID_MAX];
	int64_t arrival_sec;
	long arrival_usec;
	char *sender;
	struct qfile_attr *attrs;
	size_t n_attrs;
	struct qfile_rcpt *rcpts;
	size_t n_rcpts;
	off_t content_offset; /* first C record */
	uint64_t content_size; /* sum of C payloads */
	off_t valid_end;      /* end of the last complete record */
	/* Deferral state: the last W record. */
	int64_t next_attempt;
	unsigned attempts;
	char *defer_reason;
	bool delay_warned;
};

struct qfile_writer;

/* Create a new queue file in QDIR/tmp.  Returns 0 or -1 with *error_r
 * (static text; errno kept).  The queue id is fixed at creation. */
int qfile_writer_open(const char *queue_dir, struct qfile_writer **w_r, const char **error_r);
const char *qfile_writer_id(const struct qfile_writer *w);
/* Record writers are buffered; a write error is latched and reported by
 * qfile_writer_commit(). */
void qfile_writer_time(struct qfile_writer *w, int64_t sec, long usec);
void qfile_writer_attr(struct qfile_writer *w, const char *name, const char *value);
void qfile_writer_sender(struct qfile_writer *w, const char *sender);
void qfile_writer_rcpt(struct qfile_writer *w, const struct qfile_rcpt_in *r);
void qfile_writer_end_envelope(struct qfile_writer *w);
void qfile_writer_content(struct qfile_writer *w, const void *data, size_t len);
/* Deliver to address instead of the recipients written (header_checks
 * REDIRECT): at commit, after E, every recipient is recorded as expanded
 * (D, 2.0.0 "redirected") into one N record for address, as the queue
 * manager records an alias expansion. */
void qfile_writer_redirect(struct qfile_writer *w, const char *address);
uint64_t qfile_writer_content_size(const struct qfile_writer *w);
/* Finish: E record, flush, fsync, close, rename into QDIR/SUBDIR/ID, fsync
 * that directory.  On any failure the temporary file is removed and -1 is
 * returned.  Frees w in every case. */
int qfile_writer_commit(struct qfile_writer **w, const char *subdir, const char **error_r);
/* Abandon: remove the temporary file and free w. */
void qfile_writer_abort(struct qfile_writer **w);

/* Read and validate a whole queue file (envelope and state, not the content).
 * Returns 0, or -1 with *error_r describing the corruption (static text). */
int qfile_read(int fd, struct qfile_msg **msg_r, const char **error_r);
void qfile_msg_free(struct qfile_msg **msg);
/* Attribute value, or NULL. */
const char *qfile_msg_attr(const struct qfile_msg *m, const char *name);
/* Number of recipients not yet final. */
size_t qfile_msg_pending(const struct qfile_msg *m);

/* Call cb for each content chunk in order.  cb returns 0 to go on, -1 to
 * stop (qfile_content_read then returns -1 with *error_r NULL). */
int qfile_content_read(int fd, const struct qfile_msg *m,
		       int (*cb)(void *ctx, const uint8_t *data, size_t len), void *ctx,
		       const char **error_r);

/* Resumable content reader: one record (or the part of it that fits in
 * the caller's buffer) per call, so a sender can read as its output
 * drains instead of holding the message (PRODUCT.md "Fast").  The cursor
 * is plain data: no allocation, nothing to free. */
struct qfile_content_cursor {
	off_t off;       /* current C record */
	uint32_t rec_len; /* its payload length (valid when has_rec) */
	uint32_t rec_pos; /* payload bytes of it already returned */
	uint64_t done;   /* content bytes returned so far */
	bool has_rec;
};

void qfile_content_cursor_init(struct qfile_content_cursor *c, const struct qfile_msg *m);
/* Copy the next at most cap (> 0) content bytes into buf.  Returns 1 with
 * *len_r > 0, 0 at the end of the content (m->content_size bytes
 * returned), or -1 with *error_r (static text) when the file does not
 * hold the content qfile_read() saw. */
int qfile_content_next(int fd, const struct qfile_msg *m, struct qfile_content_cursor *c,
		       uint8_t *buf, size_t cap, size_t *len_r, const char **error_r);

/* State changes, each made durable (pwrite at valid_end after cutting any
 * torn tail, then fsync) and applied to m. */
int qfile_append_done(int fd, struct qfile_msg *m, unsigned index,
		      enum qfile_rcpt_status status, const char *dsn, const char *reason);
/* The same without the fsync: for the last pending recipient of a message
 * that is removed right after.  If a crash loses the record, the file comes
 * back with that recipient pending and it is delivered again (at-least-
 * once); skipping the fsync saves one disk flush per delivered message. */
int qfile_append_done_nosync(int fd, struct qfile_msg *m, unsigned index,
			     enum qfile_rcpt_status status, const char *dsn, const char *reason);
int qfile_append_rcpt(int fd, struct qfile_msg *m, unsigned parent,
		      const struct qfile_rcpt_in *r);
int qfile_append_retry(int fd, struct qfile_msg *m, int64_t next_attempt,
		       unsigned attempts, const char *reason);
int qfile_append_notice(int fd, struct qfile_msg *m, const char *kind);

const char *qfile_rcpt_status_name(enum qfile_rcpt_status s);

/* Test builds only (-Dcrash_hooks=true): if $FACTEUR_CRASH_AT names point,
 * the process kills itself with SIGKILL there.  No-op otherwise. */
void qfile_crash_point(const char *point);

#endif
