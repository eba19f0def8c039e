/*
 * queue_test.c - the on-disk queue: round trips, corrupt files, in-place
 * updates, state moves, listing order, ID uniqueness across threads, and
 * qmgr's backoff computation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/config.h"
#include "core/log.h"
#include "core/params.h"
#include "core/qmgr.h"
#include "core/queue.h"
#include "core/resolve.h"
#include "core/worker.h"
#include "core/lib/xmalloc.h"
#include "testdir.h"

static char qdir[256];

static int
setup(void **state)
{
	struct errbuf err;

	if (testdir_make(qdir, sizeof(qdir), "facteur-queue-test") < 0)
		return -1;
	if (queue_init(qdir, &err) < 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	return testdir_remove(qdir);
}

static void
env_fill(struct queue_env *env, struct queue_rcpt *r, size_t n)
{
	memset(env, 0, sizeof(*env));
	env->arrival = 1700000000;
	env->arrival_usec = 42;
	env->sender = (char *)"odd\\sender\twith\nnewline@x.test";
	env->client_name = (char *)"mx.example.test";
	env->client_addr = (char *)"192.0.2.1";
	env->helo = (char *)"helo\r\nInjected: yes";
	env->protocol = (char *)"ESMTP";
	env->envid = NULL;
	env->ret = (char *)"";
	env->rcpt = r;
	env->nrcpt = n;
}

static void
write_sample(struct queue_env *env, const char *content, size_t len)
{
	static struct queue_rcpt r[3];
	struct errbuf err;

	memset(r, 0, sizeof(r));
	r[0].addr = (char *)"alice@example.test";
	r[0].orig = (char *)"postmaster@example.test";
	r[1].addr = (char *)"\"b o b\"@example.test";
	r[1].orig = NULL;
	r[1].orcpt = (char *)"rfc822;b\\o\tb@x";
	r[1].notify = 5;
	r[2].addr = (char *)"";
	r[2].orig = (char *)"x\ny";
	env_fill(env, r, 3);
	assert_int_equal(queue_write(qdir, env, content, len, false, &err), 0);
	assert_int_equal((int)strlen(env->id), QUEUE_ID_LEN);
}

static void
test_round_trip(void **state)
{
	static const char content[] = "Subject: caf\xc3\xa9\n\nbody \xff\x00 bytes\n.\n";
	struct queue_env w, r;
	struct buf c;
	struct errbuf err;
	struct strlist ids;

	write_sample(&w, content, sizeof(content) - 1);
	buf_init(&c, 0);
	assert_int_equal(queue_read(qdir, QUEUE_ACTIVE, w.id, &r, &c, &err), 0);
	assert_string_equal(r.id, w.id);
	assert_int_equal(r.arrival, 1700000000);
	assert_int_equal(r.arrival_usec, 42);
	assert_string_equal(r.sender, w.sender);
	assert_string_equal(r.helo, w.helo);
	assert_string_equal(r.client_name, "mx.example.test");
	assert_string_equal(r.client_addr, "192.0.2.1");
	assert_string_equal(r.protocol, "ESMTP");
	assert_null(r.envid);
	assert_non_null(r.ret);
	assert_string_equal(r.ret, "");
	assert_int_equal(r.nrcpt, 3);
	assert_string_equal(r.rcpt[0].addr, "alice@example.test");
	assert_string_equal(r.rcpt[0].orig, "postmaster@example.test");
	assert_null(r.rcpt[0].orcpt);
	assert_string_equal(r.rcpt[1].addr, "\"b o b\"@example.test");
	assert_null(r.rcpt[1].orig);
	assert_string_equal(r.rcpt[1].orcpt, "rfc822;b\\o\tb@x");
	assert_int_equal(r.rcpt[1].notify, 5);
	assert_string_equal(r.rcpt[2].addr, "");
	assert_string_equal(r.rcpt[2].orig, "x\ny");
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(r.rcpt[i].status, QUEUE_RCPT_PENDING);
		assert_int_equal(r.rcpt[i].status_off, w.rcpt[i].status_off);
	}
	assert_int_equal(r.size, sizeof(content) - 1);
	assert_int_equal(c.len, sizeof(content) - 1);
	assert_memory_equal(c.data, content, sizeof(content) - 1);
	queue_env_free(&r);

	/* envelope only */
	assert_int_equal(queue_read(qdir, QUEUE_ACTIVE, w.id, &r, NULL, &err), 0);
	assert_int_equal(r.nrcpt, 3);
	queue_env_free(&r);

	/* nothing left in incoming/, file mode 0600 */
	strlist_init(&ids);
	assert_int_equal(queue_list(qdir, QUEUE_INCOMING, &ids, &err), 0);
	assert_int_equal(ids.n, 0);
	strlist_free(&ids);
	{
		char p[512];
		struct stat sb;
		snprintf(p, sizeof(p), "%s/active/%s", qdir, w.id);
		assert_int_equal(stat(p, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600);
	}
	buf_free(&c);
}

