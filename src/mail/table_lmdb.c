/* table_lmdb.c - hash: and lmdb: tables: one compiled format, an LMDB file
 * "<path>.lmdb" (MDB_NOSUBDIR: a single file, no directory).
 *
 * Writers (table_compile, aliases_compile) build a complete new database
 * in "<path>.lmdb.tmp.<pid>", fsync it, rename it over "<path>.lmdb" and
 * fsync the directory.  A database is therefore never modified in place,
 * which is why readers open it with MDB_RDONLY|MDB_NOLOCK: there is no
 * concurrent writer to coordinate with, and no "-lock" file is created
 * next to the database (a lock file would need write access for readers
 * running as an unprivileged user).
 *
 * Readers check at most once per second whether the file was replaced
 * (device, inode, mtime, size) and reopen it, so long-running daemons see
 * `facteur map` updates.  An open env keeps the old, unlinked inode mapped,
 * so the switch is safe at any time.
 *
 * Keys are stored lower-cased and without a terminating NUL; values without
 * a NUL too.
 */
#include "mail/config.h"
#include "mail/table.h"
#include "mail/table_int.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <errno.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct table_lmdb {
	char *db_path;
	MDB_env *env;
	MDB_dbi dbi;
	struct stat st; /* of the open file */
	time_t last_check;
};

char *table_lmdb_db_path(const char *path)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s.lmdb", path);
	return buf_steal(&b);
}

const char *table_compile_path(const char *spec, const char **error_r)
{
	if (spec[0] == '/')
		return spec;
	if (strncmp(spec, "hash:", 5) == 0)
		spec += 5;
	else if (strncmp(spec, "lmdb:", 5) == 0)
		spec += 5;
	else {
		const char *colon = strchr(spec, ':');
		if (colon != NULL)
			*error_r = table_open_error("unsupported table type for compilation: "
						    "\"%.*s\" (use hash: or lmdb:)",
						    (int)(colon - spec), spec);
		else
			*error_r = table_open_error("table \"%s\": the file name must be absolute",
						    spec);
		return NULL;
	}
	if (spec[0] != '/') {
		*error_r = table_open_error("table \"%s\": the file name must be absolute", spec);
		return NULL;
	}
	return spec;
}

static bool table_lmdb_same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Open db_path read-only; fills env, dbi and st.  Returns 0 or -1 with a
 * static error. */
static int table_lmdb_env_open(const char *spec_type, const char *path, const char *db_path,
			       MDB_env **env_r, MDB_dbi *dbi_r, struct stat *st_r,
			       const char **error_r)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	int rc;

	if (stat(db_path, st_r) < 0) {
		if (errno == ENOENT)
			*error_r = table_open_error("open %s: %s (run 'facteur map %s:%s')",
						    db_path, strerror(errno), spec_type, path);
		else
			*error_r = table_open_error("open %s: %s", db_path, strerror(errno));
		return -1;
	}
	if ((rc = mdb_env_create(&env)) != 0)
		goto fail;
	rc = mdb_env_open(env, db_path, MDB_RDONLY | MDB_NOLOCK | MDB_NOSUBDIR | MDB_NOTLS, 0);
	if (rc != 0)
		goto fail;
	/* The stat above may describe a file replaced since: take the one
	 * actually opened. */
	int fd;
	if (mdb_env_get_fd(env, &fd) == 0)
		(void)fstat(fd, st_r);
	if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0)
		goto fail;
	if ((rc = mdb_dbi_open(txn, NULL, 0, dbi_r)) != 0)
		goto fail;
	/* Committing (not aborting) keeps the dbi handle open. */
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0)
		goto fail;
	*env_r = env;
	return 0;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (env != NULL)
		mdb_env_close(env);
	*error_r = table_open_error("open %s: %s", db_path,
				    rc == ENOENT ? strerror(rc) : mdb_strerror(rc));
	return -1;
}

static void table_lmdb_free(void *priv)
{
	struct table_lmdb *l = priv;
	if (l->env != NULL)
		mdb_env_close(l->env);
	free(l->db_path);
	free(l);
}

/* Reopen when the file was replaced; on failure keep the old database
 * (still mapped) and say so once per check. */
static void table_lmdb_maybe_reopen(struct table *t, struct table_lmdb *l)
{
	time_t now = time(NULL);
	if (now == l->last_check)
		return;
	l->last_check = now;
	struct stat st;
	if (stat(l->db_path, &st) < 0 || table_lmdb_same_file(&st, &l->st))
		return;
	MDB_env *env;
	MDB_dbi dbi;
	const char *error;
	if (table_lmdb_env_open(t->type, t->name, l->db_path, &env, &dbi, &st, &error) < 0) {
		log_warning("%s: reopen failed, using the previous database: %s", t->spec,
			    error);
		return;
	}
	mdb_env_close(l->env);
	l->env = env;
	l->dbi = dbi;
	l->st = st;
}

