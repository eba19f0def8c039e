/*
 * milter_edit.c - header fields and body of a message being edited by
 * milters (see milter_edit.h).
 * Must not: do I/O or log; let the message grow past m->max.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/lib/xmalloc.h"
#include "core/milter_edit.h"

void
milter_msg_load(struct milter_msg *m, const char *content, size_t len,
		size_t max)
{
	const char *p = content, *end = content + len;
	struct buf field;

	memset(m, 0, sizeof(*m));
	strlist_init(&m->hdrs);
	buf_init(&m->newbody, 0);
	buf_init(&field, 0);
	m->max = max;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t n = (size_t)(le - p);

		if (n == 0) {		/* the empty line: the body follows */
			p = nl ? nl + 1 : end;
			break;
		}
		if ((*p == ' ' || *p == '\t') && field.len > 0) {
			(void)buf_putc(&field, '\n');
			(void)buf_append(&field, p, n);
		} else if (memchr(p, ':', n) != NULL && *p != ' ' && *p != '\t') {
			if (field.len > 0)
				strlist_add(&m->hdrs, buf_cstr(&field));
			buf_reset(&field);
			(void)buf_append(&field, p, n);
		} else {
			break;		/* not a header line: the body */
		}
		p = nl ? nl + 1 : end;
	}
	if (field.len > 0)
		strlist_add(&m->hdrs, buf_cstr(&field));
	buf_free(&field);
	m->body = p;
	m->body_len = (size_t)(end - p);
	for (size_t i = 0; i < m->hdrs.n; i++)
		m->size += strlen(m->hdrs.v[i]) + 1;
}

void
milter_msg_free(struct milter_msg *m)
{
	strlist_free(&m->hdrs);
	buf_free(&m->newbody);
}

size_t
milter_hdr_name(const char *field)
{
	size_t n = strcspn(field, ":");

	while (n > 0 && (field[n - 1] == ' ' || field[n - 1] == '\t'))
		n--;
	return n;
}

void
milter_hdr_value(const char *field, bool leadspc, struct buf *v)
{
	const char *p = strchr(field, ':');

	buf_reset(v);
	p = p ? p + 1 : field + strlen(field);
	if (!leadspc)
		while (*p == ' ' || *p == '\t')
			p++;
	(void)buf_puts(v, p);
}

/* A header name: printable ASCII but ':' and white space (RFC 5322). */
static bool
name_ok(const char *name)
{
	if (*name == '\0' || strlen(name) > 256)
		return false;
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p <= 32 || (unsigned char)*p >= 127 ||
		    *p == ':')
			return false;
	return true;
}

/* "Name: value" with LF folding, every continuation line starting with
 * white space; NULL when it would exceed the bound. */
static char *
make_field(struct milter_msg *m, const char *name, const char *value,
	   bool leadspc, size_t replaced)
{
	struct buf f;

	buf_init(&f, 0);
	(void)buf_puts(&f, name);
	(void)buf_putc(&f, ':');
	if (!leadspc && *value != '\0')
		(void)buf_putc(&f, ' ');
	for (const char *p = value; *p; p++) {
		if (*p == '\r' && p[1] == '\n')
			continue;
		if (*p == '\r')
			continue;
		(void)buf_putc(&f, *p);
		if (*p == '\n' && p[1] != ' ' && p[1] != '\t' && p[1] != '\0')
			(void)buf_putc(&f, '\t');
	}
	/* no trailing line end */
	while (f.len > 0 && f.data[f.len - 1] == '\n')
		f.data[--f.len] = '\0';
	if (m->max > 0 && m->size - replaced + f.len + 1 + m->body_len > m->max) {
		buf_free(&f);
		return NULL;
	}
	m->size = m->size - replaced + f.len + 1;
	return buf_steal(&f);
}

static void
insert_at(struct strlist *l, size_t i, char *s)
{
	strlist_add(l, "");
	free(l->v[l->n - 1]);
	memmove(l->v + i + 1, l->v + i, (l->n - 1 - i) * sizeof(*l->v));
	l->v[i] = s;
}

