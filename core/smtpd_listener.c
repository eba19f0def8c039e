/*
 * smtpd_listener.c - one SMTP listener per master.cf inet+smtpd line:
 * its settings view (-o overrides), maps, restriction lists, the banner and
 * EHLO reply, and the bound sockets (bound as root before the privilege
 * drop, accepted on the event loop).
 * Reload (facteurd.c): a new listener is prepared from the new
 * configuration and takes over the sockets of the old one with the same
 * service and addresses; the old one is retired and freed with its last
 * session, so sessions in progress finish on the settings they started
 * with. A TLS context or passdb that can no longer be read after the
 * privilege drop is shared with the old listener (refcounted).
 * Behind a load balancer (smtpd_upstream_proxy_protocol, or
 * postscreen_upstream_proxy_protocol on a postscreen line) each accepted
 * connection's PROXY header (core/proxy_proto.c) is read here first, and
 * its client address is the one handed to postscreen or the session.
 * Must not: run the SMTP dialogue (smtpd_session.c does), or close a
 * socket a new listener took over.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "backends/table.h"
#include "core/lib/buf.h"
#include "core/lib/strlist.h"
#include "auth/passdb.h"
#include "auth/sasl.h"
#include "core/lib/xmalloc.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/milter.h"
#include "core/postscreen.h"
#include "core/proxy_proto.h"
#include "core/smtpd_limits.h"
#include "core/bcc.h"
#include "core/smtpd_listener.h"
#include "core/smtpd_session.h"
#include "core/status.h"

/* An object shared by listeners across reloads (TLS context, passdb). */
struct listener_ref {
	void     *p;
	unsigned  refs;
};

static struct listener_ref *
ref_new(void *p)
{
	struct listener_ref *r;

	if (p == NULL)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->p = p;
	r->refs = 1;
	return r;
}

static int
same_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* 1 if a file of the list cannot be opened for lack of permission. */
static int
unreadable(const char *files)
{
	struct strlist v;
	int r = 0;

	strlist_init(&v);
	strlist_split(&v, files ? files : "");
	for (size_t i = 0; i < v.n && !r; i++) {
		FILE *fp = fopen(v.v[i], "r");

		if (fp != NULL)
			fclose(fp);
		else if (errno == EACCES || errno == EPERM)
			r = 1;
	}
	strlist_free(&v);
	return r;
}

/* No session, no PROXY header being read, no client being screened,
 * no worker job borrowing it (a postmaster notice). */
static int
listener_idle(const struct smtpd_listener *l)
{
	return l->nsessions == 0 && l->nproxies == 0 && l->njobs == 0 &&
	    (l->ps == NULL || postscreen_active(l->ps) == 0);
}

/* A client accepted: screening first on a postscreen line, else SMTP.
 * local: the server address a PROXY header named (NULL: the socket's). */
static void
listener_dispatch(struct smtpd_listener *l, int fd, const struct sockaddr *sa,
		  int salen, const struct sockaddr *local)
{
	if (l->ps != NULL)	/* master.cf "postscreen": screening first */
		postscreen_accept(l->ps, fd, sa, salen, local);
	else
		smtpd_session_start(l, fd, sa, salen);
}

/* ---- PROXY protocol: the load balancer's header before anything ---- */

struct listener_proxy {
	struct smtpd_listener  *l;
	int                     fd;
	struct event           *ev;
	size_t                  len;	/* header bytes taken so far */
	struct sockaddr_storage peer;	/* the load balancer */
	int                     peerlen;
	char                    peer_addr[INET6_ADDRSTRLEN];
	struct timeval          deadline;	/* the whole header, not per read */
	struct listener_proxy  *next, *prev;
	unsigned char           buf[PROXY_PROTO_MAX];
};

static void
proxy_free(struct listener_proxy *p, int close_fd)
{
	struct smtpd_listener *l = p->l;

	if (p->prev)
		p->prev->next = p->next;
	else
		l->proxies = p->next;
	if (p->next)
		p->next->prev = p->prev;
	l->nproxies--;
	event_free(p->ev);		/* before its socket closes */
	if (close_fd)
		close(p->fd);
	free(p);
}

