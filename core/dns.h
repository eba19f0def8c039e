/*
 * dns.h - asynchronous DNS lookups (MX, A, AAAA, TXT, PTR, TLSA, NS) with c-ares on
 * the libevent loop, and host name <-> address lookups that read the hosts
 * file before DNS. Queries start and their callbacks run on the loop
 * thread; nothing here blocks. The resolver is the system's
 * (/etc/resolv.conf) unless facteur_dns_servers names servers.
 * DNSSEC: dns_query_secure asks the resolver for validation (AD and DO
 * bits, RFC 6840 5.7) and reports its AD bit; validation itself is the
 * resolver's job (Postfix trusts its resolver the same way).
 * Must not: be used from worker threads, or call a callback after
 * dns_free (pending queries are dropped silently).
 */
#ifndef FACTEUR_DNS_H
#define FACTEUR_DNS_H
#include <stdbool.h>
#include <stddef.h>

#include "core/lib/errbuf.h"

struct event_base;
struct dns;

enum dns_type { DNS_A = 1, DNS_AAAA = 28, DNS_MX = 15, DNS_TXT = 16,
		DNS_PTR = 12 };
/* TLSA (RFC 6698) is kept out of the enum so the existing switches over
 * the other types stay complete. */
#define DNS_TLSA ((enum dns_type)52)
/* NS (RFC 1035 3.3.11), likewise: data = the name server host name. */
#define DNS_NS ((enum dns_type)2)

enum dns_status {
	DNS_OK = 0,		/* at least one record */
	DNS_NOTFOUND,		/* NXDOMAIN or no record of that type */
	DNS_TEMPFAIL,		/* timeout, SERVFAIL, refused, bad reply */
};

/*
 * One record. MX: pref and data = exchange host ("" for the null MX "."
 * of RFC 7505); A/AAAA: data = the address in text form; TXT: data = the
 * character-strings of one record concatenated; PTR: data = host name;
 * TLSA (RFC 6698): usage, selector, mtype, and data = the association
 * data, len bytes (binary, NUL-terminated for safety).
 */
struct dns_rr {
	enum dns_type type;
	int           pref;
	char         *data;
	size_t        len;		/* TLSA: bytes of data */
	unsigned char usage, selector, mtype;	/* TLSA */
};

struct dns_result {
	struct dns_rr *rr;	/* owned */
	size_t         n;
	bool           secure;	/* the reply had the AD bit (validated by
				 * the resolver); meaningful only for
				 * dns_query_secure */
	char          *cname;	/* A/AAAA from DNS: the owner name of the
				 * addresses (the end of a CNAME chain in
				 * the answer), owned; else NULL */
};

/* Called on the loop thread; res is valid only during the call. */
typedef void dns_cb(void *arg, enum dns_status st, const struct dns_result *res,
		    const char *why);

/*
 * servers: NULL or "" for the system resolver, else a comma/space list of
 * "ip", "ip:port", "[ipv6]:port". NULL + err on a bad list.
 */
struct dns *dns_new(struct event_base *base, const char *servers,
		    struct errbuf *err);
/* Drops pending queries without calling their callbacks. */
void dns_free(struct dns **dp);
/*
 * Starts one query (no search list; the name is taken as absolute). The
 * callback runs exactly once, later, never from inside dns_query. The
 * callback may start new queries but must not call dns_free.
 */
void dns_query(struct dns *d, const char *name, enum dns_type type,
	       dns_cb *cb, void *arg);
/*
 * As dns_query, asking for DNSSEC (EDNS0 with DO, and AD in the header):
 * res->secure says whether the resolver validated the answer, also for
 * DNS_NOTFOUND (a validated denial). Same callback rules.
 */
void dns_query_secure(struct dns *d, const char *name, enum dns_type type,
		      dns_cb *cb, void *arg);
/*
 * The system's way of naming a host, as getnameinfo/getaddrinfo do: the
 * hosts file first, then DNS (c-ares lookups "fb"). dns_addr_names: the
 * names of an IPv4/IPv6 address in text form (DNS_PTR records, the
 * primary name first); dns_host_addrs: the addresses of name, of one
 * family (DNS_A when ipv6 is 0, else DNS_AAAA). Same callback rules as
 * dns_query.
 */
void dns_addr_names(struct dns *d, const char *ip, dns_cb *cb, void *arg);
void dns_host_addrs(struct dns *d, const char *name, int ipv6, dns_cb *cb,
		    void *arg);
/* Queries started and not yet answered. */
unsigned dns_pending(const struct dns *d);

/*
 * Parses one DNS reply packet of the given type (pure; unit tested).
 * DNS_OK with res filled (caller frees), DNS_NOTFOUND if it has no record
 * of that type (or the reply is NXDOMAIN), DNS_TEMPFAIL if malformed or
 * another error code. res->secure is the AD bit whatever the status.
 */
enum dns_status dns_parse(enum dns_type type, const unsigned char *abuf,
			  int alen, struct dns_result *res);
/* Sorts MX records by preference, shuffling equal preferences. */
void dns_mx_sort(struct dns_result *res);
void dns_result_free(struct dns_result *res);
/*
 * The reverse name of an IPv4 or IPv6 address under suffix: "1.2.3.4",
 * "in-addr.arpa" -> "4.3.2.1.in-addr.arpa" (also for DNSBL zones).
 * 0, or -1 if ip is not an address or out is too small.
 */
int  dns_reverse_name(const char *ip, const char *suffix, char *out,
		      size_t size);
/* Splits "ip[:port]" / "[ip6]:port" lists into c-ares' CSV form (tests). */
int  dns_servers_csv(const char *servers, char *out, size_t size,
		     struct errbuf *err);

#endif
