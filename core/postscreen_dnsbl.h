/*
 * postscreen_dnsbl.h - postscreen_dnsbl_sites: parsing Postfix's
 * "domain[=filter][*weight]" entries (zen.spamhaus.org*3,
 * list.dnswl.org=127.0.[0..255].[1..3]*-5, b.barracudacentral.org=127.0.0.2)
 * and scoring the A records a client's lookups returned.
 * Pure functions: no DNS, no logging (postscreen.c asks and logs).
 */
#ifndef FACTEUR_POSTSCREEN_DNSBL_H
#define FACTEUR_POSTSCREEN_DNSBL_H
#include <stddef.h>

#include "core/lib/errbuf.h"

struct ps_dnsbl_site {
	char *domain;		/* lowercase, no trailing dot */
	char *filter;		/* NULL: any 127.x reply; else Postfix filter */
	int   weight;		/* default 1; negative for allowlists */
	size_t query;		/* index into the unique domain list */
};

struct ps_dnsbl {
	struct ps_dnsbl_site *sites;
	size_t                nsites;
	char                **domains;	/* unique domains: one query each */
	size_t                ndomains;
};

/*
 * Parses a postscreen_dnsbl_sites value (comma and/or white space
 * separated). 0, or -1 + err naming the bad entry. An empty value gives
 * an empty list.
 */
int  ps_dnsbl_parse(struct ps_dnsbl *d, const char *value, struct errbuf *err);
void ps_dnsbl_free(struct ps_dnsbl *d);

/*
 * The weight that one domain's A records (text addresses) add to the
 * score: each site entry of that domain counts once if any record matches
 * its filter. Without a filter, any address in 127.0.0.0/8 matches
 * (other answers are ignored as DNSBL errors, as Postfix does).
 */
int  ps_dnsbl_score(const struct ps_dnsbl *d, size_t domain_index,
		    const char *const *addrs, size_t naddrs);

#endif
