/*
 * smtpd_limits.c - the session side of the rate and concurrency limits
 * (see smtpd_limits.h): one anvil table for every listener's clients,
 * keyed "service/address" as Postfix's anvil, one for SASL users keyed by
 * login; replies and warnings in Postfix's words; the per-user limits
 * lookup (on a worker when the table may block) and the postmaster notice
 * when a user is put on hold (built and queued on a worker, then handed
 * to the queue manager).
 * Must not: block the loop, read the socket peer (the session's client
 * address is the one to key on), or keep a session pointer in a job that
 * can outlive the session (the notice job copies what it needs, and holds
 * the listener whose resolve ctx it borrows: smtpd_listener_hold).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include <openssl/ssl.h>

#include "backends/table.h"
#include "core/addr.h"
#include "core/anvil.h"
#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/netlist.h"
#include "core/qmgr.h"
#include "core/queue.h"
#include "core/resolve.h"
#include "core/smtpd_limits.h"
#include "core/smtpd_listener.h"
#include "core/smtpd_session.h"
#include "core/user_limits.h"
#include "core/worker.h"

#define SVC "smtpd"
/* Clients and users tracked at once (each table; see anvil.h). */
#define CLIENTS_MAX 32768
#define USERS_MAX   8192
/* Longest login shown in replies, logs and the notice. */
#define LOGIN_SHOW_MAX 128

struct smtpd_limits_conf {
	struct netlist     *exceptions;
	struct table_list  *user_maps;	/* NULL: main.cf values for everyone */
	struct user_limits  defaults;
};

struct smtpd_limits_sess {
	char               key[ANVIL_KEY_MAX + 1];	/* "service/address" */
	bool               counted;	/* anvil_connect succeeded */
	bool               exempt;	/* smtpd_client_event_limit_exceptions */
	/* the SASL user, after AUTH */
	char              *login;	/* lower case */
	int                user_state;	/* 1 known, -1 lookup failed */
	struct user_limits user;
};

/* Process-wide: counts survive listener rebuilds (reload). */
static struct anvil *clients, *users;

static struct anvil *
client_table(const struct settings *st)
{
	if (clients == NULL)
		clients = anvil_new(CLIENTS_MAX, st->anvil_rate_time_unit);
	else if (anvil_unit(clients) != st->anvil_rate_time_unit)
		anvil_set_unit(clients, st->anvil_rate_time_unit);
	return clients;
}

static struct anvil *
user_table(const struct settings *st)
{
	if (users == NULL)
		users = anvil_new(USERS_MAX, st->smtpd_sasl_user_rate_time_unit);
	else if (anvil_unit(users) != st->smtpd_sasl_user_rate_time_unit)
		anvil_set_unit(users, st->smtpd_sasl_user_rate_time_unit);
	return users;
}

static const char *
lname(const struct smtpd_session *s)
{
	return s->l->s.syslog_name;
}

/* A login as it may appear in a reply, a log line or a header. */
static void
login_show(const char *login, char *out, size_t size)
{
	size_t i;

	for (i = 0; login[i] != '\0' && i + 1 < size && i < LOGIN_SHOW_MAX; i++)
		out[i] = (login[i] > ' ' && login[i] < 0x7f) ? login[i] : '?';
	out[i] = '\0';
}

/* ---- configuration ---- */

int
smtpd_limits_conf_new(struct smtpd_listener *l, struct errbuf *err)
{
	struct smtpd_limits_conf *c = xcalloc(1, sizeof(*c));
	const struct settings *st = &l->s;
	struct errbuf e;

	errbuf_clear(&e);
	l->limits = c;
	c->defaults.message_rate = st->smtpd_sasl_user_message_rate_limit;
	c->defaults.recipient_rate = st->smtpd_sasl_user_recipient_rate_limit;
	if (user_limits_parse_factor(st->smtpd_sasl_user_hold_threshold,
				     &c->defaults.hold_factor, &e) < 0) {
		errbuf_set(err, "%s: smtpd_sasl_user_hold_threshold: %s",
			   l->service, errbuf_str(&e));
		return -1;
	}
	if ((c->exceptions = netlist_new(st->smtpd_client_event_limit_exceptions,
					 &e)) == NULL) {
		errbuf_set(err, "%s: smtpd_client_event_limit_exceptions: %s",
			   l->service, errbuf_str(&e));
		return -1;
	}
	if (st->smtpd_sasl_user_limit_maps[0] != '\0' &&
	    (c->user_maps = table_list_open(st->smtpd_sasl_user_limit_maps,
					    TABLE_F_FOLD, &e)) == NULL) {
		errbuf_set(err, "%s: smtpd_sasl_user_limit_maps: %s", l->service,
			   errbuf_str(&e));
		return -1;
	}
	return 0;
}

