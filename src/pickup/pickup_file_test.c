/* pickup_file_test.c - the pickup role on a real queue directory under
 * /tmp: a maildrop file becomes a queue file in incoming/ with the
 * qualified sender, recipients with orig_to, the Received/Message-Id/
 * Date/From headers; -t extraction drops Bcc; incomplete files are
 * skipped, abandoned ones removed, malformed ones quarantined. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "mail/config.h"
#include "mail/qfile.h"
#include "mail/queue.h"
#include "mail/maildrop.h"
#include "pickup/pickup_int.h"

struct fixture {
	char qdir[64];
	struct config *cfg;
	struct pickup p;
};

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *error = NULL;
	snprintf(f->qdir, sizeof(f->qdir), "/tmp/pickup_test.XXXXXX");
	if (mkdtemp(f->qdir) == NULL)
		return -1;
	if (queue_dirs_create(f->qdir, getuid(), getgid(), &error) < 0)
		return -1;
	f->cfg = config_new();
	config_set(f->cfg, "myhostname", "gw1.maison.mrs");
	config_set(f->cfg, "mydomain", "maison.mrs");
	config_set(f->cfg, "queue_directory", f->qdir);
	if (pickup_init(&f->p, f->cfg, f->qdir, &error) < 0)
		return -1;
	log_init("pickup", LOG_DEST_STDERR, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	pickup_deinit(&f->p);
	config_free(&f->cfg);
	nftw(f->qdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void drop(struct fixture *f, struct maildrop_env *env, const char *body)
{
	struct maildrop_writer *w = NULL;
	const char *error = NULL;
	assert_int_equal(maildrop_writer_open(f->qdir, env, &w, &error), 0);
	maildrop_writer_body(w, body, strlen(body));
	assert_int_equal(maildrop_writer_commit(&w, &error), 0);
}

static size_t list_dir(const char *qdir, const char *sub, char *name_r, size_t size)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", qdir, sub);
	DIR *d = opendir(path);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		n++;
		if (name_r != NULL)
			snprintf(name_r, size, "%s", de->d_name);
	}
	closedir(d);
	return n;
}

static int collect(void *ctx, const uint8_t *data, size_t len)
{
	buf_append(ctx, data, len);
	return 0;
}

/* Read the only queue file of incoming/. */
static struct qfile_msg *read_incoming(struct fixture *f, struct buf *content)
{
	char id[256], path[600];
	assert_int_equal(list_dir(f->qdir, "incoming", id, sizeof(id)), 1);
	snprintf(path, sizeof(path), "%s/incoming/%s", f->qdir, id);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct qfile_msg *m = NULL;
	const char *error = NULL;
	assert_int_equal(qfile_read(fd, &m, &error), 0);
	assert_int_equal(qfile_content_read(fd, m, collect, content, &error), 0);
	close(fd);
	unlink(path);
	return m;
}

static const char *login(void)
{
	return getpwuid(getuid())->pw_name;
}

static void test_local_submission(void **state)
{
	struct fixture *f = *state;
	struct maildrop_env env;
	maildrop_env_init(&env);
	maildrop_env_add_rcpt(&env, "root");
	drop(f, &env, "Subject: test interne\n\ncoucou\n");
	maildrop_env_deinit(&env);

	assert_int_equal(pickup_scan(&f->p, time(NULL)), 1);
	assert_int_equal(list_dir(f->qdir, "maildrop", NULL, 0), 0);
	struct buf content = BUF_INIT;
	struct qfile_msg *m = read_incoming(f, &content);
	char want[256];
	snprintf(want, sizeof(want), "%s@gw1.maison.mrs", login());
	assert_string_equal(m->sender, want);
	assert_int_equal(m->n_rcpts, 1);
	assert_string_equal(m->rcpts[0].address, "root@gw1.maison.mrs");
	assert_string_equal(m->rcpts[0].orig_to, "root");
	char uid[32];
	snprintf(uid, sizeof(uid), "%lu", (unsigned long)getuid());
	assert_string_equal(qfile_msg_attr(m, "uid"), uid);
	assert_string_equal(qfile_msg_attr(m, "login"), login());
	const char *c = buf_cstr(&content);
	assert_true(strncmp(c, "Received: by gw1.maison.mrs (facteur, from userid ", 50) == 0);
	assert_non_null(strstr(c, "\nSubject: test interne\n"));
	assert_non_null(strstr(c, "\nMessage-Id: <"));
	assert_non_null(strstr(c, "\nDate: "));
	snprintf(want, sizeof(want), "\nFrom: %s@gw1.maison.mrs", login());
	assert_non_null(strstr(c, want));
	/* Header block, one empty line, the body, exactly once. */
	assert_non_null(strstr(c, "\n\ncoucou\n"));
	assert_int_equal(strlen(c) - (size_t)(strstr(c, "\n\ncoucou\n") - c), 9);
	qfile_msg_free(&m);
	buf_deinit(&content);
}

