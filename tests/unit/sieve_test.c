/*
 * sieve_test.c - the Sieve engine: RFC 5228 example scripts compile;
 * malformed scripts give line:column errors; match semantics (:matches
 * wildcards and captures, comparators, relational); RFC 2047 decoding;
 * modified UTF-7; whole runs from script + message to actions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "delivery/sieve/sieve.h"
#include "delivery/sieve/sieve_int.h"

static const char *const good[] = {
	/* RFC 5228 section 9 */
	"require \"fileinto\";\n"
	"if header :is \"Sender\" \"owner-ietf-mta-filters@imc.org\"\n"
	"        { fileinto \"filter\"; }\n"
	"elsif address :DOMAIN :is [\"From\", \"To\"] \"example.com\"\n"
	"        { keep; }\n"
	"elsif anyof (NOT address :all :contains\n"
	"               [\"To\", \"Cc\", \"Bcc\"] \"me@example.com\",\n"
	"             header :matches \"subject\"\n"
	"               [\"*make*money*fast*\", \"*university*dipl*mas*\"])\n"
	"        { fileinto \"spam\"; }\n"
	"else { fileinto \"personal\"; }\n",
	"# comment\r\n/* bracket\r\n comment */ keep;\r\n",
	"if size :over 100K { discard; }",
	"if not exists [\"From\",\"Date\"] { discard; stop; }",
	"require \"vacation\";\nvacation :days 7 :addresses [\"a@b\"] text:\n"
	"line\n..stuffed\n.\n;",
	"require [\"variables\", \"relational\", \"comparator-i;ascii-numeric\"];\n"
	"set :upper \"x\" \"abc\"; if header :count \"ge\" :comparator "
	"\"i;ascii-numeric\" \"received\" \"3\" { stop; }",
	"require \"encoded-character\"; if header :is \"x\" \"${hex:41 42}\" { keep; }",
	"",
};

static const struct { const char *script, *err; } bad[] = {
	{ "keep", "1:5: expected ';' or '{', found end of script" },
	{ "fileinto \"x\";", "1:1: 'fileinto' needs require \"fileinto\"" },
	{ "require \"nonesuch\";", "1:9: unsupported extension \"nonesuch\"" },
	{ "if true { keep; }\nelse { keep; }\nelse { keep; }",
	  "3:1: 'else' without a preceding 'if'" },
	{ "keep;\nrequire \"fileinto\";",
	  "2:1: require must come before other commands" },
	{ "if header :is :contains \"a\" \"b\" { }",
	  "1:4: more than one match type for 'header'" },
	{ "if header :bogus \"a\" \"b\" {}", "1:11: unknown tag ':bogus' for 'header'" },
	{ "\"x\";", "1:1: expected a command, found string" },
	{ "if size 10 { }", "1:4: size needs exactly one of :over and :under" },
	{ "keep; /* open", "1:7: unterminated bracket comment" },
	{ "redirect \"a@b\n", "1:10: unterminated string" },
	{ "if header :comparator \"i;xyz\" \"a\" \"b\" {}",
	  "1:23: unknown comparator \"i;xyz\"" },
	{ "if true keep;", "1:9: 'true' takes no test" },
	{ "discard 5;", "1:9: too many arguments for 'discard'" },
};

static void
test_good_scripts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct errbuf err;
		struct sieve_script *s = sieve_compile(good[i], strlen(good[i]),
						       "t", &err);

		if (s == NULL)
			fail_msg("script %zu: %s", i, errbuf_str(&err));
		sieve_script_free(&s);
		assert_null(s);
	}
}

static void
test_bad_scripts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct errbuf err;
		struct sieve_script *s = sieve_compile(bad[i].script,
						       strlen(bad[i].script), "t", &err);

		assert_null(s);
		assert_string_equal(errbuf_str(&err), bad[i].err);
	}
}

