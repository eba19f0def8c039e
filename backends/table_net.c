/*
 * table_net.c - connection pools and server back-off for the network
 * table drivers (ldap:, mysql:). A lookup takes a free slot (at most one
 * thread uses a connection at a time), connections are kept for reuse.
 * Must not: do network I/O itself, or wait for a slot without a bound.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/table_net.h"
#include "core/lib/xmalloc.h"

int64_t
table_net_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
table_net_pool_init(struct table_net_pool *p, size_t nservers,
		    unsigned retry_max_s, unsigned wait_s)
{
	pthread_condattr_t ca;

	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->free_cond, &ca);
	pthread_condattr_destroy(&ca);
	p->servers = xcalloc(nservers ? nservers : 1, sizeof(*p->servers));
	p->nservers = nservers;
	p->retry_max_s = retry_max_s ? retry_max_s : 1;
	p->wait_s = wait_s ? wait_s : 1;
}

void
table_net_pool_deinit(struct table_net_pool *p, void (*close_handle)(void *))
{
	for (size_t i = 0; i < p->nconns; i++) {
		if (p->conns[i]->handle)
			close_handle(p->conns[i]->handle);
		free(p->conns[i]);
	}
	p->nconns = 0;
	free(p->servers);
	p->servers = NULL;
	pthread_cond_destroy(&p->free_cond);
	pthread_mutex_destroy(&p->lock);
}

struct table_net_conn *
table_net_acquire(struct table_net_pool *p, struct errbuf *err)
{
	struct table_net_conn *best = NULL;
	struct timespec deadline;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += p->wait_s;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		/* The most recently used free connection: likely still open. */
		for (size_t i = 0; i < p->nconns; i++) {
			struct table_net_conn *c = p->conns[i];

			if (!c->busy && (best == NULL || (c->handle && !best->handle) ||
					 (!!c->handle == !!best->handle &&
					  c->last_used_ms > best->last_used_ms)))
				best = c;
		}
		if (best == NULL && p->nconns < TABLE_NET_POOL_MAX) {
			best = xcalloc(1, sizeof(*best));
			best->server = -1;
			p->conns[p->nconns++] = best;
		}
		if (best) {
			best->busy = true;
			pthread_mutex_unlock(&p->lock);
			return best;
		}
		if (pthread_cond_timedwait(&p->free_cond, &p->lock, &deadline) == ETIMEDOUT) {
			pthread_mutex_unlock(&p->lock);
			errbuf_set(err, "all %d connections busy for %u s",
				   TABLE_NET_POOL_MAX, p->wait_s);
			return NULL;
		}
	}
}

void
table_net_release(struct table_net_pool *p, struct table_net_conn *c)
{
	pthread_mutex_lock(&p->lock);
	c->busy = false;
	c->last_used_ms = table_net_now_ms();
	pthread_cond_signal(&p->free_cond);
	pthread_mutex_unlock(&p->lock);
}

static unsigned
rand_below(unsigned n)
{
	static _Thread_local unsigned long long s;

	if (s == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		s = ((unsigned long long)ts.tv_nsec << 20) ^ (unsigned long long)ts.tv_sec ^
		    (unsigned long long)(uintptr_t)&s;
		s |= 1;
	}
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return (unsigned)(s % n);
}

size_t
table_net_servers(struct table_net_pool *p, bool random, int *order_r,
		  unsigned *wait_s_r)
{
	int64_t now = table_net_now_ms(), first = -1;
	size_t n = 0;

	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->nservers; i++) {
		if (p->servers[i].retry_ms <= now)
			order_r[n++] = (int)i;
		else if (first < 0 || p->servers[i].retry_ms < first)
			first = p->servers[i].retry_ms;
	}
	pthread_mutex_unlock(&p->lock);
	if (random)
		for (size_t i = n; i > 1; i--) {
			unsigned j = rand_below((unsigned)i);
			int t = order_r[i - 1];

			order_r[i - 1] = order_r[j];
			order_r[j] = t;
		}
	*wait_s_r = n == 0 && first >= 0 ? (unsigned)((first - now + 999) / 1000) : 0;
	return n;
}

void
table_net_server_failed(struct table_net_pool *p, int server)
{
	struct table_net_server *s = &p->servers[server];
	unsigned delay = 1;

	pthread_mutex_lock(&p->lock);
	if (s->fails < 31)
		s->fails++;
	for (unsigned i = 1; i < s->fails && delay < p->retry_max_s; i++)
		delay *= 2;
	if (delay > p->retry_max_s)
		delay = p->retry_max_s;
	s->retry_ms = table_net_now_ms() + (int64_t)delay * 1000;
	pthread_mutex_unlock(&p->lock);
}

void
table_net_server_ok(struct table_net_pool *p, int server)
{
	pthread_mutex_lock(&p->lock);
	p->servers[server].fails = 0;
	p->servers[server].retry_ms = 0;
	pthread_mutex_unlock(&p->lock);
}
