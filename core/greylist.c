/*
 * greylist.c - greylisting triplets in an LMDB store (see greylist.h).
 * Senders are normalised as postgrey does, so per-message bounce
 * addresses of mailing lists do not start a new triplet each time
 * (greylist_sender_key).
 * Records: "t:NET/SENDER/RCPT" -> "FIRST;PASSED" (first seen, 1 once a
 * retry came in time), expiring at FIRST + delay + retry window while
 * waiting and max_age after the last pass; "c:NET" -> "COUNT" (triplets
 * that passed), expiring max_age after the last one. Expired entries are
 * removed a few thousand at a time, at most once a minute, by the check
 * that happens to run then (bounded work), which also flushes the store
 * to disk (checks run on workers).
 * Must not: hold the store across a fork (opened at the first check),
 * or fail open silently (a store error is reported to the caller).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/greylist.h"
#include "core/kvstore.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/params.h"

#define GL_CLEANUP_EVERY	60	/* seconds */
#define GL_CLEANUP_SCAN		2000

struct greylist {
	long long       delay, retry_window, max_age, auto_allow;
	long long       map_size;
	char           *path;		/* store path (without .lmdb) */
	char           *text;
	pthread_mutex_t lock;		/* open and cleanup */
	struct kvstore *store;
	time_t          last_cleanup;
};

static int
get_time(const struct config *c, const char *name, char unit, long long *r,
	 struct errbuf *err)
{
	const char *v = config_get(c, name);

	if (v == NULL || params_parse_time(v, unit, r) < 0 || *r < 0) {
		errbuf_set(err, "bad value for %s: \"%s\" (expected a time, "
			   "e.g. 300s, 2d)", name, v ? v : "");
		return -1;
	}
	return 0;
}

static int
get_int(const struct config *c, const char *name, long long *r,
	struct errbuf *err)
{
	const char *v = config_get(c, name);

	if (v == NULL || params_parse_int(v, r) < 0 || *r < 0) {
		errbuf_set(err, "bad value for %s: \"%s\" (expected a number)",
			   name, v ? v : "");
		return -1;
	}
	return 0;
}

struct greylist *
greylist_new(const struct config *c, struct errbuf *err)
{
	struct greylist *g = xcalloc(1, sizeof(*g));
	const char *v, *p;

	pthread_mutex_init(&g->lock, NULL);
	if (get_time(c, "greylist_delay", 's', &g->delay, err) < 0 ||
	    get_time(c, "greylist_retry_window", 's', &g->retry_window, err) < 0 ||
	    get_time(c, "greylist_max_age", 'd', &g->max_age, err) < 0 ||
	    get_int(c, "greylist_auto_allow_count", &g->auto_allow, err) < 0 ||
	    get_int(c, "lmdb_map_size", &g->map_size, err) < 0)
		goto fail;
	v = config_get(c, "greylist_database");
	if (v == NULL)
		v = "";
	if (strncmp(v, "proxy:", 6) == 0)
		v += 6;
	p = strchr(v, ':');
	if (p == NULL || p[1] != '/' ||
	    !(strncmp(v, "lmdb:", 5) == 0 || strncmp(v, "btree:", 6) == 0 ||
	      strncmp(v, "hash:", 5) == 0)) {
		errbuf_set(err, "greylist_database: \"%s\": expected lmdb:/path "
			   "(an absolute path; the store is /path.lmdb)", v);
		goto fail;
	}
	g->path = xstrdup(p + 1);
	v = config_get(c, "greylist_text");
	g->text = xstrdup(v && *v ? v : "Greylisted");
	return g;
fail:
	greylist_free(&g);
	return NULL;
}

void
greylist_free(struct greylist **gp)
{
	struct greylist *g = *gp;

	if (g == NULL)
		return;
	*gp = NULL;
	if (g->store)
		kvstore_close(&g->store);
	pthread_mutex_destroy(&g->lock);
	free(g->path);
	free(g->text);
	free(g);
}

