/*
 * sieve_test.c - the Sieve engine: RFC 5228 example scripts compile;
 * malformed scripts give line:column errors; match semantics (:matches
 * wildcards and captures, comparators, relational); RFC 2047 decoding;
 * modified UTF-7; whole runs from script + message to actions; date
 * and index (RFC 5260): date parsing and date-parts, :zone,
 * :originalzone, Received dates, :index/:last, currentdate; include
 * (RFC 6609: :once, :optional, return, global variables, cycles and
 * depth), editheader (RFC 5293: the edited message, protected fields,
 * later tests see the edits), duplicate (RFC 7352: IDs, handles, marks).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>
#include <time.h>
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
	{ "if date \"date\" \"year\" \"2024\" {}",
	  "1:4: 'date' needs require \"date\"" },
	{ "require \"date\"; if date \"date\" \"yeer\" \"2024\" {}",
	  "1:32: unknown date-part \"yeer\"" },
	{ "require \"date\"; if date :zone \"0100\" \"date\" \"year\" \"1\" {}",
	  "1:31: bad time zone \"0100\" (expected +hhmm or -hhmm)" },
	{ "require \"date\"; if date :zone \"+0100\" :originalzone \"date\" "
	  "\"year\" \"1\" {}",
	  "1:20: ':zone' and ':originalzone' exclude each other" },
	{ "require \"date\"; if header :index 1 \"a\" \"b\" {}",
	  "1:27: ':index' needs require \"index\"" },
	{ "require \"index\"; if header :last \"a\" \"b\" {}",
	  "1:21: ':last' needs ':index'" },
	{ "require \"index\"; if header :index 0 \"a\" \"b\" {}",
	  "1:35: ':index' counts from 1" },
	{ "require \"include\"; include \"../x\";",
	  "1:28: include: bad script name \"../x\"" },
	{ "require \"include\"; include :personal :global \"x\";",
	  "1:20: include takes one of :personal and :global" },
	{ "require [\"include\", \"variables\"]; include \"${x}\";",
	  "1:43: include: the script name must be a constant string" },
	{ "require \"include\"; global \"x\";",
	  "1:20: 'global' needs require \"variables\"" },
	{ "return;", "1:1: 'return' needs require \"include\"" },
	{ "require \"editheader\"; addheader \"X Bad\" \"v\";",
	  "1:33: addheader: bad header field name \"X Bad\"" },
	{ "require \"editheader\"; deleteheader :last \"x\";",
	  "1:23: ':last' needs ':index'" },
	{ "require \"editheader\"; deleteheader :contains \"x\";",
	  "1:23: deleteheader: a match type needs value patterns" },
	{ "require \"duplicate\"; if duplicate :header \"a\" :uniqueid \"b\" {}",
	  "1:25: duplicate takes one of :header and :uniqueid" },
	{ "require [\"variables\"]; set \"1\" \"x\";",
	  "1:28: cannot assign to match variable \"1\"" },
	{ "require [\"variables\"]; set \"a.b\" \"x\";",
	  "1:28: variable \"a.b\" is in an unknown namespace" },
	{ "require [\"variables\"]; set \"a-b\" \"x\";",
	  "1:28: bad variable name \"a-b\"" },
	{ "require \"vacation\"; if duplicate {}",
	  "1:24: 'duplicate' needs require \"duplicate\"" },
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

		buf_printf(&out, "%s%s%s%s%s%s;", n[a->type],
			   a->skip ? "(not sent)" : "",
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
	/* not in To/Cc: the action is there (as in Pigeonhole's result)
	 * but marked as not to be sent */
	run_case("require \"vacation\"; vacation \"away\";", msg,
		 "joe@example.com", "carol@x.test", "vacation(not sent);keep;");
	run_case("redirect \"other@y.test\";", msg, "a@b", "b@x", "redirect;");
	{
		/* body :content: nested multipart and message/rfc822, one
		 * value per part (:is sees a part exactly), base64 decoded */
		const char *mp = "Content-Type: multipart/mixed; boundary=o\n\n"
			"--o\nContent-Type: multipart/alternative; boundary=i\n\n"
			"--i\nContent-Type: text/plain\n\nplain\n"
			"--i\nContent-Type: text/html\nContent-Transfer-Encoding: "
			"base64\n\nPGI+eDwvYj4=\n--i--\n"
			"--o\nContent-Type: message/rfc822\n\nSubject: inner\n"
			"Content-Type: text/x-inner\n\ninner text\n--o--\n";

		run_case("require \"body\"; if body :content \"text/html\" :is "
			 "\"<b>x</b>\" { discard; }", mp, "a@b", "b@x", "discard;");
		run_case("require \"body\"; if body :text :is \"plain\" "
			 "{ discard; }", mp, "a@b", "b@x", "discard;");
		run_case("require \"body\"; if body :content \"text/x-inner\" "
			 ":contains \"inner text\" { discard; }", mp, "a@b", "b@x",
			 "discard;");
		run_case("require \"body\"; if body :content \"image\" "
			 ":contains \"\" { discard; }", mp, "a@b", "b@x", "keep;");
	}
}

