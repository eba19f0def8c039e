/*
 * rewrite_alias.c - alias_maps: aliases(5) text files read directly (the
 * watched-source machinery of the file tables reloads them when they
 * change), other map types through the table interface.
 * Must not: give a partly parsed file to lookups, or treat a file it cannot
 * read as "no such alias" (that is TEMPFAIL: mail waits, never bounces).
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/table_driver.h"
#include "core/lib/hash.h"
#include "core/lib/xmalloc.h"
#include "core/rewrite_alias.h"

#define ALIAS_WARNINGS_MAX 100

struct alias_src {
	char                *spec;
	struct table_source *file;	/* aliases(5) file, or */
	struct table        *table;	/* any other table */
};

struct alias_db {
	struct alias_src *v;
	size_t            n;
	bool              blocking;
};

static const char *const file_types[] = {
	"hash", "texthash", "btree", "lmdb", "cdb", "dbm", "sdbm",
};

bool
alias_spec_is_file(const char *spec)
{
	const char *colon = strchr(spec, ':');

	if (colon == NULL || colon[1] != '/')
		return false;
	for (size_t i = 0; i < sizeof(file_types) / sizeof(file_types[0]); i++)
		if (strlen(file_types[i]) == (size_t)(colon - spec) &&
		    strncasecmp(spec, file_types[i], (size_t)(colon - spec)) == 0)
			return true;
	return false;
}

static void
warn(struct strlist *w, const char *path, int lineno, const char *what,
     const char *line)
{
	char *s;

	if (w->n >= ALIAS_WARNINGS_MAX)
		return;
	s = xasprintf("%s, line %d: %s: \"%.100s\"", path, lineno, what, line);
	strlist_add(w, s);
	free(s);
}

/* "name: value" logical lines -> hash (name lowercased, first one kept). */
static int
alias_parse(const char *path, const char *data, size_t len, void *arg,
	    void **data_r, struct strlist *warnings, struct errbuf *err)
{
	struct table_lines lr;
	struct hash *h = hash_new();
	const char *line;
	int lineno, r;

	(void)arg;
	table_lines_init(&lr, path, data, len);
	while ((r = table_lines_next(&lr, &line, &lineno, err)) > 0) {
		const char *p = line, *ns, *ne, *v;
		char *name;

		if (*p == '"') {	/* "quoted name": value */
			ns = ++p;
			while (*p && *p != '"')
				p++;
			ne = p;
			if (*p == '"')
				p++;
		} else {
			ns = p;
			while (*p && *p != ':' && !isspace((unsigned char)*p))
				p++;
			ne = p;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != ':' || ne == ns) {
			warn(warnings, path, lineno, "need name:value pair", line);
			continue;
		}
		v = p + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		if (*v == '\0') {
			warn(warnings, path, lineno, "no value", line);
			continue;
		}
		name = xstrndup(ns, (size_t)(ne - ns));
		for (char *q = name; *q; q++)
			*q = (char)tolower((unsigned char)*q);
		if (!hash_add(h, name, v))
			warn(warnings, path, lineno, "duplicate entry (the first "
			     "one is used)", name);
		free(name);
	}
	table_lines_free(&lr);
	if (r < 0) {
		hash_free(&h);
		return -1;
	}
	*data_r = h;
	return 0;
}

static void
alias_data_free(void *data)
{
	struct hash *h = data;

	hash_free(&h);
}

struct alias_db *
alias_db_open(const char *alias_maps, struct errbuf *err)
{
	struct alias_db *d = xcalloc(1, sizeof(*d));
	struct strlist l;

	strlist_init(&l);
	if (strlist_split(&l, alias_maps ? alias_maps : "") < 0) {
		errbuf_set(err, "alias_maps: unbalanced braces");
		strlist_free(&l);
		free(d);
		return NULL;
	}
	d->v = xcalloc(l.n + 1, sizeof(*d->v));
	for (size_t i = 0; i < l.n; i++) {
		struct alias_src *s = &d->v[d->n];
		struct errbuf why;

		errbuf_clear(&why);
		s->spec = xstrdup(l.v[i]);
		d->n++;
		if (alias_spec_is_file(l.v[i])) {
			s->file = xcalloc(1, sizeof(*s->file));
			if (table_source_open(s->file, strchr(l.v[i], ':') + 1,
					      alias_parse, alias_data_free, NULL,
					      &why) < 0) {
				free(s->file);
				s->file = NULL;
				errbuf_set(err, "alias_maps: %s", errbuf_str(&why));
				goto fail;
			}
		} else {
			s->table = table_open(l.v[i], TABLE_F_FOLD, &why);
			if (s->table == NULL) {
				errbuf_set(err, "alias_maps: %s", errbuf_str(&why));
				goto fail;
			}
			if (table_flags(s->table) & TABLE_F_BLOCKING)
				d->blocking = true;
		}
	}
	strlist_free(&l);
	return d;
fail:
	strlist_free(&l);
	alias_db_free(&d);
	return NULL;
}