void
smtpd_limits_conf_free(struct smtpd_listener *l)
{
	struct smtpd_limits_conf *c = l->limits;

	if (c == NULL)
		return;
	if (c->exceptions)
		netlist_free(&c->exceptions);
	if (c->user_maps)
		table_list_free(&c->user_maps);
	free(c);
	l->limits = NULL;
}

/* ---- client limits ---- */

static struct smtpd_limits_sess *
sess(struct smtpd_session *s)
{
	if (s->limits == NULL)
		s->limits = xcalloc(1, sizeof(*s->limits));
	return s->limits;
}

/* Whether client limits apply to this session at all. */
static bool
client_limited(struct smtpd_session *s)
{
	return s->l->limits != NULL && s->limits != NULL && !s->limits->exempt;
}

int
smtpd_limits_connect(struct smtpd_session *s, char *reply_r, size_t size)
{
	struct smtpd_limits_sess *ls = sess(s);
	const struct settings *st = &s->l->s;
	struct anvil *a = client_table(st);
	time_t now = time(NULL);
	struct errbuf e;
	unsigned count, rate;
	int m;

	reply_r[0] = '\0';
	if (s->l->limits == NULL)
		return 0;
	errbuf_clear(&e);
	m = netlist_match_str(s->l->limits->exceptions, s->client_addr, &e);
	if (m < 0)
		log_write(lname(s), SVC, LOG_LVL_WARNING,
			  "smtpd_client_event_limit_exceptions lookup for %s: %s",
			  s->client_addr, errbuf_str(&e));
	ls->exempt = m > 0;
	if (ls->exempt)
		return 0;
	anvil_client_key(s->l->service, s->client_addr,
			 (unsigned)st->smtpd_client_ipv4_prefix_length,
			 (unsigned)st->smtpd_client_ipv6_prefix_length, ls->key,
			 sizeof(ls->key));
	/* Counted even without a limit, so the rates stay right (Postfix). */
	if (anvil_connect(a, ls->key, now, &count, &rate) < 0)
		return 0;		/* table full of live clients: fail open */
	ls->counted = true;
	if (st->smtpd_client_connection_count_limit > 0 &&
	    count > (unsigned long long)st->smtpd_client_connection_count_limit) {
		log_write(lname(s), SVC, LOG_LVL_WARNING,
			  "Connection concurrency limit exceeded: %u from %s[%s] "
			  "for service %s", count, s->client_name, s->client_addr,
			  s->l->service);
		snprintf(reply_r, size, "421 4.7.0 %s Error: too many "
			 "connections from %s", st->myhostname, s->client_addr);
		return -1;
	}
	if (st->smtpd_client_connection_rate_limit > 0 &&
	    rate > (unsigned long long)st->smtpd_client_connection_rate_limit) {
		log_write(lname(s), SVC, LOG_LVL_WARNING,
			  "Connection rate limit exceeded: %u from %s[%s] for "
			  "service %s", rate, s->client_name, s->client_addr,
			  s->l->service);
		snprintf(reply_r, size, "421 4.7.0 %s Error: too many "
			 "connections from %s", st->myhostname, s->client_addr);
		return -1;
	}
	/* smtps: no handshake for a client over its new TLS session rate */
	if (st->smtpd_tls_wrappermode &&
	    st->smtpd_client_new_tls_session_rate_limit > 0 &&
	    anvil_peek(a, ls->key, ANVIL_NTLS, now) >
	    (unsigned long long)st->smtpd_client_new_tls_session_rate_limit) {
		log_write(lname(s), SVC, LOG_LVL_WARNING,
			  "Refusing TLS service request from %s[%s] for service %s",
			  s->client_name, s->client_addr, s->l->service);
		return -1;
	}
	return 0;
}

