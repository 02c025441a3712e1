/* dns.c - asynchronous MX routing lookups with c-ares on a libevent loop.
 *
 * Used by the SMTP client (src/smtp/) to turn a nexthop into the ordered
 * list of addresses to try (RFC 5321 5.1):
 *   1. MX lookup (skipped for a "[host]" nexthop); records sorted by
 *      preference, equal preferences shuffled;  "MX 0 ." is a null MX
 *      (RFC 7505): no mail for that domain, bounce at once;
 *   2. no MX record (NXDOMAIN or NODATA): the domain itself is the only
 *      exchanger ("implicit MX");
 *   3. the A and AAAA records of every exchanger, looked up concurrently
 *      (ares_getaddrinfo, which reads /etc/hosts first); an exchanger
 *      without addresses is skipped;  the total number of addresses is
 *      capped by smtp_mx_address_limit (Postfix's meaning: 5 by default, 0
 *      for no limit), keeping the best exchangers.
 *
 * Errors carry Postfix's texts ("Host or domain name not found. Name
 * service error for name=X type=MX: Host not found, try again") because
 * they end up in deferral reasons, logs and bounce reports, where
 * administrators grep for them.
 *
 * Event integration: c-ares tells us which sockets to watch through
 * ARES_OPT_SOCK_STATE_CB; one persistent libevent event per socket calls
 * ares_process_fd(), and one timer drives retransmissions and timeouts.
 * Search domains are disabled (ARES_OPT_DOMAINS with none): names in mail
 * routing are fully qualified, and appending resolv.conf's "search"
 * domains would turn a plain "not found" into a query elsewhere.
 *
 * Lifetime: c-ares has no per-query cancel, so a query stays allocated
 * while c-ares still holds callbacks for it (pending > 0).  dns_cancel()
 * only marks it; the last c-ares callback frees it.  Results are always
 * delivered from a separate event, never from inside dns_resolve_mx() or
 * ares_process_fd() (c-ares answers /etc/hosts lookups synchronously).
 */
#include "mail/dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/config.h"

/* More MX records than this are ignored (the worst preferences): a hostile
 * zone could otherwise make us start thousands of address lookups. */
#define DNS_MX_MAX 32

struct dns_fd {
	struct dns_fd *next;
	ares_socket_t fd;
	short what;
	struct event *ev;
};

struct dns {
	struct event_base *base;
	ares_channel ch;
	struct event *timer;
	struct dns_fd *fds;
	struct dns_query *queries; /* every live query, doubly linked */
	unsigned mx_address_limit; /* 0: none */
};

/* One A or AAAA lookup in flight: c-ares's callback argument. */
struct dns_addr_req {
	struct dns_query *q;
	size_t host;
	int family;
};

struct dns_query {
	struct dns *dns;
	struct dns_query *prev, *next;
	void (*cb)(void *ctx, const struct dns_mx_result *res);
	void *ctx;
	bool cancelled;
	bool finished;    /* result decided, delivery event scheduled */
	int pending;      /* c-ares callbacks still to come */
	char *domain;
	bool no_mx;
	unsigned port;
	bool want_ipv4, want_ipv6;
	struct dns_mx_result res;
	/* Per host: addresses found, kept apart by family so that the order
	 * does not depend on which answer arrived first. */
	struct buf *v4, *v6;  /* arrays of sockaddr_storage, one buf per host */
	size_t n_bufs;
	bool tempfail;        /* a lookup failed temporarily */
	bool soft_error_is_a;
	struct buf soft_error; /* first temporary error text */
	struct buf hard_error; /* last not-found error text */
	struct buf error;      /* res.error points here */
	struct event *deliver_ev;
};

/* ---- event loop glue ---- */

static void dns_timer_update(struct dns *dns)
{
	struct timeval max = { 60, 0 }, tv;
	struct timeval *t = ares_timeout(dns->ch, &max, &tv);
	evtimer_add(dns->timer, t);
}

