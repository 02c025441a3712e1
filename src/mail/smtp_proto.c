/* smtp_proto.c - encoding and decoding of the qmgr <-> smtp delivery
 * protocol (mail/smtp_proto.h).  Used by qmgr_smtp.c (client) and the smtp
 * role (server).  Decoders treat the packet as untrusted: every number is
 * range-checked, every count bounded, control characters refused or
 * replaced, unknown keys ignored (a newer peer may add some).
 */
#include "mail/smtp_proto.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/queue.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ---- */

static void put_raw(struct buf *out, const char *s, size_t max)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
	     *p != '\0' && n < max; p++, n++)
		buf_append_char(out, (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p);
}

static void put_key(struct buf *out, const char *key)
{
	if (out->len > 0)
		buf_append_char(out, '\n');
	buf_append_str(out, key);
	buf_append_char(out, '=');
}

static void put_field(struct buf *out, const char *key, const char *value)
{
	put_key(out, key);
	put_raw(out, value, SIZE_MAX);
}

const char *smtp_proto_status_name(enum smtp_proto_status s)
{
	switch (s) {
	case SMTP_PROTO_SENT: return "sent";
	case SMTP_PROTO_DEFERRED: return "deferred";
	case SMTP_PROTO_BOUNCED: return "bounced";
	}
	return "deferred";
}

int smtp_proto_request_encode(struct buf *out, const struct smtp_proto_request *r,
			      const char **error_r)
{
	char num[64];
	buf_reset(out);
	if (r->n_rcpts == 0 || r->n_rcpts > SMTP_PROTO_MAX_RCPTS) {
		*error_r = "no or too many recipients";
		return -1;
	}
	(void)snprintf(num, sizeof(num), "%" PRIu64, r->req);
	put_field(out, "req", num);
	put_field(out, "queue_id", r->queue_id);
	put_field(out, "sender", r->sender);
	put_field(out, "nexthop", r->nexthop);
	put_field(out, "no_mx", r->no_mx ? "1" : "0");
	(void)snprintf(num, sizeof(num), "%u", r->port);
	put_field(out, "port", num);
	if (r->active_sec > 0) {
		(void)snprintf(num, sizeof(num), "%" PRId64 ".%06ld", r->active_sec,
			       r->active_usec);
		put_field(out, "active", num);
	}
	for (size_t i = 0; i < r->n_rcpts; i++) {
		const struct smtp_proto_rcpt *rc = &r->rcpts[i];
		put_key(out, "rcpt");
		buf_printf(out, "%u\t", rc->index);
		put_raw(out, rc->notify, SIZE_MAX);
		buf_append_char(out, '\t');
		put_raw(out, rc->orcpt, SIZE_MAX);
		buf_append_char(out, '\t');
		put_raw(out, rc->address, SIZE_MAX);
	}
	if (out->len > SMTP_PROTO_MAX_PACKET) {
		*error_r = "request too long";
		return -1;
	}
	return 0;
}

int smtp_proto_reply_encode(struct buf *out, const struct smtp_proto_reply *r,
			    const char **error_r)
{
	char num[32];
	buf_reset(out);
	if (r->n_results > SMTP_PROTO_MAX_RCPTS) {
		*error_r = "too many results";
		return -1;
	}
	(void)snprintf(num, sizeof(num), "%" PRIu64, r->req);
	put_field(out, "req", num);
	put_field(out, "relay", r->relay != NULL ? r->relay : "none");
	put_field(out, "dsn_announced", r->dsn_announced ? "1" : "0");
	for (size_t i = 0; i < r->n_results; i++) {
		const struct smtp_proto_result *res = &r->results[i];
		put_key(out, "result");
		buf_printf(out, "%u\t%s\t", res->index, smtp_proto_status_name(res->status));
		put_raw(out, res->dsn, 16);
		buf_append_str(out, res->relayed ? "\trelayed\t" : "\t-\t");
		put_raw(out, res->text, SMTP_PROTO_MAX_TEXT);
	}
	if (out->len > SMTP_PROTO_MAX_PACKET) {
		*error_r = "reply too long";
		return -1;
	}
	return 0;
}

