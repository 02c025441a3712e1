/* dsn.c - compose delivery status notifications (RFC 3464 delivery-status
 * inside an RFC 6522 (ex RFC 3462) multipart/report), in the shape and
 * words of Postfix's bounce(8) reports, so that users and the tools that
 * parse bounces see what they know.  See dsn.h.
 */
#include "mail/dsn.h"
#include "lib/buf.h"
#include "lib/mem.h"
#include "mail/cleanup.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *dsn_report_subject(enum dsn_report_type type)
{
	switch (type) {
	case DSN_REPORT_DELAY: return "Delayed Mail (still being retried)";
	case DSN_REPORT_SUCCESS: return "Successful Mail Delivery Report";
	case DSN_REPORT_POSTMASTER: return "Postmaster Copy: Undelivered Mail";
	case DSN_REPORT_FAILURE:
	default: return "Undelivered Mail Returned to Sender";
	}
}

const char *dsn_action_name(enum dsn_action a)
{
	switch (a) {
	case DSN_ACTION_DELAYED: return "delayed";
	case DSN_ACTION_DELIVERED: return "delivered";
	case DSN_ACTION_RELAYED: return "relayed";
	case DSN_ACTION_EXPANDED: return "expanded";
	case DSN_ACTION_FAILED:
	default: return "failed";
	}
}

/* Header and report text are 7-bit and free of control characters: what
 * comes from a remote server or an envelope cannot add a line. */
static void append_clean(struct buf *out, const char *s)
{
	if (s == NULL)
		return;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '\t')
			buf_append_char(out, ' ');
		else
			buf_append_char(out, (*p < 0x20 || *p >= 0x7f) ? '?' : (char)*p);
	}
}

void dsn_fold(struct buf *out, const char *first, const char *text, size_t width)
{
	struct buf line = BUF_INIT;
	append_clean(&line, first);
	append_clean(&line, text);
	const char *s = buf_cstr(&line);
	size_t len = line.len, pos = 0, indent = 0;

	if (width <= DSN_INDENT + 1)
		width = DSN_INDENT + 2;
	for (;;) {
		size_t avail = width - indent;
		if (len - pos <= avail) {
			buf_append(out, s + pos, len - pos);
			buf_append_char(out, '\n');
			break;
		}
		/* The last space that keeps this line within width; failing
		 * that (one very long word), the first space after it. */
		size_t cut = 0;
		for (size_t i = pos + avail; i > pos; i--) {
			if (s[i] == ' ') {
				cut = i;
				break;
			}
		}
		if (cut == 0) {
			for (size_t i = pos + avail; i < len; i++) {
				if (s[i] == ' ') {
					cut = i;
					break;
				}
			}
			if (cut == 0) {
				buf_append(out, s + pos, len - pos);
				buf_append_char(out, '\n');
				break;
			}
		}
		size_t end = cut;
		while (end > pos && s[end - 1] == ' ')
			end--;
		buf_append(out, s + pos, end - pos);
		buf_append_char(out, '\n');
		pos = cut;
		while (pos < len && s[pos] == ' ')
			pos++;
		if (pos >= len)
			break;
		for (size_t i = 0; i < DSN_INDENT; i++)
			buf_append_char(out, ' ');
		indent = DSN_INDENT;
	}
	buf_deinit(&line);
}

bool dsn_remote_parse(const char *text, char **host_r, char **reply_r)
{
	static const char said[] = " said: ";
	static const char inreply[] = " (in reply to ";

	if (text == NULL || strncmp(text, "host ", 5) != 0)
		return false;
	const char *name = text + 5;
	size_t nlen = strcspn(name, "[ ");
	const char *s = strstr(name, said);
	if (nlen == 0 || s == NULL)
		return false;
	const char *reply = s + sizeof(said) - 1;
	size_t rlen = strlen(reply);
	const char *ir = NULL;
	for (const char *p = strstr(reply, inreply); p != NULL; p = strstr(p + 1, inreply))
		ir = p;
	if (ir != NULL && rlen > 0 && reply[rlen - 1] == ')')
		rlen = (size_t)(ir - reply);
	if (rlen == 0)
		return false;
	*host_r = xstrndup(name, nlen);
	*reply_r = xstrndup(reply, rlen);
	return true;
}