void
smtpd_limits_disconnect(struct smtpd_session *s)
{
	struct smtpd_limits_sess *ls = s->limits;

	if (ls == NULL)
		return;
	if (ls->counted && clients != NULL)
		anvil_disconnect(clients, ls->key, time(NULL));
	free(ls->login);
	free(ls);
	s->limits = NULL;
}

/* One counted client event against its limit (0 = none). */
static unsigned
client_event(struct smtpd_session *s, enum anvil_event ev, long long limit)
{
	unsigned n;

	if (limit <= 0 || !client_limited(s))
		return 0;
	n = anvil_incr(client_table(&s->l->s), s->limits->key, ev, time(NULL));
	return n > (unsigned long long)limit ? n : 0;
}

int
smtpd_limits_mail(struct smtpd_session *s, char *reply_r, size_t size)
{
	unsigned n = client_event(s, ANVIL_MAIL,
				  s->l->s.smtpd_client_message_rate_limit);

	if (n == 0)
		return 0;
	snprintf(reply_r, size, "450 4.7.1 Error: too much mail from %s",
		 s->client_addr);
	log_write(lname(s), SVC, LOG_LVL_WARNING,
		  "Message delivery request rate limit exceeded: %u from "
		  "%s[%s] for service %s", n, s->client_name, s->client_addr,
		  s->l->service);
	return -1;
}

int
smtpd_limits_auth(struct smtpd_session *s, char *reply_r, size_t size)
{
	unsigned n = client_event(s, ANVIL_AUTH,
				  s->l->s.smtpd_client_auth_rate_limit);

	if (n == 0)
		return 0;
	log_write(lname(s), SVC, LOG_LVL_WARNING,
		  "AUTH command rate limit exceeded: %u from %s[%s] for "
		  "service %s", n, s->client_name, s->client_addr, s->l->service);
	snprintf(reply_r, size, "450 4.7.1 Error: too many AUTH commands "
		 "from %s", s->client_addr);
	return -1;
}

int
smtpd_limits_starttls(struct smtpd_session *s, char *reply_r, size_t size)
{
	long long limit = s->l->s.smtpd_client_new_tls_session_rate_limit;

	if (limit <= 0 || !client_limited(s) ||
	    anvil_peek(client_table(&s->l->s), s->limits->key, ANVIL_NTLS,
		       time(NULL)) <= (unsigned long long)limit)
		return 0;
	log_write(lname(s), SVC, LOG_LVL_WARNING,
		  "Refusing STARTTLS request from %s[%s] for service %s",
		  s->client_name, s->client_addr, s->l->service);
	snprintf(reply_r, size, "454 4.7.0 Error: too many new TLS sessions "
		 "from %s[%s]", s->client_name, s->client_addr);
	return -1;
}

int
smtpd_limits_tls_done(struct smtpd_session *s, char *reply_r, size_t size)
{
	unsigned n;

	if (s->ssl != NULL && SSL_session_reused(s->ssl))
		return 0;
	n = client_event(s, ANVIL_NTLS,
			 s->l->s.smtpd_client_new_tls_session_rate_limit);
	if (n == 0)
		return 0;
	log_write(lname(s), SVC, LOG_LVL_WARNING,
		  "New TLS session rate limit exceeded: %u from %s[%s] for "
		  "service %s", n, s->client_name, s->client_addr, s->l->service);
	snprintf(reply_r, size, "421 4.7.0 %s Error: too many new TLS "
		 "sessions from %s[%s]", s->l->s.myhostname, s->client_name,
		 s->client_addr);
	return -1;
}

/* ---- SASL user limits ---- */

/* The user's limits as known for this session; false: lookup failed. */
static bool
user_known(struct smtpd_session *s, struct smtpd_limits_sess **ls_r)
{
	struct smtpd_limits_sess *ls = s->limits;

	*ls_r = ls;
	return ls != NULL && ls->login != NULL && ls->user_state > 0;
}

