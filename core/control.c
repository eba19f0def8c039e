/*
 * control.c - the control socket $queue_directory/private/control (see
 * control.h): server side on the daemon's loop, and the blocking client
 * the `facteur` command uses.
 * Access is the file system's: the socket is 0600 and its directory 0700,
 * both owned by mail_owner (the daemon creates them after dropping root),
 * so only root and mail_owner can connect.
 * Must not: block the loop, accept a line longer than CONTROL_LINE_MAX,
 * or keep an idle connection longer than CONTROL_TIMEOUT.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "core/control.h"
#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"

#define CONTROL_TIMEOUT 10	/* seconds to send the command line */

struct control_conn {
	struct control      *ctl;
	struct bufferevent  *bev;
	struct control_conn *next, *prev;
	int                  answered;	/* 1 the handler has it, 2 replied,
					   3 sent: waiting for the client's end */
};

struct control {
	struct event_base     *base;
	struct evconnlistener *lev;
	control_handler       *handler;
	void                  *arg;
	struct control_conn   *conns;
	char                  *path;
};

static void
conn_free(struct control_conn *c)
{
	struct control *ctl = c->ctl;

	if (c->prev)
		c->prev->next = c->next;
	else
		ctl->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->bev)
		bufferevent_free(c->bev);
	free(c);
}

/*
 * The answer has left: half-close, then wait for the client's end (input
 * is read and dropped meanwhile). Closing with unread input would send a
 * reset that can destroy the answer before the client reads it.
 */
static void
conn_write(struct bufferevent *bev, void *arg)
{
	struct control_conn *c = arg;

	if (c->answered != 2)
		return;
	c->answered = 3;
	(void)shutdown(bufferevent_getfd(bev), SHUT_WR);
	bufferevent_setwatermark(bev, EV_READ, 0, 0);
	bufferevent_enable(bev, EV_READ);
}

static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct control_conn *c = arg;

	if (c->answered == 1) {
		/* the client left while the answer is being made: drop the
		 * socket, keep c for control_reply */
		bufferevent_free(c->bev);
		c->bev = NULL;
		return;
	}
	conn_free(c);
}

static void
conn_read(struct bufferevent *bev, void *arg)
{
	struct control_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t n;

	if (c->answered) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
	if (line == NULL) {
		if (evbuffer_get_length(in) > CONTROL_LINE_MAX) {
			c->answered = 1;
			control_reply(c, "error: command line too long\n", 29);
		}
		return;
	}
	if (n > CONTROL_LINE_MAX) {
		free(line);
		c->answered = 1;
		control_reply(c, "error: command line too long\n", 29);
		return;
	}
	c->answered = 1;
	bufferevent_disable(bev, EV_READ);
	c->ctl->handler(c->ctl->arg, c, line);
	free(line);
}

void
control_reply(struct control_conn *c, const char *text, size_t len)
{
	c->answered = 2;
	if (c->bev == NULL) {
		conn_free(c);
		return;
	}
	bufferevent_write(c->bev, text, len);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_write(c->bev, c);
}

static void
control_accept(struct evconnlistener *lev, evutil_socket_t fd,
	       struct sockaddr *sa, int salen, void *arg)
{
	struct control *ctl = arg;
	struct control_conn *c = xcalloc(1, sizeof(*c));
	struct timeval tv = { CONTROL_TIMEOUT, 0 };

	c->ctl = ctl;
	c->bev = bufferevent_socket_new(ctl->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	c->next = ctl->conns;
	if (ctl->conns)
		ctl->conns->prev = c;
	ctl->conns = c;
	bufferevent_setcb(c->bev, conn_read, conn_write, conn_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONTROL_LINE_MAX + 2);
	bufferevent_enable(c->bev, EV_READ);
}

static int
control_path(const char *qdir, struct sockaddr_un *sun, struct errbuf *err)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if ((size_t)snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/%s",
			     qdir, CONTROL_SOCKET) >= sizeof(sun->sun_path)) {
		errbuf_set(err, "queue_directory %s: path too long for the "
			   "control socket %s", qdir, CONTROL_SOCKET);
		return -1;
	}
	return 0;
}

struct control *
control_new(struct event_base *base, const char *qdir,
	    control_handler *handler, void *arg, struct errbuf *err)
{
	struct sockaddr_un sun;
	struct control *ctl;
	char *dir;
	mode_t old;
	int fd;

	if (control_path(qdir, &sun, err) < 0)
		return NULL;
	dir = xasprintf("%s/private", qdir);
	if ((mkdir(dir, 0700) < 0 && errno != EEXIST) || chmod(dir, 0700) < 0) {
		errbuf_set(err, "create %s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	free(dir);
	/* We hold the queue's pid lock: a socket left here is a dead one's. */
	(void)unlink(sun.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	old = umask(0177);
	if (fd < 0 || evutil_make_socket_nonblocking(fd) < 0 ||
	    evutil_make_socket_closeonexec(fd) < 0 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(sun.sun_path, 0600) < 0) {
		umask(old);
		errbuf_set(err, "control socket %s: %s", sun.sun_path,
			   strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	umask(old);
	ctl = xcalloc(1, sizeof(*ctl));
	ctl->base = base;
	ctl->handler = handler;
	ctl->arg = arg;
	ctl->path = xstrdup(sun.sun_path);
	ctl->lev = evconnlistener_new(base, control_accept, ctl,
				      LEV_OPT_CLOSE_ON_FREE, 16, fd);
	if (ctl->lev == NULL) {
		errbuf_set(err, "control socket %s: cannot listen", sun.sun_path);
		close(fd);
		control_free(&ctl);
		return NULL;
	}
	return ctl;
}

void
control_free(struct control **cp)
{
	struct control *ctl = *cp;

	if (ctl == NULL)
		return;
	if (ctl->lev) {
		evconnlistener_free(ctl->lev);
		(void)unlink(ctl->path);
	}
	while (ctl->conns)
		conn_free(ctl->conns);
	free(ctl->path);
	free(ctl);
	*cp = NULL;
}

/* ---- client ---- */

int
control_request(const char *qdir, const char *command, int timeout_s,
		char **out, struct errbuf *err)
{
	struct sockaddr_un sun;
	struct buf b;
	char chunk[4096];
	time_t deadline = time(NULL) + timeout_s;
	int fd;

	*out = NULL;
	if (control_path(qdir, &sun, err) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		if (e == ENOENT || e == ECONNREFUSED)
			errbuf_set(err, "facteurd is not running on %s (no "
				   "control socket %s)", qdir, sun.sun_path);
		else
			errbuf_set(err, "connect to %s: %s%s", sun.sun_path,
				   strerror(e), e == EACCES ? " (run as root "
				   "or as mail_owner)" : "");
		return -1;
	}
	snprintf(chunk, sizeof(chunk), "%s\n", command);
	if (write(fd, chunk, strlen(chunk)) != (ssize_t)strlen(chunk)) {
		errbuf_set(err, "write to %s: %s", sun.sun_path, strerror(errno));
		close(fd);
		return -1;
	}
	buf_init(&b, 0);
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int left = (int)(deadline - time(NULL));
		ssize_t n;

		if (left <= 0 || poll(&p, 1, left * 1000) <= 0) {
			errbuf_set(err, "%s: no answer within %d seconds",
				   sun.sun_path, timeout_s);
			buf_free(&b);
			close(fd);
			return -1;
		}
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		buf_append(&b, chunk, (size_t)n);
	}
	close(fd);
	*out = buf_steal(&b);
	return 0;
}
