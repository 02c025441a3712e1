/* mailbox.h - the one mailbox layer shared by local delivery, POP3 and IMAP.
 *
 * A mailbox is opened by path and format.  mailbox_sync() brings the
 * in-memory view up to date with the disk (mail delivered, expunged or
 * re-flagged by another session, another facteur instance or another tool
 * such as mutt or mbsync) and gives every message a persistent UID.
 *
 * Maildir: UIDs, UIDVALIDITY and UIDNEXT live in ".facteur-uidlist" in the
 * Maildir (RFC 3501 2.3.1.1: UIDs strictly ascending, never reused within one
 * UIDVALIDITY).  Flags live in the file names' info part ":2,FLAGS" as every
 * Maildir reader expects.  IMAP \Recent is session state and not stored.
 *
 * Messages are numbered by sequence number seq, 1..count, in UID order, as
 * IMAP and POP3 number them.  The view changes only in mailbox_sync(),
 * mailbox_expunge() (removes that message, later ones shift down) and
 * mailbox_append() (which syncs).
 *
 * mbox (mailbox_mbox.c): a message starts at a "From " line (start of file
 * or after an empty line); dates come from the From_ line, flags from the
 * Status: (R \Seen, O old) and X-Status: (A \Answered, F \Flagged,
 * T \Draft, D \Deleted) headers that mutt, Pine and Dovecot use.  UIDs are
 * persistent: an index in mailbox_uidlist.c's format (default
 * "<dir>/.<mbox name>.facteur-uidlist", see mailbox_open_ex) maps each
 * message's fingerprint (hash of the From_ line, the headers other than the
 * status headers tools rewrite, and the body) to its UID, in file order.
 * Messages appended by local delivery, procmail or us get the next UIDs;
 * messages removed by other tools drop out; an mbox that no longer matches
 * its index (replaced, or a message inserted before known ones) gets a new
 * UIDVALIDITY.  Changes (flags, expunge, append) are made under the locks
 * local delivery takes (dotlock "<mbox>.lock" unless the directory is not
 * writable, plus an fcntl write lock): the file is rewritten in place from
 * the first changed message on, after that tail was saved to an fsync'd
 * temporary copy, keeping the inode, owner and mode.  Use the *_many
 * functions to change many messages with one rewrite.  Flag P (passed) has
 * no mbox header letter and is not stored.  mailbox_msg_open checks that
 * the message is still where the view says (From_ line and fingerprint);
 * after a rewrite by another program it finds the message again (its size
 * and flags may then differ: ask mailbox_msg_size after opening) or fails
 * with ENOENT - it never returns another message's bytes.  Changes through
 * a view that another program made stale touch only messages still there.
 *
 * Error strings returned through error_r stay valid until the next call on
 * the same mailbox (or, for mailbox_open, the next mailbox_open in the
 * thread).
 */
#ifndef FACTEUR_MAIL_MAILBOX_H
#define FACTEUR_MAIL_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct buf;

enum mailbox_format {
	MAILBOX_MAILDIR,
	MAILBOX_MBOX, /* see mailbox_mbox.c */
};

/* Stored flags; bit order is the Maildir letters' ASCII order (D F P R S T). */
enum mailbox_flag {
	MAILBOX_FLAG_DRAFT = 1u << 0,	 /* D  \Draft */
	MAILBOX_FLAG_FLAGGED = 1u << 1,	 /* F  \Flagged */
	MAILBOX_FLAG_PASSED = 1u << 2,	 /* P  (forwarded) */
	MAILBOX_FLAG_ANSWERED = 1u << 3, /* R  \Answered */
	MAILBOX_FLAG_SEEN = 1u << 4,	 /* S  \Seen */
	MAILBOX_FLAG_DELETED = 1u << 5,	 /* T  \Deleted (trashed) */
};
#define MAILBOX_FLAGS_ALL 0x3fu

/* Name of the index file and its lock inside a Maildir. */
#define MAILBOX_UIDLIST_NAME ".facteur-uidlist"
#define MAILBOX_UIDLIST_LOCK_NAME ".facteur-uidlist.lock"
/* A lock file older than this is left over by a crashed process. */
#define MAILBOX_LOCK_STALE_SECS 120
/* How long a session waits for another one's lock before failing. */
#define MAILBOX_LOCK_WAIT_SECS 30
/* Largest index file read (about 4 million messages). */
#define MAILBOX_UIDLIST_MAX_SIZE (256u * 1024 * 1024)
/* Longest Maildir base name accepted in the index (NAME_MAX). */
#define MAILBOX_NAME_MAX 255

struct mailbox;

/* Open (and for Maildir create tmp/ new/ cur/ with mode 0700 when missing)
 * and sync once.  NULL with *error_r on failure. */
struct mailbox *mailbox_open(const char *path, enum mailbox_format fmt, const char **error_r);
/* Same, with the place of an mbox's UID index (NULL: the default
 * "<dir of mbox>/.<mbox name>.facteur-uidlist", or, when we cannot write in
 * that directory (Debian's /var/mail), "<home>/.<mbox name>.facteur-uidlist").
 * Ignored for Maildir.  When the index cannot be written at all, UIDs stay
 * consistent within the session but are not persistent (warning logged). */
