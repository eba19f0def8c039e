/*
 * table_expand.c - expands Postfix %s %u %d %[1-9] %S %U %D templates for
 * network tables with per-driver quoting, and applies the "domain" key
 * restriction (keys outside the listed domains never reach the server).
 * Must not: log, substitute a value unquoted when a quoting callback is
 * given, or leave a partial expansion in the output on failure.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/table_driver.h"
#include "backends/table_expand.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"

#define X_KEY_DOMAIN	(1u << 0)	/* query needs the key's domain */
#define X_KEY_USER	(1u << 1)	/* query needs a non-empty local part */
#define X_VALUE_DOMAIN	(1u << 2)	/* result needs the value's domain */
#define X_VALUE_USER	(1u << 3)	/* result needs a non-empty local part */

struct table_expand_domain {
	struct strlist  names;		/* "name" / "!name", lowercased */
	struct table  **tables;		/* parallel to names: NULL or a table */
	bool           *negate;
};

void
table_expand_init(struct table_expand *x, const char *name)
{
	memset(x, 0, sizeof(*x));
	x->name = xstrdup(name);
}

static void
domain_free(struct table_expand_domain **dp)
{
	struct table_expand_domain *d = *dp;

	if (d == NULL)
		return;
	for (size_t i = 0; i < d->names.n; i++)
		table_close(&d->tables[i]);
	free(d->tables);
	free(d->negate);
	strlist_free(&d->names);
	xfree(dp);
}

void
table_expand_free(struct table_expand *x)
{
	domain_free(&x->domain);
	xfree(&x->name);
}

int
table_expand_parse(struct table_expand *x, const char *format, bool query,
		   struct errbuf *err)
{
	int dynamic = 0;

	for (const char *cp = format; *cp; cp++) {
		if (*cp != '%')
			continue;
		switch (*++cp) {
		case '%':
			break;
		case 's':
		case 'S':
			dynamic = 1;
			break;
		case 'u':
			x->flags |= query ? X_KEY_USER : X_VALUE_USER;
			dynamic = 1;
			break;
		case 'd':
			x->flags |= query ? X_KEY_DOMAIN : X_VALUE_DOMAIN;
			dynamic = 1;
			break;
		case 'U':
			x->flags |= X_KEY_USER;
			dynamic = 1;
			break;
		case '1': case '2': case '3': case '4': case '5':
		case '6': case '7': case '8': case '9':
			if (x->nparts < *cp - '0')
				x->nparts = *cp - '0';
			/* FALLTHROUGH */
		case 'D':
			x->flags |= X_KEY_DOMAIN;
			dynamic = 1;
			break;
		case '\0':
			errbuf_set(err, "%s: invalid %s template \"%s\": '%%' at the end",
				   x->name, query ? "query" : "result", format);
			return -1;
		default:
			errbuf_set(err, "%s: invalid %s template \"%s\": unknown "
				   "expansion %%%c; expected %%s %%u %%d %%S %%U %%D "
				   "%%1-%%9 or %%%%", x->name, query ? "query" : "result",
				   format, isprint((unsigned char)*cp) ? *cp : '?');
			return -1;
		}
	}
	return dynamic;
}

/* ---- the "domain" restriction ------------------------------------------ */

