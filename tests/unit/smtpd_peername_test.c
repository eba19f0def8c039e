/*
 * smtpd_peername_test.c - the pieces of the client name lookup that need
 * no SMTP session: Postfix's valid_hostname rules for PTR names, and
 * dns.c's host lookups (dns_addr_names / dns_host_addrs) answering from
 * the hosts file before DNS, with a DNS server that refuses (127.0.0.1:9):
 * an address the hosts file names is named at once, another one fails
 * temporarily, and no callback runs inside the call that started it.
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_hosts_file_first),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
