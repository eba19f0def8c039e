/*
 * qmgr.c - the queue manager: schedules deliveries of queued messages on the
 * worker pool, bounded in flight, and retries deferred ones with backoff.
 * The loop thread keeps only IDs (a FIFO of at most QMGR_PENDING_MAX and a
 * set of the IDs it knows); directory scans and deliveries run on workers.
 * Remote recipients: the worker picks each one's transport; the loop then
 * runs one SMTP delivery per next hop (delivery/smtp_client), bounded per
 * destination and in total, and a worker records the outcomes.
 * At the end of an attempt (finalize, on a worker) it returns failed
 * recipients, expired messages and delay warnings to the sender as one
 * delivery status notification (delivery/bounce) written into active/.
 * Postmaster notices per notify_classes: a failed null-sender message
 * (a bounce) goes whole to 2bounce_notice_recipient, header copies of
 * bounces and delay warnings to bounce_notice_recipient and
 * delay_notice_recipient; all come from double_bounce_sender, and a
 * failed message from that sender is discarded.
 * SMTP connections are reused through delivery/smtp_cache: want_cache
 * says whether more mail waits for a next hop.
 * master.cf transports (struct qsvc, built by svcs_build): a transport
 * name in transport_maps, *_transport or content_filter that is a
 * master.cf service runs that service's agent with its -o overrides. The
 * overrides that apply per delivery: smtp/lmtp services take
 * smtp_{connect,helo,mail,rcpt,data_init,data_xfer,data_done,quit,rset}_timeout
 * (lmtp services also lmtp_{connect,lhlo,mail,...}_timeout, which win)
 * and smtp_tls_security_level (with smtp_tls_CAfile/CApath); pipe services
 * take NAME_time_limit (else command_time_limit) and
 * NAME_destination_recipient_limit; every service's maxproc bounds its
 * deliveries at once, and its syslog_name names their log lines. Other overrides are accepted and have no
 * effect on deliveries. pipe deliveries run on the job's worker
 * (delivery/pipe.c); a message queued with a content_filter goes, for
 * every recipient, to the filter's transport and next hop.
 * sender_dependent_default_transport_maps and _relayhost_maps are
 * searched with the message's sender (delivery/transport.c).
 * Must not: block the loop, deliver one message in two jobs at once, mark
 * a failed recipient done before its notification is in the queue, send
 * a notification to the null sender, or notify about a postmaster notice
 * (no loop).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <pthread.h>

#include <event2/event.h>

#include <openssl/crypto.h>

#include "backends/table.h"
#include "core/addr.h"
#include "core/config.h"
#include "core/dns.h"
#include "core/log.h"
#include "core/params.h"
#include "core/qmgr.h"
#include "core/soft_bounce.h"
#include "delivery/generic.h"
#include "delivery/smtp_checks.h"
#include "core/queue.h"
#include "core/resolve.h"
#include "core/smtpd_cmd.h"
#include "core/status.h"
#include "core/worker.h"
#include "core/lib/buf.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "delivery/bounce.h"
#include "delivery/deliver.h"
#include "delivery/pipe.h"
#include "delivery/smtp_cache.h"
#include "delivery/smtp_client.h"
#include "delivery/smtp_tls.h"
#include "delivery/transport.h"

#define QMGR_PENDING_MAX 10000	/* IDs waiting for a slot (then rescan) */
#define QMGR_SCAN_BATCH  2000	/* IDs one directory scan hands over */
#define QMGR_OUT_MAX     100	/* SMTP deliveries at once, all destinations */

struct qjob;

/* notify_classes (Postfix): which postmaster notices are sent */
#define QMGR_NOTE_BOUNCE   (1u << 0)	/* header copies of bounces */
#define QMGR_NOTE_2BOUNCE  (1u << 1)	/* undeliverable bounces */
#define QMGR_NOTE_DELAY    (1u << 2)	/* header copies of delay warnings */
#define QMGR_NOTE_RESOURCE (1u << 3)	/* the smtpd-side classes: known */
#define QMGR_NOTE_SOFTWARE (1u << 4)	/* here, the transcripts are */
#define QMGR_NOTE_POLICY   (1u << 5)	/* core/smtpd_notify.c's */
#define QMGR_NOTE_PROTOCOL (1u << 6)
#define QMGR_NOTE_DATA     (1u << 7)

/* One recipient's outcome in this attempt, kept for notifications. */
struct rcpt_result {
	size_t              idx;		/* in env->rcpt */
	enum deliver_status st;
	char                dsn[SMTP_DSN_SIZE];
	char               *text;		/* owned */
	char               *relay;		/* remote relay or NULL; owned */
	bool                relayed;	/* DSN action "relayed" (a relay, or
					 * a pipe service without flag X) */
};

/* The recipients of one message that go to one next hop. */
struct outgroup {
	struct qjob      *j;
	struct transport  t;
	char              key[300];	/* destination, for concurrency */
	char              cache_key[600];	/* key + SASL user + TLS */
	struct smtp_req   req;
	size_t           *idx;		/* recipient indices in env */
	struct smtp_sess *sess;		/* while running */
	char             *sasl_user, *sasl_pass;	/* owned, or NULL */
	bool              has_policy;	/* smtp_tls_policy_maps matched */
	struct smtp_tls_policy policy;
	struct timeval    t_start;
	struct outgroup  *wait_next;
};

struct qjob {
	struct qmgr     *q;
	char             id[QUEUE_ID_SIZE];
	enum queue_state st;
	bool             force;		/* flush: ignore next_attempt */
	struct timeval   t_sched;	/* when the qmgr took it */
	struct qjob     *next;
	/* remote recipients, handed from the worker to the loop */
	struct queue_env env;
	struct buf       content;
	struct outgroup *groups;
	size_t           ngroups, groups_left;
	struct rcpt_result *res;	/* outcomes to report (worker side) */
	size_t           nres;
	struct strlist   new_ids;	/* notifications written: enqueue them */
	struct generic_msg gen;		/* smtp_generic_maps copy (worker) */
	struct buf       hck;		/* smtp_header/body_checks copy (worker) */
	struct buf       lck;		/* lmtp_header/body_checks copy (worker) */
	struct svc_copy *svcc;		/* per-service copies (worker) */
	size_t           nsvcc;
	struct qjob     *out_next;	/* list of jobs with SMTP in progress */
};

/* A master.cf transport's agent settings (index = transport_svc index). */
struct qsvc {
	struct smtp_client_cfg scfg;	/* smtp, lmtp: with the -o overrides */
	struct pipe_cfg  pipe;		/* pipe */
	int              maxproc;	/* 0 = no limit of its own */
	unsigned         out_active;	/* smtp/lmtp deliveries (loop) */
	pthread_mutex_t  mu;		/* pipe runs (workers) */
	pthread_cond_t   cv;
	unsigned         running;
	char            *bad;		/* pipe: why it cannot run, or NULL */
	char            *syslog_name;	/* -o syslog_name, for its log lines */
	struct smtp_checks *checks;	/* its own -o smtp_header/body_checks,
					 * NULL: main.cf's */
};

/* The copy an smtp service with its own smtp_*_checks sends (worker). */
struct svc_copy {
	int                svc;
	int                rc;		/* < 0: a table failed (err) */
	struct buf         hck;
	struct generic_msg gen;
	struct errbuf      err;
};

struct destcount {
	char              key[300];
	unsigned          n;
	struct destcount *next;
};

struct qscan {
	struct qmgr     *q;
	bool             active, deferred, force;
	struct strlist   known;		/* sorted snapshot, skipped */
	struct strlist   act, def;	/* results */
	bool             more;		/* the batch was full */
	char             err[1024];
};

struct qset_ent {
	char             id[QUEUE_ID_SIZE];
	struct qset_ent *next;
};

struct qmgr {
	struct event_base     *base;
	struct worker_pool    *pool;
	const struct settings *s;
	struct resolve_ctx    *resolve;
	struct generic_ctx    *generic;	/* smtp_generic_maps */
	struct smtp_checks    *smtp_checks;	/* smtp_header/body_checks */
	struct smtp_checks    *lmtp_checks;	/* lmtp_header/body_checks */
	char                  *qdir;
	struct event          *timer;
	struct event          *pump_ev;	/* pump() from done callbacks */
	unsigned               max_inflight, inflight;
	struct qjob           *head, *tail;	/* pending FIFO */
	size_t                 npending;
	struct qset_ent      **set;		/* known IDs: pending + in flight */
	size_t                 set_size, set_n;
	bool                   scanning;
	bool                   rescan_active;	/* notifications were dropped */
	bool                   rescan_deferred;	/* a scan batch was full */
	bool                   rescan_force;
	/* outbound */
	struct dns            *dns;
	struct table_list     *transport_maps;
	struct table_list     *sd_transport_maps, *sd_relayhost_maps;
	struct table_list     *sasl_maps;	/* smtp_sasl_password_maps */
	struct table_list     *tls_policy_maps;	/* smtp_tls_policy_maps */
	struct transport_cfg   tcfg;
	struct smtp_client_cfg scfg;
	struct transport_svc  *svcs;		/* master.cf transports */
	struct qsvc           *qsvcs;
	size_t                 nsvcs;
	struct outgroup       *wait_head, *wait_tail;
	struct destcount      *dests;
	struct qjob           *out_jobs;	/* waiting for SMTP outcomes */
	/* postmaster notices (notify_classes), addresses with @myorigin */
	unsigned               notify;		/* QMGR_NOTE_* */
	char                  *pm_bounce, *pm_2bounce, *pm_delay;
	char                  *dbl_sender;	/* double_bounce_sender */
	unsigned               out_active, out_jobs_n, dest_limit;
	/* qmgr_reconfigure: the next configuration, applied when idle
	 * (reconf_try swaps every field qmgr_new derives from settings) */
	struct qmgr           *next;
	void                 (*next_applied)(void *arg);
	void                  *next_arg;
};

/* ---- the set of known IDs ---- */

static size_t
id_hash(const char *id)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ULL;
	return (size_t)h;
}

