/* maildrop.h - the maildrop file: how `facteur sendmail`, running as any
 * user without privileges, hands a message to the pickup role.
 *
 * Why a file and not a socket: it works when facteur is not running (the
 * message waits), needs no setuid/setgid program, and the kernel tells the
 * pickup who wrote it (the file's owner).
 *
 * Directory: QDIR/maildrop, mode 1733 owned by mail_owner.  Anyone may
 * create files there; nobody but mail_owner can list it, and the sticky bit
 * stops users from removing or renaming each other's files.
 *
 * File name: 32 lower-case hex digits from getrandom(2) (128 bits), so that
 * nobody can guess another user's file.  The pickup ignores other names.
 *
 * Life of a file:
 *   1. sendmail creates it with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600;
 *   2. writes the envelope and the message, pwrite()s the body size into
 *      the "body" line, fsync()s;
 *   3. fchmod(0644): the file is now complete (the pickup reads it as
 *      mail_owner through the "other" permission bits) and closes it; then
 *      fsyncs maildrop/ when it can (root; other users cannot open the
 *      directory for reading, so the entry's durability is the
 *      filesystem's journal's);
 *   4. writes "W\n" to QDIR/public/pickup and exits 0.
 * The pickup takes only regular files with mode exactly 0644 and one link;
 * a file with another mode younger than MAILDROP_ABANDON_AGE is being
 * written and skipped, an older one is abandoned and removed.  The
 * submitting user is the file's st_uid (fstat of the open file): nothing in
 * the content is trusted for identity.
 *
 * Content (version 1): text lines "key value\n" then the message:
 *
 *   facteur-maildrop 1              always first
 *   sender ADDR                     -f; absent: the user's login; empty:
 *                                   the null sender
 *   fullname TEXT                   -F (overrides the GECOS name)
 *   rcpt ADDR                       one per recipient, in order
 *   extract                         -t: add recipients from To/Cc/Bcc
 *   notify VALUE                    -N (DSN NOTIFY)
 *   ret FULL|HDRS                   -R
 *   envid TEXT                      -V
 *   body NNNNNNNNNNNNNNNNNNNN       20 decimal digits: the message size;
 *                                   always the last line
 *   <message bytes>                 LF line ends, exactly NNN bytes
 *
 * Each key at most once except rcpt; values are 0-MAILDROP_VALUE_MAX bytes
 * without control characters (8-bit is kept: full names are UTF-8); an
 * unknown key, a missing body line or a size that does not match the file
 * make the file malformed (the pickup moves it to QDIR/corrupt/).  A later
 * version adds keys and bumps the version line; readers accept every older
 * version.
 */
#ifndef FACTEUR_PICKUP_MAILDROP_H
#define FACTEUR_PICKUP_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define MAILDROP_VERSION_LINE "facteur-maildrop 1"
#define MAILDROP_VALUE_MAX 2048
#define MAILDROP_RCPT_MAX 10000
#define MAILDROP_SIZE_DIGITS 20
#define MAILDROP_NAME_LEN 32
/* The envelope part of a file is at most this long (the recipients). */
#define MAILDROP_ENVELOPE_MAX \
	((size_t)(MAILDROP_RCPT_MAX + 16) * (MAILDROP_VALUE_MAX + 16))
/* Files that are not complete after this long are abandoned (seconds). */
#define MAILDROP_ABANDON_AGE 3600

struct maildrop_env {
	char *sender;    /* NULL: not given (the login is used) */
	char *full_name; /* NULL: not given */
	char **rcpts;    /* n_rcpts entries */
	size_t n_rcpts;
	bool extract;
	char *notify;    /* NULL when absent */
	char *ret;
	char *envid;
};

void maildrop_env_init(struct maildrop_env *env);
void maildrop_env_deinit(struct maildrop_env *env);
/* Append a copy of addr to the recipients. */
void maildrop_env_add_rcpt(struct maildrop_env *env, const char *addr);

/* Is value acceptable in a line (length and characters)? */
bool maildrop_value_valid(const char *value);

/* Encode the envelope lines, ending with "body " and 20 zeros, into out
 * (appended).  Returns 0, or -1 with *error_r (static) when a value is not
 * valid or there are too many recipients. */
int maildrop_envelope_encode(const struct maildrop_env *env, struct buf *out,
			     const char **error_r);
/* Offset of the size digits from the end of the encoded envelope. */
#define MAILDROP_SIZE_OFFSET_FROM_END (MAILDROP_SIZE_DIGITS + 1)

/* Parse a whole file data[0..len).  On 0, env is filled (free it with
 * maildrop_env_deinit) and the message is data[*body_off_r..len).  On -1,
 * *error_r is a static text and env is left empty. */
int maildrop_parse(const uint8_t *data, size_t len, struct maildrop_env *env,
		   size_t *body_off_r, const char **error_r);

/* Is name a maildrop file name (32 lower-case hex digits)? */
bool maildrop_name_valid(const char *name);

/* Writer used by sendmail. */
struct maildrop_writer;

/* Create a new file in QDIR/maildrop and write the envelope.  Returns 0 or
 * -1 with *error_r (static; errno kept). */
int maildrop_writer_open(const char *queue_dir, const struct maildrop_env *env,
			 struct maildrop_writer **w_r, const char **error_r);
/* Append message bytes (buffered).  Errors are latched for commit. */
void maildrop_writer_body(struct maildrop_writer *w, const void *data, size_t len);
uint64_t maildrop_writer_body_size(const struct maildrop_writer *w);
/* Flush, set the size, fsync, chmod 0644, close, fsync the directory when
 * allowed.  Frees w.  On -1 the file is removed. */
int maildrop_writer_commit(struct maildrop_writer **w, const char **error_r);
/* Remove the file and free w. */
void maildrop_writer_abort(struct maildrop_writer **w);

#endif
