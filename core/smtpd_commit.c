/*
 * smtpd_commit.c - the parts of a session that may block: recipient
 * checks (restrictions + address resolution, on a worker when a map is
 * blocking and its answer is not in the lookup cache) and the commit of
 * a received message. The commit runs on a
 * worker: each local Maildir destination gets the message (fsynced), and
 * whatever could not be delivered now goes into the queue (fsynced). Only
 * then does the session answer 250.
 * Must not: touch the session from a worker (jobs carry copies), or answer
 * 250 for a message that is not on disk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "backends/table.h"
#include "core/bcc.h"
#include "core/cleanup_headers.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/milter_checks.h"
#include "core/qmgr.h"
#include "core/receive_override.h"
#include "core/queue.h"
#include "core/rewrite.h"
#include "core/smtpd_check.h"
#include "core/smtpd_ccert.h"
#include "core/smtpd_commit.h"
#include "core/smtpd_listener.h"
#include "core/smtpd_session.h"
#include "core/soft_bounce.h"
#include "core/status.h"
#include "core/worker.h"
#include "delivery/deliver.h"

/* ---- RCPT and VRFY ---- */

struct rcpt_job {
	struct smtpd_session  *s;
	struct smtpd_listener *l;
	struct smtpd_rcpt_args r;
	struct resolve_result  res;
	struct buf             reply;
	struct smtpd_check_facts f;
	struct smtpd_check_actions act;
	int                    ok, vrfy, discarding;
	long long              declared_size;	/* MAIL FROM SIZE=, or -1 */
	char                  *rcpt_text;
	char                  *sasl_username;	/* owned copy for the facts */
	char                   instance[48];
};

/*
 * SIZE= was declared: a recipient whose every destination is a maildir
 * that cannot take that many bytes more is refused now (552 5.2.2, or
 * 452 4.2.2 with virtual_mailbox_full_tempfail), rather than at the end
 * of DATA. Runs on a worker (rcpt_start sends it there).
 */
static void
rcpt_quota(struct rcpt_job *j)
{
	char dsn[8] = "";
	size_t full = 0;

	if (j->declared_size <= 0 || j->res.n == 0 || j->discarding
	    || j->act.discard || !deliver_quota_enabled())
		return;
	for (size_t i = 0; i < j->res.n; i++) {
		const struct resolve_dest *d = &j->res.v[i];

		if (d->cls != RESOLVE_CLASS_VIRTUAL || d->maildir == NULL
		    || d->unknown
		    || deliver_quota_precheck(d->addr, d->maildir,
					      j->declared_size, dsn) != 1)
			return;
		full++;
	}
	if (full == j->res.n) {
		j->ok = 0;
		buf_printf(&j->reply, "%s %s %s: Recipient address rejected: "
			   "Mailbox full", dsn[0] == '4' ? "452" : "552", dsn,
			   j->rcpt_text);
	}
}

static void
rcpt_eval(void *arg)
{
	struct rcpt_job *j = arg;
	struct smtpd_listener *l = j->l;
	enum smtpd_check_result cr;
	enum resolve_status rs;

	j->ok = 0;
	/*
	 * VRFY answers what RCPT would (Postfix runs the same checks). Once a
	 * restriction said DISCARD, the message goes nowhere: later
	 * recipients are not checked (as in Postfix).
	 */
	if (!j->discarding) {
		cr = smtpd_check_rcpt(&l->checks, &j->f, &j->reply,
				      j->vrfy ? NULL : &j->act);
		if (cr == SMTPD_CHECK_REJECT || cr == SMTPD_CHECK_DEFER)
			return;
	}
	rs = resolve_rcpt_ex(l->resolve, &j->r.addr, &j->res,
			     RESOLVE_F_RELAY_RCPT);
	if (rs == RESOLVE_UNKNOWN && !smtpd_check_reject_unlisted_rcpt(&l->checks)
	    && j->res.uaddr != NULL) {
		/* smtpd_reject_unlisted_recipient = no: accepted, bounced
		 * by the queue (an unlisted relay recipient is relayed) */
		resolve_result_keep_unknown(&j->res);
		rs = RESOLVE_OK;
	}
	if (rs != RESOLVE_OK && (j->discarding || j->act.discard)) {
		/* Nothing will be delivered: accept without a destination. */
		resolve_result_free(&j->res);
		memset(&j->res, 0, sizeof(j->res));
		rs = RESOLVE_OK;
	}
	buf_reset(&j->reply);
	switch (rs) {
	case RESOLVE_OK:
		j->ok = 1;
		if (!j->vrfy && !j->discarding && !j->act.discard &&
		    smtpd_check_unlisted_sender(&l->checks, &j->f, &j->reply)
		    != SMTPD_CHECK_DUNNO) {
			j->ok = 0;	/* smtpd_reject_unlisted_sender */
			break;
		}
		buf_reset(&j->reply);
		if (j->vrfy)
			/* Postfix echoes the argument as sent */
			buf_printf(&j->reply, "252 2.0.0 %s", j->r.vrfy_arg
				   ? j->r.vrfy_arg : j->rcpt_text);
		else
			rcpt_quota(j);
		break;
	case RESOLVE_UNKNOWN:
		smtpd_check_unknown_reply(&l->checks, &j->res, j->rcpt_text,
					  &j->reply);
		break;
	case RESOLVE_TEMPFAIL:
		buf_printf(&j->reply, "451 4.3.0 %s: Temporary lookup failure",
			   j->rcpt_text);
		break;
	case RESOLVE_LOOP:
		/* An alias loop is a map mistake the operator will fix:
		 * defer, as Postfix does, never bounce. */
	case RESOLVE_CONFIG:
	default:
		buf_printf(&j->reply, "451 4.3.5 %s: Recipient address rejected: "
			   "Server configuration error", j->rcpt_text);
		break;
	}
}

