/*
 * config.c - main.cf in Postfix's syntax: logical lines, name = value,
 * lazy $name / ${name} / ${name?x} / ${name:x} / $$ expansion with loop and
 * size limits, unknown-parameter findings, and per-listener override copies.
 * master.cf is parsed in master_cf.c into the same struct config.
 * Must not: log (findings go to warnings_r, errors to errbuf), or interpret
 * a value beyond expanding it (params.c types and checks values).
 * Owns every string it hands out; they live until config_free.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/config_int.h"
#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"
#include "core/params.h"

/* ---- the parameter table: open addressing over owned entries ---- */

static uint32_t
name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

struct cfent *
cfg_lookup(const struct config *c, const char *name)
{
	size_t i;

	if (c->cap == 0)
		return NULL;
	for (i = name_hash(name) & (c->cap - 1); c->tab[i];
	     i = (i + 1) & (c->cap - 1))
		if (strcmp(c->tab[i]->name, name) == 0)
			return c->tab[i];
	return NULL;
}

static void
cfg_grow(struct config *c)
{
	struct cfent **old = c->tab;
	size_t oldcap = c->cap, i, j;

	c->cap = oldcap ? oldcap * 2 : 64;
	c->tab = xcalloc(c->cap, sizeof(*c->tab));
	for (i = 0; i < oldcap; i++) {
		if (old[i] == NULL)
			continue;
		for (j = name_hash(old[i]->name) & (c->cap - 1); c->tab[j];
		     j = (j + 1) & (c->cap - 1))
			;
		c->tab[j] = old[i];
	}
	free(old);
}

/* Returns the entry for name, creating an empty (unset) one if needed. */
struct cfent *
cfg_intern(struct config *c, const char *name)
{
	struct cfent *e = cfg_lookup(c, name);
	size_t i;

	if (e)
		return e;
	if ((c->n + 1) * 2 > c->cap)
		cfg_grow(c);
	e = xcalloc(1, sizeof(*e));
	e->name = xstrdup(name);
	for (i = name_hash(name) & (c->cap - 1); c->tab[i];
	     i = (i + 1) & (c->cap - 1))
		;
	c->tab[i] = e;
	c->n++;
	return e;
}

/* Sets name = raw (as written), remembering where; later settings win. */
void
cfg_set(struct config *c, const char *name, const char *raw,
	const char *file, int line)
{
	struct cfent *e = cfg_intern(c, name);

	free(e->raw);
	free(e->file);
	free(e->expanded);
	e->raw = xstrdup(raw);
	e->file = xstrdup(file ? file : "");
	e->line = line;
	e->expanded = NULL;
	if (!e->ordered) {
		e->ordered = true;
		if (c->norder == c->order_cap) {
			c->order_cap = c->order_cap ? c->order_cap * 2 : 32;
			c->order = xrealloc(c->order,
					    c->order_cap * sizeof(*c->order));
		}
		c->order[c->norder++] = e;
	}
}

struct config *
cfg_new(const char *dir)
{
	struct config *c = xcalloc(1, sizeof(*c));

	c->dir = xstrdup(dir ? dir : "");
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

static void
cfg_drop_cache(struct config *c)
{
	for (size_t i = 0; i < c->cap; i++)
		if (c->tab[i])
			xfree(&c->tab[i]->expanded);
}

void
config_free(struct config **cp)
{
	struct config *c = *cp;

	if (c == NULL)
		return;
	for (size_t i = 0; i < c->cap; i++) {
		struct cfent *e = c->tab[i];

		if (e == NULL)
			continue;
		free(e->name);
		free(e->raw);
		free(e->file);
		free(e->expanded);
		free(e);
	}
	free(c->tab);
	free(c->order);
	master_cf_clear(&c->master);
	master_cf_clear(&c->transports);
	strlist_free(&c->ignored_refs);
	free(c->dir);
	pthread_mutex_destroy(&c->lock);
	free(c);
	*cp = NULL;
}

/* ---- small text helpers shared with master_cf.c ---- */

bool
cfg_valid_name(const char *s, size_t n)
{
	if (n == 0)
		return false;
	/* '-' too, after the first character: per-service names carry the
	 * master.cf service's name (policyd-spf_time_limit) */
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' ||
		      (s[i] == '-' && i > 0)))
			return false;
	return true;
}

