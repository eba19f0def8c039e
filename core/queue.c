/*
 * queue.c - the durable on-disk queue: one file per message, per state dir.
 * Writes, reads, validates, updates in place and moves queue files.
 * Must not: log (errors go back in an errbuf), trust file contents (every
 * file is parsed as untrusted input), or run on the event loop thread.
 *
 * File format (version 1), text envelope then raw content:
 *   "FACTEUR-QUEUE 1\n"
 *   "sched AAAAA NNNNNNNNNNNNNNNNNNNN F\n"  attempts (5 digits), next_attempt
 *       (20 digits) and flags (one hex digit: QUEUE_F_*), fixed width at a
 *       fixed offset: rewritten in place. Files written before the flags
 *       existed have no " F": they are read (flags 0) and rewritten in
 *       their own width, so they can never record a flag.
 *   "id ID\n"  "arrival SEC.USEC6\n"
 *   "sender V\n" "client_name V\n" "client_addr V\n" "helo V\n"
 *   "protocol V\n" "envid V\n" "ret V\n"  ["filter V\n"]  "nrcpt N\n"
 *       (filter: the content_filter "transport:nexthop" the message was
 *       received with; the line is absent when there was none, so files
 *       without it, older ones too, read as unfiltered)
 *   N x "rcpt S NOTIFY ADDR<TAB>ORIG<TAB>ORCPT\n"  S = 'R' pending or
 *       'D' done, at a fixed position (line + 5): pwrite + fdatasync
 *   "size N\n" then exactly N content bytes and the end of the file.
 * Values V are escaped: "\\" "\n" "\r" "\t" stand for themselves, and "\-"
 * alone means NULL (absent). Anything else is a corrupt file.
 *
 * Durability: the file is written with one writev and fsynced, then renamed
 * (never replacing) from incoming/ to active/ and active/ is fsynced. After
 * that fsync the entry is durable and its data was durable before the
 * rename, so incoming/ itself need not be fsynced: a crash can at worst
 * leave a stale incoming/ name, which queue_clean_incoming removes. A file
 * removed with queue_remove needs no directory fsync when all its
 * recipients are marked done: if it comes back after a crash, it has
 * nothing left to deliver. queue_defer also sets the file's mtime to the
 * next attempt time, so a scanner can find due messages with a stat.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/queue.h"
#include "core/lib/fsync.h"
#include "core/lib/xmalloc.h"

#define QF_MAGIC	"FACTEUR-QUEUE 1\n"
#define QF_SCHED_OFF	(sizeof(QF_MAGIC) - 1)
#define QF_SCHED_FMT	"sched %05d %020lld %X\n"
#define QF_SCHED_LEN	(6 + 5 + 1 + 20 + 2 + 1)
#define QF_SCHED_OLDLEN	(6 + 5 + 1 + 20 + 1)	/* without the flags */
#define QF_MAX_ATTEMPTS	99999
/* Bounds on untrusted files: the envelope part, recipients, content. */
#define QF_MAX_HEADER	(16u * 1024 * 1024)
#define QF_MAX_RCPT	1000000u
#define QF_MAX_CONTENT	((long long)1 << 40)

static const char *const state_dirs[] = {
	[QUEUE_INCOMING] = "incoming",
	[QUEUE_ACTIVE] = "active",
	[QUEUE_DEFERRED] = "deferred",
	[QUEUE_HOLD] = "hold",
	[QUEUE_CORRUPT] = "corrupt",
};

const char *
queue_state_name(enum queue_state st)
{
	if ((unsigned)st >= sizeof(state_dirs) / sizeof(state_dirs[0]))
		return "?";
	return state_dirs[st];
}

static int
qpath(char *out, size_t size, const char *qdir, enum queue_state st,
      const char *id, struct errbuf *err)
{
	int n;

	if (id)
		n = snprintf(out, size, "%s/%s/%s", qdir, queue_state_name(st), id);
	else
		n = snprintf(out, size, "%s/%s", qdir, queue_state_name(st));
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		errbuf_set(err, "queue path too long: %s/%s", qdir,
			   queue_state_name(st));
		return -1;
	}
	return 0;
}

