/*
 * facteur.c - the `facteur` admin command: `facteur [-c DIR] COMMAND ...`.
 * Commands are rows of one table (name, handler, usage), so new ones slot
 * in without touching the dispatcher. This version: conf, check, help.
 * Must not: change anything on disk or talk to a running facteurd for the
 * read-only commands (conf, check); every error goes to stderr through
 * log.c's CLI mode ("facteur: error: ..."), and the exit status says it
 * (0 fine, 1 a finding or error, 2 bad usage).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "backends/table.h"
#include "core/cli.h"
#include "core/cli_check.h"
#include "core/cli_check_place.h"
#include "core/config.h"
#include "core/lib/buf.h"
#include "core/lib/fsync.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/params.h"
#include "core/pickup.h"
#include "core/postscreen.h"
#include "core/rewrite.h"
#include "core/rewrite_alias.h"
#include "core/smtpd_check.h"
#include "core/smtpd_server.h"

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
	{ "conf", cmd_conf, "[-n] [-d] [-x] [-h] [name ...] | -e name=value ... "
	  "| -M",
	  "print parameters (-n: set in main.cf, -d: defaults, -x: expanded, "
	  "-h: values only); -e: set in main.cf, keeping its comments; "
	  "-M: master.cf services facteur runs" },
	{ "check", cmd_check, "",
	  "validate main.cf, master.cf, every map they name, and the "
	  "directories mail_owner writes; build every listener and the "
	  "queue manager's settings as facteurd does, binding nothing" },
	{ "init", cli_init, "--mode MODE --domain DOMAIN [--hostname HOST] "
	  "[--relayhost HOST] [--backend file] [--mail-owner USER] [--root PREFIX] "
	  "[--listen ADDR:PORT] [DIR]",
	  "write a first configuration for a classic mode (internet-site, "
	  "smarthost, satellite, local-only)" },
	{ "map", cli_map, "query [-f] TYPE:NAME KEY ... | dump TYPE:NAME",
	  "look keys up in a table as the daemon does (exit 0 found, 1 not "
	  "found, 75 try later), or list a table" },
	{ "queue", cli_queue, "list | flush | delete|hold|release|requeue ID|ALL ...",
	  "show the mail queue (as mailq), deliver deferred mail now, or "
	  "delete, hold, release or requeue messages (as postsuper)" },
	{ "sieve", cli_sieve, "check FILE ... | test [--from A] [--to R] SCRIPT MESSAGE",
	  "compile Sieve scripts, or show the actions a script takes on a message" },
	{ "passwd", cli_passwd, "[-s SCHEME] [-u user@domain]",
	  "print a password hash for a passwd-file (as doveadm pw)" },
	{ "status", cli_status, "[--metrics]",
	  "ask the running facteurd: listeners, sessions, queue sizes, "
	  "rates, failing tables (--metrics: Prometheus text)" },
	{ "reload", cli_reload, "",
	  "re-read main.cf, master.cf, maps and certificates without "
	  "dropping sessions (a bad configuration is refused)" },
	{ "stop", cli_stop, "",
	  "stop facteurd: no new connections, sessions finish within "
	  "facteur_shutdown_timeout; waits until it has exited" },
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

/*
 * conf -e: "name=value" settings written into main.cf as postconf -e does.
 * An existing setting's whole logical line (with its continuation lines)
 * becomes "name = value" in place; later duplicates are dropped; new names
 * are appended. Comments and blank lines stay. The new file replaces the
 * old one atomically (temporary file in the same directory, fsync, rename).
 */
struct conf_edit_item {
	char *name, *value;
	bool  done;
};

/* The parameter name a main.cf line sets, or 0 if it starts no setting. */
static size_t
conf_line_name(const char *ln, size_t len)
{
	size_t n = 0;

	if (len == 0 || ln[0] == ' ' || ln[0] == '\t' || ln[0] == '#' ||
	    ln[0] == '\r')
		return 0;
	while (n < len && ln[n] != '=' && ln[n] != ' ' && ln[n] != '\t')
		n++;
	return n;
}

