/* auth.c - password verification against the passwd-file and system
 * accounts, and per-address throttling of failed logins (see auth.h).
 *
 * Secrets: the file text, computed hashes and crypt(3) work areas are
 * wiped with explicit_bzero before they are freed; the file is read into
 * one buffer sized from fstat so that no reallocation leaves copies behind.
 */
#include "mail/auth.h"

#include "mail/config.h"

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <shadow.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest passwd-file read: far above any real user list. */
#define AUTH_FILE_MAX (64u * 1024 * 1024)

enum auth_scheme {
	AUTH_SCHEME_CRYPT,
	AUTH_SCHEME_PLAIN,
};

struct auth_entry {
	char *user;
	char *hash;		/* NULL for a bad entry */
	enum auth_scheme scheme;
	uid_t uid;
	gid_t gid;
	char *home;
};

struct auth_db {
	char *path;		/* NULL: no passwd-file */
	char *name;		/* for logs: path or the name given with the text */
	bool plain_warned;	/* the {PLAIN} warning is logged once */
	bool system_users;
	struct auth_entry *entries;
	size_t count;
	/* identity of the loaded file: a change means re-read */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	struct config_diags diags;
};

bool auth_secret_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
	/* Walk all of b whatever a holds: no early exit, so the time depends
	 * on the lengths only (the length of a crypt result is public). */
	const volatile uint8_t *pa = a;
	const volatile uint8_t *pb = b;
	volatile uint8_t diff = a_len != b_len;
	for (size_t i = 0; i < b_len; i++) {
		uint8_t ca = i < a_len ? pa[i] : 0;
		diff |= ca ^ pb[i];
	}
	return diff == 0;
}

void auth_user_deinit(struct auth_user *user)
{
	free(user->name);
	free(user->home);
	user->name = NULL;
	user->home = NULL;
}

static void auth_free_secret(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void auth_entries_free(struct auth_entry *entries, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(entries[i].user);
		auth_free_secret(entries[i].hash);
		free(entries[i].home);
	}
	free(entries);
}

/* ---- passwd-file parsing ---- */

struct auth_parse {
	const char *file;
	struct config_diags *diags;
	struct auth_entry *entries;
	size_t count, cap;
	bool plain_seen;
	bool plain_warned;
};

