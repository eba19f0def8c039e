/*
 * pickup.c - facteurd's local submission service (see pickup.h): accepts
 * sendmail's connections on $queue_directory/public/pickup, reads one
 * bounded request, and on a worker: names the user from the peer's uid,
 * qualifies addresses with $myorigin, cleans the message up
 * (pickup_msg.c), applies header/mime/nested/body_checks
 * (cleanup_headers.c), shows it to non_smtpd_milters (milter_sync.c), which
 * may change or refuse it, resolves the recipients, writes the queue file (fsynced)
 * and only then answers "ok ID".
 * Must not: trust a uid or user name the client sends, block the loop,
 * read more than message_size_limit, or answer ok before the fsync.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "core/addr.h"
#include "core/bcc.h"
#include "core/cleanup_headers.h"
#include "core/lib/buf.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/mailq.h"
#include "core/milter_sync.h"
#include "core/params.h"
#include "core/pickup.h"
#include "core/pickup_msg.h"
#include "core/qmgr.h"
#include "core/receive_override.h"
#include "core/queue.h"
#include "core/resolve.h"
#include "core/status.h"
#include "core/rewrite.h"
#include "core/smtpd_cmd.h"
#include "core/worker.h"

#define PICKUP_LINE_MAX   2048	/* one request line */
#define PICKUP_RCPT_MAX   10000	/* recipients on the command line */
#define PICKUP_CONN_MAX   64	/* connections at once */
#define PICKUP_TIMEOUT    60	/* seconds of silence from the client */
#define PICKUP_LIST_MAX   100000	/* entries in a listing */
#define SVC "pickup"

enum conn_state { C_CMD, C_HDR, C_DATA, C_BUSY, C_CLOSING };
enum conn_kind { K_SUBMIT, K_LIST };

struct pickup_conn {
	struct pickup *pk;
	struct bufferevent *bev;
	struct pickup_conn *next, *prev;
	enum conn_state state;
	enum conn_kind kind;
	uid_t   uid;
	bool    dead;		/* client gone while a worker job runs */
	bool    milter_discard, milter_hold;	/* non_smtpd_milters */
	/* the request */
	char   *sender;		/* NULL: the user's own address */
	char   *fullname;
	bool    extract;
	struct strlist rcpts;
	size_t  data_len;
	struct buf data;
	/* the worker's results */
	int     ex;		/* 0 ok, else a sysexits code */
	char   *text;		/* error text, or the listing */
	char    id[QUEUE_ID_SIZE];
	char   *final_sender, *msgid;
	char   *filter;		/* header_checks FILTER (owned) */
	size_t  nrcpt;
};

struct pickup {
	struct event_base *base;
	struct worker_pool *pool;
	struct qmgr *qmgr;
	const struct settings *s;
	struct resolve_ctx *rctx;
	struct bcc_ctx *bcc;		/* always_bcc, *_bcc_maps */
	struct cleanup_checks *checks;	/* header/mime/nested/body_checks */
	struct evconnlistener *lev;
	struct pickup_conn *conns;
	unsigned nconns;
	char   *path;
};

static void
conn_free(struct pickup_conn *c)
{
	struct pickup *pk = c->pk;

	if (c->prev)
		c->prev->next = c->next;
	else
		pk->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pk->nconns--;
	if (c->bev)
		bufferevent_free(c->bev);
	free(c->sender);
	free(c->fullname);
	strlist_free(&c->rcpts);
	buf_free(&c->data);
	free(c->text);
	free(c->final_sender);
	free(c->msgid);
	free(c->filter);
	free(c);
}