static bool
set_has(const struct qmgr *q, const char *id)
{
	const struct qset_ent *e;

	for (e = q->set[id_hash(id) & (q->set_size - 1)]; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			return true;
	return false;
}

static void
set_grow(struct qmgr *q)
{
	size_t nsize = q->set_size * 2, i;
	struct qset_ent **nset = xcalloc(nsize, sizeof(*nset)), *e, *n;

	for (i = 0; i < q->set_size; i++)
		for (e = q->set[i]; e; e = n) {
			size_t h = id_hash(e->id) & (nsize - 1);
			n = e->next;
			e->next = nset[h];
			nset[h] = e;
		}
	free(q->set);
	q->set = nset;
	q->set_size = nsize;
}

static void
set_add(struct qmgr *q, const char *id)
{
	struct qset_ent *e = xmalloc(sizeof(*e));
	size_t h;

	if (q->set_n >= q->set_size * 2)
		set_grow(q);
	h = id_hash(id) & (q->set_size - 1);
	memcpy(e->id, id, QUEUE_ID_SIZE);
	e->next = q->set[h];
	q->set[h] = e;
	q->set_n++;
}

static void
set_del(struct qmgr *q, const char *id)
{
	struct qset_ent **pp, *e;

	for (pp = &q->set[id_hash(id) & (q->set_size - 1)]; (e = *pp);
	     pp = &e->next)
		if (strcmp(e->id, id) == 0) {
			*pp = e->next;
			free(e);
			q->set_n--;
			return;
		}
}

/* ---- logging ---- */

void
delivery_log(const char *syslog_name, const char *service, const char *id,
	     const char *to, const char *orig_to, const char *relay,
	     double delay, const double delays[4], const char *dsn,
	     const char *status, const char *text)
{
	delivery_log_conn(syslog_name, service, id, to, orig_to, relay, 0,
			  delay, delays, dsn, status, text);
}

void
delivery_log_conn(const char *syslog_name, const char *service,
		  const char *id, const char *to, const char *orig_to,
		  const char *relay, unsigned conn_use, double delay,
		  const double delays[4], const char *dsn, const char *status,
		  const char *text)
{
	char d[5][32];
	struct buf b;
	int i;

	qmgr_format_delay(delay, d[0]);
	for (i = 0; i < 4; i++)
		qmgr_format_delay(delays ? delays[i] : 0, d[i + 1]);
	buf_init(&b, 0);
	buf_printf(&b, "%s: to=<%s>, ", id, to ? to : "");
	if (orig_to && to && strcasecmp(orig_to, to) != 0)
		buf_printf(&b, "orig_to=<%s>, ", orig_to);
	buf_printf(&b, "relay=%s, ", relay ? relay : "none");
	if (conn_use > 1)	/* Postfix: a cached connection's n-th use */
		buf_printf(&b, "conn_use=%u, ", conn_use);
	buf_printf(&b, "delay=%s, delays=%s/%s/%s/%s, dsn=%s, "
		   "status=%s (%s)", d[0], d[1], d[2],
		   d[3], d[4], dsn ? dsn : "4.0.0", status, text ? text : "");
	log_write(syslog_name, service ? service : "virtual", LOG_LVL_INFO, "%s",
		  buf_cstr(&b));
	buf_free(&b);
	status_count_delivery(status);	/* facteur status */
}

static double
tv_diff(const struct timeval *a, const struct timeval *b)
{
	double d = (double)(b->tv_sec - a->tv_sec)
		   + (double)(b->tv_usec - a->tv_usec) / 1e6;
	return d > 0 ? d : 0;
}

/* ---- delivering one message (worker thread) ---- */

struct rcpt_outcome {
	enum deliver_status st;
	bool                remote;	/* for the SMTP client: t is set */
	bool                pipe;	/* for delivery/pipe.c: t is set */
	struct transport    t;
	char                dsn[SMTP_DSN_SIZE];
	const char         *relay;
	const char         *service;
};

/*
 * The outcome for a transport that is not virtual: smtp/lmtp/pipe are
 * handed on (o->remote, o->pipe), error bounces, discard drops, an
 * unknown name defers. false for virtual (the caller delivers).
 */
static bool
transport_outcome(struct rcpt_outcome *o, struct buf *text)
{
	switch (o->t.kind) {
	case TRANSPORT_SMTP:
		o->remote = true;
		o->service = "smtp";
		return true;
	case TRANSPORT_LMTP:
		o->remote = true;
		o->service = "lmtp";
		return true;
	case TRANSPORT_PIPE:
		o->pipe = true;
		o->service = "pipe";
		return true;
	case TRANSPORT_ERROR:
		o->st = DELIVER_BOUNCE;
		o->service = "error";
		snprintf(o->dsn, sizeof(o->dsn), "5.0.0");
		buf_puts(text, o->t.text[0] ? o->t.text : "mail is not accepted");
		return true;
	case TRANSPORT_DISCARD:
		o->st = DELIVER_SENT;
		o->service = "discard";
		snprintf(o->dsn, sizeof(o->dsn), "2.0.0");
		buf_puts(text, o->t.text[0] ? o->t.text : "discarded");
		return true;
	case TRANSPORT_VIRTUAL:
		return false;
	default:
		o->st = DELIVER_DEFER;
		snprintf(o->dsn, sizeof(o->dsn), "4.3.5");
		buf_printf(text, "mail transport unavailable: transport \"%s\" "
			   "is neither built in nor a master.cf service", o->t.name);
		return true;
	}
}

/*
 * content_filter recorded with the message: every recipient goes to the
 * filter's transport (next hop: as given, else the recipient's domain).
 * false when the filter is virtual: (normal delivery).
 */
static bool
filter_outcome(struct qjob *j, const char *filter, const struct queue_rcpt *r,
	       struct rcpt_outcome *o, struct buf *text)
{
	const char *at = strrchr(r->addr, '@');
	struct errbuf terr;

	errbuf_clear(&terr);
	if (transport_parse_svc(j->q->svcs, j->q->nsvcs, filter, &o->t,
				&terr) < 0) {
		o->st = DELIVER_DEFER;
		snprintf(o->dsn, sizeof(o->dsn), "4.3.5");
		buf_printf(text, "content_filter: %s", errbuf_str(&terr));
		return true;
	}
	if (o->t.kind == TRANSPORT_SMTP && o->t.host[0] == '\0') {
		snprintf(o->t.host, sizeof(o->t.host), "%s", at ? at + 1 : "");
		o->t.mx = true;
	}
	if (o->t.kind == TRANSPORT_PIPE && o->t.text[0] == '\0')
		snprintf(o->t.text, sizeof(o->t.text), "%s", at ? at + 1 : "");
	return transport_outcome(o, text);
}

/* Decides one recipient: resolve, deliver, classify. text_r gets the reason. */
static void
deliver_one(struct qjob *j, const struct queue_env *env, const struct buf *content,
	    const struct queue_rcpt *r, struct rcpt_outcome *o, struct buf *text)
{
	const struct settings *s = j->q->s;
	struct resolve_dest dest;
	enum resolve_status rs;
	char *reason = NULL;

	o->relay = "none";
	o->service = "qmgr";
	o->remote = false;
	o->pipe = false;
	buf_reset(text);
	if (env->filter != NULL && env->filter[0] != '\0'
	    && filter_outcome(j, env->filter, r, o, text))
		return;
	if (j->q->resolve == NULL) {
		o->st = DELIVER_DEFER;
		snprintf(o->dsn, sizeof(o->dsn), "4.3.5");
		buf_puts(text, "no address resolver configured");
		return;
	}
	memset(&dest, 0, sizeof(dest));
	rs = resolve_mailbox(j->q->resolve, r->addr, &dest, &reason);
	switch (rs) {
	case RESOLVE_OK: {
		struct errbuf terr;
		int trc;

		errbuf_clear(&terr);
		trc = dest.cls == RESOLVE_CLASS_LOCAL ? 0
		      : transport_find_sender(&j->q->tcfg, env->sender, r->addr,
					      dest.cls, &o->t, &terr);
		if (dest.cls == RESOLVE_CLASS_LOCAL) {
			o->st = DELIVER_DEFER;
			snprintf(o->dsn, sizeof(o->dsn), "4.3.5");
			buf_puts(text, "local delivery (mydestination) is not "
				 "available; use virtual_mailbox_domains");
		} else if (trc < 0) {
			o->st = DELIVER_DEFER;
			snprintf(o->dsn, sizeof(o->dsn), trc == -1 ? "4.3.0" : "4.3.5");
			buf_printf(text, "transport_maps: %s", errbuf_str(&terr));
		} else if (transport_outcome(o, text)) {
			if (o->st == DELIVER_DEFER && o->t.kind == TRANSPORT_OTHER)
				log_write(s->syslog_name, "qmgr", LOG_LVL_WARNING,
					  "%s: to=<%s>: transport_maps names "
					  "transport \"%s\", which is neither built "
					  "in nor defined in master.cf: mail "
					  "deferred", env->id, r->addr, o->t.name);
		} else if (dest.cls == RESOLVE_CLASS_VIRTUAL && dest.maildir != NULL) {
			struct deliver_req req = {
				.base = s->virtual_mailbox_base,
				.maildir = dest.maildir,
				.sender = env->sender,
				.orig_rcpt = s->enable_original_recipient
					     ? (r->orig ? r->orig : r->addr) : NULL,
				.rcpt = r->addr,
				.content = content->data ? content->data : "",
				.len = content->len,
			};
			o->relay = "virtual";
			o->service = "virtual";
			o->st = deliver_maildir(&req, o->dsn, text);
		} else if (dest.cls == RESOLVE_CLASS_VIRTUAL) {
			o->relay = "virtual";
			o->st = DELIVER_DEFER;
			snprintf(o->dsn, sizeof(o->dsn), "4.3.5");
			buf_puts(text, "mailbox is not a maildir (mailbox paths "
				 "must end in \"/\"; mbox delivery is not available)");
		} else {
			o->st = DELIVER_DEFER;
			snprintf(o->dsn, sizeof(o->dsn), "4.3.5");
			buf_printf(text, "virtual transport for a domain that is not "
				   "in virtual_mailbox_domains: \"%s\"", r->addr);
		}
		break;
	}
	case RESOLVE_UNKNOWN:
		o->relay = "virtual";
		o->service = "virtual";
		o->st = DELIVER_BOUNCE;
		snprintf(o->dsn, sizeof(o->dsn), "5.1.1");
		if (reason && *reason)
			buf_puts(text, reason);
		else
			buf_printf(text, "unknown user: \"%s\"", r->addr);
		break;
	case RESOLVE_LOOP:
		o->st = DELIVER_BOUNCE;
		snprintf(o->dsn, sizeof(o->dsn), "5.4.6");
		buf_puts(text, reason && *reason ? reason : "mail forwarding loop");
		break;
	case RESOLVE_CONFIG:
		o->st = DELIVER_DEFER;
		snprintf(o->dsn, sizeof(o->dsn), "4.3.5");
		buf_puts(text, reason && *reason ? reason : "server configuration error");
		break;
	case RESOLVE_TEMPFAIL:
	default:
		o->st = DELIVER_DEFER;
		snprintf(o->dsn, sizeof(o->dsn), "4.3.0");
		buf_puts(text, reason && *reason ? reason : "temporary lookup failure");
		break;
	}
	free(reason);
	resolve_dest_free(&dest);
}

/*
 * smtp_sasl_password_maps for next hop t: the next hop as written
 * ("[host]:port", "host:port", "[host]", "host"), then the host alone.
 * 1 found (*user_r, *pass_r owned), 0 none, -1 + text (temporary or a
 * bad entry: the recipients are deferred).
 */
static int
sasl_lookup(struct qmgr *q, const struct transport *t, char **user_r,
	    char **pass_r, struct buf *text)
{
	char keys[2][300];
	struct buf v;
	struct errbuf err;
	size_t k;
	int rc = 0;

	*user_r = *pass_r = NULL;
	if (!q->s->smtp_sasl_auth_enable || t->kind != TRANSPORT_SMTP
	    || q->sasl_maps == NULL || table_list_empty(q->sasl_maps))
		return 0;
	snprintf(keys[0], sizeof(keys[0]), "%s%s%s", t->mx ? "" : "[", t->host,
		 t->mx ? "" : "]");
	if (t->port > 0)
		snprintf(keys[0] + strlen(keys[0]), sizeof(keys[0]) - strlen(keys[0]),
			 ":%d", t->port);
	snprintf(keys[1], sizeof(keys[1]), "%s", t->host);
	buf_init(&v, 0);
	errbuf_clear(&err);
	for (k = 0; k < 2 && rc == 0; k++) {
		switch (table_list_lookup(q->sasl_maps, keys[k], &v, &err, NULL)) {
		case TABLE_FOUND: {
			const char *val = buf_cstr(&v);
			const char *c = strchr(val, ':');
			if (c == NULL || c == val) {
				buf_printf(text, "smtp_sasl_password_maps: the value "
					   "for %s is not username:password", keys[k]);
				rc = -1;
				break;
			}
			*user_r = xstrndup(val, (size_t)(c - val));
			*pass_r = xstrdup(c + 1);
			rc = 1;
			break;
		}
		case TABLE_NOTFOUND:
			break;
		default:
			buf_printf(text, "smtp_sasl_password_maps: %s",
				   errbuf_str(&err));
			rc = -1;
			break;
		}
	}
	buf_free(&v);
	return rc;
}

/*
 * smtp_tls_policy_maps for next hop t (keys from smtp_tls_policy_keys).
 * 1 found (p filled), 0 none, -1 + text (lookup failure or a bad value:
 * the recipients are deferred, as Postfix does).
 */
static int
tls_policy_lookup(struct qmgr *q, const struct transport *t,
		  struct smtp_tls_policy *p, struct buf *text)
{
	char keys[8][300];
	size_t nk, k;
	struct buf v;
	struct errbuf err;
	int rc = 0;

	if (t->kind != TRANSPORT_SMTP || q->tls_policy_maps == NULL
	    || table_list_empty(q->tls_policy_maps))
		return 0;
	nk = smtp_tls_policy_keys(t->host, t->port, t->mx, keys, 8);
	buf_init(&v, 0);
	errbuf_clear(&err);
	for (k = 0; k < nk && rc == 0; k++) {
		switch (table_list_lookup(q->tls_policy_maps, keys[k], &v, &err,
					  NULL)) {
		case TABLE_FOUND:
			if (smtp_tls_policy_parse(buf_cstr(&v), p, &err) < 0) {
				buf_printf(text, "TLS policy lookup for %s: %s",
					   keys[k], errbuf_str(&err));
				rc = -1;
			} else {
				rc = 1;
			}
			break;
		case TABLE_NOTFOUND:
			break;
		default:
			buf_printf(text, "smtp_tls_policy_maps: %s", errbuf_str(&err));
			rc = -1;
			break;
		}
	}
	buf_free(&v);
	return rc;
}

/*
 * Adds recipient i to the job's group for the next hop of o. -1 + text
 * when the next hop's SASL password cannot be looked up (the recipient is
 * not added).
 */
static int
group_add(struct qjob *j, const struct rcpt_outcome *o, size_t i,
	  struct buf *text)
{
	struct outgroup *g = NULL;
	char key[300];
	size_t k;

	if (o->t.kind == TRANSPORT_LMTP)
		snprintf(key, sizeof(key), "lmtp:%s%s:%d", o->t.unix_sock
			 ? "unix:" : "", o->t.host, o->t.port);
	else
		snprintf(key, sizeof(key), "%s%s:%d", o->t.mx ? "" : "[",
			 o->t.host, o->t.port);
	if (o->t.svc >= 0) {	/* a master.cf service: its own settings */
		char k2[sizeof(key) + sizeof(o->t.name) + 1];

		snprintf(k2, sizeof(k2), "%s/%s", o->t.name, key);
		snprintf(key, sizeof(key), "%.299s", k2);
	}
	/* smtp_destination_recipient_limit: a full group starts another
	 * transaction (on the same connection when it is reused) */
	for (k = 0; k < j->ngroups; k++)
		if (strcmp(j->groups[k].key, key) == 0
		    && (j->q->s->smtp_destination_recipient_limit <= 0
			|| (long long)j->groups[k].req.nrcpt
			   < j->q->s->smtp_destination_recipient_limit)) {
			g = &j->groups[k];
			break;
		}
	if (g == NULL) {
		struct smtp_tls_policy pol;
		char *u, *pw;
		int prc;

		buf_reset(text);
		if ((prc = tls_policy_lookup(j->q, &o->t, &pol, text)) < 0)
			return -1;
		if (sasl_lookup(j->q, &o->t, &u, &pw, text) < 0)
			return -1;
		j->groups = xrealloc(j->groups, (j->ngroups + 1) * sizeof(*j->groups));
		g = &j->groups[j->ngroups++];
		memset(g, 0, sizeof(*g));
		g->j = j;
		g->t = o->t;
		g->sasl_user = u;
		g->sasl_pass = pw;
		g->has_policy = prc > 0;
		if (prc > 0)
			g->policy = pol;
		memcpy(g->key, key, sizeof(key));
		snprintf(g->cache_key, sizeof(g->cache_key), "%s|%s", key,
			 u ? u : "");
	}
	g->idx = xrealloc(g->idx, (g->req.nrcpt + 1) * sizeof(*g->idx));
	g->req.rcpt = xrealloc(g->req.rcpt, (g->req.nrcpt + 1) * sizeof(*g->req.rcpt));
	g->idx[g->req.nrcpt] = i;
	memset(&g->req.rcpt[g->req.nrcpt], 0, sizeof(g->req.rcpt[0]));
	g->req.nrcpt++;
	return 0;
}

/* Records one outcome for finalize (worker). */
static void
result_add(struct qjob *j, size_t idx, enum deliver_status st, const char *dsn,
	   const char *text, const char *relay)
{
	struct rcpt_result *r;

	j->res = xrealloc(j->res, (j->nres + 1) * sizeof(*j->res));
	r = &j->res[j->nres++];
	r->idx = idx;
	r->st = st;
	snprintf(r->dsn, sizeof(r->dsn), "%s", dsn ? dsn : "");
	r->text = xstrdup(text ? text : "");
	r->relay = relay ? xstrdup(relay) : NULL;
	r->relayed = relay != NULL;
}

static void
results_free(struct qjob *j)
{
	size_t i;

	for (i = 0; i < j->nres; i++) {
		free(j->res[i].text);
		free(j->res[i].relay);
	}
	free(j->res);
	j->res = NULL;
	j->nres = 0;
}

static const struct rcpt_result *
result_find(const struct qjob *j, size_t idx)
{
	size_t i;

	for (i = j->nres; i-- > 0;)
		if (j->res[i].idx == idx)
			return &j->res[i];
	return NULL;
}

/* A notification entry with its own storage for the derived fields. */
struct notice_rcpt {
	struct bounce_rcpt br;
	size_t             idx;
	char              *reply, *host;	/* owned: br.diag, br.remote_mta */
};

static void
notice_free_all(struct notice_rcpt *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(list[i].reply);
		free(list[i].host);
	}
	free(list);
}

