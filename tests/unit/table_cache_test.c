/*
 * table_cache_test.c - the lookup cache in front of a scripted fake
 * driver that counts its calls: hits, TTL expiry on a test clock,
 * negative entries, TEMPFAIL/CONFIG never kept, LRU eviction, flushes
 * (and an answer fetched before a flush not stored after it), the .cf
 * keys, lookups from four threads at once, and the non-blocking mode
 * (cached answers only, "would block" otherwise).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/table.h"
#include "backends/table_cache.h"
#include "backends/table_cf.h"
#include "backends/table_driver.h"
#include "core/lib/xmalloc.h"
#include "testdir.h"

static int64_t fake_now = 1000000;
static atomic_int fake_calls;
static enum table_status fake_forced;	/* 0: the script below answers */
static bool fake_forcing;

static int64_t
test_clock(void)
{
	return fake_now;
}

/* Keys "u<N>@example.com" with N < 100 are found ("N/"), "bad" is a
 * CONFIG error, anything else is not found. */
static enum table_status
fake_lookup(struct table *t, const char *key, struct buf *value_r,
	    struct errbuf *err)
{
	unsigned n;
	char v[32];

	(void)t;
	atomic_fetch_add(&fake_calls, 1);
	if (fake_forcing) {
		errbuf_set(err, "forced");
		return fake_forced;
	}
	if (strcmp(key, "bad") == 0) {
		errbuf_set(err, "malformed result");
		return TABLE_CONFIG;
	}
	if (sscanf(key, "u%u@example.com", &n) == 1 && n < 100) {
		snprintf(v, sizeof(v), "%u/", n);
		return table_set_value(value_r, v, strlen(v), key, err);
	}
	return TABLE_NOTFOUND;
}

static const struct table_driver fake_driver = {
	.type = "fake", .flags = TABLE_F_BLOCKING, .lookup = fake_lookup,
};

static struct table *
fake_table(bool enabled, int64_t ttl, int64_t nttl, size_t size)
{
	struct table_cache_conf conf;
	struct table *t = xcalloc(1, sizeof(*t));

	table_cache_conf_default(&conf);
	conf.enabled = enabled;
	conf.ttl_ms = ttl;
	conf.negative_ttl_ms = nttl;
	conf.size = size;
	t->drv = &fake_driver;
	t->spec = xstrdup("fake:test");
	t->flags = fake_driver.flags | TABLE_F_FOLD;
	t->cache = table_cache_new(&conf);
	atomic_store(&fake_calls, 0);
	fake_forcing = false;
	return t;
}

static enum table_status
look(struct table *t, const char *key, const char *want)
{
	struct buf v;
	struct errbuf err;
	enum table_status st;

	buf_init(&v, 1024);
	st = table_lookup(t, key, &v, &err);
	if (want) {
		assert_int_equal(st, TABLE_FOUND);
		assert_int_equal(v.len, strlen(want));
		assert_memory_equal(v.data, want, v.len);
	}
	if (st == TABLE_TEMPFAIL || st == TABLE_CONFIG)
		assert_true(errbuf_str(&err)[0] != '\0');
	buf_free(&v);
	return st;
}

static int
setup(void **state)
{
	(void)state;
	table_cache_set_clock(test_clock);
	return 0;
}

static void
test_hit(void **state)
{
	struct table *t = fake_table(true, 60000, 10000, 100);
	struct table_cache_stats s;

	(void)state;
	look(t, "u1@example.com", "1/");
	look(t, "u1@example.com", "1/");
	look(t, "U1@Example.COM", "1/");	/* folded before the cache */
	assert_int_equal(atomic_load(&fake_calls), 1);
	table_cache_get_stats(table_cache_of(t), &s);
	assert_int_equal(s.hits, 2);
	assert_int_equal(s.misses, 1);
	assert_int_equal(s.entries, 1);
	table_close(&t);
}

