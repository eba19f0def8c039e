/*
 * policy.c - Postfix policy delegation protocol client (SMTPD_POLICY_README):
 * connects to inet:host:port or unix:/path, sends the request attributes
 * and an empty line, reads "name=value" lines up to an empty line, and
 * returns the action. Every step is bounded by poll() against one
 * deadline; the reply is bounded in size. As Postfix's smtpd, a
 * connection is kept for the next query when reuse is enabled
 * (smtpd_policy_service_max_idle, _max_ttl, _request_limit): idle ones
 * are closed by policy_sweep() and a kept connection the server closed
 * meanwhile is replaced by a fresh one without counting as a try.
 * Must not: run on the event loop (it blocks), or trust the reply (a
 * malformed or oversized reply is an error, never a decision).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "core/lib/xmalloc.h"
#include "core/policy.h"

/* Postfix's attribute reader limits a line; we bound the whole reply. */
#define POLICY_REPLY_MAX 8192
#define POLICY_IDLE_MAX  16	/* kept connections per service */

struct policy_conn {
	int    fd;
	time_t created, idle_since;
	long   uses;
};

struct policy_svc {
	char *name;		/* as configured, for log lines */
	char *host, *port;	/* inet */
	char *path;		/* unix */
	long  timeout, retry_delay;
	int   tries;
	struct policy_pool *pool;	/* NULL: one connection per query */
};

/*
 * Kept connections of one endpoint, shared by every list that names it
 * (as Postfix's smtpd keeps one client per policy service): refcounted,
 * in the pools list for the sweep.
 */
struct policy_pool {
	char              *name;
	long               max_idle, max_ttl, request_limit;
	unsigned           refs;
	pthread_mutex_t    lock;
	struct policy_conn idle[POLICY_IDLE_MAX];
	size_t             nidle;
	struct policy_pool *next;
};

static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static struct policy_pool *pools;

static time_t
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

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
	if (p->pool != NULL) {
		struct policy_pool *o = p->pool, **op;

		pthread_mutex_lock(&pools_lock);
		if (--o->refs == 0) {
			for (op = &pools; *op; op = &(*op)->next)
				if (*op == o) {
					*op = o->next;
					break;
				}
		} else {
			o = NULL;
		}
		pthread_mutex_unlock(&pools_lock);
		if (o != NULL) {
			for (size_t i = 0; i < o->nidle; i++)
				close(o->idle[i].fd);
			pthread_mutex_destroy(&o->lock);
			free(o->name);
			free(o);
		}
	}
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

void
policy_svc_reuse(struct policy_svc *p, long max_idle, long max_ttl,
		 long request_limit)
{
	struct policy_pool *o;

	if (p->pool != NULL || max_idle <= 0)
		return;		/* once, and only to turn it on */
	max_ttl = max_ttl > 0 ? max_ttl : 1000;
	request_limit = request_limit > 0 ? request_limit : 0;
	pthread_mutex_lock(&pools_lock);
	for (o = pools; o; o = o->next)
		if (strcmp(o->name, p->name) == 0 && o->max_idle == max_idle &&
		    o->max_ttl == max_ttl && o->request_limit == request_limit)
			break;
	if (o == NULL) {
		o = xcalloc(1, sizeof(*o));
		o->name = xstrdup(p->name);
		o->max_idle = max_idle;
		o->max_ttl = max_ttl;
		o->request_limit = request_limit;
		pthread_mutex_init(&o->lock, NULL);
		o->next = pools;
		pools = o;
	}
	o->refs++;
	p->pool = o;
	pthread_mutex_unlock(&pools_lock);
}

static bool
conn_expired(const struct policy_pool *p, const struct policy_conn *c,
	     time_t now)
{
	return now - c->idle_since >= p->max_idle ||
	       now - c->created >= p->max_ttl;
}

/* A kept connection, or -1. One the server closed (readable while idle:
 * EOF or unasked data) is dropped. */
