/*
 * smtp_client.c - one ESMTP delivery to one next hop, on the event loop:
 * MX and address lookups through core/dns, connections tried in MX
 * preference order, then the greeting, EHLO/HELO, the MAIL/RCPT/DATA
 * transaction (pipelined when offered) and QUIT. Every recipient ends with
 * sent, deferred or bounced, and the remote reply.
 * Must not: block, read more than SMTP_REPLY_MAX of one reply, or retry on
 * another host once the transaction has started (no duplicate deliveries).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core/dns.h"
#include "core/log.h"
#include "core/lib/xmalloc.h"
#include "delivery/smtp_client.h"

#define SMTP_LINE_MAX	 2048	/* one reply line (RFC 5321 says 512) */
#define SMTP_REPLY_MAX	 8192	/* one whole (multi-line) reply */
#define SMTP_MAX_TARGETS 20	/* addresses tried per delivery */
#define SMTP_MAX_MX	 10

enum stage { S_LOOKUP, S_CONNECT, S_GREET, S_EHLO, S_HELO, S_MAIL, S_RCPT,
	     S_DATA, S_DOT, S_QUIT };

struct target {
	char host[256];
	char ip[64];
};

struct smtp_sess {
	struct event_base            *base;
	struct dns                   *dns;
	const struct smtp_client_cfg *cfg;
	struct smtp_req              *req;
	smtp_done_cb                 *done;
	void                         *arg;
	/* resolution */
	char                          mx[SMTP_MAX_MX][256];
	size_t                        nmx, imx;
	bool                          aaaa_pending;
	struct target                 tg[SMTP_MAX_TARGETS];
	size_t                        ntg, itg;
	char                          last_err[1200];
	bool                          last_perm;	/* last failure was 5xx */
	/* connection */
	struct bufferevent           *bev;
	enum stage                    stage;
	int                           port;
	char                          reply[SMTP_REPLY_MAX];
	size_t                        reply_len;
	bool                          esmtp, pipelining, smtputf8, eightbit;
	long long                     size_max;
	/* transaction */
	size_t                        ncmd, sent, replied;	/* MAIL, RCPTs, DATA */
	size_t                        accepted;
	bool                          mail_ok;
	struct timeval                t0, t_conn;
	struct event                 *finish_ev;
};

static unsigned active;

static void try_next_target(struct smtp_sess *s);
static void resolve_next_mx(struct smtp_sess *s);

unsigned
smtp_client_active(void)
{
	return active;
}

/* ---- pure helpers ---- */

int
smtp_reply_line(const char *line, size_t n, int *code_r)
{
	if (n < 3 || !isdigit((unsigned char)line[0]) || line[0] < '2'
	    || line[0] > '5' || !isdigit((unsigned char)line[1])
	    || !isdigit((unsigned char)line[2]))
		return -1;
	if (n > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	*code_r = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	return n > 3 && line[3] == '-' ? 0 : 1;
}

void
smtp_reply_dsn(const char *reply, int code, char dsn_r[SMTP_DSN_SIZE])
{
	const char *p = reply;
	int a, b, c, n = 0;

	if (strlen(p) > 4)
		p += 4;
	if (sscanf(p, "%1d.%3d.%3d%n", &a, &b, &c, &n) == 3 && n > 0
	    && (p[n] == ' ' || p[n] == '\0') && a == code / 100 && b >= 0
	    && b < 1000 && c >= 0 && c < 1000 && a >= 0 && a < 10) {
		snprintf(dsn_r, SMTP_DSN_SIZE, "%d.%d.%d", a % 10, b % 1000, c % 1000);
		return;
	}
	snprintf(dsn_r, SMTP_DSN_SIZE, "%d.0.0", code / 100 >= 2 && code / 100 <= 5 ? code / 100 : 4);
}

void
smtp_body_encode(const char *content, size_t len, struct evbuffer *out)
{
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(content + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - content) : len;
		size_t e = end;

		if (e > i && content[e - 1] == '\r')	/* already CRLF */
			e--;
		if (content[i] == '.')			/* RFC 5321 4.5.2 */
			evbuffer_add(out, ".", 1);
		evbuffer_add(out, content + i, e - i);
		evbuffer_add(out, "\r\n", 2);
		i = nl ? end + 1 : len;
	}
	evbuffer_add(out, ".\r\n", 3);
}

