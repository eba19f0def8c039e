/*
 * rewrite_test.c - address rewriting (core/rewrite.c): masquerade_domains'
 * first-match rule and "!" exceptions, *_classes parsing, envelope
 * canonical lookups (user@domain, @domain, bare user for local domains,
 * recursion, +ext propagation, lookup failure), masquerade_exceptions, and
 * header rewriting that touches only addr-specs (display names, comments,
 * groups, folding, quoting kept), in the local and remote contexts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/params.h"
#include "core/rewrite.h"

static void
masq_is(const char *domains, const char *addr, const char *want)
{
	char *got = rewrite_masquerade(domains, addr);

	if (want == NULL) {
		if (got != NULL)
			fail_msg("%s with \"%s\": got %s, want unchanged", addr,
				 domains, got);
	} else {
		if (got == NULL)
			fail_msg("%s with \"%s\": unchanged, want %s", addr,
				 domains, want);
		assert_string_equal(got, want);
	}
	free(got);
}

static void
test_masquerade(void **state)
{
	const char *seed = "foo.example.com example.com";

	(void)state;
	masq_is(seed, "u@host.foo.example.com", "u@foo.example.com");
	masq_is(seed, "u@foo.example.com", NULL);	/* first match: itself */
	masq_is(seed, "u@bar.example.com", "u@example.com");
	masq_is(seed, "u@a.b.example.com", "u@example.com");
	masq_is(seed, "u@example.com", NULL);
	masq_is(seed, "u@notexample.com", NULL);	/* not a subdomain */
	masq_is(seed, "u@HOST.Example.COM", "u@example.com");
	masq_is(seed, "u@[192.0.2.1]", NULL);
	masq_is(seed, "nodomain", NULL);
	masq_is("!sub.example.com, example.com", "a@x.sub.example.com", NULL);
	masq_is("!sub.example.com, example.com", "a@sub.example.com", NULL);
	masq_is("!sub.example.com, example.com", "a@mail.example.com",
		"a@example.com");
	masq_is("", "a@mail.example.com", NULL);
	masq_is("!, example.com", "a@mail.example.com", "a@example.com");
}

static void
test_classes(void **state)
{
	struct errbuf err;
	unsigned bits;

	(void)state;
	errbuf_clear(&err);
	assert_int_equal(rewrite_parse_classes("x", "envelope_sender, "
					       "header_recipient", &bits, &err), 0);
	assert_int_equal(bits, REWRITE_ENV_SENDER | REWRITE_HDR_RCPT);
	assert_int_equal(rewrite_parse_classes("x", "", &bits, &err), 0);
	assert_int_equal(bits, 0);
	assert_int_equal(rewrite_parse_classes("canonical_classes",
					       "envelope_sender header_from",
					       &bits, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "canonical_classes: unknown "
			       "address class \"header_from\""));
}

static bool
local_domain(void *arg, const char *d)
{
	(void)arg;
	return strcmp(d, "mx.example.net") == 0;
}

static void
settings(struct settings *s)
{
	memset(s, 0, sizeof(*s));
	s->myorigin = "example.net";
	s->mydomain = "example.net";
	s->recipient_delimiter = "+";
	s->append_at_myorigin = true;
	s->inet_interfaces = "all";
	s->local_header_rewrite_clients = "permit_inet_interfaces";
	s->propagate_unmatched_extensions = "canonical, virtual";
	s->canonical_classes = "envelope_sender, envelope_recipient, "
			       "header_sender, header_recipient";
	s->sender_canonical_classes = "envelope_sender, header_sender";
	s->recipient_canonical_classes = "envelope_recipient, header_recipient";
	s->masquerade_classes = "envelope_sender, header_sender, header_recipient";
	s->canonical_maps =
	    "inline:{ fred@thebible.linuxfred.lan=frederic.m@free.fr, "
	    "@old.test=@new.test, joe@example.net=jo@x.test, "
	    "a@chain.test=b@chain.test, b@chain.test=c@chain.test, "
	    "self@x.test=self@x.test, "
	    "{ multi@x.test = first@x.test, second@x.test }, "
	    "root=admin@example.net }";
	s->sender_canonical_maps = "inline:{ boss@example.net=bob@example.net }";
}

