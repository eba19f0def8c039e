/*
 * status_http.c - the Prometheus endpoint (see status_http.h): one GET per
 * connection, HTTP/1.0 answer with Content-Length, then close.
 * Must not: block, keep a connection past STATUS_HTTP_TIMEOUT, or accept
 * a request head larger than STATUS_HTTP_MAX.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "core/lib/xmalloc.h"
#include "core/status_http.h"

#define STATUS_HTTP_MAX     8192
#define STATUS_HTTP_TIMEOUT 10

struct status_http_conn {
	struct status_http      *h;
	struct bufferevent      *bev;
	struct status_http_conn *next, *prev;
	int                      state;	/* 0 reading, 1 answering, 2 sent */
	int                      head;	/* HEAD: no body */
};

struct status_http {
	char                    *spec;
	int                      fd;
	struct evconnlistener   *lev;
	struct event_base       *base;
	status_http_handler     *handler;
	void                    *arg;
	struct status_http_conn *conns;
};

static void
conn_free(struct status_http_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		c->h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->bev)
		bufferevent_free(c->bev);
	free(c);
}

static void
send_text(struct status_http_conn *c, const char *status, const char *ctype,
	  const char *body, size_t len)
{
	struct evbuffer *out;

	c->state = 2;
	if (c->bev == NULL) {
		conn_free(c);
		return;
	}
	out = bufferevent_get_output(c->bev);
	evbuffer_add_printf(out, "HTTP/1.0 %s\r\nContent-Type: %s\r\n"
			    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			    status, ctype, len);
	if (!c->head)
		evbuffer_add(out, body, len);
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_enable(c->bev, EV_WRITE);
}

void
status_http_reply(struct status_http_conn *c, const char *body, size_t len)
{
	send_text(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8",
		  body, len);
}

static void
conn_write(struct bufferevent *bev, void *arg)
{
	struct status_http_conn *c = arg;

	if (c->state == 2)
		conn_free(c);
}

static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct status_http_conn *c = arg;

	if (c->state == 1) {		/* the answer is being made */
		bufferevent_free(c->bev);
		c->bev = NULL;
		return;
	}
	conn_free(c);
}

static void
conn_read(struct bufferevent *bev, void *arg)
{
	struct status_http_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end;
	char line[256], *sp, *path;
	size_t n;

	if (c->state != 0)
		return;
	end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0) {
		end = evbuffer_search(in, "\n\n", 2, NULL);
		if (end.pos < 0) {
			if (evbuffer_get_length(in) >= STATUS_HTTP_MAX)
				send_text(c, "431 Request Header Fields Too Large",
					  "text/plain", "too large\n", 10);
			return;
		}
	}
	n = evbuffer_copyout(in, line, sizeof(line) - 1);
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	sp = strchr(line, ' ');
	if (sp == NULL) {
		send_text(c, "400 Bad Request", "text/plain", "bad request\n", 12);
		return;
	}
	*sp = '\0';
	path = sp + 1;
	path[strcspn(path, " ")] = '\0';
	c->head = strcmp(line, "HEAD") == 0;
	if (strcmp(line, "GET") != 0 && !c->head) {
		send_text(c, "405 Method Not Allowed", "text/plain",
			  "GET only\n", 9);
		return;
	}
	if (strcmp(path, "/metrics") != 0 && strcmp(path, "/") != 0) {
		send_text(c, "404 Not Found", "text/plain", "try /metrics\n", 13);
		return;
	}
	c->state = 1;
	bufferevent_disable(bev, EV_READ);
	c->h->handler(c->h->arg, c);
}

static void
http_accept(struct evconnlistener *lev, evutil_socket_t fd,
	    struct sockaddr *sa, int salen, void *arg)
{
	struct status_http *h = arg;
	struct status_http_conn *c = xcalloc(1, sizeof(*c));
	struct timeval tv = { STATUS_HTTP_TIMEOUT, 0 };

	c->h = h;
	c->bev = bufferevent_socket_new(h->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	bufferevent_setcb(c->bev, conn_read, conn_write, conn_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_setwatermark(c->bev, EV_READ, 0, STATUS_HTTP_MAX);
	bufferevent_enable(c->bev, EV_READ);
}

/* The address of a facteur_metrics_listen value (freeaddrinfo it), or
 * NULL + err: status_http_new and status_http_check. */
static struct addrinfo *
metrics_addr(const char *spec, struct errbuf *err)
{
	struct addrinfo hints, *res = NULL;
	char host[256], port[32];
	const char *colon = strrchr(spec, ':');
	int rc;

	if (colon == NULL) {
		snprintf(host, sizeof(host), "127.0.0.1");
		snprintf(port, sizeof(port), "%s", spec);
	} else {
		size_t hl = (size_t)(colon - spec);

		if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
			spec++;
			hl -= 2;
		}
		if (hl == 0 || hl >= sizeof(host)) {
			errbuf_set(err, "facteur_metrics_listen = %s: expected "
				   "[host:]port", spec);
			return NULL;
		}
		memcpy(host, spec, hl);
		host[hl] = '\0';
		snprintf(port, sizeof(port), "%s", colon + 1);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		errbuf_set(err, "facteur_metrics_listen = %s: %s (expected a "
			   "numeric [host:]port)", spec, gai_strerror(rc));
		return NULL;
	}
	return res;
}

int
status_http_check(const char *spec, struct errbuf *err)
{
	struct addrinfo *res = metrics_addr(spec, err);

	if (res == NULL)
		return -1;
	freeaddrinfo(res);
	return 0;
}

struct status_http *
status_http_new(const char *spec, struct errbuf *err)
{
	struct addrinfo *res = metrics_addr(spec, err);
	struct status_http *h;
	int fd, on = 1;

	if (res == NULL)
		return NULL;
	fd = socket(res->ai_family, SOCK_STREAM, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 16) < 0 ||
	    evutil_make_socket_nonblocking(fd) < 0 ||
	    evutil_make_socket_closeonexec(fd) < 0) {
		errbuf_set(err, "facteur_metrics_listen = %s: %s", spec,
			   strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return NULL;
	}
	freeaddrinfo(res);
	h = xcalloc(1, sizeof(*h));
	h->spec = xstrdup(spec);
	h->fd = fd;
	return h;
}

void
status_http_start(struct status_http *h, struct event_base *base,
		  status_http_handler *handler, void *arg)
{
	h->base = base;
	h->handler = handler;
	h->arg = arg;
	h->lev = evconnlistener_new(base, http_accept, h, LEV_OPT_CLOSE_ON_FREE,
				    -1, h->fd);
	if (h->lev != NULL)
		h->fd = -1;
}

const char *
status_http_spec(const struct status_http *h)
{
	return h->spec;
}

void
status_http_free(struct status_http **hp)
{
	struct status_http *h = *hp;

	if (h == NULL)
		return;
	while (h->conns)
		conn_free(h->conns);
	if (h->lev)
		evconnlistener_free(h->lev);
	else if (h->fd >= 0)
		close(h->fd);
	free(h->spec);
	free(h);
	*hp = NULL;
}
