/* config_test.c - unit tests for main.cf parsing, expansion, types and
 * checks (table-driven). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "mail/config.h"

/* The seeds' main.cf, verbatim (a flattened copy of Postfix 1.1's sample,
 * whose debugger_command continuation lines lost their indentation). */
static const char seeds_main_cf[] =
	"command_directory = /usr/sbin\n"
	"daemon_directory = /usr/lib/postfix\n"
	"alias_maps = hash:/etc/postfix/aliases\n"
	"\n"
	"mail_spool_directory = /var/spool/mail\n"
	"mailbox_command = /usr/bin/procmail -Y -a $DOMAIN\n"
	"\n"
	"smtpd_banner = ESMTP $mail_name\n"
	"debug_peer_level = 2\n"
	"debugger_command =\n"
	"PATH=/usr/bin:/usr/X11R6/bin\n"
	"xxgdb $daemon_directory/$process_name $process_id & sleep 5\n"
	"delay_warning_time = 4\n"
	"sendmail_path = /usr/sbin/sendmail.postfix\n"
	"newaliases_path = /usr/bin/newaliases.postfix\n"
	"mailq_path = /usr/bin/mailq.postfix\n"
	"setgid_group = postdrop\n"
	"manpage_directory = /usr/share/man\n"
	"sample_directory = /usr/share/doc/postfix-1.1.11/samples\n"
	"readme_directory = /usr/share/doc/postfix-1.1.11/README_FILES\n"
	"alias_database = hash:/etc/postfix/aliases\n"
	"transport_maps = hash:/etc/postfix/transport_maps\n"
	"mydestination = gw1.maison.mrs, localhost.maison.mrs, maison.mrs\n"
	"myorigin = gw1.maison.mrs\n"
	"sender_canonical_maps = hash:/etc/postfix/sender-canonical\n"
	"header_checks = regexp:/etc/postfix/header_checks\n";

#define N(rows) (sizeof(rows) / sizeof((rows)[0]))

/* All diagnostics as "LINE:E|W:message\n" lines, for exact comparisons. */
static char *diags_text(const struct config_diags *d, size_t from)
{
	struct buf b = BUF_INIT;
	for (size_t i = from; i < d->count; i++)
		buf_printf(&b, "%u:%c:%s\n", d->items[i].line,
			   d->items[i].is_error ? 'E' : 'W', d->items[i].message);
	return buf_steal(&b);
}

static struct config *load(const char *text, struct config_diags *d, int *ret_r)
{
	struct config *cfg = config_new();
	config_diags_init(d);
	int ret = config_load_text(cfg, "main.cf", text, strlen(text), d);
	if (ret_r != NULL)
		*ret_r = ret;
	return cfg;
}

/* ---- syntax ---- */

static void test_syntax(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *text;
		const char *param;
		const char *value;
		size_t n_warnings;
	} rows[] = {
		{ "simple", "myorigin = example.org\n", "myorigin", "example.org", 0 },
		{ "no spaces", "myorigin=example.org", "myorigin", "example.org", 0 },
		{ "trailing space", "myorigin =  a  b \t\n", "myorigin", "a  b", 0 },
		{ "crlf", "myorigin = a\r\nrelayhost = b\r\n", "myorigin", "a", 0 },
		{ "empty value", "relayhost =\n", "relayhost", "", 0 },
		{ "continuation", "mydestination = a,\n  b,\n\tc\n", "mydestination",
		  "a, b, c", 0 },
		{ "comment inside continuation", "mydestination = a\n# x\n  b\n",
		  "mydestination", "a b", 0 },
		{ "indented comment", "mydestination = a\n   # x\n  b\n",
		  "mydestination", "a b", 0 },
		{ "blank line inside continuation", "mydestination = a\n\n  \n  b\n",
		  "mydestination", "a b", 0 },
		{ "hash in value", "smtpd_banner = x # y\n", "smtpd_banner", "x # y", 0 },
		{ "comment line", "# myorigin = a\nmyorigin = b\n", "myorigin", "b", 0 },
		{ "later overrides", "myorigin = a\nmyorigin = b\n", "myorigin", "b", 0 },
		{ "equals in value", "relayhost = a=b\n", "relayhost", "a=b", 0 },
		{ "continuation empty start", "relayhost =\n  x\n", "relayhost", "x", 0 },
		{ "lenient continuation", "mydestination = a\nb c\n", "mydestination",
		  "a b c", 1 },
		{ "indented first line", "  foo\nmyorigin = b\n", "myorigin", "b", 1 },
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct config_diags d;
		int ret;
		struct config *cfg = load(rows[i].text, &d, &ret);
		if (ret != 0 || d.n_errors != 0 || d.count != rows[i].n_warnings)
			fail_msg("%s: ret %d, %zu diags", rows[i].name, ret, d.count);
		const char *v = config_get(cfg, rows[i].param);
		if (v == NULL || strcmp(v, rows[i].value) != 0)
			fail_msg("%s: got '%s'", rows[i].name, v != NULL ? v : "(null)");
		config_diags_deinit(&d);
		config_free(&cfg);
		assert_null(cfg);
	}
}

