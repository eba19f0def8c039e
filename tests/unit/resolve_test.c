/*
 * resolve_test.c - domain classes, virtual alias expansion (catch-all,
 * fan-out, chains, loops, limits, +ext propagation) and Maildir/owner
 * lookup (mbox values, path traversal, uid checks, lookup failures), with
 * inline:, static: and fail: tables and a hand-filled struct settings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/resolve.h"

static void
base_settings(struct settings *s)
{
	memset(s, 0, sizeof(*s));
	s->myorigin = "mx.example.net";
	s->mydestination = "mx.example.net, localhost.example.net, localhost";
	s->relay_domains = "relay.example, !no.relay2.example, relay2.example";
	s->recipient_delimiter = "+";
	s->virtual_alias_domains = "alias.example alias3.example";
	s->virtual_mailbox_domains = "example.test, inline:{ other.test=ok }";
	s->virtual_mailbox_base = "/var/mail/vhosts";
	s->virtual_mailbox_maps =
	    "inline:{ alice@example.test=example.test/alice/, "
	    "bob@example.test=example.test/bob/Maildir/, "
	    "mbox@example.test=example.test/mbox, "
	    "evil@example.test=../../etc/, "
	    "evil2@example.test=example.test/../../x/, "
	    "abs@example.test=/var/mail/vhosts/abs/, "
	    "absout@example.test=/tmp/x/, "
	    "dots@example.test=example.test//./dots/, "
	    "@other.test=other.test/catchall/ }";
	s->virtual_alias_maps =
	    "inline:{ postmaster@example.test=alice@example.test, "
	    "{ team@example.test = alice@example.test, bob@example.test, "
	    "alice@example.test }, "
	    "chain1@example.test=chain2@example.test, "
	    "chain2@example.test=chain3@example.test, "
	    "chain3@example.test=bob@example.test, "
	    "loopa@example.test=loopb@example.test, "
	    "loopb@example.test=loopa@example.test, "
	    "{ keep@example.test = keep@example.test, alice@example.test }, "
	    "info@alias.example=alice@example.test, "
	    "@alias.example=bob@example.test, "
	    "@alias3.example=@example.test, "
	    "dangling@example.test=nobody@alias2.example, "
	    "sales@example.test=alice, "
	    "postmaster=alice@example.test, "
	    "out@example.test=someone@far.example, "
	    "bad@example.test={<<<}, "
	    "ext@example.test=alice@example.test, "
	    "unk@example.test=ghost@example.test, "
	    "{ fan@example.test = a1@example.test, a2@example.test, "
	    "a3@example.test, a4@example.test } }";
	s->virtual_uid_maps = "static:5000";
	s->virtual_gid_maps = "static:5000";
	s->virtual_minimum_uid = 100;
	s->virtual_alias_recursion_limit = 1000;
	s->virtual_alias_expansion_limit = 1000;
}

static struct resolve_ctx *
ctx_open(const struct settings *s)
{
	struct errbuf err;
	struct resolve_ctx *c;

	errbuf_clear(&err);
	c = resolve_ctx_new(s, &err);
	if (c == NULL)
		fail_msg("resolve_ctx_new: %s", errbuf_str(&err));
	return c;
}

static enum resolve_status
rcpt(struct resolve_ctx *c, const char *address, struct resolve_result *r)
{
	struct addr a;
	const char *err;
	enum resolve_status st;

	if (addr_parse_mailbox(address, &a, &err) < 0)
		fail_msg("test address %s: %s", address, err);
	st = resolve_rcpt(c, &a, r);
	addr_free(&a);
	return st;
}

struct class_case {
	const char        *domain;
	enum resolve_class cls;
};

static const struct class_case class_cases[] = {
	{ "example.test", RESOLVE_CLASS_VIRTUAL },
	{ "EXAMPLE.Test", RESOLVE_CLASS_VIRTUAL },
	{ "other.test", RESOLVE_CLASS_VIRTUAL },	/* table item */
	{ "alias.example", RESOLVE_CLASS_ALIAS },
	{ "mx.example.net", RESOLVE_CLASS_LOCAL },
	{ "localhost", RESOLVE_CLASS_LOCAL },
	{ "LocalHost", RESOLVE_CLASS_LOCAL },
	{ "", RESOLVE_CLASS_LOCAL },			/* $myorigin */
	{ "relay.example", RESOLVE_CLASS_RELAY },
	{ "sub.relay.example", RESOLVE_CLASS_RELAY },	/* parent match */
	{ "relay2.example", RESOLVE_CLASS_RELAY },
	{ "no.relay2.example", RESOLVE_CLASS_DEFAULT },	/* negated first */
	{ "sub.example.test", RESOLVE_CLASS_DEFAULT },	/* no parent match */
	{ "far.example", RESOLVE_CLASS_DEFAULT },
	{ "xrelay.example", RESOLVE_CLASS_DEFAULT },
};