/*
 * Blocking tables, but only table lookups: tries the evaluation on the
 * loop with cached answers alone (table_nonblock mode). True: done, the
 * held log lines written. False: some answer was not cached; everything
 * evaluated is undone for the worker to start again.
 */
static bool
rcpt_eval_cached(struct rcpt_job *j)
{
	struct buf hold;
	bool missed;

	buf_init(&hold, 0);
	j->f.log_hold = &hold;
	table_nonblock_begin();
	rcpt_eval(j);
	missed = table_nonblock_end();
	j->f.log_hold = NULL;
	if (!missed) {
		for (size_t i = 0; i < hold.len; i += strlen(hold.data + i) + 1)
			log_write(j->f.syslog_name, "smtpd", hold.data[i] == 'W'
				  ? LOG_LVL_WARNING : LOG_LVL_INFO, "%s",
				  hold.data + i + 1);
	} else {
		buf_reset(&j->reply);
		smtpd_check_actions_free(&j->act);
		smtpd_check_actions_init(&j->act);
		resolve_result_free(&j->res);
		memset(&j->res, 0, sizeof(j->res));
		j->ok = 0;
	}
	buf_free(&hold);
	return !missed;
}

static void
rcpt_job_free(struct rcpt_job *j)
{
	buf_free(&j->reply);
	smtpd_check_actions_free(&j->act);
	resolve_result_free(&j->res);
	smtpd_rcpt_args_free(&j->r);
	free(j->rcpt_text);
	free(j->sasl_username);
	free(j);
}

/* Logs what Postfix logs for a refused recipient. */
static void
log_reject(struct smtpd_session *s, const char *reply, const char *rcpt_text)
{
	const struct smtpd_txn *t = s->tx;

	log_write(s->l->s.syslog_name, "smtpd", LOG_LVL_INFO,
		  "NOQUEUE: reject: RCPT from %s[%s]: %s; from=<%s> to=%s "
		  "proto=%s helo=<%s>", s->client_name, s->client_addr, reply,
		  t ? t->sender : "", rcpt_text, s->esmtp ? "ESMTP" : "SMTP",
		  s->helo ? s->helo : "");
}

static void
rcpt_deliver_result(struct rcpt_job *j)
{
	struct smtpd_session *s = j->s;

	if (s->bev == NULL || s->closing)
		return;
	if (j->vrfy) {
		if (j->ok)
			smtpd_session_reply(s, "%s", buf_cstr(&j->reply));
		else {
			s->errors++;
			smtpd_session_reply(s, "%s", buf_cstr(&j->reply));
		}
		s->cmd_total[SMTPD_VRFY]++;
		if (j->ok)
			s->cmd_ok[SMTPD_VRFY]++;
		return;
	}
	if (!j->ok) {
		if (s->l->s.soft_bounce && j->reply.data != NULL)
			soft_bounce_reply(j->reply.data);	/* as sent */
		log_reject(s, buf_cstr(&j->reply), j->rcpt_text);
		if (j->reply.data[0] == '4' && j->res.reason != NULL)
			log_write(s->l->s.syslog_name, "smtpd", LOG_LVL_WARNING,
				  "%s: %s", j->rcpt_text, j->res.reason);
	}
	if (j->ok && j->res.warning != NULL)	/* alias_maps target refused */
		log_write(s->l->s.syslog_name, "smtpd", LOG_LVL_WARNING, "%s: %s",
			  j->rcpt_text, j->res.warning);
	if (j->ok && s->tx != NULL)
		smtpd_check_actions_merge(&s->tx->act, &j->act);
	smtpd_rcpt_finish(s, &j->r, &j->res, buf_cstr(&j->reply), j->ok);
}

static void
rcpt_done(void *arg)
{
	struct rcpt_job *j = arg;
	struct smtpd_session *s = j->s;

	rcpt_deliver_result(j);
	rcpt_job_free(j);
	smtpd_session_resume(s);
}

