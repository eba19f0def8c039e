/*
 * transport_test.c - transport(5) entries: smtp/relay next hops, the lmtp:
 * forms (unix:/path, inet:host:port, [host]:port, host:port, default port
 * 24, never MX), error:/discard: texts and malformed next hops; names
 * resolved through master.cf services (a service wins over a built-in
 * name, a pipe service's next hop defaults to the recipient's domain).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "delivery/transport.h"

struct tcase {
	const char         *spec;
	int                 rc;
	enum transport_kind kind;
	const char         *host;
	int                 port;
	bool                mx, unix_sock;
};

static const struct tcase cases[] = {
	{ "smtp:[10.0.0.1]:2525", 0, TRANSPORT_SMTP, "10.0.0.1", 2525, false, false },
	{ "smtp:example.com", 0, TRANSPORT_SMTP, "example.com", 0, true, false },
	{ "relay:", 0, TRANSPORT_SMTP, "", 0, true, false },
	{ "lmtp:unix:/run/dovecot/lmtp", 0, TRANSPORT_LMTP, "/run/dovecot/lmtp", 0,
	  false, true },
	{ "lmtp:unix:private/dovecot-lmtp", 0, TRANSPORT_LMTP,
	  "private/dovecot-lmtp", 0, false, true },
	{ "lmtp:inet:127.0.0.1:2424", 0, TRANSPORT_LMTP, "127.0.0.1", 2424, false,
	  false },
	{ "lmtp:inet:mail.example.com", 0, TRANSPORT_LMTP, "mail.example.com", 24,
	  false, false },
	{ "lmtp:[::1]:24", 0, TRANSPORT_LMTP, "::1", 24, false, false },
	{ "lmtp:[ipv6:::1]:2424", 0, TRANSPORT_LMTP, "::1", 2424, false, false },
	{ "lmtp:[127.0.0.1]", 0, TRANSPORT_LMTP, "127.0.0.1", 24, false, false },
	{ "lmtp:mail.example.com:10024", 0, TRANSPORT_LMTP, "mail.example.com",
	  10024, false, false },
	{ "lmtp:", 0, TRANSPORT_LMTP, "", 0, false, false },
	{ "lmtp:unix:", -1, 0, NULL, 0, false, false },
	{ "lmtp:unix:/a path", -1, 0, NULL, 0, false, false },
	{ "lmtp:unix:/" "0123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789", -1, 0, NULL, 0, false, false },
	{ "lmtp:inet:host:0", -1, 0, NULL, 0, false, false },
	{ "lmtp:[127.0.0.1:24", -1, 0, NULL, 0, false, false },
	{ "lmtp:inet:host:x", -1, 0, NULL, 0, false, false },
	{ "smtp:[host]x", -1, 0, NULL, 0, false, false },
	{ "error:5.1.1 no such user", 0, TRANSPORT_ERROR, "", 0, true, false },
	{ "discard:", 0, TRANSPORT_DISCARD, "", 0, true, false },
	{ "virtual:", 0, TRANSPORT_VIRTUAL, "", 0, true, false },
	{ "uucp:gateway", 0, TRANSPORT_OTHER, "", 0, true, false },
};

static void
test_parse(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *c = &cases[i];
		struct transport t;
		struct errbuf err;
		int rc;

		errbuf_clear(&err);
		rc = transport_parse(c->spec, &t, &err);
		if (rc != c->rc)
			fail_msg("%s: rc %d, expected %d (%s)", c->spec, rc, c->rc,
				 errbuf_str(&err));
		if (rc < 0) {
			assert_true(errbuf_str(&err)[0] != '\0');
			continue;
		}
		if (t.kind != c->kind || strcmp(t.host, c->host) != 0
		    || t.port != c->port || t.mx != c->mx
		    || t.unix_sock != c->unix_sock)
			fail_msg("%s: kind %d host \"%s\" port %d mx %d unix %d",
				 c->spec, (int)t.kind, t.host, t.port, (int)t.mx,
				 (int)t.unix_sock);
	}
}

static void
test_find_default(void **state)
{
	struct transport_cfg cfg = {
		.maps = NULL,
		.virtual_transport = "lmtp:unix:/run/dovecot/lmtp",
		.relay_transport = "relay",
		.default_transport = "smtp",
		.relayhost = "[smarthost.example]:587",
	};
	struct transport t;
	struct errbuf err;

	errbuf_clear(&err);
	assert_int_equal(transport_find(&cfg, "a@example.test",
					RESOLVE_CLASS_VIRTUAL, &t, &err), 0);
	assert_int_equal(t.kind, TRANSPORT_LMTP);
	assert_true(t.unix_sock);
	assert_string_equal(t.host, "/run/dovecot/lmtp");
	assert_int_equal(transport_find(&cfg, "b@far.example",
					RESOLVE_CLASS_DEFAULT, &t, &err), 0);
	assert_int_equal(t.kind, TRANSPORT_SMTP);
	assert_string_equal(t.host, "smarthost.example");
	assert_int_equal(t.port, 587);
	assert_false(t.mx);
	cfg.virtual_transport = "lmtp:unix:";
	assert_int_equal(transport_find(&cfg, "a@example.test",
					RESOLVE_CLASS_VIRTUAL, &t, &err), -2);
}

static void
test_services(void **state)
{
	static const struct transport_svc svcs[] = {
		{ "smtp-amavis", TRANSPORT_SMTP, 2, NULL },
		{ "dovecot", TRANSPORT_PIPE, 0, NULL },
		{ "smtp", TRANSPORT_SMTP, 0, NULL },
		{ "relay", TRANSPORT_PIPE, 0, NULL },
	};
	struct transport_cfg cfg = {
		.svcs = svcs, .nsvcs = 4,
		.virtual_transport = "dovecot:", .default_transport = "smtp",
		.relay_transport = "relay",
	};
	struct transport t;
	struct errbuf err;

	errbuf_clear(&err);
	assert_int_equal(transport_parse_svc(svcs, 4, "smtp-amavis:[127.0.0.1]:10024",
					     &t, &err), 0);
	assert_int_equal(t.kind, TRANSPORT_SMTP);
	assert_int_equal(t.svc, 0);
	assert_string_equal(t.name, "smtp-amavis");
	assert_string_equal(t.host, "127.0.0.1");
	assert_int_equal(t.port, 10024);
	assert_false(t.mx);
	/* built-in names keep working, and as services */
	assert_int_equal(transport_parse_svc(svcs, 4, "lmtp:unix:/x", &t, &err), 0);
	assert_int_equal(t.kind, TRANSPORT_LMTP);
	assert_int_equal(t.svc, -1);
	assert_int_equal(transport_parse_svc(svcs, 4, "smtp:", &t, &err), 0);
	assert_int_equal(t.svc, 2);
	/* a master.cf definition wins over the built-in name */
	assert_int_equal(transport_parse_svc(svcs, 4, "relay:x", &t, &err), 0);
	assert_int_equal(t.kind, TRANSPORT_PIPE);
	assert_string_equal(t.text, "x");
	assert_int_equal(transport_parse_svc(svcs, 4, "nosuch:", &t, &err), 0);
	assert_int_equal(t.kind, TRANSPORT_OTHER);
	/* without services, a pipe name is unknown */
	assert_int_equal(transport_parse("dovecot:", &t, &err), 0);
	assert_int_equal(t.kind, TRANSPORT_OTHER);
	/* ${nexthop} of a pipe without one: the recipient's domain */
	assert_int_equal(transport_find(&cfg, "a@example.test",
					RESOLVE_CLASS_VIRTUAL, &t, &err), 0);
	assert_int_equal(t.kind, TRANSPORT_PIPE);
	assert_int_equal(t.svc, 1);
	assert_string_equal(t.text, "example.test");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_services),
		cmocka_unit_test(test_find_default),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
