/* fuzz_addr.c - libFuzzer target for addr.c: envelope paths, ESMTP
 * parameters, xtext and DSN values, with round-trip invariants. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "mail/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exact-size copy so ASan catches any read past len. */
	char *arg = xmalloc(size == 0 ? 1 : size);
	memcpy(arg, data, size);
	for (int strict = 0; strict < 2; strict++) {
		char *addr;
		size_t consumed;
		const char *error;
		if (addr_parse_path(arg, size, strict != 0, &addr, &consumed, &error) < 0)
			continue;
		if (consumed > size || strlen(addr) > ADDR_PATH_MAX)
			abort();
		char *local, *domain;
		addr_split(addr, &local, &domain);
		if (strlen(local) > ADDR_LOCAL_MAX || (domain != NULL && strlen(domain) > ADDR_DOMAIN_MAX))
			abort();
		(void)addr_has_routing_chars(local);
		char *q = addr_qualify(addr, "example.org");
		char *low = addr_lower_domain(q);
		free(low);
		free(q);
		free(local);
		free(domain);
		free(addr);

		char *rest = xstrndup(arg + consumed, size - consumed);
		struct esmtp_param *params;
		size_t n;
		if (addr_parse_esmtp_params(rest, &params, &n, &error) == 0) {
			for (size_t i = 0; i < n; i++) {
				const char *v = params[i].value;
				unsigned flags;
				enum addr_dsn_ret ret;
				enum addr_body body;
				uint64_t sz;
				char *a, *b;
				if (v == NULL)
					continue;
				(void)addr_esmtp_notify_parse(v, &flags);
				(void)addr_esmtp_ret_parse(v, &ret);
				(void)addr_esmtp_body_parse(v, &body);
				(void)addr_esmtp_size_parse(v, &sz);
				if (addr_esmtp_envid_parse(v, &a) == 0)
					free(a);
				if (addr_esmtp_orcpt_parse(v, &a, &b) == 0) {
					free(a);
					free(b);
				}
			}
			addr_esmtp_params_free(&params, n);
		}
		free(rest);
	}
	/* xtext: decode(encode(x)) == x for any text without NUL. */
	char *text = xstrndup(arg, size);
	char *enc = xtext_encode(text);
	char *dec;
	if (xtext_decode(enc, &dec) < 0 || strcmp(dec, text) != 0)
		abort();
	free(dec);
	free(enc);
	if (xtext_decode(text, &dec) == 0)
		free(dec);
	free(text);
	free(arg);
	return 0;
}