/* Diagnostics and their line numbers (continuation lines count). */
static void test_diagnostics(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *text;
		const char *diags;
	} rows[] = {
		{ "bad bool after continuation",
		  "mydestination = a,\n  b,\n  c\n# comment\nsmtpd_helo_required = maybe\n",
		  "5:E:bad value 'maybe' for parameter 'smtpd_helo_required': "
		  "expected yes or no\n" },
		{ "line without = at start",
		  "hello\n  world\nmyorigin = a\n",
		  "1:E:line without '=': expected 'name = value'\n" },
		{ "lenient continuation warns",
		  "relayhost = [mx]\n\nfoo bar\n",
		  "3:W:line without '=': taken as a continuation of 'relayhost' "
		  "(indent it)\n" },
		{ "service/param",
		  "smtp/smtp_helo_timeout = 5\n",
		  "1:E:bad parameter name 'smtp/smtp_helo_timeout' (service/name "
		  "settings belong in master.cf, which facteur does not read)\n" },
		{ "bad characters", "my-origin = x\n",
		  "1:E:bad parameter name 'my-origin'\n" },
		{ "empty name", " \n= x\n", "2:E:bad parameter name ''\n" },
		{ "misspelled", "mydestinaton = a\n",
		  "1:E:unknown parameter 'mydestinaton' (did you mean 'mydestination'?)\n" },
		{ "transposition", "mydomian = a\n",
		  "1:E:unknown parameter 'mydomian' (did you mean 'mydomain'?)\n" },
		{ "distance 2", "relay_domain = a\nrelayhots = b\n",
		  "1:E:unknown parameter 'relay_domain' (did you mean 'relay_domains'?)\n"
		  "2:E:unknown parameter 'relayhots' (did you mean 'relayhost'?)\n" },
		{ "distance 3 is unknown", "myorgxxx = a\n",
		  "1:W:unknown parameter 'myorgxxx'; ignored\n" },
		{ "short name is unknown", "myorg = a\n",
		  "1:W:unknown parameter 'myorg'; ignored\n" },
		{ "referenced helper variable", "mynet = 10.0.0.0/8\n"
		  "mynetworks = 127.0.0.0/8 $mynet\n", "" },
		{ "referenced in braces", "x_helper = a\nmyorigin = ${x_helper}.org\n", "" },
		{ "referenced later with conditional",
		  "mydomains = a\nmyorigin = ${mydomains?b}\n", "" },
		{ "unimplemented postfix parameter", "lmtp_connect_timeout = 5s\n",
		  "1:W:Postfix parameter 'lmtp_connect_timeout' is not implemented by "
		  "facteur yet; ignored\n" },
		{ "bad int, bad time, bad size",
		  "smtpd_recipient_limit = 0\nsmtpd_timeout = 5x\nmessage_size_limit = 10M\n",
		  "1:E:bad value '0' for parameter 'smtpd_recipient_limit': expected a "
		  "whole number from 1 to 2147483647\n"
		  "2:E:bad value '5x' for parameter 'smtpd_timeout': expected a time: a "
		  "number with an optional unit s, m, h, d or w (a bare number is in "
		  "seconds)\n"
		  "3:E:bad value '10M' for parameter 'message_size_limit': expected a "
		  "size in bytes (a whole number, no unit) from 0 to "
		  "9223372036854775807\n" },
		{ "choices", "mynetworks_style = lan\nsmtpd_tls_security_level = must\n",
		  "1:E:bad value 'lan' for parameter 'mynetworks_style': expected one "
		  "of host, subnet, class\n"
		  "2:E:bad value 'must' for parameter 'smtpd_tls_security_level': "
		  "expected one of (empty), none, may, encrypt\n" },
		{ "NUL byte", "myorigin = a\nx\0y = 1\n", "" },
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct config_diags d;
		struct config *cfg = config_new();
		config_diags_init(&d);
		size_t len = strlen(rows[i].text);
		if (strcmp(rows[i].name, "NUL byte") == 0)
			len = sizeof("myorigin = a\nx\0y = 1\n") - 1;
		int ret = config_load_text(cfg, "main.cf", rows[i].text, len, &d);
		char *got = diags_text(&d, 0);
		const char *want = rows[i].diags;
		if (strcmp(rows[i].name, "NUL byte") == 0)
			want = "2:E:NUL character in line; line ignored\n";
		if (strcmp(got, want) != 0)
			fail_msg("%s: got\n%s", rows[i].name, got);
		assert_int_equal(ret, d.n_errors > 0 ? -1 : 0);
		free(got);
		config_diags_deinit(&d);
		config_free(&cfg);
	}
}

/* ---- expansion ---- */

