/*
 * smtp_dane_test.c - DANE pieces: TLSA records and the AD bit read from
 * hand-built DNS replies (also malformed ones: short RDATA, counts beyond
 * the packet, bad names -> errors, never a crash), the AD bit on MX and
 * A replies, usable-record filtering (RFC 7672 3.1.3), the per-server
 * decision of dane / dane-only, smtp_dns_support_level values, and
 * OpenSSL's DANE wiring on a real SSL object.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "core/dns.h"
#include "delivery/smtp_dane.h"

struct pkt {
	unsigned char b[2048];
	int n;
};

static void
put8(struct pkt *p, unsigned v)
{
	p->b[p->n++] = (unsigned char)v;
}

static void
put16(struct pkt *p, unsigned v)
{
	put8(p, v >> 8);
	put8(p, v & 0xff);
}

static void
put_name(struct pkt *p, const char *name)
{
	while (*name) {
		size_t l = strcspn(name, ".");
		put8(p, (unsigned)l);
		memcpy(p->b + p->n, name, l);
		p->n += (int)l;
		name += l;
		if (*name == '.')
			name++;
	}
	put8(p, 0);
}

/* Header (QR RD RA, AD when ad, rcode) + one question. */
static void
start(struct pkt *p, const char *name, unsigned type, unsigned ancount,
      int ad, unsigned rcode)
{
	p->n = 0;
	put16(p, 0x4321);
	put16(p, 0x8180 | (ad ? 0x20 : 0) | rcode);
	put16(p, 1);
	put16(p, ancount);
	put16(p, 0);
	put16(p, 0);
	put_name(p, name);
	put16(p, type);
	put16(p, 1);
}

/* One TLSA RR (owner: pointer to the question) with rdlen bytes given. */
static void
add_tlsa_raw(struct pkt *p, const unsigned char *rd, unsigned rdlen)
{
	put16(p, 0xc00c);
	put16(p, 52);
	put16(p, 1);
	put16(p, 0);
	put16(p, 300);
	put16(p, rdlen);
	memcpy(p->b + p->n, rd, rdlen);
	p->n += (int)rdlen;
}

static void
add_tlsa(struct pkt *p, unsigned u, unsigned s, unsigned m, unsigned dlen,
	 unsigned char fill)
{
	unsigned char rd[80];

	rd[0] = (unsigned char)u;
	rd[1] = (unsigned char)s;
	rd[2] = (unsigned char)m;
	memset(rd + 3, fill, dlen);
	add_tlsa_raw(p, rd, dlen + 3);
}

static void
test_tlsa_parse(void **state)
{
	struct pkt p;
	struct dns_result r;

	start(&p, "_25._tcp.mx.example.net", 52, 3, 1, 0);
	add_tlsa(&p, 3, 1, 1, 32, 0xab);
	add_tlsa(&p, 2, 0, 1, 32, 0xcd);
	add_tlsa(&p, 1, 1, 2, 64, 0x01);
	assert_int_equal(dns_parse(DNS_TLSA, p.b, p.n, &r), DNS_OK);
	assert_true(r.secure);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.rr[0].type, DNS_TLSA);
	assert_int_equal(r.rr[0].usage, 3);
	assert_int_equal(r.rr[0].selector, 1);
	assert_int_equal(r.rr[0].mtype, 1);
	assert_int_equal(r.rr[0].len, 32);
	assert_int_equal((unsigned char)r.rr[0].data[31], 0xab);
	assert_int_equal(r.rr[1].usage, 2);
	assert_int_equal(r.rr[1].selector, 0);
	assert_int_equal(r.rr[2].len, 64);
	assert_int_equal(smtp_dane_count_usable(&r), 2);
	dns_result_free(&r);

	/* the same without AD: parsed, not secure */
	start(&p, "_25._tcp.mx.example.net", 52, 1, 0, 0);
	add_tlsa(&p, 3, 1, 1, 32, 0xab);
	assert_int_equal(dns_parse(DNS_TLSA, p.b, p.n, &r), DNS_OK);
	assert_false(r.secure);
	assert_int_equal(r.n, 1);
	dns_result_free(&r);

	/* NXDOMAIN with AD: a validated denial */
	start(&p, "_25._tcp.mx.example.net", 52, 0, 1, 3);
	assert_int_equal(dns_parse(DNS_TLSA, p.b, p.n, &r), DNS_NOTFOUND);
	assert_true(r.secure);
	assert_int_equal(r.n, 0);
	/* NOERROR, no answer */
	start(&p, "_25._tcp.mx.example.net", 52, 0, 1, 0);
	assert_int_equal(dns_parse(DNS_TLSA, p.b, p.n, &r), DNS_NOTFOUND);
	/* SERVFAIL */
	start(&p, "_25._tcp.mx.example.net", 52, 0, 0, 2);
	assert_int_equal(dns_parse(DNS_TLSA, p.b, p.n, &r), DNS_TEMPFAIL);
}

