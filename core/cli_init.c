/*
 * cli_init.c - `facteur init`: writes a first configuration for one of the
 * classic modes (Debian's postfix templates: internet-site, smarthost,
 * satellite, local-only) into a directory: a commented main.cf and
 * master.cf, sample virtual mailbox and alias maps, a passwd-file
 * placeholder; creates virtual_mailbox_base for mail_owner.
 * Asks for what is missing when stdin is a terminal, else needs the flags.
 * Must not: overwrite any existing file (all are checked before the first
 * is written), or write a parameter facteur does not know.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"

#define INIT_NAME_MAX 253

struct init_opts {
	const char *mode, *domain, *hostname, *relayhost, *backend;
	const char *root, *mail_owner, *listen, *dir;
	char       *owned[16];	/* strings read from the terminal */
	int         nowned;
};

static const struct {
	const char *name;
	const char *help;
	bool        mailboxes;	/* receives mail for its domain */
	bool        relayhost;	/* sends everything through a relay */
	bool        loopback;	/* listens on loopback only */
} modes[] = {
	{ "internet-site", "main mail server: receives mail for the domain "
	  "from the Internet (its MX) and sends mail out directly",
	  true, false, false },
	{ "smarthost", "receives mail for the domain from the Internet, "
	  "sends mail out through a relay host (smarthost)", true, true, false },
	{ "satellite", "relay mail server: no mailboxes; takes mail from this "
	  "machine only and sends all of it through a relay host",
	  false, true, true },
	{ "local-only", "mailboxes for the domain, mail from this machine "
	  "only, nothing sent out", true, false, true },
};
#define NMODES (sizeof(modes) / sizeof(modes[0]))

static void
init_usage(void)
{
	fprintf(stderr, "usage: facteur init --mode MODE --domain DOMAIN "
		"[--hostname HOST] [--relayhost HOST]\n"
		"         [--backend file] [--mail-owner USER] [--root PREFIX] "
		"[--listen ADDR:PORT] [DIR]\n"
		"modes:\n");
	for (size_t i = 0; i < NMODES; i++)
		fprintf(stderr, "  %-14s %s\n", modes[i].name, modes[i].help);
}

