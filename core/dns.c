/*
 * dns.c - c-ares on the libevent loop: one event per resolver socket
 * (ARES_OPT_SOCK_STATE_CB), one timer from ares_timeout, replies parsed
 * into struct dns_result and handed to callbacks from a deferred event so
 * a callback never runs inside dns_query or inside c-ares. Host name <->
 * address lookups read the hosts file first (reverse: read here, then a
 * PTR query; forward: ares_gethostbyname with lookups "fb"). DNSSEC-aware
 * queries (dns_query_secure) are built here (EDNS0 + DO, AD in the
 * header) and sent with ares_send; TLSA records and the AD bit are read
 * from the raw reply by a bounded parser of our own.
 * Must not: block, be touched from worker threads, or keep a reply longer
 * than its callback.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <ares.h>
#include <event2/event.h>

#include "core/dns.h"
#include "core/lib/xmalloc.h"

#define DNS_MAX_SOCKS 64
#ifndef DNS_HOSTS_FILE
#define DNS_HOSTS_FILE "/etc/hosts"
#endif

struct dns_req {
	struct dns        *d;
	dns_cb            *cb;
	void              *arg;
	enum dns_type      type;
	enum dns_status    st;
	struct dns_result  res;
	char               why[128];
	struct dns_req    *next;	/* done list */
};

struct dns_sock {
	ares_socket_t  fd;
	struct event  *ev;
};

struct dns {
	struct event_base *base;
	ares_channel       ch;
	struct event      *timer;
	struct event      *done_ev;
	struct dns_sock    socks[DNS_MAX_SOCKS];
	size_t             nsocks;
	struct dns_req    *done_head, *done_tail;
	unsigned           pending;
	bool               freeing;
};

static bool lib_ready;

/* ---- parsing (pure) ---- */

void
dns_result_free(struct dns_result *res)
{
	size_t i;

	if (res == NULL)
		return;
	for (i = 0; i < res->n; i++)
		free(res->rr[i].data);
	free(res->rr);
	free(res->cname);
	res->rr = NULL;
	res->n = 0;
	res->cname = NULL;
}

static void
res_add(struct dns_result *res, enum dns_type t, int pref, char *data)
{
	res->rr = xrealloc(res->rr, (res->n + 1) * sizeof(*res->rr));
	memset(&res->rr[res->n], 0, sizeof(res->rr[0]));
	res->rr[res->n].type = t;
	res->rr[res->n].pref = pref;
	res->rr[res->n].data = data;
	res->n++;
}

#define DNS_HDR 12
#define DNS_RCODE_NXDOMAIN 3

/* Skips one (possibly compressed) name at p; the offset after it, or -1. */
static int
skip_name(const unsigned char *abuf, int alen, int p)
{
	char *name = NULL;
	long enclen = 0;

	if (p < DNS_HDR || p >= alen
	    || ares_expand_name(abuf + p, abuf, alen, &name, &enclen)
	       != ARES_SUCCESS)
		return -1;
	ares_free_string(name);
	if (enclen <= 0 || enclen > alen - p)
		return -1;
	return p + (int)enclen;
}

/*
 * TLSA records (type 52, RFC 6698 2.1) of the answer section: every
 * record read within the packet's bounds; a short RDATA, a count beyond
 * the packet or a bad name makes the whole reply malformed.
 */
static enum dns_status
parse_tlsa(const unsigned char *abuf, int alen, struct dns_result *res)
{
	unsigned qd = ((unsigned)abuf[4] << 8) | abuf[5];
	unsigned an = ((unsigned)abuf[6] << 8) | abuf[7];
	int p = DNS_HDR;
	unsigned i;

	for (i = 0; i < qd; i++) {
		if ((p = skip_name(abuf, alen, p)) < 0 || p + 4 > alen)
			return DNS_TEMPFAIL;
		p += 4;		/* QTYPE, QCLASS */
	}
	for (i = 0; i < an; i++) {
		unsigned type, cls, rdlen;

		if ((p = skip_name(abuf, alen, p)) < 0 || p + 10 > alen)
			return DNS_TEMPFAIL;
		type = ((unsigned)abuf[p] << 8) | abuf[p + 1];
		cls = ((unsigned)abuf[p + 2] << 8) | abuf[p + 3];
		rdlen = ((unsigned)abuf[p + 8] << 8) | abuf[p + 9];
		p += 10;
		if (rdlen > (unsigned)(alen - p))
			return DNS_TEMPFAIL;
		if (type == DNS_TLSA && cls == 1) {
			char *d;

			if (rdlen < 4)	/* usage, selector, mtype, >= 1 byte */
				return DNS_TEMPFAIL;
			d = xmalloc(rdlen - 3 + 1);
			memcpy(d, abuf + p + 3, rdlen - 3);
			d[rdlen - 3] = '\0';
			res_add(res, DNS_TLSA, 0, d);
			res->rr[res->n - 1].len = rdlen - 3;
			res->rr[res->n - 1].usage = abuf[p];
			res->rr[res->n - 1].selector = abuf[p + 1];
			res->rr[res->n - 1].mtype = abuf[p + 2];
		}
		p += (int)rdlen;
	}
	return res->n > 0 ? DNS_OK : DNS_NOTFOUND;
}

