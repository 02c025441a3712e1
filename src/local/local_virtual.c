/* local_virtual.c - where a virtual mailbox is and whose it is
 * (class=virtual requests), with Postfix's virtual(8) meaning:
 *   virtual_mailbox_maps: address (or "@domain") -> path under
 *     virtual_mailbox_base; a trailing '/' means Maildir, else mbox;
 *   virtual_uid_maps / virtual_gid_maps: address (or "@domain") -> number
 *     ("static:5000" matches every key).
 * When facteur does not run as root the mailbox is written as the
 * invoking user and the uid/gid maps are not consulted.  Called by the
 * worker (root or the invoking user) before it forks the delivery child.
 */
#include "local/local.h"

#include "mail/config.h"
#include "mail/table.h"

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Look up address, then "@domain".  1/0/-1 as table_list_lookup. */
static int local_virtual_lookup(struct config *cfg, const char *param, const char *address,
				char **value_r, struct buf *err)
{
	const char *spec = config_get(cfg, param);
	if (spec == NULL || spec[0] == '\0')
		return 0;
	const char *error = NULL;
	struct table_list *l = table_list_open(spec, &error);
	if (l == NULL) {
		buf_printf(err, "%s: %s", param, error != NULL ? error : "cannot open");
		return -1;
	}
	int r = table_list_lookup(l, address, value_r, &error);
	const char *at = strrchr(address, '@');
	if (r == 0 && at != NULL)
		r = table_list_lookup(l, at, value_r, &error);
	if (r < 0)
		buf_printf(err, "%s: %s", param, error != NULL ? error : "lookup failed");
	table_list_free(&l);
	return r;
}

static int local_virtual_id(struct config *cfg, const char *param, const char *address,
			    unsigned long *id_r, struct local_result *res)
{
	struct buf err = BUF_INIT;
	char *value = NULL;
	int r = local_virtual_lookup(cfg, param, address, &value, &err);
	int ret = -1;
	uint64_t id;
	if (r < 0) {
		local_result_set(res, LOCAL_TEMPFAIL, "4.3.0", "%s", buf_cstr(&err));
	} else if (r == 0) {
		local_result_set(res, LOCAL_TEMPFAIL, "4.3.5", "%s: no entry for %s", param, address);
	} else if (str_to_u64(value, 1, 0x7fffffffu, &id) < 0) {
		/* uid/gid 0 is refused: a table must not make us write as root. */
		local_result_set(res, LOCAL_TEMPFAIL, "4.3.5", "%s: bad value \"%s\" for %s", param,
				 value, address);
	} else {
		*id_r = (unsigned long)id;
		ret = 0;
	}
	free(value);
	buf_deinit(&err);
	return ret;
}

int local_virtual_resolve(struct config *cfg, const char *address, bool as_root,
			  struct local_virtual_dest *d, struct local_result *res)
{
	memset(d, 0, sizeof(*d));
	char *key = str_lower_dup(address);
	struct buf err = BUF_INIT;
	char *value = NULL;
	int ret = -1;
	int r = local_virtual_lookup(cfg, "virtual_mailbox_maps", key, &value, &err);
	if (r < 0) {
		local_result_set(res, LOCAL_TEMPFAIL, "4.3.0", "%s", buf_cstr(&err));
		goto out;
	}
	if (r == 0) {
		local_result_set(res, LOCAL_PERMFAIL, "5.1.1", "unknown user: \"%s\"", address);
		goto out;
	}
	const char *base = config_get(cfg, "virtual_mailbox_base");
	struct strv v = strv_trim(strv_from_cstr(value));
	char *rel = strv_dup(v);
	/* The map names a place under the base, never outside it. */
	if (rel[0] == '\0' || strstr(rel, "..") != NULL || base == NULL || base[0] != '/') {
		local_result_set(res, LOCAL_TEMPFAIL, "4.3.5",
				 "bad virtual mailbox \"%s\" for %s (base \"%s\")", rel, address,
				 base != NULL ? base : "");
		free(rel);
		goto out;
	}
	size_t n = strlen(rel);
	d->is_maildir = rel[n - 1] == '/';
	while (n > 0 && rel[n - 1] == '/')
		rel[--n] = '\0';
	const char *r0 = rel;
	while (*r0 == '/')
		r0++;
	struct buf path = BUF_INIT;
	buf_printf(&path, "%s/%s", base, r0);
	d->path = buf_steal(&path);
	free(rel);
	if (as_root) {
		unsigned long uid, gid;
		if (local_virtual_id(cfg, "virtual_uid_maps", key, &uid, res) < 0 ||
		    local_virtual_id(cfg, "virtual_gid_maps", key, &gid, res) < 0)
			goto out;
		d->uid = (uid_t)uid;
		d->gid = (gid_t)gid;
	} else {
		d->uid = geteuid();
		d->gid = getegid();
	}
	ret = 0;
out:
	free(key);
	free(value);
	buf_deinit(&err);
	if (ret < 0) {
		free(d->path);
		d->path = NULL;
	}
	return ret;
}
