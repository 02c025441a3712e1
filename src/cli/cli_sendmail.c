/* cli_sendmail.c - `facteur sendmail` (also called as sendmail, mailq,
 * newaliases): the Postfix-compatible local submission command.
 *
 * It runs as the invoking user, without any privilege: a message becomes
 * one file in QDIR/maildrop (pickup/maildrop.h describes the format and
 * why that is safe), then a wake-up goes to the pickup role through the
 * FIFO QDIR/public/pickup.  When facteur is not running the file simply
 * waits.  The pickup role trusts only the file's owner for the identity.
 *
 * Modes (sendmail(1)): deliver (default, -bm), -bs (an SMTP session on
 * stdin/stdout, each message dropped the same way), -bp (mailq), -bi
 * (newaliases), -q (flush).  Errors go to stderr as
 * "sendmail: fatal: ..." with sysexits.h codes as Postfix's sendmail.
 */
#include "cli/cli.h"
#include "cli/cli_submit.h"

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/addr.h"
#include "mail/config.h"
#include "mail/queue.h"
#include "mail/maildrop.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Command lines longer than this in -bs mode are refused (RFC 5321
 * 4.5.3.1.4: 512 octets; a margin for ESMTP parameters). */
#define SENDMAIL_SMTP_LINE_MAX 2048