int
greylist_client_net(const char *addr, char *out, size_t size)
{
	unsigned char b[16];

	if (inet_pton(AF_INET, addr, b) == 1) {
		snprintf(out, size, "%u.%u.%u", b[0], b[1], b[2]);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, b) == 1) {
		/* an IPv4-mapped address is its IPv4 /24 */
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0,
							  0, 0, 0xff, 0xff };
		if (memcmp(b, mapped, 12) == 0) {
			snprintf(out, size, "%u.%u.%u", b[12], b[13], b[14]);
			return 0;
		}
		snprintf(out, size, "%x:%x:%x:%x", b[0] << 8 | b[1],
			 b[2] << 8 | b[3], b[4] << 8 | b[5], b[6] << 8 | b[7]);
		return 0;
	}
	return -1;
}

static struct kvstore *
store(struct greylist *g, struct errbuf *err)
{
	struct kvstore *k;

	pthread_mutex_lock(&g->lock);
	if (g->store == NULL)
		g->store = kvstore_open_logged(g->path, (size_t)g->map_size,
					       NULL, "smtpd",
					       "greylist_database", err);
	k = g->store;
	pthread_mutex_unlock(&g->lock);
	return k;
}

static void
maybe_cleanup(struct greylist *g, struct kvstore *k, time_t now)
{
	struct errbuf err;

	if (pthread_mutex_trylock(&g->lock) != 0)
		return;		/* another thread is at it */
	if (now - g->last_cleanup >= GL_CLEANUP_EVERY) {
		g->last_cleanup = now;
		errbuf_clear(&err);
		(void)kvstore_cleanup(k, now, GL_CLEANUP_SCAN, &err);
		/* checks run on workers: flushing here keeps the loop free */
		(void)kvstore_sync(k, &err);
	}
	pthread_mutex_unlock(&g->lock);
}

static void
lower_into(struct buf *b, const char *s)
{
	for (; *s; s++) {
		char ch = (char)tolower((unsigned char)*s);

		buf_append(b, &ch, 1);
	}
}

void
greylist_sender_key(const char *sender, struct buf *out)
{
	const char *at = strrchr(sender, '@');
	const char *lp = sender, *lp_end = at ? at : sender + strlen(sender);
	const char *eq;
	bool digits = false;

	/* BATV: prvs=TAG=user@, msprvs1=TAG=user@, btv1==TAG==user@ */
	if ((strncasecmp(lp, "prvs=", 5) == 0 ||
	     strncasecmp(lp, "msprvs1=", 8) == 0 ||
	     strncasecmp(lp, "btv1==", 6) == 0) &&
	    (eq = memrchr(lp, '=', (size_t)(lp_end - lp))) != NULL)
		lp = eq + 1;
	for (const char *p = lp; p < lp_end; p++) {
		if (*p == '+')
			break;		/* address extension (VERP lists) */
		if (isdigit((unsigned char)*p)) {
			if (!digits)
				buf_putc(out, '#');
			digits = true;
			continue;
		}
		digits = false;
		buf_putc(out, tolower((unsigned char)*p));
	}
	if (at != NULL)
		lower_into(out, at);
}

