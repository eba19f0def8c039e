/*
 * table_cf.h - reads the "name = value" configuration files of ldap: and
 * mysql: tables (Postfix ldap_table(5) / mysql_table(5) syntax): "#"
 * comments, continuation lines starting with white space, no $expansion.
 */
#ifndef FACTEUR_TABLE_CF_H
#define FACTEUR_TABLE_CF_H
#include <stdbool.h>

#include "core/lib/errbuf.h"
#include "core/lib/strlist.h"

struct table_cf;

/* Outcomes of table_cf_load(). */
#define TABLE_CF_OK		0
#define TABLE_CF_SYNTAX		(-1)	/* "FILE, line N: ..." in err */
#define TABLE_CF_UNREADABLE	(-2)	/* "open FILE: ..." in err */

/*
 * Loads path. known is a NULL-terminated list of the parameter names the
 * driver understands; any other name appends the warning "FILE, line N:
 * unknown parameter \"NAME\" ignored" to warnings (NULL: not reported). A
 * repeated name keeps the last value and warns. *cf_r is owned by the
 * caller (table_cf_free). Returns TABLE_CF_OK or an error above.
 */
int  table_cf_load(const char *path, const char *const *known,
		   struct table_cf **cf_r, struct strlist *warnings,
		   struct errbuf *err);
void table_cf_free(struct table_cf **cfp);
const char *table_cf_path(const struct table_cf *cf);

/* The value of name (borrowed), or def when the file does not set it. */
const char *table_cf_str(const struct table_cf *cf, const char *name,
			 const char *def);
/* true when the file sets name (even to an empty value). */
bool table_cf_has(const struct table_cf *cf, const char *name);
/* yes/no/true/false/1/0 (any case). -1 + err "FILE: NAME = V: expected
 * yes or no" on anything else. */
int  table_cf_bool(const struct table_cf *cf, const char *name, bool def,
		   bool *r, struct errbuf *err);
/* A decimal integer within [min, max]; -1 + err otherwise. */
int  table_cf_long(const struct table_cf *cf, const char *name, long def,
		   long min, long max, long *r, struct errbuf *err);

#endif
