/* smtpd.c - the SMTP server role: smtpd_main() (mail/role.h) runs one
 * event-driven process serving every session on the listening sockets the
 * master bound for it.
 *
 * Called by the master in a forked child.  Reads a snapshot of the
 * configuration (struct smtpd_conf) once, drops privileges, then runs the
 * libevent loop:
 *   - each listener fd gets an evconnlistener; accepted sockets become
 *     sessions (smtpd_session.c), subject to smtpd_max_sessions and
 *     smtpd_client_connection_count_limit;
 *   - SIGTERM/SIGINT: close listeners and every session at once, exit 0;
 *   - SIGHUP: close listeners (the master has started a successor), let
 *     current sessions finish, exit 0 when none is left.
 */
#include "smtpd/smtpd_int.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/workq.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/config.h"
#include "mail/role.h"
#include "mail/route.h"
#include "mail/table.h"
#include "mail/tls.h"

/* ---- configuration snapshot ---- */

static int map_lookup_cb(void *ctx, const char *key, char **value_r)
{
	const char *error = NULL;
	int r = table_list_lookup(ctx, key, value_r, &error);
	if (r < 0)
		log_warning("table lookup of \"%s\": %s", key, error != NULL ? error : "error");
	return r;
}

static void conf_map(struct cleanup_map *m, struct table_list *l)
{
	m->lookup = l != NULL ? map_lookup_cb : NULL;
	m->ctx = l;
}

void smtpd_conf_wire_cleanup(struct smtpd_conf *c)
{
	struct cleanup_params *p = &c->cleanup;
	memset(p, 0, sizeof(*p));
	p->myhostname = c->myhostname;
	p->myorigin = c->myorigin;
	p->mydomain = c->mydomain;
	p->local_domains = c->mydestination;
	conf_map(&p->canonical_maps, c->canonical_maps);
	conf_map(&p->sender_canonical_maps, c->sender_canonical_maps);
	conf_map(&p->recipient_canonical_maps, c->recipient_canonical_maps);
	conf_map(&p->virtual_alias_maps, c->virtual_alias_maps);
	p->header_size_limit = c->header_size_limit;
	p->rewrite_remote_headers = false;
	p->always_add_missing_headers = false;
	p->remove_bcc = true;
	p->mail_name = c->mail_name;
	p->header_checks = c->header_checks;
}

/* Open a *_maps parameter; an empty value gives NULL.  A table that cannot
 * be opened is logged and *broken set: its lookups fail temporarily. */
static struct table_list *conf_tables(struct config *cfg, const char *name, bool *broken)
{
	const char *spec = config_get(cfg, name);
	const char *error = NULL;

	if (broken != NULL)
		*broken = false;
	if (spec == NULL || strv_trim(strv_from_cstr(spec)).len == 0)
		return NULL;
	struct table_list *l = table_list_open(spec, &error);
	if (l == NULL) {
		log_warning("%s = %s: %s", name, spec, error != NULL ? error : "cannot open");
		if (broken != NULL)
			*broken = true;
	}
	return l;
}

static char **conf_list(struct config *cfg, const char *name)
{
	char **items = NULL;
	const char *v = config_get(cfg, name);
	(void)str_list_split(v != NULL ? v : "", &items);
	return items;
}

static unsigned conf_uint(struct config *cfg, const char *name)
{
	long v = config_get_int(cfg, name);
	return v < 0 ? 0 : (unsigned)v;
}

/* TLS for STARTTLS: smtpd_tls_security_level none/may/encrypt; empty
 * (Postfix's default, "none") becomes "may" when a certificate is
 * configured: facteur offers STARTTLS whenever it can.  Run before the
 * privileges are dropped (the key is readable by root only).  0, or -1
 * with *error_r (encrypt without a usable certificate). */
