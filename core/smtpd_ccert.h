/*
 * smtpd_ccert.h - the SMTP client's certificate as the server saw it after
 * the TLS handshake: verified or not, subject and issuer CN, certificate
 * and public-key fingerprints (smtpd_tls_fingerprint_digest), for the
 * restrictions permit_tls_clientcerts / permit_tls_all_clientcerts /
 * check_ccert_access, policy attributes, logs and the Received: header.
 * Must not: fail or block a handshake (tls.c lets every certificate through
 * and this module only reads the verdict), or keep the SSL object.
 */
#ifndef FACTEUR_SMTPD_CCERT_H
#define FACTEUR_SMTPD_CCERT_H
#include <stdbool.h>

#include <openssl/ssl.h>

#include "core/lib/buf.h"

struct smtpd_ccert {
	bool  verified;		/* chain verified against smtpd_tls_CAfile/path */
	char *subject_cn, *issuer_cn;	/* CN ("" when none), printable */
	char *fingerprint;	/* "AB:CD:..." digest of the DER certificate */
	char *pkey_fingerprint;	/* the same of the SubjectPublicKeyInfo */
	char *verify_error;	/* OpenSSL's reason when not verified */
};

/*
 * The peer certificate of ssl, or NULL when the client sent none. digest is
 * smtpd_tls_fingerprint_digest (md5, sha1, sha256 ...); an unknown digest
 * falls back to sha256.
 */
struct smtpd_ccert *smtpd_ccert_get(SSL *ssl, const char *digest);
void smtpd_ccert_free(struct smtpd_ccert **cp);

/* "Trusted", "Untrusted" or "Anonymous" (Postfix's TLS log words). */
const char *smtpd_ccert_trust_word(const struct smtpd_ccert *c);
/*
 * The Received: header comment line (without tab and newline):
 * (Client CN "x", Issuer "y" (verified OK)) / (not verified), or
 * (Client did not present a certificate), or (No client certificate
 * requested) when asked is false.
 */
void smtpd_ccert_received(const struct smtpd_ccert *c, bool asked,
			  struct buf *out);

/* Puts the session's certificate and TLS protocol, cipher and bits into
 * the restriction facts f (policy attributes, check_ccert_access ...). */
struct smtpd_session;
struct smtpd_check_facts;
void smtpd_ccert_facts(const struct smtpd_session *s,
		       struct smtpd_check_facts *f);

#endif
