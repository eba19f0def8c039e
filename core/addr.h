/*
 * addr.h - RFC 5321 mailbox paths: parse, and format back.
 * Accepts <>, <local@domain>, quoted local parts ("a b"@x), source routes
 * (<@a,@b:u@c>, RFC 5321 4.1.2: accepted and dropped), address literals
 * ([1.2.3.4], [IPv6:...]), and UTF-8 (RFC 6531; reported in addr.utf8).
 * The local part is opaque: '%', '!' and a quoted '@' are never routing.
 * Pure functions: no I/O, no globals; fuzzed (tests/fuzz/fuzz_smtpd_cmd.c).
 */
#ifndef FACTEUR_ADDR_H
#define FACTEUR_ADDR_H
#include <stdbool.h>
#include <stddef.h>

struct addr {
	char *local;	/* owned; unquoted, as it is looked up ("" for <>) */
	char *domain;	/* owned; lowercased ASCII, UTF-8 kept; "" if none */
	bool  is_null;	/* <> */
	bool  utf8;	/* non-ASCII somewhere */
};

enum addr_parse_flags {
	ADDR_P_ALLOW_NULL   = 1 << 0,	/* <> is acceptable (MAIL FROM) */
	ADDR_P_STRICT       = 1 << 1,	/* strict_rfc821_envelopes: <> required */
	ADDR_P_ALLOW_NODOM  = 1 << 2,	/* <postmaster> without a domain */
};

/* Longest path accepted (between < and >, inclusive of route). */
#define ADDR_PATH_MAX 512

/*
 * Parses a path at the start of s[0..len). Without ADDR_P_STRICT, a bare
 * address without <> is accepted as Postfix does. On success returns 0,
 * fills a (caller frees with addr_free) and sets *rest_r to the first
 * byte after the path (ESMTP parameters follow). On error returns -1 and
 * sets *err_r to a static reason ("Syntax error in mailbox address").
 */
int  addr_parse_path(const char *s, size_t len, unsigned flags,
		     struct addr *a, const char **rest_r, const char **err_r);
/* Parses a bare "local@domain" (e.g. a map value). Same results. */
int  addr_parse_mailbox(const char *s, struct addr *a, const char **err_r);
void addr_free(struct addr *a);
void addr_copy(struct addr *dst, const struct addr *src);

/* "local@domain" unquoted: the lookup key form. Caller owns. "" for <>. */
char *addr_key(const struct addr *a);
/* The RFC 5321 form, local part quoted when needed. Caller owns. */
char *addr_format(const struct addr *a);
/* Is the domain a valid RFC 5321 domain or address literal? */
bool addr_domain_valid(const char *domain);

#endif
