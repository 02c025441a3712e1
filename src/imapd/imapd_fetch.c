/* imapd_fetch.c - FETCH of one message (RFC 3501 6.4.5 and 7.4.2): builds
 * "* <seq> FETCH (...)" from the message cache.  Items come in the order
 * asked, with UID first for UID FETCH when not asked (as Dovecot does),
 * and FLAGS last when a non-PEEK body fetch has just set \Seen.
 *
 * Body sections: content is sent as a literal (an empty one as "").  A part
 * number that does not exist gives NIL (the answer is an nstring, RFC 3501
 * 7.4.2; Dovecot and others answer NIL too); [n.HEADER], [n.TEXT] and
 * [n.HEADER.FIELDS] of a part that is not message/rfc822 give "" (RFC 3501
 * 6.4.5 defines them for message/rfc822 parts only).  On failure the
 * output is cut back to what it was. */
#include "imapd/imapd.h"
#include "imapd/imapd_msgcache.h"

#include "lib/buf.h"
#include "mail/mailbox.h"
#include "mail/mime.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Stored flags IMAP shows (MAILBOX_FLAG_PASSED has no IMAP name). */
#define FETCH_IMAP_FLAGS                                                                       \
	(MAILBOX_FLAG_DRAFT | MAILBOX_FLAG_FLAGGED | MAILBOX_FLAG_ANSWERED | MAILBOX_FLAG_SEEN | \
	 MAILBOX_FLAG_DELETED)

struct fetch_ctx {
	struct imapd_msgcache *mc;
	struct mailbox *mb;
	size_t seq;
	unsigned flags; /* as they will be after this FETCH */
	struct buf tmp;
	const char **error_r;
};

/* A body section's content: a literal, or "" when empty. */
static void fetch_literal_append(struct buf *out, const char *p, size_t n)
{
	if (n == 0) {
		buf_append_str(out, "\"\"");
		return;
	}
	buf_printf(out, "{%zu}\r\n", n);
	buf_append(out, p, n);
}

/* The <origin.count> window of p[0..n) (RFC 3501 6.4.5: an origin past the
 * end gives an empty string, a count past the end is cut short). */
static void fetch_partial_append(struct buf *out, const struct imap_fetch_item *it,
				 const char *p, size_t n)
{
	if (it->partial) {
		if (it->origin >= n) {
			n = 0;
		} else {
			p += it->origin;
			n -= it->origin;
			if (it->count < n)
				n = it->count;
		}
	}
	fetch_literal_append(out, p, n);
}

static int fetch_header(struct fetch_ctx *c, const char **hdr_r, size_t *len_r)
{
	return imapd_msgcache_header(c->mc, c->mb, c->seq, hdr_r, len_r, c->error_r);
}

/* BODY[section]<origin> for a section without part numbers: only [] and
 * [TEXT] need the whole message. */
static int fetch_section_top(struct fetch_ctx *c, const struct imap_fetch_item *it,
			     struct buf *out)
{
	const char *msg;
	size_t len, hlen;
	switch (it->kind) {
	case IMAP_SECTION_HEADER:
	case IMAP_SECTION_MIME: /* not valid without a part; read as HEADER */
		if (fetch_header(c, &msg, &hlen) < 0)
			return -1;
		fetch_partial_append(out, it, msg, hlen);
		return 0;
	case IMAP_SECTION_HEADER_FIELDS:
	case IMAP_SECTION_HEADER_FIELDS_NOT:
		if (fetch_header(c, &msg, &hlen) < 0)
			return -1;
		buf_reset(&c->tmp);
		mime_header_fields_append(msg, hlen, it->fields, it->field_count,
					  it->kind == IMAP_SECTION_HEADER_FIELDS_NOT, &c->tmp);
		fetch_partial_append(out, it, (const char *)c->tmp.data, c->tmp.len);
		return 0;
	case IMAP_SECTION_TEXT:
	case IMAP_SECTION_ALL:
		break;
	}
	if (imapd_msgcache_message(c->mc, c->mb, c->seq, &msg, &len, &hlen, c->error_r) < 0)
		return -1;
	if (it->kind == IMAP_SECTION_TEXT)
		fetch_partial_append(out, it, msg + hlen, len - hlen);
	else
		fetch_partial_append(out, it, msg, len);
	return 0;
}