/* ---- outcomes ---- */

static double
since(const struct timeval *a)
{
	struct timeval now;

	gettimeofday(&now, NULL);
	return (double)(now.tv_sec - a->tv_sec)
	       + (double)(now.tv_usec - a->tv_usec) / 1e6;
}

static void
rcpt_set(struct smtp_rcpt *r, enum deliver_status st, const char *dsn,
	 const char *text)
{
	r->st = st;
	snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
	free(r->text);
	r->text = xstrdup(text);
}

/* Every recipient without an outcome yet gets this one. */
static void
rcpt_set_open(struct smtp_sess *s, enum deliver_status st, const char *dsn,
	      const char *text)
{
	size_t i;

	for (i = 0; i < s->req->nrcpt; i++)
		if (s->req->rcpt[i].text == NULL)
			rcpt_set(&s->req->rcpt[i], st, dsn, text);
}

static void
sess_free(struct smtp_sess *s)
{
	if (s->bev)
		bufferevent_free(s->bev);
	if (s->finish_ev)
		event_free(s->finish_ev);
	free(s);
	active--;
}

static void
finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_sess *s = arg;
	smtp_done_cb *done = s->done;
	void *darg = s->arg;
	struct smtp_req *req = s->req;

	sess_free(s);
	done(darg, req);
}

void
smtp_cancel(struct smtp_sess *s)
{
	if (s)
		sess_free(s);
}

static void
finish(struct smtp_sess *s)
{
	if (s->bev) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	if (s->t_conn.tv_sec) {
		s->req->t_xfer = since(&s->t_conn);
		s->req->t_conn = (double)(s->t_conn.tv_sec - s->t0.tv_sec)
				 + (double)(s->t_conn.tv_usec - s->t0.tv_usec) / 1e6;
	} else {
		s->req->t_conn = since(&s->t0);
	}
	rcpt_set_open(s, DELIVER_DEFER, "4.4.0", "delivery ended without a reply");
	event_active(s->finish_ev, EV_TIMEOUT, 1);
}

/* The remote "said" text, Postfix style. */
static void
said(struct smtp_sess *s, const char *in_reply_to, char *out, size_t size)
{
	const struct target *t = &s->tg[s->itg];

	snprintf(out, size, "host %s[%s] said: %s (in reply to %s)", t->host,
		 t->ip, s->reply, in_reply_to);
}

static const char *
stage_doing(enum stage st)
{
	switch (st) {
	case S_GREET: return "receiving the initial server greeting";
	case S_EHLO:
	case S_HELO:  return "performing the EHLO handshake";
	case S_MAIL:  return "sending MAIL FROM";
	case S_RCPT:  return "sending RCPT TO";
	case S_DATA:  return "sending DATA command";
	case S_DOT:   return "sending end of data -- message may be sent more "
			     "than once";
	default:      return "sending QUIT";
	}
}

/* A failure before the transaction: remember it and try the next address. */
static void
conn_failed(struct smtp_sess *s, bool perm, const char *msg)
{
	size_t n = strlen(msg);

	if (n >= sizeof(s->last_err))
		n = sizeof(s->last_err) - 1;
	memcpy(s->last_err, msg, n);
	s->last_err[n] = '\0';
	s->last_perm = perm;
	if (s->bev) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	s->itg++;
	try_next_target(s);
}

/* ---- the conversation ---- */

