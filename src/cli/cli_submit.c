/* cli_submit.c - pure helpers of the sendmail and queue commands (see
 * cli_submit.h): sendmail(1) option parsing, the message input filter,
 * recipient extraction, and the mailq listing format.  No I/O here, so
 * that everything is unit-tested (cli_submit_test.c).
 */
#include "cli/cli_submit.h"

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/header.h"
#include "mail/qfile.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *sendmail_basename(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash != NULL ? slash + 1 : path;
}

/* Options taking an argument (attached "-fuser" or the next word), as
 * Postfix's getopt string "A:B:C:F:GIL:N:R:UV:X:b:ce:f:h:imno:p:r:q:tvx". */
static bool sendmail_opt_has_arg(char c)
{
	return strchr("ABCFLNRVXbefhopqr", c) != NULL;
}

int sendmail_opts_parse(int argc, char **argv, struct sendmail_opts *o, struct buf *error)
{
	memset(o, 0, sizeof(*o));
	o->dot_ends = true;
	const char *name = argc > 0 && argv[0] != NULL ? sendmail_basename(argv[0]) : "sendmail";
	if (strcmp(name, "mailq") == 0)
		o->mode = SENDMAIL_MODE_MAILQ;
	else if (strcmp(name, "newaliases") == 0)
		o->mode = SENDMAIL_MODE_NEWALIAS;
	else
		o->mode = SENDMAIL_MODE_ENQUEUE;

	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break; /* first recipient: options end (getopt "+") */
		/* -q alone, -qR site, -q30m: only the plain form is a flush. */
		if (a[1] == 'q') {
			if (a[2] == '\0')
				o->mode = SENDMAIL_MODE_FLUSH;
			else if (a[2] >= '0' && a[2] <= '9')
				; /* queue run interval of a daemon: ignored */
			else {
				buf_printf(error, "-q%c: only -q (flush the whole queue) is supported", a[2]);
				return -1;
			}
			continue;
		}
		for (size_t j = 1; a[j] != '\0'; j++) {
			char c = a[j];
			const char *arg = NULL;
			if (sendmail_opt_has_arg(c)) {
				if (a[j + 1] != '\0')
					arg = a + j + 1;
				else if (i + 1 < argc)
					arg = argv[++i];
				else {
					buf_printf(error, "option requires an argument -- '%c'", c);
					return -1;
				}
			}
			switch (c) {
			case 't':
				o->extract = true;
				break;
			case 'i':
				o->dot_ends = false;
				break;
			case 'v':
				o->verbose = true;
				break;
			case 'm': case 'G': case 'U': case 'x': case 'c':
				break; /* accepted and ignored, as Postfix */
			case 'I':
				o->mode = SENDMAIL_MODE_NEWALIAS;
				break;
			case 'n':
				buf_printf(error, "-%c option not supported", c);
				return -1;
			case 'f':
			case 'r':
				o->sender = arg;
				break;
			case 'F':
				o->full_name = arg;
				break;
			case 'N':
				o->notify = arg;
				break;
			case 'R':
				o->ret = arg;
				break;
			case 'V':
				o->envid = arg;
				break;
			case 'C':
				o->config_dir = arg;
				break;
			case 'b':
				switch (arg[0]) {
				case 'm':
					o->mode = SENDMAIL_MODE_ENQUEUE;
					break;
				case 'p':
					o->mode = SENDMAIL_MODE_MAILQ;
					break;
				case 'i':
					o->mode = SENDMAIL_MODE_NEWALIAS;
					break;
				case 's':
					o->mode = SENDMAIL_MODE_SMTP;
					break;
				default:
					buf_printf(error, "unsupported: -%c%s", c, arg);
					return -1;
				}
				break;
			case 'o':
				/* -oi is the only sendmail -o option with an effect
				 * here; -oA, -om, -oem... are accepted. */
				if (arg[0] == 'i' && arg[1] == '\0')
					o->dot_ends = false;
				break;
			case 'A': case 'B': case 'L': case 'X': case 'e': case 'h': case 'p':
				break; /* options with an argument that we ignore */
			default:
				buf_printf(error, "usage: %s [options] [recipients]", name);
				return -1;
			}
			if (arg != NULL)
				break; /* the rest of this word was the argument */
		}
	}
	o->rcpts = argv + i;
	o->n_rcpts = (size_t)(argc - i);
	if (o->extract && o->mode != SENDMAIL_MODE_ENQUEUE) {
		buf_append_str(error, "-t can be used only in delivery mode");
		return -1;
	}
	if (o->n_rcpts > 0 && o->mode != SENDMAIL_MODE_ENQUEUE) {
		buf_append_str(error, o->mode == SENDMAIL_MODE_MAILQ ?
			       "display queue mode requires no recipient" :
			       o->mode == SENDMAIL_MODE_NEWALIAS ?
			       "alias initialization mode requires no recipient" :
			       o->mode == SENDMAIL_MODE_SMTP ?
			       "stand-alone mode requires no recipient" :
			       "flush queue mode requires no recipient");
		return -1;
	}
	return 0;
}

char *sendmail_sender_normalize(const char *sender)
{
	struct strv v = strv_trim(strv_from_cstr(sender));
	if (v.len >= 2 && v.ptr[0] == '<' && v.ptr[v.len - 1] == '>')
		v = strv_trim(strv_make(v.ptr + 1, v.len - 2));
	return strv_dup(v);
}

void sendmail_input_init(struct sendmail_input *in, bool dot_ends, size_t header_cap)
{
	memset(in, 0, sizeof(*in));
	in->dot_ends = dot_ends;
	in->first_line = true;
	in->skip_from = true;
	in->in_header = true;
	in->header_cap = header_cap;
	buf_init(&in->header);
}

