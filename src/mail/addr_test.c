/* addr_test.c - unit tests for addr.c: paths, ESMTP parameters, xtext,
 * DSN values and address helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "mail/addr.h"

struct path_case {
	const char *name;
	const char *arg;
	bool strict;
	const char *addr;	/* NULL: error expected */
	size_t consumed;	/* when addr != NULL */
	const char *error;	/* when addr == NULL */
};

static const struct path_case path_cases[] = {
	{ "bracketed", "<user@example.com>", false, "user@example.com", 18, NULL },
	{ "space before bracket", " <user@example.com>", false, "user@example.com", 19, NULL },
	{ "null sender", "<>", false, "", 2, NULL },
	{ "null sender params", "<> SIZE=10", false, "", 3, NULL },
	{ "bare user", "user", false, "user", 4, NULL },
	{ "bare address", "user@dom.example", false, "user@dom.example", 16, NULL },
	{ "bare with params", "user@dom SIZE=1", false, "user@dom", 9, NULL },
	{ "params after bracket", "<a@b.c> SIZE=100 BODY=8BITMIME", false, "a@b.c", 8, NULL },
	{ "params two spaces", "<a@b.c>  NOTIFY=NEVER", false, "a@b.c", 9, NULL },
	{ "source route", "<@a.example,@b.example:user@dom.example>", false, "user@dom.example", 40, NULL },
	{ "quoted local", "<\"john doe\"@x.example>", false, "\"john doe\"@x.example", 22, NULL },
	{ "quoted with >", "<\"a>b\"@x.example>", false, "\"a>b\"@x.example", 17, NULL },
	{ "quoted pair", "<\"a\\\"b\"@x.example>", false, "\"a\\\"b\"@x.example", 18, NULL },
	{ "ipv4 literal", "<u@[192.0.2.1]>", false, "u@[192.0.2.1]", 15, NULL },
	{ "ipv6 literal", "<u@[IPv6:2001:db8::1]>", false, "u@[IPv6:2001:db8::1]", 22, NULL },
	{ "general literal", "<u@[x-tag:abc]>", false, "u@[x-tag:abc]", 15, NULL },
	{ "underscore domain", "<u@my_host.example>", false, "u@my_host.example", 19, NULL },
	{ "dotted local", "<first.last@x.example>", false, "first.last@x.example", 22, NULL },
	{ "strict ok", "<a@b.example>", true, "a@b.example", 13, NULL },
	{ "strict bare", "a@b.example", true, NULL, 0, "angle brackets required around address" },
	{ "empty", "", false, NULL, 0, "missing address" },
	{ "spaces only", "   ", false, NULL, 0, "missing address" },
	{ "missing >", "<a@b.example", false, NULL, 0, "missing '>' after address" },
	{ "double <", "<<a@b.example>>", false, NULL, 0, "unbalanced '<' in address" },
	{ "stray >", "a@b.example>", false, NULL, 0, "unbalanced '>' in address" },
	{ "unbalanced quote", "<\"abc@b.example>", false, NULL, 0, "unbalanced quote in address" },
	{ "unbalanced [", "<a@[1.2.3.4>", false, NULL, 0, "unbalanced '[' in address" },
	{ "control char", "<a\001b@c.example>", false, NULL, 0, "control character in address" },
	{ "control in quote", "<\"a\001\"@c.example>", false, NULL, 0, "control character in address" },
	{ "8bit", "<caf\xc3\xa9@c.example>", false, NULL, 0,
	  "8-bit character in address (SMTPUTF8 is not supported)" },
	{ "garbage after", "<a@b.example>x", false, NULL, 0, "garbage after address" },
	{ "bad route", "<@a.example user@b.example>", false, NULL, 0, "bad source route in address" },
	{ "route without mailbox", "<@a.example:>", false, NULL, 0, "bad source route in address" },
	{ "space in local", "<a b@c.example>", false, NULL, 0, "bad address syntax" },
	{ "empty local", "<@>", false, NULL, 0, "bad source route in address" },
	{ "at only local", "<x@>", false, NULL, 0, "bad domain syntax in address" },
	{ "bad domain", "<a@-b.example>", false, NULL, 0, "bad domain syntax in address" },
	{ "domain double dot", "<a@b..example>", false, NULL, 0, "bad domain syntax in address" },
	{ "trailing dot", "<a@b.example.>", false, NULL, 0, "bad domain syntax in address" },
	{ "bad ipv4 literal", "<a@[300.1.1.1]>", false, NULL, 0, "bad domain syntax in address" },
	{ "bad ipv6 literal", "<a@[IPv6:zz::1]>", false, NULL, 0, "bad domain syntax in address" },
};

