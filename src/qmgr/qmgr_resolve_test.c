/* qmgr_resolve_test.c - recipient classification (address classes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "qmgr/qmgr.h"

static void test_class_table(void **state)
{
	char *mydest[] = { "mail.example.com", "localhost.example.com", "localhost",
			   "Example.COM.", NULL };
	char *virt[] = { "virt.example.net", "other.test", NULL };
	struct qmgr_settings s = { .mydestination = mydest, .virtual_mailbox_domains = virt };
	static const struct {
		const char *name;
		const char *address;
		enum qmgr_class expect;
	} rows[] = {
		{ "no domain is local", "root", QMGR_CLASS_LOCAL },
		{ "mydestination exact", "u@mail.example.com", QMGR_CLASS_LOCAL },
		{ "mydestination case-insensitive", "u@MAIL.Example.Com", QMGR_CLASS_LOCAL },
		{ "trailing dot on address", "u@localhost.", QMGR_CLASS_LOCAL },
		{ "trailing dot in list", "u@example.com", QMGR_CLASS_LOCAL },
		{ "subdomain is not local", "u@sub.mail.example.com", QMGR_CLASS_REMOTE },
		{ "virtual domain", "u@virt.example.net", QMGR_CLASS_VIRTUAL },
		{ "virtual case-insensitive", "u@OTHER.test", QMGR_CLASS_VIRTUAL },
		{ "other domain is remote", "u@gmail.com", QMGR_CLASS_REMOTE },
		{ "quoted @ in local part", "\"a@mail.example.com\"@gmail.com", QMGR_CLASS_REMOTE },
		{ "quoted local part, local domain", "\"a b\"@localhost", QMGR_CLASS_LOCAL },
		{ "domain literal is remote", "u@[192.0.2.1]", QMGR_CLASS_REMOTE },
		{ "empty domain is local", "u@", QMGR_CLASS_LOCAL },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		enum qmgr_class got = qmgr_resolve_class(&s, rows[i].address);
		if (got != rows[i].expect)
			fail_msg("%s (%s): got %s", rows[i].name, rows[i].address,
				 qmgr_class_name(got));
	}
}

static void test_empty_lists(void **state)
{
	char *none[] = { NULL };
	struct qmgr_settings s = { .mydestination = none, .virtual_mailbox_domains = NULL };
	(void)state;
	assert_int_equal(qmgr_resolve_class(&s, "u@localhost"), QMGR_CLASS_REMOTE);
	assert_int_equal(qmgr_resolve_class(&s, "u"), QMGR_CLASS_LOCAL);
}

static void test_transport_table(void **state)
{
	(void)state;
	assert_string_equal(qmgr_transport_for(QMGR_CLASS_LOCAL)->name, "local");
	assert_string_equal(qmgr_transport_for(QMGR_CLASS_VIRTUAL)->name, "virtual");
	assert_string_equal(qmgr_transport_for(QMGR_CLASS_REMOTE)->name, "remote");
	char *k = qmgr_transport_for(QMGR_CLASS_REMOTE)->dest_key("U@Gmail.COM");
	assert_string_equal(k, "gmail.com");
	free(k);
	k = qmgr_transport_for(QMGR_CLASS_LOCAL)->dest_key("Joe@Example.com");
	assert_string_equal(k, "joe@example.com");
	free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_class_table),
		cmocka_unit_test(test_empty_lists),
		cmocka_unit_test(test_transport_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
