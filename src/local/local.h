/* local.h - internal interface of the local delivery agent (src/local/).
 *
 * Layout of the role:
 *   local.c          local_main: socket QDIR/private/local, peer checks,
 *                    request parsing, worker processes (one per request)
 *   local_deliver.c  one request in a worker: queue file checks, expansion,
 *                    one child per target that takes the target's identity,
 *                    log lines, the reply
 *   local_alias.c    aliases, :include:, .forward expansion into targets
 *                    (pure: lookups come through struct local_expand_ops)
 *   local_copy.c     the message as written into mailboxes and commands:
 *                    "From " line, Return-Path/X-Original-To/Delivered-To,
 *                    ">From " quoting
 *   local_mbox.c     mbox append with fcntl + dot-lock, truncate on error
 *   local_maildir.c  Maildir tmp/ -> new/ delivery
 *   local_command.c  |command and mailbox_command: environment, $name
 *                    expansion, exit status mapping
 *   local_file.c     /file targets and reading files as another user
 *   local_virtual.c  class=virtual: virtual_mailbox_maps, uid/gid maps
 *
 * Nothing outside src/local includes this file; the master reaches the role
 * through local_main() in mail/role.h.
 */
#ifndef FACTEUR_LOCAL_LOCAL_H
#define FACTEUR_LOCAL_LOCAL_H

#include "lib/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct config;

/* ------------------------------------------------------------ results */

enum local_status {
	LOCAL_OK = 0,
	LOCAL_TEMPFAIL,
	LOCAL_PERMFAIL,
};

struct local_result {
	enum local_status status;
	char dsn[8];     /* "2.0.0", "4.2.0", "5.1.1" */
	struct buf text; /* the reason, as logged in parentheses */
};

