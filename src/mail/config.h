/* config.h - main.cf: Postfix syntax, parameter table, defaults, checks.
 *
 * Syntax (as postconf(5)): "name = value" lines; lines starting with white
 * space continue the previous line; "#" starts a comment only at the start of
 * a (logical) line; "$name", "${name}" and "$(name)" expand to other
 * parameters when the value is read (lazily, recursion-limited); Postfix's
 * "${name?value}" and "${name:value}" conditionals are honoured.
 *
 * Every parameter facteur knows has a type and a default (config_params.c).
 * A Postfix parameter facteur does not implement is a warning; a value that
 * does not parse for an implemented parameter, or an unknown name close to
 * an implemented one (a likely misspelling), is an error.
 */
#ifndef FACTEUR_MAIL_CONFIG_H
#define FACTEUR_MAIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;

/* One problem found while loading or checking: printed as
 * "file:line: message" (or "file: message" when line is 0). */
struct config_diag {
	char *file;
	unsigned line;
	bool is_error;
	char *message;
};

struct config_diags {
	struct config_diag *items;
	size_t count;
	size_t n_errors;
};

/* New configuration holding only defaults.  Never NULL. */
struct config *config_new(void);
void config_free(struct config **cfg);

/* Read DIR/main.cf (a missing file is not an error: defaults apply).
 * Problems are appended to diags.  Returns 0, or -1 when the file could not
 * be read at all or has errors (diags->n_errors > 0). */
int config_load(struct config *cfg, const char *config_dir, struct config_diags *diags);
/* Parse main.cf text given in memory (used by tests and the fuzzer); file
 * is the name used in diagnostics. */
int config_load_text(struct config *cfg, const char *file, const char *text,
		     size_t len, struct config_diags *diags);
/* Set one parameter (command line overrides, tests). */
void config_set(struct config *cfg, const char *name, const char *value);

/* Validate the whole configuration after loading, once $names are
 * expanded: every implemented parameter set in main.cf (or by config_set)
 * parses, has no $name loop, the tables named by *_maps, alias_database,
 * header_checks and body_checks have a known type ("hash:", "lmdb:",
 * "texthash:", "inline:{...}", "static:", "regexp:", "pcre:",
 * "[proxy:]unix:passwd.byname"; whether they exist is the table module's
 * business), listeners are "address:port" / "[ipv6]:port".  Appends only
 * what config_load could not see (no diagnostic twice); returns -1 when it
 * added an error. */
int config_check(struct config *cfg, struct config_diags *diags);

/* The expanded value of a parameter: the main.cf value or the default,
 * with $name expanded.  Never NULL for a known parameter ("" when empty);
 * NULL for a name that is neither set nor known.  The string is owned by
 * cfg and stays valid until config_free(). */
const char *config_get(struct config *cfg, const char *name);
/* Typed accessors; they abort (log_panic) if name is not a known parameter
 * of that type: values were validated by config_load/config_check. */
bool config_get_bool(struct config *cfg, const char *name);
long config_get_int(struct config *cfg, const char *name);
/* Time parameters in seconds, with the parameter's default unit applied to
 * bare numbers (delay_warning_time = 4 means 4 hours). */
long config_get_time(struct config *cfg, const char *name);
uint64_t config_get_size(struct config *cfg, const char *name);
/* List parameter split on commas and white space (str_list_split), kept in
 * cfg: NULL-terminated array valid until config_free(). */
char **config_get_list(struct config *cfg, const char *name);

/* The value as written in main.cf (or the default), without $name
 * expansion; NULL for a name that is neither set nor known.  Owned by cfg,
 * valid until config_free() or the next config_set()/config_load() of that
 * name.  Used for mailbox_command and forward_path, whose $user, $home,
 * $extension, $DOMAIN... are expanded at delivery time (as Postfix's
 * local(8) does), not when main.cf is read. */
const char *config_get_raw(struct config *cfg, const char *name);

/* Every parameter name facteur knows (implemented or not), sorted by name:
 * i < config_param_count(). */
size_t config_param_count(void);
const char *config_param_name(size_t i);
/* True when name is a parameter facteur implements. */
bool config_param_is_implemented(const char *name);

/* Print "name = expanded value" lines to fd, sorted by name, like
 * postconf(1): every implemented parameter plus every other name set in
 * main.cf; with only_non_default, only the names set in main.cf or by
 * config_set() (like postconf -n). */
void config_dump(struct config *cfg, int fd, bool only_non_default);

/* Line of main.cf where name was set, 0 when the default applies (for
 * diagnostics about a parameter's value found after loading). */
unsigned config_param_line(struct config *cfg, const char *name);

/* Parse a Postfix time value ("30s", "5m", "4h", "2d", "1w", or a bare number
 * in default_unit).  Returns 0 or -1. */
int config_parse_time(const char *value, char default_unit, long *seconds_r);

void config_diags_init(struct config_diags *diags);
void config_diags_deinit(struct config_diags *diags);
void config_diag_add(struct config_diags *diags, const char *file, unsigned line,
		     bool is_error, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Print every diagnostic to fd as "file:line: [warning: ]message". */
void config_diags_print(const struct config_diags *diags, int fd);

/* The configuration directory: -c DIR, else $FACTEUR_CONFIG, else
 * /etc/facteur. */
const char *config_dir_default(void);

#endif
