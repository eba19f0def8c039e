/*
 * smtp_tls.h - the SMTP client's TLS and SASL settings: the
 * smtp_tls_security_level values facteur implements (none, may, encrypt,
 * verify, secure, dane, dane-only; fingerprint in smtp_tls_policy_maps;
 * DANE itself is delivery/smtp_dane), policy entries
 * (level, match=, protocols=), their lookup keys, certificate
 * fingerprints (SHA-256), the client OpenSSL context (trust anchors from smtp_tls_CAfile /
 * smtp_tls_CApath), smtp_sasl_security_options and
 * smtp_sasl_mechanism_filter. Built once at start; nothing here blocks
 * except smtp_tls_ctx_new (it reads the CA files).
 */
#ifndef FACTEUR_SMTP_TLS_H
#define FACTEUR_SMTP_TLS_H
#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "core/lib/errbuf.h"

enum smtp_tls_level {
	SMTP_TLS_NONE = 0,	/* never STARTTLS */
	SMTP_TLS_MAY,		/* STARTTLS when offered, else plaintext */
	SMTP_TLS_ENCRYPT,	/* STARTTLS required, certificate not checked */
	SMTP_TLS_VERIFY,	/* STARTTLS required, certificate chain + name */
	SMTP_TLS_SECURE,	/* as verify, names from the next hop */
	SMTP_TLS_FINGERPRINT,	/* STARTTLS required, certificate pinned by
				 * its SHA-256 fingerprint (policy maps only) */
	SMTP_TLS_DANE,		/* RFC 7672: verified against secure TLSA
				 * records when there are usable ones, else
				 * may (or encrypt); in a session, the level
				 * of a server being verified by DANE */
	SMTP_TLS_DANE_ONLY,	/* as dane, but no usable secure TLSA
				 * records defers the delivery */
};

/* "" and "none", "may", "encrypt", "verify", "secure", "fingerprint",
 * "dane", "dane-only", as a word of v (n bytes); -1 for another word. */
int smtp_tls_level_word(const char *v, size_t n, enum smtp_tls_level *r);

/* One smtp_tls_policy_maps(5) value: "LEVEL [name=value ...]". */
struct smtp_tls_policy {
	enum smtp_tls_level level;
	char match[512];	/* ':'-separated names ('|' between the
				 * fingerprints of the fingerprint level);
				 * "" = the level's default */
	char protocols[128];	/* as written, "" = any */
};

/*
 * Parses a policy value: the level, then match= (repeatable, names joined
 * by ':', fingerprints by '|'), protocols=, and ciphers= / exclude=
 * (accepted, not applied). 0, or -1 + err (unknown level, unknown
 * attribute, fingerprint without match=).
 */
int smtp_tls_policy_parse(const char *v, struct smtp_tls_policy *p,
			  struct errbuf *err);

/*
 * The policy table keys of a next hop, most specific first (Postfix): the
 * next hop as written ("[host]:port", "host:port", "[host]", "host"),
 * then for a domain (mx) without port, its parent domains ".b.c", ".c".
 * Writes at most max keys of size 300; returns how many.
 */
size_t smtp_tls_policy_keys(const char *host, int port, bool mx,
			    char keys[][300], size_t max);

/*
 * Applies a protocols value ("!SSLv2, !SSLv3", "TLSv1.2:TLSv1.3",
 * ">=TLSv1.2", "<=TLSv1.2") to ssl: minimum and maximum versions, and the
 * versions excluded in between. 0, or -1 + err (unknown name, nothing
 * left). ssl may be NULL to check the syntax only.
 */
int smtp_tls_protocols_apply(SSL *ssl, const char *v, struct errbuf *err);

/*
 * The fingerprint level: whether cert's SHA-256 fingerprint, or that of
 * its public key, is in list ('|'-separated, hex with or without ':',
 * any case), as Postfix matches them.
 */
bool smtp_tls_fingerprint_match(X509 *cert, const char *list);

/* "" and "none", "may", "encrypt", "verify", "secure", "dane",
 * "dane-only". 0, or -1 + err. */
int smtp_tls_level_parse(const char *v, enum smtp_tls_level *r,
			 struct errbuf *err);

/*
 * The client context for level (NULL for none, with 0 returned). verify
 * and secure need smtp_tls_CAfile or smtp_tls_CApath (dane does not: the
 * trust anchors come from TLSA records). DANE is enabled on every
 * context (a policy table may ask for it per next hop). The peer is never rejected
 * inside the handshake: the client checks SSL_get_verify_result after it.
 * 0, or -1 + err.
 */
int smtp_tls_ctx_new(enum smtp_tls_level level, const char *cafile,
		     const char *capath, SSL_CTX **r, struct errbuf *err);

/*
 * The client certificate (smtp_tls_cert_file + smtp_tls_key_file, or
 * smtp_tls_chain_files: PEM, the key then its certificate chain), read
 * into memory now: facteurd calls this as root, before dropping
 * privileges, like the server keys. Every context smtp_tls_ctx_new makes
 * afterwards presents it when a server asks. Empty names: no certificate.
 * The key must match the certificate. 0, or -1 + err naming the
 * parameter; on error the previous certificate stays.
 */
int smtp_tls_client_cert_load(const char *cert_file, const char *key_file,
			      const char *chain_files, struct errbuf *err);
/* True when the names are those of the certificate loaded (a reload
 * without root cannot read them again, and need not). */
bool smtp_tls_client_cert_same(const char *cert_file, const char *key_file,
			       const char *chain_files);

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

/*
 * The client's TLS level as written: smtp_tls_security_level when set,
 * else the obsolete smtp_enforce_tls (encrypt) / smtp_use_tls (may).
 */
struct settings;
struct smtp_client_cfg;
const char *smtp_tls_level_value(const struct settings *s);
/*
 * The other smtp_tls_* knobs into c (after smtp_tls_ctx_new): cipher
 * grades and exclusions, loglevel, note_starttls_offer, wrappermode, and
 * tls_ssl_options on c->tls_ctx. 0, or -1 + err on a bad value.
 */
int smtp_tls_knobs_load(struct smtp_client_cfg *c, const struct settings *s,
			struct errbuf *err);

#endif
