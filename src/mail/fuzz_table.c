/* fuzz_table.c - libFuzzer target for the lookup table parsers: the input
 * is written to a file that is opened as regexp:, pcre: and texthash:,
 * compiled as hash: and looked up with a few keys.  One temporary
 * directory per process, removed at exit. */
#include "mail/config.h"
#include "mail/table.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_dir[] = "/tmp/facteur-fuzz-table.XXXXXX";
static char *fuzz_path;
static char *fuzz_db;

static void fuzz_cleanup(void)
{
	(void)unlink(fuzz_path);
	(void)unlink(fuzz_db);
	(void)rmdir(fuzz_dir);
}

static void fuzz_lookups(struct table *t, const uint8_t *data, size_t size)
{
	static const char *keys[] = {
		"", "root", "From: chose@public.com", "Received: from x", "aol.com",
		"joe@example.test", "a\nb",
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *v = NULL;
		const char *error;
		(void)table_lookup(t, keys[i], &v, &error);
		free(v);
	}
	/* The first line of the input as a key, too. */
	const uint8_t *nl = memchr(data, '\n', size);
	char *key = xstrndup((const char *)data, nl != NULL ? (size_t)(nl - data) : size);
	char *v = NULL;
	const char *error;
	(void)table_lookup(t, key, &v, &error);
	free(v);
	free(key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *types[] = { "regexp", "pcre", "texthash", "hash" };
	if (size > 8192)
		return 0;
	if (fuzz_path == NULL) {
		if (mkdtemp(fuzz_dir) == NULL)
			abort();
		struct buf b = BUF_INIT;
		buf_printf(&b, "%s/map", fuzz_dir);
		fuzz_path = buf_steal(&b);
		buf_printf(&b, "%s/map.lmdb", fuzz_dir);
		fuzz_db = buf_steal(&b);
		atexit(fuzz_cleanup);
	}
	if (fs_write_atomic(fuzz_path, data, size, 0600) < 0)
		abort();
	(void)unlink(fuzz_db);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct buf spec = BUF_INIT;
		buf_printf(&spec, "%s:%s", types[i], fuzz_path);
		if (strcmp(types[i], "hash") == 0) {
			struct config_diags diags;
			config_diags_init(&diags);
			(void)table_compile(buf_cstr(&spec), &diags);
			config_diags_deinit(&diags);
		}
		const char *error;
		struct table *t = table_open(buf_cstr(&spec), &error);
		if (t != NULL)
			fuzz_lookups(t, data, size);
		table_free(&t);
		struct config_diags diags;
		config_diags_init(&diags);
		(void)table_check(buf_cstr(&spec), &diags, "main.cf", 1);
		config_diags_deinit(&diags);
		buf_deinit(&spec);
	}
	return 0;
}
