/*
 * smtpd_cmd_test.c - SMTP command line splitting and MAIL/RCPT/BDAT/HELO
 * argument parsing: every ESMTP parameter, valid and invalid, whole lines
 * and every byte prefix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/smtpd_cmd.h"

/* Tables leave trailing fields of error cases zero. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct verb_case {
	const char     *line;
	enum smtpd_verb verb;
	const char     *name;
	const char     *arg;
};

static const struct verb_case verb_cases[] = {
	{ "EHLO mx.example", SMTPD_EHLO, "ehlo", "mx.example" },
	{ "ehlo mx.example  ", SMTPD_EHLO, "ehlo", "mx.example" },
	{ "HeLo x", SMTPD_HELO, "helo", "x" },
	{ "MAIL FROM:<a@b> SIZE=1", SMTPD_MAIL, "mail", "FROM:<a@b> SIZE=1" },
	{ "rcpt TO:<a@b>", SMTPD_RCPT, "rcpt", "TO:<a@b>" },
	{ "DATA", SMTPD_DATA, "data", "" },
	{ "data ", SMTPD_DATA, "data", "" },
	{ "BDAT 10 LAST", SMTPD_BDAT, "bdat", "10 LAST" },
	{ "RSET", SMTPD_RSET, "rset", "" },
	{ "NOOP hello", SMTPD_NOOP, "noop", "hello" },
	{ "QUIT", SMTPD_QUIT, "quit", "" },
	{ "VRFY bob", SMTPD_VRFY, "vrfy", "bob" },
	{ "EXPN list", SMTPD_EXPN, "expn", "list" },
	{ "HELP", SMTPD_HELP, "help", "" },
	{ "STARTTLS", SMTPD_STARTTLS, "starttls", "" },
	{ "AUTH PLAIN AGJvYgBw", SMTPD_AUTH, "auth", "PLAIN AGJvYgBw" },
	{ "ETRN example.com", SMTPD_ETRN, "etrn", "example.com" },
	{ "XCLIENT ADDR=1.2.3.4", SMTPD_XCLIENT, "xclient", "ADDR=1.2.3.4" },
	{ "XFORWARD NAME=x", SMTPD_XFORWARD, "xforward", "NAME=x" },
	{ "MAILFROM:<a@b>", SMTPD_UNKNOWN, "unknown", "" },
	{ "GET / HTTP/1.0", SMTPD_UNKNOWN, "unknown", "/ HTTP/1.0" },
	{ "", SMTPD_UNKNOWN, "unknown", "" },
	{ " DATA", SMTPD_UNKNOWN, "unknown", "DATA" },
	{ "DAT", SMTPD_UNKNOWN, "unknown", "" },
	{ "DATAX", SMTPD_UNKNOWN, "unknown", "" },
	{ "MAIL\tFROM:<a@b>", SMTPD_MAIL, "mail", "FROM:<a@b>" },
};

static void
test_parse(void **state)
{
	struct smtpd_cmd cmd;
	size_t alen;

	(void)state;
	for (size_t i = 0; i < sizeof(verb_cases) / sizeof(verb_cases[0]); i++) {
		const struct verb_case *c = &verb_cases[i];
		smtpd_cmd_parse(c->line, strlen(c->line), &cmd, &alen);
		assert_int_equal(cmd.verb, c->verb);
		assert_string_equal(cmd.name, c->name);
		assert_int_equal(alen, strlen(c->arg));
		assert_memory_equal(cmd.arg, c->arg, alen);
	}
}

/* The parser never reads past len: a verb cut short is not that verb. */
static void
test_parse_bounded(void **state)
{
	struct smtpd_cmd cmd;
	size_t alen;
	char *p = malloc(4);

	(void)state;
	memcpy(p, "QUIT", 4);
	smtpd_cmd_parse(p, 3, &cmd, &alen);
	assert_int_equal(cmd.verb, SMTPD_UNKNOWN);
	smtpd_cmd_parse(p, 4, &cmd, &alen);
	assert_int_equal(cmd.verb, SMTPD_QUIT);
	assert_int_equal(alen, 0);
	free(p);
}

