/*
 * pickup.h - local submission: the socket $queue_directory/public/pickup
 * that build/bin/sendmail talks to. Any local user may connect (mode
 * 0666); the user is identified by the kernel (peer credentials), never by
 * what the client claims. Requests, one per connection, lines ending in LF:
 *   "submit\n" ["sender ADDR\n"] ["name FULL NAME\n"] ["extract\n"]
 *       ("rcpt ADDR\n")* "data LEN\n" LEN bytes of message (LF line ends)
 *   "list\n"   (the queue as mailq shows it)
 *   "flush\n"  (retry deferred mail now)
 * Reply: "ok [QUEUEID]\n" (list: followed by the listing), or
 * "error EXITCODE TEXT\n" with a sysexits.h code for sendmail to exit with.
 * Runs on the event loop; parsing, resolution and the queue write (fsynced
 * before "ok") run on the worker pool.
 */
#ifndef FACTEUR_PICKUP_H
#define FACTEUR_PICKUP_H

#include "core/lib/errbuf.h"

struct event_base;
struct worker_pool;
struct qmgr;
struct settings;
struct pickup;

/* The socket's path under queue_directory. */
#define PICKUP_SOCKET "public/pickup"

/*
 * Creates the socket (as mail_owner, after the privilege drop) and starts
 * serving it. s, pool and qmgr are borrowed and must outlive the pickup.
 * NULL + err on failure.
 */
struct pickup *pickup_new(struct event_base *base, struct worker_pool *pool,
			  struct qmgr *qmgr, const struct settings *s,
			  struct errbuf *err);
/*
 * Reload: s (borrowed, as in pickup_new) and a new resolver from it. Call
 * only when no pickup job is on the worker pool (worker_pending() == 0 on
 * the loop thread). -1 + err: nothing changed.
 */
int  pickup_reconfigure(struct pickup *pk, const struct settings *s,
			struct errbuf *err);
/* facteurd stop: takes no new submissions (the socket stays). */
void pickup_stop(struct pickup *pk);
/* Closes the socket and every connection. Call after worker_pool_free. */
void pickup_free(struct pickup **pp);

#endif
