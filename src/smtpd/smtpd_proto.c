/* smtpd_proto.c - the pure protocol pieces of the SMTP server: the command
 * table with its state rules, the command line reader and splitter, and the
 * DATA content decoder (dot-unstuffing, end of data).
 *
 * Called by smtpd_session.c and smtpd_data.c; no configuration, no I/O
 * besides reading an evbuffer, so that the unit tests and the fuzzer drive
 * them directly.  Invariants: a command line never exceeds its limit in
 * memory; the DATA decoder keeps at most one pending dot and CR between
 * calls, so input may be split anywhere.
 */
#include "smtpd/smtpd_int.h"

#include <event2/buffer.h>
#include <string.h>

#include "lib/str.h"

const char *smtpd_state_name(enum smtpd_state st)
{
	switch (st) {
	case SMTPD_ST_CONNECT: return "CONNECT";
	case SMTPD_ST_GREETED: return "GREETED";
	case SMTPD_ST_HELO: return "HELO";
	case SMTPD_ST_MAIL: return "MAIL";
	case SMTPD_ST_RCPT: return "RCPT";
	case SMTPD_ST_DATA: return "DATA";
	case SMTPD_ST_CLOSING: return "CLOSING";
	}
	return "?";
}

#define ALL SMTPD_ST_COMMANDS

/* The command table (order = Postfix's order in the disconnect line).
 * RFC 2920 3.1: EHLO, DATA, VRFY, EXPN, TURN, QUIT and NOOP end a group;
 * Postfix also flushes after RSET and HELO. */
const struct smtpd_cmd smtpd_cmds[] = {
	{ "HELO", "helo", SMTPD_CMD_HELO, ALL, SMTPD_CMDF_ENDS_GROUP },
	{ "EHLO", "ehlo", SMTPD_CMD_EHLO, ALL, SMTPD_CMDF_ENDS_GROUP },
	/* RFC 3207 4: the last command of a group; not in a transaction. */
	{ "STARTTLS", "starttls", SMTPD_CMD_STARTTLS, SMTPD_ST_GREETED | SMTPD_ST_HELO,
	  SMTPD_CMDF_ENDS_GROUP | SMTPD_CMDF_HELO_ALWAYS },
	{ "MAIL", "mail", SMTPD_CMD_MAIL, SMTPD_ST_GREETED | SMTPD_ST_HELO,
	  SMTPD_CMDF_HELO_REQUIRED },
	{ "RCPT", "rcpt", SMTPD_CMD_RCPT, SMTPD_ST_MAIL | SMTPD_ST_RCPT, SMTPD_CMDF_HELO_REQUIRED },
	{ "DATA", "data", SMTPD_CMD_DATA, SMTPD_ST_RCPT,
	  SMTPD_CMDF_ENDS_GROUP | SMTPD_CMDF_HELO_REQUIRED },
	{ "RSET", "rset", SMTPD_CMD_RSET, ALL, SMTPD_CMDF_ENDS_GROUP },
	{ "NOOP", "noop", SMTPD_CMD_NOOP, ALL, SMTPD_CMDF_ENDS_GROUP },
	{ "VRFY", "vrfy", SMTPD_CMD_VRFY, ALL, SMTPD_CMDF_ENDS_GROUP | SMTPD_CMDF_HELO_REQUIRED },
	{ "ETRN", "etrn", SMTPD_CMD_ETRN, SMTPD_ST_HELO,
	  SMTPD_CMDF_ENDS_GROUP | SMTPD_CMDF_HELO_ALWAYS },
	{ "HELP", "help", SMTPD_CMD_HELP, ALL, SMTPD_CMDF_ENDS_GROUP },
	{ "QUIT", "quit", SMTPD_CMD_QUIT, ALL, SMTPD_CMDF_ENDS_GROUP },
};
const size_t smtpd_cmds_count = sizeof(smtpd_cmds) / sizeof(smtpd_cmds[0]);

const struct smtpd_cmd *smtpd_cmd_find(struct strv verb)
{
	for (size_t i = 0; i < smtpd_cmds_count; i++)
		if (strv_case_eq(verb, smtpd_cmds[i].verb))
			return &smtpd_cmds[i];
	return NULL;
}

static void reply_set(struct smtpd_reply_text *r, unsigned code, const char *status,
		      const char *text)
{
	r->code = code;
	r->status = status;
	r->text = text;
}

/* Texts of Postfix's smtpd.c for each sequence error. */
bool smtpd_cmd_state_refusal(const struct smtpd_cmd *cmd, enum smtpd_state st,
			     bool helo_required, struct smtpd_reply_text *r)
{
	bool before_helo = st == SMTPD_ST_GREETED;

	if (before_helo && ((cmd->flags & SMTPD_CMDF_HELO_ALWAYS) ||
			    (helo_required && (cmd->flags & SMTPD_CMDF_HELO_REQUIRED)))) {
		reply_set(r, 503, "5.5.1", "Error: send HELO/EHLO first");
		return true;
	}
	if (cmd->states & st)
		return false;
	switch (cmd->id) {
	case SMTPD_CMD_MAIL:
		reply_set(r, 503, "5.5.1", "Error: nested MAIL command");
		break;
	case SMTPD_CMD_RCPT:
		reply_set(r, 503, "5.5.1", "Error: need MAIL command");
		break;
	case SMTPD_CMD_DATA:
		if (st == SMTPD_ST_MAIL)
			reply_set(r, 554, "5.5.1", "Error: no valid recipients");
		else
			reply_set(r, 503, "5.5.1", "Error: need RCPT command");
		break;
	case SMTPD_CMD_ETRN:
		reply_set(r, 503, "5.5.1", "Error: MAIL transaction in progress");
		break;
	default:
		reply_set(r, 503, "5.5.1", "Error: bad sequence of commands");
		break;
	}
	return true;
}

