/*
 * table_inline.c - inline:{ key=value, key2=value2 } tables (Postfix 3.0
 * syntax). An entry may be "{ key = text with spaces, or commas }", a
 * value may be "{ text with spaces, or commas }", and white space around
 * "=" is allowed. Keys are folded at open when the table folds keys.
 * Must not: accept a spec it cannot parse completely, or log.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "backends/table_driver.h"
#include "core/lib/hash.h"
#include "core/lib/xmalloc.h"

struct table_inline {
	struct hash    *h;
	struct strlist  warnings;
};

static bool
is_sep(int c)
{
	return c == ',' || isspace((unsigned char)c);
}

const char *
table_brace_end(const char *p)
{
	int depth = 0;

	for (; *p; p++) {
		if (*p == '{')
			depth++;
		else if (*p == '}' && --depth == 0)
			return p + 1;
	}
	return NULL;
}

static char *
trimmed(const char *s, size_t n)
{
	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	return xstrndup(s, n);
}

/* Parses "key = value" inside one {...} entry (braces already removed). */
static int
inline_entry_braced(const char *spec, const char *s, size_t n, char **key_r,
		    char **value_r, struct errbuf *err)
{
	const char *eq = memchr(s, '=', n);

	if (eq == NULL) {
		errbuf_set(err, "%s: missing '=' in \"{%.*s}\"", spec, (int)n, s);
		return -1;
	}
	*key_r = trimmed(s, (size_t)(eq - s));
	*value_r = trimmed(eq + 1, n - (size_t)(eq + 1 - s));
	return 0;
}

static int
inline_parse(struct table *t, struct table_inline *ti, const char *name,
	     struct errbuf *err)
{
	const char *p, *end;
	char *key, *value;

	while (isspace((unsigned char)*name))
		name++;
	end = name + strlen(name);
	while (end > name && isspace((unsigned char)end[-1]))
		end--;
	if (*name != '{' || table_brace_end(name) != end) {
		errbuf_set(err, "%s: expected inline:{ key=value, ... }", t->spec);
		return -1;
	}
	p = name + 1;
	end--;			/* the closing '}' */
	for (;;) {
		while (p < end && is_sep(*p))
			p++;
		if (p >= end)
			break;
		key = value = NULL;
		if (*p == '{') {
			const char *g = table_brace_end(p);

			if (inline_entry_braced(t->spec, p + 1, (size_t)(g - p - 2),
						&key, &value, err) < 0)
				return -1;
			p = g;
			if (p < end && !is_sep(*p)) {
				errbuf_set(err, "%s: missing ',' after \"{...}\"", t->spec);
				free(key);
				free(value);
				return -1;
			}
		} else {
			const char *k = p, *v;

			while (p < end && !is_sep(*p) && *p != '=' && *p != '{' && *p != '}')
				p++;
			key = xstrndup(k, (size_t)(p - k));
			while (p < end && isspace((unsigned char)*p))
				p++;
			if (p >= end || *p != '=') {
				errbuf_set(err, "%s: missing '=' after \"%s\"", t->spec, key);
				free(key);
				return -1;
			}
			p++;
			while (p < end && isspace((unsigned char)*p))
				p++;
			if (p < end && *p == '{') {
				const char *g = table_brace_end(p);

				value = trimmed(p + 1, (size_t)(g - p - 2));
				p = g;
				if (p < end && !is_sep(*p)) {
					errbuf_set(err, "%s: missing ',' after the value of \"%s\"",
						   t->spec, key);
					free(key);
					free(value);
					return -1;
				}
			} else {
				v = p;
				while (p < end && !is_sep(*p) && *p != '{' && *p != '}')
					p++;
				if (p < end && !is_sep(*p)) {
					errbuf_set(err, "%s: unexpected '%c' in the value of \"%s\"",
						   t->spec, *p, key);
					free(key);
					return -1;
				}
				value = xstrndup(v, (size_t)(p - v));
			}
		}
		if (*key == '\0' || *value == '\0') {
			errbuf_set(err, "%s: %s", t->spec, *key == '\0' ?
				   "empty key before '='" : "empty value after '='");
			free(key);
			free(value);
			return -1;
		}
		if (t->flags & TABLE_F_FOLD)
			for (char *c = key; *c; c++)
				*c = (char)tolower((unsigned char)*c);
		if (!hash_add(ti->h, key, value)) {
			char *w = xasprintf("%s: duplicate entry: \"%.200s\"", t->spec, key);

			strlist_add(&ti->warnings, w);
			free(w);
		}
		free(key);
		free(value);
	}
	if (hash_count(ti->h) == 0) {
		errbuf_set(err, "%s: empty table", t->spec);
		return -1;
	}
	return 0;
}

static void
inline_close(struct table *t)
{
	struct table_inline *ti = t->priv;

	hash_free(&ti->h);
	strlist_free(&ti->warnings);
	xfree(&t->priv);
}

static int
inline_open(struct table *t, const char *name, struct errbuf *err)
{
	struct table_inline *ti = xcalloc(1, sizeof(*ti));

	ti->h = hash_new();
	strlist_init(&ti->warnings);
	t->priv = ti;
	if (inline_parse(t, ti, name, err) < 0) {
		inline_close(t);
		return TABLE_OPEN_CONFIG;
	}
	return TABLE_OPEN_OK;
}

static enum table_status
inline_lookup(struct table *t, const char *key, struct buf *value_r,
	      struct errbuf *err)
{
	struct table_inline *ti = t->priv;
	const char *v = hash_get(ti->h, key);

	return v ? table_set_value(value_r, v, strlen(v), key, err) : TABLE_NOTFOUND;
}

static int
inline_dump(struct table *t, table_dump_cb cb, void *arg, struct errbuf *err)
{
	struct table_inline *ti = t->priv;

	hash_walk(ti->h, cb, arg);
	return 0;
}

static void
inline_warnings(struct table *t, struct strlist *out)
{
	struct table_inline *ti = t->priv;

	for (size_t i = 0; i < ti->warnings.n; i++)
		strlist_add(out, ti->warnings.v[i]);
}

const struct table_driver table_inline_driver = {
	.type = "inline", .flags = 0,
	.open = inline_open, .lookup = inline_lookup, .dump = inline_dump,
	.warnings = inline_warnings, .close = inline_close,
};
