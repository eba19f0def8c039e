/*
 * milter.h - smtpd_milters: the SMTP session's conversation with Sendmail
 * milters (rspamd, OpenDKIM, OpenDMARC ...) as Postfix has it. Each SMTP
 * stage (connect, HELO, MAIL, RCPT, DATA, end of message) is shown to the
 * listed milters in order, asynchronously on the event loop, and the
 * session waits for their verdict before it answers the client. At the
 * end of the message the headers and body are streamed to each milter and
 * its changes (headers, body, sender, recipients, quarantine) are applied
 * to the transaction before the commit makes it durable.
 * A milter that cannot be reached or answers late or wrongly gets
 * milter_default_action (Postfix's words and codes).
 * Must not: block the loop, or let a milter grow anything past its bound
 * (reply packets, number of changes, body size <= message_size_limit).
 */
#ifndef FACTEUR_MILTER_H
#define FACTEUR_MILTER_H
#include <stdbool.h>

#include "core/lib/buf.h"
#include "core/lib/errbuf.h"
#include "core/milter_proto.h"

struct smtpd_session;
struct settings;

/*
 * The verdict of one stage, on the loop: reply is NULL to go on, else the
 * 4xx/5xx reply for the client (logged as milter-reject already). A
 * DISCARD or quarantine is set on the transaction and reply is NULL. Also
 * called when the client went away meanwhile (s->bev NULL or s->closing):
 * done must then only release arg. The session is resumed after done
 * unless done made it busy again.
 */
typedef void (*milter_done_fn)(struct smtpd_session *s, const char *reply,
			       void *arg);

/* Each returns 1 when it took the session (busy until done runs), 0 when
 * no milter has anything to say at this stage (go on at once). */
int milter_connect(struct smtpd_session *s, milter_done_fn done, void *arg);
int milter_helo(struct smtpd_session *s, milter_done_fn done, void *arg);
int milter_mail(struct smtpd_session *s, milter_done_fn done, void *arg);
/* rcpt: the address in key form (without <>). */
int milter_rcpt(struct smtpd_session *s, const char *rcpt, milter_done_fn done,
		void *arg);
int milter_data(struct smtpd_session *s, milter_done_fn done, void *arg);
/* End of message: the content and envelope of s->tx are edited in place. */
int milter_eom(struct smtpd_session *s, milter_done_fn done, void *arg);
/* The transaction ends without its end of message (RSET, refusal ...). */
void milter_abort(struct smtpd_session *s);
/* The session ends: QUIT to every milter, everything freed. */
void milter_session_free(struct smtpd_session *s);

/* Checks a milter list value (smtpd_milters): addresses and per-milter
 * settings. 0, or -1 + err. */
int milter_list_check(const char *value, struct errbuf *err);
/* The same for s->non_smtpd_milters, err naming the parameter. */
struct settings;
int non_smtpd_milters_check(const struct settings *s, struct errbuf *err);

/* One milter of a list, with its settings (shared with milter_sync.c). */
#define MILTER_MAX 16		/* milters per list */
enum milter_act { MA_ACCEPT, MA_TEMPFAIL, MA_REJECT, MA_QUARANTINE };
struct milter_def {
	char           *name;		/* "inet:host:port" or "unix:/path" */
	char           *host, *port, *path;
	enum milter_act action;
	long long       conn_timeout, cmd_timeout, content_timeout;
	unsigned        version;
};
/* Fills defs[MILTER_MAX] from a list value, main.cf's milter_* settings
 * (st, may be NULL for Postfix's defaults) under each item's own. The
 * count, or -1 + err. */
int  milter_defs_parse(const char *value, const struct settings *st,
		       struct milter_def *defs, struct errbuf *err);
void milter_def_free(struct milter_def *d);
/* milter_macro_defaults ("name=value ..."; a name with or without its
 * braces): the value for a macro that has none, into tmp, or NULL. */
const char *milter_macro_default(const char *defaults, const char *name,
				 struct buf *tmp);
/* The symbol list sent at a stage: the milter's own (override, from its
 * OPTNEG reply) when not NULL, else main.cf's milter_*_macros (st). Used
 * by the session's milters (milter.c) and the non-SMTP ones (milter_sync.c). */
const char *milter_stage_macros(const struct settings *st,
				const char *override, enum milter_stage stage);

#endif
