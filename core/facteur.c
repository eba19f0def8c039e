/*
 * facteur.c - the `facteur` admin command: `facteur [-c DIR] COMMAND ...`.
 * Commands are rows of one table (name, handler, usage), so new ones slot
 * in without touching the dispatcher. This version: conf, check, help.
 * Must not: change anything on disk or talk to a running facteurd for the
 * read-only commands (conf, check); every error goes to stderr through
 * log.c's CLI mode ("facteur: error: ..."), and the exit status says it
 * (0 fine, 1 a finding or error, 2 bad usage).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/table.h"
#include "core/cli.h"
#include "core/config.h"
#include "core/lib/buf.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/params.h"
#include "core/smtpd_check.h"

#if defined(__FreeBSD__) || defined(__DragonFly__)
#define FACTEUR_CONFIG_DIR "/usr/local/etc/facteur"
#else
#define FACTEUR_CONFIG_DIR "/etc/facteur"
#endif

struct cli_command {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
	const char *usage;	/* arguments after the command name */
	const char *help;	/* one line */
};

static int cmd_conf(struct cli *, int, char **);
static int cmd_check(struct cli *, int, char **);
static int cmd_help(struct cli *, int, char **);

static const struct cli_command commands[] = {
	{ "conf", cmd_conf, "[-n] [-d] [-x] [-h] [name ...]",
	  "print parameters (-n: set in main.cf, -d: defaults, -x: expanded, "
	  "-h: values only)" },
	{ "check", cmd_check, "",
	  "validate main.cf, master.cf and every map they name" },
	{ "init", cli_init, "--mode MODE --domain DOMAIN [--hostname HOST] "
	  "[--relayhost HOST] [--backend file] [--mail-owner USER] [--root PREFIX] "
	  "[--listen ADDR:PORT] [DIR]",
	  "write a first configuration for a classic mode (internet-site, "
	  "smarthost, satellite, local-only)" },
	{ "help", cmd_help, "", "this text" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: facteur [-c config_dir] command [args ...]\n"
		"config_dir defaults to %s\n\ncommands:\n", FACTEUR_CONFIG_DIR);
	for (size_t i = 0; i < NCOMMANDS; i++) {
		fprintf(fp, "  %s %s\n", commands[i].name, commands[i].usage);
		fprintf(fp, "      %s\n", commands[i].help);
	}
}

static int
cmd_help(struct cli *cli, int argc, char **argv)
{
	usage(stdout);
	return 0;
}

/*
 * Simple flag parsing for a subcommand: "-nd", "-n -d", "--" ends flags.
 * Sets flags[c] for each letter in allowed; returns the index of the first
 * operand, or -1 on an unknown flag (after printing usage).
 */
static int
parse_flags(int argc, char **argv, const char *allowed, bool flags[128],
	    const char *cmd)
{
	int i;

	memset(flags, 0, 128 * sizeof(bool));
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (strcmp(argv[i], "--") == 0)
			return i + 1;
		for (const char *p = argv[i] + 1; *p; p++) {
			if ((unsigned char)*p >= 128 || strchr(allowed, *p) == NULL) {
				log_write(NULL, NULL, LOG_LVL_ERROR, "%s: unknown "
					  "option: -%c", cmd, *p);
				return -1;
			}
			flags[(unsigned char)*p] = true;
		}
	}
	return i;
}

/* Logs one finding from config.c ("warning: ...", "notice: ..."). */
static void
log_finding(const char *w)
{
	static const struct {
		const char *prefix;
		enum log_level lvl;
	} levels[] = {
		{ "warning: ", LOG_LVL_WARNING },
		{ "notice: ", LOG_LVL_NOTICE },
		{ "error: ", LOG_LVL_ERROR },
	};

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		size_t n = strlen(levels[i].prefix);

		if (strncmp(w, levels[i].prefix, n) == 0) {
			log_write(NULL, NULL, levels[i].lvl, "%s", w + n);
			return;
		}
	}
	log_write(NULL, NULL, LOG_LVL_INFO, "%s", w);
}

