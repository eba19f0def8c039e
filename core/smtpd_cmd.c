/*
 * smtpd_cmd.c - split an SMTP command line into verb and argument, and
 * parse the arguments of MAIL, RCPT, BDAT and HELO/EHLO with their ESMTP
 * parameters (RFC 1870, 6152, 3030, 6531, 3461, 4954, 6533).
 * Must not: keep session state, do I/O, or accept a parameter twice.
 * Replies are static strings, except "555 5.5.4 Unsupported option: NAME",
 * which lives in a per-thread buffer valid until the next call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"
#include "core/smtpd_cmd.h"

#define XTEXT_MAX  1000		/* decoded ENVID/AUTH/ORCPT values */
#define ENVID_MAX  100		/* RFC 3461 4.4 */
#define SIZE_DIGITS 18		/* fits a long long */

static const struct {
	const char     *name;
	enum smtpd_verb verb;
} verbs[] = {
	{ "helo", SMTPD_HELO }, { "ehlo", SMTPD_EHLO },
	{ "mail", SMTPD_MAIL }, { "rcpt", SMTPD_RCPT },
	{ "data", SMTPD_DATA }, { "bdat", SMTPD_BDAT },
	{ "rset", SMTPD_RSET }, { "noop", SMTPD_NOOP },
	{ "quit", SMTPD_QUIT }, { "vrfy", SMTPD_VRFY },
	{ "expn", SMTPD_EXPN }, { "help", SMTPD_HELP },
	{ "starttls", SMTPD_STARTTLS }, { "auth", SMTPD_AUTH },
	{ "etrn", SMTPD_ETRN }, { "xclient", SMTPD_XCLIENT },
	{ "xforward", SMTPD_XFORWARD },
};

void
smtpd_cmd_parse(const char *line, size_t len, struct smtpd_cmd *cmd,
		size_t *arg_len_r)
{
	size_t vlen = 0, i, a, e;

	cmd->verb = SMTPD_UNKNOWN;
	cmd->name = "unknown";
	cmd->arg = "";
	if (arg_len_r)
		*arg_len_r = 0;
	if (line == NULL)
		return;
	while (vlen < len && line[vlen] != ' ' && line[vlen] != '\t')
		vlen++;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].name) == vlen &&
		    strncasecmp(line, verbs[i].name, vlen) == 0) {
			cmd->verb = verbs[i].verb;
			cmd->name = verbs[i].name;
			break;
		}
	}
	/* The argument: after the verb and one separator, trailing blanks trimmed. */
	a = vlen < len ? vlen + 1 : len;
	e = len;
	while (e > a && (line[e - 1] == ' ' || line[e - 1] == '\t'))
		e--;
	cmd->arg = line + a;
	if (arg_len_r)
		*arg_len_r = e - a;
}

/* Case-insensitive prefix match on a bounded string. */
static int
has_prefix(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && strncasecmp(s, prefix, n) == 0;
}

static int
eq_ci(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * RFC 3461 4: xtext = *( xchar / hexchar ), xchar = %d33-126 except '+'
 * and '=', hexchar = "+" 2HEXDIG. Decoded bytes must be printable ASCII
 * (32..126): nothing downstream wants control characters in a DSN.
 * Returns an owned string or NULL.
 */
static char *
xtext_decode(const char *s, size_t len, size_t max)
{
	struct buf b;
	size_t i;
	int hi, lo, c;

	buf_init(&b, max);
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '+') {
			if (i + 2 >= len)
				goto bad;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				goto bad;
			c = hi * 16 + lo;
			i += 2;
		} else if (c < 33 || c > 126 || c == '=')
			goto bad;
		if (c < 32 || c > 126)
			goto bad;
		if (buf_putc(&b, c) < 0)
			goto bad;
	}
	return buf_steal(&b);
bad:
	buf_free(&b);
	return NULL;
}

/* Appends the UTF-8 encoding of cp; -1 if cp is not a scalar value or a control. */
static int
utf8_put(struct buf *b, unsigned long cp)
{
	unsigned char u[4];
	size_t n;

	if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return -1;
	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | (cp >> 18));
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(b, u, n);
}

