/*
 * table_driver.h - the interface between table.c and the table drivers,
 * and helpers the file-based drivers share (not for table users).
 */
#ifndef FACTEUR_TABLE_DRIVER_H
#define FACTEUR_TABLE_DRIVER_H
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "backends/table.h"
#include "core/lib/strlist.h"

typedef int (*table_dump_cb)(const char *key, const char *value, void *arg);

/* Return values of a driver's open(). */
#define TABLE_OPEN_OK		0
#define TABLE_OPEN_CONFIG	(-1)	/* table_open fails with err */
#define TABLE_OPEN_UNAVAILABLE	(-2)	/* a surrogate answers TEMPFAIL err */

struct table_driver {
	const char *type;		/* "texthash" */
	unsigned    flags;		/* TABLE_F_BLOCKING, TABLE_F_PATTERN */
	/* Sets t->priv. On failure releases what it allocated. */
	int  (*open)(struct table *t, const char *name, struct errbuf *err);
	/* key is already folded and length-checked; value_r already reset. */
	enum table_status (*lookup)(struct table *t, const char *key,
				    struct buf *value_r, struct errbuf *err);
	/* Optional (NULL: "cannot be listed"). */
	int  (*dump)(struct table *t, table_dump_cb cb, void *arg,
		     struct errbuf *err);
	/* Optional: appends the warnings of the last (re)load. */
	void (*warnings)(struct table *t, struct strlist *out);
	void (*close)(struct table *t);
};

struct table {
	const struct table_driver *drv;
	char      *spec;	/* "type:name" as given */
	unsigned   flags;	/* driver flags | TABLE_F_FOLD from open */
	void      *priv;	/* driver state */
	char      *surrogate;	/* non-NULL: why every lookup is TEMPFAIL */
	struct table_cache *cache;	/* NULL: every lookup asks the driver */
};

extern const struct table_driver table_texthash_driver;
extern const struct table_driver table_hash_driver;
extern const struct table_driver table_inline_driver;
extern const struct table_driver table_static_driver;
extern const struct table_driver table_cidr_driver;
extern const struct table_driver table_fail_driver;
extern const struct table_driver table_regexp_driver;
extern const struct table_driver table_pcre_driver;
extern const struct table_driver table_mysql_driver;
extern const struct table_driver table_ldap_driver;

/* Stores n bytes of s as the value; CONFIG + err if value_r's limit is hit. */
enum table_status table_set_value(struct buf *value_r, const char *s,
				  size_t n, const char *key, struct errbuf *err);

/* Strips one pair of enclosing braces and the white space inside them:
 * "{ a b }" -> "a b". Returns an owned copy; NULL + err if unbalanced. */
char *table_unbrace(const char *s, struct errbuf *err);

/*
 * Table lists, for addr_find: like table_list_lookup, but tables whose
 * flags intersect skip_flags are not consulted (partial address keys are
 * not given to pattern tables).
 */
enum table_status table_list_lookup_skip(struct table_list *l, const char *key,
					 unsigned skip_flags, struct buf *value_r,
					 struct errbuf *err,
					 const struct table **which_r);

/*
 * Logical lines of a Postfix map source: "#" lines and blank lines are
 * skipped; a line starting with white space continues the previous one.
 */
struct table_lines {
	const char *p, *end;
	const char *path;
	int         lineno;		/* last physical line read */
	struct buf  line;
};
void table_lines_init(struct table_lines *r, const char *path,
		      const char *data, size_t len);
/* 1: *line_r (trimmed, valid until the next call), *lineno_r = its first
 * line; 0: end; -1: err ("FILE, line N: ..."). */
int  table_lines_next(struct table_lines *r, const char **line_r,
		      int *lineno_r, struct errbuf *err);
void table_lines_free(struct table_lines *r);

/* Reads a whole map source file (at most TABLE_FILE_MAX bytes, no NUL).
 * Returns 0; TABLE_TEMPFAIL if it cannot be opened or read ("open FILE:
 * strerror"); TABLE_CONFIG if too large or binary. st_r gets fstat(). */
