/* imapd_parse_search.c - SEARCH key parsing (RFC 3501 section 6.4.4 and
 * the search-key grammar of section 9) into a tree of struct
 * imap_search_key.  NEW and OLD are rewritten with RECENT/SEEN; BCC, CC,
 * FROM, SUBJECT and TO become HEADER keys.
 */
#include "imapd/imapd_parse.h"

#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "lib/str.h"

/* OR and NOT nest without lists: bound the recursion. */
#define IMAP_SEARCH_DEPTH_MAX 64

struct imap_search_ctx {
	const struct imap_arg *args;
	size_t argc, pos;
	const char *error;
};

void imap_search_key_deinit(struct imap_search_key *key)
{
	for (size_t i = 0; i < key->count; i++)
		imap_search_key_deinit(&key->children[i]);
	free(key->children);
	imap_seqset_deinit(&key->set);
	free(key->header);
	free(key->str);
	memset(key, 0, sizeof(*key));
}

static struct imap_search_key *imap_search_child(struct imap_search_key *key)
{
	key->children = xreallocarray(key->children, key->count + 1, sizeof(*key->children));
	struct imap_search_key *c = &key->children[key->count++];
	memset(c, 0, sizeof(*c));
	return c;
}

static const struct imap_arg *imap_search_arg(struct imap_search_ctx *x)
{
	if (x->pos >= x->argc) {
		x->error = "Missing SEARCH argument";
		return NULL;
	}
	return &x->args[x->pos++];
}

static int imap_search_string(struct imap_search_ctx *x, char **str_r)
{
	const struct imap_arg *a = imap_search_arg(x);
	if (a == NULL)
		return -1;
	/* the atom NIL is a valid astring here (RFC 3501 section 9) */
	const char *s = a->type == IMAP_ARG_NIL ? a->str : imap_arg_astring(a);
	if (s == NULL) {
		x->error = "Invalid SEARCH string";
		return -1;
	}
	*str_r = xstrdup(s);
	return 0;
}

static int imap_search_key_parse(struct imap_search_ctx *x, struct imap_search_key *key,
				 size_t depth);

static int imap_search_list(const struct imap_arg *args, size_t argc,
			    struct imap_search_key *key, size_t depth, const char **error_r)
{
	struct imap_search_ctx x = { args, argc, 0, NULL };
	key->op = IMAP_SK_AND;
	if (argc == 0) {
		*error_r = "Empty SEARCH list";
		return -1;
	}
	while (x.pos < x.argc) {
		if (imap_search_key_parse(&x, imap_search_child(key), depth) < 0) {
			*error_r = x.error;
			return -1;
		}
	}
	return 0;
}

static const struct {
	const char *name;
	enum imap_search_op op;
	unsigned flag;
} imap_search_simple[] = {
	{ "ALL", IMAP_SK_ALL, 0 },
	{ "ANSWERED", IMAP_SK_FLAG, IMAP_FLAG_ANSWERED },
	{ "DELETED", IMAP_SK_FLAG, IMAP_FLAG_DELETED },
	{ "DRAFT", IMAP_SK_FLAG, IMAP_FLAG_DRAFT },
	{ "FLAGGED", IMAP_SK_FLAG, IMAP_FLAG_FLAGGED },
	{ "SEEN", IMAP_SK_FLAG, IMAP_FLAG_SEEN },
	{ "UNANSWERED", IMAP_SK_NOFLAG, IMAP_FLAG_ANSWERED },
	{ "UNDELETED", IMAP_SK_NOFLAG, IMAP_FLAG_DELETED },
	{ "UNDRAFT", IMAP_SK_NOFLAG, IMAP_FLAG_DRAFT },
	{ "UNFLAGGED", IMAP_SK_NOFLAG, IMAP_FLAG_FLAGGED },
	{ "UNSEEN", IMAP_SK_NOFLAG, IMAP_FLAG_SEEN },
	{ "RECENT", IMAP_SK_RECENT, 0 },
};

static const struct {
	const char *name;
	enum imap_search_op op;
} imap_search_dates[] = {
	{ "BEFORE", IMAP_SK_BEFORE },	      { "ON", IMAP_SK_ON },
	{ "SINCE", IMAP_SK_SINCE },	      { "SENTBEFORE", IMAP_SK_SENTBEFORE },
	{ "SENTON", IMAP_SK_SENTON },	      { "SENTSINCE", IMAP_SK_SENTSINCE },
};

static const char *const imap_search_headers[] = { "BCC", "CC", "FROM", "SUBJECT", "TO" };

