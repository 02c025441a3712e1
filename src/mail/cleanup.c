/* cleanup.c - envelope and header processing of a new message, as Postfix's
 * cleanup(8) does it.
 *
 * Callers: smtpd (after DATA) and pickup/sendmail (local submission) before
 * the message is committed to the queue.  The module takes its settings and
 * lookup tables through struct cleanup_params (callbacks), so it is pure
 * apart from the lookups and can be unit-tested without main.cf or tables.
 *
 * Canonical mapping follows canonical(5) (lookup "user@domain", then "user"
 * for local domains, then "@domain"; a result "@other" keeps the user);
 * virtual aliases follow virtual(5) (same lookup order, one-to-many,
 * recursive, loop- and size-limited).  Any lookup error is a temporary
 * failure: better to defer than to send mail to the wrong place.
 */
#include "mail/cleanup.h"

#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/addr.h"
#include "mail/header.h"

#include <stdlib.h>
#include <string.h>

void cleanup_result_deinit(struct cleanup_result *res)
{
	free(res->message_id);
	res->message_id = NULL;
	hdrcheck_result_clear(&res->verdict);
}

char *cleanup_fullname_from_gecos(const char *gecos, const char *login)
{
	struct buf b = BUF_INIT;
	for (const char *p = gecos; *p != '\0' && *p != ','; p++) {
		if (*p == '&') {
			/* finger(1): '&' stands for the login, capitalised. */
			if (login[0] != '\0') {
				char first = login[0];
				if (first >= 'a' && first <= 'z')
					first = (char)(first - 32);
				buf_append_char(&b, first);
				buf_append_str(&b, login + 1);
			}
		} else {
			buf_append_char(&b, *p);
		}
	}
	return buf_steal(&b);
}

/* ---- canonical(5) ---- */

/* Table values are used verbatim by Postfix, but an admin who writes
 *     root    christian.caleca@free.fr # L'administrateur (moi)
 * (as the seeds do: postmap(1) has no trailing comments) means the address.
 * We take the first white-space (or comma) delimited token of the value:
 * a canonical mapping is one-to-one, so anything after it cannot be a second
 * address, and this gives the seeds' "christian.caleca@free.fr". */
static char *cleanup_first_token(const char *v)
{
	while (*v == ' ' || *v == '\t' || *v == ',')
		v++;
	size_t n = strcspn(v, " \t,");
	return n == 0 ? NULL : xstrndup(v, n);
}

/* Expand a lookup result: "@otherdomain" keeps the user part, a bare name
 * is qualified with myorigin. */
static char *cleanup_result_expand(const struct cleanup_params *p, const char *local,
				   const char *result)
{
	if (result[0] == '@') {
		struct buf b = BUF_INIT;
		buf_printf(&b, "%s%s", local, result);
		return buf_steal(&b);
	}
	return addr_qualify(result, p->myorigin);
}

static bool cleanup_domain_is_local(const struct cleanup_params *p, const char *domain)
{
	char *const origin[] = { (char *)p->myorigin, NULL };
	return (p->myorigin != NULL && addr_domain_in_list(domain, origin)) ||
		addr_domain_in_list(domain, p->local_domains);
}

/* Look addr up in m in canonical(5)/virtual(5) order.  Returns 1 with the
 * raw table value in *value_r and the local part in *local_r, 0, or -1. */
static int cleanup_map_lookup(const struct cleanup_params *p, const struct cleanup_map *m,
			      const char *addr, char **value_r, char **local_r)
{
	char *local, *domain;
	int ret;
	if (m->lookup == NULL || addr[0] == '\0')
		return 0;
	addr_split(addr, &local, &domain);
	ret = m->lookup(m->ctx, addr, value_r);
	if (ret == 0 && domain != NULL && cleanup_domain_is_local(p, domain))
		ret = m->lookup(m->ctx, local, value_r);
	if (ret == 0 && domain != NULL) {
		struct buf key = BUF_INIT;
		buf_printf(&key, "@%s", domain);
		ret = m->lookup(m->ctx, buf_cstr(&key), value_r);
		buf_deinit(&key);
	}
	free(domain);
	if (ret == 1)
		*local_r = local;
	else
		free(local);
	return ret;
}

