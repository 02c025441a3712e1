/* queue.h - the queue directory: layout, ids, moves and wake-ups.
 *
 * queue_directory holds (ARCHITECTURE.md explains each):
 *   maildrop/  local submissions from `facteur sendmail` (mode 1733)
 *   tmp/       queue files being written (cleaned at start)
 *   incoming/  complete new messages, not yet seen by the queue manager
 *   active/    messages the queue manager is delivering
 *   deferred/  messages waiting for a retry
 *   hold/      messages put on hold by the administrator
 *   corrupt/   files that failed validation (kept, never deleted)
 *   public/    FIFOs anyone may write a wake-up to: qmgr, pickup
 *   private/   sockets between facteur processes (local)
 *   pid/       master.pid
 */
#ifndef FACTEUR_MAIL_QUEUE_H
#define FACTEUR_MAIL_QUEUE_H

#include <stdbool.h>
#include <sys/types.h>

struct buf;

#define QUEUE_MAILDROP "maildrop"
#define QUEUE_TMP "tmp"
#define QUEUE_INCOMING "incoming"
#define QUEUE_ACTIVE "active"
#define QUEUE_DEFERRED "deferred"
#define QUEUE_HOLD "hold"
#define QUEUE_CORRUPT "corrupt"

/* Create the queue directory tree with the right owners and modes (the
 * master does this, as root or as the invoking user). */
int queue_dirs_create(const char *queue_dir, uid_t owner, gid_t group, const char **error_r);
/* Remove leftovers of interrupted writes in tmp/ (at start, before any
 * writer runs).  Returns the number removed. */
int queue_tmp_clean(const char *queue_dir);
/* A queue id: 1-31 characters of [0-9A-Z]. */
bool queue_id_valid(const char *id);
/* QDIR/SUB/ID into out (reset first). */
void queue_path(struct buf *out, const char *queue_dir, const char *sub, const char *id);
/* Move ID from one queue directory to another durably: rename, fsync the
 * destination directory, then the source directory. */
int queue_move(const char *queue_dir, const char *id, const char *from, const char *to);
/* Move ID between queue directories with a plain rename, no fsync: for
 * the queue manager's own moves (incoming -> active -> deferred).  A rename
 * is atomic, so after a crash the file is in one of the two directories,
 * and the queue manager scans all of them at start; nothing is lost, at
 * worst a deferred message is retried early. */
int queue_rename(const char *queue_dir, const char *id, const char *from, const char *to);
/* The queue ids present in QDIR/SUB (names that are not valid ids are
 * skipped), as a NULL-terminated list freed with str_list_free(); an
 * unreadable or missing directory gives an empty list. */
char **queue_dir_ids(const char *queue_dir, const char *sub);
/* Find which queue directory holds ID; returns the name (static) or NULL. */
const char *queue_find(const char *queue_dir, const char *id);
/* Write a one-line wake-up to QDIR/public/NAME (a FIFO) without blocking;
 * "no reader" and "FIFO full" are not errors (the reader also scans). */
int queue_notify(const char *queue_dir, const char *fifo_name, const char *line);

#endif
