/*
 * fuzz_mapfile.c - libFuzzer target for the map file parsers: the input is
 * written to a file and opened as texthash:, cidr:, regexp: and pcre:
 * tables, then used as an inline: spec and a network list, and a few keys
 * are looked up. Any crash, leak or sanitizer report is a bug.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/table.h"
#include "core/lib/xmalloc.h"
#include "core/netlist.h"

static const char *const keys[] = {
	"a", "key", "user@example.test", "@example.test", "127.0.0.1",
	"192.168.1.1", "::1", "2001:db8::1", "::ffff:10.0.0.1", "",
};

static void
probe(const char *spec)
{
	struct errbuf err;
	struct buf v;
	struct table *t = table_open(spec, TABLE_F_FOLD, &err);

	if (t == NULL)
		return;
	buf_init(&v, 65536);
	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
		(void)table_lookup(t, keys[i], &v, &err);
	buf_free(&v);
	table_close(&t);
}

/* True if a list item could be a file name ("/x", "!/x", "type:/x"). */
static int
names_file(const char *s)
{
	for (const char *p = strchr(s, '/'); p; p = strchr(p + 1, '/'))
		if (p == s || strchr(" \t\r\n\v\f,!:{}", p[-1]) != NULL)
			return 1;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = { "texthash", "cidr", "regexp", "pcre" };
	static char path[64];
	struct errbuf err;
	struct netlist *nl;
	char *spec, *text;
	FILE *fp;

	if (size > 1 << 16)
		return 0;
	if (path[0] == '\0')
		snprintf(path, sizeof(path), "/tmp/fuzz_mapfile.%ld", (long)getpid());
	fp = fopen(path, "wb");
	if (fp == NULL)
		return 0;
	fwrite(data, 1, size, fp);
	fclose(fp);

	for (size_t i = 0; i < sizeof(types) / sizeof(*types); i++) {
		spec = xasprintf("%s:%s", types[i], path);
		probe(spec);
		free(spec);
	}

	text = xstrndup((const char *)data, size);
	spec = xasprintf("inline:%s", text);
	probe(spec);
	free(spec);
	spec = xasprintf("static:%s", text);
	probe(spec);
	free(spec);
	if (!names_file(text)) {
		/* A network list may name files; don't read arbitrary ones. */
		nl = netlist_new(text, &err);
		if (nl) {
			for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
				(void)netlist_match_str(nl, keys[i], &err);
			netlist_free(&nl);
		}
	}
	free(text);
	unlink(path);
	return 0;
}
