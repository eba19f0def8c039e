/*
 * master_cf.c - master.cf in Postfix's syntax: 8-field service lines with
 * continuation lines, "-o name=value" and "-o { name = value }" overrides.
 * inet lines running smtpd, postscreen or managesieved become services
 * facteur runs; postscreen's "smtpd pass" companion is folded into the
 * postscreen services (its -o overrides and maxproc); unix and inet lines
 * running spawn (policyd-spf's) keep their user= and argv= for
 * core/spawn.c; unix (or "-"-typed) lines running smtp, lmtp, virtual,
 * error, discard or pipe define delivery transports named by the service
 * (config_transports: -o overrides, maxproc, and pipe's user=, flags=,
 * size=, eol=, argv=; core/qmgr.c and delivery/pipe.c use them); every
 * other Postfix service is accepted with a notice.
 * Must not: bind sockets or interpret override values (the listener and
 * params.c do), or log (findings go to warnings_r).
 */
#include <ctype.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/config_int.h"
#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"
#include "core/params.h"

#define MASTER_MAX_SERVICES	1000
#define MASTER_MAX_TOKENS	1000

static void
service_clear(struct master_service *s)
{
	free(s->service);
	free(s->type);
	free(s->command);
	free(s->host);
	free(s->port);
	free(s->file);
	strlist_free(&s->overrides);
	strlist_free(&s->argv);
	strlist_free(&s->attrs);
	free(s->user);
	memset(s, 0, sizeof(*s));
}

void
master_cf_clear(struct master_cf *m)
{
	for (size_t i = 0; i < m->n; i++)
		service_clear(&m->v[i]);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

static struct master_service *
master_add(struct master_cf *m)
{
	struct master_service *s;

	m->v = xrealloc(m->v, (m->n + 1) * sizeof(*m->v));
	s = &m->v[m->n++];
	memset(s, 0, sizeof(*s));
	strlist_init(&s->overrides);
	strlist_init(&s->argv);
	strlist_init(&s->attrs);
	return s;
}

void
master_cf_copy(struct master_cf *dst, const struct master_cf *src)
{
	master_cf_clear(dst);
	for (size_t i = 0; i < src->n; i++) {
		const struct master_service *a = &src->v[i];
		struct master_service *b = master_add(dst);

		b->service = xstrdup(a->service);
		b->type = xstrdup(a->type);
		b->command = xstrdup(a->command);
		b->host = xstrdup(a->host);
		b->port = xstrdup(a->port);
		b->maxproc = a->maxproc;
		b->file = xstrdup(a->file);
		b->line = a->line;
		b->user = a->user ? xstrdup(a->user) : NULL;
		for (size_t j = 0; j < a->argv.n; j++)
			strlist_add(&b->argv, a->argv.v[j]);
		for (size_t j = 0; j < a->overrides.n; j++)
			strlist_add(&b->overrides, a->overrides.v[j]);
		for (size_t j = 0; j < a->attrs.n; j++)
			strlist_add(&b->attrs, a->attrs.v[j]);
	}
}

const struct master_cf *
config_transports(const struct config *c)
{
	return &c->transports;
}

/* The delivery agents a master.cf transport line may run. */
static bool
transport_command(const char *command)
{
	static const char *const cmds[] = {
		"smtp", "lmtp", "virtual", "error", "discard", "pipe",
	};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(command, cmds[i]) == 0)
			return true;
	return false;
}

void
master_cf_default(struct config *c, const char *path)
{
	struct master_service *s;

	master_cf_clear(&c->master);
	s = master_add(&c->master);
	s->service = xstrdup("smtp");
	s->type = xstrdup("inet");
	s->command = xstrdup("smtpd");
	s->host = xstrdup("");
	s->port = xstrdup("25");
	s->file = xstrdup(path);
	s->line = 0;
}

/* Used when /etc/services lacks a name (minimal containers, FreeBSD jails). */
static const struct {
	const char *name;
	const char *port;
} known_ports[] = {
	{ "smtp", "25" }, { "submission", "587" }, { "smtps", "465" },
	{ "submissions", "465" }, { "sieve", "4190" }, { "lmtp", "24" },
};

