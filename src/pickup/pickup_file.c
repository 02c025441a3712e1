/* pickup_file.c - one maildrop file to one queue file (see pickup_int.h).
 *
 * Called by pickup_scan() for every file of QDIR/maildrop.  The file comes
 * from any local user: its owner (fstat st_uid) is the only identity we
 * believe; its content is parsed with limits (maildrop.c).  Order of the
 * durable steps: queue file committed into incoming/ (fsync, rename, dir
 * fsync), then the maildrop file unlinked and maildrop/ fsync'd, then the
 * log lines and the queue manager's wake-up.
 */
#include "pickup/pickup_int.h"
#include "mail/maildrop.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/addr.h"
#include "mail/cleanup.h"
#include "mail/config.h"
#include "mail/header.h"
#include "mail/mail_log.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "mail/table.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static int pickup_map_lookup(void *ctx, const char *key, char **value_r)
{
	const char *error = NULL;
	int ret = table_list_lookup(ctx, key, value_r, &error);
	if (ret < 0)
		log_warning("table lookup of %s: %s", key, error != NULL ? error : "failed");
	return ret;
}

static int pickup_open_map(struct config *cfg, const char *param, struct table_list **l_r,
			   struct cleanup_map *m, const char **error_r)
{
	const char *spec = config_get(cfg, param);
	*l_r = NULL;
	m->lookup = NULL;
	m->ctx = NULL;
	if (spec == NULL || strv_trim(strv_from_cstr(spec)).len == 0)
		return 0;
	*l_r = table_list_open(spec, error_r);
	if (*l_r == NULL)
		return -1;
	m->lookup = pickup_map_lookup;
	m->ctx = *l_r;
	return 0;
}

int pickup_init(struct pickup *p, struct config *cfg, const char *queue_dir,
		const char **error_r)
{
	memset(p, 0, sizeof(*p));
	p->queue_dir = xstrdup(queue_dir);
	p->cp.myhostname = config_get(cfg, "myhostname");
	p->cp.myorigin = config_get(cfg, "myorigin");
	p->cp.mydomain = config_get(cfg, "mydomain");
	p->cp.local_domains = config_get_list(cfg, "mydestination");
	p->cp.header_size_limit = (size_t)config_get_int(cfg, "header_size_limit");
	p->cp.remove_bcc = true;
	p->cp.mail_name = config_get(cfg, "mail_name");
	p->message_size_limit = config_get_size(cfg, "message_size_limit");
	if (pickup_open_map(cfg, "canonical_maps", &p->canonical_maps, &p->cp.canonical_maps,
			    error_r) < 0 ||
	    pickup_open_map(cfg, "sender_canonical_maps", &p->sender_canonical_maps,
			    &p->cp.sender_canonical_maps, error_r) < 0 ||
	    pickup_open_map(cfg, "recipient_canonical_maps", &p->recipient_canonical_maps,
			    &p->cp.recipient_canonical_maps, error_r) < 0 ||
	    pickup_open_map(cfg, "virtual_alias_maps", &p->virtual_alias_maps,
			    &p->cp.virtual_alias_maps, error_r) < 0) {
		pickup_deinit(p);
		return -1;
	}
	return 0;
}

void pickup_deinit(struct pickup *p)
{
	table_list_free(&p->canonical_maps);
	table_list_free(&p->sender_canonical_maps);
	table_list_free(&p->recipient_canonical_maps);
	table_list_free(&p->virtual_alias_maps);
	free(p->queue_dir);
	p->queue_dir = NULL;
}

/* Move a file we refuse to QDIR/corrupt (kept for the administrator, never
 * silently deleted).  If that fails, remove it: a malformed file left in
 * maildrop/ would be retried forever. */
static void pickup_quarantine(struct pickup *p, int dfd, const char *name, unsigned long uid,
			      const char *why)
{
	struct buf dst = BUF_INIT;
	buf_printf(&dst, "%s/%s/maildrop-%s", p->queue_dir, QUEUE_CORRUPT, name);
	if (renameat(dfd, name, AT_FDCWD, buf_cstr(&dst)) == 0) {
		log_warning("maildrop/%s: uid=%lu: %s; moved to %s", name, uid, why, buf_cstr(&dst));
		(void)fs_fsync_parent(buf_cstr(&dst));
	} else if (unlinkat(dfd, name, 0) == 0) {
		log_warning("maildrop/%s: uid=%lu: %s; removed (rename to %s: %s)", name, uid, why,
			    buf_cstr(&dst), strerror(errno));
	} else {
		log_warning("maildrop/%s: uid=%lu: %s; cannot remove: %s", name, uid, why,
			    strerror(errno));
	}
	p->n_corrupt++;
	buf_deinit(&dst);
}

