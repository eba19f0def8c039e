/*
 * worker_test.c - the thread pool with a real libevent loop: work() runs
 * exactly once on a pool thread, done() runs on the loop thread and never
 * before worker_submit returns, FIFO order with one thread, worker_pending,
 * real parallelism, done() submitting more work, and worker_pool_free
 * finishing queued jobs and their done callbacks.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>

#include "core/worker.h"

static pthread_t loop_thread;

struct job {
	int          idx;
	atomic_int   work_runs;
	pthread_t    work_thread;
	int          done_runs;
	int          submitted;	/* set once worker_submit returned */
	int          done_on_loop;
	unsigned     pending_in_done;
	struct run  *run;
	useconds_t   sleep_us;
};

/* Shared state of one test run (loop thread only, except work_order). */
struct run {
	struct event_base  *base;
	struct worker_pool *pool;
	int                 ndone;
	int                 target;
	int                *done_order;
	int                *work_order;
	atomic_int          nwork;
	int                 early_done;	/* done ran before submit returned */
	int                 chain_left;
};

static void
job_work(void *arg)
{
	struct job *j = arg;

	atomic_fetch_add(&j->work_runs, 1);
	j->work_thread = pthread_self();
	if (j->sleep_us)
		usleep(j->sleep_us);
	if (j->run && j->run->work_order) {
		int k = atomic_fetch_add(&j->run->nwork, 1);
		j->run->work_order[k] = j->idx;
	} else if (j->run) {
		atomic_fetch_add(&j->run->nwork, 1);
	}
}

