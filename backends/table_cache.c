/*
 * table_cache.c - the lookup cache in front of a table (see table_cache.h):
 * a chained hash of keys with a least-recently-used list, one mutex per
 * cache, absolute expiry times, and a generation number so that an answer
 * fetched before a flush is not stored after it.
 * Must not: keep TEMPFAIL or CONFIG answers, grow past its size, call the
 * table driver (table.c does), or hold its lock while a driver runs.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/table_cache.h"
#include "backends/table_cf.h"
#include "backends/table_driver.h"
#include "core/lib/xmalloc.h"
#include "core/params.h"

struct tc_entry {
	struct tc_entry *hnext;			/* bucket chain */
	struct tc_entry *lprev, *lnext;		/* LRU: head = most recent */
	int64_t          expires_ms;
	uint64_t         hash;
	bool             found;
	size_t           vlen;
	char            *value;
	char             key[];
};

struct table_cache {
	pthread_mutex_t   lock;
	struct table_cache_conf conf;
	struct tc_entry **buckets;
	size_t            nbuckets;		/* power of two */
	struct tc_entry  *head, *tail;
	size_t            count;
	uint64_t          gen;
	struct table_cache_stats st;
	struct table_cache *reg_prev, *reg_next;
};

static pthread_mutex_t tc_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct table_cache *tc_reg;
static int64_t (*tc_clock)(void);

