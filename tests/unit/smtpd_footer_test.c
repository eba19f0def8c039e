/*
 * smtpd_footer_test.c - smtpd_reject_footer expansion (core/smtpd_footer.c)
 * and the EHLO keyword filter (core/smtpd_knobs.c): footer only on 4xx/5xx,
 * "\n" breaks repeating code and enhanced code, a leading "\c" joins,
 * $name lookups (unknown = empty, control characters made spaces), replies
 * without an enhanced code, already multi-line replies; EHLO lines removed
 * with the last line turned into "250 ".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/lib/buf.h"
#include "core/smtpd_footer.h"
#include "core/smtpd_knobs.h"

static const char *
vars(const char *name, void *ctx)
{
	(void)ctx;
	if (strcmp(name, "client_address") == 0)
		return "192.0.2.1";
	if (strcmp(name, "evil") == 0)
		return "a\r\nb";
	return NULL;
}

static char *
apply(const char *reply, const char *tmpl, int *rc)
{
	struct buf b;

	buf_init(&b, 0);
	buf_puts(&b, reply);
	*rc = smtpd_footer_apply(&b, tmpl, vars, NULL);
	return buf_steal(&b);
}

static void
test_footer(void **state)
{
	static const struct {
		const char *reply, *tmpl, *want;
		int rc;
	} cases[] = {
		{ "550 5.1.1 <a@b>: User unknown", "Call 555 ($client_address)",
		  "550-5.1.1 <a@b>: User unknown\r\n550 5.1.1 Call 555 (192.0.2.1)", 1 },
		{ "450 4.7.1 Try later", "one\\ntwo",
		  "450-4.7.1 Try later\r\n450-4.7.1 one\r\n450 4.7.1 two", 1 },
		{ "554 5.7.1 No", "\\c, see http://x/",
		  "554 5.7.1 No, see http://x/", 1 },
		{ "554 5.7.1 No", "\\c!\\nmore",
		  "554-5.7.1 No!\r\n554 5.7.1 more", 1 },
		{ "421 mx closing", "bye $nosuch.",
		  "421-mx closing\r\n421 bye .", 1 },
		{ "550-5.1.1 first\r\n550 5.1.1 second", "foot",
		  "550-5.1.1 first\r\n550-5.1.1 second\r\n550 5.1.1 foot", 1 },
		{ "550 5.1.1 x", "[$evil] $$5",
		  "550-5.1.1 x\r\n550 5.1.1 [a  b] $5", 1 },
		{ "250 2.0.0 Ok", "foot", "250 2.0.0 Ok", 0 },
		{ "354 End data with <CR><LF>.<CR><LF>", "foot",
		  "354 End data with <CR><LF>.<CR><LF>", 0 },
		{ "550 5.1.1 x", "", "550 5.1.1 x", 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;
		char *got = apply(cases[i].reply, cases[i].tmpl, &rc);

		if (strcmp(got, cases[i].want) != 0 || rc != cases[i].rc)
			fail_msg("case %zu: got \"%s\" (%d), want \"%s\" (%d)", i,
				 got, rc, cases[i].want, cases[i].rc);
		free(got);
	}
}

static void
test_ehlo_filter(void **state)
{
	const char *ehlo = "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n"
			   "250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n"
			   "250-DSN\r\n250 CHUNKING\r\n";
	struct buf names;
	char *out;
	unsigned m;

	(void)state;
	m = smtpd_knobs_ehlo_parse("pipelining, CHUNKING auth bogus");
	assert_int_equal(m, SMTPD_EHLO_PIPELINING | SMTPD_EHLO_CHUNKING |
			 SMTPD_EHLO_AUTH);
	buf_init(&names, 0);
	out = smtpd_knobs_ehlo_filter(ehlo, m, &names);
	assert_string_equal(out, "250-mx.test\r\n250-SIZE 1000\r\n250 DSN\r\n");
	assert_string_equal(buf_cstr(&names), "PIPELINING AUTH CHUNKING");
	free(out);
	buf_free(&names);
	/* everything but the host name: it stays, as the last line */
	out = smtpd_knobs_ehlo_filter(ehlo, ~0u, NULL);
	assert_string_equal(out, "250 mx.test\r\n");
	free(out);
	out = smtpd_knobs_ehlo_filter(ehlo, 0, NULL);
	assert_string_equal(out, ehlo);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_footer),
		cmocka_unit_test(test_ehlo_filter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
