/*
 * smtpd_server.h - SMTP listeners and the sessions they accept.
 * A listener is one master.cf inet+smtpd line with its own settings view
 * (-o overrides), its maps and restriction lists. Sessions are event-driven
 * on the one libevent loop; blocking work goes to the worker pool.
 * Must not: block the loop (disk and blocking lookups go to workers).
 */
#ifndef FACTEUR_SMTPD_SERVER_H
#define FACTEUR_SMTPD_SERVER_H
#include <stdbool.h>
#include <sys/socket.h>

#include "core/config.h"
#include "core/lib/errbuf.h"
#include "core/params.h"

struct event_base;
struct worker_pool;
struct qmgr;

struct smtpd_server {
	struct event_base  *base;
	struct worker_pool *pool;
	struct qmgr        *qmgr;	/* may be NULL (tests) */
	char               *queue_dir;
	unsigned long       nsessions;	/* all listeners */
};

struct smtpd_listener;

/*
 * Prepares a listener for one master.cf service: settings with overrides,
 * maps, restrictions. Binds the sockets (as root, before the privilege
 * drop). NULL + err on any configuration or bind error.
 */
struct smtpd_listener *smtpd_listener_new(struct smtpd_server *srv,
					  const struct config *base_cfg,
					  const struct master_service *svc,
					  struct errbuf *err);
/* Starts accepting connections. */
int  smtpd_listener_start(struct smtpd_listener *l, struct errbuf *err);
void smtpd_listener_free(struct smtpd_listener **lp);
/* Stops accepting; open sessions go on. */
void smtpd_listener_stop(struct smtpd_listener *l);
/* Sessions still open on this listener. */
unsigned smtpd_listener_sessions(const struct smtpd_listener *l);

#endif
