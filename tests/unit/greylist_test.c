/*
 * greylist_test.c - greylisting decisions with an injected clock on a
 * private LMDB store: a new triplet is deferred for greylist_delay, a
 * retry inside the window passes and is remembered, a retry after the
 * window starts over, the /24 (IPv4) and /64 (IPv6) client networks,
 * exemptions, automatic allow after N passes, state kept across a reopen,
 * sender normalisation (VERP, BATV, extensions), the reply text, and
 * configuration errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/greylist.h"
#include "testdir.h"

static char dir[64];

static int
setup(void **state)
{
	(void)state;
	assert_int_equal(testdir_make(dir, sizeof(dir), "greylist_test"), 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	assert_int_equal(testdir_remove(dir), 0);
	return 0;
}

static struct greylist *
gl_open(const char *extra, struct config **cp)
{
	char text[1024];
	struct errbuf err;
	struct greylist *g;

	snprintf(text, sizeof(text),
		 "greylist_database = lmdb:%s/db/greylist\n"
		 "greylist_delay = 60s\ngreylist_retry_window = 1h\n"
		 "greylist_max_age = 2d\n%s", dir, extra);
	errbuf_clear(&err);
	*cp = config_parse_main(text, "main.cf", NULL, &err);
	assert_non_null(*cp);
	g = greylist_new(*cp, &err);
	if (g == NULL)
		fail_msg("%s", errbuf_str(&err));
	return g;
}

static enum greylist_result
check(struct greylist *g, const char *ip, const char *from, const char *to,
      time_t now, const char **why, long *left)
{
	struct greylist_query q;
	struct errbuf err;
	enum greylist_result r;

	memset(&q, 0, sizeof(q));
	q.client_addr = ip;
	q.sender = from;
	q.rcpt = to;
	q.now = now;
	errbuf_clear(&err);
	r = greylist_check(g, &q, why, left, &err);
	if (r == GREYLIST_ERROR)
		fail_msg("%s", errbuf_str(&err));
	return r;
}

static void
test_delay_and_window(void **state)
{
	struct config *c;
	struct greylist *g = gl_open("greylist_auto_allow_count = 0\n", &c);
	const char *why;
	long left;
	time_t t0 = 1000000;

	(void)state;
	assert_int_equal(check(g, "192.0.2.10", "a@x.test", "b@y.test", t0,
			       &why, &left), GREYLIST_DEFER);
	assert_string_equal(why, "new");
	assert_int_equal(left, 60);
	/* too early: still deferred, the clock is not reset */
	assert_int_equal(check(g, "192.0.2.10", "a@x.test", "b@y.test", t0 + 20,
			       &why, &left), GREYLIST_DEFER);
	assert_string_equal(why, "early retry");
	assert_int_equal(left, 40);
	/* in time: passes, then stays passed */
	assert_int_equal(check(g, "192.0.2.10", "a@x.test", "b@y.test", t0 + 61,
			       &why, &left), GREYLIST_PASS);
	assert_string_equal(why, "retried in time");
	assert_int_equal(check(g, "192.0.2.99", "A@X.test", "b@Y.TEST",
			       t0 + 3 * 3600, &why, &left), GREYLIST_PASS);
	assert_string_equal(why, "triplet passed");
	/* other /24, other sender, other recipient: new triplets */
	assert_int_equal(check(g, "192.0.3.10", "a@x.test", "b@y.test", t0 + 62,
			       &why, &left), GREYLIST_DEFER);
	assert_int_equal(check(g, "192.0.2.10", "z@x.test", "b@y.test", t0 + 62,
			       &why, &left), GREYLIST_DEFER);
	assert_int_equal(check(g, "192.0.2.10", "a@x.test", "c@y.test", t0 + 62,
			       &why, &left), GREYLIST_DEFER);
	/* forgotten after max_age without use */
	assert_int_equal(check(g, "192.0.2.10", "a@x.test", "b@y.test",
			       t0 + 3 * 3600 + 2 * 86400 + 1, &why, &left),
			 GREYLIST_DEFER);
	greylist_free(&g);
	config_free(&c);
}

static void
test_retry_window(void **state)
{
	struct config *c;
	struct greylist *g = gl_open("", &c);
	const char *why;
	long left;
	time_t t0 = 2000000;

	(void)state;
	assert_int_equal(check(g, "198.51.100.1", "", "b@y.test", t0, &why,
			       &left), GREYLIST_DEFER);
	/* the window (delay + 1h) has passed: start over */
	assert_int_equal(check(g, "198.51.100.1", "", "b@y.test",
			       t0 + 60 + 3600 + 1, &why, &left), GREYLIST_DEFER);
	assert_string_equal(why, "new");
	assert_int_equal(check(g, "198.51.100.1", "", "b@y.test",
			       t0 + 60 + 3600 + 62, &why, &left), GREYLIST_PASS);
	greylist_free(&g);
	config_free(&c);
}