/* "FILE, line N" or just "FILE" when the line is unknown (0). */
void
cfg_where_str(char *out, size_t outsz, const char *file, int line)
{
	if (line > 0)
		snprintf(out, outsz, "%s, line %d", file, line);
	else
		snprintf(out, outsz, "%s", file);
}

/*
 * Postfix's logical lines: blank lines and lines whose first non-white
 * character is '#' are ignored (they do not end multi-line text); a line
 * that starts with white space continues the logical line. Continuations
 * are joined with one space. A trailing CR is dropped (files edited on
 * Windows). Returns 1 with a logical line in out, 0 at the end, -1 + err.
 */
int
cfg_next_logical(struct cfg_reader *r, struct buf *out, int *first_line_r,
		 struct strlist *warnings_r, struct errbuf *err)
{
	bool have = false;

	buf_reset(out);
	while (*r->p) {
		const char *ln = r->p, *end = strchr(ln, '\n'), *q;
		size_t len;

		if (end == NULL)
			end = ln + strlen(ln);
		/* Peek: does this line belong to the current logical line? */
		q = ln;
		while (q < end && (*q == ' ' || *q == '\t'))
			q++;
		len = (size_t)(end - q);
		if (len > 0 && q[len - 1] == '\r')
			len--;
		while (len > 0 && isspace((unsigned char)q[len - 1]))
			len--;
		if (len == 0 || *q == '#') {
			/* blank or comment: skipped, does not end the line */
			r->p = *end ? end + 1 : end;
			r->lineno++;
			continue;
		}
		if (q == ln && have)
			return 1;	/* next logical line starts here */
		r->p = *end ? end + 1 : end;
		r->lineno++;
		if (!have) {
			if (q != ln) {
				char w[CFG_WHERE_MAX];

				cfg_where_str(w, sizeof(w), r->fname, r->lineno);
				cfg_warn(warnings_r, "warning: %s: logical line "
					 "must not start with white space; read "
					 "as a new line", w);
			}
			*first_line_r = r->lineno;
			have = true;
		} else if (buf_putc(out, ' ') < 0) {
			goto toolong;
		}
		if (buf_append(out, q, len) < 0)
			goto toolong;
	}
	return have ? 1 : 0;
toolong:
	{
		char w[CFG_WHERE_MAX];

		cfg_where_str(w, sizeof(w), r->fname, *first_line_r);
		errbuf_set(err, "%s: logical line longer than %d bytes", w,
			   CONFIG_VALUE_MAX);
	}
	return -1;
}

void
cfg_warn(struct strlist *warnings_r, const char *fmt, ...)
{
	va_list ap;
	struct buf b;

	if (warnings_r == NULL)
		return;
	buf_init(&b, 0);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	strlist_add(warnings_r, buf_cstr(&b));
	buf_free(&b);
}

/* ---- main.cf ---- */

static int
parse_main_text(struct config *c, const char *text, const char *fname,
		struct strlist *warnings_r, struct errbuf *err)
{
	struct cfg_reader r = { text, fname, 0 };
	struct buf line;
	int first = 0, rc;

	if (strlen(text) > CONFIG_FILE_MAX) {
		errbuf_set(err, "%s: file larger than %d bytes", fname,
			   CONFIG_FILE_MAX);
		return -1;
	}
	buf_init(&line, CONFIG_VALUE_MAX);
	while ((rc = cfg_next_logical(&r, &line, &first, warnings_r, err)) > 0) {
		const char *s = buf_cstr(&line), *eq, *ne, *v;
		char w[CFG_WHERE_MAX];
		size_t nlen;
		char *name;

		cfg_where_str(w, sizeof(w), fname, first);
		for (ne = s; *ne && *ne != '=' && !isspace((unsigned char)*ne); ne++)
			;
		nlen = (size_t)(ne - s);
		for (eq = ne; *eq && isspace((unsigned char)*eq); eq++)
			;
		if (nlen == 0) {
			errbuf_set(err, "%s: missing parameter name before '='", w);
			goto fail;
		}
		if (*eq != '=') {
			errbuf_set(err, "%s: missing '=' after parameter name: "
				   "\"%.*s\"", w, (int)(nlen > 100 ? 100 : nlen), s);
			goto fail;
		}
		if (!cfg_valid_name(s, nlen)) {
			errbuf_set(err, "%s: bad parameter name: \"%.*s\" (expected "
				   "letters, digits and '_')", w,
				   (int)(nlen > 100 ? 100 : nlen), s);
			goto fail;
		}
		for (v = eq + 1; *v && isspace((unsigned char)*v); v++)
			;
		name = xstrndup(s, nlen);
		cfg_set(c, name, v, fname, first);
		free(name);
	}
	buf_free(&line);
	return rc;
fail:
	buf_free(&line);
	return -1;
}