/* Fills n for recipient idx from its outcome r (may be NULL). */
static void
notice_fill(struct notice_rcpt *n, const struct queue_env *env, size_t idx,
	    const struct rcpt_result *r, const char *def_dsn,
	    const char *def_text)
{
	const struct queue_rcpt *qr = &env->rcpt[idx];
	const char *text = r && r->text[0] ? r->text : def_text;

	char reply[1024], host[256];

	memset(n, 0, sizeof(*n));
	n->idx = idx;
	n->br.addr = qr->addr;
	n->br.orig = qr->orig;
	n->br.orcpt = qr->orcpt;
	n->br.status = r && r->dsn[0] ? r->dsn : def_dsn;
	n->br.text = text;
	if (bounce_smtp_reply(text, reply, sizeof(reply))) {
		n->reply = xstrdup(reply);
		n->br.diag_type = "smtp";
		n->br.diag = n->reply;
	} else {
		n->br.diag_type = "x-unix";
		n->br.diag = text;
	}
	if (r && bounce_relay_host(r->relay, host, sizeof(host))) {
		n->host = xstrdup(host);
		n->br.remote_mta = n->host;
	}
}

/*
 * Writes one notification about env to its sender into active/ and
 * remembers its ID for the loop. 0, or -1 (logged) if it could not be
 * queued: the caller then leaves the recipients as they are.
 */
static int
notice_send(struct qjob *j, const struct queue_env *env,
	    const struct buf *content, enum bounce_kind kind,
	    const struct notice_rcpt *nr, size_t n, const char *pm,
	    const char *ret)
{
	static const char *const what[] = {
		[BOUNCE_FAILED] = "non-delivery",
		[BOUNCE_DELAYED] = "delay",
		[BOUNCE_DELIVERED] = "delivery status",
	};
	const struct settings *s = j->q->s;
	struct bounce_rcpt *br = xcalloc(n, sizeof(*br));
	struct queue_env ne;
	struct queue_rcpt r, *rv = NULL;
	struct resolve_result res;
	struct addr a;
	const char *why;
	struct bounce_req req;
	struct buf msg;
	struct errbuf err;
	struct timeval tv;
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		br[i] = nr[i].br;
	errbuf_clear(&err);
	gettimeofday(&tv, NULL);
	memset(&ne, 0, sizeof(ne));
	memset(&r, 0, sizeof(r));
	queue_id_new(ne.id);
	memset(&req, 0, sizeof(req));
	req.kind = kind;
	req.myhostname = s->myhostname ? s->myhostname : "localhost";
	req.queue_id = env->id;
	req.new_id = ne.id;
	req.sender = env->sender;
	req.postmaster = pm;
	req.envid = env->envid;
	req.ret = ret ? ret : env->ret;
	req.arrival = env->arrival;
	req.now = tv.tv_sec;
	req.delay_warning_time = s->delay_warning_time;
	req.maximal_queue_lifetime = s->maximal_queue_lifetime;
	req.rcpt = br;
	req.nrcpt = n;
	req.content = content && content->data ? content->data : "";
	req.len = content ? content->len : 0;
	req.size_limit = s->bounce_size_limit > 0
			 ? (size_t)s->bounce_size_limit : 0;
	buf_init(&msg, 0);
	bounce_format(&req, &msg);
	free(br);
	ne.arrival = tv.tv_sec;
	ne.arrival_usec = (long)tv.tv_usec;
	/* a postmaster notice comes from double_bounce_sender: when it
	 * cannot be delivered either, it is discarded (never a loop) */
	ne.sender = (char *)(pm ? j->q->dbl_sender : "");
	ne.client_name = (char *)"localhost";
	ne.client_addr = (char *)"127.0.0.1";
	ne.helo = (char *)req.myhostname;
	ne.protocol = (char *)"bounce";
	r.addr = (char *)(pm ? pm : env->sender);
	r.orig = r.addr;
	r.status = QUEUE_RCPT_PENDING;
	ne.rcpt = &r;
	ne.nrcpt = 1;
	/* virtual aliases apply, as cleanup applies them to Postfix's
	 * notices (postmaster is usually an alias); failing that, the
	 * address as it is (its delivery then decides) */
	memset(&res, 0, sizeof(res));
	if (j->q->resolve != NULL && addr_parse_mailbox(r.addr, &a, &why) == 0) {
		if (a.domain[0] != '\0'
		    && resolve_rcpt(j->q->resolve, &a, &res) == RESOLVE_OK
		    && res.n > 0) {
			rv = xcalloc(res.n, sizeof(*rv));
			for (i = 0; i < res.n; i++) {
				rv[i].addr = res.v[i].addr;
				rv[i].orig = r.addr;
				rv[i].status = QUEUE_RCPT_PENDING;
			}
			ne.rcpt = rv;
			ne.nrcpt = res.n;
		}
		addr_free(&a);
	}
	rc = queue_write(j->q->qdir, &ne, msg.data ? msg.data : "", msg.len,
			 false, &err);
	free(rv);
	resolve_result_free(&res);
	buf_free(&msg);
	if (rc < 0) {
		log_write(s->syslog_name, "bounce", LOG_LVL_WARNING,
			  "%s: cannot queue the %s %s notification: %s",
			  env->id, pm ? "postmaster" : "sender", what[kind],
			  errbuf_str(&err));
		return -1;
	}
	log_write(s->syslog_name, "bounce", LOG_LVL_INFO,
		  "%s: %s %s notification: %s", env->id,
		  pm ? "postmaster" : "sender", what[kind], ne.id);
	strlist_add(&j->new_ids, ne.id);
	return 0;
}

/* RFC 3461 4.1: no NOTIFY means FAILURE (and DELAY at the MTA's choice). */
static bool
notify_wants(unsigned notify, unsigned bit)
{
	if (notify & SMTPD_NOTIFY_NEVER)
		return false;
	if (notify == 0)
		return bit == SMTPD_NOTIFY_FAILURE || bit == SMTPD_NOTIFY_DELAY;
	return (notify & bit) != 0;
}

/* The recipients in list that asked for bit, moved to the front: count. */
static size_t
notice_select(const struct queue_env *env, struct notice_rcpt *list, size_t n,
	      unsigned bit)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (notify_wants(env->rcpt[list[i].idx].notify, bit)) {
			if (k != i) {
				struct notice_rcpt t = list[k];

				list[k] = list[i];
				list[i] = t;
			}
			k++;
		}
	return k;
}

/*
 * The end of one delivery attempt (worker). Failed recipients (and, once
 * the message outlived its queue lifetime, every pending one) are
 * reported to the sender in one notification before they are marked
 * done; successes get a report when NOTIFY=SUCCESS asked for one; a
 * message still pending past delay_warning_time gets one warning. Then
 * the file is removed when nothing is pending, else deferred.
 */
static void
finalize(struct qjob *j, struct queue_env *env, const struct buf *content)
{
	struct qmgr *q = j->q;
	const struct settings *s = q->s;
	const char *name = s->syslog_name;
	bool null_sender = env->sender == NULL || env->sender[0] == '\0';
	bool dbl_sender = !null_sender && strcasecmp(env->sender, q->dbl_sender) == 0;
	long long life = null_sender ? s->bounce_queue_lifetime
				     : s->maximal_queue_lifetime;
	struct notice_rcpt *fail = NULL, *ok = NULL;
	size_t i, nfail = 0, nok = 0, nexp = 0, pending = 0, k;
	struct errbuf err;
	time_t now = time(NULL);
	bool expired;

	errbuf_clear(&err);
	/* maximal_queue_lifetime = 0: one attempt only, as Postfix does. */
	expired = now >= env->arrival + (time_t)(life > 0 ? life : 0);
	if (s->soft_bounce)
		expired = false;	/* soft_bounce: nothing goes back */
	for (i = 0; i < env->nrcpt; i++) {
		const struct rcpt_result *r;

		if (env->rcpt[i].status != QUEUE_RCPT_PENDING) {
			r = result_find(j, i);
			if (r && r->st == DELIVER_SENT) {
				ok = xrealloc(ok, (nok + 1) * sizeof(*ok));
				notice_fill(&ok[nok], env, i, r, "2.0.0",
					    "delivered");
				/* the next hop was not asked for DSNs */
				if (r->relay || r->relayed)
					ok[nok].br.action = "relayed";
				nok++;
			}
			continue;
		}
		r = result_find(j, i);
		if (r && r->st == DELIVER_BOUNCE) {
			fail = xrealloc(fail, (nfail + 1) * sizeof(*fail));
			notice_fill(&fail[nfail++], env, i, r, "5.0.0",
				    "delivery failed");
		} else if (expired) {
			nexp++;
			fail = xrealloc(fail, (nfail + 1) * sizeof(*fail));
			notice_fill(&fail[nfail++], env, i, r, "4.4.7",
				    "message delivery timed out");
		}
	}
	if (nfail > 0) {
		bool sent = true;

		k = notice_select(env, fail, nfail, SMTPD_NOTIFY_FAILURE);
		if (k > 0 && dbl_sender)
			log_write(name, "bounce", LOG_LVL_INFO,
				  "%s: discarding undeliverable postmaster "
				  "notification", env->id);
		else if (k > 0 && null_sender && (q->notify & QMGR_NOTE_2BOUNCE))
			/* a double bounce: the whole bounce to the postmaster */
			sent = notice_send(j, env, content, BOUNCE_FAILED, fail,
					   k, q->pm_2bounce, "FULL") == 0;
		else if (k > 0 && null_sender)
			log_write(name, "bounce", LOG_LVL_INFO,
				  "%s: undeliverable mail from the null sender: "
				  "no non-delivery notification", env->id);
		else if (k > 0) {
			sent = notice_send(j, env, content, BOUNCE_FAILED, fail,
					   k, NULL, NULL) == 0;
			/* notify_classes bounce: the headers to the postmaster */
			if (sent && (q->notify & QMGR_NOTE_BOUNCE))
				(void)notice_send(j, env, content, BOUNCE_FAILED,
						  fail, k, q->pm_bounce, "HDRS");
		}
		if (sent) {
			for (i = 0; i < nfail; i++)
				if (queue_mark_done(q->qdir, j->st, env, fail[i].idx,
						    &err) < 0)
					log_write(name, "qmgr", LOG_LVL_WARNING,
						  "%s: %s", env->id, errbuf_str(&err));
			if (nexp > 0)
				log_write(name, "qmgr", LOG_LVL_INFO,
					  "%s: from=<%s>, status=expired, returned "
					  "to sender", env->id, env->sender);
		}
	}
	if (nok > 0 && !null_sender && !dbl_sender) {
		k = notice_select(env, ok, nok, SMTPD_NOTIFY_SUCCESS);
		if (k > 0)
			(void)notice_send(j, env, content, BOUNCE_DELIVERED, ok, k,
					  NULL, NULL);
	}
	notice_free_all(fail, nfail);
	notice_free_all(ok, nok);
	for (i = 0; i < env->nrcpt; i++)
		if (env->rcpt[i].status == QUEUE_RCPT_PENDING)
			pending++;
	if (pending == 0) {
		if (queue_remove(q->qdir, j->st, env->id, &err) < 0)
			log_write(name, "qmgr", LOG_LVL_WARNING, "%s: %s", env->id,
				  errbuf_str(&err));
		else
			log_write(name, "qmgr", LOG_LVL_INFO, "%s: removed", env->id);
		results_free(j);
		return;
	}
	/* One delay warning per message, recorded with the schedule. */
	if (s->delay_warning_time > 0 && !null_sender && !dbl_sender
	    && env->flags_rec
	    && !(env->flags & QUEUE_F_DELAY_WARNED)
	    && now >= env->arrival + (time_t)s->delay_warning_time) {
		struct notice_rcpt *dl = xcalloc(pending, sizeof(*dl));
		size_t nd = 0;

		for (i = 0; i < env->nrcpt && nd < pending; i++)
			if (env->rcpt[i].status == QUEUE_RCPT_PENDING)
				notice_fill(&dl[nd++], env, i, result_find(j, i),
					    "4.0.0", "delivery temporarily suspended");
		k = notice_select(env, dl, nd, SMTPD_NOTIFY_DELAY);
		if (k == 0 || notice_send(j, env, content, BOUNCE_DELAYED, dl, k,
					  NULL, NULL) == 0) {
			env->flags |= QUEUE_F_DELAY_WARNED;
			/* notify_classes delay: the headers to the postmaster */
			if (k > 0 && (q->notify & QMGR_NOTE_DELAY))
				(void)notice_send(j, env, content, BOUNCE_DELAYED,
						  dl, k, q->pm_delay, "HDRS");
		}
		notice_free_all(dl, nd);
	}
	results_free(j);
	{
		long long back;

		env->attempts++;
		back = qmgr_backoff(env->attempts, s->minimal_backoff_time,
				    s->maximal_backoff_time);
		env->next_attempt = now + (time_t)back;
		if (queue_defer(q->qdir, j->st, env, &err) < 0)
			log_write(name, "qmgr", LOG_LVL_WARNING, "%s: %s", env->id,
				  errbuf_str(&err));
	}
}

