/*
 * smtp_cache_test.c - the SMTP client's idle connection cache on a real
 * event loop with socket pairs: take by key (oldest first, info kept),
 * a connection the peer closes is dropped, one that idles past its limit
 * gets QUIT and is closed, one the peer talks on is dropped, and clear
 * empties the cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "delivery/smtp_cache.h"

static struct bufferevent *
pair(struct event_base *base, int *peer)
{
	int fd[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	*peer = fd[1];
	return bufferevent_socket_new(base, fd[0], BEV_OPT_CLOSE_ON_FREE);
}

static void
spin(struct event_base *base, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static void
test_take_and_drop(void **state)
{
	struct event_base *base = event_base_new();
	struct smtp_conn_info info, got;
	struct bufferevent *b1, *b2, *t;
	int p1, p2;

	memset(&info, 0, sizeof(info));
	info.uses = 3;
	info.pipelining = true;
	strcpy(info.relay, "mx[127.0.0.1]:25");
	b1 = pair(base, &p1);
	b2 = pair(base, &p2);
	smtp_cache_put(base, "k", b1, &info, 30);
	info.uses = 7;
	smtp_cache_put(base, "k", b2, &info, 30);
	assert_int_equal(smtp_cache_count(), 2);
	assert_null(smtp_cache_take("other", &got));
	t = smtp_cache_take("k", &got);
	assert_ptr_equal(t, b1);	/* the oldest first */
	assert_int_equal(got.uses, 3);
	assert_true(got.pipelining);
	assert_string_equal(got.relay, "mx[127.0.0.1]:25");
	assert_int_equal(smtp_cache_count(), 1);
	bufferevent_free(t);
	close(p1);
	/* the peer hangs up while the connection is parked: dropped */
	close(p2);
	spin(base, 100);
	assert_int_equal(smtp_cache_count(), 0);
	assert_null(smtp_cache_take("k", &got));
	event_base_free(base);
}

static void
test_idle_quit_and_talk(void **state)
{
	struct event_base *base = event_base_new();
	struct smtp_conn_info info;
	char buf[64];
	ssize_t n;
	int p1, p2;

	memset(&info, 0, sizeof(info));
	smtp_cache_put(base, "idle", pair(base, &p1), &info, 1);
	smtp_cache_put(base, "talk", pair(base, &p2), &info, 30);
	/* a server that speaks while idle ("421 timeout") */
	assert_int_equal(write(p2, "421 bye\r\n", 9), 9);
	spin(base, 100);
	assert_int_equal(smtp_cache_count(), 1);
	assert_null(smtp_cache_take("talk", &info));
	/* past the idle limit: QUIT, then closed */
	spin(base, 1300);
	assert_int_equal(smtp_cache_count(), 0);
	n = read(p1, buf, sizeof(buf) - 1);
	assert_int_equal(n, 6);
	buf[n] = '\0';
	assert_string_equal(buf, "QUIT\r\n");
	assert_int_equal(read(p1, buf, sizeof(buf)), 0);	/* closed */
	close(p1);
	close(p2);
	smtp_cache_put(base, "x", pair(base, &p1), &info, 30);
	smtp_cache_clear();
	assert_int_equal(smtp_cache_count(), 0);
	spin(base, 50);		/* libevent closes freed sockets on the loop */
	assert_int_equal(read(p1, buf, sizeof(buf)), 0);
	close(p1);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_take_and_drop),
		cmocka_unit_test(test_idle_quit_and_talk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
