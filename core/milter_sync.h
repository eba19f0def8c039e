/*
 * milter_sync.h - non_smtpd_milters: the milters see mail that does not
 * come over SMTP (sendmail, via core/pickup.c) as Postfix shows it to
 * them: an ESMTP session from localhost [127.0.0.1], MAIL, every RCPT,
 * DATA, the headers and body, end of message; their changes (headers,
 * body, sender, recipients, quarantine) are applied to the message before
 * it is queued. Blocking, for a worker thread (the pickup job runs on
 * one), every step bounded by the milter's timeouts.
 * Must not: run on the event loop, or let a milter's reply grow anything
 * past its bound.
 */
#ifndef FACTEUR_MILTER_SYNC_H
#define FACTEUR_MILTER_SYNC_H
#include <stdbool.h>

#include "core/lib/buf.h"
#include "core/lib/strlist.h"

struct settings;

struct milter_sync_msg {
	const char     *queue_id;
	char           *sender;		/* owned; CHGFROM replaces it */
	struct strlist  rcpts;		/* ADDRCPT/DELRCPT edit it */
	struct buf     *content;	/* LF line ends; edited in place */
	/* the verdict */
	bool            discard, hold;
	char            hold_why[256];
	char            reply[512];	/* REJECT/TEMPFAIL reply, or "" */
};

enum milter_sync_result { MILTER_SYNC_OK, MILTER_SYNC_REJECT,
			  MILTER_SYNC_TEMPFAIL };

/*
 * Runs the listed milters (non_smtpd_milters) on the message. OK: go on
 * (m->discard or m->hold may be set); REJECT or TEMPFAIL with m->reply.
 * A milter that fails gets its default action, with a warning logged
 * under syslog name name.
 */
enum milter_sync_result milter_sync_run(const struct settings *st,
					const char *list, const char *name,
					struct milter_sync_msg *m);

#endif
