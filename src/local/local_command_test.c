/* local_command_test.c - unit tests of command delivery (local_command.c):
 * the environment, $name expansion with shell quoting, the sysexits
 * mapping, and real /bin/sh runs (input, exit codes, signals, time limit,
 * a command that does not read its input); plus the dlv.h request parser
 * and reply builder (local.c). */
#include "local/local.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static const struct local_vars vars = {
	.home = "/home/joe",
	.user = "joe",
	.shell = "/bin/sh",
	.local = "joe+box",
	.domain = "example.test",
	.extension = "box",
	.recipient = "joe+box@example.test",
	.sender = "it's`evil`$(x)\"@x.test",
	.original_recipient = "joe",
};

static void test_env(void **state)
{
	(void)state;
	unsetenv("LANG");
	setenv("TZ", "Europe/Paris", 1);
	char **env = local_command_env(&vars);
	const char *want[] = { "HOME=/home/joe", "LOGNAME=joe", "USER=joe", "SHELL=/bin/sh",
			       "LOCAL=joe+box", "DOMAIN=example.test", "EXTENSION=box",
			       "RECIPIENT=joe+box@example.test",
			       "SENDER=it's`evil`$(x)\"@x.test", "ORIGINAL_RECIPIENT=joe",
			       "PATH=/usr/bin:/bin", "TZ=Europe/Paris", NULL };
	size_t i;
	for (i = 0; want[i] != NULL; i++) {
		assert_non_null(env[i]);
		assert_string_equal(env[i], want[i]);
	}
	assert_null(env[i]);
	str_list_free(&env);
	/* Unset values are empty, control characters replaced. */
	struct local_vars v = { .user = "a\nb" };
	env = local_command_env(&v);
	assert_string_equal(env[0], "HOME=");
	assert_string_equal(env[1], "LOGNAME=a?b");
	str_list_free(&env);
}

static void test_expand(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		const char *want;
	} rows[] = {
		{ "procmail -a $EXTENSION", "procmail -a 'box'" },
		{ "procmail -a \"$EXTENSION\"", "procmail -a \"box\"" },
		{ "procmail -a '$EXTENSION'", "procmail -a '$EXTENSION'" },
		{ "x ${extension} $home", "x 'box' '/home/joe'" },
		{ "echo $SENDER", "echo 'it'\\''s`evil`$(x)\"@x.test'" },
		{ "echo \"$sender\"", "echo \"it's\\`evil\\`\\$(x)\\\"@x.test\"" },
		{ "echo $UNKNOWN ${HOME", "echo $UNKNOWN ${HOME" },
		{ "echo \\$HOME", "echo \\$HOME" },
		{ "echo $", "echo $" },
		{ "/usr/bin/procmail -Y -a $DOMAIN", "/usr/bin/procmail -Y -a 'example.test'" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct buf b = BUF_INIT;
		local_command_expand(&b, rows[i].in, &vars);
		if (strcmp(buf_cstr(&b), rows[i].want) != 0)
			fail_msg("%s: got [%s] want [%s]", rows[i].in, buf_cstr(&b), rows[i].want);
		buf_deinit(&b);
	}
}

