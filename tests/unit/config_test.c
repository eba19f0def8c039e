/*
 * config_test.c - main.cf and master.cf parsing: logical lines, expansion,
 * errors and findings with file:line, listeners and -o overrides, and
 * per-listener override copies. Table-driven; main.cf inputs are also fed
 * as every prefix (a byte at a time) to prove no prefix crashes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/lib/buf.h"
#include "core/lib/xmalloc.h"
#include "core/params.h"

static struct config *
parse(const char *text, struct strlist *w, struct errbuf *err)
{
	errbuf_clear(err);
	return config_parse_main(text, "main.cf", w, err);
}

/* ---- logical lines and values ---- */

static const struct {
	const char *text, *name, *raw;
} value_cases[] = {
	{ "a = b\n", "a", "b" },
	{ "a=b", "a", "b" },
	{ "a   =   b c   \n", "a", "b c" },
	{ "a =\n", "a", "" },
	{ "a = one,\n  two,\n\tthree\n", "a", "one, two, three" },
	{ "a = one,\n# comment inside\n  two\n", "a", "one, two" },
	{ "a = one,\n    # indented comment\n  two\n", "a", "one, two" },
	{ "a = one\n\n  two\n", "a", "one two" },
	{ "a = 1\nb = 2\na = 3\n", "a", "3" },
	{ "a = x # not a comment\n", "a", "x # not a comment" },
	{ "# a = 1\na = 2\n", "a", "2" },
	{ "a = b\r\nc = d\r\n", "a", "b" },
	{ "a = b\r\nc = d\r\n", "c", "d" },
	{ "a = inline:{ x=y, z=w }\n", "a", "inline:{ x=y, z=w }" },
	{ "  lead = 1\n", "lead", "1" },
	{ "A_b9 = v", "A_b9", "v" },
};

static void
test_values(void **state)
{
	for (size_t i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]); i++) {
		struct errbuf err;
		struct config *c = parse(value_cases[i].text, NULL, &err);

		assert_non_null(c);
		assert_string_equal(config_raw(c, value_cases[i].name),
				    value_cases[i].raw);
		config_free(&c);
		assert_null(c);
	}
}

static void
test_where(void **state)
{
	struct errbuf err;
	struct config *c = parse("# x\n\na = 1\n  2\nb = 3\na = 4\n", NULL, &err);
	const char *file;
	int line;

	assert_non_null(c);
	assert_true(config_where(c, "b", &file, &line));
	assert_string_equal(file, "main.cf");
	assert_int_equal(line, 5);
	assert_true(config_where(c, "a", &file, &line));
	assert_int_equal(line, 6);
	assert_false(config_where(c, "myhostname", &file, &line));
	assert_null(config_raw(c, "myhostname"));
	config_free(&c);
}

/* ---- expansion ---- */

static const struct {
	const char *text, *name, *expanded;
} expand_cases[] = {
	{ "a = x\nb = $a\n", "b", "x" },
	{ "b = $a\na = x\n", "b", "x" },		/* lazy: order is free */
	{ "a = x\nb = ${a}y\n", "b", "xy" },
	{ "a = x\nb = $(a)y\n", "b", "xy" },
	{ "a = x\nb = $a.y\n", "b", "x.y" },
	{ "a = x\nb = ${a?yes}\n", "b", "yes" },
	{ "a =\nb = ${a?yes}\n", "b", "" },
	{ "b = ${undefined?yes}\n", "b", "" },
	{ "a = x\nb = ${a:no}\n", "b", "" },
	{ "a =\nb = ${a:no}\n", "b", "no" },
	{ "b = ${undefined:no}\n", "b", "no" },
	{ "a = x\nc = 1\nb = ${a?$c-$a}\n", "b", "1-x" },
	{ "a = x\nb = ${a?{T}:{F}}\n", "b", "T" },
	{ "b = ${a?{T}:{F}}\n", "b", "F" },
	{ "b = $$a $$$$\n", "b", "$a $$" },
	{ "b = $undefined_name!\n", "b", "!" },
	{ "b = [$mail_name]\n", "b", "[facteur]" },
	{ "a = $b\nb = $c\nc = deep\n", "a", "deep" },
	{ "myhostname = mx.example.com\n", "mydomain", "example.com" },
	{ "myhostname = mx.example.com\n", "myorigin", "mx.example.com" },
	{ "myhostname = mx.example.com\n", "mydestination",
	  "mx.example.com, localhost.example.com, localhost" },
	{ "myhostname = nodot\n", "mydomain", "localdomain" },
	{ "mydomain = d.test\nmyhostname = mail.$mydomain\n", "myhostname",
	  "mail.d.test" },
	{ "myhostname = h.x.test\nsmtpd_banner = $myhostname ESMTP\n",
	  "smtpd_banner", "h.x.test ESMTP" },
	{ "virtual_mailbox_maps = texthash:/m\n", "virtual_mailbox_domains",
	  "texthash:/m" },
};

