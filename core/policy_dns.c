/*
 * policy_dns.c - blocking DNS lookups for restrictions on worker threads:
 * a private c-ares channel per lookup, polled until the reply or the
 * deadline (a timeout is a temporary failure). Reply parsing is dns.c's.
 * Also DNSBL reply filters and rbl reply template expansion (pure).
 * Must not: run on the event loop, share a channel between threads, or
 * wait longer than the configured deadline.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <ares.h>

#include "core/lib/xmalloc.h"
#include "core/policy_dns.h"

#define MAX_SOCKS	16
#define TXT_LIMIT	500
#define EXPAND_DEPTH	10

struct policy_dns {
	char *csv;		/* NULL: the system resolver */
	long  timeout_ms;
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_rc = ARES_SUCCESS;

static void
lib_init(void)
{
	lib_rc = ares_library_init(ARES_LIB_INIT_ALL);
}

struct policy_dns *
policy_dns_new(const char *servers, long timeout_ms, struct errbuf *err)
{
	struct policy_dns *p;
	char csv[1024];

	if (servers && *servers &&
	    dns_servers_csv(servers, csv, sizeof(csv), err) < 0)
		return NULL;
	p = xcalloc(1, sizeof(*p));
	p->csv = servers && *servers ? xstrdup(csv) : NULL;
	p->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
	return p;
}

void
policy_dns_free(struct policy_dns **pp)
{
	if (*pp == NULL)
		return;
	free((*pp)->csv);
	free(*pp);
	*pp = NULL;
}

/* ---- one lookup ---- */

struct sock {
	ares_socket_t fd;
	bool          rd, wr;
};

struct call {
	struct sock       socks[MAX_SOCKS];
	size_t            nsocks;
	bool              done;
	enum dns_type     type;
	enum dns_status   st;
	struct dns_result res;
	char              why[200];
};

static void
sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct call *c = data;
	size_t i;

	for (i = 0; i < c->nsocks; i++)
		if (c->socks[i].fd == fd)
			break;
	if (!readable && !writable) {
		if (i < c->nsocks)
			c->socks[i] = c->socks[--c->nsocks];
		return;
	}
	if (i == c->nsocks) {
		if (c->nsocks == MAX_SOCKS)
			return;	/* c-ares times the query out */
		c->nsocks++;
		c->socks[i].fd = fd;
	}
	c->socks[i].rd = readable != 0;
	c->socks[i].wr = writable != 0;
}

static void
answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct call *c = arg;

	(void)timeouts;
	c->done = true;
	if (status == ARES_SUCCESS) {
		c->st = dns_parse(c->type, abuf, alen, &c->res);
		if (c->st == DNS_TEMPFAIL)
			snprintf(c->why, sizeof(c->why), "malformed DNS reply");
		else if (c->st == DNS_NOTFOUND)
			snprintf(c->why, sizeof(c->why), "%s",
				 ares_strerror(ARES_ENODATA));
		return;
	}
	snprintf(c->why, sizeof(c->why), "%s", ares_strerror(status));
	switch (status) {
	case ARES_ENODATA:
	case ARES_ENOTFOUND:
	case ARES_EBADNAME:
		c->st = DNS_NOTFOUND;
		break;
	default:
		c->st = DNS_TEMPFAIL;
		break;
	}
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
type_name(enum dns_type t)
{
	if (t == DNS_NS)
		return "NS";
	switch (t) {
	case DNS_A: return "A";
	case DNS_AAAA: return "AAAA";
	case DNS_MX: return "MX";
	case DNS_TXT: return "TXT";
	case DNS_PTR: return "PTR";
	}
	return "?";
}

enum dns_status
policy_dns_lookup(const struct policy_dns *p, const char *name,
		  enum dns_type type, struct dns_result *res, struct errbuf *why)
{
	struct ares_options o;
	ares_channel ch;
	struct call c;
	long deadline;
	int rc;

