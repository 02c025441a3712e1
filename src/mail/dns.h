/* dns.h - asynchronous DNS for mail routing (c-ares on a libevent loop).
 *
 * Resolver: the servers of the dns_servers parameter ("addr[:port]" list)
 * or, when it is empty, those of /etc/resolv.conf (and /etc/hosts for
 * address lookups).  Every lookup is asynchronous: the callback runs later
 * in the loop thread, never inside the call that started the lookup.
 */
#ifndef FACTEUR_MAIL_DNS_H
#define FACTEUR_MAIL_DNS_H

#include <ares.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct dns;
struct dns_query;

enum dns_status {
	DNS_OK,        /* answers found */
	DNS_NOTFOUND,  /* NXDOMAIN, or no record of that type (NODATA) */
	DNS_TEMPFAIL,  /* timeout, SERVFAIL, refused, network error: defer */
	DNS_PERMFAIL,  /* malformed name or answer: bounce */
};

struct dns_mx {
	char *host;
	unsigned preference;
};

/* One mail exchanger with its addresses, in the order to try. */
struct dns_mx_host {
	char *host;
	unsigned preference;
	struct sockaddr_storage *addrs;
	size_t n_addrs;
};

/* Result of dns_resolve_mx: the hosts to try in order.  null_mx: the domain
 * publishes RFC 7505 "MX 0 ." (no mail accepted: bounce at once).
 * implicit: no MX record, the domain's own A/AAAA are used (RFC 5321 5.1). */
struct dns_mx_result {
	enum dns_status status;
	const char *error; /* text for logs and reports when status != DNS_OK */
	/* RFC 3463 status for error (added): "4.4.3" temporary failure,
	 * "5.4.4" not found / malformed name, "5.1.0" null MX; NULL when OK. */
	const char *dsn;
	bool null_mx;
	bool implicit;
	struct dns_mx_host *hosts;
	size_t n_hosts;
};

/* servers: "addr[:port], ..." or NULL/"" for the system configuration.
 * timeout_ms per try, tries attempts.  NULL on error (*error_r). */
struct dns *dns_new(struct event_base *base, const char *servers, unsigned timeout_ms,
		    unsigned tries, const char **error_r);
void dns_free(struct dns **dns);

/* MX routing for a domain: MX lookup sorted by preference, equal
 * preferences in random order (RFC 5321 5.1); each MX host's A and AAAA
 * records (IPv4 and IPv6, families as inet_protocols allows: pass
 * want_ipv4/want_ipv6); no MX -> the domain's address records; an MX
 * host without addresses is skipped; all skipped -> DNS_TEMPFAIL when a
 * lookup failed temporarily, DNS_NOTFOUND otherwise.  With no_mx (a
 * "[host]" nexthop) the MX lookup is skipped and host itself is resolved.
 * port: put into every returned address.  cb owns nothing: the result is
 * freed after cb returns. */
struct dns_query *dns_resolve_mx(struct dns *dns, const char *domain, bool no_mx,
				 unsigned port, bool want_ipv4, bool want_ipv6,
				 void (*cb)(void *ctx, const struct dns_mx_result *res),
				 void *ctx);
/* For modules that make their own c-ares lookups on the same loop (smtpd's
 * reverse lookup of clients): the channel, and dns_schedule() to call after
 * starting a query so that its retransmissions are timed.  Their callbacks
 * run with ARES_EDESTRUCTION when dns_free() destroys the channel. */
ares_channel dns_ares_channel(struct dns *dns);
void dns_schedule(struct dns *dns);

/* Cancel a pending query: its callback will not run. */
void dns_cancel(struct dns_query **q);

/* Sort helper exposed for unit tests: stable sort by preference, then
 * shuffle runs of equal preference with rnd(). */
void dns_mx_sort(struct dns_mx *mx, size_t n, unsigned (*rnd)(void *ctx), void *ctx);

/* ---- additions (dns.c) ---- */

struct config;

/* dns_new() with dns_servers, dns_timeout (seconds, per try), dns_tries and
 * smtp_mx_address_limit from cfg. */
struct dns *dns_new_config(struct event_base *base, struct config *cfg, const char **error_r);

/* smtp_mx_address_limit (Postfix's meaning): at most limit addresses in
 * all in one dns_mx_result, the best exchangers first; 0 = no limit.
 * Default 5, as Postfix. */
void dns_set_mx_address_limit(struct dns *dns, unsigned limit);

/* Notes on dns_resolve_mx():
 *  - domain may end with one dot; it is lower-cased; an IPv4/IPv6 address
 *    literal (without brackets) is used as is, without any lookup;
 *  - want_ipv4 and want_ipv6 both false means IPv4 only;
 *  - within a host, IPv4 addresses come first, then IPv6;
 *  - null MX: status DNS_PERMFAIL, null_mx true, error "Domain D does not
 *    accept mail (nullMX)", dsn 5.1.0 (Postfix's text);
 *  - errors: "Host or domain name not found. Name service error for
 *    name=N type=T: Host not found[, try again]" as Postfix;
 *  - the query handle is valid until cb has returned or dns_cancel();
 *    dns_free() cancels every pending query (no callback runs). */

/* A name usable in DNS: 1..253 characters (a trailing dot aside), labels
 * of 1..63 letters, digits, '-' or '_'. */
bool dns_name_valid(const char *name);

/* Interpret an MX answer (the DNS message abuf[0..alen)): the exchangers
 * with valid names, lower-cased, without trailing dot, in answer order
 * (at most 32, keeping the best preferences).  *null_mx_r is set when the
 * only MX is the RFC 7505 null MX ("0 ." or an empty name).  0 (possibly
 * with *n_r == 0 for an answer without MX records) or -1 for a malformed
 * answer.  Free with dns_mx_list_free().  Exposed for the fuzzer. */
int dns_mx_list_from_reply(const unsigned char *abuf, int alen, struct dns_mx **mx_r,
			   size_t *n_r, bool *null_mx_r);
void dns_mx_list_free(struct dns_mx **mx, size_t n);

#endif
