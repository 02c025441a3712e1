/* local_deliver.c - one delivery request, run in a worker process forked
 * by local_main (root when facteur was started as root, else the invoking
 * user).
 *
 * Steps:
 *   1. validate queue_id, open QDIR/active/ID (O_NOFOLLOW) and read it; the
 *      request's recipient index and address must match the file (the
 *      request is input, not truth);
 *   2. class=local: expand the local part (local_alias.c) with the real
 *      lookups below; class=virtual: resolve the mailbox (local_virtual.c);
 *   3. each target is delivered by a child that first takes the target's
 *      identity (local_privs_become) and only then opens any path; the
 *      child sends its result back through a pipe;
 *   4. one log line per target ("to=<...>, relay=local, ... status=");
 *   5. the reply: sent when every local target succeeded (forwards listed),
 *      deferred when any failed temporarily (no forwards: a retry redoes
 *      the whole expansion, and may repeat deliveries already made, as
 *      Postfix without its duplicate filter), bounced when the recipient
 *      is unknown or every target failed permanently, expanded when there
 *      were only forwards.  A target that failed permanently next to
 *      successful ones is logged as bounced but the reply is "sent".
 */
#include "local/local.h"

#include "mail/addr.h"
#include "mail/config.h"
#include "mail/mail_log.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "mail/table.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOCAL_COMMAND_TIME_LIMIT 1000 /* Postfix's command_time_limit */

struct local_alias_table {
	struct table *t;
	uid_t uid;
	gid_t gid;
	bool use_default_privs;
};

struct local_dctx {
	struct config *cfg;
	bool as_root;
	const struct local_req *req;
	int qfd;
	struct qfile_msg *qm;
	struct local_msg msg;
	const char *orig_to;
	char *domain; /* recipient domain, for to=<owner@domain> */
	char *extension;
	struct timeval handoff;
	/* alias tables, opened at first lookup */
	struct local_alias_table *aliases;
	size_t n_aliases;
	bool aliases_opened;
	char **fwd_path;
	/* default_privs */
	struct local_user nobody;
	bool have_nobody;
};

/* ------------------------------------------------------------ content */

static int local_qfile_content(void *ctx, int (*cb)(void *cbctx, const uint8_t *data, size_t len),
			       void *cbctx, const char **error_r)
{
	struct local_dctx *d = ctx;
	return qfile_content_read(d->qfd, d->qm, cb, cbctx, error_r);
}

/* ------------------------------------------------------------ users */

static int local_user_from_pw(const struct passwd *pw, struct local_user *u)
{
	u->name = xstrdup(pw->pw_name);
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	u->home = xstrdup(pw->pw_dir != NULL ? pw->pw_dir : "/");
	u->shell = xstrdup(pw->pw_shell != NULL ? pw->pw_shell : "/bin/sh");
	return 1;
}

static int local_getpwnam(void *ctx, const char *name, struct local_user *u_r, const char **error_r)
{
	(void)ctx;
	errno = 0;
	struct passwd *pw = getpwnam(name);
	if (pw == NULL) {
		if (errno == 0 || errno == ENOENT || errno == ESRCH || errno == EBADF ||
		    errno == EPERM)
			return 0;
		*error_r = strerror(errno);
		return -1;
	}
	return local_user_from_pw(pw, u_r);
}

/* default_privs (Postfix: never root, never mail_owner). */
static int local_default_privs(struct local_dctx *d, struct local_user *u, const char **error_r)
{
	if (!d->have_nobody) {
		const char *name = config_get(d->cfg, "default_privs");
		if (name == NULL || local_getpwnam(NULL, name, &d->nobody, error_r) != 1) {
			*error_r = "default_privs names no user";
			return -1;
		}
		if (d->nobody.uid == 0) {
			local_user_free(&d->nobody);
			*error_r = "default_privs must not be root";
			return -1;
		}
		d->have_nobody = true;
	}
	u->name = xstrdup(d->nobody.name);
	u->uid = d->nobody.uid;
	u->gid = d->nobody.gid;
	u->home = xstrdup(d->nobody.home);
	u->shell = xstrdup(d->nobody.shell);
	return 0;
}

/* ------------------------------------------------------------ aliases */

