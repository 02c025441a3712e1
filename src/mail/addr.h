/* addr.h - RFC 5321 envelope paths, ESMTP parameters and address helpers.
 *
 * Pure code: no configuration, no lookup tables.  Used by smtpd (MAIL FROM /
 * RCPT TO), sendmail (command-line recipients), cleanup (qualification) and
 * the relay checks.
 */
#ifndef FACTEUR_MAIL_ADDR_H
#define FACTEUR_MAIL_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 5321 4.5.3.1.1-3 size limits, in octets. */
#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255
#define ADDR_PATH_MAX 256	/* including the angle brackets */
/* RFC 3461 4.4: ENVID at most 100 characters; 4.2: ORCPT at most 500. */
#define ADDR_ENVID_MAX 100
#define ADDR_ORCPT_MAX 500
/* More ESMTP parameters than this on one command is abuse. */
#define ADDR_ESMTP_PARAMS_MAX 16

/* Parse the argument of "MAIL FROM:" or "RCPT TO:" (the caller has removed
 * the verb and the colon).  arg[0..len) need not be NUL-terminated.
 *
 * Accepted (Postfix strict_rfc821_envelopes=no): white space before '<',
 * "<>" (null sender: *addr_r is ""), a bare address without brackets ("user"
 * or "user@domain", ending at the first space), source routes
 * "<@a,@b:user@dom>" (stripped, RFC 5321 4.1.2 and appendix C), quoted local
 * parts (kept quoted), domain literals "[1.2.3.4]" and "[IPv6:...]".
 * Rejected with distinct texts: control and 8-bit characters (no SMTPUTF8),
 * unbalanced brackets or quotes, local part > 64, domain > 255, path > 256.
 * strict=true requires the angle brackets.
 *
 * On 0, *addr_r is newly allocated (caller frees) and *consumed_r is the
 * offset in arg where the ESMTP parameters begin (spaces after the path are
 * skipped; equals len when there are none).  On -1, *error_r is a static
 * text suitable for a 501 5.1.7 / 553 5.1.3 reply. */
int addr_parse_path(const char *arg, size_t len, bool strict, char **addr_r,
		    size_t *consumed_r, const char **error_r);

/* RFC 5321 4.1.2: esmtp-param = esmtp-keyword ["=" esmtp-value].
 * key is upper-cased; value is NULL when there was no '='. */
struct esmtp_param {
	char *key;
	char *value;
};

/* Split "KEY=VALUE KEY2" (separated by one or more spaces).  Keywords:
 * ALPHA/DIGIT then ALPHA/DIGIT/'-'; values: 1*(%d33-60 / %d62-126).  At most
 * ADDR_ESMTP_PARAMS_MAX parameters.  On 0, *params_r (possibly NULL when
 * *n_r is 0) is freed with addr_esmtp_params_free(). */
int addr_parse_esmtp_params(const char *s, struct esmtp_param **params_r, size_t *n_r,
			    const char **error_r);
void addr_esmtp_params_free(struct esmtp_param **params, size_t n);

/* RFC 3461 4: xtext = *( xchar / "+" 2HEXDIGIT ), xchar = %d33-42 / %d44-60
 * / %d62-126.  Decoding rejects malformed "+" escapes, characters outside
 * xchar and an encoded NUL; returns 0 and a new string, or -1. */
int xtext_decode(const char *in, char **out_r);
/* Encode any text as xtext (new string, "+HH" with upper-case hex). */
char *xtext_encode(const char *in);

/* DSN NOTIFY (RFC 3461 4.1): "NEVER" alone, or a comma list of SUCCESS,
 * FAILURE, DELAY (case-insensitive, no empty items). */
#define ADDR_NOTIFY_NEVER 0x01u
#define ADDR_NOTIFY_SUCCESS 0x02u
#define ADDR_NOTIFY_FAILURE 0x04u
#define ADDR_NOTIFY_DELAY 0x08u
int addr_esmtp_notify_parse(const char *value, unsigned *flags_r);

enum addr_dsn_ret { ADDR_RET_FULL = 1, ADDR_RET_HDRS = 2 };
/* RFC 3461 4.3: RET=FULL|HDRS (case-insensitive). */
int addr_esmtp_ret_parse(const char *value, enum addr_dsn_ret *ret_r);
/* RFC 3461 4.4: ENVID=xtext, at most 100 characters as sent.  *envid_r is
 * the decoded text (new string). */
int addr_esmtp_envid_parse(const char *value, char **envid_r);
/* RFC 3461 4.2: ORCPT=addr-type ";" xtext.  *type_r is the upper-cased
 * addr-type ("RFC822" for the usual case), *addr_r the decoded address; both
 * new strings.  An "rfc822" address must be non-empty. */
int addr_esmtp_orcpt_parse(const char *value, char **type_r, char **addr_r);
/* RFC 1870: SIZE=digits (range-checked). */
int addr_esmtp_size_parse(const char *value, uint64_t *size_r);
enum addr_body { ADDR_BODY_7BIT = 1, ADDR_BODY_8BITMIME = 2 };
/* RFC 6152: BODY=7BIT|8BITMIME (BINARYMIME is not offered). */
int addr_esmtp_body_parse(const char *value, enum addr_body *body_r);

/* Split at the last '@' outside double quotes.  *local_r and *domain_r (each
 * optional: pass NULL) are new strings; *domain_r is NULL when there is no
 * domain.  Returns true when the address has a domain. */
bool addr_split(const char *addr, char **local_r, char **domain_r);
/* New string: addr with "@origin" appended when it has no domain.  The null
 * sender "" stays "". */
char *addr_qualify(const char *addr, const char *origin);
/* Is domain in the NULL-terminated list (case-insensitive, one trailing dot
 * ignored on either side)?  The caller has expanded "$mydomain" etc. */
bool addr_domain_in_list(const char *domain, char *const *domains);
/* New string: addr with its domain part lower-cased (local part kept). */
char *addr_lower_domain(const char *addr);
/* Does a local part contain routing characters ('@', '%', '!'), quoted or
 * not?  Postfix's percent hack and bang paths are NOT applied by facteur;
 * the relay checks use this to refuse "user%other@ours" and "other!user@ours"
 * instead of relaying them by accident. */
bool addr_has_routing_chars(const char *local);

#endif
