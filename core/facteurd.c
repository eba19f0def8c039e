/*
 * facteurd.c - the daemon: reads main.cf/master.cf, binds the listeners
 * and opens the log as root, drops to mail_owner, then runs the one event
 * loop with the SMTP server, the queue manager and the worker pool.
 *
 * Reload (SIGHUP, `facteur reload` through the control socket): the files
 * are read again into a new generation (config, settings, resolver);
 * new listeners are prepared from it, and the whole is refused, with the
 * reason logged, if any part fails, so the running configuration stays.
 * Then each new listener takes over the sockets of the old one with the
 * same address (we cannot bind privileged ports any more), old listeners
 * finish their sessions on their own settings, the queue manager switches
 * when it is idle (qmgr_reconfigure), and pickup and delivery settings
 * (deliver_init) switch when the worker pool is idle. A generation is
 * freed once nothing uses it.
 * Stop (SIGTERM, SIGINT, `facteur stop`): listening sockets close at
 * once, sessions may finish within facteur_shutdown_timeout, after which
 * they get a 421; deliveries on the worker pool complete, the pid file is
 * removed, exit 0.
 * Must not: keep root after start-up, run twice on one queue (the pid
 * file is locked for the daemon's whole life), or free settings a worker
 * job may still read.
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
#include <time.h>

#include "backends/table_cache.h"
#include "core/cli_check_place.h"
#include "core/config.h"
#include "core/control.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/milter.h"
#include "core/managesieve.h"
#include "core/params.h"
#include "core/pickup.h"
#include "core/qmgr.h"
#include "delivery/deliver.h"
#include "delivery/smtp_tls.h"
#include "core/queue.h"
#include "core/resolve.h"
#include "core/smtpd_server.h"
#include "core/status.h"
#include "core/spawn.h"
#include "core/policy.h"
#include "core/status_http.h"
#include "core/verify.h"
#include "delivery/sieve/sieve.h"
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

/* A configuration error, with the file and line of the setting it names
 * (the words facteur check uses: core/cli_check_place.c). */