/* Read the whole file (at most max bytes). */
static int pickup_read_fd(int fd, size_t max, struct buf *out)
{
	for (;;) {
		if (out->len > max) {
			errno = EFBIG;
			return -1;
		}
		buf_reserve(out, 65536);
		ssize_t n = read(fd, out->data + out->len, out->cap - out->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		out->len += (size_t)n;
		out->data[out->len] = '\0';
	}
	return 0;
}

/* Recipients collected for the queue file, without duplicates. */
struct pickup_rcpts {
	char **addr;
	char **orig;
	size_t count;
};

static void pickup_rcpts_free(struct pickup_rcpts *r)
{
	for (size_t i = 0; i < r->count; i++) {
		free(r->addr[i]);
		free(r->orig[i]);
	}
	free(r->addr);
	free(r->orig);
	memset(r, 0, sizeof(*r));
}

static int pickup_rcpts_add(struct pickup *p, struct pickup_rcpts *r, const char *given,
			    const char **error_r)
{
	char **list = NULL;
	if (given[0] == '\0')
		return 0;
	if (cleanup_rewrite_recipient(&p->cp, given, &list, error_r) < 0)
		return -1;
	for (char **a = list; *a != NULL; a++) {
		bool dup = false;
		for (size_t i = 0; i < r->count && !dup; i++)
			dup = strcmp(r->addr[i], *a) == 0;
		if (dup)
			continue;
		r->addr = xreallocarray(r->addr, r->count + 1, sizeof(*r->addr));
		r->orig = xreallocarray(r->orig, r->count + 1, sizeof(*r->orig));
		r->addr[r->count] = xstrdup(*a);
		r->orig[r->count] = xstrdup(given);
		r->count++;
	}
	str_list_free(&list);
	return 0;
}

/* sendmail -t: the addresses of To:, Cc: and Bcc: (Postfix's default
 * extract set). */
static int pickup_extract(struct pickup *p, const char *msg, size_t len, struct pickup_rcpts *r,
			  const char **error_r)
{
	struct header_block hb;
	size_t limit = p->cp.header_size_limit != 0 ? p->cp.header_size_limit :
		HEADER_SIZE_LIMIT_DEFAULT;
	if (header_block_parse(msg, len, limit, HEADER_COUNT_LIMIT_DEFAULT, &hb, error_r) < 0)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < hb.count && ret == 0; i++) {
		const struct header_field *f = &hb.fields[i];
		if (!header_name_is(f, "To") && !header_name_is(f, "Cc") &&
		    !header_name_is(f, "Bcc"))
			continue;
		char **addrs = NULL;
		if (header_extract_addresses(f->raw, &addrs) < 0) {
			log_warning("cannot parse the addresses of a %s: header; ignored", f->name);
			continue;
		}
		for (char **a = addrs; *a != NULL && ret == 0; a++)
			ret = pickup_rcpts_add(p, r, *a, error_r);
		str_list_free(&addrs);
	}
	header_block_deinit(&hb);
	return ret;
}

/* What we learn about the submitting user from the system. */
struct pickup_user {
	unsigned long uid;
	char *login;
	char *full_name;
};

static int pickup_user_lookup(uid_t uid, struct pickup_user *u)
{
	struct passwd *pw;
	errno = 0;
	pw = getpwuid(uid);
	if (pw == NULL)
		return -1;
	u->uid = (unsigned long)uid;
	u->login = xstrdup(pw->pw_name);
	u->full_name = cleanup_fullname_from_gecos(pw->pw_gecos != NULL ? pw->pw_gecos : "",
						   pw->pw_name);
	return 0;
}

/* Build and commit the queue file.  Returns 0 with *id_r set, -1
 * temporary failure, -2 the message is refused (quarantine). */
