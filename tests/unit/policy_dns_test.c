/*
 * policy_dns_test.c - the pure parts of the DNS restrictions: DNSBL reply
 * filters in Postfix's syntax (valid and malformed, matching and not) and
 * rbl reply template expansion ($name, ${name}, ${name?text},
 * ${name:text}, $$, unknown names and bad syntax). Lookups themselves are
 * tested against dnsmasq in tests/integration/test_policy_dns.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/policy_dns.h"

struct filter_case {
	const char *filter;
	int         valid;
	const char *ip;
	int         match;
};

static const struct filter_case filter_cases[] = {
	{ "127.0.0.2", 1, "127.0.0.2", 1 },
	{ "127.0.0.2", 1, "127.0.0.3", 0 },
	{ "127.0.0.[2..11]", 1, "127.0.0.2", 1 },
	{ "127.0.0.[2..11]", 1, "127.0.0.11", 1 },
	{ "127.0.0.[2..11]", 1, "127.0.0.12", 0 },
	{ "127.0.0.[2..11]", 1, "127.0.0.1", 0 },
	{ "127.0.0.[2;4;10..11]", 1, "127.0.0.4", 1 },
	{ "127.0.0.[2;4;10..11]", 1, "127.0.0.3", 0 },
	{ "127.0.[0..1].[2;4]", 1, "127.0.1.4", 1 },
	{ "127.0.[0..1].[2;4]", 1, "127.0.2.4", 0 },
	{ "127.0.0.2", 1, "not-an-ip", 0 },
	{ "127.0.0", 0, NULL, 0 },
	{ "127.0.0.2.1", 0, NULL, 0 },
	{ "127.0.0.256", 0, NULL, 0 },
	{ "127.0.0.[2..1]", 0, NULL, 0 },
	{ "127.0.0.[2..", 0, NULL, 0 },
	{ "127.0.0.[]", 0, NULL, 0 },
	{ "127.0.0.[2;]", 0, NULL, 0 },
	{ "127.0.0.x", 0, NULL, 0 },
	{ "", 0, NULL, 0 },
	{ "127.0.0.0002", 0, NULL, 0 },
};

static void
test_filter(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(filter_cases) / sizeof(filter_cases[0]); i++) {
		const struct filter_case *c = &filter_cases[i];
		struct errbuf err;
		int rc;

		errbuf_clear(&err);
		rc = policy_dns_filter_check(c->filter, &err);
		if ((rc == 0) != c->valid)
			fail_msg("case %zu \"%s\": valid=%d", i, c->filter, rc == 0);
		if (!c->valid) {
			assert_non_null(strstr(errbuf_str(&err), c->filter));
			continue;
		}
		if (policy_dns_filter_match(c->filter, c->ip) != (c->match != 0))
			fail_msg("case %zu \"%s\" vs %s: want %d", i, c->filter,
				 c->ip, c->match);
	}
}

static const char *
vars(void *ctx, const char *name)
{
	(void)ctx;
	if (strcmp(name, "rbl_code") == 0)
		return "554";
	if (strcmp(name, "rbl_reason") == 0)
		return "listed";
	if (strcmp(name, "empty") == 0)
		return "";
	if (strcmp(name, "what") == 0)
		return "192.0.2.1";
	return NULL;
}

struct expand_case {
	const char *tmpl;
	const char *out;	/* NULL: error */
	const char *err;
};

static const struct expand_case expand_cases[] = {
	{ "plain text", "plain text", NULL },
	{ "$rbl_code Service unavailable", "554 Service unavailable", NULL },
	{ "${rbl_code} x [$what]", "554 x [192.0.2.1]", NULL },
	{ "$(rbl_code)", "554", NULL },
	{ "a${rbl_reason?; $rbl_reason}b", "a; listedb", NULL },
	{ "a${empty?; $rbl_reason}b", "ab", NULL },
	{ "a${empty:none}b", "anoneb", NULL },
	{ "a${rbl_reason:none}b", "ab", NULL },
	{ "cost $$5", "cost $5", NULL },
	{ "${rbl_reason?{nested ${what}}}", "{nested 192.0.2.1}", NULL },
	{ "$bogus", NULL, "unknown name \"bogus\"" },
	{ "${bogus?x}", NULL, "unknown name \"bogus\"" },
	{ "${rbl_code", NULL, "bad $ syntax" },
	{ "$", NULL, "bad $ syntax" },
	{ "${}", NULL, "bad $ syntax" },
	{ "${empty?${empty?${empty?${empty?${empty?${empty?${empty?${empty?"
	  "${empty?${empty?${empty?${empty?x}}}}}}}}}}}}", "", NULL },
};

static void
test_expand(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(expand_cases) / sizeof(expand_cases[0]); i++) {
		const struct expand_case *c = &expand_cases[i];
		struct buf out;
		struct errbuf err;
		int rc;

		buf_init(&out, 1024);
		errbuf_clear(&err);
		rc = policy_dns_expand(c->tmpl, vars, NULL, &out, &err);
		if (c->out != NULL) {
			if (rc != 0 || strcmp(buf_cstr(&out), c->out) != 0)
				fail_msg("case %zu \"%s\": rc=%d out=\"%s\" err=%s", i,
					 c->tmpl, rc, buf_cstr(&out), errbuf_str(&err));
		} else {
			if (rc == 0 || strstr(errbuf_str(&err), c->err) == NULL)
				fail_msg("case %zu \"%s\": rc=%d err=%s", i, c->tmpl,
					 rc, errbuf_str(&err));
		}
		buf_free(&out);
	}
}

static void
test_long_result(void **state)
{
	struct buf out;
	struct errbuf err;
	char tmpl[300];

	(void)state;
	memset(tmpl, 'x', sizeof(tmpl) - 1);
	tmpl[sizeof(tmpl) - 1] = '\0';
	buf_init(&out, 100);
	errbuf_clear(&err);
	assert_int_equal(policy_dns_expand(tmpl, vars, NULL, &out, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "too long"));
	buf_free(&out);
}

static void
test_bad_servers(void **state)
{
	struct errbuf err;
	struct policy_dns *p;

	(void)state;
	errbuf_clear(&err);
	assert_null(policy_dns_new("300.1.1.1:53", 1000, &err));
	assert_non_null(strstr(errbuf_str(&err), "facteur_dns_servers"));
	p = policy_dns_new("127.0.0.1:5353", 1000, &err);
	assert_non_null(p);
	policy_dns_free(&p);
	assert_null(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_long_result),
		cmocka_unit_test(test_bad_servers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
