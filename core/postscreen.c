/*
 * postscreen.c - screening before the SMTP engine (see postscreen.h):
 * the access list (permit_mynetworks, cidr: and other cheap tables
 * answering permit / reject / dunno), the cache of passed clients (LMDB,
 * postscreen_cache_map), the pre-greet test (a "220-" teaser, then
 * postscreen_greet_wait of silence expected; the socket is only peeked so
 * a passing client's bytes reach smtpd untouched), and the DNSBL score
 * (every postscreen_dnsbl_sites domain asked in parallel through c-ares
 * during the greet wait). A client that needs the after-220 tests or is
 * to be rejected ("enforce") goes to the dummy engine (postscreen_smtp.c);
 * the others are handed to smtpd_session_start.
 * Log lines are Postfix's (CONNECT, PREGREET, DNSBL rank, PASS NEW,
 * PASS OLD, HANGUP, DISCONNECT, ALLOWLISTED, DENYLISTED, ALLOWLIST VETO,
 * "dnsblog reply timeout") under the program name "postscreen".
 * postscreen_dnsbl_timeout: a list that has not answered by then does
 * not count. postscreen_post_queue_limit: SMTP sessions behind the
 * listener, then 421 4.3.2 at hand-off. postscreen_allowlist_interfaces:
 * a client that connects to another local address (the socket's, or the
 * one a PROXY header names) is screened but stays in the dummy engine
 * and nothing is cached (it cannot become allowlisted there); a client
 * already allowlisted (PASS OLD, access list) is handed off anywhere.
 * The cache is flushed to disk every PS_SYNC_EVERY seconds on a worker
 * (writes themselves do not fsync), and expired entries are removed in
 * bounded batches every postscreen_cache_cleanup_interval.
 * Behind a load balancer (postscreen_upstream_proxy_protocol = haproxy)
 * the listener has read the PROXY header before postscreen_accept, so
 * the address given is the real client's: it is the one checked, looked
 * up, cached and logged, and the header is not pre-greet talk.
 * DNSBL cache times: Postfix uses the reply TTLs; c-ares' answers here
 * carry none, so a clean client (no list answered) is cached for
 * postscreen_dnsbl_max_ttl and a listed one under the threshold for
 * postscreen_dnsbl_min_ttl.
 * Must not: block, read client bytes before a hand-off, or touch a
 * connection after it was handed off (only late DNS answers may still
 * refer to it: it is freed when the last one arrives).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#include "backends/table.h"
#include "core/dns.h"
#include "core/kvstore.h"
#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/netlist.h"
#include "core/postscreen_int.h"
#include "core/smtpd_listener.h"
#include "core/worker.h"

#define PS_PEEK_MAX	512
#define PS_CLEANUP_SCAN	5000
#define PS_SYNC_EVERY	30	/* seconds between cache flushes */

/* ---- configuration ---- */

static int
cf_str(const struct config *cfg, const char *name, const char **v_r,
       struct errbuf *err)
{
	struct errbuf e;
	const char *v;

	errbuf_clear(&e);
	v = config_get_err(cfg, name, &e);
	if (v == NULL) {
		errbuf_set(err, "%s", errbuf_str(&e));
		return -1;
	}
	*v_r = v;
	return 0;
}

/* The one error of the typed readers below; returns -1. */
static int
cf_bad(struct errbuf *err, const char *name, const char *v,
       const char *expected)
{
	errbuf_set(err, "bad value for %s: \"%s\" (expected %s)", name, v,
		   expected);
	return -1;
}

static int
cf_time(const struct config *cfg, const char *name, char unit, long long *r,
	struct errbuf *err)
{
	const char *v;

	if (cf_str(cfg, name, &v, err) < 0)
		return -1;
	if (params_parse_time(v, unit, r) < 0 || *r < 0)
		return cf_bad(err, name, v, "a time, e.g. 6s, 1h, 1d");
	return 0;
}

static int
cf_int(const struct config *cfg, const char *name, long long *r,
       struct errbuf *err)
{
	const char *v;

	if (cf_str(cfg, name, &v, err) < 0)
		return -1;
	if (params_parse_int(v, r) < 0)
		return cf_bad(err, name, v, "an integer");
	return 0;
}

static int
cf_bool(const struct config *cfg, const char *name, bool *r,
	struct errbuf *err)
{
	const char *v;

	if (cf_str(cfg, name, &v, err) < 0)
		return -1;
	if (params_parse_bool(v, r) < 0)
		return cf_bad(err, name, v, "yes or no");
	return 0;
}

static int
cf_action(const struct config *cfg, const char *name, enum ps_action *r,
	  struct errbuf *err)
{
	const char *v;

	if (cf_str(cfg, name, &v, err) < 0)
		return -1;
	if (strcasecmp(v, "ignore") == 0)
		*r = PS_IGNORE;
	else if (strcasecmp(v, "enforce") == 0)
		*r = PS_ENFORCE;
	else if (strcasecmp(v, "drop") == 0)
		*r = PS_DROP;
	else
		return cf_bad(err, name, v, "ignore, enforce or drop");
	return 0;
}

