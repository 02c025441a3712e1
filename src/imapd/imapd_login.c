/* imapd_login.c - the imap-login role: the IMAP side of the shared login
 * front end (mail/login.h) for the not-authenticated state (RFC 3501
 * section 6.1 and 6.2: CAPABILITY, NOOP, LOGOUT, LOGIN, AUTHENTICATE with
 * SASL-IR (RFC 4959), ID (RFC 2971)).  Credentials go to the privileged imap
 * role, which answers the login command itself once it has become the
 * mailbox owner.  Plaintext logins are accepted only from loopback while
 * disable_plaintext_auth = yes (no TLS yet): elsewhere LOGINDISABLED is
 * announced (RFC 3501 6.2.3) and LOGIN/AUTHENTICATE are refused.
 */
#include "imapd/imapd.h"

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/access_proto.h"
#include "mail/auth.h"
#include "mail/config.h"
#include "mail/login.h"
#include "mail/role.h"
#include "mail/sasl.h"

#include <stdlib.h>
#include <string.h>

#define IMAP_LOGIN_MAX_BAD_COMMANDS 10

#define IMAP_LOGIN_CAPS_BASE "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE"

struct imap_login {
	struct imap_reader *reader;
	struct sasl_server *sasl;
	char *sasl_tag; /* AUTHENTICATE in progress */
	char *auth_tag; /* being verified: for the failure answer */
	unsigned bad_commands;
	bool quit;
};

static void *imap_login_new(struct login_session *s)
{
	struct imap_login *il = xcalloc(1, sizeof(*il));
	struct imap_reader_limits lim = {
		.line_max = (size_t)config_get_size(login_config(s), "imap_max_line_length"),
		.literal_max = AUTH_PASSWORD_MAX,
		.total_max = ACCESS_PROTO_PENDING_MAX,
		.depth_max = 8,
	};
	il->reader = imap_reader_new(&lim);
	return il;
}

static void imap_login_free(void *state)
{
	struct imap_login *il = state;
	imap_reader_free(&il->reader);
	sasl_server_free(&il->sasl);
	free(il->sasl_tag);
	free(il->auth_tag);
	free(il);
}

static void imap_login_caps(struct login_session *s, struct buf *out)
{
	buf_append_str(out, IMAP_LOGIN_CAPS_BASE);
	if (login_plaintext_allowed(s))
		buf_append_str(out, " AUTH=PLAIN AUTH=LOGIN");
	else
		buf_append_str(out, " LOGINDISABLED");
}

static bool imap_login_greet(struct login_session *s, void *state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_append_str(&b, "* OK [CAPABILITY ");
	imap_login_caps(s, &b);
	buf_append_str(&b, "] facteur IMAP4rev1 ready.\r\n");
	bool ok = login_send(s, buf_cstr(&b));
	buf_deinit(&b);
	return ok;
}

static void imap_login_start_auth(struct login_session *s, struct imap_login *il, const char *tag,
				  const char *user, const char *password)
{
	free(il->auth_tag);
	il->auth_tag = xstrdup(tag);
	const void *pending = NULL;
	size_t pending_len = imap_reader_pending(il->reader, &pending);
	login_authenticate(s, user, password, tag, pending, pending_len);
}

static const char imap_login_plain_refused[] =
	"NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) "
	"connections.";

/* After a SASL step: challenge, failure or credentials. */
static void imap_login_sasl_result(struct login_session *s, struct imap_login *il, int r,
				   char *challenge)
{
	if (r == 0) {
		if (!login_sendf(s, "+ %s\r\n", challenge))
			il->quit = true;
		free(challenge);
		return;
	}
	char *tag = il->sasl_tag;
	il->sasl_tag = NULL;
	if (r < 0) {
		bool cancelled = sasl_server_cancelled(il->sasl);
		sasl_server_free(&il->sasl);
		il->bad_commands++;
		(void)login_sendf(s, "%s BAD %s\r\n", tag,
				  cancelled ? "Authentication aborted by client."
					    : "Invalid base64 data in continued response.");
		free(tag);
		return;
	}
	const char *user, *password;
	sasl_server_credentials(il->sasl, &user, &password);
	imap_login_start_auth(s, il, tag, user, password);
	sasl_server_free(&il->sasl);
	free(tag);
}

