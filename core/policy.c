/*
 * policy.c - Postfix policy delegation protocol client (SMTPD_POLICY_README):
 * connects to inet:host:port or unix:/path, sends the request attributes
 * and an empty line, reads "name=value" lines up to an empty line, and
 * returns the action. One connection per query, every step bounded by
 * poll() against one deadline; the reply is bounded in size.
 * Must not: run on the event loop (it blocks), or trust the reply (a
 * malformed or oversized reply is an error, never a decision).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/lib/xmalloc.h"
#include "core/policy.h"

/* Postfix's attribute reader limits a line; we bound the whole reply. */
#define POLICY_REPLY_MAX 8192

struct policy_svc {
	char *name;		/* as configured, for log lines */
	char *host, *port;	/* inet */
	char *path;		/* unix */
	long  timeout, retry_delay;
	int   tries;
};

struct policy_svc *
policy_svc_new(const char *endpoint, long timeout, int tries, long retry_delay,
	       struct errbuf *err)
{
	struct policy_svc *p = xcalloc(1, sizeof(*p));
	const char *rest;

	p->name = xstrdup(endpoint);
	p->timeout = timeout > 0 ? timeout : 1;
	p->tries = tries > 0 ? tries : 1;
	p->retry_delay = retry_delay >= 0 ? retry_delay : 0;
	if (strncasecmp(endpoint, "inet:", 5) == 0) {
		const char *colon;

		rest = endpoint + 5;
		if (*rest == '[') {
			const char *end = strchr(rest, ']');

			if (end == NULL || end[1] != ':')
				goto bad;
			p->host = xstrndup(rest + 1, (size_t)(end - rest - 1));
			colon = end + 1;
		} else {
			colon = strrchr(rest, ':');
			if (colon == NULL)
				goto bad;
			p->host = xstrndup(rest, (size_t)(colon - rest));
		}
		p->port = xstrdup(colon + 1);
		if (*p->host == '\0' || *p->port == '\0' ||
		    strspn(p->port, "0123456789") != strlen(p->port))
			goto bad;
		return p;
	}
	if (strncasecmp(endpoint, "unix:", 5) == 0) {
		struct sockaddr_un sun;

		rest = endpoint + 5;
		if (rest[0] != '/') {
			errbuf_set(err, "check_policy_service: \"%s\": the "
				   "socket path must be absolute", endpoint);
			policy_svc_free(&p);
			return NULL;
		}
		if (strlen(rest) >= sizeof(sun.sun_path))
			goto bad;
		p->path = xstrdup(rest);
		return p;
	}
bad:
	errbuf_set(err, "check_policy_service: bad endpoint \"%s\": expected "
		   "inet:host:port or unix:/path", endpoint);
	policy_svc_free(&p);
	return NULL;
}

void
policy_svc_free(struct policy_svc **pp)
{
	struct policy_svc *p = *pp;

	if (p == NULL)
		return;
	free(p->name);
	free(p->host);
	free(p->port);
	free(p->path);
	free(p);
	*pp = NULL;
}

const char *
policy_svc_name(const struct policy_svc *p)
{
	return p->name;
}

static long
ms_left(const struct timespec *deadline)
{
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long)(deadline->tv_sec - now.tv_sec) * 1000 +
	     (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? ms : 0;
}

/* Waits for fd to become ready; 0, or -1 + err on timeout/error. */
static int
wait_fd(int fd, short events, const struct timespec *deadline,
	struct errbuf *err)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	for (;;) {
		long ms = ms_left(deadline);
		int n;

		if (ms == 0) {
			errbuf_set(err, "timeout");
			return -1;
		}
		n = poll(&pfd, 1, (int)(ms > 60000 ? 60000 : ms));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR) {
			errbuf_set(err, "poll: %s", strerror(errno));
			return -1;
		}
	}
}

static int
connect_fd(int fd, const struct sockaddr *sa, socklen_t len,
	   const struct timespec *deadline, struct errbuf *err)
{
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (connect(fd, sa, len) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EAGAIN) {
		errbuf_set(err, "connect: %s", strerror(errno));
		return -1;
	}
	if (wait_fd(fd, POLLOUT, deadline, err) < 0)
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
		errbuf_set(err, "connect: %s", strerror(soerr ? soerr : errno));
		return -1;
	}
	return 0;
}

