/*
 * mailq.c - the queue listing in Postfix's mailq format, and the
 * postsuper-like operations of `facteur queue` on queue files by ID.
 * Every change is a rename (or an unlink) of one queue file, so it is safe
 * while facteurd runs: the queue manager finds a moved file gone and skips
 * it. Messages in active/ are being delivered: they can be deleted (the
 * delivery running completes for the recipients it handles) but not held
 * or requeued, which would let a delivered recipient get the message twice.
 * Must not: run on the event loop (it blocks on disk).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/lib/strlist.h"
#include "core/mailq.h"
#include "core/queue.h"

static bool
id_ok(const char *id)
{
	size_t i;

	for (i = 0; id[i]; i++)
		if (!isxdigit((unsigned char)id[i]) || islower((unsigned char)id[i]))
			return false;
	return i == QUEUE_ID_LEN;
}

static void
format_entry(const char *qdir, enum queue_state st, const char *id,
	     struct buf *out, long long *bytes_r)
{
	static const char status[] = { [QUEUE_ACTIVE] = '*',
				       [QUEUE_DEFERRED] = ' ',
				       [QUEUE_HOLD] = '!' };
	struct queue_env env;
	struct errbuf err;
	char when[32];
	struct tm tm;
	int indent;

	memset(&env, 0, sizeof(env));
	errbuf_clear(&err);
	if (queue_read(qdir, st, id, &env, NULL, &err) < 0) {
		if (errno != ENOENT)	/* else: delivered meanwhile */
			buf_printf(out, "%-10s%c %8s %-20s (unreadable queue "
				   "file: %s)\n\n", id, status[st], "?", "",
				   errbuf_str(&err));
		queue_env_free(&env);
		return;
	}
	localtime_r(&env.arrival, &tm);
	if (strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm) == 0)
		snprintf(when, sizeof(when), "?");
	/* ID, status mark, size, date, then recipients under the sender */
	buf_printf(out, "%-10s%c %8lld %-20.20s %s\n", id, status[st],
		   env.size, when, *env.sender ? env.sender : "MAILER-DAEMON");
	indent = (int)strlen(id) < 10 ? 42 : (int)strlen(id) + 32;
	for (size_t i = 0; i < env.nrcpt; i++)
		if (env.rcpt[i].status == QUEUE_RCPT_PENDING)
			buf_printf(out, "%*s%s\n", indent, "", env.rcpt[i].addr);
	buf_putc(out, '\n');
	*bytes_r += env.size;
	queue_env_free(&env);
}

int
mailq_format(const char *qdir, size_t max_entries, struct buf *out,
	     struct errbuf *err)
{
	static const enum queue_state states[] = { QUEUE_ACTIVE,
						   QUEUE_DEFERRED, QUEUE_HOLD };
	long long bytes = 0;
	size_t n = 0;

	for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++) {
		struct strlist ids;

		strlist_init(&ids);
		if (queue_list(qdir, states[s], &ids, err) < 0) {
			strlist_free(&ids);
			return -1;
		}
		for (size_t i = 0; i < ids.n; i++) {
			if (max_entries > 0 && n >= max_entries)
				break;
			if (n == 0)
				buf_puts(out, "-Queue ID-  --Size-- ----Arrival "
					 "Time---- -Sender/Recipient-------\n");
			format_entry(qdir, states[s], ids.v[i], out, &bytes);
			n++;
		}
		strlist_free(&ids);
	}
	if (n == 0)
		buf_puts(out, "Mail queue is empty\n");
	else
		buf_printf(out, "-- %lld Kbytes in %zu Request%s.\n",
			   (bytes + 1023) / 1024, n, n == 1 ? "" : "s");
	return 0;
}

/* One message: 1 changed, 0 not in an applicable queue, -1 error. */
static int
apply_one(const char *qdir, enum mailq_op op, const char *id,
	  void (*report)(const char *, const char *, void *), void *arg,
	  struct errbuf *err)
{
	static const enum queue_state from[][3] = {
		[MAILQ_DELETE] = { QUEUE_HOLD, QUEUE_DEFERRED, QUEUE_ACTIVE },
		[MAILQ_HOLD] = { QUEUE_DEFERRED, QUEUE_DEFERRED, QUEUE_DEFERRED },
		[MAILQ_RELEASE] = { QUEUE_HOLD, QUEUE_HOLD, QUEUE_HOLD },
		[MAILQ_REQUEUE] = { QUEUE_HOLD, QUEUE_DEFERRED, QUEUE_DEFERRED },
	};

