/*
 * cli_map.c - `facteur map query [-f] TYPE:NAME KEY ...` (postmap -q: one
 * key prints its value; several keys, or "-" for keys on standard input,
 * print "key<TAB>value" for each key found) and `facteur map dump
 * TYPE:NAME` (postmap -s: every "key<TAB>value"). Exit status: 0 found,
 * 1 not found, 75 (EX_TEMPFAIL) when a table cannot answer now (the
 * reason on stderr), 2 for usage and configuration errors.
 * With -a (postalias -q / -s), TYPE:NAME is an alias_maps item: a
 * hash:/texthash: file is read in aliases(5) syntax ("name: a, b").
 * Must not: write to any table, or read main.cf (tables are named in full).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/table.h"
#include "core/cli.h"
#include "core/lib/buf.h"
#include "core/lib/errbuf.h"
#include "core/lib/strlist.h"
#include "core/rewrite_alias.h"

#define MAP_EX_TEMPFAIL 75
#define MAP_VALUE_MAX	((size_t)1 << 20)

static const char map_usage[] =
	"usage: facteur map query [-f] TYPE:NAME KEY ... | "
	"facteur map query [-f] TYPE:NAME - | facteur map dump TYPE:NAME | "
	"facteur map query|dump -a ALIAS_MAP [NAME ...]\n";

static struct table *
map_open(const char *spec, unsigned flags)
{
	struct errbuf err;
	struct strlist warnings;
	struct table *t = table_open(spec, flags, &err);

	if (t == NULL) {
		fprintf(stderr, "facteur: %s\n", errbuf_str(&err));
		return NULL;
	}
	strlist_init(&warnings);
	table_warnings(t, &warnings);
	for (size_t i = 0; i < warnings.n; i++)
		fprintf(stderr, "facteur: warning: %s\n", warnings.v[i]);
	strlist_free(&warnings);
	return t;
}

/* 0 found, 1 not found, or the exit status for an error (reported). */
static int
map_query_one(struct table *t, const char *key, bool with_key, struct buf *v)
{
	struct errbuf err;
	enum table_status st = table_lookup(t, key, v, &err);

	switch (st) {
	case TABLE_FOUND:
		if (with_key)
			printf("%s\t", key);
		fwrite(v->data ? v->data : "", 1, v->len, stdout);
		putchar('\n');
		return 0;
	case TABLE_NOTFOUND:
		return 1;
	case TABLE_TEMPFAIL:
	case TABLE_CONFIG:
		fprintf(stderr, "facteur: %s lookup error for \"%s\": %s\n",
			table_name(t), key, errbuf_str(&err));
		return st == TABLE_TEMPFAIL ? MAP_EX_TEMPFAIL : 2;
	}
	return 2;
}

/* Keys from stdin, one a line; a line longer than a key can be is read to
 * its end and looked up as too long (not found). */
static int
map_query_stdin(struct table *t, struct buf *v)
{
	char line[TABLE_KEY_MAX + 2];
	bool found = false, longline = false;

	while (fgets(line, sizeof(line), stdin) != NULL) {
		size_t n = strlen(line);
		bool complete = n > 0 && line[n - 1] == '\n';
		int r;

		if (longline) {		/* the tail of a line already refused */
			longline = !complete;
			continue;
		}
		if (!complete && !feof(stdin)) {
			longline = true;
			continue;
		}
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
			continue;
		r = map_query_one(t, line, true, v);
		if (r > 1)
			return r;
		found |= r == 0;
	}
	fflush(stdout);
	return found ? 0 : 1;
}

