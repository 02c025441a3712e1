/* qfile.c - queue file writer and reader (format in qfile.h).
 *
 * Used by smtpd and pickup (writer), qmgr and local (reader, appends), and
 * the queue commands of the CLI.  Invariant kept here: a file is visible
 * in a queue directory only when complete (E record written and fsync'd
 * before the rename), and every state change after that is an fsync'd
 * record appended behind E.
 */
#include "mail/qfile.h"
#include "lib/buf.h"
#include "lib/fs.h"
#include "lib/mem.h"
#include "lib/str.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

struct qfile_writer {
	int fd;
	char *queue_dir;
	char *tmp_path;
	char id[QFILE_ID_MAX];
	struct buf pending;
	uint64_t content_size;
	int error; /* latched errno of the first failed write */
	unsigned n_rcpts;
	char *first_rcpt; /* as written (orig_to of a redirect) */
	char *redirect;	  /* qfile_writer_redirect() */
};

void qfile_crash_point(const char *point)
{
#ifdef FACTEUR_CRASH_HOOKS
	const char *at = getenv("FACTEUR_CRASH_AT");
	if (at != NULL && strcmp(at, point) == 0)
		(void)kill(getpid(), SIGKILL);
#else
	(void)point;
#endif
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void rec_encode(struct buf *b, char type, const void *data, size_t len)
{
	uint8_t hdr[5];
	hdr[0] = (uint8_t)type;
	put_be32(hdr + 1, (uint32_t)len);
	buf_append(b, hdr, sizeof(hdr));
	buf_append(b, data, len);
}

static void writer_flush(struct qfile_writer *w)
{
	if (w->pending.len == 0 || w->error != 0)
		return;
	if (fs_write_full(w->fd, w->pending.data, w->pending.len) < 0)
		w->error = errno;
	buf_reset(&w->pending);
}

static void writer_record(struct qfile_writer *w, char type, const void *data, size_t len)
{
	if (len > QFILE_MAX_RECORD) {
		w->error = EFBIG;
		return;
	}
	rec_encode(&w->pending, type, data, len);
	if (w->pending.len >= QFILE_CONTENT_CHUNK)
		writer_flush(w);
}

/* Queue ids: 12 hex digits of time (seconds << 20 | microseconds) and the
 * inode of the file in hex.  The inode makes the id unique while the file
 * exists (queue directories share one file system and a rename keeps the
 * inode); the time part makes ids of different moments differ, so an id
 * is not reused.  Upper-case hex, as Postfix's ids look. */
static void writer_make_id(struct qfile_writer *w, ino_t ino)
{
	struct timeval tv;
	(void)gettimeofday(&tv, NULL);
	uint64_t t = ((uint64_t)tv.tv_sec << 20) | (uint64_t)tv.tv_usec;
	(void)snprintf(w->id, sizeof(w->id), "%012" PRIX64 "%" PRIX64,
		       (uint64_t)(t & 0xFFFFFFFFFFFFu), (uint64_t)ino);
}

int qfile_writer_open(const char *queue_dir, struct qfile_writer **w_r, const char **error_r)
{
	struct qfile_writer *w = xcalloc(1, sizeof(*w));
	struct buf path = BUF_INIT;
	uint8_t rnd[8];
	int fd = -1;

	w->fd = -1;
	w->queue_dir = xstrdup(queue_dir);
	for (int attempt = 0; attempt < 10 && fd < 0; attempt++) {
		int rfd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
		if (rfd < 0 || read(rfd, rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd)) {
			if (rfd >= 0)
				(void)close(rfd);
			*error_r = "read /dev/urandom failed";
			goto fail;
		}
		(void)close(rfd);
		buf_reset(&path);
		buf_printf(&path, "%s/tmp/", queue_dir);
		for (size_t i = 0; i < sizeof(rnd); i++)
			buf_printf(&path, "%02x", rnd[i]);
		fd = open(buf_cstr(&path), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST) {
			*error_r = "create queue file in tmp/ failed";
			goto fail;
		}
	}
	if (fd < 0) {
		*error_r = "create queue file in tmp/ failed";
		goto fail;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		*error_r = "fstat new queue file failed";
		int saved = errno;
		(void)close(fd);
		(void)unlink(buf_cstr(&path));
		errno = saved;
		goto fail;
	}
	w->fd = fd;
	w->tmp_path = buf_steal(&path);
	writer_make_id(w, st.st_ino);
	writer_record(w, QREC_VERSION, QFILE_VERSION_TEXT, strlen(QFILE_VERSION_TEXT));
	*w_r = w;
	return 0;
fail:
	buf_deinit(&path);
	free(w->queue_dir);
	free(w);
	return -1;
}

const char *qfile_writer_id(const struct qfile_writer *w) { return w->id; }

void qfile_writer_time(struct qfile_writer *w, int64_t sec, long usec)
{
	char text[64];
	int n = snprintf(text, sizeof(text), "%" PRId64 ".%06ld", sec, usec);
	writer_record(w, QREC_TIME, text, (size_t)n);
}

static void fields_append(struct buf *b, const char *s, bool last)
{
	buf_append_str(b, s != NULL ? s : "");
	if (!last)
		buf_append(b, "", 1);
}

void qfile_writer_attr(struct qfile_writer *w, const char *name, const char *value)
{
	struct buf b = BUF_INIT;
	fields_append(&b, name, false);
	fields_append(&b, value, true);
	writer_record(w, QREC_ATTR, b.data, b.len);
	buf_deinit(&b);
}

void qfile_writer_sender(struct qfile_writer *w, const char *sender)
{
	writer_record(w, QREC_SENDER, sender, strlen(sender));
}

static void rcpt_fields(struct buf *b, const struct qfile_rcpt_in *r)
{
	fields_append(b, r->address, false);
	fields_append(b, r->orcpt, false);
	fields_append(b, r->notify, false);
	fields_append(b, r->orig_to, true);
}

void qfile_writer_rcpt(struct qfile_writer *w, const struct qfile_rcpt_in *r)
{
	struct buf b = BUF_INIT;
	rcpt_fields(&b, r);
	writer_record(w, QREC_RCPT, b.data, b.len);
	buf_deinit(&b);
	if (w->n_rcpts++ == 0)
		w->first_rcpt = xstrdup(r->orig_to != NULL && *r->orig_to != '\0' ? r->orig_to
									   : r->address);
}

void qfile_writer_redirect(struct qfile_writer *w, const char *address)
{
	free(w->redirect);
	w->redirect = xstrdup(address);
}

/* After E, as if the queue manager had expanded every recipient into the
 * redirect address: D records (expanded) and one N record. */
static void writer_redirect_records(struct qfile_writer *w)
{
	struct buf b = BUF_INIT;
	for (unsigned i = 0; i < w->n_rcpts; i++) {
		buf_reset(&b);
		buf_printf(&b, "%u", i);
		buf_append(&b, "", 1);
		buf_printf(&b, "%d", (int)QRCPT_EXPANDED);
		buf_append(&b, "", 1);
		fields_append(&b, "2.0.0", false);
		fields_append(&b, "redirected", true);
		writer_record(w, QREC_DONE, b.data, b.len);
	}
	buf_reset(&b);
	buf_append(&b, "0", 1);
	buf_append(&b, "", 1);
	struct qfile_rcpt_in in = { .address = w->redirect, .orig_to = w->first_rcpt };
	rcpt_fields(&b, &in);
	writer_record(w, QREC_ADDRCPT, b.data, b.len);
	buf_deinit(&b);
}

void qfile_writer_end_envelope(struct qfile_writer *w)
{
	writer_record(w, QREC_ENVEND, "", 0);
}

void qfile_writer_content(struct qfile_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len > 0) {
		size_t n = len > QFILE_CONTENT_CHUNK ? QFILE_CONTENT_CHUNK : len;
		writer_record(w, QREC_CONTENT, p, n);
		w->content_size += n;
		p += n;
		len -= n;
	}
}

