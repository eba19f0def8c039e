/*
 * rewrite_alias.h - alias_maps for the mydestination domains, as local(8)
 * reads them: a file-based item (hash:, texthash:, btree:, lmdb:, cdb:,
 * dbm:, sdbm: + a path) is the aliases(5) text file itself ("name: a, b",
 * continuation lines start with white space, "#" comments; no .db step,
 * reloaded when it changes); other items (inline:, ldap:, mysql: ...) are
 * ordinary tables whose key is the alias name.
 * Must not: deliver anything; the meaning of a value (|command, /file,
 * :include:) is decided by the caller (resolve.c).
 */
#ifndef FACTEUR_REWRITE_ALIAS_H
#define FACTEUR_REWRITE_ALIAS_H
#include <stdbool.h>
#include <stddef.h>

#include "backends/table.h"
#include "core/lib/buf.h"
#include "core/lib/errbuf.h"
#include "core/lib/strlist.h"

struct alias_db;

/* NULL + err ("alias_maps: ...") on a configuration error (an unknown map
 * type, a malformed inline: table). A missing file is not an error here:
 * its lookups answer TEMPFAIL (as Postfix defers). */
struct alias_db *alias_db_open(const char *alias_maps, struct errbuf *err);
void alias_db_free(struct alias_db **dp);
bool alias_db_blocking(const struct alias_db *d);
bool alias_db_empty(const struct alias_db *d);

/* name: the lowercased local part. The first table that has it wins. */
enum table_status alias_db_lookup(struct alias_db *d, const char *name,
				  struct buf *value_r, struct errbuf *err);

/*
 * newaliases: reads every source now; *count_r gets the number of
 * aliases, warnings (duplicates, lines without "name:") are appended.
 * -1 + err when a source cannot be read.
 */
int alias_db_check(struct alias_db *d, size_t *count_r,
		   struct strlist *warnings, struct errbuf *err);

/* Every alias of every source, for `facteur map dump`. */
int alias_db_dump(struct alias_db *d,
		  int (*cb)(const char *key, const char *value, void *arg),
		  void *arg, struct errbuf *err);

/* Is spec ("hash:/etc/aliases") read as an aliases(5) file? */
bool alias_spec_is_file(const char *spec);

#endif
