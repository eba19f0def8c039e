/*
 * cleanup_headers.h - header_checks and body_checks (Postfix
 * header_checks(5)) applied to a received message before it is kept.
 * Lookups may block (any table type): run only on a worker thread.
 */
#ifndef FACTEUR_CLEANUP_HEADERS_H
#define FACTEUR_CLEANUP_HEADERS_H
#include <stdbool.h>
#include <stddef.h>

#include "core/lib/buf.h"
#include "core/lib/errbuf.h"

struct settings;
struct table_list;

struct cleanup_checks {
	struct table_list *header, *body;	/* NULL: none configured */
	/* mime_header_checks, nested_header_checks: NULL none; may be the
	 * same object as header (then not freed twice) */
	struct table_list *mime, *nested;
	bool               mime_on;	/* walk the MIME structure (else every
					 * header of the message is a primary
					 * one and the rest is body) */
	bool               lmtp;	/* with smtp: lmtp_*_checks */
	bool               smtp;	/* smtp_*_checks: only WARN INFO IGNORE
					 * REPLACE PREPEND DUNNO OK; logged as
					 * Postfix's smtp(8) logs them; MIME
					 * headers and nested ones unchecked */
	unsigned           mime_check;	/* MIME_WALK_ERR_* of the strict_*
					 * parameters: 550 5.6.0 */
	bool               mime_nesting;	/* too deep MIME is refused too */
	long long          nesting_limit;	/* mime_nesting_limit (0: 100) */
	long long          boundary_limit;	/* mime_boundary_length_limit */
	long long          body_limit;		/* body_checks_size_limit */
	long long          header_limit;	/* header_size_limit */
};

/* Opens header_checks, mime_header_checks, nested_header_checks and
 * body_checks (regexp:, pcre:, any table type) and reads
 * disable_mime_input_processing; -1 + err ("header_checks: ...") on a
 * configuration error. */
int cleanup_checks_open(struct cleanup_checks *c, const struct settings *s,
			struct errbuf *err);
/* smtp_header_checks, smtp_mime_header_checks, smtp_nested_header_checks
 * and smtp_body_checks, for the SMTP client. */
int cleanup_checks_open_smtp(struct cleanup_checks *c, const struct settings *s,
			     struct errbuf *err);
/* lmtp_header_checks, lmtp_mime_header_checks, lmtp_nested_header_checks
 * and lmtp_body_checks, for the LMTP client (logged by "lmtp"). */
int cleanup_checks_open_lmtp(struct cleanup_checks *c, const struct settings *s,
			     struct errbuf *err);
void cleanup_checks_free(struct cleanup_checks *c);
bool cleanup_checks_empty(const struct cleanup_checks *c);

/* What the log lines name (Postfix cleanup's "from host[addr]; from=<s>
 * to=<r> proto=ESMTP helo=<h>"). NULL fields are left out. */
struct cleanup_log_ctx {
	const char *queue_id;
	const char *client_name, *client_addr;	/* NULL name: "local" */
	const char *sender, *rcpt, *proto, *helo;
	const char *syslog_name;	/* smtp checks: the transport's; NULL default */
};

struct cleanup_result {
	char *reject;		/* owned: full reply ("550 5.7.1 text") or NULL */
	bool  discard, hold;
	char *redirect;		/* owned: user@domain or NULL */
	char *filter;		/* owned: FILTER transport:destination or NULL */
	bool  modified;		/* out holds the new content */
};

void cleanup_result_free(struct cleanup_result *r);

/*
 * A MIME error (nesting deeper than 100 levels when header or strict
 * checks are configured; strict_7bit_headers, strict_8bitmime_body,
 * strict_mime_encoding_domain) gives r->reject = "550 5.6.0 <Postfix's
 * text>", logged as Postfix's cleanup ("reject: mime-error ...").
 * Applies the checks to content (headers, an empty line, the body; LF line
 * ends), walking its MIME structure (core/mime_walk.h) when mime_on:
 * primary non-MIME headers go through header_checks, MIME headers and the
 * headers of multipart parts through mime_header_checks, the other headers
 * of attached messages through nested_header_checks, every other line
 * (part bodies, boundaries) through body_checks. The first matching
 * action per header or body line: REJECT [text],
 * DISCARD [text], WARN [text], INFO [text], HOLD [text], IGNORE, REPLACE
 * text, PREPEND text, REDIRECT user@domain, FILTER transport:destination
 * (the last one wins; content_filter for this message), DUNNO, OK. Each action is
 * logged as Postfix's cleanup logs it. After REJECT or DISCARD nothing more
 * is checked. A table lookup failure gives r->reject = a 451 reply (never
 * 5xx). When IGNORE/REPLACE/PREPEND changed the message, out (reset first)
 * holds the new content and r->modified is set.
 */
void cleanup_checks_run(const struct cleanup_checks *c, const char *content,
			size_t len, const struct cleanup_log_ctx *lc,
			struct buf *out, struct cleanup_result *r);

#endif
