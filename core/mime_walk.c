/*
 * mime_walk.c - the streaming MIME walker (see mime_walk.h): a state
 * machine over lines. In a header block it collects one logical header
 * (bounded), notes Content-Type (type, subtype, boundary) and
 * Content-Transfer-Encoding, and at the block's end decides what follows:
 * a multipart preamble (its boundary pushed), the headers of an attached
 * message/rfc822 (a nested level pushed), or plain body. In a body, a
 * line "--BOUNDARY" of any open multipart starts a part there (deeper
 * levels closed), "--BOUNDARY--" closes that multipart.
 * Must not: allocate more than the bounds in mime_walk.h, or trust the
 * input's nesting (deeper than the limit is body, and reported).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"
#include "core/mime_walk.h"

enum state { ST_HEAD, ST_BODY };
/* Content-Transfer-Encoding values; base64 and quoted-printable are
 * 7-bit encodings, the others identities (RFC 2045 6.1). */
enum enc { ENC_7BIT, ENC_8BIT, ENC_BINARY, ENC_B64, ENC_QP, ENC_OTHER };

struct level {
	char  *boundary;	/* NULL: an attached message (no boundary) */
	size_t blen;
	bool   digest;		/* multipart/digest: parts default to message */
};

struct mime_walk {
	const struct mime_walk_cb *cb;
	void                      *arg;
	size_t                     hlimit;
	unsigned                   nlimit;
	bool                       no_mime;
	enum state                 st;
	enum mime_hdr_class        cls;	/* of the current header block */
	struct buf                 hdr;	/* pending logical header */
	bool                       hdr_on, hdr_nl, hdr_trunc;
	/* what the current block's headers said */
	char                       type[32], subtype[32];
	char                      *boundary;	/* owned, from Content-Type */
	enum enc                   enc;	/* Content-Transfer-Encoding */
	bool                       dflt_message;	/* in a digest */
	struct level              *lv;		/* grows up to nlimit */
	unsigned                   nlv, lvcap;
	size_t                     blimit;	/* boundary bytes kept */
	unsigned                   errs, check;
	enum enc                   body_enc;	/* of the body being read */
};

struct mime_walk *
mime_walk_new(const struct mime_walk_opts *o, const struct mime_walk_cb *cb,
	      void *arg)
{
	struct mime_walk *w = xcalloc(1, sizeof(*w));

	w->cb = cb;
	w->arg = arg;
	w->hlimit = o->header_limit ? o->header_limit : MIME_WALK_HEADER_DEF;
	w->nlimit = o->nesting_limit ? o->nesting_limit : MIME_WALK_NESTING_DEF;
	w->no_mime = o->no_mime;
	w->blimit = o->boundary_limit ? o->boundary_limit
		    : MIME_WALK_BOUNDARY_MAX;
	w->check = o->no_mime ? 0 : o->check;
	w->st = ST_HEAD;
	w->cls = MIME_HDR_PRIMARY;
	buf_init(&w->hdr, 0);
	return w;
}

static void
block_reset(struct mime_walk *w, enum mime_hdr_class cls, bool dflt_message)
{
	w->cls = cls;
	w->type[0] = w->subtype[0] = '\0';
	free(w->boundary);
	w->boundary = NULL;
	w->enc = ENC_7BIT;
	w->dflt_message = dflt_message;
}

void
mime_walk_free(struct mime_walk **wp)
{
	struct mime_walk *w = *wp;

	if (w == NULL)
		return;
	for (unsigned i = 0; i < w->nlv; i++)
		free(w->lv[i].boundary);
	free(w->lv);
	free(w->boundary);
	buf_free(&w->hdr);
	free(w);
	*wp = NULL;
}

unsigned
mime_walk_errors(const struct mime_walk *w)
{
	return w->errs;
}

const char *
mime_walk_error_text(unsigned errs)
{
	/* the most serious first, as Postfix's mime_state */
	if (errs & MIME_WALK_ERR_NESTING)
		return "MIME nesting exceeds safety limit";
	if (errs & MIME_WALK_ERR_TRUNC_HDR)
		return "message header length exceeds safety limit";
	if (errs & MIME_WALK_ERR_8BIT_HDR)
		return "improper use of 8-bit data in message header";
	if (errs & MIME_WALK_ERR_8BIT_BODY)
		return "improper use of 8-bit data in message body";
	return "invalid message/* or multipart/* encoding domain";
}

