/*
 * milter_proto.c - encoding of the MTA's milter packets and decoding of
 * the milter's replies (see milter_proto.h). Pure functions on memory.
 * Must not: do I/O or log; read past a length it was given; accept a
 * string without its terminating NUL.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/milter_proto.h"

static void
put32(struct buf *out, uint32_t v)
{
	unsigned char b[4];

	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
	(void)buf_append(out, b, 4);
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void
milter_put(struct buf *out, int cmd, const void *data, size_t len)
{
	put32(out, (uint32_t)(len + 1));
	(void)buf_putc(out, cmd);
	if (len > 0)
		(void)buf_append(out, data, len);
}

void
milter_put_optneg(struct buf *out, uint32_t version, uint32_t actions,
		  uint32_t protocol)
{
	put32(out, 13);
	(void)buf_putc(out, MILTER_C_OPTNEG);
	put32(out, version);
	put32(out, actions);
	put32(out, protocol);
}

/* Appends s and its NUL. */
static void
put_str(struct buf *b, const char *s)
{
	(void)buf_append(b, s, strlen(s) + 1);
}

void
milter_put_connect(struct buf *out, const char *host, const char *addr,
		   unsigned port)
{
	struct buf d;

	buf_init(&d, 0);
	put_str(&d, host);
	if (addr == NULL || *addr == '\0') {
		(void)buf_putc(&d, 'U');
	} else {
		unsigned char pb[2] = { (unsigned char)(port >> 8),
					(unsigned char)port };

		(void)buf_putc(&d, strchr(addr, ':') != NULL ? '6' : '4');
		(void)buf_append(&d, pb, 2);
		put_str(&d, addr);
	}
	milter_put(out, MILTER_C_CONNECT, d.data, d.len);
	buf_free(&d);
}

void
milter_put_strings(struct buf *out, int cmd, const char *const *v, size_t n)
{
	struct buf d;

	buf_init(&d, 0);
	for (size_t i = 0; i < n; i++)
		put_str(&d, v[i]);
	milter_put(out, cmd, d.data, d.len);
	buf_free(&d);
}

void
milter_put_macros(struct buf *out, int cmd, const char *const *names,
		  const char *const *values, size_t n)
{
	struct buf d;

	buf_init(&d, 0);
	(void)buf_putc(&d, cmd);
	for (size_t i = 0; i < n; i++) {
		put_str(&d, names[i]);
		put_str(&d, values[i]);
	}
	milter_put(out, MILTER_C_MACRO, d.data, d.len);
	buf_free(&d);
}

int
milter_get(const unsigned char *p, size_t len, size_t max, int *cmd,
	   const unsigned char **data, size_t *dlen, size_t *used)
{
	uint32_t n;

	if (len < 4)
		return 0;
	n = get32(p);
	if (n == 0 || n > max)
		return -1;
	if (len - 4 < n)
		return 0;
	*cmd = p[4];
	*data = p + 5;
	*dlen = n - 1;
	*used = 4 + (size_t)n;
	return 1;
}

int
milter_parse_optneg(const unsigned char *d, size_t len, struct milter_optneg *o)
{
	size_t off = 12;

	memset(o, 0, sizeof(*o));
	if (len < 12)
		return -1;
	o->version = get32(d);
	o->actions = get32(d + 4);
	o->protocol = get32(d + 8);
	/* optional: (stage, "sym sym ...\0") pairs */
	while (off < len) {
		uint32_t stage;
		const unsigned char *nul;

		if (len - off < 5)
			return -1;
		stage = get32(d + off);
		off += 4;
		nul = memchr(d + off, '\0', len - off);
		if (nul == NULL || stage >= MILTER_M_COUNT)
			return -1;
		o->macros[stage] = (const char *)(d + off);
		o->macros_len[stage] = (size_t)(nul - (d + off));
		off = (size_t)(nul - d) + 1;
	}
	return 0;
}

