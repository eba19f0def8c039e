/*
 * params_test.c - the parameter table (sorted, defaults valid for their
 * types), the typed value parsers, and settings_load with its errors that
 * name the file and line of a bad value. Table-driven.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/params.h"

/* ---- the table ---- */

static void
test_table(void **state)
{
	const struct param_def *all = params_all(), *prev = NULL;
	size_t n = 0;

	for (const struct param_def *d = all; d->name; d++, n++) {
		if (prev && strcmp(prev->name, d->name) >= 0)
			fail_msg("table not sorted/unique at %s", d->name);
		assert_ptr_equal(params_find(d->name), d);
		assert_non_null(d->def);
		if (d->type == PARAM_TIME)
			assert_non_null(strchr("smhdw", d->def_unit));
		prev = d;
	}
	assert_true(n > 300);
	assert_null(params_find("no_such_parameter"));
	assert_null(params_find(""));
	assert_null(params_find("MYHOSTNAME"));
}

static const struct {
	const char *name;
	unsigned flags;
	enum param_type type;
	const char *def;	/* NULL: not checked */
} known[] = {
	{ "mail_name", 0, PARAM_STR, "facteur" },
	{ "syslog_name", 0, PARAM_STR, "facteur" },
	{ "mail_owner", 0, PARAM_STR, "vmail" },
	{ "queue_directory", 0, PARAM_STR, "/var/spool/facteur" },
	{ "virtual_mailbox_base", 0, PARAM_STR, "" },
	{ "default_process_limit", 0, PARAM_INT, "10000" },
	{ "message_size_limit", 0, PARAM_SIZE, "10240000" },
	{ "smtpd_timeout", 0, PARAM_TIME, "300s" },
	{ "smtpd_helo_required", 0, PARAM_BOOL, "no" },
	{ "mynetworks", 0, PARAM_STR, "127.0.0.0/8 [::1]/128" },
	{ "smtpd_relay_restrictions", 0, PARAM_STR,
	  "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination" },
	{ "relay_domains", 0, PARAM_STR, "" },
	{ "smtpd_tls_cert_file", 0, PARAM_STR, "" },
	{ "smtpd_tls_CAfile", 0, PARAM_STR, NULL },
	{ "smtpd_authorized_xforward_hosts", PARAM_F_LATER, PARAM_STR, NULL },
	{ "smtpd_sasl_auth_enable", 0, PARAM_BOOL, "no" },
	{ "postscreen_watchdog_timeout", PARAM_F_LATER, PARAM_STR, "10s" },
	{ "sieve_before", 0, PARAM_STR, "" },
	{ "smtp_tls_CApath", 0, PARAM_STR, "" },
	{ "smtp_tls_policy_maps", 0, PARAM_STR, "" },
	{ "compatibility_level", PARAM_F_INTERNAL, PARAM_STR, NULL },
	{ "biff", PARAM_F_INTERNAL, PARAM_STR, NULL },
	{ "command_directory", PARAM_F_INTERNAL, PARAM_STR, NULL },
};

static void
test_known(void **state)
{
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		const struct param_def *d = params_find(known[i].name);

		if (d == NULL)
			fail_msg("%s: not found", known[i].name);
		assert_int_equal(d->flags, known[i].flags);
		assert_int_equal(d->type, known[i].type);
		if (known[i].def)
			assert_string_equal(d->def, known[i].def);
		if (known[i].flags == 0)
			assert_true(d->offset != PARAM_NO_FIELD);
	}
	/* the computed host name default is fully qualified */
	assert_non_null(strchr(params_find("myhostname")->def, '.'));
}

/* ---- value parsers ---- */

static const struct {
	const char *v;
	int rc;
	bool r;
} bool_cases[] = {
	{ "yes", 0, true }, { "YES", 0, true }, { "True", 0, true }, { "1", 0, true },
	{ "no", 0, false }, { "No", 0, false }, { "false", 0, false }, { "0", 0, false },
	{ "", -1, false }, { "y", -1, false }, { "maybe", -1, false },
	{ "yes ", -1, false }, { "2", -1, false },
};

static void
test_bool(void **state)
{
	for (size_t i = 0; i < sizeof(bool_cases) / sizeof(bool_cases[0]); i++) {
		bool r = !bool_cases[i].r;

		assert_int_equal(params_parse_bool(bool_cases[i].v, &r), bool_cases[i].rc);
		if (bool_cases[i].rc == 0)
			assert_int_equal(r, bool_cases[i].r);
	}
}

static const struct {
	const char *v;
	char unit;
	int rc;
	long long secs;
} time_cases[] = {
	{ "300", 's', 0, 300 }, { "300s", 'd', 0, 300 }, { "5m", 's', 0, 300 },
	{ "2h", 's', 0, 7200 }, { "5d", 's', 0, 432000 }, { "1w", 's', 0, 604800 },
	{ "5", 'd', 0, 432000 }, { "0", 'h', 0, 0 }, { "3H", 's', 0, 10800 },
	{ "", 's', -1, 0 }, { "s", 's', -1, 0 }, { "10x", 's', -1, 0 },
	{ "-5s", 's', -1, 0 }, { "1h30m", 's', -1, 0 }, { " 5s", 's', -1, 0 },
	{ "5 s", 's', -1, 0 }, { "99999999999999999999", 's', -1, 0 },
	{ "9223372036854775807w", 's', -1, 0 }, { "9223372036854775807", 's', 0,
	  LLONG_MAX },
};

