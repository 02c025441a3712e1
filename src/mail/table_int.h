/* table_int.h - internals shared by table.c, table_lmdb.c, table_regexp.c
 * and aliases.c.  Not for other modules: they use table.h and aliases.h.
 *
 * A struct table is a small "object": the dispatcher (table.c) parses the
 * "type:name" spec and hands the struct to the type's open function, which
 * fills priv, lookup and free_priv.
 */
#ifndef FACTEUR_MAIL_TABLE_INT_H
#define FACTEUR_MAIL_TABLE_INT_H

#include "lib/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct config_diags;

/* Longest logical line (after joining continuation lines), without the
 * newline.  Longer is a syntax error reported with file:line. */
#define TABLE_LINE_MAX 65536
/* Largest source file read into memory (texthash, regexp, map, aliases). */
#define TABLE_SOURCE_MAX ((size_t)1 << 30)

struct table {
	char *spec; /* "type:name" without any "proxy:" prefix */
	char *type;
	char *name;
	/* Keys are folded to lower case before lookup (fixed-string tables). */
	bool fold_key;
	/* Last lookup error, returned through error_r. */
	struct buf error;
	void *priv;
	int (*lookup)(struct table *t, const char *key, char **value_r, const char **error_r);
	void (*free_priv)(void *priv);
};

/* Format an open-time error into a static buffer (overwritten by the next
 * call) and return it. */
const char *table_open_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Format a lookup error into t->error and return it. */
const char *table_lookup_error(struct table *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The first error of diags as "file:line: message" (static buffer), or
 * NULL when there is none. */
const char *table_diags_first_error(const struct config_diags *diags);

/* Split text (a whole source file; file names it in diagnostics) into
 * logical lines: comment lines (first non-blank character '#') and blank
 * lines are skipped, lines starting with white space continue the previous
 * one (the newline is dropped, the white space kept), the result is
 * trimmed at both ends.  cb gets a writable NUL-terminated line and the
 * number of its first physical line; it reports its own problems to diags
 * and returns 0 to go on, -1 to stop.  Returns 0, or -1 when cb stopped or
 * an error was added to diags. */
int table_lines_parse(const char *file, const char *text, size_t len,
		      int (*cb)(void *ctx, char *line, unsigned lineno), void *ctx,
		      struct config_diags *diags);
/* Same, reading the file first ("file: open: reason" on failure). */
int table_lines_read(const char *path, int (*cb)(void *ctx, char *line, unsigned lineno),
		     void *ctx, struct config_diags *diags);

/* Type back ends: fill t->priv, t->lookup, t->free_priv from t->name.
 * Return 0 or -1 with *error_r (static). */
int table_lmdb_open(struct table *t, const char **error_r);
int table_regexp_open(struct table *t, const char **error_r);
int table_pcre_open(struct table *t, const char **error_r);
/* Like table_regexp_open/table_pcre_open but reporting every syntax error
 * to diags (facteur check). */
int table_regexp_check(const char *path, bool is_pcre, struct config_diags *diags);

/* The LMDB file of a hash:/lmdb: table: "<path>.lmdb" (newly allocated). */
char *table_lmdb_db_path(const char *path);

/* Build a new LMDB file for a compiled table.  Entries go into
 * "<db_path>.tmp.<pid>"; commit renames it over db_path and fsyncs the
 * directory, so readers see the old or the new database, never a mix. */
struct table_lmdb_writer;
struct table_lmdb_writer *table_lmdb_writer_new(const char *db_path, size_t source_size,
						mode_t mode, const char **error_r);
/* Returns 1 stored, 0 the key was already there (the first value stays:
 * postmap's behaviour), -1 error (key too long, I/O). */
int table_lmdb_writer_put(struct table_lmdb_writer *w, const char *key, const char *value,
			  const char **error_r);
/* Commit and publish; frees w in every case. */
int table_lmdb_writer_commit(struct table_lmdb_writer **w, const char **error_r);
/* Drop the temporary file; frees w. */
void table_lmdb_writer_abort(struct table_lmdb_writer **w);

/* The source path of a compilable spec: "hash:/p", "lmdb:/p" or a bare
 * "/p" (postmap's default type is hash).  Returns the path (pointing into
 * spec) or NULL with *error_r (static). */
const char *table_compile_path(const char *spec, const char **error_r);

/* Tests: the i-th table of a list (NULL past the end). */
struct table_list;
struct table *table_list_get(struct table_list *l, size_t i);

/* Tests: make the next lookup of a hash:/lmdb: table stat its file again
 * (normally done at most once per second). */
void table_lmdb_recheck_now(struct table *t);


/* A source-file parser: table_source_parse (postmap format) or
 * aliases_source_parse (aliases(5)). */
typedef int table_source_parser(const char *path,
				int (*cb)(void *ctx, const char *key, const char *value, unsigned line),
				void *ctx, struct config_diags *diags);
/* Compile the source named by spec into its LMDB file with parse; what
 * prefixes spec errors ("alias database: ").  0 or -1 (diags). */
int table_lmdb_compile_source(const char *spec, struct config_diags *diags,
			      table_source_parser *parse, const char *what);

#endif
