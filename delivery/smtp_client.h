/*
 * smtp_client.h - deliver one message to one next hop over ESMTP or LMTP
 * (RFC 2033), event driven on the libevent loop: MX lookup (or none for
 * [host] and LMTP), A/AAAA, or a unix-domain socket for LMTP, connect in
 * preference order, EHLO (HELO fallback) or LHLO, STARTTLS and AUTH
 * PLAIN/LOGIN (SMTP), PIPELINING, SIZE, 8BITMIME (8-bit MIME parts
 * converted to quoted-printable for a server without it), SMTPUTF8 check,
 * connection reuse (delivery/smtp_cache), smtp_bind_address, DANE (RFC
 * 7672: DNSSEC-validated MX/address and TLSA lookups, delivery/smtp_dane),
 * MAIL/RCPT/DATA with per-recipient outcomes (for LMTP one
 * reply per accepted recipient after the data), dot-stuffing and CRLF line
 * ends, QUIT. Each stage has its own timeout.
 * Must not: block, touch the queue (the caller records outcomes), or log
 * delivery status lines (the caller does; connection failures are logged
 * here as Postfix's smtp(8) does).
 */
#ifndef FACTEUR_SMTP_CLIENT_H
#define FACTEUR_SMTP_CLIENT_H
#include <stdbool.h>
#include <stddef.h>

#include "delivery/deliver.h"
#include "delivery/smtp_dane.h"
#include "delivery/smtp_tls.h"

struct event_base;
struct dns;

struct smtp_req;

struct smtp_client_cfg {
	const char *helo_name;		/* smtp_helo_name */
	const char *syslog_name;	/* for the connection log lines */
	long long   t_connect, t_helo, t_mail, t_rcpt, t_data_init,
		    t_data_xfer, t_data_done, t_quit;	/* seconds */
	/* SMTP only (not LMTP): STARTTLS and AUTH */
	enum smtp_tls_level tls_level;	/* smtp_tls_security_level */
	SSL_CTX    *tls_ctx;		/* NULL when tls_level is none */
	unsigned    sasl_opts;		/* smtp_sasl_security_options */
	unsigned    sasl_tls_opts;	/* smtp_sasl_tls_security_options */
	const char *sasl_filter;	/* smtp_sasl_mechanism_filter */
	/* source addresses (smtp_bind_address, smtp_bind_address6): NULL or
	 * "" = the kernel's choice; enforce: defer when the bind fails */
	const char *bind4, *bind6;
	bool        bind_enforce;
	bool        no_ipv4, no_ipv6;	/* inet_protocols leaves one out */
	/* connection cache: a finished transaction's connection is parked
	 * under req->cache_key when cache_wanted says so and the reuse
	 * limits allow; the next delivery to that key sends RSET on it */
	bool      (*cache_wanted)(void *arg, const struct smtp_req *req);
	void       *cache_arg;
	long long   cache_time_limit;	/* smtp_connection_cache_time_limit */
	long long   reuse_count_limit;	/* smtp_connection_reuse_count_limit */
	long long   reuse_time_limit;	/* smtp_connection_reuse_time_limit */
	long long   t_rset;		/* smtp_rset_timeout */
	/* smtp_tls_protocols (may), smtp_tls_mandatory_protocols (encrypt
	 * and above), unless the TLS policy names its own protocols= */
	const char *tls_protocols, *tls_mandatory_protocols;
	/* 8BITMIME: convert 8-bit MIME parts to quoted-printable for a
	 * server that does not announce 8BITMIME (no: send as is) */
	bool        mime_downgrade;
	/* smtp_dns_support_level: disabled (no MX lookups), enabled, or
	 * dnssec (needed by the dane levels; delivery/smtp_dane) */
	enum smtp_dns_support dns_support;
	/* smtp_tls_ciphers (may) / smtp_tls_mandatory_ciphers (encrypt and
	 * above) as OpenSSL lists with smtp_tls_exclude_ciphers applied,
	 * smtp_tls_loglevel (0: no "TLS connection established" line),
	 * smtp_tls_note_starttls_offer, smtp_tls_wrappermode (TLS from the
	 * first byte, port 465); delivery/smtp_tls.c smtp_tls_knobs_load */
	char        tls_cipherlist[1024], tls_mandatory_cipherlist[1024];
	long long   tls_loglevel;
	bool        tls_note_starttls, tls_wrappermode;
	/* smtp_tls_verify_cert_match / smtp_tls_secure_cert_match, words
	 * separated by ':' ("" = Postfix's defaults) */
	char        tls_verify_match[512], tls_secure_match[512];
};