static void imap_login_command(struct login_session *s, struct imap_login *il,
			       const struct imap_cmd *c)
{
	const char *name = c->name;
	if (c->uid) {
		(void)login_sendf(s, "%s BAD Please log in first.\r\n", c->tag);
		il->bad_commands++;
		return;
	}
	if (strcmp(name, "CAPABILITY") == 0) {
		struct buf b = BUF_INIT;
		buf_append_str(&b, "* CAPABILITY ");
		imap_login_caps(s, &b);
		buf_printf(&b, "\r\n%s OK Capability completed.\r\n", c->tag);
		(void)login_send(s, buf_cstr(&b));
		buf_deinit(&b);
	} else if (strcmp(name, "NOOP") == 0) {
		(void)login_sendf(s, "%s OK NOOP completed.\r\n", c->tag);
	} else if (strcmp(name, "LOGOUT") == 0) {
		(void)login_sendf(s, "* BYE Logging out\r\n%s OK Logout completed.\r\n", c->tag);
		il->quit = true;
	} else if (strcmp(name, "ID") == 0) {
		/* RFC 2971: the client's list is only informational. */
		(void)login_sendf(s, "* ID (\"name\" \"facteur\")\r\n%s OK ID completed.\r\n",
				  c->tag);
	} else if (strcmp(name, "STARTTLS") == 0) {
		(void)login_sendf(s, "%s BAD TLS is not available yet.\r\n", c->tag);
	} else if (strcmp(name, "LOGIN") == 0) {
		const char *user = c->argc == 2 ? imap_arg_astring(&c->args[0]) : NULL;
		const char *password = c->argc == 2 ? imap_arg_astring(&c->args[1]) : NULL;
		if (user == NULL || password == NULL || user[0] == '\0') {
			(void)login_sendf(s, "%s BAD LOGIN expects a user name and a password.\r\n",
					  c->tag);
			il->bad_commands++;
		} else if (!login_plaintext_allowed(s)) {
			(void)login_sendf(s, "%s %s\r\n", c->tag, imap_login_plain_refused);
		} else {
			imap_login_start_auth(s, il, c->tag, user, password);
		}
	} else if (strcmp(name, "AUTHENTICATE") == 0) {
		const char *mech = c->argc >= 1 ? imap_arg_astring(&c->args[0]) : NULL;
		const char *ir = c->argc == 2 ? imap_arg_astring(&c->args[1]) : NULL;
		if (mech == NULL || c->argc > 2 || (c->argc == 2 && ir == NULL)) {
			(void)login_sendf(s, "%s BAD AUTHENTICATE expects a mechanism.\r\n", c->tag);
			il->bad_commands++;
			return;
		}
		if (!login_plaintext_allowed(s)) {
			(void)login_sendf(s, "%s %s\r\n", c->tag, imap_login_plain_refused);
			return;
		}
		/* RFC 4959: "=" is an empty initial response. */
		il->sasl = sasl_server_new(mech, ir);
		if (il->sasl == NULL) {
			(void)login_sendf(s, "%s NO Unsupported authentication mechanism.\r\n",
					  c->tag);
			il->bad_commands++;
			return;
		}
		il->sasl_tag = xstrdup(c->tag);
		char *challenge = NULL;
		const char *error = NULL;
		int r = sasl_server_step(il->sasl, NULL, &challenge, &error);
		imap_login_sasl_result(s, il, r, challenge);
	} else {
		static const char *const authed[] = {
			"SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE",
			"UNSUBSCRIBE", "LIST", "LSUB", "STATUS", "APPEND", "CHECK", "CLOSE",
			"EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE", "IDLE",
			"NAMESPACE", "ENABLE", "UNSELECT",
		};
		bool known = false;
		for (size_t i = 0; i < sizeof(authed) / sizeof(authed[0]); i++)
			known = known || strcmp(name, authed[i]) == 0;
		(void)login_sendf(s, "%s BAD %s\r\n", c->tag,
				  known ? "Please log in first." : "Unknown command.");
		il->bad_commands++;
	}
}

