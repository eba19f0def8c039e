/*
 * cli_check.c - the part of `facteur check` that builds what facteurd
 * builds (see cli_check.h), so that every configuration error facteurd
 * would stop on at start-up, or refuse a reload for, is found by check
 * too, in the daemon's own words: the same constructors run
 * (smtpd_listener_prepare on a check-only server, managesieve_prepare,
 * resolve_ctx_new, qmgr_check_config) in the same order, and the listen
 * addresses are resolved as listen.c binds them (listen_check_service).
 * The dates of the certificates a TLS listener loads are looked at too:
 * facteurd serves an expired one, check calls it an error (and one that
 * expires within 30 days a warning).
 * Must not: bind a socket, start a thread or an event, create or change
 * anything on disk (the server is marked check_only: no postscreen cache
 * directory; the queue manager leaves queue_directory alone).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <event2/event.h>

#include "core/cli_check.h"
#include "backends/table.h"
#include "core/lib/errbuf.h"
#include "core/lib/strlist.h"
#include "core/log.h"
#include "core/milter.h"
#include "core/listen.h"
#include "core/managesieve.h"
#include "core/qmgr.h"
#include "core/resolve.h"
#include "core/smtpd_listener.h"
#include "core/smtpd_server.h"
#include "core/status_http.h"
#include "delivery/smtp_tls.h"

/* ---- certificate dates (facteurd loads an expired one without a word) ---- */

#define CERT_SOON_DAYS 30

struct cert_walk {
	cli_check_report_fn *report;
	void                *arg;
	const struct master_service *svc;
	struct strlist      *seen;	/* files already looked at */
	int                  errors;
};

static void
asn1_time_text(const ASN1_TIME *t, char *out, size_t n)
{
	BIO *b = BIO_new(BIO_s_mem());
	int len = 0;

	out[0] = '\0';
	if (b == NULL)
		return;
	if (ASN1_TIME_print(b, t) > 0)
		len = BIO_read(b, out, (int)n - 1);
	out[len > 0 ? len : 0] = '\0';
	BIO_free(b);
}

