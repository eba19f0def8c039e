/*
 * milter.c - smtpd_milters on the event loop (see milter.h): one
 * connection per listed milter and SMTP session (as Postfix: libmilter
 * closes its socket with the client), option negotiation, macros, one
 * stage at a time for every milter in order, replies and timeouts
 * (milter_connect_timeout for the connection, milter_command_timeout
 * for the negotiation and each command, milter_content_timeout for the
 * message), and the end-of-message changes applied to the transaction.
 * The wire format is milter_proto.c's; header and body editing is
 * milter_edit.c's.
 * Must not: block (a host name in an inet: address is looked up on a
 * worker, once per session), trust a
 * milter (malformed or oversized replies fail that milter, which then
 * gets its default action), or touch a session that is gone.
 */
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <openssl/ssl.h>

#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/milter.h"
#include "core/milter_edit.h"
#include "core/milter_proto.h"
#include "core/receive_override.h"
#include "core/smtpd_ccert.h"
#include "core/smtpd_listener.h"
#include "core/smtpd_session.h"
#include "core/worker.h"

#define SVC "smtpd"
#define MILTER_MODS_MAX   1000	/* changes per milter and message */
#define MILTER_HDR_MAX    (64 * 1024)	/* one header value from a milter */

static const char tempfail_reply[] =
	"451 4.7.1 Service unavailable - try again later";
static const char reject_reply[] = "550 5.7.1 Command rejected";
static const char config_reply[] = "451 4.3.5 Server configuration error";

enum milter_step {
	MS_NONE, MS_CONNECT, MS_HELO, MS_MAIL, MS_RCPT, MS_DATA, MS_EOM
};

enum conn_state { MC_NEW, MC_CONNECTING, MC_OPTNEG, MC_READY, MC_FAILED,
		  MC_DONE };

struct milter_sess;

struct milter_conn {
	struct milter_sess *ms;
	struct milter_def   d;
	struct bufferevent *bev;
	enum conn_state     st;
	uint32_t            actions, proto;
	char               *macros[MILTER_M_COUNT];	/* asked at OPTNEG */
	bool                msg_accepted;	/* ACCEPT: quiet until the
						   message ends */
	bool                in_msg;	/* MAIL was shown: ABORT owed */
	bool                waiting;	/* a reply is expected */
	int                 wait_cmd;	/* for log lines */
	unsigned            nmods;
	/* a host name's addresses, tried in order */
	struct sockaddr_storage addrs[4];
	socklen_t           addrlens[4];
	int                 naddr, iaddr;
};

struct milter_sess {
	struct smtpd_session *s;
	struct milter_conn   *c;
	size_t                n;
	struct event         *kick;	/* runs the step from the loop */
	/* the step in progress */
	enum milter_step      step;
	size_t                cur;
	milter_done_fn        done;
	void                 *arg;
	char                 *rcpt;
	struct buf            verdict;	/* reply for the client, or empty */
	bool                  discard, hold;
	bool                  finish;	/* the verdict is in: end the step */
	bool                  config_error;	/* a bad milter list: 451 */
	bool                  sent;	/* the current milter has had the
					   step's command (not EOM) */
	char                 *hold_why;
	/* end of message */
	int                   phase;
	size_t                hdr_i, body_off;
	struct milter_msg     msg;
	bool                  msg_loaded, changed;
	struct buf            scratch;
	char                  daemon_addr[INET6_ADDRSTRLEN];
	unsigned              daemon_port, client_port;
};

/* ---- configuration ---- */

static int
parse_action(const char *v, enum milter_act *a)
{
	if (strcasecmp(v, "accept") == 0)
		*a = MA_ACCEPT;
	else if (strcasecmp(v, "tempfail") == 0)
		*a = MA_TEMPFAIL;
	else if (strcasecmp(v, "reject") == 0)
		*a = MA_REJECT;
	else if (strcasecmp(v, "quarantine") == 0)
		*a = MA_QUARANTINE;
	else
		return -1;
	return 0;
}

void
milter_def_free(struct milter_def *d)
{
	free(d->name);
	free(d->host);
	free(d->port);
	free(d->path);
	memset(d, 0, sizeof(*d));
}

static int
parse_address(struct milter_def *d, const char *a, struct errbuf *err)
{
	d->name = xstrdup(a);
	/* "local:" is Sendmail's (and OpenDKIM's) name for unix: */
	if ((strncmp(a, "unix:", 5) == 0 || strncmp(a, "local:", 6) == 0) &&
	    a[a[0] == 'u' ? 5 : 6] != '\0') {
		const char *path = a + (a[0] == 'u' ? 5 : 6);

		if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			errbuf_set(err, "milter %s: socket path too long", a);
			return -1;
		}
		d->path = xstrdup(path);
		return 0;
	}
	if (strncmp(a, "inet:", 5) == 0) {
		const char *hp = a + 5, *colon;

		if (*hp == '[') {	/* inet:[::1]:port */
			const char *rb = strchr(hp, ']');

			if (rb == NULL || rb[1] != ':' || rb[2] == '\0')
				goto bad;
			d->host = xstrndup(hp + 1, (size_t)(rb - hp - 1));
			d->port = xstrdup(rb + 2);
			return 0;
		}
		colon = strrchr(hp, ':');
		if (colon == NULL || colon == hp || colon[1] == '\0')
			goto bad;
		d->host = xstrndup(hp, (size_t)(colon - hp));
		d->port = xstrdup(colon + 1);
		return 0;
	}
	/* Postfix accepts a bare /path as unix: too */
	if (a[0] == '/') {
		d->path = xstrdup(a);
		return 0;
	}
bad:
	errbuf_set(err, "milter %s: expected inet:host:port or unix:/path", a);
	return -1;
}

static int
parse_time(const char *v, long long *r)
{
	char *end;
	long long n = strtoll(v, &end, 10);

	if (end == v || n < 1)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		*r = n;
	else if (strcmp(end, "m") == 0)
		*r = n * 60;
	else if (strcmp(end, "h") == 0)
		*r = n * 3600;
	else
		return -1;
	return 0;
}