static int
setup_access(struct postscreen *ps, const char *value, struct errbuf *err)
{
	strlist_init(&ps->access);
	if (strlist_split(&ps->access, value) < 0) {
		errbuf_set(err, "postscreen_access_list: unbalanced braces");
		return -1;
	}
	ps->access_tables = xcalloc(ps->access.n ? ps->access.n : 1,
				    sizeof(*ps->access_tables));
	for (size_t i = 0; i < ps->access.n; i++) {
		const char *it = ps->access.v[i];
		struct errbuf terr;

		if (strcasecmp(it, "permit_mynetworks") == 0)
			continue;
		if (strchr(it, ':') == NULL) {
			errbuf_set(err, "postscreen_access_list: unknown item "
				   "\"%s\" (expected permit_mynetworks or a "
				   "type:table such as cidr:/path)", it);
			return -1;
		}
		errbuf_clear(&terr);
		ps->access_tables[i] = table_open(it, 0, &terr);
		if (ps->access_tables[i] == NULL) {
			errbuf_set(err, "postscreen_access_list: %s",
				   errbuf_str(&terr));
			return -1;
		}
		if (table_flags(ps->access_tables[i]) & TABLE_F_BLOCKING) {
			errbuf_set(err, "postscreen_access_list: %s: use a local "
				   "table (cidr:, texthash:, inline:); network "
				   "tables would block the screening", it);
			return -1;
		}
	}
	return 0;
}

static int
setup_cache(struct postscreen *ps, const struct config *cfg,
	    const struct settings *st, bool prepare, struct errbuf *err)
{
	const char *v, *p;
	struct errbuf e;
	long long ms;

	if (cf_str(cfg, "postscreen_cache_map", &v, err) < 0)
		return -1;
	if (strncmp(v, "proxy:", 6) == 0)
		v += 6;
	if (*v == '\0')
		return 0;		/* no cache: every client is tested */
	p = strchr(v, ':');
	if (p == NULL || *(p + 1) != '/' ||
	    !(strncmp(v, "btree:", 6) == 0 || strncmp(v, "hash:", 5) == 0 ||
	      strncmp(v, "lmdb:", 5) == 0)) {
		errbuf_set(err, "postscreen_cache_map: \"%s\": expected "
			   "btree:/path, hash:/path or lmdb:/path (an absolute "
			   "path; facteur keeps it in LMDB as /path.lmdb)", v);
		return -1;
	}
	ps->cache_path = xstrdup(p + 1);
	if (cf_int(cfg, "lmdb_map_size", &ms, err) < 0)
		return -1;
	ps->map_size = ms;
	errbuf_clear(&e);
	if (prepare &&
	    kvstore_prepare_dir(ps->cache_path, st->mail_owner, &e) < 0) {
		errbuf_set(err, "postscreen_cache_map: %s", errbuf_str(&e));
		return -1;
	}
	return 0;
}