static void dns_fd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *dns = arg;
	ares_process_fd(dns->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	dns_timer_update(dns);
}

static void dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *dns = arg;
	(void)fd;
	(void)what;
	ares_process_fd(dns->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_timer_update(dns);
}

static void dns_sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *dns = data;
	struct dns_fd **pp = &dns->fds, *f;

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
	if (f->ev == NULL)
		mem_fail("event_new");
	event_add(f->ev, NULL);
}

ares_channel dns_ares_channel(struct dns *dns)
{
	return dns->ch;
}

void dns_schedule(struct dns *dns)
{
	dns_timer_update(dns);
}

/* ---- resolver ---- */

/* "a, b:53 [::1]:5353" -> "a,b:53,[::1]:5353" (c-ares CSV); NULL when
 * empty. */
static char *dns_servers_csv(const char *servers)
{
	char **items = NULL;
	struct buf csv = BUF_INIT;

	if (servers == NULL)
		return NULL;
	size_t n = str_list_split(servers, &items);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_append_char(&csv, ',');
		buf_append_str(&csv, items[i]);
	}
	str_list_free(&items);
	if (csv.len == 0) {
		buf_deinit(&csv);
		return NULL;
	}
	return buf_steal(&csv);
}

struct dns *dns_new(struct event_base *base, const char *servers, unsigned timeout_ms,
		    unsigned tries, const char **error_r)
{
	static bool lib_ready;
	struct ares_options opts;
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS | ARES_OPT_TIMEOUTMS |
		   ARES_OPT_TRIES | ARES_OPT_DOMAINS | ARES_OPT_FLAGS;

	if (!lib_ready) {
		if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
			*error_r = "ares_library_init failed";
			return NULL;
		}
		lib_ready = true;
	}
	struct dns *dns = xcalloc(1, sizeof(*dns));
	dns->base = base;
	dns->mx_address_limit = 5;
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = dns_sock_state_cb;
	opts.sock_state_cb_data = dns;
	opts.lookups = (char *)"fb"; /* /etc/hosts, then DNS (address lookups) */
	opts.timeout = timeout_ms > 0 ? (int)timeout_ms : 5000;
	opts.tries = tries > 0 ? (int)tries : 2;
	opts.domains = NULL; /* no search domains: names are fully qualified */
	opts.ndomains = 0;
	opts.flags = ARES_FLAG_NOSEARCH;
	int r = ares_init_options(&dns->ch, &opts, mask);
	if (r != ARES_SUCCESS) {
		*error_r = ares_strerror(r);
		free(dns);
		return NULL;
	}
	char *csv = dns_servers_csv(servers);
	if (csv != NULL) {
		r = ares_set_servers_ports_csv(dns->ch, csv);
		free(csv);
		if (r != ARES_SUCCESS) {
			*error_r = "bad dns_servers value (expected address[:port] list)";
			ares_destroy(dns->ch);
			free(dns);
			return NULL;
		}
	}
	dns->timer = evtimer_new(base, dns_timer_cb, dns);
	if (dns->timer == NULL)
		mem_fail("evtimer_new");
	return dns;
}

struct dns *dns_new_config(struct event_base *base, struct config *cfg, const char **error_r)
{
	long timeout = config_get_time(cfg, "dns_timeout");
	long tries = config_get_int(cfg, "dns_tries");
	long limit = config_get_int(cfg, "smtp_mx_address_limit");
	struct dns *dns = dns_new(base, config_get(cfg, "dns_servers"),
				  (unsigned)(timeout * 1000), (unsigned)tries, error_r);
	if (dns != NULL)
		dns_set_mx_address_limit(dns, (unsigned)limit);
	return dns;
}

void dns_set_mx_address_limit(struct dns *dns, unsigned limit)
{
	dns->mx_address_limit = limit;
}

static void dns_query_free(struct dns_query *q);