uint64_t qfile_writer_content_size(const struct qfile_writer *w) { return w->content_size; }

static void writer_free(struct qfile_writer **wp)
{
	struct qfile_writer *w = *wp;
	if (w == NULL)
		return;
	buf_deinit(&w->pending);
	free(w->tmp_path);
	free(w->queue_dir);
	free(w->first_rcpt);
	free(w->redirect);
	free(w);
	*wp = NULL;
}

void qfile_writer_abort(struct qfile_writer **wp)
{
	struct qfile_writer *w = *wp;
	if (w == NULL)
		return;
	if (w->fd >= 0)
		(void)close(w->fd);
	if (w->tmp_path != NULL)
		(void)unlink(w->tmp_path);
	writer_free(wp);
}

int qfile_writer_commit(struct qfile_writer **wp, const char *subdir, const char **error_r)
{
	struct qfile_writer *w = *wp;
	struct buf dest = BUF_INIT, dir = BUF_INIT;

	writer_record(w, QREC_END, "", 0);
	if (w->redirect != NULL && w->n_rcpts > 0)
		writer_redirect_records(w);
	writer_flush(w);
	if (w->error != 0) {
		errno = w->error;
		*error_r = "write queue file failed";
		goto fail;
	}
	qfile_crash_point("before-fsync");
	if (fsync(w->fd) < 0) {
		*error_r = "fsync queue file failed";
		goto fail;
	}
	int fd = w->fd;
	w->fd = -1;
	if (close(fd) < 0) {
		*error_r = "close queue file failed";
		goto fail;
	}
	qfile_crash_point("before-rename");
	buf_printf(&dir, "%s/%s", w->queue_dir, subdir);
	buf_printf(&dest, "%s/%s", buf_cstr(&dir), w->id);
	if (rename(w->tmp_path, buf_cstr(&dest)) < 0) {
		*error_r = "rename queue file into place failed";
		goto fail;
	}
	qfile_crash_point("before-dirsync");
	if (fs_fsync_dir(buf_cstr(&dir)) < 0) {
		/* The file is published but maybe not durable: take it back so
		 * that the client's retry is the only copy. */
		int saved = errno;
		(void)unlink(buf_cstr(&dest));
		errno = saved;
		*error_r = "fsync queue directory failed";
		goto fail;
	}
	qfile_crash_point("after-dirsync");
	buf_deinit(&dest);
	buf_deinit(&dir);
	writer_free(wp);
	return 0;
fail:
	buf_deinit(&dest);
	buf_deinit(&dir);
	qfile_writer_abort(wp);
	return -1;
}

