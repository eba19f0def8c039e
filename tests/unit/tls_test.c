/*
 * tls_test.c - Postfix protocol lists in both syntaxes (exclusions,
 * inclusions, >= and <= bounds) mapped to OpenSSL versions and holes,
 * the effective security level, and bad values.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/tls.h"

#define NOOPS 0UL

static void
test_protocols(void **state)
{
	static const struct {
		const char   *spec;
		int           min, max;
		unsigned long ops;
	} ok[] = {
		{ "", TLS1_VERSION, TLS1_3_VERSION, NOOPS },
		{ "!SSLv2, !SSLv3", TLS1_VERSION, TLS1_3_VERSION, NOOPS },
		{ "!SSLv2 !SSLv3 !TLSv1 !TLSv1.1", TLS1_2_VERSION, TLS1_3_VERSION, NOOPS },
		{ ">=TLSv1", TLS1_VERSION, TLS1_3_VERSION, NOOPS },
		{ ">=TLSv1.2", TLS1_2_VERSION, TLS1_3_VERSION, NOOPS },
		{ ">= TLSv1.2", TLS1_2_VERSION, TLS1_3_VERSION, NOOPS },
		{ ">=tlsv1.3", TLS1_3_VERSION, TLS1_3_VERSION, NOOPS },
		{ "<=TLSv1.2", TLS1_VERSION, TLS1_2_VERSION, NOOPS },
		{ ">=TLSv1.1 <=TLSv1.2", TLS1_1_VERSION, TLS1_2_VERSION, NOOPS },
		{ "TLSv1.2", TLS1_2_VERSION, TLS1_2_VERSION, NOOPS },
		{ "TLSv1.2:TLSv1.3", TLS1_2_VERSION, TLS1_3_VERSION, NOOPS },
		{ "TLSv1, TLSv1.3", TLS1_VERSION, TLS1_3_VERSION,
		  SSL_OP_NO_TLSv1_1 | SSL_OP_NO_TLSv1_2 },
		{ "!TLSv1.2", TLS1_VERSION, TLS1_3_VERSION, SSL_OP_NO_TLSv1_2 },
		{ "SSLv3, TLSv1.2", TLS1_2_VERSION, TLS1_2_VERSION, NOOPS },
		{ ">=SSLv3", TLS1_VERSION, TLS1_3_VERSION, NOOPS },
	};
	struct errbuf err;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int min = -1, max = -1;
		unsigned long ops = 99;

		errbuf_clear(&err);
		if (tls_protocols_parse(ok[i].spec, &min, &max, &ops, &err) != 0)
			fail_msg("\"%s\": %s", ok[i].spec, errbuf_str(&err));
		if (min != ok[i].min || max != ok[i].max || ops != ok[i].ops)
			fail_msg("\"%s\": min %x max %x ops %lx", ok[i].spec,
				 min, max, ops);
	}
}

static void
test_protocol_errors(void **state)
{
	static const struct {
		const char *spec, *msg;
	} bad[] = {
		{ "TLSv9", "unknown TLS protocol \"TLSv9\"" },
		{ "!TLSv1.4", "unknown TLS protocol \"!TLSv1.4\"" },
		{ ">=", "\">=\" without a protocol name" },
		{ "SSLv2 SSLv3", "leaves no TLS protocol enabled" },
		{ ">=TLSv1.3 <=TLSv1.2", "leaves no TLS protocol enabled" },
		{ "!TLSv1 !TLSv1.1 !TLSv1.2 !TLSv1.3", "leaves no TLS" },
		{ "=>TLSv1.2", "unknown TLS protocol" },
	};
	struct errbuf err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int min, max;
		unsigned long ops;

		errbuf_clear(&err);
		if (tls_protocols_parse(bad[i].spec, &min, &max, &ops, &err) != -1)
			fail_msg("\"%s\" accepted", bad[i].spec);
		if (strstr(errbuf_str(&err), bad[i].msg) == NULL)
			fail_msg("\"%s\": %s", bad[i].spec, errbuf_str(&err));
	}
}

static void
test_level(void **state)
{
	static const struct {
		const char *level;
		bool enforce, use, wrapper;
		int rc;
		enum tls_level want;
	} cases[] = {
		{ "", false, false, false, 0, TLS_LEVEL_NONE },
		{ "", false, true, false, 0, TLS_LEVEL_MAY },
		{ "", true, false, false, 0, TLS_LEVEL_ENCRYPT },
		{ "", true, true, false, 0, TLS_LEVEL_ENCRYPT },
		{ "none", true, true, false, 0, TLS_LEVEL_NONE },
		{ "may", true, false, false, 0, TLS_LEVEL_MAY },
		{ "ENCRYPT", false, false, false, 0, TLS_LEVEL_ENCRYPT },
		{ "none", false, false, true, 0, TLS_LEVEL_ENCRYPT },
		{ "", false, false, true, 0, TLS_LEVEL_ENCRYPT },
		{ "verify", false, false, false, -1, TLS_LEVEL_NONE },
	};
	struct settings s;
	struct errbuf err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum tls_level l = TLS_LEVEL_NONE;

		memset(&s, 0, sizeof(s));
		s.smtpd_tls_security_level = (char *)cases[i].level;
		s.smtpd_enforce_tls = cases[i].enforce;
		s.smtpd_use_tls = cases[i].use;
		s.smtpd_tls_wrappermode = cases[i].wrapper;
		errbuf_clear(&err);
		assert_int_equal(tls_server_level(&s, &l, &err), cases[i].rc);
		if (cases[i].rc == 0)
			assert_int_equal(l, cases[i].want);
		else
			assert_non_null(strstr(errbuf_str(&err),
					       "smtpd_tls_security_level"));
	}
}

static void
test_ssl_options(void **state)
{
	struct errbuf err;
	uint64_t ops = 0;

	(void)state;
	errbuf_clear(&err);
	assert_int_equal(tls_ssl_options_parse("", &ops, &err), 0);
	assert_true(ops == 0);
	assert_int_equal(tls_ssl_options_parse("NO_TICKET, no_compression "
					       "0x40000000", &ops, &err), 0);
	assert_true(ops == (SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION |
			    (uint64_t)0x40000000));
	assert_int_equal(tls_ssl_options_parse("PRIORITIZE_CHACHA "
					       "ENABLE_MIDDLEBOX_COMPAT", &ops,
					       &err), 0);
	assert_true(ops == (SSL_OP_PRIORITIZE_CHACHA |
			    SSL_OP_ENABLE_MIDDLEBOX_COMPAT));
	assert_int_equal(tls_ssl_options_parse("NO_TICKET BOGUS", &ops, &err),
			 -1);
	assert_non_null(strstr(errbuf_str(&err), "\"BOGUS\""));
	assert_int_equal(tls_ssl_options_parse("0xZZ", &ops, &err), -1);
}

static void
test_cipher_list(void **state)
{
	struct settings s;
	struct errbuf err;
	struct buf l;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.tls_high_cipherlist = s.tls_medium_cipherlist = (char *)"";
	s.tls_low_cipherlist = s.tls_export_cipherlist = (char *)"";
	s.tls_null_cipherlist = (char *)"";
	buf_init(&l, 0);
	errbuf_clear(&err);
	assert_int_equal(tls_cipher_list(&s, "x", "high", "RC4 aNULL", &l,
					 &err), 0);
	assert_true(strncmp(buf_cstr(&l), "HIGH:", 5) == 0);
	assert_non_null(strstr(buf_cstr(&l), ":!RC4:!aNULL"));
	assert_int_equal(tls_cipher_list(&s, "x", "null", "", &l, &err), 0);
	assert_string_equal(buf_cstr(&l), "eNULL:!aNULL");
	s.tls_medium_cipherlist = (char *)"MEDIUM-LIST";
	assert_int_equal(tls_cipher_list(&s, "x", "export", NULL, &l, &err), 0);
	assert_string_equal(buf_cstr(&l), "MEDIUM-LIST");
	s.tls_low_cipherlist = (char *)"LOW-LIST";
	assert_int_equal(tls_cipher_list(&s, "x", "export", NULL, &l, &err), 0);
	assert_string_equal(buf_cstr(&l), "LOW-LIST");
	assert_int_equal(tls_cipher_list(&s, "smtp_tls_ciphers", "super", "",
					 &l, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "smtp_tls_ciphers"));
	buf_free(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_protocols),
		cmocka_unit_test(test_protocol_errors),
		cmocka_unit_test(test_level),
		cmocka_unit_test(test_ssl_options),
		cmocka_unit_test(test_cipher_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
