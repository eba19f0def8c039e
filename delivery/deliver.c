/*
 * deliver.c - local delivery of one message to one hosted mailbox.
 * Builds the Return-Path:/X-Original-To:/Delivered-To: prepend as Postfix's
 * virtual(8) does, refuses a Delivered-To: loop, runs the Sieve scripts
 * (sieve_before, <home>/.dovecot.sieve, sieve_after), carries out their
 * actions (store, discard, redirect and vacation through the queue, reject)
 * and maps the outcome (errno) to sent / deferred / bounced with a DSN code.
 * Must not: log the status line (the caller does; only Sieve events are
 * logged here), bounce anything that is not clearly permanent, lose mail on
 * a script error (implicit keep into INBOX), or run on the event loop.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>

#include "core/lib/fsync.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/params.h"
#include "core/kvstore.h"
#include "core/queue.h"
#include "backends/addr_find.h"
#include "backends/table.h"
#include "delivery/deliver.h"
#include "delivery/maildir.h"
#include "delivery/quota.h"
#include "delivery/sieve/sieve.h"

#define SVC "virtual"

/* Set once by deliver_init before any worker runs; read-only after. */
static struct {
	char   *qdir, *myhostname, *delim;
	struct strlist before, after;
	char   *global_dir;		/* include :global (sieve_global_dir) */
	long long limit;		/* virtual_mailbox_limit */
	struct table_list *limit_maps;	/* virtual_mailbox_limit_maps */
	char   *limit_maps_err;		/* why it could not be opened */
	bool    full_tempfail;		/* virtual_mailbox_full_tempfail */
	int     warn[8];		/* virtual_mailbox_quota_warning, % desc. */
	size_t  nwarn;
} cfg;

void
deliver_init(const struct settings *s)
{
	free(cfg.qdir);
	free(cfg.myhostname);
	free(cfg.delim);
	strlist_free(&cfg.before);
	strlist_free(&cfg.after);
	cfg.qdir = xstrdup(s->queue_directory ? s->queue_directory : "");
	cfg.myhostname = xstrdup(s->myhostname ? s->myhostname : "localhost");
	cfg.delim = xstrdup(s->recipient_delimiter ? s->recipient_delimiter : "");
	strlist_init(&cfg.before);
	strlist_init(&cfg.after);
	if (s->sieve_before)
		strlist_split(&cfg.before, s->sieve_before);
	if (s->sieve_after)
		strlist_split(&cfg.after, s->sieve_after);
	free(cfg.global_dir);
	cfg.global_dir = NULL;
	if (s->sieve_global_dir && *s->sieve_global_dir)
		cfg.global_dir = xstrdup(s->sieve_global_dir);
	else if (s->sieve_global && *s->sieve_global) {
		/* Pigeonhole's location syntax: [file:]PATH[;option=...] */
		const char *p = s->sieve_global;

		if (strncmp(p, "file:", 5) == 0)
			p += 5;
		cfg.global_dir = xstrndup(p, strcspn(p, ";"));
	}
	cfg.limit = s->virtual_mailbox_limit;
	cfg.full_tempfail = s->virtual_mailbox_full_tempfail;
	cfg.nwarn = 0;
	if (s->virtual_mailbox_quota_warning) {
		struct strlist w;

		strlist_init(&w);
		strlist_split(&w, s->virtual_mailbox_quota_warning);
		for (size_t i = 0; i < w.n && cfg.nwarn < 8; i++) {
			int v = atoi(w.v[i]);
			size_t k;

			/* "80" or "80%"; duplicates are ignored */
			if (v <= 0 || v > 100) {
				log_write(NULL, SVC, LOG_LVL_WARNING,
					  "virtual_mailbox_quota_warning: "
					  "ignoring \"%s\" (expected a "
					  "percentage 1..100)", w.v[i]);
				continue;
			}
			for (k = 0; k < cfg.nwarn && cfg.warn[k] != v; k++)
				;
			if (k == cfg.nwarn)
				cfg.warn[cfg.nwarn++] = v;
		}
		strlist_free(&w);
		/* highest first: one crossing warns once, at its highest level */
		for (size_t i = 1; i < cfg.nwarn; i++)
			for (size_t k = i; k > 0 && cfg.warn[k] > cfg.warn[k - 1]; k--) {
				int t = cfg.warn[k];

				cfg.warn[k] = cfg.warn[k - 1];
				cfg.warn[k - 1] = t;
			}
	}
	table_list_free(&cfg.limit_maps);
	free(cfg.limit_maps_err);
	cfg.limit_maps_err = NULL;
	if (s->virtual_mailbox_limit_maps && *s->virtual_mailbox_limit_maps) {
		struct errbuf err;

		errbuf_clear(&err);
		cfg.limit_maps = table_list_open(s->virtual_mailbox_limit_maps,
						 TABLE_F_FOLD, &err);
		/* every delivery then defers with this reason (4.3.5) */
		if (cfg.limit_maps == NULL)
			cfg.limit_maps_err = xasprintf("virtual_mailbox_limit_maps: %s",
						       errbuf_str(&err));
	}
}

/*
 * The recipient's quota in bytes (0: none): virtual_mailbox_limit_maps in
 * virtual(5) search order (user+ext@domain, user@domain, @domain), else
 * virtual_mailbox_limit. Returns 0, or -1 with dsn_r/text_r set (lookup
 * failure or a value that is not a number: defer, never bounce).
 */
