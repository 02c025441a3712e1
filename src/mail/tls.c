/* tls.c - TLS server contexts (see tls.h).  Settings follow current
 * practice (RFC 9325): TLS 1.2 minimum, ECDHE + AEAD ciphers, server
 * preference, no compression, no client-initiated renegotiation, no
 * session tickets across restarts (stateless tickets would need a shared
 * key: a plain per-process session cache is enough for SMTP/IMAP). */
#include "mail/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>

static char tls_error_buf[256];

const char *tls_last_error(void)
{
	unsigned long e = ERR_get_error();
	if (e == 0)
		return "unknown error";
	ERR_error_string_n(e, tls_error_buf, sizeof(tls_error_buf));
	ERR_clear_error();
	return tls_error_buf;
}

struct ssl_ctx_st *tls_server_ctx_new(const char *cert_file, const char *key_file,
				      const char **error_r)
{
	static char err[600];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		*error_r = "cannot create a TLS context";
		return NULL;
	}
	(void)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
	if (SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_TLS12) != 1) {
		(void)snprintf(err, sizeof(err), "TLS cipher list: %s", tls_last_error());
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		(void)snprintf(err, sizeof(err), "cannot load certificate %s: %s", cert_file,
			       tls_last_error());
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		(void)snprintf(err, sizeof(err), "cannot load private key %s: %s", key_file,
			       tls_last_error());
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		(void)snprintf(err, sizeof(err), "private key %s does not match certificate %s",
			       key_file, cert_file);
		goto fail;
	}
	(void)SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"facteur", 7);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	*error_r = err;
	return NULL;
}

void tls_ctx_free(struct ssl_ctx_st **ctx)
{
	if (*ctx != NULL)
		SSL_CTX_free(*ctx);
	*ctx = NULL;
}

void tls_conn_describe(struct ssl_st *ssl, struct buf *out)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	int alg = 0;
	int bits = c != NULL ? SSL_CIPHER_get_bits(c, &alg) : 0;
	buf_printf(out, "%s with cipher %s (%d/%d bits)", SSL_get_version(ssl),
		   c != NULL ? SSL_CIPHER_get_name(c) : "unknown", bits, alg);
}
