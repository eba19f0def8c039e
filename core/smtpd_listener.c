/*
 * smtpd_listener.c - one SMTP listener per master.cf inet+smtpd line:
 * its settings view (-o overrides), maps, restriction lists, the banner and
 * EHLO reply, and the bound sockets (bound as root before the privilege
 * drop, accepted on the event loop).
 * Must not: run the SMTP dialogue (smtpd_session.c does).
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "core/lib/buf.h"
#include "core/lib/strlist.h"
#include "auth/passdb.h"
#include "core/lib/xmalloc.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/smtpd_limits.h"
#include "core/smtpd_listener.h"

static void
listener_accept(struct evconnlistener *evl, evutil_socket_t fd,
		struct sockaddr *sa, int salen, void *arg)
{
	smtpd_session_start(arg, fd, sa, salen);
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
		buf_puts(&b, "250-AUTH PLAIN LOGIN\r\n");
		if (l->s.broken_sasl_auth_clients)
			buf_puts(&b, "250-AUTH=PLAIN LOGIN\r\n");
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

/* 1 if the option list has noplaintext (our mechanisms are all plaintext);
 * -1 + err for an unknown option. */
static int
sasl_noplaintext(const char *param, const char *value, struct errbuf *err)
{
	static const char *const known[] = {
		"noanonymous", "noplaintext", "nodictionary", "noactive",
		"mutual_auth", "forward_secrecy",
	};
	struct strlist opts;
	int r = 0;

	strlist_init(&opts);
	strlist_split(&opts, value);
	for (size_t i = 0; i < opts.n && r >= 0; i++) {
		size_t k;

		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (strcasecmp(opts.v[i], known[k]) == 0)
				break;
		if (k == sizeof(known) / sizeof(known[0])) {
			errbuf_set(err, "%s: unknown option \"%s\" (expected "
				   "noanonymous, noplaintext, nodictionary, "
				   "noactive, mutual_auth, forward_secrecy)",
				   param, opts.v[i]);
			r = -1;
		} else if (k == 1) {
			r = 1;
		}
	}
	strlist_free(&opts);
	return r;
}

/* The passdb is opened here, as root (the file may be root-only). */
static int
setup_sasl(struct smtpd_listener *l, struct errbuf *err)
{
	struct errbuf e;
	int np, np_tls;

	if (!l->s.smtpd_sasl_auth_enable)
		return 0;
	errbuf_clear(&e);
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
	if ((np = sasl_noplaintext("smtpd_sasl_security_options",
				   l->s.smtpd_sasl_security_options, &e)) < 0 ||
	    (np_tls = sasl_noplaintext("smtpd_sasl_tls_security_options",
				       l->s.smtpd_sasl_tls_security_options,
				       &e)) < 0 ||
	    (l->passdb = passdb_open(l->s.smtpd_sasl_passdb, &e)) == NULL) {
		errbuf_set(err, "%s: %s", l->service, errbuf_str(&e));
		return -1;
	}
	l->auth_plain = !np && !l->s.smtpd_tls_auth_only &&
			!l->s.smtpd_tls_wrappermode;
	l->auth_tls = !np_tls && (l->tls != NULL);
	return 0;
}

/* Keys are read here, as root, before the privilege drop. */
static int
setup_tls(struct smtpd_listener *l, struct errbuf *err)
{
	struct errbuf e;

	errbuf_clear(&e);
	if (tls_server_level(&l->s, &l->tls_level, &e) < 0 ||
	    (l->tls_level != TLS_LEVEL_NONE &&
	     tls_server_new(&l->s, l->tls_level, &l->tls, &e) < 0)) {
		errbuf_set(err, "%s: %s", l->service, errbuf_str(&e));
		return -1;
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
smtpd_listener_new(struct smtpd_server *srv, const struct config *base_cfg,
		   const struct master_service *svc, struct errbuf *err)
{
	struct smtpd_listener *l = xcalloc(1, sizeof(*l));

	l->srv = srv;
	l->service = xstrdup(svc->service);
	l->cfg = config_with_service(base_cfg, svc, err);
	if (l->cfg == NULL)
		goto fail;
	if (settings_load(&l->s, l->cfg, err) < 0)
		goto fail;
	l->resolve = resolve_ctx_new(&l->s, err);
	if (l->resolve == NULL)
		goto fail;
	l->mynetworks = netlist_new(l->s.mynetworks, err);
	if (l->mynetworks == NULL)
		goto fail;
	if (smtpd_check_lists_compile(&l->checks, l->cfg, err) < 0)
		goto fail;
	if (smtpd_limits_conf_new(l, err) < 0)
		goto fail;
	if (cleanup_checks_open(&l->cleanup, &l->s, err) < 0)
		goto fail;
	if (setup_tls(l, err) < 0 || setup_sasl(l, err) < 0)
		goto fail;
	l->max_sessions = svc->maxproc > 0 ? (unsigned)svc->maxproc
					   : (unsigned)l->s.default_process_limit;
	build_replies(l);
	if (listen_bind_service(l->service, svc, l->s.inet_interfaces,
				l->s.inet_protocols, 1024, &l->fds, &l->nfds,
				err) < 0)
		goto fail;
	return l;
fail:
	smtpd_listener_free(&l);
	return NULL;
}

int
smtpd_listener_start(struct smtpd_listener *l, struct errbuf *err)
{
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

void
smtpd_listener_free(struct smtpd_listener **lp)
{
	struct smtpd_listener *l = *lp;

	if (l == NULL)
		return;
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
	settings_free(&l->s);
	config_free(&l->cfg);
	free(l->banner);
	free(l->ehlo_reply);
	free(l->ehlo_reply_tls);
	tls_server_free(&l->tls);
	if (l->passdb)
		passdb_free(&l->passdb);
	free(l->service);
	free(l);
	*lp = NULL;
}
