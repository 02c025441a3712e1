/* fuzz_dsn.c - libFuzzer target for dsn.c: the remote reply text (what a
 * remote SMTP server sends), the recipient address and the original
 * message are untrusted.  Input: three NUL-separated fields TEXT\0ADDR\0
 * CONTENT.  Checks that the report never contains a control character
 * other than LF/TAB in its generated part, and that folding terminates. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "mail/dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	char *fields[2] = { NULL, NULL };
	for (int i = 0; i < 2; i++) {
		const char *z = memchr(p, '\0', (size_t)(end - p));
		size_t n = z != NULL ? (size_t)(z - p) : (size_t)(end - p);
		fields[i] = xstrndup(p, n);
		p = z != NULL ? z + 1 : end;
	}
	char *host = NULL, *reply = NULL;
	if (dsn_remote_parse(fields[0], &host, &reply)) {
		free(host);
		free(reply);
	}
	struct dsn_rcpt rc = { fields[1], fields[1], fields[0], DSN_ACTION_FAILED, fields[0],
			       fields[0] };
	struct dsn_report r;
	memset(&r, 0, sizeof(r));
	r.type = (enum dsn_report_type)(size % 4);
	r.myhostname = "mx.example.test";
	r.queue_id = "0123456789AB";
	r.report_id = "0123456789AC";
	r.sender = fields[1];
	r.to = fields[1];
	r.arrival = 1;
	r.now = 2;
	r.envid = fields[0];
	r.rcpts = &rc;
	r.n_rcpts = 1;
	r.content = p;
	r.content_len = (size_t)(end - p);
	r.size_limit = 512;
	struct buf out = BUF_INIT;
	const char *error = NULL;
	if (dsn_report_build(&out, &r, &error) == 0) {
		/* The generated part (before the original) is clean. */
		const char *s = buf_cstr(&out);
		const char *orig = strstr(s, "\n--0123456789AB.2/mx.example.test\nContent-Description: "
					     "Undelivered");
		size_t gen = orig != NULL ? (size_t)(orig - s) : 0;
		for (size_t i = 0; i < gen; i++) {
			unsigned char c = (unsigned char)s[i];
			if ((c < 0x20 && c != '\n' && c != '\t') || c >= 0x7f)
				abort();
		}
	}
	buf_deinit(&out);
	free(fields[0]);
	free(fields[1]);
	return 0;
}