static void
job_done(void *arg)
{
	struct job *j = arg;
	struct run *r = j->run;

	j->done_runs++;
	j->done_on_loop = pthread_equal(pthread_self(), loop_thread);
	j->pending_in_done = worker_pending(r->pool);
	if (!j->submitted)
		r->early_done++;
	if (r->done_order)
		r->done_order[r->ndone] = j->idx;
	r->ndone++;
	if (r->ndone >= r->target)
		event_base_loopbreak(r->base);
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs the loop until r->ndone reaches r->target; fails after a minute. */
static void
run_loop(struct run *r)
{
	struct event *t = event_new(r->base, -1, EV_PERSIST, tick, NULL);
	struct timeval tv = { 0, 50000 };
	time_t deadline = time(NULL) + 60;

	assert_non_null(t);
	event_add(t, &tv);
	while (r->ndone < r->target && time(NULL) < deadline)
		event_base_loop(r->base, EVLOOP_ONCE);
	event_free(t);
	if (r->ndone < r->target)
		fail_msg("only %d of %d done callbacks ran", r->ndone, r->target);
}

static void
run_init(struct run *r, unsigned nthreads, int target)
{
	memset(r, 0, sizeof(*r));
	r->base = event_base_new();
	assert_non_null(r->base);
	r->pool = worker_pool_new(r->base, nthreads);
	assert_non_null(r->pool);
	r->target = target;
	atomic_init(&r->nwork, 0);
}

static void
run_free(struct run *r)
{
	worker_pool_free(&r->pool);
	assert_null(r->pool);
	event_base_free(r->base);
	free(r->done_order);
	free(r->work_order);
}

static struct job *
jobs_new(struct run *r, int n)
{
	struct job *v = calloc((size_t)n, sizeof(*v));

	assert_non_null(v);
	for (int i = 0; i < n; i++) {
		v[i].idx = i;
		v[i].run = r;
		atomic_init(&v[i].work_runs, 0);
	}
	return v;
}

static void
submit_all(struct run *r, struct job *v, int n)
{
	for (int i = 0; i < n; i++) {
		worker_submit(r->pool, job_work, job_done, &v[i]);
		v[i].submitted = 1;
	}
}

/* Every job's work once on a pool thread, done once on the loop thread. */
static void
check_jobs(const struct job *v, int n)
{
	for (int i = 0; i < n; i++) {
		if (atomic_load(&v[i].work_runs) != 1 || v[i].done_runs != 1)
			fail_msg("job %d: work ran %d times, done %d times", i,
				 atomic_load(&v[i].work_runs), v[i].done_runs);
		assert_true(v[i].done_on_loop);
		assert_false(pthread_equal(v[i].work_thread, loop_thread));
	}
}

static void
test_many_jobs(void **state)
{
	struct run r;
	struct job *v;
	const int n = 10000;

	(void)state;
	loop_thread = pthread_self();
	run_init(&r, 4, n);
	v = jobs_new(&r, n);
	submit_all(&r, v, n);
	/* done() only runs from the loop, so nothing completed yet */
	assert_int_equal(worker_pending(r.pool), n);
	assert_int_equal(r.ndone, 0);
	run_loop(&r);
	assert_int_equal(r.ndone, n);
	assert_int_equal(r.early_done, 0);
	assert_int_equal(atomic_load(&r.nwork), n);
	assert_int_equal(worker_pending(r.pool), 0);
	check_jobs(v, n);
	run_free(&r);
	free(v);
}

/* One thread: work and done both in submission order; pending counts down. */
static void
test_fifo_single_thread(void **state)
{
	struct run r;
	struct job *v;
	const int n = 1000;

	(void)state;
	loop_thread = pthread_self();
	run_init(&r, 1, n);
	r.done_order = calloc((size_t)n, sizeof(int));
	r.work_order = calloc((size_t)n, sizeof(int));
	assert_non_null(r.done_order);
	assert_non_null(r.work_order);
	v = jobs_new(&r, n);
	submit_all(&r, v, n);
	assert_int_equal(worker_pending(r.pool), n);
	run_loop(&r);
	for (int i = 0; i < n; i++) {
		if (r.work_order[i] != i || r.done_order[i] != i)
			fail_msg("position %d: work %d, done %d", i,
				 r.work_order[i], r.done_order[i]);
		/* in the k-th done, k jobs have completed */
		assert_int_equal(v[i].pending_in_done, (unsigned)(n - 1 - i));
	}
	check_jobs(v, n);
	/* nthreads 0 means one thread, still FIFO */
	run_free(&r);
	free(v);

	run_init(&r, 0, 50);
	r.done_order = calloc(50, sizeof(int));
	assert_non_null(r.done_order);
	v = jobs_new(&r, 50);
	submit_all(&r, v, 50);
	run_loop(&r);
	for (int i = 0; i < 50; i++)
		assert_int_equal(r.done_order[i], i);
	check_jobs(v, 50);
	run_free(&r);
	free(v);
}

/* work() finishing long before the loop runs still leaves done() waiting. */
static void
test_done_waits_for_loop(void **state)
{
	struct run r;
	struct job *v;

	(void)state;
	loop_thread = pthread_self();
	run_init(&r, 2, 3);
	v = jobs_new(&r, 3);
	submit_all(&r, v, 3);
	for (int waited = 0; atomic_load(&r.nwork) < 3 && waited < 5000; waited++)
		usleep(1000);
	assert_int_equal(atomic_load(&r.nwork), 3);
	usleep(20000);
	assert_int_equal(r.ndone, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(v[i].done_runs, 0);
	assert_int_equal(worker_pending(r.pool), 3);
	run_loop(&r);
	assert_int_equal(worker_pending(r.pool), 0);
	assert_int_equal(r.early_done, 0);
	check_jobs(v, 3);
	run_free(&r);
	free(v);
}

/* Four jobs that each wait for the other three: needs four threads. */
static pthread_mutex_t meet_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t meet_cond = PTHREAD_COND_INITIALIZER;
static int meet_arrived;
static atomic_int meet_ok;

static void
meet_work(void *arg)
{
	struct timespec ts;
	int rc = 0;

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&meet_lock);
	meet_arrived++;
	pthread_cond_broadcast(&meet_cond);
	while (meet_arrived < 4 && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&meet_cond, &meet_lock, &ts);
	if (meet_arrived >= 4)
		atomic_fetch_add(&meet_ok, 1);
	pthread_mutex_unlock(&meet_lock);
}

static void
meet_done(void *arg)
{
	struct run *r = arg;

	if (++r->ndone >= r->target)
		event_base_loopbreak(r->base);
}

static void
test_parallel(void **state)
{
	struct run r;

	(void)state;
	loop_thread = pthread_self();
	meet_arrived = 0;
	atomic_init(&meet_ok, 0);
	run_init(&r, 4, 4);
	for (int i = 0; i < 4; i++)
		worker_submit(r.pool, meet_work, meet_done, &r);
	run_loop(&r);
	assert_int_equal(atomic_load(&meet_ok), 4);
	run_free(&r);
}

/* done() may submit the next job (the usual continuation pattern). */
static void chain_done(void *arg);

static void
chain_work(void *arg)
{
	struct run *r = arg;

	atomic_fetch_add(&r->nwork, 1);
}

static void
chain_done(void *arg)
{
	struct run *r = arg;

	if (!pthread_equal(pthread_self(), loop_thread))
		r->early_done++;
	r->ndone++;
	if (r->chain_left > 0) {
		r->chain_left--;
		worker_submit(r->pool, chain_work, chain_done, r);
		/* the job whose done() runs no longer counts */
		if (worker_pending(r->pool) != 1)
			r->early_done++;
	}
	if (r->ndone >= r->target)
		event_base_loopbreak(r->base);
}

static void
test_chain(void **state)
{
	struct run r;

	(void)state;
	loop_thread = pthread_self();
	run_init(&r, 3, 200);
	r.chain_left = 199;
	worker_submit(r.pool, chain_work, chain_done, &r);
	run_loop(&r);
	assert_int_equal(r.ndone, 200);
	assert_int_equal(atomic_load(&r.nwork), 200);
	assert_int_equal(r.early_done, 0);
	assert_int_equal(worker_pending(r.pool), 0);
	run_free(&r);
}

/* worker_pool_free with jobs still queued: all run, all done() run. */
static void
test_free_with_queued_jobs(void **state)
{
	struct run r;
	struct job *v;
	const int n = 200;

	(void)state;
	loop_thread = pthread_self();
	run_init(&r, 1, n);
	r.done_order = calloc((size_t)n, sizeof(int));
	assert_non_null(r.done_order);
	v = jobs_new(&r, n);
	v[0].sleep_us = 100000;	/* keeps the rest in the queue */
	for (int i = 1; i < 10; i++)
		v[i].sleep_us = 1000;
	submit_all(&r, v, n);
	assert_int_equal(worker_pending(r.pool), n);
	/* no loop run at all: free must finish everything itself */
	worker_pool_free(&r.pool);
	assert_null(r.pool);
	assert_int_equal(r.ndone, n);
	assert_int_equal(atomic_load(&r.nwork), n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(r.done_order[i], i);
		assert_int_equal(atomic_load(&v[i].work_runs), 1);
		assert_int_equal(v[i].done_runs, 1);
		/* done() ran on the thread that freed the pool */
		assert_true(v[i].done_on_loop);
	}
	event_base_free(r.base);
	free(r.done_order);
	free(v);
}

/* Some jobs done through the loop, the rest by worker_pool_free. */
static void
test_free_half_done(void **state)
{
	struct run r;
	struct job *v;
	const int n = 1000;

	(void)state;
	loop_thread = pthread_self();
	run_init(&r, 4, n / 2);
	v = jobs_new(&r, n);
	for (int i = n / 2; i < n; i++)
		v[i].sleep_us = 100;
	submit_all(&r, v, n);
	run_loop(&r);
	assert_true(r.ndone >= n / 2);
	assert_true(worker_pending(r.pool) == (unsigned)(n - r.ndone));
	worker_pool_free(&r.pool);
	assert_int_equal(r.ndone, n);
	check_jobs(v, n);
	event_base_free(r.base);
	free(v);
}

static void
count_work(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

/* A job without done(), an idle pool, and a NULL pool pointer. */
static void
test_edges(void **state)
{
	struct event_base *base;
	struct worker_pool *p = NULL, *q;
	atomic_int count;

	(void)state;
	worker_pool_free(&p);	/* NULL: nothing to do */
	assert_null(p);
	base = event_base_new();
	assert_non_null(base);
	/* idle pool: created and freed */
	p = worker_pool_new(base, 8);
	assert_non_null(p);
	assert_int_equal(worker_pending(p), 0);
	worker_pool_free(&p);
	assert_null(p);

	/* two pools on the same base, jobs without done() */
	atomic_init(&count, 0);
	p = worker_pool_new(base, 2);
	q = worker_pool_new(base, 2);
	assert_non_null(p);
	assert_non_null(q);
	for (int i = 0; i < 100; i++) {
		worker_submit(p, count_work, NULL, &count);
		worker_submit(q, count_work, NULL, &count);
	}
	assert_int_equal(worker_pending(p), 100);
	assert_int_equal(worker_pending(q), 100);
	for (int i = 0; i < 6000 && (worker_pending(p) || worker_pending(q)); i++)
		event_base_loop(base, EVLOOP_NONBLOCK), usleep(1000);
	assert_int_equal(worker_pending(p), 0);
	assert_int_equal(worker_pending(q), 0);
	assert_int_equal(atomic_load(&count), 200);
	worker_pool_free(&p);
	worker_pool_free(&q);
	/* the pools removed their events: the base has nothing left */
	assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 1);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_jobs),
		cmocka_unit_test(test_fifo_single_thread),
		cmocka_unit_test(test_done_waits_for_loop),
		cmocka_unit_test(test_parallel),
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_free_with_queued_jobs),
		cmocka_unit_test(test_free_half_done),
		cmocka_unit_test(test_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