#define TABLE_FILE_MAX ((size_t)1 << 30)
int table_file_read(const char *path, struct buf *data_r, struct stat *st_r,
		    struct errbuf *err);

/*
 * A watched source file: parsed data that is reloaded when the file's
 * identity, size or mtime changes (checked at most once per interval).
 * Lookups hold the read lock; one thread at a time reloads, others keep
 * using the current data meanwhile.
 */
struct table_source {
	pthread_rwlock_t lock;		/* data, status, reason, warnings */
	pthread_mutex_t  check_lock;	/* last_check, st, have_st */
	char            *path;
	void            *data;		/* parser result, NULL unless OK */
	enum table_status status;	/* FOUND = usable, TEMPFAIL, CONFIG */
	char             reason[1024];
	struct strlist   warnings;
	int64_t          last_check_ms;
	struct stat      st;
	bool             have_st;
	/* Parses data; 0, or -1 + err ("FILE, line N: ..."). */
	int  (*parse)(const char *path, const char *data, size_t len,
		      void *arg, void **data_r, struct strlist *warnings,
		      struct errbuf *err);
	void (*free_data)(void *data);
	void            *arg;
};

/* The end of the {...} group starting at p (after its '}'), or NULL when
 * the braces do not balance (inline:{...}, regexp:{{...}}). */
const char *table_brace_end(const char *p);

/* Loads once. -1 + err on a parse error (a config error at open); a
 * missing or unreadable file is 0 with the source answering TEMPFAIL. */
int  table_source_open(struct table_source *s, const char *path,
		       int (*parse)(const char *, const char *, size_t, void *,
				    void **, struct strlist *, struct errbuf *),
		       void (*free_data)(void *), void *arg, struct errbuf *err);
/* Rechecks the file if due, then read-locks. FOUND: *data_r is usable
 * until table_source_release(); TEMPFAIL/CONFIG + err: not locked. */
enum table_status table_source_acquire(struct table_source *s, void **data_r,
				       struct errbuf *err);
void table_source_release(struct table_source *s);
/* A source whose text is given (inline rules): parsed once, never
 * reloaded; label names it in errors. 0, or -1 + err. */
int  table_source_open_text(struct table_source *s, const char *label,
			    const char *text, size_t len,
			    int (*parse)(const char *, const char *, size_t,
					 void *, void **, struct strlist *,
					 struct errbuf *),
			    void (*free_data)(void *), void *arg,
			    struct errbuf *err);
void table_source_warnings(struct table_source *s, struct strlist *out);
void table_source_close(struct table_source *s);
/* Minimum time between two stat() calls (default 1000 ms; tests lower it). */
void table_source_set_interval(unsigned ms);



/*
 * Pattern tables (regexp:, pcre:) share one rule engine: Postfix's
 * regexp_table(5)/pcre_table(5) syntax "/pattern/flags result",
 * "!/pattern/ result", "if /pattern/flags" ... "endif", and $1, ${1},
 * $$ in results. The drivers supply the regular expression library.
 */
#define TABLE_PATTERN_NSUB_MAX 99
struct table_pattern_ops {
	/* Compiles with Postfix's default flags toggled by those in flags;
	 * *nsub_r = number of capture groups. NULL + err on error. */
	void *(*compile)(const char *pattern, const char *flags,
			 size_t *nsub_r, struct errbuf *err);
	/* 1 match (ovec[2i], ovec[2i+1] = group i offsets, -1 if unset,
	 * for i <= nsub), 0 no match, -1 + err on a matcher error. */
	int   (*exec)(void *re, const char *key, size_t nsub, long *ovec,
		      struct errbuf *err);
	void  (*free)(void *re);
};
int  table_pattern_open(struct table *t, const char *name,
			const struct table_pattern_ops *ops, struct errbuf *err);
enum table_status table_pattern_lookup(struct table *t, const char *key,
				       struct buf *value_r, struct errbuf *err);
void table_pattern_warnings(struct table *t, struct strlist *out);
void table_pattern_close(struct table *t);
#endif