static int
user_limit(const char *rcpt, long long *limit_r, char dsn_r[8],
	   struct buf *text_r)
{
	const char *at = strrchr(rcpt, '@');
	struct errbuf err;
	struct buf v;
	char *local, *end;
	enum table_status ts;
	long long n;

	*limit_r = cfg.limit;
	if (cfg.limit_maps_err) {
		memcpy(dsn_r, "4.3.5", 6);
		buf_puts(text_r, cfg.limit_maps_err);
		return -1;
	}
	if (cfg.limit_maps == NULL || table_list_empty(cfg.limit_maps))
		return 0;
	errbuf_clear(&err);
	buf_init(&v, 4096);
	local = at ? xstrndup(rcpt, (size_t)(at - rcpt)) : xstrdup(rcpt);
	ts = addr_find(cfg.limit_maps, local, at ? at + 1 : "", cfg.delim, 0,
		       &v, NULL, &err);
	free(local);
	if (ts == TABLE_FOUND) {
		errno = 0;
		n = strtoll(buf_cstr(&v), &end, 10);
		if (errno != 0 || end == buf_cstr(&v) || *end != '\0' || n < 0) {
			memcpy(dsn_r, "4.3.5", 6);
			buf_printf(text_r, "virtual_mailbox_limit_maps: bad quota "
				   "\"%s\" for \"%s\" (expected a size in bytes)",
				   buf_cstr(&v), rcpt);
			buf_free(&v);
			return -1;
		}
		*limit_r = n;
	} else if (ts != TABLE_NOTFOUND) {
		memcpy(dsn_r, ts == TABLE_TEMPFAIL ? "4.3.0" : "4.3.5", 6);
		buf_printf(text_r, "virtual_mailbox_limit_maps: %s", errbuf_str(&err));
		buf_free(&v);
		return -1;
	}
	buf_free(&v);
	return 0;
}

bool
deliver_quota_enabled(void)
{
	return cfg.limit > 0 || cfg.limit_maps != NULL;
}

int
deliver_quota_precheck(const char *rcpt, const char *maildir, long long size,
		       char dsn_r[8])
{
	struct quota_limits lim = { 0, 0 };
	struct quota_usage use;
	struct errbuf err;
	struct buf text;
	long long limit;
	int rc;

	if (size <= 0 || maildir == NULL || !deliver_quota_enabled())
		return 0;
	buf_init(&text, 1024);
	rc = user_limit(rcpt, &limit, dsn_r, &text);
	buf_free(&text);
	if (rc < 0)
		return -1;	/* the end of DATA says it (deferred) */
	if (limit <= 0)
		return 0;
	lim.bytes = limit;
	errbuf_clear(&err);
	rc = quota_check(maildir, &lim, size, 1, time(NULL), &use, &err);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return 0;
	memcpy(dsn_r, cfg.full_tempfail ? "4.2.2" : "5.2.2", 6);
	return 1;
}

/*
 * virtual_mailbox_quota_warning: when this delivery took the mailbox from
 * below a threshold to or above it, one message tells the user (the
 * highest threshold crossed), queued from <> with Auto-Submitted. A
 * warning never causes another (it is recognised by its header).
 */
#define QUOTA_WARN_HDR "X-Facteur-Quota-Warning"

static int queue_inject(const char *sender, const char *rcpt,
			const char *content, size_t len,
			char id_r[QUEUE_ID_SIZE], struct errbuf *err);
static void put_value(struct buf *b, const char *s);

static void
quota_warn(const struct deliver_req *req, long long limit, long long before,
	   long long after)
{
	const char *rcpt = req->rcpt ? req->rcpt : "";
	char date[64], id[QUEUE_ID_SIZE];
	struct errbuf err;
	struct buf m;
	time_t now = time(NULL);
	struct tm tm;
	int pct = 0;

	for (size_t i = 0; i < cfg.nwarn && pct == 0; i++) {
		long long t = cfg.warn[i];

		if (before * 100 < t * limit && after * 100 >= t * limit)
			pct = cfg.warn[i];
	}
	if (pct == 0 || *rcpt == '\0')
		return;
	{
		/* not for a warning itself */
		const char *p = req->content, *end = req->content + req->len;
		size_t hl = strlen(QUOTA_WARN_HDR);

		while (p < end && *p != '\n' && !(p[0] == '\r' && p + 1 < end
						  && p[1] == '\n')) {
			const char *eol = memchr(p, '\n', (size_t)(end - p));

			if ((size_t)(end - p) > hl && strncasecmp(p, QUOTA_WARN_HDR, hl) == 0
			    && p[hl] == ':')
				return;
			if (eol == NULL)
				break;
			p = eol + 1;
		}
	}
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	buf_init(&m, 0);
	buf_printf(&m, "Date: %s\nFrom: Mail Delivery System <MAILER-DAEMON@%s>\n"
		   "To: <", date, cfg.myhostname ? cfg.myhostname : "localhost");
	put_value(&m, rcpt);
	buf_printf(&m, ">\nSubject: Mailbox quota warning: %d%% full\n"
		   "Auto-Submitted: auto-generated\n" QUOTA_WARN_HDR ": %d\n"
		   "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n"
		   "Your mailbox is now %lld%% full: %lld of %lld bytes are in use.\n"
		   "When it is full, new messages will be refused. Please delete\n"
		   "or move some messages.\n", pct, pct,
		   after * 100 / limit, after, limit);
	errbuf_clear(&err);
	if (queue_inject("", rcpt, m.data, m.len, id, &err) < 0)
		log_write(NULL, SVC, LOG_LVL_WARNING, "<%s>: quota warning not "
			  "queued: %s", rcpt, errbuf_str(&err));
	else
		log_write(NULL, SVC, LOG_LVL_INFO, "%s: <%s>: quota warning "
			  "queued: %d%% (%lld of %lld bytes)", id, rcpt, pct, after,
			  limit);
	buf_free(&m);
}

