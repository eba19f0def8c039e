/*
 * soft_bounce_test.c - soft_bounce's rewriting: 5xx SMTP reply lines (one
 * or several, with or without an enhanced status code) become 4xx, other
 * replies are untouched; a bounced delivery becomes a deferral with a
 * 4.X.Y code only when soft_bounce is on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/soft_bounce.h"

static void
check_reply(const char *in, const char *want)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s", in);
	soft_bounce_reply(buf);
	assert_string_equal(buf, want);
}

static void
test_reply(void **state)
{
	(void)state;
	check_reply("550 5.1.1 <x@y>: Recipient address rejected: User unknown",
		    "450 4.1.1 <x@y>: Recipient address rejected: User unknown");
	check_reply("554 5.7.1 <x@y>: Relay access denied",
		    "454 4.7.1 <x@y>: Relay access denied");
	check_reply("552 Message too big", "452 Message too big");
	check_reply("550", "450");
	check_reply("554-first\r\n554-5.0.0 second\r\n554 5.5.0 third",
		    "454-first\r\n454-4.0.0 second\r\n454 4.5.0 third");
	/* untouched: success, temporary, not a reply code */
	check_reply("250 2.0.0 Ok: queued as 5xx", "250 2.0.0 Ok: queued as 5xx");
	check_reply("451 4.3.0 Error", "451 4.3.0 Error");
	check_reply("5000 nonsense", "5000 nonsense");
	check_reply("", "");
}

static void
test_delivery(void **state)
{
	enum deliver_status st = DELIVER_BOUNCE;
	char dsn[8] = "5.1.1";

	(void)state;
	assert_false(soft_bounce_delivery(false, &st, dsn));
	assert_int_equal(st, DELIVER_BOUNCE);
	assert_string_equal(dsn, "5.1.1");
	assert_true(soft_bounce_delivery(true, &st, dsn));
	assert_int_equal(st, DELIVER_DEFER);
	assert_string_equal(dsn, "4.1.1");
	st = DELIVER_SENT;
	strcpy(dsn, "2.0.0");
	assert_false(soft_bounce_delivery(true, &st, dsn));
	assert_int_equal(st, DELIVER_SENT);
	st = DELIVER_DEFER;
	strcpy(dsn, "4.4.1");
	assert_false(soft_bounce_delivery(true, &st, dsn));
	st = DELIVER_BOUNCE;
	dsn[0] = '\0';
	assert_true(soft_bounce_delivery(true, &st, dsn));
	assert_string_equal(dsn, "4.0.0");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_delivery),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
