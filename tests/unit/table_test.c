/*
 * table_test.c - lookup tables: every driver's valid and invalid input,
 * reload on change, missing-file surrogate and recovery, table lists.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/table.h"
#include "backends/table_driver.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "testdir.h"

static char tmpdir[64];

static char *
tpath(const char *name)
{
	return xasprintf("%s/%s", tmpdir, name);
}

/* Writes a file atomically under a fresh inode, so a reload is seen. */
static char *
write_file(const char *name, const char *text)
{
	char *path = tpath(name), *tmp = xasprintf("%s.tmp", path);
	FILE *fp = fopen(tmp, "w");

	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(rename(tmp, path), 0);
	free(tmp);
	return path;
}

static int
setup(void **state)
{
	if (testdir_make(tmpdir, sizeof(tmpdir), "facteur-table-test") < 0)
		return -1;
	table_source_set_interval(0);
	return 0;
}

static int
teardown(void **state)
{
	return testdir_remove(tmpdir);
}

/* Looks up key in spec and checks status, value (FOUND) or err substring. */
static void
check_lookup(struct table *t, const char *key, enum table_status want,
	     const char *want_text)
{
	struct buf v;
	struct errbuf err;
	enum table_status st;

	buf_init(&v, 4096);
	st = table_lookup(t, key, &v, &err);
	if (st != want)
		fail_msg("%s \"%s\": status %d, want %d (%s)", table_name(t), key,
			 st, want, errbuf_str(&err));
	if (want == TABLE_FOUND)
		assert_string_equal(buf_cstr(&v), want_text);
	else if (want_text)
		assert_non_null(strstr(errbuf_str(&err), want_text));
	if (want != TABLE_FOUND)
		assert_int_equal(v.len, 0);
	buf_free(&v);
}

/* spec, opened with flags; the test fails if it does not open. */
static struct table *
must_open(const char *spec, unsigned flags)
{
	struct errbuf err;
	struct table *t = table_open(spec, flags, &err);

	if (t == NULL)
		fail_msg("\"%s\": %s", spec, errbuf_str(&err));
	return t;
}

/* spec does not open and the error, left in *err, contains want. */
static void
open_fails(const char *spec, unsigned flags, const char *want,
	   struct errbuf *err)
{
	struct table *t = table_open(spec, flags, err);

	if (t != NULL)
		fail_msg("\"%s\" opened", spec);
	if (strstr(errbuf_str(err), want) == NULL)
		fail_msg("\"%s\": error \"%s\", want \"%s\"", spec,
			 errbuf_str(err), want);
}

static void
test_open_errors(void **state)
{
	static const struct {
		const char *spec;
		const char *err;
	} cases[] = {
		{ "", "empty table name" },
		{ "nocolon", "nocolon: table type missing" },
		{ ":x", "table type missing" },
		{ "foo:bar", "unsupported dictionary type: foo" },
		{ "sqlite:/etc/x.cf", "dictionary type \"sqlite\" is not available in this facteur build" },
		{ "pgsql:/etc/x.cf", "\"pgsql\" is not available" },
		{ "inline:a=b", "expected inline:{ key=value" },
		{ "inline:{a=b", "expected inline:{ key=value" },
		{ "inline:{a=b}}", "expected inline:{ key=value" },
		{ "inline:{a}", "missing '=' after \"a\"" },
		{ "inline:{}", "empty table" },
		{ "inline:{ }", "empty table" },
		{ "inline:{a=}", "empty value" },
		{ "inline:{=b}", "empty key" },
		{ "inline:{ {a b} }", "missing '='" },
		{ "inline:{ a={b}c }", "missing ','" },
		{ "inline:{ a=b}c }", "expected inline:{" },
		{ "static:", "missing value" },
		{ "regexp:{{/a/ b}", "expected { {rule}, {rule} ... }" },
		{ "regexp:{ /a/ b }", "expected {rule} at" },
		{ "regexp:{{/a/}}", "expected format: /pattern/flags result" },
		{ "static:{ }", "missing value" },
		{ "static:{ a", "missing '}'" },
		{ "texthash:", "missing file name" },
		{ "hash:", "missing file name" },
		{ "cidr:", "missing file name" },
		{ "regexp:", "missing file name" },
		{ "pcre:", "missing file name" },
	};
	struct errbuf err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		open_fails(cases[i].spec, TABLE_F_FOLD, cases[i].err, &err);
	}
}