#define SMTP_DSN_SIZE 12	/* "5.123.456" */

struct smtp_rcpt {
	const char         *addr;	/* in: recipient */
	enum deliver_status st;		/* out */
	char                dsn[SMTP_DSN_SIZE];	/* out: "2.0.0", "4.4.1", "5.1.1" ... */
	char               *text;	/* out, owned by the request */
};

struct smtp_req {
	const char       *host;		/* next hop: domain, host, or the
					 * socket path when unix_sock */
	int               port;		/* 0 = 25 (24 for LMTP) */
	bool              mx;		/* look up MX records for host */
	bool              lmtp;		/* LMTP: LHLO, replies per recipient */
	bool              unix_sock;	/* LMTP over the unix socket host */
	const char       *sasl_user;	/* AUTH to the next hop (NULL: none); */
	const char       *sasl_pass;	/* from smtp_sasl_password_maps */
	const char       *id;		/* queue ID, for log lines */
	const char       *sender;	/* "" for <> */
	const char       *content;	/* LF line ends */
	size_t            len;
	struct smtp_rcpt *rcpt;
	size_t            nrcpt;
	const char       *cache_key;	/* NULL: never reuse the connection */
	/* address verification probe (core/verify.c): MAIL and RCPT only,
	 * no SIZE=, no DATA; an accepted recipient gets DELIVER_SENT with
	 * the reply, then QUIT. content may be NULL (len 0). */
	bool              probe;
	/* TLS for this next hop (smtp_tls_policy_maps), when tls_policy */
	bool              tls_policy;
	enum smtp_tls_level tls_level;
	const char       *tls_match;	/* verify/secure: names, ':'-separated */
	const char       *tls_protocols;	/* "!SSLv3, !TLSv1" or ">=TLSv1.2" */
	/* out */
	unsigned          conn_use;	/* 1 new connection, n its n-th use */
	char              relay[320];	/* "mx.example[192.0.2.1]:25", the
					 * socket path, or "none" */
	double            t_conn, t_xfer;	/* delays c and d */
};

typedef void smtp_done_cb(void *arg, struct smtp_req *req);
struct smtp_sess;

/*
 * Starts delivering req (borrowed until done is called, on the loop,
 * exactly once and never from inside smtp_deliver). Every recipient gets
 * an outcome. cfg and dns must outlive the delivery. The handle is valid
 * until done is called.
 */
struct smtp_sess *smtp_deliver(struct event_base *base, struct dns *dns,
		  const struct smtp_client_cfg *cfg, struct smtp_req *req,
		  smtp_done_cb *done, void *arg);
/* Abandons a delivery (shutdown): done is never called. Outcomes so far
 * stay in req (the caller frees them). Then free the dns handle before the
 * loop runs again. */
void smtp_cancel(struct smtp_sess *s);
/* Deliveries in progress (tests, shutdown). */
unsigned smtp_client_active(void);

/*
 * Reply parsing, pure: appends one reply line to the reply in progress.
 * Returns 1 when the reply is complete (code_r set), 0 when more lines
 * follow, -1 for a malformed line.
 */
int smtp_reply_line(const char *line, size_t n, int *code_r);
/* The enhanced status code at the start of text (after "NNN "), or def. */
void smtp_reply_dsn(const char *reply, int code, char dsn_r[SMTP_DSN_SIZE]);
/*
 * Dot-stuffs LF-ended content into CRLF lines ending with ".\r\n" (pure).
 */
struct evbuffer;
void smtp_body_encode(const char *content, size_t len, struct evbuffer *out);

#endif
