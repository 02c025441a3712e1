/* route_test.c - unit tests for mail/route.c: per-recipient routing with
 * inline: tables (the seeds' transport_maps example, relayhost forms,
 * error:/discard:, user@domain keys, "*", relay_domains, relocated_maps),
 * nexthop parsing with its limits, error text splitting and the failures
 * (bad relayhost, unknown transport, unreadable table). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mail/config.h"
#include "mail/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- route_parse_nexthop ---- */

static void test_parse_nexthop(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int ret;
		const char *host;
		bool no_mx;
		unsigned port;
	} rows[] = {
		{ "smtp.wanadoo.fr", 0, "smtp.wanadoo.fr", false, 25 },
		{ "SMTP.Wanadoo.FR", 0, "smtp.wanadoo.fr", false, 25 },
		{ "[relay.test]", 0, "relay.test", true, 25 },
		{ "[relay.test]:587", 0, "relay.test", true, 587 },
		{ "relay.test:2525", 0, "relay.test", false, 2525 },
		{ "[127.0.0.1]:2525", 0, "127.0.0.1", true, 2525 },
		{ "[::1]:2525", 0, "::1", true, 2525 },
		{ "[IPv6:2001:db8::1]", 0, "2001:db8::1", true, 25 },
		{ "[h]:1", 0, "h", true, 1 },          /* port min */
		{ "[h]:65535", 0, "h", true, 65535 },  /* port max */
		{ "[h]:65536", -1, NULL, false, 0 },   /* max+1 */
		{ "[h]:0", -1, NULL, false, 0 },       /* min-1 */
		{ "h:", -1, NULL, false, 0 },
		{ "h:smtp", -1, NULL, false, 0 },
		{ "h:25x", -1, NULL, false, 0 },
		{ "", -1, NULL, false, 0 },
		{ "[]", -1, NULL, false, 0 },
		{ "[h", -1, NULL, false, 0 },
		{ "[h]x", -1, NULL, false, 0 },
		{ "::1", -1, NULL, false, 0 },         /* IPv6 needs brackets */
		{ "a b", -1, NULL, false, 0 },
		{ "u@h", -1, NULL, false, 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *host = (char *)"unset";
		bool no_mx = false;
		unsigned port = 0;
		int r = route_parse_nexthop(rows[i].in, &host, &no_mx, &port);
		if (r != rows[i].ret)
			fail_msg("\"%s\": ret %d", rows[i].in, r);
		if (r == 0) {
			if (strcmp(host, rows[i].host) != 0 || no_mx != rows[i].no_mx ||
			    port != rows[i].port)
				fail_msg("\"%s\": %s %d %u", rows[i].in, host, no_mx, port);
			free(host);
		} else {
			assert_null(host);
		}
	}
}

