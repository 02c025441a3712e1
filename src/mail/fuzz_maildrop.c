/* fuzz_maildrop.c - libFuzzer target for the maildrop file parser: the
 * files are written by any local user, so the parser must refuse every
 * malformed input without crashing, leaking or reading out of bounds.
 * An accepted file must also survive encode + parse unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/buf.h"
#include "mail/maildrop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct maildrop_env env;
	const char *error = NULL;
	size_t off = 0;
	if (maildrop_parse(data, size, &env, &off, &error) < 0)
		return 0;
	if (off > size)
		__builtin_trap();
	/* Round trip: what was accepted encodes to something that parses
	 * to the same recipients. */
	struct buf out = BUF_INIT;
	if (maildrop_envelope_encode(&env, &out, &error) == 0) {
		struct maildrop_env again;
		size_t off2 = 0;
		if (maildrop_parse(out.data, out.len, &again, &off2, &error) != 0 ||
		    again.n_rcpts != env.n_rcpts || again.extract != env.extract)
			__builtin_trap();
		for (size_t i = 0; i < env.n_rcpts; i++)
			if (strcmp(again.rcpts[i], env.rcpts[i]) != 0)
				__builtin_trap();
		maildrop_env_deinit(&again);
	}
	buf_deinit(&out);
	maildrop_env_deinit(&env);
	return 0;
}
