/* smtpd_dns.c - the client's verified name: reverse lookup of its address,
 * then forward confirmation (the name must resolve back to the address), as
 * Postfix's smtpd_peer.c does; "unknown" otherwise.
 *
 * Called by smtpd_session.c before the greeting.  c-ares does the lookups
 * (/etc/hosts first, then the DNS servers of dns_servers or
 * /etc/resolv.conf) on the channel of mail/dns.c, which drives its sockets
 * and retransmissions from the event loop, so the loop never blocks.  Each query has its own time bound; results
 * are always delivered from the event loop (c-ares may answer from
 * /etc/hosts inside the call that starts the query).
 *
 * Lifetime: a query is freed when its result was delivered or it was
 * cancelled, and c-ares holds no callback for it any more (pending == 0).
 */
#include "smtpd/smtpd_int.h"

#include <arpa/inet.h>
#include <ares.h>
#include <event2/event.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "mail/dns.h"

struct smtpd_dns {
	struct event_base *base;
	struct dns *dns; /* the c-ares channel on our loop (mail/dns.c) */
};

struct smtpd_dns_query {
	struct smtpd_dns *dns;
	smtpd_dns_cb *cb;
	void *ctx;
	int family;
	uint8_t addr[16];
	size_t addr_len;
	char *name;     /* candidate from the reverse lookup */
	char *result;   /* final answer once finished */
	int pending;    /* c-ares callbacks not yet called */
	bool finished;  /* result decided */
	bool delivered; /* cb called */
	bool cancelled;
	struct event *timeout_ev;
	struct event *deliver_ev;
};

struct smtpd_dns *smtpd_dns_new(struct event_base *base, const char *servers,
				const char **error_r)
{
	struct smtpd_dns *sd = xcalloc(1, sizeof(*sd));
	sd->base = base;
	sd->dns = dns_new(base, servers, 2000, 2, error_r);
	if (sd->dns == NULL) {
		free(sd);
		return NULL;
	}
	return sd;
}

void smtpd_dns_free(struct smtpd_dns **dnsp)
{
	struct smtpd_dns *sd = *dnsp;
	if (sd == NULL)
		return;
	*dnsp = NULL;
	/* Runs the pending callbacks with ARES_EDESTRUCTION: every query
	 * must have been cancelled before. */
	dns_free(&sd->dns);
	free(sd);
}

static void query_free(struct smtpd_dns_query *q)
{
	event_free(q->timeout_ev);
	event_free(q->deliver_ev);
	free(q->name);
	free(q->result);
	free(q);
}

/* Free q if nothing refers to it any more. */
static void query_maybe_free(struct smtpd_dns_query *q)
{
	if (q->pending == 0 && (q->delivered || q->cancelled))
		query_free(q);
}

static void query_finish(struct smtpd_dns_query *q, const char *name)
{
	if (q->finished)
		return;
	q->finished = true;
	q->result = xstrdup(name);
	event_del(q->timeout_ev);
	if (!q->cancelled)
		event_active(q->deliver_ev, EV_TIMEOUT, 1);
}

static void query_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_dns_query *q = arg;
	(void)fd;
	(void)what;
	q->delivered = true;
	smtpd_dns_cb *cb = q->cb;
	void *ctx = q->ctx;
	char *result = xstrdup(q->result);
	query_maybe_free(q);
	cb(ctx, result); /* may free the session; q is not touched after */
	free(result);
}

static void query_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_dns_query *q = arg;
	(void)fd;
	(void)what;
	query_finish(q, "unknown");
}

/* Postfix's valid_hostname(): letters, digits, '-', '_', '.', labels of at
 * most 63, not all-numeric (a PTR of "1.2.3.4" must not pass as a name). */
static bool name_is_valid(const char *name)
{
	size_t len = strlen(name), label = 0;
	bool non_digit = false;

	if (len == 0 || len > 255)
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		char c = *p;
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
		if (!(c >= '0' && c <= '9'))
			non_digit = true;
		if (++label > 63)
			return false;
	}
	return non_digit;
}

static void query_forward_cb(void *arg, int status, int timeouts, struct hostent *h)
{
	struct smtpd_dns_query *q = arg;
	(void)timeouts;

	q->pending--;
	if (q->finished || q->cancelled) {
		query_maybe_free(q);
		return;
	}
	bool match = false;
	if (status == ARES_SUCCESS && h != NULL && h->h_addrtype == q->family) {
		for (char **a = h->h_addr_list; *a != NULL && !match; a++)
			match = (size_t)h->h_length == q->addr_len &&
				memcmp(*a, q->addr, q->addr_len) == 0;
	}
	if (!match && status == ARES_SUCCESS) {
		char text[INET6_ADDRSTRLEN];
		inet_ntop(q->family, q->addr, text, sizeof(text));
		log_warning("hostname %s does not resolve to address %s", q->name, text);
	}
	query_finish(q, match ? q->name : "unknown");
}

static void query_reverse_cb(void *arg, int status, int timeouts, struct hostent *h)
{
	struct smtpd_dns_query *q = arg;
	(void)timeouts;

	q->pending--;
	if (q->finished || q->cancelled) {
		query_maybe_free(q);
		return;
	}
	if (status != ARES_SUCCESS || h == NULL || h->h_name == NULL ||
	    !name_is_valid(h->h_name)) {
		query_finish(q, "unknown");
		return;
	}
	q->name = xstrdup(h->h_name);
	q->pending++;
	ares_gethostbyname(dns_ares_channel(q->dns->dns), q->name, q->family, query_forward_cb, q);
	dns_schedule(q->dns->dns);
}

struct smtpd_dns_query *smtpd_dns_lookup(struct smtpd_dns *dns, const struct sockaddr *sa,
					 socklen_t salen, long timeout_sec, smtpd_dns_cb *cb,
					 void *ctx)
{
	struct smtpd_dns_query *q = xcalloc(1, sizeof(*q));
	q->dns = dns;
	q->cb = cb;
	q->ctx = ctx;
	q->timeout_ev = evtimer_new(dns->base, query_timeout_cb, q);
	q->deliver_ev = event_new(dns->base, -1, 0, query_deliver_cb, q);

	if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
		q->family = AF_INET;
		q->addr_len = 4;
		memcpy(q->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			q->family = AF_INET;
			q->addr_len = 4;
			memcpy(q->addr, a6->s6_addr + 12, 4);
		} else {
			q->family = AF_INET6;
			q->addr_len = 16;
			memcpy(q->addr, a6, 16);
		}
	} else {
		query_finish(q, "unknown");
		return q;
	}
	struct timeval tv = { timeout_sec, 0 };
	evtimer_add(q->timeout_ev, &tv);
	q->pending++;
	ares_gethostbyaddr(dns_ares_channel(dns->dns), q->addr, (int)q->addr_len, q->family,
			   query_reverse_cb, q);
	if (!q->finished)
		dns_schedule(dns->dns);
	return q;
}

void smtpd_dns_cancel(struct smtpd_dns_query **qp)
{
	struct smtpd_dns_query *q = *qp;
	if (q == NULL)
		return;
	*qp = NULL;
	q->cancelled = true;
	event_del(q->timeout_ev);
	event_del(q->deliver_ev);
	query_maybe_free(q);
}
