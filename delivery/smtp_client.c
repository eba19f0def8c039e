/*
 * smtp_client.c - one ESMTP or LMTP delivery to one next hop, on the event
 * loop: MX and address lookups through core/dns (or a unix-domain socket
 * for LMTP), connections tried in MX preference order, then the greeting,
 * EHLO/HELO or LHLO, STARTTLS and AUTH PLAIN/LOGIN for SMTP, the
 * MAIL/RCPT/DATA transaction (pipelined when
 * offered; for LMTP one reply per accepted recipient after the data) and
 * QUIT, or the connection parked in delivery/smtp_cache for the next
 * delivery to the same next hop, which starts with RSET on it (and
 * connects afresh when that fails). Outbound sockets are bound to
 * smtp_bind_address(6); 8-bit content for a server without 8BITMIME is
 * converted by delivery/mime_downgrade; the TLS level, names and versions
 * come from the request's policy or the defaults. With the dane levels,
 * MX, address and TLSA lookups ask for DNSSEC and delivery/smtp_dane
 * decides per server: verified by TLSA records, opportunistic, or a 4.7.5
 * deferral (never cleartext on a signed destination whose TLSA lookup
 * failed). Every recipient ends with sent, deferred or bounced, and the
 * remote reply.
 * Must not: block, read more than SMTP_REPLY_MAX of one reply, retry on
 * another host once the transaction has started (no duplicate deliveries),
 * or log a password.
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
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/dns.h"
#include "core/log.h"
#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"
#include "core/tls.h"
#include "delivery/mime_downgrade.h"
#include "delivery/smtp_cache.h"
#include "delivery/smtp_client.h"
#include "delivery/smtp_dane.h"

#define SMTP_LINE_MAX	 2048	/* one reply line (RFC 5321 says 512) */
#define SMTP_REPLY_MAX	 8192	/* one whole (multi-line) reply */
#define SMTP_MAX_TARGETS 20	/* addresses tried per delivery */
#define SMTP_MAX_MX	 10

enum stage { S_LOOKUP, S_CONNECT, S_GREET, S_EHLO, S_HELO, S_STARTTLS,
	     S_TLS, S_AUTH, S_RSET, S_MAIL, S_RCPT, S_DATA, S_DOT, S_QUIT };

struct target {
	char host[256];
	char ip[64];
	bool secure;	/* its address records were DNSSEC-validated */
	char rname[256];	/* the end of host's CNAME chain, "" = host */
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
	bool                          aaaa_pending;	/* AAAA after this A */
	bool                          cur_aaaa;	/* the query running */
	struct target                 tg[SMTP_MAX_TARGETS];
	size_t                        ntg, itg;
	char                          last_err[1200];
	bool                          last_perm;	/* last failure was 5xx */
	char                          last_dsn[SMTP_DSN_SIZE];	/* "" = 4.4.1 */
	/* DANE (dane, dane-only): the configured mode, the MX RRset's
	 * validation, the TLSA records of the last server looked up */
	int                           dane;	/* 0 no, 1 dane, 2 dane-only */
	bool                          mx_secure;
	bool                          tlsa_done;
	char                          tlsa_host[256];	/* the server */
	char                          tlsa_base[256];	/* the name whose
							 * TLSA RRset is used */
	bool                          tlsa_fallback;	/* try tlsa_host next */
	enum dns_status               tlsa_st;
	struct dns_result             tlsa;	/* owned */
	/* connection */
	struct bufferevent           *bev;
	enum stage                    stage;
	int                           dot_sent;	/* S_DOT: content written */
	int                           port;
	const char                   *svc;	/* "smtp" or "lmtp", for logs */
	char                          peer[400];	/* "host[ip]" or the path */
	char                          host_name[256];	/* the target's name */
	size_t                        dot_next;	/* LMTP: next data reply's rcpt */
	char                          reply[SMTP_REPLY_MAX];
	size_t                        reply_len;
	bool                          esmtp, pipelining, smtputf8, eightbit;
	bool                          starttls;	/* offered */
	bool                          tls_active;
	bool                          wrapped;	/* smtp_tls_wrappermode */
	bool                          tls_plain;	/* may: retry this host
							 * without STARTTLS */
	bool                          auth_plain, auth_login;	/* offered */
	int                           auth_step;	/* LOGIN: 0 user, 1 pass */
	SSL                          *ssl;	/* owned by the filter bev */
	long long                     size_max;
	enum smtp_tls_level           level;	/* for this next hop */
	bool                          reused;	/* taken from the cache */
	bool                          saw_421;	/* the server is closing */
	unsigned                      uses;	/* earlier transactions */
	/* what is sent: the queued content, or its 7-bit conversion */
	const char                   *body;
	size_t                        body_len;
	char                         *conv;	/* owned */
	size_t                        conv_len;
	/* transaction */
	size_t                        ncmd, sent, replied;	/* MAIL, RCPTs, DATA */
	size_t                        accepted;
	bool                          mail_ok;
	struct timeval                t0, t_conn;
	struct timeval                t_open;	/* the connection was made */
	struct event                 *finish_ev;
};

static unsigned active;

static void try_next_target(struct smtp_sess *s);
static void resolve_next_mx(struct smtp_sess *s);
static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);
static void tls_failed(struct smtp_sess *s, const char *why);
static void tls_start(struct smtp_sess *s);
static void start_transaction(struct smtp_sess *s);
static void start_fresh(struct smtp_sess *s);

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
	free(s->conv);
	dns_result_free(&s->tlsa);
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
		s->req->conn_use = s->uses + 1;
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
	snprintf(out, size, "host %s said: %s (in reply to %s)", s->peer,
		 s->reply, in_reply_to);
}

static const char *
stage_doing(enum stage st)
{
	switch (st) {
	case S_GREET: return "receiving the initial server greeting";
	case S_EHLO:
	case S_HELO:  return "performing the EHLO handshake";
	case S_STARTTLS:
	case S_TLS:   return "performing the TLS handshake";
	case S_AUTH:  return "performing SASL authentication";
	case S_RSET:  return "sending RSET";
	case S_MAIL:  return "sending MAIL FROM";
	case S_RCPT:  return "sending RCPT TO";
	case S_DATA:  return "sending DATA command";
	case S_DOT:   return "sending end of data -- message may be sent more "
			     "than once";
	default:      return "sending QUIT";
	}
}

/*
 * A failure before the transaction: remember it (with its status code,
 * NULL = 4.4.1) and try the next address.
 */
