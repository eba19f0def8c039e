/*
 * sieve.h - the Sieve mail filtering language (RFC 5228 and extensions):
 * compile a script once into a checked tree, run it for one message.
 * Compiling never touches the disk (sieve_cache.c reads files); running
 * never writes anything: it returns the list of actions for deliver.c to
 * carry out. Both are pure and thread-safe on distinct objects; a compiled
 * script is read-only and may be run by many threads at once.
 */
#ifndef FACTEUR_SIEVE_H
#define FACTEUR_SIEVE_H
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/lib/buf.h"
#include "core/lib/errbuf.h"

#define SIEVE_MAX_SCRIPT_SIZE	(1024 * 1024)	/* bytes of script text */
#define SIEVE_MAX_ACTIONS	32	/* per message, all scripts together */
#define SIEVE_MAX_REDIRECTS	4
#define SIEVE_MAX_STEPS		200000	/* commands, tests and match steps */

struct sieve_script;

/*
 * Compiles text (len bytes, need not be NUL-terminated). name is used in
 * messages only. On error returns NULL and err holds "LINE:COL: reason"
 * (the first error). The caller owns the result (sieve_script_free).
 */
struct sieve_script *sieve_compile(const char *text, size_t len,
				   const char *name, struct errbuf *err);
void sieve_script_free(struct sieve_script **sp);
/* The extensions this implementation supports, space-separated. */
const char *sieve_extensions(void);

enum sieve_action_type {
	SIEVE_ACT_KEEP,		/* folder NULL: INBOX */
	SIEVE_ACT_FILEINTO,
	SIEVE_ACT_REDIRECT,
	SIEVE_ACT_DISCARD,
	SIEVE_ACT_REJECT,	/* reject and ereject */
	SIEVE_ACT_VACATION,
};

struct sieve_action {
	enum sieve_action_type type;
	char   *folder;		/* FILEINTO: UTF-8 mailbox name ("INBOX.x" ok) */
	char   *flags;		/* KEEP/FILEINTO: IMAP flags, space-separated */
	bool    create;		/* FILEINTO :create */
	char   *addr;		/* REDIRECT: target address */
	char   *reason;		/* REJECT, VACATION: text (VACATION :mime: entity) */
	/* VACATION */
	char   *subject, *from, *handle;
	char   *to;		/* VACATION: reply recipient (the envelope sender) */
	char   *in_reply_to;	/* VACATION: the message's Message-ID, or NULL */
	char   *orig_subject;	/* VACATION: the message's decoded Subject */
	bool    mime;
	long    seconds;	/* :days / :seconds period */
	const char *skip;	/* VACATION: why no reply goes out (RFC 5230
				 * 4.5: list mail, auto-replies ...), or NULL */
	bool    implicit;	/* KEEP: the implicit keep */
	char   *script;		/* name of the script that asked for it */
	int     line;
	int     ver;		/* KEEP/FILEINTO/REDIRECT: the message version
				 * (0 original, k: result ver[k-1], edited by
				 * editheader); see sieve_action_message */
};

/* What a script sees of the message and its envelope. */
struct sieve_msg {
	const char *content;	/* header + body, LF or CRLF line ends */
	size_t      len;
	const char *env_from;	/* envelope sender, "" for <> */
	const char *env_to;	/* final recipient (user+detail@domain) */
	const char *orig_to;	/* original recipient, or NULL */
	const char *delimiters;	/* recipient_delimiter characters, "" none */
	/* mailboxexists: 1 exists, 0 not; NULL = assume INBOX only */
	int (*mailbox_exists)(void *arg, const char *utf8_name);
	/*
	 * include (RFC 6609): the compiled script NAME of the personal or
	 * global location: 1 with *sp (a reference released with
	 * sieve_script_unref), 0 if there is no such script, -1 + err.
	 * NULL: no script can be included.
	 */
	int (*include)(void *arg, bool global, const char *name,
		       struct sieve_script **sp, struct errbuf *err);
	/* duplicate (RFC 7352): 1 if key was recorded and has not expired,
	 * 0 if not; NULL: never seen. Must not record anything. */
	int (*duplicate_seen)(void *arg, const char *key);
	void       *arg;
};

