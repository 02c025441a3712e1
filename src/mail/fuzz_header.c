/* fuzz_header.c - libFuzzer target for header.c: header block splitting
 * and address-list rewriting, with byte-identity invariants. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *fuzz_rewrite_keep(void *ctx, const char *addr)
{
	(void)addr;
	(*(size_t *)ctx)++;
	return NULL;
}

static char *fuzz_rewrite_change(void *ctx, const char *addr)
{
	(void)ctx;
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s@x", addr);
	return buf_steal(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = xmalloc(size == 0 ? 1 : size);
	memcpy(in, data, size);
	struct header_block hb;
	const char *error;
	if (header_block_parse(in, size, 65536, 1000, &hb, &error) == 0) {
		size_t total = 0;
		for (size_t i = 0; i < hb.count; i++) {
			const struct header_field *f = &hb.fields[i];
			/* Fields re-joined are the input bytes. */
			if (memcmp(f->raw, in + total, f->raw_len) != 0)
				abort();
			total += f->raw_len;
			if (memchr(f->raw, '\0', f->raw_len) != NULL)
				continue;	/* raw is used as a C string below */
			size_t calls = 0;
			char *out;
			if (header_rewrite_addresses(f->raw, fuzz_rewrite_keep, &calls, &out) == 0) {
				if (strcmp(out, f->raw) != 0)
					abort();	/* nothing changed: byte-identical */
				free(out);
				char **addrs;
				int n = header_extract_addresses(f->raw, &addrs);
				if (n < 0 || (size_t)n != calls)
					abort();
				str_list_free(&addrs);
				if (header_rewrite_addresses(f->raw, fuzz_rewrite_change, NULL, &out) == 0)
					free(out);
				else
					abort();
			}
		}
		if (total != hb.header_end || hb.header_end > size)
			abort();
		header_block_deinit(&hb);
	}
	free(in);
	return 0;
}
