/* cli_queue.c - `facteur queue`: list (mailq), flush, delete, hold,
 * release and show, reading queue files with qfile_read().
 *
 * Who may run these: root or mail_owner (the queue directories are 0700).
 * Ordinary users get a clear error; there is no setgid helper.
 *
 * Rules that keep the queue manager's view consistent:
 *   - a message in active/ belongs to the queue manager while facteur
 *     runs: delete and hold refuse it ("message is being delivered") and
 *     work on it only when facteur is stopped;
 *   - hold moves incoming/ or deferred/ to hold/ (rename, both directories
 *     fsync'd); if the queue manager took the message meanwhile the rename
 *     fails and we say so;
 *   - release moves hold/ to incoming/ and writes "I ID" to the queue
 *     manager's FIFO: the message is tried at once, like new mail (its
 *     queue file keeps every recipient already done);
 *   - flush writes "F" to the queue manager's FIFO: every deferred message
 *     is retried now, whatever its backoff.
 * Deletions are logged as Postfix's postsuper does:
 * "facteur/postsuper[PID]: QUEUEID: removed".
 */
#include "cli/cli.h"
#include "cli/cli_submit.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/config.h"
#include "mail/mail_log.h"
#include "mail/qfile.h"
#include "mail/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Directories listed by mailq, in Postfix's order. */
static const char *const queue_list_dirs[] = {
	QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD,
};
#define QUEUE_N_DIRS (sizeof(queue_list_dirs) / sizeof(queue_list_dirs[0]))

