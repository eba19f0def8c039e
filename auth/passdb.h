/*
 * passdb.h - where SASL finds a user's stored password:
 * smtpd_sasl_passdb = passwd-file:/path (Dovecot's passwd-file format,
 * "user@domain:{SCHEME}hash:uid:gid:gecos:home:shell:extra"), or
 * ldap:/path.cf / mysql:/path.cf, a lookup table whose value for the
 * login name is the stored "{SCHEME}hash" (LDAP userPassword, SQL query).
 * User names are case-insensitive. The file is read at open (as root,
 * before the privilege drop) and read again when it changes.
 * Lookups may block (file I/O): call them on a worker. Thread-safe.
 */
#ifndef FACTEUR_PASSDB_H
#define FACTEUR_PASSDB_H
#include "core/lib/errbuf.h"

enum passdb_status {
	PASSDB_FOUND = 1, PASSDB_NOTFOUND = 0, PASSDB_TEMPFAIL = -1,
};

struct passdb;

/* NULL + err for an unknown type, a missing file or a malformed line. */
struct passdb *passdb_open(const char *spec, struct errbuf *err);
void passdb_free(struct passdb **pp);
/* FOUND: *pass_r is the stored value (malloc'ed; the caller wipes and
 * frees it). TEMPFAIL + err when the source cannot be read. */
enum passdb_status passdb_lookup(struct passdb *p, const char *user,
				 char **pass_r, struct errbuf *err);

/* passdb_file.c */
struct passdb_file;
struct passdb_file *passdb_file_open(const char *path, struct errbuf *err);
void passdb_file_free(struct passdb_file **fp);
enum passdb_status passdb_file_lookup(struct passdb_file *f, const char *user,
				      char **pass_r, struct errbuf *err);

/* passdb_table.c: ldap:/path.cf, mysql:/path.cf (value = stored hash) */
struct passdb_table;
struct passdb_table *passdb_table_open(const char *spec, struct errbuf *err);
void passdb_table_free(struct passdb_table **tp);
enum passdb_status passdb_table_lookup(struct passdb_table *t, const char *user,
				       char **pass_r, struct errbuf *err);

#endif