static int sendmail_fail(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int sendmail_fail(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("sendmail: fatal: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return status;
}

/* Who submits: the real uid (a root cron job submits as root). */
struct sendmail_user {
	unsigned long uid;
	char *login;
};

static int sendmail_user_get(struct sendmail_user *u)
{
	uid_t uid = getuid();
	struct passwd *pw = getpwuid(uid);
	u->uid = (unsigned long)uid;
	if (pw == NULL)
		return sendmail_fail(SM_EX_USAGE, "no login name found for user ID %lu", u->uid);
	u->login = xstrdup(pw->pw_name);
	return 0;
}

/* Check DSN options like the SMTP server would (RFC 3461). */
static int sendmail_dsn_check(const struct sendmail_opts *o)
{
	unsigned flags;
	enum addr_dsn_ret ret;
	if (o->notify != NULL && addr_esmtp_notify_parse(o->notify, &flags) < 0)
		return sendmail_fail(SM_EX_USAGE, "bad -N option value: %s", o->notify);
	if (o->ret != NULL && addr_esmtp_ret_parse(o->ret, &ret) < 0)
		return sendmail_fail(SM_EX_USAGE, "bad -R option value: %s", o->ret);
	if (o->envid != NULL) {
		if (strlen(o->envid) > ADDR_ENVID_MAX || !maildrop_value_valid(o->envid))
			return sendmail_fail(SM_EX_USAGE, "bad -V option value");
	}
	return 0;
}

static const char *sendmail_queue_dir(struct cli_ctx *ctx)
{
	const char *q = ctx->cfg != NULL ? config_get(ctx->cfg, "queue_directory") : NULL;
	return q != NULL && q[0] != '\0' ? q : "/var/spool/facteur";
}

static void sendmail_wake_pickup(const char *qdir)
{
	/* "no reader" is not an error: the pickup scans at start and every
	 * minute (queue_notify). */
	(void)queue_notify(qdir, "pickup", "W\n");
}

/* The deliver mode: stdin to one maildrop file. */
static int sendmail_enqueue(struct cli_ctx *ctx, const struct sendmail_opts *o,
			    const struct sendmail_user *u)
{
	const char *qdir = sendmail_queue_dir(ctx);
	uint64_t limit = ctx->cfg != NULL ? config_get_size(ctx->cfg, "message_size_limit") : 0;
	size_t header_cap = ctx->cfg != NULL ?
		(size_t)config_get_int(ctx->cfg, "header_size_limit") : 102400;
	struct maildrop_env env;
	struct maildrop_writer *w = NULL;
	const char *error = NULL;
	int status = 0;
	char *line = NULL;
	size_t line_cap = 0;
	struct buf out = BUF_INIT;
	struct sendmail_input in;

	maildrop_env_init(&env);
	sendmail_input_init(&in, o->dot_ends, header_cap);
	const char *who = o->sender != NULL ? o->sender : u->login;

	if (o->sender != NULL) {
		env.sender = sendmail_sender_normalize(o->sender);
		if (!maildrop_value_valid(env.sender)) {
			status = sendmail_fail(SM_EX_USAGE, "bad sender address: %s", o->sender);
			goto out;
		}
	}
	if (o->full_name != NULL) {
		if (!maildrop_value_valid(o->full_name)) {
			status = sendmail_fail(SM_EX_USAGE, "bad -F full name");
			goto out;
		}
		env.full_name = xstrdup(o->full_name);
	}
	for (size_t i = 0; i < o->n_rcpts; i++) {
		char **list = sendmail_rcpt_split(o->rcpts[i]);
		for (char **a = list; *a != NULL; a++) {
			if (!maildrop_value_valid(*a)) {
				str_list_free(&list);
				status = sendmail_fail(SM_EX_USAGE, "bad recipient address: %s",
						       o->rcpts[i]);
				goto out;
			}
			if (env.n_rcpts >= MAILDROP_RCPT_MAX) {
				str_list_free(&list);
				status = sendmail_fail(SM_EX_USAGE, "too many recipients");
				goto out;
			}
			maildrop_env_add_rcpt(&env, *a);
		}
		str_list_free(&list);
	}
	/* No recipient on the command line: take them from the headers (what
	 * users of "sendmail < message" expect). */
	env.extract = o->extract || env.n_rcpts == 0;
	if (o->notify != NULL)
		env.notify = xstrdup(o->notify);
	if (o->ret != NULL)
		env.ret = xstrdup(o->ret);
	if (o->envid != NULL)
		env.envid = xstrdup(o->envid);

	if (maildrop_writer_open(qdir, &env, &w, &error) < 0) {
		status = sendmail_fail(SM_EX_TEMPFAIL, "%s(%lu): %s in %s/maildrop: %s", who, u->uid,
				       error, qdir, strerror(errno));
		goto out;
	}
	for (;;) {
		errno = 0;
		ssize_t n = getline(&line, &line_cap, stdin);
		if (n < 0) {
			if (ferror(stdin)) {
				status = sendmail_fail(SM_EX_DATAERR, "%s(%lu): error reading input: %s",
						       who, u->uid, strerror(errno));
				goto out;
			}
			break;
		}
		buf_reset(&out);
		bool more = sendmail_input_line(&in, line, (size_t)n, &out);
		if (out.len > 0)
			maildrop_writer_body(w, out.data, out.len);
		if (limit > 0 && maildrop_writer_body_size(w) > limit) {
			status = sendmail_fail(SM_EX_UNAVAILABLE, "%s(%lu): message file too big", who,
					       u->uid);
			goto out;
		}
		if (!more)
			break;
	}
	if (env.extract) {
		char **found = NULL;
		int n = sendmail_header_recipients((const char *)in.header.data, in.header.len, &found);
		if (found != NULL)
			str_list_free(&found);
		if (n <= 0 && env.n_rcpts == 0) {
			status = sendmail_fail(SM_EX_UNAVAILABLE,
					       "%s(%lu): No recipient addresses found in message header",
					       who, u->uid);
			goto out;
		}
	}
	if (maildrop_writer_commit(&w, &error) < 0) {
		status = sendmail_fail(SM_EX_TEMPFAIL, "%s(%lu): %s: %s", who, u->uid, error,
				       strerror(errno));
		goto out;
	}
	sendmail_wake_pickup(qdir);
out:
	if (w != NULL)
		maildrop_writer_abort(&w);
	free(line);
	buf_deinit(&out);
	sendmail_input_deinit(&in);
	maildrop_env_deinit(&env);
	return status;
}

/* ---- sendmail -bs: a minimal SMTP server on stdin/stdout ---- */

struct sendmail_smtp {
	struct cli_ctx *ctx;
	const struct sendmail_user *user;
	const char *qdir;
	const char *hostname;
	uint64_t limit;
	bool in_mail;
	struct maildrop_env env;
};

static void smtp_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void smtp_reply(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputs("\r\n", stdout);
	(void)fflush(stdout);
}

static void smtp_reset(struct sendmail_smtp *s)
{
	maildrop_env_deinit(&s->env);
	s->in_mail = false;
}

/* Parse "FROM:<addr> params" / "TO:<addr> params" after the verb. */
static int smtp_path(const char *arg, const char *prefix, char **addr_r, char **params_r)
{
	size_t pl = strlen(prefix);
	if (strncasecmp(arg, prefix, pl) != 0)
		return -1;
	const char *p = arg + pl;
	size_t consumed = 0;
	const char *error = NULL;
	if (addr_parse_path(p, strlen(p), false, addr_r, &consumed, &error) < 0)
		return -1;
	*params_r = xstrdup(p + consumed);
	return 0;
}

static void smtp_data(struct sendmail_smtp *s)
{
	struct maildrop_writer *w = NULL;
	const char *error = NULL;
	char *line = NULL;
	size_t cap = 0;
	bool too_big = false, failed = false, eof = true;

	if (maildrop_writer_open(s->qdir, &s->env, &w, &error) < 0) {
		smtp_reply("451 4.3.0 Error: queue file write error");
		smtp_reset(s);
		return;
	}
	smtp_reply("354 End data with <CR><LF>.<CR><LF>");
	ssize_t n;
	while ((n = getline(&line, &cap, stdin)) > 0) {
		size_t len = (size_t)n;
		if (len > 0 && line[len - 1] == '\n')
			len--;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len == 1 && line[0] == '.') {
			eof = false;
			break;
		}
		/* RFC 5321 4.5.2: remove one leading dot. */
		const char *p = line;
		if (len > 0 && line[0] == '.') {
			p++;
			len--;
		}
		if (too_big || failed)
			continue;
		maildrop_writer_body(w, p, len);
		maildrop_writer_body(w, "\n", 1);
		if (s->limit > 0 && maildrop_writer_body_size(w) > s->limit)
			too_big = true;
	}
	free(line);
	if (eof) {
		maildrop_writer_abort(&w);
		smtp_reset(s);
		return;
	}
	if (too_big) {
		maildrop_writer_abort(&w);
		smtp_reply("552 5.3.4 Error: message file too big");
	} else if (maildrop_writer_commit(&w, &error) < 0) {
		smtp_reply("451 4.3.0 Error: queue file write error");
	} else {
		sendmail_wake_pickup(s->qdir);
		smtp_reply("250 2.0.0 Ok: queued");
	}
	smtp_reset(s);
}

static void smtp_mail(struct sendmail_smtp *s, const char *arg)
{
	char *addr = NULL, *params = NULL;
	if (s->in_mail) {
		smtp_reply("503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (smtp_path(arg, "FROM:", &addr, &params) < 0) {
		smtp_reply("501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	struct esmtp_param *ps = NULL;
	size_t np = 0;
	const char *error = NULL;
	if (addr_parse_esmtp_params(params, &ps, &np, &error) < 0) {
		smtp_reply("501 5.5.4 Bad MAIL parameter syntax");
		goto out;
	}
	for (size_t i = 0; i < np; i++) {
		uint64_t size;
		if (strcmp(ps[i].key, "SIZE") == 0 && ps[i].value != NULL &&
		    addr_esmtp_size_parse(ps[i].value, &size) == 0) {
			if (s->limit > 0 && size > s->limit) {
				smtp_reply("552 5.3.4 Message size exceeds fixed limit");
				goto out;
			}
		} else if (strcmp(ps[i].key, "RET") == 0 && ps[i].value != NULL) {
			free(s->env.ret);
			s->env.ret = xstrdup(ps[i].value);
		} else if (strcmp(ps[i].key, "ENVID") == 0 && ps[i].value != NULL) {
			char *envid = NULL;
			if (addr_esmtp_envid_parse(ps[i].value, &envid) == 0 &&
			    maildrop_value_valid(envid)) {
				free(s->env.envid);
				s->env.envid = envid;
			} else {
				free(envid);
			}
		}
	}
	if (!maildrop_value_valid(addr)) {
		smtp_reply("501 5.1.7 Bad sender address syntax");
		goto out;
	}
	s->env.sender = addr;
	addr = NULL;
	s->in_mail = true;
	smtp_reply("250 2.1.0 Ok");
out:
	addr_esmtp_params_free(&ps, np);
	free(addr);
	free(params);
}

static void smtp_rcpt(struct sendmail_smtp *s, const char *arg)
{
	char *addr = NULL, *params = NULL;
	if (!s->in_mail) {
		smtp_reply("503 5.5.1 Error: need MAIL command");
		return;
	}
	if (smtp_path(arg, "TO:", &addr, &params) < 0 || addr[0] == '\0') {
		smtp_reply("501 5.5.4 Syntax: RCPT TO:<address>");
		goto out;
	}
	if (!maildrop_value_valid(addr)) {
		smtp_reply("501 5.1.3 Bad recipient address syntax");
		goto out;
	}
	if (s->env.n_rcpts >= MAILDROP_RCPT_MAX) {
		smtp_reply("452 4.5.3 Error: too many recipients");
		goto out;
	}
	struct esmtp_param *ps = NULL;
	size_t np = 0;
	const char *error = NULL;
	if (addr_parse_esmtp_params(params, &ps, &np, &error) == 0) {
		for (size_t i = 0; i < np; i++) {
			unsigned flags;
			if (strcmp(ps[i].key, "NOTIFY") == 0 && ps[i].value != NULL &&
			    addr_esmtp_notify_parse(ps[i].value, &flags) == 0) {
				/* One NOTIFY per maildrop file: the last one. */
				free(s->env.notify);
				s->env.notify = xstrdup(ps[i].value);
			}
		}
		addr_esmtp_params_free(&ps, np);
	}
	maildrop_env_add_rcpt(&s->env, addr);
	smtp_reply("250 2.1.5 Ok");
out:
	free(addr);
	free(params);
}

static int sendmail_smtp_session(struct cli_ctx *ctx, const struct sendmail_user *u)
{
	struct sendmail_smtp s = { 0 };
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	s.ctx = ctx;
	s.user = u;
	s.qdir = sendmail_queue_dir(ctx);
	s.hostname = ctx->cfg != NULL ? config_get(ctx->cfg, "myhostname") : "localhost";
	s.limit = ctx->cfg != NULL ? config_get_size(ctx->cfg, "message_size_limit") : 0;
	maildrop_env_init(&s.env);
	const char *banner = ctx->cfg != NULL ? config_get(ctx->cfg, "smtpd_banner") : NULL;
	smtp_reply("220 %s", banner != NULL && banner[0] != '\0' ? banner : s.hostname);

	while ((n = getline(&line, &cap, stdin)) > 0) {
		size_t len = (size_t)n;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		line[len] = '\0';
		if (len > SENDMAIL_SMTP_LINE_MAX) {
			smtp_reply("500 5.5.0 Error: line too long");
			continue;
		}
		const char *sp = strchr(line, ' ');
		size_t vlen = sp != NULL ? (size_t)(sp - line) : len;
		const char *arg = sp != NULL ? sp + 1 : "";
		struct strv verb = strv_make(line, vlen);
		if (strv_case_eq(verb, "EHLO")) {
			smtp_reset(&s);
			printf("250-%s\r\n250-PIPELINING\r\n", s.hostname);
			if (s.limit > 0)
				printf("250-SIZE %llu\r\n", (unsigned long long)s.limit);
			smtp_reply("250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 DSN");
		} else if (strv_case_eq(verb, "HELO")) {
			smtp_reset(&s);
			smtp_reply("250 %s", s.hostname);
		} else if (strv_case_eq(verb, "MAIL")) {
			smtp_mail(&s, arg);
		} else if (strv_case_eq(verb, "RCPT")) {
			smtp_rcpt(&s, arg);
		} else if (strv_case_eq(verb, "DATA")) {
			if (!s.in_mail || s.env.n_rcpts == 0)
				smtp_reply("503 5.5.1 Error: need RCPT command");
			else
				smtp_data(&s);
		} else if (strv_case_eq(verb, "RSET")) {
			smtp_reset(&s);
			smtp_reply("250 2.0.0 Ok");
		} else if (strv_case_eq(verb, "NOOP")) {
			smtp_reply("250 2.0.0 Ok");
		} else if (strv_case_eq(verb, "VRFY")) {
			smtp_reply("502 5.5.1 VRFY command is disabled");
		} else if (strv_case_eq(verb, "QUIT")) {
			smtp_reply("221 2.0.0 Bye");
			break;
		} else {
			smtp_reply("502 5.5.2 Error: command not recognized");
		}
	}
	free(line);
	smtp_reset(&s);
	return 0;
}

int cli_sendmail(struct cli_ctx *ctx, int argc, char **argv)
{
	struct sendmail_opts o;
	struct buf error = BUF_INIT;
	struct sendmail_user u = { 0 };
	int status;

	/* Let argv[0] choose the mode ("mailq", "newaliases"), also when the
	 * dispatcher passes the subcommand name. */
	char *name0 = argv[0];
	if (ctx->progname != NULL &&
	    (strcmp(ctx->progname, "mailq") == 0 || strcmp(ctx->progname, "newaliases") == 0))
		argv[0] = (char *)ctx->progname;
	int r = sendmail_opts_parse(argc, argv, &o, &error);
	argv[0] = name0;
	if (r < 0) {
		status = sendmail_fail(SM_EX_USAGE, "%s", buf_cstr(&error));
		buf_deinit(&error);
		return status;
	}
	buf_deinit(&error);
	if (ctx->cfg == NULL) {
		if (o.config_dir != NULL)
			ctx->config_dir = o.config_dir;
		if (cli_load_config(ctx, true) < 0)
			return sendmail_fail(SM_EX_CONFIG, "bad configuration in %s", ctx->config_dir);
	}
	(void)signal(SIGPIPE, SIG_IGN);

	switch (o.mode) {
	case SENDMAIL_MODE_MAILQ: {
		char *qargv[] = { (char *)"queue", (char *)"list", NULL };
		return cli_queue(ctx, 2, qargv);
	}
	case SENDMAIL_MODE_FLUSH: {
		char *qargv[] = { (char *)"queue", (char *)"flush", NULL };
		return cli_queue(ctx, 2, qargv);
	}
	case SENDMAIL_MODE_NEWALIAS: {
		char *aargv[] = { (char *)"aliases", NULL };
		return cli_aliases(ctx, 1, aargv);
	}
	case SENDMAIL_MODE_SMTP:
		if ((status = sendmail_user_get(&u)) != 0)
			return status;
		status = sendmail_smtp_session(ctx, &u);
		free(u.login);
		return status;
	case SENDMAIL_MODE_ENQUEUE:
		break;
	}
	if ((status = sendmail_user_get(&u)) != 0)
		return status;
	if ((status = sendmail_dsn_check(&o)) != 0) {
		free(u.login);
		return status;
	}
	status = sendmail_enqueue(ctx, &o, &u);
	free(u.login);
	return status;
}