/* The configuration part of postscreen_new (also for facteur check). */
static struct postscreen *
ps_parse(const struct config *cfg, const struct settings *st,
	 const char *service, bool prepare, struct errbuf *err)
{
	struct postscreen *ps = xcalloc(1, sizeof(*ps));
	const char *v;
	struct errbuf e;

	ps->syslog_name = st->syslog_name;
	strlist_init(&ps->forbidden);
	errbuf_clear(&e);
	if (cf_str(cfg, "postscreen_access_list", &v, err) < 0 ||
	    setup_access(ps, v, err) < 0)
		goto fail;
	/* denylist_action defaults to $postscreen_blacklist_action */
	if (cf_action(cfg, "postscreen_denylist_action", &ps->deny_action, err) < 0 ||
	    cf_action(cfg, "postscreen_greet_action", &ps->greet_action, err) < 0 ||
	    cf_action(cfg, "postscreen_dnsbl_action", &ps->dnsbl_action, err) < 0 ||
	    cf_action(cfg, "postscreen_pipelining_action", &ps->pipe_action, err) < 0 ||
	    cf_action(cfg, "postscreen_non_smtp_command_action",
		      &ps->nsmtp_action, err) < 0 ||
	    cf_action(cfg, "postscreen_bare_newline_action",
		      &ps->barenl_action, err) < 0 ||
	    cf_bool(cfg, "postscreen_pipelining_enable", &ps->pipe_enable, err) < 0 ||
	    cf_bool(cfg, "postscreen_non_smtp_command_enable",
		    &ps->nsmtp_enable, err) < 0 ||
	    cf_bool(cfg, "postscreen_bare_newline_enable",
		    &ps->barenl_enable, err) < 0 ||
	    cf_bool(cfg, "postscreen_helo_required", &ps->helo_required,
		    err) < 0 ||
	    cf_time(cfg, "postscreen_greet_wait", 's', &ps->greet_wait, err) < 0 ||
	    cf_time(cfg, "postscreen_greet_ttl", 's', &ps->greet_ttl, err) < 0 ||
	    cf_time(cfg, "postscreen_dnsbl_min_ttl", 's', &ps->dnsbl_min_ttl, err) < 0 ||
	    cf_time(cfg, "postscreen_dnsbl_max_ttl", 's', &ps->dnsbl_max_ttl, err) < 0 ||
	    cf_time(cfg, "postscreen_dnsbl_timeout", 's', &ps->dnsbl_timeout, err) < 0 ||
	    cf_time(cfg, "postscreen_pipelining_ttl", 's', &ps->pipe_ttl, err) < 0 ||
	    cf_time(cfg, "postscreen_non_smtp_command_ttl", 's', &ps->nsmtp_ttl, err) < 0 ||
	    cf_time(cfg, "postscreen_bare_newline_ttl", 's', &ps->barenl_ttl, err) < 0 ||
	    cf_time(cfg, "postscreen_cache_retention_time", 's', &ps->retention, err) < 0 ||
	    cf_time(cfg, "postscreen_cache_cleanup_interval", 's',
		    &ps->cleanup_interval, err) < 0 ||
	    cf_time(cfg, "postscreen_command_time_limit", 's',
		    &ps->command_time_limit, err) < 0 ||
	    cf_int(cfg, "postscreen_command_count_limit",
		   &ps->command_count_limit, err) < 0 ||
	    cf_int(cfg, "postscreen_pre_queue_limit", &ps->pre_queue_limit,
		   err) < 0 ||
	    cf_int(cfg, "postscreen_post_queue_limit", &ps->post_queue_limit,
		   err) < 0 ||
	    cf_int(cfg, "postscreen_client_connection_count_limit",
		   &ps->client_count_limit, err) < 0 ||
	    cf_int(cfg, "postscreen_dnsbl_threshold", &ps->dnsbl_threshold, err) < 0 ||
	    cf_int(cfg, "postscreen_dnsbl_allowlist_threshold",
		   &ps->allow_threshold, err) < 0)
		goto fail;
	if (ps->dnsbl_threshold < 1) {
		errbuf_set(err, "bad value for postscreen_dnsbl_threshold: %lld "
			   "(expected 1 or more)", ps->dnsbl_threshold);
		goto fail;
	}
	if (cf_str(cfg, "postscreen_dnsbl_sites", &v, err) < 0 ||
	    ps_dnsbl_parse(&ps->dnsbl, v, err) < 0)
		goto fail;
	if (cf_str(cfg, "postscreen_dnsbl_reply_map", &v, err) < 0)
		goto fail;
	if (*v != '\0') {
		errbuf_clear(&e);
		ps->dnsbl_reply_map = table_open(v, TABLE_F_FOLD, &e);
		if (ps->dnsbl_reply_map == NULL) {
			errbuf_set(err, "postscreen_dnsbl_reply_map: %s",
				   errbuf_str(&e));
			goto fail;
		}
		if (table_flags(ps->dnsbl_reply_map) & TABLE_F_BLOCKING) {
			errbuf_set(err, "postscreen_dnsbl_reply_map: %s: use a "
				   "local table (texthash:, inline:, ...)", v);
			goto fail;
		}
	}
	if (cf_str(cfg, "postscreen_greet_banner", &v, err) < 0)
		goto fail;
	ps->greet_banner = xstrdup(v);
	ps->banner = xstrdup(st->smtpd_banner);
	ps->hostname = xstrdup(st->myhostname);
	if (cf_str(cfg, "postscreen_forbidden_commands", &v, err) < 0)
		goto fail;
	{
		struct strlist f;

		strlist_init(&f);
		(void)strlist_split(&f, v);
		for (size_t i = 0; i < f.n; i++) {
			if (strchr(f.v[i], ':') != NULL)
				continue;	/* regexp:{...} forms: not here */
			for (char *p = f.v[i]; *p; p++)
				*p = (char)toupper((unsigned char)*p);
			strlist_add(&ps->forbidden, f.v[i]);
		}
		strlist_free(&f);
	}
	ps->dns_servers = xstrdup(st->facteur_dns_servers);
	if (cf_str(cfg, "postscreen_allowlist_interfaces", &v, err) < 0)
		goto fail;
	while (*v == ' ' || *v == '\t' || *v == ',')
		v++;
	if (strcmp(v, "static:all") != 0) {
		/* addresses, networks, !exclusions, /file, type:table */
		errbuf_clear(&e);
		ps->allow_ifaces = netlist_new(v, &e);
		if (ps->allow_ifaces == NULL) {
			errbuf_set(err, "postscreen_allowlist_interfaces: %s",
				   errbuf_str(&e));
			goto fail;
		}
	}
	if (st->smtpd_tls_wrappermode) {
		errbuf_set(err, "%s: postscreen cannot screen TLS-wrapped "
			   "connections (smtpd_tls_wrappermode = yes): use an "
			   "smtpd listener for smtps", service);
		goto fail;
	}
	/*
	 * postscreen_upstream_proxy_protocol: the listener reads the PROXY
	 * header before postscreen_accept (smtpd_listener.c), so its bytes
	 * are never taken for pre-greet talk and sa is the real client. Its
	 * value, and smtpd_upstream_proxy_protocol refused on a postscreen
	 * line, are checked by smtpd_listener_check_proxy.
	 */
	if (setup_cache(ps, cfg, st, prepare, err) < 0)
		goto fail;
	return ps;
fail:
	postscreen_free(&ps);
	return NULL;
}

struct postscreen *
postscreen_new(struct smtpd_listener *l, const struct config *cfg,
	       struct errbuf *err)
{
	struct postscreen *ps = ps_parse(cfg, &l->s, l->service, true, err);

	if (ps != NULL)
		ps->l = l;
	return ps;
}

int
postscreen_check_config(const struct config *cfg, const struct settings *s,
			const char *service, struct errbuf *err)
{
	struct postscreen *ps = ps_parse(cfg, s, service, false, err);

	if (ps == NULL)
		return -1;
	postscreen_free(&ps);
	return 0;
}

unsigned
postscreen_active(const struct postscreen *ps)
{
	return ps->nconns;
}

/* ---- connections ---- */

void
ps_log(struct ps_conn *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_write(c->ps->syslog_name, PS_SVC, LOG_LVL_INFO, "%s", line);
}

const char *
ps_elapsed(const struct ps_conn *c, char *buf, size_t size)
{
	struct timeval now, d;
	double s;

	gettimeofday(&now, NULL);
	timersub(&now, &c->start, &d);
	s = (double)d.tv_sec + (double)d.tv_usec / 1e6;
	if (s >= 100)
		snprintf(buf, size, "%.0f", s);
	else
		snprintf(buf, size, "%.2g", s);
	return buf;
}

static void
conn_unlink(struct ps_conn *c)
{
	struct postscreen *ps = c->ps;

	if (!c->listed)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		ps->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->listed = false;
}

