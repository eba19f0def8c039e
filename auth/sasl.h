/*
 * sasl.h - the server side of SASL shared by SMTP AUTH (RFC 4954) and
 * ManageSieve AUTHENTICATE (RFC 5804): mechanism names and the offered
 * set (smtpd_sasl_mechanisms filtered by the security options), strict
 * base64 for the exchange, the PLAIN (RFC 4616), CRAM-MD5 (RFC 2195) and
 * SCRAM-SHA-256 (RFC 5802 / RFC 7677) message parsers. LOGIN is two base64
 * lines (user name, then password) and needs no parser of its own. Pure
 * functions, no I/O; fuzzed (tests/fuzz/fuzz_sasl.c).
 * The exchange itself (state, passdb, verification) is sasl_exchange.h.
 */
#ifndef FACTEUR_SASL_H
#define FACTEUR_SASL_H
#include <stddef.h>

#include "core/lib/buf.h"
#include "core/lib/errbuf.h"

enum sasl_mech {
	SASL_MECH_NONE = 0, SASL_MECH_PLAIN, SASL_MECH_LOGIN,
	SASL_MECH_CRAM_MD5, SASL_MECH_SCRAM_SHA256,
};
#define SASL_MECH_BIT(m)	(1u << (unsigned)(m))
/* Mechanisms that send the password itself (smtpd_sasl_security_options
 * noplaintext removes them). */
#define SASL_MECHS_PLAINTEXT	(SASL_MECH_BIT(SASL_MECH_PLAIN) | \
				 SASL_MECH_BIT(SASL_MECH_LOGIN))

/* Case-insensitive name -> mechanism; SASL_MECH_NONE if unknown. */
enum sasl_mech sasl_mech_find(const char *name, size_t len);
const char *sasl_mech_name(enum sasl_mech m);

/*
 * smtpd_sasl_mechanisms (Dovecot's auth_mechanisms names: plain, login,
 * cram-md5, scram-sha-256; case-insensitive, separated by commas and/or
 * white space) -> a set of SASL_MECH_BIT()s. 0, or -1 + err naming an
 * unknown mechanism.
 */
int sasl_mechs_parse(const char *list, unsigned *mask_r, struct errbuf *err);
/*
 * Removes from *mask what smtpd_sasl_[tls_]security_options (named param
 * in errors) excludes: noplaintext (PLAIN, LOGIN), nodictionary (all our
 * mechanisms), mutual_auth (all but SCRAM); noanonymous, noactive and
 * forward_secrecy remove nothing we offer. 0, or -1 + err for an unknown
 * option.
 */
int sasl_mechs_secure(const char *param, const char *options, unsigned *mask,
		      struct errbuf *err);
/* "PLAIN LOGIN SCRAM-SHA-256" (the EHLO / capability order). */
void sasl_mechs_format(unsigned mask, struct buf *out);

/* Longest client response accepted (decoded bytes). */
#define SASL_RESPONSE_MAX 4096

/*
 * Strict base64 (RFC 4648, padding required, no white space); "=" alone
 * is the empty response (RFC 4954 4). 0, or -1 on bad data or when the
 * result would exceed SASL_RESPONSE_MAX. out is reset first.
 */
int sasl_decode64(const char *in, size_t len, struct buf *out);
/* Appends base64 of p to out. */
void sasl_encode64(const void *p, size_t len, struct buf *out);
/* Decodes base64 into a fixed buffer: the byte count, or -1 on bad data
 * or when it would not fit. */
long sasl_decode64_to(const char *in, size_t len, unsigned char *out,
		      size_t size);

/*
 * RFC 4616: authzid NUL authcid NUL passwd. authcid and passwd must be
 * non-empty and contain no NUL; an authzid other than authcid (case-
 * insensitively) is refused. On success *authcid_r and *pw_r point into msg
 * (lengths in *_len_r). 0, or -1 with *why_r set.
 */