static void
proxy_fail(struct listener_proxy *p, const char *why)
{
	struct smtpd_listener *l = p->l;

	log_write(l->s.syslog_name, l->ps != NULL ? "postscreen" : "smtpd",
		  LOG_LVL_WARNING, "haproxy read: %s from [%s]", why,
		  p->peer_addr);
	l->srv->proxy_errors++;
	proxy_free(p, 1);
	if (l->retired && listener_idle(l))
		smtpd_listener_free(&l);
}

/*
 * The header is peeked, and only its own bytes are taken off the socket:
 * what follows is the client's (SMTP commands, or a TLS ClientHello on
 * smtps). A valid but incomplete beginning is all header, so it is taken.
 */
static void
proxy_read(evutil_socket_t fd, short what, void *arg)
{
	struct listener_proxy *p = arg;
	struct smtpd_listener *l = p->l;
	struct proxy_info pi;
	char err[128];
	ssize_t n;
	size_t take;
	int r;

	if (what & EV_TIMEOUT) {
		proxy_fail(p, "time limit exceeded");
		return;
	}
	{
		/* A byte now and then must not stretch the time limit. */
		struct timeval now;

		event_base_gettimeofday_cached(l->srv->base, &now);
		if (timercmp(&now, &p->deadline, >)) {
			proxy_fail(p, "time limit exceeded");
			return;
		}
	}
	n = recv(fd, p->buf + p->len, sizeof(p->buf) - p->len, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		proxy_fail(p, n == 0 ? "lost connection" : strerror(errno));
		return;
	}
	r = proxy_proto_parse(p->buf, p->len + (size_t)n, &pi, err, sizeof(err));
	if (r < 0) {
		proxy_fail(p, err);
		return;
	}
	take = r == 0 ? (size_t)n : (size_t)r - p->len;
	if (recv(fd, p->buf + p->len, take, 0) != (ssize_t)take) {
		proxy_fail(p, "short read");
		return;
	}
	p->len += take;
	if (r == 0)
		return;
	/* Complete: the real client is the one screened, checked, logged. */
	fd = p->fd;
	if (pi.local) {
		struct sockaddr_storage peer = p->peer;
		int peerlen = p->peerlen;

		proxy_free(p, 0);
		listener_dispatch(l, fd, (struct sockaddr *)&peer, peerlen,
				  NULL);
	} else {
		proxy_free(p, 0);
		listener_dispatch(l, fd, (struct sockaddr *)&pi.src,
				  (int)pi.srclen, pi.dstlen > 0
				  ? (struct sockaddr *)&pi.dst : NULL);
	}
	/* l may be gone now (a retired listener whose only client was
	 * refused); else smtpd_listener_sweep frees it when idle. */
}

static void
listener_accept(struct evconnlistener *evl, evutil_socket_t fd,
		struct sockaddr *sa, int salen, void *arg)
{
	struct smtpd_listener *l = arg;
	struct listener_proxy *p;
	struct timeval tv = { (time_t)l->proxy_timeout, 0 };
	struct netlist_addr a;

	if (!l->proxy) {
		listener_dispatch(l, fd, sa, salen, NULL);
		return;
	}
	if (l->nsessions + l->nproxies >= l->max_sessions) {
		/* headers not read yet count against the session limit */
		log_write(l->s.syslog_name, l->ps != NULL ? "postscreen" : "smtpd",
			  LOG_LVL_WARNING, "%s: too many sessions (%u) and "
			  "PROXY headers pending (%u): connection refused",
			  l->service, l->nsessions, l->nproxies);
		close(fd);
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->l = l;
	p->fd = fd;
	if (salen > 0 && (size_t)salen <= sizeof(p->peer))
		memcpy(&p->peer, sa, (size_t)salen);
	p->peerlen = salen;
	if (netlist_addr_from_sockaddr(sa, &a) == 0)
		netlist_addr_format(&a, p->peer_addr, sizeof(p->peer_addr));
	else
		snprintf(p->peer_addr, sizeof(p->peer_addr), "unknown");
	event_base_gettimeofday_cached(l->srv->base, &p->deadline);
	timeradd(&p->deadline, &tv, &p->deadline);
	p->ev = event_new(l->srv->base, fd, EV_READ | EV_PERSIST, proxy_read, p);
	if (p->ev == NULL) {
		close(fd);
		free(p);
		return;
	}
	p->next = l->proxies;
	if (l->proxies)
		l->proxies->prev = p;
	l->proxies = p;
	l->nproxies++;
	event_add(p->ev, &tv);
}

static void
listener_resume(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_listener *l = arg;

	for (size_t i = 0; i < l->nfds; i++)
		if (l->evl[i] != NULL)
			evconnlistener_enable(l->evl[i]);
}

static void
listener_error(struct evconnlistener *evl, void *arg)
{
	struct smtpd_listener *l = arg;
	int e = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 1, 0 };

