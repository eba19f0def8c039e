/*
 * table_regexp.c - regexp: tables (POSIX regex.h) and the rule engine that
 * regexp: and pcre: share: "/pattern/flags result" lines tried in order,
 * "!/pattern/" negation, nested "if /pattern/" ... "endif" blocks, and $n
 * substitution of capture groups into the result (Postfix
 * regexp_table(5)). Reloaded when the file changes; the inline form
 * "{ {rule}, {rule} }" (Postfix 3.7) is parsed once.
 * Must not: fold the key (the patterns' flags decide case), log, or accept
 * a result that refers to a group the pattern does not have.
 */
#include <ctype.h>
#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/table_driver.h"
#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"

#define PATTERN_IF_DEPTH_MAX 64

enum rule_op { RULE_MATCH, RULE_IF, RULE_ENDIF };

struct pattern_rule {
	enum rule_op op;
	bool         neg;
	void        *re;
	size_t       nsub;
	char        *result;	/* RULE_MATCH */
	size_t       skip_to;	/* RULE_IF: index of its endif */
};

struct pattern_map {
	const struct table_pattern_ops *ops;
	struct pattern_rule            *v;
	size_t                          n, cap;
};

struct pattern_table {
	struct table_source             src;
	const struct table_pattern_ops *ops;
};

static void
pattern_map_free(void *data)
{
	struct pattern_map *m = data;

	for (size_t i = 0; i < m->n; i++) {
		if (m->v[i].re)
			m->ops->free(m->v[i].re);
		free(m->v[i].result);
	}
	free(m->v);
	free(m);
}

static bool
is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Checks $ references in a result: $n, ${n}, $(n), $$. */
static int
result_check(const char *r, size_t nsub, bool neg, struct errbuf *err)
{
	for (const char *p = r; *p; p++) {
		size_t n = 0;
		char close = 0;

		if (*p != '$')
			continue;
		p++;
		if (*p == '$')
			continue;
		if (*p == '{' || *p == '(') {
			close = *p == '{' ? '}' : ')';
			p++;
		}
		if (!isdigit((unsigned char)*p)) {
			errbuf_set(err, "bad '$' in result \"%s\" (use $$ for a literal $)", r);
			return -1;
		}
		while (isdigit((unsigned char)*p) && n <= TABLE_PATTERN_NSUB_MAX)
			n = n * 10 + (size_t)(*p++ - '0');
		if (close && *p != close) {
			errbuf_set(err, "missing '%c' in result \"%s\"", close, r);
			return -1;
		}
		if (!close)
			p--;
		if (neg) {
			errbuf_set(err, "$%zu in the result of a negated pattern", n);
			return -1;
		}
		if (n > nsub) {
			errbuf_set(err, "out of range replacement index \"%zu\"", n);
			return -1;
		}
	}
	return 0;
}

static int
result_expand(const char *r, const char *key, const long *ovec,
	      struct buf *out)
{
	for (const char *p = r; *p; p++) {
		size_t n = 0;

		if (*p != '$') {
			if (buf_putc(out, *p) < 0)
				return -1;
			continue;
		}
		p++;
		if (*p == '$') {
			if (buf_putc(out, '$') < 0)
				return -1;
			continue;
		}
		if (*p == '{' || *p == '(')
			p++;
		while (isdigit((unsigned char)*p))
			n = n * 10 + (size_t)(*p++ - '0');
		if (*p != '}' && *p != ')')
			p--;
		if (ovec[2 * n] >= 0 && ovec[2 * n + 1] >= ovec[2 * n] &&
		    buf_append(out, key + ovec[2 * n],
			       (size_t)(ovec[2 * n + 1] - ovec[2 * n])) < 0)
			return -1;
	}
	return 0;
}