static void
conn_failed_dsn(struct smtp_sess *s, bool perm, const char *dsn,
		const char *msg)
{
	size_t n = strlen(msg);

	if (n >= sizeof(s->last_err))
		n = sizeof(s->last_err) - 1;
	memcpy(s->last_err, msg, n);
	s->last_err[n] = '\0';
	s->last_perm = perm;
	snprintf(s->last_dsn, sizeof(s->last_dsn), "%s", dsn ? dsn : "");
	if (s->bev) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	s->itg++;
	s->tls_plain = false;
	try_next_target(s);
}

static void
conn_failed(struct smtp_sess *s, bool perm, const char *msg)
{
	conn_failed_dsn(s, perm, NULL, msg);
}

/* A TLS failure where TLS is required: 4.7.5 for a DANE server. */
static void
tls_required_failed(struct smtp_sess *s, const char *msg)
{
	conn_failed_dsn(s, false, s->level == SMTP_TLS_DANE ? "4.7.5" : NULL,
			msg);
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

/* Whether this connection may carry another transaction. */
static bool
cacheable(struct smtp_sess *s)
{
	const struct smtp_client_cfg *c = s->cfg;

	if (s->req->cache_key == NULL || s->saw_421 || s->bev == NULL
	    || c->cache_wanted == NULL || !c->cache_wanted(c->cache_arg, s->req))
		return false;
	/* Postfix: a session is reused at most reuse_count_limit times */
	if (c->reuse_count_limit > 0 && (long long)s->uses >= c->reuse_count_limit)
		return false;
	/* ... and not after reuse_time_limit since it was made */
	if (c->reuse_time_limit > 0 && s->t_open.tv_sec
	    && since(&s->t_open) >= (double)c->reuse_time_limit)
		return false;
	return true;
}

/*
 * The transaction is over and the connection is healthy: park it for the
 * next delivery to the same destination, or say QUIT.
 */
static void
end_session(struct smtp_sess *s)
{
	if (cacheable(s)) {
		struct smtp_conn_info info;

		memset(&info, 0, sizeof(info));
		info.esmtp = s->esmtp;
		info.pipelining = s->pipelining;
		info.smtputf8 = s->smtputf8;
		info.eightbit = s->eightbit;
		info.starttls = s->starttls;
		info.tls_active = s->tls_active;
		info.auth_plain = s->auth_plain;
		info.auth_login = s->auth_login;
		info.size_max = s->size_max;
		snprintf(info.host, sizeof(info.host), "%s", s->host_name);
		snprintf(info.peer, sizeof(info.peer), "%s", s->peer);
		snprintf(info.relay, sizeof(info.relay), "%s", s->req->relay);
		info.t_open = s->t_open;
		info.uses = s->uses + 1;
		smtp_cache_put(s->base, s->req->cache_key, s->bev, &info,
			       s->cfg->cache_time_limit);
		s->bev = NULL;
		finish(s);
		return;
	}
	s->stage = S_QUIT;
	send_line(s, s->cfg->t_quit, "QUIT");
}

/* A parked connection that did not answer RSET: connect afresh. */
static void
reuse_failed(struct smtp_sess *s)
{
	if (s->bev) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	s->reused = false;
	s->uses = 0;
	s->saw_421 = false;
	memset(&s->t_conn, 0, sizeof(s->t_conn));
	start_fresh(s);
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
		if (s->size_max >= 0 && s->esmtp && !r->probe)
			off += (size_t)snprintf(ext + off, sizeof(ext) - off,
						" SIZE=%zu", s->body_len);
		if (s->eightbit && s->esmtp && mime_has_8bit(s->body, s->body_len))
			off += (size_t)snprintf(ext + off, sizeof(ext) - off,
						" BODY=8BITMIME");
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
	char text[1200];
	size_t i;
	bool utf8 = needs_utf8(r->sender);

	for (i = 0; i < r->nrcpt; i++)
		utf8 |= needs_utf8(r->rcpt[i].addr);
	if (utf8 && !s->smtputf8) {
		snprintf(text, sizeof(text), "SMTPUTF8 is required, but was not "
			 "offered by host %s", s->peer);
		rcpt_set_open(s, DELIVER_BOUNCE, "5.6.7", text);
		goto quit;
	}
	/* RFC 6152 3: 8-bit MIME to a server without 8BITMIME, converted
	 * to 7 bit as Postfix does (unless disable_mime_output_conversion) */
	s->body = r->content;
	s->body_len = r->len;
	if (!s->eightbit && s->cfg->mime_downgrade
	    && mime_has_8bit(r->content, r->len)) {
		if (s->conv == NULL) {
			struct buf b;

			buf_init(&b, 0);
			if (mime_downgrade(r->content, r->len, &b) > 0) {
				s->conv_len = b.len;
				s->conv = buf_steal(&b);
			} else {
				buf_free(&b);
			}
		}
		if (s->conv != NULL) {
			s->body = s->conv;
			s->body_len = s->conv_len;
		}
	}
	if (s->size_max > 0 && (long long)s->body_len > s->size_max) {
		snprintf(text, sizeof(text), "message size %zu exceeds size limit "
			 "%lld of server %s", s->body_len, s->size_max, s->peer);
		rcpt_set_open(s, DELIVER_BOUNCE, "5.3.4", text);
		goto quit;
	}
	s->ncmd = r->nrcpt + (r->probe ? 1 : 2);	/* a probe: no DATA */
	s->replied = 0;
	s->stage = S_MAIL;
	if (s->pipelining)
		for (i = 0; i < s->ncmd; i++)
			send_cmd(s, i);
	else
		send_cmd(s, 0);
	return;
quit:
	end_session(s);
}

/*
 * The content (and its ".") has left: from now on the wait is for the
 * end-of-data reply, bounded by smtp_data_done_timeout (amavis-style
 * filters need minutes there) instead of smtp_data_xfer_timeout, which
 * bounds the transfer itself.
 */
static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_sess *s = arg;
	struct timeval tv;

	if (s->stage != S_DOT || s->dot_sent)
		return;
	s->dot_sent = 1;
	tv.tv_sec = (time_t)s->cfg->t_data_done;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(bev, &tv, &tv);
}

static void
send_body(struct smtp_sess *s)
{
	struct timeval tv = { (time_t)s->cfg->t_data_xfer, 0 };

	smtp_body_encode(s->body, s->body_len, bufferevent_get_output(s->bev));
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	s->stage = S_DOT;
	s->dot_sent = 0;
}

