/*
 * status_test.c - facteur status counters (totals and the last minute,
 * delivery statuses), queue counts per state directory, the text and the
 * Prometheus renderings (HELP/TYPE per family, escaped label values,
 * failing tables from table_cache_note_failure).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/table_cache.h"
#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"
#include "core/status.h"

static void
test_counters(void **state)
{
	unsigned long long t0[STATUS_NCOUNTERS], m0[STATUS_NCOUNTERS];
	unsigned long long t1[STATUS_NCOUNTERS], m1[STATUS_NCOUNTERS];

	status_counters(t0, m0);
	status_count(STATUS_RECEIVED);
	status_count(STATUS_RECEIVED);
	status_count_delivery("sent");
	status_count_delivery("deferred");
	status_count_delivery("bounced");
	status_count_delivery("expired");	/* not counted */
	status_count_delivery(NULL);
	status_count((enum status_counter)99);	/* ignored */
	status_counters(t1, m1);
	assert_int_equal(t1[STATUS_RECEIVED] - t0[STATUS_RECEIVED], 2);
	assert_int_equal(m1[STATUS_RECEIVED] - m0[STATUS_RECEIVED], 2);
	assert_int_equal(t1[STATUS_DELIVERED] - t0[STATUS_DELIVERED], 1);
	assert_int_equal(t1[STATUS_DEFERRED] - t0[STATUS_DEFERRED], 1);
	assert_int_equal(t1[STATUS_BOUNCED] - t0[STATUS_BOUNCED], 1);
}

static void
test_queue_count(void **state)
{
	char dir[] = "/tmp/facteur-status-test.XXXXXX";
	char path[256];
	long c[STATUS_QUEUE_STATES];

	assert_non_null(mkdtemp(dir));
	for (size_t i = 0; i < 3; i++) {	/* incoming active deferred */
		snprintf(path, sizeof(path), "%s/%s", dir, status_queue_states[i]);
		assert_int_equal(mkdir(path, 0700), 0);
	}
	snprintf(path, sizeof(path), "%s/active/AAA", dir);
	fclose(fopen(path, "w"));
	snprintf(path, sizeof(path), "%s/active/BBB", dir);
	fclose(fopen(path, "w"));
	snprintf(path, sizeof(path), "%s/active/.hidden", dir);
	fclose(fopen(path, "w"));
	status_queue_count(dir, c);
	assert_int_equal(c[0], 0);
	assert_int_equal(c[1], 2);
	assert_int_equal(c[2], 0);
	assert_int_equal(c[3], -1);	/* hold/ missing */
	assert_int_equal(c[4], -1);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

static struct status_daemon *
daemon_fixture(void)
{
	static struct status_listener l[2];
	static char *addrs[] = { "127.0.0.1:25", "[::1]:25" };
	static struct status_daemon d;

	memset(&d, 0, sizeof(d));
	l[0].service = "smtp";
	l[0].addrs = addrs;
	l[0].naddrs = 2;
	l[0].sessions = 3;
	l[0].max_sessions = 100;
	l[1].service = "we\"ird\\name";
	l[1].command = "managesieved";
	l[1].sessions = 0;
	d.pid = 42;
	d.config_dir = "/etc/facteur";
	d.listeners = l;
	d.nlisteners = 2;
	d.sessions = 3;
	d.reloads = 2;
	d.queue[1] = 5;
	d.queue[3] = 1;
	d.started = 1000;
	return &d;
}

static void
test_text(void **state)
{
	struct buf b;

	buf_init(&b, 0);
	status_format_text(daemon_fixture(), &b);
	assert_non_null(strstr(buf_cstr(&b), "state: running\n"));
	assert_non_null(strstr(buf_cstr(&b), "pid: 42\n"));
	assert_non_null(strstr(buf_cstr(&b), "listener: smtp addresses="
			       "127.0.0.1:25,[::1]:25 sessions=3 max=100\n"));
	assert_non_null(strstr(buf_cstr(&b), "listener: we\"ird\\name "
			       "addresses= sessions=0 max=0 command=managesieved\n"));
	assert_non_null(strstr(buf_cstr(&b), "queue: incoming=0 active=5 "
			       "deferred=0 hold=1 corrupt=0\n"));
	assert_non_null(strstr(buf_cstr(&b), "reloads: 2 (failed: 0, last: "
			       "never)\n"));
	buf_free(&b);
}

/* Every sample's family has HELP then TYPE before it. */
static void
check_families(const char *text)
{
	char *copy = xstrdup(text), *save = NULL, *line;
	char helped[64][96], typed[64][96];
	size_t nh = 0, nt = 0;

	for (line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[96];
		size_t n;

		if (strncmp(line, "# HELP ", 7) == 0) {
			sscanf(line + 7, "%95s", helped[nh++]);
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			sscanf(line + 7, "%95s", typed[nt]);
			assert_string_equal(typed[nt], helped[nh - 1]);
			nt++;
			continue;
		}
		n = strcspn(line, "{ ");
		assert_true(n < sizeof(name));
		memcpy(name, line, n);
		name[n] = '\0';
		assert_memory_equal(name, "facteur_", 8);
		assert_true(nt > 0);
		assert_string_equal(name, typed[nt - 1]);
	}
	free(copy);
}

static void
test_metrics(void **state)
{
	struct buf b;

	table_cache_note_failure("ldap:/etc/facteur/\"q\".cf", "server down");
	table_cache_note_failure("ldap:/etc/facteur/\"q\".cf", "server down");
	buf_init(&b, 0);
	status_format_metrics(daemon_fixture(), &b);
	check_families(buf_cstr(&b));
	assert_non_null(strstr(buf_cstr(&b), "\nfacteur_up 1\n"));
	assert_non_null(strstr(buf_cstr(&b),
		"\nfacteur_listener_sessions{listener=\"smtp\",command=\"smtpd\"} "
		"3\n"));
	assert_non_null(strstr(buf_cstr(&b),
		"\nfacteur_listener_sessions{listener=\"we\\\"ird\\\\name\","
		"command=\"managesieved\"} 0\n"));
	assert_non_null(strstr(buf_cstr(&b),
		"\nfacteur_queue_messages{state=\"hold\"} 1\n"));
	assert_non_null(strstr(buf_cstr(&b),
		"\nfacteur_table_failures_total{table=\"ldap:/etc/facteur/"
		"\\\"q\\\".cf\"} 2\n"));
	assert_non_null(strstr(buf_cstr(&b), "# TYPE facteur_reloads_total "
			       "counter\n"));
	buf_free(&b);
	buf_init(&b, 0);
	status_format_text(daemon_fixture(), &b);
	assert_non_null(strstr(buf_cstr(&b), "backend_failure: ldap:/etc/"
			       "facteur/\"q\".cf count=2 last="));
	assert_null(strstr(buf_cstr(&b), "backends: ok"));
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_queue_count),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_metrics),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
