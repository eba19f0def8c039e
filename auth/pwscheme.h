/*
 * pwscheme.h - Dovecot-compatible password schemes: verify a password
 * against a stored "{SCHEME}data" value (a value without a scheme prefix is
 * a crypt(3) string), and make new hashes for `facteur passwd`.
 * Schemes: ARGON2ID, ARGON2I (libsodium), SHA512-CRYPT, SHA256-CRYPT,
 * BLF-CRYPT, MD5-CRYPT, CRYPT (system crypt), SSHA512, SSHA256, SSHA,
 * SHA512, SHA256, SHA (OpenSSL), SCRAM-SHA-256 (Dovecot's stored form),
 * PLAIN, CLEARTEXT.
 * Verification may block for a long time (argon2 is deliberately slow):
 * call it on a worker thread. Thread-safe.
 */
#ifndef FACTEUR_PWSCHEME_H
#define FACTEUR_PWSCHEME_H
#include <stdbool.h>
#include <stddef.h>

#include "core/lib/errbuf.h"

enum pw_result { PW_MATCH = 1, PW_MISMATCH = 0, PW_ERROR = -1 };

/*
 * PW_MATCH or PW_MISMATCH; PW_ERROR + err for an unknown scheme or a
 * stored value that is not valid for its scheme. Comparisons are
 * constant-time. pw may contain any bytes except NUL for crypt schemes.
 */
enum pw_result pwscheme_verify(const char *stored, const char *pw, size_t pwlen,
			       struct errbuf *err);

/* True when pwscheme_hash can make hashes of this scheme. */
bool pwscheme_hash_known(const char *scheme);
/* A new "{SCHEME}hash" (malloc'ed) or NULL + err for an unknown scheme. */
char *pwscheme_hash(const char *scheme, const char *pw, struct errbuf *err);
/* The scheme name of a stored value ("CRYPT" without a prefix) into
 * out (size n); the data after the prefix is returned. */
const char *pwscheme_split(const char *stored, char *out, size_t n);
/*
 * A "{SCHEME}hash" of a random password that costs what verifying
 * against sample costs (same scheme, argon2 memory and passes, crypt
 * rounds, SCRAM iterations): verified against for unknown users so that
 * they take the time a wrong password takes. sample NULL: libsodium's
 * interactive argon2id (facteur passwd's default). NULL + err on failure.
 */
char *pwscheme_dummy(const char *sample, struct errbuf *err);

/* Per-family back ends (pwscheme_*.c); same return conventions. */
enum pw_result pwscheme_crypt_verify(const char *hash, const char *pw,
				     size_t pwlen, struct errbuf *err);
char *pwscheme_crypt_hash(const char *prefix, const char *pw, struct errbuf *err);
enum pw_result pwscheme_sodium_verify(const char *hash, const char *pw,
				      size_t pwlen, struct errbuf *err);
char *pwscheme_sodium_hash(int argon2id, const char *pw, struct errbuf *err);
/* alg "SHA512"/"SHA256"/"SHA1"; salted: base64(digest || salt). */
enum pw_result pwscheme_ssha_verify(const char *alg, int salted, const char *b64,
				    const char *pw, size_t pwlen,
				    struct errbuf *err);
char *pwscheme_ssha_hash(const char *alg, int salted, const char *pw,
			 struct errbuf *err);
#define SCRAM_ITER_DEFAULT 4096	/* Dovecot's */
/* Dovecot's SCRAM-SHA-256 "iter,salt,storedkey,serverkey" */
enum pw_result pwscheme_scram_verify(const char *data, const char *pw,
				     size_t pwlen, struct errbuf *err);
char *pwscheme_scram_hash(unsigned iter, const char *pw, struct errbuf *err);
char *pwscheme_sodium_hash_cost(int argon2id, unsigned long long ops,
				size_t mem, const char *pw, struct errbuf *err);

#endif
