/* log.c - see log.h.  One formatted line per call, written with a single
 * write(2) so that concurrent processes appending to one file never
 * interleave within a line. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static char log_role[64] = "facteur";
static char log_prefix[64] = "facteur"; /* syslog_name */
static char log_ident[160] = "facteur";
static char log_hostname[256] = "localhost";
static char log_path[4096];
static enum log_dest log_dest = LOG_DEST_STDERR;
static int log_fd = 2;
static bool log_debug_on;

static void log_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void log_open_dest(void)
{
	if (log_dest == LOG_DEST_SYSLOG) {
		closelog();
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	} else if (log_dest == LOG_DEST_FILE) {
		int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0) {
			/* Fall back to stderr rather than losing the reason. */
			dprintf(2, "facteur: open %s: %s\n", log_path, strerror(errno));
			log_fd = 2;
			return;
		}
		if (log_fd > 2)
			(void)close(log_fd);
		log_fd = fd;
	} else {
		log_fd = 2;
	}
}

void log_set_role(const char *role)
{
	log_copy(log_role, sizeof(log_role), role);
	(void)snprintf(log_ident, sizeof(log_ident), "%s/%s", log_prefix, log_role);
	if (strcmp(role, "facteur") == 0)
		log_copy(log_ident, sizeof(log_ident), log_prefix);
	if (log_dest == LOG_DEST_SYSLOG)
		log_open_dest();
}

void log_set_name(const char *name)
{
	log_copy(log_prefix, sizeof(log_prefix), *name != '\0' ? name : "facteur");
	log_set_role(log_role);
}

void log_set_hostname(const char *hostname)
{
	log_copy(log_hostname, sizeof(log_hostname), hostname);
}

void log_init(const char *role, enum log_dest dest, const char *file_path)
{
	log_dest = dest;
	if (file_path != NULL)
		log_copy(log_path, sizeof(log_path), file_path);
	log_set_role(role);
	log_open_dest();
}

void log_reopen(void)
{
	if (log_dest == LOG_DEST_FILE)
		log_open_dest();
}

void log_set_debug(bool enabled) { log_debug_on = enabled; }
bool log_debug_enabled(void) { return log_debug_on; }

void log_vmsg(int priority, const char *prefix, const char *fmt, va_list ap)
{
	char text[4096];
	int saved_errno = errno;

	(void)vsnprintf(text, sizeof(text), fmt, ap);
	/* A log line is one line: control characters from peers are
	 * replaced so that nobody can forge a second line. */
	for (char *p = text; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	if (log_dest == LOG_DEST_SYSLOG) {
		syslog(priority, "%s%s", prefix, text);
	} else {
		char line[4600];
		char stamp[32];
		struct timespec ts;
		struct tm tm;
		(void)clock_gettime(CLOCK_REALTIME, &ts);
		(void)localtime_r(&ts.tv_sec, &tm);
		(void)strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
		int n = snprintf(line, sizeof(line), "%s %s %s[%ld]: %s%s\n",
				 stamp, log_hostname, log_ident, (long)getpid(),
				 prefix, text);
		if (n < 0)
			n = 0;
		if ((size_t)n >= sizeof(line)) {
			n = sizeof(line) - 1;
			line[n - 1] = '\n';
		}
		ssize_t w = write(log_fd, line, (size_t)n);
		(void)w; /* nowhere left to report a failed log write */
	}
	errno = saved_errno;
}

#define LOG_FN(name, prio, prefix)                                  \
	void name(const char *fmt, ...)                             \
	{                                                           \
		va_list ap;                                         \
		va_start(ap, fmt);                                  \
		log_vmsg(prio, prefix, fmt, ap);                    \
		va_end(ap);                                         \
	}

LOG_FN(log_info, LOG_INFO, "")
LOG_FN(log_warning, LOG_WARNING, "warning: ")
LOG_FN(log_error, LOG_ERR, "error: ")

void log_debug(const char *fmt, ...)
{
	if (!log_debug_on)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_DEBUG, "debug: ", fmt, ap);
	va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_CRIT, "fatal: ", fmt, ap);
	va_end(ap);
	exit(1);
}

void log_panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_CRIT, "panic: ", fmt, ap);
	va_end(ap);
	abort();
}
