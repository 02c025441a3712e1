/* log.h - the one logging module of facteur.
 *
 * Every process logs through these functions.  Lines carry the ident
 * "facteur/<role>[pid]" and go to syslog (facility mail), to a file
 * (maillog_file, one write(2) per line with O_APPEND so that several
 * processes can share it) or to stderr (facteur start -f).  File and stderr
 * lines have the syslog shape "Mon DD HH:MM:SS host ident[pid]: text" so that
 * pflogsumm and administrators' greps read them unchanged.
 *
 * Severity prefixes follow Postfix: "warning: ", "error: ", "fatal: ",
 * "panic: "; informational lines have none.
 */
#ifndef FACTEUR_LIB_LOG_H
#define FACTEUR_LIB_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_dest {
	LOG_DEST_STDERR,
	LOG_DEST_SYSLOG,
	LOG_DEST_FILE,
};

/* Set the role part of the ident ("smtpd" gives "facteur/smtpd") and the
 * hostname printed in file/stderr lines.  Called once per process, after
 * fork.  The strings are copied. */
void log_init(const char *role, enum log_dest dest, const char *file_path);
/* Change only the role (after a fork); keeps the destination. */
void log_set_role(const char *role);
void log_set_hostname(const char *hostname);
/* The first part of the ident (syslog_name, default "facteur"): several
 * instances on one host can log under different names, as with Postfix. */
void log_set_name(const char *name);
void log_set_debug(bool enabled);
bool log_debug_enabled(void);
/* Reopen the log file (after reload); no-op for other destinations. */
void log_reopen(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Bad startup or configuration: log and exit(1). */
void log_fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
/* Broken invariant: log and abort(). */
void log_panic(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

void log_vmsg(int priority, const char *prefix, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#endif
