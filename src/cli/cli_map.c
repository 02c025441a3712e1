/* cli_map.c - facteur map (postmap), facteur aliases (newaliases) and
 * facteur pw (password hashes for auth_passwd_file). */
#include "cli/cli.h"
#include "lib/buf.h"
#include "lib/mem.h"
#include "mail/aliases.h"
#include "mail/config.h"
#include "mail/table.h"

#include <crypt.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static void map_usage(void)
{
	fprintf(stderr, "usage: facteur map [type:]FILE          compile FILE into FILE.lmdb\n"
			"       facteur map -q KEY [type:]FILE   look KEY up\n");
}

/* "FILE" means hash:FILE, as with postmap; a relative path is taken from
 * the current directory (tables are opened by absolute path). */
static char *map_spec(const char *arg)
{
	struct buf b = BUF_INIT;
	const char *colon = strchr(arg, ':');
	const char *path = arg;
	if (colon == NULL || arg[0] == '/' || arg[0] == '.') {
		buf_append_str(&b, "hash:");
	} else {
		buf_append(&b, arg, (size_t)(colon - arg + 1));
		path = colon + 1;
	}
	bool file_type = strncmp(buf_cstr(&b), "inline:", 7) != 0 &&
			 strncmp(buf_cstr(&b), "static:", 7) != 0 &&
			 strncmp(buf_cstr(&b), "unix:", 5) != 0 &&
			 strncmp(buf_cstr(&b), "proxy:", 6) != 0;
	if (file_type && path[0] != '/') {
		char cwd[4096];
		if (getcwd(cwd, sizeof(cwd)) != NULL)
			buf_printf(&b, "%s/", cwd);
	}
	buf_append_str(&b, path);
	return buf_steal(&b);
}

int cli_map(struct cli_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	const char *key = NULL;
	int i = 1;
	if (i < argc && strcmp(argv[i], "-q") == 0) {
		if (i + 1 >= argc) {
			map_usage();
			return 2;
		}
		key = argv[i + 1];
		i += 2;
	}
	if (i + 1 != argc) {
		map_usage();
		return 2;
	}
	char *spec = map_spec(argv[i]);
	int ret;
	if (key == NULL) {
		struct config_diags diags;
		config_diags_init(&diags);
		ret = table_compile(spec, &diags) < 0 ? 1 : 0;
		config_diags_print(&diags, 2);
		config_diags_deinit(&diags);
	} else {
		const char *error;
		struct table *t = table_open(spec, &error);
		if (t == NULL) {
			fprintf(stderr, "facteur: %s: %s\n", spec, error);
			free(spec);
			return 2;
		}
		char *value = NULL;
		int found = table_lookup(t, key, &value, &error);
		if (found > 0) {
			printf("%s\n", value);
			ret = 0;
		} else if (found == 0) {
			ret = 1; /* postmap -q: not found */
		} else {
			fprintf(stderr, "facteur: %s: lookup of '%s' failed: %s\n", spec, key, error);
			ret = 2;
		}
		free(value);
		table_free(&t);
	}
	free(spec);
	return ret;
}

int cli_aliases(struct cli_ctx *ctx, int argc, char **argv)
{
	if (argc > 1) {
		(void)argv;
		fprintf(stderr, "usage: facteur aliases\n");
		return 2;
	}
	char **items = config_get_list(ctx->cfg, "alias_database");
	int ret = 0;
	struct config_diags diags;
	config_diags_init(&diags);
	for (size_t i = 0; items != NULL && items[i] != NULL; i++) {
		if (aliases_compile(items[i], &diags) < 0)
			ret = 1;
	}
	config_diags_print(&diags, 2);
	config_diags_deinit(&diags);
	return ret;
}

/* Read one line from fd 0 without echo when it is a terminal. */
static int pw_read(const char *prompt, char *out, size_t size)
{
	struct termios old, noecho;
	bool tty = isatty(0) && tcgetattr(0, &old) == 0;
	if (tty) {
		fprintf(stderr, "%s", prompt);
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		(void)tcsetattr(0, TCSAFLUSH, &noecho);
	}
	char *line = fgets(out, (int)size, stdin);
	if (tty) {
		(void)tcsetattr(0, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	if (line == NULL)
		return -1;
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

int cli_pw(struct cli_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	const char *scheme = "CRYPT";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
			scheme = argv[++i];
		} else {
			fprintf(stderr, "usage: facteur pw [-s CRYPT|SHA512-CRYPT|BLF-CRYPT]  "
					"(password on standard input)\n");
			return 2;
		}
	}
	/* CRYPT: yescrypt, libxcrypt's strongest default; the others for
	 * compatibility with existing Dovecot passwd-files. */
	const char *prefix;
	if (strcmp(scheme, "CRYPT") == 0)
		prefix = "$y$";
	else if (strcmp(scheme, "SHA512-CRYPT") == 0)
		prefix = "$6$";
	else if (strcmp(scheme, "BLF-CRYPT") == 0)
		prefix = "$2b$";
	else {
		fprintf(stderr, "facteur: unknown scheme '%s'\n", scheme);
		return 2;
	}
	char pw1[1024], pw2[1024];
	if (pw_read("Enter new password: ", pw1, sizeof(pw1)) < 0) {
		fprintf(stderr, "facteur: no password given\n");
		return 1;
	}
	if (isatty(0)) {
		if (pw_read("Retype new password: ", pw2, sizeof(pw2)) < 0 || strcmp(pw1, pw2) != 0) {
			explicit_bzero(pw1, sizeof(pw1));
			explicit_bzero(pw2, sizeof(pw2));
			fprintf(stderr, "facteur: passwords do not match\n");
			return 1;
		}
		explicit_bzero(pw2, sizeof(pw2));
	}
	char *setting = crypt_gensalt_ra(prefix, 0, NULL, 0);
	if (setting == NULL) {
		explicit_bzero(pw1, sizeof(pw1));
		fprintf(stderr, "facteur: crypt_gensalt: %s\n", strerror(errno));
		return 1;
	}
	struct crypt_data data;
	memset(&data, 0, sizeof(data));
	char *hash = crypt_r(pw1, setting, &data);
	explicit_bzero(pw1, sizeof(pw1));
	free(setting);
	if (hash == NULL || hash[0] == '*') {
		fprintf(stderr, "facteur: crypt failed\n");
		return 1;
	}
	printf("{%s}%s\n", scheme, hash);
	explicit_bzero(&data, sizeof(data));
	return 0;
}