/* Tells the postmaster, through the queue (worker), once per hold. */
static void notice_send(struct smtpd_session *s, const char *what,
			unsigned count, long long limit, time_t until);

static int
user_event(struct smtpd_session *s, enum anvil_event ev, char *reply_r,
	   size_t size)
{
	const struct settings *st = &s->l->s;
	struct smtpd_limits_sess *ls;
	struct user_limits_result r;
	const char *what = ev == ANVIL_MAIL ? "message" : "recipient";
	char show[LOGIN_SHOW_MAX + 1];

	if (s->sasl_username == NULL || s->l->limits == NULL)
		return 0;
	if (!user_known(s, &ls)) {
		if (ls == NULL || ls->login == NULL)
			return 0;	/* not through smtpd_limits_user_login */
		snprintf(reply_r, size, "451 4.3.0 Error: temporary failure "
			 "looking up the sending limits of this user");
		return -1;
	}
	login_show(ls->login, show, sizeof(show));
	user_limits_event(user_table(st), ls->login, ev, &ls->user,
			  st->smtpd_sasl_user_hold_time, time(NULL), &r);
	if (r.hold_started) {
		log_write(lname(s), SVC, LOG_LVL_WARNING,
			  "SASL user %s: %u %ss in %llds from %s[%s] is over %ux "
			  "the limit of %lld: its mail is put on hold for %llds",
			  show, r.count, what, anvil_unit(users), s->client_name,
			  s->client_addr, ls->user.hold_factor, r.limit,
			  st->smtpd_sasl_user_hold_time);
		notice_send(s, what, r.count, r.limit, r.held_until);
	}
	if (r.held && s->tx != NULL && !s->tx->act.hold) {
		s->tx->act.hold = true;
		free(s->tx->act.hold_why);
		s->tx->act.hold_why = xasprintf("SASL user %s is over its "
						"sending limits", show);
	}
	if (!r.refuse)
		return 0;
	log_write(lname(s), SVC, LOG_LVL_WARNING,
		  "%s rate limit exceeded: %u for SASL user %s from %s[%s] for "
		  "service %s", ev == ANVIL_MAIL ? "Message delivery request"
		  : "Recipient address", r.count, show, s->client_name,
		  s->client_addr, s->l->service);
	snprintf(reply_r, size, "450 4.7.1 Error: too %s from SASL user %s",
		 ev == ANVIL_MAIL ? "much mail" : "many recipients", show);
	return -1;
}

int
smtpd_limits_user_mail(struct smtpd_session *s, char *reply_r, size_t size)
{
	return user_event(s, ANVIL_MAIL, reply_r, size);
}

int
smtpd_limits_rcpt(struct smtpd_session *s, char *reply_r, size_t size)
{
	unsigned n = client_event(s, ANVIL_RCPT,
				  s->l->s.smtpd_client_recipient_rate_limit);

	if (n > 0) {
		log_write(lname(s), SVC, LOG_LVL_WARNING,
			  "Recipient address rate limit exceeded: %u from "
			  "%s[%s] for service %s", n, s->client_name,
			  s->client_addr, s->l->service);
		snprintf(reply_r, size, "450 4.7.1 Error: too many recipients "
			 "from %s", s->client_addr);
		return -1;
	}
	return user_event(s, ANVIL_RCPT, reply_r, size);
}

struct lookup_job {
	struct smtpd_session *s;
	struct table_list    *maps;
	char                 *login;
	char                 *reply235;
	struct user_limits    lim;
	enum table_status     st;
	struct buf            value;
	struct errbuf         err;
};

static void
lookup_work(void *arg)
{
	struct lookup_job *j = arg;

	errbuf_clear(&j->err);
	buf_init(&j->value, 4096);
	j->st = table_list_lookup(j->maps, j->login, &j->value, &j->err, NULL);
}