/* table_nonblock mode: cached answers only, the driver never called. */
static void
test_nonblock(void **state)
{
	struct table *t = fake_table(true, 60000, 10000, 100);
	struct table *nocache = fake_table(false, 0, 0, 1);
	struct table *cheap;
	struct buf v;
	struct errbuf err;

	(void)state;
	look(t, "u1@example.com", "1/");
	assert_int_equal(look(t, "nobody@example.com", NULL), TABLE_NOTFOUND);
	atomic_store(&fake_calls, 0);
	table_nonblock_begin();
	look(t, "U1@example.com", "1/");
	assert_int_equal(look(t, "nobody@example.com", NULL), TABLE_NOTFOUND);
	assert_false(table_nonblock_failed());
	/* A miss: TEMPFAIL "would block", not asked, not cached. */
	buf_init(&v, 1024);
	assert_int_equal(table_lookup(t, "u2@example.com", &v, &err), TABLE_TEMPFAIL);
	assert_string_equal(errbuf_str(&err), "lookup would block");
	assert_true(table_nonblock_failed());
	assert_int_equal(look(nocache, "u1@example.com", NULL), TABLE_TEMPFAIL);
	/* Tables that do not block are looked up as usual. */
	cheap = table_open("inline:{k=v}", TABLE_F_FOLD, &err);
	assert_non_null(cheap);
	assert_int_equal(table_lookup(cheap, "K", &v, &err), TABLE_FOUND);
	assert_true(table_nonblock_end());
	assert_int_equal(atomic_load(&fake_calls), 0);
	/* Out of the mode: the driver answers, and nothing is left over. */
	assert_false(table_nonblock_failed());
	look(t, "u2@example.com", "2/");
	table_nonblock_begin();
	look(t, "u2@example.com", "2/");
	assert_false(table_nonblock_end());
	assert_int_equal(atomic_load(&fake_calls), 1);
	buf_free(&v);
	table_close(&cheap);
	table_close(&nocache);
	table_close(&t);
}

static void
test_disabled(void **state)
{
	struct table *t = fake_table(false, 60000, 10000, 100);

	(void)state;
	assert_null(table_cache_of(t));
	look(t, "u1@example.com", "1/");
	look(t, "u1@example.com", "1/");
	assert_int_equal(atomic_load(&fake_calls), 2);
	table_close(&t);
}

static void
test_ttl(void **state)
{
	struct table *t = fake_table(true, 60000, 5000, 100);

	(void)state;
	look(t, "u2@example.com", "2/");
	assert_int_equal(look(t, "nobody@example.com", NULL), TABLE_NOTFOUND);
	fake_now += 4999;
	look(t, "u2@example.com", "2/");
	assert_int_equal(look(t, "nobody@example.com", NULL), TABLE_NOTFOUND);
	assert_int_equal(atomic_load(&fake_calls), 2);
	fake_now += 1;		/* the negative entry expires at 5 s */
	assert_int_equal(look(t, "nobody@example.com", NULL), TABLE_NOTFOUND);
	look(t, "u2@example.com", "2/");
	assert_int_equal(atomic_load(&fake_calls), 3);
	fake_now += 55000;	/* the positive one at 60 s */
	look(t, "u2@example.com", "2/");
	assert_int_equal(atomic_load(&fake_calls), 4);
	look(t, "u2@example.com", "2/");
	assert_int_equal(atomic_load(&fake_calls), 4);
	table_close(&t);
}

static void
test_zero_ttls(void **state)
{
	struct table *t = fake_table(true, 60000, 0, 100);

	(void)state;
	assert_int_equal(look(t, "x@example.com", NULL), TABLE_NOTFOUND);
	assert_int_equal(look(t, "x@example.com", NULL), TABLE_NOTFOUND);
	assert_int_equal(atomic_load(&fake_calls), 2);
	table_close(&t);
	t = fake_table(true, 0, 10000, 100);
	look(t, "u3@example.com", "3/");
	look(t, "u3@example.com", "3/");
	assert_int_equal(look(t, "x@example.com", NULL), TABLE_NOTFOUND);
	assert_int_equal(look(t, "x@example.com", NULL), TABLE_NOTFOUND);
	assert_int_equal(atomic_load(&fake_calls), 3);
	table_close(&t);
}

