/*
 * smtpd_notify.c - notify_classes for the SMTP server (see smtpd_notify.h):
 * classifies error replies as Postfix's smtpd sets its error classes,
 * keeps a bounded transcript per session (allocated at the first client
 * line or error reply, grown by doubling up to SMTPD_NOTIFY_MAX, oldest
 * lines dropped), and at the session's end builds the postmaster notice
 * on the loop, resolves its recipient and writes it to the queue on a
 * worker, then hands it to the queue manager.
 * Must not: block the loop, record AUTH data, keep a transcript when no
 * smtpd class is enabled, or let the session go while the job holds it.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "core/addr.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/qmgr.h"
#include "core/queue.h"
#include "core/resolve.h"
#include "core/smtpd_listener.h"
#include "core/smtpd_notify.h"
#include "core/smtpd_session.h"
#include "core/worker.h"

#define SVC "smtpd"
#define WRAP_LEN 78	/* Postfix's line_wrap() in smtpd_chat_notify */
#define WRAP_IND 4

struct smtpd_notify {
	unsigned mask;		/* enabled smtpd classes */
	unsigned errors;	/* classes seen in this session */
	unsigned dropped;	/* lines pushed out of the buffer */
	bool     sent;		/* the notice job ran (one per session) */
	const char *reason;	/* Postfix's "Session aborted, reason:";
				   "" after another 421 */
	char    *t;		/* "In:  ...\nOut: ...\n" */
	size_t   len, cap;
};

static const struct { const char *name; unsigned bit; } class_names[] = {
	{ "bounce", SMTPD_NOTE_BOUNCE }, { "resource", SMTPD_NOTE_RESOURCE },
	{ "software", SMTPD_NOTE_SOFTWARE }, { "policy", SMTPD_NOTE_POLICY },
	{ "protocol", SMTPD_NOTE_PROTOCOL }, { "data", SMTPD_NOTE_DATA },
};
#define NCLASS (sizeof(class_names) / sizeof(class_names[0]))

unsigned
smtpd_notify_mask(const char *v)
{
	unsigned r = 0;

	while (v != NULL && *v) {
		size_t n, i;

		v += strspn(v, ", \t\r\n");
		n = strcspn(v, ", \t\r\n");
		if (n == 0)
			break;
		for (i = 0; i < NCLASS; i++)
			if (strlen(class_names[i].name) == n
			    && strncasecmp(class_names[i].name, v, n) == 0)
				r |= class_names[i].bit;
		v += n;
	}
	return r;
}

void
smtpd_notify_names(unsigned bits, char *out, size_t size)
{
	size_t used = 0;

	if (size == 0)
		return;
	out[0] = '\0';
	for (size_t i = 0; i < NCLASS; i++) {
		int k;

		if (!(bits & class_names[i].bit))
			continue;
		k = snprintf(out + used, size - used, "%s%s", used ? ", " : "",
			     class_names[i].name);
		if (k < 0 || (size_t)k >= size - used)
			return;
		used += (size_t)k;
	}
}

static bool
has(const char *s, const char *needle)
{
	return strcasestr(s, needle) != NULL;
}

/*
 * Postfix's classes: syntax and sequence errors are "protocol",
 * restriction rejects "policy", unknown users and too big messages
 * "bounce", a failed queue write or a full disk "resource", a
 * configuration or internal error "software", a table that cannot answer
 * "data". Failed AUTH, STARTTLS required, time-outs and shutdown are none.
 */
