/*
 * tls.h - the SMTP server's TLS side: one OpenSSL context per listener,
 * built from the smtpd_tls_* parameters (keys read as root before the
 * privilege drop), and the Postfix-style description of an established
 * connection for logs and Received: headers.
 * Nothing here blocks except tls_server_new (it reads key files).
 */
#ifndef FACTEUR_TLS_H
#define FACTEUR_TLS_H
#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "core/lib/buf.h"
#include "core/lib/errbuf.h"
#include "core/params.h"

enum tls_level { TLS_LEVEL_NONE = 0, TLS_LEVEL_MAY, TLS_LEVEL_ENCRYPT };

/*
 * The effective smtpd_tls_security_level: the parameter when set (none,
 * may, encrypt), else the legacy smtpd_enforce_tls / smtpd_use_tls, and
 * encrypt under smtpd_tls_wrappermode. 0, or -1 + err on a bad value.
 */
int tls_server_level(const struct settings *s, enum tls_level *r,
		     struct errbuf *err);

/*
 * Postfix's protocol list, in either syntax: exclusions ("!SSLv2, !SSLv3"),
 * inclusions ("TLSv1.2 TLSv1.3") or bounds (">=TLSv1.2", "<=TLSv1.3").
 * Gives OpenSSL's min and max version and the SSL_OP_NO_* options for holes
 * in between. SSLv2/SSLv3 are never enabled. 0, or -1 + err naming the
 * token that is not a protocol or a list that leaves none.
 */
int tls_protocols_parse(const char *spec, int *min_r, int *max_r,
			unsigned long *no_ops_r, struct errbuf *err);

struct tls_server;

/*
 * Builds the server context for a listener from s: certificate and key
 * (smtpd_tls_cert_file/_key_file, smtpd_tls_chain_files), protocols and
 * ciphers for the security level (mandatory_* at encrypt), session tickets
 * for resumption. *r is NULL (and 0 returned) when no certificate is
 * configured. -1 + err for unreadable or mismatched keys and bad values.
 */
int  tls_server_new(const struct settings *s, enum tls_level level,
		    struct tls_server **r, struct errbuf *err);
void tls_server_free(struct tls_server **tp);
/* A new server SSL object for one connection; NULL when out of memory. */
SSL *tls_server_ssl(struct tls_server *t);

/*
 * The OpenSSL cipher list of a Postfix cipher grade (high, medium, low,
 * export, null; tls_high_cipherlist / tls_medium_cipherlist override the
 * first two; OpenSSL 3 has nothing below medium, so low and export give
 * medium) followed by ":!X" for each word of exclude. pname names the
 * parameter in err. 0, or -1 + err for an unknown grade.
 */
int tls_cipher_list(const struct settings *s, const char *pname,
		    const char *grade, const char *exclude, struct buf *list,
		    struct errbuf *err);

/*
 * tls_ssl_options: names (NO_TICKET, NO_COMPRESSION, NO_RENEGOTIATION,
 * ENABLE_MIDDLEBOX_COMPAT, LEGACY_SERVER_CONNECT, PRIORITIZE_CHACHA,
 * NO_SESSION_RESUMPTION_ON_RENEGOTIATION ...) or hex values, OR-ed. _apply
 * sets them on ctx and clears middlebox compatibility unless named, as
 * Postfix does. 0, or -1 + err naming the bad word.
 */
int tls_ssl_options_parse(const char *spec, uint64_t *ops_r, struct errbuf *err);
int tls_ssl_options_apply(SSL_CTX *ctx, const char *spec, struct errbuf *err);

/*
 * Key exchange groups: smtpd_tls_eecdh_grade (grade; NULL or "auto" for
 * the SMTP client) auto = tls_eecdh_auto_curves in order, without the
 * names OpenSSL lacks; strong = prime256v1, ultra = secp384r1, none =
 * OpenSSL's defaults. 0, or -1 + err.
 */
int tls_groups_apply(SSL_CTX *ctx, const struct settings *s,
		     const char *grade, struct errbuf *err);

/* Client certificates: asked for (smtpd_tls_ask_ccert, or required), and
 * required (smtpd_tls_req_ccert at the encrypt level only). */
bool tls_server_ccert_asked(const struct settings *s, enum tls_level level);
bool tls_server_ccert_required(const struct settings *s, enum tls_level level);

/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" */
void tls_describe(SSL *ssl, struct buf *out);
/* The first queued OpenSSL error as text ("" when none); clears the queue. */
const char *tls_error_string(char *b, size_t n);

#endif