/* One transaction reply (command k of MAIL, RCPT..., DATA). */
static void
transaction_reply(struct smtp_sess *s, int code)
{
	struct smtp_req *r = s->req;
	size_t k = s->replied++;
	char dsn[SMTP_DSN_SIZE], text[SMTP_REPLY_MAX + 600];
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
		else if (code / 100 == 2) {
			s->accepted++;
			if (r->probe) {	/* verified: the outcome is the reply */
				snprintf(text, sizeof(text), "host %s said: %s",
					 s->peer, s->reply);
				rcpt_set(rc, DELIVER_SENT, dsn, text);
			}
		} else {
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
			s->dot_sent = 0;
			s->accepted = 0;
			if (s->req->lmtp)	/* no reply follows (RFC 2033 4.2) */
				goto quit;
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
			if (!s->mail_ok || (!r->probe
					    && s->replied == s->ncmd - 1
					    && s->accepted == 0))
				goto quit;
			send_cmd(s, s->replied);
		}
		s->stage = s->replied <= r->nrcpt ? S_RCPT : S_DATA;
		return;
	}
quit:
	rcpt_set_open(s, DELIVER_DEFER, "4.4.0", "no reply to the transaction");
	end_session(s);
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
		else if (n == 8 && strncasecmp(kw, "STARTTLS", 8) == 0)
			s->starttls = true;
		else if (n > 5 && strncasecmp(kw, "AUTH", 4) == 0
			 && (kw[4] == ' ' || kw[4] == '=')) {
			/* "AUTH PLAIN LOGIN" or the old "AUTH=PLAIN LOGIN" */
			size_t i = 5;
			while (i < n) {
				size_t m = 0;
				while (i + m < n && kw[i + m] != ' ')
					m++;
				if (m == 5 && strncasecmp(kw + i, "PLAIN", 5) == 0)
					s->auth_plain = true;
				if (m == 5 && strncasecmp(kw + i, "LOGIN", 5) == 0)
					s->auth_login = true;
				i += m + 1;
			}
		}
		else if (n >= 4 && strncasecmp(kw, "SIZE", 4) == 0
			 && (n == 4 || kw[4] == ' ')) {
			s->size_max = n > 5 ? strtoll(kw + 5, NULL, 10) : 0;
			if (s->size_max < 0)
				s->size_max = 0;
		}
		p = nl ? nl + 1 : NULL;
	}
}

/*
 * LMTP (RFC 2033 4.2): after the data, one reply per recipient whose RCPT
 * was accepted, in RCPT order; each decides that recipient alone.
 */
static void
lmtp_data_reply(struct smtp_sess *s, int code, const char *dsn)
{
	struct smtp_req *r = s->req;
	char text[SMTP_REPLY_MAX + 600];
	struct timeval tv = { (time_t)s->cfg->t_data_done, 0 };

	while (s->dot_next < r->nrcpt && r->rcpt[s->dot_next].text != NULL)
		s->dot_next++;
	if (s->dot_next < r->nrcpt) {
		struct smtp_rcpt *rc = &r->rcpt[s->dot_next++];

		if (code / 100 == 2) {
			rcpt_set(rc, DELIVER_SENT, dsn, s->reply);
		} else {
			said(s, "end of DATA command", text, sizeof(text));
			rcpt_set(rc, code / 100 == 5 ? DELIVER_BOUNCE
				 : DELIVER_DEFER, dsn, text);
		}
	}
	while (s->dot_next < r->nrcpt && r->rcpt[s->dot_next].text != NULL)
		s->dot_next++;
	if (s->dot_next < r->nrcpt) {	/* more replies to come */
		bufferevent_set_timeouts(s->bev, &tv, &tv);
		return;
	}
	end_session(s);
}

/* ---- STARTTLS and AUTH (SMTP only) ---- */

static void
start_auth(struct smtp_sess *s)
{
	const struct smtp_client_cfg *c = s->cfg;
	unsigned opts = s->tls_active ? c->sasl_tls_opts : c->sasl_opts;
	const char *u = s->req->sasl_user, *pw = s->req->sasl_pass;
	char text[1200];

	s->stage = S_AUTH;
	s->auth_step = 0;
	if (s->auth_plain && smtp_sasl_mech_allowed("PLAIN", opts, c->sasl_filter)) {
		size_t ul = strlen(u), pl = strlen(pw);
		unsigned char *raw = xmalloc(ul + pl + 2);
		char *b64 = xmalloc(4 * ((ul + pl + 2 + 2) / 3) + 1);

		raw[0] = '\0';
		memcpy(raw + 1, u, ul);
		raw[1 + ul] = '\0';
		memcpy(raw + 2 + ul, pw, pl);
		EVP_EncodeBlock((unsigned char *)b64, raw, (int)(ul + pl + 2));
		s->auth_step = 2;	/* the next reply ends it */
		send_line(s, s->cfg->t_helo, "AUTH PLAIN %s", b64);
		OPENSSL_cleanse(raw, ul + pl + 2);
		OPENSSL_cleanse(b64, strlen(b64));
		free(raw);
		free(b64);
		return;
	}
	if (s->auth_login && smtp_sasl_mech_allowed("LOGIN", opts, c->sasl_filter)) {
		send_line(s, s->cfg->t_helo, "AUTH LOGIN");
		return;
	}
	snprintf(text, sizeof(text), "SASL authentication failed; cannot "
		 "authenticate to server %s: no mechanism available", s->peer);
	log_write(c->syslog_name, s->svc, LOG_LVL_WARNING, "%s", text);
	conn_failed(s, false, text);
}

/* AUTH LOGIN: "334 <challenge>" asks for the user, then the password. */
static void
auth_send_b64(struct smtp_sess *s, const char *v)
{
	size_t n = strlen(v);
	char *b64 = xmalloc(4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)v, (int)n);
	send_line(s, s->cfg->t_helo, "%s", b64);
	OPENSSL_cleanse(b64, strlen(b64));
	free(b64);
}

static void
auth_reply(struct smtp_sess *s, int code)
{
	char text[SMTP_REPLY_MAX + 600];

	if (code == 235) {
		start_transaction(s);
		return;
	}
	if (code == 334 && s->auth_step < 2) {
		auth_send_b64(s, s->auth_step == 0 ? s->req->sasl_user
			      : s->req->sasl_pass);
		s->auth_step++;
		return;
	}
	if (code == 334) {	/* a server asking for more than PLAIN/LOGIN do */
		evbuffer_add(bufferevent_get_output(s->bev), "*\r\n", 3);
		s->auth_step = 3;
		return;
	}
	snprintf(text, sizeof(text), "SASL authentication failed; server %s "
		 "said: %s", s->peer, s->reply);
	log_write(s->cfg->syslog_name, s->svc, LOG_LVL_WARNING, "%s", text);
	conn_failed(s, false, text);
}

