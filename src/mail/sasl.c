/* sasl.c - SASL PLAIN and LOGIN server state machines (see sasl.h).
 * Decoded client data is held in fixed buffers inside the state and wiped
 * by sasl_server_free(). */
#include "mail/sasl.h"

#include "mail/auth.h"

#include "lib/base64.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum sasl_mech {
	SASL_MECH_PLAIN,
	SASL_MECH_LOGIN,
};

enum sasl_state {
	SASL_STATE_START,
	SASL_STATE_PLAIN_WAIT,	/* PLAIN: empty challenge sent */
	SASL_STATE_LOGIN_USER,	/* LOGIN: "Username:" sent */
	SASL_STATE_LOGIN_PASS,	/* LOGIN: "Password:" sent */
	SASL_STATE_DONE,
	SASL_STATE_FAILED,
};

struct sasl_server {
	enum sasl_mech mech;
	enum sasl_state state;
	bool cancelled;
	char *initial;		/* NULL: none */
	char user[AUTH_USER_MAX + 1];
	char password[AUTH_PASSWORD_MAX + 1];
	/* decoded client message: authzid NUL authcid NUL passwd at most */
	uint8_t msg[AUTH_USER_MAX * 2 + AUTH_PASSWORD_MAX + 2];
};

struct sasl_server *sasl_server_new(const char *mech, const char *initial_response)
{
	enum sasl_mech m;
	if (str_casecmp(mech, "PLAIN") == 0)
		m = SASL_MECH_PLAIN;
	else if (str_casecmp(mech, "LOGIN") == 0)
		m = SASL_MECH_LOGIN;
	else
		return NULL;
	struct sasl_server *s = xcalloc(1, sizeof(*s));
	s->mech = m;
	if (initial_response != NULL)
		s->initial = xstrdup(initial_response);
	return s;
}

void sasl_server_free(struct sasl_server **sp)
{
	struct sasl_server *s = *sp;
	if (s == NULL)
		return;
	*sp = NULL;
	if (s->initial != NULL) {
		explicit_bzero(s->initial, strlen(s->initial));
		free(s->initial);
	}
	explicit_bzero(s, sizeof(*s));
	free(s);
}

/* Decode one client line into s->msg.  "=" is the empty initial response
 * (only allowed there).  Returns the length or -1. */
static int sasl_decode(struct sasl_server *s, const char *line, bool initial, size_t *len_r,
		       const char **error_r)
{
	if (strcmp(line, "*") == 0) {
		s->cancelled = true;
		*error_r = "authentication cancelled by the client";
		return -1;
	}
	if (initial && strcmp(line, "=") == 0) {
		*len_r = 0;
		return 0;
	}
	size_t len = strnlen(line, SASL_LINE_MAX + 1);
	if (len > SASL_LINE_MAX) {
		*error_r = "SASL response too long";
		return -1;
	}
	if (base64_decode(line, len, s->msg, sizeof(s->msg), len_r, error_r) < 0)
		return -1;
	return 0;
}

/* Copy a decoded field into dst (size includes the NUL): no NUL inside,
 * length limit. */
static int sasl_field(char *dst, size_t size, const uint8_t *p, size_t len, bool allow_empty,
		      const char *what_long, const char **error_r)
{
	if (len == 0 && !allow_empty) {
		*error_r = "empty SASL field";
		return -1;
	}
	if (len >= size) {
		*error_r = what_long;
		return -1;
	}
	if (memchr(p, '\0', len) != NULL) {
		*error_r = "NUL in SASL field";
		return -1;
	}
	memcpy(dst, p, len);
	dst[len] = '\0';
	return 0;
}