/* One list item: an address or "{ address, name=value ... }". */
static int
parse_item(struct milter_def *d, const char *item, struct errbuf *err)
{
	struct strlist parts;
	char *inner;
	size_t len = strlen(item);
	int rc = 0;

	if (item[0] != '{')
		return parse_address(d, item, err);
	if (len < 2 || item[len - 1] != '}') {
		errbuf_set(err, "milter %s: missing '}'", item);
		return -1;
	}
	inner = xstrndup(item + 1, len - 2);
	strlist_init(&parts);
	(void)strlist_split(&parts, inner);
	free(inner);
	if (parts.n == 0) {
		errbuf_set(err, "milter %s: no address", item);
		strlist_free(&parts);
		return -1;
	}
	rc = parse_address(d, parts.v[0], err);
	for (size_t i = 1; rc == 0 && i < parts.n; i++) {
		char *eq = strchr(parts.v[i], '=');
		const char *v;
		long long t;

		if (eq == NULL) {
			errbuf_set(err, "milter %s: bad setting: %s", d->name,
				   parts.v[i]);
			rc = -1;
			break;
		}
		*eq = '\0';
		v = eq + 1;
		if (strcmp(parts.v[i], "default_action") == 0) {
			if (parse_action(v, &d->action) < 0)
				rc = -1;
		} else if (strcmp(parts.v[i], "connect_timeout") == 0 ||
			   strcmp(parts.v[i], "command_timeout") == 0 ||
			   strcmp(parts.v[i], "content_timeout") == 0) {
			if (parse_time(v, &t) < 0)
				rc = -1;
			else if (parts.v[i][2] == 'n' && parts.v[i][3] == 'n')
				d->conn_timeout = t;
			else if (parts.v[i][2] == 'm')
				d->cmd_timeout = t;
			else
				d->content_timeout = t;
		} else if (strcmp(parts.v[i], "protocol") == 0) {
			if (strlen(v) != 1 || v[0] < '2' || v[0] > '6')
				rc = -1;
			else
				d->version = (unsigned)(v[0] - '0');
		} else {
			errbuf_set(err, "milter %s: unknown setting: %s", d->name,
				   parts.v[i]);
			rc = -1;
			break;
		}
		if (rc < 0)
			errbuf_set(err, "milter %s: bad value for %s: %s",
				   d->name, parts.v[i], v);
	}
	strlist_free(&parts);
	return rc;
}

int
milter_defs_parse(const char *value, const struct settings *st,
		  struct milter_def *defs, struct errbuf *err)
{
	struct strlist items;
	size_t n = 0;
	enum milter_act act = MA_TEMPFAIL;

	strlist_init(&items);
	if (strlist_split(&items, value) < 0) {
		errbuf_set(err, "unbalanced '{' in milter list: %s", value);
		strlist_free(&items);
		return -1;
	}
	if (st != NULL && parse_action(st->milter_default_action, &act) < 0) {
		errbuf_set(err, "bad milter_default_action: %s",
			   st->milter_default_action);
		strlist_free(&items);
		return -1;
	}
	for (size_t i = 0; i < items.n; i++) {
		struct milter_def *d;

		if (n == MILTER_MAX) {
			errbuf_set(err, "more than %d milters", MILTER_MAX);
			goto fail;
		}
		d = &defs[n];
		memset(d, 0, sizeof(*d));
		d->action = act;
		d->conn_timeout = st ? st->milter_connect_timeout : 30;
		d->cmd_timeout = st ? st->milter_command_timeout : 30;
		d->content_timeout = st ? st->milter_content_timeout : 300;
		d->version = st && st->milter_protocol < 6
			     ? (unsigned)st->milter_protocol : 6;
		n++;
		if (parse_item(d, items.v[i], err) < 0)
			goto fail;
	}
	strlist_free(&items);
	return (int)n;
fail:
	for (size_t i = 0; i < n; i++)
		milter_def_free(&defs[i]);
	strlist_free(&items);
	return -1;
}

int
milter_list_check(const char *value, struct errbuf *err)
{
	struct milter_def defs[MILTER_MAX];
	int n = milter_defs_parse(value, NULL, defs, err);

	for (int i = 0; i < n; i++)
		milter_def_free(&defs[i]);
	return n < 0 ? -1 : 0;
}

int
non_smtpd_milters_check(const struct settings *s, struct errbuf *err)
{
	char why[512];

	if (milter_list_check(s->non_smtpd_milters, err) == 0)
		return 0;
	snprintf(why, sizeof(why), "non_smtpd_milters: %s", errbuf_str(err));
	errbuf_set(err, "%s", why);
	return -1;
}

/* ---- small helpers ---- */

static const char *
sname(const struct milter_sess *ms)
{
	return ms->s->l->s.syslog_name;
}

static const char *
helo_of(const struct smtpd_session *s)
{
	return s->helo ? s->helo : "";
}

static const char *
proto_of(const struct smtpd_session *s)
{
	return s->esmtp ? "ESMTP" : "SMTP";
}

static long long
timeout_of(const struct milter_conn *c)
{
	/* as Postfix: the connection under milter_connect_timeout, the
	 * negotiation (a command) under milter_command_timeout */
	if (c->st == MC_CONNECTING)
		return c->d.conn_timeout;
	if (c->st == MC_OPTNEG)
		return c->d.cmd_timeout;
	return c->ms->step == MS_EOM ? c->d.content_timeout : c->d.cmd_timeout;
}

static void
arm(struct milter_conn *c, int cmd)
{
	struct timeval tv = { (time_t)timeout_of(c), 0 };

	c->waiting = true;
	c->wait_cmd = cmd;
	bufferevent_set_timeouts(c->bev, &tv, &tv);
}

static void
disarm(struct milter_conn *c)
{
	c->waiting = false;
	if (c->bev != NULL)
		bufferevent_set_timeouts(c->bev, NULL, NULL);
}

static void
out_buf(struct milter_conn *c, const struct buf *b)
{
	if (c->bev != NULL && b->len > 0)
		bufferevent_write(c->bev, b->data, b->len);
}

static void step_run(struct milter_sess *ms);
static void step_finish(struct milter_sess *ms);

/* ---- macros ---- */

/* The value of one macro, or NULL when it is not defined now. */
static const char *
macro_value(struct milter_sess *ms, const char *name, struct buf *tmp)
{
	struct smtpd_session *s = ms->s;
	const struct settings *st = &s->l->s;
	const struct smtpd_txn *t = s->tx;

	buf_reset(tmp);
	if (strcmp(name, "j") == 0)
		return st->myhostname;
	if (strcmp(name, "_") == 0) {
		buf_printf(tmp, "%s [%s]", s->client_name, s->client_addr);
		return buf_cstr(tmp);
	}
	if (strcmp(name, "v") == 0 || strcmp(name, "{v}") == 0)
		return st->milter_macro_v;
	if (strcmp(name, "{daemon_name}") == 0)
		return st->milter_macro_daemon_name;
	if (strcmp(name, "{daemon_addr}") == 0)
		return ms->daemon_addr[0] ? ms->daemon_addr : NULL;
	if (strcmp(name, "{daemon_port}") == 0 && ms->daemon_port) {
		buf_printf(tmp, "%u", ms->daemon_port);
		return buf_cstr(tmp);
	}
	if (strcmp(name, "{client_addr}") == 0)
		return s->client_addr;
	if (strcmp(name, "{client_name}") == 0)
		return s->client_name;
	if (strcmp(name, "{client_ptr}") == 0)
		return s->reverse_client_name ? s->reverse_client_name
					      : "unknown";
	if (strcmp(name, "{client_port}") == 0 && ms->client_port) {
		buf_printf(tmp, "%u", ms->client_port);
		return buf_cstr(tmp);
	}
	if (strcmp(name, "i") == 0)
		return t != NULL && t->id[0] ? t->id : NULL;
	if (strcmp(name, "{auth_type}") == 0)
		return s->sasl_username ? s->sasl_method : NULL;
	if (strcmp(name, "{auth_authen}") == 0)
		return s->sasl_username;
	if (strcmp(name, "{mail_addr}") == 0)
		return t != NULL ? t->sender : NULL;
	if (strcmp(name, "{rcpt_addr}") == 0)
		return ms->rcpt;
	if (s->ssl != NULL && s->tls_up) {
		if (strcmp(name, "{tls_version}") == 0)
			return SSL_get_version(s->ssl);
		if (strcmp(name, "{cipher}") == 0)
			return SSL_get_cipher_name(s->ssl);
		if (strcmp(name, "{cipher_bits}") == 0) {
			buf_printf(tmp, "%d", SSL_get_cipher_bits(s->ssl, NULL));
			return buf_cstr(tmp);
		}
		/* the client certificate's CNs (core/smtpd_ccert.h) */
		if (strcmp(name, "{cert_subject}") == 0)
			return s->ccert ? s->ccert->subject_cn : NULL;
		if (strcmp(name, "{cert_issuer}") == 0)
			return s->ccert ? s->ccert->issuer_cn : NULL;
	}
	return NULL;
}

