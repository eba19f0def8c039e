/*
 * bounce.c - builds RFC 3464 delivery status notifications: a text part in
 * Postfix's words, a message/delivery-status part (RFC 3464 section 2) and
 * the original message (message/rfc822, cut at bounce_size_limit) or its
 * headers (text/rfc822-headers), as Postfix's bounce(8) does; postmaster
 * copies (notify_classes) with Postfix's postmaster subjects and text.
 * Must not: do I/O, log, read the clock, or copy untrusted text into a
 * header unsanitised (remote replies and the original envelope are input).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/lib/xmalloc.h"
#include "delivery/bounce.h"

#define FIELD_MAX 2000		/* one sanitised value in a report */
#define WRAP_LEN  79		/* text part lines, as Postfix wraps them */
#define WRAP_IND  4

/* Appends s with control and non-ASCII bytes masked, at most max bytes. */
static void
put_safe(struct buf *b, const char *s, size_t max)
{
	size_t n;

	if (s == NULL)
		return;
	for (n = 0; s[n] && n < max; n++) {
		unsigned char c = (unsigned char)s[n];

		buf_putc(b, c < 0x20 || c >= 0x7f ? '?' : c);
	}
	if (s[n])
		buf_puts(b, "...");
}

/* RFC 5322 3.3 date in local time, English names whatever the locale. */
static void
put_date(struct buf *b, time_t t)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
					     "Fri", "Sat" };
	static const char *const mons[] = { "Jan", "Feb", "Mar", "Apr", "May",
					     "Jun", "Jul", "Aug", "Sep", "Oct",
					     "Nov", "Dec" };
	struct tm tm, gm;
	long off;
	char sign = '+';

	if (localtime_r(&t, &tm) == NULL || gmtime_r(&t, &gm) == NULL) {
		memset(&tm, 0, sizeof(tm));
		tm.tm_mday = 1;
		tm.tm_year = 70;
		gm = tm;
	}
	/* The offset from the two broken-down times (tm_gmtoff is not C11). */
	off = (long)(tm.tm_hour - gm.tm_hour) * 60 + (tm.tm_min - gm.tm_min);
	if (tm.tm_year != gm.tm_year)
		off += tm.tm_year > gm.tm_year ? 1440 : -1440;
	else if (tm.tm_yday != gm.tm_yday)
		off += tm.tm_yday > gm.tm_yday ? 1440 : -1440;
	if (off < 0) {
		sign = '-';
		off = -off;
	}
	buf_printf(b, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
		   days[(unsigned)tm.tm_wday % 7], tm.tm_mday,
		   mons[(unsigned)tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour,
		   tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
}

/* "4 hour(s)": the largest unit that divides the time exactly. */
static void
put_duration(struct buf *b, long long s)
{
	if (s > 0 && s % 86400 == 0)
		buf_printf(b, "%lld day(s)", s / 86400);
	else if (s > 0 && s % 3600 == 0)
		buf_printf(b, "%lld hour(s)", s / 3600);
	else if (s > 0 && s % 60 == 0)
		buf_printf(b, "%lld minute(s)", s / 60);
	else
		buf_printf(b, "%lld second(s)", s > 0 ? s : 0);
}

/* Appends line (no "\n") wrapped at WRAP_LEN, continuations indented. */
static void
put_wrapped(struct buf *b, const char *line)
{
	size_t len = strlen(line), pos = 0, width = WRAP_LEN;
	bool first = true;

	while (pos < len) {
		size_t take = len - pos, cut;

		if (!first)
			buf_puts(b, "    ");
		if (take > width) {
			/* the last space within the width, else the first after */
			for (cut = width; cut > 0 && line[pos + cut] != ' '; cut--)
				;
			if (cut == 0)
				for (cut = width; pos + cut < len
				     && line[pos + cut] != ' '; cut++)
					;
			take = cut;
		}
		buf_append(b, line + pos, take);
		buf_putc(b, '\n');
		pos += take;
		while (pos < len && line[pos] == ' ')
			pos++;
		first = false;
		width = WRAP_LEN - WRAP_IND;
	}
}

static bool
rcpt_orig_differs(const struct bounce_rcpt *r)
{
	return r->orig && r->orig[0] && r->addr
	       && strcmp(r->orig, r->addr) != 0;
}

static void
text_part(const struct bounce_req *req, struct buf *b)
{
	struct buf line;
	size_t i;

	buf_puts(b, "This is the mail system at host ");
	put_safe(b, req->myhostname, 255);
	buf_puts(b, ".\n\n");
	switch (req->postmaster ? -1 : (int)req->kind) {
	case -1:	/* Postfix's postmaster copy text */
		buf_puts(b, "Enclosed is the mail delivery report that you requested.\n");
		break;
	case BOUNCE_FAILED:
		buf_puts(b, "I'm sorry to have to inform you that your message could not\n"
			 "be delivered to one or more recipients. It's attached below.\n");
		break;
	case BOUNCE_DELAYED:
		buf_puts(b, "####################################################################\n"
			 "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
			 "####################################################################\n\n"
			 "Your message could not be delivered for ");
		put_duration(b, req->delay_warning_time);
		buf_puts(b, ".\n");
		if (req->maximal_queue_lifetime > 0) {
			buf_puts(b, "It will be retried until it is ");
			put_duration(b, req->maximal_queue_lifetime);
			buf_puts(b, " old.\n");
		}
		break;
	case BOUNCE_DELIVERED:
		buf_puts(b, "Your message was successfully delivered to the destination(s)\n"
			 "listed below. If the message was delivered to mailbox you will\n"
			 "receive no further notifications. Otherwise you may still receive\n"
			 "notifications of mail delivery errors from other systems.\n");
		break;
	}
	if (req->kind != BOUNCE_DELIVERED && !req->postmaster)
		buf_puts(b, "\nFor further assistance, please send mail to postmaster.\n\n"
			 "If you do so, please include this problem report. You can\n"
			 "delete your own text from the attached returned message.\n");
	buf_puts(b, "\n                   The mail system\n");
	buf_init(&line, 0);
	for (i = 0; i < req->nrcpt; i++) {
		const struct bounce_rcpt *r = &req->rcpt[i];

		buf_reset(&line);
		buf_putc(&line, '<');
		put_safe(&line, r->addr, FIELD_MAX);
		buf_putc(&line, '>');
		if (rcpt_orig_differs(r)) {
			buf_puts(&line, " (expanded from <");
			put_safe(&line, r->orig, FIELD_MAX);
			buf_puts(&line, ">)");
		}
		buf_puts(&line, ": ");
		put_safe(&line, r->text ? r->text : r->diag, FIELD_MAX);
		buf_putc(b, '\n');
		put_wrapped(b, buf_cstr(&line));
	}
	buf_free(&line);
}

static void
dsn_part(const struct bounce_req *req, struct buf *b)
{
	static const char *const actions[] = {
		[BOUNCE_FAILED] = "failed", [BOUNCE_DELAYED] = "delayed",
		[BOUNCE_DELIVERED] = "delivered",
	};
	size_t i;

	buf_puts(b, "Reporting-MTA: dns; ");
	put_safe(b, req->myhostname, 255);
	buf_puts(b, "\nX-Postfix-Queue-ID: ");
	put_safe(b, req->queue_id, 64);
	buf_puts(b, "\nX-Postfix-Sender: rfc822; ");
	put_safe(b, req->sender, FIELD_MAX);
	buf_putc(b, '\n');
	if (req->envid && req->envid[0]) {
		buf_puts(b, "Original-Envelope-Id: ");
		put_safe(b, req->envid, 100);
		buf_putc(b, '\n');
	}
	if (req->arrival > 0) {
		buf_puts(b, "Arrival-Date: ");
		put_date(b, req->arrival);
		buf_putc(b, '\n');
	}
	for (i = 0; i < req->nrcpt; i++) {
		const struct bounce_rcpt *r = &req->rcpt[i];
		const char *semi = r->orcpt ? strchr(r->orcpt, ';') : NULL;

		buf_puts(b, "\nFinal-Recipient: rfc822; ");
		put_safe(b, r->addr, FIELD_MAX);
		buf_putc(b, '\n');
		/* RFC 3464 2.3.1: from ORCPT only, never guessed. */
		if (semi && semi > r->orcpt && semi[1]) {
			const char *a = semi + 1;

			while (*a == ' ')
				a++;
			buf_puts(b, "Original-Recipient: ");
			for (const char *t = r->orcpt; t < semi && t - r->orcpt < 32; t++)
				buf_putc(b, (unsigned char)*t <= ' '
					 || (unsigned char)*t >= 0x7f ? '?' : *t);
			buf_puts(b, "; ");
			put_safe(b, a, FIELD_MAX);
			buf_putc(b, '\n');
		}
		buf_printf(b, "Action: %s\nStatus: ",
			   req->kind == BOUNCE_DELIVERED && r->action
			   && strcmp(r->action, "relayed") == 0
			   ? "relayed" : actions[req->kind]);
		put_safe(b, r->status && r->status[0] ? r->status
			 : req->kind == BOUNCE_FAILED ? "5.0.0"
			 : req->kind == BOUNCE_DELAYED ? "4.0.0" : "2.0.0", 16);
		buf_putc(b, '\n');
		if (r->remote_mta && r->remote_mta[0]) {
			buf_puts(b, "Remote-MTA: dns; ");
			put_safe(b, r->remote_mta, 255);
			buf_putc(b, '\n');
		}
		if (r->diag && r->diag[0]) {
			buf_puts(b, "Diagnostic-Code: ");
			put_safe(b, r->diag_type && r->diag_type[0] ? r->diag_type
				 : "x-unix", 32);
			buf_puts(b, "; ");
			put_safe(b, r->diag, FIELD_MAX);
			buf_putc(b, '\n');
		}
		if (req->kind == BOUNCE_DELAYED && req->maximal_queue_lifetime > 0) {
			buf_puts(b, "Will-Retry-Until: ");
			put_date(b, req->arrival + (time_t)req->maximal_queue_lifetime);
			buf_putc(b, '\n');
		}
	}
}

/* A header line or a continuation: "name:" with a printable name, or WSP. */
static bool
is_header_line(const char *p, size_t n)
{
	size_t i;

	if (n > 0 && (p[0] == ' ' || p[0] == '\t'))
		return true;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == ':')
			return i > 0;
		if (c <= ' ' || c >= 0x7f)
			return false;
	}
	return false;
}

