/* imapd_parse.h - the IMAP4rev1 command reader and parsers (RFC 3501
 * section 9 grammar, LITERAL+ from RFC 7888), shared by imap-login and the
 * logged-in imap session.  Pure code: no I/O, no mailbox access.
 *
 * Two layers:
 *  1. struct imap_reader turns the client's byte stream into complete
 *     commands: a tag, a command name and a tree of generic arguments
 *     (atoms, strings, NIL, parenthesized lists).  It handles quoted
 *     strings, synchronizing literals {n} (the caller must send "+ OK"
 *     when told) and non-synchronizing literals {n+} (LITERAL+).
 *  2. Command-specific parsers turn arguments into sequence sets, FETCH
 *     items, SEARCH keys, STORE requests, flag lists and dates.
 *
 * Error strings are static text for the "BAD" answer.
 */
#ifndef FACTEUR_IMAPD_IMAPD_PARSE_H
#define FACTEUR_IMAPD_IMAPD_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct buf;

/* ---- 1. Generic arguments ---- */

enum imap_arg_type {
	IMAP_ARG_ATOM,	  /* atom, also "\Seen", "BODY[HEADER.FIELDS", see below */
	IMAP_ARG_QUOTED,  /* quoted string, unescaped */
	IMAP_ARG_LITERAL, /* literal string (may contain NUL: use len) */
	IMAP_ARG_NIL,	  /* the atom NIL (case-insensitive) */
	IMAP_ARG_LIST,	  /* ( ... ) */
};

struct imap_arg {
	enum imap_arg_type type;
	/* ATOM/QUOTED/LITERAL: the bytes, NUL-terminated (len excludes it). */
	char *str;
	size_t len;
	/* LIST: the elements. */
	struct imap_arg *list;
	size_t count;
};

/* A FETCH attribute such as BODY[1.2.HEADER.FIELDS (From To)]<0.100> is
 * read as ONE atom: inside an atom, "[" is read up to the matching "]"
 * (RFC 3501 section 9: a section holds a list of astrings) and the
 * following "<...>" is kept too.  The FETCH parser splits it. */

struct imap_cmd {
	char *tag;
	char *name;	      /* upper-cased command name ("UID" stays: see below) */
	struct imap_arg *args; /* the arguments after the name */
	size_t argc;
	/* "UID FETCH ...": name is "FETCH" and uid is true. */
	bool uid;
};

void imap_cmd_free(struct imap_cmd **cmd);

struct imap_reader_limits {
	size_t line_max;    /* one line of a command, without literals (imap_max_line_length) */
	size_t literal_max; /* one literal (message_size_limit for APPEND) */
	size_t total_max;   /* a whole command with its literals */
	size_t depth_max;   /* list nesting */
};

struct imap_reader;
struct imap_reader *imap_reader_new(const struct imap_reader_limits *limits);
void imap_reader_free(struct imap_reader **r);
/* Append received bytes. */
void imap_reader_feed(struct imap_reader *r, const void *data, size_t len);

enum imap_read_result {
	IMAP_READ_CMD,	     /* *cmd_r holds a complete command (caller frees) */
	IMAP_READ_MORE,	     /* need more bytes */
	IMAP_READ_CONTINUE,  /* a synchronizing literal was announced and is
			      * acceptable: send "+ OK\r\n", then feed more */
	IMAP_READ_BAD,	     /* bad syntax: answer "<tag> BAD <error>" (tag may
			      * be "*" when it could not be read); the reader has
			      * skipped the rest of that command and can go on */
	IMAP_READ_TOO_LONG,  /* a line/literal/command over its limit: answer
			      * BAD with error and close the connection (for a
			      * synchronizing literal over literal_max, answer
			      * "<tag> NO [TOOBIG] ..." is allowed instead: the
			      * reader reports this case with *tag_r set and
			      * too_big true, and has NOT consumed any literal
			      * bytes, and can go on) */
};

/* Take the next complete command.  tag_r/error_r point into the reader and
 * stay valid until the next call.  When IMAP_READ_TOO_LONG concerns a
 * synchronizing literal, *too_big_r is true and the reader can go on;
 * otherwise the connection must be closed. */
enum imap_read_result imap_reader_next(struct imap_reader *r, struct imap_cmd **cmd_r,
				       const char **tag_r, const char **error_r, bool *too_big_r);
/* Bytes received and not yet consumed (handed to the session process after
 * login). */
size_t imap_reader_pending(const struct imap_reader *r, const void **data_r);

/* AUTHENTICATE continuation lines are not commands: take one whole line
 * (without CRLF) when available.  1 with *line_r (valid until the next call),
 * 0 need more, -1 too long. */
int imap_reader_line(struct imap_reader *r, const char **line_r, size_t *len_r);

/* An astring argument (atom, quoted or literal) as text: NULL for a list,
 * NIL, or a string holding a NUL byte. */
const char *imap_arg_astring(const struct imap_arg *a);

