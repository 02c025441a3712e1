/* cli_master.c - facteur start, stop, reload, status. */
#include "cli/cli.h"
#include "lib/log.h"
#include "mail/config.h"
#include "master/master.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int cli_start(struct cli_ctx *ctx, int argc, char **argv)
{
	bool foreground = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0) {
			foreground = true;
		} else {
			fprintf(stderr, "usage: facteur start [-f]\n");
			return 2;
		}
	}
	pid_t pid = master_running_pid(ctx->cfg);
	if (pid > 0) {
		fprintf(stderr, "facteur: already running (pid %ld)\n", (long)pid);
		return 1;
	}
	const char *logfile = config_get(ctx->cfg, "maillog_file");
	if (logfile != NULL && *logfile != '\0')
		log_init("master", LOG_DEST_FILE, logfile);
	else
		log_init("master", foreground ? LOG_DEST_STDERR : LOG_DEST_SYSLOG, NULL);
	struct master_opts opts = { ctx->config_dir, ctx->cfg, foreground };
	ctx->cfg = NULL; /* the master owns it now */
	return master_run(&opts);
}

static int cli_signal(struct cli_ctx *ctx, int sig, const char *what)
{
	pid_t pid = master_running_pid(ctx->cfg);
	if (pid == 0) {
		fprintf(stderr, "facteur: not running\n");
		return 1;
	}
	if (pid < 0) {
		fprintf(stderr, "facteur: cannot read the pid file: %s\n", strerror(errno));
		return 1;
	}
	if (kill(pid, sig) < 0) {
		fprintf(stderr, "facteur: %s pid %ld: %s\n", what, (long)pid, strerror(errno));
		return 1;
	}
	return 0;
}

int cli_stop(struct cli_ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	pid_t pid = master_running_pid(ctx->cfg);
	if (cli_signal(ctx, SIGTERM, "stop") != 0)
		return 1;
	/* Wait until the master has released its pid file lock. */
	for (int i = 0; i < 300; i++) {
		if (master_running_pid(ctx->cfg) == 0) {
			printf("facteur: stopped (pid %ld)\n", (long)pid);
			return 0;
		}
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "facteur: pid %ld did not stop within 30 seconds\n", (long)pid);
	return 1;
}

int cli_reload(struct cli_ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (cli_signal(ctx, SIGHUP, "reload") != 0)
		return 1;
	printf("facteur: reloading configuration %s\n", ctx->config_dir);
	return 0;
}

int cli_status(struct cli_ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	pid_t pid = master_running_pid(ctx->cfg);
	if (pid > 0) {
		printf("facteur: running (pid %ld), queue_directory %s\n", (long)pid,
		       config_get(ctx->cfg, "queue_directory"));
		return 0;
	}
	if (pid < 0) {
		fprintf(stderr, "facteur: cannot read the pid file: %s\n", strerror(errno));
		return 1;
	}
	printf("facteur: not running\n");
	return 3;
}