/* RFC 1035 host name: labels of letters, digits, '-', 1..63 each. */
static bool
valid_hostname(const char *s)
{
	size_t label = 0, n = strlen(s);

	if (n == 0 || n > INIT_NAME_MAX || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (const char *p = s; *p; p++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-')
				return false;
			label = 0;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			   (*p >= '0' && *p <= '9') || (*p == '-' && label > 0)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return s[n - 1] != '-';
}

/* relayhost as Postfix takes it: host, [host], with an optional :port. */
static bool
valid_relayhost(const char *s)
{
	char host[INIT_NAME_MAX + 1];
	const char *end, *port = NULL;
	size_t n;

	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return false;
		n = (size_t)(end - s - 1);
		if (n == 0 || n > INIT_NAME_MAX)
			return false;
		memcpy(host, s + 1, n);
		host[n] = '\0';
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return false;
	} else {
		end = strchr(s, ':');
		n = end ? (size_t)(end - s) : strlen(s);
		if (n == 0 || n > INIT_NAME_MAX)
			return false;
		memcpy(host, s, n);
		host[n] = '\0';
		if (end)
			port = end + 1;
	}
	if (port != NULL) {
		if (*port == '\0' || strlen(port) > 15)
			return false;
		for (const char *p = port; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
				return false;
	}
	/* [192.0.2.1] is an address, not a name */
	if (s[0] == '[' && strspn(host, "0123456789.abcdefABCDEF:") == n)
		return true;
	return valid_hostname(host);
}

/* One line from the terminal, or def on an empty answer; NULL at EOF. */
static const char *
ask(struct init_opts *o, const char *question, const char *def)
{
	char line[512];
	size_t n;

	if (def && *def)
		fprintf(stdout, "%s [%s]: ", question, def);
	else
		fprintf(stdout, "%s: ", question);
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return NULL;
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		line[--n] = '\0';
	if (n == 0)
		return def;
	if (o->nowned == (int)(sizeof(o->owned) / sizeof(o->owned[0])))
		return NULL;
	return o->owned[o->nowned++] = xstrdup(line + strspn(line, " \t"));
}

static int
mode_index(const char *m)
{
	for (size_t i = 0; i < NMODES; i++)
		if (m && strcmp(m, modes[i].name) == 0)
			return (int)i;
	return -1;
}

/* Fills what the flags left out: by asking, or fails naming the flag. */
static int
init_complete(struct init_opts *o)
{
	bool tty = isatty(STDIN_FILENO);
	char host[256];
	int m;

	if (o->mode == NULL && tty) {
		printf("Mail server modes (Debian's postfix templates):\n");
		for (size_t i = 0; i < NMODES; i++)
			printf("  %-14s %s\n", modes[i].name, modes[i].help);
		for (int tries = 0; tries < 5; tries++)
			if ((o->mode = ask(o, "Mode", "internet-site")) == NULL ||
			    mode_index(o->mode) >= 0)
				break;
	}
	if ((m = mode_index(o->mode)) < 0) {
		if (o->mode == NULL)
			log_write(NULL, NULL, LOG_LVL_ERROR, "init: --mode is "
				  "required");
		else
			log_write(NULL, NULL, LOG_LVL_ERROR, "init: unknown mode "
				  "\"%.100s\"", o->mode);
		init_usage();
		return -1;
	}
	if (o->domain == NULL && tty)
		o->domain = ask(o, "Mail domain (the part after @)", NULL);
	if (o->domain == NULL) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "init: --domain is required");
		return -1;
	}
	if (o->hostname == NULL) {
		/* The machine's own name if it is qualified, else mail.DOMAIN. */
		const char *def = NULL;
		char *mail = xasprintf("mail.%s", o->domain);

		if (gethostname(host, sizeof(host)) == 0 &&
		    (host[sizeof(host) - 1] = '\0', strchr(host, '.') != NULL))
			def = host;
		o->owned[o->nowned++] = mail;
		if (def == NULL)
			def = mail;
		o->hostname = tty ? ask(o, "This server's host name (myhostname)",
					def) : def;
		if (o->hostname == NULL)
			return -1;
	}
	if (modes[m].relayhost && o->relayhost == NULL && tty)
		o->relayhost = ask(o, "Relay host for outgoing mail, e.g. "
				   "[smtp.example.net]:587", NULL);
	if (modes[m].relayhost && (o->relayhost == NULL || !*o->relayhost)) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "init: mode %s needs "
			  "--relayhost", o->mode);
		return -1;
	}
	if (!modes[m].relayhost && o->relayhost != NULL) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "init: mode %s sends no mail "
			  "through a relay host: --relayhost does not apply "
			  "(use --mode smarthost)", o->mode);
		return -1;
	}
	return m;
}

static int
init_validate(const struct init_opts *o)
{
	if (!valid_hostname(o->domain)) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "init: \"%.300s\" is not a "
			  "valid domain name", o->domain);
		return -1;
	}
	if (!valid_hostname(o->hostname) || strchr(o->hostname, '.') == NULL) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "init: \"%.300s\" is not a "
			  "fully qualified host name", o->hostname);
		return -1;
	}
	if (o->relayhost && !valid_relayhost(o->relayhost)) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "init: \"%.300s\" is not a "
			  "relay host (host, [host] or [host]:port)", o->relayhost);
		return -1;
	}
	if (strcmp(o->backend, "file") != 0) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "init: --backend %.100s: "
			  "only \"file\" is available in this version", o->backend);
		return -1;
	}
	if (*o->root && o->root[0] != '/') {
		log_write(NULL, NULL, LOG_LVL_ERROR, "init: --root must be an "
			  "absolute path");
		return -1;
	}
	if (!*o->mail_owner || strcmp(o->mail_owner, "root") == 0 ||
	    strpbrk(o->mail_owner, " \t\n#=,:") != NULL) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "init: bad --mail-owner "
			  "\"%.100s\"", o->mail_owner);
		return -1;
	}
	if (!*o->listen || strpbrk(o->listen, " \t\n#") != NULL) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "init: bad --listen \"%.100s\"",
			  o->listen);
		return -1;
	}
	return 0;
}

