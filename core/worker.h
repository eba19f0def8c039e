/*
 * worker.h - a pool of threads for work that may block (fsync, disk I/O,
 * blocking table lookups). work() runs on a pool thread; done() then runs on
 * the event loop thread, never before worker_submit returns.
 * Must not: touch libevent objects from work() (only from done()).
 */
#ifndef FACTEUR_WORKER_H
#define FACTEUR_WORKER_H

struct event_base;
struct worker_pool;

struct worker_pool *worker_pool_new(struct event_base *base, unsigned nthreads);
/* Finishes queued jobs (running their done callbacks), joins the threads. */
void worker_pool_free(struct worker_pool **pp);
void worker_submit(struct worker_pool *p, void (*work)(void *arg),
		   void (*done)(void *arg), void *arg);
/* Jobs submitted and not yet completed (work or done pending). */
unsigned worker_pending(const struct worker_pool *p);

#endif
