/* imapd_cmd.c - the command handlers of the logged-in IMAP session (RFC
 * 3501 sections 6.1-6.4 plus IDLE 2177, UIDPLUS 4315, MOVE 6851, NAMESPACE
 * 2342, ID 2971, ENABLE 5161, UNSELECT 3691, SPECIAL-USE 6154).
 *
 * One command table: name, handler, flags (needs a selected mailbox, has a
 * UID form, must not announce expunges).  Every handler has the same shape:
 * parse -> check -> act -> untagged answers -> imapd_reply().  The
 * dispatcher then sends the untagged updates of the selected mailbox
 * (except after FETCH, STORE and SEARCH, RFC 3501 7.4.1) and the tagged
 * answer.  Failures use RFC 5530 response codes.
 */
#include "imapd/imapd_int.h"

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/mailbox.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
	CMD_SELECTED = 1u << 0,	   /* only in the selected state */
	CMD_UID = 1u << 1,	   /* "UID <name>" exists */
	CMD_NO_EXPUNGE = 1u << 2,  /* non-UID form: no untagged EXPUNGE (7.4.1) */
	CMD_NO_UPDATES = 1u << 3,  /* no untagged updates at all (LOGOUT) */
};

#define IMAPD_PERMANENTFLAGS "\\Answered \\Flagged \\Deleted \\Seen \\Draft"
#define IMAPD_STORABLE                                                                         \
	(MAILBOX_FLAG_DRAFT | MAILBOX_FLAG_FLAGGED | MAILBOX_FLAG_ANSWERED | MAILBOX_FLAG_SEEN | \
	 MAILBOX_FLAG_DELETED)

/* ---- Argument helpers ---- */

static const char *imapd_arg_str(const struct imap_cmd *c, size_t i)
{
	return i < c->argc ? imap_arg_astring(&c->args[i]) : NULL;
}

/* A mailbox name, canonical ("INBOX"), checked.  NULL after setting the
 * answer. */
static char *imapd_name_checked(struct imapd_session *s, const char *raw)
{
	if (raw == NULL) {
		imapd_reply(s, "BAD", "Mailbox name expected.");
		return NULL;
	}
	char *name = imapd_name_canon(raw);
	const char *error;
	if (imap_mutf7_check(name) < 0) {
		imapd_reply(s, "NO", "[CANNOT] Invalid mailbox name (modified UTF-7 expected).");
		free(name);
		return NULL;
	}
	if (folder_name_check(s->st, name, &error) < 0) {
		imapd_reply(s, "NO", "[CANNOT] Invalid mailbox name: %s", error);
		free(name);
		return NULL;
	}
	return name;
}

static char *imapd_arg_mailbox(struct imapd_session *s, const struct imap_cmd *c, size_t i)
{
	return imapd_name_checked(s, imapd_arg_str(c, i));
}

static bool imapd_is_selected(const struct imapd_session *s, const char *name)
{
	return s->sel_name != NULL && strcmp(s->sel_name, name) == 0;
}

/* 1 exists, 0 not (answer set with code), -1 error (answer set). */
static int imapd_mailbox_exists(struct imapd_session *s, const char *name, const char *code)
{
	const char *error;
	int r = folder_exists(s->st, name, &error);
	if (r < 0) {
		log_error("mailbox %s: %s", name, error);
		imapd_reply(s, "NO", "[SERVERBUG] Internal error.");
	} else if (r == 0) {
		imapd_reply(s, "NO", "[%s] Mailbox doesn't exist: %s", code, name);
	}
	return r;
}

/* The messages of a sequence set, as sequence numbers of the selected
 * mailbox in ascending order.  A message number past the end is an error
 * for sequence sets; unknown UIDs are ignored (RFC 3501 6.4.8).  -1 after
 * setting a BAD answer. */
static int imapd_set_collect(struct imapd_session *s, const char *text, bool uid,
			     size_t **seqs_r, size_t *n_r)
{
	struct imap_seqset set;
	const char *error;
	*seqs_r = NULL;
	*n_r = 0;
	if (text == NULL || imap_seqset_parse(text, &set, &error) < 0) {
		imapd_reply(s, "BAD", "Invalid messageset.");
		return -1;
	}
	size_t count = mailbox_count(s->mb);
	if (!uid) {
		for (size_t i = 0; i < set.count; i++) {
			uint32_t lo = set.ranges[i].lo, hi = set.ranges[i].hi;
			if ((lo != IMAP_SEQ_STAR && lo > count) ||
			    (hi != IMAP_SEQ_STAR && hi > count)) {
				imap_seqset_deinit(&set);
				imapd_reply(s, "BAD", "Invalid messageset.");
				return -1;
			}
		}
	}
	uint32_t star = uid ? (count > 0 ? mailbox_msg_uid(s->mb, count) : 0) : (uint32_t)count;
	size_t *seqs = xcalloc(count + 1, sizeof(size_t));
	size_t n = 0;
	for (size_t seq = 1; seq <= count; seq++) {
		uint32_t v = uid ? mailbox_msg_uid(s->mb, seq) : (uint32_t)seq;
		if (imap_seqset_contains(&set, v, star))
			seqs[n++] = seq;
	}
	imap_seqset_deinit(&set);
	*seqs_r = seqs;
	*n_r = n;
	return 0;
}

