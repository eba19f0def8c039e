/*
 * smtp_tls.c - settings of the SMTP client's TLS (security level, client
 * context with its trust anchors, smtp_tls_policy_maps values and keys,
 * protocol versions) and SASL (security options, mechanism filter),
 * parsed once at start or per next hop (policy values).
 * Must not: connect, log, or reject a peer inside the handshake (the
 * client decides after it, by level).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/ssl.h>

#include "delivery/smtp_tls.h"

static const char *const later_levels[] = { "dane", "dane-only", NULL };

int
smtp_tls_level_word(const char *v, size_t n, enum smtp_tls_level *r)
{
	static const struct { const char *w; enum smtp_tls_level l; } w[] = {
		{ "none", SMTP_TLS_NONE }, { "may", SMTP_TLS_MAY },
		{ "encrypt", SMTP_TLS_ENCRYPT }, { "verify", SMTP_TLS_VERIFY },
		{ "secure", SMTP_TLS_SECURE },
		{ "fingerprint", SMTP_TLS_FINGERPRINT },
	};
	size_t i;

	if (n == 0) {
		*r = SMTP_TLS_NONE;
		return 0;
	}
	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		if (strlen(w[i].w) == n && strncasecmp(w[i].w, v, n) == 0) {
			*r = w[i].l;
			return 0;
		}
	return -1;
}

int
smtp_tls_level_parse(const char *v, enum smtp_tls_level *r, struct errbuf *err)
{
	const char *const *later = later_levels;
	size_t i, n;

	while (*v == ' ' || *v == '\t')
		v++;
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (smtp_tls_level_word(v, n, r) == 0 && *r == SMTP_TLS_FINGERPRINT) {
		errbuf_set(err, "smtp_tls_security_level = fingerprint: name the "
			   "fingerprints per next hop in smtp_tls_policy_maps "
			   "(\"fingerprint match=...\")");
		return -1;
	}
	if (smtp_tls_level_word(v, n, r) < 0) {
		for (i = 0; later[i]; i++)
			if (strcasecmp(v, later[i]) == 0) {
				errbuf_set(err, "smtp_tls_security_level = %s is "
					   "not available in this version (use "
					   "none, may, encrypt, verify or secure)",
					   later[i]);
				return -1;
			}
		errbuf_set(err, "smtp_tls_security_level: unknown level "
			   "\"%.100s\" (expected none, may, encrypt, verify or "
			   "secure)", v);
		return -1;
	}
	return 0;
}

int
smtp_tls_ctx_new(enum smtp_tls_level level, const char *cafile,
		 const char *capath, SSL_CTX **r, struct errbuf *err)
{
	SSL_CTX *ctx;
	const char *f = cafile && *cafile ? cafile : NULL;
	const char *p = capath && *capath ? capath : NULL;

	*r = NULL;
	if (level == SMTP_TLS_NONE)
		return 0;
	if (level >= SMTP_TLS_VERIFY && f == NULL && p == NULL) {
		errbuf_set(err, "smtp_tls_security_level = %s needs "
			   "smtp_tls_CAfile or smtp_tls_CApath",
			   level == SMTP_TLS_SECURE ? "secure" : "verify");
		return -1;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		errbuf_set(err, "cannot create the SMTP client TLS context");
		return -1;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if ((f || p) && SSL_CTX_load_verify_locations(ctx, f, p) != 1) {
		char e[256];
		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		ERR_clear_error();
		errbuf_set(err, "smtp_tls_CAfile/smtp_tls_CApath: cannot load "
			   "\"%.200s\": %s", f ? f : p, e);
		SSL_CTX_free(ctx);
		return -1;
	}
	*r = ctx;
	return 0;
}

int
smtp_sasl_opts_parse(const char *v, unsigned *r, struct errbuf *err)
{
	static const struct { const char *name; unsigned bit; } opts[] = {
		{ "noplaintext", SMTP_SASL_NOPLAINTEXT },
		{ "noanonymous", SMTP_SASL_NOANONYMOUS },
		{ "noactive", SMTP_SASL_NOACTIVE },
		{ "nodictionary", SMTP_SASL_NODICTIONARY },
		{ "mutual_auth", SMTP_SASL_MUTUAL_AUTH },
	};
	char w[64];

	*r = 0;
	while (*v) {
		size_t n = 0, i;

		while (*v == ',' || isspace((unsigned char)*v))
			v++;
		if (*v == '\0')
			break;
		while (v[n] && v[n] != ',' && !isspace((unsigned char)v[n]))
			n++;
		if (n >= sizeof(w))
			n = sizeof(w) - 1;
		memcpy(w, v, n);
		w[n] = '\0';
		for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
			if (strcasecmp(w, opts[i].name) == 0)
				break;
		if (i == sizeof(opts) / sizeof(opts[0])) {
			errbuf_set(err, "smtp_sasl_security_options: unknown option "
				   "\"%s\"", w);
			return -1;
		}
		*r |= opts[i].bit;
		while (v[0] && v[0] != ',' && !isspace((unsigned char)v[0]))
			v++;
	}
	return 0;
}

bool
smtp_sasl_mech_allowed(const char *mech, unsigned opts, const char *filter)
{
	size_t ml = strlen(mech);
	const char *p = filter ? filter : "";
	bool any = false;

	/* PLAIN and LOGIN send the password itself: open to passive and
	 * active attacks and to dictionary attacks, and they do not prove
	 * the server (mutual_auth), as Cyrus SASL classes them. */
	if (opts & (SMTP_SASL_NOPLAINTEXT | SMTP_SASL_NOACTIVE
		    | SMTP_SASL_NODICTIONARY | SMTP_SASL_MUTUAL_AUTH))
		return false;
	while (*p) {
		size_t n = 0;

		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		while (p[n] && p[n] != ',' && !isspace((unsigned char)p[n]))
			n++;
		any = true;
		if (n == ml && strncasecmp(p, mech, n) == 0)
			return true;
		p += n;
	}
	return !any;
}