/* RFC 4616 section 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd */
static int sasl_plain_parse(struct sasl_server *s, size_t len, const char **error_r)
{
	const uint8_t *m = s->msg;
	const uint8_t *nul1 = memchr(m, '\0', len);
	if (nul1 == NULL) {
		*error_r = "PLAIN message without NUL separators";
		return -1;
	}
	size_t zlen = (size_t)(nul1 - m);
	const uint8_t *authcid = nul1 + 1;
	size_t rest = len - zlen - 1;
	const uint8_t *nul2 = memchr(authcid, '\0', rest);
	if (nul2 == NULL) {
		*error_r = "PLAIN message with one NUL separator";
		return -1;
	}
	size_t clen = (size_t)(nul2 - authcid);
	const uint8_t *pass = nul2 + 1;
	size_t plen = rest - clen - 1;
	if (zlen > AUTH_USER_MAX) {
		*error_r = "PLAIN authorization identity too long";
		return -1;
	}
	if (sasl_field(s->user, sizeof(s->user), authcid, clen, false,
		       "PLAIN user name too long", error_r) < 0)
		return -1;
	if (sasl_field(s->password, sizeof(s->password), pass, plen, false,
		       "PLAIN password too long", error_r) < 0)
		return -1;
	/* No proxy authentication: the authzid, if any, must be the user. */
	if (zlen > 0 && (zlen != clen || memcmp(m, authcid, clen) != 0)) {
		*error_r = "PLAIN authorization identity differs from the user";
		return -1;
	}
	return 0;
}

static int sasl_fail(struct sasl_server *s, int ret)
{
	explicit_bzero(s->msg, sizeof(s->msg));
	if (ret < 0) {
		s->state = SASL_STATE_FAILED;
		explicit_bzero(s->password, sizeof(s->password));
	}
	return ret;
}

int sasl_server_step(struct sasl_server *s, const char *client_b64_line,
		     char **challenge_b64_r, const char **error_r)
{
	*challenge_b64_r = NULL;
	size_t len;
	const char *line = client_b64_line;
	bool initial = false;

	if (s->state == SASL_STATE_DONE || s->state == SASL_STATE_FAILED) {
		*error_r = "SASL exchange already finished";
		return -1;
	}
	if (s->state == SASL_STATE_START) {
		if (line != NULL) {
			*error_r = "first SASL step takes no client line";
			return sasl_fail(s, -1);
		}
		if (s->initial == NULL) {
			if (s->mech == SASL_MECH_PLAIN) {
				s->state = SASL_STATE_PLAIN_WAIT;
				*challenge_b64_r = xstrdup("");
			} else {
				s->state = SASL_STATE_LOGIN_USER;
				*challenge_b64_r = xstrdup("VXNlcm5hbWU6"); /* "Username:" */
			}
			return 0;
		}
		line = s->initial;
		initial = true;
		s->state = s->mech == SASL_MECH_PLAIN ? SASL_STATE_PLAIN_WAIT : SASL_STATE_LOGIN_USER;
	} else if (line == NULL) {
		*error_r = "missing SASL client line";
		return sasl_fail(s, -1);
	}
	if (sasl_decode(s, line, initial, &len, error_r) < 0)
		return sasl_fail(s, -1);

	switch (s->state) {
	case SASL_STATE_PLAIN_WAIT:
		if (sasl_plain_parse(s, len, error_r) < 0)
			return sasl_fail(s, -1);
		s->state = SASL_STATE_DONE;
		return sasl_fail(s, 1);
	case SASL_STATE_LOGIN_USER:
		if (sasl_field(s->user, sizeof(s->user), s->msg, len, false,
			       "LOGIN user name too long", error_r) < 0)
			return sasl_fail(s, -1);
		s->state = SASL_STATE_LOGIN_PASS;
		*challenge_b64_r = xstrdup("UGFzc3dvcmQ6"); /* "Password:" */
		return sasl_fail(s, 0);
	case SASL_STATE_LOGIN_PASS:
		if (sasl_field(s->password, sizeof(s->password), s->msg, len, false,
			       "LOGIN password too long", error_r) < 0)
			return sasl_fail(s, -1);
		s->state = SASL_STATE_DONE;
		return sasl_fail(s, 1);
	default:
		*error_r = "SASL state error";
		return sasl_fail(s, -1);
	}
}

void sasl_server_credentials(const struct sasl_server *s, const char **user_r,
			     const char **password_r)
{
	*user_r = s->user;
	*password_r = s->password;
}

bool sasl_server_cancelled(const struct sasl_server *s)
{
	return s->cancelled;
}