static void
test_match(void **state)
{
	static const struct {
		int mt, cmp;
		const char *v, *k;
		int want;
		const char *cap1;
	} t[] = {
		{ MT_IS, CMP_CASEMAP, "Hello", "hello", 1, NULL },
		{ MT_IS, CMP_OCTET, "Hello", "hello", 0, NULL },
		{ MT_CONTAINS, CMP_CASEMAP, "Make MONEY fast", "money", 1, NULL },
		{ MT_MATCHES, CMP_CASEMAP, "hello [foo] x", "*[*] *", 1, "hello " },
		{ MT_MATCHES, CMP_CASEMAP, "abc", "a?c", 1, "b" },
		{ MT_MATCHES, CMP_CASEMAP, "a*c", "a\\*c", 1, NULL },
		{ MT_MATCHES, CMP_CASEMAP, "abc", "a\\*c", 0, NULL },
		{ MT_MATCHES, CMP_OCTET, "", "*", 1, NULL },
		{ MT_MATCHES, CMP_OCTET, "x", "", 0, NULL },
		{ MT_MATCHES, CMP_CASEMAP, "a.b.c", "*.*", 1, "a" },
		{ MT_REGEX, CMP_CASEMAP, "Order 1234", "([0-9]+)", 1, "1234" },
		{ MT_IS, CMP_NUMERIC, "007", "7", 1, NULL },
		{ MT_IS, CMP_NUMERIC, "x", "y", 1, NULL },	/* both infinity */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sieve_match_caps caps = { 0 };
		struct errbuf err;
		long steps = 10000;
		int r = sieve_match_one(t[i].mt, t[i].cmp, 0, t[i].v, t[i].k,
					&caps, &steps, &err);

		if (r != t[i].want)
			fail_msg("case %zu: %s vs %s: got %d", i, t[i].v, t[i].k, r);
		if (t[i].cap1)
			assert_string_equal(caps.v[1], t[i].cap1);
		sieve_caps_clear(&caps);
	}
	{
		/* pathological pattern: the step budget stops it */
		struct errbuf err;
		long steps = 5000;
		int r = sieve_match_one(MT_MATCHES, CMP_OCTET, 0,
					"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
					"*a*a*a*a*a*a*a*a*a*c", NULL, &steps, &err);

		assert_int_equal(r, -1);
	}
	assert_true(sieve_relop_holds(REL_GT, sieve_cmp_order(CMP_NUMERIC, "10", "9")));
	assert_true(sieve_relop_holds(REL_LT, sieve_cmp_order(CMP_CASEMAP, "a", "B")));
}

static void
test_rfc2047_and_mutf7(void **state)
{
	static const struct { const char *in, *out; } d[] = {
		{ "=?utf-8?q?re=C3=A7u?=", "re\xc3\xa7u" },
		{ "=?ISO-8859-1?Q?caf=E9?= au lait", "caf\xc3\xa9 au lait" },
		{ "=?utf-8?b?w6k=?= =?utf-8?b?w6k=?=", "\xc3\xa9\xc3\xa9" },
		{ "a =?utf-8?q?b_c?= d", "a b c d" },
		{ "=?bogus", "=?bogus" },
		{ "plain", "plain" },
	};
	static const struct { const char *in, *out; } u[] = {
		{ "Re\xc3\xa7u", "Re&AOc-u" }, { "a&b", "a&-b" },
		{ "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "&ZeVnLIqe-" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		struct buf b;

		buf_init(&b, 0);
		sieve_mime_decode_header(d[i].in, strlen(d[i].in), &b);
		assert_string_equal(buf_cstr(&b), d[i].out);
		buf_free(&b);
	}
	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
		struct buf b;

		buf_init(&b, 0);
		assert_int_equal(sieve_mutf7_encode(u[i].in, &b), 0);
		assert_string_equal(buf_cstr(&b), u[i].out);
		buf_free(&b);
	}
}

