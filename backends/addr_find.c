/*
 * addr_find.c - Postfix's search order for an address in a table list
 * (virtual(5) for virtual_alias_maps, virtual(8) for virtual_mailbox_maps):
 * user+ext@domain, user@domain, [user+ext, user], @domain.
 * Must not: rewrite the address, decide what a found value means, or go on
 * searching after a table could not answer.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/addr_find.h"
#include "backends/table_driver.h"
#include "core/lib/xmalloc.h"

/*
 * Length of the base local part when it carries an extension, else 0.
 * As Postfix's split_addr(): postmaster, MAILER-DAEMON and double-bounce
 * are never split; with "-" as a delimiter neither are owner-foo and
 * foo-request (mailing-list conventions); the extension starts at the
 * first delimiter character, and a local part starting with a delimiter
 * (empty base) is not split.
 */
static size_t
addr_find_split(const char *local, const char *delimiters)
{
	size_t len, base;

	if (delimiters == NULL || *delimiters == '\0')
		return 0;
	if (strcasecmp(local, "postmaster") == 0 ||
	    strcasecmp(local, "MAILER-DAEMON") == 0 ||
	    strcasecmp(local, "double-bounce") == 0)
		return 0;
	len = strlen(local);
	if (strchr(delimiters, '-') != NULL) {
		if (strncasecmp(local, "owner-", 6) == 0)
			return 0;
		if (len > 8 && strcasecmp(local + len - 8, "-request") == 0)
			return 0;
	}
	base = strcspn(local, delimiters);
	if (base == 0 || local[base] == '\0')
		return 0;
	return base;
}

enum table_status
addr_find(struct table_list *l, const char *local, const char *domain,
	  const char *delimiters, unsigned flags, struct buf *value_r,
	  char **extension_r, struct errbuf *err)
{
	struct {
		char *key;
		bool  stripped;
		bool  full;
	} keys[5];
	size_t nkeys = 0, base;
	enum table_status st = TABLE_NOTFOUND;

	if (extension_r)
		*extension_r = NULL;
	buf_reset(value_r);
	errbuf_clear(err);
	if (local == NULL)
		local = "";
	if (domain == NULL)
		domain = "";
	base = addr_find_split(local, delimiters);

	keys[nkeys].key = *domain ? xasprintf("%s@%s", local, domain) : xstrdup(local);
	keys[nkeys].stripped = false;
	keys[nkeys++].full = true;
	if (base) {
		keys[nkeys].key = *domain ?
		    xasprintf("%.*s@%s", (int)base, local, domain) :
		    xstrndup(local, base);
		keys[nkeys].stripped = true;
		keys[nkeys++].full = false;
	}
	if ((flags & ADDR_FIND_BARE_USER) && *domain) {
		keys[nkeys].key = xstrdup(local);
		keys[nkeys].stripped = false;
		keys[nkeys++].full = false;
		if (base) {
			keys[nkeys].key = xstrndup(local, base);
			keys[nkeys].stripped = true;
			keys[nkeys++].full = false;
		}
	}
	if (!(flags & ADDR_FIND_NO_DOMAIN) && *domain) {
		keys[nkeys].key = xasprintf("@%s", domain);
		keys[nkeys].stripped = false;
		keys[nkeys++].full = false;
	}

	for (size_t i = 0; i < nkeys; i++) {
		/* Pattern tables only ever see the full address. */
		st = table_list_lookup_skip(l, keys[i].key,
					    keys[i].full ? 0 : TABLE_F_PATTERN,
					    value_r, err, NULL);
		if (st == TABLE_NOTFOUND)
			continue;
		if (st == TABLE_FOUND && keys[i].stripped && extension_r)
			*extension_r = xstrdup(local + base + 1);
		break;
	}
	for (size_t i = 0; i < nkeys; i++)
		free(keys[i].key);
	return st;
}
