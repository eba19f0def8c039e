/*
 * table_file.c - texthash: and hash: tables (Postfix postmap source format:
 * "key whitespace value", read as text, no .db step), plus what every
 * file-based driver shares: logical-line reading and the watched source
 * that reloads a file when it changes.
 * Must not: log, block on anything but the local file, or serve a half
 * parsed file (a new version replaces the old one only once fully parsed).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/table_driver.h"
#include "core/lib/hash.h"
#include "core/lib/xmalloc.h"

#define TABLE_LINE_MAX		((size_t)1 << 20)
#define TABLE_WARNINGS_MAX	100

static unsigned table_source_interval_ms = 1000;

/* ---- logical lines ---------------------------------------------------- */

void
table_lines_init(struct table_lines *r, const char *path, const char *data,
		 size_t len)
{
	r->p = data;
	r->end = data + len;
	r->path = path;
	r->lineno = 0;
	buf_init(&r->line, TABLE_LINE_MAX);
}

void
table_lines_free(struct table_lines *r)
{
	buf_free(&r->line);
}

static bool
is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

int
table_lines_next(struct table_lines *r, const char **line_r, int *lineno_r,
		 struct errbuf *err)
{
	bool started = false;
	int first = 0;

	buf_reset(&r->line);
	while (r->p < r->end) {
		const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
		const char *eol = nl ? nl : r->end;
		const char *s = r->p, *q = s;

		while (q < eol && is_ws(*q))
			q++;
		if (q == eol || *q == '#') {
			/* Blank and comment lines neither start nor end a
			 * logical line, as in Postfix. */
			r->p = nl ? nl + 1 : r->end;
			r->lineno++;
			continue;
		}
		if (q == s && started)
			break;
		r->p = nl ? nl + 1 : r->end;
		r->lineno++;
		while (eol > q && is_ws(eol[-1]))
			eol--;
		if (!started) {
			/* A first line starting with white space: Postfix
			 * takes it as a line of its own; so do we. */
			started = true;
			first = r->lineno;
			s = q;
		}
		if (buf_append(&r->line, s, (size_t)(eol - s)) < 0) {
			errbuf_set(err, "%s, line %d: logical line longer than %zu bytes",
				   r->path, first, TABLE_LINE_MAX);
			return -1;
		}
	}
	if (!started)
		return 0;
	*line_r = buf_cstr(&r->line);
	*lineno_r = first;
	return 1;
}

/* ---- whole-file reading ------------------------------------------------ */

int
table_file_read(const char *path, struct buf *data_r, struct stat *st_r,
		struct errbuf *err)
{
	char chunk[65536];
	ssize_t n;
	int fd;

	buf_reset(data_r);
	fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		errbuf_set(err, "open %s: %s", path, strerror(errno));
		return TABLE_TEMPFAIL;
	}
	if (fstat(fd, st_r) < 0) {
		errbuf_set(err, "stat %s: %s", path, strerror(errno));
		close(fd);
		return TABLE_TEMPFAIL;
	}
	if (!S_ISREG(st_r->st_mode)) {
		errbuf_set(err, "%s: not a regular file", path);
		close(fd);
		return TABLE_CONFIG;
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			errbuf_set(err, "read %s: %s", path, strerror(errno));
			close(fd);
			return TABLE_TEMPFAIL;
		}
		if (n == 0)
			break;
		if (data_r->len + (size_t)n > TABLE_FILE_MAX ||
		    buf_append(data_r, chunk, (size_t)n) < 0) {
			errbuf_set(err, "%s: file larger than %zu bytes", path,
				   TABLE_FILE_MAX);
			close(fd);
			return TABLE_CONFIG;
		}
	}
	close(fd);
	if (data_r->len && memchr(data_r->data, '\0', data_r->len) != NULL) {
		size_t off = (size_t)((char *)memchr(data_r->data, '\0', data_r->len) - data_r->data);
		int line = 1;

		for (size_t i = 0; i < off; i++)
			line += data_r->data[i] == '\n';
		errbuf_set(err, "%s, line %d: NUL character in a text file", path, line);
		return TABLE_CONFIG;
	}
	return 0;
}

/* ---- watched sources --------------------------------------------------- */

