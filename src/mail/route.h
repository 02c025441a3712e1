/* route.h - where a recipient goes: decided once per recipient by the
 * queue manager (and for RCPT checks by smtpd).
 *
 * Order (as Postfix's trivial-rewrite): the domain is local (mydestination,
 * or no domain) -> local; virtual_mailbox_domains -> virtual; otherwise
 * transport_maps decides when it matches, else relay_domains ->
 * relay_transport, else default_transport; relayhost replaces the nexthop
 * of the smtp/relay transports when set (and transport_maps gave none).
 *
 * transport_maps (Postfix transport(5)): lookup keys in order
 *   user+ext@domain, user@domain, domain, .parent.domain ... (each parent,
 *   only when parent_domain_matches_subdomains does not list
 *   transport_maps — Postfix's default — so ".domain" entries are needed
 *   for subdomains, as in the seeds' example), then "*".
 * A result "transport:nexthop": an empty transport keeps the default one,
 * an empty nexthop keeps the recipient's domain; "smtp:[host]:port" skips
 * the MX lookup; "error:text" and "discard:text" are final.
 *
 * Precisions (route.c, as Postfix's trivial-rewrite):
 *  - transport_maps is consulted for every class, local and virtual
 *    included (a "*" entry routes local mail too, as in Postfix); without
 *    a match the class's default applies.  The "local" and "virtual"
 *    results are ROUTE_LOCAL / ROUTE_VIRTUAL whatever the class was;
 *  - relocated_maps comes first: a moved user is ROUTE_ERROR with nexthop
 *    "5.1.6 User has moved to NEWADDR" (keys user@domain, user for local
 *    domains, @domain; each also without the address extension);
 *  - default_transport and relay_transport may carry a nexthop
 *    ("smtp:[gw]"), which wins over relayhost (Postfix's precedence);
 *  - relay_domains: ".domain" items match subdomains, and plain items do
 *    too when parent_domain_matches_subdomains lists relay_domains
 *    (Postfix's default list does);
 *  - a domain literal "user@[192.0.2.1]" (not local) goes to that address
 *    with no_mx, unless relayhost or a table says otherwise;
 *  - ROUTE_ERROR texts may begin with an RFC 3463 status ("5.1.6 ...",
 *    "error:4.3.0 try later"): split them with route_error_split(); a
 *    4.x.x status means defer, as Postfix's error(8)/retry;
 *  - an unknown transport name (retry:, lmtp:, a pipe service) or a bad
 *    nexthop is -1, a temporary failure, so that mail waits for the fix.
 */
#ifndef FACTEUR_MAIL_ROUTE_H
#define FACTEUR_MAIL_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct route;

enum route_transport {
	ROUTE_LOCAL,
	ROUTE_VIRTUAL,
	ROUTE_SMTP,    /* smtp: and relay: (relay is smtp for relay_domains) */
	ROUTE_ERROR,   /* bounce with nexthop as the text */
	ROUTE_DISCARD, /* drop silently (logged status=sent, "discarded") */
};

struct route_result {
	enum route_transport transport;
	char *transport_name; /* "smtp", "relay", "local", "error", ... for logs */
	char *nexthop;        /* domain or host; for ERROR/DISCARD: the text */
	bool no_mx;           /* "[host]": no MX lookup */
	unsigned port;        /* 25 unless "[host]:port" or "host:port" */
};

/* Tables are opened once; NULL on error with *error_r. */
struct route *route_new(struct config *cfg, const char **error_r);
void route_free(struct route **r);
/* Resolve one recipient address.  1 routed (res filled; free with
 * route_result_deinit), -1 temporary failure (table lookup error, with
 * *error_r). */
int route_resolve(struct route *r, const char *address, struct route_result *res,
		  const char **error_r);
void route_result_deinit(struct route_result *res);
/* Is domain one of relay_domains (".domain" entries and, when
 * parent_domain_matches_subdomains lists relay_domains, plain entries
 * match subdomains too)?  smtpd's relay decision uses the same rule. */
bool route_relay_domain(const struct route *r, const char *domain);
/* Parse "[host]:port", "host:port", "[host]", "host" into host/no_mx/port.
 * 0 or -1. */
int route_parse_nexthop(const char *text, char **host_r, bool *no_mx_r, unsigned *port_r);

/* Split an error text "5.1.6 User has moved to x" into its RFC 3463
 * status (copied into status_r, truncated to status_size) and the text
 * after it (*text_r points into text).  Without a status: default_status
 * (e.g. "5.0.0") and the whole text. */
void route_error_split(const char *text, const char *default_status, char *status_r,
		       size_t status_size, const char **text_r);

#endif
