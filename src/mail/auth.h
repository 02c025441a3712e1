/* auth.h - user authentication shared by POP3, IMAP and SMTP AUTH.
 *
 * Two sources of users:
 *  - the passwd-file named by auth_passwd_file, in Dovecot's format
 *      user[@domain]:{SCHEME}hash[:uid:gid:(gecos):home:(shell):extra]
 *    (blank lines and # comments ignored; re-read when its inode, size or
 *    mtime changes).  Schemes: CRYPT (any crypt(3) hash; also the default
 *    when there is no {SCHEME}), SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT,
 *    MD5-CRYPT, and PLAIN (accepted with a warning, logged once per load);
 *  - system accounts (getpwnam, and getspnam for the shadow hash; reading
 *    /etc/shadow needs root).
 *
 * Names containing '@' are virtual users looked up only in the passwd-file;
 * the domain is case-insensitive, the local part is compared as given.
 * Other names are looked up in the passwd-file first, then in the system.
 *
 * Unknown users and wrong passwords give the same result (0) and take
 * similar time: an unknown user is checked against a dummy hash.  Hashes
 * are compared in constant time and secrets are wiped after use.
 */
#ifndef FACTEUR_MAIL_AUTH_H
#define FACTEUR_MAIL_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

struct config_diags;

#define AUTH_USER_MAX 255
#define AUTH_PASSWORD_MAX 1024

struct auth_user {
	char *name;	/* canonical: as in the file (domain lower-cased) or the login */
	bool is_virtual; /* from the passwd-file */
	uid_t uid;	/* (uid_t)-1 when the passwd-file entry has none */
	gid_t gid;	/* (gid_t)-1 likewise */
	char *home;	/* NULL when the entry has none */
};

void auth_user_deinit(struct auth_user *user);

struct auth_db;

/* passwd_file may be NULL or "" (no virtual users).  Returns NULL with
 * *error_r when the file cannot be read (a configuration error at start);
 * malformed lines are logged as "file:line: ..." and skipped. */
struct auth_db *auth_db_new(const char *passwd_file, bool system_users, const char **error_r);
/* A database built from passwd-file text in memory (fuzzing, tests): name
 * is used in diagnostics; problems also go to diags when not NULL. */
struct auth_db *auth_db_new_from_text(const char *name, const char *text, size_t len,
				      bool system_users, struct config_diags *diags);
void auth_db_free(struct auth_db **db);
/* Number of usable entries loaded from the passwd-file. */
size_t auth_db_count(const struct auth_db *db);
/* Diagnostics of the last (re)load of the passwd-file: malformed lines and
 * unknown schemes, as "file:line" items. */
const struct config_diags *auth_db_diags(const struct auth_db *db);

/* Check user and password.  Returns 1 and fills *user_r (release with
 * auth_user_deinit) when they match; 0 for an unknown user, a wrong
 * password, a locked account, a bad entry or an over-long name/password;
 * -1 on a temporary failure (passwd-file or shadow unreadable), with
 * *error_r set in both 0 and -1 cases (for the log, never for the client). */
int auth_db_verify(struct auth_db *db, const char *user, const char *password,
		   struct auth_user *user_r, const char **error_r);

/* Compare two byte strings in time that depends only on their lengths. */
bool auth_secret_equal(const void *a, size_t a_len, const void *b, size_t b_len);

/* Failed-login throttling per client address: each failure within
 * window_s seconds of the previous one doubles the delay before the next
 * answer to that address (1 s, 2 s, 4 s, ... up to max_delay_ms); a
 * success forgets the address.  At most max_entries addresses are kept;
 * the least recently used is evicted. */
#define AUTH_THROTTLE_DELAY_MAX_MS 15000u
#define AUTH_THROTTLE_WINDOW_S 300
#define AUTH_THROTTLE_ENTRIES 10000u

struct auth_throttle;

struct auth_throttle *auth_throttle_new(unsigned max_delay_ms, time_t window_s, size_t max_entries);
void auth_throttle_free(struct auth_throttle **t);
unsigned auth_throttle_delay_ms(struct auth_throttle *t, const char *addr, time_t now);
void auth_throttle_failure(struct auth_throttle *t, const char *addr, time_t now);
void auth_throttle_success(struct auth_throttle *t, const char *addr, time_t now);
size_t auth_throttle_count(const struct auth_throttle *t);

/* Password hash computations made so far by this process (an unknown user
 * costs one, as a wrong password does). */
unsigned long auth_hash_check_count(void);

#endif
