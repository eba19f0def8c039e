/*
 * mailq.h - the queue listing as Postfix's mailq prints it, and the
 * operations of `facteur queue` (postsuper's delete/hold/release/requeue)
 * on queue files by ID. Shared by the admin CLI and by facteurd's pickup
 * service (sendmail -bp from any local user).
 * Blocks on disk: call from a worker thread or from a command-line tool.
 */
#ifndef FACTEUR_MAILQ_H
#define FACTEUR_MAILQ_H
#include <stddef.h>
#include <sys/types.h>

#include "core/lib/buf.h"
#include "core/lib/errbuf.h"

/*
 * Appends the listing of active/, deferred/ and hold/ to out:
 *   -Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------
 *   ID*   SIZE Mon Jan  1 00:00:00  sender       (* active, ! hold)
 *                                   recipient    (pending ones only)
 *   -- N Kbytes in M Requests.
 * or "Mail queue is empty". max_entries bounds the listing (0 = all).
 * 0, or -1 + err when a queue directory cannot be read. Files that vanish
 * while listing (delivered meanwhile) are skipped; unreadable ones are
 * shown as "(unreadable queue file)".
 */
int mailq_format(const char *qdir, size_t max_entries, struct buf *out,
		 struct errbuf *err);

enum mailq_op { MAILQ_DELETE, MAILQ_HOLD, MAILQ_RELEASE, MAILQ_REQUEUE };

/*
 * Applies op to one queue ID (or to every message when id is "ALL"),
 * calling report(id, what, arg) for each message changed ("removed",
 * "placed on hold", "released from hold", "requeued"). Semantics:
 *   delete:  from active/, deferred/ or hold/ (a delivery running right now
 *            completes for the recipients it is handling, as with postsuper)
 *   hold:    active/ or deferred/ -> hold/
 *   release: hold/ -> deferred/, due now
 *   requeue: deferred/ or hold/ -> deferred/, due now
 * Returns the number of messages changed, or -1 + err (a bad ID, or a
 * disk error). An ID that is in no applicable queue is not an error:
 * 0 changed (the caller says so).
 */
int mailq_apply(const char *qdir, enum mailq_op op, const char *id,
		void (*report)(const char *id, const char *what, void *arg),
		void *arg, struct errbuf *err);

/*
 * The pid of the facteurd running on qdir: the holder of the lock on
 * qdir/pid/facteurd.pid. 0 if none runs, -1 + err if the file cannot be
 * read (not root or mail_owner).
 */
pid_t mailq_daemon_pid(const char *qdir, struct errbuf *err);

#endif