void
table_source_set_interval(unsigned ms)
{
	table_source_interval_ms = ms;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	    a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	    a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	    a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Reads and parses the file, then swaps the result in. Caller holds
 * check_lock (one loader at a time); readers are blocked only for the
 * swap itself. */
static void
table_source_load(struct table_source *s)
{
	struct errbuf e;
	struct buf data;
	struct stat st;
	struct strlist warn;
	enum table_status status = TABLE_FOUND;
	void *parsed = NULL, *old;
	int r;

	errbuf_clear(&e);
	buf_init(&data, 0);
	strlist_init(&warn);
	r = table_file_read(s->path, &data, &st, &e);
	if (r == TABLE_TEMPFAIL) {
		status = TABLE_TEMPFAIL;
		s->have_st = false;
	} else {
		s->st = st;
		s->have_st = true;
		if (r == TABLE_CONFIG)
			status = TABLE_CONFIG;
		else if (s->parse(s->path, buf_cstr(&data), data.len, s->arg,
				  &parsed, &warn, &e) < 0)
			status = TABLE_CONFIG;
	}
	buf_free(&data);

	pthread_rwlock_wrlock(&s->lock);
	old = s->data;
	s->data = status == TABLE_FOUND ? parsed : NULL;
	s->status = status;
	snprintf(s->reason, sizeof(s->reason), "%s", errbuf_str(&e));
	strlist_free(&s->warnings);
	s->warnings = warn;
	pthread_rwlock_unlock(&s->lock);

	if (old)
		s->free_data(old);
	if (status != TABLE_FOUND && parsed)
		s->free_data(parsed);
}

int
table_source_open(struct table_source *s, const char *path,
		  int (*parse)(const char *, const char *, size_t, void *,
			       void **, struct strlist *, struct errbuf *),
		  void (*free_data)(void *), void *arg, struct errbuf *err)
{
	memset(s, 0, sizeof(*s));
	pthread_rwlock_init(&s->lock, NULL);
	pthread_mutex_init(&s->check_lock, NULL);
	s->path = xstrdup(path);
	s->parse = parse;
	s->free_data = free_data;
	s->arg = arg;
	strlist_init(&s->warnings);
	pthread_mutex_lock(&s->check_lock);
	s->last_check_ms = now_ms();
	table_source_load(s);
	pthread_mutex_unlock(&s->check_lock);
	if (s->status == TABLE_CONFIG) {
		errbuf_set(err, "%s", s->reason);
		table_source_close(s);
		return -1;
	}
	return 0;
}

static void
table_source_check(struct table_source *s)
{
	struct stat st;
	int64_t now;

	if (s->path == NULL)	/* inline text: nothing to watch */
		return;
	/* A thread that finds another one checking goes on with the data
	 * it has: lookups never wait for a reload. */
	if (pthread_mutex_trylock(&s->check_lock) != 0)
		return;
	now = now_ms();
	if (now - s->last_check_ms >= (int64_t)table_source_interval_ms) {
		s->last_check_ms = now;
		if (stat(s->path, &st) < 0 || !s->have_st || !same_file(&st, &s->st))
			table_source_load(s);
	}
	pthread_mutex_unlock(&s->check_lock);
}

enum table_status
table_source_acquire(struct table_source *s, void **data_r, struct errbuf *err)
{
	enum table_status st;

	table_source_check(s);
	pthread_rwlock_rdlock(&s->lock);
	st = s->status;
	if (st == TABLE_FOUND) {
		*data_r = s->data;
		return TABLE_FOUND;
	}
	errbuf_set(err, "%s", s->reason);
	pthread_rwlock_unlock(&s->lock);
	return st;
}

int
table_source_open_text(struct table_source *s, const char *label,
		       const char *text, size_t len,
		       int (*parse)(const char *, const char *, size_t, void *,
				    void **, struct strlist *, struct errbuf *),
		       void (*free_data)(void *), void *arg, struct errbuf *err)
{
	void *data = NULL;

	memset(s, 0, sizeof(*s));
	pthread_rwlock_init(&s->lock, NULL);
	pthread_mutex_init(&s->check_lock, NULL);
	s->parse = parse;
	s->free_data = free_data;
	s->arg = arg;
	strlist_init(&s->warnings);
	if (parse(label, text, len, arg, &data, &s->warnings, err) < 0) {
		table_source_close(s);
		return -1;
	}
	s->data = data;
	s->status = TABLE_FOUND;
	return 0;
}

void
table_source_release(struct table_source *s)
{
	pthread_rwlock_unlock(&s->lock);
}

void
table_source_warnings(struct table_source *s, struct strlist *out)
{
	pthread_rwlock_rdlock(&s->lock);
	for (size_t i = 0; i < s->warnings.n; i++)
		strlist_add(out, s->warnings.v[i]);
	pthread_rwlock_unlock(&s->lock);
}

void
table_source_close(struct table_source *s)
{
	if (s->data)
		s->free_data(s->data);
	s->data = NULL;
	strlist_free(&s->warnings);
	free(s->path);
	s->path = NULL;
	pthread_rwlock_destroy(&s->lock);
	pthread_mutex_destroy(&s->check_lock);
}

/* ---- texthash: / hash: ------------------------------------------------- */

static void
thash_free(void *data)
{
	struct hash *h = data;

	hash_free(&h);
}

static int
thash_parse(const char *path, const char *data, size_t len, void *arg,
	    void **data_r, struct strlist *warnings, struct errbuf *err)
{
	bool fold = (uintptr_t)arg != 0;
	struct table_lines lr;
	struct hash *h = hash_new();
	const char *line;
	int lineno, r;

	table_lines_init(&lr, path, data, len);
	while ((r = table_lines_next(&lr, &line, &lineno, err)) > 0) {
		char *key = (char *)line;	/* our own line buffer */
		char *p = key, *value;

		while (*p && !is_ws(*p))
			p++;
		value = p;
		while (*value && is_ws(*value))
			value++;
		if (*value == '\0') {
			errbuf_set(err, "%s, line %d: expected format: key whitespace value",
				   path, lineno);
			r = -1;
			break;
		}
		*p = '\0';
		if (fold)
			for (p = key; *p; p++)
				*p = (char)tolower((unsigned char)*p);
		if (!hash_add(h, key, value) && warnings->n < TABLE_WARNINGS_MAX) {
			char *w = xasprintf("%s, line %d: duplicate entry: \"%.200s\"",
					    path, lineno, key);
			strlist_add(warnings, w);
			free(w);
		}
	}
	table_lines_free(&lr);
	if (r < 0) {
		hash_free(&h);
		return -1;
	}
	*data_r = h;
	return 0;
}

static int
thash_open(struct table *t, const char *name, struct errbuf *err)
{
	struct table_source *s;

	if (*name == '\0') {
		errbuf_set(err, "%s: missing file name", t->spec);
		return TABLE_OPEN_CONFIG;
	}
	s = xmalloc(sizeof(*s));
	if (table_source_open(s, name, thash_parse, thash_free,
			      (void *)(uintptr_t)((t->flags & TABLE_F_FOLD) != 0),
			      err) < 0) {
		free(s);
		return TABLE_OPEN_CONFIG;
	}
	t->priv = s;
	return TABLE_OPEN_OK;
}

static enum table_status
thash_lookup(struct table *t, const char *key, struct buf *value_r,
	     struct errbuf *err)
{
	struct table_source *s = t->priv;
	enum table_status st;
	const char *v;
	void *data;

	if ((st = table_source_acquire(s, &data, err)) != TABLE_FOUND)
		return st;
	v = hash_get(data, key);
	st = v ? table_set_value(value_r, v, strlen(v), key, err) : TABLE_NOTFOUND;
	table_source_release(s);
	return st;
}

static int
thash_dump(struct table *t, table_dump_cb cb, void *arg, struct errbuf *err)
{
	struct table_source *s = t->priv;
	void *data;

	if (table_source_acquire(s, &data, err) != TABLE_FOUND)
		return -1;
	hash_walk(data, cb, arg);
	table_source_release(s);
	return 0;
}

static void
thash_warnings(struct table *t, struct strlist *out)
{
	table_source_warnings(t->priv, out);
}

static void
thash_close(struct table *t)
{
	table_source_close(t->priv);
	xfree(&t->priv);
}

const struct table_driver table_texthash_driver = {
	.type = "texthash", .flags = 0,
	.open = thash_open, .lookup = thash_lookup, .dump = thash_dump,
	.warnings = thash_warnings, .close = thash_close,
};

/* hash: reads the same text source: facteur has no postmap step. */
const struct table_driver table_hash_driver = {
	.type = "hash", .flags = 0,
	.open = thash_open, .lookup = thash_lookup, .dump = thash_dump,
	.warnings = thash_warnings, .close = thash_close,
};
