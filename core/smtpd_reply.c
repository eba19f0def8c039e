/*
 * smtpd_reply.c - replies shaped by the SMTP server's knobs: the reject
 * footer ($client_address, $client_name, $reverse_client_name,
 * $localtime, $server_name / $myhostname, $service), the EHLO keyword
 * discarding (logged as Postfix does unless silent-discard), and
 * smtpd_forbidden_commands.
 * Must not: change session state other than s->ehlo_discard, or block
 * (the EHLO maps are looked up on the loop: cheap tables only).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/smtpd_footer.h"
#include "core/smtpd_knobs.h"
#include "core/smtpd_listener.h"
#include "core/smtpd_notify.h"
#include "core/smtpd_reply.h"
#include "core/smtpd_session.h"
#include "core/soft_bounce.h"


struct footer_ctx {
	struct smtpd_session *s;
	char                  when[64];
};

static const char *
footer_var(const char *name, void *arg)
{
	struct footer_ctx *x = arg;
	struct smtpd_session *s = x->s;

	if (strcmp(name, "client_address") == 0)
		return s->client_addr;
	if (strcmp(name, "client_name") == 0)
		return s->client_name ? s->client_name : "unknown";
	if (strcmp(name, "reverse_client_name") == 0)
		return s->reverse_client_name ? s->reverse_client_name
					      : "unknown";
	if (strcmp(name, "server_name") == 0 || strcmp(name, "myhostname") == 0)
		return s->l->s.myhostname;
	if (strcmp(name, "service") == 0 || strcmp(name, "service_name") == 0)
		return s->l->service;
	if (strcmp(name, "localtime") == 0) {
		time_t now = time(NULL);
		struct tm tm;

		if (x->when[0] == '\0' && localtime_r(&now, &tm) != NULL)
			strftime(x->when, sizeof(x->when), "%b %e %H:%M:%S", &tm);
		return x->when;
	}
	return NULL;
}

static void
notify(struct smtpd_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smtpd_notify_vreply(s, fmt, ap);
	va_end(ap);
}

bool
smtpd_reply_footer_on(const struct smtpd_session *s)
{
	return *smtpd_knobs_footer(s->l->checks.knobs) != '\0';
}

void
smtpd_reply_vsend(struct smtpd_session *s, const char *fmt, va_list ap)
{
	struct evbuffer *out;
	const char *footer;
	struct buf b;
	struct footer_ctx x;
	va_list aq;

	if (s->bev == NULL)
		return;
	out = bufferevent_get_output(s->bev);
	footer = smtpd_knobs_footer(s->l->checks.knobs);
	if (*footer == '\0') {
		va_copy(aq, ap);
		smtpd_notify_vreply(s, fmt, aq);	/* notify_classes transcript */
		va_end(aq);
		evbuffer_add_vprintf(out, fmt, ap);
		evbuffer_add(out, "\r\n", 2);
		return;
	}
	buf_init(&b, 0);	/* server text: bounded by its formats */
	buf_vprintf(&b, fmt, ap);
	memset(&x, 0, sizeof(x));
	x.s = s;
	smtpd_footer_apply(&b, footer, footer_var, &x);
	if (s->l->s.soft_bounce && b.data != NULL)
		soft_bounce_reply(b.data);	/* every line 5xx -> 4xx */
	notify(s, "%s", buf_cstr(&b));
	evbuffer_add(out, buf_cstr(&b), b.len);
	evbuffer_add(out, "\r\n", 2);
	buf_free(&b);
}

/* Postfix's answer when it cannot tell which EHLO features to announce. */
static bool
ehlo_data_error(struct smtpd_session *s, const char *what, struct buf *why)
{
	log_write(s->l->s.syslog_name, "smtpd", LOG_LVL_WARNING, "%s",
		  buf_cstr(why));
	log_write(s->l->s.syslog_name, "smtpd", LOG_LVL_WARNING,
		  "don't know %s %s[%s]", what, s->client_name, s->client_addr);
	smtpd_session_reply(s, "421 4.3.0 %s Server local data error",
			    s->l->s.myhostname);
	buf_free(why);
	return false;
}

bool
smtpd_reply_ehlo(struct smtpd_session *s)
{
	const char *r = s->ssl ? s->l->ehlo_reply_tls : s->l->ehlo_reply;
	struct buf warn, names;
	char *own = NULL;
	unsigned hide;
	int exc = 0;

	buf_init(&warn, 0);
	if (smtpd_knobs_ehlo_mask(s->l->checks.knobs, s->client_addr,
				  &s->ehlo_discard, &warn) < 0)
		return ehlo_data_error(s, "what EHLO features to announce to",
				       &warn);
	if (s->l->passdb != NULL && !(s->ehlo_discard & SMTPD_EHLO_AUTH) &&
	    (exc = smtpd_knobs_sasl_exception(s->l->checks.knobs,
					      s->client_addr, &warn)) < 0)
		return ehlo_data_error(s, "if EHLO feature AUTH should be "
				       "announced to", &warn);
	buf_free(&warn);
	hide = s->ehlo_discard & ~(unsigned)SMTPD_EHLO_SILENT;
	buf_init(&names, 0);
	if (hide) {
		own = smtpd_knobs_ehlo_filter(r, hide, &names);
		r = own;
	}
	if (names.len && !(s->ehlo_discard & SMTPD_EHLO_SILENT))
		log_write(s->l->s.syslog_name, "smtpd", LOG_LVL_INFO,
			  "discarding EHLO keywords: %s", buf_cstr(&names));
	buf_free(&names);
	if (exc == 1) {
		char *own2 = smtpd_knobs_ehlo_filter(r, SMTPD_EHLO_AUTH, NULL);

		free(own);
		own = own2;
		r = own;
	}
	evbuffer_add(bufferevent_get_output(s->bev), r, strlen(r));
	smtpd_notify_raw(s, r);
	free(own);
	return true;
}

bool
smtpd_reply_forbidden(struct smtpd_session *s, const char *line, size_t len)
{
	size_t vlen = 0;

	while (vlen < len && line[vlen] != ' ' && line[vlen] != '\t')
		vlen++;
	if (!smtpd_knobs_forbidden(s->l->checks.knobs, line, vlen))
		return false;
	{
		char shown[101];
		size_t n = len < sizeof(shown) - 1 ? len : sizeof(shown) - 1;

		memcpy(shown, line, n);
		shown[n] = '\0';
		for (char *p = shown; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		log_write(s->l->s.syslog_name, "smtpd", LOG_LVL_WARNING,
			  "non-SMTP command from %s[%s]: %s", s->client_name,
			  s->client_addr, shown);
	}
	smtpd_session_reply(s, "221 2.7.0 Error: I can break rules, too. "
			    "Goodbye.");
	return true;
}
