/*
 * cli_status.c - `facteur status [--metrics]`: asks the running facteurd
 * over its control socket ($queue_directory/private/control, reachable by
 * root and mail_owner) and prints its answer: listeners, sessions, queue
 * sizes by state, last-minute rates, tables that failed. --metrics prints
 * the Prometheus text instead. Exit 0, or 1 when facteurd is not running
 * or cannot be asked.
 * Must not: change anything, or wait longer than a few seconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/control.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/params.h"

int
cli_status(struct cli *cli, int argc, char **argv)
{
	const char *what = "status";
	struct errbuf err;
	char *out = NULL, *qdir;
	long long timeout;
	int rc;

	if (argc == 2 && strcmp(argv[1], "--metrics") == 0)
		what = "metrics";
	else if (argc != 1) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "usage: facteur status "
			  "[--metrics]");
		return 2;
	}
	if (cli_control_target(cli, &qdir, &timeout) < 0)
		return 1;
	errbuf_clear(&err);
	rc = control_request(qdir, what, 10, &out, &err);
	free(qdir);
	if (rc < 0) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "%s", errbuf_str(&err));
		return 1;
	}
	fputs(out, stdout);
	rc = strncmp(out, "error:", 6) == 0 ? 1 : 0;
	free(out);
	return rc;
}
