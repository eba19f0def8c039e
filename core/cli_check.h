/*
 * cli_check.h - `facteur check`'s build of the running parts: what
 * facteurd builds at start-up and on a reload (core/cli_check.c).
 */
#ifndef FACTEUR_CLI_CHECK_H
#define FACTEUR_CLI_CHECK_H
#include "core/config.h"
#include "core/params.h"

/*
 * One error facteurd would stop on (start-up) or refuse (reload) with:
 * svc is the master.cf service it belongs to (NULL: main.cf as a whole),
 * msg facteurd's own words.
 */
typedef void cli_check_report_fn(void *arg, const struct master_service *svc,
				 const char *msg);

/*
 * Builds, with the constructors facteurd uses, every listener of
 * master.cf (smtpd and postscreen: settings with their -o overrides,
 * restrictions, maps, limits, TLS contexts, passdb; managesieved), the
 * resolver and the queue manager's settings (transport and TLS policy
 * maps, SMTP client TLS, SASL, source addresses), then frees them; the
 * listen addresses are resolved as listen.c would bind them. Binds no
 * socket, starts nothing and changes nothing on disk.
 * s: c's settings. Returns the number of errors reported.
 */
int cli_check_daemon(const struct config *c, const struct settings *s,
		     cli_check_report_fn *report, void *arg);

#endif
