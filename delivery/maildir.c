/*
 * maildir.c - deliver one message into one Maildir (Maildir++ folders).
 * Writes tmp/NAME with one writev, fsyncs it, links it into new/ (or cur/
 * with flags), fsyncs that directory, then unlinks tmp/NAME. Creates a
 * missing maildir (and parents below base) only when tmp/ is missing, and
 * fsyncs every directory it added an entry to.
 * Must not: block the event loop (worker threads only), decide bounce vs
 * defer (returns errno; deliver.c maps it), create anything above base, or
 * follow ".." in a mailbox path.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/lib/fsync.h"
#include "delivery/maildir.h"

#ifndef ENOTSUP
#define ENOTSUP EOPNOTSUPP
#endif

#define MAILDIR_MAX_FLAGS 26

static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static char host_name[256 * 4 + 1];
static atomic_ulong maildir_seq;

/* Dovecot's escaping of the host part: '/' -> \057, ':' -> \072. */
static void
host_init(void)
{
	char raw[256];
	size_t i, o = 0;

	if (gethostname(raw, sizeof(raw)) < 0 || raw[0] == '\0')
		snprintf(raw, sizeof(raw), "localhost");
	raw[sizeof(raw) - 1] = '\0';
	for (i = 0; raw[i] && o + 5 < sizeof(host_name); i++) {
		if (raw[i] == '/') {
			memcpy(host_name + o, "\\057", 4);
			o += 4;
		} else if (raw[i] == ':') {
			memcpy(host_name + o, "\\072", 4);
			o += 4;
		} else {
			host_name[o++] = raw[i];
		}
	}
	host_name[o] = '\0';
}


/* Is rel (relative to base) free of "." and ".." components? */
static int
path_safe(const char *rel)
{
	const char *p = rel;

	while (*p) {
		size_t n;
		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += n;
	}
	return 1;
}

/*
 * The helpers below return 0 or an errno value, with err set.
 * mkdir that tolerates EEXIST (another thread or process got there first).
 * *created is set when this call made it: its parent then needs an fsync.
 */
static int
mkdir_one(const char *path, int *created, struct errbuf *err)
{
	struct stat sb;
	int e;

	if (mkdir(path, 0700) == 0) {
		*created = 1;
		return 0;
	}
	e = errno;
	if (e == EEXIST) {
		if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
			return 0;
		e = ENOTDIR;
	}
	errbuf_set(err, "create maildir directory %s: %s", path, strerror(e));
	return e;
}

static int
sync_dir_err(const char *path, struct errbuf *err)
{
	int e;

	if (fsync_dir(path) == 0)
		return 0;
	e = errno;
	errbuf_set(err, "fsync maildir directory %s: %s", path, strerror(e));
	return e;
}

/* Creates dir (a path ending in '/') and its cur/ new/ tmp/ (tmp/ last). */
static int
make_maildir(const char *dir, size_t dlen, int *parent_changed,
	     struct errbuf *err)
{
	static const char *const sub[] = { "cur", "new", "tmp" };
	char p[PATH_MAX];
	int created = 0, any = 0, e;
	size_t i;

	snprintf(p, sizeof(p), "%.*s", (int)(dlen - 1), dir);
	if ((e = mkdir_one(p, &created, err)) != 0)
		return e;
	if (created)
		*parent_changed = 1;
	for (i = 0; i < 3; i++) {
		created = 0;
		snprintf(p, sizeof(p), "%.*s%s", (int)dlen, dir, sub[i]);
		if ((e = mkdir_one(p, &created, err)) != 0)
			return e;
		any |= created;
	}
	if (any) {
		snprintf(p, sizeof(p), "%.*s", (int)(dlen - 1), dir);
		return sync_dir_err(p, err);
	}
	return 0;
}

/*
 * Creates the maildir at path (and parents below base), then the folder
 * directory fdir (when it differs from path) with its maildirfolder file.
 * Every directory that gets a new entry is fsynced, so the new maildir is
 * as durable as the message about to be linked into it.
 */
static int
maildir_create(const char *base, const char *path, const char *fdir,
	       struct errbuf *err)
{
	char p[PATH_MAX], parent[PATH_MAX];
	size_t blen = strlen(base), plen = strlen(path), i, start, k;
	int created, changed = 0, e, fd;

