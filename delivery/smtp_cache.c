/*
 * smtp_cache.c - the idle connection cache of the SMTP/LMTP client: a
 * list of parked bufferevents with their destination key, an idle timer
 * each, and read/event callbacks that drop a connection the server closes
 * or talks on. On idle expiry QUIT is written and the connection closed
 * once it is flushed (or one second later).
 * Must not: block, parse replies (an idle server has nothing to say; any
 * byte means the connection is no longer usable), or leak a connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core/lib/xmalloc.h"
#include "delivery/smtp_cache.h"

struct parked {
	char                  key[400];
	struct bufferevent   *bev;
	struct smtp_conn_info info;
	struct event         *timer;
	bool                  closing;	/* QUIT written, waiting for flush */
	struct parked        *next;
};

static struct parked *head;
static unsigned nparked;

static void
unlink_parked(struct parked *p)
{
	struct parked **pp;

	for (pp = &head; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			nparked--;
			return;
		}
}

static void
drop(struct parked *p)
{
	unlink_parked(p);
	if (p->bev)
		bufferevent_free(p->bev);
	if (p->timer)
		event_free(p->timer);
	free(p);
}

static void
idle_read_cb(struct bufferevent *bev, void *arg)
{
	drop(arg);	/* e.g. "421 timeout" before the server hangs up */
}

static void
idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
	drop(arg);
}

static void
quit_written_cb(struct bufferevent *bev, void *arg)
{
	struct parked *p = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		drop(p);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct parked *p = arg;
	struct timeval tv = { 1, 0 };

	if (p->closing) {	/* QUIT did not drain within a second */
		drop(p);
		return;
	}
	/* Idle too long: say goodbye; the reply is not awaited. */
	p->closing = true;
	bufferevent_setcb(p->bev, idle_read_cb, quit_written_cb, idle_event_cb, p);
	evbuffer_add(bufferevent_get_output(p->bev), "QUIT\r\n", 6);
	evtimer_add(p->timer, &tv);
}

void
smtp_cache_put(struct event_base *base, const char *key,
	       struct bufferevent *bev, const struct smtp_conn_info *info,
	       long long idle_limit)
{
	struct parked *p = xcalloc(1, sizeof(*p));
	struct timeval tv = { (time_t)(idle_limit > 0 ? idle_limit : 2), 0 };
	struct parked **pp;

	snprintf(p->key, sizeof(p->key), "%s", key);
	p->bev = bev;
	p->info = *info;
	p->timer = evtimer_new(base, timer_cb, p);
	if (p->timer == NULL) {
		bufferevent_free(bev);
		free(p);
		return;
	}
	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_setcb(bev, idle_read_cb, NULL, idle_event_cb, p);
	bufferevent_enable(bev, EV_READ);
	evtimer_add(p->timer, &tv);
	/* at the tail: the oldest connection is taken first */
	for (pp = &head; *pp; pp = &(*pp)->next)
		;
	*pp = p;
	nparked++;
	/* a server that already spoke or hung up is not worth keeping */
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		drop(p);
}

struct bufferevent *
smtp_cache_take(const char *key, struct smtp_conn_info *info)
{
	struct parked *p;
	struct bufferevent *bev;

	for (p = head; p; p = p->next)
		if (!p->closing && strcmp(p->key, key) == 0)
			break;
	if (p == NULL)
		return NULL;
	bev = p->bev;
	*info = p->info;
	p->bev = NULL;
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	drop(p);
	return bev;
}

unsigned
smtp_cache_count(void)
{
	return nparked;
}

void
smtp_cache_clear(void)
{
	while (head)
		drop(head);
}
