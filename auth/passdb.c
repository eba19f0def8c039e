/*
 * passdb.c - opens the passdb named by smtpd_sasl_passdb (TYPE:NAME) and
 * dispatches lookups to its driver.
 * Must not: verify passwords (pwscheme.c does).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth/passdb.h"
#include "auth/pwscheme.h"
#include "auth/sasl.h"
#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"

struct passdb {
	struct passdb_file  *file;
	struct passdb_table *table;
	pthread_mutex_t      dummy_lock;	/* sample, dummy */
	char                *sample;	/* a stored value seen (tables) */
	char                *dummy;	/* pwscheme_dummy(sample) */
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
		pthread_mutex_init(&p->dummy_lock, NULL);
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
	pthread_mutex_init(&p->dummy_lock, NULL);
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
	pthread_mutex_destroy(&(*pp)->dummy_lock);
	free((*pp)->sample);
	free((*pp)->dummy);
	free(*pp);
	*pp = NULL;
}

enum passdb_status
passdb_lookup(struct passdb *p, const char *user, char **pass_r,
	      struct errbuf *err)
{
	enum passdb_status r;

	if (p->table != NULL) {
		r = passdb_table_lookup(p->table, user, pass_r, err);
		if (r == PASSDB_FOUND) {
			pthread_mutex_lock(&p->dummy_lock);
			if (p->sample == NULL)
				p->sample = xstrdup(*pass_r);
			pthread_mutex_unlock(&p->dummy_lock);
		}
		return r;
	}
	return passdb_file_lookup(p->file, user, pass_r, err);
}

void
passdb_dummy_verify(struct passdb *p, const char *pw, size_t pwlen)
{
	char *sample = NULL, *dummy = NULL;
	struct errbuf e;

	pthread_mutex_lock(&p->dummy_lock);
	if (p->dummy != NULL)
		dummy = xstrdup(p->dummy);
	else if (p->sample != NULL)
		sample = xstrdup(p->sample);
	pthread_mutex_unlock(&p->dummy_lock);
	if (dummy == NULL) {
		if (sample == NULL && p->file != NULL)
			sample = passdb_file_sample(p->file);
		if ((dummy = pwscheme_dummy(sample, &e)) == NULL)
			return;
		pthread_mutex_lock(&p->dummy_lock);
		if (p->dummy == NULL && (sample != NULL || p->table == NULL))
			p->dummy = xstrdup(dummy);
		pthread_mutex_unlock(&p->dummy_lock);
	}
	(void)pwscheme_verify(dummy, pw, pwlen, &e);
	free(dummy);
	if (sample != NULL) {
		sodium_memzero(sample, strlen(sample));
		free(sample);
	}
}

bool
passdb_binds(const struct passdb *p)
{
	return p->table != NULL && passdb_table_binds(p->table);
}

int
passdb_bind_verify(struct passdb *p, const char *user, const char *pw,
		   size_t pwlen, struct errbuf *err)
{
	if (!passdb_binds(p)) {
		errbuf_set(err, "this passdb does not check passwords by bind");
		return -1;
	}
	return passdb_table_bind_verify(p->table, user, pw, pwlen, err);
}

void
passdb_mechs_warning(struct passdb *p, unsigned mechs, struct buf *out)
{
	static const char *const scram[] = { "SCRAM-SHA-256", "PLAIN",
					     "CLEARTEXT" };
	static const char *const cram[] = { "PLAIN", "CLEARTEXT" };
	static const struct {
		enum sasl_mech      m;
		const char *const  *schemes;
		size_t              n;
		const char         *need;
	} checks[] = {
		{ SASL_MECH_SCRAM_SHA256, scram, 3, "{SCRAM-SHA-256} or {PLAIN}" },
		{ SASL_MECH_CRAM_MD5, cram, 2, "{PLAIN}" },
	};

	if (p->file == NULL)
		return;
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		size_t total, n;
		const char *path;

		if (!(mechs & SASL_MECH_BIT(checks[i].m)))
			continue;
		n = passdb_file_count_without(p->file, checks[i].schemes,
					      checks[i].n, &total, &path);
		if (n == 0)
			continue;
		buf_printf(out, "%s%s is offered but %zu of %zu users in "
			   "passwd-file %s have no %s password and cannot use "
			   "it (the same 535 as a wrong password)",
			   out->len ? "; " : "", sasl_mech_name(checks[i].m), n,
			   total, path, checks[i].need);
	}
}