static void
test_classes(void **state)
{
	struct settings s;
	struct resolve_ctx *c;
	struct errbuf err;

	(void)state;
	base_settings(&s);
	c = ctx_open(&s);
	assert_false(resolve_ctx_blocking(c));
	for (size_t i = 0; i < sizeof(class_cases) / sizeof(class_cases[0]); i++) {
		enum resolve_class cls = resolve_domain_class(c, class_cases[i].domain, &err);
		if (cls != class_cases[i].cls)
			fail_msg("%s: class %d, expected %d", class_cases[i].domain,
				 cls, class_cases[i].cls);
		assert_string_equal(errbuf_str(&err), "");
	}
	resolve_ctx_free(&c);
	assert_null(c);
}

/* A map in a domain list is keyed by domain: address keys do not match. */
static void
test_class_map_keys(void **state)
{
	struct settings s;
	struct resolve_ctx *c;
	struct errbuf err;

	(void)state;
	base_settings(&s);
	s.virtual_mailbox_domains = "inline:{ alice@example.test=x }";
	c = ctx_open(&s);
	assert_int_equal(resolve_domain_class(c, "example.test", &err),
			 RESOLVE_CLASS_DEFAULT);
	resolve_ctx_free(&c);
}

static void
test_class_file(void **state)
{
	struct settings s;
	struct resolve_ctx *c;
	struct errbuf err;
	char path[] = "/tmp/resolve_test_XXXXXX";
	int fd = mkstemp(path);
	char *v;

	(void)state;
	assert_true(fd >= 0);
	assert_true(write(fd, "# hosted\nfile1.test file2.test,\n  file3.test # x\n", 49) == 49);
	close(fd);
	base_settings(&s);
	v = malloc(strlen(path) + 20);
	sprintf(v, "%s, example.test", path);
	s.virtual_mailbox_domains = v;
	c = ctx_open(&s);
	assert_int_equal(resolve_domain_class(c, "file2.test", &err), RESOLVE_CLASS_VIRTUAL);
	assert_int_equal(resolve_domain_class(c, "file3.test", &err), RESOLVE_CLASS_VIRTUAL);
	assert_int_equal(resolve_domain_class(c, "x.test", &err), RESOLVE_CLASS_DEFAULT);
	resolve_ctx_free(&c);
	unlink(path);
	/* a missing file is a configuration error */
	c = resolve_ctx_new(&s, &err);
	assert_null(c);
	assert_non_null(strstr(errbuf_str(&err), "virtual_mailbox_domains"));
	free(v);
}

static void
test_class_tempfail(void **state)
{
	struct settings s;
	struct resolve_ctx *c;
	struct errbuf err;
	struct resolve_result r;

	(void)state;
	base_settings(&s);
	s.virtual_alias_domains = "fail:{ldap down}";
	c = ctx_open(&s);
	errbuf_clear(&err);
	resolve_domain_class(c, "example.test", &err);
	assert_non_null(strstr(errbuf_str(&err), "ldap down"));
	assert_int_equal(rcpt(c, "alice@example.test", &r), RESOLVE_TEMPFAIL);
	assert_non_null(strstr(r.reason, "ldap down"));
	assert_int_equal(r.n, 0);
	resolve_result_free(&r);
	resolve_ctx_free(&c);
}

struct rcpt_case {
	const char         *addr;
	enum resolve_status st;
	const char         *dests;	/* "addr=maildir|addr=maildir" in order; or reason substring */
};