	memset(res, 0, sizeof(*res));
	pthread_once(&lib_once, lib_init);
	if (lib_rc != ARES_SUCCESS) {
		errbuf_set(why, "c-ares: %s", ares_strerror(lib_rc));
		return DNS_TEMPFAIL;
	}
	if (strlen(name) > 253 + 1) {
		errbuf_set(why, "name too long for DNS");
		return DNS_NOTFOUND;
	}
	memset(&c, 0, sizeof(c));
	c.type = type;
	memset(&o, 0, sizeof(o));
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	o.sock_state_cb = sock_state;
	o.sock_state_cb_data = &c;
	o.timeout = (int)(p->timeout_ms / 3 > 500 ? p->timeout_ms / 3 : 500);
	o.tries = 2;
	rc = ares_init_options(&ch, &o, ARES_OPT_FLAGS | ARES_OPT_SOCK_STATE_CB |
			       ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS) {
		errbuf_set(why, "c-ares: cannot initialise the resolver: %s",
			   ares_strerror(rc));
		return DNS_TEMPFAIL;
	}
	if (p->csv && (rc = ares_set_servers_ports_csv(ch, p->csv)) != ARES_SUCCESS) {
		errbuf_set(why, "facteur_dns_servers: %s", ares_strerror(rc));
		ares_destroy(ch);
		return DNS_TEMPFAIL;
	}
	deadline = now_ms() + p->timeout_ms;
	ares_query(ch, name, 1 /* C_IN */, (int)type, answer, &c);
	while (!c.done) {
		struct pollfd pfd[MAX_SOCKS];
		struct timeval maxtv, tv, *tvp;
		long left = deadline - now_ms(), wait;
		int n;

		if (left <= 0)
			break;
		maxtv.tv_sec = left / 1000;
		maxtv.tv_usec = (left % 1000) * 1000;
		tvp = ares_timeout(ch, &maxtv, &tv);
		wait = (long)tvp->tv_sec * 1000 + tvp->tv_usec / 1000 + 1;
		for (size_t i = 0; i < c.nsocks; i++) {
			pfd[i].fd = c.socks[i].fd;
			pfd[i].events = (short)((c.socks[i].rd ? POLLIN : 0) |
						(c.socks[i].wr ? POLLOUT : 0));
			pfd[i].revents = 0;
		}
		n = (int)c.nsocks;
		rc = poll(pfd, (nfds_t)n, (int)(wait < left ? wait : left));
		if (rc <= 0) {
			/* Timeouts (and EINTR): let c-ares retry or give up. */
			ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (int i = 0; i < n && !c.done; i++) {
			if (pfd[i].revents == 0)
				continue;
			ares_process_fd(ch,
				(pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
				? pfd[i].fd : ARES_SOCKET_BAD,
				(pfd[i].revents & POLLOUT) ? pfd[i].fd
							   : ARES_SOCKET_BAD);
		}
	}
	if (!c.done) {
		ares_cancel(ch);	/* calls answer() with ARES_ECANCELLED */
		c.st = DNS_TEMPFAIL;
		snprintf(c.why, sizeof(c.why), "timed out");
	}
	ares_destroy(ch);
	if (c.st == DNS_OK) {
		*res = c.res;
		return DNS_OK;
	}
	dns_result_free(&c.res);
	errbuf_set(why, "Name service error for name=%s type=%s: %s", name,
		   type_name(type), c.why);
	return c.st;
}

/* ---- host and mail host existence ---- */

static enum policy_dns_host
exists(const struct policy_dns *p, const char *name, const enum dns_type *types,
       size_t ntypes, struct errbuf *why)
{
	bool temp = false;

	for (size_t i = 0; i < ntypes; i++) {
		struct dns_result r;
		enum dns_status st = policy_dns_lookup(p, name, types[i], &r, why);

		if (st == DNS_OK) {
			bool nullmx = types[i] == DNS_MX && r.n == 1 &&
				      r.rr[0].data[0] == '\0';

			dns_result_free(&r);
			/* A null MX means "no mail", but the name exists. */
			if (nullmx && i == 0)
				return POLICY_DNS_NULLMX;
			return POLICY_DNS_FOUND;
		}
		if (st == DNS_TEMPFAIL)
			temp = true;
	}
	return temp ? POLICY_DNS_TEMPFAIL : POLICY_DNS_NOTFOUND;
}

enum policy_dns_host
policy_dns_mailhost(const struct policy_dns *p, const char *domain,
		    struct errbuf *why)
{
	static const enum dns_type t[] = { DNS_MX, DNS_A, DNS_AAAA };

	return exists(p, domain, t, 3, why);
}

enum policy_dns_host
policy_dns_hostname(const struct policy_dns *p, const char *name,
		    struct errbuf *why)
{
	static const enum dns_type t[] = { DNS_A, DNS_AAAA, DNS_MX };

	return exists(p, name, t, 3, why);
}

enum dns_status
policy_dns_addrs(const struct policy_dns *p, const char *name,
		 struct dns_result *res, struct errbuf *why)
{
	static const enum dns_type t[] = { DNS_A, DNS_AAAA };
	bool temp = false;

	memset(res, 0, sizeof(*res));
	for (size_t i = 0; i < 2; i++) {
		struct dns_result r;
		enum dns_status st = policy_dns_lookup(p, name, t[i], &r, why);

		if (st == DNS_TEMPFAIL)
			temp = true;
		if (st != DNS_OK)
			continue;
		res->rr = xrealloc(res->rr, (res->n + r.n) * sizeof(*res->rr));
		memcpy(res->rr + res->n, r.rr, r.n * sizeof(*r.rr));
		res->n += r.n;
		free(r.rr);
		free(r.cname);
	}
	if (res->n > 0)
		return DNS_OK;
	return temp ? DNS_TEMPFAIL : DNS_NOTFOUND;
}

/* ---- DNSBL filters ---- */

/* One octet pattern at *sp; sets *ok when value matches. -1 if bad. */
static int
octet(const char **sp, int value, bool *ok)
{
	const char *s = *sp;
	char *end;
	long a, b;

	*ok = false;
	if (isdigit((unsigned char)*s)) {
		a = strtol(s, &end, 10);
		if (a > 255 || end - s > 3)
			return -1;
		*ok = a == value;
		*sp = end;
		return 0;
	}
	if (*s != '[')
		return -1;
	s++;
	for (;;) {
		if (!isdigit((unsigned char)*s))
			return -1;
		a = strtol(s, &end, 10);
		if (a > 255 || end - s > 3)
			return -1;
		s = end;
		b = a;
		if (s[0] == '.' && s[1] == '.') {
			s += 2;
			if (!isdigit((unsigned char)*s))
				return -1;
			b = strtol(s, &end, 10);
			if (b > 255 || b < a || end - s > 3)
				return -1;
			s = end;
		}
		if (value >= a && value <= b)
			*ok = true;
		if (*s == ';') {
			s++;
			continue;
		}
		if (*s != ']')
			return -1;
		*sp = s + 1;
		return 0;
	}
}

static int
filter_run(const char *filter, const unsigned char *ip, bool *match)
{
	const char *s = filter;
	bool all = true, ok;

	for (int i = 0; i < 4; i++) {
		if (i > 0 && *s++ != '.')
			return -1;
		if (octet(&s, ip ? ip[i] : 0, &ok) < 0)
			return -1;
		all = all && ok;
	}
	if (*s != '\0')
		return -1;
	*match = all;
	return 0;
}

int
policy_dns_filter_check(const char *filter, struct errbuf *err)
{
	bool m;

	if (filter_run(filter, NULL, &m) < 0) {
		errbuf_set(err, "bad DNSBL reply filter \"%s\": expected four "
			   "octets, each a number or [a;b..c]", filter);
		return -1;
	}
	return 0;
}

bool
policy_dns_filter_match(const char *filter, const char *ipv4)
{
	unsigned char ip[4];
	bool m = false;

	if (inet_pton(AF_INET, ipv4, ip) != 1)
		return false;
	return filter_run(filter, ip, &m) == 0 && m;
}

enum policy_dns_xl
policy_dns_xl(const struct policy_dns *p, const char *query, const char *filter,
	      struct buf *txt_r, struct errbuf *why)
{
	struct dns_result r;
	enum dns_status st;
	bool listed = false;

	buf_reset(txt_r);
	st = policy_dns_lookup(p, query, DNS_A, &r, why);
	if (st == DNS_TEMPFAIL)
		return POLICY_DNS_XL_TEMPFAIL;
	if (st != DNS_OK)
		return POLICY_DNS_UNLISTED;
	for (size_t i = 0; i < r.n && !listed; i++)
		if (filter == NULL || policy_dns_filter_match(filter, r.rr[i].data))
			listed = true;
	dns_result_free(&r);
	if (!listed)
		return POLICY_DNS_UNLISTED;
	if (policy_dns_lookup(p, query, DNS_TXT, &r, why) == DNS_OK) {
		for (size_t i = 0; i < r.n; i++) {
			size_t room = txt_r->len < TXT_LIMIT
				      ? TXT_LIMIT - txt_r->len : 0;
			size_t n = strlen(r.rr[i].data);

			if (room == 0)
				break;
			if (i > 0) {
				if (room <= 3)
					break;
				buf_puts(txt_r, " / ");
				room -= 3;
			}
			buf_append(txt_r, r.rr[i].data, n < room ? n : room);
		}
		dns_result_free(&r);
	}
	errbuf_clear(why);
	return POLICY_DNS_LISTED;
}

/* ---- reply templates ---- */

static int
expand(const char *s, size_t len, policy_dns_var *lookup, void *ctx,
       struct buf *out, struct errbuf *err, int depth)
{
	const char *end = s + len;

	if (depth > EXPAND_DEPTH) {
		errbuf_set(err, "template nested too deeply");
		return -1;
	}
	while (s < end) {
		char name[64];
		const char *v, *text = NULL;
		size_t nlen, tlen = 0;
		char op = 0;

		if (*s != '$') {
			if (buf_putc(out, *s++) < 0)
				goto toolong;
			continue;
		}
		s++;
		if (s < end && *s == '$') {
			if (buf_putc(out, '$') < 0)
				goto toolong;
			s++;
			continue;
		}
		if (s < end && (*s == '{' || *s == '(')) {
			char close = *s == '{' ? '}' : ')';
			const char *n0 = ++s;
			int level = 1;

			while (s < end && (isalnum((unsigned char)*s) || *s == '_'))
				s++;
			nlen = (size_t)(s - n0);
			if (s < end && (*s == '?' || *s == ':')) {
				op = *s++;
				text = s;
				while (s < end) {
					if (*s == '{' || *s == '(')
						level++;
					else if ((*s == '}' || *s == ')') &&
						 --level == 0)
						break;
					s++;
				}
				tlen = (size_t)(s - text);
			}
			if (s >= end || *s != close || nlen == 0) {
				errbuf_set(err, "bad $ syntax in template");
				return -1;
			}
			s++;
			if (nlen >= sizeof(name)) {
				errbuf_set(err, "name too long in template");
				return -1;
			}
			memcpy(name, n0, nlen);
			name[nlen] = '\0';
		} else {
			const char *n0 = s;

			while (s < end && (isalnum((unsigned char)*s) || *s == '_'))
				s++;
			nlen = (size_t)(s - n0);
			if (nlen == 0 || nlen >= sizeof(name)) {
				errbuf_set(err, "bad $ syntax in template");
				return -1;
			}
			memcpy(name, n0, nlen);
			name[nlen] = '\0';
		}
		v = lookup(ctx, name);
		if (v == NULL) {
			errbuf_set(err, "unknown name \"%s\" in template", name);
			return -1;
		}
		if (op == '?' || op == ':') {
			bool use = op == '?' ? *v != '\0' : *v == '\0';

			if (use && expand(text, tlen, lookup, ctx, out, err,
					  depth + 1) < 0)
				return -1;
			continue;
		}
		if (buf_puts(out, v) < 0)
			goto toolong;
	}
	return 0;
toolong:
	errbuf_set(err, "template result too long");
	return -1;
}

int
policy_dns_expand(const char *tmpl, policy_dns_var *lookup, void *ctx,
		  struct buf *out, struct errbuf *err)
{
	buf_reset(out);
	return expand(tmpl, strlen(tmpl), lookup, ctx, out, err, 0);
}
