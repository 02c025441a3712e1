/* route.c - where a recipient goes (Postfix's trivial-rewrite "resolve").
 *
 * Called by the queue manager once per recipient, and usable by smtpd.
 * Decision, in order (route.h has the contract):
 *   1. relocated_maps: a moved user is an error ("5.1.6 User has moved to
 *      NEWADDR"), whatever the class (Postfix resolve.c does the same);
 *   2. the address class gives the default: local (no domain, or
 *      mydestination) -> local; virtual_mailbox_domains -> virtual;
 *      relay_domains -> relay_transport; other -> default_transport;
 *   3. transport_maps, when it matches, overrides transport and/or
 *      nexthop (Postfix applies it to every class, local ones included:
 *      "* smtp:[relay]" sends local mail out too, as in Postfix);
 *   4. smtp/relay without an explicit nexthop: relayhost when set, else
 *      the recipient's domain (MX lookup).
 *
 * Domains are compared case-insensitively with one trailing dot ignored
 * (addr_domain_in_list).  Table keys are lower-cased.  A table that cannot
 * be read is a temporary failure (-1): the recipient is deferred, never
 * misrouted.
 */
#include "mail/route.h"

#include <stdint.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/addr.h"
#include "mail/config.h"
#include "mail/table.h"

struct route {
	char **mydestination;
	char **virtual_mailbox_domains;
	char **relay_domains;
	char *recipient_delimiter;
	char *default_transport; /* "transport[:nexthop]" */
	char *relay_transport;
	char *relayhost;         /* "" when unset */
	char *myhostname;
	bool transport_subdomains; /* transport_maps in parent_domain_matches_subdomains */
	bool relay_subdomains;     /* relay_domains in parent_domain_matches_subdomains */
	struct table_list *transport_maps; /* NULL when empty */
	struct table_list *relocated_maps;
};

static char **route_list(struct config *cfg, const char *name)
{
	char **items = NULL;
	(void)str_list_split(config_get(cfg, name), &items);
	for (size_t i = 0; items[i] != NULL; i++)
		str_lower(items[i]);
	return items;
}

static bool list_has(char **list, const char *word)
{
	for (size_t i = 0; list[i] != NULL; i++)
		if (str_casecmp(list[i], word) == 0)
			return true;
	return false;
}

static struct table_list *route_tables(struct config *cfg, const char *name,
				       const char **error_r)
{
	const char *spec = config_get(cfg, name);
	static char error_text[512];
	const char *error = NULL;

	if (spec == NULL || spec[strspn(spec, " \t,")] == '\0')
		return NULL;
	struct table_list *l = table_list_open(spec, &error);
	if (l == NULL) {
		snprintf(error_text, sizeof(error_text), "%s: %s", name,
			 error != NULL ? error : "cannot open");
		*error_r = error_text;
	}
	return l;
}

struct route *route_new(struct config *cfg, const char **error_r)
{
	struct route *r = xcalloc(1, sizeof(*r));
	const char *error = NULL;

	r->mydestination = route_list(cfg, "mydestination");
	r->virtual_mailbox_domains = route_list(cfg, "virtual_mailbox_domains");
	r->relay_domains = route_list(cfg, "relay_domains");
	r->recipient_delimiter = xstrdup(config_get(cfg, "recipient_delimiter"));
	r->default_transport = xstrdup(config_get(cfg, "default_transport"));
	r->relay_transport = xstrdup(config_get(cfg, "relay_transport"));
	r->myhostname = str_lower_dup(config_get(cfg, "myhostname"));
	struct strv rh = strv_trim(strv_from_cstr(config_get(cfg, "relayhost")));
	r->relayhost = strv_dup(rh);
	char **pdms = route_list(cfg, "parent_domain_matches_subdomains");
	r->transport_subdomains = list_has(pdms, "transport_maps");
	r->relay_subdomains = list_has(pdms, "relay_domains");
	str_list_free(&pdms);