static void
conn_free(struct ps_conn *c)
{
	conn_unlink(c);
	if (c->rd)
		event_free(c->rd);
	if (c->timer)
		event_free(c->timer);
	if (c->dns_timer)
		event_free(c->dns_timer);
	ps_smtp_free(c);
	if (c->fd >= 0)
		close(c->fd);
	free(c->enforce_reply);
	free(c->queries);
	free(c);
}

void
ps_conn_done(struct ps_conn *c)
{
	if (!c->done)
		c->ps->nconns--;
	c->done = true;
	if (c->rd) {
		event_free(c->rd);
		c->rd = NULL;
	}
	if (c->timer) {
		event_free(c->timer);
		c->timer = NULL;
	}
	if (c->dns_timer) {
		event_free(c->dns_timer);
		c->dns_timer = NULL;
	}
	ps_smtp_free(c);
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->dns_pending == 0)
		conn_free(c);
}

void
ps_set_enforce(struct ps_conn *c, const char *reply)
{
	if (c->enforce_reply == NULL)
		c->enforce_reply = xstrdup(reply);
}

/* Writes a final reply and closes (drop actions). */
static void
drop(struct ps_conn *c, const char *reply)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "%s\r\n", reply);

	if (c->fd >= 0 && write(c->fd, line, (size_t)n) < 0) {
		/* the client is gone anyway */
	}
	ps_log(c, "DISCONNECT [%s]:%s", c->addr, c->port);
	ps_conn_done(c);
}

/*
 * Hands the socket to the SMTP engine; c stays only for late DNS answers.
 * postscreen_post_queue_limit: with that many SMTP sessions already on
 * the listener, the client gets Postfix's 421 instead (its screening
 * results are kept).
 */
static void
handoff(struct ps_conn *c)
{
	int fd = c->fd;

	if ((long long)smtpd_listener_sessions(c->ps->l) >=
	    c->ps->post_queue_limit) {
		ps_log(c, "NOQUEUE: reject: CONNECT from [%s]:%s: all server "
		       "ports busy", c->addr, c->port);
		drop(c, "421 4.3.2 All server ports are busy");
		return;
	}
	c->fd = -1;
	smtpd_session_start(c->ps->l, fd, (struct sockaddr *)&c->sa, c->salen);
	ps_conn_done(c);
}

/* ---- cache ---- */

static struct kvstore *
cache(struct postscreen *ps)
{
	struct errbuf err;

	if (ps->cache != NULL || ps->cache_failed || ps->cache_path == NULL)
		return ps->cache;
	errbuf_clear(&err);
	ps->cache = kvstore_open(ps->cache_path, (size_t)ps->map_size, &err);
	if (ps->cache == NULL) {
		ps->cache_failed = true;
		log_write(ps->syslog_name, PS_SVC, LOG_LVL_WARNING,
			  "postscreen_cache_map: %s: screening without a cache",
			  errbuf_str(&err));
	} else if (kvstore_recovered(ps->cache) != NULL) {
		log_write(ps->syslog_name, PS_SVC, LOG_LVL_WARNING,
			  "postscreen_cache_map: %s",
			  kvstore_recovered(ps->cache));
	}
	return ps->cache;
}

static void
cache_load(struct ps_conn *c)
{
	struct kvstore *k = cache(c->ps);
	char v[256];
	size_t vl = sizeof(v) - 1;
	struct errbuf err;
	long long t[PS_T_N];
	int r;

	memset(c->pass, 0, sizeof(c->pass));
	if (k == NULL)
		return;
	errbuf_clear(&err);
	r = kvstore_get(k, c->addr, time(NULL), v, &vl, NULL, &err);
	if (r < 0)
		log_write(c->ps->syslog_name, PS_SVC, LOG_LVL_WARNING, "%s",
			  errbuf_str(&err));
	/* not found (0) leaves v untouched: nothing to parse */
	if (r != 1 || vl >= sizeof(v))
		return;
	v[vl] = '\0';
	if (sscanf(v, "%lld;%lld;%lld;%lld;%lld", &t[0], &t[1], &t[2], &t[3],
		   &t[4]) == PS_T_N)
		for (int i = 0; i < PS_T_N; i++)
			c->pass[i] = (time_t)t[i];
}

bool
ps_all_passed(const struct ps_conn *c, time_t now)
{
	const struct postscreen *ps = c->ps;

	if (c->pass[PS_T_PREGREET] <= now)
		return false;
	if (ps->dnsbl.nsites > 0 && c->pass[PS_T_DNSBL] <= now)
		return false;
	if (ps->pipe_enable && c->pass[PS_T_PIPE] <= now)
		return false;
	if (ps->nsmtp_enable && c->pass[PS_T_NSMTP] <= now)
		return false;
	if (ps->barenl_enable && c->pass[PS_T_BARENL] <= now)
		return false;
	return true;
}

void
ps_cache_update(struct ps_conn *c)
{
	struct kvstore *k = cache(c->ps);
	time_t now = time(NULL), last = 0;
	char v[256];
	struct errbuf err;

	if (k == NULL || c->veto)	/* no allowlist status from there */
		return;
	for (int i = 0; i < PS_T_N; i++)
		if (c->pass[i] > last)
			last = c->pass[i];
	if (last <= now)
		return;
	snprintf(v, sizeof(v), "%lld;%lld;%lld;%lld;%lld",
		 (long long)c->pass[0], (long long)c->pass[1],
		 (long long)c->pass[2], (long long)c->pass[3],
		 (long long)c->pass[4]);
	errbuf_clear(&err);
	c->ps->dirty = true;
	if (kvstore_put(k, c->addr, v, strlen(v),
			last + (time_t)c->ps->retention, &err) < 0)
		log_write(c->ps->syslog_name, PS_SVC, LOG_LVL_WARNING, "%s",
			  errbuf_str(&err));
}

