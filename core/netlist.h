/*
 * netlist.h - network lists as in Postfix's mynetworks: which client
 * addresses a list value matches.
 * Items (separated by commas and/or white space): a.b.c.d, a.b.c.d/n,
 * [ipv6], [ipv6]/n, ipv6/n, /path/to/file (items, one or more per line,
 * "#" comments), type:name tables (looked up with the address string;
 * found = match, e.g. cidr:/etc/facteur/clients), and "!item" to exclude.
 * The first item that matches decides. IPv4-mapped IPv6 addresses
 * (::ffff:1.2.3.4) are matched as the IPv4 address they carry.
 */
#ifndef FACTEUR_NETLIST_H
#define FACTEUR_NETLIST_H
#include <stdbool.h>
#include <sys/socket.h>

#include "core/lib/errbuf.h"

/* One address: family AF_INET (a[0..3]) or AF_INET6 (a[0..15]). */
struct netlist_addr {
	int           family;
	unsigned char a[16];
};

/* One network: family, network bits, prefix length. */
struct netlist_cidr {
	int           family;
	unsigned char net[16];
	unsigned      prefix;
};

/*
 * Parses an address ("1.2.3.4", "::1", "[::1]"); an IPv4-mapped IPv6
 * address becomes IPv4. Returns 0, or -1 if s is not an address.
 */
int  netlist_addr_parse(const char *s, struct netlist_addr *a_r);
/* Converts a socket address (AF_INET/AF_INET6); -1 for other families. */
int  netlist_addr_from_sockaddr(const struct sockaddr *sa, struct netlist_addr *a_r);
/* Formats a for table keys ("1.2.3.4", "2001:db8::1"); buf >= 46 bytes. */
void netlist_addr_format(const struct netlist_addr *a, char *buf, size_t size);

/*
 * Parses a network: "1.2.3.0/24", "1.2.3.4" (/32), "[2001:db8::]/32",
 * "2001:db8::/32", "[::1]". Returns 0, or -1 + err naming s (bad address,
 * bad prefix, or "non-null host address bits in ...").
 */
int  netlist_cidr_parse(const char *s, struct netlist_cidr *c_r, struct errbuf *err);
bool netlist_cidr_match(const struct netlist_cidr *c, const struct netlist_addr *a);

struct netlist;

/* Parses a list value; NULL + err naming the bad item (or file, line N).
 * Files are read and tables opened now. An empty value matches nothing. */
struct netlist *netlist_new(const char *value, struct errbuf *err);
void netlist_free(struct netlist **nlp);
bool netlist_empty(const struct netlist *nl);

/*
 * Returns 1 if the address matches, 0 if not (also for an address that is
 * not IPv4/IPv6), -1 + err if a table in the list could not answer (the
 * caller defers: 4xx). Safe from several threads; may block only if the
 * list holds a blocking table.
 */
int  netlist_match(const struct netlist *nl, const struct sockaddr *sa,
		   struct errbuf *err);
/* Same, for an address string ("1.2.3.4", "::1", "[::1]"); a string that
 * is not an address matches nothing (0). */
int  netlist_match_str(const struct netlist *nl, const char *ip,
		       struct errbuf *err);

#endif