/* ---- 2. Sequence sets (RFC 3501 section 9: sequence-set) ---- */

/* '*' is stored as IMAP_SEQ_STAR and resolved by the caller: the highest
 * sequence number, or the highest UID for UID commands (RFC 3501 6.4.8:
 * "*" in a UID range is the largest UID in use; a range a:b is b:a when
 * a > b). */
#define IMAP_SEQ_STAR UINT32_MAX

struct imap_seq_range {
	uint32_t lo, hi; /* as written, lo may be > hi; 0 is never valid */
};

struct imap_seqset {
	struct imap_seq_range *ranges;
	size_t count;
	bool saved; /* "$" (RFC 5182 SEARCHRES): not supported, parse error */
};

int imap_seqset_parse(const char *s, struct imap_seqset *set_r, const char **error_r);
void imap_seqset_deinit(struct imap_seqset *set);
/* Is n in the set, '*' meaning star_value? */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star_value);
/* Write a set in compact form "1:3,7" from sorted values (COPYUID). */
void imap_seqset_format(const uint32_t *values, size_t count, struct buf *out);

/* ---- 3. FETCH (RFC 3501 section 6.4.5) ---- */

enum imap_fetch_att {
	IMAP_FETCH_FLAGS,
	IMAP_FETCH_INTERNALDATE,
	IMAP_FETCH_RFC822_SIZE,
	IMAP_FETCH_ENVELOPE,
	IMAP_FETCH_BODY,	  /* BODY without section: non-extensible BODYSTRUCTURE */
	IMAP_FETCH_BODYSTRUCTURE,
	IMAP_FETCH_UID,
	IMAP_FETCH_RFC822,	  /* = BODY[] (sets \Seen), answered as "RFC822" */
	IMAP_FETCH_RFC822_HEADER, /* = BODY.PEEK[HEADER], answered as "RFC822.HEADER" */
	IMAP_FETCH_RFC822_TEXT,	  /* = BODY[TEXT] (sets \Seen), answered as "RFC822.TEXT" */
	IMAP_FETCH_BODY_SECTION,  /* BODY[...] or BODY.PEEK[...] */
};

enum imap_section_kind {
	IMAP_SECTION_ALL,	     /* BODY[] or BODY[1.2] (the part's content) */
	IMAP_SECTION_HEADER,	     /* [HEADER] or [1.HEADER] */
	IMAP_SECTION_HEADER_FIELDS,  /* [HEADER.FIELDS (a b)] */
	IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT,	     /* [TEXT] or [1.TEXT] */
	IMAP_SECTION_MIME,	     /* [1.MIME] (only with a part number) */
};

#define IMAP_SECTION_DEPTH_MAX 32

struct imap_fetch_item {
	enum imap_fetch_att att;
	/* BODY_SECTION only: */
	bool peek;
	uint32_t part[IMAP_SECTION_DEPTH_MAX]; /* part numbers, each >= 1 */
	size_t part_count;
	enum imap_section_kind kind;
	char **fields; /* HEADER.FIELDS(.NOT) names as given */
	size_t field_count;
	bool partial;	/* <origin.count> given */
	uint32_t origin, count;
	/* The section text as the client wrote it, upper-cased, for the
	 * answer: "BODY[1.HEADER.FIELDS (FROM TO)]" is answered with
	 * "BODY[1.HEADER.FIELDS (FROM TO)]<origin>" (RFC 3501 7.4.2; the
	 * partial count is not repeated). */
	char *section_text; /* e.g. "1.HEADER.FIELDS (FROM TO)" or "" */
};

struct imap_fetch {
	struct imap_fetch_item *items;
	size_t count;
};

/* args: what follows the sequence set: one atom (a macro ALL/FAST/FULL or
 * a single attribute) or a list of attributes.  Macros are expanded (RFC
 * 3501 6.4.5). */
int imap_fetch_parse(const struct imap_arg *args, size_t argc, struct imap_fetch *f_r,
		     const char **error_r);
void imap_fetch_deinit(struct imap_fetch *f);

/* ---- 4. Flags ---- */

/* System flags; values equal to mail/mailbox.h MAILBOX_FLAG_* so that
 * imapd can pass them through; \Recent cannot be stored. */
enum imap_flag {
	IMAP_FLAG_DRAFT = 1u << 0,
	IMAP_FLAG_FLAGGED = 1u << 1,
	IMAP_FLAG_ANSWERED = 1u << 3,
	IMAP_FLAG_SEEN = 1u << 4,
	IMAP_FLAG_DELETED = 1u << 5,
};

/* Parse a flag list "(\Seen \Deleted kw)" or, for STORE, a single flag
 * atom or several flag atoms.  Keywords (RFC 3501 flag-keyword atoms) are
 * counted in *keywords_r but not kept (no keyword storage); \Recent and
 * unknown \Xxx flags are errors. */
int imap_flags_parse(const struct imap_arg *args, size_t argc, unsigned *flags_r,
		     size_t *keywords_r, const char **error_r);