static void
test_inline_static_fail(void **state)
{
	static const struct {
		const char *spec;
		unsigned flags;
		const char *key;
		enum table_status st;
		const char *text;
	} cases[] = {
		{ "inline:{ a=1, b=2 }", 0, "a", TABLE_FOUND, "1" },
		{ "inline:{ a=1, b=2 }", 0, "b", TABLE_FOUND, "2" },
		{ "inline:{ a=1, b=2 }", 0, "c", TABLE_NOTFOUND, NULL },
		{ "inline:{a=1,b=2}", 0, "b", TABLE_FOUND, "2" },
		{ "inline:{ a = 1 , b = 2 }", 0, "b", TABLE_FOUND, "2" },
		{ "inline:{ { k = v with space }, x=y }", 0, "k", TABLE_FOUND, "v with space" },
		{ "inline:{ { k = v with space }, x=y }", 0, "x", TABLE_FOUND, "y" },
		{ "inline:{ k={ x, y } }", 0, "k", TABLE_FOUND, "x, y" },
		{ "inline:{ k=a=b }", 0, "k", TABLE_FOUND, "a=b" },
		{ "inline:{ a=first, a=second }", 0, "a", TABLE_FOUND, "first" },
		{ "inline:{ Alice=x }", TABLE_F_FOLD, "ALICE", TABLE_FOUND, "x" },
		{ "inline:{ Alice=x }", TABLE_F_FOLD, "alice", TABLE_FOUND, "x" },
		{ "inline:{ Alice=x }", 0, "alice", TABLE_NOTFOUND, NULL },
		{ "inline:{ Alice=x }", 0, "Alice", TABLE_FOUND, "x" },
		{ "inline:{ a=Value }", TABLE_F_FOLD, "A", TABLE_FOUND, "Value" },
		{ "static:foo", 0, "anything", TABLE_FOUND, "foo" },
		{ "static:foo", TABLE_F_FOLD, "", TABLE_FOUND, "foo" },
		{ "static:{ a b }", 0, "k", TABLE_FOUND, "a b" },
		{ "static:5000", 0, "k", TABLE_FOUND, "5000" },
		{ "fail:down", 0, "k", TABLE_TEMPFAIL, "down" },
		{ "fail:{ server gone }", 0, "k", TABLE_TEMPFAIL, "server gone" },
		{ "fail:", 0, "k", TABLE_TEMPFAIL, "table lookup problem" },
		/* inline pattern tables (Postfix 3.7) */
		{ "regexp:{{/^[^A-Z]/ Bogus}}", 0, "1abc", TABLE_FOUND, "Bogus" },
		{ "regexp:{{/^[^A-Z]/ Bogus}}", 0, "abc", TABLE_NOTFOUND, NULL },
		{ "regexp:{ {/^a/ A}, {/^b(.)/ B$1} }", 0, "bx", TABLE_FOUND, "Bx" },
		{ "pcre:{ {/^a/ A} {/^b/ B} }", 0, "B", TABLE_FOUND, "B" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct table *t = must_open(cases[i].spec, cases[i].flags);

		assert_string_equal(table_name(t), cases[i].spec);
		check_lookup(t, cases[i].key, cases[i].st, cases[i].text);
		table_close(&t);
		assert_null(t);
	}
}

static void
test_key_limits(void **state)
{
	char key[TABLE_KEY_MAX + 2];
	struct errbuf err;
	struct table *t = table_open("static:v", 0, &err);
	struct buf small;

	assert_non_null(t);
	memset(key, 'a', sizeof(key));
	key[TABLE_KEY_MAX] = '\0';
	check_lookup(t, key, TABLE_FOUND, "v");
	key[TABLE_KEY_MAX] = 'a';
	key[TABLE_KEY_MAX + 1] = '\0';
	check_lookup(t, key, TABLE_NOTFOUND, NULL);
	check_lookup(t, NULL, TABLE_NOTFOUND, NULL);
	table_close(&t);

	/* A value larger than the caller's buffer limit is a CONFIG error. */
	t = table_open("static:0123456789", 0, &err);
	assert_non_null(t);
	buf_init(&small, 5);
	assert_int_equal(table_lookup(t, "k", &small, &err), TABLE_CONFIG);
	assert_non_null(strstr(errbuf_str(&err), "longer than 5 bytes"));
	assert_int_equal(small.len, 0);
	buf_free(&small);
	table_close(&t);
	table_close(&t);	/* closing NULL is harmless */
}

static int
collect(const char *key, const char *value, void *arg)
{
	struct buf *b = arg;

	buf_printf(b, "%s=%s;", key, value);
	return 0;
}

static void
test_texthash(void **state)
{
	char *path = write_file("map",
	    "# comment\n"
	    "\n"
	    "Alice@Example.TEST   alice@example.test\n"
	    "bob@example.test\tbob@example.test,\n"
	    "   carol@example.test\n"
	    "  # comment inside a continuation\n"
	    "\tdave@example.test\n"
	    "crlf@example.test value\r\n"
	    "spaces@example.test   a value with  spaces   \n"
	    "@example.test catchall@example.test\n"
	    "alice@example.test duplicate\n");
	char *spec = xasprintf("texthash:%s", path);
	char *hspec = xasprintf("hash:%s", path);
	struct errbuf err;
	struct strlist warn;
	struct buf dump;
	struct table *t = must_open(spec, TABLE_F_FOLD);

	check_lookup(t, "alice@example.test", TABLE_FOUND, "alice@example.test");
	check_lookup(t, "ALICE@example.test", TABLE_FOUND, "alice@example.test");
	check_lookup(t, "bob@example.test", TABLE_FOUND,
		     "bob@example.test,   carol@example.test\tdave@example.test");
	check_lookup(t, "crlf@example.test", TABLE_FOUND, "value");
	check_lookup(t, "spaces@example.test", TABLE_FOUND, "a value with  spaces");
	check_lookup(t, "@example.test", TABLE_FOUND, "catchall@example.test");
	check_lookup(t, "carol@example.test", TABLE_NOTFOUND, NULL);
	check_lookup(t, "# comment", TABLE_NOTFOUND, NULL);

	strlist_init(&warn);
	table_warnings(t, &warn);
	assert_int_equal(warn.n, 1);
	assert_non_null(strstr(warn.v[0], "line 11: duplicate entry: \"alice@example.test\""));
	strlist_free(&warn);

	buf_init(&dump, 0);
	assert_int_equal(table_dump(t, collect, &dump, &err), 0);
	assert_non_null(strstr(buf_cstr(&dump), "alice@example.test=alice@example.test;bob@"));
	buf_free(&dump);
	table_close(&t);

	/* Without folding, keys keep their case; hash: reads the same file. */
	t = table_open(hspec, 0, &err);
	assert_non_null(t);
	check_lookup(t, "Alice@Example.TEST", TABLE_FOUND, "alice@example.test");
	check_lookup(t, "alice@example.test", TABLE_FOUND, "duplicate");
	table_close(&t);
	free(spec);
	free(hspec);
	free(path);
}

static void
test_texthash_malformed(void **state)
{
	static const struct {
		const char *text;
		const char *err;
		size_t      len;	/* 0: strlen(text) */
	} cases[] = {
		{ "a b\nlonely\n", ", line 2: expected format: key whitespace value", 0 },
		{ "# c\n\nkeyonly   \n", ", line 3: expected format: key whitespace value", 0 },
		{ "a b\nc\td\n\n\n  \nx\n", ", line 6: expected format", 0 },
		{ "x y\na b\0c\n", ", line 2: NUL character", 9 },
	};
	struct errbuf err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *path = tpath("bad"), *spec = xasprintf("texthash:%s", path);
		FILE *fp = fopen(path, "w");

		assert_non_null(fp);
		fwrite(cases[i].text, 1, cases[i].len ? cases[i].len :
		       strlen(cases[i].text), fp);
		fclose(fp);
		open_fails(spec, 0, cases[i].err, &err);
		if (strncmp(errbuf_str(&err), path, strlen(path)) != 0)
			fail_msg("case %zu: \"%s\"", i, errbuf_str(&err));
		free(spec);
		free(path);
	}
}