static void
test_date_parse(void **state)
{
	static const struct { const char *in; int rc; long long t; int z; } t[] = {
		{ "Wed, 10 Aug 2005 09:42:11 -0700", 0, 1123692131, -420 },
		{ "10 Aug 2005 09:42:11 -0700", 0, 1123692131, -420 },
		{ "Wed , 10 Aug 2005 09:42 -0700 (PDT)", 0, 1123692120, -420 },
		{ "Thu, 1 Jan 1970 00:00:00 GMT", 0, 0, 0 },
		{ "Thu, 1 Jan 70 00:00:00 +0000", 0, 0, 0 },
		{ "29 Feb 2024 23:59:59 +0100", 0, 1709247599, 60 },
		{ "1 Jan 2000 12:00:00 EST", 0, 946746000, -300 },
		{ "31 Feb 2024 00:00:00 +0000", -1, 0, 0 },
		{ "10 Foo 2005 09:42:11 -0700", -1, 0, 0 },
		{ "10 Aug 2005 24:42:11 -0700", -1, 0, 0 },
		{ "10 Aug 2005 09:42:11 -07", -1, 0, 0 },
		{ "10 Aug 2005 09:42:11 -0700 junk", -1, 0, 0 },
		{ "", -1, 0, 0 },
		{ "Wed 10 Aug 2005 09:42:11 -0700", -1, 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		long long v;
		int z;
		int rc = sieve_date_parse(t[i].in, &v, &z);

		if (rc != t[i].rc)
			fail_msg("%s: rc %d", t[i].in, rc);
		if (rc == 0) {
			assert_int_equal(v, t[i].t);
			assert_int_equal(z, t[i].z);
		}
	}
}

static void
test_date_parts(void **state)
{
	static const struct { const char *part; int zone; const char *want; } t[] = {
		{ "year", -420, "2005" }, { "month", -420, "08" },
		{ "day", -420, "10" }, { "date", -420, "2005-08-10" },
		{ "julian", -420, "53592" }, { "hour", -420, "09" },
		{ "minute", -420, "42" }, { "second", -420, "11" },
		{ "time", -420, "09:42:11" },
		{ "iso8601", -420, "2005-08-10T09:42:11-07:00" },
		{ "std11", -420, "Wed, 10 Aug 2005 09:42:11 -0700" },
		{ "zone", -420, "-0700" }, { "weekday", -420, "3" },
		/* the same instant in +1300 is the next day */
		{ "date", 780, "2005-08-11" }, { "weekday", 780, "4" },
		{ "zone", 330, "+0530" },
	};
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_true(sieve_date_part(1123692131, t[i].zone, t[i].part, &b));
		assert_string_equal(buf_cstr(&b), t[i].want);
	}
	assert_false(sieve_date_part(0, 0, "century", &b));
	buf_free(&b);
}

