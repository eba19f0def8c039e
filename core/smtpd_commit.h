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

#endif
