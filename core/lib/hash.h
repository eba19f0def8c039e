/*
 * hash.h - a string-to-string hash table (open addressing, O(1) lookups).
 * Keys and values are copied on insertion and owned by the table.
 * Iteration follows insertion order. Not locked: callers serialize writers.
 */
#ifndef FACTEUR_HASH_H
#define FACTEUR_HASH_H
#include <stddef.h>

struct hash;

struct hash *hash_new(void);
void hash_free(struct hash **hp);
/* Copies key and value. Returns 1 if added, 0 if the key was already
 * present (the existing value is kept, as Postfix keeps the first). */
int hash_add(struct hash *h, const char *key, const char *value);
/* The stored value, or NULL. Valid until the table is freed. */
const char *hash_get(const struct hash *h, const char *key);
size_t hash_count(const struct hash *h);
/* Calls cb for each entry in insertion order; stops at the first nonzero
 * return and returns it; else 0. */
int hash_walk(const struct hash *h,
	      int (*cb)(const char *key, const char *value, void *arg), void *arg);

#endif
