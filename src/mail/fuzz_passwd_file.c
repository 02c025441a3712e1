/* fuzz_passwd_file.c - libFuzzer target for the passwd-file parser
 * (auth_db_new_from_text) and lookups of the parsed entries.  Only
 * {PLAIN} entries and unknown users are verified: crypt(3) would make
 * each run slow without exercising the parser more. */
#include "mail/auth.h"
#include "mail/config.h"

#include "lib/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool initialized;
	if (!initialized) {
		/* keep the fuzzer output readable: logs go to /dev/null */
		log_init("fuzz", LOG_DEST_FILE, "/dev/null");
		initialized = true;
	}
	if (size > 65536)
		return 0;
	struct config_diags diags;
	config_diags_init(&diags);
	struct auth_db *db = auth_db_new_from_text("fuzz", (const char *)data, size, false, &diags);
	for (size_t i = 0; i < diags.count; i++) {
		if (diags.items[i].line == 0)
			abort();
	}
	/* "user:{PLAIN}pw" as the first line: the user must then verify with
	 * pw (when the line was accepted and pw has no NUL or ':'). */
	const char *end = memchr(data, '\n', size);
	size_t line_len = end != NULL ? (size_t)(end - (const char *)data) : size;
	char *line = strndup((const char *)data, line_len);
	char *sep = strstr(line, ":{PLAIN}");
	/* Only an accepted first line is verified: an unknown user would cost
	 * a dummy crypt(3) run per input. */
	bool line1_ok = true;
	for (size_t i = 0; i < diags.count; i++)
		line1_ok &= diags.items[i].line != 1;
	if (sep != NULL && strlen(line) == line_len && line1_ok && auth_db_count(db) > 0) {
		*sep = '\0';
		char *pw = sep + 8;
		struct auth_user u;
		const char *error;
		int ret = auth_db_verify(db, line, pw, &u, &error);
		if (ret == 1)
			auth_user_deinit(&u);
		if (ret == -1)
			abort(); /* no file: never a temporary failure */
		if (ret == 1 && !u.is_virtual)
			abort();
	}
	free(line);
	auth_db_free(&db);
	config_diags_deinit(&diags);
	return 0;
}
