/*
 * passdb_table.c - smtpd_sasl_passdb = ldap:/path.cf or mysql:/path.cf:
 * the table's value for the login name is the stored password
 * ("{SCHEME}hash" as in LDAP userPassword or PostfixAdmin's mailbox
 * table; without a prefix, a crypt(3) string). Login names are folded to
 * lower case. A table that cannot answer (server down, bad setup) is a
 * temporary failure, never a "no such user". An ldap: table with
 * auth_bind = yes keeps no password: the LDAP server checks it by a bind
 * as the user (passdb_table_bind_verify), and lookups are refused.
 * Must not: verify passwords (pwscheme.c does), keep copies of the value,
 * or be called on the event loop (lookups block on the network).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth/passdb.h"
#include "backends/table.h"
#include "backends/table_ldap.h"
#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"

struct passdb_table {
	struct table *table;
	bool          binds;	/* ldap: auth_bind = yes */
};

struct passdb_table *
passdb_table_open(const char *spec, struct errbuf *err)
{
	struct passdb_table *t;
	struct table *tab;
	struct errbuf e;

	errbuf_clear(&e);
	if ((tab = table_open(spec, TABLE_F_FOLD, &e)) == NULL) {
		errbuf_set(err, "smtpd_sasl_passdb: %s", errbuf_str(&e));
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->table = tab;
	t->binds = table_ldap_is_auth_bind(tab);
	return t;
}

void
passdb_table_free(struct passdb_table **tp)
{
	if (*tp == NULL)
		return;
	table_close(&(*tp)->table);
	free(*tp);
	*tp = NULL;
}

enum passdb_status
passdb_table_lookup(struct passdb_table *t, const char *user, char **pass_r,
		    struct errbuf *err)
{
	struct buf value;
	struct errbuf e;
	enum passdb_status r;

	if (t->binds) {
		/* SCRAM, CRAM and the like need the stored secret. */
		errbuf_set(err, "%s: auth_bind = yes keeps no password to "
			   "compare with", table_name(t->table));
		return PASSDB_TEMPFAIL;
	}
	buf_init(&value, 0);	/* the driver bounds its results */
	errbuf_clear(&e);
	switch (table_lookup(t->table, user, &value, &e)) {
	case TABLE_FOUND:
		if (value.len == 0 || strlen(buf_cstr(&value)) != value.len) {
			/* No usable password stored: the operator's to fix. */
			errbuf_set(err, "%s: empty or malformed password for "
				   "\"%s\"", table_name(t->table), user);
			r = PASSDB_TEMPFAIL;
		} else {
			*pass_r = xstrdup(buf_cstr(&value));
			r = PASSDB_FOUND;
		}
		break;
	case TABLE_NOTFOUND:
		r = PASSDB_NOTFOUND;
		break;
	default:
		errbuf_set(err, "%s lookup error for \"%s\": %s",
			   table_name(t->table), user, errbuf_str(&e));
		r = PASSDB_TEMPFAIL;
		break;
	}
	if (value.data != NULL)
		sodium_memzero(value.data, value.len);
	buf_free(&value);
	return r;
}

bool
passdb_table_binds(const struct passdb_table *t)
{
	return t->binds;
}

int
passdb_table_bind_verify(struct passdb_table *t, const char *user,
			 const char *pw, size_t pwlen, struct errbuf *err)
{
	struct errbuf e;

	errbuf_clear(&e);
	switch (table_ldap_auth_bind(t->table, user, pw, pwlen, &e)) {
	case TABLE_FOUND:
		return 1;
	case TABLE_NOTFOUND:
		errbuf_set(err, "%s", errbuf_str(&e));
		return 0;
	default:
		errbuf_set(err, "%s auth_bind error for \"%s\": %s",
			   table_name(t->table), user, errbuf_str(&e));
		return -1;
	}
}
