/* imapd.h - internals of the IMAP4rev1 server (RFC 3501 with IDLE 2177,
 * UIDPLUS 4315, MOVE 6851, NAMESPACE 2342, ID 2971, ENABLE 5161, LITERAL+
 * 7888, SPECIAL-USE 6154, UNSELECT 3691, CHILDREN 3348).
 *
 * imap-login (imapd_login.c) speaks the not-authenticated state as the
 * unprivileged mail_owner and hands the authenticated connection to the
 * privileged imap role (mail/access.c), whose per-session child becomes
 * the mailbox owner and runs imap_session_run() (imapd_session.c).  FETCH
 * and SEARCH (imapd_fetch.c, imapd_search.c) work on one message at a time
 * through a message cache.
 */
#ifndef FACTEUR_IMAPD_IMAPD_H
#define FACTEUR_IMAPD_IMAPD_H

#include "imapd/imapd_parse.h"
#include "mail/mailbox_folder.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct mailbox;
struct role_env;

/* The capabilities after login (RFC 3501 7.2.1); imap-login announces its
 * own pre-login list. */
#define IMAP_CAPABILITY_AUTHED                                                                 \
	"IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE NAMESPACE UIDPLUS MOVE "   \
	"UNSELECT CHILDREN SPECIAL-USE"

struct imap_session_params {
	int fd;		 /* the client connection (blocking or not: the session sets it) */
	const char *user;
	const char *rip; /* client address, for logs */
	const char *tag; /* tag of the LOGIN/AUTHENTICATE command to answer OK to */
	const void *pending; /* client bytes already read after that command */
	size_t pending_len;
	struct folder_store_params folders;
	/* mbox INBOX only: where its persistent index lives (NULL: default). */
	const char *inbox_index_path;
	size_t line_max;	   /* imap_max_line_length */
	size_t literal_max;	   /* message_size_limit (APPEND) */
	long timeout_secs;	   /* imap_timeout: autologout, >= 30 min (RFC 3501 5.4) */
	unsigned max_bad_commands; /* imap_max_bad_commands: then BYE and close */
};

int imap_session_run(const struct imap_session_params *p);

/* ---- FETCH and SEARCH (imapd_fetch.c, imapd_search.c) ----
 * The message cache holds the last message read (CRLF-normalized, parsed
 * lazily by mail/mime.h), so that several FETCH items or SEARCH keys on one
 * message read it once; it reads only the header when that is enough. */
struct imapd_msgcache;
struct imapd_msgcache *imapd_msgcache_new(void);
/* Forget the cached message (after expunge, flag change or resync). */
void imapd_msgcache_reset(struct imapd_msgcache *mc);
void imapd_msgcache_free(struct imapd_msgcache **mc);

/* Append "* <seq> FETCH (...)\r\n" for message seq of mb to out.  Unless
 * readonly, a non-PEEK BODY[...], RFC822 or RFC822.TEXT sets \Seen
 * (mailbox_flags_set) and FLAGS is then added to the answer if not asked
 * (RFC 3501 6.4.5).  uid_cmd adds UID (6.4.8).  0, or -1 with *error_r
 * (the message was expunged by another session, or an I/O error); out is
 * then unchanged. */
int imapd_fetch_msg(struct imapd_msgcache *mc, struct mailbox *mb, size_t seq,
		    const struct imap_fetch *f, bool uid_cmd, bool readonly, struct buf *out,
		    const char **error_r);

/* Does message seq of mb match key?  1 yes, 0 no, -1 error (*error_r).
 * Sequence sets use '*' = mailbox_count(), UID sets '*' = the highest UID;
 * \Recent is mailbox_msg_recent(). */
int imapd_search_match(struct imapd_msgcache *mc, struct mailbox *mb, size_t seq,
		       const struct imap_search_key *key, const char **error_r);

/* Role entry points (mail/role.h declares them too). */
int imap_login_main(const struct role_env *env);
int imap_main(const struct role_env *env);

#endif