static void
test_empty_content_and_hold(void **state)
{
	struct queue_rcpt rc = { .addr = (char *)"a@b" };
	struct queue_env w, r;
	struct buf c;
	struct errbuf err;

	env_fill(&w, &rc, 1);
	assert_int_equal(queue_write(qdir, &w, "", 0, true, &err), 0);
	buf_init(&c, 0);
	assert_int_equal(queue_read(qdir, QUEUE_HOLD, w.id, &r, &c, &err), 0);
	assert_int_equal(c.len, 0);
	assert_int_equal(r.size, 0);
	queue_env_free(&r);
	assert_int_equal(queue_read(qdir, QUEUE_ACTIVE, w.id, &r, &c, &err), -1);
	assert_int_equal(errno, ENOENT);
	buf_free(&c);
}

static void
test_write_errors(void **state)
{
	struct queue_env w;
	struct errbuf err;

	env_fill(&w, NULL, 0);
	assert_int_equal(queue_write(qdir, &w, "x", 1, false, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "recipient count"));

	struct queue_rcpt rc = { .addr = (char *)"a@b" };
	env_fill(&w, &rc, 1);
	assert_int_equal(queue_write("/nonexistent/facteur/q", &w, "x", 1, false,
				     &err), -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(errbuf_str(&err), "create queue file"));
}

