/*
 * fuzz_postscreen_dnsbl.c - libFuzzer target for the postscreen_dnsbl_sites
 * parser and scoring, and the greylisting sender key. The input is split
 * at NUL bytes: the sites value, then reply addresses (one per line), then
 * a sender address. Checks, beyond "no crash": a parsed list has a domain
 * index in range for every site, the score of one domain is bounded by the
 * sum of its weights' magnitudes, and the sender key is never longer than
 * the sender with its '@' part lowercased.
 * Must not: keep state between inputs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/greylist.h"
#include "core/postscreen_dnsbl.h"

#define MAX_ADDRS 16

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *sites, *addrs, *sender, *p, *end;
	const char *av[MAX_ADDRS];
	size_t na = 0;
	struct ps_dnsbl d;
	struct errbuf err;

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	end = copy + size;
	sites = copy;
	p = sites + strlen(sites);
	addrs = p < end ? p + 1 : p;
	p = addrs + strlen(addrs);
	sender = p < end ? p + 1 : p;
	for (char *a = strtok(addrs, "\n"); a != NULL && na < MAX_ADDRS;
	     a = strtok(NULL, "\n"))
		av[na++] = a;

	errbuf_clear(&err);
	if (ps_dnsbl_parse(&d, sites, &err) == 0) {
		for (size_t i = 0; i < d.nsites; i++)
			if (d.sites[i].query >= d.ndomains)
				abort();
		for (size_t q = 0; q < d.ndomains; q++) {
			long bound = 0;
			int sc = ps_dnsbl_score(&d, q, av, na);

			for (size_t i = 0; i < d.nsites; i++)
				if (d.sites[i].query == q)
					bound += labs((long)d.sites[i].weight);
			if (labs((long)sc) > bound)
				abort();
		}
		ps_dnsbl_free(&d);
	} else if (errbuf_str(&err)[0] == '\0') {
		abort();		/* a failure always says why */
	}
	{
		struct buf b;

		buf_init(&b, 0);
		greylist_sender_key(sender, &b);
		if (b.len > strlen(sender))
			abort();
		buf_free(&b);
	}
	free(copy);
	return 0;
}
