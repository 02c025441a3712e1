/* fuzz_config.c - libFuzzer target for the main.cf parser and $name
 * expansion: parse the input as main.cf, read every known parameter
 * (expanded, and typed for implemented ones), run config_check, free all.
 * Looks for crashes, leaks and runaway expansion (loops, a$a$a... chains). */
#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"
#include "mail/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	if (!quiet) {
		/* Expansion warnings go to the log: keep the fuzzer's output
		 * readable. */
		log_init("fuzz", LOG_DEST_FILE, "/dev/null");
		quiet = true;
	}
	struct config *cfg = config_new();
	struct config_diags diags;
	config_diags_init(&diags);
	(void)config_load_text(cfg, "main.cf", (const char *)data, size, &diags);
	for (size_t i = 0; i < config_param_count(); i++) {
		const char *name = config_param_name(i);
		(void)config_get(cfg, name);
		(void)config_get_raw(cfg, name);
	}
	/* Typed getters panic on a wrong type (a programming error): one of
	 * each type, by name. */
	(void)config_get_bool(cfg, "smtpd_helo_required");
	(void)config_get_int(cfg, "smtpd_recipient_limit");
	(void)config_get_time(cfg, "delay_warning_time");
	(void)config_get_size(cfg, "message_size_limit");
	(void)config_get_list(cfg, "mydestination");
	(void)config_get_list(cfg, "smtpd_listen");
	(void)config_check(cfg, &diags);
	config_diags_deinit(&diags);
	config_free(&cfg);
	return 0;
}
