/*
 * postscreen_smtp.c - postscreen's dummy SMTP engine: after the full 220
 * greeting it watches the after-220 tests (command pipelining where
 * PIPELINING was not offered, non-SMTP commands such as CONNECT/GET/POST
 * or header lines, bare newlines) and answers with Postfix's postscreen
 * replies. No mail is ever accepted here: at RCPT a client under an
 * "enforce" verdict gets its 550, a client that passed every test gets
 * "450 4.3.2 Service currently unavailable" and is remembered, so its next
 * connection goes straight to smtpd (PASS OLD), as with Postfix.
 * STARTTLS is offered with the listener's certificate (what Postfix's
 * tlsproxy does for postscreen), so clients that insist on TLS can pass.
 * Must not: accept mail, let a line grow past PS_LINE_MAX, or outlive
 * its connection (ps_conn_done frees it).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "core/lib/xmalloc.h"
#include "core/postscreen_int.h"
#include "core/smtpd_listener.h"
#include "core/tls.h"

#define PS_LINE_MAX	2048
#define PS_INPUT_MAX	(64 * 1024)

static void smtp_read(struct bufferevent *bev, void *arg);

static void
reply(struct ps_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
reply(struct ps_conn *c, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* Sends what is queued, then closes (smtp_write sees the empty buffer).
 * Callers queue a reply first, so c is never freed here. */
static void
close_after_reply(struct ps_conn *c)
{
	bufferevent_disable(c->bev, EV_READ);
	c->ncmds = (unsigned)-1;	/* marks "closing" */
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		ps_log(c, "DISCONNECT [%s]:%s", c->addr, c->port);
		ps_conn_done(c);
	}
}

static bool
is_closing(const struct ps_conn *c)
{
	return c->ncmds == (unsigned)-1;
}

static void smtp_event(struct bufferevent *bev, short what, void *arg);
static void smtp_write(struct bufferevent *bev, void *arg);

/* The 220 to STARTTLS is out: the same socket goes on inside TLS (the
 * listener's certificate), where the tests go on (RFC 3207: state reset,
 * input sent ahead of the handshake discarded). */
static void
tls_switch(struct ps_conn *c)
{
	SSL *ssl;
	struct timeval tv;

	c->tls_pending = false;
	bufferevent_free(c->bev);
	c->bev = NULL;
	free(c->helo);
	c->helo = NULL;
	free(c->sender);
	c->sender = NULL;
	ssl = tls_server_ssl(c->ps->l->tls);
	if (ssl != NULL)
		c->bev = bufferevent_openssl_socket_new(c->ps->l->srv->base,
							c->fd, ssl,
							BUFFEREVENT_SSL_ACCEPTING,
							BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		if (ssl != NULL)
			SSL_free(ssl);
		ps_log(c, "DISCONNECT [%s]:%s", c->addr, c->port);
		ps_conn_done(c);
		return;
	}
	c->fd = -1;		/* closed with the bufferevent (and SSL) */
	c->in_tls = true;
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, smtp_read, smtp_write, smtp_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, PS_INPUT_MAX);
	tv.tv_sec = (time_t)c->ps->command_time_limit;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void
smtp_write(struct bufferevent *bev, void *arg)
{
	struct ps_conn *c = arg;

	if (c->tls_pending && !is_closing(c)) {
		tls_switch(c);
		return;
	}
	if (is_closing(c)) {
		ps_log(c, "DISCONNECT [%s]:%s", c->addr, c->port);
		ps_conn_done(c);
	}
}

static void
smtp_event(struct bufferevent *bev, short what, void *arg)
{
	struct ps_conn *c = arg;
	char el[32];

	if (what & BEV_EVENT_CONNECTED)
		return;		/* TLS handshake done */
	if (what & BEV_EVENT_TIMEOUT) {
		ps_log(c, "COMMAND TIME LIMIT from [%s]:%s", c->addr, c->port);
		reply(c, "421 4.4.2 %s Error: timeout exceeded", c->ps->hostname);
		close_after_reply(c);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (!is_closing(c))
			ps_log(c, "HANGUP after %s from [%s]:%s in tests after "
			       "SMTP handshake", ps_elapsed(c, el, sizeof(el)),
			       c->addr, c->port);
		ps_log(c, "DISCONNECT [%s]:%s", c->addr, c->port);
		ps_conn_done(c);
	}
}

