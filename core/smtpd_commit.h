/*
 * smtpd_commit.h - makes a received message durable before the 250 reply.
 * When every destination is a local Maildir, the message is delivered into
 * each Maildir (fsynced) on a worker and that is the commit; destinations
 * that could not be delivered now (and remote ones) go into the queue
 * (fsynced) for the queue manager. The reply is 250 only when all of it
 * is on disk; otherwise 451 4.3.0 and nothing is acknowledged.
 */
#ifndef FACTEUR_SMTPD_COMMIT_H
#define FACTEUR_SMTPD_COMMIT_H

struct smtpd_session;

/* Takes the session's transaction; replies and resumes the session later
 * (never before returning). */
void smtpd_commit(struct smtpd_session *s);

/*
 * smtpd_delay_reject = no: one restriction stage (smtpd_check.h) at its
 * own command, maybe on a worker. done runs on the loop with the result
 * and the reply (a refusal is logged already); the session is resumed
 * after done when the check went to a worker. helo: the name being
 * checked at HELO/EHLO (NULL otherwise).
 */
typedef void (*smtpd_stage_done_fn)(struct smtpd_session *s, int refused,
				    const char *reply, void *arg);
void smtpd_stage_check(struct smtpd_session *s, int stage, const char *helo,
		       smtpd_stage_done_fn done, void *arg);

#endif
