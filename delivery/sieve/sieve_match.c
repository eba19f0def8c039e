/*
 * sieve_match.c - Sieve comparators (i;octet, i;ascii-casemap,
 * i;ascii-numeric: RFC 4790) and match types (:is :contains :matches with
 * * ? and \ escapes, :regex with POSIX extended regular expressions,
 * relational :value) with the match variables of RFC 5229 3.2.
 * Every wildcard step counts against the caller's step budget, so a
 * pathological pattern fails (run-time error) instead of spinning.
 * Must not: keep state between calls (thread-safe by construction).
 */
#include <ctype.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "core/lib/xmalloc.h"
#include "delivery/sieve/sieve_int.h"

#define MAX_REGEX_LEN 1024

void
sieve_caps_clear(struct sieve_match_caps *c)
{
	for (int i = 0; i < 10; i++)
		xfree(&c->v[i]);
	c->set = false;
}

static int
fold(int cmp, int c)
{
	return cmp == CMP_CASEMAP ? tolower((unsigned char)c) : (unsigned char)c;
}

/* RFC 4790 9.1.1: leading digits are the value; none = positive infinity. */
static int
numeric_order(const char *a, const char *b)
{
	bool ia = !isdigit((unsigned char)*a), ib = !isdigit((unsigned char)*b);
	size_t la, lb;

	if (ia || ib)
		return ia && ib ? 0 : ia ? 1 : -1;
	while (*a == '0' && isdigit((unsigned char)a[1]))
		a++;
	while (*b == '0' && isdigit((unsigned char)b[1]))
		b++;
	for (la = 0; isdigit((unsigned char)a[la]); la++)
		;
	for (lb = 0; isdigit((unsigned char)b[lb]); lb++)
		;
	if (la != lb)
		return la < lb ? -1 : 1;
	{
		int r = strncmp(a, b, la);

		return r < 0 ? -1 : r > 0;
	}
}

int
sieve_cmp_order(int cmp, const char *a, const char *b)
{
	if (cmp == CMP_NUMERIC)
		return numeric_order(a, b);
	for (;; a++, b++) {
		int x = fold(cmp, *a), y = fold(cmp, *b);

		if (x != y)
			return x < y ? -1 : 1;
		if (x == 0)
			return 0;
	}
}

bool
sieve_relop_holds(int relop, int o)
{
	switch (relop) {
	case REL_GT: return o > 0;
	case REL_GE: return o >= 0;
	case REL_LT: return o < 0;
	case REL_LE: return o <= 0;
	case REL_EQ: return o == 0;
	default: return o != 0;
	}
}

static bool
contains(int cmp, const char *v, const char *k)
{
	size_t kl = strlen(k);

	if (kl == 0)
		return true;
	for (; *v; v++) {
		size_t i;

		for (i = 0; i < kl && v[i]; i++)
			if (fold(cmp, v[i]) != fold(cmp, k[i]))
				break;
		if (i == kl)
			return true;
	}
	return false;
}

/*
 * Length of one character at s. i;octet and i;ascii-casemap work on
 * octets (RFC 4790 9.1-9.2), so "?" is one octet there, as in Pigeonhole;
 * other comparators see a UTF-8 sequence as one character.
 */
