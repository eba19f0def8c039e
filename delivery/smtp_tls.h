/*
 * smtp_tls.h - the SMTP client's TLS and SASL settings: the
 * smtp_tls_security_level values facteur implements (none, may, encrypt,
 * verify), the client OpenSSL context (trust anchors from smtp_tls_CAfile /
 * smtp_tls_CApath), smtp_sasl_security_options and
 * smtp_sasl_mechanism_filter. Built once at start; nothing here blocks
 * except smtp_tls_ctx_new (it reads the CA files).
 */
#ifndef FACTEUR_SMTP_TLS_H
#define FACTEUR_SMTP_TLS_H
#include <stdbool.h>

#include <openssl/ssl.h>

#include "core/lib/errbuf.h"

enum smtp_tls_level {
	SMTP_TLS_NONE = 0,	/* never STARTTLS */
	SMTP_TLS_MAY,		/* STARTTLS when offered, else plaintext */
	SMTP_TLS_ENCRYPT,	/* STARTTLS required, certificate not checked */
	SMTP_TLS_VERIFY,	/* STARTTLS required, certificate chain + name */
};

/* "" and "none", "may", "encrypt", "verify". 0, or -1 + err (the Postfix
 * levels facteur does not implement are named as such). */
int smtp_tls_level_parse(const char *v, enum smtp_tls_level *r,
			 struct errbuf *err);

/*
 * The client context for level (NULL for none, with 0 returned). verify
 * needs smtp_tls_CAfile or smtp_tls_CApath. The peer is never rejected
 * inside the handshake: the client checks SSL_get_verify_result after it.
 * 0, or -1 + err.
 */
int smtp_tls_ctx_new(enum smtp_tls_level level, const char *cafile,
		     const char *capath, SSL_CTX **r, struct errbuf *err);

#define SMTP_SASL_NOPLAINTEXT	(1u << 0)
#define SMTP_SASL_NOANONYMOUS	(1u << 1)
#define SMTP_SASL_NOACTIVE	(1u << 2)
#define SMTP_SASL_NODICTIONARY	(1u << 3)
#define SMTP_SASL_MUTUAL_AUTH	(1u << 4)

/* smtp_sasl_security_options: noplaintext, noanonymous, noactive,
 * nodictionary, mutual_auth. 0, or -1 + err for another word. */
int smtp_sasl_opts_parse(const char *v, unsigned *r, struct errbuf *err);

/*
 * Whether mechanism mech (PLAIN or LOGIN, the ones facteur speaks) may be
 * used under opts and the mechanism filter (a list of names, "" = all).
 */
bool smtp_sasl_mech_allowed(const char *mech, unsigned opts,
			    const char *filter);

#endif
