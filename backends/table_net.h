/*
 * table_net.h - what the network table drivers (ldap:, mysql:) share: a
 * small pool of connections per table, one per thread using it at a time,
 * and per-server back-off after failures. Not for table users.
 */
#ifndef FACTEUR_TABLE_NET_H
#define FACTEUR_TABLE_NET_H
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/lib/errbuf.h"

#define TABLE_NET_POOL_MAX	32

struct table_net_conn {
	void    *handle;	/* driver connection, NULL = not connected */
	int      server;	/* index of the server it talks to */
	int64_t  last_used_ms;
	bool     busy;
};

struct table_net_server {
	int64_t  retry_ms;	/* not tried before this time (0 = now) */
	unsigned fails;		/* consecutive failures */
};

struct table_net_pool {
	pthread_mutex_t          lock;
	pthread_cond_t           free_cond;
	struct table_net_conn   *conns[TABLE_NET_POOL_MAX];
	size_t                   nconns;
	struct table_net_server *servers;
	size_t                   nservers;
	unsigned                 retry_max_s;	/* back-off ceiling */
	unsigned                 wait_s;	/* longest wait for a free slot */
};

void    table_net_pool_init(struct table_net_pool *p, size_t nservers,
			    unsigned retry_max_s, unsigned wait_s);
/* Calls close_handle on every connection, frees the pool. */
void    table_net_pool_deinit(struct table_net_pool *p,
			      void (*close_handle)(void *handle));
/* A connection slot for this thread's lookup (handle may be NULL: the
 * caller connects). NULL + err if every slot stayed busy for wait_s. */
struct table_net_conn *table_net_acquire(struct table_net_pool *p,
					 struct errbuf *err);
void    table_net_release(struct table_net_pool *p, struct table_net_conn *c);
/*
 * Fills order_r with the servers that may be tried now, in random order
 * (random = true) or in configured order; returns how many. Servers in
 * back-off are left out; if all are, returns 0 and *wait_s_r = seconds
 * until the first one may be tried again.
 */
size_t  table_net_servers(struct table_net_pool *p, bool random, int *order_r,
			  unsigned *wait_s_r);
/* Records a failed connection: the server is skipped for 1 s, then 2, 4
 * ... up to retry_max_s while failures go on. */
void    table_net_server_failed(struct table_net_pool *p, int server);
void    table_net_server_ok(struct table_net_pool *p, int server);
int64_t table_net_now_ms(void);

#endif
