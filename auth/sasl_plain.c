/*
 * sasl_plain.c - the PLAIN message (RFC 4616): authzid NUL authcid NUL
 * passwd.
 * Must not: copy the password (pointers into the caller's buffer only).
 */
#include <string.h>
#include <strings.h>

#include "auth/sasl.h"

int
sasl_plain_parse(const char *msg, size_t len, const char **authcid_r,
		 size_t *authcid_len_r, const char **pw_r, size_t *pw_len_r,
		 const char **why_r)
{
	const char *n1, *n2, *authcid, *pw;
	size_t zlen, clen, plen;

	n1 = memchr(msg, '\0', len);
	if (n1 == NULL) {
		*why_r = "malformed PLAIN message: no NUL separator";
		return -1;
	}
	zlen = (size_t)(n1 - msg);
	authcid = n1 + 1;
	n2 = memchr(authcid, '\0', len - zlen - 1);
	if (n2 == NULL) {
		*why_r = "malformed PLAIN message: one NUL separator";
		return -1;
	}
	clen = (size_t)(n2 - authcid);
	pw = n2 + 1;
	plen = len - zlen - clen - 2;
	if (memchr(pw, '\0', plen) != NULL) {
		*why_r = "malformed PLAIN message: NUL in password";
		return -1;
	}
	if (clen == 0 || plen == 0) {
		*why_r = clen == 0 ? "empty user name" : "empty password";
		return -1;
	}
	if (zlen > 0 && (zlen != clen || strncasecmp(msg, authcid, clen) != 0)) {
		*why_r = "authorization identity differs from the user name";
		return -1;
	}
	*authcid_r = authcid;
	*authcid_len_r = clen;
	*pw_r = pw;
	*pw_len_r = plen;
	return 0;
}
