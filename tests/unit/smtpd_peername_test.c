/*
 * smtpd_peername_test.c - the pieces of the client name lookup that need
 * no SMTP session: Postfix's valid_hostname rules for PTR names, and
 * dns.c's host lookups (dns_addr_names / dns_host_addrs) answering from
 * the hosts file before DNS, with a DNS server that refuses (127.0.0.1:9):
 * an address the hosts file names is named at once, another one fails
 * temporarily, and no callback runs inside the call that started it.
 * Also how the restrictions read the session's name statuses (Postfix's
 * reject_unknown_client / reject_unknown_reverse_name and the name-based
 * lookups of check_client_access / check_reverse_client_hostname_access).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core/dns.h"
#include "core/lib/buf.h"
#include "core/smtpd_check.h"
#include "core/smtpd_peername.h"

static void
test_valid(void **state)
{
	(void)state;
	assert_true(smtpd_peername_valid("mail.example.com"));
	assert_true(smtpd_peername_valid("localhost"));
	assert_true(smtpd_peername_valid("a-b.c_d.example"));
	assert_true(smtpd_peername_valid("1host.example"));
	assert_false(smtpd_peername_valid(""));
	assert_false(smtpd_peername_valid("127.0.0.1"));	/* all numeric */
	assert_false(smtpd_peername_valid("-bad.example"));
	assert_false(smtpd_peername_valid("bad-.example"));
	assert_false(smtpd_peername_valid("a..b"));
	assert_false(smtpd_peername_valid(".a"));
	assert_false(smtpd_peername_valid("a."));
	assert_false(smtpd_peername_valid("sp ace.example"));
	assert_false(smtpd_peername_valid("x?y.example"));
	{
		char label[70];

		memset(label, 'a', 64);
		label[64] = '\0';
		assert_false(smtpd_peername_valid(label));	/* label > 63 */
		label[63] = '\0';
		assert_true(smtpd_peername_valid(label));
	}
	{
		char longname[300];

		for (int i = 0; i < 296; i += 2)
			memcpy(longname + i, "a.", 2);
		longname[296] = 'a';
		longname[297] = '\0';
		assert_false(smtpd_peername_valid(longname));	/* > 255 */
	}
}

/* The first name /etc/hosts gives addr ("" when none). */
static void
hosts_name(const char *addr, char *out, size_t size)
{
	char line[512];
	FILE *f = fopen("/etc/hosts", "r");

	out[0] = '\0';
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f)) {
		char a[128], n[256];

		line[strcspn(line, "#")] = '\0';
		if (sscanf(line, "%127s %255s", a, n) == 2 && strcmp(a, addr) == 0) {
			snprintf(out, size, "%s", n);
			break;
		}
	}
	fclose(f);
}

struct answer {
	int                done, inside;
	enum dns_status    st;
	char               first[256];
	int                has_loopback;
};

static int in_call;

static void
on_answer(void *arg, enum dns_status st, const struct dns_result *res,
	  const char *why)
{
	struct answer *a = arg;

	(void)why;
	a->done = 1;
	a->inside = in_call;
	a->st = st;
	if (st == DNS_OK && res->n > 0)
		snprintf(a->first, sizeof(a->first), "%s", res->rr[0].data);
	for (size_t i = 0; st == DNS_OK && i < res->n; i++)
		if (strcmp(res->rr[i].data, "127.0.0.1") == 0)
			a->has_loopback = 1;
}

