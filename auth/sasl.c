/*
 * sasl.c - SMTP AUTH building blocks: the mechanism table and strict
 * base64 (libsodium's decoder, which rejects stray characters and bad
 * padding).
 * Must not: accept a response longer than SASL_RESPONSE_MAX.
 */
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "auth/sasl.h"

static const struct {
	const char    *name;
	enum sasl_mech m;
} mechs[] = {
	{ "PLAIN", SASL_MECH_PLAIN },
	{ "LOGIN", SASL_MECH_LOGIN },
};

enum sasl_mech
sasl_mech_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (strlen(mechs[i].name) == len &&
		    strncasecmp(mechs[i].name, name, len) == 0)
			return mechs[i].m;
	return SASL_MECH_NONE;
}

const char *
sasl_mech_name(enum sasl_mech m)
{
	for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (mechs[i].m == m)
			return mechs[i].name;
	return "NONE";
}

int
sasl_decode64(const char *in, size_t len, struct buf *out)
{
	unsigned char tmp[SASL_RESPONSE_MAX + 3];
	size_t n = 0;
	const char *end = NULL;

	buf_reset(out);
	if (len == 1 && in[0] == '=')
		return 0;
	if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof(tmp))
		return -1;
	if (sodium_base642bin(tmp, sizeof(tmp), in, len, NULL, &n, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != in + len || n > SASL_RESPONSE_MAX) {
		sodium_memzero(tmp, sizeof(tmp));
		return -1;
	}
	if (buf_append(out, tmp, n) < 0)
		n = (size_t)-1;
	sodium_memzero(tmp, sizeof(tmp));
	return n == (size_t)-1 ? -1 : 0;
}

void
sasl_encode64(const void *p, size_t len, struct buf *out)
{
	char tmp[sodium_base64_ENCODED_LEN(SASL_RESPONSE_MAX,
					   sodium_base64_VARIANT_ORIGINAL)];

	if (len > SASL_RESPONSE_MAX)
		len = SASL_RESPONSE_MAX;
	sodium_bin2base64(tmp, sizeof(tmp), p, len,
			  sodium_base64_VARIANT_ORIGINAL);
	buf_puts(out, tmp);
}