static void
test_texthash_reload(void **state)
{
	char *path = write_file("reload", "k v1\n");
	char *spec = xasprintf("texthash:%s", path);
	struct errbuf err;
	struct table *t = table_open(spec, TABLE_F_FOLD, &err);

	assert_non_null(t);
	check_lookup(t, "k", TABLE_FOUND, "v1");
	free(write_file("reload", "k v2\nnew yes\n"));
	check_lookup(t, "k", TABLE_FOUND, "v2");
	check_lookup(t, "new", TABLE_FOUND, "yes");

	/* A broken new version answers CONFIG until it is fixed. */
	free(write_file("reload", "k v3\nbroken\n"));
	check_lookup(t, "k", TABLE_CONFIG, ", line 2: expected format: key whitespace value");
	free(write_file("reload", "k v4\n"));
	check_lookup(t, "k", TABLE_FOUND, "v4");
	check_lookup(t, "new", TABLE_NOTFOUND, NULL);

	/* A vanished file is a temporary failure, not "not found". */
	assert_int_equal(unlink(path), 0);
	check_lookup(t, "k", TABLE_TEMPFAIL, "No such file or directory");
	free(write_file("reload", "k v5\n"));
	check_lookup(t, "k", TABLE_FOUND, "v5");
	table_close(&t);
	free(spec);
	free(path);
}

