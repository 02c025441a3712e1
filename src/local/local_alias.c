/* local_alias.c - expansion of a local recipient into delivery targets:
 * aliases(5), :include: files and ~/.forward, as Postfix's local(8) and
 * sendmail do.
 *
 * Called by the worker (local_deliver.c) with real lookups, and by the unit
 * tests with fake ones: every lookup goes through struct local_expand_ops.
 *
 * Rules:
 *   - a name is looked up in the aliases ("name+ext" first, then "name");
 *     an alias right-hand side is split with aliases_parse_rhs();
 *   - an address with no domain or one of our domains is expanded again;
 *     other addresses become forwards (qmgr queues them);
 *   - a name that reaches itself (a: a, b  or  .forward "user") is
 *     delivered to the mailbox of the user of that name, as sendmail does;
 *     deeper than LOCAL_EXPAND_DEPTH_MAX is a mail forwarding loop (5.4.6);
 *   - "\user" (in .forward files) is that user's mailbox, no expansion;
 *   - |command, /file from aliases run with the alias database owner's
 *     privileges (the caller maps root to default_privs), from .forward
 *     with the user's; allowed only when allow_mail_to_commands /
 *     allow_mail_to_files names the source ("alias", "forward",
 *     "include"), else the target bounces 5.7.1 as in Postfix;
 *   - a name that is no alias must be a user (getpwnam), else "unknown
 *     user"; the user's forward_path files are read as the user;
 *   - a lookup or read error defers the whole recipient (4.3.0): a retry
 *     redoes the whole expansion.
 */
#include "local/local.h"

#include "mail/addr.h"
#include "mail/aliases.h"

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

struct local_expand_state {
	const struct local_expand_ops *ops;
	struct local_expansion *exp;
	char *stack[LOCAL_EXPAND_DEPTH_MAX + 2];
	size_t depth;
};

void local_user_free(struct local_user *u)
{
	free(u->name);
	free(u->home);
	free(u->shell);
	memset(u, 0, sizeof(*u));
}

void local_split_extension(const char *local_part, const char *delimiters, char **user_r,
			   char **ext_r)
{
	size_t n = delimiters == NULL || delimiters[0] == '\0' ? strlen(local_part)
							       : strcspn(local_part, delimiters);
	/* "+foo" (delimiter first) is a name, not an empty name. */
	if (n == 0 || local_part[n] == '\0') {
		*user_r = xstrdup(local_part);
		*ext_r = NULL;
		return;
	}
	*user_r = xstrndup(local_part, n);
	*ext_r = xstrdup(local_part + n + 1);
}

void local_expand_vars(struct buf *out, const char *s,
		       const char *(*lookup)(void *ctx, const char *name), void *ctx)
{
	while (*s != '\0') {
		if (*s != '$') {
			buf_append_char(out, *s++);
			continue;
		}
		if (s[1] == '$') {
			buf_append_char(out, '$');
			s += 2;
			continue;
		}
		bool braced = s[1] == '{' || s[1] == '(';
		char close = s[1] == '{' ? '}' : ')';
		const char *start = s + (braced ? 2 : 1);
		const char *end = start;
		while (isalnum((unsigned char)*end) || *end == '_')
			end++;
		if (end == start) {
			buf_append_char(out, *s++);
			continue;
		}
		char *name = xstrndup(start, (size_t)(end - start));
		const char *val = lookup(ctx, name);
		free(name);
		if (val == NULL)
			val = "";
		if (!braced) {
			buf_append_str(out, val);
			s = end;
			continue;
		}
		if (*end == close) {
			buf_append_str(out, val);
			s = end + 1;
			continue;
		}
		if (*end == '?' || *end == ':') {
			const char *text = end + 1;
			const char *tend = strchr(text, close);
			if (tend == NULL)
				tend = text + strlen(text);
			bool want = *end == '?' ? val[0] != '\0' : val[0] == '\0';
			if (want) {
				/* The text may itself name parameters. */
				char *inner = xstrndup(text, (size_t)(tend - text));
				local_expand_vars(out, inner, lookup, ctx);
				free(inner);
			}
			s = *tend == '\0' ? tend : tend + 1;
			continue;
		}
		/* Malformed: copy literally. */
		buf_append_char(out, *s++);
	}
}

static void local_expand_fail(struct local_expand_state *st, enum local_status status,
			      const char *dsn, const char *text)
{
	if (st->exp->failed)
		return;
	st->exp->failed = true;
	local_result_set(&st->exp->result, status, dsn, "%s", text);
}

/* Add a target unless an equal one exists.  Returns the target or NULL
 * (duplicate or limit reached). */
