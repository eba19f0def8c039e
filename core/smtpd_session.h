/*
 * smtpd_session.h - session and transaction state shared by the SMTP
 * dialogue (smtpd_session.c) and the recipient checks and message commit
 * (smtpd_commit.c). Internal to the SMTP server.
 * Memory: an idle session is this struct plus libevent's bufferevent; the
 * transaction (and its content buffer, bounded by message_size_limit)
 * exists only between MAIL and the end of the message.
 */
#ifndef FACTEUR_SMTPD_SESSION_H
#define FACTEUR_SMTPD_SESSION_H
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/time.h>

#include <openssl/ssl.h>

#include "core/lib/buf.h"
#include "core/lib/strlist.h"
#include "core/queue.h"
#include "core/resolve.h"
#include "core/smtpd_check.h"
#include "core/smtpd_cmd.h"

#define SMTPD_VERB_MAX (SMTPD_XFORWARD + 1)

enum smtpd_state { SMTPD_S_CMD = 0, SMTPD_S_DATA, SMTPD_S_BDAT, SMTPD_S_AUTH };

struct smtpd_rcpt {
	char   *orig;		/* as given in RCPT TO, key form */
	char   *orcpt;		/* DSN ORCPT or NULL */
	unsigned notify;
	struct resolve_result res;	/* final destinations */
};

struct smtpd_txn {
	char            id[QUEUE_ID_SIZE];	/* set at the first accepted RCPT */
	struct timeval  arrival;
	char           *sender;		/* key form, "" for <> */
	char           *envid, *ret;
	enum smtpd_body body;
	bool            smtputf8;
	struct smtpd_rcpt *rcpt;
	size_t          nrcpt, cap;
	/* content: our Received: header + the message, LF line ends */
	struct buf      content;
	size_t          received_len;
	long long       size;		/* message bytes as received (LF ends) */
	long long       declared_size;	/* MAIL FROM SIZE=, -1 if not given */
	char           *msgid;
	int             hops;
	/* DISCARD/HOLD/REDIRECT/PREPEND asked by restrictions (smtpd_check) */
	struct smtpd_check_actions act;
	struct strlist  milter_rcpts;	/* added by milters (core/milter.c):
					   resolved by the commit */
	struct strlist  milter_headers;	/* lines milters added or changed,
					   for milter_header_checks */
	unsigned        at_line_start:1, prev_crlf:1, in_header:1, too_big:1,
			bdat:1, bdat_cr:1,
			bdat_started:1;	/* a BDAT came (even if refused) */
};

struct smtpd_listener;
struct sasl_exchange;
struct smtpd_notify;
struct milter_sess;

struct smtpd_session {
	struct smtpd_listener *l;
	struct smtpd_session  *lnext, *lprev;	/* the listener's sessions */
	struct bufferevent    *bev;	/* NULL once the client is gone */
	int                    fd;	/* the client socket, ours to close */
	SSL                   *ssl;	/* after STARTTLS or on smtps */
	char                  *tls_info;	/* "TLSv1.3 with cipher ..." */
	struct smtpd_ccert    *ccert;	/* the client's certificate, if any */
	char                  *sasl_username;	/* after a successful AUTH */
	const char            *sasl_method;	/* "PLAIN", "LOGIN" */
	struct sasl_exchange  *auth_ex;	/* the AUTH exchange in progress */
	char                  *auth_reply;	/* failure reply held back */
	struct event          *auth_timer;	/* throttled failure replies */
	int                    auth_mech;	/* enum sasl_mech in progress */
	struct event          *timer;	/* error tarpit; lazily created */
	struct smtpd_limits_sess *limits;	/* rate limit state (smtpd_limits.c) */
	struct smtpd_notify    *notify;	/* transcript for notify_classes
					   (smtpd_notify.c); NULL until used */
	struct milter_sess     *milter;	/* smtpd_milters (core/milter.c) */
	enum smtpd_state       state;
	struct smtpd_txn      *tx;
	char                  *helo;
	/* smtpd_peername.c: the verified name (reverse_client_name) or
	 * "unknown"; the PTR name (owned) or NULL; enum smtpd_peer_code */
	const char            *client_name;
	char                  *reverse_client_name;
	struct smtpd_peername *peername;	/* lookup in flight, or NULL */
	unsigned char          name_status, reverse_name_status;
	char                   client_addr[INET6_ADDRSTRLEN];
	long long              bdat_remaining, bdat_chunk;
	char                  *bdat_reject;	/* owned: reply after a discarded chunk */
	unsigned               errors, junk;
	unsigned               ehlo_discard;	/* SMTPD_EHLO_* hidden from this
						   client (core/smtpd_reply.c) */
	unsigned short         cmd_total[SMTPD_VERB_MAX], cmd_ok[SMTPD_VERB_MAX];
	unsigned               milter_pending:1;	/* a milter step holds
							   the session (busy) */
	unsigned               busy:1,		/* a reply is pending (worker/timer) */
			       closing:1, closing_after_reply:1, skipping:1,
			       ill_pipelining:1,	/* sent ahead where RFC 2920
							   does not allow it */
			       esmtp:1, in_mynetworks:1, bdat_last:1,
			       sasl_authenticated:1,
			       tls_pending:1,	/* 220 sent, switch once flushed */
			       tls_up:1,	/* handshake done */
			       greet_after_tls:1,	/* smtps: 220 once the
							   handshake is done */
			       greeted:1,	/* connect logged (after PROXY) */
			       access_denied:1;	/* smtpd_delay_reject = no:
						   CONNECT refused, 503 */
};

/* Appends one reply line (CRLF added). */
void smtpd_session_reply(struct smtpd_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Ends a pending (busy) step: enables reading and processes pipelined input. */
void smtpd_session_resume(struct smtpd_session *s);
void smtpd_txn_free(struct smtpd_txn **tp);

/* smtpd_commit.c: RCPT/VRFY checks (maybe on a worker), message commit. */
void smtpd_rcpt_check(struct smtpd_session *s, struct smtpd_rcpt_args *r);
void smtpd_vrfy_check(struct smtpd_session *s, struct smtpd_rcpt_args *r);
/* Called by smtpd_commit.c with the outcome; takes r and res. */
void smtpd_rcpt_finish(struct smtpd_session *s, struct smtpd_rcpt_args *r,
		       struct resolve_result *res, const char *reply, int ok);

#endif
