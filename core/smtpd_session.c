/*
 * smtpd_session.c - one SMTP server session (RFC 5321) on the event loop:
 * reads command lines, runs the state machine (HELO/EHLO, MAIL, RCPT, DATA,
 * BDAT, RSET, NOOP, QUIT, VRFY, HELP), receives message content into the
 * transaction, and hands the finished message to smtpd_commit.c, which
 * makes it durable off the loop before the 250 reply.
 * Pipelined commands wait in the input buffer while a reply is pending, so
 * replies always come out in command order.
 * Behind a load balancer the listener has read the PROXY header already
 * (smtpd_listener.c): the address given here is the real client's.
 * At facteurd stop, past facteur_shutdown_timeout, sessions get a 421.
 * Must not: block (lookups that may block and all disk work run on
 * workers), let client input grow a buffer past its limit, or free a
 * session while a worker still holds it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <sodium.h>

#include "auth/passdb.h"
#include "auth/pwscheme.h"
#include "auth/sasl.h"
#include "auth/sasl_exchange.h"
#include "auth/throttle.h"
#include "core/addr.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/milter.h"
#include "core/netlist.h"
#include "core/queue.h"
#include "core/smtpd_ccert.h"
#include "core/smtpd_cmd.h"
#include "core/smtpd_commit.h"
#include "core/smtpd_data_check.h"
#include "core/smtpd_limits.h"
#include "core/smtpd_listener.h"
#include "core/smtpd_notify.h"
#include "core/smtpd_peername.h"
#include "core/smtpd_knobs.h"
#include "core/smtpd_reply.h"
#include "core/smtpd_session.h"
#include "core/soft_bounce.h"
#include "core/tls.h"
#include "core/worker.h"

#define SVC "smtpd"
/* Input kept while a reply is pending (pipelining), beyond one line. */
#define SESSION_INPUT_MAX (64 * 1024)
/* Content handed over per callback when a data line has no end yet. */
#define DATA_CHUNK_MAX (64 * 1024)

static void session_process(struct smtpd_session *s);
static void session_close(struct smtpd_session *s);
static const char *state_name(const struct smtpd_session *s);
static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static const char *
sess_name(const struct smtpd_session *s)
{
	return s->l->s.syslog_name;
}

/* soft_bounce = yes: 5xx replies go out as 4xx (core/soft_bounce.h). */
static void
notify_text(struct smtpd_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smtpd_notify_vreply(s, fmt, ap);
	va_end(ap);
}

static void
reply_soft(struct smtpd_session *s, struct evbuffer *out, const char *fmt,
	   va_list ap)
{
	char *text = NULL;

	if (vasprintf(&text, fmt, ap) < 0)
		return;
	soft_bounce_reply(text);
	notify_text(s, "%s", text);	/* notify_classes transcript */
	evbuffer_add(out, text, strlen(text));
	evbuffer_add(out, "\r\n", 2);
	free(text);
}

