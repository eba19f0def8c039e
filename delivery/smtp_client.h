/*
 * smtp_client.h - deliver one message to one next hop over ESMTP, event
 * driven on the libevent loop: MX lookup (or none for [host]), A/AAAA,
 * connect in preference order, EHLO (HELO fallback), PIPELINING, SIZE,
 * SMTPUTF8 check, MAIL/RCPT/DATA with per-recipient outcomes, dot-stuffing
 * and CRLF line ends, QUIT. Each stage has its own timeout.
 * Must not: block, touch the queue (the caller records outcomes), or log
 * delivery status lines (the caller does; connection failures are logged
 * here as Postfix's smtp(8) does).
 */
#ifndef FACTEUR_SMTP_CLIENT_H
#define FACTEUR_SMTP_CLIENT_H
#include <stdbool.h>
#include <stddef.h>

#include "delivery/deliver.h"

struct event_base;
struct dns;

struct smtp_client_cfg {
	const char *helo_name;		/* smtp_helo_name */
	const char *syslog_name;	/* for the connection log lines */
	long long   t_connect, t_helo, t_mail, t_rcpt, t_data_init,
		    t_data_xfer, t_data_done, t_quit;	/* seconds */
};

#define SMTP_DSN_SIZE 12	/* "5.123.456" */

struct smtp_rcpt {
	const char         *addr;	/* in: recipient */
	enum deliver_status st;		/* out */
	char                dsn[SMTP_DSN_SIZE];	/* out: "2.0.0", "4.4.1", "5.1.1" ... */
	char               *text;	/* out, owned by the request */
};

struct smtp_req {
	const char       *host;		/* next hop: domain or host */
	int               port;		/* 0 = 25 */
	bool              mx;		/* look up MX records for host */
	const char       *id;		/* queue ID, for log lines */
	const char       *sender;	/* "" for <> */
	const char       *content;	/* LF line ends */
	size_t            len;
	struct smtp_rcpt *rcpt;
	size_t            nrcpt;
	/* out */
	char              relay[320];	/* "mx.example[192.0.2.1]:25" or "none" */
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
