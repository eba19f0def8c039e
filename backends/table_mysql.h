/*
 * table_mysql.h - what the mysql: driver exports besides its driver entry
 * (for tests): quoting of values substituted into queries.
 */
#ifndef FACTEUR_TABLE_MYSQL_H
#define FACTEUR_TABLE_MYSQL_H
#include "core/lib/buf.h"
#include "core/lib/errbuf.h"

/*
 * Appends s escaped by mysql_real_escape_string() on the connection arg
 * (a MYSQL *, whose character set and NO_BACKSLASH_ESCAPES mode decide
 * the escaping) for use inside '...' in a query. 0, or -1 + err.
 */
int table_mysql_quote(void *arg, const char *s, struct buf *out,
		      struct errbuf *err);

#endif
