/*
 * sasl.h - the server side of SASL for SMTP AUTH (RFC 4954): mechanism
 * names, strict base64 for the exchange, and the PLAIN (RFC 4616) message
 * parser. LOGIN is two base64 lines (user name, then password) and needs no
 * parser of its own. Pure functions, no I/O; fuzzed.
 */
#ifndef FACTEUR_SASL_H
#define FACTEUR_SASL_H
#include <stddef.h>

#include "core/lib/buf.h"

enum sasl_mech { SASL_MECH_NONE = 0, SASL_MECH_PLAIN, SASL_MECH_LOGIN };

/* Case-insensitive name -> mechanism; SASL_MECH_NONE if unknown. */
enum sasl_mech sasl_mech_find(const char *name, size_t len);
const char *sasl_mech_name(enum sasl_mech m);

/* Longest client response accepted (decoded bytes). */
#define SASL_RESPONSE_MAX 4096

/*
 * Strict base64 (RFC 4648, padding required, no white space); "=" alone
 * is the empty response (RFC 4954 4). 0, or -1 on bad data or when the
 * result would exceed SASL_RESPONSE_MAX. out is reset first.
 */
int sasl_decode64(const char *in, size_t len, struct buf *out);
/* Appends base64 of p to out. */
void sasl_encode64(const void *p, size_t len, struct buf *out);

/*
 * RFC 4616: authzid NUL authcid NUL passwd. authcid and passwd must be
 * non-empty and contain no NUL; an authzid other than authcid (case-
 * insensitively) is refused. On success *authcid_r and *pw_r point into msg
 * (lengths in *_len_r). 0, or -1 with *why_r set.
 */
int sasl_plain_parse(const char *msg, size_t len, const char **authcid_r,
		     size_t *authcid_len_r, const char **pw_r, size_t *pw_len_r,
		     const char **why_r);

#endif
