/*
 * spawn.h - master.cf "spawn" services, Postfix's spawn(8): a socket
 * (unix: $queue_directory/private/NAME, or an inet address) where each
 * accepted connection gets a child process running the line's argv=
 * command with its standard input and output on the connection. This is
 * how policyd-spf is run:
 *
 *   policyd-spf unix - n n - 0 spawn user=policyd-spf
 *       argv=/usr/bin/policyd-spf
 *   smtpd_recipient_restrictions = ... check_policy_service
 *       unix:private/policyd-spf
 *
 * Children are bounded by the line's maxproc (0 or "-": 100, Postfix's
 * default_process_limit default) and killed after NAME_time_limit
 * (default 1000s, Postfix's command_time_limit); their exit is reaped from
 * the event loop (SIGCHLD), never by blocking it.
 *
 * user=: facteurd binds its ports as root and then runs as mail_owner, so
 * commands run as mail_owner; a user= naming someone else is logged as a
 * warning once (the command then runs as mail_owner). Run facteurd's
 * spawn commands with a user that may read what they need.
 *
 * Must not: block the loop, run anything as root, or touch SMTP sessions.
 */
#ifndef FACTEUR_SPAWN_H
#define FACTEUR_SPAWN_H
#include <stdbool.h>

#include "core/config.h"
#include "core/lib/errbuf.h"

struct event_base;

/*
 * Makes the running spawn services those of c's master.cf: new ones are
 * bound, unchanged ones kept (their sockets stay open across a reload;
 * argv, maxproc and time limit changes apply to new connections), removed
 * ones closed (their running children finish and are still reaped).
 * At start-up (startup = true) an error is returned (-1 + err naming the
 * master.cf line); on reload a service that cannot be set up is logged
 * and its previous version, if any, kept. mail_owner is the user the
 * daemon runs as (for the user= warning).
 */
int  spawn_sync(struct event_base *base, const struct config *c,
		const char *queue_dir, const char *mail_owner, bool startup,
		struct errbuf *err);
/* Stops accepting, removes the sockets and sends SIGTERM to children. */
void spawn_shutdown(void);
/* Number of services and of running children (facteur status, tests). */
void spawn_counts(unsigned *services_r, unsigned *children_r);
/*
 * In a child just forked (before exec): every catchable signal back to
 * its default action and none blocked; async-signal-safe calls only.
 * Used by spawn children and by pipe(8) deliveries (delivery/pipe.c).
 */
void spawn_child_signals(void);

#endif