/* After EHLO (or HELO): STARTTLS, then AUTH, then the transaction. */
static void
after_ehlo(struct smtp_sess *s)
{
	const struct smtp_client_cfg *c = s->cfg;
	char text[1200];

	if (!s->req->lmtp && !s->tls_active && s->starttls
	    && c->tls_note_starttls
	    && (s->level == SMTP_TLS_NONE || c->tls_ctx == NULL))
		log_write(c->syslog_name, s->svc, LOG_LVL_INFO,
			  "Host offered STARTTLS: [%s]", s->host_name);
	if (!s->req->lmtp && !s->tls_active && s->level != SMTP_TLS_NONE
	    && c->tls_ctx != NULL && !s->tls_plain) {
		if (s->starttls) {
			s->stage = S_STARTTLS;
			send_line(s, c->t_helo, "STARTTLS");
			return;
		}
		if (s->level >= SMTP_TLS_ENCRYPT) {
			snprintf(text, sizeof(text), "TLS is required, but was not "
				 "offered by host %s", s->peer);
			tls_required_failed(s, text);
			return;
		}
	}
	if (!s->req->lmtp && s->req->sasl_user != NULL
	    && (s->auth_plain || s->auth_login)) {
		start_auth(s);
		return;
	}
	start_transaction(s);
}

/*
 * The names the server certificate must match (verify, secure): the
 * policy's match= list, else smtp_tls_verify_cert_match (hostname) or
 * smtp_tls_secure_cert_match (nexthop, dot-nexthop). Below verify no
 * name is checked: a chain that verifies is Trusted (Postfix).
 * "hostname" is the server's name (MX host), "nexthop" the next-hop
 * domain, "dot-nexthop" its subdomains; other words are literal names.
 */
static void
tls_names(struct smtp_sess *s)
{
	const char *vm = s->cfg->tls_verify_match[0]
			 ? s->cfg->tls_verify_match : "hostname";
	const char *sm = s->cfg->tls_secure_match[0]
			 ? s->cfg->tls_secure_match : "nexthop:dot-nexthop";
	const char *m = s->req->tls_policy && s->req->tls_match
			&& s->req->tls_match[0] ? s->req->tls_match
			: s->level == SMTP_TLS_SECURE ? sm : vm;
	bool first = true;
	unsigned char a[16];

	if (s->level == SMTP_TLS_FINGERPRINT)
		return;		/* match= holds fingerprints, not names */
	while (*m) {
		size_t n = strcspn(m, ":,");
		char name[300];

		if (n == 8 && strncasecmp(m, "hostname", 8) == 0)
			snprintf(name, sizeof(name), "%s", s->host_name);
		else if (n == 7 && strncasecmp(m, "nexthop", 7) == 0)
			snprintf(name, sizeof(name), "%s", s->req->host);
		else if (n == 11 && strncasecmp(m, "dot-nexthop", 11) == 0)
			snprintf(name, sizeof(name), ".%s", s->req->host);
		else
			snprintf(name, sizeof(name), "%.*s", (int)(n < 299 ? n : 299), m);
		m += n;
		if (*m)
			m++;
		if (name[0] == '\0' || strcmp(name, ".") == 0)
			continue;
		if (inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1)
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), name);
		else if (name[0] == '.' && (inet_pton(AF_INET, name + 1, a) == 1
					    || inet_pton(AF_INET6, name + 1, a) == 1))
			continue;	/* no subdomains of an address */
		else if (first)
			SSL_set1_host(s->ssl, name);
		else
			SSL_add1_host(s->ssl, name);
		first = false;
	}
}

static void
starttls_reply(struct smtp_sess *s, int code)
{
	char text[SMTP_REPLY_MAX + 600];

	if (code / 100 != 2) {
		if (s->level >= SMTP_TLS_ENCRYPT) {
			snprintf(text, sizeof(text), "TLS is required, but host %s "
				 "refused to start TLS: %s", s->peer, s->reply);
			tls_required_failed(s, text);
			return;
		}
		/* may: the session goes on in plaintext, as before STARTTLS */
		s->tls_plain = true;
		after_ehlo(s);
		return;
	}
	tls_start(s);
}

