/* local_alias_test.c - unit tests of the expansion of a local recipient
 * (local_alias.c) with fake alias, user and file lookups: aliases, loops,
 * depth limit, :include:, .forward, forwards to other domains, the
 * allow_mail_to_* restrictions, lookup errors. */
#include "local/local.h"

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Fake world: "name=rhs" aliases, known users, "path=content" files. */
struct fake_world {
	const char *const *aliases;
	const char *const *users;
	const char *const *files;
	bool alias_error;
};

static const char *fake_find(const char *const *list, const char *key)
{
	size_t n = strlen(key);
	for (size_t i = 0; list != NULL && list[i] != NULL; i++)
		if (strncmp(list[i], key, n) == 0 && list[i][n] == '=')
			return list[i] + n + 1;
	return NULL;
}

static int fake_alias(void *ctx, const char *name, char **rhs_r, struct local_user *privs_r,
		      const char **error_r)
{
	struct fake_world *w = ctx;
	if (w->alias_error) {
		*error_r = "database is down";
		return -1;
	}
	const char *v = fake_find(w->aliases, name);
	if (v == NULL)
		return 0;
	*rhs_r = xstrdup(v);
	privs_r->name = xstrdup("aliasowner");
	privs_r->uid = 500;
	privs_r->gid = 500;
	return 1;
}

static int fake_user(void *ctx, const char *name, struct local_user *u_r, const char **error_r)
{
	struct fake_world *w = ctx;
	(void)error_r;
	for (size_t i = 0; w->users != NULL && w->users[i] != NULL; i++) {
		if (strcmp(w->users[i], name) == 0) {
			u_r->name = xstrdup(name);
			u_r->uid = 1000 + (uid_t)i;
			u_r->gid = 1000;
			struct buf h = BUF_INIT;
			buf_printf(&h, "/home/%s", name);
			u_r->home = buf_steal(&h);
			u_r->shell = xstrdup("/bin/sh");
			return 1;
		}
	}
	return 0;
}

static int fake_read(void *ctx, const struct local_user *u, const char *path, struct buf *out,
		     struct buf *err)
{
	struct fake_world *w = ctx;
	(void)u;
	if (strcmp(path, "/unreadable") == 0) {
		buf_printf(err, "cannot read %s: Permission denied", path);
		return -1;
	}
	const char *v = fake_find(w->files, path);
	if (v == NULL)
		return 0;
	buf_append_str(out, v);
	return 1;
}

static bool fake_local_domain(void *ctx, const char *domain)
{
	(void)ctx;
	return strcmp(domain, "here.test") == 0;
}

/* Render an expansion as "kind:value(owner)" items joined by " ", or
 * "FAIL dsn text". */
static char *render(struct local_expansion *exp)
{
	struct buf b = BUF_INIT;
	if (exp->failed) {
		buf_printf(&b, "FAIL %s %s", exp->result.dsn, buf_cstr(&exp->result.text));
		return buf_steal(&b);
	}
	static const char *const kinds[] = { "mbox", "file", "cmd", "fwd" };
	for (size_t i = 0; i < exp->count; i++) {
		struct local_target *t = &exp->targets[i];
		buf_printf(&b, "%s%s:%s(%s)", i > 0 ? " " : "", kinds[t->kind], t->value, t->owner);
		if (t->is_done)
			buf_printf(&b, "[%s]", t->result.dsn);
	}
	return buf_steal(&b);
}