/* Header values come from the envelope: never let them break a line. */
static void
put_value(struct buf *b, const char *s)
{
	for (; *s; s++)
		buf_putc(b, (*s == '\r' || *s == '\n') ? ' ' : *s);
}

static bool
is_ws(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Does the header section (up to the first empty line) hold a
 * "Delivered-To: rcpt" line? Compared case-insensitively, as Postfix's
 * delivered_hdr does; folded continuation lines are not part of the name.
 */
static bool
delivered_to_seen(const char *msg, size_t len, const char *rcpt)
{
	static const char name[] = "delivered-to:";
	const size_t nlen = sizeof(name) - 1, rlen = strlen(rcpt);
	const char *p = msg, *end = msg + len, *eol, *v, *ve;

	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		if (eol == p || (eol == p + 1 && p[0] == '\r'))
			break;	/* end of the header section */
		if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0) {
			v = p + nlen;
			ve = eol;
			while (v < ve && is_ws(*v))
				v++;
			while (ve > v && (is_ws(ve[-1]) || ve[-1] == '\r'))
				ve--;
			if ((size_t)(ve - v) == rlen && strncasecmp(v, rcpt, rlen) == 0)
				return true;
		}
		p = eol + 1;
	}
	return false;
}

/* Postfix's mbox_dsn, plus 4.3.x for what is clearly the system's fault. */
const char *
deliver_errno_dsn(int e, enum deliver_status *st)
{
	*st = DELIVER_DEFER;
	switch (e) {
	case EAGAIN:
#if defined(EWOULDBLOCK) && EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
	case ESTALE:
		return "4.2.0";
	case ENOSPC:
	case EIO:
	case EROFS:
	case ENFILE:
	case EMFILE:
	case ENOMEM:
		return "4.3.0";
	case EINVAL:
	case ENAMETOOLONG:
		return "4.3.5";
	case EDQUOT:
	case EFBIG:
		*st = DELIVER_BOUNCE;
		return "5.2.2";
	default:
		return "4.2.0";
	}
}

char *
deliver_sieve_home(const char *maildir)
{
	size_t n = strlen(maildir);

	while (n > 1 && maildir[n - 1] == '/')
		n--;
	if (n >= 8 && strncmp(maildir + n - 7, "Maildir", 7) == 0
	    && maildir[n - 8] == '/')
		n -= 8;
	return xstrndup(maildir, n);
}

/*
 * A Sieve mailbox name as a Maildir++ folder: "" for INBOX, "INBOX." or
 * "INBOX/" prefixes dropped, "/" as hierarchy separator like ".", the
 * rest in modified UTF-7. -1 for a name that cannot be a folder.
 */
static int
folder_name(const char *utf8, struct buf *out)
{
	struct buf t;
	int rc;

	buf_reset(out);
	if (strcasecmp(utf8, "INBOX") == 0)
		return 0;
	if (strncasecmp(utf8, "INBOX.", 6) == 0 || strncasecmp(utf8, "INBOX/", 6) == 0)
		utf8 += 6;
	buf_init(&t, 4096);
	rc = sieve_mutf7_encode(utf8, &t);
	for (size_t i = 0; i < t.len; i++)
		if (t.data[i] == '/')
			t.data[i] = '.';
	if (rc == 0 && (t.len == 0 || t.len > 255))
		rc = -1;
	if (rc == 0)
		buf_set(out, buf_cstr(&t));
	buf_free(&t);
	return rc;
}

struct exists_arg {
	const char *maildir;
	const char *home;
	struct kvstore *dup;	/* duplicate IDs, opened on first use */
	bool    dup_failed;
};

static int
mailbox_exists_cb(void *arg, const char *name)
{
	const struct exists_arg *a = arg;
	struct buf f;
	struct stat st;
	char *p;
	int r;

	buf_init(&f, 0);
	if (folder_name(name, &f) < 0) {
		buf_free(&f);
		return 0;
	}
	p = xasprintf("%s%s%s", a->maildir, f.len ? "." : "", buf_cstr(&f));
	r = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
	free(p);
	buf_free(&f);
	return r;
}

/*
 * include (RFC 6609): personal scripts are <home>/sieve/NAME.sieve (where
 * managesieved stores them), global ones sieve_global_dir/NAME.sieve.
 */
static int
include_cb(void *arg, bool global, const char *name, struct sieve_script **sp,
	   struct errbuf *err)
{
	const struct exists_arg *a = arg;
	char *path;
	int rc;

	if (global && cfg.global_dir == NULL)
		return 0;
	path = global ? xasprintf("%s/%s.sieve", cfg.global_dir, name)
		      : xasprintf("%s/sieve/%s.sieve", a->home, name);
	rc = sieve_cache_get(path, sp, err);
	free(path);
	return rc;
}