static void
test_date_runs(void **state)
{
	const char *msg = "Date: Wed, 10 Aug 2005 09:42:11 -0700\r\n"
			  "Received: from a by b; Mon, 1 Jan 2024 10:00:00 +0000\r\n"
			  "Received: from c by d; Sun, 31 Dec 2023 23:00:00 +0000\r\n"
			  "X-A: one\r\nX-A: two\r\nX-A: three\r\n"
			  "From: a@x.test\r\nFrom: b@y.test\r\n\r\nbody\r\n";
	char year[16], script[256];
	time_t now = time(NULL);
	struct tm tm;

	(void)state;
	run_case("require \"date\"; if date :originalzone \"date\" \"date\" "
		 "\"2005-08-10\" { discard; }", msg, "a@b", "b@x", "discard;");
	run_case("require \"date\"; if date :zone \"+1300\" \"date\" \"date\" "
		 "\"2005-08-11\" { discard; }", msg, "a@b", "b@x", "discard;");
	run_case("require [\"date\", \"relational\"]; if date :zone \"+0000\" "
		 ":value \"ge\" \"date\" \"hour\" \"16\" { discard; }", msg, "a@b",
		 "b@x", "discard;");
	run_case("require [\"date\", \"variables\", \"fileinto\"]; if date "
		 ":originalzone :matches \"date\" \"std11\" \"*, * *\" "
		 "{ fileinto \"${1}\"; }", msg, "a@b", "b@x", "fileinto Wed;");
	/* Received: the date after the last ";", each field; :index picks */
	run_case("require [\"date\", \"index\"]; if date :index 1 :zone "
		 "\"+0000\" \"received\" \"year\" \"2024\" { discard; }", msg,
		 "a@b", "b@x", "discard;");
	run_case("require [\"date\", \"index\"]; if date :index 1 :last :zone "
		 "\"+0000\" \"received\" \"year\" \"2024\" { discard; }", msg,
		 "a@b", "b@x", "keep;");
	/* no such header, or not a date: false */
	run_case("require \"date\"; if date \"x-a\" \"year\" \"2005\" "
		 "{ discard; }", msg, "a@b", "b@x", "keep;");
	/* index on header and address */
	run_case("require \"index\"; if header :index 2 \"x-a\" \"two\" "
		 "{ discard; }", msg, "a@b", "b@x", "discard;");
	run_case("require \"index\"; if header :index 2 \"x-a\" \"one\" "
		 "{ discard; }", msg, "a@b", "b@x", "keep;");
	run_case("require \"index\"; if header :index 1 :last \"x-a\" "
		 "\"three\" { discard; }", msg, "a@b", "b@x", "discard;");
	run_case("require \"index\"; if header :index 4 \"x-a\" \"*\" "
		 "{ discard; }", msg, "a@b", "b@x", "keep;");
	run_case("require \"index\"; if address :index 2 :domain \"from\" "
		 "\"y.test\" { discard; }", msg, "a@b", "b@x", "discard;");
	/* currentdate in an explicit zone */
	gmtime_r(&now, &tm);
	snprintf(year, sizeof(year), "%04d", tm.tm_year + 1900);
	snprintf(script, sizeof(script), "require \"date\"; if currentdate "
		 ":zone \"+0000\" \"year\" \"%s\" { discard; }", year);
	run_case(script, msg, "a@b", "b@x", "discard;");
	run_case("require [\"date\", \"relational\"]; if currentdate "
		 ":value \"lt\" \"date\" \"2000-01-01\" { discard; }", msg,
		 "a@b", "b@x", "keep;");
}

/* ---- include ---- */

static const struct { const char *name; bool global; const char *text; } inc_scripts[] = {
	{ "sub", false, "require [\"include\", \"variables\", \"fileinto\"];\n"
	  "global \"t\";\nfileinto \"${t}.sub\";\nset \"t\" \"Changed\";\n"
	  "set \"local\" \"L\";\nreturn;\nfileinto \"NotReached\";\n" },
	{ "glob", true, "require [\"include\", \"variables\", \"fileinto\"];\n"
	  "if string :is \"${global.t}\" \"Changed\" { fileinto \"G\"; }\n" },
	{ "self", false, "require \"include\";\ninclude \"self\";\n" },
	{ "a", false, "require \"include\";\ninclude \"b\";\n" },
	{ "b", false, "require \"include\";\ninclude \"a\";\n" },
	{ "stopper", false, "require \"fileinto\";\nfileinto \"S\";\nstop;\n" },
	{ "broken", false, "fileinto \"x\";\n" },
};

