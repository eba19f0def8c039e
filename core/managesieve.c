/*
 * managesieve.c - the ManageSieve server (RFC 5804): listener, session
 * state machine (greeting, STARTTLS, AUTHENTICATE PLAIN/LOGIN, script
 * commands) and the script store in the user's home, Dovecot's layout.
 * Every command that touches the passdb, the mailbox map, the Sieve
 * compiler or the disk runs as one job on the worker pool: the job builds
 * the whole reply, the done callback sends it and resumes the session.
 * Must not: block the event loop, follow a client-supplied path (script
 * names never contain "/" and never start with "."), or buffer more than
 * one command (MSV_LINE_MAX + MSV_MAX_SCRIPT_SIZE) per session.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>

#include "auth/passdb.h"
#include "auth/pwscheme.h"
#include "auth/sasl.h"
#include "auth/sasl_exchange.h"
#include "auth/throttle.h"
#include "core/lib/buf.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/netlist.h"
#include "core/managesieve.h"
#include "core/managesieve_cmd.h"
#include "core/resolve.h"
#include "core/tls.h"
#include "core/worker.h"
#include "delivery/deliver.h"
#include "delivery/sieve/sieve.h"

#define SVC "managesieved"
#define MSV_LIST_MAX 1000	/* directory entries looked at */

struct managesieve {
	struct smtpd_server    *srv;
	struct config          *cfg;
	struct settings         s;
	char                   *service;
	struct resolve_ctx     *resolve;
	struct passdb          *passdb;
	struct tls_server      *tls;
	bool                    auth_plain, auth_tls;
	unsigned                sasl_mechs, sasl_mechs_tls;	/* offered */
	unsigned                nsessions, max_sessions;
	int                    *fds;
	size_t                  nfds;
	struct evconnlistener **evl;
	const struct master_service *svc;	/* for managesieve_bind only */
	bool                    retired;	/* reload: freed with its last
						   session */
};

struct msv_session {
	struct managesieve *m;
	int                 fd;
	struct bufferevent *bev;
	SSL                *ssl;
	char                addr[INET6_ADDRSTRLEN];
	bool                busy, closing, gone, tls_pending, tls_up;
	bool                in_process;	/* process() decides on freeing */
	size_t              need;		/* input needed before parsing */
	unsigned            errors;
	char               *user, *home;	/* once authenticated */
	enum sasl_mech      mech;
	struct sasl_exchange *auth_ex;		/* AUTHENTICATE in progress */
	char               *auth_final;		/* SASL data for the OK */
	struct event       *delay;		/* throttled failure reply */
	char               *delayed_reply;
};

static void process(struct msv_session *s);
static void auth_act(struct msv_session *s, enum sasl_action a);

/* ---- replies ---- */

static void
send_buf(struct msv_session *s, const struct buf *b)
{
	if (s->bev != NULL && b->len > 0)
		evbuffer_add(bufferevent_get_output(s->bev), b->data, b->len);
}

/* OK/NO/BYE with an optional response code and a human-readable text. */
static void
reply(struct msv_session *s, const char *kind, const char *code,
      const char *text)
{
	struct buf b;

	buf_init(&b, 0);
	buf_puts(&b, kind);
	if (code != NULL)
		buf_printf(&b, " (%s)", code);
	if (text != NULL) {
		buf_putc(&b, ' ');
		msv_quote(&b, text, strlen(text));
	}
	buf_puts(&b, "\r\n");
	send_buf(s, &b);
	buf_free(&b);
}

static void
capabilities(struct msv_session *s, struct buf *b)
{
	unsigned sasl = s->ssl ? s->m->sasl_mechs_tls : s->m->sasl_mechs;

	buf_puts(b, "\"IMPLEMENTATION\" \"facteur\"\r\n");
	if (s->user == NULL) {
		buf_puts(b, "\"SASL\" \"");
		sasl_mechs_format(sasl, b);
		buf_puts(b, "\"\r\n");
	}
	buf_printf(b, "\"SIEVE\" \"%s\"\r\n", sieve_extensions());
	if (s->m->tls != NULL && s->ssl == NULL && s->user == NULL)
		buf_puts(b, "\"STARTTLS\"\r\n");
	buf_printf(b, "\"MAXREDIRECTS\" \"%d\"\r\n", SIEVE_MAX_REDIRECTS);
	if (s->user != NULL) {
		buf_puts(b, "\"OWNER\" ");
		msv_quote(b, s->user, strlen(s->user));
		buf_puts(b, "\r\n");
	}
	buf_puts(b, "\"VERSION\" \"1.0\"\r\n");
}

/* ---- closing ---- */

static void
session_free(struct msv_session *s)
{
	s->m->nsessions--;
	s->m->srv->nsessions--;
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	if (s->ssl != NULL)
		SSL_free(s->ssl);
	if (s->fd >= 0)
		close(s->fd);
	if (s->delay != NULL)
		event_free(s->delay);
	log_write(s->m->s.syslog_name, SVC, LOG_LVL_INFO,
		  "disconnect from [%s]%s%s", s->addr, s->user ? " user=" : "",
		  s->user ? s->user : "");
	free(s->delayed_reply);
	free(s->user);
	free(s->home);
	sasl_exchange_free(&s->auth_ex);
	free(s->auth_final);
	{
		struct managesieve *m = s->m;

		free(s);
		if (m->retired && m->nsessions == 0)
			managesieve_free(&m);	/* replaced by a reload */
	}
}

/* Frees now, or when the reply has left, or when the worker is done. */
static void
session_close(struct msv_session *s)
{
	s->closing = true;
	if (s->busy || s->in_process)
		return;
	if (s->bev != NULL && !s->gone &&
	    evbuffer_get_length(bufferevent_get_output(s->bev)) > 0) {
		bufferevent_disable(s->bev, EV_READ);
		return;		/* on_write finishes */
	}
	session_free(s);
}

static void
bye(struct msv_session *s, const char *text)
{
	reply(s, "BYE", NULL, text);
	session_close(s);
}

/* ---- the script store (worker threads only) ---- */