	if (r->relayhost[0] != '\0') {
		char *host = NULL;
		bool no_mx;
		unsigned port;
		if (route_parse_nexthop(r->relayhost, &host, &no_mx, &port) < 0) {
			*error_r = "relayhost: expected host, [host], [host]:port or host:port";
			route_free(&r);
			return NULL;
		}
		free(host);
	}
	r->transport_maps = route_tables(cfg, "transport_maps", &error);
	if (error == NULL)
		r->relocated_maps = route_tables(cfg, "relocated_maps", &error);
	if (error != NULL) {
		*error_r = error;
		route_free(&r);
		return NULL;
	}
	return r;
}

void route_free(struct route **rp)
{
	struct route *r = *rp;

	if (r == NULL)
		return;
	*rp = NULL;
	str_list_free(&r->mydestination);
	str_list_free(&r->virtual_mailbox_domains);
	str_list_free(&r->relay_domains);
	free(r->recipient_delimiter);
	free(r->default_transport);
	free(r->relay_transport);
	free(r->relayhost);
	free(r->myhostname);
	table_list_free(&r->transport_maps);
	table_list_free(&r->relocated_maps);
	free(r);
}

void route_result_deinit(struct route_result *res)
{
	free(res->transport_name);
	free(res->nexthop);
	res->transport_name = NULL;
	res->nexthop = NULL;
}

/* ---- nexthop syntax ---- */

int route_parse_nexthop(const char *text, char **host_r, bool *no_mx_r, unsigned *port_r)
{
	const char *port_text = NULL;
	char *host = NULL;

	*host_r = NULL;
	*no_mx_r = false;
	*port_r = 25;
	if (text == NULL || text[0] == '\0')
		return -1;
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL || close == text + 1)
			return -1;
		if (close[1] == ':')
			port_text = close + 2;
		else if (close[1] != '\0')
			return -1;
		const char *h = text + 1;
		/* "[IPv6:2001:db8::1]" (RFC 5321 4.1.3 literal form). */
		if (close - h > 5 && strncasecmp(h, "ipv6:", 5) == 0)
			h += 5;
		host = xstrndup(h, (size_t)(close - h));
		*no_mx_r = true;
	} else {
		const char *colon = strchr(text, ':');
		if (colon != NULL) {
			if (strchr(colon + 1, ':') != NULL)
				return -1; /* bare IPv6: brackets are required */
			port_text = colon + 1;
			host = xstrndup(text, (size_t)(colon - text));
		} else {
			host = xstrdup(text);
		}
	}
	if (host[0] == '\0' || strpbrk(host, " \t[]@") != NULL) {
		free(host);
		return -1;
	}
	if (port_text != NULL) {
		uint64_t port;
		/* Service names ("smtp") are not looked up: numbers only. */
		if (str_to_u64(port_text, 1, 65535, &port) < 0) {
			free(host);
			return -1;
		}
		*port_r = (unsigned)port;
	}
	str_lower(host);
	*host_r = host;
	return 0;
}

void route_error_split(const char *text, const char *default_status, char *status_r,
		       size_t status_size, const char **text_r)
{
	/* RFC 3463: class "." subject "." detail, class 2/4/5, subject up
	 * to 3 digits, detail up to 3 digits. */
	const char *p = text;
	size_t n1 = 0, n2 = 0;
	bool ok = (p[0] == '2' || p[0] == '4' || p[0] == '5') && p[1] == '.';
	if (ok) {
		p += 2;
		while (n1 < 4 && p[n1] >= '0' && p[n1] <= '9')
			n1++;
		ok = n1 >= 1 && n1 <= 3 && p[n1] == '.';
	}
	if (ok) {
		p += n1 + 1;
		while (n2 < 4 && p[n2] >= '0' && p[n2] <= '9')
			n2++;
		ok = n2 >= 1 && n2 <= 3 && (p[n2] == ' ' || p[n2] == '\0');
	}
	if (ok) {
		size_t len = (size_t)(p + n2 - text);
		if (len >= status_size)
			len = status_size - 1;
		memcpy(status_r, text, len);
		status_r[len] = '\0';
		p += n2;
		while (*p == ' ')
			p++;
		*text_r = p;
	} else {
		(void)str_copy(status_r, status_size, default_status);
		*text_r = text;
	}
}

