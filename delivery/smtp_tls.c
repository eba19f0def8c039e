/*
 * smtp_tls.c - settings of the SMTP client's TLS (security level, client
 * context with its trust anchors, smtp_tls_policy_maps values and keys,
 * protocol versions) and SASL (security options, mechanism filter),
 * parsed once at start or per next hop (policy values); the client
 * certificate (smtp_tls_cert_file / _key_file / _chain_files), read into
 * memory as root at start and given to every client context; the other
 * smtp_tls_* knobs (cipher grades, exclusions, loglevel, STARTTLS offer
 * notes, wrappermode, the obsolete smtp_use_tls / smtp_enforce_tls) and
 * tls_ssl_options.
 * Must not: connect, log, or reject a peer inside the handshake (the
 * client decides after it, by level).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/ssl.h>

#include "core/lib/buf.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/params.h"
#include "core/tls.h"
#include "delivery/smtp_client.h"
#include "delivery/smtp_dane.h"
#include "delivery/smtp_tls.h"

/* ---- client certificate ---- */

#define CLIENT_PEM_MAX (1024 * 1024)	/* one PEM file, bytes */

/* One key and its chain, as PEM text (the same text for a chain file). */
struct cert_pair {
	char   *certs, *key;
	size_t  ncerts, nkey;
};

static struct {
	struct cert_pair *v;
	size_t            n;
	char             *names;	/* "cert\nkey\nchain" as configured */
} client_cert;

static void
pairs_free(struct cert_pair *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i].key != NULL) {
			OPENSSL_cleanse(v[i].key, v[i].nkey);
			if (v[i].key != v[i].certs)
				free(v[i].key);
		}
		free(v[i].certs);
	}
	free(v);
}

static char *
pem_read(const char *param, const char *path, size_t *len_r,
	 struct errbuf *err)
{
	FILE *f = fopen(path, "r");
	struct buf b;
	char chunk[4096];
	size_t n;

	if (f == NULL) {
		errbuf_set(err, "%s: cannot open \"%s\": %s", param, path,
			   strerror(errno));
		return NULL;
	}
	buf_init(&b, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (b.len + n > CLIENT_PEM_MAX) {
			errbuf_set(err, "%s: \"%s\" is too large", param, path);
			goto fail;
		}
		buf_append(&b, chunk, n);
	}
	if (ferror(f)) {
		errbuf_set(err, "%s: cannot read \"%s\": %s", param, path,
			   strerror(errno));
		goto fail;
	}
	fclose(f);
	*len_r = b.len;
	if (b.data == NULL)
		buf_append(&b, "", 0);
	return buf_steal(&b);
fail:
	fclose(f);
	if (b.data)
		OPENSSL_cleanse(b.data, b.len);
	buf_free(&b);
	return NULL;
}

static void
ssl_err(struct errbuf *err, const char *what, const char *param)
{
	char e[256] = "";
	unsigned long code = ERR_peek_last_error();

	if (code != 0)
		ERR_error_string_n(code, e, sizeof(e));
	ERR_clear_error();
	errbuf_set(err, "%s: %s%s%s", param, what, e[0] ? ": " : "", e);
}

/* Puts one key and its chain into ctx. 0, or -1 + err. */
static int
pair_apply(SSL_CTX *ctx, const struct cert_pair *p, const char *param,
	   struct errbuf *err)
{
	BIO *b = BIO_new_mem_buf(p->certs, (int)p->ncerts);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	EVP_PKEY *k;
	int ok;

	if (x == NULL) {
		BIO_free(b);
		ssl_err(err, "no PEM certificate found", param);
		return -1;
	}
	ok = SSL_CTX_use_certificate(ctx, x) == 1;
	X509_free(x);
	while (ok && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		ok = SSL_CTX_add1_chain_cert(ctx, x) == 1;
		X509_free(x);
	}
	BIO_free(b);
	ERR_clear_error();	/* the end of the PEM text */
	if (!ok) {
		ssl_err(err, "cannot use the certificate", param);
		return -1;
	}
	b = BIO_new_mem_buf(p->key, (int)p->nkey);
	k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (k == NULL) {
		ssl_err(err, "no PEM private key found", param);
		return -1;
	}
	ok = SSL_CTX_use_PrivateKey(ctx, k) == 1;
	EVP_PKEY_free(k);
	if (!ok || SSL_CTX_check_private_key(ctx) != 1) {
		ssl_err(err, "the private key does not match the certificate",
			param);
		return -1;
	}
	return 0;
}

static int
pairs_apply(SSL_CTX *ctx, const struct cert_pair *v, size_t n,
	    const char *param, struct errbuf *err)
{
	for (size_t i = 0; i < n; i++)
		if (pair_apply(ctx, &v[i], param, err) < 0)
			return -1;
	return 0;
}