/* Sends the last words and closes once they are written. */
static void
conn_finish(struct pickup_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
conn_finish(struct pickup_conn *c, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	c->state = C_CLOSING;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_enable(c->bev, EV_WRITE);
}

static void
conn_error(struct pickup_conn *c, int ex, const char *text)
{
	conn_finish(c, "error %d %s\n", ex, text);
}

/* ---- worker side ---- */

/* "user" -> "user@myorigin", as Postfix's append_at_myorigin. */
static char *
qualify(const struct settings *s, const char *a)
{
	if (*a == '\0' || strchr(a, '@') != NULL)
		return xstrdup(a);
	return xasprintf("%s@%s", a, s->myorigin);
}

static void
set_error(struct pickup_conn *c, int ex, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
set_error(struct pickup_conn *c, int ex, const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b, 1024);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	/* one reply line */
	for (char *p = b.data; p && *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	c->ex = ex;
	free(c->text);
	c->text = buf_steal(&b);
}

/* Adds the destinations of one recipient; false (error set) to refuse. */
static bool
add_rcpt(struct pickup_conn *c, const char *given, struct queue_env *env,
	 size_t *cap)
{
	struct pickup *pk = c->pk;
	char *q = qualify(pk->s, given);
	struct resolve_result res;
	enum resolve_status rs;
	const char *why;
	struct addr a;
	bool ok = false;

	memset(&res, 0, sizeof(res));
	if (addr_parse_mailbox(q, &a, &why) < 0 || a.domain[0] == '\0') {
		set_error(c, EX_DATAERR, "<%.300s>: bad recipient address "
			  "syntax", given);
		free(q);
		return false;
	}
	rs = resolve_rcpt(pk->rctx, &a, &res);
	switch (rs) {
	case RESOLVE_OK:
		for (size_t i = 0; i < res.n; i++) {
			bool dup = false;

			for (size_t k = 0; k < env->nrcpt && !dup; k++)
				dup = strcmp(env->rcpt[k].addr, res.v[i].addr) == 0;
			if (dup)
				continue;
			if (env->nrcpt == *cap) {
				*cap = *cap ? *cap * 2 : 8;
				env->rcpt = xrealloc(env->rcpt,
						     *cap * sizeof(*env->rcpt));
			}
			memset(&env->rcpt[env->nrcpt], 0, sizeof(*env->rcpt));
			env->rcpt[env->nrcpt].orig = xstrdup(q);
			env->rcpt[env->nrcpt].addr = xstrdup(res.v[i].addr);
			env->rcpt[env->nrcpt].status = QUEUE_RCPT_PENDING;
			env->nrcpt++;
		}
		ok = true;
		break;
	case RESOLVE_UNKNOWN:
		set_error(c, EX_NOUSER, "<%.300s>: Recipient address rejected: "
			  "%s", q, res.reason ? res.reason : "User unknown");
		break;
	case RESOLVE_LOOP:
		set_error(c, EX_UNAVAILABLE, "<%.300s>: %s", q,
			  res.reason ? res.reason : "Mail loop");
		break;
	case RESOLVE_TEMPFAIL:
	case RESOLVE_CONFIG:
	default:
		set_error(c, EX_TEMPFAIL, "<%.300s>: Temporary lookup failure%s"
			  "%s", q, res.reason ? ": " : "",
			  res.reason ? res.reason : "");
		break;
	}
	resolve_result_free(&res);
	addr_free(&a);
	free(q);
	return ok;
}

/*
 * always_bcc, sender_bcc_maps, recipient_bcc_maps (bcc.h): more
 * destinations with NOTIFY=NEVER, each final address once. False (error
 * set, EX_TEMPFAIL) when a table cannot answer: the message is refused.
 */
static bool
add_bcc(struct pickup_conn *c, const struct strlist *hdr_rcpts,
	struct queue_env *env, size_t *cap)
{
	struct pickup *pk = c->pk;
	struct bcc_list bl;
	struct strlist origs;
	struct errbuf err;
	int rc;

	if (!bcc_ctx_active(pk->bcc))
		return true;
	strlist_init(&origs);
	for (size_t i = 0; i < c->rcpts.n; i++) {
		char *q = qualify(pk->s, c->rcpts.v[i]);

		strlist_add(&origs, q);
		free(q);
	}
	for (size_t i = 0; i < hdr_rcpts->n && i < PICKUP_RCPT_MAX; i++) {
		char *q = qualify(pk->s, hdr_rcpts->v[i]);

		strlist_add(&origs, q);
		free(q);
	}
	errbuf_clear(&err);
	rc = bcc_expand(pk->bcc, pk->rctx, c->final_sender,
			(const char *const *)origs.v, origs.n, &bl, &err);
	strlist_free(&origs);
	if (rc < 0) {
		set_error(c, EX_TEMPFAIL, "%s", errbuf_str(&err));
		return false;
	}
	for (size_t k = 0; k < bl.n; k++) {
		for (size_t i = 0; i < bl.res[k].n; i++) {
			const char *a = bl.res[k].v[i].addr;
			bool dup = false;

			for (size_t m = 0; m < env->nrcpt && !dup; m++)
				dup = strcmp(env->rcpt[m].addr, a) == 0;
			if (dup)
				continue;
			if (env->nrcpt == *cap) {
				*cap = *cap ? *cap * 2 : 8;
				env->rcpt = xrealloc(env->rcpt,
						     *cap * sizeof(*env->rcpt));
			}
			memset(&env->rcpt[env->nrcpt], 0, sizeof(*env->rcpt));
			env->rcpt[env->nrcpt].orig = xstrdup(bl.orig[k]);
			env->rcpt[env->nrcpt].addr = xstrdup(a);
			env->rcpt[env->nrcpt].notify = SMTPD_NOTIFY_NEVER;
			env->rcpt[env->nrcpt].status = QUEUE_RCPT_PENDING;
			env->nrcpt++;
		}
	}
	bcc_list_free(&bl);
	return true;
}

/*
 * non_smtpd_milters (core/milter_sync.c), on this worker: the milters see
 * the message as from localhost [127.0.0.1] and may change it, its sender
 * and its recipients (given, qualified here). False (error set) when they
 * refuse it: the sendmail command gets the reply.
 */
static bool
run_milters(struct pickup_conn *c, struct strlist *given, struct buf *content)
{
	const struct settings *s = c->pk->s;
	struct milter_sync_msg mm;
	enum milter_sync_result r;

	if (s->non_smtpd_milters == NULL || *s->non_smtpd_milters == '\0'
	    || receive_override_has(s->receive_override_options,
				    RECV_OVR_NO_MILTERS))
		return true;
	memset(&mm, 0, sizeof(mm));
	mm.queue_id = c->id;
	mm.sender = c->final_sender;
	c->final_sender = NULL;
	strlist_init(&mm.rcpts);
	for (size_t i = 0; i < given->n; i++) {
		char *q = qualify(s, given->v[i]);

		strlist_add(&mm.rcpts, q);
		free(q);
	}
	mm.content = content;
	r = milter_sync_run(s, s->non_smtpd_milters, s->syslog_name, &mm);
	c->final_sender = mm.sender;
	strlist_free(given);
	*given = mm.rcpts;
	if (r != MILTER_SYNC_OK) {
		log_write(s->syslog_name, "cleanup", LOG_LVL_INFO, "%s: "
			  "milter-reject: END-OF-MESSAGE from localhost"
			  "[127.0.0.1]: %s; from=<%s> proto=ESMTP helo=<localhost>",
			  c->id, strlen(mm.reply) > 4 ? mm.reply + 4 : mm.reply,
			  c->final_sender);
		set_error(c, r == MILTER_SYNC_REJECT ? EX_DATAERR : EX_TEMPFAIL,
			  "%s", mm.reply);
		return false;
	}
	if (mm.discard || mm.hold)
		log_write(s->syslog_name, "cleanup", LOG_LVL_INFO, "%s: %s: "
			  "END-OF-MESSAGE from localhost[127.0.0.1]: %s; "
			  "from=<%s> proto=ESMTP helo=<localhost>", c->id,
			  mm.discard ? "milter-discard" : "milter-hold",
			  mm.discard ? "milter triggers DISCARD action"
				     : mm.hold_why, c->final_sender);
	c->milter_discard = mm.discard;
	c->milter_hold = mm.hold;
	return true;
}

static struct cleanup_checks *
checks_new(const struct settings *s, struct errbuf *err)
{
	struct cleanup_checks *ck = xcalloc(1, sizeof(*ck));

	if (cleanup_checks_open(ck, s, err) < 0) {
		free(ck);
		return NULL;
	}
	return ck;
}

static void
checks_free(struct cleanup_checks **ckp)
{
	if (*ckp == NULL)
		return;
	cleanup_checks_free(*ckp);
	free(*ckp);
	*ckp = NULL;
}

/*
 * header_checks, mime_header_checks, nested_header_checks and body_checks
 * (core/cleanup_headers.h) on locally submitted mail, before the milters
 * as in Postfix's cleanup; logged "from local". REJECT is the sendmail
 * command's error (nothing is queued), DISCARD answers ok and keeps
 * nothing, HOLD keeps the message in hold/, REDIRECT replaces the
 * recipients. False when nothing is to be kept.
 */
static bool
run_checks(struct pickup_conn *c, struct strlist *given, struct buf *content)
{
	const struct settings *s = c->pk->s;
	struct cleanup_log_ctx lc = {
		.queue_id = c->id,
		.sender = c->final_sender,
		.rcpt = given->n > 0 ? given->v[0] : NULL,
	};
	struct cleanup_result r;
	struct buf out;
	bool keep = false;

	if (c->pk->checks == NULL || cleanup_checks_empty(c->pk->checks) ||
	    receive_override_has(s->receive_override_options,
				 RECV_OVR_NO_HEADER_BODY_CHECKS))
		return true;
	buf_init(&out, 0);
	cleanup_checks_run(c->pk->checks, content->data ? content->data : "",
			   content->len, &lc, &out, &r);
	if (r.reject != NULL) {
		set_error(c, r.reject[0] == '4' ? EX_TEMPFAIL : EX_DATAERR,
			  "%s", r.reject);
	} else if (r.discard) {
		c->milter_discard = true;	/* "ok", nothing kept */
		c->ex = 0;
	} else {
		if (r.modified) {
			buf_free(content);
			*content = out;
			buf_init(&out, 0);
		}
		if (r.hold)
			c->milter_hold = true;
		if (r.filter != NULL) {
			free(c->filter);
			c->filter = r.filter;
			r.filter = NULL;
		}
		if (r.redirect != NULL) {
			strlist_free(given);
			strlist_init(given);
			strlist_add(given, r.redirect);
		}
		keep = true;
	}
	buf_free(&out);
	cleanup_result_free(&r);
	return keep;
}

static void
submit_work(void *arg)
{
	struct pickup_conn *c = arg;
	struct pickup *pk = c->pk;
	const struct settings *s = pk->s;
	struct pickup_fix fix;
	struct strlist hdr_rcpts;
	struct queue_env env;
	struct passwd pw, *pwp = NULL;
	struct errbuf err;
	struct timeval now;
	struct buf content;
	char pwbuf[4096];
	size_t cap = 0;

	memset(&env, 0, sizeof(env));
	strlist_init(&hdr_rcpts);
	buf_init(&content, 0);
	gettimeofday(&now, NULL);

	/* The sender: -f, else the user's login name (from the kernel's uid) */
	if (c->sender != NULL) {
		const char *v = c->sender, *why;
		struct addr a;

		if (strcmp(v, "<>") == 0)
			v = "";
		if (*v) {
			char *q = qualify(s, v);

			if (addr_parse_mailbox(q, &a, &why) < 0) {
				set_error(c, EX_DATAERR, "<%.300s>: bad sender "
					  "address syntax", v);
				free(q);
				goto out;
			}
			addr_free(&a);
			c->final_sender = q;
		} else {
			c->final_sender = xstrdup("");
		}
	} else {
		if (getpwuid_r(c->uid, &pw, pwbuf, sizeof(pwbuf), &pwp) != 0 ||
		    pwp == NULL) {
			set_error(c, EX_USAGE, "no login name found for user ID "
				  "%lu: use -f sender", (unsigned long)c->uid);
			goto out;
		}
		c->final_sender = xasprintf("%s@%s", pwp->pw_name, s->myorigin);
	}

	queue_id_new(c->id);
	memset(&fix, 0, sizeof(fix));
	fix.id = c->id;
	fix.myhostname = s->myhostname;
	fix.mail_name = s->mail_name;
	fix.sender = c->final_sender;
	fix.fullname = c->fullname;
	fix.uid = (unsigned long)c->uid;
	fix.now = now.tv_sec;
	fix.extract = c->extract;
	pickup_msg_fix(&fix, c->data.data ? c->data.data : "", c->data.len,
		       &content, &hdr_rcpts, &c->msgid);
	/* cleanup's rewriting: canonical, masquerading (local context) */
	errbuf_clear(&err);
	if (rewrite_message(resolve_rewriter(pk->rctx), REWRITE_HDR_LOCAL,
			    &c->final_sender, &content, &err) < 0) {
		set_error(c, EX_TEMPFAIL, "address rewriting: %s",
			  errbuf_str(&err));
		goto out;
	}

	{
		/* the recipients, as the milters may change them */
		struct strlist given;
		bool ok = true;

		strlist_init(&given);
		for (size_t i = 0; i < c->rcpts.n; i++)
			strlist_add(&given, c->rcpts.v[i]);
		for (size_t i = 0; i < hdr_rcpts.n && i < PICKUP_RCPT_MAX; i++)
			strlist_add(&given, hdr_rcpts.v[i]);
		if (given.n > 0 && !run_checks(c, &given, &content))
			ok = false;
		else if (given.n > 0 && !run_milters(c, &given, &content))
			ok = false;
		for (size_t i = 0; ok && !c->milter_discard && i < given.n; i++)
			if (!add_rcpt(c, given.v[i], &env, &cap))
				ok = false;
		strlist_free(&given);
		if (!ok)
			goto out;
		if (c->milter_discard) {
			c->ex = 0;	/* "ok": nothing is kept */
			goto out;
		}
	}
	if (env.nrcpt == 0) {
		set_error(c, EX_DATAERR, c->extract
			  ? "No recipient addresses found in message header"
			  : "Recipient addresses must be specified on the "
			  "command line or via the -t option");
		goto out;
	}
	if (!add_bcc(c, &hdr_rcpts, &env, &cap))
		goto out;

	memcpy(env.id, c->id, sizeof(env.id));
	env.arrival = now.tv_sec;
	env.arrival_usec = (long)now.tv_usec;
	env.sender = c->final_sender;
	env.client_name = (char *)"localhost";
	env.client_addr = (char *)"127.0.0.1";
	env.helo = (char *)s->myhostname;
	env.protocol = (char *)"local";
	env.filter = c->filter ? c->filter	/* header_checks FILTER */
		     : s->content_filter;	/* main.cf's, as Postfix's pickup */
	env.size = (long long)content.len;
	errbuf_clear(&err);
	if (queue_write(s->queue_directory, &env, content.data ? content.data
			: "", content.len, c->milter_hold, &err) < 0) {
		set_error(c, EX_TEMPFAIL, "queue file write error: %s",
			  errbuf_str(&err));
		goto out;
	}
	memcpy(c->id, env.id, sizeof(c->id));	/* it may pick a fresh one */
	c->nrcpt = env.nrcpt;
	c->ex = 0;
out:
	for (size_t i = 0; i < env.nrcpt; i++) {
		free(env.rcpt[i].orig);
		free(env.rcpt[i].addr);
	}
	free(env.rcpt);
	strlist_free(&hdr_rcpts);
	buf_free(&content);
	buf_free(&c->data);	/* the message is on disk (or refused) */
}

static void
list_work(void *arg)
{
	struct pickup_conn *c = arg;
	struct errbuf err;
	struct buf out;

	buf_init(&out, 0);
	errbuf_clear(&err);
	if (mailq_format(c->pk->s->queue_directory, PICKUP_LIST_MAX, &out,
			 &err) < 0) {
		set_error(c, EX_TEMPFAIL, "%s", errbuf_str(&err));
		buf_free(&out);
		return;
	}
	c->ex = 0;
	c->text = buf_steal(&out);
}

/* ---- loop side ---- */

static void
job_done(void *arg)
{
	struct pickup_conn *c = arg;
	struct pickup *pk = c->pk;
	const char *name = pk->s->syslog_name;

	if (c->kind == K_SUBMIT && c->ex == 0) {
		log_write(name, SVC, LOG_LVL_INFO, "%s: uid=%lu from=<%s>",
			  c->id, (unsigned long)c->uid, c->final_sender);
		if (c->msgid)
			log_write(name, "cleanup", LOG_LVL_INFO,
				  "%s: message-id=%s", c->id, c->msgid);
		if (pk->qmgr != NULL && !c->milter_discard && !c->milter_hold)
			qmgr_enqueued(pk->qmgr, c->id);
		status_count(STATUS_RECEIVED);
	} else if (c->kind == K_SUBMIT) {
		log_write(name, SVC, LOG_LVL_WARNING, "uid=%lu: message "
			  "refused: %s", (unsigned long)c->uid,
			  c->text ? c->text : "error");
	}
	if (c->dead) {
		conn_free(c);
		return;
	}
	if (c->ex != 0)
		conn_error(c, c->ex, c->text ? c->text : "error");
	else if (c->kind == K_SUBMIT)
		conn_finish(c, "ok %s\n", c->id);
	else
		conn_finish(c, "ok\n%s", c->text ? c->text : "");
}

static void
start_job(struct pickup_conn *c, void (*work)(void *))
{
	c->state = C_BUSY;
	c->ex = EX_SOFTWARE;
	bufferevent_disable(c->bev, EV_READ);
	worker_submit(c->pk->pool, work, job_done, c);
}

/* One request line; false when the connection was answered/closed. */
static bool
conn_line(struct pickup_conn *c, char *ln)
{
	struct pickup *pk = c->pk;
	long long max = pk->s->message_size_limit;

	if (c->state == C_CMD) {
		if (strcmp(ln, "submit") == 0) {
			c->kind = K_SUBMIT;
			c->state = C_HDR;
			return true;
		}
		if (strcmp(ln, "list") == 0) {
			c->kind = K_LIST;
			start_job(c, list_work);
			return false;
		}
		if (strcmp(ln, "flush") == 0) {
			log_write(pk->s->syslog_name, SVC, LOG_LVL_INFO, "flush "
				  "requested by uid=%lu", (unsigned long)c->uid);
			if (pk->qmgr != NULL)
				qmgr_flush(pk->qmgr);
			conn_finish(c, "ok\n");
			return false;
		}
		conn_error(c, EX_PROTOCOL, "unknown request");
		return false;
	}
	if (strncmp(ln, "sender ", 7) == 0 && c->sender == NULL) {
		c->sender = xstrdup(ln + 7);
	} else if (strncmp(ln, "name ", 5) == 0 && c->fullname == NULL) {
		c->fullname = xstrdup(ln + 5);
	} else if (strcmp(ln, "extract") == 0) {
		c->extract = true;
	} else if (strncmp(ln, "rcpt ", 5) == 0 && ln[5] != '\0') {
		if (c->rcpts.n >= PICKUP_RCPT_MAX) {
			conn_error(c, EX_DATAERR, "too many recipients");
			return false;
		}
		strlist_add(&c->rcpts, ln + 5);
	} else if (strncmp(ln, "data ", 5) == 0) {
		char *end;
		unsigned long long n;

		errno = 0;
		n = strtoull(ln + 5, &end, 10);
		if (errno != 0 || *end != '\0' || end == ln + 5) {
			conn_error(c, EX_PROTOCOL, "bad data length");
			return false;
		}
		if (max > 0 && n > (unsigned long long)max) {
			conn_error(c, EX_DATAERR, "message file too big "
				   "(message_size_limit)");
			log_write(pk->s->syslog_name, SVC, LOG_LVL_WARNING,
				  "uid=%lu: message refused: %llu bytes "
				  "exceed message_size_limit %lld",
				  (unsigned long)c->uid, n, max);
			return false;
		}
		c->data_len = (size_t)n;
		buf_init(&c->data, c->data_len + 1);
		c->state = C_DATA;
	} else {
		conn_error(c, EX_PROTOCOL, "bad request line");
		return false;
	}
	return true;
}

static void
conn_read(struct bufferevent *bev, void *arg)
{
	struct pickup_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (c->state == C_CMD || c->state == C_HDR || c->state == C_DATA) {
		if (c->state == C_DATA) {
			size_t want = c->data_len - c->data.len;
			size_t have = evbuffer_get_length(in);
			size_t n = have < want ? have : want;

			if (n > 0) {
				unsigned char *p = evbuffer_pullup(in, (ssize_t)n);

				buf_append(&c->data, p, n);
				evbuffer_drain(in, n);
			}
			if (c->data.len < c->data_len)
				return;
			start_job(c, submit_work);
			return;
		}
		size_t n;
		char *ln = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);

		if (ln == NULL) {
			if (evbuffer_get_length(in) > PICKUP_LINE_MAX)
				conn_error(c, EX_PROTOCOL, "request line too long");
			return;
		}
		if (n > PICKUP_LINE_MAX || strlen(ln) != n) {
			free(ln);
			conn_error(c, EX_PROTOCOL, "bad request line");
			return;
		}
		if (!conn_line(c, ln)) {
			free(ln);
			return;
		}
		free(ln);
	}
}

static void
conn_write(struct bufferevent *bev, void *arg)
{
	struct pickup_conn *c = arg;

	if (c->state == C_CLOSING &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_free(c);
}

static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct pickup_conn *c = arg;

	if (what & BEV_EVENT_TIMEOUT)
		log_write(c->pk->s->syslog_name, SVC, LOG_LVL_WARNING,
			  "uid=%lu: timeout reading the request",
			  (unsigned long)c->uid);
	if (c->state == C_BUSY) {
		/* The job finishes (a message may still be queued); its done
		 * callback frees the connection. */
		c->dead = true;
		bufferevent_free(c->bev);
		c->bev = NULL;
		return;
	}
	conn_free(c);
}

/* The kernel's word on who is at the other end. */
static int
peer_uid(int fd, uid_t *uid_r)
{
#if defined(SO_PEERCRED) && defined(__linux__)
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0 ||
	    len != sizeof(uc))
		return -1;
	*uid_r = uc.uid;
	return 0;
#else
	gid_t gid;

	return getpeereid(fd, uid_r, &gid);
#endif
}