static void test_expand(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *text;
		const char *param;
		const char *value;
	} rows[] = {
		{ "dollar name", "myorigin = $mail_name", "myorigin", "facteur" },
		{ "braces", "myorigin = x${mail_name}y", "myorigin", "xfacteury" },
		{ "parens", "myorigin = x$(mail_name)y", "myorigin", "xfacteury" },
		{ "name ends at non-name char", "myorigin = $mail_name.org", "myorigin",
		  "facteur.org" },
		{ "longest name", "myorigin = $mail_namex", "myorigin", "" },
		{ "conditional ? set", "myorigin = <${mail_name?yes}>", "myorigin", "<yes>" },
		{ "conditional ? empty", "myorigin = <${relayhost?yes}>", "myorigin", "<>" },
		{ "conditional : empty", "myorigin = <${relayhost:no}>", "myorigin", "<no>" },
		{ "conditional : set", "myorigin = <${mail_name:no}>", "myorigin", "<>" },
		{ "conditional nested", "myorigin = ${mail_name?[$mail_name]}", "myorigin",
		  "[facteur]" },
		{ "conditional with parens", "myorigin = $(mail_name?a(b)c)", "myorigin",
		  "a(b)c" },
		{ "double dollar", "myorigin = a$$b", "myorigin", "a$b" },
		{ "lone dollar", "myorigin = a$ b$", "myorigin", "a$ b$" },
		{ "unknown name is empty", "myorigin = a$DOMAIN.b", "myorigin", "a.b" },
		{ "helper variable", "v = abc\nmyorigin = $v.org", "myorigin", "abc.org" },
		{ "helper defined later", "myorigin = $v.org\nv = abc", "myorigin", "abc.org" },
		{ "recursive", "a1 = $a2\na2 = $a3\na3 = deep\nmyorigin = [$a1]", "myorigin",
		  "[deep]" },
		{ "unimplemented value", "daemon_directory = /d\nmyorigin = $daemon_directory",
		  "myorigin", "/d" },
		{ "unset unimplemented", "myorigin = <$daemon_directory>", "myorigin", "<>" },
		{ "loop", "a = $b\nb = $a\nmyorigin = $a", "myorigin", "$a" },
		{ "self loop", "myorigin = x$myorigin", "myorigin", "x$myorigin" },
		{ "unclosed", "myorigin = ${mail_name", "myorigin", "${mail_name" },
		{ "empty braces", "myorigin = ${}", "myorigin", "${}" },
		{ "bad operator", "myorigin = ${mail_name!x}", "myorigin", "${mail_name!x}" },
		{ "variable value", "v = $mail_name!\nmyorigin = x", "v", "facteur!" },
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct config_diags d;
		struct config *cfg = load(rows[i].text, &d, NULL);
		const char *v = config_get(cfg, rows[i].param);
		if (v == NULL || strcmp(v, rows[i].value) != 0)
			fail_msg("%s: got '%s'", rows[i].name, v != NULL ? v : "(null)");
		/* The cache returns the same string. */
		assert_ptr_equal(v, config_get(cfg, rows[i].param));
		config_diags_deinit(&d);
		config_free(&cfg);
	}
}

/* Nesting depth: a chain of 90 references expands, one of 150 does not;
 * a doubling chain stops at the size limit instead of eating memory. */
