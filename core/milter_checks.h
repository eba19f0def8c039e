/*
 * milter_checks.h - milter_header_checks (Postfix): header_checks(5)
 * tables applied to the header lines milters added or changed, on the
 * commit worker (lookups may block). The actions that make sense there
 * are REJECT, DISCARD, HOLD, REDIRECT, WARN and INFO; changes to the line
 * itself (IGNORE, REPLACE, PREPEND) are not applied, as in Postfix.
 * Must not: run on the event loop.
 */
#ifndef FACTEUR_MILTER_CHECKS_H
#define FACTEUR_MILTER_CHECKS_H
#include <stddef.h>

#include "core/cleanup_headers.h"
#include "core/lib/strlist.h"

/*
 * Runs the tables of value (milter_header_checks) on the lines (each
 * "Name: value", LF-folded). The tables are opened once per value and
 * kept for the process (the files are re-read when they change, as every
 * table). 0 with r filled, or -1 with err when the tables cannot be
 * opened (the message is then deferred).
 */
int milter_checks_run(const char *value, const struct strlist *lines,
		      const struct cleanup_log_ctx *lc, struct cleanup_result *r,
		      char *err, size_t errlen);

#endif
