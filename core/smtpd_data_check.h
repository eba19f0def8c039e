/*
 * smtpd_data_check.h - smtpd_data_restrictions, evaluated when the client
 * sends DATA (or its first BDAT), before any content is accepted.
 */
#ifndef FACTEUR_SMTPD_DATA_CHECK_H
#define FACTEUR_SMTPD_DATA_CHECK_H

struct smtpd_session;

/*
 * Evaluates the listener's smtpd_data_restrictions for the session's
 * transaction, on a worker when a restriction may block. Calls
 * proceed(s) when the client may send the content, or refuse(s, reply)
 * with the 4xx/5xx reply line (logged here; the caller answers); either
 * way the session resumes afterwards. An empty list proceeds at once
 * without going busy.
 */
void smtpd_data_check(struct smtpd_session *s,
		      void (*proceed)(struct smtpd_session *s),
		      void (*refuse)(struct smtpd_session *s, const char *reply));

/*
 * smtpd_end_of_data_restrictions, the same way, after the last byte of
 * the content (DATA's final dot, BDAT LAST) and before the commit:
 * proceed(s) commits, refuse(s, reply) must answer and drop the
 * transaction (nothing was queued). f.size is the received size.
 */
void smtpd_eod_check(struct smtpd_session *s,
		     void (*proceed)(struct smtpd_session *s),
		     void (*refuse)(struct smtpd_session *s, const char *reply));

#endif
