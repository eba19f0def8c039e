/*
 * verify_cache.c - address verification records and cache policy (see
 * verify_cache.h). Times follow Postfix's address_verify_{positive,
 * negative}_{expire,refresh}_time: a record expires that long after its
 * result came in, and is refreshed (a new probe while the old result
 * still answers) after the refresh time.
 * Must not: read the clock or the store (callers pass both in).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/verify_cache.h"

static bool
parse_num(const char **pp, const char *end, long long *r)
{
	const char *p = *pp;
	long long v = 0;

	if (p >= end || *p < '0' || *p > '9')
		return false;
	while (p < end && *p >= '0' && *p <= '9') {
		if (v > (1LL << 52))
			return false;
		v = v * 10 + (*p++ - '0');
	}
	if (p >= end || *p != ';')
		return false;
	*pp = p + 1;
	*r = v;
	return true;
}

int
verify_record_parse(const char *v, size_t n, struct verify_record *r)
{
	const char *p = v, *end = v + n;
	size_t tl;

	memset(r, 0, sizeof(*r));
	if (n < 2 || v[1] != ';')
		return -1;
	switch (v[0]) {
	case 'O': r->st = VERIFY_OK; break;
	case 'D': r->st = VERIFY_DEFER; break;
	case 'B': r->st = VERIFY_BOUNCE; break;
	default: return -1;
	}
	p += 2;
	if (!parse_num(&p, end, &r->probed) || !parse_num(&p, end, &r->updated)
	    || r->updated == 0)
		return -1;
	tl = (size_t)(end - p);
	if (tl >= sizeof(r->text))
		tl = sizeof(r->text) - 1;
	memcpy(r->text, p, tl);
	r->text[tl] = '\0';
	return 0;
}

void
verify_record_format(const struct verify_record *r, struct buf *out)
{
	buf_printf(out, "%c;%lld;%lld;%s", r->st == VERIFY_OK ? 'O'
		   : r->st == VERIFY_BOUNCE ? 'B' : 'D', r->probed, r->updated,
		   r->text);
}

time_t
verify_record_expiry(const struct verify_times *t, const struct verify_record *r)
{
	if (r->st == VERIFY_OK)
		return (time_t)(r->updated + t->pos_exp);
	if (!t->neg_cache)
		return (time_t)(r->updated + (t->neg_exp < VERIFY_NEG_HOLD
					      ? t->neg_exp : VERIFY_NEG_HOLD));
	return (time_t)(r->updated + t->neg_exp);
}

static bool
expired(const struct verify_times *t, const struct verify_record *r, time_t now)
{
	return (long long)now >= (long long)verify_record_expiry(t, r);
}

void
verify_decide(const struct verify_times *t, const struct verify_record *r,
	      time_t now, struct verify_decision *d)
{
	long long age, try_after;

	if (r == NULL || expired(t, r, now)) {
		d->answer = VERIFY_TODO;
		d->probe = true;
		return;
	}
	d->answer = r->st;
	age = (long long)now - r->updated;
	try_after = r->st == VERIFY_OK ? t->pos_try : t->neg_try;
	d->probe = age >= try_after
		   && (long long)now - r->probed >= VERIFY_PROBE_TTL;
}

bool
verify_result_replaces(const struct verify_times *t,
		       const struct verify_record *old, enum verify_status st,
		       time_t now)
{
	if (st == VERIFY_OK || old == NULL || old->st != VERIFY_OK)
		return true;
	return expired(t, old, now);
}

const char *
verify_status_name(enum verify_status st)
{
	return st == VERIFY_OK ? "deliverable" : "undeliverable";
}