void
smtpd_session_reply(struct smtpd_session *s, const char *fmt, ...)
{
	struct evbuffer *out;
	va_list ap;

	if (s->bev == NULL)
		return;
	out = bufferevent_get_output(s->bev);
	va_start(ap, fmt);
	if (smtpd_reply_footer_on(s)) {
		smtpd_reply_vsend(s, fmt, ap);	/* smtpd_reject_footer */
		va_end(ap);
		return;
	}
	if (s->l->s.soft_bounce) {
		reply_soft(s, out, fmt, ap);
		va_end(ap);
		return;
	}
	smtpd_notify_vreply(s, fmt, ap);	/* notify_classes transcript */
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* A 4xx/5xx reply: counts towards the error limits. */
static void
reply_error(struct smtpd_session *s, const char *fmt, ...)
{
	struct evbuffer *out;
	va_list ap;

	s->errors++;
	if (s->bev == NULL)
		return;
	out = bufferevent_get_output(s->bev);
	va_start(ap, fmt);
	if (smtpd_reply_footer_on(s)) {
		smtpd_reply_vsend(s, fmt, ap);	/* smtpd_reject_footer */
		va_end(ap);
		return;
	}
	if (s->l->s.soft_bounce) {
		reply_soft(s, out, fmt, ap);
		va_end(ap);
		return;
	}
	smtpd_notify_vreply(s, fmt, ap);	/* notify_classes transcript */
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static void
count_cmd(struct smtpd_session *s, enum smtpd_verb v, int ok)
{
	if ((unsigned)v < SMTPD_VERB_MAX) {
		s->cmd_total[v]++;
		if (ok)
			s->cmd_ok[v]++;
	}
}

/* ---- transaction ---- */

void
smtpd_txn_free(struct smtpd_txn **tp)
{
	struct smtpd_txn *t = *tp;

	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrcpt; i++) {
		free(t->rcpt[i].orig);
		free(t->rcpt[i].orcpt);
		resolve_result_free(&t->rcpt[i].res);
	}
	free(t->rcpt);
	free(t->sender);
	free(t->envid);
	free(t->ret);
	free(t->msgid);
	buf_free(&t->content);
	smtpd_check_actions_free(&t->act);
	strlist_free(&t->milter_rcpts);
	strlist_free(&t->milter_headers);
	free(t);
	*tp = NULL;
}

static void
txn_reset(struct smtpd_session *s)
{
	if (s->tx != NULL)
		milter_abort(s);	/* the milters forget the message */
	smtpd_txn_free(&s->tx);
	s->state = SMTPD_S_CMD;
}

/* ---- closing ---- */

/* Frees the bufferevent, the TLS state and the socket. */
static void
drop_conn(struct smtpd_session *s)
{
	if (s->bev != NULL) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	if (s->ssl != NULL) {
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
}

static void
session_free(struct smtpd_session *s)
{
	struct smtpd_listener *l = s->l;
	struct buf stats;
	static const char *const names[SMTPD_VERB_MAX] = {
		[SMTPD_HELO] = "helo", [SMTPD_EHLO] = "ehlo",
		[SMTPD_MAIL] = "mail", [SMTPD_RCPT] = "rcpt",
		[SMTPD_DATA] = "data", [SMTPD_BDAT] = "bdat",
		[SMTPD_RSET] = "rset", [SMTPD_NOOP] = "noop",
		[SMTPD_QUIT] = "quit", [SMTPD_VRFY] = "vrfy",
		[SMTPD_EXPN] = "expn", [SMTPD_HELP] = "help",
		[SMTPD_STARTTLS] = "starttls", [SMTPD_AUTH] = "auth",
		[SMTPD_ETRN] = "etrn", [SMTPD_UNKNOWN] = "unknown",
	};
	/* Postfix's command table order. */
	static const enum smtpd_verb order[] = {
		SMTPD_HELO, SMTPD_EHLO, SMTPD_STARTTLS, SMTPD_AUTH, SMTPD_MAIL,
		SMTPD_RCPT, SMTPD_DATA, SMTPD_BDAT, SMTPD_RSET, SMTPD_NOOP,
		SMTPD_VRFY, SMTPD_ETRN, SMTPD_QUIT, SMTPD_EXPN, SMTPD_HELP,
	};
	unsigned total = 0, total_ok = 0;

	milter_session_free(s);		/* QUIT to the milters */
	/* notify_classes: the postmaster notice first (the session is kept,
	 * without its connection, until it is queued; then back here) */
	if (s->notify != NULL) {
		drop_conn(s);
		if (smtpd_notify_end(s, session_free))
			return;
	}
	/* Postfix's disconnect statistics: "ehlo=1 mail=1 rcpt=0/1 ..." */
	buf_init(&stats, 0);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		unsigned v = order[i];

		if (s->cmd_total[v] == 0 || names[v] == NULL)
			continue;
		if (s->cmd_ok[v] == s->cmd_total[v])
			buf_printf(&stats, " %s=%u", names[v], s->cmd_total[v]);
		else
			buf_printf(&stats, " %s=%u/%u", names[v], s->cmd_ok[v],
				   s->cmd_total[v]);
		total += s->cmd_total[v];
		total_ok += s->cmd_ok[v];
	}
	if (s->cmd_total[SMTPD_UNKNOWN]) {
		buf_printf(&stats, " unknown=0/%u", s->cmd_total[SMTPD_UNKNOWN]);
		total += s->cmd_total[SMTPD_UNKNOWN];
	}
	if (total_ok == total)
		buf_printf(&stats, " commands=%u", total);
	else
		buf_printf(&stats, " commands=%u/%u", total_ok, total);
	if (s->greeted)
		log_write(sess_name(s), SVC, LOG_LVL_INFO, "disconnect from "
			  "%s[%s]%s", s->client_name, s->client_addr,
			  buf_cstr(&stats));
	buf_free(&stats);

	drop_conn(s);
	if (s->timer)
		event_free(s->timer);
	smtpd_txn_free(&s->tx);
	free(s->helo);
	free(s->bdat_reject);
	free(s->tls_info);
	smtpd_ccert_free(&s->ccert);
	free(s->sasl_username);
	sasl_exchange_free(&s->auth_ex);
	free(s->auth_reply);
	smtpd_notify_free(s);
	if (s->auth_timer)
		event_free(s->auth_timer);
	smtpd_limits_disconnect(s);
	smtpd_peername_release(s);
	smtpd_listener_session_gone(l, s);	/* may free a retired l */
	free(s);
}

/* Stops reading; frees the session once the output is flushed and no
 * worker holds it. */
static void
session_close(struct smtpd_session *s)
{
	s->closing = 1;
	if (s->bev != NULL) {
		bufferevent_disable(s->bev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
			return;		/* write callback finishes the job */
	}
	if (s->busy)
		return;			/* the worker's done callback finishes */
	session_free(s);
}

static void
session_abort(struct smtpd_session *s)
{
	/* The client is gone: drop the connection now, keep the session
	 * object while a worker holds it. */
	drop_conn(s);
	s->closing = 1;
	if (!s->busy)
		session_free(s);
}

/* ---- async completion ---- */

void
smtpd_session_resume(struct smtpd_session *s)
{
	if (s->milter_pending)
		return;		/* a milter step ends it (core/milter.c) */
	s->busy = 0;
	if (s->closing || s->closing_after_reply) {
		session_close(s);
		return;
	}
	if (s->l->srv->shutting_down) {
		smtpd_session_shutdown(s);
		return;
	}
	if (s->errors >= s->l->s.smtpd_hard_error_limit) {
		smtpd_session_reply(s, "421 4.7.0 %s Error: too many errors",
				    s->l->s.myhostname);
		/* Postfix's words (fail2ban's postfix filter matches them) */
		log_write(sess_name(s), SVC, LOG_LVL_INFO,
			  "too many errors after %s from %s[%s]", state_name(s),
			  s->client_name, s->client_addr);
		session_close(s);
		return;
	}
	bufferevent_enable(s->bev, EV_READ);
	session_process(s);
}

static void
sleep_done(evutil_socket_t fd, short what, void *arg)
{
	smtpd_session_resume(arg);
}

/*
 * Once the client made smtpd_soft_error_limit errors (without delivering
 * mail since), every reply waits smtpd_error_sleep_time, as Postfix's.
 */
static void
maybe_tarpit(struct smtpd_session *s)
{
	struct timeval tv;

	if (s->busy || s->closing || s->errors < s->l->s.smtpd_soft_error_limit ||
	    s->l->s.smtpd_error_sleep_time <= 0)
		return;
	if (s->timer == NULL)
		s->timer = evtimer_new(s->l->srv->base, sleep_done, s);
	tv.tv_sec = (time_t)s->l->s.smtpd_error_sleep_time;
	tv.tv_usec = 0;
	s->busy = 1;
	evtimer_add(s->timer, &tv);
}

/* ---- commands ---- */

static void helo_accept(struct smtpd_session *s, const char *name, int ehlo);
static void helo_reply(struct smtpd_session *s, int ehlo);
static void helo_milter_done(struct smtpd_session *s, const char *reply,
			     void *arg);
static void mail_accept(struct smtpd_session *s);

/* smtpd_delay_reject = no: the HELO name passed smtpd_helo_restrictions? */
static void
helo_checked(struct smtpd_session *s, int refused, const char *reply, void *arg)
{
	char *name = arg;
	int ehlo = name[0] == 'E';

	if (refused) {
		reply_error(s, "%s", reply);
		count_cmd(s, ehlo ? SMTPD_EHLO : SMTPD_HELO, 0);
	} else
		helo_accept(s, name + 1, ehlo);
	free(name);
}

static void
do_helo(struct smtpd_session *s, const struct smtpd_cmd *c, size_t alen,
	int ehlo)
{
	const char *reply;
	char *name;

	if (smtpd_cmd_helo(c->arg, alen, &reply) < 0) {
		reply_error(s, "501 5.5.4 Syntax: %s hostname",
			    ehlo ? "EHLO" : "HELO");
		count_cmd(s, c->verb, 0);
		return;
	}
	name = xstrndup(c->arg, alen < 255 ? alen : 255);
	if (!smtpd_check_delay_reject(&s->l->checks)) {
		/* "E" or "H" + name: the continuation's argument */
		char *arg = xasprintf("%c%s", ehlo ? 'E' : 'H', name);

		s->esmtp = ehlo;
		smtpd_stage_check(s, SMTPD_STAGE_HELO, name, helo_checked, arg);
		free(name);
		return;
	}
	helo_accept(s, name, ehlo);
	free(name);
}

static void
helo_accept(struct smtpd_session *s, const char *name, int ehlo)
{
	free(s->helo);
	s->helo = xstrdup(name);
	s->esmtp = ehlo;
	txn_reset(s);
	/* smtpd_milters see the name first (core/milter.c) */
	if (milter_helo(s, helo_milter_done, (void *)(intptr_t)ehlo))
		return;
	helo_reply(s, ehlo);
}

static void
helo_reply(struct smtpd_session *s, int ehlo)
{
	count_cmd(s, ehlo ? SMTPD_EHLO : SMTPD_HELO, 1);
	if (ehlo && !smtpd_reply_ehlo(s))	/* without discarded keywords */
		s->closing_after_reply = 1;	/* 421: lookup failure */
	else if (!ehlo)
		smtpd_session_reply(s, "250 %s", s->l->s.myhostname);
}

static void
helo_milter_done(struct smtpd_session *s, const char *reply, void *arg)
{
	int ehlo = (int)(intptr_t)arg;

	if (s->bev == NULL || s->closing)
		return;		/* the client is gone */
	if (reply != NULL) {
		reply_error(s, "%s", reply);
		count_cmd(s, ehlo ? SMTPD_EHLO : SMTPD_HELO, 0);
		return;
	}
	helo_reply(s, ehlo);
}

static void
mail_checked(struct smtpd_session *s, int refused, const char *reply, void *arg)
{
	(void)arg;
	if (refused) {
		reply_error(s, "%s", reply);
		txn_reset(s);
		count_cmd(s, SMTPD_MAIL, 0);
		return;
	}
	mail_accept(s);
}

static void
mail_milter_done(struct smtpd_session *s, const char *reply, void *arg)
{
	(void)arg;
	if (s->bev == NULL || s->closing)
		return;		/* the client is gone */
	if (reply != NULL) {
		reply_error(s, "%s", reply);
		txn_reset(s);
		count_cmd(s, SMTPD_MAIL, 0);
		return;
	}
	count_cmd(s, SMTPD_MAIL, 1);
	smtpd_session_reply(s, "250 2.1.0 Ok");
}

/* The sender passed the restrictions: the milters, then 250. */
static void
mail_accept(struct smtpd_session *s)
{
	if (milter_mail(s, mail_milter_done, NULL))
		return;
	count_cmd(s, SMTPD_MAIL, 1);
	smtpd_session_reply(s, "250 2.1.0 Ok");
}

static void
do_mail(struct smtpd_session *s, const struct smtpd_cmd *c, size_t alen)
{
	struct smtpd_mail_args m;
	const char *reply;
	char why[256];
	const struct settings *st = &s->l->s;

	if (s->helo == NULL && st->smtpd_helo_required) {
		reply_error(s, "503 5.5.1 Error: send HELO/EHLO first");
		goto bad;
	}
	if (s->tx != NULL) {
		reply_error(s, "503 5.5.1 Error: nested MAIL command");
		goto bad;
	}
	if (smtpd_limits_mail(s, why, sizeof(why)) < 0) {
		reply_error(s, "%s", why);
		goto bad;
	}
	memset(&m, 0, sizeof(m));
	if (smtpd_cmd_mail(c->arg, alen, st->strict_rfc821_envelopes, &m,
			   &reply) < 0) {
		reply_error(s, "%s", reply);
		goto bad;
	}
	if ((m.ret || m.envid) && (s->ehlo_discard & SMTPD_EHLO_DSN)) {
		/* smtpd_discard_ehlo_keywords = dsn, as Postfix */
		reply_error(s, "501 5.7.1 DSN support is disabled");
		smtpd_mail_args_free(&m);
		goto bad;
	}
	if (st->message_size_limit > 0 && m.size > st->message_size_limit) {
		reply_error(s, "552 5.3.4 Message size exceeds fixed limit");
		smtpd_mail_args_free(&m);
		goto bad;
	}
	if (m.addr.utf8 && !m.smtputf8) {
		reply_error(s, "553 5.6.7 Must declare SMTPUTF8 to send "
			    "unicode address");
		smtpd_mail_args_free(&m);
		goto bad;
	}
	s->tx = xcalloc(1, sizeof(*s->tx));
	s->tx->sender = addr_key(&m.addr);
	s->tx->smtputf8 = m.smtputf8;
	s->tx->body = m.body;
	s->tx->declared_size = m.size;
	s->tx->envid = m.envid;
	s->tx->ret = m.ret;
	m.envid = m.ret = NULL;
	smtpd_mail_args_free(&m);
	if (smtpd_limits_user_mail(s, why, sizeof(why)) < 0) {
		reply_error(s, "%s", why);
		txn_reset(s);
		goto bad;
	}
	if (!smtpd_check_delay_reject(&s->l->checks)) {
		/* smtpd_sender_restrictions now (smtpd_delay_reject = no) */
		smtpd_stage_check(s, SMTPD_STAGE_SENDER, NULL, mail_checked, NULL);
		return;
	}
	mail_accept(s);
	return;
bad:
	count_cmd(s, c->verb, 0);
}

static void
do_rcpt(struct smtpd_session *s, const struct smtpd_cmd *c, size_t alen)
{
	struct smtpd_rcpt_args r;
	const char *reply;
	char why[256];
	const struct settings *st = &s->l->s;

	if (s->tx == NULL) {
		reply_error(s, "503 5.5.1 Error: need MAIL command");
		goto bad;
	}
	if ((long long)s->tx->nrcpt >= st->smtpd_recipient_limit) {
		reply_error(s, "452 4.5.3 Error: too many recipients");
		goto bad;
	}
	if (smtpd_limits_rcpt(s, why, sizeof(why)) < 0) {
		reply_error(s, "%s", why);
		goto bad;
	}
	memset(&r, 0, sizeof(r));
	if (smtpd_cmd_rcpt(c->arg, alen, st->strict_rfc821_envelopes,
			   s->tx->smtputf8, &r, &reply) < 0) {
		reply_error(s, "%s", reply);
		goto bad;
	}
	if ((r.notify || r.orcpt) && (s->ehlo_discard & SMTPD_EHLO_DSN)) {
		/* smtpd_discard_ehlo_keywords = dsn, as Postfix */
		reply_error(s, "501 5.7.1 DSN support is disabled");
		smtpd_rcpt_args_free(&r);
		goto bad;
	}
	/* The lookup may go to a worker; the reply comes from rcpt_done. */
	smtpd_rcpt_check(s, &r);
	return;
bad:
	count_cmd(s, c->verb, 0);
}

/* A recipient the restrictions accepted, held while the milters look. */
struct rcpt_hold {
	struct smtpd_rcpt_args r;
	struct resolve_result  res;
};

static void rcpt_finish_now(struct smtpd_session *s, struct smtpd_rcpt_args *r,
			    struct resolve_result *res, const char *reply,
			    int ok);

static void
rcpt_milter_done(struct smtpd_session *s, const char *reply, void *arg)
{
	struct rcpt_hold *h = arg;

	if (s->bev == NULL || s->closing) {	/* the client is gone */
		smtpd_rcpt_args_free(&h->r);
		resolve_result_free(&h->res);
		free(h);
		return;
	}
	rcpt_finish_now(s, &h->r, &h->res, reply, reply == NULL);
	free(h);
}

void
smtpd_rcpt_finish(struct smtpd_session *s, struct smtpd_rcpt_args *r,
		  struct resolve_result *res, const char *reply, int ok)
{
	if (ok && s->milter != NULL && s->tx != NULL) {
		struct rcpt_hold *h = xcalloc(1, sizeof(*h));
		char *key = addr_key(&r->addr);
		int taken;

		h->r = *r;
		h->res = *res;
		taken = milter_rcpt(s, key, rcpt_milter_done, h);
		free(key);
		if (taken) {
			memset(r, 0, sizeof(*r));
			memset(res, 0, sizeof(*res));
			return;
		}
		free(h);
	}
	rcpt_finish_now(s, r, res, reply, ok);
}

static void
rcpt_finish_now(struct smtpd_session *s, struct smtpd_rcpt_args *r,
		struct resolve_result *res, const char *reply, int ok)
{
	struct smtpd_txn *t = s->tx;

	count_cmd(s, SMTPD_RCPT, ok);
	if (!ok) {
		reply_error(s, "%s", reply);
		resolve_result_free(res);
		smtpd_rcpt_args_free(r);
		return;
	}
	if (t->nrcpt == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 4;
		t->rcpt = xrealloc(t->rcpt, t->cap * sizeof(*t->rcpt));
	}
	t->rcpt[t->nrcpt].orig = addr_key(&r->addr);
	t->rcpt[t->nrcpt].orcpt = r->orcpt;
	t->rcpt[t->nrcpt].notify = r->notify;
	t->rcpt[t->nrcpt].res = *res;
	r->orcpt = NULL;
	memset(res, 0, sizeof(*res));
	t->nrcpt++;
	if (t->id[0] == '\0') {
		gettimeofday(&t->arrival, NULL);
		queue_id_new(t->id);
		if (s->sasl_username != NULL)
			log_write(sess_name(s), SVC, LOG_LVL_INFO,
				  "%s: client=%s[%s], sasl_method=%s, "
				  "sasl_username=%s", t->id, s->client_name,
				  s->client_addr, s->sasl_method, s->sasl_username);
		else
			log_write(sess_name(s), SVC, LOG_LVL_INFO,
				  "%s: client=%s[%s]", t->id, s->client_name,
				  s->client_addr);
	}
	smtpd_rcpt_args_free(r);
	smtpd_session_reply(s, "250 2.1.5 Ok");
}

/* Received: header in Postfix's layout, with LF line ends. */
static void
add_received(struct smtpd_session *s)
{
	struct smtpd_txn *t = s->tx;
	char date[64];
	struct tm tm;
	time_t now = time(NULL);
	const char *proto;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm);
	/* RFC 3848 protocol names: S for TLS, A for SASL. */
	proto = t->smtputf8 ? "UTF8SMTP" : s->esmtp ? "ESMTP" : "SMTP";
	/* RFC 5321 address literal: IPv6 addresses carry the "IPv6:" tag. */
	buf_printf(&t->content, "Received: from %s (%s [%s%s])\n",
		   s->helo ? s->helo : s->client_name, s->client_name,
		   strchr(s->client_addr, ':') != NULL ? "IPv6:" : "",
		   s->client_addr);
	if (s->tls_info != NULL && s->l->s.smtpd_tls_received_header) {
		struct buf cc;

		buf_init(&cc, 0);
		smtpd_ccert_received(s->ccert, tls_server_ccert_asked(&s->l->s,
				     s->l->tls_level), &cc);
		buf_printf(&t->content, "\t(using %s)\n\t%s\n", s->tls_info,
			   buf_cstr(&cc));
		buf_free(&cc);
	}
	if (s->sasl_username != NULL && s->l->s.smtpd_sasl_authenticated_header)
		buf_printf(&t->content, "\t(Authenticated sender: %s)\n",
			   s->sasl_username);
	buf_printf(&t->content, "\tby %s (%s) with %s%s%s id %s",
		   s->l->s.myhostname, s->l->s.mail_name, proto,
		   s->ssl ? "S" : "", s->sasl_authenticated ? "A" : "", t->id);
	if (t->nrcpt == 1)
		buf_printf(&t->content, "\n\tfor <%s>; %s\n", t->rcpt[0].orig,
			   date);
	else
		buf_printf(&t->content, "; %s\n", date);
	t->received_len = t->content.len;
}

static void
data_begin(struct smtpd_session *s)
{
	struct smtpd_txn *t = s->tx;
	size_t max = (size_t)s->l->s.message_size_limit;

	/* Room for our Received header on top of the limit. */
	buf_init(&t->content, max ? max + 4096 : 0);
	add_received(s);
	t->at_line_start = 1;
	t->in_header = 1;
	t->prev_crlf = 1;
}

/* DATA passed smtpd_data_restrictions: the content may come. */
static void
data_milter_done(struct smtpd_session *s, const char *reply, void *arg)
{
	if (s->bev == NULL || s->closing)
		return;		/* the client is gone */
	if (reply != NULL) {
		if (arg != NULL) {	/* BDAT: the chunk is read, then this */
			free(s->bdat_reject);
			s->bdat_reject = xstrdup(reply);
			return;
		}
		reply_error(s, "%s", reply);
		count_cmd(s, SMTPD_DATA, 0);
		return;
	}
	if (arg != NULL) {
		s->tx->bdat = 1;
		data_begin(s);
		return;
	}
	data_begin(s);
	s->state = SMTPD_S_DATA;
	smtpd_session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void
data_go(struct smtpd_session *s)
{
	if (milter_data(s, data_milter_done, NULL))
		return;		/* the milters first (core/milter.c) */
	data_begin(s);
	s->state = SMTPD_S_DATA;
	/* counted at the end of the message */
	smtpd_session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void
data_refuse(struct smtpd_session *s, const char *reply)
{
	reply_error(s, "%s", reply);
	count_cmd(s, SMTPD_DATA, 0);
}

/* The first BDAT passed smtpd_data_restrictions: keep the content. */
static void
bdat_go(struct smtpd_session *s)
{
	if (milter_data(s, data_milter_done, s))
		return;		/* the milters first (core/milter.c) */
	s->tx->bdat = 1;
	data_begin(s);
}

/* Refused: the chunk is read and discarded, then this is the reply. */
static void
bdat_refuse(struct smtpd_session *s, const char *reply)
{
	free(s->bdat_reject);
	s->bdat_reject = xstrdup(reply);
}

static void
do_data(struct smtpd_session *s, const struct smtpd_cmd *c, size_t alen)
{
	if (s->tx == NULL) {
		reply_error(s, "503 5.5.1 Error: need MAIL command");
		goto bad;
	}
	if (s->tx->nrcpt == 0) {
		reply_error(s, "503 5.5.1 Error: need RCPT command");
		goto bad;
	}
	if (s->tx->bdat) {
		reply_error(s, "503 5.5.1 Error: DATA after BDAT");
		goto bad;
	}
	if (alen > 0) {
		reply_error(s, "501 5.5.4 Syntax: DATA");
		goto bad;
	}
	/* smtpd_data_restrictions first; data_go sends the 354. */
	smtpd_data_check(s, data_go, data_refuse);
	return;
bad:
	count_cmd(s, c->verb, 0);
}

static void
do_bdat(struct smtpd_session *s, const struct smtpd_cmd *c, size_t alen)
{
	struct smtpd_bdat_args b;
	const char *reply;

	if (s->ehlo_discard & SMTPD_EHLO_CHUNKING) {
		/* smtpd_discard_ehlo_keywords = chunking: refused as Postfix
		 * does; the chunk that follows cannot be read as commands */
		reply_error(s, "521 5.5.1 Error: command not implemented");
		count_cmd(s, c->verb, 0);
		s->closing_after_reply = 1;
		return;
	}
	if (smtpd_cmd_bdat(c->arg, alen, &b, &reply) < 0) {
		/* Without a valid size the chunk cannot be skipped. */
		reply_error(s, "%s", reply);
		count_cmd(s, c->verb, 0);
		s->closing_after_reply = 1;
		return;
	}
	s->bdat_remaining = b.size;
	s->bdat_chunk = b.size;
	s->bdat_last = b.last;
	if (s->tx == NULL || s->tx->nrcpt == 0) {
		/* RFC 3030: the chunk is read and discarded all the same. */
		free(s->bdat_reject);
		s->bdat_reject = xstrdup(s->tx == NULL
		    ? "503 5.5.1 Error: need MAIL command"
		    : "503 5.5.1 Error: need RCPT command");
		s->state = SMTPD_S_BDAT;
		count_cmd(s, c->verb, 0);
		return;
	}
	xfree(&s->bdat_reject);
	s->state = SMTPD_S_BDAT;
	count_cmd(s, c->verb, 1);
	s->tx->bdat_started = 1;
	if (!s->tx->bdat) {
		/* smtpd_data_restrictions decide whether this content is kept;
		 * the chunk waits in the input buffer meanwhile. */
		smtpd_data_check(s, bdat_go, bdat_refuse);
	}
}

static void
do_vrfy(struct smtpd_session *s, const struct smtpd_cmd *c, size_t alen)
{
	struct smtpd_rcpt_args r;
	const char *reply;

	if (s->l->s.disable_vrfy_command) {
		reply_error(s, "502 5.5.1 VRFY command is disabled");
		count_cmd(s, c->verb, 0);
		return;
	}
	if (alen == 0) {
		reply_error(s, "501 5.5.4 Syntax: VRFY address");
		count_cmd(s, c->verb, 0);
		return;
	}
	memset(&r, 0, sizeof(r));
	if (addr_parse_path(c->arg, alen, ADDR_P_ALLOW_NODOM, &r.addr, &reply,
			    &reply) < 0) {
		reply_error(s, "501 5.1.3 Bad recipient address syntax");
		count_cmd(s, c->verb, 0);
		return;
	}
	r.vrfy_arg = xstrndup(c->arg, alen);
	smtpd_vrfy_check(s, &r);
}

/* RFC 3207. The switch itself waits until the 220 has left (on_write). */
static void
do_starttls(struct smtpd_session *s, const struct smtpd_cmd *c, size_t alen)
{
	char why[256];

	if (s->l->tls == NULL) {
		reply_error(s, "502 5.5.1 Error: command not implemented");
		goto bad;
	}
	if (s->ssl != NULL) {
		reply_error(s, "554 5.5.1 Error: TLS already active");
		goto bad;
	}
	if (alen > 0) {
		reply_error(s, "501 5.5.4 Syntax: STARTTLS");
		goto bad;
	}
	if (s->tx != NULL) {
		reply_error(s, "503 5.5.1 Error: MAIL transaction in progress");
		goto bad;
	}
	if (smtpd_limits_starttls(s, why, sizeof(why)) < 0) {
		reply_error(s, "%s", why);
		goto bad;
	}
	count_cmd(s, c->verb, 1);
	smtpd_session_reply(s, "220 2.0.0 Ready to start TLS");
	s->tls_pending = 1;
	s->busy = 1;
	bufferevent_disable(s->bev, EV_READ);
	return;
bad:
	count_cmd(s, c->verb, 0);
}

/*
 * After "220 Ready to start TLS" is flushed: everything the client sent
 * after STARTTLS in plaintext is thrown away (it must not be read as if
 * it came inside TLS), and all knowledge from before TLS is forgotten.
 */
static void
starttls_switch(struct smtpd_session *s)
{
	struct bufferevent *old = s->bev;
	size_t junk = evbuffer_get_length(bufferevent_get_input(old));
	struct timeval tv;

	s->tls_pending = 0;
	if (junk > 0)
		log_write(sess_name(s), SVC, LOG_LVL_WARNING,
			  "%s[%s]: discarding %zu byte(s) of input pipelined "
			  "after STARTTLS", s->client_name, s->client_addr, junk);
	bufferevent_free(old);
	s->bev = NULL;
	free(s->helo);
	s->helo = NULL;
	s->esmtp = 0;
	s->sasl_authenticated = 0;
	xfree(&s->sasl_username);
	txn_reset(s);
	if ((s->ssl = tls_server_ssl(s->l->tls)) == NULL ||
	    (s->bev = bufferevent_openssl_socket_new(s->l->srv->base, s->fd,
						     s->ssl,
						     BUFFEREVENT_SSL_ACCEPTING,
						     0)) == NULL) {
		char e[256];

		log_write(sess_name(s), SVC, LOG_LVL_WARNING,
			  "cannot start TLS for %s[%s]: %s", s->client_name,
			  s->client_addr, tls_error_string(e, sizeof(e)));
		s->closing = 1;
		s->busy = 0;
		session_free(s);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SESSION_INPUT_MAX +
				 (size_t)s->l->s.line_length_limit);
	tv.tv_sec = (time_t)s->l->s.smtpd_timeout;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	s->busy = 0;
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* ---- AUTH (RFC 4954); the exchange itself is auth/sasl_exchange.c ---- */

struct auth_job {
	struct smtpd_session *s;
	struct sasl_exchange *ex;
};

static void
auth_reply_now(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_session *s = arg;

	if (s->auth_reply != NULL) {
		smtpd_session_reply(s, "%s", s->auth_reply);
		xfree(&s->auth_reply);
	}
	smtpd_session_resume(s);
}

/*
 * The end of an AUTH exchange. async: called from the worker's done
 * callback (the session is busy and must be resumed); otherwise from the
 * command loop, which goes on by itself unless a delay makes us busy.
 */
static void
auth_finish(struct smtpd_session *s, int result, const char *user,
	    const char *why, int async)
{
	const char *mech = sasl_mech_name((enum sasl_mech)s->auth_mech);
	unsigned delay = 0;

	s->state = SMTPD_S_CMD;
	if (result > 0) {
		s->sasl_authenticated = 1;
		free(s->sasl_username);
		s->sasl_username = xstrdup(user);
		s->sasl_method = mech;
		count_cmd(s, SMTPD_AUTH, 1);
		/* The user's own sending limits; a blocking table answers on
		 * a worker, and smtpd_limits then sends the 235 and resumes. */
		if (smtpd_limits_user_login(s, "235 2.7.0 Authentication "
					    "successful"))
			return;
		smtpd_session_reply(s, "235 2.7.0 Authentication successful");
		if (async)
			smtpd_session_resume(s);
		return;
	}
	count_cmd(s, SMTPD_AUTH, 0);
	s->errors++;
	if (result < 0) {
		log_write(sess_name(s), SVC, LOG_LVL_WARNING,
			  "%s[%s]: SASL %s authentication temporarily failed: %s",
			  s->client_name, s->client_addr, mech, why);
		smtpd_session_reply(s, "454 4.7.0 Temporary authentication "
				    "failure");
		if (async)
			smtpd_session_resume(s);
		return;
	}
	/* The same line and reply whatever the cause (fail2ban's filter
	 * matches it); the cause goes to a separate, informational line. */
	log_write(sess_name(s), SVC, LOG_LVL_WARNING,
		  "%s[%s]: SASL %s authentication failed: %s", s->client_name,
		  s->client_addr, mech,
		  s->auth_mech == SASL_MECH_LOGIN ? "UGFzc3dvcmQ6" : "");
	if (why != NULL && *why)
		log_write(sess_name(s), SVC, LOG_LVL_INFO,
			  "%s[%s]: SASL %s: %s", s->client_name,
			  s->client_addr, mech, why);
	delay = throttle_auth_fail(s->client_addr, time(NULL));
	free(s->auth_reply);
	s->auth_reply = xstrdup("535 5.7.8 Error: authentication failed: "
				"authentication failure");
	if (delay > 0 && s->bev != NULL) {
		struct timeval tv = { (time_t)delay, 0 };

		s->busy = 1;
		if (s->auth_timer == NULL)
			s->auth_timer = evtimer_new(s->l->srv->base,
						    auth_reply_now, s);
		evtimer_add(s->auth_timer, &tv);
		return;
	}
	smtpd_session_reply(s, "%s", s->auth_reply);
	xfree(&s->auth_reply);
	if (async)
		smtpd_session_resume(s);
}

static void auth_act(struct smtpd_session *s, enum sasl_action a, int async);

static void
auth_work(void *arg)
{
	struct auth_job *j = arg;

	sasl_exchange_work(j->ex);
}

static void
auth_done(void *arg)
{
	struct auth_job *j = arg;
	struct smtpd_session *s = j->s;

	free(j);
	if (s->closing) {
		s->busy = 0;
		session_close(s);
		return;
	}
	auth_act(s, sasl_exchange_resume(s->auth_ex), 1);
}

/* Does what the exchange asks: a 334 challenge, a worker job, the end. */
static void
auth_act(struct smtpd_session *s, enum sasl_action a, int async)
{
	struct sasl_exchange *ex = s->auth_ex;

	switch (a) {
	case SASL_CHALLENGE: {
		struct buf b;
		size_t n;
		const char *out = sasl_exchange_out(ex, &n);

		buf_init(&b, 0);
		buf_puts(&b, "334 ");
		sasl_encode64(out, n, &b);
		s->state = SMTPD_S_AUTH;
		smtpd_session_reply(s, "%s", buf_cstr(&b));
		buf_free(&b);
		if (async)
			smtpd_session_resume(s);
		return;
	}
	case SASL_WORK: {
		struct auth_job *j = xcalloc(1, sizeof(*j));

		j->s = s;
		j->ex = ex;
		s->busy = 1;
		worker_submit(s->l->srv->pool, auth_work, auth_done, j);
		return;
	}
	default:
		break;
	}
	s->auth_ex = NULL;
	auth_finish(s, a == SASL_OK ? 1 : a == SASL_FAIL ? 0 : -1,
		    sasl_exchange_user(ex), sasl_exchange_why(ex), async);
	sasl_exchange_free(&ex);
}

/* An exchange ended by the client ("*") or a reply that is not base64. */
static void
auth_abort(struct smtpd_session *s, const char *reply)
{
	s->state = SMTPD_S_CMD;
	sasl_exchange_free(&s->auth_ex);
	count_cmd(s, SMTPD_AUTH, 0);
	reply_error(s, "%s", reply);
}

/* A line while an AUTH exchange waits for the client's answer. */
static void
auth_response(struct smtpd_session *s, const char *line, size_t len)
{
	struct buf msg;

	if (len == 1 && line[0] == '*') {
		auth_abort(s, "501 5.7.0 Authentication aborted");
		return;
	}
	buf_init(&msg, SASL_RESPONSE_MAX);
	/* An empty line is an empty response (base64 of nothing). */
	if (s->auth_ex == NULL || (len > 0 && sasl_decode64(line, len,
							   &msg) < 0)) {
		auth_abort(s, "501 5.5.2 Cannot decode response");
	} else {
		s->state = SMTPD_S_CMD;
		auth_act(s, sasl_exchange_step(s->auth_ex, msg.data ? msg.data
					       : "", msg.len), 0);
	}
	if (msg.data)
		sodium_memzero(msg.data, msg.cap);
	buf_free(&msg);
}

static void
do_auth(struct smtpd_session *s, const struct smtpd_cmd *c, size_t alen)
{
	const char *arg = c->arg, *sp;
	unsigned offered = s->ssl ? s->l->sasl_mechs_tls : s->l->sasl_mechs;
	enum sasl_mech m;
	size_t mlen;
	char why[256];

	if (s->l->passdb == NULL || (s->ehlo_discard & SMTPD_EHLO_AUTH)) {
		reply_error(s, "503 5.5.1 Error: authentication not enabled");
		goto bad;
	}
	if (smtpd_limits_auth(s, why, sizeof(why)) < 0) {
		reply_error(s, "%s", why);
		goto bad;
	}
	if (offered == 0 && s->ssl == NULL && s->l->s.smtpd_tls_auth_only) {
		reply_error(s, "538 5.7.11 Encryption required for requested "
			    "authentication mechanism");
		goto bad;
	}
	if (s->helo == NULL || !s->esmtp) {
		reply_error(s, "503 5.5.1 Error: send EHLO first");
		goto bad;
	}
	if (s->sasl_authenticated) {
		reply_error(s, "503 5.5.1 Error: already authenticated");
		goto bad;
	}
	if (s->tx != NULL) {
		reply_error(s, "503 5.5.1 Error: MAIL transaction in progress");
		goto bad;
	}
	if (alen == 0) {
		reply_error(s, "501 5.5.4 Syntax: AUTH mechanism");
		goto bad;
	}
	sp = memchr(arg, ' ', alen);
	mlen = sp ? (size_t)(sp - arg) : alen;
	m = sasl_mech_find(arg, mlen);
	if (m == SASL_MECH_NONE || !(offered & SASL_MECH_BIT(m))) {
		reply_error(s, "504 5.5.4 Unrecognized authentication type");
		goto bad;
	}
	s->auth_mech = (int)m;
	sasl_exchange_free(&s->auth_ex);
	s->auth_ex = sasl_exchange_new(m, s->l->passdb, s->l->s.myhostname,
				       s->l->s.smtpd_sasl_local_domain, 0);
	if (sp != NULL) {
		/* RFC 4954 4: an initial response, "=" for an empty one. */
		struct buf msg;
		const char *ir = sp + 1;
		size_t irlen = alen - mlen - 1;

		buf_init(&msg, SASL_RESPONSE_MAX);
		if (sasl_decode64(ir, irlen, &msg) < 0) {
			sasl_exchange_free(&s->auth_ex);
			reply_error(s, "501 5.5.2 Cannot decode response");
			buf_free(&msg);
			goto bad;
		}
		auth_act(s, sasl_exchange_step(s->auth_ex, msg.data ? msg.data
					       : "", msg.len), 0);
		if (msg.data)
			sodium_memzero(msg.data, msg.cap);
		buf_free(&msg);
		return;
	}
	auth_act(s, sasl_exchange_start(s->auth_ex), 0);
	return;
bad:
	count_cmd(s, c->verb, 0);
}

/* Commands allowed before STARTTLS when TLS is required (Postfix's list). */
static int
pre_tls_ok(enum smtpd_verb v)
{
	switch (v) {
	case SMTPD_HELO: case SMTPD_EHLO: case SMTPD_STARTTLS:
	case SMTPD_RSET: case SMTPD_NOOP: case SMTPD_QUIT:
	case SMTPD_UNKNOWN:
		return 1;
	default:
		return 0;
	}
}

/* More input follows this command line: is that allowed here? */
static void
note_pipelining(struct smtpd_session *s, const char *line, size_t len)
{
	struct smtpd_cmd c;
	size_t alen;

	if (s->ill_pipelining)
		return;
	smtpd_cmd_parse(line, len, &c, &alen);
	switch (c.verb) {
	case SMTPD_HELO:
	case SMTPD_EHLO:
	case SMTPD_DATA:
	case SMTPD_QUIT:
		s->ill_pipelining = 1;
		break;
	default:
		if (!s->esmtp || (s->ehlo_discard & SMTPD_EHLO_PIPELINING))
			s->ill_pipelining = 1;
		break;
	}
}

static void
handle_line(struct smtpd_session *s, const char *line, size_t len)
{
	struct smtpd_cmd c;
	size_t alen;
	unsigned junk_before = s->junk;

	smtpd_cmd_parse(line, len, &c, &alen);
	if (s->l->srv->shutting_down) {
		/* facteurd stop, past facteur_shutdown_timeout */
		smtpd_session_shutdown(s);
		return;
	}
	if (s->l->tls_level == TLS_LEVEL_ENCRYPT && s->ssl == NULL &&
	    !pre_tls_ok(c.verb)) {
		reply_error(s, "530 5.7.0 Must issue a STARTTLS command first");
		count_cmd(s, c.verb, 0);
		goto after;
	}
	if (s->access_denied && c.verb != SMTPD_QUIT) {
		/* smtpd_delay_reject = no refused the client (RFC 5321 3.1) */
		reply_error(s, "503 5.7.0 Error: access denied for %s[%s]",
			    s->client_name, s->client_addr);
		count_cmd(s, c.verb, 0);
		goto after;
	}
	switch (c.verb) {
	case SMTPD_HELO:
		do_helo(s, &c, alen, 0);
		break;
	case SMTPD_EHLO:
		do_helo(s, &c, alen, 1);
		break;
	case SMTPD_MAIL:
		do_mail(s, &c, alen);
		break;
	case SMTPD_RCPT:
		do_rcpt(s, &c, alen);
		break;
	case SMTPD_DATA:
		do_data(s, &c, alen);
		break;
	case SMTPD_BDAT:
		do_bdat(s, &c, alen);
		break;
	case SMTPD_RSET:
		txn_reset(s);
		count_cmd(s, c.verb, 1);
		s->junk++;
		smtpd_session_reply(s, "250 2.0.0 Ok");
		break;
	case SMTPD_NOOP:
		count_cmd(s, c.verb, 1);
		s->junk++;
		smtpd_session_reply(s, "250 2.0.0 Ok");
		break;
	case SMTPD_QUIT:
		count_cmd(s, c.verb, 1);
		smtpd_session_reply(s, "221 2.0.0 Bye");
		session_close(s);
		return;
	case SMTPD_VRFY:
		s->junk++;
		do_vrfy(s, &c, alen);
		break;
	case SMTPD_HELP:
		count_cmd(s, c.verb, 1);
		s->junk++;
		smtpd_session_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT "
				    "DATA BDAT RSET NOOP QUIT VRFY HELP");
		break;
	case SMTPD_AUTH:
		do_auth(s, &c, alen);
		break;
	case SMTPD_STARTTLS:
		do_starttls(s, &c, alen);
		break;
	default:
		if (c.verb == SMTPD_UNKNOWN && smtpd_reply_forbidden(s, line, len)) {
			count_cmd(s, SMTPD_UNKNOWN, 0);
			session_close(s);	/* smtpd_forbidden_commands */
			return;
		}
		reply_error(s, "500 5.5.2 Error: command not recognized");
		count_cmd(s, SMTPD_UNKNOWN, 0);
		break;
	}
after:
	/* Postfix: a junk command (NOOP, VRFY, RSET) past the limit is an
	 * error; other commands are not charged for earlier junk. */
	if (s->junk != junk_before &&
	    junk_before > (unsigned long long)s->l->s.smtpd_junk_command_limit)
		s->errors++;
	if (!s->busy && s->errors >= s->l->s.smtpd_hard_error_limit) {
		smtpd_session_reply(s, "421 4.7.0 %s Error: too many errors",
				    s->l->s.myhostname);
		char where[16];

		snprintf(where, sizeof(where), "%s", c.name ? c.name : "unknown");
		for (char *p = where; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		log_write(sess_name(s), SVC, LOG_LVL_INFO,
			  "too many errors after %s from %s[%s]", where,
			  s->client_name, s->client_addr);
		session_close(s);
		return;
	}
	if (s->closing_after_reply) {
		session_close(s);
		return;
	}
	maybe_tarpit(s);
}

/* ---- message content ---- */

/* One content line (without its line end) or a piece of an over-long one. */
static void
content_line(struct smtpd_session *s, const char *p, size_t n, int eol)
{
	struct smtpd_txn *t = s->tx;
	const struct settings *st = &s->l->s;

	if (t->at_line_start && t->in_header) {
		if (n == 0 && eol) {
			t->in_header = 0;
		} else if (n >= 9 && strncasecmp(p, "Received:", 9) == 0) {
			t->hops++;
		} else if (n >= 11 && strncasecmp(p, "Message-ID:", 11) == 0 &&
			   t->msgid == NULL) {
			const char *v = p + 11;
			size_t vl = n - 11;

			while (vl > 0 && (*v == ' ' || *v == '\t'))
				v++, vl--;
			while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (vl > 0)
				t->msgid = xstrndup(v, vl < 250 ? vl : 250);
		} else if (t->at_line_start && n > 0 && p[0] != ' ' &&
			   p[0] != '\t' && memchr(p, ':', n) == NULL) {
			/* Not a header line: the body starts here (Postfix
			 * does the same with a missing blank line). */
			t->in_header = 0;
		}
	}
	t->size += (long long)n + (eol ? 1 : 0);
	if (!t->too_big) {
		if ((st->message_size_limit > 0 && t->size > st->message_size_limit) ||
		    buf_append(&t->content, p, n) < 0 ||
		    (eol && buf_putc(&t->content, '\n') < 0)) {
			t->too_big = 1;
			buf_free(&t->content);
		}
	}
	t->at_line_start = eol;
}

/* The content passed smtpd_end_of_data_restrictions: commit it. It
 * becomes durable off the loop; the reply comes from commit_done. */
static void eod_refuse(struct smtpd_session *s, const char *reply);

/* The milters had the message and changed what they asked for. */
static void
eod_milter_done(struct smtpd_session *s, const char *reply, void *arg)
{
	(void)arg;
	if (s->bev == NULL || s->closing)
		return;		/* gone: nothing is committed */
	if (reply != NULL) {
		eod_refuse(s, reply);	/* logged as milter-reject */
		return;
	}
	s->busy = 1;
	smtpd_commit(s);
}

static void
eod_go(struct smtpd_session *s)
{
	if (milter_eom(s, eod_milter_done, NULL))
		return;		/* core/milter.c, then the commit */
	s->busy = 1;
	smtpd_commit(s);
}

/* Refused at the end of the content: nothing was queued; the envelope
 * goes, as after any answered DATA. */
static void
eod_refuse(struct smtpd_session *s, const char *reply)
{
	reply_error(s, "%s", reply);
	if (!s->tx->bdat)
		count_cmd(s, SMTPD_DATA, 0);
	txn_reset(s);
}

static void
message_end(struct smtpd_session *s)
{
	struct smtpd_txn *t = s->tx;

	s->state = SMTPD_S_CMD;
	if (t->too_big) {
		reply_error(s, "552 5.3.4 Message size exceeds fixed limit");
		log_write(sess_name(s), SVC, LOG_LVL_WARNING,
			  "%s: reject: size %lld exceeds message_size_limit "
			  "from %s[%s]", t->id, t->size, s->client_name,
			  s->client_addr);
		if (!t->bdat)
			count_cmd(s, SMTPD_DATA, 0);
		txn_reset(s);
		return;
	}
	if (t->hops > s->l->s.hopcount_limit) {
		reply_error(s, "554 5.4.6 Too many hops");
		log_write(sess_name(s), SVC, LOG_LVL_WARNING,
			  "%s: reject: too many hops (%d) from %s[%s]", t->id,
			  t->hops, s->client_name, s->client_addr);
		if (!t->bdat)
			count_cmd(s, SMTPD_DATA, 0);
		txn_reset(s);
		return;
	}
	/* smtpd_end_of_data_restrictions, then eod_go commits. */
	smtpd_eod_check(s, eod_go, eod_refuse);
}

/*
 * DATA content, RFC 5321 4.1.1.4 and 4.5.2. A line ends at LF; a CR
 * before it is dropped. The message ends only at CR LF "." CR LF: a "."
 * line after a bare LF, or ".\n", is content (this is what keeps SMTP
 * smuggling out). Dot-stuffing is undone on every line.
 */
static int
process_data(struct smtpd_session *s, struct evbuffer *in)
{
	struct smtpd_txn *t = s->tx;
	struct evbuffer_ptr eol;
	size_t avail, n;
	char *line;

	for (;;) {
		avail = evbuffer_get_length(in);
		if (avail == 0)
			return 0;
		eol = evbuffer_search(in, "\n", 1, NULL);
		if (eol.pos < 0) {
			/* No line end yet: wait, unless the line is huge. */
			if (avail < DATA_CHUNK_MAX)
				return 0;
			n = avail - 1;	/* keep a possible trailing CR */
			line = (char *)evbuffer_pullup(in, (ssize_t)n);
			if (t->at_line_start && line[0] == '.') {
				line++;
				n--;
				evbuffer_drain(in, 1);
			}
			content_line(s, line, n, 0);
			evbuffer_drain(in, n);
			t->prev_crlf = 0;
			continue;
		}
		n = (size_t)eol.pos;
		line = (char *)evbuffer_pullup(in, (ssize_t)n + 1);
		{
			int crlf = n > 0 && line[n - 1] == '\r';
			size_t len = crlf ? n - 1 : n;

			if (t->at_line_start && t->prev_crlf && crlf &&
			    len == 1 && line[0] == '.') {
				evbuffer_drain(in, n + 1);
				message_end(s);
				return 1;
			}
			if (t->at_line_start && len > 0 && line[0] == '.') {
				content_line(s, line + 1, len - 1, 1);
			} else {
				content_line(s, line, len, 1);
			}
			t->prev_crlf = crlf;
			evbuffer_drain(in, n + 1);
		}
	}
}

/*
 * BDAT content (RFC 3030): exactly bdat_remaining bytes, no dot
 * transparency. CR LF (also split across chunks) and bare LF end lines.
 */
static int
process_bdat(struct smtpd_session *s, struct evbuffer *in)
{
	struct smtpd_txn *t = s->tx;

	while (s->bdat_remaining > 0) {
		size_t avail = evbuffer_get_length(in), take, i, start;
		unsigned char *p;

		if (avail == 0)
			return 0;
		take = avail < (size_t)s->bdat_remaining ? avail
							 : (size_t)s->bdat_remaining;
		if (take > DATA_CHUNK_MAX)
			take = DATA_CHUNK_MAX;
		p = evbuffer_pullup(in, (ssize_t)take);
		if (s->bdat_reject == NULL) {
			start = 0;
			for (i = 0; i < take; i++) {
				if (p[i] != '\n')
					continue;
				if (i > start || !t->bdat_cr) {
					size_t len = i - start;
					int drop_cr = len > 0 && p[i - 1] == '\r';
					content_line(s, (char *)p + start,
						     drop_cr ? len - 1 : len, 1);
				} else {
					content_line(s, "", 0, 1);
				}
				t->bdat_cr = 0;
				start = i + 1;
			}
			if (start < take) {
				/* A trailing CR may belong to a CR LF split
				 * across chunks: hold it back. */
				size_t len = take - start;
				if (t->bdat_cr)
					content_line(s, "\r", 1, 0);
				t->bdat_cr = p[take - 1] == '\r';
				if (t->bdat_cr)
					len--;
				if (len > 0)
					content_line(s, (char *)p + start, len, 0);
			}
		}
		evbuffer_drain(in, take);
		s->bdat_remaining -= (long long)take;
	}
	s->state = SMTPD_S_CMD;
	if (s->bdat_reject != NULL) {
		reply_error(s, "%s", s->bdat_reject);
		xfree(&s->bdat_reject);
		return 1;
	}
	if (s->bdat_last) {
		if (t->bdat_cr)
			content_line(s, "\r", 1, 0);
		t->bdat_cr = 0;
		if (!t->at_line_start)
			content_line(s, "", 0, 1);	/* complete the last line */
		message_end(s);
		return 1;
	}
	smtpd_session_reply(s, "250 2.0.0 Ok: %lld bytes", s->bdat_chunk);
	return 1;
}

/* ---- input loop ---- */

static void
session_process(struct smtpd_session *s)
{
	struct evbuffer *in;

	while (!s->busy && !s->closing && s->bev != NULL) {
		in = bufferevent_get_input(s->bev);
		if (s->state == SMTPD_S_DATA) {
			if (!process_data(s, in))
				break;
			continue;
		}
		if (s->state == SMTPD_S_BDAT) {
			if (!process_bdat(s, in))
				break;
			continue;
		}
		{
			struct evbuffer_ptr eol = evbuffer_search(in, "\n", 1, NULL);
			size_t avail = evbuffer_get_length(in), n;
			char *line;

			if (eol.pos < 0) {
				if (avail > (size_t)s->l->s.line_length_limit) {
					/* Skip the rest of an over-long line. */
					evbuffer_drain(in, avail);
					if (!s->skipping) {
						s->skipping = 1;
						reply_error(s, "500 5.5.2 Error: "
							    "line too long");
					}
				}
				break;
			}
			n = (size_t)eol.pos;
			if (s->skipping) {
				evbuffer_drain(in, n + 1);
				s->skipping = 0;
				continue;
			}
			if (n > (size_t)s->l->s.line_length_limit) {
				evbuffer_drain(in, n + 1);
				reply_error(s, "500 5.5.2 Error: line too long");
				continue;
			}
			line = (char *)evbuffer_pullup(in, (ssize_t)n + 1);
			if (n > 0 && line[n - 1] == '\r')
				n--;
			/*
			 * RFC 2920: a client may send ahead only after EHLO
			 * announced PIPELINING, and never past HELO/EHLO,
			 * DATA or QUIT. Remembered for reject_unauth_pipelining.
			 */
			if (s->state != SMTPD_S_AUTH &&
			    evbuffer_get_length(in) > (size_t)eol.pos + 1)
				note_pipelining(s, line, n);
			smtpd_notify_in(s, line, n);	/* AUTH data masked */
			/* handle_line may free nothing but may go busy. */
			if (s->state == SMTPD_S_AUTH)
				auth_response(s, line, n);
			else
				handle_line(s, line, n);
			if (s->bev != NULL)
				evbuffer_drain(in, (size_t)eol.pos + 1);
		}
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	session_process(arg);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct smtpd_session *s = arg;

	if (s->tls_pending && !s->closing) {
		starttls_switch(s);
		return;
	}
	if (s->closing && !s->busy)
		session_free(s);
}

static const char *
state_name(const struct smtpd_session *s)
{
	switch (s->state) {
	case SMTPD_S_DATA:
		return "DATA";
	case SMTPD_S_BDAT:
		return "BDAT";
	default:
		return s->tx ? (s->tx->nrcpt ? "RCPT" : "MAIL") :
			       s->helo ? "EHLO" : "CONNECT";
	}
}

static void greet_milters(struct smtpd_session *s);

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtpd_session *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		/* The TLS handshake is complete. */
		struct buf d;

		buf_init(&d, 0);
		tls_describe(s->ssl, &d);
		free(s->tls_info);
		s->tls_info = buf_steal(&d);
		s->tls_up = 1;
		smtpd_ccert_free(&s->ccert);
		s->ccert = smtpd_ccert_get(s->ssl,
					   s->l->s.smtpd_tls_fingerprint_digest);
		if (tls_server_ccert_required(&s->l->s, s->l->tls_level) &&
		    (s->ccert == NULL || !s->ccert->verified)) {
			/* smtpd_tls_req_ccert: Postfix's 421 after TLS */
			log_write(sess_name(s), SVC, LOG_LVL_INFO,
				  "NOQUEUE: abort: TLS from %s[%s]: %s",
				  s->client_name, s->client_addr, s->ccert ?
				  "client certificate not verified" :
				  "no client certificate");
			smtpd_session_reply(s, "421 4.7.1 %s Error: a verified "
					    "client certificate is required",
					    s->l->s.myhostname);
			session_close(s);
			return;
		}
		{
			char why[256];

			/* smtpd_client_new_tls_session_rate_limit */
			if (smtpd_limits_tls_done(s, why, sizeof(why)) < 0) {
				smtpd_session_reply(s, "%s", why);
				session_close(s);
				return;
			}
		}
		if (s->l->s.smtpd_tls_loglevel >= 1)
			log_write(sess_name(s), SVC, LOG_LVL_INFO,
				  "%s TLS connection established from "
				  "%s[%s]: %s", smtpd_ccert_trust_word(s->ccert),
				  s->client_name, s->client_addr, s->tls_info);
		if (s->greet_after_tls) {
			s->greet_after_tls = 0;
			greet_milters(s);
		}
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->busy && !s->tls_pending) {
			/* We are the slow one, not the client. */
			bufferevent_enable(bev, EV_READ);
			return;
		}
		log_write(sess_name(s), SVC, LOG_LVL_INFO,
			  "timeout after %s from %s[%s]", state_name(s),
			  s->client_name, s->client_addr);
		smtpd_session_reply(s, "421 4.4.2 %s Error: timeout exceeded",
				    s->l->s.myhostname);
		{
			/* Give the 421 ten seconds to leave, then drop. */
			struct timeval tv = { 10, 0 };
			bufferevent_set_timeouts(bev, NULL, &tv);
		}
		session_close(s);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (s->ssl != NULL && !s->tls_up) {
			unsigned long e = bufferevent_get_openssl_error(bev);
			char eb[256] = "lost connection";

			if (e != 0)
				ERR_error_string_n(e, eb, sizeof(eb));
			while (bufferevent_get_openssl_error(bev) != 0)
				;
			log_write(sess_name(s), SVC, LOG_LVL_INFO,
				  "SSL_accept error from %s[%s]: %s",
				  s->client_name, s->client_addr, eb);
		} else if (!s->closing && (s->tx != NULL || s->state != SMTPD_S_CMD))
			log_write(sess_name(s), SVC, LOG_LVL_INFO,
				  "lost connection after %s from %s[%s]",
				  state_name(s), s->client_name, s->client_addr);
		session_abort(s);
	}
}

void
smtpd_session_shutdown(struct smtpd_session *s)
{
	if (s->closing)
		return;
	if (s->busy)
		return;		/* smtpd_session_resume comes back here */
	if (s->bev == NULL) {
		session_abort(s);
		return;
	}
	smtpd_session_reply(s, "421 4.3.2 %s Service shutting down, closing "
			    "transmission channel", s->l->s.myhostname);
	log_write(sess_name(s), SVC, LOG_LVL_INFO, "shutdown: closing the "
		  "session after %s from %s[%s]", s->state == SMTPD_S_CMD &&
		  s->tx == NULL ? (s->helo ? "EHLO" : "CONNECT") :
		  s->state == SMTPD_S_DATA ? "DATA" : s->state == SMTPD_S_BDAT ?
		  "BDAT" : "MAIL", s->client_name, s->client_addr);
	{
		struct timeval tv = { 5, 0 };	/* the 421 gets 5 s to leave */
		bufferevent_set_timeouts(s->bev, NULL, &tv);
	}
	session_close(s);
}

static void session_begin(struct smtpd_session *s, const struct sockaddr *sa);

void
smtpd_session_start(struct smtpd_listener *l, int fd, const struct sockaddr *sa,
		    int salen)
{
	struct smtpd_session *s;

	if (l->nsessions >= l->max_sessions) {
		static const char busy[] =
		    "421 4.3.2 Service currently unavailable\r\n";
		if (write(fd, busy, sizeof(busy) - 1) < 0) {
			/* the client is gone anyway */
		}
		close(fd);
		log_write(l->s.syslog_name, SVC, LOG_LVL_WARNING,
			  "%s: too many sessions (%u): connection refused",
			  l->service, l->nsessions);
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->l = l;
	s->fd = fd;
	smtpd_listener_session_add(l, s);
	{
		/* An IPv4-mapped IPv6 peer is shown as IPv4, as Postfix does. */
		struct netlist_addr peer;

		if (netlist_addr_from_sockaddr(sa, &peer) == 0)
			netlist_addr_format(&peer, s->client_addr, sizeof(s->client_addr));
	}
	s->client_name = "unknown";
	session_begin(s, sa);
}

/* smtpd_delay_reject = no: the greeting is the refusal, then 503s. */
static void
connect_checked(struct smtpd_session *s, int refused, const char *reply,
		void *arg)
{
	(void)arg;
	if (refused) {
		s->access_denied = 1;
		smtpd_session_reply(s, "%s", reply);
		return;
	}
	evbuffer_add(bufferevent_get_output(s->bev), s->l->banner,
		     strlen(s->l->banner));
}

static void session_greet(struct smtpd_session *s);
static void greet_rest(struct smtpd_session *s);
static void connect_milter_done(struct smtpd_session *s, const char *reply,
				void *arg);

/* The client's name is known (smtpd_peername.c): on to the greeting. */
static void
peername_done(struct smtpd_session *s)
{
	s->busy = 0;
	if (s->closing || s->l->srv->shutting_down) {
		session_abort(s);
		return;
	}
	session_greet(s);
}

/* The client is known (socket, or PROXY header): its name, then checks
 * and banner. */
static void
session_begin(struct smtpd_session *s, const struct sockaddr *sa)
{
	struct smtpd_listener *l = s->l;
	struct errbuf err;
	int m;

	errbuf_clear(&err);
	m = netlist_match(l->mynetworks, sa, &err);
	if (m < 0)
		log_write(sess_name(s), SVC, LOG_LVL_WARNING,
			  "mynetworks lookup for %s: %s", s->client_addr,
			  errbuf_str(&err));
	s->in_mynetworks = m > 0;
	/* As Postfix, the name is looked up before the 220 (bounded by
	 * facteur_peername_timeout); nothing is read meanwhile. */
	if (smtpd_peername_start(s, peername_done) != 0) {
		s->busy = 1;
		return;
	}
	session_greet(s);
}

static void
session_greet(struct smtpd_session *s)
{
	struct smtpd_listener *l = s->l;
	struct timeval tv;
	int fd = s->fd;

	/* The session closes the socket (and frees SSL) itself: STARTTLS
	 * replaces the bufferevent on the same socket. */
	if (l->s.smtpd_tls_wrappermode && l->tls != NULL) {
		s->ssl = tls_server_ssl(l->tls);
		if (s->ssl != NULL)
			s->bev = bufferevent_openssl_socket_new(l->srv->base, fd,
						s->ssl, BUFFEREVENT_SSL_ACCEPTING, 0);
		if (s->bev != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	} else {
		s->bev = bufferevent_socket_new(l->srv->base, fd, 0);
	}
	if (s->bev == NULL) {
		session_free(s);
		return;
	}
	bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0,
				 SESSION_INPUT_MAX + (size_t)l->s.line_length_limit);
	tv.tv_sec = (time_t)l->s.smtpd_timeout;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	log_write(sess_name(s), SVC, LOG_LVL_INFO, "connect from %s[%s]",
		  s->client_name, s->client_addr);
	s->greeted = 1;
	{
		/* anvil: connection count and rate (421 instead of the 220) */
		char why[256];

		if (smtpd_limits_connect(s, why, sizeof(why)) < 0) {
			if (why[0] != '\0')
				smtpd_session_reply(s, "%s", why);
			bufferevent_enable(s->bev, EV_WRITE);
			session_close(s);
			return;
		}
	}
	bufferevent_enable(s->bev, EV_WRITE);
	if (s->ssl != NULL && !s->tls_up) {
		/* smtps: the greeting (and the milters' connect) wait for
		 * the handshake, so a client over the new TLS session limit
		 * gets the 421 instead of a 220 (on_event) */
		s->greet_after_tls = 1;
		return;
	}
	greet_milters(s);
}

/* smtpd_milters see the connection before the greeting */
static void
greet_milters(struct smtpd_session *s)
{
	if (milter_connect(s, connect_milter_done, NULL))
		return;
	greet_rest(s);
}

/* A milter refused the connection: its reply instead of the banner, then
 * 503 to everything but QUIT (as smtpd_delay_reject = no does). */
static void
connect_milter_done(struct smtpd_session *s, const char *reply, void *arg)
{
	(void)arg;
	if (s->bev == NULL || s->closing)
		return;		/* the client is gone */
	if (reply != NULL) {
		s->access_denied = 1;
		smtpd_session_reply(s, "%s", reply);
		return;
	}
	greet_rest(s);
}

static void
greet_rest(struct smtpd_session *s)
{
	struct smtpd_listener *l = s->l;

	if (!smtpd_check_delay_reject(&l->checks)) {
		/* smtpd_client_restrictions at connect (smtpd_delay_reject = no) */
		bufferevent_enable(s->bev, EV_READ | EV_WRITE);
		smtpd_stage_check(s, SMTPD_STAGE_CLIENT, NULL, connect_checked,
				  NULL);
		return;
	}
	evbuffer_add(bufferevent_get_output(s->bev), l->banner,
		     strlen(l->banner));
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}
