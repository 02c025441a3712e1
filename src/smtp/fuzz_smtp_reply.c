/* fuzz_smtp_reply.c - libFuzzer target for the SMTP server reply parser
 * (smtp_reply.c) and the EHLO keyword parser: the input is cut into lines
 * at LF (a CR before it is dropped, as evbuffer_readln does) and fed to one
 * reply after the other, as a hostile server would send them. */
#include "smtp/smtp.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_reply r;
	struct smtp_ehlo e;
	const char *err;
	const char *p = (const char *)data, *end = p + size;
	smtp_reply_init(&r);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		enum smtp_parse res = smtp_reply_feed(&r, p, len, &err);
		if (res == SMTP_PARSE_ERR)
			smtp_reply_reset(&r);
		else if (res == SMTP_PARSE_OK)
			smtp_ehlo_parse(&r, &e);
		p = nl != NULL ? nl + 1 : end;
	}
	smtp_reply_deinit(&r);
	return 0;
}
