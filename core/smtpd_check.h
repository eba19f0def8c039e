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
#include "core/resolve.h"

enum smtpd_check_result {
	SMTPD_CHECK_DUNNO = 0,	/* no decision: go on */
	SMTPD_CHECK_PERMIT,
	SMTPD_CHECK_REJECT,	/* 5xx, reply set */
	SMTPD_CHECK_DEFER,	/* 4xx, reply set */
};

/* What a restriction may look at. */
struct smtpd_check_facts {
	bool        in_mynetworks;
	bool        sasl_authenticated;
	const char *client_addr, *client_name, *helo;
	const char *sender;		/* key form, "" for <> */
	const struct addr *rcpt;	/* NULL outside RCPT */
	const char *rcpt_text;		/* as it appears in replies: <...> */
	struct resolve_ctx *resolve;	/* domain classes */
};

struct smtpd_restrictions;

/* Compiles a restriction list value; NULL + err ("PARAM: unknown
 * restriction \"x\" (did you mean \"y\"?)") on a bad name. An empty value
 * gives an empty list. */
struct smtpd_restrictions *smtpd_check_compile(const char *param,
					       const char *value,
					       struct errbuf *err);
void smtpd_check_free(struct smtpd_restrictions **rp);
bool smtpd_check_empty(const struct smtpd_restrictions *r);

/* Evaluates one list; on REJECT/DEFER reply_r holds the full reply line. */
enum smtpd_check_result smtpd_check_eval(const struct smtpd_restrictions *r,
					 const struct smtpd_check_facts *f,
					 struct buf *reply_r);

/* The five lists of one listener (or of main.cf). */
struct smtpd_check_lists {
	struct smtpd_restrictions *client, *helo, *sender, *relay, *rcpt;
};

/*
 * Compiles every smtpd_*_restrictions list of c and checks, as Postfix
 * does, that relay and recipient restrictions are not both empty (that
 * would be an open relay). 0, or -1 + err naming "FILE, line N" of the
 * parameter at fault.
 */
int  smtpd_check_lists_compile(struct smtpd_check_lists *l,
			       const struct config *c, struct errbuf *err);
void smtpd_check_lists_free(struct smtpd_check_lists *l);

#endif
