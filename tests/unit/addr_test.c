/*
 * addr_test.c - RFC 5321 path parsing and formatting: table-driven valid
 * and invalid paths, the relay tricks, UTF-8, limits, and every byte prefix
 * of every case (each must parse or fail cleanly).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/addr.h"

#define N ADDR_P_ALLOW_NULL
#define S ADDR_P_STRICT
#define D ADDR_P_ALLOW_NODOM

struct ok_case {
	const char *in;
	unsigned    flags;
	const char *local;
	const char *domain;
	const char *key;
	const char *formatted;
	bool        utf8;
	const char *rest;	/* what follows the path */
};

static const struct ok_case ok_cases[] = {
	{ "<user@example.com>", 0, "user", "example.com", "user@example.com",
	  "user@example.com", false, "" },
	{ "<User@EXAMPLE.Com>", 0, "User", "example.com", "User@example.com",
	  "User@example.com", false, "" },
	{ "<>", N, "", "", "", "", false, "" },
	{ "<> SIZE=10", N | S, "", "", "", "", false, " SIZE=10" },
	{ "<a.b.c@x.y>", S, "a.b.c", "x.y", "a.b.c@x.y", "a.b.c@x.y", false, "" },
	{ "<\"a b\"@x>", 0, "a b", "x", "a b@x", "\"a b\"@x", false, "" },
	{ "<\"user\"@x>", 0, "user", "x", "user@x", "user@x", false, "" },
	{ "<\"a\\\"b\\\\c\"@x>", 0, "a\"b\\c", "x", "a\"b\\c@x",
	  "\"a\\\"b\\\\c\"@x", false, "" },
	/* relay tricks: the local part stays opaque */
	{ "<\"user@elsewhere\"@hosted>", 0, "user@elsewhere", "hosted",
	  "user@elsewhere@hosted", "\"user@elsewhere\"@hosted", false, "" },
	{ "<user%elsewhere@hosted>", 0, "user%elsewhere", "hosted",
	  "user%elsewhere@hosted", "user%elsewhere@hosted", false, "" },
	{ "<elsewhere!user@hosted>", 0, "elsewhere!user", "hosted",
	  "elsewhere!user@hosted", "elsewhere!user@hosted", false, "" },
	{ "<@a:user@elsewhere>", 0, "user", "elsewhere", "user@elsewhere",
	  "user@elsewhere", false, "" },
	{ "<@a.example,@b.example:u@c.example>", S, "u", "c.example",
	  "u@c.example", "u@c.example", false, "" },
	{ "<@[10.0.0.1]:u@c>", 0, "u", "c", "u@c", "u@c", false, "" },
	/* literals */
	{ "<u@[192.0.2.1]>", 0, "u", "[192.0.2.1]", "u@[192.0.2.1]",
	  "u@[192.0.2.1]", false, "" },
	{ "<u@[IPv6:2001:DB8::1]>", 0, "u", "[IPv6:2001:db8::1]",
	  "u@[IPv6:2001:db8::1]", "u@[IPv6:2001:db8::1]", false, "" },
	{ "<u@[ipv6:::1]>", 0, "u", "[IPv6:::1]", "u@[IPv6:::1]",
	  "u@[IPv6:::1]", false, "" },
	/* trailing dot stripped, as Postfix does */
	{ "<u@example.com.>", 0, "u", "example.com", "u@example.com",
	  "u@example.com", false, "" },
	/* UTF-8 (RFC 6531) */
	{ "<jos\xc3\xa9@exampl\xc3\xa9.fr>", 0, "jos\xc3\xa9",
	  "exampl\xc3\xa9.fr", "jos\xc3\xa9@exampl\xc3\xa9.fr",
	  "jos\xc3\xa9@exampl\xc3\xa9.fr", true, "" },
	{ "<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\x95\x86>", 0,
	  "\xe7\x94\xa8\xe6\x88\xb7", "\xe4\xbe\x8b\xe5\xad\x90.\xe5\x95\x86",
	  NULL, NULL, true, "" },
	{ "<\"caf\xc3\xa9 x\"@EX.org>", 0, "caf\xc3\xa9 x", "ex.org", NULL,
	  "\"caf\xc3\xa9 x\"@ex.org", true, "" },
	{ "<u@\xf0\x9f\x98\x80.example>", 0, "u", "\xf0\x9f\x98\x80.example",
	  NULL, NULL, true, "" },
	/* non-strict: no brackets, spaces before */
	{ "user@x", 0, "user", "x", "user@x", "user@x", false, "" },
	{ "  user@x SIZE=5", 0, "user", "x", "user@x", "user@x", false, " SIZE=5" },
	{ "\"a b\"@x BODY=8BITMIME", 0, "a b", "x", "a b@x", "\"a b\"@x", false,
	  " BODY=8BITMIME" },
	{ "<u@x>  NOTIFY=NEVER", 0, "u", "x", "u@x", "u@x", false, "  NOTIFY=NEVER" },
	/* lenient dots outside strict mode, quoted on output */
	{ "<first..last@x>", 0, "first..last", "x", "first..last@x",
	  "\"first..last\"@x", false, "" },
	{ "<user.@x>", 0, "user.", "x", "user.@x", "\"user.\"@x", false, "" },
	/* postmaster without domain */
	{ "<postmaster>", D, "postmaster", "", "postmaster", "postmaster", false, "" },
	{ "<PostMaster>", D | S, "PostMaster", "", "PostMaster", "PostMaster",
	  false, "" },
	/* domains */
	{ "<u@a-b.c-d.example>", 0, "u", "a-b.c-d.example", NULL, NULL, false, "" },
	{ "<u@localhost>", 0, "u", "localhost", NULL, NULL, false, "" },
	{ "<u@123.example>", 0, "u", "123.example", NULL, NULL, false, "" },
	{ "<u+tag@x>", 0, "u+tag", "x", "u+tag@x", "u+tag@x", false, "" },
	{ "<!#$%&'*+-/=?^_`{|}~@x>", 0, "!#$%&'*+-/=?^_`{|}~", "x", NULL,
	  "!#$%&'*+-/=?^_`{|}~@x", false, "" },
	{ "<\"a>b\"@x>", 0, "a>b", "x", NULL, "\"a>b\"@x", false, "" },
};