	for (int k = 0; k < 3; k++) {
		enum queue_state st = from[op][k];
		struct queue_env env;

		if (k > 0 && st == from[op][k - 1])
			continue;
		switch (op) {
		case MAILQ_DELETE:
			if (queue_remove(qdir, st, id, err) < 0) {
				if (errno == ENOENT)
					continue;
				return -1;
			}
			/* An undelivered message is gone for good: make it so. */
			if (queue_sync_state(qdir, st, err) < 0)
				return -1;
			report(id, "removed", arg);
			return 1;
		case MAILQ_HOLD:
			if (queue_move(qdir, id, st, QUEUE_HOLD, err) < 0) {
				if (errno == ENOENT)
					continue;
				return -1;
			}
			report(id, "placed on hold", arg);
			return 1;
		case MAILQ_RELEASE:
		case MAILQ_REQUEUE:
			/* Due now: the next queue run (or a flush) takes it. */
			memset(&env, 0, sizeof(env));
			if (queue_read(qdir, st, id, &env, NULL, err) < 0) {
				queue_env_free(&env);
				if (errno == ENOENT)
					continue;
				return -1;
			}
			env.next_attempt = time(NULL);
			if (queue_defer(qdir, st, &env, err) < 0) {
				int saved = errno;

				queue_env_free(&env);
				if (saved == ENOENT)
					continue;
				errno = saved;
				return -1;
			}
			queue_env_free(&env);
			report(id, op == MAILQ_RELEASE ? "released from hold"
			       : "requeued", arg);
			return 1;
		}
	}
	return 0;
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
mailq_apply(const char *qdir, enum mailq_op op, const char *id,
	    void (*report)(const char *, const char *, void *), void *arg,
	    struct errbuf *err)
{
	static const enum queue_state all[] = { QUEUE_HOLD, QUEUE_DEFERRED,
						QUEUE_ACTIVE };
	struct strlist ids;
	int changed = 0, rc;

	if (strcmp(id, "ALL") != 0) {
		if (!id_ok(id)) {
			errbuf_set(err, "%.100s: bad queue ID (expected %d "
				   "upper-case hex digits, or ALL)", id,
				   QUEUE_ID_LEN);
			errno = EINVAL;
			return -1;
		}
		return apply_one(qdir, op, id, report, arg, err);
	}
	strlist_init(&ids);
	for (size_t s = 0; s < sizeof(all) / sizeof(all[0]); s++)
		if (queue_list(qdir, all[s], &ids, err) < 0) {
			strlist_free(&ids);
			return -1;
		}
	if (ids.n > 1)
		qsort(ids.v, ids.n, sizeof(char *), cmp_id);
	for (size_t i = 0; i < ids.n; i++) {
		/* Listed twice if it moved between two listings: once is enough. */
		if (i > 0 && strcmp(ids.v[i], ids.v[i - 1]) == 0)
			continue;
		if ((rc = apply_one(qdir, op, ids.v[i], report, arg, err)) < 0) {
			strlist_free(&ids);
			return -1;
		}
		changed += rc;
	}
	strlist_free(&ids);
	return changed;
}

pid_t
mailq_daemon_pid(const char *qdir, struct errbuf *err)
{
	char path[4096];
	struct flock fl;
	int fd, saved;

	snprintf(path, sizeof(path), "%s/pid/facteurd.pid", qdir);
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return 0;
		saved = errno;
		errbuf_set(err, "open %s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_GETLK, &fl) < 0) {
		saved = errno;
		errbuf_set(err, "lock test on %s: %s", path, strerror(saved));
		close(fd);
		errno = saved;
		return -1;
	}
	close(fd);
	return fl.l_type == F_UNLCK ? 0 : fl.l_pid;
}