static int
conf_edit_write(const char *path, const char *text, size_t len)
{
	char *tmp = xasprintf("%s.facteur-edit.%ld", path, (long)getpid());
	char *dir = xstrdup(path), *slash;
	struct stat st;
	int fd, rc = -1;

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "conf: create %s: %s", tmp,
			  strerror(errno));
		goto out;
	}
	/* The new file keeps the old one's mode and owner. */
	if (stat(path, &st) == 0) {
		(void)fchmod(fd, st.st_mode & 07777);
		if (geteuid() == 0)
			(void)fchown(fd, st.st_uid, st.st_gid);
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "conf: write %s: %s", tmp,
			  strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "conf: rename %s to %s: %s",
			  tmp, path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		(void)fsync_dir(*dir ? dir : "/");
	}
	rc = 0;
out:
	free(tmp);
	free(dir);
	return rc;
}

static int
conf_edit(struct cli *cli, int argc, char **argv)
{
	struct conf_edit_item *items;
	char *path = xasprintf("%s/main.cf", cli->dir), *old = NULL;
	struct buf in, out;
	int rc = 1, nitems = 0;
	const char *p;
	FILE *fp;

	if (argc == 0) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "conf -e: name=value expected");
		free(path);
		return 2;
	}
	items = xcalloc((size_t)argc, sizeof(*items));
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '=');
		size_t n = eq ? (size_t)(eq - a) : 0;
		const char *v;

		while (n > 0 && (a[n - 1] == ' ' || a[n - 1] == '\t'))
			n--;
		if (eq == NULL || n == 0 || strspn(a, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != n) {
			log_write(NULL, NULL, LOG_LVL_ERROR, "conf -e: \"%.200s\": "
				  "expected name=value", a);
			rc = 2;
			goto out;
		}
		for (v = eq + 1; *v == ' ' || *v == '\t'; v++)
			;
		if (strpbrk(v, "\r\n") != NULL) {
			log_write(NULL, NULL, LOG_LVL_ERROR, "conf -e: value of "
				  "%.*s has a line break", (int)n, a);
			rc = 2;
			goto out;
		}
		items[nitems].name = xstrndup(a, n);
		items[nitems].value = xstrdup(v);
		if (params_find(items[nitems].name) == NULL)
			log_write(NULL, NULL, LOG_LVL_WARNING, "%s: unknown "
				  "parameter (written anyway)", items[nitems].name);
		/* name=a name=b: the last one wins, as on a command line */
		for (int k = 0; k < nitems; k++)
			if (strcmp(items[k].name, items[nitems].name) == 0) {
				free(items[k].value);
				items[k].value = items[nitems].value;
				free(items[nitems].name);
				nitems--;
				break;
			}
		nitems++;
	}

	/* main.cf is the operator's own file: bounded only by memory. */
	buf_init(&in, 0);
	buf_init(&out, 0);
	if ((fp = fopen(path, "r")) != NULL) {
		char chunk[8192];
		size_t n;

		while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
			buf_append(&in, chunk, n);
		if (ferror(fp)) {
			log_write(NULL, NULL, LOG_LVL_ERROR, "conf -e: read %s: %s",
				  path, strerror(errno));
			fclose(fp);
			goto done;
		}
		fclose(fp);
	} else if (errno != ENOENT) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "conf -e: open %s: %s", path,
			  strerror(errno));
		goto done;
	}
	if (in.len > 0 && memchr(in.data, '\0', in.len) != NULL) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "conf -e: %s contains a NUL "
			  "byte: not editing it", path);
		goto done;
	}
	old = buf_steal(&in);
	buf_init(&in, 0);
	for (p = old; *p;) {
		const char *end = strchr(p, '\n');
		size_t len = end ? (size_t)(end - p) : strlen(p), n;
		const char *next = end ? end + 1 : p + len;
		int hit = -1;

		if ((n = conf_line_name(p, len)) > 0)
			for (int k = 0; k < nitems; k++)
				if (strlen(items[k].name) == n &&
				    strncmp(items[k].name, p, n) == 0)
					hit = k;
		if (hit < 0) {
			buf_append(&out, p, (size_t)(next - p));
			p = next;
			continue;
		}
		if (!items[hit].done)
			buf_printf(&out, "%s = %s\n", items[hit].name,
				   items[hit].value);
		items[hit].done = true;
		/* Drop the continuation lines; keep comments and blank lines. */
		for (p = next; *p;) {
			const char *e = strchr(p, '\n'), *q = p;
			size_t l = e ? (size_t)(e - p) : strlen(p);

			while (q < p + l && (*q == ' ' || *q == '\t' || *q == '\r'))
				q++;
			if (q == p && l > 0 && *p != '#' && *p != '\r')
				break;	/* the next setting */
			if (q == p + l || *q == '#')
				buf_append(&out, p, e ? l + 1 : l);
			p = e ? e + 1 : p + l;
		}
	}
	for (int k = 0; k < nitems; k++) {
		if (items[k].done)
			continue;
		if (out.len > 0 && buf_cstr(&out)[out.len - 1] != '\n')
			buf_putc(&out, '\n');
		buf_printf(&out, "%s = %s\n", items[k].name, items[k].value);
	}
	if (conf_edit_write(path, buf_cstr(&out), out.len) == 0)
		rc = 0;
