/* cli.c - argument dispatch for the facteur program.
 *
 * facteur [-c DIR] COMMAND [ARGS]; invoked as "sendmail", "mailq" or
 * "newaliases" (symbolic links) it behaves as those commands, which take
 * the configuration directory from $FACTEUR_CONFIG or -C DIR like
 * Postfix's sendmail (-C). */
#include "cli/cli.h"
#include "lib/log.h"
#include "mail/config.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct cli_command {
	const char *name;
	int (*fn)(struct cli_ctx *ctx, int argc, char **argv);
	bool needs_config;
	const char *help;
} cli_commands[] = {
	{ "start", cli_start, true, "start [-f]          start all services (-f: foreground, log to stderr)" },
	{ "stop", cli_stop, true, "stop                stop the running instance" },
	{ "reload", cli_reload, true, "reload              re-read the configuration without dropping sessions" },
	{ "status", cli_status, true, "status              report whether the instance runs" },
	{ "check", cli_check, false, "check               validate the configuration (file:line: message)" },
	{ "queue", cli_queue, true, "queue [list|flush|delete ID|ALL|hold ID|release ID|show ID]" },
	{ "map", cli_map, true, "map [type:]FILE | map -q KEY type:FILE   compile or query a lookup table" },
	{ "aliases", cli_aliases, true, "aliases             compile the alias database (newaliases)" },
	{ "sendmail", cli_sendmail, true, "sendmail [options] [recipients]   local submission" },
	{ "pw", cli_pw, false, "pw [-s SCHEME]      hash a password for auth_passwd_file" },
};

static void cli_usage(FILE *out)
{
	fprintf(out, "usage: facteur [-c DIR] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(cli_commands) / sizeof(cli_commands[0]); i++)
		fprintf(out, "  %s\n", cli_commands[i].help);
	fprintf(out, "  version             print the version\n");
	fprintf(out, "\nThe configuration directory is -c DIR, else $FACTEUR_CONFIG, else /etc/facteur.\n");
}

int cli_load_config(struct cli_ctx *ctx, bool quiet)
{
	struct config_diags diags;
	config_diags_init(&diags);
	ctx->cfg = config_new();
	int ret = config_load(ctx->cfg, ctx->config_dir, &diags);
	if (ret == 0)
		ret = config_check(ctx->cfg, &diags);
	if (!quiet || diags.n_errors > 0) {
		for (size_t i = 0; i < diags.count; i++) {
			struct config_diag *d = &diags.items[i];
			if (quiet && !d->is_error)
				continue;
			if (d->line > 0)
				fprintf(stderr, "%s:%u: %s%s\n", d->file, d->line,
					d->is_error ? "" : "warning: ", d->message);
			else
				fprintf(stderr, "%s: %s%s\n", d->file,
					d->is_error ? "" : "warning: ", d->message);
		}
	}
	config_diags_deinit(&diags);
	if (ret == 0) {
		log_set_hostname(config_get(ctx->cfg, "myhostname"));
		log_set_name(config_get(ctx->cfg, "syslog_name"));
		log_set_debug(config_get_bool(ctx->cfg, "facteur_debug"));
	}
	return ret;
}

int cli_main(int argc, char **argv)
{
	struct cli_ctx ctx;
	char *argv0 = argv[0] != NULL ? argv[0] : "facteur";
	char *base = strrchr(argv0, '/');
	base = base != NULL ? base + 1 : argv0;

	memset(&ctx, 0, sizeof(ctx));
	ctx.config_dir = config_dir_default();
	ctx.progname = base;
	/* Tools print their own problems on stderr; daemons switch to their
	 * log destination in cli_start. */
	log_init("facteur", LOG_DEST_STDERR, NULL);

	if (strcmp(base, "sendmail") == 0 || strcmp(base, "mailq") == 0 ||
	    strcmp(base, "newaliases") == 0) {
		log_set_role(strcmp(base, "sendmail") == 0 ? "sendmail" : base);
		if (cli_load_config(&ctx, true) < 0) {
			config_free(&ctx.cfg);
			return 78; /* EX_CONFIG */
		}
		char *args[3] = { base, NULL, NULL };
		int ret;
		if (strcmp(base, "mailq") == 0) {
			args[1] = "-bp";
			ret = cli_sendmail(&ctx, 2, args);
		} else if (strcmp(base, "newaliases") == 0) {
			args[1] = "-bi";
			ret = cli_sendmail(&ctx, 2, args);
		} else {
			ret = cli_sendmail(&ctx, argc, argv);
		}
		config_free(&ctx.cfg);
		return ret;
	}

	int i = 1;
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			ctx.config_dir = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "-c", 2) == 0 && argv[i][2] != '\0') {
			ctx.config_dir = argv[i] + 2;
			i++;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			cli_usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("facteur %s\n", FACTEUR_VERSION);
			return 0;
		} else {
			fprintf(stderr, "facteur: unknown option %s\n", argv[i]);
			cli_usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		cli_usage(stderr);
		return 2;
	}
	const char *cmd = argv[i];
	if (strcmp(cmd, "version") == 0) {
#ifdef FACTEUR_CRASH_HOOKS
		printf("facteur %s (test build with crash hooks)\n", FACTEUR_VERSION);
#else
		printf("facteur %s\n", FACTEUR_VERSION);
#endif
		return 0;
	}
	if (strcmp(cmd, "help") == 0) {
		cli_usage(stdout);
		return 0;
	}
	for (size_t k = 0; k < sizeof(cli_commands) / sizeof(cli_commands[0]); k++) {
		if (strcmp(cmd, cli_commands[k].name) != 0)
			continue;
		if (strcmp(cmd, "sendmail") == 0)
			log_set_role("sendmail");
		if (cli_commands[k].needs_config && cli_load_config(&ctx, strcmp(cmd, "start") != 0) < 0) {
			fprintf(stderr, "facteur: fatal: configuration %s/main.cf has errors "
				"(run 'facteur -c %s check')\n", ctx.config_dir, ctx.config_dir);
			config_free(&ctx.cfg);
			return strcmp(cmd, "sendmail") == 0 ? 78 : 1;
		}
		int ret = cli_commands[k].fn(&ctx, argc - i, argv + i);
		if (ctx.cfg != NULL)
			config_free(&ctx.cfg);
		return ret;
	}
	fprintf(stderr, "facteur: unknown command '%s'\n", cmd);
	cli_usage(stderr);
	return 2;
}