	/*
	 * Out of descriptors or memory: the pending connection stays in the
	 * backlog, so accepting again at once would spin. Pause a second.
	 */
	log_write(l->s.syslog_name, "smtpd", LOG_LVL_WARNING,
		  "accept on %s: %s: pausing new connections for 1s", l->service,
		  evutil_socket_error_to_string(e));
	for (size_t i = 0; i < l->nfds; i++)
		if (l->evl[i] != NULL)
			evconnlistener_disable(l->evl[i]);
	if (l->pause == NULL)
		l->pause = evtimer_new(l->srv->base, listener_resume, l);
	evtimer_add(l->pause, &tv);
}


/* The EHLO reply, before or inside TLS (RFC 3207: no STARTTLS inside). */
static char *
ehlo_text(const struct smtpd_listener *l, int in_tls)
{
	struct buf b;

	buf_init(&b, 0);
	buf_printf(&b, "250-%s\r\n250-PIPELINING\r\n", l->s.myhostname);
	if (l->s.message_size_limit > 0)
		buf_printf(&b, "250-SIZE %lld\r\n", l->s.message_size_limit);
	else
		buf_puts(&b, "250-SIZE\r\n");
	if (!l->s.disable_vrfy_command)
		buf_puts(&b, "250-VRFY\r\n");
	if (l->tls != NULL && !in_tls)
		buf_puts(&b, "250-STARTTLS\r\n");
	if (in_tls ? l->auth_tls : l->auth_plain) {
		struct buf m;

		buf_init(&m, 0);
		sasl_mechs_format(in_tls ? l->sasl_mechs_tls : l->sasl_mechs, &m);
		buf_printf(&b, "250-AUTH %s\r\n", buf_cstr(&m));
		if (l->s.broken_sasl_auth_clients)
			buf_printf(&b, "250-AUTH=%s\r\n", buf_cstr(&m));
		buf_free(&m);
	}
	buf_puts(&b, "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n"
		 "250-SMTPUTF8\r\n250 CHUNKING\r\n");
	return buf_steal(&b);
}

static void
build_replies(struct smtpd_listener *l)
{
	struct buf b;

	buf_init(&b, 0);
	buf_printf(&b, "220 %s\r\n", l->s.smtpd_banner);
	l->banner = buf_steal(&b);
	l->ehlo_reply = ehlo_text(l, 0);
	l->ehlo_reply_tls = ehlo_text(l, 1);
}

/* The passdb is opened here, as root (the file may be root-only); on a
 * reload as mail_owner, a passdb that cannot be opened any more is shared
 * with old's when it is the same one. */
static int
setup_sasl(struct smtpd_listener *l, struct smtpd_listener *old,
	   struct errbuf *err)
{
	struct errbuf e;