/* A host name from the wire: printable, no spaces (RFC 1035 names can
 * hold any byte; c-ares escapes some but not all). */
static char *
clean_name(const char *h)
{
	size_t n = strlen(h), i;
	char *s;

	if (n > 0 && h[n - 1] == '.')
		n--;
	s = xmalloc(n + 1);
	for (i = 0; i < n; i++)
		s[i] = (isgraph((unsigned char)h[i])) ? h[i] : '?';
	s[n] = '\0';
	return s;
}

static enum dns_status
ares_status(int rc)
{
	switch (rc) {
	case ARES_SUCCESS:	return DNS_OK;
	case ARES_ENODATA:
	case ARES_ENOTFOUND:	return DNS_NOTFOUND;
	default:		return DNS_TEMPFAIL;
	}
}

enum dns_status
dns_parse(enum dns_type type, const unsigned char *abuf, int alen,
	  struct dns_result *res)
{
	char txt[INET6_ADDRSTRLEN];
	int rc = ARES_EBADRESP;

	memset(res, 0, sizeof(*res));
	if (abuf == NULL || alen < DNS_HDR)
		return DNS_TEMPFAIL;
	res->secure = (abuf[3] & 0x20) != 0;	/* AD */
	if ((abuf[3] & 0x0f) == DNS_RCODE_NXDOMAIN)
		return DNS_NOTFOUND;
	if ((abuf[3] & 0x0f) != 0)
		return DNS_TEMPFAIL;
	if (type == DNS_TLSA) {
		enum dns_status st = parse_tlsa(abuf, alen, res);
		if (st == DNS_TEMPFAIL)
			dns_result_free(res);
		return st;
	}
	if (type == DNS_NS) {
		struct hostent *he = NULL;
		int i;
		rc = ares_parse_ns_reply(abuf, alen, &he);
		for (i = 0; rc == ARES_SUCCESS && he && he->h_aliases &&
		     he->h_aliases[i]; i++)
			res_add(res, DNS_NS, 0, clean_name(he->h_aliases[i]));
		if (he)
			ares_free_hostent(he);
		if (rc != ARES_SUCCESS) {
			bool sec = res->secure;

			dns_result_free(res);
			res->secure = sec;
			return ares_status(rc) == DNS_NOTFOUND ? DNS_NOTFOUND
							       : DNS_TEMPFAIL;
		}
		return res->n > 0 ? DNS_OK : DNS_NOTFOUND;
	}
	switch (type) {
	case DNS_MX: {
		struct ares_mx_reply *mx = NULL, *m;
		rc = ares_parse_mx_reply(abuf, alen, &mx);
		if (rc == ARES_SUCCESS)
			for (m = mx; m; m = m->next)
				res_add(res, DNS_MX, m->priority, clean_name(m->host));
		if (mx)
			ares_free_data(mx);
		break;
	}
	case DNS_A: {
		struct ares_addrttl at[64];
		struct hostent *he = NULL;
		int n = 64, i;
		rc = ares_parse_a_reply(abuf, alen, &he, at, &n);
		for (i = 0; rc == ARES_SUCCESS && i < n; i++)
			if (inet_ntop(AF_INET, &at[i].ipaddr, txt, sizeof(txt)))
				res_add(res, DNS_A, 0, xstrdup(txt));
		if (rc == ARES_SUCCESS && he && he->h_name)
			res->cname = clean_name(he->h_name);
		if (he)
			ares_free_hostent(he);
		break;
	}
	case DNS_AAAA: {
		struct ares_addr6ttl at[64];
		struct hostent *he = NULL;
		int n = 64, i;
		rc = ares_parse_aaaa_reply(abuf, alen, &he, at, &n);
		for (i = 0; rc == ARES_SUCCESS && i < n; i++)
			if (inet_ntop(AF_INET6, &at[i].ip6addr, txt, sizeof(txt)))
				res_add(res, DNS_AAAA, 0, xstrdup(txt));
		if (rc == ARES_SUCCESS && he && he->h_name)
			res->cname = clean_name(he->h_name);
		if (he)
			ares_free_hostent(he);
		break;
	}
	case DNS_TXT: {
		struct ares_txt_ext *tx = NULL, *t;
		char *cur = NULL;
		size_t curlen = 0;
		rc = ares_parse_txt_reply_ext(abuf, alen, &tx);
		for (t = tx; rc == ARES_SUCCESS && t; t = t->next) {
			if (t->record_start && cur) {
				res_add(res, DNS_TXT, 0, cur);
				cur = NULL;
				curlen = 0;
			}
			/* TXT strings are at most 255 bytes each: bounded. */
			cur = xrealloc(cur, curlen + t->length + 1);
			memcpy(cur + curlen, t->txt, t->length);
			curlen += t->length;
			cur[curlen] = '\0';
		}
		if (cur)
			res_add(res, DNS_TXT, 0, cur);
		if (tx)
			ares_free_data(tx);
		break;
	}
	case DNS_PTR: {
		struct hostent *he = NULL;
		unsigned char dummy[4] = { 0, 0, 0, 0 };
		int i;
		rc = ares_parse_ptr_reply(abuf, alen, dummy, 4, AF_INET, &he);
		if (rc == ARES_SUCCESS && he) {
			if (he->h_name)
				res_add(res, DNS_PTR, 0, clean_name(he->h_name));
			/* c-ares repeats h_name among the aliases */
			for (i = 0; he->h_aliases && he->h_aliases[i]; i++)
				if (he->h_name == NULL
				    || strcmp(he->h_aliases[i], he->h_name) != 0)
					res_add(res, DNS_PTR, 0,
						clean_name(he->h_aliases[i]));
		}
		if (he)
			ares_free_hostent(he);
		break;
	}
	default:
		return DNS_TEMPFAIL;
	}
	if (rc != ARES_SUCCESS) {
		bool sec = res->secure;

		dns_result_free(res);
		res->secure = sec;
		return ares_status(rc) == DNS_NOTFOUND ? DNS_NOTFOUND : DNS_TEMPFAIL;
	}
	if (res->n == 0)
		return DNS_NOTFOUND;
	return DNS_OK;
}

