/*
 * facteurd.c - the daemon: reads main.cf/master.cf, binds the listeners
 * and opens the log as root, drops to mail_owner, then runs the one event
 * loop with the SMTP server, the queue manager and the worker pool.
 * Must not: keep root after start-up, or run twice on one queue (the pid
 * file is locked for the daemon's whole life).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/config.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/managesieve.h"
#include "core/params.h"
#include "core/pickup.h"
#include "core/qmgr.h"
#include "delivery/deliver.h"
#include "core/queue.h"
#include "core/resolve.h"
#include "core/smtpd_server.h"
#include "core/worker.h"

#ifdef __FreeBSD__
#define DEFAULT_CONFIG_DIR "/usr/local/etc/facteur"
#else
#define DEFAULT_CONFIG_DIR "/etc/facteur"
#endif
#define SVC "master"

static void
usage(void)
{
	fprintf(stderr, "usage: facteurd [-f] [-c config_dir]\n");
	exit(2);
}

static void
die(const char *fmt, const char *arg)
{
	log_write(NULL, SVC, LOG_LVL_FATAL, fmt, arg);
	exit(1);
}

/* mkdir -p with mode 0700 for the parts it creates. */
static int
mkdirs(const char *path)
{
	char *p = xstrdup(path), *s;

	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			free(p);
			return -1;
		}
		*s = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST) {
		free(p);
		return -1;
	}
	free(p);
	return 0;
}

/* Locked pid file: a second facteurd on the same queue refuses to start. */
static int
pidfile_lock(const char *qdir, int tries)
{
	char *dir = xasprintf("%s/pid", qdir), *path;
	struct flock fl;
	char line[32];
	int fd, n;

	(void)mkdir(dir, 0700);
	path = xasprintf("%s/facteurd.pid", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	free(dir);
	if (fd < 0) {
		log_write(NULL, SVC, LOG_LVL_FATAL, "open %s: %s", path,
			  strerror(errno));
		exit(1);
	}
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	/* tries > 1: the parent that forked us lets go of the lock now. */
	while (fcntl(fd, F_SETLK, &fl) < 0 && --tries > 0)
		usleep(10000);
	if (tries <= 0) {
		log_write(NULL, SVC, LOG_LVL_FATAL, "%s: another facteurd is "
			  "running on this queue (%s is locked)", qdir, path);
		exit(1);
	}
	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, line, (size_t)n, 0) != n)
		log_write(NULL, SVC, LOG_LVL_WARNING, "write %s: %s", path,
			  strerror(errno));
	free(path);
	return fd;		/* kept open: the lock lives with the process */
}

static void
drop_privileges(const struct settings *s, const char *qdir)
{
	struct passwd *pw;
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0)
		return;		/* an ordinary user keeps being that user */
	pw = getpwnam(s->mail_owner);
	if (pw == NULL)
		die("mail_owner \"%s\": no such user (create it, or set "
		    "mail_owner in main.cf)", s->mail_owner);
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (uid == 0)
		die("mail_owner \"%s\" must not be root", s->mail_owner);
	if (chown(qdir, uid, gid) < 0)
		log_write(NULL, SVC, LOG_LVL_WARNING, "chown %s: %s", qdir,
			  strerror(errno));
	if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
		die("cannot drop privileges to \"%s\"", s->mail_owner);
	/* Verify: root must be gone for good. */
	if (setuid(0) == 0 || geteuid() == 0 || getegid() != gid)
		die("privileges still held after switching to \"%s\"",
		    s->mail_owner);
}

/* One descriptor per session: take all the descriptors the system allows. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * Maildirs belong to the user facteurd runs as (mail_owner). A static
 * virtual_uid_maps/virtual_gid_maps naming someone else is a mistake worth
 * a warning: Dovecot would then read the mail as a different user.
 */
static void
check_owner_maps(const struct settings *s)
{
	const char *u = s->virtual_uid_maps, *g = s->virtual_gid_maps;

	if (strncmp(u, "static:", 7) == 0 &&
	    strtoul(u + 7, NULL, 10) != (unsigned long)geteuid())
		log_write(NULL, SVC, LOG_LVL_WARNING, "virtual_uid_maps = %s, "
			  "but facteurd runs as uid %lu: maildirs will be owned "
			  "by uid %lu", u, (unsigned long)geteuid(),
			  (unsigned long)geteuid());
	if (strncmp(g, "static:", 7) == 0 &&
	    strtoul(g + 7, NULL, 10) != (unsigned long)getegid())
		log_write(NULL, SVC, LOG_LVL_WARNING, "virtual_gid_maps = %s, "
			  "but facteurd runs as gid %lu: maildirs will be owned "
			  "by gid %lu", g, (unsigned long)getegid(),
			  (unsigned long)getegid());
}