static void
send_line(struct smtp_sess *s, long long timeout, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
send_line(struct smtp_sess *s, long long timeout, const char *fmt, ...)
{
	struct timeval tv = { (time_t)(timeout > 0 ? timeout : 300), 0 };
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

static bool
needs_utf8(const char *a)
{
	for (; *a; a++)
		if ((unsigned char)*a >= 0x80)
			return true;
	return false;
}

/* Sends transaction command k: 0 = MAIL, 1..n = RCPT, n+1 = DATA. */
static void
send_cmd(struct smtp_sess *s, size_t k)
{
	struct smtp_req *r = s->req;
	const struct smtp_client_cfg *c = s->cfg;

	if (k == 0) {
		char ext[96] = "";
		size_t off = 0, i;
		bool utf8 = needs_utf8(r->sender);

		for (i = 0; i < r->nrcpt; i++)
			utf8 |= needs_utf8(r->rcpt[i].addr);
		if (s->size_max >= 0 && s->esmtp)
			off += (size_t)snprintf(ext + off, sizeof(ext) - off,
						" SIZE=%zu", r->len);
		if (s->eightbit && s->esmtp) {
			for (i = 0; i < r->len; i++)
				if ((unsigned char)r->content[i] >= 0x80)
					break;
			if (i < r->len)
				off += (size_t)snprintf(ext + off, sizeof(ext) - off,
							" BODY=8BITMIME");
		}
		if (utf8 && s->smtputf8)
			snprintf(ext + off, sizeof(ext) - off, " SMTPUTF8");
		send_line(s, c->t_mail, "MAIL FROM:<%s>%s", r->sender, ext);
	} else if (k <= r->nrcpt) {
		send_line(s, c->t_rcpt, "RCPT TO:<%s>", r->rcpt[k - 1].addr);
	} else {
		send_line(s, c->t_data_init, "DATA");
	}
	s->sent = k + 1;
}

static void
start_transaction(struct smtp_sess *s)
{
	struct smtp_req *r = s->req;
	const struct target *t = &s->tg[s->itg];
	char text[1200];
	size_t i;
	bool utf8 = needs_utf8(r->sender);

	for (i = 0; i < r->nrcpt; i++)
		utf8 |= needs_utf8(r->rcpt[i].addr);
	if (utf8 && !s->smtputf8) {
		snprintf(text, sizeof(text), "SMTPUTF8 is required, but was not "
			 "offered by host %s[%s]", t->host, t->ip);
		rcpt_set_open(s, DELIVER_BOUNCE, "5.6.7", text);
		goto quit;
	}
	if (s->size_max > 0 && (long long)r->len > s->size_max) {
		snprintf(text, sizeof(text), "message size %zu exceeds size limit "
			 "%lld of server %s[%s]", r->len, s->size_max, t->host,
			 t->ip);
		rcpt_set_open(s, DELIVER_BOUNCE, "5.3.4", text);
		goto quit;
	}
	s->ncmd = r->nrcpt + 2;
	s->replied = 0;
	s->stage = S_MAIL;
	if (s->pipelining)
		for (i = 0; i < s->ncmd; i++)
			send_cmd(s, i);
	else
		send_cmd(s, 0);
	return;
quit:
	s->stage = S_QUIT;
	send_line(s, s->cfg->t_quit, "QUIT");
}

static void
send_body(struct smtp_sess *s)
{
	struct timeval tv = { (time_t)s->cfg->t_data_xfer, 0 };

	smtp_body_encode(s->req->content, s->req->len, bufferevent_get_output(s->bev));
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	s->stage = S_DOT;
}

/* One transaction reply (command k of MAIL, RCPT..., DATA). */
static void
transaction_reply(struct smtp_sess *s, int code)
{
	struct smtp_req *r = s->req;
	size_t k = s->replied++;
	char dsn[SMTP_DSN_SIZE], text[SMTP_REPLY_MAX + 400];
	enum deliver_status st = code / 100 == 5 ? DELIVER_BOUNCE : DELIVER_DEFER;

	smtp_reply_dsn(s->reply, code, dsn);
	if (k == 0) {
		s->mail_ok = code / 100 == 2;
		if (!s->mail_ok) {
			said(s, "MAIL FROM command", text, sizeof(text));
			rcpt_set_open(s, st, dsn, text);
		}
	} else if (k <= r->nrcpt) {
		struct smtp_rcpt *rc = &r->rcpt[k - 1];
		if (!s->mail_ok)
			;	/* already decided by the MAIL reply */
		else if (code / 100 == 2)
			s->accepted++;
		else {
			said(s, "RCPT TO command", text, sizeof(text));
			rcpt_set(rc, st, dsn, text);
		}
	} else {
		if (code == 354 && s->accepted > 0) {
			send_body(s);
			return;
		}
		if (code == 354) {	/* nobody accepted: end the empty message */
			evbuffer_add(bufferevent_get_output(s->bev), ".\r\n", 3);
			s->stage = S_DOT;
			s->accepted = 0;
			return;
		}
		if (s->accepted > 0 && s->mail_ok) {
			said(s, "DATA command", text, sizeof(text));
			rcpt_set_open(s, st, dsn, text);
		}
		goto quit;
	}
	if (s->replied < s->ncmd) {
		if (!s->pipelining) {
			/* without pipelining, stop at the first useless step */
			if (!s->mail_ok || (s->replied == s->ncmd - 1
					    && s->accepted == 0))
				goto quit;
			send_cmd(s, s->replied);
		}
		s->stage = s->replied <= r->nrcpt ? S_RCPT : S_DATA;
		return;
	}
quit:
	rcpt_set_open(s, DELIVER_DEFER, "4.4.0", "no reply to the transaction");
	s->stage = S_QUIT;
	send_line(s, s->cfg->t_quit, "QUIT");
}

static void
parse_ehlo(struct smtp_sess *s)
{
	const char *p = s->reply;

	/* s->reply holds the lines joined by '\n' for EHLO */
	while (p && *p) {
		const char *kw = p + (strlen(p) > 4 ? 4 : strlen(p));
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - kw) : strlen(kw);

		if (n >= 10 && strncasecmp(kw, "PIPELINING", 10) == 0)
			s->pipelining = true;
		else if (n >= 8 && strncasecmp(kw, "8BITMIME", 8) == 0)
			s->eightbit = true;
		else if (n >= 8 && strncasecmp(kw, "SMTPUTF8", 8) == 0)
			s->smtputf8 = true;
		else if (n >= 4 && strncasecmp(kw, "SIZE", 4) == 0
			 && (n == 4 || kw[4] == ' ')) {
			s->size_max = n > 5 ? strtoll(kw + 5, NULL, 10) : 0;
			if (s->size_max < 0)
				s->size_max = 0;
		}
		p = nl ? nl + 1 : NULL;
	}
}

static void
handle_reply(struct smtp_sess *s, int code)
{
	const struct target *t = &s->tg[s->itg];
	char dsn[SMTP_DSN_SIZE], text[SMTP_REPLY_MAX + 400];

	switch (s->stage) {
	case S_GREET:
		if (code / 100 != 2) {
			snprintf(text, sizeof(text), "host %s[%s] refused to talk "
				 "to me: %s", t->host, t->ip, s->reply);
			conn_failed(s, code / 100 == 5, text);
			return;
		}
		s->stage = S_EHLO;
		send_line(s, s->cfg->t_helo, "EHLO %s", s->cfg->helo_name);
		return;
	case S_EHLO:
		if (code / 100 == 2) {
			s->esmtp = true;
			parse_ehlo(s);
			start_transaction(s);
			return;
		}
		s->stage = S_HELO;
		send_line(s, s->cfg->t_helo, "HELO %s", s->cfg->helo_name);
		return;
	case S_HELO:
		if (code / 100 != 2) {
			snprintf(text, sizeof(text), "host %s[%s] refused to talk "
				 "to me: %s", t->host, t->ip, s->reply);
			conn_failed(s, code / 100 == 5, text);
			return;
		}
		start_transaction(s);
		return;
	case S_MAIL:
	case S_RCPT:
	case S_DATA:
		transaction_reply(s, code);
		return;
	case S_DOT: {
		size_t i;
		smtp_reply_dsn(s->reply, code, dsn);
		for (i = 0; s->accepted > 0 && i < s->req->nrcpt; i++) {
			struct smtp_rcpt *rc = &s->req->rcpt[i];
			if (rc->text != NULL)
				continue;
			if (code / 100 == 2)
				rcpt_set(rc, DELIVER_SENT, dsn, s->reply);
			else {
				said(s, "end of DATA command", text, sizeof(text));
				rcpt_set(rc, code / 100 == 5 ? DELIVER_BOUNCE
					 : DELIVER_DEFER, dsn, text);
			}
		}
		s->stage = S_QUIT;
		send_line(s, s->cfg->t_quit, "QUIT");
		return;
	}
	case S_QUIT:
	default:
		finish(s);
		return;
	}
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_sess *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	const struct target *t = &s->tg[s->itg];
	char text[1200];

	for (;;) {
		size_t n;
		char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
		int code = 0, rc;

		if (line == NULL) {
			if (evbuffer_get_length(in) > SMTP_LINE_MAX)
				goto bad;
			return;
		}
		rc = smtp_reply_line(line, n, &code);
		if (rc < 0 || n > SMTP_LINE_MAX) {
			free(line);
			goto bad;
		}
		/* join lines: "\n" for EHLO keywords, else as one text */
		if (s->reply_len > 0 && s->reply_len < sizeof(s->reply) - 1)
			s->reply[s->reply_len++] = s->stage == S_EHLO ? '\n' : ' ';
		if (s->reply_len > 0 && s->stage != S_EHLO && n > 4) {
			size_t m = n - 4;	/* continuation: text only */
			if (m > sizeof(s->reply) - 1 - s->reply_len)
				m = sizeof(s->reply) - 1 - s->reply_len;
			memcpy(s->reply + s->reply_len, line + 4, m);
			s->reply_len += m;
		} else {
			size_t m = n;
			if (m > sizeof(s->reply) - 1 - s->reply_len)
				m = sizeof(s->reply) - 1 - s->reply_len;
			memcpy(s->reply + s->reply_len, line, m);
			s->reply_len += m;
		}
		s->reply[s->reply_len] = '\0';
		free(line);
		if (rc == 0)
			continue;
		handle_reply(s, code);
		/* handle_reply may have finished or moved to the next host */
		if (s->bev != bev)
			return;
		s->reply_len = 0;
		s->reply[0] = '\0';
	}
bad:
	if (s->stage <= S_HELO) {
		snprintf(text, sizeof(text), "host %s[%s] sent a malformed reply "
			 "while %s", t->host, t->ip, stage_doing(s->stage));
		conn_failed(s, false, text);
		return;
	}
	snprintf(text, sizeof(text), "host %s[%s] sent a malformed reply "
		 "while %s", t->host, t->ip, stage_doing(s->stage));
	rcpt_set_open(s, DELIVER_DEFER, "4.4.2", text);
	finish(s);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_sess *s = arg;
	const struct target *t = &s->tg[s->itg];
	char text[1200];

	if (what & BEV_EVENT_CONNECTED) {
		struct timeval tv = { (time_t)s->cfg->t_helo, 0 };
		gettimeofday(&s->t_conn, NULL);
		s->stage = S_GREET;
		bufferevent_set_timeouts(bev, &tv, &tv);
		bufferevent_enable(bev, EV_READ | EV_WRITE);
		return;
	}
	if (s->stage == S_CONNECT) {
		int e = EVUTIL_SOCKET_ERROR();
		snprintf(text, sizeof(text), "connect to %s[%s]:%d: %s", t->host,
			 t->ip, s->port, (what & BEV_EVENT_TIMEOUT)
			 ? "Connection timed out" : strerror(e ? e : ECONNREFUSED));
		log_write(s->cfg->syslog_name, "smtp", LOG_LVL_INFO, "%s", text);
		conn_failed(s, false, text);
		return;
	}
	if (s->stage == S_QUIT) {	/* closed after QUIT: fine */
		finish(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(text, sizeof(text), "conversation with %s[%s] timed out "
			 "while %s", t->host, t->ip, stage_doing(s->stage));
	else
		snprintf(text, sizeof(text), "lost connection with %s[%s] while %s",
			 t->host, t->ip, stage_doing(s->stage));
	if (s->stage <= S_HELO) {
		conn_failed(s, false, text);
		return;
	}
	rcpt_set_open(s, DELIVER_DEFER, "4.4.2", text);
	finish(s);
}

/* ---- targets ---- */

static void
try_next_target(struct smtp_sess *s)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct target *t;
	struct timeval tv = { (time_t)s->cfg->t_connect, 0 };

	if (s->itg >= s->ntg) {
		if (s->imx < s->nmx) {
			resolve_next_mx(s);
			return;
		}
		rcpt_set_open(s, s->last_perm ? DELIVER_BOUNCE : DELIVER_DEFER,
			      s->last_perm ? "5.4.0" : "4.4.1",
			      s->last_err[0] ? s->last_err
			      : "no address to connect to");
		finish(s);
		return;
	}
	t = &s->tg[s->itg];
	memset(&ss, 0, sizeof(ss));
	if (strchr(t->ip, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)s->port);
		inet_pton(AF_INET6, t->ip, &a->sin6_addr);
		sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)s->port);
		inet_pton(AF_INET, t->ip, &a->sin_addr);
		sl = sizeof(*a);
	}
	snprintf(s->req->relay, sizeof(s->req->relay), "%s[%s]:%d", t->host,
		 t->ip, s->port);
	s->stage = S_CONNECT;
	s->esmtp = s->pipelining = s->smtputf8 = s->eightbit = false;
	s->size_max = -1;
	s->accepted = 0;
	s->mail_ok = false;
	s->reply_len = 0;
	s->bev = bufferevent_socket_new(s->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		conn_failed(s, false, "cannot create a socket");
		return;
	}
	bufferevent_setcb(s->bev, read_cb, NULL, event_cb, s);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&ss, (int)sl) < 0) {
		char text[1200];
		snprintf(text, sizeof(text), "connect to %s[%s]:%d: %s", t->host,
			 t->ip, s->port, strerror(errno));
		log_write(s->cfg->syslog_name, "smtp", LOG_LVL_INFO, "%s", text);
		conn_failed(s, false, text);
	}
}