/* ---- reading ---- */

struct line_iter {
	const char *p, *end;
};

/* Next "key=value" line: 1 found, 0 end, -1 malformed. */
static int next_line(struct line_iter *it, struct strv *key, struct strv *val)
{
	while (it->p < it->end) {
		const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
		const char *le = nl != NULL ? nl : it->end;
		const char *start = it->p;
		it->p = nl != NULL ? nl + 1 : it->end;
		if (le == start)
			continue; /* empty line */
		const char *eq = memchr(start, '=', (size_t)(le - start));
		if (eq == NULL || eq == start)
			return -1;
		*key = strv_make(start, (size_t)(eq - start));
		*val = strv_make(eq + 1, (size_t)(le - eq - 1));
		return 1;
	}
	return 0;
}

static bool has_ctl(struct strv v, bool allow_tab)
{
	for (size_t i = 0; i < v.len; i++) {
		unsigned char c = (unsigned char)v.ptr[i];
		if ((c < 0x20 && !(allow_tab && c == '\t')) || c == 0x7f)
			return true;
	}
	return false;
}

static int strv_u64(struct strv v, uint64_t max, uint64_t *out)
{
	char tmp[24];
	if (v.len == 0 || v.len >= sizeof(tmp))
		return -1;
	memcpy(tmp, v.ptr, v.len);
	tmp[v.len] = '\0';
	return str_to_u64(tmp, 0, max, out);
}

/* Split v at tabs into exactly n fields, the last taking the rest. */
static int split_tabs(struct strv v, struct strv *f, size_t n)
{
	const char *p = v.ptr, *end = v.ptr + v.len;
	for (size_t i = 0; i + 1 < n; i++) {
		const char *t = memchr(p, '\t', (size_t)(end - p));
		if (t == NULL)
			return -1;
		f[i] = strv_make(p, (size_t)(t - p));
		p = t + 1;
	}
	f[n - 1] = strv_make(p, (size_t)(end - p));
	return 0;
}

static int set_once(char **slot, struct strv v)
{
	if (*slot != NULL)
		return -1;
	*slot = strv_dup(v);
	return 0;
}

void smtp_proto_request_clear(struct smtp_proto_request *r)
{
	free(r->queue_id);
	free(r->sender);
	free(r->nexthop);
	for (size_t i = 0; i < r->n_rcpts; i++) {
		free(r->rcpts[i].address);
		free(r->rcpts[i].notify);
		free(r->rcpts[i].orcpt);
	}
	free(r->rcpts);
	memset(r, 0, sizeof(*r));
}