	while (blen > 1 && base[blen - 1] == '/')
		blen--;
	/* Parents are created only below base; above it they must exist. */
	if (blen > 1 && strncmp(path, base, blen) == 0 && path[blen] == '/')
		start = blen + 1;
	else
		start = plen;	/* not under base: create only the maildir */
	memcpy(p, path, plen + 1);
	for (i = start; i + 1 < plen; i++) {
		if (p[i] != '/')
			continue;
		p[i] = '\0';
		created = 0;
		if ((e = mkdir_one(p, &created, err)) != 0)
			return e;
		if (created) {
			/* its parent: p up to the previous '/' */
			k = i;
			while (k > 0 && p[k - 1] != '/')
				k--;
			snprintf(parent, sizeof(parent), "%.*s",
				 k > 1 ? (int)(k - 1) : 1, p);
			if ((e = sync_dir_err(parent, err)) != 0)
				return e;
		}
		p[i] = '/';
	}
	if ((e = make_maildir(path, plen, &changed, err)) != 0)
		return e;
	if (changed) {
		k = plen - 1;
		while (k > 0 && path[k - 1] != '/')
			k--;
		snprintf(parent, sizeof(parent), "%.*s", k > 1 ? (int)(k - 1) : 1,
			 path);
		if ((e = sync_dir_err(parent, err)) != 0)
			return e;
	}
	if (strcmp(fdir, path) != 0) {
		size_t flen = strlen(fdir);

		changed = 0;
		if ((e = make_maildir(fdir, flen, &changed, err)) != 0)
			return e;
		snprintf(p, sizeof(p), "%smaildirfolder", fdir);
		if ((fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) < 0) {
			e = errno;
			errbuf_set(err, "create maildir file %s: %s", p, strerror(e));
			return e;
		}
		close(fd);
		snprintf(p, sizeof(p), "%.*s", (int)(flen - 1), fdir);
		if ((e = sync_dir_err(p, err)) != 0)
			return e;
		if (changed)
			return sync_dir_err(path, err);
	}
	return 0;
}

/* Flags as Maildir wants them: ASCII letters, sorted, no duplicates. */
static int
flags_norm(const char *in, char out[MAILDIR_MAX_FLAGS * 2 + 1])
{
	int seen[128] = { 0 };
	size_t o = 0;
	int c;

	for (; *in; in++) {
		c = (unsigned char)*in;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
			return -1;
		seen[c] = 1;
	}
	for (c = 'A'; c <= 'Z'; c++)
		if (seen[c])
			out[o++] = (char)c;
	for (c = 'a'; c <= 'z'; c++)
		if (seen[c])
			out[o++] = (char)c;
	out[o] = '\0';
	return 0;
}

#ifdef O_TMPFILE
/* 0 until an O_TMPFILE delivery is found not to work here. */
static atomic_int tmpfile_broken;

/*
 * Linux fast path: write an unnamed file in tmp/ (O_TMPFILE), fsync it and
 * give it its one name in new/ (or cur/). No tmp/ entry is created and
 * unlinked, which halves the directory updates under load. Returns 0 when
 * delivered, an errno value on a real failure, or -1 when O_TMPFILE or the
 * /proc link trick is not available here (the caller then uses tmp/).
 */
static int
deliver_tmpfile(const char *base, const char *path, const char *dir,
		const char *ddir, const char *dst, const struct iovec *iov,
		struct errbuf *err)
{
	char tmpdir[PATH_MAX], proc[64];
	int fd, e, tries;

	if (atomic_load(&tmpfile_broken))
		return -1;
	if (snprintf(tmpdir, sizeof(tmpdir), "%stmp", dir) >= (int)sizeof(tmpdir))
		return -1;
	for (tries = 0;; tries++) {
		fd = open(tmpdir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		e = errno;
		if (e == ENOENT && tries == 0) {
			if ((e = maildir_create(base ? base : "", path, dir, err)) != 0)
				return e;
			continue;
		}
		if (e == EOPNOTSUPP || e == EISDIR || e == EINVAL || e == ENOTSUP) {
			atomic_store(&tmpfile_broken, 1);
			return -1;
		}
		errbuf_set(err, "create maildir file in %s: %s", tmpdir, strerror(e));
		return e;
	}
	if (fsync_writev_all(fd, (struct iovec *)(uintptr_t)iov, 2) < 0) {
		e = errno;
		errbuf_set(err, "write maildir file in %s: %s", tmpdir, strerror(e));
		close(fd);
		return e;
	}
	if (fsync(fd) < 0) {
		e = errno;
		errbuf_set(err, "fsync maildir file in %s: %s", tmpdir, strerror(e));
		close(fd);
		return e;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, dst, AT_SYMLINK_FOLLOW) < 0) {
		e = errno;
		close(fd);
		if (e == ENOENT || e == EPERM || e == EXDEV || e == ENOTSUP ||
		    e == EOPNOTSUPP) {
			/* No /proc, or links not allowed: use tmp/ from now on. */
			atomic_store(&tmpfile_broken, 1);
			return -1;
		}
		errbuf_set(err, "link maildir file to %s: %s", dst, strerror(e));
		return e;
	}
	if (close(fd) < 0) {
		e = errno;
		errbuf_set(err, "close maildir file %s: %s", dst, strerror(e));
		(void)unlink(dst);
		return e;
	}
	/* The file is fsynced; its name in new/ (cur/) must be durable too. */
	if (fsync_dir(ddir) < 0) {
		e = errno;
		errbuf_set(err, "fsync maildir directory %s: %s", ddir, strerror(e));
		(void)unlink(dst);
		return e;
	}
	return 0;
}
#endif

