/*
 * mime_downgrade.c - the 8BITMIME to 7BIT converter (see mime_downgrade.h):
 * splits an entity into its header block and body, reads Content-Type
 * (type, subtype, boundary) and Content-Transfer-Encoding, then either
 * re-encodes a leaf body as quoted-printable, walks the parts of a
 * multipart between its delimiter lines (preamble and epilogue copied),
 * or walks the message inside a message/rfc822 part.
 * Must not: read past len, allocate per byte, recurse deeper than
 * MIME_DOWNGRADE_DEPTH, or touch the text of a part it does not convert.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "delivery/mime_downgrade.h"

enum cte { CTE_NONE, CTE_7BIT, CTE_8BIT, CTE_BINARY, CTE_ENCODED };

struct mhead {
	char     type[64], subtype[64];	/* lower case; "" when absent */
	char     boundary[128];
	bool     has_boundary;
	enum cte cte;
	bool     mime_version;
	bool     has_ctype;
};

bool
mime_has_8bit(const char *msg, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)msg[i] >= 0x80)
			return true;
	return false;
}

/* Length of the line at p (without its end) and of its end ("\n", "\r\n"). */
static size_t
line_len(const char *p, const char *end, size_t *eol)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	size_t n;

	if (nl == NULL) {
		*eol = 0;
		return (size_t)(end - p);
	}
	n = (size_t)(nl - p);
	*eol = 1;
	if (n > 0 && p[n - 1] == '\r') {
		n--;
		*eol = 2;
	}
	return n;
}

static bool
is_header_start(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == ':')
			return i > 0;
		if (c <= ' ' || c >= 0x7f)
			return false;
	}
	return false;
}

/* Copies a token (lower case) of at most size - 1 characters. */
static const char *
token(const char *p, const char *end, char *out, size_t size)
{
	size_t k = 0;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (p < end && !strchr(" \t;/=\"()<>@,:\\[]?", *p)
	       && (unsigned char)*p > ' ' && (unsigned char)*p < 0x7f) {
		if (k + 1 < size)
			out[k++] = (char)tolower((unsigned char)*p);
		p++;
	}
	out[k] = '\0';
	return p;
}

/* Content-Type value (unfolded): type/subtype and the boundary. */
static void
parse_ctype(const char *v, const char *end, struct mhead *h)
{
	const char *p = token(v, end, h->type, sizeof(h->type));

	h->has_ctype = true;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p < end && *p == '/')
		p = token(p + 1, end, h->subtype, sizeof(h->subtype));
	/* parameters: ; name = value | "quoted" */
	while (p < end) {
		char name[32], val[128];
		size_t k = 0;

		p = memchr(p, ';', (size_t)(end - p));
		if (p == NULL)
			return;
		p = token(p + 1, end, name, sizeof(name));
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p >= end || *p != '=')
			continue;
		p++;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p < end && *p == '"') {
			for (p++; p < end && *p != '"'; p++) {
				if (*p == '\\' && p + 1 < end)
					p++;
				if (k + 1 < sizeof(val))
					val[k++] = *p;
			}
			if (p < end)
				p++;
		} else {
			while (p < end && *p != ';' && *p != ' ' && *p != '\t') {
				if (k + 1 < sizeof(val))
					val[k++] = *p;
				p++;
			}
		}
		val[k] = '\0';
		if (strcmp(name, "boundary") == 0 && k > 0 && k <= 70) {
			memcpy(h->boundary, val, k + 1);
			h->has_boundary = true;
		}
	}
}

static void
parse_cte(const char *v, const char *end, struct mhead *h)
{
	char t[32];

	token(v, end, t, sizeof(t));
	if (strcmp(t, "7bit") == 0)
		h->cte = CTE_7BIT;
	else if (strcmp(t, "8bit") == 0)
		h->cte = CTE_8BIT;
	else if (strcmp(t, "binary") == 0)
		h->cte = CTE_BINARY;
	else
		h->cte = CTE_ENCODED;	/* quoted-printable, base64, x-... */
}

/*
 * The header block of the entity at p: its end (where the body starts,
 * after the blank line if any) and the fields that matter. Unfolds each
 * field into a bounded buffer for parsing.
 */