static void
cleanup_tick(evutil_socket_t fd, short what, void *arg)
{
	struct postscreen *ps = arg;
	struct errbuf err;
	long n;

	if (ps->cache == NULL)
		return;
	errbuf_clear(&err);
	n = kvstore_cleanup(ps->cache, time(NULL), PS_CLEANUP_SCAN, &err);
	if (n < 0)
		log_write(ps->syslog_name, PS_SVC, LOG_LVL_WARNING, "%s",
			  errbuf_str(&err));
	else if (n > 0)
		log_write(ps->syslog_name, PS_SVC, LOG_LVL_INFO,
			  "cache %s: removed %ld expired entries",
			  kvstore_name(ps->cache), n);
}

/* The flush (fsync) of the cache runs on a worker with its own reference
 * to the store, so a listener freed meanwhile does not matter. */
struct ps_sync {
	struct kvstore *k;
	struct errbuf   err;
	int             rc;
};

static void
sync_work(void *arg)
{
	struct ps_sync *j = arg;

	errbuf_clear(&j->err);
	j->rc = kvstore_sync(j->k, &j->err);
}

static void
sync_done(void *arg)
{
	struct ps_sync *j = arg;

	if (j->rc < 0)
		log_write(NULL, PS_SVC, LOG_LVL_WARNING, "%s",
			  errbuf_str(&j->err));
	kvstore_close(&j->k);
	free(j);
}

static void
sync_tick(evutil_socket_t fd, short what, void *arg)
{
	struct postscreen *ps = arg;
	struct ps_sync *j;
	struct errbuf err;

	if (!ps->dirty || ps->cache == NULL || ps->l->srv->pool == NULL)
		return;
	ps->dirty = false;
	j = xcalloc(1, sizeof(*j));
	errbuf_clear(&err);
	j->k = kvstore_open(ps->cache_path, (size_t)ps->map_size, &err);
	if (j->k == NULL) {
		free(j);
		return;
	}
	worker_submit(ps->l->srv->pool, sync_work, sync_done, j);
}

static void
start_cleanup(struct postscreen *ps)
{
	struct timeval tv;

	if (ps->sync_timer == NULL && ps->cache != NULL) {
		struct timeval st = { PS_SYNC_EVERY, 0 };

		ps->sync_timer = event_new(ps->l->srv->base, -1, EV_PERSIST,
					   sync_tick, ps);
		if (ps->sync_timer != NULL)
			event_add(ps->sync_timer, &st);
	}

	if (ps->cleanup_timer != NULL || ps->cache == NULL ||
	    ps->cleanup_interval <= 0)
		return;
	tv.tv_sec = (time_t)ps->cleanup_interval;
	tv.tv_usec = 0;
	ps->cleanup_timer = event_new(ps->l->srv->base, -1, EV_PERSIST,
				      cleanup_tick, ps);
	if (ps->cleanup_timer != NULL)
		event_add(ps->cleanup_timer, &tv);
}

/* ---- access list ---- */

enum access { ACC_DUNNO, ACC_PERMIT, ACC_REJECT };

static enum access
access_check(struct ps_conn *c)
{
	struct postscreen *ps = c->ps;
	struct buf v;
	struct errbuf err;
	enum access r = ACC_DUNNO;

	buf_init(&v, 0);
	for (size_t i = 0; i < ps->access.n && r == ACC_DUNNO; i++) {
		enum table_status st;

		if (ps->access_tables[i] == NULL) {
			errbuf_clear(&err);
			if (netlist_match(ps->l->mynetworks,
					  (struct sockaddr *)&c->sa, &err) > 0)
				r = ACC_PERMIT;
			continue;
		}
		errbuf_clear(&err);
		st = table_lookup(ps->access_tables[i], c->addr, &v, &err);
		if (st == TABLE_NOTFOUND)
			continue;
		if (st != TABLE_FOUND) {
			log_write(ps->syslog_name, PS_SVC, LOG_LVL_WARNING,
				  "postscreen_access_list: %s lookup of %s: %s",
				  table_name(ps->access_tables[i]), c->addr,
				  errbuf_str(&err));
			break;		/* as DUNNO: the tests decide */
		}
		if (strcasecmp(buf_cstr(&v), "permit") == 0)
			r = ACC_PERMIT;
		else if (strcasecmp(buf_cstr(&v), "reject") == 0)
			r = ACC_REJECT;
		else if (strcasecmp(buf_cstr(&v), "dunno") != 0)
			log_write(ps->syslog_name, PS_SVC, LOG_LVL_WARNING,
				  "%s: bad value \"%s\" for %s (expected "
				  "permit, reject or dunno): ignored",
				  table_name(ps->access_tables[i]),
				  buf_cstr(&v), c->addr);
	}
	buf_free(&v);
	return r;
}

/* ---- the early tests: pre-greet and DNSBL ---- */

static void early_done(struct ps_conn *c);

/* Every DNSBL answer that still counts is in, and the score allowlists
 * the client: no need to wait for the end of the greet wait. */
static void
allowlist_early(struct ps_conn *c)
{
	if (c->dns_live == 0 && c->timer != NULL &&
	    c->ps->allow_threshold < 0 &&
	    c->dnsbl_score <= c->ps->allow_threshold && !c->failed[PS_T_PREGREET])
		early_done(c);
}