static void
write_main_cf(struct buf *b, const struct init_opts *o, int m,
	      const char *dir, const char *queue, const char *base)
{
	char date[64];
	time_t now = time(NULL);

	strftime(date, sizeof(date), "%Y-%m-%d", gmtime(&now));
	buf_printf(b,
	    "# main.cf - facteur's configuration, in Postfix's main.cf syntax.\n"
	    "# Written by \"facteur init --mode %s\" on %s.\n"
	    "#\n"
	    "# Mode %s: %s.\n"
	    "#\n"
	    "# \"name = value\"; a line starting with white space continues the\n"
	    "# one before; $name uses another parameter. After a change:\n"
	    "#   facteur -c %s check        validates this file, master.cf, maps\n"
	    "#   facteur -c %s conf -n      shows what is set here\n"
	    "#   facteur -c %s conf -e name=value   changes one setting\n"
	    "# Parameters and defaults: facteur.cf(5), or facteur conf -d.\n\n",
	    o->mode, date, o->mode, modes[m].help, dir, dir, dir);

	buf_printf(b,
	    "# --- Identity\n"
	    "# This server's name: in the SMTP greeting and Received: headers.\n"
	    "# It should be the name the server's address resolves back to.\n"
	    "myhostname = %s\n"
	    "mydomain = %s\n"
	    "# Domain of addresses written without one.\n"
	    "myorigin = $mydomain\n"
	    "# Mail for these names is for this machine itself; facteur keeps no\n"
	    "# local (Unix account) mailboxes, so only aliases apply to them.\n"
	    "mydestination = localhost\n\n", o->hostname, o->domain);

	buf_printf(b,
	    "# --- Network\n"
	    "# Where to listen: \"all\" interfaces, or \"loopback-only\".\n"
	    "inet_interfaces = %s\n"
	    "inet_protocols = all\n"
	    "# Trusted clients: they may send mail to any address (relay).\n"
	    "# Keep this to this machine (and your own networks, if any).\n"
	    "mynetworks = 127.0.0.0/8 [::1]/128\n\n",
	    modes[m].loopback ? "loopback-only" : "all");

	buf_printf(b, "# --- Outgoing mail\n");
	if (modes[m].relayhost)
		buf_printf(b,
		    "# Everything not delivered here goes to this host. [brackets]:\n"
		    "# connect to that host itself, without an MX lookup.\n"
		    "relayhost = %s\n\n", o->relayhost);
	else if (modes[m].mailboxes && !modes[m].loopback)
		buf_printf(b,
		    "# Empty: mail for other domains goes directly to their MX hosts.\n"
		    "# Set it to [smtp.example.net]:587 to send through a smarthost.\n"
		    "relayhost =\n\n");
	else
		buf_printf(b,
		    "# Nothing leaves this machine: mail for other domains is refused.\n"
		    "relayhost =\n"
		    "smtpd_relay_restrictions = reject_unauth_destination\n\n");

	if (modes[m].mailboxes)
		buf_printf(b,
		    "# --- Mailboxes\n"
		    "# Domains whose users have maildirs here, and the map of those\n"
		    "# users (\"user@domain  domain/user/\": a Maildir under\n"
		    "# virtual_mailbox_base). Add a domain here and its users there.\n"
		    "virtual_mailbox_domains = $mydomain\n"
		    "virtual_mailbox_base = %s\n"
		    "virtual_mailbox_maps = texthash:%s/vmailbox\n"
		    "# Aliases and forwarding: \"address  target, target ...\".\n"
		    "virtual_alias_maps = texthash:%s/valias\n"
		    "# user+tag@domain is delivered to user@domain.\n"
		    "recipient_delimiter = +\n\n", base, dir, dir);
	else
		buf_printf(b,
		    "# --- Mailboxes\n"
		    "# None: a satellite keeps no mail. Its own names are aliased\n"
		    "# to real addresses elsewhere.\n"
		    "virtual_alias_maps = texthash:%s/valias\n\n", dir);

	buf_printf(b,
	    "# --- SMTP server\n"
	    "# Greeting, and limits from Debian's setup questions.\n"
	    "smtpd_banner = $myhostname ESMTP $mail_name\n"
	    "# Clients must say HELO/EHLO first (most spam software does not).\n"
	    "smtpd_helo_required = yes\n"
	    "# VRFY would let anyone harvest the addresses that exist here.\n"
	    "disable_vrfy_command = yes\n"
	    "# Largest message accepted, in bytes (attachments grow by a third\n"
	    "# once encoded).\n"
	    "message_size_limit = 52428800\n"
	    "smtpd_recipient_limit = 1000\n\n");

	buf_printf(b,
	    "# --- Queue and privileges\n"
	    "# facteurd binds its ports as root, then runs as this user; the\n"
	    "# queue and every maildir belong to it.\n"
	    "mail_owner = %s\n"
	    "queue_directory = %s\n"
	    "# Undeliverable mail is returned after this long.\n"
	    "maximal_queue_lifetime = 5d\n"
	    "bounce_queue_lifetime = 5d\n\n", o->mail_owner, queue);

	buf_printf(b,
	    "# --- Logging\n"
	    "# To syslog (mail facility) under this name; \"postfix\" lets stock\n"
	    "# pflogsumm and fail2ban filters read the log unchanged.\n"
	    "syslog_name = facteur\n"
	    "# Or to a file of its own (rotate it with contrib/logrotate):\n"
	    "#maillog_file = /var/log/facteur/facteur.log\n\n");

	buf_printf(b,
	    "# --- Authentication (SMTP AUTH for mail clients on port 587)\n"
	    "# Users and password hashes in Dovecot's passwd-file format: %s/passwd.\n"
	    "# Enable with the submission service in master.cf:\n"
	    "#smtpd_sasl_auth_enable = yes\n"
	    "#smtpd_sasl_passdb = passwd-file:%s/passwd\n"
	    "#smtpd_tls_cert_file = /etc/ssl/certs/%s.pem\n"
	    "#smtpd_tls_key_file = /etc/ssl/private/%s.key\n",
	    dir, dir, o->hostname, o->hostname);
}