static void
test_texthash_interval(void **state)
{
	char *path = write_file("interval", "k v1\n");
	char *spec = xasprintf("texthash:%s", path);
	struct errbuf err;
	struct table *t;

	table_source_set_interval(60000);
	t = table_open(spec, 0, &err);
	assert_non_null(t);
	free(write_file("interval", "k v2\n"));
	/* Not rechecked yet: the old content answers. */
	check_lookup(t, "k", TABLE_FOUND, "v1");
	table_close(&t);
	table_source_set_interval(0);
	free(spec);
	free(path);
}

static void
test_missing_file_surrogate(void **state)
{
	char *path = tpath("later"), *spec = xasprintf("texthash:%s", path);
	char *want = xasprintf("open %s: No such file or directory", path);
	struct errbuf err;
	struct table *t = table_open(spec, 0, &err);

	assert_non_null(t);
	check_lookup(t, "k", TABLE_TEMPFAIL, want);
	check_lookup(t, "k", TABLE_TEMPFAIL, want);
	assert_int_equal(table_dump(t, collect, NULL, &err), -1);
	assert_string_equal(errbuf_str(&err), want);
	free(write_file("later", "k v\n"));
	check_lookup(t, "k", TABLE_FOUND, "v");
	table_close(&t);
	free(want);
	free(spec);
	free(path);
}

static void
test_cidr(void **state)
{
	char *path = write_file("cidr",
	    "# clients\n"
	    "192.168.1.0/24   OK\n"
	    "192.168.0.0/16   REJECT private\n"
	    "10.1.2.3         host\n"
	    "[2001:db8::]/32  v6 net\n"
	    "::1/128          v6 loopback\n"
	    "[fe80::1]        v6 host\n"
	    "0.0.0.0/0        default v4\n");
	char *spec = xasprintf("cidr:%s", path);
	static const struct {
		const char *key;
		enum table_status st;
		const char *text;
	} cases[] = {
		{ "192.168.1.7", TABLE_FOUND, "OK" },
		{ "192.168.2.7", TABLE_FOUND, "REJECT private" },
		{ "10.1.2.3", TABLE_FOUND, "host" },
		{ "10.1.2.4", TABLE_FOUND, "default v4" },
		{ "2001:db8:1::5", TABLE_FOUND, "v6 net" },
		{ "2001:DB8::5", TABLE_FOUND, "v6 net" },
		{ "::1", TABLE_FOUND, "v6 loopback" },
		{ "[::1]", TABLE_FOUND, "v6 loopback" },
		{ "fe80::1", TABLE_FOUND, "v6 host" },
		{ "fe80::2", TABLE_NOTFOUND, NULL },
		{ "::ffff:192.168.1.9", TABLE_FOUND, "OK" },
		{ "not-an-ip", TABLE_NOTFOUND, NULL },
		{ "", TABLE_NOTFOUND, NULL },
		{ "192.168.1.1/24", TABLE_NOTFOUND, NULL },
	};
	struct table *t = must_open(spec, TABLE_F_FOLD);

	assert_true(table_flags(t) & TABLE_F_PATTERN);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		check_lookup(t, cases[i].key, cases[i].st, cases[i].text);
	table_close(&t);
	free(spec);
	free(path);
}