/* Read message seq of mb whole into out. */
static int imapd_msg_read(struct mailbox *mb, size_t seq, struct buf *out, const char **error_r)
{
	int fd;
	if (mailbox_msg_open(mb, seq, &fd, error_r) < 0)
		return -1;
	uint64_t left = mailbox_msg_size(mb, seq);
	char tmp[65536];
	while (left > 0) {
		size_t want = left < sizeof(tmp) ? (size_t)left : sizeof(tmp);
		ssize_t n = read(fd, tmp, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error_r = n < 0 ? strerror(errno) : "message file shorter than expected";
			(void)close(fd);
			return -1;
		}
		buf_append(out, tmp, (size_t)n);
		left -= (uint64_t)n;
	}
	(void)close(fd);
	return 0;
}

/* ---- Any state (RFC 3501 6.1) ---- */

static void cmd_capability(struct imapd_session *s, struct imap_cmd *c)
{
	(void)c;
	imapd_untagged(s, "CAPABILITY " IMAP_CAPABILITY_AUTHED);
	imapd_reply(s, "OK", "Capability completed.");
}

static void cmd_noop(struct imapd_session *s, struct imap_cmd *c)
{
	imapd_reply(s, "OK", "%s completed.", c->name);
}

static void cmd_logout(struct imapd_session *s, struct imap_cmd *c)
{
	(void)c;
	imapd_untagged(s, "BYE Logging out");
	imapd_reply(s, "OK", "Logout completed.");
	s->logout = true;
}

static void cmd_id(struct imapd_session *s, struct imap_cmd *c)
{
	/* RFC 2971 3.1: a list of field/value pairs or NIL. */
	if (c->argc != 1 || (c->args[0].type != IMAP_ARG_LIST && c->args[0].type != IMAP_ARG_NIL)) {
		imapd_reply(s, "BAD", "Invalid arguments.");
		return;
	}
	imapd_untagged(s, "ID (\"name\" \"facteur\")");
	imapd_reply(s, "OK", "ID completed.");
}

static void cmd_enable(struct imapd_session *s, struct imap_cmd *c)
{
	if (c->argc == 0) {
		imapd_reply(s, "BAD", "Missing capability.");
		return;
	}
	/* RFC 5161 3.1: nothing we announce can be enabled. */
	imapd_untagged(s, "ENABLED");
	imapd_reply(s, "OK", "Enabled.");
}

static void cmd_starttls(struct imapd_session *s, struct imap_cmd *c)
{
	(void)c;
	imapd_reply(s, "BAD", "TLS not available yet");
}

static void cmd_login(struct imapd_session *s, struct imap_cmd *c)
{
	(void)c;
	imapd_reply(s, "BAD", "Already logged in");
}

/* ---- Authenticated state (RFC 3501 6.3) ---- */

static void cmd_namespace(struct imapd_session *s, struct imap_cmd *c)
{
	(void)c;
	imapd_untagged(s, "NAMESPACE ((\"\" \"%c\")) NIL NIL", s->sep);
	imapd_reply(s, "OK", "Namespace completed.");
}

static void cmd_select(struct imapd_session *s, struct imap_cmd *c)
{
	bool readonly = strcmp(c->name, "EXAMINE") == 0;
	/* RFC 3501 6.3.1: a SELECT closes the selected mailbox first (without
	 * expunge), and a failed one leaves none selected. */
	imapd_select_close(s);
	if (c->argc != 1) {
		imapd_reply(s, "BAD", "Invalid arguments.");
		return;
	}
	char *name = imapd_arg_mailbox(s, c, 0);
	if (name == NULL)
		return;
	if (imapd_mailbox_exists(s, name, "NONEXISTENT") != 1) {
		free(name);
		return;
	}
	const char *error;
	if (imapd_select_open(s, name, readonly, &error) < 0) {
		log_error("select %s: %s", name, error);
		imapd_reply(s, "NO", "[SERVERBUG] Cannot open the mailbox.");
		free(name);
		return;
	}
	free(name);
	struct mailbox *mb = s->mb;
	size_t count = mailbox_count(mb), unseen = 0;
	for (size_t seq = 1; seq <= count && unseen == 0; seq++)
		if ((mailbox_msg_flags(mb, seq) & MAILBOX_FLAG_SEEN) == 0)
			unseen = seq;
	imapd_untagged(s, "FLAGS (" IMAPD_PERMANENTFLAGS ")");
	if (readonly)
		imapd_untagged(s, "OK [PERMANENTFLAGS ()] Read-only mailbox.");
	else
		imapd_untagged(s, "OK [PERMANENTFLAGS (" IMAPD_PERMANENTFLAGS ")] Flags permitted.");
	imapd_untagged(s, "%zu EXISTS", count);
	imapd_untagged(s, "%zu RECENT", s->view_recent);
	if (unseen > 0)
		imapd_untagged(s, "OK [UNSEEN %zu] First unseen.", unseen);
	imapd_untagged(s, "OK [UIDVALIDITY %" PRIu32 "] UIDs valid", mailbox_uidvalidity(mb));
	imapd_untagged(s, "OK [UIDNEXT %" PRIu32 "] Predicted next UID", mailbox_uidnext(mb));
	imapd_reply(s, "OK", "[%s] %s completed.", readonly ? "READ-ONLY" : "READ-WRITE",
		    readonly ? "Examine" : "Select");
}

/* The NO answer to a failed folder operation (RFC 5530 codes), from the
 * errno the folder store set: EEXIST, ENOENT (reported as NONEXISTENT only
 * when missing names the mailbox looked for), anything else CANNOT. */
