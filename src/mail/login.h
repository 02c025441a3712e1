/* login.h - the event-driven login front end shared by pop3-login and
 * imap-login: the unprivileged (mail_owner) process that talks to clients
 * before authentication.  It never sees a mailbox and never checks a
 * password itself: the credentials and the client socket go to the
 * privileged service (mail/access_proto.h), which verifies them and, on
 * success, serves the rest of the session as the mailbox owner.
 *
 * This file owns the listeners, the sessions' buffers and timers, the
 * hand-off and the per-address throttling of failed logins (a failure is
 * answered after auth_throttle's delay, on a timer: the process never
 * blocks).  The protocol (struct login_proto) only parses commands and
 * writes replies.
 */
#ifndef FACTEUR_MAIL_LOGIN_H
#define FACTEUR_MAIL_LOGIN_H

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct role_env;
struct login_session;

struct login_proto {
	const char *name;	   /* "pop3", for logs */
	const char *socket_name;   /* the service's private socket */
	const char *timeout_param; /* idle limit before login, e.g. "pop3_login_timeout" */
	/* Connections not yet logged in, at most (e.g. "pop3_max_sessions"). */
	const char *max_sessions_param;
	/* Unprocessed input kept at most (a command being received). */
	size_t input_max;
	/* The greeting, or NULL to call greet() (per-connection text). */
	const char *greeting;
	bool (*greet)(struct login_session *s, void *state);
	const char *too_many_connections;
	const char *too_much_input;
	const char *idle_timeout;
	/* Per-session protocol state. */
	void *(*session_new)(struct login_session *s);
	void (*session_free)(void *state);
	/* Take what can be taken from in (complete commands).  Called when
	 * bytes arrive and when the session resumes after a failed login.
	 * Must stop as soon as login_busy() is true.  false: close now. */
	bool (*input)(struct login_session *s, void *state, struct buf *in);
	/* Send the answer to a failed login (after the throttling delay);
	 * temporary: the service could not decide.  false: close. */
	bool (*auth_failed)(struct login_session *s, void *state, bool temporary);
};

/* Send a short reply now; false when the client does not take it (the
 * session should then be closed). */
bool login_send(struct login_session *s, const char *text);
bool login_sendf(struct login_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
const char *login_rip(const struct login_session *s);
/* Plaintext credentials are acceptable here: disable_plaintext_auth = no,
 * or the connection is secure (loopback until TLS lands). */
bool login_plaintext_allowed(const struct login_session *s);
/* Waiting for the service's verdict or a delayed failure reply: input
 * must not be processed. */
bool login_busy(const struct login_session *s);
/* The configuration the front end runs with. */
struct config *login_config(const struct login_session *s);

/* Hand user/password, the IMAP tag (NULL for POP3), the client socket and
 * the client bytes that followed the login command to the service.  On
 * success the service owns the connection and this session ends; on
 * failure proto->auth_failed() is called after the throttling delay. */
void login_authenticate(struct login_session *s, const char *user, const char *password,
			const char *tag, const void *pending, size_t pending_len);

int login_main(const struct role_env *env, const struct login_proto *proto);

#endif
