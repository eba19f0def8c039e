/*
 * cli_reload.c - `facteur reload` and `facteur stop`: ask the running
 * facteurd over its control socket (root or mail_owner), else signal the
 * pid in $queue_directory/pid/facteurd.pid (SIGHUP, SIGTERM).
 * reload prints the daemon's verdict (a refused configuration: exit 1,
 * the reason is also in the log); stop waits until facteurd has exited
 * (its pid file lock is released), at most facteur_shutdown_timeout plus
 * a margin.
 * Must not: start anything, or kill anything but the locked pid.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/control.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/mailq.h"
#include "core/params.h"

/* The two values these commands need, from main.cf alone: reload must
 * reach the daemon even when the new main.cf or master.cf is wrong (the
 * daemon then refuses it and says why). */
struct ctl_target {
	char     *queue_directory;
	long long shutdown_timeout;
};

static char *
read_text(const char *path, struct errbuf *err)
{
	FILE *fp = fopen(path, "r");
	char *text = NULL;
	size_t cap = 0, len = 0, n;

	if (fp == NULL) {
		errbuf_set(err, "open %s: %s", path, strerror(errno));
		return NULL;
	}
	do {
		if (cap - len < 4096)
			text = xrealloc(text, cap = cap * 2 + 8192);
		n = fread(text + len, 1, cap - len - 1, fp);
		len += n;
	} while (n > 0 && len < 16 * 1024 * 1024);
	fclose(fp);
	text[len] = '\0';
	return text;
}

int
cli_control_target(struct cli *cli, char **qdir_r, long long *timeout_r)
{
	struct errbuf err;
	struct config *c;
	char *path = xasprintf("%s/main.cf", cli->dir), *text;
	const char *v;

	errbuf_clear(&err);
	text = read_text(path, &err);
	c = text ? config_parse_main(text, path, NULL, &err) : NULL;
	free(text);
	free(path);
	if (c == NULL || (v = config_get_err(c, "queue_directory", &err)) == NULL) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "cannot find facteurd's "
			  "queue_directory: %s", errbuf_str(&err));
		config_free(&c);
		return -1;
	}
	*qdir_r = xstrdup(v);
	*timeout_r = 30;	/* the default, also for a bad value */
	if ((v = config_get(c, "facteur_shutdown_timeout")) != NULL &&
	    params_parse_time(v, 's', timeout_r) < 0)
		*timeout_r = 30;
	config_free(&c);
	return 0;
}

static int
load_settings(struct cli *cli, struct ctl_target *s)
{
	return cli_control_target(cli, &s->queue_directory, &s->shutdown_timeout);
}

static void
settings_done(struct ctl_target *s)
{
	free(s->queue_directory);
}

/* Control socket first; signal when there is none. 0 ok, 1 refused/error. */
static int
ask(const struct ctl_target *s, const char *cmd, int sig)
{
	struct errbuf err;
	char *out = NULL;
	pid_t pid;
	int rc;

	errbuf_clear(&err);
	if (control_request(s->queue_directory, cmd, 60, &out, &err) == 0) {
		rc = strncmp(out, "ok", 2) == 0 ? 0 : 1;
		if (rc != 0)
			log_write(NULL, NULL, LOG_LVL_ERROR, "%s",
				  strncmp(out, "error: ", 7) == 0 ? out + 7 : out);
		else
			fputs(out, stdout);
		free(out);
		return rc;
	}
	errbuf_clear(&err);
	pid = mailq_daemon_pid(s->queue_directory, &err);
	if (pid < 0) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "%s", errbuf_str(&err));
		return 1;
	}
	if (pid == 0) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "facteurd is not running "
			  "on %s", s->queue_directory);
		return 1;
	}
	if (kill(pid, sig) < 0) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "signal facteurd (pid %ld): "
			  "%s", (long)pid, strerror(errno));
		return 1;
	}
	printf("ok: signal %s sent to facteurd (pid %ld)%s\n",
	       sig == SIGHUP ? "HUP" : "TERM", (long)pid,
	       sig == SIGHUP ? "; see the log for the outcome" : "");
	return 0;
}

int
cli_reload(struct cli *cli, int argc, char **argv)
{
	struct ctl_target s;
	int rc;

	if (argc != 1) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "usage: facteur reload");
		return 2;
	}
	if (load_settings(cli, &s) < 0)
		return 1;
	rc = ask(&s, "reload", SIGHUP);
	settings_done(&s);
	return rc;
}

int
cli_stop(struct cli *cli, int argc, char **argv)
{
	struct ctl_target s;
	struct errbuf err;
	time_t deadline;
	int rc;

	if (argc != 1) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "usage: facteur stop");
		return 2;
	}
	if (load_settings(cli, &s) < 0)
		return 1;
	if ((rc = ask(&s, "stop", SIGTERM)) != 0) {
		settings_done(&s);
		return rc;
	}
	deadline = time(NULL) + (time_t)s.shutdown_timeout + 20;
	for (;;) {
		pid_t pid;

		errbuf_clear(&err);
		pid = mailq_daemon_pid(s.queue_directory, &err);
		if (pid == 0)
			break;
		if (pid < 0 || time(NULL) > deadline) {
			log_write(NULL, NULL, LOG_LVL_ERROR, "facteurd has not "
				  "stopped yet%s%s", pid < 0 ? ": " : "",
				  pid < 0 ? errbuf_str(&err) : "");
			settings_done(&s);
			return 1;
		}
		usleep(100000);
	}
	printf("facteurd stopped\n");
	settings_done(&s);
	return 0;
}