/* A recipient for a pipe service, waiting for its run (worker). */
struct pipe_item {
	size_t           idx;
	struct transport t;
	bool             done;
};

/* maxproc: waits for a free slot of service v (worker threads). */
static void
svc_acquire(struct qsvc *v)
{
	pthread_mutex_lock(&v->mu);
	while (v->maxproc > 0 && v->running >= (unsigned)v->maxproc)
		pthread_cond_wait(&v->cv, &v->mu);
	v->running++;
	pthread_mutex_unlock(&v->mu);
}

static void
svc_release(struct qsvc *v)
{
	pthread_mutex_lock(&v->mu);
	v->running--;
	pthread_cond_signal(&v->cv);
	pthread_mutex_unlock(&v->mu);
}

/* A recipient for an unusable pipe service: deferred, logged (worker). */
static void
results_defer_bad(struct qjob *j, struct queue_env *env,
		  const struct pipe_item *it, const struct qsvc *v,
		  struct buf *text)
{
	const struct queue_rcpt *r = &env->rcpt[it->idx];
	struct timeval arr = { env->arrival, (suseconds_t)env->arrival_usec };
	struct timeval now;
	double delays[4] = { 0, 0, 0, 0 };

	gettimeofday(&now, NULL);
	buf_reset(text);
	buf_printf(text, "mail transport unavailable: %s", v->bad);
	result_add(j, it->idx, DELIVER_DEFER, "4.3.5", buf_cstr(text), NULL);
	delivery_log(j->q->s->syslog_name, "pipe", env->id, r->addr, r->orig,
		     v->pipe.name[0] ? v->pipe.name : it->t.name,
		     tv_diff(&arr, &now), delays, "4.3.5", "deferred",
		     buf_cstr(text));
}

/*
 * Runs the pipe services for the recipients in items: one run per
 * recipient when the command line names one (${recipient} ...) or the
 * flags prepend one (D, O), else one run for every recipient with the same
 * service and next hop. Records and logs the outcomes (worker).
 */
static void
pipe_run_all(struct qjob *j, struct queue_env *env, const struct buf *content,
	     struct pipe_item *items, size_t n, struct buf *text)
{
	struct qmgr *q = j->q;
	const char *name = q->s->syslog_name;
	struct timeval arr = { env->arrival, (suseconds_t)env->arrival_usec };
	struct errbuf err;
	size_t a, b, k;

	errbuf_clear(&err);
	for (a = 0; a < n; a++) {
		struct pipe_item *it = &items[a];
		struct qsvc *v;
		struct pipe_rcpt *pr;
		size_t *idx, nr = 0;
		struct pipe_req req;
		struct timeval tr, t1;
		enum deliver_status st;
		char dsn[SMTP_DSN_SIZE];

		if (it->done)
			continue;
		if (it->t.svc < 0 || (size_t)it->t.svc >= q->nsvcs)
			continue;	/* cannot happen: pipe kinds are services */
		v = &q->qsvcs[it->t.svc];
		if (v->bad != NULL) {	/* as a one-recipient outcome */
			it->done = true;
			results_defer_bad(j, env, it, v, text);
			continue;
		}
		pr = xcalloc(n - a, sizeof(*pr));
		idx = xcalloc(n - a, sizeof(*idx));
		for (b = a; b < n; b++) {
			struct pipe_item *o = &items[b];

			if (o->done || o->t.svc != it->t.svc
			    || strcmp(o->t.text, it->t.text) != 0)
				continue;
			if (b != a && (v->pipe.per_rcpt
				       || (v->pipe.rcpt_limit > 0
					   && (long long)nr >= v->pipe.rcpt_limit)))
				break;
			o->done = true;
			pr[nr].addr = env->rcpt[o->idx].addr;
			pr[nr].orig = env->rcpt[o->idx].orig;
			idx[nr++] = o->idx;
		}
		memset(&req, 0, sizeof(req));
		req.cfg = &v->pipe;
		req.sender = env->sender;
		req.nexthop = it->t.text;
		req.queue_id = env->id;
		req.client_addr = env->client_addr;
		req.client_name = env->client_name;
		req.client_helo = env->helo;
		req.delimiter = q->s->recipient_delimiter;
		req.rcpt = pr;
		req.nrcpt = nr;
		req.content = content->data ? content->data : "";
		req.len = content->len;
		gettimeofday(&tr, NULL);
		svc_acquire(v);
		st = pipe_deliver(&req, dsn, text);
		svc_release(v);
		gettimeofday(&t1, NULL);
		for (k = 0; k < nr; k++) {
			const struct queue_rcpt *r = &env->rcpt[idx[k]];
			enum deliver_status rst = st;
			char rdsn[SMTP_DSN_SIZE];
			const char *status;
			double delays[4];

			memcpy(rdsn, dsn, sizeof(rdsn));
			status = rst == DELIVER_SENT ? "sent"
				 : rst == DELIVER_BOUNCE ? "bounced" : "deferred";
			if (soft_bounce_delivery(q->s->soft_bounce, &rst, rdsn))
				status = SOFT_BOUNCE_STATUS;	/* kept queued */
			if (rst == DELIVER_SENT
			    && queue_mark_done(q->qdir, j->st, env, idx[k], &err) < 0)
				log_write(name, "qmgr", LOG_LVL_WARNING, "%s: %s",
					  env->id, errbuf_str(&err));
			result_add(j, idx[k], rst, rdsn, buf_cstr(text), NULL);
			/* pipe(8): "delivered" only with flag X */
			j->res[j->nres - 1].relayed = !(v->pipe.flags & PIPE_F_X);
			delays[0] = tv_diff(&arr, &j->t_sched);
			delays[1] = tv_diff(&j->t_sched, &tr);
			delays[2] = 0;
			delays[3] = tv_diff(&tr, &t1);
			delivery_log(v->syslog_name, "pipe", env->id, r->addr,
				     r->orig, v->pipe.name, tv_diff(&arr, &t1),
				     delays, rdsn,
				     status, buf_cstr(text));
		}
		free(pr);
		free(idx);
	}
}

static void
svc_copies_free(struct qjob *j)
{
	for (size_t k = 0; k < j->nsvcc; k++) {
		buf_free(&j->svcc[k].hck);
		generic_msg_free(&j->svcc[k].gen);
	}
	free(j->svcc);
	j->svcc = NULL;
	j->nsvcc = 0;
}

static struct svc_copy *
svc_copy_find(struct qjob *j, int svc)
{
	for (size_t k = 0; k < j->nsvcc; k++)
		if (j->svcc[k].svc == svc)
			return &j->svcc[k];
	return NULL;
}

/* The copy of service svc (its own smtp_*_checks, then smtp_generic_maps),
 * made once per job on the worker; NULL when it uses main.cf's. */
static struct svc_copy *
svc_copy_get(struct qjob *j, const struct queue_env *env,
	     const struct buf *content, int svc, bool lmtp)
{
	struct qmgr *q = j->q;
	struct qsvc *v = svc >= 0 && (size_t)svc < q->nsvcs ? &q->qsvcs[svc]
			 : NULL;
	struct svc_copy *sc;
	const char *c = content->data ? content->data : "";
	size_t n = content->len;

	if (v == NULL || v->checks == NULL)
		return NULL;
	if ((sc = svc_copy_find(j, svc)) != NULL)
		return sc;
	j->svcc = xrealloc(j->svcc, (j->nsvcc + 1) * sizeof(*j->svcc));
	sc = &j->svcc[j->nsvcc++];
	memset(sc, 0, sizeof(*sc));
	sc->svc = svc;
	buf_init(&sc->hck, 0);
	errbuf_clear(&sc->err);
	sc->rc = smtp_checks_apply(v->checks, env->id, v->syslog_name, c, n,
				   &sc->hck, &sc->err);
	if (sc->rc >= 0 && !lmtp)	/* smtp_generic_maps: SMTP only */
		sc->rc = generic_rewrite(q->generic, env, sc->hck.len > 0 ?
					 sc->hck.data : c, sc->hck.len > 0 ?
					 sc->hck.len : n, &sc->gen, &sc->err);
	return sc;
}

