/* role.h - what the master hands to each role process it forks, and the
 * roles' entry points.  Roles never include each other's headers; the
 * master and the CLI reach them only through this file. */
#ifndef FACTEUR_MAIL_ROLE_H
#define FACTEUR_MAIL_ROLE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct config;

enum role_service {
	ROLE_SVC_SMTPD,      /* port 25: mail from other servers and the LAN */
	ROLE_SVC_SUBMISSION, /* port 587 */
	ROLE_SVC_SMTPS,      /* port 465 */
	ROLE_SVC_POP3,       /* port 110: pop3-login only */
	ROLE_SVC_IMAP,       /* port 143: imap-login only */
};

struct role_listener {
	int fd;
	enum role_service service;
	char *address; /* "127.0.0.1:2525", for logs */
};

struct role_env {
	struct config *cfg;
	const char *config_dir;
	const char *queue_dir;
	const char *data_dir;
	struct role_listener *listeners; /* smtpd: SMTP ones; *-login: theirs */
	size_t n_listeners;
	bool started_as_root;
	uid_t mail_uid; /* mail_owner, or the invoking user */
	gid_t mail_gid;
	bool foreground;
};

/* Become mail_owner (setgroups, setgid, setuid; then check that root cannot
 * be regained).  No-op when not started as root.  0 or -1 with *error_r. */
int role_drop_privileges(const struct role_env *env, const char **error_r);

/* Role entry points, run in a child of the master.  Each returns the exit
 * status.  SIGTERM: stop now (finish the current step); SIGHUP: stop taking
 * new work and exit when idle (the master has started a successor with the
 * new configuration). */
int smtpd_main(const struct role_env *env);
int qmgr_main(const struct role_env *env);
int local_main(const struct role_env *env);
int pickup_main(const struct role_env *env);
int smtp_main(const struct role_env *env);
int pop3_login_main(const struct role_env *env); /* unprivileged POP3 front end */
int pop3_main(const struct role_env *env);       /* root: verifies, serves as the user */
int imap_login_main(const struct role_env *env); /* unprivileged IMAP front end */
int imap_main(const struct role_env *env);       /* root: verifies, serves as the user */

#endif
