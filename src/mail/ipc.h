/* ipc.h - the private sockets between facteur processes: SOCK_SEQPACKET
 * UNIX sockets under QDIR/private/ (one packet per request or reply). */
#ifndef FACTEUR_MAIL_IPC_H
#define FACTEUR_MAIL_IPC_H

#include <stdbool.h>
#include <sys/types.h>

struct role_env;

/* Listen on QDIR/NAME ("private/local"): stale socket removed, mode 0600,
 * owned by mail_owner (when started as root), non-blocking.  Startup
 * failures are fatal (log_fatal). */
int ipc_listen(const struct role_env *env, const char *name);
/* Accept one connection; -1 with errno EAGAIN when none is waiting, and
 * -1 (connection closed, warning logged) when the peer is neither
 * mail_owner nor our own uid (SO_PEERCRED). */
int ipc_accept(const struct role_env *env, int listen_fd);

#endif