static const struct rcpt_case rcpt_cases[] = {
	{ "alice@example.test", RESOLVE_OK,
	  "alice@example.test=/var/mail/vhosts/example.test/alice/" },
	{ "Alice@Example.Test", RESOLVE_OK,
	  "Alice@example.test=/var/mail/vhosts/example.test/alice/" },
	{ "bob@example.test", RESOLVE_OK,
	  "bob@example.test=/var/mail/vhosts/example.test/bob/Maildir/" },
	{ "alice+news@example.test", RESOLVE_OK,
	  "alice+news@example.test=/var/mail/vhosts/example.test/alice/" },
	{ "postmaster@example.test", RESOLVE_OK,
	  "alice@example.test=/var/mail/vhosts/example.test/alice/" },
	{ "team@example.test", RESOLVE_OK,
	  "alice@example.test=/var/mail/vhosts/example.test/alice/|"
	  "bob@example.test=/var/mail/vhosts/example.test/bob/Maildir/" },
	{ "chain1@example.test", RESOLVE_OK,
	  "bob@example.test=/var/mail/vhosts/example.test/bob/Maildir/" },
	/* a stale list member does not refuse the list: it is kept, marked
	   unknown, and bounced by the queue */
	{ "keep@example.test", RESOLVE_OK,
	  "keep@example.test=(mbox)|"
	  "alice@example.test=/var/mail/vhosts/example.test/alice/" },
	{ "loopa@example.test", RESOLVE_LOOP, "loopa@example.test" },
	{ "info@alias.example", RESOLVE_OK,
	  "alice@example.test=/var/mail/vhosts/example.test/alice/" },
	{ "anyone@alias.example", RESOLVE_OK,	/* catch-all */
	  "bob@example.test=/var/mail/vhosts/example.test/bob/Maildir/" },
	{ "anything@other.test", RESOLVE_OK,	/* mailbox catch-all */
	  "anything@other.test=/var/mail/vhosts/other.test/catchall/" },
	{ "nobody@example.test", RESOLVE_UNKNOWN, "User unknown in virtual mailbox table" },
	{ "ghost+x@example.test", RESOLVE_UNKNOWN, "User unknown in virtual mailbox table" },
	{ "unk@example.test", RESOLVE_UNKNOWN, "User unknown in virtual mailbox table" },
	{ "dangling@example.test", RESOLVE_OK, "nobody@alias2.example=" },
	{ "x@mx.example.net", RESOLVE_UNKNOWN, "User unknown in local recipient table" },
	{ "postmaster@localhost", RESOLVE_OK,	/* bare "postmaster" key */
	  "alice@example.test=/var/mail/vhosts/example.test/alice/" },
	{ "out@example.test", RESOLVE_OK, "someone@far.example=" },
	{ "someone@far.example", RESOLVE_OK, "someone@far.example=" },
	{ "user@sub.relay.example", RESOLVE_OK, "user@sub.relay.example=" },
	{ "\"user@elsewhere\"@example.test", RESOLVE_UNKNOWN, "virtual mailbox table" },
	{ "user%elsewhere@example.test", RESOLVE_UNKNOWN, "virtual mailbox table" },
	{ "nobody@alias.example", RESOLVE_OK,
	  "bob@example.test=/var/mail/vhosts/example.test/bob/Maildir/" },
	{ "bad@example.test", RESOLVE_CONFIG, "bad address" },
	{ "Alice+x@alias3.example", RESOLVE_OK,	/* @domain -> @domain */
	  "Alice+x@example.test=/var/mail/vhosts/example.test/alice/" },
	{ "\"bob x\"@alias3.example", RESOLVE_UNKNOWN, "virtual mailbox table" },
	{ "mbox@example.test", RESOLVE_OK, "mbox@example.test=(mbox)" },
	{ "evil@example.test", RESOLVE_CONFIG, "\"..\"" },
	{ "evil2@example.test", RESOLVE_CONFIG, "\"..\"" },
	{ "abs@example.test", RESOLVE_OK, "abs@example.test=/var/mail/vhosts/abs/" },
	{ "absout@example.test", RESOLVE_CONFIG, "outside virtual_mailbox_base" },
	{ "dots@example.test", RESOLVE_OK,
	  "dots@example.test=/var/mail/vhosts/example.test/dots/" },
	{ "fan@example.test", RESOLVE_UNKNOWN, "virtual mailbox table" },
	{ "sales@example.test", RESOLVE_UNKNOWN, "local recipient table" },	/* alice@$myorigin */
};

/* Compares r with "addr=maildir|..." ("(mbox)" for a NULL maildir). */
static void
check_dests(const char *in, const struct resolve_result *r, const char *want)
{
	char got[4096] = "";
	size_t o = 0;

	for (size_t i = 0; i < r->n; i++)
		o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%s=%s", i ? "|" : "",
				      r->v[i].addr,
				      r->v[i].maildir ? r->v[i].maildir :
				      r->v[i].cls == RESOLVE_CLASS_VIRTUAL ? "(mbox)" : "");
	if (strcmp(got, want) != 0)
		fail_msg("%s: got \"%s\", expected \"%s\"", in, got, want);
}