const char *
milter_macro_default(const char *defaults, const char *name, struct buf *tmp)
{
	struct strlist l;
	const char *bare = name;
	size_t blen = strlen(name);
	const char *found = NULL;

	if (defaults == NULL || *defaults == '\0')
		return NULL;
	if (blen > 2 && name[0] == '{' && name[blen - 1] == '}') {
		bare = name + 1;
		blen -= 2;
	}
	strlist_init(&l);
	(void)strlist_split(&l, defaults);
	for (size_t i = 0; i < l.n && found == NULL; i++) {
		const char *it = l.v[i], *eq = strchr(it, '=');
		size_t n;

		if (eq == NULL)
			continue;
		n = (size_t)(eq - it);
		if (n > 2 && it[0] == '{' && it[n - 1] == '}') {
			it++;
			n -= 2;
		}
		if (n == blen && strncmp(it, bare, n) == 0) {
			buf_set(tmp, eq + 1);
			found = buf_cstr(tmp);
		}
	}
	strlist_free(&l);
	return found;
}

const char *
milter_stage_macros(const struct settings *st, const char *override,
		    enum milter_stage stage)
{
	if (override != NULL)
		return override;
	switch (stage) {
	case MILTER_M_CONNECT:	return st->milter_connect_macros;
	case MILTER_M_HELO:	return st->milter_helo_macros;
	case MILTER_M_ENVFROM:	return st->milter_mail_macros;
	case MILTER_M_ENVRCPT:	return st->milter_rcpt_macros;
	case MILTER_M_DATA:	return st->milter_data_macros;
	case MILTER_M_EOH:	return st->milter_end_of_header_macros;
	case MILTER_M_EOM:	return st->milter_end_of_data_macros;
	default:		return "";
	}
}

static void
send_macros(struct milter_conn *c, int cmd, enum milter_stage stage)
{
	struct strlist names, values, keep;
	struct buf tmp, pkt;

	strlist_init(&names);
	strlist_init(&values);
	strlist_init(&keep);
	buf_init(&tmp, 0);
	buf_init(&pkt, 0);
	(void)strlist_split(&names,
	    milter_stage_macros(&c->ms->s->l->s, c->macros[stage], stage));
	for (size_t i = 0; i < names.n; i++) {
		const char *v = macro_value(c->ms, names.v[i], &tmp);

		if (v == NULL)
			v = milter_macro_default(c->ms->s->l->s.milter_macro_defaults,
						 names.v[i], &tmp);
		if (v == NULL)
			continue;
		strlist_add(&keep, names.v[i]);
		strlist_add(&values, v);
	}
	if (keep.n > 0) {
		milter_put_macros(&pkt, cmd, (const char *const *)keep.v,
				  (const char *const *)values.v, keep.n);
		out_buf(c, &pkt);
	}
	buf_free(&pkt);
	buf_free(&tmp);
	strlist_free(&names);
	strlist_free(&values);
	strlist_free(&keep);
}

/* ---- connection ---- */

static void conn_read(struct bufferevent *bev, void *arg);
static void conn_event(struct bufferevent *bev, short what, void *arg);

static void
conn_close(struct milter_conn *c)
{
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
}

/* The milter is out for the rest of the session; the step in progress
 * goes on with its default action. */
static void
conn_fail(struct milter_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
conn_fail(struct milter_conn *c, const char *fmt, ...)
{
	struct milter_sess *ms = c->ms;
	char why[512];
	va_list ap;
	bool was_waiting = c->waiting;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_write(sname(ms), SVC, LOG_LVL_WARNING, "%s", why);
	disarm(c);
	conn_close(c);
	c->st = MC_FAILED;
	if (was_waiting && ms->step != MS_NONE)
		event_active(ms->kick, 0, 0);
}

/* Connects to the address; 0 when under way (CONNECTED or an error
 * event follows), -1 (logged, the milter failed) otherwise. */
static int
conn_connect(struct milter_conn *c, const struct sockaddr *sa, socklen_t sl)
{
	struct milter_sess *ms = c->ms;

	c->bev = bufferevent_socket_new(ms->s->l->srv->base, -1,
					BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		c->st = MC_FAILED;
		return -1;
	}
	bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, MILTER_REPLY_MAX + 4);
	c->st = MC_CONNECTING;
	arm(c, MILTER_C_OPTNEG);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)sa,
				       (int)sl) < 0) {
		int e = errno;

		disarm(c);
		conn_close(c);
		c->st = MC_FAILED;
		log_write(sname(ms), SVC, LOG_LVL_WARNING,
			  "connect to Milter service %s: %s", c->d.name,
			  strerror(e));
		return -1;
	}
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return 0;
}

/* A host name in inet:host:port is looked up on a worker (the system
 * resolver may block); the connection follows on the loop. */
struct resolve_job {
	struct milter_conn     *c;
	struct sockaddr_storage ss[4];
	socklen_t               sl[4];
	int                     n;
	int                     err;	/* getaddrinfo's, 0 = found */
};

static void
resolve_work(void *arg)
{
	struct resolve_job *j = arg;
	struct addrinfo hints, *res = NULL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	j->err = getaddrinfo(j->c->d.host, j->c->d.port, &hints, &res);
	for (struct addrinfo *a = res; j->err == 0 && a != NULL && j->n < 4;
	     a = a->ai_next) {
		if (a->ai_addrlen > sizeof(j->ss[0]))
			continue;
		memcpy(&j->ss[j->n], a->ai_addr, a->ai_addrlen);
		j->sl[j->n++] = a->ai_addrlen;
	}
	if (j->err == 0 && j->n == 0)
		j->err = EAI_NONAME;
	if (res != NULL)
		freeaddrinfo(res);
}

static void
resolve_done(void *arg)
{
	struct resolve_job *j = arg;
	struct milter_conn *c = j->c;

	c->waiting = false;
	if (j->err != 0) {
		c->st = MC_FAILED;
		log_write(sname(c->ms), SVC, LOG_LVL_WARNING,
			  "connect to Milter service %s: %s", c->d.name,
			  gai_strerror(j->err));
		event_active(c->ms->kick, 0, 0);
	} else {
		for (int i = 0; i < j->n; i++) {
			c->addrs[i] = j->ss[i];
			c->addrlens[i] = j->sl[i];
		}
		c->naddr = j->n;
		c->iaddr = 0;
		if (conn_connect(c, (struct sockaddr *)&c->addrs[0],
				 c->addrlens[0]) < 0)
			event_active(c->ms->kick, 0, 0);
	}
	free(j);
}

