/*
 * verify.c - the address verifier (see verify.h): cache lookups and the
 * wait on workers, probe scheduling on the loop. Workers route an address
 * (smtp_probe_route may block) and hand a remote probe to the loop through
 * a queue and a wake-up pipe; the loop runs at most VERIFY_PROBES_MAX
 * dialogues. Every result (remote, or decided by the route: error:,
 * pipe ...) is stored, logged as Postfix's delivery agents log probes
 * ("ID: to=<a>, relay=..., dsn=..., status=deliverable (...)"), and wakes
 * the queries waiting for it. Addresses being probed are kept in a small
 * in-memory set so one address has at most one probe at a time.
 * Must not: touch libevent from a worker (only the pipe), hold the lock
 * across a store call or a map lookup, or keep settings pointers.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/addr.h"
#include "core/kvstore.h"
#include "core/lib/buf.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/params.h"
#include "core/qmgr.h"
#include "core/queue.h"
#include "core/verify.h"
#include "delivery/smtp_probe.h"

#define VERIFY_CLEANUP_EVERY	60	/* seconds */
#define VERIFY_CLEANUP_SCAN	2000
#define VERIFY_INFLIGHT_MAX	(VERIFY_PROBES_MAX + VERIFY_QUEUE_MAX)

struct vjob {
	char            *key;		/* the address asked about */
	char            *addr;		/* the address probed (alias target) */
	struct transport t;
	char             id[QUEUE_ID_SIZE];
	struct timeval   t0;
	struct verify   *v;
	struct vjob     *next;		/* queue, or the running list */
};

struct verify {
	struct event_base  *base;
	struct smtp_probe  *prober;
	struct verify_times times;
	char               *path;		/* store, without .lmdb */
	long long           map_size;
	char               *syslog_name;
	pthread_mutex_t     mu;		/* everything below */
	pthread_cond_t      cv;		/* a result came in, or stop */
	struct kvstore     *store;
	time_t              last_cleanup;
	unsigned long       gen;		/* results so far */
	unsigned            waiters, max_waiters;	/* queries waiting */
	bool                stopping;
	struct strlist      inflight;	/* keys being probed */
	struct vjob        *q_head, *q_tail;	/* waiting for a slot */
	size_t              q_n;
	unsigned            running;	/* loop thread only: */
	struct vjob        *runs;		/* the probes running */
	int                 pipefd[2];
	struct event       *wake_ev;
};

static pthread_mutex_t cur_mu = PTHREAD_MUTEX_INITIALIZER;
static struct verify  *cur;

void
verify_set_current(struct verify *v)
{
	pthread_mutex_lock(&cur_mu);
	cur = v;
	pthread_mutex_unlock(&cur_mu);
}

static struct verify *
current(void)
{
	struct verify *v;

	pthread_mutex_lock(&cur_mu);
	v = cur;
	pthread_mutex_unlock(&cur_mu);
	return v;
}

/* ---- configuration ---- */

static int
get_time(const struct config *c, const char *name, const char *def, char unit,
	 long long min, long long *r, struct errbuf *err)
{
	const char *v = c ? config_get(c, name) : NULL;

	if (v == NULL)
		v = def;
	if (params_parse_time(v, unit, r) < 0 || *r < min) {
		errbuf_set(err, "bad value for %s: \"%s\" (expected a time, "
			   "e.g. 3s, 31d)", name, v);
		return -1;
	}
	return 0;
}

static int
get_int(const struct config *c, const char *name, const char *def,
	long long min, long long max, long long *r, struct errbuf *err)
{
	const char *v = c ? config_get(c, name) : NULL;

	if (v == NULL)
		v = def;
	if (params_parse_int(v, r) < 0 || *r < min || *r > max) {
		errbuf_set(err, "bad value for %s: \"%s\" (expected a number "
			   "from %lld to %lld)", name, v, min, max);
		return -1;
	}
	return 0;
}

static int
get_bool(const struct config *c, const char *name, const char *def, bool *r,
	 struct errbuf *err)
{
	const char *v = c ? config_get(c, name) : NULL;

