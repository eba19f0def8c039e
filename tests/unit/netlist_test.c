/*
 * netlist_test.c - mynetworks-style lists: IPv4/IPv6 networks, negation,
 * files, tables, IPv4-mapped addresses, socket addresses, parse errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/lib/xmalloc.h"
#include "core/netlist.h"
#include "testdir.h"

static char dir[64];
static char *netfile, *cidrfile;

static int
setup(void **state)
{
	if (testdir_make(dir, sizeof(dir), "facteur-netlist-test") < 0)
		return -1;
	netfile = testdir_write(dir, "nets",
	    "# trusted networks\n"
	    "!192.0.2.66\n"
	    "192.0.2.0/24   198.51.100.7\n"
	    "[2001:db8:1::]/48\n");
	cidrfile = testdir_write(dir, "cidr", "203.0.113.0/24 ok\n");
	return netfile && cidrfile ? 0 : -1;
}

static int
teardown(void **state)
{
	int rc = testdir_remove(dir);

	free(netfile);
	free(cidrfile);
	return rc == 0 ? 0 : -1;
}

static void
test_match(void **state)
{
	static const struct {
		const char *list;	/* "%F" = the nets file, "%C" = the cidr file */
		const char *ip;
		int want;
	} cases[] = {
		{ "127.0.0.0/8", "127.0.0.1", 1 },
		{ "127.0.0.0/8", "127.255.255.255", 1 },
		{ "127.0.0.0/8", "128.0.0.1", 0 },
		{ "127.0.0.1", "127.0.0.1", 1 },
		{ "127.0.0.1", "127.0.0.2", 0 },
		{ "127.0.0.1/32, 10.0.0.0/8", "10.9.8.7", 1 },
		{ "0.0.0.0/0", "1.2.3.4", 1 },
		{ "0.0.0.0/0", "::1", 0 },
		{ "[::1]/128", "::1", 1 },
		{ "[::1]", "::1", 1 },
		{ "::1/128", "::1", 1 },
		{ "[::1]/128", "::2", 0 },
		{ "[2001:db8::]/32", "2001:db8:ffff::1", 1 },
		{ "2001:db8::/32", "2001:db9::1", 0 },
		{ "[fe80::]/10", "febf::1", 1 },
		{ "[fe80::]/10", "fec0::1", 0 },
		{ "192.168.1.0/25", "192.168.1.127", 1 },
		{ "192.168.1.0/25", "192.168.1.128", 0 },
		/* IPv4-mapped client addresses match IPv4 networks */
		{ "1.2.3.0/24", "::ffff:1.2.3.4", 1 },
		{ "1.2.3.0/24", "[::ffff:1.2.3.4]", 1 },
		{ "[::ffff:1.2.3.0]/120", "1.2.3.9", 1 },
		/* negation: the first matching item decides */
		{ "!10.0.0.1, 10.0.0.0/8", "10.0.0.1", 0 },
		{ "!10.0.0.1, 10.0.0.0/8", "10.0.0.2", 1 },
		{ "10.0.0.0/8, !10.0.0.1", "10.0.0.1", 1 },
		{ "![::1] [::]/0", "::1", 0 },
		{ "![::1] [::]/0", "::2", 1 },
		/* files */
		{ "%F", "192.0.2.5", 1 },
		{ "%F", "192.0.2.66", 0 },
		{ "%F", "198.51.100.7", 1 },
		{ "%F", "198.51.100.8", 0 },
		{ "%F", "2001:db8:1:2::3", 1 },
		{ "127.0.0.1 %F", "127.0.0.1", 1 },
		/* tables: found means match */
		{ "cidr:%C", "203.0.113.9", 1 },
		{ "cidr:%C", "203.0.114.9", 0 },
		{ "!cidr:%C, 0.0.0.0/0", "203.0.113.9", 0 },
		{ "inline:{ 10.0.0.1=yes }", "10.0.0.1", 1 },
		{ "inline:{ 10.0.0.1=yes }", "10.0.0.2", 0 },
		/* not an address: nothing matches */
		{ "0.0.0.0/0", "unknown", 0 },
		{ "0.0.0.0/0", "", 0 },
		{ "", "127.0.0.1", 0 },
	};
	struct errbuf err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *value = xstrdup(cases[i].list), *p;
		struct netlist *nl;

		while ((p = strstr(value, "%F")) || (p = strstr(value, "%C"))) {
			char *nv = xasprintf("%.*s%s%s", (int)(p - value), value,
					     p[1] == 'F' ? netfile : cidrfile, p + 2);
			free(value);
			value = nv;
		}
		nl = netlist_new(value, &err);
		if (nl == NULL)
			fail_msg("\"%s\": %s", value, errbuf_str(&err));
		if (netlist_match_str(nl, cases[i].ip, &err) != cases[i].want)
			fail_msg("case %zu: \"%s\" vs %s: want %d", i, value,
				 cases[i].ip, cases[i].want);
		assert_int_equal(netlist_empty(nl), cases[i].list[0] == '\0');
		netlist_free(&nl);
		assert_null(nl);
		free(value);
	}
}

