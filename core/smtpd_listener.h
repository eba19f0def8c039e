/*
 * smtpd_listener.h - the listener object shared by smtpd_listener.c (bind,
 * accept, per-listener settings) and smtpd_session.c (the SMTP dialogue).
 * Internal to the SMTP server; other modules use smtpd_server.h.
 */
#ifndef FACTEUR_SMTPD_LISTENER_H
#define FACTEUR_SMTPD_LISTENER_H
#include <sys/socket.h>

#include "core/cleanup_headers.h"
#include "core/netlist.h"
#include "core/params.h"
#include "core/resolve.h"
#include "core/smtpd_check.h"
#include "core/smtpd_server.h"
#include "core/tls.h"

struct passdb;

struct evconnlistener;
struct event;

struct bcc_ctx;

struct smtpd_listener {
	struct smtpd_server        *srv;
	struct config              *cfg;	/* owned: base + overrides */
	struct settings             s;
	char                       *service;	/* master.cf field 1 */
	struct resolve_ctx         *resolve;
	struct bcc_ctx             *bcc;	/* always_bcc, *_bcc_maps (core/bcc.h) */
	struct netlist             *mynetworks;
	struct smtpd_check_lists    checks;
	struct cleanup_checks       cleanup;	/* header/body_checks */
	char                       *ehlo_reply;	/* precomputed 250- lines */
	char                       *ehlo_reply_tls;	/* the same inside TLS */
	struct tls_server          *tls;	/* NULL: no STARTTLS, no smtps */
	enum tls_level              tls_level;
	struct passdb              *passdb;	/* NULL: AUTH not enabled */
	bool                        auth_plain, auth_tls;	/* AUTH offered
							   before / inside TLS */
	unsigned                    sasl_mechs, sasl_mechs_tls;	/* the same:
					   SASL_MECH_BIT()s (auth/sasl.h) */
	char                       *banner;	/* "220 ..." */
	struct smtpd_limits_conf   *limits;	/* rate limits (smtpd_limits.c) */
	unsigned                    nsessions, max_sessions;
	int                        *fds;	/* bound sockets */
	struct evconnlistener     **evl;
	struct event               *pause;	/* accept back-off (EMFILE) */
	size_t                      nfds;
	struct postscreen          *ps;	/* master.cf "postscreen": screening
					   in front (core/postscreen.c) */
	char                       *key;	/* service + addresses: a reload
						   keeps the sockets of an equal key */
	struct smtpd_session       *sessions;	/* open ones (lnext/lprev) */
	bool                        retired;	/* replaced by a reload: freed
						   with its last session */
	const struct master_service *svc;	/* in cfg's master.cf */
	struct listener_ref        *tls_ref, *passdb_ref;	/* owners of tls,
						   passdb (shared on reload) */
	struct smtpd_listener      *rnext, *rprev;	/* retired list */
	/* PROXY protocol (smtpd_ or postscreen_upstream_proxy_protocol) */
	bool                        proxy;
	long long                   proxy_timeout;
	struct listener_proxy      *proxies;	/* headers being read */
	unsigned                    nproxies;
	unsigned                    njobs;	/* worker jobs that borrow it
						   (smtpd_listener_hold) */
};

/* smtpd_session.c: session list and end of life. */
struct smtpd_session;
void smtpd_listener_session_add(struct smtpd_listener *l,
				struct smtpd_session *s);
/* Unlinks s; frees a retired listener with its last session. */
void smtpd_listener_session_gone(struct smtpd_listener *l,
				 struct smtpd_session *s);
/*
 * A worker job that borrows l (its settings, resolve ctx, maps) and may
 * outlive the session that submitted it: hold l when submitting, release
 * it in the job's done callback (loop thread). A retired listener is
 * freed only when no session and no held job is left; release frees it.
 */
void smtpd_listener_hold(struct smtpd_listener *l);
void smtpd_listener_release(struct smtpd_listener *l);
/* facteurd stop: 421 and close now (or after a pending reply). */
void smtpd_session_shutdown(struct smtpd_session *s);

/* Called by the listener for each accepted connection (smtpd_session.c). */
void smtpd_session_start(struct smtpd_listener *l, int fd,
			 const struct sockaddr *sa, int salen);

#endif