static void
add_target(struct smtp_sess *s, const char *host, const char *ip)
{
	struct target t;

	if (s->ntg >= SMTP_MAX_TARGETS)
		return;
	snprintf(t.host, sizeof(t.host), "%s", host);
	snprintf(t.ip, sizeof(t.ip), "%s", ip);
	s->tg[s->ntg++] = t;
}

static void
addr_cb(void *arg, enum dns_status st, const struct dns_result *res,
	const char *why)
{
	struct smtp_sess *s = arg;
	const char *host = s->mx[s->imx];
	size_t i;

	if (st == DNS_OK)
		for (i = 0; i < res->n; i++)
			add_target(s, host, res->rr[i].data);
	else if (st == DNS_TEMPFAIL && s->ntg == s->itg) {
		snprintf(s->last_err, sizeof(s->last_err), "Host or domain name "
			 "not found. Name service error for name=%s type=%s: "
			 "Host not found, try again", host,
			 s->aaaa_pending ? "A" : "AAAA");
		s->last_perm = false;
	} else if (s->ntg == s->itg && !s->aaaa_pending && s->last_err[0] == '\0') {
		snprintf(s->last_err, sizeof(s->last_err), "Host or domain name "
			 "not found. Name service error for name=%s type=A: "
			 "Host not found", host);
		/* a host without address is permanent only when it is the
		 * recipient domain itself (no MX) */
		s->last_perm = !s->req->mx || s->nmx == 1;
	}
	if (s->aaaa_pending) {
		s->aaaa_pending = false;
		dns_query(s->dns, host, DNS_AAAA, addr_cb, s);
		return;
	}
	s->imx++;
	try_next_target(s);
}