static int imap_search_key_parse(struct imap_search_ctx *x, struct imap_search_key *key,
				 size_t depth)
{
	const struct imap_arg *a = imap_search_arg(x);
	if (a == NULL)
		return -1;
	if (depth > IMAP_SEARCH_DEPTH_MAX) {
		x->error = "Too deep SEARCH";
		return -1;
	}
	if (a->type == IMAP_ARG_LIST) {
		const char *error = NULL;
		if (imap_search_list(a->list, a->count, key, depth + 1, &error) < 0) {
			x->error = error;
			return -1;
		}
		return 0;
	}
	if (a->type != IMAP_ARG_ATOM) {
		x->error = "Invalid SEARCH key";
		return -1;
	}
	const char *name = a->str;
	if ((name[0] >= '0' && name[0] <= '9') || name[0] == '*' || name[0] == '$') {
		key->op = IMAP_SK_SEQSET;
		return imap_seqset_parse(name, &key->set, &x->error);
	}
	for (size_t i = 0; i < sizeof(imap_search_simple) / sizeof(imap_search_simple[0]); i++) {
		if (str_casecmp(name, imap_search_simple[i].name) == 0) {
			key->op = imap_search_simple[i].op;
			key->flag = imap_search_simple[i].flag;
			return 0;
		}
	}
	for (size_t i = 0; i < sizeof(imap_search_dates) / sizeof(imap_search_dates[0]); i++) {
		if (str_casecmp(name, imap_search_dates[i].name) != 0)
			continue;
		key->op = imap_search_dates[i].op;
		const struct imap_arg *d = imap_search_arg(x);
		if (d == NULL)
			return -1;
		const char *s = imap_arg_astring(d);
		if (s == NULL || d->type == IMAP_ARG_LITERAL || imap_date_parse(s, &key->date) < 0) {
			x->error = "Invalid SEARCH date";
			return -1;
		}
		return 0;
	}
	for (size_t i = 0; i < sizeof(imap_search_headers) / sizeof(imap_search_headers[0]); i++) {
		if (str_casecmp(name, imap_search_headers[i]) == 0) {
			key->op = IMAP_SK_HEADER;
			key->header = xstrdup(imap_search_headers[i]);
			return imap_search_string(x, &key->str);
		}
	}
	if (str_casecmp(name, "NEW") == 0) {
		/* NEW = RECENT UNSEEN */
		key->op = IMAP_SK_AND;
		imap_search_child(key)->op = IMAP_SK_RECENT;
		struct imap_search_key *c = imap_search_child(key);
		c->op = IMAP_SK_NOFLAG;
		c->flag = IMAP_FLAG_SEEN;
		return 0;
	}
	if (str_casecmp(name, "OLD") == 0) {
		key->op = IMAP_SK_NOT;
		imap_search_child(key)->op = IMAP_SK_RECENT;
		return 0;
	}
	if (str_casecmp(name, "NOT") == 0) {
		key->op = IMAP_SK_NOT;
		return imap_search_key_parse(x, imap_search_child(key), depth + 1);
	}
	if (str_casecmp(name, "OR") == 0) {
		key->op = IMAP_SK_OR;
		if (imap_search_key_parse(x, imap_search_child(key), depth + 1) < 0)
			return -1;
		return imap_search_key_parse(x, imap_search_child(key), depth + 1);
	}
	if (str_casecmp(name, "HEADER") == 0) {
		key->op = IMAP_SK_HEADER;
		if (imap_search_string(x, &key->header) < 0)
			return -1;
		if (key->header[0] == '\0') {
			x->error = "Empty SEARCH header name";
			return -1;
		}
		return imap_search_string(x, &key->str);
	}
	if (str_casecmp(name, "BODY") == 0 || str_casecmp(name, "TEXT") == 0) {
		key->op = str_casecmp(name, "BODY") == 0 ? IMAP_SK_BODY : IMAP_SK_TEXT;
		return imap_search_string(x, &key->str);
	}
	if (str_casecmp(name, "KEYWORD") == 0 || str_casecmp(name, "UNKEYWORD") == 0) {
		key->op = str_casecmp(name, "KEYWORD") == 0 ? IMAP_SK_KEYWORD : IMAP_SK_UNKEYWORD;
		const struct imap_arg *k = imap_search_arg(x);
		if (k == NULL)
			return -1;
		if (k->type != IMAP_ARG_ATOM || k->str[0] == '\\') {
			x->error = "Invalid SEARCH keyword";
			return -1;
		}
		key->str = xstrdup(k->str);
		return 0;
	}
	if (str_casecmp(name, "LARGER") == 0 || str_casecmp(name, "SMALLER") == 0) {
		key->op = str_casecmp(name, "LARGER") == 0 ? IMAP_SK_LARGER : IMAP_SK_SMALLER;
		const struct imap_arg *n = imap_search_arg(x);
		if (n == NULL)
			return -1;
		if (n->type != IMAP_ARG_ATOM ||
		    str_to_u64(n->str, 0, UINT32_MAX, &key->number) < 0) {
			x->error = "Invalid SEARCH number";
			return -1;
		}
		return 0;
	}
	if (str_casecmp(name, "UID") == 0) {
		key->op = IMAP_SK_UIDSET;
		const struct imap_arg *s = imap_search_arg(x);
		if (s == NULL)
			return -1;
		if (s->type != IMAP_ARG_ATOM) {
			x->error = "Invalid UID set";
			return -1;
		}
		return imap_seqset_parse(s->str, &key->set, &x->error);
	}
	x->error = "Unknown SEARCH key";
	return -1;
}

int imap_search_parse(const struct imap_arg *args, size_t argc, struct imap_search_key *key_r,
		      bool *bad_charset_r, const char **error_r)
{
	memset(key_r, 0, sizeof(*key_r));
	*bad_charset_r = false;
	if (argc >= 1 && args[0].type == IMAP_ARG_ATOM && str_casecmp(args[0].str, "CHARSET") == 0) {
		const char *cs = argc >= 2 ? imap_arg_astring(&args[1]) : NULL;
		if (cs == NULL) {
			*error_r = "Missing charset";
			return -1;
		}
		if (str_casecmp(cs, "UTF-8") != 0 && str_casecmp(cs, "US-ASCII") != 0) {
			*bad_charset_r = true;
			*error_r = "Unsupported charset";
			return -1;
		}
		args += 2;
		argc -= 2;
	}
	if (imap_search_list(args, argc, key_r, 0, error_r) < 0) {
		if (argc == 0)
			*error_r = "Missing SEARCH keys";
		imap_search_key_deinit(key_r);
		return -1;
	}
	return 0;
}