static void
test_tlsa_malformed(void **state)
{
	struct pkt p;
	struct dns_result r;
	unsigned char rd[3] = { 3, 1, 1 };
	int i;

	/* RDATA of 3 bytes: no association data */
	start(&p, "_25._tcp.mx.example.net", 52, 1, 1, 0);
	add_tlsa_raw(&p, rd, 3);
	assert_int_equal(dns_parse(DNS_TLSA, p.b, p.n, &r), DNS_TEMPFAIL);
	assert_int_equal(r.n, 0);
	assert_null(r.rr);
	/* RDATA of 1 byte */
	start(&p, "_25._tcp.mx.example.net", 52, 1, 1, 0);
	add_tlsa_raw(&p, rd, 1);
	assert_int_equal(dns_parse(DNS_TLSA, p.b, p.n, &r), DNS_TEMPFAIL);
	/* ancount says 2, one record present */
	start(&p, "_25._tcp.mx.example.net", 52, 2, 1, 0);
	add_tlsa(&p, 3, 1, 1, 32, 0xab);
	assert_int_equal(dns_parse(DNS_TLSA, p.b, p.n, &r), DNS_TEMPFAIL);
	assert_null(r.rr);
	/* rdlength beyond the packet */
	start(&p, "_25._tcp.mx.example.net", 52, 1, 1, 0);
	add_tlsa(&p, 3, 1, 1, 32, 0xab);
	p.n -= 5;
	assert_int_equal(dns_parse(DNS_TLSA, p.b, p.n, &r), DNS_TEMPFAIL);
	/* qdcount beyond the packet */
	start(&p, "_25._tcp.mx.example.net", 52, 0, 1, 0);
	p.b[5] = 9;
	assert_int_equal(dns_parse(DNS_TLSA, p.b, p.n, &r), DNS_TEMPFAIL);
	/* a compression pointer to itself */
	start(&p, "_25._tcp.mx.example.net", 52, 1, 1, 0);
	put16(&p, 0xc000 | (unsigned)p.n);
	put16(&p, 52);
	put16(&p, 1);
	assert_int_equal(dns_parse(DNS_TLSA, p.b, p.n, &r), DNS_TEMPFAIL);
	/* shorter than a header */
	assert_int_equal(dns_parse(DNS_TLSA, p.b, 11, &r), DNS_TEMPFAIL);
	assert_int_equal(dns_parse(DNS_TLSA, NULL, 0, &r), DNS_TEMPFAIL);
	/* every truncation of a good reply: an error or a clean result */
	start(&p, "_25._tcp.mx.example.net", 52, 2, 1, 0);
	add_tlsa(&p, 3, 1, 1, 32, 0xab);
	add_tlsa(&p, 2, 0, 2, 64, 0xcd);
	for (i = 0; i < p.n; i++) {
		enum dns_status st = dns_parse(DNS_TLSA, p.b, i, &r);
		assert_true(st == DNS_TEMPFAIL || st == DNS_OK);
		dns_result_free(&r);
	}
	assert_int_equal(dns_parse(DNS_TLSA, p.b, p.n, &r), DNS_OK);
	assert_int_equal(r.n, 2);
	dns_result_free(&r);
}