static bool local_spec_is_alias_table(const char *spec)
{
	const char *s = strncmp(spec, "proxy:", 6) == 0 ? spec + 6 : spec;
	/* unix:passwd.byname answers "is this a user", not "what is this
	 * alias" (it appears in local_recipient_maps, sometimes in alias_maps
	 * copied from there). */
	return strncmp(s, "unix:", 5) != 0;
}

static void local_aliases_open(struct local_dctx *d)
{
	if (d->aliases_opened)
		return;
	d->aliases_opened = true;
	char **specs = config_get_list(d->cfg, "alias_maps");
	for (size_t i = 0; specs != NULL && specs[i] != NULL; i++) {
		if (!local_spec_is_alias_table(specs[i]))
			continue;
		const char *err = NULL;
		struct table *t = table_open(specs[i], &err);
		const char *colon = strchr(specs[i], ':');
		const char *name = colon != NULL ? colon + 1 : specs[i];
		if (strncmp(specs[i], "proxy:", 6) == 0 && colon != NULL) {
			const char *c2 = strchr(colon + 1, ':');
			name = c2 != NULL ? c2 + 1 : name;
		}
		struct stat st;
		bool have_file = name[0] == '/' && stat(name, &st) == 0;
		if (!have_file && name[0] == '/') {
			struct buf db = BUF_INIT;
			buf_printf(&db, "%s.lmdb", name);
			have_file = stat(buf_cstr(&db), &st) == 0;
			buf_deinit(&db);
		}
		if (t == NULL) {
			if (name[0] == '/' && !have_file) {
				/* No alias file at all (a fresh host, the demo). */
				log_debug("alias table %s does not exist: skipped", specs[i]);
				continue;
			}
			/* Mark the failure: lookups will defer. */
			log_warning("cannot open alias table %s: %s", specs[i],
				    err != NULL ? err : "error");
		}
		d->aliases = xreallocarray(d->aliases, d->n_aliases + 1, sizeof(*d->aliases));
		struct local_alias_table *a = &d->aliases[d->n_aliases++];
		a->t = t;
		/* Commands and files of an alias run as the owner of its source
		 * file; root-owned or file-less tables use default_privs. */
		a->use_default_privs = !have_file || st.st_uid == 0;
		a->uid = have_file ? st.st_uid : 0;
		a->gid = have_file ? st.st_gid : 0;
	}
}

static int local_alias_lookup(void *ctx, const char *name, char **rhs_r, struct local_user *privs_r,
			      const char **error_r)
{
	struct local_dctx *d = ctx;
	local_aliases_open(d);
	for (size_t i = 0; i < d->n_aliases; i++) {
		struct local_alias_table *a = &d->aliases[i];
		if (a->t == NULL) {
			*error_r = "alias table cannot be opened";
			return -1;
		}
		int r = table_lookup(a->t, name, rhs_r, error_r);
		if (r == 0)
			continue;
		if (r < 0)
			return -1;
		if (!d->as_root) {
			struct passwd *pw = getpwuid(geteuid());
			if (pw != NULL)
				local_user_from_pw(pw, privs_r);
			privs_r->uid = geteuid();
			privs_r->gid = getegid();
		} else if (a->use_default_privs) {
			if (local_default_privs(d, privs_r, error_r) < 0) {
				free(*rhs_r);
				*rhs_r = NULL;
				return -1;
			}
		} else {
			struct passwd *pw = getpwuid(a->uid);
			if (pw != NULL)
				local_user_from_pw(pw, privs_r);
			privs_r->uid = a->uid;
			privs_r->gid = a->gid;
		}
		return 1;
	}
	return 0;
}

static int local_read_file(void *ctx, const struct local_user *u, const char *path, struct buf *out,
			   struct buf *err)
{
	struct local_dctx *d = ctx;
	struct local_privs p = { .uid = d->as_root ? u->uid : geteuid(),
				 .gid = d->as_root ? u->gid : getegid(),
				 .user = d->as_root ? u->name : NULL };
	return local_file_read_as(&p, path, LOCAL_INCLUDE_MAX, out, err);
}

static bool local_domain_is_local(void *ctx, const char *domain)
{
	struct local_dctx *d = ctx;
	return addr_domain_in_list(domain, config_get_list(d->cfg, "mydestination"));
}

