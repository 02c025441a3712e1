/* qmgr.c - qmgr_main: the queue manager process (forked by the master,
 * already unprivileged).
 *
 * Reads its parameters from main.cf, opens the wake-up FIFO
 * QDIR/public/qmgr read-write and non-blocking (a reader that is also a
 * writer never sees EOF when the last client closes), recovers what a
 * previous run left in active/, then runs the libevent loop:
 *   FIFO lines  "I QUEUEID" new message in incoming/; "F" flush: every
 *               deferred message now; "D" scan deferred/ for due messages.
 *   1 s tick    scan incoming/ (a lost wake-up never strands mail)
 *   queue_run_delay tick   scan deferred/ and look for orphans in active/
 *   SIGTERM     stop now: in-flight deliveries are redone at the next
 *               start (at-least-once); SIGINT the same.
 *   SIGHUP      take no new message, finish the active ones, exit.
 */
#include "qmgr/qmgr.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "mail/config.h"
#include "mail/dlv.h"
#include "mail/queue.h"
#include "mail/role.h"
#include "mail/route.h"
#include "mail/smtp_proto.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define QMGR_FIFO_LINE_MAX 64

struct qmgr_fifo {
	struct qmgr *q;
	int fd;
	struct buf line;
	bool is_skipping; /* discarding an over-long line */
};

/* Apply one wake-up line (without its newline). */
void qmgr_fifo_line(struct qmgr *q, const char *line)
{
	if (line[0] == 'I' && line[1] == ' ' && queue_id_valid(line + 2)) {
		qmgr_scan_want(q, true, false);
	} else if (strcmp(line, "F") == 0) {
		qmgr_scan_flush(q);
	} else if (strcmp(line, "D") == 0) {
		qmgr_scan_want(q, false, true);
	} else {
		struct buf safe = BUF_INIT;
		for (const unsigned char *p = (const unsigned char *)line; *p != '\0'; p++)
			buf_append_char(&safe, (*p < 0x20 || *p >= 0x7f) ? '?' : (char)*p);
		log_warning("ignoring unknown wake-up request \"%s\"", buf_cstr(&safe));
		buf_deinit(&safe);
	}
}

static void on_fifo(evutil_socket_t fd, short what, void *ctx)
{
	struct qmgr_fifo *f = ctx;
	char data[512];
	(void)what;
	for (;;) {
		ssize_t n = read(fd, data, sizeof(data));
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warning("read %s/public/qmgr: %s", f->q->s.queue_dir,
					    strerror(errno));
			return;
		}
		if (n == 0)
			return;
		for (ssize_t i = 0; i < n; i++) {
			char c = data[i];
			if (c == '\n') {
				if (!f->is_skipping)
					qmgr_fifo_line(f->q, buf_cstr(&f->line));
				f->is_skipping = false;
				buf_reset(&f->line);
			} else if (!f->is_skipping) {
				if (f->line.len >= QMGR_FIFO_LINE_MAX || c == '\0') {
					log_warning("ignoring over-long or binary wake-up request");
					f->is_skipping = true;
					buf_reset(&f->line);
				} else {
					buf_append_char(&f->line, c);
				}
			}
		}
	}
}

static void on_incoming_tick(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd;
	(void)what;
	qmgr_scan_want(ctx, true, false);
}

static void on_deferred_tick(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd;
	(void)what;
	qmgr_scan_periodic(ctx);
}

static void on_sigterm(evutil_socket_t sig, short what, void *ctx)
{
	struct qmgr *q = ctx;
	(void)what;
	log_info("stopping on signal %d", (int)sig);
	event_base_loopbreak(q->base);
}

static void on_sighup(evutil_socket_t sig, short what, void *ctx)
{
	struct qmgr *q = ctx;
	(void)sig;
	(void)what;
	if (q->is_draining)
		return;
	log_info("reload: finishing %u active message%s, taking no new one", q->n_active,
		 q->n_active == 1 ? "" : "s");
	q->is_draining = true;
	if (q->n_active == 0)
		event_base_loopexit(q->base, NULL);
}

static unsigned cfg_count(struct config *cfg, const char *name)
{
	long v = config_get_int(cfg, name);
	if (v < 1)
		return 1;
	return v > (long)UINT_MAX ? UINT_MAX : (unsigned)v;
}

