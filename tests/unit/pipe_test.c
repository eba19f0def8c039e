/*
 * pipe_test.c - delivery/pipe: pipe_cfg_parse (user= must be the mail
 * owner, flags letters, size=, eol=, per-recipient runs), pipe_expand
 * (Postfix's macros with flags h, u, q, recipient_delimiter), and
 * pipe_deliver with /bin/sh commands: stdin as sent, exit statuses through
 * the sys_exits table, a signal, the time limit, size= and the output kept.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "delivery/pipe.h"

static int
cfg(struct pipe_cfg *c, const char *flags, long long tl, const char *a0, ...)
{
	struct strlist argv, attrs;
	struct errbuf err;
	va_list ap;
	int rc;

	strlist_init(&argv);
	strlist_init(&attrs);
	va_start(ap, a0);
	for (const char *a = a0; a; a = va_arg(ap, const char *))
		strlist_add(&argv, a);
	va_end(ap);
	if (flags)
		strlist_add(&attrs, flags);
	errbuf_clear(&err);
	rc = pipe_cfg_parse(c, "t", "vmail", &argv, &attrs, "vmail", tl, &err);
	strlist_free(&argv);
	strlist_free(&attrs);
	return rc;
}

static void
test_cfg(void **state)
{
	struct pipe_cfg c;
	struct strlist argv, attrs;
	struct errbuf err;

	strlist_init(&argv);
	strlist_init(&attrs);
	strlist_add(&argv, "/bin/cat");
	errbuf_clear(&err);
	assert_int_equal(pipe_cfg_parse(&c, "x", "root", &argv, &attrs, "vmail",
					10, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "mail owner only"));
	assert_int_equal(pipe_cfg_parse(&c, "x", "vmail:vmail", &argv, &attrs,
					"vmail", 10, &err), 0);
	assert_false(c.per_rcpt);
	pipe_cfg_free(&c);
	strlist_add(&attrs, "flags=Z");
	assert_int_equal(pipe_cfg_parse(&c, "x", "vmail", &argv, &attrs, "vmail",
					10, &err), -1);
	strlist_free(&argv);
	strlist_free(&attrs);
	assert_int_equal(cfg(&c, "flags=D", 10, "/bin/cat", NULL), 0);
	assert_true(c.per_rcpt);	/* Delivered-To names one recipient */
	pipe_cfg_free(&c);
	assert_int_equal(cfg(&c, "eol=\\r\\n", 10, "/bin/cat", "${recipient}",
			     NULL), 0);
	assert_true(c.per_rcpt);
	assert_string_equal(c.eol, "\r\n");
	pipe_cfg_free(&c);
	assert_int_equal(cfg(&c, NULL, 10, "no-such-command-here", NULL), -1);
	/* a bare name (Postfix's stock "argv=uux") is found in a fixed PATH */
	assert_int_equal(cfg(&c, NULL, 10, "sh", NULL), 0);
	assert_true(strcmp(c.argv[0], "/usr/bin/sh") == 0
		    || strcmp(c.argv[0], "/bin/sh") == 0);
	pipe_cfg_free(&c);
}

static void
test_expand(void **state)
{
	struct pipe_cfg c;
	struct pipe_rcpt r = { "John.Doe+Lists@Example.COM", "jd@Example.COM" };
	struct pipe_req req = {
		.cfg = &c, .sender = "odd user@s.example", .nexthop = "NEXT.example",
		.queue_id = "ABC", .client_addr = "192.0.2.1", .delimiter = "+",
		.rcpt = &r, .nrcpt = 1, .content = "x\n", .len = 2,
	};
	char *e;

	assert_int_equal(cfg(&c, "flags=hq", 10, "/bin/cat", NULL), 0);
	e = pipe_expand("${recipient}|${user}|${extension}|${domain}|${nexthop}"
			"|${size}|${queue_id}|${original_recipient}|$client_address"
			"|${sender}|${unknown}", &req, 0);
	assert_string_equal(e, "John.Doe+Lists@example.com|john.doe|Lists|"
			    "example.com|next.example|2|ABC|jd@example.com|"
			    "192.0.2.1|\"odd user\"@s.example|");
	free(e);
	pipe_cfg_free(&c);
	assert_int_equal(cfg(&c, "flags=u", 10, "/bin/cat", NULL), 0);
	e = pipe_expand("${recipient} ${mailbox}", &req, 0);
	assert_string_equal(e, "john.doe+lists@Example.COM john.doe+lists");
	free(e);
	pipe_cfg_free(&c);
}