static void
dns_answer(void *arg, enum dns_status st, const struct dns_result *res,
	   const char *why)
{
	struct ps_query *q = arg;
	struct ps_conn *c = q->c;

	c->dns_pending--;
	q->pending = false;
	if (!q->expired)
		c->dns_live--;
	if (!c->done && !q->expired && st == DNS_OK && c->timer != NULL) {
		const char *addrs[32];
		size_t n = 0;
		int sc;

		for (size_t i = 0; i < res->n && n < 32; i++)
			if (res->rr[i].type == DNS_A)
				addrs[n++] = res->rr[i].data;
		sc = ps_dnsbl_score(&c->ps->dnsbl, q->idx, addrs, n);
		c->dnsbl_score += sc;
		if (sc > c->dnsbl_best) {
			c->dnsbl_best = sc;
			c->dnsbl_name = c->ps->dnsbl.domains[q->idx];
		}
	}
	if (c->done) {
		if (c->dns_pending == 0)
			conn_free(c);
		return;
	}
	if (!q->expired)
		allowlist_early(c);
}

/*
 * postscreen_dnsbl_timeout: the lists that have not answered by now are
 * given up (Postfix's warning); an answer that comes later, even within
 * the greet wait, does not count. The query itself ends in c-ares.
 */
static void
on_dns_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct ps_conn *c = arg;

	for (size_t i = 0; i < c->ps->dnsbl.ndomains; i++) {
		struct ps_query *q = &c->queries[i];

		if (!q->pending || q->expired)
			continue;
		q->expired = true;
		c->dns_live--;
		log_write(c->ps->syslog_name, PS_SVC, LOG_LVL_WARNING,
			  "dnsblog reply timeout %llds for %s",
			  c->ps->dnsbl_timeout, c->ps->dnsbl.domains[i]);
	}
	allowlist_early(c);
}

static void
start_dns(struct ps_conn *c)
{
	struct postscreen *ps = c->ps;
	char name[300];

	if (ps->dns == NULL && !ps->dns_failed) {
		struct errbuf err;

		errbuf_clear(&err);
		ps->dns = dns_new(ps->l->srv->base, ps->dns_servers, &err);
		if (ps->dns == NULL) {
			ps->dns_failed = true;
			log_write(ps->syslog_name, PS_SVC, LOG_LVL_WARNING,
				  "DNSBL lookups disabled: %s", errbuf_str(&err));
		}
	}
	if (ps->dns == NULL)
		return;
	c->queries = xcalloc(ps->dnsbl.ndomains, sizeof(*c->queries));
	c->dns_started = true;
	for (size_t i = 0; i < ps->dnsbl.ndomains; i++) {
		if (dns_reverse_name(c->addr, ps->dnsbl.domains[i], name,
				     sizeof(name)) < 0)
			continue;
		c->queries[i].c = c;
		c->queries[i].idx = i;
		c->queries[i].pending = true;
		c->dns_pending++;
		c->dns_live++;
		/* never answers from inside: the timer below is set first */
		dns_query(ps->dns, name, DNS_A, dns_answer, &c->queries[i]);
	}
	if (c->dns_live > 0) {
		struct timeval tv = { (time_t)ps->dnsbl_timeout, 0 };

		c->dns_timer = evtimer_new(ps->l->srv->base, on_dns_timeout, c);
		if (c->dns_timer != NULL)
			evtimer_add(c->dns_timer, &tv);
	}
}