static int include_calls;

static int
inc_cb(void *arg, bool global, const char *name, struct sieve_script **sp,
       struct errbuf *err)
{
	(void)arg;
	include_calls++;
	for (size_t i = 0; i < sizeof(inc_scripts) / sizeof(inc_scripts[0]); i++)
		if (strcmp(inc_scripts[i].name, name) == 0
		    && inc_scripts[i].global == global) {
			*sp = sieve_compile(inc_scripts[i].text,
					    strlen(inc_scripts[i].text), name, err);
			return *sp ? 1 : -1;
		}
	return 0;
}

static const char inc_msg[] = "From: a@b.test\nTo: c@d.test\nSubject: s\n"
	"Message-ID: <id1@b.test>\nReceived: r1\n\nbody\n";

/* Runs script; returns the actions as "type folder;..." or "ERR: ..." */
static void
inc_run(const char *script, const char *want)
{
	struct errbuf err;
	struct sieve_script *s = sieve_compile(script, strlen(script), "main", &err);
	struct sieve_result r;
	struct sieve_msg m = { 0 };
	struct buf out;
	static const char *const n[] = { "keep", "fileinto", "redirect",
					 "discard", "reject", "vacation" };

	if (s == NULL)
		fail_msg("%s", errbuf_str(&err));
	m.content = inc_msg;
	m.len = strlen(inc_msg);
	m.env_from = "a@b.test";
	m.env_to = "c@d.test";
	m.include = inc_cb;
	sieve_result_init(&r);
	buf_init(&out, 0);
	if (sieve_run(s, &m, &r, &err) < 0)
		buf_printf(&out, "ERR: %s", errbuf_str(&err));
	else {
		sieve_result_finish(&r);
		for (size_t i = 0; i < r.nact; i++)
			buf_printf(&out, "%s%s%s;", n[r.act[i].type],
				   r.act[i].folder ? " " : "",
				   r.act[i].folder ? r.act[i].folder : "");
	}
	assert_string_equal(buf_cstr(&out), want);
	buf_free(&out);
	sieve_result_free(&r);
	sieve_script_free(&s);
}

