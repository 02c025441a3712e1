/* table.h - Postfix-style lookup tables named "type:name".
 *
 * Types:
 *   texthash:/path   source file read at open time (no compilation)
 *   hash:/path       LMDB database /path.lmdb compiled by `facteur map`
 *   lmdb:/path       same as hash: (one compiled format: LMDB)
 *   inline:{ k1=v1, { k2 = v with spaces } }
 *   static:value     every key maps to value ("static:{ a b }" for spaces)
 *   regexp:/path     POSIX extended regexps, Postfix regexp_table(5) syntax
 *   pcre:/path       PCRE2, Postfix pcre_table(5) syntax
 *   unix:passwd.byname, unix:group.byname   getpwnam()/getgrnam(); the value
 *                    is the passwd (group) line, as Postfix's dict_unix
 *   proxy:type:name  same as type:name (the prefix is accepted and ignored)
 *
 * Duplicate keys in a source file keep the FIRST value with a warning, as
 * postmap does; a '#' after a key is part of the value (postmap does not
 * strip trailing comments).
 *
 * Source files (texthash, hash, lmdb) have postmap(1)'s format: "key value"
 * per line, comments and blank lines ignored, white-space-started lines
 * continue the previous one; keys are folded to lower case (the lookup key
 * is folded too) for hash, lmdb, texthash and inline.
 *
 * Results follow the project convention: 1 found, 0 not found, -1 error
 * (a table that cannot be read is a temporary failure for callers).
 */
#ifndef FACTEUR_MAIL_TABLE_H
#define FACTEUR_MAIL_TABLE_H

#include <stdbool.h>
#include <stddef.h>

struct table;
struct config_diags;

/* Open a table.  Returns NULL and sets *error_r (static or owned by the
 * table module until the next call) on failure. */
struct table *table_open(const char *spec, const char **error_r);
void table_free(struct table **t);
/* The "type:name" the table was opened with. */
const char *table_spec(const struct table *t);

/* Look key up.  On 1, *value_r is a newly allocated string the caller
 * frees.  For regexp/pcre tables, $1..$9 in the result are substituted. */
int table_lookup(struct table *t, const char *key, char **value_r, const char **error_r);

/* Compile the source of a hash:/lmdb: table into its LMDB file (what
 * `facteur map` does), atomically (temporary file then rename).  Syntax
 * problems are appended to diags as file:line: message.  Returns 0 or -1. */
int table_compile(const char *spec, struct config_diags *diags);
/* Check a table spec for facteur check: known type, file present, compiled
 * database present and not older than its source (warning). */
int table_check(const char *spec, struct config_diags *diags, const char *param_file,
		unsigned param_line);

/* Read a postmap(1) source file and call cb for each entry with the key
 * as written (not folded), the trimmed value and the line number of the
 * entry's first line (what `facteur map` compiles and the CLI can print).
 * cb returns 0 to go on, -1 to stop.  Syntax errors go to diags as
 * file:line: message (parsing goes on to report them all).  Returns 0, or
 * -1 on a read error, a syntax error or when cb stopped. */
int table_source_parse(const char *path,
		       int (*cb)(void *ctx, const char *key, const char *value, unsigned line),
		       void *ctx, struct config_diags *diags);

/* A list of tables searched in order ("hash:/a, regexp:/b"), as used by
 * *_maps parameters. */
struct table_list;
struct table_list *table_list_open(const char *specs, const char **error_r);
void table_list_free(struct table_list **l);
int table_list_lookup(struct table_list *l, const char *key, char **value_r,
		      const char **error_r);
size_t table_list_count(const struct table_list *l);

#endif