void dns_free(struct dns **dnsp)
{
	struct dns *dns = *dnsp;

	if (dns == NULL)
		return;
	*dnsp = NULL;
	/* Every query is cancelled; ares_destroy() runs the remaining c-ares
	 * callbacks (ARES_EDESTRUCTION), which free the queries that were
	 * waiting for them. */
	for (struct dns_query *q = dns->queries; q != NULL; q = q->next)
		q->cancelled = true;
	ares_destroy(dns->ch);
	while (dns->queries != NULL)
		dns_query_free(dns->queries);
	while (dns->fds != NULL) {
		struct dns_fd *f = dns->fds;
		dns->fds = f->next;
		event_free(f->ev);
		free(f);
	}
	event_free(dns->timer);
	free(dns);
}

/* ---- MX sorting ---- */

static int dns_mx_cmp(const void *a, const void *b)
{
	const struct dns_mx *x = a, *y = b;
	return x->preference < y->preference ? -1 : x->preference > y->preference;
}

void dns_mx_sort(struct dns_mx *mx, size_t n, unsigned (*rnd)(void *ctx), void *ctx)
{
	/* Insertion sort: stable, and n is bounded by DNS_MX_MAX. */
	for (size_t i = 1; i < n; i++) {
		struct dns_mx tmp = mx[i];
		size_t j = i;
		while (j > 0 && dns_mx_cmp(&mx[j - 1], &tmp) > 0) {
			mx[j] = mx[j - 1];
			j--;
		}
		mx[j] = tmp;
	}
	/* RFC 5321 5.1: "If there are multiple destinations with the same
	 * preference [...] the SMTP client SHOULD randomize them to spread the
	 * load": Fisher-Yates within each run of equal preference. */
	for (size_t start = 0; start < n;) {
		size_t end = start + 1;
		while (end < n && mx[end].preference == mx[start].preference)
			end++;
		for (size_t i = end - 1; i > start; i--) {
			size_t j = start + (size_t)(rnd(ctx) % (unsigned)(i - start + 1));
			struct dns_mx tmp = mx[i];
			mx[i] = mx[j];
			mx[j] = tmp;
		}
		start = end;
	}
}

static unsigned dns_random(void *ctx)
{
	(void)ctx;
	return (unsigned)arc4random();
}

/* ---- answers we interpret ---- */

/* RFC 1035 2.3.4 / RFC 1123 2.1: at most 253 characters without the root
 * dot, labels of 1..63 letters, digits and hyphens.  Underscores are
 * tolerated (seen in the wild, harmless for an address lookup). */
bool dns_name_valid(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

int dns_mx_list_from_reply(const unsigned char *abuf, int alen, struct dns_mx **mx_r,
			   size_t *n_r, bool *null_mx_r)
{
	struct ares_mx_reply *reply = NULL;
	struct dns_mx *mx = NULL;
	size_t n = 0;
	bool null_mx = false;

	*mx_r = NULL;
	*n_r = 0;
	*null_mx_r = false;
	int r = ares_parse_mx_reply(abuf, alen, &reply);
	if (r == ARES_ENODATA)
		return 0;
	if (r != ARES_SUCCESS)
		return -1;
	for (struct ares_mx_reply *p = reply; p != NULL; p = p->next) {
		const char *host = p->host != NULL ? p->host : "";
		/* RFC 7505 3: a null MX is the single record "0 ."; c-ares
		 * gives the root as "" (or "."). */
		if (host[0] == '\0' || strcmp(host, ".") == 0) {
			null_mx = true;
			continue;
		}
		if (!dns_name_valid(host)) {
			log_warning("malformed domain name in MX record: %.100s", host);
			continue;
		}
		if (n == DNS_MX_MAX) {
			/* Keep the best preferences: replace the worst one. */
			size_t worst = 0;
			for (size_t i = 1; i < n; i++)
				if (mx[i].preference > mx[worst].preference)
					worst = i;
			if (mx[worst].preference <= p->priority)
				continue;
			free(mx[worst].host);
			mx[worst].host = str_lower_dup(host);
			mx[worst].preference = p->priority;
			continue;
		}
		mx = xreallocarray(mx, n + 1, sizeof(*mx));
		mx[n].host = str_lower_dup(host);
		mx[n].preference = p->priority;
		n++;
	}
	ares_free_data(reply);
	/* Trailing dots are not part of the names we connect to or log. */
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(mx[i].host);
		if (l > 0 && mx[i].host[l - 1] == '.')
			mx[i].host[l - 1] = '\0';
	}
	/* A null MX alongside real ones is a broken zone (RFC 7505 3: it
	 * MUST be the only MX); use the real ones, as Postfix does not. */
	if (n > 0)
		null_mx = false;
	*mx_r = mx;
	*n_r = n;
	*null_mx_r = null_mx;
	return 0;
}

