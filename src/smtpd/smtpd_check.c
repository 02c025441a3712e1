/* smtpd_check.c - what the SMTP server allows: the mynetworks client list
 * (IPv4/IPv6 CIDR), the relay decision and the recipient validation done at
 * RCPT time.
 *
 * Called by smtpd_session.c (RCPT, VRFY) and smtpd.c (configuration).  The
 * decisions follow Postfix's defaults: smtpd_relay_restrictions =
 * permit_mynetworks, ..., reject/defer_unauth_destination, and
 * smtpd_reject_unlisted_recipient = yes with local_recipient_maps =
 * unix:passwd.byname $alias_maps.  When unsure (a table cannot be read) the
 * answer is a temporary failure: that never loses mail.
 */
#include "smtpd/smtpd_int.h"

#include <arpa/inet.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/addr.h"
#include "mail/route.h"
#include "mail/table.h"

/* ---- mynetworks ---- */

/* Parse "a.b.c.d", "a.b.c.d/n", "[v6]", "[v6]/n", "v6/n" into the mapped
 * form.  Returns 0 or -1. */
static int net_parse_item(const char *item, struct smtpd_net *net)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *slash = strchr(item, '/');
	size_t hlen = slash != NULL ? (size_t)(slash - item) : strlen(item);
	const char *h = item;

	if (hlen >= 2 && h[0] == '[') {
		if (h[hlen - 1] != ']')
			return -1;
		h++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';

	unsigned max;
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, host, &a4) == 1) {
		memset(net->addr, 0, 10);
		net->addr[10] = 0xff;
		net->addr[11] = 0xff;
		memcpy(net->addr + 12, &a4, 4);
		max = 32;
	} else if (inet_pton(AF_INET6, host, &a6) == 1) {
		memcpy(net->addr, &a6, 16);
		max = 128;
	} else {
		return -1;
	}
	uint64_t prefix = max;
	if (slash != NULL && str_to_u64(slash + 1, 0, max, &prefix) < 0)
		return -1;
	net->prefix = (unsigned)prefix + (128 - max);
	/* Clear the host bits so that matching compares networks. */
	for (unsigned bit = net->prefix; bit < 128; bit++)
		net->addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
	return 0;
}

int smtpd_nets_parse(struct smtpd_nets *nets, const char *spec, const char **error_r)
{
	char **items;
	size_t n = str_list_split(spec, &items);
	int ret = 0;

	nets->items = n > 0 ? xreallocarray(NULL, n, sizeof(*nets->items)) : NULL;
	nets->count = 0;
	for (size_t i = 0; i < n; i++) {
		if (net_parse_item(items[i], &nets->items[nets->count]) < 0) {
			/* Tables, host names and "!" negation are not
			 * supported: the item grants nothing. */
			log_warning("mynetworks: ignoring unsupported item \"%s\"", items[i]);
			*error_r = "unsupported mynetworks item";
			ret = -1;
			continue;
		}
		nets->count++;
	}
	str_list_free(&items);
	return ret;
}

void smtpd_nets_deinit(struct smtpd_nets *nets)
{
	free(nets->items);
	nets->items = NULL;
	nets->count = 0;
}

bool smtpd_nets_match(const struct smtpd_nets *nets, const char *addr)
{
	struct smtpd_net a;

	if (strchr(addr, '/') != NULL || net_parse_item(addr, &a) < 0)
		return false;
	for (size_t i = 0; i < nets->count; i++) {
		const struct smtpd_net *n = &nets->items[i];
		unsigned full = n->prefix / 8, rest = n->prefix % 8;
		if (memcmp(a.addr, n->addr, full) != 0)
			continue;
		if (rest != 0) {
			uint8_t mask = (uint8_t)(0xff00u >> rest);
			if ((a.addr[full] & mask) != n->addr[full])
				continue;
		}
		return true;
	}
	return false;
}

/* ---- recipients ---- */

static bool domain_in(const char *domain, char **list)
{
	return list != NULL && addr_domain_in_list(domain, list);
}

static int maps_lookup(struct table_list *l, bool broken, const char *key)
{
	char *value = NULL;
	const char *error = NULL;

	if (broken)
		return -1;
	if (l == NULL)
		return 0;
	int r = table_list_lookup(l, key, &value, &error);
	free(value);
	if (r < 0)
		log_warning("table lookup of \"%s\": %s", key, error != NULL ? error : "error");
	return r;
}

/* Is local (already lower-cased) a local recipient?  As Postfix: it must
 * be found in local_recipient_maps (default: the system users and the
 * aliases); an empty local_recipient_maps, or
 * smtpd_reject_unlisted_recipient = no, accepts every local part.  1, 0 or
 * -1.  Tried with and without the address extension. */
