/*
 * smtpd_check_test.c - restriction lists: compiling (unknown names are
 * errors naming the parameter and the nearest valid name, case-insensitive
 * names, empty lists) and evaluating them against session facts with a real
 * resolve context (hosted, alias, local, relay and other domains): permit,
 * reject, defer, permit_mynetworks, permit_sasl_authenticated,
 * reject_unauth_destination / defer_unauth_destination,
 * reject_non_fqdn_recipient, Postfix's default relay list, and lookup
 * failures that must give 4xx, never 5xx.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/smtpd_check.h"

static void
base_settings(struct settings *s)
{
	memset(s, 0, sizeof(*s));
	s->myhostname = "mx.example.net";
	s->mydomain = "example.net";
	s->myorigin = "mx.example.net";
	s->mydestination = "mx.example.net, localhost";
	s->mynetworks = "127.0.0.0/8, 192.0.2.0/24";
	s->relay_domains = "relay.example";
	s->recipient_delimiter = "+";
	s->virtual_alias_domains = "alias.example";
	s->virtual_mailbox_domains = "example.test";
	s->virtual_mailbox_base = "/var/mail/vhosts";
	s->virtual_mailbox_maps = "inline:{ alice@example.test=example.test/alice/ }";
	s->virtual_alias_maps = "inline:{ info@alias.example=alice@example.test }";
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

static struct smtpd_restrictions *
compile_ok(const char *param, const char *value)
{
	struct errbuf err;
	struct smtpd_restrictions *r;

	errbuf_clear(&err);
	r = smtpd_check_compile(param, value, &err);
	if (r == NULL)
		fail_msg("compile \"%s\": %s", value, errbuf_str(&err));
	return r;
}

/* ---- compile ---- */

struct compile_case {
	const char *value;
	int         ok;
	int         empty;		/* when ok */
	const char *err[3];		/* substrings of the error, when !ok */
};

static const struct compile_case compile_cases[] = {
	{ "", 1, 1, { NULL } },
	{ "  ,\t, ", 1, 1, { NULL } },
	{ "permit", 1, 0, { NULL } },
	{ "reject", 1, 0, { NULL } },
	{ "defer", 1, 0, { NULL } },
	{ "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
	  1, 0, { NULL } },
	{ "permit_mynetworks permit_sasl_authenticated reject_unauth_destination",
	  1, 0, { NULL } },
	{ "reject_non_fqdn_recipient,reject_unlisted_recipient", 1, 0, { NULL } },
	/* names are case-insensitive, as in Postfix */
	{ "PERMIT_MYNETWORKS, Reject_Unauth_Destination", 1, 0, { NULL } },
	{ "Permit", 1, 0, { NULL } },
	/* typos: the parameter, the bad name and the nearest valid one */
	{ "permit_mynetworks, reject_unauth_destinaton", 0, 0,
	  { "smtpd_recipient_restrictions: unknown restriction "
	    "\"reject_unauth_destinaton\"",
	    "did you mean \"reject_unauth_destination\"", NULL } },
	{ "permit_mynetwork", 0, 0,
	  { "\"permit_mynetwork\"", "did you mean \"permit_mynetworks\"", NULL } },
	{ "permit_sasl_authenticate", 0, 0,
	  { "did you mean \"permit_sasl_authenticated\"", NULL } },
	{ "defer_unauth_destinations", 0, 0,
	  { "did you mean \"defer_unauth_destination\"", NULL } },
	{ "rejectt", 0, 0, { "did you mean \"reject\"", NULL } },
	{ "reject_non_fqdn_rcpt", 0, 0,
	  { "smtpd_recipient_restrictions: unknown restriction "
	    "\"reject_non_fqdn_rcpt\"", NULL } },
	{ "reject_invalide_hostname", 0, 0,
	  { "smtpd_recipient_restrictions", "\"reject_invalide_hostname\"",
	    "did you mean \"reject_invalid_hostname\"" } },
	/* Postfix names facteur does not implement are refused by name */
	{ "reject_unauth_destination_mx", 0, 0,
	  { "smtpd_recipient_restrictions",
	    "\"reject_unauth_destination_mx\"", "not supported" } },
	{ "check_sasl_access inline:{x=OK}, check_sender_mx_access "
	  "inline:{x=DUNNO}, check_recipient_ns_access inline:{x=DUNNO}, "
	  "check_helo_a_access inline:{x=DUNNO}, permit_auth_destination, "
	  "reject_multi_recipient_bounce, reject_plaintext_session, "
	  "permit_inet_interfaces", 1, 0, { NULL } },
	/* removed by Postfix 3.9 (open relay risks): refused with a hint */
	{ "check_relay_domains", 0, 0,
	  { "\"check_relay_domains\" was removed",
	    "use reject_unauth_destination", NULL } },
	{ "permit_naked_ip_address", 0, 0,
	  { "\"permit_naked_ip_address\" was removed",
	    "use permit_mynetworks or permit_sasl_authenticated", NULL } },
	{ "reject_sender_login_mismatch, reject_known_sender_login_mismatch, "
	  "Reject_Authenticated_Sender_Login_Mismatch, "
	  "reject_unauthenticated_sender_login_mismatch", 1, 0, { NULL } },
	{ "reject_sender_login_mismatchh", 0, 0,
	  { "did you mean \"reject_sender_login_mismatch\"", NULL } },
	{ "check_sender_mx_acess inline:{x=DUNNO}", 0, 0,
	  { "did you mean \"check_sender_mx_access\"", NULL } },
	/* DNS-based restrictions */
	{ "reject_unauth_pipelining", 1, 0, { NULL } },
	{ "permit, reject_unknown_sender_domain, reject_unknown_recipient_domain,"
	  " reject_unknown_helo_hostname, reject_unknown_client_hostname,"
	  " reject_unknown_reverse_client_hostname", 1, 0, { NULL } },
	{ "Reject_Rbl_Client zen.test", 1, 0, { NULL } },
	{ "reject_rbl_client zen.test=127.0.0.[2..11;20], "
	  "reject_rhsbl_client dbl.test=127.0.1.2, reject_rhsbl_sender d.test, "
	  "reject_rhsbl_helo d.test, reject_rhsbl_reverse_client d.test", 1, 0,
	  { NULL } },
	{ "reject_rbl_client", 0, 0, { "needs a DNS zone", NULL } },
	{ "reject_rbl_client zen.test=127.0.0", 0, 0,
	  { "bad DNS zone \"zen.test=127.0.0\"", "four octets", NULL } },
	{ "reject_rbl_client zen.test=127.0.0.[2..1]", 0, 0,
	  { "bad DNS zone", NULL } },
	{ "reject_rhsbl_sender =127.0.0.2", 0, 0, { "bad DNS zone", NULL } },
	{ "reject_rbl_client hash:/etc/x", 0, 0, { "bad DNS zone", NULL } },
	{ "reject_invalid_hostname, reject_non_fqdn_helo_hostname, "
	  "defer_if_permit, defer_if_reject, warn_if_reject, sleep 0, "
	  "reject_non_fqdn_sender, reject_unlisted_sender, "
	  "check_client_access inline:{1.2.3.4=OK}, "
	  "check_helo_access static:DUNNO, check_sender_access static:DUNNO, "
	  "check_recipient_access static:DUNNO, "
	  "check_reverse_client_hostname_access static:DUNNO, "
	  "check_policy_service inet:127.0.0.1:9", 1, 0, { NULL } },
	{ "xyzzy", 0, 0,
	  { "smtpd_recipient_restrictions: unknown restriction \"xyzzy\"",
	    NULL } },
	{ "permit_mynetworks_and_then_a_very_long_tail_that_exceeds_"
	  "sixty_four_characters_easily", 0, 0,
	  { "smtpd_recipient_restrictions", "very_long_tail", NULL } },
	/* a bad name anywhere in the list fails the whole list */
	{ "permit_mynetworks, permit_sasl_authenticated, bogus, reject", 0, 0,
	  { "\"bogus\"", NULL } },
	/* unbalanced braces */
	{ "check_recipient_access inline:{ a=b", 0, 0,
	  { "smtpd_recipient_restrictions", "brace", NULL } },
	{ "permit }", 0, 0, { "smtpd_recipient_restrictions", NULL } },
};