	if (!l->s.smtpd_sasl_auth_enable)
		return 0;
	errbuf_clear(&e);
	if (old != NULL && old->passdb != NULL && old->passdb_ref != NULL &&
	    same_str(old->s.smtpd_sasl_passdb, l->s.smtpd_sasl_passdb) &&
	    strcmp(l->s.smtpd_sasl_type, "builtin") == 0) {
		struct passdb *pd = passdb_open(l->s.smtpd_sasl_passdb, &e);
		const char *colon = strchr(l->s.smtpd_sasl_passdb, ':');

		if (pd != NULL) {
			l->passdb = pd;
		} else if (colon == NULL || !unreadable(colon + 1)) {
			errbuf_set(err, "%s: %s", l->service, errbuf_str(&e));
			return -1;
		} else {
			log_write(l->s.syslog_name, "smtpd", LOG_LVL_WARNING,
				  "%s: reload: %s: keeping the password database "
				  "opened before (make it readable by the group "
				  "of mail_owner, or restart facteurd)",
				  l->service, errbuf_str(&e));
			l->passdb = old->passdb;
			l->passdb_ref = old->passdb_ref;
			l->passdb_ref->refs++;
		}
		errbuf_clear(&e);
	}
	if (strcmp(l->s.smtpd_sasl_type, "builtin") != 0) {
		errbuf_set(err, "%s: smtpd_sasl_type = %s is not supported: "
			   "facteur authenticates itself (builtin)", l->service,
			   l->s.smtpd_sasl_type);
		return -1;
	}
	if (l->s.smtpd_sasl_passdb[0] == '\0') {
		errbuf_set(err, "%s: smtpd_sasl_auth_enable = yes needs "
			   "smtpd_sasl_passdb (for example passwd-file:/etc/"
			   "facteur/users)", l->service);
		return -1;
	}
	/* The mechanisms offered before and inside TLS (auth/sasl.c). */
	if (sasl_mechs_parse(l->s.smtpd_sasl_mechanisms, &l->sasl_mechs,
			     &e) < 0 ||
	    (l->sasl_mechs_tls = l->sasl_mechs,
	     sasl_mechs_secure("smtpd_sasl_security_options",
			       l->s.smtpd_sasl_security_options,
			       &l->sasl_mechs, &e)) < 0 ||
	    sasl_mechs_secure("smtpd_sasl_tls_security_options",
			      l->s.smtpd_sasl_tls_security_options,
			      &l->sasl_mechs_tls, &e) < 0 ||
	    (l->passdb == NULL &&
	     (l->passdb = passdb_open(l->s.smtpd_sasl_passdb, &e)) == NULL)) {
		errbuf_set(err, "%s: %s", l->service, errbuf_str(&e));
		return -1;
	}
	if (l->passdb_ref == NULL)
		l->passdb_ref = ref_new(l->passdb);
	if (l->s.smtpd_tls_auth_only || l->s.smtpd_tls_wrappermode)
		l->sasl_mechs = 0;
	if (l->tls == NULL)
		l->sasl_mechs_tls = 0;
	l->auth_plain = l->sasl_mechs != 0;
	l->auth_tls = l->sasl_mechs_tls != 0;
	{
		struct buf w;	/* SCRAM/CRAM-MD5 offered to users who lack
				   the stored form they need (auth/passdb.c) */

		buf_init(&w, 0);
		passdb_mechs_warning(l->passdb, l->sasl_mechs | l->sasl_mechs_tls,
				     &w);
		if (w.len > 0)
			log_write(l->s.syslog_name, "smtpd", LOG_LVL_WARNING,
				  "%s: smtpd_sasl_mechanisms: %s", l->service,
				  buf_cstr(&w));
		buf_free(&w);
	}
	return 0;
}

static int
sni_entry_unreadable(const char *key, const char *value, void *arg)
{
	int *r = arg;

	if (unreadable(value))
		*r = 1;
	return 0;
}

/* A file named by tls_server_sni_maps (or a map itself) is root's only. */
static int
sni_unreadable(const char *maps)
{
	struct strlist v;
	int r = 0;

	strlist_init(&v);
	strlist_split(&v, maps ? maps : "");
	for (size_t i = 0; i < v.n && !r; i++) {
		struct errbuf e;
		const char *colon = strchr(v.v[i], ':');
		struct table *tb;

		errbuf_clear(&e);
		if (colon != NULL && unreadable(colon + 1)) {
			r = 1;
			break;
		}
		if ((tb = table_open(v.v[i], 0, &e)) == NULL)
			continue;
		(void)table_dump(tb, sni_entry_unreadable, &r, &e);
		table_close(&tb);
	}
	strlist_free(&v);
	return r;
}

/* A reload may keep old's TLS context: same files and level, and the
 * new one failed because a file cannot be read (root-only key), not for
 * a bad or mismatched content. */
