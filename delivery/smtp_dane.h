/*
 * smtp_dane.h - DANE for the SMTP client (RFC 7672, RFC 7671), with
 * Postfix's semantics for the "dane" and "dane-only" security levels:
 * smtp_dns_support_level values, which TLSA records are usable for SMTP,
 * what a next hop's DNSSEC status and TLSA lookup mean for the session
 * (DANE, opportunistic, encrypted only, or deferred), and the wiring into
 * OpenSSL's own DANE verifier (SSL_dane_enable, SSL_dane_tlsa_add).
 * DNSSEC validation is the resolver's: the caller passes the AD bit of
 * its replies (core/dns dns_query_secure).
 * Must not: do DNS lookups, log, or decide anything for levels other than
 * dane and dane-only.
 */
#ifndef FACTEUR_SMTP_DANE_H
#define FACTEUR_SMTP_DANE_H
#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "core/dns.h"
#include "core/lib/errbuf.h"

/* smtp_dns_support_level (Postfix): "" is enabled */
enum smtp_dns_support {
	SMTP_DNS_ENABLED = 0,	/* MX and address lookups in DNS */
	SMTP_DNS_DISABLED,	/* no MX lookups; addresses as the system
				 * names hosts (hosts file, then DNS) */
	SMTP_DNS_DNSSEC,	/* as enabled, asking for DNSSEC validation */
};

/* "", "disabled", "enabled", "dnssec". 0, or -1 + err. */
int smtp_dns_support_parse(const char *v, enum smtp_dns_support *r,
			   struct errbuf *err);

/*
 * Whether one TLSA record is usable for SMTP (RFC 7672 3.1.3): usage
 * DANE-TA(2) or DANE-EE(3) (PKIX-TA/PKIX-EE are not), selector Cert(0)
 * or SPKI(1), matching type Full(0) with data, SHA2-256(1) with 32
 * bytes or SHA2-512(2) with 64 bytes.
 */
bool smtp_dane_usable(const struct dns_rr *rr);
/* How many records of res are usable TLSA records. */
size_t smtp_dane_count_usable(const struct dns_result *res);

/* What the DNS says for one SMTP server under dane / dane-only. */
enum smtp_dane_action {
	SMTP_DANE_VERIFY,	/* TLS required, the peer must match a TLSA */
	SMTP_DANE_MAY,		/* opportunistic TLS (dane only) */
	SMTP_DANE_ENCRYPT,	/* secure TLSA records, none usable: TLS
				 * required, not authenticated (dane only) */
	SMTP_DANE_DEFER,	/* defer the delivery with 4.7.5 and why */
};

/*
 * The decision for one server (Postfix's dane_init): only = dane-only;
 * dest_secure = the MX RRset (when MX records were used) and the
 * server's address records were validated; tlsa_st/tlsa = the TLSA
 * lookup of _PORT._tcp.HOST (tlsa may be NULL unless DNS_OK or
 * DNS_NOTFOUND). why (for logs and the deferral text) is always set.
 */
enum smtp_dane_action smtp_dane_decide(bool only, bool dest_secure,
				       enum dns_status tlsa_st,
				       const struct dns_result *tlsa,
				       const char *host, int port,
				       char *why, size_t size);

/*
 * Turns on OpenSSL's DANE verification on ssl (its context must have
 * gone through smtp_dane_ctx_enable): base is the TLSA base domain (the
 * server's host name), which DANE-TA(2) chains must match (DANE-EE(3)
 * records skip the name checks); the usable records of tlsa are added.
 * The number of records added (> 0), or -1 + err.
 */
int smtp_dane_apply(SSL *ssl, const char *base, const struct dns_result *tlsa,
		    struct errbuf *err);
/* SSL_CTX_dane_enable, once per client context. 0, or -1. */
int smtp_dane_ctx_enable(SSL_CTX *ctx);
/*
 * After the handshake: whether the peer matched a TLSA record (the chain
 * verified under DANE). Sets *depth_r to the matching certificate's
 * depth (0 the server's own) when it did.
 */
bool smtp_dane_verified(SSL *ssl, int *depth_r);

#endif
