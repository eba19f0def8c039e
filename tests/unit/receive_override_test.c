/*
 * receive_override_test.c - receive_override_options parsing: Postfix's
 * four names in any case and separator, the empty value, and an unknown
 * name refused with its name in the error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/receive_override.h"

static void
test_parse(void **state)
{
	struct errbuf err;
	unsigned bits = 99;

	(void)state;
	errbuf_clear(&err);
	assert_int_equal(receive_override_parse("", &bits, &err), 0);
	assert_int_equal(bits, 0);
	assert_int_equal(receive_override_parse(NULL, &bits, &err), 0);
	assert_int_equal(bits, 0);
	assert_int_equal(receive_override_parse(
		"no_unknown_recipient_checks, No_Address_Mappings\n"
		"\tno_header_body_checks,no_milters", &bits, &err), 0);
	assert_int_equal(bits, RECV_OVR_NO_UNKNOWN_RCPT |
			 RECV_OVR_NO_ADDRESS_MAPPINGS |
			 RECV_OVR_NO_HEADER_BODY_CHECKS | RECV_OVR_NO_MILTERS);
	assert_int_equal(receive_override_parse("no_milters, no_such_thing",
						&bits, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "\"no_such_thing\""));
}

static void
test_has(void **state)
{
	(void)state;
	assert_true(receive_override_has("no_address_mappings",
					 RECV_OVR_NO_ADDRESS_MAPPINGS));
	assert_false(receive_override_has("no_address_mappings",
					  RECV_OVR_NO_MILTERS));
	assert_false(receive_override_has(NULL, RECV_OVR_NO_MILTERS));
	assert_false(receive_override_has("", RECV_OVR_NO_MILTERS));
	assert_false(receive_override_has("bogus, no_milters",
					  RECV_OVR_NO_MILTERS));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_has),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