/* A duplicate ID to record once the message is delivered (RFC 7352). */
struct sieve_dupmark {
	char   *key;		/* "handle\nid" */
	long    seconds;	/* expires this long after the delivery */
};

/* A message version written by editheader. */
struct sieve_msgver {
	char   *data;
	size_t  len;
};

/* The actions of one delivery, accumulated over the scripts run. */
struct sieve_result {
	struct sieve_action *act;
	size_t  nact;
	bool    keep_cancelled;	/* an explicit action replaced the implicit keep */
	bool    implicit_keep_wanted;	/* a script ended with implicit keep on */
	char   *implicit_flags;	/* imap4flags value at the end (for keep) */
	int     nredirects;
	struct sieve_msgver *ver;	/* editheader versions, oldest first */
	size_t  nver;
	struct sieve_dupmark *dup;	/* duplicate IDs to record */
	size_t  ndup;
};

/*
 * The message an action stores or redirects: orig (the message the
 * scripts ran on) or the version editheader made of it before the action.
 */
const char *sieve_action_message(const struct sieve_result *r,
				 const struct sieve_action *a,
				 const char *orig, size_t orig_len,
				 size_t *len_r);

void sieve_result_init(struct sieve_result *r);
void sieve_result_free(struct sieve_result *r);

/*
 * Runs one script against msg, adding its actions to r. A later script
 * on the same r sees the header edits of the earlier ones. Returns 0, or -1
 * on a run-time error (err: "LINE: reason"); on error the caller must keep
 * the message in INBOX (the actions already added stay in r so the caller
 * can decide). Never blocks, never writes.
 * r->implicit_keep_wanted tells whether the implicit keep is still in
 * effect after this script (Pigeonhole runs a sieve_after script only then).
 */
int sieve_run(const struct sieve_script *s, const struct sieve_msg *msg,
	      struct sieve_result *r, struct errbuf *err);

/*
 * Between two scripts of a sequence (sieve_before, the user's,
 * sieve_after): true if the next one is to run, which Pigeonhole does
 * while the keep, implicit or explicit, is in effect ("stop" does not end
 * the sequence; fileinto, discard, redirect, reject without keep do).
 * The earlier keep then becomes the implicit keep the next script may
 * cancel; its imap4flags carry over.
 */
bool sieve_result_continue(struct sieve_result *r);

/* Adds a keep into INBOX if the result would otherwise store nothing. */
void sieve_result_finish(struct sieve_result *r);

/* Prints the actions as Pigeonhole's sieve-test does ("store message in
 * folder: X"). */
void sieve_result_format(const struct sieve_result *r, struct buf *out);

/*
 * The compiled script at path, from a process-wide cache keyed by path,
 * mtime and size (thread-safe). Returns 1 and *sp (a reference the caller
 * drops with sieve_script_unref), 0 if the file does not exist, -1 with err
 * ("script.sieve: 3:7: unknown command 'fileint'") if it cannot be read or
 * compiled. err_line_r gets the line of a compile error (0 if none).
 */
int  sieve_cache_get(const char *path, struct sieve_script **sp,
		     struct errbuf *err);
void sieve_script_unref(struct sieve_script **sp);
/* Drops every cached script (tests, shutdown). */
void sieve_cache_clear(void);

/* RFC 2047: decodes encoded-words in a header value into UTF-8 (charsets
 * utf-8, us-ascii, iso-8859-1; others are left encoded). */
void sieve_mime_decode_header(const char *in, size_t len, struct buf *out);

/* RFC 3501 5.1.3 modified UTF-7 for a UTF-8 mailbox name; -1 if the name
 * is not valid UTF-8. */
int  sieve_mutf7_encode(const char *utf8, struct buf *out);

#endif
