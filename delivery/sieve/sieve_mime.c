/*
 * sieve_mime.c - message access for the Sieve interpreter: header fields
 * (unfolded), RFC 2047 encoded-word decoding to UTF-8 (via iconv for
 * charsets other than UTF-8/ASCII/Latin-1), RFC 5322 address lists,
 * quoted-printable/base64 body decoding and RFC 3501 modified UTF-7.
 * Must not: write to the message, or trust any length it did not check.
 */
#include <ctype.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/lib/xmalloc.h"
#include "delivery/sieve/sieve.h"
#include "delivery/sieve/sieve_mime.h"

#define MAX_FIELDS 1024
#define MAX_FIELD  65536

static void
hdr_push(struct sieve_hdrs *h, char *name, const char *raw, const char *src,
	 const char *src_end)
{
	h->h = xrealloc(h->h, (h->n + 1) * sizeof(*h->h));
	h->h[h->n].name = name;
	h->h[h->n].raw = xstrdup(raw);
	h->h[h->n].src = src;
	h->h[h->n].src_len = (size_t)(src_end - src);
	h->n++;
}

void
sieve_hdrs_parse(const char *msg, size_t len, struct sieve_hdrs *h)
{
	const char *p = msg, *end = msg + len, *fstart = msg;
	struct buf cur;
	char *name = NULL;

	memset(h, 0, sizeof(*h));
	buf_init(&cur, MAX_FIELD);
	h->body = end;
	h->end = end;
	h->rest = msg;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le = eol ? eol : end;
		const char *ln = le;

		if (ln > p && ln[-1] == '\r')
			ln--;
		if (ln == p) {		/* the empty line */
			h->body = eol ? eol + 1 : end;
			break;
		}
		if ((*p == ' ' || *p == '\t') && name != NULL) {
			buf_append(&cur, p, (size_t)(ln - p));
		} else {
			const char *colon = memchr(p, ':', (size_t)(ln - p));

			if (name != NULL && h->n < MAX_FIELDS) {
				hdr_push(h, name, buf_cstr(&cur), fstart, p);
				h->rest = p;
			} else
				free(name);
			name = NULL;
			buf_reset(&cur);
			if (colon == NULL) {
				/* Not a header: the body starts here. */
				h->body = p;
				break;
			}
			{
				const char *ne = colon;

				while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t'))
					ne--;
				name = xstrndup(p, (size_t)(ne - p));
			}
			fstart = p;
			p = colon + 1;
			while (p < ln && (*p == ' ' || *p == '\t'))
				p++;
			buf_append(&cur, p, (size_t)(ln - p));
		}
		p = eol ? eol + 1 : end;
		if (p >= end)
			h->body = end;
	}
	if (name != NULL && h->n < MAX_FIELDS) {
		hdr_push(h, name, buf_cstr(&cur), fstart, p);
		h->rest = p;
	} else
		free(name);
	buf_free(&cur);
	h->body_len = (size_t)(end - h->body);
	/* Trailing white space of each value is not part of it (RFC 5228 5.7) */
	for (size_t i = 0; i < h->n; i++) {
		char *v = h->h[i].raw;
		size_t n = strlen(v);

		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			v[--n] = '\0';
	}
}

void
sieve_hdrs_add(struct sieve_hdrs *h, const char *name, const char *value,
	       bool last)
{
	struct buf un;
	size_t at = last ? h->n : 0;

	if (h->n >= MAX_FIELDS)
		return;
	/* raw is the unfolded value, as the parser gives it */
	buf_init(&un, 0);
	for (const char *v = value; *v; v++)
		if (*v != '\r' && *v != '\n')
			buf_putc(&un, *v);
	h->h = xrealloc(h->h, (h->n + 1) * sizeof(*h->h));
	memmove(&h->h[at + 1], &h->h[at], (h->n - at) * sizeof(*h->h));
	h->h[at].name = xstrdup(name);
	h->h[at].raw = xstrdup(buf_cstr(&un));
	/* src: the folded text, owned (marked by src_len == 0) */
	h->h[at].src = xstrdup(value);
	h->h[at].src_len = 0;
	h->n++;
	h->edited = true;
	buf_free(&un);
}

void
sieve_hdrs_del(struct sieve_hdrs *h, size_t i)
{
	if (i >= h->n)
		return;
	free(h->h[i].name);
	free(h->h[i].raw);
	if (h->h[i].src_len == 0)
		free((char *)(uintptr_t)h->h[i].src);
	memmove(&h->h[i], &h->h[i + 1], (h->n - i - 1) * sizeof(*h->h));
	h->n--;
	h->edited = true;
}

