/*
 * transport.h - which delivery agent and next hop a recipient goes to, with
 * Postfix's transport(5) syntax: transport_maps (full address, domain,
 * parent domains as ".domain", then "*"), else virtual_transport,
 * relay_transport or default_transport by address class, with relayhost as
 * the next hop of relay/default mail that names none.
 * Transport names: the built-in smtp, relay, virtual, lmtp, error and
 * discard, and every master.cf transport service (struct transport_svc:
 * "smtp-amavis unix ... smtp", "dovecot unix ... pipe"), which resolves to
 * its agent kind; a master.cf definition wins over the built-in name.
 * transport_maps lookups may block: call transport_find from a worker.
 * Must not: do DNS (the SMTP client resolves next hops).
 */
#ifndef FACTEUR_TRANSPORT_H
#define FACTEUR_TRANSPORT_H
#include <stdbool.h>

#include "core/lib/errbuf.h"
#include "core/resolve.h"

struct table_list;

enum transport_kind {
	TRANSPORT_VIRTUAL = 1,	/* local Maildir delivery (virtual:) */
	TRANSPORT_SMTP,		/* smtp: and relay: */
	TRANSPORT_LMTP,		/* lmtp: (RFC 2033; inet or unix socket) */
	TRANSPORT_ERROR,	/* error:text -> bounce */
	TRANSPORT_DISCARD,	/* discard: -> dropped, logged as sent */
	TRANSPORT_OTHER,	/* a name neither built in nor in master.cf */
	TRANSPORT_PIPE,		/* a master.cf pipe service (delivery/pipe.c) */
};

/* One master.cf transport service (the qmgr keeps its agent settings). */
struct transport_svc {
	char  name[32];
	enum transport_kind kind;
	int   maxproc;		/* concurrency limit, 0 = the default */
	const void *agent;	/* the user's (core/qmgr.c) per-service data */
};

struct transport {
	enum transport_kind kind;
	char  name[32];		/* "smtp", "relay", "error" ... (for logs) */
	char  host[256];	/* next hop host or domain ("" = none) */
	int   port;		/* 0 = default (25) */
	bool  mx;		/* false for [host] (and always for lmtp) */
	bool  unix_sock;	/* lmtp:unix:/path: host is the socket path */
	char  text[512];	/* error: / discard: text; pipe: the next hop */
	int   svc;		/* index in transport_cfg.svcs, -1 = built in */
};

/*
 * Parses "name:nexthop" (nexthop may be empty). 0, or -1 + err for a bad
 * next hop ("[host" without "]", bad port).
 */
int transport_parse(const char *spec, struct transport *t, struct errbuf *err);
/*
 * Parses an lmtp: next hop in Postfix's forms: "unix:/path",
 * "inet:host:port", "[host]:port", "host:port", "host" (port 24 when
 * none, never an MX lookup). 0 or -1 + err.
 */
int transport_lmtp_nexthop(const char *nexthop, struct transport *t,
			   struct errbuf *err);
/*
 * Parses a next hop alone ("[host]:port", "host:port", "host") into t.
 * 0 or -1 + err.
 */
int transport_nexthop(const char *nexthop, struct transport *t,
		      struct errbuf *err);

/*
 * Like transport_parse, with NAME looked up first among svcs (n entries):
 * t->kind is then the service's agent and t->svc its index.
 */
int transport_parse_svc(const struct transport_svc *svcs, size_t n,
			const char *spec, struct transport *t,
			struct errbuf *err);
/* The service named name (length len) in svcs, or -1. */
int transport_svc_find(const struct transport_svc *svcs, size_t n,
		       const char *name, size_t len);
/* The agent kind of a master.cf service by its command (smtp, lmtp,
 * virtual, error, discard; any other is a pipe service). Used by the
 * qmgr (core/qmgr.c) and the verify probe (delivery/smtp_probe.c). */
enum transport_kind transport_kind_of(const char *command);

struct transport_cfg {
	struct table_list *maps;	/* transport_maps, may be NULL */
	const struct transport_svc *svcs;	/* master.cf transports */
	size_t nsvcs;
	const char *virtual_transport, *relay_transport, *default_transport;
	const char *relayhost;
	/* sender_dependent_default_transport_maps (default class) and
	 * sender_dependent_relayhost_maps (overrides relayhost): keys are
	 * the sender, then "@domain", and for <> the empty_address_*
	 * lookup key; may be NULL */
	struct table_list *sd_transport_maps, *sd_relayhost_maps;
	const char *sd_transport_null_key, *sd_relayhost_null_key;
};

/*
 * The transport of addr (key form local@domain) in class cls. When the
 * chosen entry names no next hop, smtp gets relayhost (relay/default
 * classes) or the recipient's domain. TABLE-like outcome: 0 = found,
 * -1 + err = temporary (map lookup failed), -2 + err = configuration
 * (bad entry).
 */
int transport_find(const struct transport_cfg *c, const char *addr,
		   enum resolve_class cls, struct transport *t,
		   struct errbuf *err);
/*
 * transport_find for mail from sender ("" = <>; NULL = no sender-dependent
 * lookups): transport_maps first; then, for the default class,
 * sender_dependent_default_transport_maps before default_transport; and
 * sender_dependent_relayhost_maps before relayhost. Same outcomes.
 */
int transport_find_sender(const struct transport_cfg *c, const char *sender,
			  const char *addr, enum resolve_class cls,
			  struct transport *t, struct errbuf *err);

#endif