void
maildir_use_tmpfile(int on)
{
#ifdef O_TMPFILE
	atomic_store(&tmpfile_broken, on ? 0 : 1);
#else
	(void)on;
#endif
}

/* ---- keywords (Dovecot's dovecot-keywords file) ---- */

#define KW_FILE		"dovecot-keywords"
#define KW_MAX		26
#define KW_FILE_MAX	65536
#define KW_LOCK_STALE	30	/* seconds: Dovecot's dotlock stale timeout */
#define KW_LOCK_TRIES	200	/* x 25 ms */

/* An IMAP atom (RFC 3501 flag-keyword): printable ASCII without
 * atom-specials, not starting with '\'. */
static int
kw_atom_ok(const char *k)
{
	size_t n = 0;

	if (*k == '\0' || *k == '\\')
		return 0;
	for (; *k; k++, n++)
		if ((unsigned char)*k <= ' ' || (unsigned char)*k >= 127
		    || strchr("(){%*\"\\]", *k) != NULL)
			return 0;
	return n <= 128;
}

static void
kw_free(char *names[KW_MAX])
{
	for (int i = 0; i < KW_MAX; i++) {
		free(names[i]);
		names[i] = NULL;
	}
}

/* Reads "IDX NAME" lines; a missing file is empty. 0 or errno + err. */
static int
kw_read(const char *path, char *names[KW_MAX], struct errbuf *err)
{
	char buf[KW_FILE_MAX + 1], *line, *save = NULL;
	ssize_t n;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), e;

	kw_free(names);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		e = errno;
		errbuf_set(err, "open %s: %s", path, strerror(e));
		return e;
	}
	while (len < KW_FILE_MAX
	       && (n = read(fd, buf + len, KW_FILE_MAX - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			e = errno;
			close(fd);
			errbuf_set(err, "read %s: %s", path, strerror(e));
			return e;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *end;
		long idx = strtol(line, &end, 10);

		if (end == line || *end != ' ' || idx < 0 || idx >= KW_MAX
		    || names[idx] != NULL || !kw_atom_ok(end + 1))
			continue;	/* Dovecot skips what it cannot use */
		names[idx] = strdup(end + 1);
	}
	return 0;
}

static int
kw_find(char *const names[KW_MAX], const char *k)
{
	for (int i = 0; i < KW_MAX; i++)
		if (names[i] && strcasecmp(names[i], k) == 0)
			return i;
	return -1;
}

/* Dovecot's dotlock: O_EXCL create of PATH.lock, stale after 30 s. */
static int
kw_lock(const char *lock, struct errbuf *err)
{
	struct stat sb;
	int fd, e;

	for (int tries = 0; tries < KW_LOCK_TRIES; tries++) {
		fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		e = errno;
		if (e != EEXIST) {
			errbuf_set(err, "create %s: %s", lock, strerror(e));
			return -e;
		}
		if (stat(lock, &sb) == 0 && sb.st_mtime + KW_LOCK_STALE < time(NULL))
			(void)unlink(lock);
		else
			usleep(25000);
	}
	errbuf_set(err, "%s: locked by another process for too long", lock);
	return -EAGAIN;
}

int
maildir_keywords(const char *dir, const char *const *kw, size_t n,
		 char out[27], size_t *dropped_r, struct errbuf *err)
{
	char *names[KW_MAX] = { NULL };
	char path[PATH_MAX], lock[PATH_MAX];
	size_t o = 0, missing = 0;
	int e, fd;

	*dropped_r = 0;
	out[0] = '\0';
	if (snprintf(path, sizeof(path), "%s" KW_FILE, dir) >= (int)sizeof(path)
	    || snprintf(lock, sizeof(lock), "%s.lock", path) >= (int)sizeof(lock)) {
		errbuf_set(err, "maildir path too long: %s", dir);
		return ENAMETOOLONG;
	}
	if ((e = kw_read(path, names, err)) != 0)
		return e;
	for (size_t i = 0; i < n; i++)
		if (kw_atom_ok(kw[i]) && kw_find(names, kw[i]) < 0)
			missing++;
	if (missing > 0) {
		struct iovec iov;
		char *text = NULL;
		size_t tl = 0;
		FILE *mem;

		if ((fd = kw_lock(lock, err)) < 0)
			goto fail_errno;
		/* under the lock: the file as it is now, plus ours */
		if ((e = kw_read(path, names, err)) != 0) {
			close(fd);
			(void)unlink(lock);
			kw_free(names);
			return e;
		}
		for (size_t i = 0; i < n; i++) {
			int k;

			if (!kw_atom_ok(kw[i]) || kw_find(names, kw[i]) >= 0)
				continue;
			for (k = 0; k < KW_MAX && names[k]; k++)
				;
			if (k < KW_MAX)
				names[k] = strdup(kw[i]);
		}
		if ((mem = open_memstream(&text, &tl)) == NULL) {
			e = errno;
			close(fd);
			(void)unlink(lock);
			kw_free(names);
			errbuf_set(err, "keywords: %s", strerror(e));
			return e;
		}
		for (int k = 0; k < KW_MAX; k++)
			if (names[k])
				fprintf(mem, "%d %s\n", k, names[k]);
		fclose(mem);
		iov.iov_base = text;
		iov.iov_len = tl;
		if (fsync_writev_all(fd, &iov, 1) < 0 || fsync(fd) < 0
		    || close(fd) < 0 || rename(lock, path) < 0) {
			e = errno;
			errbuf_set(err, "write %s: %s", path, strerror(e));
			(void)unlink(lock);
			free(text);
			kw_free(names);
			return e;
		}
		free(text);
		if (fsync_dir(dir) < 0) {
			e = errno;
			errbuf_set(err, "fsync maildir directory %s: %s", dir,
				   strerror(e));
			kw_free(names);
			return e;
		}
	}
	for (size_t i = 0; i < n; i++) {
		int k = kw_atom_ok(kw[i]) ? kw_find(names, kw[i]) : -1;

		if (k < 0) {
			(*dropped_r)++;
			continue;
		}
		if (memchr(out, 'a' + k, o) == NULL && o < KW_MAX)
			out[o++] = (char)('a' + k);
	}
	out[o] = '\0';
	kw_free(names);
	return 0;
fail_errno:
	kw_free(names);
	return -fd;
}

int
maildir_deliver(const char *base, const char *path,
		const struct maildir_msg *msg, char *name_r, size_t name_size,
		struct errbuf *err)
{
	char dir[PATH_MAX], name[512], tmp[PATH_MAX], dst[PATH_MAX];
	char ddir[PATH_MAX];
	char flags[MAILDIR_MAX_FLAGS * 2 + 1];
	char allflags[MAILDIR_MAX_FLAGS * 2 + 1];
	const char *mflags = msg->flags;
	struct iovec iov[2];
	struct timeval tv;
	size_t plen, size;
	int fd = -1, n, e, tries;

	errbuf_clear(err);
	if (path == NULL || path[0] != '/' || (plen = strlen(path)) < 2
	    || path[plen - 1] != '/') {
		errbuf_set(err, "maildir path must be absolute and end in '/': %s",
			   path ? path : "(null)");
		return EINVAL;
	}
	if (!path_safe(path)) {
		errbuf_set(err, "unsafe maildir path: %s", path);
		return EINVAL;
	}
	if (msg->folder) {
		if (msg->folder[0] == '\0' || msg->folder[0] == '.'
		    || strchr(msg->folder, '/') != NULL
		    || msg->folder[strlen(msg->folder) - 1] == '.'
		    || strstr(msg->folder, "..") != NULL) {
			errbuf_set(err, "bad maildir folder name: %s", msg->folder);
			return EINVAL;
		}
		n = snprintf(dir, sizeof(dir), "%s.%s/", path, msg->folder);
	} else {
		n = snprintf(dir, sizeof(dir), "%s", path);
	}
	if (n < 0 || (size_t)n >= sizeof(dir) - 64) {
		errbuf_set(err, "maildir path too long: %s", path);
		return ENAMETOOLONG;
	}
	if (msg->nkeywords > 0) {
		/* keyword letters need the folder's dovecot-keywords file */
		char kl[27], cur[PATH_MAX];
		struct stat sb;
		size_t dropped = 0;

		if (snprintf(cur, sizeof(cur), "%scur", dir) >= (int)sizeof(cur)) {
			errbuf_set(err, "maildir path too long: %s", dir);
			return ENAMETOOLONG;
		}
		if (stat(cur, &sb) < 0
		    && (e = maildir_create(base ? base : "", path, dir, err)) != 0)
			return e;
		if ((e = maildir_keywords(dir, msg->keywords, msg->nkeywords, kl,
					  &dropped, err)) != 0)
			return e;
		snprintf(allflags, sizeof(allflags), "%.26s%s",
			 msg->flags ? msg->flags : "", kl);
		mflags = allflags;
	}
	if (mflags && flags_norm(mflags, flags) < 0) {
		errbuf_set(err, "bad maildir flags: %s", mflags);
		return EINVAL;
	}
	pthread_once(&host_once, host_init);
	size = msg->prepend_len + msg->len;
	gettimeofday(&tv, NULL);
	n = snprintf(name, sizeof(name), "%lld.M%ldP%ld_%lu.%s,S=%zu",
		     (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
		     (unsigned long)atomic_fetch_add(&maildir_seq, 1), host_name,
		     size);
	if (n < 0 || (size_t)n >= sizeof(name)) {
		errbuf_set(err, "maildir file name too long");
		return ENAMETOOLONG;
	}
	if (snprintf(ddir, sizeof(ddir), "%s%s", dir, mflags ? "cur" : "new")
	    >= (int)sizeof(ddir)
	    || snprintf(tmp, sizeof(tmp), "%stmp/%s", dir, name) >= (int)sizeof(tmp)
	    || (mflags
		? snprintf(dst, sizeof(dst), "%scur/%s:2,%s", dir, name, flags)
		: snprintf(dst, sizeof(dst), "%snew/%s", dir, name))
	       >= (int)sizeof(dst)) {
		errbuf_set(err, "maildir path too long: %s", dir);
		return ENAMETOOLONG;
	}

	iov[0].iov_base = (void *)(uintptr_t)msg->prepend;
	iov[0].iov_len = msg->prepend ? msg->prepend_len : 0;
	iov[1].iov_base = (void *)(uintptr_t)msg->content;
	iov[1].iov_len = msg->len;
#ifdef O_TMPFILE
	e = deliver_tmpfile(base, path, dir, ddir, dst, iov, err);
	if (e >= 0) {
		if (e == 0)
			goto delivered;
		return e;
	}
	errbuf_clear(err);
#endif

	/* Fast path: the maildir exists. Create it only when tmp/ is missing. */
	for (tries = 0;; tries++) {
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		e = errno;
		if (e != ENOENT || tries > 0) {
			errbuf_set(err, "create maildir file %s: %s", tmp, strerror(e));
			return e;
		}
		if ((e = maildir_create(base ? base : "", path, dir, err)) != 0)
			return e;
	}
	if (fsync_writev_all(fd, iov, 2) < 0) {
		e = errno;
		errbuf_set(err, "write maildir file %s: %s", tmp, strerror(e));
		goto fail;
	}
	if (fsync(fd) < 0) {
		e = errno;
		errbuf_set(err, "fsync maildir file %s: %s", tmp, strerror(e));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		e = errno;
		errbuf_set(err, "close maildir file %s: %s", tmp, strerror(e));
		goto fail;
	}
	fd = -1;
	for (tries = 0;; tries++) {
		int linked = 1;
		if (link(tmp, dst) < 0) {
			e = errno;
			linked = 0;
			if (e == EPERM || e == ENOTSUP || e == EOPNOTSUPP
			    || e == ENOSYS || e == EXDEV || e == EMLINK) {
				if (rename(tmp, dst) == 0)
					linked = 2;
				else
					e = errno;
			}
		}
		if (linked) {
			/* new/ (cur/) must be durable before tmp/ forgets it. */
			if (fsync_dir(ddir) < 0) {
				e = errno;
				errbuf_set(err, "fsync maildir directory %s: %s", ddir,
					   strerror(e));
				/* Deferred and retried: do not leave a copy. */
				(void)unlink(dst);
				(void)unlink(tmp);
				return e;
			}
			if (linked == 1)
				(void)unlink(tmp);
			break;
		}
		if (e == ENOENT && tries == 0
		    && maildir_create(base ? base : "", path, dir, err) == 0)
			continue;
		errbuf_set(err, "link maildir file %s to %s: %s", tmp, dst,
			   strerror(e));
		goto fail;
	}
#ifdef O_TMPFILE
delivered:
#endif
	if (name_r && name_size > 0) {
		if (mflags)
			snprintf(name_r, name_size, "%s:2,%s", name, flags);
		else
			snprintf(name_r, name_size, "%s", name);
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	(void)unlink(tmp);
	return e ? e : EIO;
}