static void
test_expand(void **state)
{
	for (size_t i = 0; i < sizeof(expand_cases) / sizeof(expand_cases[0]); i++) {
		struct errbuf err;
		struct config *c = parse(expand_cases[i].text, NULL, &err);
		const char *v;

		assert_non_null(c);
		v = config_get_err(c, expand_cases[i].name, &err);
		if (v == NULL || strcmp(v, expand_cases[i].expanded) != 0)
			fail_msg("case %zu: %s: got \"%s\" (%s), want \"%s\"", i,
				 expand_cases[i].name, v ? v : "(null)",
				 errbuf_str(&err), expand_cases[i].expanded);
		/* cached: the same pointer the second time */
		assert_ptr_equal(config_get(c, expand_cases[i].name), v);
		config_free(&c);
	}
}

static void
test_expand_free_text(void **state)
{
	struct errbuf err;
	struct config *c = parse("a = 1\n", NULL, &err);
	char *s;

	s = config_expand(c, "<$a${a?+}$$>", &err);
	assert_string_equal(s, "<1+$>");
	free(s);
	assert_null(config_expand(c, "${a", &err));
	assert_non_null(strstr(errbuf_str(&err), "missing '}'"));
	config_free(&c);
}

static const struct {
	const char *text, *name, *error;
} expand_errors[] = {
	{ "a = $a\n", "a", "main.cf, line 1: parameter a: expansion loop: $a -> $a" },
	{ "a = $b\nb = ${a}\n", "a",
	  "main.cf, line 1: parameter a: expansion loop: $a -> $b -> $a" },
	{ "x = 1\na = $b\nb = $c\nc = $b\n", "a",
	  "main.cf, line 3: parameter b: expansion loop: $b -> $c -> $b" },
	{ "a = ${b\n", "a", "main.cf, line 1: parameter a: missing '}'" },
	{ "a = $(b\n", "a", "missing ')'" },
	{ "a = ${}\n", "a", "empty parameter name" },
	{ "a = ${b-c}\n", "a", "bad parameter name" },
	{ "a = cost: 5$\n", "a", "'$' not followed by a parameter name" },
	{ "a = $ x\n", "a", "'$' not followed by a parameter name" },
	{ "a = ${b?{x}:y}\n", "a", "bad conditional expansion" },
	{ "b = ${a ? {T} : {F}}\n", "b", "bad parameter name in" },
	{ "a = ${b?{x}junk}\n", "a", "bad conditional expansion" },
	{ "b = x\na = $b\nmyhostname = $a\n", "nosuch", "nosuch: unknown parameter" },
};

static void
test_expand_errors(void **state)
{
	for (size_t i = 0; i < sizeof(expand_errors) / sizeof(expand_errors[0]); i++) {
		struct errbuf err;
		struct config *c = parse(expand_errors[i].text, NULL, &err);

		assert_non_null(c);
		errbuf_clear(&err);
		assert_null(config_get_err(c, expand_errors[i].name, &err));
		if (strstr(errbuf_str(&err), expand_errors[i].error) == NULL)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i,
				 errbuf_str(&err), expand_errors[i].error);
		config_free(&c);
	}
}

