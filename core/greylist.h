/*
 * greylist.h - greylisting built in (postgrey's method): the triplet
 * (client network: /24 for IPv4, /64 for IPv6; sender; recipient) must be
 * seen once, then retried after greylist_delay and within
 * greylist_retry_window; a passed triplet is remembered for
 * greylist_max_age, and a client network whose triplets passed
 * greylist_auto_allow_count times skips greylisting. State is kept in an
 * LMDB store (greylist_database), so it survives restarts and is shared
 * by every listener and process. Used as the restriction check_greylist.
 * Thread-safe (RCPT checks may run on workers); calls are short.
 * Must not: decide for mynetworks or authenticated clients (always
 * passed), or answer 5xx (a store failure is a 4xx, as for any lookup).
 */
#ifndef FACTEUR_GREYLIST_H
#define FACTEUR_GREYLIST_H
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/config.h"
#include "core/lib/buf.h"
#include "core/lib/errbuf.h"

struct greylist;

/* Reads the greylist_* parameters; NULL + err on a bad value. The store
 * is opened (and its directory created) at the first check. */
struct greylist *greylist_new(const struct config *c, struct errbuf *err);
void greylist_free(struct greylist **gp);

enum greylist_result {
	GREYLIST_PASS,		/* known, retried in time, exempt, or allowed */
	GREYLIST_DEFER,		/* new or too early: 450 4.2.0 */
	GREYLIST_ERROR,		/* store unusable: 451 4.3.0, err says why */
};

struct greylist_query {
	const char *client_addr;	/* text IPv4 or IPv6 */
	const char *sender;		/* key form, "" for <> */
	const char *rcpt;		/* key form */
	bool        in_mynetworks, sasl_authenticated;
	time_t      now;
	const char *syslog_name;	/* NULL: no log line (tests) */
};

/* why_r (may be NULL) gets a short reason for the log ("new", "early",
 * "triplet passed", "client auto-allowed", "exempt"); left_r the seconds
 * until a retry can pass (DEFER). */
enum greylist_result greylist_check(struct greylist *g,
				    const struct greylist_query *q,
				    const char **why_r, long *left_r,
				    struct errbuf *err);
/* The reply text (greylist_text with %r = recipient domain, %s = seconds
 * left, %% = %). */
void greylist_reply_text(const struct greylist *g, const char *rcpt, long left,
			 struct buf *out);
/* The sender part of a triplet key, appended to out: lowercase, BATV
 * prefix (prvs=TAG=) and +extension removed, each run of digits in the
 * local part as one '#' (VERP: bounce-1234-x@ and bounce-5678-x@ match). */
void greylist_sender_key(const char *sender, struct buf *out);
/* The client network of addr: "192.0.2" (/24), "2001:db8:1:2" (/64).
 * 0, or -1 when addr is not an address. */
int greylist_client_net(const char *addr, char *out, size_t size);

#endif