static void test_error_split(void **state)
{
	(void)state;
	static const struct {
		const char *in, *status, *text;
	} rows[] = {
		{ "5.1.6 User has moved to x@y", "5.1.6", "User has moved to x@y" },
		{ "4.3.0 try later", "4.3.0", "try later" },
		{ "5.123.456 long", "5.123.456", "long" },
		{ "5.1234.5 too long subject", "5.0.0", "5.1234.5 too long subject" },
		{ "3.1.1 bad class", "5.0.0", "3.1.1 bad class" },
		{ "5.1.1", "5.1.1", "" },
		{ "5.1.1x text", "5.0.0", "5.1.1x text" },
		{ "no status", "5.0.0", "no status" },
		{ "", "5.0.0", "" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char status[16];
		const char *text = NULL;
		route_error_split(rows[i].in, "5.0.0", status, sizeof(status), &text);
		if (strcmp(status, rows[i].status) != 0 || strcmp(text, rows[i].text) != 0)
			fail_msg("\"%s\": \"%s\" \"%s\"", rows[i].in, status, text);
	}
}

/* ---- route_resolve ---- */

#define SEEDS_TRANSPORT                                                         \
	"inline:{ aol.com=smtp:smtp.wanadoo.fr, .aol.com=smtp:smtp.wanadoo.fr, " \
	"aol.fr=smtp:smtp.wanadoo.fr, .aol.fr=smtp:smtp.wanadoo.fr }"

struct setting {
	const char *name, *value;
};

static const struct {
	const char *name;
	struct setting set[6];
	const char *address;
	int ret;
	enum route_transport transport;
	const char *tname;
	const char *nexthop;
	bool no_mx;
	unsigned port;
} rows[] = {
	/* Classes. */
	{ "no domain is local", { { NULL, NULL } }, "fred", 1, ROUTE_LOCAL, "local",
	  "mail.truc.test", false, 25 },
	{ "mydestination", { { NULL, NULL } }, "fred@truc.test", 1, ROUTE_LOCAL, "local",
	  "mail.truc.test", false, 25 },
	{ "mydestination case and trailing dot", { { NULL, NULL } }, "fred@TRUC.Test.", 1,
	  ROUTE_LOCAL, "local", "mail.truc.test", false, 25 },
	{ "localhost", { { NULL, NULL } }, "root@localhost", 1, ROUTE_LOCAL, "local",
	  "mail.truc.test", false, 25 },
	{ "virtual", { { "virtual_mailbox_domains", "virt.test" } }, "a@Virt.Test", 1,
	  ROUTE_VIRTUAL, "virtual", "virt.test", false, 25 },
	{ "remote: default_transport, MX", { { NULL, NULL } }, "marc@Machin.Test", 1, ROUTE_SMTP,
	  "smtp", "machin.test", false, 25 },
	{ "subdomain of mydestination is remote", { { NULL, NULL } }, "x@sub.truc.test", 1,
	  ROUTE_SMTP, "smtp", "sub.truc.test", false, 25 },
	{ "domain literal", { { NULL, NULL } }, "x@[192.0.2.1]", 1, ROUTE_SMTP, "smtp",
	  "192.0.2.1", true, 25 },

	/* The seeds' transport_maps: aol through the provider, others direct. */
	{ "seeds: aol.com", { { "transport_maps", SEEDS_TRANSPORT } }, "x@aol.com", 1,
	  ROUTE_SMTP, "smtp", "smtp.wanadoo.fr", false, 25 },
	{ "seeds: sub.aol.com", { { "transport_maps", SEEDS_TRANSPORT } }, "x@mail.AOL.com", 1,
	  ROUTE_SMTP, "smtp", "smtp.wanadoo.fr", false, 25 },
	{ "seeds: deep.sub.aol.fr", { { "transport_maps", SEEDS_TRANSPORT } },
	  "x@a.b.aol.fr", 1, ROUTE_SMTP, "smtp", "smtp.wanadoo.fr", false, 25 },
	{ "seeds: others direct", { { "transport_maps", SEEDS_TRANSPORT } }, "x@machin.test", 1,
	  ROUTE_SMTP, "smtp", "machin.test", false, 25 },
	{ "seeds: notaol.com direct", { { "transport_maps", SEEDS_TRANSPORT } },
	  "x@notaol.com", 1, ROUTE_SMTP, "smtp", "notaol.com", false, 25 },
	{ "seeds: local stays local", { { "transport_maps", SEEDS_TRANSPORT } },
	  "fred@truc.test", 1, ROUTE_LOCAL, "local", "mail.truc.test", false, 25 },
	{ "no .domain entry: subdomain not matched",
	  { { "transport_maps", "inline:{ aol.com=smtp:[gw.test] }" } }, "x@sub.aol.com", 1,
	  ROUTE_SMTP, "smtp", "sub.aol.com", false, 25 },
	{ "parent_domain_matches_subdomains lists transport_maps",
	  { { "transport_maps", "inline:{ aol.com=smtp:[gw.test] }" },
	    { "parent_domain_matches_subdomains", "transport_maps" } },
	  "x@sub.aol.com", 1, ROUTE_SMTP, "smtp", "gw.test", true, 25 },

	/* Keys and wildcard. */
	{ "user@domain key", { { "transport_maps", "inline:{ vip@machin.test=smtp:[vip.test]:2525, machin.test=smtp:[all.test] }" } },
	  "vip@machin.test", 1, ROUTE_SMTP, "smtp", "vip.test", true, 2525 },
	{ "user+ext@domain falls back to user@domain",
	  { { "transport_maps", "inline:{ vip@machin.test=smtp:[vip.test] }" },
	    { "recipient_delimiter", "+" } },
	  "vip+lists@machin.test", 1, ROUTE_SMTP, "smtp", "vip.test", true, 25 },
	{ "other user: domain key", { { "transport_maps", "inline:{ vip@machin.test=smtp:[vip.test]:2525, machin.test=smtp:[all.test] }" } },
	  "bob@machin.test", 1, ROUTE_SMTP, "smtp", "all.test", true, 25 },
	{ "* wildcard", { { "transport_maps", "inline:{ *=smtp:[smarthost.test]:587, aol.com=smtp: }" } },
	  "x@machin.test", 1, ROUTE_SMTP, "smtp", "smarthost.test", true, 587 },
	{ "* wildcard also routes local mail (Postfix)",
	  { { "transport_maps", "inline:{ *=smtp:[smarthost.test] }" } }, "fred@truc.test", 1,
	  ROUTE_SMTP, "smtp", "smarthost.test", true, 25 },
	{ "specific entry wins over *", { { "transport_maps", "inline:{ *=smtp:[smarthost.test]:587, aol.com=smtp: }" } },
	  "x@aol.com", 1, ROUTE_SMTP, "smtp", "aol.com", false, 25 },
	{ "empty transport keeps the default, nexthop given",
	  { { "transport_maps", "inline:{ machin.test=:[gw.test]:26 }" } }, "x@machin.test", 1,
	  ROUTE_SMTP, "smtp", "gw.test", true, 26 },
	{ "relay: transport", { { "transport_maps", "inline:{ machin.test=relay:gw.test:26 }" } },
	  "x@machin.test", 1, ROUTE_SMTP, "relay", "gw.test", false, 26 },
	{ "local: for a remote domain", { { "transport_maps", "inline:{ machin.test=local: }" } },
	  "x@machin.test", 1, ROUTE_LOCAL, "local", "mail.truc.test", false, 25 },
	{ "error: with status", { { "transport_maps", "inline:{ { machin.test=error:5.1.1 no such domain here } }" } },
	  "x@machin.test", 1, ROUTE_ERROR, "error", "5.1.1 no such domain here", false, 25 },
	{ "error: without text", { { "transport_maps", "inline:{ machin.test=error: }" } },
	  "x@machin.test", 1, ROUTE_ERROR, "error", "5.0.0 Address is undeliverable", false, 25 },
	{ "discard:", { { "transport_maps", "inline:{ { machin.test=discard:spam trap } }" } },
	  "x@machin.test", 1, ROUTE_DISCARD, "discard", "spam trap", false, 25 },
	{ "unknown transport: temporary failure",
	  { { "transport_maps", "inline:{ machin.test=lmtp:unix:/x }" } }, "x@machin.test", -1,
	  ROUTE_LOCAL, NULL, NULL, false, 0 },
	{ "retry: temporary failure", { { "transport_maps", "inline:{ machin.test=retry: }" } },
	  "x@machin.test", -1, ROUTE_LOCAL, NULL, NULL, false, 0 },
	{ "bad nexthop in table: temporary failure",
	  { { "transport_maps", "inline:{ machin.test=smtp:[gw.test]:99999 }" } },
	  "x@machin.test", -1, ROUTE_LOCAL, NULL, NULL, false, 0 },

	/* relayhost forms. */
	{ "relayhost host (MX lookup)", { { "relayhost", "smtp.wanadoo.fr" } }, "x@machin.test",
	  1, ROUTE_SMTP, "smtp", "smtp.wanadoo.fr", false, 25 },
	{ "relayhost [host]", { { "relayhost", "[smtp.wanadoo.fr]" } }, "x@machin.test", 1,
	  ROUTE_SMTP, "smtp", "smtp.wanadoo.fr", true, 25 },
	{ "relayhost [host]:port", { { "relayhost", " [127.0.0.1]:2526 " } }, "x@machin.test", 1,
	  ROUTE_SMTP, "smtp", "127.0.0.1", true, 2526 },
	{ "relayhost host:port", { { "relayhost", "relay.test:2527" } }, "x@machin.test", 1,
	  ROUTE_SMTP, "smtp", "relay.test", false, 2527 },
	{ "relayhost not for local mail", { { "relayhost", "[relay.test]" } }, "fred@truc.test",
	  1, ROUTE_LOCAL, "local", "mail.truc.test", false, 25 },
	{ "transport_maps nexthop wins over relayhost",
	  { { "relayhost", "[relay.test]" }, { "transport_maps", SEEDS_TRANSPORT } },
	  "x@aol.com", 1, ROUTE_SMTP, "smtp", "smtp.wanadoo.fr", false, 25 },
	{ "transport_maps without nexthop keeps relayhost",
	  { { "relayhost", "[relay.test]" }, { "transport_maps", "inline:{ aol.com=smtp: }" } },
	  "x@aol.com", 1, ROUTE_SMTP, "smtp", "relay.test", true, 25 },
	{ "default_transport nexthop wins over relayhost",
	  { { "relayhost", "[relay.test]" }, { "default_transport", "smtp:[gw.test]:26" } },
	  "x@machin.test", 1, ROUTE_SMTP, "smtp", "gw.test", true, 26 },
	{ "default_transport error:", { { "default_transport", "error:4.7.1 outbound disabled" } },
	  "x@machin.test", 1, ROUTE_ERROR, "error", "4.7.1 outbound disabled", false, 25 },

	/* relay_domains. */
	{ "relay_domains: relay_transport", { { "relay_domains", "client.test" } },
	  "x@client.test", 1, ROUTE_SMTP, "relay", "client.test", false, 25 },
	{ "relay_domains subdomain (Postfix default list)", { { "relay_domains", "client.test" } },
	  "x@a.client.test", 1, ROUTE_SMTP, "relay", "a.client.test", false, 25 },
	{ "relay_domains subdomain not matched when not listed",
	  { { "relay_domains", "client.test" }, { "parent_domain_matches_subdomains", "" } },
	  "x@a.client.test", 1, ROUTE_SMTP, "smtp", "a.client.test", false, 25 },
	{ "relay_domains .domain", { { "relay_domains", ".client.test" },
	    { "parent_domain_matches_subdomains", "" } },
	  "x@a.client.test", 1, ROUTE_SMTP, "relay", "a.client.test", false, 25 },
	{ "relay_transport with nexthop", { { "relay_domains", "client.test" },
	    { "relay_transport", "relay:[inside.test]:2525" } },
	  "x@client.test", 1, ROUTE_SMTP, "relay", "inside.test", true, 2525 },
	{ "relay_domains with relayhost", { { "relay_domains", "client.test" },
	    { "relayhost", "[relay.test]" } },
	  "x@client.test", 1, ROUTE_SMTP, "relay", "relay.test", true, 25 },

	/* relocated_maps. */
	{ "relocated user@domain", { { "relocated_maps", "inline:{ old@truc.test=new@machin.test }" } },
	  "Old@truc.test", 1, ROUTE_ERROR, "error", "5.1.6 User has moved to new@machin.test",
	  false, 25 },
	{ "relocated bare user for a local domain",
	  { { "relocated_maps", "inline:{ old=new@machin.test }" } }, "old@truc.test", 1,
	  ROUTE_ERROR, "error", "5.1.6 User has moved to new@machin.test", false, 25 },
	{ "relocated bare user not for a remote domain",
	  { { "relocated_maps", "inline:{ old=new@machin.test }" } }, "old@other.test", 1,
	  ROUTE_SMTP, "smtp", "other.test", false, 25 },
	{ "relocated @domain", { { "relocated_maps", "inline:{ @oldco.test=newco.test }" } },
	  "anyone@oldco.test", 1, ROUTE_ERROR, "error", "5.1.6 User has moved to newco.test",
	  false, 25 },
	{ "relocated with extension", { { "relocated_maps", "inline:{ old@truc.test=new@x.test }" },
	    { "recipient_delimiter", "+" } },
	  "old+foo@truc.test", 1, ROUTE_ERROR, "error", "5.1.6 User has moved to new@x.test",
	  false, 25 },
	{ "relocated wins over transport_maps",
	  { { "relocated_maps", "inline:{ old@aol.com=new@x.test }" },
	    { "transport_maps", SEEDS_TRANSPORT } },
	  "old@aol.com", 1, ROUTE_ERROR, "error", "5.1.6 User has moved to new@x.test", false,
	  25 },
	{ "relocated miss", { { "relocated_maps", "inline:{ old@truc.test=new@machin.test }" } },
	  "fred@truc.test", 1, ROUTE_LOCAL, "local", "mail.truc.test", false, 25 },
};

static struct config *base_config(void)
{
	struct config *cfg = config_new();
	config_set(cfg, "myhostname", "mail.truc.test");
	config_set(cfg, "mydomain", "truc.test");
	config_set(cfg, "mydestination", "$myhostname, $mydomain, localhost");
	return cfg;
}

static void test_resolve(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct config *cfg = base_config();
		for (size_t j = 0; j < 6 && rows[i].set[j].name != NULL; j++)
			config_set(cfg, rows[i].set[j].name, rows[i].set[j].value);
		const char *error = NULL;
		struct route *r = route_new(cfg, &error);
		if (r == NULL)
			fail_msg("%s: route_new: %s", rows[i].name, error);
		struct route_result res;
		error = NULL;
		int ret = route_resolve(r, rows[i].address, &res, &error);
		if (ret != rows[i].ret)
			fail_msg("%s: ret %d (%s)", rows[i].name, ret, error ? error : "");
		if (ret == 1) {
			if (res.transport != rows[i].transport ||
			    strcmp(res.transport_name, rows[i].tname) != 0 ||
			    strcmp(res.nexthop, rows[i].nexthop) != 0 ||
			    res.no_mx != rows[i].no_mx || res.port != rows[i].port)
				fail_msg("%s: got %d %s %s no_mx=%d port=%u", rows[i].name,
					 res.transport, res.transport_name, res.nexthop, res.no_mx,
					 res.port);
			route_result_deinit(&res);
			assert_null(res.nexthop);
		} else {
			assert_non_null(error);
			assert_null(res.nexthop);
		}
		route_free(&r);
		assert_null(r);
		config_free(&cfg);
	}
}

static void test_new_errors(void **state)
{
	(void)state;
	static const struct setting bad[] = {
		{ "relayhost", "[unclosed" },
		{ "relayhost", "host:notaport" },
		{ "transport_maps", "nosuchtype:/x" },
		{ "relocated_maps", "hash:/nonexistent/facteur-route-test" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config *cfg = base_config();
		config_set(cfg, bad[i].name, bad[i].value);
		const char *error = NULL;
		struct route *r = route_new(cfg, &error);
		if (r != NULL)
			fail_msg("%s = %s accepted", bad[i].name, bad[i].value);
		assert_non_null(error);
		config_free(&cfg);
	}
	struct route *none = NULL;
	route_free(&none); /* NULL: no-op */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_nexthop),
		cmocka_unit_test(test_error_split),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_new_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
