/*
 * cli_check_place.c - puts the file and line of the setting an error
 * names in front of it (see cli_check_place.h), for facteur check and for
 * facteurd's start-up and reload messages alike, so both say the same.
 * Must not: change the text otherwise, or guess a place for a parameter
 * left at its default.
 */
#include <stdio.h>
#include <string.h>

#include "core/cli_check_place.h"
#include "core/params.h"

/* The first "NAME:" or "NAME =" in msg that is a parameter, or 0. */
static size_t
msg_param(const char *msg, char *name, size_t size)
{
	for (const char *p = msg; *p;) {
		size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");

		if (n > 0 && n < size && (p == msg || p[-1] == ' ' ||
		    p[-1] == '"') && (p[n] == ':' || strncmp(p + n, " =", 2) == 0)) {
			memcpy(name, p, n);
			name[n] = '\0';
			if (params_find(name) != NULL)
				return n;
		}
		p += n > 0 ? n : 1;
	}
	return 0;
}

bool
config_place_error(struct errbuf *err, const struct config *c,
		   const struct master_service *svc)
{
	struct config *lc = NULL;
	struct errbuf e, old = *err;
	const char *file;
	char name[128];
	bool placed = false;
	int line;

	if (msg_param(old.msg, name, sizeof(name)) == 0)
		return false;
	errbuf_clear(&e);
	if (svc != NULL && (lc = config_with_service(c, svc, &e)) != NULL)
		c = lc;
	if (config_where(c, name, &file, &line) &&
	    strstr(old.msg, file) == NULL) {
		if (line > 0)
			errbuf_set(err, "%s, line %d: %s", file, line, old.msg);
		else
			errbuf_set(err, "%s: %s", file, old.msg);
		placed = true;
	}
	config_free(&lc);
	return placed;
}
