/*
 * pickup_msg.c - the cleanup of a locally submitted message: Received:
 * on top, missing Date:/Message-ID:/From: added, Bcc: removed, -t
 * recipients collected from To:/Cc:/Bcc:.
 * Must not: do I/O, trust the submitted text (every value it copies into
 * a header it writes is stripped of control characters), or rewrite
 * anything in the body.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/lib/xmalloc.h"
#include "core/pickup_msg.h"

#define MSGID_MAX 250

void
pickup_msg_addresses(const char *v, size_t len, struct strlist *out)
{
	struct buf cur, angle;
	bool inq = false, inangle = false, has_angle = false;
	int depth = 0;

	buf_init(&cur, 0);
	buf_init(&angle, 0);
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? v[i] : ',';
		struct buf *t = inangle ? &angle : &cur;

		if (inq) {
			buf_putc(t, c);
			if (c == '\\' && i + 1 < len)
				buf_putc(t, v[++i]);
			else if (c == '"')
				inq = false;
			continue;
		}
		if (depth > 0) {	/* RFC 5322 3.2.2 comments nest */
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (c == '"') {
			inq = true;
			buf_putc(t, c);
		} else if (c == '(') {
			depth = 1;
		} else if (c == '<' && !inangle) {
			inangle = true;
			has_angle = true;
			buf_reset(&angle);
		} else if (c == '>' && inangle) {
			inangle = false;
		} else if (inangle) {
			if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
				buf_putc(&angle, c);
		} else if (c == ':') {
			buf_reset(&cur);	/* a group's display name */
		} else if (c == ',' || c == ';' || i == len) {
			const char *a = has_angle ? buf_cstr(&angle) : buf_cstr(&cur);
			const char *colon;

			/* <@a,@b:u@c>: the obsolete route is dropped */
			if (*a == '@' && (colon = strchr(a, ':')) != NULL)
				a = colon + 1;
			if (*a)
				strlist_add(out, a);
			buf_reset(&cur);
			buf_reset(&angle);
			has_angle = false;
		} else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
			buf_putc(&cur, c);
		}
	}
	buf_free(&cur);
	buf_free(&angle);
}

/* Text from the submitter that goes into a header we write. */
static void
put_clean(struct buf *out, const char *s)
{
	for (; *s; s++)
		buf_putc(out, (unsigned char)*s < 32 || *s == 127 ? ' ' : *s);
}

/* RFC 5322 display-name: atoms as they are, else a quoted string. */
static void
put_phrase(struct buf *out, const char *name)
{
	const char *p;

	for (p = name; *p; p++)
		if (strchr("()<>[]:;@\\,.\"", *p) != NULL)
			break;
	if (*p == '\0') {
		put_clean(out, name);
		return;
	}
	buf_putc(out, '"');
	for (p = name; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_putc(out, '\\');
		buf_putc(out, (unsigned char)*p < 32 || *p == 127 ? ' ' : *p);
	}
	buf_putc(out, '"');
}

struct fix_state {
	bool have_date, have_msgid, have_from;
	char *msgid;
};

/* One whole header field [p, p+n) (with its continuation lines). */
static void
field(const struct pickup_fix *f, struct fix_state *st, const char *p,
      size_t n, struct buf *out, struct strlist *rcpts_r)
{
	size_t nl = strcspn(p, ":");
	const char *v = p + nl + 1;
	size_t vl = n - nl - 1;

#define IS(name) (nl == sizeof(name) - 1 && strncasecmp(p, name, nl) == 0)
	if (f->extract && (IS("to") || IS("cc") || IS("bcc")))
		pickup_msg_addresses(v, vl, rcpts_r);
	if (IS("bcc"))
		return;		/* never shown to the recipients */
	if (IS("date"))
		st->have_date = true;
	else if (IS("from"))
		st->have_from = true;
	else if (IS("message-id") && !st->have_msgid) {
		size_t a = 0, b = vl;

		st->have_msgid = true;
		while (a < b && strchr(" \t\r\n", v[a]) != NULL)
			a++;
		while (b > a && strchr(" \t\r\n", v[b - 1]) != NULL)
			b--;
		st->msgid = xstrndup(v + a, b - a < MSGID_MAX ? b - a : MSGID_MAX);
		for (char *q = st->msgid; *q; q++)
			if ((unsigned char)*q < 32)
				*q = ' ';
	}
#undef IS
	buf_append(out, p, n);
	if (n == 0 || p[n - 1] != '\n')
		buf_putc(out, '\n');
}

static void
add_missing(const struct pickup_fix *f, struct fix_state *st, struct buf *out)
{
	char date[80];
	struct tm tm;

	if (!st->have_msgid) {
		st->msgid = xasprintf("<%s@%s>", f->id, f->myhostname);
		buf_printf(out, "Message-Id: %s\n", st->msgid);
	}
	if (!st->have_date) {
		localtime_r(&f->now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm);
		buf_printf(out, "Date: %s\n", date);
	}
	if (!st->have_from) {
		const char *addr = *f->sender ? f->sender : "MAILER-DAEMON";

		buf_puts(out, "From: ");
		if (f->fullname != NULL && *f->fullname) {
			put_phrase(out, f->fullname);
			buf_puts(out, " <");
			put_clean(out, addr);
			buf_puts(out, ">\n");
		} else {
			put_clean(out, addr);
			buf_putc(out, '\n');
		}
	}
}

void
pickup_msg_fix(const struct pickup_fix *f, const char *msg, size_t len,
	       struct buf *out, struct strlist *rcpts_r, char **msgid_r)
{
	struct fix_state st;
	const char *p = msg, *end = msg + len, *fstart = NULL;
	char date[80];
	struct tm tm;
	bool body = false;

	memset(&st, 0, sizeof(st));
	localtime_r(&f->now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm);
	buf_printf(out, "Received: by %s (%s, from userid %lu)\n\tid %s; %s\n",
		   f->myhostname, f->mail_name, f->uid, f->id, date);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *next = nl ? nl + 1 : end;
		size_t n = 0;

		if ((*p == ' ' || *p == '\t') && fstart != NULL) {
			p = next;	/* a continuation line */
			continue;
		}
		if (fstart != NULL) {
			field(f, &st, fstart, (size_t)(p - fstart), out, rcpts_r);
			fstart = NULL;
		}
		/* RFC 5322 2.2: field-name is printable ASCII but ':' */
		while (p + n < next && (unsigned char)p[n] > 32 &&
		       (unsigned char)p[n] < 127 && p[n] != ':')
			n++;
		if (n > 0 && p + n < next && p[n] == ':') {
			fstart = p;
			p = next;
			continue;
		}
		/* The header section ends here: an empty line, or a body
		 * that starts without one (it gets one, as cleanup does). */
		add_missing(f, &st, out);
		body = true;
		if (*p != '\n')
			buf_putc(out, '\n');
		buf_append(out, p, (size_t)(end - p));
		p = end;
		break;
	}
	if (fstart != NULL)
		field(f, &st, fstart, (size_t)(end - fstart), out, rcpts_r);
	if (!body)	/* headers only: nothing ended the section */
		add_missing(f, &st, out);
	else if (out->len > 0 && buf_cstr(out)[out->len - 1] != '\n')
		buf_putc(out, '\n');
	*msgid_r = st.msgid;
}