unsigned
smtpd_notify_classify(const char *r)
{
	int code;
	unsigned cls = 0, subj = 0, det = 0;
	const char *p;

	if (r == NULL || (r[0] != '4' && r[0] != '5') || !isdigit((unsigned char)r[1])
	    || !isdigit((unsigned char)r[2]))
		return 0;
	code = (r[0] - '0') * 100 + (r[1] - '0') * 10 + (r[2] - '0');
	p = r + 3;
	if (*p == ' ' || *p == '-')
		p++;
	/* the enhanced status code, when there is one (RFC 3463) */
	if ((p[0] == '4' || p[0] == '5') && p[1] == '.') {
		if (sscanf(p + 2, "%u.%u", &subj, &det) != 2)
			subj = det = 0;
		cls = 1;
	}
	if (has(r, "too many errors"))
		return SMTPD_NOTE_PROTOCOL;
	if ((cls && subj == 3 && det == 5) || has(r, "internal error")
	    || has(r, "local problem") || has(r, "configuration error")
	    || has(r, "configuration problem"))
		return SMTPD_NOTE_SOFTWARE;
	if (has(r, "queue file write error") || (cls && subj == 3 && det == 1)
	    || has(r, "insufficient system storage"))
		return SMTPD_NOTE_RESOURCE;
	if (has(r, "lookup failure") || has(r, "temporary failure looking up"))
		return SMTPD_NOTE_DATA;
	if ((code == 421 && cls && ((subj == 3 && det == 2)
				    || (subj == 4 && det == 2)))
	    || code == 530 || code == 535 || code == 538
	    || has(r, "authentication failure")
	    || (code == 503 && has(r, "access denied")))
		return 0;
	if (cls && ((subj == 1 && det == 1) || (subj == 3 && det == 4)
		    || (subj == 4 && det == 6)))
		return SMTPD_NOTE_BOUNCE;
	if (has(r, "rejected") || has(r, "denied")
	    || (cls && subj == 5 && det == 3))
		return SMTPD_NOTE_POLICY;
	if ((cls && (subj == 5 || subj == 6 || (subj == 1 && (det == 3
							      || det == 7))))
	    || (code >= 500 && code <= 504) || code == 555)
		return SMTPD_NOTE_PROTOCOL;
	return SMTPD_NOTE_POLICY;
}

/* ---- the transcript ---- */

struct smtpd_notify *
smtpd_notify_new(unsigned mask)
{
	struct smtpd_notify *n = xcalloc(1, sizeof(*n));

	n->mask = mask;
	return n;
}

void
smtpd_notify_destroy(struct smtpd_notify **np)
{
	if (*np == NULL)
		return;
	free((*np)->t);
	free(*np);
	*np = NULL;
}

void
smtpd_notify_add(struct smtpd_notify *n, const char *dir, const char *text,
		 size_t len)
{
	size_t dlen = strlen(dir), need, i;
	char *w;

	if (len > SMTPD_NOTIFY_LINE)
		len = SMTPD_NOTIFY_LINE;
	need = dlen + len + 1;
	/* room: drop whole lines from the front */
	while (n->len > 0 && n->len + need > SMTPD_NOTIFY_MAX) {
		char *nl = memchr(n->t, '\n', n->len);
		size_t cut = nl ? (size_t)(nl - n->t) + 1 : n->len;

		memmove(n->t, n->t + cut, n->len - cut);
		n->len -= cut;
		n->dropped++;
	}
	if (n->len + need + 1 > n->cap) {
		size_t cap = n->cap ? n->cap : 256;

		while (cap < n->len + need + 1)
			cap *= 2;
		if (cap > SMTPD_NOTIFY_MAX + 1)
			cap = SMTPD_NOTIFY_MAX + 1;
		n->t = xrealloc(n->t, cap);
		n->cap = cap;
	}
	w = n->t + n->len;
	memcpy(w, dir, dlen);
	w += dlen;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		*w++ = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	*w++ = '\n';
	*w = '\0';
	n->len += need;
}

const char *
smtpd_notify_text(const struct smtpd_notify *n, size_t *len_r,
		  unsigned *dropped_r)
{
	if (len_r)
		*len_r = n->len;
	if (dropped_r)
		*dropped_r = n->dropped;
	return n->t ? n->t : "";
}

void
smtpd_notify_note(struct smtpd_notify *n, unsigned cls)
{
	n->errors |= cls;
}

unsigned
smtpd_notify_due(const struct smtpd_notify *n)
{
	return n->sent ? 0 : n->errors & n->mask;
}

/* ---- the notice ---- */

