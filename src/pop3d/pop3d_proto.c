/* pop3d_proto.c - POP3 command parsing and the RETR/TOP encoder (see
 * pop3d.h).  Pure functions: unit-tested by pop3d_proto_test.c. */
#include "pop3d/pop3d.h"

#include "lib/buf.h"
#include "lib/str.h"

#include <ctype.h>
#include <string.h>

static const struct {
	const char *name;
	enum pop3_cmd_id id;
} pop3_cmds[] = {
	{ "USER", POP3_CMD_USER }, { "PASS", POP3_CMD_PASS }, { "AUTH", POP3_CMD_AUTH },
	{ "CAPA", POP3_CMD_CAPA }, { "QUIT", POP3_CMD_QUIT }, { "STAT", POP3_CMD_STAT },
	{ "LIST", POP3_CMD_LIST }, { "RETR", POP3_CMD_RETR }, { "DELE", POP3_CMD_DELE },
	{ "NOOP", POP3_CMD_NOOP }, { "RSET", POP3_CMD_RSET }, { "TOP", POP3_CMD_TOP },
	{ "UIDL", POP3_CMD_UIDL }, { "APOP", POP3_CMD_APOP }, { "STLS", POP3_CMD_STLS },
};

int pop3_cmd_parse(const char *line, struct pop3_cmd *cmd_r, const char **error_r)
{
	memset(cmd_r, 0, sizeof(*cmd_r));
	for (const char *p = line; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			*error_r = "Invalid characters in command.";
			return -1;
		}
	}
	/* RFC 1939 section 3: keyword of 3 or 4 characters, then arguments
	 * separated by single spaces (we accept runs of spaces). */
	size_t n = strcspn(line, " ");
	if (n == 0) {
		*error_r = "Empty command.";
		return -1;
	}
	if (n < 3 || n > 4) {
		*error_r = "Unknown command.";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!isalpha((unsigned char)line[i])) {
			*error_r = "Unknown command.";
			return -1;
		}
		cmd_r->name[i] = (char)toupper((unsigned char)line[i]);
	}
	cmd_r->name[n] = '\0';
	cmd_r->id = POP3_CMD_UNKNOWN;
	for (size_t i = 0; i < sizeof(pop3_cmds) / sizeof(pop3_cmds[0]); i++) {
		if (strcmp(pop3_cmds[i].name, cmd_r->name) == 0)
			cmd_r->id = pop3_cmds[i].id;
	}
	const char *p = line + n;
	cmd_r->rest = *p == ' ' ? p + 1 : p;
	/* The password is the rest of the line, spaces included; user names
	 * may be longer than POP3_ARG_MAX (AUTH_USER_MAX): rest too. */
	if (cmd_r->id == POP3_CMD_PASS || cmd_r->id == POP3_CMD_USER)
		return 0;
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		size_t len = strcspn(p, " ");
		if (cmd_r->argc == 2) {
			*error_r = "Too many arguments.";
			return -1;
		}
		if (len > POP3_ARG_MAX && cmd_r->id != POP3_CMD_AUTH) {
			*error_r = "Argument too long.";
			return -1;
		}
		if (len > POP3_ARG_MAX) {
			/* AUTH's initial response (RFC 5034 section 4) may be
			 * longer: keep it only through rest. */
			len = strcspn(p, " ");
			cmd_r->argv[cmd_r->argc][0] = '\0';
		} else {
			memcpy(cmd_r->argv[cmd_r->argc], p, len);
			cmd_r->argv[cmd_r->argc][len] = '\0';
		}
		cmd_r->argc++;
		p += len;
	}
	return 0;
}

int pop3_msgnum_parse(const char *arg, size_t max, size_t *num_r)
{
	uint64_t v;
	if (max == 0 || !isdigit((unsigned char)arg[0]) || str_to_u64(arg, 1, max, &v) < 0)
		return -1;
	*num_r = (size_t)v;
	return 0;
}

void pop3_enc_init(struct pop3_enc *e, uint64_t body_lines)
{
	memset(e, 0, sizeof(*e));
	e->at_line_start = true;
	e->line_empty = true;
	e->in_headers = true;
	e->limited = body_lines != UINT64_MAX;
	e->body_lines = body_lines;
	/* TOP n 0 with an empty body section still sends the blank line. */
}

static void pop3_enc_put(struct pop3_enc *e, struct buf *out, const char *s, size_t n)
{
	buf_append(out, s, n);
	e->octets += n;
}

void pop3_enc_feed(struct pop3_enc *e, const void *data, size_t len, struct buf *out)
{
	const char *p = data;
	for (size_t i = 0; i < len && !e->done; i++) {
		char c = p[i];
		if (e->at_line_start) {
			/* A body line starts: TOP may have sent enough. */
			if (!e->in_headers && e->limited) {
				if (e->body_lines == 0) {
					e->done = true;
					break;
				}
				e->body_lines--;
			}
			e->at_line_start = false;
			e->line_empty = true;
			if (c == '.')
				pop3_enc_put(e, out, ".", 1); /* byte-stuffing */
		}
		if (c == '\n') {
			if (!e->last_cr)
				pop3_enc_put(e, out, "\r", 1);
			pop3_enc_put(e, out, "\n", 1);
			if (e->in_headers && e->line_empty)
				e->in_headers = false; /* the blank line ends the header */
			e->at_line_start = true;
			e->last_cr = false;
			continue;
		}
		if (c != '\r')
			e->line_empty = false;
		else if (e->last_cr)
			e->line_empty = false;
		pop3_enc_put(e, out, &c, 1);
		e->last_cr = c == '\r';
	}
}

void pop3_enc_finish(struct pop3_enc *e, struct buf *out)
{
	if (!e->at_line_start && !e->done) {
		if (!e->last_cr)
			pop3_enc_put(e, out, "\r", 1);
		pop3_enc_put(e, out, "\n", 1);
	}
	buf_append(out, ".\r\n", 3);
}
