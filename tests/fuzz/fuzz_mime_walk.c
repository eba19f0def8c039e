/*
 * fuzz_mime_walk.c - libFuzzer target for the streaming MIME walker
 * (core/mime_walk.c). Beyond "no crash": the callbacks rebuild the input
 * byte for byte unless a header was truncated (then the copy is shorter
 * and MIME_WALK_ERR_TRUNC_HDR is reported), no header passed on is
 * longer than the header limit, errors are reported once each with
 * their own flag; run with the strict checks on, with MIME processing
 * off, and with a nesting limit of 2.
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

static unsigned seen;	/* errors reported by on_error, this run */

static void
on_error(void *arg, unsigned err, const char *t, size_t n)
{
	/* one flag, reported once */
	if (err == 0 || (err & (err - 1)) != 0 || (seen & err) != 0)
		abort();
	seen |= err;
}

static const struct mime_walk_cb cb = { on_header, on_end, on_body,
					 on_error };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int mode = 0; mode < 3; mode++) {
		struct buf copy;
		struct mime_walk *w;
		unsigned errs;

		buf_init(&copy, 0);
		struct mime_walk_opts o = {
			.header_limit = HLIMIT,
			.nesting_limit = mode == 2 ? 2 : 0,
			.no_mime = mode == 1,
			.check = mode == 2 ? 0 : MIME_WALK_ERR_8BIT_HDR |
				 MIME_WALK_ERR_8BIT_BODY | MIME_WALK_ERR_DOMAIN,
		};

		w = mime_walk_new(&o, &cb, &copy);
		mime_walk_buffer(w, (const char *)data, size);
		errs = mime_walk_errors(w);
		if (errs != seen)
			abort();
		seen = 0;
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
