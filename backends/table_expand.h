/*
 * table_expand.h - Postfix's %-expansion of query templates, search bases
 * and result_format for the ldap: and mysql: tables, with a quoting
 * callback per driver, and the "domain" restriction on lookup keys.
 *
 * Query templates (value = lookup key, key = NULL): %% a percent; %s the
 * key; %u its local part (the whole key if it has no "@"); %d its domain
 * (a key without a domain is not looked up); %[1-9] the domain's labels
 * from the right (%1 = top level; keys with too few labels are not looked
 * up); %S %U %D as %s %u %d. Result templates (value = one result, key =
 * the lookup key): %s %u %d on the result, %S %U %D %[1-9] on the key.
 * A key "@domain" (empty local part) is not looked up when %u/%U is used.
 */
#ifndef FACTEUR_TABLE_EXPAND_H
#define FACTEUR_TABLE_EXPAND_H
#include <stdbool.h>

#include "backends/table.h"
#include "core/lib/buf.h"
#include "core/lib/errbuf.h"

/* Appends s, quoted for the target language, to out. 0, or -1 + err (the
 * buffer's limit, or a value that cannot be quoted). */
typedef int (*table_quote_fn)(void *arg, const char *s, struct buf *out,
			      struct errbuf *err);

struct table_expand_domain;

struct table_expand {
	char     *name;		/* owned copy, for messages ("ldap:/x.cf") */
	unsigned  flags;	/* what the templates use (table_expand.c) */
	int       nparts;	/* highest %[1-9] */
	struct table_expand_domain *domain;	/* NULL: no restriction */
};

void table_expand_init(struct table_expand *x, const char *name);
void table_expand_free(struct table_expand *x);

/*
 * Validates one template before use and records what it needs. query:
 * true for a query/filter/search base, false for result_format. Returns 1
 * if it has %-expansions, 0 if it is constant, -1 + err on an unknown or
 * dangling "%" ("NAME: invalid query template \"...\": ...").
 */
int  table_expand_parse(struct table_expand *x, const char *format,
			bool query, struct errbuf *err);

/*
 * Sets the "domain" restriction: a Postfix string list of domain names
 * (exact, case-insensitive), "!name" exclusions, "/file" names (one or
 * more per line, "#" comments) and "type:table" lookups (the domain is the
 * key). The first item that matches decides. Returns 0, -1 + err.
 */
int  table_expand_set_domain(struct table_expand *x, const char *list,
			     struct errbuf *err);

/*
 * With a domain restriction, only keys "localpart@listed.domain" (non-empty
 * local part) are looked up: FOUND = look it up, NOTFOUND = answer not
 * found without asking the server, TEMPFAIL/CONFIG + err when a domain
 * table failed. Without a restriction always FOUND.
 */
enum table_status table_expand_check_domain(const struct table_expand *x,
					    const char *key, struct errbuf *err);

/*
 * Expands format. value is the key (query) or one result (result
 * template); key is NULL (query) or the lookup key (result). If out is not
 * empty a "," is appended first (results accumulate as a list). quote (may
 * be NULL) quotes every substituted value. Returns 1 expanded, 0 skipped
 * (the value lacks a part the template needs; out unchanged), -1 + err
 * (out's limit, or quoting failed; out unchanged).
 */
int  table_expand(const struct table_expand *x, const char *format,
		  const char *value, const char *key, struct buf *out,
		  table_quote_fn quote, void *quote_arg, struct errbuf *err);

/* RFC 4515 section 3: a value inside an LDAP search filter. "*", "(",
 * ")", "\", NUL and control characters become \XX. arg unused. */
int  table_quote_ldap_filter(void *arg, const char *s, struct buf *out,
			     struct errbuf *err);
/* RFC 4514 section 2.4: a value inside a DN attribute value. '"', '+',
 * ',', ';', '<', '=', '>', '\' become \c; a leading ' ' or '#' and a
 * trailing ' ' are escaped; NUL and control characters become \XX. */
int  table_quote_ldap_dn(void *arg, const char *s, struct buf *out,
			 struct errbuf *err);

#endif