done:
	buf_free(&in);
	buf_free(&out);
out:
	for (int k = 0; k < nitems; k++) {
		free(items[k].name);
		free(items[k].value);
	}
	free(items);
	free(old);
	free(path);
	return rc;
}

/* One master.cf service for conf -M. */
static void
print_service(const struct master_service *svc, bool transport)
{
	printf("%-16s %-5s %-7s", svc->service, svc->type, svc->command);
	if (svc->maxproc > 0)
		printf(" maxproc=%d", svc->maxproc);
	if (transport)	/* named by transport_maps, *_transport ... */
		printf(" transport=%s", svc->service);
	else if (strcmp(svc->type, "inet") == 0)
		printf(" listen=%s:%s", *svc->host ? svc->host : "*",
		       svc->port);
	else	/* unix: a socket under $queue_directory/private */
		printf(" socket=private/%s", svc->service);
	if (svc->user != NULL)
		printf(" user=%s", svc->user);
	if (svc->argv.n > 0) {
		printf(" argv=");
		for (size_t k = 0; k < svc->argv.n; k++)
			printf("%s%s", k ? " " : "", svc->argv.v[k]);
	}
	for (size_t k = 0; k < svc->overrides.n; k++)
		printf(" -o %s", svc->overrides.v[k]);
	printf("\n");
}

/* conf -M: the master.cf services facteur runs (listeners, spawn
 * services), then the delivery transports it defines, one per line. */
static int
conf_master(struct cli *cli, int noperands)
{
	const struct master_cf *m;
	struct config *c;

	if (noperands > 0) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "conf -M takes no names");
		return 2;
	}
	if ((c = cli_load_config(cli, false)) == NULL)
		return 1;
	m = config_master(c);
	for (size_t i = 0; i < m->n; i++)
		print_service(&m->v[i], false);
	m = config_transports(c);
	for (size_t i = 0; m != NULL && i < m->n; i++)
		print_service(&m->v[i], true);
	config_free(&c);
	return fflush(stdout) == 0 ? 0 : 1;
}