/* One canonical table: *addr is replaced when found.  0 or -1. */
static int cleanup_canonical_apply(const struct cleanup_params *p, const struct cleanup_map *m,
				   char **addr, const char **error_r)
{
	char *value, *local;
	int ret = cleanup_map_lookup(p, m, *addr, &value, &local);
	if (ret < 0) {
		*error_r = "canonical map lookup failed";
		return -1;
	}
	if (ret == 0)
		return 0;
	char *token = cleanup_first_token(value);
	if (token != NULL) {
		free(*addr);
		*addr = cleanup_result_expand(p, local, token);
		free(token);
	}
	free(value);
	free(local);
	return 0;
}

static char *cleanup_canonical(const struct cleanup_params *p, const char *addr, bool is_sender,
			       const char **error_r)
{
	char *cur = addr_qualify(addr, p->myorigin);
	const struct cleanup_map *specific =
		is_sender ? &p->sender_canonical_maps : &p->recipient_canonical_maps;
	/* ADDRESS_REWRITING_README: sender_/recipient_canonical_maps are
	 * searched before canonical_maps. */
	if (cleanup_canonical_apply(p, specific, &cur, error_r) < 0 ||
	    cleanup_canonical_apply(p, &p->canonical_maps, &cur, error_r) < 0) {
		free(cur);
		return NULL;
	}
	return cur;
}

char *cleanup_rewrite_sender(const struct cleanup_params *p, const char *addr,
			     const char **error_r)
{
	if (addr[0] == '\0')
		return xstrdup("");
	return cleanup_canonical(p, addr, true, error_r);
}

/* ---- virtual(5) ---- */

struct cleanup_expansion {
	char **out;
	size_t n_out;
	size_t n_visited;
	const char *chain[CLEANUP_VIRTUAL_DEPTH_MAX + 1];
};

static void cleanup_expansion_add(struct cleanup_expansion *e, const char *addr)
{
	for (size_t i = 0; i < e->n_out; i++)
		if (str_casecmp(e->out[i], addr) == 0)
			return;	/* duplicate_filter: one delivery per address */
	e->out = xreallocarray(e->out, e->n_out + 2, sizeof(char *));
	e->out[e->n_out++] = xstrdup(addr);
	e->out[e->n_out] = NULL;
}

static int cleanup_virtual_expand(const struct cleanup_params *p, struct cleanup_expansion *e,
				  const char *addr, size_t depth, const char **error_r)
{
	char *value, *local;
	/* Bound the work too, not only the result: a table where every
	 * address expands to many others would otherwise explode. */
	if (++e->n_visited > 10 * CLEANUP_VIRTUAL_COUNT_MAX) {
		*error_r = "virtual alias expansion limit exceeded";
		return -1;
	}
	int ret = cleanup_map_lookup(p, &p->virtual_alias_maps, addr, &value, &local);
	if (ret < 0) {
		*error_r = "virtual_alias_maps lookup failed";
		return -1;
	}
	if (ret == 0) {
		cleanup_expansion_add(e, addr);
		goto check_count;
	}
	if (depth >= CLEANUP_VIRTUAL_DEPTH_MAX) {
		free(value);
		free(local);
		*error_r = "virtual alias recursion limit exceeded";
		return -1;
	}
	e->chain[depth] = addr;
	char **items;
	str_list_split(value, &items);
	free(value);
	ret = 0;
	for (size_t i = 0; items[i] != NULL && ret == 0; i++) {
		char *item = cleanup_result_expand(p, local, items[i]);
		bool loops = false;
		/* An address that expands to itself (or to an address it came
		 * from) is delivered as is instead of being expanded again. */
		for (size_t d = 0; d <= depth; d++)
			if (str_casecmp(item, e->chain[d]) == 0)
				loops = true;
		if (loops)
			cleanup_expansion_add(e, item);
		else
			ret = cleanup_virtual_expand(p, e, item, depth + 1, error_r);
		free(item);
	}
	str_list_free(&items);
	free(local);
	if (ret < 0)
		return -1;
check_count:
	if (e->n_out > CLEANUP_VIRTUAL_COUNT_MAX) {
		*error_r = "virtual alias expansion limit exceeded";
		return -1;
	}
	return 0;
}

int cleanup_rewrite_recipient(const struct cleanup_params *p, const char *addr,
			      char ***addrs_r, const char **error_r)
{
	char *canon = cleanup_canonical(p, addr, false, error_r);
	if (canon == NULL)
		return -1;
	struct cleanup_expansion e;
	memset(&e, 0, sizeof(e));
	int ret = cleanup_virtual_expand(p, &e, canon, 0, error_r);
	free(canon);
	if (ret < 0) {
		str_list_free(&e.out);
		return -1;
	}
	*addrs_r = e.out;
	return 0;
}