void
ps_smtp_start(struct ps_conn *c)
{
	struct timeval tv;

	c->bev = bufferevent_socket_new(c->ps->l->srv->base, c->fd, 0);
	if (c->bev == NULL) {
		ps_conn_done(c);
		return;
	}
	bufferevent_setcb(c->bev, smtp_read, smtp_write, smtp_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, PS_INPUT_MAX);
	tv.tv_sec = (time_t)c->ps->command_time_limit;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	reply(c, "220 %s", c->ps->banner);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

void
ps_smtp_free(struct ps_conn *c)
{
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	free(c->helo);
	c->helo = NULL;
	free(c->sender);
	c->sender = NULL;
}

/* A failed after-220 test: log, then act. Returns false when closed. */
static bool
violation(struct ps_conn *c, enum ps_test t, enum ps_action act,
	  const char *drop_reply)
{
	c->failed[t] = true;
	c->todo[t] = false;
	switch (act) {
	case PS_DROP:
		reply(c, "%s", drop_reply);
		close_after_reply(c);
		return false;
	case PS_ENFORCE:
		ps_set_enforce(c, "550 5.5.1 Protocol error");
		break;
	case PS_IGNORE:
		break;
	}
	return true;
}

static void
noqueue(struct ps_conn *c, const char *rep, const char *rcpt)
{
	ps_log(c, "NOQUEUE: reject: RCPT from [%s]:%s: %s; from=<%s>, to=<%s>, "
	       "proto=%s, helo=<%s>", c->addr, c->port, rep,
	       c->sender ? c->sender : "", rcpt, c->helo && c->helo[0] == 'E'
	       ? "ESMTP" : "SMTP", c->helo ? c->helo + 1 : "");
}

/* The address inside "TO:<...>" / "FROM:<...>", bounded. */
static char *
path_arg(const char *arg)
{
	const char *lt = strchr(arg, '<'), *gt;

	if (lt == NULL) {
		const char *colon = strchr(arg, ':');
		size_t n;

		arg = colon ? colon + 1 : arg;
		while (*arg == ' ')
			arg++;
		n = strcspn(arg, " ");
		return xstrndup(arg, n < 256 ? n : 256);
	}
	gt = strchr(lt, '>');
	if (gt == NULL)
		gt = lt + strlen(lt);
	return xstrndup(lt + 1, (size_t)(gt - lt - 1) < 256
			? (size_t)(gt - lt - 1) : 256);
}

static void
do_rcpt(struct ps_conn *c, const char *arg)
{
	char *rcpt;
	time_t now = time(NULL);
	struct postscreen *ps = c->ps;

	if (c->sender == NULL) {
		reply(c, "503 5.5.1 Error: need MAIL command");
		return;
	}
	rcpt = path_arg(arg);
	if (c->enforce_reply != NULL) {
		reply(c, "%s", c->enforce_reply);
		noqueue(c, c->enforce_reply, rcpt);
		free(rcpt);
		return;
	}
	/* Every after-220 test under way is passed (or failed with
	 * "ignore", which Postfix does not repeat either). */
	if (ps->pipe_enable && c->pass[PS_T_PIPE] <= now)
		c->pass[PS_T_PIPE] = now + (time_t)ps->pipe_ttl;
	if (ps->nsmtp_enable && c->pass[PS_T_NSMTP] <= now)
		c->pass[PS_T_NSMTP] = now + (time_t)ps->nsmtp_ttl;
	if (ps->barenl_enable && c->pass[PS_T_BARENL] <= now)
		c->pass[PS_T_BARENL] = now + (time_t)ps->barenl_ttl;
	ps_cache_update(c);
	if (!c->veto && ps_all_passed(c, now))
		ps_log(c, "PASS NEW [%s]:%s", c->addr, c->port);
	reply(c, "450 4.3.2 Service currently unavailable");
	noqueue(c, "450 4.3.2 Service currently unavailable", rcpt);
	free(rcpt);
}

/* A header-like first word ("Host:", "User-Agent:") is not SMTP. */
static bool
non_smtp(const struct postscreen *ps, const char *verb, size_t vlen)
{
	char v[32];

	if (vlen > 1 && verb[vlen - 1] == ':')
		return true;
	if (vlen >= sizeof(v))
		return false;
	for (size_t i = 0; i < vlen; i++)
		v[i] = (char)toupper((unsigned char)verb[i]);
	v[vlen] = '\0';
	return strlist_contains(&ps->forbidden, v) != 0;
}

static void
command(struct ps_conn *c, const char *line, const char *verb, size_t vlen)
{
	const char *arg = verb + vlen;

	while (*arg == ' ')
		arg++;
#define IS(name) (vlen == sizeof(name) - 1 && strncasecmp(verb, name, vlen) == 0)
	if (c->ps->l->tls_level == TLS_LEVEL_ENCRYPT && !c->in_tls &&
	    (IS("MAIL") || IS("RCPT") || IS("DATA") || IS("BDAT"))) {
		reply(c, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (IS("EHLO")) {
		free(c->helo);
		c->helo = xasprintf("E%.*s", 255, arg);
		reply(c, "250-%s", c->ps->hostname);
		reply(c, "250-SIZE");
		if (c->ps->l->tls != NULL && !c->in_tls)
			reply(c, "250-STARTTLS");
		reply(c, "250-ENHANCEDSTATUSCODES");
		reply(c, "250-8BITMIME");
		reply(c, "250 DSN");
	} else if (IS("HELO")) {
		free(c->helo);
		c->helo = xasprintf("H%.*s", 255, arg);
		reply(c, "250 %s", c->ps->hostname);
	} else if (IS("MAIL") && c->ps->helo_required && c->helo == NULL) {
		reply(c, "503 5.5.1 Error: send HELO/EHLO first");
	} else if (IS("MAIL")) {
		free(c->sender);
		c->sender = path_arg(arg);
		reply(c, "250 2.1.0 Ok");
	} else if (IS("RCPT")) {
		do_rcpt(c, arg);
	} else if (IS("DATA") || IS("BDAT")) {
		reply(c, "554 5.5.1 Error: no valid recipients");
	} else if (IS("RSET")) {
		free(c->sender);
		c->sender = NULL;
		reply(c, "250 2.0.0 Ok");
	} else if (IS("NOOP")) {
		reply(c, "250 2.0.0 Ok");
	} else if (IS("QUIT")) {
		reply(c, "221 2.0.0 Bye");
		close_after_reply(c);
	} else if (IS("STARTTLS") && c->ps->l->tls != NULL && !c->in_tls) {
		reply(c, "220 2.0.0 Ready to start TLS");
		c->tls_pending = true;
		bufferevent_disable(c->bev, EV_READ);
	} else if (IS("STARTTLS") && c->in_tls) {
		reply(c, "554 5.5.1 Error: TLS already active");
	} else if (IS("STARTTLS") || IS("AUTH") || IS("VRFY") || IS("ETRN") ||
		   IS("XCLIENT") || IS("XFORWARD")) {
		reply(c, "502 5.5.1 Error: command not implemented");
	} else {
		reply(c, "502 5.5.2 Error: command not recognized");
	}
#undef IS
	(void)line;
}

static void
smtp_read(struct bufferevent *bev, void *arg)
{
	struct ps_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct postscreen *ps = c->ps;

	while (!is_closing(c) && !c->done) {
		struct evbuffer_ptr eol = evbuffer_search(in, "\n", 1, NULL);
		char line[PS_LINE_MAX + 1], shown[120];
		size_t n, vlen;
		bool bare;
		const char *verb;

		if (eol.pos < 0) {
			if (evbuffer_get_length(in) > PS_LINE_MAX) {
				reply(c, "521 5.5.2 %s Error: line too long",
				      ps->hostname);
				close_after_reply(c);
			}
			return;
		}
		n = (size_t)eol.pos;
		if (n > PS_LINE_MAX) {
			evbuffer_drain(in, n + 1);
			reply(c, "500 5.5.2 Error: line too long");
			continue;
		}
		evbuffer_remove(in, line, n + 1);
		bare = n == 0 || line[n - 1] != '\r';
		if (!bare)
			n--;
		line[n] = '\0';
		for (size_t i = 0; i < n && i < 100; i++)
			shown[i] = isprint((unsigned char)line[i]) ? line[i] : '?';
		shown[n < 100 ? n : 100] = '\0';
		if (++c->ncmds > (unsigned)ps->command_count_limit) {
			ps_log(c, "COMMAND COUNT LIMIT from [%s]:%s", c->addr,
			       c->port);
			reply(c, "421 4.7.0 %s Error: too many commands",
			      ps->hostname);
			close_after_reply(c);
			return;
		}
		verb = line;
		while (*verb == ' ')
			verb++;
		vlen = strcspn(verb, " ");

		if (bare && c->todo[PS_T_BARENL]) {
			ps_log(c, "BARE NEWLINE from [%s]:%s after %s", c->addr,
			       c->port, shown);
			if (!violation(c, PS_T_BARENL, ps->barenl_action,
				       "521 5.5.1 Protocol error"))
				return;
		}
		if (c->todo[PS_T_NSMTP] && non_smtp(ps, verb, vlen)) {
			ps_log(c, "NON-SMTP COMMAND from [%s]:%s after %s",
			       c->addr, c->port, shown);
			if (!violation(c, PS_T_NSMTP, ps->nsmtp_action,
				       "521 5.7.0 Error: I can break rules, too. "
				       "Goodbye."))
				return;
		}
		if (c->todo[PS_T_PIPE] && evbuffer_get_length(in) > 0) {
			ps_log(c, "COMMAND PIPELINING from [%s]:%s after %.*s: %s",
			       c->addr, c->port, (int)(vlen < 20 ? vlen : 20),
			       verb, shown);
			if (!violation(c, PS_T_PIPE, ps->pipe_action,
				       "521 5.5.1 Protocol error"))
				return;
		}
		command(c, line, verb, vlen);
	}
}