static void imapd_reply_folder_error(struct imapd_session *s, const char *missing,
				     const char *error)
{
	if (errno == EEXIST)
		imapd_reply(s, "NO", "[ALREADYEXISTS] Mailbox already exists.");
	else if (errno == ENOENT && missing != NULL)
		imapd_reply(s, "NO", "[NONEXISTENT] Mailbox doesn't exist: %s", missing);
	else
		imapd_reply(s, "NO", "[CANNOT] %s", error);
}

static void cmd_create(struct imapd_session *s, struct imap_cmd *c)
{
	if (c->argc != 1) {
		imapd_reply(s, "BAD", "Invalid arguments.");
		return;
	}
	const char *raw = imapd_arg_str(c, 0);
	if (raw == NULL) {
		imapd_reply(s, "BAD", "Mailbox name expected.");
		return;
	}
	/* RFC 3501 6.3.3: a trailing separator asks for a parent; the name
	 * checks apply to the name without it. */
	size_t len = strlen(raw);
	char *trimmed = xstrdup(raw);
	bool parent = len > 1 && trimmed[len - 1] == s->sep;
	if (parent)
		trimmed[len - 1] = '\0';
	char *name = imapd_name_checked(s, trimmed);
	free(trimmed);
	if (name == NULL)
		return;
	const char *error;
	if (strcmp(name, "INBOX") == 0) {
		imapd_reply(s, "NO", "[ALREADYEXISTS] Mailbox already exists.");
	} else if (folder_create(s->st, parent ? raw : name, &error) < 0) {
		imapd_reply_folder_error(s, NULL, error);
	} else {
		imapd_reply(s, "OK", "Create completed.");
	}
	free(name);
}

static void cmd_delete(struct imapd_session *s, struct imap_cmd *c)
{
	if (c->argc != 1) {
		imapd_reply(s, "BAD", "Invalid arguments.");
		return;
	}
	char *name = imapd_arg_mailbox(s, c, 0);
	if (name == NULL)
		return;
	const char *error;
	if (strcmp(name, "INBOX") == 0) {
		imapd_reply(s, "NO", "[CANNOT] INBOX can't be deleted.");
	} else if (imapd_is_selected(s, name)) {
		imapd_reply(s, "NO", "[CANNOT] Can't delete the selected mailbox.");
	} else if (folder_delete(s->st, name, &error) < 0) {
		imapd_reply_folder_error(s, name, error);
	} else {
		imapd_reply(s, "OK", "Delete completed.");
	}
	free(name);
}

static void cmd_rename(struct imapd_session *s, struct imap_cmd *c)
{
	if (c->argc != 2) {
		imapd_reply(s, "BAD", "Invalid arguments.");
		return;
	}
	char *from = imapd_arg_mailbox(s, c, 0);
	if (from == NULL)
		return;
	char *to = imapd_arg_mailbox(s, c, 1);
	if (to == NULL) {
		free(from);
		return;
	}
	const char *error;
	if (strcmp(to, "INBOX") == 0) {
		imapd_reply(s, "NO", "[ALREADYEXISTS] Mailbox already exists.");
	} else if (imapd_is_selected(s, from) && strcmp(from, "INBOX") != 0) {
		/* Our open mailbox would keep the old path. */
		imapd_reply(s, "NO", "[CANNOT] Can't rename the selected mailbox.");
	} else if (folder_rename(s->st, from, to, &error) < 0) {
		imapd_reply_folder_error(s, from, error);
	} else {
		imapd_reply(s, "OK", "Rename completed.");
	}
	free(from);
	free(to);
}

static void cmd_subscribe(struct imapd_session *s, struct imap_cmd *c)
{
	bool on = strcmp(c->name, "SUBSCRIBE") == 0;
	if (c->argc != 1) {
		imapd_reply(s, "BAD", "Invalid arguments.");
		return;
	}
	char *name = imapd_arg_mailbox(s, c, 0);
	if (name == NULL)
		return;
	const char *error;
	if (folder_subscribe(s->st, name, on, &error) < 0) {
		log_error("%s %s: %s", c->name, name, error);
		imapd_reply(s, "NO", "[SERVERBUG] %s", error);
	} else {
		imapd_reply(s, "OK", "%s completed.", on ? "Subscribe" : "Unsubscribe");
	}
	free(name);
}

static void imapd_attrs_append(struct buf *out, unsigned attrs)
{
	static const struct {
		unsigned bit;
		const char *text;
	} names[] = {
		{ FOLDER_ATTR_NOSELECT, "\\Noselect" },
		{ FOLDER_ATTR_NOINFERIORS, "\\NoInferiors" },
		{ FOLDER_ATTR_HASCHILDREN, "\\HasChildren" },
		{ FOLDER_ATTR_HASNOCHILDREN, "\\HasNoChildren" },
		{ FOLDER_ATTR_DRAFTS, "\\Drafts" },
		{ FOLDER_ATTR_SENT, "\\Sent" },
		{ FOLDER_ATTR_TRASH, "\\Trash" },
		{ FOLDER_ATTR_JUNK, "\\Junk" },
		{ FOLDER_ATTR_ARCHIVE, "\\Archive" },
		{ FOLDER_ATTR_ALL, "\\All" },
		{ FOLDER_ATTR_FLAGGED, "\\Flagged" },
	};
	bool first = true;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((attrs & names[i].bit) == 0)
			continue;
		if (!first)
			buf_append_char(out, ' ');
		buf_append_str(out, names[i].text);
		first = false;
	}
}