static int
cmp_pref(const void *a, const void *b)
{
	const struct dns_rr *x = a, *y = b;
	return (x->pref > y->pref) - (x->pref < y->pref);
}

void
dns_mx_sort(struct dns_result *res)
{
	size_t i, j, k;

	if (res->n < 2)
		return;
	qsort(res->rr, res->n, sizeof(*res->rr), cmp_pref);
	/* RFC 5321 section 5.1: randomize among equal preferences. */
	for (i = 0; i < res->n; i = j) {
		for (j = i + 1; j < res->n && res->rr[j].pref == res->rr[i].pref; j++)
			;
		for (k = j - 1; k > i; k--) {
			size_t r = i + (size_t)(random() % (long)(k - i + 1));
			struct dns_rr t = res->rr[k];
			res->rr[k] = res->rr[r];
			res->rr[r] = t;
		}
	}
}

int
dns_reverse_name(const char *ip, const char *suffix, char *out, size_t size)
{
	unsigned char a[16];
	size_t off = 0;
	int i, n;

	if (inet_pton(AF_INET, ip, a) == 1) {
		n = snprintf(out, size, "%u.%u.%u.%u.%s", a[3], a[2], a[1], a[0],
			     suffix);
		return n < 0 || (size_t)n >= size ? -1 : 0;
	}
	if (inet_pton(AF_INET6, ip, a) != 1)
		return -1;
	for (i = 15; i >= 0; i--) {
		n = snprintf(out + off, size - off, "%x.%x.", a[i] & 15, a[i] >> 4);
		if (n < 0 || (size_t)n >= size - off)
			return -1;
		off += (size_t)n;
	}
	n = snprintf(out + off, size - off, "%s", suffix);
	return n < 0 || (size_t)n >= size - off ? -1 : 0;
}

int
dns_servers_csv(const char *servers, char *out, size_t size,
		struct errbuf *err)
{
	const char *p = servers;
	size_t off = 0;

