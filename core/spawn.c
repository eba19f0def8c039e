/*
 * spawn.c - master.cf spawn services (see spawn.h): listening sockets,
 * one child per accepted connection with stdin/stdout on it, maxproc,
 * the time limit, and the reaping of children from SIGCHLD on the loop.
 * The registry is process-wide (one daemon): services survive reloads
 * when their socket is unchanged, and children outlive their service.
 * Must not: block the loop, allocate or log between fork and exec, or
 * reap processes that are not its own (waitpid by pid only).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/lib/xmalloc.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/params.h"
#include "core/spawn.h"

#define SVC			"spawn"
#define SPAWN_DEFAULT_MAXPROC	100
#define SPAWN_DEFAULT_LIMIT	1000	/* seconds, Postfix's command_time_limit */
#define SPAWN_BACKLOG		64
#define SPAWN_FD_SCAN_MAX	65536	/* descriptors closed in the child */

struct spawn_svc {
	char           *name, *type, *host, *port;
	char           *path;		/* unix: the socket file */
	char          **argv;		/* NULL-terminated, owned */
	char           *user;		/* for comparison on reload */
	int             maxproc;
	long            time_limit;
	int            *fds;
	size_t          nfds;
	struct event  **evs;
	bool            accepting;
	bool            retired;	/* out of the configuration */
	bool            seen;		/* in the configuration being synced */
	unsigned        nchild;
	struct spawn_svc *next;
};

struct spawn_child {
	pid_t               pid;
	struct spawn_svc   *svc;
	struct event       *timer;
	bool                killed;
	struct spawn_child *next;
};

static struct {
	struct event_base  *base;
	struct event       *sigchld;
	struct spawn_svc   *svcs;
	struct spawn_child *kids;
	char              **envp;
	int                 fd_max;
} S;

static void svc_accepting(struct spawn_svc *v, bool on);

static void
argv_free(char **argv)
{
	if (argv == NULL)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

static char **
argv_from(const struct strlist *l)
{
	char **a = xcalloc(l->n + 1, sizeof(*a));

	for (size_t i = 0; i < l->n; i++)
		a[i] = xstrdup(l->v[i]);
	return a;
}

static bool
argv_same(char **a, const struct strlist *l)
{
	size_t i;

	for (i = 0; a[i] && i < l->n; i++)
		if (strcmp(a[i], l->v[i]) != 0)
			return false;
	return a[i] == NULL && i == l->n;
}

/* Postfix's spawn exports only a few variables (export_environment). */
static void
env_init(void)
{
	static const char *const keep[] = { "TZ", "LANG", "LC_ALL", "MAIL_CONFIG" };
	size_t n = 0;

	if (S.envp != NULL)
		return;
	S.envp = xcalloc(sizeof(keep) / sizeof(keep[0]) + 2, sizeof(*S.envp));
	S.envp[n++] = xstrdup("PATH=/usr/bin:/bin:/usr/sbin:/sbin:"
			      "/usr/local/bin:/usr/local/sbin");
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		const char *v = getenv(keep[i]);

		if (v != NULL)
			S.envp[n++] = xasprintf("%s=%s", keep[i], v);
	}
}

static void
svc_free(struct spawn_svc *v)
{
	for (size_t i = 0; i < v->nfds; i++) {
		if (v->evs[i] != NULL)
			event_free(v->evs[i]);
		close(v->fds[i]);
	}
	free(v->evs);
	free(v->fds);
	free(v->name);
	free(v->type);
	free(v->host);
	free(v->port);
	free(v->path);
	free(v->user);
	argv_free(v->argv);
	free(v);
}

/* Stops listening; the service itself goes once its children are gone. */
static void
svc_retire(struct spawn_svc *v)
{
	v->retired = true;
	svc_accepting(v, false);
	for (size_t i = 0; i < v->nfds; i++) {
		if (v->evs[i] != NULL)
			event_free(v->evs[i]);
		v->evs[i] = NULL;
		close(v->fds[i]);
	}
	v->nfds = 0;
	if (v->path != NULL)
		(void)unlink(v->path);
}

static void
svc_unlink(struct spawn_svc *v)
{
	for (struct spawn_svc **pp = &S.svcs; *pp; pp = &(*pp)->next)
		if (*pp == v) {
			*pp = v->next;
			return;
		}
}

/* ---- children ---- */

void
spawn_child_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (int sig = 1; sig < 32; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
}

