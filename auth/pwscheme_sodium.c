/*
 * pwscheme_sodium.c - {ARGON2ID} and {ARGON2I} through libsodium's
 * crypto_pwhash_str_verify (the same encoding Dovecot writes).
 * Must not: run on the event loop (a verification takes tens of ms and
 * tens of MiB).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth/pwscheme.h"
#include "core/lib/xmalloc.h"

enum pw_result
pwscheme_sodium_verify(const char *hash, const char *pw, size_t pwlen,
		       struct errbuf *err)
{
	if (sodium_init() < 0) {
		errbuf_set(err, "libsodium initialisation failed");
		return PW_ERROR;
	}
	if (strncmp(hash, "$argon2id$", 10) != 0 &&
	    strncmp(hash, "$argon2i$", 9) != 0) {
		errbuf_set(err, "not an argon2 hash");
		return PW_ERROR;
	}
	return crypto_pwhash_str_verify(hash, pw, pwlen) == 0 ? PW_MATCH
							       : PW_MISMATCH;
}

char *
pwscheme_sodium_hash(int argon2id, const char *pw, struct errbuf *err)
{
	char out[crypto_pwhash_STRBYTES];
	int rc;

	if (sodium_init() < 0) {
		errbuf_set(err, "libsodium initialisation failed");
		return NULL;
	}
	if (argon2id)
		rc = crypto_pwhash_str_alg(out, pw, strlen(pw),
					   crypto_pwhash_OPSLIMIT_INTERACTIVE,
					   crypto_pwhash_MEMLIMIT_INTERACTIVE,
					   crypto_pwhash_ALG_ARGON2ID13);
	else
		rc = crypto_pwhash_str_alg(out, pw, strlen(pw),
					   crypto_pwhash_argon2i_OPSLIMIT_INTERACTIVE,
					   crypto_pwhash_MEMLIMIT_INTERACTIVE,
					   crypto_pwhash_ALG_ARGON2I13);
	if (rc != 0) {
		errbuf_set(err, "argon2 hashing failed (out of memory?)");
		return NULL;
	}
	return xstrdup(out);
}

char *
pwscheme_sodium_hash_cost(int argon2id, unsigned long long ops, size_t mem,
			  const char *pw, struct errbuf *err)
{
	char out[crypto_pwhash_STRBYTES];

	if (sodium_init() < 0 ||
	    crypto_pwhash_str_alg(out, pw, strlen(pw), ops, mem,
				  argon2id ? crypto_pwhash_ALG_ARGON2ID13
					   : crypto_pwhash_ALG_ARGON2I13) != 0) {
		errbuf_set(err, "argon2 hashing failed (limits or memory)");
		return NULL;
	}
	return xstrdup(out);
}