int smtp_proto_request_decode(const uint8_t *data, size_t len, struct smtp_proto_request *r,
			      const char **error_r)
{
	struct line_iter it = { (const char *)data, (const char *)data + len };
	struct strv key, val;
	bool seen_req = false, seen_port = false, seen_no_mx = false;
	uint64_t n;
	int ret;

	memset(r, 0, sizeof(*r));
	if (len == 0 || len > SMTP_PROTO_MAX_PACKET || memchr(data, '\0', len) != NULL) {
		*error_r = "bad packet size or NUL in request";
		return -1;
	}
	while ((ret = next_line(&it, &key, &val)) > 0) {
		if (has_ctl(val, strv_eq(key, "rcpt"))) {
			*error_r = "control character in request";
			goto fail;
		}
		if (strv_eq(key, "req")) {
			if (seen_req || strv_u64(val, UINT64_MAX, &r->req) < 0) {
				*error_r = "bad or repeated req";
				goto fail;
			}
			seen_req = true;
		} else if (strv_eq(key, "queue_id")) {
			if (set_once(&r->queue_id, val) < 0 || !queue_id_valid(r->queue_id)) {
				*error_r = "bad or repeated queue_id";
				goto fail;
			}
		} else if (strv_eq(key, "sender")) {
			if (set_once(&r->sender, val) < 0) {
				*error_r = "repeated sender";
				goto fail;
			}
		} else if (strv_eq(key, "nexthop")) {
			if (set_once(&r->nexthop, val) < 0 || val.len == 0 || val.len > 255) {
				*error_r = "bad or repeated nexthop";
				goto fail;
			}
		} else if (strv_eq(key, "no_mx")) {
			if (seen_no_mx || (!strv_eq(val, "0") && !strv_eq(val, "1"))) {
				*error_r = "bad or repeated no_mx";
				goto fail;
			}
			r->no_mx = strv_eq(val, "1");
			seen_no_mx = true;
		} else if (strv_eq(key, "port")) {
			if (seen_port || strv_u64(val, 65535, &n) < 0 || n == 0) {
				*error_r = "bad or repeated port";
				goto fail;
			}
			r->port = (unsigned)n;
			seen_port = true;
		} else if (strv_eq(key, "active")) {
			const char *dot = memchr(val.ptr, '.', val.len);
			uint64_t sec, usec;
			if (dot == NULL ||
			    strv_u64(strv_make(val.ptr, (size_t)(dot - val.ptr)), INT64_MAX, &sec) < 0 ||
			    strv_u64(strv_make(dot + 1, (size_t)(val.ptr + val.len - dot - 1)), 999999,
				     &usec) < 0) {
				*error_r = "bad active time";
				goto fail;
			}
			r->active_sec = (int64_t)sec;
			r->active_usec = (long)usec;
		} else if (strv_eq(key, "rcpt")) {
			struct strv f[4];
			if (r->n_rcpts >= SMTP_PROTO_MAX_RCPTS) {
				*error_r = "too many recipients";
				goto fail;
			}
			if (split_tabs(val, f, 4) < 0 || strv_u64(f[0], 1u << 30, &n) < 0 ||
			    f[3].len == 0 || memchr(f[3].ptr, '\t', f[3].len) != NULL) {
				*error_r = "bad rcpt line";
				goto fail;
			}
			r->rcpts = xreallocarray(r->rcpts, r->n_rcpts + 1, sizeof(*r->rcpts));
			struct smtp_proto_rcpt *rc = &r->rcpts[r->n_rcpts++];
			rc->index = (unsigned)n;
			rc->notify = strv_dup(f[1]);
			rc->orcpt = strv_dup(f[2]);
			rc->address = strv_dup(f[3]);
		}
	}
	if (ret < 0) {
		*error_r = "request line without key=value";
		goto fail;
	}
	if (!seen_req || r->queue_id == NULL || r->nexthop == NULL || r->sender == NULL ||
	    r->n_rcpts == 0) {
		*error_r = "request without req, queue_id, sender, nexthop or rcpt";
		goto fail;
	}
	if (!seen_port)
		r->port = 25;
	return 0;
fail: {
	uint64_t keep = r->req;
	smtp_proto_request_clear(r);
	r->req = seen_req ? keep : 0;
	return -1;
}
}