struct mailbox *mailbox_open_ex(const char *path, enum mailbox_format fmt, const char *index_path,
				const char **error_r);
void mailbox_free(struct mailbox **mb);

/* Pick up changes on disk; assign UIDs to new messages in delivery order;
 * drop messages whose files vanished.  Also saves computed sizes. */
int mailbox_sync(struct mailbox *mb, const char **error_r);

size_t mailbox_count(const struct mailbox *mb);
uint32_t mailbox_uidvalidity(const struct mailbox *mb);
uint32_t mailbox_uidnext(const struct mailbox *mb);
const char *mailbox_path(const struct mailbox *mb);

/* Per message, seq in 1..count (asserted). */
uint32_t mailbox_msg_uid(const struct mailbox *mb, size_t seq);
unsigned mailbox_msg_flags(const struct mailbox *mb, size_t seq);
/* Size on disk (LF line ends). */
uint64_t mailbox_msg_size(const struct mailbox *mb, size_t seq);
/* Size with CRLF line ends (POP3 LIST, IMAP RFC822.SIZE): from the name's
 * ",W=" field, the index, or computed once by reading (then saved in the
 * index at the next sync). */
int mailbox_msg_vsize(struct mailbox *mb, size_t seq, uint64_t *vsize_r, const char **error_r);
/* Internal date: the file's mtime. */
time_t mailbox_msg_date(const struct mailbox *mb, size_t seq);
/* Current full path of the file (valid until the next call on mb). */
const char *mailbox_msg_path(struct mailbox *mb, size_t seq);
/* Look a UID up: 1 and *seq_r, or 0 when not in the view. */
int mailbox_uid_lookup(const struct mailbox *mb, uint32_t uid, size_t *seq_r);

/* Open the message read-only, positioned at its first byte: read
 * mailbox_msg_size() bytes from there (an mbox holds more after them).  A
 * Maildir file renamed meanwhile by another client is found again.  -1 with
 * errno ENOENT when it has been expunged. */
int mailbox_msg_open(struct mailbox *mb, size_t seq, int *fd_r, const char **error_r);
/* Replace the stored flags (MAILBOX_FLAG_*; other info letters such as
 * Dovecot keyword letters are kept).  Tolerates a concurrent rename (rescan,
 * retry once); -1 with errno ENOENT when the message has been expunged. */
int mailbox_flags_set(struct mailbox *mb, size_t seq, unsigned flags, const char **error_r);
/* Remove the message file and the message from the view (later sequence
 * numbers shift down).  A message already gone counts as success. */
int mailbox_expunge(struct mailbox *mb, size_t seq, const char **error_r);
/* Change many messages at once (one mbox rewrite): message seqs[i] gets
 * flags[i].  seqs are in the view before the call; messages already
 * expunged by another client are skipped (success).  For Maildir the same
 * as calling mailbox_flags_set for each. */
int mailbox_flags_set_many(struct mailbox *mb, const size_t *seqs, const unsigned *flags,
			   size_t n, const char **error_r);
/* Expunge the messages seqs[0..n) (view before the call, any order,
 * duplicates ignored) with one mbox rewrite; they leave the view, later
 * ones shift down.  Messages already gone count as success. */
int mailbox_expunge_many(struct mailbox *mb, const size_t *seqs, size_t n, const char **error_r);
/* IMAP \Recent (RFC 3501 2.3.2): true when the message got its UID in a
 * sync done through this struct mailbox (Maildir: moved from new/ and
 * indexed by us; mbox: newly indexed by us). */
bool mailbox_msg_recent(const struct mailbox *mb, size_t seq);
/* Store a new message durably (tmp/, fsync, rename into cur/ with flags,
 * fsync cur/), mtime = internal_date (0: now), then sync; *uid_r is its UID.
 * mbox: appended under the locks with a From_ line ("From <Return-Path
 * address or MAILER-DAEMON> <asctime of internal_date>"), CRLF stored as LF,
 * ">From " quoting, Status:/X-Status: headers for flags, a blank line after,
 * fsync (on failure the file is truncated back). */
int mailbox_append(struct mailbox *mb, const void *data, size_t len, unsigned flags,
		   time_t internal_date, uint32_t *uid_r, const char **error_r);

/* Size of data with every bare LF counted as CRLF (RFC 1939 octet counts). */
uint64_t mailbox_crlf_size(const void *data, size_t len, bool *last_was_cr);

/* ---- The persistent index (mailbox_uidlist.c), for mailbox_*.c and tests.
 *
 * Format version 1, one header line then one line per message, UID order:
 *     1 V<uidvalidity> N<uidnext>
 *     <uid>[ W<crlf-size>] :<base name>
 * Unknown "<Letter><value>" fields are skipped, so a later version can add
 * some without breaking this reader. */
#define MAILBOX_VSIZE_UNKNOWN UINT64_MAX

struct mailbox_uidlist_entry {
	uint32_t uid;
	uint64_t vsize;
	char *name;
};