	if (v == NULL)
		v = def;
	if (params_parse_bool(v, r) < 0) {
		errbuf_set(err, "bad value for %s: \"%s\" (expected yes or no)",
			   name, v);
		return -1;
	}
	return 0;
}

static int
get_tempfail(const struct config *c, const char *name, bool *defer_now,
	     struct errbuf *err)
{
	const char *v = c ? config_get(c, name) : NULL;

	if (v == NULL || strcasecmp(v, "defer_if_permit") == 0) {
		*defer_now = false;
		return 0;
	}
	if (strcasecmp(v, "defer") == 0) {
		*defer_now = true;
		return 0;
	}
	errbuf_set(err, "bad value for %s: \"%s\" (expected defer_if_permit "
		   "or defer)", name, v);
	return -1;
}

int
verify_smtpd_conf(const struct config *c, struct verify_smtpd *o,
		  struct errbuf *err)
{
	long long rr, rd, sr, sd;
	const char *v;

	memset(o, 0, sizeof(*o));
	if (get_int(c, "unverified_recipient_reject_code", "450", 400, 599, &rr,
		    err) < 0 ||
	    get_int(c, "unverified_recipient_defer_code", "450", 400, 599, &rd,
		    err) < 0 ||
	    get_int(c, "unverified_sender_reject_code", "450", 400, 599, &sr,
		    err) < 0 ||
	    get_int(c, "unverified_sender_defer_code", "450", 400, 599, &sd,
		    err) < 0 ||
	    get_tempfail(c, "unverified_recipient_tempfail_action",
			 &o->rcpt_defer_now, err) < 0 ||
	    get_tempfail(c, "unverified_sender_tempfail_action",
			 &o->sender_defer_now, err) < 0 ||
	    get_int(c, "address_verify_poll_count", "3", 1, 100,
		    &o->poll_count, err) < 0 ||
	    get_time(c, "address_verify_poll_delay", "3s", 's', 1,
		     &o->poll_delay, err) < 0)
		return -1;
	v = c ? config_get(c, "unverified_recipient_reject_reason") : NULL;
	snprintf(o->rcpt_reason, sizeof(o->rcpt_reason), "%s", v ? v : "");
	v = c ? config_get(c, "unverified_sender_reject_reason") : NULL;
	snprintf(o->sender_reason, sizeof(o->sender_reason), "%s", v ? v : "");
	o->rcpt_rcode = (int)rr;
	o->rcpt_dcode = (int)rd;
	o->sender_rcode = (int)sr;
	o->sender_dcode = (int)sd;
	return 0;
}

/* address_verify_map: lmdb:/path (btree: and hash: name the same store);
 * empty: a store under facteur_data_directory emptied at start. */
static char *
store_path(const struct settings *s, struct errbuf *err)
{
	const char *v = s->cfg ? config_get(s->cfg, "address_verify_map") : NULL;
	const char *p;

	if (v == NULL || *v == '\0') {
		const char *dd = s->cfg ? config_get(s->cfg,
					"facteur_data_directory") : NULL;
		char *path = xasprintf("%s/verify_cache_volatile",
				       dd && *dd ? dd : "/var/spool/facteur/data");
		char *f = xasprintf("%s.lmdb", path), *l = xasprintf("%s.lmdb-lock",
								     path);

		(void)unlink(f);
		(void)unlink(l);
		free(f);
		free(l);
		return path;
	}
	if (strncmp(v, "proxy:", 6) == 0)
		v += 6;
	p = strchr(v, ':');
	if (p == NULL || p[1] != '/' ||
	    !(strncmp(v, "lmdb:", 5) == 0 || strncmp(v, "btree:", 6) == 0 ||
	      strncmp(v, "hash:", 5) == 0)) {
		errbuf_set(err, "address_verify_map: \"%s\": expected lmdb:/path "
			   "(an absolute path; the store is /path.lmdb)", v);
		return NULL;
	}
	return xstrdup(p + 1);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg);