static int
conn_start(struct milter_conn *c)
{
	struct milter_sess *ms = c->ms;
	struct sockaddr_storage ss;
	struct addrinfo hints, *res = NULL;
	struct resolve_job *j;
	socklen_t sl = 0;
	int e;

	memset(&ss, 0, sizeof(ss));
	if (c->d.path != NULL) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;

		un->sun_family = AF_UNIX;
		snprintf(un->sun_path, sizeof(un->sun_path), "%s", c->d.path);
		return conn_connect(c, (struct sockaddr *)&ss, sizeof(*un));
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST;
	e = getaddrinfo(c->d.host, c->d.port, &hints, &res);
	if (e == 0 && res != NULL && res->ai_addrlen <= sizeof(ss)) {
		memcpy(&ss, res->ai_addr, res->ai_addrlen);
		sl = res->ai_addrlen;
		freeaddrinfo(res);
		return conn_connect(c, (struct sockaddr *)&ss, sl);
	}
	if (res != NULL)
		freeaddrinfo(res);
	/* a name: off the loop */
	j = xcalloc(1, sizeof(*j));
	j->c = c;
	c->st = MC_CONNECTING;
	c->waiting = true;
	c->wait_cmd = MILTER_C_OPTNEG;
	worker_submit(ms->s->l->srv->pool, resolve_work, resolve_done, j);
	return 0;
}

static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct milter_conn *c = arg;
	int e = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		struct buf pkt;

		buf_init(&pkt, 0);
		milter_put_optneg(&pkt, c->d.version, MILTER_F_ALL,
				  MILTER_P_OFFER);
		c->st = MC_OPTNEG;
		out_buf(c, &pkt);
		buf_free(&pkt);
		arm(c, MILTER_C_OPTNEG);
		return;
	}
	if (c->st == MC_CONNECTING && c->iaddr + 1 < c->naddr) {
		/* the host name's next address (::1, then 127.0.0.1 ...) */
		disarm(c);
		conn_close(c);
		c->iaddr++;
		if (conn_connect(c, (struct sockaddr *)&c->addrs[c->iaddr],
				 c->addrlens[c->iaddr]) < 0)
			event_active(c->ms->kick, 0, 0);
		return;
	}
	if (c->st == MC_CONNECTING) {
		conn_fail(c, "connect to Milter service %s: %s", c->d.name,
			  what & BEV_EVENT_TIMEOUT ? "Connection timed out"
						   : strerror(e ? e : ECONNREFUSED));
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		conn_fail(c, "milter %s: can't read %s reply packet header: "
			  "Connection timed out", c->d.name,
			  milter_cmd_name(c->wait_cmd));
	else if (c->waiting)
		conn_fail(c, "milter %s: can't read %s reply packet header: %s",
			  c->d.name, milter_cmd_name(c->wait_cmd),
			  what & BEV_EVENT_EOF ? "Unexpected end-of-input"
					       : strerror(e ? e : EPIPE));
	else
		conn_fail(c, "milter %s: connection closed by the milter",
			  c->d.name);
}

/* ---- one stage for one milter ---- */

static bool
msg_step(enum milter_step st)
{
	return st == MS_MAIL || st == MS_RCPT || st == MS_DATA || st == MS_EOM;
}

/* "<addr>" for MAIL and RCPT */
static char *
bracket(const char *a)
{
	return xasprintf("<%s>", a ? a : "");
}

/* Sends a command (and its macros). 1: a reply is expected. */
static int
send_cmd(struct milter_conn *c, int cmd, enum milter_stage mst, uint32_t no,
	 uint32_t nr, const char *const *v, size_t nv)
{
	struct buf pkt;

	if (c->proto & no)
		return 0;
	send_macros(c, cmd, mst);
	buf_init(&pkt, 0);
	if (nv > 0)
		milter_put_strings(&pkt, cmd, v, nv);
	else
		milter_put(&pkt, cmd, NULL, 0);
	out_buf(c, &pkt);
	buf_free(&pkt);
	if (c->proto & nr)
		return 0;
	arm(c, cmd);
	return 1;
}

/* The next body chunk from body_off, LF -> CR LF; 0 when none is left. */
static size_t
body_chunk(struct milter_sess *ms, struct buf *chunk)
{
	size_t blen, i;
	const char *b = milter_msg_body(&ms->msg, &blen);

	buf_reset(chunk);
	for (i = ms->body_off; i < blen && chunk->len + 2 <= MILTER_CHUNK_MAX;
	     i++) {
		if (b[i] == '\n')
			(void)buf_putc(chunk, '\r');
		(void)buf_putc(chunk, b[i]);
	}
	ms->body_off = i;
	return chunk->len;
}

/* End of message for the current milter: the next packet(s) until one
 * wants a reply. 1: waiting; 0: this milter is done. */
static int
send_eom(struct milter_conn *c)
{
	struct milter_sess *ms = c->ms;
	struct buf pkt, val;

	buf_init(&pkt, 0);
	buf_init(&val, 0);
	for (;;) {
		buf_reset(&pkt);
		if (ms->phase == 0) {		/* headers */
			const char *h;
			char *name;
			const char *v[2];

			if ((c->proto & MILTER_P_NOHDRS) ||
			    ms->hdr_i >= ms->msg.hdrs.n) {
				ms->phase = 1;
				continue;
			}
			h = ms->msg.hdrs.v[ms->hdr_i++];
			name = xstrndup(h, milter_hdr_name(h));
			milter_hdr_value(h, c->proto & MILTER_P_HDR_LEADSPC, &val);
			v[0] = name;
			v[1] = buf_cstr(&val);
			milter_put_strings(&pkt, MILTER_C_HEADER, v, 2);
			free(name);
			out_buf(c, &pkt);
			if (c->proto & MILTER_P_NR_HDR)
				continue;
			arm(c, MILTER_C_HEADER);
			break;
		}
		if (ms->phase == 1) {		/* end of headers */
			ms->phase = 2;
			if (send_cmd(c, MILTER_C_EOH, MILTER_M_EOH,
				     MILTER_P_NOEOH, MILTER_P_NR_EOH, NULL, 0))
				break;
			continue;
		}
		if (ms->phase == 2) {		/* body chunks */
			if ((c->proto & MILTER_P_NOBODY) ||
			    body_chunk(ms, &val) == 0) {
				ms->phase = 3;
				continue;
			}
			milter_put(&pkt, MILTER_C_BODY, val.data, val.len);
			out_buf(c, &pkt);
			if (c->proto & MILTER_P_NR_BODY)
				continue;
			arm(c, MILTER_C_BODY);
			break;
		}
		if (ms->phase == 3) {		/* end of message */
			ms->phase = 4;
			send_macros(c, MILTER_C_BODYEOB, MILTER_M_EOM);
			milter_put(&pkt, MILTER_C_BODYEOB, NULL, 0);
			out_buf(c, &pkt);
			arm(c, MILTER_C_BODYEOB);
			break;
		}
		buf_free(&pkt);
		buf_free(&val);
		return 0;
	}
	buf_free(&pkt);
	buf_free(&val);
	return 1;
}