static struct local_target *local_target_add(struct local_expand_state *st,
					     enum local_target_kind kind, const char *value,
					     const char *owner, const struct local_user *privs,
					     unsigned from)
{
	struct local_expansion *exp = st->exp;
	for (size_t i = 0; i < exp->count; i++) {
		struct local_target *t = &exp->targets[i];
		if (t->kind == kind && strcmp(t->value, value) == 0 &&
		    (privs == NULL || t->uid == privs->uid))
			return NULL;
	}
	if (exp->count >= LOCAL_EXPAND_TARGETS_MAX) {
		local_expand_fail(st, LOCAL_PERMFAIL, "5.3.4", "too many recipients in expansion");
		return NULL;
	}
	exp->targets = xreallocarray(exp->targets, exp->count + 1, sizeof(*exp->targets));
	struct local_target *t = &exp->targets[exp->count++];
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->value = xstrdup(value);
	t->owner = xstrdup(owner);
	if (privs != NULL) {
		t->uid = privs->uid;
		t->gid = privs->gid;
		t->user = privs->name != NULL ? xstrdup(privs->name) : NULL;
	}
	t->from = from;
	local_result_init(&t->result);
	return t;
}

static void local_target_add_failed(struct local_expand_state *st, enum local_target_kind kind,
				    const char *value, const char *owner, enum local_status status,
				    const char *dsn, const char *text)
{
	struct local_target *t = local_target_add(st, kind, value, owner, NULL, 0);
	if (t == NULL)
		return;
	t->is_done = true;
	local_result_set(&t->result, status, dsn, "%s", text);
}

static bool local_on_stack(const struct local_expand_state *st, const char *name)
{
	for (size_t i = 0; i < st->depth; i++)
		if (strcmp(st->stack[i], name) == 0)
			return true;
	return false;
}

static bool local_push(struct local_expand_state *st, const char *name)
{
	if (st->depth >= LOCAL_EXPAND_DEPTH_MAX) {
		struct buf b = BUF_INIT;
		buf_printf(&b, "mail forwarding loop for %s", st->depth > 0 ? st->stack[0] : name);
		local_expand_fail(st, LOCAL_PERMFAIL, "5.4.6", buf_cstr(&b));
		buf_deinit(&b);
		return false;
	}
	st->stack[st->depth++] = xstrdup(name);
	return true;
}

static void local_pop(struct local_expand_state *st)
{
	free(st->stack[--st->depth]);
}

static void local_expand_name(struct local_expand_state *st, const char *name);

/* The mailbox of user name, which must exist. */
static void local_expand_mailbox(struct local_expand_state *st, const char *name)
{
	struct local_user u = { 0 };
	const char *err = "lookup failed";
	int r = st->ops->user_lookup(st->ops->ctx, name, &u, &err);
	if (r < 0) {
		struct buf b = BUF_INIT;
		buf_printf(&b, "user lookup for \"%s\" failed: %s", name, err);
		local_expand_fail(st, LOCAL_TEMPFAIL, "4.3.0", buf_cstr(&b));
		buf_deinit(&b);
		return;
	}
	if (r == 0) {
		struct buf b = BUF_INIT;
		buf_printf(&b, "unknown user: \"%s\"", name);
		local_target_add_failed(st, LOCAL_T_MAILBOX, name, name, LOCAL_PERMFAIL, "5.1.1",
					buf_cstr(&b));
		buf_deinit(&b);
		return;
	}
	local_target_add(st, LOCAL_T_MAILBOX, u.name, u.name, &u, 0);
	local_user_free(&u);
}

static void local_expand_rhs(struct local_expand_state *st, const char *rhs,
			     const struct local_user *privs, unsigned from, const char *owner);

/* An address from a right-hand side or a .forward file. */
static void local_expand_address(struct local_expand_state *st, const char *addr,
				 const struct local_user *privs, unsigned from, const char *owner)
{
	bool backslash = addr[0] == '\\';
	if (backslash)
		addr++;
	char *local = NULL, *domain = NULL;
	bool has_domain = addr_split(addr, &local, &domain);
	if (has_domain && !st->ops->domain_is_local(st->ops->ctx, domain)) {
		char *fwd = addr_lower_domain(addr);
		local_target_add(st, LOCAL_T_FORWARD, fwd, owner, NULL, from);
		free(fwd);
		goto out;
	}
	if (local == NULL || local[0] == '\0') {
		local_target_add_failed(st, LOCAL_T_MAILBOX, addr, owner, LOCAL_PERMFAIL, "5.1.3",
					"bad address syntax in alias expansion");
		goto out;
	}
	str_lower(local);
	if (backslash) {
		local_expand_mailbox(st, local);
		goto out;
	}
	char *user, *ext;
	local_split_extension(local, st->ops->recipient_delimiter, &user, &ext);
	if (local_on_stack(st, user)) {
		/* A name that reaches itself: its own mailbox (sendmail). */
		local_expand_mailbox(st, user);
	} else {
		local_expand_name(st, local);
	}
	free(user);
	free(ext);
out:
	free(local);
	free(domain);
	(void)privs;
}

