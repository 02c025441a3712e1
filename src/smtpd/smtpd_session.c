/* smtpd_session.c - one SMTP session (RFC 5321): the command loop, the
 * command handlers, replies, timeouts, error limits and the session's log
 * lines.
 *
 * Called by smtpd.c (smtpd_session_start from the listener callback) and by
 * libevent (bufferevent callbacks, timers, the DNS callback).  Invariants:
 *   - commands are taken from the input buffer one at a time, in order, and
 *     none starts while the session is suspended (client name lookup, error
 *     delay); replies are collected in s->replies and flushed when the input
 *     buffer has no complete command left or a command ends a PIPELINING
 *     group (RFC 2920 3.1);
 *   - exactly one function formats replies (session_reply_emit) and exactly
 *     one changes state (session_set_state);
 *   - every handler reads parse -> check -> act -> reply -> set state and
 *     returns 0 (success) or -1 (refused), which feeds the disconnect line;
 *   - a session is freed only from a top-level callback (session_after), so
 *     no handler ever runs on freed memory.
 */
#include "smtpd/smtpd_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <event2/event.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/addr.h"
#include "mail/mail_log.h"
#include "mail/qfile.h"
#include "mail/tls.h"
#include "mail/queue.h"

#define SMTPD_DNS_TIMEOUT 10
#define SMTPD_READ_HIGH_WATER (256u * 1024u)
/* A client that pipelines without reading our replies stops being served
 * once this much output waits (resumed when the output drains). */
#define SMTPD_WRITE_BACKLOG_MAX (64u * 1024u)

struct smtpd_session {
	struct smtpd_server *srv;
	const struct smtpd_conf *conf;
	struct smtpd_session *prev, *next;
	struct bufferevent *bev;
	enum smtpd_state state;

	struct sockaddr_storage sa;
	socklen_t salen;
	char addr[INET6_ADDRSTRLEN];
	char *name;      /* verified client name or "unknown" */
	char *peer;      /* "NAME[ADDR]" */
	bool in_mynetworks;
	char *helo;      /* NULL before HELO/EHLO */
	const char *proto;

	const char *last_cmd; /* for "lost connection after X" */
	unsigned errors;
	unsigned n_ok[SMTPD_CMD_COUNT];
	unsigned n_total[SMTPD_CMD_COUNT];

	bool suspended;
	bool draining;      /* dropping an over-long line */
	bool delay_pending; /* error replies wait smtpd_error_sleep_time */
	bool closing;       /* close once the output is flushed */
	bool in_process;
	struct event *delay_ev;
	struct smtpd_dns_query *dnsq;
	struct smtpd_commit *commit; /* queue file commit in flight */

	struct buf replies;
	struct buf line;
	struct smtpd_txn *txn;

	/* STARTTLS (RFC 3207) */
	bool tls_upgrade; /* 220 queued: switch to TLS once it is flushed */
	bool tls_active;  /* handshake started (or done) */
	char *tls_info;   /* "TLSv1.3 with cipher X (256/256 bits)" once established */
	char *tls_using;  /* "using " + tls_info, for Received: */
	struct event *close_ev; /* TLS: waits for the socket to take the last reply */
	unsigned close_ticks;
};

static void session_process(struct smtpd_session *s);
static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);
static void session_tls_start(struct smtpd_session *s);
static void session_after(struct smtpd_session *s);
static void session_free(struct smtpd_session *s);

/* ---- accessors for smtpd_data.c ---- */

struct smtpd_txn *smtpd_session_txn(struct smtpd_session *s) { return s->txn; }
const struct smtpd_conf *smtpd_session_conf(const struct smtpd_session *s) { return s->conf; }
const char *smtpd_session_queue_dir(const struct smtpd_session *s) { return s->srv->queue_dir; }
const char *smtpd_session_peer(const struct smtpd_session *s) { return s->peer; }

void smtpd_session_origin(const struct smtpd_session *s, struct cleanup_origin *o)
{
	memset(o, 0, sizeof(*o));
	o->type = CLEANUP_ORIGIN_SMTP;
	o->helo_name = s->helo;
	o->client_name = s->name;
	o->client_addr = s->addr;
	o->protocol = s->proto;
	o->tls_info = s->tls_using;
}

/* ---- state and replies ---- */

static void session_set_state(struct smtpd_session *s, enum smtpd_state st)
{
	if (s->state != st && log_debug_enabled())
		log_debug("%s: state %s -> %s", s->peer, smtpd_state_name(s->state),
			  smtpd_state_name(st));
	s->state = st;
}

/* The one place where reply lines are formatted.  last=false gives a
 * "250-" continuation line.  Error replies count towards the limits and,
 * past smtpd_soft_error_limit, delay the flush. */
static void session_reply_emit(struct smtpd_session *s, unsigned code, bool last,
			       const char *status, const char *text)
{
	buf_printf(&s->replies, "%03u%c", code, last ? ' ' : '-');
	if (status != NULL)
		buf_printf(&s->replies, "%s ", status);
	/* Never let a CR or LF from our inputs (an address, a HELO name)
	 * split a reply into two. */
	for (const char *p = text; *p != '\0'; p++)
		buf_append_char(&s->replies, (*p == '\r' || *p == '\n') ? ' ' : *p);
	buf_append(&s->replies, "\r\n", 2);
	if (log_debug_enabled())
		log_debug("%s: > %03u %s %s", s->peer, code, status != NULL ? status : "", text);
	if (last && code >= 400 && code != 421) {
		if (s->errors >= s->conf->soft_error_limit && s->conf->error_sleep_sec > 0)
			s->delay_pending = true;
		s->errors++;
	}
}