static struct rewrite_ctx *
ctx(struct settings *s)
{
	struct errbuf err;
	struct rewrite_ctx *c;

	errbuf_clear(&err);
	c = rewrite_ctx_new(s, local_domain, NULL, &err);
	if (c == NULL)
		fail_msg("rewrite_ctx_new: %s", errbuf_str(&err));
	return c;
}

static void
env_is(struct rewrite_ctx *c, unsigned cls, const char *in, const char *want)
{
	struct errbuf err;
	char *out = NULL;

	errbuf_clear(&err);
	if (rewrite_envelope(c, cls, in, &out, &err) < 0)
		fail_msg("%s: %s", in, errbuf_str(&err));
	assert_string_equal(out, want);
	free(out);
}

static void
test_envelope(void **state)
{
	struct settings s;
	struct rewrite_ctx *c;
	struct errbuf err;
	char *out = NULL;

	(void)state;
	settings(&s);
	c = ctx(&s);
	env_is(c, REWRITE_ENV_SENDER, "fred@thebible.linuxfred.lan",
	       "frederic.m@free.fr");
	env_is(c, REWRITE_ENV_RCPT, "Fred@THEBIBLE.linuxfred.lan",
	       "frederic.m@free.fr");
	env_is(c, REWRITE_ENV_RCPT, "anyone@old.test", "anyone@new.test");
	env_is(c, REWRITE_ENV_RCPT, "joe+tag@example.net", "jo+tag@x.test");
	env_is(c, REWRITE_ENV_RCPT, "a@chain.test", "c@chain.test");
	env_is(c, REWRITE_ENV_RCPT, "self@x.test", "self@x.test");
	env_is(c, REWRITE_ENV_RCPT, "multi@x.test", "first@x.test");
	/* bare user keys only for local domains */
	env_is(c, REWRITE_ENV_RCPT, "root@mx.example.net", "admin@example.net");
	env_is(c, REWRITE_ENV_RCPT, "root@elsewhere.test", "root@elsewhere.test");
	/* sender_canonical_maps is for senders only */
	env_is(c, REWRITE_ENV_SENDER, "boss@example.net", "bob@example.net");
	env_is(c, REWRITE_ENV_RCPT, "boss@example.net", "boss@example.net");
	/* append_at_myorigin; the null sender stays */
	env_is(c, REWRITE_ENV_SENDER, "user", "user@example.net");
	env_is(c, REWRITE_ENV_SENDER, "", "");
	rewrite_ctx_free(&c);

	/* masquerading with an exception, append_dot_mydomain */
	s.masquerade_domains = "example.net";
	s.masquerade_exceptions = "root, inline:{ mailer-daemon=x }";
	s.append_dot_mydomain = true;
	c = ctx(&s);
	env_is(c, REWRITE_ENV_SENDER, "u@host.example.net", "u@example.net");
	env_is(c, REWRITE_ENV_SENDER, "root@host.example.net",
	       "root@host.example.net");
	env_is(c, REWRITE_ENV_SENDER, "Mailer-Daemon@host.example.net",
	       "Mailer-Daemon@host.example.net");
	/* envelope_recipient is not in the default masquerade_classes */
	env_is(c, REWRITE_ENV_RCPT, "u@host.example.net", "u@host.example.net");
	env_is(c, REWRITE_ENV_RCPT, "u@host", "u@host.example.net");
	rewrite_ctx_free(&c);

	/* a map that cannot answer */
	s.sender_canonical_maps = "fail:down";
	c = ctx(&s);
	errbuf_clear(&err);
	assert_int_equal(rewrite_envelope(c, REWRITE_ENV_SENDER, "a@b.test",
					  &out, &err), -1);
	assert_null(out);
	assert_non_null(strstr(errbuf_str(&err), "fail:down"));
	env_is(c, REWRITE_ENV_RCPT, "a@b.test", "a@b.test");
	rewrite_ctx_free(&c);
}

static void
hdr_is(struct rewrite_ctx *c, enum rewrite_hdr_mode mode, const char *in,
       const char *want)
{
	struct buf out;
	struct errbuf err;
	bool changed = false;

	buf_init(&out, 0);
	errbuf_clear(&err);
	if (rewrite_headers(c, mode, in, strlen(in), &out, &changed, &err) < 0)
		fail_msg("%s", errbuf_str(&err));
	if (want == NULL) {
		assert_false(changed);
		assert_int_equal(out.len, 0);
	} else {
		assert_true(changed);
		assert_string_equal(buf_cstr(&out), want);
	}
	buf_free(&out);
}