/* Parses "[!]/pattern/flags" at *pp; compiles it into rule. */
static int
pattern_parse_re(const struct table_pattern_ops *ops, const char **pp,
		 struct pattern_rule *rule, struct errbuf *err)
{
	const char *p = *pp, *start, *fstart;
	char delim, *pat, *flags;
	struct errbuf why;

	if (*p == '!') {
		rule->neg = true;
		p++;
	}
	delim = *p;
	if (delim == '\0' || is_ws(delim) || isalnum((unsigned char)delim) ||
	    delim == '\\') {
		errbuf_set(err, "expected format: /pattern/flags result");
		return -1;
	}
	start = ++p;
	while (*p && *p != delim) {
		if (*p == '\\' && p[1])
			p++;
		p++;
	}
	if (*p != delim) {
		errbuf_set(err, "missing closing '%c' after the pattern", delim);
		return -1;
	}
	pat = xstrndup(start, (size_t)(p - start));
	fstart = ++p;
	while (*p && !is_ws(*p))
		p++;
	flags = xstrndup(fstart, (size_t)(p - fstart));
	errbuf_clear(&why);
	rule->re = ops->compile(pat, flags, &rule->nsub, &why);
	if (rule->re == NULL)
		errbuf_set(err, "%c%s%c%s: %s", delim, pat, delim, flags,
			   errbuf_str(&why));
	free(pat);
	free(flags);
	if (rule->re == NULL)
		return -1;
	if (rule->nsub > TABLE_PATTERN_NSUB_MAX) {
		errbuf_set(err, "more than %d capture groups", TABLE_PATTERN_NSUB_MAX);
		ops->free(rule->re);
		rule->re = NULL;
		return -1;
	}
	*pp = p;
	return 0;
}

static bool
keyword(const char *line, const char *word, const char **rest_r)
{
	size_t n = strlen(word);

	if (strncasecmp(line, word, n) != 0 || (line[n] && !is_ws(line[n])))
		return false;
	line += n;
	while (is_ws(*line))
		line++;
	*rest_r = line;
	return true;
}

static int
pattern_parse(const char *path, const char *data, size_t len, void *arg,
	      void **data_r, struct strlist *warnings, struct errbuf *err)
{
	struct pattern_map *m = xcalloc(1, sizeof(*m));
	size_t open_ifs[PATTERN_IF_DEPTH_MAX];
	int if_lines[PATTERN_IF_DEPTH_MAX];
	size_t depth = 0;
	struct table_lines lr;
	struct errbuf why;
	const char *line, *rest;
	int lineno, r;

	m->ops = arg;
	table_lines_init(&lr, path, data, len);
	while ((r = table_lines_next(&lr, &line, &lineno, err)) > 0) {
		struct pattern_rule rule;

		memset(&rule, 0, sizeof(rule));
		errbuf_clear(&why);
		if (keyword(line, "endif", &rest)) {
			if (*rest) {
				errbuf_set(&why, "text after \"endif\"");
			} else if (depth == 0) {
				errbuf_set(&why, "\"endif\" without matching \"if\"");
			} else {
				rule.op = RULE_ENDIF;
				m->v[open_ifs[--depth]].skip_to = m->n;
			}
		} else if (keyword(line, "if", &rest)) {
			rule.op = RULE_IF;
			if (depth == PATTERN_IF_DEPTH_MAX) {
				errbuf_set(&why, "\"if\" nested deeper than %d",
					   PATTERN_IF_DEPTH_MAX);
			} else if (pattern_parse_re(m->ops, &rest, &rule, &why) == 0) {
				while (is_ws(*rest))
					rest++;
				if (*rest)
					errbuf_set(&why, "text after the \"if\" pattern");
			}
			if (errbuf_str(&why)[0] == '\0') {
				if_lines[depth] = lineno;
				open_ifs[depth++] = m->n;
			}
		} else {
			rule.op = RULE_MATCH;
			rest = line;
			if (pattern_parse_re(m->ops, &rest, &rule, &why) == 0) {
				while (is_ws(*rest))
					rest++;
				if (*rest == '\0')
					errbuf_set(&why, "expected format: /pattern/flags result");
				else if (result_check(rest, rule.nsub, rule.neg, &why) == 0)
					rule.result = xstrdup(rest);
			}
		}
		if (errbuf_str(&why)[0] != '\0') {
			errbuf_set(err, "%s, line %d: %s", path, lineno, errbuf_str(&why));
			if (rule.re)
				m->ops->free(rule.re);
			r = -1;
			break;
		}
		if (m->n == m->cap) {
			m->cap = m->cap ? m->cap * 2 : 16;
			m->v = xrealloc(m->v, m->cap * sizeof(*m->v));
		}
		m->v[m->n++] = rule;
	}
	if (r == 0 && depth > 0) {
		errbuf_set(err, "%s, line %d: \"if\" without matching \"endif\"",
			   path, if_lines[depth - 1]);
		r = -1;
	}
	table_lines_free(&lr);
	if (r < 0) {
		pattern_map_free(m);
		return -1;
	}
	*data_r = m;
	return 0;
}

