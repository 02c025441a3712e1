/* cleanup_test.c - unit tests for cleanup.c with hand-built parameters and
 * fake lookup tables (no main.cf, no table files). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/cleanup.h"

/* A fake table: NULL-terminated key/value pairs, keys case-insensitive as
 * in Postfix tables; the value "!ERROR" simulates a lookup failure. */
struct fake_table {
	const char *const *pairs;
	unsigned lookups;
};

static int fake_lookup(void *ctx, const char *key, char **value_r)
{
	struct fake_table *t = ctx;
	t->lookups++;
	for (size_t i = 0; t->pairs[i] != NULL; i += 2) {
		if (str_casecmp(t->pairs[i], key) == 0) {
			if (strcmp(t->pairs[i + 1], "!ERROR") == 0)
				return -1;
			*value_r = xstrdup(t->pairs[i + 1]);
			return 1;
		}
	}
	return 0;
}

static char *local_domains[] = { "gw1.maison.mrs", "localhost.maison.mrs", "localhost", NULL };

static struct cleanup_params base_params(void)
{
	struct cleanup_params p;
	memset(&p, 0, sizeof(p));
	p.myhostname = "gw1.maison.mrs";
	p.myorigin = "gw1.maison.mrs";
	p.mydomain = "maison.mrs";
	p.local_domains = local_domains;
	p.remove_bcc = true;
	return p;
}