static int64_t
tc_now(void)
{
	struct timespec ts;

	if (tc_clock)
		return tc_clock();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
table_cache_set_clock(int64_t (*now_ms)(void))
{
	tc_clock = now_ms;
}

void
table_cache_conf_default(struct table_cache_conf *c)
{
	c->enabled = false;
	c->ttl_ms = 60 * 1000;
	c->negative_ttl_ms = 10 * 1000;
	c->size = 10000;
}

static int
tc_time(const struct table_cf *cf, const char *name, int64_t *ms_r,
	struct errbuf *err)
{
	const char *v = table_cf_str(cf, name, NULL);
	long long secs;

	if (v == NULL)
		return 0;
	/* At most a week: a longer cache would hide changes for too long. */
	if (params_parse_time(v, 's', &secs) < 0 || secs > 7 * 86400) {
		errbuf_set(err, "%s: %s = %s: expected a time from 0 to 1w: a "
			   "number with an optional unit s, m, h, d or w",
			   table_cf_path(cf), name, v);
		return -1;
	}
	*ms_r = (int64_t)secs * 1000;
	return 0;
}

int
table_cache_conf_read(const struct table_cf *cf, struct table_cache_conf *c,
		      struct errbuf *err)
{
	long size;

	table_cache_conf_default(c);
	if (table_cf_bool(cf, "cache", false, &c->enabled, err) < 0 ||
	    tc_time(cf, "cache_ttl", &c->ttl_ms, err) < 0 ||
	    tc_time(cf, "cache_negative_ttl", &c->negative_ttl_ms, err) < 0 ||
	    table_cf_long(cf, "cache_size", (long)c->size, 1, TABLE_CACHE_SIZE_MAX,
			  &size, err) < 0)
		return -1;
	c->size = (size_t)size;
	return 0;
}

struct table_cache *
table_cache_new(const struct table_cache_conf *conf)
{
	struct table_cache *c;
	size_t nb = 16;

	if (!conf->enabled)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->conf = *conf;
	if (c->conf.size < 1)
		c->conf.size = 1;
	if (c->conf.size > TABLE_CACHE_SIZE_MAX)
		c->conf.size = TABLE_CACHE_SIZE_MAX;
	while (nb < c->conf.size)
		nb <<= 1;
	c->nbuckets = nb;
	c->buckets = xcalloc(nb, sizeof(*c->buckets));
	pthread_mutex_lock(&tc_reg_lock);
	c->reg_next = tc_reg;
	if (tc_reg)
		tc_reg->reg_prev = c;
	tc_reg = c;
	pthread_mutex_unlock(&tc_reg_lock);
	return c;
}

static uint64_t
tc_hash(const char *key)
{
	uint64_t h = 14695981039346656037ULL;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h;
}

static void
tc_lru_unlink(struct table_cache *c, struct tc_entry *e)
{
	if (e->lprev)
		e->lprev->lnext = e->lnext;
	else
		c->head = e->lnext;
	if (e->lnext)
		e->lnext->lprev = e->lprev;
	else
		c->tail = e->lprev;
	e->lprev = e->lnext = NULL;
}

static void
tc_lru_front(struct table_cache *c, struct tc_entry *e)
{
	e->lprev = NULL;
	e->lnext = c->head;
	if (c->head)
		c->head->lprev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

/* Unlinks and frees e. */
static void
tc_remove(struct table_cache *c, struct tc_entry *e)
{
	struct tc_entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	tc_lru_unlink(c, e);
	c->count--;
	free(e->value);
	free(e);
}

static struct tc_entry *
tc_find(struct table_cache *c, const char *key, uint64_t h)
{
	for (struct tc_entry *e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->hnext)
		if (e->hash == h && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

int
table_cache_get(struct table_cache *c, const char *key, struct buf *value_r,
		uint64_t *gen_r, struct errbuf *err)
{
	uint64_t h = tc_hash(key);
	struct tc_entry *e;
	int r = TABLE_CACHE_MISS;

	pthread_mutex_lock(&c->lock);
	*gen_r = c->gen;
	e = tc_find(c, key, h);
	if (e && e->expires_ms <= tc_now()) {
		tc_remove(c, e);
		c->st.expired++;
		e = NULL;
	}
	if (e == NULL) {
		c->st.misses++;
	} else {
		c->st.hits++;
		tc_lru_unlink(c, e);
		tc_lru_front(c, e);
		if (e->found)
			r = table_set_value(value_r, e->value, e->vlen, key, err);
		else
			r = TABLE_NOTFOUND;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

void
table_cache_put(struct table_cache *c, const char *key, enum table_status st,
		const char *value, size_t vlen, uint64_t gen)
{
	uint64_t h = tc_hash(key);
	struct tc_entry *e;
	int64_t ttl;

	if (st == TABLE_FOUND)
		ttl = c->conf.ttl_ms;
	else if (st == TABLE_NOTFOUND)
		ttl = c->conf.negative_ttl_ms;
	else
		return;
	if (ttl <= 0 || (st == TABLE_FOUND && vlen > TABLE_CACHE_VALUE_MAX))
		return;
	pthread_mutex_lock(&c->lock);
	if (gen != c->gen) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if ((e = tc_find(c, key, h)) != NULL)
		tc_remove(c, e);
	while (c->count >= c->conf.size && c->tail) {
		tc_remove(c, c->tail);
		c->st.evictions++;
	}
	e = xmalloc(sizeof(*e) + strlen(key) + 1);
	memset(e, 0, sizeof(*e));
	strcpy(e->key, key);
	e->hash = h;
	e->found = st == TABLE_FOUND;
	e->expires_ms = tc_now() + ttl;
	if (e->found) {
		e->value = xmalloc(vlen + 1);
		if (vlen)
			memcpy(e->value, value, vlen);
		e->value[vlen] = '\0';
		e->vlen = vlen;
	}
	e->hnext = c->buckets[h & (c->nbuckets - 1)];
	c->buckets[h & (c->nbuckets - 1)] = e;
	tc_lru_front(c, e);
	c->count++;
	c->st.inserts++;
	pthread_mutex_unlock(&c->lock);
}

static void
tc_clear_locked(struct table_cache *c)
{
	while (c->head)
		tc_remove(c, c->head);
	c->gen++;
}

void
table_cache_flush(struct table_cache *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	tc_clear_locked(c);
	pthread_mutex_unlock(&c->lock);
}

void
table_cache_flush_all(void)
{
	pthread_mutex_lock(&tc_reg_lock);
	for (struct table_cache *c = tc_reg; c; c = c->reg_next)
		table_cache_flush(c);
	pthread_mutex_unlock(&tc_reg_lock);
}

void
table_cache_get_stats(struct table_cache *c, struct table_cache_stats *s)
{
	pthread_mutex_lock(&c->lock);
	*s = c->st;
	s->entries = c->count;
	pthread_mutex_unlock(&c->lock);
}

void
table_cache_free(struct table_cache **cp)
{
	struct table_cache *c = *cp;

	if (c == NULL)
		return;
	pthread_mutex_lock(&tc_reg_lock);
	if (c->reg_prev)
		c->reg_prev->reg_next = c->reg_next;
	else
		tc_reg = c->reg_next;
	if (c->reg_next)
		c->reg_next->reg_prev = c->reg_prev;
	pthread_mutex_unlock(&tc_reg_lock);
	tc_clear_locked(c);
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
	xfree(cp);
}

int
table_cache_setup(struct table *t, const struct table_cf *cf, struct errbuf *err)
{
	struct table_cache_conf conf;

	if (table_cache_conf_read(cf, &conf, err) < 0)
		return -1;
	table_cache_free(&t->cache);
	t->cache = table_cache_new(&conf);
	return 0;
}

struct table_cache *
table_cache_of(const struct table *t)
{
	return t->cache;
}

/* ---- backend health (facteur status) ---- */

#define TC_FAIL_SLOTS 32

static struct table_failure tc_fail[TC_FAIL_SLOTS];
static pthread_mutex_t tc_fail_lock = PTHREAD_MUTEX_INITIALIZER;

void
table_cache_note_failure(const char *table, const char *reason)
{
	size_t i, slot = 0;
	time_t now = time(NULL);

	if (table == NULL)
		return;
	pthread_mutex_lock(&tc_fail_lock);
	for (i = 0; i < TC_FAIL_SLOTS; i++) {
		if (tc_fail[i].count > 0 &&
		    strncmp(tc_fail[i].table, table, sizeof(tc_fail[i].table) - 1)
		    == 0)
			break;
		if (tc_fail[i].last < tc_fail[slot].last)
			slot = i;	/* the oldest (or unused) one */
	}
	if (i < TC_FAIL_SLOTS) {
		slot = i;
	} else {
		memset(&tc_fail[slot], 0, sizeof(tc_fail[slot]));
		snprintf(tc_fail[slot].table, sizeof(tc_fail[slot].table), "%s",
			 table);
	}
	snprintf(tc_fail[slot].reason, sizeof(tc_fail[slot].reason), "%s",
		 reason ? reason : "");
	tc_fail[slot].last = now;
	tc_fail[slot].count++;
	pthread_mutex_unlock(&tc_fail_lock);
}

size_t
table_cache_failures(struct table_failure *out, size_t n)
{
	size_t k = 0;

	pthread_mutex_lock(&tc_fail_lock);
	for (size_t i = 0; i < TC_FAIL_SLOTS; i++)
		if (tc_fail[i].count > 0 && k < n)
			out[k++] = tc_fail[i];
	pthread_mutex_unlock(&tc_fail_lock);
	return k;
}