	out[0] = '\0';
	while (*p) {
		char tok[128], host[128], chk[16];
		const char *port = NULL;
		size_t n = strcspn(p, ", \t");
		int w;

		if (n == 0) {
			p++;
			continue;
		}
		if (n >= sizeof(tok)) {
			errbuf_set(err, "facteur_dns_servers: entry too long");
			return -1;
		}
		memcpy(tok, p, n);
		tok[n] = '\0';
		p += n;
		if (tok[0] == '[') {
			char *e = strchr(tok, ']');
			if (e == NULL || (size_t)(e - tok - 1) >= sizeof(host))
				goto bad;
			memcpy(host, tok + 1, (size_t)(e - tok - 1));
			host[e - tok - 1] = '\0';
			if (e[1] == ':')
				port = e + 2;
			else if (e[1] != '\0')
				goto bad;
			if (inet_pton(AF_INET6, host, chk) != 1
			    && inet_pton(AF_INET, host, chk) != 1)
				goto bad;
		} else {
			char *c = strchr(tok, ':');
			if (c && strchr(c + 1, ':')) {	/* bare IPv6 */
				snprintf(host, sizeof(host), "%s", tok);
				if (inet_pton(AF_INET6, host, chk) != 1)
					goto bad;
			} else {
				if (c) {
					*c = '\0';
					port = c + 1;
				}
				snprintf(host, sizeof(host), "%s", tok);
				if (inet_pton(AF_INET, host, chk) != 1)
					goto bad;
			}
		}
		if (port) {
			char *e;
			long v = strtol(port, &e, 10);
			if (*port == '\0' || *e != '\0' || v < 1 || v > 65535)
				goto bad;
		}
		if (strchr(host, ':'))
			w = snprintf(out + off, size - off, "%s[%s]:%s", off ? "," : "",
				     host, port ? port : "53");
		else
			w = snprintf(out + off, size - off, "%s%s:%s", off ? "," : "",
				     host, port ? port : "53");
		if (w < 0 || (size_t)w >= size - off) {
			errbuf_set(err, "facteur_dns_servers: list too long");
			return -1;
		}
		off += (size_t)w;
		continue;
bad:
		errbuf_set(err, "facteur_dns_servers: bad server \"%s\" (expected "
			   "an IP address with an optional :port, [ipv6]:port)", tok);
		return -1;
	}
	return 0;
}

/* ---- the loop glue ---- */

static void
timer_arm(struct dns *d)
{
	struct timeval tv, *t;

	if (d->freeing)
		return;
	t = ares_timeout(d->ch, NULL, &tv);
	if (t)
		event_add(d->timer, t);
	else
		event_del(d->timer);
}

static void
sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;

	ares_process_fd(d->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	timer_arm(d);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;

	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	timer_arm(d);
}

static void
sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;
	size_t i;
	short what = (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));

	for (i = 0; i < d->nsocks; i++)
		if (d->socks[i].fd == fd)
			break;
	if (i < d->nsocks) {
		event_free(d->socks[i].ev);
		d->socks[i] = d->socks[--d->nsocks];
	}
	if (what == 0 || d->freeing)
		return;
	if (d->nsocks >= DNS_MAX_SOCKS)
		return;		/* c-ares then times the query out */
	d->socks[d->nsocks].fd = fd;
	d->socks[d->nsocks].ev = event_new(d->base, fd, what | EV_PERSIST,
					   sock_cb, d);
	if (d->socks[d->nsocks].ev == NULL)
		return;
	event_add(d->socks[d->nsocks].ev, NULL);
	d->nsocks++;
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;
	struct dns_req *r;

	while ((r = d->done_head) != NULL) {
		d->done_head = r->next;
		if (d->done_head == NULL)
			d->done_tail = NULL;
		d->pending--;
		r->cb(r->arg, r->st, &r->res, r->why);
		dns_result_free(&r->res);
		free(r);
	}
}

/* Queues a finished request for done_cb (never calls back from here). */
static void
req_done(struct dns_req *r)
{
	struct dns *d = r->d;

	r->next = NULL;
	if (d->done_tail)
		d->done_tail->next = r;
	else
		d->done_head = r;
	d->done_tail = r;
	event_active(d->done_ev, EV_TIMEOUT, 1);
}