/* Adds every $name, ${name...}, $(name...) referenced by s to names. */
static void
collect_refs(const char *s, struct strlist *names)
{
	for (const char *p = s; (p = strchr(p, '$')) != NULL;) {
		const char *n;

		p++;
		if (*p == '$') {
			p++;
			continue;
		}
		bool braced = *p == '{' || *p == '(';

		if (braced)
			p++;
		/* ${service-name_time_limit}: '-' only inside braces */
		for (n = p; isalnum((unsigned char)*p) || *p == '_' ||
		     (braced && *p == '-' && p > n); p++)
			;
		if (p > n)
			strlist_addn(names, n, (size_t)(p - n));
	}
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * A parameter that is not known is still fine when something uses it: a
 * $reference in any value or -o override (Postfix's "unused parameter"
 * rule), or a name listed in smtpd_restriction_classes.
 */
static void
collect_used(const struct config *c, struct strlist *used)
{
	const struct cfent *rc;

	for (size_t i = 0; i < c->norder; i++)
		collect_refs(c->order[i]->raw, used);
	for (size_t i = 0; i < c->master.n; i++) {
		const struct strlist *o = &c->master.v[i].overrides;

		for (size_t j = 0; j < o->n; j++)
			collect_refs(o->v[j], used);
	}
	for (size_t i = 0; i < c->ignored_refs.n; i++)
		collect_refs(c->ignored_refs.v[i], used);
	if ((rc = cfg_lookup(c, "smtpd_restriction_classes")) && rc->raw)
		(void)strlist_split(used, rc->raw);
	if (used->n)
		qsort(used->v, used->n, sizeof(*used->v), cmp_str);
}

bool
cfg_is_used(const struct strlist *used, const char *name)
{
	return used->n && bsearch(&name, used->v, used->n, sizeof(*used->v),
				  cmp_str) != NULL;
}

void
cfg_collect_used(const struct config *c, struct strlist *used)
{
	collect_used(c, used);
}

/* Findings about main.cf names, in file order. */
static void
main_findings(const struct config *c, struct strlist *warnings_r)
{
	struct strlist used;

	if (warnings_r == NULL)
		return;
	strlist_init(&used);
	collect_used(c, &used);
	for (size_t i = 0; i < c->norder; i++) {
		const struct cfent *e = c->order[i];
		const struct param_def *d = params_find(e->name);
		char w[CFG_WHERE_MAX];

		if (e->from_override)
			continue;
		cfg_where_str(w, sizeof(w), e->file, e->line);
		if (d == NULL) {
			if (!cfg_is_used(&used, e->name))
				cfg_warn(warnings_r, "warning: %s: unknown "
					 "parameter: %s", w, e->name);
		} else if (d->flags & PARAM_F_INTERNAL) {
			cfg_warn(warnings_r, "notice: %s: %s only tunes Postfix "
				 "internals; accepted and ignored by facteur",
				 w, e->name);
		} else if (d->flags & PARAM_F_LATER) {
			cfg_warn(warnings_r, "notice: %s: %s is not used by this "
				 "version of facteur; accepted and ignored",
				 w, e->name);
		}
	}
	strlist_free(&used);
}

struct config *
config_parse_main(const char *text, const char *fname,
		  struct strlist *warnings_r, struct errbuf *err)
{
	struct config *c = cfg_new("");

	if (parse_main_text(c, text, fname, warnings_r, err) < 0) {
		config_free(&c);
		return NULL;
	}
	main_findings(c, warnings_r);
	return c;
}

/*
 * Reads a whole configuration file, bounded by CONFIG_FILE_MAX. Returns
 * the NUL-terminated text, NULL + errno-based err; *missing_r is set when
 * the file does not exist (ENOENT).
 */
char *
cfg_read_file(const char *path, bool *missing_r, struct errbuf *err)
{
	struct buf b;
	char chunk[8192];
	ssize_t n;
	int fd;

	if (missing_r)
		*missing_r = false;
	if ((fd = open(path, O_RDONLY)) < 0) {
		if (errno == ENOENT && missing_r)
			*missing_r = true;
		errbuf_set(err, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	buf_init(&b, CONFIG_FILE_MAX);
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			errbuf_set(err, "%s: read error: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		if (memchr(chunk, '\0', (size_t)n)) {
			errbuf_set(err, "%s: contains a NUL byte (not a text "
				   "file?)", path);
			goto fail;
		}
		if (buf_append(&b, chunk, (size_t)n) < 0) {
			errbuf_set(err, "%s: file larger than %d bytes", path,
				   CONFIG_FILE_MAX);
			goto fail;
		}
	}
	close(fd);
	return buf_steal(&b);
fail:
	close(fd);
	buf_free(&b);
	return NULL;
}

struct config *
config_load(const char *dir, struct strlist *warnings_r, struct errbuf *err)
{
	struct config *c = cfg_new(dir);
	struct strlist mwarn;
	char *path, *text;
	bool missing;
	int rc;

	strlist_init(&mwarn);
	path = xasprintf("%s/main.cf", dir);
	text = cfg_read_file(path, NULL, err);
	if (text == NULL)
		goto fail;
	rc = parse_main_text(c, text, path, warnings_r, err);
	free(text);
	if (rc < 0)
		goto fail;
	free(path);
	path = xasprintf("%s/master.cf", dir);
	text = cfg_read_file(path, &missing, err);
	if (text == NULL && !missing)
		goto fail;
	if (text == NULL) {
		errbuf_clear(err);
		master_cf_default(c, path);
	} else {
		rc = config_parse_master(c, text, path, &mwarn, err);
		free(text);
		if (rc < 0)
			goto fail;
	}
	free(path);
	main_findings(c, warnings_r);
	for (size_t i = 0; warnings_r && i < mwarn.n; i++)
		strlist_add(warnings_r, mwarn.v[i]);
	strlist_free(&mwarn);
	return c;
fail:
	free(path);
	strlist_free(&mwarn);
	config_free(&c);
	return NULL;
}

/* ---- expansion ---- */

struct xctx {
	struct config *c;
	const char *stack[CONFIG_EXPAND_DEPTH];
	int depth;
	struct errbuf *err;
};

static int expand_text(struct xctx *x, const char *s, size_t n, struct buf *out);
static int resolve(struct xctx *x, const char *name, const char **v_r);

static void
loop_error(struct xctx *x, const struct cfent *e)
{
	struct buf b;
	char w[CFG_WHERE_MAX];
	int i;

	buf_init(&b, 600);
	for (i = 0; i < x->depth; i++)
		if (strcmp(x->stack[i], e->name) == 0)
			break;
	for (; i < x->depth; i++)
		if (buf_printf(&b, "$%s -> ", x->stack[i]) < 0)
			break;
	buf_printf(&b, "$%s", e->name);
	if (e->raw) {
		cfg_where_str(w, sizeof(w), e->file, e->line);
		errbuf_set(x->err, "%s: parameter %s: expansion loop: %s", w,
			   e->name, buf_cstr(&b));
	} else {
		errbuf_set(x->err, "default value for %s: expansion loop: %s",
			   e->name, buf_cstr(&b));
	}
	buf_free(&b);
}

/* Postfix derives mydomain from myhostname (minus its first label). */
static int
derive_mydomain(struct xctx *x, struct buf *out)
{
	const char *h, *dot;

	if (resolve(x, "myhostname", &h) < 0)
		return -1;
	if (h == NULL || (dot = strchr(h, '.')) == NULL || dot[1] == '\0')
		return buf_puts(out, "localdomain");
	return buf_puts(out, dot + 1);
}

/* 1 = value in *v_r, 0 = neither set nor known (*v_r = NULL), -1 = err. */
static int
resolve(struct xctx *x, const char *name, const char **v_r)
{
	struct cfent *e = cfg_lookup(x->c, name);
	const struct param_def *d = NULL;
	const char *raw;
	struct buf b;
	int rc;

	*v_r = NULL;
	if (e && e->expanded) {
		*v_r = e->expanded;
		return 1;
	}
	if (e && e->raw) {
		raw = e->raw;
	} else {
		if ((d = params_find(name)) == NULL)
			return 0;
		raw = d->def;
		if (e == NULL)
			e = cfg_intern(x->c, name);
	}
	if (e->busy) {
		loop_error(x, e);
		return -1;
	}
	if (x->depth >= CONFIG_EXPAND_DEPTH) {
		errbuf_set(x->err, "parameter %s: $name references nested more "
			   "than %d deep", name, CONFIG_EXPAND_DEPTH);
		return -1;
	}
	e->busy = true;
	x->stack[x->depth++] = e->name;
	buf_init(&b, CONFIG_VALUE_MAX);
	if (e->raw == NULL && strcmp(name, "mydomain") == 0)
		rc = derive_mydomain(x, &b) < 0 ? -1 : 0;
	else if (e->raw == NULL && strcmp(name, "config_directory") == 0 &&
		 x->c->dir != NULL && x->c->dir[0] != '\0')
		/* as Postfix: the directory main.cf was read from (-c DIR) */
		rc = buf_puts(&b, x->c->dir) < 0 ? -1 : 0;
	else
		rc = expand_text(x, raw, strlen(raw), &b);
	if (rc == -2) {
		char w[CFG_WHERE_MAX];

		if (e->raw)
			cfg_where_str(w, sizeof(w), e->file, e->line);
		else
			snprintf(w, sizeof(w), "default value for %s", name);
		errbuf_set(x->err, "%s: parameter %s: value longer than %d "
			   "bytes after expansion", w, name, CONFIG_VALUE_MAX);
		rc = -1;
	}
	x->depth--;
	e->busy = false;
	if (rc < 0) {
		buf_free(&b);
		return -1;
	}
	e->expanded = buf_steal(&b);
	*v_r = e->expanded;
	return 1;
}

/* Finds the '}' or ')' closing the group opened just before p. */
static const char *
find_close(const char *p, const char *end, char open, char close)
{
	int depth = 1;

	for (; p < end; p++) {
		if (*p == open)
			depth++;
		else if (*p == close && --depth == 0)
			return p;
	}
	return NULL;
}

static void
syntax_error(struct xctx *x, const char *what, const char *s, size_t n)
{
	const char *who = x->depth ? x->stack[x->depth - 1] : NULL;
	const struct cfent *e = who ? cfg_lookup(x->c, who) : NULL;
	char w[CFG_WHERE_MAX];

	if (e && e->raw) {
		cfg_where_str(w, sizeof(w), e->file, e->line);
		errbuf_set(x->err, "%s: parameter %s: %s in \"%.*s\"", w, who,
			   what, (int)(n > 200 ? 200 : n), s);
	} else if (who) {
		errbuf_set(x->err, "default value for %s: %s in \"%.*s\"", who,
			   what, (int)(n > 200 ? 200 : n), s);
	} else {
		errbuf_set(x->err, "%s in \"%.*s\"", what,
			   (int)(n > 200 ? 200 : n), s);
	}
}

/*
 * The value part of ${name?value} / ${name:value}, or Postfix 3's
 * ${name?{then}:{else}} form. Expands the chosen branch into out.
 */
static int
expand_cond(struct xctx *x, bool nonempty, char op, const char *t,
	    const char *end, const char *whole, size_t wlen, struct buf *out)
{
	const char *p = t, *a, *ae, *b = NULL, *be = NULL;

	while (p < end && isspace((unsigned char)*p))
		p++;
	if (p < end && *p == '{') {
		a = p + 1;
		if ((ae = find_close(a, end, '{', '}')) == NULL)
			goto bad;
		p = ae + 1;
		while (p < end && isspace((unsigned char)*p))
			p++;
		if (p < end && *p == ':' && op == '?') {
			p++;
			while (p < end && isspace((unsigned char)*p))
				p++;
			if (p >= end || *p != '{')
				goto bad;
			b = p + 1;
			if ((be = find_close(b, end, '{', '}')) == NULL)
				goto bad;
			p = be + 1;
			while (p < end && isspace((unsigned char)*p))
				p++;
		}
		if (p != end)
			goto bad;
	} else {
		a = t;
		ae = end;
	}
	if (op == '?') {
		if (nonempty)
			return expand_text(x, a, (size_t)(ae - a), out);
		if (b)
			return expand_text(x, b, (size_t)(be - b), out);
		return 0;
	}
	return nonempty ? 0 : expand_text(x, a, (size_t)(ae - a), out);
bad:
	syntax_error(x, "bad conditional expansion", whole, wlen);
	return -1;
}

/* 0, -1 + err, or -2 when the result exceeds CONFIG_VALUE_MAX. */
static int
expand_text(struct xctx *x, const char *s, size_t n, struct buf *out)
{
	const char *p = s, *end = s + n;

	while (p < end) {
		const char *dollar = memchr(p, '$', (size_t)(end - p));
		const char *nm, *ne, *val;
		char close, namebuf[CONFIG_NAME_MAX + 1];
		size_t nlen;
		int rc;

		if (dollar == NULL)
			dollar = end;
		if (buf_append(out, p, (size_t)(dollar - p)) < 0)
			return -2;
		if (dollar == end)
			break;
		p = dollar + 1;
		if (p < end && *p == '$') {
			if (buf_putc(out, '$') < 0)
				return -2;
			p++;
			continue;
		}
		close = 0;
		if (p < end && (*p == '{' || *p == '(')) {
			close = *p == '{' ? '}' : ')';
			p++;
		}
		for (nm = p; p < end && (isalnum((unsigned char)*p) || *p == '_'); p++)
			;
		ne = p;
		nlen = (size_t)(ne - nm);
		if (close == 0 && nlen == 0) {
			syntax_error(x, "'$' not followed by a parameter name "
				     "(write $$ for a literal '$')", s, n);
			return -1;
		}
		if (close) {
			const char *ce = find_close(p, end, close == '}' ? '{' : '(',
						    close);

			if (ce == NULL) {
				syntax_error(x, close == '}' ? "missing '}'" :
					     "missing ')'", s, n);
				return -1;
			}
			if (nlen == 0) {
				syntax_error(x, "empty parameter name", s, n);
				return -1;
			}
			if (p != ce && *p != '?' && *p != ':') {
				syntax_error(x, "bad parameter name", s, n);
				return -1;
			}
			if (nlen > CONFIG_NAME_MAX) {
				syntax_error(x, "parameter name too long", s, n);
				return -1;
			}
			memcpy(namebuf, nm, nlen);
			namebuf[nlen] = '\0';
			if ((rc = resolve(x, namebuf, &val)) < 0)
				return -1;
			if (p == ce) {
				if (val && buf_puts(out, val) < 0)
					return -2;
			} else {
				rc = expand_cond(x, val && *val, *p, p + 1, ce,
						 dollar, (size_t)(ce + 1 - dollar),
						 out);
				if (rc < 0)
					return rc;
			}
			p = ce + 1;
			continue;
		}
		if (nlen > CONFIG_NAME_MAX) {
			syntax_error(x, "parameter name too long", s, n);
			return -1;
		}
		memcpy(namebuf, nm, nlen);
		namebuf[nlen] = '\0';
		if (resolve(x, namebuf, &val) < 0)
			return -1;
		if (val && buf_puts(out, val) < 0)
			return -2;
	}
	return 0;
}

const char *
config_get_err(const struct config *cc, const char *name, struct errbuf *err)
{
	struct config *c = (struct config *)cc;	/* the cache is mutable */
	struct xctx x;
	const char *v;
	int rc;

	if (!cfg_valid_name(name, strlen(name)) || strlen(name) > CONFIG_NAME_MAX) {
		errbuf_set(err, "bad parameter name: \"%.100s\"", name);
		return NULL;
	}
	memset(&x, 0, sizeof(x));
	x.c = c;
	x.err = err;
	pthread_mutex_lock(&c->lock);
	rc = resolve(&x, name, &v);
	pthread_mutex_unlock(&c->lock);
	if (rc == 0)
		errbuf_set(err, "%s: unknown parameter", name);
	return rc > 0 ? v : NULL;
}

const char *
config_get(const struct config *c, const char *name)
{
	struct errbuf e;
	const char *v;

	errbuf_clear(&e);
	v = config_get_err(c, name, &e);
	if (v == NULL && (config_raw(c, name) || params_find(name)))
		return "";	/* expansion error: settings_load reports it */
	return v;
}

char *
config_expand(const struct config *cc, const char *value, struct errbuf *err)
{
	struct config *c = (struct config *)cc;
	struct xctx x;
	struct buf b;
	int rc;

	memset(&x, 0, sizeof(x));
	x.c = c;
	x.err = err;
	buf_init(&b, CONFIG_VALUE_MAX);
	pthread_mutex_lock(&c->lock);
	rc = expand_text(&x, value, strlen(value), &b);
	pthread_mutex_unlock(&c->lock);
	if (rc == -2)
		errbuf_set(err, "value longer than %d bytes after expansion",
			   CONFIG_VALUE_MAX);
	if (rc < 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/* ---- accessors ---- */

const char *
config_raw(const struct config *c, const char *name)
{
	const struct cfent *e = cfg_lookup(c, name);

	return e ? e->raw : NULL;
}

bool
config_where(const struct config *c, const char *name, const char **file_r,
	     int *line_r)
{
	const struct cfent *e = cfg_lookup(c, name);

	if (e == NULL || e->raw == NULL)
		return false;
	if (file_r)
		*file_r = e->file;
	if (line_r)
		*line_r = e->line;
	return true;
}

void
config_names_set(const struct config *c, struct strlist *names_r)
{
	size_t first = names_r->n;

	for (size_t i = 0; i < c->norder; i++)
		strlist_add(names_r, c->order[i]->name);
	if (names_r->n > first)
		qsort(names_r->v + first, names_r->n - first,
		      sizeof(*names_r->v), cmp_str);
}

const struct master_cf *
config_master(const struct config *c)
{
	return &c->master;
}

const char *
config_dir(const struct config *c)
{
	return c->dir;
}

/* ---- per-listener copies ---- */

static struct config *
with_overrides(const struct config *base, const struct strlist *ov,
	       const char *file, int line, struct errbuf *err)
{
	struct config *c = cfg_new(base->dir);

	for (size_t i = 0; i < base->norder; i++) {
		const struct cfent *e = base->order[i];

		cfg_set(c, e->name, e->raw, e->file, e->line);
		cfg_lookup(c, e->name)->from_override = e->from_override;
	}
	master_cf_copy(&c->master, &base->master);
	master_cf_copy(&c->transports, &base->transports);
	for (size_t i = 0; ov && i < ov->n; i++) {
		const char *o = ov->v[i], *eq = strchr(o, '='), *ne, *v;
		char w[CFG_WHERE_MAX];
		char *name;

		cfg_where_str(w, sizeof(w), file, line);
		for (ne = eq ? eq : o; ne > o && isspace((unsigned char)ne[-1]); ne--)
			;
		while (o < ne && isspace((unsigned char)*o))
			o++;
		if (eq == NULL || !cfg_valid_name(o, (size_t)(ne - o)) ||
		    (size_t)(ne - o) > CONFIG_NAME_MAX) {
			errbuf_set(err, "%s: bad -o override: \"%.200s\" "
				   "(expected name=value)", w, ov->v[i]);
			config_free(&c);
			return NULL;
		}
		for (v = eq + 1; *v && isspace((unsigned char)*v); v++)
			;
		name = xstrndup(o, (size_t)(ne - o));
		cfg_set(c, name, v, file, line);
		cfg_lookup(c, name)->from_override = true;
		free(name);
	}
	cfg_drop_cache(c);
	return c;
}

struct config *
config_with_overrides(const struct config *base, const struct strlist *overrides,
		      struct errbuf *err)
{
	return with_overrides(base, overrides, "-o override", 0, err);
}

struct config *
config_with_service(const struct config *base, const struct master_service *svc,
		    struct errbuf *err)
{
	return with_overrides(base, &svc->overrides, svc->file, svc->line, err);
}