/* The AD bit is reported on the other types too. */
static void
test_ad_other_types(void **state)
{
	struct pkt p;
	struct dns_result r;

	start(&p, "example.net", DNS_A, 1, 1, 0);
	put16(&p, 0xc00c);
	put16(&p, DNS_A);
	put16(&p, 1);
	put16(&p, 0);
	put16(&p, 300);
	put16(&p, 4);
	put8(&p, 127); put8(&p, 0); put8(&p, 0); put8(&p, 1);
	assert_int_equal(dns_parse(DNS_A, p.b, p.n, &r), DNS_OK);
	assert_true(r.secure);
	assert_string_equal(r.rr[0].data, "127.0.0.1");
	assert_true(r.cname == NULL || strcmp(r.cname, "example.net") == 0);
	dns_result_free(&r);
	p.b[3] &= (unsigned char)~0x20;
	assert_int_equal(dns_parse(DNS_A, p.b, p.n, &r), DNS_OK);
	assert_false(r.secure);
	dns_result_free(&r);
	/* through a CNAME: the owner of the addresses is reported */
	start(&p, "alias.example.net", DNS_A, 2, 1, 0);
	put16(&p, 0xc00c);
	put16(&p, 5);			/* CNAME */
	put16(&p, 1);
	put16(&p, 0);
	put16(&p, 300);
	put16(&p, 16);			/* "mx.example.net" */
	put_name(&p, "mx.example.net");
	put_name(&p, "mx.example.net");
	put16(&p, DNS_A);
	put16(&p, 1);
	put16(&p, 0);
	put16(&p, 300);
	put16(&p, 4);
	put8(&p, 127); put8(&p, 0); put8(&p, 0); put8(&p, 2);
	assert_int_equal(dns_parse(DNS_A, p.b, p.n, &r), DNS_OK);
	assert_true(r.secure);
	assert_string_equal(r.rr[0].data, "127.0.0.2");
	assert_non_null(r.cname);
	assert_string_equal(r.cname, "mx.example.net");
	dns_result_free(&r);
	assert_null(r.cname);
	/* a validated NODATA for MX */
	start(&p, "example.net", DNS_MX, 0, 1, 0);
	assert_int_equal(dns_parse(DNS_MX, p.b, p.n, &r), DNS_NOTFOUND);
	assert_true(r.secure);
}

static void
test_usable(void **state)
{
	char d[64];
	struct dns_rr rr = { DNS_TLSA, 0, d, 32, 3, 1, 1 };

	memset(d, 1, sizeof(d));
	assert_true(smtp_dane_usable(&rr));
	rr.usage = 2;
	assert_true(smtp_dane_usable(&rr));
	rr.usage = 1;			/* PKIX-EE: unusable for SMTP */
	assert_false(smtp_dane_usable(&rr));
	rr.usage = 0;			/* PKIX-TA */
	assert_false(smtp_dane_usable(&rr));
	rr.usage = 4;
	assert_false(smtp_dane_usable(&rr));
	rr.usage = 3;
	rr.len = 31;			/* SHA-256 of the wrong size */
	assert_false(smtp_dane_usable(&rr));
	rr.mtype = 2;
	rr.len = 64;
	assert_true(smtp_dane_usable(&rr));
	rr.len = 32;
	assert_false(smtp_dane_usable(&rr));
	rr.mtype = 0;			/* full data, any size */
	assert_true(smtp_dane_usable(&rr));
	rr.mtype = 3;
	assert_false(smtp_dane_usable(&rr));
	rr.mtype = 1;
	rr.selector = 2;
	assert_false(smtp_dane_usable(&rr));
	rr.selector = 0;
	rr.type = DNS_TXT;
	assert_false(smtp_dane_usable(&rr));
	assert_false(smtp_dane_usable(NULL));
}