/* ---- reader ---- */

struct rec_reader {
	int fd;
	off_t off;
	off_t size;
};

/* Read the next record header; returns 1 record, 0 clean EOF, -1 torn or
 * bad record. */
static int rec_next(struct rec_reader *r, char *type_r, uint32_t *len_r)
{
	uint8_t hdr[5];
	if (r->off == r->size)
		return 0;
	if (r->size - r->off < (off_t)sizeof(hdr))
		return -1;
	if (pread(r->fd, hdr, sizeof(hdr), r->off) != (ssize_t)sizeof(hdr))
		return -1;
	uint32_t len = get_be32(hdr + 1);
	if ((off_t)len > r->size - r->off - (off_t)sizeof(hdr))
		return -1;
	*type_r = (char)hdr[0];
	*len_r = len;
	return 1;
}

static int rec_payload(struct rec_reader *r, uint32_t len, struct buf *out)
{
	buf_reset(out);
	buf_reserve(out, len);
	if (len > 0 && pread(r->fd, out->data, len, r->off + 5) != (ssize_t)len)
		return -1;
	out->len = len;
	out->data[len] = '\0';
	return 0;
}

/* Split a NUL-separated payload into exactly n fields (pointers into b). */
static int split_fields(struct buf *b, const char **fields, size_t n)
{
	const char *p = (const char *)b->data;
	const char *end = p + b->len;
	for (size_t i = 0; i < n; i++) {
		fields[i] = p;
		const char *nul = memchr(p, '\0', (size_t)(end - p));
		if (i + 1 < n) {
			if (nul == NULL || nul == end)
				return -1;
			p = nul + 1;
		} else if (nul != NULL && nul != end) {
			return -1; /* more fields than expected */
		}
	}
	return 0;
}

