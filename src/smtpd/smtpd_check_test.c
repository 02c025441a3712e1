/* smtpd_check_test.c - unit tests for the SMTP server's checks: mynetworks
 * matching (IPv4/IPv6 CIDR rows, prefix limits) and the RCPT decision
 * (local, virtual, relay, postmaster, lookup failure, relocated_maps) with
 * inline: tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "lib/str.h"
#include "mail/table.h"
#include "smtpd/smtpd_int.h"

static void test_nets_match(void **state)
{
	(void)state;
	static const struct {
		const char *name, *nets, *addr;
		bool match;
	} rows[] = {
		{ "v4 in /8", "127.0.0.0/8", "127.1.2.3", true },
		{ "v4 out of /8", "127.0.0.0/8", "128.0.0.1", false },
		{ "v4 host /32", "127.0.0.1/32", "127.0.0.1", true },
		{ "v4 host /32 other", "127.0.0.1/32", "127.0.0.7", false },
		{ "v4 bare host", "10.1.2.3", "10.1.2.3", true },
		{ "v4 bare host other", "10.1.2.3", "10.1.2.4", false },
		{ "v4 /0", "0.0.0.0/0", "203.0.113.9", true },
		{ "v4 /31 lower", "192.168.1.0/31", "192.168.1.1", true },
		{ "v4 /31 upper", "192.168.1.0/31", "192.168.1.2", false },
		{ "v4 /23 non-octet", "10.0.2.0/23", "10.0.3.255", true },
		{ "v4 /23 non-octet out", "10.0.2.0/23", "10.0.4.0", false },
		{ "v4 host bits ignored", "10.9.9.9/8", "10.1.1.1", true },
		{ "v4 list second item", "127.0.0.0/8 [::1]/128 10.0.0.0/8", "10.200.0.1", true },
		{ "v4 list comma", "192.168.0.0/16,10.0.0.0/8", "10.0.0.1", true },
		{ "v4 mapped client", "10.0.0.0/8", "::ffff:10.1.2.3", true },
		{ "v6 bracketed", "[::1]/128", "::1", true },
		{ "v6 bracketed other", "[::1]/128", "::2", false },
		{ "v6 unbracketed /64", "2001:db8::/64", "2001:db8::42", true },
		{ "v6 /64 out", "2001:db8::/64", "2001:db8:0:1::1", false },
		{ "v6 /127", "[2001:db8::]/127", "2001:db8::1", true },
		{ "v6 /127 out", "[2001:db8::]/127", "2001:db8::2", false },
		{ "v6 bare host", "[fe80::1]", "fe80::1", true },
		{ "v4 net never matches v6", "0.0.0.0/0", "::1", false },
		{ "v6 /0 matches all", "[::]/0", "127.0.0.1", true },
		{ "garbage client", "127.0.0.0/8", "not-an-address", false },
		{ "empty list", "", "127.0.0.1", false },
		{ "bad prefix ignored", "10.0.0.0/33 127.0.0.1", "10.0.0.1", false },
		{ "bad prefix other ok", "10.0.0.0/33 127.0.0.1", "127.0.0.1", true },
		{ "hostname ignored", "localhost", "127.0.0.1", false },
		{ "table ignored", "hash:/etc/x", "127.0.0.1", false },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smtpd_nets nets;
		const char *error = NULL;
		(void)smtpd_nets_parse(&nets, rows[i].nets, &error);
		if (smtpd_nets_match(&nets, rows[i].addr) != rows[i].match)
			fail_msg("row %s: expected %d", rows[i].name, rows[i].match);
		smtpd_nets_deinit(&nets);
	}
}

static void test_nets_prefix_limits(void **state)
{
	(void)state;
	static const struct {
		const char *spec;
		int ret;
		size_t count;
	} rows[] = {
		{ "10.0.0.0/31", 0, 1 }, { "10.0.0.0/32", 0, 1 },   { "10.0.0.0/33", -1, 0 },
		{ "[::]/127", 0, 1 },	 { "[::]/128", 0, 1 },	    { "[::]/129", -1, 0 },
		{ "10.0.0.0/", -1, 0 },	 { "10.0.0.0/x", -1, 0 },   { "[::1", -1, 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smtpd_nets nets;
		const char *error = NULL;
		assert_int_equal(smtpd_nets_parse(&nets, rows[i].spec, &error), rows[i].ret);
		assert_int_equal(nets.count, rows[i].count);
		smtpd_nets_deinit(&nets);
	}
}

static void conf_init(struct smtpd_conf *c, bool broken_aliases)
{
	const char *error = NULL;
	memset(c, 0, sizeof(*c));
	c->myhostname = "mail.example.test";
	c->myorigin = "mail.example.test";
	c->mydomain = "example.test";
	c->recipient_delimiter = "+";
	c->unknown_local_reject_code = 550;
	c->relay_reject_code = 554;
	c->recipient_limit = 1000;
	(void)str_list_split("mail.example.test, localhost", &c->mydestination);
	(void)str_list_split("virtual.test", &c->virtual_mailbox_domains);
	(void)str_list_split("relayed.test, moved.test", &c->relay_domains);
	c->alias_maps = table_list_open("inline:{ toto=root, postmaster=root }", &error);
	assert_non_null(c->alias_maps);
	c->alias_maps_broken = broken_aliases;
	/* Postfix's default: the system users, then the aliases. */
	c->local_recipient_maps = table_list_open(
		"proxy:unix:passwd.byname, inline:{ toto=root, postmaster=root }", &error);
	assert_non_null(c->local_recipient_maps);
	c->local_recipient_maps_broken = broken_aliases;
	c->reject_unlisted_recipient = true;
	c->virtual_mailbox_maps = table_list_open("inline:{ alice@virtual.test=alice/ }", &error);
	c->virtual_alias_maps =
		table_list_open("inline:{ sales@virtual.test=alice@virtual.test }", &error);
	assert_non_null(c->virtual_mailbox_maps);
	assert_non_null(c->virtual_alias_maps);
	c->relocated_maps = table_list_open(
		"inline:{ old@mail.example.test=new@elsewhere.test, gone=far@away.test, "
		"@moved.test=newco.test, someone@nowhere.test=x@y.test }",
		&error);
	assert_non_null(c->relocated_maps);
	c->relocated_maps_broken = broken_aliases;
	smtpd_conf_wire_cleanup(c);
	c->cleanup.mail_name = "facteur";
}