static void
test_expand_limits(void **state)
{
	struct buf b;
	struct errbuf err;
	struct config *c;
	const char *v;

	/* Each level doubles: 2^40 bytes if nothing stopped it. */
	buf_init(&b, 0);
	buf_puts(&b, "p0 = xxxxxxxxxxxxxxxx\n");
	for (int i = 1; i <= 40; i++)
		buf_printf(&b, "p%d = $p%d$p%d\n", i, i - 1, i - 1);
	c = parse(buf_cstr(&b), NULL, &err);
	assert_non_null(c);
	assert_null(config_get_err(c, "p40", &err));
	assert_non_null(strstr(errbuf_str(&err), "after expansion"));
	assert_non_null(strstr(errbuf_str(&err), "main.cf, line "));
	/* config_get never returns NULL for a set name */
	v = config_get(c, "p40");
	assert_string_equal(v, "");
	assert_string_equal(config_get(c, "p3"), "xxxxxxxxxxxxxxxx"
			    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			    "xxxxxxxxxxxxxxxx");
	config_free(&c);

	/* A chain deeper than the nesting limit. */
	buf_reset(&b);
	for (int i = 0; i < 150; i++)
		buf_printf(&b, "q%d = $q%d\n", i, i + 1);
	buf_puts(&b, "q150 = end\n");
	c = parse(buf_cstr(&b), NULL, &err);
	assert_non_null(c);
	assert_null(config_get_err(c, "q0", &err));
	assert_non_null(strstr(errbuf_str(&err), "nested more than"));
	assert_string_equal(config_get(c, "q100"), "end");
	config_free(&c);
	buf_free(&b);
}

/* ---- syntax errors ---- */

static const struct {
	const char *text, *error;
} syntax_errors[] = {
	{ "a b\n", "main.cf, line 1: missing '=' after parameter name: \"a\"" },
	{ "# c\n\nfoo\n", "main.cf, line 3: missing '=' after parameter name: \"foo\"" },
	{ "a = 1\nfoo bar = 2\n", "main.cf, line 2: missing '=' after parameter name: \"foo\"" },
	{ "= 1\n", "main.cf, line 1: missing parameter name before '='" },
	/* '-' is fine inside a name (policyd-spf_time_limit), not first */
	{ "-foo = 1\n", "main.cf, line 1: bad parameter name: \"-foo\"" },
	{ "a = 1\n\nb.c = 2\n  more\n", "main.cf, line 3: bad parameter name: \"b.c\"" },
	{ "a = 1\nwhat\n  = 2\n", NULL },	/* continuation makes it "what = 2" */
};

