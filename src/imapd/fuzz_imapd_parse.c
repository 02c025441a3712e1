/* fuzz_imapd_parse.c - libFuzzer target for the IMAP command reader and
 * parsers: the input is fed in one to three chunks (split points taken from
 * its first bytes) to a reader with small limits; every command read is
 * handed to the FETCH, SEARCH, STORE, flag and sequence-set parsers, and
 * its astrings to the mUTF-7 converters.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imapd/imapd_parse.h"
#include "lib/buf.h"

static void fuzz_imapd_cmd(const struct imap_cmd *cmd)
{
	const char *error;
	struct imap_fetch f;
	struct imap_search_key key;
	struct imap_store st;
	struct imap_seqset set;
	bool bad_charset;
	unsigned flags;
	size_t keywords;

	if (cmd->argc >= 1 && cmd->args[0].type == IMAP_ARG_ATOM &&
	    imap_seqset_parse(cmd->args[0].str, &set, &error) == 0) {
		(void)imap_seqset_contains(&set, 5, 10);
		imap_seqset_deinit(&set);
	}
	if (cmd->argc >= 1) {
		if (imap_fetch_parse(cmd->args + 1, cmd->argc - 1, &f, &error) == 0)
			imap_fetch_deinit(&f);
		(void)imap_store_parse(cmd->args + 1, cmd->argc - 1, &st, &error);
	}
	if (imap_search_parse(cmd->args, cmd->argc, &key, &bad_charset, &error) == 0)
		imap_search_key_deinit(&key);
	(void)imap_flags_parse(cmd->args, cmd->argc, &flags, &keywords, &error);
	for (size_t i = 0; i < cmd->argc; i++) {
		const char *s = imap_arg_astring(&cmd->args[i]);
		if (s == NULL)
			continue;
		struct buf a = BUF_INIT, b = BUF_INIT;
		time_t t;
		(void)imap_date_parse(s, &t);
		(void)imap_datetime_parse(s, &t);
		if (imap_mutf7_to_utf8(s, &a) == 0) {
			/* round trip must give the same name back */
			if (imap_utf8_to_mutf7(buf_cstr(&a), &b) != 0 ||
			    imap_mutf7_check(buf_cstr(&b)) != 0 || strcmp(buf_cstr(&b), s) != 0)
				abort();
		}
		buf_reset(&a);
		buf_reset(&b);
		(void)imap_utf8_to_mutf7(s, &a);
		imap_astring_append(&b, s);
		buf_deinit(&a);
		buf_deinit(&b);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct imap_reader_limits limits = { 200, 300, 2000, 4 };
	size_t cuts[3] = { size, size, size };
	if (size >= 2) {
		cuts[0] = data[0] % (size + 1);
		cuts[1] = cuts[0] + data[1] % (size - cuts[0] + 1);
	}
	struct imap_reader *r = imap_reader_new(&limits);
	size_t off = 0;
	bool alive = true;
	for (int c = 0; c < 3 && alive; c++) {
		imap_reader_feed(r, data + off, cuts[c] - off);
		off = cuts[c];
		for (;;) {
			struct imap_cmd *cmd;
			const char *tag, *error;
			bool too_big;
			enum imap_read_result res = imap_reader_next(r, &cmd, &tag, &error, &too_big);
			if (res == IMAP_READ_MORE)
				break;
			if (res == IMAP_READ_CMD) {
				fuzz_imapd_cmd(cmd);
				imap_cmd_free(&cmd);
			} else if (res == IMAP_READ_TOO_LONG && !too_big) {
				alive = false;
				break;
			}
		}
	}
	const void *p;
	(void)imap_reader_pending(r, &p);
	const char *line;
	size_t len;
	(void)imap_reader_line(r, &line, &len);
	imap_reader_free(&r);
	return 0;
}