static void
die_placed(const struct config *c, const struct master_service *svc,
	   struct errbuf *err)
{
	(void)config_place_error(err, c, svc);
	die("%s", errbuf_str(err));
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
static char *pid_path;	/* removed at exit */

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
	free(pid_path);
	pid_path = path;
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

/* One reading of main.cf/master.cf and what is built from it alone. */
struct gen {
	struct config      *cfg;
	struct settings     s;
	struct resolve_ctx *rctx;
	struct gen         *next;
};

struct daemon {
	struct event_base      *base;
	const char             *dir;
	struct smtpd_server     srv;
	struct gen             *gens;		/* every live generation */
	struct gen             *cur;		/* the newest */
	struct gen             *qmgr_gen;	/* what the qmgr runs on */
	struct gen             *pickup_gen;	/* pickup + deliver_init */
	bool                    pickup_failed;	/* for cur: warned once */
	struct smtpd_listener **listeners;
	size_t                  nlisteners;
	struct managesieve    **sieves;		/* managesieved listeners */
	size_t                  nsieves;
	struct qmgr            *qmgr;
	struct pickup          *pickup;
	struct control         *control;
	struct status_http     *http;
	struct event           *tick;
	struct event           *switch_ev;	/* polls for an idle pool */
	int                     log_stderr;
	int                     signo;
	/* stop */
	bool                    stopping, bound_reached;
	struct timeval          stop_start;
	/* facteur status */
	time_t                  started, last_reload;
	unsigned long           reloads, reload_failures;
};

static struct daemon *D;	/* the one daemon (callbacks without an arg) */

static void
gen_free(struct gen *g)
{
	resolve_ctx_free(&g->rctx);
	settings_free(&g->s);
	config_free(&g->cfg);
	free(g);
}

/* Frees the generations nothing uses any more. */
static void
gen_gc(struct daemon *d)
{
	struct gen **gp = &d->gens, *g;

	while ((g = *gp) != NULL) {
		if (g != d->cur && g != d->qmgr_gen && g != d->pickup_gen) {
			*gp = g->next;
			gen_free(g);
		} else {
			gp = &g->next;
		}
	}
}

static void
log_findings(struct strlist *warnings, const char *prefix)
{
	for (size_t i = 0; i < warnings->n; i++) {
		const char *w = warnings->v[i];
		enum log_level lvl = LOG_LVL_WARNING;

		if (strncmp(w, "warning: ", 9) == 0)
			w += 9;
		else if (strncmp(w, "notice: ", 8) == 0) {
			w += 8;
			lvl = LOG_LVL_NOTICE;
		}
		log_write(NULL, SVC, lvl, "%s%s", prefix, w);
	}
}

static int
is_smtpd_service(const struct master_service *svc)
{
	return strcmp(svc->command, "smtpd") == 0 ||
	    strcmp(svc->command, "postscreen") == 0;
}

/* ---- reload ---- */

/* The maillog_file we write to, to see whether it was rotated. */
static dev_t log_dev;
static ino_t log_ino;

static void
log_remember(const char *path)
{
	struct stat st;

	log_dev = 0;
	log_ino = 0;
	if (*path && stat(path, &st) == 0) {
		log_dev = st.st_dev;
		log_ino = st.st_ino;
	}
}

/*
 * A renamed or removed maillog_file (newsyslog, logrotate) or a new
 * maillog_file/syslog_name is opened again; else the open file is kept
 * (as mail_owner we may not be able to open a root-owned log again).
 */
static void
log_reopen(struct daemon *d, const struct settings *o, const struct settings *n)
{
	struct stat st;

	if (strcmp(o->maillog_file, n->maillog_file) == 0 &&
	    strcmp(o->syslog_name, n->syslog_name) == 0 && *n->maillog_file &&
	    stat(n->maillog_file, &st) == 0 && st.st_dev == log_dev &&
	    st.st_ino == log_ino)
		return;
	if (log_open(n->syslog_name, n->maillog_file, d->log_stderr) < 0) {
		log_write(NULL, SVC, LOG_LVL_WARNING, "reopen maillog_file %s: "
			  "%s (still writing to the file open before)",
			  n->maillog_file, strerror(errno));
		return;
	}
	log_remember(n->maillog_file);
}

static void
qmgr_applied(void *arg)
{
	D->qmgr_gen = arg;
	gen_gc(D);
}

/*
 * Pickup and deliver_init read their settings on worker threads: they
 * switch only when no job is on the pool (checked on the loop thread,
 * which is the only one that submits jobs).
 */
static void
switch_idle_parts(struct daemon *d)
{
	struct errbuf err;

	if (d->pickup_gen == d->cur || d->pickup_failed ||
	    worker_pending(d->srv.pool) != 0)
		return;
	errbuf_clear(&err);
	if (d->pickup != NULL &&
	    pickup_reconfigure(d->pickup, &d->cur->s, &err) < 0) {
		log_write(NULL, SVC, LOG_LVL_WARNING, "reload: local "
			  "submission keeps the previous configuration: %s",
			  errbuf_str(&err));
		d->pickup_failed = true;
		return;
	}
	deliver_init(&d->cur->s);
	sieve_cache_clear();
	d->pickup_gen = d->cur;
	gen_gc(d);
}

/* While a switch waits for an idle pool, look often: under load the
 * pool is idle only for moments. */
static void
on_switch_poll(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct timeval tv = { 0, 2000 };

	switch_idle_parts(d);
	if (d->pickup_gen != d->cur && !d->pickup_failed && !d->stopping)
		event_add(d->switch_ev, &tv);
}

static struct smtpd_listener *
find_old(struct daemon *d, const struct smtpd_listener *nl,
	 int (*same)(const struct smtpd_listener *, const struct smtpd_listener *))
{
	for (size_t i = 0; i < d->nlisteners; i++)
		if (d->listeners[i] != NULL && same(nl, d->listeners[i]))
			return d->listeners[i];
	return NULL;
}

static struct smtpd_listener *
find_old_service(struct daemon *d, const char *service)
{
	for (size_t i = 0; i < d->nlisteners; i++)
		if (strcmp(smtpd_listener_service(d->listeners[i]), service) == 0)
			return d->listeners[i];
	return NULL;
}

static struct managesieve *
find_old_sieve(struct daemon *d, const char *service)
{
	for (size_t i = 0; i < d->nsieves; i++)
		if (strcmp(managesieve_service(d->sieves[i]), service) == 0)
			return d->sieves[i];
	return NULL;
}

static int
in_list(struct managesieve **v, size_t n, const struct managesieve *m)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == m)
			return 1;
	return 0;
}