/* ---- lookups ---- */

static int route_lookup(struct table_list *l, const char *name, const char *key,
			char **value_r, const char **error_r)
{
	const char *error = NULL;
	int r = table_list_lookup(l, key, value_r, &error);
	if (r < 0) {
		static char text[512];
		snprintf(text, sizeof(text), "%s lookup of \"%s\": %s", name, key,
			 error != NULL ? error : "error");
		*error_r = text;
	}
	return r;
}

/* local part without its extension ("user+ext" -> "user"), or NULL when
 * there is none. */
static char *route_strip_extension(const struct route *r, const char *local)
{
	if (r->recipient_delimiter[0] == '\0')
		return NULL;
	size_t n = strcspn(local, r->recipient_delimiter);
	if (local[n] == '\0' || n == 0)
		return NULL;
	return xstrndup(local, n);
}

/* relocated_maps keys (Postfix mail_addr_find): user@domain, then user
 * for local domains, then @domain; each with and without the address
 * extension. */
static int route_relocated(struct route *r, const char *local, const char *domain,
			   bool is_local, char **value_r, const char **error_r)
{
	char *base = route_strip_extension(r, local);
	struct buf key = BUF_INIT;
	int found = 0;

	for (int step = 0; step < 5 && found == 0; step++) {
		buf_reset(&key);
		switch (step) {
		case 0:
			if (domain == NULL)
				continue;
			buf_printf(&key, "%s@%s", local, domain);
			break;
		case 1:
			if (domain == NULL || base == NULL)
				continue;
			buf_printf(&key, "%s@%s", base, domain);
			break;
		case 2:
			if (!is_local)
				continue;
			buf_append_str(&key, local);
			break;
		case 3:
			if (!is_local || base == NULL)
				continue;
			buf_append_str(&key, base);
			break;
		case 4:
			if (domain == NULL)
				continue;
			buf_printf(&key, "@%s", domain);
			break;
		}
		found = route_lookup(r->relocated_maps, "relocated_maps", buf_cstr(&key), value_r,
				     error_r);
	}
	buf_deinit(&key);
	free(base);
	return found;
}

/* transport_maps keys (transport(5)): user+ext@domain, user@domain,
 * domain, then each parent (".parent" by default, "parent" when
 * parent_domain_matches_subdomains lists transport_maps), then "*". */
static int route_transport_lookup(struct route *r, const char *local, const char *domain,
				  char **value_r, const char **error_r)
{
	struct buf key = BUF_INIT;
	char *base = route_strip_extension(r, local);
	int found = 0;

	if (domain != NULL) {
		buf_printf(&key, "%s@%s", local, domain);
		found = route_lookup(r->transport_maps, "transport_maps", buf_cstr(&key), value_r,
				     error_r);
		if (found == 0 && base != NULL) {
			buf_reset(&key);
			buf_printf(&key, "%s@%s", base, domain);
			found = route_lookup(r->transport_maps, "transport_maps", buf_cstr(&key),
					     value_r, error_r);
		}
		if (found == 0)
			found = route_lookup(r->transport_maps, "transport_maps", domain, value_r,
					     error_r);
		for (const char *p = strchr(domain, '.'); found == 0 && p != NULL;
		     p = strchr(p + 1, '.')) {
			if (p[1] == '\0')
				break;
			buf_reset(&key);
			buf_append_str(&key, r->transport_subdomains ? p + 1 : p);
			found = route_lookup(r->transport_maps, "transport_maps", buf_cstr(&key),
					     value_r, error_r);
		}
	}
	if (found == 0)
		found = route_lookup(r->transport_maps, "transport_maps", "*", value_r, error_r);
	buf_deinit(&key);
	free(base);
	return found;
}