static int
tls_reusable(const struct smtpd_listener *l, const struct smtpd_listener *old)
{
	return old != NULL && old->tls != NULL && old->tls_ref != NULL &&
	    (unreadable(l->s.smtpd_tls_cert_file) ||
	     unreadable(l->s.smtpd_tls_key_file) ||
	     unreadable(l->s.smtpd_tls_chain_files) ||
	     unreadable(l->s.smtpd_tls_eckey_file) ||
	     unreadable(l->s.smtpd_tls_dkey_file) ||
	     sni_unreadable(l->s.tls_server_sni_maps)) &&
	    same_str(old->s.tls_server_sni_maps, l->s.tls_server_sni_maps) &&
	    old->tls_level == l->tls_level &&
	    same_str(old->s.smtpd_tls_cert_file, l->s.smtpd_tls_cert_file) &&
	    same_str(old->s.smtpd_tls_key_file, l->s.smtpd_tls_key_file) &&
	    same_str(old->s.smtpd_tls_chain_files, l->s.smtpd_tls_chain_files) &&
	    same_str(old->s.smtpd_tls_eckey_file, l->s.smtpd_tls_eckey_file) &&
	    same_str(old->s.smtpd_tls_dkey_file, l->s.smtpd_tls_dkey_file);
}

/* Keys are read here, as root, before the privilege drop (and again as
 * mail_owner on a reload: see tls_reusable). */
static int
setup_tls(struct smtpd_listener *l, struct smtpd_listener *old,
	  struct errbuf *err)
{
	struct errbuf e;

	errbuf_clear(&e);
	if (tls_server_level(&l->s, &l->tls_level, &e) < 0) {
		errbuf_set(err, "%s: %s", l->service, errbuf_str(&e));
		return -1;
	}
	if (l->tls_level != TLS_LEVEL_NONE &&
	    tls_server_new(&l->s, l->tls_level, &l->tls, &e) < 0) {
		if (!tls_reusable(l, old)) {
			errbuf_set(err, "%s: %s", l->service, errbuf_str(&e));
			return -1;
		}
		log_write(l->s.syslog_name, "smtpd", LOG_LVL_WARNING,
			  "%s: reload: %s: keeping the certificate and key "
			  "loaded before (make the key readable by the group of "
			  "mail_owner, or restart facteurd, to load new ones)",
			  l->service, errbuf_str(&e));
		l->tls = old->tls;
		l->tls_ref = old->tls_ref;
		l->tls_ref->refs++;
	} else {
		l->tls_ref = ref_new(l->tls);
	}
	if (l->tls_level == TLS_LEVEL_NONE)
		return 0;
	if (l->tls == NULL && l->tls_level == TLS_LEVEL_ENCRYPT) {
		errbuf_set(err, "%s: %s requires a certificate: set "
			   "smtpd_tls_cert_file and smtpd_tls_key_file (or "
			   "smtpd_tls_chain_files)", l->service,
			   l->s.smtpd_tls_wrappermode ? "smtpd_tls_wrappermode"
			   : "TLS security level \"encrypt\"");
		return -1;
	}
	if (l->s.smtpd_tls_req_ccert && l->tls_level != TLS_LEVEL_ENCRYPT)
		/* Postfix too: a certificate can only be required when
		 * TLS is */
		log_write(l->s.syslog_name, "smtpd", LOG_LVL_WARNING,
			  "%s: smtpd_tls_req_ccert = yes is ignored unless "
			  "smtpd_tls_security_level = encrypt", l->service);
	if (l->tls == NULL) {
		log_write(l->s.syslog_name, "smtpd", LOG_LVL_WARNING,
			  "%s: TLS security level \"may\" without "
			  "smtpd_tls_cert_file: STARTTLS is not offered",
			  l->service);
		l->tls_level = TLS_LEVEL_NONE;
	}
	return 0;
}

struct smtpd_listener *
smtpd_listener_prepare(struct smtpd_server *srv, const struct config *base_cfg,
		       const struct master_service *svc,
		       struct smtpd_listener *old, struct errbuf *err)
{
	struct smtpd_listener *l = xcalloc(1, sizeof(*l));

