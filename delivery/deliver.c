/*
 * deliver.c - local delivery of one message to one hosted mailbox.
 * Builds the Return-Path:/X-Original-To:/Delivered-To: prepend as Postfix's
 * virtual(8) does, refuses a Delivered-To: loop, writes the Maildir and
 * maps the outcome (errno) to sent / deferred / bounced with a DSN code.
 * Must not: log (the caller logs the status line once), bounce anything
 * that is not clearly permanent, or run on the event loop thread.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "delivery/deliver.h"
#include "delivery/maildir.h"

/* Header values come from the envelope: never let them break a line. */
static void
put_value(struct buf *b, const char *s)
{
	for (; *s; s++)
		buf_putc(b, (*s == '\r' || *s == '\n') ? ' ' : *s);
}

static bool
is_ws(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Does the header section (up to the first empty line) hold a
 * "Delivered-To: rcpt" line? Compared case-insensitively, as Postfix's
 * delivered_hdr does; folded continuation lines are not part of the name.
 */
static bool
delivered_to_seen(const char *msg, size_t len, const char *rcpt)
{
	static const char name[] = "delivered-to:";
	const size_t nlen = sizeof(name) - 1, rlen = strlen(rcpt);
	const char *p = msg, *end = msg + len, *eol, *v, *ve;

	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		if (eol == p || (eol == p + 1 && p[0] == '\r'))
			break;	/* end of the header section */
		if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0) {
			v = p + nlen;
			ve = eol;
			while (v < ve && is_ws(*v))
				v++;
			while (ve > v && (is_ws(ve[-1]) || ve[-1] == '\r'))
				ve--;
			if ((size_t)(ve - v) == rlen && strncasecmp(v, rcpt, rlen) == 0)
				return true;
		}
		p = eol + 1;
	}
	return false;
}

/* Postfix's mbox_dsn, plus 4.3.x for what is clearly the system's fault. */
const char *
deliver_errno_dsn(int e, enum deliver_status *st)
{
	*st = DELIVER_DEFER;
	switch (e) {
	case EAGAIN:
#if defined(EWOULDBLOCK) && EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
	case ESTALE:
		return "4.2.0";
	case ENOSPC:
	case EIO:
	case EROFS:
	case ENFILE:
	case EMFILE:
	case ENOMEM:
		return "4.3.0";
	case EINVAL:
	case ENAMETOOLONG:
		return "4.3.5";
	case EDQUOT:
	case EFBIG:
		*st = DELIVER_BOUNCE;
		return "5.2.2";
	default:
		return "4.2.0";
	}
}

enum deliver_status
deliver_maildir(const struct deliver_req *req, char dsn_r[8],
		struct buf *text_r)
{
	struct maildir_msg msg;
	struct errbuf err;
	struct buf pre;
	enum deliver_status st;
	const char *rcpt = req->rcpt ? req->rcpt : "";
	int e;

	buf_reset(text_r);
	if (req->maildir == NULL || req->content == NULL) {
		memcpy(dsn_r, "4.3.5", 6);
		buf_puts(text_r, "no maildir for this recipient");
		return DELIVER_DEFER;
	}
	if (rcpt[0] != '\0' && delivered_to_seen(req->content, req->len, rcpt)) {
		memcpy(dsn_r, "5.4.6", 6);
		buf_puts(text_r, "mail forwarding loop for ");
		put_value(text_r, rcpt);
		return DELIVER_BOUNCE;
	}
	buf_init(&pre, 0);
	buf_puts(&pre, "Return-Path: <");
	put_value(&pre, req->sender ? req->sender : "");
	buf_puts(&pre, ">\n");
	if (req->orig_rcpt) {
		buf_puts(&pre, "X-Original-To: ");
		put_value(&pre, req->orig_rcpt);
		buf_putc(&pre, '\n');
	}
	/* Postfix writes Delivered-To: in lower case (loop checks fold too). */
	buf_puts(&pre, "Delivered-To: ");
	{
		size_t at = pre.len;

		put_value(&pre, rcpt);
		for (size_t i = at; i < pre.len; i++)
			if (pre.data[i] >= 'A' && pre.data[i] <= 'Z')
				pre.data[i] = (char)(pre.data[i] - 'A' + 'a');
	}
	buf_putc(&pre, '\n');

	memset(&msg, 0, sizeof(msg));
	msg.prepend = pre.data;
	msg.prepend_len = pre.len;
	msg.content = req->content;
	msg.len = req->len;
	e = maildir_deliver(req->base, req->maildir, &msg, NULL, 0, &err);
	buf_free(&pre);
	if (e == 0) {
		memcpy(dsn_r, "2.0.0", 6);
		buf_puts(text_r, "delivered to maildir");
		return DELIVER_SENT;
	}
	memcpy(dsn_r, deliver_errno_dsn(e, &st), 6);
	buf_puts(text_r, errbuf_str(&err));
	return st;
}
