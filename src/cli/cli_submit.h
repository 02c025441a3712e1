/* cli_submit.h - private to the sendmail and queue commands of the CLI
 * (cli_sendmail.c, cli_queue.c): the pure parts, kept in cli_submit.c so
 * that unit tests exercise them without the rest of the program.
 */
#ifndef FACTEUR_CLI_SUBMIT_H
#define FACTEUR_CLI_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/buf.h"

struct qfile_msg;

/* sysexits.h values, as sendmail(8) exits. */
#define SM_EX_OK 0
#define SM_EX_USAGE 64
#define SM_EX_DATAERR 65
#define SM_EX_NOUSER 67
#define SM_EX_UNAVAILABLE 69
#define SM_EX_SOFTWARE 70
#define SM_EX_OSERR 71
#define SM_EX_CANTCREAT 73
#define SM_EX_IOERR 74
#define SM_EX_TEMPFAIL 75
#define SM_EX_NOPERM 77
#define SM_EX_CONFIG 78

enum sendmail_mode {
	SENDMAIL_MODE_ENQUEUE, /* -bm, the default */
	SENDMAIL_MODE_MAILQ,   /* -bp, mailq */
	SENDMAIL_MODE_NEWALIAS, /* -bi, -I, newaliases */
	SENDMAIL_MODE_SMTP,    /* -bs */
	SENDMAIL_MODE_FLUSH,   /* -q */
};

struct sendmail_opts {
	enum sendmail_mode mode;
	bool extract;    /* -t */
	bool dot_ends;   /* false with -i / -oi */
	bool verbose;    /* -v (ignored) */
	const char *sender;    /* -f / -r, as given (NULL when absent) */
	const char *full_name; /* -F */
	const char *notify;    /* -N */
	const char *ret;       /* -R */
	const char *envid;     /* -V */
	const char *config_dir; /* -C DIR (Postfix: configuration directory) */
	char **rcpts;          /* into argv */
	size_t n_rcpts;
};

/* Parse the sendmail command line.  argv[0] is the name the command was
 * called by ("sendmail", "mailq", "newaliases" or a path ending in them):
 * it picks the default mode, as Postfix does.  Returns 0, or -1 with a
 * message in error (without the "sendmail: fatal: " prefix; the exit
 * status is EX_USAGE). */
int sendmail_opts_parse(int argc, char **argv, struct sendmail_opts *o, struct buf *error);

/* The sender as sendmail passes it on: "<addr>" and "addr" give "addr",
 * "<>" gives "" (the null sender).  New string. */
char *sendmail_sender_normalize(const char *sender);

/* Message input filter (Postfix sendmail): CR before LF removed when the
 * first line ends with CRLF; leading "From " lines (also ">From ") dropped;
 * with dot_ends a line "." ends the message; the last line gets an LF. */
struct sendmail_input {
	bool dot_ends;
	bool first_line;
	bool skip_from;
	bool strip_cr;
	bool in_header;
	bool ended;
	/* Copy of the header block (for -t checks), capped. */
	struct buf header;
	size_t header_cap;
};

void sendmail_input_init(struct sendmail_input *in, bool dot_ends, size_t header_cap);
void sendmail_input_deinit(struct sendmail_input *in);
/* Take one input line (with its LF when it had one).  Appends the output
 * bytes to out.  Returns false when the line ended the message (".").  */
bool sendmail_input_line(struct sendmail_input *in, const char *line, size_t len,
			 struct buf *out);

/* Recipients of a header block for -t: the addresses of To, Cc and Bcc.
 * Returns the count (addresses appended to *list, a NULL-terminated
 * str_list), or -1 when the header cannot be parsed. */
int sendmail_header_recipients(const char *hdr, size_t len, char ***list);

/* A command-line recipient argument may hold a list ("a, B <b@x>"): the
 * addresses it contains (NULL-terminated str_list), or the argument itself
 * when it does not parse. */
char **sendmail_rcpt_split(const char *arg);

/* ---- queue listing (mailq / facteur queue list) ---- */

/* Status mark after the queue id: '*' active, '!' hold, ' ' otherwise. */
char queue_list_mark(const char *queue_subdir);
/* The header line: "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------" */
void queue_list_header(struct buf *out);
/* One message: id+mark, size, arrival time, sender; then the deferral
 * reason in parentheses; then each pending recipient; then an empty line. */
void queue_list_entry(struct buf *out, const struct qfile_msg *m, const char *id, char mark);
/* "-- N Kbytes in M Requests." or "Mail queue is empty". */
void queue_list_footer(struct buf *out, uint64_t total_bytes, size_t count);

#endif
