/*
 * postscreen.h - screening in front of the SMTP engine, for a master.cf
 * `inet` line whose command is `postscreen` (Postfix's postscreen(8) with
 * its smtpd pass, dnsblog and tlsproxy companions folded in): access list,
 * pre-greet test, weighted DNSBL score, after-220 protocol tests in a
 * dummy SMTP engine, and a cache of passed clients in LMDB.
 * A client that passes (or is cached as passed) is handed to the real
 * SMTP session with smtpd_session_start on the same socket.
 * Must not: block the loop, or hand a socket to smtpd after reading from
 * it (the pre-greet test only peeks).
 */
#ifndef FACTEUR_POSTSCREEN_H
#define FACTEUR_POSTSCREEN_H
#include <sys/socket.h>

#include "core/config.h"
#include "core/lib/errbuf.h"

struct postscreen;
struct smtpd_listener;

/*
 * Reads the postscreen_* parameters of the listener's settings view cfg;
 * NULL + err on a bad value. Called as root before the privilege drop:
 * it creates the cache directory for the mail owner. The cache and the
 * DNS resolver are opened at the first connection (after any fork).
 */
struct postscreen *postscreen_new(struct smtpd_listener *l,
				  const struct config *cfg, struct errbuf *err);
/* The same checks without a listener or side effects (facteur check):
 * s is cfg's settings. 0, or -1 + err. */
struct settings;
int postscreen_check_config(const struct config *cfg,
			    const struct settings *s, const char *service,
			    struct errbuf *err);
/* Closes every connection still being screened. */
void postscreen_free(struct postscreen **pp);
/* The accept hook: screens the client, then starts an SMTP session.
 * local: the server address the client connected to when a PROXY header
 * named it, else NULL (the socket's own address is used). */
void postscreen_accept(struct postscreen *ps, int fd, const struct sockaddr *sa,
		       int salen, const struct sockaddr *local);
/* Connections being screened (not counting those handed to smtpd). */
unsigned postscreen_active(const struct postscreen *ps);

#endif
