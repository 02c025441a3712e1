/* pop3d_login.c - the pop3-login role: the POP3 side of the shared login
 * front end (mail/login.h) for the AUTHORIZATION state (RFC 1939 section
 * 4, CAPA from RFC 2449, AUTH from RFC 5034).  Credentials go to the
 * privileged pop3 role, which serves the rest of the session as the
 * mailbox owner.  Plaintext logins are accepted only from loopback while
 * disable_plaintext_auth = yes (no TLS yet).
 */
#include "pop3d/pop3d.h"

#include "lib/buf.h"
#include "lib/mem.h"
#include "mail/access_proto.h"
#include "mail/auth.h"
#include "mail/login.h"
#include "mail/role.h"
#include "mail/sasl.h"

#include <stdlib.h>
#include <string.h>

#define POP3_LOGIN_MAX_BAD_COMMANDS 10
#define POP3_LOGIN_LINE_MAX SASL_LINE_MAX

struct pop3_login {
	char *user; /* from USER */
	struct sasl_server *sasl;
	unsigned bad_commands;
	bool quit;
};

static void *pop3_login_new(struct login_session *s)
{
	(void)s;
	return xcalloc(1, sizeof(struct pop3_login));
}

static void pop3_login_free(void *state)
{
	struct pop3_login *pl = state;
	free(pl->user);
	sasl_server_free(&pl->sasl);
	free(pl);
}

static const char pop3_login_capa[] = "+OK\r\n"
				      "CAPA\r\n"
				      "TOP\r\n"
				      "UIDL\r\n"
				      "RESP-CODES\r\n"
				      "PIPELINING\r\n"
				      "AUTH-RESP-CODE\r\n"
				      "USER\r\n"
				      "SASL PLAIN LOGIN\r\n"
				      "IMPLEMENTATION facteur\r\n"
				      ".\r\n";

static const char pop3_login_plain_refused[] =
	"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n";

static void pop3_login_sasl_result(struct login_session *s, struct pop3_login *pl, int r,
				   char *challenge, struct buf *in)
{
	if (r == 0) {
		if (!login_sendf(s, "+ %s\r\n", challenge))
			pl->bad_commands = POP3_LOGIN_MAX_BAD_COMMANDS;
		free(challenge);
		return;
	}
	if (r < 0) {
		bool cancelled = sasl_server_cancelled(pl->sasl);
		sasl_server_free(&pl->sasl);
		pl->bad_commands++;
		(void)login_send(s, cancelled ? "-ERR Authentication cancelled.\r\n"
					      : "-ERR Invalid AUTH data.\r\n");
		return;
	}
	const char *user, *password;
	sasl_server_credentials(pl->sasl, &user, &password);
	login_authenticate(s, user, password, NULL, in->data, in->len);
	sasl_server_free(&pl->sasl);
}