void smtpd_session_reply(struct smtpd_session *s, unsigned code, const char *status,
			 const char *fmt, ...)
{
	struct buf text = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&text, fmt, ap);
	va_end(ap);
	session_reply_emit(s, code, true, status, buf_cstr(&text));
	buf_deinit(&text);
}

static void session_flush(struct smtpd_session *s)
{
	if (s->replies.len == 0 || s->delay_pending)
		return;
	if (bufferevent_write(s->bev, s->replies.data, s->replies.len) < 0)
		log_warning("write to %s failed", s->peer);
	buf_reset(&s->replies);
}

/* Queue a final reply and close once it is written. */
static void session_close_with(struct smtpd_session *s, unsigned code, const char *status,
			       const char *text)
{
	if (text != NULL)
		session_reply_emit(s, code, true, status, text);
	session_set_state(s, SMTPD_ST_CLOSING);
	s->closing = true;
}

static void session_log_reject(struct smtpd_session *s, const char *stage, unsigned code,
			       const char *status, const char *text, const char *recipient)
{
	struct buf reply = BUF_INIT, line = BUF_INIT;
	buf_printf(&reply, "%u %s %s", code, status, text);
	struct mail_log_reject r = {
		.queue_id = NULL,
		/* Postfix logs 4xx refusals as "reject" too ("defer" is
		 * for restrictions that say so); keep its shape. */
		.action = "reject",
		.stage = stage,
		.client_name = s->name,
		.client_addr = s->addr,
		.reply = buf_cstr(&reply),
		.sender = s->txn != NULL ? s->txn->sender : NULL,
		.recipient = recipient,
		.protocol = s->proto,
		.helo = s->helo,
	};
	mail_log_reject(&line, &r);
	log_info("%s", buf_cstr(&line));
	buf_deinit(&reply);
	buf_deinit(&line);
}

/* ---- transactions ---- */

void smtpd_txn_free(struct smtpd_txn **txnp)
{
	struct smtpd_txn *t = *txnp;
	if (t == NULL)
		return;
	*txnp = NULL;
	if (t->w != NULL)
		qfile_writer_abort(&t->w);
	for (size_t i = 0; i < t->n_rcpts; i++) {
		free(t->rcpts[i].address);
		free(t->rcpts[i].orig);
		free(t->rcpts[i].given);
		free(t->rcpts[i].notify);
		free(t->rcpts[i].orcpt);
	}
	free(t->rcpts);
	free(t->sender);
	free(t->envid);
	free(t->message_id);
	buf_deinit(&t->out);
	buf_deinit(&t->headers);
	buf_deinit(&t->body_line);
	hdrcheck_result_clear(&t->verdict);
	free(t);
}

static void session_txn_reset(struct smtpd_session *s)
{
	smtpd_txn_free(&s->txn);
}

void smtpd_session_end_data(struct smtpd_session *s, bool ok)
{
	if (ok)
		s->n_ok[SMTPD_CMD_DATA]++;
	session_txn_reset(s);
	s->last_cmd = "END-OF-MESSAGE";
	session_set_state(s, s->helo != NULL ? SMTPD_ST_HELO : SMTPD_ST_GREETED);
}

void smtpd_session_commit_begin(struct smtpd_session *s, struct smtpd_commit *c)
{
	s->commit = c;
	s->suspended = true;
}

void smtpd_session_commit_end(struct smtpd_session *s)
{
	s->commit = NULL;
	s->suspended = false;
	session_flush(s);
	session_process(s);
	session_after(s);
}

bool smtpd_session_in_mynetworks(const struct smtpd_session *s)
{
	return s->in_mynetworks;
}

struct workq *smtpd_session_commitq(struct smtpd_session *s)
{
	return s->srv->commitq;
}

void smtpd_session_log_queued(struct smtpd_session *s, const char *id, const char *msgid)
{
	struct buf line = BUF_INIT;
	mail_log_client(&line, id, s->name, s->addr, NULL, NULL);
	log_info("%s", buf_cstr(&line));
	buf_reset(&line);
	mail_log_message_id(&line, id, msgid);
	log_info("%s", buf_cstr(&line));
	buf_deinit(&line);
}

/* ---- command handlers ---- */

typedef int smtpd_handler(struct smtpd_session *s, struct strv arg);