static void test_gecos(void **state)
{
	(void)state;
	static const struct {
		const char *gecos, *login, *out;
	} cases[] = {
		{ "Christian Caleca", "root", "Christian Caleca" },
		{ "Christian Cal\xc3\xa9" "ca,Bureau 12,0491000000", "chris", "Christian Cal\xc3\xa9" "ca" },
		{ "& Smith", "john", "John Smith" },
		{ "&", "", "" },
		{ "", "chris", "" },
		{ ",x", "chris", "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = cleanup_fullname_from_gecos(cases[i].gecos, cases[i].login);
		assert_string_equal(s, cases[i].out);
		free(s);
	}
}

/* The seeds' sender_canonical file. */
static const char *const seeds_sender_canonical[] = {
	"root", "christian.caleca@free.fr # L'administrateur (moi)",
	"chris", "christian.caleca@free.fr # autre moi",
	"@old.example", "@new.example",
	"full@other.example", "renamed",
	"broken@other.example", "!ERROR",
	NULL
};
static const char *const common_canonical[] = {
	"renamed@gw1.maison.mrs", "final@elsewhere.example",
	NULL
};

struct sender_case {
	const char *name;
	const char *in;
	const char *out;	/* NULL: lookup error */
};

static const struct sender_case sender_cases[] = {
	{ "seeds chris bare", "chris", "christian.caleca@free.fr" },
	{ "seeds root qualified", "root@gw1.maison.mrs", "christian.caleca@free.fr" },
	{ "local domain case", "root@GW1.Maison.Mrs", "christian.caleca@free.fr" },
	{ "other local domain", "root@localhost", "christian.caleca@free.fr" },
	{ "user key not for remote domains", "root@free.fr", "root@free.fr" },
	{ "unknown user", "nobody", "nobody@gw1.maison.mrs" },
	{ "null sender", "", "" },
	{ "at-domain keeps user", "jean@old.example", "jean@new.example" },
	{ "full key then common map", "full@other.example", "final@elsewhere.example" },
	{ "lookup error", "broken@other.example", NULL },
};

static void test_rewrite_sender(void **state)
{
	(void)state;
	struct fake_table sc = { seeds_sender_canonical, 0 }, cc = { common_canonical, 0 };
	struct cleanup_params p = base_params();
	p.sender_canonical_maps.lookup = fake_lookup;
	p.sender_canonical_maps.ctx = &sc;
	p.canonical_maps.lookup = fake_lookup;
	p.canonical_maps.ctx = &cc;
	for (size_t i = 0; i < sizeof(sender_cases) / sizeof(sender_cases[0]); i++) {
		const struct sender_case *c = &sender_cases[i];
		const char *error = NULL;
		char *out = cleanup_rewrite_sender(&p, c->in, &error);
		if (c->out == NULL) {
			if (out != NULL)
				fail_msg("%s: got %s", c->name, out);
			assert_string_equal(error, "canonical map lookup failed");
			continue;
		}
		if (out == NULL || strcmp(out, c->out) != 0)
			fail_msg("%s: got %s", c->name, out != NULL ? out : error);
		free(out);
	}
	/* Without tables: qualification only. */
	struct cleanup_params bare = base_params();
	const char *error;
	char *out = cleanup_rewrite_sender(&bare, "chris", &error);
	assert_string_equal(out, "chris@gw1.maison.mrs");
	free(out);
}

static const char *const virtual_pairs[] = {
	"list@v.example", "a@v.example, b@v.example c@x.example",
	"a@v.example", "alice@x.example",
	"self@v.example", "self@v.example, copy@x.example",
	"ping@v.example", "pong@v.example",
	"pong@v.example", "ping@v.example",
	"dup@v.example", "alice@x.example, ALICE@x.example, a@v.example",
	"postmaster", "root@x.example",
	"@catch.example", "catchall@x.example",
	"@moved.example", "@new.example",
	"fail@v.example", "!ERROR",
	"bare@v.example", "localuser",
	NULL
};
static const char *const rcpt_canonical[] = {
	"old@x.example", "list@v.example",
	NULL
};

struct rcpt_case {
	const char *name;
	const char *in;
	const char *out;	/* joined by '|'; NULL: error */
};

static const struct rcpt_case rcpt_cases[] = {
	{ "no alias", "bob@x.example", "bob@x.example" },
	{ "one to many recursive", "list@v.example", "alice@x.example|b@v.example|c@x.example" },
	{ "self kept", "self@v.example", "self@v.example|copy@x.example" },
	{ "two-address loop", "ping@v.example", "ping@v.example" },
	{ "duplicates removed", "dup@v.example", "alice@x.example" },
	{ "user key on local domain", "postmaster@localhost", "root@x.example" },
	{ "user key not on remote", "postmaster@x.example", "postmaster@x.example" },
	{ "bare qualified first", "postmaster", "root@x.example" },
	{ "catch-all", "anyone@catch.example", "catchall@x.example" },
	{ "at-domain result", "joe@moved.example", "joe@new.example" },
	{ "bare result qualified", "bare@v.example", "localuser@gw1.maison.mrs" },
	{ "recipient canonical first", "old@x.example", "alice@x.example|b@v.example|c@x.example" },
	{ "lookup error", "fail@v.example", NULL },
};

static void test_rewrite_recipient(void **state)
{
	(void)state;
	struct fake_table vt = { virtual_pairs, 0 }, rc = { rcpt_canonical, 0 };
	struct cleanup_params p = base_params();
	p.virtual_alias_maps.lookup = fake_lookup;
	p.virtual_alias_maps.ctx = &vt;
	p.recipient_canonical_maps.lookup = fake_lookup;
	p.recipient_canonical_maps.ctx = &rc;
	for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		const struct rcpt_case *c = &rcpt_cases[i];
		char **addrs = NULL;
		const char *error = NULL;
		int ret = cleanup_rewrite_recipient(&p, c->in, &addrs, &error);
		if (c->out == NULL) {
			if (ret != -1)
				fail_msg("%s: accepted", c->name);
			assert_string_equal(error, "virtual_alias_maps lookup failed");
			continue;
		}
		if (ret != 0)
			fail_msg("%s: %s", c->name, error);
		struct buf b = BUF_INIT;
		for (size_t j = 0; addrs[j] != NULL; j++)
			buf_printf(&b, "%s%s", j > 0 ? "|" : "", addrs[j]);
		if (strcmp(buf_cstr(&b), c->out) != 0)
			fail_msg("%s: got %s", c->name, buf_cstr(&b));
		buf_deinit(&b);
		str_list_free(&addrs);
	}
}

/* Generated tables for the limits. */
struct gen_table {
	unsigned chain_len;	/* nN@chain -> n(N+1)@chain while N+1 < chain_len */
	unsigned fanout;	/* fan@x -> f0 .. f(fanout-1) */
};

