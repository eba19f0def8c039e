/*
 * tls.c - OpenSSL server contexts for the SMTP listeners: certificates and
 * keys (read once, as root, before the privilege drop), protocol and cipher
 * policy from Postfix's parameters, session resumption through stateless
 * tickets, per-SNI certificates (tls_server_sni_maps: every entry read at
 * start, as root, into a context of its own that the servername callback
 * switches to), and the description of a connection for logs and headers.
 * Beside the RSA certificate, a DSA (smtpd_tls_dcert_file) and an ECDSA
 * one (smtpd_tls_eccert_file) on the same context: OpenSSL picks by the
 * client's signature algorithms. Client certificates are asked for with
 * smtpd_tls_ask_ccert / _req_ccert and verified against smtpd_tls_CAfile /
 * _CApath; the handshake never fails on them (the verdict is read after it,
 * core/smtpd_ccert.c). tls_ssl_options names extra OpenSSL options for the
 * server and the SMTP client.
 * Must not: look anything up during a handshake (the map is read once),
 * do per-connection I/O (libevent's OpenSSL bufferevents do),
 * or ever enable SSLv2/SSLv3, compression or client renegotiation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "backends/table.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/tls.h"

/* One tls_server_sni_maps entry: "host.example" or ".example" (parents). */
struct tls_sni {
	char    *name;		/* lower case */
	SSL_CTX *ctx;
};

struct tls_server {
	SSL_CTX        *ctx;		/* the default certificate */
	struct tls_sni *sni;
	size_t          nsni;
};

/* Secure grades (Postfix's names); tls_*_cipherlist override them. */
#define CIPHERS_HIGH   "HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES:!DES:!PSK:!SRP"
#define CIPHERS_MEDIUM "HIGH:MEDIUM:!aNULL:!eNULL:!MD5:!RC4:!3DES:!DES:" \
		       "!SEED:!IDEA:!PSK:!SRP"
#define CIPHERS_NULL   "eNULL:!aNULL"
#define SID_CTX        "facteur-smtpd"

const char *
tls_error_string(char *b, size_t n)
{
	unsigned long e = ERR_peek_last_error();

	if (n > 0)
		b[0] = '\0';
	if (e != 0)
		ERR_error_string_n(e, b, n);
	ERR_clear_error();
	return b;
}

int
tls_server_level(const struct settings *s, enum tls_level *r,
		 struct errbuf *err)
{
	const char *v = s->smtpd_tls_security_level;

	if (v != NULL && v[0] != '\0') {
		if (strcasecmp(v, "none") == 0)
			*r = TLS_LEVEL_NONE;
		else if (strcasecmp(v, "may") == 0)
			*r = TLS_LEVEL_MAY;
		else if (strcasecmp(v, "encrypt") == 0)
			*r = TLS_LEVEL_ENCRYPT;
		else {
			errbuf_set(err, "bad value for smtpd_tls_security_level: "
				   "\"%.100s\" (expected none, may or encrypt)", v);
			return -1;
		}
	} else if (s->smtpd_enforce_tls) {
		*r = TLS_LEVEL_ENCRYPT;
	} else if (s->smtpd_use_tls) {
		*r = TLS_LEVEL_MAY;
	} else {
		*r = TLS_LEVEL_NONE;
	}
	/* Implicit TLS: the whole session is encrypted whatever the level. */
	if (s->smtpd_tls_wrappermode)
		*r = TLS_LEVEL_ENCRYPT;
	return 0;
}

/* ---- protocols ---- */

static const struct {
	const char   *name;
	int           version;
	unsigned long no_op;
} protos[] = {
	{ "SSLv2",   0,              0 },
	{ "SSLv3",   SSL3_VERSION,   SSL_OP_NO_SSLv3 },
	{ "TLSv1",   TLS1_VERSION,   SSL_OP_NO_TLSv1 },
	{ "TLSv1.1", TLS1_1_VERSION, SSL_OP_NO_TLSv1_1 },
	{ "TLSv1.2", TLS1_2_VERSION, SSL_OP_NO_TLSv1_2 },
	{ "TLSv1.3", TLS1_3_VERSION, SSL_OP_NO_TLSv1_3 },
};
#define NPROTOS  (sizeof(protos) / sizeof(protos[0]))
#define FIRST_OK 2		/* SSLv2 and SSLv3 never */