static void
test_errors_not_cached(void **state)
{
	struct table *t = fake_table(true, 60000, 10000, 100);

	(void)state;
	fake_forcing = true;
	fake_forced = TABLE_TEMPFAIL;
	assert_int_equal(look(t, "u4@example.com", NULL), TABLE_TEMPFAIL);
	assert_int_equal(look(t, "u4@example.com", NULL), TABLE_TEMPFAIL);
	fake_forced = TABLE_CONFIG;
	assert_int_equal(look(t, "u4@example.com", NULL), TABLE_CONFIG);
	assert_int_equal(atomic_load(&fake_calls), 3);
	fake_forcing = false;	/* the server is back: answered at once */
	look(t, "u4@example.com", "4/");
	assert_int_equal(look(t, "bad", NULL), TABLE_CONFIG);
	assert_int_equal(look(t, "bad", NULL), TABLE_CONFIG);
	assert_int_equal(atomic_load(&fake_calls), 6);
	look(t, "u4@example.com", "4/");
	assert_int_equal(atomic_load(&fake_calls), 6);
	table_close(&t);
}

static void
test_eviction(void **state)
{
	struct table *t = fake_table(true, 60000, 10000, 3);
	struct table_cache_stats s;

	(void)state;
	look(t, "u1@example.com", "1/");
	look(t, "u2@example.com", "2/");
	look(t, "u3@example.com", "3/");
	look(t, "u1@example.com", "1/");	/* u2 is now the oldest */
	assert_int_equal(atomic_load(&fake_calls), 3);
	look(t, "u4@example.com", "4/");	/* evicts u2 */
	assert_int_equal(atomic_load(&fake_calls), 4);
	look(t, "u1@example.com", "1/");
	look(t, "u3@example.com", "3/");
	look(t, "u4@example.com", "4/");
	assert_int_equal(atomic_load(&fake_calls), 4);
	look(t, "u2@example.com", "2/");
	assert_int_equal(atomic_load(&fake_calls), 5);
	table_cache_get_stats(table_cache_of(t), &s);
	assert_int_equal(s.entries, 3);
	assert_int_equal(s.evictions, 2);
	/* Bounded whatever the key stream. */
	for (int i = 0; i < 500; i++) {
		char key[64];

		snprintf(key, sizeof(key), "nobody%d@example.com", i);
		look(t, key, NULL);
	}
	table_cache_get_stats(table_cache_of(t), &s);
	assert_int_equal(s.entries, 3);
	table_close(&t);
}

static void
test_flush(void **state)
{
	struct table *t = fake_table(true, 60000, 10000, 100);
	struct table *t2 = fake_table(true, 60000, 10000, 100);
	struct table_cache *c = table_cache_of(t);
	struct buf v;
	struct errbuf err;
	uint64_t gen;

	(void)state;
	look(t, "u5@example.com", "5/");
	look(t2, "u5@example.com", "5/");
	look(t, "u5@example.com", "5/");
	look(t2, "u5@example.com", "5/");
	assert_int_equal(atomic_load(&fake_calls), 2);
	table_cache_flush_all();
	look(t, "u5@example.com", "5/");
	look(t2, "u5@example.com", "5/");
	assert_int_equal(atomic_load(&fake_calls), 4);
	/* An answer fetched before a flush is not kept after it. */
	buf_init(&v, 100);
	assert_int_equal(table_cache_get(c, "u6@example.com", &v, &gen, &err),
			 TABLE_CACHE_MISS);
	table_cache_flush(c);
	table_cache_put(c, "u6@example.com", TABLE_FOUND, "stale", 5, gen);
	assert_int_equal(table_cache_get(c, "u6@example.com", &v, &gen, &err),
			 TABLE_CACHE_MISS);
	table_cache_put(c, "u6@example.com", TABLE_FOUND, "6/", 2, gen);
	assert_int_equal(table_cache_get(c, "u6@example.com", &v, &gen, &err),
			 TABLE_FOUND);
	assert_memory_equal(v.data, "6/", 2);
	/* A value larger than the caller's buffer: CONFIG, as from a driver. */
	buf_free(&v);
	buf_init(&v, 1);
	assert_int_equal(table_cache_get(c, "u6@example.com", &v, &gen, &err),
			 TABLE_CONFIG);
	buf_free(&v);
	table_close(&t);
	table_close(&t2);
	table_cache_flush_all();	/* nothing registered is left dangling */
}