static void
test_syntax_errors(void **state)
{
	for (size_t i = 0; i < sizeof(syntax_errors) / sizeof(syntax_errors[0]); i++) {
		struct errbuf err;
		struct config *c = parse(syntax_errors[i].text, NULL, &err);

		if (syntax_errors[i].error == NULL) {
			assert_non_null(c);
			assert_string_equal(config_raw(c, "what"), "2");
			config_free(&c);
			continue;
		}
		assert_null(c);
		if (strncmp(errbuf_str(&err), syntax_errors[i].error,
			    strlen(syntax_errors[i].error)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i,
				 errbuf_str(&err), syntax_errors[i].error);
	}
}

static void
test_too_long(void **state)
{
	size_t n = 2 * 1024 * 1024;
	char *text = xmalloc(n + 8);
	struct errbuf err;
	struct config *c;

	memcpy(text, "a = ", 4);
	memset(text + 4, 'x', n);
	text[n + 4] = '\0';
	c = parse(text, NULL, &err);
	assert_null(c);
	assert_non_null(strstr(errbuf_str(&err), "main.cf, line 1: logical line longer"));
	free(text);
}

/* ---- findings: unknown, internal, later ---- */

static const struct {
	const char *text, *finding;	/* finding NULL: none expected */
} finding_cases[] = {
	{ "a = 1\nfoo_bar = 2\n", "warning: main.cf, line 2: unknown parameter: foo_bar" },
	{ "\n\nmyhostname = x.y\n", NULL },
	{ "compatibility_level = 2\n",
	  "notice: main.cf, line 1: compatibility_level only tunes Postfix internals" },
	{ "biff = no\n", "notice: main.cf, line 1: biff only tunes Postfix internals" },
	{ "smtpd_authorized_xforward_hosts = 127.0.0.1\n",
	  "notice: main.cf, line 1: smtpd_authorized_xforward_hosts is not used "
	  "by this version" },
	/* a user-defined name is fine when something references it */
	{ "my_maps = texthash:/x\nvirtual_alias_maps = $my_maps\n", NULL },
	{ "my_maps = texthash:/x\nvirtual_alias_maps = ${my_maps?x}\n", NULL },
	{ "smtpd_restriction_classes = strict\nstrict = reject\n", NULL },
	{ "  indented = 1\n", "warning: main.cf, line 1: logical line must not start with white space" },
};

static void
test_findings(void **state)
{
	for (size_t i = 0; i < sizeof(finding_cases) / sizeof(finding_cases[0]); i++) {
		struct strlist w;
		struct errbuf err;
		struct config *c;
		bool found = false;

		strlist_init(&w);
		c = parse(finding_cases[i].text, &w, &err);
		assert_non_null(c);
		if (finding_cases[i].finding == NULL) {
			for (size_t j = 0; j < w.n; j++)
				if (strstr(w.v[j], "smtpd_restriction_classes") == NULL)
					fail_msg("case %zu: unexpected \"%s\"", i, w.v[j]);
		}
		for (size_t j = 0; j < w.n; j++)
			if (finding_cases[i].finding &&
			    strncmp(w.v[j], finding_cases[i].finding,
				    strlen(finding_cases[i].finding)) == 0)
				found = true;
		if (finding_cases[i].finding && !found)
			fail_msg("case %zu: no finding \"%s\" (%zu findings)", i,
				 finding_cases[i].finding, w.n);
		strlist_free(&w);
		config_free(&c);
	}
}

/* Every prefix of a realistic main.cf parses or fails cleanly. */
static void
test_trickle(void **state)
{
	static const char text[] =
	    "# main.cf\nmyhostname = mx.example.test\nmydomain=example.test\n"
	    "smtpd_recipient_restrictions =\n  permit_mynetworks,\n"
	    "# old: reject_rbl_client x\n\treject_unauth_destination\n"
	    "virtual_alias_maps = texthash:/etc/x, inline:{ a=b, c=d }\n"
	    "banner = ${myhostname?{$myhostname}:{none}} $$ ok\n";
	size_t n = strlen(text);
	struct config *whole;
	struct errbuf err;

	whole = parse(text, NULL, &err);
	assert_non_null(whole);
	for (size_t len = 0; len <= n; len++) {
		char *prefix = xstrndup(text, len);
		struct strlist w;
		struct config *c;

		strlist_init(&w);
		c = parse(prefix, &w, &err);
		if (c == NULL)
			assert_non_null(strstr(errbuf_str(&err), "main.cf, line "));
		else
			(void)config_get(c, "banner");
		config_free(&c);
		strlist_free(&w);
		free(prefix);
	}
	assert_string_equal(config_get(whole, "smtpd_recipient_restrictions"),
			    "permit_mynetworks, reject_unauth_destination");
	assert_string_equal(config_get(whole, "banner"), "mx.example.test $ ok");
	config_free(&whole);
}

/* ---- master.cf ---- */

static const char master_text[] =
    "# service type private unpriv chroot wakeup maxproc command\n"
    "smtp      inet  n       -       y       -       -       smtpd\n"
    "127.0.0.1:2525 inet n   -       n       -       50      smtpd\n"
    "submission inet n       -       n       -       -       smtpd\n"
    "  -o syslog_name=postfix/submission\n"
    "# a comment between continuation lines\n"
    "  -o smtpd_tls_security_level=encrypt\n"
    "  -o { smtpd_banner = $myhostname says hello }\n"
    "  -osmtpd_sasl_auth_enable=yes\n"
    "  -v\n"
    "[::1]:smtps inet n      -       n       -       -       smtpd\n"
    "  -o {smtpd_tls_wrappermode=yes}\n"
    "*:4190    inet  n       -       n       -       -       managesieved\n"
    "10025     inet  n       -       n       -       -       postscreen\n"
    "smtpd     pass  -       -       y       -       -       smtpd\n"
    "pickup    unix  n       -       y       60      1       pickup\n"
    "qmgr      unix  n       -       n       300     1       qmgr\n"
    "tlsmgr    unix  -       -       y       1000?   1       tlsmgr\n"
    "dovecot   unix  -       n       n       -       -       pipe\n"
    "  flags=DRhu user=vmail:vmail argv=/usr/lib/dovecot/deliver -f ${sender}\n"
    "scan      unix  -       -       n       -       10      pipe\n"
    "  flags=Rq user=filter argv=/usr/sbin/sendmail -oi -f ${sender} -- $recipient\n"
    "relay     unix  -       -       y       -       -       smtp\n"
    "  -o syslog_name=postfix/$service_name\n";

static void
test_master(void **state)
{
	static const struct {
		const char *service, *command, *host, *port;
		int maxproc, line;
		size_t noverrides;
	} want[] = {
		{ "smtp", "smtpd", "", "25", 0, 2, 0 },
		{ "127.0.0.1:2525", "smtpd", "127.0.0.1", "2525", 50, 3, 0 },
		{ "submission", "smtpd", "", "587", 0, 4, 4 },
		{ "[::1]:smtps", "smtpd", "::1", "465", 0, 11, 1 },
		{ "*:4190", "managesieved", "", "4190", 0, 13, 0 },
		{ "10025", "postscreen", "", "10025", 0, 14, 0 },
	};
	struct strlist w;
	struct errbuf err;
	struct config *c = parse("myhostname = h.test\n", NULL, &err);
	const struct master_cf *m;
	bool qmgr = false, ignored_v = false;

	assert_non_null(c);
	strlist_init(&w);
	assert_int_equal(config_parse_master(c, master_text, "master.cf", &w, &err), 0);
	m = config_master(c);
	assert_int_equal(m->n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < m->n; i++) {
		assert_string_equal(m->v[i].service, want[i].service);
		assert_string_equal(m->v[i].type, "inet");
		assert_string_equal(m->v[i].command, want[i].command);
		assert_string_equal(m->v[i].host, want[i].host);
		assert_string_equal(m->v[i].port, want[i].port);
		assert_int_equal(m->v[i].maxproc, want[i].maxproc);
		assert_int_equal(m->v[i].line, want[i].line);
		assert_string_equal(m->v[i].file, "master.cf");
		assert_int_equal(m->v[i].overrides.n, want[i].noverrides);
	}
	assert_string_equal(m->v[2].overrides.v[0], "syslog_name=postfix/submission");
	assert_string_equal(m->v[2].overrides.v[1], "smtpd_tls_security_level=encrypt");
	assert_string_equal(m->v[2].overrides.v[2], "smtpd_banner=$myhostname says hello");
	assert_string_equal(m->v[2].overrides.v[3], "smtpd_sasl_auth_enable=yes");
	assert_string_equal(m->v[3].overrides.v[0], "smtpd_tls_wrappermode=yes");
	for (size_t i = 0; i < w.n; i++) {
		if (strcmp(w.v[i], "notice: master.cf, line 17: service \"qmgr\" "
			   "(qmgr) is not needed by facteur") == 0)
			qmgr = true;
		if (strstr(w.v[i], "line 4: service \"submission\": ignoring "
			   "argument \"-v\""))
			ignored_v = true;
		/* service_name is referenced by a non-needed service only */
		assert_null(strstr(w.v[i], "unknown parameter"));
	}
	assert_true(qmgr);
	assert_true(ignored_v);
	/* dovecot, scan (pipe) and relay (smtp) are delivery transports */
	{
		const struct master_cf *t = config_transports(c);

		assert_int_equal(t->n, 3);
		assert_string_equal(t->v[0].service, "dovecot");
		assert_string_equal(t->v[0].command, "pipe");
		assert_string_equal(t->v[0].user, "vmail:vmail");
		assert_int_equal(t->v[0].argv.n, 3);
		assert_string_equal(t->v[0].argv.v[0], "/usr/lib/dovecot/deliver");
		assert_string_equal(t->v[0].argv.v[2], "${sender}");
		assert_int_equal(t->v[0].attrs.n, 1);
		assert_string_equal(t->v[0].attrs.v[0], "flags=DRhu");
		assert_int_equal(t->v[0].line, 19);
		assert_string_equal(t->v[1].service, "scan");
		assert_int_equal(t->v[1].maxproc, 10);
		assert_string_equal(t->v[1].argv.v[5], "$recipient");
		assert_string_equal(t->v[2].service, "relay");
		assert_string_equal(t->v[2].command, "smtp");
		assert_int_equal(t->v[2].overrides.n, 1);
		assert_string_equal(t->v[2].overrides.v[0],
				    "syslog_name=postfix/$service_name");
	}
	/* pickup, qmgr, tlsmgr; "smtpd pass" is postscreen's
	 * (core/postscreen.c) */
	{
		size_t notices = 0, pass = 0;

		for (size_t i = 0; i < w.n; i++) {
			if (strstr(w.v[i], "is not needed by facteur"))
				notices++;
			if (strstr(w.v[i], "line 15: service \"smtpd\" (smtpd) "
				   "is built into facteur's postscreen"))
				pass++;
		}
		assert_int_equal(notices, 3);
		assert_int_equal(pass, 1);
	}
	strlist_free(&w);
	config_free(&c);
}

/* spawn lines (policyd-spf's): argv= and user= kept, NAME_time_limit known */
static void
test_master_spawn(void **state)
{
	static const char text[] =
	    "smtp inet n - n - - smtpd\n"
	    "policyd-spf unix - n n - 0 spawn\n"
	    "  user=policyd-spf argv=/usr/bin/policyd-spf /etc/p.conf\n"
	    "127.0.0.1:10040 inet n n n - 5 spawn argv=/bin/cat\n";
	struct strlist w;
	struct errbuf err;
	struct config *c = parse("policyd-spf_time_limit = 3600\n", NULL, &err);
	const struct master_cf *m;

	(void)state;
	assert_non_null(c);
	strlist_init(&w);
	assert_int_equal(config_parse_master(c, text, "master.cf", &w, &err), 0);
	m = config_master(c);
	assert_int_equal(m->n, 3);
	assert_string_equal(m->v[1].service, "policyd-spf");
	assert_string_equal(m->v[1].type, "unix");
	assert_string_equal(m->v[1].command, "spawn");
	assert_string_equal(m->v[1].user, "policyd-spf");
	assert_int_equal(m->v[1].argv.n, 2);
	assert_string_equal(m->v[1].argv.v[0], "/usr/bin/policyd-spf");
	assert_string_equal(m->v[1].argv.v[1], "/etc/p.conf");
	assert_int_equal(m->v[1].line, 2);
	assert_string_equal(m->v[2].host, "127.0.0.1");
	assert_string_equal(m->v[2].port, "10040");
	assert_int_equal(m->v[2].maxproc, 5);
	assert_null(m->v[2].user);
	for (size_t i = 0; i < w.n; i++)
		if (strstr(w.v[i], "spawn") != NULL)
			fail_msg("unexpected finding: %s", w.v[i]);
	strlist_free(&w);
	config_free(&c);

	/* argv= is required, and absolute */
	c = parse("a = 1\n", NULL, &err);
	assert_int_equal(config_parse_master(c, "x unix - n n - 0 spawn user=u\n",
					     "master.cf", NULL, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "master.cf, line 1: service "
				"\"x\" (spawn): needs argv="));
	assert_int_equal(config_parse_master(c, "x unix - n n - 0 spawn "
					     "argv=cat\n", "master.cf", NULL,
					     &err), -1);
	assert_int_equal(config_parse_master(c, "../x unix - n n - 0 spawn "
					     "argv=/bin/cat\n", "master.cf",
					     NULL, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "bad spawn service name"));
	config_free(&c);
}

static const struct {
	const char *text, *error;
} master_errors[] = {
	{ "smtp inet n - n - - \n", "master.cf, line 1: expected at least 8 fields" },
	{ "\n\nsmtp tcp n - n - - smtpd\n",
	  "master.cf, line 3: unknown service type: \"tcp\"" },
	{ "smtp inet x - n - - smtpd\n",
	  "master.cf, line 1: field \"private\": bad value: \"x\"" },
	{ "smtp inet n - n - many smtpd\n",
	  "master.cf, line 1: field \"maxproc\": bad value: \"many\"" },
	{ "smtp inet n - n 1x - smtpd\n",
	  "master.cf, line 1: field \"wakeup\": bad value" },
	{ "nosuchservicename inet n - n - - smtpd\n",
	  "master.cf, line 1: bad service address: \"nosuchservicename\": unknown port" },
	{ "127.0.0.1:70000 inet n - n - - smtpd\n", "unknown port" },
	{ "::1:25 inet n - n - - smtpd\n", "write IPv6 addresses as [address]:port" },
	{ "[::1]25 inet n - n - - smtpd\n", "expected [ipv6-address]:port" },
	{ "smtp inet n - n - - smtpd\n  -o\n", "master.cf, line 1: -o without name=value" },
	{ "smtp inet n - n - - smtpd -o novalue\n", "bad -o option: \"novalue\"" },
	{ "smtp inet n - n - - smtpd -o bad.name=1\n", "bad -o option" },
	{ "smtp inet n - n - - smtpd -o { a = b\n", "missing '}'" },
	{ "qmgr unix n - n 300 1 qmgr\nsmtp inet n - n - - smtpd -o {a=b}x\n",
	  "master.cf, line 2: text after '}'" },
};

static void
test_master_errors(void **state)
{
	for (size_t i = 0; i < sizeof(master_errors) / sizeof(master_errors[0]); i++) {
		struct errbuf err;
		struct config *c = parse("a = 1\n", NULL, &err);

		assert_non_null(c);
		/* a failed parse keeps what was there */
		assert_int_equal(config_parse_master(c, "smtp inet n - n - - smtpd\n",
						     "m0", NULL, &err), 0);
		assert_int_equal(config_parse_master(c, master_errors[i].text,
						     "master.cf", NULL, &err), -1);
		if (strstr(errbuf_str(&err), master_errors[i].error) == NULL)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i,
				 errbuf_str(&err), master_errors[i].error);
		assert_int_equal(config_master(c)->n, 1);
		assert_string_equal(config_master(c)->v[0].file, "m0");
		config_free(&c);
	}
}