static void auth_parse_diag(struct auth_parse *p, unsigned line, bool is_error,
			    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void auth_parse_diag(struct auth_parse *p, unsigned line, bool is_error,
			    const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (is_error)
		log_error("%s:%u: %s", p->file, line, buf_cstr(&b));
	else
		log_warning("%s:%u: %s", p->file, line, buf_cstr(&b));
	if (p->diags != NULL)
		config_diag_add(p->diags, p->file, line, is_error, "%s", buf_cstr(&b));
	buf_deinit(&b);
}

static bool auth_name_valid(struct strv v)
{
	if (v.len == 0 || v.len > AUTH_USER_MAX)
		return false;
	for (size_t i = 0; i < v.len; i++) {
		unsigned char c = (unsigned char)v.ptr[i];
		if (c < 0x21 || c == 0x7f || c == ':')
			return false;
	}
	return true;
}

/* "local@Domain" -> "local@domain"; a name without '@' is kept. */
static char *auth_name_canonical(struct strv v)
{
	char *s = strv_dup(v);
	char *at = strrchr(s, '@');
	if (at != NULL)
		str_lower(at + 1);
	return s;
}

/* Prefix that the hash of a scheme must start with (crypt(3) ids). */
static const struct {
	const char *name;
	const char *prefix;
	enum auth_scheme scheme;
} auth_schemes[] = {
	{ "CRYPT", "", AUTH_SCHEME_CRYPT },
	{ "SHA512-CRYPT", "$6$", AUTH_SCHEME_CRYPT },
	{ "SHA256-CRYPT", "$5$", AUTH_SCHEME_CRYPT },
	{ "BLF-CRYPT", "$2", AUTH_SCHEME_CRYPT },
	{ "MD5-CRYPT", "$1$", AUTH_SCHEME_CRYPT },
	{ "PLAIN", "", AUTH_SCHEME_PLAIN },
};

static int auth_parse_id(struct strv v, uint64_t *id_r)
{
	char tmp[24];
	if (v.len == 0 || v.len >= sizeof(tmp))
		return -1;
	memcpy(tmp, v.ptr, v.len);
	tmp[v.len] = '\0';
	/* (uid_t)-1 means "none": not a valid id */
	return str_to_u64(tmp, 0, UINT32_MAX - 1, id_r);
}

static void auth_parse_line(struct auth_parse *p, unsigned line, struct strv text)
{
	struct strv f[8];
	size_t nf = 0;
	size_t start = 0;
	for (size_t i = 0; i <= text.len; i++) {
		if (i == text.len || text.ptr[i] == ':') {
			if (nf == 8) {
				/* Dovecot's extra fields may contain ':'; extend the last. */
				f[7].len = i - (size_t)(f[7].ptr - text.ptr);
			} else {
				f[nf++] = strv_make(text.ptr + start, i - start);
			}
			start = i + 1;
		}
	}
	if (memchr(text.ptr, '\0', text.len) != NULL) {
		auth_parse_diag(p, line, true, "NUL byte in line; line ignored");
		return;
	}
	if (nf < 2) {
		auth_parse_diag(p, line, true, "missing password field; line ignored");
		return;
	}
	if (!auth_name_valid(f[0])) {
		auth_parse_diag(p, line, true, "invalid user name; line ignored");
		return;
	}
	const char *at = memchr(f[0].ptr, '@', f[0].len);
	if (at != NULL && (at == f[0].ptr || at == f[0].ptr + f[0].len - 1 ||
			   memchr(at + 1, '@', (size_t)(f[0].ptr + f[0].len - at - 1)) != NULL)) {
		auth_parse_diag(p, line, true, "invalid user@domain; line ignored");
		return;
	}
	struct auth_entry e = { .uid = (uid_t)-1, .gid = (gid_t)-1 };
	uint64_t id;
	if (nf > 2 && f[2].len > 0) {
		if (auth_parse_id(f[2], &id) < 0) {
			auth_parse_diag(p, line, true, "invalid uid; line ignored");
			return;
		}
		e.uid = (uid_t)id;
	}
	if (nf > 3 && f[3].len > 0) {
		if (auth_parse_id(f[3], &id) < 0) {
			auth_parse_diag(p, line, true, "invalid gid; line ignored");
			return;
		}
		e.gid = (gid_t)id;
	}
	e.user = auth_name_canonical(f[0]);
	for (size_t i = 0; i < p->count; i++) {
		if (strcmp(p->entries[i].user, e.user) == 0) {
			auth_parse_diag(p, line, false, "duplicate user %s; line ignored", e.user);
			free(e.user);
			return;
		}
	}
	if (nf > 5 && f[5].len > 0)
		e.home = strv_dup(f[5]);

	/* Password field: "{SCHEME}hash", or a bare hash meaning CRYPT as
	 * Dovecot's default_pass_scheme.  A bad scheme keeps the entry (so the
	 * user does not fall through to a system account) but marks it bad. */
	struct strv pw = f[1];
	struct strv scheme = strv_make("CRYPT", 5);
	if (pw.len > 0 && pw.ptr[0] == '{') {
		const char *close = memchr(pw.ptr, '}', pw.len);
		if (close == NULL) {
			auth_parse_diag(p, line, true, "user %s: unterminated {SCHEME}", e.user);
			goto add;
		}
		scheme = strv_make(pw.ptr + 1, (size_t)(close - pw.ptr - 1));
		pw = strv_make(close + 1, pw.len - (size_t)(close + 1 - pw.ptr));
	}
	size_t k;
	for (k = 0; k < sizeof(auth_schemes) / sizeof(auth_schemes[0]); k++) {
		if (strv_case_eq(scheme, auth_schemes[k].name))
			break;
	}
	if (k == sizeof(auth_schemes) / sizeof(auth_schemes[0])) {
		auth_parse_diag(p, line, true, "user %s: unknown password scheme {%.*s}",
				e.user, (int)(scheme.len > 64 ? 64 : scheme.len), scheme.ptr);
		goto add;
	}
	if (pw.len == 0) {
		auth_parse_diag(p, line, true, "user %s: empty password hash", e.user);
		goto add;
	}
	if (pw.len > 4096) {
		auth_parse_diag(p, line, true, "user %s: password hash too long", e.user);
		goto add;
	}
	size_t plen = strlen(auth_schemes[k].prefix);
	if (pw.len < plen || memcmp(pw.ptr, auth_schemes[k].prefix, plen) != 0) {
		auth_parse_diag(p, line, true, "user %s: hash does not match scheme {%s}",
				e.user, auth_schemes[k].name);
		goto add;
	}
	if (auth_schemes[k].scheme == AUTH_SCHEME_CRYPT && (pw.ptr[0] == '*' || pw.ptr[0] == '!')) {
		auth_parse_diag(p, line, false, "user %s: account locked", e.user);
		goto add;
	}
	e.scheme = auth_schemes[k].scheme;
	e.hash = strv_dup(pw);
	if (e.scheme == AUTH_SCHEME_PLAIN)
		p->plain_seen = true;
add:
	if (p->count == p->cap) {
		p->cap = p->cap == 0 ? 16 : p->cap * 2;
		p->entries = xreallocarray(p->entries, p->cap, sizeof(*p->entries));
	}
	p->entries[p->count++] = e;
}

static void auth_parse_text(struct auth_parse *p, const char *text, size_t len)
{
	unsigned line = 0;
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl == NULL ? len : (size_t)(nl - text);
		struct strv v = strv_make(text + pos, end - pos);
		line++;
		pos = end + 1;
		if (v.len > 0 && v.ptr[v.len - 1] == '\r')
			v.len--;
		struct strv t = strv_trim(v);
		if (t.len == 0 || t.ptr[0] == '#')
			continue;
		auth_parse_line(p, line, v);
	}
	if (p->plain_seen && !p->plain_warned)
		log_warning("%s: passwords stored in plaintext ({PLAIN}); "
			    "hash them with \"facteur pw\"", p->file);
}