static void test_exit_map(void **state)
{
	(void)state;
	static const struct {
		int code;
		enum local_status status;
		const char *dsn;
	} rows[] = {
		{ 0, LOCAL_OK, "2.0.0" },        { 1, LOCAL_PERMFAIL, "5.3.0" },
		{ 63, LOCAL_PERMFAIL, "5.3.0" }, { 64, LOCAL_PERMFAIL, "5.3.0" },
		{ 67, LOCAL_PERMFAIL, "5.1.1" }, { 71, LOCAL_TEMPFAIL, "4.3.0" },
		{ 75, LOCAL_TEMPFAIL, "4.3.0" }, { 77, LOCAL_PERMFAIL, "5.7.0" },
		{ 78, LOCAL_PERMFAIL, "5.3.5" }, { 79, LOCAL_PERMFAIL, "5.3.0" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		enum local_status st;
		const char *dsn, *text;
		local_command_exit_map(rows[i].code, &st, &dsn, &text);
		assert_int_equal(st, rows[i].status);
		assert_string_equal(dsn, rows[i].dsn);
	}
}

static int one_chunk(void *ctx, int (*cb)(void *cbctx, const uint8_t *data, size_t len),
		     void *cbctx, const char **error_r)
{
	const char *s = ctx;
	(void)error_r;
	return cb(cbctx, (const uint8_t *)s, strlen(s));
}

static void test_run(void **state)
{
	(void)state;
	char dir[] = "/tmp/local_command_test.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char out[128];
	snprintf(out, sizeof(out), "%s/out", dir);
	/* A big body: the command must get all of it. */
	struct buf body = BUF_INIT;
	buf_append_str(&body, "Subject: x\n\nFrom me\n");
	for (int i = 0; i < 20000; i++)
		buf_append_str(&body, "0123456789012345678901234567890123456789\n");
	struct local_msg m = { "QID", "s@x.test", one_chunk, (void *)buf_cstr(&body) };
	struct local_rcpt r = { "joe@example.test", "joe" };
	char **env = local_command_env(&vars);

	struct buf cmd = BUF_INIT;
	buf_printf(&cmd, "cat > %s; echo $RECIPIENT >> %s", out, out);
	struct local_result res;
	local_result_init(&res);
	assert_int_equal(local_command_run(buf_cstr(&cmd), env, dir, &m, &r, 30, "ok", &res), 0);
	assert_int_equal(res.status, LOCAL_OK);
	assert_string_equal(buf_cstr(&res.text), "ok");
	struct buf got = BUF_INIT;
	assert_int_equal(fs_read_file(out, 1 << 24, &got), 0);
	assert_true(strncmp(buf_cstr(&got), "From s@x.test ", 14) == 0);
	assert_non_null(strstr(buf_cstr(&got), "\nReturn-Path: <s@x.test>\nX-Original-To: joe\n"
						"Delivered-To: joe@example.test\nSubject: x\n\n"
						"From me\n0123"));
	assert_true(got.len > body.len);
	const char *tail = "0123456789012345678901234567890123456789\njoe+box@example.test\n";
	assert_string_equal(buf_cstr(&got) + got.len - strlen(tail), tail);
	buf_deinit(&got);

	static const struct {
		const char *name;
		const char *cmd;
		unsigned limit;
		enum local_status status;
		const char *dsn;
		const char *text_part;
	} rows[] = {
		{ "exit 1 with output", "echo oops; exit 1", 30, LOCAL_PERMFAIL, "5.3.0",
		  "Command died with status 1: \"echo oops; exit 1\". Command output: oops" },
		{ "tempfail", "exit 75", 30, LOCAL_TEMPFAIL, "4.3.0", "status 75" },
		{ "nouser", "exit 67", 30, LOCAL_PERMFAIL, "5.1.1", "status 67" },
		{ "signal", "kill -9 $$", 30, LOCAL_TEMPFAIL, "4.3.0", "signal 9" },
		{ "does not read input", "exit 0", 30, LOCAL_OK, "2.0.0", "ok" },
		{ "time limit", "sleep 30", 1, LOCAL_TEMPFAIL, "4.3.0", "time limit" },
		{ "background child keeps output", "sleep 30 & exit 0", 30, LOCAL_OK, "2.0.0", "ok" },
		{ "cwd", "test \"$(pwd)\" = \"$HOME\" || test -d ./ && exit 0", 30, LOCAL_OK, "2.0.0",
		  "ok" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		local_result_set(&res, LOCAL_OK, "2.0.0", "%s", "");
		local_command_run(rows[i].cmd, env, dir, &m, &r, rows[i].limit, "ok", &res);
		if (res.status != rows[i].status || strcmp(res.dsn, rows[i].dsn) != 0 ||
		    strstr(buf_cstr(&res.text), rows[i].text_part) == NULL)
			fail_msg("%s: %d %s %s", rows[i].name, res.status, res.dsn,
				 buf_cstr(&res.text));
	}
	local_result_deinit(&res);
	str_list_free(&env);
	buf_deinit(&cmd);
	buf_deinit(&body);
	char rm[160];
	snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
	assert_int_equal(system(rm), 0);
}

static void test_request_parse(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *packet;
		const char *error; /* NULL: valid */
	} rows[] = {
		{ "full", "req=7\nqueue_id=ABC123\nrcpt=2\naddress=joe@x\norig_to=root\nclass=local",
		  NULL },
		{ "any order, unknown key, trailing newline",
		  "class=virtual\nnew=1\naddress=a@v\nrcpt=0\nqueue_id=B1\nreq=1\n", NULL },
		{ "no req", "queue_id=A\nrcpt=0\naddress=a\nclass=local", "missing or bad req" },
		{ "bad queue id", "req=1\nqueue_id=../etc\nrcpt=0\naddress=a\nclass=local",
		  "missing or bad queue_id" },
		{ "lower-case id", "req=1\nqueue_id=abc\nrcpt=0\naddress=a\nclass=local",
		  "missing or bad queue_id" },
		{ "bad rcpt", "req=1\nqueue_id=A\nrcpt=-1\naddress=a\nclass=local",
		  "missing or bad rcpt" },
		{ "empty address", "req=1\nqueue_id=A\nrcpt=0\naddress=\nclass=local",
		  "missing address" },
		{ "control char", "req=1\nqueue_id=A\nrcpt=0\naddress=a\tb\nclass=local",
		  "control character in address" },
		{ "bad class", "req=1\nqueue_id=A\nrcpt=0\naddress=a\nclass=smtp",
		  "missing or bad class" },
		{ "repeated", "req=1\nreq=2\nqueue_id=A\nrcpt=0\naddress=a\nclass=local",
		  "repeated key" },
		{ "no equals", "req=1\ngarbage\n", "line without '='" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct local_req req;
		const char *err = NULL;
		int r = local_req_parse(rows[i].packet, strlen(rows[i].packet), &req, &err);
		if (rows[i].error == NULL) {
			if (r != 0)
				fail_msg("%s: %s", rows[i].name, err);
		} else {
			assert_int_equal(r, -1);
			if (strcmp(err, rows[i].error) != 0)
				fail_msg("%s: got %s", rows[i].name, err);
		}
		local_req_free(&req);
	}
	struct local_req req;
	const char *err;
	const char *p = "req=7\nqueue_id=ABC123\nrcpt=2\naddress=joe@x\norig_to=root\nclass=virtual";
	assert_int_equal(local_req_parse(p, strlen(p), &req, &err), 0);
	assert_string_equal(req.req, "7");
	assert_string_equal(req.queue_id, "ABC123");
	assert_int_equal(req.rcpt, 2);
	assert_string_equal(req.orig_to, "root");
	assert_true(req.is_virtual);
	local_req_free(&req);
	/* The req number survives a later error, for the error reply. */
	p = "req=9\nclass=bad";
	assert_int_equal(local_req_parse(p, strlen(p), &req, &err), -1);
	assert_string_equal(req.req, "9");
	local_req_free(&req);
}

static void test_reply_build(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	char *fwd[] = { "a@x.test", "b\n@y" };
	local_reply_build(&b, "3", "sent", "2.0.0", "delivered to mailbox", fwd, 2);
	assert_string_equal(buf_cstr(&b), "req=3\nstatus=sent\ndsn=2.0.0\ntext=delivered to mailbox"
					  "\nforward=a@x.test\nforward=b?@y");
	local_reply_build(&b, NULL, "deferred", "4.3.0", "line1\nline2", NULL, 0);
	assert_string_equal(buf_cstr(&b), "req=0\nstatus=deferred\ndsn=4.3.0\ntext=line1?line2");
	buf_deinit(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_exit_map),
		cmocka_unit_test(test_run),
		cmocka_unit_test(test_request_parse),
		cmocka_unit_test(test_reply_build),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
