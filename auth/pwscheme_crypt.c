/*
 * pwscheme_crypt.c - crypt(3) schemes through the system's libxcrypt:
 * $6$ (SHA512-CRYPT), $5$ (SHA256-CRYPT), $2y$ (BLF-CRYPT), $1$ (MD5-CRYPT),
 * yescrypt and DES. crypt_r keeps it thread-safe.
 * Must not: accept the "*0"/"*1" failure tokens crypt returns as a match.
 */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth/pwscheme.h"
#include "core/lib/xmalloc.h"

enum pw_result
pwscheme_crypt_verify(const char *hash, const char *pw, size_t pwlen,
		      struct errbuf *err)
{
	struct crypt_data *cd;
	const char *out;
	size_t n = strlen(hash);
	enum pw_result r;

	if (memchr(pw, '\0', pwlen) != NULL)
		return PW_MISMATCH;	/* crypt would silently truncate */
	if (n < 2 || hash[0] == '*' || hash[0] == '!') {
		errbuf_set(err, "not a crypt hash (locked or empty)");
		return PW_ERROR;
	}
	cd = xcalloc(1, sizeof(*cd));
	out = crypt_r(pw, hash, cd);
	if (out == NULL || out[0] == '*') {
		errbuf_set(err, "crypt hash not supported by this system's crypt");
		r = PW_ERROR;
	} else {
		r = strlen(out) == n && sodium_memcmp(out, hash, n) == 0
		    ? PW_MATCH : PW_MISMATCH;
	}
	sodium_memzero(cd, sizeof(*cd));
	free(cd);
	return r;
}

char *
pwscheme_crypt_hash(const char *prefix, const char *pw, struct errbuf *err)
{
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *out = NULL;
	char *h = NULL;

	if (crypt_gensalt_rn(prefix, 0, NULL, 0, salt, sizeof(salt)) != NULL)
		out = crypt_r(pw, salt, cd);
	if (out == NULL || out[0] == '*')
		errbuf_set(err, "crypt scheme %s not supported by this system",
			   prefix);
	else
		h = xstrdup(out);
	sodium_memzero(cd, sizeof(*cd));
	free(cd);
	return h;
}
