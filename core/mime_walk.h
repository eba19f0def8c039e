/*
 * mime_walk.h - a bounded, streaming MIME structure walker (the part of
 * Postfix's mime_state that content inspection needs): fed a message one
 * line at a time, it reports each logical header with its class (primary,
 * multipart part, attached message/rfc822) and whether it is a MIME
 * header, the empty lines that end header blocks, and every other line as
 * a body line (boundary lines included).
 * Optionally it reports Postfix's MIME errors (8-bit data in headers or
 * in 7-bit content, encoded message/multipart entities).
 * Memory is bounded: one logical header (header_limit bytes; the excess
 * is dropped and reported), and a stack of at most nesting_limit
 * boundaries of at most boundary_limit bytes each.
 * Must not: keep a line after returning, or recurse.
 */
#ifndef FACTEUR_MIME_WALK_H
#define FACTEUR_MIME_WALK_H
#include <stdbool.h>
#include <stddef.h>

#define MIME_WALK_BOUNDARY_MAX 2048	/* Postfix mime_boundary_length_limit */
#define MIME_WALK_NESTING_DEF  100	/* Postfix mime_nesting_limit */
#define MIME_WALK_HEADER_DEF   102400	/* Postfix header_size_limit */

enum mime_hdr_class {
	MIME_HDR_PRIMARY,	/* the message's own headers */
	MIME_HDR_MULTIPART,	/* headers of a body part of a multipart */
	MIME_HDR_NESTED,	/* headers of an attached message/rfc822 */
};

enum mime_walk_err {
	MIME_WALK_ERR_NESTING   = 1 << 0,	/* deeper than nesting_limit */
	MIME_WALK_ERR_TRUNC_HDR = 1 << 1,	/* a header over header_limit */
	MIME_WALK_ERR_8BIT_HDR  = 1 << 2,	/* 8-bit data in a header */
	MIME_WALK_ERR_8BIT_BODY = 1 << 3,	/* 8-bit data in 7-bit content */
	MIME_WALK_ERR_DOMAIN    = 1 << 4,	/* message/multipart encoded */
};

struct mime_walk_cb {
	/* One logical header: its lines joined by their LFs, without the
	 * last LF (nl tells whether it had one). Longer than header_limit:
	 * truncated (trunc set). */
	void (*header)(void *arg, enum mime_hdr_class cls, bool is_mime,
		       const char *text, size_t len, bool nl, bool trunc);
	/* The empty line ending a block of headers ("" or "\r"). */
	void (*header_end)(void *arg, enum mime_hdr_class cls,
			   const char *line, size_t len, bool nl);
	/* Any other line, without its LF (nl tells whether it had one). */
	void (*body)(void *arg, const char *line, size_t len, bool nl);
	/* Optional: the first time an error of a kind is seen, with the
	 * header or line (or encoding name) it is about. */
	void (*error)(void *arg, unsigned err, const char *text, size_t len);
};

struct mime_walk_opts {
	size_t   header_limit;	/* 0: MIME_WALK_HEADER_DEF */
	unsigned nesting_limit;	/* 0: MIME_WALK_NESTING_DEF (multipart and
				 * message levels both count) */
	size_t   boundary_limit;	/* 0: MIME_WALK_BOUNDARY_MAX; longer
				 * boundaries are cut (prefix match) */
	bool     no_mime;	/* only the primary headers are headers, the
				 * rest is body (disable_mime_input_processing) */
	unsigned check;		/* MIME_WALK_ERR_8BIT_HDR, _8BIT_BODY, _DOMAIN
				 * to look for (strict_7bit_headers ...) */
};

struct mime_walk;

struct mime_walk *mime_walk_new(const struct mime_walk_opts *o,
				const struct mime_walk_cb *cb, void *arg);
/* One line of the message, without its LF; nl: it had one. */
void mime_walk_line(struct mime_walk *w, const char *line, size_t len, bool nl);
/* The end of the message: reports a header still pending. */
void mime_walk_end(struct mime_walk *w);
/* MIME_WALK_ERR_* seen so far. */
unsigned mime_walk_errors(const struct mime_walk *w);
/* Postfix's text for the most serious error in errs (not 0). */
const char *mime_walk_error_text(unsigned errs);
/* Postfix's is_header(): p[0..n) starts "name:" (printable name bytes
 * without ':', optionally blanks before the colon). Also used by
 * cleanup_headers.c for PREPEND/REPLACE texts. */
bool mime_walk_is_header(const char *p, size_t n);
void mime_walk_free(struct mime_walk **wp);

/* Feeds a whole message (LF line ends) line by line, then ends it. */
void mime_walk_buffer(struct mime_walk *w, const char *p, size_t len);

#endif