static void
put_date(struct buf *b, time_t t)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
					     "Fri", "Sat" };
	static const char *const mons[] = { "Jan", "Feb", "Mar", "Apr", "May",
					     "Jun", "Jul", "Aug", "Sep", "Oct",
					     "Nov", "Dec" };
	struct tm tm;
	char z[8];

	if (localtime_r(&t, &tm) == NULL) {
		memset(&tm, 0, sizeof(tm));
		tm.tm_mday = 1;
		tm.tm_year = 70;
	}
	if (strftime(z, sizeof(z), "%z", &tm) == 0)
		snprintf(z, sizeof(z), "+0000");
	buf_printf(b, "%s, %d %s %d %02d:%02d:%02d %s",
		   days[(unsigned)tm.tm_wday % 7], tm.tm_mday,
		   mons[(unsigned)tm.tm_mon % 12], tm.tm_year + 1900,
		   tm.tm_hour, tm.tm_min, tm.tm_sec, z);
}

/* One transcript line, wrapped as Postfix's line_wrap(78, 4); each output
 * line starts with a space (the text came from the network). */
static void
put_wrapped(struct buf *b, const char *p, size_t n)
{
	size_t width = WRAP_LEN, indent = 0;

	while (n > 0) {
		size_t take = n;

		if (n > width) {
			take = width;
			while (take > 0 && p[take] != ' ')
				take--;
			if (take == 0)
				take = width;
		}
		buf_printf(b, " %*s%.*s\n", (int)indent, "", (int)take, p);
		p += take;
		n -= take;
		while (n > 0 && *p == ' ') {
			p++;
			n--;
		}
		indent = WRAP_IND;
		width = WRAP_LEN - WRAP_IND;
	}
}

void
smtpd_notify_format(const struct smtpd_notice_info *i, struct buf *out)
{
	const char *p = i->transcript ? i->transcript : "";

	buf_puts(out, "Date: ");
	put_date(out, i->date);
	buf_printf(out, "\nFrom: Mail Delivery System <MAILER-DAEMON@%s>\n"
		   "To: Postmaster <%s>\n"
		   "Subject: %s SMTP server: errors from %s[%s]\n"
		   "Message-ID: <%s.notify@%s>\n"
		   "Auto-Submitted: auto-generated\n"
		   "MIME-Version: 1.0\n"
		   "Content-Type: text/plain; charset=us-ascii\n"
		   "Content-Transfer-Encoding: 7bit\n\n"
		   "Transcript of session follows.\n\n",
		   i->origin, i->to, i->mail_name, i->client_name,
		   i->client_addr, i->id, i->myhostname);
	if (i->dropped > 0)
		buf_printf(out, " (%u earlier line%s not kept)\n", i->dropped,
			   i->dropped == 1 ? "" : "s");
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		put_wrapped(out, p, n);
		p += n + (nl ? 1 : 0);
	}
	buf_puts(out, "\n");
	if (i->reason != NULL)
		buf_printf(out, "Session aborted, reason: %s\n", i->reason);
	buf_puts(out, "\nFor other details, see the local mail logfile\n");
}

/* ---- session hooks ---- */

/* The session's transcript, created on first use when a class is on. */
static struct smtpd_notify *
sess_notify(struct smtpd_session *s)
{
	unsigned mask;

	if (s->notify != NULL)
		return s->notify;
	if ((mask = smtpd_notify_mask(s->l->s.notify_classes)) == 0)
		return NULL;
	s->notify = smtpd_notify_new(mask);
	return s->notify;
}

/* Records CRLF-separated reply lines and their classes. */
static void
record_reply(struct smtpd_notify *n, const char *text)
{
	while (*text) {
		const char *e = strstr(text, "\r\n");
		size_t len = e ? (size_t)(e - text) : strlen(text);
		char line[SMTPD_NOTIFY_LINE + 1];
		size_t k = len > SMTPD_NOTIFY_LINE ? SMTPD_NOTIFY_LINE : len;

		memcpy(line, text, k);
		line[k] = '\0';
		smtpd_notify_add(n, "Out: ", line, k);
		n->errors |= smtpd_notify_classify(line);
		if (strncmp(line, "421 ", 4) == 0)
			n->reason = has(line, "too many errors")
				    ? "too many errors"
				    : has(line, "timeout") ? "timeout" : "";
		text += len + (e ? 2 : 0);
	}
}

