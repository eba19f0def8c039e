/*
 * log_test.c - Postfix-format log lines written to a maillog_file: the line
 * format (time stamp, host, NAME/SERVICE[PID]), per-call name overrides,
 * level prefixes, one event = one line (newlines in values, very long
 * messages), no interleaving between threads, the stderr copy and the CLI
 * format.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/log.h"
#include "testdir.h"

#define HOST "mx1.example.test"

/* A fresh empty file for one test. */
struct tmplog {
	char path[256];
};

static void
tmplog_make(struct tmplog *t)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	snprintf(t->path, sizeof(t->path), "%s/log_test.XXXXXX",
		 dir && *dir ? dir : "/tmp");
	fd = mkstemp(t->path);
	assert_true(fd >= 0);
	close(fd);
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (*s == '\n')
			n++;
	return n;
}

static void
open_log(struct tmplog *t, const char *name)
{
	tmplog_make(t);
	log_set_cli(0);
	log_set_hostname(HOST);
	assert_int_equal(log_open(name, t->path, 0), 0);
}

static void
close_log(struct tmplog *t)
{
	log_close();
	unlink(t->path);
}

/* Anchored POSIX extended regex match of one line (without its \n). */
static int
line_matches(const char *pattern, const char *line, size_t len)
{
	regex_t re;
	char *copy = strndup(line, len);
	int rc;

	assert_non_null(copy);
	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	rc = regexec(&re, copy, 0, NULL, 0) == 0;
	regfree(&re);
	free(copy);
	return rc;
}

/* "Mmm dd hh:mm:ss HOST " : the Postfix/syslog line head. */
#define HEAD_RE "^[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} "

/* syslog_facility: names to codes, the "<PRI>" of syslog datagrams. */
static void
test_facility(void **state)
{
	struct errbuf err;
	int code = -1;

	(void)state;
	assert_int_equal(log_priority(LOG_LVL_INFO), 2 * 8 + 6);	/* mail */
	assert_int_equal(log_facility_parse("local3", &code, &err), 0);
	assert_int_equal(code, 19);
	assert_int_equal(log_facility_parse("MAIL", &code, &err), 0);
	assert_int_equal(code, 2);
	log_set_facility(19);
	assert_int_equal(log_priority(LOG_LVL_WARNING), 19 * 8 + 4);
	assert_int_equal(log_priority(LOG_LVL_INFO), 19 * 8 + 6);
	log_set_facility(2);
	assert_int_equal(log_priority(LOG_LVL_ERROR), 2 * 8 + 3);
	errbuf_clear(&err);
	assert_int_equal(log_facility_parse("local8", &code, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "syslog_facility: unknown "
			       "syslog facility \"local8\""));
	assert_int_equal(log_facility_parse("", &code, &err), -1);
}

static void
test_format(void **state)
{
	struct tmplog t;
	char *data, pattern[256], stamp[32];
	time_t t0, t1;
	struct tm tm;
	size_t len;
	int stamp_ok = 0;

	(void)state;
	open_log(&t, "facteur");
	t0 = time(NULL);
	log_write(NULL, "smtpd", LOG_LVL_INFO, "connect from %s[%s]",
		  "unknown", "192.0.2.1");
	t1 = time(NULL);
	data = testdir_slurp(t.path, &len);
	assert_int_equal(count_lines(data), 1);
	assert_int_equal(data[len - 1], '\n');
	snprintf(pattern, sizeof(pattern),
		 HEAD_RE "mx1\\.example\\.test facteur/smtpd\\[%ld\\]: "
		 "connect from unknown\\[192\\.0\\.2\\.1\\]$", (long)getpid());
	if (!line_matches(pattern, data, len - 1))
		fail_msg("line \"%s\" does not match %s", data, pattern);
	/* The stamp is local time at the moment of the call. */
	for (time_t x = t0; x <= t1; x++) {
		localtime_r(&x, &tm);
		strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
		if (strncmp(data, stamp, strlen(stamp)) == 0)
			stamp_ok = 1;
	}
	if (!stamp_ok)
		fail_msg("stamp of \"%s\" is not the current time", data);
	free(data);
	close_log(&t);
}

struct fmt_case {
	const char     *syslog_name;	/* log_open's */
	const char     *name;		/* log_write's override */
	const char     *service;
	enum log_level  lvl;
	const char     *text;
	const char     *want;		/* after "HOST ", with %ld = pid */
};