/*
 * Under systemd (facteur.service runs facteurd -f) stderr is the journal,
 * and so is syslog: the stderr copy of each log line would appear twice.
 * systemd names its stream in JOURNAL_STREAM="DEV:INODE" (systemd.exec(5)).
 */
static int
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

struct daemon_state {
	struct event_base      *base;
	struct smtpd_listener **listeners;
	size_t                  nlisteners;
	int                     signo;
	const struct settings  *s;		/* for reopening maillog_file */
	int                     log_stderr;
	struct qmgr            *qmgr;		/* SIGUSR1: flush the queue */
	struct managesieve    **sieves;		/* managesieved listeners */
	size_t                  nsieves;
};

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon_state *d = arg;

	if (sig == SIGHUP) {
		/* A rotated maillog_file (newsyslog, logrotate) is reopened. */
		if (*d->s->maillog_file &&
		    log_open(d->s->syslog_name, d->s->maillog_file,
			     d->log_stderr) < 0)
			log_write(NULL, SVC, LOG_LVL_WARNING, "reopen maillog_file "
				  "%s: %s", d->s->maillog_file, strerror(errno));
		/* Maps reload by themselves when their files change. */
		log_write(NULL, SVC, LOG_LVL_INFO, "reload: maps are reloaded "
			  "when they change; restart facteurd to apply main.cf "
			  "and master.cf changes");
		return;
	}
	if (sig == SIGUSR1) {
		/* facteur queue flush, sendmail -q: retry deferred mail now. */
		log_write(NULL, SVC, LOG_LVL_INFO, "flush: retrying deferred "
			  "mail now");
		qmgr_flush(d->qmgr);
		return;
	}
	d->signo = (int)sig;
	for (size_t i = 0; i < d->nlisteners; i++)
		smtpd_listener_stop(d->listeners[i]);
	for (size_t i = 0; i < d->nsieves; i++)
		managesieve_stop(d->sieves[i]);
	event_base_loopbreak(d->base);
}