static void conf_fini(struct smtpd_conf *c)
{
	str_list_free(&c->mydestination);
	str_list_free(&c->virtual_mailbox_domains);
	str_list_free(&c->relay_domains);
	table_list_free(&c->alias_maps);
	table_list_free(&c->local_recipient_maps);
	table_list_free(&c->virtual_mailbox_maps);
	table_list_free(&c->virtual_alias_maps);
	table_list_free(&c->relocated_maps);
}

static void test_rcpt_decision(void **state)
{
	(void)state;
	static const struct {
		const char *name, *addr;
		bool mynet, broken;
		enum smtpd_rcpt_verdict v;
		unsigned code;
		const char *text; /* refusal text or first final address */
	} rows[] = {
		{ "bare alias (seeds)", "toto", false, false, SMTPD_RCPT_OK, 0,
		  "toto@mail.example.test" },
		{ "system user", "root@mail.example.test", false, false, SMTPD_RCPT_OK, 0,
		  "root@mail.example.test" },
		{ "extension stripped", "root+box@localhost", false, false, SMTPD_RCPT_OK, 0,
		  "root+box@localhost" },
		{ "domain case", "root@MAIL.Example.TEST", false, false, SMTPD_RCPT_OK, 0, NULL },
		{ "unknown local", "nobody-here@mail.example.test", true, false, SMTPD_RCPT_REJECT,
		  550,
		  "<nobody-here@mail.example.test>: Recipient address rejected: User unknown in local recipient table" },
		{ "virtual user", "alice@virtual.test", false, false, SMTPD_RCPT_OK, 0,
		  "alice@virtual.test" },
		{ "virtual alias", "sales@virtual.test", false, false, SMTPD_RCPT_OK, 0,
		  "alice@virtual.test" },
		{ "unknown virtual", "carol@virtual.test", false, false, SMTPD_RCPT_REJECT, 550,
		  "<carol@virtual.test>: Recipient address rejected: User unknown in virtual mailbox table" },
		{ "relay denied", "someone@elsewhere.test", false, false, SMTPD_RCPT_REJECT, 554,
		  "<someone@elsewhere.test>: Relay access denied" },
		{ "relay from mynetworks", "someone@elsewhere.test", true, false, SMTPD_RCPT_OK, 0,
		  "someone@elsewhere.test" },
		{ "relay_domains", "x@relayed.test", false, false, SMTPD_RCPT_OK, 0, NULL },
		{ "percent hack refused", "a%elsewhere.test@mail.example.test", false, false,
		  SMTPD_RCPT_REJECT, 554, NULL },
		{ "bare postmaster", "postmaster", false, true, SMTPD_RCPT_OK, 0, NULL },
		{ "lookup failure", "nobody-here@mail.example.test", false, true,
		  SMTPD_RCPT_TEMPFAIL, 451,
		  "<nobody-here@mail.example.test>: Temporary lookup failure" },
		{ "unreadable local_recipient_maps: temporary", "root@localhost", false, true,
		  SMTPD_RCPT_TEMPFAIL, 451, NULL },
		/* relocated_maps: Postfix's 550 5.1.6 text. */
		{ "relocated user@domain", "old@mail.example.test", false, false, SMTPD_RCPT_REJECT,
		  550,
		  "<old@mail.example.test>: Recipient address rejected: User has moved to new@elsewhere.test" },
		{ "relocated domain case", "Old@MAIL.example.test", false, false,
		  SMTPD_RCPT_REJECT, 550,
		  "<Old@MAIL.example.test>: Recipient address rejected: User has moved to new@elsewhere.test" },
		{ "relocated with extension", "old+box@mail.example.test", true, false,
		  SMTPD_RCPT_REJECT, 550,
		  "<old+box@mail.example.test>: Recipient address rejected: User has moved to new@elsewhere.test" },
		{ "relocated bare user (local domain)", "gone@localhost", false, false,
		  SMTPD_RCPT_REJECT, 550,
		  "<gone@localhost>: Recipient address rejected: User has moved to far@away.test" },
		{ "relocated bare user, unqualified", "gone", false, false, SMTPD_RCPT_REJECT, 550,
		  "<gone>: Recipient address rejected: User has moved to far@away.test" },
		{ "relocated @domain", "anyone@moved.test", false, false,
		  SMTPD_RCPT_REJECT, 550,
		  "<anyone@moved.test>: Recipient address rejected: User has moved to newco.test" },
		{ "relocated: relay refusal first", "someone@nowhere.test", false, false,
		  SMTPD_RCPT_REJECT, 554, "<someone@nowhere.test>: Relay access denied" },
		{ "relocated: from mynetworks", "someone@nowhere.test", true, false,
		  SMTPD_RCPT_REJECT, 550,
		  "<someone@nowhere.test>: Recipient address rejected: User has moved to x@y.test" },
		{ "relocated: bare user not for other domains", "gone@relayed.test", false, false,
		  SMTPD_RCPT_OK, 0, "gone@relayed.test" },
		{ "relocated: table unreadable", "old@mail.example.test", false, true,
		  SMTPD_RCPT_TEMPFAIL, 451, "<old@mail.example.test>: Temporary lookup failure" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smtpd_conf c;
		struct smtpd_rcpt_check res;
		conf_init(&c, rows[i].broken);
		enum smtpd_rcpt_verdict v = smtpd_check_rcpt(&c, rows[i].addr, rows[i].mynet, &res);
		if (v != rows[i].v)
			fail_msg("row %s: verdict %d (%u %s)", rows[i].name, v, res.code,
				 buf_cstr(&res.text));
		if (v == SMTPD_RCPT_OK) {
			assert_non_null(res.final);
			if (rows[i].text != NULL)
				assert_string_equal(res.final[0], rows[i].text);
		} else {
			assert_int_equal(res.code, rows[i].code);
			if (strstr(buf_cstr(&res.text), "has moved") != NULL)
				assert_string_equal(res.status, "5.1.6");
			if (rows[i].text != NULL)
				assert_string_equal(buf_cstr(&res.text), rows[i].text);
		}
		smtpd_rcpt_check_deinit(&res);
		conf_fini(&c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nets_match),
		cmocka_unit_test(test_nets_prefix_limits),
		cmocka_unit_test(test_rcpt_decision),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