int smtpd_conf_tls(struct smtpd_conf *c, struct config *cfg, const char **error_r)
{
	const char *level = config_get(cfg, "smtpd_tls_security_level");
	const char *cert = config_get(cfg, "smtpd_tls_cert_file");
	const char *key = config_get(cfg, "smtpd_tls_key_file");
	if (key == NULL || key[0] == '\0')
		key = cert; /* Postfix: smtpd_tls_key_file = $smtpd_tls_cert_file */
	bool have_cert = cert != NULL && cert[0] != '\0';
	if (level == NULL || level[0] == '\0')
		level = have_cert ? "may" : "none";
	c->tls_required = strcmp(level, "encrypt") == 0;
	if (strcmp(level, "none") == 0)
		return 0;
	if (!have_cert) {
		*error_r = "smtpd_tls_security_level = encrypt needs smtpd_tls_cert_file";
		return -1;
	}
	const char *terr = NULL;
	c->tls_ctx = tls_server_ctx_new(cert, key, &terr);
	if (c->tls_ctx == NULL) {
		if (c->tls_required) {
			*error_r = terr;
			return -1;
		}
		log_warning("%s; STARTTLS disabled", terr);
	}
	return 0;
}

int smtpd_conf_load(struct smtpd_conf *c, struct config *cfg, const char **error_r)
{
	const char *error = NULL;

	memset(c, 0, sizeof(*c));
	c->myhostname = xstrdup(config_get(cfg, "myhostname"));
	c->mydomain = xstrdup(config_get(cfg, "mydomain"));
	c->myorigin = xstrdup(config_get(cfg, "myorigin"));
	c->mail_name = xstrdup(config_get(cfg, "mail_name"));
	c->banner = xstrdup(config_get(cfg, "smtpd_banner"));
	c->message_size_limit = config_get_size(cfg, "message_size_limit");
	c->line_length_limit = conf_uint(cfg, "line_length_limit");
	c->header_size_limit = conf_uint(cfg, "header_size_limit");
	c->disable_vrfy = config_get_bool(cfg, "disable_vrfy_command");
	c->helo_required = config_get_bool(cfg, "smtpd_helo_required");
	/* Postfix's smtpd_peername_lookup (not in facteur's table yet: read
	 * as text when set). */
	const char *pl = config_get(cfg, "smtpd_peername_lookup");
	c->peername_lookup = pl == NULL || pl[0] == '\0' ||
			     !(str_casecmp(pl, "no") == 0 || str_casecmp(pl, "false") == 0);
	c->timeout_sec = config_get_time(cfg, "smtpd_timeout");
	c->error_sleep_sec = config_get_time(cfg, "smtpd_error_sleep_time");
	c->max_sessions = conf_uint(cfg, "smtpd_max_sessions");
	c->client_connection_count_limit = conf_uint(cfg, "smtpd_client_connection_count_limit");
	c->soft_error_limit = conf_uint(cfg, "smtpd_soft_error_limit");
	c->hard_error_limit = conf_uint(cfg, "smtpd_hard_error_limit");
	c->recipient_limit = conf_uint(cfg, "smtpd_recipient_limit");
	c->unknown_local_reject_code = conf_uint(cfg, "unknown_local_recipient_reject_code");
	/* Postfix >= 2.10 default smtpd_relay_restrictions ends with
	 * defer_unauth_destination (454); reject_unauth_destination gives
	 * 554.  Other restrictions are not implemented: relaying is only
	 * ever permitted to mynetworks. */
	c->relay_reject_code = 554;
	char **rr = conf_list(cfg, "smtpd_relay_restrictions");
	bool defer = false, reject = false;
	for (size_t i = 0; rr[i] != NULL; i++) {
		defer = defer || str_casecmp(rr[i], "defer_unauth_destination") == 0;
		reject = reject || str_casecmp(rr[i], "reject_unauth_destination") == 0;
	}
	str_list_free(&rr);
	if (defer && !reject)
		c->relay_reject_code = 454;
	c->mydestination = conf_list(cfg, "mydestination");
	c->virtual_mailbox_domains = conf_list(cfg, "virtual_mailbox_domains");
	c->relay_domains = conf_list(cfg, "relay_domains");
	const char *route_error = NULL;
	c->route = route_new(cfg, &route_error);
	if (c->route == NULL)
		log_warning("routing tables: %s; relay_domains matched exactly",
			    route_error != NULL ? route_error : "error");
	(void)smtpd_nets_parse(&c->mynetworks, config_get(cfg, "mynetworks"), &error);
	const char *delim = config_get(cfg, "recipient_delimiter");
	c->recipient_delimiter = xstrdup(delim != NULL ? delim : "");

	/* dns_servers "addr[:port]" list -> c-ares CSV. */
	char **ds = conf_list(cfg, "dns_servers");
	struct buf csv = BUF_INIT;
	for (size_t i = 0; ds[i] != NULL; i++)
		buf_printf(&csv, "%s%s", i > 0 ? "," : "", ds[i]);
	str_list_free(&ds);
	c->dns_servers = csv.len > 0 ? buf_steal(&csv) : NULL;
	buf_deinit(&csv);

	c->alias_maps = conf_tables(cfg, "alias_maps", &c->alias_maps_broken);
	c->local_recipient_maps =
		conf_tables(cfg, "local_recipient_maps", &c->local_recipient_maps_broken);
	c->reject_unlisted_recipient = config_get_bool(cfg, "smtpd_reject_unlisted_recipient");
	c->virtual_mailbox_maps =
		conf_tables(cfg, "virtual_mailbox_maps", &c->virtual_mailbox_maps_broken);
	c->virtual_alias_maps = conf_tables(cfg, "virtual_alias_maps", NULL);
	bool hc_broken = false, bc_broken = false;
	c->header_checks = conf_tables(cfg, "header_checks", &hc_broken);
	c->body_checks = conf_tables(cfg, "body_checks", &bc_broken);
	c->content_checks_broken = hc_broken || bc_broken;
	c->body_checks_size_limit = config_get_size(cfg, "body_checks_size_limit");
	c->canonical_maps = conf_tables(cfg, "canonical_maps", NULL);
	c->sender_canonical_maps = conf_tables(cfg, "sender_canonical_maps", NULL);
	c->recipient_canonical_maps = conf_tables(cfg, "recipient_canonical_maps", NULL);
	c->relay_recipient_maps = conf_tables(cfg, "relay_recipient_maps", NULL);
	c->relocated_maps = conf_tables(cfg, "relocated_maps", &c->relocated_maps_broken);
	if (c->line_length_limit == 0 || c->hard_error_limit == 0 || c->max_sessions == 0) {
		*error_r = "line_length_limit, smtpd_hard_error_limit and smtpd_max_sessions must be positive";
		return -1;
	}
	smtpd_conf_wire_cleanup(c);
	return 0;
}