static void
spit(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* Every proper prefix of a valid file is rejected; the whole one is not. */
static void
test_truncations(void **state)
{
	static const char content[] = "Subject: t\n\nhello\n";
	struct queue_env w, r;
	struct buf c;
	struct errbuf err;
	char path[512], cpath[512];
	size_t len, i;
	char *data;

	write_sample(&w, content, sizeof(content) - 1);
	snprintf(path, sizeof(path), "%s/active/%s", qdir, w.id);
	snprintf(cpath, sizeof(cpath), "%s/corrupt/%s", qdir, w.id);
	data = testdir_slurp(path, &len);
	buf_init(&c, 0);
	for (i = 0; i < len; i++) {
		spit(cpath, data, i);
		assert_int_equal(queue_read(qdir, QUEUE_CORRUPT, w.id, &r, &c, &err), -1);
		assert_non_null(strstr(errbuf_str(&err), "corrupt queue file"));
		assert_null(r.rcpt);
		assert_null(r.sender);
	}
	spit(cpath, data, len);
	assert_int_equal(queue_read(qdir, QUEUE_CORRUPT, w.id, &r, &c, &err), 0);
	queue_env_free(&r);
	/* trailing garbage */
	{
		char *more = xmalloc(len + 1);
		memcpy(more, data, len);
		more[len] = 'x';
		spit(cpath, more, len + 1);
		free(more);
		assert_int_equal(queue_read(qdir, QUEUE_CORRUPT, w.id, &r, &c, &err), -1);
		assert_non_null(strstr(errbuf_str(&err), "data after the content"));
	}
	free(data);
	buf_free(&c);
}

/*
 * The flags in the sched record: written and read back through
 * queue_defer; a file from before the flags is read and rescheduled in its
 * own width but refuses to record a flag.
 */
static void
test_sched_flags(void **state)
{
	static const char old[] = "FACTEUR-QUEUE 1\nsched 00003 00000000000000000009\n"
				  "id 0000000010000A001\narrival 5.000001\n"
				  "sender a@b\nclient_name \\-\nclient_addr \\-\n"
				  "helo \\-\nprotocol SMTP\nenvid \\-\nret \\-\n"
				  "nrcpt 1\nrcpt R 0 a\t\\-\t\\-\nsize 3\nabc";
	struct queue_env w, r;
	struct errbuf err;
	struct buf c;
	char path[512];

	write_sample(&w, "x\n", 2);
	assert_true(w.flags_rec);
	assert_int_equal(queue_read(qdir, QUEUE_ACTIVE, w.id, &r, NULL, &err), 0);
	assert_true(r.flags_rec);
	assert_int_equal(r.flags, 0);
	r.flags |= QUEUE_F_DELAY_WARNED;
	r.attempts = 7;
	r.next_attempt = 12345;
	assert_int_equal(queue_defer(qdir, QUEUE_ACTIVE, &r, &err), 0);
	queue_env_free(&r);
	assert_int_equal(queue_read(qdir, QUEUE_DEFERRED, w.id, &r, NULL, &err), 0);
	assert_int_equal(r.flags, QUEUE_F_DELAY_WARNED);
	assert_int_equal(r.attempts, 7);
	assert_int_equal(r.next_attempt, 12345);
	/* the recipient status offsets still point at the status bytes */
	assert_int_equal(queue_mark_done(qdir, QUEUE_DEFERRED, &r, 1, &err), 0);
	queue_env_free(&r);
	assert_int_equal(queue_read(qdir, QUEUE_DEFERRED, w.id, &r, NULL, &err), 0);
	assert_int_equal(r.rcpt[1].status, QUEUE_RCPT_DONE);
	assert_int_equal(r.flags, QUEUE_F_DELAY_WARNED);
	queue_env_free(&r);

	snprintf(path, sizeof(path), "%s/deferred/0000000010000A001", qdir);
	spit(path, old, sizeof(old) - 1);
	buf_init(&c, 0);
	assert_int_equal(queue_read(qdir, QUEUE_DEFERRED, "0000000010000A001", &r,
				    &c, &err), 0);
	assert_false(r.flags_rec);
	assert_int_equal(r.flags, 0);
	assert_int_equal(r.attempts, 3);
	r.attempts = 4;
	assert_int_equal(queue_defer(qdir, QUEUE_DEFERRED, &r, &err), 0);
	r.flags = QUEUE_F_DELAY_WARNED;
	assert_int_equal(queue_defer(qdir, QUEUE_DEFERRED, &r, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "cannot record flags"));
	queue_env_free(&r);
	assert_int_equal(queue_read(qdir, QUEUE_DEFERRED, "0000000010000A001", &r,
				    &c, &err), 0);
	assert_int_equal(r.attempts, 4);
	assert_string_equal(c.data, "abc");
	queue_env_free(&r);
	buf_free(&c);
}

/* Hand-made bad files, each with the reason it must give. */
static void
test_corrupt_table(void **state)
{
	static const char *const id = "0000000010000A001";
	static const char head[] = "FACTEUR-QUEUE 1\nsched 00000 00000000000000000000\n"
				   "id 0000000010000A001\narrival 5.000001\n";
	static const char mid[] = "sender a@b\nclient_name \\-\nclient_addr \\-\n"
				  "helo \\-\nprotocol SMTP\nenvid \\-\nret \\-\n";
	static const struct { const char *body, *why; } t[] = {
		{ "", "not a queue file" },
		{ "FACTEUR-QUEUE 2\nsched 00000 00000000000000000000\n", "not a queue file" },
		{ "garbage garbage garbage garbage garbage garbage\n", "not a queue file" },
		{ "FACTEUR-QUEUE 1\nsched 0000x 00000000000000000000\n", "\"sched\"" },
		{ "FACTEUR-QUEUE 1\nsched 00000 00000000000000000000 G\n", "\"sched\"" },
		{ "FACTEUR-QUEUE 1\nsched 00000 00000000000000000000 1 \n", "\"sched\"" },
		{ "FACTEUR-QUEUE 1\nsched 00000 00000000000000000000x1\n", "\"sched\"" },
		{ "FACTEUR-QUEUE 1\nsched 00000 00000000000000000000\n"
		  "id 0000000010000A002\n", "does not match" },
		{ "FACTEUR-QUEUE 1\nsched 00000 00000000000000000000\n"
		  "id 0000000010000A001\narrival 5.1\n", "\"arrival\"" },
		{ "@H" "sender a\\qb\n", "\"sender\"" },
		{ "@H" "sender \\-\n", "\"sender\"" },
		{ "@H@M" "nrcpt 0\n", "\"nrcpt\"" },
		{ "@H@M" "nrcpt 99999999999999999999999\n", "\"nrcpt\"" },
		{ "@H@M" "nrcpt 900000\nrcpt R 0 a\t\\-\t\\-\n", "more than the file" },
		{ "@H@M" "nrcpt 1\nrcpt X 0 a\t\\-\t\\-\nsize 0\n", "\"rcpt\"" },
		{ "@H@M" "nrcpt 1\nrcpt R -1 a\t\\-\t\\-\nsize 0\n", "\"rcpt\"" },
		{ "@H@M" "nrcpt 1\nrcpt R 0 a\t\\-\nsize 0\n", "\"rcpt\"" },
		{ "@H@M" "nrcpt 1\nrcpt R 0 \\-\t\\-\t\\-\nsize 0\n", "\"rcpt\"" },
		{ "@H@M" "nrcpt 2\nrcpt R 0 a\t\\-\t\\-\nsize 0\n", "\"rcpt\"" },
		{ "@H@M" "nrcpt 1\nrcpt R 0 a\t\\-\t\\-\nsize 5\nabc", "truncated content" },
		{ "@H@M" "nrcpt 1\nrcpt R 0 a\t\\-\t\\-\nsize -1\n", "\"size\"" },
		{ "@H@M" "nrcpt 1\nrcpt R 0 a\t\\-\t\\-\nsize 3\nabcd", "data after" },
		{ "@H@M" "nrcpt 1\nrcpt R 0 a\t\\-\t\\-\nsize 3\nabc", NULL },
	};
	char path[512];
	struct queue_env r;
	struct buf c, f;
	struct errbuf err;
	size_t i;

	snprintf(path, sizeof(path), "%s/corrupt/%s", qdir, id);
	buf_init(&c, 0);
	buf_init(&f, 0);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *b = t[i].body;
		buf_reset(&f);
		if (strncmp(b, "@H", 2) == 0) {
			buf_puts(&f, head);
			b += 2;
		}
		if (strncmp(b, "@M", 2) == 0) {
			buf_puts(&f, mid);
			b += 2;
		}
		buf_puts(&f, b);
		spit(path, f.data ? f.data : "", f.len);
		int rc = queue_read(qdir, QUEUE_CORRUPT, id, &r, &c, &err);
		if (t[i].why == NULL) {
			assert_int_equal(rc, 0);
			assert_string_equal(c.data, "abc");
			queue_env_free(&r);
			continue;
		}
		if (rc == 0 || strstr(errbuf_str(&err), t[i].why) == NULL)
			fail_msg("case %zu: rc %d, reason \"%s\", expected \"%s\"", i,
				 rc, errbuf_str(&err), t[i].why);
	}
	/* an ID that is not one */
	assert_int_equal(queue_read(qdir, QUEUE_CORRUPT, "../../etc/passwd", &r,
				    &c, &err), -1);
	buf_free(&c);
	buf_free(&f);
}

