/*
 * buf.h - one growable byte buffer with a hard maximum.
 * Every buffer a client can fill is created with a limit from params.c;
 * appends beyond the limit fail (return -1) and leave the buffer unchanged.
 * The data is always NUL-terminated (not counted in len).
 */
#ifndef FACTEUR_BUF_H
#define FACTEUR_BUF_H
#include <stdarg.h>
#include <stddef.h>

struct buf {
	char   *data;	/* owned; NULL until the first append */
	size_t  len;
	size_t  cap;
	size_t  max;	/* 0 = unlimited (only for internal, bounded data) */
};

void buf_init(struct buf *b, size_t max);
/* 0 on success, -1 if the result would exceed b->max. */
int  buf_append(struct buf *b, const void *p, size_t n);
int  buf_puts(struct buf *b, const char *s);
int  buf_putc(struct buf *b, int c);
int  buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int  buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Sets the content to s (replacing it). */
int  buf_set(struct buf *b, const char *s);
void buf_reset(struct buf *b);		/* len = 0, keeps memory */
void buf_free(struct buf *b);		/* releases memory, len = cap = 0 */
/* Always a valid C string (the empty string before any append). */
const char *buf_cstr(const struct buf *b);
/* Hands the data to the caller (owned, NUL-terminated); b becomes empty. */
char *buf_steal(struct buf *b);

#endif
