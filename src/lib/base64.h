/* base64.h - strict base64 (RFC 4648 section 4, the standard alphabet).
 *
 * The decoder accepts only canonical input: length a multiple of 4, padding
 * only at the end (at most two '='), no white space or other characters, and
 * the unused bits of the last group zero (RFC 4648 section 3.5), so that one
 * value has exactly one encoding.  It writes into a caller-provided buffer and
 * never reallocates: callers decoding secrets (SASL) can wipe that one buffer.
 */
#ifndef FACTEUR_LIB_BASE64_H
#define FACTEUR_LIB_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Length of the encoding of len bytes (without NUL); SIZE_MAX on overflow. */
size_t base64_encoded_len(size_t len);
/* Largest number of bytes that src_len characters can decode to. */
static inline size_t base64_decoded_max(size_t src_len)
{
	return src_len / 4 * 3;
}
/* Newly allocated NUL-terminated encoding of data. */
char *base64_encode(const void *data, size_t len);
/* Decode src_len characters of src into dst (dst_size bytes).  Returns 0 and
 * sets *len_r, or -1 with *error_r when src is not canonical base64 or the
 * result does not fit in dst_size.  dst may be partly written on failure. */
int base64_decode(const char *src, size_t src_len, uint8_t *dst, size_t dst_size,
		  size_t *len_r, const char **error_r);

#endif
