/*
 * smtp_probe.c - routing and SMTP/LMTP dialogues of address verification
 * probes (see smtp_probe.h). The client settings are main.cf's (timeouts,
 * smtp_helo_name, smtp_tls_security_level with its CA files, bind
 * addresses, inet_protocols, smtp_dns_support_level), built once here;
 * the dialogue is delivery/smtp_client.c with req.probe set.
 * Must not: reuse or park connections (a probe says QUIT), or be called
 * from a worker except smtp_probe_route.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/ssl.h>

#include "backends/table.h"
#include "core/config.h"
#include "core/dns.h"
#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"
#include "core/params.h"
#include "delivery/smtp_client.h"
#include "delivery/smtp_probe.h"

struct smtp_probe_run {
	struct smtp_probe     *p;
	struct smtp_req        req;
	struct smtp_rcpt       rcpt;
	struct smtp_sess      *sess;
	struct transport       t;
	char                  *addr, *id;
	smtp_probe_done       *done;
	void                  *arg;
	struct smtp_probe_run *prev, *next;
};

struct smtp_probe {
	struct event_base     *base;
	struct dns            *dns;
	struct smtp_client_cfg scfg;
	char                  *helo, *syslog_name, *bind4, *bind6;
	char                  *tls_protocols, *tls_mandatory_protocols;
	char                  *sender;
	struct table_list     *maps;		/* address_verify_transport_maps */
	struct table_list     *sd_relayhost, *sd_transport;	/* sender-
				 * dependent maps, with the probe's sender */
	char                  *null_rh_key, *null_tr_key;
	struct transport_cfg   tcfg;
	char                  *virtual_transport, *relay_transport;
	char                  *default_transport, *relayhost;
	struct transport_svc  *svcs;
	size_t                 nsvcs;
	struct smtp_probe_run *runs;
	unsigned               nruns;
};

static char *
dup_or_null(const char *v)
{
	return v != NULL && *v ? xstrdup(v) : NULL;
}

static const char *
cfg_get(const struct settings *s, const char *name, const char *def)
{
	const char *v = s->cfg ? config_get(s->cfg, name) : NULL;

	return v != NULL ? v : def;
}

static void
build_svcs(struct smtp_probe *p, const struct settings *s)
{
	const struct master_cf *m;

	if (s->cfg == NULL)
		return;
	m = config_transports(s->cfg);
	if (m == NULL || m->n == 0)
		return;
	p->svcs = xcalloc(m->n, sizeof(*p->svcs));
	for (size_t i = 0; i < m->n; i++) {
		const char *c = m->v[i].command;
		struct transport_svc *ts = &p->svcs[i];

		snprintf(ts->name, sizeof(ts->name), "%s", m->v[i].service);
		ts->kind = transport_kind_of(c);
		ts->maxproc = m->v[i].maxproc;
	}
	p->nsvcs = m->n;
}

struct smtp_probe *
smtp_probe_new(struct event_base *base, const struct settings *s,
	       struct errbuf *err)
{
	struct smtp_probe *p = xcalloc(1, sizeof(*p));
	const char *v, *origin;

	p->base = base;
	if ((p->dns = dns_new(base, s->facteur_dns_servers, err)) == NULL)
		goto fail;
	p->maps = table_list_open(cfg_get(s, "address_verify_transport_maps",
					  s->transport_maps ? s->transport_maps
					  : ""), TABLE_F_FOLD, err);
	if (p->maps == NULL) {
		char m[sizeof(err->msg)];

		snprintf(m, sizeof(m), "%s", errbuf_str(err));
		errbuf_set(err, "address_verify_transport_maps: %s", m);
		goto fail;
	}
	p->virtual_transport = dup_or_null(cfg_get(s,
		"address_verify_virtual_transport", s->virtual_transport));
	p->relay_transport = dup_or_null(cfg_get(s,
		"address_verify_relay_transport", s->relay_transport));
	p->default_transport = dup_or_null(cfg_get(s,
		"address_verify_default_transport", s->default_transport));
	p->relayhost = dup_or_null(cfg_get(s, "address_verify_relayhost",
					   s->relayhost ? s->relayhost : ""));
	build_svcs(p, s);
	p->sd_relayhost = table_list_open(cfg_get(s,
		"address_verify_sender_dependent_relayhost_maps",
		s->sender_dependent_relayhost_maps
		? s->sender_dependent_relayhost_maps : ""), TABLE_F_FOLD, err);
	if (p->sd_relayhost == NULL)
		goto fail_sd;
	p->sd_transport = table_list_open(cfg_get(s,
		"address_verify_sender_dependent_default_transport_maps",
		s->sender_dependent_default_transport_maps
		? s->sender_dependent_default_transport_maps : ""), TABLE_F_FOLD,
		err);
	if (p->sd_transport == NULL)
		goto fail_sd;
	p->null_rh_key = dup_or_null(s->empty_address_relayhost_maps_lookup_key);
	p->null_tr_key = dup_or_null(
		s->empty_address_default_transport_maps_lookup_key);
	p->tcfg.sd_relayhost_maps = p->sd_relayhost;
	p->tcfg.sd_transport_maps = p->sd_transport;
	p->tcfg.sd_relayhost_null_key = p->null_rh_key;
	p->tcfg.sd_transport_null_key = p->null_tr_key;
	p->tcfg.maps = p->maps;
	p->tcfg.svcs = p->svcs;
	p->tcfg.nsvcs = p->nsvcs;
	p->tcfg.virtual_transport = p->virtual_transport;
	p->tcfg.relay_transport = p->relay_transport;
	p->tcfg.default_transport = p->default_transport;
	p->tcfg.relayhost = p->relayhost;

