/*
 * sieve_cache.c - compiled Sieve scripts by path, recompiled when the
 * file's mtime or size changes. One mutex guards the table; scripts are
 * reference-counted so a delivery keeps using its copy while another
 * thread replaces the entry. Compile errors are cached too (same key).
 * Must not: hold the mutex while reading or compiling a file.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/lib/xmalloc.h"
#include "delivery/sieve/sieve_int.h"

#define CACHE_MAX 256

struct entry {
	char   *path;
	struct timespec mtime;
	off_t   size;
	ino_t   ino;
	struct sieve_script *s;	/* NULL: compile error in err */
	char   *err;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct entry cache[CACHE_MAX];
static size_t ncache, next_evict;

static void
unref_locked(struct sieve_script **sp)
{
	if (*sp && --(*sp)->refs == 0)
		sieve_script_free(sp);
	*sp = NULL;
}

void
sieve_script_unref(struct sieve_script **sp)
{
	pthread_mutex_lock(&mu);
	unref_locked(sp);
	pthread_mutex_unlock(&mu);
}

void
sieve_cache_clear(void)
{
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < ncache; i++) {
		xfree(&cache[i].path);
		xfree(&cache[i].err);
		unref_locked(&cache[i].s);
	}
	ncache = 0;
	pthread_mutex_unlock(&mu);
}

static bool
same(const struct entry *e, const struct stat *st)
{
	return e->size == st->st_size && e->ino == st->st_ino
	       && e->mtime.tv_sec == st->st_mtim.tv_sec
	       && e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

int
sieve_cache_get(const char *path, struct sieve_script **sp, struct errbuf *err)
{
	struct stat st;
	struct sieve_script *s = NULL;
	struct buf text;
	char *cerr = NULL;
	int fd;

	*sp = NULL;
	errbuf_clear(err);
	if (stat(path, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		errbuf_set(err, "%s: %s", path, strerror(errno));
		return -1;
	}
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < ncache; i++)
		if (strcmp(cache[i].path, path) == 0 && same(&cache[i], &st)) {
			if (cache[i].s) {
				cache[i].s->refs++;
				*sp = cache[i].s;
				pthread_mutex_unlock(&mu);
				return 1;
			}
			errbuf_set(err, "%s", cache[i].err);
			pthread_mutex_unlock(&mu);
			return -1;
		}
	pthread_mutex_unlock(&mu);

	if (!S_ISREG(st.st_mode)) {
		errbuf_set(err, "%s: not a regular file", path);
		return -1;
	}
	if (st.st_size > SIEVE_MAX_SCRIPT_SIZE) {
		errbuf_set(err, "%s: script too large (%lld bytes, limit %d)",
			   path, (long long)st.st_size, SIEVE_MAX_SCRIPT_SIZE);
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		errbuf_set(err, "%s: %s", path, strerror(errno));
		return -1;
	}
	buf_init(&text, SIEVE_MAX_SCRIPT_SIZE);
	for (;;) {
		char tmp[8192];
		ssize_t n = read(fd, tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			errbuf_set(err, "%s: read: %s", path, strerror(errno));
			close(fd);
			buf_free(&text);
			return -1;
		}
		if (n == 0)
			break;
		if (buf_append(&text, tmp, (size_t)n) < 0) {
			errbuf_set(err, "%s: script too large", path);
			close(fd);
			buf_free(&text);
			return -1;
		}
	}
	close(fd);
	{
		struct errbuf e2;
		const char *base = strrchr(path, '/');

		s = sieve_compile(text.data ? text.data : "", text.len, path, &e2);
		if (s == NULL) {
			errbuf_set(err, "%s: %s", base ? base + 1 : path,
				   errbuf_str(&e2));
			cerr = xstrdup(errbuf_str(err));
		}
	}
	buf_free(&text);

	pthread_mutex_lock(&mu);
	{
		size_t i;

		for (i = 0; i < ncache; i++)
			if (strcmp(cache[i].path, path) == 0)
				break;
		if (i == ncache) {
			if (ncache < CACHE_MAX)
				ncache++;
			else {
				i = next_evict++ % CACHE_MAX;
				free(cache[i].path);
				cache[i].path = NULL;
			}
		}
		if (cache[i].path == NULL)
			cache[i].path = xstrdup(path);
		free(cache[i].err);
		unref_locked(&cache[i].s);
		cache[i].mtime = st.st_mtim;
		cache[i].size = st.st_size;
		cache[i].ino = st.st_ino;
		cache[i].err = cerr;
		cache[i].s = s;
		if (s) {
			s->refs++;	/* the cache's reference + the caller's */
			*sp = s;
		}
	}
	pthread_mutex_unlock(&mu);
	return s ? 1 : -1;
}
