/*
 * quota_test.c - Maildir++ quota: the limits line and maildirsize parsing
 * (valid and malformed), recalculation from a maildir with folders (,S=
 * sizes and stat), the rebuild rules (missing, 5120 bytes, changed limits,
 * stale and over quota), the over-quota decision, and four threads
 * appending at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "delivery/quota.h"
#include "testdir.h"

static char base[256], md[300];

static int
setup(void **state)
{
	if (testdir_make(base, sizeof(base), "facteur-quota-test") < 0)
		return -1;
	snprintf(md, sizeof(md), "%s/Maildir/", base);
	return 0;
}

static int
teardown(void **state)
{
	return testdir_remove(base);
}

static void
mk(const char *rel)
{
	char p[600];

	snprintf(p, sizeof(p), "%s%s", md, rel);
	assert_int_equal(mkdir(p, 0700), 0);
}

static void
put(const char *rel, const char *text)
{
	char p[600];
	FILE *f;

	snprintf(p, sizeof(p), "%s%s", md, rel);
	assert_non_null(f = fopen(p, "w"));
	fputs(text, f);
	fclose(f);
}

static char *
slurp(const char *rel)
{
	static char b[8192];
	char p[600];
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "%s%s", md, rel);
	if ((f = fopen(p, "r")) == NULL)
		return NULL;
	n = fread(b, 1, sizeof(b) - 1, f);
	fclose(f);
	b[n] = '\0';
	return b;
}

static void
make_maildir(void)
{
	mk("");
	mk("cur");
	mk("new");
	mk("tmp");
}

static void
test_limits_parse(void **state)
{
	static const struct { const char *in; int rc; long long b, c; } t[] = {
		{ "1000S,10C", 0, 1000, 10 },
		{ "1000S", 0, 1000, 0 },
		{ "10C", 0, 0, 10 },
		{ "10C,1000S", 0, 1000, 10 },
		{ " 5000S , 3C ", 0, 5000, 3 },
		{ "0S", 0, 0, 0 },
		{ "", -1, 0, 0 },
		{ "1000", -1, 0, 0 },
		{ "1000X", -1, 0, 0 },
		{ "1000S,", 0, 1000, 0 },
		{ "1000S,10C,5S", -1, 0, 0 },
		{ "S", -1, 0, 0 },
		{ "-5S", -1, 0, 0 },
		{ "99999999999999999999999S", -1, 0, 0 },
		{ "1000S 10C", -1, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct quota_limits l;
		int rc = quota_limits_parse(t[i].in, &l);

		assert_int_equal(rc, t[i].rc);
		if (rc == 0) {
			assert_int_equal(l.bytes, t[i].b);
			assert_int_equal(l.count, t[i].c);
		}
	}
}

static void
test_limits_format(void **state)
{
	static const struct { long long b, c; const char *out; } t[] = {
		{ 1000, 10, "1000S,10C" }, { 1000, 0, "1000S" },
		{ 0, 10, "10C" }, { 0, 0, "0S" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct quota_limits l = { t[i].b, t[i].c }, back;
		struct buf b;

		buf_init(&b, 0);
		quota_limits_format(&l, &b);
		assert_string_equal(buf_cstr(&b), t[i].out);
		assert_int_equal(quota_limits_parse(buf_cstr(&b), &back), 0);
		assert_int_equal(back.bytes, l.bytes);
		assert_int_equal(back.count, l.count);
		buf_free(&b);
	}
}

static void
test_file_parse(void **state)
{
	static const struct { const char *in; int rc; long long lb, ub, uc; } t[] = {
		{ "1000S\n100 1\n", 0, 1000, 100, 1 },
		{ "1000S,5C\n100 1\n200 2\n-50 -1\n", 0, 1000, 250, 2 },
		/* Courier pads with spaces */
		{ "1000S\n       300       3\n", 0, 1000, 300, 3 },
		/* an append in progress is not counted */
		{ "1000S\n100 1\n200", 0, 1000, 100, 1 },
		{ "1000S\n\n100 1\n", 0, 1000, 100, 1 },
		{ "1000S\n", 0, 1000, 0, 0 },
		{ "1000S", -1, 0, 0, 0 },
		{ "", -1, 0, 0, 0 },
		{ "junk\n1 1\n", -1, 0, 0, 0 },
		{ "1000S\n1 x\n", -1, 0, 0, 0 },
		{ "1000S\n1\n", -1, 0, 0, 0 },
		{ "1000S\n1 1 1\n", -1, 0, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct quota_limits l;
		struct quota_usage u;
		int rc = quota_file_parse(t[i].in, strlen(t[i].in), &l, &u);

		assert_int_equal(rc, t[i].rc);
		if (rc == 0) {
			assert_int_equal(l.bytes, t[i].lb);
			assert_int_equal(u.bytes, t[i].ub);
			assert_int_equal(u.count, t[i].uc);
		}
	}
}

