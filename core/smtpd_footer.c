/*
 * smtpd_footer.c - appends smtpd_reject_footer to a 4xx/5xx reply (see
 * smtpd_footer.h for the template language).
 * Must not: do I/O, keep state between calls, or let an expansion add a
 * line break or control character to the reply (those become spaces).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/lib/xmalloc.h"
#include "core/smtpd_footer.h"

#define NAME_MAX_LEN 64

/* Length of an enhanced status code "d.ddd.ddd" at s followed by a space. */
static size_t
dsn_len(const char *s)
{
	size_t i = 0;
	int parts = 0;

	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return 0;
	for (;;) {
		size_t n = 0;

		while (isdigit((unsigned char)s[i]) && n < 3) {
			i++;
			n++;
		}
		if (n == 0)
			return 0;
		parts++;
		if (parts == 3)
			break;
		if (s[i] != '.')
			return 0;
		i++;
	}
	return s[i] == ' ' ? i : 0;
}

/* Expands $name / ${name} of the template into out; "\n" kept as is. */
static void
expand(const char *t, struct buf *out, smtpd_footer_lookup lookup, void *ctx)
{
	while (*t) {
		if (t[0] == '$' && t[1] == '$') {
			buf_putc(out, '$');
			t += 2;
		} else if (t[0] == '$' && (t[1] == '{' || t[1] == '_' ||
					   isalnum((unsigned char)t[1]))) {
			char name[NAME_MAX_LEN + 1];
			size_t n = 0;
			const char *v;
			bool brace = t[1] == '{';

			t += brace ? 2 : 1;
			while ((isalnum((unsigned char)*t) || *t == '_') &&
			       n < NAME_MAX_LEN)
				name[n++] = *t++;
			name[n] = '\0';
			if (brace && *t == '}')
				t++;
			v = lookup ? lookup(name, ctx) : NULL;
			for (; v && *v; v++)
				buf_putc(out, ((unsigned char)*v < 0x20 ||
					       *v == 0x7f) ? ' ' : *v);
		} else {
			buf_putc(out, *t == '\r' || *t == '\t' ? ' ' : *t);
			t++;
		}
	}
}

int
smtpd_footer_apply(struct buf *reply, const char *tmpl,
		   smtpd_footer_lookup lookup, void *ctx)
{
	struct buf text, out;
	const char *r = buf_cstr(reply), *last, *p;
	char code[4], dsn[32];
	size_t dl;
	bool join;

	if (tmpl == NULL || *tmpl == '\0' || (r[0] != '4' && r[0] != '5') ||
	    !isdigit((unsigned char)r[1]) || !isdigit((unsigned char)r[2]))
		return 0;
	memcpy(code, r, 3);
	code[3] = '\0';
	last = r;
	while ((p = strstr(last, "\r\n")) != NULL)
		last = p + 2;
	dsn[0] = '\0';
	if (strlen(last) > 4 && (dl = dsn_len(last + 4)) > 0 && dl < sizeof(dsn))
		snprintf(dsn, sizeof(dsn), "%.*s ", (int)dl, last + 4);
	join = tmpl[0] == '\\' && tmpl[1] == 'c';
	buf_init(&text, 0);
	expand(join ? tmpl + 2 : tmpl, &text, lookup, ctx);

	/* Every existing line becomes "CODE-"; the new ones follow. */
	buf_init(&out, 0);
	for (p = r; *p; ) {
		const char *e = strstr(p, "\r\n");
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n >= 4)
			buf_printf(&out, "%s-%.*s", code, (int)(n - 4), p + 4);
		else
			buf_printf(&out, "%s-", code);
		if (e == NULL)
			break;
		buf_puts(&out, "\r\n");
		p = e + 2;
	}
	{
		const char *t = buf_cstr(&text);
		bool first = true;

		for (;;) {
			const char *nl = strstr(t, "\\n");
			size_t n = nl ? (size_t)(nl - t) : strlen(t);

			if (!(first && join))
				buf_printf(&out, "\r\n%s-%s", code, dsn);
			buf_append(&out, t, n);
			first = false;
			if (nl == NULL)
				break;
			t = nl + 2;
		}
	}
	/* The last line ends the reply: "CODE " instead of "CODE-". */
	{
		char *o = out.data;
		char *l = o, *q;

		while ((q = strstr(l, "\r\n")) != NULL)
			l = q + 2;
		l[3] = ' ';
	}
	buf_reset(reply);
	buf_append(reply, out.data, out.len);
	buf_free(&out);
	buf_free(&text);
	return 1;
}