void
sieve_hdrs_rebuild(const struct sieve_hdrs *h, struct buf *out)
{
	for (size_t i = 0; i < h->n; i++) {
		if (h->h[i].src_len > 0) {
			buf_append(out, h->h[i].src, h->h[i].src_len);
			continue;
		}
		buf_puts(out, h->h[i].name);
		buf_puts(out, ": ");
		buf_puts(out, h->h[i].src ? h->h[i].src : h->h[i].raw);
		buf_putc(out, '\n');
	}
	if (h->rest && h->rest < h->end)
		buf_append(out, h->rest, (size_t)(h->end - h->rest));
}

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void
b64_encode(const unsigned char *in, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16;

		if (i + 1 < n)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		buf_putc(out, b64chars[(v >> 18) & 63]);
		buf_putc(out, b64chars[(v >> 12) & 63]);
		buf_putc(out, i + 1 < n ? b64chars[(v >> 6) & 63] : '=');
		buf_putc(out, i + 2 < n ? b64chars[v & 63] : '=');
	}
}

void
sieve_hdr_encode(const char *name, const char *value, struct buf *out)
{
	bool plain = true;
	size_t col = strlen(name) + 2, vlen = strlen(value);

	for (const char *p = value; *p; p++)
		if ((unsigned char)*p >= 127 || ((unsigned char)*p < 32 && *p != '\t'))
			plain = false;
	if (!plain) {
		/* encoded-words of at most 45 input octets, not splitting a
		 * UTF-8 sequence, one per folded line */
		size_t i = 0;

		while (i < vlen) {
			size_t n = vlen - i > 45 ? 45 : vlen - i;

			while (i + n < vlen && n > 1
			       && ((unsigned char)value[i + n] & 0xC0) == 0x80)
				n--;
			if (i > 0)
				buf_puts(out, "\n ");
			buf_puts(out, "=?utf-8?b?");
			b64_encode((const unsigned char *)value + i, n, out);
			buf_puts(out, "?=");
			i += n;
		}
		return;
	}
	/* fold at white space so that lines stay under 78 columns */
	for (const char *p = value; *p;) {
		const char *sp = p + strcspn(p, " \t");
		size_t wl = (size_t)(sp - p);

		if (col + wl > 78 && p != value && (p[-1] == ' ' || p[-1] == '\t')) {
			/* break before the white space that preceded this word */
			out->len--;
			buf_puts(out, "\n");
			buf_putc(out, p[-1]);
			col = 1;
		}
		buf_append(out, p, wl);
		col += wl;
		p = sp;
		if (*p) {
			buf_putc(out, *p++);
			col++;
		}
	}
}

void
sieve_hdrs_free(struct sieve_hdrs *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free(h->h[i].name);
		free(h->h[i].raw);
		if (h->h[i].src_len == 0)
			free((char *)(uintptr_t)h->h[i].src);
	}
	free(h->h);
	memset(h, 0, sizeof(*h));
}

const char *
sieve_hdrs_get(const struct sieve_hdrs *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcasecmp(h->h[i].name, name) == 0)
			return h->h[i].raw;
	return NULL;
}

static int
b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static void
b64_decode(const char *in, size_t len, struct buf *out)
{
	unsigned acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		int v = b64val((unsigned char)in[i]);

		if (in[i] == '=')
			break;
		if (v < 0)
			continue;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_putc(out, (int)((acc >> bits) & 0xFF));
		}
	}
}

static int
hexv(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = toupper(c);
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void
qp_decode(const char *in, size_t len, bool underscore, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '_' && underscore)
			buf_putc(out, ' ');
		else if (in[i] == '=' && i + 2 < len + 0 && hexv((unsigned char)in[i + 1]) >= 0
			 && hexv((unsigned char)in[i + 2]) >= 0) {
			buf_putc(out, hexv((unsigned char)in[i + 1]) * 16
				 + hexv((unsigned char)in[i + 2]));
			i += 2;
		} else if (in[i] == '=' && !underscore) {
			/* soft line break "=\r\n" / "=\n" */
			size_t j = i + 1;

			while (j < len && (in[j] == ' ' || in[j] == '\t'))
				j++;
			if (j < len && in[j] == '\r')
				j++;
			if (j < len && in[j] == '\n')
				i = j;
			else
				buf_putc(out, '=');
		} else
			buf_putc(out, in[i]);
	}
}

