/*
 * fuzz_sieve.c - libFuzzer target for the Sieve lexer, parser and checker,
 * and, when a script compiles, the interpreter on a fixed message (the
 * script text doubles as the message body so matches see varied input).
 * include finds the input itself under every name (cycles, depth and
 * count limits), duplicate answers "seen" for every other ID, and the
 * message versions editheader makes are read back.
 * Must not: touch the disk.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "delivery/sieve/sieve.h"

struct input {
	const uint8_t *data;
	size_t  size;
	int     ndup;
};

static int
include_cb(void *arg, bool global, const char *name, struct sieve_script **sp,
	   struct errbuf *err)
{
	const struct input *in = arg;

	(void)global;
	if (strcmp(name, "none") == 0)
		return 0;
	*sp = sieve_compile((const char *)in->data, in->size, name, err);
	return *sp ? 1 : -1;
}

static int
dup_cb(void *arg, const char *key)
{
	struct input *in = arg;

	(void)key;
	return in->ndup++ & 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size, 0 };
	struct errbuf err;
	struct sieve_script *s = sieve_compile((const char *)data, size, "fuzz",
					       &err);

	if (s != NULL) {
		static const char head[] = "From: a@b.c\nTo: x+y@d.e\n"
			"Subject: =?utf-8?q?t=C3=A9st?= [x] y\n\n";
		char msg[sizeof(head) + 512];
		size_t n = size < 512 ? size : 512;
		struct sieve_msg m = { 0 };
		struct sieve_result r;

		memcpy(msg, head, sizeof(head) - 1);
		memcpy(msg + sizeof(head) - 1, data, n);
		m.content = msg;
		m.len = sizeof(head) - 1 + n;
		m.env_from = "a@b.c";
		m.env_to = "x+y@d.e";
		m.delimiters = "+";
		m.include = include_cb;
		m.duplicate_seen = dup_cb;
		m.arg = &in;
		sieve_result_init(&r);
		sieve_run(s, &m, &r, &err);
		sieve_result_finish(&r);
		for (size_t i = 0; i < r.nact; i++) {
			size_t len;
			const char *c = sieve_action_message(&r, &r.act[i], msg,
							     m.len, &len);
			volatile size_t sum = 0;

			for (size_t k = 0; k < len; k += 64)
				sum += (unsigned char)c[k];
		}
		sieve_result_free(&r);
		sieve_script_free(&s);
	}
	return 0;
}