/*
 * duplicate (RFC 7352) state: an LMDB store per user, <home>/.facteur-
 * duplicate.lmdb, keyed by "handle\nid", expiring after the period. It
 * lives beside the mailbox for the same reasons as the vacation state.
 * A store that cannot be opened means "not seen" (the message is
 * delivered, never lost) and a warning.
 */
#define DUP_MAP_SIZE	(1024 * 1024)	/* about 10000 IDs */

static struct kvstore *
dup_store(struct exists_arg *a)
{
	struct errbuf err;
	char *path;

	if (a->dup || a->dup_failed)
		return a->dup;
	path = xasprintf("%s/.facteur-duplicate", a->home);
	errbuf_clear(&err);
	if (mkdir(a->home, 0700) < 0 && errno != EEXIST)
		errbuf_set(&err, "mkdir %s: %s", a->home, strerror(errno));
	else
		a->dup = kvstore_open(path, DUP_MAP_SIZE, &err);
	if (a->dup == NULL) {
		a->dup_failed = true;
		log_write(NULL, SVC, LOG_LVL_WARNING, "sieve: duplicate: %s",
			  errbuf_str(&err));
	}
	free(path);
	return a->dup;
}

static int
duplicate_seen_cb(void *arg, const char *key)
{
	struct kvstore *k = dup_store(arg);
	struct errbuf err;
	int rc;

	if (k == NULL)
		return 0;
	errbuf_clear(&err);
	rc = kvstore_get(k, key, time(NULL), NULL, NULL, NULL, &err);
	if (rc < 0)
		log_write(NULL, SVC, LOG_LVL_WARNING, "sieve: duplicate: %s",
			  errbuf_str(&err));
	return rc == 1;
}

/* Records the IDs the duplicate tests asked for, once delivered. */
static void
duplicate_record(struct exists_arg *a, const struct sieve_result *r)
{
	struct kvstore *k;
	struct errbuf err;
	time_t now = time(NULL);
	int bad = 0;

	if (r->ndup == 0 || (k = dup_store(a)) == NULL)
		return;
	errbuf_clear(&err);
	for (size_t i = 0; i < r->ndup && !bad; i++)
		bad = kvstore_put(k, r->dup[i].key, "1", 1,
				  now + r->dup[i].seconds, &err) < 0;
	if (!bad && kvstore_cleanup(k, now, 64, &err) < 0)
		bad = 1;
	if (!bad && kvstore_sync(k, &err) < 0)
		bad = 1;
	if (bad)
		log_write(NULL, SVC, LOG_LVL_WARNING, "sieve: duplicate: %s",
			  errbuf_str(&err));
}

/* Writes a new message into the queue (active/) for the queue manager. */
static int
queue_inject(const char *sender, const char *rcpt, const char *content,
	     size_t len, char id_r[QUEUE_ID_SIZE], struct errbuf *err)
{
	struct queue_env env;
	struct queue_rcpt r;
	struct timeval tv;

	if (cfg.qdir == NULL || cfg.qdir[0] == '\0') {
		errbuf_set(err, "no queue_directory configured");
		return -1;
	}
	memset(&env, 0, sizeof(env));
	memset(&r, 0, sizeof(r));
	gettimeofday(&tv, NULL);
	queue_id_new(env.id);
	env.arrival = tv.tv_sec;
	env.arrival_usec = (long)tv.tv_usec;
	env.sender = (char *)sender;
	env.client_name = (char *)"localhost";
	env.client_addr = (char *)"127.0.0.1";
	env.helo = (char *)"localhost";
	env.protocol = (char *)"sieve";
	env.size = (long long)len;
	r.orig = (char *)rcpt;
	r.addr = (char *)rcpt;
	r.status = QUEUE_RCPT_PENDING;
	env.rcpt = &r;
	env.nrcpt = 1;
	if (queue_write(cfg.qdir, &env, content, len, false, err) < 0)
		return -1;
	memcpy(id_r, env.id, QUEUE_ID_SIZE);
	return 0;
}

/* RFC 5228 4.2: the message as received plus our Delivered-To: line, so
 * that a redirect loop ends at deliver_maildir's loop check. */
static int
do_redirect(const struct deliver_req *req, const struct sieve_action *a,
	    const char *content, size_t len, struct errbuf *err)
{
	struct buf m;
	char id[QUEUE_ID_SIZE];
	int rc;

	buf_init(&m, 0);
	buf_puts(&m, "Delivered-To: ");
	put_value(&m, req->rcpt ? req->rcpt : "");
	buf_putc(&m, '\n');
	buf_append(&m, content, len);
	rc = queue_inject(req->sender ? req->sender : "", a->addr, m.data,
			  m.len, id, err);
	buf_free(&m);
	if (rc == 0)
		log_write(NULL, SVC, LOG_LVL_INFO, "%s: sieve: redirect from "
			  "<%s> to <%s> (script %s, line %d)", id,
			  req->rcpt ? req->rcpt : "", a->addr, a->script, a->line);
	return rc;
}

/*
 * Vacation state: one small file per (handle, sender) under
 * <home>/.facteur-vacation/, named by a hash, holding the time until which
 * no further reply goes to that sender. Kept beside the mailbox so it is
 * owned by vmail, moves and disappears with the user, and needs no shared
 * database lock across users; written to a temporary name, fsynced and
 * renamed, so a crash leaves either the old or the new period.
 */
