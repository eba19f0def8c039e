/*
 * smtp_dane.c - DANE policy of the SMTP client (RFC 7672): usable TLSA
 * records, the per-server decision of the dane / dane-only levels as
 * Postfix takes it, smtp_dns_support_level, and the OpenSSL DANE calls.
 * Pure except for the OpenSSL objects it is handed.
 * Must not: do DNS lookups or log (the client does both), or trust a
 * TLSA RRset the resolver did not validate.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "delivery/smtp_dane.h"

int
smtp_dns_support_parse(const char *v, enum smtp_dns_support *r,
		       struct errbuf *err)
{
	size_t n;

	if (v == NULL)
		v = "";
	v += strspn(v, " \t");
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n == 0 || (n == 7 && strncasecmp(v, "enabled", 7) == 0))
		*r = SMTP_DNS_ENABLED;
	else if (n == 8 && strncasecmp(v, "disabled", 8) == 0)
		*r = SMTP_DNS_DISABLED;
	else if (n == 6 && strncasecmp(v, "dnssec", 6) == 0)
		*r = SMTP_DNS_DNSSEC;
	else {
		errbuf_set(err, "smtp_dns_support_level: unknown value "
			   "\"%.*s\" (expected disabled, enabled or dnssec)",
			   (int)(n > 64 ? 64 : n), v);
		return -1;
	}
	return 0;
}

bool
smtp_dane_usable(const struct dns_rr *rr)
{
	if (rr == NULL || rr->type != DNS_TLSA || rr->data == NULL
	    || rr->len == 0)
		return false;
	if (rr->usage != 2 && rr->usage != 3)	/* DANE-TA, DANE-EE */
		return false;
	if (rr->selector > 1)
		return false;
	switch (rr->mtype) {
	case 0:  return true;
	case 1:  return rr->len == 32;
	case 2:  return rr->len == 64;
	default: return false;
	}
}

size_t
smtp_dane_count_usable(const struct dns_result *res)
{
	size_t i, k = 0;

	for (i = 0; res != NULL && i < res->n; i++)
		if (smtp_dane_usable(&res->rr[i]))
			k++;
	return k;
}

enum smtp_dane_action
smtp_dane_decide(bool only, bool dest_secure, enum dns_status tlsa_st,
		 const struct dns_result *tlsa, const char *host, int port,
		 char *why, size_t size)
{
	if (!dest_secure) {
		snprintf(why, size, "non DNSSEC destination %s", host);
		return only ? SMTP_DANE_DEFER : SMTP_DANE_MAY;
	}
	if (tlsa_st == DNS_TEMPFAIL) {
		/* never a fallback to cleartext on a signed destination */
		snprintf(why, size, "TLSA lookup error for %s:%d", host, port);
		return SMTP_DANE_DEFER;
	}
	/* an unvalidated TLSA RRset counts as none (RFC 7672 2.2) */
	if (tlsa_st != DNS_OK || tlsa == NULL || tlsa->n == 0 || !tlsa->secure) {
		snprintf(why, size, "no TLSA records found for %s:%d", host, port);
		return only ? SMTP_DANE_DEFER : SMTP_DANE_MAY;
	}
	if (smtp_dane_count_usable(tlsa) == 0) {
		snprintf(why, size, "TLSA records unusable for %s:%d", host, port);
		return only ? SMTP_DANE_DEFER : SMTP_DANE_ENCRYPT;
	}
	snprintf(why, size, "%zu usable TLSA record%s for %s:%d",
		 smtp_dane_count_usable(tlsa),
		 smtp_dane_count_usable(tlsa) == 1 ? "" : "s", host, port);
	return SMTP_DANE_VERIFY;
}

int
smtp_dane_ctx_enable(SSL_CTX *ctx)
{
	if (ctx == NULL || SSL_CTX_dane_enable(ctx) <= 0) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

int
smtp_dane_apply(SSL *ssl, const char *base, const struct dns_result *tlsa,
		struct errbuf *err)
{
	size_t i;
	int added = 0;

	if (SSL_dane_enable(ssl, base) <= 0) {
		ERR_clear_error();
		errbuf_set(err, "cannot enable DANE for %s", base);
		return -1;
	}
	/* RFC 7672 3.1.1: a DANE-EE(3) match binds the key, names aside */
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	for (i = 0; tlsa != NULL && i < tlsa->n; i++) {
		const struct dns_rr *rr = &tlsa->rr[i];

		if (!smtp_dane_usable(rr))
			continue;
		/* > 0 added, 0 unusable for OpenSSL, < 0 an error */
		if (SSL_dane_tlsa_add(ssl, rr->usage, rr->selector, rr->mtype,
				      (const unsigned char *)rr->data,
				      rr->len) > 0)
			added++;
		ERR_clear_error();
	}
	if (added == 0) {
		errbuf_set(err, "no usable TLSA record for %s", base);
		return -1;
	}
	return added;
}

bool
smtp_dane_verified(SSL *ssl, int *depth_r)
{
	int depth;

	if (ssl == NULL || SSL_get0_peer_certificate(ssl) == NULL
	    || SSL_get_verify_result(ssl) != X509_V_OK)
		return false;
	depth = SSL_get0_dane_authority(ssl, NULL, NULL);
	if (depth < 0)
		return false;
	if (depth_r)
		*depth_r = depth;
	return true;
}