/* ---- dates ---- */

void cleanup_date_format(struct buf *out, time_t t)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	if (localtime_r(&t, &tm) == NULL) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	long off = tm.tm_gmtoff / 60;
	char sign = off < 0 ? '-' : '+';
	if (off < 0)
		off = -off;
	buf_printf(out, "%s, %2d %s %d %02d:%02d:%02d %c%02ld%02ld",
		   days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
		   tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
	if (tm.tm_zone != NULL && tm.tm_zone[0] != '\0')
		buf_printf(out, " (%s)", tm.tm_zone);
}

/* ---- headers ---- */

static const char *const cleanup_sender_fields[] = {
	"From", "Sender", "Reply-To", "Resent-From", "Resent-Sender", "Resent-Reply-To",
	"Errors-To", "Return-Receipt-To", NULL
};
static const char *const cleanup_recipient_fields[] = {
	"To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc", "Apparently-To", NULL
};

static bool cleanup_name_in(const struct header_field *f, const char *const *names)
{
	for (size_t i = 0; names[i] != NULL; i++)
		if (header_name_is(f, names[i]))
			return true;
	return false;
}

struct cleanup_rewrite_ctx {
	const struct cleanup_params *p;
	bool is_sender;
	const char *error;
};

static char *cleanup_header_rewrite_cb(void *ctx, const char *addr)
{
	struct cleanup_rewrite_ctx *c = ctx;
	const char *error;
	if (c->error != NULL)
		return NULL;
	char *r = cleanup_canonical(c->p, addr, c->is_sender, &error);
	if (r == NULL) {
		c->error = error;
		return NULL;
	}
	if (strcmp(r, addr) == 0) {
		free(r);
		return NULL;
	}
	return r;
}

/* The value of a Message-ID field without white space, folding and the
 * angle brackets. */
static char *cleanup_message_id_value(const struct header_field *f)
{
	const char *v = memchr(f->raw, ':', f->raw_len);
	struct strv sv = strv_make(v + 1, f->raw_len - (size_t)(v + 1 - f->raw));
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < sv.len; i++)
		if (sv.ptr[i] != ' ' && sv.ptr[i] != '\t' && sv.ptr[i] != '\r' && sv.ptr[i] != '\n')
			buf_append_char(&b, sv.ptr[i]);
	char *s = buf_steal(&b);
	size_t n = strlen(s);
	if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
		memmove(s, s + 1, n - 2);
		s[n - 2] = '\0';
	}
	return s;
}

static void cleanup_received(const struct cleanup_params *p, const struct cleanup_origin *o,
			     const struct cleanup_envelope *env, struct buf *out)
{
	const char *mail_name = p->mail_name != NULL ? p->mail_name : "facteur";
	if (o->type == CLEANUP_ORIGIN_LOCAL) {
		buf_printf(out, "Received: by %s (%s, from userid %lu)\n\tid %s; ", p->myhostname,
			   mail_name, o->uid, env->queue_id);
		cleanup_date_format(out, env->arrival);
		buf_append_char(out, '\n');
		return;
	}
	/* Postfix smtpd: the HELO name, or the client name when there was no
	 * HELO; IPv6 addresses carry the RFC 5321 "IPv6:" tag. */
	const char *addr = o->client_addr != NULL ? o->client_addr : "unknown";
	const char *tag = strchr(addr, ':') != NULL && strncmp(addr, "IPv6:", 5) != 0 ? "IPv6:" : "";
	const char *name = o->client_name != NULL ? o->client_name : "unknown";
	buf_printf(out, "Received: from %s (%s [%s%s])\n", o->helo_name != NULL ? o->helo_name : name,
		   name, tag, addr);
	if (o->tls_info != NULL && o->tls_info[0] != '\0')
		buf_printf(out, "\t(%s)\n", o->tls_info);
	buf_printf(out, "\tby %s (%s) with %s id %s", p->myhostname, mail_name,
		   o->protocol != NULL ? o->protocol : "SMTP", env->queue_id);
	if (env->n_recipients == 1)
		buf_printf(out, "\n\tfor <%s>; ", env->recipients[0]);
	else
		buf_append_str(out, ";\n\t");
	cleanup_date_format(out, env->arrival);
	buf_append_char(out, '\n');
}

/* Append text to a comment, escaping what would end it (RFC 5322 3.2.2). */
static void cleanup_append_comment(struct buf *out, const char *text)
{
	for (const char *s = text; *s != '\0'; s++) {
		if (*s == '(' || *s == ')' || *s == '\\')
			buf_append_char(out, '\\');
		if (*s != '\n' && *s != '\r')
			buf_append_char(out, *s);
	}
}