struct mail_case {
	const char *arg;
	bool        strict;
	const char *reply;	/* NULL = success */
	const char *key;
	long long   size;
	enum smtpd_body body;
	bool        smtputf8;
	const char *ret, *envid, *auth;
};

static const struct mail_case mail_cases[] = {
	{ "FROM:<a@b.example>", false, NULL, "a@b.example", -1, 0, false, NULL, NULL, NULL },
	{ "from:<a@b>", true, NULL, "a@b", -1, 0, false, NULL, NULL, NULL },
	{ "FROM:<>", true, NULL, "", -1, 0, false, NULL, NULL, NULL },
	{ "FROM: <a@b>", false, NULL, "a@b", -1, 0, false, NULL, NULL, NULL },
	{ "FROM:a@b", false, NULL, "a@b", -1, 0, false, NULL, NULL, NULL },
	{ "FROM: a@b SIZE=7", false, NULL, "a@b", 7, 0, false, NULL, NULL, NULL },
	{ "FROM: <a@b>", true, "501 5.5.4 Syntax: MAIL FROM:<address>" },
	{ "FROM:a@b", true, "501 5.1.7 Bad sender address syntax" },
	{ "FROM:<a@b> SIZE=12345", false, NULL, "a@b", 12345, 0, false, NULL, NULL, NULL },
	{ "FROM:<a@b> size=0", false, NULL, "a@b", 0, 0, false, NULL, NULL, NULL },
	{ "FROM:<a@b> SIZE=999999999999999999", false, NULL, "a@b",
	  999999999999999999LL, 0, false, NULL, NULL, NULL },
	{ "FROM:<a@b> SIZE=9999999999999999999", false, "501 5.5.4 Bad message size syntax" },
	{ "FROM:<a@b> SIZE=", false, "501 5.5.4 Bad MAIL parameter syntax" },
	{ "FROM:<a@b> SIZE", false, "501 5.5.4 Bad message size syntax" },
	{ "FROM:<a@b> SIZE=-1", false, "501 5.5.4 Bad message size syntax" },
	{ "FROM:<a@b> SIZE=1x", false, "501 5.5.4 Bad message size syntax" },
	{ "FROM:<a@b> SIZE=1 SIZE=2", false, "501 5.5.4 Duplicate SIZE parameter" },
	{ "FROM:<a@b> BODY=7BIT", false, NULL, "a@b", -1, SMTPD_BODY_7BIT, false, NULL, NULL, NULL },
	{ "FROM:<a@b> body=8bitmime", false, NULL, "a@b", -1, SMTPD_BODY_8BITMIME, false, NULL, NULL, NULL },
	{ "FROM:<a@b> BODY=BINARYMIME", false, NULL, "a@b", -1, SMTPD_BODY_BINARYMIME, false, NULL, NULL, NULL },
	{ "FROM:<a@b> BODY=9BIT", false, "501 5.5.4 Unsupported BODY parameter" },
	{ "FROM:<a@b> BODY", false, "501 5.5.4 Unsupported BODY parameter" },
	{ "FROM:<a@b> BODY=7BIT BODY=7BIT", false, "501 5.5.4 Duplicate BODY parameter" },
	{ "FROM:<a@b> SMTPUTF8", false, NULL, "a@b", -1, 0, true, NULL, NULL, NULL },
	{ "FROM:<a@b> SMTPUTF8=yes", false, "501 5.5.4 Bad SMTPUTF8 parameter syntax" },
	{ "FROM:<a@b> SMTPUTF8 SMTPUTF8", false, "501 5.5.4 Duplicate SMTPUTF8 parameter" },
	{ "FROM:<j\xc3\xb6@b> SMTPUTF8", false, NULL, "j\xc3\xb6@b", -1, 0, true, NULL, NULL, NULL },
	{ "FROM:<j\xc3\xb6@b>", false, "553 5.6.7 Must declare SMTPUTF8 to send unicode address" },
	{ "FROM:<j\xc3@b> SMTPUTF8", false, "501 5.1.7 Bad sender address syntax" },
	{ "FROM:<a@b> RET=FULL", false, NULL, "a@b", -1, 0, false, "FULL", NULL, NULL },
	{ "FROM:<a@b> ret=hdrs", false, NULL, "a@b", -1, 0, false, "HDRS", NULL, NULL },
	{ "FROM:<a@b> RET=BODY", false, "501 5.5.4 Bad RET parameter syntax" },
	{ "FROM:<a@b> RET=FULL RET=HDRS", false, "501 5.5.4 Duplicate RET parameter" },
	{ "FROM:<a@b> ENVID=QQ+2B1+3Dx", false, NULL, "a@b", -1, 0, false, NULL, "QQ+1=x", NULL },
	{ "FROM:<a@b> ENVID=a+2", false, "501 5.5.4 Bad ENVID parameter syntax" },
	{ "FROM:<a@b> ENVID=a+ZZ", false, "501 5.5.4 Bad ENVID parameter syntax" },
	{ "FROM:<a@b> ENVID=a+0D", false, "501 5.5.4 Bad ENVID parameter syntax" },
	{ "FROM:<a@b> ENVID=a=b", false, "501 5.5.4 Bad ENVID parameter syntax" },
	{ "FROM:<a@b> ENVID=x ENVID=y", false, "501 5.5.4 Duplicate ENVID parameter" },
	{ "FROM:<a@b> ENVID=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	  false, "501 5.5.4 Bad ENVID parameter syntax" },
	{ "FROM:<a@b> AUTH=<>", false, NULL, "a@b", -1, 0, false, NULL, NULL, "<>" },
	{ "FROM:<a@b> AUTH=bob+40x.example", false, NULL, "a@b", -1, 0, false, NULL, NULL, "bob@x.example" },
	{ "FROM:<a@b> AUTH", false, "501 5.5.4 Bad AUTH parameter syntax" },
	{ "FROM:<a@b> AUTH=x AUTH=y", false, "501 5.5.4 Duplicate AUTH parameter" },
	{ "FROM:<a@b> FOO=bar", false, "555 5.5.4 Unsupported option: FOO" },
	{ "FROM:<a@b> NOTIFY=NEVER", false, "555 5.5.4 Unsupported option: NOTIFY" },
	{ "FROM:<a@b> =x", false, "501 5.5.4 Bad MAIL parameter syntax" },
	{ "FROM:<a@b> -X", false, "501 5.5.4 Bad MAIL parameter syntax" },
	{ "FROM:<a@b> SIZE=1  BODY=8BITMIME   SMTPUTF8 RET=FULL ENVID=e AUTH=<>",
	  false, NULL, "a@b", 1, SMTPD_BODY_8BITMIME, true, "FULL", "e", "<>" },
	{ "FROM:", false, "501 5.5.4 Syntax: MAIL FROM:<address>" },
	{ "FROM: ", false, "501 5.5.4 Syntax: MAIL FROM:<address>" },
	{ "", false, "501 5.5.4 Syntax: MAIL FROM:<address>" },
	{ "TO:<a@b>", false, "501 5.5.4 Syntax: MAIL FROM:<address>" },
	{ "FROM<a@b>", false, "501 5.5.4 Syntax: MAIL FROM:<address>" },
	{ "FROM:<a@b", false, "501 5.1.7 Bad sender address syntax" },
	{ "FROM:<a@b>x", false, "501 5.1.7 Bad sender address syntax" },
	{ "FROM:<\"user@elsewhere\"@hosted>", false, NULL, "user@elsewhere@hosted", -1, 0, false, NULL, NULL, NULL },
	{ "FROM:<@a,@b:u@c>", false, NULL, "u@c", -1, 0, false, NULL, NULL, NULL },
};

static void
test_mail(void **state)
{
	struct smtpd_mail_args m;
	const char *reply;

	(void)state;
	for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
		const struct mail_case *c = &mail_cases[i];
		reply = NULL;
		int rc = smtpd_cmd_mail(c->arg, strlen(c->arg), c->strict, &m, &reply);
		if (c->reply) {
			if (rc == 0)
				fail_msg("MAIL %s: expected \"%s\", got success", c->arg, c->reply);
			assert_string_equal(reply, c->reply);
			assert_null(m.addr.local);
			assert_null(m.envid);
			continue;
		}
		if (rc != 0)
			fail_msg("MAIL %s: expected success, got \"%s\"", c->arg, reply);
		char *k = addr_key(&m.addr);
		assert_string_equal(k, c->key);
		free(k);
		assert_int_equal(m.size, c->size);
		assert_int_equal(m.body, c->body);
		assert_int_equal(m.smtputf8, c->smtputf8);
		if (c->ret) assert_string_equal(m.ret, c->ret); else assert_null(m.ret);
		if (c->envid) assert_string_equal(m.envid, c->envid); else assert_null(m.envid);
		if (c->auth) assert_string_equal(m.auth, c->auth); else assert_null(m.auth);
		smtpd_mail_args_free(&m);
	}
}