static void
run_case(const char *script, const char *msg, const char *from,
	 const char *to, const char *want)
{
	struct errbuf err;
	struct sieve_script *s = sieve_compile(script, strlen(script), "t", &err);
	struct sieve_result r;
	struct sieve_msg m = { 0 };
	struct buf out;

	if (s == NULL)
		fail_msg("%s", errbuf_str(&err));
	m.content = msg;
	m.len = strlen(msg);
	m.env_from = from;
	m.env_to = to;
	m.delimiters = "+";
	sieve_result_init(&r);
	assert_int_equal(sieve_run(s, &m, &r, &err), 0);
	sieve_result_finish(&r);
	buf_init(&out, 0);
	for (size_t i = 0; i < r.nact; i++) {
		const struct sieve_action *a = &r.act[i];
		static const char *const n[] = { "keep", "fileinto", "redirect",
						 "discard", "reject", "vacation" };

		buf_printf(&out, "%s%s%s%s%s;", n[a->type],
			   a->folder ? " " : "", a->folder ? a->folder : "",
			   a->flags && *a->flags ? " " : "",
			   a->flags && *a->flags ? a->flags : "");
	}
	assert_string_equal(buf_cstr(&out), want);
	buf_free(&out);
	sieve_result_free(&r);
	sieve_script_free(&s);
}

static void
test_runs(void **state)
{
	const char *msg = "From: Joe <joe@example.com>\r\nTo: bob@x.test\r\n"
			  "Subject: =?utf-8?q?Caf=C3=A9?= [list] news\r\n"
			  "Received: a\r\nReceived: b\r\n\r\nHello world\r\n";
	(void)state;
	run_case("", msg, "joe@example.com", "bob@x.test", "keep;");
	run_case("discard;", msg, "joe@example.com", "bob@x.test", "discard;");
	run_case("require \"fileinto\"; if address :domain \"from\" "
		 "\"EXAMPLE.com\" { fileinto \"F\"; }", msg, "a@b", "bob@x.test",
		 "fileinto F;");
	run_case("require [\"fileinto\",\"variables\"]; if header :matches "
		 "\"subject\" \"* [*] *\" { fileinto \"${1}-${2}\"; }", msg, "a@b",
		 "bob@x.test", "fileinto Caf\xc3\xa9-list;");
	run_case("require [\"envelope\",\"subaddress\",\"fileinto\"]; if "
		 "envelope :detail \"to\" \"tag\" { fileinto \"T\"; } else "
		 "{ keep; }", msg, "a@b", "bob+tag@x.test", "fileinto T;");
	run_case("require [\"envelope\"]; if envelope :localpart :is \"from\" "
		 "\"\" { discard; }", msg, "", "bob@x.test", "discard;");
	run_case("require [\"imap4flags\"]; addflag \"\\\\Seen\"; "
		 "addflag [\"\\\\Flagged\", \"\\\\Seen\"]; removeflag \"\\\\Seen\";",
		 msg, "a@b", "b@x.test", "keep \\Flagged;");
	run_case("require [\"copy\", \"fileinto\"]; fileinto :copy \"C\";", msg,
		 "a@b", "b@x", "fileinto C;keep;");
	run_case("require [\"relational\", \"comparator-i;ascii-numeric\"]; "
		 "if header :count \"eq\" :comparator \"i;ascii-numeric\" "
		 "\"received\" \"2\" { discard; }", msg, "a@b", "b@x", "discard;");
	run_case("require \"body\"; if body :contains \"world\" { discard; }",
		 msg, "a@b", "b@x", "discard;");
	run_case("require \"regex\"; if header :regex \"from\" \"jo+e\" "
		 "{ discard; }", msg, "a@b", "b@x", "discard;");
	run_case("if true { stop; } discard;", msg, "a@b", "b@x", "keep;");
	run_case("require \"vacation\"; vacation \"away\";", msg,
		 "joe@example.com", "bob@x.test", "vacation;keep;");
	/* not in To/Cc: no reply */
	run_case("require \"vacation\"; vacation \"away\";", msg,
		 "joe@example.com", "carol@x.test", "keep;");
	run_case("redirect \"other@y.test\";", msg, "a@b", "b@x", "redirect;");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_scripts),
		cmocka_unit_test(test_bad_scripts),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_rfc2047_and_mutf7),
		cmocka_unit_test(test_runs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
