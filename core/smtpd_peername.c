/*
 * smtpd_peername.c - the client's host name at connection time (Postfix's
 * smtpd_peer.c): PTR of the address, then forward confirmation (the
 * name's addresses of the client's family must include it), each through
 * c-ares on the loop with the hosts file read first, the whole bounded by
 * facteur_peername_timeout. Statuses follow Postfix: no PTR or a bad name
 * is permanent (5), no answer in time is temporary (4), a name that does
 * not resolve back is forged (6); the PTR name stays the reverse name.
 * One resolver per facteur_dns_servers value serves every session; one
 * left idle (a reload named other servers) is freed a minute later.
 * Must not: block, touch a session after it let go of its lookup, or free
 * a resolver from inside one of its own callbacks.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "core/dns.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/smtpd_listener.h"
#include "core/smtpd_peername.h"
#include "core/smtpd_session.h"

#define SVC "smtpd"

struct resolver {
	struct event_base *base;
	char              *servers;
	struct dns        *dns;
	unsigned           inflight;	/* lookups holding it */
	time_t             used;	/* last lookup started */
	struct resolver   *next;
};

struct smtpd_peername {
	struct smtpd_session *s;	/* NULL once the session let go */
	smtpd_peername_done  *done;
	struct resolver      *rv;
	struct event         *timer;	/* the bound */
	unsigned              queries;	/* DNS answers still to come */
	char                 *ptr;	/* the PTR name, while confirming */
};

/* One resolver per server list in use (listeners may name their own with
 * -o facteur_dns_servers=...); one idle for a minute is freed. */
#define RESOLVER_IDLE 60
static struct resolver *resolvers;

static void
resolver_free(struct resolver *rv)
{
	dns_free(&rv->dns);
	free(rv->servers);
	free(rv);
}

/* Never called from a DNS callback: may free idle resolvers. */
static struct resolver *
resolver_get(struct smtpd_session *s)
{
	struct event_base *base = s->l->srv->base;
	const char *servers = s->l->s.facteur_dns_servers
			      ? s->l->s.facteur_dns_servers : "";
	struct resolver **pp, *rv, *found = NULL;
	time_t now = time(NULL);
	struct errbuf err;

	for (pp = &resolvers; (rv = *pp) != NULL;) {
		if (found == NULL && rv->base == base
		    && strcmp(rv->servers, servers) == 0) {
			found = rv;
		} else if (rv->inflight == 0 && now - rv->used > RESOLVER_IDLE) {
			*pp = rv->next;
			resolver_free(rv);
			continue;
		}
		pp = &rv->next;
	}
	if (found != NULL) {
		found->used = now;
		return found;
	}
	errbuf_clear(&err);
	rv = xcalloc(1, sizeof(*rv));
	rv->base = base;
	rv->servers = xstrdup(servers);
	rv->dns = dns_new(base, servers, &err);
	if (rv->dns == NULL) {
		log_write(s->l->s.syslog_name, SVC, LOG_LVL_WARNING,
			  "client name lookups disabled: %s", errbuf_str(&err));
		free(rv->servers);
		free(rv);
		return NULL;
	}
	rv->used = now;
	rv->next = resolvers;
	resolvers = rv;
	return rv;
}

int
smtpd_peername_valid(const char *name)
{
	size_t label = 0, total = 0;
	bool non_numeric = false;
	const unsigned char *p = (const unsigned char *)name;

	if (*p == '\0')
		return 0;
	for (; *p; p++, total++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (isalpha(*p) || *p == '_') {
			non_numeric = true;
		} else if (*p == '-') {
			non_numeric = true;
			if (label == 0)
				return 0;
		} else if (!isdigit(*p)) {
			return 0;
		}
		if (++label > 63)
			return 0;
	}
	if (label == 0 || p[-1] == '-' || total > 255)
		return 0;
	return non_numeric;
}

/* Drops the lookup's hold once no answer is to come and no session
 * waits; the resolver itself is freed later by resolver_get. */
static void
pn_maybe_free(struct smtpd_peername *pn)
{
	if (pn->s != NULL || pn->queries > 0)
		return;
	if (pn->timer)
		event_free(pn->timer);
	pn->rv->inflight--;
	free(pn->ptr);
	free(pn);
}

/* Sets the session's names and hands it back; pn lets go of it. */
static void
pn_finish(struct smtpd_peername *pn, const char *verified, int name_status,
	  const char *reverse, int reverse_status)
{
	struct smtpd_session *s = pn->s;
	smtpd_peername_done *done = pn->done;

	if (pn->timer) {
		event_free(pn->timer);
		pn->timer = NULL;
	}
	free(s->reverse_client_name);
	s->reverse_client_name = reverse ? xstrdup(reverse) : NULL;
	s->client_name = verified && s->reverse_client_name
			 ? s->reverse_client_name : "unknown";
	s->name_status = (unsigned char)name_status;
	s->reverse_name_status = (unsigned char)reverse_status;
	s->peername = NULL;
	pn->s = NULL;
	pn_maybe_free(pn);
	done(s);		/* may free s */
}

static bool
same_addr(const char *a, const char *b)
{
	unsigned char x[16], y[16];

	if (inet_pton(AF_INET, a, x) == 1 && inet_pton(AF_INET, b, y) == 1)
		return memcmp(x, y, 4) == 0;
	if (inet_pton(AF_INET6, a, x) == 1 && inet_pton(AF_INET6, b, y) == 1)
		return memcmp(x, y, 16) == 0;
	return false;
}

