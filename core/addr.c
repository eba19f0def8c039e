/*
 * addr.c - RFC 5321 4.1.2 mailbox paths (with RFC 6531 UTF-8): parse a
 * path or a bare mailbox into an unquoted local part and a lowercased
 * domain, and format it back (quoting the local part when needed).
 * Must not: treat '%', '!' or a quoted '@' as routing, accept control
 * characters, NUL or malformed UTF-8, read past len, or do any I/O.
 * Owns nothing after return; struct addr fields belong to the caller.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/addr.h"
#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"

#define DOMAIN_MAX 255
#define LABEL_MAX  63

static const char E_SYNTAX[] = "Syntax error in mailbox address";
static const char E_LONG[]   = "Address too long";
static const char E_UTF8[]   = "Malformed UTF-8 in address";
static const char E_DOMAIN[] = "Syntax error in domain name";
static const char E_LITERAL[] = "Bad address literal";
static const char E_NULL[]   = "Null address not allowed here";
static const char E_NODOM[]  = "Address without domain";
static const char E_BRACKET[] = "Syntax error: <address> required";
static const char E_ROUTE[]  = "Syntax error in source route";

/*
 * Length of the well-formed non-ASCII UTF-8 sequence at p (RFC 3629: no
 * overlongs, no surrogates, nothing above U+10FFFF), or 0. C1 controls
 * (U+0080..U+009F) are refused as the C0 ones are.
 */
