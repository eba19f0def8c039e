/*
 * table_cf_test.c - ldap.cf / mysql.cf reading: comments, continuation
 * lines, unknown and repeated names, syntax errors with file and line,
 * booleans and bounded numbers.
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

#include "backends/table_cf.h"
#include "core/lib/xmalloc.h"
#include "testdir.h"

static char dir[64];
static const char *const known[] = {
	"server_host", "search_base", "query_filter", "bind", "timeout",
	"result_attribute", "empty", NULL
};

static char *
write_cf(const char *text)
{
	return testdir_write(dir, "t.cf", text);
}

static void
test_cf_valid(void **state)
{
	char *path = write_cf(
	    "# a comment\n"
	    "server_host = ldap://a.test/\n"
	    "    ldap://b.test/\n"
	    "\n"
	    "search_base=dc=example,dc=test   \n"
	    "  # indented comment inside a continuation\n"
	    "query_filter = (&(mail=%s)\n"
	    "\t(active=TRUE))\n"
	    "bind = yes\n"
	    "timeout = 7\n"
	    "empty =\n"
	    "frobnicate = 1\n"
	    "bind = no\n");
	struct strlist warn;
	struct table_cf *cf;
	struct errbuf err;
	bool b;
	long n;

	strlist_init(&warn);
	assert_int_equal(table_cf_load(path, known, &cf, &warn, &err), TABLE_CF_OK);
	assert_string_equal(table_cf_str(cf, "server_host", NULL),
			    "ldap://a.test/    ldap://b.test/");
	assert_string_equal(table_cf_str(cf, "search_base", NULL), "dc=example,dc=test");
	assert_string_equal(table_cf_str(cf, "query_filter", NULL),
			    "(&(mail=%s)\t(active=TRUE))");
	assert_string_equal(table_cf_str(cf, "empty", "def"), "");
	assert_true(table_cf_has(cf, "empty"));
	assert_false(table_cf_has(cf, "result_attribute"));
	assert_string_equal(table_cf_str(cf, "result_attribute", "maildrop"), "maildrop");
	assert_int_equal(table_cf_bool(cf, "bind", true, &b, &err), 0);
	assert_false(b);	/* the last value wins */
	assert_int_equal(table_cf_long(cf, "timeout", 10, 1, 60, &n, &err), 0);
	assert_int_equal(n, 7);
	assert_int_equal(table_cf_long(cf, "absent", 10, 1, 60, &n, &err), 0);
	assert_int_equal(n, 10);
	assert_int_equal(warn.n, 2);
	assert_non_null(strstr(warn.v[0], "t.cf, line 12: unknown parameter \"frobnicate\""));
	assert_non_null(strstr(warn.v[1], "t.cf, line 13: parameter \"bind\" set again"));
	table_cf_free(&cf);
	assert_null(cf);
	strlist_free(&warn);
	unlink(path);
	free(path);
}

static void
test_cf_values_checked(void **state)
{
	char *path = write_cf("bind = maybe\ntimeout = 99\nserver_host = 5x\n");
	struct table_cf *cf;
	struct errbuf err;
	bool b;
	long n;

	assert_int_equal(table_cf_load(path, known, &cf, NULL, &err), TABLE_CF_OK);
	assert_int_equal(table_cf_bool(cf, "bind", true, &b, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "bind = maybe: expected yes or no"));
	assert_int_equal(table_cf_long(cf, "timeout", 10, 1, 60, &n, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "timeout = 99: expected a number from 1 to 60"));
	assert_int_equal(table_cf_long(cf, "server_host", 10, 1, 60, &n, &err), -1);
	table_cf_free(&cf);
	unlink(path);
	free(path);
}

static void
test_cf_errors(void **state)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
		{ "server_host ldap://x\n", "t.cf, line 1: missing '=' after parameter name" },
		{ "# c\n\n= value\n", "t.cf, line 3: missing '='" },
		{ "a = 1\nb\n", "t.cf, line 2: missing '='" },
		{ "x = \0y\n", "NUL" },
	};
	struct table_cf *cf;
	struct errbuf err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *path = xasprintf("%s/t.cf", dir);
		FILE *fp = fopen(path, "w");

		assert_non_null(fp);
		fwrite(cases[i].text, 1, i == 3 ? 8 : strlen(cases[i].text), fp);
		fclose(fp);
		assert_int_equal(table_cf_load(path, known, &cf, NULL, &err), TABLE_CF_SYNTAX);
		assert_null(cf);
		if (strstr(errbuf_str(&err), cases[i].want) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, errbuf_str(&err),
				 cases[i].want);
		unlink(path);
		free(path);
	}
	assert_int_equal(table_cf_load("/nonexistent/x.cf", known, &cf, NULL, &err),
			 TABLE_CF_UNREADABLE);
	assert_non_null(strstr(errbuf_str(&err), "/nonexistent/x.cf"));
}

static int
setup(void **state)
{
	return testdir_make(dir, sizeof(dir), "facteur-cf-test");
}

static int
teardown(void **state)
{
	return testdir_remove(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cf_valid),
		cmocka_unit_test(test_cf_values_checked),
		cmocka_unit_test(test_cf_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
