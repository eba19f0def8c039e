/*
 * cli_passwd.c - `facteur passwd [-s SCHEME] [-u user@domain]` (as
 * `doveadm pw`): reads a password twice from the terminal with echo off,
 * or one line from standard input when it is not a terminal, and prints
 * "{SCHEME}hash" for a passwd-file (default ARGON2ID; SCRAM-SHA-256 in
 * Dovecot's stored form, for SCRAM logins). Exit status: 0
 * printed, 1 unreadable or mismatched password, 2 bad usage or scheme.
 * Must not: read main.cf, echo the password, or leave it in memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "auth/pwscheme.h"
#include "core/cli.h"
#include "core/lib/errbuf.h"

#define PASSWD_MAX 1024

static const char passwd_usage[] =
	"usage: facteur passwd [-s SCHEME] [-u user@domain]\n"
	"schemes: ARGON2ID (default), ARGON2I, SHA512-CRYPT, SHA256-CRYPT, "
	"BLF-CRYPT, MD5-CRYPT, SSHA512, SSHA256, SSHA, SCRAM-SHA-256, PLAIN\n";

/*
 * One line from fp into pw (size PASSWD_MAX + 2), without its newline.
 * 0, or -1 (reported) at end of file, on a read error, or when too long.
 */
static int
passwd_read_line(FILE *fp, char *pw, size_t size)
{
	size_t n;

	if (fgets(pw, (int)size, fp) == NULL) {
		fprintf(stderr, "facteur: passwd: no password read%s%s\n",
			ferror(fp) ? ": " : "", ferror(fp) ? strerror(errno) : "");
		return -1;
	}
	n = strlen(pw);
	if (n > 0 && pw[n - 1] == '\n')
		pw[--n] = '\0';
	else if (n >= size - 1) {
		fprintf(stderr, "facteur: passwd: password longer than %d bytes\n",
			PASSWD_MAX);
		return -1;
	}
	if (n > 0 && pw[n - 1] == '\r')
		pw[--n] = '\0';
	return 0;
}

/* Prompts on stderr and reads with echo off; the terminal is restored. */
static int
passwd_read_tty(const char *prompt, char *pw, size_t size)
{
	struct termios old, quiet;
	int rc;

	fputs(prompt, stderr);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &old) != 0) {
		fprintf(stderr, "\nfacteur: passwd: tcgetattr: %s\n", strerror(errno));
		return -1;
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0) {
		fprintf(stderr, "\nfacteur: passwd: tcsetattr: %s\n", strerror(errno));
		return -1;
	}
	rc = passwd_read_line(stdin, pw, size);
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	return rc;
}

int
cli_passwd(struct cli *cli, int argc, char **argv)
{
	const char *scheme = "ARGON2ID", *user = NULL;
	char pw[PASSWD_MAX + 2], again[PASSWD_MAX + 2];
	char *hash;
	struct errbuf err;
	int rc = 1;

	(void)cli;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(passwd_usage, stdout);
			return 0;
		}
		if ((strcmp(argv[i], "-s") == 0 || strcmp(argv[i], "-u") == 0) &&
		    i + 1 < argc && argv[i + 1][0] != '\0') {
			if (argv[i][1] == 's')
				scheme = argv[++i];
			else
				user = argv[++i];
			continue;
		}
		fprintf(stderr, "facteur: passwd: bad argument \"%s\"\n%s",
			argv[i], passwd_usage);
		return 2;
	}
	/* The schemes facteur makes do not mix the user name into the hash;
	 * -u is accepted for doveadm pw compatibility and checked for shape. */
	if (user != NULL && strchr(user, ':') != NULL) {
		fprintf(stderr, "facteur: passwd: a user name cannot contain ':'\n");
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "facteur: passwd: libsodium cannot start\n");
		return 1;
	}
	/* Refuse an unknown scheme before asking for anything. */
	if (!pwscheme_hash_known(scheme)) {
		fprintf(stderr, "facteur: passwd: unknown password scheme \"%s\" "
			"(ARGON2ID, ARGON2I, SHA512-CRYPT, SHA256-CRYPT, "
			"BLF-CRYPT, MD5-CRYPT, SSHA512, SSHA256, SSHA, "
			"SCRAM-SHA-256, PLAIN)\n",
			scheme);
		return 2;
	}
	if (isatty(STDIN_FILENO)) {
		if (passwd_read_tty("Enter new password: ", pw, sizeof(pw)) != 0)
			goto out;
		if (passwd_read_tty("Retype new password: ", again,
				    sizeof(again)) != 0)
			goto out;
		if (strcmp(pw, again) != 0) {
			fprintf(stderr, "facteur: passwd: passwords do not match\n");
			goto out;
		}
	} else if (passwd_read_line(stdin, pw, sizeof(pw)) != 0)
		goto out;
	if (pw[0] == '\0') {
		fprintf(stderr, "facteur: passwd: empty password refused\n");
		goto out;
	}
	hash = pwscheme_hash(scheme, pw, &err);
	if (hash == NULL) {
		fprintf(stderr, "facteur: passwd: %s\n", errbuf_str(&err));
		goto out;
	}
	printf("%s\n", hash);
	sodium_memzero(hash, strlen(hash));
	free(hash);
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	sodium_memzero(pw, sizeof(pw));
	sodium_memzero(again, sizeof(again));
	return rc;
}