static int
proto_index(const char *name)
{
	for (size_t i = 0; i < NPROTOS; i++)
		if (strcasecmp(name, protos[i].name) == 0)
			return (int)i;
	return -1;
}

int
tls_protocols_parse(const char *spec, int *min_r, int *max_r,
		    unsigned long *no_ops_r, struct errbuf *err)
{
	bool incl[NPROTOS] = { false }, excl[NPROTOS] = { false };
	bool any_incl = false;
	int lo = 0, hi = (int)NPROTOS - 1, first = -1, last = -1;
	char *copy = xstrdup(spec ? spec : ""), *tok, *save = NULL;
	const char *pending = NULL;	/* ">=" or "<=" waiting for a name */
	unsigned long ops = 0;

	for (tok = strtok_r(copy, " \t\r\n,:", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t\r\n,:", &save)) {
		const char *op = pending, *name = tok;
		int i;

		pending = NULL;
		if (op == NULL && (strncmp(tok, ">=", 2) == 0 ||
				   strncmp(tok, "<=", 2) == 0)) {
			op = tok[0] == '>' ? ">=" : "<=";
			name = tok + 2;
			if (*name == '\0') {
				pending = op;
				continue;
			}
		} else if (op == NULL && tok[0] == '!') {
			op = "!";
			name = tok + 1;
		}
		if ((i = proto_index(name)) < 0) {
			errbuf_set(err, "unknown TLS protocol \"%.60s\" (expected "
				   "SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2 or "
				   "TLSv1.3, with ! or >= or <=)", tok);
			free(copy);
			return -1;
		}
		if (op == NULL) {
			incl[i] = any_incl = true;
		} else if (op[0] == '!') {
			excl[i] = true;
		} else if (op[0] == '>') {
			if (i > lo)
				lo = i;
		} else if (i < hi) {
			hi = i;
		}
	}
	free(copy);
	if (pending != NULL) {
		errbuf_set(err, "\"%s\" without a protocol name", pending);
		return -1;
	}
	for (int i = FIRST_OK; i < (int)NPROTOS; i++) {
		bool on = (!any_incl || incl[i]) && !excl[i] && i >= lo && i <= hi;

		if (on) {
			if (first < 0)
				first = i;
			last = i;
		}
	}
	if (first < 0) {
		errbuf_set(err, "\"%.100s\" leaves no TLS protocol enabled "
			   "(SSLv2 and SSLv3 are never used)", spec ? spec : "");
		return -1;
	}
	for (int i = first; i <= last; i++)
		if ((any_incl && !incl[i]) || excl[i])
			ops |= protos[i].no_op;
	*min_r = protos[first].version;
	*max_r = protos[last].version;
	*no_ops_r = ops;
	return 0;
}

/* ---- tls_ssl_options ---- */

static const struct {
	const char *name;
	uint64_t    op;
} ssl_opts[] = {
	{ "ENABLE_MIDDLEBOX_COMPAT", SSL_OP_ENABLE_MIDDLEBOX_COMPAT },
	{ "LEGACY_SERVER_CONNECT", SSL_OP_LEGACY_SERVER_CONNECT },
	{ "NO_TICKET", SSL_OP_NO_TICKET },
	{ "NO_COMPRESSION", SSL_OP_NO_COMPRESSION },
	{ "NO_RENEGOTIATION", SSL_OP_NO_RENEGOTIATION },
	{ "NO_SESSION_RESUMPTION_ON_RENEGOTIATION",
	  SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION },
	{ "PRIORITIZE_CHACHA", SSL_OP_PRIORITIZE_CHACHA },
	{ "ENABLE_KTLS", SSL_OP_ENABLE_KTLS },
	{ "IGNORE_UNEXPECTED_EOF", SSL_OP_IGNORE_UNEXPECTED_EOF },
};

int
tls_ssl_options_parse(const char *spec, uint64_t *ops_r, struct errbuf *err)
{
	struct strlist l;
	uint64_t ops = 0;
	int rc = 0;

	strlist_init(&l);
	strlist_split(&l, spec ? spec : "");
	for (size_t i = 0; i < l.n && rc == 0; i++) {
		const char *t = l.v[i];
		size_t k;

		if (t[0] == '0' && (t[1] == 'x' || t[1] == 'X') && t[2]) {
			char *end;
			unsigned long long v = strtoull(t + 2, &end, 16);

			if (*end == '\0') {
				ops |= (uint64_t)v;
				continue;
			}
		}
		for (k = 0; k < sizeof(ssl_opts) / sizeof(ssl_opts[0]); k++)
			if (strcasecmp(t, ssl_opts[k].name) == 0)
				break;
		if (k == sizeof(ssl_opts) / sizeof(ssl_opts[0])) {
			errbuf_set(err, "bad value for tls_ssl_options: \"%.60s\" "
				   "(expected ENABLE_MIDDLEBOX_COMPAT, "
				   "LEGACY_SERVER_CONNECT, NO_TICKET, "
				   "NO_COMPRESSION, NO_RENEGOTIATION, "
				   "NO_SESSION_RESUMPTION_ON_RENEGOTIATION, "
				   "PRIORITIZE_CHACHA or a hex value 0x...)", t);
			rc = -1;
			break;
		}
		ops |= ssl_opts[k].op;
	}
	strlist_free(&l);
	if (rc == 0)
		*ops_r = ops;
	return rc;
}

int
tls_ssl_options_apply(SSL_CTX *ctx, const char *spec, struct errbuf *err)
{
	uint64_t ops;

	if (tls_ssl_options_parse(spec, &ops, err) < 0)
		return -1;
	/* As Postfix: middlebox compatibility only when asked for. */
	if (!(ops & SSL_OP_ENABLE_MIDDLEBOX_COMPAT))
		SSL_CTX_clear_options(ctx, SSL_OP_ENABLE_MIDDLEBOX_COMPAT);
	SSL_CTX_set_options(ctx, ops);
	return 0;
}

/* ---- key exchange groups ---- */

int
tls_groups_apply(SSL_CTX *ctx, const struct settings *s, const char *grade,
		 struct errbuf *err)
{
	struct strlist names;
	struct buf ok;
	SSL_CTX *probe;
	int rc = 0;

	if (grade == NULL || *grade == '\0' || strcasecmp(grade, "auto") == 0)
		;
	else if (strcasecmp(grade, "strong") == 0)
		grade = "prime256v1";
	else if (strcasecmp(grade, "ultra") == 0)
		grade = "secp384r1";
	else if (strcasecmp(grade, "none") == 0)
		return 0;	/* OpenSSL's own groups (TLS 1.3 needs some) */
	else {
		errbuf_set(err, "bad value for smtpd_tls_eecdh_grade: \"%.60s\" "
			   "(expected auto, strong, ultra or none)", grade);
		return -1;
	}
	strlist_init(&names);
	strlist_split(&names, grade && *grade && strcasecmp(grade, "auto")
		      ? grade : s->tls_eecdh_auto_curves);
	buf_init(&ok, 0);
	if ((probe = SSL_CTX_new(TLS_method())) == NULL) {
		errbuf_set(err, "cannot create a TLS context");
		rc = -1;
		goto out;
	}
	/* Postfix skips the names this OpenSSL does not know */
	for (size_t i = 0; i < names.n; i++) {
		if (SSL_CTX_set1_groups_list(probe, names.v[i]) == 1)
			buf_printf(&ok, "%s%s", ok.len ? ":" : "", names.v[i]);
		ERR_clear_error();
	}
	SSL_CTX_free(probe);
	if (names.n == 0) {
		;	/* empty: OpenSSL's defaults */
	} else if (ok.len == 0) {
		errbuf_set(err, "tls_eecdh_auto_curves: none of \"%.100s\" is "
			   "known to OpenSSL", s->tls_eecdh_auto_curves);
		rc = -1;
	} else if (SSL_CTX_set1_groups_list(ctx, buf_cstr(&ok)) != 1) {
		char e[256];

		errbuf_set(err, "key exchange groups \"%.100s\" refused: %s",
			   buf_cstr(&ok), tls_error_string(e, sizeof(e)));
		rc = -1;
	}
out:
	buf_free(&ok);
	strlist_free(&names);
	return rc;
}

/* ---- client certificates ---- */

bool
tls_server_ccert_required(const struct settings *s, enum tls_level level)
{
	return s->smtpd_tls_req_ccert && level == TLS_LEVEL_ENCRYPT;
}

bool
tls_server_ccert_asked(const struct settings *s, enum tls_level level)
{
	return s->smtpd_tls_ask_ccert || tls_server_ccert_required(s, level);
}

/* The handshake goes on whatever the verdict: smtpd_ccert reads it. */
static int
ccert_verify_cb(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	(void)x;
	return 1;
}

static int
setup_ccert(SSL_CTX *ctx, const struct settings *s, enum tls_level level,
	    struct errbuf *err)
{
	const char *caf = s->smtpd_tls_CAfile, *cap = s->smtpd_tls_CApath;
	char e[256];

	if (!tls_server_ccert_asked(s, level))
		return 0;
	if ((caf[0] || cap[0]) &&
	    SSL_CTX_load_verify_locations(ctx, caf[0] ? caf : NULL,
					  cap[0] ? cap : NULL) != 1) {
		errbuf_set(err, "cannot load CA certificates from "
			   "smtpd_tls_CAfile %s / smtpd_tls_CApath %s: %s",
			   caf[0] ? caf : "(none)", cap[0] ? cap : "(none)",
			   tls_error_string(e, sizeof(e)));
		return -1;
	}
	if (caf[0]) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(caf);

		ERR_clear_error();
		if (names != NULL)
			SSL_CTX_set_client_CA_list(ctx, names);
	}
	if (s->tls_append_default_CA)
		(void)SSL_CTX_set_default_verify_paths(ctx);
	ERR_clear_error();
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE,
			   ccert_verify_cb);
	/* Postfix's depth is the level of the trust anchor: 1 when a
	 * trusted CA issued the client certificate directly. OpenSSL's
	 * counts the intermediate CAs only: one less. */
	SSL_CTX_set_verify_depth(ctx,
				 (int)s->smtpd_tls_ccert_verifydepth - 1);
	return 0;
}