/* Log a header_checks or body_checks result as Postfix's cleanup does. */
void cleanup_check_log(const struct cleanup_origin *o, const struct cleanup_envelope *env,
		       enum hdrcheck_context ctx, const char *raw, size_t len,
		       const struct hdrcheck_result *r)
{
	if (r->warning != NULL)
		log_warning("%s", r->warning);
	struct buf origin = BUF_INIT, line = BUF_INIT;
	if (o->type == CLEANUP_ORIGIN_SMTP)
		buf_printf(&origin, "%s[%s]", o->client_name != NULL ? o->client_name : "unknown",
			   o->client_addr != NULL ? o->client_addr : "unknown");
	else
		buf_append_str(&origin, "local");
	struct hdrcheck_log_info info = {
		.queue_id = env->queue_id,
		.origin = buf_cstr(&origin),
		.sender = env->sender,
		.recipient = env->n_recipients > 0 ? env->recipients[0] : NULL,
		.proto = o->type == CLEANUP_ORIGIN_SMTP ? o->protocol : NULL,
		.helo = o->type == CLEANUP_ORIGIN_SMTP ? o->helo_name : NULL,
	};
	char *key = hdrcheck_key(raw, len);
	if (hdrcheck_log_line(&line, &info, ctx, key, r))
		log_info("%s", buf_cstr(&line));
	free(key);
	buf_deinit(&origin);
	buf_deinit(&line);
}

void cleanup_check_merge(struct hdrcheck_result *verdict, struct hdrcheck_result *r)
{
	if (hdrcheck_action_stops_checks(r->action) ||
	    (r->action == HDRCHECK_HOLD && verdict->action == HDRCHECK_DUNNO)) {
		hdrcheck_result_clear(verdict);
		*verdict = *r;
		r->text = NULL;
		r->warning = NULL;
	}
	hdrcheck_result_clear(r);
}

/* Write one header field (raw, with its line ends) through header_checks.
 * -1 with *error_r on a table error. */
static int cleanup_emit(const struct cleanup_params *p, const struct cleanup_origin *o,
			const struct cleanup_envelope *env, const char *raw, size_t len,
			struct buf *out, struct cleanup_result *res, const char **error_r)
{
	struct hdrcheck_result r = HDRCHECK_RESULT_INIT;
	bool checking = p->header_checks != NULL &&
			!hdrcheck_action_stops_checks(res->verdict.action);
	int found = checking ? hdrcheck_header(p->header_checks, raw, len, &r, error_r) : 0;
	if (found < 0)
		return -1;
	if (found > 0 && !(r.action == HDRCHECK_HOLD && res->verdict.action == HDRCHECK_HOLD))
		cleanup_check_log(o, env, HDRCHECK_CTX_HEADER, raw, len, &r);
	enum hdrcheck_action a = found > 0 ? r.action : HDRCHECK_DUNNO;
	if (a == HDRCHECK_PREPEND) {
		buf_printf(out, "%s\n", r.text);
		res->n_fields++;
	}
	if (a == HDRCHECK_REPLACE) {
		buf_printf(out, "%s\n", r.text);
		res->n_fields++;
	} else if (a != HDRCHECK_IGNORE) {
		buf_append(out, raw, len);
		if (out->len > 0 && out->data[out->len - 1] != '\n')
			buf_append_char(out, '\n');
		res->n_fields++;
	}
	cleanup_check_merge(&res->verdict, &r);
	return 0;
}

int cleanup_headers(const struct cleanup_params *p, const struct cleanup_origin *o,
		    const struct cleanup_envelope *env, const char *hdr, size_t len,
		    struct buf *out, struct cleanup_result *res, const char **error_r)
{
	struct header_block hb;
	size_t size_limit = p->header_size_limit != 0 ? p->header_size_limit :
		HEADER_SIZE_LIMIT_DEFAULT;
	size_t count_limit = p->header_count_limit != 0 ? p->header_count_limit :
		HEADER_COUNT_LIMIT_DEFAULT;
	if (header_block_parse(hdr, len, size_limit, count_limit, &hb, error_r) < 0)
		return -1;
	bool rewrite = o->type == CLEANUP_ORIGIN_LOCAL || p->rewrite_remote_headers;
	bool add_missing = rewrite || p->always_add_missing_headers;
	bool have_from = false, have_date = false;
	char *message_id = NULL;
	size_t start_len = out->len;
	res->n_fields = 0;
	res->verdict = (struct hdrcheck_result)HDRCHECK_RESULT_INIT;