static void
test_rcpt(void **state)
{
	struct settings s;
	struct resolve_ctx *c;
	struct resolve_result r;

	(void)state;
	base_settings(&s);
	c = ctx_open(&s);
	for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		const struct rcpt_case *t = &rcpt_cases[i];
		enum resolve_status st = rcpt(c, t->addr, &r);
		if (st != t->st)
			fail_msg("%s: status %d (%s), expected %d", t->addr, st,
				 r.reason ? r.reason : "", t->st);
		if (st == RESOLVE_OK) {
			assert_true(r.n >= 1);
			check_dests(t->addr, &r, t->dests);
			for (size_t k = 0; k < r.n; k++)
				if (r.v[k].cls == RESOLVE_CLASS_VIRTUAL &&
				    !r.v[k].unknown) {
					assert_int_equal(r.v[k].uid, 5000);
					assert_int_equal(r.v[k].gid, 5000);
				}
			/* only a stale alias target is marked unknown */
			for (size_t k = 0; k < r.n; k++)
				assert_int_equal(r.v[k].unknown,
						 strcmp(t->addr, "keep@example.test") == 0 &&
						 strcmp(r.v[k].addr, "keep@example.test") == 0);
		} else {
			assert_int_equal(r.n, 0);
			assert_null(r.v);
			assert_non_null(r.reason);
			if (strstr(r.reason, t->dests) == NULL)
				fail_msg("%s: reason \"%s\" lacks \"%s\"", t->addr,
					 r.reason, t->dests);
		}
		resolve_result_free(&r);
		assert_null(r.reason);
	}
	resolve_ctx_free(&c);
}

/* user+ext matched as user: the extension goes to every target. */
static void
test_extension_propagation(void **state)
{
	struct settings s;
	struct resolve_ctx *c;
	struct resolve_result r;

	(void)state;
	base_settings(&s);
	s.virtual_alias_maps = "inline:{ {list@example.test = alice@example.test, "
			       "bob@example.test} }";
	c = ctx_open(&s);
	assert_int_equal(rcpt(c, "list+x@example.test", &r), RESOLVE_OK);
	check_dests("list+x", &r, "alice+x@example.test=/var/mail/vhosts/example.test/alice/|"
		    "bob+x@example.test=/var/mail/vhosts/example.test/bob/Maildir/");
	resolve_result_free(&r);
	/* an exact match keeps targets as written */
	assert_int_equal(rcpt(c, "list@example.test", &r), RESOLVE_OK);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.v[0].addr, "alice@example.test");
	resolve_result_free(&r);
	resolve_ctx_free(&c);
	/* with several delimiters, the one used is propagated */
	s.recipient_delimiter = "+-";
	c = ctx_open(&s);
	assert_int_equal(rcpt(c, "list-y@example.test", &r), RESOLVE_OK);
	assert_string_equal(r.v[0].addr, "alice-y@example.test");
	resolve_result_free(&r);
	resolve_ctx_free(&c);
}

/* catch-all to a mailbox in the same domain maps to itself: kept. */
static void
test_catchall_self(void **state)
{
	struct settings s;
	struct resolve_ctx *c;
	struct resolve_result r;

	(void)state;
	base_settings(&s);
	s.virtual_alias_maps = "inline:{ @example.test=alice@example.test }";
	c = ctx_open(&s);
	assert_int_equal(rcpt(c, "whoever@example.test", &r), RESOLVE_OK);
	check_dests("whoever", &r, "alice@example.test=/var/mail/vhosts/example.test/alice/");
	resolve_result_free(&r);
	assert_int_equal(rcpt(c, "alice@example.test", &r), RESOLVE_OK);
	assert_int_equal(r.n, 1);
	resolve_result_free(&r);
	resolve_ctx_free(&c);
}

