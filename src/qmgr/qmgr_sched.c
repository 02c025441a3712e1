/* qmgr_sched.c - per-destination queues and the dispatcher.
 *
 * Every pending recipient of an active message is routed once (route.h:
 * local, virtual, smtp with its nexthop, error, discard) and becomes an
 * entry queued on its destination (transport name + the transport's
 * grouping key: the address for local deliveries, the domain for virtual
 * ones, "[host]:port" / "domain:port" for SMTP nexthops).  Transports with
 * a recipient limit (smtp) take several entries of one message at one
 * destination as one delivery: a batch, which holds one slot.  The
 * dispatcher starts entries round-robin over the destinations that have
 * work and a free slot, while fewer than default_process_limit deliveries
 * are in flight overall and fewer than the transport's per-destination
 * limit at that destination (Postfix's qmgr does the same with its
 * transport/queue/entry structures, minus the feedback algorithms).
 *
 * Invariants: dest->in_flight counts entries handed to the transport and
 * not yet done; a destination is on the ready list iff it has waiting
 * entries and a free slot; a destination with neither waiting nor in-flight
 * entries is freed.  The dispatcher never touches an entry or a destination
 * after handing the entry to deliver(), which may complete it at once.
 */
#include "qmgr/qmgr.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/str.h"
#include "mail/route.h"

#include <stdlib.h>
#include <string.h>

struct qmgr_dest {
	struct qmgr_dest *hash_next;
	TAILQ_ENTRY(qmgr_dest) ready_link;
	bool is_ready;
	char *key;
	const struct qmgr_transport *transport;
	unsigned in_flight;
	struct qmgr_entry_list waiting;
};
TAILQ_HEAD(qmgr_dest_list, qmgr_dest);

#define DEST_BUCKETS 4096u

struct qmgr_dest_table {
	struct qmgr_dest *buckets[DEST_BUCKETS];
	struct qmgr_dest_list ready;
	bool in_run;
};

/* FNV-1a: destination keys come from our own queue files. */
static unsigned dest_hash(const char *key)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h % DEST_BUCKETS;
}

void qmgr_sched_init(struct qmgr *q)
{
	q->dests = xcalloc(1, sizeof(*q->dests));
	TAILQ_INIT(&q->dests->ready);
	q->in_flight = 0;
}

void qmgr_sched_deinit(struct qmgr *q)
{
	struct qmgr_dest_table *t = q->dests;
	if (t == NULL)
		return;
	for (unsigned i = 0; i < DEST_BUCKETS; i++) {
		struct qmgr_dest *d = t->buckets[i];
		while (d != NULL) {
			struct qmgr_dest *next = d->hash_next;
			struct qmgr_entry *e;
			while ((e = TAILQ_FIRST(&d->waiting)) != NULL) {
				TAILQ_REMOVE(&d->waiting, e, dest_link);
				qmgr_entry_free(e);
			}
			free(d->key);
			free(d);
			d = next;
		}
	}
	free(t);
	q->dests = NULL;
}

void qmgr_entry_free(struct qmgr_entry *e)
{
	struct qmgr_entry *m;
	if (e == NULL)
		return;
	while ((m = TAILQ_FIRST(&e->batch)) != NULL) {
		TAILQ_REMOVE(&e->batch, m, batch_link);
		qmgr_entry_free(m);
	}
	free(e->nexthop);
	free(e->text);
	free(e);
}

static struct qmgr_dest *dest_get(struct qmgr *q, const struct qmgr_entry *e,
				  const char *address)
{
	const struct qmgr_transport *tr = e->transport;
	struct buf key = BUF_INIT;
	if (e->nexthop != NULL) {
		/* Postfix's queue name: the nexthop (with its port). */
		char *h = str_lower_dup(e->nexthop);
		buf_printf(&key, "%s:%s%s%s:%u", tr->name, e->no_mx ? "[" : "", h,
			   e->no_mx ? "]" : "", e->port);
		free(h);
	} else {
		char *k = tr->dest_key(address);
		buf_printf(&key, "%s:%s", tr->name, k);
		free(k);
	}
	unsigned h = dest_hash(buf_cstr(&key));
	struct qmgr_dest *d;
	for (d = q->dests->buckets[h]; d != NULL; d = d->hash_next) {
		if (strcmp(d->key, buf_cstr(&key)) == 0) {
			buf_deinit(&key);
			return d;
		}
	}
	d = xcalloc(1, sizeof(*d));
	d->key = buf_steal(&key);
	d->transport = tr;
	TAILQ_INIT(&d->waiting);
	d->hash_next = q->dests->buckets[h];
	q->dests->buckets[h] = d;
	return d;
}

static void dest_release_if_idle(struct qmgr *q, struct qmgr_dest *d)
{
	if (d->in_flight > 0 || !TAILQ_EMPTY(&d->waiting))
		return;
	if (d->is_ready) {
		TAILQ_REMOVE(&q->dests->ready, d, ready_link);
		d->is_ready = false;
	}
	struct qmgr_dest **pp = &q->dests->buckets[dest_hash(d->key)];
	while (*pp != d)
		pp = &(*pp)->hash_next;
	*pp = d->hash_next;
	free(d->key);
	free(d);
}

static void dest_update_ready(struct qmgr *q, struct qmgr_dest *d)
{
	bool ready = !TAILQ_EMPTY(&d->waiting) && d->in_flight < d->transport->dest_limit(q);
	if (ready && !d->is_ready)
		TAILQ_INSERT_TAIL(&q->dests->ready, d, ready_link);
	else if (!ready && d->is_ready)
		TAILQ_REMOVE(&q->dests->ready, d, ready_link);
	d->is_ready = ready;
}

