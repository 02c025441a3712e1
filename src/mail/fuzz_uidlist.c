/* fuzz_uidlist.c - the Maildir UID index parser on arbitrary bytes.  The
 * index lives in the user's Maildir, where any tool (or disk damage) can
 * change it: the parser must reject or accept, never misbehave, and what
 * it accepts must format back to something it accepts identically. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mail/mailbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mailbox_uidlist ul, again;
	const char *error = NULL;
	uint32_t hint;
	if (mailbox_uidlist_parse(&ul, (const char *)data, size, &hint, &error) < 0) {
		if (error == NULL || ul.count != 0)
			abort();
		return 0;
	}
	struct buf out = BUF_INIT;
	mailbox_uidlist_format(&ul, &out);
	if (mailbox_uidlist_parse(&again, (const char *)out.data, out.len, &hint, &error) < 0)
		abort();
	if (again.count != ul.count || again.uidvalidity != ul.uidvalidity ||
	    again.uidnext != ul.uidnext)
		abort();
	for (size_t i = 0; i < ul.count; i++) {
		if (again.entries[i].uid != ul.entries[i].uid ||
		    again.entries[i].vsize != ul.entries[i].vsize ||
		    strcmp(again.entries[i].name, ul.entries[i].name) != 0)
			abort();
	}
	mailbox_uidlist_deinit(&again);
	mailbox_uidlist_deinit(&ul);
	buf_deinit(&out);
	return 0;
}
