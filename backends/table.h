/*
 * table.h - the one lookup interface for every backend, and table lists.
 * A table is "type:name" (texthash:/etc/x, inline:{a=b}, static:v, cidr:/f,
 * fail:why; later ldap:/x.cf, mysql:/x.cf). A lookup has three outcomes:
 * found, not found, try later; a fourth, CONFIG, is a server misconfiguration.
 * Drivers flagged TABLE_F_BLOCKING may only be looked up off the event loop
 * (worker threads); the others are cheap and may be used anywhere.
 * Lookups on one table from several threads are safe (drivers lock).
 */
#ifndef FACTEUR_TABLE_H
#define FACTEUR_TABLE_H
#include <stdbool.h>
#include <stddef.h>

#include "core/lib/buf.h"
#include "core/lib/errbuf.h"

enum table_status {
	TABLE_FOUND    = 1,
	TABLE_NOTFOUND = 0,
	TABLE_TEMPFAIL = -1,	/* try later: 4xx / defer */
	TABLE_CONFIG   = -2,	/* bad table data or setup: 451 4.3.5 */
};

enum table_flags {
	TABLE_F_BLOCKING = 1 << 0,	/* network or slow: workers only */
	TABLE_F_PATTERN  = 1 << 1,	/* cidr:, regexp:, pcre: (no partial keys) */
	TABLE_F_FOLD     = 1 << 2,	/* keys are lowercased before lookup */
};

/* Longest key accepted; longer keys are NOTFOUND (never a crash). */
#define TABLE_KEY_MAX 1024

struct table;

/*
 * Opens "type:name". Returns NULL + err for a configuration error that can
 * be told now (unknown type: "unsupported dictionary type: foo"; a type
 * known but not compiled in: a different message; bad inline syntax; a map
 * file with a malformed line: "FILE, line N: expected format: key
 * whitespace value"). A table whose source cannot be read at run time (file
 * missing, server down) opens as a surrogate that answers TEMPFAIL with the
 * reason. open_flags: TABLE_F_FOLD to fold keys (the default for address
 * maps, as Postfix's).
 */
struct table *table_open(const char *spec, unsigned open_flags, struct errbuf *err);
void table_close(struct table **tp);
/* The spec as given ("texthash:/etc/x"), for log lines. */
const char *table_name(const struct table *t);
unsigned table_flags(const struct table *t);

/*
 * Looks up one key. value_r receives the value on TABLE_FOUND (reset
 * first). err receives the reason on TEMPFAIL/CONFIG. File tables reload
 * their source when its mtime changes (checked at most once a second).
 */
enum table_status table_lookup(struct table *t, const char *key,
			       struct buf *value_r, struct errbuf *err);

/*
 * Non-blocking mode, for trying an evaluation on the event loop first:
 * between table_nonblock_begin() and table_nonblock_end() (this thread
 * only), a lookup in a TABLE_F_BLOCKING table is answered from its cache
 * when it can be; otherwise it returns TABLE_TEMPFAIL ("lookup would
 * block") without asking the server, and table_nonblock_end() returns
 * true: the caller discards what it evaluated and runs it again on a
 * worker. Cheap tables are looked up as usual. Not nested.
 */
void table_nonblock_begin(void);
bool table_nonblock_end(void);
/* True in non-blocking mode once a lookup would have blocked. */
bool table_nonblock_failed(void);

/*
 * All keys and values (for `facteur map dump`); cb returns nonzero to stop.
 * Returns 0, or -1 + err if the table cannot be listed.
 */
int table_dump(struct table *t, int (*cb)(const char *key, const char *value,
					  void *arg), void *arg, struct errbuf *err);

/*
 * Appends to out the warnings of the table's last load (for `facteur
 * check`), e.g. "FILE, line N: duplicate entry: \"key\"" (the first entry
 * is kept, as Postfix does). Tables without warnings append nothing.
 */
struct strlist;
void table_warnings(struct table *t, struct strlist *out);

/* A table list: "texthash:/a, inline:{x=y}" as in virtual_alias_maps. */
struct table_list;

/* Opens every table of a list value; NULL + err on the first config error.
 * An empty value gives an empty list (every lookup NOTFOUND). */
struct table_list *table_list_open(const char *value, unsigned open_flags,
				   struct errbuf *err);
void table_list_free(struct table_list **lp);
bool table_list_blocking(const struct table_list *l);
/*
 * table_list_open for the value of parameter param (NULL value = empty),
 * with err = "param: reason"; sets *blocking when a table of the list may
 * block (LDAP, SQL), leaves it alone otherwise.
 */
int  table_list_open_param(struct table_list **lp, const char *param,
			   const char *value, unsigned open_flags,
			   bool *blocking, struct errbuf *err);
bool table_list_empty(const struct table_list *l);
/*
 * Tries each table in order; the first FOUND wins. Stops at the first
 * TEMPFAIL/CONFIG (a later table could give a wrong answer), with err =
 * "TYPE:NAME lookup error for \"KEY\": reason". An empty found value is
 * CONFIG. which_r (may be NULL) gets the table that answered.
 */
enum table_status table_list_lookup(struct table_list *l, const char *key,
				    struct buf *value_r, struct errbuf *err,
				    const struct table **which_r);

#endif