static void
run_until(struct event_base *base, struct answer *a)
{
	for (int i = 0; i < 500 && !a->done; i++) {
		struct timeval tv = { 0, 10000 };

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
}

static void
test_hosts_file_first(void **state)
{
	struct event_base *base = event_base_new();
	struct errbuf err;
	struct dns *d;
	struct answer a;
	char expect[256];

	(void)state;
	hosts_name("127.0.0.1", expect, sizeof(expect));
	if (expect[0] == '\0')
		skip();
	errbuf_clear(&err);
	d = dns_new(base, "127.0.0.1:9", &err);
	assert_non_null(d);

	memset(&a, 0, sizeof(a));
	in_call = 1;
	dns_addr_names(d, "127.0.0.1", on_answer, &a);
	in_call = 0;
	assert_false(a.done);		/* never from inside the call */
	run_until(base, &a);
	assert_true(a.done);
	assert_false(a.inside);
	assert_int_equal(a.st, DNS_OK);
	assert_string_equal(a.first, expect);

	memset(&a, 0, sizeof(a));
	dns_host_addrs(d, expect, 0, on_answer, &a);
	run_until(base, &a);
	assert_int_equal(a.st, DNS_OK);
	assert_true(a.has_loopback);

	/* not in the hosts file; DNS refuses: a temporary failure, soon */
	memset(&a, 0, sizeof(a));
	dns_addr_names(d, "127.0.0.9", on_answer, &a);
	run_until(base, &a);
	assert_true(a.done);
	assert_int_equal(a.st, DNS_TEMPFAIL);

	/* the same for a name */
	memset(&a, 0, sizeof(a));
	dns_host_addrs(d, "not-in-hosts.example", 0, on_answer, &a);
	run_until(base, &a);
	assert_true(a.done);
	assert_int_equal(a.st, DNS_TEMPFAIL);

	/* not an address at all */
	memset(&a, 0, sizeof(a));
	dns_addr_names(d, "no.such.address", on_answer, &a);
	run_until(base, &a);
	assert_int_equal(a.st, DNS_NOTFOUND);
	assert_int_equal(dns_pending(d), 0);

	dns_free(&d);
	event_base_free(base);
}

/* One list evaluated for a client; the reply ("" when it passed). */
static const char *
eval1(const char *list, const char *name, const char *rev, int st, int rst,
      struct buf *reply)
{
	struct smtpd_restrictions *r;
	struct smtpd_check_facts f;
	struct errbuf err;
	enum smtpd_check_result res;

	errbuf_clear(&err);
	r = smtpd_check_compile("smtpd_client_restrictions", list, &err);
	if (r == NULL)
		fail_msg("%s: %s", list, errbuf_str(&err));
	memset(&f, 0, sizeof(f));
	f.client_addr = "192.0.2.9";
	f.client_name = name;
	f.reverse_client_name = rev;
	f.name_status = (unsigned char)st;
	f.reverse_name_status = (unsigned char)rst;
	buf_reset(reply);
	res = smtpd_check_eval(r, &f, reply);
	smtpd_check_free(&r);
	if (res == SMTPD_CHECK_DUNNO || res == SMTPD_CHECK_PERMIT)
		return "";
	return buf_cstr(reply);
}

static void
test_statuses(void **state)
{
	const char *u = "reject_unknown_client_hostname";
	const char *ur = "reject_unknown_reverse_client_hostname";
	struct buf reply;

	(void)state;
	buf_init(&reply, 0);
	assert_string_equal(eval1(u, "mx.example", "mx.example", SMTPD_PEER_OK,
				  SMTPD_PEER_OK, &reply), "");
	/* Postfix: 450 when the lookup failed temporarily, else
	 * unknown_client_reject_code (450 by default); RFC 7372 4.7.25 */
	assert_string_equal(eval1(u, "unknown", NULL, SMTPD_PEER_TEMP,
				  SMTPD_PEER_TEMP, &reply),
			    "450 4.7.25 Client host rejected: cannot find your "
			    "hostname, [192.0.2.9]");
	assert_string_equal(eval1(u, "unknown", "forged.example",
				  SMTPD_PEER_FORGED, SMTPD_PEER_OK, &reply),
			    "450 4.7.25 Client host rejected: cannot find your "
			    "hostname, [192.0.2.9]");
	/* the reverse name is enough for the reverse check */
	assert_string_equal(eval1(ur, "unknown", "forged.example",
				  SMTPD_PEER_FORGED, SMTPD_PEER_OK, &reply), "");
	assert_string_equal(eval1(ur, "unknown", NULL, SMTPD_PEER_PERM,
				  SMTPD_PEER_PERM, &reply),
			    "450 4.7.1 Client host rejected: cannot find your "
			    "reverse hostname, [192.0.2.9]");
	/* facts without statuses: known when the name is */
	assert_string_equal(eval1(u, "mx.example", NULL, SMTPD_PEER_UNSET,
				  SMTPD_PEER_UNSET, &reply), "");
	assert_string_equal(eval1(u, "unknown", NULL, SMTPD_PEER_UNSET,
				  SMTPD_PEER_UNSET, &reply),
			    "450 4.7.25 Client host rejected: cannot find your "
			    "hostname, [192.0.2.9]");
	/* check_client_access: the verified name and its parents, then the
	 * address; check_reverse_client_hostname_access: the PTR name */
	assert_string_equal(eval1("check_client_access inline:{{example=REJECT "
				  "by parent}, {192.0.2.9=REJECT by address}}",
				  "mx.example", "mx.example", SMTPD_PEER_OK,
				  SMTPD_PEER_OK, &reply),
			    "554 5.7.1 <mx.example[192.0.2.9]>: Client host "
			    "rejected: by parent");
	assert_string_equal(eval1("check_client_access inline:{{forged.example="
				  "REJECT by name}, {192.0.2.9=REJECT by address}}",
				  "unknown", "forged.example", SMTPD_PEER_FORGED,
				  SMTPD_PEER_OK, &reply),
			    "554 5.7.1 <unknown[192.0.2.9]>: Client host "
			    "rejected: by address");
	assert_string_equal(eval1("check_reverse_client_hostname_access "
				  "inline:{{forged.example=REJECT by PTR}}",
				  "unknown", "forged.example", SMTPD_PEER_FORGED,
				  SMTPD_PEER_OK, &reply),
			    "554 5.7.1 <forged.example>: Unverified Client host "
			    "rejected: by PTR");
	buf_free(&reply);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_hosts_file_first),
		cmocka_unit_test(test_statuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