	struct buf received = BUF_INIT;
	cleanup_received(p, o, env, &received);
	int er = cleanup_emit(p, o, env, (const char *)received.data, received.len, out, res,
			      error_r);
	buf_deinit(&received);
	if (er < 0) {
		header_block_deinit(&hb);
		goto fail;
	}
	if (o->type == CLEANUP_ORIGIN_SMTP && o->helo_name == NULL) {
		buf_printf(out, "X-Authentication-Warning: %s: %s [%s] didn't use HELO protocol\n",
			   p->myhostname, o->client_name != NULL ? o->client_name : "unknown",
			   o->client_addr != NULL ? o->client_addr : "unknown");
		res->n_fields++;
	}

	for (size_t i = 0; i < hb.count; i++) {
		const struct header_field *f = &hb.fields[i];
		/* Postfix message_drop_headers default. */
		if (header_name_is(f, "Return-Path") || header_name_is(f, "Content-Length"))
			continue;
		if (p->remove_bcc && (header_name_is(f, "Bcc") || header_name_is(f, "Resent-Bcc")))
			continue;
		if (header_name_is(f, "From"))
			have_from = true;
		else if (header_name_is(f, "Date"))
			have_date = true;
		else if (header_name_is(f, "Message-ID") && message_id == NULL)
			message_id = cleanup_message_id_value(f);
		char *rewritten = NULL;
		bool is_sender = cleanup_name_in(f, cleanup_sender_fields);
		if (rewrite && (is_sender || cleanup_name_in(f, cleanup_recipient_fields))) {
			struct cleanup_rewrite_ctx ctx = { p, is_sender, NULL };
			/* A field we cannot parse is kept as it is. */
			if (header_rewrite_addresses(f->raw, cleanup_header_rewrite_cb, &ctx,
						     &rewritten) < 0)
				rewritten = NULL;
			if (ctx.error != NULL) {
				free(rewritten);
				free(message_id);
				header_block_deinit(&hb);
				*error_r = ctx.error;
				goto fail;
			}
		}
		er = rewritten != NULL ? cleanup_emit(p, o, env, rewritten, strlen(rewritten), out,
						      res, error_r)
				       : cleanup_emit(p, o, env, f->raw, f->raw_len, out, res, error_r);
		free(rewritten);
		if (er < 0) {
			free(message_id);
			header_block_deinit(&hb);
			goto fail;
		}
	}

	if (message_id == NULL && add_missing) {
		struct tm tm;
		time_t t = env->arrival;
		gmtime_r(&t, &tm);
		struct buf id = BUF_INIT;
		buf_printf(&id, "%04d%02d%02d%02d%02d%02d.%s@%s", tm.tm_year + 1900, tm.tm_mon + 1,
			   tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, env->queue_id, p->myhostname);
		buf_printf(out, "Message-Id: <%s>\n", buf_cstr(&id));
		message_id = buf_steal(&id);
		res->n_fields++;
	}
	if (!have_date && add_missing) {
		buf_append_str(out, "Date: ");
		cleanup_date_format(out, env->arrival);
		buf_append_char(out, '\n');
		res->n_fields++;
	}
	if (!have_from && add_missing) {
		/* Postfix cleanup: the envelope sender, MAILER-DAEMON for the
		 * null sender, with the full name of a local user as comment
		 * (the seeds' "From: chris@gw1.maison.mrs (Christian Caléca)"). */
		const char *sender = env->sender != NULL && env->sender[0] != '\0' ?
			env->sender : "MAILER-DAEMON";
		buf_printf(out, "From: %s", sender);
		if (o->type == CLEANUP_ORIGIN_LOCAL && env->sender != NULL &&
		    env->sender[0] != '\0' && o->full_name != NULL && o->full_name[0] != '\0') {
			buf_append_str(out, " (");
			cleanup_append_comment(out, o->full_name);
			buf_append_char(out, ')');
		}
		buf_append_char(out, '\n');
		res->n_fields++;
	}
	res->message_id = message_id != NULL ? message_id : xstrdup("");
	res->header_end = hb.header_end;
	header_block_deinit(&hb);
	return 0;
fail:
	/* Drop what this call appended. */
	if (out->data != NULL) {
		out->len = start_len;
		out->data[out->len] = '\0';
	}
	hdrcheck_result_clear(&res->verdict);
	return -1;
}