/* The verdict of a lookup, into the session (loop thread). */
static void
lookup_apply(struct smtpd_session *s, struct lookup_job *j)
{
	struct smtpd_limits_sess *ls = sess(s);
	char show[LOGIN_SHOW_MAX + 1];
	struct errbuf e;

	login_show(j->login, show, sizeof(show));
	free(ls->login);
	ls->login = j->login;
	j->login = NULL;
	ls->user = j->lim;
	ls->user_state = 1;
	switch (j->st) {
	case TABLE_FOUND:
		errbuf_clear(&e);
		if (user_limits_parse_value(buf_cstr(&j->value), &ls->user,
					    &e) < 0)
			log_write(lname(s), SVC, LOG_LVL_WARNING,
				  "smtpd_sasl_user_limit_maps: SASL user %s: %s: "
				  "using the main.cf limits", show,
				  errbuf_str(&e));
		break;
	case TABLE_NOTFOUND:
		break;
	default:
		log_write(lname(s), SVC, LOG_LVL_WARNING,
			  "smtpd_sasl_user_limit_maps: %s", errbuf_str(&j->err));
		ls->user_state = -1;
		break;
	}
}

static void
lookup_job_free(struct lookup_job *j)
{
	free(j->login);
	free(j->reply235);
	buf_free(&j->value);
	free(j);
}

static void
lookup_done(void *arg)
{
	struct lookup_job *j = arg;
	struct smtpd_session *s = j->s;

	if (!s->closing && s->bev != NULL) {
		lookup_apply(s, j);
		smtpd_session_reply(s, "%s", j->reply235);
	}
	lookup_job_free(j);
	smtpd_session_resume(s);
}