static void
test_compile(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(compile_cases) / sizeof(compile_cases[0]); i++) {
		const struct compile_case *c = &compile_cases[i];
		struct smtpd_restrictions *r;
		struct errbuf err;

		errbuf_clear(&err);
		r = smtpd_check_compile("smtpd_recipient_restrictions", c->value,
					&err);
		if (c->ok) {
			if (r == NULL)
				fail_msg("\"%s\": %s", c->value, errbuf_str(&err));
			if (smtpd_check_empty(r) != (c->empty != 0))
				fail_msg("\"%s\": empty %d", c->value,
					 smtpd_check_empty(r));
			smtpd_check_free(&r);
			assert_null(r);
			continue;
		}
		if (r != NULL)
			fail_msg("\"%s\": compiled, want an error", c->value);
		for (int k = 0; k < 3 && c->err[k] != NULL; k++)
			if (strstr(errbuf_str(&err), c->err[k]) == NULL)
				fail_msg("\"%s\": error \"%s\" lacks \"%s\"",
					 c->value, errbuf_str(&err), c->err[k]);
	}
}

/* The parameter named in errors is the one given. */
static void
test_compile_param_name(void **state)
{
	struct errbuf err;
	struct smtpd_restrictions *r;

	(void)state;
	errbuf_clear(&err);
	r = smtpd_check_compile("smtpd_relay_restrictions",
				"permit_mynetworks, defer_unauth_destinaton", &err);
	assert_null(r);
	assert_non_null(strstr(errbuf_str(&err), "smtpd_relay_restrictions: "));
	assert_non_null(strstr(errbuf_str(&err),
			       "did you mean \"defer_unauth_destination\""));
	/* free and empty accept NULL */
	smtpd_check_free(&r);
	assert_true(smtpd_check_empty(NULL));
	/* nothing close: no misleading hint */
	errbuf_clear(&err);
	assert_null(smtpd_check_compile("smtpd_client_restrictions", "xyzzy",
					&err));
	assert_null(strstr(errbuf_str(&err), "did you mean"));
	assert_non_null(strstr(errbuf_str(&err), "smtpd_client_restrictions: "));
}

/* ---- the five lists of a configuration ---- */

struct lists_case {
	const char *main_cf;
	int         ok;
	const char *err[3];	/* substrings when !ok */
};

static const struct lists_case lists_cases[] = {
	/* Postfix's defaults: the relay list protects */
	{ "", 1, { NULL } },
	{ "myhostname = mx.example.net\n", 1, { NULL } },
	{ "smtpd_relay_restrictions =\n"
	  "smtpd_recipient_restrictions = permit_mynetworks, "
	  "reject_unauth_destination\n", 1, { NULL } },
	{ "smtpd_client_restrictions = permit_mynetworks, reject\n", 1, { NULL } },
	/* both empty would be an open relay */
	{ "smtpd_relay_restrictions =\n", 0,
	  { "smtpd_relay_restrictions", "smtpd_recipient_restrictions",
	    "open relay" } },
	/* the culprit's file and line */
	{ "myhostname = mx.example.net\n"
	  "\n"
	  "smtpd_helo_restrictions = permit_mynetworks,\n"
	  "    reject_unauth_destinaton\n", 0,
	  { "/etc/facteur/main.cf, line 3: smtpd_helo_restrictions: ",
	    "\"reject_unauth_destinaton\"",
	    "did you mean \"reject_unauth_destination\"" } },
	{ "smtpd_sender_restrictions = reject_unauth_destination_mx\n", 0,
	  { "/etc/facteur/main.cf, line 1: smtpd_sender_restrictions: ",
	    "\"reject_unauth_destination_mx\"", "not supported" } },
	{ "smtpd_sender_restrictions = reject_rbl_client zen.test=1.2\n", 0,
	  { "/etc/facteur/main.cf, line 1: smtpd_sender_restrictions: ",
	    "bad DNS zone", NULL } },
	/* DNS-based restrictions and their settings */
	{ "smtpd_sender_restrictions = reject_unknown_sender_domain,\n"
	  "  reject_rbl_client zen.test=127.0.0.[2..11]\n"
	  "unknown_address_tempfail_action = defer\n"
	  "facteur_dns_servers = 127.0.0.1:5353\n", 1, { NULL } },
	{ "unknown_address_tempfail_action = reject\n", 0,
	  { "line 1: unknown_address_tempfail_action: bad value \"reject\"",
	    NULL } },
	{ "facteur_dns_servers = 127.0.0.1:99999\n", 0,
	  { "facteur_dns_servers", NULL } },
	{ "smtpd_restriction_classes = c\n"
	  "c = reject_rbl_client zen.test\n"
	  "smtpd_client_restrictions = check_client_access inline:{1.2.3.4=c}\n",
	  1, { NULL } },
	/* seed 004's typo */
	{ "smtpd_helo_restrictions = permit_mynetworks,\n"
	  "    permit_sasl_authenticated,\n"
	  "    reject_non_fqdn_hostname,\n"
	  "    reject_invalide_hostname,\n"
	  "    permit\n", 0,
	  { "/etc/facteur/main.cf, line 1: smtpd_helo_restrictions: ",
	    "\"reject_invalide_hostname\"",
	    "did you mean \"reject_invalid_hostname\"" } },
	/* restriction classes */
	{ "smtpd_restriction_classes = strict\n"
	  "strict = reject_non_fqdn_sender, reject\n"
	  "smtpd_sender_restrictions = strict\n", 1, { NULL } },
	{ "smtpd_restriction_classes = strict\n"
	  "smtpd_sender_restrictions = strict\n", 0,
	  { "restriction class \"strict\" needs a definition", NULL } },
	{ "smtpd_restriction_classes = strict\n"
	  "strict = reject_bogus\n", 0,
	  { "strict: unknown restriction \"reject_bogus\"", NULL } },
	{ "smtpd_delay_reject = no\n", 1, { NULL } },
	{ "smtpd_delay_reject = maybe\n", 0,
	  { "smtpd_delay_reject: bad value \"maybe\"", NULL } },
	{ "smtpd_client_restrictions = check_policy_service\n", 0,
	  { "\"check_policy_service\" needs inet:host:port", NULL } },
	{ "smtpd_client_restrictions = check_policy_service tcp:x\n", 0,
	  { "bad endpoint \"tcp:x\"", NULL } },
	{ "smtpd_client_restrictions = sleep x\n", 0,
	  { "sleep: bad number of seconds \"x\"", NULL } },
	{ "smtpd_client_restrictions = check_client_access\n", 0,
	  { "needs a type:name table", NULL } },
	{ "smtpd_client_restrictions = check_client_access nomap\n", 0,
	  { "need maptype:mapname", NULL } },
	{ "smtpd_client_restrictions = inline:{a=b}\n", 0,
	  { "must follow one of check_client_access", NULL } },
	/* a list built by $name expansion */
	{ "my_relay = permit_mynetworks, defer_unauth_destination\n"
	  "smtpd_relay_restrictions = $my_relay\n", 1, { NULL } },
	{ "my_relay = permit_mynetworks, defer_unauth_destinatio\n"
	  "smtpd_relay_restrictions = $my_relay\n", 0,
	  { "smtpd_relay_restrictions", "defer_unauth_destination", NULL } },
};