static void
fwd_cb(void *arg, enum dns_status st, const struct dns_result *res,
       const char *why)
{
	struct smtpd_peername *pn = arg;
	struct smtpd_session *s = pn->s;

	pn->queries--;
	if (s == NULL) {
		pn_maybe_free(pn);
		return;
	}
	if (st == DNS_OK) {
		for (size_t i = 0; i < res->n; i++)
			if (same_addr(res->rr[i].data, s->client_addr)) {
				pn_finish(pn, pn->ptr, SMTPD_PEER_OK, pn->ptr,
					  SMTPD_PEER_OK);
				return;
			}
		log_write(s->l->s.syslog_name, SVC, LOG_LVL_WARNING,
			  "hostname %s does not resolve to address %s",
			  pn->ptr, s->client_addr);
		pn_finish(pn, NULL, SMTPD_PEER_FORGED, pn->ptr, SMTPD_PEER_OK);
		return;
	}
	log_write(s->l->s.syslog_name, SVC, LOG_LVL_WARNING,
		  "hostname %s does not resolve to address %s: %s", pn->ptr,
		  s->client_addr, st == DNS_TEMPFAIL
		  ? "Temporary failure in name resolution"
		  : "Name or service not known");
	(void)why;
	pn_finish(pn, NULL, st == DNS_TEMPFAIL ? SMTPD_PEER_TEMP
					       : SMTPD_PEER_FORGED,
		  pn->ptr, SMTPD_PEER_OK);
}

static void
ptr_cb(void *arg, enum dns_status st, const struct dns_result *res,
       const char *why)
{
	struct smtpd_peername *pn = arg;
	struct smtpd_session *s = pn->s;
	const char *name;
	unsigned char a[16];
	bool numeric;

	(void)why;
	pn->queries--;
	if (s == NULL) {
		pn_maybe_free(pn);
		return;
	}
	if (st != DNS_OK) {
		int code = st == DNS_TEMPFAIL ? SMTPD_PEER_TEMP : SMTPD_PEER_PERM;

		pn_finish(pn, NULL, code, NULL, code);
		return;
	}
	name = res->rr[0].data;
	/* Numeric names would let anyone pass name-based checks. */
	numeric = inet_pton(AF_INET, name, a) == 1
		  || inet_pton(AF_INET6, name, a) == 1;
	if (numeric || !smtpd_peername_valid(name)) {
		log_write(s->l->s.syslog_name, SVC, LOG_LVL_WARNING,
			  "%s: %s hostname: %.100s", s->client_addr,
			  numeric ? "numeric" : "malformed", name);
		pn_finish(pn, NULL, SMTPD_PEER_PERM, NULL, SMTPD_PEER_PERM);
		return;
	}
	pn->ptr = xstrdup(name);
	pn->queries++;
	dns_host_addrs(pn->rv->dns, name, strchr(s->client_addr, ':') != NULL,
		       fwd_cb, pn);
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_peername *pn = arg;
	struct smtpd_session *s = pn->s;

	(void)fd;
	(void)what;
	if (s == NULL)
		return;
	if (pn->ptr != NULL) {
		log_write(s->l->s.syslog_name, SVC, LOG_LVL_WARNING,
			  "hostname %s does not resolve to address %s: "
			  "Temporary failure in name resolution (no answer "
			  "within facteur_peername_timeout)", pn->ptr,
			  s->client_addr);
		pn_finish(pn, NULL, SMTPD_PEER_TEMP, pn->ptr, SMTPD_PEER_OK);
	} else {
		log_write(s->l->s.syslog_name, SVC, LOG_LVL_WARNING,
			  "%s: no reverse name within facteur_peername_timeout "
			  "(%llds): client name unknown", s->client_addr,
			  s->l->s.facteur_peername_timeout);
		pn_finish(pn, NULL, SMTPD_PEER_TEMP, NULL, SMTPD_PEER_TEMP);
	}
}

int
smtpd_peername_start(struct smtpd_session *s, smtpd_peername_done *done)
{
	struct smtpd_peername *pn;
	struct resolver *rv;
	struct timeval tv;

	free(s->reverse_client_name);
	s->reverse_client_name = NULL;
	s->client_name = "unknown";
	s->name_status = s->reverse_name_status = SMTPD_PEER_PERM;
	if (!s->l->s.smtpd_peername_lookup || s->client_addr[0] == '\0')
		return 0;
	if ((rv = resolver_get(s)) == NULL) {
		s->name_status = s->reverse_name_status = SMTPD_PEER_TEMP;
		return 0;
	}
	pn = xcalloc(1, sizeof(*pn));
	pn->s = s;
	pn->done = done;
	pn->rv = rv;
	rv->inflight++;
	pn->timer = evtimer_new(s->l->srv->base, timeout_cb, pn);
	if (pn->timer == NULL) {
		rv->inflight--;
		free(pn);
		s->name_status = s->reverse_name_status = SMTPD_PEER_TEMP;
		return 0;
	}
	tv.tv_sec = (time_t)s->l->s.facteur_peername_timeout;
	tv.tv_usec = 0;
	evtimer_add(pn->timer, &tv);
	s->peername = pn;
	pn->queries = 1;
	dns_addr_names(rv->dns, s->client_addr, ptr_cb, pn);
	return 1;
}

void
smtpd_peername_release(struct smtpd_session *s)
{
	struct smtpd_peername *pn = s->peername;

	if (pn != NULL) {
		s->peername = NULL;
		pn->s = NULL;
		if (pn->timer) {
			event_free(pn->timer);
			pn->timer = NULL;
		}
		pn_maybe_free(pn);
	}
	free(s->reverse_client_name);
	s->reverse_client_name = NULL;
	s->client_name = "unknown";
}