struct rcpt_case {
	const char *arg;
	bool        strict, utf8_ok;
	const char *reply;
	const char *key;
	unsigned    notify;
	const char *orcpt;
};

static const struct rcpt_case rcpt_cases[] = {
	{ "TO:<bob@x.example>", false, false, NULL, "bob@x.example", 0, NULL },
	{ "to:<bob@x>", true, false, NULL, "bob@x", 0, NULL },
	{ "TO: bob@x", false, false, NULL, "bob@x", 0, NULL },
	{ "TO:<Postmaster>", false, false, NULL, "Postmaster", 0, NULL },
	{ "TO:<>", false, false, "501 5.1.3 Bad recipient address syntax" },
	{ "TO:<bob>", false, false, "501 5.1.3 Bad recipient address syntax" },
	{ "TO:<bob@x", false, false, "501 5.1.3 Bad recipient address syntax" },
	{ "TO:", false, false, "501 5.5.4 Syntax: RCPT TO:<address>" },
	{ "FROM:<a@b>", false, false, "501 5.5.4 Syntax: RCPT TO:<address>" },
	{ "TO: <bob@x>", true, false, "501 5.5.4 Syntax: RCPT TO:<address>" },
	{ "TO:<\"user@elsewhere\"@hosted>", false, false, NULL, "user@elsewhere@hosted", 0, NULL },
	{ "TO:<user%elsewhere@hosted>", false, false, NULL, "user%elsewhere@hosted", 0, NULL },
	{ "TO:<@a:user@elsewhere>", false, false, NULL, "user@elsewhere", 0, NULL },
	{ "TO:<j\xc3\xb6@x>", false, false, "553 5.6.7 Must declare SMTPUTF8 to send unicode address" },
	{ "TO:<j\xc3\xb6@x>", false, true, NULL, "j\xc3\xb6@x", 0, NULL },
	{ "TO:<b@x> NOTIFY=NEVER", false, false, NULL, "b@x", SMTPD_NOTIFY_NEVER, NULL },
	{ "TO:<b@x> NOTIFY=success,FAILURE", false, false, NULL, "b@x",
	  SMTPD_NOTIFY_SUCCESS | SMTPD_NOTIFY_FAILURE, NULL },
	{ "TO:<b@x> NOTIFY=DELAY", false, false, NULL, "b@x", SMTPD_NOTIFY_DELAY, NULL },
	{ "TO:<b@x> NOTIFY=NEVER,DELAY", false, false, "501 5.5.4 Bad NOTIFY parameter syntax" },
	{ "TO:<b@x> NOTIFY=SUCCESS,", false, false, "501 5.5.4 Bad NOTIFY parameter syntax" },
	{ "TO:<b@x> NOTIFY=,DELAY", false, false, "501 5.5.4 Bad NOTIFY parameter syntax" },
	{ "TO:<b@x> NOTIFY=SOMETIMES", false, false, "501 5.5.4 Bad NOTIFY parameter syntax" },
	{ "TO:<b@x> NOTIFY", false, false, "501 5.5.4 Bad NOTIFY parameter syntax" },
	{ "TO:<b@x> NOTIFY=NEVER NOTIFY=NEVER", false, false, "501 5.5.4 Duplicate NOTIFY parameter" },
	{ "TO:<b@x> ORCPT=rfc822;bob+40x.example", false, false, NULL, "b@x", 0,
	  "rfc822;bob@x.example" },
	{ "TO:<b@x> ORCPT=RFC822;a+2Bb@x", false, false, NULL, "b@x", 0, "rfc822;a+b@x" },
	{ "TO:<b@x> ORCPT=utf-8;j\\x{F6}@x", false, false, NULL, "b@x", 0,
	  "utf-8;j\xc3\xb6@x" },
	{ "TO:<b@x> ORCPT=UTF-8;j\xc3\xb6@x", false, false, NULL, "b@x", 0,
	  "utf-8;j\xc3\xb6@x" },
	{ "TO:<b@x> ORCPT=utf-8;j\\x{D800}@x", false, false, "501 5.5.4 Bad ORCPT parameter syntax" },
	{ "TO:<b@x> ORCPT=utf-8;j\\x{}@x", false, false, "501 5.5.4 Bad ORCPT parameter syntax" },
	{ "TO:<b@x> ORCPT=utf-8;j\\x{F6@x", false, false, "501 5.5.4 Bad ORCPT parameter syntax" },
	{ "TO:<b@x> ORCPT=utf-8;j\xc3@x", false, false, "501 5.5.4 Bad ORCPT parameter syntax" },
	{ "TO:<b@x> ORCPT=x400;foo", false, false, "501 5.5.4 Bad ORCPT parameter syntax" },
	{ "TO:<b@x> ORCPT=rfc822", false, false, "501 5.5.4 Bad ORCPT parameter syntax" },
	{ "TO:<b@x> ORCPT=rfc822;", false, false, "501 5.5.4 Bad ORCPT parameter syntax" },
	{ "TO:<b@x> ORCPT=rfc822;a+0Ab", false, false, "501 5.5.4 Bad ORCPT parameter syntax" },
	{ "TO:<b@x> ORCPT=rfc822;a ORCPT=rfc822;b", false, false, "501 5.5.4 Duplicate ORCPT parameter" },
	{ "TO:<b@x> SIZE=10", false, false, "555 5.5.4 Unsupported option: SIZE" },
	{ "TO:<b@x> NOTIFY=NEVER ORCPT=rfc822;b@x", false, false, NULL, "b@x",
	  SMTPD_NOTIFY_NEVER, "rfc822;b@x" },
};