static void
test_mark_done_and_defer(void **state)
{
	static const char content[] = "x\n";
	struct queue_env w, r;
	struct errbuf err;
	struct strlist ids;

	write_sample(&w, content, 2);
	assert_int_equal(queue_mark_done(qdir, QUEUE_ACTIVE, &w, 1, &err), 0);
	assert_int_equal(queue_mark_done(qdir, QUEUE_ACTIVE, &w, 7, &err), -1);
	assert_int_equal(queue_read(qdir, QUEUE_ACTIVE, w.id, &r, NULL, &err), 0);
	assert_int_equal(r.rcpt[0].status, QUEUE_RCPT_PENDING);
	assert_int_equal(r.rcpt[1].status, QUEUE_RCPT_DONE);
	assert_int_equal(r.rcpt[2].status, QUEUE_RCPT_PENDING);
	assert_int_equal(r.attempts, 0);

	r.attempts = 3;
	r.next_attempt = 1800000000;
	assert_int_equal(queue_defer(qdir, QUEUE_ACTIVE, &r, &err), 0);
	queue_env_free(&r);
	assert_int_equal(queue_read(qdir, QUEUE_ACTIVE, w.id, &r, NULL, &err), -1);
	assert_int_equal(queue_read(qdir, QUEUE_DEFERRED, w.id, &r, NULL, &err), 0);
	assert_int_equal(r.attempts, 3);
	assert_int_equal(r.next_attempt, 1800000000);
	{	/* the mtime carries the next attempt for scanners */
		char p[512];
		struct stat sb;
		snprintf(p, sizeof(p), "%s/deferred/%s", qdir, w.id);
		assert_int_equal(stat(p, &sb), 0);
		assert_int_equal(sb.st_mtime, 1800000000);
	}
	assert_int_equal(r.rcpt[1].status, QUEUE_RCPT_DONE);
	/* mark done in deferred/, defer again in place */
	assert_int_equal(queue_mark_done(qdir, QUEUE_DEFERRED, &r, 0, &err), 0);
	r.attempts = 4;
	assert_int_equal(queue_defer(qdir, QUEUE_DEFERRED, &r, &err), 0);
	queue_env_free(&r);
	assert_int_equal(queue_read(qdir, QUEUE_DEFERRED, w.id, &r, NULL, &err), 0);
	assert_int_equal(r.attempts, 4);
	assert_int_equal(r.rcpt[0].status, QUEUE_RCPT_DONE);
	queue_env_free(&r);

	assert_int_equal(queue_move(qdir, w.id, QUEUE_DEFERRED, QUEUE_HOLD, &err), 0);
	strlist_init(&ids);
	assert_int_equal(queue_list(qdir, QUEUE_HOLD, &ids, &err), 0);
	assert_true(strlist_contains(&ids, w.id));
	strlist_free(&ids);
	assert_int_equal(queue_remove(qdir, QUEUE_HOLD, w.id, &err), 0);
	assert_int_equal(queue_sync_state(qdir, QUEUE_HOLD, &err), 0);
	assert_int_equal(queue_remove(qdir, QUEUE_HOLD, w.id, &err), -1);
	assert_int_equal(errno, ENOENT);
}

