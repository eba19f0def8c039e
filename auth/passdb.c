/*
 * passdb.c - opens the passdb named by smtpd_sasl_passdb (TYPE:NAME) and
 * dispatches lookups to its driver.
 * Must not: verify passwords (pwscheme.c does).
 */
#include <stdlib.h>
#include <string.h>

#include "auth/passdb.h"
#include "core/lib/xmalloc.h"

struct passdb {
	struct passdb_file  *file;
	struct passdb_table *table;
};

struct passdb *
passdb_open(const char *spec, struct errbuf *err)
{
	struct passdb *p;
	const char *colon = strchr(spec, ':');

	if (colon == NULL) {
		errbuf_set(err, "smtpd_sasl_passdb: \"%s\" is not TYPE:NAME "
			   "(expected passwd-file:/path)", spec);
		return NULL;
	}
	if (((size_t)(colon - spec) == 4 && strncmp(spec, "ldap", 4) == 0) ||
	    ((size_t)(colon - spec) == 5 && strncmp(spec, "mysql", 5) == 0)) {
		p = xcalloc(1, sizeof(*p));
		if ((p->table = passdb_table_open(spec, err)) == NULL) {
			free(p);
			return NULL;
		}
		return p;
	}
	if ((size_t)(colon - spec) != 11 || strncmp(spec, "passwd-file", 11) != 0) {
		errbuf_set(err, "smtpd_sasl_passdb: unsupported type \"%.*s\" "
			   "(supported: passwd-file, ldap, mysql)",
			   (int)(colon - spec), spec);
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	if ((p->file = passdb_file_open(colon + 1, err)) == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

void
passdb_free(struct passdb **pp)
{
	if (*pp == NULL)
		return;
	passdb_file_free(&(*pp)->file);
	passdb_table_free(&(*pp)->table);
	free(*pp);
	*pp = NULL;
}

enum passdb_status
passdb_lookup(struct passdb *p, const char *user, char **pass_r,
	      struct errbuf *err)
{
	if (p->table != NULL)
		return passdb_table_lookup(p->table, user, pass_r, err);
	return passdb_file_lookup(p->file, user, pass_r, err);
}
