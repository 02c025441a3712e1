/* local_command.c - delivery to a command: "|command" in aliases and
 * .forward files, and mailbox_command.
 *
 * Called in a child that already has the right identity (the user, or the
 * alias database owner / default_privs).  As Postfix's local(8):
 *   - the command runs as /bin/sh -c COMMAND, in its own process group,
 *     with a fresh environment: HOME LOGNAME USER SHELL, the recipient
 *     facts LOCAL DOMAIN EXTENSION RECIPIENT SENDER ORIGINAL_RECIPIENT,
 *     PATH=/usr/bin:/bin, and TZ and LANG when set (export_environment);
 *   - standard input is the message with the "From " line and the
 *     Return-Path, X-Original-To and Delivered-To headers, not quoted;
 *   - exit 0 is a delivery; EX_TEMPFAIL, a signal or the time limit defer;
 *     other codes bounce with the DSN of the sysexits table (sys_exits.c).
 * The message is fed by a separate child process while this process reads
 * the command's output (kept, up to 1 KiB, for the bounce text): neither
 * side can block the other, whatever order the command reads and writes.
 */
#include "local/local.h"

#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOCAL_CMD_OUTPUT_MAX 1024

const char *local_vars_get(const struct local_vars *v, const char *name)
{
	static const struct {
		const char *lower, *upper;
		size_t off;
	} names[] = {
		{ "home", "HOME", offsetof(struct local_vars, home) },
		{ "user", "USER", offsetof(struct local_vars, user) },
		{ "user", "LOGNAME", offsetof(struct local_vars, user) },
		{ "shell", "SHELL", offsetof(struct local_vars, shell) },
		{ "local", "LOCAL", offsetof(struct local_vars, local) },
		{ "mailbox", "MAILBOX", offsetof(struct local_vars, local) },
		{ "domain", "DOMAIN", offsetof(struct local_vars, domain) },
		{ "extension", "EXTENSION", offsetof(struct local_vars, extension) },
		{ "recipient", "RECIPIENT", offsetof(struct local_vars, recipient) },
		{ "sender", "SENDER", offsetof(struct local_vars, sender) },
		{ "original_recipient", "ORIGINAL_RECIPIENT",
		  offsetof(struct local_vars, original_recipient) },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i].lower) == 0 || strcmp(name, names[i].upper) == 0) {
			const char *val = *(const char *const *)((const char *)v + names[i].off);
			return val != NULL ? val : "";
		}
	}
	return NULL;
}

static void local_env_add(char ***env, size_t *n, const char *name, const char *value)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s=", name);
	/* A newline in an environment value is harmless to execve but not to
	 * naive scripts that log it: replace control characters. */
	for (const char *p = value != NULL ? value : ""; *p != '\0'; p++)
		buf_append_char(&b, (unsigned char)*p < 0x20 ? '?' : *p);
	*env = xreallocarray(*env, *n + 2, sizeof(char *));
	(*env)[(*n)++] = buf_steal(&b);
	(*env)[*n] = NULL;
}

char **local_command_env(const struct local_vars *v)
{
	char **env = NULL;
	size_t n = 0;
	local_env_add(&env, &n, "HOME", v->home);
	local_env_add(&env, &n, "LOGNAME", v->user);
	local_env_add(&env, &n, "USER", v->user);
	local_env_add(&env, &n, "SHELL", v->shell);
	local_env_add(&env, &n, "LOCAL", v->local);
	local_env_add(&env, &n, "DOMAIN", v->domain);
	local_env_add(&env, &n, "EXTENSION", v->extension);
	local_env_add(&env, &n, "RECIPIENT", v->recipient);
	local_env_add(&env, &n, "SENDER", v->sender);
	local_env_add(&env, &n, "ORIGINAL_RECIPIENT", v->original_recipient);
	local_env_add(&env, &n, "PATH", "/usr/bin:/bin");
	static const char *const exported[] = { "TZ", "LANG" };
	for (size_t i = 0; i < 2; i++) {
		const char *val = getenv(exported[i]);
		if (val != NULL)
			local_env_add(&env, &n, exported[i], val);
	}
	return env;
}

static bool local_is_name_start(char c)
{
	return isalpha((unsigned char)c) || c == '_';
}

static bool local_is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