/* What the current step shows the current milter next. 1: waiting. */
static int
send_step(struct milter_conn *c)
{
	struct milter_sess *ms = c->ms;
	struct smtpd_session *s = ms->s;
	const char *v[1];
	char *a;
	int r;

	if (ms->step != MS_EOM && !(ms->step == MS_CONNECT && c->st == MC_NEW))
		ms->sent = true;
	switch (ms->step) {
	case MS_CONNECT:
		if (c->st == MC_NEW)
			return conn_start(c) == 0;
		if (c->st != MC_READY)
			return 0;
		if (c->proto & MILTER_P_NOCONNECT)
			return 0;
		{
			struct buf pkt;

			send_macros(c, MILTER_C_CONNECT, MILTER_M_CONNECT);
			buf_init(&pkt, 0);
			milter_put_connect(&pkt, s->client_name, s->client_addr,
					   ms->client_port);
			out_buf(c, &pkt);
			buf_free(&pkt);
		}
		if (c->proto & MILTER_P_NR_CONN)
			return 0;
		arm(c, MILTER_C_CONNECT);
		return 1;
	case MS_HELO:
		v[0] = helo_of(s);
		return send_cmd(c, MILTER_C_HELO, MILTER_M_HELO, MILTER_P_NOHELO,
				MILTER_P_NR_HELO, v, 1);
	case MS_MAIL: {
		/* the sender, then its ESMTP parameters, as Postfix */
		const struct smtpd_txn *t = s->tx;
		static const char *const body[] = {
			[SMTPD_BODY_7BIT] = "BODY=7BIT",
			[SMTPD_BODY_8BITMIME] = "BODY=8BITMIME",
			[SMTPD_BODY_BINARYMIME] = "BODY=BINARYMIME",
		};
		const char *mv[5];
		char size[40];
		size_t n = 0;

		c->in_msg = true;
		a = bracket(t->sender);
		mv[n++] = a;
		if (t->declared_size >= 0) {
			snprintf(size, sizeof(size), "SIZE=%lld",
				 t->declared_size);
			mv[n++] = size;
		}
		if (t->body != SMTPD_BODY_NONE &&
		    (size_t)t->body < sizeof(body) / sizeof(body[0]))
			mv[n++] = body[t->body];
		if (t->smtputf8)
			mv[n++] = "SMTPUTF8";
		r = send_cmd(c, MILTER_C_MAIL, MILTER_M_ENVFROM, MILTER_P_NOMAIL,
			     MILTER_P_NR_MAIL, mv, n);
		free(a);
		return r;
	}
	case MS_RCPT:
		a = bracket(ms->rcpt);
		v[0] = a;
		r = send_cmd(c, MILTER_C_RCPT, MILTER_M_ENVRCPT, MILTER_P_NORCPT,
			     MILTER_P_NR_RCPT, v, 1);
		free(a);
		return r;
	case MS_DATA:
		return send_cmd(c, MILTER_C_DATA, MILTER_M_DATA, MILTER_P_NODATA,
				MILTER_P_NR_DATA, NULL, 0);
	case MS_EOM:
		return send_eom(c);
	default:
		return 0;
	}
}

/* ---- the step driver ---- */

static void
reset_eom_cursor(struct milter_sess *ms)
{
	ms->phase = 0;
	ms->hdr_i = 0;
	ms->body_off = 0;
}

/* The default action of a failed milter; true when the step stops. */
static bool
apply_default(struct milter_sess *ms, struct milter_conn *c)
{
	switch (c->d.action) {
	case MA_ACCEPT:
		return false;
	case MA_QUARANTINE:
		ms->hold = true;
		if (ms->hold_why == NULL)
			ms->hold_why = xstrdup("milter triggers HOLD action");
		return false;
	case MA_REJECT:
		buf_set(&ms->verdict, ms->step == MS_CONNECT
			? "554 5.7.1 Command rejected" : reject_reply);
		return true;
	case MA_TEMPFAIL:
	default:
		buf_set(&ms->verdict, ms->config_error ? config_reply
						       : tempfail_reply);
		return true;
	}
}

/* Does milter c take part in this step at all? */
static bool
takes_part(const struct milter_sess *ms, const struct milter_conn *c)
{
	if (c->st == MC_DONE)
		return false;
	if (msg_step(ms->step) && c->msg_accepted)
		return false;
	return true;
}

/* The bound of an edited message: message_size_limit (0: none), with
 * room for our Received: header and the milters' own headers. */
static size_t
content_max(const struct smtpd_session *s)
{
	long long lim = s->l->s.message_size_limit;

	return lim > 0 ? (size_t)lim + s->tx->received_len + 65536 : 0;
}

static void
save_changes(struct milter_sess *ms)
{
	struct smtpd_txn *t = ms->s->tx;
	struct buf out;

	if (!ms->changed || t == NULL)
		return;
	buf_init(&out, 0);
	if (milter_msg_store(&ms->msg, &out) == 0) {
		buf_free(&t->content);
		t->content = out;
		t->content.max = 0;
	} else
		buf_free(&out);
	milter_msg_free(&ms->msg);
	milter_msg_load(&ms->msg, t->content.data ? t->content.data : "",
			t->content.len, content_max(ms->s));
	ms->changed = false;
}

static void
step_run(struct milter_sess *ms)
{
	while (ms->cur < ms->n) {
		struct milter_conn *c = &ms->c[ms->cur];

		if (c->waiting)
			return;
		if (c->st == MC_FAILED) {
			if (apply_default(ms, c)) {
				step_finish(ms);
				return;
			}
		} else if (takes_part(ms, c) && !ms->sent && send_step(c)) {
			return;
		} else if (c->st == MC_FAILED) {
			continue;	/* conn_start failed: default action */
		}
		if (ms->step == MS_EOM) {
			save_changes(ms);
			reset_eom_cursor(ms);
			c->in_msg = false;
			c->nmods = 0;
		}
		ms->sent = false;
		ms->cur++;
	}
	step_finish(ms);
}

/* Steps go on from here, never from inside a connection's callback
 * (the session may be freed once the step ends). */
static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct milter_sess *ms = arg;

	if (ms->step == MS_NONE)
		return;
	if (ms->finish) {
		ms->finish = false;
		step_finish(ms);
		return;
	}
	step_run(ms);
}

static void log_verdict(struct milter_sess *ms);

static void
step_finish(struct milter_sess *ms)
{
	struct smtpd_session *s = ms->s;
	milter_done_fn done = ms->done;
	void *arg = ms->arg;
	enum milter_step step = ms->step;

	if (step == MS_EOM) {
		for (size_t i = 0; i < ms->n; i++) {
			ms->c[i].msg_accepted = false;
			ms->c[i].in_msg = false;
		}
		if (ms->msg_loaded) {
			milter_msg_free(&ms->msg);
			ms->msg_loaded = false;
		}
	}
	if (s->tx != NULL && ms->verdict.len == 0) {
		if (ms->discard && !s->tx->act.discard) {
			s->tx->act.discard = true;
			free(s->tx->act.discard_why);
			s->tx->act.discard_why =
				xstrdup("milter triggers DISCARD action");
		}
		if (ms->hold && step == MS_EOM && !s->tx->act.hold) {
			s->tx->act.hold = true;
			free(s->tx->act.hold_why);
			s->tx->act.hold_why = ms->hold_why;
			ms->hold_why = NULL;
		}
	}
	log_verdict(ms);
	ms->step = MS_NONE;
	ms->done = NULL;
	ms->discard = false;
	s->milter_pending = 0;
	s->busy = 0;
	if (done != NULL)	/* also when the client is gone: arg is freed */
		done(s, ms->verdict.len ? buf_cstr(&ms->verdict) : NULL, arg);
	buf_reset(&ms->verdict);
	xfree(&ms->rcpt);
	if (!s->busy)
		smtpd_session_resume(s);
}