static void
rcpt_start(struct smtpd_session *s, struct smtpd_rcpt_args *r, int vrfy)
{
	struct rcpt_job *j = xcalloc(1, sizeof(*j));
	char *fmt;

	j->s = s;
	j->l = s->l;
	j->r = *r;
	memset(r, 0, sizeof(*r));
	j->vrfy = vrfy;
	buf_init(&j->reply, 0);
	fmt = addr_format(&j->r.addr);
	j->rcpt_text = xasprintf("<%s>", fmt);
	free(fmt);
	smtpd_check_actions_init(&j->act);
	j->discarding = s->tx != NULL && s->tx->act.discard;
	j->declared_size = s->tx && !vrfy ? s->tx->declared_size : -1;
	j->f.esmtp = s->esmtp;
	j->f.unauth_pipelining = s->ill_pipelining;
	j->f.where = vrfy ? "VRFY" : "RCPT";
	j->f.tls_active = s->tls_up;
	j->f.queue_id = s->tx ? s->tx->id : NULL;
	j->f.rcpt_count = s->tx ? (unsigned)s->tx->nrcpt : 0;
	j->f.syslog_name = s->l->s.syslog_name;
	/* One policy "instance" per transaction. */
	snprintf(j->instance, sizeof(j->instance), "%lx.%lx",
		 (unsigned long)getpid(), (unsigned long)(uintptr_t)s->tx);
	j->f.instance = j->instance;
	j->f.in_mynetworks = s->in_mynetworks;
	j->f.sasl_authenticated = s->sasl_authenticated;
	j->sasl_username = s->sasl_username ? xstrdup(s->sasl_username) : NULL;
	j->f.sasl_username = j->sasl_username;
	j->f.sasl_method = s->sasl_method;
	smtpd_ccert_facts(s, &j->f);
	j->f.client_addr = s->client_addr;
	j->f.client_name = s->client_name;
	j->f.reverse_client_name = s->reverse_client_name;
	j->f.name_status = s->name_status;
	j->f.reverse_name_status = s->reverse_name_status;
	j->f.helo = s->helo;
	j->f.sender = s->tx ? s->tx->sender : NULL;
	j->f.rcpt = &j->r.addr;
	j->f.rcpt_text = j->rcpt_text;
	j->f.resolve = s->l->resolve;

	/* a quota check reads the disk: never on the loop */
	if (j->declared_size > 0 && deliver_quota_enabled())
		goto worker;
	if (!resolve_ctx_blocking(s->l->resolve) &&
	    !smtpd_check_lists_blocking(&s->l->checks)) {
		rcpt_eval(j);
		rcpt_deliver_result(j);
		rcpt_job_free(j);
		return;
	}
	if (!smtpd_check_lists_need_worker(&s->l->checks) &&
	    rcpt_eval_cached(j)) {
		rcpt_deliver_result(j);
		rcpt_job_free(j);
		return;
	}
worker:
	/* facts point into the session: it stays put while busy. */
	s->busy = 1;
	bufferevent_disable(s->bev, EV_READ);
	worker_submit(s->l->srv->pool, rcpt_eval, rcpt_done, j);
}

void
smtpd_rcpt_check(struct smtpd_session *s, struct smtpd_rcpt_args *r)
{
	rcpt_start(s, r, 0);
}

void
smtpd_vrfy_check(struct smtpd_session *s, struct smtpd_rcpt_args *r)
{
	rcpt_start(s, r, 1);
}

/* ---- smtpd_delay_reject = no: CONNECT, HELO, MAIL ---- */

struct stage_job {
	struct smtpd_session    *s;
	struct smtpd_listener   *l;
	enum smtpd_check_stage   stage;
	struct smtpd_check_facts f;
	struct smtpd_check_actions act;
	struct buf               reply;
	enum smtpd_check_result  r;
	char                    *helo, *sender, *sasl_username;
	smtpd_stage_done_fn      done;
	void                    *arg;
	char                     instance[48];
};

static void
stage_eval(void *arg)
{
	struct stage_job *j = arg;

	j->r = smtpd_check_stage(&j->l->checks, j->stage, &j->f, &j->reply,
				 &j->act);
}

static void
stage_finish(struct stage_job *j)
{
	struct smtpd_session *s = j->s;
	int refused = j->r == SMTPD_CHECK_REJECT || j->r == SMTPD_CHECK_DEFER;

	if (refused) {
		struct buf line;

		buf_init(&line, 0);
		buf_printf(&line, "NOQUEUE: reject: %s from %s[%s]: %s;",
			   j->f.where, s->client_name, s->client_addr,
			   buf_cstr(&j->reply));
		if (j->stage == SMTPD_STAGE_SENDER)
			buf_printf(&line, " from=<%s>", j->sender ? j->sender : "");
		buf_printf(&line, " proto=%s", s->esmtp ? "ESMTP" : "SMTP");
		if (j->helo != NULL)
			buf_printf(&line, " helo=<%s>", j->helo);
		log_write(s->l->s.syslog_name, "smtpd", LOG_LVL_INFO, "%s",
			  buf_cstr(&line));
		buf_free(&line);
	} else if (j->stage == SMTPD_STAGE_SENDER && s->tx != NULL)
		smtpd_check_actions_merge(&s->tx->act, &j->act);
	if (s->bev != NULL && !s->closing)
		j->done(s, refused, buf_cstr(&j->reply), j->arg);
}

static void
stage_free(struct stage_job *j)
{
	buf_free(&j->reply);
	smtpd_check_actions_free(&j->act);
	free(j->helo);
	free(j->sender);
	free(j->sasl_username);
	free(j);
}

static void
stage_done(void *arg)
{
	struct stage_job *j = arg;
	struct smtpd_session *s = j->s;

	stage_finish(j);
	stage_free(j);
	smtpd_session_resume(s);
}