static const char *
parse_head(const char *p, const char *end, struct mhead *h, const char **hend)
{
	char field[2048];
	size_t flen = 0, eol, n;
	bool in_field = false;

	memset(h, 0, sizeof(*h));
	for (;;) {
		bool cont = false, start = false;

		n = p < end ? line_len(p, end, &eol) : 0;
		if (p < end && n > 0 && (p[0] == ' ' || p[0] == '\t') && in_field)
			cont = true;
		else if (p < end && n > 0 && is_header_start(p, n))
			start = true;
		if (!cont && in_field) {	/* the previous field is complete */
			const char *c = memchr(field, ':', flen);
			size_t nl = c ? (size_t)(c - field) : 0;

			if (c == NULL)
				;	/* a name longer than the buffer */
			else if (nl == 12 && strncasecmp(field, "Content-Type", 12) == 0)
				parse_ctype(c + 1, field + flen, h);
			else if (nl == 25 && strncasecmp(field,
					"Content-Transfer-Encoding", 25) == 0)
				parse_cte(c + 1, field + flen, h);
			else if (nl == 12 && strncasecmp(field, "MIME-Version", 12) == 0)
				h->mime_version = true;
			in_field = false;
		}
		if (!cont && !start)
			break;
		if (start)
			flen = 0;
		if (flen + n > sizeof(field))
			n = sizeof(field) - flen;
		memcpy(field + flen, p, n);
		flen += n;
		in_field = true;
		p += n + eol;
		if (eol == 0)
			p = end;
	}
	*hend = p;
	/* the blank line between header and body belongs to the header */
	if (p < end && line_len(p, end, &eol) == 0)
		p += eol;
	return p;
}

/*
 * Copies the header block [p, hend) with Content-Transfer-Encoding set to
 * cte (NULL: unchanged); extra header lines are appended after it.
 */
static void
put_head(const char *p, const char *hend, const char *cte, const char *extra,
	 struct buf *out)
{
	bool skipping = false, done = false;
	size_t n, eol;

	while (p < hend) {
		n = line_len(p, hend, &eol);
		if (n > 0 && (p[0] == ' ' || p[0] == '\t')) {
			if (!skipping)
				buf_append(out, p, n + eol);
		} else if (cte && n >= 26 && strncasecmp(p,
				"Content-Transfer-Encoding:", 26) == 0) {
			skipping = true;
			if (!done)
				buf_printf(out, "Content-Transfer-Encoding: %s\n", cte);
			done = true;
		} else {
			skipping = false;
			buf_append(out, p, n + eol);
			if (eol == 0)
				buf_putc(out, '\n');
		}
		p += n + eol;
		if (eol == 0)
			break;
	}
	if (cte && !done)
		buf_printf(out, "Content-Transfer-Encoding: %s\n", cte);
	if (extra)
		buf_puts(out, extra);
}

void
mime_qp_encode(const char *body, size_t len, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *p = body, *end = body + len;

	while (p < end) {
		size_t eol, n = line_len(p, end, &eol), i, col = 0;

		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)p[i];
			bool enc = c == '=' || c > 126 || (c < 32 && c != '\t');
			size_t w;

			if ((c == ' ' || c == '\t') && i + 1 == n)
				enc = true;	/* white space before a line end */
			w = enc ? 3 : 1;
			if (col + w > 75) {
				buf_puts(out, "=\n");
				col = 0;
			}
			if (enc) {
				buf_putc(out, '=');
				buf_putc(out, hex[c >> 4]);
				buf_putc(out, hex[c & 15]);
			} else {
				buf_putc(out, (char)c);
			}
			col += w;
		}
		if (eol)
			buf_putc(out, '\n');
		p += n + eol;
	}
}

static bool
valid_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *e = p + len;

	while (p < e) {
		size_t k, n;

		if (*p < 0x80) {
			p++;
			continue;
		}
		if (*p >= 0xc2 && *p <= 0xdf)
			n = 1;
		else if (*p >= 0xe0 && *p <= 0xef)
			n = 2;
		else if (*p >= 0xf0 && *p <= 0xf4)
			n = 3;
		else
			return false;
		if ((size_t)(e - p) <= n)
			return false;
		for (k = 1; k <= n; k++)
			if ((p[k] & 0xc0) != 0x80)
				return false;
		p += n + 1;
	}
	return true;
}

static bool entity(const char *p, const char *end, int depth, bool top,
		   bool digest, struct buf *out);

