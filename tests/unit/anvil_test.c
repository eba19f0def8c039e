/*
 * anvil_test.c - the per-key connection and rate table: window accounting
 * (Postfix's fixed window), connection counts, expiry of idle entries,
 * the size bound (LRU eviction of idle entries, fail open when every
 * entry is live), marks, and keys longer than the limit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/anvil.h"

static void
test_window(void **state)
{
	struct anvil *a = anvil_new(100, 60);
	time_t t0 = 1000000;

	/* Counts within one window, per key and per event. */
	for (unsigned i = 1; i <= 5; i++)
		assert_int_equal(anvil_incr(a, "smtp/192.0.2.1", ANVIL_MAIL, t0 + i), i);
	assert_int_equal(anvil_incr(a, "smtp/192.0.2.1", ANVIL_RCPT, t0 + 10), 1);
	assert_int_equal(anvil_incr(a, "smtp/192.0.2.2", ANVIL_MAIL, t0 + 10), 1);
	assert_int_equal(anvil_incr(a, "submission/192.0.2.1", ANVIL_MAIL, t0 + 10), 1);
	assert_int_equal(anvil_peek(a, "smtp/192.0.2.1", ANVIL_MAIL, t0 + 10), 5);
	assert_int_equal(anvil_peek(a, "smtp/192.0.2.1", ANVIL_AUTH, t0 + 10), 0);
	/* The window started at the first event (t0 + 1) and lasts the unit
	 * inclusive, as Postfix's anvil: start + unit < now resets it. */
	assert_int_equal(anvil_incr(a, "smtp/192.0.2.1", ANVIL_MAIL, t0 + 61), 6);
	assert_int_equal(anvil_peek(a, "smtp/192.0.2.1", ANVIL_MAIL, t0 + 62), 0);
	assert_int_equal(anvil_incr(a, "smtp/192.0.2.1", ANVIL_MAIL, t0 + 62), 1);
	/* every counter reset together */
	assert_int_equal(anvil_peek(a, "smtp/192.0.2.1", ANVIL_RCPT, t0 + 62), 0);
	/* a new unit applies to the running window */
	anvil_set_unit(a, 10);
	assert_int_equal(anvil_unit(a), 10);
	assert_int_equal(anvil_incr(a, "smtp/192.0.2.1", ANVIL_MAIL, t0 + 72), 2);
	assert_int_equal(anvil_incr(a, "smtp/192.0.2.1", ANVIL_MAIL, t0 + 73), 1);
	anvil_free(&a);
	assert_null(a);
}

static void
test_connections(void **state)
{
	struct anvil *a = anvil_new(100, 60);
	unsigned count, rate;
	time_t t0 = 5000;

	for (unsigned i = 1; i <= 3; i++) {
		assert_int_equal(anvil_connect(a, "smtp/10.0.0.1", t0, &count, &rate), 0);
		assert_int_equal(count, i);
		assert_int_equal(rate, i);
	}
	anvil_disconnect(a, "smtp/10.0.0.1", t0 + 1);
	anvil_disconnect(a, "smtp/10.0.0.1", t0 + 1);
	assert_int_equal(anvil_count(a, "smtp/10.0.0.1", t0 + 1), 1);
	/* concurrency stays, the rate counts every connection of the window */
	assert_int_equal(anvil_connect(a, "smtp/10.0.0.1", t0 + 2, &count, &rate), 0);
	assert_int_equal(count, 2);
	assert_int_equal(rate, 4);
	/* a new window: the rate restarts, the live connections do not */
	assert_int_equal(anvil_connect(a, "smtp/10.0.0.1", t0 + 100, &count, &rate), 0);
	assert_int_equal(count, 3);
	assert_int_equal(rate, 1);
	/* a disconnect never goes below zero, nor creates an entry */
	for (int i = 0; i < 5; i++)
		anvil_disconnect(a, "smtp/10.0.0.1", t0 + 100);
	assert_int_equal(anvil_count(a, "smtp/10.0.0.1", t0 + 100), 0);
	anvil_disconnect(a, "smtp/10.9.9.9", t0 + 100);
	assert_int_equal(anvil_count(a, "smtp/10.9.9.9", t0 + 100), 0);
	anvil_free(&a);
}

