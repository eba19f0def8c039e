/*
 * cleanup_headers_test.c - header_checks and body_checks: every action with
 * regexp: and pcre: tables, folded headers, body lines, the body size
 * limit, lookup failures (451), bad action text, and the log lines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup_headers.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/params.h"
#include "testdir.h"

static char tmpdir[64];
static char *logpath;

#define MSG "Received: from x\n\tby y; Mon, 1 Jan 2024\n" \
	    "Subject: hello\n\tworld\nFrom: a@b.test\n\nline one\nbuy cheap pills\nbye\n"

struct tcase {
	const char *name;
	const char *type;		/* "regexp" or "pcre" */
	const char *hrules, *brules;	/* NULL: not configured */
	long long   body_limit;
	const char *content;
	const char *reject;		/* expected reply or NULL */
	bool        discard, hold;
	const char *redirect;
	const char *out;		/* expected new content; NULL: unmodified */
	const char *log;		/* expected log substring or NULL */
};

static const struct tcase cases[] = {
	{ "no match", "regexp", "/^X-Nothing:/ REJECT\n", "/nothing/ REJECT\n",
	  51200, MSG, NULL, false, false, NULL, NULL, NULL },
	{ "reject default text", "regexp", "/^Subject: hello/ REJECT\n", NULL,
	  51200, MSG, "550 5.7.1 message content rejected", false, false, NULL,
	  NULL, "Q1: reject: header Subject: hello??world from mx.test[192.0.2.1];"
	  " from=<s@test> to=<r@test> proto=ESMTP helo=<h.test>: 5.7.1 message "
	  "content rejected" },
	{ "reject own text (pcre)", "pcre", "/^subject:.*hello/ REJECT go away\n",
	  NULL, 51200, MSG, "550 5.7.1 go away", false, false, NULL, NULL,
	  ": 5.7.1 go away" },
	{ "reject with own DSN", "regexp", "/^Subject:/ REJECT 5.7.0 no thanks\n",
	  NULL, 51200, MSG, "550 5.7.0 no thanks", false, false, NULL, NULL, NULL },
	{ "reject with 4.x.x DSN defers", "pcre", "/^Subject:/ REJECT 4.7.1 later\n",
	  NULL, 51200, MSG, "451 4.7.1 later", false, false, NULL, NULL, NULL },
	{ "folded header matched as one", "regexp", "/^Subject: hello.*world/ REJECT\n",
	  NULL, 51200, MSG, "550 5.7.1 message content rejected", false, false,
	  NULL, NULL, NULL },
	{ "discard", "regexp", "/^From: a@b/ DISCARD not wanted\n", NULL, 51200, MSG,
	  NULL, true, false, NULL, NULL,
	  "Q1: discard: header From: a@b.test from mx.test[192.0.2.1]; from=<s@test>"
	  " to=<r@test> proto=ESMTP helo=<h.test>: not wanted" },
	{ "warn", "pcre", "/^Subject:/ WARN looks odd\n", NULL, 51200, MSG, NULL,
	  false, false, NULL, NULL, "Q1: warning: header Subject: hello??world from " },
	{ "hold", "regexp", "/^Subject:/ HOLD check it\n", NULL, 51200, MSG, NULL,
	  false, true, NULL, NULL, "Q1: hold: header Subject: hello??world from " },
	{ "redirect", "regexp", "/^Subject:/ REDIRECT spam@trap.test\n", NULL, 51200,
	  MSG, NULL, false, false, "spam@trap.test", NULL, ": spam@trap.test" },
	{ "redirect without @ is ignored", "regexp", "/^Subject:/ REDIRECT nobody\n",
	  NULL, 51200, MSG, NULL, false, false, NULL, NULL, "bad REDIRECT target" },
	{ "ignore removes the folded header", "regexp", "/^Subject:/ IGNORE\n", NULL,
	  51200, MSG, NULL, false, false, NULL,
	  "Received: from x\n\tby y; Mon, 1 Jan 2024\nFrom: a@b.test\n\n"
	  "line one\nbuy cheap pills\nbye\n", NULL },
	{ "replace with $1", "pcre", "/^Subject: (\\w+)/ REPLACE Subject: [x] $1\n",
	  NULL, 51200, MSG, NULL, false, false, NULL,
	  "Received: from x\n\tby y; Mon, 1 Jan 2024\nSubject: [x] hello\n"
	  "From: a@b.test\n\nline one\nbuy cheap pills\nbye\n", ": replace: header Subject" },
	{ "prepend", "regexp", "/^From:/ PREPEND X-Seen: yes\n", NULL, 51200, MSG,
	  NULL, false, false, NULL,
	  "Received: from x\n\tby y; Mon, 1 Jan 2024\nSubject: hello\n\tworld\n"
	  "X-Seen: yes\nFrom: a@b.test\n\nline one\nbuy cheap pills\nbye\n",
	  ": prepend: header From: a@b.test" },
	{ "prepend needs header text", "regexp", "/^From:/ PREPEND not a header\n",
	  NULL, 51200, MSG, NULL, false, false, NULL, NULL, "bad PREPEND header text" },
	{ "dunno and ok do nothing", "regexp", "/^From:/ DUNNO\n/^Subject:/ OK\n",
	  NULL, 51200, MSG, NULL, false, false, NULL, NULL, NULL },
	{ "first match wins", "regexp", "/^Subject:/ DUNNO\n/^Subject:/ REJECT\n",
	  NULL, 51200, MSG, NULL, false, false, NULL, NULL, NULL },
	{ "numeric code is unknown as in Postfix", "regexp", "/^Subject:/ 550 no\n",
	  NULL, 51200, MSG, NULL, false, false, NULL, NULL,
	  "unknown command in header_checks map: 550 no" },
	{ "body reject", "regexp", NULL, "/cheap pills/ REJECT spam body\n", 51200,
	  MSG, "550 5.7.1 spam body", false, false, NULL, NULL,
	  "Q1: reject: body buy cheap pills from mx.test[192.0.2.1]; " },
	{ "body lines are not headers", "pcre", NULL, "/^Subject:/ REJECT\n", 51200,
	  MSG, NULL, false, false, NULL, NULL, NULL },
	{ "body replace and ignore", "pcre", NULL,
	  "/^buy/ REPLACE [removed]\n/^bye$/ IGNORE\n", 51200, MSG, NULL, false,
	  false, NULL, "Received: from x\n\tby y; Mon, 1 Jan 2024\nSubject: hello\n"
	  "\tworld\nFrom: a@b.test\n\nline one\n[removed]\n", NULL },
	{ "body beyond the size limit is not checked", "regexp", NULL,
	  "/cheap pills/ REJECT\n", 9, MSG, NULL, false, false, NULL, NULL, NULL },
	{ "body within the size limit is checked", "regexp", NULL,
	  "/cheap pills/ REJECT\n", 10, MSG, "550 5.7.1 message content rejected",
	  false, false, NULL, NULL, NULL },
	{ "size limit 0 checks everything", "regexp", NULL, "/^bye/ REJECT\n", 0,
	  MSG, "550 5.7.1 message content rejected", false, false, NULL, NULL, NULL },
	{ "header reject stops body checks", "regexp", "/^From:/ WARN\n/^Subject:/ DISCARD\n",
	  "/cheap/ REJECT\n", 51200, MSG, NULL, true, false, NULL, NULL, NULL },
	{ "no header section", "regexp", "/^line/ REJECT\n", "/^line one/ REJECT b\n",
	  51200, "line one\n", "550 5.7.1 b", false, false, NULL, NULL, NULL },
	{ "no final newline", "regexp", NULL, "/^bye/ REPLACE ciao\n", 51200,
	  "Subject: x\n\nbye", NULL, false, false, NULL, "Subject: x\n\nciao\n", NULL },
};