static void auth_db_set_entries(struct auth_db *db, struct auth_parse *p)
{
	auth_entries_free(db->entries, db->count);
	db->entries = p->entries;
	db->count = p->count;
}

/* ---- loading and re-reading ---- */

static int auth_db_load(struct auth_db *db, const char **error_r)
{
	int fd = open(db->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (uint64_t)st.st_size > AUTH_FILE_MAX) {
		*error_r = !S_ISREG(st.st_mode) ? "not a regular file" : "cannot stat or too large";
		(void)close(fd);
		return -1;
	}
	size_t cap = (size_t)st.st_size + 1;
	char *text = xmalloc(cap);
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, text + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = strerror(errno);
			explicit_bzero(text, cap);
			free(text);
			(void)close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap)
			break; /* grew while reading: the next check re-reads it */
	}
	(void)close(fd);

	config_diags_deinit(&db->diags);
	config_diags_init(&db->diags);
	struct auth_parse p = { .file = db->path, .diags = &db->diags,
				.plain_warned = db->plain_warned };
	auth_parse_text(&p, text, len);
	db->plain_warned |= p.plain_seen;
	explicit_bzero(text, cap);
	free(text);
	auth_db_set_entries(db, &p);
	db->dev = st.st_dev;
	db->ino = st.st_ino;
	db->size = st.st_size;
	db->mtime = st.st_mtim;
	db->ctime = st.st_ctim;
	return 0;
}

static int auth_db_refresh(struct auth_db *db, const char **error_r)
{
	if (db->path == NULL)
		return 0;
	struct stat st;
	if (stat(db->path, &st) < 0) {
		*error_r = "passwd-file cannot be read";
		log_error("%s: %s", db->path, strerror(errno));
		return -1;
	}
	if (st.st_dev == db->dev && st.st_ino == db->ino && st.st_size == db->size &&
	    st.st_mtim.tv_sec == db->mtime.tv_sec && st.st_mtim.tv_nsec == db->mtime.tv_nsec &&
	    st.st_ctim.tv_sec == db->ctime.tv_sec && st.st_ctim.tv_nsec == db->ctime.tv_nsec)
		return 0;
	const char *err;
	if (auth_db_load(db, &err) < 0) {
		log_error("%s: %s", db->path, err);
		*error_r = "passwd-file cannot be read";
		return -1;
	}
	return 0;
}

/* A dummy yescrypt hash (the default of "facteur pw") to spend the same time
 * on unknown users as on known ones.  Made once per process: computing it
 * costs as much as one login. */
static char *auth_dummy_hash;
static pthread_once_t auth_dummy_once = PTHREAD_ONCE_INIT;

static void auth_dummy_init(void)
{
	char *setting = crypt_gensalt_ra("$y$", 0, NULL, 0);
	if (setting != NULL) {
		struct crypt_data *cd = xcalloc(1, sizeof(*cd));
		const char *h = crypt_r("facteur-dummy-password", setting, cd);
		if (h != NULL && h[0] == '$')
			auth_dummy_hash = xstrdup(h);
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
		free(setting);
	}
	if (auth_dummy_hash == NULL)
		auth_dummy_hash = xstrdup("$6$facteurdummy$"
					  "dHJ0Y0ZGQkZqcXZ5b3FoNXh1Z2JqUWRmZHN4dHJ0Y0ZGQkZqcXZ5b3Fo");
}