static void
test_include(void **state)
{
	const char *pre = "require [\"include\", \"variables\", \"fileinto\"];\n";
	char script[1024];

	(void)state;
	/* global variable shared both ways, locals not, return, :global */
	snprintf(script, sizeof(script), "%sglobal \"t\"; set \"t\" \"Inc\";\n"
		 "include \"sub\"; include :global \"glob\";\n"
		 "fileinto \"${t}.${local}.after\";\n", pre);
	inc_run(script, "fileinto Inc.sub;fileinto G;fileinto Changed..after;");
	/* without "global", the variable is not shared */
	snprintf(script, sizeof(script), "%sset \"t\" \"Mine\";\n"
		 "include \"sub\";\nfileinto \"${t}\";\n", pre);
	inc_run(script, "fileinto .sub;fileinto Mine;");
	/* :once: the second include is skipped; without it, it runs again */
	snprintf(script, sizeof(script), "%sglobal \"t\";\ninclude \"sub\";\n"
		 "include :once \"sub\";\n", pre);
	inc_run(script, "fileinto .sub;");
	snprintf(script, sizeof(script), "%sglobal \"t\";\ninclude \"sub\";\n"
		 "include \"sub\";\n", pre);
	inc_run(script, "fileinto .sub;fileinto Changed.sub;");
	/* :optional: a missing script is no error; without: a run-time one */
	snprintf(script, sizeof(script), "%sinclude :optional \"none\";\n"
		 "fileinto \"X\";\n", pre);
	inc_run(script, "fileinto X;");
	snprintf(script, sizeof(script), "%sinclude \"none\";\n", pre);
	inc_run(script, "ERR: 2: include: personal script \"none\" does not exist");
	/* :global names the other location */
	snprintf(script, sizeof(script), "%sinclude :global \"sub\";\n", pre);
	inc_run(script, "ERR: 2: include: global script \"sub\" does not exist");
	/* stop in an included script ends everything */
	snprintf(script, sizeof(script), "%sinclude \"stopper\";\n"
		 "fileinto \"NotReached\";\n", pre);
	inc_run(script, "fileinto S;");
	/* cycles: direct and indirect */
	snprintf(script, sizeof(script), "%sinclude \"self\";\n", pre);
	inc_run(script, "ERR: 2: include: circular include of personal script "
		"\"self\"");
	snprintf(script, sizeof(script), "%sinclude \"a\";\n", pre);
	inc_run(script, "ERR: 2: include: circular include of personal script "
		"\"a\"");
	/* a broken included script is a run-time error naming it */
	snprintf(script, sizeof(script), "%sinclude \"broken\";\n", pre);
	inc_run(script, "ERR: 2: include: 1:1: 'fileinto' needs require "
		"\"fileinto\"");
	/* the number of includes is bounded */
	{
		struct buf b;

		buf_init(&b, 0);
		buf_puts(&b, pre);
		buf_puts(&b, "global \"t\";\n");
		for (int i = 0; i < SIEVE_MAX_INCLUDES + 1; i++)
			buf_puts(&b, "include :optional \"none\";\n");
		include_calls = 0;
		inc_run(buf_cstr(&b), "ERR: 258: include: too many nested or "
			"repeated includes (limits 10 deep, 255 in all)");
		assert_int_equal(include_calls, SIEVE_MAX_INCLUDES);
		buf_free(&b);
	}
}

/* ---- editheader ---- */

static void
edit_run(const char *script, const char *msg, const char *want_acts,
	 const char *want_msg)
{
	struct errbuf err;
	struct sieve_script *s = sieve_compile(script, strlen(script), "e", &err);
	struct sieve_result r;
	struct sieve_msg m = { 0 };
	struct buf out;
	size_t len;
	const char *c;

	if (s == NULL)
		fail_msg("%s", errbuf_str(&err));
	m.content = msg;
	m.len = strlen(msg);
	m.env_from = "a@b.test";
	m.env_to = "c@d.test";
	sieve_result_init(&r);
	assert_int_equal(sieve_run(s, &m, &r, &err), 0);
	sieve_result_finish(&r);
	buf_init(&out, 0);
	for (size_t i = 0; i < r.nact; i++)
		buf_printf(&out, "%s:%d;", r.act[i].folder ? r.act[i].folder : "INBOX",
			   r.act[i].ver);
	assert_string_equal(buf_cstr(&out), want_acts);
	/* the last action's message */
	c = sieve_action_message(&r, &r.act[r.nact - 1], msg, strlen(msg), &len);
	buf_reset(&out);
	buf_append(&out, c, len);
	assert_string_equal(buf_cstr(&out), want_msg);
	buf_free(&out);
	sieve_result_free(&r);
	sieve_script_free(&s);
}

