/* qmgr_resolve.c - recipient classification and the transport table.
 *
 * The class of a recipient is decided once per delivery pass from its
 * domain, with Postfix's address classes (ADDRESS_CLASS_README): the
 * local domains are mydestination, the virtual mailbox domains are
 * virtual_mailbox_domains, everything else goes to the default transport.
 * A recipient without a domain is local (the SMTP server and pickup
 * qualify addresses; one left bare is meant for this host).
 *
 * With a routing table (route.h, the running queue manager) every
 * recipient is routed once by route_resolve() in qmgr_sched_add(): local
 * and virtual go to the local agent, smtp to the SMTP client grouped by
 * nexthop, error/discard are final at once.  Without one (unit tests) the
 * class decides and other domains are deferred.
 *
 * The transport table is the one place that maps a class to a way of
 * delivering.
 */
#include "qmgr/qmgr.h"
#include "mail/route.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/addr.h"

#include <stdlib.h>
#include <string.h>

enum qmgr_class qmgr_resolve_class(const struct qmgr_settings *s, const char *address)
{
	char *domain = NULL;
	enum qmgr_class c;

	if (!addr_split(address, NULL, &domain) || domain == NULL || *domain == '\0')
		c = QMGR_CLASS_LOCAL;
	else if (s->mydestination != NULL && addr_domain_in_list(domain, s->mydestination))
		c = QMGR_CLASS_LOCAL;
	else if (s->virtual_mailbox_domains != NULL &&
		 addr_domain_in_list(domain, s->virtual_mailbox_domains))
		c = QMGR_CLASS_VIRTUAL;
	else
		c = QMGR_CLASS_REMOTE;
	free(domain);
	return c;
}

const char *qmgr_class_name(enum qmgr_class c)
{
	switch (c) {
	case QMGR_CLASS_LOCAL: return "local";
	case QMGR_CLASS_VIRTUAL: return "virtual";
	case QMGR_CLASS_REMOTE: return "remote";
	case QMGR_CLASS_SMTP: return "smtp";
	case QMGR_CLASS_ERROR: return "error";
	case QMGR_CLASS_DISCARD: return "discard";
	case QMGR_CLASS_RETRY: return "retry";
	}
	return "unknown";
}

/* Local deliveries are limited per recipient (Postfix's
 * local_destination_concurrency_limit with local_destination_recipient_limit
 * = 1: the destination is the recipient). */
static char *dest_key_address(const char *address)
{
	return str_lower_dup(address);
}

/* Remote destinations are domains (the nexthop, once routing exists). */
static char *dest_key_domain(const char *address)
{
	char *domain = NULL;
	if (!addr_split(address, NULL, &domain) || domain == NULL) {
		free(domain);
		return xstrdup("");
	}
	str_lower(domain);
	return domain;
}

static unsigned limit_local(const struct qmgr *q)
{
	return q->s.local_concurrency;
}

/* Virtual mailboxes: Postfix's virtual(8) limits per domain, with
 * virtual_destination_concurrency_limit = $default_destination_concurrency_limit. */
static unsigned limit_virtual(const struct qmgr *q)
{
	return q->s.virtual_concurrency;
}

static unsigned limit_none(const struct qmgr *q)
{
	return q->s.process_limit;
}

/* Without a routing table (unit tests) mail to other domains waits in
 * deferred/ and is retried with the normal backoff. */
static void remote_deliver(struct qmgr *q, struct qmgr_entry *e)
{
	qmgr_message_log_rcpt(e->msg, e->rcpt, "4.3.0", "deferred", QMGR_REASON_REMOTE);
	qmgr_entry_done(q, e, QMGR_RESULT_DEFERRED, "4.3.0", QMGR_REASON_REMOTE, NULL, 0);
}

/* Postfix's error(8): the route's text is the reason, dsn 5.0.0 unless
 * the text starts with one ("5.1.1 text"). */
static void error_deliver(struct qmgr *q, struct qmgr_entry *e)
{
	const char *text = e->text != NULL && *e->text != '\0' ? e->text : "mail is refused";
	char dsn[16];
	route_error_split(text, "5.0.0", dsn, sizeof(dsn), &text);
	/* A 4.x.x status ("error:4.3.0 try later") defers, as Postfix's
	 * error(8) does; anything else bounces. */
	bool temporary = dsn[0] == '4';
	qmgr_message_log_rcpt(e->msg, e->rcpt, dsn, temporary ? "deferred" : "bounced", text);
	qmgr_entry_done(q, e, temporary ? QMGR_RESULT_DEFERRED : QMGR_RESULT_BOUNCED, dsn, text,
			NULL, 0);
}

/* Postfix's discard(8): logged as sent, "discarded". */
static void discard_deliver(struct qmgr *q, struct qmgr_entry *e)
{
	const char *text = e->text != NULL && *e->text != '\0' ? e->text : "discarded";
	qmgr_message_log_rcpt(e->msg, e->rcpt, "2.0.0", "sent", text);
	qmgr_entry_done(q, e, QMGR_RESULT_SENT, "2.0.0", text, NULL, 0);
}

/* Routing failed for now (a table lookup error): try again later. */
static void retry_deliver(struct qmgr *q, struct qmgr_entry *e)
{
	const char *text = e->text != NULL ? e->text : "address resolver failure";
	qmgr_message_log_rcpt(e->msg, e->rcpt, "4.3.0", "deferred", text);
	qmgr_entry_done(q, e, QMGR_RESULT_DEFERRED, "4.3.0", text, NULL, 0);
}

/* SMTP destinations are nexthops: the grouping key is built from the
 * entry's route in qmgr_sched.c; this one only serves tests. */
static unsigned limit_smtp(const struct qmgr *q)
{
	return q->s.smtp_concurrency > 0 ? q->s.smtp_concurrency : q->s.virtual_concurrency;
}

static unsigned rcpt_limit_smtp(const struct qmgr *q)
{
	return q->s.smtp_rcpt_limit > 0 ? q->s.smtp_rcpt_limit : 50;
}

static const struct qmgr_transport qmgr_transports[] = {
	[QMGR_CLASS_LOCAL] = { "local", dest_key_address, limit_local, qmgr_local_deliver, NULL },
	[QMGR_CLASS_VIRTUAL] = { "virtual", dest_key_domain, limit_virtual, qmgr_local_deliver,
				 NULL },
	[QMGR_CLASS_REMOTE] = { "remote", dest_key_domain, limit_none, remote_deliver, NULL },
	[QMGR_CLASS_SMTP] = { "smtp", dest_key_domain, limit_smtp, qmgr_smtp_deliver,
			      rcpt_limit_smtp },
	[QMGR_CLASS_ERROR] = { "error", dest_key_domain, limit_none, error_deliver, NULL },
	[QMGR_CLASS_DISCARD] = { "discard", dest_key_domain, limit_none, discard_deliver, NULL },
	[QMGR_CLASS_RETRY] = { "retry", dest_key_domain, limit_none, retry_deliver, NULL },
};

const struct qmgr_transport *qmgr_transport_for(enum qmgr_class c)
{
	return &qmgr_transports[c];
}
