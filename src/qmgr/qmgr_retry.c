/* qmgr_retry.c - when to try a deferred message again, and when to give up.
 *
 * Postfix moves a deferred message's next attempt by its time in the queue,
 * clamped to [minimal_backoff_time, maximal_backoff_time]; when attempts
 * happen on time that doubles the interval after each failure.  We compute
 * the same doubling from the attempt count kept in the queue file (W
 * record), so that a flush, a stopped system or a crowded window does not
 * distort the schedule: attempt 1 waits the minimum, attempt 2 twice that,
 * ..., never more than the maximum.
 */
#include "qmgr/qmgr.h"

#include <limits.h>

long qmgr_retry_backoff(unsigned attempts, long minimal, long maximal)
{
	if (minimal < 1)
		minimal = 1;
	if (maximal < minimal)
		maximal = minimal;
	long delay = minimal;
	for (unsigned i = 1; i < attempts && delay < maximal; i++) {
		if (delay > LONG_MAX / 2) {
			delay = maximal;
			break;
		}
		delay *= 2;
	}
	return delay > maximal ? maximal : delay;
}

/* postconf(5): maximal_queue_lifetime "Consider a message as undeliverable,
 * when delivery fails with a temporary error, and the time in the queue has
 * reached the maximal_queue_lifetime limit"; bounce_queue_lifetime is the
 * same for MAILER-DAEMON (null sender) messages.  0 means a single attempt. */
bool qmgr_retry_expired(const struct qmgr_settings *s, const char *sender, int64_t arrival_sec,
			int64_t now)
{
	long lifetime = (sender == NULL || *sender == '\0') ? s->bounce_queue_lifetime
							      : s->maximal_queue_lifetime;
	return now - arrival_sec >= (int64_t)lifetime;
}

/* postconf(5): delay_warning_time "The time after which the sender
 * receives a copy of the message headers of mail that is still queued";
 * 0 disables it.  Once per message (the Y "delay" record), never for the
 * null sender (Postfix sends no report to MAILER-DAEMON). */
bool qmgr_retry_delay_warning_due(const struct qmgr_settings *s, const char *sender,
				  int64_t arrival_sec, bool already_warned, int64_t now)
{
	if (s->delay_warning_time <= 0 || already_warned || sender == NULL || *sender == '\0')
		return false;
	return now - arrival_sec >= (int64_t)s->delay_warning_time;
}
