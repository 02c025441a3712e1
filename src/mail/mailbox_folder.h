/* mailbox_folder.h - the folders (IMAP mailboxes) of one user: names,
 * hierarchy, subscriptions and SPECIAL-USE (RFC 6154), on the two layouts
 * Dovecot and Courier users already have:
 *
 *  Maildir++ (FOLDER_MAILDIRPP): root is the user's Maildir, which is also
 *    INBOX; folder "a.b" is the Maildir root/.a.b/ (with a "maildirfolder"
 *    file, as Courier and Dovecot create).  Hierarchy separator '.'.
 *    Subscriptions: root/subscriptions, one name per line (Dovecot's file).
 *  mbox directory (FOLDER_MBOX): INBOX is the spool mbox (inbox_path);
 *    folder "a/b" is the mbox file root/a/b, directories make the
 *    hierarchy (a directory is \Noselect, a file \NoInferiors), as Dovecot's
 *    mbox:~/mail:INBOX=/var/mail/%u.  Separator '/'.  Subscriptions:
 *    root/.subscriptions.
 *
 * Names are IMAP names in modified UTF-7 (RFC 3501 5.1.3), stored the same
 * way on disk.  "INBOX" is case-insensitive and always exists.  Names are
 * checked: no empty components, no leading/trailing separator, no "." or
 * ".." component, no '/' in Maildir++ names, no '.' (mbox: no leading '.')
 * component start, no control characters, at most FOLDER_NAME_MAX bytes.
 *
 * SPECIAL-USE: folder_store_open() creates and subscribes the folders
 * named by special_use (e.g. "Drafts \Drafts, Sent \Sent, Trash \Trash,
 * Junk \Junk") when missing - the first login of a new user - and LIST
 * reports their attribute.
 */
#ifndef FACTEUR_MAIL_MAILBOX_FOLDER_H
#define FACTEUR_MAIL_MAILBOX_FOLDER_H

#include "mail/mailbox.h"

#include <stdbool.h>
#include <stddef.h>

#define FOLDER_NAME_MAX 512

enum folder_layout { FOLDER_MAILDIRPP, FOLDER_MBOX };

/* LIST attributes (RFC 3501 7.2.2, RFC 3348 children, RFC 6154). */
enum folder_attr {
	FOLDER_ATTR_NOSELECT = 1u << 0,
	FOLDER_ATTR_NOINFERIORS = 1u << 1,
	FOLDER_ATTR_HASCHILDREN = 1u << 2,
	FOLDER_ATTR_HASNOCHILDREN = 1u << 3,
	FOLDER_ATTR_SUBSCRIBED = 1u << 4,
	FOLDER_ATTR_NONEXISTENT = 1u << 5, /* subscribed but missing */
	FOLDER_ATTR_DRAFTS = 1u << 8,
	FOLDER_ATTR_SENT = 1u << 9,
	FOLDER_ATTR_TRASH = 1u << 10,
	FOLDER_ATTR_JUNK = 1u << 11,
	FOLDER_ATTR_ARCHIVE = 1u << 12,
	FOLDER_ATTR_ALL = 1u << 13,
	FOLDER_ATTR_FLAGGED = 1u << 14,
};

struct folder_info {
	char *name; /* IMAP name ("INBOX" for the inbox) */
	unsigned attrs;
};

struct folder_store_params {
	enum folder_layout layout;
	/* FOLDER_MAILDIRPP: the user's Maildir (= INBOX).  FOLDER_MBOX: the
	 * folder directory (created 0700 when missing). */
	const char *root;
	/* FOLDER_MBOX: the INBOX mbox file. */
	const char *inbox_path;
	/* "Name \Attr, Name \Attr" (imap_special_use_folders); NULL or "":
	 * none. */
	const char *special_use;
};

struct folder_store;

struct folder_store *folder_store_open(const struct folder_store_params *p, const char **error_r);
void folder_store_free(struct folder_store **st);

/* The hierarchy separator: '.' or '/'. */
char folder_store_sep(const struct folder_store *st);

/* Check a name (see above); "INBOX" in any case is valid. */
int folder_name_check(const struct folder_store *st, const char *name, const char **error_r);

/* Where a folder lives and its format, for mailbox_open().  Does not check
 * existence.  Caller frees *path_r. */
int folder_path(const struct folder_store *st, const char *name, char **path_r,
		enum mailbox_format *fmt_r, const char **error_r);

/* 1 exists and can be selected, 0 not (missing, or a \Noselect directory),
 * -1 error. */
int folder_exists(const struct folder_store *st, const char *name, const char **error_r);

/* Every folder (INBOX first, then by name), with attributes (children,
 * subscribed, special-use), plus subscribed names that do not exist
 * (FOLDER_ATTR_NONEXISTENT) and missing parents of existing folders
 * (FOLDER_ATTR_NOSELECT | FOLDER_ATTR_NONEXISTENT... for Maildir++ as
 * Dovecot shows them: \Noselect \HasChildren). */
int folder_list(struct folder_store *st, struct folder_info **list_r, size_t *count_r,
		const char **error_r);
void folder_list_free(struct folder_info **list, size_t count);

/* RFC 3501 6.3.8 LIST pattern match: '*' matches anything, '%' anything
 * but the separator; "INBOX" compared case-insensitively. */
bool folder_pattern_match(const struct folder_store *st, const char *pattern, const char *name);

/* CREATE (RFC 3501 6.3.3): a trailing separator means "a parent for
 * inferiors" (mbox: a directory).  Missing parents are created (mbox:
 * directories).  -1 with errno EEXIST when it exists. */
int folder_create(struct folder_store *st, const char *name, const char **error_r);
/* DELETE (6.3.4): INBOX cannot be deleted; a folder is removed with its
 * messages; its inferiors stay (Maildir++) - a mbox directory with
 * inferiors cannot be deleted (-1, errno ENOTEMPTY). */
int folder_delete(struct folder_store *st, const char *name, const char **error_r);
/* RENAME (6.3.5): inferiors are renamed too; renaming INBOX moves its
 * messages into the new folder and leaves INBOX empty.  -1 with errno
 * EEXIST if to exists, ENOENT if from does not.  Subscriptions follow. */
int folder_rename(struct folder_store *st, const char *from, const char *to,
		  const char **error_r);
/* SUBSCRIBE/UNSUBSCRIBE (6.3.6, 6.3.7): durable (tmp file, fsync,
 * rename).  Subscribing a missing name is allowed. */
int folder_subscribe(struct folder_store *st, const char *name, bool on, const char **error_r);

#endif
