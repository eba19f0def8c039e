/*
 * cleanup_headers.c - header_checks and body_checks: each logical header
 * (continuation lines kept, as Postfix's cleanup passes them) and each body
 * line up to body_checks_size_limit is looked up, and the action of the
 * first match is applied and logged as Postfix's cleanup does.
 * Must not: run on the event loop (tables may block), answer 5xx for a
 * lookup failure, or look up keys longer than TABLE_KEY_MAX (they are
 * truncated for the lookup; the message itself is never truncated).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/table.h"
#include "core/cleanup_headers.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/params.h"

#define LOG_CONTENT_MAX 200	/* Postfix logs %.200s of the line */

enum act { ACT_KEEP, ACT_DROP };

struct run {
	const struct cleanup_checks  *c;
	const struct cleanup_log_ctx *lc;
	struct cleanup_result        *r;
	struct buf                   *out;
	bool                          stop;	/* REJECT/DISCARD/lookup error */
};

int
cleanup_checks_open(struct cleanup_checks *c, const struct settings *s,
		    struct errbuf *err)
{
	struct errbuf why;

	memset(c, 0, sizeof(*c));
	c->body_limit = s->body_checks_size_limit;
	c->header_limit = s->header_size_limit;
	errbuf_clear(&why);
	if (s->header_checks != NULL && s->header_checks[0] != '\0') {
		c->header = table_list_open(s->header_checks, 0, &why);
		if (c->header == NULL) {
			errbuf_set(err, "header_checks: %s", errbuf_str(&why));
			return -1;
		}
	}
	if (s->body_checks != NULL && s->body_checks[0] != '\0') {
		c->body = table_list_open(s->body_checks, 0, &why);
		if (c->body == NULL) {
			errbuf_set(err, "body_checks: %s", errbuf_str(&why));
			cleanup_checks_free(c);
			return -1;
		}
	}
	return 0;
}

void
cleanup_checks_free(struct cleanup_checks *c)
{
	if (c->header)
		table_list_free(&c->header);
	if (c->body)
		table_list_free(&c->body);
}

bool
cleanup_checks_empty(const struct cleanup_checks *c)
{
	return (c->header == NULL || table_list_empty(c->header)) &&
	       (c->body == NULL || table_list_empty(c->body));
}

void
cleanup_result_free(struct cleanup_result *r)
{
	free(r->reject);
	free(r->redirect);
	memset(r, 0, sizeof(*r));
}

/* Postfix's is_header(): "name:" with printable non-colon name bytes,
 * optionally followed by blanks before the colon. */
static bool
is_header(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && p[i] > ' ' && p[i] < 0x7f && p[i] != ':')
		i++;
	if (i == 0)
		return false;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < n && p[i] == ':';
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
	for (size_t i = 0; i < n && i < LOG_CONTENT_MAX; i++) {
		unsigned char ch = (unsigned char)line[i];

		buf_putc(&b, ch < ' ' || ch == 0x7f ? '?' : ch);
	}
	if (lc->client_name != NULL)
		buf_printf(&b, " from %s[%s];", lc->client_name,
			   lc->client_addr ? lc->client_addr : "unknown");
	else
		buf_puts(&b, " from local;");
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
	if (IS("PREPEND") || IS("REPLACE")) {
		bool replace = IS("REPLACE");
		const char *name = replace ? "REPLACE" : "PREPEND";

		if (*text == '\0') {
			log_write(NULL, "cleanup", LOG_LVL_WARNING,
				  "%s action without text in %s map", name, map);
			return ACT_KEEP;
		}
		if (hdr && !is_header(text, strlen(text))) {
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

void
cleanup_checks_run(const struct cleanup_checks *c, const char *content,
		   size_t len, const struct cleanup_log_ctx *lc,
		   struct buf *out, struct cleanup_result *r)
{
	struct run rn = { .c = c, .lc = lc, .r = r, .out = out };
	size_t pos = 0, body_start;
	bool hdr_on = c->header != NULL && !table_list_empty(c->header);
	bool body_on = c->body != NULL && !table_list_empty(c->body);

	memset(r, 0, sizeof(*r));
	buf_reset(out);
	/* Headers: up to the empty line or the first line that is not one. */
	while (pos < len && !rn.stop) {
		const char *p = content + pos;
		const char *nl = memchr(p, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - p) : len - pos;
		size_t end;

		if (n == 0 || !is_header(p, n))
			break;
		/* The logical header: continuation lines start with a blank. */
		end = pos + n + (nl ? 1 : 0);
		while (end < len && (content[end] == ' ' || content[end] == '\t')) {
			const char *q = memchr(content + end, '\n', len - end);

			end = q ? (size_t)(q - content) + 1 : len;
		}
		n = end - pos;
		if (n > 0 && content[end - 1] == '\n')
			n--;
		if (hdr_on) {
			/* Postfix looks at header_size_limit bytes at most. */
			size_t kn = c->header_limit > 0 &&
				    (long long)n > c->header_limit
				    ? (size_t)c->header_limit : n;

			if (check_line(&rn, c->header, "header_checks", "header",
				       true, p, n, kn) == ACT_KEEP)
				buf_append(out, p, end - pos);
		} else {
			buf_append(out, p, end - pos);
		}
		pos = end;
	}
	if (rn.stop) {
		buf_reset(out);
		r->modified = false;
		return;
	}
	/* The empty line between headers and body is not a body line. */
	if (pos < len && content[pos] == '\n') {
		buf_putc(out, '\n');
		pos++;
	}
	body_start = pos;
	while (body_on && pos < len && !rn.stop) {
		const char *p = content + pos;
		const char *nl = memchr(p, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - p) : len - pos;

		if (c->body_limit > 0 && (long long)(pos - body_start) >= c->body_limit)
			break;
		if (check_line(&rn, c->body, "body_checks", "body", false, p, n,
			       n) == ACT_KEEP)
			buf_append(out, p, n + (nl ? 1 : 0));
		pos += n + (nl ? 1 : 0);
	}
	if (rn.stop) {
		buf_reset(out);
		r->modified = false;
		return;
	}
	buf_append(out, content + pos, len - pos);
	if (!r->modified)
		buf_reset(out);
}
