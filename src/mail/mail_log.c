/* mail_log.c - the texts of mail event log lines, in Postfix's shapes.
 *
 * Callers: smtpd (connect, client=, reject, disconnect), pickup (uid=),
 * cleanup (message-id=), qmgr (queue active, removed), delivery agents
 * (to=...status=), bounce (sender non-delivery notification).  All shapes
 * are the ones Postfix logs (smtpd.c, log_adhoc.c, cleanup, qmgr), so log
 * analysers written for Postfix read ours.  Pure formatting: no I/O.
 */
#include "mail/mail_log.h"

#include <string.h>
#include <strings.h>

/* Append s with control characters replaced: a client-supplied HELO name
 * or address must not be able to start a fake log line. */
static void mail_log_text(struct buf *out, const char *s)
{
	if (s == NULL)
		s = "";
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		buf_append_char(out, c < 0x20 || c == 0x7f ? '?' : (char)c);
	}
}

static void mail_log_namaddr(struct buf *out, const char *name, const char *addr)
{
	mail_log_text(out, name != NULL ? name : "unknown");
	buf_append_char(out, '[');
	mail_log_text(out, addr != NULL ? addr : "unknown");
	buf_append_char(out, ']');
}

static void mail_log_addr(struct buf *out, const char *label, const char *addr)
{
	buf_append_str(out, label);
	buf_append_str(out, "=<");
	mail_log_text(out, addr);
	buf_append_char(out, '>');
}

void mail_log_connect(struct buf *out, const char *name, const char *addr)
{
	buf_append_str(out, "connect from ");
	mail_log_namaddr(out, name, addr);
}

void mail_log_disconnect(struct buf *out, const char *name, const char *addr,
			 const struct mail_log_cmd_count *counts, size_t n)
{
	unsigned long all_ok = 0, all_total = 0;
	buf_append_str(out, "disconnect from ");
	mail_log_namaddr(out, name, addr);
	for (size_t i = 0; i < n; i++) {
		if (counts[i].total == 0)
			continue;
		buf_append_char(out, ' ');
		mail_log_text(out, counts[i].name);
		buf_printf(out, "=%u", counts[i].ok);
		if (counts[i].ok < counts[i].total)
			buf_printf(out, "/%u", counts[i].total);
		all_ok += counts[i].ok;
		all_total += counts[i].total;
	}
	buf_printf(out, " commands=%lu", all_ok);
	if (all_ok < all_total)
		buf_printf(out, "/%lu", all_total);
}

void mail_log_client(struct buf *out, const char *queue_id, const char *name, const char *addr,
		     const char *sasl_method, const char *sasl_username)
{
	mail_log_text(out, queue_id);
	buf_append_str(out, ": client=");
	mail_log_namaddr(out, name, addr);
	if (sasl_method != NULL) {
		buf_append_str(out, ", sasl_method=");
		mail_log_text(out, sasl_method);
		buf_append_str(out, ", sasl_username=");
		mail_log_text(out, sasl_username);
	}
}

void mail_log_pickup(struct buf *out, const char *queue_id, unsigned long uid,
		     const char *sender)
{
	mail_log_text(out, queue_id);
	buf_printf(out, ": uid=%lu ", uid);
	mail_log_addr(out, "from", sender);
}

void mail_log_message_id(struct buf *out, const char *queue_id, const char *message_id)
{
	mail_log_text(out, queue_id);
	buf_append_str(out, ": ");
	mail_log_addr(out, "message-id", message_id);
}

void mail_log_queue_active(struct buf *out, const char *queue_id, const char *sender,
			   uint64_t size, unsigned nrcpt)
{
	mail_log_text(out, queue_id);
	buf_append_str(out, ": ");
	mail_log_addr(out, "from", sender);
	buf_printf(out, ", size=%llu, nrcpt=%u (queue active)", (unsigned long long)size, nrcpt);
}

/* Postfix format_tv() semantics with 2 significant digits and
 * delay_logging_resolution_limit = 2 (implemented independently):
 * the resolution is 0.01 s; values of 1-9 s are shown to 0.1 s and values
 * of 10 s or more to the second; below 1 s at most two significant digits;
 * rounding half up at the resolution; trailing zeros dropped. */
void mail_log_format_delay(struct buf *out, long sec, long usec)
{
	const long million = 1000000;
	long res = 10000;	/* 0.01 s */
	if (sec < 0 || usec < 0) {
		sec = 0;
		usec = 0;
	}
	if (usec >= million) {
		sec += usec / million;
		usec %= million;
	}
	if (sec >= 10)
		res = million;
	else if (sec >= 1)
		res = 100000;
	else
		while (res < million && usec >= res * 100)
			res *= 10;
	usec += res / 2;
	if (usec >= million) {
		sec++;
		usec -= million;
	}
	buf_printf(out, "%ld", sec);
	if (usec >= res) {
		buf_append_char(out, '.');
		for (long unit = million / 10, rem = usec; unit > 0 && rem >= res; unit /= 10) {
			buf_append_char(out, (char)('0' + rem / unit));
			rem %= unit;
		}
	}
}