int
milter_parse_strings(const unsigned char *d, size_t len, uint32_t *index,
		     const char **v, size_t n)
{
	size_t off = 0;

	if (index != NULL) {
		if (len < 4)
			return -1;
		*index = get32(d);
		off = 4;
	}
	for (size_t i = 0; i < n; i++) {
		const unsigned char *nul;

		if (off >= len)
			return -1;
		nul = memchr(d + off, '\0', len - off);
		if (nul == NULL)
			return -1;
		v[i] = (const char *)(d + off);
		off = (size_t)(nul - d) + 1;
	}
	return off == len ? 0 : -1;
}

int
milter_parse_strings_opt(const unsigned char *d, size_t len, const char **v,
			 size_t max)
{
	size_t off = 0, n = 0;

	while (off < len) {
		const unsigned char *nul = memchr(d + off, '\0', len - off);

		if (nul == NULL || n == max)
			return -1;
		v[n++] = (const char *)(d + off);
		off = (size_t)(nul - d) + 1;
	}
	return n > 0 ? (int)n : -1;
}

/* "4xx" or "5xx" then ' ', '-' or the end: the code's length (3), or 0. */
static int
reply_code(const char *p)
{
	if ((p[0] != '4' && p[0] != '5') || !isdigit((unsigned char)p[1]) ||
	    !isdigit((unsigned char)p[2]))
		return 0;
	if (p[3] != ' ' && p[3] != '-' && p[3] != '\0' && p[3] != '\r' &&
	    p[3] != '\n')
		return 0;
	return 3;
}

int
milter_reply_text(const char *text, struct buf *out)
{
	const char *p = text;

	buf_reset(out);
	if (!reply_code(text))
		return -1;
	while (*p != '\0') {
		const char *e = p + strcspn(p, "\r\n");
		const char *next = e;

		while (*next == '\r' || *next == '\n')
			next++;
		if (strncmp(p, text, 3) != 0 || !reply_code(p))
			return -1;
		for (const char *q = p; q < e; q++)
			if ((unsigned char)*q < 0x20 && *q != '\t')
				return -1;
		if (out->len > 0)
			(void)buf_puts(out, "\r\n");
		/* every line but the last continues: "550-" */
		(void)buf_append(out, p, 3);
		(void)buf_putc(out, *next != '\0' ? '-' : ' ');
		if (e - p > 4)
			(void)buf_append(out, p + 4, (size_t)(e - p - 4));
		else if (e - p == 4 || e - p == 3) {
			/* a bare code: Postfix's words */
			(void)buf_puts(out, p[0] == '4'
				? "4.7.1 Service unavailable - try again later"
				: "5.7.1 Command rejected");
		}
		p = next;
	}
	/* no trailing separator */
	while (out->len > 0 && out->data[out->len - 1] == ' ')
		out->data[--out->len] = '\0';
	return 0;
}

const char *
milter_cmd_name(int cmd)
{
	switch (cmd) {
	case MILTER_C_ABORT:	return "SMFIC_ABORT";
	case MILTER_C_BODY:	return "SMFIC_BODY";
	case MILTER_C_CONNECT:	return "SMFIC_CONNECT";
	case MILTER_C_MACRO:	return "SMFIC_MACRO";
	case MILTER_C_BODYEOB:	return "SMFIC_BODYEOB";
	case MILTER_C_HELO:	return "SMFIC_HELO";
	case MILTER_C_QUIT_NC:	return "SMFIC_QUIT_NC";
	case MILTER_C_HEADER:	return "SMFIC_HEADER";
	case MILTER_C_MAIL:	return "SMFIC_MAIL";
	case MILTER_C_EOH:	return "SMFIC_EOH";
	case MILTER_C_OPTNEG:	return "SMFIC_OPTNEG";
	case MILTER_C_QUIT:	return "SMFIC_QUIT";
	case MILTER_C_RCPT:	return "SMFIC_RCPT";
	case MILTER_C_DATA:	return "SMFIC_DATA";
	case MILTER_C_UNKNOWN:	return "SMFIC_UNKNOWN";
	default:		return "unknown command";
	}
}
