/* fuzz_sasl.c - libFuzzer target for the strict base64 decoder and the SASL
 * PLAIN/LOGIN server state machines.  Input: one byte choosing the
 * mechanism (bit 0) and whether the first line is an initial response
 * (bit 1), then client lines separated by '\n'.  Also checks that every
 * accepted base64 line re-encodes to itself (canonical decoding). */
#include "mail/sasl.h"

#include "lib/base64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_base64_check(const char *line, size_t len)
{
	uint8_t out[4096];
	size_t n;
	const char *error;
	if (base64_decode(line, len, out, sizeof(out), &n, &error) == 0) {
		char *again = base64_encode(out, n);
		if (strlen(again) != len || memcmp(again, line, len) != 0)
			abort();
		free(again);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 16384)
		return 0;
	uint8_t flags = data[0];
	char *text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	size_t text_len = size - 1;
	/* split into lines in place (a NUL in a line just ends it early) */
	char *lines[16];
	size_t nlines = 0;
	char *p = text;
	while (nlines < 16) {
		lines[nlines++] = p;
		char *nl = memchr(p, '\n', text_len - (size_t)(p - text));
		if (nl == NULL)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	for (size_t i = 0; i < nlines; i++)
		fuzz_base64_check(lines[i], strlen(lines[i]));

	const char *mech = (flags & 1) ? "LOGIN" : "PLAIN";
	size_t next = 0;
	const char *ir = NULL;
	if (flags & 2)
		ir = lines[next++];
	struct sasl_server *s = sasl_server_new(mech, ir);
	char *challenge;
	const char *error;
	int ret = sasl_server_step(s, NULL, &challenge, &error);
	while (ret == 0) {
		free(challenge);
		if (next == nlines)
			break;
		ret = sasl_server_step(s, lines[next++], &challenge, &error);
	}
	if (ret == 1) {
		const char *user, *password;
		sasl_server_credentials(s, &user, &password);
		if (user[0] == '\0' || password[0] == '\0')
			abort();
	}
	sasl_server_free(&s);
	free(text);
	return 0;
}
