/* fuzz_qfile.c - the queue file reader on arbitrary bytes.  Queue files
 * are written by facteur itself, but a reader that trusts them would turn
 * disk corruption into a crash loop; it must reject, never misbehave. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/buf.h"
#include "mail/qfile.h"

static int sink(void *ctx, const uint8_t *data, size_t len)
{
	size_t *total = ctx;
	*total += len + (len > 0 ? data[0] : 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("qfile", 0);
	if (fd < 0)
		return 0;
	if (size > 0 && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	struct qfile_msg *m = NULL;
	const char *error;
	if (qfile_read(fd, &m, &error) == 0) {
		size_t total = 0;
		(void)qfile_content_read(fd, m, sink, &total, &error);
		(void)qfile_msg_pending(m);
		if (m->n_rcpts > 0)
			(void)qfile_append_done(fd, m, 0, QRCPT_SENT, "2.0.0", "ok");
		qfile_msg_free(&m);
	}
	close(fd);
	return 0;
}
