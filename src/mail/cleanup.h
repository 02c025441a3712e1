/* cleanup.h - what Postfix's cleanup(8) does to a new message: envelope
 * address rewriting (canonical, virtual aliases) and header processing
 * (Received:, rewriting, dropped and missing headers).
 *
 * The module reads no configuration and opens no table: the caller fills
 * struct cleanup_params (from main.cf) with lookup callbacks, typically a
 * wrapper around table_list_lookup().  Tests pass fake lookups.
 */
#ifndef FACTEUR_MAIL_CLEANUP_H
#define FACTEUR_MAIL_CLEANUP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "lib/buf.h"
#include "mail/hdrcheck.h"

struct table_list;

/* Postfix virtual_alias_recursion_limit / virtual_alias_expansion_limit. */
#define CLEANUP_VIRTUAL_DEPTH_MAX 100
#define CLEANUP_VIRTUAL_COUNT_MAX 1000

/* A lookup table list: lookup returns 1 found (*value_r new string), 0 not
 * found, -1 temporary error.  lookup NULL means "no table". */
struct cleanup_map {
	int (*lookup)(void *ctx, const char *key, char **value_r);
	void *ctx;
};

struct cleanup_params {
	const char *myhostname;
	const char *myorigin;
	const char *mydomain;
	/* NULL-terminated: mydestination and the names derived from
	 * inet_interfaces, already $-expanded. */
	char *const *local_domains;
	struct cleanup_map canonical_maps;
	struct cleanup_map sender_canonical_maps;
	struct cleanup_map recipient_canonical_maps;
	struct cleanup_map virtual_alias_maps;
	/* Limits on the input header block; 0 = defaults (header.h). */
	size_t header_size_limit;
	size_t header_count_limit;
	/* Postfix local_header_rewrite_clients: headers of LOCAL submissions are
	 * always rewritten (qualified, canonical); those of SMTP clients only
	 * when the caller sets this (e.g. client in mynetworks). */
	bool rewrite_remote_headers;
	/* Postfix always_add_missing_headers (default no): add Message-Id,
	 * Date, From even when headers are not rewritten. */
	bool always_add_missing_headers;
	/* Postfix message_drop_headers contains bcc, resent-bcc by default;
	 * sendmail -t relies on it too. */
	bool remove_bcc;
	/* Name in Received: "(facteur)"; NULL = "facteur". */
	const char *mail_name;
	/* header_checks (mail/hdrcheck.h), NULL: none.  Applied to each
	 * field as received, our Received: included (Postfix's cleanup sees
	 * smtpd's Received: too: the seeds' IGNORE of Received: erases the
	 * step through this server), not to the fields cleanup adds. */
	struct table_list *header_checks;
};

enum cleanup_origin_type {
	CLEANUP_ORIGIN_SMTP,
	CLEANUP_ORIGIN_LOCAL,
};

struct cleanup_origin {
	enum cleanup_origin_type type;
	/* SMTP: helo_name is NULL when the client skipped HELO/EHLO. */
	const char *helo_name;
	const char *client_name;	/* "unknown" when it has none */
	const char *client_addr;	/* printable address, without brackets */
	const char *protocol;		/* "SMTP", "ESMTP", "ESMTPA", "ESMTPS"... */
	/* Optional: "using TLSv1.3 with cipher X (256/256 bits)". */
	const char *tls_info;
	/* LOCAL (sendmail / pickup). */
	unsigned long uid;
	const char *login;
	const char *full_name;		/* NULL or "" when unknown */
};

struct cleanup_envelope {
	const char *queue_id;
	const char *sender;		/* after cleanup_rewrite_sender; "" = null */
	/* Recipients as given (RCPT TO), used for "for <rcpt>" in Received:. */
	const char *const *recipients;
	size_t n_recipients;
	time_t arrival;
};

