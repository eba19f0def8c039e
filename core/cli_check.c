/*
 * cli_check.c - the part of `facteur check` that builds what facteurd
 * builds (see cli_check.h), so that every configuration error facteurd
 * would stop on at start-up, or refuse a reload for, is found by check
 * too, in the daemon's own words: the same constructors run
 * (smtpd_listener_prepare on a check-only server, managesieve_prepare,
 * resolve_ctx_new, qmgr_check_config) in the same order, and the listen
 * addresses are resolved as listen.c binds them (listen_check_service).
 * Must not: bind a socket, start a thread or an event, create or change
 * anything on disk (the server is marked check_only: no postscreen cache
 * directory; the queue manager leaves queue_directory alone).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core/cli_check.h"
#include "core/lib/errbuf.h"
#include "core/listen.h"
#include "core/managesieve.h"
#include "core/qmgr.h"
#include "core/resolve.h"
#include "core/smtpd_listener.h"
#include "core/smtpd_server.h"

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
			smtpd_listener_free(&l);
		}
	}
	if (nsmtpd == 0) {
		report(arg, NULL, "no smtpd service in master.cf: nothing to do");
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
	return errors;
}