static void
test_editheader(void **state)
{
	const char *msg = "Received: r1\nSubject: top secret\nX-A: 1\n"
			  "X-A: 2\n X-folded\nX-A: 3\n\nbody\n";
	const char *pre = "require [\"editheader\", \"fileinto\"];\n";
	char script[1024];

	(void)state;
	/* nothing edited: the original, version 0 */
	edit_run("keep;", msg, "INBOX:0;", msg);
	/* addheader first and :last; an action before the edit keeps the
	 * original; later tests see the new field */
	snprintf(script, sizeof(script), "%sfileinto \"Before\";\n"
		 "addheader \"X-New\" \"v1\";\naddheader :last \"X-End\" \"e\";\n"
		 "if header :is \"x-new\" \"v1\" { fileinto \"Seen\"; }\n", pre);
	edit_run(script, msg, "Before:0;Seen:1;",
		 "X-New: v1\nReceived: r1\nSubject: top secret\nX-A: 1\n"
		 "X-A: 2\n X-folded\nX-A: 3\nX-End: e\n\nbody\n");
	/* deleteheader: by value (decoded, matched), by :index from the
	 * end; the implicit keep carries the final edits; folded fields
	 * stay as written */
	snprintf(script, sizeof(script), "%sdeleteheader :contains \"subject\" "
		 "\"secret\";\ndeleteheader :index 1 :last \"x-a\";\n"
		 "if not exists \"subject\" { addheader \"X-Gone\" \"subject\"; }\n",
		 pre);
	edit_run(script, msg, "INBOX:1;",
		 "X-Gone: subject\nReceived: r1\nX-A: 1\nX-A: 2\n X-folded\n"
		 "\nbody\n");
	/* Received cannot be deleted (Pigeonhole, RFC 5293 6); others can */
	snprintf(script, sizeof(script), "%sdeleteheader \"received\";\n"
		 "deleteheader \"X-A\";\nif exists \"received\" { keep; }\n", pre);
	edit_run(script, msg, "INBOX:1;",
		 "Received: r1\nSubject: top secret\n\nbody\n");
	/* non-ASCII values are RFC 2047-encoded and decode back in tests */
	snprintf(script, sizeof(script), "%saddheader \"X-U\" \"caf\xc3\xa9\";\n"
		 "if header :is \"x-u\" \"caf\xc3\xa9\" { fileinto \"U\"; }\n", pre);
	edit_run(script, "Subject: s\n\nb\n", "U:1;",
		 "X-U: =?utf-8?b?Y2Fmw6k=?=\nSubject: s\n\nb\n");
	/* a message without a body keeps having none */
	snprintf(script, sizeof(script), "%saddheader \"X-N\" \"1\";\n", pre);
	edit_run(script, "Subject: s\n", "INBOX:1;", "X-N: 1\nSubject: s\n");
}

/* ---- duplicate ---- */

static const char *seen_key;

static int
dup_cb(void *arg, const char *key)
{
	(void)arg;
	return seen_key && strcmp(key, seen_key) == 0;
}

static void
dup_run(const char *script, const char *seen, const char *want_acts,
	const char *want_marks)
{
	const char *msg = "Message-ID: <m1@x>\nSubject: hello\n\nb\n";
	struct errbuf err;
	struct sieve_script *s = sieve_compile(script, strlen(script), "d", &err);
	struct sieve_result r;
	struct sieve_msg m = { 0 };
	struct buf out;

	if (s == NULL)
		fail_msg("%s", errbuf_str(&err));
	seen_key = seen;
	m.content = msg;
	m.len = strlen(msg);
	m.env_from = "a@b.test";
	m.env_to = "c@d.test";
	m.duplicate_seen = dup_cb;
	sieve_result_init(&r);
	assert_int_equal(sieve_run(s, &m, &r, &err), 0);
	sieve_result_finish(&r);
	buf_init(&out, 0);
	for (size_t i = 0; i < r.nact; i++)
		buf_printf(&out, "%s;", r.act[i].folder ? r.act[i].folder
			   : r.act[i].type == SIEVE_ACT_DISCARD ? "discard" : "INBOX");
	assert_string_equal(buf_cstr(&out), want_acts);
	buf_reset(&out);
	for (size_t i = 0; i < r.ndup; i++) {
		for (const char *p = r.dup[i].key; *p; p++)
			buf_putc(&out, *p == '\n' ? '|' : *p);
		buf_printf(&out, "/%ld;", r.dup[i].seconds);
	}
	assert_string_equal(buf_cstr(&out), want_marks);
	buf_free(&out);
	sieve_result_free(&r);
	sieve_script_free(&s);
}

