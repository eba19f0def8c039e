/*
 * errbuf.c - fixed-size error reason (see errbuf.h). Truncates, never grows.
 */
#include <stdarg.h>
#include <stdio.h>

#include "core/lib/errbuf.h"

void
errbuf_clear(struct errbuf *e)
{
	if (e)
		e->msg[0] = '\0';
}

void
errbuf_set(struct errbuf *e, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

const char *
errbuf_str(const struct errbuf *e)
{
	return e ? e->msg : "";
}