int sasl_plain_parse(const char *msg, size_t len, const char **authcid_r,
		     size_t *authcid_len_r, const char **pw_r, size_t *pw_len_r,
		     const char **why_r);

/*
 * RFC 2195 response: "user SP digest", digest 32 lower-case hex digits
 * (upper case accepted). The user name (non-empty, no NUL) is the text
 * before the last space. digest_r receives the 16 bytes. 0 or -1 + why.
 */
int sasl_cram_parse(const char *msg, size_t len, const char **user_r,
		    size_t *user_len_r, unsigned char digest_r[16],
		    const char **why_r);

/* ---- SCRAM-SHA-256 (RFC 5802, RFC 7677) ---- */

#define SCRAM_KEY_LEN	32	/* SHA-256 */
#define SCRAM_SALT_MAX	64
#define SCRAM_NAME_MAX	256	/* user name / authzid, decoded */

/* client-first-message: gs2-header client-first-message-bare. */
struct scram_first {
	char        cbflag;		/* 'n' or 'y' ('p' is refused) */
	char        authzid[SCRAM_NAME_MAX + 1];	/* "" when absent */
	char        user[SCRAM_NAME_MAX + 1];	/* =2C / =3D decoded */
	const char *gs2;		/* the gs2-header, in msg */
	size_t      gs2_len;
	const char *bare;		/* client-first-message-bare, in msg */
	size_t      bare_len;
	const char *cnonce;		/* in msg */
	size_t      cnonce_len;
};
/*
 * Parses a client-first-message. Refused (-1 + why): channel binding
 * ("p="; we offer no -PLUS mechanism), a mandatory extension ("m="), a bad
 * saslname escape, an empty or non-printable nonce, a NUL anywhere,
 * names longer than SCRAM_NAME_MAX.
 */
int sasl_scram_parse_first(const char *msg, size_t len, struct scram_first *f,
			   const char **why_r);

/* client-final-message: channel-binding "," nonce ["," ext]* "," proof */
struct scram_final {
	const char   *cbind;		/* the base64 text after "c=" */
	size_t        cbind_len;
	const char   *nonce;		/* after "r=" */
	size_t        nonce_len;
	const char   *without_proof;	/* client-final-message-without-proof */
	size_t        without_proof_len;
	unsigned char proof[SCRAM_KEY_LEN];
};
int sasl_scram_parse_final(const char *msg, size_t len, struct scram_final *f,
			   const char **why_r);

/* What the server stores: Dovecot's {SCRAM-SHA-256} value
 * "iterations,salt_b64,storedkey_b64,serverkey_b64". */
struct scram_cred {
	unsigned      iter;
	unsigned char salt[SCRAM_SALT_MAX];
	size_t        salt_len;
	unsigned char stored_key[SCRAM_KEY_LEN];
	unsigned char server_key[SCRAM_KEY_LEN];
};
#define SCRAM_ITER_MIN		4096	/* RFC 7677 5 */
#define SCRAM_ITER_MAX		10000000
/* 0, or -1 + why for a value that is not in that format. */
int scram_cred_parse(const char *data, struct scram_cred *c, const char **why_r);
/* Salted password -> keys (PBKDF2-HMAC-SHA-256). 0, or -1 (OpenSSL). */
int scram_cred_derive(const char *pw, size_t pwlen, const unsigned char *salt,
		      size_t salt_len, unsigned iter, struct scram_cred *c);
/* The stored form (malloc'ed), without the "{SCRAM-SHA-256}" prefix. */
char *scram_cred_format(const struct scram_cred *c);
/*
 * Checks a ClientProof for AuthMessage: H(proof XOR HMAC(StoredKey,
 * AuthMessage)) == StoredKey, in constant time. Fills server_sig with
 * HMAC(ServerKey, AuthMessage). 1 match, 0 mismatch.
 */
int scram_verify_proof(const struct scram_cred *c, const char *authmsg,
		       size_t authmsg_len, const unsigned char proof[SCRAM_KEY_LEN],
		       unsigned char server_sig[SCRAM_KEY_LEN]);

#endif
