/*
 * throttle.h - authentication failures per client IP address, across
 * sessions: a bounded table (old entries are overwritten) whose counts
 * decay by one per minute without failures. Event-loop thread only.
 */
#ifndef FACTEUR_THROTTLE_H
#define FACTEUR_THROTTLE_H
#include <time.h>

/* Counts one failure for addr; returns the delay in seconds to impose
 * before answering it (0 for the first few failures, up to 30 s). */
unsigned throttle_auth_fail(const char *addr, time_t now);
/* Recent failures still counted for addr. */
unsigned throttle_auth_count(const char *addr, time_t now);

#endif