static void
test_rcpt(void **state)
{
	struct smtpd_rcpt_args r;
	const char *reply;

	(void)state;
	for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		const struct rcpt_case *c = &rcpt_cases[i];
		reply = NULL;
		int rc = smtpd_cmd_rcpt(c->arg, strlen(c->arg), c->strict, c->utf8_ok,
					&r, &reply);
		if (c->reply) {
			if (rc == 0)
				fail_msg("RCPT %s: expected \"%s\", got success", c->arg, c->reply);
			assert_string_equal(reply, c->reply);
			assert_null(r.addr.local);
			assert_null(r.orcpt);
			continue;
		}
		if (rc != 0)
			fail_msg("RCPT %s: expected success, got \"%s\"", c->arg, reply);
		char *k = addr_key(&r.addr);
		assert_string_equal(k, c->key);
		free(k);
		assert_int_equal(r.notify, c->notify);
		if (c->orcpt) assert_string_equal(r.orcpt, c->orcpt); else assert_null(r.orcpt);
		smtpd_rcpt_args_free(&r);
	}
}

static void
test_unsupported_name_sanitized(void **state)
{
	struct smtpd_mail_args m;
	const char *reply;
	char arg[400];

	(void)state;
	memcpy(arg, "FROM:<a@b> X", 12);
	memset(arg + 12, 'Y', 300);
	arg[312] = '\0';
	assert_int_equal(smtpd_cmd_mail(arg, strlen(arg), false, &m, &reply), -1);
	/* keyword too long is a syntax error, not an echo */
	assert_string_equal(reply, "501 5.5.4 Bad MAIL parameter syntax");
	assert_int_equal(smtpd_cmd_mail("FROM:<a@b> X-FOO\xc3\xa9", 18, false, &m, &reply), -1);
	assert_string_equal(reply, "501 5.5.4 Bad MAIL parameter syntax");
	assert_int_equal(smtpd_cmd_mail("FROM:<a@b> x-foo=1", 18, false, &m, &reply), -1);
	assert_string_equal(reply, "555 5.5.4 Unsupported option: x-foo");
}