void dns_mx_list_free(struct dns_mx **mx, size_t n)
{
	if (*mx == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free((*mx)[i].host);
	free(*mx);
	*mx = NULL;
}

/* ---- error texts (Postfix's dns_lookup.c / dns_strerror.c) ---- */

/* Map a c-ares status to ours and to the resolver's h_errno text. */
static enum dns_status dns_status_from_ares(int status, const char **text_r)
{
	switch (status) {
	case ARES_SUCCESS:
		*text_r = "";
		return DNS_OK;
	case ARES_ENOTFOUND:
		*text_r = "Host not found";
		return DNS_NOTFOUND;
	case ARES_ENODATA:
		*text_r = "Host found but no data record of requested type";
		return DNS_NOTFOUND;
	case ARES_EBADNAME:
		*text_r = "Malformed domain name";
		return DNS_PERMFAIL;
	case ARES_EFORMERR:
	case ARES_ENOTIMP:
	case ARES_EBADRESP:
		/* Postfix calls these NO_RECOVERY and bounces; a broken
		 * server is usually fixed soon: defer instead (STYLE.md 5). */
		*text_r = "Non-recoverable error";
		return DNS_TEMPFAIL;
	default: /* ETIMEOUT, ESERVFAIL, EREFUSED, ECONNREFUSED, ENOMEM... */
		*text_r = "Host not found, try again";
		return DNS_TEMPFAIL;
	}
}

static void dns_error_set(struct buf *b, const char *name, const char *type, const char *text)
{
	buf_reset(b);
	buf_printf(b, "Host or domain name not found. Name service error for name=%s type=%s: %s",
		   name, type, text);
}

/* ---- query lifecycle ---- */

static void dns_query_free_bufs(struct dns_query *q)
{
	for (size_t i = 0; i < q->n_bufs; i++) {
		buf_deinit(&q->v4[i]);
		buf_deinit(&q->v6[i]);
	}
	free(q->v4);
	free(q->v6);
	q->v4 = q->v6 = NULL;
	q->n_bufs = 0;
}

static void dns_query_free(struct dns_query *q)
{
	struct dns *dns = q->dns;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		dns->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	for (size_t i = 0; i < q->res.n_hosts; i++) {
		free(q->res.hosts[i].host);
		free(q->res.hosts[i].addrs);
	}
	free(q->res.hosts);
	dns_query_free_bufs(q);
	buf_deinit(&q->soft_error);
	buf_deinit(&q->hard_error);
	buf_deinit(&q->error);
	if (q->deliver_ev != NULL)
		event_free(q->deliver_ev);
	free(q->domain);
	free(q);
}

static void dns_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	(void)fd;
	(void)what;
	if (!q->cancelled)
		q->cb(q->ctx, &q->res);
	dns_query_free(q);
}

/* Decide the result and schedule its delivery. */
static void dns_query_finish(struct dns_query *q, enum dns_status status, const char *error,
			     const char *dsn)
{
	q->finished = true;
	q->res.status = status;
	q->res.dsn = dsn;
	buf_reset(&q->error);
	if (error != NULL)
		buf_append_str(&q->error, error);
	q->res.error = status == DNS_OK ? NULL : buf_cstr(&q->error);
	q->deliver_ev = event_new(q->dns->base, -1, 0, dns_deliver_cb, q);
	if (q->deliver_ev == NULL)
		mem_fail("event_new");
	event_active(q->deliver_ev, EV_TIMEOUT, 1);
}