struct config *
cli_load_config(struct cli *cli, bool show_notices)
{
	struct strlist warnings;
	struct errbuf err;
	struct config *c;

	strlist_init(&warnings);
	errbuf_clear(&err);
	c = config_load(cli->dir, &warnings, &err);
	for (size_t i = 0; i < warnings.n; i++)
		if (show_notices || strncmp(warnings.v[i], "notice: ", 8) != 0)
			log_finding(warnings.v[i]);
	strlist_free(&warnings);
	if (c == NULL)
		log_write(NULL, NULL, LOG_LVL_ERROR, "%s", errbuf_str(&err));
	return c;
}

/* ---- conf ---- */

static void
print_param(const char *name, const char *value, bool value_only)
{
	if (value_only)
		printf("%s\n", value);
	else if (*value)
		printf("%s = %s\n", name, value);
	else
		printf("%s =\n", name);
}

static int
cmd_conf(struct cli *cli, int argc, char **argv)
{
	bool f[128];
	struct config *c;
	struct errbuf err;
	int first, rc = 0;

	if ((first = parse_flags(argc, argv, "ndxh", f, "conf")) < 0)
		return 2;
	if (f['d'] && f['n']) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "conf: -d and -n exclude "
			  "each other");
		return 2;
	}
	if ((c = cli_load_config(cli, false)) == NULL)
		return 1;
	errbuf_clear(&err);

	if (first < argc) {
		/* Named parameters: expanded, as `postconf -x NAME`. */
		for (int i = first; i < argc; i++) {
			const struct param_def *d = params_find(argv[i]);
			const char *v;

			if (f['d']) {
				if (d == NULL) {
					log_write(NULL, NULL, LOG_LVL_WARNING,
						  "%s: unknown parameter", argv[i]);
					rc = 1;
					continue;
				}
				print_param(d->name, d->def, f['h']);
				continue;
			}
			if ((v = config_get_err(c, argv[i], &err)) == NULL) {
				if (d == NULL && config_raw(c, argv[i]) == NULL)
					log_write(NULL, NULL, LOG_LVL_WARNING,
						  "%.200s: unknown parameter", argv[i]);
				else
					log_write(NULL, NULL, LOG_LVL_ERROR, "%s",
						  errbuf_str(&err));
				rc = 1;
				continue;
			}
			print_param(argv[i], v, f['h']);
		}
	} else if (f['n']) {
		/* What main.cf sets, as written, like `postconf -n`. */
		struct strlist names;

		strlist_init(&names);
		config_names_set(c, &names);
		for (size_t i = 0; i < names.n; i++) {
			const char *v = config_raw(c, names.v[i]);

			if (f['x'] && (v = config_get_err(c, names.v[i], &err)) == NULL) {
				log_write(NULL, NULL, LOG_LVL_ERROR, "%s",
					  errbuf_str(&err));
				rc = 1;
				continue;
			}
			print_param(names.v[i], v, f['h']);
		}
		strlist_free(&names);
	} else {
		/* Every known parameter, sorted, like `postconf`. */
		for (const struct param_def *d = params_all(); d->name; d++) {
			const char *v = f['d'] ? d->def : config_raw(c, d->name);

			if (v == NULL)
				v = d->def;
			if (f['x'] && !f['d'] &&
			    (v = config_get_err(c, d->name, &err)) == NULL) {
				log_write(NULL, NULL, LOG_LVL_ERROR, "%s",
					  errbuf_str(&err));
				rc = 1;
				continue;
			}
			print_param(d->name, v, f['h']);
		}
	}
	config_free(&c);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "conf: write error: %s",
			  strerror(errno));
		rc = 1;
	}
	return rc;
}

/* ---- check ---- */

