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
#include <stdbool.h>
#include <stddef.h>

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
/*
 * ldap: with auth_bind = yes: the LDAP server checks the password by a
 * bind as the user; passdb_lookup is then a TEMPFAIL. passdb_binds tells;
 * passdb_bind_verify returns 1 (right), 0 + err (wrong password or
 * unknown user), -1 + err (cannot tell now: 454). Blocking: on a worker.
 */
bool passdb_binds(const struct passdb *p);
int  passdb_bind_verify(struct passdb *p, const char *user, const char *pw,
			size_t pwlen, struct errbuf *err);

/*
 * Verifies pw against a hash of a random password that costs what this
 * passdb's stored passwords cost (pwscheme_dummy of a sample entry: the
 * passwd-file's most common scheme, or the first a table returned; argon2id
 * before any), and forgets the result: unknown users take the time a wrong
 * password takes. Blocking, like a real verification.
 */
void passdb_dummy_verify(struct passdb *p, const char *pw, size_t pwlen);

/*
 * Appends to out (nothing when all is well) a warning for each mechanism
 * in mechs (SASL_MECH_BIT()s) that some users of a passwd-file cannot use
 * because of how their password is stored: SCRAM-SHA-256 needs
 * {SCRAM-SHA-256} or {PLAIN}, CRAM-MD5 needs {PLAIN}. Other passdbs
 * cannot be listed: nothing.
 */
struct buf;
void passdb_mechs_warning(struct passdb *p, unsigned mechs, struct buf *out);

/* passdb_file.c */
struct passdb_file;
struct passdb_file *passdb_file_open(const char *path, struct errbuf *err);
void passdb_file_free(struct passdb_file **fp);
enum passdb_status passdb_file_lookup(struct passdb_file *f, const char *user,
				      char **pass_r, struct errbuf *err);
/* A copy of the stored value of the first user whose scheme is the
 * file's most common one (malloc'ed), or NULL for an empty file. */
char *passdb_file_sample(struct passdb_file *f);
/* Users whose scheme is none of schemes; *total_r all users, *path_r
 * the file's name (valid while f is). */
size_t passdb_file_count_without(struct passdb_file *f,
				 const char *const *schemes, size_t nschemes,
				 size_t *total_r, const char **path_r);

/* passdb_table.c: ldap:/path.cf, mysql:/path.cf (value = stored hash) */
struct passdb_table;
struct passdb_table *passdb_table_open(const char *spec, struct errbuf *err);
void passdb_table_free(struct passdb_table **tp);
enum passdb_status passdb_table_lookup(struct passdb_table *t, const char *user,
				       char **pass_r, struct errbuf *err);
bool passdb_table_binds(const struct passdb_table *t);
int  passdb_table_bind_verify(struct passdb_table *t, const char *user,
			      const char *pw, size_t pwlen, struct errbuf *err);

#endif
