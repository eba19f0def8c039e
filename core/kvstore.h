/*
 * kvstore.h - small persistent key-value store with expiry times, on LMDB:
 * the postscreen cache, greylisting triplets, and other small state that
 * must survive a restart. One store is one LMDB file (PATH.lmdb with its
 * lock file PATH.lmdb-lock), safe to share between processes and threads.
 * Calls are short (LMDB reads are memory-mapped; writes copy a few bytes
 * into the map and do not fsync) and may run on the event loop or on a
 * worker. kvstore_sync flushes to disk; after an operating-system crash
 * (not a daemon crash) the last unsynced writes may be lost, which only
 * means a client is screened or greylisted again.
 * Must not: be opened before a fork and used after it (open lazily, in the
 * process that uses it), or hold a transaction across calls.
 */
#ifndef FACTEUR_KVSTORE_H
#define FACTEUR_KVSTORE_H
#include <stddef.h>
#include <time.h>

#include "core/lib/errbuf.h"

struct kvstore;

/* Longest value stored (bytes). */
#define KVSTORE_VALUE_MAX 1024

/*
 * Opens or creates the store PATH.lmdb. The same path opened again in this
 * process gives the same store (reference counted; LMDB forbids two
 * environments on one file in one process). map_size bounds the file
 * (bytes, 0 = 16 MB). NULL + err ("PATH.lmdb: reason").
 */
struct kvstore *kvstore_open(const char *path, size_t map_size,
			     struct errbuf *err);
void kvstore_close(struct kvstore **kp);
/* The file name ("PATH.lmdb"), for log lines. */
const char *kvstore_name(const struct kvstore *k);
/*
 * A damaged store file (LMDB says invalid or corrupted, as an
 * operating-system crash between syncs may leave it) is moved aside to
 * PATH.lmdb.damaged and an empty store created: then this returns the
 * message to log once, else NULL.
 */
const char *kvstore_recovered(const struct kvstore *k);

/*
 * Makes sure the directory of path exists (mode 0700) and, when running
 * as root, belongs to owner (the mail_owner user facteurd switches to),
 * so the store can be created after the privilege drop. 0 or -1 + err.
 */
int kvstore_prepare_dir(const char *path, const char *owner,
			struct errbuf *err);

/*
 * kvstore_prepare_dir (no owner) then kvstore_open, for a store opened
 * lazily in the process that uses it (address_verify_map,
 * greylist_database): a recovered damaged file is logged once as a
 * warning "what: message" under syslog_name (NULL = the default) and
 * service. NULL + err.
 */
struct kvstore *kvstore_open_logged(const char *path, size_t map_size,
				    const char *syslog_name,
				    const char *service, const char *what,
				    struct errbuf *err);

/*
 * Looks key up. 1: found and not expired at now (val gets up to
 * *vlen bytes, *vlen the stored length; expires_r the expiry time, 0 =
 * never; val/vlen/expires_r may be NULL); 0: absent or expired; -1 + err.
 */
int kvstore_get(struct kvstore *k, const char *key, time_t now, void *val,
		size_t *vlen, time_t *expires_r, struct errbuf *err);
/* Stores key -> val (at most KVSTORE_VALUE_MAX bytes) until expires
 * (0 = never). 0 or -1 + err. */
int kvstore_put(struct kvstore *k, const char *key, const void *val,
		size_t vlen, time_t expires, struct errbuf *err);
/* 1 removed, 0 not there, -1 + err. */
int kvstore_delete(struct kvstore *k, const char *key, struct errbuf *err);

/*
 * Removes expired entries, looking at no more than max_scan entries per
 * call (bounded work for a periodic timer): each call goes on where the
 * previous one stopped and wraps around at the end. Returns the number
 * removed, or -1 + err.
 */
long kvstore_cleanup(struct kvstore *k, time_t now, size_t max_scan,
		     struct errbuf *err);
/* Entries in the store (expired ones included). */
size_t kvstore_count(struct kvstore *k);
/* Flushes written data to disk (blocks on fsync: call it off the loop or
 * rarely). 0 or -1 + err. */
int kvstore_sync(struct kvstore *k, struct errbuf *err);

#endif
