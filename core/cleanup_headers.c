/*
 * cleanup_headers.c - header_checks, mime_header_checks,
 * nested_header_checks and body_checks (and the SMTP client's
 * smtp_header_checks / smtp_body_checks): the message is walked line by
 * line through core/mime_walk.c; each logical header (continuation lines
 * kept, as Postfix's cleanup passes them) goes to the table of its class,
 * each other line up to body_checks_size_limit to body_checks, and the
 * action of the first match is applied and logged as Postfix's cleanup
 * (or smtp) does.
 * Must not: run on the event loop (tables may block), answer 5xx for a
 * lookup failure, or look up keys longer than TABLE_KEY_MAX (they are
 * truncated for the lookup). A header longer than header_size_limit
 * loses its excess, as in Postfix; nothing else is truncated.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/table.h"
#include "core/cleanup_headers.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/mime_walk.h"
#include "core/params.h"

#define LOG_CONTENT_MAX 200	/* Postfix logs %.200s of the line */
#define LOG_SMTP_CONTENT_MAX 60	/* its smtp(8) %.60s */

enum act { ACT_KEEP, ACT_DROP };

struct run {
	const struct cleanup_checks  *c;
	const struct cleanup_log_ctx *lc;
	struct cleanup_result        *r;
	struct buf                   *out;
	bool                          stop;	/* REJECT/DISCARD/lookup error */
	long long                     body_seen;	/* body_checks_size_limit */
};

static int
open_one(struct table_list **tl, const char *name, const char *value,
	 struct errbuf *err)
{
	struct errbuf why;

	errbuf_clear(&why);
	*tl = NULL;
	if (value == NULL || value[0] == '\0')
		return 0;
	*tl = table_list_open(value, 0, &why);
	if (*tl == NULL) {
		errbuf_set(err, "%s: %s", name, errbuf_str(&why));
		return -1;
	}
	return 0;
}

int
cleanup_checks_open(struct cleanup_checks *c, const struct settings *s,
		    struct errbuf *err)
{
	memset(c, 0, sizeof(*c));
	c->body_limit = s->body_checks_size_limit;
	c->header_limit = s->header_size_limit;
	c->nesting_limit = s->mime_nesting_limit;
	c->boundary_limit = s->mime_boundary_length_limit;
	c->mime_on = !s->disable_mime_input_processing;
	if (s->strict_8bitmime || s->strict_7bit_headers)
		c->mime_check |= MIME_WALK_ERR_8BIT_HDR;
	if (s->strict_8bitmime || s->strict_8bitmime_body)
		c->mime_check |= MIME_WALK_ERR_8BIT_BODY;
	if (s->strict_mime_encoding_domain)
		c->mime_check |= MIME_WALK_ERR_DOMAIN;
	/* Postfix reports nesting when any of these is set */
	c->mime_nesting = c->mime_check != 0 ||
			  (s->header_checks && *s->header_checks) ||
			  (s->mime_header_checks && *s->mime_header_checks) ||
			  (s->nested_header_checks && *s->nested_header_checks);
	if (open_one(&c->header, "header_checks", s->header_checks, err) < 0 ||
	    open_one(&c->body, "body_checks", s->body_checks, err) < 0)
		goto fail;
	/* the default "$header_checks": the same tables */
	if (s->mime_header_checks != NULL && s->header_checks != NULL &&
	    strcmp(s->mime_header_checks, s->header_checks) == 0)
		c->mime = c->header;
	else if (open_one(&c->mime, "mime_header_checks",
			  s->mime_header_checks, err) < 0)
		goto fail;
	if (s->nested_header_checks != NULL && s->header_checks != NULL &&
	    strcmp(s->nested_header_checks, s->header_checks) == 0)
		c->nested = c->header;
	else if (s->nested_header_checks != NULL &&
		 s->mime_header_checks != NULL &&
		 strcmp(s->nested_header_checks, s->mime_header_checks) == 0)
		c->nested = c->mime;
	else if (open_one(&c->nested, "nested_header_checks",
			  s->nested_header_checks, err) < 0)
		goto fail;
	return 0;
fail:
	cleanup_checks_free(c);
	return -1;
}

