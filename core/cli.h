/*
 * cli.h - what every `facteur` command shares: the parsed -c directory,
 * the error count, and loading the configuration with its findings logged.
 * Each command lives in its own file (core/cli_NAME.c) and is listed once
 * in the command table of core/facteur.c.
 */
#ifndef FACTEUR_CLI_H
#define FACTEUR_CLI_H
#include <stdbool.h>

#include "core/config.h"
#include "core/lib/strlist.h"

struct cli {
	const char *dir;	/* configuration directory (-c) */
	int     errors;		/* findings reported as errors so far */
	struct strlist reported;	/* check: each error is said once */
};

/* Loads DIR/main.cf + master.cf, logging findings (notices only when
 * show_notices). NULL (error logged) on failure. */
struct config *cli_load_config(struct cli *cli, bool show_notices);

/* The commands living in their own files (core/cli_NAME.c). */
int cli_init(struct cli *cli, int argc, char **argv);
int cli_sieve(struct cli *cli, int argc, char **argv);
int cli_queue(struct cli *cli, int argc, char **argv);
int cli_map(struct cli *cli, int argc, char **argv);
int cli_passwd(struct cli *cli, int argc, char **argv);
/* cli_reload.c: queue_directory and facteur_shutdown_timeout from main.cf
 * alone (the running daemon is found even when the files are wrong). */
int cli_control_target(struct cli *cli, char **qdir_r, long long *timeout_r);
int cli_status(struct cli *cli, int argc, char **argv);
int cli_reload(struct cli *cli, int argc, char **argv);
int cli_stop(struct cli *cli, int argc, char **argv);

#endif