int
milter_msg_add(struct milter_msg *m, const char *name, const char *value,
	       bool leadspc)
{
	return milter_msg_insert(m, (unsigned)-1, name, value, leadspc);
}

int
milter_msg_insert(struct milter_msg *m, unsigned index, const char *name,
		  const char *value, bool leadspc)
{
	char *f;

	if (!name_ok(name) || (f = make_field(m, name, value, leadspc, 0)) == NULL)
		return -1;
	insert_at(&m->hdrs, index > m->hdrs.n ? m->hdrs.n : index, f);
	return 0;
}

int
milter_msg_change(struct milter_msg *m, unsigned index, const char *name,
		  const char *value, bool leadspc)
{
	size_t nl = strlen(name), i;
	unsigned seen = 0;
	char *f;

	if (!name_ok(name))
		return -1;
	if (index == 0)
		index = 1;
	for (i = 0; i < m->hdrs.n; i++) {
		const char *h = m->hdrs.v[i];

		if (milter_hdr_name(h) == nl && strncasecmp(h, name, nl) == 0 &&
		    ++seen == index)
			break;
	}
	if (i == m->hdrs.n)		/* not there */
		return *value == '\0' ? 0 :
		       milter_msg_add(m, name, value, leadspc);
	if (*value == '\0') {		/* delete it */
		m->size -= strlen(m->hdrs.v[i]) + 1;
		free(m->hdrs.v[i]);
		memmove(m->hdrs.v + i, m->hdrs.v + i + 1,
			(m->hdrs.n - i - 1) * sizeof(*m->hdrs.v));
		m->hdrs.n--;
		m->hdrs.v[m->hdrs.n] = NULL;
		return 0;
	}
	f = make_field(m, name, value, leadspc, strlen(m->hdrs.v[i]) + 1);
	if (f == NULL)
		return -1;
	free(m->hdrs.v[i]);
	m->hdrs.v[i] = f;
	return 0;
}

int
milter_msg_body_chunk(struct milter_msg *m, const char *p, size_t n)
{
	if (!m->replaced) {
		m->replaced = true;
		buf_reset(&m->newbody);
		m->body_len = 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (m->pending_cr) {
			m->pending_cr = false;
			if (p[i] != '\n')
				(void)buf_putc(&m->newbody, '\r');
		}
		if (p[i] == '\r') {
			m->pending_cr = true;
			continue;
		}
		if (m->max > 0 && m->size + m->newbody.len + 1 > m->max)
			return -1;
		(void)buf_putc(&m->newbody, p[i]);
	}
	m->body_len = m->newbody.len;
	return 0;
}

const char *
milter_msg_body(const struct milter_msg *m, size_t *len)
{
	if (m->replaced) {
		*len = m->newbody.len;
		return m->newbody.data ? m->newbody.data : "";
	}
	*len = m->body_len;
	return m->body;
}

int
milter_msg_store(const struct milter_msg *m, struct buf *out)
{
	const char *body;
	size_t blen;

	buf_reset(out);
	for (size_t i = 0; i < m->hdrs.n; i++)
		if (buf_puts(out, m->hdrs.v[i]) < 0 || buf_putc(out, '\n') < 0)
			goto big;
	if (buf_putc(out, '\n') < 0)
		goto big;
	body = milter_msg_body(m, &blen);
	if (buf_append(out, body, blen) < 0)
		goto big;
	if (m->replaced && m->pending_cr && buf_putc(out, '\r') < 0)
		goto big;
	return 0;
big:
	buf_reset(out);
	return -1;
}

bool
milter_strip_addr(const char *a, struct buf *out)
{
	size_t n = strlen(a);

	buf_reset(out);
	if (n >= 2 && a[0] == '<' && a[n - 1] == '>')
		return buf_append(out, a + 1, n - 2) == 0;
	return buf_puts(out, a) == 0;
}