static void cmd_list(struct imapd_session *s, struct imap_cmd *c)
{
	bool lsub = strcmp(c->name, "LSUB") == 0;
	const char *ref = imapd_arg_str(c, 0), *pattern = imapd_arg_str(c, 1);
	/* LIST-EXTENDED is not announced: exactly reference and pattern. */
	if (c->argc != 2 || ref == NULL || pattern == NULL) {
		imapd_reply(s, "BAD", "Invalid arguments.");
		return;
	}
	if (!lsub && pattern[0] == '\0') {
		/* RFC 3501 6.3.8: the hierarchy delimiter and root name. */
		imapd_untagged(s, "LIST (\\Noselect) \"%c\" \"\"", s->sep);
		imapd_reply(s, "OK", "List completed.");
		return;
	}
	struct buf full = BUF_INIT;
	buf_append_str(&full, ref);
	buf_append_str(&full, pattern);
	struct folder_info *list = NULL;
	size_t count = 0;
	const char *error;
	if (folder_list(s->st, &list, &count, &error) < 0) {
		log_error("%s: %s", c->name, error);
		imapd_reply(s, "NO", "[SERVERBUG] Internal error.");
		buf_deinit(&full);
		return;
	}
	for (size_t i = 0; i < count; i++) {
		unsigned a = list[i].attrs;
		if (!folder_pattern_match(s->st, buf_cstr(&full), list[i].name))
			continue;
		unsigned shown;
		if (lsub) {
			if ((a & FOLDER_ATTR_SUBSCRIBED) == 0)
				continue;
			shown = (a & (FOLDER_ATTR_NONEXISTENT | FOLDER_ATTR_NOSELECT)) != 0
					? FOLDER_ATTR_NOSELECT
					: 0;
		} else {
			/* A subscribed name that does not exist is not listed;
			 * a missing parent of existing folders is, \Noselect. */
			if ((a & FOLDER_ATTR_NONEXISTENT) != 0 && (a & FOLDER_ATTR_NOSELECT) == 0 &&
			    (a & FOLDER_ATTR_HASCHILDREN) == 0)
				continue;
			shown = a & ~(FOLDER_ATTR_SUBSCRIBED | FOLDER_ATTR_NONEXISTENT);
			if ((a & FOLDER_ATTR_NONEXISTENT) != 0)
				shown |= FOLDER_ATTR_NOSELECT;
		}
		buf_printf(&s->out, "* %s (", lsub ? "LSUB" : "LIST");
		imapd_attrs_append(&s->out, shown);
		buf_printf(&s->out, ") \"%c\" ", s->sep);
		imap_astring_append(&s->out, list[i].name);
		buf_append_str(&s->out, "\r\n");
		imapd_out_maybe_flush(s);
	}
	folder_list_free(&list, count);
	buf_deinit(&full);
	imapd_reply(s, "OK", "%s completed.", lsub ? "Lsub" : "List");
}

static void cmd_status(struct imapd_session *s, struct imap_cmd *c)
{
	static const char *const items[] = { "MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY",
					     "UNSEEN" };
	if (c->argc != 2 || c->args[1].type != IMAP_ARG_LIST || c->args[1].count == 0) {
		imapd_reply(s, "BAD", "Invalid arguments.");
		return;
	}
	const struct imap_arg *l = &c->args[1];
	for (size_t i = 0; i < l->count; i++) {
		bool known = false;
		for (size_t k = 0; k < 5 && l->list[i].type == IMAP_ARG_ATOM; k++)
			known = known || str_casecmp(l->list[i].str, items[k]) == 0;
		if (!known) {
			imapd_reply(s, "BAD", "Unknown STATUS item.");
			return;
		}
	}
	char *name = imapd_arg_mailbox(s, c, 0);
	if (name == NULL)
		return;
	struct mailbox *mb;
	struct mailbox *tmp = NULL;
	const char *error;
	if (imapd_is_selected(s, name)) {
		/* Tell the selected mailbox's news first, so that the counts
		 * agree with the EXISTS the client has. */
		imapd_view_update(s);
		mb = s->mb;
	} else {
		if (imapd_mailbox_exists(s, name, "NONEXISTENT") != 1) {
			free(name);
			return;
		}
		tmp = imapd_folder_open(s, name, &error);
		if (tmp == NULL) {
			log_error("status %s: %s", name, error);
			imapd_reply(s, "NO", "[SERVERBUG] Cannot open the mailbox.");
			free(name);
			return;
		}
		mb = tmp;
	}
	size_t count = mailbox_count(mb), recent = 0, unseen = 0;
	for (size_t seq = 1; seq <= count; seq++) {
		if (mailbox_msg_recent(mb, seq))
			recent++;
		if ((mailbox_msg_flags(mb, seq) & MAILBOX_FLAG_SEEN) == 0)
			unseen++;
	}
	buf_append_str(&s->out, "* STATUS ");
	imap_astring_append(&s->out, name);
	buf_append_str(&s->out, " (");
	for (size_t i = 0; i < l->count; i++) {
		const char *it = l->list[i].str;
		if (i > 0)
			buf_append_char(&s->out, ' ');
		if (str_casecmp(it, "MESSAGES") == 0)
			buf_printf(&s->out, "MESSAGES %zu", count);
		else if (str_casecmp(it, "RECENT") == 0)
			buf_printf(&s->out, "RECENT %zu", recent);
		else if (str_casecmp(it, "UIDNEXT") == 0)
			buf_printf(&s->out, "UIDNEXT %" PRIu32, mailbox_uidnext(mb));
		else if (str_casecmp(it, "UIDVALIDITY") == 0)
			buf_printf(&s->out, "UIDVALIDITY %" PRIu32, mailbox_uidvalidity(mb));
		else
			buf_printf(&s->out, "UNSEEN %zu", unseen);
	}
	buf_append_str(&s->out, ")\r\n");
	mailbox_free(&tmp);
	free(name);
	imapd_reply(s, "OK", "Status completed.");
}