static char *
vacation_path(const char *home, const struct sieve_action *a)
{
	unsigned char h[16];
	char hex[33];
	crypto_generichash_state st;
	const char *handle = a->handle;
	struct buf k;

	buf_init(&k, 0);
	if (handle == NULL) {
		/* RFC 5230 4.2: the default handle covers the reply's content */
		buf_printf(&k, "%s\n%s\n%s\n%d", a->reason ? a->reason : "",
			   a->subject ? a->subject : "", a->from ? a->from : "",
			   a->mime);
		handle = buf_cstr(&k);
	}
	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)handle, strlen(handle) + 1);
	for (const char *p = a->to; *p; p++) {
		unsigned char c = (unsigned char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);

		crypto_generichash_update(&st, &c, 1);
	}
	crypto_generichash_final(&st, h, sizeof(h));
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	buf_free(&k);
	return xasprintf("%s/.facteur-vacation/%s", home, hex);
}

static bool
vacation_recent(const char *path, time_t now)
{
	char b[32];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, b, sizeof(b) - 1);
	close(fd);
	if (n <= 0)
		return false;
	b[n] = '\0';
	return strtoll(b, NULL, 10) > (long long)now;
}

static int
vacation_record(const char *home, const char *path, time_t until,
		struct errbuf *err)
{
	char *dir = xasprintf("%s/.facteur-vacation", home);
	char *tmp = xasprintf("%s.tmp%ld", path, (long)getpid());
	char line[32];
	struct iovec iov;
	int fd, rc = -1;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		errbuf_set(err, "mkdir %s: %s", dir, strerror(errno));
		goto out;
	}
	snprintf(line, sizeof(line), "%lld\n", (long long)until);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		errbuf_set(err, "create %s: %s", tmp, strerror(errno));
		goto out;
	}
	iov.iov_base = line;
	iov.iov_len = strlen(line);
	if (fsync_writev_all(fd, &iov, 1) < 0 || close(fd) < 0
	    || rename(tmp, path) < 0 || fsync_dir(dir) < 0) {
		errbuf_set(err, "write %s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	free(dir);
	free(tmp);
	return rc;
}

/* RFC 5230 5: the reply, from <>, Auto-Submitted: auto-replied. */
static void
vacation_message(const struct deliver_req *req, const struct sieve_action *a,
		 struct buf *m)
{
	char date[64], mid[64];
	unsigned char rnd[8];
	char rhex[17];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(rhex, sizeof(rhex), rnd, sizeof(rnd));
	snprintf(mid, sizeof(mid), "%lld.%s", (long long)now, rhex);
	buf_printf(m, "Date: %s\n", date);
	buf_puts(m, "From: ");
	if (a->from && *a->from)
		put_value(m, a->from);
	else {
		buf_putc(m, '<');
		put_value(m, req->rcpt ? req->rcpt : "");
		buf_putc(m, '>');
	}
	buf_puts(m, "\nTo: <");
	put_value(m, a->to);
	buf_puts(m, ">\nSubject: ");
	if (a->subject && *a->subject)
		put_value(m, a->subject);
	else {
		buf_puts(m, "Auto: ");
		put_value(m, a->orig_subject ? a->orig_subject : "");
	}
	buf_putc(m, '\n');
	if (a->in_reply_to) {
		buf_puts(m, "In-Reply-To: ");
		put_value(m, a->in_reply_to);
		buf_puts(m, "\nReferences: ");
		put_value(m, a->in_reply_to);
		buf_putc(m, '\n');
	}
	buf_printf(m, "Message-ID: <%s@%s>\n", mid, cfg.myhostname ? cfg.myhostname : "localhost");
	buf_puts(m, "Auto-Submitted: auto-replied (vacation)\n"
		 "Precedence: bulk\nMIME-Version: 1.0\n");
	if (a->mime) {
		/* :mime: the reason is a MIME entity with its own headers */
		buf_puts(m, a->reason);
	} else {
		buf_puts(m, "Content-Type: text/plain; charset=utf-8\n"
			 "Content-Transfer-Encoding: 8bit\n\n");
		for (const char *p = a->reason; *p; p++)
			if (*p != '\r')
				buf_putc(m, *p);
		if (m->len && m->data[m->len - 1] != '\n')
			buf_putc(m, '\n');
	}
}

static void
do_vacation(const struct deliver_req *req, const char *home,
	    const struct sieve_action *a)
{
	char *path = vacation_path(home, a);
	time_t now = time(NULL);
	struct errbuf err;
	struct buf m;
	char id[QUEUE_ID_SIZE];

	errbuf_clear(&err);
	if (a->skip) {
		log_write(NULL, SVC, LOG_LVL_INFO, "sieve: <%s>: vacation reply "
			  "to <%s> not sent: %s", req->rcpt ? req->rcpt : "",
			  a->to, a->skip);
		free(path);
		return;
	}
	if (vacation_recent(path, now)) {
		log_write(NULL, SVC, LOG_LVL_INFO, "sieve: <%s>: vacation reply "
			  "to <%s> not sent: already replied within the period",
			  req->rcpt ? req->rcpt : "", a->to);
		free(path);
		return;
	}
	buf_init(&m, 0);
	vacation_message(req, a, &m);
	/* Record first: a crash after queueing must not mean a second reply. */
	if (vacation_record(home, path, now + a->seconds, &err) < 0
	    || queue_inject("", a->to, m.data, m.len, id, &err) < 0)
		log_write(NULL, SVC, LOG_LVL_WARNING, "sieve: <%s>: vacation "
			  "reply to <%s> not sent: %s", req->rcpt ? req->rcpt : "",
			  a->to, errbuf_str(&err));
	else
		log_write(NULL, SVC, LOG_LVL_INFO, "%s: sieve: vacation reply "
			  "from <%s> to <%s> queued", id, req->rcpt ? req->rcpt : "",
			  a->to);
	buf_free(&m);
	free(path);
}

/* Runs the script at path into r: 1 ran, 0 no such script, -1 on any
 * error (logged). */
static int
run_script(const char *path, const struct sieve_msg *sm,
	   struct sieve_result *r, const char *rcpt)
{
	struct sieve_script *s = NULL;
	struct errbuf err;
	int rc = sieve_cache_get(path, &s, &err);

	if (rc == 0)
		return 0;
	if (rc < 0) {
		log_write(NULL, SVC, LOG_LVL_WARNING, "sieve: <%s>: script %s "
			  "failed to compile: %s; delivering to INBOX "
			  "(implicit keep)", rcpt, path, errbuf_str(&err));
		return -1;
	}
	rc = sieve_run(s, sm, r, &err) < 0 ? -1 : 1;
	if (rc < 0)
		log_write(NULL, SVC, LOG_LVL_WARNING, "sieve: <%s>: script %s "
			  "run-time error at line %s; delivering to INBOX "
			  "(implicit keep)", rcpt, path, errbuf_str(&err));
	sieve_script_unref(&s);
	return rc;
}

/*
 * IMAP system flags as Maildir info letters (the names Dovecot reads
 * back). Keywords (flags without a backslash) go to maildir.c, which maps
 * them to letters through Dovecot's dovecot-keywords file.
 */
static void
maildir_flags(const char *imap, char out[8])
{
	static const struct { const char *name; char c; } map[] = {
		{ "\\Draft", 'D' }, { "\\Flagged", 'F' }, { "\\Answered", 'R' },
		{ "\\Seen", 'S' }, { "\\Deleted", 'T' },
	};
	size_t o = 0;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		const char *p = imap;
		size_t n = strlen(map[i].name);

		while ((p = strcasestr(p, map[i].name)) != NULL) {
			if ((p == imap || p[-1] == ' ')
			    && (p[n] == '\0' || p[n] == ' ')) {
				out[o++] = map[i].c;
				break;
			}
			p += n;
		}
	}
	out[o] = '\0';
}

