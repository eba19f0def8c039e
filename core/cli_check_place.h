/*
 * cli_check_place.h - the place of a configuration error: the same words
 * in `facteur check` and in facteurd's start-up and reload refusals.
 */
#ifndef FACTEUR_CLI_CHECK_PLACE_H
#define FACTEUR_CLI_CHECK_PLACE_H
#include <stdbool.h>

#include "core/config.h"
#include "core/lib/errbuf.h"

/*
 * Puts "FILE, line N: " in front of err's text for the first parameter
 * it names ("NAME:" or "NAME ="), where c sees it set: main.cf, or with
 * svc the master.cf line of that service's -o override. Nothing when the
 * text names no parameter set in a file, or names the file already.
 * Returns whether a place was added.
 */
bool config_place_error(struct errbuf *err, const struct config *c,
			const struct master_service *svc);

#endif