/* Well-formed UTF-8 (RFC 3629): no overlongs, surrogates, > U+10FFFF. */
static bool
utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k, j;
	unsigned long cp;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf) {
			k = 2;
			cp = p[i] & 0x1f;
		} else if (p[i] >= 0xe0 && p[i] <= 0xef) {
			k = 3;
			cp = p[i] & 0x0f;
		} else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
			k = 4;
			cp = p[i] & 0x07;
		} else
			return false;
		if (n - i < k)
			return false;
		for (j = 1; j < k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + j] & 0x3f);
		}
		if ((k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
		    (cp >= 0x80 && cp <= 0x9f))
			return false;
		i += k;
	}
	return true;
}

/*
 * RFC 6533 3: utf-8-addr-xtext / utf-8-addr-unitext: QCHAR (printable
 * ASCII except '+', '=', '\\', or raw UTF-8) and "\x{HEX}" escapes. The
 * xtext "+HH" form is also decoded, for senders that mix the two.
 */
static char *
utf8text_decode(const char *s, size_t len, size_t max)
{
	struct buf b;
	size_t i, j;
	unsigned long cp;
	int c, hi, lo;

	buf_init(&b, max);
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '\\') {
			if (i + 3 >= len || s[i + 1] != 'x' || s[i + 2] != '{')
				goto bad;
			cp = 0;
			for (j = i + 3; j < len && s[j] != '}'; j++) {
				if (hexval((unsigned char)s[j]) < 0 || j - i > 9)
					goto bad;
				cp = cp * 16 + (unsigned long)hexval((unsigned char)s[j]);
			}
			if (j >= len || j == i + 3 || utf8_put(&b, cp) < 0)
				goto bad;
			i = j;
		} else if (c == '+') {
			if (i + 2 >= len)
				goto bad;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0 || utf8_put(&b, (unsigned long)(hi * 16 + lo)) < 0)
				goto bad;
			i += 2;
		} else if (c == '=' || c < 33 || c == 127) {
			goto bad;
		} else if (buf_putc(&b, c) < 0)
			goto bad;
	}
	if (b.len == 0 || !utf8_valid(buf_cstr(&b), b.len))
		goto bad;
	return buf_steal(&b);
bad:
	buf_free(&b);
	return NULL;
}

static _Thread_local char unsupported_reply[128];

/* "555 5.5.4 Unsupported option: NAME", NAME reduced to printable ASCII. */
static const char *
reply_unsupported(const char *name, size_t len)
{
	static const char pfx[] = "555 5.5.4 Unsupported option: ";
	size_t o = sizeof(pfx) - 1, i;

	memcpy(unsupported_reply, pfx, o);
	for (i = 0; i < len && o + 1 < sizeof(unsupported_reply); i++) {
		unsigned char c = (unsigned char)name[i];
		unsupported_reply[o++] = (c > 32 && c < 127) ? (char)c : '?';
	}
	unsupported_reply[o] = '\0';
	return unsupported_reply;
}

/* One ESMTP parameter as written: keyword [ "=" value ]. */
struct param {
	const char *kw;
	size_t      kwlen;
	const char *val;	/* NULL when there is no "=" */
	size_t      vlen;
};

/*
 * Iterates over the parameters after the path (RFC 5321 4.1.2
 * Mail-parameters: esmtp-param *(SP esmtp-param)). Several spaces are
 * tolerated. Returns 1 with *pm filled, 0 at the end, -1 on bad syntax.
 */
static int
param_next(const char **pp, const char *end, struct param *pm)
{
	const char *p = *pp, *s;
	size_t i;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p >= end) {
		*pp = p;
		return 0;
	}
	s = p;
	while (p < end && *p != ' ' && *p != '\t')
		p++;
	*pp = p;
	pm->kw = s;
	pm->val = NULL;
	pm->vlen = 0;
	for (i = 0; s + i < p && s[i] != '='; i++)
		;
	pm->kwlen = i;
	if (s + i < p) {
		pm->val = s + i + 1;
		pm->vlen = (size_t)(p - pm->val);
	}
	/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
	if (pm->kwlen == 0 || pm->kwlen > 64)
		return -1;
	for (i = 0; i < pm->kwlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || (c == '-' && i > 0)))
			return -1;
	}
	/* esmtp-value = 1*(%d33-60 / %d62-126 / UTF8-non-ascii): no '=' inside
	 * is not required by every client, so only controls and NUL are refused. */
	if (pm->val) {
		if (pm->vlen == 0)
			return -1;
		for (i = 0; i < pm->vlen; i++) {
			unsigned char c = (unsigned char)pm->val[i];
			if (c < 33 || c == 127)
				return -1;
		}
	}
	return 1;
}

