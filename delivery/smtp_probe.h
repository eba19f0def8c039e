/*
 * smtp_probe.h - address verification probes (core/verify.c): routes an
 * address as delivery would (transport_maps, {default,relay,virtual}_
 * transport, relayhost, sender_dependent_{relayhost,default_transport}_
 * maps (looked up with the probe's sender) and master.cf transports;
 * their address_verify_* counterparts, which default to them, are what
 * is read), then holds
 * an SMTP or LMTP dialogue with the next hop that stops after RCPT TO
 * (delivery/smtp_client.c in probe mode: MAIL FROM the verify sender,
 * RCPT TO the address, QUIT; no message is sent).
 * Per master.cf service -o overrides, SMTP AUTH and smtp_tls_policy_maps
 * are not applied to probes (the main.cf SMTP client settings are).
 * Must not: block the loop (smtp_probe_route may block on a map lookup:
 * call it from a worker), or send DATA.
 */
#ifndef FACTEUR_SMTP_PROBE_H
#define FACTEUR_SMTP_PROBE_H
#include <stdbool.h>

#include "core/lib/errbuf.h"
#include "core/resolve.h"
#include "delivery/deliver.h"
#include "delivery/transport.h"

struct event_base;
struct settings;
struct smtp_probe;
struct smtp_probe_run;

/* Loop thread; s is read now and not kept. NULL + err. */
struct smtp_probe *smtp_probe_new(struct event_base *base,
				  const struct settings *s, struct errbuf *err);
/* Cancels the probes still running (their callbacks never run). */
void smtp_probe_free(struct smtp_probe **pp);
/* MAIL FROM of probes: address_verify_sender with @$myorigin, "" = <>. */
const char *smtp_probe_sender(const struct smtp_probe *p);

enum smtp_probe_way {
	SMTP_PROBE_REMOTE,	/* an SMTP/LMTP dialogue is needed: t is set */
	SMTP_PROBE_OK,		/* deliverable as it is (pipe, virtual,
				   discard transports): text says how */
	SMTP_PROBE_BOUNCE,	/* the error: transport: text */
	SMTP_PROBE_DEFER,	/* a lookup failed, or no usable transport */
};

struct smtp_probe_route {
	enum smtp_probe_way way;
	struct transport    t;
	char                text[600];
};

/* The route of addr (key form) of class cls. Thread-safe, may block. */
void smtp_probe_route(struct smtp_probe *p, const char *addr,
		      enum resolve_class cls, struct smtp_probe_route *r);

/* Outcome: st (DELIVER_SENT = accepted), dsn, text as Postfix's smtp(8)
 * reports it, relay ("host[ip]:port" or "none"), delays c and d. */
typedef void smtp_probe_done(void *arg, enum deliver_status st,
			     const char *dsn, const char *text,
			     const char *relay, double t_conn, double t_xfer);

/* Loop thread: starts the dialogue for addr over route t (SMTP_PROBE_REMOTE
 * only); done runs once, later, on the loop (unless cancelled). id names
 * the probe in the client's log lines. */
struct smtp_probe_run *smtp_probe_start(struct smtp_probe *p,
					const struct transport *t,
					const char *addr, const char *id,
					smtp_probe_done *done, void *arg);
/* Probes running (tests, shutdown). */
unsigned smtp_probe_active(const struct smtp_probe *p);

#endif