/* smtpd_tls_dh1024_param_file: PEM DH parameters (OpenSSL 3 decoder). */
static int
load_dh(SSL_CTX *ctx, const char *path, struct errbuf *err)
{
	BIO *bio = BIO_new_file(path, "r");
	EVP_PKEY *dh = NULL;
	char e[256];

	if (bio == NULL) {
		errbuf_set(err, "smtpd_tls_dh1024_param_file: cannot open %s: %s",
			   path, tls_error_string(e, sizeof(e)));
		return -1;
	}
	dh = PEM_read_bio_Parameters(bio, NULL);
	BIO_free(bio);
	if (dh == NULL || EVP_PKEY_is_a(dh, "DH") != 1) {
		errbuf_set(err, "smtpd_tls_dh1024_param_file: %s holds no PEM DH "
			   "parameters: %s", path, tls_error_string(e, sizeof(e)));
		EVP_PKEY_free(dh);
		return -1;
	}
	SSL_CTX_set_dh_auto(ctx, 0);
	if (SSL_CTX_set0_tmp_dh_pkey(ctx, dh) != 1) {
		errbuf_set(err, "smtpd_tls_dh1024_param_file: %s: parameters "
			   "refused: %s", path, tls_error_string(e, sizeof(e)));
		EVP_PKEY_free(dh);
		return -1;
	}
	return 0;
}