static void
test_cidr_malformed(void **state)
{
	static const struct {
		const char *text;
		const char *err;
	} cases[] = {
		{ "1.2.3.0/24 ok\n1.2.3.4/24 x\n",
		  ", line 2: non-null host address bits in \"1.2.3.4/24\", perhaps you should use \"1.2.3.0/24\" instead" },
		{ "1.2.3.0/33 x\n", ", line 1: \"1.2.3.0/33\": network prefix length larger than 32" },
		{ "1.2.3.0/ x\n", "bad network prefix length" },
		{ "1.2.3.0/2a x\n", "bad network prefix length" },
		{ "example.com x\n", ", line 1: \"example.com\": bad network address" },
		{ "1.2.3.0/24\n", ", line 1: expected format: network/prefix result" },
		{ "[2001:db8::1]/32 x\n", "perhaps you should use \"[2001:db8::]/32\"" },
		{ "::/129 x\n", "larger than 128" },
		{ "1.2.3.256 x\n", "bad network address" },
	};
	struct errbuf err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *path = write_file("badcidr", cases[i].text);
		char *spec = xasprintf("cidr:%s", path);

		open_fails(spec, 0, cases[i].err, &err);
		free(spec);
		free(path);
	}
}

static void
test_regexp_pcre(void **state)
{
	static const char *types[] = { "regexp", "pcre" };
	static const struct {
		const char *key;
		enum table_status st;
		const char *text;
	} cases[] = {
		{ "user+tag@example.test", TABLE_FOUND, "user@example.test tag" },
		{ "USER+Tag@Example.TEST", TABLE_FOUND, "USER@Example.TEST Tag" },
		{ "CaseSensitive", TABLE_FOUND, "fallback" },
		{ "casesensitive", TABLE_FOUND, "exact" },
		{ "a@inside.test", TABLE_FOUND, "in block" },
		{ "b@inside.test", TABLE_FOUND, "not a" },
		{ "cost", TABLE_FOUND, "$5 o" },
		{ "zzz", TABLE_FOUND, "fallback" },
	};
	char *path = write_file("re",
	    "# Postfix regexp_table(5) syntax\n"
	    "/^([^+]+)\\+([^@]+)@(.*)$/   $1@${3} $(2)\n"
	    "/^casesensitive$/i          exact\n"
	    "if /@inside\\.test$/\n"
	    "/^a@/                       in block\n"
	    "!/^a@/                      not a\n"
	    "endif\n"
	    "/^c(o)st$/                  $$5 ${1}\n"
	    "/^a@inside/                 never reached\n"
	    "/./                         fallback\n");

	for (size_t k = 0; k < 2; k++) {
		char *spec = xasprintf("%s:%s", types[k], path);
		struct table *t = must_open(spec, TABLE_F_FOLD);

		assert_true(table_flags(t) & TABLE_F_PATTERN);
		for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
			check_lookup(t, cases[i].key, cases[i].st, cases[i].text);
		table_close(&t);
		free(spec);
	}
	free(path);
}