	l->srv = srv;
	l->service = xstrdup(svc->service);
	l->cfg = config_with_service(base_cfg, svc, err);
	if (l->cfg == NULL)
		goto fail;
	if (settings_load(&l->s, l->cfg, err) < 0)
		goto fail;
	l->resolve = resolve_ctx_new_receiving(&l->s, err);
	if (l->resolve == NULL)
		goto fail;
	l->bcc = bcc_ctx_new(&l->s, err);
	if (l->bcc == NULL)
		goto fail;
	l->mynetworks = netlist_new(l->s.mynetworks, err);
	if (l->mynetworks == NULL)
		goto fail;
	if (smtpd_check_lists_compile(&l->checks, l->cfg, err) < 0)
		goto fail;
	if (smtpd_limits_conf_new(l, err) < 0)
		goto fail;
	if (milter_list_check(l->s.smtpd_milters, err) < 0) {
		char why[512];

		snprintf(why, sizeof(why), "smtpd_milters: %s", errbuf_str(err));
		errbuf_set(err, "%s", why);
		goto fail;
	}
	if (cleanup_checks_open(&l->cleanup, &l->s, err) < 0)
		goto fail;
	if (setup_tls(l, old, err) < 0 || setup_sasl(l, old, err) < 0)
		goto fail;
	if (smtpd_listener_check_proxy(&l->s, svc, err) < 0)
		goto fail;
	if (strcmp(svc->command, "postscreen") == 0) {
		l->proxy = l->s.postscreen_upstream_proxy_protocol[0] != '\0';
		l->proxy_timeout = l->s.postscreen_upstream_proxy_timeout;
	} else {
		l->proxy = l->s.smtpd_upstream_proxy_protocol[0] != '\0';
		l->proxy_timeout = l->s.smtpd_upstream_proxy_timeout;
	}
	l->max_sessions = svc->maxproc > 0 ? (unsigned)svc->maxproc
					   : (unsigned)l->s.default_process_limit;
	build_replies(l);
	l->svc = svc;
	if (strcmp(svc->command, "postscreen") == 0 && srv->check_only) {
		/* facteur check: the same parsing, no cache directory made */
		if (postscreen_check_config(l->cfg, &l->s, l->service, err) < 0)
			goto fail;
	} else if (strcmp(svc->command, "postscreen") == 0 &&
		   (l->ps = postscreen_new(l, l->cfg, err)) == NULL) {
		goto fail;
	}
	l->key = xasprintf("%s|%s|%s|%s", svc->service, svc->host,
			   svc->host[0] ? "" : l->s.inet_interfaces,
			   l->s.inet_protocols);
	return l;
fail:
	smtpd_listener_free(&l);
	return NULL;
}

int
smtpd_listener_check_proxy(const struct settings *s,
			   const struct master_service *svc, struct errbuf *err)
{
	int ps = strcmp(svc->command, "postscreen") == 0;
	const char *name = ps ? "postscreen_upstream_proxy_protocol"
			      : "smtpd_upstream_proxy_protocol";
	const char *v = ps ? s->postscreen_upstream_proxy_protocol
			   : s->smtpd_upstream_proxy_protocol;

	if (ps && s->smtpd_upstream_proxy_protocol[0] != '\0') {
		errbuf_set(err, "%s: smtpd_upstream_proxy_protocol on a postscreen "
			   "listener: the SMTP sessions behind postscreen get no "
			   "header (set postscreen_upstream_proxy_protocol)",
			   svc->service);
		return -1;
	}
	if (v[0] != '\0' && strcmp(v, "haproxy") != 0) {
		errbuf_set(err, "%s: %s = %s: unsupported (expected haproxy, "
			   "or empty)", svc->service, name, v);
		return -1;
	}
	return 0;
}

int
smtpd_listener_bind(struct smtpd_listener *l, struct errbuf *err)
{
	return listen_bind_service(l->service, l->svc, l->s.inet_interfaces,
				   l->s.inet_protocols, 1024, &l->fds,
				   &l->nfds, err);
}

struct smtpd_listener *
smtpd_listener_new(struct smtpd_server *srv, const struct config *base_cfg,
		   const struct master_service *svc, struct errbuf *err)
{
	struct smtpd_listener *l = smtpd_listener_prepare(srv, base_cfg, svc,
							  NULL, err);

	if (l != NULL && smtpd_listener_bind(l, err) < 0)
		smtpd_listener_free(&l);
	return l;
}

int
smtpd_listener_same_sockets(const struct smtpd_listener *l,
			    const struct smtpd_listener *old)
{
	return old->nfds > 0 && strcmp(l->key, old->key) == 0;
}