static void
log_verdict(struct milter_sess *ms)
{
	struct smtpd_session *s = ms->s;
	const struct smtpd_txn *t = s->tx;
	static const char *const where[] = {
		[MS_CONNECT] = "CONNECT", [MS_HELO] = "HELO", [MS_MAIL] = "MAIL",
		[MS_RCPT] = "RCPT", [MS_DATA] = "DATA",
		[MS_EOM] = "END-OF-MESSAGE",
	};
	struct buf line;
	const char *what;

	if (ms->verdict.len > 0)
		what = "milter-reject";
	else if (ms->discard)
		what = "milter-discard";
	else if (ms->hold && ms->step == MS_EOM)
		what = "milter-hold";
	else
		return;
	buf_init(&line, 0);
	if (ms->step == MS_EOM) {
		/* cleanup's line: the reply without its SMTP code */
		const char *r = buf_cstr(&ms->verdict);

		buf_printf(&line, "%s: %s: END-OF-MESSAGE from %s[%s]: %s;",
			   t && t->id[0] ? t->id : "NOQUEUE", what,
			   s->client_name, s->client_addr,
			   ms->verdict.len > 4 ? r + 4 : ms->discard
			   ? "milter triggers DISCARD action"
			   : "milter triggers HOLD action");
	} else {
		buf_printf(&line, "%s: %s: %s from %s[%s]: %s;",
			   t && t->id[0] ? t->id : "NOQUEUE", what,
			   where[ms->step], s->client_name, s->client_addr,
			   ms->verdict.len ? buf_cstr(&ms->verdict)
					   : "milter triggers DISCARD action");
	}
	if (t != NULL && ms->step >= MS_MAIL)
		buf_printf(&line, " from=<%s>", t->sender);
	if (ms->step == MS_RCPT)
		buf_printf(&line, " to=<%s>", ms->rcpt ? ms->rcpt : "");
	else if (ms->step == MS_EOM && t != NULL && t->nrcpt > 0)
		buf_printf(&line, " to=<%s>", t->rcpt[0].orig);
	buf_printf(&line, " proto=%s", proto_of(s));
	if (s->helo != NULL)
		buf_printf(&line, " helo=<%s>", helo_of(s));
	log_write(sname(ms), ms->step == MS_EOM ? "cleanup" : SVC,
		  LOG_LVL_INFO, "%s", buf_cstr(&line));
	buf_free(&line);
}

/* ---- replies ---- */

static void
verdict_from(struct milter_sess *ms, int cmd, const char *text)
{
	if (cmd == MILTER_R_REPLYCODE && text != NULL &&
	    milter_reply_text(text, &ms->verdict) == 0)
		return;
	buf_set(&ms->verdict, cmd != MILTER_R_REJECT ? tempfail_reply :
		/* a refused greeting is 554 (RFC 5321 3.1) */
		ms->step == MS_CONNECT ? "554 5.7.1 Command rejected"
				       : reject_reply);
}

/* Keeps "Name: value" of an added or changed header for
 * milter_header_checks (a deletion is not a line to check). */
static void
note_header(struct smtpd_txn *t, int cmd, const unsigned char *d, size_t len)
{
	const char *v[2];
	uint32_t idx;
	char *line;
	const char *val;

	if (milter_parse_strings(d, len, cmd == MILTER_R_ADDHEADER ? NULL : &idx,
				 v, 2) < 0 || v[1][0] == '\0' ||
	    strlen(v[1]) > MILTER_HDR_MAX)
		return;
	val = v[1];
	while (*val == ' ' || *val == '\t')
		val++;
	line = xasprintf("%s: %s", v[0], val);
	for (char *p = line; *p; p++)	/* CR LF folding as stored: LF */
		if (*p == '\r')
			memmove(p, p + 1, strlen(p));
	strlist_add(&t->milter_headers, line);
	free(line);
}

/* One end-of-message change; -1 fails the milter. */
static int
apply_change(struct milter_conn *c, int cmd, const unsigned char *d,
	     size_t len)
{
	struct milter_sess *ms = c->ms;
	struct smtpd_txn *t = ms->s->tx;
	const char *v[2];
	uint32_t idx = 0;
	int n;
	bool lead = (c->proto & MILTER_P_HDR_LEADSPC) != 0;

	if (ms->step != MS_EOM || t == NULL || c->wait_cmd != MILTER_C_BODYEOB)
		return -1;
	if (++c->nmods > MILTER_MODS_MAX)
		return -1;
	/* milter_header_checks sees what milters add or change */
	if ((cmd == MILTER_R_ADDHEADER || cmd == MILTER_R_INSHEADER ||
	     cmd == MILTER_R_CHGHEADER) && ms->s->l->s.milter_header_checks[0]
	    && t->milter_headers.n < MILTER_MODS_MAX)
		note_header(t, cmd, d, len);
	switch (cmd) {
	case MILTER_R_ADDHEADER:
		if (milter_parse_strings(d, len, NULL, v, 2) < 0 ||
		    strlen(v[1]) > MILTER_HDR_MAX ||
		    milter_msg_add(&ms->msg, v[0], v[1], lead) < 0)
			return -1;
		break;
	case MILTER_R_INSHEADER:
	case MILTER_R_CHGHEADER:
		if (milter_parse_strings(d, len, &idx, v, 2) < 0 ||
		    strlen(v[1]) > MILTER_HDR_MAX)
			return -1;
		if ((cmd == MILTER_R_INSHEADER
		     ? milter_msg_insert(&ms->msg, idx, v[0], v[1], lead)
		     : milter_msg_change(&ms->msg, idx, v[0], v[1], lead)) < 0)
			return -1;
		break;
	case MILTER_R_REPLBODY:
		if (milter_msg_body_chunk(&ms->msg, (const char *)d, len) < 0)
			return -1;
		break;
	case MILTER_R_ADDRCPT:
	case MILTER_R_ADDRCPT_PAR:
		n = milter_parse_strings_opt(d, len, v, 2);
		if (n < 1 || (cmd == MILTER_R_ADDRCPT && n != 1) ||
		    !milter_strip_addr(v[0], &ms->scratch) || ms->scratch.len == 0 ||
		    strchr(buf_cstr(&ms->scratch), '@') == NULL ||
		    t->nrcpt + t->milter_rcpts.n >=
		    (size_t)ms->s->l->s.smtpd_recipient_limit)
			return -1;
		strlist_add(&t->milter_rcpts, buf_cstr(&ms->scratch));
		return 0;	/* envelope: no content change */
	case MILTER_R_DELRCPT:
		if (milter_parse_strings(d, len, NULL, v, 1) < 0 ||
		    !milter_strip_addr(v[0], &ms->scratch))
			return -1;
		for (size_t i = 0; i < t->nrcpt; i++) {
			if (strcasecmp(t->rcpt[i].orig, buf_cstr(&ms->scratch)))
				continue;
			free(t->rcpt[i].orig);
			free(t->rcpt[i].orcpt);
			resolve_result_free(&t->rcpt[i].res);
			memmove(t->rcpt + i, t->rcpt + i + 1,
				(t->nrcpt - i - 1) * sizeof(*t->rcpt));
			t->nrcpt--;
			i--;
		}
		for (size_t i = 0; i < t->milter_rcpts.n; i++) {
			if (strcasecmp(t->milter_rcpts.v[i],
				       buf_cstr(&ms->scratch)))
				continue;
			free(t->milter_rcpts.v[i]);
			memmove(t->milter_rcpts.v + i, t->milter_rcpts.v + i + 1,
				(t->milter_rcpts.n - i) * sizeof(char *));
			t->milter_rcpts.n--;
			i--;
		}
		return 0;
	case MILTER_R_CHGFROM:
		n = milter_parse_strings_opt(d, len, v, 2);
		if (n < 1 || !milter_strip_addr(v[0], &ms->scratch) ||
		    ms->scratch.len > 1000)
			return -1;
		free(t->sender);
		t->sender = xstrdup(buf_cstr(&ms->scratch));
		return 0;
	case MILTER_R_QUARANTINE:
		if (milter_parse_strings(d, len, NULL, v, 1) < 0)
			return -1;
		ms->hold = true;
		free(ms->hold_why);
		ms->hold_why = xstrndup(v[0], 200);
		return 0;
	default:
		return -1;
	}
	ms->changed = true;
	return 0;
}

