/* role.c - privilege drop shared by the roles (see role.h). */
#include "mail/role.h"

#include <errno.h>
#include <grp.h>
#include <unistd.h>

int role_drop_privileges(const struct role_env *env, const char **error_r)
{
	if (!env->started_as_root || geteuid() != 0)
		return 0;
	if (setgroups(1, &env->mail_gid) < 0) {
		*error_r = "setgroups";
		return -1;
	}
	if (setgid(env->mail_gid) < 0) {
		*error_r = "setgid";
		return -1;
	}
	if (setuid(env->mail_uid) < 0) {
		*error_r = "setuid";
		return -1;
	}
	if (env->mail_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		*error_r = "root privileges could be regained after setuid";
		return -1;
	}
	return 0;
}