static void cmd_append(struct imapd_session *s, struct imap_cmd *c)
{
	/* RFC 3501 6.3.11: mailbox [flag-list] [date-time] literal. */
	if (c->argc < 2 || c->argc > 4) {
		imapd_reply(s, "BAD", "Invalid arguments.");
		return;
	}
	const struct imap_arg *msg = &c->args[c->argc - 1];
	if (msg->type != IMAP_ARG_LITERAL && msg->type != IMAP_ARG_QUOTED) {
		imapd_reply(s, "BAD", "Message literal expected.");
		return;
	}
	unsigned flags = 0;
	time_t date = 0;
	bool have_flags = false, have_date = false;
	const char *error;
	for (size_t i = 1; i + 1 < c->argc; i++) {
		const struct imap_arg *a = &c->args[i];
		size_t keywords;
		if (a->type == IMAP_ARG_LIST && !have_flags && !have_date) {
			if (imap_flags_parse(a, 1, &flags, &keywords, &error) < 0) {
				imapd_reply(s, "BAD", "%s", error);
				return;
			}
			have_flags = true;
		} else if (a->type == IMAP_ARG_QUOTED && !have_date) {
			if (imap_datetime_parse(a->str, &date) < 0) {
				imapd_reply(s, "BAD", "Invalid date-time.");
				return;
			}
			have_date = true;
		} else {
			imapd_reply(s, "BAD", "Invalid arguments.");
			return;
		}
	}
	char *name = imapd_arg_mailbox(s, c, 0);
	if (name == NULL)
		return;
	if (msg->len == 0) {
		imapd_reply(s, "NO", "Can't save a zero byte message.");
		free(name);
		return;
	}
	if (imapd_mailbox_exists(s, name, "TRYCREATE") != 1) {
		free(name);
		return;
	}
	/* The selected mailbox too is appended to through its own instance:
	 * the dispatcher's sync then sends EXISTS. */
	struct mailbox *mb = imapd_folder_open(s, name, &error);
	uint32_t uid = 0;
	if (mb == NULL) {
		log_error("append %s: %s", name, error);
		imapd_reply(s, "NO", "[SERVERBUG] Cannot open the mailbox.");
	} else if (mailbox_append(mb, msg->str, msg->len, flags & IMAPD_STORABLE, date, &uid,
				  &error) < 0) {
		log_error("append %s: %s", name, error);
		imapd_reply(s, "NO", "[%s] %s", errno == ENOTSUP ? "CANNOT" : "SERVERBUG",
			    errno == ENOTSUP ? "Mailbox does not support appending." :
					       "Cannot save the message.");
	} else if (mailbox_uidvalidity(mb) != 0) {
		imapd_reply(s, "OK", "[APPENDUID %" PRIu32 " %" PRIu32 "] Append completed.",
			    mailbox_uidvalidity(mb), uid);
	} else {
		imapd_reply(s, "OK", "Append completed.");
	}
	mailbox_free(&mb);
	free(name);
}

static void cmd_idle(struct imapd_session *s, struct imap_cmd *c)
{
	(void)c;
	/* RFC 2177 3: updates as they happen until "DONE". */
	buf_append_str(&s->out, "+ idling\r\n");
	time_t next_check = time(NULL) + IMAPD_IDLE_RECHECK_SECS;
	for (;;) {
		const char *line;
		size_t len;
		int r = imap_reader_line(s->reader, &line, &len);
		if (r > 0) {
			if (len == 4 && str_casecmp(line, "DONE") == 0)
				imapd_reply(s, "OK", "Idle completed.");
			else
				imapd_reply(s, "BAD", "Expected DONE.");
			return;
		}
		if (r < 0) {
			imapd_reply(s, "BAD", "Expected DONE.");
			imapd_untagged(s, "BYE Line too long");
			s->logout = true;
			s->end = "Line too long";
			return;
		}
		time_t now = time(NULL);
		long left = s->timeout_secs - (long)(now - s->last_input);
		if (left <= 0) {
			imapd_untagged(s, "BYE Autologout; idle for too long");
			s->logout = true;
			s->end = "Autologout";
			return;
		}
		long wait = next_check > now ? (long)(next_check - now) : 0;
		if (wait > left)
			wait = left;
		bool event = false;
		int w = imapd_wait(s, (int)(wait * 1000), true, &event);
		if (w < 0) {
			s->broken = true;
			if (s->end == NULL)
				s->end = "Connection closed";
			return;
		}
		if (event || time(NULL) >= next_check) {
			imapd_view_update(s);
			next_check = time(NULL) + IMAPD_IDLE_RECHECK_SECS;
		}
	}
}

