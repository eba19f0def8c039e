/*
 * smtpd_reply.h - what the SMTP server sends that the knobs shape
 * (core/smtpd_knobs.h): every reply line with smtpd_reject_footer on
 * 4xx/5xx, the EHLO reply without the discarded keywords, and the
 * end of a session on a forbidden (non-SMTP) command.
 * Internal to the SMTP server (uses struct smtpd_session).
 */
#ifndef FACTEUR_SMTPD_REPLY_H
#define FACTEUR_SMTPD_REPLY_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct smtpd_session;

/* Is smtpd_reject_footer set (then replies go through smtpd_reply_vsend)? */
bool smtpd_reply_footer_on(const struct smtpd_session *s);
/* Sends one reply (CRLF added), with the footer when it is 4xx/5xx (after
 * soft_bounce's 5xx -> 4xx), and records it for the notify_classes
 * transcript. */
void smtpd_reply_vsend(struct smtpd_session *s, const char *fmt, va_list ap);
/*
 * Sends the EHLO reply for this client; sets s->ehlo_discard. false: the
 * discard maps or smtpd_sasl_exceptions_networks could not answer; then,
 * as Postfix, "421 4.3.0 HOST Server local data error" was sent instead
 * and the session must end.
 */
bool smtpd_reply_ehlo(struct smtpd_session *s);
/*
 * An unrecognized command: when forbidden, logs "non-SMTP command",
 * answers 221 2.7.0 and returns true (the caller closes the session).
 */
bool smtpd_reply_forbidden(struct smtpd_session *s, const char *line,
			   size_t len);

#endif
