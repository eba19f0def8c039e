/*
 * table.c - opens "type:name" tables through the driver registry, folds
 * keys, answers for surrogates, consults a table's lookup cache (alone in
 * a thread's non-blocking mode), and searches table lists in order.
 * Must not: log (callers log the errbuf once), interpret values, or go on
 * past a table that could not answer (a later one could answer wrongly).
 */
#include <stdlib.h>
#include <string.h>

#include "backends/table.h"
#include "backends/table_cache.h"
#include "backends/table_driver.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"

static const struct table_driver *const table_drivers[] = {
	&table_texthash_driver,
	&table_hash_driver,
	&table_inline_driver,
	&table_static_driver,
	&table_cidr_driver,
	&table_fail_driver,
	&table_regexp_driver,
	&table_pcre_driver,
	&table_mysql_driver,
	&table_ldap_driver,
};

/* Postfix table types facteur knows of but does not provide here. */
static const char *const table_unavailable[] = {
	"pgsql", "sqlite", "lmdb", "btree", "cdb",
	"proxy", "memcache", "socketmap", "tcp", "unix", "nis", "nisplus",
	"sdbm", "dbm", "environ", "randmap", "pipemap", "union", "netinfo",
};

/* Non-blocking mode of this thread (see table_nonblock_begin). */
static __thread bool table_nb_on, table_nb_failed;

void
table_nonblock_begin(void)
{
	table_nb_on = true;
	table_nb_failed = false;
}

bool
table_nonblock_end(void)
{
	bool failed = table_nb_failed;

	table_nb_on = table_nb_failed = false;
	return failed;
}

bool
table_nonblock_failed(void)
{
	return table_nb_on && table_nb_failed;
}

struct table_list {
	struct table **v;
	size_t         n;
};

static const struct table_driver *
table_driver_find(const char *type, size_t len)
{
	for (size_t i = 0; i < sizeof(table_drivers) / sizeof(*table_drivers); i++)
		if (strlen(table_drivers[i]->type) == len &&
		    memcmp(table_drivers[i]->type, type, len) == 0)
			return table_drivers[i];
	return NULL;
}

static bool
table_type_known(const char *type, size_t len)
{
	for (size_t i = 0; i < sizeof(table_unavailable) / sizeof(*table_unavailable); i++)
		if (strlen(table_unavailable[i]) == len &&
		    memcmp(table_unavailable[i], type, len) == 0)
			return true;
	return false;
}

struct table *
table_open(const char *spec, unsigned open_flags, struct errbuf *err)
{
	const struct table_driver *drv;
	const char *colon;
	struct table *t;
	int r;

	errbuf_clear(err);
	if (spec == NULL || *spec == '\0') {
		errbuf_set(err, "empty table name; expected type:name");
		return NULL;
	}
	colon = strchr(spec, ':');
	if (colon == NULL || colon == spec) {
		errbuf_set(err, "%s: table type missing; expected type:name", spec);
		return NULL;
	}
	drv = table_driver_find(spec, (size_t)(colon - spec));
	if (drv == NULL) {
		if (table_type_known(spec, (size_t)(colon - spec)))
			errbuf_set(err, "dictionary type \"%.*s\" is not available in this facteur build",
				   (int)(colon - spec), spec);
		else
			errbuf_set(err, "unsupported dictionary type: %.*s",
				   (int)(colon - spec), spec);
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->drv = drv;
	t->spec = xstrdup(spec);
	t->flags = drv->flags | (open_flags & TABLE_F_FOLD);
	r = drv->open(t, colon + 1, err);
	if (r != TABLE_OPEN_OK)
		table_cache_free(&t->cache);
	if (r == TABLE_OPEN_UNAVAILABLE) {
		t->priv = NULL;
		t->surrogate = xstrdup(errbuf_str(err));
		errbuf_clear(err);
		return t;
	}
	if (r != TABLE_OPEN_OK) {
		free(t->spec);
		free(t);
		return NULL;
	}
	return t;
}

void
table_close(struct table **tp)
{
	struct table *t = *tp;

	if (t == NULL)
		return;
	if (t->surrogate == NULL && t->drv->close)
		t->drv->close(t);
	table_cache_free(&t->cache);
	free(t->surrogate);
	free(t->spec);
	xfree(tp);
}

const char *
table_name(const struct table *t)
{
	return t->spec;
}

unsigned
table_flags(const struct table *t)
{
	return t->flags;
}

enum table_status
table_set_value(struct buf *value_r, const char *s, size_t n, const char *key,
		struct errbuf *err)
{
	buf_reset(value_r);
	if (buf_append(value_r, s, n) < 0) {
		buf_reset(value_r);
		errbuf_set(err, "result for \"%s\" is longer than %zu bytes",
			   key, value_r->max);
		return TABLE_CONFIG;
	}
	return TABLE_FOUND;
}

char *
table_unbrace(const char *s, struct errbuf *err)
{
	size_t len;

	while (*s == ' ' || *s == '\t')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len > 0 && *s == '{') {
		if (len < 2 || s[len - 1] != '}') {
			errbuf_set(err, "\"%s\": missing '}'", s);
			return NULL;
		}
		s++;
		len -= 2;
		while (len > 0 && (*s == ' ' || *s == '\t')) {
			s++;
			len--;
		}
		while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
	}
	return xstrndup(s, len);
}

enum table_status
table_lookup(struct table *t, const char *key, struct buf *value_r,
	     struct errbuf *err)
{
	char folded[TABLE_KEY_MAX + 1];
	enum table_status st;
	uint64_t gen = 0;
	size_t len;
	int hit;

