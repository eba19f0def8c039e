/*
 * sieve_lex.c - the Sieve lexer (RFC 5228 section 8.1): identifiers, tags,
 * numbers with K/M/G, quoted strings with \ escapes, text: ... . multi-line
 * strings with dot-unstuffing, hash and bracket comments. Tracks line and
 * column of every token. Accepts CRLF and bare LF line ends.
 * Must not: allocate without bound (token text is capped by the script size).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "delivery/sieve/sieve_int.h"

void
sieve_lex_init(struct sieve_lex *lx, const char *text, size_t len)
{
	memset(lx, 0, sizeof(*lx));
	lx->p = text;
	lx->end = text + len;
	lx->line = 1;
	lx->col = 1;
	buf_init(&lx->text, SIEVE_MAX_SCRIPT_SIZE);
}

void
sieve_lex_free(struct sieve_lex *lx)
{
	buf_free(&lx->text);
}

const char *
sieve_tok_name(enum sieve_tok t)
{
	static const char *const n[] = {
		"end of script", "identifier", "tag", "number", "string", "'['",
		"']'", "'('", "')'", "'{'", "'}'", "','", "';'", "error",
	};
	return n[t];
}

static int
peek(const struct sieve_lex *lx, size_t off)
{
	return lx->p + off < lx->end ? (unsigned char)lx->p[off] : -1;
}

static void
adv(struct sieve_lex *lx)
{
	if (lx->p >= lx->end)
		return;
	if (*lx->p == '\n') {
		lx->line++;
		lx->col = 1;
	} else
		lx->col++;
	lx->p++;
}

static enum sieve_tok
fail(struct sieve_lex *lx, struct errbuf *err, int line, int col,
     const char *msg)
{
	errbuf_set(err, "%d:%d: %s", line, col, msg);
	lx->tok = TOK_ERR;
	return TOK_ERR;
}

/* Skips white space and comments; -1 on an unterminated comment. */
static int
skip_ws(struct sieve_lex *lx, struct errbuf *err)
{
	for (;;) {
		int c = peek(lx, 0);

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			adv(lx);
		else if (c == '#') {
			while (peek(lx, 0) != -1 && peek(lx, 0) != '\n')
				adv(lx);
		} else if (c == '/' && peek(lx, 1) == '*') {
			int l = lx->line, co = lx->col;

			adv(lx);
			adv(lx);
			while (!(peek(lx, 0) == '*' && peek(lx, 1) == '/')) {
				if (peek(lx, 0) == -1) {
					fail(lx, err, l, co,
					     "unterminated bracket comment");
					return -1;
				}
				adv(lx);
			}
			adv(lx);
			adv(lx);
		} else
			return 0;
	}
}

static enum sieve_tok
lex_quoted(struct sieve_lex *lx, struct errbuf *err)
{
	adv(lx);	/* the opening quote */
	for (;;) {
		int c = peek(lx, 0);

		if (c == -1)
			return fail(lx, err, lx->tline, lx->tcol,
				    "unterminated string");
		if (c == '"') {
			adv(lx);
			return lx->tok = TOK_STR;
		}
		if (c == '\\') {
			/* RFC 5228 2.4.2: "\x" is x for any x. */
			adv(lx);
			c = peek(lx, 0);
			if (c == -1)
				continue;
		}
		if (buf_putc(&lx->text, c) < 0)
			return fail(lx, err, lx->tline, lx->tcol,
				    "string too long");
		adv(lx);
	}
}

