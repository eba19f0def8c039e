/*
 * maildir.h - deliver one message into one Maildir (Maildir++ layout).
 * Writes tmp/NAME, fsyncs it, links it to new/NAME (unique name
 * "SEC.MUSECPPID_SEQ.HOST,S=SIZE"), unlinks tmp/NAME, fsyncs new/.
 * Creates the maildir (cur new tmp, mode 0700) and missing parents below
 * base on first delivery. Keywords are mapped to letters with the
 * folder's dovecot-keywords file, as Dovecot does. Blocks on disk: worker threads only.
 * Must not: decide bounce vs defer (returns errno; deliver.c maps it).
 */
#ifndef FACTEUR_MAILDIR_H
#define FACTEUR_MAILDIR_H
#include <stddef.h>
#include <sys/types.h>

#include "core/lib/errbuf.h"

struct maildir_msg {
	const char *prepend;	/* header lines to write first (CRLF->LF done) */
	size_t      prepend_len;
	const char *content;	/* the message as queued (LF line ends) */
	size_t      len;
	const char *folder;	/* NULL = INBOX; "Sub.Folder" = .Sub.Folder/ */
	const char *flags;	/* NULL = new/; else cur/NAME:2,FLAGS */
	/* IMAP keywords ($Label1, work): letters a..z through the folder's
	 * dovecot-keywords file (Dovecot's mapping, added to under its
	 * dotlock), put into cur/NAME:2,FLAGS; more than 26 are dropped */
	const char *const *keywords;
	size_t      nkeywords;
};

/*
 * path: absolute maildir directory (ends in "/"); base: virtual_mailbox_base,
 * directories above it are never created. The file is prepend + content,
 * LF line ends (as Postfix's virtual(8) writes), S= is its size in bytes.
 * Returns 0, or an errno value with err set ("create maildir file
 * /x/tmp/...: No space left on device").
 */
int maildir_deliver(const char *base, const char *path,
		    const struct maildir_msg *msg, char *name_r, size_t name_size,
		    struct errbuf *err);

/*
 * Tests only: 0 forces the portable tmp/ + link path even where the
 * O_TMPFILE path is available; 1 allows O_TMPFILE again.
 */
void maildir_use_tmpfile(int on);

/*
 * The letters (a..z) of keywords in the maildir folder directory dir
 * (ends in "/"), adding the missing ones to dir/dovecot-keywords under
 * Dovecot's dotlock (dovecot-keywords.lock). out gets the letters, at
 * most 26 + NUL. Keywords that are not IMAP atoms, or beyond the 26th,
 * are left out (*dropped_r counts them). 0, or an errno value + err.
 */
int maildir_keywords(const char *dir, const char *const *kw, size_t n,
		     char out[27], size_t *dropped_r, struct errbuf *err);

#endif