static void test_expand_limits(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		int chain;
		bool doubling;
		bool ok;
	} rows[] = {
		{ "chain 90", 90, false, true },
		{ "chain 150", 150, false, false },
		{ "doubling 10", 10, true, true },
		{ "doubling 40", 40, true, false },
	};
	for (size_t r = 0; r < N(rows); r++) {
		struct buf text = BUF_INIT;
		buf_printf(&text, "v0 = x\n");
		for (int i = 1; i <= rows[r].chain; i++) {
			if (rows[r].doubling)
				buf_printf(&text, "v%d = $v%d$v%d\n", i, i - 1, i - 1);
			else
				buf_printf(&text, "v%d = $v%d\n", i, i - 1);
		}
		buf_printf(&text, "myorigin = $v%d\n", rows[r].chain);
		struct config_diags d;
		struct config *cfg = load(buf_cstr(&text), &d, NULL);
		assert_int_equal(d.count, 0);
		const char *v = config_get(cfg, "myorigin");
		bool expanded = v[0] != '$';
		if (expanded != rows[r].ok)
			fail_msg("%s: got '%.20s'", rows[r].name, v);
		if (rows[r].ok && rows[r].doubling)
			assert_int_equal(strlen(v), 1u << rows[r].chain);
		int check = config_check(cfg, &d);
		assert_int_equal(check, rows[r].ok ? 0 : -1);
		buf_deinit(&text);
		config_diags_deinit(&d);
		config_free(&cfg);
	}
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
	(void)state;
	struct config *cfg = config_new();
	const char *host = config_get(cfg, "myhostname");
	assert_non_null(host);
	assert_non_null(strchr(host, '.'));
	assert_string_equal(config_get(cfg, "myorigin"), host);
	assert_string_equal(config_get(cfg, "smtp_helo_name"), host);
	assert_string_equal(config_get(cfg, "mail_name"), "facteur");
	assert_string_equal(config_get(cfg, "relay_domains"), "");
	assert_string_equal(config_get(cfg, "mynetworks"), "127.0.0.0/8 [::1]/128");
	assert_string_equal(config_get(cfg, "smtpd_listen"), "all:25");
	assert_string_equal(config_get(cfg, "local_recipient_maps"),
			    "proxy:unix:passwd.byname hash:/etc/aliases");
	assert_string_equal(config_get(cfg, "queue_directory"), "/var/spool/facteur");
	assert_string_equal(config_get(cfg, "daemon_directory"), "");
	assert_null(config_get(cfg, "no_such_parameter"));
	assert_null(config_get_raw(cfg, "no_such_parameter"));
	assert_string_equal(config_get_raw(cfg, "smtpd_banner"),
			    "$myhostname ESMTP $mail_name");
	assert_false(config_get_bool(cfg, "append_dot_mydomain"));
	assert_true(config_get_bool(cfg, "smtpd_reject_unlisted_recipient"));
	assert_int_equal(config_get_int(cfg, "smtpd_recipient_limit"), 1000);
	assert_int_equal(config_get_time(cfg, "delay_warning_time"), 0);
	assert_int_equal(config_get_time(cfg, "maximal_queue_lifetime"), 5 * 86400);
	assert_int_equal(config_get_time(cfg, "maximal_backoff_time"), 4000);
	assert_true(config_get_size(cfg, "message_size_limit") == 10240000);
	char **list = config_get_list(cfg, "smtpd_relay_restrictions");
	assert_string_equal(list[0], "permit_mynetworks");
	assert_string_equal(list[2], "reject_unauth_destination");
	assert_null(list[3]);
	assert_ptr_equal(list, config_get_list(cfg, "smtpd_relay_restrictions"));
	config_free(&cfg);

	/* Computed defaults follow the values in main.cf. */
	static const struct {
		const char *text;
		const char *param;
		const char *value;
	} rows[] = {
		{ "myhostname = gw1.maison.mrs", "myorigin", "gw1.maison.mrs" },
		{ "myhostname = gw1.maison.mrs", "mydomain", "maison.mrs" },
		{ "myhostname = gw1.maison.mrs", "mydestination",
		  "gw1.maison.mrs, localhost.maison.mrs, localhost" },
		{ "myhostname = gw1.maison.mrs", "smtpd_banner", "gw1.maison.mrs ESMTP facteur" },
		{ "myhostname = host.org", "mydomain", "localdomain" },
		{ "myhostname = host", "mydomain", "localdomain" },
		{ "mydomain = example.test\nmyhostname = mx.$mydomain", "myorigin",
		  "mx.example.test" },
		{ "mail_name = Poste", "smtpd_banner", NULL },
		{ "inet_interfaces = 127.0.0.1", "smtpd_listen", "127.0.0.1:25" },
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct config_diags d;
		cfg = load(rows[i].text, &d, NULL);
		assert_int_equal(d.count, 0);
		const char *v = config_get(cfg, rows[i].param);
		if (rows[i].value == NULL) {
			/* "$myhostname ESMTP Poste" */
			assert_non_null(strstr(v, " ESMTP Poste"));
		} else if (strcmp(v, rows[i].value) != 0) {
			fail_msg("row %zu: got '%s'", i, v);
		}
		config_diags_deinit(&d);
		config_free(&cfg);
	}
}

/* A host name without a dot is completed with $mydomain (Postfix). */
static void test_hostname_completion(void **state)
{
	(void)state;
	struct config_diags d;
	struct config *cfg = load("mydomain = example.test\n", &d, NULL);
	const char *h = config_get(cfg, "myhostname");
	char sys[256];
	assert_int_equal(gethostname(sys, sizeof(sys)), 0);
	sys[sizeof(sys) - 1] = '\0';
	if (strchr(sys, '.') == NULL) {
		struct buf want = BUF_INIT;
		buf_printf(&want, "%s.example.test", sys);
		assert_string_equal(h, buf_cstr(&want));
		buf_deinit(&want);
	} else {
		assert_string_equal(h, sys);
	}
	config_diags_deinit(&d);
	config_free(&cfg);
}

/* ---- types ---- */

static void test_parse_time(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		char unit;
		int ret;
		long seconds;
	} rows[] = {
		{ "4", 'h', 0, 14400 },
		{ "4", 'd', 0, 4 * 86400 },
		{ "4", 's', 0, 4 },
		{ "0", 'h', 0, 0 },
		{ "30s", 'h', 0, 30 },
		{ "5m", 's', 0, 300 },
		{ "4h", 's', 0, 14400 },
		{ "2d", 's', 0, 172800 },
		{ "1w", 's', 0, 604800 },
		{ "", 's', -1, 0 },
		{ "s", 's', -1, 0 },
		{ "5x", 's', -1, 0 },
		{ "5ss", 's', -1, 0 },
		{ "5 s", 's', -1, 0 },
		{ "5S", 's', -1, 0 },
		{ "-5", 's', -1, 0 },
		{ "+5", 's', -1, 0 },
		{ "5", 'x', -1, 0 },
		{ "9223372036854775807s", 's', 0, 9223372036854775807L },
		{ "9223372036854775808s", 's', -1, 0 },
		{ "9223372036854775807m", 's', -1, 0 },
		{ "99999999999999999999", 's', -1, 0 },
	};
	for (size_t i = 0; i < N(rows); i++) {
		long s = -7;
		int ret = config_parse_time(rows[i].in, rows[i].unit, &s);
		if (ret != rows[i].ret || (ret == 0 && s != rows[i].seconds))
			fail_msg("'%s': ret %d, %ld", rows[i].in, ret, s);
	}
}