/* Port number or service name -> decimal port. 0, or -1 if unknown. */
static int
resolve_port(const char *p, char **port_r)
{
	struct servent *se;
	size_t i;

	if (*p && strspn(p, "0123456789") == strlen(p)) {
		char *end;
		long v;

		errno = 0;
		v = strtol(p, &end, 10);
		if (errno || v < 1 || v > 65535 || strlen(p) > 5)
			return -1;
		*port_r = xasprintf("%ld", v);
		return 0;
	}
	if (*p == '\0' || strlen(p) > 64)
		return -1;
	if ((se = getservbyname(p, "tcp")) != NULL) {
		*port_r = xasprintf("%d", ntohs((unsigned short)se->s_port));
		return 0;
	}
	for (i = 0; i < sizeof(known_ports) / sizeof(known_ports[0]); i++)
		if (strcmp(p, known_ports[i].name) == 0) {
			*port_r = xstrdup(known_ports[i].port);
			return 0;
		}
	return -1;
}

/* "port", "host:port", "[v6]:port", "*:port". 0, or -1 + err. */
static int
split_endpoint(const char *svc, const char *w, char **host_r, char **port_r,
	       struct errbuf *err)
{
	const char *colon, *portstr;
	char *host;

	if (svc[0] == '[') {
		const char *rb = strchr(svc, ']');

		if (rb == NULL || rb[1] != ':') {
			errbuf_set(err, "%s: bad service address: \"%.200s\" "
				   "(expected [ipv6-address]:port)", w, svc);
			return -1;
		}
		host = xstrndup(svc + 1, (size_t)(rb - svc - 1));
		portstr = rb + 2;
	} else if ((colon = strrchr(svc, ':')) != NULL) {
		if (memchr(svc, ':', (size_t)(colon - svc))) {
			errbuf_set(err, "%s: bad service address: \"%.200s\" "
				   "(write IPv6 addresses as [address]:port)",
				   w, svc);
			return -1;
		}
		host = xstrndup(svc, (size_t)(colon - svc));
		portstr = colon + 1;
	} else {
		host = xstrdup("");
		portstr = svc;
	}
	if (strcmp(host, "*") == 0)
		host[0] = '\0';
	if (svc[0] == '[' && host[0] == '\0') {
		errbuf_set(err, "%s: bad service address: \"%.200s\" (empty "
			   "address in brackets)", w, svc);
		free(host);
		return -1;
	}
	if (resolve_port(portstr, port_r) < 0) {
		errbuf_set(err, "%s: bad service address: \"%.200s\": unknown "
			   "port or service name \"%.100s\"", w, svc, portstr);
		free(host);
		return -1;
	}
	*host_r = host;
	return 0;
}

/*
 * Splits a logical line at white space; a token starting with '{' runs to
 * its matching '}' and is returned without the braces, trimmed (Postfix 3's
 * "-o { name = value with spaces }").
 */