struct bdat_case {
	const char *arg;
	int         rc;
	long long   size;
	bool        last;
};

static const struct bdat_case bdat_cases[] = {
	{ "0", 0, 0, false }, { "100", 0, 100, false }, { "100 LAST", 0, 100, true },
	{ "100 last", 0, 100, true }, { "0 LAST", 0, 0, true },
	{ "", -1 }, { "LAST", -1 }, { "-1", -1 }, { "10x", -1 }, { "10LAST", -1 },
	{ "10 LASTX", -1 }, { "10 FIRST", -1 }, { "10 LAST x", -1 },
	{ "9999999999999999999", -1 }, { "999999999999999999", 0, 999999999999999999LL, false },
};

static void
test_bdat(void **state)
{
	struct smtpd_bdat_args b;
	const char *reply;

	(void)state;
	for (size_t i = 0; i < sizeof(bdat_cases) / sizeof(bdat_cases[0]); i++) {
		const struct bdat_case *c = &bdat_cases[i];
		reply = NULL;
		int rc = smtpd_cmd_bdat(c->arg, strlen(c->arg), &b, &reply);
		if (rc != c->rc)
			fail_msg("BDAT %s: rc %d", c->arg, rc);
		if (rc == 0) {
			assert_int_equal(b.size, c->size);
			assert_int_equal(b.last, c->last);
		} else
			assert_string_equal(reply, "501 5.5.4 Syntax: BDAT count [LAST]");
	}
}