static void
mail_init(struct smtpd_mail_args *m)
{
	memset(m, 0, sizeof(*m));
	m->size = -1;
	m->body = SMTPD_BODY_NONE;
}

void
smtpd_mail_args_free(struct smtpd_mail_args *m)
{
	if (m == NULL)
		return;
	addr_free(&m->addr);
	xfree(&m->ret);
	xfree(&m->envid);
	xfree(&m->auth);
}

void
smtpd_rcpt_args_free(struct smtpd_rcpt_args *r)
{
	if (r == NULL)
		return;
	addr_free(&r->addr);
	xfree(&r->orcpt);
	xfree(&r->vrfy_arg);
}

/*
 * "FROM:" / "TO:" then the path. Returns the position after the prefix and
 * the spaces that non-strict mode allows, or NULL.
 */
static const char *
path_start(const char *arg, size_t len, const char *prefix, bool strict)
{
	const char *p = arg, *end = arg + len;

	if (!strict)
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
	if (!has_prefix(p, (size_t)(end - p), prefix))
		return NULL;
	p += strlen(prefix);
	if (!strict)
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
	/* RFC 5321 4.1.1.2: no space between the colon and the path. */
	if (p >= end || *p == ' ' || *p == '\t')
		return NULL;
	return p;
}

static int
parse_size(const char *v, size_t n, long long *r)
{
	long long x = 0;
	size_t i;

	if (v == NULL || n == 0 || n > SIZE_DIGITS)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	*r = x;
	return 0;
}

int
smtpd_cmd_mail(const char *arg, size_t len, bool strict,
	       struct smtpd_mail_args *m, const char **reply_r)
{
	const char *p, *end, *rest, *err;
	struct param pm;
	unsigned flags = ADDR_P_ALLOW_NULL | (strict ? ADDR_P_STRICT : 0);
	int rc;

