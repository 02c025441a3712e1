/* mem.c - see mem.h. */
#include "mem.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

void mem_fail(const char *what)
{
	log_panic("out of memory: %s", what);
}

void *xmalloc(size_t size)
{
	void *p = malloc(size == 0 ? 1 : size);
	if (p == NULL)
		mem_fail("malloc");
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);
	if (p == NULL)
		mem_fail("calloc");
	return p;
}

void *xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size == 0 ? 1 : size);
	if (q == NULL)
		mem_fail("realloc");
	return q;
}

void *xreallocarray(void *p, size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total))
		mem_fail("array size overflow");
	return xrealloc(p, total);
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (p == NULL)
		mem_fail("strdup");
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (p == NULL)
		mem_fail("strndup");
	return p;
}