static int
map_query(int argc, char **argv)
{
	unsigned flags = TABLE_F_FOLD;
	struct table *t;
	struct buf v;
	int i = 0, rc = 1;

	if (argc > 0 && strcmp(argv[0], "-f") == 0) {
		flags = 0;
		i++;
	}
	if (argc - i < 2 || argv[i][0] == '-') {
		fputs(map_usage, stderr);
		return 2;
	}
	if ((t = map_open(argv[i], flags)) == NULL)
		return 2;
	buf_init(&v, MAP_VALUE_MAX);
	if (argc - i == 2 && strcmp(argv[i + 1], "-") == 0) {
		rc = map_query_stdin(t, &v);
	} else {
		bool several = argc - i > 2;

		for (int k = i + 1; k < argc; k++) {
			int r = map_query_one(t, argv[k], several, &v);

			if (r > 1) {
				rc = r;
				break;
			}
			if (r == 0)
				rc = 0;
		}
	}
	fflush(stdout);
	buf_free(&v);
	table_close(&t);
	return rc;
}

static int
map_dump_cb(const char *key, const char *value, void *arg)
{
	(void)arg;
	printf("%s\t%s\n", key, value);
	return 0;
}

static int
map_dump(int argc, char **argv)
{
	struct table *t;
	struct errbuf err;
	int rc = 0;

	if (argc != 1 || argv[0][0] == '-') {
		fputs(map_usage, stderr);
		return 2;
	}
	if ((t = map_open(argv[0], 0)) == NULL)
		return 2;
	if (table_dump(t, map_dump_cb, NULL, &err) < 0) {
		fprintf(stderr, "facteur: %s\n", errbuf_str(&err));
		rc = 2;
	}
	fflush(stdout);
	table_close(&t);
	return rc;
}

/* -a: an alias_maps item, as postalias -q NAME / -s. */
static int
map_alias(int argc, char **argv, bool dump)
{
	struct alias_db *d;
	struct strlist w;
	struct errbuf err;
	struct buf v;
	size_t n;
	int rc = 1;

	if (argc < 1 || (dump ? argc != 1 : argc < 2)) {
		fputs(map_usage, stderr);
		return 2;
	}
	errbuf_clear(&err);
	if ((d = alias_db_open(argv[0], &err)) == NULL) {
		fprintf(stderr, "facteur: %s\n", errbuf_str(&err));
		return 2;
	}
	strlist_init(&w);
	if (alias_db_check(d, &n, &w, &err) < 0) {
		fprintf(stderr, "facteur: %s\n", errbuf_str(&err));
		strlist_free(&w);
		alias_db_free(&d);
		return MAP_EX_TEMPFAIL;
	}
	for (size_t i = 0; i < w.n; i++)
		fprintf(stderr, "facteur: warning: %s\n", w.v[i]);
	strlist_free(&w);
	buf_init(&v, MAP_VALUE_MAX);
	if (dump) {
		rc = alias_db_dump(d, map_dump_cb, NULL, &err) < 0 ? 2 : 0;
		if (rc)
			fprintf(stderr, "facteur: %s\n", errbuf_str(&err));
	}
	for (int k = 1; !dump && k < argc; k++) {
		char *key = strdup(argv[k]);
		enum table_status st;

		if (key == NULL)
			break;
		for (char *p = key; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		st = alias_db_lookup(d, key, &v, &err);
		free(key);
		if (st == TABLE_FOUND) {
			if (argc > 2)
				printf("%s\t", argv[k]);
			printf("%s\n", buf_cstr(&v));
			rc = 0;
		} else if (st != TABLE_NOTFOUND) {
			fprintf(stderr, "facteur: %s\n", errbuf_str(&err));
			rc = st == TABLE_TEMPFAIL ? MAP_EX_TEMPFAIL : 2;
			break;
		}
	}
	fflush(stdout);
	buf_free(&v);
	alias_db_free(&d);
	return rc;
}

int
cli_map(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	if (argc >= 3 && strcmp(argv[2], "-a") == 0 &&
	    (strcmp(argv[1], "query") == 0 || strcmp(argv[1], "dump") == 0))
		return map_alias(argc - 3, argv + 3, strcmp(argv[1], "dump") == 0);
	/* argv[0] is "map" */
	if (argc >= 2 && strcmp(argv[1], "query") == 0)
		return map_query(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "dump") == 0)
		return map_dump(argc - 2, argv + 2);
	fputs(map_usage, stderr);
	return 2;
}
