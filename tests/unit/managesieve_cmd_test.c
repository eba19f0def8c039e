/*
 * managesieve_cmd_test.c - the ManageSieve command parser: atoms, quoted
 * strings with escapes, literals {n} and {n+}, every byte prefix of a
 * valid command asking for more, syntax errors skipping to the line end,
 * oversized literals and lines, reply quoting, script names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/managesieve_cmd.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct ok_case {
	const char *in;
	size_t      inlen;	/* 0: strlen */
	size_t      n;
	const char *tok[MSV_TOKENS_MAX];
	size_t      toklen[MSV_TOKENS_MAX];	/* 0: strlen */
	int         atom[MSV_TOKENS_MAX];
};

static const struct ok_case ok_cases[] = {
	{ "LOGOUT\r\n", 0, 1, { "LOGOUT" }, { 0 }, { 1 } },
	{ "noop\n", 0, 1, { "noop" }, { 0 }, { 1 } },
	{ "NOOP \"a \\\"b\\\\\"\r\n", 0, 2, { "NOOP", "a \"b\\" }, { 0 },
	  { 1, 0 } },
	{ "HAVESPACE \"x\" 123\r\n", 0, 3, { "HAVESPACE", "x", "123" }, { 0 },
	  { 1, 0, 1 } },
	{ "PUTSCRIPT \"s\" {5+}\r\nkeep;\r\n", 0, 3,
	  { "PUTSCRIPT", "s", "keep;" }, { 0 }, { 1, 0, 0 } },
	{ "PUTSCRIPT \"s\" {6}\r\na\r\nb\"}\r\n", 0, 3,
	  { "PUTSCRIPT", "s", "a\r\nb\"}" }, { 0 }, { 1, 0, 0 } },
	{ "CHECKSCRIPT {3+}\r\na\0b\r\n", 23, 2, { "CHECKSCRIPT", "a\0b" },
	  { 0, 3 }, { 1, 0 } },
	{ "SETACTIVE \"\"\r\n", 0, 2, { "SETACTIVE", "" }, { 0 }, { 1, 0 } },
	{ "{4+}\r\nAAAA\r\n", 0, 1, { "AAAA" }, { 0 }, { 0 } },
	{ "LISTSCRIPTS  \r\n", 0, 1, { "LISTSCRIPTS" }, { 0 }, { 1 } },
};

static void
test_ok(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		const struct ok_case *t = &ok_cases[i];
		size_t len = t->inlen ? t->inlen : strlen(t->in), used = 0, need;
		struct msv_cmd c;
		const char *why;

		assert_int_equal(msv_parse(t->in, len, 100, &c, &used, &need,
					   &why), MSV_OK);
		assert_int_equal(used, len);
		assert_int_equal(c.n, t->n);
		for (size_t k = 0; k < t->n; k++) {
			size_t tl = t->toklen[k] ? t->toklen[k]
						 : strlen(t->tok[k]);
			assert_int_equal(c.v[k].len, tl);
			assert_memory_equal(c.v[k].s, t->tok[k], tl);
			assert_int_equal(c.v[k].atom, t->atom[k]);
		}
		msv_cmd_free(&c);
		/* every prefix asks for more, and for no more than it lacks */
		for (size_t p = 0; p < len; p++) {
			need = 0;
			assert_int_equal(msv_parse(t->in, p, 100, &c, &used,
						   &need, &why), MSV_MORE);
			assert_true(need > p && need <= len);
			assert_int_equal(c.n, 0);
		}
	}
}

/* Two commands buffered: the first is returned, the rest left. */
static void
test_pipelined(void **state)
{
	const char in[] = "NOOP\r\nLOGOUT\r\n";
	struct msv_cmd c;
	size_t used, need;
	const char *why;

	(void)state;
	assert_int_equal(msv_parse(in, sizeof(in) - 1, 10, &c, &used, &need,
				   &why), MSV_OK);
	assert_int_equal(used, 6);
	msv_cmd_free(&c);
}

struct bad_case {
	const char *in;
	int         rc;
	size_t      used;	/* BAD: bytes skipped */
};