struct bad_case {
	const char *in;
	unsigned    flags;
};

static const struct bad_case bad_cases[] = {
	{ "", 0 }, { "<", 0 }, { ">", 0 }, { "<>", 0 }, { "<> x", S },
	{ "user@x", S },			/* strict: brackets required */
	{ "<user@x", 0 }, { "<user@x>junk", 0 },
	{ "<user>", 0 }, { "<user>", N },	/* no domain */
	{ "<bob>", D },				/* only postmaster may lack one */
	{ "<@x>", 0 }, { "<u@>", 0 }, { "<@>", 0 }, { "<u@@x>", 0 },
	{ "<u@a@b>", 0 }, { "<u@x..y>", 0 }, { "<u@.x>", 0 }, { "<u@x.>.", 0 },
	{ "<u@-x>", 0 }, { "<u@x->", 0 }, { "<u@x-.y>", 0 }, { "<u@x_y>", 0 },
	{ "<u@x..>", 0 }, { "<u@1.2.3.4>", 0 },	/* unbracketed IP */
	{ "<u@[1.2.3]>", 0 }, { "<u@[1.2.3.4.5]>", 0 }, { "<u@[256.1.1.1]>", 0 },
	{ "<u@[IPv6:zz::1]>", 0 }, { "<u@[IPv6:1.2.3.4]>", 0 },
	{ "<u@[tag:foo]>", 0 }, { "<u@[1.2.3.4>", 0 }, { "<u@[]>", 0 },
	{ "<.u@x>", S }, { "<u.@x>", S }, { "<a..b@x>", S },
	{ "<\"\"@x>", 0 }, { "<\"unterminated@x>", 0 }, { "<\"a\"b@x>", 0 },
	{ "<\"a\\\x01\"@x>", 0 }, { "<\"a\x01\"@x>", 0 },
	{ "<u\x01@x>", 0 }, { "<u@x\x7f>", 0 }, { "<u v@x>", 0 },
	{ "<u@x y>", 0 }, { "<u(c)@x>", 0 }, { "<u,v@x>", 0 }, { "<u;v@x>", 0 },
	{ "<u\xc3@x>", 0 },			/* truncated UTF-8 */
	{ "<u\xc0\xaf@x>", 0 },			/* overlong */
	{ "<u\xed\xa0\x80@x>", 0 },		/* surrogate */
	{ "<u\xf5\x80\x80\x80@x>", 0 },		/* > U+10FFFF */
	{ "<u\xc2\x85@x>", 0 },			/* C1 control */
	{ "<u@x\xff>", 0 }, { "<\"\xfe\"@x>", 0 },
	{ "<@a,u@c>", 0 }, { "<@a:>", 0 }, { "<@:u@c>", 0 }, { "<@a,@:u@c>", 0 },
	{ "<@a@b:u@c>", 0 }, { "<a:u@c>", 0 },
	{ "<u@x><v@y>", 0 }, { "u@x>", 0 }, { "u@", 0 }, { "@x", 0 },
};