static void
test_lists_compile(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(lists_cases) / sizeof(lists_cases[0]); i++) {
		const struct lists_case *c = &lists_cases[i];
		struct smtpd_check_lists l;
		struct config *cf;
		struct errbuf err;
		int rc;

		errbuf_clear(&err);
		cf = config_parse_main(c->main_cf, "/etc/facteur/main.cf", NULL,
				       &err);
		if (cf == NULL)
			fail_msg("case %zu: main.cf: %s", i, errbuf_str(&err));
		rc = smtpd_check_lists_compile(&l, cf, &err);
		if (c->ok) {
			if (rc != 0)
				fail_msg("case %zu: %s", i, errbuf_str(&err));
			/* the default relay list is Postfix's */
			if (i == 0) {
				struct resolve_ctx *ctx;
				struct settings s;
				struct buf reply;
				struct smtpd_check_facts f;
				struct addr a;
				const char *perr;

				base_settings(&s);
				ctx = ctx_open(&s);
				buf_init(&reply, 1000);
				assert_int_equal(addr_parse_mailbox(
				    "user@far.example", &a, &perr), 0);
				memset(&f, 0, sizeof(f));
				f.client_addr = "203.0.113.7";
				f.rcpt = &a;
				f.rcpt_text = "<user@far.example>";
				f.resolve = ctx;
				assert_int_equal(smtpd_check_eval(l.relay, &f, &reply),
						 SMTPD_CHECK_DEFER);
				assert_string_equal(buf_cstr(&reply),
				    "454 4.7.1 <user@far.example>: Relay access "
				    "denied");
				f.in_mynetworks = true;
				assert_int_equal(smtpd_check_eval(l.relay, &f, &reply),
						 SMTPD_CHECK_PERMIT);
				f.in_mynetworks = false;
				f.sasl_authenticated = true;
				assert_int_equal(smtpd_check_eval(l.relay, &f, &reply),
						 SMTPD_CHECK_PERMIT);
				assert_true(smtpd_check_empty(l.client));
				assert_true(smtpd_check_empty(l.rcpt));
				addr_free(&a);
				buf_free(&reply);
				resolve_ctx_free(&ctx);
			}
			smtpd_check_lists_free(&l);
			/* free twice is harmless (pointers were cleared) */
			smtpd_check_lists_free(&l);
		} else {
			if (rc != -1)
				fail_msg("case %zu: compiled, want an error", i);
			for (int k = 0; k < 3 && c->err[k] != NULL; k++)
				if (strstr(errbuf_str(&err), c->err[k]) == NULL)
					fail_msg("case %zu: error \"%s\" lacks "
						 "\"%s\"", i, errbuf_str(&err),
						 c->err[k]);
			/* nothing is left allocated on failure */
			assert_null(l.client);
			assert_null(l.helo);
			assert_null(l.sender);
			assert_null(l.relay);
			assert_null(l.rcpt);
		}
		config_free(&cf);
	}
}

/* ---- eval ---- */

struct eval_case {
	const char *list;
	bool        mynet, sasl;
	const char *rcpt;	/* NULL: outside RCPT (client stage) */
	enum smtpd_check_result res;
	const char *reply;	/* exact reply when REJECT/DEFER */
};

#define DEFAULT_RELAY "permit_mynetworks, permit_sasl_authenticated, " \
		      "defer_unauth_destination"
#define P SMTPD_CHECK_PERMIT
#define R SMTPD_CHECK_REJECT
#define D SMTPD_CHECK_DEFER
#define N SMTPD_CHECK_DUNNO

static const struct eval_case eval_cases[] = {
	/* empty list: no decision */
	{ "", false, false, "user@far.example", N, NULL },
	/* the plain verdicts, Postfix's codes and texts */
	{ "permit", false, false, "user@far.example", P, NULL },
	{ "reject", false, false, "user@far.example", R,
	  "554 5.7.1 <user@far.example>: Recipient address rejected: "
	  "Access denied" },
	{ "defer", false, false, "user@far.example", D,
	  "450 4.3.2 <user@far.example>: Recipient address rejected: "
	  "Try again later" },
	/* first decision wins */
	{ "permit, reject", false, false, "user@far.example", P, NULL },
	{ "reject, permit", true, true, "user@far.example", R,
	  "554 5.7.1 <user@far.example>: Recipient address rejected: "
	  "Access denied" },
	/* permit_mynetworks / permit_sasl_authenticated */
	{ "permit_mynetworks", true, false, "user@far.example", P, NULL },
	{ "permit_mynetworks", false, true, "user@far.example", N, NULL },
	{ "permit_sasl_authenticated", false, true, "user@far.example", P, NULL },
	{ "permit_sasl_authenticated", true, false, "user@far.example", N, NULL },
	{ "permit_mynetworks, reject", false, false, "user@far.example", R,
	  "554 5.7.1 <user@far.example>: Recipient address rejected: "
	  "Access denied" },
	{ "permit_sasl_authenticated, defer", false, false, "a@example.test", D,
	  "450 4.3.2 <a@example.test>: Recipient address rejected: "
	  "Try again later" },
	/* reject_unauth_destination by domain class */
	{ "reject_unauth_destination", false, false, "user@far.example", R,
	  "554 5.7.1 <user@far.example>: Relay access denied" },
	{ "reject_unauth_destination", false, false, "USER@Far.Example", R,
	  "554 5.7.1 <USER@far.example>: Relay access denied" },
	{ "reject_unauth_destination", false, false, "alice@example.test", N, NULL },
	{ "reject_unauth_destination", false, false, "nobody@EXAMPLE.TEST", N, NULL },
	{ "reject_unauth_destination", false, false, "info@alias.example", N, NULL },
	{ "reject_unauth_destination", false, false, "root@mx.example.net", N, NULL },
	{ "reject_unauth_destination", false, false, "root@localhost", N, NULL },
	{ "reject_unauth_destination", false, false, "x@relay.example", N, NULL },
	{ "reject_unauth_destination", false, false, "x@sub.relay.example", N, NULL },
	{ "reject_unauth_destination", false, false, "x@sub.example.test", R,
	  "554 5.7.1 <x@sub.example.test>: Relay access denied" },
	{ "reject_unauth_destination", false, false, "x@example.test.evil", R,
	  "554 5.7.1 <x@example.test.evil>: Relay access denied" },
	{ "reject_unauth_destination", false, false, "x@notrelay.example", R,
	  "554 5.7.1 <x@notrelay.example>: Relay access denied" },
	{ "reject_unauth_destination", false, false, "x@[192.0.2.9]", R,
	  "554 5.7.1 <x@[192.0.2.9]>: Relay access denied" },
	/* defer_unauth_destination: the same test, a 4xx */
	{ "defer_unauth_destination", false, false, "user@far.example", D,
	  "454 4.7.1 <user@far.example>: Relay access denied" },
	{ "defer_unauth_destination", false, false, "alice@example.test", N, NULL },
	{ "defer_unauth_destination", false, false, "x@relay.example", N, NULL },
	/* outside RCPT there is no destination to judge */
	{ "reject_unauth_destination", false, false, NULL, N, NULL },
	{ "defer_unauth_destination", false, false, NULL, N, NULL },
	{ "reject_non_fqdn_recipient", false, false, NULL, N, NULL },
	/* Postfix's default smtpd_relay_restrictions */
	{ DEFAULT_RELAY, true, false, "user@far.example", P, NULL },
	{ DEFAULT_RELAY, false, true, "user@far.example", P, NULL },
	{ DEFAULT_RELAY, true, true, "user@far.example", P, NULL },
	{ DEFAULT_RELAY, false, false, "user@far.example", D,
	  "454 4.7.1 <user@far.example>: Relay access denied" },
	{ DEFAULT_RELAY, false, false, "alice@example.test", N, NULL },
	{ DEFAULT_RELAY, false, false, "info@alias.example", N, NULL },
	{ DEFAULT_RELAY, false, false, "x@relay.example", N, NULL },
	{ DEFAULT_RELAY, true, false, "alice@example.test", P, NULL },
	/* the classic recipient list */
	{ "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
	  false, false, "user@far.example", R,
	  "554 5.7.1 <user@far.example>: Relay access denied" },
	/* reject_non_fqdn_recipient */
	{ "reject_non_fqdn_recipient", false, false, "user@localhost", R,
	  "504 5.5.2 <user@localhost>: Recipient address rejected: "
	  "need fully-qualified address" },
	{ "reject_non_fqdn_recipient", false, false, "user@localhost.", R,
	  "504 5.5.2 <user@localhost>: Recipient address rejected: "
	  "need fully-qualified address" },
	{ "reject_non_fqdn_recipient", false, false, "postmaster", R,
	  "504 5.5.2 <postmaster>: Recipient address rejected: "
	  "need fully-qualified address" },
	{ "reject_non_fqdn_recipient", false, false, "user@example.test", N, NULL },
	{ "reject_non_fqdn_recipient", false, false, "user@[192.0.2.1]", N, NULL },
	{ "reject_non_fqdn_recipient", false, false, "user@[IPv6:2001:db8::1]",
	  N, NULL },
	/* it comes before the permits when listed first */
	{ "reject_non_fqdn_recipient, permit_mynetworks", true, false,
	  "user@localhost", R,
	  "504 5.5.2 <user@localhost>: Recipient address rejected: "
	  "need fully-qualified address" },
	{ "permit_mynetworks, reject_non_fqdn_recipient", true, false,
	  "user@localhost", P, NULL },
	/* reject_unlisted_recipient decides where it stands in the list */
	{ "reject_unlisted_recipient", false, false, "nobody@example.test", R,
	  "550 5.1.1 <nobody@example.test>: Recipient address rejected: "
	  "User unknown in virtual mailbox table" },
	{ "permit, reject_unlisted_recipient", false, false,
	  "nobody@example.test", P, NULL },
	{ "reject_unlisted_recipient", false, false, "alice@example.test", N,
	  NULL },
	{ "reject_unlisted_recipient, permit", false, false, "x@far.example", P, NULL },
};

