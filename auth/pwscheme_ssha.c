/*
 * pwscheme_ssha.c - LDAP-style digests through OpenSSL: {SSHA512},
 * {SSHA256}, {SSHA} = base64(digest(pw || salt) || salt), and the
 * unsalted {SHA512}, {SHA256}, {SHA}.
 * Must not: accept a stored value shorter than its digest.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "auth/pwscheme.h"
#include "core/lib/xmalloc.h"

#define SALT_LEN 8
#define RAW_MAX  1024

static int
digest(const char *alg, const char *pw, size_t pwlen, const unsigned char *salt,
       size_t saltlen, unsigned char *out, unsigned *outlen)
{
	const EVP_MD *md = EVP_get_digestbyname(alg);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = md != NULL && c != NULL &&
		 EVP_DigestInit_ex(c, md, NULL) == 1 &&
		 EVP_DigestUpdate(c, pw, pwlen) == 1 &&
		 EVP_DigestUpdate(c, salt, saltlen) == 1 &&
		 EVP_DigestFinal_ex(c, out, outlen) == 1;

	EVP_MD_CTX_free(c);
	return ok ? 0 : -1;
}

enum pw_result
pwscheme_ssha_verify(const char *alg, int salted, const char *b64,
		     const char *pw, size_t pwlen, struct errbuf *err)
{
	unsigned char raw[RAW_MAX], d[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	size_t rawlen = 0, mdlen = (size_t)EVP_MD_get_size(EVP_get_digestbyname(alg));
	enum pw_result r;

	if (sodium_base642bin(raw, sizeof(raw), b64, strlen(b64), NULL, &rawlen,
			      NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    rawlen < mdlen || (!salted && rawlen != mdlen)) {
		errbuf_set(err, "stored %s%s value is not valid base64 of the "
			   "right length", salted ? "S" : "", alg);
		return PW_ERROR;
	}
	if (digest(alg, pw, pwlen, raw + mdlen, rawlen - mdlen, d, &dlen) < 0 ||
	    dlen != mdlen) {
		errbuf_set(err, "OpenSSL digest %s unavailable", alg);
		return PW_ERROR;
	}
	r = sodium_memcmp(d, raw, mdlen) == 0 ? PW_MATCH : PW_MISMATCH;
	sodium_memzero(d, sizeof(d));
	return r;
}

char *
pwscheme_ssha_hash(const char *alg, int salted, const char *pw,
		   struct errbuf *err)
{
	unsigned char raw[EVP_MAX_MD_SIZE + SALT_LEN];
	unsigned dlen = 0;
	size_t saltlen = salted ? SALT_LEN : 0;
	unsigned char salt[SALT_LEN];
	char out[sodium_base64_ENCODED_LEN(sizeof(raw), sodium_base64_VARIANT_ORIGINAL)];

	randombytes_buf(salt, sizeof(salt));
	if (digest(alg, pw, strlen(pw), salt, saltlen, raw, &dlen) < 0) {
		errbuf_set(err, "OpenSSL digest %s unavailable", alg);
		return NULL;
	}
	memcpy(raw + dlen, salt, saltlen);
	sodium_bin2base64(out, sizeof(out), raw, dlen + saltlen,
			  sodium_base64_VARIANT_ORIGINAL);
	return xstrdup(out);
}