/* What cannot change without a restart: warn, keep going. */
static void
restart_notices(struct daemon *d, const struct settings *n)
{
	const struct settings *o = &d->cur->s;

	if (strcmp(o->mail_owner, n->mail_owner) != 0)
		log_write(NULL, SVC, LOG_LVL_WARNING, "reload: mail_owner "
			  "changed (%s -> %s): restart facteurd to apply it",
			  o->mail_owner, n->mail_owner);
	if (o->facteur_worker_threads != n->facteur_worker_threads)
		log_write(NULL, SVC, LOG_LVL_WARNING, "reload: "
			  "facteur_worker_threads changed: restart facteurd to "
			  "apply it");
	if (strcmp(o->facteur_metrics_listen, n->facteur_metrics_listen) != 0)
		log_write(NULL, SVC, LOG_LVL_WARNING, "reload: "
			  "facteur_metrics_listen changed: restart facteurd to "
			  "apply it");
	/* the address verifier keeps its start-up settings */
	if (verify_restart_param(o->cfg, n->cfg) != NULL)
		log_write(NULL, SVC, LOG_LVL_WARNING, "reload: %s changed: "
			  "restart facteurd to apply it",
			  verify_restart_param(o->cfg, n->cfg));
}

/*
 * Reads the configuration again and switches to it, or refuses it as a
 * whole. 0, or -1 with why (the reason) set.
 */
