/*
 * deliver.h - local delivery of one message to one hosted mailbox: adds
 * Return-Path:, X-Original-To: (enable_original_recipient) and Delivered-To:
 * as Postfix's virtual(8) does, writes the Maildir, and classifies the
 * outcome (sent / deferred / bounced) with a DSN code and a log text.
 * Runs the recipient's Sieve scripts (sieve_before, <home>/.dovecot.sieve,
 * sieve_after; include from <home>/sieve/ and sieve_global_dir) and
 * carries out their actions; redirect and vacation replies are written
 * into the queue, duplicate IDs into <home>/.facteur-duplicate.lmdb,
 * editheader versions and IMAP keywords (dovecot-keywords) into the
 * maildir. Enforces the Maildir++ quota (virtual_mailbox_limit,
 * virtual_mailbox_limit_maps per address): a message that does not fit
 * is 5.2.2 "mailbox full" (DELIVER_BOUNCE), or 4.2.2 (DELIVER_DEFER) with
 * virtual_mailbox_full_tempfail = yes; virtual_mailbox_quota_warning
 * queues a warning to the user when a threshold is crossed.
 * Blocks on disk: worker threads only.
 * Logs only Sieve events (script errors, redirects, vacation replies); the
 * caller logs the "to=<...>, relay=virtual, ... status=" line once.
 */
#ifndef FACTEUR_DELIVER_H
#define FACTEUR_DELIVER_H
#include <stdbool.h>
#include <stddef.h>

#include "core/lib/buf.h"

enum deliver_status { DELIVER_SENT = 0, DELIVER_DEFER, DELIVER_BOUNCE };

struct settings;
/*
 * Called once from main after the settings are loaded, before any
 * delivery: queue_directory (for redirect and vacation messages),
 * myhostname, recipient_delimiter (Sieve subaddress), sieve_before,
 * sieve_after and the quota parameters (a limit map that cannot be opened
 * makes every delivery defer with the reason). Copies what it needs. Without it, Sieve still runs, but
 * redirects defer and vacation replies are not sent.
 */
void deliver_init(const struct settings *s);

struct deliver_req {
	const char *base;	/* virtual_mailbox_base */
	const char *maildir;	/* absolute Maildir path ending in "/" */
	const char *sender;	/* envelope sender, "" for <> */
	const char *orig_rcpt;	/* X-Original-To (NULL: not written) */
	const char *rcpt;	/* Delivered-To: final address */
	const char *content;	/* message with LF line ends */
	size_t      len;
};

/*
 * dsn_r gets "2.0.0", "4.2.0", "4.3.0", "5.2.2" ...; text_r gets the
 * parenthesised status text ("delivered to maildir", "create maildir file
 * ...: No space left on device"). errno mapping as Postfix's mbox_dsn:
 * EAGAIN/ESTALE -> 4.2.0, ENOSPC -> 4.3.0, EDQUOT/EFBIG -> 5.2.2 (bounce),
 * everything else defers (4.2.0 / 4.3.0).
 */
enum deliver_status deliver_maildir(const struct deliver_req *req,
				    char dsn_r[8], struct buf *text_r);
/* Is a Maildir++ quota configured (virtual_mailbox_limit or _maps)? */
bool deliver_quota_enabled(void);
/*
 * RCPT time, when MAIL FROM declared SIZE=: would a message of size bytes
 * overflow the quota of rcpt's maildir? 1: yes, dsn_r "5.2.2" (or "4.2.2"
 * with virtual_mailbox_full_tempfail); 0: it fits, or no quota; -1: the
 * quota cannot be read now (accept: the end of DATA decides). Blocks on
 * disk and on virtual_mailbox_limit_maps: worker threads only.
 */
int deliver_quota_precheck(const char *rcpt, const char *maildir,
			   long long size, char dsn_r[8]);
/*
 * The Sieve home of a mailbox (DESIGN: where .dovecot.sieve and sieve/
 * live): the maildir's parent when the path ends in "Maildir/", else the
 * maildir itself, without a trailing '/'. The caller frees it.
 */
char *deliver_sieve_home(const char *maildir);
/*
 * The errno mapping above, for any local delivery agent: returns the DSN
 * code (static string) and sets *st_r to DELIVER_DEFER or DELIVER_BOUNCE.
 */
const char *deliver_errno_dsn(int errnum, enum deliver_status *st_r);

#endif
