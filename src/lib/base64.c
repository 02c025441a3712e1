/* base64.c - strict RFC 4648 base64 encoder and decoder (see base64.h).
 * Table-free decoding of each character keeps the code short; the inputs are
 * SASL lines of at most a few kilobytes. */
#include "lib/base64.h"

#include "lib/mem.h"

#include <stdbool.h>

#include <stdint.h>

static const char base64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t len)
{
	size_t groups = len / 3 + (len % 3 != 0);
	if (groups > SIZE_MAX / 4)
		return SIZE_MAX;
	return groups * 4;
}

char *base64_encode(const void *data, size_t len)
{
	const uint8_t *in = data;
	size_t out_len = base64_encoded_len(len);
	if (out_len == SIZE_MAX)
		mem_fail("base64_encode");
	char *out = xmalloc(out_len + 1);
	size_t o = 0;
	size_t i = 0;
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = base64_alphabet[v >> 18 & 63];
		out[o++] = base64_alphabet[v >> 12 & 63];
		out[o++] = base64_alphabet[v >> 6 & 63];
		out[o++] = base64_alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = base64_alphabet[v >> 18 & 63];
		out[o++] = base64_alphabet[v >> 12 & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = base64_alphabet[v >> 18 & 63];
		out[o++] = base64_alphabet[v >> 12 & 63];
		out[o++] = base64_alphabet[v >> 6 & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

/* Value of one alphabet character, or -1. */
static int base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int base64_decode(const char *src, size_t src_len, uint8_t *dst, size_t dst_size,
		  size_t *len_r, const char **error_r)
{
	*len_r = 0;
	if (src_len % 4 != 0) {
		*error_r = "base64 length is not a multiple of 4";
		return -1;
	}
	size_t o = 0;
	for (size_t i = 0; i < src_len; i += 4) {
		bool last = i + 4 == src_len;
		int v[4];
		size_t pad = 0;
		for (size_t k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)src[i + k];
			if (c == '=' && last && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0) {
				/* "x=y=": data after padding */
				*error_r = "base64 data after padding";
				return -1;
			}
			v[k] = base64_value(c);
			if (v[k] < 0) {
				*error_r = c == '=' ? "misplaced base64 padding"
						   : "invalid base64 character";
				return -1;
			}
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
			     (uint32_t)v[2] << 6 | (uint32_t)v[3];
		/* RFC 4648 section 3.5: the pad bits must be zero. */
		if ((pad == 1 && (w & 0xff) != 0) || (pad == 2 && (w & 0xffff) != 0)) {
			*error_r = "non-canonical base64 (pad bits set)";
			return -1;
		}
		size_t n = 3 - pad;
		if (dst_size - o < n) {
			*error_r = "base64 data too long";
			return -1;
		}
		dst[o++] = (uint8_t)(w >> 16);
		if (n > 1)
			dst[o++] = (uint8_t)(w >> 8);
		if (n > 2)
			dst[o++] = (uint8_t)w;
	}
	*len_r = o;
	return 0;
}
