/*
 * table_mysql_test.c - the mysql: driver without a server: value quoting
 * through a connection handle, configuration errors, and the outcomes
 * when no server answers (TEMPFAIL, never NOTFOUND) or when the domain
 * restriction answers without asking one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <mysql.h>

#include "backends/table.h"
#include "backends/table_mysql.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "testdir.h"

static char dir[64];

/* A loopback port nobody listens on. */
static int
closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static void
test_quote(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "alice@example.test", "alice@example.test" },
		{ "x'); DROP TABLE mailbox; --", "x\\'); DROP TABLE mailbox; --" },
		{ "x' OR '1'='1", "x\\' OR \\'1\\'=\\'1" },
		{ "back\\slash\"", "back\\\\slash\\\"" },
		{ "nl\ncr\r", "nl\\ncr\\r" },
		{ "ctrl-z\032", "ctrl-z\\Z" },
	};
	MYSQL *db = mysql_init(NULL);

	assert_non_null(db);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct errbuf err;
		struct buf out;

		buf_init(&out, 1024);
		assert_int_equal(table_mysql_quote(db, cases[i].in, &out, &err), 0);
		if (strcmp(buf_cstr(&out), cases[i].want) != 0)
			fail_msg("\"%s\": got \"%s\", want \"%s\"", cases[i].in,
				 buf_cstr(&out), cases[i].want);
		buf_free(&out);
	}
	{
		/* Over the buffer's limit: an error, not a truncated value. */
		struct errbuf err;
		struct buf out;

		buf_init(&out, 8);
		assert_int_equal(table_mysql_quote(db, "''''''", &out, &err), -1);
		buf_free(&out);
	}
	mysql_close(db);
}

static void
test_open_errors(void **state)
{
	static const struct {
		const char *text;
		const char *err;
	} cases[] = {
		{ "hosts = h\nquery = SELECT 1\n", "missing \"dbname\"" },
		{ "hosts = h\ndbname = d\n", "missing \"query\"" },
		{ "hosts = h:0\ndbname = d\nquery = q\n", "\"h:0\": bad port number" },
		{ "hosts = h:x\ndbname = d\nquery = q\n", "bad port number" },
		{ "hosts = unix:rel\ndbname = d\nquery = q\n", "expected unix:/absolute/path" },
		{ "hosts = [::1\ndbname = d\nquery = q\n", "expected [address]:port" },
		{ "dbname = d\nquery = SELECT '%x'\n", "invalid query template" },
		{ "dbname = d\nquery = q\nresult_format = %\n", "invalid result template" },
		{ "dbname = d\nquery = q\ntimeout = 0\n", "timeout = 0: expected a number" },
		{ "dbname = d\nquery = q\ntls_verify_cert = perhaps\n", "expected yes or no" },
		{ "dbname = d\nquery = q\ndomain = nosuch:x\n", "unsupported dictionary type" },
		{ "dbname d\n", "line 1: missing '='" },
	};
	struct errbuf err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *path = testdir_write(dir, "bad.cf", cases[i].text);
		char *spec = xasprintf("mysql:%s", path);
		struct table *t = table_open(spec, TABLE_F_FOLD, &err);

		if (t != NULL || strstr(errbuf_str(&err), cases[i].err) == NULL)
			fail_msg("case %zu: %s: \"%s\", want \"%s\"", i,
				 t ? "opened" : "error", errbuf_str(&err), cases[i].err);
		assert_non_null(strstr(errbuf_str(&err), spec));
		free(spec);
		free(path);
	}
}

static void
test_no_server_is_tempfail(void **state)
{
	char *text = xasprintf(
	    "hosts = inet:127.0.0.1:%d 127.0.0.1:%d\n"
	    "user = u\npassword = p\ndbname = d\n"
	    "query = SELECT maildir FROM mailbox WHERE username='%%s'\n"
	    "domain = example.test\n"
	    "timeout = 2\nretry_interval = 1\nfrobnicate = yes\n",
	    closed_port(), closed_port());
	char *path = testdir_write(dir, "down.cf", text);
	char *spec = xasprintf("mysql:%s", path);
	struct strlist warn;
	struct errbuf err;
	struct table *t;
	struct buf v;

	/* Opening does not connect: a server down at start-up is no error. */
	t = table_open(spec, TABLE_F_FOLD, &err);
	assert_non_null(t);
	assert_true(table_flags(t) & TABLE_F_BLOCKING);
	strlist_init(&warn);
	table_warnings(t, &warn);
	assert_int_equal(warn.n, 1);
	assert_non_null(strstr(warn.v[0], "line 9: unknown parameter \"frobnicate\""));
	strlist_free(&warn);

	buf_init(&v, 4096);
	assert_int_equal(table_lookup(t, "alice@example.test", &v, &err), TABLE_TEMPFAIL);
	assert_non_null(strstr(errbuf_str(&err), "127.0.0.1"));
	/* Both hosts are now in back-off: still a temporary failure. */
	assert_int_equal(table_lookup(t, "bob@example.test", &v, &err), TABLE_TEMPFAIL);
	assert_non_null(strstr(errbuf_str(&err), "no MySQL server available"));
	/* Outside the listed domain: not found, without asking a server. */
	assert_int_equal(table_lookup(t, "alice@other.test", &v, &err), TABLE_NOTFOUND);
	assert_int_equal(table_lookup(t, "example.test", &v, &err), TABLE_NOTFOUND);
	buf_free(&v);
	table_close(&t);
	free(spec);
	free(path);
	free(text);
}

static void
test_unreadable_cf_is_a_surrogate(void **state)
{
	struct errbuf err;
	struct table *t = table_open("mysql:/nonexistent/x.cf", 0, &err);
	struct buf v;

	assert_non_null(t);
	buf_init(&v, 100);
	assert_int_equal(table_lookup(t, "k", &v, &err), TABLE_TEMPFAIL);
	assert_non_null(strstr(errbuf_str(&err), "/nonexistent/x.cf"));
	buf_free(&v);
	table_close(&t);
}

static int
setup(void **state)
{
	return testdir_make(dir, sizeof(dir), "facteur-mysql-test");
}

static int
teardown(void **state)
{
	return testdir_remove(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_no_server_is_tempfail),
		cmocka_unit_test(test_unreadable_cf_is_a_surrogate),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
