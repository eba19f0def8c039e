/*
 * postscreen_dnsbl_test.c - the postscreen_dnsbl_sites parser and the
 * scoring of DNSBL replies: weights (default 1, *N, negative for
 * allowlists), reply filters (=127.0.0.2, =127.0.0.[2..11],
 * =127.0.[0..255].[1..3]), one query per distinct domain, non-127
 * answers ignored without a filter, and clear errors for bad entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/postscreen_dnsbl.h"

static void
test_weights_and_filters(void **state)
{
	struct ps_dnsbl d;
	struct errbuf err;

	(void)state;
	errbuf_clear(&err);
	assert_int_equal(ps_dnsbl_parse(&d,
		"zen.spamhaus.org*3, bl.spamcop.net\n"
		"  list.dnswl.org=127.0.[0..255].[1..3]*-5,"
		"b.barracudacentral.org=127.0.0.2 Zen.Spamhaus.ORG.=127.0.0.[10;11]*2",
		&err), 0);
	assert_int_equal(d.nsites, 5);
	assert_string_equal(d.sites[0].domain, "zen.spamhaus.org");
	assert_null(d.sites[0].filter);
	assert_int_equal(d.sites[0].weight, 3);
	assert_string_equal(d.sites[1].domain, "bl.spamcop.net");
	assert_int_equal(d.sites[1].weight, 1);
	assert_string_equal(d.sites[2].domain, "list.dnswl.org");
	assert_string_equal(d.sites[2].filter, "127.0.[0..255].[1..3]");
	assert_int_equal(d.sites[2].weight, -5);
	assert_string_equal(d.sites[3].filter, "127.0.0.2");
	assert_int_equal(d.sites[3].weight, 1);
	/* case and trailing dot folded: same domain, one query */
	assert_string_equal(d.sites[4].domain, "zen.spamhaus.org");
	assert_int_equal(d.sites[4].query, d.sites[0].query);
	assert_int_equal(d.ndomains, 4);
	ps_dnsbl_free(&d);
}

static void
test_score(void **state)
{
	struct ps_dnsbl d;
	struct errbuf err;
	const char *zen_pbl[] = { "127.0.0.10" };
	const char *zen_sbl[] = { "127.0.0.2", "127.0.0.4" };
	const char *wl[] = { "127.0.9.2" };
	const char *wl_no[] = { "127.0.9.4" };
	const char *junk[] = { "10.1.2.3" };
	size_t zen, dnswl, spamcop;

	(void)state;
	errbuf_clear(&err);
	assert_int_equal(ps_dnsbl_parse(&d,
		"zen.test*3 zen.test=127.0.0.[10;11]*2 "
		"wl.test=127.0.[0..255].[1..3]*-5 spamcop.test", &err), 0);
	zen = d.sites[0].query;
	dnswl = d.sites[2].query;
	spamcop = d.sites[3].query;
	/* both zen entries match 127.0.0.10: 3 + 2 */
	assert_int_equal(ps_dnsbl_score(&d, zen, zen_pbl, 1), 5);
	/* two records match the unfiltered entry: counted once */
	assert_int_equal(ps_dnsbl_score(&d, zen, zen_sbl, 2), 3);
	assert_int_equal(ps_dnsbl_score(&d, dnswl, wl, 1), -5);
	assert_int_equal(ps_dnsbl_score(&d, dnswl, wl_no, 1), 0);
	/* without a filter only 127.0.0.0/8 answers count */
	assert_int_equal(ps_dnsbl_score(&d, spamcop, junk, 1), 0);
	assert_int_equal(ps_dnsbl_score(&d, spamcop, zen_sbl, 2), 1);
	assert_int_equal(ps_dnsbl_score(&d, spamcop, NULL, 0), 0);
	ps_dnsbl_free(&d);
}

static void
test_empty(void **state)
{
	struct ps_dnsbl d;
	struct errbuf err;

	(void)state;
	errbuf_clear(&err);
	assert_int_equal(ps_dnsbl_parse(&d, "", &err), 0);
	assert_int_equal(d.nsites, 0);
	assert_int_equal(d.ndomains, 0);
	ps_dnsbl_free(&d);
}

static void
bad(const char *value, const char *msg)
{
	struct ps_dnsbl d;
	struct errbuf err;

	errbuf_clear(&err);
	assert_int_equal(ps_dnsbl_parse(&d, value, &err), -1);
	if (strstr(errbuf_str(&err), msg) == NULL)
		fail_msg("%s: got \"%s\", expected \"%s\"", value,
			 errbuf_str(&err), msg);
	assert_non_null(strstr(errbuf_str(&err), "postscreen_dnsbl_sites"));
	assert_int_equal(d.nsites, 0);
}

static void
test_errors(void **state)
{
	(void)state;
	bad("zen.test*", "bad weight");
	bad("zen.test*x", "bad weight");
	bad("zen.test*3x", "bad weight");
	bad("zen.test*99999", "bad weight");
	bad("zen.test=", "empty reply filter");
	bad("zen.test=127.0.0", "bad DNSBL reply filter");
	bad("zen.test=127.0.0.[2..", "bad DNSBL reply filter");
	bad("=127.0.0.2", "bad DNSBL domain");
	bad("*3", "bad DNSBL domain");
	bad("ok.test bad..test", "bad DNSBL domain");
	bad("zen/test", "bad DNSBL domain");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_weights_and_filters),
		cmocka_unit_test(test_score),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests_name("postscreen_dnsbl", tests, NULL, NULL);
}
