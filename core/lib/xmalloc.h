/*
 * xmalloc.h - allocation wrappers that abort on exhaustion.
 * Acceptable only because every input-driven size has a limit (params.c).
 * x*_dup/x*printf results are owned by the caller; xfree(&p) frees and NULLs.
 */
#ifndef FACTEUR_XMALLOC_H
#define FACTEUR_XMALLOC_H
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Frees *pp (any pointer type passed as &p) and sets it to NULL. */
#define xfree(pp) do { free(*(pp)); *(pp) = NULL; } while (0)

#endif