static void
handle_reply(struct milter_conn *c, int cmd, const unsigned char *d,
	     size_t len)
{
	struct milter_sess *ms = c->ms;
	const char *v[1];

	if (!c->waiting) {
		conn_fail(c, "milter %s: unexpected reply packet '%c'",
			  c->d.name, cmd);
		return;
	}
	if (c->st == MC_OPTNEG) {
		struct milter_optneg o;

		if (cmd != MILTER_R_OPTNEG || milter_parse_optneg(d, len, &o) < 0) {
			conn_fail(c, "milter %s: bad SMFIC_OPTNEG reply packet",
				  c->d.name);
			return;
		}
		if (o.version < 2) {
			conn_fail(c, "milter %s: protocol version %u not "
				  "supported", c->d.name, (unsigned)o.version);
			return;
		}
		c->actions = o.actions & MILTER_F_ALL;
		/* what was not offered (RCPT_REJ, larger chunks) is not done */
		c->proto = o.protocol & MILTER_P_OFFER;
		for (int i = 0; i < MILTER_M_COUNT; i++)
			if (o.macros[i] != NULL)
				c->macros[i] = xstrndup(o.macros[i],
							o.macros_len[i]);
		c->st = MC_READY;
		disarm(c);
		event_active(ms->kick, 0, 0);
		return;
	}
	switch (cmd) {
	case MILTER_R_PROGRESS:
		arm(c, c->wait_cmd);	/* the clock starts again */
		return;
	case MILTER_R_CONTINUE:
		disarm(c);
		if (ms->step == MS_EOM && c->wait_cmd != MILTER_C_BODYEOB)
			event_active(ms->kick, 0, 0);	/* next header or chunk */
		else {
			if (ms->step == MS_EOM)
				ms->phase = 4;
			event_active(ms->kick, 0, 0);
		}
		return;
	case MILTER_R_SKIP:
		if (ms->step != MS_EOM || c->wait_cmd != MILTER_C_BODY)
			break;
		disarm(c);
		ms->phase = 3;
		event_active(ms->kick, 0, 0);
		return;
	case MILTER_R_ACCEPT:
		disarm(c);
		if (ms->step == MS_CONNECT || ms->step == MS_HELO)
			c->st = MC_DONE;
		else if (ms->step != MS_RCPT)
			c->msg_accepted = true;
		if (ms->step == MS_EOM)
			ms->phase = 4;
		event_active(ms->kick, 0, 0);
		return;
	case MILTER_R_DISCARD:
		disarm(c);
		if (msg_step(ms->step)) {
			ms->discard = true;
			c->msg_accepted = true;
			for (size_t i = ms->cur + 1; i < ms->n; i++)
				ms->c[i].msg_accepted = true;
			if (ms->step == MS_EOM)
				ms->phase = 4;
		} else
			log_write(sname(ms), SVC, LOG_LVL_WARNING,
				  "milter %s: DISCARD action is not allowed "
				  "for connect or helo", c->d.name);
		event_active(ms->kick, 0, 0);
		return;
	case MILTER_R_REJECT:
	case MILTER_R_TEMPFAIL:
	case MILTER_R_REPLYCODE:
		disarm(c);
		v[0] = NULL;
		if (cmd == MILTER_R_REPLYCODE &&
		    milter_parse_strings(d, len, NULL, v, 1) < 0)
			v[0] = NULL;
		verdict_from(ms, cmd, v[0]);
		if (ms->step == MS_EOM) {
			ms->changed = false;
			reset_eom_cursor(ms);
		}
		ms->finish = true;
		event_active(ms->kick, 0, 0);
		return;
	case MILTER_R_CONN_FAIL:
	case MILTER_R_SHUTDOWN:
		conn_fail(c, "milter %s: the milter closes the connection",
			  c->d.name);
		return;
	case MILTER_R_ADDHEADER: case MILTER_R_INSHEADER:
	case MILTER_R_CHGHEADER: case MILTER_R_REPLBODY:
	case MILTER_R_ADDRCPT: case MILTER_R_ADDRCPT_PAR:
	case MILTER_R_DELRCPT: case MILTER_R_CHGFROM:
	case MILTER_R_QUARANTINE:
		if (apply_change(c, cmd, d, len) < 0) {
			conn_fail(c, "milter %s: bad or too many changes "
				  "(reply '%c')", c->d.name, cmd);
			return;
		}
		arm(c, c->wait_cmd);
		return;
	default:
		break;
	}
	conn_fail(c, "milter %s: unexpected reply '%c' to %s", c->d.name, cmd,
		  milter_cmd_name(c->wait_cmd));
}

static void
conn_read(struct bufferevent *bev, void *arg)
{
	struct milter_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (c->bev != NULL) {
		size_t avail = evbuffer_get_length(in), used, dlen;
		const unsigned char *p, *d;
		unsigned char *copy;
		int cmd, r;

		if (avail < 4)
			return;
		p = evbuffer_pullup(in, -1);
		if (p == NULL)
			return;
		r = milter_get(p, avail, MILTER_REPLY_MAX, &cmd, &d, &dlen,
			       &used);
		if (r == 0)
			return;
		if (r < 0) {
			conn_fail(c, "milter %s: bad reply packet length",
				  c->d.name);
			return;
		}
		copy = xmalloc(dlen + 1);
		memcpy(copy, d, dlen);
		copy[dlen] = '\0';
		evbuffer_drain(in, used);
		handle_reply(c, cmd, copy, dlen);
		free(copy);
	}
}

/* ---- session API ---- */