static void
resolve_next_mx(struct smtp_sess *s)
{
	const char *host = s->mx[s->imx];
	unsigned char a[16];

	if (inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1) {
		add_target(s, host, host);
		s->imx++;
		try_next_target(s);
		return;
	}
	s->aaaa_pending = true;
	dns_query(s->dns, host, DNS_A, addr_cb, s);
}

static void
mx_cb(void *arg, enum dns_status st, const struct dns_result *res,
      const char *why)
{
	struct smtp_sess *s = arg;
	struct dns_result sorted = { NULL, 0 };
	char text[1200];
	size_t i;

	if (st == DNS_TEMPFAIL) {
		snprintf(text, sizeof(text), "Host or domain name not found. Name "
			 "service error for name=%s type=MX: Host not found, try "
			 "again", s->req->host);
		rcpt_set_open(s, DELIVER_DEFER, "4.4.3", text);
		finish(s);
		return;
	}
	if (st == DNS_OK) {
		/* RFC 7505: a single "." MX means the domain accepts no mail */
		if (res->n == 1 && res->rr[0].data[0] == '\0') {
			snprintf(text, sizeof(text), "Domain %s does not accept "
				 "mail (nullMX)", s->req->host);
			rcpt_set_open(s, DELIVER_BOUNCE, "5.1.10", text);
			finish(s);
			return;
		}
		sorted.rr = xcalloc(res->n, sizeof(*sorted.rr));
		for (i = 0; i < res->n; i++) {
			sorted.rr[i] = res->rr[i];
			sorted.rr[i].data = xstrdup(res->rr[i].data);
		}
		sorted.n = res->n;
		dns_mx_sort(&sorted);
		for (i = 0; i < sorted.n && s->nmx < SMTP_MAX_MX; i++)
			if (sorted.rr[i].data[0])
				snprintf(s->mx[s->nmx++], sizeof(s->mx[0]), "%s",
					 sorted.rr[i].data);
		dns_result_free(&sorted);
	}
	if (s->nmx == 0)	/* no MX: the domain's own address */
		snprintf(s->mx[s->nmx++], sizeof(s->mx[0]), "%s", s->req->host);
	resolve_next_mx(s);
}