static void
job_work(void *arg)
{
	struct qjob *j = arg;
	struct qmgr *q = j->q;
	const char *name = q->s->syslog_name;
	struct queue_env env;
	struct buf content, text;
	struct errbuf err, gen_err, lck_err;
	struct timeval t0, t1, tr;
	time_t now;
	int gen_rc, lck_rc;
	size_t i, pending = 0, npipes = 0;
	struct pipe_item *pipes = NULL;

	errbuf_clear(&err);
	buf_init(&content, 0);
	if (queue_read(q->qdir, j->st, j->id, &env, &content, &err) < 0) {
		if (errno == ENOENT)	/* delivered or moved meanwhile */
			goto out;
		if (errno == EINVAL) {
			log_write(name, "qmgr", LOG_LVL_WARNING,
				  "%s: %s; moved to the corrupt queue", j->id,
				  errbuf_str(&err));
			if (queue_move(q->qdir, j->id, j->st, QUEUE_CORRUPT, &err) < 0)
				log_write(name, "qmgr", LOG_LVL_WARNING, "%s: %s",
					  j->id, errbuf_str(&err));
		} else {
			log_write(name, "qmgr", LOG_LVL_WARNING, "%s: %s", j->id,
				  errbuf_str(&err));
		}
		goto out;
	}
	now = time(NULL);
	if (j->st == QUEUE_DEFERRED && !j->force && env.next_attempt > now)
		goto out_env;	/* not due: the file's time stamp was early */

	for (i = 0; i < env.nrcpt; i++)
		if (env.rcpt[i].status == QUEUE_RCPT_PENDING)
			pending++;
	if (pending > 0)
		log_write(name, "qmgr", LOG_LVL_INFO,
			  "%s: from=<%s>, size=%lld, nrcpt=%zu (queue active)",
			  env.id, env.sender, env.size, pending);
	pending = 0;
	buf_init(&text, 0);
	gettimeofday(&t0, NULL);
	/* smtp_generic_maps: the copy SMTP next hops get (delivery/generic.h) */
	errbuf_clear(&gen_err);
	errbuf_clear(&lck_err);
	generic_msg_free(&j->gen);
	svc_copies_free(j);
	/* smtp_header_checks / smtp_body_checks first, as Postfix's smtp
	 * (delivery/smtp_checks.h); the generic copy is made from theirs */
	gen_rc = smtp_checks_apply(q->smtp_checks, env.id, name, content.data
				   ? content.data : "", content.len, &j->hck,
				   &gen_err);
	lck_rc = smtp_checks_apply(q->lmtp_checks, env.id, name, content.data
				   ? content.data : "", content.len, &j->lck,
				   &lck_err);
	if (gen_rc >= 0)
		gen_rc = generic_rewrite(q->generic, &env, j->hck.len > 0 ?
					 j->hck.data : content.data ?
					 content.data : "", j->hck.len > 0 ?
					 j->hck.len : content.len, &j->gen,
					 &gen_err);
	for (i = 0; i < env.nrcpt; i++) {
		struct queue_rcpt *r = &env.rcpt[i];
		struct rcpt_outcome o;
		struct timeval arr = { env.arrival, (suseconds_t)env.arrival_usec };
		double delays[4];
		const char *status;

		if (r->status != QUEUE_RCPT_PENDING)
			continue;
		gettimeofday(&tr, NULL);
		deliver_one(j, &env, &content, r, &o, &text);
		gettimeofday(&t1, NULL);
		if (o.remote && (o.t.kind == TRANSPORT_SMTP ||
				 o.t.kind == TRANSPORT_LMTP)) {
			/* a service's own -o smtp_*_checks / lmtp_*_checks */
			bool lmtp = o.t.kind == TRANSPORT_LMTP;
			struct svc_copy *sc = svc_copy_get(j, &env, &content,
							   o.t.svc, lmtp);
			int rc = sc ? sc->rc : lmtp ? lck_rc : gen_rc;

			if (rc < 0) {
				o.remote = false;
				o.st = DELIVER_DEFER;
				o.service = lmtp ? "lmtp" : "smtp";
				snprintf(o.dsn, sizeof(o.dsn), "4.3.0");
				buf_reset(&text);
				buf_puts(&text, errbuf_str(sc ? &sc->err : lmtp
							   ? &lck_err
							   : &gen_err));
			}
		}
		if (o.remote) {
			if (group_add(j, &o, i, &text) == 0)
				continue;
			o.st = DELIVER_DEFER;
			snprintf(o.dsn, sizeof(o.dsn), "4.7.0");
		}
		if (o.pipe) {	/* run below, grouped */
			pipes = xrealloc(pipes, (npipes + 1) * sizeof(*pipes));
			pipes[npipes].idx = i;
			pipes[npipes].t = o.t;
			pipes[npipes].done = false;
			npipes++;
			continue;
		}
		status = o.st == DELIVER_SENT ? "sent"
			 : o.st == DELIVER_BOUNCE ? "bounced" : "deferred";
		if (soft_bounce_delivery(q->s->soft_bounce, &o.st, o.dsn))
			status = SOFT_BOUNCE_STATUS;	/* kept queued */
		/* A failure is marked done by finalize, after its notice. */
		if (o.st == DELIVER_SENT
		    && queue_mark_done(q->qdir, j->st, &env, i, &err) < 0)
			/* Delivered but not recorded: the next attempt
			 * may deliver it again; say so. */
			log_write(name, "qmgr", LOG_LVL_WARNING,
				  "%s: %s", env.id, errbuf_str(&err));
		result_add(j, i, o.st, o.dsn, buf_cstr(&text), NULL);
		delays[0] = tv_diff(&arr, &j->t_sched);
		delays[1] = tv_diff(&j->t_sched, &tr);
		delays[2] = 0;
		delays[3] = tv_diff(&tr, &t1);
		delivery_log(name, o.service, env.id, r->addr, r->orig,
			     o.relay, tv_diff(&arr, &t1), delays, o.dsn, status,
			     buf_cstr(&text));
	}
	if (npipes > 0)
		pipe_run_all(j, &env, &content, pipes, npipes, &text);
	free(pipes);
	buf_free(&text);
	if (j->ngroups > 0) {
		/* the loop delivers the rest; the job keeps env and content */
		j->env = env;
		j->content = content;
		return;
	}
	finalize(j, &env, &content);
out_env:
	queue_env_free(&env);
out:
	buf_free(&content);
}

/* Records the SMTP outcomes of every group, then finalizes (worker). */
static void
record_work(void *arg)
{
	struct qjob *j = arg;
	struct qmgr *q = j->q;
	const char *name = q->s->syslog_name;
	struct timeval arr = { j->env.arrival, (suseconds_t)j->env.arrival_usec };
	struct timeval now;
	struct errbuf err;
	size_t g, k;

	errbuf_clear(&err);
	gettimeofday(&now, NULL);
	for (g = 0; g < j->ngroups; g++) {
		struct outgroup *gr = &j->groups[g];
		for (k = 0; k < gr->req.nrcpt; k++) {
			struct smtp_rcpt *sr = &gr->req.rcpt[k];
			struct queue_rcpt *r = &j->env.rcpt[gr->idx[k]];
			double delays[4];
			const char *status = "deferred";
			enum deliver_status st = sr->text ? sr->st : DELIVER_DEFER;

			if (st != DELIVER_DEFER)
				status = st == DELIVER_SENT ? "sent" : "bounced";
			if (sr->text != NULL &&
			    soft_bounce_delivery(q->s->soft_bounce, &st, sr->dsn))
				status = SOFT_BOUNCE_STATUS;	/* kept queued */
			if (st == DELIVER_SENT
			    && queue_mark_done(q->qdir, j->st, &j->env,
					       gr->idx[k], &err) < 0)
				log_write(name, "qmgr", LOG_LVL_WARNING,
					  "%s: %s", j->env.id, errbuf_str(&err));
			result_add(j, gr->idx[k], st, sr->text ? sr->dsn : "4.4.0",
				   sr->text ? sr->text : "delivery interrupted",
				   gr->req.relay);
			delays[0] = tv_diff(&arr, &j->t_sched);
			delays[1] = tv_diff(&j->t_sched, &gr->t_start);
			delays[2] = gr->req.t_conn;
			delays[3] = gr->req.t_xfer;
			delivery_log_conn(gr->t.svc >= 0
					  && (size_t)gr->t.svc < q->nsvcs
					  ? q->qsvcs[gr->t.svc].syslog_name : name,
					  gr->req.lmtp ? "lmtp" : "smtp",
				     j->env.id, r->addr, r->orig,
				     gr->req.relay, gr->req.conn_use,
				     tv_diff(&arr, &now), delays,
				     sr->text ? sr->dsn : "4.4.0", status,
				     sr->text ? sr->text : "delivery interrupted");
		}
	}
	finalize(j, &j->env, &j->content);
}

static void
job_free(struct qjob *j)
{
	size_t g, k;

	generic_msg_free(&j->gen);
	buf_free(&j->hck);
	buf_free(&j->lck);
	svc_copies_free(j);
	for (g = 0; g < j->ngroups; g++) {
		for (k = 0; k < j->groups[g].req.nrcpt; k++)
			free(j->groups[g].req.rcpt[k].text);
		free(j->groups[g].req.rcpt);
		free(j->groups[g].idx);
		free(j->groups[g].sasl_user);
		if (j->groups[g].sasl_pass) {
			OPENSSL_cleanse(j->groups[g].sasl_pass,
					strlen(j->groups[g].sasl_pass));
			free(j->groups[g].sasl_pass);
		}
	}
	free(j->groups);
	if (j->ngroups > 0)
		queue_env_free(&j->env);
	buf_free(&j->content);
	results_free(j);
	strlist_free(&j->new_ids);
	free(j);
}

/* ---- scheduling (loop thread) ---- */

static void pump(struct qmgr *q);

/*
 * Done callbacks do not submit work themselves: they ask the loop to pump.
 * worker_pool_free runs the last done callbacks with the loop stopped and
 * the threads gone; new jobs submitted then would never run.
 */
static void
pump_later(struct qmgr *q)
{
	event_active(q->pump_ev, EV_TIMEOUT, 1);
}

static void
pump_cb(evutil_socket_t fd, short what, void *arg)
{
	pump(arg);
}

static struct destcount *
dest_get(struct qmgr *q, const char *key)
{
	struct destcount *d;

	for (d = q->dests; d; d = d->next)
		if (strcmp(d->key, key) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	snprintf(d->key, sizeof(d->key), "%s", key);
	d->next = q->dests;
	q->dests = d;
	return d;
}

static void
dest_put(struct qmgr *q, const char *key)
{
	struct destcount **pp, *d;

	for (pp = &q->dests; (d = *pp); pp = &d->next)
		if (strcmp(d->key, key) == 0) {
			if (d->n > 0)
				d->n--;
			if (d->n == 0) {
				*pp = d->next;
				free(d);
			}
			return;
		}
}

static bool schedule(struct qmgr *q, const char *id, enum queue_state st,
		     bool force);

/* Notifications a job wrote go to the queue manager like new mail (loop). */
static void
take_new_ids(struct qmgr *q, struct qjob *j)
{
	size_t i;

	for (i = 0; i < j->new_ids.n; i++)
		if (!schedule(q, j->new_ids.v[i], QUEUE_ACTIVE, false))
			q->rescan_active = true;
	strlist_free(&j->new_ids);
}

static void
record_done(void *arg)
{
	struct qjob *j = arg;
	struct qmgr *q = j->q;
	struct qjob **pp;

	for (pp = &q->out_jobs; *pp; pp = &(*pp)->out_next)
		if (*pp == j) {
			*pp = j->out_next;
			break;
		}
	q->out_jobs_n--;
	set_del(q, j->id);
	take_new_ids(q, j);
	job_free(j);
	pump_later(q);
}

static void dispatch(struct qmgr *q);

/* Whether word names next hop t: "host", "[host]", "[host]:port" ... */
static bool
nexthop_is(const struct transport *t, const char *w, size_t n)
{
	char f[300];

	if (n == strlen(t->host) && strncasecmp(w, t->host, n) == 0)
		return true;
	snprintf(f, sizeof(f), "%s%s%s", t->mx ? "" : "[", t->host,
		 t->mx ? "" : "]");
	if (n == strlen(f) && strncasecmp(w, f, n) == 0)
		return true;
	if (t->port > 0)
		snprintf(f + strlen(f), sizeof(f) - strlen(f), ":%d", t->port);
	return n == strlen(f) && strncasecmp(w, f, n) == 0;
}

/* smtp_connection_cache_destinations lists this next hop. */
static bool
cache_listed(const struct qmgr *q, const struct transport *t)
{
	const char *p = q->s->smtp_connection_cache_destinations;

	while (p && *p) {
		size_t n;

		p += strspn(p, ", \t\r\n");
		n = strcspn(p, ", \t\r\n");
		if (n > 0 && nexthop_is(t, p, n))
			return true;
		p += n;
	}
	return false;
}

/*
 * The SMTP client asks, at the end of a transaction, whether to keep the
 * connection (smtp_connection_cache_on_demand: when more mail for the same
 * next hop is waiting, or not sorted yet; or always for the next hops in
 * smtp_connection_cache_destinations).
 */
static bool
want_cache(void *arg, const struct smtp_req *req)
{
	struct qmgr *q = arg;
	const struct outgroup *g = (const struct outgroup *)(const void *)
		((const char *)req - offsetof(struct outgroup, req));
	const struct outgroup *w;

	if (cache_listed(q, &g->t))
		return true;
	if (!q->s->smtp_connection_cache_on_demand)
		return false;
	for (w = q->wait_head; w; w = w->wait_next)
		if (strcmp(w->cache_key, g->cache_key) == 0)
			return true;
	return q->npending > 0 || q->inflight > 0;
}

/*
 * notify_classes: Postfix's class names; "bounce" implies "2bounce". An
 * unknown name is logged and ignored, as Postfix does.
 */
static unsigned
notify_parse(const char *v, const char *syslog_name)
{
	static const struct { const char *name; unsigned bit; } names[] = {
		{ "bounce", QMGR_NOTE_BOUNCE | QMGR_NOTE_2BOUNCE },
		{ "2bounce", QMGR_NOTE_2BOUNCE }, { "delay", QMGR_NOTE_DELAY },
		{ "resource", QMGR_NOTE_RESOURCE },
		{ "software", QMGR_NOTE_SOFTWARE }, { "policy", QMGR_NOTE_POLICY },
		{ "protocol", QMGR_NOTE_PROTOCOL }, { "data", QMGR_NOTE_DATA },
	};
	unsigned r = 0;
	size_t i;

	while (v && *v) {
		size_t n;

		v += strspn(v, ", \t\r\n");
		n = strcspn(v, ", \t\r\n");
		if (n == 0)
			break;
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].name) == n
			    && strncasecmp(names[i].name, v, n) == 0)
				break;
		if (i < sizeof(names) / sizeof(names[0]))
			r |= names[i].bit;
		else
			log_write(syslog_name, "qmgr", LOG_LVL_WARNING,
				  "unknown notify_classes name \"%.*s\" ignored",
				  (int)(n > 64 ? 64 : n), v);
		v += n;
	}
	return r;
}

/* A notice address: as given when it has a domain, else @myorigin. */
static char *
qualify(const char *a, const char *def, const struct settings *s)
{
	const char *origin = s->myorigin && *s->myorigin ? s->myorigin
			     : s->myhostname ? s->myhostname : "localhost";
	struct buf b;

	if (a == NULL || *a == '\0')
		a = def;
	if (strchr(a, '@'))
		return xstrdup(a);
	buf_init(&b, 0);
	buf_printf(&b, "%s@%s", a, origin);
	return buf_steal(&b);
}

/* A protocols parameter: Postfix's syntax, at least one version left. */
static int
protocols_check(const char *name, const char *v, struct errbuf *err)
{
	struct errbuf e;

	errbuf_clear(&e);
	if (smtp_tls_protocols_apply(NULL, v ? v : "", &e) == 0)
		return 0;
	errbuf_set(err, "%s: %s", name, errbuf_str(&e));
	return -1;
}