static size_t
char_len(int cmp, const char *s)
{
	size_t n = 1;

	if (cmp == CMP_OCTET || cmp == CMP_CASEMAP)
		return 1;
	while (n < 4 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n++;
	return n;
}

struct glob {
	int     cmp;
	long   *steps;
	const char *capb[10], *cape[10];
	int     ncap;
	bool    overflow;
};

/*
 * Shortest-first backtracking (RFC 5229 3.2: each "*" takes as little as
 * possible). k is the pattern, v the value; cap numbers the wildcards.
 */
static int
glob_m(struct glob *g, const char *k, const char *v, int cap)
{
	for (;;) {
		if (--*g->steps < 0) {
			g->overflow = true;
			return 0;
		}
		if (*k == '\0')
			return *v == '\0';
		if (*k == '*') {
			const char *s = v;

			while (*(k + 1) == '*') {
				/* "**": the extra stars match empty strings */
				if (cap < 10) {
					g->capb[cap] = g->cape[cap] = v;
				}
				cap++;
				k++;
			}
			for (;;) {
				if (cap < 10) {
					g->capb[cap] = v;
					g->cape[cap] = s;
				}
				if (glob_m(g, k + 1, s, cap + 1)) {
					if (cap < 10) {
						g->capb[cap] = v;
						g->cape[cap] = s;
					}
					return 1;
				}
				if (g->overflow || *s == '\0')
					return 0;
				s += char_len(g->cmp, s);
			}
		}
		if (*v == '\0')
			return 0;
		if (*k == '?') {
			size_t n = char_len(g->cmp, v);

			if (cap < 10) {
				g->capb[cap] = v;
				g->cape[cap] = v + n;
			}
			cap++;
			k++;
			v += n;
			continue;
		}
		if (*k == '\\' && k[1] != '\0')
			k++;
		if (fold(g->cmp, *k) != fold(g->cmp, *v))
			return 0;
		k++;
		v++;
	}
}

static int
do_regex(int cmp, const char *value, const char *key,
	 struct sieve_match_caps *caps, struct errbuf *err)
{
	regex_t re;
	regmatch_t m[10];
	int rc;

	if (strlen(key) > MAX_REGEX_LEN) {
		errbuf_set(err, "regular expression too long (limit %d)",
			   MAX_REGEX_LEN);
		return -1;
	}
	rc = regcomp(&re, key, REG_EXTENDED
		     | (cmp == CMP_CASEMAP ? REG_ICASE : 0));
	if (rc != 0) {
		char eb[128];

		regerror(rc, &re, eb, sizeof(eb));
		errbuf_set(err, "bad regular expression \"%s\": %s", key, eb);
		return -1;
	}
	rc = regexec(&re, value, 10, m, 0);
	regfree(&re);
	if (rc != 0)
		return 0;
	if (caps) {
		sieve_caps_clear(caps);
		for (int i = 0; i < 10; i++)
			caps->v[i] = m[i].rm_so < 0 ? xstrdup("")
				     : xstrndup(value + m[i].rm_so,
						(size_t)(m[i].rm_eo - m[i].rm_so));
		caps->set = true;
	}
	return 1;
}

int
sieve_match_one(int mt, int cmp, int relop, const char *value,
		const char *key, struct sieve_match_caps *caps, long *steps,
		struct errbuf *err)
{
	if (--*steps < 0) {
		errbuf_set(err, "CPU step limit exceeded");
		return -1;
	}
	switch (mt) {
	case MT_IS:
		return sieve_cmp_order(cmp, value, key) == 0;
	case MT_CONTAINS:
		if (cmp == CMP_NUMERIC) {
			errbuf_set(err, ":contains cannot use i;ascii-numeric");
			return -1;
		}
		return contains(cmp, value, key);
	case MT_VALUE:
		return sieve_relop_holds(relop, sieve_cmp_order(cmp, value, key));
	case MT_REGEX:
		return do_regex(cmp, value, key, caps, err);
	case MT_MATCHES: {
		struct glob g;
		int r;

		if (cmp == CMP_NUMERIC) {
			errbuf_set(err, ":matches cannot use i;ascii-numeric");
			return -1;
		}
		memset(&g, 0, sizeof(g));
		g.cmp = cmp;
		g.steps = steps;
		r = glob_m(&g, key, value, 1);
		if (g.overflow) {
			errbuf_set(err, "CPU step limit exceeded in :matches");
			return -1;
		}
		if (r && caps) {
			int n = 1;

			sieve_caps_clear(caps);
			caps->v[0] = xstrdup(value);
			for (const char *k = key; *k; k++) {
				if (*k == '\\' && k[1]) {
					k++;
					continue;
				}
				if ((*k == '*' || *k == '?') && n < 10) {
					caps->v[n] = xstrndup(g.capb[n],
						(size_t)(g.cape[n] - g.capb[n]));
					n++;
				}
			}
			for (; n < 10; n++)
				caps->v[n] = xstrdup("");
			caps->set = true;
		}
		return r;
	}
	default:
		return 0;
	}
}