/* Values by type, including limits at max-1, max, max+1. */
static void test_typed_values(void **state)
{
	(void)state;
	enum kind { K_BOOL, K_INT, K_TIME, K_SIZE };
	static const struct {
		const char *param;
		const char *value;
		enum kind kind;
		bool ok;
		long long want;
	} rows[] = {
		{ "smtpd_helo_required", "yes", K_BOOL, true, 1 },
		{ "smtpd_helo_required", "YES", K_BOOL, true, 1 },
		{ "smtpd_helo_required", "True", K_BOOL, true, 1 },
		{ "smtpd_helo_required", "no", K_BOOL, true, 0 },
		{ "smtpd_helo_required", "false", K_BOOL, true, 0 },
		{ "smtpd_helo_required", "1", K_BOOL, false, 0 },
		{ "smtpd_helo_required", "", K_BOOL, false, 0 },
		{ "unknown_local_recipient_reject_code", "399", K_INT, false, 550 },
		{ "unknown_local_recipient_reject_code", "400", K_INT, true, 400 },
		{ "unknown_local_recipient_reject_code", "598", K_INT, true, 598 },
		{ "unknown_local_recipient_reject_code", "599", K_INT, true, 599 },
		{ "unknown_local_recipient_reject_code", "600", K_INT, false, 550 },
		{ "smtpd_recipient_limit", "2147483647", K_INT, true, 2147483647 },
		{ "smtpd_recipient_limit", "2147483648", K_INT, false, 1000 },
		{ "smtpd_recipient_limit", "1x", K_INT, false, 1000 },
		{ "smtpd_recipient_limit", "-1", K_INT, false, 1000 },
		{ "in_flow_delay", "9", K_TIME, true, 9 },
		{ "in_flow_delay", "10s", K_TIME, true, 10 },
		{ "in_flow_delay", "11s", K_TIME, false, 1 },
		{ "in_flow_delay", "1m", K_TIME, false, 1 },
		{ "delay_warning_time", "4", K_TIME, true, 14400 },
		{ "delay_warning_time", "90m", K_TIME, true, 5400 },
		{ "maximal_queue_lifetime", "2", K_TIME, true, 172800 },
		{ "minimal_backoff_time", "0", K_TIME, false, 300 },
		{ "minimal_backoff_time", "1", K_TIME, true, 1 },
		{ "message_size_limit", "0", K_SIZE, true, 0 },
		{ "message_size_limit", "52428800", K_SIZE, true, 52428800 },
		{ "message_size_limit", "10M", K_SIZE, false, 10240000 },
		{ "message_size_limit", "-1", K_SIZE, false, 10240000 },
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct buf text = BUF_INIT;
		buf_printf(&text, "%s = %s\n", rows[i].param, rows[i].value);
		struct config_diags d;
		int ret;
		struct config *cfg = load(buf_cstr(&text), &d, &ret);
		if ((ret == 0) != rows[i].ok || (d.n_errors == 0) != rows[i].ok)
			fail_msg("%s = %s: load %d", rows[i].param, rows[i].value, ret);
		long long got = 0;
		switch (rows[i].kind) {
		case K_BOOL: got = config_get_bool(cfg, rows[i].param); break;
		case K_INT: got = config_get_int(cfg, rows[i].param); break;
		case K_TIME: got = config_get_time(cfg, rows[i].param); break;
		case K_SIZE: got = (long long)config_get_size(cfg, rows[i].param); break;
		}
		if (got != rows[i].want)
			fail_msg("%s = %s: got %lld", rows[i].param, rows[i].value, got);
		/* config_check does not repeat what load reported. */
		size_t before = d.count;
		assert_int_equal(config_check(cfg, &d), 0);
		assert_int_equal(d.count, before);
		buf_deinit(&text);
		config_diags_deinit(&d);
		config_free(&cfg);
	}
}

/* ---- checks after expansion ---- */