static void
test_ipv6_and_exempt(void **state)
{
	struct config *c;
	struct greylist *g = gl_open("", &c);
	struct greylist_query q;
	struct errbuf err;
	const char *why;
	long left;
	char net[64];

	(void)state;
	assert_int_equal(greylist_client_net("2001:db8:1:2:3::4", net,
					     sizeof(net)), 0);
	assert_string_equal(net, "2001:db8:1:2");
	assert_int_equal(greylist_client_net("::ffff:192.0.2.7", net,
					     sizeof(net)), 0);
	assert_string_equal(net, "192.0.2");
	assert_int_equal(greylist_client_net("nonsense", net, sizeof(net)), -1);

	assert_int_equal(check(g, "2001:db8:1:2::1", "a@x.test", "b@y.test", 100,
			       &why, &left), GREYLIST_DEFER);
	/* same /64 */
	assert_int_equal(check(g, "2001:db8:1:2:ffff::9", "a@x.test",
			       "b@y.test", 200, &why, &left), GREYLIST_PASS);
	/* other /64 */
	assert_int_equal(check(g, "2001:db8:1:3::1", "a@x.test", "b@y.test", 200,
			       &why, &left), GREYLIST_DEFER);
	/* exemptions */
	memset(&q, 0, sizeof(q));
	q.client_addr = "203.0.113.5";
	q.sender = "a@x.test";
	q.rcpt = "b@y.test";
	q.now = 100;
	q.in_mynetworks = true;
	errbuf_clear(&err);
	assert_int_equal(greylist_check(g, &q, &why, &left, &err), GREYLIST_PASS);
	assert_string_equal(why, "exempt");
	q.in_mynetworks = false;
	q.sasl_authenticated = true;
	assert_int_equal(greylist_check(g, &q, &why, &left, &err), GREYLIST_PASS);
	q.sasl_authenticated = false;
	assert_int_equal(greylist_check(g, &q, &why, &left, &err), GREYLIST_DEFER);
	greylist_free(&g);
	config_free(&c);
}

static void
test_auto_allow_and_reopen(void **state)
{
	struct config *c;
	struct greylist *g = gl_open("greylist_auto_allow_count = 2\n", &c);
	const char *why;
	long left;

	(void)state;
	for (int i = 0; i < 2; i++) {
		char to[32];

		snprintf(to, sizeof(to), "u%d@y.test", i);
		assert_int_equal(check(g, "192.0.2.1", "a@x.test", to, 1000,
				       &why, &left), GREYLIST_DEFER);
		assert_int_equal(check(g, "192.0.2.1", "a@x.test", to, 1100,
				       &why, &left), GREYLIST_PASS);
	}
	/* two passes from 192.0.2.0/24: a new triplet passes at once */
	assert_int_equal(check(g, "192.0.2.200", "new@x.test", "v@y.test", 1200,
			       &why, &left), GREYLIST_PASS);
	assert_string_equal(why, "client auto-allowed");
	greylist_free(&g);
	config_free(&c);
	/* the store survives a reopen (a restart) */
	g = gl_open("greylist_auto_allow_count = 0\n", &c);
	assert_int_equal(check(g, "192.0.2.1", "a@x.test", "u1@y.test", 5000,
			       &why, &left), GREYLIST_PASS);
	assert_string_equal(why, "triplet passed");
	greylist_free(&g);
	config_free(&c);
}

static void
test_reply_text(void **state)
{
	struct config *c;
	struct greylist *g = gl_open("", &c);
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	greylist_reply_text(g, "bob@example.test", 42, &b);
	assert_string_equal(buf_cstr(&b), "Greylisted, see "
			    "http://postgrey.schweikert.ch/help/example.test.html");
	greylist_free(&g);
	config_free(&c);
	g = gl_open("greylist_text = wait %s s for %r (100%%)\n", &c);
	buf_reset(&b);
	greylist_reply_text(g, "bob@example.test", 42, &b);
	assert_string_equal(buf_cstr(&b), "wait 42 s for example.test (100%)");
	buf_free(&b);
	greylist_free(&g);
	config_free(&c);
}

static void
sender_is(const char *in, const char *want)
{
	struct buf b;

	buf_init(&b, 0);
	greylist_sender_key(in, &b);
	assert_string_equal(buf_cstr(&b), want);
	buf_free(&b);
}

static void
test_sender_key(void **state)
{
	struct config *c;
	struct greylist *g;
	const char *why;
	long left;

	(void)state;
	sender_is("Joe@Example.ORG", "joe@example.org");
	sender_is("", "");
	sender_is("list-bounces+joe=example.org@lists.test", "list-bounces@lists.test");
	sender_is("bounce-12345-67@news.test", "bounce-#-#@news.test");
	sender_is("prvs=1234abcdef=joe@example.org", "joe@example.org");
	sender_is("btv1==123abc==joe@example.org", "joe@example.org");
	sender_is("noat", "noat");
	/* two VERP bounces of one list are one triplet */
	g = gl_open("", &c);
	assert_int_equal(check(g, "192.0.2.5", "bounce-111@news.test",
			       "b@y.test", 100, &why, &left), GREYLIST_DEFER);
	assert_int_equal(check(g, "192.0.2.5", "bounce-222@news.test",
			       "b@y.test", 200, &why, &left), GREYLIST_PASS);
	greylist_free(&g);
	config_free(&c);
}

static void
bad_conf(const char *text, const char *msg)
{
	struct errbuf err;
	struct config *c;

	errbuf_clear(&err);
	c = config_parse_main(text, "main.cf", NULL, &err);
	assert_non_null(c);
	assert_null(greylist_new(c, &err));
	if (strstr(errbuf_str(&err), msg) == NULL)
		fail_msg("got \"%s\", expected \"%s\"", errbuf_str(&err), msg);
	config_free(&c);
}

static void
test_bad_config(void **state)
{
	(void)state;
	bad_conf("greylist_delay = soon\n", "greylist_delay");
	bad_conf("greylist_auto_allow_count = -1\n", "greylist_auto_allow_count");
	bad_conf("greylist_database = texthash:/etc/x\n", "greylist_database");
	bad_conf("greylist_database = lmdb:relative/path\n", "greylist_database");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delay_and_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_and_exempt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auto_allow_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sender_key, setup, teardown),
		cmocka_unit_test(test_bad_config),
	};

	return cmocka_run_group_tests_name("greylist", tests, NULL, NULL);
}
