/* fuzz_dlv_reply.c - libFuzzer target for the queue manager's decoder of
 * local delivery agent replies (qmgr_dlv_reply_decode). */
#include <stddef.h>
#include <stdint.h>

#include "qmgr/qmgr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qmgr_dlv_reply r;
	const char *error;
	if (qmgr_dlv_reply_decode(data, size, &r, &error) == 0)
		qmgr_dlv_reply_clear(&r);
	return 0;
}