/* Route the recipient of e once (route.h) and set its class and route. */
static void sched_route(struct qmgr *q, struct qmgr_entry *e, const char *address)
{
	struct route_result rr;
	const char *error = NULL;
	memset(&rr, 0, sizeof(rr));
	if (route_resolve(q->route, address, &rr, &error) < 0) {
		e->cls = QMGR_CLASS_RETRY;
		e->text = xstrdup(error != NULL ? error : "address resolver failure");
		return;
	}
	switch (rr.transport) {
	case ROUTE_LOCAL:
		e->cls = QMGR_CLASS_LOCAL;
		break;
	case ROUTE_VIRTUAL:
		e->cls = QMGR_CLASS_VIRTUAL;
		break;
	case ROUTE_SMTP:
		e->cls = QMGR_CLASS_SMTP;
		e->nexthop = xstrdup(rr.nexthop != NULL ? rr.nexthop : "");
		e->no_mx = rr.no_mx;
		e->port = rr.port != 0 ? rr.port : 25;
		break;
	case ROUTE_ERROR:
		e->cls = QMGR_CLASS_ERROR;
		e->text = xstrdup(rr.nexthop != NULL ? rr.nexthop : "");
		break;
	case ROUTE_DISCARD:
		e->cls = QMGR_CLASS_DISCARD;
		e->text = xstrdup(rr.nexthop != NULL ? rr.nexthop : "");
		break;
	}
	route_result_deinit(&rr);
}

void qmgr_sched_add(struct qmgr *q, struct qmgr_message *msg, unsigned rcpt, enum qmgr_class cls)
{
	struct qmgr_entry *e = xcalloc(1, sizeof(*e));
	e->msg = msg;
	e->rcpt = rcpt;
	e->cls = cls;
	TAILQ_INIT(&e->batch);
	/* The class the caller computed is kept only without a routing
	 * table; otherwise the route decides, once per recipient. */
	if (q->route != NULL)
		sched_route(q, e, msg->qm->rcpts[rcpt].address);
	if (e->cls == QMGR_CLASS_SMTP && q->smtp == NULL)
		e->cls = QMGR_CLASS_REMOTE;
	e->transport = qmgr_transport_for(e->cls);
	e->dest = dest_get(q, e, msg->qm->rcpts[rcpt].address);
	TAILQ_INSERT_TAIL(&e->dest->waiting, e, dest_link);
	msg->outstanding++;
	msg->rs[rcpt].queued = true;
	dest_update_ready(q, e->dest);
}

void qmgr_sched_run(struct qmgr *q)
{
	struct qmgr_dest_table *t = q->dests;
	struct qmgr_dest *d;

	if (t->in_run)
		return; /* a synchronous completion inside deliver() */
	t->in_run = true;
	while (q->in_flight < q->s.process_limit && (d = TAILQ_FIRST(&t->ready)) != NULL) {
		struct qmgr_entry *e = TAILQ_FIRST(&d->waiting);
		TAILQ_REMOVE(&d->waiting, e, dest_link);
		e->holds_slot = true;
		if (d->transport->rcpt_limit != NULL) {
			/* The other recipients of the same message here ride
			 * along, up to the transport's recipient limit. */
			unsigned limit = d->transport->rcpt_limit(q), n = 1;
			struct qmgr_entry *m, *next;
			for (m = TAILQ_FIRST(&d->waiting); m != NULL && n < limit; m = next) {
				next = TAILQ_NEXT(m, dest_link);
				/* A message's recipients are queued together:
				 * stop at the first other message (bounded
				 * work per dispatch). */
				if (m->msg != e->msg)
					break;
				TAILQ_REMOVE(&d->waiting, m, dest_link);
				m->holds_slot = false;
				TAILQ_INSERT_TAIL(&e->batch, m, batch_link);
				n++;
			}
		}
		d->in_flight++;
		q->in_flight++;
		/* Round robin: a destination with more work goes to the end. */
		TAILQ_REMOVE(&t->ready, d, ready_link);
		d->is_ready = false;
		dest_update_ready(q, d);
		(void)gettimeofday(&e->handoff, NULL);
		e->transport->deliver(q, e);
	}
	t->in_run = false;
}

void qmgr_entry_done(struct qmgr *q, struct qmgr_entry *e, enum qmgr_result result,
		     const char *dsn, const char *text, char *const *forwards, size_t n_forwards)
{
	struct qmgr_dest *d = e->dest;
	struct qmgr_message *msg = e->msg;
	unsigned rcpt = e->rcpt;
	bool holds_slot = e->holds_slot;

	if (!TAILQ_EMPTY(&e->batch))
		log_panic("qmgr_entry_done: batch head done before its members (%s)", d->key);
	if (holds_slot) {
		if (d->in_flight == 0 || q->in_flight == 0)
			log_panic("qmgr_entry_done: no delivery in flight for %s", d->key);
		d->in_flight--;
		q->in_flight--;
	}
	msg->rs[rcpt].queued = false;
	/* May add recipients (forwards): they are queued before the count
	 * below can reach zero. */
	qmgr_message_result(q, msg, rcpt, result, dsn, text, forwards, n_forwards);
	/* Freed only now: dsn and text may point into the entry (routes'
	 * error/discard texts). */
	qmgr_entry_free(e);
	msg->outstanding--;
	dest_update_ready(q, d);
	dest_release_if_idle(q, d);
	if (msg->outstanding == 0)
		qmgr_message_idle(q, msg);
	qmgr_sched_run(q);
}

unsigned qmgr_sched_in_flight(const struct qmgr *q)
{
	return q->in_flight;
}