static int
open_conn(const struct policy_svc *p, const struct timespec *deadline,
	  struct errbuf *err)
{
	int fd;

	if (p->path != NULL) {
		struct sockaddr_un sun;

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		memcpy(sun.sun_path, p->path, strlen(p->path) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			errbuf_set(err, "socket: %s", strerror(errno));
			return -1;
		}
		if (connect_fd(fd, (struct sockaddr *)&sun, sizeof(sun),
			       deadline, err) < 0) {
			close(fd);
			return -1;
		}
		return fd;
	}
	{
		struct addrinfo hints, *res = NULL, *ai;
		int rc;

		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICSERV;
		rc = getaddrinfo(p->host, p->port, &hints, &res);
		if (rc != 0) {
			errbuf_set(err, "%s: %s", p->host, gai_strerror(rc));
			return -1;
		}
		fd = -1;
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
				    SOCK_NONBLOCK, ai->ai_protocol);
			if (fd < 0) {
				errbuf_set(err, "socket: %s", strerror(errno));
				continue;
			}
			if (connect_fd(fd, ai->ai_addr, ai->ai_addrlen, deadline,
				       err) == 0)
				break;
			close(fd);
			fd = -1;
		}
		freeaddrinfo(res);
		return fd;
	}
}

static int
exchange(const struct policy_svc *p, const char *request, struct buf *action_r,
	 struct errbuf *err)
{
	struct timespec deadline;
	char reply[POLICY_REPLY_MAX + 1];
	size_t rlen = 0, off = 0, qlen;
	char *q;
	int fd, ret = -1;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += p->timeout;
	fd = open_conn(p, &deadline, err);
	if (fd < 0)
		return -1;
	q = xasprintf("%s\n", request);
	qlen = strlen(q);
	while (off < qlen) {
		ssize_t n = send(fd, q + off, qlen - off, MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (wait_fd(fd, POLLOUT, &deadline, err) < 0)
				goto out;
			continue;
		}
		errbuf_set(err, "write: %s", n < 0 ? strerror(errno) : "closed");
		goto out;
	}
	for (;;) {
		ssize_t n;
		char *end;

		reply[rlen] = '\0';
		if ((end = strstr(reply, "\n\n")) != NULL ||
		    (rlen == 1 && reply[0] == '\n')) {
			if (end == NULL)
				end = reply;
			end[1] = '\0';
			break;
		}
		if (rlen == POLICY_REPLY_MAX) {
			errbuf_set(err, "reply longer than %d bytes",
				   POLICY_REPLY_MAX);
			goto out;
		}
		if (wait_fd(fd, POLLIN, &deadline, err) < 0)
			goto out;
		n = recv(fd, reply + rlen, POLICY_REPLY_MAX - rlen, 0);
		if (n == 0) {
			errbuf_set(err, "connection closed before the end of "
				   "the reply");
			goto out;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			errbuf_set(err, "read: %s", strerror(errno));
			goto out;
		}
		rlen += (size_t)n;
	}
	/* Attribute lines; action= is the one we need. */
	{
		char *line = reply, *nl;

		buf_reset(action_r);
		while ((nl = strchr(line, '\n')) != NULL) {
			*nl = '\0';
			if (nl > line && nl[-1] == '\r')
				nl[-1] = '\0';
			if (strncmp(line, "action=", 7) == 0 &&
			    buf_cstr(action_r)[0] == '\0')
				buf_set(action_r, line + 7);
			else if (*line != '\0' && strchr(line, '=') == NULL) {
				errbuf_set(err, "malformed reply line \"%.100s\"",
					   line);
				goto out;
			}
			line = nl + 1;
		}
		if (buf_cstr(action_r)[0] == '\0') {
			errbuf_set(err, "reply without action");
			goto out;
		}
	}
	ret = 0;
out:
	free(q);
	close(fd);
	return ret;
}

int
policy_query(const struct policy_svc *p, const char *request,
	     struct buf *action_r, struct errbuf *err)
{
	for (int i = 0; i < p->tries; i++) {
		if (i > 0 && p->retry_delay > 0)
			sleep((unsigned)p->retry_delay);
		errbuf_clear(err);
		if (exchange(p, request, action_r, err) == 0)
			return 0;
	}
	return -1;
}
