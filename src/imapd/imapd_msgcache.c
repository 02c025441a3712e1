/* imapd_msgcache.c - the FETCH/SEARCH message cache: the last message read,
 * keyed by (mailbox, UID), with its line ends converted to CRLF (IMAP
 * counts sizes and offsets in CRLF octets, RFC 3501 2.3.4 and 6.4.5), read
 * only as far as needed (the header alone for header fetches and header
 * searches: fetching the headers of a large mailbox must not read every
 * body) and MIME-parsed only when a part is asked for. */
#include "imapd/imapd.h"
#include "imapd/imapd_msgcache.h"

#include "lib/buf.h"
#include "lib/mem.h"
#include "mail/mailbox.h"
#include "mail/mime.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read unit: large enough that a typical header takes one read. */
#define MSGCACHE_BLOCK 8192

struct imapd_msgcache {
	const struct mailbox *mb; /* NULL: nothing cached */
	uint32_t uid;
	struct buf data;	  /* CRLF-converted bytes read so far */
	uint64_t raw_size;	  /* mailbox_msg_size(): bytes to read */
	uint64_t raw_read;	  /* raw bytes consumed from the file */
	bool complete;		  /* the whole message is in data */
	bool header_found;	  /* header_len is known */
	size_t header_len;
	size_t scan_pos;	  /* where the search for CRLFCRLF goes on */
	struct mime_part *root;	  /* parsed lazily */
	struct buf error;
};

struct imapd_msgcache *imapd_msgcache_new(void)
{
	struct imapd_msgcache *mc = xcalloc(1, sizeof(*mc));
	buf_init(&mc->data);
	buf_init(&mc->error);
	return mc;
}

void imapd_msgcache_reset(struct imapd_msgcache *mc)
{
	mc->mb = NULL;
	mc->uid = 0;
	buf_reset(&mc->data);
	mc->raw_size = 0;
	mc->raw_read = 0;
	mc->complete = false;
	mc->header_found = false;
	mc->header_len = 0;
	mc->scan_pos = 0;
	if (mc->root != NULL)
		mime_part_free(&mc->root);
}

void imapd_msgcache_free(struct imapd_msgcache **mcp)
{
	struct imapd_msgcache *mc = *mcp;
	if (mc == NULL)
		return;
	imapd_msgcache_reset(mc);
	buf_deinit(&mc->data);
	buf_deinit(&mc->error);
	free(mc);
	*mcp = NULL;
}

/* Append raw file bytes, turning each bare LF into CRLF (an existing CRLF
 * stays, also when the CR ended the previous block). */
static void msgcache_append_crlf(struct imapd_msgcache *mc, const char *p, size_t n)
{
	while (n > 0) {
		const char *lf = memchr(p, '\n', n);
		size_t run = lf == NULL ? n : (size_t)(lf - p);
		buf_append(&mc->data, p, run);
		if (lf == NULL)
			break;
		if (mc->data.len == 0 || mc->data.data[mc->data.len - 1] != '\r')
			buf_append_char(&mc->data, '\r');
		buf_append_char(&mc->data, '\n');
		p += run + 1;
		n -= run + 1;
	}
}

/* Look for the empty line ending the header (RFC 5322 2.1) in what was
 * read since the last look. */
static void msgcache_scan_header(struct imapd_msgcache *mc)
{
	const char *d = (const char *)mc->data.data;
	size_t len = mc->data.len;
	if (mc->header_found)
		return;
	if (len >= 2 && d[0] == '\r' && d[1] == '\n') {
		/* no header fields at all */
		mc->header_found = true;
		mc->header_len = 2;
		return;
	}
	if (len >= mc->scan_pos + 4) {
		const char *end = memmem(d + mc->scan_pos, len - mc->scan_pos, "\r\n\r\n", 4);
		if (end != NULL) {
			mc->header_found = true;
			mc->header_len = (size_t)(end - d) + 4;
			return;
		}
	}
	/* the terminator may straddle the next block */
	mc->scan_pos = len > 3 ? len - 3 : 0;
}