/* ---- smtp_tls_policy_maps ---- */

int
smtp_tls_policy_parse(const char *v, struct smtp_tls_policy *p,
		      struct errbuf *err)
{
	size_t n, i;
	bool first = true;

	memset(p, 0, sizeof(*p));
	for (;;) {
		v += strspn(v, " \t,");
		n = strcspn(v, " \t,");
		if (n == 0)
			break;
		if (first) {
			first = false;
			if (smtp_tls_level_word(v, n, &p->level) < 0) {
				for (i = 0; later_levels[i]; i++)
					if (strlen(later_levels[i]) == n
					    && strncasecmp(later_levels[i], v, n) == 0) {
						errbuf_set(err, "TLS policy level "
							   "\"%s\" is not available "
							   "in this version", later_levels[i]);
						return -1;
					}
				errbuf_set(err, "invalid TLS security level "
					   "\"%.*s\"", (int)(n > 64 ? 64 : n), v);
				return -1;
			}
		} else if (n > 6 && strncasecmp(v, "match=", 6) == 0) {
			size_t have = strlen(p->match);

			if (have + n - 6 + 2 > sizeof(p->match)) {
				errbuf_set(err, "TLS policy match= list too long");
				return -1;
			}
			if (have)	/* fingerprints contain ':' */
				p->match[have++] = p->level == SMTP_TLS_FINGERPRINT
						   ? '|' : ':';
			memcpy(p->match + have, v + 6, n - 6);
			p->match[have + n - 6] = '\0';
		} else if (n > 10 && strncasecmp(v, "protocols=", 10) == 0) {
			if (n - 10 >= sizeof(p->protocols)) {
				errbuf_set(err, "TLS policy protocols= too long");
				return -1;
			}
			memcpy(p->protocols, v + 10, n - 10);
			p->protocols[n - 10] = '\0';
			if (smtp_tls_protocols_apply(NULL, p->protocols, err) < 0)
				return -1;
		} else if ((n > 8 && strncasecmp(v, "ciphers=", 8) == 0)
			   || (n > 8 && strncasecmp(v, "exclude=", 8) == 0)) {
			;	/* OpenSSL's defaults stay (Postfix: medium) */
		} else {
			errbuf_set(err, "invalid TLS policy attribute \"%.*s\"",
				   (int)(n > 64 ? 64 : n), v);
			return -1;
		}
		v += n;
	}
	if (first) {
		errbuf_set(err, "empty TLS policy");
		return -1;
	}
	if (p->level == SMTP_TLS_FINGERPRINT && p->match[0] == '\0') {
		errbuf_set(err, "TLS policy fingerprint without match=");
		return -1;
	}
	return 0;
}

/* Compares one fingerprint (hex, ':' optional) with a digest. */
static bool
fp_equal(const char *fp, size_t n, const unsigned char *md, unsigned mdlen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned k = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		int c = tolower((unsigned char)fp[i]);

		if (c == ':')
			continue;
		if (k >= 2 * mdlen || c != hex[(k % 2 == 0) ? md[k / 2] >> 4
					       : md[k / 2] & 15])
			return false;
		k++;
	}
	return k == 2 * mdlen;
}

