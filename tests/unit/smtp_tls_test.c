/*
 * smtp_tls_test.c - the SMTP client's TLS and SASL settings: security
 * levels (implemented, refused, unknown), the client context's need for
 * trust anchors at verify, smtp_sasl_security_options and the mechanism
 * filter; smtp_tls_policy_maps values (level, match=, protocols=, refused
 * levels and attributes), their lookup keys, and protocol version lists
 * applied to a TLS session.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "delivery/smtp_tls.h"

static void
test_levels(void **state)
{
	static const struct { const char *v; int rc; enum smtp_tls_level l; } c[] = {
		{ "", 0, SMTP_TLS_NONE }, { "none", 0, SMTP_TLS_NONE },
		{ "may", 0, SMTP_TLS_MAY }, { " Encrypt", 0, SMTP_TLS_ENCRYPT },
		{ "verify", 0, SMTP_TLS_VERIFY }, { "dane", 0, SMTP_TLS_DANE },
		{ "Dane-Only ", 0, SMTP_TLS_DANE_ONLY }, { "dane-bogus", -1, 0 },
		{ "secure", 0, SMTP_TLS_SECURE }, { "fingerprint", -1, 0 },
		{ "bogus", -1, 0 },
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
test_policy(void **state)
{
	struct smtp_tls_policy p;
	struct errbuf err;

	errbuf_clear(&err);
	assert_int_equal(smtp_tls_policy_parse("encrypt", &p, &err), 0);
	assert_int_equal(p.level, SMTP_TLS_ENCRYPT);
	assert_string_equal(p.match, "");
	assert_int_equal(smtp_tls_policy_parse(" verify match=hostname:nexthop "
					       "match=.example.com protocols=!SSLv3:!TLSv1 "
					       "ciphers=high", &p, &err), 0);
	assert_int_equal(p.level, SMTP_TLS_VERIFY);
	assert_string_equal(p.match, "hostname:nexthop:.example.com");
	assert_string_equal(p.protocols, "!SSLv3:!TLSv1");
	assert_int_equal(smtp_tls_policy_parse("None", &p, &err), 0);
	assert_int_equal(p.level, SMTP_TLS_NONE);
	assert_int_equal(smtp_tls_policy_parse("secure", &p, &err), 0);
	assert_int_equal(p.level, SMTP_TLS_SECURE);
	assert_int_equal(smtp_tls_policy_parse("fingerprint match=AB:CD "
					       "match=EF:01|23:45", &p, &err), 0);
	assert_int_equal(p.level, SMTP_TLS_FINGERPRINT);
	assert_string_equal(p.match, "AB:CD|EF:01|23:45");
	assert_int_equal(smtp_tls_policy_parse("fingerprint", &p, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "without match="));
	assert_int_equal(smtp_tls_policy_parse("dane", &p, &err), 0);
	assert_int_equal(p.level, SMTP_TLS_DANE);
	assert_int_equal(smtp_tls_policy_parse("dane-only", &p, &err), 0);
	assert_int_equal(p.level, SMTP_TLS_DANE_ONLY);
	assert_int_equal(smtp_tls_policy_parse("bogus", &p, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "invalid TLS security level"));
	assert_int_equal(smtp_tls_policy_parse("may foo=bar", &p, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "\"foo=bar\""));
	assert_int_equal(smtp_tls_policy_parse("encrypt protocols=TLSv9", &p, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "TLSv9"));
	assert_int_equal(smtp_tls_policy_parse("", &p, &err), -1);
}

static void
test_policy_keys(void **state)
{
	char k[8][300];

	assert_int_equal(smtp_tls_policy_keys("mail.example.com", 0, true, k, 8), 3);
	assert_string_equal(k[0], "mail.example.com");
	assert_string_equal(k[1], ".example.com");
	assert_string_equal(k[2], ".com");
	assert_int_equal(smtp_tls_policy_keys("relay.example", 587, false, k, 8), 1);
	assert_string_equal(k[0], "[relay.example]:587");
	assert_int_equal(smtp_tls_policy_keys("127.0.0.1", 0, false, k, 8), 1);
	assert_string_equal(k[0], "[127.0.0.1]");
	assert_int_equal(smtp_tls_policy_keys("example.com", 2525, true, k, 8), 1);
	assert_string_equal(k[0], "example.com:2525");
	assert_int_equal(smtp_tls_policy_keys("a.b.c", 0, true, k, 2), 2);
}

static void
test_protocols(void **state)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	struct errbuf err;

	assert_non_null(ctx);
	errbuf_clear(&err);
	ssl = SSL_new(ctx);
	assert_int_equal(smtp_tls_protocols_apply(ssl, ">=TLSv1.2", &err), 0);
	assert_int_equal(SSL_get_min_proto_version(ssl), TLS1_2_VERSION);
	assert_int_equal(SSL_get_max_proto_version(ssl), TLS1_3_VERSION);
	SSL_free(ssl);
	ssl = SSL_new(ctx);
	assert_int_equal(smtp_tls_protocols_apply(ssl, "!SSLv2, !SSLv3, !TLSv1.3", &err), 0);
	assert_int_equal(SSL_get_min_proto_version(ssl), TLS1_VERSION);
	assert_int_equal(SSL_get_max_proto_version(ssl), TLS1_2_VERSION);
	SSL_free(ssl);
	ssl = SSL_new(ctx);
	/* a hole: TLSv1 and TLSv1.2 only */
	assert_int_equal(smtp_tls_protocols_apply(ssl, "TLSv1:TLSv1.2", &err), 0);
	assert_int_equal(SSL_get_min_proto_version(ssl), TLS1_VERSION);
	assert_int_equal(SSL_get_max_proto_version(ssl), TLS1_2_VERSION);
	assert_true((SSL_get_options(ssl) & SSL_OP_NO_TLSv1_1) != 0);
	SSL_free(ssl);
	assert_int_equal(smtp_tls_protocols_apply(NULL, "<=TLSv1.1 >=TLSv1.2", &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "no protocol version left"));
	assert_int_equal(smtp_tls_protocols_apply(NULL, "SSLv3", &err), -1);
	SSL_CTX_free(ctx);
}