/* ---- context ---- */

int
tls_cipher_list(const struct settings *s, const char *pname,
		const char *grade, const char *exclude, struct buf *list,
		struct errbuf *err)
{
	struct strlist ex;

	buf_reset(list);
	if (strcasecmp(grade, "high") == 0)
		buf_puts(list, s->tls_high_cipherlist[0] ? s->tls_high_cipherlist
							 : CIPHERS_HIGH);
	else if (strcasecmp(grade, "medium") == 0)
		buf_puts(list, s->tls_medium_cipherlist[0] ?
			       s->tls_medium_cipherlist : CIPHERS_MEDIUM);
	else if (strcasecmp(grade, "export") == 0 && s->tls_export_cipherlist[0])
		buf_puts(list, s->tls_export_cipherlist);
	else if ((strcasecmp(grade, "low") == 0 ||
		  strcasecmp(grade, "export") == 0) && s->tls_low_cipherlist[0])
		buf_puts(list, s->tls_low_cipherlist);
	else if (strcasecmp(grade, "low") == 0 ||
		 strcasecmp(grade, "export") == 0)
		/* OpenSSL 3 has no LOW/EXPORT suites left: medium and up */
		buf_puts(list, s->tls_medium_cipherlist[0] ?
			       s->tls_medium_cipherlist : CIPHERS_MEDIUM);
	else if (strcasecmp(grade, "null") == 0)
		buf_puts(list, s->tls_null_cipherlist[0] ?
			       s->tls_null_cipherlist : CIPHERS_NULL);
	else {
		errbuf_set(err, "bad value for %s: \"%.60s\" (expected high, "
			   "medium, low, export or null)", pname, grade);
		return -1;
	}
	strlist_init(&ex);
	strlist_split(&ex, exclude ? exclude : "");
	for (size_t i = 0; i < ex.n; i++)
		buf_printf(list, ":!%s", ex.v[i]);
	strlist_free(&ex);
	return 0;
}