/* Printable copy of client bytes, CR/LF shown as \r \n (Postfix style). */
static void
printable(const char *in, size_t n, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 5 < size; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (ch == '\r') {
			out[o++] = '\\';
			out[o++] = 'r';
		} else if (ch == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (ch < 32 || ch > 126) {
			out[o++] = '?';
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
}

static void
on_early_read(evutil_socket_t fd, short what, void *arg)
{
	struct ps_conn *c = arg;
	char b[PS_PEEK_MAX], shown[120], el[32];
	ssize_t n = recv(fd, b, sizeof(b), MSG_PEEK);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		ps_log(c, "HANGUP after %s from [%s]:%s in tests before SMTP "
		       "handshake", ps_elapsed(c, el, sizeof(el)), c->addr,
		       c->port);
		ps_log(c, "DISCONNECT [%s]:%s", c->addr, c->port);
		ps_conn_done(c);
		return;
	}
	printable(b, (size_t)n < 100 ? (size_t)n : 100, shown, sizeof(shown));
	ps_log(c, "PREGREET %zd after %s from [%s]:%s: %s", n,
	       ps_elapsed(c, el, sizeof(el)), c->addr, c->port, shown);
	c->failed[PS_T_PREGREET] = true;
	/* stop watching: the bytes stay for whoever reads next */
	event_free(c->rd);
	c->rd = NULL;
	switch (c->ps->greet_action) {
	case PS_DROP:
		drop(c, "521 5.5.1 Protocol error");
		return;
	case PS_ENFORCE:
		ps_set_enforce(c, "550 5.5.1 Protocol error");
		break;
	case PS_IGNORE:
		break;
	}
}

static void
on_greet_timer(evutil_socket_t fd, short what, void *arg)
{
	early_done(arg);
}

/* Does any after-220 test still have to run for this client? */
static bool
deep_todo(struct ps_conn *c, time_t now)
{
	struct postscreen *ps = c->ps;

	c->todo[PS_T_PIPE] = ps->pipe_enable && c->pass[PS_T_PIPE] <= now;
	c->todo[PS_T_NSMTP] = ps->nsmtp_enable && c->pass[PS_T_NSMTP] <= now;
	c->todo[PS_T_BARENL] = ps->barenl_enable && c->pass[PS_T_BARENL] <= now;
	return c->todo[PS_T_PIPE] || c->todo[PS_T_NSMTP] || c->todo[PS_T_BARENL];
}

/* The DNSBL name for replies: postscreen_dnsbl_reply_map hides a name
 * that carries a secret (a DQS key). Valid until the next call. */
static const char *
shown_dnsbl(struct postscreen *ps, const char *name)
{
	static char shown[256];
	struct errbuf err;
	struct buf v;

	if (name == NULL)
		return "DNSBL";
	if (ps->dnsbl_reply_map == NULL)
		return name;
	buf_init(&v, 0);
	errbuf_clear(&err);
	if (table_lookup(ps->dnsbl_reply_map, name, &v, &err) == TABLE_FOUND)
		snprintf(shown, sizeof(shown), "%s", buf_cstr(&v));
	else
		snprintf(shown, sizeof(shown), "%s", name);
	buf_free(&v);
	return shown;
}

/* The greet wait is over (or cut short): score, decide, go on. */
static void
early_done(struct ps_conn *c)
{
	struct postscreen *ps = c->ps;
	time_t now = time(NULL);
	bool allowlisted = false;

	if (c->rd) {
		event_free(c->rd);
		c->rd = NULL;
	}
	if (c->timer) {
		event_free(c->timer);
		c->timer = NULL;
	}
	if (c->dns_timer) {	/* the score is final now */
		event_free(c->dns_timer);
		c->dns_timer = NULL;
	}
	if (c->todo[PS_T_PREGREET]) {
		if (c->failed[PS_T_PREGREET])
			c->pass[PS_T_PREGREET] = ps->greet_action == PS_IGNORE
				? now + (time_t)ps->greet_ttl : 0;
		else
			c->pass[PS_T_PREGREET] = now + (time_t)ps->greet_ttl;
	}
	if (c->todo[PS_T_DNSBL] && c->dns_started) {
		if (c->dnsbl_score >= ps->dnsbl_threshold) {
			char reply[600];

			c->failed[PS_T_DNSBL] = true;
			ps_log(c, "DNSBL rank %d for [%s]:%s", c->dnsbl_score,
			       c->addr, c->port);
			snprintf(reply, sizeof(reply), "%d 5.7.1 Service "
				 "unavailable; client [%s] blocked using %s",
				 ps->dnsbl_action == PS_DROP ? 521 : 550,
				 c->addr, shown_dnsbl(ps, c->dnsbl_name));
			if (ps->dnsbl_action == PS_DROP) {
				drop(c, reply);
				return;
			}
			if (ps->dnsbl_action == PS_ENFORCE)
				ps_set_enforce(c, reply);
			c->pass[PS_T_DNSBL] = ps->dnsbl_action == PS_IGNORE
				? now + (time_t)ps->dnsbl_min_ttl : 0;
		} else {
			c->pass[PS_T_DNSBL] = now + (time_t)(c->dnsbl_score > 0
				? ps->dnsbl_min_ttl : ps->dnsbl_max_ttl);
			if (ps->allow_threshold < 0 &&
			    c->dnsbl_score <= ps->allow_threshold &&
			    !c->failed[PS_T_PREGREET])
				allowlisted = true;
		}
	}
	if (allowlisted) {
		/* A good DNSWL score skips the other tests (Postfix's
		 * postscreen_dnsbl_allowlist_threshold). */
		time_t t = c->pass[PS_T_DNSBL];

		for (int i = 0; i < PS_T_N; i++)
			if (c->pass[i] < t)
				c->pass[i] = t;
	}
	if (c->enforce_reply == NULL && !c->veto &&
	    (allowlisted || !deep_todo(c, now))) {
		ps_cache_update(c);
		if (ps_all_passed(c, now))
			ps_log(c, "PASS NEW [%s]:%s", c->addr, c->port);
		handoff(c);
		return;
	}
	ps_cache_update(c);
	(void)deep_todo(c, now);
	ps_smtp_start(c);
}

void
postscreen_accept(struct postscreen *ps, int fd, const struct sockaddr *sa,
		  int salen, const struct sockaddr *local)
{
	struct ps_conn *c = xcalloc(1, sizeof(*c));
	struct netlist_addr na;
	struct sockaddr_storage ls;
	socklen_t lslen = sizeof(ls);
	char laddr[INET6_ADDRSTRLEN] = "unknown", lport[8] = "0";
	time_t now = time(NULL);
	enum access acc;
	struct timeval tv;

	c->ps = ps;
	c->fd = fd;
	gettimeofday(&c->start, NULL);
	if (salen > 0 && (size_t)salen <= sizeof(c->sa)) {
		memcpy(&c->sa, sa, (size_t)salen);
		c->salen = salen;
	}
	if (netlist_addr_from_sockaddr(sa, &na) == 0)
		netlist_addr_format(&na, c->addr, sizeof(c->addr));
	else
		snprintf(c->addr, sizeof(c->addr), "unknown");
	if (sa->sa_family == AF_INET)
		snprintf(c->port, sizeof(c->port), "%u",
			 ntohs(((const struct sockaddr_in *)sa)->sin_port));
	else if (sa->sa_family == AF_INET6)
		snprintf(c->port, sizeof(c->port), "%u",
			 ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
	if (local != NULL) {	/* named by the PROXY header */
		memcpy(&ls, local, local->sa_family == AF_INET6
		       ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
		lslen = sizeof(ls);
	} else if (getsockname(fd, (struct sockaddr *)&ls, &lslen) != 0) {
		ls.ss_family = AF_UNSPEC;
	}
	if (ls.ss_family != AF_UNSPEC &&
	    netlist_addr_from_sockaddr((struct sockaddr *)&ls, &na) == 0) {
		netlist_addr_format(&na, laddr, sizeof(laddr));
		snprintf(lport, sizeof(lport), "%u", ls.ss_family == AF_INET
			 ? ntohs(((struct sockaddr_in *)&ls)->sin_port)
			 : ntohs(((struct sockaddr_in6 *)&ls)->sin6_port));
	}
	c->next = ps->conns;
	if (ps->conns)
		ps->conns->prev = c;
	ps->conns = c;
	c->listed = true;
	ps->nconns++;
	ps_log(c, "CONNECT from [%s]:%s to [%s]:%s", c->addr, c->port, laddr,
	       lport);

	acc = access_check(c);
	if (acc == ACC_PERMIT) {
		ps_log(c, "ALLOWLISTED [%s]:%s", c->addr, c->port);
		handoff(c);
		return;
	}
	/* ps->nconns counts c too */
	if ((long long)ps->nconns > ps->pre_queue_limit) {
		ps_log(c, "NOQUEUE: reject: CONNECT from [%s]:%s: all screening "
		       "ports busy", c->addr, c->port);
		drop(c, "421 4.3.2 All screening ports are busy");
		return;
	}
	if (ps->client_count_limit > 0) {
		long long n = 0;

		for (struct ps_conn *o = ps->conns; o != NULL; o = o->next)
			if (!o->done && strcmp(o->addr, c->addr) == 0)
				n++;
		if (n > ps->client_count_limit) {
			ps_log(c, "NOQUEUE: reject: CONNECT from [%s]:%s: too "
			       "many connections", c->addr, c->port);
			{
				char r[128];

				snprintf(r, sizeof(r), "421 4.7.0 Error: too many "
					 "connections from %s", c->addr);
				drop(c, r);
			}
			return;
		}
	}
	if (acc == ACC_REJECT) {
		ps_log(c, "DENYLISTED [%s]:%s", c->addr, c->port);
		if (ps->deny_action == PS_DROP) {
			drop(c, "521 5.3.2 Service currently unavailable");
			return;
		}
		if (ps->deny_action == PS_ENFORCE)
			ps_set_enforce(c, "550 5.3.2 Service currently unavailable");
	}

	cache_load(c);
	start_cleanup(ps);
	if (c->enforce_reply == NULL && ps_all_passed(c, now)) {
		ps_log(c, "PASS OLD [%s]:%s", c->addr, c->port);
		handoff(c);
		return;
	}
	if (ps->allow_ifaces != NULL) {
		struct errbuf err;

		errbuf_clear(&err);
		/* no local address, or a table that fails: no allowlisting */
		if (ls.ss_family == AF_UNSPEC ||
		    netlist_match(ps->allow_ifaces, (struct sockaddr *)&ls,
				  &err) != 1) {
			c->veto = true;
			ps_log(c, "ALLOWLIST VETO [%s]:%s", c->addr, c->port);
		}
	}
	c->todo[PS_T_PREGREET] = c->pass[PS_T_PREGREET] <= now;
	c->todo[PS_T_DNSBL] = ps->dnsbl.nsites > 0 && c->pass[PS_T_DNSBL] <= now;
	if (!c->todo[PS_T_PREGREET] && !c->todo[PS_T_DNSBL]) {
		(void)deep_todo(c, now);
		ps_smtp_start(c);
		return;
	}
	/* Both early tests run together when either is due. */
	c->todo[PS_T_PREGREET] = true;
	c->todo[PS_T_DNSBL] = ps->dnsbl.nsites > 0;
	if (ps->greet_banner[0] != '\0') {
		char line[600];
		int n = snprintf(line, sizeof(line), "220-%s\r\n",
				 ps->greet_banner);

		if (n > 0 && (size_t)n < sizeof(line) &&
		    write(fd, line, (size_t)n) < 0) {
			/* a gone client shows as a hang-up below */
		}
	}
	c->rd = event_new(ps->l->srv->base, fd, EV_READ | EV_PERSIST,
			  on_early_read, c);
	c->timer = evtimer_new(ps->l->srv->base, on_greet_timer, c);
	if (c->rd == NULL || c->timer == NULL) {
		ps_conn_done(c);
		return;
	}
	event_add(c->rd, NULL);
	tv.tv_sec = (time_t)ps->greet_wait;
	tv.tv_usec = 0;
	evtimer_add(c->timer, &tv);
	if (c->todo[PS_T_DNSBL])
		start_dns(c);
}

void
postscreen_free(struct postscreen **pp)
{
	struct postscreen *ps = *pp;

	if (ps == NULL)
		return;
	*pp = NULL;
	/* No DNS callback may run after this: then every connection goes. */
	if (ps->dns)
		dns_free(&ps->dns);
	while (ps->conns != NULL) {
		struct ps_conn *c = ps->conns;

		c->dns_pending = 0;
		if (!c->done)
			ps_conn_done(c);	/* frees it */
		else
			conn_free(c);
	}
	if (ps->cleanup_timer)
		event_free(ps->cleanup_timer);
	if (ps->sync_timer)
		event_free(ps->sync_timer);
	if (ps->cache)
		kvstore_close(&ps->cache);
	for (size_t i = 0; i < ps->access.n; i++)
		if (ps->access_tables && ps->access_tables[i])
			table_close(&ps->access_tables[i]);
	free(ps->access_tables);
	if (ps->dnsbl_reply_map)
		table_close(&ps->dnsbl_reply_map);
	if (ps->allow_ifaces)
		netlist_free(&ps->allow_ifaces);
	strlist_free(&ps->access);
	strlist_free(&ps->forbidden);
	ps_dnsbl_free(&ps->dnsbl);
	free(ps->greet_banner);
	free(ps->banner);
	free(ps->hostname);
	free(ps->cache_path);
	free(ps->dns_servers);
	free(ps);
}