static void
write_master_cf(struct buf *b, const struct init_opts *o, int m)
{
	buf_printf(b,
	    "# master.cf - facteur's services, in Postfix's master.cf syntax.\n"
	    "# Written by \"facteur init --mode %s\".\n"
	    "# facteurd runs the \"inet ... smtpd\" lines as listeners; -o name=value\n"
	    "# overrides a main.cf parameter for one listener. \"facteur conf -M\"\n"
	    "# lists them.\n"
	    "#\n"
	    "# service     type  private unpriv  chroot  wakeup  maxproc command + args\n"
	    "#             (yes)   (yes)   (no)    (never) (100)\n"
	    "%-12s  inet  n       -       n       -       -       smtpd\n",
	    o->mode, o->listen);
	if (!modes[m].loopback)
		buf_printf(b,
		    "# Mail clients: submission on 587 with STARTTLS and AUTH\n"
		    "# (set the smtpd_tls_* and smtpd_sasl_* lines in main.cf first).\n"
		    "#submission  inet  n       -       n       -       -       smtpd\n"
		    "#  -o syslog_name=facteur/submission\n"
		    "#  -o smtpd_tls_security_level=encrypt\n"
		    "#  -o smtpd_sasl_auth_enable=yes\n"
		    "#  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n");
}