#undef P
#undef R
#undef D
#undef N

static const char *const result_name[] = {
	"DUNNO", "PERMIT", "REJECT", "DEFER",
};

/* Evaluates list against facts built from the case; returns the result. */
static enum smtpd_check_result
eval_one(struct resolve_ctx *ctx, const char *list, bool mynet, bool sasl,
	 const char *rcpt, struct buf *reply)
{
	struct smtpd_restrictions *r = compile_ok("smtpd_recipient_restrictions",
						  list);
	struct smtpd_check_facts f;
	struct addr a;
	char *text = NULL, *fmt;
	const char *perr;
	enum smtpd_check_result res;

	memset(&f, 0, sizeof(f));
	f.in_mynetworks = mynet;
	f.sasl_authenticated = sasl;
	f.client_addr = "203.0.113.7";
	f.client_name = "unknown";
	f.helo = "client.example";
	f.sender = "sender@example.org";
	f.resolve = ctx;
	if (rcpt != NULL) {
		if (addr_parse_mailbox(rcpt, &a, &perr) < 0) {
			/* domainless forms: parse as an RCPT path */
			char path[128];
			const char *rest;

			snprintf(path, sizeof(path), "<%s>", rcpt);
			if (addr_parse_path(path, strlen(path), ADDR_P_ALLOW_NODOM,
					    &a, &rest, &perr) < 0)
				fail_msg("test address %s: %s", rcpt, perr);
		}
		fmt = addr_format(&a);
		assert_non_null(fmt);
		text = malloc(strlen(fmt) + 3);
		assert_non_null(text);
		sprintf(text, "<%s>", fmt);
		free(fmt);
		f.rcpt = &a;
		f.rcpt_text = text;
	}
	/* a stale reply from an earlier command must not leak through */
	buf_set(reply, "stale");
	res = smtpd_check_eval(r, &f, reply);
	if (rcpt != NULL)
		addr_free(&a);
	free(text);
	smtpd_check_free(&r);
	return res;
}

static void
test_eval(void **state)
{
	struct settings s;
	struct resolve_ctx *ctx;
	struct buf reply;
	int failures = 0;

	(void)state;
	base_settings(&s);
	ctx = ctx_open(&s);
	buf_init(&reply, 1000);
	for (size_t i = 0; i < sizeof(eval_cases) / sizeof(eval_cases[0]); i++) {
		const struct eval_case *c = &eval_cases[i];
		enum smtpd_check_result res;

		res = eval_one(ctx, c->list, c->mynet, c->sasl, c->rcpt, &reply);
		/* report every wrong case, then fail once */
		if (res != c->res) {
			print_error("case %zu \"%s\" rcpt %s mynet %d sasl %d: "
				    "%s, want %s (reply \"%s\")\n", i, c->list,
				    c->rcpt ? c->rcpt : "(none)", c->mynet,
				    c->sasl, result_name[res],
				    result_name[c->res], buf_cstr(&reply));
			failures++;
		} else if (c->reply != NULL &&
			   strcmp(buf_cstr(&reply), c->reply) != 0) {
			print_error("case %zu \"%s\" rcpt %s: reply \"%s\", "
				    "want \"%s\"\n", i, c->list,
				    c->rcpt ? c->rcpt : "(none)",
				    buf_cstr(&reply), c->reply);
			failures++;
		}
	}
	buf_free(&reply);
	resolve_ctx_free(&ctx);
	assert_int_equal(failures, 0);
}

/* Verdicts outside RCPT name the client; codes are the same. */
static void
test_eval_client_stage(void **state)
{
	struct settings s;
	struct resolve_ctx *ctx;
	struct buf reply;

	(void)state;
	base_settings(&s);
	ctx = ctx_open(&s);
	buf_init(&reply, 1000);
	assert_int_equal(eval_one(ctx, "reject", false, false, NULL, &reply),
			 SMTPD_CHECK_REJECT);
	assert_true(strncmp(buf_cstr(&reply), "554 5.7.1 <", 11) == 0);
	assert_non_null(strstr(buf_cstr(&reply), "203.0.113.7"));
	assert_non_null(strstr(buf_cstr(&reply), ">: Client host rejected: "
			       "Access denied"));
	assert_int_equal(eval_one(ctx, "permit_mynetworks, defer", false, false,
				  NULL, &reply), SMTPD_CHECK_DEFER);
	assert_true(strncmp(buf_cstr(&reply), "450 4.3.2 <", 11) == 0);
	assert_non_null(strstr(buf_cstr(&reply), ">: Client host rejected: "
			       "Try again later"));
	assert_int_equal(eval_one(ctx, "permit_mynetworks, defer", true, false,
				  NULL, &reply), SMTPD_CHECK_PERMIT);
	/* a NULL list decides nothing */
	{
		struct smtpd_check_facts f;

		memset(&f, 0, sizeof(f));
		f.client_addr = "203.0.113.7";
		assert_int_equal(smtpd_check_eval(NULL, &f, &reply),
				 SMTPD_CHECK_DUNNO);
	}
	buf_free(&reply);
	resolve_ctx_free(&ctx);
}

/*
 * A domain class lookup that fails (backend down) is a 4xx for every
 * recipient, never a 5xx relay denial: mail for hosted domains must not
 * bounce because LDAP is away.
 */
