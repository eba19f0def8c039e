/*
 * table_cache.h - a lookup cache in front of one table: found values for
 * cache_ttl, "not found" for cache_negative_ttl, at most cache_size keys
 * (least recently used out first). Thread-safe: lookups of one table run
 * on several worker threads. Only FOUND and NOTFOUND answers are kept; a
 * TEMPFAIL or CONFIG answer is never cached, so an outage ends as soon as
 * the server answers again.
 *
 * Tables configured from a .cf file (ldap:, mysql:) take these keys:
 *   cache = yes|no              (default no)
 *   cache_ttl = 60s             (found results; 0: not kept)
 *   cache_negative_ttl = 10s    (not-found results; 0: not kept)
 *   cache_size = 10000          (keys, 1 to 1000000)
 * Times take Postfix units: s (default), m, h, d, w.
 */
#ifndef FACTEUR_TABLE_CACHE_H
#define FACTEUR_TABLE_CACHE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "backends/table.h"

/* For a driver's list of known .cf keys. */
#define TABLE_CACHE_CF_KEYS "cache", "cache_ttl", "cache_negative_ttl", "cache_size"

#define TABLE_CACHE_SIZE_MAX	1000000
/* Values longer than this are looked up every time, never kept. */
#define TABLE_CACHE_VALUE_MAX	((size_t)65536)

struct table_cache_conf {
	bool     enabled;
	int64_t  ttl_ms;		/* found */
	int64_t  negative_ttl_ms;	/* not found */
	size_t   size;			/* keys */
};

struct table_cache_stats {
	uint64_t hits, misses, inserts, evictions, expired;
	size_t   entries;
};

struct table_cache;
struct table_cf;

/* The defaults above (cache off). */
void table_cache_conf_default(struct table_cache_conf *c);
/* Reads the cache keys of a .cf file into c (defaults first); -1 + err
 * "FILE: cache_ttl = x: ..." on a bad value. */
int  table_cache_conf_read(const struct table_cf *cf,
			   struct table_cache_conf *c, struct errbuf *err);

/* A cache registered for table_cache_flush_all(); NULL if !c->enabled. */
struct table_cache *table_cache_new(const struct table_cache_conf *c);
void table_cache_free(struct table_cache **cp);

/*
 * Looks key up. TABLE_FOUND (value_r set; CONFIG + err if value_r's limit
 * is too small) or TABLE_NOTFOUND on a hit; TABLE_CACHE_MISS on a miss.
 * Either way *gen_r is set for table_cache_put.
 */
#define TABLE_CACHE_MISS (-100)
int  table_cache_get(struct table_cache *c, const char *key,
		     struct buf *value_r, uint64_t *gen_r, struct errbuf *err);
/* Keeps a FOUND (value) or NOTFOUND answer obtained after the get that
 * gave gen; dropped if the cache was flushed meanwhile. Other statuses
 * are ignored. */
void table_cache_put(struct table_cache *c, const char *key,
		     enum table_status st, const char *value, size_t vlen,
		     uint64_t gen);
/* Drops every entry of one cache, or of every cache in the process (for a
 * configuration reload). */
void table_cache_flush(struct table_cache *c);
void table_cache_flush_all(void);
void table_cache_get_stats(struct table_cache *c, struct table_cache_stats *s);

/*
 * Reads the cache keys of cf and attaches a cache to t when enabled (for
 * drivers' open). -1 + err on a bad value.
 */
int  table_cache_setup(struct table *t, const struct table_cf *cf,
		       struct errbuf *err);
/* The cache of t, or NULL. */
struct table_cache *table_cache_of(const struct table *t);

/*
 * Backend health for `facteur status`: table_lookup notes each lookup that
 * failed (TEMPFAIL or CONFIG) by table spec; the last 32 tables are kept
 * with their count, last time and reason. Thread-safe.
 */
struct table_failure {
	char               table[256];	/* "ldap:/etc/facteur/users.cf" */
	char               reason[256];
	time_t             last;
	unsigned long long count;
};
void   table_cache_note_failure(const char *table, const char *reason);
size_t table_cache_failures(struct table_failure *out, size_t n);

/* Tests: the clock in milliseconds (NULL: CLOCK_MONOTONIC). */
void table_cache_set_clock(int64_t (*now_ms)(void));

#endif
