/*
 * sieve_mime.h - message access for the Sieve interpreter: header fields
 * (unfolded), RFC 5322 address lists, transfer decoding of bodies.
 * Pure functions over the caller's buffer; thread-safe.
 */
#ifndef FACTEUR_SIEVE_MIME_H
#define FACTEUR_SIEVE_MIME_H
#include <stdbool.h>
#include <stddef.h>

#include "core/lib/buf.h"
#include "core/lib/strlist.h"

struct sieve_hdr {
	char   *name;		/* as written */
	char   *raw;		/* unfolded value, leading space removed */
	const char *src;	/* the field's lines in the caller's text; NULL
				 * for a field added by editheader */
	size_t  src_len;
};

struct sieve_hdrs {
	struct sieve_hdr *h;
	size_t  n;
	const char *rest;	/* after the last parsed field: fields beyond
				 * the limit, the empty line, the body */
	const char *body;	/* after the empty line (in the caller's text) */
	size_t  body_len;
	const char *end;	/* end of the caller's text */
	bool    edited;		/* changed since parsed or last rebuilt */
};

/* Parses the header section (at most 1024 fields, 64 KiB per field). */
void sieve_hdrs_parse(const char *msg, size_t len, struct sieve_hdrs *h);
void sieve_hdrs_free(struct sieve_hdrs *h);
/* editheader (RFC 5293): a new field (name, value already encoded and
 * folded as it is to be written), first or last. */
void sieve_hdrs_add(struct sieve_hdrs *h, const char *name, const char *value,
		    bool last);
/* Removes field i. */
void sieve_hdrs_del(struct sieve_hdrs *h, size_t i);
/* The message with the current header set: fields as written (or as
 * added), then everything from h->rest on. */
void sieve_hdrs_rebuild(const struct sieve_hdrs *h, struct buf *out);
/* RFC 2047 encoding (UTF-8, B) of a value that is not printable ASCII,
 * folded at white space before 78 columns after "Name: ". */
void sieve_hdr_encode(const char *name, const char *value, struct buf *out);
/* First value of a header (raw), or NULL. */
const char *sieve_hdrs_get(const struct sieve_hdrs *h, const char *name);
/* Splits an address-list header value into bare addresses (local@domain,
 * group syntax and comments handled); appends to out. */
void sieve_addr_list(const char *value, struct strlist *out);
/* Decodes quoted-printable or base64 (by cte name) into out; other
 * encodings are copied. */
void sieve_cte_decode(const char *cte, const char *in, size_t len,
		      struct buf *out);
#endif