static void test_sender_and_fullname(void **state)
{
	struct fixture *f = *state;
	struct maildrop_env env;
	maildrop_env_init(&env);
	env.sender = xstrdup("chris");
	env.full_name = xstrdup("Christian Cal\xc3\xa9" "ca");
	maildrop_env_add_rcpt(&env, "a@example.test, b@example.test");
	maildrop_env_add_rcpt(&env, "a@example.test");
	drop(f, &env, "Subject: x\n\nbody without final newline");
	maildrop_env_deinit(&env);

	assert_int_equal(pickup_scan(&f->p, time(NULL)), 1);
	struct buf content = BUF_INIT;
	struct qfile_msg *m = read_incoming(f, &content);
	assert_string_equal(m->sender, "chris@gw1.maison.mrs");
	assert_non_null(strstr(buf_cstr(&content),
			       "\nFrom: chris@gw1.maison.mrs (Christian Cal\xc3\xa9" "ca)\n"));
	assert_non_null(strstr(buf_cstr(&content), "body without final newline\n"));
	qfile_msg_free(&m);
	buf_deinit(&content);
}

static void test_extract(void **state)
{
	struct fixture *f = *state;
	struct maildrop_env env;
	maildrop_env_init(&env);
	env.extract = true;
	drop(f, &env, "To: alice@example.test\nCc: Bob <bob@example.test>\n"
		      "Bcc: secret@example.test\nSubject: t\n\nhello\n");
	maildrop_env_deinit(&env);

	assert_int_equal(pickup_scan(&f->p, time(NULL)), 1);
	struct buf content = BUF_INIT;
	struct qfile_msg *m = read_incoming(f, &content);
	static const char *const want[] = { "alice@example.test", "bob@example.test",
					    "secret@example.test" };
	assert_int_equal(m->n_rcpts, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(m->rcpts[i].address, want[i]);
	assert_null(strstr(buf_cstr(&content), "Bcc:"));
	assert_null(strstr(buf_cstr(&content), "secret"));
	qfile_msg_free(&m);
	buf_deinit(&content);
}

static void test_bad_files(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *name;
		const char *content;
		mode_t mode;
		long age;
		size_t left_in_maildrop;
		size_t in_corrupt;
	} rows[] = {
		{ "being written", "facteur-maildrop 1\n", 0600, 10, 1, 0 },
		{ "abandoned", "facteur-maildrop 1\n", 0600, 7200, 0, 0 },
		{ "malformed", "garbage\n", 0644, 0, 0, 1 },
		{ "no recipients", "facteur-maildrop 1\nextract\nbody 00000000000000000006\n"
				   "x: y\n\n", 0644, 0, 0, 1 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char path[256];
		snprintf(path, sizeof(path), "%s/maildrop/%032zx", f->qdir, i + 1);
		FILE *fp = fopen(path, "w");
		fputs(rows[i].content, fp);
		fclose(fp);
		chmod(path, rows[i].mode);
		struct timeval tv[2];
		gettimeofday(&tv[0], NULL);
		tv[0].tv_sec -= rows[i].age;
		tv[1] = tv[0];
		utimes(path, tv);
		assert_int_equal(pickup_scan(&f->p, time(NULL)), 0);
		if (list_dir(f->qdir, "maildrop", NULL, 0) != rows[i].left_in_maildrop)
			fail_msg("%s: maildrop count", rows[i].name);
		if (list_dir(f->qdir, "corrupt", NULL, 0) != rows[i].in_corrupt)
			fail_msg("%s: corrupt count", rows[i].name);
		assert_int_equal(list_dir(f->qdir, "incoming", NULL, 0), 0);
		/* Clean for the next row. */
		unlink(path);
		char cpath[300];
		snprintf(cpath, sizeof(cpath), "%s/corrupt/maildrop-%032zx", f->qdir, i + 1);
		unlink(cpath);
	}
	/* Names that are not maildrop names are ignored. */
	char path[256];
	snprintf(path, sizeof(path), "%s/maildrop/other", f->qdir);
	FILE *fp = fopen(path, "w");
	fclose(fp);
	chmod(path, 0644);
	assert_int_equal(pickup_scan(&f->p, time(NULL)), 0);
	assert_int_equal(list_dir(f->qdir, "maildrop", NULL, 0), 1);
	unlink(path);
	/* A symbolic link is not followed. */
	snprintf(path, sizeof(path), "%s/maildrop/%032x", f->qdir, 99);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_int_equal(pickup_scan(&f->p, time(NULL)), 0);
	assert_int_equal(list_dir(f->qdir, "maildrop", NULL, 0), 0);
	assert_int_equal(list_dir(f->qdir, "incoming", NULL, 0), 0);
}

static void test_size_limit(void **state)
{
	struct fixture *f = *state;
	f->p.message_size_limit = 10;
	static const struct {
		const char *body;
		int queued;
	} rows[] = {
		{ "x: 12345\n", 1 },  /* 9 bytes */
		{ "x: 123456\n", 1 }, /* 10 bytes: the limit */
		{ "x: 1234567\n", 0 }, /* 11 bytes */
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct maildrop_env env;
		maildrop_env_init(&env);
		maildrop_env_add_rcpt(&env, "root");
		drop(f, &env, rows[i].body);
		maildrop_env_deinit(&env);
		assert_int_equal(pickup_scan(&f->p, time(NULL)), rows[i].queued);
		assert_int_equal(list_dir(f->qdir, "corrupt", NULL, 0), rows[i].queued ? 0 : 1);
		if (rows[i].queued) {
			struct buf content = BUF_INIT;
			struct qfile_msg *m = read_incoming(f, &content);
			qfile_msg_free(&m);
			buf_deinit(&content);
		}
	}
	f->p.message_size_limit = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_local_submission, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sender_and_fullname, setup, teardown),
		cmocka_unit_test_setup_teardown(test_extract, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_limit, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