/* A source address parameter: "" or a numeric address of family af. */
static int
bind_check(const char *name, const char *v, int af, struct errbuf *err)
{
	unsigned char a[16];

	if (v == NULL || *v == '\0' || inet_pton(af, v, a) == 1)
		return 0;
	errbuf_set(err, "%s: \"%s\" is not a numeric %s address", name, v,
		   af == AF_INET ? "IPv4" : "IPv6");
	return -1;
}

static void
smtp_done(void *arg, struct smtp_req *req)
{
	struct outgroup *g = arg;
	struct qjob *j = g->j;
	struct qmgr *q = j->q;

	g->sess = NULL;
	q->out_active--;
	if (g->t.svc >= 0 && (size_t)g->t.svc < q->nsvcs
	    && q->qsvcs[g->t.svc].out_active > 0)
		q->qsvcs[g->t.svc].out_active--;
	dest_put(q, g->key);
	if (--j->groups_left == 0)
		worker_submit(q->pool, record_work, record_done, j);
	dispatch(q);
}

/* Starts waiting SMTP deliveries within the concurrency limits (loop). */
static void
dispatch(struct qmgr *q)
{
	struct outgroup **pp = &q->wait_head, *g, *last = NULL;
	size_t k;

	while ((g = *pp) != NULL && q->out_active < QMGR_OUT_MAX) {
		struct destcount *d = dest_get(q, g->key);
		struct qsvc *v = g->t.svc >= 0 && (size_t)g->t.svc < q->nsvcs
				 ? &q->qsvcs[g->t.svc] : NULL;
		struct svc_copy *sc;

		if ((q->dest_limit > 0 && d->n >= q->dest_limit)
		    || (v && v->maxproc > 0
			&& v->out_active >= (unsigned)v->maxproc)) {
			last = g;
			pp = &g->wait_next;
			continue;
		}
		*pp = g->wait_next;
		g->wait_next = NULL;
		d->n++;
		q->out_active++;
		if (v)
			v->out_active++;
		gettimeofday(&g->t_start, NULL);
		g->req.host = g->t.host;
		g->req.port = g->t.port;
		g->req.mx = g->t.mx;
		g->req.lmtp = g->t.kind == TRANSPORT_LMTP;
		g->req.unix_sock = g->t.unix_sock;
		g->req.sasl_user = g->sasl_user;
		g->req.sasl_pass = g->sasl_pass;
		g->req.id = g->j->env.id;
		g->req.cache_key = g->cache_key;
		g->req.tls_policy = g->has_policy;
		g->req.tls_level = g->policy.level;
		g->req.tls_match = g->policy.match;
		g->req.tls_protocols = g->policy.protocols;
		g->req.sender = g->j->env.sender;
		g->req.content = g->j->content.data ? g->j->content.data : "";
		g->req.len = g->j->content.len;
		for (k = 0; k < g->req.nrcpt; k++)
			g->req.rcpt[k].addr = g->j->env.rcpt[g->idx[k]].addr;
		sc = svc_copy_find(g->j, g->t.svc);
		if (sc == NULL && g->req.lmtp && g->j->lck.len > 0) {
			/* lmtp_header_checks: LMTP deliveries */
			g->req.content = g->j->lck.data;
			g->req.len = g->j->lck.len;
		}
		if (sc != NULL) {
			/* a service with its own smtp_*_checks */
			const struct buf *b = sc->gen.active &&
					      sc->gen.content.len > 0
					      ? &sc->gen.content : &sc->hck;

			if (b->len > 0) {
				g->req.content = b->data;
				g->req.len = b->len;
			}
			if (sc->gen.active) {
				g->req.sender = sc->gen.sender;
				for (k = 0; k < g->req.nrcpt; k++)
					g->req.rcpt[k].addr =
					    sc->gen.rcpt[g->idx[k]];
			}
		} else if (g->j->hck.len > 0 && !g->req.lmtp) {
			/* smtp_header_checks: SMTP only, never LMTP */
			g->req.content = g->j->hck.data;
			g->req.len = g->j->hck.len;
		}
		if (sc == NULL && g->j->gen.active && !g->req.lmtp) {
			/* smtp_generic_maps: SMTP only, never LMTP */
			g->req.sender = g->j->gen.sender;
			if (g->j->gen.content.len > 0) {
				g->req.content = g->j->gen.content.data;
				g->req.len = g->j->gen.content.len;
			}
			for (k = 0; k < g->req.nrcpt; k++)
				g->req.rcpt[k].addr = g->j->gen.rcpt[g->idx[k]];
		}
		g->sess = smtp_deliver(q->base, q->dns, v ? &v->scfg : &q->scfg,
				       &g->req, smtp_done, g);
	}
	q->wait_tail = NULL;
	for (g = q->wait_head; g; g = g->wait_next)
		q->wait_tail = g;
	(void)last;
}

static void
job_done(void *arg)
{
	struct qjob *j = arg;
	struct qmgr *q = j->q;
	size_t k;

	q->inflight--;
	if (j->ngroups > 0) {
		/* the worker slot is free; the message stays known */
		j->out_next = q->out_jobs;
		q->out_jobs = j;
		q->out_jobs_n++;
		j->groups_left = j->ngroups;
		for (k = 0; k < j->ngroups; k++) {
			struct outgroup *g = &j->groups[k];
			g->wait_next = NULL;
			if (q->wait_tail)
				q->wait_tail->wait_next = g;
			else
				q->wait_head = g;
			q->wait_tail = g;
		}
		dispatch(q);
		pump_later(q);
		return;
	}
	set_del(q, j->id);
	take_new_ids(q, j);
	results_free(j);
	free(j);
	pump_later(q);
}