enum greylist_result
greylist_check(struct greylist *g, const struct greylist_query *q,
	       const char **why_r, long *left_r, struct errbuf *err)
{
	struct kvstore *k;
	char net[64], v[64];
	size_t vl;
	struct buf key;
	long long first = 0, count = 0;
	int passed = 0, r;
	time_t now = q->now;
	enum greylist_result res;
	const char *why = "";

	*left_r = 0;
	if (q->in_mynetworks || q->sasl_authenticated) {
		if (why_r)
			*why_r = "exempt";
		return GREYLIST_PASS;
	}
	if (greylist_client_net(q->client_addr, net, sizeof(net)) < 0) {
		if (why_r)
			*why_r = "no client address";
		return GREYLIST_PASS;
	}
	if ((k = store(g, err)) == NULL)
		return GREYLIST_ERROR;
	maybe_cleanup(g, k, now);

	/* a client network that passed often enough */
	buf_init(&key, 0);
	buf_printf(&key, "c:%s", net);
	vl = sizeof(v) - 1;
	r = kvstore_get(k, buf_cstr(&key), now, v, &vl, NULL, err);
	if (r < 0)
		goto error;
	if (r == 1 && vl < sizeof(v)) {
		v[vl] = '\0';
		count = atoll(v);
		if (g->auto_allow > 0 && count >= g->auto_allow) {
			if (why_r)
				*why_r = "client auto-allowed";
			buf_free(&key);
			return GREYLIST_PASS;
		}
	}

	buf_reset(&key);
	buf_printf(&key, "t:%s/", net);
	greylist_sender_key(q->sender ? q->sender : "", &key);
	buf_puts(&key, "/");
	lower_into(&key, q->rcpt ? q->rcpt : "");
	vl = sizeof(v) - 1;
	r = kvstore_get(k, buf_cstr(&key), now, v, &vl, NULL, err);
	if (r < 0)
		goto error;
	if (r == 1 && vl < sizeof(v)) {
		v[vl] = '\0';
		if (sscanf(v, "%lld;%d", &first, &passed) != 2)
			r = 0;		/* not ours: start again */
	}
	if (r == 0) {
		/* new triplet */
		snprintf(v, sizeof(v), "%lld;0", (long long)now);
		if (kvstore_put(k, buf_cstr(&key), v, strlen(v),
				now + (time_t)(g->delay + g->retry_window), err) < 0)
			goto error;
		*left_r = (long)g->delay;
		why = "new";
		res = g->delay > 0 ? GREYLIST_DEFER : GREYLIST_PASS;
		if (res == GREYLIST_DEFER)
			goto out;
		first = now;
	} else if (!passed && now - first < g->delay) {
		*left_r = (long)(g->delay - (now - first));
		why = "early retry";
		res = GREYLIST_DEFER;
		goto out;
	}
	/* passed: remember the triplet (and count a first pass) */
	snprintf(v, sizeof(v), "%lld;1", first);
	if (kvstore_put(k, buf_cstr(&key), v, strlen(v),
			now + (time_t)g->max_age, err) < 0)
		goto error;
	why = "triplet passed";
	if (!passed) {
		buf_reset(&key);
		buf_printf(&key, "c:%s", net);
		snprintf(v, sizeof(v), "%lld", count + 1);
		if (kvstore_put(k, buf_cstr(&key), v, strlen(v),
				now + (time_t)g->max_age, err) < 0)
			goto error;
		why = "retried in time";
		/* postgrey's line, for operators following a delayed message */
		if (q->syslog_name != NULL)
			log_write(q->syslog_name, "smtpd", LOG_LVL_INFO,
				  "greylist: action=pass, reason=retried in time, "
				  "delay=%lld, client_address=%s, sender=%s, "
				  "recipient=%s", (long long)(now - first),
				  q->client_addr, q->sender ? q->sender : "",
				  q->rcpt ? q->rcpt : "");
	}
	res = GREYLIST_PASS;
out:
	buf_free(&key);
	if (why_r)
		*why_r = why;
	return res;
error:
	buf_free(&key);
	return GREYLIST_ERROR;
}

void
greylist_reply_text(const struct greylist *g, const char *rcpt, long left,
		    struct buf *out)
{
	const char *at = rcpt ? strrchr(rcpt, '@') : NULL;
	const char *dom = at ? at + 1 : "";

	for (const char *p = g->text; *p; p++) {
		if (*p != '%' || p[1] == '\0') {
			buf_append(out, p, 1);
			continue;
		}
		p++;
		if (*p == 'r')
			buf_puts(out, dom);
		else if (*p == 's')
			buf_printf(out, "%ld", left);
		else if (*p == '%')
			buf_puts(out, "%");
		else {
			buf_append(out, p - 1, 2);
		}
	}
}