/* BODY[1.2...] sections: walk the MIME tree. */
static int fetch_section_part(struct fetch_ctx *c, const struct imap_fetch_item *it,
			      struct buf *out)
{
	const char *msg;
	size_t len;
	const struct mime_part *root;
	if (imapd_msgcache_parsed(c->mc, c->mb, c->seq, &msg, &len, &root, c->error_r) < 0)
		return -1;
	const struct mime_part *p = mime_part_find(root, it->part, it->part_count);
	if (p == NULL) {
		buf_append_str(out, "NIL");
		return 0;
	}
	const struct mime_part *m = p->message;
	switch (it->kind) {
	case IMAP_SECTION_ALL:
		fetch_partial_append(out, it, msg + p->body_start, p->body_len);
		return 0;
	case IMAP_SECTION_MIME:
		fetch_partial_append(out, it, msg + p->header_start, p->header_len);
		return 0;
	case IMAP_SECTION_HEADER:
		if (m == NULL)
			fetch_literal_append(out, "", 0);
		else
			fetch_partial_append(out, it, msg + m->header_start, m->header_len);
		return 0;
	case IMAP_SECTION_HEADER_FIELDS:
	case IMAP_SECTION_HEADER_FIELDS_NOT:
		if (m == NULL) {
			fetch_literal_append(out, "", 0);
			return 0;
		}
		buf_reset(&c->tmp);
		mime_header_fields_append(msg + m->header_start, m->header_len, it->fields,
					  it->field_count,
					  it->kind == IMAP_SECTION_HEADER_FIELDS_NOT, &c->tmp);
		fetch_partial_append(out, it, (const char *)c->tmp.data, c->tmp.len);
		return 0;
	case IMAP_SECTION_TEXT: {
		if (m == NULL) {
			fetch_literal_append(out, "", 0);
			return 0;
		}
		/* the encapsulated message's body runs to the end of the part */
		size_t end = p->body_start + p->body_len;
		size_t start = m->body_start < end ? m->body_start : end;
		fetch_partial_append(out, it, msg + start, end - start);
		return 0;
	}
	}
	return 0;
}

static int fetch_item_append(struct fetch_ctx *c, const struct imap_fetch_item *it,
			     struct buf *out)
{
	const char *msg;
	size_t len, hlen;
	const struct mime_part *root;
	switch (it->att) {
	case IMAP_FETCH_FLAGS:
		buf_append_str(out, "FLAGS (");
		imap_flags_format(c->flags, mailbox_msg_recent(c->mb, c->seq), out);
		buf_append_char(out, ')');
		return 0;
	case IMAP_FETCH_INTERNALDATE:
		buf_append_str(out, "INTERNALDATE ");
		imap_datetime_format(mailbox_msg_date(c->mb, c->seq), out);
		return 0;
	case IMAP_FETCH_RFC822_SIZE: {
		uint64_t vsize;
		if (mailbox_msg_vsize(c->mb, c->seq, &vsize, c->error_r) < 0)
			return -1;
		buf_printf(out, "RFC822.SIZE %llu", (unsigned long long)vsize);
		return 0;
	}
	case IMAP_FETCH_ENVELOPE:
		if (fetch_header(c, &msg, &hlen) < 0)
			return -1;
		buf_append_str(out, "ENVELOPE ");
		mime_envelope_append(msg, hlen, out);
		return 0;
	case IMAP_FETCH_BODY:
	case IMAP_FETCH_BODYSTRUCTURE:
		if (imapd_msgcache_parsed(c->mc, c->mb, c->seq, &msg, &len, &root, c->error_r) <
		    0)
			return -1;
		buf_append_str(out, it->att == IMAP_FETCH_BODY ? "BODY " : "BODYSTRUCTURE ");
		mime_bodystructure_append(root, msg, it->att == IMAP_FETCH_BODYSTRUCTURE, out);
		return 0;
	case IMAP_FETCH_UID:
		buf_printf(out, "UID %lu", (unsigned long)mailbox_msg_uid(c->mb, c->seq));
		return 0;
	case IMAP_FETCH_RFC822:
		if (imapd_msgcache_message(c->mc, c->mb, c->seq, &msg, &len, &hlen, c->error_r) <
		    0)
			return -1;
		buf_append_str(out, "RFC822 ");
		fetch_literal_append(out, msg, len);
		return 0;
	case IMAP_FETCH_RFC822_HEADER:
		if (fetch_header(c, &msg, &hlen) < 0)
			return -1;
		buf_append_str(out, "RFC822.HEADER ");
		fetch_literal_append(out, msg, hlen);
		return 0;
	case IMAP_FETCH_RFC822_TEXT:
		if (imapd_msgcache_message(c->mc, c->mb, c->seq, &msg, &len, &hlen, c->error_r) <
		    0)
			return -1;
		buf_append_str(out, "RFC822.TEXT ");
		fetch_literal_append(out, msg + hlen, len - hlen);
		return 0;
	case IMAP_FETCH_BODY_SECTION:
		/* RFC 3501 7.4.2: the answer names the section and the origin
		 * but not the count */
		buf_printf(out, "BODY[%s]", it->section_text != NULL ? it->section_text : "");
		if (it->partial)
			buf_printf(out, "<%lu>", (unsigned long)it->origin);
		buf_append_char(out, ' ');
		if (it->part_count == 0)
			return fetch_section_top(c, it, out);
		return fetch_section_part(c, it, out);
	}
	return 0;
}