static char *opt_dup(const char *s) { return *s != '\0' ? xstrdup(s) : NULL; }

static void msg_add_rcpt(struct qfile_msg *m, int parent, const char **f)
{
	m->rcpts = xreallocarray(m->rcpts, m->n_rcpts + 1, sizeof(*m->rcpts));
	struct qfile_rcpt *r = &m->rcpts[m->n_rcpts];
	memset(r, 0, sizeof(*r));
	r->index = (unsigned)m->n_rcpts;
	r->parent = parent;
	r->address = xstrdup(f[0]);
	r->orcpt = opt_dup(f[1]);
	r->notify = opt_dup(f[2]);
	r->orig_to = opt_dup(f[3]);
	r->status = QRCPT_PENDING;
	m->n_rcpts++;
}

static bool payload_has_nul(const struct buf *b) { return memchr(b->data, '\0', b->len) != NULL; }

int qfile_read(int fd, struct qfile_msg **msg_r, const char **error_r)
{
	struct stat st;
	struct rec_reader r = { fd, 0, 0 };
	struct buf p = BUF_INIT;
	struct qfile_msg *m = xcalloc(1, sizeof(*m));
	bool seen_envend = false, seen_end = false, seen_sender = false, seen_time = false;
	size_t n_records = 0;
	char type;
	uint32_t len;
	int ret;

	if (fstat(fd, &st) < 0) {
		*error_r = "fstat failed";
		goto fail;
	}
	r.size = st.st_size;
	m->next_attempt = 0;
	while ((ret = rec_next(&r, &type, &len)) == 1) {
		if (type != QREC_CONTENT && len > QFILE_MAX_RECORD) {
			*error_r = "record too long";
			goto fail;
		}
		if (type == QREC_CONTENT) {
			if (!seen_envend || seen_end || len > QFILE_CONTENT_CHUNK) {
				*error_r = "misplaced content record";
				goto fail;
			}
			if (m->content_offset == 0)
				m->content_offset = r.off;
			m->content_size += len;
			r.off += 5 + (off_t)len;
			continue;
		}
		if (rec_payload(&r, len, &p) < 0) {
			*error_r = "read failed";
			goto fail;
		}
		if (n_records == 0 && (type != QREC_VERSION || !strv_eq(strv_make((char *)p.data, p.len), QFILE_VERSION_TEXT))) {
			*error_r = "not a facteur queue file (version record)";
			goto fail;
		}
		n_records++;
		const char *f[5];
		bool after_end = seen_end;
		switch (type) {
		case QREC_VERSION:
			if (n_records != 1) {
				*error_r = "duplicate version record";
				goto fail;
			}
			break;
		case QREC_TIME: {
			char *dot;
			if (seen_envend || payload_has_nul(&p))
				goto bad_record;
			m->arrival_sec = strtoll((char *)p.data, &dot, 10);
			if (*dot != '.' || strlen(dot + 1) != 6)
				goto bad_record;
			m->arrival_usec = strtol(dot + 1, NULL, 10);
			seen_time = true;
			break;
		}
		case QREC_ATTR:
			if (seen_envend || split_fields(&p, f, 2) < 0)
				goto bad_record;
			m->attrs = xreallocarray(m->attrs, m->n_attrs + 1, sizeof(*m->attrs));
			m->attrs[m->n_attrs].name = xstrdup(f[0]);
			m->attrs[m->n_attrs].value = xstrdup(f[1]);
			m->n_attrs++;
			break;
		case QREC_SENDER:
			if (seen_envend || seen_sender || payload_has_nul(&p))
				goto bad_record;
			m->sender = xstrdup((char *)p.data);
			seen_sender = true;
			break;
		case QREC_RCPT:
			if (seen_envend || split_fields(&p, f, 4) < 0 || f[0][0] == '\0')
				goto bad_record;
			msg_add_rcpt(m, -1, f);
			break;
		case QREC_ENVEND:
			if (seen_envend || !seen_sender || !seen_time || m->n_rcpts == 0)
				goto bad_record;
			seen_envend = true;
			break;
		case QREC_END:
			if (!seen_envend || seen_end)
				goto bad_record;
			seen_end = true;
			break;
		case QREC_DONE: {
			uint64_t idx, st_val;
			if (!after_end || split_fields(&p, f, 4) < 0 ||
			    str_to_u64(f[0], 0, m->n_rcpts - 1, &idx) < 0 ||
			    str_to_u64(f[1], QRCPT_SENT, QRCPT_EXPANDED, &st_val) < 0)
				goto bad_record;
			struct qfile_rcpt *rc = &m->rcpts[idx];
			rc->status = (enum qfile_rcpt_status)st_val;
			free(rc->dsn);
			free(rc->reason);
			rc->dsn = opt_dup(f[2]);
			rc->reason = opt_dup(f[3]);
			break;
		}
		case QREC_ADDRCPT: {
			uint64_t parent;
			if (!after_end || split_fields(&p, f, 5) < 0 || f[1][0] == '\0' ||
			    str_to_u64(f[0], 0, m->n_rcpts - 1, &parent) < 0)
				goto bad_record;
			msg_add_rcpt(m, (int)parent, f + 1);
			break;
		}
		case QREC_RETRY: {
			uint64_t attempts;
			long long next;
			char *e;
			if (!after_end || split_fields(&p, f, 3) < 0 ||
			    str_to_u64(f[1], 0, UINT32_MAX, &attempts) < 0)
				goto bad_record;
			next = strtoll(f[0], &e, 10);
			if (*f[0] == '\0' || *e != '\0')
				goto bad_record;
			m->next_attempt = next;
			m->attempts = (unsigned)attempts;
			free(m->defer_reason);
			m->defer_reason = opt_dup(f[2]);
			break;
		}
		case QREC_NOTICE:
			if (!after_end || payload_has_nul(&p))
				goto bad_record;
			if (strv_eq(strv_make((char *)p.data, p.len), "delay"))
				m->delay_warned = true;
			break;
		default:
			goto bad_record;
		}
		r.off += 5 + (off_t)len;
		m->valid_end = r.off;
		continue;
bad_record:
		if (after_end) {
			/* Garbage behind E can only be a torn append: stop
			 * here; the next append cuts it off. */
			break;
		}
		*error_r = "malformed record";
		goto fail;
	}
	if (!seen_end) {
		*error_r = ret < 0 ? "truncated record" : "no end record";
		goto fail;
	}
	if (m->sender == NULL)
		m->sender = xstrdup("");
	buf_deinit(&p);
	*msg_r = m;
	return 0;
fail:
	buf_deinit(&p);
	qfile_msg_free(&m);
	return -1;
}