static int pickup_enqueue(struct pickup *p, const struct pickup_user *u,
			  const struct maildrop_env *env, const char *msg, size_t msg_len,
			  char *id_r, size_t id_size, char **message_id_r, const char **error_r)
{
	const char *sender_given = env->sender != NULL ? env->sender : u->login;
	char *sender = NULL;
	struct pickup_rcpts rcpts = { 0 };
	struct qfile_writer *w = NULL;
	struct buf hdr = BUF_INIT;
	struct cleanup_result res = { 0 };
	int ret = -1;
	struct timeval now;

	(void)gettimeofday(&now, NULL);
	sender = cleanup_rewrite_sender(&p->cp, sender_given, error_r);
	if (sender == NULL)
		goto out;
	for (size_t i = 0; i < env->n_rcpts; i++)
		if (pickup_rcpts_add(p, &rcpts, env->rcpts[i], error_r) < 0)
			goto out;
	if (env->extract && pickup_extract(p, msg, msg_len, &rcpts, error_r) < 0) {
		ret = -2;
		goto out;
	}
	if (rcpts.count == 0) {
		*error_r = "No recipient addresses found in message header";
		ret = -2;
		goto out;
	}
	unsigned notify_flags = 0;
	const char *notify = env->notify;
	if (notify != NULL && addr_esmtp_notify_parse(notify, &notify_flags) < 0) {
		log_warning("uid=%lu: bad DSN notify value ignored", u->uid);
		notify = NULL;
	}
	enum addr_dsn_ret dsn_ret;
	const char *ret_value = env->ret;
	if (ret_value != NULL && addr_esmtp_ret_parse(ret_value, &dsn_ret) < 0) {
		log_warning("uid=%lu: bad DSN ret value ignored", u->uid);
		ret_value = NULL;
	}

	if (qfile_writer_open(p->queue_dir, &w, error_r) < 0)
		goto out;
	if (str_copy(id_r, id_size, qfile_writer_id(w)) == false) {
		*error_r = "queue id too long";
		goto out;
	}

	struct cleanup_origin origin = {
		.type = CLEANUP_ORIGIN_LOCAL,
		.uid = u->uid,
		.login = u->login,
		.full_name = env->full_name != NULL ? env->full_name : u->full_name,
	};
	struct cleanup_envelope cenv = {
		.queue_id = id_r,
		.sender = sender,
		.recipients = (const char *const *)env->rcpts,
		.n_recipients = env->n_rcpts,
		.arrival = now.tv_sec,
	};
	if (cleanup_headers(&p->cp, &origin, &cenv, msg, msg_len, &hdr, &res, error_r) < 0) {
		/* Header too large: Postfix bounces; a lookup failure is
		 * temporary.  We cannot tell them apart here, so only the
		 * size errors are refused. */
		if (*error_r != NULL && strstr(*error_r, "limit") != NULL)
			ret = -2;
		goto out;
	}

	char num[32];
	qfile_writer_time(w, now.tv_sec, (long)now.tv_usec);
	(void)snprintf(num, sizeof(num), "%lu", u->uid);
	qfile_writer_attr(w, "uid", num);
	qfile_writer_attr(w, "login", u->login);
	qfile_writer_attr(w, "proto", "local");
	if (ret_value != NULL)
		qfile_writer_attr(w, "ret", ret_value);
	if (env->envid != NULL)
		qfile_writer_attr(w, "envid", env->envid);
	qfile_writer_sender(w, sender);
	for (size_t i = 0; i < rcpts.count; i++) {
		struct qfile_rcpt_in r = {
			.address = rcpts.addr[i],
			.orcpt = NULL,
			.notify = notify,
			.orig_to = rcpts.orig[i],
		};
		qfile_writer_rcpt(w, &r);
	}
	qfile_writer_end_envelope(w);

	/* Headers as cleanup made them, the separator, then the body. */
	buf_append_char(&hdr, '\n');
	qfile_writer_content(w, hdr.data, hdr.len);
	size_t body = res.header_end;
	if (body < msg_len && msg[body] == '\n')
		body++;
	for (size_t off = body; off < msg_len;) {
		size_t n = msg_len - off < QFILE_CONTENT_CHUNK ? msg_len - off : QFILE_CONTENT_CHUNK;
		qfile_writer_content(w, msg + off, n);
		off += n;
	}
	if (body < msg_len && msg[msg_len - 1] != '\n')
		qfile_writer_content(w, "\n", 1);
	if (qfile_writer_commit(&w, QUEUE_INCOMING, error_r) < 0)
		goto out;
	*message_id_r = res.message_id;
	res.message_id = NULL;
	ret = 0;
out:
	if (w != NULL)
		qfile_writer_abort(&w);
	cleanup_result_deinit(&res);
	buf_deinit(&hdr);
	pickup_rcpts_free(&rcpts);
	free(sender);
	return ret;
}

