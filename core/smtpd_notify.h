/*
 * smtpd_notify.h - the SMTP server's side of notify_classes (Postfix):
 * a bounded transcript of the session ("Out: 220 ...", "In:  EHLO ...")
 * and, at the session's end, one postmaster notice ("facteur SMTP server:
 * errors from host[addr]", "Transcript of session follows.") when an error
 * of a listed class happened: resource, software, policy, protocol, data,
 * bounce (rejected unknown recipients / too big messages, to
 * bounce_notice_recipient; the others go to error_notice_recipient).
 * The transcript exists only when one of those classes is enabled and the
 * client said something (or got an error reply); it keeps the last
 * SMTPD_NOTIFY_MAX bytes (oldest lines dropped). AUTH data never enters
 * it. The notice is built and queued on a worker (queue_write), then
 * handed to the queue manager, like the queue-side notices.
 * Must not: keep anything for a session without an enabled class, copy a
 * SASL response or AUTH initial response, send more than one notice per
 * session, or free the session while the notice job runs.
 */
#ifndef FACTEUR_SMTPD_NOTIFY_H
#define FACTEUR_SMTPD_NOTIFY_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/lib/buf.h"

/* The SMTP server's notify_classes (queue-side classes are core/qmgr.c's). */
#define SMTPD_NOTE_BOUNCE   (1u << 0)
#define SMTPD_NOTE_RESOURCE (1u << 1)
#define SMTPD_NOTE_SOFTWARE (1u << 2)
#define SMTPD_NOTE_POLICY   (1u << 3)
#define SMTPD_NOTE_PROTOCOL (1u << 4)
#define SMTPD_NOTE_DATA     (1u << 5)

/* Transcript bytes kept per session (whole lines; older ones dropped). */
#define SMTPD_NOTIFY_MAX  4096
/* One transcript line at most (longer ones are cut). */
#define SMTPD_NOTIFY_LINE 512

struct smtpd_session;
struct smtpd_notify;

/* The smtpd classes named in a notify_classes value (others: 0 bits). */
unsigned smtpd_notify_mask(const char *notify_classes);
/* The class of one reply line ("550 5.1.1 ..."), 0 for none. */
unsigned smtpd_notify_classify(const char *reply);
/* "bounce, protocol": the names of the bits, for logs. */
void smtpd_notify_names(unsigned bits, char *out, size_t size);

/* -- the transcript, pure (for tests too) -- */
struct smtpd_notify *smtpd_notify_new(unsigned mask);
/* Appends "In:  " / "Out: " + text (one line, control bytes as '?'). */
void smtpd_notify_add(struct smtpd_notify *n, const char *dir,
		      const char *text, size_t len);
/* The kept lines, LF separated. */
const char *smtpd_notify_text(const struct smtpd_notify *n, size_t *len_r,
			      unsigned *dropped_r);
void smtpd_notify_note(struct smtpd_notify *n, unsigned cls);
unsigned smtpd_notify_due(const struct smtpd_notify *n);	/* errors & mask */
void smtpd_notify_destroy(struct smtpd_notify **np);

/* The notice message (headers + body, LF line ends), Postfix's layout. */
struct smtpd_notice_info {
	time_t      date;
	const char *myhostname, *mail_name, *origin;	/* origin: @myorigin */
	const char *to;		/* the notice recipient, qualified */
	const char *client_name, *client_addr;
	const char *id;		/* the notice's queue ID (Message-ID) */
	const char *transcript;	/* LF separated lines */
	unsigned    dropped;	/* lines no longer kept */
	const char *reason;	/* "Session aborted, reason: ..." or NULL */
};
void smtpd_notify_format(const struct smtpd_notice_info *i, struct buf *out);

/* -- session hooks (core/smtpd_session.c) -- */
/* A client line as read (AUTH data masked). */
void smtpd_notify_in(struct smtpd_session *s, const char *line, size_t len);
/* A reply as sent: printf-style, or raw text of CRLF-separated lines. */
void smtpd_notify_vreply(struct smtpd_session *s, const char *fmt,
			 va_list ap);
void smtpd_notify_raw(struct smtpd_session *s, const char *text);
/*
 * At the session's end, before anything is freed: true when a notice job
 * was started; the session is then busy and again(s) is called once the
 * notice is queued (or failed). false: nothing (more) to do.
 */
bool smtpd_notify_end(struct smtpd_session *s,
		      void (*again)(struct smtpd_session *));
/* Frees the session's transcript (session_free). */
void smtpd_notify_free(struct smtpd_session *s);

#endif