static void test_parse_path(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
		const struct path_case *c = &path_cases[i];
		char *addr = NULL;
		size_t consumed = 99;
		const char *error = NULL;
		int ret = addr_parse_path(c->arg, strlen(c->arg), c->strict, &addr, &consumed, &error);
		if (c->addr != NULL) {
			if (ret != 0)
				fail_msg("%s: unexpected error %s", c->name, error);
			if (strcmp(addr, c->addr) != 0 || consumed != c->consumed)
				fail_msg("%s: got '%s' consumed %zu", c->name, addr, consumed);
			free(addr);
		} else {
			if (ret != -1)
				fail_msg("%s: accepted as '%s'", c->name, addr);
			if (strcmp(error, c->error) != 0)
				fail_msg("%s: error '%s'", c->name, error);
		}
	}
}

/* Build "<LOCAL@DOMAIN>" with the given lengths (DOMAIN made of labels). */
static char *make_path(size_t local_len, size_t domain_len)
{
	struct buf b = BUF_INIT;
	buf_append_char(&b, '<');
	for (size_t i = 0; i < local_len; i++)
		buf_append_char(&b, 'l');
	buf_append_char(&b, '@');
	for (size_t i = 0; i < domain_len; i++)
		buf_append_char(&b, (i % 10 == 9 && i + 1 < domain_len) ? '.' : 'd');
	buf_append_char(&b, '>');
	return buf_steal(&b);
}

struct limit_case {
	const char *name;
	size_t local_len, domain_len;
	const char *error;	/* NULL: accepted */
};

static const struct limit_case limit_cases[] = {
	{ "local 63", 63, 10, NULL },
	{ "local 64", 64, 10, NULL },
	{ "local 65", 65, 10, "local part of address too long (max 64)" },
	/* path = local + '@' + domain + 2 brackets */
	{ "path 255", 60, 192, NULL },
	{ "path 256", 60, 193, NULL },
	{ "path 257", 60, 194, "address too long (max 256)" },
	{ "domain 255", 1, 255, "address too long (max 256)" },
	{ "domain 256", 1, 256, "domain of address too long (max 255)" },
};

static void test_parse_path_limits(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(limit_cases) / sizeof(limit_cases[0]); i++) {
		const struct limit_case *c = &limit_cases[i];
		char *path = make_path(c->local_len, c->domain_len);
		char *addr = NULL;
		size_t consumed;
		const char *error = NULL;
		int ret = addr_parse_path(path, strlen(path), true, &addr, &consumed, &error);
		if (c->error == NULL) {
			if (ret != 0)
				fail_msg("%s: %s", c->name, error);
			assert_int_equal(strlen(addr), c->local_len + 1 + c->domain_len);
			free(addr);
		} else {
			if (ret == 0)
				fail_msg("%s: accepted", c->name);
			if (strcmp(error, c->error) != 0)
				fail_msg("%s: error '%s'", c->name, error);
		}
		free(path);
	}
}

/* The length argument is honoured: the input need not be NUL-terminated
 * and every prefix must be handled without reading past it. */
static void test_parse_path_prefixes(void **state)
{
	(void)state;
	const char *full = "<@r.example:\"q u\"@[IPv6:::1]> SIZE=1";
	size_t n = strlen(full);
	for (size_t len = 0; len <= n; len++) {
		char *copy = xmalloc(len == 0 ? 1 : len);
		memcpy(copy, full, len);
		char *addr = NULL;
		size_t consumed;
		const char *error;
		int ret = addr_parse_path(copy, len, false, &addr, &consumed, &error);
		if (len >= 29) {
			assert_int_equal(ret, 0);
			assert_string_equal(addr, "\"q u\"@[IPv6:::1]");
			free(addr);
		} else {
			assert_int_equal(ret, -1);
		}
		free(copy);
	}
}