static void
test_time(void **state)
{
	for (size_t i = 0; i < sizeof(time_cases) / sizeof(time_cases[0]); i++) {
		long long r = -1;
		int rc = params_parse_time(time_cases[i].v, time_cases[i].unit, &r);

		if (rc != time_cases[i].rc)
			fail_msg("\"%s\": rc %d", time_cases[i].v, rc);
		if (rc == 0)
			assert_int_equal(r, time_cases[i].secs);
	}
}

static const struct {
	const char *v;
	int rc;
	long long r;
} int_cases[] = {
	{ "0", 0, 0 }, { "42", 0, 42 }, { "-7", 0, -7 }, { "007", 0, 7 },
	{ "9223372036854775807", 0, LLONG_MAX },
	{ "-9223372036854775808", 0, LLONG_MIN },
	{ "9223372036854775808", -1, 0 }, { "-9223372036854775809", -1, 0 },
	{ "", -1, 0 }, { "-", -1, 0 }, { "+1", -1, 0 }, { "1k", -1, 0 },
	{ " 1", -1, 0 }, { "1 ", -1, 0 }, { "0x10", -1, 0 },
};

static void
test_int(void **state)
{
	for (size_t i = 0; i < sizeof(int_cases) / sizeof(int_cases[0]); i++) {
		long long r = 12345;
		int rc = params_parse_int(int_cases[i].v, &r);

		if (rc != int_cases[i].rc)
			fail_msg("\"%s\": rc %d", int_cases[i].v, rc);
		if (rc == 0)
			assert_true(r == int_cases[i].r);
	}
}

/* ---- settings_load ---- */

static struct config *
parse(const char *text)
{
	struct errbuf err;
	struct config *c = config_parse_main(text, "/etc/facteur/main.cf", NULL, &err);

	if (c == NULL)
		fail_msg("parse: %s", errbuf_str(&err));
	return c;
}

static void
test_defaults(void **state)
{
	struct config *c = parse("myhostname = mx.example.test\n");
	struct settings s;
	struct errbuf err;

	memset(&s, 0, sizeof(s));
	assert_int_equal(settings_load(&s, c, &err), 0);
	assert_string_equal(s.myhostname, "mx.example.test");
	assert_string_equal(s.mydomain, "example.test");
	assert_string_equal(s.myorigin, "mx.example.test");
	assert_string_equal(s.mydestination,
			    "mx.example.test, localhost.example.test, localhost");
	assert_string_equal(s.smtpd_banner, "mx.example.test ESMTP facteur");
	assert_string_equal(s.mail_name, "facteur");
	assert_string_equal(s.syslog_name, "facteur");
	assert_string_equal(s.mail_owner, "vmail");
	assert_string_equal(s.inet_interfaces, "all");
	assert_string_equal(s.virtual_mailbox_domains, "");
	assert_string_equal(s.queue_directory, "/var/spool/facteur");
	assert_true(s.message_size_limit == 10240000);
	assert_true(s.header_size_limit == 102400);
	assert_true(s.line_length_limit == 2048);
	assert_true(s.smtpd_recipient_limit == 1000);
	assert_true(s.smtpd_timeout == 300);
	assert_true(s.smtpd_error_sleep_time == 1);
	assert_true(s.maximal_queue_lifetime == 5 * 86400);
	assert_true(s.bounce_queue_lifetime == 5 * 86400);
	assert_true(s.delay_warning_time == 0);
	assert_true(s.minimal_backoff_time == 300);
	assert_true(s.maximal_backoff_time == 4000);
	assert_true(s.default_process_limit == 10000);
	assert_true(s.facteur_worker_threads == 16);
	assert_true(s.virtual_minimum_uid == 100);
	assert_false(s.smtpd_helo_required);
	assert_true(s.smtpd_delay_reject);
	assert_true(s.smtpd_peername_lookup);
	settings_free(&s);
	assert_null(s.myhostname);
	config_free(&c);
}

