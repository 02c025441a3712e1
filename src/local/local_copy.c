/* local_copy.c - the bytes a local delivery writes: the optional mbox
 * "From " line, the delivery headers and the message content.
 *
 * Called by the mbox, Maildir, file and command deliveries.  Shapes follow
 * Postfix's mail_copy(): "Return-Path: <SENDER>", "X-Original-To: ORIG"
 * (the recipient as the client gave it), "Delivered-To: ADDRESS"; for
 * mbox files a body line that starts with "From " gets one '>' (Postfix's
 * rule, read back by mutt, s-nail and Dovecot's mbox code as mboxo/mboxrd),
 * the message ends with a newline and an empty line separates it from the
 * next one.  Output is buffered and written with fs_write_full().
 */
#include "local/local.h"

#include "lib/buf.h"
#include "lib/fs.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define LOCAL_COPY_FLUSH 65536

struct local_copy_state {
	int fd;
	struct buf out;
	bool quote;
	bool at_bol;     /* next byte starts a line */
	size_t matched;  /* bytes of "From " matched at the start of a line */
	char last;       /* last byte written, '\n' when nothing yet */
	bool failed;
};

static const char local_from_prefix[] = "From ";

static void local_copy_flush(struct local_copy_state *st)
{
	if (st->failed || st->out.len == 0)
		return;
	if (fs_write_full(st->fd, st->out.data, st->out.len) < 0)
		st->failed = true;
	buf_reset(&st->out);
}

static void local_copy_put(struct local_copy_state *st, const void *data, size_t len)
{
	if (len == 0)
		return;
	buf_append(&st->out, data, len);
	st->last = ((const char *)data)[len - 1];
	if (st->out.len >= LOCAL_COPY_FLUSH)
		local_copy_flush(st);
}

/* Content bytes, with "From " quoting carried across chunk boundaries:
 * the bytes that match the start of "From " at a line start are held back
 * until the match is decided. */
static int local_copy_content_cb(void *ctx, const uint8_t *data, size_t len)
{
	struct local_copy_state *st = ctx;
	for (size_t i = 0; i < len; i++) {
		char c = (char)data[i];
		if (st->quote && st->at_bol) {
			if (c == local_from_prefix[st->matched]) {
				st->matched++;
				if (st->matched == sizeof(local_from_prefix) - 1) {
					local_copy_put(st, ">From ", 6);
					st->matched = 0;
					st->at_bol = false;
				}
				continue;
			}
			local_copy_put(st, local_from_prefix, st->matched);
			st->matched = 0;
			st->at_bol = false;
		}
		/* Copy the run up to and including the next newline at once. */
		const uint8_t *nl = memchr(data + i, '\n', len - i);
		size_t n = nl == NULL ? len - i : (size_t)(nl - (data + i)) + 1;
		local_copy_put(st, data + i, n);
		i += n - 1;
		st->at_bol = nl != NULL;
	}
	return st->failed ? -1 : 0;
}

void local_copy_from_line(struct buf *out, const char *sender, time_t now)
{
	struct tm tm;
	char date[64];
	if (localtime_r(&now, &tm) == NULL || asctime_r(&tm, date) == NULL) {
		date[0] = '\n';
		date[1] = '\0';
	}
	buf_printf(out, "From %s %s", sender[0] == '\0' ? "MAILER-DAEMON" : sender, date);
	if (out->len == 0 || out->data[out->len - 1] != '\n')
		buf_append_char(out, '\n');
}

/* Header values come from the envelope: a newline in them would start a
 * new header line (header injection), so control characters become '?'. */
static void local_copy_header(struct local_copy_state *st, const char *name, const char *pre,
			      const char *value, const char *post)
{
	struct buf line = BUF_INIT;
	buf_printf(&line, "%s: %s", name, pre);
	for (const char *p = value; *p != '\0'; p++)
		buf_append_char(&line, (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p);
	buf_printf(&line, "%s\n", post);
	local_copy_put(st, line.data, line.len);
	buf_deinit(&line);
}

int local_copy(int fd, const struct local_msg *m, const struct local_rcpt *r, unsigned flags,
	       time_t now, const char **error_r)
{
	struct local_copy_state st = { .fd = fd, .quote = (flags & LOCAL_COPY_QUOTE) != 0,
				       .at_bol = true, .matched = 0, .last = '\n' };
	buf_init(&st.out);
	if (flags & LOCAL_COPY_FROM) {
		struct buf from = BUF_INIT;
		local_copy_from_line(&from, m->sender, now);
		/* The sender is envelope input: no control characters. */
		for (size_t i = 0; i + 1 < from.len; i++)
			if (from.data[i] < 0x20)
				from.data[i] = '?';
		local_copy_put(&st, from.data, from.len);
		buf_deinit(&from);
	}
	local_copy_header(&st, "Return-Path", "<", m->sender, ">");
	if (r->orig_to != NULL && r->orig_to[0] != '\0')
		local_copy_header(&st, "X-Original-To", "", r->orig_to, "");
	local_copy_header(&st, "Delivered-To", "", r->address, "");

	const char *cerr = NULL;
	int ret = m->content_read(m->content_ctx, local_copy_content_cb, &st, &cerr);
	if (ret == 0 && st.matched > 0) {
		/* Content ended inside a possible "From " prefix. */
		local_copy_put(&st, local_from_prefix, st.matched);
		st.matched = 0;
	}
	if (ret == 0 && st.last != '\n')
		local_copy_put(&st, "\n", 1);
	if (ret == 0 && (flags & LOCAL_COPY_BLANK))
		local_copy_put(&st, "\n", 1);
	if (ret == 0)
		local_copy_flush(&st);
	buf_deinit(&st.out);
	if (st.failed) {
		*error_r = "write failed";
		return -1;
	}
	if (ret < 0) {
		*error_r = cerr != NULL ? cerr : "cannot read message content";
		errno = EIO;
		return -1;
	}
	return 0;
}
