/*
 * smtpd_check.h - Postfix-style access restrictions (smtpd_*_restrictions).
 * A restriction list is compiled once (unknown names are configuration
 * errors naming the parameter and the nearest valid name) and evaluated per
 * command against the facts of the session. The first permit/reject/defer
 * decides the list. Evaluation may look up tables: when a table is blocking
 * it must run on a worker (smtpd_check_blocking tells).
 * Must not: keep session state, or talk to the client (it returns a reply).
 */
#ifndef FACTEUR_SMTPD_CHECK_H
#define FACTEUR_SMTPD_CHECK_H
#include <stdbool.h>

#include "core/config.h"
#include "core/lib/buf.h"
#include "core/lib/errbuf.h"
#include "core/lib/strlist.h"
#include "core/resolve.h"

enum smtpd_check_result {
	SMTPD_CHECK_DUNNO = 0,	/* no decision: go on */
	SMTPD_CHECK_PERMIT,
	SMTPD_CHECK_REJECT,	/* 5xx, reply set */
	SMTPD_CHECK_DEFER,	/* 4xx, reply set */
};

/* Postfix's client name statuses (smtpd_peer.c, core/smtpd_peername.c). */
enum smtpd_peer_code {
	SMTPD_PEER_UNSET = 0,	/* facts from elsewhere: known iff the name is */
	SMTPD_PEER_OK = 2,
	SMTPD_PEER_TEMP = 4,	/* DNS did not answer in time, SERVFAIL ... */
	SMTPD_PEER_PERM = 5,	/* no PTR, bad name, or no lookup done */
	SMTPD_PEER_FORGED = 6,	/* the PTR name does not resolve back */
};

struct smtpd_ccert;

/* What a restriction may look at. Strings may be NULL when not known. */
struct smtpd_check_facts {
	bool        in_mynetworks;
	bool        sasl_authenticated;
	bool        esmtp;
	bool        unauth_pipelining;	/* sent ahead where RFC 2920 forbids */
	bool        tls_active;		/* the session is encrypted (STARTTLS,
					 * smtps): reject_plaintext_session */
	const char *client_addr, *client_name, *reverse_client_name, *helo;
	/* enum smtpd_peer_code of client_name (verified) and of
	 * reverse_client_name (the PTR name, unverified) */
	unsigned char name_status, reverse_name_status;
	const char *sender;		/* key form, "" for <>, NULL before MAIL */
	const struct addr *rcpt;	/* NULL outside RCPT */
	const char *rcpt_text;		/* as it appears in replies: <...> */
	const char *where;		/* "RCPT", "DATA", "VRFY": logs, policy */
	const char *queue_id;		/* NULL or "": NOQUEUE */
	const char *instance;		/* policy "instance": one per MAIL */
	const char *sasl_method, *sasl_username;
	/* the TLS client certificate (core/smtpd_ccert.h); NULL: none */
	const struct smtpd_ccert *ccert;
	/* the TLS session (static OpenSSL strings); NULL: plaintext */
	const char *tls_protocol, *tls_cipher;
	int         tls_bits;
	unsigned    rcpt_count;		/* accepted so far (policy at DATA) */
	long long   size;		/* MAIL SIZE= or 0 */
	const char *syslog_name;	/* NULL: no log lines (tests) */
	struct resolve_ctx *resolve;	/* domain classes, unlisted checks */
	/* non-NULL: log lines are kept here instead of written, each as 'I'
	 * or 'W' (info, warning) + text + NUL (a trial run on the loop) */
	struct buf *log_hold;
};

/* What access maps and policy servers asked of the transaction. */
struct smtpd_check_actions {
	bool          discard, hold;
	char         *discard_why, *hold_why;	/* owned */
	char         *redirect;		/* owned: user@domain */
	struct strlist prepend;		/* header lines to put on top */
};
void smtpd_check_actions_init(struct smtpd_check_actions *a);
void smtpd_check_actions_free(struct smtpd_check_actions *a);
/* Moves what src asked into dst (later REDIRECT wins; HOLD/DISCARD stick). */
void smtpd_check_actions_merge(struct smtpd_check_actions *dst,
			       struct smtpd_check_actions *src);

struct smtpd_restrictions;
struct smtpd_check_conf;

/* Compiles a restriction list value; NULL + err ("PARAM: unknown
 * restriction \"x\" (did you mean \"y\"?)") on a bad name. An empty value
 * gives an empty list. Maps named by check_*_access are opened here. */
struct smtpd_restrictions *smtpd_check_compile(const char *param,
					       const char *value,
					       struct errbuf *err);
void smtpd_check_free(struct smtpd_restrictions **rp);
bool smtpd_check_empty(const struct smtpd_restrictions *r);

/* Evaluates one list with Postfix's default reply codes and no
 * restriction classes; on REJECT/DEFER reply_r holds the reply line. */
