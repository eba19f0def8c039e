/*
 * fuzz_rewrite.c - libFuzzer target for header address rewriting
 * (core/rewrite.c): the input is a message (headers, blank line, body).
 * Checks, beyond "no crash": an unchanged message gives no copy; a
 * changed one keeps its number of lines and its body byte for byte, and
 * rewriting the result again changes nothing more (canonical maps to a
 * fixed point, masquerading is idempotent).
 * Must not: keep state between inputs but the one rewriting context.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/params.h"
#include "core/rewrite.h"

static struct rewrite_ctx *ctx;

static void
setup(void)
{
	static struct settings s;
	struct errbuf err;

	s.myorigin = "example.net";
	s.mydomain = "example.net";
	s.recipient_delimiter = "+";
	s.append_at_myorigin = true;
	s.local_header_rewrite_clients = "permit_mynetworks";
	s.propagate_unmatched_extensions = "canonical";
	s.canonical_classes = "header_sender, header_recipient";
	s.masquerade_classes = "header_sender, header_recipient";
	s.masquerade_domains = "!keep.example.net, example.net";
	s.canonical_maps = "inline:{ a@old.test=b@new.test, @x.test=@y.test, "
			   "root=admin@example.net }";
	errbuf_clear(&err);
	ctx = rewrite_ctx_new(&s, NULL, NULL, &err);
	if (ctx == NULL)
		abort();
}

static size_t
lines(const char *p, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += p[i] == '\n';
	return k;
}

/* Where the body starts: after the first empty line, as rewrite.c reads. */
static size_t
body_at(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (p[i] == '\n')
			return i;
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
			return i;
		while (i < n && p[i] != '\n')
			i++;
		i++;
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct buf out, again;
	struct errbuf err;
	bool changed = false, changed2 = false;

	if (ctx == NULL)
		setup();
	if (size > 65536)
		return 0;
	buf_init(&out, 0);
	buf_init(&again, 0);
	errbuf_clear(&err);
	if (rewrite_headers(ctx, REWRITE_HDR_LOCAL, in, size, &out, &changed,
			    &err) < 0)
		abort();	/* inline: tables never fail */
	if (!changed && out.len != 0)
		abort();
	if (changed) {
		size_t b1 = body_at(in, size), b2 = body_at(out.data, out.len);

		if (lines(in, size) != lines(out.data, out.len))
			abort();
		if (size - b1 != out.len - b2 ||
		    memcmp(in + b1, out.data + b2, size - b1) != 0)
			abort();
		if (rewrite_headers(ctx, REWRITE_HDR_LOCAL, out.data, out.len,
				    &again, &changed2, &err) < 0 || changed2)
			abort();
	}
	buf_free(&out);
	buf_free(&again);
	return 0;
}