	v = cfg_get(s, "address_verify_sender", "double-bounce");
	origin = s->myorigin && *s->myorigin ? s->myorigin
		 : s->myhostname ? s->myhostname : "localhost";
	if (*v == '\0' || strcmp(v, "<>") == 0)
		p->sender = xstrdup("");
	else if (strchr(v, '@') != NULL)
		p->sender = xstrdup(v);
	else
		p->sender = xasprintf("%s@%s", v, origin);

	p->helo = xstrdup(s->smtp_helo_name && *s->smtp_helo_name
			  ? s->smtp_helo_name : s->myhostname ? s->myhostname
			  : "localhost");
	p->syslog_name = dup_or_null(s->syslog_name);
	p->scfg.helo_name = p->helo;
	p->scfg.syslog_name = p->syslog_name;
	p->scfg.t_connect = s->smtp_connect_timeout;
	p->scfg.t_helo = s->smtp_helo_timeout;
	p->scfg.t_mail = s->smtp_mail_timeout;
	p->scfg.t_rcpt = s->smtp_rcpt_timeout;
	p->scfg.t_data_init = s->smtp_data_init_timeout;
	p->scfg.t_data_xfer = s->smtp_data_xfer_timeout;
	p->scfg.t_data_done = s->smtp_data_done_timeout;
	p->scfg.t_quit = s->smtp_quit_timeout;
	p->scfg.t_rset = s->smtp_rset_timeout;
	if (smtp_tls_level_parse(s->smtp_tls_security_level
				 ? s->smtp_tls_security_level : "",
				 &p->scfg.tls_level, err) < 0
	    || smtp_tls_ctx_new(p->scfg.tls_level, s->smtp_tls_CAfile,
				s->smtp_tls_CApath, &p->scfg.tls_ctx, err) < 0
	    || smtp_dns_support_parse(s->smtp_dns_support_level,
				      &p->scfg.dns_support, err) < 0)
		goto fail;
	p->tls_protocols = dup_or_null(s->smtp_tls_protocols);
	p->tls_mandatory_protocols = dup_or_null(s->smtp_tls_mandatory_protocols);
	p->scfg.tls_protocols = p->tls_protocols;
	p->scfg.tls_mandatory_protocols = p->tls_mandatory_protocols;
	p->bind4 = dup_or_null(s->smtp_bind_address);
	p->bind6 = dup_or_null(s->smtp_bind_address6);
	p->scfg.bind4 = p->bind4;
	p->scfg.bind6 = p->bind6;
	p->scfg.bind_enforce = s->smtp_bind_address_enforce;
	if (s->inet_protocols && strcasestr(s->inet_protocols, "all") == NULL) {
		p->scfg.no_ipv4 = strcasestr(s->inet_protocols, "ipv4") == NULL;
		p->scfg.no_ipv6 = strcasestr(s->inet_protocols, "ipv6") == NULL;
		if (p->scfg.no_ipv4 && p->scfg.no_ipv6)
			p->scfg.no_ipv4 = p->scfg.no_ipv6 = false;
	}
	p->scfg.mime_downgrade = false;	/* no content */
	return p;
fail_sd:
	{
		char m[sizeof(err->msg)];

		snprintf(m, sizeof(m), "%s", errbuf_str(err));
		errbuf_set(err, "address_verify_sender_dependent_%s: %s",
			   p->sd_relayhost == NULL ? "relayhost_maps"
			   : "default_transport_maps", m);
	}
fail:
	smtp_probe_free(&p);
	return NULL;
}

static void
run_free(struct smtp_probe_run *r)
{
	free(r->rcpt.text);
	free(r->addr);
	free(r->id);
	free(r);
}