static int queue_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int queue_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("facteur: fatal: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

static const char *queue_dir_of(struct cli_ctx *ctx)
{
	const char *q = ctx->cfg != NULL ? config_get(ctx->cfg, "queue_directory") : NULL;
	return q != NULL && q[0] != '\0' ? q : "/var/spool/facteur";
}

/* Can we read the queue?  0, or -1 after printing why. */
static int queue_access_check(const char *qdir)
{
	struct buf p = BUF_INIT;
	int ret = 0;
	for (size_t i = 0; i < QUEUE_N_DIRS && ret == 0; i++) {
		buf_reset(&p);
		buf_printf(&p, "%s/%s", qdir, queue_list_dirs[i]);
		if (access(buf_cstr(&p), R_OK | W_OK | X_OK) < 0) {
			(void)queue_fail("cannot access the mail queue %s: %s (run this command as "
					 "root or as mail_owner)", buf_cstr(&p), strerror(errno));
			ret = -1;
		}
	}
	buf_deinit(&p);
	return ret;
}

/* Is the facteur master of this queue running?  Reads QDIR/pid/master.pid
 * (master.h: master_pid_path). */
static bool queue_master_running(const char *qdir)
{
	struct buf p = BUF_INIT, text = BUF_INIT;
	bool running = false;
	buf_printf(&p, "%s/pid/master.pid", qdir);
	if (fs_read_file(buf_cstr(&p), 64, &text) == 0) {
		struct strv v = strv_trim(strv_make(buf_cstr(&text), text.len));
		char *s = strv_dup(v);
		uint64_t pid;
		if (str_to_u64(s, 1, INT32_MAX, &pid) == 0)
			running = kill((pid_t)pid, 0) == 0 || errno == EPERM;
		free(s);
	}
	buf_deinit(&p);
	buf_deinit(&text);
	return running;
}

static void queue_log_init(struct cli_ctx *ctx)
{
	const char *file = ctx->cfg != NULL ? config_get(ctx->cfg, "maillog_file") : NULL;
	if (file != NULL && file[0] != '\0')
		log_init("postsuper", LOG_DEST_FILE, file);
	else
		log_init("postsuper", LOG_DEST_SYSLOG, NULL);
	if (ctx->cfg != NULL && config_get(ctx->cfg, "myhostname") != NULL)
		log_set_hostname(config_get(ctx->cfg, "myhostname"));
}

static int queue_msg_open(const char *qdir, const char *sub, const char *id,
			  struct qfile_msg **m_r, int *fd_r, const char **error_r)
{
	struct buf p = BUF_INIT;
	queue_path(&p, qdir, sub, id);
	int fd = open(buf_cstr(&p), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	buf_deinit(&p);
	if (fd < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	if (qfile_read(fd, m_r, error_r) < 0) {
		(void)close(fd);
		return -1;
	}
	if (fd_r != NULL)
		*fd_r = fd;
	else
		(void)close(fd);
	return 0;
}

struct queue_item {
	char id[QFILE_ID_MAX];
	const char *sub;
	struct qfile_msg *msg;
};

static int queue_item_cmp(const void *a, const void *b)
{
	const struct queue_item *x = a, *y = b;
	if (x->msg->arrival_sec != y->msg->arrival_sec)
		return x->msg->arrival_sec < y->msg->arrival_sec ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Collect the messages of the listed directories. */
static size_t queue_collect(const char *qdir, struct queue_item **items_r)
{
	struct queue_item *items = NULL;
	size_t n = 0;
	for (size_t i = 0; i < QUEUE_N_DIRS; i++) {
		char **ids = queue_dir_ids(qdir, queue_list_dirs[i]);
		for (size_t k = 0; ids[k] != NULL; k++) {
			struct qfile_msg *m = NULL;
			const char *error = NULL;
			/* A file moved or removed meanwhile is skipped. */
			if (queue_msg_open(qdir, queue_list_dirs[i], ids[k], &m, NULL, &error) < 0)
				continue;
			items = xreallocarray(items, n + 1, sizeof(*items));
			(void)str_copy(items[n].id, sizeof(items[n].id), ids[k]);
			items[n].sub = queue_list_dirs[i];
			items[n].msg = m;
			n++;
		}
		str_list_free(&ids);
	}
	if (n > 1)
		qsort(items, n, sizeof(*items), queue_item_cmp);
	*items_r = items;
	return n;
}

static void queue_items_free(struct queue_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		qfile_msg_free(&items[i].msg);
	free(items);
}

static int queue_cmd_list(const char *qdir)
{
	struct queue_item *items = NULL;
	size_t n = queue_collect(qdir, &items);
	struct buf out = BUF_INIT;
	uint64_t total = 0;
	if (n > 0)
		queue_list_header(&out);
	for (size_t i = 0; i < n; i++) {
		queue_list_entry(&out, items[i].msg, items[i].id, queue_list_mark(items[i].sub));
		total += items[i].msg->content_size;
	}
	queue_list_footer(&out, total, n);
	fwrite(out.data, 1, out.len, stdout);
	buf_deinit(&out);
	queue_items_free(items, n);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* The ids an operation applies to: the named ones (with their
 * directory), or every message of the given directories for ALL. */
struct queue_target {
	char id[QFILE_ID_MAX];
	const char *sub;
};

static size_t queue_targets(const char *qdir, int argc, char **argv, const char *const *dirs,
			    size_t n_dirs, struct queue_target **t_r, unsigned *n_missing_r)
{
	struct queue_target *t = NULL;
	size_t n = 0;
	*n_missing_r = 0;
	bool all = argc == 1 && strcmp(argv[0], "ALL") == 0;
	if (all) {
		for (size_t i = 0; i < n_dirs; i++) {
			char **ids = queue_dir_ids(qdir, dirs[i]);
			for (size_t k = 0; ids[k] != NULL; k++) {
				t = xreallocarray(t, n + 1, sizeof(*t));
				(void)str_copy(t[n].id, sizeof(t[n].id), ids[k]);
				t[n].sub = dirs[i];
				n++;
			}
			str_list_free(&ids);
		}
	} else {
		for (int i = 0; i < argc; i++) {
			const char *sub = queue_find(qdir, argv[i]);
			bool wanted = false;
			for (size_t k = 0; sub != NULL && k < n_dirs; k++)
				wanted = wanted || strcmp(sub, dirs[k]) == 0;
			if (!wanted) {
				fprintf(stderr, "facteur: warning: %s: no such message%s\n", argv[i],
					sub != NULL ? " in the queues this command applies to" : "");
				(*n_missing_r)++;
				continue;
			}
			t = xreallocarray(t, n + 1, sizeof(*t));
			(void)str_copy(t[n].id, sizeof(t[n].id), argv[i]);
			t[n].sub = sub;
			n++;
		}
	}
	*t_r = t;
	return n;
}

static const char *queue_plural(unsigned n)
{
	return n == 1 ? "message" : "messages";
}

static int queue_cmd_delete(struct cli_ctx *ctx, const char *qdir, int argc, char **argv)
{
	static const char *const dirs[] = { QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED,
					    QUEUE_HOLD, QUEUE_CORRUPT };
	struct queue_target *t = NULL;
	unsigned missing = 0, deleted = 0, busy = 0;
	bool running = queue_master_running(qdir);
	/* ALL never touches corrupt/: those files are kept for inspection. */
	size_t n_dirs = argc == 1 && strcmp(argv[0], "ALL") == 0 ? 4 : 5;
	size_t n = queue_targets(qdir, argc, argv, dirs, n_dirs, &t, &missing);
	struct buf p = BUF_INIT, line = BUF_INIT;

	queue_log_init(ctx);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(t[i].sub, QUEUE_ACTIVE) == 0 && running) {
			fprintf(stderr, "facteur: warning: %s: message is being delivered; try again "
				"later, or stop facteur first\n", t[i].id);
			busy++;
			continue;
		}
		queue_path(&p, qdir, t[i].sub, t[i].id);
		if (unlink(buf_cstr(&p)) < 0) {
			if (errno != ENOENT)
				fprintf(stderr, "facteur: warning: remove %s: %s\n", buf_cstr(&p),
					strerror(errno));
			else
				busy++;
			continue;
		}
		(void)fs_fsync_parent(buf_cstr(&p));
		buf_reset(&line);
		mail_log_removed(&line, t[i].id);
		log_info("%s", buf_cstr(&line));
		deleted++;
	}
	printf("facteur: Deleted: %u %s\n", deleted, queue_plural(deleted));
	free(t);
	buf_deinit(&p);
	buf_deinit(&line);
	return missing > 0 || busy > 0 ? 1 : 0;
}

static int queue_cmd_hold(const char *qdir, int argc, char **argv)
{
	static const char *const dirs[] = { QUEUE_INCOMING, QUEUE_DEFERRED, QUEUE_ACTIVE };
	struct queue_target *t = NULL;
	unsigned missing = 0, held = 0, busy = 0;
	bool running = queue_master_running(qdir);
	size_t n = queue_targets(qdir, argc, argv, dirs, 3, &t, &missing);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(t[i].sub, QUEUE_ACTIVE) == 0 && running) {
			fprintf(stderr, "facteur: warning: %s: message is being delivered; try again "
				"later, or stop facteur first\n", t[i].id);
			busy++;
			continue;
		}
		if (queue_move(qdir, t[i].id, t[i].sub, QUEUE_HOLD) < 0) {
			fprintf(stderr, "facteur: warning: %s: cannot put on hold: %s\n", t[i].id,
				errno == ENOENT ? "message is being delivered" : strerror(errno));
			busy++;
			continue;
		}
		held++;
	}
	printf("facteur: Placed on hold: %u %s\n", held, queue_plural(held));
	free(t);
	return missing > 0 || busy > 0 ? 1 : 0;
}

static int queue_cmd_release(const char *qdir, int argc, char **argv)
{
	static const char *const dirs[] = { QUEUE_HOLD };
	struct queue_target *t = NULL;
	unsigned missing = 0, released = 0, failed = 0;
	size_t n = queue_targets(qdir, argc, argv, dirs, 1, &t, &missing);
	struct buf line = BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		if (queue_move(qdir, t[i].id, QUEUE_HOLD, QUEUE_INCOMING) < 0) {
			fprintf(stderr, "facteur: warning: %s: cannot release: %s\n", t[i].id,
				strerror(errno));
			failed++;
			continue;
		}
		buf_reset(&line);
		buf_printf(&line, "I %s\n", t[i].id);
		(void)queue_notify(qdir, "qmgr", buf_cstr(&line));
		released++;
	}
	printf("facteur: Released from hold: %u %s\n", released, queue_plural(released));
	free(t);
	buf_deinit(&line);
	return missing > 0 || failed > 0 ? 1 : 0;
}