static void test_check(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *text;
		const char *diags;	/* of config_check only */
	} rows[] = {
		{ "tables ok", "alias_maps = hash:/a, lmdb:/b texthash:/c regexp:/d "
		  "pcre:/e static:x inline:{ a=b, c=d } proxy:unix:passwd.byname "
		  "unix:passwd.byname proxy:hash:/f\n", "" },
		{ "table without type", "alias_maps = /etc/aliases\n",
		  "1:E:parameter 'alias_maps': '/etc/aliases' has no table type "
		  "(expected type:name, e.g. hash:/etc/aliases)\n" },
		{ "unsupported table type", "transport_maps = hash:/a, mysql:/b\n",
		  "1:E:parameter 'transport_maps': unsupported table type 'mysql' in "
		  "'mysql:/b' (facteur has hash, lmdb, texthash, inline, static, regexp, "
		  "pcre and unix:passwd.byname)\n" },
		{ "table without name", "header_checks = regexp:\n",
		  "1:E:parameter 'header_checks': 'regexp:' has no table name\n" },
		{ "inline without braces", "virtual_alias_maps = inline:a=b\n",
		  "1:E:parameter 'virtual_alias_maps': 'inline:a=b': inline tables are "
		  "written inline:{ key=value, ... }\n" },
		{ "table type via expansion", "t = dbm\nalias_database = $t:/etc/aliases\n",
		  "2:E:parameter 'alias_database': unsupported table type 'dbm' in "
		  "'dbm:/etc/aliases' (facteur has hash, lmdb, texthash, inline, static, "
		  "regexp, pcre and unix:passwd.byname)\n" },
		{ "listeners ok", "smtpd_listen = 127.0.0.1:25, [::1]:25 all:2525\n"
		  "submission_listen = localhost:587\nimaps_listen = 0.0.0.0:65535\n"
		  "pop3_listen = 127.0.0.1:1\n", "" },
		{ "listener default form", "smtpd_listen = $inet_interfaces:2525\n"
		  "inet_interfaces = 127.0.0.1, [::1]\n", "" },
		{ "listener port 0", "pop3_listen = 127.0.0.1:0\n",
		  "1:E:parameter 'pop3_listen': bad port '0' in listener '127.0.0.1:0' "
		  "(expected 1 to 65535)\n" },
		{ "listener port 65536", "imap_listen = [::1]:65536\n",
		  "1:E:parameter 'imap_listen': bad port '65536' in listener '[::1]:65536' "
		  "(expected 1 to 65535)\n" },
		{ "listener bare ipv6", "smtps_listen = ::1:465\n",
		  "1:E:parameter 'smtps_listen': bad listener '::1:465' (expected "
		  "address:port or [ipv6]:port)\n" },
		{ "listener bad ipv6", "smtps_listen = [1.2.3.4]:465\n",
		  "1:E:parameter 'smtps_listen': bad IPv6 address in listener "
		  "'[1.2.3.4]:465'\n" },
		{ "listener no port", "smtpd_listen = 127.0.0.1\n",
		  "1:E:parameter 'smtpd_listen': bad listener '127.0.0.1' (expected "
		  "address:port or [ipv6]:port)\n" },
		{ "listener host name", "smtpd_listen = mx.example:25\n",
		  "1:E:parameter 'smtpd_listen': bad address 'mx.example' in listener "
		  "'mx.example:25' (expected an IPv4 address, [ipv6], all or localhost)\n" },
		{ "value checked after expansion", "x = 4q\ndelay_warning_time = $x\n",
		  "2:E:bad value '4q' (from '$x') for parameter 'delay_warning_time': "
		  "expected a time: a number with an optional unit s, m, h, d or w (a "
		  "bare number is in hours)\n" },
		{ "good value after expansion", "x = 4\ndelay_warning_time = ${x}h\n", "" },
		{ "loop", "a = $b\nb = $a\nmyorigin = $a\n",
		  "3:E:parameter 'myorigin': $name expansion loops, nests too deep or is "
		  "unbalanced in '$a'\n" },
		{ "bad value reported once", "smtpd_helo_required = maybe\n", "" },
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct config_diags d;
		struct config *cfg = load(rows[i].text, &d, NULL);
		size_t from = d.count;
		int ret = config_check(cfg, &d);
		char *got = diags_text(&d, from);
		if (strcmp(got, rows[i].diags) != 0)
			fail_msg("%s: got\n%s", rows[i].name, got);
		assert_int_equal(ret, rows[i].diags[0] != '\0' ? -1 : 0);
		free(got);
		config_diags_deinit(&d);
		config_free(&cfg);
	}
}

/* ---- the seeds ---- */