/* Queues one ID unless known. false if the FIFO is full. */
static bool
schedule(struct qmgr *q, const char *id, enum queue_state st, bool force)
{
	struct qjob *j;

	if (set_has(q, id))
		return true;
	if (q->npending >= QMGR_PENDING_MAX)
		return false;
	j = xcalloc(1, sizeof(*j));
	j->q = q;
	memcpy(j->id, id, QUEUE_ID_SIZE);
	j->st = st;
	j->force = force;
	gettimeofday(&j->t_sched, NULL);
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	q->npending++;
	set_add(q, id);
	return true;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
known(const struct strlist *l, const char *id)
{
	const char *k = id;
	return l->n > 0 && bsearch(&k, l->v, l->n, sizeof(char *), cmp_str) != NULL;
}

static void
scan_work(void *arg)
{
	struct qscan *sc = arg;
	struct strlist ids;
	struct errbuf err;
	struct stat sb;
	char path[4200];
	time_t now = time(NULL);
	size_t i, taken = 0;

	errbuf_clear(&err);
	if (sc->active) {
		strlist_init(&ids);
		if (queue_list(sc->q->qdir, QUEUE_ACTIVE, &ids, &err) < 0)
			snprintf(sc->err, sizeof(sc->err), "%s", errbuf_str(&err));
		for (i = 0; i < ids.n; i++) {
			if (known(&sc->known, ids.v[i]))
				continue;
			if (taken >= QMGR_SCAN_BATCH) {
				sc->more = true;
				break;
			}
			strlist_add(&sc->act, ids.v[i]);
			taken++;
		}
		strlist_free(&ids);
	}
	if (sc->deferred) {
		strlist_init(&ids);
		if (queue_list(sc->q->qdir, QUEUE_DEFERRED, &ids, &err) < 0)
			snprintf(sc->err, sizeof(sc->err), "%s", errbuf_str(&err));
		for (i = 0; i < ids.n; i++) {
			if (known(&sc->known, ids.v[i]))
				continue;
			/* queue_defer sets the mtime to the next attempt: a
			 * stat instead of reading every deferred file. */
			if (!sc->force) {
				snprintf(path, sizeof(path), "%s/deferred/%s",
					 sc->q->qdir, ids.v[i]);
				if (stat(path, &sb) < 0 || sb.st_mtime > now)
					continue;
			}
			if (taken >= QMGR_SCAN_BATCH) {
				sc->more = true;
				break;
			}
			strlist_add(&sc->def, ids.v[i]);
			taken++;
		}
		strlist_free(&ids);
	}
}

static void
scan_done(void *arg)
{
	struct qscan *sc = arg;
	struct qmgr *q = sc->q;
	size_t i;

	q->scanning = false;
	if (sc->err[0])
		log_write(q->s->syslog_name, "qmgr", LOG_LVL_WARNING, "%s", sc->err);
	for (i = 0; i < sc->act.n; i++)
		if (!schedule(q, sc->act.v[i], QUEUE_ACTIVE, false)) {
			q->rescan_active = true;
			break;
		}
	for (i = 0; i < sc->def.n; i++)
		if (!schedule(q, sc->def.v[i], QUEUE_DEFERRED, sc->force)) {
			q->rescan_deferred = true;
			q->rescan_force |= sc->force;
			break;
		}
	if (sc->more) {
		if (sc->active)
			q->rescan_active = true;
		if (sc->deferred) {
			q->rescan_deferred = true;
			q->rescan_force |= sc->force;
		}
	}
	strlist_free(&sc->known);
	strlist_free(&sc->act);
	strlist_free(&sc->def);
	free(sc);
	pump_later(q);
}

static void
scan_start(struct qmgr *q, bool active, bool deferred, bool force)
{
	struct qscan *sc;
	size_t i;

	if (q->scanning) {
		if (active)
			q->rescan_active = true;
		if (deferred)
			q->rescan_deferred = true;
		q->rescan_force |= force;
		return;
	}
	sc = xcalloc(1, sizeof(*sc));
	sc->q = q;
	sc->active = active;
	sc->deferred = deferred;
	sc->force = force;
	strlist_init(&sc->known);
	strlist_init(&sc->act);
	strlist_init(&sc->def);
	for (i = 0; i < q->set_size; i++) {
		struct qset_ent *e;
		for (e = q->set[i]; e; e = e->next)
			strlist_add(&sc->known, e->id);
	}
	if (sc->known.n > 1)
		qsort(sc->known.v, sc->known.n, sizeof(char *), cmp_str);
	q->scanning = true;
	worker_submit(q->pool, scan_work, scan_done, sc);
}

/*
 * qmgr_reconfigure: once nothing is in flight (no worker job, no SMTP
 * delivery, no scan), the configuration-derived fields of q and q->next
 * trade places; freeing q->next then frees the old ones.
 */
static void
reconf_try(struct qmgr *q)
{
	struct qmgr *n = q->next, tmp;
	void (*applied)(void *) = q->next_applied;
	void *arg = q->next_arg;

	if (n == NULL || q->inflight > 0 || q->out_jobs_n > 0 ||
	    q->out_active > 0 || q->scanning)
		return;
#define QMGR_SWAP(f) do { tmp.f = q->f; q->f = n->f; n->f = tmp.f; } while (0)
	QMGR_SWAP(s);
	QMGR_SWAP(resolve);
	QMGR_SWAP(generic);
	QMGR_SWAP(smtp_checks);
	QMGR_SWAP(lmtp_checks);
	QMGR_SWAP(dns);
	QMGR_SWAP(transport_maps);
	QMGR_SWAP(sd_transport_maps);
	QMGR_SWAP(sd_relayhost_maps);
	QMGR_SWAP(sasl_maps);
	QMGR_SWAP(tcfg);
	QMGR_SWAP(scfg);
	QMGR_SWAP(dest_limit);
	QMGR_SWAP(max_inflight);
	QMGR_SWAP(tls_policy_maps);
	QMGR_SWAP(notify);
	QMGR_SWAP(pm_bounce);
	QMGR_SWAP(pm_2bounce);
	QMGR_SWAP(pm_delay);
	QMGR_SWAP(dbl_sender);
	QMGR_SWAP(svcs);
	QMGR_SWAP(qsvcs);
	QMGR_SWAP(nsvcs);
#undef QMGR_SWAP
	/* Pointers back to the qmgr itself stay ours. A field qmgr_new
	 * derives from the settings must be swapped above: the old settings
	 * are freed once applied() returns. */
	q->scfg.cache_arg = q;
	n->scfg.cache_arg = n;
	for (size_t k = 0; k < q->nsvcs; k++)
		q->qsvcs[k].scfg.cache_arg = q;
	for (size_t k = 0; k < n->nsvcs; k++)
		n->qsvcs[k].scfg.cache_arg = n;
	if (event_pending(q->timer, EV_TIMEOUT, NULL)) {
		struct timeval tv = { (time_t)(q->s->queue_run_delay > 0
					       ? q->s->queue_run_delay : 300), 0 };
		event_add(q->timer, &tv);
	}
	q->next = NULL;
	qmgr_free(&n);
	if (applied != NULL)
		applied(arg);
}

/* Starts jobs while there are slots; rescans when the FIFO ran dry. */
static void
pump(struct qmgr *q)
{
	struct qjob *j;

	if (q->next != NULL) {
		reconf_try(q);		/* nothing new starts until it applies */
		if (q->next != NULL)
			return;
	}
	while (q->inflight < q->max_inflight && (j = q->head) != NULL) {
		q->head = j->next;
		if (q->head == NULL)
			q->tail = NULL;
		j->next = NULL;
		q->npending--;
		q->inflight++;
		worker_submit(q->pool, job_work, job_done, j);
	}
	if (q->head == NULL && !q->scanning
	    && (q->rescan_active || q->rescan_deferred)) {
		bool a = q->rescan_active, d = q->rescan_deferred;
		bool f = q->rescan_force;
		q->rescan_active = q->rescan_deferred = q->rescan_force = false;
		scan_start(q, a, d, f);
	}
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct qmgr *q = arg;

	/* active/ too: it catches messages whose notification was lost. */
	scan_start(q, true, true, false);
	pump(q);
}

/* ---- public ---- */

/* "NAME: " before err's text (not errbuf_set(err, .., errbuf_str(err)):
 * the text would be read while it is overwritten). */
static void
err_prefix(struct errbuf *err, const char *name)
{
	struct errbuf e = *err;

	errbuf_set(err, "%s: %s", name, errbuf_str(&e));
}

static void
svcs_free(struct qmgr *q)
{
	for (size_t i = 0; i < q->nsvcs; i++) {
		struct qsvc *v = &q->qsvcs[i];

		if (v->scfg.tls_ctx)
			SSL_CTX_free(v->scfg.tls_ctx);
		pipe_cfg_free(&v->pipe);
		smtp_checks_free(&v->checks);
		free(v->bad);
		free(v->syslog_name);
		pthread_mutex_destroy(&v->mu);
		pthread_cond_destroy(&v->cv);
	}
	free(q->svcs);
	free(q->qsvcs);
	q->svcs = NULL;
	q->qsvcs = NULL;
	q->nsvcs = 0;
	q->tcfg.svcs = NULL;
	q->tcfg.nsvcs = 0;
}

/* "FILE, line N: " before err's text for a master.cf service. */
static void
err_place(struct errbuf *err, const char *file, int line)
{
	struct errbuf e = *err;

	errbuf_set(err, "%s, line %d: %s", file, line, errbuf_str(&e));
}

/*
 * An lmtp service: Postfix's lmtp_*_timeout names (main.cf or -o) where
 * set, over the smtp_* ones. 0, or -1 + err for a bad time.
 */
static int
lmtp_timeouts(const struct config *lc, struct smtp_client_cfg *c,
	      struct errbuf *err)
{
	const struct { const char *name; long long *f; } t[] = {
		{ "lmtp_connect_timeout", &c->t_connect },
		{ "lmtp_lhlo_timeout", &c->t_helo },
		{ "lmtp_mail_timeout", &c->t_mail },
		{ "lmtp_rcpt_timeout", &c->t_rcpt },
		{ "lmtp_data_init_timeout", &c->t_data_init },
		{ "lmtp_data_xfer_timeout", &c->t_data_xfer },
		{ "lmtp_data_done_timeout", &c->t_data_done },
		{ "lmtp_quit_timeout", &c->t_quit },
		{ "lmtp_rset_timeout", &c->t_rset },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *v = config_get(lc, t[i].name);
		long long secs;

		if (v == NULL || *v == '\0')
			continue;
		if (params_parse_time(v, 's', &secs) < 0 || secs < 1) {
			errbuf_set(err, "%s: bad time value \"%.100s\"",
				   t[i].name, v);
			return -1;
		}
		*t[i].f = secs;
	}
	return 0;
}

/*
 * The master.cf transports with their agents' settings: main.cf plus the
 * service's -o overrides (see the header comment for which apply).
 */
static int
svcs_build(struct qmgr *q, const struct settings *s, struct errbuf *err)
{
	const struct master_cf *m;

	if (s->cfg == NULL)
		return 0;
	m = config_transports(s->cfg);
	if (m->n == 0)
		return 0;
	q->svcs = xcalloc(m->n, sizeof(*q->svcs));
	q->qsvcs = xcalloc(m->n, sizeof(*q->qsvcs));
	for (size_t i = 0; i < m->n; i++) {
		const struct master_service *ms = &m->v[i];
		struct transport_svc *ts = &q->svcs[i];
		struct qsvc *v = &q->qsvcs[i];
		struct config *lc;
		struct settings ss;
		struct strlist ov;
		char *sn;
		const char *c = ms->command;
		int rc = 0;

		snprintf(ts->name, sizeof(ts->name), "%s", ms->service);
		ts->kind = transport_kind_of(c);
		ts->maxproc = ms->maxproc;
		ts->agent = v;
		v->maxproc = ms->maxproc;
		v->scfg = q->scfg;
		v->scfg.tls_ctx = NULL;
		pthread_mutex_init(&v->mu, NULL);
		pthread_cond_init(&v->cv, NULL);
		q->nsvcs++;
		/* $service_name, as Postfix's master defines it for the
		 * service's -o values ("-o syslog_name=postfix/$service_name") */
		strlist_init(&ov);
		sn = xasprintf("service_name=%s", ms->service);
		strlist_add(&ov, sn);
		free(sn);
		for (size_t k = 0; k < ms->overrides.n; k++)
			strlist_add(&ov, ms->overrides.v[k]);
		lc = config_with_overrides(s->cfg, &ov, err);
		strlist_free(&ov);
		if (lc == NULL) {
			err_place(err, ms->file, ms->line);
			return -1;
		}
		memset(&ss, 0, sizeof(ss));
		if (settings_load(&ss, lc, err) < 0) {
			settings_free(&ss);
			config_free(&lc);
			err_place(err, ms->file, ms->line);
			return -1;
		}
		if (ts->kind == TRANSPORT_SMTP || ts->kind == TRANSPORT_LMTP) {
			v->scfg.t_connect = ss.smtp_connect_timeout;
			v->scfg.t_helo = ss.smtp_helo_timeout;
			v->scfg.t_mail = ss.smtp_mail_timeout;
			v->scfg.t_rcpt = ss.smtp_rcpt_timeout;
			v->scfg.t_data_init = ss.smtp_data_init_timeout;
			v->scfg.t_data_xfer = ss.smtp_data_xfer_timeout;
			v->scfg.t_data_done = ss.smtp_data_done_timeout;
			v->scfg.t_quit = ss.smtp_quit_timeout;
			v->scfg.t_rset = ss.smtp_rset_timeout;
			if (ts->kind == TRANSPORT_LMTP && lmtp_timeouts(lc, &v->scfg,
								  err) < 0)
				rc = -1;
			if (smtp_tls_level_parse(smtp_tls_level_value(&ss),
						 &v->scfg.tls_level, err) < 0
			    || smtp_tls_ctx_new(q->tls_policy_maps != NULL
						&& v->scfg.tls_level < SMTP_TLS_MAY
						? SMTP_TLS_MAY : v->scfg.tls_level,
						ss.smtp_tls_CAfile,
						ss.smtp_tls_CApath,
						&v->scfg.tls_ctx, err) < 0
			    || smtp_tls_knobs_load(&v->scfg, &ss, err) < 0
			    || smtp_dns_support_parse(ss.smtp_dns_support_level,
						      &v->scfg.dns_support,
						      err) < 0)
				rc = -1;
			/* -o smtp_header_checks / smtp_body_checks of its
			 * own (delivery/smtp_checks.h) */
			if (rc == 0 && smtp_checks_differ(&ss, s, ts->kind ==
							      TRANSPORT_LMTP) &&
			    (v->checks = smtp_checks_new(&ss, ts->kind ==
							 TRANSPORT_LMTP,
							 err)) == NULL)
				rc = -1;
		} else if (ts->kind == TRANSPORT_PIPE) {
			char *pn = xasprintf("%s_time_limit", ms->service);
			const char *tv = config_get(lc, pn);
			long long tl = 1000;

			if (tv == NULL || *tv == '\0')
				tv = config_get(lc, "command_time_limit");
			if (tv && *tv && params_parse_time(tv, 's', &tl) < 0) {
				errbuf_set(err, "%s: bad time value \"%.100s\"",
					   pn, tv);
				rc = -1;
			} else if (pipe_cfg_parse(&v->pipe, ms->service, ms->user,
						  &ms->argv, &ms->attrs,
						  s->mail_owner, tl, err) < 0) {
				/* unusable: an error when main.cf names it
				 * (names_check), else a warning, and mail
				 * routed to it is deferred */
				v->bad = xasprintf("%s, line %d: %s", ms->file,
						   ms->line, errbuf_str(err));
				errbuf_clear(err);
				log_write(s->syslog_name, "qmgr",
					  LOG_LVL_WARNING, "%s; mail routed "
					  "to it is deferred", v->bad);
			}
			free(pn);
			/* NAME_destination_recipient_limit (1: a run per
			 * recipient, Postfix's usual dovecot setting). Not
			 * set: a run per recipient when argv names one. */
			pn = xasprintf("%s_destination_recipient_limit",
				       ms->service);
			tv = config_get(lc, pn);
			if (rc == 0 && tv && *tv) {
				long long lim;

				if (params_parse_int(tv, &lim) < 0 || lim < 0) {
					errbuf_set(err, "%s: bad number \"%.100s\"",
						   pn, tv);
					rc = -1;
				} else {
					v->pipe.rcpt_limit = lim;
					if (lim == 1)
						v->pipe.per_rcpt = true;
					/* set above 1 (or 0, no limit): several
					 * recipients per run, ${recipient} one
					 * argument each, as pipe(8); D and O
					 * still name one */
					else if (!(v->pipe.flags
						   & (PIPE_F_D | PIPE_F_O)))
						v->pipe.per_rcpt = false;
				}
			}
			free(pn);
		}
		/* -o syslog_name=postfix/$service_name: its deliveries log
		 * under that name, as Postfix's */
		v->syslog_name = xstrdup(ss.syslog_name && *ss.syslog_name
					 ? ss.syslog_name : s->syslog_name);
		v->scfg.syslog_name = v->syslog_name;
		settings_free(&ss);
		config_free(&lc);
		if (rc < 0) {
			err_place(err, ms->file, ms->line);
			return -1;
		}
	}
	q->tcfg.svcs = q->svcs;
	q->tcfg.nsvcs = q->nsvcs;
	return 0;
}

/*
 * default_transport, relay_transport, virtual_transport and content_filter
 * must name a built-in transport or a master.cf service: else a start-up
 * (and facteur check) error naming where the value was set.
 */
static int
names_check(struct qmgr *q, const struct settings *s, struct errbuf *err)
{
	static const char *const names[] = {
		"default_transport", "relay_transport", "virtual_transport",
		"content_filter",
	};
	const char *vals[] = {
		s->default_transport, s->relay_transport, s->virtual_transport,
		s->content_filter,
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct transport t;
		struct errbuf e;
		const char *file = NULL;
		int line = 0;

		if (vals[i] == NULL || vals[i][0] == '\0')
			continue;
		errbuf_clear(&e);
		memset(&t, 0, sizeof(t));
		if (transport_parse_svc(q->svcs, q->nsvcs, vals[i], &t, &e) == 0
		    && t.kind != TRANSPORT_OTHER
		    && (t.svc < 0 || q->qsvcs[t.svc].bad == NULL))
			continue;
		if (t.svc >= 0 && errbuf_str(&e)[0] == '\0'
		    && q->qsvcs[t.svc].bad != NULL) {
			errbuf_set(err, "%s (named by %s)", q->qsvcs[t.svc].bad,
				   names[i]);
			return -1;
		}
		if (s->cfg == NULL || !config_where(s->cfg, names[i], &file, &line))
			file = NULL;
		if (t.kind == TRANSPORT_OTHER)
			errbuf_set(&e, "unknown transport \"%s\" (neither built "
				   "in nor a master.cf service)", t.name);
		if (file)
			errbuf_set(err, "%s, line %d: %s: %s", file, line,
				   names[i], errbuf_str(&e));
		else
			errbuf_set(err, "%s: %s", names[i], errbuf_str(&e));
		return -1;
	}
	/* "-o content_filter=NAME:..." on master.cf listeners */
	if (s->cfg != NULL) {
		const struct master_cf *m = config_master(s->cfg);

		for (size_t i = 0; i < m->n; i++)
			for (size_t k = 0; k < m->v[i].overrides.n; k++) {
				const char *o = m->v[i].overrides.v[k];
				struct transport t;
				struct errbuf e;

				if (strncmp(o, "content_filter=", 15) != 0
				    || o[15] == '\0' || o[15] == '$')
					continue;
				errbuf_clear(&e);
				memset(&t, 0, sizeof(t));
				if (transport_parse_svc(q->svcs, q->nsvcs, o + 15,
							&t, &e) == 0
				    && t.kind != TRANSPORT_OTHER
				    && (t.svc < 0 || q->qsvcs[t.svc].bad == NULL))
					continue;
				if (errbuf_str(&e)[0] == '\0')
					errbuf_set(&e, "%s", t.svc >= 0
						   && t.kind != TRANSPORT_OTHER
						   ? q->qsvcs[t.svc].bad
						   : "unknown transport (neither "
						     "built in nor a master.cf "
						     "service)");
				errbuf_set(err, "%s, line %d: -o %s: %s",
					   m->v[i].file, m->v[i].line, o,
					   errbuf_str(&e));
				return -1;
			}
	}
	return 0;
}

/* qmgr_new, or with check_only its configuration part alone: nothing
 * is created on disk (facteur check, qmgr_check_config). */
static struct qmgr *
qmgr_build(struct event_base *base, struct worker_pool *pool,
	   const struct settings *s, struct resolve_ctx *resolve,
	   bool check_only, struct errbuf *err)
{
	struct qmgr *q;

	if (s->queue_directory == NULL || s->queue_directory[0] == '\0') {
		errbuf_set(err, "queue_directory is not set");
		return NULL;
	}
	if (!check_only && queue_init(s->queue_directory, err) < 0)
		return NULL;
	q = xcalloc(1, sizeof(*q));
	q->base = base;
	q->pool = pool;
	q->s = s;
	q->resolve = resolve;
	q->qdir = xstrdup(s->queue_directory);
	q->max_inflight = 2 * (unsigned)(s->facteur_worker_threads > 0
					 ? (s->facteur_worker_threads > 256
					    ? 256 : s->facteur_worker_threads)
					 : 2);
	q->set_size = 1024;
	q->set = xcalloc(q->set_size, sizeof(*q->set));
	q->dns = dns_new(base, s->facteur_dns_servers, err);
	if (q->dns == NULL ||
	    (q->generic = generic_ctx_new(s, resolve, err)) == NULL ||
	    (q->smtp_checks = smtp_checks_new(s, false, err)) == NULL ||
	    (q->lmtp_checks = smtp_checks_new(s, true, err)) == NULL) {
		qmgr_free(&q);
		return NULL;
	}
	q->transport_maps = table_list_open(s->transport_maps ? s->transport_maps
					    : "", TABLE_F_FOLD, err);
	if (q->transport_maps == NULL) {
		err_prefix(err, "transport_maps");
		qmgr_free(&q);
		return NULL;
	}
	q->tcfg.maps = q->transport_maps;
	q->sd_transport_maps = table_list_open(
		s->sender_dependent_default_transport_maps
		? s->sender_dependent_default_transport_maps : "", TABLE_F_FOLD, err);
	if (q->sd_transport_maps == NULL) {
		err_prefix(err, "sender_dependent_default_transport_maps");
		qmgr_free(&q);
		return NULL;
	}
	q->sd_relayhost_maps = table_list_open(
		s->sender_dependent_relayhost_maps
		? s->sender_dependent_relayhost_maps : "", TABLE_F_FOLD, err);
	if (q->sd_relayhost_maps == NULL) {
		err_prefix(err, "sender_dependent_relayhost_maps");
		qmgr_free(&q);
		return NULL;
	}
	q->tcfg.sd_transport_maps = q->sd_transport_maps;
	q->tcfg.sd_relayhost_maps = q->sd_relayhost_maps;
	q->tcfg.sd_transport_null_key =
		s->empty_address_default_transport_maps_lookup_key;
	q->tcfg.sd_relayhost_null_key = s->empty_address_relayhost_maps_lookup_key;
	q->tcfg.virtual_transport = s->virtual_transport;
	q->tcfg.relay_transport = s->relay_transport;
	q->tcfg.default_transport = s->default_transport;
	q->tcfg.relayhost = s->relayhost;
	q->scfg.helo_name = s->smtp_helo_name && *s->smtp_helo_name
			    ? s->smtp_helo_name : s->myhostname;
	q->scfg.syslog_name = s->syslog_name;
	q->scfg.t_connect = s->smtp_connect_timeout;
	q->scfg.t_helo = s->smtp_helo_timeout;
	q->scfg.t_mail = s->smtp_mail_timeout;
	q->scfg.t_rcpt = s->smtp_rcpt_timeout;
	q->scfg.t_data_init = s->smtp_data_init_timeout;
	q->scfg.t_data_xfer = s->smtp_data_xfer_timeout;
	q->scfg.t_data_done = s->smtp_data_done_timeout;
	q->scfg.t_quit = s->smtp_quit_timeout;
	if (s->smtp_tls_policy_maps && *s->smtp_tls_policy_maps) {
		q->tls_policy_maps = table_list_open(s->smtp_tls_policy_maps,
						     TABLE_F_FOLD, err);
		if (q->tls_policy_maps == NULL) {
			err_prefix(err, "smtp_tls_policy_maps");
			qmgr_free(&q);
			return NULL;
		}
	}
	if (smtp_tls_level_parse(smtp_tls_level_value(s),
				 &q->scfg.tls_level, err) < 0
	    /* a policy table may ask for TLS where the default does not */
	    || smtp_tls_ctx_new(q->tls_policy_maps != NULL
				&& q->scfg.tls_level < SMTP_TLS_MAY
				? SMTP_TLS_MAY : q->scfg.tls_level,
				s->smtp_tls_CAfile,
				s->smtp_tls_CApath, &q->scfg.tls_ctx, err) < 0
	    || smtp_tls_knobs_load(&q->scfg, s, err) < 0
	    || smtp_sasl_opts_parse(s->smtp_sasl_security_options
				    ? s->smtp_sasl_security_options : "",
				    &q->scfg.sasl_opts, err) < 0
	    || smtp_sasl_opts_parse(s->smtp_sasl_tls_security_options
				    ? s->smtp_sasl_tls_security_options : "",
				    &q->scfg.sasl_tls_opts, err) < 0) {
		qmgr_free(&q);
		return NULL;
	}
	q->scfg.sasl_filter = s->smtp_sasl_mechanism_filter;
	/* DNSSEC lookups for DANE (delivery/smtp_dane) */
	if (smtp_dns_support_parse(s->smtp_dns_support_level,
				   &q->scfg.dns_support, err) < 0) {
		qmgr_free(&q);
		return NULL;
	}
	if (bind_check("smtp_bind_address", s->smtp_bind_address, AF_INET, err) < 0
	    || bind_check("smtp_bind_address6", s->smtp_bind_address6, AF_INET6,
			  err) < 0) {
		qmgr_free(&q);
		return NULL;
	}
	if (protocols_check("smtp_tls_protocols", s->smtp_tls_protocols, err) < 0
	    || protocols_check("smtp_tls_mandatory_protocols",
			       s->smtp_tls_mandatory_protocols, err) < 0) {
		qmgr_free(&q);
		return NULL;
	}
	q->scfg.tls_protocols = s->smtp_tls_protocols;
	q->scfg.tls_mandatory_protocols = s->smtp_tls_mandatory_protocols;
	q->scfg.bind4 = s->smtp_bind_address;
	q->scfg.bind6 = s->smtp_bind_address6;
	q->scfg.bind_enforce = s->smtp_bind_address_enforce;
	if (s->inet_protocols && strcasestr(s->inet_protocols, "all") == NULL) {
		q->scfg.no_ipv4 = strcasestr(s->inet_protocols, "ipv4") == NULL;
		q->scfg.no_ipv6 = strcasestr(s->inet_protocols, "ipv6") == NULL;
		if (q->scfg.no_ipv4 && q->scfg.no_ipv6)
			q->scfg.no_ipv4 = q->scfg.no_ipv6 = false;
	}
	q->scfg.cache_wanted = want_cache;
	q->scfg.cache_arg = q;
	q->scfg.cache_time_limit = s->smtp_connection_cache_time_limit;
	q->scfg.reuse_count_limit = s->smtp_connection_reuse_count_limit;
	q->scfg.reuse_time_limit = s->smtp_connection_reuse_time_limit;
	q->scfg.t_rset = s->smtp_rset_timeout;
	q->scfg.mime_downgrade = !s->disable_mime_output_conversion;
	q->notify = notify_parse(s->notify_classes, s->syslog_name);
	q->pm_bounce = qualify(s->bounce_notice_recipient, "postmaster", s);
	q->pm_2bounce = qualify(s->double_bounce_notice_recipient, "postmaster", s);
	q->pm_delay = qualify(s->delay_notice_recipient, "postmaster", s);
	q->dbl_sender = qualify(s->double_bounce_sender, "double-bounce", s);
	if (s->smtp_sasl_auth_enable) {
		q->sasl_maps = table_list_open(s->smtp_sasl_password_maps
					       ? s->smtp_sasl_password_maps : "",
					       TABLE_F_FOLD, err);
		if (q->sasl_maps == NULL) {
			err_prefix(err, "smtp_sasl_password_maps");
			qmgr_free(&q);
			return NULL;
		}
	}
	q->dest_limit = (unsigned)(s->smtp_destination_concurrency_limit > 0
				   ? s->smtp_destination_concurrency_limit : 0);
	if (svcs_build(q, s, err) < 0 || names_check(q, s, err) < 0) {
		qmgr_free(&q);
		return NULL;
	}
	q->timer = event_new(base, -1, EV_PERSIST, timer_cb, q);
	q->pump_ev = event_new(base, -1, 0, pump_cb, q);
	if (q->timer == NULL || q->pump_ev == NULL) {
		errbuf_set(err, "qmgr: cannot create the queue run timer");
		qmgr_free(&q);
		return NULL;
	}
	return q;
}

struct qmgr *
qmgr_new(struct event_base *base, struct worker_pool *pool,
	 const struct settings *s, struct resolve_ctx *resolve,
	 struct errbuf *err)
{
	return qmgr_build(base, pool, s, resolve, false, err);
}

int
qmgr_check_config(struct event_base *base, const struct settings *s,
		  struct resolve_ctx *resolve, struct errbuf *err)
{
	struct qmgr *q = qmgr_build(base, NULL, s, resolve, true, err);

	if (q == NULL)
		return -1;
	qmgr_free(&q);
	return 0;
}

int
qmgr_start(struct qmgr *q, struct errbuf *err)
{
	struct timeval tv;
	long long delay = q->s->queue_run_delay > 0 ? q->s->queue_run_delay : 300;

	if (queue_clean_incoming(q->qdir, err) < 0)
		return -1;
	tv.tv_sec = (time_t)delay;
	tv.tv_usec = 0;
	if (event_add(q->timer, &tv) < 0) {
		errbuf_set(err, "qmgr: cannot arm the queue run timer");
		return -1;
	}
	scan_start(q, true, true, false);
	return 0;
}

void
qmgr_enqueued(struct qmgr *q, const char *id)
{
	if (q == NULL || id == NULL || strlen(id) != QUEUE_ID_LEN)
		return;
	if (!schedule(q, id, QUEUE_ACTIVE, false))
		q->rescan_active = true;	/* found again by a scan */
	pump(q);
}

void
qmgr_flush(struct qmgr *q)
{
	if (q == NULL)
		return;
	scan_start(q, true, true, true);
	pump(q);
}

int
qmgr_reconfigure(struct qmgr *q, const struct settings *s,
		 struct resolve_ctx *resolve, void (*applied)(void *arg),
		 void *arg, struct errbuf *err)
{
	struct qmgr *n = qmgr_new(q->base, q->pool, s, resolve, err);

	if (n == NULL)
		return -1;
	if (strcmp(n->qdir, q->qdir) != 0) {
		errbuf_set(err, "queue_directory cannot change while facteurd "
			   "runs (%s -> %s): restart it", q->qdir, n->qdir);
		qmgr_free(&n);
		return -1;
	}
	qmgr_free(&q->next);		/* an earlier one not applied yet */
	q->next = n;
	q->next_applied = applied;
	q->next_arg = arg;
	pump(q);
	return 0;
}

bool
qmgr_reconfigure_pending(const struct qmgr *q)
{
	return q != NULL && q->next != NULL;
}

unsigned
qmgr_in_flight(const struct qmgr *q)
{
	return q ? q->inflight + (unsigned)q->npending + q->out_jobs_n
		   + (q->scanning ? 1 : 0) : 0;
}

void
qmgr_free(struct qmgr **qp)
{
	struct qmgr *q = *qp;
	struct qjob *j, *n;
	size_t i;

	if (q == NULL)
		return;
	qmgr_free(&q->next);
	/* SMTP deliveries in progress are abandoned: their recipients stay
	 * pending in the queue file and are retried after the restart. */
	while ((j = q->out_jobs) != NULL) {
		size_t k;
		q->out_jobs = j->out_next;
		for (k = 0; k < j->ngroups; k++)
			smtp_cancel(j->groups[k].sess);
		job_free(j);
	}
	while (q->dests) {
		struct destcount *d = q->dests;
		q->dests = d->next;
		free(d);
	}
	smtp_cache_clear();
	dns_free(&q->dns);
	table_list_free(&q->transport_maps);
	table_list_free(&q->sd_transport_maps);
	table_list_free(&q->sd_relayhost_maps);
	table_list_free(&q->sasl_maps);
	table_list_free(&q->tls_policy_maps);
	svcs_free(q);
	generic_ctx_free(&q->generic);
	smtp_checks_free(&q->smtp_checks);
	smtp_checks_free(&q->lmtp_checks);
	if (q->scfg.tls_ctx) {
		SSL_CTX_free(q->scfg.tls_ctx);
		q->scfg.tls_ctx = NULL;
	}
	if (q->timer)
		event_free(q->timer);
	if (q->pump_ev)
		event_free(q->pump_ev);
	for (j = q->head; j; j = n) {
		n = j->next;
		free(j);
	}
	for (i = 0; i < q->set_size; i++) {
		struct qset_ent *e, *en;
		for (e = q->set[i]; e; e = en) {
			en = e->next;
			free(e);
		}
	}
	free(q->set);
	free(q->qdir);
	free(q->pm_bounce);
	free(q->pm_2bounce);
	free(q->pm_delay);
	free(q->dbl_sender);
	free(q);
	*qp = NULL;
}
