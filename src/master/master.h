/* master.h - the supervisor: binds listeners, forks the roles, restarts
 * them, reloads and stops.  Only the master is a long-lived root process
 * (when started as root); it never parses network input or mail. */
#ifndef FACTEUR_MASTER_MASTER_H
#define FACTEUR_MASTER_MASTER_H

#include <stdbool.h>
#include <sys/types.h>

struct config;

struct master_opts {
	const char *config_dir;
	struct config *cfg; /* loaded and checked; the master takes ownership */
	bool foreground;
};

/* Run the master until SIGTERM/SIGINT.  Returns the exit status. */
int master_run(struct master_opts *opts);

/* Path of the pid file for a configuration (QDIR/pid/master.pid) into a
 * newly allocated string. */
char *master_pid_path(struct config *cfg);
/* pid of the running master of this configuration, 0 if none is running,
 * -1 on error (e.g. permission). */
pid_t master_running_pid(struct config *cfg);

/* Parse one listener item ("127.0.0.1:2525", "[::1]:25", "all:25",
 * "localhost:25") into socket addresses (getaddrinfo).  Used by the
 * master and by facteur check.  Returns the count (>= 1) or -1 with
 * *error_r. */
struct sockaddr_storage;
int master_listen_parse(const char *item, struct sockaddr_storage **addrs_r,
			const char **error_r);

#endif