static void test_seeds(void **state)
{
	(void)state;
	struct config_diags d;
	int ret;
	struct config *cfg = load(seeds_main_cf, &d, &ret);
	assert_int_equal(ret, 0);
	assert_int_equal(d.n_errors, 0);
	char *got = diags_text(&d, 0);
	const char *nyi = "is not implemented by facteur yet; ignored\n";
	struct buf want = BUF_INIT;
	buf_printf(&want, "1:W:Postfix parameter 'command_directory' %s", nyi);
	buf_printf(&want, "2:W:Postfix parameter 'daemon_directory' %s", nyi);
	buf_printf(&want, "9:W:Postfix parameter 'debug_peer_level' %s", nyi);
	buf_printf(&want, "10:W:Postfix parameter 'debugger_command' %s", nyi);
	buf_printf(&want, "11:W:unknown parameter 'PATH'; ignored\n");
	buf_printf(&want, "12:W:line without '=': taken as a continuation of 'PATH' "
		   "(indent it)\n");
	buf_printf(&want, "14:W:Postfix parameter 'sendmail_path' %s", nyi);
	buf_printf(&want, "15:W:Postfix parameter 'newaliases_path' %s", nyi);
	buf_printf(&want, "16:W:Postfix parameter 'mailq_path' %s", nyi);
	buf_printf(&want, "17:W:Postfix parameter 'setgid_group' %s", nyi);
	buf_printf(&want, "18:W:Postfix parameter 'manpage_directory' %s", nyi);
	buf_printf(&want, "19:W:Postfix parameter 'sample_directory' %s", nyi);
	buf_printf(&want, "20:W:Postfix parameter 'readme_directory' %s", nyi);
	assert_string_equal(got, buf_cstr(&want));
	free(got);
	buf_deinit(&want);

	/* config_check finds nothing more. */
	size_t before = d.count;
	assert_int_equal(config_check(cfg, &d), 0);
	assert_int_equal(d.count, before);

	assert_int_equal(config_get_time(cfg, "delay_warning_time"), 4 * 3600);
	assert_string_equal(config_get(cfg, "smtpd_banner"), "ESMTP facteur");
	assert_string_equal(config_get(cfg, "myorigin"), "gw1.maison.mrs");
	assert_string_equal(config_get(cfg, "mail_spool_directory"), "/var/spool/mail");
	/* $DOMAIN is for delivery time: raw keeps it, config_get empties it. */
	assert_string_equal(config_get_raw(cfg, "mailbox_command"),
			    "/usr/bin/procmail -Y -a $DOMAIN");
	assert_string_equal(config_get(cfg, "mailbox_command"),
			    "/usr/bin/procmail -Y -a ");
	assert_string_equal(config_get(cfg, "PATH"),
			    "/usr/bin:/usr/X11R6/bin xxgdb /usr/lib/postfix/  & sleep 5");
	assert_string_equal(config_get(cfg, "debugger_command"), "");
	char **dest = config_get_list(cfg, "mydestination");
	assert_string_equal(dest[0], "gw1.maison.mrs");
	assert_string_equal(dest[2], "maison.mrs");
	assert_null(dest[3]);
	char **maps = config_get_list(cfg, "local_recipient_maps");
	assert_string_equal(maps[1], "hash:/etc/postfix/aliases");
	config_diags_deinit(&d);
	config_free(&cfg);
}

/* ---- config_set ---- */

static void test_config_set(void **state)
{
	(void)state;
	struct config_diags d;
	struct config *cfg = load("myhostname = a.example.org\n", &d, NULL);
	const char *old = config_get(cfg, "myorigin");
	assert_string_equal(old, "a.example.org");
	char **old_list = config_get_list(cfg, "mydestination");
	config_set(cfg, "myhostname", "b.example.net");
	/* Cache invalidated; earlier strings stay valid until config_free. */
	assert_string_equal(config_get(cfg, "myorigin"), "b.example.net");
	assert_string_equal(config_get(cfg, "mydomain"), "example.net");
	assert_string_equal(old, "a.example.org");
	assert_string_equal(old_list[0], "a.example.org");
	assert_string_equal(config_get_list(cfg, "mydestination")[0], "b.example.net");

	config_set(cfg, "helper", "x");
	config_set(cfg, "myorigin", "$helper.org");
	assert_string_equal(config_get(cfg, "myorigin"), "x.org");
	config_set(cfg, "helper", "y");
	assert_string_equal(config_get(cfg, "myorigin"), "y.org");

	/* A bad value set later is found by config_check, and typed getters
	 * fall back to the default instead of crashing. */
	config_set(cfg, "smtpd_helo_required", "perhaps");
	config_set(cfg, "smtpd_timeout", "forever");
	assert_false(config_get_bool(cfg, "smtpd_helo_required"));
	assert_int_equal(config_get_time(cfg, "smtpd_timeout"), 300);
	size_t from = d.count;
	assert_int_equal(config_check(cfg, &d), -1);
	assert_int_equal(d.count - from, 2);
	config_diags_deinit(&d);
	config_free(&cfg);
}

/* ---- files, printing, dump ---- */

static char *read_pipe(int fd)
{
	struct buf b = BUF_INIT;
	char chunk[4096];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(&b, chunk, (size_t)n);
	return buf_steal(&b);
}

static void test_diags_print(void **state)
{
	(void)state;
	struct config_diags d;
	config_diags_init(&d);
	config_diag_add(&d, "/etc/facteur/main.cf", 3, true, "bad %s", "thing");
	config_diag_add(&d, "/etc/facteur/main.cf", 4, false, "odd");
	config_diag_add(&d, "/etc/facteur/main.cf", 0, true, "cannot read");
	config_diag_add(&d, "/etc/facteur/main.cf", 0, false, "hmm");
	assert_int_equal(d.n_errors, 2);
	int p[2];
	assert_int_equal(pipe(p), 0);
	config_diags_print(&d, p[1]);
	assert_int_equal(close(p[1]), 0);
	char *out = read_pipe(p[0]);
	assert_int_equal(close(p[0]), 0);
	assert_string_equal(out, "/etc/facteur/main.cf:3: bad thing\n"
			    "/etc/facteur/main.cf:4: warning: odd\n"
			    "/etc/facteur/main.cf: cannot read\n"
			    "/etc/facteur/main.cf: warning: hmm\n");
	free(out);
	config_diags_deinit(&d);
	assert_int_equal(d.count, 0);
}