static struct milter_sess *
sess_get(struct smtpd_session *s)
{
	struct milter_def defs[MILTER_MAX];
	struct milter_sess *ms;
	struct errbuf err;
	int n;

	if (s->milter != NULL)
		return s->milter;
	if (s->l->s.smtpd_milters == NULL || *s->l->s.smtpd_milters == '\0'
	    || receive_override_has(s->l->s.receive_override_options,
				    RECV_OVR_NO_MILTERS))
		return NULL;
	errbuf_clear(&err);
	n = milter_defs_parse(s->l->s.smtpd_milters, &s->l->s, defs, &err);
	if (n == 0)
		return NULL;
	ms = xcalloc(1, sizeof(*ms));
	ms->s = s;
	if (n < 0) {
		/* never mail without the milters the operator asked for:
		 * every stage gets 451 4.3.5 until the list is fixed */
		log_write(s->l->s.syslog_name, SVC, LOG_LVL_WARNING,
			  "smtpd_milters: %s: mail is deferred",
			  errbuf_str(&err));
		ms->config_error = true;
		ms->n = 1;
		ms->c = xcalloc(1, sizeof(*ms->c));
		ms->c[0].ms = ms;
		ms->c[0].st = MC_FAILED;
		ms->c[0].d.name = xstrdup("smtpd_milters");
		ms->c[0].d.action = MA_TEMPFAIL;
	} else {
		ms->n = (size_t)n;
		ms->c = xcalloc(ms->n, sizeof(*ms->c));
		for (size_t i = 0; i < ms->n; i++) {
			ms->c[i].ms = ms;
			ms->c[i].d = defs[i];
		}
	}
	buf_init(&ms->verdict, 0);
	buf_init(&ms->scratch, 0);
	ms->kick = event_new(s->l->srv->base, -1, 0, kick_cb, ms);
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		if (s->fd >= 0 && getsockname(s->fd, (struct sockaddr *)&ss,
					      &sl) == 0) {
			if (ss.ss_family == AF_INET) {
				struct sockaddr_in *a = (struct sockaddr_in *)&ss;

				inet_ntop(AF_INET, &a->sin_addr, ms->daemon_addr,
					  sizeof(ms->daemon_addr));
				ms->daemon_port = ntohs(a->sin_port);
			} else if (ss.ss_family == AF_INET6) {
				struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

				inet_ntop(AF_INET6, &a->sin6_addr,
					  ms->daemon_addr, sizeof(ms->daemon_addr));
				ms->daemon_port = ntohs(a->sin6_port);
			}
		}
		sl = sizeof(ss);
		if (s->fd >= 0 && getpeername(s->fd, (struct sockaddr *)&ss,
					      &sl) == 0) {
			if (ss.ss_family == AF_INET)
				ms->client_port = ntohs(((struct sockaddr_in *)
							 &ss)->sin_port);
			else if (ss.ss_family == AF_INET6)
				ms->client_port = ntohs(((struct sockaddr_in6 *)
							 &ss)->sin6_port);
		}
	}
	s->milter = ms;
	return ms;
}

static int
step_start(struct smtpd_session *s, enum milter_step step, const char *rcpt,
	   milter_done_fn done, void *arg)
{
	struct milter_sess *ms = sess_get(s);
	bool any = false;

	if (ms == NULL || s->bev == NULL)
		return 0;
	for (size_t i = 0; i < ms->n; i++) {
		const struct milter_conn *c = &ms->c[i];

		if (c->st == MC_FAILED ? c->d.action != MA_ACCEPT
				       : takes_part(ms, c))
			any = true;
	}
	if (!any)
		return 0;
	ms->step = step;
	ms->cur = 0;
	ms->sent = false;
	ms->done = done;
	ms->arg = arg;
	ms->discard = false;
	buf_reset(&ms->verdict);
	free(ms->rcpt);
	ms->rcpt = rcpt ? xstrdup(rcpt) : NULL;
	if (step == MS_EOM) {
		struct smtpd_txn *t = s->tx;

		reset_eom_cursor(ms);
		milter_msg_load(&ms->msg, t->content.data ? t->content.data : "",
				t->content.len, content_max(s));
		ms->msg_loaded = true;
		ms->changed = false;
		ms->hold = false;
		xfree(&ms->hold_why);
	}
	s->busy = 1;
	s->milter_pending = 1;
	bufferevent_disable(s->bev, EV_READ);
	event_active(ms->kick, 0, 0);
	return 1;
}

int
milter_connect(struct smtpd_session *s, milter_done_fn done, void *arg)
{
	return step_start(s, MS_CONNECT, NULL, done, arg);
}

int
milter_helo(struct smtpd_session *s, milter_done_fn done, void *arg)
{
	return step_start(s, MS_HELO, NULL, done, arg);
}

int
milter_mail(struct smtpd_session *s, milter_done_fn done, void *arg)
{
	return s->tx ? step_start(s, MS_MAIL, NULL, done, arg) : 0;
}

int
milter_rcpt(struct smtpd_session *s, const char *rcpt, milter_done_fn done,
	    void *arg)
{
	return s->tx ? step_start(s, MS_RCPT, rcpt, done, arg) : 0;
}

int
milter_data(struct smtpd_session *s, milter_done_fn done, void *arg)
{
	return s->tx ? step_start(s, MS_DATA, NULL, done, arg) : 0;
}

int
milter_eom(struct smtpd_session *s, milter_done_fn done, void *arg)
{
	return s->tx ? step_start(s, MS_EOM, NULL, done, arg) : 0;
}

void
milter_abort(struct smtpd_session *s)
{
	struct milter_sess *ms = s->milter;
	struct buf pkt;

	if (ms == NULL || ms->step != MS_NONE)
		return;
	buf_init(&pkt, 0);
	milter_put(&pkt, MILTER_C_ABORT, NULL, 0);
	for (size_t i = 0; i < ms->n; i++) {
		struct milter_conn *c = &ms->c[i];

		if (c->in_msg && c->st == MC_READY)
			out_buf(c, &pkt);
		c->in_msg = false;
		c->msg_accepted = false;
	}
	buf_free(&pkt);
}

void
milter_session_free(struct smtpd_session *s)
{
	struct milter_sess *ms = s->milter;
	struct buf pkt;

	if (ms == NULL)
		return;
	buf_init(&pkt, 0);
	milter_put(&pkt, MILTER_C_QUIT, NULL, 0);
	for (size_t i = 0; i < ms->n; i++) {
		struct milter_conn *c = &ms->c[i];

		if (c->bev != NULL && (c->st == MC_READY || c->st == MC_DONE)) {
			/* what is still buffered, then QUIT, best effort */
			evutil_socket_t fd = bufferevent_getfd(c->bev);
			struct evbuffer *out = bufferevent_get_output(c->bev);

			evbuffer_add(out, pkt.data, pkt.len);
			(void)evbuffer_write(out, fd);
		}
		conn_close(c);
		for (int k = 0; k < MILTER_M_COUNT; k++)
			free(c->macros[k]);
		milter_def_free(&c->d);
	}
	buf_free(&pkt);
	if (ms->msg_loaded)
		milter_msg_free(&ms->msg);
	event_free(ms->kick);
	buf_free(&ms->verdict);
	buf_free(&ms->scratch);
	free(ms->rcpt);
	free(ms->hold_why);
	free(ms->c);
	free(ms);
	s->milter = NULL;
}