struct verify *
verify_new(struct event_base *base, const struct settings *s,
	   struct errbuf *err)
{
	struct verify *v = xcalloc(1, sizeof(*v));
	const struct config *c = s->cfg;
	const char *pe;

	pthread_mutex_init(&v->mu, NULL);
	pthread_cond_init(&v->cv, NULL);
	strlist_init(&v->inflight);
	v->pipefd[0] = v->pipefd[1] = -1;
	v->base = base;
	/* address_verify_cache_expire: an older name of the positive expiry */
	pe = c && config_raw(c, "address_verify_positive_expire_time") == NULL
	     && config_raw(c, "address_verify_cache_expire") != NULL
	     ? "address_verify_cache_expire" : "address_verify_positive_expire_time";
	if (get_time(c, pe, "31d", 'd', 1, &v->times.pos_exp, err) < 0 ||
	    get_time(c, "address_verify_positive_refresh_time", "7d", 'd', 1,
		     &v->times.pos_try, err) < 0 ||
	    get_time(c, "address_verify_negative_expire_time", "3d", 'd', 1,
		     &v->times.neg_exp, err) < 0 ||
	    get_time(c, "address_verify_negative_refresh_time", "3h", 'h', 1,
		     &v->times.neg_try, err) < 0 ||
	    get_bool(c, "address_verify_negative_cache", "yes",
		     &v->times.neg_cache, err) < 0 ||
	    get_int(c, "lmdb_map_size", "0", 0, 1LL << 40, &v->map_size,
		    err) < 0)
		goto fail;
	if ((v->path = store_path(s, err)) == NULL)
		goto fail;
	v->syslog_name = s->syslog_name ? xstrdup(s->syslog_name) : NULL;
	/* waiting queries hold workers: never more than half of them */
	v->max_waiters = s->facteur_worker_threads > 1
			 ? (unsigned)(s->facteur_worker_threads / 2) : 1;
	if ((v->prober = smtp_probe_new(base, s, err)) == NULL)
		goto fail;
	if (pipe(v->pipefd) < 0) {
		errbuf_set(err, "address verification: pipe: %s", strerror(errno));
		goto fail;
	}
	for (int i = 0; i < 2; i++) {
		(void)fcntl(v->pipefd[i], F_SETFL, O_NONBLOCK);
		(void)fcntl(v->pipefd[i], F_SETFD, FD_CLOEXEC);
	}
	v->wake_ev = event_new(base, v->pipefd[0], EV_READ | EV_PERSIST,
			       wake_cb, v);
	if (v->wake_ev == NULL || event_add(v->wake_ev, NULL) < 0) {
		errbuf_set(err, "address verification: cannot watch its pipe");
		goto fail;
	}
	return v;
fail:
	verify_free(&v);
	return NULL;
}

const char *
verify_restart_param(const struct config *a, const struct config *b)
{
	static const char *const names[] = {
		"address_verify_map", "address_verify_positive_expire_time",
		"address_verify_positive_refresh_time",
		"address_verify_negative_expire_time",
		"address_verify_negative_refresh_time",
		"address_verify_negative_cache", "address_verify_sender",
		"address_verify_relayhost", "address_verify_transport_maps",
		"address_verify_cache_expire", "address_verify_default_transport",
		"address_verify_relay_transport",
		"address_verify_virtual_transport",
		"address_verify_sender_dependent_relayhost_maps",
		"address_verify_sender_dependent_default_transport_maps",
	};

	if (a == NULL || b == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *x = config_get(a, names[i]);
		const char *y = config_get(b, names[i]);

		if (strcmp(x ? x : "", y ? y : "") != 0)
			return names[i];
	}
	return NULL;
}

void
verify_stop(struct verify *v)
{
	if (v == NULL)
		return;
	pthread_mutex_lock(&v->mu);
	v->stopping = true;
	pthread_cond_broadcast(&v->cv);
	pthread_mutex_unlock(&v->mu);
}