static void
test_eval_lookup_failure(void **state)
{
	static const char *const rcpts[] = {
		"user@far.example", "alice@example.test", "x@relay.example",
	};
	static const char *const lists[] = {
		"reject_unauth_destination", "defer_unauth_destination",
		DEFAULT_RELAY,
	};
	struct settings s;
	struct resolve_ctx *ctx;
	struct buf reply;
	char want[256];

	(void)state;
	base_settings(&s);
	s.virtual_alias_domains = "fail:{ldap down}";
	ctx = ctx_open(&s);
	buf_init(&reply, 1000);
	for (size_t i = 0; i < sizeof(rcpts) / sizeof(rcpts[0]); i++)
		for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++) {
			enum smtpd_check_result res;

			res = eval_one(ctx, lists[k], false, false, rcpts[i], &reply);
			snprintf(want, sizeof(want),
				 "451 4.3.0 <%s>: Temporary lookup failure",
				 rcpts[i]);
			if (res != SMTPD_CHECK_DEFER ||
			    strcmp(buf_cstr(&reply), want) != 0)
				fail_msg("%s / %s: %s \"%s\"", lists[k], rcpts[i],
					 result_name[res], buf_cstr(&reply));
		}
	/* the permits still decide before any lookup is needed */
	assert_int_equal(eval_one(ctx, DEFAULT_RELAY, true, false,
				  "user@far.example", &reply), SMTPD_CHECK_PERMIT);
	assert_int_equal(eval_one(ctx, DEFAULT_RELAY, false, true,
				  "user@far.example", &reply), SMTPD_CHECK_PERMIT);
	buf_free(&reply);
	resolve_ctx_free(&ctx);
}

/* relay_domains empty: only hosted and local domains pass. */
static void
test_eval_no_relay_domains(void **state)
{
	struct settings s;
	struct resolve_ctx *ctx;
	struct buf reply;

	(void)state;
	base_settings(&s);
	s.relay_domains = "";
	ctx = ctx_open(&s);
	buf_init(&reply, 1000);
	assert_int_equal(eval_one(ctx, "reject_unauth_destination", false, false,
				  "x@relay.example", &reply), SMTPD_CHECK_REJECT);
	assert_string_equal(buf_cstr(&reply),
			    "554 5.7.1 <x@relay.example>: Relay access denied");
	assert_int_equal(eval_one(ctx, "reject_unauth_destination", false, false,
				  "alice@example.test", &reply), SMTPD_CHECK_DUNNO);
	buf_free(&reply);
	resolve_ctx_free(&ctx);
}

/* ---- the full vocabulary through smtpd_check_rcpt ---- */

struct vocab_case {
	const char *main_cf;		/* restriction lists etc. */
	const char *helo, *sender, *rcpt, *addr, *name;
	bool        mynet;
	enum smtpd_check_result want;
	const char *reply;		/* exact, when REJECT/DEFER */
	const char *act;		/* "discard", "hold", "redirect:x", "prepend:x" */
};

