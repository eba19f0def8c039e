/*
 * quota.c - Maildir++ quota: read, rebuild and append to `maildirsize`
 * in the format Courier's deliverquota and Dovecot's maildir quota
 * backend share, and decide whether a message still fits.
 * Must not: decide bounce vs defer (deliver.c does), log (errors go to
 * the caller's errbuf), hold a lock (Maildir++ relies on O_APPEND writes
 * and rename), or run on the event loop.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/lib/fsync.h"
#include "core/lib/xmalloc.h"
#include "delivery/quota.h"

/* A maildirsize beyond this is not ours to read whole: rebuild it. */
#define QUOTA_READ_MAX	(64 * 1024)

static atomic_uint tmp_seq;

static const char *
skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* A non-negative decimal; *endp after it. -1 if none or overflow. */
static long long
parse_num(const char *p, const char **endp)
{
	long long v = 0;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (LLONG_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	*endp = p;
	return v;
}

int
quota_limits_parse(const char *line, struct quota_limits *lim)
{
	const char *p = skip_ws(line);
	long long v;
	bool seen_s = false, seen_c = false;

	lim->bytes = lim->count = 0;
	while (*p != '\0') {
		if ((v = parse_num(p, &p)) < 0)
			return -1;
		if ((*p == 'S' || *p == 's') && !seen_s) {
			lim->bytes = v;
			seen_s = true;
		} else if ((*p == 'C' || *p == 'c') && !seen_c) {
			lim->count = v;
			seen_c = true;
		} else
			return -1;
		p = skip_ws(p + 1);
		if (*p == ',')
			p = skip_ws(p + 1);
		else if (*p != '\0')
			return -1;
	}
	return seen_s || seen_c ? 0 : -1;
}

void
quota_limits_format(const struct quota_limits *lim, struct buf *out)
{
	/* Dovecot's order and spelling; an empty limit line would read as
	 * malformed elsewhere, so "no limit" is written as 0S. */
	if (lim->bytes > 0 || lim->count == 0)
		buf_printf(out, "%lldS", lim->bytes);
	if (lim->count > 0)
		buf_printf(out, "%s%lldC", lim->bytes > 0 ? "," : "", lim->count);
}

int
quota_file_parse(const char *text, size_t len, struct quota_limits *lim,
		 struct quota_usage *use)
{
	const char *p = text, *end = text + len, *eol;
	char line[256];
	bool first = true;

	use->bytes = use->count = 0;
	while (p < end) {
		size_t n;

		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;	/* an append in progress */
		n = (size_t)(eol - p);
		if (n >= sizeof(line))
			return -1;
		memcpy(line, p, n);
		line[n] = '\0';
		p = eol + 1;
		if (first) {
			if (quota_limits_parse(line, lim) < 0)
				return -1;
			first = false;
			continue;
		}
		{
			const char *q = skip_ws(line);
			long long b, c;
			int sb = 1, sc = 1;

			if (*q == '\0')
				continue;
			/* deltas are signed: expunges append negative lines */
			if (*q == '-') {
				sb = -1;
				q++;
			}
			if ((b = parse_num(q, &q)) < 0)
				return -1;
			q = skip_ws(q);
			if (*q == '-') {
				sc = -1;
				q++;
			}
			if ((c = parse_num(q, &q)) < 0 || *skip_ws(q) != '\0')
				return -1;
			if (use->bytes > LLONG_MAX / 2 || use->count > LLONG_MAX / 2
			    || b > LLONG_MAX / 4 || c > LLONG_MAX / 4)
				return -1;
			use->bytes += sb * b;
			use->count += sc * c;
		}
	}
	return first ? -1 : 0;
}

/* The ,S=NNN of a Maildir file name, or -1. */
static long long
name_size(const char *name)
{
	const char *p = strstr(name, ",S=");
	const char *e;
	long long v;

	if (p == NULL)
		return -1;
	if ((v = parse_num(p + 3, &e)) < 0 || (*e != '\0' && *e != ',' && *e != ':'))
		return -1;
	return v;
}

/* Adds the messages of one cur/ or new/ directory; missing is empty. */
static int
scan_dir(const char *dir, struct quota_usage *use, struct errbuf *err)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		errbuf_set(err, "open directory %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		long long sz;

		if (de->d_name[0] == '.')
			continue;
		if ((sz = name_size(de->d_name)) < 0) {
			struct stat st;
			char *f = xasprintf("%s/%s", dir, de->d_name);

			/* a message expunged meanwhile simply no longer counts */
			sz = stat(f, &st) == 0 && S_ISREG(st.st_mode) ? st.st_size : -1;
			free(f);
			if (sz < 0)
				continue;
		}
		use->bytes += sz;
		use->count++;
	}
	closedir(d);
	return 0;
}

static int
scan_folder(const char *path, struct quota_usage *use, struct errbuf *err)
{
	char *cur = xasprintf("%scur", path), *nw = xasprintf("%snew", path);
	int rc = scan_dir(cur, use, err) < 0 || scan_dir(nw, use, err) < 0 ? -1 : 0;

	free(cur);
	free(nw);
	return rc;
}