static int cmd_helo_common(struct smtpd_session *s, struct strv arg, bool esmtp)
{
	const struct smtpd_conf *c = s->conf;

	if (arg.len == 0) {
		smtpd_session_reply(s, 501, "5.5.4", "Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
		return -1;
	}
	/* RFC 5321 4.1.4: HELO/EHLO in a transaction resets it. */
	session_txn_reset(s);
	free(s->helo);
	s->helo = strv_dup(arg);
	if (s->tls_active)
		s->proto = esmtp ? "ESMTPS" : "SMTPS";
	else
		s->proto = esmtp ? "ESMTP" : "SMTP";
	if (!esmtp) {
		session_reply_emit(s, 250, true, NULL, c->myhostname);
	} else {
		/* The seeds' order (Postfix's). */
		struct buf size = BUF_INIT;
		if (c->message_size_limit > 0)
			buf_printf(&size, "SIZE %llu", (unsigned long long)c->message_size_limit);
		else
			buf_append_str(&size, "SIZE");
		session_reply_emit(s, 250, false, NULL, c->myhostname);
		session_reply_emit(s, 250, false, NULL, "PIPELINING");
		session_reply_emit(s, 250, false, NULL, buf_cstr(&size));
		if (!c->disable_vrfy)
			session_reply_emit(s, 250, false, NULL, "VRFY");
		session_reply_emit(s, 250, false, NULL, "ETRN");
		if (c->tls_ctx != NULL && !s->tls_active)
			session_reply_emit(s, 250, false, NULL, "STARTTLS");
		session_reply_emit(s, 250, false, NULL, "ENHANCEDSTATUSCODES");
		session_reply_emit(s, 250, false, NULL, "8BITMIME");
		session_reply_emit(s, 250, true, NULL, "DSN");
		buf_deinit(&size);
	}
	session_set_state(s, SMTPD_ST_HELO);
	return 0;
}

static int cmd_helo(struct smtpd_session *s, struct strv arg) { return cmd_helo_common(s, arg, false); }

/* RFC 3207 4: 220, then the TLS handshake; what the client sent after
 * STARTTLS in the clear is discarded (section 6), and the session starts
 * over: the client must say EHLO again (section 4.2). */
static int cmd_starttls(struct smtpd_session *s, struct strv arg)
{
	if (s->conf->tls_ctx == NULL) {
		smtpd_session_reply(s, 502, "5.5.1", "Error: command not implemented");
		return -1;
	}
	if (arg.len != 0) {
		smtpd_session_reply(s, 501, "5.5.4", "Syntax: STARTTLS");
		return -1;
	}
	if (s->tls_active) {
		smtpd_session_reply(s, 554, "5.5.1", "Error: TLS already active");
		return -1;
	}
	smtpd_session_reply(s, 220, "2.0.0", "Ready to start TLS");
	s->tls_upgrade = true;
	return 0;
}
static int cmd_ehlo(struct smtpd_session *s, struct strv arg) { return cmd_helo_common(s, arg, true); }

/* Parse "FROM:<path> params" / "TO:<path> params" (strict_rfc821_envelopes
 * = no: spaces after the colon and bare addresses are accepted).  Returns
 * 0; -1 syntax (no keyword), -2 bad address. */
static int parse_path_arg(struct strv arg, const char *keyword, char **addr_r,
			  struct esmtp_param **params_r, size_t *n_params_r, const char **bad_r)
{
	size_t kl = strlen(keyword);
	const char *error = NULL;
	size_t consumed = 0;

	*params_r = NULL;
	*n_params_r = 0;
	*bad_r = NULL;
	if (!strv_case_prefix(arg, keyword))
		return -1;
	struct strv rest = strv_trim(strv_make(arg.ptr + kl, arg.len - kl));
	if (rest.len == 0)
		return -1;
	if (addr_parse_path(rest.ptr, rest.len, false, addr_r, &consumed, &error) < 0)
		return -2;
	if (consumed < rest.len) {
		char *p = xstrndup(rest.ptr + consumed, rest.len - consumed);
		if (addr_parse_esmtp_params(p, params_r, n_params_r, &error) < 0) {
			free(p);
			free(*addr_r);
			*addr_r = NULL;
			*bad_r = "Syntax error in parameters";
			return -3;
		}
		free(p);
	}
	return 0;
}

static void reply_unsupported(struct smtpd_session *s, const struct esmtp_param *p)
{
	if (p->value != NULL)
		smtpd_session_reply(s, 555, "5.5.4", "Unsupported option: %s=%s", p->key, p->value);
	else
		smtpd_session_reply(s, 555, "5.5.4", "Unsupported option: %s", p->key);
}

static int cmd_mail(struct smtpd_session *s, struct strv arg)
{
	const struct smtpd_conf *c = s->conf;
	if (c->tls_required && !s->tls_active) {
		smtpd_session_reply(s, 530, "5.7.0", "Must issue a STARTTLS command first");
		return -1;
	}
	char *addr = NULL, *envid = NULL;
	struct esmtp_param *params = NULL;
	size_t n_params = 0;
	const char *bad = NULL, *ret = NULL, *error = NULL;
	bool body_8bit = false;
	int rc = -1;

	int r = parse_path_arg(arg, "FROM:", &addr, &params, &n_params, &bad);
	if (r == -1) {
		smtpd_session_reply(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		return -1;
	}
	if (r == -2) {
		smtpd_session_reply(s, 501, "5.1.7", "Bad sender address syntax");
		return -1;
	}
	if (r == -3) {
		smtpd_session_reply(s, 501, "5.5.4", "%s", bad);
		return -1;
	}
	for (size_t i = 0; i < n_params; i++) {
		const struct esmtp_param *p = &params[i];
		if (strcmp(p->key, "SIZE") == 0) {
			uint64_t size;
			if (p->value == NULL || addr_esmtp_size_parse(p->value, &size) < 0) {
				smtpd_session_reply(s, 501, "5.5.4", "Bad message size syntax");
				goto out;
			}
			if (c->message_size_limit > 0 && size > c->message_size_limit) {
				smtpd_session_reply(s, 552, "5.3.4", "Message size exceeds fixed limit");
				session_log_reject(s, "MAIL", 552, "5.3.4",
						   "Message size exceeds fixed limit", NULL);
				goto out;
			}
		} else if (strcmp(p->key, "BODY") == 0) {
			enum addr_body body;
			if (p->value == NULL || addr_esmtp_body_parse(p->value, &body) < 0) {
				smtpd_session_reply(s, 501, "5.5.4", "Bad BODY keyword: %s",
						    p->value != NULL ? p->value : "");
				goto out;
			}
			body_8bit = body == ADDR_BODY_8BITMIME;
		} else if (strcmp(p->key, "RET") == 0 && ret == NULL) {
			enum addr_dsn_ret dr;
			if (p->value == NULL || addr_esmtp_ret_parse(p->value, &dr) < 0) {
				smtpd_session_reply(s, 501, "5.5.4", "Bad RET parameter syntax");
				goto out;
			}
			ret = dr == ADDR_RET_FULL ? "FULL" : "HDRS";
		} else if (strcmp(p->key, "ENVID") == 0 && envid == NULL) {
			if (p->value == NULL || addr_esmtp_envid_parse(p->value, &envid) < 0) {
				smtpd_session_reply(s, 501, "5.5.4", "Bad ENVID parameter syntax");
				goto out;
			}
		} else if (strcmp(p->key, "AUTH") == 0) {
			/* RFC 4954 5: ignored from unauthenticated clients. */
		} else {
			reply_unsupported(s, p);
			goto out;
		}
	}
	char *sender = cleanup_rewrite_sender(&c->cleanup, addr, &error);
	if (sender == NULL) {
		log_warning("%s: rewriting sender <%s>: %s", s->peer, addr,
			    error != NULL ? error : "error");
		smtpd_session_reply(s, 451, "4.3.0", "<%s>: Temporary lookup failure", addr);
		goto out;
	}
	session_txn_reset(s);
	s->txn = xcalloc(1, sizeof(*s->txn));
	s->txn->sender = sender;
	s->txn->envid = envid;
	envid = NULL;
	s->txn->ret = ret;
	s->txn->body_8bit = body_8bit;
	smtpd_session_reply(s, 250, "2.1.0", "Ok");
	session_set_state(s, SMTPD_ST_MAIL);
	rc = 0;
out:
	free(addr);
	free(envid);
	addr_esmtp_params_free(&params, n_params);
	return rc;
}

static int cmd_rcpt(struct smtpd_session *s, struct strv arg)
{
	const struct smtpd_conf *c = s->conf;
	struct smtpd_txn *t = s->txn;
	char *addr = NULL, *notify = NULL, *orcpt = NULL;
	struct esmtp_param *params = NULL;
	size_t n_params = 0;
	const char *bad = NULL;
	int rc = -1;

	int r = parse_path_arg(arg, "TO:", &addr, &params, &n_params, &bad);
	if (r == -1) {
		smtpd_session_reply(s, 501, "5.5.4", "Syntax: RCPT TO:<address>");
		return -1;
	}
	if (r == -2 || (r == 0 && addr[0] == '\0')) {
		smtpd_session_reply(s, 501, "5.1.3", "Bad recipient address syntax");
		goto out;
	}
	if (r == -3) {
		smtpd_session_reply(s, 501, "5.5.4", "%s", bad);
		return -1;
	}
	for (size_t i = 0; i < n_params; i++) {
		const struct esmtp_param *p = &params[i];
		if (strcmp(p->key, "NOTIFY") == 0 && notify == NULL) {
			unsigned flags;
			if (p->value == NULL || addr_esmtp_notify_parse(p->value, &flags) < 0) {
				smtpd_session_reply(s, 501, "5.5.4", "Error: Bad NOTIFY parameter syntax");
				goto out;
			}
			notify = xstrdup(p->value);
			for (char *q = notify; *q != '\0'; q++)
				if (*q >= 'a' && *q <= 'z')
					*q = (char)(*q - 'a' + 'A');
		} else if (strcmp(p->key, "ORCPT") == 0 && orcpt == NULL) {
			char *type = NULL, *oaddr = NULL;
			if (p->value == NULL ||
			    addr_esmtp_orcpt_parse(p->value, &type, &oaddr) < 0) {
				smtpd_session_reply(s, 501, "5.5.4", "Error: Bad ORCPT parameter syntax");
				goto out;
			}
			struct buf o = BUF_INIT;
			buf_printf(&o, "%s;%s", type, oaddr);
			orcpt = buf_steal(&o);
			free(type);
			free(oaddr);
		} else {
			reply_unsupported(s, p);
			goto out;
		}
	}
	if (t->n_rcpts >= c->recipient_limit) {
		smtpd_session_reply(s, 452, "4.5.3", "Error: too many recipients");
		goto out;
	}
	struct smtpd_rcpt_check chk;
	enum smtpd_rcpt_verdict v = smtpd_check_rcpt(c, addr, s->in_mynetworks, &chk);
	if (v != SMTPD_RCPT_OK) {
		smtpd_session_reply(s, chk.code, chk.status, "%s", buf_cstr(&chk.text));
		session_log_reject(s, "RCPT", chk.code, chk.status, buf_cstr(&chk.text), addr);
		smtpd_rcpt_check_deinit(&chk);
		goto out;
	}
	for (size_t i = 0; chk.final[i] != NULL; i++) {
		t->rcpts = xreallocarray(t->rcpts, t->n_rcpts + 1, sizeof(*t->rcpts));
		struct smtpd_rcpt *rc_ = &t->rcpts[t->n_rcpts++];
		rc_->address = xstrdup(chk.final[i]);
		rc_->orig = strcmp(addr, chk.final[i]) != 0 ? xstrdup(addr) : NULL;
		rc_->given = xstrdup(addr);
		rc_->notify = notify != NULL ? xstrdup(notify) : NULL;
		rc_->orcpt = orcpt != NULL ? xstrdup(orcpt) : NULL;
	}
	smtpd_rcpt_check_deinit(&chk);
	smtpd_session_reply(s, 250, "2.1.5", "Ok");
	session_set_state(s, SMTPD_ST_RCPT);
	rc = 0;
out:
	free(addr);
	free(notify);
	free(orcpt);
	addr_esmtp_params_free(&params, n_params);
	return rc;
}

static int cmd_data(struct smtpd_session *s, struct strv arg)
{
	const char *error = NULL;

	if (arg.len != 0) {
		smtpd_session_reply(s, 501, "5.5.4", "Syntax: DATA");
		return -1;
	}
	if (smtpd_data_begin(s, &error) < 0) {
		log_warning("%s: queue file write error: %s", s->peer, error);
		smtpd_session_reply(s, 451, "4.3.0", "Error: queue file write error");
		return -1;
	}
	smtpd_session_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	session_set_state(s, SMTPD_ST_DATA);
	return 0;
}

static int cmd_rset(struct smtpd_session *s, struct strv arg)
{
	if (arg.len != 0) {
		smtpd_session_reply(s, 501, "5.5.4", "Syntax: RSET");
		return -1;
	}
	session_txn_reset(s);
	smtpd_session_reply(s, 250, "2.0.0", "Ok");
	session_set_state(s, s->helo != NULL ? SMTPD_ST_HELO : SMTPD_ST_GREETED);
	return 0;
}

static int cmd_noop(struct smtpd_session *s, struct strv arg)
{
	(void)arg;
	smtpd_session_reply(s, 250, "2.0.0", "Ok");
	return 0;
}

static int cmd_vrfy(struct smtpd_session *s, struct strv arg)
{
	char *addr = NULL;
	size_t consumed = 0;
	const char *error = NULL;

	if (s->conf->disable_vrfy) {
		smtpd_session_reply(s, 502, "5.5.1", "VRFY command is disabled");
		return -1;
	}
	if (arg.len == 0) {
		smtpd_session_reply(s, 501, "5.5.4", "Syntax: VRFY address");
		return -1;
	}
	if (addr_parse_path(arg.ptr, arg.len, false, &addr, &consumed, &error) < 0 ||
	    addr[0] == '\0') {
		free(addr);
		smtpd_session_reply(s, 501, "5.1.3", "Bad recipient address syntax");
		return -1;
	}
	/* Postfix answers 252 (cannot verify, will try) for any address it
	 * would accept: relay rules do not apply to VRFY. */
	struct smtpd_rcpt_check chk;
	enum smtpd_rcpt_verdict v = smtpd_check_rcpt(s->conf, addr, true, &chk);
	int rc = 0;
	if (v != SMTPD_RCPT_OK) {
		smtpd_session_reply(s, chk.code, chk.status, "%s", buf_cstr(&chk.text));
		session_log_reject(s, "VRFY", chk.code, chk.status, buf_cstr(&chk.text), addr);
		rc = -1;
	} else {
		smtpd_session_reply(s, 252, "2.0.0", "%s", addr);
	}
	smtpd_rcpt_check_deinit(&chk);
	free(addr);
	return rc;
}

static int cmd_etrn(struct smtpd_session *s, struct strv arg)
{
	if (arg.len == 0) {
		smtpd_session_reply(s, 500, "5.5.4", "Syntax: ETRN domain");
		return -1;
	}
	/* facteur has no per-site deferred queue: ETRN flushes the whole
	 * queue, as "facteur queue flush" does. */
	if (queue_notify(s->srv->queue_dir, "qmgr", "F\n") < 0)
		log_warning("%s: ETRN: queue manager wake-up: %s", s->peer, strerror(errno));
	smtpd_session_reply(s, 250, NULL, "Queuing started");
	return 0;
}

static int cmd_help(struct smtpd_session *s, struct strv arg)
{
	(void)arg;
	smtpd_session_reply(s, 214, "2.0.0",
			    "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP VRFY ETRN HELP QUIT");
	return 0;
}

static int cmd_quit(struct smtpd_session *s, struct strv arg)
{
	(void)arg;
	session_close_with(s, 221, "2.0.0", "Bye");
	return 0;
}

/* Indexed by enum smtpd_cmd_id; the table of verbs, states and flags is
 * smtpd_cmds[] in smtpd_proto.c. */
static smtpd_handler *const smtpd_handlers[SMTPD_CMD_COUNT] = {
	[SMTPD_CMD_HELO] = cmd_helo,
	[SMTPD_CMD_EHLO] = cmd_ehlo,
	[SMTPD_CMD_MAIL] = cmd_mail,
	[SMTPD_CMD_RCPT] = cmd_rcpt,
	[SMTPD_CMD_DATA] = cmd_data,
	[SMTPD_CMD_RSET] = cmd_rset,
	[SMTPD_CMD_NOOP] = cmd_noop,
	[SMTPD_CMD_VRFY] = cmd_vrfy,
	[SMTPD_CMD_ETRN] = cmd_etrn,
	[SMTPD_CMD_HELP] = cmd_help,
	[SMTPD_CMD_QUIT] = cmd_quit,
	[SMTPD_CMD_STARTTLS] = cmd_starttls,
};

/* Run one command line.  Returns true when the replies must be flushed
 * now (the command ends a PIPELINING group). */
static bool session_command(struct smtpd_session *s, struct strv line)
{
	struct strv verb, arg;

	if (log_debug_enabled())
		log_debug("%s: < %.*s", s->peer, (int)line.len, line.ptr);
	smtpd_cmd_split(line, &verb, &arg);
	if (verb.len == 0) {
		s->last_cmd = "UNKNOWN";
		s->n_total[SMTPD_CMD_UNKNOWN]++;
		smtpd_session_reply(s, 500, "5.5.2", "Error: bad syntax");
		return false;
	}
	const struct smtpd_cmd *cmd = smtpd_cmd_find(verb);
	if (cmd == NULL) {
		s->last_cmd = "UNKNOWN";
		s->n_total[SMTPD_CMD_UNKNOWN]++;
		smtpd_session_reply(s, 502, "5.5.2", "Error: command not recognized");
		return false;
	}
	s->last_cmd = cmd->verb;
	s->n_total[cmd->id]++;
	struct smtpd_reply_text refusal;
	if (smtpd_cmd_state_refusal(cmd, s->state, s->conf->helo_required, &refusal)) {
		session_reply_emit(s, refusal.code, true, refusal.status, refusal.text);
		return (cmd->flags & SMTPD_CMDF_ENDS_GROUP) != 0;
	}
	/* DATA success is counted at the end of the message. */
	if (smtpd_handlers[cmd->id](s, arg) == 0 && cmd->id != SMTPD_CMD_DATA)
		s->n_ok[cmd->id]++;
	return (cmd->flags & SMTPD_CMDF_ENDS_GROUP) != 0;
}

static void delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_session *s = arg;
	(void)fd;
	(void)what;
	s->delay_pending = false;
	s->suspended = false;
	session_flush(s);
	session_process(s);
	session_after(s);
}

/* Take commands (or DATA content) from the input while the session can
 * run. */
static void session_process(struct smtpd_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	if (s->in_process)
		return;
	s->in_process = true;
	while (!s->suspended && !s->closing) {
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) + s->replies.len >
		    SMTPD_WRITE_BACKLOG_MAX)
			break;
		if (s->errors >= s->conf->hard_error_limit) {
			log_info("too many errors after %s from %s", s->last_cmd, s->peer);
			struct buf t = BUF_INIT;
			buf_printf(&t, "%s Error: too many errors", s->conf->myhostname);
			session_close_with(s, 421, "4.7.0", buf_cstr(&t));
			buf_deinit(&t);
			break;
		}
		if (s->state == SMTPD_ST_DATA) {
			if (!smtpd_data_input(s, in))
				break;
			if (s->txn == NULL && s->state != SMTPD_ST_DATA)
				session_flush(s);
		} else {
			enum smtpd_line_result r =
				smtpd_line_read(in, s->conf->line_length_limit, &s->draining, &s->line);
			if (r == SMTPD_LINE_MORE)
				break;
			if (r == SMTPD_LINE_TOO_LONG) {
				smtpd_session_reply(s, 500, "5.5.0", "Error: line too long");
			} else if (session_command(s, strv_make(buf_cstr(&s->line), s->line.len))) {
				session_flush(s);
			}
		}
		if (s->tls_upgrade) {
			session_tls_start(s);
			break;
		}
		if (s->delay_pending) {
			/* Slow down clients that make many errors, without
			 * blocking the other sessions. */
			struct timeval tv = { s->conf->error_sleep_sec, 0 };
			s->suspended = true;
			evtimer_add(s->delay_ev, &tv);
			break;
		}
	}
	s->in_process = false;
}