void
smtp_probe_free(struct smtp_probe **pp)
{
	struct smtp_probe *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	while (p->runs != NULL) {
		struct smtp_probe_run *r = p->runs;

		p->runs = r->next;
		smtp_cancel(r->sess);
		run_free(r);
	}
	dns_free(&p->dns);
	table_list_free(&p->maps);
	table_list_free(&p->sd_relayhost);
	table_list_free(&p->sd_transport);
	free(p->null_rh_key);
	free(p->null_tr_key);
	if (p->scfg.tls_ctx)
		SSL_CTX_free(p->scfg.tls_ctx);
	free(p->svcs);
	free(p->helo);
	free(p->syslog_name);
	free(p->bind4);
	free(p->bind6);
	free(p->tls_protocols);
	free(p->tls_mandatory_protocols);
	free(p->sender);
	free(p->virtual_transport);
	free(p->relay_transport);
	free(p->default_transport);
	free(p->relayhost);
	free(p);
}

const char *
smtp_probe_sender(const struct smtp_probe *p)
{
	return p->sender;
}

void
smtp_probe_route(struct smtp_probe *p, const char *addr,
		 enum resolve_class cls, struct smtp_probe_route *r)
{
	struct errbuf err;
	int rc;

	memset(r, 0, sizeof(*r));
	errbuf_clear(&err);
	rc = transport_find_sender(&p->tcfg, p->sender, addr, cls, &r->t, &err);
	if (rc < 0) {
		r->way = SMTP_PROBE_DEFER;
		snprintf(r->text, sizeof(r->text), "%s", rc == -1
			 ? "transport_maps lookup failure"
			 : errbuf_str(&err));
		return;
	}
	switch (r->t.kind) {
	case TRANSPORT_SMTP:
	case TRANSPORT_LMTP:
		r->way = SMTP_PROBE_REMOTE;
		break;
	case TRANSPORT_ERROR:
		r->way = SMTP_PROBE_BOUNCE;
		snprintf(r->text, sizeof(r->text), "%s", r->t.text[0]
			 ? r->t.text : "mail delivery is disabled");
		break;
	case TRANSPORT_VIRTUAL:
		r->way = SMTP_PROBE_OK;
		snprintf(r->text, sizeof(r->text), "delivers to maildir");
		break;
	case TRANSPORT_DISCARD:
		r->way = SMTP_PROBE_OK;
		snprintf(r->text, sizeof(r->text), "delivers to discard");
		break;
	case TRANSPORT_PIPE:
		r->way = SMTP_PROBE_OK;
		snprintf(r->text, sizeof(r->text), "delivers to command: %s",
			 r->t.name);
		break;
	case TRANSPORT_OTHER:
	default:
		r->way = SMTP_PROBE_DEFER;
		snprintf(r->text, sizeof(r->text), "mail transport unavailable: "
			 "%s", r->t.name);
		break;
	}
}

static void
run_done(void *arg, struct smtp_req *req)
{
	struct smtp_probe_run *r = arg;
	struct smtp_probe *p = r->p;

	if (r->prev)
		r->prev->next = r->next;
	else
		p->runs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	p->nruns--;
	r->done(r->arg, r->rcpt.st, r->rcpt.dsn, r->rcpt.text ? r->rcpt.text
		: "probe ended without a reply", req->relay, req->t_conn,
		req->t_xfer);
	run_free(r);
}

struct smtp_probe_run *
smtp_probe_start(struct smtp_probe *p, const struct transport *t,
		 const char *addr, const char *id, smtp_probe_done *done,
		 void *arg)
{
	struct smtp_probe_run *r = xcalloc(1, sizeof(*r));

	r->p = p;
	r->t = *t;
	r->addr = xstrdup(addr);
	r->id = xstrdup(id);
	r->done = done;
	r->arg = arg;
	r->rcpt.addr = r->addr;
	r->req.host = r->t.host;
	r->req.port = r->t.port;
	r->req.mx = r->t.mx;
	r->req.lmtp = r->t.kind == TRANSPORT_LMTP;
	r->req.unix_sock = r->t.unix_sock;
	r->req.id = r->id;
	r->req.sender = p->sender;
	r->req.content = "";
	r->req.len = 0;
	r->req.rcpt = &r->rcpt;
	r->req.nrcpt = 1;
	r->req.probe = true;
	r->next = p->runs;
	if (p->runs)
		p->runs->prev = r;
	p->runs = r;
	p->nruns++;
	r->sess = smtp_deliver(p->base, p->dns, &p->scfg, &r->req, run_done, r);
	return r;
}

unsigned
smtp_probe_active(const struct smtp_probe *p)
{
	return p->nruns;
}