static void
test_scan_and_recalc(void **state)
{
	struct quota_limits lim = { 100000, 0 };
	struct quota_usage u;
	struct errbuf err;

	errbuf_clear(&err);
	/* no maildir at all: empty, and nothing written */
	assert_int_equal(quota_recalc(md, &lim, &u, &err), 0);
	assert_int_equal(u.bytes, 0);
	assert_null(slurp(QUOTA_FILE));

	make_maildir();
	put("new/1.M1P1.h,S=1000", "x");		/* S= wins over the real size */
	put("cur/2.M2P2.h,S=2000:2,S", "x");
	put("cur/3.M3P3.h:2,", "12345");		/* no S=: stat */
	put("tmp/4.M4P4.h,S=9999", "x");		/* tmp/ never counts */
	mk(".Sent");
	mk(".Sent/cur");
	mk(".Sent/new");
	put(".Sent/cur/5.M5P5.h,S=300:2,S", "x");
	mk(".Empty");				/* folder without cur/new */
	put(".hidden-file", "x");

	assert_int_equal(quota_scan(md, &u, &err), 0);
	assert_int_equal(u.bytes, 1000 + 2000 + 5 + 300);
	assert_int_equal(u.count, 4);

	assert_int_equal(quota_recalc(md, &lim, &u, &err), 0);
	assert_string_equal(slurp(QUOTA_FILE), "100000S\n3305 4\n");
}

