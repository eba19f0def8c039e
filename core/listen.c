/*
 * listen.c - binds one master.cf inet service's sockets (see listen.h).
 * Must not: accept connections (the listeners do), or run after the
 * privilege drop (ports below 1024 need root); listen_check_service
 * (facteur check) resolves the same addresses and opens no socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/util.h>

#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/listen.h"

struct binder {
	const char *service, *inet_interfaces, *inet_protocols;
	int         backlog;
	int         check_only;	/* facteur check: resolve, bind nothing */
	int       **fds;
	size_t     *nfds;
};

static int
bind_one(struct binder *l, const char *host, const char *port,
	 struct errbuf *err)
{
	struct addrinfo hints, *res, *ai;
	char h6[INET6_ADDRSTRLEN + 2];
	int rc, bound = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if (strcmp(l->inet_protocols, "ipv4") == 0)
		hints.ai_family = AF_INET;
	else if (strcmp(l->inet_protocols, "ipv6") == 0)
		hints.ai_family = AF_INET6;
	else
		hints.ai_family = AF_UNSPEC;
	if (host[0] == '[') {
		size_t n = strcspn(host + 1, "]");
		snprintf(h6, sizeof(h6), "%.*s", (int)n, host + 1);
		host = h6;
	}
	rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		errbuf_set(err, "%s: cannot resolve listen address \"%s\": %s",
			   l->service, host, gai_strerror(rc));
		return -1;
	}
	if (l->check_only) {
		freeaddrinfo(res);
		return 0;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		int fd, on = 1;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
		    listen(fd, l->backlog) < 0) {
			int e = errno;
			char hbuf[NI_MAXHOST];

			close(fd);
			if (ai->ai_family == AF_INET6 && e == EADDRNOTAVAIL)
				continue;	/* no IPv6 on this host */
			getnameinfo(ai->ai_addr, ai->ai_addrlen, hbuf,
				    sizeof(hbuf), NULL, 0, NI_NUMERICHOST);
			errbuf_set(err, "%s: bind %s port %s: %s", l->service,
				   hbuf, port, strerror(e));
			freeaddrinfo(res);
			return -1;
		}
		evutil_make_socket_nonblocking(fd);
		*l->fds = xrealloc(*l->fds, (*l->nfds + 1) * sizeof(**l->fds));
		(*l->fds)[(*l->nfds)++] = fd;
		bound++;
	}
	freeaddrinfo(res);
	if (bound == 0) {
		errbuf_set(err, "%s: no usable address for \"%s\" port %s",
			   l->service, host, port);
		return -1;
	}
	return 0;
}

static int
bind_all(struct binder *l, const struct master_service *svc,
	 struct errbuf *err)
{
	struct strlist ifs;
	int rc = 0;

	if (svc->host != NULL && svc->host[0] != '\0')
		return bind_one(l, svc->host, svc->port, err);
	strlist_init(&ifs);
	strlist_split(&ifs, l->inet_interfaces);
	if (ifs.n == 0 || strlist_contains(&ifs, "all")) {
		if (strcmp(l->inet_protocols, "ipv6") != 0)
			rc = bind_one(l, "0.0.0.0", svc->port, err);
		if (rc == 0 && strcmp(l->inet_protocols, "ipv4") != 0 &&
		    bind_one(l, "::", svc->port, err) < 0 && *l->nfds > 0)
			rc = 0;		/* IPv6 unavailable: IPv4 is enough */
	} else {
		for (size_t i = 0; i < ifs.n && rc == 0; i++) {
			if (strcmp(ifs.v[i], "loopback-only") == 0) {
				rc = bind_one(l, "127.0.0.1", svc->port, err);
				if (rc == 0)
					(void)bind_one(l, "::1", svc->port, err);
			} else {
				rc = bind_one(l, ifs.v[i], svc->port, err);
			}
		}
	}
	strlist_free(&ifs);
	return rc;
}

int
listen_bind_service(const char *service, const struct master_service *svc,
		    const char *inet_interfaces, const char *inet_protocols,
		    int backlog, int **fds_r, size_t *nfds_r, struct errbuf *err)
{
	struct binder b = {
		.service = service, .inet_interfaces = inet_interfaces,
		.inet_protocols = inet_protocols, .backlog = backlog,
		.fds = fds_r, .nfds = nfds_r,
	};

	return bind_all(&b, svc, err);
}

int
listen_check_service(const char *service, const struct master_service *svc,
		     const char *inet_interfaces, const char *inet_protocols,
		     struct errbuf *err)
{
	int *none = NULL;
	size_t n = 0;
	struct binder b = {
		.service = service, .inet_interfaces = inet_interfaces,
		.inet_protocols = inet_protocols, .check_only = 1,
		.fds = &none, .nfds = &n,	/* stay empty */
	};

	return bind_all(&b, svc, err);
}
