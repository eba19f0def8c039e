/*
 * config.h - main.cf and master.cf, in Postfix's syntax.
 * main.cf: "name = value", continuation lines start with white space, '#'
 * comments, $name ${name} ${name?value} ${name:value} expansion (expansion
 * is lazy: done when a value is read, so order in the file does not matter,
 * as in Postfix). master.cf: service lines; inet+smtpd lines are listeners.
 * Must not: log (it returns warnings/errors to the caller), or know what a
 * parameter means beyond its type (params.c has that).
 */
#ifndef FACTEUR_CONFIG_H
#define FACTEUR_CONFIG_H
#include <stdbool.h>

#include "core/lib/errbuf.h"
#include "core/lib/strlist.h"

struct master_service {
	char   *service;	/* field 1 as written: "smtp", "127.0.0.1:2525", "submission" */
	char   *type;		/* inet, unix, fifo, pass, unix-dgram */
	char   *command;	/* smtpd, postscreen, managesieved, qmgr, ... */
	char   *host;		/* "" = all of inet_interfaces; else the host part */
	char   *port;		/* numeric, resolved through /etc/services */
	int     maxproc;	/* 0 = "-" (default_process_limit) */
	struct strlist overrides;	/* "name=value" from -o, in order */
	struct strlist argv;	/* spawn: the command after "argv=" */
	char   *user;		/* spawn, pipe: "user=" (NULL when not given) */
	struct strlist attrs;	/* pipe: "flags=..", "size=..", "eol=.." */
	char   *file;
	int     line;
};

struct master_cf {
	struct master_service *v;	/* only the services facteur runs */
	size_t  n;
};

struct config;

/*
 * Reads DIR/main.cf and DIR/master.cf (master.cf may be absent: then one
 * listener "smtp inet ... smtpd" on port 25, as Postfix's default).
 * Returns NULL on a syntax error, with err = "FILE, line N: reason".
 * Non-fatal findings (unknown parameter, Postfix-internal knob accepted,
 * master.cf service not needed) are appended to warnings_r as complete
 * messages ("warning: FILE, line N: unknown parameter: foo") for the caller
 * to log; warnings_r may be NULL.
 */
struct config *config_load(const char *dir, struct strlist *warnings_r,
			   struct errbuf *err);
/* main.cf text only (for tests and the fuzzer); fname is used in messages. */
struct config *config_parse_main(const char *text, const char *fname,
				 struct strlist *warnings_r, struct errbuf *err);
/* Parses master.cf text into c (replacing any services). 0 or -1 + err. */
int  config_parse_master(struct config *c, const char *text, const char *fname,
			 struct strlist *warnings_r, struct errbuf *err);
void config_free(struct config **cp);

/*
 * A copy of base with -o overrides ("name=value") layered on top, as a
 * master.cf listener sees it. Returns NULL + err on a bad override.
 */
struct config *config_with_overrides(const struct config *base,
				     const struct strlist *overrides,
				     struct errbuf *err);

/*
 * The same for one master.cf service: its -o overrides, with errors and
 * config_where naming the service's master.cf file and line.
 */
struct config *config_with_service(const struct config *base,
				   const struct master_service *svc,
				   struct errbuf *err);

/* The value as written (after continuation joining), or NULL if not set. */
const char *config_raw(const struct config *c, const char *name);
/*
 * The expanded value of a parameter: the value set in main.cf/-o, else the
 * default from params.c, with $name expansion applied. NULL if the name is
 * neither set nor a known parameter. The string is owned by c (cached).
 */
const char *config_get(const struct config *c, const char *name);
/*
 * Like config_get, but tells why there is no value: NULL + err for an
 * unknown name ("NAME: unknown parameter") or an expansion error (loop,
 * bad $ syntax, too long), err naming the file and line of the culprit.
 * (config_get itself gives "" for a set or known name whose expansion
 * fails; settings_load reports every such error at start-up.)
 * Thread-safe: the expansion cache is guarded by a lock.
 */
const char *config_get_err(const struct config *c, const char *name,
			   struct errbuf *err);
/* Where name was set: file and line, or false if it was not set. */
bool config_where(const struct config *c, const char *name,
		  const char **file_r, int *line_r);
/* Expands $name references in an arbitrary string. Caller owns result. */
char *config_expand(const struct config *c, const char *value, struct errbuf *err);
/* Names explicitly set in main.cf (and overrides), sorted, for conf -n. */
void config_names_set(const struct config *c, struct strlist *names_r);
const struct master_cf *config_master(const struct config *c);
/*
 * The delivery transports master.cf defines (core/master_cf.c): unix (or
 * "-"-typed) lines whose command is smtp, lmtp, virtual, error, discard or
 * pipe; the service name is the transport name.
 */
const struct master_cf *config_transports(const struct config *c);
/* The directory the files were read from ("" for parsed text). */
const char *config_dir(const struct config *c);

#endif