void smtpd_conf_deinit(struct smtpd_conf *c)
{
	free(c->myhostname);
	free(c->mydomain);
	free(c->myorigin);
	free(c->mail_name);
	free(c->banner);
	free(c->recipient_delimiter);
	free(c->dns_servers);
	if (c->mydestination != NULL)
		str_list_free(&c->mydestination);
	if (c->virtual_mailbox_domains != NULL)
		str_list_free(&c->virtual_mailbox_domains);
	if (c->relay_domains != NULL)
		str_list_free(&c->relay_domains);
	route_free(&c->route);
	smtpd_nets_deinit(&c->mynetworks);
	table_list_free(&c->alias_maps);
	table_list_free(&c->local_recipient_maps);
	table_list_free(&c->virtual_mailbox_maps);
	table_list_free(&c->virtual_alias_maps);
	table_list_free(&c->header_checks);
	tls_ctx_free(&c->tls_ctx);
	table_list_free(&c->body_checks);
	table_list_free(&c->canonical_maps);
	table_list_free(&c->sender_canonical_maps);
	table_list_free(&c->recipient_canonical_maps);
	table_list_free(&c->relay_recipient_maps);
	table_list_free(&c->relocated_maps);
	memset(c, 0, sizeof(*c));
}

/* ---- server ---- */

static void server_close_listeners(struct smtpd_server *srv)
{
	for (size_t i = 0; i < srv->n_listeners; i++)
		if (srv->listeners[i] != NULL) {
			evconnlistener_free(srv->listeners[i]);
			srv->listeners[i] = NULL;
		}
}

void smtpd_server_session_ended(struct smtpd_server *srv)
{
	if (srv->draining && srv->n_sessions == 0)
		event_base_loopbreak(srv->base);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct smtpd_listen_ctx *lc = arg;
	(void)l;
	smtpd_session_start(lc->srv, fd, lc->implicit_tls, sa, (socklen_t)salen);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	/* EMFILE and friends: logged, the listener keeps going. */
	log_warning("accept: %s", strerror(errno));
}

static void sigterm_cb(evutil_socket_t sig, short what, void *arg)
{
	struct smtpd_server *srv = arg;
	(void)what;
	log_info("stopping on signal %d", (int)sig);
	server_close_listeners(srv);
	smtpd_sessions_close_all(srv);
	event_base_loopbreak(srv->base);
}

