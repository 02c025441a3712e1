/* str.c - see str.h. */
#include "str.h"
#include "mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool str_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	bool fits = n < size;
	if (size == 0)
		return false;
	if (!fits)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return fits;
}

int str_to_u64(const char *s, uint64_t min, uint64_t max, uint64_t *value_r)
{
	uint64_t v = 0;
	if (*s == '\0')
		return -1;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
			return -1;
	}
	if (v < min || v > max)
		return -1;
	*value_r = v;
	return 0;
}

int str_to_long(const char *s, long min, long max, long *value_r)
{
	char *end;
	if (*s == '\0')
		return -1;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*value_r = v;
	return 0;
}

static int lc(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

int str_casecmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		int ca = lc((unsigned char)*a), cb = lc((unsigned char)*b);
		if (ca != cb || ca == 0)
			return ca - cb;
	}
}

bool str_case_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && str_casecmp(s + n - m, suffix) == 0;
}

void str_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)lc((unsigned char)*s);
}

char *str_lower_dup(const char *s)
{
	char *d = xstrdup(s);
	str_lower(d);
	return d;
}

size_t str_list_split(const char *s, char ***items_r)
{
	size_t n = 0;
	char **items = xcalloc(1, sizeof(char *));
	const char *p = s;
	while (*p != '\0') {
		while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (*p == '\0')
			break;
		const char *start = p;
		int depth = 0; /* keep inline:{ a=b, c=d } in one item */
		while (*p != '\0') {
			if (*p == '{')
				depth++;
			else if (*p == '}' && depth > 0)
				depth--;
			else if (depth == 0 && (*p == ',' || *p == ' ' || *p == '\t' ||
						*p == '\n' || *p == '\r'))
				break;
			p++;
		}
		items = xreallocarray(items, n + 2, sizeof(char *));
		items[n++] = xstrndup(start, (size_t)(p - start));
		items[n] = NULL;
	}
	*items_r = items;
	return n;
}

void str_list_free(char ***items)
{
	if (*items == NULL)
		return;
	for (char **p = *items; *p != NULL; p++)
		free(*p);
	free(*items);
	*items = NULL;
}