static void
test_conf(void **state)
{
	static const struct {
		const char *text;
		int ok;
		bool enabled;
		int64_t ttl, nttl;
		size_t size;
	} cases[] = {
		{ "", 1, false, 60000, 10000, 10000 },
		{ "cache = yes\n", 1, true, 60000, 10000, 10000 },
		{ "cache = yes\ncache_ttl = 5m\ncache_negative_ttl = 0\n"
		  "cache_size = 7\n", 1, true, 300000, 0, 7 },
		{ "cache = no\ncache_ttl = 30\n", 1, false, 30000, 10000, 10000 },
		{ "cache = maybe\n", 0, false, 0, 0, 0 },
		{ "cache_ttl = 5x\n", 0, false, 0, 0, 0 },
		{ "cache_ttl = -1\n", 0, false, 0, 0, 0 },
		{ "cache_ttl = 2w\n", 0, false, 0, 0, 0 },
		{ "cache_negative_ttl = \n", 0, false, 0, 0, 0 },
		{ "cache_size = 0\n", 0, false, 0, 0, 0 },
		{ "cache_size = 1000001\n", 0, false, 0, 0, 0 },
		{ "cache_size = ten\n", 0, false, 0, 0, 0 },
	};
	char dir[64];
	static const char *const known[] = { TABLE_CACHE_CF_KEYS, NULL };

	(void)state;
	assert_int_equal(testdir_make(dir, sizeof(dir), "facteur-cache-test"), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char name[32];
		char *path;
		struct table_cf *cf = NULL;
		struct table_cache_conf c;
		struct errbuf err;

		snprintf(name, sizeof(name), "t%zu.cf", i);
		path = testdir_write(dir, name, cases[i].text);
		assert_int_equal(table_cf_load(path, known, &cf, NULL, &err), TABLE_CF_OK);
		if (!cases[i].ok) {
			assert_int_equal(table_cache_conf_read(cf, &c, &err), -1);
			assert_non_null(strstr(errbuf_str(&err), path));
		} else {
			assert_int_equal(table_cache_conf_read(cf, &c, &err), 0);
			assert_int_equal(c.enabled, cases[i].enabled);
			assert_int_equal(c.ttl_ms, cases[i].ttl);
			assert_int_equal(c.negative_ttl_ms, cases[i].nttl);
			assert_int_equal(c.size, cases[i].size);
		}
		table_cf_free(&cf);
		free(path);
	}
	assert_int_equal(testdir_remove(dir), 0);
}

struct thr_arg {
	struct table *t;
	int bad;
};

static void *
thr_run(void *p)
{
	struct thr_arg *a = p;
	struct buf v;
	struct errbuf err;
	unsigned seed = (unsigned)(uintptr_t)p;

	buf_init(&v, 1024);
	for (int i = 0; i < 20000; i++) {
		unsigned n = (unsigned)rand_r(&seed) % 150;
		char key[64], want[32];
		enum table_status st;

		snprintf(key, sizeof(key), "u%u@example.com", n);
		snprintf(want, sizeof(want), "%u/", n);
		st = table_lookup(a->t, key, &v, &err);
		if (n < 100 ? (st != TABLE_FOUND || v.len != strlen(want) ||
			       memcmp(v.data, want, v.len) != 0)
			    : st != TABLE_NOTFOUND)
			a->bad++;
		if (i % 5000 == 0)
			table_cache_flush(table_cache_of(a->t));
	}
	buf_free(&v);
	return NULL;
}

static void
test_threads(void **state)
{
	/* Real time here: entries expire while the threads run. */
	struct table *t;
	struct thr_arg args[4];
	pthread_t th[4];
	struct table_cache_stats s;

	(void)state;
	table_cache_set_clock(NULL);
	t = fake_table(true, 5, 2, 64);
	for (int i = 0; i < 4; i++) {
		args[i].t = t;
		args[i].bad = 0;
		assert_int_equal(pthread_create(&th[i], NULL, thr_run, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].bad, 0);
	}
	table_cache_get_stats(table_cache_of(t), &s);
	assert_true(s.entries <= 64);
	assert_int_equal(s.hits + s.misses, 80000);
	assert_int_equal((uint64_t)atomic_load(&fake_calls), s.misses);
	assert_true(s.hits > 0);
	table_close(&t);
	table_cache_set_clock(test_clock);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit),
		cmocka_unit_test(test_nonblock),
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_ttl),
		cmocka_unit_test(test_zero_ttls),
		cmocka_unit_test(test_errors_not_cached),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_conf),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