void
verify_free(struct verify **vp)
{
	struct verify *v = *vp;

	if (v == NULL)
		return;
	*vp = NULL;
	if (current() == v)
		verify_set_current(NULL);
	smtp_probe_free(&v->prober);	/* cancels running probes */
	while (v->runs != NULL) {	/* their callbacks never ran */
		struct vjob *j = v->runs;

		v->runs = j->next;
		free(j->key);
		free(j->addr);
		free(j);
	}
	while (v->q_head != NULL) {
		struct vjob *j = v->q_head;

		v->q_head = j->next;
		free(j->key);
		free(j->addr);
		free(j);
	}
	if (v->wake_ev)
		event_free(v->wake_ev);
	for (int i = 0; i < 2; i++)
		if (v->pipefd[i] >= 0)
			close(v->pipefd[i]);
	if (v->store)
		kvstore_close(&v->store);
	strlist_free(&v->inflight);
	pthread_cond_destroy(&v->cv);
	pthread_mutex_destroy(&v->mu);
	free(v->path);
	free(v->syslog_name);
	free(v);
}

/* ---- the store ---- */

static struct kvstore *
store(struct verify *v, struct errbuf *err)
{
	struct kvstore *k;

	pthread_mutex_lock(&v->mu);
	if (v->store == NULL)
		v->store = kvstore_open_logged(v->path, (size_t)v->map_size,
					       v->syslog_name, "verify",
					       "address_verify_map", err);
	k = v->store;
	pthread_mutex_unlock(&v->mu);
	return k;
}

/* Expired records go a few thousand at a time, at most once a minute,
 * with a flush to disk: called on workers only. */
static void
maybe_cleanup(struct verify *v, struct kvstore *k, time_t now)
{
	struct errbuf err;
	bool due;

	pthread_mutex_lock(&v->mu);
	due = now - v->last_cleanup >= VERIFY_CLEANUP_EVERY;
	if (due)
		v->last_cleanup = now;
	pthread_mutex_unlock(&v->mu);
	if (!due)
		return;
	errbuf_clear(&err);
	(void)kvstore_cleanup(k, now, VERIFY_CLEANUP_SCAN, &err);
	(void)kvstore_sync(k, &err);
}

/* 1 found (r set), 0 none, -1 store trouble. */
static int
record_get(struct verify *v, const char *key, time_t now,
	   struct verify_record *r)
{
	struct kvstore *k;
	struct errbuf err;
	char val[KVSTORE_VALUE_MAX];
	size_t vl = sizeof(val);
	int rc;

	errbuf_clear(&err);
	if ((k = store(v, &err)) == NULL)
		goto bad;
	rc = kvstore_get(k, key, now, val, &vl, NULL, &err);
	if (rc < 0)
		goto bad;
	if (rc == 0)
		return 0;
	if (vl > sizeof(val) || verify_record_parse(val, vl, r) < 0)
		return 0;	/* not a record: probed again */
	return 1;
bad:
	log_write(v->syslog_name, "verify", LOG_LVL_WARNING,
		  "address_verify_map: %s", errbuf_str(&err));
	return -1;
}

static void
record_put(struct verify *v, const char *key, const struct verify_record *r)
{
	struct kvstore *k;
	struct errbuf err;
	struct buf b;

	errbuf_clear(&err);
	if ((k = store(v, &err)) == NULL)
		goto bad;
	buf_init(&b, 0);
	verify_record_format(r, &b);
	if (b.len > KVSTORE_VALUE_MAX)
		b.len = KVSTORE_VALUE_MAX;
	if (kvstore_put(k, key, b.data, b.len,
			verify_record_expiry(&v->times, r), &err) < 0) {
		buf_free(&b);
		goto bad;
	}
	buf_free(&b);
	return;
bad:
	log_write(v->syslog_name, "verify", LOG_LVL_WARNING,
		  "address_verify_map: %s", errbuf_str(&err));
}

/* ---- results ---- */

static void
set_text(char *dst, size_t size, const char *src)
{
	size_t n = 0;

	for (; *src && n + 1 < size; src++)
		dst[n++] = (*src == '\r' || *src == '\n') ? ' ' : *src;
	dst[n] = '\0';
}