static int
conn_take(struct policy_svc *svc, struct policy_conn *c_r)
{
	struct policy_pool *p = svc->pool;
	time_t now = mono_now();
	int fd = -1;

	if (p == NULL)
		return -1;
	pthread_mutex_lock(&p->lock);
	while (p->nidle > 0) {
		struct policy_conn c = p->idle[--p->nidle];
		struct pollfd pfd = { .fd = c.fd, .events = POLLIN };

		if (conn_expired(p, &c, now) || poll(&pfd, 1, 0) != 0) {
			close(c.fd);
			continue;
		}
		*c_r = c;
		fd = c.fd;
		break;
	}
	pthread_mutex_unlock(&p->lock);
	return fd;
}

static void
conn_give(struct policy_svc *svc, struct policy_conn *c)
{
	struct policy_pool *p = svc->pool;
	time_t now = mono_now();

	c->idle_since = now;
	if (p == NULL || now - c->created >= p->max_ttl ||
	    (p->request_limit > 0 && c->uses >= p->request_limit)) {
		close(c->fd);
		return;
	}
	pthread_mutex_lock(&p->lock);
	if (p->nidle < POLICY_IDLE_MAX) {
		p->idle[p->nidle++] = *c;
		c = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	if (c != NULL)
		close(c->fd);
}

void
policy_sweep(void)
{
	time_t now = mono_now();

	pthread_mutex_lock(&pools_lock);
	for (struct policy_pool *p = pools; p; p = p->next) {
		size_t j = 0;

		pthread_mutex_lock(&p->lock);
		for (size_t i = 0; i < p->nidle; i++) {
			if (conn_expired(p, &p->idle[i], now))
				close(p->idle[i].fd);
			else
				p->idle[j++] = p->idle[i];
		}
		p->nidle = j;
		pthread_mutex_unlock(&p->lock);
	}
	pthread_mutex_unlock(&pools_lock);
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

/* 0, -1 + err, or -2: a kept connection failed before any reply byte
 * (the server closed it): the caller tries a fresh one. */
static int
exchange(struct policy_svc *p, const char *request, struct buf *action_r,
	 bool may_reuse, struct errbuf *err)
{
	struct timespec deadline;
	char reply[POLICY_REPLY_MAX + 1];
	size_t rlen = 0, off = 0, qlen;
	char *q;
	int fd, ret = -1;
	struct policy_conn c;
	bool reused;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += p->timeout;
	memset(&c, 0, sizeof(c));
	fd = may_reuse ? conn_take(p, &c) : -1;
	reused = fd >= 0;
	if (fd < 0) {
		fd = open_conn(p, &deadline, err);
		if (fd < 0)
			return -1;
		c.fd = fd;
		c.created = mono_now();
	}
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
		if (reused)
			ret = -2;
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
			if (reused && rlen == 0)
				ret = -2;
			goto out;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			errbuf_set(err, "read: %s", strerror(errno));
			if (reused && rlen == 0 && errno == ECONNRESET)
				ret = -2;
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
	if (ret == 0) {
		c.uses++;
		conn_give(p, &c);	/* kept, or closed */
	} else {
		close(fd);
	}
	return ret;
}

int
policy_query(const struct policy_svc *cp, const char *request,
	     struct buf *action_r, struct errbuf *err)
{
	/* the kept connections are a cache behind the lock */
	struct policy_svc *p = (struct policy_svc *)cp;

	for (int i = 0; i < p->tries; i++) {
		int rc;

		if (i > 0 && p->retry_delay > 0)
			sleep((unsigned)p->retry_delay);
		errbuf_clear(err);
		rc = exchange(p, request, action_r, true, err);
		if (rc == -2) {		/* a stale kept connection */
			errbuf_clear(err);
			rc = exchange(p, request, action_r, false, err);
		}
		if (rc == 0)
			return 0;
	}
	return -1;
}