static struct auth_db *auth_db_alloc(bool system_users)
{
	struct auth_db *db = xcalloc(1, sizeof(*db));
	db->system_users = system_users;
	config_diags_init(&db->diags);
	return db;
}

struct auth_db *auth_db_new(const char *passwd_file, bool system_users, const char **error_r)
{
	struct auth_db *db = auth_db_alloc(system_users);
	/* Make the dummy hash now, not during the first unknown login. */
	pthread_once(&auth_dummy_once, auth_dummy_init);
	if (passwd_file != NULL && passwd_file[0] != '\0') {
		db->path = xstrdup(passwd_file);
		db->name = xstrdup(passwd_file);
		const char *err;
		if (auth_db_load(db, &err) < 0) {
			static char msg[256];
			struct buf b = BUF_INIT;
			buf_printf(&b, "%s: %s", passwd_file, err);
			str_copy(msg, sizeof(msg), buf_cstr(&b));
			buf_deinit(&b);
			*error_r = msg;
			auth_db_free(&db);
			return NULL;
		}
	}
	return db;
}

struct auth_db *auth_db_new_from_text(const char *name, const char *text, size_t len,
				      bool system_users, struct config_diags *diags)
{
	struct auth_db *db = auth_db_alloc(system_users);
	db->name = xstrdup(name);
	struct auth_parse p = { .file = name, .diags = diags != NULL ? diags : &db->diags };
	auth_parse_text(&p, text, len);
	db->plain_warned = p.plain_seen;
	auth_db_set_entries(db, &p);
	return db;
}

void auth_db_free(struct auth_db **dbp)
{
	struct auth_db *db = *dbp;
	if (db == NULL)
		return;
	*dbp = NULL;
	auth_entries_free(db->entries, db->count);
	config_diags_deinit(&db->diags);
	free(db->path);
	free(db->name);
	free(db);
}

size_t auth_db_count(const struct auth_db *db)
{
	size_t n = 0;
	for (size_t i = 0; i < db->count; i++)
		n += db->entries[i].hash != NULL;
	return n;
}

const struct config_diags *auth_db_diags(const struct auth_db *db)
{
	return &db->diags;
}

/* ---- verification ---- */

/* Hash checks made by this process: an unknown user must cost one, like a
 * wrong password (tests check it instead of timing). */
static unsigned long auth_hash_checks;

unsigned long auth_hash_check_count(void)
{
	return auth_hash_checks;
}