/* A self-signed certificate on a P-256 key, for fingerprints. */
static X509 *
make_cert(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();

	assert_non_null(k);
	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"fp.test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	EVP_PKEY_free(k);
	return x;
}

static void
hexfp(const unsigned char *md, unsigned n, bool colons, char *out)
{
	unsigned i;

	for (i = 0; i < n; i++)
		out += sprintf(out, colons ? (i ? ":%02X" : "%02X") : "%02x", md[i]);
}

static void
test_fingerprint(void **state)
{
	X509 *x = make_cert();
	unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
	unsigned n;
	char fp[200], pk[200], list[600];
	int len;

	assert_int_equal(X509_digest(x, EVP_sha256(), md, &n), 1);
	hexfp(md, n, true, fp);
	assert_true(smtp_tls_fingerprint_match(x, fp));
	hexfp(md, n, false, fp);	/* lower case, no colons */
	assert_true(smtp_tls_fingerprint_match(x, fp));
	snprintf(list, sizeof(list), "00:11|%s", fp);
	assert_true(smtp_tls_fingerprint_match(x, list));
	fp[0] = fp[0] == '0' ? '1' : '0';
	assert_false(smtp_tls_fingerprint_match(x, fp));
	fp[strlen(fp) - 2] = '\0';	/* a prefix is not a match */
	assert_false(smtp_tls_fingerprint_match(x, fp));
	/* the public key's fingerprint matches too */
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	assert_true(len > 0);
	assert_int_equal(EVP_Digest(der, (size_t)len, md, &n, EVP_sha256(), NULL), 1);
	OPENSSL_free(der);
	hexfp(md, n, true, pk);
	assert_true(smtp_tls_fingerprint_match(x, pk));
	assert_false(smtp_tls_fingerprint_match(x, ""));
	assert_false(smtp_tls_fingerprint_match(NULL, pk));
	X509_free(x);
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
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_policy_keys),
		cmocka_unit_test(test_protocols),
		cmocka_unit_test(test_fingerprint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