void qfile_msg_free(struct qfile_msg **mp)
{
	struct qfile_msg *m = *mp;
	if (m == NULL)
		return;
	free(m->sender);
	for (size_t i = 0; i < m->n_attrs; i++) {
		free(m->attrs[i].name);
		free(m->attrs[i].value);
	}
	free(m->attrs);
	for (size_t i = 0; i < m->n_rcpts; i++) {
		struct qfile_rcpt *r = &m->rcpts[i];
		free(r->address);
		free(r->orcpt);
		free(r->notify);
		free(r->orig_to);
		free(r->dsn);
		free(r->reason);
	}
	free(m->rcpts);
	free(m->defer_reason);
	free(m);
	*mp = NULL;
}

const char *qfile_msg_attr(const struct qfile_msg *m, const char *name)
{
	for (size_t i = m->n_attrs; i > 0; i--) {
		if (strcmp(m->attrs[i - 1].name, name) == 0)
			return m->attrs[i - 1].value;
	}
	return NULL;
}

size_t qfile_msg_pending(const struct qfile_msg *m)
{
	size_t n = 0;
	for (size_t i = 0; i < m->n_rcpts; i++)
		n += m->rcpts[i].status == QRCPT_PENDING;
	return n;
}

int qfile_content_read(int fd, const struct qfile_msg *m,
		       int (*cb)(void *ctx, const uint8_t *data, size_t len), void *ctx,
		       const char **error_r)
{
	struct stat st;
	struct rec_reader r = { fd, m->content_offset, 0 };
	uint8_t *chunk = xmalloc(QFILE_CONTENT_CHUNK);
	char type;
	uint32_t len;
	int ret = 0;

	*error_r = NULL;
	if (m->content_offset == 0) {
		free(chunk);
		return 0; /* empty message */
	}
	if (fstat(fd, &st) < 0) {
		*error_r = "fstat failed";
		free(chunk);
		return -1;
	}
	r.size = st.st_size;
	while (rec_next(&r, &type, &len) == 1 && type == QREC_CONTENT) {
		if (len > QFILE_CONTENT_CHUNK ||
		    pread(fd, chunk, len, r.off + 5) != (ssize_t)len) {
			*error_r = "read content failed";
			ret = -1;
			break;
		}
		if (cb(ctx, chunk, len) < 0) {
			ret = -1;
			break;
		}
		r.off += 5 + (off_t)len;
	}
	free(chunk);
	return ret;
}

