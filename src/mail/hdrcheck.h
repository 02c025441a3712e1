/* hdrcheck.h - header_checks and body_checks (Postfix header_checks(5)).
 *
 * Pure part of content inspection: look a logical header or a body line up
 * in a table list (regexp:, pcre:, ...), parse the action found, and build
 * the SMTP reply and the log line, all with Postfix's behaviour and texts
 * (cleanup_message.c cleanup_act / cleanup_act_log).  No I/O; the caller
 * (cleanup) applies the action to the message and logs.
 *
 * What Postfix does, and so do we:
 *  - Headers are matched one LOGICAL header at a time: a folded header is
 *    one lookup key in which the physical lines are joined by "\n" (the CR
 *    of CRLF removed, no trailing newline).  regexp: "^"/"$" therefore match
 *    only at the start/end of the whole header unless the rule has the "m"
 *    flag (REG_NEWLINE).  Body lines are matched one physical line at a time.
 *  - Action words are case-insensitive; the text after the word (optional
 *    text) starts after the spaces/tabs that follow it.
 *  - REJECT [text]: the reason is "5.7.1 text" unless text starts with an
 *    enhanced status code (d.ddd.ddd, class 2/4/5); without text it is
 *    "5.7.1 message content rejected".  A reason of class 2 is changed to
 *    class 4 with the warning "bad DSN action in TEXT -- need 4.x.x or
 *    5.x.x".  A 4.x.x reason is a temporary rejection (SMTP 451), a 5.x.x
 *    one is permanent (SMTP 550).  A leading SMTP code in the text is NOT
 *    interpreted ("REJECT 554 go away" replies "550 5.7.1 554 go away").
 *  - WARN/INFO/DISCARD/HOLD [text]: text is only logged.
 *  - REDIRECT user@domain: a target without '@' is a warning, DUNNO.
 *  - PREPEND/REPLACE text: empty text is a warning; in header_checks the
 *    text must be a header ("name: value"), otherwise a warning.
 *  - IGNORE (header: delete it; body: delete the line), DUNNO, OK (same as
 *    DUNNO): optional text allowed and ignored.
 *  - Anything else: "unknown command in header_checks map: VALUE", DUNNO.
 *  - REJECT, DISCARD and REDIRECT end header/body inspection of the message
 *    (hdrcheck_action_stops_checks); HOLD is logged only the first time
 *    (and not after DISCARD): that state is the caller's.
 */
#ifndef FACTEUR_MAIL_HDRCHECK_H
#define FACTEUR_MAIL_HDRCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

struct table_list;

enum hdrcheck_action {
	HDRCHECK_DUNNO,		/* also OK, and every bad/unknown action */
	HDRCHECK_REJECT,
	HDRCHECK_WARN,
	HDRCHECK_INFO,
	HDRCHECK_IGNORE,
	HDRCHECK_DISCARD,
	HDRCHECK_HOLD,
	HDRCHECK_REDIRECT,
	HDRCHECK_PREPEND,
	HDRCHECK_REPLACE,
};

/* What is inspected: selects the log word ("header"/"body"), the map name
 * in warnings ("header_checks"/"body_checks") and the header syntax check
 * of PREPEND/REPLACE. */
enum hdrcheck_context {
	HDRCHECK_CTX_HEADER,
	HDRCHECK_CTX_BODY,
};

/* Longest content (header or body line) copied into a log line, as
 * Postfix's "%.200s". */
#define HDRCHECK_LOG_CONTENT_MAX 200

struct hdrcheck_result {
	enum hdrcheck_action action;
	/* Owned, never NULL after a parse/lookup that returned a result:
	 * REJECT: the reason "4.x.x text" or "5.x.x text";
	 * WARN/INFO/DISCARD/HOLD: the optional text ("" when none);
	 * REDIRECT: the address; PREPEND/REPLACE: the line to insert or
	 * substitute; DUNNO/IGNORE: "". */
	char *text;
	/* REJECT with a 4.x.x reason: temporary (451), else 550. */
	bool is_temporary;
	/* Owned warning to log (log_warning("%s", ...)) when the action was
	 * bad or unknown, NULL otherwise; Postfix's wording. */
	char *warning;
};

#define HDRCHECK_RESULT_INIT { HDRCHECK_DUNNO, NULL, false, NULL }

/* Free the texts and reset to DUNNO (safe to call on an INIT result). */
void hdrcheck_result_clear(struct hdrcheck_result *r);

/* Parse a table value ("REJECT go away").  r is cleared first.  Returns 0
 * for a valid action, -1 for a bad or unknown one: r->action is then
 * HDRCHECK_DUNNO and *error_r points to r->warning (valid until the result
 * is cleared).  A valid REJECT with a 2.x.x code also sets r->warning. */
int hdrcheck_action_parse(const char *value, enum hdrcheck_context ctx,
			  struct hdrcheck_result *r, const char **error_r);

/* Look one logical header up: field is the raw header as received, with
 * its continuation lines and CRLF or LF line ends (a trailing line end is
 * allowed).  The key is normalised as described above.  Returns 1 when a
 * rule matched (r filled; r->warning set for a bad action, which acts as
 * DUNNO), 0 when none did (r cleared), -1 on a table error (*error_r). */
int hdrcheck_header(struct table_list *tl, const char *field, size_t len,
		    struct hdrcheck_result *r, const char **error_r);
/* Same for one body line (its CRLF/LF, if any, is not part of the key). */
int hdrcheck_body_line(struct table_list *tl, const char *line, size_t len,
		       struct hdrcheck_result *r, const char **error_r);

/* The lookup key Postfix uses for a raw header or body line (see above);
 * NUL bytes end the key.  Newly allocated. */
char *hdrcheck_key(const char *raw, size_t len);

/* True when the action ends header/body inspection for the message. */
bool hdrcheck_action_stops_checks(enum hdrcheck_action action);

/* Append the SMTP reply for a REJECT result, without CRLF:
 * "550 5.7.1 text" or "451 4.7.1 text". */
void hdrcheck_reject_reply(const struct hdrcheck_result *r, struct buf *out);

/* Who sent the message, for the log line.  NULL fields are omitted (origin
 * NULL prints "unknown"); sender "" prints "from=<>". */
struct hdrcheck_log_info {
	const char *queue_id;	/* NULL: no "QUEUEID: " prefix */
	const char *origin;	/* "name[addr]", or "local" for pickup */
	const char *sender;
	const char *recipient;	/* first recipient, as Postfix */
	const char *proto;	/* "SMTP", "ESMTP"... */
	const char *helo;
};

/* Append Postfix's cleanup log line for a result, e.g.
 *   "4A1B2C: reject: header Subject: buy now from
 *    localhost[127.0.0.1]; from=<a@b> to=<c@d> proto=ESMTP helo=<x>:
 *    5.7.1 message content rejected"
 * (one line).  content is the header/body as matched (hdrcheck_key),
 * cut to HDRCHECK_LOG_CONTENT_MAX bytes; control characters (the "\n" of
 * folded headers) print as '?'.  ": text" is added when text is not
 * empty.  Returns false, appending nothing, for actions Postfix does not
 * log (DUNNO, IGNORE). */
bool hdrcheck_log_line(struct buf *out, const struct hdrcheck_log_info *info,
		       enum hdrcheck_context ctx, const char *content,
		       const struct hdrcheck_result *r);

#endif
