/* cli_check.c - facteur check: validate main.cf and what it refers to.
 * Every problem is printed as file:line: message; the exit status is 1
 * when there is an error, 0 when there are only warnings. */
#include "cli/cli.h"
#include "lib/mem.h"
#include "mail/config.h"
#include "mail/table.h"
#include "master/master.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Parameters whose values are lists of lookup tables. */
static bool check_is_table_param(const char *name)
{
	size_t n = strlen(name);
	if (n > 5 && strcmp(name + n - 5, "_maps") == 0)
		return true;
	return strcmp(name, "alias_database") == 0 || strcmp(name, "header_checks") == 0 ||
	       strcmp(name, "body_checks") == 0;
}

static bool check_is_listen_param(const char *name)
{
	size_t n = strlen(name);
	return n > 7 && strcmp(name + n - 7, "_listen") == 0;
}

int cli_check(struct cli_ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct config_diags diags;
	char main_cf[4096];
	config_diags_init(&diags);
	(void)snprintf(main_cf, sizeof(main_cf), "%s/main.cf", ctx->config_dir);
	ctx->cfg = config_new();
	(void)config_load(ctx->cfg, ctx->config_dir, &diags);
	(void)config_check(ctx->cfg, &diags);
	const char **checked = NULL; /* table specs already checked (owned by cfg) */
	size_t n_checked = 0;
	for (size_t i = 0; i < config_param_count(); i++) {
		const char *name = config_param_name(i);
		if (!config_param_is_implemented(name))
			continue;
		const char *value = config_get(ctx->cfg, name);
		if (value == NULL || *value == '\0')
			continue;
		if (check_is_table_param(name)) {
			char **items = config_get_list(ctx->cfg, name);
			for (size_t k = 0; items != NULL && items[k] != NULL; k++) {
				/* A table named by several parameters (alias_maps,
				 * alias_database, local_recipient_maps) is checked once. */
				bool seen = false;
				for (size_t c = 0; c < n_checked && !seen; c++)
					seen = strcmp(checked[c], items[k]) == 0;
				if (seen)
					continue;
				checked = xreallocarray(checked, n_checked + 1, sizeof(*checked));
				checked[n_checked++] = items[k];
				(void)table_check(items[k], &diags, main_cf,
						  config_param_line(ctx->cfg, name));
			}
		} else if (check_is_listen_param(name)) {
			char **items = config_get_list(ctx->cfg, name);
			for (size_t k = 0; items != NULL && items[k] != NULL; k++) {
				struct sockaddr_storage *addrs;
				const char *error;
				int n = master_listen_parse(items[k], &addrs, &error);
				if (n < 0)
					config_diag_add(&diags, main_cf, config_param_line(ctx->cfg, name), true,
							"%s: bad listener '%s': %s", name, items[k], error);
				else
					free(addrs);
			}
		}
	}
	free(checked);
	config_diags_print(&diags, 2);
	int ret = diags.n_errors > 0 ? 1 : 0;
	config_diags_deinit(&diags);
	return ret;
}