enum smtpd_check_result smtpd_check_eval(const struct smtpd_restrictions *r,
					 const struct smtpd_check_facts *f,
					 struct buf *reply_r);

/* The lists of one listener (or of main.cf), with their classes, reply
 * codes and policy settings. */
struct smtpd_check_lists {
	struct smtpd_restrictions *client, *helo, *sender, *relay, *rcpt, *data;
	struct smtpd_restrictions *eod;	/* smtpd_end_of_data_restrictions */
	struct smtpd_check_conf   *conf;
	struct smtpd_knobs        *knobs;	/* footer, EHLO discard, SASL
						   exceptions, forbidden commands
						   (core/smtpd_knobs.h) */
};

/*
 * Compiles every smtpd_*_restrictions list and smtpd_restriction_classes
 * of c and checks, as Postfix does, that relay and recipient restrictions
 * are not both empty (that would be an open relay). 0, or -1 + err naming
 * "FILE, line N" of the parameter at fault.
 */
int  smtpd_check_lists_compile(struct smtpd_check_lists *l,
			       const struct config *c, struct errbuf *err);
void smtpd_check_lists_free(struct smtpd_check_lists *l);
/* True when evaluation may block (policy service, sleep, blocking maps):
 * then run smtpd_check_rcpt / smtpd_check_data on a worker. */
bool smtpd_check_lists_blocking(const struct smtpd_check_lists *l);
/* True when evaluation may block for more than table lookups (DNS,
 * policy service, sleep ...): those never run on the loop, even in
 * table_nonblock mode. */
bool smtpd_check_lists_need_worker(const struct smtpd_check_lists *l);

/*
 * RCPT time with smtpd_delay_reject: client, helo, sender, relay and
 * recipient lists in that order. Each list stops at its first decision; a
 * PERMIT moves on to the next list; REJECT/DEFER ends with reply_r set.
 * defer_if_permit turns a final pass into 450. act (may be NULL) collects
 * DISCARD/HOLD/PREPEND/REDIRECT. Returns PERMIT or DUNNO when the
 * recipient passed.
 */
enum smtpd_check_result smtpd_check_rcpt(const struct smtpd_check_lists *l,
					 const struct smtpd_check_facts *f,
					 struct buf *reply_r,
					 struct smtpd_check_actions *act);
/*
 * smtpd_delay_reject = no (Postfix): smtpd_client_restrictions run when the
 * client connects, smtpd_helo_restrictions at HELO/EHLO and
 * smtpd_sender_restrictions at MAIL, each on its own; smtpd_check_rcpt
 * then evaluates the relay and recipient lists only.
 */
enum smtpd_check_stage {
	SMTPD_STAGE_CLIENT,
	SMTPD_STAGE_HELO,
	SMTPD_STAGE_SENDER,
};
bool smtpd_check_delay_reject(const struct smtpd_check_lists *l);
/*
 * An unknown recipient (resolve_rcpt said RESOLVE_UNKNOWN): the reply with
 * the code of its class (unknown_local_recipient_reject_code,
 * unknown_virtual_mailbox_reject_code, unknown_virtual_alias_reject_code,
 * unknown_relay_recipient_reject_code; 550 5.1.6 for a relocated user).
 * rcpt_text is "<addr>".
 */
struct resolve_result;
void smtpd_check_unknown_reply(const struct smtpd_check_lists *l,
			       const struct resolve_result *res,
			       const char *rcpt_text, struct buf *reply);
/* smtpd_reject_unlisted_recipient (default yes). */
bool smtpd_check_reject_unlisted_rcpt(const struct smtpd_check_lists *l);
/* smtpd_reject_unlisted_sender = yes: REJECT/DEFER with the reply when the
 * sender is unknown in a hosted domain, else DUNNO. */
enum smtpd_check_result smtpd_check_unlisted_sender(
	const struct smtpd_check_lists *l, const struct smtpd_check_facts *f,
	struct buf *reply);
/* One list; DUNNO when it is empty. f->where names the command. */
enum smtpd_check_result smtpd_check_stage(const struct smtpd_check_lists *l,
					  enum smtpd_check_stage stage,
					  const struct smtpd_check_facts *f,
					  struct buf *reply_r,
					  struct smtpd_check_actions *act);
/* DATA time: smtpd_data_restrictions (f->rcpt is NULL). */
enum smtpd_check_result smtpd_check_data(const struct smtpd_check_lists *l,
					 const struct smtpd_check_facts *f,
					 struct buf *reply_r,
					 struct smtpd_check_actions *act);
/* After the end of the content (DATA's dot, BDAT LAST), before the
 * commit: smtpd_end_of_data_restrictions; f->where is "END-OF-MESSAGE"
 * and f->size the message size. */
enum smtpd_check_result smtpd_check_eod(const struct smtpd_check_lists *l,
					const struct smtpd_check_facts *f,
					struct buf *reply_r,
					struct smtpd_check_actions *act);

#endif
