/*
 * smtpd_limits.h - the SMTP server's rate and concurrency limits, as
 * Postfix's smtpd asks anvil(8): per service and client address
 * (smtpd_client_connection_count_limit, _connection_rate_limit,
 * _message_rate_limit, _recipient_rate_limit, _new_tls_session_rate_limit,
 * _auth_rate_limit over anvil_rate_time_unit, except for
 * smtpd_client_event_limit_exceptions), and per SASL user
 * (core/user_limits.h: 450 past the limits, hold and one postmaster
 * notice past the hold threshold).
 * The client key is the session's client address (after a PROXY header,
 * the address it carried), never the socket peer.
 * Each check returns 0 to go on, or -1 with the reply line in reply_r (the
 * warning is logged here; the session sends the reply).
 * Event-loop thread only.
 */
#ifndef FACTEUR_SMTPD_LIMITS_H
#define FACTEUR_SMTPD_LIMITS_H
#include <stdbool.h>
#include <stddef.h>

#include "core/lib/errbuf.h"

struct smtpd_listener;
struct smtpd_session;

/* Per listener: the exception list and the per-user limits table. */
struct smtpd_limits_conf;
int  smtpd_limits_conf_new(struct smtpd_listener *l, struct errbuf *err);
void smtpd_limits_conf_free(struct smtpd_listener *l);

/*
 * A new session whose client address is known: counts the connection.
 * -1: too many connections (421, the session ends) or, on an smtps
 * listener, too many new TLS sessions (reply_r is "": drop silently).
 */
int  smtpd_limits_connect(struct smtpd_session *s, char *reply_r, size_t size);
/* The session ends (frees its limit state; safe without a connect). */
void smtpd_limits_disconnect(struct smtpd_session *s);
/* MAIL FROM: the client's message rate (450 4.7.1). */
int  smtpd_limits_mail(struct smtpd_session *s, char *reply_r, size_t size);
/* MAIL FROM with s->tx set: the SASL user's message rate, hold state. */
int  smtpd_limits_user_mail(struct smtpd_session *s, char *reply_r, size_t size);
/* RCPT TO: the client's and the SASL user's recipient rates (450 4.7.1). */
int  smtpd_limits_rcpt(struct smtpd_session *s, char *reply_r, size_t size);
/* AUTH: the client's AUTH command rate (450 4.7.1). */
int  smtpd_limits_auth(struct smtpd_session *s, char *reply_r, size_t size);
/* STARTTLS: refused (454 4.7.0) after too many new TLS sessions. */
int  smtpd_limits_starttls(struct smtpd_session *s, char *reply_r, size_t size);
/* A TLS handshake completed: counts a new session (421 past the limit). */
int  smtpd_limits_tls_done(struct smtpd_session *s, char *reply_r, size_t size);

/*
 * AUTH succeeded: looks up the user's own limits. Returns false when done
 * at once (the caller replies 235 itself). Returns true when the lookup
 * went to a worker: the session is busy, and this module sends reply235
 * and resumes the session when it is back.
 */
bool smtpd_limits_user_login(struct smtpd_session *s, const char *reply235);

#endif