static const struct bad_case bad_cases[] = {
	{ "\r\n", MSV_BAD, 2 },
	{ "NOOP \"a\rb\"\r\nNOOP\r\n", MSV_BAD, 12 },
	{ "NOOP \"a\\qb\"\r\n", MSV_BAD, 13 },
	{ "NOOP \"x\"y\r\n", MSV_BAD, 11 },
	{ "NOOP (x)\r\n", MSV_BAD, 10 },
	{ "A B C D E\r\n", MSV_BAD, 11 },
	{ "PUTSCRIPT {x}\r\n", MSV_BAD, 15 },
	{ "NOOP\rX\r\n", MSV_BAD, 8 },
	{ "PUTSCRIPT \"a\" {101+}\r\n", MSV_FATAL, 0 },
	{ "PUTSCRIPT \"a\" {99999999999999999999+}\r\n", MSV_FATAL, 0 },
	{ "PUTSCRIPT {60+}\r\n", MSV_MORE, 0 },
};

static void
test_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *t = &bad_cases[i];
		struct msv_cmd c;
		size_t used = 0, need = 0;
		const char *why = NULL;
		int rc = msv_parse(t->in, strlen(t->in), 100, &c, &used, &need,
				   &why);

		assert_int_equal(rc, t->rc);
		assert_int_equal(c.n, 0);
		if (rc == MSV_BAD)
			assert_int_equal(used, t->used);
		if (rc < 0)
			assert_non_null(why);
	}
}

/* Two literals may not together exceed the limit. */
static void
test_literal_total(void **state)
{
	const char in[] = "X {60+}\r\n";
	char big[200];
	struct msv_cmd c;
	size_t used, need, n;
	const char *why;

	(void)state;
	n = (size_t)snprintf(big, sizeof(big), "%s", in);
	memset(big + n, 'a', 60);
	n += 60;
	n += (size_t)snprintf(big + n, sizeof(big) - n, " {50+}\r\n");
	assert_int_equal(msv_parse(big, n, 100, &c, &used, &need, &why),
			 MSV_FATAL);
}

static void
test_long_line(void **state)
{
	size_t n = MSV_LINE_MAX + 10;
	char *p = malloc(n);
	struct msv_cmd c;
	size_t used, need;
	const char *why;

	(void)state;
	memset(p, 'A', n);
	assert_int_equal(msv_parse(p, n, 100, &c, &used, &need, &why),
			 MSV_FATAL);
	memcpy(p, "NOOP \"", 6);
	assert_int_equal(msv_parse(p, n, 100, &c, &used, &need, &why),
			 MSV_FATAL);
	free(p);
}

static void
test_quote(void **state)
{
	struct buf b;
	char big[MSV_QUOTED_MAX + 1];

	(void)state;
	buf_init(&b, 0);
	msv_quote(&b, "a\"b\\", 4);
	assert_string_equal(buf_cstr(&b), "\"a\\\"b\\\\\"");
	buf_reset(&b);
	msv_quote(&b, "1:2: x\r\ny", 9);
	assert_string_equal(buf_cstr(&b), "{9}\r\n1:2: x\r\ny");
	buf_reset(&b);
	memset(big, 'x', sizeof(big));
	msv_quote(&b, big, sizeof(big));
	assert_memory_equal(buf_cstr(&b), "{1025}\r\n", 8);
	buf_free(&b);
}

static void
test_names(void **state)
{
	static const struct { const char *s; int ok; } cases[] = {
		{ "main", 1 }, { "my filter", 1 }, { "r\xc3\xa9gles", 1 },
		{ "", 0 }, { ".hidden", 0 }, { "a/b", 0 }, { "..", 0 },
		{ "a\tb", 0 }, { "bad\xc3", 0 }, { "bad\xc0\xaf", 0 },
		{ "x\x7f", 0 },
	};
	char longname[130];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(msv_name_ok(cases[i].s, strlen(cases[i].s)),
				 cases[i].ok);
	memset(longname, 'n', sizeof(longname));
	assert_false(msv_name_ok(longname, sizeof(longname)));
	assert_true(msv_name_ok(longname, 128));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_literal_total),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
