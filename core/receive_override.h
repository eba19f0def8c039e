/*
 * receive_override.h - receive_override_options (Postfix): what the mail
 * receiving side skips for mail entering through a listener (typically
 * the one before or after a content filter, set with -o in master.cf):
 * no_unknown_recipient_checks (unknown recipients are accepted at RCPT),
 * no_address_mappings (no canonical mapping, masquerading, virtual alias
 * expansion or automatic BCC), no_header_body_checks (no header_checks /
 * body_checks), no_milters (no smtpd_milters / non_smtpd_milters).
 * Pure parsing. Must not: decide anything itself.
 */
#ifndef FACTEUR_RECEIVE_OVERRIDE_H
#define FACTEUR_RECEIVE_OVERRIDE_H
#include <stdbool.h>

#include "core/lib/errbuf.h"

#define RECV_OVR_NO_UNKNOWN_RCPT	(1u << 0)
#define RECV_OVR_NO_ADDRESS_MAPPINGS	(1u << 1)
#define RECV_OVR_NO_HEADER_BODY_CHECKS	(1u << 2)
#define RECV_OVR_NO_MILTERS		(1u << 3)

/* The bits of a value (names separated by commas/blanks, any case).
 * 0, or -1 + err naming the unknown option. */
int  receive_override_parse(const char *value, unsigned *bits_r,
			    struct errbuf *err);
/* Is bit set in value? (An unparsable value was refused at start.) */
bool receive_override_has(const char *value, unsigned bit);

#endif