/* The TLS handshake: after STARTTLS, or at connect (wrappermode). */
static void
tls_start(struct smtp_sess *s)
{
	struct bufferevent *fb;
	struct timeval tv = { (time_t)s->cfg->t_helo, 0 };
	unsigned char a[16];
	char text[SMTP_REPLY_MAX + 600];

	s->ssl = SSL_new(s->cfg->tls_ctx);
	if (s->ssl == NULL) {
		tls_failed(s, "cannot create a TLS session");
		return;
	}
	if (inet_pton(AF_INET, s->host_name, a) != 1
	    && inet_pton(AF_INET6, s->host_name, a) != 1)
		SSL_set_tlsext_host_name(s->ssl, s->host_name);
	if (s->level == SMTP_TLS_DANE) {
		/* RFC 7672 3.2.2: DANE-TA chains must match the TLSA base
		 * domain (the server's name); DANE-EE skips name checks */
		struct errbuf derr;

		errbuf_clear(&derr);
		if (smtp_dane_apply(s->ssl, s->tlsa_base, &s->tlsa, &derr) < 0) {
			SSL_free(s->ssl);
			s->ssl = NULL;
			snprintf(text, sizeof(text), "TLS is required, but %s "
				 "(host %s)", errbuf_str(&derr), s->peer);
			tls_required_failed(s, text);
			return;
		}
		/* the TLSA base domain is the CNAME target: the server's
		 * own name is a reference identifier too (Postfix) */
		if (strcasecmp(s->tlsa_base, s->host_name) != 0)
			SSL_add1_host(s->ssl, s->host_name);
	} else if (s->level >= SMTP_TLS_VERIFY) {
		tls_names(s);
	}
	{
		const char *pv = s->req->tls_policy && s->req->tls_protocols
				 && s->req->tls_protocols[0] ? s->req->tls_protocols
				 : s->level >= SMTP_TLS_ENCRYPT
				 ? s->cfg->tls_mandatory_protocols
				 : s->cfg->tls_protocols;
		struct errbuf perr;

		errbuf_clear(&perr);	/* checked at start or when read */
		if (pv && pv[0])
			(void)smtp_tls_protocols_apply(s->ssl, pv, &perr);
	}
	{
		/* smtp_tls_(mandatory_)ciphers, checked at start */
		const char *cl = s->level >= SMTP_TLS_ENCRYPT || s->wrapped
				 ? s->cfg->tls_mandatory_cipherlist
				 : s->cfg->tls_cipherlist;

		if (cl[0] != '\0' && SSL_set_cipher_list(s->ssl, cl) != 1)
			ERR_clear_error();
	}
	fb = bufferevent_openssl_filter_new(s->base, s->bev, s->ssl,
					    BUFFEREVENT_SSL_CONNECTING,
					    BEV_OPT_CLOSE_ON_FREE);
	if (fb == NULL) {
		SSL_free(s->ssl);
		s->ssl = NULL;
		tls_failed(s, "cannot create a TLS session");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(fb, 1);
	s->bev = fb;	/* frees the socket bufferevent with it */
	s->stage = S_TLS;
	bufferevent_setcb(fb, read_cb, write_cb, event_cb, s);
	bufferevent_set_timeouts(fb, &tv, &tv);
	bufferevent_enable(fb, EV_READ | EV_WRITE);
}

static void
tls_established(struct smtp_sess *s)
{
	long vr = SSL_get_verify_result(s->ssl);
	bool verified = s->level == SMTP_TLS_FINGERPRINT
			? smtp_tls_fingerprint_match(SSL_get0_peer_certificate(s->ssl),
						     s->req->tls_match)
			: s->level == SMTP_TLS_DANE
			? smtp_dane_verified(s->ssl, NULL)
			: vr == X509_V_OK && SSL_get0_peer_certificate(s->ssl);
	/* Postfix's words: Verified (the name checked, verify and up,
	 * DANE, fingerprint), Trusted (a chain that verifies at may or
	 * encrypt), Untrusted, Anonymous (no certificate) */
	const char *trust = verified && s->level >= SMTP_TLS_VERIFY
			    ? "Verified" : verified ? "Trusted"
			    : SSL_get0_peer_certificate(s->ssl)
			    ? "Untrusted" : "Anonymous";
	struct buf d;
	char text[1200];

	buf_init(&d, 0);
	tls_describe(s->ssl, &d);
	if (s->cfg->tls_loglevel >= 1)	/* smtp_tls_loglevel */
		log_write(s->cfg->syslog_name, s->svc, LOG_LVL_INFO, "%s TLS "
			  "connection established to %s: %s", trust,
			  s->req->relay, buf_cstr(&d));
	buf_free(&d);
	if (s->level == SMTP_TLS_DANE && !verified) {
		snprintf(text, sizeof(text), "TLS is required, but certificate "
			 "verification failed for host %s: no TLSA record "
			 "matched the server certificate (%s)", s->peer,
			 X509_verify_cert_error_string(vr));
		log_write(s->cfg->syslog_name, s->svc, LOG_LVL_INFO, "%s", text);
		tls_required_failed(s, text);
		return;
	}
	if (s->level >= SMTP_TLS_VERIFY && !verified) {
		snprintf(text, sizeof(text), "Server certificate not verified "
			 "(host %s: %s)", s->peer, s->level == SMTP_TLS_FINGERPRINT
			 ? "fingerprint mismatch" : X509_verify_cert_error_string(vr));
		conn_failed(s, false, text);
		return;
	}
	s->tls_active = true;
	if (s->wrapped) {	/* implicit TLS: the greeting comes now */
		struct timeval tv = { (time_t)s->cfg->t_helo, 0 };

		s->stage = S_GREET;
		bufferevent_set_timeouts(s->bev, &tv, &tv);
		return;
	}
	/* RFC 3207 4.2: forget what was learnt before TLS, EHLO again */
	s->esmtp = s->pipelining = s->smtputf8 = s->eightbit = false;
	s->starttls = s->auth_plain = s->auth_login = false;
	s->size_max = -1;
	s->stage = S_EHLO;
	send_line(s, s->cfg->t_helo, "EHLO %s", s->cfg->helo_name);
}

static void
tls_failed(struct smtp_sess *s, const char *why)
{
	char e[256], text[1200];

	tls_error_string(e, sizeof(e));
	snprintf(text, sizeof(text), "Cannot start TLS: %s with %s%s%s", why,
		 s->peer, e[0] ? ": " : "", e);
	log_write(s->cfg->syslog_name, s->svc, LOG_LVL_INFO, "%s", text);
	if (s->level == SMTP_TLS_MAY && !s->tls_plain && !s->wrapped) {
		/* may: this host again, without STARTTLS (Postfix does too) */
		if (s->bev) {
			bufferevent_free(s->bev);
			s->bev = NULL;
		}
		s->tls_plain = true;
		try_next_target(s);
		return;
	}
	tls_required_failed(s, text);
}

static void
handle_reply(struct smtp_sess *s, int code)
{
	char dsn[SMTP_DSN_SIZE], text[SMTP_REPLY_MAX + 600];

	switch (s->stage) {
	case S_GREET:
		if (code / 100 != 2) {
			snprintf(text, sizeof(text), "host %s refused to talk "
				 "to me: %s", s->peer, s->reply);
			conn_failed(s, code / 100 == 5, text);
			return;
		}
		s->stage = S_EHLO;
		send_line(s, s->cfg->t_helo, "%s %s", s->req->lmtp ? "LHLO"
			  : "EHLO", s->cfg->helo_name);
		return;
	case S_EHLO:
		if (code / 100 == 2) {
			s->esmtp = true;
			parse_ehlo(s);
			after_ehlo(s);
			return;
		}
		if (s->req->lmtp) {	/* LMTP has no HELO to fall back to */
			snprintf(text, sizeof(text), "host %s refused to talk "
				 "to me: %s", s->peer, s->reply);
			conn_failed(s, code / 100 == 5, text);
			return;
		}
		s->stage = S_HELO;
		send_line(s, s->cfg->t_helo, "HELO %s", s->cfg->helo_name);
		return;
	case S_HELO:
		if (code / 100 != 2) {
			snprintf(text, sizeof(text), "host %s refused to talk "
				 "to me: %s", s->peer, s->reply);
			conn_failed(s, code / 100 == 5, text);
			return;
		}
		after_ehlo(s);
		return;
	case S_STARTTLS:
		starttls_reply(s, code);
		return;
	case S_AUTH:
		auth_reply(s, code);
		return;
	case S_RSET:	/* a parked connection, checked before its reuse */
		if (code / 100 == 2)
			start_transaction(s);
		else
			reuse_failed(s);
		return;
	case S_MAIL:
	case S_RCPT:
	case S_DATA:
		transaction_reply(s, code);
		return;
	case S_DOT: {
		size_t i;
		smtp_reply_dsn(s->reply, code, dsn);
		if (s->req->lmtp) {
			lmtp_data_reply(s, code, dsn);
			return;
		}
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
		end_session(s);
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
		if (code == 421)	/* the server closes the connection */
			s->saw_421 = true;
		handle_reply(s, code);
		s->reply_len = 0;
		s->reply[0] = '\0';
		/* handle_reply may have finished, moved to the next host or
		 * put TLS on the connection */
		if (s->bev != bev)
			return;
	}
bad:
	if (s->stage == S_RSET) {
		reuse_failed(s);
		return;
	}
	if (s->stage < S_MAIL) {
		snprintf(text, sizeof(text), "host %s sent a malformed reply "
			 "while %s", s->peer, stage_doing(s->stage));
		conn_failed(s, false, text);
		return;
	}
	snprintf(text, sizeof(text), "host %s sent a malformed reply "
		 "while %s", s->peer, stage_doing(s->stage));
	rcpt_set_open(s, DELIVER_DEFER, "4.4.2", text);
	finish(s);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_sess *s = arg;
	char text[1200];

	if ((what & BEV_EVENT_CONNECTED) && s->stage == S_TLS) {
		tls_established(s);
		return;
	}
	if (s->stage == S_TLS) {
		tls_failed(s, (what & BEV_EVENT_TIMEOUT) ? "timed out"
			   : "handshake failed");
		return;
	}
	if (s->stage == S_RSET) {	/* the parked connection went away */
		reuse_failed(s);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		struct timeval tv = { (time_t)s->cfg->t_helo, 0 };
		gettimeofday(&s->t_conn, NULL);
		s->t_open = s->t_conn;
		s->stage = S_GREET;
		bufferevent_set_timeouts(bev, &tv, &tv);
		bufferevent_enable(bev, EV_READ | EV_WRITE);
		if (s->cfg->tls_wrappermode && !s->req->lmtp &&
		    s->cfg->tls_ctx != NULL) {
			/* smtp_tls_wrappermode: TLS before the greeting */
			s->wrapped = true;
			tls_start(s);
		}
		return;
	}
	if (s->stage == S_CONNECT) {
		int e = EVUTIL_SOCKET_ERROR();
		snprintf(text, sizeof(text), "connect to %s: %s", s->req->relay,
			 (what & BEV_EVENT_TIMEOUT)
			 ? "Connection timed out" : strerror(e ? e : ECONNREFUSED));
		log_write(s->cfg->syslog_name, s->svc, LOG_LVL_INFO, "%s", text);
		conn_failed(s, false, text);
		return;
	}
	if (s->stage == S_QUIT) {	/* closed after QUIT: fine */
		finish(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(text, sizeof(text), "conversation with %s timed out "
			 "while %s", s->peer, stage_doing(s->stage));
	else
		snprintf(text, sizeof(text), "lost connection with %s while %s",
			 s->peer, stage_doing(s->stage));
	if (s->stage < S_MAIL) {
		conn_failed(s, false, text);
		return;
	}
	rcpt_set_open(s, DELIVER_DEFER, "4.4.2", text);
	finish(s);
}

/* ---- targets ---- */

/*
 * A socket of family af bound to smtp_bind_address (smtp_bind_address6):
 * the descriptor, -1 when no source address is set for af or the bind
 * failed without smtp_bind_address_enforce (logged; the kernel chooses),
 * -2 when it failed and is enforced (text set).
 */
static evutil_socket_t
bound_socket(struct smtp_sess *s, int af, char *text, size_t size)
{
	const char *a = af == AF_INET6 ? s->cfg->bind6 : s->cfg->bind4;
	struct sockaddr_storage ss;
	socklen_t sl;
	evutil_socket_t fd;
	int e;

	if (a == NULL || *a == '\0')
		return -1;
	memset(&ss, 0, sizeof(ss));
	if (af == AF_INET6) {
		struct sockaddr_in6 *b = (struct sockaddr_in6 *)&ss;
		b->sin6_family = AF_INET6;
		e = inet_pton(AF_INET6, a, &b->sin6_addr);
		sl = sizeof(*b);
	} else {
		struct sockaddr_in *b = (struct sockaddr_in *)&ss;
		b->sin_family = AF_INET;
		e = inet_pton(AF_INET, a, &b->sin_addr);
		sl = sizeof(*b);
	}
	fd = e == 1 ? socket(af, SOCK_STREAM, 0) : -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&ss, sl) == 0
	    && evutil_make_socket_nonblocking(fd) == 0
	    && evutil_make_socket_closeonexec(fd) == 0)
		return fd;
	e = e == 1 ? errno : EINVAL;
	if (fd >= 0)
		evutil_closesocket(fd);
	log_write(s->cfg->syslog_name, s->svc, LOG_LVL_WARNING,
		  "smtp_connect_addr: bind %s: %s", a, strerror(e));
	if (!s->cfg->bind_enforce)
		return -1;
	snprintf(text, size, "cannot bind to the source address %s (%s): %s",
		 a, af == AF_INET6 ? "smtp_bind_address6" : "smtp_bind_address",
		 strerror(e));
	return -2;
}

/* ---- DANE ---- */

/*
 * The dane levels need DNSSEC lookups (Postfix's dane_init): without
 * smtp_dns_support_level = dnssec, dane becomes may with a warning and
 * dane-only defers. false when the delivery is finished.
 */
static bool
dane_start(struct smtp_sess *s)
{
	bool only = s->level == SMTP_TLS_DANE_ONLY;
	const char *name = only ? "dane-only" : "dane";

	if (s->cfg->dns_support == SMTP_DNS_DNSSEC && s->dns != NULL
	    && !s->req->unix_sock) {
		s->dane = only ? 2 : 1;
		return true;
	}
	log_write(s->cfg->syslog_name, s->svc, LOG_LVL_WARNING, "%s: %s "
		  "configured with dnssec lookups disabled", s->req->host, name);
	if (!only) {
		s->level = SMTP_TLS_MAY;
		return true;
	}
	rcpt_set_open(s, DELIVER_DEFER, "4.7.5", "client TLS configuration "
		      "problem");
	finish(s);
	return false;
}

/* Deep copy of a TLSA result (binary data of len bytes). */
static void
tlsa_copy(struct dns_result *dst, const struct dns_result *src)
{
	size_t i;

	dns_result_free(dst);
	dst->secure = src != NULL && src->secure;
	if (src == NULL || src->n == 0)
		return;
	dst->rr = xcalloc(src->n, sizeof(*dst->rr));
	for (i = 0; i < src->n; i++) {
		dst->rr[i] = src->rr[i];
		dst->rr[i].data = xmalloc(src->rr[i].len + 1);
		memcpy(dst->rr[i].data, src->rr[i].data, src->rr[i].len + 1);
	}
	dst->n = src->n;
}

static void tlsa_cb(void *arg, enum dns_status st,
		    const struct dns_result *res, const char *why);

static void
tlsa_query(struct smtp_sess *s, const char *name)
{
	char q[300];

	snprintf(s->tlsa_base, sizeof(s->tlsa_base), "%s", name);
	snprintf(q, sizeof(q), "_%d._tcp.%s", s->port, name);
	s->stage = S_LOOKUP;
	dns_query_secure(s->dns, q, DNS_TLSA, tlsa_cb, s);
}

static void
tlsa_cb(void *arg, enum dns_status st, const struct dns_result *res,
	const char *why)
{
	struct smtp_sess *s = arg;

	/* RFC 7672 2.2.2: no (secure) TLSA RRset at the end of the CNAME
	 * chain: the server's own name */
	if (s->tlsa_fallback && (st == DNS_NOTFOUND
				 || (st == DNS_OK && !res->secure))) {
		s->tlsa_fallback = false;
		tlsa_query(s, s->tlsa_host);
		return;
	}
	s->tlsa_done = true;
	s->tlsa_st = st;
	tlsa_copy(&s->tlsa, st == DNS_OK ? res : NULL);
	if (st != DNS_OK)
		s->tlsa.secure = res != NULL && res->secure;
	try_next_target(s);
}

/*
 * The TLS level of server t under dane / dane-only, from its DNSSEC
 * status and TLSA records (looked up once per host name). true: connect
 * with s->level set; false: a TLSA lookup was started, or the server is
 * skipped with a 4.7.5 reason (the next one is being tried).
 */
static bool
dane_level(struct smtp_sess *s, struct target *t)
{
	char why[600], text[1200];
	enum smtp_dane_action a;

	if (t->secure && s->mx_secure
	    && (!s->tlsa_done || strcmp(s->tlsa_host, t->host) != 0)) {
		snprintf(s->tlsa_host, sizeof(s->tlsa_host), "%s", t->host);
		s->tlsa_done = false;
		dns_result_free(&s->tlsa);
		/* a host name that is a CNAME: its target's TLSA first */
		s->tlsa_fallback = t->rname[0] != '\0';
		tlsa_query(s, t->rname[0] ? t->rname : t->host);
		return false;
	}
	a = smtp_dane_decide(s->dane == 2, t->secure && s->mx_secure,
			     s->tlsa_st, &s->tlsa, t->secure && s->mx_secure
			     ? s->tlsa_base : t->host, s->port, why,
			     sizeof(why));
	switch (a) {
	case SMTP_DANE_VERIFY:
		s->level = SMTP_TLS_DANE;
		return true;
	case SMTP_DANE_MAY:
		s->level = SMTP_TLS_MAY;
		return true;
	case SMTP_DANE_ENCRYPT:
		s->level = SMTP_TLS_ENCRYPT;
		return true;
	case SMTP_DANE_DEFER:
	default:
		break;
	}
	log_write(s->cfg->syslog_name, s->svc, LOG_LVL_WARNING, "TLS policy "
		  "lookup for %s/%s: %s", s->req->host, t->host, why);
	snprintf(text, sizeof(text), "TLS is required, but %s", why);
	snprintf(s->req->relay, sizeof(s->req->relay), "%s[%s]:%d", t->host,
		 t->ip, s->port);
	conn_failed_dsn(s, false, "4.7.5", text);
	return false;
}

static void
try_next_target(struct smtp_sess *s)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct target *t;
	struct timeval tv = { (time_t)s->cfg->t_connect, 0 };
	evutil_socket_t fd;

	if (s->itg >= s->ntg) {
		if (s->imx < s->nmx) {
			resolve_next_mx(s);
			return;
		}
		rcpt_set_open(s, s->last_perm ? DELIVER_BOUNCE : DELIVER_DEFER,
			      s->last_perm ? "5.4.0" : s->last_dsn[0]
			      ? s->last_dsn : "4.4.1",
			      s->last_err[0] ? s->last_err
			      : "no address to connect to");
		finish(s);
		return;
	}
	t = &s->tg[s->itg];
	if (s->dane && !dane_level(s, t))
		return;		/* a TLSA lookup runs, or the server failed */
	memset(&ss, 0, sizeof(ss));
	if (s->req->unix_sock) {
		struct sockaddr_un *a = (struct sockaddr_un *)&ss;
		a->sun_family = AF_UNIX;
		snprintf(a->sun_path, sizeof(a->sun_path), "%s", t->host);
		sl = sizeof(*a);
	} else if (strchr(t->ip, ':')) {
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
	if (s->req->unix_sock) {
		snprintf(s->req->relay, sizeof(s->req->relay), "%s", t->host);
		snprintf(s->peer, sizeof(s->peer), "%s", t->host);
	} else {
		snprintf(s->req->relay, sizeof(s->req->relay), "%s[%s]:%d",
			 t->host, t->ip, s->port);
		snprintf(s->peer, sizeof(s->peer), "%s[%s]", t->host, t->ip);
	}
	snprintf(s->host_name, sizeof(s->host_name), "%s", t->host);
	s->stage = S_CONNECT;
	s->esmtp = s->pipelining = s->smtputf8 = s->eightbit = false;
	s->starttls = s->tls_active = s->auth_plain = s->auth_login = false;
	s->wrapped = false;
	s->ssl = NULL;
	s->size_max = -1;
	s->accepted = 0;
	s->dot_next = 0;
	s->mail_ok = false;
	s->reply_len = 0;
	fd = -1;
	if (!s->req->unix_sock) {
		char text[1200];

		fd = bound_socket(s, ss.ss_family, text, sizeof(text));
		if (fd == -2) {
			conn_failed(s, false, text);
			return;
		}
	}
	s->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		if (fd >= 0)
			evutil_closesocket(fd);
		conn_failed(s, false, "cannot create a socket");
		return;
	}
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&ss, (int)sl) < 0) {
		char text[1200];
		snprintf(text, sizeof(text), "connect to %s: %s", s->req->relay,
			 strerror(errno));
		log_write(s->cfg->syslog_name, s->svc, LOG_LVL_INFO, "%s", text);
		conn_failed(s, false, text);
	}
}