static int
daemon_reload(struct daemon *d, struct errbuf *why)
{
	struct strlist warnings;
	struct errbuf err;
	struct gen *g = xcalloc(1, sizeof(*g));
	struct smtpd_listener **nl = NULL;
	struct managesieve **nms = NULL, **kept = NULL;
	size_t nnl = 0, nnms = 0, nkept = 0, i;
	const struct master_cf *mcf;
	int facility;

	strlist_init(&warnings);
	errbuf_clear(&err);
	g->cfg = config_load(d->dir, &warnings, &err);
	if (g->cfg == NULL || settings_load(&g->s, g->cfg, &err) < 0)
		goto refuse;
	if (strcmp(g->s.queue_directory, d->cur->s.queue_directory) != 0) {
		errbuf_set(&err, "queue_directory cannot change while facteurd "
			   "runs (%s -> %s): restart it",
			   d->cur->s.queue_directory, g->s.queue_directory);
		goto refuse;
	}
	if ((g->rctx = resolve_ctx_new(&g->s, &err)) == NULL)
		goto refuse;
	if (log_facility_parse(g->s.syslog_facility, &facility, &err) < 0 ||
	    non_smtpd_milters_check(&g->s, &err) < 0) {
		(void)config_place_error(&err, g->cfg, NULL);
		goto refuse;
	}
	/* unchanged names: keep the certificate read as root at start */
	if (!smtp_tls_client_cert_same(g->s.smtp_tls_cert_file,
				       g->s.smtp_tls_key_file,
				       g->s.smtp_tls_chain_files) &&
	    smtp_tls_client_cert_load(g->s.smtp_tls_cert_file,
				      g->s.smtp_tls_key_file,
				      g->s.smtp_tls_chain_files, &err) < 0)
		goto refuse;
	mcf = config_master(g->cfg);
	for (i = 0; i < mcf->n; i++) {
		const struct master_service *svc = &mcf->v[i];
		struct smtpd_listener *l;

		if (strcmp(svc->command, "managesieved") == 0) {
			struct managesieve *ms, *old = find_old_sieve(d,
							svc->service);
			struct errbuf me;

			errbuf_clear(&me);
			ms = managesieve_prepare(&d->srv, g->cfg, svc, &me);
			if (ms == NULL)
				(void)config_place_error(&me, g->cfg, svc);
			if (ms == NULL && old == NULL) {
				errbuf_set(&err, "%s", errbuf_str(&me));
				goto refuse;
			}
			if (ms == NULL) {
				/* e.g. a key only root can read: keep it running */
				log_write(NULL, SVC, LOG_LVL_WARNING, "reload: %s: "
					  "managesieved keeps its previous settings",
					  errbuf_str(&me));
				kept = xrealloc(kept, (nkept + 1) * sizeof(*kept));
				kept[nkept++] = old;
				continue;
			}
			nms = xrealloc(nms, (nnms + 1) * sizeof(*nms));
			nms[nnms++] = ms;
			continue;
		}
		if (!is_smtpd_service(svc))
			continue;
		l = smtpd_listener_prepare(&d->srv, g->cfg, svc,
					   find_old_service(d, svc->service), &err);
		if (l == NULL) {
			(void)config_place_error(&err, g->cfg, svc);
			goto refuse;
		}
		nl = xrealloc(nl, (nnl + 1) * sizeof(*nl));
		nl[nnl++] = l;
	}
	if (nnl == 0) {
		errbuf_set(&err, "no smtpd service in master.cf: nothing to do");
		goto refuse;
	}
	if (qmgr_reconfigure(d->qmgr, &g->s, g->rctx, qmgr_applied, g,
			     &err) < 0) {
		(void)config_place_error(&err, g->cfg, NULL);
		goto refuse;
	}

	/* Committed: nothing below refuses the new configuration. */
	log_set_facility(facility);
	log_findings(&warnings, "reload: ");
	(void)spawn_sync(d->base, g->cfg, g->s.queue_directory,
			 g->s.mail_owner, false, &err);
	strlist_free(&warnings);
	restart_notices(d, &g->s);
	for (i = 0; i < nnl; i++) {
		struct smtpd_listener *old = find_old(d, nl[i],
						      smtpd_listener_same_sockets);
		struct errbuf be;

		if (old != NULL) {
			smtpd_listener_take_sockets(nl[i], old);
			continue;
		}
		errbuf_clear(&be);
		if (smtpd_listener_bind(nl[i], &be) == 0)
			continue;
		old = find_old(d, nl[i], smtpd_listener_same_service);
		if (old != NULL) {
			log_write(NULL, SVC, LOG_LVL_WARNING, "reload: %s: "
				  "keeping the addresses it listens on: restart "
				  "facteurd to listen on the new ones", errbuf_str(&be));
			smtpd_listener_take_sockets(nl[i], old);
		} else {
			log_write(NULL, SVC, LOG_LVL_WARNING, "reload: %s: not "
				  "listening there until facteurd restarts "
				  "(ports below 1024 need root)", errbuf_str(&be));
			smtpd_listener_free(&nl[i]);
		}
	}
	/* managesieved: the same, by service name */
	for (i = 0; i < nnms; i++) {
		struct managesieve *old = find_old_sieve(d,
					managesieve_service(nms[i]));
		struct errbuf be;

		errbuf_clear(&be);
		if (old != NULL && !in_list(kept, nkept, old)) {
			managesieve_take_sockets(nms[i], old);
		} else if (managesieve_bind(nms[i], &be) < 0) {
			log_write(NULL, SVC, LOG_LVL_WARNING, "reload: %s: not "
				  "listening there until facteurd restarts",
				  errbuf_str(&be));
			managesieve_free(&nms[i]);
		}
	}
	for (i = 0; i < d->nsieves; i++)
		if (!in_list(kept, nkept, d->sieves[i]))
			managesieve_retire(&d->sieves[i]);
	free(d->sieves);
	d->sieves = kept;
	d->nsieves = nkept;
	for (i = 0; i < nnms; i++) {
		if (nms[i] == NULL)
			continue;
		errbuf_clear(&err);
		if (managesieve_start(nms[i], &err) < 0) {
			log_write(NULL, SVC, LOG_LVL_WARNING, "reload: %s",
				  errbuf_str(&err));
			managesieve_free(&nms[i]);
			continue;
		}
		d->sieves = xrealloc(d->sieves, (d->nsieves + 1) *
				     sizeof(*d->sieves));
		d->sieves[d->nsieves++] = nms[i];
	}
	free(nms);
	for (i = 0; i < d->nlisteners; i++)
		smtpd_listener_retire(&d->listeners[i]);
	free(d->listeners);
	d->listeners = NULL;
	d->nlisteners = 0;
	for (i = 0; i < nnl; i++) {
		if (nl[i] == NULL)
			continue;
		errbuf_clear(&err);
		if (smtpd_listener_start(nl[i], &err) < 0) {
			log_write(NULL, SVC, LOG_LVL_WARNING, "reload: %s",
				  errbuf_str(&err));
			smtpd_listener_free(&nl[i]);
			continue;
		}
		d->listeners = xrealloc(d->listeners, (d->nlisteners + 1) *
					sizeof(*d->listeners));
		d->listeners[d->nlisteners++] = nl[i];
	}
	free(nl);
	log_reopen(d, &d->cur->s, &g->s);
	log_set_hostname(g->s.myhostname);
	g->next = d->gens;
	d->gens = g;
	d->cur = g;
	d->pickup_failed = false;
	/* Maps: cached answers of ldap:/mysql: tables go too. */
	table_cache_flush_all();
	d->reloads++;
	d->last_reload = time(NULL);
	log_write(NULL, SVC, LOG_LVL_INFO, "reload -- configuration %s "
		  "(%zu listener%s)", d->dir, d->nlisteners,
		  d->nlisteners == 1 ? "" : "s");
	on_switch_poll(-1, 0, d);
	gen_gc(d);
	return 0;

refuse:
	errbuf_set(why, "%s", errbuf_str(&err));
	for (i = 0; i < nnl; i++)
		smtpd_listener_free(&nl[i]);
	free(nl);
	for (i = 0; i < nnms; i++)
		managesieve_free(&nms[i]);
	free(nms);
	free(kept);
	strlist_free(&warnings);
	gen_free(g);
	d->reload_failures++;
	log_write(NULL, SVC, LOG_LVL_WARNING, "reload refused: %s; the running "
		  "configuration is kept", errbuf_str(why));
	return -1;
}