static void
test_list_sorted_and_clean(void **state)
{
	struct queue_rcpt rc = { .addr = (char *)"a@b" };
	struct queue_env w;
	struct errbuf err;
	struct strlist ids;
	char written[20][QUEUE_ID_SIZE], p[512];
	size_t i;

	for (i = 0; i < 20; i++) {
		env_fill(&w, &rc, 1);
		assert_int_equal(queue_write(qdir, &w, "m\n", 2, false, &err), 0);
		memcpy(written[i], w.id, QUEUE_ID_SIZE);
	}
	/* names that are not IDs are skipped */
	snprintf(p, sizeof(p), "%s/active/not-an-id", qdir);
	spit(p, "x", 1);
	snprintf(p, sizeof(p), "%s/active/0000000010000a001", qdir);
	spit(p, "x", 1);
	strlist_init(&ids);
	assert_int_equal(queue_list(qdir, QUEUE_ACTIVE, &ids, &err), 0);
	assert_int_equal(ids.n, 20);
	for (i = 0; i < 20; i++)
		assert_string_equal(ids.v[i], written[i]);
	strlist_free(&ids);

	snprintf(p, sizeof(p), "%s/incoming/0000000010000A001", qdir);
	spit(p, "half", 4);
	snprintf(p, sizeof(p), "%s/incoming/junk", qdir);
	spit(p, "half", 4);
	assert_int_equal(queue_clean_incoming(qdir, &err), 0);
	strlist_init(&ids);
	assert_int_equal(queue_list(qdir, QUEUE_INCOMING, &ids, &err), 0);
	assert_int_equal(ids.n, 0);
	strlist_free(&ids);
	assert_int_equal(access(p, F_OK), -1);
}

