/*
 * policy_dns.h - synchronous DNS for restrictions evaluated on worker
 * threads (reject_unknown_*_domain, reject_unknown_helo_hostname,
 * reject_rbl_*, reject_rhsbl_*, check_*_{mx,ns,a}_access, permit_mx_backup;
 * the client's own name is looked up once per session, at connect, by core/smtpd_peername.c): one c-ares channel
 * per lookup, driven with poll() until the answer or a bounded deadline. Also the pure helpers those
 * restrictions need: DNSBL reply filters ("127.0.0.[2..11;20]") and
 * Postfix's rbl reply templates ($rbl_code, ${rbl_reason?; $rbl_reason}).
 * Blocking: every lookup function blocks up to the resolver's deadline;
 * call them from worker threads only, never from the event loop.
 */
#ifndef FACTEUR_POLICY_DNS_H
#define FACTEUR_POLICY_DNS_H
#include <stdbool.h>
#include <stddef.h>

#include "core/dns.h"
#include "core/lib/buf.h"
#include "core/lib/errbuf.h"

struct policy_dns;

/* servers: NULL/"" for the system resolver, else facteur_dns_servers
 * syntax. timeout_ms bounds one lookup as a whole. NULL + err on a bad
 * server list. */
struct policy_dns *policy_dns_new(const char *servers, long timeout_ms,
				  struct errbuf *err);
void policy_dns_free(struct policy_dns **pp);

/* One query (name taken as absolute). DNS_OK fills res (caller frees
 * with dns_result_free); otherwise res is empty and why says what
 * happened. Thread-safe. */
enum dns_status policy_dns_lookup(const struct policy_dns *p, const char *name,
				  enum dns_type type, struct dns_result *res,
				  struct errbuf *why);

enum policy_dns_host {
	POLICY_DNS_FOUND,	/* an MX (non-null) or an address record */
	POLICY_DNS_NOTFOUND,	/* NXDOMAIN, or none of the types asked */
	POLICY_DNS_NULLMX,	/* RFC 7505 "MX 0 ." */
	POLICY_DNS_TEMPFAIL,
};
/* reject_unknown_*_domain: MX, then A, then AAAA. */
enum policy_dns_host policy_dns_mailhost(const struct policy_dns *p,
					 const char *domain, struct errbuf *why);
/* reject_unknown_helo_hostname: A, then AAAA, then MX (a null MX still
 * proves the name exists). */
enum policy_dns_host policy_dns_hostname(const struct policy_dns *p,
					 const char *name, struct errbuf *why);

/* The addresses of a host name: its A records, then its AAAA records
 * (both types asked). DNS_OK when either gave one (res filled, caller
 * frees); DNS_TEMPFAIL when none did and a lookup failed. */
enum dns_status policy_dns_addrs(const struct policy_dns *p, const char *name,
				 struct dns_result *res, struct errbuf *why);

/*
 * A DNSBL reply filter in Postfix's syntax: four octets, each a number or
 * "[" list "]" of numbers and ranges "a..b" separated by ';'. 0, or -1 +
 * err when malformed.
 */
int  policy_dns_filter_check(const char *filter, struct errbuf *err);
bool policy_dns_filter_match(const char *filter, const char *ipv4);

enum policy_dns_xl { POLICY_DNS_LISTED, POLICY_DNS_UNLISTED,
		     POLICY_DNS_XL_TEMPFAIL };
/*
 * One DNSxL query: A records of query (filtered when filter is not NULL);
 * when listed, txt_r gets the TXT records joined with " / " (up to 500
 * bytes), "" if none.
 */
enum policy_dns_xl policy_dns_xl(const struct policy_dns *p, const char *query,
				 const char *filter, struct buf *txt_r,
				 struct errbuf *why);

/*
 * Expands a reply template with Postfix's mac_expand forms: $name,
 * ${name}, ${name?text} (text when the value is not empty), ${name:text}
 * (text when it is empty), and $$. lookup returns the value of a name or
 * NULL when the name is unknown. 0, or -1 + err (unknown name, bad
 * syntax, result too long).
 */
typedef const char *policy_dns_var(void *ctx, const char *name);
int policy_dns_expand(const char *tmpl, policy_dns_var *lookup, void *ctx,
		      struct buf *out, struct errbuf *err);

#endif