int
smtpd_listener_same_service(const struct smtpd_listener *l,
			    const struct smtpd_listener *old)
{
	return old->nfds > 0 && strcmp(l->service, old->service) == 0;
}

void
smtpd_listener_take_sockets(struct smtpd_listener *l, struct smtpd_listener *old)
{
	for (size_t i = 0; i < l->nfds; i++)
		if (l->fds[i] >= 0)
			close(l->fds[i]);
	free(l->fds);
	free(l->evl);
	l->fds = old->fds;
	l->evl = old->evl;
	l->nfds = old->nfds;
	old->fds = NULL;
	old->evl = NULL;
	old->nfds = 0;
	if (old->pause)
		evtimer_del(old->pause);
	/* accepted connections now go to l */
	for (size_t i = 0; l->evl != NULL && i < l->nfds; i++)
		if (l->evl[i] != NULL)
			evconnlistener_set_cb(l->evl[i], listener_accept, l);
}

/* Retired listeners still finishing sessions (or postscreen checks). */
static struct smtpd_listener *retired_head;


void
smtpd_listener_sweep(void)
{
	struct smtpd_listener *l, *next;

	for (l = retired_head; l != NULL; l = next) {
		next = l->rnext;
		if (listener_idle(l))
			smtpd_listener_free(&l);
	}
}

void
smtpd_listener_shutdown_retired(void)
{
	for (struct smtpd_listener *l = retired_head; l != NULL; l = l->rnext)
		smtpd_listener_shutdown(l);
}

unsigned
smtpd_listener_retired_count(void)
{
	unsigned n = 0;

	for (struct smtpd_listener *l = retired_head; l != NULL; l = l->rnext)
		n++;
	return n;
}

void
smtpd_listener_close_sockets(struct smtpd_listener *l)
{
	smtpd_listener_stop(l);
	for (size_t i = 0; i < l->nfds; i++) {
		if (l->evl != NULL && l->evl[i] != NULL)
			evconnlistener_free(l->evl[i]);
		else if (l->fds[i] >= 0)
			close(l->fds[i]);
	}
	free(l->evl);
	free(l->fds);
	l->evl = NULL;
	l->fds = NULL;
	l->nfds = 0;
}

void
smtpd_listener_retire(struct smtpd_listener **lp)
{
	struct smtpd_listener *l = *lp;

	if (l == NULL)
		return;
	*lp = NULL;
	smtpd_listener_close_sockets(l);
	l->retired = true;
	l->rnext = retired_head;
	if (retired_head != NULL)
		retired_head->rprev = l;
	retired_head = l;
	if (listener_idle(l))
		smtpd_listener_free(&l);
}

void
smtpd_listener_session_add(struct smtpd_listener *l, struct smtpd_session *s)
{
	s->lprev = NULL;
	s->lnext = l->sessions;
	if (l->sessions != NULL)
		l->sessions->lprev = s;
	l->sessions = s;
	l->nsessions++;
	l->srv->nsessions++;
	l->srv->smtp_sessions++;
	l->srv->connections++;
}

void
smtpd_listener_session_gone(struct smtpd_listener *l, struct smtpd_session *s)
{
	if (s->lprev != NULL)
		s->lprev->lnext = s->lnext;
	else if (l->sessions == s)
		l->sessions = s->lnext;
	if (s->lnext != NULL)
		s->lnext->lprev = s->lprev;
	s->lnext = s->lprev = NULL;
	l->nsessions--;
	l->srv->nsessions--;
	l->srv->smtp_sessions--;
	if (l->retired && listener_idle(l))
		smtpd_listener_free(&l);
}

void
smtpd_listener_hold(struct smtpd_listener *l)
{
	l->njobs++;
}

void
smtpd_listener_release(struct smtpd_listener *l)
{
	if (l->njobs > 0)
		l->njobs--;
	if (l->retired && listener_idle(l))
		smtpd_listener_free(&l);
}

void
smtpd_listener_shutdown(struct smtpd_listener *l)
{
	struct smtpd_session *s, *next;

	for (s = l->sessions; s != NULL; s = next) {
		next = s->lnext;	/* s may be freed */
		smtpd_session_shutdown(s);
	}
}

const char *
smtpd_listener_service(const struct smtpd_listener *l)
{
	return l->service;
}

