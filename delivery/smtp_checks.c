/*
 * smtp_checks.c - the SMTP client's header and body checks (see
 * smtp_checks.h) on core/cleanup_headers.c's engine in its restricted
 * "smtp" mode (logged "ID: replace: header NAME: ...: TEXT" by smtp).
 * Must not: change the queued message, or act on REJECT/DISCARD/HOLD/
 * REDIRECT/FILTER (the engine's smtp mode refuses them).
 */
#include <stdlib.h>
#include <string.h>

#include "core/cleanup_headers.h"
#include "core/lib/xmalloc.h"
#include "core/params.h"
#include "delivery/smtp_checks.h"

struct smtp_checks {
	struct cleanup_checks cc;
};

struct smtp_checks *
smtp_checks_new(const struct settings *s, bool lmtp, struct errbuf *err)
{
	struct smtp_checks *c = xcalloc(1, sizeof(*c));

	if ((lmtp ? cleanup_checks_open_lmtp(&c->cc, s, err)
		  : cleanup_checks_open_smtp(&c->cc, s, err)) < 0) {
		free(c);
		return NULL;
	}
	return c;
}

void
smtp_checks_free(struct smtp_checks **cp)
{
	if (*cp == NULL)
		return;
	cleanup_checks_free(&(*cp)->cc);
	free(*cp);
	*cp = NULL;
}

static bool
differ(const char *x, const char *y)
{
	return strcmp(x ? x : "", y ? y : "") != 0;
}

bool
smtp_checks_differ(const struct settings *a, const struct settings *b,
		   bool lmtp)
{
	if (lmtp)
		return differ(a->lmtp_header_checks, b->lmtp_header_checks) ||
		       differ(a->lmtp_mime_header_checks,
			      b->lmtp_mime_header_checks) ||
		       differ(a->lmtp_nested_header_checks,
			      b->lmtp_nested_header_checks) ||
		       differ(a->lmtp_body_checks, b->lmtp_body_checks);
	return differ(a->smtp_header_checks, b->smtp_header_checks) ||
	       differ(a->smtp_mime_header_checks, b->smtp_mime_header_checks) ||
	       differ(a->smtp_nested_header_checks,
		      b->smtp_nested_header_checks) ||
	       differ(a->smtp_body_checks, b->smtp_body_checks);
}

int
smtp_checks_apply(const struct smtp_checks *c, const char *id,
		  const char *syslog_name, const char *content, size_t len,
		  struct buf *out, struct errbuf *err)
{
	struct cleanup_log_ctx lc = { .queue_id = id,
				      .syslog_name = syslog_name };
	struct cleanup_result r;
	int rc = 0;

	buf_reset(out);
	if (c == NULL || cleanup_checks_empty(&c->cc))
		return 0;
	cleanup_checks_run(&c->cc, content, len, &lc, out, &r);
	if (r.reject != NULL) {
		/* only a lookup failure gets here in smtp mode */
		errbuf_set(err, "%s_*_checks lookup error",
			   c->cc.lmtp ? "lmtp" : "smtp");
		rc = -1;
	} else if (r.modified) {
		rc = 1;
	}
	cleanup_result_free(&r);
	if (rc != 1)
		buf_reset(out);
	return rc;
}