/* One store action: folder (UTF-8 Sieve name, NULL INBOX) with flags. */
static int
store(const struct deliver_req *req, const struct buf *pre, const char *content,
      size_t len, const char *folder, const char *flags, struct errbuf *err)
{
	struct maildir_msg msg;
	struct buf f;
	struct strlist kw;	/* keywords */
	char mf[8] = "";
	int e;

	buf_init(&f, 0);
	strlist_init(&kw);
	if (flags) {
		char *copy = xstrdup(flags), *save = NULL;

		maildir_flags(flags, mf);
		for (char *t = strtok_r(copy, " ", &save); t;
		     t = strtok_r(NULL, " ", &save))
			if (t[0] != '\\' && !strlist_contains(&kw, t))
				strlist_add(&kw, t);
		free(copy);
	}
	memset(&msg, 0, sizeof(msg));
	msg.keywords = (const char *const *)kw.v;
	msg.nkeywords = kw.n;
	msg.prepend = pre->data;
	msg.prepend_len = pre->len;
	msg.content = content;
	msg.len = len;
	/* Any IMAP flag given, even a keyword only: cur/ (seen by a client) */
	msg.flags = flags && *flags ? mf : NULL;
	if (folder && folder_name(folder, &f) < 0) {
		errbuf_set(err, "bad mailbox name \"%s\"", folder);
		buf_free(&f);
		strlist_free(&kw);
		return EINVAL;
	}
	msg.folder = f.len ? buf_cstr(&f) : NULL;
	e = maildir_deliver(req->base, req->maildir, &msg, NULL, 0, err);
	if (e != 0 && msg.nkeywords > 0) {
		/* the keywords file could not be used: keep the system flags */
		log_write(NULL, SVC, LOG_LVL_WARNING, "<%s>: keywords not kept: %s",
			  req->rcpt ? req->rcpt : "", errbuf_str(err));
		msg.nkeywords = 0;
		e = maildir_deliver(req->base, req->maildir, &msg, NULL, 0, err);
	}
	if (e == EINVAL && msg.flags) {
		/* flags maildir cannot express: store without them */
		msg.flags = NULL;
		e = maildir_deliver(req->base, req->maildir, &msg, NULL, 0, err);
	}
	strlist_free(&kw);
	buf_free(&f);
	return e;
}

/* The distinct mailboxes the actions store into (RFC 5228 2.10.3). */
static long long
store_count(const struct sieve_result *r)
{
	long long n = 0;

	for (size_t i = 0; i < r->nact; i++) {
		const struct sieve_action *a = &r->act[i];
		bool dup = false;

		if (a->type != SIEVE_ACT_KEEP && a->type != SIEVE_ACT_FILEINTO)
			continue;
		for (size_t k = 0; k < i && !dup; k++) {
			const struct sieve_action *b = &r->act[k];

			dup = (b->type == SIEVE_ACT_KEEP || b->type == SIEVE_ACT_FILEINTO)
			      && strcmp(b->folder ? b->folder : "INBOX",
					a->folder ? a->folder : "INBOX") == 0;
		}
		n += !dup;
	}
	return n;
}