void
smtpd_notify_in(struct smtpd_session *s, const char *line, size_t len)
{
	struct smtpd_notify *n = s->notify;

	if (n == NULL) {
		if ((n = sess_notify(s)) == NULL)
			return;
		/* the greeting went out before anything was kept */
		if (!s->access_denied && s->l->banner != NULL)
			record_reply(n, s->l->banner);
	}
	if (s->state == SMTPD_S_AUTH) {
		/* a SASL response: never kept */
		smtpd_notify_add(n, "In:  ", "********", 8);
		return;
	}
	if (len >= 4 && strncasecmp(line, "AUTH", 4) == 0
	    && (len == 4 || line[4] == ' ')) {
		/* "AUTH MECH": the initial response is not kept */
		const char *sp = len > 5 ? memchr(line + 5, ' ', len - 5) : NULL;
		char show[80];

		if (sp != NULL) {
			snprintf(show, sizeof(show), "%.*s ********",
				 (int)((size_t)(sp - line) > 64 ? 64 : sp - line),
				 line);
			smtpd_notify_add(n, "In:  ", show, strlen(show));
			return;
		}
	}
	smtpd_notify_add(n, "In:  ", line, len);
}

void
smtpd_notify_vreply(struct smtpd_session *s, const char *fmt, va_list ap)
{
	struct smtpd_notify *n;
	char text[2 * SMTPD_NOTIFY_LINE];
	va_list aq;

	if ((n = sess_notify(s)) == NULL)
		return;
	va_copy(aq, ap);
	vsnprintf(text, sizeof(text), fmt, aq);
	va_end(aq);
	record_reply(n, text);
}

void
smtpd_notify_raw(struct smtpd_session *s, const char *text)
{
	struct smtpd_notify *n;

	if ((n = sess_notify(s)) == NULL)
		return;
	record_reply(n, text);
}

void
smtpd_notify_free(struct smtpd_session *s)
{
	smtpd_notify_destroy(&s->notify);
}

struct notify_job {
	struct smtpd_session *s;
	void   (*again)(struct smtpd_session *);
	char   *rcpt;		/* qualified */
	char   *sender;		/* double_bounce_sender, qualified */
	struct buf msg;
	char    id[QUEUE_ID_SIZE];
	char    err[512];
	char    classes[64];
	bool    ok;
};

/* An address as given when it has a domain, else @myorigin. */
static char *
qualify(const char *a, const char *def, const char *origin)
{
	if (a == NULL || *a == '\0')
		a = def;
	if (strchr(a, '@') != NULL)
		return xstrdup(a);
	return xasprintf("%s@%s", a, origin);
}

