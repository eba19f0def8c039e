/*
 * table_expand_test.c - %-expansion of query and result templates, the
 * domain restriction, and LDAP filter / DN quoting (RFC 4515, RFC 4514).
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

#include "backends/table_expand.h"
#include "core/lib/xmalloc.h"
#include "testdir.h"

struct xcase {
	const char *format;
	bool        query;
	const char *value;
	const char *key;	/* NULL for query templates */
	int         rc;		/* 1 expanded, 0 skipped */
	const char *want;
};

static const struct xcase xcases[] = {
	{ "mail=%s", true, "alice@example.test", NULL, 1, "mail=alice@example.test" },
	{ "u=%u d=%d", true, "alice@example.test", NULL, 1, "u=alice d=example.test" },
	{ "u=%u", true, "alice", NULL, 1, "u=alice" },
	{ "u=%U S=%S D=%D", true, "a@b.c", NULL, 1, "u=a S=a@b.c D=b.c" },
	{ "d=%d", true, "alice", NULL, 0, "" },			/* no domain */
	{ "d=%d", true, "alice@", NULL, 0, "" },		/* empty domain */
	{ "u=%u", true, "@example.test", NULL, 0, "" },	/* empty local part */
	{ "s=%s", true, "@example.test", NULL, 1, "s=@example.test" },
	{ "%1.%2.%3", true, "x@mail.example.test", NULL, 1, "test.example.mail" },
	{ "%3", true, "x@example.test", NULL, 0, "" },	/* too few labels */
	{ "%2", true, "x@example..test", NULL, 0, "" },	/* empty label */
	{ "%1", true, "x@example.test.", NULL, 0, "" },	/* trailing dot */
	{ "100%% %s", true, "k", NULL, 1, "100% k" },
	{ "%s", true, "", NULL, 0, "" },			/* empty key */
	/* result templates: lower case = result, upper case = key */
	{ "%u@other.test", false, "bob@example.test", "k@x.y", 1, "bob@other.test" },
	{ "%s via %S", false, "v", "key@x.y", 1, "v via key@x.y" },
	{ "%d", false, "nodomain", "k@x.y", 0, "" },
	{ "%U+%D", false, "v", "key@x.y", 1, "key+x.y" },
	{ "%D", false, "v", "keyonly", 0, "" },
	{ "%1", false, "v", "k@a.b", 1, "b" },
};

static void
test_expand_table(void **state)
{
	for (size_t i = 0; i < sizeof(xcases) / sizeof(*xcases); i++) {
		const struct xcase *c = &xcases[i];
		struct table_expand x;
		struct errbuf err;
		struct buf out;
		int rc;

		table_expand_init(&x, "test:x");
		assert_true(table_expand_parse(&x, c->format, c->query, &err) >= 0);
		buf_init(&out, 4096);
		rc = table_expand(&x, c->format, c->value, c->key, &out, NULL, NULL, &err);
		if (rc != c->rc || strcmp(buf_cstr(&out), c->want) != 0)
			fail_msg("case %zu %s: rc %d \"%s\", want %d \"%s\"", i,
				 c->format, rc, buf_cstr(&out), c->rc, c->want);
		buf_free(&out);
		table_expand_free(&x);
	}
}

static void
test_expand_parse_errors(void **state)
{
	static const char *bad[] = { "%", "x=%x", "%0", "%(uid)", "a%" };
	static const char *good[] = { "plain", "%%", "%s%u%d%S%U%D%1%9" };
	struct table_expand x;
	struct errbuf err;

	table_expand_init(&x, "ldap:/f.cf");
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_int_equal(table_expand_parse(&x, bad[i], true, &err), -1);
		assert_non_null(strstr(errbuf_str(&err), "ldap:/f.cf: invalid query template"));
	}
	assert_int_equal(table_expand_parse(&x, "plain", true, &err), 0);
	assert_int_equal(table_expand_parse(&x, "%%", true, &err), 0);
	assert_int_equal(table_expand_parse(&x, good[2], true, &err), 1);
	table_expand_free(&x);
}

static void
test_expand_results_accumulate_and_limit(void **state)
{
	struct table_expand x;
	struct errbuf err;
	struct buf out;

	table_expand_init(&x, "t");
	assert_int_equal(table_expand_parse(&x, "%s", false, &err), 1);
	buf_init(&out, 10);
	assert_int_equal(table_expand(&x, "%s", "abc", "k", &out, NULL, NULL, &err), 1);
	assert_int_equal(table_expand(&x, "%s", "def", "k", &out, NULL, NULL, &err), 1);
	assert_string_equal(buf_cstr(&out), "abc,def");
	/* Over the limit: an error, and out is left as it was. */
	assert_int_equal(table_expand(&x, "%s", "ghijk", "k", &out, NULL, NULL, &err), -1);
	assert_string_equal(buf_cstr(&out), "abc,def");
	assert_non_null(strstr(errbuf_str(&err), "longer than 10 bytes"));
	buf_free(&out);
	table_expand_free(&x);
}

struct qcase {
	const char *in, *want;
};

static const struct qcase filter_cases[] = {
	{ "alice@example.test", "alice@example.test" },
	{ "a*)(uid=*@hosted", "a\\2a\\29\\28uid=\\2a@hosted" },
	{ "back\\slash", "back\\5cslash" },
	{ "tab\there", "tab\\09here" },
	{ "caf\xc3\xa9", "caf\xc3\xa9" },	/* UTF-8 stays as it is */
	{ "", "" },
};