/* A delimiter line of boundary b: 0 no, 1 a part follows, 2 the close. */
static int
delimiter(const char *p, size_t n, const char *b)
{
	size_t bl = strlen(b), i;
	int kind = 1;

	if (n < bl + 2 || p[0] != '-' || p[1] != '-' || memcmp(p + 2, b, bl) != 0)
		return 0;
	i = bl + 2;
	if (n >= i + 2 && p[i] == '-' && p[i + 1] == '-') {
		kind = 2;
		i += 2;
	}
	for (; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t')
			return 0;
	return kind;
}

/* The body of a multipart: each part between delimiter lines, walked. */
static bool
multipart(const char *p, const char *end, const char *b, int depth,
	  bool digest, struct buf *out)
{
	const char *part = NULL;	/* start of the part being collected */
	const char *prev_eol = NULL;	/* the line end before this line */
	size_t prev_eol_len = 0;
	bool changed = false;

	while (p < end) {
		size_t eol, n = line_len(p, end, &eol);
		int k = delimiter(p, n, b);

		if (k == 0) {
			if (part == NULL)	/* preamble: as it is */
				buf_append(out, p, n + eol);
			prev_eol = p + n;
			prev_eol_len = eol;
			p += n + eol;
			continue;
		}
		if (part != NULL) {
			/* the line end before a delimiter belongs to it */
			const char *pend = prev_eol && prev_eol >= part ? prev_eol : part;

			changed |= entity(part, pend, depth + 1, false, digest, out);
			if (prev_eol && prev_eol >= part)
				buf_append(out, prev_eol, prev_eol_len);
		}
		buf_append(out, p, n + eol);
		p += n + eol;
		if (k == 2) {	/* epilogue: as it is */
			buf_append(out, p, (size_t)(end - p));
			return changed;
		}
		part = p;
		prev_eol = NULL;
		prev_eol_len = 0;
	}
	if (part != NULL && part < end)	/* no close delimiter */
		changed |= entity(part, end, depth + 1, false, digest, out);
	return changed;
}

/*
 * One entity [p, end): appends its 7-bit form to out; true when it
 * differs from the input. top: a message (MIME-Version decides whether it
 * is MIME); digest: a part of multipart/digest (default message/rfc822).
 */
static bool
entity(const char *p, const char *end, int depth, bool top, bool digest,
       struct buf *out)
{
	struct mhead h;
	const char *hend, *body = parse_head(p, end, &h, &hend);
	bool body8 = mime_has_8bit(body, (size_t)(end - body));
	bool mime = !top || h.mime_version;
	bool relabel = h.cte == CTE_8BIT || h.cte == CTE_BINARY;

	if (!h.has_ctype && digest) {
		snprintf(h.type, sizeof(h.type), "message");
		snprintf(h.subtype, sizeof(h.subtype), "rfc822");
	}
	if (depth > MIME_DOWNGRADE_DEPTH || h.cte == CTE_ENCODED
	    || (!body8 && !(mime && relabel))) {
		buf_append(out, p, (size_t)(end - p));
		return false;
	}
	if (mime && strcmp(h.type, "multipart") == 0 && h.has_boundary) {
		put_head(p, hend, relabel ? "7bit" : NULL, NULL, out);
		buf_append(out, hend, (size_t)(body - hend));
		multipart(body, end, h.boundary, depth,
			  strcmp(h.subtype, "digest") == 0, out);
		return true;
	}
	if (mime && strcmp(h.type, "message") == 0
	    && strcmp(h.subtype, "rfc822") == 0) {
		put_head(p, hend, relabel ? "7bit" : NULL, NULL, out);
		buf_append(out, hend, (size_t)(body - hend));
		entity(body, end, depth + 1, true, false, out);
		return true;
	}
	if (!body8) {	/* declared 8bit, 7-bit in fact: relabel only */
		put_head(p, hend, "7bit", NULL, out);
		buf_append(out, hend, (size_t)(body - hend));
		buf_append(out, body, (size_t)(end - body));
		return true;
	}
	/* a leaf with 8-bit text: quoted-printable */
	if (!mime)
		put_head(p, hend, "quoted-printable",
			 h.has_ctype ? "MIME-Version: 1.0\n"
			 : valid_utf8(body, (size_t)(end - body))
			 ? "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
			 : "MIME-Version: 1.0\nContent-Type: text/plain; "
			   "charset=unknown-8bit\n", out);
	else
		put_head(p, hend, "quoted-printable", NULL, out);
	if (body == hend)	/* no blank line: the body needs one now */
		buf_putc(out, '\n');
	else
		buf_append(out, hend, (size_t)(body - hend));
	mime_qp_encode(body, (size_t)(end - body), out);
	return true;
}

int
mime_downgrade(const char *msg, size_t len, struct buf *out)
{
	size_t start = out->len;

	if (!mime_has_8bit(msg, len)) {
		buf_append(out, msg, len);
		return 0;
	}
	if (!entity(msg, msg + len, 0, true, false, out)) {
		/* nothing convertible (8-bit headers only, encoded parts) */
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
		buf_append(out, msg, len);
		return 0;
	}
	return 1;
}