static void
notify_work(void *arg)
{
	struct notify_job *j = arg;
	struct smtpd_session *s = j->s;
	struct resolve_result res;
	struct queue_env env;
	struct queue_rcpt *rv;
	struct errbuf e;
	struct timeval tv;
	struct addr a;
	const char *why;

	memset(&res, 0, sizeof(res));
	memset(&env, 0, sizeof(env));
	if (addr_parse_mailbox(j->rcpt, &a, &why) < 0) {
		snprintf(j->err, sizeof(j->err), "notice recipient \"%s\": %s",
			 j->rcpt, why);
		return;
	}
	/* virtual aliases apply (postmaster is usually one) */
	if (resolve_rcpt(s->l->resolve, &a, &res) != RESOLVE_OK || res.n == 0) {
		snprintf(j->err, sizeof(j->err), "cannot resolve the notice "
			 "recipient %s: %s", j->rcpt,
			 res.reason ? res.reason : "no destination");
		addr_free(&a);
		resolve_result_free(&res);
		return;
	}
	gettimeofday(&tv, NULL);
	memcpy(env.id, j->id, sizeof(env.id));
	env.arrival = tv.tv_sec;
	env.arrival_usec = (long)tv.tv_usec;
	/* never bounced back: a failed notice from this sender is dropped */
	env.sender = j->sender;
	env.client_name = (char *)"localhost";
	env.client_addr = (char *)"127.0.0.1";
	env.helo = s->l->s.myhostname;
	env.protocol = (char *)"local";
	env.size = (long long)j->msg.len;
	rv = xcalloc(res.n, sizeof(*rv));
	for (size_t i = 0; i < res.n; i++) {
		rv[i].orig = j->rcpt;
		rv[i].addr = res.v[i].addr;
		rv[i].status = QUEUE_RCPT_PENDING;
	}
	env.rcpt = rv;
	env.nrcpt = res.n;
	errbuf_clear(&e);
	if (queue_write(s->l->srv->queue_dir, &env, buf_cstr(&j->msg),
			j->msg.len, false, &e) < 0)
		snprintf(j->err, sizeof(j->err), "queue file write error: %s",
			 errbuf_str(&e));
	else
		j->ok = true;
	free(rv);
	addr_free(&a);
	resolve_result_free(&res);
}

static void
notify_done(void *arg)
{
	struct notify_job *j = arg;
	struct smtpd_session *s = j->s;

	if (j->ok) {
		log_write(s->l->s.syslog_name, SVC, LOG_LVL_INFO,
			  "%s: postmaster notice (%s): errors from %s[%s], "
			  "to=<%s>", j->id, j->classes, s->client_name,
			  s->client_addr, j->rcpt);
		if (s->l->srv->qmgr != NULL)
			qmgr_enqueued(s->l->srv->qmgr, j->id);
	} else {
		log_write(s->l->s.syslog_name, SVC, LOG_LVL_WARNING,
			  "cannot notify the postmaster of errors from "
			  "%s[%s]: %s", s->client_name, s->client_addr, j->err);
	}
	free(j->rcpt);
	free(j->sender);
	buf_free(&j->msg);
	s->busy = 0;
	j->again(s);
	free(j);
}

bool
smtpd_notify_end(struct smtpd_session *s,
		 void (*again)(struct smtpd_session *))
{
	const struct settings *st = &s->l->s;
	struct smtpd_notify *n = s->notify;
	struct smtpd_notice_info info;
	struct notify_job *j;
	const char *origin;
	unsigned due;

	if (n == NULL || (due = smtpd_notify_due(n)) == 0
	    || s->l->srv->pool == NULL)
		return false;
	n->sent = true;
	origin = st->myorigin && *st->myorigin ? st->myorigin
		 : st->myhostname ? st->myhostname : "localhost";
	j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->again = again;
	/* Postfix: the bounce class goes to bounce_notice_recipient */
	j->rcpt = qualify(due & SMTPD_NOTE_BOUNCE ? st->bounce_notice_recipient
			  : st->error_notice_recipient, "postmaster", origin);
	j->sender = qualify(st->double_bounce_sender, "double-bounce", origin);
	smtpd_notify_names(due, j->classes, sizeof(j->classes));
	queue_id_new(j->id);
	memset(&info, 0, sizeof(info));
	info.date = time(NULL);
	info.myhostname = st->myhostname;
	info.mail_name = st->mail_name && *st->mail_name ? st->mail_name
			 : "facteur";
	info.origin = origin;
	info.to = j->rcpt;
	info.client_name = s->client_name;
	info.client_addr = s->client_addr;
	info.id = j->id;
	info.transcript = smtpd_notify_text(n, NULL, &info.dropped);
	/* the client left without QUIT (and without our 421) */
	if (n->reason != NULL)
		info.reason = n->reason[0] ? n->reason : NULL;
	else if (s->cmd_total[SMTPD_QUIT] == 0)
		info.reason = "lost connection";
	buf_init(&j->msg, 0);
	smtpd_notify_format(&info, &j->msg);
	s->busy = 1;
	worker_submit(s->l->srv->pool, notify_work, notify_done, j);
	return true;
}