static void
test_limits(void **state)
{
	struct settings s;
	struct resolve_ctx *c;
	struct resolve_result r;

	(void)state;
	base_settings(&s);
	s.virtual_alias_recursion_limit = 2;
	c = ctx_open(&s);
	/* chain1 -> chain2 -> chain3 -> bob: depth 3 > 2 */
	assert_int_equal(rcpt(c, "chain1@example.test", &r), RESOLVE_LOOP);
	assert_non_null(strstr(r.reason, "nesting"));
	resolve_result_free(&r);
	assert_int_equal(rcpt(c, "chain3@example.test", &r), RESOLVE_OK);
	resolve_result_free(&r);
	resolve_ctx_free(&c);

	base_settings(&s);
	s.virtual_alias_expansion_limit = 3;
	c = ctx_open(&s);
	assert_int_equal(rcpt(c, "fan@example.test", &r), RESOLVE_LOOP);
	assert_non_null(strstr(r.reason, "expansion size"));
	resolve_result_free(&r);
	assert_int_equal(rcpt(c, "team@example.test", &r), RESOLVE_OK);
	assert_int_equal(r.n, 2);
	resolve_result_free(&r);
	resolve_ctx_free(&c);
}

/* A doubling alias graph must not explode: each address is expanded once. */
static void
test_no_blowup(void **state)
{
	struct settings s;
	struct resolve_ctx *c;
	struct resolve_result r;
	char map[8192];
	size_t o;
	int i;

	(void)state;
	o = (size_t)snprintf(map, sizeof(map), "inline:{ ");
	for (i = 0; i < 40; i++)
		o += (size_t)snprintf(map + o, sizeof(map) - o,
				      "{ n%d@example.test = n%d@example.test, m%d@example.test }, "
				      "{ m%d@example.test = n%d@example.test, m%d@example.test }, ",
				      i, i + 1, i + 1, i, i + 1, i + 1);
	o += (size_t)snprintf(map + o, sizeof(map) - o,
			      "n40@example.test=alice@example.test, "
			      "m40@example.test=bob@example.test }");
	base_settings(&s);
	s.virtual_alias_maps = map;
	c = ctx_open(&s);
	assert_int_equal(rcpt(c, "n0@example.test", &r), RESOLVE_OK);
	assert_int_equal(r.n, 2);
	resolve_result_free(&r);
	resolve_ctx_free(&c);
}

static void
test_tempfail_and_config(void **state)
{
	struct settings s;
	struct resolve_ctx *c;
	struct resolve_result r;
	struct errbuf err;

	(void)state;
	base_settings(&s);
	s.virtual_alias_maps = "fail:{alias backend down}";
	c = ctx_open(&s);
	assert_int_equal(rcpt(c, "alice@example.test", &r), RESOLVE_TEMPFAIL);
	assert_non_null(strstr(r.reason, "alias backend down"));
	resolve_result_free(&r);
	resolve_ctx_free(&c);

	base_settings(&s);
	s.virtual_mailbox_maps = "fail:{mailbox backend down}";
	c = ctx_open(&s);
	assert_int_equal(rcpt(c, "alice@example.test", &r), RESOLVE_TEMPFAIL);
	assert_non_null(strstr(r.reason, "mailbox backend down"));
	resolve_result_free(&r);
	/* relay and default destinations need no mailbox lookup */
	assert_int_equal(rcpt(c, "x@far.example", &r), RESOLVE_OK);
	resolve_result_free(&r);
	resolve_ctx_free(&c);

	base_settings(&s);
	s.virtual_uid_maps = "fail:{uid down}";
	c = ctx_open(&s);
	assert_int_equal(rcpt(c, "alice@example.test", &r), RESOLVE_TEMPFAIL);
	resolve_result_free(&r);
	resolve_ctx_free(&c);

	/* uid below virtual_minimum_uid, non-numeric gid: configuration errors */
	base_settings(&s);
	s.virtual_uid_maps = "static:10";
	c = ctx_open(&s);
	assert_int_equal(rcpt(c, "alice@example.test", &r), RESOLVE_CONFIG);
	assert_non_null(strstr(r.reason, "virtual_uid_maps"));
	resolve_result_free(&r);
	resolve_ctx_free(&c);
	base_settings(&s);
	s.virtual_gid_maps = "static:vmail";
	c = ctx_open(&s);
	assert_int_equal(rcpt(c, "alice@example.test", &r), RESOLVE_CONFIG);
	assert_non_null(strstr(r.reason, "virtual_gid_maps"));
	resolve_result_free(&r);
	resolve_ctx_free(&c);
	/* per-user uid map without an entry */
	base_settings(&s);
	s.virtual_uid_maps = "inline:{ bob@example.test=6000 }";
	c = ctx_open(&s);
	assert_int_equal(rcpt(c, "alice@example.test", &r), RESOLVE_CONFIG);
	resolve_result_free(&r);
	assert_int_equal(rcpt(c, "bob@example.test", &r), RESOLVE_OK);
	assert_int_equal(r.v[0].uid, 6000);
	resolve_result_free(&r);
	resolve_ctx_free(&c);
	/* no uid/gid maps: the process's own ids */
	base_settings(&s);
	s.virtual_uid_maps = "";
	s.virtual_gid_maps = NULL;
	c = ctx_open(&s);
	assert_int_equal(rcpt(c, "alice@example.test", &r), RESOLVE_OK);
	assert_int_equal(r.v[0].uid, getuid());
	assert_int_equal(r.v[0].gid, getgid());
	resolve_result_free(&r);
	resolve_ctx_free(&c);
	/* relative maildir without a base */
	base_settings(&s);
	s.virtual_mailbox_base = "";
	c = ctx_open(&s);
	assert_int_equal(rcpt(c, "alice@example.test", &r), RESOLVE_CONFIG);
	assert_non_null(strstr(r.reason, "virtual_mailbox_base"));
	resolve_result_free(&r);
	resolve_ctx_free(&c);
	/* an unknown table type is caught at setup */
	base_settings(&s);
	s.virtual_alias_maps = "nosuchtype:/x";
	errbuf_clear(&err);
	assert_null(resolve_ctx_new(&s, &err));
	assert_non_null(strstr(errbuf_str(&err), "virtual_alias_maps"));
	s.virtual_alias_maps = "";
	s.relay_domains = "inline:{ broken";
	assert_null(resolve_ctx_new(&s, &err));
}

