/*
 * smtpd_footer.h - smtpd_reject_footer: a template appended to a 4xx/5xx
 * SMTP reply as Postfix's smtp_reply_footer does. "\n" in the template is
 * a line break (the new line repeats the reply code and, when the reply
 * has one, its enhanced status code); a leading "\c" appends the first
 * piece to the reply's last line without a line break; $name and ${name}
 * are expanded by the caller's lookup (unknown names expand to nothing).
 * Lines are joined as RFC 5321 4.2.1 says: "CODE-" on all but the last.
 * Must not: do I/O, or change a reply that is not 4xx/5xx.
 */
#ifndef FACTEUR_SMTPD_FOOTER_H
#define FACTEUR_SMTPD_FOOTER_H
#include "core/lib/buf.h"

/* Returns the value of $name, or NULL when unknown. */
typedef const char *(*smtpd_footer_lookup)(const char *name, void *ctx);

/*
 * reply: one reply, lines separated by "\r\n", without the final CRLF.
 * Returns 1 when the footer was added, 0 when reply is not 4xx/5xx or
 * template is empty.
 */
int smtpd_footer_apply(struct buf *reply, const char *tmpl,
		       smtpd_footer_lookup lookup, void *ctx);

#endif