static void
test_decide(void **state)
{
	char d[32], why[300];
	struct dns_rr ok = { DNS_TLSA, 0, d, 32, 3, 1, 1 };
	struct dns_rr pkix = { DNS_TLSA, 0, d, 32, 1, 1, 1 };
	struct dns_result good = { &ok, 1, true, NULL };
	struct dns_result insecure = { &ok, 1, false, NULL };
	struct dns_result unusable = { &pkix, 1, true, NULL };
	struct dns_result none = { NULL, 0, true, NULL };

	memset(d, 7, sizeof(d));
	assert_int_equal(smtp_dane_decide(false, true, DNS_OK, &good, "mx.x", 25,
					  why, sizeof(why)), SMTP_DANE_VERIFY);
	assert_int_equal(smtp_dane_decide(true, true, DNS_OK, &good, "mx.x", 25,
					  why, sizeof(why)), SMTP_DANE_VERIFY);
	/* insecure destination */
	assert_int_equal(smtp_dane_decide(false, false, DNS_OK, &good, "mx.x",
					  25, why, sizeof(why)), SMTP_DANE_MAY);
	assert_non_null(strstr(why, "non DNSSEC destination"));
	assert_int_equal(smtp_dane_decide(true, false, DNS_OK, &good, "mx.x",
					  25, why, sizeof(why)), SMTP_DANE_DEFER);
	/* TLSA lookup failure: always deferred */
	assert_int_equal(smtp_dane_decide(false, true, DNS_TEMPFAIL, NULL,
					  "mx.x", 25, why, sizeof(why)),
			 SMTP_DANE_DEFER);
	assert_string_equal(why, "TLSA lookup error for mx.x:25");
	/* no TLSA, or not validated */
	assert_int_equal(smtp_dane_decide(false, true, DNS_NOTFOUND, &none,
					  "mx.x", 25, why, sizeof(why)),
			 SMTP_DANE_MAY);
	assert_int_equal(smtp_dane_decide(false, true, DNS_OK, &insecure,
					  "mx.x", 25, why, sizeof(why)),
			 SMTP_DANE_MAY);
	assert_int_equal(smtp_dane_decide(true, true, DNS_NOTFOUND, &none,
					  "mx.x", 25, why, sizeof(why)),
			 SMTP_DANE_DEFER);
	assert_non_null(strstr(why, "no TLSA records found"));
	/* secure, none usable: encrypted (Postfix), dane-only defers */
	assert_int_equal(smtp_dane_decide(false, true, DNS_OK, &unusable,
					  "mx.x", 25, why, sizeof(why)),
			 SMTP_DANE_ENCRYPT);
	assert_int_equal(smtp_dane_decide(true, true, DNS_OK, &unusable,
					  "mx.x", 25, why, sizeof(why)),
			 SMTP_DANE_DEFER);
	assert_non_null(strstr(why, "unusable"));
}

static void
test_dns_support(void **state)
{
	enum smtp_dns_support l;
	struct errbuf err;

	errbuf_clear(&err);
	assert_int_equal(smtp_dns_support_parse("", &l, &err), 0);
	assert_int_equal(l, SMTP_DNS_ENABLED);
	assert_int_equal(smtp_dns_support_parse(NULL, &l, &err), 0);
	assert_int_equal(l, SMTP_DNS_ENABLED);
	assert_int_equal(smtp_dns_support_parse(" DNSSEC ", &l, &err), 0);
	assert_int_equal(l, SMTP_DNS_DNSSEC);
	assert_int_equal(smtp_dns_support_parse("disabled", &l, &err), 0);
	assert_int_equal(l, SMTP_DNS_DISABLED);
	assert_int_equal(smtp_dns_support_parse("enabled", &l, &err), 0);
	assert_int_equal(l, SMTP_DNS_ENABLED);
	assert_int_equal(smtp_dns_support_parse("dane", &l, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "smtp_dns_support_level"));
}

/* OpenSSL's DANE takes the usable records only. */
static void
test_apply(void **state)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	char d[32], e[32];
	struct dns_rr rr[2] = {
		{ DNS_TLSA, 0, d, 32, 1, 1, 1 },	/* PKIX-EE: skipped */
		{ DNS_TLSA, 0, e, 32, 3, 1, 1 },
	};
	struct dns_result r = { rr, 2, true, NULL };
	struct errbuf err;

	memset(d, 1, sizeof(d));
	memset(e, 2, sizeof(e));
	assert_non_null(ctx);
	assert_int_equal(smtp_dane_ctx_enable(ctx), 0);
	ssl = SSL_new(ctx);
	assert_non_null(ssl);
	errbuf_clear(&err);
	assert_int_equal(smtp_dane_apply(ssl, "mx.example.net", &r, &err), 1);
	assert_false(smtp_dane_verified(ssl, NULL));	/* no handshake yet */
	SSL_free(ssl);
	/* nothing usable: an error */
	r.n = 1;
	ssl = SSL_new(ctx);
	assert_int_equal(smtp_dane_apply(ssl, "mx.example.net", &r, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "no usable TLSA"));
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tlsa_parse),
		cmocka_unit_test(test_tlsa_malformed),
		cmocka_unit_test(test_ad_other_types),
		cmocka_unit_test(test_usable),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_dns_support),
		cmocka_unit_test(test_apply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
