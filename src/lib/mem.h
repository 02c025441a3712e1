/* mem.h - allocation wrappers that never return NULL.  Running out of memory
 * for small control structures is fatal (the master restarts the role);
 * accepted mail is already on disk, so nothing is lost. */
#ifndef FACTEUR_LIB_MEM_H
#define FACTEUR_LIB_MEM_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Allocate n elements of size bytes, overflow-checked. */
void *xreallocarray(void *p, size_t n, size_t size);
void mem_fail(const char *what) __attribute__((noreturn));

#endif
