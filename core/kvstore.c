/*
 * kvstore.c - the LMDB key-value store with expiry (see kvstore.h).
 * Record layout: 8 bytes expiry time (big-endian seconds, 0 = never), then
 * the value bytes. Keys longer than LMDB's key limit are shortened to a
 * prefix plus a BLAKE2b digest of the whole key.
 * Opened with MDB_NOTLS (a read transaction is not tied to a thread, so
 * workers and the loop can share the store) and MDB_NOSYNC (a write costs
 * a memory copy, no fsync; kvstore_sync flushes).
 * Must not: keep a transaction open after a call returns, or open one
 * LMDB file twice in this process (the registry below shares it).
 */
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>

#include "core/kvstore.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"

#define KV_KEY_LONG	400	/* longer keys are shortened (LMDB max 511) */
#define KV_KEY_PREFIX	200
#define KV_DEFAULT_MAP	(16u * 1024 * 1024)

struct kvstore {
	MDB_env        *env;
	MDB_dbi         dbi;
	char           *name;		/* PATH.lmdb */
	unsigned        refs;
	char           *recovered;	/* set when a damaged file was moved */
	char           *cursor_key;	/* cleanup resumes after this key */
	size_t          cursor_len;
	pthread_mutex_t cleanup_lock;
	struct kvstore *next;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kvstore *registry;

const char *
kvstore_name(const struct kvstore *k)
{
	return k->name;
}

const char *
kvstore_recovered(const struct kvstore *k)
{
	return k->recovered;
}

/* Builds the LMDB key for key into out (size >= KV_KEY_LONG + 1). */
static size_t
kv_key(const char *key, char *out)
{
	size_t n = strlen(key);
	unsigned char h[16];

	if (n <= KV_KEY_LONG) {
		memcpy(out, key, n);
		return n;
	}
	crypto_generichash(h, sizeof(h), (const unsigned char *)key, n, NULL, 0);
	memcpy(out, key, KV_KEY_PREFIX);
	out[KV_KEY_PREFIX] = '#';
	for (size_t i = 0; i < sizeof(h); i++)
		snprintf(out + KV_KEY_PREFIX + 1 + 2 * i, 3, "%02x", h[i]);
	return KV_KEY_PREFIX + 1 + 2 * sizeof(h);
}

static void
put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static int
kv_fail(struct kvstore *k, struct errbuf *err, const char *what, int rc)
{
	errbuf_set(err, "%s: %s: %s", k->name, what, mdb_strerror(rc));
	return -1;
}

struct kvstore *
kvstore_open_logged(const char *path, size_t map_size, const char *syslog_name,
		    const char *service, const char *what, struct errbuf *err)
{
	struct kvstore *k;

	if (kvstore_prepare_dir(path, NULL, err) != 0)
		return NULL;
	k = kvstore_open(path, map_size, err);
	if (k != NULL && kvstore_recovered(k) != NULL)
		log_write(syslog_name, service, LOG_LVL_WARNING, "%s: %s",
			  what, kvstore_recovered(k));
	return k;
}

int
kvstore_prepare_dir(const char *path, const char *owner, struct errbuf *err)
{
	char *dir = xstrdup(path), *p;
	int rc = 0;

	p = strrchr(dir, '/');
	if (p == NULL || p == dir) {
		free(dir);
		return 0;
	}
	*p = '\0';
	/* mkdir -p */
	for (p = dir + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
				errbuf_set(err, "mkdir %s: %s", dir, strerror(errno));
				rc = -1;
				break;
			}
			*p = c;
			if (c == '\0')
				break;
		}
	}
	if (rc == 0 && geteuid() == 0 && owner != NULL && *owner != '\0') {
		struct passwd *pw = getpwnam(owner);
		struct stat st;

		/* Only the last component: parents like /var/lib stay root's. */
		if (pw != NULL && stat(dir, &st) == 0 && st.st_uid == 0 &&
		    chown(dir, pw->pw_uid, pw->pw_gid) < 0) {
			errbuf_set(err, "chown %s: %s", dir, strerror(errno));
			rc = -1;
		}
	}
	free(dir);
	return rc;
}

static int
env_open(struct kvstore *k, size_t map_size)
{
	int rc;

	if ((rc = mdb_env_create(&k->env)) != 0) {
		k->env = NULL;
		return rc;
	}
	if ((rc = mdb_env_set_mapsize(k->env, map_size ? map_size
						       : KV_DEFAULT_MAP)) != 0 ||
	    (rc = mdb_env_set_maxreaders(k->env, 256)) != 0 ||
	    (rc = mdb_env_open(k->env, k->name, MDB_NOSUBDIR | MDB_NOTLS |
			       MDB_NOSYNC, 0600)) != 0) {
		mdb_env_close(k->env);
		k->env = NULL;
	}
	return rc;
}

