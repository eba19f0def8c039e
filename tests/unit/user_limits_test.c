/*
 * user_limits_test.c - per SASL user sending limits: the hold threshold
 * syntax, per-user map values (good, partial, bad), and the decision for
 * one request (450 past the limit, hold once past the threshold, the hold
 * lasting its time, one start per hold period, windows).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/anvil.h"
#include "core/user_limits.h"

static void
test_factor(void **state)
{
	struct errbuf e;
	unsigned f = 99;

	assert_int_equal(user_limits_parse_factor("3x", &f, &e), 0);
	assert_int_equal(f, 3);
	assert_int_equal(user_limits_parse_factor("10", &f, &e), 0);
	assert_int_equal(f, 10);
	assert_int_equal(user_limits_parse_factor("0", &f, &e), 0);
	assert_int_equal(f, 0);
	assert_int_equal(user_limits_parse_factor("1x", &f, &e), -1);
	assert_non_null(strstr(errbuf_str(&e), "above the limit"));
	assert_int_equal(user_limits_parse_factor("x", &f, &e), -1);
	assert_int_equal(user_limits_parse_factor("", &f, &e), -1);
	assert_int_equal(user_limits_parse_factor("-2x", &f, &e), -1);
	assert_int_equal(user_limits_parse_factor("2.5x", &f, &e), -1);
	assert_int_equal(user_limits_parse_factor("99999999999", &f, &e), -1);
	assert_int_equal(f, 0);
}

static void
test_value(void **state)
{
	struct user_limits l = { 10, 100, 3 };
	struct errbuf e;

	assert_int_equal(user_limits_parse_value("message_rate_limit=5", &l, &e), 0);
	assert_int_equal(l.message_rate, 5);
	assert_int_equal(l.recipient_rate, 100);
	assert_int_equal(l.hold_factor, 3);
	assert_int_equal(user_limits_parse_value(
	    "Recipient_Rate_Limit=7, hold_threshold=4x message_rate_limit=0",
	    &l, &e), 0);
	assert_int_equal(l.message_rate, 0);
	assert_int_equal(l.recipient_rate, 7);
	assert_int_equal(l.hold_factor, 4);
	/* a bad item leaves everything as it was */
	assert_int_equal(user_limits_parse_value(
	    "message_rate_limit=9 recipient_rate_limit=x", &l, &e), -1);
	assert_non_null(strstr(errbuf_str(&e), "recipient_rate_limit=x"));
	assert_int_equal(l.message_rate, 0);
	assert_int_equal(user_limits_parse_value("speed=3", &l, &e), -1);
	assert_non_null(strstr(errbuf_str(&e), "unknown name"));
	assert_int_equal(user_limits_parse_value("message_rate_limit", &l, &e), -1);
	assert_int_equal(user_limits_parse_value("", &l, &e), -1);
	assert_int_equal(user_limits_parse_value("hold_threshold=1x", &l, &e), -1);
	assert_int_equal(user_limits_parse_value("message_rate_limit=-1", &l, &e), -1);
	assert_int_equal(l.recipient_rate, 7);
	assert_int_equal(l.hold_factor, 4);
}

static void
test_event(void **state)
{
	struct anvil *a = anvil_new(100, 60);
	struct user_limits l = { 2, 0, 2 };	/* 2 messages, hold past 4 */
	struct user_limits_result r;
	time_t t = 50000;
	int started = 0;

	for (unsigned i = 1; i <= 2; i++) {
		user_limits_event(a, "alice", ANVIL_MAIL, &l, 3600, t, &r);
		assert_int_equal(r.count, i);
		assert_false(r.refuse);
		assert_false(r.held);
	}
	for (unsigned i = 3; i <= 8; i++) {
		user_limits_event(a, "alice", ANVIL_MAIL, &l, 3600, t + 1, &r);
		assert_true(r.refuse);
		assert_int_equal(r.limit, 2);
		if (r.hold_started) {
			started++;
			assert_int_equal(i, 5);
			assert_int_equal(r.held_until, t + 1 + 3600);
		}
		assert_int_equal(r.held, i >= 5);
	}
	assert_int_equal(started, 1);
	/* no recipient limit: nothing counted, but the hold shows */
	user_limits_event(a, "alice", ANVIL_RCPT, &l, 3600, t + 2, &r);
	assert_false(r.refuse);
	assert_int_equal(r.count, 0);
	assert_true(r.held);
	/* a new window: accepted again, still held, no new start */
	user_limits_event(a, "alice", ANVIL_MAIL, &l, 3600, t + 100, &r);
	assert_false(r.refuse);
	assert_true(r.held);
	assert_false(r.hold_started);
	for (int i = 0; i < 10; i++) {
		user_limits_event(a, "alice", ANVIL_MAIL, &l, 3600, t + 101, &r);
		assert_false(r.hold_started);
	}
	/* another user is not concerned */
	user_limits_event(a, "bob", ANVIL_MAIL, &l, 3600, t + 101, &r);
	assert_false(r.refuse);
	assert_false(r.held);
	/* after the hold time: free, and a new crossing starts a new hold */
	user_limits_event(a, "alice", ANVIL_MAIL, &l, 3600, t + 3700, &r);
	assert_false(r.held);
	assert_false(r.refuse);
	for (int i = 0; i < 4; i++)
		user_limits_event(a, "alice", ANVIL_MAIL, &l, 3600, t + 3700, &r);
	assert_true(r.hold_started);
	/* hold_factor 0: refused, never held */
	l.hold_factor = 0;
	for (int i = 0; i < 20; i++)
		user_limits_event(a, "carol", ANVIL_MAIL, &l, 3600, t, &r);
	assert_true(r.refuse);
	assert_false(r.held);
	anvil_free(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_factor),
		cmocka_unit_test(test_value),
		cmocka_unit_test(test_event),
	};

	return cmocka_run_group_tests_name("user_limits", tests, NULL, NULL);
}