/* text: already consumed; RFC 5228 2.4.2 multi-line strings. */
static enum sieve_tok
lex_multiline(struct sieve_lex *lx, struct errbuf *err)
{
	int c;

	while ((c = peek(lx, 0)) == ' ' || c == '\t')
		adv(lx);
	if (c == '#') {
		while (peek(lx, 0) != -1 && peek(lx, 0) != '\n')
			adv(lx);
	}
	if (peek(lx, 0) == '\r')
		adv(lx);
	if (peek(lx, 0) != '\n')
		return fail(lx, err, lx->line, lx->col,
			    "expected end of line after 'text:'");
	adv(lx);
	for (;;) {
		const char *ls = lx->p, *le;
		size_t n;

		if (ls >= lx->end)
			return fail(lx, err, lx->tline, lx->tcol,
				    "unterminated multi-line string");
		le = memchr(ls, '\n', (size_t)(lx->end - ls));
		if (le == NULL)
			le = lx->end;
		n = (size_t)(le - ls);
		if (n > 0 && ls[n - 1] == '\r')
			n--;
		if (n == 1 && ls[0] == '.') {
			while (lx->p < le)
				adv(lx);
			adv(lx);
			lx->multiline = true;
			return lx->tok = TOK_STR;
		}
		if (n > 0 && ls[0] == '.')	/* dot-stuffing */
			ls++, n--;
		if (buf_append(&lx->text, ls, n) < 0
		    || buf_putc(&lx->text, '\r') < 0
		    || buf_putc(&lx->text, '\n') < 0)
			return fail(lx, err, lx->tline, lx->tcol,
				    "string too long");
		while (lx->p < le)
			adv(lx);
		if (le == lx->end)
			return fail(lx, err, lx->tline, lx->tcol,
				    "unterminated multi-line string");
		adv(lx);
	}
}

enum sieve_tok
sieve_lex_next(struct sieve_lex *lx, struct errbuf *err)
{
	int c;

	if (lx->tok == TOK_ERR)
		return TOK_ERR;
	buf_reset(&lx->text);
	lx->multiline = false;
	if (skip_ws(lx, err) < 0)
		return TOK_ERR;
	lx->tline = lx->line;
	lx->tcol = lx->col;
	c = peek(lx, 0);
	switch (c) {
	case -1: return lx->tok = TOK_EOF;
	case '[': adv(lx); return lx->tok = TOK_LBRACK;
	case ']': adv(lx); return lx->tok = TOK_RBRACK;
	case '(': adv(lx); return lx->tok = TOK_LPAREN;
	case ')': adv(lx); return lx->tok = TOK_RPAREN;
	case '{': adv(lx); return lx->tok = TOK_LBRACE;
	case '}': adv(lx); return lx->tok = TOK_RBRACE;
	case ',': adv(lx); return lx->tok = TOK_COMMA;
	case ';': adv(lx); return lx->tok = TOK_SEMI;
	case '"': return lex_quoted(lx, err);
	default: break;
	}
	if (c >= '0' && c <= '9') {
		unsigned long long v = 0;

		while ((c = peek(lx, 0)) >= '0' && c <= '9') {
			if (v > (~0ULL - 9) / 10)
				return fail(lx, err, lx->tline, lx->tcol,
					    "number too large");
			v = v * 10 + (unsigned)(c - '0');
			adv(lx);
		}
		c = peek(lx, 0);
		if (c == 'K' || c == 'k' || c == 'M' || c == 'm' || c == 'G'
		    || c == 'g') {
			int sh = (c == 'K' || c == 'k') ? 10
				 : (c == 'M' || c == 'm') ? 20 : 30;

			if (v > (~0ULL >> sh))
				return fail(lx, err, lx->tline, lx->tcol,
					    "number too large");
			v <<= sh;
			adv(lx);
		}
		if (isalpha(peek(lx, 0)) || peek(lx, 0) == '_')
			return fail(lx, err, lx->tline, lx->tcol,
				    "bad number");
		lx->num = v;
		return lx->tok = TOK_NUM;
	}
	if (c == ':' || isalpha(c) || c == '_') {
		bool tag = c == ':';

		if (tag) {
			adv(lx);
			c = peek(lx, 0);
			if (!(isalpha(c) || c == '_'))
				return fail(lx, err, lx->tline, lx->tcol,
					    "expected a tag name after ':'");
		}
		while ((c = peek(lx, 0)) != -1 && (isalnum(c) || c == '_')) {
			if (buf_putc(&lx->text, tolower(c)) < 0)
				return fail(lx, err, lx->tline, lx->tcol,
					    "identifier too long");
			adv(lx);
		}
		if (!tag && strcmp(buf_cstr(&lx->text), "text") == 0
		    && peek(lx, 0) == ':') {
			adv(lx);
			buf_reset(&lx->text);
			return lex_multiline(lx, err);
		}
		return lx->tok = tag ? TOK_TAG : TOK_IDENT;
	}
	{
		char msg[64];

		snprintf(msg, sizeof(msg), isprint(c)
			 ? "unexpected character '%c'"
			 : "unexpected byte 0x%02x", c);
		return fail(lx, err, lx->tline, lx->tcol, msg);
	}
}
