/*
 * cli_queue.c - `facteur queue list|flush|delete|hold|release|requeue`:
 * mailq and postsuper for facteur's queue. Run as root (it then becomes
 * mail_owner before touching the queue, which belongs to that user) or as
 * mail_owner. Changes are renames of single queue files (core/mailq.c),
 * safe while facteurd runs; flush signals the daemon (SIGUSR1).
 * Must not: keep root while reading queue files, or write anything but
 * the queue files it is asked to change.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/log.h"
#include "core/mailq.h"
#include "core/params.h"

/* As root, become mail_owner: the queue is that user's. */
static int
become_mail_owner(const struct settings *s)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	if ((pw = getpwnam(s->mail_owner)) == NULL) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "mail_owner \"%s\": no "
			  "such user", s->mail_owner);
		return -1;
	}
	if (pw->pw_uid == 0) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "mail_owner \"%s\" must not "
			  "be root", s->mail_owner);
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0 || geteuid() == 0) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "cannot switch to "
			  "mail_owner \"%s\": %s", s->mail_owner, strerror(errno));
		return -1;
	}
	return 0;
}

/* 0 sent, 1 daemon not running, -1 error (logged). */
static int
signal_flush(const char *qdir, bool quiet)
{
	struct errbuf err;
	pid_t pid;

	errbuf_clear(&err);
	if ((pid = mailq_daemon_pid(qdir, &err)) < 0) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "%s", errbuf_str(&err));
		return -1;
	}
	if (pid == 0) {
		if (!quiet)
			log_write(NULL, NULL, LOG_LVL_ERROR, "facteurd is not "
				  "running on %s: nothing to flush", qdir);
		return 1;
	}
	if (kill(pid, SIGUSR1) < 0) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "signal facteurd (pid %ld): "
			  "%s", (long)pid, strerror(errno));
		return -1;
	}
	return 0;
}

static void
report(const char *id, const char *what, void *arg)
{
	int *n = arg;

	log_write(NULL, NULL, LOG_LVL_INFO, "%s: %s", id, what);
	(*n)++;
}

static int
queue_op(const struct settings *s, enum mailq_op op, int argc, char **argv)
{
	static const char *const summary[] = {
		[MAILQ_DELETE] = "Deleted", [MAILQ_HOLD] = "Placed on hold",
		[MAILQ_RELEASE] = "Released from hold",
		[MAILQ_REQUEUE] = "Requeued",
	};
	struct errbuf err;
	int n = 0, rc = 0;

	if (argc < 2) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "queue %s: a queue ID or ALL "
			  "expected", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		int before = n, r;

		errbuf_clear(&err);
		r = mailq_apply(s->queue_directory, op, argv[i], report, &n, &err);
		if (r < 0) {
			log_write(NULL, NULL, LOG_LVL_ERROR, "%s", errbuf_str(&err));
			rc = 1;
		} else if (r == 0 && strcmp(argv[i], "ALL") != 0 && n == before) {
			log_write(NULL, NULL, LOG_LVL_WARNING, "%s: no such message "
				  "in the %s queue", argv[i],
				  op == MAILQ_RELEASE ? "hold" :
				  op == MAILQ_DELETE ? "active, deferred or hold" :
				  op == MAILQ_HOLD ? "deferred" :
				  "deferred or hold");
			rc = 1;
		}
	}
	if (n > 0)
		log_write(NULL, NULL, LOG_LVL_INFO, "%s: %d message%s",
			  summary[op], n, n == 1 ? "" : "s");
	/* Released and requeued messages are due now: tell the daemon. */
	if (n > 0 && (op == MAILQ_RELEASE || op == MAILQ_REQUEUE))
		(void)signal_flush(s->queue_directory, true);
	return rc;
}

int
cli_queue(struct cli *cli, int argc, char **argv)
{
	static const struct {
		const char *name;
		enum mailq_op op;
	} ops[] = {
		{ "delete", MAILQ_DELETE }, { "hold", MAILQ_HOLD },
		{ "release", MAILQ_RELEASE }, { "requeue", MAILQ_REQUEUE },
	};
	struct settings s;
	struct config *c;
	struct errbuf err;
	int rc = 2;

	if (argc < 2) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "queue: list, flush, delete, "
			  "hold, release or requeue expected");
		return 2;
	}
	if ((c = cli_load_config(cli, false)) == NULL)
		return 1;
	memset(&s, 0, sizeof(s));
	errbuf_clear(&err);
	if (settings_load(&s, c, &err) < 0) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "%s", errbuf_str(&err));
		config_free(&c);
		return 1;
	}
	config_free(&c);
	if (become_mail_owner(&s) < 0) {
		settings_free(&s);
		return 1;
	}
	argc--;
	argv++;
	if (strcmp(argv[0], "list") == 0 && argc == 1) {
		struct buf out;

		buf_init(&out, 0);
		if (mailq_format(s.queue_directory, 0, &out, &err) < 0) {
			log_write(NULL, NULL, LOG_LVL_ERROR, "%s%s", errbuf_str(&err),
				  errno == EACCES ? " (run as root or as mail_owner)"
				  : "");
			rc = 1;
		} else {
			fwrite(out.data, 1, out.len, stdout);
			rc = fflush(stdout) == 0 ? 0 : 1;
		}
		buf_free(&out);
	} else if (strcmp(argv[0], "flush") == 0 && argc == 1) {
		rc = signal_flush(s.queue_directory, false) == 0 ? 0 : 1;
	} else {
		bool known = false;

		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			if (strcmp(argv[0], ops[i].name) == 0) {
				rc = queue_op(&s, ops[i].op, argc, argv);
				known = true;
			}
		if (!known)
			log_write(NULL, NULL, LOG_LVL_ERROR, "queue: unknown or "
				  "malformed subcommand: %.100s", argv[0]);
	}
	settings_free(&s);
	return rc;
}
