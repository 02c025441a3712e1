/* pop3d.c - the privileged pop3 role: the shared access service
 * (mail/access.c: verify, find the mailbox, become its owner) serving
 * POP3 sessions (pop3d_session.c).
 */
#include "pop3d/pop3d.h"

#include "mail/access.h"
#include "mail/access_proto.h"
#include "mail/config.h"
#include "mail/role.h"

#include <sys/socket.h>

static int pop3_serve(const struct role_env *env, const struct access_login *l)
{
	struct pop3_session_params sp = {
		.fd = l->fd,
		.user = l->user,
		.rip = l->rip,
		.mailbox_path = l->mailbox_path,
		.maildir = l->maildir,
		.mbox_index_path = l->mbox_index_path,
		.pending = l->pending,
		.pending_len = l->pending_len,
		.timeout_secs = config_get_time(env->cfg, "pop3_timeout"),
	};
	return pop3_session_run(&sp);
}

static void pop3_internal_error(int fd, const char *tag)
{
	static const char msg[] = "-ERR [SYS/TEMP] Internal error.\r\n";
	(void)tag;
	(void)send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL);
}

static const struct access_service pop3_service = {
	.name = "pop3",
	.socket_name = POP3_PROTO_SOCKET_NAME,
	.max_sessions_param = "pop3_max_sessions",
	.serve = pop3_serve,
	.internal_error = pop3_internal_error,
};

int pop3_main(const struct role_env *env)
{
	return access_main(env, &pop3_service);
}
