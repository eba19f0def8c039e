/*
 * smtpd_knobs.h - SMTP server settings that are not restrictions but
 * shape the dialogue, compiled once per listener (with its -o overrides):
 *   smtpd_reject_footer          text appended to 4xx/5xx replies
 *   smtpd_discard_ehlo_keywords, smtpd_discard_ehlo_keyword_address_maps
 *                                EHLO keywords hidden (per client address)
 *   smtpd_sasl_exceptions_networks  clients not offered AUTH
 *   smtpd_forbidden_commands     non-SMTP commands that end the session
 * Must not: do I/O other than opening the tables at compile time and
 * looking them up when asked.
 */
#ifndef FACTEUR_SMTPD_KNOBS_H
#define FACTEUR_SMTPD_KNOBS_H
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/lib/buf.h"
#include "core/lib/errbuf.h"

/* EHLO keywords that can be discarded (Postfix's ehlo_mask names). */
enum {
	SMTPD_EHLO_8BITMIME = 1u << 0, SMTPD_EHLO_AUTH = 1u << 1,
	SMTPD_EHLO_DSN = 1u << 2, SMTPD_EHLO_ENHANCEDSTATUSCODES = 1u << 3,
	SMTPD_EHLO_ETRN = 1u << 4, SMTPD_EHLO_PIPELINING = 1u << 5,
	SMTPD_EHLO_SIZE = 1u << 6, SMTPD_EHLO_STARTTLS = 1u << 7,
	SMTPD_EHLO_VERP = 1u << 8, SMTPD_EHLO_VRFY = 1u << 9,
	SMTPD_EHLO_XCLIENT = 1u << 10, SMTPD_EHLO_XFORWARD = 1u << 11,
	SMTPD_EHLO_SMTPUTF8 = 1u << 12, SMTPD_EHLO_CHUNKING = 1u << 13,
	SMTPD_EHLO_SILENT = 1u << 14,	/* silent-discard: do not log */
};

struct smtpd_knobs;

/* NULL + err ("PARAM: reason") on a bad value. */
struct smtpd_knobs *smtpd_knobs_new(const struct config *c, struct errbuf *err);
void smtpd_knobs_free(struct smtpd_knobs **kp);

/* smtpd_reject_footer, "" when unset. */
const char *smtpd_knobs_footer(const struct smtpd_knobs *k);

/*
 * The EHLO keywords to hide from this client: smtpd_discard_ehlo_keywords,
 * or what smtpd_discard_ehlo_keyword_address_maps says for its address.
 * -1 when the table could not answer (why_r says why), else 0.
 */
int  smtpd_knobs_ehlo_mask(const struct smtpd_knobs *k, const char *client_addr,
			   unsigned *mask_r, struct buf *why_r);
/* smtpd_sasl_exceptions_networks: AUTH is not offered to this client
 * (but, as in Postfix, the AUTH command still works). 1 listed, 0 not,
 * -1 when a table in the list could not answer (why_r says why). */
int  smtpd_knobs_sasl_exception(const struct smtpd_knobs *k,
				const char *client_addr, struct buf *why_r);
/* Parses a keyword list into a mask (unknown names are ignored). */
unsigned smtpd_knobs_ehlo_parse(const char *list);
/*
 * The EHLO reply text (lines "250-..."/"250 ..." with CRLF) without the
 * keywords in mask; the first line (the host name) stays. Owned result.
 * names_r (may be NULL) receives the discarded keywords, for the log.
 */
char *smtpd_knobs_ehlo_filter(const char *ehlo, unsigned mask,
			      struct buf *names_r);

/* Is this unknown command verb (the first word, len bytes) forbidden
 * (smtpd_forbidden_commands, or a "Label:" header line as Postfix)? */
bool smtpd_knobs_forbidden(const struct smtpd_knobs *k, const char *verb,
			   size_t len);

#endif
