/*
 * kvstore_test.c - the LMDB key-value store: put/get/delete, expiry seen
 * by get, bounded cleanup that resumes where it stopped, long keys, data
 * surviving a close and reopen, the same path opened twice sharing one
 * store, a second process writing to the same file, and a damaged
 * file moved aside.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/kvstore.h"
#include "testdir.h"

static char dir[64];
static char path[128];

static int
setup(void **state)
{
	(void)state;
	assert_int_equal(testdir_make(dir, sizeof(dir), "kvstore_test"), 0);
	snprintf(path, sizeof(path), "%s/sub/store", dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	assert_int_equal(testdir_remove(dir), 0);
	return 0;
}

static struct kvstore *
open_store(void)
{
	struct errbuf err;
	struct kvstore *k;

	errbuf_clear(&err);
	assert_int_equal(kvstore_prepare_dir(path, NULL, &err), 0);
	k = kvstore_open(path, 0, &err);
	if (k == NULL)
		fail_msg("%s", errbuf_str(&err));
	return k;
}

static void
test_put_get_delete(void **state)
{
	struct kvstore *k = open_store();
	struct errbuf err;
	char v[32];
	size_t vl = sizeof(v);
	time_t exp = 0;

	(void)state;
	errbuf_clear(&err);
	assert_int_equal(kvstore_get(k, "a", 1000, v, &vl, &exp, &err), 0);
	assert_int_equal(kvstore_put(k, "a", "hello", 5, 2000, &err), 0);
	vl = sizeof(v);
	assert_int_equal(kvstore_get(k, "a", 1000, v, &vl, &exp, &err), 1);
	assert_int_equal(vl, 5);
	assert_memory_equal(v, "hello", 5);
	assert_int_equal(exp, 2000);
	/* expired at and after its time */
	assert_int_equal(kvstore_get(k, "a", 2000, NULL, NULL, NULL, &err), 0);
	assert_int_equal(kvstore_get(k, "a", 3000, NULL, NULL, NULL, &err), 0);
	/* 0 = never expires */
	assert_int_equal(kvstore_put(k, "b", "", 0, 0, &err), 0);
	assert_int_equal(kvstore_get(k, "b", 1LL << 40, NULL, NULL, &exp, &err), 1);
	assert_int_equal(exp, 0);
	assert_int_equal(kvstore_delete(k, "b", &err), 1);
	assert_int_equal(kvstore_delete(k, "b", &err), 0);
	assert_int_equal(kvstore_get(k, "b", 1, NULL, NULL, NULL, &err), 0);
	/* too long a value is refused */
	{
		static char big[KVSTORE_VALUE_MAX + 1];

		assert_int_equal(kvstore_put(k, "c", big, sizeof(big), 0, &err), -1);
		assert_non_null(strstr(errbuf_str(&err), "too long"));
	}
	kvstore_close(&k);
	assert_null(k);
}

static void
test_long_keys(void **state)
{
	struct kvstore *k = open_store();
	struct errbuf err;
	char k1[1000], k2[1000];

	(void)state;
	memset(k1, 'x', sizeof(k1) - 1);
	k1[sizeof(k1) - 1] = '\0';
	memcpy(k2, k1, sizeof(k1));
	k2[900] = 'y';		/* same prefix, different tail */
	errbuf_clear(&err);
	assert_int_equal(kvstore_put(k, k1, "1", 1, 0, &err), 0);
	assert_int_equal(kvstore_get(k, k1, 1, NULL, NULL, NULL, &err), 1);
	assert_int_equal(kvstore_get(k, k2, 1, NULL, NULL, NULL, &err), 0);
	kvstore_close(&k);
}

