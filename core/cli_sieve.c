/*
 * cli_sieve.c - `facteur sieve check FILE ...` (compile, errors as
 * FILE:LINE:COL: reason) and `facteur sieve test [--from A] [--to R]
 * [--delimiter C] [--personal DIR] [--global DIR] [--before FILE]...
 * [--show-message] SCRIPT MESSAGE` (run a script on a message file and
 * print the actions, in the form of Pigeonhole's sieve-test; --before
 * runs scripts first as sieve_before does, like sieve-test -s). include finds personal scripts
 * as DIR/NAME.sieve (default: the script's directory), global ones in
 * --global DIR; duplicate never finds an earlier message.
 * Must not: deliver, queue or write anything.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include "core/cli.h"
#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"
#include "delivery/sieve/sieve.h"

static int
read_file(const char *path, size_t max, struct buf *out)
{
	FILE *fp = fopen(path, "rb");
	char tmp[8192];
	size_t n;

	if (fp == NULL) {
		fprintf(stderr, "facteur: %s: %s\n", path, strerror(errno));
		return -1;
	}
	buf_init(out, max);
	while ((n = fread(tmp, 1, sizeof(tmp), fp)) > 0)
		if (buf_append(out, tmp, n) < 0) {
			fprintf(stderr, "facteur: %s: larger than %zu bytes\n",
				path, max);
			fclose(fp);
			return -1;
		}
	fclose(fp);
	return 0;
}

static struct sieve_script *
compile_file(const char *path)
{
	struct buf text;
	struct errbuf err;
	struct sieve_script *s;

	if (read_file(path, SIEVE_MAX_SCRIPT_SIZE, &text) < 0) {
		buf_free(&text);
		return NULL;
	}
	s = sieve_compile(text.data ? text.data : "", text.len, path, &err);
	if (s == NULL)
		fprintf(stderr, "%s:%s\n", path, errbuf_str(&err));
	buf_free(&text);
	return s;
}

static int
sieve_check_cmd(int argc, char **argv)
{
	int bad = 0;

	if (argc < 1) {
		fprintf(stderr, "usage: facteur sieve check FILE ...\n");
		return 2;
	}
	for (int i = 0; i < argc; i++) {
		struct sieve_script *s = compile_file(argv[i]);

		if (s == NULL)
			bad = 1;
		else
			printf("%s: OK\n", argv[i]);
		sieve_script_free(&s);
	}
	return bad;
}

struct dirs {
	char   *personal;
	const char *global;
};

static int
include_cb(void *arg, bool global, const char *name, struct sieve_script **sp,
	   struct errbuf *err)
{
	const struct dirs *d = arg;
	const char *dir = global ? d->global : d->personal;
	char *path;
	int rc;

	if (dir == NULL)
		return 0;
	path = xasprintf("%s/%s.sieve", dir, name);
	rc = sieve_cache_get(path, sp, err);
	free(path);
	return rc;
}

static int
sieve_test_cmd(int argc, char **argv)
{
	const char *from = "sender@example.com", *to = "recipient@example.com";
	const char *delim = "+";
	struct dirs dirs = { NULL, NULL };
	const char *before[8];
	size_t nbefore = 0;
	bool show = false, go = true;
	struct sieve_script *s;
	struct sieve_result r;
	struct sieve_msg m;
	struct errbuf err;
	struct buf msg, out;
	int i, rc = 0;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
			from = argv[++i];
		else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
			to = argv[++i];
		else if (strcmp(argv[i], "--delimiter") == 0 && i + 1 < argc)
			delim = argv[++i];
		else if (strcmp(argv[i], "--personal") == 0 && i + 1 < argc) {
			free(dirs.personal);
			dirs.personal = xstrdup(argv[++i]);
		} else if (strcmp(argv[i], "--global") == 0 && i + 1 < argc)
			dirs.global = argv[++i];
		else if (strcmp(argv[i], "--show-message") == 0)
			show = true;
		else if (strcmp(argv[i], "--before") == 0 && i + 1 < argc
			 && nbefore < 8)
			before[nbefore++] = argv[++i];
		else
			break;
	}
	if (argc - i != 2) {
		fprintf(stderr, "usage: facteur sieve test [--from A] [--to R] "
			"[--delimiter C] [--personal DIR] [--global DIR] "
			"[--before FILE]... [--show-message] SCRIPT MESSAGE\n");
		free(dirs.personal);
		return 2;
	}
	if (dirs.personal == NULL) {
		const char *sl = strrchr(argv[i], '/');

		dirs.personal = sl ? xstrndup(argv[i], (size_t)(sl - argv[i]))
				   : xstrdup(".");
	}
	if ((s = compile_file(argv[i])) == NULL) {
		free(dirs.personal);
		return 1;
	}
	if (read_file(argv[i + 1], 256u * 1024 * 1024, &msg) < 0) {
		buf_free(&msg);
		sieve_script_free(&s);
		free(dirs.personal);
		return 1;
	}
	memset(&m, 0, sizeof(m));
	m.content = msg.data ? msg.data : "";
	m.len = msg.len;
	m.env_from = strcmp(from, "<>") == 0 ? "" : from;
	m.env_to = to;
	m.delimiters = delim;
	m.include = include_cb;
	m.arg = &dirs;
	sieve_result_init(&r);
	/* sieve_before scripts: the next runs while the keep is in effect */
	for (size_t k = 0; k < nbefore && go && rc == 0; k++) {
		struct sieve_script *b = compile_file(before[k]);

		if (b == NULL || sieve_run(b, &m, &r, &err) < 0) {
			if (b)
				fprintf(stderr, "%s: run-time error at line %s\n",
					before[k], errbuf_str(&err));
			sieve_result_free(&r);
			sieve_result_init(&r);
			rc = 1;
		}
		sieve_script_free(&b);
		if (rc == 0)
			go = sieve_result_continue(&r);
	}
	if (rc == 0 && go && sieve_run(s, &m, &r, &err) < 0) {
		fprintf(stderr, "%s: run-time error at line %s\n", argv[i],
			errbuf_str(&err));
		/* as delivery would: implicit keep into INBOX only */
		sieve_result_free(&r);
		sieve_result_init(&r);
		rc = 1;
	}
	sieve_result_finish(&r);
	buf_init(&out, 0);
	sieve_result_format(&r, &out);
	fputs(buf_cstr(&out), stdout);
	if (show) {
		/* the message the implicit or last store would write */
		size_t len = msg.len;
		const char *c = msg.data ? msg.data : "";

		for (size_t k = 0; k < r.nact; k++)
			c = sieve_action_message(&r, &r.act[k], msg.data ? msg.data : "",
						 msg.len, &len);
		printf("\nMessage:\n\n");
		fwrite(c, 1, len, stdout);
	}
	buf_free(&out);
	sieve_result_free(&r);
	buf_free(&msg);
	sieve_script_free(&s);
	sieve_cache_clear();
	free(dirs.personal);
	return rc;
}

int
cli_sieve(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	/* argv[0] is "sieve" */
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return sieve_check_cmd(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "test") == 0)
		return sieve_test_cmd(argc - 2, argv + 2);
	fprintf(stderr, "usage: facteur sieve check FILE ... | facteur sieve "
		"test [--from A] [--to R] [--personal DIR] [--global DIR] SCRIPT "
		"MESSAGE\n");
	return 2;
}