static void test_dump(void **state)
{
	(void)state;
	struct config_diags d;
	struct config *cfg = load("zz = 1\nmyorigin = $zz.org\ncommand_directory = /x\n"
				  "relayhost = [mx]\n", &d, NULL);
	int p[2];
	assert_int_equal(pipe(p), 0);
	config_dump(cfg, p[1], true);
	assert_int_equal(close(p[1]), 0);
	char *out = read_pipe(p[0]);
	assert_int_equal(close(p[0]), 0);
	assert_string_equal(out, "command_directory = /x\nmyorigin = 1.org\n"
			    "relayhost = [mx]\nzz = 1\n");
	free(out);

	assert_int_equal(pipe(p), 0);
	config_dump(cfg, p[1], false);
	assert_int_equal(close(p[1]), 0);
	out = read_pipe(p[0]);
	assert_int_equal(close(p[0]), 0);
	assert_non_null(strstr(out, "\nmail_name = facteur\n"));
	assert_non_null(strstr(out, "\ndelay_warning_time = 0h\n"));
	assert_non_null(strstr(out, "\ncommand_directory = /x\n"));
	assert_null(strstr(out, "daemon_directory"));
	free(out);
	config_diags_deinit(&d);
	config_free(&cfg);
}

static void test_load_file(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/facteur-config-test.XXXXXX";
	char *dir = mkdtemp(tmpl);
	assert_non_null(dir);
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/main.cf", dir);

	/* Missing main.cf: defaults, no error. */
	struct config_diags d;
	config_diags_init(&d);
	struct config *cfg = config_new();
	assert_int_equal(config_load(cfg, dir, &d), 0);
	assert_int_equal(d.count, 0);
	config_free(&cfg);

	FILE *f = fopen(buf_cstr(&path), "w");
	assert_non_null(f);
	fputs("# test\nmyorigin = example.org\n\nsmtpd_helo_required = maybe\n", f);
	assert_int_equal(fclose(f), 0);
	cfg = config_new();
	assert_int_equal(config_load(cfg, dir, &d), -1);
	assert_int_equal(d.count, 1);
	assert_string_equal(d.items[0].file, buf_cstr(&path));
	assert_int_equal(d.items[0].line, 4);
	assert_string_equal(config_get(cfg, "myorigin"), "example.org");
	config_free(&cfg);
	config_diags_deinit(&d);
	assert_int_equal(unlink(buf_cstr(&path)), 0);

	/* Unreadable: a directory in place of the file. */
	assert_int_equal(mkdir(buf_cstr(&path), 0700), 0);
	cfg = config_new();
	assert_int_equal(config_load(cfg, dir, &d), -1);
	assert_int_equal(d.n_errors, 1);
	assert_int_equal(d.items[0].line, 0);
	config_free(&cfg);
	config_diags_deinit(&d);
	assert_int_equal(rmdir(buf_cstr(&path)), 0);
	assert_int_equal(rmdir(dir), 0);
	buf_deinit(&path);

	assert_int_equal(setenv("FACTEUR_CONFIG", "/tmp/x", 1), 0);
	assert_string_equal(config_dir_default(), "/tmp/x");
	assert_int_equal(unsetenv("FACTEUR_CONFIG"), 0);
	assert_string_equal(config_dir_default(), "/etc/facteur");
}

/* ---- the table itself ---- */

static void test_param_table(void **state)
{
	(void)state;
	size_t n = config_param_count(), implemented = 0;
	for (size_t i = 0; i < n; i++) {
		const char *name = config_param_name(i);
		assert_non_null(name);
		if (i > 0 && strcmp(config_param_name(i - 1), name) >= 0)
			fail_msg("duplicate or unsorted: %s", name);
		if (config_param_is_implemented(name))
			implemented++;
	}
	assert_null(config_param_name(n));
	assert_true(n - implemented >= 120);
	assert_true(implemented >= 100);
	assert_true(config_param_is_implemented("delay_warning_time"));
	assert_false(config_param_is_implemented("sendmail_path"));
	assert_false(config_param_is_implemented("PATH"));

	/* Every default is valid: setting each implemented parameter to its
	 * own default text passes config_check. */
	struct config *cfg = config_new();
	for (size_t i = 0; i < n; i++) {
		const char *name = config_param_name(i);
		if (config_param_is_implemented(name)) {
			char *def = xstrdup(config_get_raw(cfg, name));
			config_set(cfg, name, def);
			free(def);
		}
	}
	struct config_diags d;
	config_diags_init(&d);
	assert_int_equal(config_check(cfg, &d), 0);
	assert_int_equal(d.count, 0);
	config_diags_deinit(&d);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_diagnostics),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_expand_limits),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_hostname_completion),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_typed_values),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_seeds),
		cmocka_unit_test(test_config_set),
		cmocka_unit_test(test_diags_print),
		cmocka_unit_test(test_dump),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_param_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
