/*
 * managesieve_cmd.c - the ManageSieve command parser and string quoting
 * (RFC 5804 4). Works on what is buffered so far and says how many bytes
 * it still needs, so a large literal is scanned once, when complete.
 * Must not: allocate more than the caller's bounds allow, or do I/O.
 */
#include <stdlib.h>
#include <string.h>

#include "core/lib/xmalloc.h"
#include "core/managesieve_cmd.h"

void
msv_cmd_free(struct msv_cmd *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].s);
	c->n = 0;
}

static bool
atom_char(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f && strchr("(){%*\"\\]", ch) == NULL;
}

/* Skips to just past the next LF; MORE if there is none yet. */
static enum msv_parse_rc
bad(const char *p, size_t len, size_t i, size_t *used, size_t *need,
    const char **why, const char *reason)
{
	const char *lf = i < len ? memchr(p + i, '\n', len - i) : NULL;

	*why = reason;
	if (lf == NULL) {
		if (len > MSV_LINE_MAX) {
			*why = "line too long";
			return MSV_FATAL;
		}
		*need = len + 1;
		return MSV_MORE;
	}
	*used = (size_t)(lf - p) + 1;
	return MSV_BAD;
}

enum msv_parse_rc
msv_parse(const char *p, size_t len, size_t lit_max, struct msv_cmd *c,
	  size_t *used, size_t *need, const char **why)
{
	size_t i = 0, lit_total = 0, nonlit_base = 0;
	bool in_literal = false;
	enum msv_parse_rc rc;

	c->n = 0;
	*why = NULL;
	for (;;) {
		struct msv_tok t = { NULL, 0, false };

		while (i < len && p[i] == ' ')
			i++;
		if (i - nonlit_base > MSV_LINE_MAX) {
			*why = "line too long";
			rc = MSV_FATAL;
			goto out;
		}
		if (i >= len) {
			*need = len + 1;
			rc = MSV_MORE;
			goto out;
		}
		if (p[i] == '\r' || p[i] == '\n') {
			if (p[i] == '\r') {
				if (i + 1 >= len) {
					*need = len + 1;
					rc = MSV_MORE;
					goto out;
				}
				if (p[i + 1] != '\n') {
					rc = bad(p, len, i, used, need, why,
						 "bare CR");
					goto out;
				}
				i++;
			}
			*used = i + 1;
			if (c->n == 0) {
				*why = "empty command";
				return MSV_BAD;
			}
			return MSV_OK;
		}
		if (c->n == MSV_TOKENS_MAX) {
			rc = bad(p, len, i, used, need, why, "too many arguments");
			goto out;
		}
		if (p[i] == '"') {
			struct buf b;
			size_t k = i + 1;

			buf_init(&b, 0);
			for (;; k++) {
				if (k >= len) {
					buf_free(&b);
					*need = len + 1;
					rc = MSV_MORE;
					goto out;
				}
				if (p[k] == '"')
					break;
				if (p[k] == '\\' && k + 1 < len &&
				    (p[k + 1] == '"' || p[k + 1] == '\\'))
					k++;
				else if (p[k] == '\\' && k + 1 >= len) {
					buf_free(&b);
					*need = len + 1;
					rc = MSV_MORE;
					goto out;
				} else if (p[k] == '\\' || p[k] == '\r' ||
					   p[k] == '\n' || p[k] == '\0') {
					buf_free(&b);
					rc = bad(p, len, k, used, need, why,
						 "bad character in quoted string");
					goto out;
				}
				if (b.len >= MSV_QUOTED_MAX) {
					buf_free(&b);
					rc = bad(p, len, k, used, need, why,
						 "quoted string too long");
					goto out;
				}
				buf_putc(&b, p[k]);
			}
			t.len = b.len;
			t.s = b.len ? buf_steal(&b) : xstrdup("");
			buf_free(&b);
			i = k + 1;
		} else if (p[i] == '{') {
			size_t k = i + 1, n = 0, start;
			int digits = 0;

			while (k < len && p[k] >= '0' && p[k] <= '9' &&
			       digits < 10) {
				n = n * 10 + (size_t)(p[k] - '0');
				k++;
				digits++;
			}
			if (k < len && p[k] >= '0' && p[k] <= '9') {
				*why = "literal too large";
				rc = MSV_FATAL;
				goto out;
			}
			if (k < len && p[k] == '+')
				k++;
			if (k + 3 > len) {
				if (digits >= 10) {
					*why = "literal too large";
					rc = MSV_FATAL;
					goto out;
				}
				*need = k + 3;
				rc = MSV_MORE;
				goto out;
			}
			if (digits == 0 || p[k] != '}' || p[k + 1] != '\r' ||
			    p[k + 2] != '\n') {
				rc = bad(p, len, i, used, need, why,
					 "bad literal");
				goto out;
			}
			if (n > lit_max || lit_total + n > lit_max) {
				*why = "literal too large";
				rc = MSV_FATAL;
				goto out;
			}
			start = k + 3;
			if (len < start + n) {
				in_literal = true;
				*need = start + n + 1;
				rc = MSV_MORE;
				goto out;
			}
			lit_total += n;
			t.s = xmalloc(n + 1);
			memcpy(t.s, p + start, n);
			t.s[n] = '\0';
			t.len = n;
			i = start + n;
			nonlit_base += n;
		} else if (atom_char((unsigned char)p[i])) {
			size_t k = i;

			while (k < len && atom_char((unsigned char)p[k]))
				k++;
			if (k >= len) {
				*need = len + 1;
				rc = MSV_MORE;
				goto out;
			}
			t.s = xstrndup(p + i, k - i);
			t.len = k - i;
			t.atom = true;
			i = k;
		} else {
			rc = bad(p, len, i, used, need, why, "bad character");
			goto out;
		}
		c->v[c->n++] = t;
		if (i < len && p[i] != ' ' && p[i] != '\r' && p[i] != '\n') {
			rc = bad(p, len, i, used, need, why,
				 "missing space between arguments");
			goto out;
		}
	}
out:
	if (rc == MSV_MORE && !in_literal && len - nonlit_base > MSV_LINE_MAX) {
		*why = "line too long";
		rc = MSV_FATAL;
	}
	msv_cmd_free(c);
	return rc;
}

void
msv_quote(struct buf *out, const char *s, size_t len)
{
	if (len > MSV_QUOTED_MAX || memchr(s, '\r', len) != NULL ||
	    memchr(s, '\n', len) != NULL || memchr(s, '\0', len) != NULL) {
		buf_printf(out, "{%zu}\r\n", len);
		buf_append(out, s, len);
		return;
	}
	buf_putc(out, '"');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_putc(out, '\\');
		buf_putc(out, s[i]);
	}
	buf_putc(out, '"');
}

bool
msv_name_ok(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0 || len > 128 || s[0] == '.')
		return false;
	while (i < len) {
		unsigned char ch = (unsigned char)s[i];
		size_t n;

		if (ch < 0x20 || ch == 0x7f || ch == '/')
			return false;
		if (ch < 0x80) {
			i++;
			continue;
		}
		if ((ch & 0xe0) == 0xc0 && ch >= 0xc2)
			n = 2;
		else if ((ch & 0xf0) == 0xe0)
			n = 3;
		else if ((ch & 0xf8) == 0xf0 && ch <= 0xf4)
			n = 4;
		else
			return false;
		if (i + n > len)
			return false;
		for (size_t k = 1; k < n; k++)
			if (((unsigned char)s[i + k] & 0xc0) != 0x80)
				return false;
		if (n == 2 && (unsigned char)s[i + 1] < 0x80)
			return false;
		i += n;
	}
	return true;
}