/*
 * A probe result for key (any thread): stored unless it would replace a
 * good result with a failure, logged, and the waiting queries woken.
 */
static void
record_result(struct verify *v, const char *key, const char *addr,
	      const char *service, const char *id, enum verify_status st,
	      const char *dsn, const char *text, const char *relay,
	      const struct timeval *t0, double t_conn, double t_xfer)
{
	struct verify_record old, r;
	time_t now = time(NULL);
	int have;
	struct timeval tv;
	double delay, delays[4];

	have = record_get(v, key, now, &old);
	if (have >= 0 && verify_result_replaces(&v->times, have == 1 ? &old
						: NULL, st, now)) {
		memset(&r, 0, sizeof(r));
		r.st = st;
		r.updated = (long long)now;
		set_text(r.text, sizeof(r.text), text);
		record_put(v, key, &r);
	}
	gettimeofday(&tv, NULL);
	delay = (double)(tv.tv_sec - t0->tv_sec)
		+ (double)(tv.tv_usec - t0->tv_usec) / 1e6;
	delays[0] = 0;
	delays[2] = t_conn;
	delays[3] = t_xfer;
	delays[1] = delay - t_conn - t_xfer > 0 ? delay - t_conn - t_xfer : 0;
	delivery_log(v->syslog_name, service, id, addr, key, relay, delay,
		     delays, dsn, verify_status_name(st), text);
	pthread_mutex_lock(&v->mu);
	for (size_t i = 0; i < v->inflight.n; i++)
		if (strcmp(v->inflight.v[i], key) == 0) {
			free(v->inflight.v[i]);
			v->inflight.v[i] = v->inflight.v[--v->inflight.n];
			v->inflight.v[v->inflight.n] = NULL;
			break;
		}
	v->gen++;
	pthread_cond_broadcast(&v->cv);
	pthread_mutex_unlock(&v->mu);
}

/* ---- the loop side ---- */

static void pump(struct verify *v);