static void test_expand_table(void **state)
{
	(void)state;
	static const char *const users[] = { "chris", "root", "bob", "loopy", "lazy", NULL };
	static const char *const aliases[] = {
		"postmaster=root",
		"root=chris",
		"team=chris, bob, chris, dave@other.test, \"|/usr/bin/procmail -a x\", /var/log/team",
		"selfish=selfish, bob",
		"loopy=loopy2",
		"loopy2=loopy",
		"ghost=nosuchuser",
		"inc=:include:/etc/list",
		"incself=:include:/etc/self",
		"chris+box=bob",
		"remote=someone@Other.Test",
		"virt=x@here.test",
		"x=bob",
		"badsyntax=\"unbalanced",
		NULL,
	};
	static const char *const files[] = {
		"/etc/list=# comment\nbob\n|cmd from include\n/tmp/f\n",
		"/etc/self=:include:/etc/self, chris",
		"/home/bob/.forward=bob@other.test, \\bob, |/bin/vacation",
		"/home/loopy/.forward=",
		"/home/lazy/.forward=# nothing but a comment\n",
		NULL,
	};
	static const struct {
		const char *name;
		const char *input;
		const char *want;
	} rows[] = {
		{ "user", "chris", "mbox:chris(chris)" },
		{ "two hops", "postmaster", "mbox:chris(chris)" },
		{ "unknown", "nobody", "FAIL 5.1.1 unknown user: \"nobody\"" },
		{ "list with duplicates, forward, command, file", "team",
		  "mbox:chris(chris) fwd:bob@other.test(bob) mbox:bob(bob) "
		  "cmd:/bin/vacation(bob) fwd:dave@other.test(team) "
		  "cmd:/usr/bin/procmail -a x(team) file:/var/log/team(team)" },
		{ "self reference", "selfish", "mbox:selfish(selfish)[5.1.1] fwd:bob@other.test(bob) "
		  "mbox:bob(bob) cmd:/bin/vacation(bob)" },
		{ "two-name loop ends in the mailbox", "loopy", "mbox:loopy(loopy)" },
		{ "alias to unknown user", "ghost", "mbox:nosuchuser(nosuchuser)[5.1.1]" },
		{ "include", "inc", "fwd:bob@other.test(bob) mbox:bob(bob) cmd:/bin/vacation(bob) "
		  "cmd:cmd from include(inc)[5.7.1] file:/tmp/f(inc)[5.7.1]" },
		{ "include including itself", "incself", "mbox:chris(chris)" },
		{ "extension alias first", "chris+box", "fwd:bob@other.test(bob) mbox:bob(bob) "
		  "cmd:/bin/vacation(bob)" },
		{ "extension falls back", "chris+other", "mbox:chris(chris)" },
		{ "forward domain lower-cased", "remote", "fwd:someone@other.test(remote)" },
		{ "local domain expanded again", "virt", "fwd:bob@other.test(bob) mbox:bob(bob) "
		  "cmd:/bin/vacation(bob)" },
		{ "loop reaching a non-user bounces", "loopy2", "mbox:loopy2(loopy2)[5.1.1]" },
		{ "comment-only .forward is ignored", "lazy", "mbox:lazy(lazy)" },
		{ "syntax error defers", "badsyntax",
		  "FAIL 4.3.0 syntax error in expansion of badsyntax: unbalanced double quote" },
	};
	struct fake_world w = { aliases, users, files, false };
	static char *fwd_path[] = { "$home/.forward${recipient_delimiter}${extension}",
				    "$home/.forward", NULL };
	struct local_expand_ops ops = {
		.alias_lookup = fake_alias,
		.user_lookup = fake_user,
		.read_file = fake_read,
		.domain_is_local = fake_local_domain,
		.ctx = &w,
		.recipient_delimiter = "+",
		.forward_path = fwd_path,
		.allow_commands = LOCAL_FROM_ALIAS | LOCAL_FROM_FORWARD,
		.allow_files = LOCAL_FROM_ALIAS | LOCAL_FROM_FORWARD,
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct local_expansion exp;
		assert_int_equal(local_expand(&ops, rows[i].input, &exp), 0);
		char *got = render(&exp);
		if (strcmp(got, rows[i].want) != 0)
			fail_msg("%s: got [%s]\nwant [%s]", rows[i].name, got, rows[i].want);
		free(got);
		local_expansion_free(&exp);
	}
}

static void test_expand_privileges(void **state)
{
	(void)state;
	static const char *const users[] = { "bob", NULL };
	static const char *const aliases[] = { "a=|cmd1", NULL };
	static const char *const files[] = { "/home/bob/.forward=|cmd2\n/home/bob/file", NULL };
	struct fake_world w = { aliases, users, files, false };
	static char *fwd_path[] = { "$home/.forward", NULL };
	struct local_expand_ops ops = { fake_alias, fake_user, fake_read, fake_local_domain, &w,
					"", fwd_path, LOCAL_FROM_ALIAS | LOCAL_FROM_FORWARD,
					LOCAL_FROM_FORWARD };
	struct local_expansion exp;
	local_expand(&ops, "a", &exp);
	assert_false(exp.failed);
	assert_int_equal(exp.count, 1);
	assert_int_equal(exp.targets[0].uid, 500); /* alias owner */
	assert_string_equal(exp.targets[0].user, "aliasowner");
	local_expansion_free(&exp);
	local_expand(&ops, "bob", &exp);
	assert_int_equal(exp.count, 2);
	assert_int_equal(exp.targets[0].uid, 1000); /* the user */
	assert_int_equal(exp.targets[1].kind, LOCAL_T_FILE);
	assert_false(exp.targets[1].is_done);
	local_expansion_free(&exp);
	/* Commands only from aliases now: the .forward command bounces. */
	ops.allow_commands = LOCAL_FROM_ALIAS;
	local_expand(&ops, "bob", &exp);
	assert_true(exp.targets[0].is_done);
	assert_string_equal(buf_cstr(&exp.targets[0].result.text), "mail to command is restricted");
	local_expansion_free(&exp);
}