static void
test_master_override_findings(void **state)
{
	struct strlist w;
	struct errbuf err;
	struct config *c = parse("my_restr = permit\n", NULL, &err);
	bool unknown = false;

	strlist_init(&w);
	assert_int_equal(config_parse_master(c,
	    "smtp inet n - n - - smtpd\n"
	    "  -o smtpd_client_restrictions=$my_restr\n"
	    "  -o mystery_knob=1\n"
	    "  -o biff=no\n", "master.cf", &w, &err), 0);
	for (size_t i = 0; i < w.n; i++) {
		if (strcmp(w.v[i], "warning: master.cf, line 1: unknown parameter "
			   "in -o override: mystery_knob") == 0)
			unknown = true;
		assert_null(strstr(w.v[i], "my_restr"));
	}
	assert_true(unknown);
	strlist_free(&w);
	config_free(&c);
}

/* ---- per-listener copies ---- */

static void
test_overrides(void **state)
{
	struct strlist ov, names;
	struct errbuf err;
	struct config *c, *o, *s;
	const struct master_cf *m;
	const char *file;
	int line;

	c = parse("myhostname = h.test\nsmtpd_banner = base\nx_var = X\n", NULL, &err);
	assert_non_null(c);
	strlist_init(&ov);
	strlist_add(&ov, "smtpd_banner=$myhostname over");
	strlist_add(&ov, "syslog_name = postfix/sub");
	strlist_add(&ov, "smtpd_banner=$myhostname twice");
	o = config_with_overrides(c, &ov, &err);
	assert_non_null(o);
	assert_string_equal(config_get(o, "smtpd_banner"), "h.test twice");
	assert_string_equal(config_get(o, "syslog_name"), "postfix/sub");
	assert_string_equal(config_get(o, "x_var"), "X");
	assert_string_equal(config_get(c, "smtpd_banner"), "base");
	assert_string_equal(config_get(c, "syslog_name"), "facteur");
	strlist_init(&names);
	config_names_set(o, &names);
	assert_int_equal(names.n, 4);
	assert_string_equal(names.v[0], "myhostname");
	assert_string_equal(names.v[1], "smtpd_banner");
	assert_string_equal(names.v[2], "syslog_name");
	assert_string_equal(names.v[3], "x_var");
	strlist_free(&names);
	config_free(&o);

	/* a bad override */
	strlist_free(&ov);
	strlist_add(&ov, "no equals sign");
	assert_null(config_with_overrides(c, &ov, &err));
	assert_non_null(strstr(errbuf_str(&err), "bad -o override"));
	strlist_free(&ov);

	/* config_with_service: where points into master.cf */
	assert_int_equal(config_parse_master(c, "smtp inet n - n - - smtpd\n"
	    "sub inet n - n - - smtpd\n  -o smtpd_helo_required=yes\n",
	    "/etc/facteur/master.cf", NULL, &err) < 0 ? -1 : 0, -1);
	assert_int_equal(config_parse_master(c, "smtp inet n - n - - smtpd\n"
	    "587 inet n - n - - smtpd\n  -o smtpd_helo_required=yes\n",
	    "/etc/facteur/master.cf", NULL, &err), 0);
	m = config_master(c);
	assert_int_equal(m->n, 2);
	s = config_with_service(c, &m->v[1], &err);
	assert_non_null(s);
	assert_string_equal(config_get(s, "smtpd_helo_required"), "yes");
	assert_true(config_where(s, "smtpd_helo_required", &file, &line));
	assert_string_equal(file, "/etc/facteur/master.cf");
	assert_int_equal(line, 2);
	assert_int_equal(config_master(s)->n, 2);
	assert_true(config_where(s, "myhostname", &file, &line));
	assert_string_equal(file, "main.cf");
	config_free(&s);
	config_free(&c);
}