static void
test_headers(void **state)
{
	struct settings s;
	struct rewrite_ctx *c;

	(void)state;
	settings(&s);
	s.remote_header_rewrite_domain = "domain.invalid";
	c = ctx(&s);
	hdr_is(c, REWRITE_HDR_LOCAL,
	       "From: \"Fred, F.\" <fred@thebible.linuxfred.lan> (home)\r\n"
	       "To: a@old.test,\r\n\tjoe@example.net (Joe, the \"one\"),\r\n"
	       " friends: x@old.test, y@keep.test;, <>\r\n"
	       "Subject: fred@thebible.linuxfred.lan\r\n"
	       "Cc: root\r\n"
	       "\r\n"
	       "To: body@old.test\r\n",
	       "From: \"Fred, F.\" <frederic.m@free.fr> (home)\r\n"
	       "To: a@new.test,\r\n\tjo@x.test (Joe, the \"one\"),\r\n"
	       " friends: x@new.test, y@keep.test;, <>\r\n"
	       "Subject: fred@thebible.linuxfred.lan\r\n"
	       "Cc: root@example.net\r\n"
	       "\r\n"
	       "To: body@old.test\r\n");
	/* nothing to do: no copy */
	hdr_is(c, REWRITE_HDR_LOCAL,
	       "From: a@keep.test\nTo: \"b c\"@keep.test\n\nbody\n", NULL);
	/* no header rewriting for remote clients without a domain */
	hdr_is(c, REWRITE_HDR_NONE, "From: fred@thebible.linuxfred.lan\n\n",
	       NULL);
	/* remote: incomplete addresses get remote_header_rewrite_domain */
	hdr_is(c, REWRITE_HDR_REMOTE, "Reply-To: someone\nResent-To: x@old.test\n\n",
	       "Reply-To: someone@domain.invalid\nResent-To: x@new.test\n\n");
	/* blanks before the colon still make a header (Postfix's is_header) */
	hdr_is(c, REWRITE_HDR_LOCAL, "To : a@old.test\n\n",
	       "To : a@new.test\n\n");
	hdr_is(c, REWRITE_HDR_LOCAL, "X-To: a@old.test\nTo-X: a@old.test\n\n",
	       NULL);
	/* a quoted local part comes back quoted; a route stays */
	hdr_is(c, REWRITE_HDR_LOCAL, "Sender: <@relay.test:a@old.test>\n"
	       "Errors-To: \"x y\"@old.test\n\n",
	       "Sender: <@relay.test:a@new.test>\n"
	       "Errors-To: \"x y\"@new.test\n\n");
	rewrite_ctx_free(&c);
}

static void
test_bad_clients(void **state)
{
	struct settings s;
	struct errbuf err;

	(void)state;
	settings(&s);
	s.local_header_rewrite_clients = "permit_mynetworks, permit_everyone";
	errbuf_clear(&err);
	assert_null(rewrite_ctx_new(&s, NULL, NULL, &err));
	assert_non_null(strstr(errbuf_str(&err), "\"permit_everyone\""));
	s.local_header_rewrite_clients = "check_address_map";
	assert_null(rewrite_ctx_new(&s, NULL, NULL, &err));
	s.local_header_rewrite_clients = "static:all";
	{
		struct rewrite_ctx *c = rewrite_ctx_new(&s, NULL, NULL, &err);

		assert_non_null(c);
		assert_int_equal(rewrite_hdr_mode(c, "192.0.2.9", false, false),
				 REWRITE_HDR_LOCAL);
		rewrite_ctx_free(&c);
	}
	s.local_header_rewrite_clients = "permit_mynetworks";
	{
		struct rewrite_ctx *c = rewrite_ctx_new(&s, NULL, NULL, &err);

		assert_non_null(c);
		assert_int_equal(rewrite_hdr_mode(c, "192.0.2.9", false, false),
				 REWRITE_HDR_NONE);
		assert_int_equal(rewrite_hdr_mode(c, "192.0.2.9", true, false),
				 REWRITE_HDR_LOCAL);
		assert_int_equal(rewrite_hdr_mode(c, NULL, false, false),
				 REWRITE_HDR_LOCAL);
		rewrite_ctx_free(&c);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_masquerade),
		cmocka_unit_test(test_classes),
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_bad_clients),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