#define RR "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n"
static const struct vocab_case vocab_cases[] = {
	/* lists in order; PERMIT moves on; REJECT ends */
	{ RR "smtpd_client_restrictions = permit\n"
	  "smtpd_recipient_restrictions = reject\n", "h.example", "s@x.example",
	  "alice@example.test", "192.0.2.9", "h.example", false,
	  SMTPD_CHECK_REJECT, "554 5.7.1 <alice@example.test>: Recipient address "
	  "rejected: Access denied", NULL },
	{ RR "smtpd_client_restrictions = reject\n", "h.example", "s@x.example",
	  "alice@example.test", "192.0.2.9", "h.example", false,
	  SMTPD_CHECK_REJECT, "554 5.7.1 <h.example[192.0.2.9]>: Client host "
	  "rejected: Access denied", NULL },
	{ RR "smtpd_helo_restrictions = reject\n", "h.example", "s@x.example",
	  "alice@example.test", "192.0.2.9", "h.example", false,
	  SMTPD_CHECK_REJECT, "554 5.7.1 <h.example>: Helo command rejected: "
	  "Access denied", NULL },
	{ RR "smtpd_sender_restrictions = defer\n", "h.example", "s@x.example",
	  "alice@example.test", "192.0.2.9", "h.example", false,
	  SMTPD_CHECK_DEFER, "450 4.3.2 <s@x.example>: Sender address rejected: "
	  "Try again later", NULL },
	/* relay list rejects even after a client PERMIT */
	{ RR "smtpd_client_restrictions = permit\n", "h.example", "s@x.example",
	  "u@far.example", "192.0.2.9", NULL, false, SMTPD_CHECK_REJECT,
	  "554 5.7.1 <u@far.example>: Relay access denied", NULL },
	/* HELO names */
	{ RR "smtpd_helo_restrictions = reject_invalid_helo_hostname\n",
	  "bad_name..x", "s@x.example", "alice@example.test", "192.0.2.9", NULL,
	  false, SMTPD_CHECK_REJECT, "501 5.5.2 <bad_name..x>: Helo command "
	  "rejected: Invalid name", NULL },
	{ RR "smtpd_helo_restrictions = reject_invalid_helo_hostname\n",
	  "mail.example.org", "s@x.example", "alice@example.test", "192.0.2.9",
	  NULL, false, SMTPD_CHECK_DUNNO, NULL, NULL },
	{ RR "smtpd_helo_restrictions = reject_invalid_hostname\n",
	  "[192.0.2.300]", "s@x.example", "alice@example.test", "192.0.2.9",
	  NULL, false, SMTPD_CHECK_REJECT, "501 5.5.2 <[192.0.2.300]>: Helo "
	  "command rejected: invalid ip address", NULL },
	{ RR "smtpd_helo_restrictions = reject_non_fqdn_helo_hostname\n",
	  "localhost", "s@x.example", "alice@example.test", "192.0.2.9", NULL,
	  false, SMTPD_CHECK_REJECT, "504 5.5.2 <localhost>: Helo command "
	  "rejected: need fully-qualified hostname", NULL },
	{ RR "smtpd_helo_restrictions = reject_non_fqdn_hostname\n",
	  "mail.example.org.", "s@x.example", "alice@example.test", "192.0.2.9",
	  NULL, false, SMTPD_CHECK_DUNNO, NULL, NULL },
	/* sender forms */
	{ RR "smtpd_sender_restrictions = reject_non_fqdn_sender\n", "h.example",
	  "joe@localhost", "alice@example.test", "192.0.2.9", NULL, false,
	  SMTPD_CHECK_REJECT, "504 5.5.2 <joe@localhost>: Sender address "
	  "rejected: need fully-qualified address", NULL },
	{ RR "smtpd_sender_restrictions = reject_non_fqdn_sender\n", "h.example",
	  "", "alice@example.test", "192.0.2.9", NULL, false, SMTPD_CHECK_DUNNO,
	  NULL, NULL },
	{ RR "smtpd_sender_restrictions = reject_unlisted_sender\n", "h.example",
	  "ghost@example.test", "alice@example.test", "192.0.2.9", NULL, false,
	  SMTPD_CHECK_REJECT, "550 5.1.0 <ghost@example.test>: Sender address "
	  "rejected: User unknown in virtual mailbox table", NULL },
	{ RR "smtpd_sender_restrictions = reject_unlisted_sender\n", "h.example",
	  "alice@example.test", "alice@example.test", "192.0.2.9", NULL, false,
	  SMTPD_CHECK_DUNNO, NULL, NULL },
	{ RR "smtpd_sender_restrictions = reject_unlisted_sender\n", "h.example",
	  "anyone@far.example", "alice@example.test", "192.0.2.9", NULL, false,
	  SMTPD_CHECK_DUNNO, NULL, NULL },
	/* defer_if_permit / defer_if_reject / warn_if_reject */
	{ RR "smtpd_client_restrictions = defer_if_permit, permit\n", "h.example",
	  "s@x.example", "alice@example.test", "192.0.2.9", NULL, false,
	  SMTPD_CHECK_DEFER, "450 4.7.0 <unknown[192.0.2.9]>: Client host "
	  "rejected: defer_if_permit requested", NULL },
	{ RR "smtpd_client_restrictions = defer_if_permit\n"
	  "smtpd_recipient_restrictions = reject\n", "h.example", "s@x.example",
	  "alice@example.test", "192.0.2.9", NULL, false, SMTPD_CHECK_REJECT,
	  "554 5.7.1 <alice@example.test>: Recipient address rejected: Access "
	  "denied", NULL },
	{ RR "smtpd_client_restrictions = defer_if_reject, reject\n", "h.example",
	  "s@x.example", "alice@example.test", "192.0.2.9", NULL, false,
	  SMTPD_CHECK_DEFER, "450 4.7.0 <unknown[192.0.2.9]>: Client host "
	  "rejected: defer_if_reject requested", NULL },
	{ RR "smtpd_client_restrictions = defer_if_reject, permit\n", "h.example",
	  "s@x.example", "alice@example.test", "192.0.2.9", NULL, false,
	  SMTPD_CHECK_DUNNO, NULL, NULL },
	{ RR "smtpd_client_restrictions = warn_if_reject reject, permit\n",
	  "h.example", "s@x.example", "alice@example.test", "192.0.2.9", NULL,
	  false, SMTPD_CHECK_DUNNO, NULL, NULL },
	{ RR "smtpd_client_restrictions = warn_if_reject reject_non_fqdn_sender, "
	  "reject\n", "h.example", "s@x", "alice@example.test", "192.0.2.9",
	  NULL, false, SMTPD_CHECK_REJECT, "554 5.7.1 <unknown[192.0.2.9]>: "
	  "Client host rejected: Access denied", NULL },
	/* sleep 0 passes on */
	{ RR "smtpd_client_restrictions = sleep 0, reject\n", "h.example",
	  "s@x.example", "alice@example.test", "192.0.2.9", NULL, false,
	  SMTPD_CHECK_REJECT, "554 5.7.1 <unknown[192.0.2.9]>: Client host "
	  "rejected: Access denied", NULL },
	/* access maps: client by name, parent domain, address, prefix */
	{ RR "smtpd_client_restrictions = check_client_access "
	  "inline:{ {example.net=REJECT go away} }\n", "h.example", "s@x.example",
	  "alice@example.test", "192.0.2.9", "mx.sub.example.net", false,
	  SMTPD_CHECK_REJECT, "554 5.7.1 <mx.sub.example.net[192.0.2.9]>: Client "
	  "host rejected: go away", NULL },
	{ RR "smtpd_client_restrictions = check_client_access "
	  "inline:{ {192.0.2=550 5.7.9 not you} }\n", "h.example", "s@x.example",
	  "alice@example.test", "192.0.2.9", NULL, false, SMTPD_CHECK_REJECT,
	  "550 5.7.9 <unknown[192.0.2.9]>: Client host rejected: not you", NULL },
	{ RR "smtpd_client_restrictions = check_client_access "
	  "inline:{ 192.0.2.9=DEFER }\n", "h.example", "s@x.example",
	  "alice@example.test", "192.0.2.9", NULL, false, SMTPD_CHECK_DEFER,
	  "450 4.7.1 <unknown[192.0.2.9]>: Client host rejected: Access denied",
	  NULL },
	{ RR "smtpd_client_restrictions = check_client_access "
	  "inline:{ 192.0.2.9=OK }, reject\n", "h.example", "s@x.example",
	  "alice@example.test", "192.0.2.9", NULL, false, SMTPD_CHECK_DUNNO,
	  NULL, NULL },
	{ RR "smtpd_client_restrictions = check_client_access "
	  "inline:{ 192.0.2.9=DUNNO }, reject\n", "h.example", "s@x.example",
	  "alice@example.test", "192.0.2.9", NULL, false, SMTPD_CHECK_REJECT,
	  "554 5.7.1 <unknown[192.0.2.9]>: Client host rejected: Access denied",
	  NULL },
	{ RR "smtpd_helo_restrictions = check_helo_access "
	  "inline:{ {mx.example.test=REJECT You are not me} }\n", "mx.example.test",
	  "s@x.example", "alice@example.test", "192.0.2.9", NULL, false,
	  SMTPD_CHECK_REJECT, "554 5.7.1 <mx.example.test>: Helo command "
	  "rejected: You are not me", NULL },
	{ RR "smtpd_sender_restrictions = check_sender_access "
	  "inline:{ spam.example=REJECT }\n", "h.example", "x@spam.example",
	  "alice@example.test", "192.0.2.9", NULL, false, SMTPD_CHECK_REJECT,
	  "554 5.7.1 <x@spam.example>: Sender address rejected: Access denied",
	  NULL },
	{ RR "smtpd_sender_restrictions = check_sender_access "
	  "inline:{ postmaster@=OK }, reject\n", "h.example",
	  "postmaster@any.example", "alice@example.test", "192.0.2.9", NULL,
	  false, SMTPD_CHECK_DUNNO, NULL, NULL },
	{ RR "smtpd_sender_restrictions = check_sender_access "
	  "inline:{ {<>=REJECT no bounces} }\n", "h.example", "",
	  "alice@example.test", "192.0.2.9", NULL, false, SMTPD_CHECK_REJECT,
	  "554 5.7.1 <>: Sender address rejected: no bounces", NULL },
	{ RR "recipient_delimiter = +\n"
	  "smtpd_recipient_restrictions = check_recipient_access "
	  "inline:{ {alice@example.test=450 4.2.1 mailbox busy} }\n", "h.example",
	  "s@x.example", "alice+tag@example.test", "192.0.2.9", NULL, false,
	  SMTPD_CHECK_DEFER, "450 4.2.1 <alice+tag@example.test>: Recipient "
	  "address rejected: mailbox busy", NULL },
	/* DSN fixed for the class: 5.1.1 on a sender becomes 5.1.0 */
	{ RR "smtpd_sender_restrictions = check_sender_access "
	  "inline:{ {x.example=REJECT 5.1.1 nope} }\n", "h.example", "s@x.example",
	  "alice@example.test", "192.0.2.9", NULL, false, SMTPD_CHECK_REJECT,
	  "554 5.1.0 <s@x.example>: Sender address rejected: nope", NULL },
	/* actions for the transaction */
	{ RR "smtpd_sender_restrictions = check_sender_access "
	  "inline:{ x.example=DISCARD }, reject\n", "h.example", "s@x.example",
	  "alice@example.test", "192.0.2.9", NULL, false, SMTPD_CHECK_DUNNO,
	  NULL, "discard" },
	{ RR "smtpd_sender_restrictions = check_sender_access "
	  "inline:{ x.example=HOLD }\n", "h.example", "s@x.example",
	  "alice@example.test", "192.0.2.9", NULL, false, SMTPD_CHECK_DUNNO,
	  NULL, "hold" },
	{ RR "smtpd_recipient_restrictions = check_recipient_access "
	  "inline:{ {alice@example.test=REDIRECT bob@example.test} }\n",
	  "h.example", "s@x.example", "alice@example.test", "192.0.2.9", NULL,
	  false, SMTPD_CHECK_DUNNO, NULL, "redirect:bob@example.test" },
	{ RR "smtpd_recipient_restrictions = check_recipient_access "
	  "inline:{ {alice@example.test=PREPEND X-Tag: yes} }\n", "h.example",
	  "s@x.example", "alice@example.test", "192.0.2.9", NULL, false,
	  SMTPD_CHECK_DUNNO, NULL, "prepend:X-Tag: yes" },
	{ RR "smtpd_recipient_restrictions = check_recipient_access "
	  "inline:{ {alice@example.test=FILTER smtp:[127.0.0.1]:10025} }\n",
	  "h.example", "s@x.example", "alice@example.test", "192.0.2.9", NULL,
	  false, SMTPD_CHECK_DEFER, "451 4.3.5 Server configuration error",
	  NULL },
	/* restriction classes and nested lists as values */
	{ RR "smtpd_restriction_classes = strict\n"
	  "strict = reject_non_fqdn_sender, permit\n"
	  "smtpd_recipient_restrictions = check_recipient_access "
	  "inline:{ alice@example.test=strict }, reject\n", "h.example",
	  "s@localhost", "alice@example.test", "192.0.2.9", NULL, false,
	  SMTPD_CHECK_REJECT, "504 5.5.2 <s@localhost>: Sender address "
	  "rejected: need fully-qualified address", NULL },
	{ RR "smtpd_restriction_classes = strict\n"
	  "strict = reject_non_fqdn_sender, permit\n"
	  "smtpd_recipient_restrictions = check_recipient_access "
	  "inline:{ alice@example.test=strict }, reject\n", "h.example",
	  "s@x.example", "alice@example.test", "192.0.2.9", NULL, false,
	  SMTPD_CHECK_PERMIT, NULL, NULL },
	{ RR "smtpd_recipient_restrictions = check_recipient_access "
	  "inline:{ {alice@example.test=permit_mynetworks, reject} }\n",
	  "h.example", "s@x.example", "alice@example.test", "192.0.2.9", NULL,
	  false, SMTPD_CHECK_REJECT, "554 5.7.1 <alice@example.test>: Recipient "
	  "address rejected: Access denied", NULL },
	{ RR "smtpd_recipient_restrictions = check_recipient_access "
	  "inline:{ {alice@example.test=check_client_access static:OK} }\n",
	  "h.example", "s@x.example", "alice@example.test", "192.0.2.9", NULL,
	  false, SMTPD_CHECK_DEFER, "451 4.3.5 Server configuration error",
	  NULL },
	/* lookup failure: 4xx, never 5xx */
	{ RR "smtpd_sender_restrictions = check_sender_access fail:down\n",
	  "h.example", "s@x.example", "alice@example.test", "192.0.2.9", NULL,
	  false, SMTPD_CHECK_DEFER, "451 4.3.0 <s@x.example>: Temporary lookup "
	  "failure", NULL },
	/* the policy server is down: the default action */
	{ RR "smtpd_policy_service_timeout = 2s\n"
	  "smtpd_policy_service_try_limit = 1\n"
	  "smtpd_recipient_restrictions = check_policy_service "
	  "unix:/nonexistent/policy\n", "h.example", "s@x.example",
	  "alice@example.test", "192.0.2.9", NULL, false, SMTPD_CHECK_DEFER,
	  "451 4.3.5 <alice@example.test>: Recipient address rejected: Server "
	  "configuration problem", NULL },
};
#undef RR

