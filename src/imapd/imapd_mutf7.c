/* imapd_mutf7.c - modified UTF-7 mailbox names (RFC 3501 section 5.1.3):
 * printable US-ASCII stands for itself except "&", written "&-"; anything
 * else is UTF-16 in modified base64 ("," for "/", no padding) between "&"
 * and "-".  The decoder is strict so that one name has one spelling:
 * printable ASCII must not be encoded, unused bits must be zero, surrogates
 * must pair, and 8-bit bytes are refused.
 */
#include "imapd/imapd_parse.h"

#include <string.h>

#include "lib/buf.h"

static const char imap_mutf7_b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int imap_mutf7_b64_value(char c)
{
	const char *p = c == '\0' ? NULL : strchr(imap_mutf7_b64, c);
	return p == NULL ? -1 : (int)(p - imap_mutf7_b64);
}

static void imap_utf8_put(struct buf *out, uint32_t cp)
{
	if (cp < 0x80) {
		buf_append_char(out, (char)cp);
	} else if (cp < 0x800) {
		buf_append_char(out, (char)(0xc0 | (cp >> 6)));
		buf_append_char(out, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		buf_append_char(out, (char)(0xe0 | (cp >> 12)));
		buf_append_char(out, (char)(0x80 | ((cp >> 6) & 0x3f)));
		buf_append_char(out, (char)(0x80 | (cp & 0x3f)));
	} else {
		buf_append_char(out, (char)(0xf0 | (cp >> 18)));
		buf_append_char(out, (char)(0x80 | ((cp >> 12) & 0x3f)));
		buf_append_char(out, (char)(0x80 | ((cp >> 6) & 0x3f)));
		buf_append_char(out, (char)(0x80 | (cp & 0x3f)));
	}
}

/* Decode the base64 run at *p (after "&") up to "-". */
static int imap_mutf7_run(const char **p, struct buf *out)
{
	const char *s = *p;
	uint32_t bits = 0, high = 0;
	int nbits = 0;
	size_t units = 0;
	for (; *s != '-'; s++) {
		int v = imap_mutf7_b64_value(*s);
		if (v < 0)
			return -1;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t u = (bits >> nbits) & 0xffff;
		bits &= (1u << nbits) - 1;
		units++;
		if (high != 0) {
			if (u < 0xdc00 || u > 0xdfff)
				return -1;
			imap_utf8_put(out, 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00));
			high = 0;
		} else if (u >= 0xd800 && u <= 0xdbff) {
			high = u;
		} else if (u >= 0xdc00 && u <= 0xdfff) {
			return -1;
		} else if (u >= 0x20 && u <= 0x7e) {
			return -1; /* printable ASCII must stand for itself */
		} else if (u < 0x20 || u == 0x7f) {
			return -1; /* no control characters (NUL!) in a name */
		} else {
			imap_utf8_put(out, u);
		}
	}
	/* "&-" is handled by the caller: an empty run here is invalid;
	 * leftover bits must be fewer than 6 and zero (RFC 2152 rules). */
	if (units == 0 || high != 0 || nbits >= 6 || bits != 0)
		return -1;
	*p = s + 1;
	return 0;
}

int imap_mutf7_to_utf8(const char *name, struct buf *out)
{
	const char *s = name;
	size_t start = out->len;
	while (*s != '\0') {
		uint8_t c = (uint8_t)*s;
		if (c < 0x20 || c > 0x7e)
			goto fail;
		if (c != '&') {
			buf_append_char(out, (char)c);
			s++;
			continue;
		}
		s++;
		if (*s == '-') {
			buf_append_char(out, '&');
			s++;
			continue;
		}
		if (imap_mutf7_run(&s, out) < 0)
			goto fail;
		/* two adjacent runs must have been one (RFC 3501 5.1.3) */
		if (*s == '&' && s[1] != '-')
			goto fail;
	}
	return 0;
fail:
	out->len = start;
	buf_reserve(out, 0);
	out->data[out->len] = '\0';
	return -1;
}

int imap_mutf7_check(const char *name)
{
	struct buf tmp = BUF_INIT;
	int ret = imap_mutf7_to_utf8(name, &tmp);
	buf_deinit(&tmp);
	return ret;
}

/* One UTF-8 code point at *p (strict: no overlong forms, no surrogates). */
static int imap_utf8_get(const uint8_t **p, uint32_t *cp_r)
{
	const uint8_t *s = *p;
	uint32_t cp;
	size_t n;
	if (s[0] < 0x80) {
		cp = s[0];
		n = 0;
	} else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		cp = s[0] & 0x1f;
		n = 1;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		cp = s[0] & 0x0f;
		n = 2;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		cp = s[0] & 0x07;
		n = 3;
	} else {
		return -1;
	}
	for (size_t i = 1; i <= n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*p = s + n + 1;
	*cp_r = cp;
	return 0;
}

int imap_utf8_to_mutf7(const char *name, struct buf *out)
{
	const uint8_t *s = (const uint8_t *)name;
	size_t start = out->len;
	while (*s != '\0') {
		if (*s >= 0x20 && *s <= 0x7e) {
			buf_append_char(out, (char)*s);
			if (*s == '&')
				buf_append_char(out, '-');
			s++;
			continue;
		}
		/* a run of characters needing encoding */
		uint32_t bits = 0;
		int nbits = 0;
		buf_append_char(out, '&');
		while (*s != '\0' && (*s < 0x20 || *s > 0x7e)) {
			uint32_t cp, units[2];
			size_t nunits = 1;
			if (imap_utf8_get(&s, &cp) < 0)
				goto fail;
			if (cp >= 0x10000) {
				units[0] = 0xd800 + ((cp - 0x10000) >> 10);
				units[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
				nunits = 2;
			} else {
				units[0] = cp;
			}
			for (size_t i = 0; i < nunits; i++) {
				bits = (bits << 16) | units[i];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					buf_append_char(out, imap_mutf7_b64[(bits >> nbits) & 0x3f]);
				}
				bits &= (1u << nbits) - 1;
			}
		}
		if (nbits > 0)
			buf_append_char(out, imap_mutf7_b64[(bits << (6 - nbits)) & 0x3f]);
		buf_append_char(out, '-');
	}
	return 0;
fail:
	out->len = start;
	buf_reserve(out, 0);
	out->data[out->len] = '\0';
	return -1;
}
