/* access.h - the privileged side of the mail access services (pop3,
 * imap): receive login requests from the login front end
 * (mail/access_proto.h), verify the credentials, find the user's mailbox,
 * become its owner and serve the session - one process per session, as
 * Dovecot's pop3/imap processes.
 */
#ifndef FACTEUR_MAIL_ACCESS_H
#define FACTEUR_MAIL_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct role_env;

/* What a logged-in session is given. */
struct access_login {
	int fd;		     /* the client connection (blocking) */
	const char *user;    /* canonical name */
	const char *rip;     /* client address */
	const char *tag;     /* IMAP: tag of the login command; "" for POP3 */
	const void *pending; /* client bytes after the login command */
	size_t pending_len;
	const char *mailbox_path; /* INBOX: a Maildir or an mbox file */
	bool maildir;
	const char *home; /* NULL when unknown (virtual users without home) */
	/* mbox INBOX: where its index lives (both POP3 and IMAP use it):
	 * under the user's folder directory when there is a home, else next
	 * to the mbox. */
	const char *mbox_index_path;
	/* mbox users' folder directory (imap_mbox_directory under home), NULL
	 * without a home. */
	const char *mbox_folder_dir;
};

struct access_service {
	const char *name;	 /* "pop3", for logs */
	const char *socket_name; /* its private socket */
	/* The parameter limiting the logged-in sessions (pop3_max_sessions). */
	const char *max_sessions_param;
	/* Serve the session as the mailbox owner; returns the exit status. */
	int (*serve)(const struct role_env *env, const struct access_login *l);
	/* The reply when the session cannot start after a good login. */
	void (*internal_error)(int fd, const char *tag);
};

int access_main(const struct role_env *env, const struct access_service *svc);

#endif