static const struct fmt_case fmt_cases[] = {
	{ "facteur", NULL, "smtpd", LOG_LVL_INFO, "hello",
	  "facteur/smtpd[%ld]: hello" },
	{ "facteur", "", "qmgr", LOG_LVL_INFO, "hello",
	  "facteur/qmgr[%ld]: hello" },
	{ "facteur", "postfix/submission", "smtpd", LOG_LVL_INFO, "hello",
	  "postfix/submission/smtpd[%ld]: hello" },
	{ "postfix", NULL, "cleanup", LOG_LVL_INFO, "ABC: message-id=<x@y>",
	  "postfix/cleanup[%ld]: ABC: message-id=<x@y>" },
	{ "postfix", "facteur/smtps", "smtpd", LOG_LVL_INFO, "x",
	  "facteur/smtps/smtpd[%ld]: x" },
	{ "facteur", NULL, "smtpd", LOG_LVL_WARNING, "hostname x does not resolve",
	  "facteur/smtpd[%ld]: warning: hostname x does not resolve" },
	{ "facteur", NULL, "master", LOG_LVL_NOTICE, "reload",
	  "facteur/master[%ld]: notice: reload" },
	{ "facteur", NULL, "virtual", LOG_LVL_ERROR, "disk full",
	  "facteur/virtual[%ld]: error: disk full" },
	{ "facteur", NULL, "smtpd", LOG_LVL_INFO, "100% sure",
	  "facteur/smtpd[%ld]: 100%% sure" },
	{ "facteur", NULL, "smtpd", LOG_LVL_INFO, "",
	  "facteur/smtpd[%ld]: " },
};

static void
test_format_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(fmt_cases) / sizeof(fmt_cases[0]); i++) {
		const struct fmt_case *c = &fmt_cases[i];
		struct tmplog t;
		char want[512], *data, *rest;
		size_t len;

		open_log(&t, c->syslog_name);
		log_write(c->name, c->service, c->lvl, "%s", c->text);
		data = testdir_slurp(t.path, &len);
		snprintf(want, sizeof(want), c->want, (long)getpid());
		if (count_lines(data) != 1 || data[len - 1] != '\n')
			fail_msg("case %zu: not one line: \"%s\"", i, data);
		data[len - 1] = '\0';
		if (!line_matches(HEAD_RE HOST " ", data, len - 1))
			fail_msg("case %zu: bad head: \"%s\"", i, data);
		rest = strstr(data, " " HOST " ");
		assert_non_null(rest);
		rest += strlen(" " HOST " ");
		if (strcmp(rest, want) != 0)
			fail_msg("case %zu: \"%s\", want \"%s\"", i, rest, want);
		free(data);
		close_log(&t);
	}
}

/* The helper macros map to the levels. */
static void
test_macros(void **state)
{
	struct tmplog t;
	char *data;

	(void)state;
	open_log(&t, "facteur");
	log_info("smtpd", "i%d", 1);
	log_notice("smtpd", "n%d", 2);
	log_warning("smtpd", "w%d", 3);
	log_error("smtpd", "e%d", 4);
	data = testdir_slurp(t.path, NULL);
	assert_int_equal(count_lines(data), 4);
	assert_non_null(strstr(data, "]: i1\n"));
	assert_non_null(strstr(data, "]: notice: n2\n"));
	assert_non_null(strstr(data, "]: warning: w3\n"));
	assert_non_null(strstr(data, "]: error: e4\n"));
	/* the lines come in call order */
	assert_true(strstr(data, "i1") < strstr(data, "n2"));
	assert_true(strstr(data, "n2") < strstr(data, "w3"));
	assert_true(strstr(data, "w3") < strstr(data, "e4"));
	free(data);
	close_log(&t);
}

struct nl_case {
	const char *value;
	const char *want;	/* text after "]: " */
};

static const struct nl_case nl_cases[] = {
	{ "a\nb", "a b" },
	{ "a\r\nb", "a  b" },
	{ "\r\n\r\n", "    " },
	{ "trailing\n", "trailing " },
	{ "helo=<evil\nFeb  1 00:00:00 host facteur/smtpd[1]: fake>",
	  "helo=<evil Feb  1 00:00:00 host facteur/smtpd[1]: fake>" },
};