bool route_relay_domain(const struct route *r, const char *domain)
{
	if (addr_domain_in_list(domain, r->relay_domains))
		return true;
	for (size_t i = 0; r->relay_domains[i] != NULL; i++) {
		const char *item = r->relay_domains[i];
		/* ".example.com" matches subdomains; "example.com" too when
		 * parent_domain_matches_subdomains lists relay_domains. */
		const char *parent = item[0] == '.' ? item + 1 : r->relay_subdomains ? item : NULL;
		if (parent == NULL || parent[0] == '\0')
			continue;
		size_t dl = strlen(domain), pl = strlen(parent);
		if (pl > 0 && parent[pl - 1] == '.')
			pl--;
		if (dl > 0 && domain[dl - 1] == '.')
			dl--;
		if (dl > pl + 1 && domain[dl - pl - 1] == '.' &&
		    strncasecmp(domain + dl - pl, parent, pl) == 0)
			return true;
	}
	return false;
}

/* Split "transport:nexthop" ("transport" alone: empty nexthop). */
static void route_split_transport(const char *value, char **transport_r, char **nexthop_r)
{
	struct strv v = strv_trim(strv_from_cstr(value));
	const char *colon = memchr(v.ptr, ':', v.len);
	if (colon == NULL) {
		*transport_r = strv_dup(v);
		*nexthop_r = xstrdup("");
		return;
	}
	*transport_r = strv_dup(strv_trim(strv_make(v.ptr, (size_t)(colon - v.ptr))));
	*nexthop_r = strv_dup(strv_trim(strv_make(colon + 1, (size_t)(v.ptr + v.len - colon - 1))));
}

/* Fill res for transport name tname and nexthop (may be "").  domain is
 * the recipient's domain (NULL when none).  0, or -1 for a transport
 * facteur does not have. */
static int route_fill(struct route *r, const char *tname, const char *nexthop,
		      bool nexthop_explicit, const char *domain, struct route_result *res,
		      const char **error_r)
{
	static char error_text[256];

	res->no_mx = false;
	res->port = 25;
	if (strcmp(tname, "error") == 0 || strcmp(tname, "discard") == 0) {
		bool is_error = tname[0] == 'e';
		res->transport = is_error ? ROUTE_ERROR : ROUTE_DISCARD;
		res->transport_name = xstrdup(tname);
		res->nexthop = xstrdup(nexthop[0] != '\0' ? nexthop
					       : is_error ? "5.0.0 Address is undeliverable"
							  : "");
		return 0;
	}
	if (strcmp(tname, "local") == 0) {
		res->transport = ROUTE_LOCAL;
		res->transport_name = xstrdup(tname);
		res->nexthop = xstrdup(nexthop[0] != '\0' ? nexthop : r->myhostname);
		return 0;
	}
	if (strcmp(tname, "virtual") == 0) {
		res->transport = ROUTE_VIRTUAL;
		res->transport_name = xstrdup(tname);
		res->nexthop = xstrdup(nexthop[0] != '\0' ? nexthop
				       : domain != NULL ? domain : r->myhostname);
		return 0;
	}
	if (strcmp(tname, "smtp") == 0 || strcmp(tname, "relay") == 0) {
		const char *hop = nexthop;
		if (!nexthop_explicit || hop[0] == '\0')
			hop = r->relayhost[0] != '\0' ? r->relayhost : domain;
		if (hop == NULL || hop[0] == '\0') {
			snprintf(error_text, sizeof(error_text),
				 "no nexthop for transport %s (address without domain)", tname);
			*error_r = error_text;
			return -1;
		}
		char *host = NULL;
		bool no_mx;
		unsigned port;
		if (hop == domain && domain[0] == '[') {
			/* Domain literal "user@[1.2.3.4]": that address. */
			if (route_parse_nexthop(domain, &host, &no_mx, &port) < 0)
				host = NULL;
		} else if (route_parse_nexthop(hop, &host, &no_mx, &port) < 0) {
			host = NULL;
		}
		if (host == NULL) {
			snprintf(error_text, sizeof(error_text), "bad nexthop \"%.100s\" for %s",
				 hop, tname);
			*error_r = error_text;
			return -1;
		}
		res->transport = ROUTE_SMTP;
		res->transport_name = xstrdup(tname);
		res->nexthop = host;
		res->no_mx = no_mx;
		res->port = port;
		return 0;
	}
	/* "retry:", "lmtp:", "pipe" services...: not in facteur.  A
	 * temporary failure keeps the mail while the administrator fixes
	 * the table. */
	snprintf(error_text, sizeof(error_text), "mail transport unavailable: \"%.60s\"", tname);
	*error_r = error_text;
	return -1;
}