static int
set_ciphers(SSL_CTX *ctx, const struct settings *s, bool mandatory,
	    struct errbuf *err)
{
	const char *grade = mandatory ? s->smtpd_tls_mandatory_ciphers
				      : s->smtpd_tls_ciphers;
	/* smtpd_tls_exclude_ciphers at every level, the mandatory ones
	 * besides at encrypt (Postfix) */
	char *both = xasprintf("%s %s", s->smtpd_tls_exclude_ciphers,
			       mandatory ? s->smtpd_tls_mandatory_exclude_ciphers
			       : "");
	const char *exclude = both;
	const char *pname = mandatory ? "smtpd_tls_mandatory_ciphers"
				      : "smtpd_tls_ciphers";
	struct buf list;
	char e[256];
	int rc = 0;

	buf_init(&list, 0);
	if (tls_cipher_list(s, pname, grade, exclude, &list, err) < 0) {
		buf_free(&list);
		free(both);
		return -1;
	}
	free(both);
	if (SSL_CTX_set_cipher_list(ctx, buf_cstr(&list)) != 1) {
		errbuf_set(err, "%s: cipher list \"%.200s\" rejected: %s", pname,
			   buf_cstr(&list), tls_error_string(e, sizeof(e)));
		rc = -1;
	}
	buf_free(&list);
	return rc;
}