void
smtpd_stage_check(struct smtpd_session *s, int stage, const char *helo,
		  smtpd_stage_done_fn done, void *arg)
{
	struct stage_job *j = xcalloc(1, sizeof(*j));
	static const char *const where[] = { "CONNECT", "HELO", "MAIL" };

	j->s = s;
	j->l = s->l;
	j->stage = (enum smtpd_check_stage)stage;
	j->done = done;
	j->arg = arg;
	buf_init(&j->reply, 0);
	smtpd_check_actions_init(&j->act);
	j->helo = helo ? xstrdup(helo) : s->helo ? xstrdup(s->helo) : NULL;
	j->sender = s->tx && s->tx->sender ? xstrdup(s->tx->sender) : NULL;
	j->sasl_username = s->sasl_username ? xstrdup(s->sasl_username) : NULL;
	j->f.esmtp = s->esmtp;
	j->f.unauth_pipelining = s->ill_pipelining;
	j->f.where = where[stage >= 0 && stage <= 2 ? stage : 0];
	j->f.tls_active = s->tls_up;
	j->f.syslog_name = s->l->s.syslog_name;
	j->f.in_mynetworks = s->in_mynetworks;
	j->f.sasl_authenticated = s->sasl_authenticated;
	j->f.sasl_username = j->sasl_username;
	j->f.sasl_method = s->sasl_method;
	smtpd_ccert_facts(s, &j->f);
	j->f.client_addr = s->client_addr;
	j->f.client_name = s->client_name;
	j->f.reverse_client_name = s->reverse_client_name;
	j->f.name_status = s->name_status;
	j->f.reverse_name_status = s->reverse_name_status;
	j->f.helo = j->helo;
	j->f.sender = j->sender;
	j->f.resolve = s->l->resolve;
	snprintf(j->instance, sizeof(j->instance), "%lx.%lx",
		 (unsigned long)getpid(), (unsigned long)(uintptr_t)s->tx);
	j->f.instance = j->instance;
	if (!smtpd_check_lists_blocking(&s->l->checks)) {
		stage_eval(j);
		stage_finish(j);
		stage_free(j);
		return;
	}
	s->busy = 1;
	bufferevent_disable(s->bev, EV_READ);
	worker_submit(s->l->srv->pool, stage_eval, stage_done, j);
}

/* ---- commit ---- */

struct dest_out {
	const char          *addr, *orig, *maildir, *orcpt;
	unsigned             notify;
	enum deliver_status  st;
	char                 dsn[8];
	char                *text;
	double               seconds;
};

struct commit_job {
	struct smtpd_session  *s;
	struct smtpd_txn      *tx;
	const struct settings *st;
	const char            *qdir;
	struct dest_out       *out;
	size_t                 nout;
	bool                   direct;
	bool                   queued;	/* leftovers written to the queue */
	bool                   failed;	/* nothing durable: 451 */
	bool                   rejected;	/* every mailbox refused: 5xx */
	bool                   discard, hold;
	struct resolve_result  redirect;	/* REDIRECT destinations */
	struct resolve_result *mres;	/* milter ADDRCPT destinations */
	size_t                 nmres;
	struct resolve_ctx    *resolve;
	struct bcc_ctx        *bcc;		/* always_bcc, *_bcc_maps */
	struct bcc_list        bccs;		/* their destinations (owned) */
	struct buf             prepended;	/* PREPEND lines + content */
	const struct cleanup_checks *cleanup;	/* header/body_checks */
	struct buf             cleaned;	/* content after IGNORE/REPLACE/... */
	char                  *content_reject;	/* header/body_checks REJECT */
	char                  *filter;	/* header/body_checks FILTER (owned) */
	char                   err[512];
	struct timeval         t_start, t_end;
	char                   client_addr[INET6_ADDRSTRLEN];
	char                  *client_name, *helo;
	bool                   esmtp;
	bool                   in_mynetworks, sasl_auth;	/* header rewriting */
	struct buf             rewritten;	/* content after header rewriting */
};

static double
tv_diff(const struct timeval *a, const struct timeval *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	       (double)(b->tv_usec - a->tv_usec) / 1e6;
}

/*
 * Mail for virtual_mailbox_domains may go straight into the Maildirs only
 * when its transport is virtual: transport_maps or another
 * virtual_transport (lmtp:...) leave it to the queue manager.
 */
static bool
transport_is_virtual(const struct settings *st)
{
	const char *vt = st->virtual_transport;

	/* content_filter: the filter gets the message from the queue */
	if (st->content_filter != NULL && *st->content_filter != '\0')
		return false;
	return (st->transport_maps == NULL || *st->transport_maps == '\0')
	       && (vt == NULL || *vt == '\0' || strcmp(vt, "virtual") == 0
		   || strcmp(vt, "virtual:") == 0);
}

/*
 * REDIRECT: every recipient is replaced by the one address (resolved here,
 * on the worker, since the maps may block).
 */