/* All address lookups are done: keep the hosts with addresses, in MX
 * order, up to the address limit. */
static void dns_query_addresses_done(struct dns_query *q)
{
	size_t kept = 0, total = 0;
	unsigned limit = q->dns->mx_address_limit;
	struct dns_mx_host *out = xcalloc(q->res.n_hosts, sizeof(*out));

	for (size_t i = 0; i < q->res.n_hosts; i++) {
		struct dns_mx_host *h = &q->res.hosts[i];
		size_t n4 = q->v4[i].len / sizeof(struct sockaddr_storage);
		size_t n6 = q->v6[i].len / sizeof(struct sockaddr_storage);
		size_t n = n4 + n6;
		if (limit > 0 && total + n > limit)
			n = limit - total;
		if (n == 0) {
			free(h->host);
			h->host = NULL;
			continue;
		}
		/* IPv4 first, then IPv6, each in the order the server gave
		 * (RFC 5321 5.1 does not ask to shuffle a host's addresses). */
		struct dns_mx_host *o = &out[kept++];
		o->host = h->host;
		h->host = NULL;
		o->preference = h->preference;
		o->addrs = xreallocarray(NULL, n, sizeof(*o->addrs));
		size_t j = 0;
		for (size_t k = 0; k < n4 && j < n; k++)
			memcpy(&o->addrs[j++],
			       q->v4[i].data + k * sizeof(struct sockaddr_storage),
			       sizeof(struct sockaddr_storage));
		for (size_t k = 0; k < n6 && j < n; k++)
			memcpy(&o->addrs[j++],
			       q->v6[i].data + k * sizeof(struct sockaddr_storage),
			       sizeof(struct sockaddr_storage));
		o->n_addrs = n;
		total += n;
	}
	free(q->res.hosts);
	q->res.hosts = out;
	q->res.n_hosts = kept;
	dns_query_free_bufs(q);
	if (kept > 0) {
		dns_query_finish(q, DNS_OK, NULL, NULL);
	} else if (q->tempfail) {
		dns_query_finish(q, DNS_TEMPFAIL, buf_cstr(&q->soft_error), "4.4.3");
	} else {
		dns_query_finish(q, DNS_NOTFOUND, buf_cstr(&q->hard_error), "5.4.4");
	}
}

static void dns_addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct dns_addr_req *req = arg;
	struct dns_query *q = req->q;
	(void)timeouts;

	q->pending--;
	if (q->cancelled) {
		if (ai != NULL)
			ares_freeaddrinfo(ai);
		free(req);
		if (q->pending == 0 && !q->finished)
			dns_query_free(q);
		return;
	}
	const char *host = q->res.hosts[req->host].host;
	const char *type = req->family == AF_INET ? "A" : "AAAA";
	size_t found = 0;
	if (status == ARES_SUCCESS && ai != NULL) {
		struct buf *b = req->family == AF_INET ? &q->v4[req->host] : &q->v6[req->host];
		for (struct ares_addrinfo_node *n = ai->nodes; n != NULL; n = n->ai_next) {
			if (n->ai_family != req->family || n->ai_addr == NULL)
				continue;
			struct sockaddr_storage ss;
			memset(&ss, 0, sizeof(ss));
			if (n->ai_family == AF_INET) {
				struct sockaddr_in sin;
				memcpy(&sin, n->ai_addr, sizeof(sin));
				sin.sin_port = htons((uint16_t)q->port);
				memcpy(&ss, &sin, sizeof(sin));
			} else {
				struct sockaddr_in6 sin6;
				memcpy(&sin6, n->ai_addr, sizeof(sin6));
				sin6.sin6_port = htons((uint16_t)q->port);
				memcpy(&ss, &sin6, sizeof(sin6));
			}
			/* The same address twice (hosts file and DNS) is tried
			 * once. */
			bool dup = false;
			for (size_t k = 0; k < b->len / sizeof(ss) && !dup; k++)
				dup = memcmp(b->data + k * sizeof(ss), &ss, sizeof(ss)) == 0;
			if (!dup) {
				buf_append(b, &ss, sizeof(ss));
				found++;
			}
		}
	}
	if (found == 0) {
		const char *text;
		enum dns_status st = dns_status_from_ares(status == ARES_SUCCESS ? ARES_ENODATA
										 : status,
							  &text);
		if (st == DNS_TEMPFAIL) {
			/* The first one, the A lookup's rather than AAAA's, so
			 * that the text does not depend on answer order. */
			if (!q->tempfail || (req->family == AF_INET && !q->soft_error_is_a)) {
				dns_error_set(&q->soft_error, host, type, text);
				q->soft_error_is_a = req->family == AF_INET;
			}
			q->tempfail = true;
		} else if (q->hard_error.len == 0 || req->family == AF_INET) {
			/* Not found: report the A lookup when there was one,
			 * as in Postfix's logs ("type=A: Host not found"). */
			dns_error_set(&q->hard_error, host, type, text);
		}
	}
	if (ai != NULL)
		ares_freeaddrinfo(ai);
	free(req);
	if (q->pending == 0)
		dns_query_addresses_done(q);
}