static int
open_client(struct cleanup_checks *c, const struct settings *s, bool lmtp,
	    struct errbuf *err)
{
	memset(c, 0, sizeof(*c));
	c->smtp = true;
	c->lmtp = lmtp;
	/* as Postfix's smtp(8): MIME headers and attached messages' headers
	 * belong to smtp_mime/nested_header_checks, part headers are not
	 * body lines */
	c->mime_on = true;
	c->body_limit = s->body_checks_size_limit;
	c->header_limit = s->header_size_limit;
	c->nesting_limit = s->mime_nesting_limit;
	c->boundary_limit = s->mime_boundary_length_limit;
	if (open_one(&c->header, lmtp ? "lmtp_header_checks" :
		     "smtp_header_checks", lmtp ? s->lmtp_header_checks :
		     s->smtp_header_checks, err) < 0 ||
	    open_one(&c->mime, lmtp ? "lmtp_mime_header_checks" :
		     "smtp_mime_header_checks", lmtp ? s->lmtp_mime_header_checks
		     : s->smtp_mime_header_checks, err) < 0 ||
	    open_one(&c->nested, lmtp ? "lmtp_nested_header_checks" :
		     "smtp_nested_header_checks", lmtp ?
		     s->lmtp_nested_header_checks : s->smtp_nested_header_checks,
		     err) < 0 ||
	    open_one(&c->body, lmtp ? "lmtp_body_checks" : "smtp_body_checks",
		     lmtp ? s->lmtp_body_checks : s->smtp_body_checks,
		     err) < 0) {
		cleanup_checks_free(c);
		return -1;
	}
	return 0;
}

int
cleanup_checks_open_smtp(struct cleanup_checks *c, const struct settings *s,
			 struct errbuf *err)
{
	return open_client(c, s, false, err);
}

int
cleanup_checks_open_lmtp(struct cleanup_checks *c, const struct settings *s,
			 struct errbuf *err)
{
	return open_client(c, s, true, err);
}

void
cleanup_checks_free(struct cleanup_checks *c)
{
	if (c->nested != NULL && c->nested != c->header && c->nested != c->mime)
		table_list_free(&c->nested);
	if (c->mime != NULL && c->mime != c->header)
		table_list_free(&c->mime);
	c->nested = c->mime = NULL;
	if (c->header)
		table_list_free(&c->header);
	if (c->body)
		table_list_free(&c->body);
}

static bool
on(const struct table_list *tl)
{
	return tl != NULL && !table_list_empty(tl);
}

bool
cleanup_checks_empty(const struct cleanup_checks *c)
{
	return !on(c->header) && !on(c->body) &&
	       !(c->mime_on && (on(c->mime) || on(c->nested) ||
				c->mime_check != 0));
}

void
cleanup_result_free(struct cleanup_result *r)
{
	free(r->reject);
	free(r->redirect);
	free(r->filter);
	memset(r, 0, sizeof(*r));
}

/* At most max bytes of p[0..n), control bytes and DEL as '?' (log lines). */
static void
put_visible(struct buf *b, const char *p, size_t n, size_t max)
{
	for (size_t i = 0; i < n && i < max; i++) {
		unsigned char ch = (unsigned char)p[i];

		buf_putc(b, ch < ' ' || ch == 0x7f ? '?' : ch);
	}
}

/* " from NAME[ADDR];" or " from local;" (Postfix's cleanup log lines). */
static void
put_origin(struct buf *b, const struct cleanup_log_ctx *lc)
{
	if (lc->client_name != NULL)
		buf_printf(b, " from %s[%s];", lc->client_name,
			   lc->client_addr ? lc->client_addr : "unknown");
	else
		buf_puts(b, " from local;");
}

/* "ID: ACTION: CLASS LINE from ORIGIN; from=<s> to=<r> proto=P helo=<h>[: TEXT]" */
static void
act_log(struct run *rn, const char *action, const char *cls,
	const char *line, size_t n, const char *text)
{
	const struct cleanup_log_ctx *lc = rn->lc;
	struct buf b;

	buf_init(&b, 0);
	buf_printf(&b, "%s: %s: %s ", lc->queue_id ? lc->queue_id : "NOQUEUE",
		   action, cls);
	if (rn->c->smtp) {
		/* Postfix's smtp(8): "ID: ACTION: CLASS %.60s[: TEXT]" */
		put_visible(&b, line, n, LOG_SMTP_CONTENT_MAX);
		if (text != NULL && *text)
			buf_printf(&b, ": %s", text);
		log_write(lc->syslog_name, rn->c->lmtp ? "lmtp" : "smtp",
			  LOG_LVL_INFO, "%s", buf_cstr(&b));
		buf_free(&b);
		return;
	}
	put_visible(&b, line, n, LOG_CONTENT_MAX);
	put_origin(&b, lc);
	if (lc->sender != NULL)
		buf_printf(&b, " from=<%s>", lc->sender);
	if (lc->rcpt != NULL)
		buf_printf(&b, " to=<%s>", lc->rcpt);
	if (lc->proto != NULL)
		buf_printf(&b, " proto=%s", lc->proto);
	if (lc->helo != NULL)
		buf_printf(&b, " helo=<%s>", lc->helo);
	if (text != NULL && *text)
		buf_printf(&b, ": %s", text);
	log_write(NULL, "cleanup", LOG_LVL_INFO, "%s", buf_cstr(&b));
	buf_free(&b);
}