static void test_esmtp_params(void **state)
{
	(void)state;
	struct esmtp_param *params;
	size_t n;
	const char *error;
	assert_int_equal(addr_parse_esmtp_params("size=100  Body=8BITMIME SMTPUTF8", &params, &n,
						 &error), 0);
	assert_int_equal(n, 3);
	assert_string_equal(params[0].key, "SIZE");
	assert_string_equal(params[0].value, "100");
	assert_string_equal(params[1].key, "BODY");
	assert_string_equal(params[1].value, "8BITMIME");
	assert_string_equal(params[2].key, "SMTPUTF8");
	assert_null(params[2].value);
	addr_esmtp_params_free(&params, n);
	assert_null(params);

	assert_int_equal(addr_parse_esmtp_params("", &params, &n, &error), 0);
	assert_int_equal(n, 0);
	addr_esmtp_params_free(&params, n);

	static const struct {
		const char *in;
		const char *error;
	} bad[] = {
		{ "SIZE=", "empty ESMTP parameter value" },
		{ "=1", "bad ESMTP parameter keyword" },
		{ "-X=1", "bad ESMTP parameter keyword" },
		{ "A=b=c", "bad ESMTP parameter syntax" },
		{ "A_B=1", "bad ESMTP parameter syntax" },
		{ "A=\x01", "empty ESMTP parameter value" },
		{ "A=x\x80", "bad character in ESMTP parameter" },
		{ "A=1\tB=2", "bad character in ESMTP parameter" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		if (addr_parse_esmtp_params(bad[i].in, &params, &n, &error) != -1)
			fail_msg("'%s' accepted", bad[i].in);
		if (strcmp(error, bad[i].error) != 0)
			fail_msg("'%s': %s", bad[i].in, error);
	}
	/* count limit: max accepted, max+1 refused */
	struct buf b = BUF_INIT;
	for (int i = 0; i < ADDR_ESMTP_PARAMS_MAX; i++)
		buf_printf(&b, "K%d=v ", i);
	assert_int_equal(addr_parse_esmtp_params(buf_cstr(&b), &params, &n, &error), 0);
	assert_int_equal(n, ADDR_ESMTP_PARAMS_MAX);
	addr_esmtp_params_free(&params, n);
	buf_append_str(&b, "X=1");
	assert_int_equal(addr_parse_esmtp_params(buf_cstr(&b), &params, &n, &error), -1);
	assert_string_equal(error, "too many ESMTP parameters");
	buf_deinit(&b);
}

static void test_xtext(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		const char *out;	/* NULL: malformed */
	} cases[] = {
		{ "abc", "abc" },
		{ "a+2Bb", "a+b" },
		{ "a+3db", "a=b" },
		{ "+20x+20", " x " },
		{ "", "" },
		{ "a+2", NULL },
		{ "a+", NULL },
		{ "a+GG", NULL },
		{ "a=b", NULL },
		{ "a b", NULL },
		{ "+00", NULL },
		{ "caf\xc3\xa9", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = NULL;
		int ret = xtext_decode(cases[i].in, &out);
		if (cases[i].out == NULL) {
			if (ret != -1)
				fail_msg("'%s' decoded", cases[i].in);
		} else {
			assert_int_equal(ret, 0);
			assert_string_equal(out, cases[i].out);
			free(out);
		}
	}
	char *enc = xtext_encode("a+b=c d\xc3");
	assert_string_equal(enc, "a+2Bb+3Dc+20d+C3");
	char *dec;
	assert_int_equal(xtext_decode(enc, &dec), 0);
	assert_string_equal(dec, "a+b=c d\xc3");
	free(enc);
	free(dec);
}

static void test_dsn_values(void **state)
{
	(void)state;
	unsigned flags;
	assert_int_equal(addr_esmtp_notify_parse("NEVER", &flags), 0);
	assert_int_equal(flags, ADDR_NOTIFY_NEVER);
	assert_int_equal(addr_esmtp_notify_parse("success,Failure,DELAY", &flags), 0);
	assert_int_equal(flags, ADDR_NOTIFY_SUCCESS | ADDR_NOTIFY_FAILURE | ADDR_NOTIFY_DELAY);
	assert_int_equal(addr_esmtp_notify_parse("NEVER,SUCCESS", &flags), -1);
	assert_int_equal(addr_esmtp_notify_parse("SUCCESS,", &flags), -1);
	assert_int_equal(addr_esmtp_notify_parse("", &flags), -1);
	assert_int_equal(addr_esmtp_notify_parse("SOMETIMES", &flags), -1);

	enum addr_dsn_ret ret;
	assert_int_equal(addr_esmtp_ret_parse("full", &ret), 0);
	assert_int_equal(ret, ADDR_RET_FULL);
	assert_int_equal(addr_esmtp_ret_parse("HDRS", &ret), 0);
	assert_int_equal(ret, ADDR_RET_HDRS);
	assert_int_equal(addr_esmtp_ret_parse("BODY", &ret), -1);

	char *envid;
	char hundred[102];
	memset(hundred, 'e', 100);
	hundred[100] = '\0';
	assert_int_equal(addr_esmtp_envid_parse(hundred, &envid), 0);
	free(envid);
	hundred[100] = 'e';
	hundred[101] = '\0';
	assert_int_equal(addr_esmtp_envid_parse(hundred, &envid), -1);
	assert_int_equal(addr_esmtp_envid_parse("a+2", &envid), -1);

	char *type, *addr;
	assert_int_equal(addr_esmtp_orcpt_parse("rfc822;user+40x@example.com", &type, &addr), 0);
	assert_string_equal(type, "RFC822");
	assert_string_equal(addr, "user@x@example.com");
	free(type);
	free(addr);
	assert_int_equal(addr_esmtp_orcpt_parse("rfc822;", &type, &addr), -1);
	assert_int_equal(addr_esmtp_orcpt_parse("noseparator", &type, &addr), -1);
	assert_int_equal(addr_esmtp_orcpt_parse(";a@b", &type, &addr), -1);
	assert_int_equal(addr_esmtp_orcpt_parse("rfc822;a+ZZ", &type, &addr), -1);

	uint64_t size;
	assert_int_equal(addr_esmtp_size_parse("12345", &size), 0);
	assert_int_equal(size, 12345);
	assert_int_equal(addr_esmtp_size_parse("18446744073709551616", &size), -1);
	assert_int_equal(addr_esmtp_size_parse("12k", &size), -1);
	assert_int_equal(addr_esmtp_size_parse("", &size), -1);

	enum addr_body body;
	assert_int_equal(addr_esmtp_body_parse("7bit", &body), 0);
	assert_int_equal(body, ADDR_BODY_7BIT);
	assert_int_equal(addr_esmtp_body_parse("8BITMIME", &body), 0);
	assert_int_equal(body, ADDR_BODY_8BITMIME);
	assert_int_equal(addr_esmtp_body_parse("BINARYMIME", &body), -1);
}

static void test_split_qualify(void **state)
{
	(void)state;
	static const struct {
		const char *addr, *local, *domain;
	} splits[] = {
		{ "user@dom", "user", "dom" },
		{ "user", "user", NULL },
		{ "\"a@b\"@dom", "\"a@b\"", "dom" },
		{ "\"a@b\"", "\"a@b\"", NULL },
		{ "a@b@c", "a@b", "c" },
		{ "", "", NULL },
	};
	for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
		char *local, *domain;
		bool has = addr_split(splits[i].addr, &local, &domain);
		assert_string_equal(local, splits[i].local);
		if (splits[i].domain == NULL) {
			assert_false(has);
			assert_null(domain);
		} else {
			assert_true(has);
			assert_string_equal(domain, splits[i].domain);
		}
		free(local);
		free(domain);
	}
	assert_true(addr_split("a@b", NULL, NULL));

	static const struct {
		const char *in, *out;
	} quals[] = {
		{ "chris", "chris@gw1.maison.mrs" },
		{ "chris@free.fr", "chris@free.fr" },
		{ "", "" },
		{ "\"x@y\"", "\"x@y\"@gw1.maison.mrs" },
	};
	for (size_t i = 0; i < sizeof(quals) / sizeof(quals[0]); i++) {
		char *q = addr_qualify(quals[i].in, "gw1.maison.mrs");
		assert_string_equal(q, quals[i].out);
		free(q);
	}

	char *low = addr_lower_domain("John.Doe@Example.COM");
	assert_string_equal(low, "John.Doe@example.com");
	free(low);
	low = addr_lower_domain("NoDomain");
	assert_string_equal(low, "NoDomain");
	free(low);
}

