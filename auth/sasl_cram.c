/*
 * sasl_cram.c - the CRAM-MD5 response (RFC 2195): "user SP hexdigest".
 * Must not: copy anything (pointers into the caller's buffer only).
 */
#include <string.h>

#include "auth/sasl.h"

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
sasl_cram_parse(const char *msg, size_t len, const char **user_r,
		size_t *user_len_r, unsigned char digest_r[16],
		const char **why_r)
{
	size_t ulen;

	if (len < 34 || msg[len - 33] != ' ') {
		*why_r = "malformed CRAM-MD5 response: expected user SP digest";
		return -1;
	}
	ulen = len - 33;
	if (memchr(msg, '\0', ulen) != NULL) {
		*why_r = "malformed CRAM-MD5 response: NUL in user name";
		return -1;
	}
	for (size_t i = 0; i < 16; i++) {
		int hi = hexval(msg[ulen + 1 + 2 * i]);
		int lo = hexval(msg[ulen + 2 + 2 * i]);

		if (hi < 0 || lo < 0) {
			*why_r = "malformed CRAM-MD5 response: digest is not "
				 "32 hex digits";
			return -1;
		}
		digest_r[i] = (unsigned char)(hi << 4 | lo);
	}
	*user_r = msg;
	*user_len_r = ulen;
	return 0;
}
