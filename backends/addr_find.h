/*
 * addr_find.h - Postfix's search order for address keys in a table list.
 * For user+ext@domain with recipient_delimiter "+":
 *   user+ext@domain, user@domain, [user+ext, user  (ADDR_FIND_BARE_USER)],
 *   @domain  (unless ADDR_FIND_NO_DOMAIN)
 * as virtual(5) describes for virtual_alias_maps and virtual(8) for
 * virtual_mailbox_maps. Pattern tables (cidr/regexp/pcre) get the full
 * address only. The local part is matched as given (case-folded by the
 * table). Must not: rewrite the address or decide what a result means.
 */
#ifndef FACTEUR_ADDR_FIND_H
#define FACTEUR_ADDR_FIND_H
#include "backends/table.h"

enum addr_find_flags {
	ADDR_FIND_BARE_USER = 1 << 0,	/* also try "user" alone (local domains) */
	ADDR_FIND_NO_DOMAIN = 1 << 1,	/* do not try "@domain" */
};

/*
 * local: the unquoted local part; domain: lowercased, may be "".
 * delimiters: recipient_delimiter value (each character is a delimiter, as
 * in Postfix >= 2.11), may be "" or NULL.
 * extension_r (may be NULL): set to the owned extension ("ext") when the
 * match used the delimiter-stripped form, else NULL; the caller frees.
 */
enum table_status addr_find(struct table_list *l, const char *local,
			    const char *domain, const char *delimiters,
			    unsigned flags, struct buf *value_r,
			    char **extension_r, struct errbuf *err);

#endif