static void
test_vocab(void **state)
{
	struct settings s;
	struct resolve_ctx *ctx;

	(void)state;
	base_settings(&s);
	ctx = ctx_open(&s);
	for (size_t i = 0; i < sizeof(vocab_cases) / sizeof(vocab_cases[0]); i++) {
		const struct vocab_case *c = &vocab_cases[i];
		struct smtpd_check_lists l;
		struct smtpd_check_actions act;
		struct smtpd_check_facts f;
		struct config *cf;
		struct errbuf err;
		struct buf reply;
		struct addr a;
		const char *perr;
		char text[300];
		enum smtpd_check_result r;

		errbuf_clear(&err);
		cf = config_parse_main(c->main_cf, "main.cf", NULL, &err);
		if (cf == NULL)
			fail_msg("case %zu: %s", i, errbuf_str(&err));
		if (smtpd_check_lists_compile(&l, cf, &err) < 0)
			fail_msg("case %zu: %s", i, errbuf_str(&err));
		assert_int_equal(addr_parse_mailbox(c->rcpt, &a, &perr), 0);
		snprintf(text, sizeof(text), "<%s>", c->rcpt);
		memset(&f, 0, sizeof(f));
		f.client_addr = c->addr;
		f.client_name = c->name ? c->name : "unknown";
		f.helo = c->helo;
		f.sender = c->sender;
		f.rcpt = &a;
		f.rcpt_text = text;
		f.where = "RCPT";
		f.in_mynetworks = c->mynet;
		f.resolve = ctx;
		buf_init(&reply, 1000);
		smtpd_check_actions_init(&act);
		r = smtpd_check_rcpt(&l, &f, &reply, &act);
		if (r != c->want)
			fail_msg("case %zu: result %d, want %d (reply \"%s\")", i,
				 r, c->want, buf_cstr(&reply));
		if (c->reply && strcmp(buf_cstr(&reply), c->reply) != 0)
			fail_msg("case %zu: reply \"%s\", want \"%s\"", i,
				 buf_cstr(&reply), c->reply);
		if (c->act == NULL)
			assert_true(!act.discard && !act.hold &&
				    act.redirect == NULL && act.prepend.n == 0);
		else if (strcmp(c->act, "discard") == 0)
			assert_true(act.discard);
		else if (strcmp(c->act, "hold") == 0)
			assert_true(act.hold && !act.discard);
		else if (strncmp(c->act, "redirect:", 9) == 0)
			assert_string_equal(act.redirect, c->act + 9);
		else if (strncmp(c->act, "prepend:", 8) == 0) {
			assert_int_equal(act.prepend.n, 1);
			assert_string_equal(act.prepend.v[0], c->act + 8);
		}
		smtpd_check_actions_free(&act);
		buf_free(&reply);
		addr_free(&a);
		smtpd_check_lists_free(&l);
		config_free(&cf);
	}
	resolve_ctx_free(&ctx);
}

/* ---- smtpd_sender_login_maps ---- */

struct login_case {
	const char *main_cf;		/* after LOGIN_CF */
	const char *sender, *login;	/* login NULL: not authenticated */
	enum smtpd_check_result want;
	const char *reply;		/* exact, when REJECT/DEFER */
};

#define LOGIN_CF "smtpd_relay_restrictions = permit_mynetworks, " \
	"reject_unauth_destination\n" \
	"recipient_delimiter = +\n" \
	"smtpd_sasl_auth_enable = yes\n" \
	"smtpd_sender_login_maps = inline:{ alice@example.test=alice, " \
	"{bob@example.test=bob@example.test}, {@shared.example=alice, Bob " \
	"carol} }, inline:{ {postmaster=pm} }\n"
#define SR(x) "smtpd_sender_restrictions = " x "\n"
#define NOT_OWNED(s, u) "553 5.7.1 <" s ">: Sender address rejected: " \
	"not owned by user " u