static void
report(struct mime_walk *w, unsigned err, const char *text, size_t len)
{
	bool first = (w->errs & err) == 0;

	w->errs |= err;
	if (first && w->cb->error != NULL)
		w->cb->error(w->arg, err, text, len);
}

static bool
has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] & 0x80)
			return true;
	return false;
}

bool
mime_walk_is_header(const char *p, size_t n)
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

static bool
name_is(const char *p, size_t n, const char *name)
{
	size_t k = strlen(name);

	if (n < k || strncasecmp(p, name, k) != 0)
		return false;
	p += k;
	n -= k;
	while (n > 0 && (*p == ' ' || *p == '\t'))
		p++, n--;
	return n > 0 && *p == ':';
}

/* Postfix's HDR_OPT_MIME headers. */
static bool
is_mime_header(const char *p, size_t n)
{
	static const char *const names[] = {
		"Content-Type", "Content-Transfer-Encoding",
		"Content-Disposition", "Content-Description", "Content-ID",
		"MIME-Version",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (name_is(p, n, names[i]))
			return true;
	return false;
}

/* Skips white space (folding LFs too) and (nested (comments)). */
static size_t
skip_cfws(const char *p, size_t n, size_t i)
{
	int depth = 0;

	while (i < n) {
		if (p[i] == '(')
			depth++;
		else if (p[i] == ')' && depth > 0)
			depth--;
		else if (p[i] == '\\' && depth > 0 && i + 1 < n)
			i++;
		else if (depth == 0 && p[i] != ' ' && p[i] != '\t' &&
			 p[i] != '\n' && p[i] != '\r')
			break;
		i++;
	}
	return i;
}

static bool
is_tspecial(int c)
{
	return c <= ' ' || c >= 0x7f || strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

/* A token into dst (lower case, truncated to dlen - 1). */
static size_t
get_token(const char *p, size_t n, size_t i, char *dst, size_t dlen)
{
	size_t k = 0;

	while (i < n && !is_tspecial((unsigned char)p[i])) {
		if (k + 1 < dlen)
			dst[k++] = (char)tolower((unsigned char)p[i]);
		i++;
	}
	dst[k] = '\0';
	return i;
}

/* Content-Type: type "/" subtype *(";" attribute "=" value). */
static void
parse_content_type(struct mime_walk *w, const char *p, size_t n)
{
	size_t i = (size_t)((const char *)memchr(p, ':', n) - p) + 1;

	i = skip_cfws(p, n, i);
	i = get_token(p, n, i, w->type, sizeof(w->type));
	i = skip_cfws(p, n, i);
	if (i < n && p[i] == '/') {
		i = skip_cfws(p, n, i + 1);
		i = get_token(p, n, i, w->subtype, sizeof(w->subtype));
	}
	while (i < n) {
		char attr[16];
		struct buf val;

		while (i < n && p[i] != ';')	/* junk up to the next ';' */
			i++;
		if (i >= n)
			break;
		i = skip_cfws(p, n, i + 1);
		i = get_token(p, n, i, attr, sizeof(attr));
		i = skip_cfws(p, n, i);
		if (i >= n || p[i] != '=')
			continue;
		i = skip_cfws(p, n, i + 1);
		buf_init(&val, 0);
		if (i < n && p[i] == '"') {
			for (i++; i < n && p[i] != '"'; i++) {
				if (p[i] == '\\' && i + 1 < n)
					i++;
				if (p[i] != '\n' && p[i] != '\r' &&
				    val.len < w->blimit)
					buf_putc(&val, p[i]);
			}
			if (i < n)
				i++;
		} else {
			while (i < n && !is_tspecial((unsigned char)p[i])) {
				if (val.len < w->blimit)
					buf_putc(&val, p[i]);
				i++;
			}
		}
		/* a longer boundary is cut, and compared as a prefix
		 * (Postfix's mime_boundary_length_limit) */
		if (strcmp(attr, "boundary") == 0 && w->boundary == NULL &&
		    val.len > 0)
			w->boundary = xstrdup(buf_cstr(&val));
		buf_free(&val);
	}
}

static void
note_header(struct mime_walk *w, const char *p, size_t n)
{
	if (w->no_mime)
		return;
	if (name_is(p, n, "Content-Type")) {
		free(w->boundary);
		w->boundary = NULL;
		parse_content_type(w, p, n);
	} else if (name_is(p, n, "Content-Transfer-Encoding")) {
		char tok[32];
		size_t i = (size_t)((const char *)memchr(p, ':', n) - p) + 1;

		i = skip_cfws(p, n, i);
		(void)get_token(p, n, i, tok, sizeof(tok));
		w->enc = strcmp(tok, "7bit") == 0 ? ENC_7BIT :
			 strcmp(tok, "8bit") == 0 ? ENC_8BIT :
			 strcmp(tok, "binary") == 0 ? ENC_BINARY :
			 strcmp(tok, "base64") == 0 ? ENC_B64 :
			 strcmp(tok, "quoted-printable") == 0 ? ENC_QP :
			 w->enc;	/* unknown: the domain stays (Postfix) */
	}
}

static void
flush_header(struct mime_walk *w)
{
	if (!w->hdr_on)
		return;
	w->hdr_on = false;
	note_header(w, w->hdr.data, w->hdr.len);
	if ((w->check & MIME_WALK_ERR_8BIT_HDR) &&
	    has_8bit(w->hdr.data, w->hdr.len))
		report(w, MIME_WALK_ERR_8BIT_HDR, w->hdr.data, w->hdr.len);
	w->cb->header(w->arg, w->cls,
		      !w->no_mime && is_mime_header(w->hdr.data, w->hdr.len),
		      w->hdr.data, w->hdr.len, w->hdr_nl, w->hdr_trunc);
	buf_reset(&w->hdr);
	w->hdr_trunc = false;
}

static void
hdr_append(struct mime_walk *w, const char *p, size_t n)
{
	size_t room = w->hlimit > w->hdr.len ? w->hlimit - w->hdr.len : 0;

	if (n > room) {
		n = room;
		if (!w->hdr_trunc)
			report(w, MIME_WALK_ERR_TRUNC_HDR, w->hdr.data,
			       w->hdr.len);
		w->hdr_trunc = true;
	}
	buf_append(&w->hdr, p, n);
}

static bool
push(struct mime_walk *w, char *boundary, bool digest)
{
	if (w->nlv >= w->nlimit) {
		const char *t = boundary ? boundary : "message/rfc822";

		report(w, MIME_WALK_ERR_NESTING, t, strlen(t));
		free(boundary);
		return false;
	}
	if (w->nlv == w->lvcap) {
		w->lvcap = w->lvcap ? w->lvcap * 2 : 8;
		if (w->lvcap > w->nlimit)
			w->lvcap = w->nlimit;
		w->lv = xrealloc(w->lv, w->lvcap * sizeof(*w->lv));
	}
	w->lv[w->nlv].boundary = boundary;
	w->lv[w->nlv].blen = boundary ? strlen(boundary) : 0;
	w->lv[w->nlv].digest = digest;
	w->nlv++;
	return true;
}

static const char *const enc_name[] = {
	"7bit", "8bit", "binary", "base64", "quoted-printable", "other",
};

/* The end of a header block (blank: by its empty line, else by a line
 * that is no header): what follows it. As Postfix, a multipart's
 * boundary counts whatever its encoding, and only an empty line leads
 * into an attached message's headers. */
static void
end_block(struct mime_walk *w, bool blank)
{
	const char *type = w->type, *sub = w->subtype;
	bool multi, msg;

	w->st = ST_BODY;
	w->body_enc = w->enc;
	if (w->no_mime)
		return;
	if (type[0] == '\0' && w->dflt_message) {
		type = "message";
		sub = "rfc822";
	}
	multi = strcmp(type, "multipart") == 0;
	msg = strcmp(type, "message") == 0;
	if ((w->check & MIME_WALK_ERR_DOMAIN) && (multi || msg)) {
		bool bad = strcmp(sub, "partial") == 0 ||
			   strcmp(sub, "external-body") == 0
			   ? w->enc != ENC_7BIT
			   : w->enc == ENC_B64 || w->enc == ENC_QP;

		if (bad)
			report(w, MIME_WALK_ERR_DOMAIN, enc_name[w->enc],
			       strlen(enc_name[w->enc]));
	}
	if (multi && w->boundary != NULL) {
		char *b = w->boundary;

		w->boundary = NULL;
		(void)push(w, b, strcmp(sub, "digest") == 0);
		w->body_enc = ENC_7BIT;	/* the preamble */
	} else if (msg && blank &&
		   (strcmp(sub, "rfc822") == 0 || strcmp(sub, "global") == 0)) {
		if (push(w, NULL, false)) {
			block_reset(w, MIME_HDR_NESTED, false);
			w->st = ST_HEAD;
		}
	}
}

/* "--B" or "--B--" for an open boundary B, whatever follows (as Postfix:
 * trailing cruft is ignored): its level, or -1. */
static int
match_boundary(const struct mime_walk *w, const char *p, size_t n, bool *close)
{
	if (n < 3 || p[0] != '-' || p[1] != '-')
		return -1;
	for (int k = (int)w->nlv - 1; k >= 0; k--) {
		const struct level *l = &w->lv[k];
		size_t i;

		if (l->boundary == NULL || n - 2 < l->blen ||
		    memcmp(p + 2, l->boundary, l->blen) != 0)
			continue;
		i = 2 + l->blen;
		*close = n - i >= 2 && p[i] == '-' && p[i + 1] == '-';
		return k;
	}
	return -1;
}

static void
body_line(struct mime_walk *w, const char *p, size_t n, bool nl)
{
	bool close = false;
	int k = w->nlv > 0 ? match_boundary(w, p, n, &close) : -1;

	if ((w->check & MIME_WALK_ERR_8BIT_BODY) && w->body_enc == ENC_7BIT &&
	    has_8bit(p, n))
		report(w, MIME_WALK_ERR_8BIT_BODY, p, n);
	w->cb->body(w->arg, p, n, nl);
	if (k < 0)
		return;
	/* close every level deeper than k */
	while (w->nlv > (unsigned)k + 1) {
		w->nlv--;
		free(w->lv[w->nlv].boundary);
		w->lv[w->nlv].boundary = NULL;
	}
	if (close) {
		w->nlv--;
		free(w->lv[w->nlv].boundary);
		w->lv[w->nlv].boundary = NULL;
		w->st = ST_BODY;
		w->body_enc = ENC_7BIT;	/* the epilogue */
		return;
	}
	block_reset(w, MIME_HDR_MULTIPART, w->lv[k].digest);
	w->st = ST_HEAD;
}

void
mime_walk_line(struct mime_walk *w, const char *p, size_t n, bool nl)
{
	if (w->st == ST_HEAD) {
		if (w->hdr_on && n > 0 && (p[0] == ' ' || p[0] == '\t')) {
			hdr_append(w, "\n", 1);
			hdr_append(w, p, n);
			w->hdr_nl = nl;
			return;
		}
		flush_header(w);
		if (n == 0 || (n == 1 && p[0] == '\r')) {
			w->cb->header_end(w->arg, w->cls, p, n, nl);
			end_block(w, true);
			return;
		}
		if (mime_walk_is_header(p, n)) {
			w->hdr_on = true;
			w->hdr_nl = nl;
			hdr_append(w, p, n);
			return;
		}
		/* not a header: the block ends without its empty line */
		end_block(w, false);
	}
	body_line(w, p, n, nl);
}

void
mime_walk_end(struct mime_walk *w)
{
	if (w->st == ST_HEAD)
		flush_header(w);
}

void
mime_walk_buffer(struct mime_walk *w, const char *p, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(p + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (p + pos)) : len - pos;

		mime_walk_line(w, p + pos, n, nl != NULL);
		pos += n + (nl ? 1 : 0);
	}
	mime_walk_end(w);
}