static const struct qcase dn_cases[] = {
	{ "example.test", "example.test" },
	{ "a,b+c;d", "a\\,b\\+c\\;d" },
	{ "\"<x>\"", "\\\"\\<x\\>\\\"" },
	{ "uid=x,dc=evil", "uid\\=x\\,dc\\=evil" },
	{ " lead", "\\ lead" },
	{ "#hash", "\\#hash" },
	{ "mid#dle", "mid#dle" },
	{ "trail ", "trail\\ " },
	{ "back\\", "back\\\\" },
	{ "nl\n", "nl\\0a" },
};

static void
run_quote(table_quote_fn q, const struct qcase *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct errbuf err;
		struct buf out;

		buf_init(&out, 1024);
		assert_int_equal(q(NULL, cases[i].in, &out, &err), 0);
		if (strcmp(buf_cstr(&out), cases[i].want) != 0)
			fail_msg("quote \"%s\": got \"%s\", want \"%s\"",
				 cases[i].in, buf_cstr(&out), cases[i].want);
		buf_free(&out);
	}
}

static void
test_quote_ldap_filter(void **state)
{
	run_quote(table_quote_ldap_filter, filter_cases,
		  sizeof(filter_cases) / sizeof(*filter_cases));
}

static void
test_quote_ldap_dn(void **state)
{
	run_quote(table_quote_ldap_dn, dn_cases, sizeof(dn_cases) / sizeof(*dn_cases));
}

static void
test_quote_through_expand(void **state)
{
	struct table_expand x;
	struct errbuf err;
	struct buf out;
	const char *f = "(&(objectClass=x)(mail=%s))";

	table_expand_init(&x, "ldap:t");
	assert_int_equal(table_expand_parse(&x, f, true, &err), 1);
	buf_init(&out, 4096);
	assert_int_equal(table_expand(&x, f, "a*)(uid=*@hosted", NULL, &out,
				      table_quote_ldap_filter, NULL, &err), 1);
	assert_string_equal(buf_cstr(&out),
			    "(&(objectClass=x)(mail=a\\2a\\29\\28uid=\\2a@hosted))");
	/* A quoted value that does not fit leaves nothing behind. */
	{
		struct buf small;

		buf_init(&small, 30);
		assert_int_equal(table_expand(&x, f, "((((((((((", NULL, &small,
					      table_quote_ldap_filter, NULL, &err), -1);
		assert_int_equal(small.len, 0);
		buf_free(&small);
	}
	buf_free(&out);
	table_expand_free(&x);
}

static void
test_domain_restriction(void **state)
{
	char dir[64];
	struct table_expand x;
	struct errbuf err;
	char *file;

	assert_int_equal(testdir_make(dir, sizeof(dir), "facteur-expand-test"), 0);
	file = testdir_write(dir, "domains", "# hosted\nfile.test other.file.test\n");

	table_expand_init(&x, "mysql:t");
	/* Without a restriction every key is looked up. */
	assert_int_equal(table_expand_check_domain(&x, "anything", &err), TABLE_FOUND);
	{
		char *list = xasprintf("!bad.test, Example.TEST, %s, inline:{tab.test=1}, fail:down",
				       file);
		assert_int_equal(table_expand_set_domain(&x, list, &err), 0);
		free(list);
	}
	assert_int_equal(table_expand_check_domain(&x, "a@example.test", &err), TABLE_FOUND);
	assert_int_equal(table_expand_check_domain(&x, "a@EXAMPLE.test", &err), TABLE_FOUND);
	assert_int_equal(table_expand_check_domain(&x, "a@other.file.test", &err), TABLE_FOUND);
	assert_int_equal(table_expand_check_domain(&x, "a@tab.test", &err), TABLE_FOUND);
	/* Keys without a local part or a domain are never looked up. */
	assert_int_equal(table_expand_check_domain(&x, "example.test", &err), TABLE_NOTFOUND);
	assert_int_equal(table_expand_check_domain(&x, "@example.test", &err), TABLE_NOTFOUND);
	assert_int_equal(table_expand_check_domain(&x, "a@", &err), TABLE_NOTFOUND);
	/* Exclusion first, sub-domains do not match. */
	assert_int_equal(table_expand_check_domain(&x, "a@bad.test", &err), TABLE_NOTFOUND);
	/* Unlisted: reaches fail:down, which cannot answer. */
	assert_int_equal(table_expand_check_domain(&x, "a@sub.example.test", &err), TABLE_TEMPFAIL);
	assert_non_null(strstr(errbuf_str(&err), "down"));
	table_expand_free(&x);

	table_expand_init(&x, "mysql:t");
	assert_int_equal(table_expand_set_domain(&x, "example.test", &err), 0);
	assert_int_equal(table_expand_check_domain(&x, "a@elsewhere.test", &err), TABLE_NOTFOUND);
	assert_int_equal(table_expand_set_domain(&x, "nosuch:x", &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "unsupported dictionary type"));
	assert_int_equal(table_expand_set_domain(&x, "/nonexistent/file", &err), -1);
	table_expand_free(&x);

	assert_int_equal(testdir_remove(dir), 0);
	free(file);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand_table),
		cmocka_unit_test(test_expand_parse_errors),
		cmocka_unit_test(test_expand_results_accumulate_and_limit),
		cmocka_unit_test(test_quote_ldap_filter),
		cmocka_unit_test(test_quote_ldap_dn),
		cmocka_unit_test(test_quote_through_expand),
		cmocka_unit_test(test_domain_restriction),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