static void
test_id_collision(void **state)
{
	struct queue_rcpt rc = { .addr = (char *)"a@b" };
	struct queue_env w;
	struct errbuf err;
	char p[512], id0[QUEUE_ID_SIZE];

	/* A stale file with the caller's ID: a fresh ID is taken. */
	queue_id_new(id0);
	snprintf(p, sizeof(p), "%s/incoming/%s", qdir, id0);
	spit(p, "x", 1);
	env_fill(&w, &rc, 1);
	memcpy(w.id, id0, QUEUE_ID_SIZE);
	assert_int_equal(queue_write(qdir, &w, "m\n", 2, false, &err), 0);
	assert_string_not_equal(w.id, id0);
	/* A bad caller ID is refused. */
	env_fill(&w, &rc, 1);
	snprintf(w.id, sizeof(w.id), "xyz");
	assert_int_equal(queue_write(qdir, &w, "m\n", 2, false, &err), -1);
}

#define NTHREADS 4
#define NIDS 10000
static char thread_ids[NTHREADS][NIDS][QUEUE_ID_SIZE];

static void *
id_thread(void *arg)
{
	char (*out)[QUEUE_ID_SIZE] = arg;
	for (int i = 0; i < NIDS; i++)
		queue_id_new(out[i]);
	return NULL;
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_id_unique_threads(void **state)
{
	pthread_t th[NTHREADS];
	size_t i, j;

	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, id_thread,
						thread_ids[i]), 0);
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	/* increasing per thread, valid hex */
	for (i = 0; i < NTHREADS; i++)
		for (j = 0; j < NIDS; j++) {
			assert_int_equal(strlen(thread_ids[i][j]), QUEUE_ID_LEN);
			assert_int_equal(strspn(thread_ids[i][j], "0123456789ABCDEF"),
					 QUEUE_ID_LEN);
			if (j > 0)
				assert_true(strcmp(thread_ids[i][j - 1],
						   thread_ids[i][j]) < 0);
		}
	qsort(thread_ids, NTHREADS * NIDS, QUEUE_ID_SIZE, cmp_id);
	for (i = 1; i < NTHREADS * NIDS; i++)
		if (strcmp(((char (*)[QUEUE_ID_SIZE])thread_ids)[i - 1],
			   ((char (*)[QUEUE_ID_SIZE])thread_ids)[i]) == 0)
			fail_msg("duplicate ID %s",
				 ((char (*)[QUEUE_ID_SIZE])thread_ids)[i]);
}