/* 1 when password hashes to hash under scheme. */
static bool auth_hash_check(enum auth_scheme scheme, const char *hash, const char *password)
{
	auth_hash_checks++;
	if (scheme == AUTH_SCHEME_PLAIN)
		return auth_secret_equal(password, strlen(password), hash, strlen(hash));
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	const char *out = crypt_r(password, hash, cd);
	/* libxcrypt returns NULL or a "*0"/"*1" failure token for settings
	 * it does not know: never equal to a stored hash. */
	bool ok = out != NULL && out[0] != '*' &&
		  auth_secret_equal(out, strlen(out), hash, strlen(hash));
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

static void auth_dummy_check(struct auth_db *db, const char *password)
{
	(void)db;
	pthread_once(&auth_dummy_once, auth_dummy_init);
	(void)auth_hash_check(AUTH_SCHEME_CRYPT, auth_dummy_hash, password);
}

/* System account: 1 match, 0 no, -1 temporary (shadow unreadable). */
static int auth_system_verify(struct auth_db *db, const char *user, const char *password,
			      struct auth_user *user_r, const char **error_r)
{
	char pwbuf[4096], spbuf[4096];
	struct passwd pwd, *pw = NULL;
	int ret = getpwnam_r(user, &pwd, pwbuf, sizeof(pwbuf), &pw);
	if (pw == NULL) {
		auth_dummy_check(db, password);
		if (ret != 0 && ret != ENOENT && ret != ESRCH) {
			*error_r = "user database unavailable";
			return -1;
		}
		*error_r = "unknown user";
		return 0;
	}
	const char *hash = pw->pw_passwd;
	if (hash != NULL && strcmp(hash, "x") == 0) {
		struct spwd spw, *sp = NULL;
		errno = 0;
		ret = getspnam_r(user, &spw, spbuf, sizeof(spbuf), &sp);
		if (sp == NULL) {
			int e = ret != 0 ? ret : errno;
			auth_dummy_check(db, password);
			/* glibc's files backend reports an unreadable /etc/shadow
			 * as "no entry" (0, NULL, errno 0): ask the kernel. */
			if (e == 0 && faccessat(AT_FDCWD, "/etc/shadow", R_OK, AT_EACCESS) < 0 &&
			    errno == EACCES)
				e = EACCES;
			if (e == EACCES || e == EPERM) {
				*error_r = "shadow password file not readable (needs root)";
				return -1;
			}
			*error_r = "no shadow entry";
			return 0;
		}
		hash = sp->sp_pwdp;
		long today = (long)(time(NULL) / 86400);
		if (sp->sp_expire >= 0 && today >= sp->sp_expire) {
			auth_dummy_check(db, password);
			explicit_bzero(spbuf, sizeof(spbuf));
			*error_r = "account expired";
			return 0;
		}
	}
	/* Locked ("!..." , "*") or passwordless accounts never log in. */
	if (hash == NULL || hash[0] == '\0' || hash[0] == '!' || hash[0] == '*') {
		auth_dummy_check(db, password);
		explicit_bzero(spbuf, sizeof(spbuf));
		*error_r = "account locked or without password";
		return 0;
	}
	bool ok = auth_hash_check(AUTH_SCHEME_CRYPT, hash, password);
	explicit_bzero(spbuf, sizeof(spbuf));
	if (ok) {
		/* pw_name and pw_dir point into pwbuf: copy before wiping it. */
		user_r->name = xstrdup(pwd.pw_name);
		user_r->is_virtual = false;
		user_r->uid = pwd.pw_uid;
		user_r->gid = pwd.pw_gid;
		user_r->home = xstrdup(pwd.pw_dir);
	}
	explicit_bzero(pwbuf, sizeof(pwbuf));
	if (!ok) {
		*error_r = "wrong password";
		return 0;
	}
	return 1;
}

int auth_db_verify(struct auth_db *db, const char *user, const char *password,
		   struct auth_user *user_r, const char **error_r)
{
	memset(user_r, 0, sizeof(*user_r));
	size_t ulen = strnlen(user, AUTH_USER_MAX + 1);
	if (!auth_name_valid(strv_make(user, ulen))) {
		*error_r = "invalid user name";
		return 0;
	}
	if (strnlen(password, AUTH_PASSWORD_MAX + 1) > AUTH_PASSWORD_MAX) {
		*error_r = "password too long";
		return 0;
	}
	if (auth_db_refresh(db, error_r) < 0)
		return -1;
	char *name = auth_name_canonical(strv_make(user, ulen));
	const struct auth_entry *e = NULL;
	for (size_t i = 0; i < db->count; i++) {
		if (strcmp(db->entries[i].user, name) == 0) {
			e = &db->entries[i];
			break;
		}
	}
	free(name);
	if (e == NULL) {
		if (db->system_users && strchr(user, '@') == NULL)
			return auth_system_verify(db, user, password, user_r, error_r);
		auth_dummy_check(db, password);
		*error_r = "unknown user";
		return 0;
	}
	if (e->hash == NULL) {
		auth_dummy_check(db, password);
		log_error("%s: user %s: entry unusable (see earlier error)",
			  db->name != NULL ? db->name : "passwd-file", e->user);
		*error_r = "unusable passwd-file entry";
		return 0;
	}
	if (!auth_hash_check(e->scheme, e->hash, password)) {
		*error_r = "wrong password";
		return 0;
	}
	user_r->name = xstrdup(e->user);
	user_r->is_virtual = true;
	user_r->uid = e->uid;
	user_r->gid = e->gid;
	user_r->home = e->home != NULL ? xstrdup(e->home) : NULL;
	return 1;
}

/* ---- throttling ---- */

struct auth_throttle_entry {
	char *addr;
	unsigned failures;
	time_t last;
	struct auth_throttle_entry *hnext;	/* hash chain */
	struct auth_throttle_entry *prev, *next; /* LRU list, most recent first */
};

struct auth_throttle {
	unsigned max_delay_ms;
	time_t window_s;
	size_t max_entries;
	size_t count;
	size_t nbuckets;
	struct auth_throttle_entry **buckets;
	struct auth_throttle_entry *head, *tail;
};

struct auth_throttle *auth_throttle_new(unsigned max_delay_ms, time_t window_s, size_t max_entries)
{
	struct auth_throttle *t = xcalloc(1, sizeof(*t));
	t->max_delay_ms = max_delay_ms;
	t->window_s = window_s;
	t->max_entries = max_entries == 0 ? 1 : max_entries;
	t->nbuckets = 64;
	while (t->nbuckets < t->max_entries && t->nbuckets < ((size_t)1 << 24))
		t->nbuckets *= 2;
	t->buckets = xcalloc(t->nbuckets, sizeof(*t->buckets));
	return t;
}

void auth_throttle_free(struct auth_throttle **tp)
{
	struct auth_throttle *t = *tp;
	if (t == NULL)
		return;
	*tp = NULL;
	for (struct auth_throttle_entry *e = t->head, *n; e != NULL; e = n) {
		n = e->next;
		free(e->addr);
		free(e);
	}
	free(t->buckets);
	free(t);
}

size_t auth_throttle_count(const struct auth_throttle *t)
{
	return t->count;
}

static size_t auth_throttle_hash(const struct auth_throttle *t, const char *addr)
{
	/* FNV-1a; addresses come from the kernel (getpeername), not the
	 * client, so hash flooding is not a concern. */
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *p = (const unsigned char *)addr; *p != '\0'; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)(h & (t->nbuckets - 1));
}