	buf_reset(value_r);
	errbuf_clear(err);
	if (key == NULL)
		return TABLE_NOTFOUND;
	len = strnlen(key, TABLE_KEY_MAX + 1);
	if (len > TABLE_KEY_MAX)
		return TABLE_NOTFOUND;
	if (t->surrogate) {
		errbuf_set(err, "%s", t->surrogate);
		table_cache_note_failure(t->spec, t->surrogate);
		return TABLE_TEMPFAIL;
	}
	/* Pattern tables see the key as given: their patterns choose. */
	if ((t->flags & TABLE_F_FOLD) && !(t->flags & TABLE_F_PATTERN)) {
		for (size_t i = 0; i <= len; i++) {
			unsigned char c = (unsigned char)key[i];
			folded[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (char)c;
		}
		key = folded;
	}
	if (t->cache) {
		hit = table_cache_get(t->cache, key, value_r, &gen, err);
		if (hit != TABLE_CACHE_MISS)
			return (enum table_status)hit;
	}
	if (table_nb_on && (t->flags & TABLE_F_BLOCKING)) {
		/* Not on this thread: the caller retries on a worker. */
		table_nb_failed = true;
		errbuf_set(err, "lookup would block");
		return TABLE_TEMPFAIL;
	}
	st = t->drv->lookup(t, key, value_r, err);
	switch (st) {
	case TABLE_FOUND:
		if (t->cache)
			table_cache_put(t->cache, key, st, value_r->data, value_r->len, gen);
		return st;
	case TABLE_NOTFOUND:
		buf_reset(value_r);
		if (t->cache)
			table_cache_put(t->cache, key, st, NULL, 0, gen);
		return st;
	case TABLE_TEMPFAIL:
	case TABLE_CONFIG:
		buf_reset(value_r);
		if (errbuf_str(err)[0] == '\0')
			errbuf_set(err, "table lookup problem");
		table_cache_note_failure(t->spec, errbuf_str(err));
		return st;
	}
	buf_reset(value_r);
	errbuf_set(err, "driver returned an invalid status");
	return TABLE_CONFIG;
}

int
table_dump(struct table *t, int (*cb)(const char *key, const char *value,
				      void *arg), void *arg, struct errbuf *err)
{
	errbuf_clear(err);
	if (t->surrogate) {
		errbuf_set(err, "%s", t->surrogate);
		return -1;
	}
	if (t->drv->dump == NULL) {
		errbuf_set(err, "%s: table type %s cannot be listed",
			   t->spec, t->drv->type);
		return -1;
	}
	return t->drv->dump(t, cb, arg, err);
}

void
table_warnings(struct table *t, struct strlist *out)
{
	if (t->surrogate == NULL && t->drv->warnings)
		t->drv->warnings(t, out);
}

struct table_list *
table_list_open(const char *value, unsigned open_flags, struct errbuf *err)
{
	struct table_list *l;
	struct strlist items;

	errbuf_clear(err);
	strlist_init(&items);
	if (value == NULL)
		value = "";
	if (strlist_split(&items, value) < 0) {
		errbuf_set(err, "%s: unbalanced '{' or '}'", value);
		strlist_free(&items);
		return NULL;
	}
	l = xcalloc(1, sizeof(*l));
	l->v = xcalloc(items.n + 1, sizeof(*l->v));
	for (size_t i = 0; i < items.n; i++) {
		struct table *t = table_open(items.v[i], open_flags, err);

		if (t == NULL) {
			strlist_free(&items);
			table_list_free(&l);
			return NULL;
		}
		l->v[l->n++] = t;
	}
	strlist_free(&items);
	return l;
}

int
table_list_open_param(struct table_list **lp, const char *param,
		      const char *value, unsigned open_flags, bool *blocking,
		      struct errbuf *err)
{
	struct errbuf why;

	errbuf_clear(&why);
	*lp = table_list_open(value != NULL ? value : "", open_flags, &why);
	if (*lp == NULL) {
		errbuf_set(err, "%s: %s", param, errbuf_str(&why));
		return -1;
	}
	if (table_list_blocking(*lp))
		*blocking = true;
	return 0;
}

void
table_list_free(struct table_list **lp)
{
	struct table_list *l = *lp;

	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		table_close(&l->v[i]);
	free(l->v);
	xfree(lp);
}

bool
table_list_blocking(const struct table_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i]->flags & TABLE_F_BLOCKING)
			return true;
	return false;
}

bool
table_list_empty(const struct table_list *l)
{
	return l->n == 0;
}

enum table_status
table_list_lookup_skip(struct table_list *l, const char *key,
		       unsigned skip_flags, struct buf *value_r,
		       struct errbuf *err, const struct table **which_r)
{
	struct errbuf why;
	enum table_status st;

	buf_reset(value_r);
	errbuf_clear(err);
	if (which_r)
		*which_r = NULL;
	for (size_t i = 0; i < l->n; i++) {
		struct table *t = l->v[i];

		if (t->flags & skip_flags)
			continue;
		st = table_lookup(t, key, value_r, &why);
		if (st == TABLE_NOTFOUND)
			continue;
		if (which_r)
			*which_r = t;
		if (st == TABLE_FOUND && value_r->len == 0) {
			errbuf_set(err, "%s lookup error for \"%s\": empty result",
				   t->spec, key);
			return TABLE_CONFIG;
		}
		if (st != TABLE_FOUND)
			errbuf_set(err, "%s lookup error for \"%s\": %s",
				   t->spec, key, errbuf_str(&why));
		return st;
	}
	return TABLE_NOTFOUND;
}

enum table_status
table_list_lookup(struct table_list *l, const char *key, struct buf *value_r,
		  struct errbuf *err, const struct table **which_r)
{
	return table_list_lookup_skip(l, key, 0, value_r, err, which_r);
}
