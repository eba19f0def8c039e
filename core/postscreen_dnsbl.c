/*
 * postscreen_dnsbl.c - parses postscreen_dnsbl_sites and scores replies
 * (see postscreen_dnsbl.h). Filters use Postfix's syntax and are checked
 * and matched by policy_dns.c (the same code as reject_rbl_client's).
 * Must not: do DNS or log.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/policy_dns.h"
#include "core/postscreen_dnsbl.h"

#define PS_DNSBL_MAX_SITES 64

static int
valid_domain(const char *d, size_t n)
{
	if (n == 0 || n > 200 || d[0] == '.' || d[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)d[i];

		if (!isalnum(c) && c != '.' && c != '-' && c != '_')
			return 0;
		if (c == '.' && i + 1 < n && d[i + 1] == '.')
			return 0;
	}
	return 1;
}

static int
parse_one(struct ps_dnsbl *d, const char *item, struct errbuf *err)
{
	const char *star = strrchr(item, '*');
	const char *eq = strchr(item, '=');
	const char *dend;
	struct ps_dnsbl_site *s;
	long w = 1;
	char *filter = NULL;

	if (star != NULL) {
		char *end;

		errno = 0;
		w = strtol(star + 1, &end, 10);
		if (star[1] == '\0' || *end != '\0' || errno != 0 ||
		    w < -1000 || w > 1000) {
			errbuf_set(err, "postscreen_dnsbl_sites: bad weight in "
				   "\"%s\" (expected domain*N with N an "
				   "integer, negative for an allowlist)", item);
			return -1;
		}
	}
	if (eq != NULL && star != NULL && eq > star)
		eq = NULL;	/* '=' after the weight: caught below */
	dend = eq ? eq : star ? star : item + strlen(item);
	if (eq != NULL) {
		struct errbuf ferr;
		size_t fl = (size_t)((star ? star : item + strlen(item)) - eq - 1);

		filter = xstrndup(eq + 1, fl);
		errbuf_clear(&ferr);
		if (fl == 0 || policy_dns_filter_check(filter, &ferr) < 0) {
			errbuf_set(err, "postscreen_dnsbl_sites: \"%s\": %s", item,
				   fl == 0 ? "empty reply filter after '='"
					   : errbuf_str(&ferr));
			free(filter);
			return -1;
		}
	}
	{
		size_t dl = (size_t)(dend - item);

		while (dl > 0 && item[dl - 1] == '.')
			dl--;
		if (!valid_domain(item, dl)) {
			errbuf_set(err, "postscreen_dnsbl_sites: bad DNSBL domain "
				   "in \"%s\"", item);
			free(filter);
			return -1;
		}
		if (d->nsites >= PS_DNSBL_MAX_SITES) {
			errbuf_set(err, "postscreen_dnsbl_sites: more than %d "
				   "sites", PS_DNSBL_MAX_SITES);
			free(filter);
			return -1;
		}
		d->sites = xrealloc(d->sites, (d->nsites + 1) * sizeof(*d->sites));
		s = &d->sites[d->nsites++];
		s->domain = xstrndup(item, dl);
		for (char *p = s->domain; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		s->filter = filter;
		s->weight = (int)w;
		for (s->query = 0; s->query < d->ndomains; s->query++)
			if (strcmp(d->domains[s->query], s->domain) == 0)
				break;
		if (s->query == d->ndomains) {
			d->domains = xrealloc(d->domains, (d->ndomains + 1) *
					      sizeof(*d->domains));
			d->domains[d->ndomains++] = xstrdup(s->domain);
		}
	}
	return 0;
}

int
ps_dnsbl_parse(struct ps_dnsbl *d, const char *value, struct errbuf *err)
{
	struct strlist items;
	int rc = 0;

	memset(d, 0, sizeof(*d));
	strlist_init(&items);
	if (value != NULL && strlist_split(&items, value) < 0) {
		errbuf_set(err, "postscreen_dnsbl_sites: unbalanced braces");
		rc = -1;
	}
	for (size_t i = 0; rc == 0 && i < items.n; i++)
		rc = parse_one(d, items.v[i], err);
	strlist_free(&items);
	if (rc < 0)
		ps_dnsbl_free(d);
	return rc;
}

void
ps_dnsbl_free(struct ps_dnsbl *d)
{
	for (size_t i = 0; i < d->nsites; i++) {
		free(d->sites[i].domain);
		free(d->sites[i].filter);
	}
	for (size_t i = 0; i < d->ndomains; i++)
		free(d->domains[i]);
	free(d->sites);
	free(d->domains);
	memset(d, 0, sizeof(*d));
}

static int
is_loopback_net(const char *a)
{
	return strncmp(a, "127.", 4) == 0;
}

int
ps_dnsbl_score(const struct ps_dnsbl *d, size_t domain_index,
	       const char *const *addrs, size_t naddrs)
{
	int score = 0;

	for (size_t i = 0; i < d->nsites; i++) {
		const struct ps_dnsbl_site *s = &d->sites[i];

		if (s->query != domain_index)
			continue;
		for (size_t j = 0; j < naddrs; j++) {
			int m = s->filter ? policy_dns_filter_match(s->filter,
								   addrs[j])
					  : is_loopback_net(addrs[j]);
			if (m) {
				score += s->weight;
				break;
			}
		}
	}
	return score;
}