static void
check_ok(const struct ok_case *c)
{
	struct addr a, b;
	const char *rest = NULL, *err = NULL;
	char *key, *fmt;
	int rc;

	rc = addr_parse_path(c->in, strlen(c->in), c->flags, &a, &rest, &err);
	if (rc != 0)
		fail_msg("\"%s\" should parse, got: %s", c->in, err);
	assert_string_equal(a.local, c->local);
	assert_string_equal(a.domain, c->domain);
	assert_int_equal(a.utf8, c->utf8);
	assert_int_equal(a.is_null, strcmp(c->in, "<>") == 0 ||
			 strncmp(c->in, "<> ", 3) == 0);
	assert_string_equal(rest, c->rest);
	key = addr_key(&a);
	fmt = addr_format(&a);
	if (c->key)
		assert_string_equal(key, c->key);
	if (c->formatted)
		assert_string_equal(fmt, c->formatted);
	/* the formatted form parses back to the same key */
	if (!a.is_null) {
		rc = addr_parse_path(fmt, strlen(fmt), (c->flags & ~S) | D, &b, NULL, &err);
		if (rc != 0)
			fail_msg("formatted \"%s\" does not re-parse: %s", fmt, err);
		char *key2 = addr_key(&b);
		assert_string_equal(key, key2);
		free(key2);
		addr_free(&b);
	}
	free(key);
	free(fmt);
	addr_free(&a);
	assert_null(a.local);
}

static void
test_valid(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++)
		check_ok(&ok_cases[i]);
}

static void
test_invalid(void **state)
{
	struct addr a;
	const char *rest, *err;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const char *in = bad_cases[i].in;
		err = NULL;
		int rc = addr_parse_path(in, strlen(in), bad_cases[i].flags, &a,
					 &rest, &err);
		if (rc == 0)
			fail_msg("\"%s\" should fail, got local=\"%s\" domain=\"%s\"",
				 in, a.local, a.domain);
		assert_non_null(err);
		assert_true(strlen(err) > 0);
		assert_null(a.local);
		assert_null(a.domain);
	}
}

/* Every byte prefix of every case either parses or fails cleanly. */
static void
test_trickle(void **state)
{
	struct addr a;
	const char *rest, *err;
	char *copy;

	(void)state;
	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		size_t n = strlen(ok_cases[i].in);
		for (size_t k = 0; k <= n; k++) {
			/* exact-size heap copy so ASan catches overreads */
			copy = malloc(k ? k : 1);
			memcpy(copy, ok_cases[i].in, k);
			err = NULL;
			if (addr_parse_path(copy, k, ok_cases[i].flags | N, &a,
					    &rest, &err) == 0) {
				assert_true(rest >= copy && rest <= copy + k);
				assert_non_null(a.local);
				addr_free(&a);
			} else
				assert_non_null(err);
			free(copy);
		}
	}
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		size_t n = strlen(bad_cases[i].in);
		for (size_t k = 0; k <= n; k++) {
			copy = malloc(k ? k : 1);
			memcpy(copy, bad_cases[i].in, k);
			if (addr_parse_path(copy, k, bad_cases[i].flags, &a, &rest,
					    &err) == 0)
				addr_free(&a);
			free(copy);
		}
	}
}

