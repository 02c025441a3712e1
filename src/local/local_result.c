/* local_result.c - the outcome of one delivery target: status, DSN code
 * and the reason text logged in parentheses and sent back to qmgr. */
#include "local/local.h"

#include "lib/buf.h"
#include "lib/str.h"

#include <stdarg.h>

void local_result_init(struct local_result *r)
{
	r->status = LOCAL_OK;
	str_copy(r->dsn, sizeof(r->dsn), "2.0.0");
	buf_init(&r->text);
}

void local_result_deinit(struct local_result *r)
{
	buf_deinit(&r->text);
}

void local_result_set(struct local_result *r, enum local_status status, const char *dsn,
		      const char *fmt, ...)
{
	va_list ap;
	r->status = status;
	str_copy(r->dsn, sizeof(r->dsn), dsn);
	buf_reset(&r->text);
	va_start(ap, fmt);
	buf_vprintf(&r->text, fmt, ap);
	va_end(ap);
}

const char *local_status_name(enum local_status s)
{
	switch (s) {
	case LOCAL_OK:
		return "sent";
	case LOCAL_TEMPFAIL:
		return "deferred";
	case LOCAL_PERMFAIL:
		return "bounced";
	}
	return "deferred";
}
