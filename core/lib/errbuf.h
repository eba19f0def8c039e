/*
 * errbuf.h - the reason a library call failed, for the caller to log once.
 * Library code sets it and returns a status; it never logs the same failure.
 */
#ifndef FACTEUR_ERRBUF_H
#define FACTEUR_ERRBUF_H

struct errbuf {
	char msg[1024];
};

void errbuf_clear(struct errbuf *e);
void errbuf_set(struct errbuf *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Never NULL; "" when nothing was set. Accepts e == NULL. */
const char *errbuf_str(const struct errbuf *e);

#endif