/* One file of smtpd_tls_chain_files: a key, certificates, or both. */
static int
load_chain_file(SSL_CTX *ctx, const char *param, const char *path,
		EVP_PKEY **key_io, struct errbuf *err)
{
	BIO *bio;
	EVP_PKEY *key;
	X509 *leaf = NULL, *x;
	STACK_OF(X509) *chain = NULL;
	char e[256];
	int rc = -1;

	if ((bio = BIO_new_file(path, "r")) == NULL) {
		errbuf_set(err, "%s: cannot open %s: %s", param, path,
			   tls_error_string(e, sizeof(e)));
		return -1;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	ERR_clear_error();
	if (key != NULL) {
		EVP_PKEY_free(*key_io);
		*key_io = key;
	}
	(void)BIO_reset(bio);
	chain = sk_X509_new_null();
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (leaf == NULL)
			leaf = x;
		else
			sk_X509_push(chain, x);
	}
	ERR_clear_error();
	BIO_free(bio);
	if (leaf == NULL) {
		if (key == NULL)
			errbuf_set(err, "%s: %s holds no PEM private key or "
				   "certificate", param, path);
		else
			rc = 0;		/* a key for the next file's chain */
		goto out;
	}
	if (*key_io == NULL) {
		errbuf_set(err, "%s: %s: certificate without a private key "
			   "before it", param, path);
		goto out;
	}
	if (SSL_CTX_use_cert_and_key(ctx, leaf, *key_io, chain, 1) != 1) {
		errbuf_set(err, "%s: %s: key and certificate do not match or "
			   "are unusable: %s", param, path,
			   tls_error_string(e, sizeof(e)));
		goto out;
	}
	EVP_PKEY_free(*key_io);
	*key_io = NULL;
	rc = 0;
out:
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

/* A list of files, each a key, certificates, or both, keys first. */
static int
load_chain_list(SSL_CTX *ctx, const char *param, const char *list,
		struct errbuf *err)
{
	struct strlist files;
	EVP_PKEY *key = NULL;
	int rc = 0;

	strlist_init(&files);
	strlist_split(&files, list);
	if (files.n == 0) {
		errbuf_set(err, "%s: no key or certificate file", param);
		rc = -1;
	}
	for (size_t i = 0; i < files.n && rc == 0; i++)
		rc = load_chain_file(ctx, param, files.v[i], &key, err);
	if (rc == 0 && key != NULL) {
		errbuf_set(err, "%s: the last private key has no certificate "
			   "after it", param);
		rc = -1;
	}
	EVP_PKEY_free(key);
	strlist_free(&files);
	return rc;
}

/* One more certificate + key (DSA, ECDSA) beside the others. */
static int
load_extra(SSL_CTX *ctx, const char *cparam, const char *cert,
	   const char *kparam, const char *key, struct errbuf *err)
{
	char e[256];

	if (cert[0] == '\0')
		return 0;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		errbuf_set(err, "%s: cannot load certificate from %s: %s",
			   cparam, cert, tls_error_string(e, sizeof(e)));
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key[0] ? key : cert,
					SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		errbuf_set(err, "%s: cannot load the private key for %s from "
			   "%s, or it does not match: %s", kparam, cert,
			   key[0] ? key : cert, tls_error_string(e, sizeof(e)));
		return -1;
	}
	return 0;
}

static int
load_keys(SSL_CTX *ctx, const struct settings *s, struct errbuf *err)
{
	char e[256];

	if (s->smtpd_tls_chain_files[0] != '\0')
		return load_chain_list(ctx, "smtpd_tls_chain_files",
				       s->smtpd_tls_chain_files, err);
	if (s->smtpd_tls_cert_file[0] == '\0')
		goto extra;
	if (SSL_CTX_use_certificate_chain_file(ctx, s->smtpd_tls_cert_file) != 1) {
		errbuf_set(err, "smtpd_tls_cert_file: cannot load certificate "
			   "from %s: %s", s->smtpd_tls_cert_file,
			   tls_error_string(e, sizeof(e)));
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, s->smtpd_tls_key_file[0] ?
					s->smtpd_tls_key_file :
					s->smtpd_tls_cert_file,
					SSL_FILETYPE_PEM) != 1) {
		errbuf_set(err, "smtpd_tls_key_file: cannot load private key "
			   "from %s: %s", s->smtpd_tls_key_file,
			   tls_error_string(e, sizeof(e)));
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		errbuf_set(err, "smtpd_tls_key_file %s does not match the "
			   "certificate in %s: %s", s->smtpd_tls_key_file,
			   s->smtpd_tls_cert_file, tls_error_string(e, sizeof(e)));
		return -1;
	}
extra:
	if (load_extra(ctx, "smtpd_tls_dcert_file", s->smtpd_tls_dcert_file,
		       "smtpd_tls_dkey_file", s->smtpd_tls_dkey_file, err) < 0 ||
	    load_extra(ctx, "smtpd_tls_eccert_file", s->smtpd_tls_eccert_file,
		       "smtpd_tls_eckey_file", s->smtpd_tls_eckey_file, err) < 0)
		return -1;
	return 0;
}