bool
smtpd_limits_user_login(struct smtpd_session *s, const char *reply235)
{
	struct smtpd_limits_conf *c = s->l->limits;
	struct lookup_job *j;

	if (c == NULL || s->sasl_username == NULL)
		return false;
	j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->maps = c->user_maps;
	j->lim = c->defaults;
	j->login = xstrdup(s->sasl_username);
	for (char *p = j->login; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	j->st = TABLE_NOTFOUND;
	if (c->user_maps == NULL || !table_list_blocking(c->user_maps)) {
		if (c->user_maps != NULL)
			lookup_work(j);
		lookup_apply(s, j);
		lookup_job_free(j);
		return false;
	}
	j->reply235 = xstrdup(reply235);
	if (!s->busy) {
		s->busy = 1;
		bufferevent_disable(s->bev, EV_READ);
	}
	worker_submit(s->l->srv->pool, lookup_work, lookup_done, j);
	return true;
}

/* ---- the postmaster notice ---- */

struct notice_job {
	struct smtpd_server   *srv;
	struct smtpd_listener *l;	/* held (smtpd_listener_hold): a reload
					   may retire it while the job runs */
	struct resolve_ctx    *resolve;	/* l's */
	char                  *rcpt, *text, *subject, *myhostname, *syslog_name;
	char                  *qdir;
	char                  id[QUEUE_ID_SIZE];
	char                  err[512];
	bool                  ok;
};

static void
notice_work(void *arg)
{
	struct notice_job *j = arg;
	struct resolve_result res;
	struct queue_env env;
	struct errbuf e;
	struct addr a;
	struct buf msg;
	struct timeval tv;
	struct tm tm;
	char date[64];
	const char *why;

	memset(&res, 0, sizeof(res));
	memset(&env, 0, sizeof(env));
	if (addr_parse_mailbox(j->rcpt, &a, &why) < 0) {
		snprintf(j->err, sizeof(j->err), "smtpd_sasl_user_notice_recipient"
			 " \"%s\": %s", j->rcpt, why);
		return;
	}
	if (resolve_rcpt(j->resolve, &a, &res) != RESOLVE_OK || res.n == 0) {
		snprintf(j->err, sizeof(j->err), "cannot resolve the notice "
			 "recipient %s: %s", j->rcpt,
			 res.reason ? res.reason : "no destination");
		addr_free(&a);
		resolve_result_free(&res);
		return;
	}
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	queue_id_new(env.id);
	buf_init(&msg, 0);
	buf_printf(&msg, "Date: %s\nFrom: Mail Delivery System "
		   "<MAILER-DAEMON@%s>\nTo: <%s%s%s>\nSubject: %s\n"
		   "Message-ID: <%s.limits@%s>\nAuto-Submitted: auto-generated\n"
		   "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n"
		   "Content-Transfer-Encoding: 7bit\n\n%s", date, j->myhostname,
		   a.local, a.domain[0] ? "@" : "", a.domain, j->subject, env.id,
		   j->myhostname, j->text);
	env.arrival = tv.tv_sec;
	env.arrival_usec = (long)tv.tv_usec;
	env.sender = (char *)"";
	env.client_name = (char *)"localhost";
	env.client_addr = (char *)"127.0.0.1";
	env.helo = j->myhostname;
	env.protocol = (char *)"local";
	env.size = (long long)msg.len;
	env.rcpt = xcalloc(res.n, sizeof(*env.rcpt));
	for (size_t i = 0; i < res.n; i++) {
		env.rcpt[env.nrcpt].orig = j->rcpt;
		env.rcpt[env.nrcpt].addr = res.v[i].addr;
		env.rcpt[env.nrcpt].status = QUEUE_RCPT_PENDING;
		env.nrcpt++;
	}
	errbuf_clear(&e);
	if (queue_write(j->qdir, &env, msg.data ? msg.data : "", msg.len, false,
			&e) < 0) {
		snprintf(j->err, sizeof(j->err), "queue file write error: %s",
			 errbuf_str(&e));
	} else {
		memcpy(j->id, env.id, sizeof(j->id));
		j->ok = true;
	}
	free(env.rcpt);
	buf_free(&msg);
	addr_free(&a);
	resolve_result_free(&res);
}

static void
notice_done(void *arg)
{
	struct notice_job *j = arg;

	if (j->ok) {
		log_write(j->syslog_name, SVC, LOG_LVL_INFO,
			  "%s: postmaster notice: %s", j->id, j->subject);
		if (j->srv->qmgr != NULL)
			qmgr_enqueued(j->srv->qmgr, j->id);
	} else {
		log_write(j->syslog_name, SVC, LOG_LVL_WARNING,
			  "cannot notify the postmaster (%s): %s", j->subject,
			  j->err);
	}
	free(j->rcpt);
	free(j->text);
	free(j->subject);
	free(j->myhostname);
	free(j->syslog_name);
	free(j->qdir);
	/* last: may free a retired listener (and its resolve ctx) */
	smtpd_listener_release(j->l);
	free(j);
}

static void
notice_send(struct smtpd_session *s, const char *what, unsigned count,
	    long long limit, time_t until)
{
	const struct settings *st = &s->l->s;
	struct notice_job *j = xcalloc(1, sizeof(*j));
	char show[LOGIN_SHOW_MAX + 1], when[64], cname[256];
	struct tm tm;

	login_show(s->limits->login, show, sizeof(show));
	login_show(s->client_name, cname, sizeof(cname));
	localtime_r(&until, &tm);
	strftime(when, sizeof(when), "%a, %d %b %Y %H:%M:%S %z", &tm);
	j->srv = s->l->srv;
	j->l = s->l;
	j->resolve = s->l->resolve;
	j->qdir = xstrdup(s->l->srv->queue_dir);
	j->myhostname = xstrdup(st->myhostname);
	j->syslog_name = xstrdup(st->syslog_name);
	j->rcpt = xstrdup(st->smtpd_sasl_user_notice_recipient[0]
			  ? st->smtpd_sasl_user_notice_recipient : "postmaster");
	j->subject = xasprintf("SASL user %s put on hold", show);
	j->text = xasprintf(
	    "The SASL user %s sent %u %ss within %lld seconds, more than\n"
	    "%u times its limit of %lld (last from %s[%s], service %s).\n"
	    "This looks like a compromised account.\n\n"
	    "Until %s, the mail this user sends is\n"
	    "accepted into the hold queue instead of being delivered, and the\n"
	    "rate limits still apply. Review it with \"facteur queue list\",\n"
	    "then \"facteur queue release ID\" or \"facteur queue delete ID\".\n"
	    "You get this notice once per hold period.\n",
	    show, count, what, anvil_unit(users), s->limits->user.hold_factor,
	    limit, cname, s->client_addr, s->l->service, when);
	/* The session may end, and a reload retire its listener, before the
	 * job is done: the listener stays until notice_done releases it. */
	smtpd_listener_hold(s->l);
	worker_submit(s->l->srv->pool, notice_work, notice_done, j);
}
