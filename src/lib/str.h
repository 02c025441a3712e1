/* str.h - small string helpers that replace the unsafe libc ones. */
#ifndef FACTEUR_LIB_STR_H
#define FACTEUR_LIB_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copy src into dst (size bytes); returns false (and copies a truncated,
 * terminated prefix) when src does not fit. */
bool str_copy(char *dst, size_t size, const char *src);
/* Parse a whole decimal string into [min, max]; no sign, no trailing garbage.
 * Returns 0 or -1. */
int str_to_u64(const char *s, uint64_t min, uint64_t max, uint64_t *value_r);
int str_to_long(const char *s, long min, long max, long *value_r);
/* ASCII case-insensitive comparisons (locale independent). */
int str_casecmp(const char *a, const char *b);
bool str_case_has_suffix(const char *s, const char *suffix);
/* Lower-case an ASCII string in place. */
void str_lower(char *s);
/* Newly allocated lower-case copy. */
char *str_lower_dup(const char *s);
/* Split a Postfix-style list ("a, b c\t,d") into newly allocated strings.
 * Separators are commas and white space.  Returns the count; *items_r is a
 * NULL-terminated array freed with str_list_free(). */
size_t str_list_split(const char *s, char ***items_r);
void str_list_free(char ***items);

#endif
