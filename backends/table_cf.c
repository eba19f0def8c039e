/*
 * table_cf.c - parses ldap.cf / mysql.cf files into name/value pairs and
 * converts values (booleans, bounded integers) with precise errors.
 * Must not: log (warnings go to the caller's list), expand $names, or
 * accept a line without "=" (an error naming the file and line).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "backends/table_cf.h"
#include "backends/table_driver.h"
#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"

#define TABLE_CF_MAX	((size_t)1 << 20)	/* a .cf file is small */

struct table_cf {
	char          *path;
	struct strlist names;
	struct strlist values;
};

static int
cf_index(const struct table_cf *cf, const char *name)
{
	for (size_t i = 0; i < cf->names.n; i++)
		if (strcmp(cf->names.v[i], name) == 0)
			return (int)i;
	return -1;
}

static bool
cf_known(const char *const *known, const char *name)
{
	if (known == NULL)
		return true;
	for (; *known; known++)
		if (strcmp(*known, name) == 0)
			return true;
	return false;
}

static int
cf_parse(struct table_cf *cf, const char *data, size_t len,
	 const char *const *known, struct strlist *warnings, struct errbuf *err)
{
	struct table_lines lines;
	const char *line;
	int lineno, r;

	table_lines_init(&lines, cf->path, data, len);
	while ((r = table_lines_next(&lines, &line, &lineno, err)) > 0) {
		const char *p = line, *name_end, *v;
		char *name, *value;
		size_t vlen;
		int i;

		while (*p && !isspace((unsigned char)*p) && *p != '=')
			p++;
		name_end = p;
		while (isspace((unsigned char)*p))
			p++;
		if (name_end == line || *p != '=') {
			errbuf_set(err, "%s, line %d: missing '=' after parameter name; "
				   "expected format: name = value", cf->path, lineno);
			table_lines_free(&lines);
			return -1;
		}
		v = p + 1;
		while (isspace((unsigned char)*v))
			v++;
		vlen = strlen(v);
		while (vlen > 0 && isspace((unsigned char)v[vlen - 1]))
			vlen--;
		name = xstrndup(line, (size_t)(name_end - line));
		value = xstrndup(v, vlen);
		if (!cf_known(known, name) && warnings) {
			char *w = xasprintf("%s, line %d: unknown parameter \"%s\" ignored",
					    cf->path, lineno, name);
			strlist_add(warnings, w);
			free(w);
		}
		i = cf_index(cf, name);
		if (i >= 0) {
			if (warnings) {
				char *w = xasprintf("%s, line %d: parameter \"%s\" set again; "
						    "the last value is used",
						    cf->path, lineno, name);
				strlist_add(warnings, w);
				free(w);
			}
			free(cf->values.v[i]);
			cf->values.v[i] = value;
		} else {
			strlist_add(&cf->names, name);
			strlist_add(&cf->values, value);
			free(value);
		}
		free(name);
	}
	table_lines_free(&lines);
	return r < 0 ? -1 : 0;
}

int
table_cf_load(const char *path, const char *const *known,
	      struct table_cf **cf_r, struct strlist *warnings,
	      struct errbuf *err)
{
	struct table_cf *cf;
	struct buf data;
	struct stat st;
	int r;

	*cf_r = NULL;
	buf_init(&data, 0);
	r = table_file_read(path, &data, &st, err);
	if (r == TABLE_TEMPFAIL) {
		buf_free(&data);
		return TABLE_CF_UNREADABLE;
	}
	if (r != 0 || data.len > TABLE_CF_MAX) {
		if (r == 0)
			errbuf_set(err, "%s: file larger than %zu bytes", path,
				   TABLE_CF_MAX);
		buf_free(&data);
		return TABLE_CF_SYNTAX;
	}
	cf = xcalloc(1, sizeof(*cf));
	cf->path = xstrdup(path);
	strlist_init(&cf->names);
	strlist_init(&cf->values);
	r = cf_parse(cf, data.data ? data.data : "", data.len, known, warnings, err);
	buf_free(&data);
	if (r < 0) {
		table_cf_free(&cf);
		return TABLE_CF_SYNTAX;
	}
	*cf_r = cf;
	return TABLE_CF_OK;
}

void
table_cf_free(struct table_cf **cfp)
{
	struct table_cf *cf = *cfp;

	if (cf == NULL)
		return;
	free(cf->path);
	strlist_free(&cf->names);
	strlist_free(&cf->values);
	xfree(cfp);
}

const char *
table_cf_path(const struct table_cf *cf)
{
	return cf->path;
}

const char *
table_cf_str(const struct table_cf *cf, const char *name, const char *def)
{
	int i = cf_index(cf, name);

	return i >= 0 ? cf->values.v[i] : def;
}

bool
table_cf_has(const struct table_cf *cf, const char *name)
{
	return cf_index(cf, name) >= 0;
}

int
table_cf_bool(const struct table_cf *cf, const char *name, bool def, bool *r,
	      struct errbuf *err)
{
	const char *v = table_cf_str(cf, name, NULL);

	if (v == NULL) {
		*r = def;
		return 0;
	}
	if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 ||
	    strcmp(v, "1") == 0) {
		*r = true;
		return 0;
	}
	if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 ||
	    strcmp(v, "0") == 0) {
		*r = false;
		return 0;
	}
	errbuf_set(err, "%s: %s = %s: expected yes or no", cf->path, name, v);
	return -1;
}

int
table_cf_long(const struct table_cf *cf, const char *name, long def,
	      long min, long max, long *r, struct errbuf *err)
{
	const char *v = table_cf_str(cf, name, NULL);
	char *end;
	long n;

	if (v == NULL) {
		*r = def;
		return 0;
	}
	errno = 0;
	n = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || errno != 0 || n < min || n > max) {
		errbuf_set(err, "%s: %s = %s: expected a number from %ld to %ld",
			   cf->path, name, v, min, max);
		return -1;
	}
	*r = n;
	return 0;
}