static void
probe_done(void *arg, enum deliver_status st, const char *dsn,
	   const char *text, const char *relay, double t_conn, double t_xfer)
{
	struct vjob *j = arg, **pp;
	struct verify *v = j->v;

	for (pp = &v->runs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	record_result(v, j->key, j->addr, j->t.kind == TRANSPORT_LMTP ? "lmtp"
		      : "smtp", j->id, st == DELIVER_SENT ? VERIFY_OK
		      : st == DELIVER_BOUNCE ? VERIFY_BOUNCE : VERIFY_DEFER,
		      dsn, text, relay, &j->t0, t_conn, t_xfer);
	free(j->key);
	free(j->addr);
	free(j);
	v->running--;
	pump(v);
}

static void
pump(struct verify *v)
{
	for (;;) {
		struct vjob *j;

		pthread_mutex_lock(&v->mu);
		j = v->stopping || v->running >= VERIFY_PROBES_MAX ? NULL
		    : v->q_head;
		if (j != NULL) {
			v->q_head = j->next;
			if (v->q_head == NULL)
				v->q_tail = NULL;
			v->q_n--;
		}
		pthread_mutex_unlock(&v->mu);
		if (j == NULL)
			return;
		v->running++;
		j->next = v->runs;
		v->runs = j;
		(void)smtp_probe_start(v->prober, &j->t, j->addr, j->id,
				       probe_done, j);
	}
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	char b[64];

	(void)what;
	while (read(fd, b, sizeof(b)) > 0)
		;
	pump(arg);
}

/* ---- queries (workers) ---- */

/* Starts a probe for key unless one runs (or too many wait): remote
 * probes go to the loop, other routes are decided here. */
static void
start_probe(struct verify *v, const char *key, const char *addr,
	    enum resolve_class cls, const struct verify_record *refresh)
{
	struct smtp_probe_route route;
	struct vjob *j;
	bool busy;

	pthread_mutex_lock(&v->mu);
	busy = v->stopping || strlist_contains(&v->inflight, key)
	       || v->inflight.n >= VERIFY_INFLIGHT_MAX;
	if (!busy)
		strlist_add(&v->inflight, key);
	pthread_mutex_unlock(&v->mu);
	if (busy)
		return;
	if (refresh != NULL) {	/* no second refresh for a while */
		struct verify_record r = *refresh;

		r.probed = (long long)time(NULL);
		record_put(v, key, &r);
	}
	j = xcalloc(1, sizeof(*j));
	j->v = v;
	j->key = xstrdup(key);
	j->addr = xstrdup(addr);
	queue_id_new(j->id);
	gettimeofday(&j->t0, NULL);
	smtp_probe_route(v->prober, addr, cls, &route);
	if (route.way != SMTP_PROBE_REMOTE) {
		record_result(v, key, addr, route.way == SMTP_PROBE_BOUNCE
			      ? "error" : route.t.name[0] ? route.t.name : "smtp",
			      j->id, route.way == SMTP_PROBE_OK ? VERIFY_OK
			      : route.way == SMTP_PROBE_BOUNCE ? VERIFY_BOUNCE
			      : VERIFY_DEFER, route.way == SMTP_PROBE_OK
			      ? "2.0.0" : route.way == SMTP_PROBE_BOUNCE
			      ? "5.0.0" : "4.3.0", route.text, "none", &j->t0,
			      0, 0);
		free(j->key);
		free(j->addr);
		free(j);
		return;
	}
	j->t = route.t;
	pthread_mutex_lock(&v->mu);
	if (v->q_tail)
		v->q_tail->next = j;
	else
		v->q_head = j;
	v->q_tail = j;
	v->q_n++;
	pthread_mutex_unlock(&v->mu);
	{
		char c = 0;

		while (write(v->pipefd[1], &c, 1) < 0 && errno == EINTR)
			;
	}
}

/* Addresses delivered here: the resolver answers (1), else 0 with the
 * address to probe and its class. */
static int
resolve_local(struct resolve_ctx *rc, const char *addr,
	      enum verify_status *st, char *text, size_t textsz,
	      char **probe_r, enum resolve_class *cls_r)
{
	struct addr a;
	struct resolve_result res;
	const char *why = NULL;
	enum resolve_status rs;
	int decided = 1;

	*probe_r = NULL;
	*cls_r = RESOLVE_CLASS_DEFAULT;
	if (rc == NULL || addr_parse_mailbox(addr, &a, &why) < 0)
		return 0;
	memset(&res, 0, sizeof(res));
	rs = resolve_rcpt(rc, &a, &res);
	addr_free(&a);
	switch (rs) {
	case RESOLVE_OK:
		for (size_t i = 0; i < res.n; i++)
			if (!res.v[i].unknown
			    && (res.v[i].cls == RESOLVE_CLASS_RELAY
				|| res.v[i].cls == RESOLVE_CLASS_DEFAULT)) {
				*probe_r = xstrdup(res.v[i].addr);
				*cls_r = res.v[i].cls;
				decided = 0;
				break;
			}
		if (decided) {
			*st = VERIFY_OK;
			snprintf(text, textsz, "delivers to maildir");
		}
		break;
	case RESOLVE_UNKNOWN:
		*st = VERIFY_BOUNCE;
		snprintf(text, textsz, "%s", res.reason ? res.reason
			 : "unknown user");
		break;
	default:
		*st = VERIFY_DEFER;
		snprintf(text, textsz, "%s", res.reason ? res.reason
			 : "address resolver failure");
		break;
	}
	resolve_result_free(&res);
	return decided;
}

enum verify_status
verify_query(struct verify *v, struct resolve_ctx *rc, const char *addr,
	     long long wait, char *text, size_t textsz)
{
	enum verify_status st = VERIFY_TODO;
	enum resolve_class cls;
	struct verify_decision d;
	struct verify_record r;
	struct timespec deadline;
	char *key, *probe = NULL;
	time_t now = time(NULL);
	int have;

	snprintf(text, textsz, "Address verification in progress");
	if (resolve_local(rc, addr, &st, text, textsz, &probe, &cls) == 1)
		return st;
	key = xstrdup(addr);
	for (char *p = key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	have = record_get(v, key, now, &r);
	if (have < 0) {
		snprintf(text, textsz, "address verification problem");
		st = VERIFY_DEFER;
		goto out;
	}
	{
		struct errbuf e2;
		struct kvstore *k;

		errbuf_clear(&e2);
		if ((k = store(v, &e2)) != NULL)
			maybe_cleanup(v, k, now);
	}
	verify_decide(&v->times, have == 1 ? &r : NULL, now, &d);
	if (d.probe)
		start_probe(v, key, probe ? probe : addr, cls, have == 1 ? &r
			    : NULL);
	if (d.answer != VERIFY_TODO) {
		st = d.answer;
		snprintf(text, textsz, "%s", r.text);
		goto out;
	}
	/* wait for the result: Postfix polls (count - 1) times, delay apart */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += (time_t)wait;
	pthread_mutex_lock(&v->mu);
	if (v->waiters >= v->max_waiters)
		wait = 0;	/* one look, then "in progress" */
	v->waiters++;
	for (;;) {
		unsigned long gen = v->gen;
		int rc2;

		pthread_mutex_unlock(&v->mu);
		if (record_get(v, key, time(NULL), &r) == 1) {
			st = r.st;
			snprintf(text, textsz, "%s", r.text);
			pthread_mutex_lock(&v->mu);
			break;
		}
		pthread_mutex_lock(&v->mu);
		if (v->stopping || wait <= 0)
			break;
		if (gen != v->gen)
			continue;
		rc2 = pthread_cond_timedwait(&v->cv, &v->mu, &deadline);
		if (rc2 == ETIMEDOUT) {
			if (gen != v->gen)
				continue;	/* one last look */
			break;
		}
	}
	v->waiters--;
	pthread_mutex_unlock(&v->mu);
out:
	free(key);
	free(probe);
	return st;
}

/* ---- the smtpd restriction ---- */

void
verify_smtpd_check(const struct verify_smtpd *o, struct resolve_ctx *rc,
		   const char *addr, bool sender, struct verify_verdict *out)
{
	struct verify *v = current();
	char text[VERIFY_TEXT_MAX];
	enum verify_status st;
	int code;

	memset(out, 0, sizeof(*out));
	snprintf(out->dsn, sizeof(out->dsn), "%s", sender ? "4.1.7" : "4.1.1");
	if (v == NULL) {
		out->code = 450;
		out->action = (sender ? o->sender_defer_now : o->rcpt_defer_now)
			      ? VERIFY_REJECT : VERIFY_DEFER_IF_PERMIT;
		snprintf(out->text, sizeof(out->text),
			 "address verification problem");
		return;
	}
	st = verify_query(v, rc, addr, (o->poll_count - 1) * o->poll_delay,
			  text, sizeof(text));
	if (st != VERIFY_OK) {	/* Postfix's *_reject_reason replace the text */
		const char *alt = sender ? o->sender_reason : o->rcpt_reason;

		if (*alt)
			snprintf(text, sizeof(text), "%s", alt);
	}
	switch (st) {
	case VERIFY_OK:
		out->action = VERIFY_PASS;
		return;
	case VERIFY_BOUNCE:
		code = sender ? o->sender_rcode : o->rcpt_rcode;
		snprintf(out->text, sizeof(out->text), "undeliverable address: %s",
			 text);
		break;
	default:
		code = sender ? o->sender_dcode : o->rcpt_dcode;
		snprintf(out->text, sizeof(out->text), "unverified address: %s",
			 text);
		break;
	}
	out->code = code;
	if (code / 100 == 4 && st != VERIFY_BOUNCE)
		out->action = (sender ? o->sender_defer_now : o->rcpt_defer_now)
			      ? VERIFY_REJECT : VERIFY_DEFER_IF_PERMIT;
	else
		out->action = VERIFY_REJECT;
}