static unsigned local_allow_bits(struct config *cfg, const char *param)
{
	unsigned bits = 0;
	char **items = config_get_list(cfg, param);
	for (size_t i = 0; items != NULL && items[i] != NULL; i++) {
		if (str_casecmp(items[i], "alias") == 0)
			bits |= LOCAL_FROM_ALIAS;
		else if (str_casecmp(items[i], "forward") == 0)
			bits |= LOCAL_FROM_FORWARD;
		else if (str_casecmp(items[i], "include") == 0)
			bits |= LOCAL_FROM_INCLUDE;
	}
	return bits;
}

/* ------------------------------------------------------------ children */

/* The result as sent from a delivery child: status digit, DSN, '\n', text. */
static void local_result_send(int fd, const struct local_result *r)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%d%s\n%s", (int)r->status, r->dsn, buf_cstr(&r->text));
	(void)fs_write_full(fd, b.data, b.len);
	buf_deinit(&b);
}

static void local_result_recv(const char *data, size_t len, struct local_result *r)
{
	const char *nl = memchr(data, '\n', len);
	if (len < 7 || nl == NULL || (data[0] < '0' || data[0] > '2') || nl - data != 6) {
		local_result_set(r, LOCAL_TEMPFAIL, "4.3.0", "delivery process failed");
		return;
	}
	char dsn[8];
	memcpy(dsn, data + 1, 5);
	dsn[5] = '\0';
	struct strv text = strv_make(nl + 1, len - (size_t)(nl + 1 - data));
	char *t = strv_dup(text);
	local_result_set(r, (enum local_status)(data[0] - '0'), dsn, "%s", t);
	free(t);
}

struct local_job {
	struct local_privs privs;
	int (*run)(struct local_dctx *d, void *arg, struct local_result *res);
	void *arg;
};

