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
	unsigned long       nsessions;	/* all listeners (managesieved too) */
	unsigned long       smtp_sessions;	/* SMTP ones (stop waits for them) */
	bool                shutting_down;	/* stop bound reached: 421 */
	bool                check_only;	/* facteur check: listeners are
					   built to be freed; nothing on disk */
	/* counters for facteur status (loop thread) */
	unsigned long long  connections;	/* sessions accepted */
	unsigned long long  proxy_errors;	/* bad PROXY headers */
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
/*
 * The same without binding, for a reload (the sockets come from the
 * listener being replaced, or from smtpd_listener_bind). old (may be
 * NULL) is the listener of the same service: when the TLS key or the
 * passdb can no longer be read (root-only files, and we run as
 * mail_owner now) while their names did not change, l shares old's with
 * a warning instead of failing.
 */
struct smtpd_listener *smtpd_listener_prepare(struct smtpd_server *srv,
					      const struct config *base_cfg,
					      const struct master_service *svc,
					      struct smtpd_listener *old,
					      struct errbuf *err);
/* smtpd_upstream_proxy_protocol of a listener's settings (also for
 * facteur check): "" or haproxy, not on a postscreen line. -1 + err. */
int  smtpd_listener_check_proxy(const struct settings *s,
				const struct master_service *svc,
				struct errbuf *err);
/* Binds l's addresses (as the current user). -1 + err. */
int  smtpd_listener_bind(struct smtpd_listener *l, struct errbuf *err);
/* 1 if a reload may hand old's sockets to l (same service and addresses). */
int  smtpd_listener_same_sockets(const struct smtpd_listener *l,
				 const struct smtpd_listener *old);
/* 1 if both are the same master.cf service name. */
int  smtpd_listener_same_service(const struct smtpd_listener *l,
				 const struct smtpd_listener *old);
/* Moves the bound (maybe accepting) sockets of old to l. */
void smtpd_listener_take_sockets(struct smtpd_listener *l,
				 struct smtpd_listener *old);
/*
 * Replaced by a reload or stopped for good: closes the sockets it still
 * has; frees it now when no session is open, else with its last session
 * (which finishes on its settings). *lp is NULL afterwards.
 */
void smtpd_listener_retire(struct smtpd_listener **lp);
/* facteurd stop, after the bound: 421 to every session of l. */
void smtpd_listener_shutdown(struct smtpd_listener *l);
/* Closes l's sockets (stop: new connections are refused); l stays. */
void smtpd_listener_close_sockets(struct smtpd_listener *l);
/* Retired listeners: 421 to their sessions; free the idle ones (a
 * postscreen check may end without a session); how many remain. */
void smtpd_listener_shutdown_retired(void);
void smtpd_listener_sweep(void);
unsigned smtpd_listener_retired_count(void);
const char *smtpd_listener_service(const struct smtpd_listener *l);
/* "smtpd" or "postscreen" (master.cf command). */
const char *smtpd_listener_command(const struct smtpd_listener *l);
/* Bound addresses as "host:port" (the first n into out); count returned. */
size_t smtpd_listener_addresses(const struct smtpd_listener *l, char **out,
				size_t n);
/* Starts accepting connections (on new or taken-over sockets). */
int  smtpd_listener_start(struct smtpd_listener *l, struct errbuf *err);
void smtpd_listener_free(struct smtpd_listener **lp);
/* Stops accepting; open sessions go on. */
void smtpd_listener_stop(struct smtpd_listener *l);
/* Sessions still open on this listener. */
unsigned smtpd_listener_sessions(const struct smtpd_listener *l);
unsigned smtpd_listener_max_sessions(const struct smtpd_listener *l);

#endif
