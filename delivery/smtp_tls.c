/*
 * smtp_tls.c - settings of the SMTP client's TLS (security level, client
 * context with its trust anchors) and SASL (security options, mechanism
 * filter), parsed once at start.
 * Must not: connect, log, or reject a peer inside the handshake (the
 * client decides after it, by level).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "delivery/smtp_tls.h"

int
smtp_tls_level_parse(const char *v, enum smtp_tls_level *r, struct errbuf *err)
{
	static const char *const later[] = { "dane", "dane-only", "fingerprint",
					     "secure", NULL };
	size_t i;

	while (*v == ' ' || *v == '\t')
		v++;
	if (*v == '\0' || strcasecmp(v, "none") == 0)
		*r = SMTP_TLS_NONE;
	else if (strcasecmp(v, "may") == 0)
		*r = SMTP_TLS_MAY;
	else if (strcasecmp(v, "encrypt") == 0)
		*r = SMTP_TLS_ENCRYPT;
	else if (strcasecmp(v, "verify") == 0)
		*r = SMTP_TLS_VERIFY;
	else {
		for (i = 0; later[i]; i++)
			if (strcasecmp(v, later[i]) == 0) {
				errbuf_set(err, "smtp_tls_security_level = %s is "
					   "not available in this version (use "
					   "none, may, encrypt or verify)", later[i]);
				return -1;
			}
		errbuf_set(err, "smtp_tls_security_level: unknown level "
			   "\"%.100s\" (expected none, may, encrypt or verify)", v);
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
	if (level == SMTP_TLS_VERIFY && f == NULL && p == NULL) {
		errbuf_set(err, "smtp_tls_security_level = verify needs "
			   "smtp_tls_CAfile or smtp_tls_CApath");
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