static void
test_newlines(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(nl_cases) / sizeof(nl_cases[0]); i++) {
		struct tmplog t;
		char *data, *rest;
		size_t len;

		open_log(&t, "facteur");
		log_write(NULL, "smtpd", LOG_LVL_WARNING, "value %s", nl_cases[i].value);
		data = testdir_slurp(t.path, &len);
		if (count_lines(data) != 1)
			fail_msg("case %zu: %zu lines: \"%s\"", i,
				 count_lines(data), data);
		assert_null(strchr(data, '\r'));
		assert_int_equal(data[len - 1], '\n');
		data[len - 1] = '\0';
		rest = strstr(data, "]: warning: value ");
		assert_non_null(rest);
		rest += strlen("]: warning: value ");
		if (strcmp(rest, nl_cases[i].want) != 0)
			fail_msg("case %zu: \"%s\", want \"%s\"", i, rest,
				 nl_cases[i].want);
		free(data);
		close_log(&t);
	}
}

static void
test_long_message(void **state)
{
	struct tmplog t;
	char *big, *data, *rest, pattern[256];
	size_t len, n = 100000;

	(void)state;
	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'x', n);
	big[n] = '\0';
	big[n / 2] = '\n';	/* far past the cut: must not matter */

	open_log(&t, "facteur");
	log_write(NULL, "smtpd", LOG_LVL_INFO, "start %s", big);
	log_write(NULL, "smtpd", LOG_LVL_INFO, "after");
	data = testdir_slurp(t.path, &len);
	assert_int_equal(count_lines(data), 2);
	rest = strchr(data, '\n');
	assert_non_null(rest);
	/* truncated, but a real line with the head and a useful body */
	assert_true(rest - data < 8192);
	assert_true(rest - data > 1000);
	snprintf(pattern, sizeof(pattern),
		 HEAD_RE HOST " facteur/smtpd\\[%ld\\]: start x+$",
		 (long)getpid());
	if (!line_matches(pattern, data, (size_t)(rest - data)))
		fail_msg("long line does not match %s", pattern);
	/* the next event is intact on its own line */
	snprintf(pattern, sizeof(pattern),
		 HEAD_RE HOST " facteur/smtpd\\[%ld\\]: after$", (long)getpid());
	assert_true(line_matches(pattern, rest + 1, len - (size_t)(rest + 1 - data) - 1));
	free(data);
	close_log(&t);

	/* absurd host and service names: still one line each */
	big[n / 2] = 'x';
	big[5000] = '\0';
	open_log(&t, "facteur");
	log_set_hostname(big);
	log_write(NULL, big, LOG_LVL_INFO, "text");
	log_write(big, "smtpd", LOG_LVL_WARNING, "%s", big);
	log_set_hostname(HOST);
	log_write(NULL, "smtpd", LOG_LVL_INFO, "normal");
	data = testdir_slurp(t.path, &len);
	assert_int_equal(count_lines(data), 3);
	assert_int_equal(data[len - 1], '\n');
	rest = strrchr(data, '\n');
	*rest = '\0';
	rest = strrchr(data, '\n');
	assert_non_null(rest);
	snprintf(pattern, sizeof(pattern),
		 HEAD_RE HOST " facteur/smtpd\\[%ld\\]: normal$", (long)getpid());
	assert_true(line_matches(pattern, rest + 1, strlen(rest + 1)));
	free(data);
	close_log(&t);
	free(big);
}

#define NTHREADS 8
#define NLINES   1000

static void *
log_thread(void *arg)
{
	int id = (int)(intptr_t)arg;

	for (int i = 0; i < NLINES; i++)
		log_write(NULL, "smtpd", i % 3 ? LOG_LVL_INFO : LOG_LVL_WARNING,
			  "thread=%d line=%d pad=%0*d end", id, i, 100 + i % 200, 0);
	return NULL;
}