static void dns_lookup_addr(struct dns_query *q, size_t host, int family)
{
	struct ares_addrinfo_hints hints;
	struct dns_addr_req *req = xcalloc(1, sizeof(*req));

	req->q = q;
	req->host = host;
	req->family = family;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = ARES_AI_NOSORT;
	q->pending++;
	ares_getaddrinfo(q->dns->ch, q->res.hosts[host].host, NULL, &hints, dns_addr_cb, req);
}

/* Start the address lookups of every host in q->res.hosts. */
static void dns_query_lookup_hosts(struct dns_query *q)
{
	size_t n = q->res.n_hosts;

	q->v4 = xcalloc(n, sizeof(*q->v4));
	q->v6 = xcalloc(n, sizeof(*q->v6));
	q->n_bufs = n;
	/* Count first: a synchronous answer (/etc/hosts) must not see
	 * pending drop to 0 before every lookup has been started. */
	q->pending++;
	for (size_t i = 0; i < n; i++) {
		if (q->want_ipv4)
			dns_lookup_addr(q, i, AF_INET);
		if (q->want_ipv6)
			dns_lookup_addr(q, i, AF_INET6);
	}
	q->pending--;
	if (q->cancelled) {
		if (q->pending == 0 && !q->finished)
			dns_query_free(q);
		return;
	}
	if (q->pending == 0)
		dns_query_addresses_done(q);
	else
		dns_timer_update(q->dns);
}

static void dns_query_set_single_host(struct dns_query *q, const char *host)
{
	q->res.hosts = xcalloc(1, sizeof(*q->res.hosts));
	q->res.hosts[0].host = xstrdup(host);
	q->res.hosts[0].preference = 0;
	q->res.n_hosts = 1;
}