static int msgcache_fail(struct imapd_msgcache *mc, int err)
{
	imapd_msgcache_reset(mc);
	errno = err;
	return -1;
}

/* Make sure message seq is cached, at least its header (whole = false) or
 * all of it. */
static int msgcache_load(struct imapd_msgcache *mc, struct mailbox *mb, size_t seq, bool whole,
			 const char **error_r)
{
	uint32_t uid = mailbox_msg_uid(mb, seq);
	if (mc->mb != mb || mc->uid != uid) {
		imapd_msgcache_reset(mc);
		mc->mb = mb;
		mc->uid = uid;
		mc->raw_size = mailbox_msg_size(mb, seq);
	}
	if (mc->complete || (!whole && mc->header_found))
		return 0;

	int fd;
	if (mailbox_msg_open(mb, seq, &fd, error_r) < 0)
		return msgcache_fail(mc, errno);
	/* An mbox message starts at an offset: skip relative to it. */
	if (mc->raw_read > 0 && lseek(fd, (off_t)mc->raw_read, SEEK_CUR) < 0) {
		int err = errno;
		buf_reset(&mc->error);
		buf_printf(&mc->error, "lseek %s: %s", mailbox_msg_path(mb, seq), strerror(err));
		*error_r = buf_cstr(&mc->error);
		close(fd);
		return msgcache_fail(mc, err);
	}
	char block[MSGCACHE_BLOCK];
	bool eof = false;
	while (mc->raw_read < mc->raw_size) {
		uint64_t left = mc->raw_size - mc->raw_read;
		size_t want = left < sizeof(block) ? (size_t)left : sizeof(block);
		ssize_t n = read(fd, block, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			buf_reset(&mc->error);
			buf_printf(&mc->error, "read %s: %s", mailbox_msg_path(mb, seq),
				   strerror(err));
			*error_r = buf_cstr(&mc->error);
			close(fd);
			return msgcache_fail(mc, err);
		}
		if (n == 0) {
			/* shorter than listed (truncated by another tool): keep
			 * what is there */
			eof = true;
			break;
		}
		msgcache_append_crlf(mc, block, (size_t)n);
		mc->raw_read += (uint64_t)n;
		msgcache_scan_header(mc);
		if (!whole && mc->header_found)
			break;
	}
	close(fd);
	if (eof || mc->raw_read >= mc->raw_size) {
		mc->complete = true;
		if (!mc->header_found) {
			/* a message that is all header */
			mc->header_found = true;
			mc->header_len = mc->data.len;
		}
	}
	return 0;
}

int imapd_msgcache_header(struct imapd_msgcache *mc, struct mailbox *mb, size_t seq,
			  const char **hdr_r, size_t *len_r, const char **error_r)
{
	if (msgcache_load(mc, mb, seq, false, error_r) < 0)
		return -1;
	*hdr_r = (const char *)buf_cstr(&mc->data);
	*len_r = mc->header_len;
	return 0;
}

int imapd_msgcache_message(struct imapd_msgcache *mc, struct mailbox *mb, size_t seq,
			   const char **msg_r, size_t *len_r, size_t *header_len_r,
			   const char **error_r)
{
	if (msgcache_load(mc, mb, seq, true, error_r) < 0)
		return -1;
	*msg_r = buf_cstr(&mc->data);
	*len_r = mc->data.len;
	*header_len_r = mc->header_len;
	return 0;
}

int imapd_msgcache_parsed(struct imapd_msgcache *mc, struct mailbox *mb, size_t seq,
			  const char **msg_r, size_t *len_r, const struct mime_part **root_r,
			  const char **error_r)
{
	if (msgcache_load(mc, mb, seq, true, error_r) < 0)
		return -1;
	if (mc->root == NULL)
		mc->root = mime_parse(buf_cstr(&mc->data), mc->data.len);
	*msg_r = buf_cstr(&mc->data);
	*len_r = mc->data.len;
	*root_r = mc->root;
	return 0;
}