static void
commit_redirect(struct commit_job *j)
{
	const char *target = j->tx->act.redirect;
	const char *at = strrchr(target, '@');
	struct addr a;
	enum resolve_status rs;

	memset(&a, 0, sizeof(a));
	a.local = xstrndup(target, at ? (size_t)(at - target) : strlen(target));
	a.domain = xstrdup(at ? at + 1 : "");
	for (char *p = a.domain; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	rs = resolve_rcpt(j->resolve, &a, &j->redirect);
	free(a.local);
	free(a.domain);
	if (rs != RESOLVE_OK) {
		snprintf(j->err, sizeof(j->err), "REDIRECT %s: %s", target,
			 j->redirect.reason ? j->redirect.reason
					    : "cannot be resolved");
		j->failed = true;
		return;
	}
	free(j->out);
	j->out = xcalloc(j->redirect.n ? j->redirect.n : 1, sizeof(*j->out));
	j->nout = 0;
	j->direct = !j->hold && transport_is_virtual(j->st);
	for (size_t k = 0; k < j->redirect.n; k++) {
		const struct resolve_dest *d = &j->redirect.v[k];

		j->out[j->nout].addr = d->addr;
		j->out[j->nout].orig = target;
		j->out[j->nout].maildir = d->maildir;
		if (d->cls != RESOLVE_CLASS_VIRTUAL || d->maildir == NULL)
			j->direct = false;
		j->nout++;
	}
}

/*
 * The client/envelope fields the cleanup checks put in their log lines,
 * for both header-check passes below. Borrows pointers into j.
 */
static struct cleanup_log_ctx
commit_log_ctx(const struct commit_job *j)
{
	const struct smtpd_txn *t = j->tx;
	struct cleanup_log_ctx lc = {
		.queue_id = t->id,
		.client_name = j->client_name,
		.client_addr = j->client_addr,
		.sender = t->sender,
		.rcpt = t->nrcpt > 0 ? t->rcpt[0].orig : NULL,
		.proto = j->esmtp ? "ESMTP" : "SMTP",
		.helo = j->helo[0] ? j->helo : NULL,
	};

	return lc;
}

/*
 * What a header/body check decided (milter_header_checks, header_checks,
 * body_checks): REJECT or DISCARD end the commit; HOLD, REDIRECT and (with
 * take_filter) FILTER change where the message goes. Frees r. False when
 * nothing is to be kept.
 */
static bool
commit_apply_checks(struct commit_job *j, struct cleanup_result *r,
		    bool take_filter)
{
	struct smtpd_txn *t = j->tx;

	if (r->reject != NULL) {
		j->content_reject = r->reject;
		r->reject = NULL;
	} else if (r->discard) {
		j->discard = true;
	} else {
		if (r->hold) {
			j->hold = true;
			j->direct = false;	/* held mail waits in hold/ */
		}
		if (r->redirect != NULL) {
			free(t->act.redirect);
			t->act.redirect = r->redirect;
			r->redirect = NULL;
		}
		if (take_filter && r->filter != NULL) {
			/* FILTER: the filter gets it from the queue */
			free(j->filter);
			j->filter = r->filter;
			r->filter = NULL;
			j->direct = false;
		}
	}
	cleanup_result_free(r);
	return j->content_reject == NULL && !j->discard;
}

/*
 * milter_header_checks on the header lines milters added or changed
 * (core/milter_checks.c). False when nothing is to be kept (REJECT,
 * DISCARD, a table that cannot be opened or answer).
 */
static bool
commit_milter_header_checks(struct commit_job *j)
{
	struct smtpd_txn *t = j->tx;
	struct cleanup_log_ctx lc = commit_log_ctx(j);
	struct cleanup_result r;

	if (t->milter_headers.n == 0)
		return true;
	if (milter_checks_run(j->st->milter_header_checks, &t->milter_headers,
			      &lc, &r, j->err, sizeof(j->err)) < 0) {
		j->failed = true;
		return false;
	}
	return commit_apply_checks(j, &r, false);
}

/*
 * Recipients added by milters (ADDRCPT, core/milter.c): resolved here, on
 * the worker, as RCPT would; an unknown one is dropped with a warning, a
 * lookup failure fails the commit (451).
 */
static void
commit_milter_rcpts(struct commit_job *j)
{
	struct smtpd_txn *t = j->tx;

	if (t->milter_rcpts.n == 0)
		return;
	j->mres = xcalloc(t->milter_rcpts.n, sizeof(*j->mres));
	for (size_t k = 0; k < t->milter_rcpts.n && !j->failed; k++) {
		const char *target = t->milter_rcpts.v[k];
		const char *at = strrchr(target, '@');
		struct resolve_result *res = &j->mres[j->nmres++];
		enum resolve_status rs;
		struct addr a;

		memset(&a, 0, sizeof(a));
		a.local = xstrndup(target, at ? (size_t)(at - target)
					      : strlen(target));
		a.domain = xstrdup(at ? at + 1 : "");
		for (char *p = a.domain; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		rs = resolve_rcpt(j->resolve, &a, res);
		free(a.local);
		free(a.domain);
		if (rs == RESOLVE_TEMPFAIL || rs == RESOLVE_CONFIG ||
		    rs == RESOLVE_LOOP) {
			snprintf(j->err, sizeof(j->err), "milter recipient "
				 "<%s>: %s", target, res->reason ? res->reason
				 : "lookup failure");
			j->failed = true;
			break;
		}
		if (rs != RESOLVE_OK) {
			log_write(j->st->syslog_name, "cleanup", LOG_LVL_WARNING,
				  "%s: milter recipient <%s> dropped: %s", t->id,
				  target, res->reason ? res->reason
				  : "User unknown");
			continue;
		}
		j->out = xrealloc(j->out, (j->nout + res->n + 1) *
				  sizeof(*j->out));
		for (size_t i = 0; i < res->n; i++) {
			const struct resolve_dest *d = &res->v[i];
			struct dest_out *o;
			size_t m;

			for (m = 0; m < j->nout; m++)
				if (strcmp(j->out[m].addr, d->addr) == 0)
					break;
			if (m < j->nout)
				continue;
			o = &j->out[j->nout++];
			memset(o, 0, sizeof(*o));
			o->addr = d->addr;
			o->orig = target;
			o->maildir = d->maildir;
			if (d->cls != RESOLVE_CLASS_VIRTUAL || d->maildir == NULL
			    || d->unknown || j->hold)
				j->direct = false;
		}
	}
}

/*
 * always_bcc, sender_bcc_maps, recipient_bcc_maps (bcc.h): the copies are
 * more destinations, with NOTIFY=NEVER, each final address once. A BCC
 * that is not a local Maildir sends the whole message through the queue.
 * A table that cannot answer fails the commit (451), as in Postfix.
 */
static bool
commit_bcc(struct commit_job *j)
{
	struct smtpd_txn *t = j->tx;
	const char **rcpts;
	struct errbuf err;
	size_t total = 0;
	int rc;

	if (!bcc_ctx_active(j->bcc))
		return true;
	rcpts = xcalloc(t->nrcpt ? t->nrcpt : 1, sizeof(*rcpts));
	for (size_t i = 0; i < t->nrcpt; i++)
		rcpts[i] = t->rcpt[i].orig;
	errbuf_clear(&err);
	rc = bcc_expand(j->bcc, j->resolve, t->sender, rcpts, t->nrcpt,
			&j->bccs, &err);
	free(rcpts);
	if (rc < 0) {
		snprintf(j->err, sizeof(j->err), "%s", errbuf_str(&err));
		j->failed = true;
		return false;
	}
	for (size_t k = 0; k < j->bccs.n; k++)
		total += j->bccs.res[k].n;
	if (total == 0)
		return true;
	j->out = xrealloc(j->out, (j->nout + total) * sizeof(*j->out));
	for (size_t k = 0; k < j->bccs.n; k++) {
		for (size_t i = 0; i < j->bccs.res[k].n; i++) {
			const struct resolve_dest *d = &j->bccs.res[k].v[i];
			struct dest_out *o;
			size_t m;

			for (m = 0; m < j->nout; m++)
				if (strcmp(j->out[m].addr, d->addr) == 0)
					break;
			if (m < j->nout)
				continue;
			o = &j->out[j->nout++];
			memset(o, 0, sizeof(*o));
			o->addr = d->addr;
			o->orig = j->bccs.orig[k];
			o->maildir = d->maildir;
			o->notify = SMTPD_NOTIFY_NEVER;
			if (d->cls != RESOLVE_CLASS_VIRTUAL || d->maildir == NULL
			    || d->unknown)
				j->direct = false;
		}
	}
	return true;
}

/*
 * header_checks and body_checks (on this worker: tables may block).
 * Returns false when nothing is to be kept (REJECT, lookup failure,
 * DISCARD).
 */
static bool
commit_content_checks(struct commit_job *j)
{
	struct smtpd_txn *t = j->tx;
	struct cleanup_log_ctx lc = commit_log_ctx(j);
	struct cleanup_result r;

	cleanup_checks_run(j->cleanup, t->content.data, t->content.len, &lc,
			   &j->cleaned, &r);
	return commit_apply_checks(j, &r, true);
}

/*
 * cleanup's address rewriting (rewrite.h): the envelope sender, and the
 * address headers when local_header_rewrite_clients says so. A map that
 * cannot answer fails the commit (451), as Postfix's cleanup does.
 */
static bool
commit_rewrite(struct commit_job *j, const char **content, size_t *clen)
{
	struct rewrite_ctx *rw = resolve_rewriter(j->resolve);
	struct errbuf err;
	char *ns = NULL;
	bool changed = false;

	errbuf_clear(&err);
	if (rewrite_envelope(rw, REWRITE_ENV_SENDER, j->tx->sender, &ns,
			     &err) < 0 ||
	    rewrite_headers(rw, rewrite_hdr_mode(rw, j->client_addr,
						 j->in_mynetworks, j->sasl_auth),
			    *content, *clen, &j->rewritten, &changed, &err) < 0) {
		free(ns);
		snprintf(j->err, sizeof(j->err), "address rewriting: %s",
			 errbuf_str(&err));
		j->failed = true;
		return false;
	}
	free(j->tx->sender);
	j->tx->sender = ns;
	if (changed) {
		*content = j->rewritten.data;
		*clen = j->rewritten.len;
	}
	return true;
}

static void
commit_work(void *arg)
{
	struct commit_job *j = arg;
	struct smtpd_txn *t = j->tx;
	struct queue_env env;
	struct errbuf err;
	struct buf text;
	size_t nleft = 0;
	const char *content = t->content.data;
	size_t clen = t->content.len;

	if (j->discard) {
		/* A restriction said DISCARD: claim success, keep nothing. */
		gettimeofday(&j->t_end, NULL);
		return;
	}
	if (!commit_milter_header_checks(j)) {
		gettimeofday(&j->t_end, NULL);
		return;
	}
	if (j->cleanup != NULL && !cleanup_checks_empty(j->cleanup)) {
		if (!commit_content_checks(j)) {
			gettimeofday(&j->t_end, NULL);
			return;
		}
		if (j->cleaned.len > 0) {
			content = j->cleaned.data;
			clen = j->cleaned.len;
		}
	}
	if (!commit_rewrite(j, &content, &clen)) {
		gettimeofday(&j->t_end, NULL);
		return;
	}
	commit_milter_rcpts(j);
	if (t->act.redirect != NULL && !j->failed)
		commit_redirect(j);
	if (!j->failed)
		commit_bcc(j);
	if (j->failed) {
		gettimeofday(&j->t_end, NULL);
		return;
	}
	if (t->act.prepend.n > 0) {
		/* PREPEND headers go on top, before our Received: header. */
		buf_init(&j->prepended, 0);
		for (size_t i = 0; i < t->act.prepend.n; i++)
			buf_printf(&j->prepended, "%s\n", t->act.prepend.v[i]);
		buf_append(&j->prepended, content, clen);
		content = j->prepended.data;
		clen = j->prepended.len;
	}
	buf_init(&text, 0);
	if (j->direct) {
		for (size_t i = 0; i < j->nout; i++) {
			struct dest_out *o = &j->out[i];
			struct deliver_req req = {
				.base = j->st->virtual_mailbox_base,
				.maildir = o->maildir,
				.sender = t->sender,
				.orig_rcpt = j->st->enable_original_recipient
					     ? o->orig : NULL,
				.rcpt = o->addr,
				.content = content,
				.len = clen,
			};
			struct timeval a, b;

			gettimeofday(&a, NULL);
			buf_reset(&text);
			o->st = deliver_maildir(&req, o->dsn, &text);
			gettimeofday(&b, NULL);
			o->seconds = tv_diff(&a, &b);
			o->text = xstrdup(buf_cstr(&text));
			if (o->st != DELIVER_SENT)
				nleft++;
		}
	} else {
		nleft = j->nout;
	}
	buf_free(&text);

	if (j->direct && nleft == j->nout && nleft > 0) {
		size_t nbounce = 0;

		for (size_t i = 0; i < j->nout; i++)
			if (j->out[i].st == DELIVER_BOUNCE)
				nbounce++;
		if (nbounce == j->nout) {
			/*
			 * Every mailbox refused it for good (quota, Sieve
			 * reject, loop): say so at the end of DATA, while the
			 * client is still there, instead of bouncing later.
			 */
			j->rejected = true;
			gettimeofday(&j->t_end, NULL);
			return;
		}
	}
	if (nleft > 0) {
		memset(&env, 0, sizeof(env));
		memcpy(env.id, t->id, sizeof(env.id));
		env.arrival = t->arrival.tv_sec;
		env.arrival_usec = (long)t->arrival.tv_usec;
		env.sender = t->sender;
		env.client_name = j->client_name;
		env.client_addr = j->client_addr;
		env.helo = j->helo;
		env.protocol = j->esmtp ? "ESMTP" : "SMTP";
		env.envid = t->envid;
		env.ret = t->ret;
		env.filter = j->filter ? j->filter	/* header_checks FILTER */
			     : j->st->content_filter;	/* "" = none */
		env.size = (long long)clen;
		env.rcpt = xcalloc(nleft, sizeof(*env.rcpt));
		for (size_t i = 0; i < j->nout; i++) {
			struct dest_out *o = &j->out[i];

			if (j->direct && o->st == DELIVER_SENT)
				continue;
			env.rcpt[env.nrcpt].orig = (char *)o->orig;
			env.rcpt[env.nrcpt].addr = (char *)o->addr;
			env.rcpt[env.nrcpt].orcpt = (char *)o->orcpt;
			env.rcpt[env.nrcpt].notify = o->notify;
			env.rcpt[env.nrcpt].status = QUEUE_RCPT_PENDING;
			env.nrcpt++;
		}
		errbuf_clear(&err);
		if (queue_write(j->qdir, &env, content, clen, j->hold,
				&err) < 0) {
			snprintf(j->err, sizeof(j->err), "%s", errbuf_str(&err));
			/* Destinations already written stay delivered; the
			 * client retries the whole message (at least once). */
			j->failed = true;
		} else {
			/* queue_write picks a fresh ID if the name was taken. */
			memcpy(t->id, env.id, sizeof(t->id));
			j->queued = true;
			if (j->direct) {
				/*
				 * Delivery was just tried and failed for these:
				 * they wait in deferred/ for the next retry.
				 * If that move fails they stay in active/ and
				 * are retried at once: still safe.
				 */
				env.attempts = 1;
				env.next_attempt = time(NULL) +
					(time_t)j->st->minimal_backoff_time;
				if (queue_defer(j->qdir, QUEUE_ACTIVE, &env,
						&err) == 0)
					j->queued = false;
			}
		}
		free(env.rcpt);
	}
	gettimeofday(&j->t_end, NULL);
}

static void
commit_log(struct commit_job *j)
{
	struct smtpd_txn *t = j->tx;
	/*
	 * cleanup, qmgr and virtual are not the listener: as in Postfix, a
	 * per-listener -o syslog_name names only the smtpd lines.
	 */
	const char *name = NULL;
	double delays[4];
	bool all_sent = true;

	if (t->msgid)
		log_write(name, "cleanup", LOG_LVL_INFO, "%s: message-id=%s",
			  t->id, t->msgid);
	if (j->discard) {
		/* header/body_checks log their own discard line */
		if (t->act.discard)
			log_write(name, "cleanup", LOG_LVL_INFO, "%s: discard: %s",
				  t->id, t->act.discard_why ? t->act.discard_why
							    : "DISCARD");
		return;
	}
	if (j->hold && t->act.hold)
		log_write(name, "cleanup", LOG_LVL_INFO, "%s: hold: %s", t->id,
			  t->act.hold_why ? t->act.hold_why : "HOLD");
	if (!j->direct)
		return;		/* the queue manager logs the rest */
	log_write(name, "qmgr", LOG_LVL_INFO,
		  "%s: from=<%s>, size=%zu, nrcpt=%zu (queue active)", t->id,
		  t->sender, t->content.len, j->nout);
	for (size_t i = 0; i < j->nout; i++) {
		struct dest_out *o = &j->out[i];
		const char *status = o->st == DELIVER_SENT ? "sent" : "deferred";

		if (o->st != DELIVER_SENT)
			all_sent = false;
		delays[0] = tv_diff(&t->arrival, &j->t_start);
		delays[1] = 0;
		delays[2] = 0;
		delays[3] = o->seconds;
		delivery_log(name, "virtual", t->id, o->addr, o->orig, "virtual",
			     tv_diff(&t->arrival, &j->t_end), delays, o->dsn,
			     status, o->text);
	}
	if (all_sent)
		log_write(name, "qmgr", LOG_LVL_INFO, "%s: removed", t->id);
}

static void
commit_done(void *arg)
{
	struct commit_job *j = arg;
	struct smtpd_session *s = j->s;
	struct smtpd_txn *t = j->tx;

	if (j->content_reject != NULL) {
		/* header/body_checks REJECT: logged by cleanup, nothing kept */
		if (s->bev != NULL)
			smtpd_session_reply(s, "%s", j->content_reject);
		s->errors++;
	} else if (j->rejected) {
		const struct dest_out *o = &j->out[0];
		int code = strcmp(o->dsn, "5.2.2") == 0 ||
			   strcmp(o->dsn, "5.3.4") == 0 ? 552 : 550;
		char *reply = xasprintf("%d %s <%s>: %s", code, o->dsn,
					o->addr, o->text);

		if (j->st->soft_bounce)
			soft_bounce_reply(reply);	/* logged as sent */
		log_write(j->st->syslog_name, "smtpd", LOG_LVL_INFO,
			  "%s: reject: END-OF-MESSAGE from %s[%s]: %s; "
			  "from=<%s> to=<%s> proto=%s helo=<%s>", t->id,
			  j->client_name, j->client_addr, reply, t->sender,
			  o->orig, j->esmtp ? "ESMTP" : "SMTP", j->helo);
		if (s->bev != NULL)
			smtpd_session_reply(s, "%s", reply);
		free(reply);
		s->errors++;
	} else if (j->failed) {
		log_write(j->st->syslog_name, "smtpd", LOG_LVL_WARNING,
			  "%s: queue file write error: %s", t->id, j->err);
		if (s->bev != NULL)
			smtpd_session_reply(s, "451 4.3.0 Error: queue file "
					    "write error");
		s->errors++;
	} else {
		commit_log(j);
		status_count(STATUS_RECEIVED);
		/* Postfix forgives earlier errors once a message got in. */
		s->errors = 0;
		s->junk = 0;
		if (s->bev != NULL)
			smtpd_session_reply(s, "250 2.0.0 Ok: queued as %s",
					    t->id);
		if (!t->bdat)
			s->cmd_ok[SMTPD_DATA]++;
		if (j->queued && !j->hold && s->l->srv->qmgr != NULL)
			qmgr_enqueued(s->l->srv->qmgr, t->id);
	}
	/* BDAT chunks were counted as they came; DATA counts at its end. */
	if (!t->bdat)
		s->cmd_total[SMTPD_DATA]++;
	for (size_t i = 0; i < j->nout; i++)
		free(j->out[i].text);
	free(j->out);
	resolve_result_free(&j->redirect);
	for (size_t i = 0; i < j->nmres; i++)
		resolve_result_free(&j->mres[i]);
	free(j->mres);
	bcc_list_free(&j->bccs);
	buf_free(&j->prepended);
	buf_free(&j->cleaned);
	buf_free(&j->rewritten);
	free(j->content_reject);
	free(j->filter);
	free(j->client_name);
	free(j->helo);
	smtpd_txn_free(&j->tx);
	free(j);
	smtpd_session_resume(s);
}

void
smtpd_commit(struct smtpd_session *s)
{
	struct commit_job *j = xcalloc(1, sizeof(*j));
	struct smtpd_txn *t = s->tx;
	size_t cap = 0;

	s->tx = NULL;
	j->s = s;
	j->tx = t;
	j->st = &s->l->s;
	j->qdir = s->l->srv->queue_dir;
	memcpy(j->client_addr, s->client_addr, sizeof(j->client_addr));
	j->client_name = xstrdup(s->client_name);
	j->helo = xstrdup(s->helo ? s->helo : "");
	j->esmtp = s->esmtp;
	j->in_mynetworks = s->in_mynetworks;
	j->sasl_auth = s->sasl_authenticated;
	buf_init(&j->rewritten, 0);
	gettimeofday(&j->t_start, NULL);

	/* Final destinations, each once (aliases may fan in). */
	j->direct = transport_is_virtual(j->st);
	for (size_t i = 0; i < t->nrcpt; i++)
		cap += t->rcpt[i].res.n;
	j->out = xcalloc(cap ? cap : 1, sizeof(*j->out));
	for (size_t i = 0; i < t->nrcpt; i++) {
		for (size_t k = 0; k < t->rcpt[i].res.n; k++) {
			const struct resolve_dest *d = &t->rcpt[i].res.v[k];
			size_t m;

			for (m = 0; m < j->nout; m++)
				if (strcmp(j->out[m].addr, d->addr) == 0)
					break;
			if (m < j->nout)
				continue;
			j->out[j->nout].addr = d->addr;
			j->out[j->nout].orig = t->rcpt[i].orig;
			j->out[j->nout].orcpt = t->rcpt[i].orcpt;
			j->out[j->nout].notify = t->rcpt[i].notify;
			j->out[j->nout].maildir = d->maildir;
			if (d->cls != RESOLVE_CLASS_VIRTUAL || d->maildir == NULL ||
			    d->unknown)
				j->direct = false;
			j->nout++;
		}
	}
	j->discard = t->act.discard;
	j->hold = t->act.hold;
	j->resolve = s->l->resolve;
	j->bcc = s->l->bcc;
	buf_init(&j->prepended, 0);
	buf_init(&j->cleaned, 0);
	/* receive_override_options = no_header_body_checks: none here */
	j->cleanup = receive_override_has(j->st->receive_override_options,
					  RECV_OVR_NO_HEADER_BODY_CHECKS)
		     ? NULL : &s->l->cleanup;
	if (j->hold)
		j->direct = false;	/* held mail waits in hold/ */
	if (s->bev != NULL)
		bufferevent_disable(s->bev, EV_READ);
	worker_submit(s->l->srv->pool, commit_work, commit_done, j);
}
