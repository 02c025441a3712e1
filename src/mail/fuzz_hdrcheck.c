/* fuzz_hdrcheck.c - libFuzzer target for the header_checks action parser
 * (hdrcheck.h): the input (first byte: header or body context) is parsed
 * as a table value, normalised as a lookup key, and turned into the SMTP
 * reply and the log line; invariants Postfix relies on are checked. */
#include "mail/hdrcheck.h"

#include "lib/buf.h"
#include "lib/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	enum hdrcheck_context ctx = (data[0] & 1) != 0 ? HDRCHECK_CTX_BODY : HDRCHECK_CTX_HEADER;
	const char *raw = (const char *)data + 1;
	char *value = xstrndup(raw, size - 1);
	char *key = hdrcheck_key(raw, size - 1);
	struct hdrcheck_result r = HDRCHECK_RESULT_INIT;
	const char *error = NULL;
	static const struct hdrcheck_log_info info = {
		"Q1", "host[192.0.2.1]", "a@b", "c@d", "ESMTP", "helo",
	};

	int ret = hdrcheck_action_parse(value, ctx, &r, &error);
	if (r.text == NULL || (ret < 0 && (error == NULL || error != r.warning)) ||
	    (ret < 0 && r.action != HDRCHECK_DUNNO))
		abort();
	if (r.action == HDRCHECK_REJECT) {
		struct buf reply = BUF_INIT;
		hdrcheck_reject_reply(&r, &reply);
		const char *s = buf_cstr(&reply);
		if (strncmp(s, r.is_temporary ? "451 4." : "550 5.", 6) != 0)
			abort();
		buf_deinit(&reply);
	}
	struct buf line = BUF_INIT;
	(void)hdrcheck_log_line(&line, &info, ctx, key, &r);
	for (size_t i = 0; i < line.len; i++)
		if (line.data[i] < 0x20 || line.data[i] == 0x7f)
			abort();
	if (r.warning != NULL && strpbrk(r.warning, "\n\r") != NULL)
		abort();
	buf_deinit(&line);
	hdrcheck_result_clear(&r);
	free(key);
	free(value);
	return 0;
}