static char *
cert_names(const char *cert_file, const char *key_file,
	   const char *chain_files)
{
	return xasprintf("%s\n%s\n%s", cert_file ? cert_file : "",
			 key_file ? key_file : "",
			 chain_files ? chain_files : "");
}

bool
smtp_tls_client_cert_same(const char *cert_file, const char *key_file,
			  const char *chain_files)
{
	char *n = cert_names(cert_file, key_file, chain_files);
	bool same = client_cert.names != NULL &&
		    strcmp(n, client_cert.names) == 0;

	free(n);
	return same;
}

int
smtp_tls_client_cert_load(const char *cert_file, const char *key_file,
			  const char *chain_files, struct errbuf *err)
{
	struct cert_pair *v = NULL;
	size_t n = 0;
	struct strlist files;
	const char *param;
	SSL_CTX *ctx;
	int rc = -1;

	strlist_init(&files);
	if (chain_files != NULL && *chain_files != '\0') {
		param = "smtp_tls_chain_files";
		(void)strlist_split(&files, chain_files);
		v = xcalloc(files.n ? files.n : 1, sizeof(*v));
		for (size_t i = 0; i < files.n; i++) {
			v[n].certs = pem_read(param, files.v[i], &v[n].ncerts,
					      err);
			if (v[n].certs == NULL)
				goto out;
			v[n].key = v[n].certs;
			v[n].nkey = v[n].ncerts;
			n++;
		}
	} else if (cert_file != NULL && *cert_file != '\0') {
		const char *kf = key_file && *key_file ? key_file : cert_file;

		param = "smtp_tls_cert_file";
		v = xcalloc(1, sizeof(*v));
		if ((v[0].certs = pem_read(param, cert_file, &v[0].ncerts,
					   err)) == NULL)
			goto out;
		n = 1;
		if ((v[0].key = pem_read("smtp_tls_key_file", kf, &v[0].nkey,
					 err)) == NULL)
			goto out;
	} else if (key_file != NULL && *key_file != '\0') {
		errbuf_set(err, "smtp_tls_key_file is set without "
			   "smtp_tls_cert_file");
		goto out;
	} else {
		param = NULL;
	}
	if (n > 0) {
		/* check now: a bad pair is a start-up error, not a deferral */
		if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
			errbuf_set(err, "cannot create a TLS context");
			goto out;
		}
		rc = pairs_apply(ctx, v, n, param, err);
		SSL_CTX_free(ctx);
		if (rc < 0)
			goto out;
	}
	pairs_free(client_cert.v, client_cert.n);
	free(client_cert.names);
	client_cert.v = v;
	client_cert.n = n;
	client_cert.names = cert_names(cert_file, key_file, chain_files);
	v = NULL;
	n = 0;
	rc = 0;
out:
	pairs_free(v, n);
	strlist_free(&files);
	return rc;
}