void
alias_db_free(struct alias_db **dp)
{
	struct alias_db *d = *dp;

	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n; i++) {
		if (d->v[i].file) {
			table_source_close(d->v[i].file);
			free(d->v[i].file);
		}
		if (d->v[i].table)
			table_close(&d->v[i].table);
		free(d->v[i].spec);
	}
	free(d->v);
	free(d);
	*dp = NULL;
}

bool
alias_db_blocking(const struct alias_db *d)
{
	return d->blocking;
}

bool
alias_db_empty(const struct alias_db *d)
{
	return d == NULL || d->n == 0;
}

enum table_status
alias_db_lookup(struct alias_db *d, const char *name, struct buf *value_r,
		struct errbuf *err)
{
	for (size_t i = 0; i < d->n; i++) {
		struct alias_src *s = &d->v[i];
		enum table_status st;
		struct errbuf why;

		errbuf_clear(&why);
		buf_reset(value_r);
		if (s->file) {
			void *data;
			const char *v;

			st = table_source_acquire(s->file, &data, &why);
			if (st == TABLE_FOUND) {
				v = hash_get(data, name);
				st = v ? table_set_value(value_r, v, strlen(v),
							 name, &why)
				       : TABLE_NOTFOUND;
				table_source_release(s->file);
			}
		} else
			st = table_lookup(s->table, name, value_r, &why);
		if (st == TABLE_NOTFOUND)
			continue;
		if (st != TABLE_FOUND)
			errbuf_set(err, "%s lookup error for \"%s\": %s", s->spec,
				   name, errbuf_str(&why));
		return st;
	}
	return TABLE_NOTFOUND;
}

struct count_arg {
	size_t n;
	int (*cb)(const char *, const char *, void *);
	void *arg;
	int stop;
};

static int
count_cb(const char *k, const char *v, void *arg)
{
	struct count_arg *c = arg;

	c->n++;
	if (c->cb && !c->stop)
		c->stop = c->cb(k, v, c->arg);
	return c->stop;
}

static int
walk(struct alias_db *d, struct count_arg *ca, struct strlist *warnings,
     struct errbuf *err)
{
	for (size_t i = 0; i < d->n && !ca->stop; i++) {
		struct alias_src *s = &d->v[i];
		struct errbuf why;

		errbuf_clear(&why);
		if (s->file) {
			void *data;

			if (table_source_acquire(s->file, &data, &why) != TABLE_FOUND) {
				errbuf_set(err, "%s: %s", s->spec, errbuf_str(&why));
				return -1;
			}
			hash_walk(data, count_cb, ca);
			table_source_release(s->file);
			if (warnings)
				table_source_warnings(s->file, warnings);
		} else if (table_dump(s->table, count_cb, ca, &why) < 0) {
			if (ca->cb == NULL)
				continue;	/* ldap:/mysql: cannot be listed */
			errbuf_set(err, "%s: %s", s->spec, errbuf_str(&why));
			return -1;
		}
	}
	return 0;
}

int
alias_db_check(struct alias_db *d, size_t *count_r, struct strlist *warnings,
	       struct errbuf *err)
{
	struct count_arg ca = { 0, NULL, NULL, 0 };
	int rc = walk(d, &ca, warnings, err);

	*count_r = ca.n;
	return rc;
}

int
alias_db_dump(struct alias_db *d,
	      int (*cb)(const char *key, const char *value, void *arg),
	      void *arg, struct errbuf *err)
{
	struct count_arg ca = { 0, cb, arg, 0 };

	return walk(d, &ca, NULL, err);
}
