/* smtpd_dns.c - the client's verified name: reverse lookup of its address,
 * then forward confirmation (the name must resolve back to the address), as
 * Postfix's smtpd_peer.c does; "unknown" otherwise.
 *
 * Called by smtpd_session.c before the greeting.  c-ares does the lookups
 * (/etc/hosts first, then the DNS servers of dns_servers or
 * /etc/resolv.conf); its sockets are watched by libevent through
 * ARES_OPT_SOCK_STATE_CB and its retransmissions driven by one evtimer, so
 * the event loop never blocks.  Each query has its own time bound; results
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

struct smtpd_dns_fd {
	struct smtpd_dns_fd *next;
	ares_socket_t fd;
	struct event *ev;
	short what;
};

struct smtpd_dns {
	struct event_base *base;
	ares_channel ch;
	struct event *timer;
	struct smtpd_dns_fd *fds;
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

static void dns_update_timer(struct smtpd_dns *dns)
{
	struct timeval max = { 60, 0 }, tv;
	struct timeval *t = ares_timeout(dns->ch, &max, &tv);
	evtimer_add(dns->timer, t);
}

static void dns_fd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_dns *dns = arg;
	ares_process_fd(dns->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	dns_update_timer(dns);
}

static void dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_dns *dns = arg;
	(void)fd;
	(void)what;
	ares_process_fd(dns->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_update_timer(dns);
}

static void dns_sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct smtpd_dns *dns = data;
	struct smtpd_dns_fd **pp = &dns->fds, *f;

	while ((f = *pp) != NULL && f->fd != fd)
		pp = &f->next;
	if (!readable && !writable) {
		if (f != NULL) {
			*pp = f->next;
			event_free(f->ev);
			free(f);
		}
		return;
	}
	short what = (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
	if (f == NULL) {
		f = xcalloc(1, sizeof(*f));
		f->fd = fd;
		f->next = dns->fds;
		dns->fds = f;
	} else if (f->what == what) {
		return;
	} else {
		event_free(f->ev);
	}
	f->what = what;
	f->ev = event_new(dns->base, fd, what | EV_PERSIST, dns_fd_cb, dns);
	event_add(f->ev, NULL);
}

struct smtpd_dns *smtpd_dns_new(struct event_base *base, const char *servers,
				const char **error_r)
{
	static bool lib_ready;
	struct ares_options opts;
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;

	if (!lib_ready) {
		if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
			*error_r = "ares_library_init failed";
			return NULL;
		}
		lib_ready = true;
	}
	struct smtpd_dns *dns = xcalloc(1, sizeof(*dns));
	dns->base = base;
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = dns_sock_state_cb;
	opts.sock_state_cb_data = dns;
	opts.lookups = (char *)"fb"; /* /etc/hosts, then DNS */
	opts.timeout = 2000;
	opts.tries = 2;
	int r = ares_init_options(&dns->ch, &opts, mask);
	if (r != ARES_SUCCESS) {
		*error_r = ares_strerror(r);
		free(dns);
		return NULL;
	}
	if (servers != NULL && servers[0] != '\0') {
		r = ares_set_servers_ports_csv(dns->ch, servers);
		if (r != ARES_SUCCESS) {
			*error_r = "bad dns_servers value";
			ares_destroy(dns->ch);
			free(dns);
			return NULL;
		}
	}
	dns->timer = evtimer_new(base, dns_timer_cb, dns);
	return dns;
}

void smtpd_dns_free(struct smtpd_dns **dnsp)
{
	struct smtpd_dns *dns = *dnsp;
	if (dns == NULL)
		return;
	*dnsp = NULL;
	/* Calls the pending callbacks with ARES_EDESTRUCTION: every query
	 * must have been cancelled before. */
	ares_destroy(dns->ch);
	while (dns->fds != NULL) {
		struct smtpd_dns_fd *f = dns->fds;
		dns->fds = f->next;
		event_free(f->ev);
		free(f);
	}
	event_free(dns->timer);
	free(dns);
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
	ares_gethostbyname(q->dns->ch, q->name, q->family, query_forward_cb, q);
	dns_update_timer(q->dns);
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
	ares_gethostbyaddr(dns->ch, q->addr, (int)q->addr_len, q->family, query_reverse_cb, q);
	if (!q->finished)
		dns_update_timer(dns);
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
