/*
 * soft_bounce.h - Postfix's soft_bounce safety net: with soft_bounce =
 * yes, mail that would be returned to its sender stays queued instead
 * (a bounce becomes a deferral, 5.X.Y becomes 4.X.Y and the log says
 * status=SOFTBOUNCE), and the SMTP server never rejects for good (each
 * 5xx reply line becomes 4xx, its 5.X.Y enhanced code 4.X.Y).
 * Pure functions. Must not: touch a 2xx/3xx/4xx reply or a success.
 */
#ifndef FACTEUR_SOFT_BOUNCE_H
#define FACTEUR_SOFT_BOUNCE_H
#include <stdbool.h>

#include "delivery/deliver.h"

/* The log status for a recipient that soft_bounce kept queued. */
#define SOFT_BOUNCE_STATUS "SOFTBOUNCE"

/*
 * In place: every line of text (lines end in "\r\n" or "\n") that starts
 * with a 5xx code gets 4xx, and a following "5.X.Y" enhanced code gets
 * "4.X.Y".
 */
void soft_bounce_reply(char *text);
/*
 * When on and *st is DELIVER_BOUNCE: *st = DELIVER_DEFER, dsn "5.X.Y" ->
 * "4.X.Y" (dsn has room for 8 bytes; an empty one becomes "4.0.0").
 * True when it changed something.
 */
bool soft_bounce_delivery(bool on, enum deliver_status *st, char *dsn);

#endif