static void
child_exec(const struct spawn_svc *v, int cfd, long limit)
{
	/* Only async-signal-safe calls from here on (we may have threads). */
	spawn_child_signals();
	(void)setsid();
	if (dup2(cfd, 0) < 0 || dup2(cfd, 1) < 0)
		_exit(126);
	if (cfd > 2)
		(void)close(cfd);
#if defined(__FreeBSD__)
	closefrom(3);
#else
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	if (close_range(3, ~0U, 0) < 0)
#endif
		for (int fd = 3; fd < S.fd_max; fd++)
			(void)close(fd);
#endif
	(void)alarm((unsigned)limit);	/* a second guard beside the timer */
	execve(v->argv[0], v->argv, S.envp);
	{
		static const char m[] = "facteurd spawn: exec failed\n";

		(void)!write(2, m, sizeof(m) - 1);
	}
	_exit(127);
}

static void
child_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct spawn_child *k = arg;

	(void)fd;
	(void)what;
	log_write(NULL, SVC, LOG_LVL_WARNING, "%s: process id %ld: command "
		  "time limit exceeded: killed", k->svc->name, (long)k->pid);
	k->killed = true;
	(void)kill(-k->pid, SIGKILL);
	(void)kill(k->pid, SIGKILL);
}

static void
child_gone(struct spawn_child *k, int status)
{
	struct spawn_svc *v = k->svc;

	if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		log_write(NULL, SVC, LOG_LVL_WARNING, "command %s exit status %d",
			  v->argv[0], WEXITSTATUS(status));
	else if (WIFSIGNALED(status) && !k->killed)
		log_write(NULL, SVC, LOG_LVL_WARNING, "command %s killed by "
			  "signal %d", v->argv[0], WTERMSIG(status));
	if (k->timer != NULL)
		event_free(k->timer);
	v->nchild--;
	if (v->retired) {
		if (v->nchild == 0) {
			svc_unlink(v);
			svc_free(v);
		}
	} else if (!v->accepting && v->nchild < (unsigned)v->maxproc) {
		svc_accepting(v, true);
	}
	free(k);
}

static void
on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct spawn_child **pp = &S.kids;

	(void)sig;
	(void)what;
	(void)arg;
	while (*pp != NULL) {
		struct spawn_child *k = *pp;
		int status;
		pid_t r = waitpid(k->pid, &status, WNOHANG);

		if (r == k->pid || (r < 0 && errno == ECHILD)) {
			*pp = k->next;
			child_gone(k, r == k->pid ? status : 0);
			continue;
		}
		pp = &k->next;
	}
}

static void
on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct spawn_svc *v = arg;
	struct spawn_child *k;
	struct timeval tv;
	int cfd, fl;
	pid_t pid;

	(void)what;
	cfd = accept(lfd, NULL, NULL);
	if (cfd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED)
			log_write(NULL, SVC, LOG_LVL_WARNING, "%s: accept: %s",
				  v->name, strerror(errno));
		return;
	}
	/* BSD: accepted sockets inherit O_NONBLOCK; the command wants blocking */
	if ((fl = fcntl(cfd, F_GETFL)) >= 0)
		(void)fcntl(cfd, F_SETFL, fl & ~O_NONBLOCK);
	pid = fork();
	if (pid < 0) {
		log_write(NULL, SVC, LOG_LVL_WARNING, "%s: fork: %s", v->name,
			  strerror(errno));
		close(cfd);
		return;
	}
	if (pid == 0)
		child_exec(v, cfd, v->time_limit);
	close(cfd);
	k = xcalloc(1, sizeof(*k));
	k->pid = pid;
	k->svc = v;
	k->timer = evtimer_new(S.base, child_timeout, k);
	tv.tv_sec = v->time_limit;
	tv.tv_usec = 0;
	if (k->timer != NULL)
		evtimer_add(k->timer, &tv);
	k->next = S.kids;
	S.kids = k;
	v->nchild++;
	if (v->nchild >= (unsigned)v->maxproc)
		svc_accepting(v, false);
}

static void
svc_accepting(struct spawn_svc *v, bool on)
{
	for (size_t i = 0; i < v->nfds; i++) {
		if (v->evs[i] == NULL)
			continue;
		if (on)
			event_add(v->evs[i], NULL);
		else
			event_del(v->evs[i]);
	}
	v->accepting = on;
}

/* ---- sockets ---- */