/* Read a :include: or .forward file as u; its lines (comments skipped)
 * are one right-hand side. */
static int local_read_list(struct local_expand_state *st, const struct local_user *u,
			   const char *path, struct buf *rhs)
{
	struct buf data = BUF_INIT, err = BUF_INIT;
	int r = st->ops->read_file(st->ops->ctx, u, path, &data, &err);
	if (r < 0) {
		local_expand_fail(st, LOCAL_TEMPFAIL, "4.3.0", buf_cstr(&err));
	} else if (r == 1) {
		const char *p = buf_cstr(&data);
		const char *end = p + data.len;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t n = nl == NULL ? (size_t)(end - p) : (size_t)(nl - p);
			struct strv line = strv_trim(strv_make(p, n));
			if (line.len > 0 && line.ptr[0] != '#') {
				if (rhs->len > 0)
					buf_append_str(rhs, ", ");
				buf_append(rhs, line.ptr, line.len);
			}
			p += n + 1;
		}
	}
	buf_deinit(&data);
	buf_deinit(&err);
	return r;
}

static void local_expand_rhs(struct local_expand_state *st, const char *rhs,
			     const struct local_user *privs, unsigned from, const char *owner)
{
	struct alias_target *targets = NULL;
	const char *err = NULL;
	int n = aliases_parse_rhs(rhs, &targets, &err);
	if (n < 0) {
		struct buf b = BUF_INIT;
		buf_printf(&b, "syntax error in expansion of %s: %s", owner, err);
		local_expand_fail(st, LOCAL_TEMPFAIL, "4.3.0", buf_cstr(&b));
		buf_deinit(&b);
		return;
	}
	for (int i = 0; i < n && !st->exp->failed; i++) {
		struct alias_target *t = &targets[i];
		switch (t->kind) {
		case ALIAS_TARGET_ADDRESS:
			local_expand_address(st, t->value, privs, from, owner);
			break;
		case ALIAS_TARGET_PIPE:
			if (st->ops->allow_commands & from)
				local_target_add(st, LOCAL_T_COMMAND, t->value, owner, privs, from);
			else
				local_target_add_failed(st, LOCAL_T_COMMAND, t->value, owner,
							LOCAL_PERMFAIL, "5.7.1",
							"mail to command is restricted");
			break;
		case ALIAS_TARGET_FILE:
			if (st->ops->allow_files & from)
				local_target_add(st, LOCAL_T_FILE, t->value, owner, privs, from);
			else
				local_target_add_failed(st, LOCAL_T_FILE, t->value, owner,
							LOCAL_PERMFAIL, "5.7.1",
							"mail to file is restricted");
			break;
		case ALIAS_TARGET_INCLUDE: {
			struct buf inc = BUF_INIT;
			struct buf key = BUF_INIT;
			buf_printf(&key, ":include:%s", t->value);
			if (local_on_stack(st, buf_cstr(&key))) {
				/* An include file including itself adds nothing. */
				buf_deinit(&key);
				buf_deinit(&inc);
				break;
			}
			if (!local_push(st, buf_cstr(&key))) {
				buf_deinit(&key);
				buf_deinit(&inc);
				break;
			}
			int r = local_read_list(st, privs, t->value, &inc);
			if (r == 0) {
				struct buf b = BUF_INIT;
				buf_printf(&b, "cannot open include file %s: No such file or directory",
					   t->value);
				local_expand_fail(st, LOCAL_TEMPFAIL, "4.3.0", buf_cstr(&b));
				buf_deinit(&b);
			} else if (r == 1) {
				local_expand_rhs(st, buf_cstr(&inc), privs, LOCAL_FROM_INCLUDE, owner);
			}
			local_pop(st);
			buf_deinit(&key);
			buf_deinit(&inc);
			break;
		}
		}
	}
	alias_targets_free(&targets, (size_t)n);
}

struct local_fwd_vars {
	const struct local_user *u;
	const char *local;
	const char *ext;
	const char *delim;
};

static const char *local_fwd_var(void *ctx, const char *name)
{
	const struct local_fwd_vars *v = ctx;
	if (strcmp(name, "home") == 0)
		return v->u->home;
	if (strcmp(name, "user") == 0)
		return v->u->name;
	if (strcmp(name, "local") == 0 || strcmp(name, "mailbox") == 0)
		return v->local;
	if (strcmp(name, "extension") == 0)
		return v->ext != NULL ? v->ext : "";
	if (strcmp(name, "recipient_delimiter") == 0)
		return v->delim != NULL ? v->delim : "";
	if (strcmp(name, "shell") == 0)
		return v->u->shell;
	return "";
}

