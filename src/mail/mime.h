/* mime.h - a MIME parser (RFC 2045, 2046, 2047 for ENVELOPE strings,
 * 2183, RFC 5322) for IMAP FETCH: the part tree of a message, the IMAP
 * ENVELOPE and BODY/BODYSTRUCTURE answers (RFC 3501 section 7.4.2) and the
 * byte ranges of every BODY[section].
 *
 * Input is one whole message in memory with CRLF line ends (the caller
 * converts the LF of Maildir/mbox files first: IMAP sizes and offsets are
 * counted in CRLF octets).  Bare LF is tolerated as a line end.  Parsing
 * never fails: malformed MIME is read as well as possible (a part with a
 * missing boundary runs to the end, a bad Content-Type is text/plain), as
 * mail readers expect.  Limits protect against hostile nesting.
 */
#ifndef FACTEUR_MAIL_MIME_H
#define FACTEUR_MAIL_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

#define MIME_DEPTH_MAX 32	/* nested multiparts / message/rfc822 */
#define MIME_PARTS_MAX 10000	/* parts in one message */

struct mime_param {
	char *name;  /* lower-cased */
	char *value; /* unquoted; RFC 2231 continuations joined, still encoded */
};

struct mime_part {
	/* Byte ranges in the message buffer. */
	size_t header_start; /* first header byte */
	size_t header_len;   /* header fields plus the empty line (CRLF) if present */
	size_t body_start;
	size_t body_len;     /* multipart children: up to, not including, the CRLF
				before the next boundary line (RFC 2046 5.1.1) */
	size_t body_lines;   /* lines in the body (for text/ and message/rfc822 parts) */

	/* From Content-Type, defaults per RFC 2045 5.2 (text/plain;
	 * charset=us-ascii), or message/rfc822 inside multipart/digest. */
	char *type;    /* lower-cased: "text" */
	char *subtype; /* lower-cased: "plain" */
	struct mime_param *params;
	size_t param_count;
	char *id;	   /* Content-ID, NULL when absent */
	char *description; /* Content-Description (raw), NULL when absent */
	char *encoding;	   /* Content-Transfer-Encoding lower-cased, NULL: 7bit */
	char *md5;	   /* Content-MD5, NULL when absent */
	char *disposition; /* Content-Disposition type lower-cased, NULL when absent */
	struct mime_param *disp_params;
	size_t disp_param_count;
	char *language; /* Content-Language (raw, one value), NULL when absent */
	char *location; /* Content-Location, NULL when absent */

	/* multipart/x: the parts, in order (a multipart without any part
	 * found gets one empty text/plain part, as RFC 3501 needs >= 1). */
	struct mime_part *children;
	size_t child_count;
	/* message/rfc822 (not for a "base64"/"quoted-printable" encoded one):
	 * the encapsulated message's top part (its header starts at body_start). */
	struct mime_part *message;
};

/* Parse msg[0..len).  Never NULL. */
struct mime_part *mime_parse(const char *msg, size_t len);
void mime_part_free(struct mime_part **root);

/* IMAP ENVELOPE (RFC 3501 7.4.2) of a header block hdr[0..len): Date,
 * Subject, From, Sender (defaults to From), Reply-To (defaults to From),
 * To, Cc, Bcc, In-Reply-To, Message-ID; address lists as ((name adl
 * mailbox host) ...) with RFC 5322 groups as (NIL NIL "group" NIL) ...
 * (NIL NIL NIL NIL); strings as IMAP quoted strings or literals; values as
 * in the header (encoded-words are NOT decoded: RFC 3501 wants the raw
 * value), unfolded. */
void mime_envelope_append(const char *hdr, size_t len, struct buf *out);

/* BODY (extended = false) or BODYSTRUCTURE (extended = true) of part,
 * RFC 3501 7.4.2: "(" type subtype (params) id description encoding size
 * [lines] [envelope body lines for message/rfc822] [extension data] ")";
 * multipart: "(" children... subtype [(params) disposition language
 * location] ")".  Type/subtype/encoding upper-cased as Dovecot does
 * ("TEXT" "PLAIN" "7BIT"); size is body_len. */
void mime_bodystructure_append(const struct mime_part *part, const char *msg, bool extended,
			       struct buf *out);

/* Locate a body section (RFC 3501 6.4.5 BODY[section]).  part numbers
 * part[0..count) walk the tree (a non-multipart part has part 1 = itself;
 * a message/rfc822 part's number walks into the encapsulated message's
 * body parts).  Returns the part, or NULL when it does not exist. */
const struct mime_part *mime_part_find(const struct mime_part *root, const uint32_t *part,
				       size_t count);

/* The header fields of hdr[0..len) whose names are (exclude = false) or
 * are not (exclude = true) in names[0..n) (case-insensitive), each with
 * its CRLF, then the terminating CRLF: BODY[HEADER.FIELDS (...)]. */
void mime_header_fields_append(const char *hdr, size_t len, char *const *names, size_t n,
			       bool exclude, struct buf *out);

/* The first value of header field name in hdr[0..len), unfolded, without
 * leading/trailing white space; NULL when absent.  Caller frees. */
char *mime_header_get(const char *hdr, size_t len, const char *name);

/* Decode RFC 2047 encoded-words in value into UTF-8 (charsets: us-ascii,
 * utf-8, iso-8859-1, iso-8859-15, windows-1252; unknown charsets are left
 * encoded), for SEARCH. */
void mime_header_decode_append(const char *value, size_t len, struct buf *out);
/* Decode a part's content transfer encoding (base64, quoted-printable; others
 * as is) and, for text/ parts with a known charset as above, convert to UTF-8,
 * for SEARCH BODY/TEXT. */
void mime_body_text_append(const struct mime_part *part, const char *msg, struct buf *out);

#endif