static void
test_mailbox(void **state)
{
	struct settings s;
	struct resolve_ctx *c;
	struct resolve_dest d;
	char *reason;

	(void)state;
	base_settings(&s);
	c = ctx_open(&s);
	assert_int_equal(resolve_mailbox(c, "bob@example.test", &d, &reason), RESOLVE_OK);
	assert_string_equal(d.maildir, "/var/mail/vhosts/example.test/bob/Maildir/");
	assert_string_equal(d.addr, "bob@example.test");
	assert_int_equal(d.cls, RESOLVE_CLASS_VIRTUAL);
	assert_int_equal(d.uid, 5000);
	resolve_dest_free(&d);
	assert_null(d.maildir);
	/* no alias expansion at delivery time */
	assert_int_equal(resolve_mailbox(c, "postmaster@example.test", &d, &reason),
			 RESOLVE_UNKNOWN);
	assert_string_equal(reason, "User unknown in virtual mailbox table");
	free(reason);
	/* a quoted local part with '@' stays one local part */
	assert_int_equal(resolve_mailbox(c, "user@elsewhere@example.test", &d, &reason),
			 RESOLVE_UNKNOWN);
	free(reason);
	assert_int_equal(resolve_mailbox(c, "x@far.example", &d, &reason), RESOLVE_OK);
	assert_int_equal(d.cls, RESOLVE_CLASS_DEFAULT);
	assert_null(d.maildir);
	resolve_dest_free(&d);
	assert_int_equal(resolve_mailbox(c, "", &d, &reason), RESOLVE_UNKNOWN);
	free(reason);
	resolve_ctx_free(&c);
}

static void
test_local_postmaster(void **state)
{
	struct settings s;
	struct resolve_ctx *c;
	struct resolve_result r;

	(void)state;
	base_settings(&s);
	s.virtual_alias_maps = "";
	c = ctx_open(&s);
	assert_int_equal(rcpt(c, "postmaster@localhost", &r), RESOLVE_UNKNOWN);
	assert_non_null(strstr(r.reason, "virtual_alias_maps"));
	resolve_result_free(&r);
	assert_int_equal(rcpt(c, "info@alias.example", &r), RESOLVE_UNKNOWN);
	assert_string_equal(r.reason, "User unknown in virtual alias table");
	resolve_result_free(&r);
	resolve_ctx_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classes),
		cmocka_unit_test(test_class_map_keys),
		cmocka_unit_test(test_class_file),
		cmocka_unit_test(test_class_tempfail),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_extension_propagation),
		cmocka_unit_test(test_catchall_self),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_no_blowup),
		cmocka_unit_test(test_tempfail_and_config),
		cmocka_unit_test(test_mailbox),
		cmocka_unit_test(test_local_postmaster),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