static void
test_cases(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *tc = &cases[i];
		struct settings s;
		struct cleanup_checks c;
		struct cleanup_result r;
		struct cleanup_log_ctx lc = {
			.queue_id = "Q1", .client_name = "mx.test",
			.client_addr = "192.0.2.1", .sender = "s@test",
			.rcpt = "r@test", .proto = "ESMTP", .helo = "h.test",
		};
		struct errbuf err;
		struct buf out;
		char *hp = NULL, *bp = NULL, *logtext;

		print_message("case: %s\n", tc->name);
		assert_int_equal(truncate(logpath, 0), 0);
		memset(&s, 0, sizeof(s));
		if (tc->hrules) {
			char *f = testdir_write(tmpdir, "h", tc->hrules);

			hp = xasprintf("%s:%s", tc->type, f);
			free(f);
		}
		if (tc->brules) {
			char *f = testdir_write(tmpdir, "b", tc->brules);

			bp = xasprintf("%s:%s", tc->type, f);
			free(f);
		}
		s.header_checks = hp;
		s.body_checks = bp;
		s.body_checks_size_limit = tc->body_limit;
		s.header_size_limit = 102400;
		errbuf_clear(&err);
		assert_int_equal(cleanup_checks_open(&c, &s, &err), 0);
		assert_false(cleanup_checks_empty(&c));
		buf_init(&out, 0);
		cleanup_checks_run(&c, tc->content, strlen(tc->content), &lc, &out, &r);
		if (tc->reject)
			assert_string_equal(r.reject ? r.reject : "(null)", tc->reject);
		else
			assert_null(r.reject);
		assert_int_equal(r.discard, tc->discard);
		assert_int_equal(r.hold, tc->hold);
		if (tc->redirect)
			assert_string_equal(r.redirect ? r.redirect : "(null)",
					    tc->redirect);
		else
			assert_null(r.redirect);
		if (tc->out) {
			assert_true(r.modified);
			assert_string_equal(buf_cstr(&out), tc->out);
		} else {
			assert_false(r.modified);
		}
		logtext = testdir_slurp(logpath, NULL);
		if (tc->log && strstr(logtext, tc->log) == NULL)
			fail_msg("log lacks \"%s\":\n%s", tc->log, logtext);
		free(logtext);
		buf_free(&out);
		cleanup_result_free(&r);
		cleanup_checks_free(&c);
		free(hp);
		free(bp);
	}
}