struct kvstore *
kvstore_open(const char *path, size_t map_size, struct errbuf *err)
{
	struct kvstore *k;
	MDB_txn *txn = NULL;
	char *name = xasprintf("%s.lmdb", path);
	int rc, dead;

	pthread_mutex_lock(&registry_lock);
	for (k = registry; k != NULL; k = k->next)
		if (strcmp(k->name, name) == 0) {
			k->refs++;
			pthread_mutex_unlock(&registry_lock);
			free(name);
			return k;
		}
	k = xcalloc(1, sizeof(*k));
	k->name = name;
	k->refs = 1;
	pthread_mutex_init(&k->cleanup_lock, NULL);
	rc = env_open(k, map_size);
	if (rc == MDB_INVALID || rc == MDB_CORRUPTED ||
	    rc == MDB_VERSION_MISMATCH) {
		/*
		 * Damaged (an operating-system crash with unsynced writes) or
		 * not an LMDB file: the data is only a cache of what can be
		 * learnt again, so move it aside and start empty.
		 */
		char *aside = xasprintf("%s.damaged", name);
		char *lock = xasprintf("%s-lock", name);

		if (rename(name, aside) == 0) {
			(void)unlink(lock);
			k->recovered = xasprintf("%s: %s: moved to %s, starting "
						 "empty", name, mdb_strerror(rc),
						 aside);
			rc = env_open(k, map_size);
		}
		free(aside);
		free(lock);
	}
	if (rc != 0)
		goto fail;
	/* Read slots left by a process that died. */
	(void)mdb_reader_check(k->env, &dead);
	if ((rc = mdb_txn_begin(k->env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, NULL, 0, &k->dbi)) != 0 ||
	    (rc = mdb_txn_commit(txn)) != 0) {
		if (txn != NULL && rc != 0)
			mdb_txn_abort(txn);
		goto fail;
	}
	k->next = registry;
	registry = k;
	pthread_mutex_unlock(&registry_lock);
	return k;
fail:
	pthread_mutex_unlock(&registry_lock);
	errbuf_set(err, "%s: %s", name, mdb_strerror(rc));
	if (k->env != NULL)
		mdb_env_close(k->env);
	pthread_mutex_destroy(&k->cleanup_lock);
	free(k->recovered);
	free(k->name);
	free(k);
	return NULL;
}

void
kvstore_close(struct kvstore **kp)
{
	struct kvstore *k = *kp, **pp;

	if (k == NULL)
		return;
	*kp = NULL;
	pthread_mutex_lock(&registry_lock);
	if (--k->refs > 0) {
		pthread_mutex_unlock(&registry_lock);
		return;
	}
	for (pp = &registry; *pp != NULL; pp = &(*pp)->next)
		if (*pp == k) {
			*pp = k->next;
			break;
		}
	pthread_mutex_unlock(&registry_lock);
	mdb_env_sync(k->env, 1);
	mdb_env_close(k->env);
	pthread_mutex_destroy(&k->cleanup_lock);
	free(k->cursor_key);
	free(k->recovered);
	free(k->name);
	free(k);
}

int
kvstore_get(struct kvstore *k, const char *key, time_t now, void *val,
	    size_t *vlen, time_t *expires_r, struct errbuf *err)
{
	char kb[KV_KEY_LONG + 1];
	MDB_val mk, mv;
	MDB_txn *txn;
	time_t exp;
	int rc, r = 0;

	mk.mv_data = kb;
	mk.mv_size = kv_key(key, kb);
	if (mk.mv_size == 0)
		return 0;
	if ((rc = mdb_txn_begin(k->env, NULL, MDB_RDONLY, &txn)) != 0)
		return kv_fail(k, err, "read", rc);
	rc = mdb_get(txn, k->dbi, &mk, &mv);
	if (rc == MDB_NOTFOUND) {
		r = 0;
	} else if (rc != 0) {
		r = kv_fail(k, err, "get", rc);
	} else if (mv.mv_size < 8) {
		r = 0;		/* not ours: treated as absent */
	} else {
		exp = (time_t)get_be64(mv.mv_data);
		if (exp != 0 && exp <= now) {
			r = 0;
		} else {
			size_t n = mv.mv_size - 8;

			if (val != NULL && vlen != NULL)
				memcpy(val, (char *)mv.mv_data + 8,
				       n < *vlen ? n : *vlen);
			if (vlen != NULL)
				*vlen = n;
			if (expires_r != NULL)
				*expires_r = exp;
			r = 1;
		}
	}
	mdb_txn_abort(txn);
	return r;
}