/*
 * Postfix 3.7's inline form "{ {rule}, {rule} ... }" (e.g. the
 * smtpd_forbidden_commands default regexp:{{/^[^A-Z]/ Bogus}}): the rules,
 * one per line, as a file would hold them. NULL + err when the braces
 * are not that shape.
 */
static char *
inline_rules(const char *spec, const char *name, size_t *len_r,
	     struct errbuf *err)
{
	const char *p = name, *end = table_brace_end(name), *g;
	struct buf text;

	while (end != NULL && isspace((unsigned char)*end))
		end++;
	if (end == NULL || *end != '\0') {
		errbuf_set(err, "%s: expected { {rule}, {rule} ... }", spec);
		return NULL;
	}
	buf_init(&text, 0);
	end = table_brace_end(name) - 1;	/* the closing '}' */
	for (p++; p < end; p = g) {
		if (*p == ',' || isspace((unsigned char)*p)) {
			g = p + 1;
			continue;
		}
		if (*p != '{' || (g = table_brace_end(p)) == NULL || g > end) {
			errbuf_set(err, "%s: expected {rule} at \"%.40s\"", spec, p);
			buf_free(&text);
			return NULL;
		}
		buf_append(&text, p + 1, (size_t)(g - p - 2));
		buf_puts(&text, "\n");
	}
	*len_r = text.len;
	return buf_steal(&text);
}

int
table_pattern_open(struct table *t, const char *name,
		   const struct table_pattern_ops *ops, struct errbuf *err)
{
	struct pattern_table *pt;
	int rc;

	while (isspace((unsigned char)*name))
		name++;
	if (*name == '\0') {
		errbuf_set(err, "%s: missing file name", t->spec);
		return TABLE_OPEN_CONFIG;
	}
	pt = xmalloc(sizeof(*pt));
	pt->ops = ops;
	if (*name == '{') {
		size_t len = 0;
		char *text = inline_rules(t->spec, name, &len, err);

		rc = text == NULL ? -1
		     : table_source_open_text(&pt->src, t->spec, text, len,
					      pattern_parse, pattern_map_free,
					      (void *)ops, err);
		free(text);
	} else {
		rc = table_source_open(&pt->src, name, pattern_parse,
				       pattern_map_free, (void *)ops, err);
	}
	if (rc < 0) {
		free(pt);
		return TABLE_OPEN_CONFIG;
	}
	t->priv = pt;
	return TABLE_OPEN_OK;
}

enum table_status
table_pattern_lookup(struct table *t, const char *key, struct buf *value_r,
		     struct errbuf *err)
{
	struct pattern_table *pt = t->priv;
	long ovec[2 * (TABLE_PATTERN_NSUB_MAX + 1)];
	enum table_status st;
	struct pattern_map *m;
	void *data;
	size_t i = 0;

