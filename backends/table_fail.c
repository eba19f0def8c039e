/*
 * table_fail.c - fail:reason tables: every lookup is a temporary failure
 * with that reason. Used to prove that an unavailable backend defers
 * (4xx) instead of rejecting or bouncing.
 * Must not: ever answer FOUND or NOTFOUND.
 */
#include <stdlib.h>

#include "backends/table_driver.h"
#include "core/lib/xmalloc.h"

static int
fail_open(struct table *t, const char *name, struct errbuf *err)
{
	struct errbuf why;
	char *v = table_unbrace(name, &why);

	if (v == NULL) {
		errbuf_set(err, "%s: %s", t->spec, errbuf_str(&why));
		return TABLE_OPEN_CONFIG;
	}
	if (*v == '\0') {
		free(v);
		v = xstrdup("table lookup problem");
	}
	t->priv = v;
	return TABLE_OPEN_OK;
}

static enum table_status
fail_lookup(struct table *t, const char *key, struct buf *value_r,
	    struct errbuf *err)
{
	errbuf_set(err, "%s", (const char *)t->priv);
	return TABLE_TEMPFAIL;
}

static int
fail_dump(struct table *t, table_dump_cb cb, void *arg, struct errbuf *err)
{
	errbuf_set(err, "%s", (const char *)t->priv);
	return -1;
}

static void
fail_close(struct table *t)
{
	xfree(&t->priv);
}

const struct table_driver table_fail_driver = {
	.type = "fail", .flags = 0,
	.open = fail_open, .lookup = fail_lookup, .dump = fail_dump,
	.close = fail_close,
};
