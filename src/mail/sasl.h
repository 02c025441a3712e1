/* sasl.h - server side of the SASL PLAIN (RFC 4616) and LOGIN mechanisms,
 * independent of the protocol: POP3 (RFC 5034), IMAP (RFC 3501 AUTHENTICATE)
 * and SMTP (RFC 4954) feed it the client's base64 lines and send back the
 * base64 challenges it returns with their own framing ("+ ", "334 ").
 *
 * Usage:
 *     s = sasl_server_new("PLAIN", initial_response_or_NULL);
 *     r = sasl_server_step(s, NULL, &challenge, &error);   first call
 *     while (r == 0) { send challenge; read line;
 *                      r = sasl_server_step(s, line, &challenge, &error); }
 *     r == 1: sasl_server_credentials(s, &user, &password), then verify
 *     r == -1: reply with an error (sasl_server_cancelled tells "*")
 *
 * An initial response of "=" stands for an empty one (RFC 4954 section 4,
 * RFC 4959).  Limits: user and authzid AUTH_USER_MAX bytes, password
 * AUTH_PASSWORD_MAX bytes; no NUL in any field; PLAIN with an authzid other
 * than the authcid is refused (no proxy logins).
 */
#ifndef FACTEUR_MAIL_SASL_H
#define FACTEUR_MAIL_SASL_H

#include <stdbool.h>

/* Longest client line accepted (base64 of a maximal PLAIN message). */
#define SASL_LINE_MAX 2048

struct sasl_server;

/* mech is compared case-insensitively; NULL for an unknown mechanism. */
struct sasl_server *sasl_server_new(const char *mech, const char *initial_response);
/* Wipes the credentials. */
void sasl_server_free(struct sasl_server **s);
/* client_b64_line: NULL on the first call, then each line from the client
 * (without CRLF).  Returns 1 when the credentials are complete, 0 with a
 * newly allocated base64 challenge in *challenge_b64_r (free it), -1 with
 * *error_r on a malformed exchange or a cancel ("*"). */
int sasl_server_step(struct sasl_server *s, const char *client_b64_line,
		     char **challenge_b64_r, const char **error_r);
/* After step returned 1: the authentication identity and the password,
 * owned by s. */
void sasl_server_credentials(const struct sasl_server *s, const char **user_r,
			     const char **password_r);
/* True when the last -1 came from the client cancelling with "*". */
bool sasl_server_cancelled(const struct sasl_server *s);

#endif