static void
test_threads(void **state)
{
	struct tmplog t;
	pthread_t th[NTHREADS];
	static unsigned char seen[NTHREADS][NLINES];
	char *data, *line, *nl, pattern[256];
	regex_t re;
	regmatch_t m[3];
	size_t len, nlines = 0;

	(void)state;
	memset(seen, 0, sizeof(seen));
	open_log(&t, "facteur");
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, log_thread,
						(void *)(intptr_t)i), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	data = testdir_slurp(t.path, &len);
	assert_int_equal(count_lines(data), NTHREADS * NLINES);
	assert_int_equal(data[len - 1], '\n');
	snprintf(pattern, sizeof(pattern),
		 HEAD_RE HOST " facteur/smtpd\\[%ld\\]: (warning: )?"
		 "thread=([0-9]) line=[0-9]+ pad=0+ end$", (long)getpid());
	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED), 0);
	for (line = data; *line; line = nl + 1) {
		int id, no;
		char *p;

		nl = strchr(line, '\n');
		*nl = '\0';
		if (regexec(&re, line, 3, m, 0) != 0)
			fail_msg("line %zu broken: \"%s\"", nlines, line);
		p = strstr(line, "thread=");
		assert_int_equal(sscanf(p, "thread=%d line=%d", &id, &no), 2);
		assert_true(id >= 0 && id < NTHREADS);
		assert_true(no >= 0 && no < NLINES);
		assert_int_equal(seen[id][no], 0);
		seen[id][no] = 1;
		/* the padding is exactly as long as that line asked */
		assert_int_equal(strlen(strstr(p, "pad=") + 4),
				 (size_t)(100 + no % 200) + strlen(" end"));
		assert_int_equal(m[1].rm_so >= 0, no % 3 == 0);
		nlines++;
	}
	regfree(&re);
	assert_int_equal(nlines, NTHREADS * NLINES);
	free(data);
	close_log(&t);
}

/* Runs fn with fd 2 sent to a temp file; returns what was written. */
static char *
capture_stderr(void (*fn)(void))
{
	struct tmplog t;
	int saved, fd;
	char *data;

	tmplog_make(&t);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	fd = open(t.path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	close(fd);
	fn();
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	data = testdir_slurp(t.path, NULL);
	unlink(t.path);
	return data;
}

static void
cli_lines(void)
{
	log_set_cli(1);
	log_warning("smtpd", "x");
	log_info("qmgr", "plain %d", 7);
	log_error(NULL, "bad %s", "config");
	log_write("postfix/submission", "smtpd", LOG_LVL_NOTICE, "n");
	log_set_cli(0);
}

static void
test_cli(void **state)
{
	char *out;

	(void)state;
	log_close();
	out = capture_stderr(cli_lines);
	assert_string_equal(out,
			    "facteur: warning: x\n"
			    "facteur: plain 7\n"
			    "facteur: error: bad config\n"
			    "facteur: notice: n\n");
	free(out);
}

static struct tmplog stderr_file;

static void
stderr_copy_lines(void)
{
	tmplog_make(&stderr_file);
	log_set_cli(0);
	log_set_hostname(HOST);
	assert_int_equal(log_open("facteur", stderr_file.path, 1), 0);
	log_warning("smtpd", "copied\nline");
	log_close();
	/* closed: lines go to stderr only */
	log_info("qmgr", "after close");
}

/* facteurd -f: every line also on stderr, without stamp and host. */
static void
test_stderr_copy(void **state)
{
	char *out, *file, pattern[256];

	(void)state;
	out = capture_stderr(stderr_copy_lines);
	file = testdir_slurp(stderr_file.path, NULL);
	unlink(stderr_file.path);
	snprintf(pattern, sizeof(pattern),
		 "facteur/smtpd[%ld]: warning: copied line\n"
		 "facteur/qmgr[%ld]: after close\n",
		 (long)getpid(), (long)getpid());
	assert_string_equal(out, pattern);
	assert_int_equal(count_lines(file), 1);
	assert_non_null(strstr(file, " " HOST " facteur/smtpd["));
	assert_non_null(strstr(file, "]: warning: copied line\n"));
	assert_null(strstr(file, "after close"));
	free(out);
	free(file);
}

static void
test_open_errors(void **state)
{
	struct tmplog t;
	char *data;

	(void)state;
	open_log(&t, "facteur");
	errno = 0;
	assert_int_equal(log_open("facteur", "/nonexistent-facteur-dir/x/maillog", 0), -1);
	assert_int_equal(errno, ENOENT);
	/* logging goes on without crashing after the failed reopen */
	log_info("smtpd", "still here");
	data = testdir_slurp(t.path, NULL);
	assert_true(count_lines(data) <= 1);
	free(data);
	close_log(&t);
}

/* Logging must not clobber errno: callers log, then report errno. */
static void
test_errno_kept(void **state)
{
	struct tmplog t;

	(void)state;
	open_log(&t, "facteur");
	errno = EAGAIN;
	log_info("smtpd", "x");
	assert_int_equal(errno, EAGAIN);
	errno = ENOSPC;
	log_warning("smtpd", "%s", "y");
	assert_int_equal(errno, ENOSPC);
	close_log(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_facility),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_table),
		cmocka_unit_test(test_macros),
		cmocka_unit_test(test_newlines),
		cmocka_unit_test(test_long_message),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_cli),
		cmocka_unit_test(test_stderr_copy),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_errno_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
