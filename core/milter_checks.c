/*
 * milter_checks.c - milter_header_checks on the commit worker (see
 * milter_checks.h): the lines go through cleanup_headers.c's
 * header_checks engine as a message of headers only.
 * Must not: run on the event loop; open the tables once per message
 * (they are kept per value, up to CACHE_MAX values, shared by the
 * workers; an entry is never freed while the process runs).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/table.h"
#include "core/lib/buf.h"
#include "core/lib/errbuf.h"
#include "core/lib/xmalloc.h"
#include "core/milter_checks.h"

#define CACHE_MAX 8		/* distinct values (listeners, reloads) */

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char              *value;
	struct table_list *tl;
} cache[CACHE_MAX];

/* The tables of value; *owned when they are the caller's to free (the
 * cache is full: never evicted, since a worker may be using an entry). */
static struct table_list *
tables_for(const char *value, bool *owned, char *err, size_t errlen)
{
	struct table_list *tl = NULL;
	struct errbuf why;
	size_t i;

	pthread_mutex_lock(&cache_lock);
	for (i = 0; i < CACHE_MAX && cache[i].value != NULL; i++)
		if (strcmp(cache[i].value, value) == 0) {
			tl = cache[i].tl;
			break;
		}
	if (tl == NULL) {
		errbuf_clear(&why);
		tl = table_list_open(value, 0, &why);
		if (tl == NULL) {
			snprintf(err, errlen, "milter_header_checks: %s",
				 errbuf_str(&why));
		} else if (i == CACHE_MAX) {
			*owned = true;
		} else {
			cache[i].value = xstrdup(value);
			cache[i].tl = tl;
		}
	}
	pthread_mutex_unlock(&cache_lock);
	return tl;
}

int
milter_checks_run(const char *value, const struct strlist *lines,
		  const struct cleanup_log_ctx *lc, struct cleanup_result *r,
		  char *err, size_t errlen)
{
	struct cleanup_checks cc;
	struct buf content, out;
	bool owned = false;

	memset(r, 0, sizeof(*r));
	if (value == NULL || *value == '\0' || lines->n == 0)
		return 0;
	memset(&cc, 0, sizeof(cc));
	cc.header = tables_for(value, &owned, err, errlen);
	if (cc.header == NULL)
		return -1;
	cc.header_limit = 0;
	buf_init(&content, 0);
	buf_init(&out, 0);
	for (size_t i = 0; i < lines->n; i++) {
		(void)buf_puts(&content, lines->v[i]);
		(void)buf_putc(&content, '\n');
	}
	(void)buf_putc(&content, '\n');
	cleanup_checks_run(&cc, content.data, content.len, lc, &out, r);
	r->modified = false;	/* the line itself is not changed */
	buf_free(&content);
	buf_free(&out);
	if (owned)
		table_list_free(&cc.header);
	return 0;
}