/* ---- config_load from a directory ---- */

static char *
write_file(const char *dir, const char *name, const char *text, size_t len)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	fclose(fp);
	return path;
}

static void
test_load(void **state)
{
	char dir[] = "/tmp/facteur-config-test.XXXXXX";
	struct strlist w;
	struct errbuf err;
	struct config *c;
	char *p1, *p2;

	assert_non_null(mkdtemp(dir));
	strlist_init(&w);

	/* no main.cf */
	assert_null(config_load(dir, &w, &err));
	assert_non_null(strstr(errbuf_str(&err), "main.cf: cannot open"));

	/* main.cf only: the default smtp listener */
	p1 = write_file(dir, "main.cf", "myhostname = a.test\nzzz = 1\n", 28);
	c = config_load(dir, &w, &err);
	assert_non_null(c);
	assert_string_equal(config_dir(c), dir);
	assert_int_equal(config_master(c)->n, 1);
	assert_string_equal(config_master(c)->v[0].port, "25");
	assert_string_equal(config_master(c)->v[0].command, "smtpd");
	assert_int_equal(w.n, 1);
	assert_non_null(strstr(w.v[0], "main.cf, line 2: unknown parameter: zzz"));
	config_free(&c);
	strlist_free(&w);

	/* an -o override referencing zzz makes it used */
	p2 = write_file(dir, "master.cf", "2525 inet n - n - - smtpd -o x=$zzz\n"
			"qmgr unix n - n 300 1 qmgr\n", 63);
	c = config_load(dir, &w, &err);
	assert_non_null(c);
	assert_int_equal(config_master(c)->n, 1);
	assert_string_equal(config_master(c)->v[0].port, "2525");
	for (size_t i = 0; i < w.n; i++)
		assert_null(strstr(w.v[i], "zzz"));
	assert_true(w.n >= 1);
	config_free(&c);
	strlist_free(&w);

	/* a NUL byte is refused */
	free(p2);
	p2 = write_file(dir, "master.cf", "smtp inet\0", 10);
	assert_null(config_load(dir, &w, &err));
	assert_non_null(strstr(errbuf_str(&err), "NUL byte"));
	strlist_free(&w);

	unlink(p1);
	unlink(p2);
	free(p1);
	free(p2);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_where),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_expand_free_text),
		cmocka_unit_test(test_expand_errors),
		cmocka_unit_test(test_expand_limits),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_findings),
		cmocka_unit_test(test_trickle),
		cmocka_unit_test(test_master),
		cmocka_unit_test(test_master_errors),
		cmocka_unit_test(test_master_spawn),
		cmocka_unit_test(test_master_override_findings),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