static void
test_duplicate(void **state)
{
	const char *pre = "require [\"duplicate\", \"fileinto\", \"variables\"];\n";
	char script[512];

	(void)state;
	snprintf(script, sizeof(script), "%sif duplicate { discard; }\n", pre);
	/* first time: not seen, recorded for the default period */
	dup_run(script, NULL, "INBOX;", "|<m1@x>/604800;");
	/* seen: true, and without :last nothing new is recorded */
	dup_run(script, "\n<m1@x>", "discard;", "");
	/* :last refreshes the period of a seen ID */
	snprintf(script, sizeof(script), "%sif duplicate :last :seconds 60 "
		 "{ discard; }\n", pre);
	dup_run(script, "\n<m1@x>", "discard;", "|<m1@x>/60;");
	/* handle, :header, :uniqueid with variables; a period beyond the
	 * maximum is capped */
	snprintf(script, sizeof(script), "%sset \"u\" \"abc\";\n"
		 "if duplicate :handle \"h\" :header \"subject\" { fileinto \"A\"; }\n"
		 "if duplicate :uniqueid \"${u}\" :seconds 99999999 "
		 "{ fileinto \"B\"; }\n", pre);
	dup_run(script, "h\nhello", "A;", "|abc/604800;");
	/* no such field: false, nothing recorded */
	snprintf(script, sizeof(script), "%sif duplicate :header \"x-none\" "
		 "{ discard; }\n", pre);
	dup_run(script, NULL, "INBOX;", "");
}

/* ---- script sequences (sieve_before, user, sieve_after) ---- */

static void
seq_run(const char *first, const char *second, bool want_next,
	const char *want)
{
	const char *msg = "Subject: s\n\nb\n";
	struct errbuf err;
	struct sieve_script *s1 = sieve_compile(first, strlen(first), "1", &err);
	struct sieve_script *s2 = sieve_compile(second, strlen(second), "2", &err);
	struct sieve_result r;
	struct sieve_msg m = { 0 };
	struct buf out;

	assert_non_null(s1);
	assert_non_null(s2);
	m.content = msg;
	m.len = strlen(msg);
	m.env_from = "a@b.test";
	m.env_to = "c@d.test";
	sieve_result_init(&r);
	assert_int_equal(sieve_run(s1, &m, &r, &err), 0);
	assert_int_equal(sieve_result_continue(&r), want_next);
	if (want_next)
		assert_int_equal(sieve_run(s2, &m, &r, &err), 0);
	sieve_result_finish(&r);
	buf_init(&out, 0);
	for (size_t i = 0; i < r.nact; i++)
		buf_printf(&out, "%s%s%s%s;", r.act[i].folder ? r.act[i].folder
			   : r.act[i].type == SIEVE_ACT_KEEP ? "INBOX" : "other",
			   r.act[i].flags && *r.act[i].flags ? "(" : "",
			   r.act[i].flags ? r.act[i].flags : "",
			   r.act[i].flags && *r.act[i].flags ? ")" : "");
	assert_string_equal(buf_cstr(&out), want);
	buf_free(&out);
	sieve_result_free(&r);
	sieve_script_free(&s1);
	sieve_script_free(&s2);
}

static void
test_sequence(void **state)
{
	const char *user = "require \"fileinto\"; fileinto \"U\";";

	(void)state;
	/* implicit keep, explicit keep, stop: the next script runs and
	 * replaces the keep */
	seq_run("", user, true, "U;");
	seq_run("keep;", user, true, "U;");
	seq_run("stop;", user, true, "U;");
	/* flags carry over, even into a script without imap4flags */
	seq_run("require \"imap4flags\"; addflag \"\\\\Seen\";", user, true,
		"U(\\Seen);");
	seq_run("require \"imap4flags\"; addflag \"\\\\Seen\";", "", true,
		"INBOX(\\Seen);");
	/* fileinto or discard without keep: the sequence ends */
	seq_run("require \"fileinto\"; fileinto \"B\";", user, false, "B;");
	seq_run("discard;", user, false, "other;");
	/* fileinto and keep: it goes on, the other store stays */
	seq_run("require \"fileinto\"; fileinto \"B\"; keep;", user, true,
		"B;U;");
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
		cmocka_unit_test(test_date_parse),
		cmocka_unit_test(test_date_parts),
		cmocka_unit_test(test_date_runs),
		cmocka_unit_test(test_include),
		cmocka_unit_test(test_editheader),
		cmocka_unit_test(test_duplicate),
		cmocka_unit_test(test_sequence),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