static int
tokenize(const char *s, struct strlist *toks, const char *w, struct errbuf *err)
{
	const char *p = s;

	for (;;) {
		const char *start;

		while (*p && isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			return 0;
		if (toks->n >= MASTER_MAX_TOKENS) {
			errbuf_set(err, "%s: too many fields", w);
			return -1;
		}
		if (*p == '{') {
			int depth = 1;
			const char *q = p + 1, *e;

			for (; *q && depth; q++) {
				if (*q == '{')
					depth++;
				else if (*q == '}')
					depth--;
			}
			if (depth) {
				errbuf_set(err, "%s: missing '}' in \"%.200s\"", w, p);
				return -1;
			}
			if (*q && !isspace((unsigned char)*q)) {
				errbuf_set(err, "%s: text after '}' in \"%.200s\"",
					   w, p);
				return -1;
			}
			start = p + 1;
			e = q - 1;	/* the closing brace */
			while (start < e && isspace((unsigned char)*start))
				start++;
			while (e > start && isspace((unsigned char)e[-1]))
				e--;
			strlist_addn(toks, start, (size_t)(e - start));
			p = q;
			continue;
		}
		start = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		strlist_addn(toks, start, (size_t)(p - start));
	}
}

static int
check_flag(const char *v, const char *field, const char *w, struct errbuf *err)
{
	if (strcmp(v, "y") == 0 || strcmp(v, "n") == 0 || strcmp(v, "-") == 0)
		return 0;
	errbuf_set(err, "%s: field \"%s\": bad value: \"%.100s\" (expected y, n "
		   "or -)", w, field, v);
	return -1;
}

static int
parse_count(const char *v, bool allow_q, long *r)
{
	size_t n = strspn(v, "0123456789");
	char *end;

	if (strcmp(v, "-") == 0) {
		*r = 0;
		return 0;
	}
	if (n == 0 || n > 9)
		return -1;
	if (v[n] != '\0' && !(allow_q && v[n] == '?' && v[n + 1] == '\0'))
		return -1;
	*r = strtol(v, &end, 10);
	return 0;
}

/* "name=value" with optional white space around '=' -> normalized. */
static int
override_norm(const char *o, const char *w, char **r, struct errbuf *err)
{
	const char *eq = strchr(o, '='), *ne, *v, *ve, *nb = o;

	if (eq) {
		for (ne = eq; ne > o && isspace((unsigned char)ne[-1]); ne--)
			;
		while (nb < ne && isspace((unsigned char)*nb))
			nb++;
	}
	if (eq == NULL || !cfg_valid_name(nb, (size_t)(ne - nb)) ||
	    (size_t)(ne - nb) > CONFIG_NAME_MAX) {
		errbuf_set(err, "%s: bad -o option: \"%.200s\" (expected "
			   "-o name=value)", w, o);
		return -1;
	}
	for (v = eq + 1; *v && isspace((unsigned char)*v); v++)
		;
	for (ve = v + strlen(v); ve > v && isspace((unsigned char)ve[-1]); ve--)
		;
	*r = xasprintf("%.*s=%.*s", (int)(ne - nb), nb, (int)(ve - v), v);
	return 0;
}

static bool
facteur_runs(const char *type, const char *command)
{
	return strcmp(type, "inet") == 0 &&
	       (strcmp(command, "smtpd") == 0 ||
		strcmp(command, "postscreen") == 0 ||
		strcmp(command, "managesieved") == 0);
}

/* postscreen's companions, built into facteur's postscreen (core/postscreen.c) */
static bool
postscreen_part(const char *type, const char *command)
{
	return (strcmp(type, "pass") == 0 && strcmp(command, "smtpd") == 0) ||
	       (strcmp(type, "unix") == 0 && (strcmp(command, "dnsblog") == 0 ||
					     strcmp(command, "tlsproxy") == 0));
}

/*
 * The "smtpd pass" line of a Postfix postscreen set-up configures the SMTP
 * sessions postscreen hands clients to: its -o overrides are appended to
 * every postscreen listener's, and its maxproc limits their sessions; then
 * the entry is dropped (facteur runs no pass service). A postscreen line's
 * own maxproc counts postscreen processes (1 in Postfix's examples), not
 * sessions: without a pass line the limit is default_process_limit.
 */
static void
merge_pass(struct master_cf *m)
{
	size_t i, j;

	for (j = 0; j < m->n; j++)
		if (strcmp(m->v[j].command, "postscreen") == 0)
			m->v[j].maxproc = 0;
	for (i = 0; i < m->n; i++) {
		const struct master_service *p = &m->v[i];

		if (strcmp(p->type, "pass") != 0)
			continue;
		for (j = 0; j < m->n; j++) {
			if (strcmp(m->v[j].command, "postscreen") != 0)
				continue;
			m->v[j].maxproc = p->maxproc;
			for (size_t k = 0; k < p->overrides.n; k++)
				strlist_add(&m->v[j].overrides,
					    p->overrides.v[k]);
		}
	}
	for (i = 0, j = 0; i < m->n; i++) {
		if (strcmp(m->v[i].type, "pass") == 0) {
			service_clear(&m->v[i]);
			continue;
		}
		if (j != i)
			m->v[j] = m->v[i];
		j++;
	}
	m->n = j;
}

/*
 * "NAME unix - n n - 0 spawn user=U argv=/path args..." (or inet): the
 * arguments before argv= are -o overrides and user=; everything after
 * argv= is the command. NAME_time_limit counts as a known parameter.
 */
static int
parse_spawn(struct config *c, const struct strlist *t, const char *fname,
	    int line, long maxproc, struct strlist *warnings_r,
	    struct errbuf *err)
{
	char w[CFG_WHERE_MAX];
	struct master_service *s;
	char *host = NULL, *port = NULL, *ref;
	size_t i;

	cfg_where_str(w, sizeof(w), fname, line);
	if (c->master.n >= MASTER_MAX_SERVICES) {
		errbuf_set(err, "%s: more than %d services", w,
			   MASTER_MAX_SERVICES);
		return -1;
	}
	if (strcmp(t->v[1], "inet") == 0) {
		if (split_endpoint(t->v[0], w, &host, &port, err) < 0)
			return -1;
	} else {
		if (strchr(t->v[0], '/') != NULL || t->v[0][0] == '.' ||
		    strlen(t->v[0]) > 64) {
			errbuf_set(err, "%s: bad spawn service name \"%.100s\" "
				   "(a socket name under private/)", w, t->v[0]);
			return -1;
		}
		host = xstrdup("");
		port = xstrdup("");
	}
	s = master_add(&c->master);
	s->service = xstrdup(t->v[0]);
	s->type = xstrdup(t->v[1]);
	s->command = xstrdup("spawn");
	s->host = host;
	s->port = port;
	s->maxproc = (int)maxproc;
	s->file = xstrdup(fname);
	s->line = line;
	for (i = 8; i < t->n; i++) {
		const char *a = t->v[i];

		if (strncmp(a, "argv=", 5) == 0) {
			if (a[5] != '\0')
				strlist_add(&s->argv, a + 5);
			for (i++; i < t->n; i++)
				strlist_add(&s->argv, t->v[i]);
			break;
		}
		if (strncmp(a, "user=", 5) == 0) {
			free(s->user);
			s->user = xstrdup(a + 5);
		} else if (strcmp(a, "-o") == 0 && i + 1 < t->n) {
			char *norm;

			if (override_norm(t->v[++i], w, &norm, err) < 0)
				goto fail;
			strlist_add(&s->overrides, norm);
			free(norm);
		} else {
			cfg_warn(warnings_r, "warning: %s: service \"%s\" "
				 "(spawn): ignoring argument \"%.100s\"", w,
				 t->v[0], a);
		}
	}
	if (s->argv.n == 0 || s->argv.v[0][0] != '/') {
		errbuf_set(err, "%s: service \"%s\" (spawn): needs "
			   "argv=/absolute/path/of/command", w, t->v[0]);
		goto fail;
	}
	ref = xasprintf("${%s_time_limit}", t->v[0]);
	strlist_add(&c->ignored_refs, ref);
	free(ref);
	return 0;
fail:
	service_clear(s);
	c->master.n--;
	return -1;
}

/*
 * "NAME unix - - n - MAXPROC smtp|lmtp|virtual|error|discard|pipe ...":
 * a delivery transport NAME. -o overrides are kept for core/qmgr.c (which
 * says which ones apply per delivery); pipe keeps user=, argv= (the rest of
 * the line) and flags=, size=, eol= for delivery/pipe.c.
 */
static int
parse_transport(struct config *c, const struct strlist *t, const char *fname,
		int line, long maxproc, struct strlist *warnings_r,
		struct errbuf *err)
{
	char w[CFG_WHERE_MAX];
	struct master_service *s;
	const char *cmd = t->v[7];
	bool pipe = strcmp(cmd, "pipe") == 0;
	size_t i;

	cfg_where_str(w, sizeof(w), fname, line);
	if (strchr(t->v[0], '/') != NULL || strchr(t->v[0], ':') != NULL ||
	    t->v[0][0] == '.' || strlen(t->v[0]) > 31) {
		errbuf_set(err, "%s: bad transport service name \"%.100s\" "
			   "(at most 31 characters, no '/' or ':')", w, t->v[0]);
		return -1;
	}
	for (i = 0; i < c->transports.n; i++)
		if (strcmp(c->transports.v[i].service, t->v[0]) == 0) {
			errbuf_set(err, "%s: duplicate transport service \"%s\" "
				   "(first defined at line %d)", w, t->v[0],
				   c->transports.v[i].line);
			return -1;
		}
	if (c->transports.n >= MASTER_MAX_SERVICES) {
		errbuf_set(err, "%s: more than %d services", w,
			   MASTER_MAX_SERVICES);
		return -1;
	}
	s = master_add(&c->transports);
	s->service = xstrdup(t->v[0]);
	s->type = xstrdup("unix");
	s->command = xstrdup(cmd);
	s->host = xstrdup("");
	s->port = xstrdup("");
	s->maxproc = (int)maxproc;
	s->file = xstrdup(fname);
	s->line = line;
	for (i = 8; i < t->n; i++) {
		const char *a = t->v[i], *o = NULL;

		if (pipe && strncmp(a, "argv=", 5) == 0) {
			if (a[5] != '\0')
				strlist_add(&s->argv, a + 5);
			for (i++; i < t->n; i++)
				strlist_add(&s->argv, t->v[i]);
			break;
		}
		if (strcmp(a, "-o") == 0 && i + 1 < t->n)
			o = t->v[++i];
		else if (strncmp(a, "-o", 2) == 0 && a[2] != '\0')
			o = a + 2;
		if (o != NULL) {
			char *norm;

			if (override_norm(o, w, &norm, err) < 0)
				goto fail;
			strlist_add(&s->overrides, norm);
			free(norm);
		} else if (pipe && strncmp(a, "user=", 5) == 0) {
			free(s->user);
			s->user = xstrdup(a + 5);
		} else if (pipe && (strncmp(a, "flags=", 6) == 0 ||
				    strncmp(a, "size=", 5) == 0 ||
				    strncmp(a, "eol=", 4) == 0)) {
			strlist_add(&s->attrs, a);
		} else {
			cfg_warn(warnings_r, "warning: %s: service \"%s\" "
				 "(%s): ignoring argument \"%.100s\"", w,
				 t->v[0], cmd, a);
		}
	}
	/* a pipe without argv= or user= is kept: Postfix's stock master.cf
	 * has such lines (uucp, ifmail ...) that nothing uses; core/qmgr.c
	 * refuses to start when main.cf names an unusable one */
	{
		/* NAME_time_limit and NAME_destination_recipient_limit ...
		 * count as known parameter names */
		char *ref = xasprintf("${%s_time_limit} "
				      "${%s_destination_recipient_limit} "
				      "${%s_destination_concurrency_limit}",
				      t->v[0], t->v[0], t->v[0]);
		strlist_add(&c->ignored_refs, ref);
		free(ref);
	}
	return 0;
fail:
	service_clear(s);
	c->transports.n--;
	return -1;
}

static int
parse_service(struct config *c, const struct strlist *t, const char *fname,
	      int line, struct strlist *warnings_r, struct errbuf *err)
{
	static const char *const types[] = {
		"inet", "unix", "unix-dgram", "fifo", "pass",
	};
	char w[CFG_WHERE_MAX];
	struct strlist ov;
	const char *type, *command;
	long maxproc, wake;
	bool known = false, run;
	size_t i;

	cfg_where_str(w, sizeof(w), fname, line);
	if (t->n < 8) {
		errbuf_set(err, "%s: expected at least 8 fields (service type "
			   "private unpriv chroot wakeup maxproc command), got "
			   "%zu", w, t->n);
		return -1;
	}
	type = t->v[1];
	command = t->v[7];
	if (strcmp(type, "-") == 0 && transport_command(command))
		type = "unix";	/* Postfix's default type */
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(type, types[i]) == 0)
			known = true;
	if (!known) {
		errbuf_set(err, "%s: unknown service type: \"%.100s\" (expected "
			   "inet, unix, unix-dgram, fifo or pass)", w, type);
		return -1;
	}
	if (check_flag(t->v[2], "private", w, err) < 0 ||
	    check_flag(t->v[3], "unpriv", w, err) < 0 ||
	    check_flag(t->v[4], "chroot", w, err) < 0)
		return -1;
	if (parse_count(t->v[5], true, &wake) < 0) {
		errbuf_set(err, "%s: field \"wakeup\": bad value: \"%.100s\" "
			   "(expected a number, number? or -)", w, t->v[5]);
		return -1;
	}
	if (parse_count(t->v[6], false, &maxproc) < 0) {
		errbuf_set(err, "%s: field \"maxproc\": bad value: \"%.100s\" "
			   "(expected a number or -)", w, t->v[6]);
		return -1;
	}
	if (strcmp(command, "spawn") == 0 &&
	    (strcmp(type, "unix") == 0 || strcmp(type, "inet") == 0))
		return parse_spawn(c, t, fname, line, maxproc, warnings_r, err);
	if (strcmp(type, "unix") == 0 && transport_command(command))
		return parse_transport(c, t, fname, line, maxproc, warnings_r,
				       err);
	run = facteur_runs(type, command);
	if (!run && postscreen_part(type, command)) {
		bool pass = strcmp(type, "pass") == 0;

		cfg_warn(warnings_r, "notice: %s: service \"%s\" (%s) is built "
			 "into facteur's postscreen%s", w, t->v[0], command,
			 pass ? "; its -o overrides apply to the postscreen "
				"listeners' SMTP sessions" : ": not needed");
		run = pass;	/* kept until merge_pass */
	}
	if (!run) {
		/*
		 * Not ours: its arguments belong to its command (a pipe's
		 * "argv=/usr/sbin/sendmail -oi ..." is not an override), but
		 * $names they mention count as used.
		 */
		cfg_warn(warnings_r, "notice: %s: service \"%s\" (%s) is not "
			 "needed by facteur", w, t->v[0], command);
		for (i = 8; i < t->n; i++)
			strlist_add(&c->ignored_refs, t->v[i]);
		return 0;
	}
	strlist_init(&ov);
	for (i = 8; i < t->n; i++) {
		const char *a = t->v[i], *o = NULL;
		char *norm;

		if (strcmp(a, "-o") == 0) {
			if (i + 1 >= t->n) {
				errbuf_set(err, "%s: -o without name=value", w);
				goto fail;
			}
			o = t->v[++i];
		} else if (strncmp(a, "-o", 2) == 0) {
			o = a + 2;
		}
		if (o == NULL) {
			cfg_warn(warnings_r, "warning: %s: service \"%s\": "
				 "ignoring argument \"%.100s\"", w, t->v[0], a);
			continue;
		}
		if (override_norm(o, w, &norm, err) < 0)
			goto fail;
		strlist_add(&ov, norm);
		free(norm);
	}
	if (c->master.n >= MASTER_MAX_SERVICES) {
		errbuf_set(err, "%s: more than %d services", w,
			   MASTER_MAX_SERVICES);
		goto fail;
	}
	{
		char *host, *port;
		struct master_service *s;

		if (strcmp(type, "pass") == 0) {
			host = xstrdup("");
			port = xstrdup("");
		} else if (split_endpoint(t->v[0], w, &host, &port, err) < 0)
			goto fail;
		s = master_add(&c->master);
		s->service = xstrdup(t->v[0]);
		s->type = xstrdup(type);
		s->command = xstrdup(command);
		s->host = host;
		s->port = port;
		s->maxproc = (int)maxproc;
		s->overrides = ov;
		s->file = xstrdup(fname);
		s->line = line;
	}
	return 0;
fail:
	strlist_free(&ov);
	return -1;
}

