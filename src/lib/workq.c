/* workq.c - see workq.h.  Jobs go through a mutex-protected FIFO to the
 * threads; finished jobs go through a second FIFO and a pipe whose read end
 * the event loop watches. */
#include "lib/workq.h"
#include "lib/log.h"
#include "lib/mem.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

struct workq_job {
	void (*work)(void *ctx);
	void (*done)(void *ctx);
	void *ctx;
	struct workq_job *next;
};

struct workq {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct workq_job *todo_head, *todo_tail;
	struct workq_job *done_head, *done_tail;
	unsigned n_pending; /* submitted, done() not yet called */
	bool stopping;
	pthread_t *threads;
	unsigned n_threads;
	int pipe_fd[2];
	struct event *ev;
};

static void job_push(struct workq_job **head, struct workq_job **tail, struct workq_job *j)
{
	j->next = NULL;
	if (*tail != NULL)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

static struct workq_job *job_pop(struct workq_job **head, struct workq_job **tail)
{
	struct workq_job *j = *head;
	if (j != NULL) {
		*head = j->next;
		if (*head == NULL)
			*tail = NULL;
	}
	return j;
}

static void *workq_thread(void *arg)
{
	struct workq *q = arg;
	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct workq_job *j;
		while ((j = job_pop(&q->todo_head, &q->todo_tail)) == NULL && !q->stopping)
			pthread_cond_wait(&q->cond, &q->lock);
		if (j == NULL)
			break;
		pthread_mutex_unlock(&q->lock);
		j->work(j->ctx);
		pthread_mutex_lock(&q->lock);
		bool was_empty = q->done_head == NULL;
		job_push(&q->done_head, &q->done_tail, j);
		if (was_empty) {
			/* One byte wakes the loop for the whole batch; a full
			 * pipe means a wake-up is already pending. */
			ssize_t n = write(q->pipe_fd[1], "", 1);
			(void)n;
		}
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* In the loop thread: run done() of every finished job. */
static void workq_drain(struct workq *q)
{
	char tmp[64];
	while (read(q->pipe_fd[0], tmp, sizeof(tmp)) > 0)
		;
	pthread_mutex_lock(&q->lock);
	struct workq_job *list = q->done_head;
	q->done_head = q->done_tail = NULL;
	pthread_mutex_unlock(&q->lock);
	while (list != NULL) {
		struct workq_job *j = list;
		list = j->next;
		j->done(j->ctx);
		q->n_pending--;
		free(j);
	}
}

static void workq_event_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	workq_drain(arg);
}

struct workq *workq_new(struct event_base *base, unsigned n_threads)
{
	struct workq *q = xcalloc(1, sizeof(*q));
	if (pipe2(q->pipe_fd, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(q);
		return NULL;
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	q->threads = xcalloc(n_threads, sizeof(pthread_t));
	for (unsigned i = 0; i < n_threads; i++) {
		int rc = pthread_create(&q->threads[i], NULL, workq_thread, q);
		if (rc != 0) {
			errno = rc;
			log_error("pthread_create: %s", strerror(rc));
			q->n_threads = i;
			workq_free(&q);
			errno = rc;
			return NULL;
		}
		q->n_threads = i + 1;
	}
	q->ev = event_new(base, q->pipe_fd[0], EV_READ | EV_PERSIST, workq_event_cb, q);
	if (q->ev == NULL || event_add(q->ev, NULL) < 0) {
		workq_free(&q);
		errno = ENOMEM;
		return NULL;
	}
	return q;
}

void workq_submit(struct workq *q, void (*work)(void *ctx), void (*done)(void *ctx), void *ctx)
{
	struct workq_job *j = xcalloc(1, sizeof(*j));
	j->work = work;
	j->done = done;
	j->ctx = ctx;
	q->n_pending++;
	pthread_mutex_lock(&q->lock);
	job_push(&q->todo_head, &q->todo_tail, j);
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

unsigned workq_pending(const struct workq *q)
{
	return q->n_pending;
}

void workq_free(struct workq **qp)
{
	struct workq *q = *qp;
	if (q == NULL)
		return;
	/* Let the threads finish every queued job, then stop them. */
	pthread_mutex_lock(&q->lock);
	q->stopping = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	for (unsigned i = 0; i < q->n_threads; i++)
		pthread_join(q->threads[i], NULL);
	workq_drain(q);
	if (q->ev != NULL)
		event_free(q->ev);
	(void)close(q->pipe_fd[0]);
	(void)close(q->pipe_fd[1]);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	free(q->threads);
	free(q);
	*qp = NULL;
}
