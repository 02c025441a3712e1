/* imapd_int.h - shared by the files of the logged-in IMAP session
 * (imapd_session.c: I/O loop, replies, mailbox view and untagged updates;
 * imapd_cmd.c: the command handlers).  Not used by imap-login.
 */
#ifndef FACTEUR_IMAPD_IMAPD_INT_H
#define FACTEUR_IMAPD_IMAPD_INT_H

#include "imapd/imapd.h"
#include "lib/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Flush the output buffer when it grows past this (big FETCH answers). */
#define IMAPD_OUT_FLUSH (64u * 1024)
/* Re-check the selected mailbox this often during IDLE even without an
 * inotify event (NFS, missed events). */
#define IMAPD_IDLE_RECHECK_SECS 30

struct imapd_session {
	const struct imap_session_params *p;
	int fd;
	long timeout_secs;
	struct imap_reader *reader;
	struct buf out;
	uint64_t in_bytes, out_bytes;
	bool broken;	   /* write failed or peer gone: stop */
	bool logout;	   /* LOGOUT done or BYE sent: stop after the reply */
	const char *end;   /* why the session ended, for the log line */
	unsigned bad_in_row;
	time_t last_input; /* autologout (RFC 3501 5.4) */

	struct folder_store *st;
	char sep;

	/* The selected mailbox and the client's view of it: UIDs and flags
	 * as last told to the client (RFC 3501 7.4.1 numbering). */
	struct mailbox *mb;
	char *sel_name;
	bool readonly;
	uint32_t uidvalidity;
	uint32_t *view_uids;
	unsigned *view_flags;
	size_t view_count;
	size_t view_recent;
	struct imapd_msgcache *mc;
	int ino_fd; /* inotify on the selected mailbox, -1 */

	/* The tagged answer of the current command, sent by the dispatcher
	 * after the untagged updates. */
	const char *reply_status; /* "OK", "NO", "BAD" */
	struct buf reply_text;
};

/* Untagged line: "* " fmt "\r\n". */
void imapd_untagged(struct imapd_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Set the tagged answer of the current command (status "OK", "NO", "BAD"). */
void imapd_reply(struct imapd_session *s, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void imapd_out_flush(struct imapd_session *s);
/* Flush when the output is large. */
void imapd_out_maybe_flush(struct imapd_session *s);

/* Wait for client bytes up to timeout_ms (-1: none) and feed them to the
 * reader; with watch_mailbox, also wake on inotify (then *mailbox_event_r).
 * 1 got something, 0 timeout, -1 EOF or error. */
int imapd_wait(struct imapd_session *s, int timeout_ms, bool watch_mailbox,
	       bool *mailbox_event_r);

/* Selected mailbox. */
int imapd_select_open(struct imapd_session *s, const char *name, bool readonly,
		      const char **error_r);
void imapd_select_close(struct imapd_session *s);
/* Take the mailbox's view as the client's (after SELECT). */
void imapd_view_reset(struct imapd_session *s);
/* Sync with the disk and tell the client what changed (EXPUNGE, FETCH
 * FLAGS, EXISTS, RECENT): RFC 3501 7.4.1 / 5.2. */
void imapd_view_update(struct imapd_session *s);
/* Refresh the view's flags from the mailbox (after our own FETCH/STORE:
 * the client has been told already). */
void imapd_view_flags_refresh(struct imapd_session *s);

/* Commands (imapd_cmd.c).  Returns after setting the tagged answer. */
void imapd_cmd_dispatch(struct imapd_session *s, struct imap_cmd *c);

/* Mailbox names: "INBOX" in any case becomes "INBOX"; caller frees. */
char *imapd_name_canon(const char *name);
/* Open a folder's mailbox (mbox INBOX with its index path). */
struct mailbox *imapd_folder_open(struct imapd_session *s, const char *name,
				  const char **error_r);

#endif
