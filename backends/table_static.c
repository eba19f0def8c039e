/*
 * table_static.c - static:value tables: every key finds the same value.
 * "static:{ text with spaces }" gives the text without braces.
 * Must not: depend on the key (it is never inspected), or log.
 */
#include <stdlib.h>
#include <string.h>

#include "backends/table_driver.h"
#include "core/lib/xmalloc.h"

static int
static_open(struct table *t, const char *name, struct errbuf *err)
{
	struct errbuf why;
	char *v = table_unbrace(name, &why);

	if (v == NULL) {
		errbuf_set(err, "%s: %s", t->spec, errbuf_str(&why));
		return TABLE_OPEN_CONFIG;
	}
	if (*v == '\0') {
		errbuf_set(err, "%s: missing value; expected static:value", t->spec);
		free(v);
		return TABLE_OPEN_CONFIG;
	}
	t->priv = v;
	return TABLE_OPEN_OK;
}

static enum table_status
static_lookup(struct table *t, const char *key, struct buf *value_r,
	      struct errbuf *err)
{
	const char *v = t->priv;

	return table_set_value(value_r, v, strlen(v), key, err);
}

static void
static_close(struct table *t)
{
	xfree(&t->priv);
}

const struct table_driver table_static_driver = {
	.type = "static", .flags = 0,
	.open = static_open, .lookup = static_lookup, .close = static_close,
};
