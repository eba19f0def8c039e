/*
 * transport.h - which delivery agent and next hop a recipient goes to, with
 * Postfix's transport(5) syntax: transport_maps (full address, domain,
 * parent domains as ".domain", then "*"), else virtual_transport,
 * relay_transport or default_transport by address class, with relayhost as
 * the next hop of relay/default mail that names none.
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
	TRANSPORT_OTHER,	/* a name facteur does not implement */
};

struct transport {
	enum transport_kind kind;
	char  name[32];		/* "smtp", "relay", "error" ... (for logs) */
	char  host[256];	/* next hop host or domain ("" = none) */
	int   port;		/* 0 = default (25) */
	bool  mx;		/* false for [host] (and always for lmtp) */
	bool  unix_sock;	/* lmtp:unix:/path: host is the socket path */
	char  text[512];	/* error: / discard: text */
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

struct transport_cfg {
	struct table_list *maps;	/* transport_maps, may be NULL */
	const char *virtual_transport, *relay_transport, *default_transport;
	const char *relayhost;
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

#endif
