/*
 * strlist.c - string vectors and Postfix's "comma and/or white space" lists.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"

void
strlist_init(struct strlist *l)
{
	l->v = NULL;
	l->n = l->cap = 0;
}

void
strlist_addn(struct strlist *l, const char *s, size_t len)
{
	if (l->n + 2 > l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = xstrndup(s, len);
	l->v[l->n] = NULL;
}

void
strlist_add(struct strlist *l, const char *s)
{
	strlist_addn(l, s, strlen(s));
}

void
strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	strlist_init(l);
}

int
strlist_contains(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return 1;
	return 0;
}

static int
is_sep(int c)
{
	return c == ',' || isspace((unsigned char)c);
}

int
strlist_split(struct strlist *l, const char *value)
{
	const char *p = value, *start;
	int depth;

	for (;;) {
		while (*p && is_sep(*p))
			p++;
		if (*p == '\0')
			return 0;
		start = p;
		depth = 0;
		while (*p && (depth > 0 || !is_sep(*p))) {
			if (*p == '{')
				depth++;
			else if (*p == '}' && --depth < 0)
				return -1;
			p++;
		}
		if (depth != 0)
			return -1;
		strlist_addn(l, start, (size_t)(p - start));
	}
}
