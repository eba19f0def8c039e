/*
 * hash.c - string map with open addressing over an insertion-ordered array.
 * Each entry is one allocation (key NUL value NUL). Linear probing in a
 * power-of-two slot array kept at most half full.
 * Must not: keep pointers to caller memory, or lock (the owner does).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/lib/hash.h"
#include "core/lib/xmalloc.h"

struct hash_ent {
	char     *key;	/* owned; value follows the key's NUL */
	char     *value;
	uint64_t  code;
};

struct hash {
	struct hash_ent *ents;	/* insertion order */
	size_t           n, cap;
	uint32_t        *slots;	/* entry index + 1; 0 = empty */
	size_t           nslots;
};

/* FNV-1a: keys come from the operator's files, not from clients, and a
 * client key only probes an existing table, so no seeding is needed. */
static uint64_t
hash_code(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

struct hash *
hash_new(void)
{
	struct hash *h = xcalloc(1, sizeof(*h));

	h->nslots = 16;
	h->slots = xcalloc(h->nslots, sizeof(*h->slots));
	return h;
}

void
hash_free(struct hash **hp)
{
	struct hash *h = *hp;

	if (h == NULL)
		return;
	for (size_t i = 0; i < h->n; i++)
		free(h->ents[i].key);
	free(h->ents);
	free(h->slots);
	xfree(hp);
}

static void
hash_place(uint32_t *slots, size_t nslots, uint64_t code, uint32_t idx1)
{
	size_t i = (size_t)code & (nslots - 1);

	while (slots[i] != 0)
		i = (i + 1) & (nslots - 1);
	slots[i] = idx1;
}

static void
hash_grow(struct hash *h)
{
	size_t nslots = h->nslots * 2;
	uint32_t *slots = xcalloc(nslots, sizeof(*slots));

	for (size_t i = 0; i < h->n; i++)
		hash_place(slots, nslots, h->ents[i].code, (uint32_t)(i + 1));
	free(h->slots);
	h->slots = slots;
	h->nslots = nslots;
}

static const struct hash_ent *
hash_find(const struct hash *h, const char *key, uint64_t code)
{
	size_t i = (size_t)code & (h->nslots - 1);

	while (h->slots[i] != 0) {
		const struct hash_ent *e = &h->ents[h->slots[i] - 1];

		if (e->code == code && strcmp(e->key, key) == 0)
			return e;
		i = (i + 1) & (h->nslots - 1);
	}
	return NULL;
}

int
hash_add(struct hash *h, const char *key, const char *value)
{
	uint64_t code = hash_code(key);
	size_t klen, vlen;
	struct hash_ent *e;

	if (hash_find(h, key, code) != NULL)
		return 0;
	if (h->n >= UINT32_MAX - 1)
		return 0;	/* cannot happen with files under the size limit */
	if ((h->n + 1) * 2 > h->nslots)
		hash_grow(h);
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 16;
		h->ents = xrealloc(h->ents, h->cap * sizeof(*h->ents));
	}
	klen = strlen(key);
	vlen = strlen(value);
	e = &h->ents[h->n];
	e->key = xmalloc(klen + vlen + 2);
	memcpy(e->key, key, klen + 1);
	e->value = e->key + klen + 1;
	memcpy(e->value, value, vlen + 1);
	e->code = code;
	h->n++;
	hash_place(h->slots, h->nslots, code, (uint32_t)h->n);
	return 1;
}

const char *
hash_get(const struct hash *h, const char *key)
{
	const struct hash_ent *e = hash_find(h, key, hash_code(key));

	return e ? e->value : NULL;
}

size_t
hash_count(const struct hash *h)
{
	return h->n;
}

int
hash_walk(const struct hash *h,
	  int (*cb)(const char *key, const char *value, void *arg), void *arg)
{
	int r;

	for (size_t i = 0; i < h->n; i++)
		if ((r = cb(h->ents[i].key, h->ents[i].value, arg)) != 0)
			return r;
	return 0;
}
