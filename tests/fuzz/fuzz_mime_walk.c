/*
 * fuzz_mime_walk.c - libFuzzer target for the streaming MIME walker
 * (core/mime_walk.c). Beyond "no crash": the callbacks rebuild the input
 * byte for byte unless a header was truncated (then the copy is shorter
 * and MIME_WALK_ERR_TRUNC_HDR is reported), no header passed on is
 * longer than the header limit, and the walker is also run with MIME
 * processing off and with a nesting limit of 2.
 * Must not: keep state between inputs.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/lib/buf.h"
#include "core/mime_walk.h"

#define HLIMIT 256

static void
on_header(void *arg, enum mime_hdr_class cls, bool is_mime, const char *t,
	  size_t n, bool nl, bool trunc)
{
	if (n > HLIMIT || (unsigned)cls > MIME_HDR_NESTED)
		abort();
	buf_append(arg, t, n);
	if (nl)
		buf_putc(arg, '\n');
}

static void
on_end(void *arg, enum mime_hdr_class cls, const char *l, size_t n, bool nl)
{
	buf_append(arg, l, n);
	if (nl)
		buf_putc(arg, '\n');
}

static void
on_body(void *arg, const char *l, size_t n, bool nl)
{
	buf_append(arg, l, n);
	if (nl)
		buf_putc(arg, '\n');
}

static const struct mime_walk_cb cb = { on_header, on_end, on_body };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int mode = 0; mode < 3; mode++) {
		struct buf copy;
		struct mime_walk *w;
		unsigned errs;

		buf_init(&copy, 0);
		w = mime_walk_new(HLIMIT, mode == 2 ? 2 : 0, mode == 1, &cb,
				  &copy);
		mime_walk_buffer(w, (const char *)data, size);
		errs = mime_walk_errors(w);
		mime_walk_free(&w);
		if (errs & MIME_WALK_ERR_TRUNC_HDR) {
			if (copy.len >= size)
				abort();
		} else if (copy.len != size ||
			   (size && memcmp(copy.data, data, size) != 0)) {
			abort();
		}
		buf_free(&copy);
	}
	return 0;
}
