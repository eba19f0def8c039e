/*
 * pwscheme.c - the scheme table: splits "{SCHEME}data", dispatches to the
 * crypt, libsodium and OpenSSL back ends, and compares plaintext
 * passwords in constant time.
 * Must not: log (errors go to errbuf), or leave copies of a password.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "auth/pwscheme.h"
#include "core/lib/xmalloc.h"

/* Constant time whatever the lengths: compare the two digests. */
static enum pw_result
plain_verify(const char *stored, const char *pw, size_t pwlen)
{
	unsigned char a[crypto_generichash_BYTES], b[crypto_generichash_BYTES];
	int same;

	crypto_generichash(a, sizeof(a), (const unsigned char *)stored,
			   strlen(stored), NULL, 0);
	crypto_generichash(b, sizeof(b), (const unsigned char *)pw, pwlen,
			   NULL, 0);
	same = sodium_memcmp(a, b, sizeof(a)) == 0;
	sodium_memzero(b, sizeof(b));
	return same ? PW_MATCH : PW_MISMATCH;
}

enum pw_result
pwscheme_verify(const char *stored, const char *pw, size_t pwlen,
		struct errbuf *err)
{
	char scheme[32];
	const char *data = stored;
	size_t n;

	if (stored[0] == '{' && (n = strcspn(stored + 1, "}")) < sizeof(scheme) &&
	    stored[1 + n] == '}') {
		memcpy(scheme, stored + 1, n);
		scheme[n] = '\0';
		data = stored + n + 2;
	} else {
		snprintf(scheme, sizeof(scheme), "CRYPT");
	}
	if (strcasecmp(scheme, "ARGON2ID") == 0 || strcasecmp(scheme, "ARGON2I") == 0)
		return pwscheme_sodium_verify(data, pw, pwlen, err);
	if (strcasecmp(scheme, "SHA512-CRYPT") == 0 ||
	    strcasecmp(scheme, "SHA256-CRYPT") == 0 ||
	    strcasecmp(scheme, "BLF-CRYPT") == 0 ||
	    strcasecmp(scheme, "MD5-CRYPT") == 0 ||
	    strcasecmp(scheme, "CRYPT") == 0 ||
	    strcasecmp(scheme, "DES-CRYPT") == 0)
		return pwscheme_crypt_verify(data, pw, pwlen, err);
	if (strcasecmp(scheme, "SSHA512") == 0)
		return pwscheme_ssha_verify("SHA512", 1, data, pw, pwlen, err);
	if (strcasecmp(scheme, "SSHA256") == 0)
		return pwscheme_ssha_verify("SHA256", 1, data, pw, pwlen, err);
	if (strcasecmp(scheme, "SSHA") == 0)
		return pwscheme_ssha_verify("SHA1", 1, data, pw, pwlen, err);
	if (strcasecmp(scheme, "SHA512") == 0)
		return pwscheme_ssha_verify("SHA512", 0, data, pw, pwlen, err);
	if (strcasecmp(scheme, "SHA256") == 0)
		return pwscheme_ssha_verify("SHA256", 0, data, pw, pwlen, err);
	if (strcasecmp(scheme, "SHA") == 0 || strcasecmp(scheme, "SHA1") == 0)
		return pwscheme_ssha_verify("SHA1", 0, data, pw, pwlen, err);
	if (strcasecmp(scheme, "PLAIN") == 0 || strcasecmp(scheme, "CLEARTEXT") == 0)
		return plain_verify(data, pw, pwlen);
	errbuf_set(err, "unknown password scheme {%s}", scheme);
	return PW_ERROR;
}

bool
pwscheme_hash_known(const char *scheme)
{
	static const char *const names[] = {
		"ARGON2ID", "ARGON2I", "SHA512-CRYPT", "SHA256-CRYPT",
		"BLF-CRYPT", "MD5-CRYPT", "SSHA512", "SSHA256", "SSHA", "PLAIN",
		"CLEARTEXT",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(scheme, names[i]) == 0)
			return true;
	return false;
}

char *
pwscheme_hash(const char *scheme, const char *pw, struct errbuf *err)
{
	char *h = NULL, *out;
	const char *name = scheme;

	if (strcasecmp(scheme, "ARGON2ID") == 0)
		h = pwscheme_sodium_hash(1, pw, err);
	else if (strcasecmp(scheme, "ARGON2I") == 0)
		h = pwscheme_sodium_hash(0, pw, err);
	else if (strcasecmp(scheme, "SHA512-CRYPT") == 0)
		h = pwscheme_crypt_hash("$6$", pw, err);
	else if (strcasecmp(scheme, "SHA256-CRYPT") == 0)
		h = pwscheme_crypt_hash("$5$", pw, err);
	else if (strcasecmp(scheme, "BLF-CRYPT") == 0)
		h = pwscheme_crypt_hash("$2y$", pw, err);
	else if (strcasecmp(scheme, "MD5-CRYPT") == 0)
		h = pwscheme_crypt_hash("$1$", pw, err);
	else if (strcasecmp(scheme, "SSHA512") == 0)
		h = pwscheme_ssha_hash("SHA512", 1, pw, err);
	else if (strcasecmp(scheme, "SSHA256") == 0)
		h = pwscheme_ssha_hash("SHA256", 1, pw, err);
	else if (strcasecmp(scheme, "SSHA") == 0)
		h = pwscheme_ssha_hash("SHA1", 1, pw, err);
	else if (strcasecmp(scheme, "PLAIN") == 0 ||
		 strcasecmp(scheme, "CLEARTEXT") == 0)
		h = xstrdup(pw);
	else {
		errbuf_set(err, "unknown password scheme \"%s\" (ARGON2ID, "
			   "ARGON2I, SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, "
			   "MD5-CRYPT, SSHA512, SSHA256, SSHA, PLAIN)", scheme);
		return NULL;
	}
	if (h == NULL)
		return NULL;
	out = xasprintf("{%s}%s", name, h);
	for (char *p = out + 1; *p != '}'; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	sodium_memzero(h, strlen(h));
	free(h);
	return out;
}