static int local_user_exists(const struct smtpd_conf *conf, const char *local)
{
	char *base = NULL;

	if (strcmp(local, "postmaster") == 0)
		return 1;
	if (!conf->reject_unlisted_recipient ||
	    (conf->local_recipient_maps == NULL && !conf->local_recipient_maps_broken))
		return 1;
	if (conf->recipient_delimiter[0] != '\0') {
		size_t n = strcspn(local, conf->recipient_delimiter);
		if (local[n] != '\0' && n > 0)
			base = xstrndup(local, n);
	}
	int r = 0;
	for (int pass = 0; pass < 2 && r == 0; pass++) {
		const char *key = pass == 0 ? local : base;
		if (key == NULL)
			break;
		r = maps_lookup(conf->local_recipient_maps, conf->local_recipient_maps_broken, key);
	}
	free(base);
	return r;
}

/* Virtual mailbox domain: the full address (or the domain catch-all
 * "@domain") in virtual_mailbox_maps or virtual_alias_maps. */
static int virtual_user_exists(const struct smtpd_conf *conf, const char *addr,
			       const char *domain)
{
	struct buf catchall = BUF_INIT;
	int r;

	buf_printf(&catchall, "@%s", domain);
	r = maps_lookup(conf->virtual_mailbox_maps, conf->virtual_mailbox_maps_broken, addr);
	if (r == 0)
		r = maps_lookup(conf->virtual_mailbox_maps, conf->virtual_mailbox_maps_broken,
				buf_cstr(&catchall));
	if (r == 0)
		r = maps_lookup(conf->virtual_alias_maps, false, addr);
	buf_deinit(&catchall);
	return r;
}

/* relocated_maps (Postfix relocated(5)): keys user@domain, user (local
 * domains only), @domain, each also without the address extension.  On
 * 1, *new_r is the new address (caller frees).  1, 0 or -1. */
static int relocated_lookup(const struct smtpd_conf *conf, const char *local,
			    const char *domain, bool is_local, char **new_r)
{
	char *base = NULL;
	struct buf key = BUF_INIT;
	int r = 0;

	*new_r = NULL;
	if (conf->relocated_maps_broken)
		return -1;
	if (conf->relocated_maps == NULL)
		return 0;
	if (conf->recipient_delimiter[0] != '\0') {
		size_t n = strcspn(local, conf->recipient_delimiter);
		if (local[n] != '\0' && n > 0)
			base = xstrndup(local, n);
	}
	for (int step = 0; step < 5 && r == 0; step++) {
		const char *user = (step == 1 || step == 3) ? base : local;
		if (user == NULL)
			continue;
		buf_reset(&key);
		if (step <= 1)
			buf_printf(&key, "%s@%s", user, domain);
		else if (step <= 3 && is_local)
			buf_append_str(&key, user);
		else if (step == 4)
			buf_printf(&key, "@%s", domain);
		else
			continue;
		const char *error = NULL;
		r = table_list_lookup(conf->relocated_maps, buf_cstr(&key), new_r, &error);
		if (r < 0)
			log_warning("relocated_maps lookup of \"%s\": %s", buf_cstr(&key),
				    error != NULL ? error : "error");
	}
	buf_deinit(&key);
	free(base);
	return r;
}

static enum smtpd_rcpt_verdict rcpt_refuse(struct smtpd_rcpt_check *res, unsigned code,
					   const char *status, const char *addr,
					   const char *why)
{
	res->code = code;
	res->status = status;
	buf_reset(&res->text);
	buf_printf(&res->text, "<%s>: %s", addr, why);
	return code >= 500 ? SMTPD_RCPT_REJECT : SMTPD_RCPT_TEMPFAIL;
}

/* Existence of one rewritten address in its class. */
static enum smtpd_rcpt_verdict rcpt_exists(const struct smtpd_conf *conf, const char *given,
					   const char *addr, struct smtpd_rcpt_check *res)
{
	char *local = NULL, *domain = NULL;
	enum smtpd_rcpt_verdict v = SMTPD_RCPT_OK;

	if (!addr_split(addr, &local, &domain)) {
		free(local);
		free(domain);
		return SMTPD_RCPT_OK;
	}
	str_lower(local);
	str_lower(domain);
	if (domain_in(domain, conf->mydestination)) {
		int r = local_user_exists(conf, local);
		if (r < 0)
			v = rcpt_refuse(res, 451, "4.3.0", given, "Temporary lookup failure");
		else if (r == 0)
			v = rcpt_refuse(res, conf->unknown_local_reject_code,
					conf->unknown_local_reject_code >= 500 ? "5.1.1" : "4.1.1",
					given,
					"Recipient address rejected: User unknown in local recipient table");
	} else if (domain_in(domain, conf->virtual_mailbox_domains)) {
		struct buf key = BUF_INIT;
		buf_printf(&key, "%s@%s", local, domain);
		int r = virtual_user_exists(conf, buf_cstr(&key), domain);
		buf_deinit(&key);
		if (r < 0)
			v = rcpt_refuse(res, 451, "4.3.0", given, "Temporary lookup failure");
		else if (r == 0)
			v = rcpt_refuse(res, 550, "5.1.1", given,
					"Recipient address rejected: User unknown in virtual mailbox table");
	}
	free(local);
	free(domain);
	return v;
}

