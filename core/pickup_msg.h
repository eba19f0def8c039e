/*
 * pickup_msg.h - what Postfix's cleanup does to a locally submitted
 * message (sendmail): a Received: header on top, the missing Date:,
 * Message-ID: and From: added at the end of the header section, Bcc:
 * removed, recipients taken from To:/Cc:/Bcc: for sendmail -t, and a
 * blank line inserted when the body starts without one.
 * Pure: no I/O; fuzzable. Input and output use LF line ends.
 */
#ifndef FACTEUR_PICKUP_MSG_H
#define FACTEUR_PICKUP_MSG_H
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/lib/buf.h"
#include "core/lib/strlist.h"

struct pickup_fix {
	const char *id;		/* queue ID */
	const char *myhostname;
	const char *mail_name;	/* "facteur" in Received: */
	const char *sender;	/* envelope sender, qualified ("" for <>) */
	const char *fullname;	/* -F / NAME, or NULL */
	unsigned long uid;	/* the submitting user */
	time_t  now;
	bool    extract;	/* -t: collect To/Cc/Bcc addresses */
};

/*
 * Writes the fixed message to out. With f->extract, appends the addresses
 * found in To:, Cc: and Bcc: to rcpts_r (as written: unqualified ones
 * stay so). *msgid_r gets the Message-ID (existing or added; caller
 * frees).
 */
void pickup_msg_fix(const struct pickup_fix *f, const char *msg, size_t len,
		    struct buf *out, struct strlist *rcpts_r, char **msgid_r);

/*
 * Appends the mailboxes of an RFC 5322 address-list (display names,
 * comments, quoted strings, groups) to out: the addr-spec of each, without
 * the angle brackets. Empty entries are skipped.
 */
void pickup_msg_addresses(const char *value, size_t len, struct strlist *out);

#endif