/* ares_gethostbyname answers (hosts file or DNS). */
static void
host_cb(void *arg, int status, int timeouts, struct hostent *he)
{
	struct dns_req *r = arg;
	char txt[INET6_ADDRSTRLEN];
	int i;

	(void)timeouts;
	if (status == ARES_EDESTRUCTION || r->d->freeing) {
		free(r);
		return;
	}
	if (status == ARES_SUCCESS && he != NULL) {
		int af = r->type == DNS_AAAA ? AF_INET6 : AF_INET;

		for (i = 0; he->h_addr_list && he->h_addr_list[i]; i++)
			if (he->h_addrtype == af
			    && inet_ntop(af, he->h_addr_list[i], txt, sizeof(txt)))
				res_add(&r->res, r->type, 0, xstrdup(txt));
		r->st = r->res.n > 0 ? DNS_OK : DNS_NOTFOUND;
		if (r->st == DNS_NOTFOUND)
			snprintf(r->why, sizeof(r->why), "%s",
				 ares_strerror(ARES_ENODATA));
	} else {
		r->st = status == ARES_EBADNAME ? DNS_NOTFOUND
						: ares_status(status);
		snprintf(r->why, sizeof(r->why), "%s", ares_strerror(status));
	}
	req_done(r);
}

static void
ares_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_req *r = arg;
	struct dns *d = r->d;

	if (status == ARES_EDESTRUCTION || d->freeing) {
		free(r);
		return;
	}
	if (status == ARES_SUCCESS) {
		r->st = dns_parse(r->type, abuf, alen, &r->res);
		if (r->st == DNS_TEMPFAIL)
			snprintf(r->why, sizeof(r->why), "malformed DNS reply");
		else if (r->st == DNS_NOTFOUND)
			snprintf(r->why, sizeof(r->why), "%s",
				 ares_strerror(ARES_ENODATA));
	} else {
		r->st = ares_status(status);
		snprintf(r->why, sizeof(r->why), "%s", ares_strerror(status));
	}
	req_done(r);
}

struct dns *
dns_new(struct event_base *base, const char *servers, struct errbuf *err)
{
	struct ares_options o;
	struct dns *d;
	char csv[1024];
	int rc;

	if (servers && *servers && dns_servers_csv(servers, csv, sizeof(csv), err) < 0)
		return NULL;
	if (!lib_ready) {
		if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
			errbuf_set(err, "c-ares: %s", ares_strerror(rc));
			return NULL;
		}
		lib_ready = true;
	}
	d = xcalloc(1, sizeof(*d));
	d->base = base;
	memset(&o, 0, sizeof(o));
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	o.sock_state_cb = sock_state_cb;
	o.sock_state_cb_data = d;
	o.timeout = 3000;
	o.tries = 2;
	o.lookups = (char *)"fb";	/* hosts file, then DNS (host lookups) */
	rc = ares_init_options(&d->ch, &o, ARES_OPT_FLAGS | ARES_OPT_SOCK_STATE_CB
			       | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES
			       | ARES_OPT_LOOKUPS);
	if (rc != ARES_SUCCESS) {
		errbuf_set(err, "c-ares: cannot initialise the resolver: %s",
			   ares_strerror(rc));
		free(d);
		return NULL;
	}
	if (servers && *servers
	    && (rc = ares_set_servers_ports_csv(d->ch, csv)) != ARES_SUCCESS) {
		errbuf_set(err, "facteur_dns_servers: %s", ares_strerror(rc));
		ares_destroy(d->ch);
		free(d);
		return NULL;
	}
	d->timer = event_new(base, -1, 0, timer_cb, d);
	d->done_ev = event_new(base, -1, 0, done_cb, d);
	if (d->timer == NULL || d->done_ev == NULL) {
		errbuf_set(err, "dns: cannot create events");
		dns_free(&d);
		return NULL;
	}
	return d;
}

void
dns_free(struct dns **dp)
{
	struct dns *d = *dp;
	struct dns_req *r;
	size_t i;

	if (d == NULL)
		return;
	d->freeing = true;
	ares_destroy(d->ch);
	for (i = 0; i < d->nsocks; i++)
		event_free(d->socks[i].ev);
	while ((r = d->done_head) != NULL) {
		d->done_head = r->next;
		dns_result_free(&r->res);
		free(r);
	}
	if (d->timer)
		event_free(d->timer);
	if (d->done_ev)
		event_free(d->done_ev);
	free(d);
	*dp = NULL;
}

void
dns_query(struct dns *d, const char *name, enum dns_type type, dns_cb *cb,
	  void *arg)
{
	struct dns_req *r = xcalloc(1, sizeof(*r));

	r->d = d;
	r->cb = cb;
	r->arg = arg;
	r->type = type;
	d->pending++;
	ares_query(d->ch, name, 1 /* C_IN */, (int)type, ares_cb, r);
	timer_arm(d);
}