/* Run job->run in a child with the job's identity; res gets its result. */
static void local_child_run(struct local_dctx *d, const struct local_job *job,
			    struct local_result *res)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		local_result_set(res, LOCAL_TEMPFAIL, "4.3.0", "pipe: %s", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		local_result_set(res, LOCAL_TEMPFAIL, "4.3.0", "fork: %s", strerror(errno));
		(void)close(fds[0]);
		(void)close(fds[1]);
		return;
	}
	if (pid == 0) {
		(void)close(fds[0]);
		struct local_result r;
		local_result_init(&r);
		const char *err = "";
		if (local_privs_become(&job->privs, &err) < 0)
			local_result_set(&r, LOCAL_TEMPFAIL, "4.3.0",
					 "cannot take the identity of uid %lu: %s",
					 (unsigned long)job->privs.uid, err);
		else
			(void)job->run(d, job->arg, &r);
		local_result_send(fds[1], &r);
		_exit(0);
	}
	(void)close(fds[1]);
	struct buf in = BUF_INIT;
	char chunk[4096];
	for (;;) {
		ssize_t n = read(fds[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (in.len < 65536)
			buf_append(&in, chunk, (size_t)n);
	}
	(void)close(fds[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	local_result_recv((const char *)in.data, in.len, res);
	buf_deinit(&in);
}

/* ------------------------------------------------------------ targets */

struct local_mailbox_job {
	struct local_user *u;
	const char *address;
	const char *local;
};

static void local_vars_fill(struct local_dctx *d, struct local_vars *v, const struct local_user *u,
			    const char *address, const char *local)
{
	memset(v, 0, sizeof(*v));
	v->home = u->home;
	v->user = u->name;
	v->shell = u->shell;
	v->local = local;
	v->domain = d->domain;
	v->extension = d->extension;
	v->recipient = address;
	v->sender = d->msg.sender;
	v->original_recipient = d->orig_to;
}

static int local_run_command(struct local_dctx *d, const char *cmd_raw, const struct local_vars *v,
			     const struct local_rcpt *r, struct local_result *res)
{
	struct buf cmd = BUF_INIT, ok = BUF_INIT;
	local_command_expand(&cmd, cmd_raw, v);
	char **env = local_command_env(v);
	buf_printf(&ok, "delivered to command: %s", cmd_raw);
	int ret = local_command_run(buf_cstr(&cmd), env, v->home, &d->msg, r,
				    LOCAL_COMMAND_TIME_LIMIT, buf_cstr(&ok), res);
	str_list_free(&env);
	buf_deinit(&cmd);
	buf_deinit(&ok);
	return ret;
}

static int local_mailbox_run(struct local_dctx *d, void *arg, struct local_result *res)
{
	struct local_mailbox_job *j = arg;
	struct local_rcpt r = { j->address, d->orig_to };
	struct local_vars v;
	local_vars_fill(d, &v, j->u, j->address, j->local);

	const char *command = config_get_raw(d->cfg, "mailbox_command");
	if (command != NULL && command[0] != '\0')
		return local_run_command(d, command, &v, &r, res);

	const char *home_mailbox = config_get(d->cfg, "home_mailbox");
	struct buf path = BUF_INIT, err = BUF_INIT;
	int ret;
	if (home_mailbox != NULL && home_mailbox[0] != '\0') {
		size_t n = strlen(home_mailbox);
		buf_printf(&path, "%s/%s", j->u->home, home_mailbox);
		if (home_mailbox[n - 1] == '/') {
			while (path.len > 1 && path.data[path.len - 1] == '/')
				path.data[--path.len] = '\0';
			ret = local_maildir_deliver(buf_cstr(&path), &d->msg, &r, &err);
			if (ret == 0)
				local_result_set(res, LOCAL_OK, "2.0.0", "delivered to maildir");
			else
				local_result_set(res, LOCAL_TEMPFAIL, "4.2.0",
						 "maildir delivery failed: %s", buf_cstr(&err));
			goto out;
		}
	} else {
		buf_printf(&path, "%s/%s", config_get(d->cfg, "mail_spool_directory"), j->u->name);
	}
	ret = local_mbox_deliver(buf_cstr(&path), &d->msg, &r, time(NULL), &err);
	if (ret == 0)
		local_result_set(res, LOCAL_OK, "2.0.0", "delivered to mailbox");
	else
		local_result_set(res, LOCAL_TEMPFAIL, "4.2.0",
				 "cannot update mailbox %s for user %s. %s", buf_cstr(&path),
				 j->u->name, buf_cstr(&err));
out:
	buf_deinit(&path);
	buf_deinit(&err);
	return ret;
}

struct local_ext_job {
	const struct local_target *t;
	struct local_user *u; /* identity the target runs with */
	const char *address;
	const char *local;
};

static int local_ext_run(struct local_dctx *d, void *arg, struct local_result *res)
{
	struct local_ext_job *j = arg;
	struct local_rcpt r = { j->address, d->orig_to };
	if (j->t->kind == LOCAL_T_COMMAND) {
		struct local_vars v;
		local_vars_fill(d, &v, j->u, j->address, j->local);
		return local_run_command(d, j->t->value, &v, &r, res);
	}
	struct buf err = BUF_INIT;
	int ret = local_file_deliver(j->t->value, &d->msg, &r, time(NULL), &err);
	if (ret == 0)
		local_result_set(res, LOCAL_OK, "2.0.0", "delivered to file: %s", j->t->value);
	else
		local_result_set(res, LOCAL_TEMPFAIL, "4.2.0", "cannot append message to file %s: %s",
				 j->t->value, buf_cstr(&err));
	buf_deinit(&err);
	return ret;
}

/* Privileges for a mailbox: the user, plus the spool directory's group
 * when the spool is group-writable and holds the mailbox. */
static void local_mailbox_privs(struct local_dctx *d, const struct local_user *u,
				struct local_privs *p)
{
	memset(p, 0, sizeof(*p));
	if (!d->as_root) {
		p->uid = geteuid();
		p->gid = getegid();
		return;
	}
	p->uid = u->uid;
	p->gid = u->gid;
	p->user = u->name;
	const char *home_mailbox = config_get(d->cfg, "home_mailbox");
	struct stat st;
	if ((home_mailbox == NULL || home_mailbox[0] == '\0') &&
	    stat(config_get(d->cfg, "mail_spool_directory"), &st) == 0 && (st.st_mode & S_IWGRP) &&
	    st.st_gid != 0) {
		p->extra_gid = st.st_gid;
		p->has_extra = true;
	}
}

static void local_target_deliver(struct local_dctx *d, struct local_target *t, const char *address)
{
	struct local_job job = { 0 };
	if (t->kind == LOCAL_T_MAILBOX) {
		struct local_user u = { 0 };
		const char *err = "not found";
		if (local_getpwnam(NULL, t->value, &u, &err) != 1) {
			local_result_set(&t->result, LOCAL_TEMPFAIL, "4.3.0",
					 "user lookup for \"%s\" failed: %s", t->value, err);
			return;
		}
		struct local_mailbox_job mj = { &u, address, t->value };
		local_mailbox_privs(d, &u, &job.privs);
		const char *command = config_get_raw(d->cfg, "mailbox_command");
		if (d->as_root && u.uid == 0 && command != NULL && command[0] != '\0') {
			/* Postfix: root's mailbox_command runs as default_privs. */
			struct local_user nb = { 0 };
			if (local_default_privs(d, &nb, &err) < 0) {
				local_result_set(&t->result, LOCAL_TEMPFAIL, "4.3.5", "%s", err);
				local_user_free(&u);
				return;
			}
			job.privs.uid = nb.uid;
			job.privs.gid = nb.gid;
			job.privs.has_extra = false;
			local_user_free(&nb);
		}
		job.run = local_mailbox_run;
		job.arg = &mj;
		local_child_run(d, &job, &t->result);
		local_user_free(&u);
		return;
	}
	/* |command and /file: the target's privileges; root is never used. */
	struct local_user u = { 0 };
	if (!d->as_root) {
		struct passwd *pw = getpwuid(geteuid());
		if (pw != NULL)
			local_user_from_pw(pw, &u);
		u.uid = geteuid();
		u.gid = getegid();
	} else if (t->uid == 0) {
		const char *err = "";
		if (local_default_privs(d, &u, &err) < 0) {
			local_result_set(&t->result, LOCAL_TEMPFAIL, "4.3.5", "%s", err);
			return;
		}
	} else {
		struct passwd *pw = getpwuid(t->uid);
		if (pw != NULL)
			local_user_from_pw(pw, &u);
		u.uid = t->uid;
		u.gid = t->gid;
	}
	if (u.name == NULL)
		u.name = xstrdup(t->owner);
	if (u.home == NULL)
		u.home = xstrdup("/");
	if (u.shell == NULL)
		u.shell = xstrdup("/bin/sh");
	job.privs.uid = u.uid;
	job.privs.gid = u.gid;
	job.privs.user = d->as_root ? u.name : NULL;
	struct local_ext_job ej = { t, &u, address, t->owner };
	job.run = local_ext_run;
	job.arg = &ej;
	local_child_run(d, &job, &t->result);
	local_user_free(&u);
}

/* ------------------------------------------------------------ logs */

static void local_log_delivery(struct local_dctx *d, const char *to, const char *relay,
			       const struct local_result *r)
{
	struct mail_log_delivery ld;
	memset(&ld, 0, sizeof(ld));
	ld.queue_id = d->req->queue_id;
	ld.to = to;
	ld.orig_to = d->orig_to;
	ld.relay = relay;
	ld.arrival.tv_sec = (time_t)d->qm->arrival_sec;
	ld.arrival.tv_usec = d->qm->arrival_usec;
	ld.active = d->handoff;
	ld.handoff = d->handoff;
	ld.conn_setup = d->handoff;
	gettimeofday(&ld.delivered, NULL);
	ld.dsn = r->dsn;
	ld.status = local_status_name(r->status);
	ld.reason = buf_cstr(&r->text);
	struct buf line = BUF_INIT;
	mail_log_delivery(&line, &ld);
	log_info("%s", buf_cstr(&line));
	buf_deinit(&line);
}

/* ------------------------------------------------------------ requests */

static void local_reply(int fd, const struct local_req *req, const char *status, const char *dsn,
			const char *text, char *const *forwards, size_t n_forwards)
{
	struct buf b = BUF_INIT;
	local_reply_build(&b, req->req, status, dsn, text, forwards, n_forwards);
	if (send(fd, b.data, b.len, MSG_NOSIGNAL | MSG_EOR) < 0)
		log_warning("%s: cannot send the reply to the queue manager: %s", req->queue_id,
			    strerror(errno));
	buf_deinit(&b);
}

static void local_deliver_local(struct local_dctx *d, int reply_fd)
{
	const char *address = d->req->address;
	char *local = NULL, *domain = NULL;
	(void)addr_split(address, &local, &domain);
	if (local == NULL)
		local = xstrdup(address);
	str_lower(local);
	d->domain = domain != NULL ? domain : xstrdup(config_get(d->cfg, "myorigin"));
	const char *delim = config_get(d->cfg, "recipient_delimiter");
	char *user = NULL;
	local_split_extension(local, delim, &user, &d->extension);
	free(user);

	const char *fwd = config_get_raw(d->cfg, "forward_path");
	if (fwd != NULL)
		(void)str_list_split(fwd, &d->fwd_path);
	struct local_expand_ops ops = {
		.alias_lookup = local_alias_lookup,
		.user_lookup = local_getpwnam,
		.read_file = local_read_file,
		.domain_is_local = local_domain_is_local,
		.ctx = d,
		.recipient_delimiter = delim,
		.forward_path = d->fwd_path,
		.allow_commands = local_allow_bits(d->cfg, "allow_mail_to_commands"),
		.allow_files = local_allow_bits(d->cfg, "allow_mail_to_files"),
	};
	struct local_expansion exp;
	local_expand(&ops, local, &exp);
	if (exp.failed) {
		local_log_delivery(d, address, "local", &exp.result);
		local_reply(reply_fd, d->req, local_status_name(exp.result.status), exp.result.dsn,
			    buf_cstr(&exp.result.text), NULL, 0);
		goto out;
	}

	char **forwards = NULL;
	size_t n_fwd = 0, n_ok = 0, n_perm = 0;
	const struct local_result *first_ok = NULL, *first_temp = NULL, *first_perm = NULL;
	for (size_t i = 0; i < exp.count; i++) {
		struct local_target *t = &exp.targets[i];
		if (t->kind == LOCAL_T_FORWARD) {
			forwards = xreallocarray(forwards, n_fwd + 1, sizeof(char *));
			forwards[n_fwd++] = t->value;
			continue;
		}
		struct buf to = BUF_INIT;
		buf_printf(&to, "%s@%s", t->owner, d->domain);
		if (!t->is_done)
			local_target_deliver(d, t, buf_cstr(&to));
		local_log_delivery(d, buf_cstr(&to), "local", &t->result);
		buf_deinit(&to);
		if (t->result.status == LOCAL_OK) {
			n_ok++;
			if (first_ok == NULL)
				first_ok = &t->result;
		} else if (t->result.status == LOCAL_TEMPFAIL) {
			if (first_temp == NULL)
				first_temp = &t->result;
		} else {
			n_perm++;
			if (first_perm == NULL)
				first_perm = &t->result;
		}
	}
	if (first_temp != NULL)
		local_reply(reply_fd, d->req, "deferred", first_temp->dsn,
			    buf_cstr(&first_temp->text), NULL, 0);
	else if (n_ok == 0 && n_fwd == 0 && first_perm != NULL)
		local_reply(reply_fd, d->req, "bounced", first_perm->dsn,
			    buf_cstr(&first_perm->text), NULL, 0);
	else if (n_ok > 0)
		local_reply(reply_fd, d->req, "sent", first_ok->dsn, buf_cstr(&first_ok->text),
			    forwards, n_fwd);
	else if (n_fwd > 0)
		local_reply(reply_fd, d->req, "expanded", "2.0.0", "alias expanded", forwards,
			    n_fwd);
	else
		local_reply(reply_fd, d->req, "bounced", "5.1.1", "empty alias expansion", NULL, 0);
	free(forwards);
out:
	local_expansion_free(&exp);
	free(local);
}

struct local_virtual_job {
	const struct local_virtual_dest *dest;
};

static int local_virtual_run(struct local_dctx *d, void *arg, struct local_result *res)
{
	struct local_virtual_job *j = arg;
	struct local_rcpt r = { d->req->address, d->orig_to };
	struct buf err = BUF_INIT;
	int ret;
	if (j->dest->is_maildir) {
		ret = local_maildir_deliver(j->dest->path, &d->msg, &r, &err);
		if (ret == 0)
			local_result_set(res, LOCAL_OK, "2.0.0", "delivered to maildir");
		else
			local_result_set(res, LOCAL_TEMPFAIL, "4.2.0", "maildir delivery failed: %s",
					 buf_cstr(&err));
	} else {
		ret = local_mbox_deliver(j->dest->path, &d->msg, &r, time(NULL), &err);
		if (ret == 0)
			local_result_set(res, LOCAL_OK, "2.0.0", "delivered to mailbox");
		else
			local_result_set(res, LOCAL_TEMPFAIL, "4.2.0",
					 "cannot update mailbox %s for user %s. %s", j->dest->path,
					 d->req->address, buf_cstr(&err));
	}
	buf_deinit(&err);
	return ret;
}

static void local_deliver_virtual(struct local_dctx *d, int reply_fd)
{
	struct local_result res;
	local_result_init(&res);
	struct local_virtual_dest dest;
	if (local_virtual_resolve(d->cfg, d->req->address, d->as_root, &dest, &res) == 0) {
		struct local_virtual_job vj = { &dest };
		struct local_job job = { .privs = { .uid = dest.uid, .gid = dest.gid },
					 .run = local_virtual_run,
					 .arg = &vj };
		local_child_run(d, &job, &res);
		free(dest.path);
	}
	local_log_delivery(d, d->req->address, "virtual", &res);
	local_reply(reply_fd, d->req, local_status_name(res.status), res.dsn, buf_cstr(&res.text),
		    NULL, 0);
	local_result_deinit(&res);
}

void local_deliver_request(struct config *cfg, const char *queue_dir, bool as_root,
			   const struct local_req *req, int reply_fd)
{
	struct local_dctx d;
	memset(&d, 0, sizeof(d));
	d.cfg = cfg;
	d.as_root = as_root;
	d.req = req;
	d.qfd = -1;
	gettimeofday(&d.handoff, NULL);

	if (!queue_id_valid(req->queue_id)) {
		log_warning("delivery request with a bad queue id");
		local_reply(reply_fd, req, "deferred", "4.3.0", "bad queue id", NULL, 0);
		return;
	}
	struct buf path = BUF_INIT;
	queue_path(&path, queue_dir, QUEUE_ACTIVE, req->queue_id);
	d.qfd = open(buf_cstr(&path), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (d.qfd < 0) {
		log_warning("%s: open %s: %s", req->queue_id, buf_cstr(&path), strerror(errno));
		local_reply(reply_fd, req, "deferred", "4.3.0", "cannot open the queue file", NULL, 0);
		buf_deinit(&path);
		return;
	}
	buf_deinit(&path);
	const char *err = NULL;
	if (qfile_read(d.qfd, &d.qm, &err) < 0) {
		log_warning("%s: bad queue file: %s", req->queue_id, err);
		local_reply(reply_fd, req, "deferred", "4.3.0", "bad queue file", NULL, 0);
		(void)close(d.qfd);
		return;
	}
	if (req->rcpt >= d.qm->n_rcpts || strcmp(d.qm->rcpts[req->rcpt].address, req->address) != 0) {
		log_warning("%s: delivery request for recipient %u <%s> does not match the queue file",
			    req->queue_id, req->rcpt, req->address);
		local_reply(reply_fd, req, "deferred", "4.3.0",
			    "request does not match the queue file", NULL, 0);
		goto out;
	}
	const struct qfile_rcpt *qr = &d.qm->rcpts[req->rcpt];
	d.orig_to = qr->orig_to != NULL && qr->orig_to[0] != '\0' ? qr->orig_to
		  : req->orig_to != NULL && req->orig_to[0] != '\0' ? req->orig_to
								       : qr->address;
	d.msg.queue_id = req->queue_id;
	d.msg.sender = d.qm->sender != NULL ? d.qm->sender : "";
	d.msg.content_read = local_qfile_content;
	d.msg.content_ctx = &d;

	if (req->is_virtual)
		local_deliver_virtual(&d, reply_fd);
	else
		local_deliver_local(&d, reply_fd);
out:
	qfile_msg_free(&d.qm);
	(void)close(d.qfd);
	for (size_t i = 0; i < d.n_aliases; i++)
		table_free(&d.aliases[i].t);
	free(d.aliases);
	if (d.fwd_path != NULL)
		str_list_free(&d.fwd_path);
	if (d.have_nobody)
		local_user_free(&d.nobody);
	free(d.domain);
	free(d.extension);
}
