/*
 * quota.h - Maildir++ quota (the `maildirsize` file shared with Courier
 * and Dovecot's maildir quota backend). The file's first line holds the
 * limits ("<bytes>S,<count>C"), every further line a "<bytes> <count>"
 * change; the sum is the usage. It is rebuilt from the maildir (the ,S=
 * size in file names, stat otherwise; cur/ new/ of INBOX and every
 * .Folder/) when missing, when it reaches 5120 bytes, when its limits
 * differ from ours, or when the message would not fit and the file is
 * older than 15 minutes (Courier's README.maildirquota rules).
 * Everything here blocks on disk: worker threads only.
 */
#ifndef FACTEUR_QUOTA_H
#define FACTEUR_QUOTA_H
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/lib/buf.h"
#include "core/lib/errbuf.h"

#define QUOTA_FILE		"maildirsize"
#define QUOTA_RECALC_SIZE	5120	/* bytes of maildirsize */
#define QUOTA_RECALC_AGE	(15 * 60)	/* seconds */

struct quota_limits {
	long long bytes;	/* 0: no byte limit */
	long long count;	/* 0: no message count limit */
};

struct quota_usage {
	long long bytes, count;
};

/* "1000S,10C", "1000S", "10C" (either order, spaces allowed); -1 if not. */
int  quota_limits_parse(const char *line, struct quota_limits *lim_r);
/* The first line as Dovecot writes it ("1000S,10C", "1000S"), no LF. */
void quota_limits_format(const struct quota_limits *lim, struct buf *out);

/*
 * Parses maildirsize content: limits and the summed usage. A last line
 * without its LF (a writer still appending) is ignored. Returns 0, or -1
 * if the content is malformed (the caller recalculates).
 */
int  quota_file_parse(const char *text, size_t len, struct quota_limits *lim_r,
		      struct quota_usage *use_r);

/* Scans the maildir (path ends in "/"): usage of INBOX and all folders.
 * Returns 0, or -1 + err if the maildir cannot be read. */
int  quota_scan(const char *maildir, struct quota_usage *use_r,
		struct errbuf *err);

/*
 * Rewrites maildirsize from a scan (tmp/ file, renamed into place).
 * Returns 0 with the usage, or -1 + err.
 */
int  quota_recalc(const char *maildir, const struct quota_limits *lim,
		  struct quota_usage *use_r, struct errbuf *err);

/*
 * Would adding add_bytes in add_count messages exceed lim? Reads
 * maildirsize, recalculating it by the rules above. Returns 1 over quota,
 * 0 fits, -1 + err on a disk error (the caller defers). use_r (may be
 * NULL) gets the usage before the addition. now: time() (tests pass their
 * own).
 */
int  quota_check(const char *maildir, const struct quota_limits *lim,
		 long long add_bytes, long long add_count, time_t now,
		 struct quota_usage *use_r, struct errbuf *err);

/*
 * Appends "<bytes> <count>\n" to maildirsize with one O_APPEND write (so
 * concurrent writers never interleave), after the message is stored. A
 * missing file is rebuilt from the maildir instead (it then counts the
 * message already). Returns 0 or -1 + err.
 */
int  quota_add(const char *maildir, const struct quota_limits *lim,
	       long long bytes, long long count, struct errbuf *err);

#endif
