/* buf.c - see buf.h. */
#include "buf.h"
#include "mem.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const uint8_t buf_empty[1];

void buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void buf_deinit(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

void buf_reserve(struct buf *b, size_t extra)
{
	size_t need;
	if (__builtin_add_overflow(b->len, extra, &need) ||
	    __builtin_add_overflow(need, 1, &need))
		mem_fail("buffer size overflow");
	if (need <= b->cap)
		return;
	size_t cap = b->cap < 64 ? 64 : b->cap;
	while (cap < need) {
		if (__builtin_mul_overflow(cap, 2, &cap))
			mem_fail("buffer size overflow");
	}
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
	b->data[b->len] = '\0'; /* a fresh buffer is an empty string too */
}

void buf_append(struct buf *b, const void *data, size_t len)
{
	buf_reserve(b, len);
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void buf_append_str(struct buf *b, const char *s) { buf_append(b, s, strlen(s)); }
void buf_append_char(struct buf *b, char c) { buf_append(b, &c, 1); }

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	/* Format into the spare room first; grow and format again only when
	 * it did not fit. */
	va_list ap2;
	va_copy(ap2, ap);
	buf_reserve(b, 64);
	size_t room = b->cap - b->len;
	int n = vsnprintf((char *)b->data + b->len, room, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		mem_fail("vsnprintf failed");
	if ((size_t)n >= room) {
		buf_reserve(b, (size_t)n);
		(void)vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	}
	b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

const char *buf_cstr(const struct buf *b)
{
	return b->data != NULL ? (const char *)b->data : (const char *)buf_empty;
}

char *buf_steal(struct buf *b)
{
	char *s;
	if (b->data == NULL)
		s = xstrdup("");
	else
		s = (char *)b->data;
	buf_init(b);
	return s;
}

struct strv strv_from_cstr(const char *s) { return strv_make(s, strlen(s)); }

bool strv_eq(struct strv a, const char *s)
{
	size_t n = strlen(s);
	return a.len == n && memcmp(a.ptr, s, n) == 0;
}

bool strv_case_eq(struct strv a, const char *s)
{
	size_t n = strlen(s);
	return a.len == n && strncasecmp(a.ptr, s, n) == 0;
}

bool strv_case_prefix(struct strv a, const char *prefix)
{
	size_t n = strlen(prefix);
	return a.len >= n && strncasecmp(a.ptr, prefix, n) == 0;
}

struct strv strv_trim(struct strv v)
{
	while (v.len > 0 && isspace((unsigned char)v.ptr[0])) {
		v.ptr++;
		v.len--;
	}
	while (v.len > 0 && isspace((unsigned char)v.ptr[v.len - 1]))
		v.len--;
	return v;
}

char *strv_dup(struct strv v)
{
	char *s = xmalloc(v.len + 1);
	if (v.len > 0)
		memcpy(s, v.ptr, v.len);
	s[v.len] = '\0';
	return s;
}