static int gen_lookup(void *ctx, const char *key, char **value_r)
{
	struct gen_table *g = ctx;
	unsigned n;
	struct buf b = BUF_INIT;
	if (sscanf(key, "n%u@chain", &n) == 1 && n + 1 < g->chain_len) {
		buf_printf(&b, "n%u@chain", n + 1);
		*value_r = buf_steal(&b);
		return 1;
	}
	if (strcmp(key, "fan@x") == 0) {
		for (unsigned i = 0; i < g->fanout; i++)
			buf_printf(&b, "f%u@y,", i);
		*value_r = buf_steal(&b);
		return 1;
	}
	return 0;
}

static void test_virtual_limits(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		unsigned chain_len, fanout;
		const char *addr;
		const char *error;	/* NULL: ok */
	} cases[] = {
		{ "depth 99", 100, 0, "n0@chain", NULL },
		{ "depth 100", 101, 0, "n0@chain", NULL },
		{ "depth 101", 102, 0, "n0@chain", "virtual alias recursion limit exceeded" },
		{ "fanout 999", 0, 999, "fan@x", NULL },
		{ "fanout 1000", 0, 1000, "fan@x", NULL },
		{ "fanout 1001", 0, 1001, "fan@x", "virtual alias expansion limit exceeded" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gen_table g = { cases[i].chain_len, cases[i].fanout };
		struct cleanup_params p = base_params();
		p.virtual_alias_maps.lookup = gen_lookup;
		p.virtual_alias_maps.ctx = &g;
		char **addrs = NULL;
		const char *error = NULL;
		int ret = cleanup_rewrite_recipient(&p, cases[i].addr, &addrs, &error);
		if (cases[i].error == NULL) {
			if (ret != 0)
				fail_msg("%s: %s", cases[i].name, error);
			size_t n = 0;
			while (addrs[n] != NULL)
				n++;
			assert_int_equal(n, cases[i].fanout > 0 ? cases[i].fanout : 1);
			str_list_free(&addrs);
		} else {
			if (ret != -1)
				fail_msg("%s: accepted", cases[i].name);
			assert_string_equal(error, cases[i].error);
		}
	}
}

static void test_date(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	struct buf b = BUF_INIT;
	cleanup_date_format(&b, 1795415992);
	assert_string_equal(buf_cstr(&b), "Mon, 23 Nov 2026 06:39:52 +0000 (UTC)");
	buf_reset(&b);
	/* POSIX rule, so the test needs no tzdata files. */
	setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
	tzset();
	cleanup_date_format(&b, 1052661983);
	assert_string_equal(buf_cstr(&b), "Sun, 11 May 2003 16:06:23 +0200 (CEST)");
	buf_reset(&b);
	cleanup_date_format(&b, 1052661983 - 8 * 86400 - 6 * 3600);
	assert_string_equal(buf_cstr(&b), "Sat,  3 May 2003 10:06:23 +0200 (CEST)");
	buf_deinit(&b);
	setenv("TZ", "UTC", 1);
	tzset();
}

struct headers_case {
	const char *name;
	enum cleanup_origin_type type;
	const char *helo;	/* SMTP */
	bool rewrite_remote;
	size_t n_rcpt;
	const char *in;
	const char *out;	/* NULL: error */
	const char *message_id;
	const char *error;
};

static const char *const test_rcpts[] = { "chris@gw1.maison.mrs", "other@x.example" };

