/*
 * smtpd_ccert.c - reads the client certificate after the server's TLS
 * handshake (core/tls.c asked for it and let any certificate through):
 * OpenSSL's verification verdict, subject and issuer CN, and Postfix-style
 * fingerprints ("AB:CD:...", upper-case hex with colons) of the DER
 * certificate and of its SubjectPublicKeyInfo.
 * Must not: block, or trust a certificate whose chain did not verify
 * (callers look at .verified before permitting anything).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/lib/xmalloc.h"
#include "core/smtpd_ccert.h"
#include "core/smtpd_check.h"
#include "core/smtpd_session.h"

#define CN_MAX	256

/* The CN of a name as printable UTF-8 without quotes ("" when none). */
static char *
name_cn(const X509_NAME *name)
{
	int i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
	unsigned char *u = NULL;
	char *r;
	int n;

	if (i < 0)
		return xstrdup("");
	n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(
					X509_NAME_get_entry(name, i)));
	if (n < 0)
		return xstrdup("");
	if (n > CN_MAX)
		n = CN_MAX;
	r = xmalloc((size_t)n + 1);
	for (int k = 0; k < n; k++)
		r[k] = (u[k] < 0x20 || u[k] == 0x7f || u[k] == '"' ||
			u[k] == '\\') ? '?' : (char)u[k];
	r[n] = '\0';
	OPENSSL_free(u);
	return r;
}

static char *
hex_colons(const unsigned char *md, unsigned n)
{
	char *r = xmalloc(n * 3 + 1), *p = r;

	for (unsigned i = 0; i < n; i++)
		p += sprintf(p, "%s%02X", i ? ":" : "", md[i]);
	*p = '\0';
	return r;
}

static char *
pkey_print(X509 *x, const EVP_MD *md)
{
	unsigned char *der = NULL, buf[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	char *r;

	if (len <= 0 || EVP_Digest(der, (size_t)len, buf, &n, md, NULL) != 1)
		r = xstrdup("");
	else
		r = hex_colons(buf, n);
	OPENSSL_free(der);
	return r;
}

struct smtpd_ccert *
smtpd_ccert_get(SSL *ssl, const char *digest)
{
	X509 *x = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
	const EVP_MD *md = digest && *digest ? EVP_get_digestbyname(digest) : NULL;
	struct smtpd_ccert *c;
	unsigned char buf[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	long vr;

	if (x == NULL)
		return NULL;
	if (md == NULL)
		md = EVP_sha256();
	c = xcalloc(1, sizeof(*c));
	vr = SSL_get_verify_result(ssl);
	c->verified = vr == X509_V_OK;
	c->verify_error = xstrdup(c->verified ? "" :
				  X509_verify_cert_error_string(vr));
	c->subject_cn = name_cn(X509_get_subject_name(x));
	c->issuer_cn = name_cn(X509_get_issuer_name(x));
	if (X509_digest(x, md, buf, &n) == 1)
		c->fingerprint = hex_colons(buf, n);
	else
		c->fingerprint = xstrdup("");
	c->pkey_fingerprint = pkey_print(x, md);
	X509_free(x);
	return c;
}

void
smtpd_ccert_free(struct smtpd_ccert **cp)
{
	struct smtpd_ccert *c = *cp;

	if (c == NULL)
		return;
	free(c->subject_cn);
	free(c->issuer_cn);
	free(c->fingerprint);
	free(c->pkey_fingerprint);
	free(c->verify_error);
	free(c);
	*cp = NULL;
}

const char *
smtpd_ccert_trust_word(const struct smtpd_ccert *c)
{
	return c == NULL ? "Anonymous" : c->verified ? "Trusted" : "Untrusted";
}

void
smtpd_ccert_received(const struct smtpd_ccert *c, bool asked, struct buf *out)
{
	if (c != NULL)
		buf_printf(out, "(Client CN \"%s\", Issuer \"%s\" (%s))",
			   c->subject_cn, c->issuer_cn,
			   c->verified ? "verified OK" : "not verified");
	else if (asked)
		buf_puts(out, "(Client did not present a certificate)");
	else
		buf_puts(out, "(No client certificate requested)");
}

void
smtpd_ccert_facts(const struct smtpd_session *s, struct smtpd_check_facts *f)
{
	const SSL_CIPHER *c;

	f->ccert = s->ccert;
	f->tls_protocol = f->tls_cipher = NULL;
	f->tls_bits = 0;
	if (s->ssl == NULL || !s->tls_up)
		return;
	/* both strings are OpenSSL's static ones: safe on a worker */
	f->tls_protocol = SSL_get_version(s->ssl);
	if ((c = SSL_get_current_cipher(s->ssl)) != NULL) {
		f->tls_cipher = SSL_CIPHER_get_name(c);
		f->tls_bits = SSL_CIPHER_get_bits(c, NULL);
	}
}