/* Unknown parameter names in -o overrides of the services facteur runs. */
static void
override_findings(const struct config *c, struct strlist *warnings_r)
{
	struct strlist used;

	if (warnings_r == NULL)
		return;
	strlist_init(&used);
	cfg_collect_used(c, &used);
	for (size_t i = 0; i < c->master.n; i++) {
		const struct master_service *s = &c->master.v[i];
		char w[CFG_WHERE_MAX];

		cfg_where_str(w, sizeof(w), s->file, s->line);
		for (size_t j = 0; j < s->overrides.n; j++) {
			const char *o = s->overrides.v[j];
			size_t nl = strcspn(o, "=");
			char *name = xstrndup(o, nl);
			const struct param_def *d = params_find(name);

			if (d == NULL && !cfg_is_used(&used, name) &&
			    config_raw(c, name) == NULL)
				cfg_warn(warnings_r, "warning: %s: unknown "
					 "parameter in -o override: %s", w, name);
			else if (d && (d->flags & PARAM_F_INTERNAL))
				cfg_warn(warnings_r, "notice: %s: -o %s only "
					 "tunes Postfix internals; accepted and "
					 "ignored by facteur", w, name);
			free(name);
		}
	}
	strlist_free(&used);
}

int
config_parse_master(struct config *c, const char *text, const char *fname,
		    struct strlist *warnings_r, struct errbuf *err)
{
	struct cfg_reader r = { text, fname, 0 };
	struct master_cf saved = c->master, saved_t = c->transports;
	struct strlist toks;
	struct buf line;
	int first = 0, rc;

	if (strlen(text) > CONFIG_FILE_MAX) {
		errbuf_set(err, "%s: file larger than %d bytes", fname,
			   CONFIG_FILE_MAX);
		return -1;
	}
	c->master.v = NULL;
	c->master.n = 0;
	c->transports.v = NULL;
	c->transports.n = 0;
	buf_init(&line, CONFIG_VALUE_MAX);
	strlist_init(&toks);
	while ((rc = cfg_next_logical(&r, &line, &first, warnings_r, err)) > 0) {
		char w[CFG_WHERE_MAX];

		cfg_where_str(w, sizeof(w), fname, first);
		strlist_free(&toks);
		if (tokenize(buf_cstr(&line), &toks, w, err) < 0 ||
		    parse_service(c, &toks, fname, first, warnings_r, err) < 0) {
			rc = -1;
			break;
		}
	}
	strlist_free(&toks);
	buf_free(&line);
	if (rc < 0) {
		master_cf_clear(&c->master);
		master_cf_clear(&c->transports);
		c->master = saved;
		c->transports = saved_t;
		return -1;
	}
	master_cf_clear(&saved);
	master_cf_clear(&saved_t);
	merge_pass(&c->master);
	override_findings(c, warnings_r);
	return 0;
}
