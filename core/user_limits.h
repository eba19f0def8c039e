/*
 * user_limits.h - sending limits per SASL-authenticated user: how many
 * messages (MAIL FROM) and recipients (RCPT TO) one login may send per
 * time unit, and the higher "hold threshold" (a multiple of a limit) past
 * which the account is taken for compromised: its further accepted mail
 * goes to the hold queue for smtpd_sasl_user_hold_time and the postmaster
 * is told once per such period.
 * Defaults come from main.cf; smtpd_sasl_user_limit_maps may give a login
 * its own values: "message_rate_limit=N recipient_rate_limit=N
 * hold_threshold=Nx" (any subset, separated by white space or commas).
 * The counting lives in an anvil table (core/anvil.h) keyed by the login
 * in lower case; the hold state is that entry's mark.
 * Must not: log or do I/O (core/smtpd_limits.c does, for the session).
 */
#ifndef FACTEUR_USER_LIMITS_H
#define FACTEUR_USER_LIMITS_H
#include <stdbool.h>
#include <time.h>

#include "core/anvil.h"
#include "core/lib/errbuf.h"

struct user_limits {
	long long message_rate;		/* 0 = no limit */
	long long recipient_rate;	/* 0 = no limit */
	unsigned  hold_factor;		/* 0 = never hold */
};

/* "3x", "3" (a multiple), "0" (off): 0, or -1 + err. */
int user_limits_parse_factor(const char *value, unsigned *factor_r,
			     struct errbuf *err);
/*
 * Applies a map value over l (which holds the defaults): 0, or -1 + err
 * naming the bad item (l is then left unchanged).
 */
int user_limits_parse_value(const char *value, struct user_limits *l,
			    struct errbuf *err);

struct user_limits_result {
	unsigned  count;	/* requests of this kind in the window */
	long long limit;	/* the limit that applied (0 = none) */
	bool      refuse;	/* over the limit: 450 4.7.1 */
	bool      hold_started;	/* crossed the hold threshold now: notify */
	bool      held;		/* the user's mail goes on hold */
	time_t    held_until;
};

/*
 * Counts one MAIL (ANVIL_MAIL) or RCPT (ANVIL_RCPT) request of login
 * (already folded to lower case) and decides. A request is counted even
 * when it is refused (as Postfix's anvil does), so a client that keeps
 * trying reaches the hold threshold.
 */
void user_limits_event(struct anvil *a, const char *login, enum anvil_event ev,
		       const struct user_limits *l, long long hold_time,
		       time_t now, struct user_limits_result *r);

#endif