static void
test_helo(void **state)
{
	const char *reply = NULL;

	(void)state;
	assert_int_equal(smtpd_cmd_helo("mx.example", 10, &reply), 0);
	assert_int_equal(smtpd_cmd_helo("[1.2.3.4]", 9, &reply), 0);
	assert_int_equal(smtpd_cmd_helo("two words", 9, &reply), 0);
	assert_int_equal(smtpd_cmd_helo("", 0, &reply), -1);
	assert_string_equal(reply, "501 5.5.4 Syntax: EHLO hostname");
	reply = NULL;
	assert_int_equal(smtpd_cmd_helo("   ", 3, &reply), -1);
	assert_non_null(reply);
}

/* Every prefix of every MAIL/RCPT case: success or a reply, no crash. */
static void
test_trickle(void **state)
{
	struct smtpd_mail_args m;
	struct smtpd_rcpt_args r;
	struct smtpd_cmd cmd;
	const char *reply;
	size_t alen;
	char *copy;

	(void)state;
	for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
		size_t n = strlen(mail_cases[i].arg);
		for (size_t k = 0; k <= n; k++) {
			copy = malloc(k ? k : 1);
			memcpy(copy, mail_cases[i].arg, k);
			reply = NULL;
			if (smtpd_cmd_mail(copy, k, false, &m, &reply) == 0)
				smtpd_mail_args_free(&m);
			else
				assert_non_null(reply);
			smtpd_cmd_parse(copy, k, &cmd, &alen);
			assert_true(cmd.arg >= copy && cmd.arg + alen <= copy + k);
			free(copy);
		}
	}
	for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		size_t n = strlen(rcpt_cases[i].arg);
		for (size_t k = 0; k <= n; k++) {
			copy = malloc(k ? k : 1);
			memcpy(copy, rcpt_cases[i].arg, k);
			reply = NULL;
			if (smtpd_cmd_rcpt(copy, k, false, true, &r, &reply) == 0)
				smtpd_rcpt_args_free(&r);
			else
				assert_non_null(reply);
			free(copy);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_bounded),
		cmocka_unit_test(test_mail),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_unsupported_name_sanitized),
		cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_helo),
		cmocka_unit_test(test_trickle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
