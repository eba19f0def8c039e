/*
 * verify_test.c - address verification cache policy (core/verify_cache.c)
 * with an injected clock: no record and expired records are "in
 * progress" with a probe; valid records answer their status, with a
 * refresh probe after the refresh time but not twice within
 * VERIFY_PROBE_TTL; negative records follow the negative times, or live
 * VERIFY_NEG_HOLD seconds only without negative caching; a failed probe
 * does not replace a valid deliverable result; records round-trip and
 * malformed ones are refused; and the smtpd parameters (codes, tempfail
 * actions, poll) with their errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/verify.h"
#include "core/verify_cache.h"

#define DAY  86400LL
#define HOUR 3600LL

static const struct verify_times T = {
	.pos_exp = 31 * DAY, .pos_try = 7 * DAY,
	.neg_exp = 3 * DAY, .neg_try = 3 * HOUR, .neg_cache = true,
};

static struct verify_record
rec(enum verify_status st, long long probed, long long updated)
{
	struct verify_record r;

	memset(&r, 0, sizeof(r));
	r.st = st;
	r.probed = probed;
	r.updated = updated;
	snprintf(r.text, sizeof(r.text), "host mx[192.0.2.1] said: 250 ok");
	return r;
}

static void
test_missing_and_expired(void **state)
{
	struct verify_decision d;
	struct verify_record ok = rec(VERIFY_OK, 0, 1000000);
	struct verify_record bad = rec(VERIFY_BOUNCE, 0, 1000000);

	(void)state;
	verify_decide(&T, NULL, 1000000, &d);
	assert_int_equal(d.answer, VERIFY_TODO);
	assert_true(d.probe);
	/* a deliverable result lives 31 days, an undeliverable one 3 */
	verify_decide(&T, &ok, (time_t)(1000000 + 31 * DAY - 1), &d);
	assert_int_equal(d.answer, VERIFY_OK);
	verify_decide(&T, &ok, (time_t)(1000000 + 31 * DAY), &d);
	assert_int_equal(d.answer, VERIFY_TODO);
	assert_true(d.probe);
	verify_decide(&T, &bad, (time_t)(1000000 + 3 * DAY - 1), &d);
	assert_int_equal(d.answer, VERIFY_BOUNCE);
	verify_decide(&T, &bad, (time_t)(1000000 + 3 * DAY), &d);
	assert_int_equal(d.answer, VERIFY_TODO);
	assert_int_equal(verify_record_expiry(&T, &ok), 1000000 + 31 * DAY);
	assert_int_equal(verify_record_expiry(&T, &bad), 1000000 + 3 * DAY);
}

static void
test_refresh(void **state)
{
	struct verify_decision d;
	struct verify_record ok = rec(VERIFY_OK, 0, 1000000);
	struct verify_record temp = rec(VERIFY_DEFER, 0, 1000000);

	(void)state;
	/* fresh: answered, no probe */
	verify_decide(&T, &ok, (time_t)(1000000 + 7 * DAY - 1), &d);
	assert_int_equal(d.answer, VERIFY_OK);
	assert_false(d.probe);
	/* refresh due: the old result answers while a probe runs */
	verify_decide(&T, &ok, (time_t)(1000000 + 7 * DAY), &d);
	assert_int_equal(d.answer, VERIFY_OK);
	assert_true(d.probe);
	/* a refresh probe was started: not again within the TTL */
	ok.probed = 1000000 + 7 * DAY;
	verify_decide(&T, &ok, (time_t)(ok.probed + VERIFY_PROBE_TTL - 1), &d);
	assert_false(d.probe);
	verify_decide(&T, &ok, (time_t)(ok.probed + VERIFY_PROBE_TTL), &d);
	assert_true(d.probe);
	/* negative results are refreshed after 3 hours */
	verify_decide(&T, &temp, (time_t)(1000000 + 3 * HOUR - 1), &d);
	assert_int_equal(d.answer, VERIFY_DEFER);
	assert_false(d.probe);
	verify_decide(&T, &temp, (time_t)(1000000 + 3 * HOUR), &d);
	assert_int_equal(d.answer, VERIFY_DEFER);
	assert_true(d.probe);
}

static void
test_no_negative_cache(void **state)
{
	struct verify_times t = T;
	struct verify_decision d;
	struct verify_record bad = rec(VERIFY_BOUNCE, 0, 5000);
	struct verify_record ok = rec(VERIFY_OK, 0, 5000);

	(void)state;
	t.neg_cache = false;
	assert_int_equal(verify_record_expiry(&t, &bad), 5000 + VERIFY_NEG_HOLD);
	assert_int_equal(verify_record_expiry(&t, &ok), 5000 + 31 * DAY);
	verify_decide(&t, &bad, 5000 + VERIFY_NEG_HOLD - 1, &d);
	assert_int_equal(d.answer, VERIFY_BOUNCE);	/* for the waiters */
	verify_decide(&t, &bad, 5000 + VERIFY_NEG_HOLD, &d);
	assert_int_equal(d.answer, VERIFY_TODO);
	assert_true(d.probe);
}