void smtpd_cmd_split(struct strv line, struct strv *verb_r, struct strv *arg_r)
{
	size_t i = 0;

	/* Leading white space is tolerated, as Postfix's smtpd_chat does. */
	while (i < line.len && (line.ptr[i] == ' ' || line.ptr[i] == '\t'))
		i++;
	size_t vstart = i;
	while (i < line.len && line.ptr[i] != ' ' && line.ptr[i] != '\t')
		i++;
	*verb_r = strv_make(line.ptr + vstart, i - vstart);
	while (i < line.len && (line.ptr[i] == ' ' || line.ptr[i] == '\t'))
		i++;
	size_t end = line.len;
	while (end > i && (line.ptr[end - 1] == ' ' || line.ptr[end - 1] == '\t'))
		end--;
	*arg_r = strv_make(line.ptr + i, end - i);
}

enum smtpd_line_result smtpd_line_read(struct evbuffer *in, size_t max, bool *draining,
				       struct buf *line_r)
{
	struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);

	if (p.pos < 0) {
		size_t avail = evbuffer_get_length(in);
		/* max + 1: a CR may still come before the LF. */
		if (*draining || avail > max + 1) {
			*draining = true;
			evbuffer_drain(in, avail);
		}
		return SMTPD_LINE_MORE;
	}
	size_t n = (size_t)p.pos; /* bytes before the LF */
	if (*draining) {
		*draining = false;
		evbuffer_drain(in, n + 1);
		return SMTPD_LINE_TOO_LONG;
	}
	size_t text = n;
	if (text > 0) {
		char last;
		struct evbuffer_ptr q;
		evbuffer_ptr_set(in, &q, n - 1, EVBUFFER_PTR_SET);
		if (evbuffer_copyout_from(in, &q, &last, 1) == 1 && last == '\r')
			text--;
	}
	if (text > max) {
		evbuffer_drain(in, n + 1);
		return SMTPD_LINE_TOO_LONG;
	}
	buf_reset(line_r);
	buf_reserve(line_r, n + 1);
	if (evbuffer_remove(in, line_r->data, n + 1) != (int)(n + 1))
		return SMTPD_LINE_MORE; /* cannot happen: n + 1 bytes are there */
	line_r->len = text;
	line_r->data[text] = '\0';
	return SMTPD_LINE_OK;
}

void smtpd_dot_init(struct smtpd_dot *d)
{
	d->state = SMTPD_DOT_BOL;
	/* The DATA command line ended the previous line. */
	d->bol_after_crlf = true;
}

size_t smtpd_dot_decode(struct smtpd_dot *d, const uint8_t *in, size_t len,
			struct buf *out, bool *done_r)
{
	size_t i = 0;

	*done_r = false;
	buf_reserve(out, len + 2);
	while (i < len) {
		uint8_t c = in[i];

		switch (d->state) {
		case SMTPD_DOT_BOL:
			if (c == '.') {
				d->state = SMTPD_DOT_DOT;
				i++;
				continue;
			}
			d->state = SMTPD_DOT_MID;
			continue; /* same byte, inside the line */
		case SMTPD_DOT_MID: {
			/* Fast path: copy up to the next CR or LF. */
			size_t j = i;
			while (j < len && in[j] != '\r' && in[j] != '\n')
				j++;
			buf_append(out, in + i, j - i);
			i = j;
			if (i == len)
				break;
			if (in[i] == '\r') {
				d->state = SMTPD_DOT_CR;
			} else {
				buf_append_char(out, '\n'); /* bare LF */
				d->state = SMTPD_DOT_BOL;
				d->bol_after_crlf = false;
			}
			i++;
			continue;
		}
		case SMTPD_DOT_CR:
			if (c == '\n') {
				buf_append_char(out, '\n');
				d->state = SMTPD_DOT_BOL;
				d->bol_after_crlf = true;
				i++;
				continue;
			}
			/* A CR not followed by LF is content. */
			buf_append_char(out, '\r');
			d->state = SMTPD_DOT_MID;
			continue;
		case SMTPD_DOT_DOT:
			if (c == '\r') {
				d->state = SMTPD_DOT_DOT_CR;
				i++;
				continue;
			}
			if (c == '\n') {
				/* ".<LF>": not an end of data (smuggling
				 * defence); kept as a "." line. */
				buf_append(out, ".\n", 2);
				d->state = SMTPD_DOT_BOL;
				d->bol_after_crlf = false;
				i++;
				continue;
			}
			/* Dot-stuffing: drop the leading dot. */
			d->state = SMTPD_DOT_MID;
			continue;
		case SMTPD_DOT_DOT_CR:
			if (c == '\n') {
				if (d->bol_after_crlf) {
					*done_r = true;
					return i + 1;
				}
				/* "<LF>.<CR><LF>": not an end of data. */
				buf_append(out, ".\n", 2);
				d->state = SMTPD_DOT_BOL;
				d->bol_after_crlf = true;
				i++;
				continue;
			}
			/* ".<CR>x": the dot was stuffing; the CR is content
			 * unless an LF follows, which is handled as usual. */
			d->state = SMTPD_DOT_CR;
			continue;
		}
	}
	return i;
}