	mail_init(m);
	if (arg == NULL || (p = path_start(arg, len, "FROM:", strict)) == NULL) {
		*reply_r = "501 5.5.4 Syntax: MAIL FROM:<address>";
		return -1;
	}
	end = arg + len;
	if (addr_parse_path(p, (size_t)(end - p), flags, &m->addr, &rest, &err) < 0) {
		*reply_r = "501 5.1.7 Bad sender address syntax";
		return -1;
	}
	while ((rc = param_next(&rest, end, &pm)) > 0) {
		if (eq_ci(pm.kw, pm.kwlen, "SIZE")) {
			long long sz;
			if (m->size >= 0) {
				*reply_r = "501 5.5.4 Duplicate SIZE parameter";
				goto fail;
			}
			if (parse_size(pm.val, pm.vlen, &sz) < 0) {
				*reply_r = "501 5.5.4 Bad message size syntax";
				goto fail;
			}
			m->size = sz;
		} else if (eq_ci(pm.kw, pm.kwlen, "BODY")) {
			if (m->body != SMTPD_BODY_NONE) {
				*reply_r = "501 5.5.4 Duplicate BODY parameter";
				goto fail;
			}
			if (pm.val && eq_ci(pm.val, pm.vlen, "7BIT"))
				m->body = SMTPD_BODY_7BIT;
			else if (pm.val && eq_ci(pm.val, pm.vlen, "8BITMIME"))
				m->body = SMTPD_BODY_8BITMIME;
			else if (pm.val && eq_ci(pm.val, pm.vlen, "BINARYMIME"))
				m->body = SMTPD_BODY_BINARYMIME;
			else {
				*reply_r = "501 5.5.4 Unsupported BODY parameter";
				goto fail;
			}
		} else if (eq_ci(pm.kw, pm.kwlen, "SMTPUTF8")) {
			if (m->smtputf8) {
				*reply_r = "501 5.5.4 Duplicate SMTPUTF8 parameter";
				goto fail;
			}
			if (pm.val) {
				*reply_r = "501 5.5.4 Bad SMTPUTF8 parameter syntax";
				goto fail;
			}
			m->smtputf8 = true;
		} else if (eq_ci(pm.kw, pm.kwlen, "RET")) {
			if (m->ret) {
				*reply_r = "501 5.5.4 Duplicate RET parameter";
				goto fail;
			}
			if (pm.val && eq_ci(pm.val, pm.vlen, "FULL"))
				m->ret = xstrdup("FULL");
			else if (pm.val && eq_ci(pm.val, pm.vlen, "HDRS"))
				m->ret = xstrdup("HDRS");
			else {
				*reply_r = "501 5.5.4 Bad RET parameter syntax";
				goto fail;
			}
		} else if (eq_ci(pm.kw, pm.kwlen, "ENVID")) {
			if (m->envid) {
				*reply_r = "501 5.5.4 Duplicate ENVID parameter";
				goto fail;
			}
			if (pm.val == NULL ||
			    (m->envid = xtext_decode(pm.val, pm.vlen, ENVID_MAX)) == NULL ||
			    m->envid[0] == '\0') {
				*reply_r = "501 5.5.4 Bad ENVID parameter syntax";
				goto fail;
			}
		} else if (eq_ci(pm.kw, pm.kwlen, "AUTH")) {
			/* RFC 4954 5: AUTH=xtext-encoded mailbox or "<>". */
			if (m->auth) {
				*reply_r = "501 5.5.4 Duplicate AUTH parameter";
				goto fail;
			}
			if (pm.val == NULL ||
			    (m->auth = xtext_decode(pm.val, pm.vlen, XTEXT_MAX)) == NULL ||
			    m->auth[0] == '\0') {
				*reply_r = "501 5.5.4 Bad AUTH parameter syntax";
				goto fail;
			}
		} else {
			*reply_r = reply_unsupported(pm.kw, pm.kwlen);
			goto fail;
		}
	}
	if (rc < 0) {
		*reply_r = "501 5.5.4 Bad MAIL parameter syntax";
		goto fail;
	}
	/* RFC 6531 3.4: a UTF-8 sender needs the SMTPUTF8 parameter. */
	if (m->addr.utf8 && !m->smtputf8) {
		*reply_r = "553 5.6.7 Must declare SMTPUTF8 to send unicode address";
		goto fail;
	}
	return 0;
fail:
	smtpd_mail_args_free(m);
	mail_init(m);
	return -1;
}

/* NOTIFY = "NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ) (RFC 3461 4.1) */
static int
parse_notify(const char *v, size_t n, unsigned *r)
{
	const char *p, *e, *s;
	unsigned bits = 0;

	if (v == NULL || n == 0)
		return -1;
	p = v;
	e = v + n;
	if (eq_ci(v, n, "NEVER")) {
		*r = SMTPD_NOTIFY_NEVER;
		return 0;
	}
	while (p < e) {
		s = p;
		while (p < e && *p != ',')
			p++;
		if (eq_ci(s, (size_t)(p - s), "SUCCESS"))
			bits |= SMTPD_NOTIFY_SUCCESS;
		else if (eq_ci(s, (size_t)(p - s), "FAILURE"))
			bits |= SMTPD_NOTIFY_FAILURE;
		else if (eq_ci(s, (size_t)(p - s), "DELAY"))
			bits |= SMTPD_NOTIFY_DELAY;
		else
			return -1;	/* includes NEVER in a list, empty items */
		if (p < e) {
			p++;
			if (p == e)
				return -1;
		}
	}
	*r = bits;
	return 0;
}

/* ORCPT = addr-type ";" xtext (RFC 3461 4.2); rfc822 or utf-8 (RFC 6533). */
static char *
parse_orcpt(const char *v, size_t n)
{
	const char *semi;
	char *dec, *res;

	if (v == NULL || (semi = memchr(v, ';', n)) == NULL)
		return NULL;
	if (eq_ci(v, (size_t)(semi - v), "rfc822")) {
		dec = xtext_decode(semi + 1, n - (size_t)(semi + 1 - v), XTEXT_MAX);
		if (dec == NULL)
			return NULL;
		res = xasprintf("rfc822;%s", dec);
	} else if (eq_ci(v, (size_t)(semi - v), "utf-8")) {
		dec = utf8text_decode(semi + 1, n - (size_t)(semi + 1 - v), XTEXT_MAX);
		if (dec == NULL)
			return NULL;
		res = xasprintf("utf-8;%s", dec);
	} else
		return NULL;
	if (dec[0] == '\0') {
		free(dec);
		free(res);
		return NULL;
	}
	free(dec);
	return res;
}