static void
test_regexp_malformed(void **state)
{
	static const struct {
		const char *type;
		const char *text;
		const char *err;
	} cases[] = {
		{ "regexp", "/a/ b\n/(/ x\n", ", line 2: /(/: " },
		{ "pcre", "/(/ x\n", ", line 1: /(/: missing closing parenthesis" },
		{ "regexp", "/a/q x\n", "unknown regexp option \"q\"" },
		{ "pcre", "/a/q x\n", "unknown pcre option \"q\"" },
		{ "regexp", "/a\n", "missing closing '/'" },
		{ "regexp", "/(a)/ $2\n", "out of range replacement index \"2\"" },
		{ "pcre", "/(a)/ ${2}\n", "out of range replacement index \"2\"" },
		{ "regexp", "/a/ $x\n", "bad '$'" },
		{ "regexp", "/a/ ${1\n", "missing '}'" },
		{ "regexp", "!/(a)/ $1\n", "negated pattern" },
		{ "regexp", "/a/\n", "expected format: /pattern/flags result" },
		{ "regexp", "plain text\n", "expected format: /pattern/flags result" },
		{ "regexp", "if /a/\n/b/ c\n", ", line 1: \"if\" without matching \"endif\"" },
		{ "pcre", "/b/ c\nendif\n", ", line 2: \"endif\" without matching \"if\"" },
		{ "regexp", "if /a/ junk\nendif\n", "text after the \"if\" pattern" },
	};
	struct errbuf err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *path = write_file("badre", cases[i].text);
		char *spec = xasprintf("%s:%s", cases[i].type, path);

		open_fails(spec, 0, cases[i].err, &err);
		free(spec);
		free(path);
	}
}

static void
test_list(void **state)
{
	char *empty_re = write_file("empty.re", "/^(a*)x$/ $1\n");
	char *empty_spec = xasprintf("inline:{a=1}, regexp:%s", empty_re);
	static const struct {
		const char *value;
		const char *key;
		enum table_status st;
		const char *text;	/* value, or error substring */
		const char *which;
	} cases[] = {
		{ "inline:{a=1}, inline:{a=2, b=2}", "a", TABLE_FOUND, "1", "inline:{a=1}" },
		{ "inline:{a=1}, inline:{a=2, b=2}", "b", TABLE_FOUND, "2", "inline:{a=2, b=2}" },
		{ "inline:{a=1}, inline:{a=2, b=2}", "c", TABLE_NOTFOUND, NULL, NULL },
		{ "inline:{a=1} fail:down", "a", TABLE_FOUND, "1", "inline:{a=1}" },
		{ "inline:{a=1} fail:down", "b", TABLE_TEMPFAIL,
		  "fail:down lookup error for \"b\": down", "fail:down" },
		{ "fail:down, static:x", "a", TABLE_TEMPFAIL,
		  "fail:down lookup error for \"a\": down", "fail:down" },
		{ "inline:{ A=1 }", "a", TABLE_FOUND, "1", "inline:{ A=1 }" },
		{ "inline:{ a=1 }", "A", TABLE_FOUND, "1", "inline:{ a=1 }" },
		{ "", "a", TABLE_NOTFOUND, NULL, NULL },
		{ " , ", "a", TABLE_NOTFOUND, NULL, NULL },
	};
	struct errbuf err;
	struct buf v;

	buf_init(&v, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct table_list *l = table_list_open(cases[i].value, TABLE_F_FOLD, &err);
		const struct table *which = (const void *)1;
		enum table_status st;

		if (l == NULL)
			fail_msg("\"%s\": %s", cases[i].value, errbuf_str(&err));
		assert_false(table_list_blocking(l));
		assert_int_equal(table_list_empty(l), cases[i].which == NULL &&
				 cases[i].st == TABLE_NOTFOUND &&
				 strchr(cases[i].value, ':') == NULL);
		st = table_list_lookup(l, cases[i].key, &v, &err, &which);
		if (st != cases[i].st)
			fail_msg("case %zu: status %d (%s)", i, st, errbuf_str(&err));
		if (st == TABLE_FOUND)
			assert_string_equal(buf_cstr(&v), cases[i].text);
		else if (cases[i].text)
			assert_string_equal(errbuf_str(&err), cases[i].text);
		if (cases[i].which)
			assert_string_equal(table_name(which), cases[i].which);
		else
			assert_null(which);
		table_list_free(&l);
		assert_null(l);
	}

	/* An empty found value is a configuration error. */
	{
		struct table_list *l = table_list_open(empty_spec, 0, &err);

		assert_non_null(l);
		assert_int_equal(table_list_lookup(l, "aax", &v, &err, NULL), TABLE_FOUND);
		assert_string_equal(buf_cstr(&v), "aa");
		assert_int_equal(table_list_lookup(l, "x", &v, &err, NULL), TABLE_CONFIG);
		assert_non_null(strstr(errbuf_str(&err), "lookup error for \"x\": empty result"));
		table_list_free(&l);
	}
	buf_free(&v);
	free(empty_spec);
	free(empty_re);
}