static int queue_show_content(void *ctx, const uint8_t *data, size_t len)
{
	(void)ctx;
	return fwrite(data, 1, len, stdout) == len ? 0 : -1;
}

static void queue_show_time(const char *label, int64_t sec)
{
	char when[64];
	struct tm tm;
	time_t t = (time_t)sec;
	if (localtime_r(&t, &tm) != NULL &&
	    strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm) > 0)
		printf("%s: %s\n", label, when);
}

/* Like postcat -q: the envelope records, then the message. */
static int queue_cmd_show(const char *qdir, const char *id)
{
	const char *sub = queue_find(qdir, id);
	if (sub == NULL)
		return queue_fail("%s: no such message", id);
	struct qfile_msg *m = NULL;
	const char *error = NULL;
	int fd = -1;
	if (queue_msg_open(qdir, sub, id, &m, &fd, &error) < 0)
		return queue_fail("%s/%s: %s", sub, id, error != NULL ? error : "cannot read");
	printf("*** ENVELOPE RECORDS %s/%s ***\n", sub, id);
	printf("message_size: %" PRIu64 "\n", m->content_size);
	queue_show_time("message_arrival_time", m->arrival_sec);
	for (size_t i = 0; i < m->n_attrs; i++)
		printf("named_attribute: %s=%s\n", m->attrs[i].name, m->attrs[i].value);
	printf("sender: %s\n", m->sender != NULL ? m->sender : "");
	for (size_t i = 0; i < m->n_rcpts; i++) {
		const struct qfile_rcpt *r = &m->rcpts[i];
		if (r->orig_to != NULL && r->orig_to[0] != '\0')
			printf("original_recipient: %s\n", r->orig_to);
		if (r->notify != NULL)
			printf("dsn_notify: %s\n", r->notify);
		printf("recipient: %s", r->address);
		if (r->status != QRCPT_PENDING)
			printf(" (%s%s%s%s%s)", qfile_rcpt_status_name(r->status),
			       r->dsn != NULL ? " " : "", r->dsn != NULL ? r->dsn : "",
			       r->reason != NULL ? ": " : "", r->reason != NULL ? r->reason : "");
		printf("\n");
	}
	if (m->attempts > 0) {
		printf("delivery_attempts: %u\n", m->attempts);
		queue_show_time("next_attempt_time", m->next_attempt);
		if (m->defer_reason != NULL)
			printf("defer_reason: %s\n", m->defer_reason);
	}
	printf("*** MESSAGE CONTENTS %s/%s ***\n", sub, id);
	(void)fflush(stdout);
	int ret = 0;
	if (qfile_content_read(fd, m, queue_show_content, NULL, &error) < 0) {
		ret = 1;
		if (error != NULL)
			fprintf(stderr, "facteur: warning: %s/%s: %s\n", sub, id, error);
	}
	printf("*** MESSAGE FILE END %s/%s ***\n", sub, id);
	(void)close(fd);
	qfile_msg_free(&m);
	return fflush(stdout) == 0 ? ret : 1;
}

