/*
 * addr_find_test.c - Postfix's address search order over table lists:
 * full address, delimiter-stripped address, bare user, @domain catch-all,
 * pattern tables, and errors that stop the search.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/addr_find.h"
#include "core/lib/xmalloc.h"
#include "testdir.h"

#define MAPS \
	"inline:{ alice@d.test=full, bob@d.test=bob-base, carol+x@d.test=carol-ext," \
	" dave=bare-dave, erin+y=bare-erin-ext, erin=bare-erin, @d.test=catchall," \
	" postmaster@d.test=pm, owner-list@d.test=owner, list-request@d.test=req," \
	" +lead@d.test=lead, frank@=nodomain-frank, frank=bare-frank }"

static void
test_order(void **state)
{
	static const struct {
		const char *maps;
		const char *local, *domain, *delim;
		unsigned flags;
		enum table_status st;
		const char *value;
		const char *ext;	/* NULL: no extension reported */
	} cases[] = {
		/* full address first */
		{ MAPS, "alice", "d.test", "+", 0, TABLE_FOUND, "full", NULL },
		{ MAPS, "ALICE", "d.test", "+", 0, TABLE_FOUND, "full", NULL },
		/* user+ext@domain as is, then user@domain */
		{ MAPS, "bob+tag", "d.test", "+", 0, TABLE_FOUND, "bob-base", "tag" },
		{ MAPS, "carol+x", "d.test", "+", 0, TABLE_FOUND, "carol-ext", NULL },
		{ MAPS, "carol+z", "d.test", "+", 0, TABLE_FOUND, "catchall", NULL },
		/* the extension starts at the first delimiter character */
		{ MAPS, "bob+a+b", "d.test", "+", 0, TABLE_FOUND, "bob-base", "a+b" },
		{ MAPS, "bob-a+b", "d.test", "+-", 0, TABLE_FOUND, "bob-base", "a+b" },
		{ MAPS, "bob+", "d.test", "+", 0, TABLE_FOUND, "bob-base", "" },
		/* no delimiter configured: no stripping */
		{ MAPS, "bob+tag", "d.test", "", 0, TABLE_FOUND, "catchall", NULL },
		{ MAPS, "bob+tag", "d.test", NULL, 0, TABLE_FOUND, "catchall", NULL },
		{ MAPS, "bob+tag", "d.test", "-", 0, TABLE_FOUND, "catchall", NULL },
		/* catch-all, and NO_DOMAIN */
		{ MAPS, "nobody", "d.test", "+", 0, TABLE_FOUND, "catchall", NULL },
		{ MAPS, "nobody", "d.test", "+", ADDR_FIND_NO_DOMAIN, TABLE_NOTFOUND, NULL, NULL },
		{ MAPS, "nobody", "other.test", "+", 0, TABLE_NOTFOUND, NULL, NULL },
		/* bare user only with BARE_USER, after user@domain forms */
		{ MAPS, "dave", "d.test", "+", 0, TABLE_FOUND, "catchall", NULL },
		{ MAPS, "dave", "d.test", "+", ADDR_FIND_BARE_USER, TABLE_FOUND, "bare-dave", NULL },
		{ MAPS, "dave+q", "x.test", "+", ADDR_FIND_BARE_USER, TABLE_FOUND, "bare-dave", "q" },
		{ MAPS, "erin+y", "x.test", "+", ADDR_FIND_BARE_USER, TABLE_FOUND, "bare-erin-ext", NULL },
		{ MAPS, "erin+z", "x.test", "+", ADDR_FIND_BARE_USER, TABLE_FOUND, "bare-erin", "z" },
		{ MAPS, "erin+z", "d.test", "+", ADDR_FIND_BARE_USER, TABLE_FOUND, "bare-erin", "z" },
		{ MAPS, "erin+z", "x.test", "+", 0, TABLE_NOTFOUND, NULL, NULL },
		/* never split: postmaster, MAILER-DAEMON, owner-/-request with '-' */
		{ MAPS, "postmaster", "d.test", "+", 0, TABLE_FOUND, "pm", NULL },
		{ MAPS, "owner-list", "d.test", "-", 0, TABLE_FOUND, "owner", NULL },
		{ MAPS, "owner-other", "d.test", "-", ADDR_FIND_NO_DOMAIN, TABLE_NOTFOUND, NULL, NULL },
		{ MAPS, "list-request", "d.test", "-", 0, TABLE_FOUND, "req", NULL },
		{ MAPS, "bob-request", "d.test", "-", ADDR_FIND_NO_DOMAIN, TABLE_NOTFOUND, NULL, NULL },
		{ "inline:{ mailer=x, @d.test=c }", "MAILER-DAEMON", "d.test", "-", 0, TABLE_FOUND, "c", NULL },
		{ "inline:{ bob@d.test=b }", "bob-request", "d.test", "+-", ADDR_FIND_NO_DOMAIN, TABLE_NOTFOUND, NULL, NULL },
		{ "inline:{ bob@d.test=b }", "bob-x", "d.test", "+-", 0, TABLE_FOUND, "b", "x" },
		/* a local part starting with the delimiter is not split */
		{ MAPS, "+lead", "d.test", "+", 0, TABLE_FOUND, "lead", NULL },
		{ "inline:{ @d.test=c }", "+lead", "d.test", "+", 0, TABLE_FOUND, "c", NULL },
		/* empty domain: local part alone, stripped form, no @domain */
		{ MAPS, "frank", "", "+", 0, TABLE_FOUND, "bare-frank", NULL },
		{ MAPS, "frank+x", "", "+", 0, TABLE_FOUND, "bare-frank", "x" },
		/* lists: the first table that knows a key wins, per search step */
		{ "inline:{ @d.test=catch }, inline:{ bob@d.test=exact }", "bob", "d.test", "+",
		  0, TABLE_FOUND, "exact", NULL },
		/* an empty list finds nothing */
		{ "", "bob", "d.test", "+", 0, TABLE_NOTFOUND, NULL, NULL },
	};
	struct errbuf err;
	struct buf v;

	buf_init(&v, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct table_list *l = table_list_open(cases[i].maps, TABLE_F_FOLD, &err);
		char *ext = (char *)1;
		enum table_status st;

		assert_non_null(l);
		st = addr_find(l, cases[i].local, cases[i].domain, cases[i].delim,
			       cases[i].flags, &v, &ext, &err);
		if (st != cases[i].st)
			fail_msg("case %zu (%s@%s): status %d (%s)", i, cases[i].local,
				 cases[i].domain, st, errbuf_str(&err));
		if (st == TABLE_FOUND)
			assert_string_equal(buf_cstr(&v), cases[i].value);
		if (cases[i].ext) {
			if (ext == NULL)
				fail_msg("case %zu: no extension", i);
			assert_string_equal(ext, cases[i].ext);
		} else if (ext != NULL) {
			fail_msg("case %zu: unexpected extension \"%s\"", i, ext);
		}
		free(ext);
		/* extension_r may be NULL */
		assert_int_equal(addr_find(l, cases[i].local, cases[i].domain,
					   cases[i].delim, cases[i].flags, &v, NULL,
					   &err), cases[i].st);
		table_list_free(&l);
	}
	buf_free(&v);
}