static char *
script_path(const char *home, const char *name)
{
	return xasprintf("%s/sieve/%s.sieve", home, name);
}

/* The active script's name (malloc'ed) or NULL. *regular: the link is a
 * regular file (a script not managed by us). */
static char *
active_name(const char *home, bool *regular)
{
	char *lnk = xasprintf("%s/.dovecot.sieve", home), target[4096], *base;
	struct stat st;
	ssize_t n;
	size_t bl;

	*regular = false;
	if (lstat(lnk, &st) < 0) {
		free(lnk);
		return NULL;
	}
	if (S_ISREG(st.st_mode))
		*regular = true;
	n = readlink(lnk, target, sizeof(target) - 1);
	free(lnk);
	if (n <= 0)
		return NULL;
	target[n] = '\0';
	base = strrchr(target, '/');
	if (base == NULL)
		return NULL;
	*base++ = '\0';
	bl = strlen(base);
	/* "sieve/NAME.sieve" or "<home>/sieve/NAME.sieve" */
	if (bl <= 6 || strcmp(base + bl - 6, ".sieve") != 0 ||
	    (strcmp(target, "sieve") != 0 &&
	     (strlen(target) < 6 || strcmp(target + strlen(target) - 6,
					   "/sieve") != 0)))
		return NULL;
	base[bl - 6] = '\0';
	return msv_name_ok(base, bl - 6) ? xstrdup(base) : NULL;
}

/* Script names in <home>/sieve, at most MSV_LIST_MAX looked at. */
static int
list_scripts(const char *home, struct strlist *out)
{
	char *dir = xasprintf("%s/sieve", home);
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned seen = 0;

	free(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d)) != NULL && seen++ < MSV_LIST_MAX) {
		size_t n = strlen(e->d_name);

		if (n > 6 && strcmp(e->d_name + n - 6, ".sieve") == 0 &&
		    msv_name_ok(e->d_name, n - 6)) {
			char *name = xstrndup(e->d_name, n - 6);
			strlist_add(out, name);
			free(name);
		}
	}
	closedir(d);
	return 0;
}

static bool
script_exists(const char *home, const char *name)
{
	char *p = script_path(home, name);
	struct stat st;
	bool r = stat(p, &st) == 0 && S_ISREG(st.st_mode);

	free(p);
	return r;
}