static size_t
utf8_seq(const unsigned char *p, const unsigned char *end)
{
	size_t n, i;
	unsigned cp;

	if (p >= end || p[0] < 0x80)
		return 0;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
	    (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return n;
}

/* RFC 5322 3.2.3 atext (ASCII part). */
static int
is_atext(int c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int
is_letdig(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static int
is_ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/*
 * An address literal "[...]" (RFC 5321 4.1.3): IPv4 or "IPv6:" forms,
 * checked with inet_pton. The general form (tag:content) is refused: we
 * can deliver to neither. Appends the canonical spelling to out.
 */
static int
literal_check(const char *s, size_t n, struct buf *out)
{
	char tmp[INET6_ADDRSTRLEN + 8];
	unsigned char bin[sizeof(struct in6_addr)];
	size_t i;

	if (n < 3 || s[0] != '[' || s[n - 1] != ']')
		return -1;
	s++;
	n -= 2;
	/* Only the characters of the two forms: inet_pton stops at a NUL. */
	for (i = 0; i < n; i++)
		if (!is_letdig((unsigned char)s[i]) && s[i] != '.' && s[i] != ':')
			return -1;
	if (n >= 5 && strncasecmp(s, "IPv6:", 5) == 0) {
		if (n - 5 >= sizeof(tmp))
			return -1;
		memcpy(tmp, s + 5, n - 5);
		tmp[n - 5] = '\0';
		if (inet_pton(AF_INET6, tmp, bin) != 1)
			return -1;
		if (buf_puts(out, "[IPv6:") < 0)
			return -1;
		for (i = 0; tmp[i]; i++)
			if (buf_putc(out, is_ascii_lower((unsigned char)tmp[i])) < 0)
				return -1;
		return buf_putc(out, ']');
	}
	if (n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	/* inet_pton(AF_INET) wants exactly four dotted decimals. */
	if (inet_pton(AF_INET, tmp, bin) != 1)
		return -1;
	if (buf_putc(out, '[') < 0 || buf_append(out, tmp, n) < 0)
		return -1;
	return buf_putc(out, ']');
}

/*
 * A domain (RFC 5321 4.1.2 Domain, RFC 6531 U-labels allowed) or address
 * literal in s[0..n). One trailing dot is removed, as Postfix does.
 * Appends the lowercased form to out (may be NULL: check only).
 */
static int
domain_check(const char *s, size_t n, struct buf *out, bool *utf8)
{
	const unsigned char *p = (const unsigned char *)s, *end;
	size_t label = 0, k;
	int last = 0;		/* previous char: 0 start/dot, 1 let-dig, 2 '-' */
	int numeric = 1;	/* current label is all digits */
	struct buf scratch;
	int rc;

	if (n > 0 && s[0] == '[') {
		if (out)
			return literal_check(s, n, out);
		buf_init(&scratch, DOMAIN_MAX + 16);
		rc = literal_check(s, n, &scratch);
		buf_free(&scratch);
		return rc;
	}
	if (n > 1 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > DOMAIN_MAX)
		return -1;
	end = p + n;
	while (p < end) {
		if (*p == '.') {
			if (last != 1)
				return -1;
			last = 0;
			label = 0;
			numeric = 1;
			if (out && buf_putc(out, '.') < 0)
				return -1;
			p++;
			continue;
		}
		if (*p == '-') {
			if (last == 0)
				return -1;
			k = 1;
			last = 2;
			numeric = 0;
		} else if (is_letdig(*p)) {
			k = 1;
			last = 1;
			if (!(*p >= '0' && *p <= '9'))
				numeric = 0;
		} else if ((k = utf8_seq(p, end)) > 0) {
			last = 1;
			numeric = 0;
			if (utf8)
				*utf8 = true;
		} else
			return -1;
		label += k;
		if (label > LABEL_MAX)
			return -1;
		if (out) {
			if (k == 1) {
				if (buf_putc(out, is_ascii_lower(*p)) < 0)
					return -1;
			} else if (buf_append(out, p, k) < 0)
				return -1;
		}
		p += k;
	}
	/* No trailing hyphen; a dotted all-numeric name is an unbracketed IP. */
	if (last != 1)
		return -1;
	if (numeric && memchr(s, '.', n) != NULL)
		return -1;
	return 0;
}

bool
addr_domain_valid(const char *domain)
{
	if (domain == NULL)
		return false;
	return domain_check(domain, strlen(domain), NULL, NULL) == 0;
}

/*
 * Local-part = Dot-string / Quoted-string (RFC 5321 4.1.2; RFC 6531 adds
 * UTF-8 to atext and qtext). Decodes into out. Stops at the first byte
 * that cannot continue the local part. Dots are checked by the caller's
 * leniency: Postfix accepts "a..b" and "a.", so only strict mode refuses.
 */
static int
local_parse(const char **pp, const char *end, bool strict, struct buf *out,
	    bool *utf8, const char **err_r)
{
	const unsigned char *p = (const unsigned char *)*pp;
	const unsigned char *e = (const unsigned char *)end;
	size_t k;
	int prev_dot = 1;

	if (p < e && *p == '"') {
		p++;
		for (;;) {
			if (p >= e) {
				*err_r = E_SYNTAX;
				return -1;
			}
			if (*p == '"') {
				p++;
				break;
			}
			if (*p == '\\') {
				/* quoted-pairSMTP = %d92 %d32-126 */
				if (p + 1 >= e || p[1] < 32 || p[1] > 126) {
					*err_r = E_SYNTAX;
					return -1;
				}
				if (buf_putc(out, p[1]) < 0) {
					*err_r = E_LONG;
					return -1;
				}
				p += 2;
				continue;
			}
			if (*p >= 32 && *p <= 126) {
				if (buf_putc(out, *p) < 0) {
					*err_r = E_LONG;
					return -1;
				}
				p++;
				continue;
			}
			if ((k = utf8_seq(p, e)) == 0) {
				*err_r = *p >= 0x80 ? E_UTF8 : E_SYNTAX;
				return -1;
			}
			*utf8 = true;
			if (buf_append(out, p, k) < 0) {
				*err_r = E_LONG;
				return -1;
			}
			p += k;
		}
		if (out->len == 0) {
			*err_r = E_SYNTAX;
			return -1;
		}
		*pp = (const char *)p;
		return 0;
	}
	while (p < e) {
		if (*p == '.') {
			if (strict && prev_dot) {
				*err_r = E_SYNTAX;
				return -1;
			}
			prev_dot = 1;
			k = 1;
		} else if (is_atext(*p)) {
			prev_dot = 0;
			k = 1;
		} else if (*p >= 0x80) {
			if ((k = utf8_seq(p, e)) == 0) {
				*err_r = E_UTF8;
				return -1;
			}
			*utf8 = true;
			prev_dot = 0;
		} else
			break;
		if (buf_append(out, p, k) < 0) {
			*err_r = E_LONG;
			return -1;
		}
		p += k;
	}
	if (out->len == 0 || (strict && prev_dot)) {
		*err_r = E_SYNTAX;
		return -1;
	}
	*pp = (const char *)p;
	return 0;
}

/* Span of a domain or literal token starting at p: up to a delimiter. */
static const char *
domain_span(const char *p, const char *end)
{
	if (p < end && *p == '[') {
		while (p < end && *p != ']')
			p++;
		return p < end ? p + 1 : p;
	}
	while (p < end && *p != '>' && *p != ' ' && *p != '\t' &&
	       *p != ',' && *p != ':' && *p != '<')
		p++;
	return p;
}

static void
addr_clear(struct addr *a)
{
	a->local = NULL;
	a->domain = NULL;
	a->is_null = false;
	a->utf8 = false;
}

/*
 * Mailbox = Local-part "@" ( Domain / address-literal ), filling a, from
 * s[0..end). The whole range must be consumed. nodom: a local part alone is
 * accepted if it is "postmaster" (RFC 5321 4.5.1).
 */
static int
mailbox_parse(const char *s, const char *end, bool strict, bool nodom,
	      struct addr *a, const char **err_r)
{
	struct buf local, domain;
	const char *p = s, *dend;
	bool utf8 = false;

	buf_init(&local, ADDR_PATH_MAX);
	buf_init(&domain, DOMAIN_MAX + 16);
	if (local_parse(&p, end, strict, &local, &utf8, err_r) < 0)
		goto fail;
	if (p == end) {
		if (!nodom || strcasecmp(buf_cstr(&local), "postmaster") != 0) {
			*err_r = nodom ? E_SYNTAX : E_NODOM;
			goto fail;
		}
	} else {
		if (*p != '@') {
			*err_r = E_SYNTAX;
			goto fail;
		}
		p++;
		dend = domain_span(p, end);
		if (dend != end) {
			*err_r = E_SYNTAX;
			goto fail;
		}
		if (domain_check(p, (size_t)(dend - p), &domain, &utf8) < 0) {
			*err_r = (p < end && *p == '[') ? E_LITERAL : E_DOMAIN;
			goto fail;
		}
	}
	a->local = buf_steal(&local);
	if (a->local == NULL)
		a->local = xstrdup("");
	a->domain = buf_steal(&domain);
	if (a->domain == NULL)
		a->domain = xstrdup("");
	a->is_null = false;
	a->utf8 = utf8;
	return 0;
fail:
	buf_free(&local);
	buf_free(&domain);
	return -1;
}

/* A-d-l = At-domain *( "," At-domain ) ":" (RFC 5321 4.1.2); dropped. */
static int
route_skip(const char **pp, const char *end, const char **err_r)
{
	const char *p = *pp, *d;

	for (;;) {
		if (p >= end || *p != '@') {
			*err_r = E_ROUTE;
			return -1;
		}
		p++;
		d = domain_span(p, end);
		if (domain_check(p, (size_t)(d - p), NULL, NULL) < 0) {
			*err_r = E_ROUTE;
			return -1;
		}
		p = d;
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p < end && *p == ':') {
			*pp = p + 1;
			return 0;
		}
		*err_r = E_ROUTE;
		return -1;
	}
}

/*
 * End of a bracketed path: the '>' that is not inside a quoted string.
 * NULL if there is none within the limit.
 */
static const char *
path_end(const char *p, const char *end)
{
	const char *start = p;
	int quoted = 0;

	for (; p < end && (size_t)(p - start) <= ADDR_PATH_MAX; p++) {
		if (quoted) {
			if (*p == '\\' && p + 1 < end)
				p++;
			else if (*p == '"')
				quoted = 0;
		} else if (*p == '"')
			quoted = 1;
		else if (*p == '>')
			return p;
	}
	return NULL;
}

/* End of a bare address: the first white space outside a quoted string. */
static const char *
bare_end(const char *p, const char *end)
{
	int quoted = 0;

	for (; p < end; p++) {
		if (quoted) {
			if (*p == '\\' && p + 1 < end)
				p++;
			else if (*p == '"')
				quoted = 0;
		} else if (*p == '"')
			quoted = 1;
		else if (*p == ' ' || *p == '\t')
			return p;
	}
	return p;
}

int
addr_parse_path(const char *s, size_t len, unsigned flags, struct addr *a,
		const char **rest_r, const char **err_r)
{
	const char *p, *end, *close, *body;
	bool strict = (flags & ADDR_P_STRICT) != 0;
	bool nodom = (flags & ADDR_P_ALLOW_NODOM) != 0;
	const char *dummy;

	if (err_r == NULL)
		err_r = &dummy;
	addr_clear(a);
	if (s == NULL) {
		*err_r = E_SYNTAX;
		return -1;
	}
	p = s;
	end = s + len;
	if (!strict)
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
	if (p < end && *p == '<') {
		body = p + 1;
		close = path_end(body, end);
		if (close == NULL) {
			*err_r = (size_t)(end - body) > ADDR_PATH_MAX ? E_LONG : E_SYNTAX;
			return -1;
		}
		if (close + 1 < end && close[1] != ' ' && close[1] != '\t') {
			*err_r = E_SYNTAX;
			return -1;
		}
		if (close == body) {
			if (!(flags & ADDR_P_ALLOW_NULL)) {
				*err_r = E_NULL;
				return -1;
			}
			a->local = xstrdup("");
			a->domain = xstrdup("");
			a->is_null = true;
			if (rest_r)
				*rest_r = close + 1;
			return 0;
		}
		p = body;
		if (*p == '@' && route_skip(&p, close, err_r) < 0)
			return -1;
		if (mailbox_parse(p, close, strict, nodom, a, err_r) < 0)
			return -1;
		if (rest_r)
			*rest_r = close + 1;
		return 0;
	}
	if (strict) {
		*err_r = E_BRACKET;
		return -1;
	}
	/* Postfix without strict_rfc821_envelopes: "MAIL FROM:user@x". */
	close = bare_end(p, end);
	if (close == p) {
		*err_r = E_SYNTAX;
		return -1;
	}
	if ((size_t)(close - p) > ADDR_PATH_MAX) {
		*err_r = E_LONG;
		return -1;
	}
	if (mailbox_parse(p, close, false, nodom, a, err_r) < 0)
		return -1;
	if (rest_r)
		*rest_r = close;
	return 0;
}

int
addr_parse_mailbox(const char *s, struct addr *a, const char **err_r)
{
	const char *dummy;
	size_t n;

	if (err_r == NULL)
		err_r = &dummy;
	addr_clear(a);
	if (s == NULL || *s == '\0') {
		*err_r = E_SYNTAX;
		return -1;
	}
	n = strlen(s);
	if (n > ADDR_PATH_MAX) {
		*err_r = E_LONG;
		return -1;
	}
	return mailbox_parse(s, s + n, false, false, a, err_r);
}

void
addr_free(struct addr *a)
{
	if (a == NULL)
		return;
	xfree(&a->local);
	xfree(&a->domain);
	a->is_null = false;
	a->utf8 = false;
}

void
addr_copy(struct addr *dst, const struct addr *src)
{
	dst->local = xstrdup(src->local ? src->local : "");
	dst->domain = xstrdup(src->domain ? src->domain : "");
	dst->is_null = src->is_null;
	dst->utf8 = src->utf8;
}

char *
addr_key(const struct addr *a)
{
	if (a->is_null || a->local == NULL)
		return xstrdup("");
	if (a->domain == NULL || a->domain[0] == '\0')
		return xstrdup(a->local);
	return xasprintf("%s@%s", a->local, a->domain);
}

/* Is s a Dot-string (atoms of atext or UTF-8, single dots between)? */
static bool
dot_string(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *e = p + strlen(s);
	int prev_dot = 1;
	size_t k;

	if (p == e)
		return false;
	while (p < e) {
		if (*p == '.') {
			if (prev_dot)
				return false;
			prev_dot = 1;
			p++;
		} else if (is_atext(*p)) {
			prev_dot = 0;
			p++;
		} else if ((k = utf8_seq(p, e)) > 0) {
			prev_dot = 0;
			p += k;
		} else
			return false;
	}
	return !prev_dot;
}

char *
addr_format(const struct addr *a)
{
	struct buf b;
	const char *p;

	if (a->is_null || a->local == NULL)
		return xstrdup("");
	buf_init(&b, 0);
	if (dot_string(a->local))
		buf_puts(&b, a->local);
	else {
		buf_putc(&b, '"');
		for (p = a->local; *p; p++) {
			if (*p == '"' || *p == '\\')
				buf_putc(&b, '\\');
			buf_putc(&b, *p);
		}
		buf_putc(&b, '"');
	}
	if (a->domain && a->domain[0]) {
		buf_putc(&b, '@');
		buf_puts(&b, a->domain);
	}
	return buf_steal(&b);
}
