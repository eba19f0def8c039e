/*
 * sasl_scram.c - SCRAM-SHA-256 (RFC 5802, RFC 7677) for the server: the
 * client-first and client-final message parsers, Dovecot's stored
 * credential format ("iter,salt,storedkey,serverkey", base64 fields), key
 * derivation (PBKDF2-HMAC-SHA-256, OpenSSL) and the proof check.
 * No SASLprep: names and passwords are compared as bytes (as Dovecot
 * does); ASCII passwords are unaffected.
 * Must not: accept channel binding ("p=": no -PLUS mechanism is offered),
 * compare keys other than in constant time, or keep key material in
 * buffers it does not wipe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sodium.h>

#include "auth/sasl.h"
#include "core/lib/xmalloc.h"

/* saslname (RFC 5802 5.1): "=2C" is ',', "=3D" is '=', no other '='. */
static int
saslname_decode(const char *p, size_t len, char *out, size_t size)
{
	size_t o = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (c == '=') {
			if (len - i < 3)
				return -1;
			if (p[i + 1] == '2' && (p[i + 2] == 'C' || p[i + 2] == 'c'))
				c = ',';
			else if (p[i + 1] == '3' &&
				 (p[i + 2] == 'D' || p[i + 2] == 'd'))
				c = '=';
			else
				return -1;
			i += 2;
		} else if (c == ',' || c == '\0') {
			return -1;
		}
		if (o + 1 >= size)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

/* The value of "X=" up to the next ',' (or the end). */
static const char *
attr_end(const char *p, const char *end)
{
	const char *c = memchr(p, ',', (size_t)(end - p));

	return c ? c : end;
}

int
sasl_scram_parse_first(const char *msg, size_t len, struct scram_first *f,
		       const char **why_r)
{
	const char *p = msg, *end = msg + len, *e;

	memset(f, 0, sizeof(*f));
	if (memchr(msg, '\0', len) != NULL) {
		*why_r = "malformed SCRAM client-first message: NUL";
		return -1;
	}
	if (len >= 2 && p[0] == 'p' && p[1] == '=') {
		*why_r = "SCRAM channel binding requested but not offered";
		return -1;
	}
	if (len < 2 || (p[0] != 'n' && p[0] != 'y') || p[1] != ',') {
		*why_r = "malformed SCRAM client-first message: bad gs2 header";
		return -1;
	}
	f->cbflag = p[0];
	p += 2;
	if (p < end && p[0] == 'a') {
		if (end - p < 2 || p[1] != '=') {
			*why_r = "malformed SCRAM client-first message: authzid";
			return -1;
		}
		e = attr_end(p + 2, end);
		if (e == end || saslname_decode(p + 2, (size_t)(e - p - 2),
						f->authzid,
						sizeof(f->authzid)) < 0) {
			*why_r = "malformed SCRAM client-first message: authzid";
			return -1;
		}
		p = e;
	}
	if (p >= end || *p != ',') {
		*why_r = "malformed SCRAM client-first message: bad gs2 header";
		return -1;
	}
	p++;
	f->gs2 = msg;
	f->gs2_len = (size_t)(p - msg);
	f->bare = p;
	f->bare_len = (size_t)(end - p);
	if (end - p >= 2 && p[0] == 'm' && p[1] == '=') {
		*why_r = "SCRAM mandatory extension not supported";
		return -1;
	}
	if (end - p < 2 || p[0] != 'n' || p[1] != '=') {
		*why_r = "malformed SCRAM client-first message: no user name";
		return -1;
	}
	e = attr_end(p + 2, end);
	if (saslname_decode(p + 2, (size_t)(e - p - 2), f->user,
			    sizeof(f->user)) < 0) {
		*why_r = "malformed SCRAM client-first message: bad user name";
		return -1;
	}
	p = e;
	if (end - p < 3 || p[0] != ',' || p[1] != 'r' || p[2] != '=') {
		*why_r = "malformed SCRAM client-first message: no nonce";
		return -1;
	}
	p += 3;
	e = attr_end(p, end);
	if (e == p) {
		*why_r = "malformed SCRAM client-first message: empty nonce";
		return -1;
	}
	for (const char *c = p; c < e; c++)
		if (*c < 0x21 || *c > 0x7e) {
			*why_r = "malformed SCRAM client-first message: bad nonce";
			return -1;
		}
	f->cnonce = p;
	f->cnonce_len = (size_t)(e - p);
	/* Optional extensions after it: ignored, but well-formed. */
	while (e < end) {
		p = e + 1;
		e = attr_end(p, end);
		if (e - p < 2 || p[1] != '=' || !((p[0] >= 'a' && p[0] <= 'z') ||
						   (p[0] >= 'A' && p[0] <= 'Z'))) {
			*why_r = "malformed SCRAM client-first message: bad "
				 "extension";
			return -1;
		}
	}
	return 0;
}

int
sasl_scram_parse_final(const char *msg, size_t len, struct scram_final *f,
		       const char **why_r)
{
	const char *p = msg, *end = msg + len, *e, *pf = NULL;
	size_t plen;

	memset(f, 0, sizeof(*f));
	if (memchr(msg, '\0', len) != NULL) {
		*why_r = "malformed SCRAM client-final message: NUL";
		return -1;
	}
	if (len < 2 || p[0] != 'c' || p[1] != '=') {
		*why_r = "malformed SCRAM client-final message: no channel "
			 "binding";
		return -1;
	}
	e = attr_end(p + 2, end);
	f->cbind = p + 2;
	f->cbind_len = (size_t)(e - p - 2);
	p = e;
	if (end - p < 3 || p[0] != ',' || p[1] != 'r' || p[2] != '=') {
		*why_r = "malformed SCRAM client-final message: no nonce";
		return -1;
	}
	p += 3;
	e = attr_end(p, end);
	f->nonce = p;
	f->nonce_len = (size_t)(e - p);
	/* The proof is the last attribute. */
	for (const char *c = e; c + 3 <= end; c++)
		if (c[0] == ',' && c[1] == 'p' && c[2] == '=')
			pf = c;
	if (pf == NULL || memchr(pf + 3, ',', (size_t)(end - pf - 3)) != NULL) {
		*why_r = "malformed SCRAM client-final message: no proof";
		return -1;
	}
	plen = (size_t)(end - pf - 3);
	if (sasl_decode64_to(pf + 3, plen, f->proof, sizeof(f->proof)) !=
	    SCRAM_KEY_LEN) {
		*why_r = "malformed SCRAM client-final message: bad proof";
		return -1;
	}
	f->without_proof = msg;
	f->without_proof_len = (size_t)(pf - msg);
	return 0;
}

/* ---- credentials ---- */

int
scram_cred_parse(const char *data, struct scram_cred *c, const char **why_r)
{
	const char *p = data, *f[4];
	size_t n[4];
	char *end;
	unsigned long it;

	memset(c, 0, sizeof(*c));
	for (int i = 0; i < 4; i++) {
		const char *comma = strchr(p, ',');

		f[i] = p;
		n[i] = comma ? (size_t)(comma - p) : strlen(p);
		if ((comma == NULL) != (i == 3)) {
			*why_r = "SCRAM-SHA-256 value is not iter,salt,storedkey,"
				 "serverkey";
			return -1;
		}
		p = comma ? comma + 1 : p + n[i];
	}
	if (n[0] == 0 || n[0] > 8 || f[0][0] < '1' || f[0][0] > '9') {
		*why_r = "SCRAM-SHA-256 value: bad iteration count";
		return -1;
	}
	it = strtoul(f[0], &end, 10);
	if (end != f[0] + n[0] || it > SCRAM_ITER_MAX) {
		*why_r = "SCRAM-SHA-256 value: bad iteration count";
		return -1;
	}
	c->iter = (unsigned)it;
	{
		long sl = sasl_decode64_to(f[1], n[1], c->salt, sizeof(c->salt));

		if (sl <= 0) {
			*why_r = "SCRAM-SHA-256 value: bad salt";
			return -1;
		}
		c->salt_len = (size_t)sl;
	}
	if (sasl_decode64_to(f[2], n[2], c->stored_key, SCRAM_KEY_LEN) !=
	    SCRAM_KEY_LEN ||
	    sasl_decode64_to(f[3], n[3], c->server_key, SCRAM_KEY_LEN) !=
	    SCRAM_KEY_LEN) {
		*why_r = "SCRAM-SHA-256 value: keys are not base64 of 32 bytes";
		sodium_memzero(c, sizeof(*c));
		return -1;
	}
	return 0;
}

static void
hmac256(const unsigned char *key, size_t klen, const void *data, size_t len,
	unsigned char out[SCRAM_KEY_LEN])
{
	unsigned olen = SCRAM_KEY_LEN;

	if (HMAC(EVP_sha256(), key, (int)klen, data, len, out, &olen) == NULL)
		memset(out, 0, SCRAM_KEY_LEN);	/* never matches a proof */
}

int
scram_cred_derive(const char *pw, size_t pwlen, const unsigned char *salt,
		  size_t salt_len, unsigned iter, struct scram_cred *c)
{
	unsigned char salted[SCRAM_KEY_LEN], ck[SCRAM_KEY_LEN];
	int rc = -1;

	if (salt_len == 0 || salt_len > sizeof(c->salt) || iter == 0)
		return -1;
	if (PKCS5_PBKDF2_HMAC(pw, (int)pwlen, salt, (int)salt_len, (int)iter,
			      EVP_sha256(), SCRAM_KEY_LEN, salted) == 1) {
		c->iter = iter;
		memcpy(c->salt, salt, salt_len);
		c->salt_len = salt_len;
		hmac256(salted, sizeof(salted), "Client Key", 10, ck);
		SHA256(ck, sizeof(ck), c->stored_key);
		hmac256(salted, sizeof(salted), "Server Key", 10, c->server_key);
		rc = 0;
	}
	sodium_memzero(salted, sizeof(salted));
	sodium_memzero(ck, sizeof(ck));
	return rc;
}

char *
scram_cred_format(const struct scram_cred *c)
{
	char salt[sodium_base64_ENCODED_LEN(SCRAM_SALT_MAX,
					    sodium_base64_VARIANT_ORIGINAL)];
	char sk[sodium_base64_ENCODED_LEN(SCRAM_KEY_LEN,
					  sodium_base64_VARIANT_ORIGINAL)];
	char vk[sizeof(sk)];

	sodium_bin2base64(salt, sizeof(salt), c->salt, c->salt_len,
			  sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(sk, sizeof(sk), c->stored_key, SCRAM_KEY_LEN,
			  sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(vk, sizeof(vk), c->server_key, SCRAM_KEY_LEN,
			  sodium_base64_VARIANT_ORIGINAL);
	return xasprintf("%u,%s,%s,%s", c->iter, salt, sk, vk);
}

int
scram_verify_proof(const struct scram_cred *c, const char *authmsg,
		   size_t authmsg_len, const unsigned char proof[SCRAM_KEY_LEN],
		   unsigned char server_sig[SCRAM_KEY_LEN])
{
	unsigned char sig[SCRAM_KEY_LEN], ck[SCRAM_KEY_LEN], h[SCRAM_KEY_LEN];
	int ok;

	hmac256(c->stored_key, SCRAM_KEY_LEN, authmsg, authmsg_len, sig);
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		ck[i] = proof[i] ^ sig[i];
	SHA256(ck, sizeof(ck), h);
	ok = sodium_memcmp(h, c->stored_key, SCRAM_KEY_LEN) == 0;
	hmac256(c->server_key, SCRAM_KEY_LEN, authmsg, authmsg_len, server_sig);
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(sig, sizeof(sig));
	return ok;
}