/*
 * Maildir++ quota for the stores r asks for, size bytes each. Returns
 * DELIVER_SENT to go on (lim_r set: the limits to account against), or
 * the refusal with dsn_r/text_r: 5.2.2 "mailbox full" (4.2.2 with
 * virtual_mailbox_full_tempfail), 4.x when the quota cannot be read.
 */
static enum deliver_status
quota_gate(const struct deliver_req *req, const struct sieve_result *r,
	   size_t size, struct quota_limits *lim_r, struct quota_usage *use_r,
	   char dsn_r[8], struct buf *text_r)
{
	long long n = store_count(r), limit;
	struct quota_usage use = { 0, 0 };
	struct errbuf err;
	int rc;

	lim_r->bytes = lim_r->count = 0;
	if (n == 0)
		return DELIVER_SENT;
	if (user_limit(req->rcpt ? req->rcpt : "", &limit, dsn_r, text_r) < 0)
		return DELIVER_DEFER;
	if (limit <= 0)
		return DELIVER_SENT;
	lim_r->bytes = limit;
	errbuf_clear(&err);
	rc = quota_check(req->maildir, lim_r, n * (long long)size, n,
			 time(NULL), &use, &err);
	if (rc < 0) {
		memcpy(dsn_r, "4.3.0", 6);
		buf_printf(text_r, "quota: %s", errbuf_str(&err));
		return DELIVER_DEFER;
	}
	*use_r = use;
	if (rc == 0)
		return DELIVER_SENT;
	memcpy(dsn_r, cfg.full_tempfail ? "4.2.2" : "5.2.2", 6);
	buf_puts(text_r, "mailbox full: Maildir++ quota exceeded");
	return cfg.full_tempfail ? DELIVER_DEFER : DELIVER_BOUNCE;
}

static void
build_prepend(const struct deliver_req *req, struct buf *pre)
{
	const char *rcpt = req->rcpt ? req->rcpt : "";

	buf_puts(pre, "Return-Path: <");
	put_value(pre, req->sender ? req->sender : "");
	buf_puts(pre, ">\n");
	if (req->orig_rcpt) {
		buf_puts(pre, "X-Original-To: ");
		put_value(pre, req->orig_rcpt);
		buf_putc(pre, '\n');
	}
	/* Postfix writes Delivered-To: in lower case (loop checks fold too). */
	buf_puts(pre, "Delivered-To: ");
	{
		size_t at = pre->len;

		put_value(pre, rcpt);
		for (size_t i = at; i < pre->len; i++)
			if (pre->data[i] >= 'A' && pre->data[i] <= 'Z')
				pre->data[i] = (char)(pre->data[i] - 'A' + 'a');
	}
	buf_putc(pre, '\n');
}

enum deliver_status
deliver_maildir(const struct deliver_req *req, char dsn_r[8],
		struct buf *text_r)
{
	struct errbuf err;
	struct buf pre;
	enum deliver_status st;
	const char *rcpt = req->rcpt ? req->rcpt : "";
	struct sieve_result r;
	struct sieve_msg sm;
	struct exists_arg ea = { NULL, NULL, NULL, false };
	char *home, *user_script;
	struct quota_limits qlim = { 0, 0 };
	struct quota_usage quse = { 0, 0 };
	long long added = 0;
	size_t biggest = req->len;
	bool failed = false, stored = false, rejected = false;
	const char *reject_reason = NULL;
	int e = 0;

	buf_reset(text_r);
	errbuf_clear(&err);
	if (req->maildir == NULL || req->content == NULL) {
		memcpy(dsn_r, "4.3.5", 6);
		buf_puts(text_r, "no maildir for this recipient");
		return DELIVER_DEFER;
	}
	if (rcpt[0] != '\0' && delivered_to_seen(req->content, req->len, rcpt)) {
		memcpy(dsn_r, "5.4.6", 6);
		buf_puts(text_r, "mail forwarding loop for ");
		put_value(text_r, rcpt);
		return DELIVER_BOUNCE;
	}
	buf_init(&pre, 0);
	build_prepend(req, &pre);

