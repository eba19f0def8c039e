/*
 * passdb_file.c - Dovecot passwd-file: one "user:password[:uid:gid:gecos:
 * home:shell:extra]" per line, '#' comments. Keys are lower-cased; the first
 * line for a user wins. The file is read again when its inode, size or
 * mtime change; an unreadable file then makes lookups fail temporarily.
 * Must not: keep passwords longer than the table (wiped on reload/free).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <sodium.h>

#include "auth/passdb.h"
#include "auth/pwscheme.h"
#include "core/lib/xmalloc.h"

struct pf_entry {
	char  *user, *pass;
	size_t line;
};

struct passdb_file {
	char            *path;
	pthread_mutex_t  lock;
	struct pf_entry *v;
	size_t           n;
	struct stat      st;
	int              loaded;
};

static void
entry_wipe(struct pf_entry *e)
{
	sodium_memzero(e->pass, strlen(e->pass));
	free(e->pass);
	free(e->user);
}

static void
entries_free(struct pf_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		entry_wipe(&v[i]);
	free(v);
}

static int
cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct pf_entry *)a)->user,
		      ((const struct pf_entry *)b)->user);
}

/* By user, then by line: the first line for a user sorts first. */
static int
cmp_entry_line(const void *a, const void *b)
{
	const struct pf_entry *x = a, *y = b;
	int c = strcmp(x->user, y->user);

	return c != 0 ? c : x->line < y->line ? -1 : x->line > y->line;
}

/* Reads the file into a new table. strict: a malformed line is an error. */
static int
load(struct passdb_file *f, int strict, struct errbuf *err)
{
	FILE *fp = fopen(f->path, "r");
	struct pf_entry *v = NULL;
	size_t n = 0, cap = 0, lineno = 0, w;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	struct stat st;

	if (fp == NULL || fstat(fileno(fp), &st) < 0) {
		errbuf_set(err, "passwd-file %s: %s", f->path, strerror(errno));
		if (fp)
			fclose(fp);
		return -1;
	}
	while ((len = getline(&line, &lcap, fp)) >= 0) {
		char *p = line, *colon, *end;

		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		colon = strchr(p, ':');
		if (colon == NULL || colon == p) {
			if (strict) {
				errbuf_set(err, "passwd-file %s, line %zu: "
					   "expected user:password[:...]",
					   f->path, lineno);
				entries_free(v, n);
				sodium_memzero(line, lcap);
				free(line);
				fclose(fp);
				return -1;
			}
			continue;
		}
		*colon = '\0';
		end = strchr(colon + 1, ':');
		if (end != NULL)
			*end = '\0';
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = xrealloc(v, cap * sizeof(*v));
		}
		v[n].user = xstrdup(p);
		for (char *u = v[n].user; *u; u++)
			*u = (char)tolower((unsigned char)*u);
		v[n].pass = xstrdup(colon + 1);
		v[n].line = lineno;
		n++;
	}
	if (line != NULL)
		sodium_memzero(line, lcap);
	free(line);
	fclose(fp);
	qsort(v, n, sizeof(*v), cmp_entry_line);
	for (size_t i = w = 0; i < n; i++) {
		if (w > 0 && strcmp(v[w - 1].user, v[i].user) == 0) {
			entry_wipe(&v[i]);
			continue;
		}
		v[w++] = v[i];
	}
	entries_free(f->v, f->n);
	f->v = v;
	f->n = w;
	f->st = st;
	f->loaded = 1;
	return 0;
}

struct passdb_file *
passdb_file_open(const char *path, struct errbuf *err)
{
	struct passdb_file *f = xcalloc(1, sizeof(*f));

	f->path = xstrdup(path);
	pthread_mutex_init(&f->lock, NULL);
	if (load(f, 1, err) < 0) {
		passdb_file_free(&f);
		return NULL;
	}
	return f;
}

void
passdb_file_free(struct passdb_file **fp)
{
	struct passdb_file *f = *fp;

	if (f == NULL)
		return;
	entries_free(f->v, f->n);
	pthread_mutex_destroy(&f->lock);
	free(f->path);
	free(f);
	*fp = NULL;
}

enum passdb_status
passdb_file_lookup(struct passdb_file *f, const char *user, char **pass_r,
		   struct errbuf *err)
{
	struct pf_entry key, *e;
	struct stat st;
	enum passdb_status r = PASSDB_NOTFOUND;
	char *lc = xstrdup(user);

	for (char *u = lc; *u; u++)
		*u = (char)tolower((unsigned char)*u);
	pthread_mutex_lock(&f->lock);
	if (stat(f->path, &st) < 0) {
		errbuf_set(err, "passwd-file %s: %s", f->path, strerror(errno));
		r = PASSDB_TEMPFAIL;
		goto out;
	}
	if (st.st_ino != f->st.st_ino || st.st_size != f->st.st_size ||
	    st.st_mtim.tv_sec != f->st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != f->st.st_mtim.tv_nsec) {
		if (load(f, 0, err) < 0) {
			r = PASSDB_TEMPFAIL;
			goto out;
		}
	}
	key.user = lc;
	e = bsearch(&key, f->v, f->n, sizeof(*f->v), cmp_entry);
	if (e != NULL) {
		*pass_r = xstrdup(e->pass);
		r = PASSDB_FOUND;
	}
out:
	pthread_mutex_unlock(&f->lock);
	free(lc);
	return r;
}

/* The first entry of the most common scheme: what a typical user costs. */
char *
passdb_file_sample(struct passdb_file *f)
{
	struct {
		char         name[32];
		size_t       n;
		const char  *first;
		size_t       line;
	} seen[16];
	size_t nseen = 0, best = 0;
	char *s = NULL;

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n; i++) {
		char scheme[32];
		size_t k;

		(void)pwscheme_split(f->v[i].pass, scheme, sizeof(scheme));
		for (k = 0; k < nseen; k++)
			if (strcasecmp(seen[k].name, scheme) == 0)
				break;
		if (k == nseen) {
			if (nseen == sizeof(seen) / sizeof(seen[0]))
				continue;
			snprintf(seen[k].name, sizeof(seen[k].name), "%s", scheme);
			seen[k].n = 0;
			seen[k].first = NULL;
			nseen++;
		}
		seen[k].n++;
		if (seen[k].first == NULL || f->v[i].line < seen[k].line) {
			seen[k].first = f->v[i].pass;
			seen[k].line = f->v[i].line;
		}
	}
	for (size_t k = 1; k < nseen; k++)
		if (seen[k].n > seen[best].n ||
		    (seen[k].n == seen[best].n && seen[k].line < seen[best].line))
			best = k;
	if (nseen > 0)
		s = xstrdup(seen[best].first);
	pthread_mutex_unlock(&f->lock);
	return s;
}

size_t
passdb_file_count_without(struct passdb_file *f, const char *const *schemes,
			  size_t nschemes, size_t *total_r, const char **path_r)
{
	size_t n = 0;

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n; i++) {
		char scheme[32];
		size_t k;

		(void)pwscheme_split(f->v[i].pass, scheme, sizeof(scheme));
		for (k = 0; k < nschemes; k++)
			if (strcasecmp(scheme, schemes[k]) == 0)
				break;
		if (k == nschemes)
			n++;
	}
	*total_r = f->n;
	pthread_mutex_unlock(&f->lock);
	*path_r = f->path;
	return n;
}
