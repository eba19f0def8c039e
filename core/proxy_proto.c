/*
 * proxy_proto.c - parses HAProxy's PROXY protocol header, version 1 (one
 * text line, "PROXY TCP4 SRC DST SPORT DPORT\r\n") and version 2 (binary,
 * 12-byte signature, command, family, length, addresses, TLVs), as
 * specified in haproxy's doc/proxy-protocol.txt.
 * Only TCP over IPv4/IPv6 is taken; v1 UNKNOWN and v2 LOCAL (health
 * checks) keep the connection's own addresses; TLVs are skipped.
 * Must not: look at bytes past the header, or accept a partial address.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/proxy_proto.h"

#define V1_MAX 107		/* "PROXY" ... CRLF, spec section 2.1 */

static const unsigned char v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

static int
fail(char *err, size_t errlen, const char *why)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", why);
	return -1;
}

/* A decimal port, 0..65535, no sign, no leading zero (but "0"). */
static int
v1_port(const char *s, size_t n, unsigned *r)
{
	unsigned v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*r = v;
	return 0;
}

static int
v1_addr(int family, const char *s, size_t n, unsigned port,
	struct sockaddr_storage *ss, socklen_t *len)
{
	char tmp[INET6_ADDRSTRLEN + 1];

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, tmp, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((unsigned short)port);
		*len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, tmp, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((unsigned short)port);
		*len = sizeof(*sin6);
	}
	return 0;
}

static int
parse_v1(const unsigned char *buf, size_t len, struct proxy_info *info,
	 char *err, size_t errlen)
{
	const char *p = (const char *)buf;
	const char *f[6];
	size_t fl[6], nf = 0, end, i, start;
	unsigned sport, dport;
	int family;

	for (end = 0; end + 1 < len && end + 2 <= V1_MAX; end++)
		if (buf[end] == '\r' && buf[end + 1] == '\n')
			break;
	if (end + 1 >= len || end + 2 > V1_MAX || buf[end] != '\r' ||
	    buf[end + 1] != '\n') {
		if (len >= V1_MAX)
			return fail(err, errlen, "v1 header too long");
		for (i = 0; i < len; i++)
			if (buf[i] == '\n' || (buf[i] == '\r' && i + 1 < len) ||
			    buf[i] == '\0')
				return fail(err, errlen, "v1 header: bad line end");
		return 0;
	}
	/* Fields separated by exactly one space. */
	for (i = 0, start = 0; i <= end; i++) {
		if (i < end && buf[i] != ' ')
			continue;
		if (nf == 6)
			return fail(err, errlen, "v1 header: too many fields");
		f[nf] = p + start;
		fl[nf++] = i - start;
		start = i + 1;
	}
	info->version = 1;
	if (nf >= 2 && fl[1] == 7 && memcmp(f[1], "UNKNOWN", 7) == 0) {
		info->local = 1;	/* the rest of the line is ignored */
		return (int)(end + 2);
	}
	for (i = 0; i < end; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return fail(err, errlen, "v1 header: bad character");
	if (nf < 2 || fl[1] != 4 ||
	    (memcmp(f[1], "TCP4", 4) != 0 && memcmp(f[1], "TCP6", 4) != 0))
		return fail(err, errlen, "v1 header: unsupported protocol");
	family = f[1][3] == '4' ? AF_INET : AF_INET6;
	if (nf != 6)
		return fail(err, errlen, "v1 header: missing fields");
	if (v1_port(f[4], fl[4], &sport) < 0)
		return fail(err, errlen, "v1 header: bad source port");
	if (v1_port(f[5], fl[5], &dport) < 0)
		return fail(err, errlen, "v1 header: bad destination port");
	if (v1_addr(family, f[2], fl[2], sport, &info->src, &info->srclen) < 0)
		return fail(err, errlen, "v1 header: bad source address");
	if (v1_addr(family, f[3], fl[3], dport, &info->dst, &info->dstlen) < 0)
		return fail(err, errlen, "v1 header: bad destination address");
	info->local = 0;
	return (int)(end + 2);
}

static int
parse_v2(const unsigned char *buf, size_t len, struct proxy_info *info,
	 char *err, size_t errlen)
{
	size_t alen, total;
	unsigned cmd, fam;

	if (len < 16)
		return 0;
	if ((buf[12] >> 4) != 2)
		return fail(err, errlen, "v2 header: unsupported version");
	cmd = buf[12] & 0x0f;
	if (cmd > 1)
		return fail(err, errlen, "v2 header: unsupported command");
	fam = buf[13];
	alen = ((size_t)buf[14] << 8) | buf[15];
	total = 16 + alen;
	if (total > PROXY_PROTO_MAX)
		return fail(err, errlen, "v2 header too long");
	if (len < total)
		return 0;
	info->version = 2;
	if (cmd == 0 || fam == 0x00) {
		info->local = 1;	/* LOCAL (health check) or UNSPEC */
		return (int)total;
	}
	memset(&info->src, 0, sizeof(info->src));
	memset(&info->dst, 0, sizeof(info->dst));
	if (fam == 0x11) {
		struct sockaddr_in *s = (struct sockaddr_in *)&info->src;
		struct sockaddr_in *d = (struct sockaddr_in *)&info->dst;

		if (alen < 12)
			return fail(err, errlen, "v2 header: short IPv4 "
				    "address block");
		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, buf + 16, 4);
		memcpy(&d->sin_addr, buf + 20, 4);
		memcpy(&s->sin_port, buf + 24, 2);
		memcpy(&d->sin_port, buf + 26, 2);
		info->srclen = info->dstlen = sizeof(*s);
	} else if (fam == 0x21) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&info->src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&info->dst;

		if (alen < 36)
			return fail(err, errlen, "v2 header: short IPv6 "
				    "address block");
		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, buf + 16, 16);
		memcpy(&d->sin6_addr, buf + 32, 16);
		memcpy(&s->sin6_port, buf + 48, 2);
		memcpy(&d->sin6_port, buf + 50, 2);
		info->srclen = info->dstlen = sizeof(*s);
	} else {
		return fail(err, errlen, "v2 header: unsupported address "
			    "family or protocol (only TCP over IPv4/IPv6)");
	}
	info->local = 0;
	return (int)total;
}

int
proxy_proto_parse(const unsigned char *buf, size_t len, struct proxy_info *info,
		  char *err, size_t errlen)
{
	size_t n;

	memset(info, 0, sizeof(*info));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len == 0)
		return 0;
	if (buf[0] == 'P') {
		n = len < 6 ? len : 6;
		if (memcmp(buf, "PROXY ", n) != 0)
			return fail(err, errlen, "not a PROXY protocol header");
		if (len < 6)
			return 0;
		return parse_v1(buf, len, info, err, errlen);
	}
	n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
	if (memcmp(buf, v2_sig, n) != 0)
		return fail(err, errlen, "not a PROXY protocol header");
	if (len < sizeof(v2_sig))
		return 0;
	return parse_v2(buf, len, info, err, errlen);
}