static bool imap_login_input(struct login_session *s, void *state, struct buf *in)
{
	struct imap_login *il = state;
	if (in->len > 0) {
		imap_reader_feed(il->reader, in->data, in->len);
		explicit_bzero(in->data, in->len);
		buf_reset(in);
	}
	while (!login_busy(s)) {
		if (il->quit)
			return false;
		if (il->bad_commands >= IMAP_LOGIN_MAX_BAD_COMMANDS) {
			(void)login_send(s, "* BYE Too many invalid IMAP commands.\r\n");
			return false;
		}
		if (il->sasl != NULL) {
			const char *line;
			size_t len;
			int r = imap_reader_line(il->reader, &line, &len);
			if (r == 0)
				return true;
			if (r < 0 || len > SASL_LINE_MAX || memchr(line, '\0', len) != NULL) {
				(void)login_send(s, "* BYE Authentication line too long.\r\n");
				return false;
			}
			char buf[SASL_LINE_MAX + 1];
			memcpy(buf, line, len);
			buf[len] = '\0';
			char *challenge = NULL;
			const char *error = NULL;
			int st = sasl_server_step(il->sasl, buf, &challenge, &error);
			explicit_bzero(buf, sizeof(buf));
			imap_login_sasl_result(s, il, st, challenge);
			continue;
		}
		struct imap_cmd *cmd = NULL;
		const char *tag = NULL, *error = NULL;
		bool too_big = false;
		enum imap_read_result r = imap_reader_next(il->reader, &cmd, &tag, &error, &too_big);
		switch (r) {
		case IMAP_READ_MORE:
			return true;
		case IMAP_READ_CONTINUE:
			if (!login_send(s, "+ OK\r\n"))
				return false;
			continue;
		case IMAP_READ_BAD:
			(void)login_sendf(s, "%s BAD %s\r\n", tag != NULL ? tag : "*",
					  error != NULL ? error : "Syntax error.");
			il->bad_commands++;
			continue;
		case IMAP_READ_TOO_LONG:
			if (too_big) {
				(void)login_sendf(s, "%s NO [TOOBIG] %s\r\n", tag != NULL ? tag : "*",
						  error != NULL ? error : "Literal too big.");
				il->bad_commands++;
				continue;
			}
			(void)login_sendf(s, "* BYE %s\r\n", error != NULL ? error : "Line too long.");
			return false;
		case IMAP_READ_CMD:
			imap_login_command(s, il, cmd);
			imap_cmd_free(&cmd);
			continue;
		}
	}
	return true;
}

static bool imap_login_auth_failed(struct login_session *s, void *state, bool temporary)
{
	struct imap_login *il = state;
	const char *tag = il->auth_tag != NULL ? il->auth_tag : "*";
	bool ok = login_sendf(s, "%s %s\r\n", tag,
			      temporary ? "NO [UNAVAILABLE] Temporary authentication failure."
					: "NO [AUTHENTICATIONFAILED] Authentication failed.");
	free(il->auth_tag);
	il->auth_tag = NULL;
	return ok;
}

static const struct login_proto imap_login_proto = {
	.name = "imap",
	.socket_name = IMAP_PROTO_SOCKET_NAME,
	.timeout_param = "imap_login_timeout",
	.max_sessions_param = "imap_max_sessions",
	.input_max = 65536,
	.greeting = NULL,
	.greet = imap_login_greet,
	.too_many_connections = "* BYE [UNAVAILABLE] Too many connections.\r\n",
	.too_much_input = "* BYE Too much input.\r\n",
	.idle_timeout = "* BYE Disconnected for inactivity.\r\n",
	.session_new = imap_login_new,
	.session_free = imap_login_free,
	.input = imap_login_input,
	.auth_failed = imap_login_auth_failed,
};

int imap_login_main(const struct role_env *env)
{
	return login_main(env, &imap_login_proto);
}