static void sighup_cb(evutil_socket_t sig, short what, void *arg)
{
	struct smtpd_server *srv = arg;
	(void)sig;
	(void)what;
	server_close_listeners(srv);
	srv->draining = true;
	if (srv->n_sessions == 0)
		event_base_loopbreak(srv->base);
}

int smtpd_main(const struct role_env *env)
{
	struct smtpd_conf conf;
	struct smtpd_server srv;
	const char *error = NULL;
	int status = 0;

	log_set_role("smtpd");
	signal(SIGPIPE, SIG_IGN);
	struct smtpd_conf tls;
	memset(&tls, 0, sizeof(tls));
	if (smtpd_conf_tls(&tls, env->cfg, &error) < 0) {
		log_error("configuration: %s", error);
		return 1;
	}
	if (role_drop_privileges(env, &error) < 0) {
		log_error("cannot drop privileges: %s: %s", error, strerror(errno));
		tls_ctx_free(&tls.tls_ctx);
		return 1;
	}
	if (smtpd_conf_load(&conf, env->cfg, &error) < 0) {
		log_error("configuration: %s", error);
		tls_ctx_free(&tls.tls_ctx);
		smtpd_conf_deinit(&conf);
		return 1;
	}
	conf.tls_ctx = tls.tls_ctx;
	conf.tls_required = tls.tls_required;
	memset(&srv, 0, sizeof(srv));
	srv.base = event_base_new();
	if (srv.base == NULL) {
		log_error("event_base_new failed");
		smtpd_conf_deinit(&conf);
		return 1;
	}
	srv.conf = &conf;
	srv.commitq = workq_new(srv.base, SMTPD_COMMIT_THREADS);
	if (srv.commitq == NULL) {
		log_error("cannot start the commit threads: %s", strerror(errno));
		return 1;
	}
	srv.queue_dir = env->queue_dir;
	if (conf.peername_lookup) {
		srv.dns = smtpd_dns_new(srv.base, conf.dns_servers, &error);
		if (srv.dns == NULL)
			log_warning("client name lookups disabled: %s", error);
	}
	srv.listeners = xcalloc(env->n_listeners + 1, sizeof(*srv.listeners));
	srv.listen_ctx = xcalloc(env->n_listeners + 1, sizeof(*srv.listen_ctx));
	srv.n_listeners = env->n_listeners;
	for (size_t i = 0; i < env->n_listeners; i++) {
		srv.listen_ctx[i].srv = &srv;
		srv.listen_ctx[i].implicit_tls = env->listeners[i].service == ROLE_SVC_SMTPS;
		if (srv.listen_ctx[i].implicit_tls && conf.tls_ctx == NULL) {
			/* Serving cleartext where clients expect TLS would
			 * only confuse them. */
			log_warning("smtps_listen %s: no usable TLS certificate "
				    "(smtpd_tls_cert_file); not listening", env->listeners[i].address);
			(void)close(env->listeners[i].fd);
			continue;
		}
		evutil_make_socket_nonblocking(env->listeners[i].fd);
		/* The fd is already bound and listening (backlog set by the
		 * master): backlog -1 leaves it as is. */
		srv.listeners[i] = evconnlistener_new(srv.base, accept_cb, &srv.listen_ctx[i],
						      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
						      -1, env->listeners[i].fd);
		if (srv.listeners[i] == NULL) {
			log_error("listener %s: cannot watch", env->listeners[i].address);
			status = 1;
			continue;
		}
		evconnlistener_set_error_cb(srv.listeners[i], accept_error_cb);
	}
	struct event *ev_term = evsignal_new(srv.base, SIGTERM, sigterm_cb, &srv);
	struct event *ev_int = evsignal_new(srv.base, SIGINT, sigterm_cb, &srv);
	struct event *ev_hup = evsignal_new(srv.base, SIGHUP, sighup_cb, &srv);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	event_add(ev_hup, NULL);

	if (status == 0)
		event_base_dispatch(srv.base);

	server_close_listeners(&srv);
	smtpd_sessions_close_all(&srv);
	/* Commits in flight complete (their messages are queued). */
	workq_free(&srv.commitq);
	smtpd_dns_free(&srv.dns);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	free(srv.listeners);
	free(srv.listen_ctx);
	event_base_free(srv.base);
	smtpd_conf_deinit(&conf);
	return status;
}
