/*
 * managesieve.h - the ManageSieve server (RFC 5804): one listener per
 * master.cf "inet ... managesieved" line, sessions on the daemon's event
 * loop. Scripts are stored as Dovecot/Pigeonhole does: <home>/sieve/
 * NAME.sieve, the active one linked as <home>/.dovecot.sieve, where <home>
 * is the user's maildir (virtual_mailbox_maps) without a final "Maildir/".
 * Login: the SMTP server's passdb (smtpd_sasl_passdb) and mechanisms
 * (PLAIN, LOGIN); STARTTLS with smtpd_tls_cert_file/smtpd_tls_key_file.
 * Must not: block the loop (passdb, resolve, compile and all file I/O run
 * on the worker pool).
 */
#ifndef FACTEUR_MANAGESIEVE_H
#define FACTEUR_MANAGESIEVE_H
#include "core/config.h"
#include "core/lib/errbuf.h"
#include "core/smtpd_server.h"

#define MSV_MAX_SCRIPT_SIZE	(256 * 1024)	/* bytes per script */
#define MSV_MAX_SCRIPTS		64		/* scripts per user */

struct managesieve;

/* Settings (with -o overrides), passdb, TLS keys, maps; binds the sockets
 * (as root, before the privilege drop). NULL + err on any error. srv->pool
 * is read when sessions need it (it may be created later). */
struct managesieve *managesieve_new(struct smtpd_server *srv,
				    const struct config *base_cfg,
				    const struct master_service *svc,
				    struct errbuf *err);
int  managesieve_start(struct managesieve *m, struct errbuf *err);
/*
 * Reload (facteurd.c): the same as managesieve_new without binding; the
 * sockets then come from the listener of the same service
 * (managesieve_take_sockets) or from managesieve_bind (svc is read only
 * until then). The replaced one is retired: sockets it still has close,
 * and it is freed with its last session, which finishes on its settings.
 */
struct managesieve *managesieve_prepare(struct smtpd_server *srv,
					const struct config *base_cfg,
					const struct master_service *svc,
					struct errbuf *err);
int  managesieve_bind(struct managesieve *m, struct errbuf *err);
void managesieve_take_sockets(struct managesieve *m, struct managesieve *old);
void managesieve_retire(struct managesieve **mp);
const char *managesieve_service(const struct managesieve *m);
/* facteur status: the listening sockets (the first n into out; count
 * returned) and the session limit. */
size_t managesieve_listen_fds(const struct managesieve *m, int *out, size_t n);
unsigned managesieve_max_sessions(const struct managesieve *m);
/* Stops accepting; open sessions go on. */
void managesieve_stop(struct managesieve *m);
unsigned managesieve_sessions(const struct managesieve *m);
void managesieve_free(struct managesieve **mp);

#endif
