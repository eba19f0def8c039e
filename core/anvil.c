/*
 * anvil.c - the bounded per-key connection and rate table (see anvil.h):
 * a hash table with chaining for lookups and one least-recently-used list
 * for eviction. Dead entries are reclaimed by a full sweep at most once
 * per window unit (triggered by any call), so memory follows the clients
 * seen in the last unit, capped by max_entries.
 * Must not: allocate past max_entries entries, evict an entry that still
 * has connections or a mark, or keep stale counts past the window.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/anvil.h"
#include "core/lib/xmalloc.h"
#include "core/netlist.h"

struct entry {
	struct entry *hnext;		/* bucket chain */
	struct entry *prev, *next;	/* LRU list: head = most recent */
	uint32_t      hash;
	unsigned      count;		/* concurrent connections */
	unsigned      ev[ANVIL_NEVENTS];
	time_t        start;		/* window start, 0 = no window yet */
	time_t        mark;
	char          key[ANVIL_KEY_MAX + 1];
};

struct anvil {
	struct entry **bucket;
	size_t         nbucket;		/* power of two */
	size_t         n, max;
	struct entry  *head, *tail;
	long long      unit;
	time_t         next_sweep;
};

/* Entries looked at from the LRU tail to find one to evict. */
#define EVICT_SCAN 64

static uint32_t
key_hash(const char *k)
{
	uint32_t h = 2166136261u;

	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 16777619u;
	return h;
}

struct anvil *
anvil_new(size_t max_entries, long long unit)
{
	struct anvil *a = xcalloc(1, sizeof(*a));

	a->max = max_entries ? max_entries : 1;
	a->nbucket = 16;
	while (a->nbucket < a->max / 2 && a->nbucket < ((size_t)1 << 20))
		a->nbucket <<= 1;
	a->bucket = xcalloc(a->nbucket, sizeof(*a->bucket));
	a->unit = unit > 0 ? unit : 1;
	return a;
}

void
anvil_set_unit(struct anvil *a, long long unit)
{
	a->unit = unit > 0 ? unit : 1;
}

long long
anvil_unit(const struct anvil *a)
{
	return a->unit;
}

size_t
anvil_size(const struct anvil *a)
{
	return a->n;
}

static bool
window_over(const struct anvil *a, const struct entry *e, time_t now)
{
	return e->start != 0 && (long long)e->start + a->unit < (long long)now;
}

/* No connection, no mark, no counts that still matter. */
static bool
is_dead(const struct anvil *a, const struct entry *e, time_t now)
{
	return e->count == 0 && e->mark <= now &&
	       (e->start == 0 || window_over(a, e, now));
}