int qmgr_main(const struct role_env *env)
{
	struct config *cfg = env->cfg;
	struct qmgr_settings s;
	const char *error;

	log_set_role("qmgr");
	if (role_drop_privileges(env, &error) < 0)
		log_fatal("drop privileges: %s: %s", error, strerror(errno));
	(void)signal(SIGPIPE, SIG_IGN);

	memset(&s, 0, sizeof(s));
	s.queue_dir = env->queue_dir;
	s.mydestination = config_get_list(cfg, "mydestination");
	s.virtual_mailbox_domains = config_get_list(cfg, "virtual_mailbox_domains");
	s.message_active_limit = cfg_count(cfg, "qmgr_message_active_limit");
	s.process_limit = cfg_count(cfg, "default_process_limit");
	s.local_concurrency = cfg_count(cfg, "local_destination_concurrency_limit");
	s.virtual_concurrency = cfg_count(cfg, "default_destination_concurrency_limit");
	s.smtp_concurrency = cfg_count(cfg, "smtp_destination_concurrency_limit");
	s.smtp_rcpt_limit = cfg_count(cfg, "smtp_destination_recipient_limit");
	if (s.smtp_rcpt_limit > SMTP_PROTO_MAX_RCPTS)
		s.smtp_rcpt_limit = SMTP_PROTO_MAX_RCPTS;
	s.queue_run_delay = config_get_time(cfg, "queue_run_delay");
	s.minimal_backoff_time = config_get_time(cfg, "minimal_backoff_time");
	s.maximal_backoff_time = config_get_time(cfg, "maximal_backoff_time");
	s.maximal_queue_lifetime = config_get_time(cfg, "maximal_queue_lifetime");
	s.bounce_queue_lifetime = config_get_time(cfg, "bounce_queue_lifetime");
	qmgr_message_settings(&s, cfg);
	if (s.queue_run_delay < 1)
		s.queue_run_delay = 1;

	struct event_base *base = event_base_new();
	if (base == NULL)
		log_fatal("event_base_new failed");
	struct buf sock = BUF_INIT, fifo_path = BUF_INIT;
	buf_printf(&sock, "%s/%s", env->queue_dir, DLV_SOCKET_NAME);
	buf_printf(&fifo_path, "%s/public/qmgr", env->queue_dir);
	struct qmgr *q = qmgr_new(&s, base, buf_cstr(&sock));
	/* Routing (route.h) and the SMTP client's socket. */
	q->route = route_new(cfg, &error);
	if (q->route == NULL)
		log_fatal("routing tables: %s", error);
	buf_reset(&sock);
	buf_printf(&sock, "%s/%s", env->queue_dir, SMTP_PROTO_SOCKET_NAME);
	q->smtp = qmgr_smtp_new(q, buf_cstr(&sock));

	struct qmgr_fifo fifo = { q, -1, BUF_INIT, false };
	fifo.fd = open(buf_cstr(&fifo_path), O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fifo.fd < 0)
		log_fatal("open %s: %s", buf_cstr(&fifo_path), strerror(errno));
	struct event *ev_fifo = event_new(base, fifo.fd, EV_READ | EV_PERSIST, on_fifo, &fifo);
	struct event *ev_in = event_new(base, -1, EV_PERSIST, on_incoming_tick, q);
	struct event *ev_def = event_new(base, -1, EV_PERSIST, on_deferred_tick, q);
	struct event *ev_term = evsignal_new(base, SIGTERM, on_sigterm, q);
	struct event *ev_int = evsignal_new(base, SIGINT, on_sigterm, q);
	struct event *ev_hup = evsignal_new(base, SIGHUP, on_sighup, q);
	if (ev_fifo == NULL || ev_in == NULL || ev_def == NULL || ev_term == NULL ||
	    ev_int == NULL || ev_hup == NULL)
		log_fatal("event_new failed");
	struct timeval one = { 1, 0 }, run = { s.queue_run_delay, 0 };
	event_add(ev_fifo, NULL);
	event_add(ev_in, &one);
	event_add(ev_def, &run);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	event_add(ev_hup, NULL);

	qmgr_scan_recover(q);
	(void)event_base_dispatch(base);

	/* Whatever is still active stays in active/ and is taken again at
	 * the next start. */
	event_free(ev_fifo);
	event_free(ev_in);
	event_free(ev_def);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	(void)close(fifo.fd);
	buf_deinit(&fifo.line);
	qmgr_smtp_free(&q->smtp);
	route_free(&q->route);
	qmgr_free(&q);
	event_base_free(base);
	buf_deinit(&sock);
	buf_deinit(&fifo_path);
	return 0;
}
