/*
 * smtpd_ifaddrs.h - the addresses this host receives mail on, as
 * Postfix's own_inet_addr / proxy_inet_addr see them: the literal
 * addresses of inet_interfaces (every interface's address when it says
 * "all", "loopback-only" or names hosts) plus those of proxy_interfaces.
 * Used by permit_inet_interfaces and permit_mx_backup.
 * Must not: resolve host names (it reads interfaces once, at start).
 */
#ifndef FACTEUR_SMTPD_IFADDRS_H
#define FACTEUR_SMTPD_IFADDRS_H
#include <stdbool.h>

#include "core/lib/strlist.h"

/* Fills out (text addresses) from the two parameter values (may be NULL). */
void smtpd_ifaddrs_load(struct strlist *out, const char *inet_interfaces,
			const char *proxy_interfaces);
/* True when ip (text; IPv4-mapped IPv6 counts as IPv4) is in l. */
bool smtpd_ifaddrs_match(const struct strlist *l, const char *ip);

#endif