int
main(int argc, char **argv)
{
	const char *dir = DEFAULT_CONFIG_DIR;
	struct daemon_state d;
	struct smtpd_server srv;
	struct strlist warnings;
	struct settings s;
	struct config *cfg;
	struct errbuf err;
	struct resolve_ctx *rctx;
	struct pickup *pickup;
	struct event *sigev[5];
	const struct master_cf *mcf;
	int ch, foreground = 0, pidfd;
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 };

	while ((ch = getopt(argc, argv, "c:fv")) != -1) {
		switch (ch) {
		case 'c':
			dir = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'v':
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	memset(&d, 0, sizeof(d));
	memset(&srv, 0, sizeof(srv));
	memset(&s, 0, sizeof(s));
	strlist_init(&warnings);
	errbuf_clear(&err);
	cfg = config_load(dir, &warnings, &err);
	if (cfg == NULL || settings_load(&s, cfg, &err) < 0) {
		for (size_t i = 0; i < warnings.n; i++)
			fprintf(stderr, "facteurd: %s\n", warnings.v[i]);
		fprintf(stderr, "facteurd: fatal: %s\n", errbuf_str(&err));
		strlist_free(&warnings);
		settings_free(&s);
		config_free(&cfg);
		return 1;
	}
	log_set_hostname(s.myhostname);
	deliver_init(&s);
	d.s = &s;
	d.log_stderr = foreground && (*s.maillog_file || !stderr_is_journal());
	if (log_open(s.syslog_name, s.maillog_file, d.log_stderr) < 0) {
		fprintf(stderr, "facteurd: fatal: open maillog_file %s: %s\n",
			s.maillog_file, strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < warnings.n; i++) {
		const char *w = warnings.v[i];
		enum log_level lvl = LOG_LVL_WARNING;

		if (strncmp(w, "warning: ", 9) == 0)
			w += 9;
		else if (strncmp(w, "notice: ", 8) == 0) {
			w += 8;
			lvl = LOG_LVL_NOTICE;
		}
		log_write(NULL, SVC, lvl, "%s", w);
	}
	strlist_free(&warnings);

	raise_fd_limit();
	if (mkdirs(s.queue_directory) < 0)
		die("cannot create queue_directory %s", s.queue_directory);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);	/* a flush before the loop runs: no-op */

	d.base = event_base_new();
	if (d.base == NULL)
		die("%s", "cannot create the event loop");
	srv.base = d.base;
	srv.queue_dir = s.queue_directory;

	/* Bind every listener as root (ports < 1024), then drop root. */
	mcf = config_master(cfg);
	for (size_t i = 0; i < mcf->n; i++) {
		const struct master_service *svc = &mcf->v[i];
		struct smtpd_listener *l;

		if (strcmp(svc->command, "managesieved") == 0) {
			struct managesieve *ms = managesieve_new(&srv, cfg, svc,
								 &err);

			if (ms == NULL)
				die("%s", errbuf_str(&err));
			d.sieves = xrealloc(d.sieves,
					    (d.nsieves + 1) * sizeof(*d.sieves));
			d.sieves[d.nsieves++] = ms;
			continue;
		}
		if (strcmp(svc->command, "smtpd") != 0 &&
		    strcmp(svc->command, "postscreen") != 0) {
			log_write(NULL, SVC, LOG_LVL_WARNING,
				  "%s, line %d: service \"%s\" (%s) is not "
				  "available yet: not started", svc->file,
				  svc->line, svc->service, svc->command);
			continue;
		}
		if (strcmp(svc->command, "postscreen") == 0)
			log_write(NULL, SVC, LOG_LVL_WARNING,
				  "%s, line %d: postscreen screening is not "
				  "available yet: \"%s\" runs as plain smtpd",
				  svc->file, svc->line, svc->service);
		l = smtpd_listener_new(&srv, cfg, svc, &err);
		if (l == NULL)
			die("%s", errbuf_str(&err));
		d.listeners = xrealloc(d.listeners,
				       (d.nlisteners + 1) * sizeof(*d.listeners));
		d.listeners[d.nlisteners++] = l;
	}
	if (d.nlisteners == 0)
		die("%s", "no smtpd service in master.cf: nothing to do");

	drop_privileges(&s, s.queue_directory);
	check_owner_maps(&s);
	pidfd = pidfile_lock(s.queue_directory, 1);
	if (queue_init(s.queue_directory, &err) < 0)
		die("%s", errbuf_str(&err));

	if (!foreground) {
		/*
		 * The parent exits once the child holds the lock and its pid is
		 * in the pid file, so rc scripts read the daemon's pid, and
		 * exits 1 if the child could not take over.
		 */
		int ready[2];
		char c;
		pid_t pid;

		if (pipe(ready) < 0)
			die("pipe: %s", strerror(errno));
		if ((pid = fork()) < 0)
			die("fork: %s", strerror(errno));
		if (pid > 0) {
			close(ready[1]);
			close(pidfd);
			_exit(read(ready[0], &c, 1) == 1 ? 0 : 1);
		}
		close(ready[0]);
		setsid();
		if (freopen("/dev/null", "r", stdin) == NULL ||
		    freopen("/dev/null", "w", stdout) == NULL ||
		    freopen("/dev/null", "w", stderr) == NULL)
			die("%s", "cannot redirect standard streams");
		/* the lock belongs to the parent: take it again */
		close(pidfd);
		pidfd = pidfile_lock(s.queue_directory, 300);
		if (write(ready[1], "1", 1) != 1)
			die("write: %s", strerror(errno));
		close(ready[1]);
		event_reinit(d.base);
	}

	srv.pool = worker_pool_new(d.base, (unsigned)s.facteur_worker_threads);
	if (srv.pool == NULL)
		die("%s", "cannot start worker threads");
	rctx = resolve_ctx_new(&s, &err);
	if (rctx == NULL)
		die("%s", errbuf_str(&err));
	srv.qmgr = qmgr_new(d.base, srv.pool, &s, rctx, &err);
	if (srv.qmgr == NULL)
		die("%s", errbuf_str(&err));
	d.qmgr = srv.qmgr;
	if ((pickup = pickup_new(d.base, srv.pool, srv.qmgr, &s, &err)) == NULL)
		die("%s", errbuf_str(&err));
	for (size_t i = 0; i < d.nlisteners; i++)
		if (smtpd_listener_start(d.listeners[i], &err) < 0)
			die("%s", errbuf_str(&err));
	for (size_t i = 0; i < d.nsieves; i++)
		if (managesieve_start(d.sieves[i], &err) < 0)
			die("%s", errbuf_str(&err));
	if (qmgr_start(srv.qmgr, &err) < 0)
		die("%s", errbuf_str(&err));
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		sigev[i] = evsignal_new(d.base, sigs[i], on_signal, &d);
		evsignal_add(sigev[i], NULL);
	}
	log_write(NULL, SVC, LOG_LVL_INFO, "daemon started -- configuration %s",
		  dir);

	event_base_dispatch(d.base);

	log_write(NULL, SVC, LOG_LVL_INFO, "terminating on signal %d", d.signo);
	/* Everything acknowledged is on disk: stopping here loses nothing. */
	worker_pool_free(&srv.pool);
	pickup_free(&pickup);
	qmgr_free(&srv.qmgr);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		event_free(sigev[i]);
	resolve_ctx_free(&rctx);
	for (size_t i = 0; i < d.nlisteners; i++)
		if (smtpd_listener_sessions(d.listeners[i]) == 0)
			smtpd_listener_free(&d.listeners[i]);
	free(d.listeners);
	for (size_t i = 0; i < d.nsieves; i++)
		if (managesieve_sessions(d.sieves[i]) == 0)
			managesieve_free(&d.sieves[i]);
	free(d.sieves);
	settings_free(&s);
	config_free(&cfg);
	close(pidfd);
	log_close();
	return 0;
}