static void
test_length(void **state)
{
	char buf[ADDR_PATH_MAX + 64];
	struct addr a;
	const char *rest, *err;
	size_t n;

	(void)state;
	/* content of exactly ADDR_PATH_MAX bytes: accepted */
	buf[0] = '<';
	n = ADDR_PATH_MAX - 2;			/* local part */
	memset(buf + 1, 'a', n);
	memcpy(buf + 1 + n, "@x>", 4);
	assert_int_equal(addr_parse_path(buf, strlen(buf), 0, &a, &rest, &err), 0);
	assert_int_equal(strlen(a.local), n);
	addr_free(&a);
	/* one more: refused as too long */
	memset(buf + 1, 'a', n + 1);
	memcpy(buf + 2 + n, "@x>", 4);
	assert_int_equal(addr_parse_path(buf, strlen(buf), 0, &a, &rest, &err), -1);
	assert_string_equal(err, "Address too long");
	/* bare form too */
	memset(buf, 'b', ADDR_PATH_MAX + 10);
	memcpy(buf + ADDR_PATH_MAX + 10, "@x", 3);
	assert_int_equal(addr_parse_path(buf, strlen(buf), 0, &a, &rest, &err), -1);
	/* over-long label and domain */
	assert_false(addr_domain_valid(
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.x"));
	assert_true(addr_domain_valid(
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.x"));
	memset(buf, 0, sizeof(buf));
	for (n = 0; n < 260; n += 2)
		memcpy(buf + n, "a.", 2);
	buf[259] = 'a';
	buf[260] = '\0';
	assert_false(addr_domain_valid(buf));
}

static void
test_embedded_nul(void **state)
{
	static const char in[] = "<u\0x@y>";
	static const char in2[] = "<u@y\0z>";
	static const char in3[] = "<u@[1.2.3.4\0\0]>";
	struct addr a;
	const char *rest, *err;

	(void)state;
	assert_int_equal(addr_parse_path(in, sizeof(in) - 1, 0, &a, &rest, &err), -1);
	assert_int_equal(addr_parse_path(in2, sizeof(in2) - 1, 0, &a, &rest, &err), -1);
	assert_int_equal(addr_parse_path(in3, sizeof(in3) - 1, 0, &a, &rest, &err), -1);
	/* len bounds the parse even when the text continues */
	assert_int_equal(addr_parse_path("<u@y>", 4, 0, &a, &rest, &err), -1);
}

static void
test_mailbox(void **state)
{
	struct addr a, b;
	const char *err;
	char *k;

	(void)state;
	assert_int_equal(addr_parse_mailbox("Bob@Example.ORG", &a, &err), 0);
	assert_string_equal(a.local, "Bob");
	assert_string_equal(a.domain, "example.org");
	addr_copy(&b, &a);
	addr_free(&a);
	k = addr_key(&b);
	assert_string_equal(k, "Bob@example.org");
	free(k);
	addr_free(&b);
	assert_int_equal(addr_parse_mailbox("\"x y\"@z", &a, &err), 0);
	assert_string_equal(a.local, "x y");
	addr_free(&a);
	assert_int_equal(addr_parse_mailbox("bob", &a, &err), -1);
	assert_int_equal(addr_parse_mailbox("<bob@x>", &a, &err), -1);
	assert_int_equal(addr_parse_mailbox("bob@x ", &a, &err), -1);
	assert_int_equal(addr_parse_mailbox("", &a, &err), -1);
	assert_int_equal(addr_parse_mailbox(NULL, &a, &err), -1);
}

static void
test_domain_valid(void **state)
{
	(void)state;
	assert_true(addr_domain_valid("example.com"));
	assert_true(addr_domain_valid("Example.COM."));
	assert_true(addr_domain_valid("[127.0.0.1]"));
	assert_true(addr_domain_valid("[IPv6:::1]"));
	assert_true(addr_domain_valid("xn--bcher-kva.example"));
	assert_true(addr_domain_valid("b\xc3\xbc" "cher.example"));
	assert_false(addr_domain_valid(""));
	assert_false(addr_domain_valid("."));
	assert_false(addr_domain_valid("a..b"));
	assert_false(addr_domain_valid("-a.b"));
	assert_false(addr_domain_valid("a b"));
	assert_false(addr_domain_valid("[1.2.3.4"));
	assert_false(addr_domain_valid("127.0.0.1"));
	assert_false(addr_domain_valid(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_trickle),
		cmocka_unit_test(test_length),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_mailbox),
		cmocka_unit_test(test_domain_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
