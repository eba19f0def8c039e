/*
 * fuzz_sasl.c - libFuzzer target for the SASL decoders: strict base64,
 * the PLAIN message, the CRAM-MD5 response, SCRAM-SHA-256 client-first and
 * client-final messages, Dovecot's stored SCRAM credential and the
 * smtpd_sasl_mechanisms list. The first byte picks the decoder.
 * Checks, beyond "no crash": every pointer a parser returns lies inside
 * the input, decoded base64 re-encodes to a string that decodes to the
 * same bytes, and parsed names hold no NUL or ','.
 * Must not: keep state between inputs (every allocation is freed).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sasl.h"

#define INSIDE(p, n, base, len) \
	((const char *)(p) >= (base) && \
	 (const char *)(p) + (n) <= (base) + (len))

static void
check_base64(const char *in, size_t len)
{
	struct buf out, again, enc;
	unsigned char fixed[64];
	long n;

	buf_init(&out, SASL_RESPONSE_MAX);
	if (sasl_decode64(in, len, &out) == 0) {
		if (out.len > SASL_RESPONSE_MAX)
			abort();
		buf_init(&enc, 0);
		sasl_encode64(out.data ? out.data : "", out.len, &enc);
		buf_init(&again, SASL_RESPONSE_MAX);
		if (out.len > 0 &&
		    (sasl_decode64(enc.data, enc.len, &again) != 0 ||
		     again.len != out.len ||
		     memcmp(again.data, out.data, out.len) != 0))
			abort();
		buf_free(&again);
		buf_free(&enc);
	}
	buf_free(&out);
	n = sasl_decode64_to(in, len, fixed, sizeof(fixed));
	if (n > (long)sizeof(fixed))
		abort();
}

static void
check_plain(const char *in, size_t len)
{
	const char *u, *pw, *why = NULL;
	size_t ul, pwl;

	if (sasl_plain_parse(in, len, &u, &ul, &pw, &pwl, &why) == 0) {
		if (!INSIDE(u, ul, in, len) || !INSIDE(pw, pwl, in, len) ||
		    ul == 0 || pwl == 0 || memchr(u, '\0', ul) ||
		    memchr(pw, '\0', pwl))
			abort();
	} else if (why == NULL) {
		abort();
	}
}

static void
check_cram(const char *in, size_t len)
{
	const char *u, *why = NULL;
	size_t ul;
	unsigned char d[16];

	if (sasl_cram_parse(in, len, &u, &ul, d, &why) == 0) {
		if (!INSIDE(u, ul, in, len) || ul == 0 || ul + 33 != len)
			abort();
	} else if (why == NULL) {
		abort();
	}
}

static void
check_scram(const char *in, size_t len)
{
	struct scram_first f;
	struct scram_final fin;
	const char *why = NULL;

	if (sasl_scram_parse_first(in, len, &f, &why) == 0) {
		if (!INSIDE(f.gs2, f.gs2_len, in, len) ||
		    !INSIDE(f.bare, f.bare_len, in, len) ||
		    !INSIDE(f.cnonce, f.cnonce_len, in, len) ||
		    f.cnonce_len == 0 || f.user[0] == '\0' ||
		    strlen(f.user) > SCRAM_NAME_MAX ||
		    f.gs2 + f.gs2_len != f.bare ||
		    (f.cbflag != 'n' && f.cbflag != 'y') ||
		    memchr(f.cnonce, ',', f.cnonce_len))
			abort();
	} else if (why == NULL) {
		abort();
	}
	why = NULL;
	if (sasl_scram_parse_final(in, len, &fin, &why) == 0) {
		if (!INSIDE(fin.cbind, fin.cbind_len, in, len) ||
		    !INSIDE(fin.nonce, fin.nonce_len, in, len) ||
		    !INSIDE(fin.without_proof, fin.without_proof_len, in, len) ||
		    fin.without_proof != in ||
		    memchr(fin.nonce, ',', fin.nonce_len))
			abort();
	} else if (why == NULL) {
		abort();
	}
}

static void
check_cred(const char *in, size_t len)
{
	char *s = malloc(len + 1), *back;
	struct scram_cred c, c2;
	const char *why = NULL;

	if (s == NULL)
		return;
	memcpy(s, in, len);
	s[len] = '\0';
	if (scram_cred_parse(s, &c, &why) == 0) {
		if (c.iter == 0 || c.salt_len == 0 || c.salt_len > SCRAM_SALT_MAX)
			abort();
		back = scram_cred_format(&c);
		if (scram_cred_parse(back, &c2, &why) != 0 || c2.iter != c.iter ||
		    c2.salt_len != c.salt_len ||
		    memcmp(c2.salt, c.salt, c.salt_len) != 0 ||
		    memcmp(c2.stored_key, c.stored_key, SCRAM_KEY_LEN) != 0)
			abort();
		free(back);
	}
	free(s);
}

static void
check_mechs(const char *in, size_t len)
{
	char *s = malloc(len + 1);
	struct errbuf err;
	unsigned m = 0;
	struct buf b;

	if (s == NULL)
		return;
	memcpy(s, in, len);
	s[len] = '\0';
	if (sasl_mechs_parse(s, &m, &err) == 0) {
		unsigned m2 = 0;

		buf_init(&b, 0);
		sasl_mechs_format(m, &b);
		if (sasl_mechs_parse(buf_cstr(&b), &m2, &err) != 0 || m2 != m)
			abort();
		buf_free(&b);
		(void)sasl_mechs_secure("x", s, &m, &err);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in;
	char *copy;

	if (size < 1 || size > SASL_RESPONSE_MAX + 1)
		return 0;
	/* An exact-size copy: ASan sees any read past the end. */
	copy = malloc(size - 1 ? size - 1 : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data + 1, size - 1);
	in = copy;
	switch (data[0] % 6) {
	case 0: check_base64(in, size - 1); break;
	case 1: check_plain(in, size - 1); break;
	case 2: check_cram(in, size - 1); break;
	case 3: check_scram(in, size - 1); break;
	case 4: check_cred(in, size - 1); break;
	default: check_mechs(in, size - 1); break;
	}
	free(copy);
	return 0;
}