void local_result_init(struct local_result *r);
void local_result_deinit(struct local_result *r);
void local_result_set(struct local_result *r, enum local_status status, const char *dsn,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* "sent", "deferred", "bounced" */
const char *local_status_name(enum local_status s);

/* ------------------------------------------------------------ message */

/* The message being delivered: envelope facts and a content source (the
 * queue file in production, a string or a failing source in tests). */
struct local_msg {
	const char *queue_id;
	const char *sender; /* "" for the null sender */
	/* Calls cb for each chunk of content in order; returns 0, or -1 with
	 * *error_r (NULL when cb stopped). */
	int (*content_read)(void *ctx, int (*cb)(void *cbctx, const uint8_t *data, size_t len),
			    void *cbctx, const char **error_r);
	void *content_ctx;
};

/* The recipient as written into delivery headers. */
struct local_rcpt {
	const char *address; /* final address: Delivered-To */
	const char *orig_to; /* X-Original-To, NULL to omit */
};

/* What local_copy writes besides the content (Postfix's MAIL_COPY_*). */
#define LOCAL_COPY_FROM 0x1u  /* "From SENDER DATE" first line */
#define LOCAL_COPY_QUOTE 0x2u /* ">From " for body lines starting "From " */
#define LOCAL_COPY_BLANK 0x4u /* end with an empty line (mbox separator) */
#define LOCAL_COPY_MBOX (LOCAL_COPY_FROM | LOCAL_COPY_QUOTE | LOCAL_COPY_BLANK)

/* "From SENDER Mon Nov 23 06:39:52 2026\n" (asctime of local time; the
 * null sender is MAILER-DAEMON) appended to out. */
void local_copy_from_line(struct buf *out, const char *sender, time_t now);
/* Write the delivery headers and the content to fd.  Returns 0, or -1
 * with *error_r (static text; errno kept for a write error). */
int local_copy(int fd, const struct local_msg *m, const struct local_rcpt *r, unsigned flags,
	       time_t now, const char **error_r);

/* ------------------------------------------------------------ mailboxes */

/* Append the message to the mbox file path as the current identity.
 * Refuses symbolic links, files with more than one link and files not
 * owned by the current effective uid.  Locks with a dot-lock PATH.lock and
 * fcntl; on any error truncates back to the size before the append.
 * Returns 0, or -1 with the reason in err (errno kept where meaningful). */
int local_mbox_deliver(const char *path, const struct local_msg *m, const struct local_rcpt *r,
		       time_t now, struct buf *err);
/* Same, shared with /file targets: check_owner false skips the owner
 * check (a /file target may be a file shared by several users). */
int local_mbox_append(const char *path, const struct local_msg *m, const struct local_rcpt *r,
		      time_t now, bool check_owner, struct buf *err);
/* Seconds to wait for a lock (tests lower it). */
extern unsigned local_mbox_lock_wait;

/* Deliver into the Maildir dir (created with tmp/ new/ cur/ when missing)
 * as the current identity.  Returns 0 or -1 with the reason in err. */
int local_maildir_deliver(const char *dir, const struct local_msg *m, const struct local_rcpt *r,
			  struct buf *err);
/* The unique file name "SEC.M<usec>P<pid>Q<seq>.HOST" with '/' and ':' of
 * HOST written as "\057" and "\072" (as Dovecot). */
void local_maildir_unique(struct buf *out, long sec, long usec, long pid, unsigned seq,
			  const char *hostname);

/* Append the message to a /file target (mbox format) as the current
 * identity: the file must exist or be creatable, it is locked as an mbox. */
int local_file_deliver(const char *path, const struct local_msg *m, const struct local_rcpt *r,
		       time_t now, struct buf *err);

/* ------------------------------------------------------------ identities */

struct local_privs {
	uid_t uid;
	gid_t gid;
	const char *user;  /* for initgroups; NULL: only gid */
	gid_t extra_gid;   /* also joined when has_extra (mail spool group) */
	bool has_extra;
};

/* Take the identity when running as root (setgroups, setgid, setuid, then
 * check that root cannot be regained).  Without root this is a no-op when
 * uid is our own uid, an error otherwise.  0 or -1 with *error_r. */
int local_privs_become(const struct local_privs *p, const char **error_r);
/* Read a file (at most max bytes) with the privileges p, in a child when
 * root.  Returns 1 read, 0 the file does not exist, -1 with err. */
int local_file_read_as(const struct local_privs *p, const char *path, size_t max,
		       struct buf *out, struct buf *err);

/* ------------------------------------------------------------ expansion */

enum local_target_kind {
	LOCAL_T_MAILBOX, /* the mailbox of the user named value */
	LOCAL_T_FILE,    /* append to the file value */
	LOCAL_T_COMMAND, /* run the command value */
	LOCAL_T_FORWARD, /* the address value, handed back to qmgr */
};

/* Where a target came from: decides allow_mail_to_commands/files. */
#define LOCAL_FROM_ALIAS 0x1u
#define LOCAL_FROM_FORWARD 0x2u
#define LOCAL_FROM_INCLUDE 0x4u

struct local_target {
	enum local_target_kind kind;
	char *value;
	char *owner;   /* local name whose expansion gave the target */
	uid_t uid;     /* privileges for FILE and COMMAND */
	gid_t gid;
	char *user;    /* passwd name of uid when known (initgroups), or NULL */
	unsigned from; /* LOCAL_FROM_* */
	/* Already final (expansion found it undeliverable): result holds why
	 * and no delivery is attempted. */
	bool is_done;
	struct local_result result;
};

struct local_user {
	char *name;
	uid_t uid;
	gid_t gid;
	char *home;
	char *shell;
};
void local_user_free(struct local_user *u);

struct local_expand_ops {
	/* Alias lookup of a lower-case name: 1 found (*rhs_r allocated, the
	 * privileges for its commands/files in *privs_r), 0, -1 (*error_r). */
	int (*alias_lookup)(void *ctx, const char *name, char **rhs_r, struct local_user *privs_r,
			    const char **error_r);
	/* getpwnam: 1 found (*u_r filled, caller frees), 0, -1. */
	int (*user_lookup)(void *ctx, const char *name, struct local_user *u_r,
			   const char **error_r);
	/* Read a file with the identity u: 1, 0 (missing), -1 (err). */
	int (*read_file)(void *ctx, const struct local_user *u, const char *path, struct buf *out,
			 struct buf *err);
	/* Is a domain one of ours (mydestination)?  Addresses in other
	 * domains become forwards. */
	bool (*domain_is_local)(void *ctx, const char *domain);
	void *ctx;
	const char *recipient_delimiter; /* "" or NULL: none */
	char **forward_path;             /* items with $home, $user ... */
	unsigned allow_commands;         /* LOCAL_FROM_* bits */
	unsigned allow_files;
};

#define LOCAL_EXPAND_DEPTH_MAX 100
#define LOCAL_EXPAND_TARGETS_MAX 10000
#define LOCAL_INCLUDE_MAX (1u << 20)

struct local_expansion {
	struct local_target *targets;
	size_t count;
	/* Set when the recipient itself failed (unknown user, loop, lookup
	 * error): then targets may be partial and are not delivered. */
	bool failed;
	struct local_result result;
};

/* Expand a local part (lower case, extension included) into targets:
 * aliases first, then the user's .forward, then the user's mailbox.
 * Duplicate targets are dropped.  Returns 0; on failure exp->failed. */
int local_expand(const struct local_expand_ops *ops, const char *local_part,
		 struct local_expansion *exp);
void local_expansion_free(struct local_expansion *exp);
/* Split "user+ext" at the first delimiter character: new strings; *ext_r
 * NULL when there is no extension. */
void local_split_extension(const char *local_part, const char *delimiters, char **user_r,
			   char **ext_r);
/* Expand $name, ${name}, ${name?text}, ${name:text} with lookup (NULL for
 * an unknown name: empty).  Used for forward_path. */
void local_expand_vars(struct buf *out, const char *s,
		       const char *(*lookup)(void *ctx, const char *name), void *ctx);

/* ------------------------------------------------------------ commands */

struct local_vars {
	const char *home;
	const char *user;
	const char *shell;
	const char *local;
	const char *domain;
	const char *extension;
	const char *recipient;
	const char *sender;
	const char *original_recipient;
};

/* Value of a variable by Postfix name ("home", "HOME", "extension",
 * "EXTENSION", ...); NULL when unknown.  Empty string for unset values. */
const char *local_vars_get(const struct local_vars *v, const char *name);
/* The environment of a command (HOME LOGNAME USER SHELL LOCAL DOMAIN
 * EXTENSION RECIPIENT SENDER ORIGINAL_RECIPIENT PATH, plus TZ and LANG
 * when set): NULL-terminated array freed with str_list_free(). */
char **local_command_env(const struct local_vars *v);
/* Expand $name / ${name} in a command line for /bin/sh -c.  Values are
 * quoted so that the shell never parses them: inside double quotes with
 * backslash escapes, elsewhere between single quotes; nothing is expanded
 * inside single quotes (the shell would not either).  Unknown names are
 * left for the shell. */
void local_command_expand(struct buf *out, const char *cmd, const struct local_vars *v);
/* Run /bin/sh -c cmd with envp, the message on standard input (From line
 * and delivery headers, no quoting).  Sets res: OK on exit 0, TEMPFAIL on
 * EX_TEMPFAIL, a signal, a time-out or a system error, PERMFAIL for other
 * exit codes (DSN from the sysexits table).  text_ok is the success text.
 * Returns 0 when res is OK. */
int local_command_run(const char *cmd, char *const envp[], const char *cwd,
		      const struct local_msg *m, const struct local_rcpt *r, unsigned time_limit,
		      const char *text_ok, struct local_result *res);
/* Map an exit status to (status, dsn, text) as Postfix's sys_exits. */
void local_command_exit_map(int code, enum local_status *status_r, const char **dsn_r,
			    const char **text_r);

/* ------------------------------------------------------------ virtual */

struct local_virtual_dest {
	char *path; /* absolute, without trailing '/' (caller frees) */
	bool is_maildir;
	uid_t uid;
	gid_t gid;
};

/* Resolve a virtual address with virtual_mailbox_maps (address, then
 * "@domain") under virtual_mailbox_base, and its uid/gid when as_root.
 * 0, or -1 with res set (unknown user: 5.1.1; table trouble: 4.3.x). */
int local_virtual_resolve(struct config *cfg, const char *address, bool as_root,
			  struct local_virtual_dest *d, struct local_result *res);

/* ------------------------------------------------------------ requests */

struct local_req {
	char *req;
	char *queue_id;
	unsigned rcpt;
	char *address;
	char *orig_to; /* or NULL */
	bool is_virtual;
};

/* Parse a request packet (dlv.h).  0 or -1 with *error_r (static). */
int local_req_parse(const char *data, size_t len, struct local_req *req, const char **error_r);
void local_req_free(struct local_req *req);
/* Build a reply packet: req, status (sent|deferred|bounced|expanded), dsn,
 * text (control characters replaced), forwards. */
void local_reply_build(struct buf *out, const char *req, const char *status, const char *dsn,
		       const char *text, char *const *forwards, size_t n_forwards);

/* Run one request in a worker process and write the reply on fd. */
void local_deliver_request(struct config *cfg, const char *queue_dir, bool as_root,
			   const struct local_req *req, int reply_fd);

#endif