bool
smtp_tls_fingerprint_match(X509 *cert, const char *list)
{
	unsigned char md[2][EVP_MAX_MD_SIZE], *der = NULL;
	unsigned mdlen[2] = { 0, 0 };
	int len;

	if (cert == NULL || list == NULL)
		return false;
	if (X509_digest(cert, EVP_sha256(), md[0], &mdlen[0]) != 1)
		mdlen[0] = 0;
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	if (len <= 0 || EVP_Digest(der, (size_t)len, md[1], &mdlen[1],
				   EVP_sha256(), NULL) != 1)
		mdlen[1] = 0;
	OPENSSL_free(der);
	while (*list) {
		size_t n = strcspn(list, "|, \t");

		if (n > 0 && ((mdlen[0] && fp_equal(list, n, md[0], mdlen[0]))
			      || (mdlen[1] && fp_equal(list, n, md[1], mdlen[1]))))
			return true;
		list += n;
		list += strspn(list, "|, \t");
	}
	return false;
}

size_t
smtp_tls_policy_keys(const char *host, int port, bool mx, char keys[][300],
		     size_t max)
{
	size_t k = 0;
	const char *d;

	if (max == 0)
		return 0;
	if (port > 0)
		snprintf(keys[k++], 300, "%s%s%s:%d", mx ? "" : "[", host,
			 mx ? "" : "]", port);
	else
		snprintf(keys[k++], 300, "%s%s%s", mx ? "" : "[", host,
			 mx ? "" : "]");
	if (!mx || port > 0)
		return k;
	for (d = strchr(host, '.'); d && d[1] && k < max; d = strchr(d + 1, '.'))
		snprintf(keys[k++], 300, "%s", d);
	return k;
}

/* TLS protocol names in order; index 0 (SSLv2) cannot be enabled. */
static const struct { const char *name; int ver; long no; } protos[] = {
	{ "SSLv2", 0, 0 }, { "SSLv3", SSL3_VERSION, SSL_OP_NO_SSLv3 },
	{ "TLSv1", TLS1_VERSION, SSL_OP_NO_TLSv1 },
	{ "TLSv1.1", TLS1_1_VERSION, SSL_OP_NO_TLSv1_1 },
	{ "TLSv1.2", TLS1_2_VERSION, SSL_OP_NO_TLSv1_2 },
	{ "TLSv1.3", TLS1_3_VERSION, SSL_OP_NO_TLSv1_3 },
};
#define NPROTOS (sizeof(protos) / sizeof(protos[0]))

static int
proto_index(const char *v, size_t n)
{
	size_t i;

	for (i = 0; i < NPROTOS; i++)
		if (strlen(protos[i].name) == n
		    && strncasecmp(protos[i].name, v, n) == 0)
			return (int)i;
	return -1;
}

int
smtp_tls_protocols_apply(SSL *ssl, const char *v, struct errbuf *err)
{
	bool incl[NPROTOS] = { false }, excl[NPROTOS] = { false }, any_incl = false;
	int lo = 2, hi = (int)NPROTOS - 1, i, first = -1, last = -1;
	size_t n;

	for (;;) {
		int x, kind = 0;	/* 0 include, 1 exclude, 2 >=, 3 <= */

		v += strspn(v, " \t,:");
		n = strcspn(v, " \t,:");
		if (n == 0)
			break;
		if (v[0] == '!') {
			kind = 1;
			x = proto_index(v + 1, n - 1);
		} else if (n > 2 && (v[0] == '>' || v[0] == '<') && v[1] == '=') {
			kind = v[0] == '>' ? 2 : 3;
			x = proto_index(v + 2, n - 2);
		} else {
			x = proto_index(v, n);
		}
		if (x < 0) {
			errbuf_set(err, "invalid TLS protocol \"%.*s\"",
				   (int)(n > 32 ? 32 : n), v);
			return -1;
		}
		if (kind == 0) {
			incl[x] = any_incl = true;
		} else if (kind == 1) {
			excl[x] = true;
		} else if (kind == 2) {
			if (x > lo)
				lo = x;
		} else if (x < hi) {
			hi = x;
		}
		v += n;
	}
	/* SSLv2 and SSLv3 are never offered; TLSv1 is the floor */
	for (i = 2; i < (int)NPROTOS; i++)
		if (i >= lo && i <= hi && !excl[i] && (!any_incl || incl[i])) {
			if (first < 0)
				first = i;
			last = i;
		}
	if (first < 0) {
		errbuf_set(err, "TLS protocols: no protocol version left");
		return -1;
	}
	if (ssl == NULL)
		return 0;
	SSL_set_min_proto_version(ssl, protos[first].ver);
	SSL_set_max_proto_version(ssl, protos[last].ver);
	for (i = first + 1; i < last; i++)
		if (excl[i] || (any_incl && !incl[i]))
			SSL_set_options(ssl, (uint64_t)protos[i].no);
	return 0;
}