static void
test_backoff(void **state)
{
	static const struct { int attempts; long long min, max, want; } t[] = {
		{ 0, 300, 4000, 300 },
		{ 1, 300, 4000, 300 },
		{ 2, 300, 4000, 600 },
		{ 3, 300, 4000, 1200 },
		{ 4, 300, 4000, 2400 },
		{ 5, 300, 4000, 4000 },
		{ 60, 300, 4000, 4000 },
		{ 99999, 300, 4000, 4000 },
		{ 3, 0, 4000, 4 },
		{ 1, 0, 0, 1 },
		{ 3, 5000, 4000, 5000 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_int_equal(qmgr_backoff(t[i].attempts, t[i].min, t[i].max),
				 t[i].want);
}

static char *
read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *b;
	long n;

	if (f == NULL)
		return xstrdup("");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = xmalloc((size_t)n + 1);
	b[fread(b, 1, (size_t)n, f)] = '\0';
	fclose(f);
	return b;
}

static size_t
count_files(const char *dir)
{
	char cmd[600], out[64];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls -1 '%s' 2>/dev/null | wc -l", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(out, sizeof(out), p));
	pclose(p);
	return (size_t)strtoul(out, NULL, 10);
}

/*
 * The queue manager end to end: a message in active/ with a hosted
 * mailbox, an unknown user and a remote recipient is delivered, bounced
 * (logged) and deferred; the file moves to deferred/ with one attempt and
 * only the remote recipient pending; flush retries it without delivering
 * the mailbox again.
 */
static void
run_until_idle(struct event_base *eb, struct qmgr *q)
{
	for (int i = 0; i < 2000 && qmgr_in_flight(q) > 0; i++)
		event_base_loop(eb, EVLOOP_ONCE);
	assert_int_equal(qmgr_in_flight(q), 0);
}

static void
test_qmgr_end_to_end(void **state)
{
	char maincf[2048], p[600], logf[600];
	struct config *cfg;
	struct settings s;
	struct resolve_ctx *rctx;
	struct event_base *eb;
	struct worker_pool *pool;
	struct qmgr *q;
	struct errbuf err;
	struct queue_rcpt rc[3];
	struct queue_env w, r;
	char *log;
	FILE *f;

	snprintf(p, sizeof(p), "%s/vmailbox", qdir);
	f = fopen(p, "w");
	assert_non_null(f);
	fprintf(f, "alice@example.test example.test/alice/\n");
	fclose(f);
	snprintf(p, sizeof(p), "%s/mail", qdir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(logf, sizeof(logf), "%s/maillog", qdir);
	snprintf(maincf, sizeof(maincf),
		 "queue_directory = %s\nvirtual_mailbox_domains = example.test\n"
		 "virtual_mailbox_base = %s/mail\n"
		 "virtual_mailbox_maps = texthash:%s/vmailbox\n"
		 "mydestination = localhost\nfacteur_worker_threads = 2\n"
		 /* nothing answers there: the remote recipient defers */
		 "facteur_dns_servers = 127.0.0.1:1\n",
		 qdir, qdir, qdir);
	cfg = config_parse_main(maincf, "main.cf", NULL, &err);
	assert_non_null(cfg);
	memset(&s, 0, sizeof(s));
	assert_int_equal(settings_load(&s, cfg, &err), 0);
	rctx = resolve_ctx_new(&s, &err);
	assert_non_null(rctx);
	assert_int_equal(log_open("facteur", logf, 0), 0);

	memset(rc, 0, sizeof(rc));
	rc[0].addr = (char *)"alice@example.test";
	rc[0].orig = (char *)"postmaster@example.test";
	rc[1].addr = (char *)"nobody@example.test";
	rc[2].addr = (char *)"someone@remote.test";
	env_fill(&w, rc, 3);
	w.arrival = time(NULL);	/* within maximal_queue_lifetime */
	w.sender = (char *)"sender@remote.test";
	assert_int_equal(queue_write(qdir, &w, "Subject: q\n\nhello\n", 19,
				     false, &err), 0);

	eb = event_base_new();
	assert_non_null(eb);
	pool = worker_pool_new(eb, 2);
	assert_non_null(pool);
	q = qmgr_new(eb, pool, &s, rctx, &err);
	assert_non_null(q);
	assert_int_equal(qmgr_start(q, &err), 0);
	run_until_idle(eb, q);

	snprintf(p, sizeof(p), "%s/mail/example.test/alice/new", qdir);
	assert_int_equal(count_files(p), 1);
	assert_int_equal(queue_read(qdir, QUEUE_DEFERRED, w.id, &r, NULL, &err), 0);
	assert_int_equal(r.attempts, 1);
	assert_true(r.next_attempt > time(NULL));
	assert_int_equal(r.rcpt[0].status, QUEUE_RCPT_DONE);
	assert_int_equal(r.rcpt[1].status, QUEUE_RCPT_DONE);
	assert_int_equal(r.rcpt[2].status, QUEUE_RCPT_PENDING);
	queue_env_free(&r);

	/* flush: retried now, the mailbox is not delivered twice */
	qmgr_flush(q);
	run_until_idle(eb, q);
	assert_int_equal(count_files(p), 1);
	assert_int_equal(queue_read(qdir, QUEUE_DEFERRED, w.id, &r, NULL, &err), 0);
	assert_int_equal(r.attempts, 2);
	queue_env_free(&r);

	/* a message that is all local goes away: "removed" */
	rc[0].status = QUEUE_RCPT_PENDING;
	env_fill(&w, rc, 1);
	assert_int_equal(queue_write(qdir, &w, "x\n", 2, false, &err), 0);
	qmgr_enqueued(q, w.id);
	run_until_idle(eb, q);
	assert_int_equal(count_files(p), 2);
	snprintf(p, sizeof(p), "%s/active", qdir);
	assert_int_equal(count_files(p), 0);

	/* garbage in active/ goes to corrupt/ */
	char bad[QUEUE_ID_SIZE];
	queue_id_new(bad);
	snprintf(p, sizeof(p), "%s/active/%s", qdir, bad);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs("garbage\n", f);
	fclose(f);
	qmgr_enqueued(q, bad);
	run_until_idle(eb, q);
	snprintf(p, sizeof(p), "%s/corrupt/%s", qdir, bad);
	assert_int_equal(access(p, F_OK), 0);

	/* stop with work in flight: nothing is lost, nothing leaks */
	for (int i = 0; i < 20; i++) {
		env_fill(&w, rc, 1);
		assert_int_equal(queue_write(qdir, &w, "y\n", 2, false, &err), 0);
		qmgr_enqueued(q, w.id);
	}
	assert_true(qmgr_in_flight(q) > 0);
	event_base_loop(eb, EVLOOP_NONBLOCK);
	worker_pool_free(&pool);
	qmgr_free(&q);
	assert_null(q);
	log_close();
	snprintf(p, sizeof(p), "%s/mail/example.test/alice/new", qdir);
	size_t delivered = count_files(p);
	snprintf(p, sizeof(p), "%s/active", qdir);
	assert_int_equal(delivered - 2 + count_files(p), 20);
	log = read_text(logf);
	if (getenv("QUEUE_TEST_SHOW_LOG"))
		fputs(log, stderr);
	assert_non_null(strstr(log, "(queue active)"));
	assert_non_null(strstr(log, "to=<alice@example.test>, orig_to=<postmaster@example.test>, relay=virtual, delay="));
	assert_non_null(strstr(log, "dsn=2.0.0, status=sent (delivered to maildir)"));
	assert_non_null(strstr(log, "to=<nobody@example.test>, relay=virtual"));
	assert_non_null(strstr(log, "dsn=5.1.1, status=bounced ("));
	assert_non_null(strstr(log, "to=<someone@remote.test>, relay=none"));
	assert_non_null(strstr(log, "dsn=4.4.3, status=deferred (Host or domain name not found. Name service error for name=remote.test type=MX"));
	/* nobody@ bounced: one notification to the sender, then queued */
	assert_non_null(strstr(log, "facteur/bounce["));
	assert_non_null(strstr(log, ": sender non-delivery notification: "));
	assert_non_null(strstr(log, ": removed"));
	assert_non_null(strstr(log, "moved to the corrupt queue"));
	free(log);
	resolve_ctx_free(&rctx);
	settings_free(&s);
	config_free(&cfg);
	event_base_free(eb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_content_and_hold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_done_and_defer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_sorted_and_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_id_collision, setup, teardown),
		cmocka_unit_test(test_id_unique_threads),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test_setup_teardown(test_qmgr_end_to_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sched_flags, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