int
smtpd_cmd_rcpt(const char *arg, size_t len, bool strict, bool utf8_ok,
	       struct smtpd_rcpt_args *r, const char **reply_r)
{
	const char *p, *end, *rest, *err;
	struct param pm;
	unsigned flags = ADDR_P_ALLOW_NODOM | (strict ? ADDR_P_STRICT : 0);
	bool have_notify = false;
	int rc;

	memset(r, 0, sizeof(*r));
	if (arg == NULL || (p = path_start(arg, len, "TO:", strict)) == NULL) {
		*reply_r = "501 5.5.4 Syntax: RCPT TO:<address>";
		return -1;
	}
	end = arg + len;
	if (addr_parse_path(p, (size_t)(end - p), flags, &r->addr, &rest, &err) < 0) {
		*reply_r = "501 5.1.3 Bad recipient address syntax";
		return -1;
	}
	while ((rc = param_next(&rest, end, &pm)) > 0) {
		if (eq_ci(pm.kw, pm.kwlen, "NOTIFY")) {
			if (have_notify) {
				*reply_r = "501 5.5.4 Duplicate NOTIFY parameter";
				goto fail;
			}
			if (parse_notify(pm.val, pm.vlen, &r->notify) < 0) {
				*reply_r = "501 5.5.4 Bad NOTIFY parameter syntax";
				goto fail;
			}
			have_notify = true;
		} else if (eq_ci(pm.kw, pm.kwlen, "ORCPT")) {
			if (r->orcpt) {
				*reply_r = "501 5.5.4 Duplicate ORCPT parameter";
				goto fail;
			}
			if ((r->orcpt = parse_orcpt(pm.val, pm.vlen)) == NULL) {
				*reply_r = "501 5.5.4 Bad ORCPT parameter syntax";
				goto fail;
			}
		} else {
			*reply_r = reply_unsupported(pm.kw, pm.kwlen);
			goto fail;
		}
	}
	if (rc < 0) {
		*reply_r = "501 5.5.4 Bad RCPT parameter syntax";
		goto fail;
	}
	if (r->addr.utf8 && !utf8_ok) {
		*reply_r = "553 5.6.7 Must declare SMTPUTF8 to send unicode address";
		goto fail;
	}
	return 0;
fail:
	smtpd_rcpt_args_free(r);
	memset(r, 0, sizeof(*r));
	return -1;
}

/* RFC 3030 2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] */
int
smtpd_cmd_bdat(const char *arg, size_t len, struct smtpd_bdat_args *b,
	       const char **reply_r)
{
	const char *p, *end, *s;
	static const char syn[] = "501 5.5.4 Syntax: BDAT count [LAST]";

	b->size = 0;
	b->last = false;
	if (arg == NULL) {
		*reply_r = syn;
		return -1;
	}
	p = arg;
	end = arg + len;
	while (p < end && *p == ' ')
		p++;
	s = p;
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	if (parse_size(s, (size_t)(p - s), &b->size) < 0) {
		*reply_r = syn;
		return -1;
	}
	if (p < end && *p != ' ') {
		*reply_r = syn;
		return -1;
	}
	while (p < end && *p == ' ')
		p++;
	if (p < end) {
		if (!eq_ci(p, (size_t)(end - p), "LAST")) {
			*reply_r = syn;
			return -1;
		}
		b->last = true;
	}
	return 0;
}

/* Postfix accepts any non-empty HELO/EHLO argument; restrictions judge it. */
int
smtpd_cmd_helo(const char *arg, size_t len, const char **reply_r)
{
	size_t i;

	if (arg != NULL)
		for (i = 0; i < len; i++)
			if (arg[i] != ' ' && arg[i] != '\t')
				return 0;
	*reply_r = "501 5.5.4 Syntax: EHLO hostname";
	return -1;
}