struct mailbox_uidlist {
	uint32_t uidvalidity;
	uint32_t uidnext;
	struct mailbox_uidlist_entry *entries;
	size_t count;
	size_t cap;
};

void mailbox_uidlist_init(struct mailbox_uidlist *ul);
void mailbox_uidlist_deinit(struct mailbox_uidlist *ul);
/* Takes ownership of name. */
void mailbox_uidlist_add(struct mailbox_uidlist *ul, uint32_t uid, uint64_t vsize, char *name);
/* Parse a whole index; -1 with *error_r on malformed input (ul then holds
 * nothing).  *uidvalidity_hint_r gets the header's UIDVALIDITY when it could
 * be read (else 0), so a rebuild can pick a different one. */
int mailbox_uidlist_parse(struct mailbox_uidlist *ul, const char *data, size_t len,
			  uint32_t *uidvalidity_hint_r, const char **error_r);
void mailbox_uidlist_format(const struct mailbox_uidlist *ul, struct buf *out);
/* 1 read, 0 no such file, -1 error or malformed (*malformed_r tells). */
int mailbox_uidlist_read(const char *path, struct mailbox_uidlist *ul, bool *malformed_r,
			 uint32_t *uidvalidity_hint_r, const char **error_r);
/* Atomic replace: tmp file, fsync, rename, fsync directory. */
int mailbox_uidlist_write(const char *path, const struct mailbox_uidlist *ul,
			  const char **error_r);
/* Exclusive lock by O_CREAT|O_EXCL of lock_path; a lock older than
 * MAILBOX_LOCK_STALE_SECS is broken.  Waits up to wait_secs. */
int mailbox_uidlist_lock(const char *lock_path, unsigned wait_secs, const char **error_r);
void mailbox_uidlist_unlock(const char *lock_path);

/* ---- Shared by mailbox.c and mailbox_maildir.c only. */
struct mailbox_msg {
	uint32_t uid;
	unsigned flags;
	char *base;	 /* unique part of the Maildir name, before ':' */
	char *name;	 /* current file name in cur/ */
	char *keywords;	 /* other info letters (Dovecot keywords a-z), kept */
	uint64_t offset; /* mbox: first byte after the From_ line */
	uint64_t size;
	uint64_t vsize; /* MAILBOX_VSIZE_UNKNOWN until known */
	time_t date;
	uint64_t from_offset; /* mbox: the From_ line; UINT64_MAX: not seen in the last change */
};

struct mailbox {
	enum mailbox_format fmt;
	char *path;
	uint32_t uidvalidity;
	uint32_t uidnext;
	struct mailbox_msg *msgs;
	size_t count;
	bool vsize_dirty; /* a computed vsize is not yet in the index */
	char *msg_path;	  /* storage for mailbox_msg_path() */
	char error[1024];
	/* added for mbox and \Recent */
	char *index_path;      /* mbox: its UID index */
	uint32_t *recent_uids; /* ascending: UIDs this struct gave out */
	size_t recent_count, recent_cap;
	bool mbox_stat_valid; /* the view matches the file as below */
	uint64_t mbox_dev, mbox_ino, mbox_size;
	int64_t mbox_mtime_sec;
	long mbox_mtime_nsec;
};

__attribute__((format(printf, 2, 3))) const char *mailbox_set_error(struct mailbox *mb,
								   const char *fmt, ...);
void mailbox_msg_deinit(struct mailbox_msg *m);
int mailbox_maildir_create(const char *path, const char **error_r);
int mailbox_maildir_sync(struct mailbox *mb, const char **error_r);
int mailbox_maildir_msg_open(struct mailbox *mb, size_t seq, int *fd_r, const char **error_r);
int mailbox_maildir_flags_set(struct mailbox *mb, size_t seq, unsigned flags,
			      const char **error_r);
int mailbox_maildir_expunge(struct mailbox *mb, size_t seq, const char **error_r);
int mailbox_maildir_append(struct mailbox *mb, const void *data, size_t len, unsigned flags,
			   time_t internal_date, uint32_t *uid_r, const char **error_r);
/* mailbox_mbox.c */
#define MAILBOX_MBOX_INDEX_SUFFIX ".facteur-uidlist"
int mailbox_mbox_sync(struct mailbox *mb, const char **error_r);
int mailbox_mbox_msg_open(struct mailbox *mb, size_t seq, int *fd_r, const char **error_r);
int mailbox_mbox_flags_set_many(struct mailbox *mb, const size_t *seqs, const unsigned *flags,
				size_t n, const char **error_r);
int mailbox_mbox_expunge_many(struct mailbox *mb, const size_t *seqs, size_t n,
			      const char **error_r);
int mailbox_mbox_append(struct mailbox *mb, const void *data, size_t len, unsigned flags,
			time_t internal_date, uint32_t *uid_r, const char **error_r);
/* mailbox.c: the \Recent set */
void mailbox_recent_add(struct mailbox *mb, uint32_t uid);
void mailbox_recent_clear(struct mailbox *mb);

#endif
