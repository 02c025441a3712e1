/* cli.h - the facteur command line: subcommands, and the sendmail, mailq
 * and newaliases personalities (chosen by argv[0]).  cli.c parses the
 * global options (-c DIR) and dispatches; each cli_*.c file implements one
 * family of subcommands with the signature below. */
#ifndef FACTEUR_CLI_CLI_H
#define FACTEUR_CLI_CLI_H

#include <stdbool.h>

struct config;

struct cli_ctx {
	const char *config_dir; /* -c DIR, $FACTEUR_CONFIG or /etc/facteur */
	struct config *cfg;     /* loaded main.cf (errors already reported) */
	const char *progname;   /* "facteur", "sendmail", "mailq", ... */
};

int cli_main(int argc, char **argv);

/* Load main.cf into ctx->cfg; print problems to stderr as file:line:
 * message.  Returns 0, or -1 on errors (warnings are printed too unless
 * quiet). */
int cli_load_config(struct cli_ctx *ctx, bool quiet);

/* argv[0] is the subcommand name in each of these ("start", "sendmail"...). */
int cli_start(struct cli_ctx *ctx, int argc, char **argv);   /* cli_master.c */
int cli_stop(struct cli_ctx *ctx, int argc, char **argv);
int cli_reload(struct cli_ctx *ctx, int argc, char **argv);
int cli_status(struct cli_ctx *ctx, int argc, char **argv);
int cli_check(struct cli_ctx *ctx, int argc, char **argv);   /* cli_check.c */
int cli_map(struct cli_ctx *ctx, int argc, char **argv);     /* cli_map.c */
int cli_aliases(struct cli_ctx *ctx, int argc, char **argv);
int cli_pw(struct cli_ctx *ctx, int argc, char **argv);
int cli_queue(struct cli_ctx *ctx, int argc, char **argv);   /* cli_queue.c */
/* sendmail(1) compatible submission; also handles -bp (mailq), -bi
 * (newaliases), -bs (SMTP on stdin/stdout), -q (flush). */
int cli_sendmail(struct cli_ctx *ctx, int argc, char **argv); /* cli_sendmail.c */

#endif