static int
cmd_conf(struct cli *cli, int argc, char **argv)
{
	bool f[128];
	struct config *c;
	struct errbuf err;
	int first, rc = 0;

	if ((first = parse_flags(argc, argv, "ndxheM", f, "conf")) < 0)
		return 2;
	if (f['e'])
		return conf_edit(cli, argc - first, argv + first);
	if (f['M'])
		return conf_master(cli, argc - first);
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
 * An error in the daemon's own words (its constructors, restriction
 * lists): the place of the first parameter it names, as c sees it (a
 * listener's -o override in master.cf, else main.cf), goes in front
 * unless the text has it already. Said once: the same text from another
 * check, or from several listeners, is not repeated.
 */
static void
check_error_at(struct cli *cli, const struct config *c,
	       const struct master_service *svc, const char *msg)
{
	struct errbuf e;

	if (strlist_contains(&cli->reported, msg)) {
		cli->errors++;
		return;
	}
	errbuf_set(&e, "%s", msg);
	if (config_place_error(&e, c, svc))
		strlist_add(&cli->reported, msg);	/* without the place */
	check_error(cli, "%s", errbuf_str(&e));
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
		"canonical_maps", "sender_canonical_maps",
		"recipient_canonical_maps", "virtual_mailbox_limit_maps",
		"sender_bcc_maps", "recipient_bcc_maps", "smtp_generic_maps",
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

/* "NAME: text" -> "FILE, line N: NAME: text" */
static void
check_param_error(struct cli *cli, const struct config *c, const char *msg)
{
	char name[128], where[1200];
	size_t k = strcspn(msg, ":");

	if (msg[k] != ':' || k >= sizeof(name)) {
		check_error(cli, "%s", msg);
		return;
	}
	memcpy(name, msg, k);
	name[k] = '\0';
	param_place(c, name, where, sizeof(where));
	check_error(cli, "%s%s", where, msg + k);
}

/*
 * Address rewriting (classes, local_header_rewrite_clients) and alias_maps
 * read as newaliases does: unreadable files are errors, aliases(5) syntax
 * problems warnings.
 */
static void
check_rewriting(struct cli *cli, const struct config *c,
		const struct settings *s)
{
	struct rewrite_ctx *rw;
	struct alias_db *a;
	struct strlist w;
	struct errbuf err;
	size_t n;

	errbuf_clear(&err);
	if ((rw = rewrite_ctx_new(s, NULL, NULL, &err)) == NULL)
		check_param_error(cli, c, errbuf_str(&err));
	rewrite_ctx_free(&rw);
	if ((a = alias_db_open(s->alias_maps, &err)) == NULL) {
		check_param_error(cli, c, errbuf_str(&err));
		return;
	}
	strlist_init(&w);
	if (alias_db_check(a, &n, &w, &err) < 0)
		check_error(cli, "alias_maps: %s", errbuf_str(&err));
	for (size_t i = 0; i < w.n; i++)
		log_write(NULL, NULL, LOG_LVL_WARNING, "%s", w.v[i]);
	strlist_free(&w);
	alias_db_free(&a);
}

/*
 * virtual_mailbox_quota_warning: percentages 1..100 ("80" or "80%").
 * facteurd (delivery/deliver.c) ignores another value with a warning,
 * so the warning the operator meant would never come: an error here.
 */
static void
check_quota_warning(struct cli *cli, const struct config *c, const char *v)
{
	char where[1200];
	struct strlist w;

	if (v == NULL || *v == '\0')
		return;
	param_place(c, "virtual_mailbox_quota_warning", where, sizeof(where));
	strlist_init(&w);
	(void)strlist_split(&w, v);
	for (size_t i = 0; i < w.n; i++) {
		const char *p = w.v[i];
		char *end;
		long n = strtol(p, &end, 10);

		if (end == p || n < 1 || n > 100 ||
		    (*end != '\0' && strcmp(end, "%") != 0))
			check_error(cli, "%s: \"%.100s\" is not a percentage "
				    "1..100 (facteurd ignores it)", where, p);
	}
	strlist_free(&w);
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
		check_error_at(cli, c, NULL, errbuf_str(&err));
	else
		smtpd_check_lists_free(&lists);

	check_rewriting(cli, c, s);
	check_quota_warning(cli, c, s->virtual_mailbox_quota_warning);
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

/*
 * What facteurd opens before the privilege drop and stops on: the local
 * submission socket's path (pickup_new: the same length test and words)
 * and maillog_file (log_open: its directory must exist).
 */
static void
check_startup_files(struct cli *cli, const struct config *c,
		    const struct settings *s)
{
	struct sockaddr_un sun;
	char where[1200];
	struct stat st;

	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s",
			     s->queue_directory, PICKUP_SOCKET)
	    >= sizeof(sun.sun_path)) {
		param_place(c, "queue_directory", where, sizeof(where));
		check_error(cli, "%s: queue_directory %.200s: path too long for "
			    "the local submission socket %s", where,
			    s->queue_directory, PICKUP_SOCKET);
	}
	if (s->maillog_file[0] == '/') {
		char *dir = xstrdup(s->maillog_file), *slash = strrchr(dir, '/');

		param_place(c, "maillog_file", where, sizeof(where));
		slash[slash == dir ? 1 : 0] = '\0';
		if (stat(s->maillog_file, &st) == 0 && S_ISDIR(st.st_mode))
			check_error(cli, "%s: %.200s is a directory", where,
				    s->maillog_file);
		else if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
			check_error(cli, "%s: open maillog_file %.200s: directory "
				    "%.200s does not exist", where, s->maillog_file,
				    dir);
		free(dir);
	}
}

/*
 * One directory facteurd writes as mail_owner: it must be a directory,
 * not world-writable, and writable by that user. facteurd chowns the top of
 * queue_directory itself at start, so there only what lies below counts.
 */
static void
check_dir_access(struct cli *cli, const struct config *c, const char *param,
		 const char *path, const char *user, uid_t uid, gid_t gid)
{
	bool queue = strcmp(param, "queue_directory") == 0;
	char where[1200];
	struct stat st;
	mode_t need;

	param_place(c, param, where, sizeof(where));
	if (stat(path, &st) < 0) {
		if (errno == ENOENT && !queue)
			log_write(NULL, NULL, LOG_LVL_WARNING, "%s: %.200s does not "
				  "exist: create it, owned by %s", where, path, user);
		return;		/* queue_directory: check_queue_directory says */
	}
	if (!S_ISDIR(st.st_mode))
		return;		/* reported elsewhere */
	if (st.st_mode & S_IWOTH)
		check_error(cli, "%s: %.200s is writable by everyone (mode %04o): "
			    "chmod o-w it", where, path,
			    (unsigned)(st.st_mode & 07777));
	if (queue) {
		DIR *d = opendir(path);
		struct dirent *e;
		int n = 0;

		/* The queue's own subdirectories (a handful): each must be ours. */
		while (d != NULL && (e = readdir(d)) != NULL && n++ < 256) {
			char *sub;
			struct stat ss;

			if (e->d_name[0] == '.')
				continue;
			sub = xasprintf("%s/%s", path, e->d_name);
			if (lstat(sub, &ss) == 0 && S_ISDIR(ss.st_mode) &&
			    ss.st_uid != uid)
				check_error(cli, "%s: %.200s is owned by uid %lu, not "
					    "by mail_owner %s (uid %lu): facteurd "
					    "cannot write it; chown -R %s %.200s", where,
					    sub, (unsigned long)ss.st_uid, user,
					    (unsigned long)uid, user, path);
			free(sub);
		}
		if (d != NULL)
			closedir(d);
		return;
	}
	if (st.st_uid == uid)
		need = S_IWUSR | S_IXUSR;
	else if (st.st_gid == gid)
		need = S_IWGRP | S_IXGRP;
	else
		need = S_IWOTH | S_IXOTH;
	if ((st.st_mode & need) != need)
		check_error(cli, "%s: mail_owner %s (uid %lu) cannot create "
			    "maildirs in %.200s (owner uid %lu, group %lu, mode "
			    "%04o): chown %s %.200s", where, user,
			    (unsigned long)uid, path, (unsigned long)st.st_uid,
			    (unsigned long)st.st_gid,
			    (unsigned)(st.st_mode & 07777), user, path);
}

/* facteurd started as root runs as mail_owner; else as whoever starts it. */
static void
check_ownership(struct cli *cli, const struct config *c, const struct settings *s)
{
	char where[1200];
	struct passwd *pw = getpwnam(s->mail_owner);
	const char *user = s->mail_owner;
	uid_t uid = geteuid();
	gid_t gid = getegid();

	param_place(c, "mail_owner", where, sizeof(where));
	if (geteuid() == 0) {
		if (pw == NULL) {
			check_error(cli, "%s: user \"%.100s\" does not exist: "
				    "facteurd started as root cannot run as it "
				    "(create it, e.g. make install-user)", where, user);
			return;
		}
		if (pw->pw_uid == 0) {
			check_error(cli, "%s: \"%.100s\" is root: facteurd must run "
				    "as an unprivileged user", where, user);
			return;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	} else {
		struct passwd *me = getpwuid(uid);

		/* Not root: facteurd keeps being this user. */
		if (pw == NULL)
			log_write(NULL, NULL, LOG_LVL_WARNING, "%s: user \"%.100s\" "
				  "does not exist (needed when facteurd is "
				  "started as root)", where, user);
		user = me ? me->pw_name : "(this user)";
	}
	check_dir_access(cli, c, "queue_directory", s->queue_directory, user,
			 uid, gid);
	if (*s->virtual_mailbox_base == '/')
		check_dir_access(cli, c, "virtual_mailbox_base",
				 s->virtual_mailbox_base, user, uid, gid);
}

/* cli_check_daemon's reports (core/cli_check.c). */
struct daemon_report {
	struct cli          *cli;
	const struct config *c;
};

static void
daemon_error(void *arg, const struct master_service *svc, const char *msg)
{
	struct daemon_report *r = arg;

	/* Not root: a root-only key or passdb is facteurd's to read. */
	if (geteuid() != 0 && strstr(msg, strerror(EACCES)) != NULL) {
		log_write(NULL, NULL, LOG_LVL_WARNING, "%s (facteurd started as "
			  "root may read it: run facteur check as root to "
			  "check it)", msg);
		return;
	}
	check_error_at(r->cli, r->c, svc, msg);
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
		check_startup_files(cli, c, &s);
		check_ownership(cli, c, &s);
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
		} else {
			if (m->v[i].overrides.n > 0) {
				check_settings(cli, lc, &s);
				check_maps(cli, lc, &seen);
			}
			/* PROXY protocol (core/smtpd_listener.c) */
			if ((strcmp(m->v[i].command, "smtpd") == 0 ||
			     strcmp(m->v[i].command, "postscreen") == 0) &&
			    smtpd_listener_check_proxy(&s, &m->v[i], &err) < 0)
				check_error_at(cli, c, &m->v[i],
					       errbuf_str(&err));
			/* postscreen_* values (core/postscreen.c) */
			if (strcmp(m->v[i].command, "postscreen") == 0 &&
			    postscreen_check_config(lc, &s, m->v[i].service,
						    &err) < 0)
				check_error_at(cli, c, &m->v[i],
					       errbuf_str(&err));
		}
		settings_free(&s);
		config_free(&lc);
	}
	strlist_free(&seen);

	/* What facteurd builds at start-up or on a reload, built the same
	 * way (core/cli_check.c): what it would stop on is an error here. */
	memset(&s, 0, sizeof(s));
	if (settings_load(&s, c, &err) == 0) {
		struct daemon_report r = { cli, c };

		(void)cli_check_daemon(c, &s, daemon_error, &r);
	}
	settings_free(&s);
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