static const struct headers_case headers_cases[] = {
	{ "seeds local submission", CLEANUP_ORIGIN_LOCAL, NULL, false, 1,
	  "To: root\nSubject: test interne\n",
	  "Received: by gw1.maison.mrs (facteur, from userid 501)\n"
	  "\tid 61D3F800081; Mon, 23 Nov 2026 06:39:52 +0000 (UTC)\n"
	  "To: root@gw1.maison.mrs\n"
	  "Subject: test interne\n"
	  "Message-Id: <20261123063952.61D3F800081@gw1.maison.mrs>\n"
	  "Date: Mon, 23 Nov 2026 06:39:52 +0000 (UTC)\n"
	  "From: chris@gw1.maison.mrs (Christian Cal\xc3\xa9" "ca)\n",
	  "20261123063952.61D3F800081@gw1.maison.mrs", NULL },
	{ "local canonical in headers", CLEANUP_ORIGIN_LOCAL, NULL, false, 1,
	  "From: root (Admin)\nCc: chris, x@y.example\nReturn-Path: <z@z>\n"
	  "Bcc: secret@x.example\nContent-Length: 12\nDate: today\nMessage-ID:  <abc@def>\n",
	  "Received: by gw1.maison.mrs (facteur, from userid 501)\n"
	  "\tid 61D3F800081; Mon, 23 Nov 2026 06:39:52 +0000 (UTC)\n"
	  "From: christian.caleca@free.fr (Admin)\n"
	  "Cc: chris@gw1.maison.mrs, x@y.example\n"
	  "Date: today\n"
	  "Message-ID:  <abc@def>\n",
	  "abc@def", NULL },
	{ "smtp one recipient", CLEANUP_ORIGIN_SMTP, "chris", false, 1,
	  "From: \"Christian CALECA\" <christian.caleca@w-n-doo.fr>\nTo: root\nSubject: x\n",
	  "Received: from chris (chris.maison.mrs [192.168.0.10])\n"
	  "\tby gw1.maison.mrs (facteur) with ESMTP id 61D3F800081\n"
	  "\tfor <chris@gw1.maison.mrs>; Mon, 23 Nov 2026 06:39:52 +0000 (UTC)\n"
	  "From: \"Christian CALECA\" <christian.caleca@w-n-doo.fr>\n"
	  "To: root\n"
	  "Subject: x\n",
	  "", NULL },
	{ "smtp two recipients, no HELO", CLEANUP_ORIGIN_SMTP, NULL, false, 2,
	  "Subject: x",
	  "Received: from chris.maison.mrs (chris.maison.mrs [192.168.0.10])\n"
	  "\tby gw1.maison.mrs (facteur) with ESMTP id 61D3F800081;\n"
	  "\tMon, 23 Nov 2026 06:39:52 +0000 (UTC)\n"
	  "X-Authentication-Warning: gw1.maison.mrs: chris.maison.mrs [192.168.0.10] didn't use HELO protocol\n"
	  "Subject: x\n",
	  "", NULL },
	{ "smtp mynetworks rewrites", CLEANUP_ORIGIN_SMTP, "chris", true, 1,
	  "To: root\n",
	  "Received: from chris (chris.maison.mrs [192.168.0.10])\n"
	  "\tby gw1.maison.mrs (facteur) with ESMTP id 61D3F800081\n"
	  "\tfor <chris@gw1.maison.mrs>; Mon, 23 Nov 2026 06:39:52 +0000 (UTC)\n"
	  "To: root@gw1.maison.mrs\n"
	  "Message-Id: <20261123063952.61D3F800081@gw1.maison.mrs>\n"
	  "Date: Mon, 23 Nov 2026 06:39:52 +0000 (UTC)\n"
	  "From: chris@gw1.maison.mrs\n",
	  "20261123063952.61D3F800081@gw1.maison.mrs", NULL },
	{ "header lookup error", CLEANUP_ORIGIN_LOCAL, NULL, false, 1,
	  "From: broken@other.example\n", NULL, NULL, "canonical map lookup failed" },
};