/* A user: .forward first, else the mailbox. */
static void local_expand_user(struct local_expand_state *st, const char *user, const char *ext,
			      const char *local, bool top)
{
	struct local_user u = { 0 };
	const char *err = "lookup failed";
	int r = st->ops->user_lookup(st->ops->ctx, user, &u, &err);
	if (r < 0) {
		struct buf b = BUF_INIT;
		buf_printf(&b, "user lookup for \"%s\" failed: %s", user, err);
		local_expand_fail(st, LOCAL_TEMPFAIL, "4.3.0", buf_cstr(&b));
		buf_deinit(&b);
		return;
	}
	if (r == 0) {
		struct buf b = BUF_INIT;
		buf_printf(&b, "unknown user: \"%s\"", user);
		if (top)
			local_expand_fail(st, LOCAL_PERMFAIL, "5.1.1", buf_cstr(&b));
		else
			local_target_add_failed(st, LOCAL_T_MAILBOX, user, user, LOCAL_PERMFAIL,
						"5.1.1", buf_cstr(&b));
		buf_deinit(&b);
		return;
	}
	bool forwarded = false;
	if (st->ops->forward_path != NULL && local_push(st, user)) {
		struct local_fwd_vars v = { &u, local, ext, st->ops->recipient_delimiter };
		for (char **item = st->ops->forward_path; *item != NULL && !forwarded; item++) {
			struct buf path = BUF_INIT, rhs = BUF_INIT;
			local_expand_vars(&path, *item, local_fwd_var, &v);
			if (buf_cstr(&path)[0] == '/') {
				int rr = local_read_list(st, &u, buf_cstr(&path), &rhs);
				if (rr < 0) {
					buf_deinit(&path);
					buf_deinit(&rhs);
					break;
				}
				if (rr == 1 && rhs.len > 0) {
					forwarded = true;
					local_expand_rhs(st, buf_cstr(&rhs), &u, LOCAL_FROM_FORWARD,
							 u.name);
				}
			}
			buf_deinit(&path);
			buf_deinit(&rhs);
		}
		local_pop(st);
	}
	if (!forwarded && !st->exp->failed)
		local_target_add(st, LOCAL_T_MAILBOX, u.name, u.name, &u, 0);
	local_user_free(&u);
}

static void local_expand_name_top(struct local_expand_state *st, const char *name, bool top)
{
	char *user, *ext;
	local_split_extension(name, st->ops->recipient_delimiter, &user, &ext);
	char *rhs = NULL;
	struct local_user privs = { 0 };
	const char *err = "lookup failed";
	int r = 0;
	if (ext != NULL)
		r = st->ops->alias_lookup(st->ops->ctx, name, &rhs, &privs, &err);
	if (r == 0)
		r = st->ops->alias_lookup(st->ops->ctx, user, &rhs, &privs, &err);
	if (r < 0) {
		struct buf b = BUF_INIT;
		buf_printf(&b, "alias database unavailable: %s", err);
		local_expand_fail(st, LOCAL_TEMPFAIL, "4.3.0", buf_cstr(&b));
		buf_deinit(&b);
	} else if (r == 1) {
		if (local_push(st, user)) {
			local_expand_rhs(st, rhs, &privs, LOCAL_FROM_ALIAS, user);
			local_pop(st);
		}
	} else {
		local_expand_user(st, user, ext, name, top);
	}
	free(rhs);
	local_user_free(&privs);
	free(user);
	free(ext);
}

static void local_expand_name(struct local_expand_state *st, const char *name)
{
	local_expand_name_top(st, name, false);
}

int local_expand(const struct local_expand_ops *ops, const char *local_part,
		 struct local_expansion *exp)
{
	memset(exp, 0, sizeof(*exp));
	local_result_init(&exp->result);
	struct local_expand_state st = { .ops = ops, .exp = exp, .depth = 0 };
	local_expand_name_top(&st, local_part, true);
	while (st.depth > 0)
		local_pop(&st);
	return 0;
}

void local_expansion_free(struct local_expansion *exp)
{
	for (size_t i = 0; i < exp->count; i++) {
		struct local_target *t = &exp->targets[i];
		free(t->value);
		free(t->owner);
		free(t->user);
		local_result_deinit(&t->result);
	}
	free(exp->targets);
	exp->targets = NULL;
	exp->count = 0;
	local_result_deinit(&exp->result);
}
