/*
 * smtpd_peername.h - the SMTP client's host name, looked up once per
 * session before the greeting, as Postfix's smtpd_peer.c does: the PTR
 * name of the client address (hosts file first, then DNS), kept as the
 * verified name only when that name's A/AAAA records list the address.
 * The lookup runs on the event loop through c-ares and is bounded by
 * facteur_peername_timeout; smtpd_peername_lookup = no skips it.
 * Results on the session: client_name (verified, or "unknown"),
 * reverse_client_name (the PTR name, or NULL), name_status and
 * reverse_name_status (enum smtpd_peer_code).
 * Must not: block, call back into the session after it was released, or
 * keep a name that is malformed or numeric.
 */
#ifndef FACTEUR_SMTPD_PEERNAME_H
#define FACTEUR_SMTPD_PEERNAME_H

struct smtpd_session;
struct smtpd_peername;

typedef void smtpd_peername_done(struct smtpd_session *s);

/*
 * Sets s's names from s->client_addr. 0: they are set already (no lookup
 * to do, or none possible); 1: a lookup runs and done(s) is called once,
 * later, from the loop, when the names are set. The session must stay
 * until then (or call smtpd_peername_release).
 */
int  smtpd_peername_start(struct smtpd_session *s, smtpd_peername_done *done);
/* Frees s's names; a lookup in flight is forgotten (done is not called). */
void smtpd_peername_release(struct smtpd_session *s);

/* Postfix's valid_hostname (letters, digits, '-', '_'; not all-numeric). */
int  smtpd_peername_valid(const char *name);

#endif