static void
test_sockaddr(void **state)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr sa_unix;
	struct errbuf err;
	struct netlist *nl = netlist_new("127.0.0.0/8 [2001:db8::]/32", &err);

	assert_non_null(nl);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "127.1.2.3", &sin.sin_addr);
	assert_int_equal(netlist_match(nl, (struct sockaddr *)&sin, &err), 1);
	inet_pton(AF_INET, "128.1.2.3", &sin.sin_addr);
	assert_int_equal(netlist_match(nl, (struct sockaddr *)&sin, &err), 0);

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::25", &sin6.sin6_addr);
	assert_int_equal(netlist_match(nl, (struct sockaddr *)&sin6, &err), 1);
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6.sin6_addr);
	assert_int_equal(netlist_match(nl, (struct sockaddr *)&sin6, &err), 1);
	inet_pton(AF_INET6, "::ffff:10.0.0.1", &sin6.sin6_addr);
	assert_int_equal(netlist_match(nl, (struct sockaddr *)&sin6, &err), 0);

	memset(&sa_unix, 0, sizeof(sa_unix));
	sa_unix.sa_family = AF_UNIX;
	assert_int_equal(netlist_match(nl, &sa_unix, &err), 0);
	assert_int_equal(netlist_match(nl, NULL, &err), 0);
	netlist_free(&nl);
}

static void
test_tempfail(void **state)
{
	struct errbuf err;
	struct netlist *nl = netlist_new("10.0.0.0/8, fail:down, 0.0.0.0/0", &err);

	assert_non_null(nl);
	assert_int_equal(netlist_match_str(nl, "10.1.1.1", &err), 1);
	assert_int_equal(netlist_match_str(nl, "11.1.1.1", &err), -1);
	assert_string_equal(errbuf_str(&err), "fail:down lookup error for \"11.1.1.1\": down");
	assert_int_equal(netlist_match_str(nl, "::ffff:11.1.1.1", &err), -1);
	assert_string_equal(errbuf_str(&err), "fail:down lookup error for \"11.1.1.1\": down");
	netlist_free(&nl);
}

static void
test_errors(void **state)
{
	static const struct {
		const char *list;
		const char *err;
	} cases[] = {
		{ "1.2.3.4/24", "non-null host address bits in \"1.2.3.4/24\", perhaps you should use \"1.2.3.0/24\" instead" },
		{ "10.0.0.0/8 1.2.3.0/33", "\"1.2.3.0/33\": network prefix length larger than 32" },
		{ "[::1]/129", "larger than 128" },
		{ "[2001:db8::1]/32", "perhaps you should use \"[2001:db8::]/32\"" },
		{ "1.2.3", "\"1.2.3\": bad network address" },
		{ "1.2.3.0/", "bad network prefix length" },
		{ "example.com", "\"example.com\": not a network address, file or table" },
		{ "!", "\"!\": bad list item" },
		{ "!!1.2.3.4", "\"!!1.2.3.4\": bad list item" },
		{ "foo:bar", "unsupported dictionary type: foo" },
		{ "/nonexistent/facteur/nets", "open /nonexistent/facteur/nets: No such file or directory" },
		{ "!/etc/hosts", "a file cannot be negated" },
		{ "{ 1.2.3.4", "unbalanced" },
	};
	struct errbuf err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct netlist *nl = netlist_new(cases[i].list, &err);

		if (nl != NULL)
			fail_msg("\"%s\" parsed", cases[i].list);
		if (strstr(errbuf_str(&err), cases[i].err) == NULL)
			fail_msg("\"%s\": \"%s\"", cases[i].list, errbuf_str(&err));
	}
}

static void
test_file_errors(void **state)
{
	char *bad = testdir_write(dir, "badnets",
				  "10.0.0.0/8\n# c\n\n1.2.3.4/24\n");
	char *self = xasprintf("%s/self", dir);
	char *selfref = testdir_write(dir, "self", self);
	struct errbuf err;
	struct netlist *nl;

	assert_non_null(bad);
	nl = netlist_new(bad, &err);
	assert_null(nl);
	assert_non_null(strstr(errbuf_str(&err), "badnets, line 4: "));
	assert_non_null(strstr(errbuf_str(&err), "non-null host address bits"));
	/* a file naming itself does not recurse forever */
	nl = netlist_new(selfref, &err);
	assert_null(nl);
	assert_non_null(strstr(errbuf_str(&err), "nested too deeply"));
	free(bad);
	free(self);
	free(selfref);
}

static void
test_cidr_parse(void **state)
{
	struct netlist_cidr c;
	struct netlist_addr a;
	char text[64];
	struct errbuf err;

	assert_int_equal(netlist_cidr_parse("10.0.0.0/8", &c, &err), 0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 8);
	assert_int_equal(netlist_addr_parse("10.255.0.1", &a), 0);
	assert_true(netlist_cidr_match(&c, &a));
	assert_int_equal(netlist_addr_parse("[::ffff:10.0.0.1]", &a), 0);
	assert_int_equal(a.family, AF_INET);
	netlist_addr_format(&a, text, sizeof(text));
	assert_string_equal(text, "10.0.0.1");
	assert_int_equal(netlist_addr_parse("2001:DB8::1", &a), 0);
	netlist_addr_format(&a, text, sizeof(text));
	assert_string_equal(text, "2001:db8::1");
	assert_int_equal(netlist_addr_parse("1.2.3.4.5", &a), -1);
	assert_int_equal(netlist_addr_parse("[1.2.3.4", &a), -1);
	assert_int_equal(netlist_addr_parse("01.2.3.4", &a), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_sockaddr),
		cmocka_unit_test(test_tempfail),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_cidr_parse),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