int
smtp_tls_level_word(const char *v, size_t n, enum smtp_tls_level *r)
{
	static const struct { const char *w; enum smtp_tls_level l; } w[] = {
		{ "none", SMTP_TLS_NONE }, { "may", SMTP_TLS_MAY },
		{ "encrypt", SMTP_TLS_ENCRYPT }, { "verify", SMTP_TLS_VERIFY },
		{ "secure", SMTP_TLS_SECURE },
		{ "fingerprint", SMTP_TLS_FINGERPRINT },
		{ "dane", SMTP_TLS_DANE }, { "dane-only", SMTP_TLS_DANE_ONLY },
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
	size_t n;

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
		errbuf_set(err, "smtp_tls_security_level: unknown level "
			   "\"%.100s\" (expected none, may, encrypt, verify, "
			   "secure, dane or dane-only)", v);
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
	if ((level == SMTP_TLS_VERIFY || level == SMTP_TLS_SECURE)
	    && f == NULL && p == NULL) {
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
	if (smtp_dane_ctx_enable(ctx) < 0) {
		errbuf_set(err, "cannot enable DANE in the SMTP client TLS "
			   "context");
		SSL_CTX_free(ctx);
		return -1;
	}
	if ((f || p) && SSL_CTX_load_verify_locations(ctx, f, p) != 1) {
		char e[256];
		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		ERR_clear_error();
		errbuf_set(err, "smtp_tls_CAfile/smtp_tls_CApath: cannot load "
			   "\"%.200s\": %s", f ? f : p, e);
		SSL_CTX_free(ctx);
		return -1;
	}
	if (client_cert.n > 0 &&
	    pairs_apply(ctx, client_cert.v, client_cert.n,
			"smtp client certificate", err) < 0) {
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
	size_t n;
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

/* ---- the other smtp_tls_* knobs ---- */

const char *
smtp_tls_level_value(const struct settings *s)
{
	if (s->smtp_tls_security_level != NULL &&
	    s->smtp_tls_security_level[0] != '\0')
		return s->smtp_tls_security_level;
	if (s->smtp_enforce_tls)
		return "encrypt";
	if (s->smtp_use_tls)
		return "may";
	return "";
}

static int
cipherlist(const struct settings *s, const char *pname, const char *grade,
	   const char *exclude, char *out, size_t outsz, struct errbuf *err)
{
	struct buf l;
	SSL_CTX *ctx;
	int rc = -1;

	buf_init(&l, 0);
	if (tls_cipher_list(s, pname, grade, exclude, &l, err) < 0)
		goto out;
	if (l.len >= outsz) {
		errbuf_set(err, "%s: cipher list too long", pname);
		goto out;
	}
	/* OpenSSL refuses a list that leaves no cipher: a start-up error */
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		errbuf_set(err, "cannot create a TLS context");
		goto out;
	}
	if (SSL_CTX_set_cipher_list(ctx, buf_cstr(&l)) != 1) {
		ERR_clear_error();
		errbuf_set(err, "%s / smtp_tls_exclude_ciphers: cipher list "
			   "\"%.200s\" leaves no cipher", pname, buf_cstr(&l));
		SSL_CTX_free(ctx);
		goto out;
	}
	SSL_CTX_free(ctx);
	memcpy(out, buf_cstr(&l), l.len + 1);
	rc = 0;
out:
	buf_free(&l);
	return rc;
}

/* A Postfix list (white space, commas, colons) as "a:b:c" in out. */
static int
match_words(const char *pname, const char *v, char *out, size_t outsz,
	    struct errbuf *err)
{
	size_t o = 0;

	out[0] = '\0';
	for (v = v ? v : ""; *v;) {
		size_t n;

		v += strspn(v, " \t\r\n,:");
		n = strcspn(v, " \t\r\n,:");
		if (n == 0)
			break;
		if (o + n + 2 > outsz) {
			errbuf_set(err, "%s: too long", pname);
			return -1;
		}
		if (o > 0)
			out[o++] = ':';
		memcpy(out + o, v, n);
		o += n;
		out[o] = '\0';
		v += n;
	}
	return 0;
}

int
smtp_tls_knobs_load(struct smtp_client_cfg *c, const struct settings *s,
		    struct errbuf *err)
{
	char *both = xasprintf("%s %s", s->smtp_tls_exclude_ciphers,
			       s->smtp_tls_mandatory_exclude_ciphers);
	int rc;

	rc = cipherlist(s, "smtp_tls_ciphers", s->smtp_tls_ciphers,
			s->smtp_tls_exclude_ciphers, c->tls_cipherlist,
			sizeof(c->tls_cipherlist), err) < 0 ||
	     cipherlist(s, "smtp_tls_mandatory_ciphers",
			s->smtp_tls_mandatory_ciphers, both,
			c->tls_mandatory_cipherlist,
			sizeof(c->tls_mandatory_cipherlist), err) < 0 ? -1 : 0;
	free(both);
	if (rc < 0)
		return -1;
	if (match_words("smtp_tls_verify_cert_match",
			s->smtp_tls_verify_cert_match, c->tls_verify_match,
			sizeof(c->tls_verify_match), err) < 0 ||
	    match_words("smtp_tls_secure_cert_match",
			s->smtp_tls_secure_cert_match, c->tls_secure_match,
			sizeof(c->tls_secure_match), err) < 0)
		return -1;
	c->tls_loglevel = s->smtp_tls_loglevel;
	c->tls_note_starttls = s->smtp_tls_note_starttls_offer;
	c->tls_wrappermode = s->smtp_tls_wrappermode;
	if (c->tls_wrappermode && c->tls_ctx == NULL) {
		errbuf_set(err, "smtp_tls_wrappermode = yes needs "
			   "smtp_tls_security_level = encrypt (or stronger)");
		return -1;
	}
	if (c->tls_ctx != NULL &&
	    (tls_ssl_options_apply(c->tls_ctx, s->tls_ssl_options, err) < 0 ||
	     tls_groups_apply(c->tls_ctx, s, NULL, err) < 0))
		return -1;
	if (c->tls_ctx != NULL) {
		/* smtp_tls_scert_verifydepth, counted as Postfix does
		 * (1: issued by a trusted CA directly) */
		SSL_CTX_set_verify_depth(c->tls_ctx,
					 (int)s->smtp_tls_scert_verifydepth - 1);
		if (s->tls_append_default_CA)
			(void)SSL_CTX_set_default_verify_paths(c->tls_ctx);
		ERR_clear_error();
	}
	return 0;
}