static void
test_result_replaces(void **state)
{
	struct verify_record ok = rec(VERIFY_OK, 0, 1000000);
	struct verify_record bad = rec(VERIFY_BOUNCE, 0, 1000000);

	(void)state;
	assert_true(verify_result_replaces(&T, NULL, VERIFY_BOUNCE, 1000000));
	assert_true(verify_result_replaces(&T, &ok, VERIFY_OK, 1000100));
	assert_true(verify_result_replaces(&T, &bad, VERIFY_OK, 1000100));
	assert_true(verify_result_replaces(&T, &bad, VERIFY_DEFER, 1000100));
	/* a failure never replaces a valid deliverable result */
	assert_false(verify_result_replaces(&T, &ok, VERIFY_BOUNCE, 1000100));
	assert_false(verify_result_replaces(&T, &ok, VERIFY_DEFER, 1000100));
	/* ... unless it has expired */
	assert_true(verify_result_replaces(&T, &ok, VERIFY_DEFER,
					   (time_t)(1000000 + 31 * DAY)));
	assert_string_equal(verify_status_name(VERIFY_OK), "deliverable");
	assert_string_equal(verify_status_name(VERIFY_DEFER), "undeliverable");
	assert_string_equal(verify_status_name(VERIFY_BOUNCE), "undeliverable");
}

static void
test_record_codec(void **state)
{
	struct verify_record r = rec(VERIFY_BOUNCE, 12, 345), back;
	struct buf b;
	static const char *const bad[] = {
		"", "X;1;2;t", "O;1;0;t", "O;;2;t", "O;1;2", "O1;2;t", "B;a;2;t",
		"O;99999999999999999999;2;t",
	};

	(void)state;
	snprintf(r.text, sizeof(r.text), "host a[1.2.3.4] said: 550 5.1.1 "
		 "no; such user");
	buf_init(&b, 0);
	verify_record_format(&r, &b);
	assert_string_equal(buf_cstr(&b), "B;12;345;host a[1.2.3.4] said: "
			    "550 5.1.1 no; such user");
	assert_int_equal(verify_record_parse(b.data, b.len, &back), 0);
	assert_int_equal(back.st, VERIFY_BOUNCE);
	assert_int_equal(back.probed, 12);
	assert_int_equal(back.updated, 345);
	assert_string_equal(back.text, r.text);
	buf_free(&b);
	assert_int_equal(verify_record_parse("O;0;7;", 6, &back), 0);
	assert_int_equal(back.st, VERIFY_OK);
	assert_string_equal(back.text, "");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(verify_record_parse(bad[i], strlen(bad[i]),
						     &back), -1);
}

static struct config *
conf(const char *text)
{
	struct config *c = config_parse_main(text, "main.cf", NULL, NULL);

	assert_non_null(c);
	return c;
}

static void
test_smtpd_conf(void **state)
{
	struct verify_smtpd o;
	struct errbuf err;
	struct config *c;

	(void)state;
	c = conf("");
	assert_int_equal(verify_smtpd_conf(c, &o, &err), 0);
	assert_int_equal(o.rcpt_rcode, 450);
	assert_int_equal(o.rcpt_dcode, 450);
	assert_int_equal(o.sender_rcode, 450);
	assert_false(o.rcpt_defer_now);
	assert_int_equal(o.poll_count, 3);
	assert_int_equal(o.poll_delay, 3);
	config_free(&c);
	c = conf("unverified_recipient_reject_code = 550\n"
		 "unverified_sender_tempfail_action = defer\n"
		 "address_verify_poll_count = 1\naddress_verify_poll_delay = 2\n"
		 "unverified_sender_reject_reason = Sender not verified\n");
	assert_int_equal(verify_smtpd_conf(c, &o, &err), 0);
	assert_int_equal(o.rcpt_rcode, 550);
	assert_true(o.sender_defer_now);
	assert_false(o.rcpt_defer_now);
	assert_int_equal(o.poll_count, 1);
	assert_int_equal(o.poll_delay, 2);
	assert_string_equal(o.sender_reason, "Sender not verified");
	assert_string_equal(o.rcpt_reason, "");
	config_free(&c);
	c = conf("unverified_recipient_tempfail_action = reject\n");
	assert_int_equal(verify_smtpd_conf(c, &o, &err), -1);
	assert_non_null(strstr(errbuf_str(&err),
			       "unverified_recipient_tempfail_action"));
	config_free(&c);
	c = conf("unverified_sender_reject_code = 250\n");
	assert_int_equal(verify_smtpd_conf(c, &o, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "unverified_sender_reject_code"));
	config_free(&c);
}

/* Without a verifier (facteur check, or not started), the restriction
 * tempfails with Postfix's "address verification problem". */
static void
test_no_verifier(void **state)
{
	struct verify_smtpd o;
	struct verify_verdict vd;
	struct errbuf err;
	struct config *c = conf("");

	(void)state;
	assert_int_equal(verify_smtpd_conf(c, &o, &err), 0);
	verify_set_current(NULL);
	verify_smtpd_check(&o, NULL, "a@example.net", false, &vd);
	assert_int_equal(vd.action, VERIFY_DEFER_IF_PERMIT);
	assert_int_equal(vd.code, 450);
	assert_string_equal(vd.dsn, "4.1.1");
	assert_string_equal(vd.text, "address verification problem");
	verify_smtpd_check(&o, NULL, "a@example.net", true, &vd);
	assert_string_equal(vd.dsn, "4.1.7");
	config_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing_and_expired),
		cmocka_unit_test(test_refresh),
		cmocka_unit_test(test_no_negative_cache),
		cmocka_unit_test(test_result_replaces),
		cmocka_unit_test(test_record_codec),
		cmocka_unit_test(test_smtpd_conf),
		cmocka_unit_test(test_no_verifier),
	};

	return cmocka_run_group_tests_name("verify", tests, NULL, NULL);
}
