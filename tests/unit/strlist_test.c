/*
 * strlist_test.c - string vectors and Postfix list splitting: commas and/or
 * white space between items, {...} groups kept whole with their braces,
 * unbalanced braces refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/lib/strlist.h"

struct split_case {
	const char *value;
	int         rc;
	const char *items[8];	/* NULL-terminated; ignored when rc < 0 */
};

static const struct split_case split_cases[] = {
	{ "", 0, { NULL } },
	{ "   ", 0, { NULL } },
	{ ",,, ,", 0, { NULL } },
	{ "\t\n\r\v\f", 0, { NULL } },
	{ "a", 0, { "a", NULL } },
	{ "a,b", 0, { "a", "b", NULL } },
	{ "a b", 0, { "a", "b", NULL } },
	{ "a, b", 0, { "a", "b", NULL } },
	{ " a ,\tb ,, c ", 0, { "a", "b", "c", NULL } },
	{ "a\n\tb", 0, { "a", "b", NULL } },	/* continuation line */
	{ "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
	  0, { "permit_mynetworks", "permit_sasl_authenticated",
	       "defer_unauth_destination", NULL } },
	{ "127.0.0.0/8 [::1]/128 [fe80::]/64", 0,
	  { "127.0.0.0/8", "[::1]/128", "[fe80::]/64", NULL } },
	{ "texthash:/etc/a, ldap:/etc/b.cf", 0,
	  { "texthash:/etc/a", "ldap:/etc/b.cf", NULL } },
	/* brace groups stay one item, braces and inner separators kept */
	{ "inline:{ a=b, c=d }", 0, { "inline:{ a=b, c=d }", NULL } },
	{ "x, inline:{a=1 b=2}, y", 0, { "x", "inline:{a=1 b=2}", "y", NULL } },
	{ "{ a b }", 0, { "{ a b }", NULL } },
	{ "{}", 0, { "{}", NULL } },
	{ "{a}{b} c", 0, { "{a}{b}", "c", NULL } },
	{ "pre{ x, y }post z", 0, { "pre{ x, y }post", "z", NULL } },
	{ "inline:{ { k = v1, v2 }, k2=v }", 0,
	  { "inline:{ { k = v1, v2 }, k2=v }", NULL } },
	{ "fail:{ldap down}", 0, { "fail:{ldap down}", NULL } },
	/* unbalanced */
	{ "{", -1, { NULL } },
	{ "}", -1, { NULL } },
	{ "a, {b, c", -1, { NULL } },
	{ "a, b}", -1, { NULL } },
	{ "inline:{ a=b", -1, { NULL } },
	{ "inline:{ a=b }}", -1, { NULL } },
	{ "{{a}", -1, { NULL } },
	{ "a} {b", -1, { NULL } },
};

static void
test_split(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++) {
		const struct split_case *c = &split_cases[i];
		struct strlist l;
		size_t n = 0;
		int rc;

		strlist_init(&l);
		rc = strlist_split(&l, c->value);
		if (rc != c->rc)
			fail_msg("\"%s\": rc %d, want %d", c->value, rc, c->rc);
		if (rc == 0) {
			while (c->items[n] != NULL)
				n++;
			if (l.n != n)
				fail_msg("\"%s\": %zu items, want %zu", c->value,
					 l.n, n);
			for (size_t k = 0; k < n; k++)
				if (strcmp(l.v[k], c->items[k]) != 0)
					fail_msg("\"%s\": item %zu \"%s\", want "
						 "\"%s\"", c->value, k, l.v[k],
						 c->items[k]);
			if (n > 0)
				assert_null(l.v[n]);
			else
				assert_true(l.v == NULL || l.v[0] == NULL);
		}
		/* whatever happened, the list is consistent and freeable */
		for (size_t k = 0; k < l.n; k++)
			assert_non_null(l.v[k]);
		strlist_free(&l);
		assert_int_equal(l.n, 0);
		assert_null(l.v);
	}
}

/* strlist_split appends to what is already there. */
static void
test_split_appends(void **state)
{
	struct strlist l;

	(void)state;
	strlist_init(&l);
	strlist_add(&l, "first");
	assert_int_equal(strlist_split(&l, "a, b"), 0);
	assert_int_equal(strlist_split(&l, "c"), 0);
	assert_int_equal(strlist_split(&l, ""), 0);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.v[0], "first");
	assert_string_equal(l.v[1], "a");
	assert_string_equal(l.v[2], "b");
	assert_string_equal(l.v[3], "c");
	assert_null(l.v[4]);
	/* an error keeps the items that were already there */
	assert_int_equal(strlist_split(&l, "{"), -1);
	assert_true(l.n >= 4);
	assert_string_equal(l.v[3], "c");
	strlist_free(&l);
}

static void
test_add_contains(void **state)
{
	struct strlist l;
	char name[32];

	(void)state;
	strlist_init(&l);
	assert_int_equal(l.n, 0);
	assert_false(strlist_contains(&l, "a"));
	assert_false(strlist_contains(&l, ""));
	/* many adds across reallocations; v[n] stays NULL */
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "item%d", i);
		strlist_add(&l, name);
		assert_int_equal(l.n, (size_t)i + 1);
		assert_null(l.v[l.n]);
	}
	for (int i = 0; i < 1000; i += 37) {
		snprintf(name, sizeof(name), "item%d", i);
		assert_true(strlist_contains(&l, name));
		assert_string_equal(l.v[i], name);
	}
	/* exact match only: no case folding, no prefixes */
	assert_false(strlist_contains(&l, "ITEM1"));
	assert_false(strlist_contains(&l, "item"));
	assert_false(strlist_contains(&l, "item10000"));
	/* strlist_add copies */
	snprintf(name, sizeof(name), "volatile");
	strlist_add(&l, name);
	name[0] = 'X';
	assert_string_equal(l.v[1000], "volatile");
	/* addn takes exactly len bytes, even from a longer string */
	strlist_addn(&l, "abcdef", 3);
	assert_string_equal(l.v[1001], "abc");
	strlist_addn(&l, "abc", 0);
	assert_string_equal(l.v[1002], "");
	assert_true(strlist_contains(&l, ""));
	assert_int_equal(l.n, 1003);
	strlist_free(&l);
	assert_int_equal(l.n, 0);
	assert_null(l.v);
	/* reusable after free */
	strlist_add(&l, "x");
	assert_true(strlist_contains(&l, "x"));
	strlist_free(&l);
}

/* A long value with many items, and one very long item. */
static void
test_split_large(void **state)
{
	struct strlist l;
	char *v, *big;
	size_t len = 0, cap = 10000 * 12;

	(void)state;
	v = malloc(cap);
	assert_non_null(v);
	for (int i = 0; i < 10000; i++)
		len += (size_t)snprintf(v + len, cap - len, "%s%d",
					i % 2 ? ", " : " ", i);
	strlist_init(&l);
	assert_int_equal(strlist_split(&l, v), 0);
	assert_int_equal(l.n, 10000);
	assert_string_equal(l.v[0], "0");
	assert_string_equal(l.v[9999], "9999");
	strlist_free(&l);
	free(v);

	big = malloc(100001);
	assert_non_null(big);
	memset(big, 'x', 100000);
	big[0] = '{';
	big[99999] = '}';
	big[100000] = '\0';
	big[500] = ' ';
	big[501] = ',';
	assert_int_equal(strlist_split(&l, big), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(strlen(l.v[0]), 100000);
	strlist_free(&l);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_split_appends),
		cmocka_unit_test(test_add_contains),
		cmocka_unit_test(test_split_large),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
