/* fuzz_dns.c - libFuzzer target for the DNS answers dns.c interprets: an
 * MX response (parsed by c-ares, then filtered by dns_mx_list_from_reply:
 * null MX, name validation, record limit), the sort/shuffle of the result
 * and route_parse_nexthop on the exchanger names.  Invariants: at most 32
 * records, every name valid and lower-case, sorted by preference after
 * dns_mx_sort, no null MX together with records. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "mail/dns.h"
#include "mail/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned fuzz_rnd(void *ctx)
{
	unsigned *state = ctx;
	*state = *state * 1103515245u + 12345u;
	return *state >> 8;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65535)
		return 0;
	/* Exact-size copy so ASan catches any read past the message. */
	unsigned char *msg = xmalloc(size == 0 ? 1 : size);
	memcpy(msg, data, size);
	struct dns_mx *mx = NULL;
	size_t n = 0;
	bool null_mx = false;
	if (dns_mx_list_from_reply(msg, (int)size, &mx, &n, &null_mx) == 0) {
		if (n > 32 || (null_mx && n > 0))
			abort();
		for (size_t i = 0; i < n; i++) {
			if (!dns_name_valid(mx[i].host))
				abort();
			for (const char *p = mx[i].host; *p != '\0'; p++)
				if (*p >= 'A' && *p <= 'Z')
					abort();
			char *host = NULL;
			bool no_mx;
			unsigned port;
			if (route_parse_nexthop(mx[i].host, &host, &no_mx, &port) == 0) {
				if (no_mx || port != 25)
					abort();
				free(host);
			}
		}
		unsigned state = (unsigned)size;
		dns_mx_sort(mx, n, fuzz_rnd, &state);
		for (size_t i = 1; i < n; i++)
			if (mx[i - 1].preference > mx[i].preference)
				abort();
		dns_mx_list_free(&mx, n);
	}
	/* The same bytes as a name. */
	char *name = xmalloc(size + 1);
	memcpy(name, data, size);
	name[size] = '\0';
	(void)dns_name_valid(name);
	free(name);
	free(msg);
	return 0;
}