/* The 220 to STARTTLS is queued: flush it in the clear, drop the rest of
 * the cleartext input (RFC 3207 6: commands injected before the
 * handshake), forget HELO and the transaction, and put a TLS filter over
 * the connection; the handshake runs from the next read. */
static void session_tls_start(struct smtpd_session *s)
{
	s->tls_upgrade = false;
	session_flush(s);
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t injected = evbuffer_get_length(in);
	if (injected > 0) {
		log_info("%s: %zu bytes after STARTTLS discarded", s->peer, injected);
		evbuffer_drain(in, injected);
	}
	session_txn_reset(s);
	free(s->helo);
	s->helo = NULL;
	s->proto = "SMTP";
	session_set_state(s, SMTPD_ST_GREETED);
	SSL *ssl = SSL_new(s->conf->tls_ctx);
	struct bufferevent *f =
		ssl != NULL ? bufferevent_openssl_filter_new(bufferevent_get_base(s->bev), s->bev, ssl,
							     BUFFEREVENT_SSL_ACCEPTING,
							     BEV_OPT_CLOSE_ON_FREE)
			    : NULL;
	if (f == NULL) {
		log_warning("%s: cannot start TLS: %s", s->peer, tls_last_error());
		if (ssl != NULL)
			SSL_free(ssl);
		s->closing = true;
		return;
	}
	s->bev = f;
	s->tls_active = true;
	size_t high = SMTPD_READ_HIGH_WATER;
	if (s->conf->line_length_limit + 64 > high)
		high = s->conf->line_length_limit + 64;
	bufferevent_setwatermark(f, EV_READ, 0, high);
	struct timeval tv = { s->conf->timeout_sec, 0 };
	bufferevent_set_timeouts(f, &tv, &tv);
	bufferevent_setcb(f, read_cb, write_cb, event_cb, s);
	bufferevent_enable(f, EV_READ | EV_WRITE);
}