/* Case-insensitive search for a keyword in a comma list. */
static bool notify_has(const char *notify, const char *word)
{
	size_t wl = strlen(word);
	const char *p = notify;
	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		if (n == wl && strncasecmp(p, word, wl) == 0)
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

bool dsn_notify_wants(const char *notify, enum dsn_report_type type)
{
	if (type == DSN_REPORT_POSTMASTER) /* not the sender's choice */
		return true;
	if (notify == NULL || *notify == '\0') /* RFC 3461 4.1: MTA's choice */
		return type == DSN_REPORT_FAILURE || type == DSN_REPORT_DELAY;
	switch (type) {
	case DSN_REPORT_FAILURE: return notify_has(notify, "FAILURE");
	case DSN_REPORT_DELAY: return notify_has(notify, "DELAY");
	case DSN_REPORT_SUCCESS: return notify_has(notify, "SUCCESS");
	case DSN_REPORT_POSTMASTER:
	default: return true;
	}
}

void dsn_duration_format(struct buf *out, long seconds)
{
	static const struct {
		long size;
		const char *name;
	} units[] = { { 7L * 86400, "week" }, { 86400, "day" }, { 3600, "hour" }, { 60, "minute" } };
	if (seconds < 0)
		seconds = 0;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (seconds >= units[i].size && seconds % units[i].size == 0) {
			buf_printf(out, "%ld %s(s)", seconds / units[i].size, units[i].name);
			return;
		}
	}
	buf_printf(out, "%ld second(s)", seconds);
}

/* RFC 3463 status-code: class "." subject "." detail, 1-3 digits each. */
static bool status_valid(const char *s)
{
	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return false;
	const char *p = s + 2;
	for (int part = 0; part < 2; part++) {
		size_t n = strspn(p, "0123456789");
		if (n < 1 || n > 3)
			return false;
		p += n;
		if (part == 0) {
			if (*p != '.')
				return false;
			p++;
		}
	}
	return *p == '\0';
}

static const char *rcpt_status(const struct dsn_rcpt *rc)
{
	if (status_valid(rc->status))
		return rc->status;
	switch (rc->action) {
	case DSN_ACTION_FAILED: return "5.0.0";
	case DSN_ACTION_DELAYED: return "4.0.0";
	default: return "2.0.0";
	}
}

static void append_date(struct buf *out, int64_t t)
{
	cleanup_date_format(out, (time_t)t);
}

static const char notice_failure[] =
	"I'm sorry to have to inform you that your message could not\n"
	"be delivered to one or more recipients. It's attached below.\n"
	"\n"
	"For further assistance, please send mail to postmaster.\n"
	"\n"
	"If you do so, please include this problem report. You can\n"
	"delete your own text from the attached returned message.\n";

static const char notice_delay_banner[] =
	"####################################################################\n"
	"# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
	"####################################################################\n";

static const char notice_delay_tail[] =
	"For further assistance, please send mail to postmaster.\n"
	"\n"
	"If you do so, please include this problem report. You can\n"
	"delete your own text from the attached returned message.\n";

static const char notice_success[] =
	"Your message was successfully delivered to the destination(s)\n"
	"listed below. If the message was delivered to mailbox you will\n"
	"receive no further notifications. Otherwise you may still receive\n"
	"notifications of mail delivery errors from other systems.\n";

static const char signature[] = "                   The mail system\n";

static void append_notification(struct buf *out, const struct dsn_report *r)
{
	buf_append_str(out, "This is the mail system at host ");
	append_clean(out, r->myhostname);
	buf_append_str(out, ".\n\n");
	switch (r->type) {
	case DSN_REPORT_DELAY:
		buf_append_str(out, notice_delay_banner);
		buf_append_str(out, "\nYour message could not be delivered for more than ");
		dsn_duration_format(out, r->delay_warning_time);
		buf_append_str(out, ".\nIt will be retried until it is ");
		dsn_duration_format(out, r->maximal_queue_lifetime);
		buf_append_str(out, " old.\n\n");
		buf_append_str(out, notice_delay_tail);
		break;
	case DSN_REPORT_SUCCESS:
		buf_append_str(out, notice_success);
		break;
	case DSN_REPORT_FAILURE:
	case DSN_REPORT_POSTMASTER:
	default:
		buf_append_str(out, notice_failure);
		break;
	}
	buf_append_str(out, "\n");
	buf_append_str(out, signature);
	for (size_t i = 0; i < r->n_rcpts; i++) {
		const struct dsn_rcpt *rc = &r->rcpts[i];
		struct buf first = BUF_INIT;
		buf_append_char(&first, '<');
		append_clean(&first, rc->address);
		buf_append_char(&first, '>');
		if (rc->orig_to != NULL && *rc->orig_to != '\0' &&
		    strcmp(rc->orig_to, rc->address) != 0) {
			buf_append_str(&first, " (expanded from <");
			append_clean(&first, rc->orig_to);
			buf_append_str(&first, ">)");
		}
		buf_append_str(&first, ": ");
		buf_append_str(out, "\n");
		const char *text = rc->text;
		if (text == NULL || *text == '\0')
			text = rc->action == DSN_ACTION_FAILED ? "delivery failed"
				: rc->action == DSN_ACTION_DELAYED ? "delivery temporarily deferred"
								   : "delivery successful";
		dsn_fold(out, buf_cstr(&first), text, DSN_LINE_WIDTH);
		buf_deinit(&first);
	}
}

