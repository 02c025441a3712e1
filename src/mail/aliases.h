/* aliases.h - aliases(5): parse, compile, and split right-hand sides.
 *
 * Source format: "name: value, value, ..." with continuation lines that
 * start with white space; comments start with '#' at the start of a line.
 * Names are folded to lower case; the left side may be quoted.  Values are
 * addresses, "|command", "/file/name", ":include:/file/name" (quoted forms
 * "\"|cmd with, comma\"" allowed).
 *
 * Compilation (facteur aliases / newaliases) writes the LMDB database of the
 * hash:/lmdb: tables named in alias_database; lookups then use the generic
 * table module (table.h), so an aliases database is a table whose values are
 * the raw right-hand sides.
 */
#ifndef FACTEUR_MAIL_ALIASES_H
#define FACTEUR_MAIL_ALIASES_H

#include <stddef.h>

struct config_diags;

enum alias_target_kind {
	ALIAS_TARGET_ADDRESS,
	ALIAS_TARGET_PIPE,    /* value after '|' */
	ALIAS_TARGET_FILE,    /* absolute path */
	ALIAS_TARGET_INCLUDE, /* path after ":include:" */
};

struct alias_target {
	enum alias_target_kind kind;
	char *value;
};

/* Split a right-hand side into targets.  Returns the number of targets (0
 * for an empty side) and a newly allocated array freed by
 * alias_targets_free(); -1 with *error_r on a syntax error. */
int aliases_parse_rhs(const char *rhs, struct alias_target **targets_r, const char **error_r);
void alias_targets_free(struct alias_target **targets, size_t count);

/* Compile one alias database spec ("hash:/etc/aliases" or a bare path,
 * taken as hash:) into LMDB.  Problems go to diags as file:line: message. */
int aliases_compile(const char *spec, struct config_diags *diags);

/* Parse an aliases(5) source file: cb gets each entry's lower-cased name,
 * its trimmed right-hand side (already checked with aliases_parse_rhs) and
 * line number; it returns 0 to go on, -1 to stop.  Problems go to diags.
 * Returns 0, or -1 on a read or syntax error or when cb stopped. */
int aliases_source_parse(const char *path,
			 int (*cb)(void *ctx, const char *name, const char *rhs, unsigned line),
			 void *ctx, struct config_diags *diags);

#endif