/* After every callback: flush what is due and close when asked to. */
#define SMTPD_CLOSE_TICK_MS 20

static void session_close_when_flushed(struct smtpd_session *s);

static void close_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	session_close_when_flushed(arg);
}

/* Free the session once its last reply has left: over TLS the filter's
 * output drains into the socket's bufferevent first, which must drain too
 * before the socket is closed (checked on a short timer, at most
 * smtpd_timeout). */
static void session_close_when_flushed(struct smtpd_session *s)
{
	size_t pending = evbuffer_get_length(bufferevent_get_output(s->bev));
	struct bufferevent *under = bufferevent_get_underlying(s->bev);
	if (under != NULL)
		pending += evbuffer_get_length(bufferevent_get_output(under));
	if (pending == 0 ||
	    (unsigned long)s->close_ticks * SMTPD_CLOSE_TICK_MS >= s->conf->timeout_sec * 1000ul) {
		session_free(s);
		return;
	}
	if (under == NULL)
		return; /* write_cb comes when it drains */
	if (s->close_ev == NULL)
		s->close_ev = evtimer_new(bufferevent_get_base(s->bev), close_cb, s);
	s->close_ticks++;
	struct timeval tv = { 0, SMTPD_CLOSE_TICK_MS * 1000 };
	evtimer_add(s->close_ev, &tv);
}

