/*
 * config_int.h - what config.c and master_cf.c share: the entry table,
 * the logical-line reader and limits. Not for other modules (they use
 * config.h).
 */
#ifndef FACTEUR_CONFIG_INT_H
#define FACTEUR_CONFIG_INT_H
#include <pthread.h>
#include <stdbool.h>

#include "core/config.h"
#include "core/lib/buf.h"

#define CONFIG_FILE_MAX		(4 * 1024 * 1024)	/* main.cf, master.cf */
#define CONFIG_VALUE_MAX	(1024 * 1024)		/* one value, expanded */
#define CONFIG_EXPAND_DEPTH	100			/* $a -> $b -> ... */
#define CONFIG_NAME_MAX		100			/* parameter name length */
#define CFG_WHERE_MAX		640			/* "FILE, line N" */

struct cfent {
	char   *name;
	char   *raw;		/* as written; NULL = not set (cache only) */
	char   *file;
	int     line;
	char   *expanded;	/* cache of the expanded value */
	bool    busy;		/* being expanded (loop detection) */
	bool    ordered;	/* in config.order */
	bool    from_override;	/* set by -o, not main.cf */
};

struct config {
	struct cfent **tab;	/* open addressing, cap a power of two */
	size_t  cap, n;
	struct cfent **order;	/* set entries, in first-set order */
	size_t  norder, order_cap;
	struct master_cf master;
	struct master_cf transports;	/* unix smtp/lmtp/pipe/... lines */
	struct strlist ignored_refs;	/* -o values of services not run */
	char   *dir;
	pthread_mutex_t lock;	/* guards the expansion cache */
};

struct cfg_reader {
	const char *p;		/* next unread byte */
	const char *fname;
	int     lineno;		/* lines consumed so far */
};

struct config *cfg_new(const char *dir);
struct cfent *cfg_lookup(const struct config *c, const char *name);
struct cfent *cfg_intern(struct config *c, const char *name);
void cfg_set(struct config *c, const char *name, const char *raw,
	     const char *file, int line);
bool cfg_valid_name(const char *s, size_t n);
void cfg_where_str(char *out, size_t outsz, const char *file, int line);
int  cfg_next_logical(struct cfg_reader *r, struct buf *out, int *first_line_r,
		      struct strlist *warnings_r, struct errbuf *err);
void cfg_warn(struct strlist *warnings_r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
char *cfg_read_file(const char *path, bool *missing_r, struct errbuf *err);
/* Sorted names that other values reference ($name, restriction classes). */
void cfg_collect_used(const struct config *c, struct strlist *used);
bool cfg_is_used(const struct strlist *used, const char *name);

/* master_cf.c */
void master_cf_clear(struct master_cf *m);
void master_cf_copy(struct master_cf *dst, const struct master_cf *src);
/* Postfix's behaviour without master.cf: "smtp inet ... smtpd" on port 25. */
void master_cf_default(struct config *c, const char *path);

#endif