void local_command_expand(struct buf *out, const char *cmd, const struct local_vars *v)
{
	enum { Q_NONE, Q_SINGLE, Q_DOUBLE } q = Q_NONE;
	const char *p = cmd;
	while (*p != '\0') {
		char c = *p;
		if (q == Q_SINGLE) {
			buf_append_char(out, c);
			if (c == '\'')
				q = Q_NONE;
			p++;
			continue;
		}
		if (c == '\\' && p[1] != '\0') {
			buf_append(out, p, 2);
			p += 2;
			continue;
		}
		if (c == '\'' && q == Q_NONE) {
			q = Q_SINGLE;
		} else if (c == '"') {
			q = q == Q_DOUBLE ? Q_NONE : Q_DOUBLE;
		} else if (c == '$') {
			const char *start, *end, *after;
			if (p[1] == '{') {
				start = p + 2;
				end = start;
				while (local_is_name_char(*end))
					end++;
				after = *end == '}' ? end + 1 : NULL;
			} else {
				start = p + 1;
				end = start;
				while (local_is_name_char(*end))
					end++;
				after = end;
			}
			const char *val = NULL;
			if (after != NULL && end > start && local_is_name_start(*start)) {
				char *name = xstrndup(start, (size_t)(end - start));
				val = local_vars_get(v, name);
				free(name);
			}
			if (val == NULL) {
				/* Unknown: the shell expands it (or not). */
				buf_append_char(out, c);
				p++;
				continue;
			}
			if (q == Q_DOUBLE) {
				for (const char *s = val; *s != '\0'; s++) {
					if (*s == '\\' || *s == '$' || *s == '`' || *s == '"')
						buf_append_char(out, '\\');
					buf_append_char(out, *s);
				}
			} else {
				buf_append_char(out, '\'');
				for (const char *s = val; *s != '\0'; s++) {
					if (*s == '\'')
						buf_append_str(out, "'\\''");
					else
						buf_append_char(out, *s);
				}
				buf_append_char(out, '\'');
			}
			p = after;
			continue;
		}
		buf_append_char(out, c);
		p++;
	}
}

void local_command_exit_map(int code, enum local_status *status_r, const char **dsn_r,
			    const char **text_r)
{
	static const struct {
		int code;
		const char *dsn;
		const char *text;
	} table[] = {
		{ 64, "5.3.0", "command line usage error" },
		{ 65, "5.6.0", "data format error" },
		{ 66, "5.3.0", "cannot open input" },
		{ 67, "5.1.1", "user unknown" },
		{ 68, "5.1.2", "host name unknown" },
		{ 69, "5.3.0", "service unavailable" },
		{ 70, "5.3.0", "internal software error" },
		{ 71, "4.3.0", "system resource problem" },
		{ 72, "5.3.0", "critical OS file missing" },
		{ 73, "5.2.0", "can't create user output file" },
		{ 74, "5.3.0", "input/output error" },
		{ 75, "4.3.0", "temporary failure" },
		{ 76, "5.5.0", "remote error in protocol" },
		{ 77, "5.7.0", "permission denied" },
		{ 78, "5.3.5", "local configuration error" },
	};
	if (code == 0) {
		*status_r = LOCAL_OK;
		*dsn_r = "2.0.0";
		*text_r = "";
		return;
	}
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (table[i].code == code) {
			*dsn_r = table[i].dsn;
			*text_r = table[i].text;
			*status_r = table[i].dsn[0] == '4' ? LOCAL_TEMPFAIL : LOCAL_PERMFAIL;
			return;
		}
	}
	*status_r = LOCAL_PERMFAIL;
	*dsn_r = "5.3.0";
	*text_r = "unknown mail system error";
}