static void
domain_add(struct table_expand_domain *d, const char *item, struct table *t)
{
	bool neg = false;
	char *low;

	if (t == NULL && *item == '!') {
		neg = true;
		item++;
	}
	low = xstrdup(item);
	if (t == NULL)
		for (char *p = low; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	strlist_add(&d->names, low);
	free(low);
	d->tables = xrealloc(d->tables, d->names.n * sizeof(*d->tables));
	d->negate = xrealloc(d->negate, d->names.n * sizeof(*d->negate));
	d->tables[d->names.n - 1] = t;
	d->negate[d->names.n - 1] = neg;
}

static int
domain_add_file(struct table_expand_domain *d, const char *path,
		struct errbuf *err)
{
	struct buf data;
	struct stat st;
	struct strlist words;
	int r;

	buf_init(&data, 0);
	r = table_file_read(path, &data, &st, err);
	if (r != 0) {
		buf_free(&data);
		return -1;
	}
	strlist_init(&words);
	for (char *line = data.data, *next; line && *line; line = next) {
		char *hash;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		if (strlist_split(&words, line) < 0) {
			errbuf_set(err, "%s: unbalanced '{' or '}'", path);
			strlist_free(&words);
			buf_free(&data);
			return -1;
		}
	}
	for (size_t i = 0; i < words.n; i++)
		domain_add(d, words.v[i], NULL);
	strlist_free(&words);
	buf_free(&data);
	return 0;
}

int
table_expand_set_domain(struct table_expand *x, const char *list,
			struct errbuf *err)
{
	struct table_expand_domain *d;
	struct strlist items;
	struct errbuf why;

	domain_free(&x->domain);
	strlist_init(&items);
	if (strlist_split(&items, list) < 0) {
		errbuf_set(err, "%s: domain = %s: unbalanced '{' or '}'", x->name, list);
		strlist_free(&items);
		return -1;
	}
	if (items.n == 0) {
		strlist_free(&items);
		return 0;
	}
	d = xcalloc(1, sizeof(*d));
	strlist_init(&d->names);
	for (size_t i = 0; i < items.n; i++) {
		const char *it = items.v[i];

		if (*it == '/') {
			if (domain_add_file(d, it, &why) < 0) {
				errbuf_set(err, "%s: domain: %s", x->name, errbuf_str(&why));
				goto fail;
			}
		} else if (*it != '!' && strchr(it, ':') != NULL) {
			struct table *t = table_open(it, TABLE_F_FOLD, &why);

			if (t == NULL) {
				errbuf_set(err, "%s: domain: %s", x->name, errbuf_str(&why));
				goto fail;
			}
			domain_add(d, it, t);
		} else {
			domain_add(d, it, NULL);
		}
	}
	strlist_free(&items);
	x->domain = d;
	return 0;
fail:
	strlist_free(&items);
	domain_free(&d);
	return -1;
}

enum table_status
table_expand_check_domain(const struct table_expand *x, const char *key,
			  struct errbuf *err)
{
	const struct table_expand_domain *d = x->domain;
	const char *dom;
	struct buf v;
	struct errbuf why;

	if (d == NULL)
		return TABLE_FOUND;
	dom = strrchr(key, '@');
	if (dom == NULL || dom == key || dom[1] == '\0')
		return TABLE_NOTFOUND;
	dom++;
	buf_init(&v, 4096);
	for (size_t i = 0; i < d->names.n; i++) {
		enum table_status st;

		if (d->tables[i] == NULL) {
			if (strcasecmp(d->names.v[i], dom) == 0) {
				buf_free(&v);
				return d->negate[i] ? TABLE_NOTFOUND : TABLE_FOUND;
			}
			continue;
		}
		st = table_lookup(d->tables[i], dom, &v, &why);
		if (st == TABLE_FOUND) {
			buf_free(&v);
			return TABLE_FOUND;
		}
		if (st != TABLE_NOTFOUND) {
			errbuf_set(err, "domain list %s: %s", d->names.v[i],
				   errbuf_str(&why));
			buf_free(&v);
			return st;
		}
	}
	buf_free(&v);
	return TABLE_NOTFOUND;
}

/* ---- expansion ---------------------------------------------------------- */

static int
put_quoted(struct buf *out, const char *s, table_quote_fn quote, void *arg,
	   struct errbuf *err)
{
	if (quote)
		return quote(arg, s, out, err);
	if (buf_puts(out, s) < 0) {
		errbuf_set(err, "expansion longer than %zu bytes", out->max);
		return -1;
	}
	return 0;
}

/* The n-th label from the right of domain (n >= 1), copied into lab. */
static bool
domain_label(const char *domain, int n, char **lab)
{
	const char *end = domain + strlen(domain), *p = end;

	for (int i = 1; ; i++) {
		const char *start = p;

		while (start > domain && start[-1] != '.')
			start--;
		if (i == n) {
			if (start == p)
				return false;	/* empty label */
			*lab = xstrndup(start, (size_t)(p - start));
			return true;
		}
		if (start == domain)
			return false;		/* too few labels */
		p = start - 1;
	}
}

int
table_expand(const struct table_expand *x, const char *format,
	     const char *value, const char *key, struct buf *out,
	     table_quote_fn quote, void *quote_arg, struct errbuf *err)
{
	const char *vdomain = NULL, *kdomain = NULL;
	char *vuser = NULL, *kuser = NULL, *labels[10] = { NULL };
	size_t old_len = out->len;
	int rc = 1;

	if (value == NULL || *value == '\0')
		return 0;
	if (key) {
		if (x->flags & (X_VALUE_DOMAIN | X_VALUE_USER))
			if ((vdomain = strrchr(value, '@')) != NULL)
				vdomain++;
		if (((vdomain == NULL || *vdomain == '\0') && (x->flags & X_VALUE_DOMAIN)) ||
		    (vdomain == value + 1 && (x->flags & X_VALUE_USER)))
			return 0;
		if (x->flags & (X_KEY_DOMAIN | X_KEY_USER))
			if ((kdomain = strrchr(key, '@')) != NULL)
				kdomain++;
		if (((kdomain == NULL || *kdomain == '\0') && (x->flags & X_KEY_DOMAIN)) ||
		    (kdomain == key + 1 && (x->flags & X_KEY_USER)))
			return 0;
	} else {
		if (x->flags & (X_KEY_DOMAIN | X_KEY_USER))
			if ((vdomain = strrchr(value, '@')) != NULL)
				vdomain++;
		if (((vdomain == NULL || *vdomain == '\0') && (x->flags & X_KEY_DOMAIN)) ||
		    (vdomain == value + 1 && (x->flags & X_KEY_USER)))
			return 0;
		kdomain = vdomain;
	}
	for (int i = 1; i <= x->nparts; i++) {
		if (!domain_label(key ? kdomain : vdomain, i, &labels[i])) {
			rc = 0;
			goto done;
		}
	}
	if (out->len > 0 && buf_putc(out, ',') < 0)
		goto toolong;
	for (const char *cp = format; *cp; cp++) {
		const char *sub = NULL;
		char *tmp;

		if (*cp != '%') {
			if (buf_putc(out, *cp) < 0)
				goto toolong;
			continue;
		}
		switch (*++cp) {
		case '%':
			if (buf_putc(out, '%') < 0)
				goto toolong;
			continue;
		case 's':
			sub = value;
			break;
		case 'u':
			if (vdomain) {
				if (vuser == NULL)
					vuser = xstrndup(value, (size_t)(vdomain - value - 1));
				sub = vuser;
			} else {
				sub = value;
			}
			break;
		case 'd':
			sub = vdomain;
			break;
		case 'S':
			sub = key ? key : value;
			break;
		case 'U': {
			const char *k = key ? key : value;
			const char *kd = key ? kdomain : vdomain;

			if (kd) {
				tmp = key ? kuser : vuser;
				if (tmp == NULL) {
					tmp = xstrndup(k, (size_t)(kd - k - 1));
					if (key)
						kuser = tmp;
					else
						vuser = tmp;
				}
				sub = tmp;
			} else {
				sub = k;
			}
			break;
		}
		case 'D':
			sub = key ? kdomain : vdomain;
			break;
		case '1': case '2': case '3': case '4': case '5':
		case '6': case '7': case '8': case '9':
			sub = labels[*cp - '0'];
			break;
		default:
			sub = NULL;
			break;
		}
		if (sub == NULL) {
			/* A template that was not parsed, or lacks the part. */
			errbuf_set(err, "%s: template \"%s\" was not validated",
				   x->name, format);
			rc = -1;
			goto done;
		}
		if (put_quoted(out, sub, quote, quote_arg, err) < 0) {
			rc = -1;
			goto done;
		}
	}
	goto done;
toolong:
	errbuf_set(err, "%s: expansion longer than %zu bytes", x->name, out->max);
	rc = -1;
done:
	if (rc != 1) {
		out->len = old_len;
		if (out->data)
			out->data[old_len] = '\0';
	}
	free(vuser);
	free(kuser);
	for (int i = 0; i < 10; i++)
		free(labels[i]);
	return rc;
}

/* ---- quoting ------------------------------------------------------------ */

static int
quote_fail(struct buf *out, size_t old_len, struct errbuf *err)
{
	out->len = old_len;
	if (out->data)
		out->data[old_len] = '\0';
	errbuf_set(err, "quoted value longer than %zu bytes", out->max);
	return -1;
}

int
table_quote_ldap_filter(void *arg, const char *s, struct buf *out,
			struct errbuf *err)
{
	size_t old = out->len;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		int r;

		if (c == '*' || c == '(' || c == ')' || c == '\\' || c < 0x20 || c == 0x7f)
			r = buf_printf(out, "\\%02x", c);
		else
			r = buf_putc(out, c);
		if (r < 0)
			return quote_fail(out, old, err);
	}
	return 0;
}

int
table_quote_ldap_dn(void *arg, const char *s, struct buf *out,
		    struct errbuf *err)
{
	size_t old = out->len, len = strlen(s);

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int r;

		if (c < 0x20 || c == 0x7f)
			r = buf_printf(out, "\\%02x", c);
		else if (strchr("\"+,;<=>\\", c) != NULL ||
			 (i == 0 && (c == ' ' || c == '#')) ||
			 (i == len - 1 && c == ' '))
			r = buf_printf(out, "\\%c", c);
		else
			r = buf_putc(out, c);
		if (r < 0)
			return quote_fail(out, old, err);
	}
	return 0;
}
