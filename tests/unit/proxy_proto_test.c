/*
 * proxy_proto_test.c - PROXY protocol headers: v1 TCP4/TCP6/UNKNOWN, v2
 * IPv4/IPv6/LOCAL with TLVs, incomplete input, garbage and malformed
 * fields, and that the parser never claims bytes past the header.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/proxy_proto.h"

static const unsigned char sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

static int
parse_str(const char *s, struct proxy_info *pi, char *err)
{
	return proxy_proto_parse((const unsigned char *)s, strlen(s), pi, err, 128);
}

static void
addr_text(const struct sockaddr_storage *ss, char *out, unsigned *port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s->sin_addr, out, INET6_ADDRSTRLEN);
		*port = ntohs(s->sin_port);
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s->sin6_addr, out, INET6_ADDRSTRLEN);
		*port = ntohs(s->sin6_port);
	}
}

static void
test_v1_tcp4(void **state)
{
	struct proxy_info pi;
	char err[128], a[INET6_ADDRSTRLEN];
	unsigned port;
	const char *h = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO x\r\n";

	assert_int_equal(parse_str(h, &pi, err), 44);
	assert_int_equal(pi.version, 1);
	assert_false(pi.local);
	addr_text(&pi.src, a, &port);
	assert_string_equal(a, "192.0.2.7");
	assert_int_equal(port, 56324);
	addr_text(&pi.dst, a, &port);
	assert_string_equal(a, "198.51.100.1");
	assert_int_equal(port, 25);
	assert_int_equal(pi.srclen, sizeof(struct sockaddr_in));
}

static void
test_v1_tcp6_unknown(void **state)
{
	struct proxy_info pi;
	char err[128], a[INET6_ADDRSTRLEN];
	unsigned port;

	assert_int_equal(parse_str("PROXY TCP6 2001:db8::5 2001:db8::1 "
				   "1024 587\r\n", &pi, err), 45);
	addr_text(&pi.src, a, &port);
	assert_string_equal(a, "2001:db8::5");
	assert_int_equal(port, 1024);
	assert_int_equal(parse_str("PROXY UNKNOWN\r\n", &pi, err), 15);
	assert_true(pi.local);
	assert_int_equal(parse_str("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
				   &pi, err), 35);
	assert_true(pi.local);
}

static void
test_v1_incomplete(void **state)
{
	struct proxy_info pi;
	char err[128];
	const char *h = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n";

	/* Every strict prefix asks for more. */
	for (size_t n = 0; n < strlen(h); n++)
		assert_int_equal(proxy_proto_parse((const unsigned char *)h, n,
						   &pi, err, sizeof(err)), 0);
}

static void
test_v1_bad(void **state)
{
	struct proxy_info pi;
	char err[128], longline[200];

	assert_int_equal(parse_str("EHLO client\r\n", &pi, err), -1);
	assert_string_equal(err, "not a PROXY protocol header");
	assert_int_equal(parse_str("PROXYTCP4", &pi, err), -1);
	assert_int_equal(parse_str("PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n",
				   &pi, err), -1);
	assert_string_equal(err, "v1 header: missing fields");
	assert_int_equal(parse_str("PROXY TCP4 192.0.2.777 198.51.100.1 1 2\r\n",
				   &pi, err), -1);
	assert_string_equal(err, "v1 header: bad source address");
	assert_int_equal(parse_str("PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n",
				   &pi, err), -1);
	assert_int_equal(parse_str("PROXY TCP4 192.0.2.7 198.51.100.1 65536 2\r\n",
				   &pi, err), -1);
	assert_string_equal(err, "v1 header: bad source port");
	assert_int_equal(parse_str("PROXY TCP4 192.0.2.7 198.51.100.1 01 2\r\n",
				   &pi, err), -1);
	assert_int_equal(parse_str("PROXY TCP4  192.0.2.7 198.51.100.1 1 2\r\n",
				   &pi, err), -1);
	assert_int_equal(parse_str("PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",
				   &pi, err), -1);
	assert_string_equal(err, "v1 header: unsupported protocol");
	assert_int_equal(parse_str("PROXY TCP4 192.0.2.7\n", &pi, err), -1);
	assert_int_equal(parse_str("PROXY TCP4 1.2.3.4\rX", &pi, err), -1);
	memset(longline, 'A', sizeof(longline));
	memcpy(longline, "PROXY UNKNOWN ", 14);
	assert_int_equal(proxy_proto_parse((unsigned char *)longline, 107, &pi,
					   err, sizeof(err)), -1);
	assert_string_equal(err, "v1 header too long");
	/* CRLF at bytes 106-107: 108 bytes, one too many */
	longline[106] = '\r';
	longline[107] = '\n';
	assert_int_equal(proxy_proto_parse((unsigned char *)longline, 108, &pi,
					   err, sizeof(err)), -1);
	/* ... at 105-106: exactly 107, the maximum */
	longline[105] = '\r';
	longline[106] = '\n';
	assert_int_equal(proxy_proto_parse((unsigned char *)longline, 108, &pi,
					   err, sizeof(err)), 107);
}

static size_t
v2_header(unsigned char *b, unsigned char cmd, unsigned char fam,
	  const unsigned char *addr, size_t alen, size_t tlv)
{
	memcpy(b, sig, 12);
	b[12] = (unsigned char)(0x20 | cmd);
	b[13] = fam;
	b[14] = (unsigned char)((alen + tlv) >> 8);
	b[15] = (unsigned char)((alen + tlv) & 0xff);
	memcpy(b + 16, addr, alen);
	memset(b + 16 + alen, 0xEE, tlv);
	return 16 + alen + tlv;
}