static void
write_maps(struct buf *vmb, struct buf *val, struct buf *pw,
	   const struct init_opts *o, int m)
{
	if (modes[m].mailboxes) {
		buf_printf(vmb,
		    "# vmailbox - the mailboxes (virtual_mailbox_maps).\n"
		    "# \"address  maildir/\": the maildir is under virtual_mailbox_base;\n"
		    "# the trailing / makes it a Maildir. Re-read when it changes.\n"
		    "postmaster@%s  %s/postmaster/\n"
		    "#alice@%s       %s/alice/\n", o->domain, o->domain,
		    o->domain, o->domain);
		buf_printf(val,
		    "# valias - aliases and forwarding (virtual_alias_maps).\n"
		    "# \"address  target, target ...\"; \"@domain  target\" catches all.\n"
		    "abuse@%s       postmaster@%s\n"
		    "hostmaster@%s  postmaster@%s\n"
		    "root@localhost    postmaster@%s\n"
		    "postmaster@localhost  postmaster@%s\n"
		    "#info@%s       alice@%s, bob@example.net\n",
		    o->domain, o->domain, o->domain, o->domain, o->domain,
		    o->domain, o->domain, o->domain);
	} else {
		buf_printf(val,
		    "# valias - aliases (virtual_alias_maps). This satellite keeps no\n"
		    "# mail: send what arrives for its own names to a real mailbox.\n"
		    "root@localhost        postmaster@%s\n"
		    "postmaster@localhost  postmaster@%s\n", o->domain, o->domain);
	}
	buf_printf(pw,
	    "# passwd - SMTP AUTH users in Dovecot's passwd-file format\n"
	    "# (smtpd_sasl_passdb = passwd-file:THIS_FILE); Dovecot IMAP can read\n"
	    "# the same file. One line per user:\n"
	    "#   user@%s:{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$...:::\n"
	    "# Make a hash with \"facteur passwd\" or \"doveadm pw -s ARGON2ID\".\n",
	    o->domain);
}