static bool mail_log_stamped(const struct timeval *tv) { return tv->tv_sec > 0; }

static void mail_log_delta(struct buf *out, const struct timeval *later,
			   const struct timeval *earlier)
{
	long sec = (long)(later->tv_sec - earlier->tv_sec);
	long usec = (long)(later->tv_usec - earlier->tv_usec);
	while (usec < 0) {
		usec += 1000000;
		sec--;
	}
	if (sec < 0)	/* clock went backwards */
		sec = usec = 0;
	mail_log_format_delay(out, sec, usec);
}

void mail_log_delivery(struct buf *out, const struct mail_log_delivery *d)
{
	struct timeval now = d->delivered;
	if (!mail_log_stamped(&now))
		gettimeofday(&now, NULL);

	mail_log_text(out, d->queue_id);
	buf_append_str(out, ": ");
	mail_log_addr(out, "to", d->to);
	if (d->orig_to != NULL && d->orig_to[0] != '\0' &&
	    (d->to == NULL || strcasecmp(d->to, d->orig_to) != 0)) {
		buf_append_str(out, ", ");
		mail_log_addr(out, "orig_to", d->orig_to);
	}
	buf_append_str(out, ", relay=");
	mail_log_text(out, d->relay != NULL ? d->relay : "none");

	/* Same split as Postfix log_adhoc.c: a = before the active queue,
	 * b = in the active queue, c = connection set-up, d = transmission. */
	buf_append_str(out, ", delay=");
	mail_log_delta(out, &now, &d->arrival);
	buf_append_str(out, ", delays=");
	if (mail_log_stamped(&d->active)) {
		mail_log_delta(out, &d->active, &d->arrival);
		buf_append_char(out, '/');
		if (mail_log_stamped(&d->handoff)) {
			mail_log_delta(out, &d->handoff, &d->active);
			buf_append_char(out, '/');
			if (mail_log_stamped(&d->conn_setup)) {
				mail_log_delta(out, &d->conn_setup, &d->handoff);
				buf_append_char(out, '/');
				mail_log_delta(out, &now, &d->conn_setup);
			} else {
				buf_append_str(out, "0/");
				mail_log_delta(out, &now, &d->handoff);
			}
		} else {
			mail_log_delta(out, &now, &d->active);
			buf_append_str(out, "/0/0");
		}
	} else {
		mail_log_delta(out, &now, &d->arrival);
		buf_append_str(out, "/0/0/0");
	}
	buf_append_str(out, ", dsn=");
	mail_log_text(out, d->dsn);
	buf_append_str(out, ", status=");
	mail_log_text(out, d->status);
	buf_append_str(out, " (");
	mail_log_text(out, d->reason);
	buf_append_char(out, ')');
}

void mail_log_removed(struct buf *out, const char *queue_id)
{
	mail_log_text(out, queue_id);
	buf_append_str(out, ": removed");
}

void mail_log_notification(struct buf *out, const char *queue_id, const char *kind,
			   const char *new_queue_id)
{
	mail_log_text(out, queue_id);
	buf_append_str(out, ": sender ");
	mail_log_text(out, kind != NULL ? kind : "non-delivery");
	buf_append_str(out, " notification: ");
	mail_log_text(out, new_queue_id);
}

void mail_log_reject(struct buf *out, const struct mail_log_reject *r)
{
	mail_log_text(out, r->queue_id != NULL ? r->queue_id : "NOQUEUE");
	buf_append_str(out, ": ");
	mail_log_text(out, r->action != NULL ? r->action : "reject");
	buf_append_str(out, ": ");
	mail_log_text(out, r->stage);
	buf_append_str(out, " from ");
	mail_log_namaddr(out, r->client_name, r->client_addr);
	buf_append_str(out, ": ");
	mail_log_text(out, r->reply);
	buf_append_char(out, ';');
	if (r->sender != NULL) {
		buf_append_char(out, ' ');
		mail_log_addr(out, "from", r->sender);
	}
	if (r->recipient != NULL) {
		buf_append_char(out, ' ');
		mail_log_addr(out, "to", r->recipient);
	}
	if (r->protocol != NULL) {
		buf_append_str(out, " proto=");
		mail_log_text(out, r->protocol);
	}
	if (r->helo != NULL) {
		buf_append_char(out, ' ');
		mail_log_addr(out, "helo", r->helo);
	}
}
