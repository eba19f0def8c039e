/*
 * smtp_cache.h - idle SMTP/LMTP client connections kept open between
 * transactions (Postfix's connection cache): a connection whose
 * transaction ended cleanly is parked under its destination key, and the
 * next delivery to that key takes it instead of connecting again. A parked
 * connection is closed (QUIT) after smtp_connection_cache_time_limit, and
 * dropped at once when the server speaks or hangs up while it is idle.
 * Loop thread only.
 * Must not: hand one connection to two deliveries, keep a connection the
 * server has closed, or outlive smtp_cache_clear (shutdown).
 */
#ifndef FACTEUR_SMTP_CACHE_H
#define FACTEUR_SMTP_CACHE_H
#include <stdbool.h>
#include <sys/time.h>

struct event_base;
struct bufferevent;

/* What the client learnt about a connection, restored on reuse. */
struct smtp_conn_info {
	bool           esmtp, pipelining, smtputf8, eightbit, starttls;
	bool           tls_active, auth_plain, auth_login;
	long long      size_max;
	char           host[256];	/* the target's name, for TLS checks */
	char           peer[400];	/* "host[ip]" or the socket path */
	char           relay[320];	/* "host[ip]:port" for log lines */
	struct timeval t_open;		/* when the connection was made */
	unsigned       uses;		/* transactions it carried so far */
};

/*
 * Parks bev (ownership passes to the cache) under key for at most
 * idle_limit seconds. Its callbacks are replaced.
 */
void smtp_cache_put(struct event_base *base, const char *key,
		    struct bufferevent *bev, const struct smtp_conn_info *info,
		    long long idle_limit);
/*
 * Takes the oldest parked connection for key: the bufferevent (now the
 * caller's, callbacks unset, timeouts off) and its info, or NULL.
 */
struct bufferevent *smtp_cache_take(const char *key, struct smtp_conn_info *info);
/* Parked connections (tests, status). */
unsigned smtp_cache_count(void);
/* Closes every parked connection (shutdown), without waiting. */
void smtp_cache_clear(void);

#endif
