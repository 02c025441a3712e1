/* header.h - RFC 5322 header blocks: split into fields, rewrite addresses.
 *
 * Pure code (no configuration).  Fields keep their bytes exactly as
 * received, folding included, so a field nobody changes is written back
 * byte-identical.
 */
#ifndef FACTEUR_MAIL_HEADER_H
#define FACTEUR_MAIL_HEADER_H

#include <stdbool.h>
#include <stddef.h>

/* Postfix's header_size_limit default and our cap on the field count. */
#define HEADER_SIZE_LIMIT_DEFAULT 102400
#define HEADER_COUNT_LIMIT_DEFAULT 1000

struct header_field {
	/* Field name as received, without trailing white space or the colon. */
	char *name;
	/* The whole field: name, colon, value and continuation lines, each line
	 * with its LF (the last one may lack it when the input did). */
	char *raw;
	size_t raw_len;
};

struct header_block {
	struct header_field *fields;
	size_t count;
	/* Offset in the input of the first byte that is not part of a field:
	 * len, an empty line, or a line that is not "name:" (see below). */
	size_t header_end;
};

/* Split data[0..len) into fields.  Lines end with LF (a CR before it stays
 * part of the field).  A field starts with "name:" where name is 1*ftext
 * (RFC 5322 3.6.8: %d33-57 / %d59-126), optionally followed by white space
 * before the colon (RFC 5322 4.5 obs-optional); lines starting with SP or
 * TAB continue it.
 *
 * The block ends at the first empty line, or at the first line that is
 * neither a field start nor a continuation (a mbox "From " line, a
 * continuation line before any field, ...): like Postfix's cleanup, that
 * line is taken as the first line of the body, and header_end points at it.
 * The caller writes the empty separator line before it.
 *
 * Limits: more than size_limit bytes of header fields gives
 * "message header size exceeds header_size_limit", more than count_limit
 * fields "too many message header fields".  On 0, free *hb_r with
 * header_block_deinit(). */
int header_block_parse(const char *data, size_t len, size_t size_limit, size_t count_limit,
		       struct header_block *hb_r, const char **error_r);
void header_block_deinit(struct header_block *hb);

/* Is the field named name (ASCII case-insensitive)? */
bool header_name_is(const struct header_field *f, const char *name);

/* Rewrite the addresses of an address-list field (From, To, Cc, Sender,
 * Reply-To, Resent-*, ...).  field_raw is the whole field as in
 * header_field.raw.  The value is parsed as an RFC 5322 3.4 address-list:
 * display names, quoted strings, comments (nested), angle addresses,
 * groups ("name: a, b;"), and obsolete forms such as "user@host (Full Name)"
 * and route addresses "<@a,@b:user@host>".  rewrite(ctx, addr) is called for
 * each addr-spec, with white space and comments removed ("" addresses "<>"
 * are skipped); it returns a new string to put in place of the addr-spec
 * text, or NULL to keep it.  Everything but the addr-spec text is kept
 * byte-identical.  On 0, *out_r is a new string (a copy when nothing
 * changed); -1 on a syntax error (unbalanced quote, comment or bracket),
 * with *out_r untouched. */
int header_rewrite_addresses(const char *field_raw, char *(*rewrite)(void *ctx, const char *addr),
			     void *ctx, char **out_r);
/* Collect the addr-specs of an address-list field (sendmail -t).  On 0,
 * *addrs_r is a NULL-terminated array freed with str_list_free(); the
 * return value is the count.  -1 on a syntax error. */
int header_extract_addresses(const char *field_raw, char ***addrs_r);

#endif
