/*
 * smtp_checks.h - smtp_header_checks, smtp_mime_header_checks,
 * smtp_nested_header_checks and smtp_body_checks (Postfix's
 * restricted header_checks(5) for the SMTP client): applied to the copy
 * of a message that leaves through an smtp transport (the lmtp_*_checks
 * for lmtp ones), never to the queued message or local deliveries. Only the actions that do not
 * change the delivery's fate work there: WARN, INFO, IGNORE, REPLACE,
 * PREPEND, DUNNO, OK (others are logged as unsupported and skipped).
 * As Postfix's smtp(8), smtp_header_checks sees the message's non-MIME
 * headers, smtp_mime_header_checks MIME headers and part headers,
 * smtp_nested_header_checks attached messages' headers, and
 * smtp_body_checks the body lines of every part.
 * May block when a table does: call from a worker.
 */
#ifndef FACTEUR_SMTP_CHECKS_H
#define FACTEUR_SMTP_CHECKS_H
#include <stdbool.h>
#include <stddef.h>

#include "core/lib/buf.h"
#include "core/lib/errbuf.h"

struct settings;
struct smtp_checks;

/* NULL + err on a configuration error; empty parameters give an
 * inactive context (smtp_checks_apply then returns 0 at once). lmtp: the
 * lmtp_*_checks, for LMTP deliveries. */
struct smtp_checks *smtp_checks_new(const struct settings *s, bool lmtp,
				    struct errbuf *err);
void smtp_checks_free(struct smtp_checks **cp);
/* True when a and b (a service's -o settings and main.cf's) name
 * different smtp_*_checks tables. */
bool smtp_checks_differ(const struct settings *a, const struct settings *b,
			bool lmtp);

/*
 * Runs the checks on content (LF line ends) of queue file id, logging
 * under syslog_name (NULL: the default). 1: out (reset first) holds the
 * changed copy; 0: nothing changed (out empty); -1 + err: a table could
 * not answer (the SMTP deliveries are to be deferred).
 */
int smtp_checks_apply(const struct smtp_checks *c, const char *id,
		      const char *syslog_name, const char *content, size_t len,
		      struct buf *out, struct errbuf *err);

#endif