int
kvstore_put(struct kvstore *k, const char *key, const void *val, size_t vlen,
	    time_t expires, struct errbuf *err)
{
	char kb[KV_KEY_LONG + 1];
	unsigned char vb[8 + KVSTORE_VALUE_MAX];
	MDB_val mk, mv;
	MDB_txn *txn;
	int rc;

	if (vlen > KVSTORE_VALUE_MAX) {
		errbuf_set(err, "%s: value too long (%zu bytes)", k->name, vlen);
		return -1;
	}
	mk.mv_data = kb;
	mk.mv_size = kv_key(key, kb);
	if (mk.mv_size == 0) {
		errbuf_set(err, "%s: empty key", k->name);
		return -1;
	}
	put_be64(vb, (uint64_t)(expires > 0 ? expires : 0));
	if (vlen > 0)
		memcpy(vb + 8, val, vlen);
	mv.mv_data = vb;
	mv.mv_size = 8 + vlen;
	if ((rc = mdb_txn_begin(k->env, NULL, 0, &txn)) != 0)
		return kv_fail(k, err, "write", rc);
	if ((rc = mdb_put(txn, k->dbi, &mk, &mv, 0)) != 0) {
		mdb_txn_abort(txn);
		return kv_fail(k, err, "put", rc);
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return kv_fail(k, err, "commit", rc);
	return 0;
}

int
kvstore_delete(struct kvstore *k, const char *key, struct errbuf *err)
{
	char kb[KV_KEY_LONG + 1];
	MDB_val mk;
	MDB_txn *txn;
	int rc;

	mk.mv_data = kb;
	mk.mv_size = kv_key(key, kb);
	if (mk.mv_size == 0)
		return 0;
	if ((rc = mdb_txn_begin(k->env, NULL, 0, &txn)) != 0)
		return kv_fail(k, err, "write", rc);
	rc = mdb_del(txn, k->dbi, &mk, NULL);
	if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return 0;
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return kv_fail(k, err, "delete", rc);
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return kv_fail(k, err, "commit", rc);
	return 1;
}

long
kvstore_cleanup(struct kvstore *k, time_t now, size_t max_scan,
		struct errbuf *err)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val mk, mv;
	long removed = 0;
	size_t seen = 0;
	int rc;

	pthread_mutex_lock(&k->cleanup_lock);
	if ((rc = mdb_txn_begin(k->env, NULL, 0, &txn)) != 0) {
		pthread_mutex_unlock(&k->cleanup_lock);
		return kv_fail(k, err, "write", rc);
	}
	if ((rc = mdb_cursor_open(txn, k->dbi, &cur)) != 0) {
		mdb_txn_abort(txn);
		pthread_mutex_unlock(&k->cleanup_lock);
		return kv_fail(k, err, "cursor", rc);
	}
	if (k->cursor_key != NULL) {
		mk.mv_data = k->cursor_key;
		mk.mv_size = k->cursor_len;
		rc = mdb_cursor_get(cur, &mk, &mv, MDB_SET_RANGE);
	} else {
		rc = mdb_cursor_get(cur, &mk, &mv, MDB_FIRST);
	}
	while (rc == 0 && seen < max_scan) {
		seen++;
		if (mv.mv_size >= 8) {
			time_t exp = (time_t)get_be64(mv.mv_data);

			if (exp != 0 && exp <= now) {
				if ((rc = mdb_cursor_del(cur, 0)) != 0)
					break;
				removed++;
			}
		}
		rc = mdb_cursor_get(cur, &mk, &mv, MDB_NEXT);
	}
	free(k->cursor_key);
	k->cursor_key = NULL;
	if (rc == 0) {
		/* Stopped at the limit: resume at this (not yet seen) key. */
		k->cursor_key = xmalloc(mk.mv_size ? mk.mv_size : 1);
		memcpy(k->cursor_key, mk.mv_data, mk.mv_size);
		k->cursor_len = mk.mv_size;
	} else if (rc != MDB_NOTFOUND) {
		mdb_cursor_close(cur);
		mdb_txn_abort(txn);
		pthread_mutex_unlock(&k->cleanup_lock);
		return kv_fail(k, err, "cleanup", rc);
	}
	mdb_cursor_close(cur);
	if ((rc = mdb_txn_commit(txn)) != 0) {
		pthread_mutex_unlock(&k->cleanup_lock);
		return kv_fail(k, err, "commit", rc);
	}
	pthread_mutex_unlock(&k->cleanup_lock);
	return removed;
}

size_t
kvstore_count(struct kvstore *k)
{
	MDB_txn *txn;
	MDB_stat st;
	size_t n = 0;

	if (mdb_txn_begin(k->env, NULL, MDB_RDONLY, &txn) != 0)
		return 0;
	if (mdb_stat(txn, k->dbi, &st) == 0)
		n = st.ms_entries;
	mdb_txn_abort(txn);
	return n;
}

int
kvstore_sync(struct kvstore *k, struct errbuf *err)
{
	int rc = mdb_env_sync(k->env, 1);

	if (rc != 0)
		return kv_fail(k, err, "sync", rc);
	return 0;
}