static void
test_expiry(void **state)
{
	struct anvil *a = anvil_new(100, 60);
	unsigned count, rate;
	time_t t0 = 7000;

	assert_int_equal(anvil_incr(a, "idle", ANVIL_MAIL, t0), 1);
	assert_int_equal(anvil_connect(a, "busy", t0, &count, &rate), 0);
	assert_int_equal(anvil_incr(a, "fresh", ANVIL_MAIL, t0 + 50), 1);
	assert_int_equal(anvil_size(a), 3);
	/* before the unit passed nothing is dead */
	assert_int_equal(anvil_expire(a, t0 + 60), 0);
	/* after it: the idle entry goes, the connected one and the recent
	 * one stay */
	assert_int_equal(anvil_expire(a, t0 + 61), 1);
	assert_int_equal(anvil_size(a), 2);
	assert_int_equal(anvil_count(a, "busy", t0 + 61), 1);
	/* the connection ends: dead once its window is over */
	anvil_disconnect(a, "busy", t0 + 62);
	assert_int_equal(anvil_expire(a, t0 + 200), 2);
	assert_int_equal(anvil_size(a), 0);
	/* any call sweeps at most once per unit, without anvil_expire */
	assert_int_equal(anvil_incr(a, "x1", ANVIL_RCPT, t0 + 300), 1);
	assert_int_equal(anvil_incr(a, "x2", ANVIL_RCPT, t0 + 300), 1);
	assert_int_equal(anvil_size(a), 2);
	assert_int_equal(anvil_incr(a, "x3", ANVIL_RCPT, t0 + 500), 1);
	assert_int_equal(anvil_size(a), 1);
	anvil_free(&a);
}

static void
test_bounded(void **state)
{
	struct anvil *a = anvil_new(8, 60);
	unsigned count, rate;
	char key[32];
	time_t t0 = 9000;

	/* Eight clients with live connections fill the table. */
	for (int i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "smtp/10.0.0.%d", i);
		assert_int_equal(anvil_connect(a, key, t0, &count, &rate), 0);
	}
	assert_int_equal(anvil_size(a), 8);
	/* A ninth is not counted (fail open), and nothing live is lost. */
	assert_int_equal(anvil_connect(a, "smtp/10.0.0.99", t0, &count, &rate), -1);
	assert_int_equal(count, 0);
	assert_int_equal(anvil_incr(a, "smtp/10.0.0.99", ANVIL_MAIL, t0), 0);
	assert_int_equal(anvil_set_mark(a, "smtp/10.0.0.99", t0 + 5, t0), -1);
	assert_int_equal(anvil_size(a), 8);
	for (int i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "smtp/10.0.0.%d", i);
		assert_int_equal(anvil_count(a, key, t0), 1);
	}
	/* Two end their connection; 10.0.0.3 is then used again: the least
	 * recently used idle one (10.0.0.5) makes room for a newcomer. */
	anvil_disconnect(a, "smtp/10.0.0.5", t0 + 1);
	anvil_disconnect(a, "smtp/10.0.0.3", t0 + 2);
	assert_int_equal(anvil_incr(a, "smtp/10.0.0.3", ANVIL_MAIL, t0 + 3), 1);
	assert_int_equal(anvil_incr(a, "smtp/10.0.0.99", ANVIL_MAIL, t0 + 4), 1);
	assert_int_equal(anvil_size(a), 8);
	assert_int_equal(anvil_peek(a, "smtp/10.0.0.3", ANVIL_MAIL, t0 + 4), 1);
	assert_int_equal(anvil_peek(a, "smtp/10.0.0.5", ANVIL_CONN, t0 + 4), 0);
	/* A marked entry is never evicted. */
	assert_int_equal(anvil_set_mark(a, "smtp/10.0.0.99", t0 + 1000, t0 + 4), 0);
	assert_int_equal(anvil_incr(a, "smtp/10.0.0.100", ANVIL_MAIL, t0 + 5), 1);
	assert_int_equal(anvil_mark(a, "smtp/10.0.0.99", t0 + 6), t0 + 1000);
	/* Many distinct keys over time: the size never passes the bound. */
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		anvil_incr(a, key, ANVIL_RCPT, t0 + 10 + i / 100);
		assert_true(anvil_size(a) <= 8);
	}
	anvil_free(&a);
}