/* A context with the protocol, cipher and resumption policy, no keys. */
static SSL_CTX *
ctx_new(const struct settings *s, enum tls_level level, struct errbuf *err)
{
	bool mandatory = level == TLS_LEVEL_ENCRYPT;
	const char *pspec = mandatory ? s->smtpd_tls_mandatory_protocols
				      : s->smtpd_tls_protocols;
	struct errbuf perr;
	unsigned long no_ops;
	int min, max;
	SSL_CTX *ctx;
	char e[256];

	if (tls_protocols_parse(pspec, &min, &max, &no_ops, &perr) < 0) {
		errbuf_set(err, "bad value for %s: %s", mandatory ?
			   "smtpd_tls_mandatory_protocols" :
			   "smtpd_tls_protocols", errbuf_str(&perr));
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		errbuf_set(err, "cannot create a TLS context: %s",
			   tls_error_string(e, sizeof(e)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, min);
	SSL_CTX_set_max_proto_version(ctx, max);
	SSL_CTX_set_options(ctx, no_ops | SSL_OP_NO_COMPRESSION |
			    SSL_OP_NO_RENEGOTIATION |
			    (s->tls_preempt_cipherlist ?
			     SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
	SSL_CTX_set_dh_auto(ctx, 1);
	/* Resumption by stateless tickets: nothing to store per session. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)SID_CTX,
				       sizeof(SID_CTX) - 1);
	if (s->smtpd_tls_session_cache_timeout > 0)
		SSL_CTX_set_timeout(ctx, (long)s->smtpd_tls_session_cache_timeout);
	else
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if (set_ciphers(ctx, s, mandatory, err) < 0 ||
	    tls_ssl_options_apply(ctx, s->tls_ssl_options, err) < 0 ||
	    tls_groups_apply(ctx, s, s->smtpd_tls_eecdh_grade, err) < 0 ||
	    setup_ccert(ctx, s, level, err) < 0 ||
	    (s->smtpd_tls_dh1024_param_file[0] != '\0' &&
	     load_dh(ctx, s->smtpd_tls_dh1024_param_file, err) < 0)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* The context for an SNI name: the exact name, else ".parent.domain". */
static SSL_CTX *
sni_find(const struct tls_server *t, const char *name)
{
	char lc[256];
	size_t n = strlen(name);

	if (n == 0 || n >= sizeof(lc))
		return NULL;
	for (size_t i = 0; i <= n; i++)
		lc[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ?
			       name[i] - 'A' + 'a' : name[i]);
	for (const char *p = lc; p != NULL; p = strchr(p + 1, '.')) {
		for (size_t i = 0; i < t->nsni; i++)
			if (strcmp(t->sni[i].name, p) == 0)
				return t->sni[i].ctx;
	}
	return NULL;
}

static int
sni_callback(SSL *ssl, int *alert, void *arg)
{
	const struct tls_server *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	SSL_CTX *ctx;

	(void)alert;
	if (name != NULL && (ctx = sni_find(t, name)) != NULL)
		SSL_set_SSL_CTX(ssl, ctx);
	return SSL_TLSEXT_ERR_OK;	/* unknown names get the default */
}

struct sni_load {
	struct tls_server     *t;
	const struct settings *s;
	enum tls_level         level;
	struct errbuf         *err;
};

static int
sni_entry(const char *key, const char *value, void *arg)
{
	struct sni_load *l = arg;
	struct tls_server *t = l->t;
	struct errbuf e;
	SSL_CTX *ctx;
	char *name;

	if (key[0] == '\0' || strlen(key) > 253) {
		errbuf_set(l->err, "tls_server_sni_maps: bad host name \"%.60s\"",
			   key);
		return 1;
	}
	if ((ctx = ctx_new(l->s, l->level, l->err)) == NULL)
		return 1;
	errbuf_clear(&e);
	if (load_chain_list(ctx, "tls_server_sni_maps", value, &e) < 0) {
		errbuf_set(l->err, "%s (entry \"%s\")", errbuf_str(&e), key);
		SSL_CTX_free(ctx);
		return 1;
	}
	name = xstrdup(key);
	for (char *c = name; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	t->sni = xrealloc(t->sni, (t->nsni + 1) * sizeof(*t->sni));
	t->sni[t->nsni].name = name;
	t->sni[t->nsni].ctx = ctx;
	t->nsni++;
	return 0;
}

/* Every entry of tls_server_sni_maps, read now (as root). */
static int
load_sni(struct tls_server *t, const struct settings *s, enum tls_level level,
	 struct errbuf *err)
{
	struct strlist maps;
	struct errbuf cberr;
	struct sni_load l = { t, s, level, &cberr };
	int rc = 0;

	strlist_init(&maps);
	strlist_split(&maps, s->tls_server_sni_maps);
	for (size_t i = 0; i < maps.n && rc == 0; i++) {
		struct errbuf e;
		struct table *tb = table_open(maps.v[i], 0, &e);

		if (tb == NULL) {
			errbuf_set(err, "tls_server_sni_maps: %s", errbuf_str(&e));
			rc = -1;
			break;
		}
		errbuf_clear(&cberr);
		if (table_dump(tb, sni_entry, &l, &e) < 0) {
			errbuf_set(err, "tls_server_sni_maps: %s (the map is read "
				   "once at start: use a file map)",
				   errbuf_str(&e));
			rc = -1;
		} else if (errbuf_str(&cberr)[0] != '\0') {
			errbuf_set(err, "%s", errbuf_str(&cberr));
			rc = -1;
		}
		table_close(&tb);
	}
	strlist_free(&maps);
	if (rc == 0 && t->nsni > 0) {
		SSL_CTX_set_tlsext_servername_callback(t->ctx, sni_callback);
		SSL_CTX_set_tlsext_servername_arg(t->ctx, t);
	}
	return rc;
}

int
tls_server_new(const struct settings *s, enum tls_level level,
	       struct tls_server **r, struct errbuf *err)
{
	SSL_CTX *ctx;

	*r = NULL;
	if (s->smtpd_tls_cert_file[0] == '\0' &&
	    s->smtpd_tls_chain_files[0] == '\0' &&
	    s->smtpd_tls_dcert_file[0] == '\0' &&
	    s->smtpd_tls_eccert_file[0] == '\0') {
		if (s->tls_server_sni_maps != NULL &&
		    s->tls_server_sni_maps[0] != '\0') {
			errbuf_set(err, "tls_server_sni_maps needs a default "
				   "certificate (smtpd_tls_cert_file or "
				   "smtpd_tls_chain_files) for clients without "
				   "SNI");
			return -1;
		}
		return 0;
	}
	if ((ctx = ctx_new(s, level, err)) == NULL)
		return -1;
	if (load_keys(ctx, s, err) < 0) {
		SSL_CTX_free(ctx);
		return -1;
	}
	*r = xcalloc(1, sizeof(**r));
	(*r)->ctx = ctx;
	if (s->tls_server_sni_maps != NULL && s->tls_server_sni_maps[0] != '\0' &&
	    load_sni(*r, s, level, err) < 0) {
		tls_server_free(r);
		return -1;
	}
	return 0;
}

void
tls_server_free(struct tls_server **tp)
{
	if (*tp == NULL)
		return;
	for (size_t i = 0; i < (*tp)->nsni; i++) {
		SSL_CTX_free((*tp)->sni[i].ctx);
		free((*tp)->sni[i].name);
	}
	free((*tp)->sni);
	SSL_CTX_free((*tp)->ctx);
	free(*tp);
	*tp = NULL;
}

SSL *
tls_server_ssl(struct tls_server *t)
{
	return SSL_new(t->ctx);
}

void
tls_describe(SSL *ssl, struct buf *out)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	int alg = 0, bits = c ? SSL_CIPHER_get_bits(c, &alg) : 0;

	buf_printf(out, "%s with cipher %s (%d/%d bits)", SSL_get_version(ssl),
		   c ? SSL_CIPHER_get_name(c) : "unknown", bits, alg);
}
