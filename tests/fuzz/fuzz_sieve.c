/*
 * fuzz_sieve.c - libFuzzer target for the Sieve lexer, parser and checker,
 * and, when a script compiles, the interpreter on a fixed message (the
 * script text doubles as the message body so matches see varied input).
 * Must not: touch the disk.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "delivery/sieve/sieve.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
		sieve_result_init(&r);
		sieve_run(s, &m, &r, &err);
		sieve_result_finish(&r);
		sieve_result_free(&r);
		sieve_script_free(&s);
	}
	return 0;
}