/* ---- Selected state (RFC 3501 6.4) ---- */

static void cmd_check(struct imapd_session *s, struct imap_cmd *c)
{
	(void)c;
	imapd_reply(s, "OK", "Check completed.");
}

/* Expunge the \Deleted messages (of seqs[0..n) when given).  0 or -1. */
static int imapd_expunge_deleted(struct imapd_session *s, const size_t *only, size_t only_n)
{
	size_t count = mailbox_count(s->mb);
	size_t *seqs = xcalloc(count + 1, sizeof(size_t));
	size_t n = 0;
	if (only != NULL) {
		for (size_t i = 0; i < only_n; i++)
			if ((mailbox_msg_flags(s->mb, only[i]) & MAILBOX_FLAG_DELETED) != 0)
				seqs[n++] = only[i];
	} else {
		for (size_t seq = 1; seq <= count; seq++)
			if ((mailbox_msg_flags(s->mb, seq) & MAILBOX_FLAG_DELETED) != 0)
				seqs[n++] = seq;
	}
	const char *error;
	int r = 0;
	if (n > 0 && mailbox_expunge_many(s->mb, seqs, n, &error) < 0) {
		log_error("expunge %s: %s", s->sel_name, error);
		r = -1;
	}
	free(seqs);
	imapd_msgcache_reset(s->mc);
	return r;
}

static void cmd_close(struct imapd_session *s, struct imap_cmd *c)
{
	bool expunge = strcmp(c->name, "CLOSE") == 0 && !s->readonly;
	/* RFC 3501 6.4.2: expunge without untagged EXPUNGE answers. */
	if (expunge)
		(void)imapd_expunge_deleted(s, NULL, 0);
	imapd_select_close(s);
	imapd_reply(s, "OK", "%s completed.", strcmp(c->name, "CLOSE") == 0 ? "Close" : "Unselect");
}

static void cmd_expunge(struct imapd_session *s, struct imap_cmd *c)
{
	if (s->readonly) {
		imapd_reply(s, "NO", "[CANNOT] Mailbox is read-only.");
		return;
	}
	size_t *seqs = NULL, n = 0;
	if (c->uid) {
		/* RFC 4315 2.1: only \Deleted messages of the UID set. */
		if (c->argc != 1 ||
		    imapd_set_collect(s, imapd_arg_str(c, 0), true, &seqs, &n) < 0) {
			if (s->reply_status == NULL)
				imapd_reply(s, "BAD", "Invalid arguments.");
			return;
		}
	} else if (c->argc != 0) {
		imapd_reply(s, "BAD", "Invalid arguments.");
		return;
	}
	int r = imapd_expunge_deleted(s, c->uid ? seqs : NULL, n);
	free(seqs);
	/* The dispatcher's sync sends the EXPUNGE answers. */
	if (r < 0)
		imapd_reply(s, "NO", "[SERVERBUG] Some messages could not be expunged.");
	else
		imapd_reply(s, "OK", "Expunge completed.");
}

static void cmd_search(struct imapd_session *s, struct imap_cmd *c)
{
	struct imap_search_key key;
	bool bad_charset = false;
	const char *error = "Invalid search.";
	if (imap_search_parse(c->args, c->argc, &key, &bad_charset, &error) < 0) {
		if (bad_charset)
			imapd_reply(s, "NO", "[BADCHARSET (US-ASCII UTF-8)] Unsupported charset.");
		else
			imapd_reply(s, "BAD", "%s", error);
		return;
	}
	size_t count = mailbox_count(s->mb);
	buf_append_str(&s->out, "* SEARCH");
	for (size_t seq = 1; seq <= count; seq++) {
		int r = imapd_search_match(s->mc, s->mb, seq, &key, &error);
		if (r < 0)
			log_warning("search message %zu: %s", seq, error);
		if (r <= 0)
			continue;
		if (c->uid)
			buf_printf(&s->out, " %" PRIu32, mailbox_msg_uid(s->mb, seq));
		else
			buf_printf(&s->out, " %zu", seq);
		imapd_out_maybe_flush(s);
	}
	buf_append_str(&s->out, "\r\n");
	imap_search_key_deinit(&key);
	imapd_reply(s, "OK", "Search completed.");
}

static void cmd_fetch(struct imapd_session *s, struct imap_cmd *c)
{
	if (c->argc < 2) {
		imapd_reply(s, "BAD", "Invalid arguments.");
		return;
	}
	struct imap_fetch f;
	const char *error;
	if (imap_fetch_parse(&c->args[1], c->argc - 1, &f, &error) < 0) {
		imapd_reply(s, "BAD", "%s", error);
		return;
	}
	size_t *seqs, n;
	if (imapd_set_collect(s, imapd_arg_str(c, 0), c->uid, &seqs, &n) < 0) {
		imap_fetch_deinit(&f);
		return;
	}
	size_t failed = 0;
	for (size_t i = 0; i < n; i++) {
		if (imapd_fetch_msg(s->mc, s->mb, seqs[i], &f, c->uid, s->readonly, &s->out,
				    &error) < 0) {
			log_warning("fetch message %zu: %s", seqs[i], error);
			failed++;
		}
		imapd_out_maybe_flush(s);
	}
	free(seqs);
	imap_fetch_deinit(&f);
	/* \Seen set by BODY[] was announced in the FETCH answer. */
	imapd_view_flags_refresh(s);
	if (failed > 0)
		imapd_reply(s, "NO", "Some messages could not be FETCHed (%zu failed).", failed);
	else
		imapd_reply(s, "OK", "Fetch completed.");
}

