/*
 * anvil.h - connection and rate accounting per key, as Postfix's anvil(8)
 * does it, inside facteurd: a bounded in-memory table keyed by a string
 * ("smtp/192.0.2.1" for a client of a service, a SASL login for the
 * per-user limits). Each entry has a concurrent connection count and
 * event counters over one fixed window of anvil_rate_time_unit seconds
 * that starts with the first event (Postfix's window: all counters reset
 * together when the unit has passed). An idle entry (no connection, window
 * over, no mark) is dead and is reclaimed; when the table is full the
 * least recently used idle entry is evicted, and if every entry has live
 * connections the event is not counted (fail open).
 * Event-loop thread only (no locking). Times are passed in, so tests drive
 * the clock.
 * Must not: grow past its size, block, or log (callers log).
 */
#ifndef FACTEUR_ANVIL_H
#define FACTEUR_ANVIL_H
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum anvil_event {
	ANVIL_CONN,	/* connection rate */
	ANVIL_MAIL,	/* MAIL FROM requests (message rate) */
	ANVIL_RCPT,	/* RCPT TO requests (recipient rate) */
	ANVIL_NTLS,	/* new (not resumed) TLS sessions */
	ANVIL_AUTH,	/* AUTH commands */
	ANVIL_NEVENTS
};

/* Longest key kept; longer keys are cut (still distinct per service/IP). */
#define ANVIL_KEY_MAX 160

struct anvil;

/* A table of at most max_entries keys (>= 1), window unit seconds (>= 1). */
struct anvil *anvil_new(size_t max_entries, long long unit);
void anvil_free(struct anvil **ap);
/* Changes the window length (a reload); current windows keep their start. */
void anvil_set_unit(struct anvil *a, long long unit);
long long anvil_unit(const struct anvil *a);

/*
 * A new connection for key: count_r gets the concurrent connections
 * including this one, rate_r the connections in the current window. Returns
 * 0, or -1 when the table is full of live entries (nothing counted, both 0:
 * the caller must not call anvil_disconnect for it).
 */
int  anvil_connect(struct anvil *a, const char *key, time_t now,
		   unsigned *count_r, unsigned *rate_r);
/* The end of a connection counted by anvil_connect. */
void anvil_disconnect(struct anvil *a, const char *key, time_t now);
/* Counts one event; returns the events in the current window (0 = not
 * counted, the table being full). */
unsigned anvil_incr(struct anvil *a, const char *key, enum anvil_event ev,
		    time_t now);
/* The events in the current window, without counting one (0 if unknown). */
unsigned anvil_peek(struct anvil *a, const char *key, enum anvil_event ev,
		    time_t now);
/* Concurrent connections of key (0 if unknown). */
unsigned anvil_count(struct anvil *a, const char *key, time_t now);

/*
 * A mark keeps the entry alive until `until` even when idle (the per-user
 * hold state). anvil_mark returns the current mark (0 if none or passed).
 * Setting returns -1 when the table is full of live entries.
 */
int    anvil_set_mark(struct anvil *a, const char *key, time_t until, time_t now);
time_t anvil_mark(struct anvil *a, const char *key, time_t now);

/*
 * The key of a client of a service, as Postfix 3.9's anvil forms it: the
 * address itself, or its network when the prefix length is shorter than
 * the address (smtpd_client_ipv4_prefix_length / _ipv6_prefix_length; an
 * IPv6 host usually has a /64 to hop around in): "smtp/192.0.2.1",
 * "smtp/2001:db8:1:2:3000::/84". A string that is not an address is used
 * as it is.
 */
void anvil_client_key(const char *service, const char *addr, unsigned v4_len,
		      unsigned v6_len, char *key, size_t size);

/* Live and dead entries currently held (dead ones go lazily). */
size_t anvil_size(const struct anvil *a);
/* Reclaims every dead entry now; returns how many. */
size_t anvil_expire(struct anvil *a, time_t now);

#endif