static void local_command_child(const char *cmd, char *const envp[], const char *cwd, int in_fd,
				int out_fd)
{
	(void)setpgid(0, 0);
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
		_exit(71);
	if (in_fd > 2)
		(void)close(in_fd);
	if (out_fd > 2)
		(void)close(out_fd);
	static const int sigs[] = { SIGPIPE, SIGTERM, SIGHUP, SIGINT, SIGCHLD, SIGALRM };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		(void)signal(sigs[i], SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	if (cwd == NULL || chdir(cwd) < 0)
		(void)chdir("/");
	execle("/bin/sh", "sh", "-c", cmd, (char *)NULL, envp);
	_exit(71); /* EX_OSERR: deferred */
}

static void local_output_append(struct buf *out, const char *data, size_t n)
{
	for (size_t i = 0; i < n && out->len < LOCAL_CMD_OUTPUT_MAX; i++) {
		unsigned char c = (unsigned char)data[i];
		buf_append_char(out, c == '\n' ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : (char)c);
	}
}

static long local_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int local_command_run(const char *cmd, char *const envp[], const char *cwd,
		      const struct local_msg *m, const struct local_rcpt *r, unsigned time_limit,
		      const char *text_ok, struct local_result *res)
{
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0) {
		local_result_set(res, LOCAL_TEMPFAIL, "4.3.0", "pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe2(out, O_CLOEXEC) < 0) {
		local_result_set(res, LOCAL_TEMPFAIL, "4.3.0", "pipe: %s", strerror(errno));
		(void)close(in[0]);
		(void)close(in[1]);
		return -1;
	}
	pid_t cpid = fork();
	if (cpid == 0) {
		(void)close(in[1]);
		(void)close(out[0]);
		local_command_child(cmd, envp, cwd, in[0], out[1]);
	}
	int fork_errno = errno;
	(void)close(in[0]);
	(void)close(out[1]);
	if (cpid < 0) {
		(void)close(in[1]);
		(void)close(out[0]);
		local_result_set(res, LOCAL_TEMPFAIL, "4.3.0", "fork: %s", strerror(fork_errno));
		return -1;
	}
	(void)setpgid(cpid, cpid);

	/* The feeder writes the message; a command that exits without
	 * reading it is not an error by itself (its exit status decides). */
	pid_t fpid = fork();
	if (fpid == 0) {
		(void)close(out[0]);
		(void)signal(SIGPIPE, SIG_IGN);
		const char *cerr = NULL;
		if (local_copy(in[1], m, r, LOCAL_COPY_FROM, time(NULL), &cerr) < 0)
			_exit(errno == EPIPE ? 2 : 1);
		_exit(close(in[1]) < 0 && errno != EPIPE ? 1 : 0);
	}
	(void)close(in[1]);
	if (fpid < 0) {
		(void)kill(-cpid, SIGKILL);
		(void)close(out[0]);
		while (waitpid(cpid, NULL, 0) < 0 && errno == EINTR)
			;
		local_result_set(res, LOCAL_TEMPFAIL, "4.3.0", "fork: %s", strerror(errno));
		return -1;
	}

	struct buf output = BUF_INIT;
	long deadline = local_now_ms() + (long)time_limit * 1000;
	bool timed_out = false, eof = false;
	int cstatus = 0;
	bool reaped = false;
	while (!reaped) {
		long left = deadline - local_now_ms();
		if (left <= 0) {
			timed_out = true;
			break;
		}
		if (!eof) {
			struct pollfd pfd = { out[0], POLLIN, 0 };
			int pr = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
			if (pr < 0 && errno != EINTR)
				break;
			if (pr > 0) {
				char chunk[4096];
				ssize_t n = read(out[0], chunk, sizeof(chunk));
				if (n > 0)
					local_output_append(&output, chunk, (size_t)n);
				else if (n == 0 || (errno != EINTR && errno != EAGAIN))
					eof = true;
			}
		}
		pid_t w = waitpid(cpid, &cstatus, WNOHANG);
		if (w == cpid) {
			reaped = true;
		} else if (eof) {
			struct timespec ts = { 0, 20 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	if (!reaped) {
		(void)kill(-cpid, SIGKILL);
		while (waitpid(cpid, &cstatus, 0) < 0 && errno == EINTR)
			;
	}
	/* Drain what is left of the output without blocking on grandchildren
	 * that keep the pipe open. */
	(void)fcntl(out[0], F_SETFL, O_NONBLOCK);
	char chunk[4096];
	ssize_t n;
	while ((n = read(out[0], chunk, sizeof(chunk))) > 0)
		local_output_append(&output, chunk, (size_t)n);
	(void)close(out[0]);
	/* The feeder ends by itself (EPIPE at worst) unless a grandchild of
	 * the command holds standard input open: give it a second. */
	int fstatus = 0;
	pid_t fw = 0;
	for (int i = 0; i < 50 && (fw = waitpid(fpid, &fstatus, WNOHANG)) == 0; i++) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (fw != fpid) {
		(void)kill(fpid, SIGKILL);
		while (waitpid(fpid, &fstatus, 0) < 0 && errno == EINTR)
			;
	}

	struct buf outtext = BUF_INIT;
	if (output.len > 0)
		buf_printf(&outtext, ". Command output: %s", buf_cstr(&output));
	int ret = -1;
	if (timed_out) {
		local_result_set(res, LOCAL_TEMPFAIL, "4.3.0",
				 "Command time limit exceeded: \"%s\"%s", cmd, buf_cstr(&outtext));
	} else if (WIFSIGNALED(cstatus)) {
		local_result_set(res, LOCAL_TEMPFAIL, "4.3.0", "Command died with signal %d: \"%s\"%s",
				 WTERMSIG(cstatus), cmd, buf_cstr(&outtext));
	} else if (WIFEXITED(cstatus) && WEXITSTATUS(cstatus) != 0) {
		enum local_status st;
		const char *dsn, *why;
		local_command_exit_map(WEXITSTATUS(cstatus), &st, &dsn, &why);
		local_result_set(res, st, dsn, "Command died with status %d: \"%s\"%s",
				 WEXITSTATUS(cstatus), cmd, buf_cstr(&outtext));
		(void)why;
	} else if (WIFEXITED(fstatus) && WEXITSTATUS(fstatus) == 1) {
		/* The command succeeded on a truncated input: try again. */
		local_result_set(res, LOCAL_TEMPFAIL, "4.3.0",
				 "cannot copy the message to command \"%s\"", cmd);
	} else {
		local_result_set(res, LOCAL_OK, "2.0.0", "%s", text_ok);
		ret = 0;
	}
	buf_deinit(&outtext);
	buf_deinit(&output);
	return ret;
}