static void
check_error(struct cli *cli, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
check_error(struct cli *cli, const char *fmt, ...)
{
	va_list ap;
	struct buf b;

	/* A listener without overrides repeats main.cf's errors: say it once. */
	buf_init(&b, 0);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (!strlist_contains(&cli->reported, buf_cstr(&b))) {
		strlist_add(&cli->reported, buf_cstr(&b));
		log_write(NULL, NULL, LOG_LVL_ERROR, "%s", buf_cstr(&b));
	}
	buf_free(&b);
	cli->errors++;
}

/* "FILE, line N: NAME" or "default value of NAME", for messages. */
static void
param_place(const struct config *c, const char *name, char *out, size_t n)
{
	const char *file;
	int line;

	if (!config_where(c, name, &file, &line))
		snprintf(out, n, "default value of %s", name);
	else if (line > 0)
		snprintf(out, n, "%s, line %d: %s", file, line, name);
	else
		snprintf(out, n, "%s: %s", file, name);
}

/*
 * Opens one table and asks it for a key nobody has: a table whose source
 * is missing or whose server is down answers TEMPFAIL, which we report.
 */
static void
check_table(struct cli *cli, const char *where, const char *spec,
	    struct strlist *seen)
{
	struct strlist warnings;
	struct errbuf err;
	struct table *t;
	struct buf v;

	if (strlist_contains(seen, spec))
		return;
	strlist_add(seen, spec);
	errbuf_clear(&err);
	if ((t = table_open(spec, TABLE_F_FOLD, &err)) == NULL) {
		check_error(cli, "%s: %s", where, errbuf_str(&err));
		return;
	}
	buf_init(&v, 0);
	switch (table_lookup(t, "facteur-check-probe@invalid", &v, &err)) {
	case TABLE_TEMPFAIL:
	case TABLE_CONFIG:
		check_error(cli, "%s: %s: %s", where, spec, errbuf_str(&err));
		break;
	default:
		break;
	}
	buf_free(&v);
	strlist_init(&warnings);
	table_warnings(t, &warnings);
	for (size_t i = 0; i < warnings.n; i++)
		log_write(NULL, NULL, LOG_LVL_WARNING, "%s", warnings.v[i]);
	strlist_free(&warnings);
	table_close(&t);
}

/* A parameter whose whole value is a list of tables. */
static void
check_map_param(struct cli *cli, const struct config *c, const char *name,
		bool only_tables, struct strlist *seen)
{
	char where[1200];
	struct strlist items;
	struct errbuf err;
	struct table_list *l;
	const char *v;

	param_place(c, name, where, sizeof(where));
	errbuf_clear(&err);
	if ((v = config_get_err(c, name, &err)) == NULL) {
		check_error(cli, "%s", errbuf_str(&err));
		return;
	}
	strlist_init(&items);
	if (strlist_split(&items, v) < 0) {
		check_error(cli, "%s: unbalanced '{' or '}' in \"%.200s\"", where, v);
		return;
	}
	if (!only_tables) {
		/* Open it as the daemon will, as one list. */
		if ((l = table_list_open(v, TABLE_F_FOLD, &err)) == NULL)
			check_error(cli, "%s: %s", where, errbuf_str(&err));
		table_list_free(&l);
	}
	for (size_t i = 0; i < items.n; i++) {
		/* Domain lists mix names and tables; only type:name are tables. */
		if (only_tables && strchr(items.v[i], ':') == NULL)
			continue;
		check_table(cli, where, items.v[i], seen);
	}
	strlist_free(&items);
}

static void
check_maps(struct cli *cli, const struct config *c, struct strlist *seen)
{
	static const char *const maps[] = {
		"virtual_mailbox_maps", "virtual_alias_maps",
		"virtual_uid_maps", "virtual_gid_maps",
	};
	static const char *const domain_lists[] = {
		"virtual_mailbox_domains", "virtual_alias_domains",
		"mydestination", "relay_domains",
	};

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		check_map_param(cli, c, maps[i], false, seen);
	for (size_t i = 0; i < sizeof(domain_lists) / sizeof(domain_lists[0]); i++)
		check_map_param(cli, c, domain_lists[i], true, seen);
}

/* Checks that need several parameters together. */
static void
check_settings(struct cli *cli, const struct config *c, const struct settings *s)
{
	char where[1200];
	struct smtpd_check_lists lists;
	struct errbuf err;

	errbuf_clear(&err);
	if (smtpd_check_lists_compile(&lists, c, &err) < 0)
		check_error(cli, "%s", errbuf_str(&err));
	else
		smtpd_check_lists_free(&lists);

	if (*s->virtual_mailbox_maps && *s->virtual_mailbox_base == '\0') {
		param_place(c, "virtual_mailbox_maps", where, sizeof(where));
		check_error(cli, "%s is set but virtual_mailbox_base is empty: "
			    "set it to the directory the maildirs live under",
			    where);
	}
	if (*s->virtual_mailbox_base && s->virtual_mailbox_base[0] != '/') {
		param_place(c, "virtual_mailbox_base", where, sizeof(where));
		check_error(cli, "%s: \"%.200s\" is not an absolute path", where,
			    s->virtual_mailbox_base);
	}
}

/*
 * queue_directory must exist as a directory, or its nearest existing
 * ancestor must be a directory we could create it in.
 */
static void
check_queue_directory(struct cli *cli, const struct config *c, const char *dir)
{
	char where[1200];
	struct stat st;
	char *p;

	param_place(c, "queue_directory", where, sizeof(where));
	if (dir[0] != '/') {
		check_error(cli, "%s: \"%.200s\" is not an absolute path", where, dir);
		return;
	}
	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			check_error(cli, "%s: %.200s exists but is not a directory",
				    where, dir);
		return;
	}
	if (errno != ENOENT) {
		check_error(cli, "%s: %.200s: %s", where, dir, strerror(errno));
		return;
	}
	p = xstrdup(dir);
	for (;;) {
		char *slash = strrchr(p, '/');

		if (slash == NULL)
			break;
		if (slash == p)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(p, &st) == 0) {
			if (!S_ISDIR(st.st_mode))
				check_error(cli, "%s: cannot create %.200s: %.200s "
					    "is not a directory", where, dir, p);
			else if (access(p, W_OK | X_OK) != 0)
				check_error(cli, "%s: cannot create %.200s: %.200s: "
					    "%s", where, dir, p, strerror(errno));
			break;
		}
		if (strcmp(p, "/") == 0)
			break;
	}
	free(p);
}