static int queue_cmd_flush(const char *qdir)
{
	if (!queue_master_running(qdir))
		return queue_fail("Cannot flush mail queue - mail system is down");
	if (queue_notify(qdir, "qmgr", "F\n") < 0)
		return queue_fail("cannot wake up the queue manager: %s", strerror(errno));
	return 0;
}

static int queue_usage(void)
{
	fprintf(stderr, "usage: facteur queue [list]\n"
			"       facteur queue flush\n"
			"       facteur queue delete ID...|ALL\n"
			"       facteur queue hold ID...|ALL\n"
			"       facteur queue release ID...|ALL\n"
			"       facteur queue show ID\n");
	return 2;
}

int cli_queue(struct cli_ctx *ctx, int argc, char **argv)
{
	if (ctx->cfg == NULL && cli_load_config(ctx, true) < 0)
		return 1;
	const char *qdir = queue_dir_of(ctx);
	const char *cmd = argc >= 2 ? argv[1] : "list";
	int nargs = argc >= 2 ? argc - 2 : 0;
	char **args = argv + (argc >= 2 ? 2 : argc);

	if (strcmp(cmd, "list") == 0 || strcmp(cmd, "-p") == 0) {
		if (nargs != 0)
			return queue_usage();
		if (queue_access_check(qdir) < 0)
			return 1;
		return queue_cmd_list(qdir);
	}
	if (strcmp(cmd, "flush") == 0 || strcmp(cmd, "-f") == 0) {
		if (nargs != 0)
			return queue_usage();
		return queue_cmd_flush(qdir);
	}
	if (strcmp(cmd, "delete") == 0 || strcmp(cmd, "hold") == 0 ||
	    strcmp(cmd, "release") == 0 || strcmp(cmd, "show") == 0) {
		if (nargs < 1 || (strcmp(cmd, "show") == 0 && nargs != 1))
			return queue_usage();
		if (queue_access_check(qdir) < 0)
			return 1;
		if (strcmp(cmd, "show") == 0)
			return queue_cmd_show(qdir, args[0]);
		if (strcmp(cmd, "delete") == 0)
			return queue_cmd_delete(ctx, qdir, nargs, args);
		if (strcmp(cmd, "hold") == 0)
			return queue_cmd_hold(qdir, nargs, args);
		return queue_cmd_release(qdir, nargs, args);
	}
	return queue_usage();
}
