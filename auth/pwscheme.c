/*
 * pwscheme.c - the scheme table: splits "{SCHEME}data", dispatches to the
 * crypt, libsodium and OpenSSL back ends, and compares plaintext
 * passwords in constant time.
 * Must not: log (errors go to errbuf), or leave copies of a password.
 */
#include <stdio.h>
#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "auth/pwscheme.h"
#include "auth/sasl.h"
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

const char *
pwscheme_split(const char *stored, char *scheme, size_t size)
{
	size_t n;

	if (stored[0] == '{' && (n = strcspn(stored + 1, "}")) < size &&
	    stored[1 + n] == '}') {
		memcpy(scheme, stored + 1, n);
		scheme[n] = '\0';
		return stored + n + 2;
	}
	snprintf(scheme, size, "CRYPT");
	return stored;
}

enum pw_result
pwscheme_verify(const char *stored, const char *pw, size_t pwlen,
		struct errbuf *err)
{
	char scheme[32];
	const char *data = pwscheme_split(stored, scheme, sizeof(scheme));
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
	if (strcasecmp(scheme, "SCRAM-SHA-256") == 0)
		return pwscheme_scram_verify(data, pw, pwlen, err);
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
		"BLF-CRYPT", "MD5-CRYPT", "SSHA512", "SSHA256", "SSHA",
		"SCRAM-SHA-256", "PLAIN", "CLEARTEXT",
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
	else if (strcasecmp(scheme, "SCRAM-SHA-256") == 0)
		h = pwscheme_scram_hash(SCRAM_ITER_DEFAULT, pw, err);
	else if (strcasecmp(scheme, "PLAIN") == 0 ||
		 strcasecmp(scheme, "CLEARTEXT") == 0)
		h = xstrdup(pw);
	else {
		errbuf_set(err, "unknown password scheme \"%s\" (ARGON2ID, "
			   "ARGON2I, SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, "
			   "MD5-CRYPT, SSHA512, SSHA256, SSHA, SCRAM-SHA-256, "
			   "PLAIN)", scheme);
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

/* "{SCHEME}" + data, upper-case scheme name. */
static char *
with_scheme(const char *scheme, char *data)
{
	char *out;

	if (data == NULL)
		return NULL;
	out = xasprintf("{%s}%s", scheme, data);
	sodium_memzero(data, strlen(data));
	free(data);
	return out;
}

char *
pwscheme_dummy(const char *sample, struct errbuf *err)
{
	unsigned char rnd[18];
	char pw[sizeof(rnd) * 2 + 1], scheme[32];
	const char *data, *p;
	char *h = NULL;

	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(pw, sizeof(pw), rnd, sizeof(rnd));
	if (sample == NULL)
		goto fallback;
	data = pwscheme_split(sample, scheme, sizeof(scheme));
	if ((strcasecmp(scheme, "ARGON2ID") == 0 ||
	     strcasecmp(scheme, "ARGON2I") == 0) &&
	    (p = strstr(data, "$m=")) != NULL) {
		unsigned long m = 0, t = 0;

		if (sscanf(p, "$m=%lu,t=%lu", &m, &t) == 2 && m > 0 &&
		    m <= (1ul << 22) && t > 0 && t <= 64)
			h = with_scheme(scheme, pwscheme_sodium_hash_cost(
				strcasecmp(scheme, "ARGON2ID") == 0, t,
				(size_t)m * 1024, pw, err));
	} else if (strcasecmp(scheme, "SCRAM-SHA-256") == 0) {
		unsigned long it = strtoul(data, NULL, 10);

		if (it > 0 && it <= SCRAM_ITER_MAX)
			h = with_scheme(scheme, pwscheme_scram_hash(
				(unsigned)it, pw, err));
	} else if (strcasecmp(scheme, "CRYPT") == 0 ||
		   strcasecmp(scheme, "SHA512-CRYPT") == 0 ||
		   strcasecmp(scheme, "SHA256-CRYPT") == 0 ||
		   strcasecmp(scheme, "BLF-CRYPT") == 0 ||
		   strcasecmp(scheme, "MD5-CRYPT") == 0) {
		/* The sample itself is the setting: same salt and rounds. */
		struct crypt_data *cd = xcalloc(1, sizeof(*cd));
		const char *out = crypt_r(pw, data, cd);

		if (out != NULL && out[0] != '*')
			h = with_scheme(scheme, xstrdup(out));
		sodium_memzero(cd, sizeof(*cd));
		free(cd);
	} else if (pwscheme_hash_known(scheme)) {
		h = pwscheme_hash(scheme, pw, err);
	}
	if (h != NULL)
		return h;
fallback:
	return pwscheme_hash("ARGON2ID", pw, err);
}