struct cleanup_result {
	/* Message-ID without the angle brackets, for the
	 * "QUEUEID: message-id=<ID>" log line; "" when the message has none. */
	char *message_id;
	/* Offset in the input where the header block ended (see
	 * header_block_parse); the rest is body. */
	size_t header_end;
	/* Number of fields written to the output. */
	size_t n_fields;
	/* header_checks: the action that ended inspection (REJECT, DISCARD,
	 * REDIRECT), else HOLD when a rule asked for it, else DUNNO.  Every
	 * action has been logged; IGNORE/PREPEND/REPLACE already applied. */
	struct hdrcheck_result verdict;
};

void cleanup_result_deinit(struct cleanup_result *res);

/* Full name from a passwd GECOS field as finger(1) shows it: the first
 * comma-separated part, '&' replaced by the login with its first letter
 * upper-cased.  New string ("" when none). */
char *cleanup_fullname_from_gecos(const char *gecos, const char *login);

/* Envelope sender: qualify a bare name with myorigin, then
 * sender_canonical_maps, then canonical_maps (Postfix order).  "" (null
 * sender) is returned unchanged.  New string, or NULL and *error_r when a
 * lookup failed (temporary failure). */
char *cleanup_rewrite_sender(const struct cleanup_params *p, const char *addr,
			     const char **error_r);
/* Envelope recipient: qualify, recipient_canonical_maps, canonical_maps, then
 * virtual_alias_maps with one-to-many, recursive expansion.  On 0,
 * *addrs_r is a NULL-terminated list (str_list_free) of final recipients,
 * without duplicates.  -1 with *error_r on lookup failure or when the
 * expansion limits are exceeded (temporary failure for the caller). */
int cleanup_rewrite_recipient(const struct cleanup_params *p, const char *addr,
			      char ***addrs_r, const char **error_r);

/* Process the header block hdr[0..len) of a new message (LF line ends, no
 * empty separator line needed) and write the final header block to out
 * (LF line ends, WITHOUT the empty line that separates it from the body):
 *   1. Received: (SMTP: "from HELO (NAME [ADDR])"; LOCAL: "by HOST
 *      (facteur, from userid UID)"), then for SMTP clients that skipped
 *      HELO/EHLO an X-Authentication-Warning:;
 *   2. the input fields, with Return-Path: and Content-Length: dropped
 *      (and Bcc:/Resent-Bcc: when remove_bcc), and when headers are
 *      rewritten (LOCAL origin or rewrite_remote_headers) the addresses of
 *      sender fields rewritten with the sender rules and those of recipient
 *      fields with the recipient canonical rules (never virtual aliases:
 *      Postfix does not apply them to headers);
 *   3. when missing and headers are rewritten (or
 *      always_add_missing_headers): Message-Id:, Date:, From:.
 * -1 with *error_r: header too large / too many fields (the caller replies
 * 552 5.3.4), or a lookup failure (temporary). */
int cleanup_headers(const struct cleanup_params *p, const struct cleanup_origin *o,
		    const struct cleanup_envelope *env, const char *hdr, size_t len,
		    struct buf *out, struct cleanup_result *res, const char **error_r);

/* Log a header_checks/body_checks result r for the content raw[0..len)
 * in Postfix's cleanup format ("ID: reject: header ... from NAME[ADDR];
 * from=<s> to=<r> proto=ESMTP helo=<h>: text"), and r's warning if any. */
void cleanup_check_log(const struct cleanup_origin *o, const struct cleanup_envelope *env,
		       enum hdrcheck_context ctx, const char *raw, size_t len,
		       const struct hdrcheck_result *r);
/* Keep in *verdict the result that decides the message's fate (the first
 * REJECT/DISCARD/REDIRECT, else the first HOLD); r is consumed. */
void cleanup_check_merge(struct hdrcheck_result *verdict, struct hdrcheck_result *r);

/* RFC 5322 3.3 date in local time, as Postfix's mail_date():
 * "Sun, 11 May 2003 15:21:22 +0200 (CEST)" (day of month space-padded).
 * Locale-independent.  Appended to out. */
void cleanup_date_format(struct buf *out, time_t t);

#endif