static void
lru_unlink(struct anvil *a, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		a->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		a->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push(struct anvil *a, struct entry *e)
{
	e->prev = NULL;
	e->next = a->head;
	if (a->head)
		a->head->prev = e;
	a->head = e;
	if (a->tail == NULL)
		a->tail = e;
}

static void
entry_remove(struct anvil *a, struct entry *e)
{
	struct entry **pp = &a->bucket[e->hash & (a->nbucket - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(a, e);
	free(e);
	a->n--;
}

size_t
anvil_expire(struct anvil *a, time_t now)
{
	struct entry *e = a->tail, *prev;
	size_t n = 0;

	for (; e != NULL; e = prev) {
		prev = e->prev;
		if (is_dead(a, e, now)) {
			entry_remove(a, e);
			n++;
		}
	}
	return n;
}

/* Frees room for one entry: the least recently used idle one goes. */
static bool
evict_one(struct anvil *a, time_t now)
{
	struct entry *e = a->tail, *prev;

	for (int i = 0; e != NULL && i < EVICT_SCAN; i++, e = prev) {
		prev = e->prev;
		if (e->count == 0 && e->mark <= now) {
			entry_remove(a, e);
			return true;
		}
	}
	return false;
}

static struct entry *
find(struct anvil *a, const char *key, time_t now, bool create)
{
	char k[ANVIL_KEY_MAX + 1];
	uint32_t h;
	struct entry *e;

	if (now >= a->next_sweep) {
		anvil_expire(a, now);
		a->next_sweep = now + (time_t)a->unit;
	}
	snprintf(k, sizeof(k), "%s", key);
	h = key_hash(k);
	for (e = a->bucket[h & (a->nbucket - 1)]; e != NULL; e = e->hnext)
		if (e->hash == h && strcmp(e->key, k) == 0)
			break;
	if (e != NULL) {
		if (is_dead(a, e, now) && e->start != 0) {
			/* Stale counts are as good as none. */
			memset(e->ev, 0, sizeof(e->ev));
			e->start = 0;
		}
		lru_unlink(a, e);
		lru_push(a, e);
		return e;
	}
	if (!create)
		return NULL;
	if (a->n >= a->max && !evict_one(a, now))
		return NULL;
	e = xcalloc(1, sizeof(*e));
	memcpy(e->key, k, sizeof(e->key));
	e->hash = h;
	e->hnext = a->bucket[h & (a->nbucket - 1)];
	a->bucket[h & (a->nbucket - 1)] = e;
	lru_push(a, e);
	a->n++;
	return e;
}

/* Postfix's window: every counter resets together once the unit passed. */
static void
window_touch(struct anvil *a, struct entry *e, time_t now)
{
	if (e->start == 0 || window_over(a, e, now)) {
		memset(e->ev, 0, sizeof(e->ev));
		e->start = now;
	}
}

int
anvil_connect(struct anvil *a, const char *key, time_t now, unsigned *count_r,
	      unsigned *rate_r)
{
	struct entry *e = find(a, key, now, true);

	*count_r = *rate_r = 0;
	if (e == NULL)
		return -1;
	window_touch(a, e, now);
	if (e->ev[ANVIL_CONN] < UINT32_MAX)
		e->ev[ANVIL_CONN]++;
	e->count++;
	*count_r = e->count;
	*rate_r = e->ev[ANVIL_CONN];
	return 0;
}

void
anvil_disconnect(struct anvil *a, const char *key, time_t now)
{
	struct entry *e = find(a, key, now, false);

	if (e != NULL && e->count > 0)
		e->count--;
}

unsigned
anvil_incr(struct anvil *a, const char *key, enum anvil_event ev, time_t now)
{
	struct entry *e;

	if ((unsigned)ev >= ANVIL_NEVENTS || (e = find(a, key, now, true)) == NULL)
		return 0;
	window_touch(a, e, now);
	if (e->ev[ev] < UINT32_MAX)
		e->ev[ev]++;
	return e->ev[ev];
}

unsigned
anvil_peek(struct anvil *a, const char *key, enum anvil_event ev, time_t now)
{
	struct entry *e;

	if ((unsigned)ev >= ANVIL_NEVENTS || (e = find(a, key, now, false)) == NULL)
		return 0;
	return window_over(a, e, now) ? 0 : e->ev[ev];
}

unsigned
anvil_count(struct anvil *a, const char *key, time_t now)
{
	struct entry *e = find(a, key, now, false);

	return e ? e->count : 0;
}

int
anvil_set_mark(struct anvil *a, const char *key, time_t until, time_t now)
{
	struct entry *e = find(a, key, now, true);

	if (e == NULL)
		return -1;
	e->mark = until;
	return 0;
}

time_t
anvil_mark(struct anvil *a, const char *key, time_t now)
{
	struct entry *e = find(a, key, now, false);

	return e != NULL && e->mark > now ? e->mark : 0;
}

void
anvil_client_key(const char *service, const char *addr, unsigned v4_len,
		 unsigned v6_len, char *key, size_t size)
{
	struct netlist_addr a;
	char text[64];
	unsigned bits, len;

	if (netlist_addr_parse(addr, &a) < 0) {
		snprintf(key, size, "%s/%s", service, addr);
		return;
	}
	bits = a.family == AF_INET ? 32 : 128;
	len = a.family == AF_INET ? v4_len : v6_len;
	if (len == 0 || len >= bits) {
		netlist_addr_format(&a, text, sizeof(text));
		snprintf(key, size, "%s/%s", service, text);
		return;
	}
	for (unsigned i = len; i < bits; i++)
		a.a[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
	netlist_addr_format(&a, text, sizeof(text));
	snprintf(key, size, "%s/%s/%u", service, text, len);
}

void
anvil_free(struct anvil **ap)
{
	struct anvil *a = *ap;
	struct entry *e, *next;

	if (a == NULL)
		return;
	for (e = a->head; e != NULL; e = next) {
		next = e->next;
		free(e);
	}
	free(a->bucket);
	free(a);
	*ap = NULL;
}