/* ---- stop ---- */

static void
daemon_stop(struct daemon *d, int sig)
{
	struct timeval now;

	if (d->stopping) {
		/* A second request: do not wait for the bound. */
		gettimeofday(&now, NULL);
		d->stop_start.tv_sec = now.tv_sec -
			(time_t)d->cur->s.facteur_shutdown_timeout - 1;
		return;
	}
	d->stopping = true;
	d->signo = sig;
	gettimeofday(&d->stop_start, NULL);
	for (size_t i = 0; i < d->nlisteners; i++)
		smtpd_listener_close_sockets(d->listeners[i]);
	for (size_t i = 0; i < d->nsieves; i++)
		managesieve_stop(d->sieves[i]);
	pickup_stop(d->pickup);
	log_write(NULL, SVC, LOG_LVL_INFO, "stopping%s: no new connections; "
		  "%lu session%s may finish within %llds", sig ? " on signal" : "",
		  d->srv.smtp_sessions, d->srv.smtp_sessions == 1 ? "" : "s",
		  d->cur->s.facteur_shutdown_timeout);
}

/* Stop progress: the loop ends when no session is left, or at the bound
 * (421 to everyone) plus a few seconds for the last replies. */
static void
stop_progress(struct daemon *d)
{
	struct timeval now;
	long long waited, bound = d->cur->s.facteur_shutdown_timeout;

	gettimeofday(&now, NULL);
	waited = (long long)(now.tv_sec - d->stop_start.tv_sec);
	/* (clients still in postscreen's tests or in ManageSieve are not
	 * waited for: no mail is in flight there) */
	if (d->srv.smtp_sessions == 0) {
		event_base_loopbreak(d->base);
		return;
	}
	if (!d->bound_reached && waited >= bound) {
		d->bound_reached = true;
		d->srv.shutting_down = true;
		log_write(NULL, SVC, LOG_LVL_INFO, "stopping: "
			  "facteur_shutdown_timeout (%llds) reached: closing %lu "
			  "session%s with 421", bound, d->srv.smtp_sessions,
			  d->srv.smtp_sessions == 1 ? "" : "s");
		for (size_t i = 0; i < d->nlisteners; i++)
			smtpd_listener_shutdown(d->listeners[i]);
		smtpd_listener_shutdown_retired();
	}
	if (d->bound_reached && waited >= bound + 10) {
		log_write(NULL, SVC, LOG_LVL_WARNING, "stopping: %lu session%s "
			  "still busy: closing them", d->srv.smtp_sessions,
			  d->srv.smtp_sessions == 1 ? "" : "s");
		event_base_loopbreak(d->base);
	}
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	if (d->pickup_gen != d->cur)
		switch_idle_parts(d);
	smtpd_listener_sweep();
	policy_sweep();		/* idle check_policy_service connections */
	if (d->stopping)
		stop_progress(d);
}

/* ---- status ---- */

enum status_kind { STATUS_TEXT, STATUS_METRICS_CONTROL, STATUS_METRICS_HTTP };

struct status_job {
	struct daemon *d;
	enum status_kind kind;
	void          *conn;	/* control_conn or status_http_conn */
	char          *qdir;
	long           queue[STATUS_QUEUE_STATES];
};

static void
status_work(void *arg)
{
	struct status_job *j = arg;

	status_queue_count(j->qdir, j->queue);
}