	/* Sieve: before scripts, the user's, after scripts; each later one
	 * only while the implicit keep is still in effect (Pigeonhole). */
	home = deliver_sieve_home(req->maildir);
	user_script = xasprintf("%s/.dovecot.sieve", home);
	memset(&sm, 0, sizeof(sm));
	sm.content = req->content;
	sm.len = req->len;
	sm.env_from = req->sender ? req->sender : "";
	sm.env_to = rcpt;
	sm.orig_to = req->orig_rcpt;
	sm.delimiters = cfg.delim ? cfg.delim : "";
	memset(&ea, 0, sizeof(ea));
	ea.maildir = req->maildir;
	ea.home = home;
	sm.mailbox_exists = mailbox_exists_cb;
	sm.include = include_cb;
	sm.duplicate_seen = duplicate_seen_cb;
	sm.arg = &ea;
	sieve_result_init(&r);
	{
		/* before, user, after: each next one while the keep is in
		 * effect (sieve_result_continue: Pigeonhole's rule) */
		size_t nscripts = cfg.before.n + 1 + cfg.after.n;
		bool ran = false;

		for (size_t i = 0; i < nscripts && !failed; i++) {
			const char *path = i < cfg.before.n ? cfg.before.v[i]
					   : i == cfg.before.n ? user_script
					   : cfg.after.v[i - cfg.before.n - 1];

			/* decided only when there is a next script to run */
			if (ran && access(path, F_OK) == 0
			    && !sieve_result_continue(&r))
				break;
			switch (run_script(path, &sm, &r, rcpt)) {
			case -1:
				failed = true;
				break;
			case 1:
				ran = true;
				break;
			default:
				break;	/* no such script */
			}
		}
	}
	if (failed) {
		sieve_result_free(&r);
		sieve_result_init(&r);
	}
	sieve_result_finish(&r);
	/* editheader may have made a stored copy larger than the original */
	for (size_t i = 0; i < r.nact; i++) {
		size_t n;

		(void)sieve_action_message(&r, &r.act[i], req->content, req->len, &n);
		if (n > biggest)
			biggest = n;
	}

	/* Quota before anything leaves: a refused message sends nothing. */
	if ((st = quota_gate(req, &r, pre.len + biggest, &qlim, &quse, dsn_r,
			     text_r)) != DELIVER_SENT)
		goto out;

	/* Actions that send mail go through the queue first: if one cannot
	 * be queued, the delivery is deferred before anything is stored. */
	for (size_t i = 0; i < r.nact; i++) {
		const struct sieve_action *a = &r.act[i];
		size_t mlen;
		const char *mc = sieve_action_message(&r, a, req->content,
						      req->len, &mlen);

		if (a->type == SIEVE_ACT_REDIRECT
		    && do_redirect(req, a, mc, mlen, &err) < 0) {
			memcpy(dsn_r, "4.3.0", 6);
			buf_printf(text_r, "sieve redirect to <%s> not queued: %s",
				   a->addr, errbuf_str(&err));
			st = DELIVER_DEFER;
			goto out;
		}
		if (a->type == SIEVE_ACT_REJECT) {
			rejected = true;
			reject_reason = a->reason;
		}
	}
	for (size_t i = 0; i < r.nact; i++) {
		const struct sieve_action *a = &r.act[i];
		bool dup = false;
		size_t mlen;
		const char *mc = sieve_action_message(&r, a, req->content,
						      req->len, &mlen);

		if (a->type != SIEVE_ACT_KEEP && a->type != SIEVE_ACT_FILEINTO)
			continue;
		/* RFC 5228 2.10.3: one copy per mailbox */
		for (size_t k = 0; k < i; k++) {
			const struct sieve_action *b = &r.act[k];

			if ((b->type == SIEVE_ACT_KEEP || b->type == SIEVE_ACT_FILEINTO)
			    && strcmp(b->folder ? b->folder : "INBOX",
				      a->folder ? a->folder : "INBOX") == 0)
				dup = true;
		}
		if (dup)
			continue;
		e = store(req, &pre, mc, mlen, a->folder, a->flags, &err);
		if (e != 0 && a->folder != NULL) {
			log_write(NULL, SVC, LOG_LVL_WARNING, "sieve: <%s>: "
				  "fileinto \"%s\" failed: %s; delivering to "
				  "INBOX", rcpt, a->folder, errbuf_str(&err));
			e = store(req, &pre, mc, mlen, NULL, a->flags, &err);
		}
		if (e != 0)
			break;
		stored = true;
		added += (long long)(pre.len + mlen);
		if ((qlim.bytes > 0 || qlim.count > 0)
		    && quota_add(req->maildir, &qlim, (long long)(pre.len + mlen), 1,
				 &err) < 0)
			log_write(NULL, SVC, LOG_LVL_WARNING, "<%s>: quota: %s "
				  "(recalculated at the next delivery)", rcpt,
				  errbuf_str(&err));
		if (a->folder)
			log_write(NULL, SVC, LOG_LVL_INFO, "sieve: <%s>: stored "
				  "into folder \"%s\"", rcpt, a->folder);
	}
	if (e != 0) {
		memcpy(dsn_r, deliver_errno_dsn(e, &st), 6);
		buf_puts(text_r, errbuf_str(&err));
		goto out;
	}
	for (size_t i = 0; i < r.nact; i++)
		if (r.act[i].type == SIEVE_ACT_VACATION && !rejected)
			do_vacation(req, home, &r.act[i]);
	if (rejected && !stored) {
		/* RFC 5429: refused; the queue manager returns it to the sender */
		memcpy(dsn_r, "5.7.1", 6);
		buf_puts(text_r, "rejected by sieve script: ");
		put_value(text_r, reject_reason ? reject_reason : "");
		st = DELIVER_BOUNCE;
		goto out;
	}
	memcpy(dsn_r, "2.0.0", 6);
	buf_puts(text_r, stored ? "delivered to maildir" : "discarded by sieve script");
	st = DELIVER_SENT;
	duplicate_record(&ea, &r);
	if (stored && qlim.bytes > 0)
		quota_warn(req, qlim.bytes, quse.bytes, quse.bytes + added);
out:
	if (ea.dup)
		kvstore_close(&ea.dup);
	sieve_result_free(&r);
	free(home);
	free(user_script);
	buf_free(&pre);
	return st;
}