void table_lmdb_recheck_now(struct table *t)
{
	if (t->free_priv == table_lmdb_free)
		((struct table_lmdb *)t->priv)->last_check = 0;
}

static int table_lmdb_lookup(struct table *t, const char *key, char **value_r,
			     const char **error_r)
{
	struct table_lmdb *l = t->priv;
	size_t key_len = strlen(key);
	MDB_txn *txn;
	int rc;

	table_lmdb_maybe_reopen(t, l);
	/* Keys that cannot be stored cannot be found (LMDB refuses them). */
	if (key_len == 0 || key_len > (size_t)mdb_env_get_maxkeysize(l->env))
		return 0;
	if ((rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn)) != 0) {
		*error_r = table_lookup_error(t, "%s: %s", l->db_path, mdb_strerror(rc));
		return -1;
	}
	MDB_val k = { key_len, (void *)key }, v;
	rc = mdb_get(txn, l->dbi, &k, &v);
	if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return 0;
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		*error_r = table_lookup_error(t, "%s: lookup: %s", l->db_path, mdb_strerror(rc));
		return -1;
	}
	*value_r = xstrndup(v.mv_data, v.mv_size);
	mdb_txn_abort(txn);
	return 1;
}

int table_lmdb_open(struct table *t, const char **error_r)
{
	struct table_lmdb *l = xcalloc(1, sizeof(*l));
	l->db_path = table_lmdb_db_path(t->name);
	if (table_lmdb_env_open(t->type, t->name, l->db_path, &l->env, &l->dbi, &l->st,
				error_r) < 0) {
		table_lmdb_free(l);
		return -1;
	}
	l->last_check = time(NULL);
	t->priv = l;
	t->free_priv = table_lmdb_free;
	t->lookup = table_lmdb_lookup;
	return 0;
}

/* ---------------------------------------------------------------- writer */

struct table_lmdb_writer {
	char *db_path;
	char *tmp_path;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
};

void table_lmdb_writer_abort(struct table_lmdb_writer **wp)
{
	struct table_lmdb_writer *w = *wp;
	if (w == NULL)
		return;
	if (w->txn != NULL)
		mdb_txn_abort(w->txn);
	if (w->env != NULL)
		mdb_env_close(w->env);
	if (unlink(w->tmp_path) < 0 && errno != ENOENT)
		log_warning("unlink %s: %s", w->tmp_path, strerror(errno));
	free(w->db_path);
	free(w->tmp_path);
	free(w);
	*wp = NULL;
}

struct table_lmdb_writer *table_lmdb_writer_new(const char *db_path, size_t source_size,
						mode_t mode, const char **error_r)
{
	struct table_lmdb_writer *w = xcalloc(1, sizeof(*w));
	struct buf b = BUF_INIT;
	int rc;

	w->db_path = xstrdup(db_path);
	buf_printf(&b, "%s.tmp.%ld", db_path, (long)getpid());
	w->tmp_path = buf_steal(&b);
	/* A leftover of a crashed run that had our pid. */
	if (unlink(w->tmp_path) < 0 && errno != ENOENT) {
		*error_r = table_open_error("unlink %s: %s", w->tmp_path, strerror(errno));
		table_lmdb_writer_abort(&w);
		return NULL;
	}
	/* The map size only reserves address space.  A node costs 8 bytes of
	 * header plus 2 of index; with half-full pages a tiny "k v\n" line can
	 * need about 7 times its size, so 8x (more than the 2x minimum) plus
	 * 1 MiB for the meta and branch pages always fits. */
	size_t map_size = (size_t)1 << 20;
	if (source_size > (SIZE_MAX - map_size) / 8)
		map_size = SIZE_MAX & ~(size_t)0xfffff;
	else
		map_size += source_size * 8;
	if ((rc = mdb_env_create(&w->env)) != 0 ||
	    (rc = mdb_env_set_mapsize(w->env, map_size)) != 0 ||
	    (rc = mdb_env_open(w->env, w->tmp_path,
			       MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC | MDB_NOTLS,
			       mode & 0666)) != 0 ||
	    (rc = mdb_txn_begin(w->env, NULL, 0, &w->txn)) != 0 ||
	    (rc = mdb_dbi_open(w->txn, NULL, 0, &w->dbi)) != 0) {
		*error_r = table_open_error("create %s: %s", w->tmp_path, mdb_strerror(rc));
		table_lmdb_writer_abort(&w);
		return NULL;
	}
	return w;
}