static void
status_done(void *arg)
{
	struct status_job *j = arg;
	struct daemon *d = j->d;
	struct status_daemon sd;
	struct buf out;

	memset(&sd, 0, sizeof(sd));
	sd.pid = (long)getpid();
	sd.started = d->started;
	sd.last_reload = d->last_reload;
	sd.config_dir = d->dir;
	sd.reloads = d->reloads;
	sd.reload_failures = d->reload_failures;
	sd.sessions = d->srv.nsessions;
	sd.connections = d->srv.connections;
	sd.proxy_errors = d->srv.proxy_errors;
	sd.retired_listeners = smtpd_listener_retired_count();
	for (struct gen *g = d->gens; g != NULL; g = g->next)
		sd.generations++;
	sd.qmgr_in_flight = qmgr_in_flight(d->qmgr);
	sd.stopping = d->stopping;
	memcpy(sd.queue, j->queue, sizeof(sd.queue));
	sd.listeners = xcalloc(d->nlisteners + d->nsieves + 1,
			       sizeof(*sd.listeners));
	sd.nlisteners = d->nlisteners + d->nsieves;
	for (size_t i = 0; i < d->nsieves; i++) {
		struct status_listener *sl = &sd.listeners[d->nlisteners + i];
		size_t n = managesieve_listen_fds(d->sieves[i], NULL, 0);
		int *fds = xcalloc(n + 1, sizeof(int));

		sl->service = managesieve_service(d->sieves[i]);
		sl->command = "managesieved";
		sl->addrs = xcalloc(n + 1, sizeof(char *));
		n = managesieve_listen_fds(d->sieves[i], fds, n);
		for (size_t k = 0; k < n; k++)
			if ((sl->addrs[sl->naddrs] = status_sockname(fds[k])) != NULL)
				sl->naddrs++;
		free(fds);
		sl->sessions = managesieve_sessions(d->sieves[i]);
		sl->max_sessions = managesieve_max_sessions(d->sieves[i]);
	}
	for (size_t i = 0; i < d->nlisteners; i++) {
		struct status_listener *sl = &sd.listeners[i];
		size_t n = smtpd_listener_addresses(d->listeners[i], NULL, 0);

		sl->service = smtpd_listener_service(d->listeners[i]);
		sl->command = smtpd_listener_command(d->listeners[i]);
		sl->addrs = xcalloc(n + 1, sizeof(char *));
		sl->naddrs = smtpd_listener_addresses(d->listeners[i], sl->addrs, n);
		sl->sessions = smtpd_listener_sessions(d->listeners[i]);
		sl->max_sessions = smtpd_listener_max_sessions(d->listeners[i]);
	}
	buf_init(&out, 0);
	if (j->kind == STATUS_TEXT)
		status_format_text(&sd, &out);
	else
		status_format_metrics(&sd, &out);
	if (j->kind == STATUS_METRICS_HTTP)
		status_http_reply(j->conn, out.data ? out.data : "", out.len);
	else
		control_reply(j->conn, out.data ? out.data : "", out.len);
	buf_free(&out);
	for (size_t i = 0; i < sd.nlisteners; i++) {
		for (size_t k = 0; k < sd.listeners[i].naddrs; k++)
			free(sd.listeners[i].addrs[k]);
		free(sd.listeners[i].addrs);
	}
	free(sd.listeners);
	free(j->qdir);
	free(j);
}

static void
status_start(struct daemon *d, enum status_kind kind, void *conn)
{
	struct status_job *j = xcalloc(1, sizeof(*j));

	j->d = d;
	j->kind = kind;
	j->conn = conn;
	j->qdir = xstrdup(d->cur->s.queue_directory);
	worker_submit(d->srv.pool, status_work, status_done, j);
}

static void
on_metrics(void *arg, struct status_http_conn *c)
{
	status_start(arg, STATUS_METRICS_HTTP, c);
}

static void
on_control(void *arg, struct control_conn *c, const char *cmd)
{
	struct daemon *d = arg;

	if (strcmp(cmd, "status") == 0) {
		status_start(d, STATUS_TEXT, c);
	} else if (strcmp(cmd, "metrics") == 0) {
		status_start(d, STATUS_METRICS_CONTROL, c);
	} else if (strcmp(cmd, "reload") == 0) {
		struct errbuf why;
		char *msg;

		errbuf_clear(&why);
		if (d->stopping)
			msg = xstrdup("error: facteurd is stopping\n");
		else if (daemon_reload(d, &why) == 0)
			msg = xasprintf("ok: configuration %s reloaded\n", d->dir);
		else
			msg = xasprintf("error: reload refused: %s\n",
					errbuf_str(&why));
		control_reply(c, msg, strlen(msg));
		free(msg);
	} else if (strcmp(cmd, "stop") == 0) {
		static const char ok[] = "ok: stopping\n";

		control_reply(c, ok, sizeof(ok) - 1);
		daemon_stop(d, 0);
	} else {
		static const char bad[] = "error: unknown command (expected "
					  "status, metrics, reload or stop)\n";

		control_reply(c, bad, sizeof(bad) - 1);
	}
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	if (sig == SIGHUP) {
		struct errbuf why;

		errbuf_clear(&why);
		if (d->stopping)
			return;
		(void)daemon_reload(d, &why);	/* logged either way */
		return;
	}
	if (sig == SIGUSR1) {
		/* facteur queue flush, sendmail -q: retry deferred mail now. */
		log_write(NULL, SVC, LOG_LVL_INFO, "flush: retrying deferred "
			  "mail now");
		qmgr_flush(d->qmgr);
		return;
	}
	daemon_stop(d, (int)sig);
}

