/* tls.h - the TLS server context shared by facteur's services (OpenSSL 3):
 * TLS 1.2 and 1.3 only, forward-secret AEAD ciphers for TLS 1.2 (TLS 1.3's
 * suites are all modern), server cipher preference, no compression, no
 * renegotiation, a certificate chain and key from PEM files.
 */
#ifndef FACTEUR_MAIL_TLS_H
#define FACTEUR_MAIL_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

struct ssl_ctx_st;
struct ssl_st;

/* TLS 1.2 ciphers: ECDHE with AES-GCM or ChaCha20-Poly1305 (Mozilla's
 * "intermediate" list without the DHE ones). */
#define TLS_CIPHERS_TLS12 "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* A server context from a certificate (chain) file and its key.  NULL
 * with *error_r ("cannot load certificate /x: ..."). */
struct ssl_ctx_st *tls_server_ctx_new(const char *cert_file, const char *key_file,
				      const char **error_r);
void tls_ctx_free(struct ssl_ctx_st **ctx);

/* Append what Postfix logs and puts in Received: for an established
 * connection: "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)". */
void tls_conn_describe(struct ssl_st *ssl, struct buf *out);

/* The last OpenSSL error as text (for logs), or "unknown error". */
const char *tls_last_error(void);

#endif