/* RFC 3463 section 2: class "." subject "." detail. */
static bool dsn_valid(struct strv v)
{
	size_t i = 2, digits;
	if (v.len < 5 || v.len > 11 || (v.ptr[0] != '2' && v.ptr[0] != '4' && v.ptr[0] != '5') ||
	    v.ptr[1] != '.')
		return false;
	for (int part = 0; part < 2; part++) {
		for (digits = 0; i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9'; i++)
			digits++;
		if (digits < 1 || digits > 3)
			return false;
		if (part == 0) {
			if (i >= v.len || v.ptr[i] != '.')
				return false;
			i++;
		}
	}
	return i == v.len;
}

void smtp_proto_reply_clear(struct smtp_proto_reply *r)
{
	free(r->relay);
	for (size_t i = 0; i < r->n_results; i++) {
		free(r->results[i].dsn);
		free(r->results[i].text);
	}
	free(r->results);
	memset(r, 0, sizeof(*r));
}

int smtp_proto_reply_decode(const uint8_t *data, size_t len, struct smtp_proto_reply *r,
			    const char **error_r)
{
	struct line_iter it = { (const char *)data, (const char *)data + len };
	struct strv key, val;
	bool seen_req = false, seen_dsn = false;
	int ret;

	memset(r, 0, sizeof(*r));
	if (len == 0 || len > SMTP_PROTO_MAX_PACKET || memchr(data, '\0', len) != NULL) {
		*error_r = "bad packet size or NUL in reply";
		return -1;
	}
	while ((ret = next_line(&it, &key, &val)) > 0) {
		if (has_ctl(val, strv_eq(key, "result"))) {
			*error_r = "control character in reply";
			goto fail;
		}
		if (strv_eq(key, "req")) {
			if (seen_req || strv_u64(val, UINT64_MAX, &r->req) < 0) {
				*error_r = "bad or repeated req";
				goto fail;
			}
			seen_req = true;
		} else if (strv_eq(key, "relay")) {
			if (set_once(&r->relay, val) < 0) {
				*error_r = "repeated relay";
				goto fail;
			}
		} else if (strv_eq(key, "dsn_announced")) {
			if (seen_dsn || (!strv_eq(val, "0") && !strv_eq(val, "1"))) {
				*error_r = "bad or repeated dsn_announced";
				goto fail;
			}
			r->dsn_announced = strv_eq(val, "1");
			seen_dsn = true;
		} else if (strv_eq(key, "result")) {
			struct strv f[5];
			uint64_t n;
			enum smtp_proto_status st;
			if (r->n_results >= SMTP_PROTO_MAX_RCPTS) {
				*error_r = "too many results";
				goto fail;
			}
			if (split_tabs(val, f, 5) < 0 || strv_u64(f[0], 1u << 30, &n) < 0) {
				*error_r = "bad result line";
				goto fail;
			}
			if (strv_eq(f[1], "sent"))
				st = SMTP_PROTO_SENT;
			else if (strv_eq(f[1], "deferred"))
				st = SMTP_PROTO_DEFERRED;
			else if (strv_eq(f[1], "bounced"))
				st = SMTP_PROTO_BOUNCED;
			else {
				*error_r = "unknown status";
				goto fail;
			}
			/* The status class must agree with the result: a
			 * "sent" with 5.x.x is a confused peer. */
			char want = st == SMTP_PROTO_SENT ? '2' : st == SMTP_PROTO_DEFERRED ? '4' : '5';
			if (!dsn_valid(f[2]) || f[2].ptr[0] != want) {
				*error_r = "bad dsn";
				goto fail;
			}
			if (!strv_eq(f[3], "relayed") && !strv_eq(f[3], "-")) {
				*error_r = "bad relayed flag";
				goto fail;
			}
			r->results = xreallocarray(r->results, r->n_results + 1, sizeof(*r->results));
			struct smtp_proto_result *res = &r->results[r->n_results++];
			res->index = (unsigned)n;
			res->status = st;
			res->dsn = strv_dup(f[2]);
			res->relayed = strv_eq(f[3], "relayed");
			res->text = strv_dup(f[4]);
			for (char *c = res->text; *c != '\0'; c++)
				if (*c == '\t')
					*c = ' ';
		}
	}
	if (ret < 0) {
		*error_r = "reply line without key=value";
		goto fail;
	}
	if (!seen_req) {
		*error_r = "reply without req";
		goto fail;
	}
	if (r->relay == NULL)
		r->relay = xstrdup("none");
	return 0;
fail:
	smtp_proto_reply_clear(r);
	return -1;
}
