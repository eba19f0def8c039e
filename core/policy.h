/*
 * policy.h - client side of Postfix's policy delegation protocol
 * (check_policy_service): one request of "name=value" lines ended by an
 * empty line, one reply of the same form carrying "action=...".
 * Endpoints: inet:host:port (host may be [v6]) and unix:/absolute/path.
 * Blocking: a query connects, writes and reads with poll() bounded by
 * the service timeout; call it from a worker thread only.
 */
#ifndef FACTEUR_POLICY_H
#define FACTEUR_POLICY_H

#include "core/lib/buf.h"
#include "core/lib/errbuf.h"

struct policy_svc;

/* Parses the endpoint; NULL + err ("check_policy_service: bad endpoint
 * \"x\": expected inet:host:port or unix:/path") when malformed.
 * timeout: seconds for the whole exchange; tries: attempts (>= 1);
 * retry_delay: seconds between attempts. */
struct policy_svc *policy_svc_new(const char *endpoint, long timeout, int tries,
				  long retry_delay, struct errbuf *err);
void policy_svc_free(struct policy_svc **pp);
const char *policy_svc_name(const struct policy_svc *p);
/*
 * Keeps connections for later queries, as Postfix's smtpd does: closed
 * after max_idle seconds unused (by policy_sweep), max_ttl seconds after
 * they were opened, or request_limit queries (0: no limit). max_idle <= 0
 * leaves one connection per query. Call before the first query.
 */
void policy_svc_reuse(struct policy_svc *p, long max_idle, long max_ttl,
		      long request_limit);
/* Closes every kept connection past its max_idle / max_ttl (any thread;
 * facteurd calls it from its tick). */
void policy_sweep(void);

/*
 * Sends request (attribute lines "name=value\n", without the final empty
 * line) and reads the reply. 0 + action_r = the value of action= (never
 * empty), or -1 + err (connect/IO error, timeout, malformed or oversized
 * reply, no action). Thread-safe; the endpoint may keep connections
 * (policy_svc_reuse).
 */
int policy_query(const struct policy_svc *p, const char *request,
		 struct buf *action_r, struct errbuf *err);

#endif