/* Does the item set \Seen (RFC 3501 6.4.5)? */
static bool fetch_item_sets_seen(const struct imap_fetch_item *it)
{
	return it->att == IMAP_FETCH_RFC822 || it->att == IMAP_FETCH_RFC822_TEXT ||
	       (it->att == IMAP_FETCH_BODY_SECTION && !it->peek);
}

static bool fetch_has(const struct imap_fetch *f, enum imap_fetch_att att)
{
	for (size_t i = 0; i < f->count; i++)
		if (f->items[i].att == att)
			return true;
	return false;
}

int imapd_fetch_msg(struct imapd_msgcache *mc, struct mailbox *mb, size_t seq,
		    const struct imap_fetch *f, bool uid_cmd, bool readonly, struct buf *out,
		    const char **error_r)
{
	struct fetch_ctx c = { .mc = mc, .mb = mb, .seq = seq, .error_r = error_r };
	unsigned stored = mailbox_msg_flags(mb, seq);
	bool set_seen = false;
	if (!readonly && (stored & MAILBOX_FLAG_SEEN) == 0) {
		for (size_t i = 0; i < f->count && !set_seen; i++)
			set_seen = fetch_item_sets_seen(&f->items[i]);
	}
	c.flags = (stored | (set_seen ? MAILBOX_FLAG_SEEN : 0)) & FETCH_IMAP_FLAGS;
	buf_init(&c.tmp);

	/* Written straight into out (a BODY[] can be large) and cut back to
	 * mark on failure. */
	size_t mark = out->len;
	buf_printf(out, "* %zu FETCH (", seq);
	bool first = true;
	int ret = 0;
	if (uid_cmd && !fetch_has(f, IMAP_FETCH_UID)) {
		buf_printf(out, "UID %lu", (unsigned long)mailbox_msg_uid(mb, seq));
		first = false;
	}
	for (size_t i = 0; i < f->count && ret == 0; i++) {
		if (!first)
			buf_append_char(out, ' ');
		first = false;
		ret = fetch_item_append(&c, &f->items[i], out);
	}
	/* Set \Seen only once the content could be read, so that a message
	 * expunged meanwhile is neither answered nor marked. */
	if (ret == 0 && set_seen) {
		ret = mailbox_flags_set(mb, seq, stored | MAILBOX_FLAG_SEEN, error_r);
		if (ret == 0 && !fetch_has(f, IMAP_FETCH_FLAGS)) {
			struct imap_fetch_item flags_item = { .att = IMAP_FETCH_FLAGS };
			if (!first)
				buf_append_char(out, ' ');
			ret = fetch_item_append(&c, &flags_item, out);
		}
	}
	int err = errno;
	if (ret == 0) {
		buf_append_str(out, ")\r\n");
	} else {
		out->len = mark;
		if (out->data != NULL)
			out->data[mark] = '\0';
	}
	buf_deinit(&c.tmp);
	errno = err;
	return ret;
}
