/* pickup_msg_test.c - local submission cleanup: address lists, headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/pickup_msg.h"

static void
test_addresses(void **state)
{
	static const struct {
		const char *in;
		const char *want;	/* joined with '|' */
	} cases[] = {
		{ "alice", "alice" },
		{ "a@x.test, b@y.test", "a@x.test|b@y.test" },
		{ "Alice Doe <alice@x.test>", "alice@x.test" },
		{ "\"Doe, Alice\" <alice@x.test>, bob", "alice@x.test|bob" },
		{ "alice@x.test (Alice, the (nested) one)", "alice@x.test" },
		{ "team: a@x.test, b@x.test;, c@x.test", "a@x.test|b@x.test|c@x.test" },
		{ "undisclosed-recipients:;", "" },
		{ "<@relay.test:u@x.test>", "u@x.test" },
		{ "<\"a b\"@x.test>", "\"a b\"@x.test" },
		{ " ,, <>, ", "" },
		{ "a@x.test,\n\tb@x.test", "a@x.test|b@x.test" },
		{ "\"unterminated <a@x.test>", "" },
		{ "(unterminated comment a@x.test", "" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct strlist l;
		char got[512] = "";

		strlist_init(&l);
		pickup_msg_addresses(cases[i].in, strlen(cases[i].in), &l);
		for (size_t k = 0; k < l.n; k++) {
			if (k)
				strcat(got, "|");
			strcat(got, l.v[k]);
		}
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("case %zu \"%s\": got \"%s\", want \"%s\"", i,
				 cases[i].in, got, cases[i].want);
		strlist_free(&l);
	}
}

static char *
fix(const char *msg, bool extract, const char *fullname, struct strlist *r,
    char **msgid)
{
	struct pickup_fix f = {
		.id = "0123456789ABCDEF0", .myhostname = "mx.test",
		.mail_name = "facteur", .sender = "u@x.test",
		.fullname = fullname, .uid = 1000, .now = 0,
		.extract = extract,
	};
	struct buf out;

	buf_init(&out, 0);
	pickup_msg_fix(&f, msg, strlen(msg), &out, r, msgid);
	return buf_steal(&out);
}

static void
test_fix(void **state)
{
	struct strlist r;
	char *msgid, *out, *body;

	strlist_init(&r);
	/* Everything missing; Bcc dropped (folded), -t collects. */
	out = fix("To: a\nBcc: b@x.test,\n c@x.test\nSubject: s\n\nbody\n",
		  true, "Jo \"J\" Doe", &r, &msgid);
	assert_non_null(strstr(out, "Received: by mx.test (facteur, from "
			       "userid 1000)\n\tid 0123456789ABCDEF0; "));
	assert_null(strstr(out, "Bcc"));
	assert_null(strstr(out, "c@x.test"));
	assert_non_null(strstr(out, "\nSubject: s\nMessage-Id: "
			       "<0123456789ABCDEF0@mx.test>\nDate: "));
	assert_non_null(strstr(out, "\nFrom: \"Jo \\\"J\\\" Doe\" <u@x.test>\n\nbody\n"));
	assert_string_equal(msgid, "<0123456789ABCDEF0@mx.test>");
	assert_int_equal(r.n, 3);
	assert_string_equal(r.v[0], "a");
	assert_string_equal(r.v[2], "c@x.test");
	free(out);
	free(msgid);
	strlist_free(&r);

	/* Present headers kept; a body without a blank line gets one. */
	strlist_init(&r);
	out = fix("From: me\nDate: x\nMessage-ID:  <m@x>\nno header line\nmore",
		  false, NULL, &r, &msgid);
	assert_string_equal(msgid, "<m@x>");
	body = strstr(out, "Message-ID:  <m@x>\n\nno header line\nmore\n");
	assert_non_null(body);
	assert_null(strstr(out, "Message-Id:"));
	assert_int_equal(r.n, 0);
	free(out);
	free(msgid);

	/* Headers only, no newline at the end; control chars in the name. */
	out = fix("Subject: x", false, "a\rb", &r, &msgid);
	assert_non_null(strstr(out, "\nSubject: x\nMessage-Id: "));
	assert_non_null(strstr(out, "\nFrom: a b <u@x.test>\n"));
	free(out);
	free(msgid);

	/* Empty input. */
	out = fix("", false, NULL, &r, &msgid);
	assert_non_null(strstr(out, "\nFrom: u@x.test\n"));
	free(out);
	free(msgid);
	strlist_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_fix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