int
main(int argc, char **argv)
{
	struct daemon d;
	struct strlist warnings;
	struct gen *g;
	struct errbuf err;
	struct event *sigev[5];
	struct verify *verifier = NULL;	/* address verification */
	const struct master_cf *mcf;
	struct timeval tick = { 0, 100000 };
	int ch, foreground = 0, pidfd;
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 };

	memset(&d, 0, sizeof(d));
	D = &d;
	d.dir = DEFAULT_CONFIG_DIR;
	while ((ch = getopt(argc, argv, "c:fv")) != -1) {
		switch (ch) {
		case 'c':
			d.dir = optarg;
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

	g = xcalloc(1, sizeof(*g));
	strlist_init(&warnings);
	errbuf_clear(&err);
	g->cfg = config_load(d.dir, &warnings, &err);
	if (g->cfg == NULL || settings_load(&g->s, g->cfg, &err) < 0) {
		for (size_t i = 0; i < warnings.n; i++)
			fprintf(stderr, "facteurd: %s\n", warnings.v[i]);
		fprintf(stderr, "facteurd: fatal: %s\n", errbuf_str(&err));
		strlist_free(&warnings);
		gen_free(g);
		return 1;
	}
	d.cur = d.qmgr_gen = d.pickup_gen = d.gens = g;
	log_set_hostname(g->s.myhostname);
	deliver_init(&g->s);
	d.log_stderr = foreground && (*g->s.maillog_file || !stderr_is_journal());
	if (log_open(g->s.syslog_name, g->s.maillog_file, d.log_stderr) < 0) {
		fprintf(stderr, "facteurd: fatal: open maillog_file %s: %s\n",
			g->s.maillog_file, strerror(errno));
		gen_free(g);
		return 1;
	}
	log_remember(g->s.maillog_file);
	{
		int facility;

		if (log_facility_parse(g->s.syslog_facility, &facility,
				       &err) < 0 ||
		    non_smtpd_milters_check(&g->s, &err) < 0)
			die_placed(g->cfg, NULL, &err);
		log_set_facility(facility);
	}
	log_findings(&warnings, "");
	strlist_free(&warnings);

	raise_fd_limit();
	if (mkdirs(g->s.queue_directory) < 0)
		die("cannot create queue_directory %s", g->s.queue_directory);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);	/* a flush before the loop runs: no-op */

	d.base = event_base_new();
	if (d.base == NULL)
		die("%s", "cannot create the event loop");
	d.srv.base = d.base;
	/* ours: generations come and go (queue_directory cannot change) */
	d.srv.queue_dir = xstrdup(g->s.queue_directory);

	/* Bind every listener as root (ports < 1024), then drop root. */
	mcf = config_master(g->cfg);
	for (size_t i = 0; i < mcf->n; i++) {
		const struct master_service *svc = &mcf->v[i];
		struct smtpd_listener *l;

		if (strcmp(svc->command, "managesieved") == 0) {
			struct managesieve *ms = managesieve_new(&d.srv, g->cfg,
								 svc, &err);

			if (ms == NULL)
				die_placed(g->cfg, svc, &err);
			d.sieves = xrealloc(d.sieves,
					    (d.nsieves + 1) * sizeof(*d.sieves));
			d.sieves[d.nsieves++] = ms;
			continue;
		}
		if (strcmp(svc->command, "spawn") == 0)
			continue;	/* core/spawn.c, after the privilege drop */
		if (!is_smtpd_service(svc)) {
			log_write(NULL, SVC, LOG_LVL_WARNING,
				  "%s, line %d: service \"%s\" (%s) is not "
				  "available yet: not started", svc->file,
				  svc->line, svc->service, svc->command);
			continue;
		}
		l = smtpd_listener_new(&d.srv, g->cfg, svc, &err);
		if (l == NULL)
			die_placed(g->cfg, svc, &err);
		d.listeners = xrealloc(d.listeners,
				       (d.nlisteners + 1) * sizeof(*d.listeners));
		d.listeners[d.nlisteners++] = l;
	}
	if (d.nlisteners == 0)
		die("%s", "no smtpd service in master.cf: nothing to do");
	if (g->s.facteur_metrics_listen[0] != '\0' &&
	    (d.http = status_http_new(g->s.facteur_metrics_listen, &err)) == NULL)
		die_placed(g->cfg, NULL, &err);

	/* the SMTP client's certificate: read as root, like the server keys */
	if (smtp_tls_client_cert_load(g->s.smtp_tls_cert_file,
				      g->s.smtp_tls_key_file,
				      g->s.smtp_tls_chain_files, &err) < 0)
		die_placed(g->cfg, NULL, &err);
	drop_privileges(&g->s, g->s.queue_directory);
	check_owner_maps(&g->s);
	pidfd = pidfile_lock(g->s.queue_directory, 1);
	if (queue_init(g->s.queue_directory, &err) < 0)
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
		pidfd = pidfile_lock(g->s.queue_directory, 300);
		if (write(ready[1], "1", 1) != 1)
			die("write: %s", strerror(errno));
		close(ready[1]);
		event_reinit(d.base);
	}

	d.srv.pool = worker_pool_new(d.base, (unsigned)g->s.facteur_worker_threads);
	if (d.srv.pool == NULL)
		die("%s", "cannot start worker threads");
	g->rctx = resolve_ctx_new(&g->s, &err);
	if (g->rctx == NULL)
		die_placed(g->cfg, NULL, &err);
	d.srv.qmgr = d.qmgr = qmgr_new(d.base, d.srv.pool, &g->s, g->rctx, &err);
	if (d.qmgr == NULL)
		die_placed(g->cfg, NULL, &err);
	if ((d.pickup = pickup_new(d.base, d.srv.pool, d.qmgr, &g->s,
				   &err)) == NULL)
		die("%s", errbuf_str(&err));
	/* reject_unverified_*: probes on this loop (address_verify_*
	 * changes take effect at the next start) */
	if ((verifier = verify_new(d.base, &g->s, &err)) == NULL)
		die_placed(g->cfg, NULL, &err);
	verify_set_current(verifier);
	if ((d.control = control_new(d.base, g->s.queue_directory, on_control,
				     &d, &err)) == NULL)
		log_write(NULL, SVC, LOG_LVL_WARNING, "%s: facteur status, "
			  "reload and stop fall back to signals", errbuf_str(&err));
	if (d.http != NULL)
		status_http_start(d.http, d.base, on_metrics, &d);
	for (size_t i = 0; i < d.nlisteners; i++)
		if (smtpd_listener_start(d.listeners[i], &err) < 0)
			die("%s", errbuf_str(&err));
	for (size_t i = 0; i < d.nsieves; i++)
		if (managesieve_start(d.sieves[i], &err) < 0)
			die("%s", errbuf_str(&err));
	if (qmgr_start(d.qmgr, &err) < 0)
		die("%s", errbuf_str(&err));
	/* master.cf spawn services: their sockets belong to mail_owner */
	if (spawn_sync(d.base, g->cfg, g->s.queue_directory, g->s.mail_owner,
		       true, &err) < 0)
		die("%s", errbuf_str(&err));
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		sigev[i] = evsignal_new(d.base, sigs[i], on_signal, &d);
		evsignal_add(sigev[i], NULL);
	}
	d.tick = event_new(d.base, -1, EV_PERSIST, on_tick, &d);
	event_add(d.tick, &tick);
	d.switch_ev = evtimer_new(d.base, on_switch_poll, &d);
	d.started = time(NULL);
	log_write(NULL, SVC, LOG_LVL_INFO, "daemon started -- configuration %s",
		  d.dir);

	event_base_dispatch(d.base);
	spawn_shutdown();

	if (d.signo)
		log_write(NULL, SVC, LOG_LVL_INFO, "terminating on signal %d",
			  d.signo);
	else
		log_write(NULL, SVC, LOG_LVL_INFO, "terminating on request");
	/* Everything acknowledged is on disk: stopping here loses nothing.
	 * Jobs on the pool complete; deliveries in progress stay queued. */
	verify_stop(verifier);	/* RCPTs waiting for a probe answer now */
	worker_pool_free(&d.srv.pool);
	verify_free(&verifier);
	control_free(&d.control);
	status_http_free(&d.http);
	pickup_free(&d.pickup);
	qmgr_free(&d.qmgr);
	d.srv.qmgr = NULL;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		event_free(sigev[i]);
	event_free(d.tick);
	event_free(d.switch_ev);
	for (size_t i = 0; i < d.nlisteners; i++)
		if (smtpd_listener_sessions(d.listeners[i]) == 0)
			smtpd_listener_free(&d.listeners[i]);
	free(d.listeners);
	smtpd_listener_sweep();
	for (size_t i = 0; i < d.nsieves; i++)
		if (managesieve_sessions(d.sieves[i]) == 0)
			managesieve_free(&d.sieves[i]);
	free(d.sieves);
	d.qmgr_gen = d.pickup_gen = d.cur = NULL;
	gen_gc(&d);
	free(d.srv.queue_dir);
	/* The pid file goes while we still hold its lock. */
	if (pid_path != NULL && unlink(pid_path) < 0)
		log_write(NULL, SVC, LOG_LVL_WARNING, "remove %s: %s", pid_path,
			  strerror(errno));
	free(pid_path);
	close(pidfd);
	log_close();
	return 0;
}