/* Append "\Seen \Deleted" (space separated, no parentheses). */
void imap_flags_format(unsigned flags, bool recent, struct buf *out);

/* ---- 5. STORE (RFC 3501 6.4.6) ---- */

enum imap_store_mode { IMAP_STORE_SET, IMAP_STORE_ADD, IMAP_STORE_REMOVE };

struct imap_store {
	enum imap_store_mode mode;
	bool silent;
	unsigned flags;
	size_t keywords;
};

/* args: after the sequence set: "+FLAGS.SILENT" then flags (a list or
 * atoms). */
int imap_store_parse(const struct imap_arg *args, size_t argc, struct imap_store *st_r,
		     const char **error_r);

/* ---- 6. SEARCH (RFC 3501 6.4.4) ---- */

enum imap_search_op {
	IMAP_SK_ALL,
	IMAP_SK_AND,	 /* children: all must match (a parenthesized list, or the top level) */
	IMAP_SK_OR,	 /* children[0] or children[1] */
	IMAP_SK_NOT,	 /* children[0] */
	IMAP_SK_SEQSET,	 /* set */
	IMAP_SK_UIDSET,	 /* UID set */
	IMAP_SK_FLAG,	 /* flag set (ANSWERED DELETED DRAFT FLAGGED SEEN) */
	IMAP_SK_NOFLAG,	 /* flag not set (UNANSWERED ...) */
	IMAP_SK_RECENT,	 /* also NEW = (RECENT UNSEEN), OLD = NOT RECENT */
	IMAP_SK_KEYWORD, /* str: never matches (no keywords stored) */
	IMAP_SK_UNKEYWORD, /* str: always matches */
	IMAP_SK_BEFORE,	 /* internal date < date (date only, 00:00 of that day) */
	IMAP_SK_ON,
	IMAP_SK_SINCE,	 /* internal date >= date */
	IMAP_SK_SENTBEFORE, /* Date: header, date part */
	IMAP_SK_SENTON,
	IMAP_SK_SENTSINCE,
	IMAP_SK_LARGER,	 /* RFC822.SIZE > number */
	IMAP_SK_SMALLER,
	IMAP_SK_HEADER,	 /* header field `header` contains str ("" matches presence) */
	IMAP_SK_BODY,	 /* body text contains str */
	IMAP_SK_TEXT,	 /* header or body contains str */
	/* BCC CC FROM SUBJECT TO are IMAP_SK_HEADER with header set. */
};

struct imap_search_key {
	enum imap_search_op op;
	struct imap_search_key *children;
	size_t count;
	struct imap_seqset set;
	unsigned flag;	    /* IMAP_FLAG_* */
	time_t date;	    /* a day: 00:00:00 UTC of that day */
	uint64_t number;
	char *header;	    /* field name */
	char *str;	    /* search string, UTF-8 (case-insensitive compare) */
};

/* args: everything after "SEARCH".  Handles "CHARSET x" first: US-ASCII
 * and UTF-8 (case-insensitive) are accepted; another charset gives
 * *bad_charset_r = true and -1 (answer "NO [BADCHARSET (US-ASCII UTF-8)]").
 * The result is one IMAP_SK_AND key. */
int imap_search_parse(const struct imap_arg *args, size_t argc, struct imap_search_key *key_r,
		      bool *bad_charset_r, const char **error_r);
void imap_search_key_deinit(struct imap_search_key *key);

/* ---- 7. Dates (RFC 3501 section 9: date, date-time) ---- */

/* "1-Feb-1994" (also quoted): 00:00 UTC of that day. */
int imap_date_parse(const char *s, time_t *t_r);
/* "17-Jul-1996 02:44:25 -0700" (APPEND): the instant. */
int imap_datetime_parse(const char *s, time_t *t_r);
/* Append the INTERNALDATE form, quoted: "\"17-Jul-1996 02:44:25 +0000\"". */
void imap_datetime_format(time_t t, struct buf *out);

/* ---- 8. Strings out, mailbox names ---- */

/* Append s as a quoted string when it can be one, else as a literal
 * {n}\r\n...; NULL gives NIL. */
void imap_string_append(struct buf *out, const char *s, size_t len);
/* Same for a NUL-terminated string (NULL -> NIL). */
void imap_cstring_append(struct buf *out, const char *s);
/* Append s as an astring: an atom when possible, else quoted/literal. */
void imap_astring_append(struct buf *out, const char *s);

/* Modified UTF-7 (RFC 3501 5.1.3).  Mailbox names are kept in this wire
 * form everywhere in facteur (also on disk, as Dovecot does); these check
 * and convert for SEARCH-free uses such as logs.  valid: 0 or -1. */
int imap_mutf7_check(const char *name);
int imap_mutf7_to_utf8(const char *name, struct buf *out);
int imap_utf8_to_mutf7(const char *name, struct buf *out);

#endif
