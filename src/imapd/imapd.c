/* imapd.c - the privileged imap role: the shared access service
 * (mail/access.c: verify, find the mailbox, become its owner) serving IMAP
 * sessions (imapd_session.c).  A Maildir user's folders are Maildir++
 * subfolders of the INBOX Maildir; an mbox user's folders are mbox files
 * under imap_mbox_directory in the home (INBOX stays in the spool).
 */
#include "imapd/imapd.h"

#include "lib/buf.h"
#include "lib/log.h"
#include "mail/access.h"
#include "mail/access_proto.h"
#include "mail/config.h"
#include "mail/role.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int imap_serve(const struct role_env *env, const struct access_login *l)
{
	struct imap_session_params sp = {
		.fd = l->fd,
		.user = l->user,
		.rip = l->rip,
		.tag = l->tag,
		.pending = l->pending,
		.pending_len = l->pending_len,
		.inbox_index_path = l->mbox_index_path,
		.line_max = (size_t)config_get_size(env->cfg, "imap_max_line_length"),
		.literal_max = (size_t)config_get_size(env->cfg, "message_size_limit"),
		.timeout_secs = config_get_time(env->cfg, "imap_timeout"),
		.max_bad_commands = (unsigned)config_get_int(env->cfg, "imap_max_bad_commands"),
	};
	if (sp.literal_max == 0) /* message_size_limit = 0: no limit; keep one */
		sp.literal_max = (size_t)1 << 30;
	sp.folders.special_use = config_get(env->cfg, "imap_special_use_folders");
	char *mbox_root = NULL;
	if (l->maildir) {
		sp.folders.layout = FOLDER_MAILDIRPP;
		sp.folders.root = l->mailbox_path;
	} else {
		sp.folders.layout = FOLDER_MBOX;
		sp.folders.inbox_path = l->mailbox_path;
		if (l->mbox_folder_dir != NULL) {
			sp.folders.root = l->mbox_folder_dir;
		} else {
			/* No home (a virtual mbox user): folders next to the mbox. */
			struct buf b = BUF_INIT;
			buf_printf(&b, "%s.folders", l->mailbox_path);
			mbox_root = buf_steal(&b);
			sp.folders.root = mbox_root;
		}
	}
	int status = imap_session_run(&sp);
	free(mbox_root);
	return status;
}

static void imap_internal_error(int fd, const char *tag)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s NO [SERVERBUG] Internal error occurred. Refer to server log.\r\n",
		   tag != NULL && tag[0] != '\0' ? tag : "*");
	(void)send(fd, b.data, b.len, MSG_NOSIGNAL);
	buf_deinit(&b);
}

static const struct access_service imap_service = {
	.name = "imap",
	.socket_name = IMAP_PROTO_SOCKET_NAME,
	.max_sessions_param = "imap_max_sessions",
	.serve = imap_serve,
	.internal_error = imap_internal_error,
};

int imap_main(const struct role_env *env)
{
	return access_main(env, &imap_service);
}