static void cmd_store(struct imapd_session *s, struct imap_cmd *c)
{
	if (c->argc < 3) {
		imapd_reply(s, "BAD", "Invalid arguments.");
		return;
	}
	struct imap_store st;
	const char *error;
	if (imap_store_parse(&c->args[1], c->argc - 1, &st, &error) < 0) {
		imapd_reply(s, "BAD", "%s", error);
		return;
	}
	if (s->readonly) {
		imapd_reply(s, "NO", "[CANNOT] Mailbox is read-only.");
		return;
	}
	size_t *seqs, n;
	if (imapd_set_collect(s, imapd_arg_str(c, 0), c->uid, &seqs, &n) < 0)
		return;
	unsigned *flags = xcalloc(n + 1, sizeof(unsigned));
	size_t *changed = xcalloc(n + 1, sizeof(size_t));
	unsigned *changed_flags = xcalloc(n + 1, sizeof(unsigned));
	size_t nchanged = 0;
	unsigned want = st.flags & IMAPD_STORABLE;
	for (size_t i = 0; i < n; i++) {
		unsigned old = mailbox_msg_flags(s->mb, seqs[i]);
		switch (st.mode) {
		case IMAP_STORE_SET:
			flags[i] = (old & ~IMAPD_STORABLE) | want;
			break;
		case IMAP_STORE_ADD:
			flags[i] = old | want;
			break;
		case IMAP_STORE_REMOVE:
			flags[i] = old & ~want;
			break;
		}
		if (flags[i] != old) {
			changed[nchanged] = seqs[i];
			changed_flags[nchanged++] = flags[i];
		}
	}
	int r = nchanged > 0 ? mailbox_flags_set_many(s->mb, changed, changed_flags, nchanged,
						      &error)
			     : 0;
	if (r < 0) {
		log_error("store %s: %s", s->sel_name, error);
		imapd_reply(s, "NO", "[SERVERBUG] Cannot store the flags.");
	} else {
		/* RFC 3501 6.4.6: the new flags of each message unless .SILENT. */
		for (size_t i = 0; i < n && !st.silent; i++) {
			size_t seq = seqs[i];
			buf_printf(&s->out, "* %zu FETCH (", seq);
			if (c->uid)
				buf_printf(&s->out, "UID %" PRIu32 " ", mailbox_msg_uid(s->mb, seq));
			buf_append_str(&s->out, "FLAGS (");
			imap_flags_format(mailbox_msg_flags(s->mb, seq) & IMAPD_STORABLE,
					  mailbox_msg_recent(s->mb, seq), &s->out);
			buf_append_str(&s->out, "))\r\n");
			imapd_out_maybe_flush(s);
		}
		imapd_reply(s, "OK", "Store completed.");
	}
	imapd_view_flags_refresh(s);
	imapd_msgcache_reset(s->mc);
	free(seqs);
	free(flags);
	free(changed);
	free(changed_flags);
}

/* Remove from dst the messages we appended (a failed COPY must not leave
 * part of its work, RFC 3501 6.4.7). */
static void imapd_copy_undo(struct mailbox *dst, const uint32_t *uids, size_t n)
{
	const char *error;
	for (size_t i = n; i > 0; i--) {
		size_t seq;
		if (mailbox_uid_lookup(dst, uids[i - 1], &seq) == 1 &&
		    mailbox_expunge(dst, seq, &error) < 0)
			log_error("undo copy: %s", error);
	}
}