static struct auth_throttle_entry *auth_throttle_find(struct auth_throttle *t, const char *addr)
{
	for (struct auth_throttle_entry *e = t->buckets[auth_throttle_hash(t, addr)]; e != NULL;
	     e = e->hnext) {
		if (strcmp(e->addr, addr) == 0)
			return e;
	}
	return NULL;
}

static void auth_throttle_unlink(struct auth_throttle *t, struct auth_throttle_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		t->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		t->tail = e->prev;
	e->prev = e->next = NULL;
}

static void auth_throttle_push_front(struct auth_throttle *t, struct auth_throttle_entry *e)
{
	e->next = t->head;
	e->prev = NULL;
	if (t->head != NULL)
		t->head->prev = e;
	t->head = e;
	if (t->tail == NULL)
		t->tail = e;
}

static void auth_throttle_remove(struct auth_throttle *t, struct auth_throttle_entry *e)
{
	struct auth_throttle_entry **pp = &t->buckets[auth_throttle_hash(t, e->addr)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	auth_throttle_unlink(t, e);
	free(e->addr);
	free(e);
	t->count--;
}

static bool auth_throttle_expired(const struct auth_throttle *t,
				  const struct auth_throttle_entry *e, time_t now)
{
	return now - e->last > t->window_s || now < e->last - t->window_s;
}

unsigned auth_throttle_delay_ms(struct auth_throttle *t, const char *addr, time_t now)
{
	struct auth_throttle_entry *e = auth_throttle_find(t, addr);
	if (e == NULL)
		return 0;
	if (auth_throttle_expired(t, e, now)) {
		auth_throttle_remove(t, e);
		return 0;
	}
	auth_throttle_unlink(t, e);
	auth_throttle_push_front(t, e);
	unsigned shift = e->failures - 1 > 20 ? 20 : e->failures - 1;
	uint64_t d = (uint64_t)1000 << shift;
	return d > t->max_delay_ms ? t->max_delay_ms : (unsigned)d;
}

void auth_throttle_failure(struct auth_throttle *t, const char *addr, time_t now)
{
	struct auth_throttle_entry *e = auth_throttle_find(t, addr);
	if (e != NULL) {
		auth_throttle_unlink(t, e);
		if (auth_throttle_expired(t, e, now))
			e->failures = 0;
	} else {
		if (t->count == t->max_entries)
			auth_throttle_remove(t, t->tail);
		e = xcalloc(1, sizeof(*e));
		e->addr = xstrdup(addr);
		size_t h = auth_throttle_hash(t, addr);
		e->hnext = t->buckets[h];
		t->buckets[h] = e;
		t->count++;
	}
	if (e->failures < 64)
		e->failures++;
	e->last = now;
	auth_throttle_push_front(t, e);
}

void auth_throttle_success(struct auth_throttle *t, const char *addr, time_t now)
{
	(void)now;
	struct auth_throttle_entry *e = auth_throttle_find(t, addr);
	if (e != NULL)
		auth_throttle_remove(t, e);
}
