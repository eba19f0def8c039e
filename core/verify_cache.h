/*
 * verify_cache.h - the address verification cache's records and policy
 * (Postfix's verify(8) semantics): what a stored result means at a given
 * time, when a new probe is due, and whether a probe result replaces what
 * is stored. Records live in an LMDB store (core/kvstore.h) keyed by the
 * lowercased address: "S;PROBED;UPDATED;TEXT" with S = O (deliverable),
 * D (temporary failure) or B (undeliverable), PROBED the time a refresh
 * probe was started (0 = none), UPDATED the time of the result.
 * Pure functions: no I/O, no clock (now is passed in), no globals.
 * Must not: treat a malformed record as a result (it is ignored).
 */
#ifndef FACTEUR_VERIFY_CACHE_H
#define FACTEUR_VERIFY_CACHE_H
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/lib/buf.h"

enum verify_status {
	VERIFY_OK = 0,		/* deliverable */
	VERIFY_TODO,		/* no result yet: a probe is in progress */
	VERIFY_DEFER,		/* the probe failed temporarily (4xx, down) */
	VERIFY_BOUNCE,		/* undeliverable (5xx) */
};

#define VERIFY_TEXT_MAX 600	/* longest reply text kept */
/* A refresh probe is started at most once in this many seconds (a
 * probe that got lost, or a failure ignored over a positive result). */
#define VERIFY_PROBE_TTL 1000
/* address_verify_negative_cache = no: a negative result is kept this
 * long only, for the sessions waiting for that probe. */
#define VERIFY_NEG_HOLD 60

struct verify_times {
	long long pos_exp, pos_try;	/* address_verify_positive_* */
	long long neg_exp, neg_try;	/* address_verify_negative_* */
	bool      neg_cache;		/* address_verify_negative_cache */
};

struct verify_record {
	enum verify_status st;		/* OK, DEFER or BOUNCE */
	long long          probed, updated;
	char               text[VERIFY_TEXT_MAX];
};

/* Parses a stored value (n bytes, not NUL-terminated). 0, or -1 when it
 * is not a record. */
int  verify_record_parse(const char *v, size_t n, struct verify_record *r);
void verify_record_format(const struct verify_record *r, struct buf *out);
/* When the store may forget r (kvstore expiry). */
time_t verify_record_expiry(const struct verify_times *t,
			    const struct verify_record *r);

struct verify_decision {
	enum verify_status answer;	/* what the query answers now */
	bool               probe;	/* start a probe (unless one runs) */
};
/*
 * The answer for a stored record (NULL: none) at now: an expired or
 * missing record is TODO with a probe; a valid one answers its status,
 * with a probe when its refresh time has passed and no refresh probe
 * was started in the last VERIFY_PROBE_TTL seconds.
 */
void verify_decide(const struct verify_times *t, const struct verify_record *r,
		   time_t now, struct verify_decision *d);
/*
 * Whether a probe result st replaces the stored record old (NULL: none):
 * a failure never replaces a deliverable result that has not expired
 * (Postfix: as long as some probes succeed, the address stays good).
 */
bool verify_result_replaces(const struct verify_times *t,
			    const struct verify_record *old,
			    enum verify_status st, time_t now);
/* "deliverable" / "undeliverable", for the log lines. */
const char *verify_status_name(enum verify_status st);

#endif