static void append_original_recipient(struct buf *out, const struct dsn_rcpt *rc)
{
	if (rc->orcpt != NULL && *rc->orcpt != '\0') {
		const char *semi = strchr(rc->orcpt, ';');
		if (semi != NULL && semi != rc->orcpt) {
			struct buf v = BUF_INIT;
			for (const char *p = rc->orcpt; p < semi; p++)
				buf_append_char(&v, (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a')
									    : *p);
			buf_append_str(&v, "; ");
			const char *a = semi + 1;
			while (*a == ' ')
				a++;
			append_clean(&v, a);
			dsn_fold(out, "Original-Recipient: ", buf_cstr(&v), DSN_LINE_WIDTH);
			buf_deinit(&v);
			return;
		}
	}
	if (rc->orig_to != NULL && *rc->orig_to != '\0' && strcmp(rc->orig_to, rc->address) != 0)
		dsn_fold(out, "Original-Recipient: rfc822; ", rc->orig_to, DSN_LINE_WIDTH);
}

static void append_delivery_status(struct buf *out, const struct dsn_report *r)
{
	/* RFC 3464 2.2: per-message fields, Original-Envelope-Id first. */
	if (r->envid != NULL && *r->envid != '\0')
		dsn_fold(out, "Original-Envelope-Id: ", r->envid, DSN_LINE_WIDTH);
	dsn_fold(out, "Reporting-MTA: dns; ", r->myhostname, DSN_LINE_WIDTH);
	dsn_fold(out, "X-Facteur-Queue-ID: ", r->queue_id, DSN_LINE_WIDTH);
	dsn_fold(out, "X-Facteur-Sender: rfc822; ", r->sender, DSN_LINE_WIDTH);
	if (r->arrival > 0) {
		buf_append_str(out, "Arrival-Date: ");
		append_date(out, r->arrival);
		buf_append_char(out, '\n');
	}
	/* RFC 3464 2.3: one group per recipient, each after a blank line. */
	for (size_t i = 0; i < r->n_rcpts; i++) {
		const struct dsn_rcpt *rc = &r->rcpts[i];
		buf_append_char(out, '\n');
		dsn_fold(out, "Final-Recipient: rfc822; ", rc->address, DSN_LINE_WIDTH);
		append_original_recipient(out, rc);
		buf_printf(out, "Action: %s\n", dsn_action_name(rc->action));
		buf_printf(out, "Status: %s\n", rcpt_status(rc));
		char *host = NULL, *reply = NULL;
		if (dsn_remote_parse(rc->text, &host, &reply)) {
			dsn_fold(out, "Remote-MTA: dns; ", host, DSN_LINE_WIDTH);
			dsn_fold(out, "Diagnostic-Code: smtp; ", reply, DSN_LINE_WIDTH);
		} else if (rc->text != NULL && *rc->text != '\0') {
			dsn_fold(out, "Diagnostic-Code: X-Facteur; ", rc->text, DSN_LINE_WIDTH);
		}
		free(host);
		free(reply);
		if (rc->action == DSN_ACTION_DELAYED && r->arrival > 0) {
			buf_append_str(out, "Will-Retry-Until: ");
			append_date(out, r->arrival + r->maximal_queue_lifetime);
			buf_append_char(out, '\n');
		}
	}
}

/* How much of the original goes into the report: the header block only
 * (up to the empty line), or everything, cut at a line boundary after
 * limit bytes. */
static size_t original_length(const char *c, size_t len, bool headers_only, size_t limit)
{
	if (c == NULL)
		return 0;
	if (headers_only) {
		if (len > 0 && c[0] == '\n')
			return 0;
		for (size_t i = 0; i + 1 < len; i++) {
			if (c[i] == '\n' && c[i + 1] == '\n')
				return i + 1;
		}
	}
	if (len <= limit)
		return len;
	if (limit > 0 && c[limit - 1] == '\n')
		return limit;
	const char *nl = memchr(c + limit, '\n', len - limit);
	/* The line that crosses the limit is kept whole when it ends soon
	 * (a 998-character line at most, RFC 5322 2.1.1). */
	if (nl != NULL && (size_t)(nl - (c + limit)) < 1000)
		return (size_t)(nl - c) + 1;
	const char *prev = limit > 0 ? memrchr(c, '\n', limit) : NULL;
	return prev != NULL ? (size_t)(prev - c) + 1 : limit;
}

int dsn_report_build(struct buf *out, const struct dsn_report *r, const char **error_r)
{
	if (r->n_rcpts == 0 || r->rcpts == NULL) {
		*error_r = "no recipient to report";
		return -1;
	}
	if (r->myhostname == NULL || *r->myhostname == '\0' || r->queue_id == NULL ||
	    r->report_id == NULL || r->to == NULL) {
		*error_r = "missing hostname, queue id or report recipient";
		return -1;
	}
	const char *origin = r->myorigin != NULL && *r->myorigin != '\0' ? r->myorigin
									: r->myhostname;
	bool headers_only = r->type != DSN_REPORT_FAILURE || r->is_ret_hdrs;
	size_t limit = r->size_limit != 0 ? r->size_limit : DSN_SIZE_LIMIT;
	size_t olen = original_length(r->content, r->content_len, headers_only, limit);
	bool is_8bit = false;
	for (size_t i = 0; i < olen; i++) {
		if ((unsigned char)r->content[i] >= 0x80) {
			is_8bit = true;
			break;
		}
	}

	/* Postfix's boundary: original queue id, time, host. */
	struct buf boundary = BUF_INIT;
	append_clean(&boundary, r->queue_id);
	buf_printf(&boundary, ".%lld/", (long long)r->now);
	append_clean(&boundary, r->myhostname);

	buf_append_str(out, "Date: ");
	append_date(out, r->now);
	buf_append_char(out, '\n');
	buf_append_str(out, "From: MAILER-DAEMON@");
	append_clean(out, origin);
	buf_append_str(out, " (Mail Delivery System)\n");
	buf_printf(out, "Subject: %s\n", dsn_report_subject(r->type));
	dsn_fold(out, "To: ", r->to, DSN_LINE_WIDTH);
	/* RFC 3834 5: automatic responses say so, to stop reply loops. */
	buf_append_str(out, "Auto-Submitted: auto-replied\n");
	{
		char stamp[32];
		time_t t = (time_t)r->now;
		struct tm tm;
		if (gmtime_r(&t, &tm) == NULL || strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S",
							   &tm) == 0)
			stamp[0] = '\0';
		buf_printf(out, "Message-Id: <%s.", stamp);
		append_clean(out, r->report_id);
		buf_append_char(out, '@');
		append_clean(out, r->myhostname);
		buf_append_str(out, ">\n");
	}
	buf_append_str(out, "MIME-Version: 1.0\n");
	buf_printf(out,
		   "Content-Type: multipart/report; report-type=delivery-status;\n"
		   "\tboundary=\"%s\"\n",
		   buf_cstr(&boundary));
	buf_printf(out, "Content-Transfer-Encoding: %s\n", is_8bit ? "8bit" : "7bit");
	buf_append_str(out, "\nThis is a MIME-encapsulated message.\n\n");

	/* Part 1: the explanation for people. */
	buf_printf(out, "--%s\n", buf_cstr(&boundary));
	buf_append_str(out, "Content-Description: Notification\n"
			    "Content-Type: text/plain; charset=us-ascii\n\n");
	append_notification(out, r);

	/* Part 2: the same for programs (RFC 3464). */
	buf_printf(out, "\n--%s\n", buf_cstr(&boundary));
	buf_append_str(out, "Content-Description: Delivery report\n"
			    "Content-Type: message/delivery-status\n\n");
	append_delivery_status(out, r);

	/* Part 3: the original, or its header block. */
	buf_printf(out, "\n--%s\n", buf_cstr(&boundary));
	const char *what = r->type == DSN_REPORT_FAILURE || r->type == DSN_REPORT_POSTMASTER
				   ? (headers_only ? "Undelivered Message Headers" : "Undelivered Message")
			   : r->type == DSN_REPORT_DELAY ? "Delayed Message Headers"
							 : "Message Headers";
	buf_printf(out, "Content-Description: %s\n", what);
	buf_printf(out, "Content-Type: %s\n", headers_only ? "text/rfc822-headers" : "message/rfc822");
	if (is_8bit)
		buf_append_str(out, "Content-Transfer-Encoding: 8bit\n");
	buf_append_char(out, '\n');
	if (olen > 0) {
		buf_append(out, r->content, olen);
		if (r->content[olen - 1] != '\n')
			buf_append_char(out, '\n');
	} else if (r->content == NULL) {
		buf_append_str(out, "\t--- Undelivered message unavailable ---\n");
	}
	buf_printf(out, "\n--%s--\n", buf_cstr(&boundary));
	buf_deinit(&boundary);
	return 0;
}