static void run_headers_case(const struct headers_case *c, size_t size_limit, const char *in,
			     size_t in_len)
{
	struct fake_table sc = { seeds_sender_canonical, 0 };
	struct cleanup_params p = base_params();
	p.sender_canonical_maps.lookup = fake_lookup;
	p.sender_canonical_maps.ctx = &sc;
	p.rewrite_remote_headers = c->rewrite_remote;
	p.header_size_limit = size_limit;
	struct cleanup_origin o;
	memset(&o, 0, sizeof(o));
	o.type = c->type;
	if (c->type == CLEANUP_ORIGIN_SMTP) {
		o.helo_name = c->helo;
		o.client_name = "chris.maison.mrs";
		o.client_addr = "192.168.0.10";
		o.protocol = "ESMTP";
	} else {
		o.uid = 501;
		o.login = "chris";
		o.full_name = "Christian Cal\xc3\xa9" "ca";
	}
	struct cleanup_envelope env = { "61D3F800081", "chris@gw1.maison.mrs", test_rcpts,
					c->n_rcpt, 1795415992 };
	struct buf out = BUF_INIT;
	struct cleanup_result res;
	memset(&res, 0, sizeof(res));
	const char *error = NULL;
	int ret = cleanup_headers(&p, &o, &env, in, in_len, &out, &res, &error);
	if (c->out == NULL) {
		if (ret != -1)
			fail_msg("%s: accepted:\n%s", c->name, buf_cstr(&out));
		assert_string_equal(error, c->error);
		assert_int_equal(out.len, 0);
	} else {
		if (ret != 0)
			fail_msg("%s: %s", c->name, error);
		if (strcmp(buf_cstr(&out), c->out) != 0)
			fail_msg("%s: got\n%s", c->name, buf_cstr(&out));
		assert_string_equal(res.message_id, c->message_id);
		assert_int_equal(res.header_end, in_len);
	}
	cleanup_result_deinit(&res);
	buf_deinit(&out);
}

static void test_headers(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	for (size_t i = 0; i < sizeof(headers_cases) / sizeof(headers_cases[0]); i++)
		run_headers_case(&headers_cases[i], 0, headers_cases[i].in,
				 strlen(headers_cases[i].in));
}

static void test_headers_size_limit(void **state)
{
	(void)state;
	const char *in = "Subject: 0123456789\n";	/* 20 bytes */
	struct headers_case c = headers_cases[3];
	c.in = in;
	c.out = "Received: from chris.maison.mrs (chris.maison.mrs [192.168.0.10])\n"
		"\tby gw1.maison.mrs (facteur) with ESMTP id 61D3F800081;\n"
		"\tMon, 23 Nov 2026 06:39:52 +0000 (UTC)\n"
		"X-Authentication-Warning: gw1.maison.mrs: chris.maison.mrs [192.168.0.10] didn't use HELO protocol\n"
		"Subject: 0123456789\n";
	run_headers_case(&c, 20, in, strlen(in));
	run_headers_case(&c, 21, in, strlen(in));
	c.out = NULL;
	c.error = "message header size exceeds header_size_limit";
	run_headers_case(&c, 19, in, strlen(in));
}

/* The body starts at a non-header line; header_end says where. */
static void test_headers_body_start(void **state)
{
	(void)state;
	struct cleanup_params p = base_params();
	struct cleanup_origin o;
	memset(&o, 0, sizeof(o));
	o.type = CLEANUP_ORIGIN_SMTP;
	o.helo_name = "h";
	o.client_name = "c";
	o.client_addr = "2001:db8::1";
	o.protocol = "ESMTPS";
	o.tls_info = "using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)";
	struct cleanup_envelope env = { "Q1", "", NULL, 0, 1795415992 };
	const char *in = "Subject: a\nnot a header\nX: y\n";
	struct buf out = BUF_INIT;
	struct cleanup_result res;
	const char *error;
	p.always_add_missing_headers = true;
	assert_int_equal(cleanup_headers(&p, &o, &env, in, strlen(in), &out, &res, &error), 0);
	assert_int_equal(res.header_end, 11);
	assert_string_equal(buf_cstr(&out),
		"Received: from h (c [IPv6:2001:db8::1])\n"
		"\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\n"
		"\tby gw1.maison.mrs (facteur) with ESMTPS id Q1;\n"
		"\tMon, 23 Nov 2026 06:39:52 +0000 (UTC)\n"
		"Subject: a\n"
		"Message-Id: <20261123063952.Q1@gw1.maison.mrs>\n"
		"Date: Mon, 23 Nov 2026 06:39:52 +0000 (UTC)\n"
		"From: MAILER-DAEMON\n");
	assert_int_equal(res.n_fields, 5);
	cleanup_result_deinit(&res);
	buf_deinit(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gecos),
		cmocka_unit_test(test_rewrite_sender),
		cmocka_unit_test(test_rewrite_recipient),
		cmocka_unit_test(test_virtual_limits),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_headers_size_limit),
		cmocka_unit_test(test_headers_body_start),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