static void
pickup_accept(struct evconnlistener *lev, evutil_socket_t fd,
	      struct sockaddr *sa, int salen, void *arg)
{
	struct pickup *pk = arg;
	struct pickup_conn *c;
	struct timeval tv = { PICKUP_TIMEOUT, 0 };
	uid_t uid;

	if (peer_uid(fd, &uid) < 0) {
		log_write(pk->s->syslog_name, SVC, LOG_LVL_WARNING, "cannot "
			  "get the peer credentials of a local client: %s",
			  strerror(errno));
		evutil_closesocket(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->pk = pk;
	c->uid = uid;
	strlist_init(&c->rcpts);
	buf_init(&c->data, 1);
	c->next = pk->conns;
	if (pk->conns)
		pk->conns->prev = c;
	pk->conns = c;
	pk->nconns++;
	c->bev = bufferevent_socket_new(pk->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		conn_free(c);
		return;
	}
	bufferevent_setcb(c->bev, conn_read, conn_write, conn_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	if (pk->nconns > PICKUP_CONN_MAX) {
		log_write(pk->s->syslog_name, SVC, LOG_LVL_WARNING, "uid=%lu: "
			  "too many local clients at once (%d)",
			  (unsigned long)uid, PICKUP_CONN_MAX);
		conn_error(c, EX_TEMPFAIL, "too many local submissions at once; "
			   "try again later");
		return;
	}
	bufferevent_setwatermark(c->bev, EV_READ, 0, 256 * 1024);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

struct pickup *
pickup_new(struct event_base *base, struct worker_pool *pool,
	   struct qmgr *qmgr, const struct settings *s, struct errbuf *err)
{
	struct sockaddr_un sun;
	struct pickup *pk;
	struct stat st;
	char *dir;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s",
			     s->queue_directory, PICKUP_SOCKET)
	    >= sizeof(sun.sun_path)) {
		errbuf_set(err, "queue_directory %s: path too long for the "
			   "local submission socket %s", s->queue_directory,
			   PICKUP_SOCKET);
		return NULL;
	}
	/* Every local user must reach the socket: the queue directory is
	 * traversable (0711 at least; what lies below stays 0700). */
	if (stat(s->queue_directory, &st) == 0 &&
	    (st.st_mode & 0011) != 0011 &&
	    chmod(s->queue_directory, (st.st_mode & 07777) | 0011) < 0)
		log_write(s->syslog_name, "master", LOG_LVL_WARNING, "chmod %s: "
			  "%s (local users cannot reach %s)", s->queue_directory,
			  strerror(errno), PICKUP_SOCKET);
	dir = xasprintf("%s/public", s->queue_directory);
	if ((mkdir(dir, 0711) < 0 && errno != EEXIST) || chmod(dir, 0711) < 0) {
		errbuf_set(err, "create %s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	free(dir);
	/* We hold the queue's pid lock: a socket left here is a dead one's. */
	(void)unlink(sun.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(sun.sun_path, 0666) < 0) {
		errbuf_set(err, "local submission socket %s: %s", sun.sun_path,
			   strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	pk = xcalloc(1, sizeof(*pk));
	pk->base = base;
	pk->pool = pool;
	pk->qmgr = qmgr;
	pk->s = s;
	pk->path = xstrdup(sun.sun_path);
	if ((pk->rctx = resolve_ctx_new_receiving(s, err)) == NULL ||
	    (pk->bcc = bcc_ctx_new(s, err)) == NULL ||
	    (pk->checks = checks_new(s, err)) == NULL) {
		close(fd);
		pickup_free(&pk);
		return NULL;
	}
	pk->lev = evconnlistener_new(base, pickup_accept, pk,
				     LEV_OPT_CLOSE_ON_FREE, 64, fd);
	if (pk->lev == NULL) {
		errbuf_set(err, "local submission socket %s: cannot listen",
			   sun.sun_path);
		close(fd);
		pickup_free(&pk);
		return NULL;
	}
	return pk;
}

int
pickup_reconfigure(struct pickup *pk, const struct settings *s,
		   struct errbuf *err)
{
	struct resolve_ctx *r = resolve_ctx_new_receiving(s, err);
	struct bcc_ctx *b;
	struct cleanup_checks *ck;

	if (r == NULL)
		return -1;
	if ((b = bcc_ctx_new(s, err)) == NULL) {
		resolve_ctx_free(&r);
		return -1;
	}
	if ((ck = checks_new(s, err)) == NULL) {
		bcc_ctx_free(&b);
		resolve_ctx_free(&r);
		return -1;
	}
	checks_free(&pk->checks);
	pk->checks = ck;
	resolve_ctx_free(&pk->rctx);
	pk->rctx = r;
	bcc_ctx_free(&pk->bcc);
	pk->bcc = b;
	pk->s = s;
	return 0;
}

void
pickup_stop(struct pickup *pk)
{
	if (pk != NULL && pk->lev != NULL)
		evconnlistener_disable(pk->lev);
}

void
pickup_free(struct pickup **pp)
{
	struct pickup *pk = *pp;

	if (pk == NULL)
		return;
	if (pk->lev) {
		evconnlistener_free(pk->lev);
		(void)unlink(pk->path);
	}
	while (pk->conns)
		conn_free(pk->conns);
	resolve_ctx_free(&pk->rctx);
	bcc_ctx_free(&pk->bcc);
	checks_free(&pk->checks);
	free(pk->path);
	free(pk);
	*pp = NULL;
}