int route_resolve(struct route *r, const char *address, struct route_result *res,
		  const char **error_r)
{
	char *local = NULL, *domain = NULL, *value = NULL;
	char *tname = NULL, *nexthop = NULL;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	res->port = 25;
	(void)addr_split(address, &local, &domain);
	if (local == NULL)
		local = xstrdup("");
	str_lower(local);
	if (domain != NULL) {
		str_lower(domain);
		size_t l = strlen(domain);
		if (l > 1 && domain[l - 1] == '.')
			domain[l - 1] = '\0';
	}
	bool is_literal = domain != NULL && domain[0] == '[';
	bool is_local = domain == NULL ||
			(!is_literal && addr_domain_in_list(domain, r->mydestination));
	bool is_virtual = !is_local && !is_literal &&
			  addr_domain_in_list(domain, r->virtual_mailbox_domains);
	bool is_relay = !is_local && !is_virtual && !is_literal &&
			route_relay_domain(r, domain);

	/* 1. Moved users. */
	if (r->relocated_maps != NULL) {
		int f = route_relocated(r, local, domain, is_local, &value, error_r);
		if (f < 0)
			goto out;
		if (f > 0) {
			struct buf t = BUF_INIT;
			struct strv v = strv_trim(strv_from_cstr(value));
			/* Postfix resolve.c: "5.1.6 User has moved to %s". */
			buf_printf(&t, "5.1.6 User has moved to %.*s", (int)v.len, v.ptr);
			res->transport = ROUTE_ERROR;
			res->transport_name = xstrdup("error");
			res->nexthop = buf_steal(&t);
			ret = 1;
			goto out;
		}
	}

	/* 2. The class's default. */
	const char *dflt = is_local ? "local" : is_virtual ? "virtual"
			 : is_relay ? r->relay_transport : r->default_transport;
	route_split_transport(dflt, &tname, &nexthop);
	bool explicit_hop = nexthop[0] != '\0';

	/* 3. transport_maps. */
	if (r->transport_maps != NULL) {
		int f = route_transport_lookup(r, local, domain, &value, error_r);
		if (f < 0)
			goto out;
		if (f > 0) {
			char *t2 = NULL, *h2 = NULL;
			route_split_transport(value, &t2, &h2);
			if (t2[0] != '\0') {
				/* A new transport: its nexthop is the table's,
				 * not the default transport's. */
				free(tname);
				tname = t2;
				free(nexthop);
				nexthop = xstrdup("");
				explicit_hop = false;
			} else {
				free(t2);
			}
			if (h2[0] != '\0') {
				free(nexthop);
				nexthop = h2;
				explicit_hop = true;
			} else {
				free(h2);
			}
		}
	}
	str_lower(tname);

	/* 4. Nexthop and transport kind. */
	if (route_fill(r, tname, nexthop, explicit_hop, domain, res, error_r) < 0) {
		route_result_deinit(res);
		goto out;
	}
	ret = 1;
out:
	free(value);
	free(tname);
	free(nexthop);
	free(local);
	free(domain);
	return ret;
}
