/*
 * table_ldap.h - what an ldap: table offers besides lookups: a user's
 * password checked by the LDAP server (Dovecot's auth_bind = yes), for
 * smtpd_sasl_passdb = ldap:/path/auth.cf. Keys of the .cf file:
 *   auth_bind = yes            bind as the user to check the password
 *   auth_bind_userdn = uid=%u,ou=people,dc=example,dc=test
 *                              the user's DN (%s %u %d %1 ... expanded,
 *                              RFC 4514-escaped); without it, query_filter
 *                              under search_base (bound with bind_dn /
 *                              bind_pw) must find exactly one entry, whose
 *                              DN is used
 * The user binds run on connections of their own (never the service-bound
 * lookup connections), with the table's servers, timeouts and TLS keys.
 * Blocking: call from a worker thread.
 */
#ifndef FACTEUR_TABLE_LDAP_H
#define FACTEUR_TABLE_LDAP_H
#include <stdbool.h>
#include <stddef.h>

#include "backends/table.h"

/* True for an ldap: table whose .cf says auth_bind = yes. */
bool table_ldap_is_auth_bind(const struct table *t);

/*
 * Checks user's password by a simple bind. TABLE_FOUND: right password;
 * TABLE_NOTFOUND + err: unknown user, wrong password, empty password;
 * TABLE_TEMPFAIL + err: no server, timeout, ambiguous directory data;
 * TABLE_CONFIG + err: not an auth_bind table, bad template.
 */
enum table_status table_ldap_auth_bind(struct table *t, const char *user,
				       const char *pw, size_t pwlen,
				       struct errbuf *err);

#endif
