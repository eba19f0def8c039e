/*
 * sieve_mime.h - message access for the Sieve interpreter: header fields
 * (unfolded), RFC 5322 address lists, transfer decoding of bodies.
 * Pure functions over the caller's buffer; thread-safe.
 */
#ifndef FACTEUR_SIEVE_MIME_H
#define FACTEUR_SIEVE_MIME_H
#include <stddef.h>

#include "core/lib/buf.h"
#include "core/lib/strlist.h"

struct sieve_hdr {
	char   *name;		/* as written */
	char   *raw;		/* unfolded value, leading space removed */
};

struct sieve_hdrs {
	struct sieve_hdr *h;
	size_t  n;
	const char *body;	/* after the empty line (in the caller's text) */
	size_t  body_len;
};

/* Parses the header section (at most 1024 fields, 64 KiB per field). */
void sieve_hdrs_parse(const char *msg, size_t len, struct sieve_hdrs *h);
void sieve_hdrs_free(struct sieve_hdrs *h);
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
