/*
 * strlist.h - a vector of owned strings, and Postfix list splitting.
 */
#ifndef FACTEUR_STRLIST_H
#define FACTEUR_STRLIST_H
#include <stddef.h>

struct strlist {
	char  **v;	/* owned strings; v[n] == NULL when n > 0 */
	size_t  n;
	size_t  cap;
};

void strlist_init(struct strlist *l);
void strlist_add(struct strlist *l, const char *s);		/* copies s */
void strlist_addn(struct strlist *l, const char *s, size_t len);
void strlist_free(struct strlist *l);
int  strlist_contains(const struct strlist *l, const char *s);	/* exact */
/*
 * Splits a Postfix list value: items separated by commas and/or white
 * space; a {...} group (as in inline:{ a=b, c=d }) stays one item with
 * its braces. Appends to l. Returns 0, or -1 on an unbalanced brace.
 */
int  strlist_split(struct strlist *l, const char *value);

#endif