/* mkdir -p; the last component gets mode. */
static int
mkdir_p(const char *path, mode_t mode)
{
	char *p = xstrdup(path);
	int rc = 0;

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			rc = -1;
		*s = '/';
		if (rc < 0)
			break;
	}
	if (rc == 0 && mkdir(p, mode) < 0 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

struct out_file {
	const char *name;
	mode_t      mode;
	struct buf  text;
	bool        wanted;
};

int
cli_init(struct cli *cli, int argc, char **argv)
{
	struct init_opts o;
	struct out_file files[5];
	char *dir = NULL, *queue = NULL, *base = NULL;
	struct passwd *pw;
	int m, rc = 1, written = 0;

	memset(&o, 0, sizeof(o));
	o.backend = "file";
	o.root = "";
	o.mail_owner = "vmail";
	o.listen = "smtp";
	for (int i = 1; i < argc; i++) {
		static const struct {
			const char *flag;
			size_t off;
		} flags[] = {
			{ "--mode", offsetof(struct init_opts, mode) },
			{ "--domain", offsetof(struct init_opts, domain) },
			{ "--hostname", offsetof(struct init_opts, hostname) },
			{ "--relayhost", offsetof(struct init_opts, relayhost) },
			{ "--backend", offsetof(struct init_opts, backend) },
			{ "--root", offsetof(struct init_opts, root) },
			{ "--mail-owner", offsetof(struct init_opts, mail_owner) },
			{ "--listen", offsetof(struct init_opts, listen) },
		};
		const char *a = argv[i], *v = NULL;
		size_t k;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			init_usage();
			return 0;
		}
		if (a[0] != '-') {
			if (o.dir != NULL) {
				log_write(NULL, NULL, LOG_LVL_ERROR, "init: more than "
					  "one directory given");
				return 2;
			}
			o.dir = a;
			continue;
		}
		for (k = 0; k < sizeof(flags) / sizeof(flags[0]); k++) {
			size_t n = strlen(flags[k].flag);

			if (strncmp(a, flags[k].flag, n) != 0)
				continue;
			if (a[n] == '=')
				v = a + n + 1;
			else if (a[n] == '\0' && i + 1 < argc)
				v = argv[++i];
			else if (a[n] != '\0')
				continue;
			break;
		}
		if (k == sizeof(flags) / sizeof(flags[0]) || v == NULL) {
			log_write(NULL, NULL, LOG_LVL_ERROR, "init: %s: %.100s",
				  k == sizeof(flags) / sizeof(flags[0]) ?
				  "unknown option" : "missing value", a);
			init_usage();
			return 2;
		}
		*(const char **)((char *)&o + flags[k].off) = v;
	}
	if (o.dir == NULL)
		o.dir = cli->dir;

	if ((m = init_complete(&o)) < 0 || init_validate(&o) < 0) {
		rc = 2;
		goto out;
	}
	if (mkdir_p(o.dir, 0755) < 0) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "init: mkdir %s: %s", o.dir,
			  strerror(errno));
		goto out;
	}
	if ((dir = realpath(o.dir, NULL)) == NULL) {
		log_write(NULL, NULL, LOG_LVL_ERROR, "init: %s: %s", o.dir,
			  strerror(errno));
		goto out;
	}
	/* Trailing '/' of --root would double the separator. */
	{
		size_t n = strlen(o.root);

		while (n > 0 && o.root[n - 1] == '/')
			n--;
		queue = xasprintf("%.*s/var/spool/facteur", (int)n, o.root);
		base = xasprintf("%.*s/var/vmail", (int)n, o.root);
	}

	memset(files, 0, sizeof(files));
	files[0] = (struct out_file){ "main.cf", 0644, { 0 }, true };
	files[1] = (struct out_file){ "master.cf", 0644, { 0 }, true };
	files[2] = (struct out_file){ "vmailbox", 0644, { 0 }, modes[m].mailboxes };
	files[3] = (struct out_file){ "valias", 0644, { 0 }, true };
	files[4] = (struct out_file){ "passwd", 0640, { 0 }, true };
	for (size_t i = 0; i < 5; i++)
		buf_init(&files[i].text, 0);
	write_main_cf(&files[0].text, &o, m, dir, queue, base);
	write_master_cf(&files[1].text, &o, m);
	write_maps(&files[2].text, &files[3].text, &files[4].text, &o, m);

	/* Nothing is written if anything is in the way. */
	for (size_t i = 0; i < 5; i++) {
		char *p = xasprintf("%s/%s", dir, files[i].name);
		struct stat st;

		if (files[i].wanted && lstat(p, &st) == 0) {
			log_write(NULL, NULL, LOG_LVL_ERROR, "init: %s exists: not "
				  "overwriting anything (move it away, or edit it)", p);
			written = -1;
		}
		free(p);
	}
	for (size_t i = 0; written >= 0 && i < 5; i++) {
		char *p = xasprintf("%s/%s", dir, files[i].name);
		const char *t = buf_cstr(&files[i].text);
		size_t n = strlen(t);
		int fd;

		if (!files[i].wanted) {
			free(p);
			continue;
		}
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, files[i].mode);
		if (fd < 0 || write(fd, t, n) != (ssize_t)n || fsync(fd) < 0) {
			log_write(NULL, NULL, LOG_LVL_ERROR, "init: write %s: %s", p,
				  strerror(errno));
			if (fd >= 0) {
				close(fd);
				unlink(p);
			}
			written = -1;
		} else {
			close(fd);
			printf("wrote %s\n", p);
			written++;
		}
		free(p);
	}
	for (size_t i = 0; i < 5; i++)
		buf_free(&files[i].text);
	if (written < 0)
		goto out;

	/* The mailbox base belongs to mail_owner; facteurd makes the queue. */
	pw = getpwnam(o.mail_owner);
	if (modes[m].mailboxes) {
		if (mkdir_p(base, 0750) < 0) {
			log_write(NULL, NULL, LOG_LVL_ERROR, "init: mkdir %s: %s",
				  base, strerror(errno));
			goto out;
		}
		if (geteuid() == 0 && pw != NULL &&
		    chown(base, pw->pw_uid, pw->pw_gid) < 0) {
			log_write(NULL, NULL, LOG_LVL_ERROR, "init: chown %s: %s",
				  base, strerror(errno));
			goto out;
		}
	}
	if (pw == NULL)
		printf("note: user \"%s\" does not exist yet: create it (make "
		       "install-user)%s%s\n", o.mail_owner,
		       modes[m].mailboxes ? ", then chown it " : "",
		       modes[m].mailboxes ? base : "");
	printf("next: facteur -c %s check, then start facteurd -c %s\n", dir, dir);
	rc = 0;
out:
	free(dir);
	free(queue);
	free(base);
	for (int i = 0; i < o.nowned; i++)
		free(o.owned[i]);
	return rc;
}
