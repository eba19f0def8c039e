/*
 * smtp_tls_test.c - the SMTP client's TLS and SASL settings: security
 * levels (implemented, refused, unknown), the client context's need for
 * trust anchors at verify, smtp_sasl_security_options and the mechanism
 * filter.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "delivery/smtp_tls.h"

static void
test_levels(void **state)
{
	static const struct { const char *v; int rc; enum smtp_tls_level l; } c[] = {
		{ "", 0, SMTP_TLS_NONE }, { "none", 0, SMTP_TLS_NONE },
		{ "may", 0, SMTP_TLS_MAY }, { " Encrypt", 0, SMTP_TLS_ENCRYPT },
		{ "verify", 0, SMTP_TLS_VERIFY }, { "dane", -1, 0 },
		{ "secure", -1, 0 }, { "fingerprint", -1, 0 }, { "bogus", -1, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		enum smtp_tls_level l = SMTP_TLS_NONE;
		struct errbuf err;

		errbuf_clear(&err);
		assert_int_equal(smtp_tls_level_parse(c[i].v, &l, &err), c[i].rc);
		if (c[i].rc == 0)
			assert_int_equal(l, c[i].l);
		else
			assert_non_null(strstr(errbuf_str(&err), "smtp_tls_security_level"));
	}
}

static void
test_ctx(void **state)
{
	SSL_CTX *ctx = (SSL_CTX *)1;
	struct errbuf err;

	errbuf_clear(&err);
	assert_int_equal(smtp_tls_ctx_new(SMTP_TLS_NONE, "", "", &ctx, &err), 0);
	assert_null(ctx);
	assert_int_equal(smtp_tls_ctx_new(SMTP_TLS_MAY, "", "", &ctx, &err), 0);
	assert_non_null(ctx);
	SSL_CTX_free(ctx);
	assert_int_equal(smtp_tls_ctx_new(SMTP_TLS_VERIFY, "", "", &ctx, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "needs smtp_tls_CAfile"));
	assert_int_equal(smtp_tls_ctx_new(SMTP_TLS_VERIFY, "/nonexistent/ca.pem",
					  "", &ctx, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "/nonexistent/ca.pem"));
}

static void
test_sasl(void **state)
{
	unsigned o = 0;
	struct errbuf err;

	errbuf_clear(&err);
	assert_int_equal(smtp_sasl_opts_parse("noplaintext, noanonymous", &o, &err), 0);
	assert_int_equal(o, SMTP_SASL_NOPLAINTEXT | SMTP_SASL_NOANONYMOUS);
	assert_int_equal(smtp_sasl_opts_parse("", &o, &err), 0);
	assert_int_equal(o, 0);
	assert_int_equal(smtp_sasl_opts_parse("noanonymous nosuch", &o, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "\"nosuch\""));
	assert_false(smtp_sasl_mech_allowed("PLAIN", SMTP_SASL_NOPLAINTEXT, ""));
	assert_false(smtp_sasl_mech_allowed("LOGIN", SMTP_SASL_NOACTIVE, ""));
	assert_true(smtp_sasl_mech_allowed("PLAIN", SMTP_SASL_NOANONYMOUS, ""));
	assert_true(smtp_sasl_mech_allowed("LOGIN", 0, "cram-md5, login"));
	assert_false(smtp_sasl_mech_allowed("PLAIN", 0, "cram-md5, login"));
	assert_false(smtp_sasl_mech_allowed("PLAIN", 0, "plainx"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_ctx),
		cmocka_unit_test(test_sasl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
