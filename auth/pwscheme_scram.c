/*
 * pwscheme_scram.c - {SCRAM-SHA-256} as Dovecot 2.3 stores it
 * ("iter,salt_b64,storedkey_b64,serverkey_b64", `doveadm pw -s
 * SCRAM-SHA-256`): checking a plaintext password against it (PLAIN and
 * LOGIN logins) and making new ones (4096 iterations, 16-byte salt, as
 * Dovecot does). The SCRAM exchange itself is in sasl_exchange.c.
 * Must not: compare keys other than in constant time.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth/pwscheme.h"
#include "auth/sasl.h"

#define SCRAM_NEW_SALT	16

enum pw_result
pwscheme_scram_verify(const char *data, const char *pw, size_t pwlen,
		      struct errbuf *err)
{
	struct scram_cred stored, mine;
	const char *why;
	enum pw_result r;

	if (scram_cred_parse(data, &stored, &why) < 0) {
		errbuf_set(err, "%s", why);
		return PW_ERROR;
	}
	if (scram_cred_derive(pw, pwlen, stored.salt, stored.salt_len,
			      stored.iter, &mine) < 0) {
		errbuf_set(err, "SCRAM-SHA-256: key derivation failed");
		sodium_memzero(&stored, sizeof(stored));
		return PW_ERROR;
	}
	r = (sodium_memcmp(mine.stored_key, stored.stored_key,
			   SCRAM_KEY_LEN) == 0) &
	    (sodium_memcmp(mine.server_key, stored.server_key,
			   SCRAM_KEY_LEN) == 0) ? PW_MATCH : PW_MISMATCH;
	sodium_memzero(&stored, sizeof(stored));
	sodium_memzero(&mine, sizeof(mine));
	return r;
}

char *
pwscheme_scram_hash(unsigned iter, const char *pw, struct errbuf *err)
{
	unsigned char salt[SCRAM_NEW_SALT];
	struct scram_cred c;
	char *out;

	randombytes_buf(salt, sizeof(salt));
	if (scram_cred_derive(pw, strlen(pw), salt, sizeof(salt),
			      iter ? iter : SCRAM_ITER_MIN, &c) < 0) {
		errbuf_set(err, "SCRAM-SHA-256: key derivation failed");
		return NULL;
	}
	out = scram_cred_format(&c);
	sodium_memzero(&c, sizeof(c));
	return out;
}
