/*
 * qmgr.h - the queue manager: delivers queued messages on worker threads,
 * retries deferred ones with exponential backoff, returns undeliverable
 * and expired mail to the sender and sends delay warnings (RFC 3464
 * notifications, delivery/bounce.h), and writes the Postfix "qmgr" /
 * "virtual" / "bounce" log lines. Lives on the event loop thread; every disk
 * access and lookup runs on the worker pool.
 * Must not: block the loop, hold a whole big queue in memory, or remove a
 * message that still has a pending recipient.
 */
#ifndef FACTEUR_QMGR_H
#define FACTEUR_QMGR_H
#include <stdbool.h>
#include <stdio.h>

#include "core/lib/errbuf.h"

struct event_base;
struct worker_pool;
struct settings;
struct resolve_ctx;
struct qmgr;

/*
 * s, resolve and pool are borrowed and must outlive the qmgr. resolve may
 * be NULL only in tests (every recipient is then deferred). NULL + err if
 * the queue directory cannot be prepared.
 */
struct qmgr *qmgr_new(struct event_base *base, struct worker_pool *pool,
		      const struct settings *s, struct resolve_ctx *resolve,
		      struct errbuf *err);
/*
 * facteur check: builds what qmgr_new builds from s (transport and TLS
 * policy maps, TLS context, SASL options, source addresses, protocols)
 * without touching the queue directory, then frees it. 0 or -1 + err,
 * the error qmgr_new would give. base: for the resolver's events only.
 */
int  qmgr_check_config(struct event_base *base, const struct settings *s,
		       struct resolve_ctx *resolve, struct errbuf *err);
/*
 * Removes incoming/ leftovers (blocking, at start-up), then schedules the
 * delivery of every message in active/ (interrupted by a stop or a crash)
 * and of deferred/ messages whose next attempt is due; from then on scans
 * deferred/ every queue_run_delay. 0 or -1 + err.
 */
int  qmgr_start(struct qmgr *q, struct errbuf *err);
/* A message was just written to active/ (loop thread): deliver it now. */
void qmgr_enqueued(struct qmgr *q, const char *id);
/* Retry every deferred message now (facteur queue flush / sendmail -q). */
void qmgr_flush(struct qmgr *q);
/*
 * Reload: builds the queue manager's configuration from s and resolve
 * (borrowed, as in qmgr_new) now, so a bad one is refused (-1 + err; q
 * unchanged), and switches to it once nothing is in flight (no new job
 * starts meanwhile; deliveries in progress finish on the old one). Then
 * applied(arg) runs on the loop: the old s and resolve are free to go.
 * A second call before that replaces the first (whose applied never runs).
 */
int  qmgr_reconfigure(struct qmgr *q, const struct settings *s,
		      struct resolve_ctx *resolve, void (*applied)(void *arg),
		      void *arg, struct errbuf *err);
bool qmgr_reconfigure_pending(const struct qmgr *q);
/* Messages waiting or being delivered, plus a running scan (tests, stop). */
unsigned qmgr_in_flight(const struct qmgr *q);
/*
 * Stops scheduling and frees q. Deliveries already on the worker pool must
 * have completed: free the qmgr after worker_pool_free (which runs the
 * pending done callbacks; they submit nothing new) or when
 * qmgr_in_flight() is 0. Messages not yet delivered stay in the queue.
 */
void qmgr_free(struct qmgr **qp);

/*
 * One delivery log line as Postfix writes it, with syslog_name as the
 * program name (NULL = default) and service "virtual" etc.:
 *   "ID: to=<to>, orig_to=<orig_to>, relay=R, delay=D, delays=a/b/c/d,
 *    dsn=X.Y.Z, status=STATUS (TEXT)"
 * orig_to is printed only when non-NULL and different from to. delays are
 * Postfix's four stages: before queue manager, in queue manager, connection
 * set-up, transmission. Thread-safe.
 */
void delivery_log(const char *syslog_name, const char *service, const char *id,
		  const char *to, const char *orig_to, const char *relay,
		  double delay, const double delays[4], const char *dsn,
		  const char *status, const char *text);
/* The same, with ", conn_use=N" after the relay when conn_use > 1 (a
 * delivery on a reused connection, as Postfix's smtp(8) logs it). */
void delivery_log_conn(const char *syslog_name, const char *service,
		       const char *id, const char *to, const char *orig_to,
		       const char *relay, unsigned conn_use, double delay,
		       const double delays[4], const char *dsn,
		       const char *status, const char *text);

/*
 * A time in seconds as Postfix logs delays: two significant digits, at
 * most two decimals, trailing zeros dropped ("0.01", "1.2", "12", "0").
 */
static inline void
qmgr_format_delay(double v, char out[32])
{
	int n, i;

	if (!(v > 0))
		v = 0;
	if (v >= 1e12)
		v = 1e12;
	if (v >= 10)
		n = snprintf(out, 32, "%.0f", v);
	else if (v >= 1)
		n = snprintf(out, 32, "%.1f", v);
	else
		n = snprintf(out, 32, "%.2f", v);
	for (i = 0; i < n && out[i] != '.'; i++)
		;
	if (i < n) {
		while (n > i && out[n - 1] == '0')
			out[--n] = '\0';
		if (n > 0 && out[n - 1] == '.')
			out[--n] = '\0';
	}
}

/*
 * The wait before attempt number attempts + 1 (attempts >= 1 failed so far):
 * minimal_backoff_time doubled per earlier failure, at most
 * maximal_backoff_time (never less than min, never less than 1 second).
 */
static inline long long
qmgr_backoff(int attempts, long long min, long long max)
{
	long long d = min > 0 ? min : 1;
	int i;

	if (max < d)
		max = d;
	for (i = 1; i < attempts && d < max; i++)
		d *= 2;
	return d < max ? d : max;
}

#endif
