/* imapd_msgcache.h - private to imapd_fetch.c, imapd_search.c and
 * imapd_msgcache.c: access to the one cached message (struct
 * imapd_msgcache, declared in imapd.h).
 *
 * The cache keeps the message of (mailbox, UID) with CRLF line ends.  It
 * reads in 8 KB blocks and, when only the header is asked for, stops after
 * the block holding the empty line that ends it; asking for the whole
 * message later goes on reading where it stopped.  The MIME tree is parsed
 * only on demand.  Pointers returned stay valid until the next call that
 * loads another message, loads more of this one, or resets the cache.
 */
#ifndef FACTEUR_IMAPD_IMAPD_MSGCACHE_H
#define FACTEUR_IMAPD_IMAPD_MSGCACHE_H

#include <stddef.h>

struct imapd_msgcache;
struct mailbox;
struct mime_part;

/* The header of message seq (fields plus the empty line when present).
 * 0, or -1 with *error_r and errno (ENOENT: expunged by another session);
 * the cache is then reset. */
int imapd_msgcache_header(struct imapd_msgcache *mc, struct mailbox *mb, size_t seq,
			  const char **hdr_r, size_t *len_r, const char **error_r);
/* The whole message; *header_len_r gets the header length as above. */
int imapd_msgcache_message(struct imapd_msgcache *mc, struct mailbox *mb, size_t seq,
			   const char **msg_r, size_t *len_r, size_t *header_len_r,
			   const char **error_r);
/* The whole message and its MIME tree (parsed once per message). */
int imapd_msgcache_parsed(struct imapd_msgcache *mc, struct mailbox *mb, size_t seq,
			  const char **msg_r, size_t *len_r, const struct mime_part **root_r,
			  const char **error_r);

#endif