/*
 * DNSSEC-aware query: EDNS0 (RFC 6891, 1232-byte UDP payload) with the DO
 * bit, and AD set in the header (RFC 6840 5.7), so a validating resolver
 * says in the AD bit of its reply whether the answer is authentic.
 * ares_send retries over TCP when the reply is truncated.
 */
void
dns_query_secure(struct dns *d, const char *name, enum dns_type type,
		 dns_cb *cb, void *arg)
{
	struct dns_req *r = xcalloc(1, sizeof(*r));
	unsigned char *q = NULL;
	int qlen = 0, rc;

	r->d = d;
	r->cb = cb;
	r->arg = arg;
	r->type = type;
	d->pending++;
	rc = ares_create_query(name, 1 /* C_IN */, (int)type, 0, 1, &q, &qlen,
			       1232);
	if (rc != ARES_SUCCESS || q == NULL || qlen < DNS_HDR + 11) {
		if (q)
			ares_free_string(q);
		r->st = rc == ARES_EBADNAME ? DNS_NOTFOUND : DNS_TEMPFAIL;
		snprintf(r->why, sizeof(r->why), "%s", ares_strerror(
			 rc != ARES_SUCCESS ? rc : ARES_EBADQUERY));
		req_done(r);
		return;
	}
	q[3] |= 0x20;		/* AD */
	q[qlen - 4] |= 0x80;	/* DO: the high bit of the OPT RR's flags */
	ares_send(d->ch, q, qlen, ares_cb, r);
	ares_free_string(q);
	timer_arm(d);
}

/*
 * The first name the hosts file gives an address (a: 4 or 16 bytes), as
 * the system's resolver would; 1 if found. c-ares' own "fb" reverse
 * lookup would hide a DNS failure behind "not found" (a temporary
 * failure would look permanent), so the file is read here.
 */
static int
hosts_name(int af, const unsigned char *a, size_t alen, char *out,
	   size_t size)
{
	char line[1024];
	int found = 0, skip = 0;
	FILE *f = fopen(DNS_HOSTS_FILE, "r");

	if (f == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		int partial = strchr(line, '\n') == NULL && !feof(f);
		char *save = NULL, *addr, *name;
		unsigned char b[16];

		if (skip) {		/* the rest of an over-long line */
			skip = partial;
			continue;
		}
		skip = partial;
		line[strcspn(line, "#\r\n")] = '\0';
		addr = strtok_r(line, " \t", &save);
		name = addr ? strtok_r(NULL, " \t", &save) : NULL;
		if (name == NULL || inet_pton(af, addr, b) != 1
		    || memcmp(a, b, alen) != 0)
			continue;
		snprintf(out, size, "%s", name);
		found = 1;
	}
	fclose(f);
	return found;
}

void
dns_addr_names(struct dns *d, const char *ip, dns_cb *cb, void *arg)
{
	struct dns_req *r;
	unsigned char a[16];
	char name[256], q[128];
	int af = strchr(ip, ':') ? AF_INET6 : AF_INET;

	if (inet_pton(af, ip, a) == 1
	    && dns_reverse_name(ip, af == AF_INET6 ? "ip6.arpa" : "in-addr.arpa",
				q, sizeof(q)) == 0) {
		if (!hosts_name(af, a, af == AF_INET6 ? 16 : 4, name,
				sizeof(name))) {
			dns_query(d, q, DNS_PTR, cb, arg);
			return;
		}
	} else {
		name[0] = '\0';
	}
	r = xcalloc(1, sizeof(*r));
	r->d = d;
	r->cb = cb;
	r->arg = arg;
	r->type = DNS_PTR;
	d->pending++;
	if (name[0] != '\0') {
		r->st = DNS_OK;
		res_add(&r->res, DNS_PTR, 0, clean_name(name));
	} else {
		r->st = DNS_NOTFOUND;
		snprintf(r->why, sizeof(r->why), "not an IP address");
	}
	req_done(r);
}

void
dns_host_addrs(struct dns *d, const char *name, int ipv6, dns_cb *cb,
	       void *arg)
{
	struct dns_req *r = xcalloc(1, sizeof(*r));

	r->d = d;
	r->cb = cb;
	r->arg = arg;
	r->type = ipv6 ? DNS_AAAA : DNS_A;
	d->pending++;
	ares_gethostbyname(d->ch, name, ipv6 ? AF_INET6 : AF_INET, host_cb, r);
	timer_arm(d);
}

unsigned
dns_pending(const struct dns *d)
{
	return d ? d->pending : 0;
}