static int
cmd_check(struct cli *cli, int argc, char **argv)
{
	struct settings s;
	struct strlist seen;
	struct errbuf err;
	struct config *c;
	const struct master_cf *m;

	if (argc > 1) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "check: unexpected argument: "
			  "%.200s", argv[1]);
		return 2;
	}
	if ((c = cli_load_config(cli, true)) == NULL)
		return 1;
	memset(&s, 0, sizeof(s));
	strlist_init(&seen);
	errbuf_clear(&err);
	if (settings_load(&s, c, &err) < 0) {
		check_error(cli, "%s", errbuf_str(&err));
	} else {
		check_settings(cli, c, &s);
		check_queue_directory(cli, c, s.queue_directory);
		check_maps(cli, c, &seen);
	}
	settings_free(&s);

	/* Each listener sees main.cf plus its own -o overrides. */
	m = config_master(c);
	for (size_t i = 0; i < m->n; i++) {
		struct config *lc = config_with_service(c, &m->v[i], &err);

		if (lc == NULL) {
			check_error(cli, "%s", errbuf_str(&err));
			continue;
		}
		memset(&s, 0, sizeof(s));
		if (settings_load(&s, lc, &err) < 0) {
			check_error(cli, "%s", errbuf_str(&err));
		} else if (m->v[i].overrides.n > 0) {
			check_settings(cli, lc, &s);
			check_maps(cli, lc, &seen);
		}
		settings_free(&s);
		config_free(&lc);
	}
	strlist_free(&seen);
	config_free(&c);
	return cli->errors ? 1 : 0;
}

/* ---- main ---- */

int
main(int argc, char **argv)
{
	struct cli cli;
	int i, rc;

	memset(&cli, 0, sizeof(cli));
	cli.dir = FACTEUR_CONFIG_DIR;
	strlist_init(&cli.reported);

	log_set_cli(1);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			cli.dir = argv[++i];
		} else if (strncmp(argv[i], "-c", 2) == 0 && argv[i][2]) {
			cli.dir = argv[i] + 2;
		} else if (strcmp(argv[i], "-h") == 0 ||
			   strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	for (size_t k = 0; k < NCOMMANDS; k++)
		if (strcmp(argv[i], commands[k].name) == 0) {
			rc = commands[k].run(&cli, argc - i, argv + i);
			strlist_free(&cli.reported);
			return rc;
		}
	log_write(NULL, NULL, LOG_LVL_ERROR, "unknown command: %.100s", argv[i]);
	usage(stderr);
	return 2;
}