void qfile_content_cursor_init(struct qfile_content_cursor *c, const struct qfile_msg *m)
{
	memset(c, 0, sizeof(*c));
	c->off = m->content_offset;
}

int qfile_content_next(int fd, const struct qfile_msg *m, struct qfile_content_cursor *c,
		       uint8_t *buf, size_t cap, size_t *len_r, const char **error_r)
{
	*len_r = 0;
	*error_r = NULL;
	if (cap == 0) {
		*error_r = "no room to read content";
		return -1;
	}
	/* qfile_read() counted the content: that count, not the next record
	 * type, says where it ends (a record changed since is an error). */
	while (c->done < m->content_size) {
		if (!c->has_rec) {
			uint8_t hdr[5];
			if (c->off <= 0 || c->off > m->valid_end - (off_t)sizeof(hdr)) {
				*error_r = "content past the end of the file";
				return -1;
			}
			if (pread(fd, hdr, sizeof(hdr), c->off) != (ssize_t)sizeof(hdr)) {
				*error_r = "read content failed";
				return -1;
			}
			c->rec_len = get_be32(hdr + 1);
			if (hdr[0] != QREC_CONTENT || c->rec_len > QFILE_CONTENT_CHUNK ||
			    (off_t)c->rec_len > m->valid_end - c->off - (off_t)sizeof(hdr) ||
			    c->rec_len > m->content_size - c->done) {
				*error_r = "content records changed since the file was read";
				return -1;
			}
			c->rec_pos = 0;
			c->has_rec = true;
		}
		if (c->rec_pos == c->rec_len) {
			/* Record consumed (or empty): on to the next one. */
			c->off += 5 + (off_t)c->rec_len;
			c->has_rec = false;
			continue;
		}
		size_t n = c->rec_len - c->rec_pos;
		if (n > cap)
			n = cap;
		ssize_t got = pread(fd, buf, n, c->off + 5 + (off_t)c->rec_pos);
		if (got != (ssize_t)n) {
			*error_r = "read content failed";
			return -1;
		}
		c->rec_pos += (uint32_t)n;
		c->done += n;
		*len_r = n;
		return 1;
	}
	return 0;
}

static int append_record_sync(int fd, struct qfile_msg *m, char type, const struct buf *payload,
			      bool sync);

static int append_record(int fd, struct qfile_msg *m, char type, const struct buf *payload)
{
	return append_record_sync(fd, m, type, payload, true);
}

static int append_record_sync(int fd, struct qfile_msg *m, char type, const struct buf *payload,
			      bool sync)
{
	struct stat st;
	struct buf rec = BUF_INIT;
	if (fstat(fd, &st) < 0)
		return -1;
	/* Cut a torn tail left by a crash during an earlier append. */
	if (st.st_size > m->valid_end && ftruncate(fd, m->valid_end) < 0)
		return -1;
	rec_encode(&rec, type, payload->data, payload->len);
	ssize_t n = pwrite(fd, rec.data, rec.len, m->valid_end);
	int saved = errno;
	if (n != (ssize_t)rec.len) {
		buf_deinit(&rec);
		errno = n < 0 ? saved : EIO;
		return -1;
	}
	if (sync && fsync(fd) < 0) {
		buf_deinit(&rec);
		return -1;
	}
	m->valid_end += (off_t)rec.len;
	buf_deinit(&rec);
	return 0;
}