static bool
id_valid(const char *s)
{
	size_t i;

	for (i = 0; i < QUEUE_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return s[i] == '\0';
}

static int
sync_dir(const char *path, struct errbuf *err)
{
	if (fsync_dir(path) < 0) {
		int saved = errno;

		errbuf_set(err, "fsync %s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	return 0;
}

int
queue_init(const char *qdir, struct errbuf *err)
{
	char path[PATH_MAX];
	unsigned st;

	if (mkdir(qdir, 0700) < 0 && errno != EEXIST) {
		int saved = errno;
		errbuf_set(err, "create queue directory %s: %s", qdir, strerror(saved));
		errno = saved;
		return -1;
	}
	for (st = 0; st < sizeof(state_dirs) / sizeof(state_dirs[0]); st++) {
		if (qpath(path, sizeof(path), qdir, st, NULL, err) < 0)
			return -1;
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			int saved = errno;
			errbuf_set(err, "create queue directory %s: %s", path,
				   strerror(saved));
			errno = saved;
			return -1;
		}
	}
	return sync_dir(qdir, err);
}

/*
 * IDs are strictly increasing within the process: the time is used when it
 * moved forward, else the last ID's sequence is incremented (carrying into
 * the microseconds), so a clock step backwards never repeats an ID.
 */
static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t id_last_sec;
static uint32_t id_last_usec, id_last_seq;

void
queue_id_new(char id[QUEUE_ID_SIZE])
{
	struct timeval tv;
	uint64_t sec;
	uint32_t usec, seq;

	gettimeofday(&tv, NULL);
	sec = (uint64_t)tv.tv_sec & 0xFFFFFFFFFULL;
	usec = (uint32_t)tv.tv_usec;
	pthread_mutex_lock(&id_lock);
	if (sec > id_last_sec || (sec == id_last_sec && usec > id_last_usec)) {
		seq = 0;
	} else {
		sec = id_last_sec;
		usec = id_last_usec;
		seq = id_last_seq + 1;
		if (seq > 0xFFF) {
			seq = 0;
			if (++usec > 999999) {
				usec = 0;
				sec++;
			}
		}
	}
	id_last_sec = sec;
	id_last_usec = usec;
	id_last_seq = seq;
	pthread_mutex_unlock(&id_lock);
	snprintf(id, QUEUE_ID_SIZE, "%09llX%05X%03X",
		 (unsigned long long)(sec & 0xFFFFFFFFFULL), (unsigned)usec & 0xFFFFFu,
		 (unsigned)seq & 0xFFFu);
}

/* --- writing --- */

static void
put_escaped(struct buf *b, const char *s)
{
	const char *p, *run;

	if (s == NULL) {
		buf_puts(b, "\\-");
		return;
	}
	for (run = p = s; *p; p++) {
		const char *e = NULL;
		switch (*p) {
		case '\\': e = "\\\\"; break;
		case '\n': e = "\\n"; break;
		case '\r': e = "\\r"; break;
		case '\t': e = "\\t"; break;
		default: continue;
		}
		buf_append(b, run, (size_t)(p - run));
		buf_append(b, e, 2);
		run = p + 1;
	}
	buf_append(b, run, (size_t)(p - run));
}

static void
put_field(struct buf *b, const char *key, const char *v)
{
	buf_puts(b, key);
	buf_putc(b, ' ');
	put_escaped(b, v);
	buf_putc(b, '\n');
}

/* The sched record; without the flags (and its length) when !flags_rec. */
static int
sched_format(char out[QF_SCHED_LEN + 1], int attempts, time_t next,
	     unsigned flags, bool flags_rec)
{
	int n;

	if (attempts < 0)
		attempts = 0;
	if (attempts > QF_MAX_ATTEMPTS)
		attempts = QF_MAX_ATTEMPTS;
	if (next < 0)
		next = 0;
	n = snprintf(out, QF_SCHED_LEN + 1, QF_SCHED_FMT, attempts,
		     (long long)next, flags & 0xFu);
	if (!flags_rec) {
		out[QF_SCHED_OLDLEN - 1] = '\n';
		out[QF_SCHED_OLDLEN] = '\0';
		n = QF_SCHED_OLDLEN;
	}
	return n;
}

/* Builds the envelope; sets status_off for every recipient. */
static void
envelope_format(struct buf *b, struct queue_env *env, size_t len)
{
	char sched[QF_SCHED_LEN + 1];
	size_t i;

	buf_puts(b, QF_MAGIC);
	env->flags_rec = true;
	sched_format(sched, env->attempts, env->next_attempt, env->flags, true);
	buf_puts(b, sched);
	buf_printf(b, "id %s\narrival %lld.%06ld\n", env->id,
		   (long long)env->arrival, env->arrival_usec);
	put_field(b, "sender", env->sender ? env->sender : "");
	put_field(b, "client_name", env->client_name);
	put_field(b, "client_addr", env->client_addr);
	put_field(b, "helo", env->helo);
	put_field(b, "protocol", env->protocol);
	put_field(b, "envid", env->envid);
	put_field(b, "ret", env->ret);
	if (env->filter != NULL && env->filter[0] != '\0')
		put_field(b, "filter", env->filter);
	buf_printf(b, "nrcpt %zu\n", env->nrcpt);
	for (i = 0; i < env->nrcpt; i++) {
		struct queue_rcpt *r = &env->rcpt[i];
		int status = r->status == QUEUE_RCPT_DONE ? QUEUE_RCPT_DONE
							   : QUEUE_RCPT_PENDING;
		r->status = status;
		buf_puts(b, "rcpt ");
		r->status_off = (off_t)b->len;
		buf_printf(b, "%c %u ", status, r->notify);
		put_escaped(b, r->addr ? r->addr : "");
		buf_putc(b, '\t');
		put_escaped(b, r->orig);
		buf_putc(b, '\t');
		put_escaped(b, r->orcpt);
		buf_putc(b, '\n');
	}
	buf_printf(b, "size %zu\n", len);
}

/* rename without replacing an existing target (IDs must never collide). */
static int
rename_noreplace(const char *from, const char *to)
{
#if defined(__linux__) && defined(RENAME_NOREPLACE)
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
#endif
	if (link(from, to) < 0)
		return -1;
	(void)unlink(from);
	return 0;
}

int
queue_write(const char *qdir, struct queue_env *env, const char *content,
	    size_t len, bool hold, struct errbuf *err)
{
	char ipath[PATH_MAX], tpath[PATH_MAX], tdir[PATH_MAX];
	enum queue_state to = hold ? QUEUE_HOLD : QUEUE_ACTIVE;
	struct buf hdr;
	struct iovec iov[2];
	int fd = -1, saved, tries;

	if (env->nrcpt == 0 || env->nrcpt > QF_MAX_RCPT) {
		errbuf_set(err, "queue file: bad recipient count %zu", env->nrcpt);
		errno = EINVAL;
		return -1;
	}
	if (env->id[0] == '\0')
		queue_id_new(env->id);
	if (!id_valid(env->id)) {
		errbuf_set(err, "queue file: bad queue ID");
		errno = EINVAL;
		return -1;
	}
	if (qpath(tdir, sizeof(tdir), qdir, to, NULL, err) < 0)
		return -1;
	/* A fresh ID on a collision (another process, or a clock step). */
	for (tries = 0;; tries++) {
		if (qpath(ipath, sizeof(ipath), qdir, QUEUE_INCOMING, env->id, err) < 0
		    || qpath(tpath, sizeof(tpath), qdir, to, env->id, err) < 0)
			return -1;
		fd = open(ipath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		saved = errno;
		if (saved != EEXIST || tries >= 3) {
			errbuf_set(err, "create queue file %s: %s", ipath,
				   strerror(saved));
			errno = saved;
			return -1;
		}
		queue_id_new(env->id);
	}
	env->size = (long long)len;
	buf_init(&hdr, 0);
	envelope_format(&hdr, env, len);
	iov[0].iov_base = hdr.data;
	iov[0].iov_len = hdr.len;
	iov[1].iov_base = (void *)(uintptr_t)content;
	iov[1].iov_len = len;
	if (fsync_writev_all(fd, iov, len ? 2 : 1) < 0) {
		saved = errno;
		errbuf_set(err, "write queue file %s: %s", ipath, strerror(saved));
		goto fail;
	}
	if (fsync(fd) < 0) {
		saved = errno;
		errbuf_set(err, "fsync queue file %s: %s", ipath, strerror(saved));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		saved = errno;
		errbuf_set(err, "close queue file %s: %s", ipath, strerror(saved));
		goto fail;
	}
	fd = -1;
	if (rename_noreplace(ipath, tpath) < 0) {
		saved = errno;
		errbuf_set(err, "rename queue file %s to %s: %s", ipath, tpath,
			   strerror(saved));
		goto fail;
	}
	buf_free(&hdr);
	if (sync_dir(tdir, err) < 0) {
		saved = errno;
		/* Not acknowledged: take it back rather than deliver it twice. */
		(void)unlink(tpath);
		errno = saved;
		return -1;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	(void)unlink(ipath);
	buf_free(&hdr);
	errno = saved;
	return -1;
}

/* --- reading --- */

struct qparse {
	const char *p, *end;	/* unparsed part of the header buffer */
	const char *base;	/* start of the buffer (offset 0 of the file) */
	bool        eof;	/* the buffer holds the whole file */
	const char *why;	/* reason on failure */
	bool        more;	/* failure only because the buffer is short */
};

/* Next line without its "\n"; NULL if none (sets why/more). */
static const char *
next_line(struct qparse *q, size_t *len_r)
{
	const char *nl, *line;

	nl = memchr(q->p, '\n', (size_t)(q->end - q->p));
	if (nl == NULL) {
		if (q->eof)
			q->why = "truncated envelope";
		else
			q->more = true;
		return NULL;
	}
	line = q->p;
	*len_r = (size_t)(nl - line);
	q->p = nl + 1;
	return line;
}

/* "KEY VALUE": VALUE's bounds, or NULL with a reason. */
static const char *
keyed_line(struct qparse *q, const char *key, size_t *len_r)
{
	size_t len, klen = strlen(key);
	const char *line;

	if ((line = next_line(q, &len)) == NULL)
		return NULL;
	if (len <= klen || memcmp(line, key, klen) != 0 || line[klen] != ' ') {
		q->why = key;	/* caller turns this into "expected KEY" */
		return NULL;
	}
	*len_r = len - klen - 1;
	return line + klen + 1;
}

/*
 * Unescapes s[0..len) into an owned string (*out, NULL for "\-").
 * -1 on a bad escape or a raw NUL/tab.
 */
static int
unescape(const char *s, size_t len, char **out)
{
	char *d, *o;
	size_t i;

	*out = NULL;
	if (len == 2 && s[0] == '\\' && s[1] == '-')
		return 0;
	o = d = xmalloc(len + 1);
	for (i = 0; i < len; i++) {
		char c = s[i];
		if (c == '\0' || c == '\t' || c == '\r') {
			free(o);
			return -1;
		}
		if (c == '\\') {
			if (++i >= len) {
				free(o);
				return -1;
			}
			switch (s[i]) {
			case '\\': c = '\\'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			default:
				free(o);
				return -1;
			}
		}
		*d++ = c;
	}
	*d = '\0';
	*out = o;
	return 0;
}

/* Decimal digits only (no sign, no spaces), value <= max. */
static int
parse_ull(const char *s, size_t len, unsigned long long max,
	  unsigned long long *r)
{
	unsigned long long v = 0;
	size_t i;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (max - (unsigned)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*r = v;
	return 0;
}

/* Like keyed_line but an empty value ("key \n") is fine. */
static const char *
keyed_line0(struct qparse *q, const char *key, size_t *len_r)
{
	size_t len, klen = strlen(key);
	const char *line;

	if ((line = next_line(q, &len)) == NULL)
		return NULL;
	if (len < klen + 1 || memcmp(line, key, klen) != 0 || line[klen] != ' ') {
		q->why = key;
		return NULL;
	}
	*len_r = len - klen - 1;
	return line + klen + 1;
}

static int
text_field(struct qparse *q, const char *key, char **out)
{
	const char *v;
	size_t len;

	if ((v = keyed_line0(q, key, &len)) == NULL)
		return -1;
	if (unescape(v, len, out) < 0) {
		q->why = key;
		return -1;
	}
	return 0;
}

static int
parse_rcpt(struct qparse *q, struct queue_rcpt *r)
{
	const char *v, *end, *sp, *t1, *t2;
	unsigned long long notify;
	size_t len;

	if ((v = keyed_line0(q, "rcpt", &len)) == NULL)
		return -1;
	end = v + len;
	q->why = "rcpt";
	if (len < 4 || (v[0] != QUEUE_RCPT_PENDING && v[0] != QUEUE_RCPT_DONE)
	    || v[1] != ' ')
		return -1;
	r->status = v[0];
	r->status_off = (off_t)(v - q->base);
	if ((sp = memchr(v + 2, ' ', (size_t)(end - v - 2))) == NULL
	    || parse_ull(v + 2, (size_t)(sp - v - 2), UINT32_MAX, &notify) < 0)
		return -1;
	r->notify = (unsigned)notify;
	sp++;
	if ((t1 = memchr(sp, '\t', (size_t)(end - sp))) == NULL
	    || (t2 = memchr(t1 + 1, '\t', (size_t)(end - t1 - 1))) == NULL)
		return -1;
	if (unescape(sp, (size_t)(t1 - sp), &r->addr) < 0 || r->addr == NULL
	    || unescape(t1 + 1, (size_t)(t2 - t1 - 1), &r->orig) < 0
	    || unescape(t2 + 1, (size_t)(end - t2 - 1), &r->orcpt) < 0)
		return -1;
	q->why = NULL;
	return 0;
}

/*
 * Parses the envelope in q. Returns the content offset, or -1 with q->why
 * (or q->more when the buffer ended before the envelope did).
 */
static long long
envelope_parse(struct qparse *q, const char *id, struct queue_env *env,
	       unsigned long long *size_r)
{
	unsigned long long n, usec, nrcpt, size, att, next;
	const char *v, *dot;
	size_t len, i;

	if ((size_t)(q->end - q->p) < QF_SCHED_OFF + QF_SCHED_OLDLEN) {
		if (!q->eof) {
			q->more = true;
			return -1;
		}
	}
	if ((size_t)(q->end - q->p) < QF_SCHED_OFF
	    || memcmp(q->p, QF_MAGIC, QF_SCHED_OFF) != 0) {
		q->why = "not a queue file or unsupported version";
		return -1;
	}
	q->p += QF_SCHED_OFF;
	if ((v = keyed_line(q, "sched", &len)) == NULL)
		return -1;
	if ((len != 5 + 1 + 20 && len != 5 + 1 + 20 + 2) || v[5] != ' '
	    || parse_ull(v, 5, QF_MAX_ATTEMPTS, &att) < 0
	    || parse_ull(v + 6, 20, (unsigned long long)INT64_MAX, &next) < 0) {
		q->why = "sched";
		return -1;
	}
	env->flags = 0;
	env->flags_rec = len == 5 + 1 + 20 + 2;
	if (env->flags_rec) {
		char f = v[27];

		if (v[26] != ' ' || !((f >= '0' && f <= '9') || (f >= 'A' && f <= 'F'))) {
			q->why = "sched";
			return -1;
		}
		env->flags = (unsigned)(f <= '9' ? f - '0' : f - 'A' + 10);
	}
	env->attempts = (int)att;
	env->next_attempt = (time_t)next;
	if ((v = keyed_line(q, "id", &len)) == NULL)
		return -1;
	if (len != QUEUE_ID_LEN || memcmp(v, id, QUEUE_ID_LEN) != 0) {
		q->why = "id (does not match the file name)";
		return -1;
	}
	memcpy(env->id, id, QUEUE_ID_SIZE);
	if ((v = keyed_line(q, "arrival", &len)) == NULL)
		return -1;
	if ((dot = memchr(v, '.', len)) == NULL
	    || parse_ull(v, (size_t)(dot - v), (unsigned long long)INT64_MAX, &n) < 0
	    || (size_t)(v + len - dot - 1) != 6
	    || parse_ull(dot + 1, 6, 999999, &usec) < 0) {
		q->why = "arrival";
		return -1;
	}
	env->arrival = (time_t)n;
	env->arrival_usec = (long)usec;
	if (text_field(q, "sender", &env->sender) < 0)
		return -1;
	if (env->sender == NULL) {
		q->why = "sender";
		return -1;
	}
	if (text_field(q, "client_name", &env->client_name) < 0
	    || text_field(q, "client_addr", &env->client_addr) < 0
	    || text_field(q, "helo", &env->helo) < 0
	    || text_field(q, "protocol", &env->protocol) < 0
	    || text_field(q, "envid", &env->envid) < 0
	    || text_field(q, "ret", &env->ret) < 0)
		return -1;
	/* optional "filter V" (content_filter) */
	{
		const char *nl = memchr(q->p, '\n', (size_t)(q->end - q->p));

		if (nl == NULL && !q->eof) {
			q->more = true;
			return -1;
		}
		if (nl != NULL && (size_t)(nl - q->p) > 7
		    && memcmp(q->p, "filter ", 7) == 0
		    && text_field(q, "filter", &env->filter) < 0)
			return -1;
	}
	if ((v = keyed_line(q, "nrcpt", &len)) == NULL)
		return -1;
	if (parse_ull(v, len, QF_MAX_RCPT, &nrcpt) < 0 || nrcpt == 0) {
		q->why = "nrcpt";
		return -1;
	}
	/* Each record is at least 10 bytes: do not trust nrcpt for memory. */
	if (nrcpt > (unsigned long long)(q->end - q->p) / 10 + 1) {
		if (q->eof) {
			q->why = "nrcpt (more than the file holds)";
			return -1;
		}
		q->more = true;
		return -1;
	}
	env->rcpt = xcalloc((size_t)nrcpt, sizeof(*env->rcpt));
	env->nrcpt = (size_t)nrcpt;
	for (i = 0; i < env->nrcpt; i++)
		if (parse_rcpt(q, &env->rcpt[i]) < 0)
			return -1;
	if ((v = keyed_line(q, "size", &len)) == NULL)
		return -1;
	if (parse_ull(v, len, (unsigned long long)QF_MAX_CONTENT, &size) < 0) {
		q->why = "size";
		return -1;
	}
	env->size = (long long)size;
	*size_r = size;
	return (long long)(q->p - q->base);
}

static ssize_t
pread_all(int fd, void *b, size_t n, off_t off)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = pread(fd, (char *)b + got, n - got, off + (off_t)got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static void
rcpt_free_all(struct queue_env *env)
{
	size_t i;

	for (i = 0; i < env->nrcpt; i++) {
		free(env->rcpt[i].orig);
		free(env->rcpt[i].addr);
		free(env->rcpt[i].orcpt);
	}
	free(env->rcpt);
	env->rcpt = NULL;
	env->nrcpt = 0;
}

void
queue_env_free(struct queue_env *env)
{
	if (env == NULL)
		return;
	rcpt_free_all(env);
	xfree(&env->sender);
	xfree(&env->client_name);
	xfree(&env->client_addr);
	xfree(&env->helo);
	xfree(&env->protocol);
	xfree(&env->envid);
	xfree(&env->filter);
	xfree(&env->ret);
}

int
queue_read(const char *qdir, enum queue_state st, const char *id,
	   struct queue_env *env, struct buf *content_r, struct errbuf *err)
{
	char path[PATH_MAX];
	struct stat sb;
	struct qparse q;
	char *hbuf = NULL;
	size_t hsize = 16384, have = 0;
	unsigned long long size = 0;
	long long off;
	ssize_t r;
	int fd, saved;

	memset(env, 0, sizeof(*env));
	if (id == NULL || !id_valid(id)) {
		errbuf_set(err, "bad queue ID");
		errno = EINVAL;
		return -1;
	}
	if (qpath(path, sizeof(path), qdir, st, id, err) < 0)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		saved = errno;
		errbuf_set(err, "open queue file %s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	if (fstat(fd, &sb) < 0) {
		saved = errno;
		errbuf_set(err, "stat queue file %s: %s", path, strerror(saved));
		goto fail_errno;
	}
	if (!S_ISREG(sb.st_mode)) {
		errbuf_set(err, "queue file %s: not a regular file", path);
		saved = EINVAL;
		goto fail_errno;
	}
	for (;;) {
		if (hsize > (size_t)sb.st_size)
			hsize = (size_t)sb.st_size;
		hbuf = xrealloc(hbuf, hsize + 1);
		if (have < hsize) {
			r = pread_all(fd, hbuf + have, hsize - have, (off_t)have);
			if (r < 0) {
				saved = errno;
				errbuf_set(err, "read queue file %s: %s", path,
					   strerror(saved));
				goto fail_errno;
			}
			have += (size_t)r;
		}
		memset(&q, 0, sizeof(q));
		q.base = q.p = hbuf;
		q.end = hbuf + have;
		q.eof = have >= (size_t)sb.st_size;
		queue_env_free(env);
		memset(env, 0, sizeof(*env));
		off = envelope_parse(&q, id, env, &size);
		if (off >= 0)
			break;
		if (!q.more || have >= QF_MAX_HEADER) {
			if (q.more)
				q.why = "envelope too large";
			goto corrupt;
		}
		if (have < hsize) {	/* file shrank under us */
			q.why = "truncated envelope";
			goto corrupt;
		}
		hsize *= 4;
		if (hsize > QF_MAX_HEADER)
			hsize = QF_MAX_HEADER;
	}
	if ((unsigned long long)sb.st_size != (unsigned long long)off + size) {
		q.why = (unsigned long long)sb.st_size < (unsigned long long)off + size
			? "truncated content" : "data after the content";
		goto corrupt;
	}
	if (content_r) {
		size_t inbuf = have - (size_t)off, rest;
		buf_reset(content_r);
		if (content_r->max != 0 && size > content_r->max) {
			errbuf_set(err, "queue file %s: content of %llu bytes exceeds the limit",
				   path, size);
			saved = EFBIG;
			goto fail_errno;
		}
		if (inbuf > size)
			inbuf = (size_t)size;
		if (content_r->cap < (size_t)size + 1) {
			content_r->data = xrealloc(content_r->data, (size_t)size + 1);
			content_r->cap = (size_t)size + 1;
		}
		memcpy(content_r->data, hbuf + off, inbuf);
		rest = (size_t)size - inbuf;
		if (rest > 0) {
			r = pread_all(fd, content_r->data + inbuf, rest,
				      (off_t)(off + (long long)inbuf));
			if (r < 0) {
				saved = errno;
				errbuf_set(err, "read queue file %s: %s", path,
					   strerror(saved));
				goto fail_errno;
			}
			if ((size_t)r != rest) {
				q.why = "truncated content";
				goto corrupt;
			}
		}
		content_r->len = (size_t)size;
		content_r->data[size] = '\0';
	}
	free(hbuf);
	close(fd);
	return 0;
corrupt:
	if (q.why == NULL)
		q.why = "malformed";
	if (strcmp(q.why, "sched") == 0 || strcmp(q.why, "sender") == 0
	    || strcmp(q.why, "client_name") == 0 || strcmp(q.why, "client_addr") == 0
	    || strcmp(q.why, "helo") == 0 || strcmp(q.why, "protocol") == 0
	    || strcmp(q.why, "envid") == 0 || strcmp(q.why, "ret") == 0
	    || strcmp(q.why, "nrcpt") == 0 || strcmp(q.why, "rcpt") == 0
	    || strcmp(q.why, "size") == 0 || strcmp(q.why, "id") == 0
	    || strcmp(q.why, "arrival") == 0)
		errbuf_set(err, "corrupt queue file %s: bad or missing \"%s\" record",
			   path, q.why);
	else
		errbuf_set(err, "corrupt queue file %s: %s", path, q.why);
	saved = EINVAL;
fail_errno:
	free(hbuf);
	queue_env_free(env);
	close(fd);
	errno = saved;
	return -1;
}

/* --- updates --- */

/*
 * pwrite + fdatasync. mtime >= 0 also sets the file's modification time:
 * a hint for queue scanners (the next attempt), not part of the record.
 */
static int
pwrite_sync(const char *qdir, enum queue_state st, const char *id,
	    const void *data, size_t len, off_t off, time_t mtime,
	    struct errbuf *err)
{
	char path[PATH_MAX];
	int fd, saved;
	ssize_t n;

	if (!id_valid(id)) {
		errbuf_set(err, "bad queue ID");
		errno = EINVAL;
		return -1;
	}
	if (qpath(path, sizeof(path), qdir, st, id, err) < 0)
		return -1;
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
		saved = errno;
		errbuf_set(err, "open queue file %s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	do
		n = pwrite(fd, data, len, off);
	while (n < 0 && errno == EINTR);
	if (n < 0 || (size_t)n != len) {
		saved = n < 0 ? errno : EIO;
		errbuf_set(err, "update queue file %s: %s", path, strerror(saved));
		goto fail;
	}
	if (mtime >= 0) {
		struct timespec ts[2];
		ts[0].tv_sec = 0;
		ts[0].tv_nsec = UTIME_OMIT;
		ts[1].tv_sec = mtime;
		ts[1].tv_nsec = 0;
		(void)futimens(fd, ts);
	}
#if defined(__linux__) || defined(__FreeBSD__)
	if (fdatasync(fd) < 0) {
#else
	if (fsync(fd) < 0) {
#endif
		saved = errno;
		errbuf_set(err, "fsync queue file %s: %s", path, strerror(saved));
		goto fail;
	}
	close(fd);
	return 0;
fail:
	close(fd);
	errno = saved;
	return -1;
}

int
queue_mark_done(const char *qdir, enum queue_state st, struct queue_env *env,
		size_t i, struct errbuf *err)
{
	char d = QUEUE_RCPT_DONE;

	if (i >= env->nrcpt || env->rcpt[i].status_off <= 0) {
		errbuf_set(err, "queue file %s: bad recipient index %zu", env->id, i);
		errno = EINVAL;
		return -1;
	}
	if (pwrite_sync(qdir, st, env->id, &d, 1, env->rcpt[i].status_off, -1,
			err) < 0)
		return -1;
	env->rcpt[i].status = QUEUE_RCPT_DONE;
	return 0;
}

/*
 * The sched record is 35 bytes (33 in old files) inside the first disk sector, so the
 * in-place rewrite cannot be torn by a crash on sector-atomic storage.
 */
int
queue_defer(const char *qdir, enum queue_state from, struct queue_env *env,
	    struct errbuf *err)
{
	char sched[QF_SCHED_LEN + 1];
	int n;

	if (env->flags && !env->flags_rec) {
		errbuf_set(err, "queue file %s: written by an older version, "
			   "cannot record flags", env->id);
		errno = EINVAL;
		return -1;
	}
	n = sched_format(sched, env->attempts, env->next_attempt, env->flags,
			 env->flags_rec);
	if (pwrite_sync(qdir, from, env->id, sched, (size_t)n,
			(off_t)QF_SCHED_OFF, env->next_attempt, err) < 0)
		return -1;
	if (from == QUEUE_DEFERRED)
		return 0;
	return queue_move(qdir, env->id, from, QUEUE_DEFERRED, err);
}

int
queue_move(const char *qdir, const char *id, enum queue_state from,
	   enum queue_state to, struct errbuf *err)
{
	char fpath[PATH_MAX], tpath[PATH_MAX], tdir[PATH_MAX];
	int saved;

	if (id == NULL || !id_valid(id)) {
		errbuf_set(err, "bad queue ID");
		errno = EINVAL;
		return -1;
	}
	if (from == to)
		return 0;
	if (qpath(fpath, sizeof(fpath), qdir, from, id, err) < 0
	    || qpath(tpath, sizeof(tpath), qdir, to, id, err) < 0
	    || qpath(tdir, sizeof(tdir), qdir, to, NULL, err) < 0)
		return -1;
	if (rename(fpath, tpath) < 0) {
		saved = errno;
		errbuf_set(err, "rename queue file %s to %s: %s", fpath, tpath,
			   strerror(saved));
		errno = saved;
		return -1;
	}
	return sync_dir(tdir, err);
}

int
queue_remove(const char *qdir, enum queue_state st, const char *id,
	     struct errbuf *err)
{
	char path[PATH_MAX];
	int saved;

	if (id == NULL || !id_valid(id)) {
		errbuf_set(err, "bad queue ID");
		errno = EINVAL;
		return -1;
	}
	if (qpath(path, sizeof(path), qdir, st, id, err) < 0)
		return -1;
	if (unlink(path) < 0) {
		saved = errno;
		errbuf_set(err, "remove queue file %s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	return 0;
}

int
queue_sync_state(const char *qdir, enum queue_state st, struct errbuf *err)
{
	char path[PATH_MAX];

	if (qpath(path, sizeof(path), qdir, st, NULL, err) < 0)
		return -1;
	return sync_dir(path, err);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
queue_list(const char *qdir, enum queue_state st, struct strlist *ids_r,
	   struct errbuf *err)
{
	char path[PATH_MAX];
	struct dirent *de;
	size_t first = ids_r->n;
	DIR *d;
	int saved;

	if (qpath(path, sizeof(path), qdir, st, NULL, err) < 0)
		return -1;
	if ((d = opendir(path)) == NULL) {
		saved = errno;
		errbuf_set(err, "open queue directory %s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (id_valid(de->d_name))
			strlist_add(ids_r, de->d_name);
		errno = 0;
	}
	if (errno != 0) {
		saved = errno;
		errbuf_set(err, "read queue directory %s: %s", path, strerror(saved));
		closedir(d);
		errno = saved;
		return -1;
	}
	closedir(d);
	if (ids_r->n - first > 1)
		qsort(ids_r->v + first, ids_r->n - first, sizeof(char *), cmp_str);
	return 0;
}

int
queue_clean_incoming(const char *qdir, struct errbuf *err)
{
	char path[PATH_MAX], fpath[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int saved = 0, rc = 0;

	if (qpath(path, sizeof(path), qdir, QUEUE_INCOMING, NULL, err) < 0)
		return -1;
	if ((d = opendir(path)) == NULL) {
		saved = errno;
		errbuf_set(err, "open queue directory %s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (snprintf(fpath, sizeof(fpath), "%s/%s", path, de->d_name)
		    >= (int)sizeof(fpath))
			continue;
		if (unlink(fpath) < 0 && errno != ENOENT) {
			saved = errno;
			errbuf_set(err, "remove %s: %s", fpath, strerror(saved));
			rc = -1;
		}
	}
	closedir(d);
	if (rc < 0)
		errno = saved;
	return rc;
}
