/* fuzz_aliases.c - libFuzzer target for aliases(5): the input as one
 * right-hand side (aliases_parse_rhs), then as an aliases source file
 * (aliases_source_parse), checking that every accepted right-hand side
 * parses again.  One temporary directory per process. */
#include "mail/aliases.h"
#include "mail/config.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_dir[] = "/tmp/facteur-fuzz-aliases.XXXXXX";
static char *fuzz_path;

static void fuzz_cleanup(void)
{
	(void)unlink(fuzz_path);
	(void)rmdir(fuzz_dir);
}

static int fuzz_entry(void *ctx, const char *name, const char *rhs, unsigned line)
{
	(void)ctx;
	(void)line;
	struct alias_target *targets;
	const char *error;
	/* The source parser only passes right-hand sides it validated. */
	if (name[0] == '\0')
		abort();
	int n = aliases_parse_rhs(rhs, &targets, &error);
	if (n <= 0)
		abort();
	for (int i = 0; i < n; i++) {
		if (targets[i].value == NULL)
			abort();
	}
	alias_targets_free(&targets, (size_t)n);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 16384)
		return 0;
	char *rhs = xstrndup((const char *)data, size);
	struct alias_target *targets;
	const char *error;
	int n = aliases_parse_rhs(rhs, &targets, &error);
	if (n > 0)
		alias_targets_free(&targets, (size_t)n);
	else if (n == 0 && targets != NULL)
		abort();
	free(rhs);

	if (fuzz_path == NULL) {
		if (mkdtemp(fuzz_dir) == NULL)
			abort();
		struct buf b = BUF_INIT;
		buf_printf(&b, "%s/aliases", fuzz_dir);
		fuzz_path = buf_steal(&b);
		atexit(fuzz_cleanup);
	}
	if (fs_write_atomic(fuzz_path, data, size, 0600) < 0)
		abort();
	struct config_diags diags;
	config_diags_init(&diags);
	(void)aliases_source_parse(fuzz_path, fuzz_entry, NULL, &diags);
	config_diags_deinit(&diags);
	return 0;
}