static void
test_values_set(void **state)
{
	struct config *c = parse(
	    "message_size_limit = 52428800\n"
	    "smtpd_timeout = 5m\n"
	    "maximal_queue_lifetime = 2\n"		/* default unit: days */
	    "delay_warning_time = 4\n"			/* default unit: hours */
	    "smtpd_helo_required = YES\n"
	    "disable_vrfy_command = true\n"
	    "virtual_mailbox_maps = texthash:/etc/facteur/vmailbox\n"
	    "recipient_delimiter = +\n");
	struct settings s;
	struct errbuf err;

	memset(&s, 0, sizeof(s));
	assert_int_equal(settings_load(&s, c, &err), 0);
	assert_true(s.message_size_limit == 52428800);
	assert_true(s.smtpd_timeout == 300);
	assert_true(s.maximal_queue_lifetime == 2 * 86400);
	assert_true(s.delay_warning_time == 4 * 3600);
	assert_true(s.smtpd_helo_required);
	assert_true(s.disable_vrfy_command);
	assert_string_equal(s.virtual_mailbox_domains, "texthash:/etc/facteur/vmailbox");
	assert_string_equal(s.recipient_delimiter, "+");
	/* loading twice into the same struct does not leak (ASan checks) */
	assert_int_equal(settings_load(&s, c, &err), 0);
	settings_free(&s);
	config_free(&c);
}

static const struct {
	const char *text, *error;
} bad_cases[] = {
	{ "a = 1\nmessage_size_limit = 10x\n",
	  "/etc/facteur/main.cf, line 2: bad value for message_size_limit: \"10x\" "
	  "(expected a size in bytes)" },
	{ "smtpd_timeout = 5 minutes\n",
	  "/etc/facteur/main.cf, line 1: bad value for smtpd_timeout: \"5 minutes\" "
	  "(expected a time: a number with an optional unit s, m, h, d or w)" },
	{ "smtpd_timeout = 0\n",
	  "/etc/facteur/main.cf, line 1: bad value for smtpd_timeout: \"0\" "
	  "(expected a time: a number with an optional unit s, m, h, d or w, at "
	  "least 1 seconds)" },
	{ "smtpd_helo_required = maybe\n",
	  "/etc/facteur/main.cf, line 1: bad value for smtpd_helo_required: "
	  "\"maybe\" (expected yes or no)" },
	{ "\n\nsmtpd_recipient_limit = 0\n",
	  "/etc/facteur/main.cf, line 3: bad value for smtpd_recipient_limit: \"0\" "
	  "(expected an integer, at least 1)" },
	{ "hopcount_limit = 99999999999999999999999\n",
	  "/etc/facteur/main.cf, line 1: bad value for hopcount_limit" },
	{ "n = abc\nline_length_limit = $n\n",
	  "/etc/facteur/main.cf, line 2: bad value for line_length_limit: \"abc\"" },
	/* a later module's typed value is checked too */
	{ "smtpd_sasl_auth_enable = sometimes\n",
	  "/etc/facteur/main.cf, line 1: bad value for smtpd_sasl_auth_enable" },
	/* a default that references a bad value */
	{ "postscreen_dnsbl_whitelist_threshold = high\n",
	  "default value for postscreen_dnsbl_allowlist_threshold: bad value: "
	  "\"high\" (expected an integer)" },
	/* expansion errors of any set name, known or not */
	{ "x_loop = $y_loop\ny_loop = $x_loop\n",
	  "/etc/facteur/main.cf, line 1: parameter x_loop: expansion loop" },
	{ "smtpd_banner = 5$\n",
	  "/etc/facteur/main.cf, line 1: parameter smtpd_banner: '$' not followed" },
};

static void
test_bad_values(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct config *c = parse(bad_cases[i].text);
		struct settings s;
		struct errbuf err;

		memset(&s, 0, sizeof(s));
		errbuf_clear(&err);
		assert_int_equal(settings_load(&s, c, &err), -1);
		if (strncmp(errbuf_str(&err), bad_cases[i].error,
			    strlen(bad_cases[i].error)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i,
				 errbuf_str(&err), bad_cases[i].error);
		settings_free(&s);
		config_free(&c);
	}
}

/* Internal knobs are never validated: a Postfix main.cf loads as it is. */
static void
test_internal_ignored(void **state)
{
	struct config *c = parse("compatibility_level = 3.6\nbiff = whatever\n"
				 "in_flow_delay = 1 s\n");
	struct settings s;
	struct errbuf err;

	memset(&s, 0, sizeof(s));
	assert_int_equal(settings_load(&s, c, &err), 0);
	settings_free(&s);
	config_free(&c);
}

/* A -o override that is bad names master.cf and its line. */
static void
test_override_bad_value(void **state)
{
	struct config *c = parse("a = 1\n"), *l;
	struct settings s;
	struct errbuf err;

	assert_int_equal(config_parse_master(c, "smtp inet n - n - - smtpd\n"
	    "submission inet n - n - - smtpd\n  -o smtpd_timeout=never\n",
	    "/etc/facteur/master.cf", NULL, &err), 0);
	l = config_with_service(c, &config_master(c)->v[1], &err);
	assert_non_null(l);
	memset(&s, 0, sizeof(s));
	assert_int_equal(settings_load(&s, l, &err), -1);
	assert_string_equal(errbuf_str(&err), "/etc/facteur/master.cf, line 2: bad "
			    "value for smtpd_timeout: \"never\" (expected a time: "
			    "a number with an optional unit s, m, h, d or w)");
	settings_free(&s);
	config_free(&l);
	config_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_known),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_int),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values_set),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_internal_ignored),
		cmocka_unit_test(test_override_bad_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