static void
test_cleanup_bounded(void **state)
{
	struct kvstore *k = open_store();
	struct errbuf err;
	char key[32];
	long total = 0, r;
	int calls = 0;

	(void)state;
	errbuf_clear(&err);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%03d", i);
		/* even: expired at 500; odd: live */
		assert_int_equal(kvstore_put(k, key, "v", 1, i % 2 ? 0 : 500,
					     &err), 0);
	}
	assert_int_equal(kvstore_count(k), 100);
	/* 10 entries per call: one call removes at most 10 */
	r = kvstore_cleanup(k, 1000, 10, &err);
	assert_true(r >= 0 && r <= 10);
	total += r;
	calls++;
	while (total < 50 && calls < 30) {
		r = kvstore_cleanup(k, 1000, 10, &err);
		assert_true(r >= 0 && r <= 10);
		total += r;
		calls++;
	}
	assert_int_equal(total, 50);
	assert_true(calls >= 10);	/* 100 entries, 10 per call */
	assert_int_equal(kvstore_count(k), 50);
	assert_int_equal(kvstore_get(k, "k001", 1000, NULL, NULL, NULL, &err), 1);
	kvstore_close(&k);
}

static void
test_reopen_and_share(void **state)
{
	struct kvstore *k = open_store(), *k2;
	struct errbuf err;
	pid_t pid;
	int st;

	(void)state;
	errbuf_clear(&err);
	assert_int_equal(kvstore_put(k, "persist", "p", 1, 0, &err), 0);
	/* same path again: same store */
	k2 = open_store();
	assert_ptr_equal(k, k2);
	kvstore_close(&k2);
	assert_int_equal(kvstore_get(k, "persist", 1, NULL, NULL, NULL, &err), 1);
	assert_int_equal(kvstore_sync(k, &err), 0);
	kvstore_close(&k);
	/* another process writes to the same file (not inherited: opened
	 * in the child) */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct kvstore *c = kvstore_open(path, 0, &err);

		if (c == NULL || kvstore_put(c, "child", "c", 1, 0, &err) < 0)
			_exit(1);
		kvstore_close(&c);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	k = open_store();
	assert_int_equal(kvstore_get(k, "persist", 1, NULL, NULL, NULL, &err), 1);
	assert_int_equal(kvstore_get(k, "child", 1, NULL, NULL, NULL, &err), 1);
	kvstore_close(&k);
}

static void
test_damaged_file_moved_aside(void **state)
{
	struct errbuf err;
	struct kvstore *k;
	char file[200], aside[220];
	char junk[8192];
	FILE *f;

	(void)state;
	errbuf_clear(&err);
	assert_int_equal(kvstore_prepare_dir(path, NULL, &err), 0);
	snprintf(file, sizeof(file), "%s.lmdb", path);
	snprintf(aside, sizeof(aside), "%s.lmdb.damaged", path);
	memset(junk, 'J', sizeof(junk));
	f = fopen(file, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
	fclose(f);
	k = kvstore_open(path, 0, &err);
	if (k == NULL)
		fail_msg("%s", errbuf_str(&err));
	assert_non_null(kvstore_recovered(k));
	assert_non_null(strstr(kvstore_recovered(k), ".lmdb.damaged"));
	assert_int_equal(access(aside, F_OK), 0);
	assert_int_equal(kvstore_put(k, "k", "v", 1, 0, &err), 0);
	assert_int_equal(kvstore_get(k, "k", 1, NULL, NULL, NULL, &err), 1);
	kvstore_close(&k);
	/* a sound file is not touched */
	k = kvstore_open(path, 0, &err);
	assert_non_null(k);
	assert_null(kvstore_recovered(k));
	assert_int_equal(kvstore_get(k, "k", 1, NULL, NULL, NULL, &err), 1);
	kvstore_close(&k);
}

static void
test_open_error(void **state)
{
	struct errbuf err;

	(void)state;
	errbuf_clear(&err);
	assert_null(kvstore_open("/nonexistent-dir/x/store", 0, &err));
	assert_non_null(strstr(errbuf_str(&err), "/nonexistent-dir/x/store.lmdb"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cleanup_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_and_share, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_file_moved_aside, setup,
						teardown),
		cmocka_unit_test(test_open_error),
	};

	return cmocka_run_group_tests_name("kvstore", tests, NULL, NULL);
}