const char *
smtpd_listener_command(const struct smtpd_listener *l)
{
	return l->ps != NULL ? "postscreen" : "smtpd";
}

size_t
smtpd_listener_addresses(const struct smtpd_listener *l, char **out, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < l->nfds; i++) {
		int fd = l->evl != NULL && l->evl[i] != NULL
			 ? evconnlistener_get_fd(l->evl[i]) : l->fds[i];
		char *a = status_sockname(fd);

		if (a == NULL)
			continue;
		if (k < n)
			out[k] = a;
		else
			free(a);
		k++;
	}
	return k;
}

int
smtpd_listener_start(struct smtpd_listener *l, struct errbuf *err)
{
	if (l->evl != NULL) {		/* sockets taken over by a reload */
		for (size_t i = 0; i < l->nfds; i++)
			if (l->evl[i] != NULL)
				evconnlistener_enable(l->evl[i]);
		return 0;
	}
	l->evl = xcalloc(l->nfds ? l->nfds : 1, sizeof(*l->evl));
	for (size_t i = 0; i < l->nfds; i++) {
		l->evl[i] = evconnlistener_new(l->srv->base, listener_accept, l,
					       LEV_OPT_CLOSE_ON_FREE |
					       LEV_OPT_CLOSE_ON_EXEC, -1,
					       l->fds[i]);
		if (l->evl[i] == NULL) {
			errbuf_set(err, "%s: cannot listen", l->service);
			return -1;
		}
		l->fds[i] = -1;		/* owned by the evconnlistener now */
		evconnlistener_set_error_cb(l->evl[i], listener_error);
	}
	return 0;
}

void
smtpd_listener_stop(struct smtpd_listener *l)
{
	if (l->pause)
		evtimer_del(l->pause);
	for (size_t i = 0; l->evl != NULL && i < l->nfds; i++)
		if (l->evl[i] != NULL)
			evconnlistener_disable(l->evl[i]);
}

unsigned
smtpd_listener_sessions(const struct smtpd_listener *l)
{
	return l->nsessions;
}

unsigned
smtpd_listener_max_sessions(const struct smtpd_listener *l)
{
	return l->max_sessions;
}

void
smtpd_listener_free(struct smtpd_listener **lp)
{
	struct smtpd_listener *l = *lp;

	if (l == NULL)
		return;
	if (l->retired) {
		if (l->rprev != NULL)
			l->rprev->rnext = l->rnext;
		else if (retired_head == l)
			retired_head = l->rnext;
		if (l->rnext != NULL)
			l->rnext->rprev = l->rprev;
	}
	while (l->proxies != NULL)
		proxy_free(l->proxies, 1);
	postscreen_free(&l->ps);
	for (size_t i = 0; i < l->nfds; i++) {
		if (l->evl != NULL && l->evl[i] != NULL)
			evconnlistener_free(l->evl[i]);
		else if (l->fds[i] >= 0)
			close(l->fds[i]);
	}
	if (l->pause)
		event_free(l->pause);
	free(l->evl);
	free(l->fds);
	smtpd_check_lists_free(&l->checks);
	smtpd_limits_conf_free(l);
	cleanup_checks_free(&l->cleanup);
	if (l->mynetworks)
		netlist_free(&l->mynetworks);
	if (l->resolve)
		resolve_ctx_free(&l->resolve);
	bcc_ctx_free(&l->bcc);
	settings_free(&l->s);
	config_free(&l->cfg);
	free(l->banner);
	free(l->ehlo_reply);
	free(l->ehlo_reply_tls);
	if (l->tls_ref != NULL && --l->tls_ref->refs == 0) {
		struct tls_server *ts = l->tls_ref->p;

		tls_server_free(&ts);
		free(l->tls_ref);
	} else if (l->tls_ref == NULL) {
		tls_server_free(&l->tls);
	}
	if (l->passdb_ref != NULL && --l->passdb_ref->refs == 0) {
		struct passdb *pd = l->passdb_ref->p;

		passdb_free(&pd);
		free(l->passdb_ref);
	} else if (l->passdb_ref == NULL && l->passdb) {
		passdb_free(&l->passdb);
	}
	free(l->key);
	free(l->service);
	free(l);
	*lp = NULL;
}
