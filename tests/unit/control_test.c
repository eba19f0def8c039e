/*
 * control_test.c - the control socket: a request answered now and one
 * answered later (the daemon's status is gathered on a worker), the
 * socket's mode, an over-long command line, and the client's errors when
 * no daemon listens.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "core/control.h"
#include "core/lib/xmalloc.h"

static char qdir[] = "/tmp/facteur-control-test.XXXXXX";

struct srv {
	struct event_base   *base;
	struct control_conn *later;	/* answered from a timer */
	struct event        *timer;
	int                  requests;
};

static void
answer_later(evutil_socket_t fd, short what, void *arg)
{
	struct srv *s = arg;

	control_reply(s->later, "late answer\n", 12);
	s->later = NULL;
}

static void
handler(void *arg, struct control_conn *c, const char *cmd)
{
	struct srv *s = arg;
	char buf[200];

	s->requests++;
	if (strcmp(cmd, "later") == 0) {
		struct timeval tv = { 0, 50000 };

		s->later = c;
		evtimer_add(s->timer, &tv);
		return;
	}
	snprintf(buf, sizeof(buf), "you said <%s>\n", cmd);
	control_reply(c, buf, strlen(buf));
}

struct client {
	const char *cmd;
	char       *out;
	int         rc;
	char        err[300];
	struct event_base *base;
};

static void *
client_run(void *arg)
{
	struct client *c = arg;
	struct errbuf err;

	errbuf_clear(&err);
	c->rc = control_request(qdir, c->cmd, 5, &c->out, &err);
	snprintf(c->err, sizeof(c->err), "%s", errbuf_str(&err));
	event_base_loopbreak(c->base);
	return NULL;
}

static void
ask(struct srv *s, struct client *c, const char *cmd)
{
	pthread_t t;

	memset(c, 0, sizeof(*c));
	c->cmd = cmd;
	c->base = s->base;
	assert_int_equal(pthread_create(&t, NULL, client_run, c), 0);
	event_base_dispatch(s->base);
	pthread_join(t, NULL);
}

static void
test_requests(void **state)
{
	struct srv s;
	struct control *ctl;
	struct client c;
	struct errbuf err;
	struct stat st;
	char path[300];
	char longcmd[400];

	assert_non_null(mkdtemp(qdir));
	memset(&s, 0, sizeof(s));
	assert_int_equal(evthread_use_pthreads(), 0);	/* loopbreak from the client */
	s.base = event_base_new();
	s.timer = evtimer_new(s.base, answer_later, &s);
	errbuf_clear(&err);
	ctl = control_new(s.base, qdir, handler, &s, &err);
	assert_non_null(ctl);
	snprintf(path, sizeof(path), "%s/%s", qdir, CONTROL_SOCKET);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	ask(&s, &c, "status");
	assert_int_equal(c.rc, 0);
	assert_string_equal(c.out, "you said <status>\n");
	free(c.out);

	ask(&s, &c, "later");
	assert_int_equal(c.rc, 0);
	assert_string_equal(c.out, "late answer\n");
	free(c.out);

	memset(longcmd, 'x', sizeof(longcmd) - 1);
	longcmd[sizeof(longcmd) - 1] = '\0';
	ask(&s, &c, longcmd);
	assert_int_equal(c.rc, 0);
	assert_string_equal(c.out, "error: command line too long\n");
	free(c.out);
	assert_int_equal(s.requests, 2);

	control_free(&ctl);
	assert_int_not_equal(stat(path, &st), 0);	/* removed */
	event_free(s.timer);
	event_base_free(s.base);

	/* Nobody listens now. */
	{
		char *out = NULL;

		errbuf_clear(&err);
		assert_int_equal(control_request(qdir, "status", 2, &out, &err), -1);
		assert_null(out);
		assert_non_null(strstr(errbuf_str(&err), "facteurd is not "
				       "running"));
	}
	snprintf(path, sizeof(path), "rm -rf '%s'", qdir);
	assert_int_equal(system(path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
