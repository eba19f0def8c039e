/*
 * smtpd_ifaddrs_test.c - our own addresses for permit_inet_interfaces and
 * permit_mx_backup: literal inet_interfaces / proxy_interfaces values,
 * "all" reading the interfaces (loopback is always there), and matching
 * by binary address (IPv6 spellings, IPv4-mapped IPv6).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/lib/strlist.h"
#include "core/smtpd_ifaddrs.h"

static void
test_literal(void **state)
{
	struct strlist l;

	(void)state;
	strlist_init(&l);
	smtpd_ifaddrs_load(&l, "192.0.2.1, [2001:db8::1]", "198.51.100.7");
	assert_int_equal(l.n, 3);
	assert_true(smtpd_ifaddrs_match(&l, "192.0.2.1"));
	assert_true(smtpd_ifaddrs_match(&l, "2001:db8:0::1"));
	assert_true(smtpd_ifaddrs_match(&l, "::ffff:192.0.2.1"));
	assert_true(smtpd_ifaddrs_match(&l, "198.51.100.7"));	/* proxy */
	assert_false(smtpd_ifaddrs_match(&l, "192.0.2.2"));
	assert_false(smtpd_ifaddrs_match(&l, "127.0.0.1"));	/* not listed */
	assert_false(smtpd_ifaddrs_match(&l, "not-an-address"));
	strlist_free(&l);
}

static void
test_all(void **state)
{
	struct strlist l;

	(void)state;
	strlist_init(&l);
	smtpd_ifaddrs_load(&l, "all", NULL);
	assert_true(smtpd_ifaddrs_match(&l, "127.0.0.1"));
	assert_false(smtpd_ifaddrs_match(&l, "192.0.2.254"));
	strlist_free(&l);
	strlist_init(&l);
	smtpd_ifaddrs_load(&l, NULL, NULL);	/* the default is all */
	assert_true(smtpd_ifaddrs_match(&l, "127.0.0.1"));
	strlist_free(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literal),
		cmocka_unit_test(test_all),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