int
quota_scan(const char *maildir, struct quota_usage *use, struct errbuf *err)
{
	DIR *d;
	struct dirent *de;
	int rc = 0;

	use->bytes = use->count = 0;
	if (scan_folder(maildir, use, err) < 0)
		return -1;
	if ((d = opendir(maildir)) == NULL) {
		if (errno == ENOENT)
			return 0;
		errbuf_set(err, "open directory %s: %s", maildir, strerror(errno));
		return -1;
	}
	/* Maildir++ folders: ".Name/" directly below the maildir */
	while (rc == 0 && (de = readdir(d)) != NULL) {
		struct stat st;
		char *p;

		if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0
		    || strcmp(de->d_name, "..") == 0)
			continue;
		p = xasprintf("%s%s/", maildir, de->d_name);
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rc = scan_folder(p, use, err);
		free(p);
	}
	closedir(d);
	return rc;
}

int
quota_recalc(const char *maildir, const struct quota_limits *lim,
	     struct quota_usage *use, struct errbuf *err)
{
	struct buf b;
	char *tmp, *path;
	struct iovec iov;
	int fd, rc = -1;

	if (quota_scan(maildir, use, err) < 0)
		return -1;
	buf_init(&b, 0);
	quota_limits_format(lim, &b);
	buf_printf(&b, "\n%lld %lld\n", use->bytes, use->count);
	path = xasprintf("%s" QUOTA_FILE, maildir);
	tmp = xasprintf("%stmp/%lld.%ld_%u.maildirsize", maildir,
			(long long)time(NULL), (long)getpid(),
			atomic_fetch_add(&tmp_seq, 1));
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT) {
		/* no maildir yet: nothing stored, nothing to write */
		rc = 0;
		goto out;
	}
	if (fd < 0) {
		errbuf_set(err, "create %s: %s", tmp, strerror(errno));
		goto out;
	}
	iov.iov_base = b.data;
	iov.iov_len = b.len;
	if (fsync_writev_all(fd, &iov, 1) < 0 || fsync(fd) < 0) {
		errbuf_set(err, "write %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		errbuf_set(err, "rename %s to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	buf_free(&b);
	free(tmp);
	free(path);
	return rc;
}

static bool
over(const struct quota_limits *lim, const struct quota_usage *use,
     long long add_bytes, long long add_count)
{
	return (lim->bytes > 0 && use->bytes + add_bytes > lim->bytes)
	    || (lim->count > 0 && use->count + add_count > lim->count);
}

/*
 * Reads maildirsize: 1 read and usable, 0 must be rebuilt, -1 error.
 * *old_r: the file is older than QUOTA_RECALC_AGE.
 */
static int
read_file(const char *path, const struct quota_limits *lim, time_t now,
	  struct quota_usage *use, bool *old_r, struct errbuf *err)
{
	struct quota_limits flim;
	struct stat st;
	char *text;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		errbuf_set(err, "open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		errbuf_set(err, "stat %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	*old_r = st.st_mtime + QUOTA_RECALC_AGE < now;
	if (st.st_size >= QUOTA_RECALC_SIZE || st.st_size > QUOTA_READ_MAX) {
		close(fd);
		return 0;
	}
	text = xmalloc((size_t)QUOTA_READ_MAX);
	n = read(fd, text, QUOTA_READ_MAX);
	close(fd);
	if (n < 0) {
		errbuf_set(err, "read %s: %s", path, strerror(errno));
		free(text);
		return -1;
	}
	if (quota_file_parse(text, (size_t)n, &flim, use) < 0
	    || flim.bytes != lim->bytes || flim.count != lim->count
	    || use->bytes < 0 || use->count < 0) {
		free(text);
		return 0;
	}
	free(text);
	return 1;
}

int
quota_check(const char *maildir, const struct quota_limits *lim,
	    long long add_bytes, long long add_count, time_t now,
	    struct quota_usage *use_r, struct errbuf *err)
{
	struct quota_usage use = { 0, 0 };
	char *path = xasprintf("%s" QUOTA_FILE, maildir);
	bool old = false;
	int rc = read_file(path, lim, now, &use, &old, err);

	free(path);
	if (rc < 0)
		return -1;
	/* A stale file may count messages expunged since: look again before
	 * refusing anything (Courier's rule: over quota and 15 minutes old). */
	if (rc == 0 || (over(lim, &use, add_bytes, add_count) && old)) {
		if (quota_recalc(maildir, lim, &use, err) < 0)
			return -1;
	}
	if (use_r)
		*use_r = use;
	return over(lim, &use, add_bytes, add_count) ? 1 : 0;
}

int
quota_add(const char *maildir, const struct quota_limits *lim,
	  long long bytes, long long count, struct errbuf *err)
{
	char line[64];
	char *path = xasprintf("%s" QUOTA_FILE, maildir);
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	int n, rc = 0;

	if (fd < 0) {
		struct quota_usage use;

		if (errno == ENOENT)
			rc = quota_recalc(maildir, lim, &use, err);
		else {
			errbuf_set(err, "open %s: %s", path, strerror(errno));
			rc = -1;
		}
		free(path);
		return rc;
	}
	n = snprintf(line, sizeof(line), "%lld %lld\n", bytes, count);
	/* one write(): O_APPEND makes it atomic against other appenders */
	if (write(fd, line, (size_t)n) != n) {
		errbuf_set(err, "append to %s: %s", path, strerror(errno));
		rc = -1;
	}
	if (close(fd) < 0 && rc == 0) {
		errbuf_set(err, "close %s: %s", path, strerror(errno));
		rc = -1;
	}
	free(path);
	return rc;
}