void
sieve_cte_decode(const char *cte, const char *in, size_t len, struct buf *out)
{
	if (cte && strcasecmp(cte, "base64") == 0)
		b64_decode(in, len, out);
	else if (cte && strcasecmp(cte, "quoted-printable") == 0)
		qp_decode(in, len, false, out);
	else
		buf_append(out, in, len);
}

/* Converts text in charset cs to UTF-8; -1 if the charset is unknown. */
static int
to_utf8(const char *cs, const char *in, size_t len, struct buf *out)
{
	if (strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "us-ascii") == 0
	    || strcasecmp(cs, "utf8") == 0)
		return buf_append(out, in, len), 0;
	if (strcasecmp(cs, "iso-8859-1") == 0 || strcasecmp(cs, "latin1") == 0) {
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)in[i];

			if (c < 0x80)
				buf_putc(out, c);
			else {
				buf_putc(out, 0xC0 | (c >> 6));
				buf_putc(out, 0x80 | (c & 0x3F));
			}
		}
		return 0;
	}
	{
		iconv_t cd = iconv_open("UTF-8", cs);
		char tmp[256];
		char *ip = (char *)in;
		size_t il = len;

		if (cd == (iconv_t)-1)
			return -1;
		while (il > 0) {
			char *op = tmp;
			size_t ol = sizeof(tmp);
			size_t r = iconv(cd, &ip, &il, &op, &ol);

			buf_append(out, tmp, sizeof(tmp) - ol);
			if (r == (size_t)-1 && op == tmp) {
				/* invalid input byte: replace and skip it */
				buf_puts(out, "\xEF\xBF\xBD");
				ip++;
				il--;
			}
		}
		iconv_close(cd);
		return 0;
	}
}

/* One "=?cs?e?text?=" at s (length of it in *used); 1 decoded, 0 not. */
static int
encoded_word(const char *s, const char *end, size_t *used, struct buf *out)
{
	const char *cs, *q1, *q2, *q3;
	char charset[64];
	struct buf raw;
	int ok;

	if (end - s < 8 || s[0] != '=' || s[1] != '?')
		return 0;
	cs = s + 2;
	q1 = memchr(cs, '?', (size_t)(end - cs));
	if (q1 == NULL || q1 - cs == 0 || q1 - cs >= (long)sizeof(charset)
	    || end - q1 < 4 || q1[2] != '?')
		return 0;
	q2 = q1 + 2;
	q3 = q2 + 1;
	while (q3 + 1 < end && !(q3[0] == '?' && q3[1] == '='))
		q3++;
	if (q3 + 1 >= end)
		return 0;
	memcpy(charset, cs, (size_t)(q1 - cs));
	charset[q1 - cs] = '\0';
	{
		char *star = strchr(charset, '*');	/* RFC 2231 language */

		if (star)
			*star = '\0';
	}
	buf_init(&raw, 0);
	if (q1[1] == 'B' || q1[1] == 'b')
		b64_decode(q2 + 1, (size_t)(q3 - q2 - 1), &raw);
	else if (q1[1] == 'Q' || q1[1] == 'q')
		qp_decode(q2 + 1, (size_t)(q3 - q2 - 1), true, &raw);
	else {
		buf_free(&raw);
		return 0;
	}
	ok = to_utf8(charset, raw.data ? raw.data : "", raw.len, out) == 0;
	buf_free(&raw);
	if (ok)
		*used = (size_t)(q3 + 2 - s);
	return ok;
}

void
sieve_mime_decode_header(const char *in, size_t len, struct buf *out)
{
	const char *p = in, *end = in + len;
	bool last_enc = false;

	while (p < end) {
		size_t used = 0;
		size_t mark = out->len;

		if (encoded_word(p, end, &used, out)) {
			p += used;
			last_enc = true;
			continue;
		}
		out->len = mark;
		if (out->data)
			out->data[mark] = '\0';
		if (last_enc && (*p == ' ' || *p == '\t')) {
			/* White space between two encoded words vanishes. */
			const char *q = p;
			size_t u2 = 0;

			while (q < end && (*q == ' ' || *q == '\t'))
				q++;
			mark = out->len;
			if (q < end && encoded_word(q, end, &u2, out)) {
				p = q + u2;
				continue;
			}
			out->len = mark;
			if (out->data)
				out->data[mark] = '\0';
		}
		last_enc = false;
		buf_putc(out, *p++);
	}
}