/*
 * The original: headers only (up to the first line that is not a header),
 * or whole lines while fewer than limit bytes were copied (0: no limit).
 * Ends with "\n". 8bit_r: a byte above 0x7f was copied.
 */
static void
original_part(const struct bounce_req *req, bool headers, struct buf *b,
	      bool *eight_r)
{
	const char *p = req->content ? req->content : "";
	const char *end = p + req->len;
	size_t copied = 0;

	*eight_r = false;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p), k;

		if (headers && !is_header_line(p, n))
			break;
		if (!headers && req->size_limit > 0 && copied >= req->size_limit)
			break;
		for (k = 0; k < n && !*eight_r; k++)
			if ((unsigned char)p[k] >= 0x80)
				*eight_r = true;
		buf_append(b, p, n);
		buf_putc(b, '\n');
		copied += n + 1;
		p += n + (nl ? 1 : 0);
	}
}

static bool
contains(const struct buf *b, const char *s)
{
	size_t n = strlen(s), i;

	if (b->len < n)
		return false;
	for (i = 0; i + n <= b->len; i++)
		if (b->data[i] == s[0] && memcmp(b->data + i, s, n) == 0)
			return true;
	return false;
}

int
bounce_format(const struct bounce_req *req, struct buf *out)
{
	static const char *const subjects[] = {
		[BOUNCE_FAILED] = "Undelivered Mail Returned to Sender",
		[BOUNCE_DELAYED] = "Delayed Mail (still being retried)",
		[BOUNCE_DELIVERED] = "Successful Mail Delivery Report",
	};
	static const char *const pm_subjects[] = {
		[BOUNCE_FAILED] = "Postmaster Copy: Undelivered Mail",
		[BOUNCE_DELAYED] = "Postmaster Warning: Delayed Mail",
		[BOUNCE_DELIVERED] = "Postmaster Copy: Delivered Mail",
	};
	struct buf text, dsn, orig, boundary;
	struct tm gm;
	bool headers, eight;
	unsigned tries;
	int rc;

	headers = req->kind == BOUNCE_FAILED
		  ? (req->ret && strcmp(req->ret, "HDRS") == 0)
		  : req->kind == BOUNCE_DELAYED
		  || !(req->ret && strcmp(req->ret, "FULL") == 0);
	buf_init(&text, 0);
	buf_init(&dsn, 0);
	buf_init(&orig, 0);
	buf_init(&boundary, 0);
	text_part(req, &text);
	dsn_part(req, &dsn);
	original_part(req, headers, &orig, &eight);
	/* RFC 2046 5.1.1: the boundary must not occur in an enclosed part. */
	for (tries = 0;; tries++) {
		buf_reset(&boundary);
		buf_puts(&boundary, "--");
		put_safe(&boundary, req->queue_id, 64);
		buf_printf(&boundary, ".%lld/", (long long)req->now);
		put_safe(&boundary, req->myhostname, 255);
		if (tries > 0)
			buf_printf(&boundary, "/%u", tries);
		if (!contains(&orig, buf_cstr(&boundary))
		    && !contains(&text, buf_cstr(&boundary))
		    && !contains(&dsn, buf_cstr(&boundary)))
			break;
	}
	if (gmtime_r(&req->now, &gm) == NULL)
		memset(&gm, 0, sizeof(gm));

	buf_puts(out, "From: MAILER-DAEMON@");
	put_safe(out, req->myhostname, 255);
	buf_puts(out, " (Mail Delivery System)\nSubject: ");
	buf_puts(out, (req->postmaster ? pm_subjects : subjects)[req->kind]);
	buf_puts(out, "\nTo: ");
	put_safe(out, req->postmaster ? req->postmaster : req->sender, FIELD_MAX);
	buf_puts(out, "\nAuto-Submitted: auto-replied\nDate: ");
	put_date(out, req->now);
	buf_printf(out, "\nMessage-Id: <%04d%02d%02d%02d%02d%02d.",
		   gm.tm_year + 1900, gm.tm_mon + 1, gm.tm_mday, gm.tm_hour,
		   gm.tm_min, gm.tm_sec);
	put_safe(out, req->new_id ? req->new_id : req->queue_id, 64);
	buf_putc(out, '@');
	put_safe(out, req->myhostname, 255);
	buf_puts(out, ">\nMIME-Version: 1.0\n"
		 "Content-Type: multipart/report; report-type=delivery-status;\n"
		 "\tboundary=\"");
	buf_append(out, boundary.data + 2, boundary.len - 2);
	buf_puts(out, "\"\n");
	if (eight)
		buf_puts(out, "Content-Transfer-Encoding: 8bit\n");
	buf_puts(out, "\nThis is a MIME-encapsulated message.\n\n");

	buf_printf(out, "%s\nContent-Description: Notification\n"
		   "Content-Type: text/plain; charset=us-ascii\n\n",
		   buf_cstr(&boundary));
	buf_append(out, text.data, text.len);
	buf_printf(out, "\n%s\nContent-Description: Delivery report\n"
		   "Content-Type: message/delivery-status\n\n", buf_cstr(&boundary));
	buf_append(out, dsn.data, dsn.len);
	buf_printf(out, "\n%s\nContent-Description: %s%s\nContent-Type: %s\n",
		   buf_cstr(&boundary),
		   req->kind == BOUNCE_DELIVERED ? "Delivered " : "Undelivered ",
		   headers ? "Message Headers" : "Message",
		   headers ? "text/rfc822-headers" : "message/rfc822");
	if (eight)
		buf_puts(out, "Content-Transfer-Encoding: 8bit\n");
	buf_putc(out, '\n');
	buf_append(out, orig.data, orig.len);
	buf_printf(out, "\n%s--\n", buf_cstr(&boundary));
	rc = out->max != 0 && out->len >= out->max ? -1 : 0;
	buf_free(&text);
	buf_free(&dsn);
	buf_free(&orig);
	buf_free(&boundary);
	return rc;
}

bool
bounce_smtp_reply(const char *text, char *reply_r, size_t size)
{
	const char *said, *end, *tail;
	size_t n;

	if (text == NULL || size == 0 || strncmp(text, "host ", 5) != 0
	    || (said = strstr(text, " said: ")) == NULL)
		return false;
	said += 7;
	end = said + strlen(said);
	/* the last " (in reply to ...)" belongs to the client, not the reply */
	tail = NULL;
	for (const char *p = said; (p = strstr(p, " (in reply to ")) != NULL; p++)
		tail = p;
	if (tail && end > tail && end[-1] == ')')
		end = tail;
	if (end <= said)
		return false;
	n = (size_t)(end - said);
	if (n >= size)
		n = size - 1;
	memcpy(reply_r, said, n);
	reply_r[n] = '\0';
	return true;
}

bool
bounce_relay_host(const char *relay, char *host_r, size_t size)
{
	size_t n;

	if (relay == NULL || size == 0 || relay[0] == '\0'
	    || strcmp(relay, "none") == 0)
		return false;
	n = strcspn(relay, "[");
	if (n == 0)
		return false;
	if (n >= size)
		n = size - 1;
	memcpy(host_r, relay, n);
	host_r[n] = '\0';
	return true;
}