static void test_expand_depth_limit(void **state)
{
	(void)state;
	/* a0 -> a1 -> ... -> a(N): no cycle, just too deep. */
	static char *aliases[LOCAL_EXPAND_DEPTH_MAX + 3];
	static char *users[] = { "end", NULL };
	size_t limits[] = { LOCAL_EXPAND_DEPTH_MAX - 1, LOCAL_EXPAND_DEPTH_MAX,
			    LOCAL_EXPAND_DEPTH_MAX + 1 };
	for (size_t k = 0; k < 3; k++) {
		size_t n = limits[k];
		for (size_t i = 0; i < n; i++) {
			struct buf b = BUF_INIT;
			if (i + 1 < n)
				buf_printf(&b, "a%zu=a%zu", i, i + 1);
			else
				buf_printf(&b, "a%zu=end", i);
			aliases[i] = buf_steal(&b);
		}
		aliases[n] = NULL;
		struct fake_world w = { (const char *const *)aliases, (const char *const *)users,
					NULL, false };
		struct local_expand_ops ops = { fake_alias, fake_user, fake_read, fake_local_domain,
						&w, "", NULL, 0, 0 };
		struct local_expansion exp;
		local_expand(&ops, "a0", &exp);
		char *got = render(&exp);
		if (n <= LOCAL_EXPAND_DEPTH_MAX)
			assert_string_equal(got, "mbox:end(end)");
		else
			assert_string_equal(got, "FAIL 5.4.6 mail forwarding loop for a0");
		free(got);
		local_expansion_free(&exp);
		for (size_t i = 0; i < n; i++)
			free(aliases[i]);
	}
}

static void test_expand_errors(void **state)
{
	(void)state;
	static const char *const users[] = { "bob", NULL };
	static const char *const aliases[] = { "inc=:include:/missing", "ro=:include:/unreadable",
					       NULL };
	struct fake_world w = { aliases, users, NULL, false };
	struct local_expand_ops ops = { fake_alias, fake_user, fake_read, fake_local_domain, &w,
					"", NULL, 0, 0 };
	static const struct {
		const char *input;
		bool alias_error;
		const char *want;
	} rows[] = {
		{ "bob", true, "FAIL 4.3.0 alias database unavailable: database is down" },
		{ "inc", false, "FAIL 4.3.0 cannot open include file /missing: No such file or "
				"directory" },
		{ "ro", false, "FAIL 4.3.0 cannot read /unreadable: Permission denied" },
	};
	for (size_t i = 0; i < 3; i++) {
		w.alias_error = rows[i].alias_error;
		struct local_expansion exp;
		local_expand(&ops, rows[i].input, &exp);
		char *got = render(&exp);
		assert_string_equal(got, rows[i].want);
		free(got);
		local_expansion_free(&exp);
	}
}

static const char *vars_lookup(void *ctx, const char *name)
{
	(void)ctx;
	if (strcmp(name, "home") == 0)
		return "/home/u";
	if (strcmp(name, "extension") == 0)
		return "ext";
	if (strcmp(name, "empty") == 0)
		return "";
	return NULL;
}

static void test_expand_vars_and_split(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		const char *want;
	} rows[] = {
		{ "$home/.forward", "/home/u/.forward" },
		{ "${home}/x$(extension)", "/home/u/xext" },
		{ "a${extension?+$extension}", "a+ext" },
		{ "a${empty?+$extension}", "a" },
		{ "a${empty:none}", "anone" },
		{ "$$home $unknown.", "$home ." },
		{ "trailing $", "trailing $" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct buf b = BUF_INIT;
		local_expand_vars(&b, rows[i].in, vars_lookup, NULL);
		assert_string_equal(buf_cstr(&b), rows[i].want);
		buf_deinit(&b);
	}
	static const struct {
		const char *in, *delims, *user, *ext;
	} splits[] = {
		{ "joe+box", "+", "joe", "box" },
		{ "joe-a+b", "+-", "joe", "a+b" },
		{ "joe", "+", "joe", NULL },
		{ "+joe", "+", "+joe", NULL },
		{ "joe+", "+", "joe", "" },
		{ "joe+box", "", "joe+box", NULL },
	};
	for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
		char *u, *e;
		local_split_extension(splits[i].in, splits[i].delims, &u, &e);
		assert_string_equal(u, splits[i].user);
		if (splits[i].ext == NULL)
			assert_null(e);
		else
			assert_string_equal(e, splits[i].ext);
		free(u);
		free(e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand_table),
		cmocka_unit_test(test_expand_privileges),
		cmocka_unit_test(test_expand_depth_limit),
		cmocka_unit_test(test_expand_errors),
		cmocka_unit_test(test_expand_vars_and_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