int table_lmdb_writer_put(struct table_lmdb_writer *w, const char *key, const char *value,
			  const char **error_r)
{
	size_t key_len = strlen(key);
	size_t max = (size_t)mdb_env_get_maxkeysize(w->env);
	if (key_len == 0) {
		*error_r = "empty key";
		return -1;
	}
	if (key_len > max) {
		*error_r = table_open_error("key too long (%zu bytes, at most %zu)", key_len, max);
		return -1;
	}
	MDB_val k = { key_len, (void *)key };
	MDB_val v = { strlen(value), (void *)value };
	int rc = mdb_put(w->txn, w->dbi, &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		return 0;
	if (rc != 0) {
		*error_r = table_open_error("write %s: %s", w->tmp_path, mdb_strerror(rc));
		return -1;
	}
	return 1;
}

int table_lmdb_writer_commit(struct table_lmdb_writer **wp, const char **error_r)
{
	struct table_lmdb_writer *w = *wp;
	int rc = mdb_txn_commit(w->txn);
	w->txn = NULL;
	if (rc != 0) {
		*error_r = table_open_error("write %s: %s", w->tmp_path, mdb_strerror(rc));
		table_lmdb_writer_abort(wp);
		return -1;
	}
	/* MDB_NOSYNC above: one forced sync of the whole file here. */
	if ((rc = mdb_env_sync(w->env, 1)) != 0) {
		*error_r = table_open_error("fsync %s: %s", w->tmp_path, mdb_strerror(rc));
		table_lmdb_writer_abort(wp);
		return -1;
	}
	mdb_env_close(w->env);
	w->env = NULL;
	if (rename(w->tmp_path, w->db_path) < 0) {
		*error_r = table_open_error("rename %s to %s: %s", w->tmp_path, w->db_path,
					    strerror(errno));
		table_lmdb_writer_abort(wp);
		return -1;
	}
	int ret = 0;
	if (fs_fsync_parent(w->db_path) < 0) {
		*error_r = table_open_error("fsync directory of %s: %s", w->db_path,
					    strerror(errno));
		ret = -1;
	}
	free(w->db_path);
	free(w->tmp_path);
	free(w);
	*wp = NULL;
	return ret;
}

/* --------------------------------------------------------------- compile */

struct table_compile_ctx {
	const char *path;
	struct table_lmdb_writer *w;
	struct config_diags *diags;
};

/* Keys are folded to lower case (aliases(5) names arrive folded already). */
static int table_compile_entry(void *ctx, const char *key, const char *value, unsigned line)
{
	struct table_compile_ctx *c = ctx;
	const char *error;
	char *folded = str_lower_dup(key);
	int ret = table_lmdb_writer_put(c->w, folded, value, &error);
	if (ret == 0)
		config_diag_add(c->diags, c->path, line, false,
				"duplicate entry \"%s\"; keeping the first one", folded);
	else if (ret < 0)
		config_diag_add(c->diags, c->path, line, true, "%s", error);
	free(folded);
	return 0;
}

int table_lmdb_compile_source(const char *spec, struct config_diags *diags,
			      table_source_parser *parse, const char *what)
{
	const char *error;
	const char *path = table_compile_path(spec, &error);
	if (path == NULL) {
		config_diag_add(diags, spec, 0, true, "%s%s", what, error);
		return -1;
	}
	struct stat st;
	if (stat(path, &st) < 0) {
		config_diag_add(diags, path, 0, true, "open: %s", strerror(errno));
		return -1;
	}
	char *db_path = table_lmdb_db_path(path);
	struct table_compile_ctx c = { path, NULL, diags };
	c.w = table_lmdb_writer_new(db_path, (size_t)st.st_size, st.st_mode, &error);
	free(db_path);
	if (c.w == NULL) {
		config_diag_add(diags, path, 0, true, "%s", error);
		return -1;
	}
	if (parse(path, table_compile_entry, &c, diags) < 0) {
		table_lmdb_writer_abort(&c.w);
		return -1;
	}
	if (table_lmdb_writer_commit(&c.w, &error) < 0) {
		config_diag_add(diags, path, 0, true, "%s", error);
		return -1;
	}
	return 0;
}

int table_compile(const char *spec, struct config_diags *diags)
{
	return table_lmdb_compile_source(spec, diags, table_source_parse, "");
}