static int
bind_unix(struct spawn_svc *v, const char *queue_dir, struct errbuf *err)
{
	struct sockaddr_un sun;
	struct stat st;
	char *dir = xasprintf("%s/private", queue_dir);
	int fd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		errbuf_set(err, "spawn service %s: mkdir %s: %s", v->name, dir,
			   strerror(errno));
		free(dir);
		return -1;
	}
	free(dir);
	v->path = xasprintf("%s/private/%s", queue_dir, v->name);
	memset(&sun, 0, sizeof(sun));
	if (strlen(v->path) >= sizeof(sun.sun_path)) {
		errbuf_set(err, "spawn service %s: socket path %s is too long",
			   v->name, v->path);
		return -1;
	}
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, v->path, strlen(v->path) + 1);
	if (lstat(v->path, &st) == 0 && S_ISSOCK(st.st_mode))
		(void)unlink(v->path);	/* left by a previous run */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, SPAWN_BACKLOG) < 0) {
		errbuf_set(err, "spawn service %s: cannot listen on %s: %s",
			   v->name, v->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(v->path);
		v->path = NULL;
		return -1;
	}
	v->fds = xmalloc(sizeof(*v->fds));
	v->fds[0] = fd;
	v->nfds = 1;
	return 0;
}

static struct spawn_svc *
svc_new(const struct config *c, const struct master_service *m,
	const char *queue_dir, struct errbuf *err)
{
	struct spawn_svc *v = xcalloc(1, sizeof(*v));
	char *lname = xasprintf("%s_time_limit", m->service);
	const char *tl = config_get(c, lname);
	long long secs = SPAWN_DEFAULT_LIMIT;

	v->name = xstrdup(m->service);
	v->type = xstrdup(m->type);
	v->host = xstrdup(m->host);
	v->port = xstrdup(m->port);
	v->argv = argv_from(&m->argv);
	v->user = m->user ? xstrdup(m->user) : NULL;
	v->maxproc = m->maxproc > 0 ? m->maxproc : SPAWN_DEFAULT_MAXPROC;
	if (tl != NULL && *tl != '\0' &&
	    (params_parse_time(tl, 's', &secs) < 0 || secs <= 0)) {
		errbuf_set(err, "%s: bad time value \"%.100s\"", lname, tl);
		free(lname);
		svc_free(v);
		return NULL;
	}
	free(lname);
	v->time_limit = (long)secs;
	if (strcmp(m->type, "unix") == 0) {
		if (bind_unix(v, queue_dir, err) < 0) {
			svc_free(v);
			return NULL;
		}
	} else {
		const char *ii = config_get(c, "inet_interfaces");
		const char *ip = config_get(c, "inet_protocols");

		if (listen_bind_service(m->service, m, ii ? ii : "all",
					ip ? ip : "all", SPAWN_BACKLOG, &v->fds,
					&v->nfds, err) < 0) {
			svc_free(v);
			return NULL;
		}
	}
	v->evs = xcalloc(v->nfds, sizeof(*v->evs));
	for (size_t i = 0; i < v->nfds; i++) {
		(void)fcntl(v->fds[i], F_SETFD, FD_CLOEXEC);
		v->evs[i] = event_new(S.base, v->fds[i], EV_READ | EV_PERSIST,
				      on_accept, v);
	}
	svc_accepting(v, true);
	return v;
}

static struct spawn_svc *
svc_find(const struct master_service *m)
{
	for (struct spawn_svc *v = S.svcs; v; v = v->next)
		if (!v->retired && strcmp(v->name, m->service) == 0 &&
		    strcmp(v->type, m->type) == 0 &&
		    strcmp(v->host, m->host) == 0 &&
		    strcmp(v->port, m->port) == 0)
			return v;
	return NULL;
}

/* Settings that change without a new socket. */
static int
svc_update(struct spawn_svc *v, const struct config *c,
	   const struct master_service *m, struct errbuf *err)
{
	char *lname = xasprintf("%s_time_limit", m->service);
	const char *tl = config_get(c, lname);
	long long secs = SPAWN_DEFAULT_LIMIT;

	if (tl != NULL && *tl != '\0' &&
	    (params_parse_time(tl, 's', &secs) < 0 || secs <= 0)) {
		errbuf_set(err, "%s: bad time value \"%.100s\"", lname, tl);
		free(lname);
		return -1;
	}
	free(lname);
	v->time_limit = (long)secs;
	if (!argv_same(v->argv, &m->argv)) {
		argv_free(v->argv);
		v->argv = argv_from(&m->argv);
	}
	free(v->user);
	v->user = m->user ? xstrdup(m->user) : NULL;
	v->maxproc = m->maxproc > 0 ? m->maxproc : SPAWN_DEFAULT_MAXPROC;
	svc_accepting(v, v->nchild < (unsigned)v->maxproc);
	return 0;
}