#define NOT_IN(s) "553 5.7.1 <" s ">: Sender address rejected: not logged in"
static const struct login_case login_cases[] = {
	/* reject_sender_login_mismatch: both halves */
	{ SR("reject_sender_login_mismatch"), "alice@example.test", "alice",
	  SMTPD_CHECK_DUNNO, NULL },
	{ SR("reject_sender_login_mismatch"), "alice@example.test", "ALICE",
	  SMTPD_CHECK_DUNNO, NULL },
	{ SR("reject_sender_login_mismatch"), "alice+tag@example.test", "alice",
	  SMTPD_CHECK_DUNNO, NULL },
	{ SR("reject_sender_login_mismatch"), "bob@example.test", "alice",
	  SMTPD_CHECK_REJECT, NOT_OWNED("bob@example.test", "alice") },
	{ SR("reject_sender_login_mismatch"), "bob@example.test",
	  "bob@example.test", SMTPD_CHECK_DUNNO, NULL },
	{ SR("reject_sender_login_mismatch"), "nobody@far.example", "alice",
	  SMTPD_CHECK_REJECT, NOT_OWNED("nobody@far.example", "alice") },
	{ SR("reject_sender_login_mismatch"), "bob@example.test", NULL,
	  SMTPD_CHECK_REJECT, NOT_IN("bob@example.test") },
	{ SR("reject_sender_login_mismatch"), "nobody@far.example", NULL,
	  SMTPD_CHECK_DUNNO, NULL },
	{ SR("reject_sender_login_mismatch"), "", "alice", SMTPD_CHECK_DUNNO,
	  NULL },
	/* @domain owners, several names, comma or space apart */
	{ SR("reject_sender_login_mismatch"), "any@shared.example", "bob",
	  SMTPD_CHECK_DUNNO, NULL },
	{ SR("reject_sender_login_mismatch"), "any@shared.example", "carol",
	  SMTPD_CHECK_DUNNO, NULL },
	{ SR("reject_sender_login_mismatch"), "any@shared.example", "car",
	  SMTPD_CHECK_REJECT, NOT_OWNED("any@shared.example", "car") },
	/* a local domain (mydestination) also tries the bare local part */
	{ SR("reject_sender_login_mismatch"), "postmaster@mx.example.net", "pm",
	  SMTPD_CHECK_DUNNO, NULL },
	{ SR("reject_sender_login_mismatch"), "postmaster@mx.example.net",
	  "alice", SMTPD_CHECK_REJECT,
	  NOT_OWNED("postmaster@mx.example.net", "alice") },
	{ SR("reject_known_sender_login_mismatch"), "postmaster@far.example",
	  NULL, SMTPD_CHECK_DUNNO, NULL },
	/* authenticated only */
	{ SR("reject_authenticated_sender_login_mismatch"), "bob@example.test",
	  NULL, SMTPD_CHECK_DUNNO, NULL },
	{ SR("reject_authenticated_sender_login_mismatch"), "nobody@far.example",
	  "alice", SMTPD_CHECK_REJECT, NOT_OWNED("nobody@far.example", "alice") },
	/* known: unlisted senders pass */
	{ SR("reject_known_sender_login_mismatch"), "nobody@far.example",
	  "alice", SMTPD_CHECK_DUNNO, NULL },
	{ SR("reject_known_sender_login_mismatch"), "bob@example.test", "alice",
	  SMTPD_CHECK_REJECT, NOT_OWNED("bob@example.test", "alice") },
	{ SR("reject_known_sender_login_mismatch"), "bob@example.test", NULL,
	  SMTPD_CHECK_REJECT, NOT_IN("bob@example.test") },
	/* unauthenticated only */
	{ SR("reject_unauthenticated_sender_login_mismatch"), "bob@example.test",
	  NULL, SMTPD_CHECK_REJECT, NOT_IN("bob@example.test") },
	{ SR("reject_unauthenticated_sender_login_mismatch"), "bob@example.test",
	  "alice", SMTPD_CHECK_DUNNO, NULL },
	{ SR("reject_unauthenticated_sender_login_mismatch"),
	  "nobody@far.example", NULL, SMTPD_CHECK_DUNNO, NULL },
	/* warn_if_reject and a later list still apply */
	{ SR("warn_if_reject reject_sender_login_mismatch"), "bob@example.test",
	  "alice", SMTPD_CHECK_DUNNO, NULL },
	/* named in an access map value */
	{ SR("check_sender_access inline:{ {bob@example.test="
	     "reject_sender_login_mismatch} }"), "bob@example.test", "alice",
	  SMTPD_CHECK_REJECT, NOT_OWNED("bob@example.test", "alice") },
	{ SR("check_sender_access inline:{ {bob@example.test="
	     "reject_sender_login_mismatch} }"), "bob@example.test",
	  "bob@example.test", SMTPD_CHECK_DUNNO, NULL },
	/* a lookup failure is 4xx */
	{ "smtpd_sender_login_maps = fail:down\n"
	  SR("reject_sender_login_mismatch"), "alice@example.test", "alice",
	  SMTPD_CHECK_DEFER,
	  "451 4.3.0 <alice@example.test>: Temporary lookup failure" },
	{ "smtpd_sender_login_maps = fail:down\n"
	  SR("reject_unauthenticated_sender_login_mismatch"),
	  "alice@example.test", NULL, SMTPD_CHECK_DEFER,
	  "451 4.3.0 <alice@example.test>: Temporary lookup failure" },
	/* without maps, or without SASL, the restrictions do nothing */
	{ "smtpd_sender_login_maps =\n" SR("reject_sender_login_mismatch"),
	  "bob@example.test", "alice", SMTPD_CHECK_DUNNO, NULL },
	{ "smtpd_sasl_auth_enable = no\n" SR("reject_sender_login_mismatch"),
	  "bob@example.test", NULL, SMTPD_CHECK_DUNNO, NULL },
};
#undef SR
#undef NOT_OWNED
#undef NOT_IN

static void
test_sender_login(void **state)
{
	struct settings s;
	struct resolve_ctx *ctx;

	(void)state;
	base_settings(&s);
	ctx = ctx_open(&s);
	for (size_t i = 0; i < sizeof(login_cases) / sizeof(login_cases[0]); i++) {
		const struct login_case *c = &login_cases[i];
		struct smtpd_check_lists l;
		struct smtpd_check_facts f;
		struct config *cf;
		struct errbuf err;
		struct buf reply, text;
		struct addr a;
		const char *perr;
		enum smtpd_check_result r;

		buf_init(&text, 0);
		buf_printf(&text, "%s%s", LOGIN_CF, c->main_cf);
		errbuf_clear(&err);
		cf = config_parse_main(buf_cstr(&text), "main.cf", NULL, &err);
		if (cf == NULL)
			fail_msg("case %zu: %s", i, errbuf_str(&err));
		if (smtpd_check_lists_compile(&l, cf, &err) < 0)
			fail_msg("case %zu: %s", i, errbuf_str(&err));
		assert_int_equal(addr_parse_mailbox("alice@example.test", &a,
						    &perr), 0);
		memset(&f, 0, sizeof(f));
		f.client_addr = "198.51.100.7";
		f.client_name = "unknown";
		f.helo = "client.example";
		f.sender = c->sender;
		f.sasl_authenticated = c->login != NULL;
		f.sasl_username = c->login;
		f.rcpt = &a;
		f.rcpt_text = "<alice@example.test>";
		f.where = "RCPT";
		f.resolve = ctx;
		buf_init(&reply, 1000);
		r = smtpd_check_rcpt(&l, &f, &reply, NULL);
		if (r == SMTPD_CHECK_PERMIT)
			r = SMTPD_CHECK_DUNNO;
		if (r != c->want)
			fail_msg("case %zu: result %d, want %d (reply \"%s\")", i,
				 r, c->want, buf_cstr(&reply));
		if (c->reply && strcmp(buf_cstr(&reply), c->reply) != 0)
			fail_msg("case %zu: reply \"%s\", want \"%s\"", i,
				 buf_cstr(&reply), c->reply);
		buf_free(&reply);
		buf_free(&text);
		addr_free(&a);
		smtpd_check_lists_free(&l);
		config_free(&cf);
	}
	resolve_ctx_free(&ctx);
}
#undef LOGIN_CF

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compile),
		cmocka_unit_test(test_compile_param_name),
		cmocka_unit_test(test_lists_compile),
		cmocka_unit_test(test_eval),
		cmocka_unit_test(test_eval_client_stage),
		cmocka_unit_test(test_eval_lookup_failure),
		cmocka_unit_test(test_eval_no_relay_domains),
		cmocka_unit_test(test_vocab),
		cmocka_unit_test(test_sender_login),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