static void
test_mark(void **state)
{
	struct anvil *a = anvil_new(10, 60);
	time_t t0 = 20000;

	assert_int_equal(anvil_mark(a, "user@example.test", t0), 0);
	assert_int_equal(anvil_set_mark(a, "user@example.test", t0 + 3600, t0), 0);
	assert_int_equal(anvil_mark(a, "user@example.test", t0 + 100), t0 + 3600);
	/* the mark keeps the idle entry past the window */
	assert_int_equal(anvil_expire(a, t0 + 1000), 0);
	assert_int_equal(anvil_size(a), 1);
	assert_int_equal(anvil_mark(a, "user@example.test", t0 + 3599), t0 + 3600);
	assert_int_equal(anvil_expire(a, t0 + 3600), 1);
	assert_int_equal(anvil_mark(a, "user@example.test", t0 + 3600), 0);
	assert_int_equal(anvil_size(a), 0);
	anvil_free(&a);
}

static void
test_long_key(void **state)
{
	struct anvil *a = anvil_new(10, 60);
	char big[1000];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(anvil_incr(a, big, ANVIL_AUTH, 1), 1);
	assert_int_equal(anvil_incr(a, big, ANVIL_AUTH, 2), 2);
	assert_int_equal(anvil_peek(a, big, ANVIL_AUTH, 2), 2);
	assert_int_equal(anvil_incr(a, "", ANVIL_AUTH, 2), 1);
	assert_int_equal(anvil_incr(a, "x", ANVIL_NEVENTS, 2), 0);
	anvil_free(&a);
}

static void
test_client_key(void **state)
{
	char k[ANVIL_KEY_MAX + 1];

	anvil_client_key("smtp", "192.0.2.77", 32, 84, k, sizeof(k));
	assert_string_equal(k, "smtp/192.0.2.77");
	anvil_client_key("smtp", "192.0.2.77", 24, 84, k, sizeof(k));
	assert_string_equal(k, "smtp/192.0.2.0/24");
	/* the default /84: hosts of one /64 that differ below bit 84 share */
	anvil_client_key("submission", "2001:db8:1:2:3456:7:8:9", 32, 84, k,
			 sizeof(k));
	assert_string_equal(k, "submission/2001:db8:1:2:3456::/84");
	anvil_client_key("submission", "2001:db8:1:2:3456:fff:abcd:1", 32, 84,
			 k, sizeof(k));
	assert_string_equal(k, "submission/2001:db8:1:2:3456::/84");
	anvil_client_key("submission", "2001:db8:1:2:3456:1000::", 32, 84, k,
			 sizeof(k));
	assert_string_equal(k, "submission/2001:db8:1:2:3456:1000::/84");
	anvil_client_key("smtp", "::1", 32, 128, k, sizeof(k));
	assert_string_equal(k, "smtp/::1");
	anvil_client_key("smtp", "::ffff:10.1.2.3", 32, 84, k, sizeof(k));
	assert_string_equal(k, "smtp/10.1.2.3");
	anvil_client_key("smtp", "unknown", 32, 84, k, sizeof(k));
	assert_string_equal(k, "smtp/unknown");
	anvil_client_key("smtp", "10.9.8.7", 200, 300, k, sizeof(k));
	assert_string_equal(k, "smtp/10.9.8.7");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_connections),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_mark),
		cmocka_unit_test(test_long_key),
		cmocka_unit_test(test_client_key),
	};

	return cmocka_run_group_tests_name("anvil", tests, NULL, NULL);
}