/* A table that cannot be read: 451, never 5xx, never delivered. */
static void
test_lookup_failure(void **state)
{
	struct settings s;
	struct cleanup_checks c;
	struct cleanup_result r;
	struct cleanup_log_ctx lc = { .queue_id = "Q2" };
	struct errbuf err;
	struct buf out;
	char *spec = xasprintf("regexp:%s/missing", tmpdir);
	char *logtext;

	assert_int_equal(truncate(logpath, 0), 0);
	memset(&s, 0, sizeof(s));
	s.header_checks = spec;
	errbuf_clear(&err);
	assert_int_equal(cleanup_checks_open(&c, &s, &err), 0);
	buf_init(&out, 0);
	cleanup_checks_run(&c, MSG, strlen(MSG), &lc, &out, &r);
	assert_non_null(r.reject);
	assert_string_equal(r.reject, "451 4.3.0 Error: queue file write error");
	logtext = testdir_slurp(logpath, NULL);
	assert_non_null(strstr(logtext, "Q2: header_checks map lookup problem -- "
				"message not accepted, try again later"));
	free(logtext);
	buf_free(&out);
	cleanup_result_free(&r);
	cleanup_checks_free(&c);
	free(spec);
}

/* A bad table spec is a configuration error at open time. */
static void
test_bad_spec(void **state)
{
	struct settings s;
	struct cleanup_checks c;
	struct errbuf err;

	memset(&s, 0, sizeof(s));
	s.body_checks = (char *)"nosuchtype:/x";
	errbuf_clear(&err);
	assert_int_equal(cleanup_checks_open(&c, &s, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "body_checks: "));
	memset(&s, 0, sizeof(s));
	assert_int_equal(cleanup_checks_open(&c, &s, &err), 0);
	assert_true(cleanup_checks_empty(&c));
	cleanup_checks_free(&c);
}

/* A header longer than a table key is still checked (on its start). */
static void
test_long_header(void **state)
{
	struct settings s;
	struct cleanup_checks c;
	struct cleanup_result r;
	struct cleanup_log_ctx lc = { .queue_id = "Q3" };
	struct errbuf err;
	struct buf msg, out;
	char *f = testdir_write(tmpdir, "long", "/^Subject: spam/ REJECT\n");

	memset(&s, 0, sizeof(s));
	s.header_checks = xasprintf("regexp:%s", f);
	s.header_size_limit = 102400;
	errbuf_clear(&err);
	assert_int_equal(cleanup_checks_open(&c, &s, &err), 0);
	buf_init(&msg, 0);
	buf_puts(&msg, "Subject: spam");
	for (int i = 0; i < 5000; i++)
		buf_putc(&msg, 'x');
	buf_puts(&msg, "\n\nbody\n");
	buf_init(&out, 0);
	cleanup_checks_run(&c, msg.data, msg.len, &lc, &out, &r);
	assert_non_null(r.reject);
	cleanup_result_free(&r);
	cleanup_checks_free(&c);
	buf_free(&msg);
	buf_free(&out);
	free(s.header_checks);
	free(f);
}

