/*
 * smtpd_ifaddrs.c - our own addresses (inet_interfaces, proxy_interfaces)
 * for permit_inet_interfaces and permit_mx_backup: literal addresses as
 * written, getifaddrs(3) when a value needs the interfaces themselves.
 * Comparison is by binary address, so "::1" and "0:0::1" match.
 * Must not: look anything up in DNS, or keep sockets.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/smtpd_ifaddrs.h"

static void
add_all(struct strlist *out)
{
	struct ifaddrs *ifa = NULL, *p;

	if (getifaddrs(&ifa) != 0)
		return;
	for (p = ifa; p; p = p->ifa_next) {
		char buf[INET6_ADDRSTRLEN];

		if (p->ifa_addr == NULL)
			continue;
		if (p->ifa_addr->sa_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)
					     p->ifa_addr)->sin_addr, buf,
				  sizeof(buf));
		else if (p->ifa_addr->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)
					      p->ifa_addr)->sin6_addr, buf,
				  sizeof(buf));
		else
			continue;
		if (!strlist_contains(out, buf))
			strlist_add(out, buf);
	}
	freeifaddrs(ifa);
}

/* Adds the literal addresses of value; true when it needs the
 * interfaces' own addresses ("all", "loopback-only", host names). */
static bool
add_value(struct strlist *out, const char *value)
{
	struct strlist l;
	bool all = false;

	strlist_init(&l);
	if (value != NULL)
		strlist_split(&l, value);
	for (size_t i = 0; i < l.n; i++) {
		const char *it = l.v[i];
		char tmp[INET6_ADDRSTRLEN + 2];
		struct in6_addr a6;
		struct in_addr a4;
		size_t n = strlen(it);

		if (n > 2 && it[0] == '[' && it[n - 1] == ']' &&
		    n - 2 < sizeof(tmp)) {
			memcpy(tmp, it + 1, n - 2);
			tmp[n - 2] = '\0';
			it = tmp;
		}
		if (inet_pton(AF_INET, it, &a4) == 1 ||
		    inet_pton(AF_INET6, it, &a6) == 1)
			strlist_add(out, it);
		else
			all = true;
	}
	strlist_free(&l);
	return all;
}

void
smtpd_ifaddrs_load(struct strlist *out, const char *inet_interfaces,
		   const char *proxy_interfaces)
{
	bool all = add_value(out, inet_interfaces && *inet_interfaces
			     ? inet_interfaces : "all");

	if (add_value(out, proxy_interfaces))
		all = true;
	if (all)
		add_all(out);
}

/* 4 or 16 bytes of ip into b; IPv4-mapped IPv6 gives 4. 0 if not an IP. */
static size_t
to_bin(const char *ip, unsigned char b[16])
{
	struct in6_addr a6;

	if (inet_pton(AF_INET, ip, b) == 1)
		return 4;
	if (inet_pton(AF_INET6, ip, &a6) != 1)
		return 0;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(b, a6.s6_addr + 12, 4);
		return 4;
	}
	memcpy(b, a6.s6_addr, 16);
	return 16;
}

bool
smtpd_ifaddrs_match(const struct strlist *l, const char *ip)
{
	unsigned char a[16], b[16];
	size_t na = to_bin(ip, a);

	if (na == 0)
		return false;
	for (size_t i = 0; i < l->n; i++)
		if (to_bin(l->v[i], b) == na && memcmp(a, b, na) == 0)
			return true;
	return false;
}