static void
test_errors_stop(void **state)
{
	static const struct {
		const char *maps;
		const char *local;
		enum table_status st;
		const char *err;
	} cases[] = {
		/* found before the failing table is consulted */
		{ "inline:{ a@d.test=1 }, fail:down", "a", TABLE_FOUND, "" },
		/* the full address is tried in every table before user@domain */
		{ "inline:{ a@d.test=1 }, fail:down", "a+x", TABLE_TEMPFAIL,
		  "fail:down lookup error for \"a+x@d.test\": down" },
		{ "fail:down, inline:{ a@d.test=1 }", "a", TABLE_TEMPFAIL,
		  "fail:down lookup error for \"a@d.test\": down" },
		/* the catch-all must not answer for an address a table failed on */
		{ "inline:{ @d.test=all }, fail:down", "zed", TABLE_TEMPFAIL,
		  "fail:down lookup error for \"zed@d.test\": down" },
	};
	struct errbuf err;
	struct buf v;

	buf_init(&v, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct table_list *l = table_list_open(cases[i].maps, TABLE_F_FOLD, &err);
		char *ext = NULL;

		assert_non_null(l);
		assert_int_equal(addr_find(l, cases[i].local, "d.test", "+", 0, &v,
					   &ext, &err), cases[i].st);
		assert_null(ext);
		if (cases[i].st != TABLE_FOUND) {
			assert_string_equal(errbuf_str(&err), cases[i].err);
			assert_int_equal(v.len, 0);
		}
		table_list_free(&l);
	}
	buf_free(&v);
}

static void
test_pattern_tables_full_only(void **state)
{
	char dir[64];
	char *path, *maps;
	struct errbuf err;
	struct buf v;
	struct table_list *l;

	assert_int_equal(testdir_make(dir, sizeof(dir), "facteur-addr-find"), 0);
	/* Would match "@d.test" and "bob@d.test" if given partial keys. */
	path = testdir_write(dir, "re", "/^@/ partial-at\n/^bob@d\\.test$/ "
			     "partial-user\n/^bob\\+x@d\\.test$/ full\n");
	maps = xasprintf("regexp:%s", path);
	l = table_list_open(maps, TABLE_F_FOLD, &err);
	assert_non_null(l);
	buf_init(&v, 0);
	assert_int_equal(addr_find(l, "bob+x", "d.test", "+", 0, &v, NULL, &err), TABLE_FOUND);
	assert_string_equal(buf_cstr(&v), "full");
	assert_int_equal(addr_find(l, "bob+y", "d.test", "+", 0, &v, NULL, &err), TABLE_NOTFOUND);
	assert_int_equal(addr_find(l, "zed", "d.test", "+", 0, &v, NULL, &err), TABLE_NOTFOUND);
	assert_int_equal(addr_find(l, "bob", "d.test", "+", 0, &v, NULL, &err), TABLE_FOUND);
	assert_string_equal(buf_cstr(&v), "partial-user");
	buf_free(&v);
	table_list_free(&l);
	assert_int_equal(testdir_remove(dir), 0);
	free(maps);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_errors_stop),
		cmocka_unit_test(test_pattern_tables_full_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