enum smtpd_rcpt_verdict smtpd_check_rcpt(const struct smtpd_conf *conf, const char *addr,
					 bool client_in_mynetworks, struct smtpd_rcpt_check *res)
{
	const char *error = NULL;

	res->final = NULL;
	res->code = 0;
	res->status = NULL;
	buf_init(&res->text);

	/* RFC 5321 4.5.1: "postmaster" without a domain is always accepted. */
	bool is_postmaster = str_casecmp(addr, "postmaster") == 0;

	char *q = addr_qualify(addr, conf->myorigin);
	char *local = NULL, *domain = NULL;
	(void)addr_split(q, &local, &domain);
	if (domain == NULL) {
		free(local);
		free(q);
		return rcpt_refuse(res, 501, "5.1.3", addr, "Bad recipient address syntax");
	}
	str_lower(domain);

	bool is_literal = domain[0] == '[';
	bool is_local = !is_literal && domain_in(domain, conf->mydestination);
	bool is_virtual = !is_literal && !is_local &&
			  domain_in(domain, conf->virtual_mailbox_domains);
	bool is_relay = !is_literal && !is_local && !is_virtual &&
			(conf->route != NULL ? route_relay_domain(conf->route, domain)
					     : domain_in(domain, conf->relay_domains));
	/* facteur applies neither the percent hack nor bang paths: a routing
	 * character in the local part of one of our domains would otherwise
	 * become an open relay through a later rewriting step. */
	bool routed = addr_has_routing_chars(local);
	/* Moved users (Postfix: the address resolves to the error transport
	 * with "5.1.6 User has moved to ...", rejected by
	 * reject_unlisted_recipient).  Its verdict comes after the relay
	 * decision, so the table tells nothing to a client that may not
	 * relay. */
	char *moved = NULL;
	int moved_r = 0;
	if (conf->reject_unlisted_recipient && !is_postmaster) {
		str_lower(local);
		moved_r = relocated_lookup(conf, local, domain, is_local, &moved);
	}
	free(local);
	free(domain);

	if (!is_postmaster && !client_in_mynetworks &&
	    ((!is_local && !is_virtual && !is_relay) || routed)) {
		free(moved);
		free(q);
		return rcpt_refuse(res, conf->relay_reject_code,
				   conf->relay_reject_code >= 500 ? "5.7.1" : "4.7.1", addr,
				   "Relay access denied");
	}

	if (moved_r != 0) {
		enum smtpd_rcpt_verdict mv;
		if (moved_r < 0) {
			mv = rcpt_refuse(res, 451, "4.3.0", addr, "Temporary lookup failure");
		} else {
			struct buf why = BUF_INIT;
			struct strv v = strv_trim(strv_from_cstr(moved));
			buf_printf(&why, "Recipient address rejected: User has moved to %.*s",
				   (int)v.len, v.ptr);
			mv = rcpt_refuse(res, 550, "5.1.6", addr, buf_cstr(&why));
			buf_deinit(&why);
		}
		free(moved);
		free(q);
		return mv;
	}

	char **final = NULL;
	if (cleanup_rewrite_recipient(&conf->cleanup, q, &final, &error) < 0) {
		log_warning("rewriting recipient <%s>: %s", q, error != NULL ? error : "error");
		free(q);
		return rcpt_refuse(res, 451, "4.3.0", addr, "Temporary lookup failure");
	}

	enum smtpd_rcpt_verdict v = SMTPD_RCPT_OK;
	size_t n = 0;
	while (final[n] != NULL)
		n++;
	/* A virtual alias that expanded to several addresses exists by
	 * definition; Postfix checks only the address the client gave. */
	if (!is_postmaster && n == 1 && !is_relay)
		v = rcpt_exists(conf, addr, final[0], res);
	else if (n == 0)
		v = rcpt_refuse(res, 451, "4.3.0", addr, "Temporary lookup failure");
	if (is_relay && v == SMTPD_RCPT_OK && conf->relay_recipient_maps != NULL) {
		int r = maps_lookup(conf->relay_recipient_maps, false, q);
		if (r < 0)
			v = rcpt_refuse(res, 451, "4.3.0", addr, "Temporary lookup failure");
		else if (r == 0)
			v = rcpt_refuse(res, 550, "5.1.1", addr,
					"Recipient address rejected: User unknown in relay recipient table");
	}
	free(q);
	if (v != SMTPD_RCPT_OK) {
		str_list_free(&final);
		return v;
	}
	res->final = final;
	return SMTPD_RCPT_OK;
}

void smtpd_rcpt_check_deinit(struct smtpd_rcpt_check *res)
{
	if (res->final != NULL)
		str_list_free(&res->final);
	buf_deinit(&res->text);
}