struct smtp_sess *
smtp_deliver(struct event_base *base, struct dns *dns,
	     const struct smtp_client_cfg *cfg, struct smtp_req *req,
	     smtp_done_cb *done, void *arg)
{
	struct smtp_sess *s = xcalloc(1, sizeof(*s));
	size_t i;

	active++;
	s->finish_ev = event_new(base, -1, 0, finish_cb, s);
	if (s->finish_ev == NULL)
		abort();	/* out of memory: as xmalloc */
	s->base = base;
	s->dns = dns;
	s->cfg = cfg;
	s->req = req;
	s->done = done;
	s->arg = arg;
	s->port = req->port > 0 ? req->port : 25;
	gettimeofday(&s->t0, NULL);
	snprintf(req->relay, sizeof(req->relay), "none");
	for (i = 0; i < req->nrcpt; i++) {
		free(req->rcpt[i].text);
		req->rcpt[i].text = NULL;
	}
	if (req->host == NULL || req->host[0] == '\0') {
		rcpt_set_open(s, DELIVER_DEFER, "4.3.5", "no next hop for this "
			      "destination");
		finish(s);
		return s;
	}
	if (req->mx && dns != NULL) {
		s->stage = S_LOOKUP;
		dns_query(dns, req->host, DNS_MX, mx_cb, s);
		return s;
	}
	snprintf(s->mx[0], sizeof(s->mx[0]), "%s", req->host);
	s->nmx = 1;
	if (dns == NULL) {
		unsigned char a[16];
		if (inet_pton(AF_INET, req->host, a) != 1
		    && inet_pton(AF_INET6, req->host, a) != 1) {
			rcpt_set_open(s, DELIVER_DEFER, "4.3.5", "no DNS resolver");
			finish(s);
			return s;
		}
	}
	resolve_next_mx(s);
	return s;
}