	if ((st = table_source_acquire(&pt->src, &data, err)) != TABLE_FOUND)
		return st;
	m = data;
	st = TABLE_NOTFOUND;
	while (i < m->n) {
		struct pattern_rule *rule = &m->v[i];
		int hit;

		if (rule->op == RULE_ENDIF) {
			i++;
			continue;
		}
		hit = m->ops->exec(rule->re, key, rule->nsub, ovec, err);
		if (hit < 0) {
			st = TABLE_TEMPFAIL;
			break;
		}
		if (rule->neg)
			hit = !hit;
		if (rule->op == RULE_IF) {
			i = hit ? i + 1 : rule->skip_to + 1;
			continue;
		}
		if (hit) {
			if (rule->neg)
				for (size_t g = 0; g < 2 * (TABLE_PATTERN_NSUB_MAX + 1); g++)
					ovec[g] = -1;
			if (result_expand(rule->result, key, ovec, value_r) < 0) {
				errbuf_set(err, "result for \"%s\" is longer than %zu bytes",
					   key, value_r->max);
				st = TABLE_CONFIG;
			} else {
				st = TABLE_FOUND;
			}
			break;
		}
		i++;
	}
	table_source_release(&pt->src);
	return st;
}

void
table_pattern_warnings(struct table *t, struct strlist *out)
{
	struct pattern_table *pt = t->priv;

	table_source_warnings(&pt->src, out);
}

void
table_pattern_close(struct table *t)
{
	struct pattern_table *pt = t->priv;

	table_source_close(&pt->src);
	xfree(&t->priv);
}

/* ---- POSIX regex for regexp: ------------------------------------------- */

static void *
regexp_compile(const char *pattern, const char *flags, size_t *nsub_r,
	       struct errbuf *err)
{
	int cflags = REG_EXTENDED | REG_ICASE, rc;
	regex_t *re;

	for (const char *f = flags; *f; f++) {
		switch (*f) {
		case 'i': cflags ^= REG_ICASE; break;
		case 'x': cflags ^= REG_EXTENDED; break;
		case 'm': cflags ^= REG_NEWLINE; break;
		default:
			errbuf_set(err, "unknown regexp option \"%c\"", *f);
			return NULL;
		}
	}
	re = xmalloc(sizeof(*re));
	if ((rc = regcomp(re, pattern, cflags)) != 0) {
		char msg[256];

		regerror(rc, re, msg, sizeof(msg));
		errbuf_set(err, "%s", msg);
		free(re);
		return NULL;
	}
	*nsub_r = re->re_nsub;
	return re;
}

static int
regexp_exec(void *re, const char *key, size_t nsub, long *ovec,
	    struct errbuf *err)
{
	regmatch_t pm[TABLE_PATTERN_NSUB_MAX + 1];
	int rc = regexec(re, key, nsub + 1, pm, 0);

	if (rc == REG_NOMATCH)
		return 0;
	if (rc != 0) {
		char msg[256];

		regerror(rc, re, msg, sizeof(msg));
		errbuf_set(err, "regexec: %s", msg);
		return -1;
	}
	for (size_t i = 0; i <= nsub; i++) {
		ovec[2 * i] = pm[i].rm_so;
		ovec[2 * i + 1] = pm[i].rm_eo;
	}
	return 1;
}

static void
regexp_free(void *re)
{
	regfree(re);
	free(re);
}

static const struct table_pattern_ops regexp_ops = {
	.compile = regexp_compile, .exec = regexp_exec, .free = regexp_free,
};

static int
regexp_open(struct table *t, const char *name, struct errbuf *err)
{
	return table_pattern_open(t, name, &regexp_ops, err);
}

const struct table_driver table_regexp_driver = {
	.type = "regexp", .flags = TABLE_F_PATTERN,
	.open = regexp_open, .lookup = table_pattern_lookup,
	.warnings = table_pattern_warnings, .close = table_pattern_close,
};