static void
test_v2_ipv4(void **state)
{
	unsigned char b[600], addr[12] = { 203, 0, 113, 9, 10, 0, 0, 1,
					   0x1f, 0x90, 0x00, 0x19 };
	struct proxy_info pi;
	char err[128], a[INET6_ADDRSTRLEN];
	unsigned port;
	size_t n = v2_header(b, 1, 0x11, addr, 12, 0);

	memcpy(b + n, "EHLO", 4);
	assert_int_equal(proxy_proto_parse(b, n + 4, &pi, err, sizeof(err)), 28);
	assert_int_equal(pi.version, 2);
	assert_false(pi.local);
	addr_text(&pi.src, a, &port);
	assert_string_equal(a, "203.0.113.9");
	assert_int_equal(port, 8080);
	addr_text(&pi.dst, a, &port);
	assert_string_equal(a, "10.0.0.1");
	assert_int_equal(port, 25);
	/* with TLVs (skipped), and incomplete at every length */
	n = v2_header(b, 1, 0x11, addr, 12, 500);
	assert_int_equal(proxy_proto_parse(b, n, &pi, err, sizeof(err)), 528);
	for (size_t k = 0; k < n; k++)
		assert_int_equal(proxy_proto_parse(b, k, &pi, err, sizeof(err)), 0);
}

static void
test_v2_ipv6_local(void **state)
{
	unsigned char b[100], addr[36];
	struct proxy_info pi;
	char err[128], a[INET6_ADDRSTRLEN];
	unsigned port;
	size_t n;

	memset(addr, 0, sizeof(addr));
	inet_pton(AF_INET6, "2001:db8::42", addr);
	inet_pton(AF_INET6, "2001:db8::1", addr + 16);
	addr[32] = 0x04;
	addr[33] = 0x00;	/* 1024 */
	addr[35] = 25;
	n = v2_header(b, 1, 0x21, addr, 36, 0);
	assert_int_equal(proxy_proto_parse(b, n, &pi, err, sizeof(err)), 52);
	addr_text(&pi.src, a, &port);
	assert_string_equal(a, "2001:db8::42");
	assert_int_equal(port, 1024);
	assert_int_equal(pi.srclen, sizeof(struct sockaddr_in6));
	/* LOCAL: a health check, the connection's own addresses */
	n = v2_header(b, 0, 0x00, addr, 0, 0);
	assert_int_equal(proxy_proto_parse(b, n, &pi, err, sizeof(err)), 16);
	assert_true(pi.local);
	/* PROXY with UNSPEC family: also local */
	n = v2_header(b, 1, 0x00, addr, 0, 0);
	assert_int_equal(proxy_proto_parse(b, n, &pi, err, sizeof(err)), 16);
	assert_true(pi.local);
}

static void
test_v2_bad(void **state)
{
	unsigned char b[100], addr[36] = { 0 };
	struct proxy_info pi;
	char err[128];
	size_t n;

	n = v2_header(b, 1, 0x11, addr, 8, 0);	/* short IPv4 block */
	assert_int_equal(proxy_proto_parse(b, n, &pi, err, sizeof(err)), -1);
	assert_string_equal(err, "v2 header: short IPv4 address block");
	n = v2_header(b, 1, 0x21, addr, 20, 0);
	assert_int_equal(proxy_proto_parse(b, n, &pi, err, sizeof(err)), -1);
	n = v2_header(b, 1, 0x12, addr, 12, 0);	/* UDP */
	assert_int_equal(proxy_proto_parse(b, n, &pi, err, sizeof(err)), -1);
	n = v2_header(b, 1, 0x31, addr, 0, 0);	/* AF_UNIX */
	assert_int_equal(proxy_proto_parse(b, n, &pi, err, sizeof(err)), -1);
	n = v2_header(b, 2, 0x11, addr, 12, 0);	/* command 2 */
	assert_int_equal(proxy_proto_parse(b, n, &pi, err, sizeof(err)), -1);
	assert_string_equal(err, "v2 header: unsupported command");
	n = v2_header(b, 1, 0x11, addr, 12, 0);
	b[12] = 0x11;				/* version 1 in a v2 header */
	assert_int_equal(proxy_proto_parse(b, n, &pi, err, sizeof(err)), -1);
	n = v2_header(b, 1, 0x11, addr, 12, 0);
	b[14] = 0xff;				/* 65292 bytes announced */
	assert_int_equal(proxy_proto_parse(b, n, &pi, err, sizeof(err)), -1);
	assert_string_equal(err, "v2 header too long");
	n = v2_header(b, 1, 0x11, addr, 12, 0);
	b[5] = 'X';				/* broken signature */
	assert_int_equal(proxy_proto_parse(b, n, &pi, err, sizeof(err)), -1);
	assert_string_equal(err, "not a PROXY protocol header");
	b[0] = 0x16;				/* a TLS ClientHello */
	assert_int_equal(proxy_proto_parse(b, 1, &pi, err, sizeof(err)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp4),
		cmocka_unit_test(test_v1_tcp6_unknown),
		cmocka_unit_test(test_v1_incomplete),
		cmocka_unit_test(test_v1_bad),
		cmocka_unit_test(test_v2_ipv4),
		cmocka_unit_test(test_v2_ipv6_local),
		cmocka_unit_test(test_v2_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
