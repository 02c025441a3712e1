/* fuzz_mime.c - libFuzzer target for the MIME parser (mime.c,
 * mime_envelope.c, mime_decode.c): part tree, BODYSTRUCTURE, BODY,
 * ENVELOPE, section lookup, header fields and text decoding, with range
 * invariants (every part lies inside the message, inside its parent). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "mail/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(const struct mime_part *p, size_t start, size_t end)
{
	if (p->header_start < start || p->body_start != p->header_start + p->header_len ||
	    p->body_start + p->body_len > end || p->type == NULL || p->subtype == NULL)
		abort();
	if (strcmp(p->type, "multipart") == 0 && p->child_count == 0)
		abort(); /* RFC 3501 needs at least one part */
	for (size_t i = 0; i < p->child_count; i++)
		fuzz_check(&p->children[i], p->body_start, p->body_start + p->body_len);
	if (p->message != NULL) {
		if (p->message->header_start != p->body_start)
			abort();
		fuzz_check(p->message, p->body_start, p->body_start + p->body_len);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *msg = xmalloc(size == 0 ? 1 : size);
	memcpy(msg, data, size);
	struct mime_part *root = mime_parse(msg, size);
	fuzz_check(root, 0, size);

	struct buf out = BUF_INIT;
	mime_bodystructure_append(root, msg, true, &out);
	mime_bodystructure_append(root, msg, false, &out);
	mime_envelope_append(msg + root->header_start, root->header_len, &out);

	static const uint32_t paths[][3] = { { 1, 0, 0 }, { 2, 0, 0 }, { 1, 1, 0 }, { 2, 1, 0 },
					     { 2, 2, 0 }, { 3, 1, 0 }, { 1, 1, 1 }, { 3, 2, 1 } };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		size_t n = paths[i][2] != 0 ? 3 : paths[i][1] != 0 ? 2 : 1;
		const struct mime_part *p = mime_part_find(root, paths[i], n);
		if (p == NULL)
			continue;
		mime_body_text_append(p, msg, &out);
		if (p->message != NULL)
			mime_envelope_append(msg + p->message->header_start,
					     p->message->header_len, &out);
	}

	char *names[] = { "subject", "from", "content-type" };
	mime_header_fields_append(msg + root->header_start, root->header_len, names, 3, false,
				  &out);
	mime_header_fields_append(msg + root->header_start, root->header_len, names, 3, true,
				  &out);
	char *subject = mime_header_get(msg + root->header_start, root->header_len, "subject");
	if (subject != NULL) {
		mime_header_decode_append(subject, strlen(subject), &out);
		free(subject);
	}
	/* the whole input as a header value too: RFC 2047 on raw bytes */
	mime_header_decode_append(msg, size, &out);
	mime_body_text_append(root, msg, &out);
	buf_deinit(&out);
	mime_part_free(&root);
	free(msg);
	return 0;
}
