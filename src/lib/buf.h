/* buf.h - growable byte buffer and non-owning string views.
 *
 * struct buf owns its bytes and grows only through buf_reserve(), which
 * checks every size computation for overflow.  The data is always kept
 * NUL-terminated (one spare byte past len) so that a buf holding text can be
 * passed as char * via buf_cstr(); binary content may contain NULs.
 *
 * struct strv is a (pointer, length) view used by parsers: parsing never
 * copies or writes NULs into its input.
 */
#ifndef FACTEUR_LIB_BUF_H
#define FACTEUR_LIB_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

struct strv {
	const char *ptr;
	size_t len;
};

#define BUF_INIT { NULL, 0, 0 }

void buf_init(struct buf *b);
void buf_deinit(struct buf *b);
/* Make room for extra more bytes (plus the NUL).  Aborts on overflow or out
 * of memory: a mail server that cannot allocate small buffers cannot go on. */
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_append_str(struct buf *b, const char *s);
void buf_append_char(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
void buf_reset(struct buf *b);
/* Remove the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* NUL-terminated view of the contents (never NULL). */
const char *buf_cstr(const struct buf *b);
/* Transfer ownership of the data (NUL-terminated, never NULL) to the caller;
 * the buf is left empty. */
char *buf_steal(struct buf *b);

static inline struct strv strv_make(const char *p, size_t n)
{
	struct strv v = { p, n };
	return v;
}
struct strv strv_from_cstr(const char *s);
bool strv_eq(struct strv a, const char *s);
bool strv_case_eq(struct strv a, const char *s);
bool strv_case_prefix(struct strv a, const char *prefix);
struct strv strv_trim(struct strv v);
/* Newly allocated NUL-terminated copy. */
char *strv_dup(struct strv v);

#endif