static enum deliver_status
run(const char *script, const char *flags, long long tl, const char *content,
    char dsn[12], struct buf *text)
{
	struct pipe_cfg c;
	struct pipe_rcpt r = { "a@example.test", "orig@example.test" };
	struct pipe_req req = {
		.cfg = &c, .sender = "s@example.net", .rcpt = &r, .nrcpt = 1,
		.content = content, .len = strlen(content),
	};
	enum deliver_status st;

	assert_int_equal(cfg(&c, flags, tl, "/bin/sh", "-c", script, "sh",
			     "${recipient}", NULL), 0);
	st = pipe_deliver(&req, dsn, text);
	pipe_cfg_free(&c);
	return st;
}

static void
test_deliver(void **state)
{
	char dsn[12], path[] = "/tmp/pipe_test.XXXXXX", cmd[200];
	struct buf text, got;
	FILE *f;
	char line[256];
	time_t t0;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	buf_init(&text, 0);
	buf_init(&got, 0);
	snprintf(cmd, sizeof(cmd), "cat > %s; echo \"$1\" >> %s", path, path);
	assert_int_equal(run(cmd, "flags=ROD.>", 10,
			     "Subject: x\n\n.dot\nFrom me\nend\n", dsn, &text),
			 DELIVER_SENT);
	assert_string_equal(dsn, "2.0.0");
	assert_string_equal(buf_cstr(&text), "delivered via t service");
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		buf_puts(&got, line);
	fclose(f);
	assert_string_equal(buf_cstr(&got),
			    "Return-Path: <s@example.net>\n"
			    "X-Original-To: orig@example.test\n"
			    "Delivered-To: a@example.test\n"
			    "Subject: x\n\n..dot\n>From me\nend\n"
			    "a@example.test\n");
	unlink(path);
	close(fd);
	assert_int_equal(run("echo no such user; exit 67", NULL, 10, "x\n", dsn,
			     &text), DELIVER_BOUNCE);
	assert_string_equal(dsn, "5.1.1");
	assert_non_null(strstr(buf_cstr(&text), "Command died with status 67"));
	assert_non_null(strstr(buf_cstr(&text), "Command output: no such user"));
	assert_int_equal(run("exit 75", NULL, 10, "x\n", dsn, &text),
			 DELIVER_DEFER);
	assert_string_equal(dsn, "4.3.0");
	assert_int_equal(run("exit 69", NULL, 10, "x\n", dsn, &text),
			 DELIVER_BOUNCE);
	assert_string_equal(dsn, "5.3.0");
	assert_int_equal(run("exit 78", NULL, 10, "x\n", dsn, &text),
			 DELIVER_BOUNCE);
	assert_string_equal(dsn, "5.3.5");
	assert_int_equal(run("kill -TERM $$", NULL, 10, "x\n", dsn, &text),
			 DELIVER_DEFER);
	assert_non_null(strstr(buf_cstr(&text), "signal 15"));
	t0 = time(NULL);
	assert_int_equal(run("sleep 30", NULL, 1, "x\n", dsn, &text),
			 DELIVER_DEFER);
	assert_true(time(NULL) - t0 < 5);
	assert_non_null(strstr(buf_cstr(&text), "Command time limit exceeded"));
	assert_int_equal(run("cat >/dev/null", "size=3", 10, "longer\n", dsn,
			     &text), DELIVER_BOUNCE);
	assert_string_equal(dsn, "5.2.3");
	/* an address that would be an option is refused */
	{
		struct pipe_cfg c;
		struct pipe_rcpt r = { "-oQ/tmp@example.test", NULL };
		struct pipe_req req = {
			.cfg = &c, .sender = "s@example.net", .rcpt = &r,
			.nrcpt = 1, .content = "x\n", .len = 2,
		};

		assert_int_equal(cfg(&c, NULL, 10, "/bin/true", "${recipient}",
				     NULL), 0);
		assert_int_equal(pipe_deliver(&req, dsn, &text), DELIVER_BOUNCE);
		assert_string_equal(dsn, "5.1.3");
		r.addr = "ok@example.test";
		req.sender = "-f@evil.example";
		assert_int_equal(pipe_deliver(&req, dsn, &text), DELIVER_BOUNCE);
		assert_string_equal(dsn, "5.1.7");
		pipe_cfg_free(&c);
	}
	/* a command that does not read its input still gets its status */
	assert_int_equal(run("exit 0", NULL, 10, "x\n", dsn, &text),
			 DELIVER_SENT);
	buf_free(&text);
	buf_free(&got);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cfg),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_deliver),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
