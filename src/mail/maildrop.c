/* maildrop.c - the maildrop file format (see maildrop.h): encoder and
 * writer used by `facteur sendmail`, parser used by the pickup role.
 *
 * The parser reads untrusted input (any local user writes these files):
 * every length and count is bounded, nothing is NUL-terminated in place,
 * and the body size must match the file exactly so that a truncated or
 * padded file is refused rather than half-delivered.
 */
#include "mail/maildrop.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

void maildrop_env_init(struct maildrop_env *env)
{
	memset(env, 0, sizeof(*env));
}

void maildrop_env_deinit(struct maildrop_env *env)
{
	free(env->sender);
	free(env->full_name);
	for (size_t i = 0; i < env->n_rcpts; i++)
		free(env->rcpts[i]);
	free(env->rcpts);
	free(env->notify);
	free(env->ret);
	free(env->envid);
	maildrop_env_init(env);
}

void maildrop_env_add_rcpt(struct maildrop_env *env, const char *addr)
{
	env->rcpts = xreallocarray(env->rcpts, env->n_rcpts + 1, sizeof(*env->rcpts));
	env->rcpts[env->n_rcpts++] = xstrdup(addr);
}

static bool maildrop_bytes_valid(const char *p, size_t len)
{
	if (len > MAILDROP_VALUE_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		/* Control characters would let a value end a line or forge log
		 * lines later; 8-bit text (UTF-8 names) is kept. */
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

bool maildrop_value_valid(const char *value)
{
	return maildrop_bytes_valid(value, strnlen(value, MAILDROP_VALUE_MAX + 1));
}

static int maildrop_encode_line(struct buf *out, const char *key, const char *value,
				const char **error_r)
{
	if (value == NULL)
		return 0;
	if (!maildrop_value_valid(value)) {
		*error_r = "address or option value too long or with control characters";
		return -1;
	}
	buf_printf(out, "%s %s\n", key, value);
	return 0;
}

int maildrop_envelope_encode(const struct maildrop_env *env, struct buf *out,
			     const char **error_r)
{
	if (env->n_rcpts > MAILDROP_RCPT_MAX) {
		*error_r = "too many recipients";
		return -1;
	}
	size_t start = out->len;
	buf_append_str(out, MAILDROP_VERSION_LINE "\n");
	if (maildrop_encode_line(out, "sender", env->sender, error_r) < 0 ||
	    maildrop_encode_line(out, "fullname", env->full_name, error_r) < 0)
		goto fail;
	for (size_t i = 0; i < env->n_rcpts; i++)
		if (maildrop_encode_line(out, "rcpt", env->rcpts[i], error_r) < 0)
			goto fail;
	if (env->extract)
		buf_append_str(out, "extract\n");
	if (maildrop_encode_line(out, "notify", env->notify, error_r) < 0 ||
	    maildrop_encode_line(out, "ret", env->ret, error_r) < 0 ||
	    maildrop_encode_line(out, "envid", env->envid, error_r) < 0)
		goto fail;
	buf_append_str(out, "body ");
	for (int i = 0; i < MAILDROP_SIZE_DIGITS; i++)
		buf_append_char(out, '0');
	buf_append_char(out, '\n');
	return 0;
fail:
	out->len = start;
	out->data[out->len] = '\0';
	return -1;
}

/* Keys with a value, each at most once (rcpt is handled apart). */
enum maildrop_key {
	MD_KEY_SENDER,
	MD_KEY_FULLNAME,
	MD_KEY_NOTIFY,
	MD_KEY_RET,
	MD_KEY_ENVID,
	MD_KEY_COUNT,
};

static const char *const maildrop_key_names[MD_KEY_COUNT] = {
	"sender", "fullname", "notify", "ret", "envid",
};

static char **maildrop_key_slot(struct maildrop_env *env, enum maildrop_key k)
{
	switch (k) {
	case MD_KEY_SENDER:
		return &env->sender;
	case MD_KEY_FULLNAME:
		return &env->full_name;
	case MD_KEY_NOTIFY:
		return &env->notify;
	case MD_KEY_RET:
		return &env->ret;
	case MD_KEY_ENVID:
		return &env->envid;
	case MD_KEY_COUNT:
		break;
	}
	return NULL;
}

static int maildrop_parse_line(struct maildrop_env *env, const char *line, size_t len,
			       bool *is_body_r, uint64_t *body_size_r, const char **error_r)
{
	const char *sp = memchr(line, ' ', len);
	struct strv key = strv_make(line, sp != NULL ? (size_t)(sp - line) : len);
	const char *value = sp != NULL ? sp + 1 : NULL;
	size_t value_len = sp != NULL ? len - key.len - 1 : 0;

	*is_body_r = false;
	if (strv_eq(key, "extract")) {
		if (value != NULL || env->extract) {
			*error_r = "bad or repeated extract line";
			return -1;
		}
		env->extract = true;
		return 0;
	}
	if (value == NULL) {
		*error_r = "line without a value";
		return -1;
	}
	if (!maildrop_bytes_valid(value, value_len)) {
		*error_r = "value too long or with control characters";
		return -1;
	}
	if (strv_eq(key, "body")) {
		if (value_len != MAILDROP_SIZE_DIGITS) {
			*error_r = "bad body size";
			return -1;
		}
		uint64_t size = 0;
		for (size_t i = 0; i < value_len; i++) {
			if (value[i] < '0' || value[i] > '9') {
				*error_r = "bad body size";
				return -1;
			}
			if (size > (UINT64_MAX - 9) / 10) {
				*error_r = "bad body size";
				return -1;
			}
			size = size * 10 + (uint64_t)(value[i] - '0');
		}
		*is_body_r = true;
		*body_size_r = size;
		return 0;
	}
	if (strv_eq(key, "rcpt")) {
		if (env->n_rcpts >= MAILDROP_RCPT_MAX) {
			*error_r = "too many recipients";
			return -1;
		}
		env->rcpts = xreallocarray(env->rcpts, env->n_rcpts + 1, sizeof(*env->rcpts));
		env->rcpts[env->n_rcpts++] = xstrndup(value, value_len);
		return 0;
	}
	for (int k = 0; k < MD_KEY_COUNT; k++) {
		if (!strv_eq(key, maildrop_key_names[k]))
			continue;
		char **slot = maildrop_key_slot(env, (enum maildrop_key)k);
		if (*slot != NULL) {
			*error_r = "repeated line";
			return -1;
		}
		*slot = xstrndup(value, value_len);
		return 0;
	}
	*error_r = "unknown line";
	return -1;
}

int maildrop_parse(const uint8_t *data, size_t len, struct maildrop_env *env,
		   size_t *body_off_r, const char **error_r)
{
	const char *p = (const char *)data;
	size_t pos = 0;
	bool first = true;

	maildrop_env_init(env);
	while (pos < len) {
		/* A line is at most a key, a space and the longest value. */
		size_t avail = len - pos;
		size_t scan = avail < MAILDROP_VALUE_MAX + 32 ? avail : MAILDROP_VALUE_MAX + 32;
		const char *nl = memchr(p + pos, '\n', scan);
		if (nl == NULL) {
			*error_r = scan == avail ? "truncated envelope" : "envelope line too long";
			goto fail;
		}
		size_t line_len = (size_t)(nl - (p + pos));
		const char *line = p + pos;
		pos += line_len + 1;
		if (first) {
			if (line_len != strlen(MAILDROP_VERSION_LINE) ||
			    memcmp(line, MAILDROP_VERSION_LINE, line_len) != 0) {
				*error_r = "not a facteur maildrop file or unknown version";
				goto fail;
			}
			first = false;
			continue;
		}
		bool is_body = false;
		uint64_t body_size = 0;
		if (maildrop_parse_line(env, line, line_len, &is_body, &body_size, error_r) < 0)
			goto fail;
		if (!is_body)
			continue;
		if (body_size != (uint64_t)(len - pos)) {
			*error_r = "body size does not match the file";
			goto fail;
		}
		if (env->n_rcpts == 0 && !env->extract) {
			*error_r = "no recipients";
			goto fail;
		}
		*body_off_r = pos;
		return 0;
	}
	*error_r = first ? "empty file" : "no body line";
fail:
	maildrop_env_deinit(env);
	return -1;
}

bool maildrop_name_valid(const char *name)
{
	size_t n = 0;
	for (; name[n] != '\0'; n++) {
		char c = name[n];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		if (n >= MAILDROP_NAME_LEN)
			return false;
	}
	return n == MAILDROP_NAME_LEN;
}

/* ---- writer ---- */

struct maildrop_writer {
	int fd;
	char *path;
	char *dir;
	struct buf pending;
	uint64_t body_size;
	off_t size_offset; /* where the 20 digits are */
	int error;         /* latched errno, 0 when none */
};

#define MAILDROP_FLUSH_AT 65536

static void maildrop_writer_flush(struct maildrop_writer *w)
{
	if (w->error == 0 && w->pending.len > 0 &&
	    fs_write_full(w->fd, w->pending.data, w->pending.len) < 0)
		w->error = errno != 0 ? errno : EIO;
	buf_reset(&w->pending);
}

int maildrop_writer_open(const char *queue_dir, const struct maildrop_env *env,
			 struct maildrop_writer **w_r, const char **error_r)
{
	struct buf env_text = BUF_INIT;
	if (maildrop_envelope_encode(env, &env_text, error_r) < 0) {
		buf_deinit(&env_text);
		errno = EINVAL;
		return -1;
	}
	struct maildrop_writer *w = xcalloc(1, sizeof(*w));
	w->fd = -1;
	struct buf dir = BUF_INIT;
	buf_printf(&dir, "%s/%s", queue_dir, "maildrop");
	w->dir = buf_steal(&dir);

	/* 128 random bits: the name must not be guessable, because the
	 * directory is writable by everyone (see maildrop.h). */
	for (int attempt = 0; attempt < 10 && w->fd < 0; attempt++) {
		uint8_t rnd[MAILDROP_NAME_LEN / 2];
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
			*error_r = "getrandom";
			goto fail;
		}
		struct buf path = BUF_INIT;
		buf_printf(&path, "%s/", w->dir);
		for (size_t i = 0; i < sizeof(rnd); i++)
			buf_printf(&path, "%02x", rnd[i]);
		free(w->path);
		w->path = buf_steal(&path);
		w->fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (w->fd < 0 && errno != EEXIST) {
			*error_r = "create maildrop file";
			goto fail;
		}
	}
	if (w->fd < 0) {
		*error_r = "create maildrop file";
		goto fail;
	}
	w->size_offset = (off_t)(env_text.len - MAILDROP_SIZE_OFFSET_FROM_END);
	buf_append(&w->pending, env_text.data, env_text.len);
	buf_deinit(&env_text);
	*w_r = w;
	return 0;
fail:
	buf_deinit(&env_text);
	{
		int saved = errno;
		free(w->path);
		free(w->dir);
		free(w);
		errno = saved;
	}
	return -1;
}

void maildrop_writer_body(struct maildrop_writer *w, const void *data, size_t len)
{
	buf_append(&w->pending, data, len);
	w->body_size += len;
	if (w->pending.len >= MAILDROP_FLUSH_AT)
		maildrop_writer_flush(w);
}

uint64_t maildrop_writer_body_size(const struct maildrop_writer *w)
{
	return w->body_size;
}

static void maildrop_writer_free(struct maildrop_writer **wp)
{
	struct maildrop_writer *w = *wp;
	if (w == NULL)
		return;
	if (w->fd >= 0)
		(void)close(w->fd);
	buf_deinit(&w->pending);
	free(w->path);
	free(w->dir);
	free(w);
	*wp = NULL;
}

int maildrop_writer_commit(struct maildrop_writer **wp, const char **error_r)
{
	struct maildrop_writer *w = *wp;
	char digits[MAILDROP_SIZE_DIGITS + 1];

	maildrop_writer_flush(w);
	if (w->error != 0) {
		errno = w->error;
		*error_r = "write maildrop file";
		goto fail;
	}
	uint64_t v = w->body_size;
	for (int i = MAILDROP_SIZE_DIGITS - 1; i >= 0; i--) {
		digits[i] = (char)('0' + v % 10);
		v /= 10;
	}
	digits[MAILDROP_SIZE_DIGITS] = '\0';
	if (pwrite(w->fd, digits, MAILDROP_SIZE_DIGITS, w->size_offset) != MAILDROP_SIZE_DIGITS) {
		*error_r = "write maildrop file";
		goto fail;
	}
	if (fsync(w->fd) < 0) {
		*error_r = "fsync maildrop file";
		goto fail;
	}
	/* The mode change publishes the file to the pickup: only now is it
	 * complete and on disk. */
	if (fchmod(w->fd, 0644) < 0) {
		*error_r = "chmod maildrop file";
		goto fail;
	}
	int fd = w->fd;
	w->fd = -1;
	if (close(fd) < 0) {
		*error_r = "close maildrop file";
		goto fail;
	}
	/* Ordinary users cannot open maildrop/ (mode 1733, no read bit):
	 * EACCES is expected for them. */
	if (fs_fsync_dir(w->dir) < 0 && errno != EACCES && errno != EPERM) {
		*error_r = "fsync maildrop directory";
		goto fail;
	}
	maildrop_writer_free(wp);
	return 0;
fail:
	{
		int saved = errno;
		(void)unlink(w->path);
		maildrop_writer_free(wp);
		errno = saved;
	}
	return -1;
}

void maildrop_writer_abort(struct maildrop_writer **wp)
{
	if (*wp == NULL)
		return;
	(void)unlink((*wp)->path);
	maildrop_writer_free(wp);
}