static void cmd_copy(struct imapd_session *s, struct imap_cmd *c)
{
	bool move = strcmp(c->name, "MOVE") == 0;
	if (c->argc != 2) {
		imapd_reply(s, "BAD", "Invalid arguments.");
		return;
	}
	size_t *seqs, n;
	if (imapd_set_collect(s, imapd_arg_str(c, 0), c->uid, &seqs, &n) < 0)
		return;
	char *name = imapd_arg_mailbox(s, c, 1);
	if (name == NULL) {
		free(seqs);
		return;
	}
	const char *error;
	struct mailbox *dst = NULL;
	uint32_t *src_uids = xcalloc(n + 1, sizeof(uint32_t));
	uint32_t *dst_uids = xcalloc(n + 1, sizeof(uint32_t));
	size_t done = 0;
	if (move && s->readonly) {
		imapd_reply(s, "NO", "[CANNOT] Mailbox is read-only.");
		goto out;
	}
	if (imapd_mailbox_exists(s, name, "TRYCREATE") != 1)
		goto out;
	if (n == 0) {
		imapd_reply(s, "OK", "No messages found.");
		goto out;
	}
	dst = imapd_folder_open(s, name, &error);
	if (dst == NULL) {
		log_error("copy to %s: %s", name, error);
		imapd_reply(s, "NO", "[SERVERBUG] Cannot open the mailbox.");
		goto out;
	}
	struct buf msg = BUF_INIT;
	for (; done < n; done++) {
		size_t seq = seqs[done];
		buf_reset(&msg);
		if (imapd_msg_read(s->mb, seq, &msg, &error) < 0) {
			log_error("copy message %zu: %s", seq, error);
			break;
		}
		uint32_t uid;
		if (mailbox_append(dst, msg.data, msg.len,
				   mailbox_msg_flags(s->mb, seq) & MAILBOX_FLAGS_ALL,
				   mailbox_msg_date(s->mb, seq), &uid, &error) < 0) {
			log_error("copy message %zu to %s: %s", seq, name, error);
			break;
		}
		src_uids[done] = mailbox_msg_uid(s->mb, seq);
		dst_uids[done] = uid;
	}
	buf_deinit(&msg);
	if (done < n) {
		imapd_copy_undo(dst, dst_uids, done);
		imapd_reply(s, "NO", "[SERVERBUG] Cannot copy the messages.");
		goto out;
	}
	struct buf code = BUF_INIT;
	if (mailbox_uidvalidity(dst) != 0) {
		/* RFC 4315 3: source and destination UIDs in the same order. */
		buf_printf(&code, "[COPYUID %" PRIu32 " ", mailbox_uidvalidity(dst));
		imap_seqset_format(src_uids, n, &code);
		buf_append_char(&code, ' ');
		imap_seqset_format(dst_uids, n, &code);
		buf_append_str(&code, "] ");
	}
	if (!move) {
		imapd_reply(s, "OK", "%sCopy completed.", buf_cstr(&code));
	} else {
		/* RFC 6851 4.3: COPYUID untagged, then the EXPUNGEs (sent by
		 * the dispatcher's sync), then OK. */
		imapd_untagged(s, "OK %sMoved UIDs.", buf_cstr(&code));
		if (mailbox_expunge_many(s->mb, seqs, n, &error) < 0) {
			log_error("move from %s: %s", s->sel_name, error);
			imapd_reply(s, "NO", "[SERVERBUG] Copied but not removed from the source.");
		} else {
			imapd_reply(s, "OK", "Move completed.");
		}
		imapd_msgcache_reset(s->mc);
	}
	buf_deinit(&code);
out:
	mailbox_free(&dst);
	free(src_uids);
	free(dst_uids);
	free(seqs);
	free(name);
}

/* ---- The table and the dispatcher ---- */

struct imapd_cmd_def {
	const char *name;
	void (*fn)(struct imapd_session *s, struct imap_cmd *c);
	unsigned flags;
};

static const struct imapd_cmd_def imapd_cmds[] = {
	{ "CAPABILITY", cmd_capability, 0 },
	{ "NOOP", cmd_noop, 0 },
	{ "LOGOUT", cmd_logout, CMD_NO_UPDATES },
	{ "ID", cmd_id, 0 },
	{ "ENABLE", cmd_enable, 0 },
	{ "STARTTLS", cmd_starttls, 0 },
	{ "LOGIN", cmd_login, 0 },
	{ "AUTHENTICATE", cmd_login, 0 },
	{ "NAMESPACE", cmd_namespace, 0 },
	{ "SELECT", cmd_select, 0 },
	{ "EXAMINE", cmd_select, 0 },
	{ "CREATE", cmd_create, 0 },
	{ "DELETE", cmd_delete, 0 },
	{ "RENAME", cmd_rename, 0 },
	{ "SUBSCRIBE", cmd_subscribe, 0 },
	{ "UNSUBSCRIBE", cmd_subscribe, 0 },
	{ "LIST", cmd_list, 0 },
	{ "LSUB", cmd_list, 0 },
	{ "STATUS", cmd_status, 0 },
	{ "APPEND", cmd_append, 0 },
	{ "IDLE", cmd_idle, 0 },
	{ "CHECK", cmd_check, CMD_SELECTED },
	{ "CLOSE", cmd_close, CMD_SELECTED },
	{ "UNSELECT", cmd_close, CMD_SELECTED },
	{ "EXPUNGE", cmd_expunge, CMD_SELECTED | CMD_UID },
	{ "SEARCH", cmd_search, CMD_SELECTED | CMD_UID | CMD_NO_EXPUNGE },
	{ "FETCH", cmd_fetch, CMD_SELECTED | CMD_UID | CMD_NO_EXPUNGE },
	{ "STORE", cmd_store, CMD_SELECTED | CMD_UID | CMD_NO_EXPUNGE },
	{ "COPY", cmd_copy, CMD_SELECTED | CMD_UID },
	{ "MOVE", cmd_copy, CMD_SELECTED | CMD_UID },
};

void imapd_cmd_dispatch(struct imapd_session *s, struct imap_cmd *c)
{
	const struct imapd_cmd_def *def = NULL;
	for (size_t i = 0; i < sizeof(imapd_cmds) / sizeof(imapd_cmds[0]); i++) {
		if (strcmp(imapd_cmds[i].name, c->name) == 0) {
			def = &imapd_cmds[i];
			break;
		}
	}
	if (def == NULL || (c->uid && (def->flags & CMD_UID) == 0)) {
		imapd_reply(s, "BAD", "Unknown command.");
		return;
	}
	if ((def->flags & CMD_SELECTED) != 0 && s->mb == NULL) {
		imapd_reply(s, "BAD", "No mailbox selected.");
		return;
	}
	/* UID commands name messages by UID: they may see (and announce)
	 * other sessions' expunges first (RFC 3501 7.4.1). */
	if (c->uid)
		imapd_view_update(s);
	def->fn(s, c);
	if (s->reply_status == NULL || s->broken)
		return;
	bool quiet = (def->flags & CMD_NO_UPDATES) != 0 ||
		     ((def->flags & CMD_NO_EXPUNGE) != 0 && !c->uid);
	if (!quiet)
		imapd_view_update(s);
}
