/*
 * queue.h - the durable on-disk queue in queue_directory.
 * Subdirectories as Postfix operators know them: incoming/ (being written,
 * never delivered), active/, deferred/, hold/, corrupt/. One file per
 * message, named by its queue ID; a file is renamed from incoming/ to
 * active/ only after it and incoming/ and active/ are fsynced, so a file in
 * active/ or deferred/ is always complete. Per-recipient status is updated
 * in place (one byte, fsynced) so a crash never delivers a recipient twice.
 * All functions here block on disk: call them from worker threads only
 * (facteur CLI and start-up scans may call them directly).
 */
#ifndef FACTEUR_QUEUE_H
#define FACTEUR_QUEUE_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "core/lib/buf.h"
#include "core/lib/errbuf.h"
#include "core/lib/strlist.h"

/* 17 upper-case hex digits: seconds(9) usec(5) sequence(3); sortable. */
#define QUEUE_ID_LEN 17
#define QUEUE_ID_SIZE (QUEUE_ID_LEN + 1)

enum queue_state { QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD,
		   QUEUE_CORRUPT };

enum queue_rcpt_status {
	QUEUE_RCPT_PENDING = 'R',	/* still to deliver */
	QUEUE_RCPT_DONE    = 'D',	/* delivered (or bounced): never again */
};

struct queue_rcpt {
	char   *orig;		/* original recipient as received (X-Original-To) */
	char   *addr;		/* final address (after alias expansion) */
	char   *orcpt;		/* DSN ORCPT or NULL */
	unsigned notify;	/* DSN NOTIFY bits */
	int     status;		/* enum queue_rcpt_status */
	off_t   status_off;	/* file offset of the status byte (set by read/write) */
};

/* The envelope: everything but the message content. */
struct queue_env {
	char    id[QUEUE_ID_SIZE];
	time_t  arrival;	/* seconds */
	long    arrival_usec;
	char   *sender;		/* "" for <> */
	char   *client_name, *client_addr, *helo, *protocol;	/* for logs/DSN */
	char   *envid, *ret;	/* DSN, may be NULL */
	char   *filter;		/* content_filter "transport:nexthop", or NULL */
	long long size;		/* message size in bytes (content) */
	struct queue_rcpt *rcpt;
	size_t  nrcpt;
	int     attempts;	/* delivery attempts so far */
	time_t  next_attempt;	/* deferred: not before this */
	unsigned flags;		/* QUEUE_F_*, stored by queue_write/queue_defer */
	bool    flags_rec;	/* the file can store flags (set by read/write) */
};

/* Message flags, kept with the retry schedule. */
#define QUEUE_F_DELAY_WARNED 0x1u	/* the delay warning was sent */

/* Creates the subdirectories (mode 0700). 0 or -1 + err. */
int  queue_init(const char *qdir, struct errbuf *err);
/* A new unique, sortable queue ID (thread-safe). */
void queue_id_new(char id[QUEUE_ID_SIZE]);

/*
 * Writes env + content as incoming/ID, fsyncs the file and the directory,
 * renames it to active/ (or hold/ if hold), fsyncs that directory. Only
 * after this returns 0 may the message be acknowledged. -1 + err (and
 * errno) on failure, leaving nothing behind.
 */
int  queue_write(const char *qdir, struct queue_env *env, const char *content,
		 size_t len, bool hold, struct errbuf *err);
/*
 * Reads a queue file: env (caller frees with queue_env_free) and, if
 * content_r is not NULL, the message content. -1 + err if unreadable or
 * malformed (the caller moves it to corrupt/).
 */
int  queue_read(const char *qdir, enum queue_state st, const char *id,
		struct queue_env *env, struct buf *content_r, struct errbuf *err);
/* Marks recipient i done in the file (pwrite + fdatasync). */
int  queue_mark_done(const char *qdir, enum queue_state st,
		     struct queue_env *env, size_t i, struct errbuf *err);
/*
 * Stores attempts/next_attempt/flags in the file and moves it to deferred/.
 * -1 + err (EINVAL) if flags are set but the file predates them.
 */
int  queue_defer(const char *qdir, enum queue_state from, struct queue_env *env,
		 struct errbuf *err);
int  queue_move(const char *qdir, const char *id, enum queue_state from,
		enum queue_state to, struct errbuf *err);
int  queue_remove(const char *qdir, enum queue_state st, const char *id,
		  struct errbuf *err);
/*
 * Lists IDs in one state, sorted (oldest first). Files in incoming/ are
 * leftovers of a crash before acknowledgement: queue_scan never returns
 * them; queue_clean_incoming removes them at start-up.
 */
int  queue_list(const char *qdir, enum queue_state st, struct strlist *ids_r,
		struct errbuf *err);
int  queue_clean_incoming(const char *qdir, struct errbuf *err);
/*
 * fsyncs the directory of state st. queue_remove does not: a removed file
 * whose recipients are all done is harmless if a crash brings it back.
 * Callers that delete undelivered messages (facteur queue delete) call this.
 */
int  queue_sync_state(const char *qdir, enum queue_state st, struct errbuf *err);
void queue_env_free(struct queue_env *env);
const char *queue_state_name(enum queue_state st);

#endif