void sendmail_input_deinit(struct sendmail_input *in)
{
	buf_deinit(&in->header);
}

bool sendmail_input_line(struct sendmail_input *in, const char *line, size_t len,
			 struct buf *out)
{
	if (in->ended)
		return false;
	bool has_lf = len > 0 && line[len - 1] == '\n';
	size_t text_len = has_lf ? len - 1 : len;
	/* Postfix decides on the first line: CRLF input is converted
	 * throughout, LF input is kept as it is (a lone CR stays). */
	if (in->first_line) {
		in->strip_cr = has_lf && text_len > 0 && line[text_len - 1] == '\r';
		in->first_line = false;
	}
	if (in->strip_cr && has_lf && text_len > 0 && line[text_len - 1] == '\r')
		text_len--;
	if (in->skip_from) {
		size_t k = 0;
		while (k < text_len && line[k] == '>')
			k++;
		if (text_len - k >= 5 && memcmp(line + k, "From ", 5) == 0)
			return true; /* mbox separator from an MUA: dropped */
		in->skip_from = false;
	}
	if (in->dot_ends && text_len == 1 && line[0] == '.') {
		in->ended = true;
		return false;
	}
	if (in->in_header) {
		if (text_len == 0) {
			in->in_header = false;
		} else if (in->header.len + text_len + 1 <= in->header_cap) {
			buf_append(&in->header, line, text_len);
			buf_append_char(&in->header, '\n');
		}
	}
	buf_append(out, line, text_len);
	buf_append_char(out, '\n');
	return true;
}

int sendmail_header_recipients(const char *hdr, size_t len, char ***list)
{
	struct header_block hb;
	const char *error = NULL;
	if (header_block_parse(hdr, len, SIZE_MAX / 2, HEADER_COUNT_LIMIT_DEFAULT, &hb, &error) < 0)
		return -1;
	size_t n = 0;
	for (char **p = *list; p != NULL && *p != NULL; p++)
		n++;
	int found = 0;
	for (size_t i = 0; i < hb.count; i++) {
		const struct header_field *f = &hb.fields[i];
		if (!header_name_is(f, "To") && !header_name_is(f, "Cc") && !header_name_is(f, "Bcc"))
			continue;
		char **addrs = NULL;
		if (header_extract_addresses(f->raw, &addrs) < 0)
			continue;
		for (char **a = addrs; *a != NULL; a++) {
			*list = xreallocarray(*list, n + 2, sizeof(**list));
			(*list)[n++] = xstrdup(*a);
			(*list)[n] = NULL;
			found++;
		}
		str_list_free(&addrs);
	}
	header_block_deinit(&hb);
	return found;
}

char **sendmail_rcpt_split(const char *arg)
{
	struct buf field = BUF_INIT;
	char **addrs = NULL;
	buf_printf(&field, "To: %s\n", arg);
	if (header_extract_addresses(buf_cstr(&field), &addrs) <= 0) {
		if (addrs != NULL)
			str_list_free(&addrs);
		addrs = xcalloc(2, sizeof(*addrs));
		addrs[0] = xstrdup(arg);
	}
	buf_deinit(&field);
	return addrs;
}

/* ---- mailq format (Postfix showq) ---- */

char queue_list_mark(const char *queue_subdir)
{
	if (strcmp(queue_subdir, "active") == 0)
		return '*';
	if (strcmp(queue_subdir, "hold") == 0)
		return '!';
	return ' ';
}

void queue_list_header(struct buf *out)
{
	buf_printf(out, "%-11s %8s %20s %s\n", "-Queue ID-", "--Size--", "----Arrival Time----",
		   "-Sender/Recipient-------");
}

void queue_list_entry(struct buf *out, const struct qfile_msg *m, const char *id, char mark)
{
	char when[64];
	struct tm tm;
	time_t t = (time_t)m->arrival_sec;

	/* Postfix showq: "%-10s%c%8ld %20.20s %s" (the header line is one
	 * column wider, as in Postfix); the recipients are indented to the
	 * sender's column, which moves right for ids longer than 10. */
	int id_width = (int)strlen(id) > 10 ? (int)strlen(id) : 10;
	/* asctime() without the year: "Mon Nov 23 06:39:52 " (20 columns). */
	if (localtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%a %b %e %H:%M:%S ", &tm) == 0)
		(void)snprintf(when, sizeof(when), "%s", "?");
	const char *sender = m->sender != NULL && m->sender[0] != '\0' ? m->sender : "MAILER-DAEMON";
	buf_printf(out, "%-10s%c%8" PRIu64 " %20.20s %s\n", id, mark, m->content_size, when, sender);
	if (m->defer_reason != NULL && m->defer_reason[0] != '\0')
		buf_printf(out, "(%s)\n", m->defer_reason);
	for (size_t i = 0; i < m->n_rcpts; i++) {
		if (m->rcpts[i].status != QRCPT_PENDING)
			continue;
		buf_printf(out, "%*s%s\n", id_width + 31, "", m->rcpts[i].address);
	}
	buf_append_char(out, '\n');
}

void queue_list_footer(struct buf *out, uint64_t total_bytes, size_t count)
{
	if (count == 0) {
		buf_append_str(out, "Mail queue is empty\n");
		return;
	}
	buf_printf(out, "-- %" PRIu64 " Kbytes in %zu Request%s.\n", total_bytes / 1024, count,
		   count == 1 ? "" : "s");
}