static void session_after(struct smtpd_session *s)
{
	if (!s->suspended || !s->delay_pending)
		session_flush(s);
	if (s->closing && !s->delay_pending) {
		bufferevent_disable(s->bev, EV_READ);
		session_close_when_flushed(s);
	}
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct smtpd_session *s = arg;
	(void)bev;
	if (s->closing)
		return;
	session_process(s);
	session_after(s);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct smtpd_session *s = arg;
	(void)bev;
	if (s->closing) {
		if (!s->delay_pending)
			session_close_when_flushed(s);
		return;
	}
	/* The output drained: take the commands held back, if any. */
	if (!s->suspended && s->state != SMTPD_ST_CONNECT) {
		session_process(s);
		session_after(s);
	}
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtpd_session *s = arg;
	(void)bev;

	if (what & BEV_EVENT_CONNECTED) {
		/* The TLS handshake is done (Postfix's log line). */
		SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
		if (ssl != NULL && s->tls_info == NULL) {
			struct buf info = BUF_INIT;
			tls_conn_describe(ssl, &info);
			s->tls_info = xstrdup(buf_cstr(&info));
			buf_reset(&info);
			buf_printf(&info, "using %s", s->tls_info);
			s->tls_using = buf_steal(&info);
			log_info("Anonymous TLS connection established from %s: %s", s->peer,
				 s->tls_info);
		}
		return;
	}
	if (s->closing) {
		session_free(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		log_info("timeout after %s from %s", s->last_cmd, s->peer);
		struct buf t = BUF_INIT;
		buf_printf(&t, "%s Error: timeout exceeded", s->conf->myhostname);
		s->delay_pending = false;
		evtimer_del(s->delay_ev);
		s->suspended = false;
		session_close_with(s, 421, "4.4.2", buf_cstr(&t));
		buf_deinit(&t);
		bufferevent_enable(s->bev, EV_WRITE);
		session_after(s);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		/* Commands fully received before the EOF still count (a
		 * client may send "QUIT" and close at once). */
		if (what & BEV_EVENT_EOF) {
			session_process(s);
			if (s->closing) {
				session_free(s);
				return;
			}
		}
		if (s->tls_active && s->tls_info == NULL) {
			unsigned long e = bufferevent_get_openssl_error(s->bev);
			char text[256] = "handshake failed";
			if (e != 0)
				ERR_error_string_n(e, text, sizeof(text));
			log_info("SSL_accept error from %s: %s", s->peer, text);
		}
		log_info("lost connection after %s from %s", s->last_cmd, s->peer);
		session_free(s);
	}
}

static void session_log_disconnect(struct smtpd_session *s)
{
	struct mail_log_cmd_count counts[SMTPD_CMD_COUNT];
	size_t n = 0;
	for (size_t i = 0; i < smtpd_cmds_count; i++) {
		enum smtpd_cmd_id id = smtpd_cmds[i].id;
		counts[n++] = (struct mail_log_cmd_count){ smtpd_cmds[i].log_name, s->n_ok[id],
							   s->n_total[id] };
	}
	counts[n++] = (struct mail_log_cmd_count){ "unknown", 0, s->n_total[SMTPD_CMD_UNKNOWN] };
	struct buf line = BUF_INIT;
	mail_log_disconnect(&line, s->name, s->addr, counts, n);
	log_info("%s", buf_cstr(&line));
	buf_deinit(&line);
}

static void session_free(struct smtpd_session *s)
{
	struct smtpd_server *srv = s->srv;

	if (s->commit != NULL)
		s->commit->s = NULL; /* the commit completes without us */

	if (s->state != SMTPD_ST_CONNECT || s->dnsq == NULL)
		session_log_disconnect(s);
	smtpd_dns_cancel(&s->dnsq);
	smtpd_txn_free(&s->txn);
	if (s->delay_ev != NULL)
		event_free(s->delay_ev);
	if (s->close_ev != NULL)
		event_free(s->close_ev);
	bufferevent_free(s->bev);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	srv->n_sessions--;
	free(s->helo);
	free(s->name);
	free(s->peer);
	free(s->tls_info);
	free(s->tls_using);
	buf_deinit(&s->replies);
	buf_deinit(&s->line);
	free(s);
	smtpd_server_session_ended(srv);
}

void smtpd_sessions_close_all(struct smtpd_server *srv)
{
	while (srv->sessions != NULL)
		session_free(srv->sessions);
}

static void session_greet(struct smtpd_session *s)
{
	struct buf line = BUF_INIT;
	mail_log_connect(&line, s->name, s->addr);
	log_info("%s", buf_cstr(&line));
	buf_deinit(&line);
	session_reply_emit(s, 220, true, NULL, s->conf->banner);
	session_set_state(s, SMTPD_ST_GREETED);
	s->suspended = false;
	s->last_cmd = "CONNECT";
}

static void session_set_name(struct smtpd_session *s, const char *name)
{
	free(s->name);
	free(s->peer);
	s->name = xstrdup(name);
	struct buf p = BUF_INIT;
	buf_printf(&p, "%s[%s]", s->name, s->addr);
	s->peer = buf_steal(&p);
}

static void dns_cb(void *ctx, const char *name)
{
	struct smtpd_session *s = ctx;
	s->dnsq = NULL;
	session_set_name(s, name);
	session_greet(s);
	session_flush(s);
	session_process(s);
	session_after(s);
}

/* Printable client address; IPv4-mapped IPv6 is shown as IPv4. */
static void sockaddr_text(const struct sockaddr *sa, socklen_t salen, char *out, size_t size)
{
	if (getnameinfo(sa, salen, out, (socklen_t)size, NULL, 0, NI_NUMERICHOST) != 0)
		(void)str_copy(out, size, "unknown");
	else if (strncmp(out, "::ffff:", 7) == 0 && strchr(out + 7, '.') != NULL)
		memmove(out, out + 7, strlen(out + 7) + 1);
}

/* Refuse a connection over a limit with a 421 written straight to the
 * socket (best effort: it is non-blocking and the reply is tiny). */
static void refuse_connection(int fd, const char *text)
{
	ssize_t n = write(fd, text, strlen(text));
	(void)n; /* nothing to do: the connection is closed anyway */
	if (close(fd) < 0)
		log_warning("close: %s", strerror(errno));
}

void smtpd_session_start(struct smtpd_server *srv, int fd, bool implicit_tls,
			 const struct sockaddr *sa, socklen_t salen)
{
	const struct smtpd_conf *c = srv->conf;
	char addr[INET6_ADDRSTRLEN];

	sockaddr_text(sa, salen, addr, sizeof(addr));
	if (srv->n_sessions >= c->max_sessions) {
		struct buf t = BUF_INIT;
		log_warning("too many sessions (smtpd_max_sessions = %u): refusing [%s]",
			    c->max_sessions, addr);
		buf_printf(&t, "421 4.7.0 %s Error: too many connections\r\n", c->myhostname);
		refuse_connection(fd, buf_cstr(&t));
		buf_deinit(&t);
		return;
	}
	if (c->client_connection_count_limit > 0) {
		unsigned same = 0;
		for (struct smtpd_session *o = srv->sessions; o != NULL; o = o->next)
			if (strcmp(o->addr, addr) == 0)
				same++;
		if (same >= c->client_connection_count_limit) {
			struct buf t = BUF_INIT;
			log_warning("Connection concurrency limit exceeded: %u from [%s] for service smtp",
				    same + 1, addr);
			buf_printf(&t, "421 4.7.0 %s Error: too many connections from %s\r\n",
				   c->myhostname, addr);
			refuse_connection(fd, buf_cstr(&t));
			buf_deinit(&t);
			return;
		}
	}

	struct smtpd_session *s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->conf = c;
	s->state = SMTPD_ST_CONNECT;
	s->proto = "SMTP";
	s->last_cmd = "CONNECT";
	if (salen > sizeof(s->sa))
		salen = sizeof(s->sa);
	memcpy(&s->sa, sa, salen);
	s->salen = salen;
	(void)str_copy(s->addr, sizeof(s->addr), addr);
	session_set_name(s, "unknown");
	s->in_mynetworks = smtpd_nets_match(&c->mynetworks, s->addr);
	buf_init(&s->replies);
	buf_init(&s->line);

	evutil_make_socket_nonblocking(fd);
	if (implicit_tls) {
		SSL *ssl = SSL_new(c->tls_ctx);
		s->bev = ssl != NULL ? bufferevent_openssl_socket_new(srv->base, fd, ssl,
								      BUFFEREVENT_SSL_ACCEPTING,
								      BEV_OPT_CLOSE_ON_FREE)
				     : NULL;
		if (s->bev == NULL && ssl != NULL)
			SSL_free(ssl);
		s->tls_active = true;
	} else {
		s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (s->bev == NULL) {
		log_error("bufferevent_socket_new failed for [%s]", addr);
		(void)close(fd);
		free(s->name);
		free(s->peer);
		free(s);
		return;
	}
	s->delay_ev = evtimer_new(srv->base, delay_cb, s);
	size_t high = SMTPD_READ_HIGH_WATER;
	if (c->line_length_limit + 64 > high)
		high = c->line_length_limit + 64;
	bufferevent_setwatermark(s->bev, EV_READ, 0, high);
	struct timeval tv = { c->timeout_sec, 0 };
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);

	s->next = srv->sessions;
	if (srv->sessions != NULL)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->n_sessions++;

	if (srv->dns != NULL && c->peername_lookup) {
		/* The session waits (suspended, not blocking) for the name:
		 * Postfix logs and greets with the verified name. */
		s->suspended = true;
		s->dnsq = smtpd_dns_lookup(srv->dns, sa, salen, SMTPD_DNS_TIMEOUT, dns_cb, s);
		bufferevent_enable(s->bev, EV_READ | EV_WRITE);
		return;
	}
	session_greet(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	session_flush(s);
}
