/*
 * bounce.h - delivery status notifications (RFC 3464): builds the
 * multipart/report; report-type=delivery-status message that facteur sends
 * from MAILER-DAEMON with the null sender for failed recipients, delay
 * warnings and success reports, in Postfix's style. Pure: no I/O, no
 * logging, no clock; the queue manager injects the result into the queue.
 */
#ifndef FACTEUR_BOUNCE_H
#define FACTEUR_BOUNCE_H
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/lib/buf.h"

enum bounce_kind {
	BOUNCE_FAILED,		/* Action: failed, "Undelivered Mail ..." */
	BOUNCE_DELAYED,		/* Action: delayed, a warning only */
	BOUNCE_DELIVERED,	/* Action: delivered (NOTIFY=SUCCESS) */
};

struct bounce_rcpt {
	const char *addr;	/* final recipient */
	const char *orig;	/* as received (may be NULL or equal addr) */
	const char *orcpt;	/* DSN ORCPT "type;addr" or NULL */
	const char *status;	/* "5.1.1", "4.4.1", "2.0.0" */
	const char *remote_mta;	/* host name of the remote MTA or NULL */
	const char *diag_type;	/* "smtp" (a remote reply) or "x-unix" */
	const char *diag;	/* Diagnostic-Code text (reply or reason) */
	const char *text;	/* human text for the notification part */
	const char *action;	/* NULL: by kind; "relayed" (RFC 3464 2.3.3)
				   for a success handed to a next hop */
};

struct bounce_req {
	enum bounce_kind kind;
	const char *myhostname;
	const char *queue_id;	/* of the original message */
	const char *new_id;	/* of the notification (Message-ID) */
	const char *sender;	/* the original sender: the notification's To: */
	/* A postmaster notice (notify_classes): To: this address instead of
	 * the sender, "Postmaster Copy" / "Postmaster Warning" subjects and
	 * Postfix's postmaster text. NULL: a notice to the sender. */
	const char *postmaster;
	const char *envid;	/* DSN ENVID or NULL */
	const char *ret;	/* "FULL", "HDRS" or NULL (= FULL for failures) */
	time_t      arrival, now;
	long long   delay_warning_time, maximal_queue_lifetime;	/* seconds */
	const struct bounce_rcpt *rcpt;
	size_t      nrcpt;
	const char *content;	/* original message, LF line ends */
	size_t      len;
	size_t      size_limit;	/* bounce_size_limit; 0 = no limit */
};

/*
 * Appends the whole notification (headers and body, LF line ends) to out.
 * Values from the original message or a remote server are made safe for
 * a header line (control characters replaced, length bounded). The MIME
 * boundary never occurs in the enclosed parts. Returns 0, or -1 when out
 * reached its limit.
 */
int bounce_format(const struct bounce_req *req, struct buf *out);

/*
 * Splits a delivery text as the SMTP client writes it ("host H[A] said:
 * REPLY (in reply to X command)") into the reply, for Diagnostic-Code:
 * smtp;. Copies at most size - 1 bytes into reply_r. true when text had
 * that form, false (reply_r untouched) otherwise.
 */
bool bounce_smtp_reply(const char *text, char *reply_r, size_t size);

/*
 * The host name of a relay as logged ("mx.example[192.0.2.1]:25"): copies
 * "mx.example" into host_r. false for "none", "" or a relay without a name.
 */
bool bounce_relay_host(const char *relay, char *host_r, size_t size);

#endif