/* "d.ddd.ddd" followed by a blank or the end (Postfix dsn_valid()). */
static size_t
dsn_len(const char *t)
{
	size_t i = 0, k;

	if (t[0] < '2' || t[0] > '5' || t[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		for (k = 0; isdigit((unsigned char)t[i + k]) && k < 3; k++)
			;
		if (k == 0)
			return 0;
		i += k;
		if (part == 0) {
			if (t[i] != '.')
				return 0;
			i++;
		}
	}
	return t[i] == '\0' || t[i] == ' ' || t[i] == '\t' ? i : 0;
}

static void
do_reject(struct run *rn, const char *cls, const char *line, size_t n,
	  const char *text)
{
	struct buf reason;
	const char *code;

	buf_init(&reason, 0);
	if (*text == '\0')
		buf_puts(&reason, "5.7.1 message content rejected");
	else if (dsn_len(text) > 0)
		buf_puts(&reason, text);
	else
		buf_printf(&reason, "5.7.1 %s", text);
	if (reason.data[0] != '4' && reason.data[0] != '5') {
		log_write(NULL, "cleanup", LOG_LVL_WARNING,
			  "bad DSN action in %s -- need 4.x.x or 5.x.x", text);
		reason.data[0] = '4';
	}
	code = reason.data[0] == '4' ? "451" : "550";
	act_log(rn, "reject", cls, line, n, buf_cstr(&reason));
	free(rn->r->reject);
	rn->r->reject = xasprintf("%s %s", code, buf_cstr(&reason));
	buf_free(&reason);
	rn->stop = true;
}

/* Applies one table result to a header or body line (without its LF). */
static enum act
apply(struct run *rn, const char *map, const char *cls, bool hdr,
      const char *line, size_t n, const char *value)
{
	size_t cl = strcspn(value, " \t");
	const char *text = value + cl;

	while (*text == ' ' || *text == '\t')
		text++;
#define IS(w) (cl == sizeof(w) - 1 && strncasecmp(value, w, cl) == 0)
	if (rn->c->smtp && !(IS("WARN") || IS("INFO") || IS("IGNORE") ||
			     IS("REPLACE") || IS("PREPEND") || IS("DUNNO") ||
			     IS("OK"))) {
		/* the SMTP client cannot change the delivery's fate */
		log_write(rn->lc->syslog_name, rn->c->lmtp ? "lmtp" : "smtp",
			  LOG_LVL_WARNING, "unsupported command in %s map: %.*s",
			  map, (int)cl, value);
		return ACT_KEEP;
	}
	if (IS("REJECT")) {
		do_reject(rn, cls, line, n, text);
		return ACT_KEEP;
	}
	if (IS("DISCARD")) {
		act_log(rn, "discard", cls, line, n, text);
		rn->r->discard = true;
		rn->stop = true;
		return ACT_KEEP;
	}
	if (IS("WARN")) {
		act_log(rn, "warning", cls, line, n, text);
		return ACT_KEEP;
	}
	if (IS("INFO")) {
		act_log(rn, "info", cls, line, n, text);
		return ACT_KEEP;
	}
	if (IS("HOLD")) {
		if (!rn->r->hold && !rn->r->discard) {
			act_log(rn, "hold", cls, line, n, text);
			rn->r->hold = true;
		}
		return ACT_KEEP;
	}
	if (IS("IGNORE")) {
		rn->r->modified = true;
		return ACT_DROP;
	}
	if (IS("DUNNO") || IS("OK"))
		return ACT_KEEP;
	if (IS("REDIRECT")) {
		if (*text == '\0')
			log_write(NULL, "cleanup", LOG_LVL_WARNING,
				  "REDIRECT action without text in %s map", map);
		else if (strchr(text, '@') == NULL)
			log_write(NULL, "cleanup", LOG_LVL_WARNING,
				  "bad REDIRECT target \"%s\" in %s map, need "
				  "user@domain", text, map);
		else {
			free(rn->r->redirect);
			rn->r->redirect = xstrdup(text);
			act_log(rn, "redirect", cls, line, n, text);
		}
		return ACT_KEEP;
	}
	if (IS("FILTER")) {
		/* Postfix: transport:destination, the last one wins */
		if (*text == '\0' || strchr(text, ':') == NULL ||
		    text[0] == ':') {
			log_write(NULL, "cleanup", LOG_LVL_WARNING,
				  "bad FILTER action text \"%s\" in %s map, "
				  "need transport:destination", text, map);
		} else {
			free(rn->r->filter);
			rn->r->filter = xstrdup(text);
			act_log(rn, "filter", cls, line, n, text);
		}
		return ACT_KEEP;
	}
	if (IS("PREPEND") || IS("REPLACE")) {
		bool replace = IS("REPLACE");
		const char *name = replace ? "REPLACE" : "PREPEND";

		if (*text == '\0') {
			log_write(NULL, "cleanup", LOG_LVL_WARNING,
				  "%s action without text in %s map", name, map);
			return ACT_KEEP;
		}
		if (hdr && !mime_walk_is_header(text, strlen(text))) {
			log_write(NULL, "cleanup", LOG_LVL_WARNING,
				  "bad %s header text \"%s\" in %s map -- need "
				  "\"headername: headervalue\"", name, text, map);
			return ACT_KEEP;
		}
		act_log(rn, replace ? "replace" : "prepend", cls, line, n, text);
		buf_printf(rn->out, "%s\n", text);
		rn->r->modified = true;
		return replace ? ACT_DROP : ACT_KEEP;
	}
#undef IS
	log_write(NULL, "cleanup", LOG_LVL_WARNING,
		  "unknown command in %s map: %s", map, value);
	return ACT_KEEP;
}

/* Looks up one line (key: its first kn bytes) and applies its action;
 * the caller copies the line to out on ACT_KEEP. */
static enum act
check_line(struct run *rn, struct table_list *tl, const char *map,
	   const char *cls, bool hdr, const char *line, size_t n, size_t kn)
{
	struct buf key, value;
	struct errbuf err;
	enum table_status st;
	enum act a = ACT_KEEP;

	buf_init(&key, 0);
	buf_init(&value, 0);
	errbuf_clear(&err);
	if (kn > TABLE_KEY_MAX)
		kn = TABLE_KEY_MAX;
	buf_append(&key, line, kn);
	st = table_list_lookup(tl, buf_cstr(&key), &value, &err, NULL);
	if (st == TABLE_FOUND) {
		a = apply(rn, map, cls, hdr, line, n, buf_cstr(&value));
	} else if (st != TABLE_NOTFOUND) {
		log_write(NULL, "cleanup", LOG_LVL_WARNING,
			  "%s: %s map lookup problem -- message not accepted, "
			  "try again later: %s", rn->lc->queue_id ?
			  rn->lc->queue_id : "NOQUEUE", map, errbuf_str(&err));
		free(rn->r->reject);
		rn->r->reject = xstrdup("451 4.3.0 Error: queue file write error");
		rn->stop = true;
	}
	buf_free(&key);
	buf_free(&value);
	return a;
}

/* mime_walk callbacks: each header or line is checked, then copied to
 * out unless its action dropped it. */
static void
walk_header(void *arg, enum mime_hdr_class cls, bool is_mime,
	    const char *text, size_t len, bool nl, bool trunc)
{
	struct run *rn = arg;
	const struct cleanup_checks *c = rn->c;
	struct table_list *tl = c->header;
	const char *map = c->lmtp ? "lmtp_header_checks" :
			  c->smtp ? "smtp_header_checks" : "header_checks";

	if (rn->stop)
		return;
	if (c->mime_on && (is_mime || cls == MIME_HDR_MULTIPART)) {
		tl = c->mime;
		map = c->lmtp ? "lmtp_mime_header_checks" :
		      c->smtp ? "smtp_mime_header_checks" : "mime_header_checks";
	} else if (c->mime_on && cls == MIME_HDR_NESTED) {
		tl = c->nested;
		map = c->lmtp ? "lmtp_nested_header_checks" :
		      c->smtp ? "smtp_nested_header_checks"
			      : "nested_header_checks";
	}
	if (trunc)
		rn->r->modified = true;	/* the excess is dropped, as Postfix */
	if (on(tl) && check_line(rn, tl, map, "header", true, text, len,
				 len) != ACT_KEEP)
		return;
	buf_append(rn->out, text, len);
	if (nl)
		buf_putc(rn->out, '\n');
}

static void
walk_header_end(void *arg, enum mime_hdr_class cls, const char *line,
		size_t len, bool nl)
{
	struct run *rn = arg;

	(void)cls;
	buf_append(rn->out, line, len);
	if (nl)
		buf_putc(rn->out, '\n');
}

static void
walk_body(void *arg, const char *line, size_t len, bool nl)
{
	struct run *rn = arg;
	const struct cleanup_checks *c = rn->c;
	bool keep = true;

	if (rn->stop)
		return;
	if (on(c->body) &&
	    (c->body_limit <= 0 || rn->body_seen < c->body_limit)) {
		keep = check_line(rn, c->body, c->lmtp ? "lmtp_body_checks" :
				  c->smtp ? "smtp_body_checks" : "body_checks",
				  "body", false, line, len, len) == ACT_KEEP;
		rn->body_seen += (long long)len + 1;
	}
	if (keep) {
		buf_append(rn->out, line, len);
		if (nl)
			buf_putc(rn->out, '\n');
	}
}

/* "ID: reject: mime-error TEXT: LINE from ORIGIN; from=<s> to=<r>" and
 * 550 5.6.0 TEXT, as Postfix's cleanup. */
static void
walk_error(void *arg, unsigned err, const char *text, size_t len)
{
	struct run *rn = arg;
	const struct cleanup_log_ctx *lc = rn->lc;
	const char *what = mime_walk_error_text(err);
	struct buf b;

	if (rn->stop || err == MIME_WALK_ERR_TRUNC_HDR ||
	    (err == MIME_WALK_ERR_NESTING && !rn->c->mime_nesting))
		return;
	buf_init(&b, 0);
	buf_printf(&b, "%s: reject: mime-error %s: ", lc->queue_id ?
		   lc->queue_id : "NOQUEUE", what);
	put_visible(&b, text, len, 100);
	put_origin(&b, lc);
	buf_printf(&b, " from=<%s> to=<%s>", lc->sender ? lc->sender : "",
		   lc->rcpt ? lc->rcpt : "unknown");
	log_write(NULL, "cleanup", LOG_LVL_INFO, "%s", buf_cstr(&b));
	buf_free(&b);
	free(rn->r->reject);
	rn->r->reject = xasprintf("550 5.6.0 %s", what);
	rn->stop = true;
}

static const struct mime_walk_cb walk_cb = {
	.header = walk_header,
	.header_end = walk_header_end,
	.body = walk_body,
	.error = walk_error,
};

void
cleanup_checks_run(const struct cleanup_checks *c, const char *content,
		   size_t len, const struct cleanup_log_ctx *lc,
		   struct buf *out, struct cleanup_result *r)
{
	struct run rn = { .c = c, .lc = lc, .r = r, .out = out };
	struct mime_walk *w;
	size_t pos = 0;
	struct mime_walk_opts o = {
		.header_limit = c->header_limit > 0 ? (size_t)c->header_limit : 0,
		.nesting_limit = c->nesting_limit > 0 ? (unsigned)(c->nesting_limit
				 > 100000 ? 100000 : c->nesting_limit) : 0,
		.boundary_limit = c->boundary_limit > 0
				  ? (size_t)c->boundary_limit : 0,
		.no_mime = !c->mime_on,
		.check = c->mime_check,
	};

	memset(r, 0, sizeof(*r));
	buf_reset(out);
	w = mime_walk_new(&o, &walk_cb, &rn);
	while (pos < len && !rn.stop) {
		const char *nl = memchr(content + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (content + pos)) : len - pos;

		mime_walk_line(w, content + pos, n, nl != NULL);
		pos += n + (nl ? 1 : 0);
	}
	if (!rn.stop)
		mime_walk_end(w);
	mime_walk_free(&w);
	if (rn.stop || !r->modified) {
		buf_reset(out);
		r->modified = false;
	}
}
