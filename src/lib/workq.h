/* workq.h - run blocking work (fsync, rename) on a few threads and get the
 * result back in the event loop.
 *
 * The SMTP server commits each message with fsyncs.  Done in the event loop
 * they would serialize: one session's fsync stops every other session, and
 * the file system never sees two commits it could batch into one journal
 * write.  A job's work() runs on a pool thread and touches only what the
 * job owns; done() then runs in the loop thread, in completion order.
 */
#ifndef FACTEUR_LIB_WORKQ_H
#define FACTEUR_LIB_WORKQ_H

struct event_base;
struct workq;

/* A pool of n_threads threads whose completions are delivered through
 * base.  Returns NULL (errno set) if threads or the pipe cannot be made. */
struct workq *workq_new(struct event_base *base, unsigned n_threads);
/* Queue a job: work(ctx) on a pool thread, then done(ctx) in the loop. */
void workq_submit(struct workq *q, void (*work)(void *ctx), void (*done)(void *ctx), void *ctx);
/* Jobs submitted whose done() has not run yet. */
unsigned workq_pending(const struct workq *q);
/* Finish every queued job (their done() callbacks run here), stop the
 * threads and free the pool. */
void workq_free(struct workq **q);

#endif