static void dns_mx_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	(void)timeouts;

	q->pending--;
	if (q->cancelled) {
		if (q->pending == 0 && !q->finished)
			dns_query_free(q);
		return;
	}
	const char *text;
	enum dns_status st = dns_status_from_ares(status, &text);
	if (st == DNS_OK) {
		struct dns_mx *mx = NULL;
		size_t n = 0;
		bool null_mx = false;
		if (dns_mx_list_from_reply(abuf, alen, &mx, &n, &null_mx) < 0) {
			/* Postfix: "Name service error ... Malformed or
			 * unexpected name server reply", deferred. */
			struct buf t = BUF_INIT;
			buf_printf(&t, "Name service error for name=%s type=MX: "
				       "Malformed or unexpected name server reply",
				   q->domain);
			dns_query_finish(q, DNS_TEMPFAIL, buf_cstr(&t), "4.4.3");
			buf_deinit(&t);
			return;
		}
		if (null_mx) {
			struct buf t = BUF_INIT;
			q->res.null_mx = true;
			buf_printf(&t, "Domain %s does not accept mail (nullMX)", q->domain);
			dns_query_finish(q, DNS_PERMFAIL, buf_cstr(&t), "5.1.0");
			buf_deinit(&t);
			return;
		}
		if (n > 0) {
			dns_mx_sort(mx, n, dns_random, NULL);
			q->res.hosts = xcalloc(n, sizeof(*q->res.hosts));
			for (size_t i = 0; i < n; i++) {
				q->res.hosts[i].host = mx[i].host;
				q->res.hosts[i].preference = mx[i].preference;
				mx[i].host = NULL;
			}
			q->res.n_hosts = n;
			free(mx);
			dns_query_lookup_hosts(q);
			return;
		}
		free(mx);
		st = DNS_NOTFOUND; /* answer without MX records: NODATA */
	}
	if (st == DNS_NOTFOUND) {
		/* RFC 5321 5.1: no MX -> the domain is its own exchanger. */
		q->res.implicit = true;
		dns_query_set_single_host(q, q->domain);
		dns_query_lookup_hosts(q);
		return;
	}
	struct buf t = BUF_INIT;
	dns_error_set(&t, q->domain, "MX", text);
	dns_query_finish(q, st, buf_cstr(&t), st == DNS_TEMPFAIL ? "4.4.3" : "5.4.4");
	buf_deinit(&t);
}

struct dns_query *dns_resolve_mx(struct dns *dns, const char *domain, bool no_mx,
				 unsigned port, bool want_ipv4, bool want_ipv6,
				 void (*cb)(void *ctx, const struct dns_mx_result *res),
				 void *ctx)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));

	q->dns = dns;
	q->cb = cb;
	q->ctx = ctx;
	q->no_mx = no_mx;
	q->port = port > 0 && port <= 65535 ? port : 25;
	q->want_ipv4 = want_ipv4 || !want_ipv6;
	q->want_ipv6 = want_ipv6;
	q->domain = str_lower_dup(domain);
	size_t l = strlen(q->domain);
	if (l > 0 && q->domain[l - 1] == '.')
		q->domain[l - 1] = '\0';
	q->next = dns->queries;
	if (q->next != NULL)
		q->next->prev = q;
	dns->queries = q;

	/* An address literal needs no lookup; ares_getaddrinfo turns it into
	 * its address at once (no MX lookup for "[1.2.3.4]" nexthops). */
	struct in6_addr a6;
	bool is_ip = inet_pton(AF_INET, q->domain, &a6) == 1 ||
		     inet_pton(AF_INET6, q->domain, &a6) == 1;
	if (!is_ip && !dns_name_valid(q->domain)) {
		struct buf t = BUF_INIT;
		dns_error_set(&t, q->domain, no_mx ? "A" : "MX", "Malformed domain name");
		dns_query_finish(q, DNS_PERMFAIL, buf_cstr(&t), "5.4.4");
		buf_deinit(&t);
		return q;
	}
	if (no_mx || is_ip) {
		dns_query_set_single_host(q, q->domain);
		if (is_ip) {
			/* Only the literal's own family. */
			bool v6 = strchr(q->domain, ':') != NULL;
			q->want_ipv4 = !v6;
			q->want_ipv6 = v6;
		}
		dns_query_lookup_hosts(q);
		return q;
	}
	q->pending++;
	ares_query(dns->ch, q->domain, ns_c_in, ns_t_mx, dns_mx_cb, q);
	dns_timer_update(dns);
	return q;
}

void dns_cancel(struct dns_query **qp)
{
	struct dns_query *q = *qp;

	if (q == NULL)
		return;
	*qp = NULL;
	q->cancelled = true;
	q->cb = NULL;
	/* Result already decided: its delivery event is ours to drop.
	 * Otherwise the last c-ares callback frees the query. */
	if (q->finished || q->pending == 0)
		dns_query_free(q);
}
