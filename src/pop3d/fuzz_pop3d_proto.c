/* fuzz_pop3d_proto.c - libFuzzer target: the POP3 command parser on each
 * input line, and the RETR/TOP encoder on the whole input, checking that
 * the output is CRLF-terminated, dot-stuffed and counted exactly. */
#include "lib/buf.h"
#include "pop3d/pop3d.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[POP3_CMD_LINE_MAX + 1];
	size_t n = size < POP3_CMD_LINE_MAX ? size : POP3_CMD_LINE_MAX;
	memcpy(line, data, n);
	line[n] = '\0';
	struct pop3_cmd cmd;
	const char *error;
	if (pop3_cmd_parse(line, &cmd, &error) == 0 && cmd.argc > 2)
		abort();
	size_t num;
	(void)pop3_msgnum_parse(line, 10, &num);

	uint64_t lines = size > 0 ? data[0] % 4 : UINT64_MAX;
	for (int pass = 0; pass < 2; pass++) {
		struct pop3_enc e;
		struct buf out = BUF_INIT;
		pop3_enc_init(&e, pass == 0 ? UINT64_MAX : lines);
		pop3_enc_feed(&e, data, size, &out);
		pop3_enc_finish(&e, &out);
		if (e.octets + 3 != out.len || out.len < 3 ||
		    memcmp(out.data + out.len - 3, ".\r\n", 3) != 0)
			abort();
		/* Every LF is preceded by CR; no line of the body is a lone
		 * "." before the terminator. */
		for (size_t i = 0; i < out.len; i++) {
			if (out.data[i] == '\n' && (i == 0 || out.data[i - 1] != '\r'))
				abort();
			if (i + 3 < out.len && out.data[i] == '.' &&
			    (i == 0 || out.data[i - 1] == '\n') && out.data[i + 1] == '\r')
				abort();
		}
		buf_deinit(&out);
	}
	return 0;
}
