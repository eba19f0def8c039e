/*
 * sasl_exchange.h - one SASL authentication exchange on the server,
 * whatever the protocol: SMTP AUTH (RFC 4954) and ManageSieve
 * AUTHENTICATE (RFC 5804) feed it decoded client messages and act on what
 * it answers; each keeps its own framing (334 lines, quoted strings) and
 * replies (235/535/454, OK/NO).
 *
 *	ex = sasl_exchange_new(mech, passdb, hostname, flags);
 *	a = initial response ? sasl_exchange_step(ex, ir) : sasl_exchange_start(ex);
 *	loop:
 *	  SASL_CHALLENGE: send sasl_exchange_out(); a = step(ex, next message)
 *	  SASL_WORK:      run sasl_exchange_work(ex) on a worker thread (passdb
 *	                  lookup, slow hashes), then a = sasl_exchange_resume(ex)
 *	                  on the loop
 *	  SASL_OK:        authenticated as sasl_exchange_user(); with
 *	                  SASL_EX_FINAL_IN_OK, sasl_exchange_out() may hold
 *	                  server data to send with the success
 *	  SASL_FAIL:      the same failure reply whatever the cause;
 *	                  sasl_exchange_why() says the cause for the log
 *	  SASL_TEMPFAIL:  passdb failure or broken stored entry (4xx)
 *
 * Unknown users cost what a wrong password costs: PLAIN/LOGIN verify
 * against passdb_dummy_verify; SCRAM answers with a salt derived from the
 * name and a server secret, so the dialogue looks the same.
 * Event-loop thread only, except sasl_exchange_work (one thread at a
 * time, while the loop does not touch the exchange).
 */
#ifndef FACTEUR_SASL_EXCHANGE_H
#define FACTEUR_SASL_EXCHANGE_H
#include <stddef.h>

#include "auth/sasl.h"

struct passdb;
struct sasl_exchange;

enum sasl_action {
	SASL_CHALLENGE = 1, SASL_WORK, SASL_OK, SASL_FAIL, SASL_TEMPFAIL,
};

/* The protocol can carry server data in its success reply (ManageSieve's
 * OK (SASL "...")); without it, final data is one more challenge whose
 * answer must be empty (SMTP). */
#define SASL_EX_FINAL_IN_OK	0x1

/* realm (smtpd_sasl_local_domain, NULL or "" for none) is appended as
 * "@realm" to login names without a domain before the passdb sees them. */
struct sasl_exchange *sasl_exchange_new(enum sasl_mech mech,
					struct passdb *passdb,
					const char *hostname, const char *realm,
					unsigned flags);
/* Wipes and frees; NULL-safe. */
void sasl_exchange_free(struct sasl_exchange **exp);

/* The first server challenge when the client sent no initial response. */
enum sasl_action sasl_exchange_start(struct sasl_exchange *ex);
/* One decoded client message (an initial response or an answer). */
enum sasl_action sasl_exchange_step(struct sasl_exchange *ex, const char *msg,
				    size_t len);
/* Worker thread: the passdb lookup and verification asked for. */
void sasl_exchange_work(struct sasl_exchange *ex);
/* Event loop, after sasl_exchange_work. */
enum sasl_action sasl_exchange_resume(struct sasl_exchange *ex);

/* Challenge / final data (raw bytes, to be base64-encoded), "" if none. */
const char *sasl_exchange_out(const struct sasl_exchange *ex, size_t *len_r);
/* The authenticated name (after SASL_OK), as the client spelled it
 * (with "@realm" added to a name without a domain). */
const char *sasl_exchange_user(const struct sasl_exchange *ex);
/* A user name seen so far (for logs), or NULL. */
const char *sasl_exchange_login(const struct sasl_exchange *ex);
/* Why the exchange failed (for the log), "" if no reason. */
const char *sasl_exchange_why(const struct sasl_exchange *ex);
enum sasl_mech sasl_exchange_mech(const struct sasl_exchange *ex);

#endif