static int append_done(int fd, struct qfile_msg *m, unsigned index,
		       enum qfile_rcpt_status status, const char *dsn, const char *reason, bool sync)
{
	struct buf b = BUF_INIT;
	if (index >= m->n_rcpts || status == QRCPT_PENDING) {
		errno = EINVAL;
		return -1;
	}
	buf_printf(&b, "%u", index);
	buf_append(&b, "", 1);
	buf_printf(&b, "%d", (int)status);
	buf_append(&b, "", 1);
	fields_append(&b, dsn, false);
	fields_append(&b, reason, true);
	int ret = append_record_sync(fd, m, QREC_DONE, &b, sync);
	buf_deinit(&b);
	if (ret == 0) {
		struct qfile_rcpt *r = &m->rcpts[index];
		r->status = status;
		free(r->dsn);
		free(r->reason);
		r->dsn = dsn != NULL && *dsn != '\0' ? xstrdup(dsn) : NULL;
		r->reason = reason != NULL && *reason != '\0' ? xstrdup(reason) : NULL;
	}
	return ret;
}

int qfile_append_done(int fd, struct qfile_msg *m, unsigned index,
		      enum qfile_rcpt_status status, const char *dsn, const char *reason)
{
	return append_done(fd, m, index, status, dsn, reason, true);
}

int qfile_append_done_nosync(int fd, struct qfile_msg *m, unsigned index,
			     enum qfile_rcpt_status status, const char *dsn, const char *reason)
{
	return append_done(fd, m, index, status, dsn, reason, false);
}

int qfile_append_rcpt(int fd, struct qfile_msg *m, unsigned parent, const struct qfile_rcpt_in *r)
{
	struct buf b = BUF_INIT;
	if (parent >= m->n_rcpts || r->address == NULL || *r->address == '\0') {
		errno = EINVAL;
		return -1;
	}
	buf_printf(&b, "%u", parent);
	buf_append(&b, "", 1);
	rcpt_fields(&b, r);
	int ret = append_record(fd, m, QREC_ADDRCPT, &b);
	buf_deinit(&b);
	if (ret == 0) {
		const char *f[4] = { r->address, r->orcpt ? r->orcpt : "",
				     r->notify ? r->notify : "", r->orig_to ? r->orig_to : "" };
		msg_add_rcpt(m, (int)parent, f);
	}
	return ret;
}

int qfile_append_retry(int fd, struct qfile_msg *m, int64_t next_attempt, unsigned attempts,
		       const char *reason)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%" PRId64, next_attempt);
	buf_append(&b, "", 1);
	buf_printf(&b, "%u", attempts);
	buf_append(&b, "", 1);
	fields_append(&b, reason, true);
	int ret = append_record(fd, m, QREC_RETRY, &b);
	buf_deinit(&b);
	if (ret == 0) {
		m->next_attempt = next_attempt;
		m->attempts = attempts;
		free(m->defer_reason);
		m->defer_reason = reason != NULL && *reason != '\0' ? xstrdup(reason) : NULL;
	}
	return ret;
}

int qfile_append_notice(int fd, struct qfile_msg *m, const char *kind)
{
	struct buf b = BUF_INIT;
	buf_append_str(&b, kind);
	int ret = append_record(fd, m, QREC_NOTICE, &b);
	buf_deinit(&b);
	if (ret == 0 && strcmp(kind, "delay") == 0)
		m->delay_warned = true;
	return ret;
}

const char *qfile_rcpt_status_name(enum qfile_rcpt_status s)
{
	switch (s) {
	case QRCPT_PENDING: return "pending";
	case QRCPT_SENT: return "sent";
	case QRCPT_BOUNCED: return "bounced";
	case QRCPT_EXPANDED: return "expanded";
	}
	return "unknown";
}