/* mkdir -p for home and home/sieve (mode 0700 for what it creates). */
static int
make_dirs(const char *home)
{
	char *p = xasprintf("%s/sieve", home);
	int rc = 0;

	for (char *c = p + 1; *c && rc == 0; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			rc = -1;
		*c = '/';
	}
	if (rc == 0 && mkdir(p, 0700) < 0 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

static void
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* Writes a script durably: temporary file, fsync, rename. */
static int
store_script(const char *home, const char *name, const char *text,
	     size_t len, struct errbuf *err)
{
	char *dir = xasprintf("%s/sieve", home), *tmp, *path;
	int fd, rc = -1;

	if (make_dirs(home) < 0) {
		errbuf_set(err, "mkdir %s: %s", dir, strerror(errno));
		free(dir);
		return -1;
	}
	tmp = xasprintf("%s/.putscript.XXXXXX", dir);
	path = script_path(home, name);
	fd = mkstemp(tmp);
	if (fd < 0) {
		errbuf_set(err, "create %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0600) < 0 ||
	    (len > 0 && write(fd, text, len) != (ssize_t)len) ||
	    fsync(fd) < 0) {
		errbuf_set(err, "write %s: %s", tmp, strerror(errno));
		close(fd);
		(void)unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		errbuf_set(err, "rename %s: %s", path, strerror(errno));
		(void)unlink(tmp);
		goto out;
	}
	fsync_dir(dir);
	rc = 0;
out:
	free(tmp);
	free(path);
	free(dir);
	return rc;
}

/* Points <home>/.dovecot.sieve at sieve/NAME.sieve (NULL: removes it). */
static int
link_active(const char *home, const char *name, struct errbuf *err)
{
	char *lnk = xasprintf("%s/.dovecot.sieve", home), *tmp = NULL;
	char *target = NULL;
	struct stat st;
	int rc = -1;

	if (lstat(lnk, &st) == 0 && S_ISREG(st.st_mode)) {
		/* A script written by hand: kept as "dovecot.orig", as
		 * Pigeonhole does, so it is not lost. */
		char *orig = script_path(home, "dovecot.orig");

		if (make_dirs(home) < 0 || link(lnk, orig) < 0 ||
		    unlink(lnk) < 0) {
			errbuf_set(err, "cannot move %s to %s: %s", lnk, orig,
				   strerror(errno));
			free(orig);
			goto out;
		}
		free(orig);
	}
	if (name == NULL) {
		if (unlink(lnk) < 0 && errno != ENOENT) {
			errbuf_set(err, "unlink %s: %s", lnk, strerror(errno));
			goto out;
		}
		rc = 0;
		goto out;
	}
	target = xasprintf("sieve/%s.sieve", name);
	tmp = xasprintf("%s/.dovecot.sieve.%ld.tmp", home, (long)getpid());
	(void)unlink(tmp);
	if (symlink(target, tmp) < 0 || rename(tmp, lnk) < 0) {
		errbuf_set(err, "lnk %s: %s", lnk, strerror(errno));
		(void)unlink(tmp);
		goto out;
	}
	fsync_dir(home);
	rc = 0;
out:
	free(lnk);
	free(tmp);
	free(target);
	return rc;
}

enum op {
	OP_AUTH, OP_LOGIN, OP_PUT, OP_CHECK, OP_LIST, OP_SETACTIVE, OP_GET, OP_DELETE,
	OP_RENAME, OP_HAVESPACE,
};

struct job {
	struct msv_session *s;
	enum op             op;
	char               *home, *a, *b;
	size_t              alen, blen;
	long long           num;
	struct buf          out;	/* the reply, complete */
	/* OP_AUTH: the exchange's passdb work (owned by the session) */
	struct sasl_exchange *ex;
	/* OP_LOGIN: the authenticated user's Sieve home */
	struct resolve_ctx *resolve;
	char               *user;
	int                 result;	/* 1 ok, 0 failed, -1 temporary */
	char               *home_r;
	struct errbuf       err;
};

static void
job_reply(struct job *j, const char *kind, const char *code, const char *text)
{
	buf_puts(&j->out, kind);
	if (code != NULL)
		buf_printf(&j->out, " (%s)", code);
	if (text != NULL) {
		buf_putc(&j->out, ' ');
		msv_quote(&j->out, text, strlen(text));
	}
	buf_puts(&j->out, "\r\n");
}

/* The authenticated user's home (where the Sieve scripts live). */
static void
work_login(struct job *j)
{
	char *reason = NULL;
	struct resolve_dest d;

	j->result = 1;
	/* User names are case-insensitive: one spelling for the session. */
	for (char *c = j->user; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	memset(&d, 0, sizeof(d));
	switch (resolve_mailbox(j->resolve, j->user, &d, &reason)) {
	case RESOLVE_OK:
		if (d.maildir != NULL) {
			j->home_r = deliver_sieve_home(d.maildir);
		} else {
			j->result = 0;
			errbuf_set(&j->err, "%s has no maildir", j->user);
		}
		break;
	case RESOLVE_UNKNOWN:
		j->result = 0;
		errbuf_set(&j->err, "%s has no mailbox here", j->user);
		break;
	default:
		j->result = -1;
		errbuf_set(&j->err, "mailbox lookup for %s: %s", j->user,
			   reason ? reason : "failed");
		break;
	}
	resolve_dest_free(&d);
	free(reason);
}

static void
work_put(struct job *j, bool store)
{
	struct errbuf e;
	struct sieve_script *sc;
	struct strlist names;

	errbuf_clear(&e);
	sc = sieve_compile(j->b, j->blen, store ? j->a : "script", &e);
	if (sc == NULL) {
		job_reply(j, "NO", NULL, errbuf_str(&e));
		return;
	}
	sieve_script_free(&sc);
	if (!store) {
		job_reply(j, "OK", NULL, "Script is valid");
		return;
	}
	strlist_init(&names);
	if (list_scripts(j->home, &names) < 0) {
		job_reply(j, "NO", "TRYLATER", "Cannot read the script list");
	} else if (!strlist_contains(&names, j->a) &&
		   names.n >= MSV_MAX_SCRIPTS) {
		job_reply(j, "NO", "QUOTA/MAXSCRIPTS", "Too many scripts");
	} else if (store_script(j->home, j->a, j->b, j->blen, &j->err) < 0) {
		job_reply(j, "NO", "TRYLATER", "Cannot store the script");
	} else {
		job_reply(j, "OK", NULL, "Script stored");
	}
	strlist_free(&names);
}

static void
work_list(struct job *j)
{
	struct strlist names;
	bool regular;
	char *act = active_name(j->home, &regular);

	strlist_init(&names);
	if (list_scripts(j->home, &names) < 0) {
		job_reply(j, "NO", "TRYLATER", "Cannot read the script list");
	} else {
		for (size_t i = 0; i < names.n; i++) {
			msv_quote(&j->out, names.v[i], strlen(names.v[i]));
			if (act != NULL && strcmp(act, names.v[i]) == 0)
				buf_puts(&j->out, " ACTIVE");
			buf_puts(&j->out, "\r\n");
		}
		job_reply(j, "OK", NULL, "Listscripts completed");
	}
	strlist_free(&names);
	free(act);
}

static void
work_get(struct job *j)
{
	char *p = script_path(j->home, j->a);
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;

	free(p);
	if (fd < 0) {
		if (errno == ENOENT)
			job_reply(j, "NO", "NONEXISTENT", "Script does not exist");
		else
			job_reply(j, "NO", "TRYLATER", "Cannot read the script");
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > 4 * MSV_MAX_SCRIPT_SIZE) {
		job_reply(j, "NO", NULL, "Cannot read the script");
	} else {
		size_t n = (size_t)st.st_size, got = 0;
		char *text = xmalloc(n + 1);
		ssize_t r = 1;

		while (got < n && (r = read(fd, text + got, n - got)) > 0)
			got += (size_t)r;
		if (r < 0) {
			job_reply(j, "NO", "TRYLATER", "Cannot read the script");
		} else {
			buf_printf(&j->out, "{%zu}\r\n", got);
			buf_append(&j->out, text, got);
			buf_puts(&j->out, "\r\n");
			job_reply(j, "OK", NULL, "Getscript completed");
		}
		free(text);
	}
	close(fd);
}

static void
work_setactive(struct job *j)
{
	if (j->alen > 0 && !script_exists(j->home, j->a)) {
		job_reply(j, "NO", "NONEXISTENT", "Script does not exist");
		return;
	}
	if (link_active(j->home, j->alen > 0 ? j->a : NULL, &j->err) < 0)
		job_reply(j, "NO", "TRYLATER", "Cannot activate the script");
	else
		job_reply(j, "OK", NULL, j->alen > 0 ? "Script activated"
						     : "No script is active");
}

static void
work_delete(struct job *j)
{
	bool regular;
	char *act = active_name(j->home, &regular), *p;

	if (act != NULL && strcmp(act, j->a) == 0) {
		job_reply(j, "NO", "ACTIVE", "Cannot delete the active script");
		free(act);
		return;
	}
	free(act);
	p = script_path(j->home, j->a);
	if (unlink(p) < 0) {
		if (errno == ENOENT)
			job_reply(j, "NO", "NONEXISTENT", "Script does not exist");
		else
			job_reply(j, "NO", "TRYLATER", "Cannot delete the script");
	} else {
		job_reply(j, "OK", NULL, "Script deleted");
	}
	free(p);
}

static void
work_rename(struct job *j)
{
	bool regular;
	char *act = active_name(j->home, &regular);
	char *from = script_path(j->home, j->a), *to = script_path(j->home, j->b);

	/* link() refuses an existing target: no script is overwritten. */
	if (!script_exists(j->home, j->a)) {
		job_reply(j, "NO", "NONEXISTENT", "Script does not exist");
	} else if (link(from, to) < 0) {
		if (errno == EEXIST)
			job_reply(j, "NO", "ALREADYEXISTS",
				  "A script with that name already exists");
		else
			job_reply(j, "NO", "TRYLATER", "Cannot rename the script");
	} else if (act != NULL && strcmp(act, j->a) == 0 &&
		   link_active(j->home, j->b, &j->err) < 0) {
		(void)unlink(to);
		job_reply(j, "NO", "TRYLATER", "Cannot rename the script");
	} else {
		(void)unlink(from);
		job_reply(j, "OK", NULL, "Script renamed");
	}
	free(act);
	free(from);
	free(to);
}

static void
work_havespace(struct job *j)
{
	struct strlist names;

	strlist_init(&names);
	if (j->num > MSV_MAX_SCRIPT_SIZE)
		job_reply(j, "NO", "QUOTA/MAXSIZE", "Script is too large");
	else if (list_scripts(j->home, &names) < 0)
		job_reply(j, "NO", "TRYLATER", "Cannot read the script list");
	else if (!strlist_contains(&names, j->a) && names.n >= MSV_MAX_SCRIPTS)
		job_reply(j, "NO", "QUOTA/MAXSCRIPTS", "Too many scripts");
	else
		job_reply(j, "OK", NULL, "Putscript would succeed");
	strlist_free(&names);
}

static void
job_work(void *arg)
{
	struct job *j = arg;

	errbuf_clear(&j->err);
	switch (j->op) {
	case OP_AUTH:		sasl_exchange_work(j->ex); break;
	case OP_LOGIN:		work_login(j); break;
	case OP_PUT:		work_put(j, true); break;
	case OP_CHECK:		work_put(j, false); break;
	case OP_LIST:		work_list(j); break;
	case OP_SETACTIVE:	work_setactive(j); break;
	case OP_GET:		work_get(j); break;
	case OP_DELETE:		work_delete(j); break;
	case OP_RENAME:		work_rename(j); break;
	case OP_HAVESPACE:	work_havespace(j); break;
	}
}

static void
job_free(struct job *j)
{
	free(j->user);
	free(j->home);
	free(j->home_r);
	free(j->a);
	free(j->b);
	buf_free(&j->out);
	free(j);
}

static void
resume(struct msv_session *s)
{
	s->busy = false;
	if (s->closing) {
		session_close(s);
		return;
	}
	bufferevent_enable(s->bev, EV_READ);
	process(s);
}

static void
delayed_reply(evutil_socket_t fd, short what, void *arg)
{
	struct msv_session *s = arg;

	if (s->delayed_reply != NULL) {
		evbuffer_add(bufferevent_get_output(s->bev), s->delayed_reply,
			     strlen(s->delayed_reply));
		xfree(&s->delayed_reply);
	}
	resume(s);
}

static void
auth_result(struct msv_session *s, int result, const char *user,
	    const char *home, const char *why)
{
	const char *mech = sasl_mech_name(s->mech);
	unsigned delay;

	sasl_exchange_free(&s->auth_ex);
	if (result == 1) {
		char *code = s->auth_final ? xasprintf("SASL \"%s\"",
						       s->auth_final) : NULL;

		s->user = xstrdup(user);
		s->home = xstrdup(home);
		log_write(s->m->s.syslog_name, SVC, LOG_LVL_INFO,
			  "[%s]: login: user=%s, method=%s", s->addr, user, mech);
		reply(s, "OK", code, "Logged in");
		free(code);
		xfree(&s->auth_final);
		return;
	}
	xfree(&s->auth_final);
	s->errors++;
	if (result < 0) {
		log_write(s->m->s.syslog_name, SVC, LOG_LVL_WARNING,
			  "unknown[%s]: SASL %s authentication temporarily "
			  "failed: %s", s->addr, mech, why);
		reply(s, "NO", "TRYLATER", "Temporary authentication failure");
		return;
	}
	log_write(s->m->s.syslog_name, SVC, LOG_LVL_WARNING,
		  "unknown[%s]: SASL %s authentication failed: %s", s->addr,
		  mech, s->mech == SASL_MECH_LOGIN ? "UGFzc3dvcmQ6" : "");
	if (why != NULL && *why)
		log_write(s->m->s.syslog_name, SVC, LOG_LVL_INFO,
			  "unknown[%s]: SASL %s: %s", s->addr, mech, why);
	delay = throttle_auth_fail(s->addr, time(NULL));
	if (delay > 0) {
		struct timeval tv = { (time_t)delay, 0 };

		free(s->delayed_reply);
		s->delayed_reply = xstrdup("NO \"Authentication failed\"\r\n");
		s->busy = true;
		bufferevent_disable(s->bev, EV_READ);
		if (s->delay == NULL)
			s->delay = evtimer_new(s->m->srv->base, delayed_reply, s);
		evtimer_add(s->delay, &tv);
		return;
	}
	reply(s, "NO", NULL, "Authentication failed");
}

static void
job_done(void *arg)
{
	struct job *j = arg;
	struct msv_session *s = j->s;

	if (s->gone) {
		s->busy = false;
		session_free(s);
		job_free(j);
		return;
	}
	if (j->op == OP_AUTH) {
		s->busy = false;
		auth_act(s, sasl_exchange_resume(s->auth_ex));
		if (s->busy) {		/* a login job, or a throttled failure */
			job_free(j);
			return;
		}
	} else if (j->op == OP_LOGIN) {
		s->busy = false;
		auth_result(s, j->result, j->user, j->home_r, errbuf_str(&j->err));
		if (s->busy) {		/* a throttled failure */
			job_free(j);
			return;
		}
	} else {
		if (errbuf_str(&j->err)[0] != '\0')
			log_write(s->m->s.syslog_name, SVC, LOG_LVL_WARNING,
				  "[%s]: user=%s: %s", s->addr, s->user,
				  errbuf_str(&j->err));
		send_buf(s, &j->out);
	}
	job_free(j);
	resume(s);
}

static struct job *
job_new(struct msv_session *s, enum op op)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->s = s;
	j->op = op;
	buf_init(&j->out, 0);
	if (s->home != NULL)
		j->home = xstrdup(s->home);
	return j;
}

static void
job_submit(struct msv_session *s, struct job *j)
{
	s->busy = true;
	bufferevent_disable(s->bev, EV_READ);
	worker_submit(s->m->srv->pool, job_work, job_done, j);
}

/* ---- AUTHENTICATE; the exchange itself is auth/sasl_exchange.c ---- */

/* Does what the exchange asks: a challenge string, a worker job, the end. */
static void
auth_act(struct msv_session *s, enum sasl_action a)
{
	struct sasl_exchange *ex = s->auth_ex;
	struct buf b;
	size_t n;
	const char *out;
	struct job *j;

	switch (a) {
	case SASL_CHALLENGE:
		out = sasl_exchange_out(ex, &n);
		buf_init(&b, 0);
		buf_putc(&b, '"');
		sasl_encode64(out, n, &b);
		buf_puts(&b, "\"\r\n");
		send_buf(s, &b);
		buf_free(&b);
		return;
	case SASL_WORK:
		j = job_new(s, OP_AUTH);
		j->ex = ex;
		job_submit(s, j);
		return;
	case SASL_OK:
		/* SCRAM's server-final message goes in OK (SASL "...") */
		out = sasl_exchange_out(ex, &n);
		xfree(&s->auth_final);
		if (n > 0) {
			buf_init(&b, 0);
			sasl_encode64(out, n, &b);
			s->auth_final = buf_steal(&b);
		}
		j = job_new(s, OP_LOGIN);
		j->resolve = s->m->resolve;
		j->user = xstrdup(sasl_exchange_user(ex));
		job_submit(s, j);
		return;
	default: {
		/* auth_result frees the exchange: keep the reason. */
		char *why = xstrdup(sasl_exchange_why(ex));

		auth_result(s, a == SASL_FAIL ? 0 : -1, NULL, NULL, why);
		free(why);
		return;
	}
	}
}

/* An exchange ended by the client or by a bad message. */
static void
auth_abort(struct msv_session *s, const char *text)
{
	sasl_exchange_free(&s->auth_ex);
	s->errors++;
	reply(s, "NO", NULL, text);
}

/* A base64 string from the client; "*" aborts. */
static void
auth_message(struct msv_session *s, const struct msv_tok *t)
{
	struct buf msg;

	if (t->len == 1 && t->s[0] == '*') {
		auth_abort(s, "Authentication aborted");
		return;
	}
	buf_init(&msg, SASL_RESPONSE_MAX);
	/* RFC 5804 2.1: an empty string is an empty response. */
	if (t->len > 0 && sasl_decode64(t->s, t->len, &msg) < 0)
		auth_abort(s, "Cannot decode the response");
	else
		auth_act(s, sasl_exchange_step(s->auth_ex, msg.data ? msg.data
					       : "", msg.len));
	if (msg.data)
		sodium_memzero(msg.data, msg.cap);
	buf_free(&msg);
}

static void
do_authenticate(struct msv_session *s, const struct msv_cmd *c)
{
	unsigned offered = s->ssl ? s->m->sasl_mechs_tls : s->m->sasl_mechs;

	if (s->user != NULL) {
		reply(s, "NO", NULL, "Already authenticated");
		return;
	}
	if (c->n < 2 || c->n > 3 || c->v[1].atom) {
		reply(s, "NO", NULL, "Syntax: AUTHENTICATE \"mechanism\" "
		      "[\"initial response\"]");
		return;
	}
	s->mech = sasl_mech_find(c->v[1].s, c->v[1].len);
	if (offered == 0 && s->ssl == NULL && s->m->s.smtpd_tls_auth_only) {
		reply(s, "NO", "ENCRYPT-NEEDED", "Use STARTTLS first");
		return;
	}
	if (s->mech == SASL_MECH_NONE || !(offered & SASL_MECH_BIT(s->mech))) {
		reply(s, "NO", NULL, "Unsupported authentication mechanism");
		return;
	}
	sasl_exchange_free(&s->auth_ex);
	s->auth_ex = sasl_exchange_new(s->mech, s->m->passdb,
				       s->m->s.myhostname,
				       s->m->s.smtpd_sasl_local_domain,
				       SASL_EX_FINAL_IN_OK);
	if (c->n == 3) {
		auth_message(s, &c->v[2]);
		return;
	}
	auth_act(s, sasl_exchange_start(s->auth_ex));
}

/* ---- commands ---- */

static bool
name_arg(struct msv_session *s, const struct msv_tok *t, bool empty_ok)
{
	if (t->atom) {
		reply(s, "NO", NULL, "Script name must be a string");
		return false;
	}
	if ((t->len == 0 && empty_ok) || msv_name_ok(t->s, t->len))
		return true;
	reply(s, "NO", NULL, "Invalid script name");
	return false;
}

static void
do_starttls(struct msv_session *s, const struct msv_cmd *c)
{
	if (s->m->tls == NULL || s->ssl != NULL || s->user != NULL || c->n != 1) {
		reply(s, "NO", NULL, s->m->tls == NULL ? "TLS is not available"
		      : s->ssl ? "TLS is already active"
		      : s->user ? "Already authenticated"
		      : "Syntax: STARTTLS");
		return;
	}
	reply(s, "OK", NULL, "Begin TLS negotiation now");
	s->tls_pending = true;
	s->busy = true;
	bufferevent_disable(s->bev, EV_READ);
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static void
set_bev(struct msv_session *s)
{
	struct timeval tv = { (time_t)s->m->s.smtpd_timeout, 0 };

	bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0,
				 MSV_LINE_MAX + MSV_MAX_SCRIPT_SIZE + 64);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/* After the OK has left: input pipelined in plaintext is dropped. */
static void
starttls_switch(struct msv_session *s)
{
	s->tls_pending = false;
	bufferevent_free(s->bev);
	s->bev = NULL;
	s->need = 0;
	if ((s->ssl = tls_server_ssl(s->m->tls)) == NULL ||
	    (s->bev = bufferevent_openssl_socket_new(s->m->srv->base, s->fd,
						     s->ssl,
						     BUFFEREVENT_SSL_ACCEPTING,
						     0)) == NULL) {
		char e[256];

		log_write(s->m->s.syslog_name, SVC, LOG_LVL_WARNING,
			  "cannot start TLS for [%s]: %s", s->addr,
			  tls_error_string(e, sizeof(e)));
		s->busy = false;
		s->gone = true;
		session_free(s);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	set_bev(s);
	/* RFC 5804 2.2: the capabilities again, inside TLS. */
	{
		struct buf b;

		buf_init(&b, 0);
		capabilities(s, &b);
		buf_puts(&b, "OK \"TLS negotiation successful\"\r\n");
		send_buf(s, &b);
		buf_free(&b);
	}
	s->busy = false;
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* Takes ownership of the token strings it keeps. */
static void
script_cmd(struct msv_session *s, struct msv_cmd *c, enum op op,
	   size_t nargs)
{
	struct job *j;

	if (c->n != nargs + 1) {
		reply(s, "NO", NULL, "Wrong number of arguments");
		return;
	}
	switch (op) {
	case OP_PUT:
		if (!name_arg(s, &c->v[1], false))
			return;
		/* fall through */
	case OP_CHECK:
		if (c->v[nargs].atom) {
			reply(s, "NO", NULL, "The script must be a string");
			return;
		}
		if (c->v[nargs].len > MSV_MAX_SCRIPT_SIZE) {
			reply(s, "NO", "QUOTA/MAXSIZE", "Script is too large");
			return;
		}
		break;
	case OP_SETACTIVE:
		if (!name_arg(s, &c->v[1], true))
			return;
		break;
	case OP_GET:
	case OP_DELETE:
		if (!name_arg(s, &c->v[1], false))
			return;
		break;
	case OP_RENAME:
		if (!name_arg(s, &c->v[1], false) ||
		    !name_arg(s, &c->v[2], false))
			return;
		break;
	case OP_HAVESPACE: {
		char *end;

		if (!name_arg(s, &c->v[1], false))
			return;
		errno = 0;
		if (!c->v[2].atom || c->v[2].len == 0 ||
		    c->v[2].s[0] < '0' || c->v[2].s[0] > '9' ||
		    (strtoll(c->v[2].s, &end, 10), errno != 0) || *end) {
			reply(s, "NO", NULL, "Syntax: HAVESPACE name size");
			return;
		}
		break;
	}
	default:
		break;
	}
	j = job_new(s, op);
	if (op == OP_HAVESPACE)
		j->num = strtoll(c->v[2].s, NULL, 10);
	if (op == OP_CHECK) {
		j->b = c->v[1].s;
		j->blen = c->v[1].len;
		c->v[1].s = NULL;
	} else if (nargs >= 1) {
		j->a = c->v[1].s;
		j->alen = c->v[1].len;
		c->v[1].s = NULL;
		if (nargs >= 2) {
			j->b = c->v[2].s;
			j->blen = c->v[2].len;
			c->v[2].s = NULL;
		}
	}
	job_submit(s, j);
}

static void
command(struct msv_session *s, struct msv_cmd *c)
{
	static const struct { const char *name; enum op op; size_t nargs; }
	script_cmds[] = {
		{ "PUTSCRIPT", OP_PUT, 2 }, { "CHECKSCRIPT", OP_CHECK, 1 },
		{ "LISTSCRIPTS", OP_LIST, 0 }, { "SETACTIVE", OP_SETACTIVE, 1 },
		{ "GETSCRIPT", OP_GET, 1 }, { "DELETESCRIPT", OP_DELETE, 1 },
		{ "RENAMESCRIPT", OP_RENAME, 2 },
		{ "HAVESPACE", OP_HAVESPACE, 2 },
	};
	const char *name = c->v[0].s;

	if (!c->v[0].atom) {
		s->errors++;
		reply(s, "NO", NULL, "Command name expected");
		return;
	}
	if (strcasecmp(name, "CAPABILITY") == 0) {
		struct buf b;

		buf_init(&b, 0);
		capabilities(s, &b);
		buf_puts(&b, "OK \"Capability completed\"\r\n");
		send_buf(s, &b);
		buf_free(&b);
		return;
	}
	if (strcasecmp(name, "LOGOUT") == 0) {
		reply(s, "OK", NULL, "Logout completed");
		session_close(s);
		return;
	}
	if (strcasecmp(name, "NOOP") == 0) {
		struct buf b;

		if (c->n > 2 || (c->n == 2 && c->v[1].atom)) {
			reply(s, "NO", NULL, "Syntax: NOOP [\"tag\"]");
			return;
		}
		buf_init(&b, 0);
		buf_puts(&b, "OK");
		if (c->n == 2) {
			buf_puts(&b, " (TAG ");
			msv_quote(&b, c->v[1].s, c->v[1].len);
			buf_putc(&b, ')');
		}
		buf_puts(&b, " \"Done\"\r\n");
		send_buf(s, &b);
		buf_free(&b);
		return;
	}
	if (strcasecmp(name, "STARTTLS") == 0) {
		do_starttls(s, c);
		return;
	}
	if (strcasecmp(name, "AUTHENTICATE") == 0) {
		do_authenticate(s, c);
		return;
	}
	if (strcasecmp(name, "UNAUTHENTICATE") == 0) {
		if (s->user == NULL || c->n != 1) {
			reply(s, "NO", NULL, s->user ? "Syntax: UNAUTHENTICATE"
			      : "Not authenticated");
			return;
		}
		xfree(&s->user);
		xfree(&s->home);
		reply(s, "OK", NULL, "Unauthenticate completed");
		return;
	}
	for (size_t i = 0; i < sizeof(script_cmds) / sizeof(script_cmds[0]);
	     i++) {
		if (strcasecmp(name, script_cmds[i].name) != 0)
			continue;
		if (s->user == NULL) {
			s->errors++;
			reply(s, "NO", NULL, "Authenticate first");
			return;
		}
		script_cmd(s, c, script_cmds[i].op, script_cmds[i].nargs);
		return;
	}
	s->errors++;
	reply(s, "NO", NULL, "Unknown command");
}

/* Parses and runs buffered commands until one makes the session wait. */
static void
process(struct msv_session *s)
{
	s->in_process = true;
	while (!s->busy && !s->closing && s->bev != NULL) {
		struct evbuffer *in = bufferevent_get_input(s->bev);
		size_t len = evbuffer_get_length(in), used = 0;
		struct msv_cmd c;
		const char *why;
		enum msv_parse_rc rc;
		const char *p;

		if (len == 0 || len < s->need)
			break;
		if ((unsigned long long)s->errors >=
		    (unsigned long long)s->m->s.smtpd_hard_error_limit) {
			bye(s, "Too many errors");
			break;
		}
		p = (const char *)evbuffer_pullup(in, -1);
		memset(&c, 0, sizeof(c));
		rc = msv_parse(p, len, MSV_MAX_SCRIPT_SIZE + 64, &c, &used,
			       &s->need, &why);
		if (rc == MSV_MORE)
			break;
		s->need = 0;
		if (rc == MSV_FATAL) {
			log_write(s->m->s.syslog_name, SVC, LOG_LVL_WARNING,
				  "[%s]: %s", s->addr, why);
			bye(s, why);
			break;
		}
		evbuffer_drain(in, used);
		if (rc == MSV_BAD) {
			s->errors++;
			sasl_exchange_free(&s->auth_ex);
			reply(s, "NO", NULL, why);
			continue;
		}
		if (s->auth_ex != NULL) {
			if (c.n != 1) {
				auth_abort(s, "Expected one string");
			} else {
				auth_message(s, &c.v[0]);
			}
			if (c.v[0].s)
				sodium_memzero(c.v[0].s, c.v[0].len);
		} else {
			command(s, &c);
		}
		msv_cmd_free(&c);
	}
	s->in_process = false;
	if (s->closing)
		session_close(s);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct msv_session *s = arg;

	if (evbuffer_get_length(bufferevent_get_input(bev)) >
	    MSV_LINE_MAX + MSV_MAX_SCRIPT_SIZE + 64 + 16 && s->need == 0) {
		bye(s, "Command too long");
		return;
	}
	process(s);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct msv_session *s = arg;

	if (s->tls_pending) {
		starttls_switch(s);
		return;
	}
	if (s->closing && !s->busy)
		session_free(s);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct msv_session *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		s->tls_up = true;
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->busy && !s->tls_pending) {
			bufferevent_enable(bev, EV_READ);
			return;
		}
		log_write(s->m->s.syslog_name, SVC, LOG_LVL_INFO,
			  "timeout from [%s]", s->addr);
		s->gone = true;
	} else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (s->ssl != NULL && !s->tls_up) {
			char e[256];

			log_write(s->m->s.syslog_name, SVC, LOG_LVL_INFO,
				  "SSL_accept error from [%s]: %s", s->addr,
				  tls_error_string(e, sizeof(e)));
		}
		s->gone = true;
	}
	if (s->gone) {
		if (s->busy) {		/* the job's done frees us */
			if (s->delay != NULL && evtimer_pending(s->delay, NULL)) {
				evtimer_del(s->delay);
				s->busy = false;
				session_free(s);
				return;
			}
			bufferevent_disable(bev, EV_READ | EV_WRITE);
			return;
		}
		session_free(s);
	}
}

static void
session_start(struct managesieve *m, int fd, const struct sockaddr *sa)
{
	struct msv_session *s;
	struct buf b;

	if (m->nsessions >= m->max_sessions) {
		static const char busy[] = "BYE \"Too many connections\"\r\n";

		if (write(fd, busy, sizeof(busy) - 1) < 0) {
			/* the client is gone anyway */
		}
		close(fd);
		log_write(m->s.syslog_name, SVC, LOG_LVL_WARNING,
			  "%s: too many sessions (%u): connection refused",
			  m->service, m->nsessions);
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->m = m;
	s->fd = fd;
	m->nsessions++;
	m->srv->nsessions++;
	{
		/* An IPv4-mapped IPv6 peer is shown as IPv4, as Postfix does. */
		struct netlist_addr peer;

		if (netlist_addr_from_sockaddr(sa, &peer) == 0)
			netlist_addr_format(&peer, s->addr, sizeof(s->addr));
	}
	/* The session closes the socket itself: STARTTLS replaces the
	 * bufferevent on the same socket. */
	s->bev = bufferevent_socket_new(m->srv->base, fd, 0);
	if (s->bev == NULL) {
		session_free(s);
		return;
	}
	set_bev(s);
	log_write(m->s.syslog_name, SVC, LOG_LVL_INFO, "connect from [%s]",
		  s->addr);
	buf_init(&b, 0);
	capabilities(s, &b);
	buf_puts(&b, "OK \"facteur ready\"\r\n");
	send_buf(s, &b);
	buf_free(&b);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* ---- the listener ---- */

static void
on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
	  int salen, void *arg)
{
	(void)evl;
	(void)salen;
	session_start(arg, fd, sa);
}


struct managesieve *
managesieve_prepare(struct smtpd_server *srv, const struct config *base_cfg,
		    const struct master_service *svc, struct errbuf *err)
{
	struct managesieve *m = xcalloc(1, sizeof(*m));
	struct errbuf e;

	errbuf_clear(&e);
	m->srv = srv;
	m->service = xstrdup(svc->service);
	m->cfg = config_with_service(base_cfg, svc, err);
	if (m->cfg == NULL || settings_load(&m->s, m->cfg, err) < 0)
		goto fail;
	if (m->s.smtpd_sasl_passdb[0] == '\0') {
		errbuf_set(err, "%s: managesieved needs smtpd_sasl_passdb (for "
			   "example passwd-file:/etc/facteur/users)", m->service);
		goto fail;
	}
	if ((m->passdb = passdb_open(m->s.smtpd_sasl_passdb, &e)) == NULL ||
	    tls_server_new(&m->s, TLS_LEVEL_MAY, &m->tls, &e) < 0 ||
	    (m->resolve = resolve_ctx_new(&m->s, &e)) == NULL) {
		errbuf_set(err, "%s: %s", m->service, errbuf_str(&e));
		goto fail;
	}
	if (sasl_mechs_parse(m->s.smtpd_sasl_mechanisms, &m->sasl_mechs,
			     &e) < 0 ||
	    (m->sasl_mechs_tls = m->sasl_mechs,
	     sasl_mechs_secure("smtpd_sasl_security_options",
			       m->s.smtpd_sasl_security_options,
			       &m->sasl_mechs, &e)) < 0 ||
	    sasl_mechs_secure("smtpd_sasl_tls_security_options",
			      m->s.smtpd_sasl_tls_security_options,
			      &m->sasl_mechs_tls, &e) < 0) {
		errbuf_set(err, "%s: %s", m->service, errbuf_str(&e));
		goto fail;
	}
	if (m->s.smtpd_tls_auth_only)
		m->sasl_mechs = 0;
	if (m->tls == NULL)
		m->sasl_mechs_tls = 0;
	m->auth_plain = m->sasl_mechs != 0;
	m->auth_tls = m->sasl_mechs_tls != 0;
	if (m->tls == NULL)
		log_write(m->s.syslog_name, SVC, LOG_LVL_WARNING,
			  "%s: no smtpd_tls_cert_file: STARTTLS is not offered",
			  m->service);
	m->max_sessions = svc->maxproc > 0 ? (unsigned)svc->maxproc
					   : (unsigned)m->s.default_process_limit;
	m->svc = svc;
	return m;
fail:
	managesieve_free(&m);
	return NULL;
}

int
managesieve_bind(struct managesieve *m, struct errbuf *err)
{
	return listen_bind_service(m->service, m->svc, m->s.inet_interfaces,
				   m->s.inet_protocols, 128, &m->fds, &m->nfds,
				   err);
}

struct managesieve *
managesieve_new(struct smtpd_server *srv, const struct config *base_cfg,
		const struct master_service *svc, struct errbuf *err)
{
	struct managesieve *m = managesieve_prepare(srv, base_cfg, svc, err);

	if (m != NULL && managesieve_bind(m, err) < 0)
		managesieve_free(&m);
	return m;
}

const char *
managesieve_service(const struct managesieve *m)
{
	return m->service;
}

size_t
managesieve_listen_fds(const struct managesieve *m, int *out, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < m->nfds; i++) {
		int fd = m->evl != NULL && m->evl[i] != NULL
			 ? evconnlistener_get_fd(m->evl[i]) : m->fds[i];

		if (fd < 0)
			continue;
		if (k < n)
			out[k] = fd;
		k++;
	}
	return k;
}

unsigned
managesieve_max_sessions(const struct managesieve *m)
{
	return m->max_sessions;
}

void
managesieve_take_sockets(struct managesieve *m, struct managesieve *old)
{
	for (size_t i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	free(m->fds);
	free(m->evl);
	m->fds = old->fds;
	m->evl = old->evl;
	m->nfds = old->nfds;
	old->fds = NULL;
	old->evl = NULL;
	old->nfds = 0;
	for (size_t i = 0; m->evl != NULL && i < m->nfds; i++)
		if (m->evl[i] != NULL)
			evconnlistener_set_cb(m->evl[i], on_accept, m);
}

void
managesieve_retire(struct managesieve **mp)
{
	struct managesieve *m = *mp;

	if (m == NULL)
		return;
	*mp = NULL;
	for (size_t i = 0; i < m->nfds; i++) {
		if (m->evl != NULL && m->evl[i] != NULL)
			evconnlistener_free(m->evl[i]);
		else if (m->fds[i] >= 0)
			close(m->fds[i]);
	}
	free(m->evl);
	free(m->fds);
	m->evl = NULL;
	m->fds = NULL;
	m->nfds = 0;
	m->retired = true;
	if (m->nsessions == 0)
		managesieve_free(&m);
}

int
managesieve_start(struct managesieve *m, struct errbuf *err)
{
	if (m->evl != NULL) {		/* sockets taken over by a reload */
		for (size_t i = 0; i < m->nfds; i++)
			if (m->evl[i] != NULL)
				evconnlistener_enable(m->evl[i]);
		return 0;
	}
	m->evl = xcalloc(m->nfds ? m->nfds : 1, sizeof(*m->evl));
	for (size_t i = 0; i < m->nfds; i++) {
		m->evl[i] = evconnlistener_new(m->srv->base, on_accept, m,
					       LEV_OPT_CLOSE_ON_FREE |
					       LEV_OPT_CLOSE_ON_EXEC, -1,
					       m->fds[i]);
		if (m->evl[i] == NULL) {
			errbuf_set(err, "%s: cannot listen", m->service);
			return -1;
		}
		m->fds[i] = -1;
	}
	return 0;
}

void
managesieve_stop(struct managesieve *m)
{
	for (size_t i = 0; m->evl != NULL && i < m->nfds; i++)
		if (m->evl[i] != NULL)
			evconnlistener_disable(m->evl[i]);
}

unsigned
managesieve_sessions(const struct managesieve *m)
{
	return m->nsessions;
}

void
managesieve_free(struct managesieve **mp)
{
	struct managesieve *m = *mp;

	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nfds; i++) {
		if (m->evl != NULL && m->evl[i] != NULL)
			evconnlistener_free(m->evl[i]);
		else if (m->fds[i] >= 0)
			close(m->fds[i]);
	}
	free(m->evl);
	free(m->fds);
	if (m->resolve)
		resolve_ctx_free(&m->resolve);
	if (m->passdb)
		passdb_free(&m->passdb);
	tls_server_free(&m->tls);
	settings_free(&m->s);
	config_free(&m->cfg);
	free(m->service);
	free(m);
	*mp = NULL;
}