static void
test_check_rules(void **state)
{
	struct quota_limits lim = { 10000, 0 };
	struct quota_usage u;
	struct errbuf err;
	char big[6000];
	char p[600];
	struct timeval tv[2];

	errbuf_clear(&err);
	make_maildir();
	put("new/1.M1P1.h,S=4000", "x");

	/* missing: rebuilt */
	assert_int_equal(quota_check(md, &lim, 1000, 1, time(NULL), &u, &err), 0);
	assert_int_equal(u.bytes, 4000);
	assert_string_equal(slurp(QUOTA_FILE), "10000S\n4000 1\n");

	/* fits exactly; one byte more does not */
	assert_int_equal(quota_check(md, &lim, 6000, 1, time(NULL), &u, &err), 0);
	assert_int_equal(quota_check(md, &lim, 6001, 1, time(NULL), &u, &err), 1);

	/* the file is trusted while fresh, even if the maildir changed */
	assert_int_equal(quota_add(md, &lim, 5000, 1, &err), 0);
	assert_string_equal(slurp(QUOTA_FILE), "10000S\n4000 1\n5000 1\n");
	assert_int_equal(quota_check(md, &lim, 2000, 1, time(NULL), &u, &err), 1);
	assert_int_equal(u.bytes, 9000);

	/* stale and over quota: rebuilt (the 5000 were never stored) */
	snprintf(p, sizeof(p), "%s" QUOTA_FILE, md);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= QUOTA_RECALC_AGE + 60;
	tv[1] = tv[0];
	assert_int_equal(utimes(p, tv), 0);
	assert_int_equal(quota_check(md, &lim, 2000, 1, time(NULL), &u, &err), 0);
	assert_int_equal(u.bytes, 4000);

	/* changed limits: rebuilt with the new first line */
	lim.bytes = 20000;
	lim.count = 5;
	assert_int_equal(quota_check(md, &lim, 1, 1, time(NULL), &u, &err), 0);
	assert_string_equal(slurp(QUOTA_FILE), "20000S,5C\n4000 1\n");
	/* message count limit */
	assert_int_equal(quota_check(md, &lim, 1, 4, time(NULL), &u, &err), 0);
	assert_int_equal(quota_check(md, &lim, 1, 5, time(NULL), &u, &err), 1);

	/* 5120 bytes or more: rebuilt */
	memset(big, ' ', sizeof(big));
	big[sizeof(big) - 2] = '\n';
	big[sizeof(big) - 1] = '\0';
	put(QUOTA_FILE, "20000S,5C\n99999 1\n");
	{
		FILE *f = fopen(p, "a");

		assert_non_null(f);
		fputs(big, f);
		fclose(f);
	}
	assert_int_equal(quota_check(md, &lim, 1, 1, time(NULL), &u, &err), 0);
	assert_int_equal(u.bytes, 4000);

	/* malformed: rebuilt, never trusted */
	put(QUOTA_FILE, "garbage\n");
	assert_int_equal(quota_check(md, &lim, 1, 1, time(NULL), &u, &err), 0);
	assert_string_equal(slurp(QUOTA_FILE), "20000S,5C\n4000 1\n");

	/* quota_add on a missing file rebuilds it (the message is there) */
	assert_int_equal(unlink(p), 0);
	put("new/2.M2P2.h,S=10", "x");
	assert_int_equal(quota_add(md, &lim, 10, 1, &err), 0);
	assert_string_equal(slurp(QUOTA_FILE), "20000S,5C\n4010 2\n");
}

#define NTHREADS 4
#define NADDS 500

static void *
adder(void *arg)
{
	struct errbuf err;
	struct quota_limits lim = { 1000000000, 0 };
	long id = (long)(intptr_t)arg;

	for (int i = 0; i < NADDS; i++)
		if (quota_add(md, &lim, 100 + id, 1, &err) < 0)
			return (void *)1;
	return NULL;
}

static void
test_concurrent_add(void **state)
{
	pthread_t th[NTHREADS];
	struct quota_limits lim = { 1000000000, 0 }, l;
	struct quota_usage u;
	struct errbuf err;
	char p[600];
	char *text;
	FILE *f;
	long sz;
	long long want = 0;

	make_maildir();
	errbuf_clear(&err);
	assert_int_equal(quota_recalc(md, &lim, &u, &err), 0);
	for (long i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, adder,
						(void *)(intptr_t)i), 0);
	for (long i = 0; i < NTHREADS; i++) {
		void *rv;

		assert_int_equal(pthread_join(th[i], &rv), 0);
		assert_null(rv);
		want += (100 + i) * NADDS;
	}
	/* every line whole: the sum is exact */
	snprintf(p, sizeof(p), "%s" QUOTA_FILE, md);
	assert_non_null(f = fopen(p, "r"));
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	rewind(f);
	text = malloc((size_t)sz);
	assert_int_equal(fread(text, 1, (size_t)sz, f), (size_t)sz);
	fclose(f);
	assert_int_equal(quota_file_parse(text, (size_t)sz, &l, &u), 0);
	assert_int_equal(u.bytes, want);
	assert_int_equal(u.count, NTHREADS * NADDS);
	free(text);
	/* and past 5120 bytes the next check rebuilds it from the maildir */
	assert_true(sz >= QUOTA_RECALC_SIZE);
	assert_int_equal(quota_check(md, &lim, 1, 1, time(NULL), &u, &err), 0);
	assert_int_equal(u.bytes, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limits_parse),
		cmocka_unit_test(test_limits_format),
		cmocka_unit_test(test_file_parse),
		cmocka_unit_test_setup_teardown(test_scan_and_recalc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_add, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