static void
add_target(struct smtp_sess *s, const char *host, const char *ip,
	   bool secure, const char *rname)
{
	struct target t;

	if (s->ntg >= SMTP_MAX_TARGETS)
		return;
	snprintf(t.host, sizeof(t.host), "%s", host);
	snprintf(t.ip, sizeof(t.ip), "%s", ip);
	t.secure = secure;
	snprintf(t.rname, sizeof(t.rname), "%s", rname
		 && strcasecmp(rname, host) != 0 ? rname : "");
	s->tg[s->ntg++] = t;
}

static void addr_cb(void *arg, enum dns_status st,
		    const struct dns_result *res, const char *why);

/* One address lookup of an MX host: DNSSEC-aware for DANE, the system's
 * way (hosts file first) with smtp_dns_support_level = disabled. */
static void
addr_query(struct smtp_sess *s, const char *host, enum dns_type type)
{
	if (s->dane)
		dns_query_secure(s->dns, host, type, addr_cb, s);
	else if (s->cfg->dns_support == SMTP_DNS_DISABLED)
		dns_host_addrs(s->dns, host, type == DNS_AAAA, addr_cb, s);
	else
		dns_query(s->dns, host, type, addr_cb, s);
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
			add_target(s, host, res->rr[i].data, res->secure,
				   res->cname);
	else if (st == DNS_TEMPFAIL && s->ntg == s->itg) {
		snprintf(s->last_err, sizeof(s->last_err), "Host or domain name "
			 "not found. Name service error for name=%s type=%s: "
			 "Host not found, try again", host,
			 s->cur_aaaa ? "AAAA" : "A");
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
		s->cur_aaaa = true;
		addr_query(s, host, DNS_AAAA);
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
		if (strchr(host, ':') ? !s->cfg->no_ipv6 : !s->cfg->no_ipv4)
			add_target(s, host, host, false, NULL);
		else
			snprintf(s->last_err, sizeof(s->last_err), "%s: address "
				 "family disabled by inet_protocols", host);
		s->imx++;
		try_next_target(s);
		return;
	}
	/* A, then AAAA, unless inet_protocols leaves one out */
	s->aaaa_pending = !s->cfg->no_ipv6 && !s->cfg->no_ipv4;
	s->cur_aaaa = s->cfg->no_ipv4;
	addr_query(s, host, s->cur_aaaa ? DNS_AAAA : DNS_A);
}