int
spawn_sync(struct event_base *base, const struct config *c,
	   const char *queue_dir, const char *mail_owner, bool startup,
	   struct errbuf *err)
{
	const struct master_cf *mcf = config_master(c);
	struct rlimit rl;

	if (S.base == NULL) {
		S.base = base;
		env_init();
		S.fd_max = SPAWN_FD_SCAN_MAX;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur != RLIM_INFINITY &&
		    rl.rlim_cur < (rlim_t)SPAWN_FD_SCAN_MAX)
			S.fd_max = (int)rl.rlim_cur;
		S.sigchld = evsignal_new(base, SIGCHLD, on_sigchld, NULL);
		if (S.sigchld == NULL || evsignal_add(S.sigchld, NULL) < 0) {
			errbuf_set(err, "spawn: cannot watch SIGCHLD");
			return -1;
		}
	}
	for (struct spawn_svc *v = S.svcs; v; v = v->next)
		v->seen = false;
	for (size_t i = 0; i < mcf->n; i++) {
		const struct master_service *m = &mcf->v[i];
		struct spawn_svc *v;
		struct errbuf e;

		if (strcmp(m->command, "spawn") != 0)
			continue;
		errbuf_clear(&e);
		if ((v = svc_find(m)) != NULL) {
			if (svc_update(v, c, m, &e) < 0)
				log_write(NULL, SVC, LOG_LVL_ERROR, "%s, line %d: "
					  "%s: keeping the previous settings",
					  m->file, m->line, errbuf_str(&e));
			v->seen = true;
		} else {
			/* a changed address: the old socket goes first */
			for (struct spawn_svc *o = S.svcs; o; o = o->next)
				if (!o->retired && strcmp(o->name, m->service) == 0)
					svc_retire(o);
			v = svc_new(c, m, queue_dir, &e);
			if (v == NULL) {
				if (startup) {
					errbuf_set(err, "%s, line %d: %s", m->file,
						   m->line, errbuf_str(&e));
					return -1;
				}
				log_write(NULL, SVC, LOG_LVL_ERROR, "reload: %s, "
					  "line %d: %s", m->file, m->line,
					  errbuf_str(&e));
				continue;
			}
			v->seen = true;
			v->next = S.svcs;
			S.svcs = v;
			log_write(NULL, SVC, LOG_LVL_INFO, "service %s (%s%s%s) "
				  "runs %s, maxproc %d, time limit %lds",
				  v->name, v->path ? v->path : v->host,
				  v->path ? "" : ":", v->path ? "" : v->port,
				  v->argv[0], v->maxproc, v->time_limit);
		}
		if (access(m->argv.v[0], X_OK) < 0)
			log_write(NULL, SVC, LOG_LVL_WARNING, "%s, line %d: "
				  "service %s: command %s: %s (each connection "
				  "will fail)", m->file, m->line, m->service,
				  m->argv.v[0], strerror(errno));
		if (m->user != NULL && mail_owner != NULL &&
		    strcmp(m->user, mail_owner) != 0)
			log_write(NULL, SVC, LOG_LVL_WARNING, "%s, line %d: "
				  "service %s: user=%s is not honoured: the "
				  "command runs as mail_owner %s (facteurd has "
				  "given up root)", m->file, m->line,
				  m->service, m->user, mail_owner);
	}
	/* gone from master.cf: stop listening; children finish */
	for (struct spawn_svc *v = S.svcs, *next; v; v = next) {
		next = v->next;
		if (v->seen || v->retired)
			continue;
		svc_retire(v);
		if (v->nchild == 0) {
			svc_unlink(v);
			svc_free(v);
		}
	}
	return 0;
}

void
spawn_shutdown(void)
{
	for (struct spawn_svc *v = S.svcs; v; v = v->next)
		if (!v->retired)
			svc_retire(v);
	for (struct spawn_child *k = S.kids; k; k = k->next)
		(void)kill(k->pid, SIGTERM);
	if (S.sigchld != NULL) {
		event_free(S.sigchld);
		S.sigchld = NULL;
	}
}

void
spawn_counts(unsigned *services_r, unsigned *children_r)
{
	unsigned ns = 0, nc = 0;

	for (struct spawn_svc *v = S.svcs; v; v = v->next)
		if (!v->retired)
			ns++;
	for (struct spawn_child *k = S.kids; k; k = k->next)
		nc++;
	*services_r = ns;
	*children_r = nc;
}