int
sieve_mutf7_encode(const char *s, struct buf *out)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		if (*p >= 0x20 && *p < 0x7F) {
			if (*p == '&')
				buf_puts(out, "&-");
			else
				buf_putc(out, *p);
			p++;
			continue;
		}
		/* a run of non-printable/non-ASCII characters as UTF-16BE */
		{
			unsigned acc = 0;
			int bits = 0;

			buf_putc(out, '&');
			while (*p && !(*p >= 0x20 && *p < 0x7F)) {
				unsigned long cp;
				int n;
				unsigned u[2];
				int nu;

				if (*p < 0x80) { cp = *p; n = 1; }
				else if ((*p & 0xE0) == 0xC0) { cp = *p & 0x1F; n = 2; }
				else if ((*p & 0xF0) == 0xE0) { cp = *p & 0x0F; n = 3; }
				else if ((*p & 0xF8) == 0xF0) { cp = *p & 0x07; n = 4; }
				else return -1;
				for (int i = 1; i < n; i++) {
					if ((p[i] & 0xC0) != 0x80)
						return -1;
					cp = (cp << 6) | (p[i] & 0x3F);
				}
				if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)
				    || (n == 2 && cp < 0x80) || (n == 3 && cp < 0x800)
				    || (n == 4 && cp < 0x10000))
					return -1;
				p += n;
				if (cp >= 0x10000) {
					cp -= 0x10000;
					u[0] = 0xD800 | (unsigned)(cp >> 10);
					u[1] = 0xDC00 | (unsigned)(cp & 0x3FF);
					nu = 2;
				} else {
					u[0] = (unsigned)cp;
					nu = 1;
				}
				for (int i = 0; i < nu; i++) {
					acc = (acc << 16) | u[i];
					bits += 16;
					while (bits >= 6) {
						bits -= 6;
						buf_putc(out, b64[(acc >> bits) & 0x3F]);
					}
				}
			}
			if (bits > 0)
				buf_putc(out, b64[(acc << (6 - bits)) & 0x3F]);
			buf_putc(out, '-');
		}
	}
	return 0;
}

/* Drops (comments), keeps "quoted strings" verbatim. */
static void
addr_one(const char *s, size_t n, struct strlist *out)
{
	const char *lt = NULL, *gt = NULL;
	struct buf b;
	bool q = false;
	int depth = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' && depth == 0)
			q = !q;
		else if (s[i] == '\\' && i + 1 < n)
			i++;
		else if (!q && s[i] == '(')
			depth++;
		else if (!q && s[i] == ')' && depth > 0)
			depth--;
		else if (!q && depth == 0 && s[i] == '<' && lt == NULL)
			lt = s + i;
		else if (!q && depth == 0 && s[i] == '>' && lt && gt == NULL)
			gt = s + i;
	}
	if (lt && gt) {
		s = lt + 1;
		n = (size_t)(gt - lt - 1);
		/* source route "@a,@b:user@dom" */
		if (n > 0 && s[0] == '@') {
			const char *c = memchr(s, ':', n);

			if (c) {
				n -= (size_t)(c + 1 - s);
				s = c + 1;
			}
		}
	}
	buf_init(&b, 0);
	q = false;
	depth = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '"' && depth == 0) {
			q = !q;
			buf_putc(&b, c);
		} else if (!q && c == '(')
			depth++;
		else if (!q && c == ')' && depth > 0)
			depth--;
		else if (depth > 0)
			continue;
		else if (!q && (c == ' ' || c == '\t' || c == '\r' || c == '\n'))
			continue;
		else
			buf_putc(&b, c);
	}
	if (b.len > 0)
		strlist_add(out, buf_cstr(&b));
	buf_free(&b);
}

void
sieve_addr_list(const char *v, struct strlist *out)
{
	const char *start = v;
	bool q = false;
	int depth = 0, angle = 0;

	for (const char *p = v;; p++) {
		char c = *p;

		if (c == '\0' || (!q && depth == 0 && angle == 0
				  && (c == ',' || c == ';' || c == ':'))) {
			if (c == ':') {
				/* group name: discard what came before */
				start = p + 1;
				continue;
			}
			addr_one(start, (size_t)(p - start), out);
			if (c == '\0')
				break;
			start = p + 1;
			continue;
		}
		if (c == '\\' && p[1]) {
			p++;
			continue;
		}
		if (c == '"' && depth == 0)
			q = !q;
		else if (!q && c == '(')
			depth++;
		else if (!q && c == ')' && depth > 0)
			depth--;
		else if (!q && depth == 0 && c == '<')
			angle++;
		else if (!q && depth == 0 && c == '>' && angle > 0)
			angle--;
	}
}