static void
test_list_errors(void **state)
{
	static const struct {
		const char *value;
		const char *err;
	} cases[] = {
		{ "inline:{a=1}, nocolon", "nocolon: table type missing" },
		{ "inline:{a=1", "unbalanced" },
		{ "static:x foo:bar", "unsupported dictionary type: foo" },
		{ "pgsql:/etc/x.cf", "not available in this facteur build" },
	};
	struct errbuf err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct table_list *l = table_list_open(cases[i].value, 0, &err);

		assert_null(l);
		if (strstr(errbuf_str(&err), cases[i].err) == NULL)
			fail_msg("\"%s\": \"%s\"", cases[i].value, errbuf_str(&err));
	}
}

static void
test_dump(void **state)
{
	struct errbuf err;
	struct buf out;
	struct table *t = table_open("inline:{ b=2, a=1 }", 0, &err);

	buf_init(&out, 0);
	assert_int_equal(table_dump(t, collect, &out, &err), 0);
	assert_string_equal(buf_cstr(&out), "b=2;a=1;");
	table_close(&t);
	t = table_open("static:x", 0, &err);
	assert_int_equal(table_dump(t, collect, &out, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "cannot be listed"));
	table_close(&t);
	buf_free(&out);
}

/* Many readers while the file keeps changing: no crash, no torn value. */
struct reader_arg {
	struct table *t;
	int bad;
};

static void *
reader(void *p)
{
	struct reader_arg *a = p;
	struct errbuf err;
	struct buf v;

	buf_init(&v, 0);
	for (int i = 0; i < 3000; i++) {
		enum table_status st = table_lookup(a->t, "k", &v, &err);

		if (st != TABLE_FOUND || strncmp(buf_cstr(&v), "value-", 6) != 0)
			a->bad++;
	}
	buf_free(&v);
	return NULL;
}

static void
test_threads(void **state)
{
	char *path = write_file("threads", "k value-0\n");
	char *spec = xasprintf("texthash:%s", path);
	struct reader_arg args[4];
	pthread_t th[4];
	struct errbuf err;
	struct table *t = table_open(spec, 0, &err);

	assert_non_null(t);
	for (int i = 0; i < 4; i++) {
		args[i].t = t;
		args[i].bad = 0;
		assert_int_equal(pthread_create(&th[i], NULL, reader, &args[i]), 0);
	}
	for (int i = 1; i < 50; i++) {
		char text[64];

		snprintf(text, sizeof(text), "k value-%d\nother %d\n", i, i);
		free(write_file("threads", text));
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].bad, 0);
	}
	check_lookup(t, "other", TABLE_FOUND, "49");
	table_close(&t);
	free(spec);
	free(path);
}

static void
test_big_map(void **state)
{
	char *path = tpath("big"), *spec = xasprintf("texthash:%s", path);
	FILE *fp = fopen(path, "w");
	struct errbuf err;
	struct table *t;
	char key[64], val[64];

	assert_non_null(fp);
	for (int i = 0; i < 100000; i++)
		fprintf(fp, "user%d@example.test maildir/user%d/\n", i, i);
	fclose(fp);
	t = table_open(spec, TABLE_F_FOLD, &err);
	assert_non_null(t);
	for (int i = 0; i < 100000; i += 997) {
		snprintf(key, sizeof(key), "User%d@Example.test", i);
		snprintf(val, sizeof(val), "maildir/user%d/", i);
		check_lookup(t, key, TABLE_FOUND, val);
	}
	check_lookup(t, "user100000@example.test", TABLE_NOTFOUND, NULL);
	table_close(&t);
	free(spec);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_inline_static_fail),
		cmocka_unit_test(test_key_limits),
		cmocka_unit_test(test_texthash),
		cmocka_unit_test(test_texthash_malformed),
		cmocka_unit_test(test_texthash_reload),
		cmocka_unit_test(test_texthash_interval),
		cmocka_unit_test(test_missing_file_surrogate),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_cidr_malformed),
		cmocka_unit_test(test_regexp_pcre),
		cmocka_unit_test(test_regexp_malformed),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_list_errors),
		cmocka_unit_test(test_dump),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_big_map),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
