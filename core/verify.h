/*
 * verify.h - address verification (Postfix's reject_unverified_recipient
 * and reject_unverified_sender, verify(8)): is an address deliverable?
 * Addresses this server delivers itself are answered by the resolver at
 * once (a known mailbox or alias is deliverable, an unknown one is not);
 * other addresses are probed: an SMTP dialogue with the next hop that
 * stops after RCPT TO (delivery/smtp_probe.h), its result kept in an
 * LMDB store (address_verify_map) with Postfix's expiry and refresh
 * times (core/verify_cache.h). A query that finds no result waits for
 * the probe up to (address_verify_poll_count - 1) x
 * address_verify_poll_delay, then answers "in progress".
 * One verifier per daemon (verify_set_current), used by every listener;
 * queries run on workers (they block: store, maps, the wait; at most half
 * of facteur_worker_threads wait at once, the others answer "in progress"
 * at once, so deliveries keep their workers), probes on the event loop,
 * at most VERIFY_PROBES_MAX at once.
 * Must not: block the loop, probe one address twice at once, or answer
 * 5xx for anything but an undeliverable result.
 */
#ifndef FACTEUR_VERIFY_H
#define FACTEUR_VERIFY_H
#include <stdbool.h>

#include "core/config.h"
#include "core/lib/errbuf.h"
#include "core/resolve.h"
#include "core/verify_cache.h"

struct event_base;
struct settings;
struct verify;

#define VERIFY_PROBES_MAX	20	/* probes at once */
#define VERIFY_QUEUE_MAX	1000	/* probes waiting for a slot */

/*
 * Loop thread: reads the address_verify_* parameters of s (not kept) and
 * sets up the prober; the store is opened at the first query. NULL + err
 * on a bad value.
 */
struct verify *verify_new(struct event_base *base, const struct settings *s,
			  struct errbuf *err);
/* Stop: queries waiting for a probe return at once ("in progress"),
 * no new probe starts. Call before the worker pool is freed. */
void verify_stop(struct verify *v);
/* After the worker pool is gone: cancels the probes, closes the store. */
void verify_free(struct verify **vp);
/* The verifier smtpd restrictions use (NULL: none; they then tempfail
 * with "address verification problem"). */
void verify_set_current(struct verify *v);

/* The first address_verify_* parameter the verifier reads at start whose
 * value differs between a and b (a reload then warns), or NULL. */
const char *verify_restart_param(const struct config *a,
				 const struct config *b);

/*
 * Worker thread. The status of addr (key form; rc resolves the addresses
 * delivered here, may be NULL), waiting up to wait seconds for a probe.
 * text gets the reason (the remote reply, "Address verification in
 * progress" ...).
 */
enum verify_status verify_query(struct verify *v, struct resolve_ctx *rc,
				const char *addr, long long wait, char *text,
				size_t textsz);

/* smtpd side (per listener): unverified_{recipient,sender}_* and the poll. */
struct verify_smtpd {
	int       rcpt_rcode, rcpt_dcode, sender_rcode, sender_dcode;
	bool      rcpt_defer_now, sender_defer_now;	/* tempfail_action defer */
	long long poll_count, poll_delay;
	/* unverified_{recipient,sender}_reject_reason ("" = the probe's) */
	char      rcpt_reason[256], sender_reason[256];
};
int verify_smtpd_conf(const struct config *c, struct verify_smtpd *o,
		      struct errbuf *err);

enum verify_action {
	VERIFY_PASS,		/* go on with the next restriction */
	VERIFY_REJECT,		/* reject (code 4xx or 5xx) now */
	VERIFY_DEFER_IF_PERMIT,	/* 4xx if the rest would permit */
};
struct verify_verdict {
	enum verify_action action;
	int                code;
	char               dsn[8];
	char               text[VERIFY_TEXT_MAX + 64];	/* after "<a>: X rejected: " */
};
/* Worker thread: reject_unverified_{sender,recipient} for addr. */
void verify_smtpd_check(const struct verify_smtpd *o, struct resolve_ctx *rc,
			const char *addr, bool sender,
			struct verify_verdict *out);

#endif