static void test_domain_list(void **state)
{
	(void)state;
	char *list[] = { "gw1.maison.mrs", "localhost.maison.mrs.", "maison.mrs", NULL };
	assert_true(addr_domain_in_list("GW1.Maison.MRS", list));
	assert_true(addr_domain_in_list("gw1.maison.mrs.", list));
	assert_true(addr_domain_in_list("localhost.maison.mrs", list));
	assert_false(addr_domain_in_list("x.maison.mrs", list));
	assert_false(addr_domain_in_list("maison.mr", list));
	assert_false(addr_domain_in_list("", list));
	assert_false(addr_domain_in_list("a", NULL));
}

static void test_routing_chars(void **state)
{
	(void)state;
	assert_false(addr_has_routing_chars("user"));
	assert_false(addr_has_routing_chars("first.last+tag"));
	assert_true(addr_has_routing_chars("user%other.example"));
	assert_true(addr_has_routing_chars("other.example!user"));
	assert_true(addr_has_routing_chars("\"user@other\""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_path),
		cmocka_unit_test(test_parse_path_limits),
		cmocka_unit_test(test_parse_path_prefixes),
		cmocka_unit_test(test_esmtp_params),
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_dsn_values),
		cmocka_unit_test(test_split_qualify),
		cmocka_unit_test(test_domain_list),
		cmocka_unit_test(test_routing_chars),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
