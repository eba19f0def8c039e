/*
 * worker.c - thread pool for blocking work; completions return to the loop.
 * Jobs wait in a FIFO; a thread runs work(), then the job moves to the
 * completion list and a byte on a pipe wakes the event loop, which runs
 * done() callbacks in completion order.
 * Must not: call done() on a pool thread, or lose a job at shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/lib/xmalloc.h"
#include "core/worker.h"

struct job {
	void (*work)(void *);
	void (*done)(void *);
	void *arg;
	struct job *next;
};

struct worker_pool {
	pthread_mutex_t lock;
	pthread_cond_t  cond;
	struct job     *todo_head, *todo_tail;
	struct job     *done_head, *done_tail;
	pthread_t      *threads;
	unsigned        nthreads;
	unsigned        pending;	/* loop thread only */
	int             stopping;
	int             wake_pending;
	int             pipefd[2];
	struct event   *ev;
};

static void *
worker_main(void *arg)
{
	struct worker_pool *p = arg;
	struct job *j;
	int wake;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (p->todo_head == NULL && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->todo_head == NULL) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		j = p->todo_head;
		p->todo_head = j->next;
		if (p->todo_head == NULL)
			p->todo_tail = NULL;
		pthread_mutex_unlock(&p->lock);

		j->work(j->arg);

		pthread_mutex_lock(&p->lock);
		j->next = NULL;
		if (p->done_tail)
			p->done_tail->next = j;
		else
			p->done_head = j;
		p->done_tail = j;
		wake = !p->wake_pending;
		p->wake_pending = 1;
		pthread_mutex_unlock(&p->lock);
		if (wake) {
			char c = 0;
			while (write(p->pipefd[1], &c, 1) < 0 && errno == EINTR)
				;
		}
	}
}

static void
worker_drain(struct worker_pool *p)
{
	struct job *j, *next;

	pthread_mutex_lock(&p->lock);
	j = p->done_head;
	p->done_head = p->done_tail = NULL;
	p->wake_pending = 0;
	pthread_mutex_unlock(&p->lock);
	for (; j != NULL; j = next) {
		next = j->next;
		p->pending--;
		if (j->done)
			j->done(j->arg);
		free(j);
	}
}

static void
worker_wakeup(evutil_socket_t fd, short what, void *arg)
{
	char tmp[64];

	while (read(fd, tmp, sizeof(tmp)) > 0)
		;
	worker_drain(arg);
}

struct worker_pool *
worker_pool_new(struct event_base *base, unsigned nthreads)
{
	struct worker_pool *p = xcalloc(1, sizeof(*p));

	if (nthreads == 0)
		nthreads = 1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if (pipe(p->pipefd) < 0) {
		free(p);
		return NULL;
	}
	for (int i = 0; i < 2; i++) {
		fcntl(p->pipefd[i], F_SETFD, FD_CLOEXEC);
		fcntl(p->pipefd[i], F_SETFL, O_NONBLOCK);
	}
	p->ev = event_new(base, p->pipefd[0], EV_READ | EV_PERSIST,
			  worker_wakeup, p);
	event_add(p->ev, NULL);
	p->threads = xcalloc(nthreads, sizeof(*p->threads));
	for (unsigned i = 0; i < nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0)
			break;
		p->nthreads++;
	}
	if (p->nthreads == 0) {
		worker_pool_free(&p);
		return NULL;
	}
	return p;
}

void
worker_submit(struct worker_pool *p, void (*work)(void *), void (*done)(void *),
	      void *arg)
{
	struct job *j = xmalloc(sizeof(*j));

	j->work = work;
	j->done = done;
	j->arg = arg;
	j->next = NULL;
	p->pending++;
	pthread_mutex_lock(&p->lock);
	if (p->todo_tail)
		p->todo_tail->next = j;
	else
		p->todo_head = j;
	p->todo_tail = j;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

unsigned
worker_pending(const struct worker_pool *p)
{
	return p->pending;
}

void
worker_pool_free(struct worker_pool **pp)
{
	struct worker_pool *p = *pp;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	/*
	 * The threads are gone: finish here. A done callback may still
	 * submit work; it runs inline so that no job is ever lost.
	 */
	for (;;) {
		struct job *j;

		worker_drain(p);
		j = p->todo_head;
		if (j == NULL)
			break;
		p->todo_head = j->next;
		if (p->todo_head == NULL)
			p->todo_tail = NULL;
		j->work(j->arg);
		j->next = NULL;
		p->done_head = p->done_tail = j;
	}
	if (p->ev)
		event_free(p->ev);
	close(p->pipefd[0]);
	close(p->pipefd[1]);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p->threads);
	free(p);
	*pp = NULL;
}