static void pop3_login_command(struct login_session *s, struct pop3_login *pl, char *line,
			       struct buf *in)
{
	struct pop3_cmd cmd;
	const char *error;
	if (pop3_cmd_parse(line, &cmd, &error) < 0) {
		(void)login_sendf(s, "-ERR %s\r\n", error);
		pl->bad_commands++;
		return;
	}
	switch (cmd.id) {
	case POP3_CMD_CAPA:
		(void)login_send(s, pop3_login_capa);
		return;
	case POP3_CMD_QUIT:
		(void)login_send(s, "+OK Logging out.\r\n");
		pl->quit = true;
		return;
	case POP3_CMD_NOOP:
		(void)login_send(s, "+OK\r\n");
		return;
	case POP3_CMD_USER:
		if (!login_plaintext_allowed(s)) {
			(void)login_send(s, pop3_login_plain_refused);
			return;
		}
		if (cmd.rest[0] == '\0' || strlen(cmd.rest) > AUTH_USER_MAX) {
			(void)login_send(s, "-ERR USER: expected a user name.\r\n");
			pl->bad_commands++;
			return;
		}
		free(pl->user);
		pl->user = xstrdup(cmd.rest);
		(void)login_send(s, "+OK\r\n");
		return;
	case POP3_CMD_PASS:
		if (pl->user == NULL) {
			(void)login_send(s, "-ERR No username given.\r\n");
			pl->bad_commands++;
			return;
		} else {
			char *user = pl->user;
			pl->user = NULL;
			login_authenticate(s, user, cmd.rest, NULL, in->data, in->len);
			free(user);
		}
		return;
	case POP3_CMD_AUTH: {
		if (!login_plaintext_allowed(s)) {
			(void)login_send(s, pop3_login_plain_refused);
			return;
		}
		if (cmd.argc == 0) {
			/* Not in RFC 5034; common clients probe this way. */
			(void)login_send(s, "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n");
			return;
		}
		const char *ir = NULL;
		if (cmd.argc == 2) {
			ir = cmd.rest + strcspn(cmd.rest, " ");
			ir += strspn(ir, " ");
		}
		pl->sasl = sasl_server_new(cmd.argv[0], ir);
		if (pl->sasl == NULL) {
			(void)login_send(s, "-ERR Unsupported authentication mechanism.\r\n");
			pl->bad_commands++;
			return;
		}
		char *challenge = NULL;
		int r = sasl_server_step(pl->sasl, NULL, &challenge, &error);
		pop3_login_sasl_result(s, pl, r, challenge, in);
		return;
	}
	case POP3_CMD_APOP:
	case POP3_CMD_STLS:
	case POP3_CMD_UNKNOWN:
		(void)login_send(s, "-ERR Unknown command.\r\n");
		pl->bad_commands++;
		return;
	default:
		(void)login_send(s, "-ERR [AUTH] Log in first.\r\n");
		pl->bad_commands++;
		return;
	}
}

/* Run every complete line buffered, as long as the session takes commands. */
static bool pop3_login_input(struct login_session *s, void *state, struct buf *in)
{
	struct pop3_login *pl = state;
	while (!login_busy(s)) {
		if (pl->quit)
			return false;
		if (pl->bad_commands >= POP3_LOGIN_MAX_BAD_COMMANDS) {
			(void)login_send(s, "-ERR Too many bad commands.\r\n");
			return false;
		}
		char *nl = in->len > 0 ? memchr(in->data, '\n', in->len) : NULL;
		size_t n = nl != NULL ? (size_t)(nl - (char *)in->data) : in->len;
		if (n > POP3_LOGIN_LINE_MAX) {
			(void)login_send(s, "-ERR Line too long.\r\n");
			return false;
		}
		if (nl == NULL)
			return true;
		char line[POP3_LOGIN_LINE_MAX + 1];
		memcpy(line, in->data, n);
		line[n] = '\0';
		if (n > 0 && line[n - 1] == '\r')
			line[n - 1] = '\0';
		buf_consume(in, n + 1);
		if (pl->sasl != NULL) {
			char *challenge = NULL;
			const char *error = NULL;
			int r = sasl_server_step(pl->sasl, line, &challenge, &error);
			pop3_login_sasl_result(s, pl, r, challenge, in);
		} else {
			pop3_login_command(s, pl, line, in);
		}
		explicit_bzero(line, sizeof(line));
	}
	return true;
}

static bool pop3_login_auth_failed(struct login_session *s, void *state, bool temporary)
{
	(void)state;
	return login_send(s, temporary ? "-ERR [SYS/TEMP] Temporary authentication failure.\r\n"
				       : "-ERR [AUTH] Authentication failed.\r\n");
}

static const struct login_proto pop3_login_proto = {
	.name = "pop3",
	.socket_name = POP3_PROTO_SOCKET_NAME,
	.timeout_param = "pop3_login_timeout",
	.max_sessions_param = "pop3_max_sessions",
	.input_max = ACCESS_PROTO_PENDING_MAX + POP3_LOGIN_LINE_MAX,
	/* RFC 1939 section 4; no APOP timestamp (APOP is not offered). */
	.greeting = "+OK facteur POP3 ready.\r\n",
	.too_many_connections = "-ERR [SYS/TEMP] Too many connections.\r\n",
	.too_much_input = "-ERR Too much input.\r\n",
	.idle_timeout = "-ERR Disconnected for inactivity.\r\n",
	.session_new = pop3_login_new,
	.session_free = pop3_login_free,
	.input = pop3_login_input,
	.auth_failed = pop3_login_auth_failed,
};

int pop3_login_main(const struct role_env *env)
{
	return login_main(env, &pop3_login_proto);
}