int pickup_file(struct pickup *p, int dfd, const char *name, time_t now)
{
	struct maildrop_env env;
	struct pickup_user user = { 0 };
	struct buf data = BUF_INIT;
	const char *error = NULL;
	char *message_id = NULL;
	char id[QFILE_ID_MAX];
	int ret = 0;

	/* O_NONBLOCK: a user could create a FIFO here to hang us. */
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP) {
			pickup_quarantine(p, dfd, name, 0, "symbolic link");
			return 0;
		}
		log_warning("open %s/maildrop/%s: %s", p->queue_dir, name, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		log_warning("fstat %s/maildrop/%s: %s", p->queue_dir, name, strerror(errno));
		(void)close(fd);
		return -1;
	}
	unsigned long uid = (unsigned long)st.st_uid;
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		(void)close(fd);
		pickup_quarantine(p, dfd, name, uid, "not a regular file with one link");
		return 0;
	}
	if ((st.st_mode & 07777) != 0644) {
		(void)close(fd);
		/* Still being written by sendmail, or abandoned by a sendmail
		 * that died before publishing it. */
		if (now - st.st_mtime >= MAILDROP_ABANDON_AGE) {
			if (unlinkat(dfd, name, 0) == 0)
				log_warning("maildrop/%s: uid=%lu: removed incomplete file abandoned "
					    "since %ld s", name, uid, (long)(now - st.st_mtime));
			p->n_abandoned++;
		}
		return 0;
	}
	size_t max = MAILDROP_ENVELOPE_MAX;
	if (p->message_size_limit > 0 && p->message_size_limit < SIZE_MAX - max)
		max += (size_t)p->message_size_limit;
	else
		max = SIZE_MAX / 2;
	if ((uint64_t)st.st_size > (uint64_t)max) {
		(void)close(fd);
		pickup_quarantine(p, dfd, name, uid, "message file too big");
		return 0;
	}
	if (pickup_read_fd(fd, max, &data) < 0) {
		int saved = errno;
		(void)close(fd);
		if (saved == EFBIG) {
			pickup_quarantine(p, dfd, name, uid, "message file too big");
			buf_deinit(&data);
			return 0;
		}
		log_warning("read %s/maildrop/%s: %s", p->queue_dir, name, strerror(saved));
		buf_deinit(&data);
		return -1;
	}
	(void)close(fd);

	size_t body_off = 0;
	if (maildrop_parse(data.data, data.len, &env, &body_off, &error) < 0) {
		pickup_quarantine(p, dfd, name, uid, error);
		buf_deinit(&data);
		return 0;
	}
	if (p->message_size_limit > 0 && data.len - body_off > p->message_size_limit) {
		pickup_quarantine(p, dfd, name, uid, "message file too big");
		goto out;
	}
	if (pickup_user_lookup(st.st_uid, &user) < 0) {
		pickup_quarantine(p, dfd, name, uid, "no login name found for this user ID");
		goto out;
	}

	errno = 0;
	int r = pickup_enqueue(p, &user, &env, (const char *)data.data + body_off,
			       data.len - body_off, id, sizeof(id), &message_id, &error);
	if (r == -2) {
		pickup_quarantine(p, dfd, name, uid, error);
		goto out;
	}
	if (r < 0) {
		log_warning("maildrop/%s: uid=%lu: cannot queue: %s%s%s", name, uid,
			    error != NULL ? error : "error", errno != 0 ? ": " : "",
			    errno != 0 ? strerror(errno) : "");
		ret = -1;
		goto out;
	}
	/* At-least-once: the queue file is durable; if we die before the
	 * unlink is durable too, the message is picked up again. */
	qfile_crash_point("pickup-before-unlink");
	if (unlinkat(dfd, name, 0) < 0)
		log_warning("unlink %s/maildrop/%s: %s (the message may be queued twice)",
			    p->queue_dir, name, strerror(errno));
	else if (fsync(dfd) < 0)
		log_warning("fsync %s/maildrop: %s", p->queue_dir, strerror(errno));

	struct buf line = BUF_INIT;
	mail_log_pickup(&line, id, uid, env.sender != NULL ? env.sender : user.login);
	log_info("%s", buf_cstr(&line));
	buf_reset(&line);
	mail_log_message_id(&line, id, message_id);
	log_info("%s", buf_cstr(&line));
	buf_reset(&line);
	buf_printf(&line, "I %s\n", id);
	if (queue_notify(p->queue_dir, "qmgr", buf_cstr(&line)) < 0)
		log_warning("wake up qmgr: %s", strerror(errno));
	buf_deinit(&line);
	p->n_queued++;
	ret = 1;
out:
	free(message_id);
	free(user.login);
	free(user.full_name);
	maildrop_env_deinit(&env);
	buf_deinit(&data);
	return ret;
}

int pickup_scan(struct pickup *p, time_t now)
{
	struct buf path = BUF_INIT;
	int queued = 0;
	buf_printf(&path, "%s/%s", p->queue_dir, QUEUE_MAILDROP);
	DIR *d = opendir(buf_cstr(&path));
	if (d == NULL) {
		log_warning("opendir %s: %s", buf_cstr(&path), strerror(errno));
		buf_deinit(&path);
		return 0;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!maildrop_name_valid(de->d_name))
			continue;
		if (pickup_file(p, dirfd(d), de->d_name, now) > 0)
			queued++;
	}
	(void)closedir(d);
	buf_deinit(&path);
	return queued;
}
