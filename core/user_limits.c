/*
 * user_limits.c - the per SASL user sending limits: parsing the values
 * (main.cf threshold, per-user map values) and the decision for one
 * request (see user_limits.h).
 * Must not: log, look anything up, or keep state outside the anvil table.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/lib/strlist.h"
#include "core/user_limits.h"

static int
parse_count(const char *s, long long *r)
{
	char *end;
	long long v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > INT_MAX)
		return -1;
	*r = v;
	return 0;
}

int
user_limits_parse_factor(const char *value, unsigned *factor_r,
			 struct errbuf *err)
{
	char tmp[32];
	size_t n = strlen(value);
	long long v;

	if (n > 0 && (value[n - 1] == 'x' || value[n - 1] == 'X'))
		n--;
	if (n == 0 || n >= sizeof(tmp)) {
		errbuf_set(err, "bad hold threshold \"%s\" (expected a multiple "
			   "of the limit such as 3x, or 0 for none)", value);
		return -1;
	}
	memcpy(tmp, value, n);
	tmp[n] = '\0';
	if (parse_count(tmp, &v) < 0 || v > 1000000) {
		errbuf_set(err, "bad hold threshold \"%s\" (expected a multiple "
			   "of the limit such as 3x, or 0 for none)", value);
		return -1;
	}
	if (v == 1) {
		errbuf_set(err, "hold threshold \"%s\" must be above the limit "
			   "itself (2x or more, or 0 for none)", value);
		return -1;
	}
	*factor_r = (unsigned)v;
	return 0;
}

int
user_limits_parse_value(const char *value, struct user_limits *l,
			struct errbuf *err)
{
	struct user_limits out = *l;
	struct strlist items;
	int rc = 0;

	strlist_init(&items);
	strlist_split(&items, value);
	if (items.n == 0) {
		errbuf_set(err, "empty limits value");
		rc = -1;
	}
	for (size_t i = 0; i < items.n && rc == 0; i++) {
		const char *it = items.v[i], *eq = strchr(it, '=');
		size_t nl = eq ? (size_t)(eq - it) : 0;

		if (eq == NULL) {
			errbuf_set(err, "\"%s\": expected name=value", it);
			rc = -1;
		} else if (nl == 18 && strncasecmp(it, "message_rate_limit", nl) == 0) {
			if (parse_count(eq + 1, &out.message_rate) < 0) {
				errbuf_set(err, "\"%s\": bad number", it);
				rc = -1;
			}
		} else if (nl == 20 &&
			   strncasecmp(it, "recipient_rate_limit", nl) == 0) {
			if (parse_count(eq + 1, &out.recipient_rate) < 0) {
				errbuf_set(err, "\"%s\": bad number", it);
				rc = -1;
			}
		} else if (nl == 14 && strncasecmp(it, "hold_threshold", nl) == 0) {
			rc = user_limits_parse_factor(eq + 1, &out.hold_factor, err);
		} else {
			errbuf_set(err, "\"%s\": unknown name (expected "
				   "message_rate_limit, recipient_rate_limit or "
				   "hold_threshold)", it);
			rc = -1;
		}
	}
	strlist_free(&items);
	if (rc == 0)
		*l = out;
	return rc;
}

void
user_limits_event(struct anvil *a, const char *login, enum anvil_event ev,
		  const struct user_limits *l, long long hold_time, time_t now,
		  struct user_limits_result *r)
{
	memset(r, 0, sizeof(*r));
	r->limit = ev == ANVIL_MAIL ? l->message_rate
		 : ev == ANVIL_RCPT ? l->recipient_rate : 0;
	if (r->limit > 0) {
		r->count = anvil_incr(a, login, ev, now);
		r->refuse = r->count > (unsigned long long)r->limit;
		if (l->hold_factor > 0 &&
		    r->count > (unsigned long long)r->limit * l->hold_factor &&
		    anvil_mark(a, login, now) == 0 &&
		    anvil_set_mark(a, login, now + (time_t)hold_time, now) == 0)
			r->hold_started = true;
	}
	r->held_until = anvil_mark(a, login, now);
	r->held = r->held_until != 0;
}
