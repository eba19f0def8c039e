/*
 * smtpd_data_check.c - runs smtpd_data_restrictions at DATA/BDAT time,
 * and smtpd_end_of_data_restrictions after the content's end (DATA's dot,
 * BDAT LAST), before the message is committed: a refusal there means
 * nothing is delivered or queued.
 * The facts are copied into the job so a worker never reads the session;
 * the verdict comes back on the loop, where the session either goes on
 * (354 / first chunk) or gets the 4xx/5xx reply and keeps its transaction
 * (as Postfix: a refused DATA does not reset the envelope).
 * Must not: block the loop, or let content in before the verdict.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/smtpd_ccert.h"
#include "core/smtpd_check.h"
#include "core/smtpd_data_check.h"
#include "core/smtpd_listener.h"
#include "core/smtpd_session.h"
#include "core/worker.h"

struct data_job {
	struct smtpd_session       *s;
	void                      (*proceed)(struct smtpd_session *);
	void                      (*refuse)(struct smtpd_session *, const char *);
	struct smtpd_check_facts    f;
	struct smtpd_check_actions  act;
	struct buf                  reply;
	enum smtpd_check_result     verdict;
	int                         eod;	/* end of data, not DATA */
	/* copies of what the facts point to */
	char                       *helo, *sender, *sasl_username, *queue_id;
	char                        client_addr[INET6_ADDRSTRLEN];
	char                        instance[48];
};

static void
data_eval(void *arg)
{
	struct data_job *j = arg;

	if (j->eod)
		j->verdict = smtpd_check_eod(&j->s->l->checks, &j->f,
					     &j->reply, &j->act);
	else
		j->verdict = smtpd_check_data(&j->s->l->checks, &j->f,
					      &j->reply, &j->act);
}

/* 1 when the session was handed to the commit (end of data passed):
 * the commit resumes it then, not this job. */
static int
data_finish(struct data_job *j)
{
	struct smtpd_session *s = j->s;

	if (j->verdict == SMTPD_CHECK_REJECT || j->verdict == SMTPD_CHECK_DEFER) {
		log_write(s->l->s.syslog_name, "smtpd", LOG_LVL_INFO,
			  "%s: reject: %s from %s[%s]: %s; from=<%s> proto=%s "
			  "helo=<%s>", s->tx->id[0] ? s->tx->id : "NOQUEUE",
			  j->eod ? "END-OF-MESSAGE" :
			  s->tx->bdat_started ? "BDAT" : "DATA",
			  s->client_name, s->client_addr, buf_cstr(&j->reply),
			  s->tx->sender, s->esmtp ? "ESMTP" : "SMTP",
			  s->helo ? s->helo : "");
		j->refuse(s, buf_cstr(&j->reply));
		return 0;
	}
	smtpd_check_actions_merge(&s->tx->act, &j->act);
	j->proceed(s);
	return j->eod;
}

static void
data_job_free(struct data_job *j)
{
	smtpd_check_actions_free(&j->act);
	buf_free(&j->reply);
	free(j->helo);
	free(j->sender);
	free(j->sasl_username);
	free(j->queue_id);
	free(j);
}

static void
data_done(void *arg)
{
	struct data_job *j = arg;
	struct smtpd_session *s = j->s;
	int handed = 0;

	if (s->bev != NULL && !s->closing && s->tx != NULL)
		handed = data_finish(j);
	data_job_free(j);
	if (!handed)
		smtpd_session_resume(s);
}

static void
check_start(struct smtpd_session *s, int eod,
	    void (*proceed)(struct smtpd_session *),
	    void (*refuse)(struct smtpd_session *, const char *))
{
	struct data_job *j;

	if (smtpd_check_empty(eod ? s->l->checks.eod : s->l->checks.data)) {
		proceed(s);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->eod = eod;
	j->s = s;
	j->proceed = proceed;
	j->refuse = refuse;
	buf_init(&j->reply, 0);
	smtpd_check_actions_init(&j->act);
	memcpy(j->client_addr, s->client_addr, sizeof(j->client_addr));
	j->helo = s->helo ? xstrdup(s->helo) : NULL;
	j->sender = xstrdup(s->tx->sender);
	j->sasl_username = s->sasl_username ? xstrdup(s->sasl_username) : NULL;
	j->queue_id = xstrdup(s->tx->id);
	j->f.in_mynetworks = s->in_mynetworks;
	j->f.sasl_authenticated = s->sasl_authenticated;
	smtpd_ccert_facts(s, &j->f);
	j->f.esmtp = s->esmtp;
	j->f.client_addr = j->client_addr;
	j->f.tls_active = s->tls_up;
	j->f.client_name = s->client_name;
	j->f.reverse_client_name = s->reverse_client_name;
	j->f.name_status = s->name_status;
	j->f.reverse_name_status = s->reverse_name_status;
	j->f.helo = j->helo;
	j->f.sender = j->sender;
	j->f.where = eod ? "END-OF-MESSAGE" : "DATA";
	/* the policy "instance" of the transaction, as at RCPT
	 * (smtpd_commit.c): a policy server ties RCPT, DATA and
	 * END-OF-MESSAGE together by it */
	snprintf(j->instance, sizeof(j->instance), "%lx.%lx",
		 (unsigned long)getpid(), (unsigned long)(uintptr_t)s->tx);
	j->f.instance = j->instance;
	j->f.size = eod ? s->tx->size : 0;
	j->f.queue_id = j->queue_id;
	j->f.sasl_method = s->sasl_method;
	j->f.sasl_username = j->sasl_username;
	j->f.rcpt_count = (unsigned)s->tx->nrcpt;
	j->f.unauth_pipelining = s->ill_pipelining;
	j->f.syslog_name = s->l->s.syslog_name;
	j->f.resolve = s->l->resolve;

	if (!smtpd_check_lists_blocking(&s->l->checks)) {
		data_eval(j);
		(void)data_finish(j);
		data_job_free(j);
		return;
	}
	s->busy = 1;
	bufferevent_disable(s->bev, EV_READ);
	worker_submit(s->l->srv->pool, data_eval, data_done, j);
}

void
smtpd_data_check(struct smtpd_session *s, void (*proceed)(struct smtpd_session *),
		 void (*refuse)(struct smtpd_session *, const char *))
{
	check_start(s, 0, proceed, refuse);
}

void
smtpd_eod_check(struct smtpd_session *s, void (*proceed)(struct smtpd_session *),
		void (*refuse)(struct smtpd_session *, const char *))
{
	check_start(s, 1, proceed, refuse);
}