/* Every certificate of one PEM file: expired is an error, soon a warning. */
static void
cert_file_dates(struct cert_walk *w, const char *path)
{
	FILE *fp;
	X509 *x;

	if (*path == '\0' || strlist_contains(w->seen, path))
		return;
	strlist_add(w->seen, path);
	if ((fp = fopen(path, "r")) == NULL)
		return;		/* unreadable: the TLS set-up said so */
	while ((x = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL) {
		const ASN1_TIME *na = X509_get0_notAfter(x);
		char cn[256] = "", when[64], msg[1024];
		int days = 0, secs = 0;

		X509_NAME_get_text_by_NID(X509_get_subject_name(x),
					  NID_commonName, cn, sizeof(cn));
		asn1_time_text(na, when, sizeof(when));
		if (ASN1_TIME_diff(&days, &secs, NULL, na) == 1) {
			if (days < 0 || (days == 0 && secs <= 0)) {
				snprintf(msg, sizeof(msg), "%s: certificate \"%s\" "
					 "expired on %s: clients that verify it "
					 "refuse TLS", path, cn, when);
				w->report(w->arg, w->svc, msg);
				w->errors++;
			} else if (days < CERT_SOON_DAYS) {
				log_write(NULL, NULL, LOG_LVL_WARNING, "%s: "
					  "certificate \"%s\" expires on %s (in %d "
					  "day%s)", path, cn, when, days,
					  days == 1 ? "" : "s");
			}
		}
		X509_free(x);
	}
	ERR_clear_error();	/* the end of the file, or a key block */
	fclose(fp);
}

static void
cert_files_dates(struct cert_walk *w, const char *files)
{
	struct strlist v;

	strlist_init(&v);
	(void)strlist_split(&v, files ? files : "");
	for (size_t i = 0; i < v.n; i++)
		cert_file_dates(w, v.v[i]);
	strlist_free(&v);
}

static int
sni_entry_dates(const char *key, const char *value, void *arg)
{
	cert_files_dates(arg, value);
	return 0;
}

/* A listener's certificates: its own files and those its SNI maps name. */
static int
check_cert_dates(const struct settings *s, const struct master_service *svc,
		 struct strlist *seen, cli_check_report_fn *report, void *arg)
{
	struct cert_walk w = { report, arg, svc, seen, 0 };
	struct strlist maps;

	cert_files_dates(&w, s->smtpd_tls_cert_file);
	cert_files_dates(&w, s->smtpd_tls_chain_files);
	strlist_init(&maps);
	(void)strlist_split(&maps, s->tls_server_sni_maps ? s->tls_server_sni_maps
			    : "");
	for (size_t i = 0; i < maps.n; i++) {
		struct errbuf e;
		struct table *t;

		errbuf_clear(&e);
		if ((t = table_open(maps.v[i], 0, &e)) == NULL)
			continue;	/* the TLS set-up said so */
		(void)table_dump(t, sni_entry_dates, &w, &e);
		table_close(&t);
	}
	strlist_free(&maps);
	return w.errors;
}

/* The addresses a managesieved line would bind (managesieve_bind). */
static int
check_addresses(const struct config *c, const struct master_service *svc,
		struct errbuf *err)
{
	struct config *lc = config_with_service(c, svc, err);
	struct settings s;
	int rc = -1;

	memset(&s, 0, sizeof(s));
	if (lc != NULL && settings_load(&s, lc, err) == 0)
		rc = listen_check_service(svc->service, svc, s.inet_interfaces,
					  s.inet_protocols, err);
	settings_free(&s);
	config_free(&lc);
	return rc;
}

int
cli_check_daemon(const struct config *c, const struct settings *s,
		 cli_check_report_fn *report, void *arg)
{
	const struct master_cf *m = config_master(c);
	struct smtpd_server srv;
	struct resolve_ctx *rctx;
	struct errbuf err;
	int errors = 0;
	size_t nsmtpd = 0;
	struct strlist seen;

	strlist_init(&seen);
	memset(&srv, 0, sizeof(srv));
	srv.check_only = true;
	srv.queue_dir = s->queue_directory;
	/* for the resolvers' events (never dispatched) */
	srv.base = event_base_new();
	if (srv.base == NULL) {
		report(arg, NULL, "cannot create an event loop");
		return 1;
	}
	/* facteurd.c main() and daemon_reload(): the master.cf services */
	for (size_t i = 0; i < m->n; i++) {
		const struct master_service *svc = &m->v[i];

		errbuf_clear(&err);
		if (strcmp(svc->command, "managesieved") == 0) {
			struct managesieve *ms = managesieve_prepare(&srv, c, svc,
								     &err);

			if (ms == NULL) {
				report(arg, svc, errbuf_str(&err));
				errors++;
			} else if (check_addresses(c, svc, &err) < 0) {
				report(arg, svc, errbuf_str(&err));
				errors++;
			}
			managesieve_free(&ms);
			continue;
		}
		if (strcmp(svc->command, "smtpd") == 0 ||
		    strcmp(svc->command, "postscreen") == 0) {
			struct smtpd_listener *l;

			nsmtpd++;
			l = smtpd_listener_prepare(&srv, c, svc, NULL, &err);
			if (l == NULL) {
				report(arg, svc, errbuf_str(&err));
				errors++;
			} else if (listen_check_service(l->service, svc,
							l->s.inet_interfaces,
							l->s.inet_protocols,
							&err) < 0) {
				report(arg, svc, errbuf_str(&err));
				errors++;
			}
			if (l != NULL && l->tls != NULL)
				errors += check_cert_dates(&l->s, svc, &seen,
							   report, arg);
			smtpd_listener_free(&l);
		}
	}
	if (nsmtpd == 0) {
		report(arg, NULL, "no smtpd service in master.cf: nothing to do");
		errors++;
	}
	errbuf_clear(&err);
	if (s->facteur_metrics_listen[0] != '\0' &&
	    status_http_check(s->facteur_metrics_listen, &err) < 0) {
		report(arg, NULL, errbuf_str(&err));
		errors++;
	}
	{
		int facility;

		errbuf_clear(&err);
		if (log_facility_parse(s->syslog_facility, &facility, &err) < 0) {
			report(arg, NULL, errbuf_str(&err));
			errors++;
		}
		errbuf_clear(&err);
		if (non_smtpd_milters_check(s, &err) < 0) {
			report(arg, NULL, errbuf_str(&err));
			errors++;
		}
	}
	/* the SMTP client's certificate, read as facteurd reads it at start */
	errbuf_clear(&err);
	if (smtp_tls_client_cert_load(s->smtp_tls_cert_file,
				      s->smtp_tls_key_file,
				      s->smtp_tls_chain_files, &err) < 0) {
		report(arg, NULL, errbuf_str(&err));
		errors++;
	}
	/* the queue manager, with the resolver it delivers by */
	errbuf_clear(&err);
	if ((rctx = resolve_ctx_new(s, &err)) == NULL) {
		report(arg, NULL, errbuf_str(&err));
		errors++;
	} else if (qmgr_check_config(srv.base, s, rctx, &err) < 0) {
		report(arg, NULL, errbuf_str(&err));
		errors++;
	}
	resolve_ctx_free(&rctx);
	event_base_free(srv.base);
	strlist_free(&seen);
	return errors;
}
