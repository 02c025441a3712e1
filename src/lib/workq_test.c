/* workq_test.c - jobs run off the loop thread and complete in it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "lib/workq.h"

struct job {
	pthread_t loop_thread;
	bool ran_elsewhere;
	bool done_in_loop;
	int *done_count;
};

static void work(void *ctx)
{
	struct job *j = ctx;
	j->ran_elsewhere = !pthread_equal(pthread_self(), j->loop_thread);
}

static void done(void *ctx)
{
	struct job *j = ctx;
	j->done_in_loop = pthread_equal(pthread_self(), j->loop_thread);
	(*j->done_count)++;
}

static void test_jobs_complete_in_loop(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	struct workq *q = workq_new(base, 4);
	assert_non_null(q);
	int count = 0;
	struct job jobs[100];
	for (int i = 0; i < 100; i++) {
		jobs[i] = (struct job){ pthread_self(), false, false, &count };
		workq_submit(q, work, done, &jobs[i]);
	}
	assert_int_equal(workq_pending(q), 100);
	while (workq_pending(q) > 0)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(count, 100);
	for (int i = 0; i < 100; i++) {
		assert_true(jobs[i].ran_elsewhere);
		assert_true(jobs[i].done_in_loop);
	}
	workq_free(&q);
	assert_null(q);
	event_base_free(base);
}

static void test_free_finishes_queued_jobs(void **state)
{
	(void)state;
	struct event_base *base = event_base_new();
	struct workq *q = workq_new(base, 1);
	int count = 0;
	struct job jobs[10];
	for (int i = 0; i < 10; i++) {
		jobs[i] = (struct job){ pthread_self(), false, false, &count };
		workq_submit(q, work, done, &jobs[i]);
	}
	workq_free(&q); /* without running the loop */
	assert_int_equal(count, 10);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jobs_complete_in_loop),
		cmocka_unit_test(test_free_finishes_queued_jobs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