/* FILTER, the MIME classes (header / mime / nested tables shared when
 * their values are equal), and the SMTP client's restricted mode. */
static void
test_filter_mime_smtp(void **state)
{
	static const char mime[] =
	    "Subject: top\nContent-Type: multipart/mixed; boundary=b\n\n"
	    "--b\nContent-Type: message/rfc822\n\nSubject: inner\n\nx\n--b--\n";
	struct settings s;
	struct cleanup_checks c;
	struct cleanup_result r;
	struct cleanup_log_ctx lc = { .queue_id = "Q4" };
	struct errbuf err;
	struct buf out;
	char *hf = testdir_write(tmpdir, "hf", "/^Subject: top/ FILTER "
				 "smtp:[127.0.0.1]:10025\n/^Subject: x/ FILTER "
				 "bad\n/^Subject: inner/ REJECT inner\n");
	char *nf = testdir_write(tmpdir, "nf", "/^Subject: inner/ REJECT nested\n"
				 "/^Content-Type: message/ WARN mime\n");
	char *logtext;

	memset(&s, 0, sizeof(s));
	s.header_checks = xasprintf("regexp:%s", hf);
	s.mime_header_checks = s.header_checks;	/* the default */
	s.nested_header_checks = xasprintf("regexp:%s", nf);
	errbuf_clear(&err);
	assert_int_equal(cleanup_checks_open(&c, &s, &err), 0);
	assert_ptr_equal(c.mime, c.header);
	assert_ptr_not_equal(c.nested, c.header);
	buf_init(&out, 0);
	assert_int_equal(truncate(logpath, 0), 0);
	cleanup_checks_run(&c, mime, strlen(mime), &lc, &out, &r);
	assert_string_equal(r.filter, "smtp:[127.0.0.1]:10025");
	assert_string_equal(r.reject, "550 5.7.1 nested");	/* nested table */
	cleanup_result_free(&r);
	logtext = testdir_slurp(logpath, NULL);
	assert_non_null(strstr(logtext, "Q4: filter: header Subject: top from "
				"local;: smtp:[127.0.0.1]:10025"));
	free(logtext);
	cleanup_checks_free(&c);
	free(s.nested_header_checks);

	/* the SMTP client's mode: only the harmless actions */
	{
		char *spec = s.header_checks;

		memset(&s, 0, sizeof(s));
		s.smtp_header_checks = spec;
	}
	assert_int_equal(cleanup_checks_open_smtp(&c, &s, &err), 0);
	assert_int_equal(truncate(logpath, 0), 0);
	cleanup_checks_run(&c, mime, strlen(mime), &lc, &out, &r);
	assert_null(r.reject);
	assert_null(r.filter);
	assert_false(r.modified);
	cleanup_result_free(&r);
	logtext = testdir_slurp(logpath, NULL);
	assert_non_null(strstr(logtext, "warning: unsupported command in "
				"smtp_header_checks map: FILTER"));
	/* the inner Subject is a nested header: not smtp_header_checks' */
	assert_null(strstr(logtext, "REJECT"));
	free(logtext);
	cleanup_checks_free(&c);
	buf_free(&out);
	free(s.smtp_header_checks);
	free(hf);
	free(nf);
}

static int
setup(void **state)
{
	if (testdir_make(tmpdir, sizeof(tmpdir), "facteur-cleanup-test") < 0)
		return -1;
	logpath = xasprintf("%s/maillog", tmpdir);
	return log_open("facteur", logpath, 0);
}

static int
teardown(void **state)
{
	int rc = testdir_remove(tmpdir);

	free(logpath);
	log_close();
	return rc == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_lookup_failure),
		cmocka_unit_test(test_bad_spec),
		cmocka_unit_test(test_long_header),
		cmocka_unit_test(test_filter_mime_smtp),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