static void
mx_cb(void *arg, enum dns_status st, const struct dns_result *res,
      const char *why)
{
	struct smtp_sess *s = arg;
	struct dns_result sorted = { NULL, 0, false, NULL };
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
	/* DANE: a validated MX RRset, or none (the domain's own address
	 * records then decide) */
	s->mx_secure = st != DNS_OK || res->secure;
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

/* A delivery on a new connection: lookups, then connect. */
static void
start_fresh(struct smtp_sess *s)
{
	struct smtp_req *req = s->req;

	s->stage = S_LOOKUP;
	s->mx_secure = true;	/* [host]: no MX RRset to trust */
	if (req->mx && !req->lmtp && s->dns != NULL
	    && s->cfg->dns_support != SMTP_DNS_DISABLED) {
		if (s->dane)
			dns_query_secure(s->dns, req->host, DNS_MX, mx_cb, s);
		else
			dns_query(s->dns, req->host, DNS_MX, mx_cb, s);
		return;
	}
	if (req->unix_sock) {
		if (!req->lmtp || strlen(req->host) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			rcpt_set_open(s, DELIVER_DEFER, "4.3.5", "bad unix-domain "
				      "socket next hop");
			finish(s);
			return;
		}
		add_target(s, req->host, "", false, NULL);
		try_next_target(s);
		return;
	}
	snprintf(s->mx[0], sizeof(s->mx[0]), "%s", req->host);
	s->nmx = 1;
	if (s->dns == NULL) {
		unsigned char a[16];
		if (inet_pton(AF_INET, req->host, a) != 1
		    && inet_pton(AF_INET6, req->host, a) != 1) {
			rcpt_set_open(s, DELIVER_DEFER, "4.3.5", "no DNS resolver");
			finish(s);
			return;
		}
	}
	resolve_next_mx(s);
}

/* A delivery on a parked connection: RSET first (smtp_rset_timeout). */
static void
start_reuse(struct smtp_sess *s, struct bufferevent *bev,
	    const struct smtp_conn_info *info)
{
	s->bev = bev;
	s->reused = true;
	s->uses = info->uses;
	s->esmtp = info->esmtp;
	s->pipelining = info->pipelining;
	s->smtputf8 = info->smtputf8;
	s->eightbit = info->eightbit;
	s->starttls = info->starttls;
	s->tls_active = info->tls_active;
	s->auth_plain = info->auth_plain;
	s->auth_login = info->auth_login;
	s->size_max = info->size_max;
	s->t_open = info->t_open;
	snprintf(s->host_name, sizeof(s->host_name), "%s", info->host);
	snprintf(s->peer, sizeof(s->peer), "%s", info->peer);
	snprintf(s->req->relay, sizeof(s->req->relay), "%s", info->relay);
	gettimeofday(&s->t_conn, NULL);
	s->stage = S_RSET;
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, s);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	send_line(s, s->cfg->t_rset > 0 ? s->cfg->t_rset : 20, "RSET");
}

struct smtp_sess *
smtp_deliver(struct event_base *base, struct dns *dns,
	     const struct smtp_client_cfg *cfg, struct smtp_req *req,
	     smtp_done_cb *done, void *arg)
{
	struct smtp_sess *s = xcalloc(1, sizeof(*s));
	struct smtp_conn_info info;
	struct bufferevent *bev;
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
	s->port = req->port > 0 ? req->port : req->lmtp ? 24 : 25;
	s->svc = req->lmtp ? "lmtp" : "smtp";
	s->level = req->tls_policy ? req->tls_level : cfg->tls_level;
	s->body = req->content;
	s->body_len = req->len;
	gettimeofday(&s->t0, NULL);
	snprintf(req->relay, sizeof(req->relay), "none");
	req->conn_use = 0;
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
	if (!req->lmtp && (s->level == SMTP_TLS_DANE
			   || s->level == SMTP_TLS_DANE_ONLY)
	    && !dane_start(s))
		return s;
	if (req->cache_key != NULL
	    && (bev = smtp_cache_take(req->cache_key, &info)) != NULL) {
		start_reuse(s, bev, &info);
		return s;
	}
	start_fresh(s);
	return s;
}
