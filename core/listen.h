/*
 * listen.h - binds the sockets of one master.cf inet service: its own
 * host:port, else every address of inet_interfaces (all, loopback-only,
 * or a list) for inet_protocols. Shared by the SMTP and ManageSieve
 * listeners. Runs as root at start-up, before the privilege drop.
 */
#ifndef FACTEUR_LISTEN_H
#define FACTEUR_LISTEN_H
#include <stddef.h>

#include "core/config.h"
#include "core/lib/errbuf.h"

/*
 * Appends the bound, listening, non-blocking sockets to *fds_r / *nfds_r
 * (the array is grown with xrealloc; the caller owns it and the sockets).
 * -1 + err naming the service, the address and the reason.
 */
int listen_bind_service(const char *service, const struct master_service *svc,
			const char *inet_interfaces, const char *inet_protocols,
			int backlog, int **fds_r, size_t *nfds_r,
			struct errbuf *err);
/*
 * facteur check: the addresses listen_bind_service would bind, resolved
 * the same way (a bad host or port gives the same error), no socket.
 */
int listen_check_service(const char *service, const struct master_service *svc,
			 const char *inet_interfaces, const char *inet_protocols,
			 struct errbuf *err);

#endif
