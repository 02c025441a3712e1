/* qmgr_resolve.c - recipient classification and the transport table.
 *
 * The class of a recipient is decided once per delivery pass from its
 * domain, with Postfix's address classes (ADDRESS_CLASS_README): the
 * local domains are mydestination, the virtual mailbox domains are
 * virtual_mailbox_domains, everything else goes to the default transport.
 * A recipient without a domain is local (the SMTP server and pickup
 * qualify addresses; one left bare is meant for this host).
 *
 * The transport table is the one place that maps a class to a way of
 * delivering; the SMTP client of a later issue replaces the "remote" row.
 */
#include "qmgr/qmgr.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/addr.h"

#include <stdlib.h>

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

/* TODO(#outbound): the SMTP client replaces this: until then mail to other
 * domains waits in deferred/ and is retried with the normal backoff. */
static void remote_deliver(struct qmgr *q, struct qmgr_entry *e)
{
	qmgr_message_log_rcpt(e->msg, e->rcpt, "4.3.0", "deferred", QMGR_REASON_REMOTE);
	qmgr_entry_done(q, e, QMGR_RESULT_DEFERRED, "4.3.0", QMGR_REASON_REMOTE, NULL, 0);
}

static const struct qmgr_transport qmgr_transports[] = {
	[QMGR_CLASS_LOCAL] = { "local", dest_key_address, limit_local, qmgr_local_deliver },
	[QMGR_CLASS_VIRTUAL] = { "virtual", dest_key_domain, limit_virtual, qmgr_local_deliver },
	[QMGR_CLASS_REMOTE] = { "remote", dest_key_domain, limit_none, remote_deliver },
};

const struct qmgr_transport *qmgr_transport_for(enum qmgr_class c)
{
	return &qmgr_transports[c];
}
