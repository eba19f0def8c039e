/*
 * table_cidr.c - cidr: tables (Postfix cidr_table(5)): lines "network/prefix
 * result" for IPv4 and IPv6 (plain or in [brackets]), a bare address means
 * that host; the first matching line wins. Keys are address strings; a key
 * that is not an address is simply not found. Reloaded when the file changes.
 * Must not: resolve names, log, or skip a malformed line silently (it is a
 * "FILE, line N: ..." error).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/table_driver.h"
#include "core/lib/xmalloc.h"
#include "core/netlist.h"

struct cidr_rule {
	struct netlist_cidr cidr;
	char               *pattern;	/* owned: "pattern\0value" */
	const char         *value;
};

struct cidr_map {
	struct cidr_rule *v;
	size_t            n, cap;
};

static void
cidr_free(void *data)
{
	struct cidr_map *m = data;

	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].pattern);
	free(m->v);
	free(m);
}

static bool
is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static int
cidr_parse(const char *path, const char *data, size_t len, void *arg,
	   void **data_r, struct strlist *warnings, struct errbuf *err)
{
	struct cidr_map *m = xcalloc(1, sizeof(*m));
	struct table_lines lr;
	struct errbuf why;
	const char *line;
	int lineno, r;

	table_lines_init(&lr, path, data, len);
	while ((r = table_lines_next(&lr, &line, &lineno, err)) > 0) {
		const char *p = line, *value;
		struct cidr_rule rule;
		char *pat;

		while (*p && !is_ws(*p))
			p++;
		value = p;
		while (*value && is_ws(*value))
			value++;
		if (*value == '\0') {
			errbuf_set(err, "%s, line %d: expected format: network/prefix result",
				   path, lineno);
			r = -1;
			break;
		}
		pat = xstrndup(line, (size_t)(p - line));
		errbuf_clear(&why);
		if (netlist_cidr_parse(pat, &rule.cidr, &why) < 0) {
			errbuf_set(err, "%s, line %d: %s", path, lineno, errbuf_str(&why));
			free(pat);
			r = -1;
			break;
		}
		free(pat);
		rule.pattern = xasprintf("%.*s%c%s", (int)(p - line), line, '\0', value);
		rule.value = rule.pattern + (p - line) + 1;
		if (m->n == m->cap) {
			m->cap = m->cap ? m->cap * 2 : 16;
			m->v = xrealloc(m->v, m->cap * sizeof(*m->v));
		}
		m->v[m->n++] = rule;
	}
	table_lines_free(&lr);
	if (r < 0) {
		cidr_free(m);
		return -1;
	}
	*data_r = m;
	return 0;
}

static int
cidr_open(struct table *t, const char *name, struct errbuf *err)
{
	struct table_source *s;

	if (*name == '\0') {
		errbuf_set(err, "%s: missing file name", t->spec);
		return TABLE_OPEN_CONFIG;
	}
	s = xmalloc(sizeof(*s));
	if (table_source_open(s, name, cidr_parse, cidr_free, NULL, err) < 0) {
		free(s);
		return TABLE_OPEN_CONFIG;
	}
	t->priv = s;
	return TABLE_OPEN_OK;
}

static enum table_status
cidr_lookup(struct table *t, const char *key, struct buf *value_r,
	    struct errbuf *err)
{
	struct table_source *s = t->priv;
	struct netlist_addr a;
	enum table_status st = TABLE_NOTFOUND;
	struct cidr_map *m;
	void *data;

	if (netlist_addr_parse(key, &a) < 0)
		return TABLE_NOTFOUND;
	if ((st = table_source_acquire(s, &data, err)) != TABLE_FOUND)
		return st;
	m = data;
	st = TABLE_NOTFOUND;
	for (size_t i = 0; i < m->n; i++)
		if (netlist_cidr_match(&m->v[i].cidr, &a)) {
			st = table_set_value(value_r, m->v[i].value,
					     strlen(m->v[i].value), key, err);
			break;
		}
	table_source_release(s);
	return st;
}

static int
cidr_dump(struct table *t, table_dump_cb cb, void *arg, struct errbuf *err)
{
	struct table_source *s = t->priv;
	struct cidr_map *m;
	void *data;

	if (table_source_acquire(s, &data, err) != TABLE_FOUND)
		return -1;
	m = data;
	for (size_t i = 0; i < m->n; i++)
		if (cb(m->v[i].pattern, m->v[i].value, arg) != 0)
			break;
	table_source_release(s);
	return 0;
}

static void
cidr_warnings(struct table *t, struct strlist *out)
{
	table_source_warnings(t->priv, out);
}

static void
cidr_close(struct table *t)
{
	table_source_close(t->priv);
	xfree(&t->priv);
}

const struct table_driver table_cidr_driver = {
	.type = "cidr", .flags = TABLE_F_PATTERN,
	.open = cidr_open, .lookup = cidr_lookup, .dump = cidr_dump,
	.warnings = cidr_warnings, .close = cidr_close,
};
