/*
 * dns_test.c - DNS reply parsing (MX with null MX, A, AAAA, TXT joined
 * per record, PTR, NS, empty and malformed replies), MX ordering, reverse
 * names and the facteur_dns_servers syntax. Packets are built here.
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
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/dns.h"

struct pkt {
	unsigned char b[1024];
	int n;
};

static void
put16(struct pkt *p, unsigned v)
{
	p->b[p->n++] = (unsigned char)(v >> 8);
	p->b[p->n++] = (unsigned char)v;
}

static void
put_name(struct pkt *p, const char *name)
{
	while (*name) {
		size_t l = strcspn(name, ".");
		p->b[p->n++] = (unsigned char)l;
		memcpy(p->b + p->n, name, l);
		p->n += (int)l;
		name += l;
		if (*name == '.')
			name++;
	}
	p->b[p->n++] = 0;
}

/* Header + question for name/type with ancount answers following. */
static void
start(struct pkt *p, const char *name, unsigned type, unsigned ancount,
      unsigned rcode)
{
	p->n = 0;
	put16(p, 0x1234);
	put16(p, 0x8180 | rcode);
	put16(p, 1);
	put16(p, ancount);
	put16(p, 0);
	put16(p, 0);
	put_name(p, name);
	put16(p, type);
	put16(p, 1);
}

/* An answer RR: owner = pointer to the question name (offset 12). */
static int
rr_start(struct pkt *p, unsigned type)
{
	int rdlen_at;

	put16(p, 0xc00c);
	put16(p, type);
	put16(p, 1);
	put16(p, 0);
	put16(p, 300);
	rdlen_at = p->n;
	put16(p, 0);
	return rdlen_at;
}

static void
rr_end(struct pkt *p, int rdlen_at)
{
	unsigned l = (unsigned)(p->n - rdlen_at - 2);
	p->b[rdlen_at] = (unsigned char)(l >> 8);
	p->b[rdlen_at + 1] = (unsigned char)l;
}

static void
add_mx(struct pkt *p, unsigned pref, const char *host)
{
	int at = rr_start(p, DNS_MX);
	put16(p, pref);
	put_name(p, host);
	rr_end(p, at);
}

static void
test_mx(void **state)
{
	struct dns_result r;
	struct pkt p;
	size_t i;
	int seen_a = 0, seen_b = 0;

	start(&p, "example.test", DNS_MX, 3, 0);
	add_mx(&p, 20, "mx3.example.test");
	add_mx(&p, 10, "mx1.example.test");
	add_mx(&p, 10, "mx2.example.test");
	assert_int_equal(dns_parse(DNS_MX, p.b, p.n, &r), DNS_OK);
	assert_int_equal(r.n, 3);
	for (i = 0; i < 50; i++) {
		dns_mx_sort(&r);
		assert_int_equal(r.rr[0].pref, 10);
		assert_int_equal(r.rr[1].pref, 10);
		assert_string_equal(r.rr[2].data, "mx3.example.test");
		if (strcmp(r.rr[0].data, "mx1.example.test") == 0)
			seen_a++;
		else
			seen_b++;
	}
	/* random among equals: both orders show up in 50 shuffles */
	assert_true(seen_a > 0 && seen_b > 0);
	dns_result_free(&r);
}

static void
test_null_mx(void **state)
{
	struct dns_result r;
	struct pkt p;

	start(&p, "nomail.test", DNS_MX, 1, 0);
	add_mx(&p, 0, "");
	assert_int_equal(dns_parse(DNS_MX, p.b, p.n, &r), DNS_OK);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.rr[0].pref, 0);
	assert_string_equal(r.rr[0].data, "");
	dns_result_free(&r);
}

static void
test_a_aaaa(void **state)
{
	struct dns_result r;
	struct pkt p;
	int at;
	static const unsigned char v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
					      0, 0, 0, 0, 0, 0, 0, 1 };

	start(&p, "h.test", DNS_A, 2, 0);
	at = rr_start(&p, DNS_A);
	memcpy(p.b + p.n, "\x7f\x00\x00\x02", 4);
	p.n += 4;
	rr_end(&p, at);
	at = rr_start(&p, DNS_A);
	memcpy(p.b + p.n, "\xc0\x00\x02\x01", 4);
	p.n += 4;
	rr_end(&p, at);
	assert_int_equal(dns_parse(DNS_A, p.b, p.n, &r), DNS_OK);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.rr[0].data, "127.0.0.2");
	assert_string_equal(r.rr[1].data, "192.0.2.1");
	dns_result_free(&r);

	start(&p, "h.test", DNS_AAAA, 1, 0);
	at = rr_start(&p, DNS_AAAA);
	memcpy(p.b + p.n, v6, 16);
	p.n += 16;
	rr_end(&p, at);
	assert_int_equal(dns_parse(DNS_AAAA, p.b, p.n, &r), DNS_OK);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.rr[0].data, "2001:db8::1");
	dns_result_free(&r);
}

static void
test_txt(void **state)
{
	struct dns_result r;
	struct pkt p;
	int at;

	start(&p, "t.test", DNS_TXT, 2, 0);
	at = rr_start(&p, DNS_TXT);
	p.b[p.n++] = 5;
	memcpy(p.b + p.n, "v=spf", 5);
	p.n += 5;
	p.b[p.n++] = 6;
	memcpy(p.b + p.n, "1 -all", 6);
	p.n += 6;
	rr_end(&p, at);
	at = rr_start(&p, DNS_TXT);
	p.b[p.n++] = 3;
	memcpy(p.b + p.n, "two", 3);
	p.n += 3;
	rr_end(&p, at);
	assert_int_equal(dns_parse(DNS_TXT, p.b, p.n, &r), DNS_OK);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.rr[0].data, "v=spf1 -all");
	assert_string_equal(r.rr[1].data, "two");
	dns_result_free(&r);
}

static void
test_ptr(void **state)
{
	struct dns_result r;
	struct pkt p;
	int at;

	start(&p, "1.0.0.127.in-addr.arpa", DNS_PTR, 1, 0);
	at = rr_start(&p, DNS_PTR);
	put_name(&p, "localhost.test");
	rr_end(&p, at);
	assert_int_equal(dns_parse(DNS_PTR, p.b, p.n, &r), DNS_OK);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.rr[0].data, "localhost.test");
	dns_result_free(&r);
}

/* NS (check_*_ns_access): every name server; NODATA is "not found". */
static void
test_ns(void **state)
{
	struct dns_result r;
	struct pkt p;
	int at;

	start(&p, "example.test", DNS_NS, 2, 0);
	at = rr_start(&p, DNS_NS);
	put_name(&p, "ns1.example.test");
	rr_end(&p, at);
	at = rr_start(&p, DNS_NS);
	put_name(&p, "ns2.example.net");
	rr_end(&p, at);
	assert_int_equal(dns_parse(DNS_NS, p.b, p.n, &r), DNS_OK);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.rr[0].data, "ns1.example.test");
	assert_string_equal(r.rr[1].data, "ns2.example.net");
	dns_result_free(&r);
	start(&p, "example.test", DNS_NS, 0, 0);
	assert_int_equal(dns_parse(DNS_NS, p.b, p.n, &r), DNS_NOTFOUND);
	assert_int_equal(r.n, 0);
	start(&p, "nosuch.test", DNS_NS, 0, 3);
	assert_int_equal(dns_parse(DNS_NS, p.b, p.n, &r), DNS_NOTFOUND);
}

static void
test_empty_and_bad(void **state)
{
	struct dns_result r;
	struct pkt p;
	int i;

	start(&p, "none.test", DNS_MX, 0, 0);
	assert_int_equal(dns_parse(DNS_MX, p.b, p.n, &r), DNS_NOTFOUND);
	assert_int_equal(r.n, 0);
	start(&p, "none.test", DNS_A, 0, 0);
	assert_int_equal(dns_parse(DNS_A, p.b, p.n, &r), DNS_NOTFOUND);
	assert_int_equal(dns_parse(DNS_A, NULL, 0, &r), DNS_TEMPFAIL);
	/* truncated at every length: never OK with garbage, never a crash */
	start(&p, "example.test", DNS_MX, 1, 0);
	add_mx(&p, 10, "mx.example.test");
	for (i = 1; i < p.n; i++) {
		enum dns_status st = dns_parse(DNS_MX, p.b, i, &r);
		assert_true(st != DNS_OK);
		assert_int_equal(r.n, 0);
	}
}

static void
test_reverse(void **state)
{
	char out[128];

	assert_int_equal(dns_reverse_name("192.0.2.5", "in-addr.arpa", out,
					  sizeof(out)), 0);
	assert_string_equal(out, "5.2.0.192.in-addr.arpa");
	assert_int_equal(dns_reverse_name("127.0.0.2", "zen.example", out,
					  sizeof(out)), 0);
	assert_string_equal(out, "2.0.0.127.zen.example");
	assert_int_equal(dns_reverse_name("2001:db8::1", "ip6.arpa", out,
					  sizeof(out)), 0);
	assert_string_equal(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"
			    ".8.b.d.0.1.0.0.2.ip6.arpa");
	assert_int_equal(dns_reverse_name("nope", "x", out, sizeof(out)), -1);
	assert_int_equal(dns_reverse_name("1.2.3.4", "in-addr.arpa", out, 10), -1);
}

static void
test_servers(void **state)
{
	static const struct { const char *in, *out; } ok[] = {
		{ "127.0.0.1", "127.0.0.1:53" },
		{ "127.0.0.1:5353", "127.0.0.1:5353" },
		{ "127.0.0.1:5353, 127.0.0.2", "127.0.0.1:5353,127.0.0.2:53" },
		{ "[::1]:5353", "[::1]:5353" },
		{ "::1", "[::1]:53" },
	};
	static const char *const bad[] = {
		"localhost", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:x",
		"[::1", "[::1]x", "1.2.3",
	};
	char out[256];
	struct errbuf err;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(dns_servers_csv(ok[i].in, out, sizeof(out), &err), 0);
		assert_string_equal(out, ok[i].out);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errbuf_clear(&err);
		assert_int_equal(dns_servers_csv(bad[i], out, sizeof(out), &err), -1);
		assert_non_null(strstr(errbuf_str(&err), "facteur_dns_servers"));
	}
}


/* ---- live: the libevent glue against a private dnsmasq ---- */

struct answer {
	int done;
	enum dns_status st;
	char data[4][128];
	int pref[4];
	size_t n;
};

static void
answer_cb(void *arg, enum dns_status st, const struct dns_result *res,
	  const char *why)
{
	struct answer *a = arg;
	size_t i;

	a->done = 1;
	a->st = st;
	for (i = 0; res && i < res->n && i < 4; i++) {
		snprintf(a->data[i], sizeof(a->data[i]), "%s", res->rr[i].data);
		a->pref[i] = res->rr[i].pref;
	}
	a->n = res ? res->n : 0;
}

static void
run_until(struct event_base *base, struct answer *a, int secs)
{
	time_t end = time(NULL) + secs;

	while (!a->done && time(NULL) < end)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(2000);
}

static pid_t dnsmasq_pid;

/* Runs even when an assertion failed: no dnsmasq outlives the test. */
static int
live_teardown(void **state)
{
	if (dnsmasq_pid > 0) {
		kill(dnsmasq_pid, SIGTERM);
		waitpid(dnsmasq_pid, NULL, 0);
		dnsmasq_pid = 0;
	}
	return 0;
}

static void
test_live_dnsmasq(void **state)
{
	struct event_base *base;
	struct dns *d;
	struct errbuf err;
	struct answer a;
	char servers[64], portarg[32];
	int port = 20000 + (int)(getpid() % 20000);
	pid_t pid;

	if (access("/usr/sbin/dnsmasq", X_OK) != 0)
		skip();
	snprintf(portarg, sizeof(portarg), "--port=%d", port);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		/* never hold the test runner's output pipe open */
		if (nul >= 0) {
			dup2(nul, 1);
			dup2(nul, 2);
		}
		execl("/usr/sbin/dnsmasq", "dnsmasq", "--no-daemon", portarg,
		      "--listen-address=127.0.0.1", "--bind-interfaces",
		      "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
		      "--user=nobody", "--pid-file=", "--local=/test/",
		      "--mx-host=mail.test,mx1.mail.test,10",
		      "--host-record=mx1.mail.test,127.0.0.7",
		      "--txt-record=txt.test,hello world",
		      "--ptr-record=7.0.0.127.in-addr.arpa,mx1.mail.test",
		      (char *)NULL);
		_exit(127);
	}
	dnsmasq_pid = pid;
	usleep(300000);
	base = event_base_new();
	snprintf(servers, sizeof(servers), "127.0.0.1:%d", port);
	d = dns_new(base, servers, &err);
	assert_non_null(d);

	memset(&a, 0, sizeof(a));
	dns_query(d, "mail.test", DNS_MX, answer_cb, &a);
	assert_int_equal(a.done, 0);	/* never from inside dns_query */
	run_until(base, &a, 10);
	assert_int_equal(a.st, DNS_OK);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.data[0], "mx1.mail.test");
	assert_int_equal(a.pref[0], 10);

	memset(&a, 0, sizeof(a));
	dns_query(d, "mx1.mail.test", DNS_A, answer_cb, &a);
	run_until(base, &a, 10);
	assert_int_equal(a.st, DNS_OK);
	assert_string_equal(a.data[0], "127.0.0.7");

	memset(&a, 0, sizeof(a));
	dns_query(d, "txt.test", DNS_TXT, answer_cb, &a);
	run_until(base, &a, 10);
	assert_int_equal(a.st, DNS_OK);
	assert_string_equal(a.data[0], "hello world");

	memset(&a, 0, sizeof(a));
	dns_query(d, "7.0.0.127.in-addr.arpa", DNS_PTR, answer_cb, &a);
	run_until(base, &a, 10);
	assert_int_equal(a.st, DNS_OK);
	assert_string_equal(a.data[0], "mx1.mail.test");

	memset(&a, 0, sizeof(a));
	dns_query(d, "nothing.test", DNS_MX, answer_cb, &a);
	run_until(base, &a, 10);
	assert_int_equal(a.done, 1);
	assert_int_equal(a.st, DNS_NOTFOUND);

	/* a query left pending is dropped by dns_free, no callback */
	memset(&a, 0, sizeof(a));
	dns_query(d, "mail.test", DNS_MX, answer_cb, &a);
	assert_int_equal(dns_pending(d), 1);
	dns_free(&d);
	assert_int_equal(a.done, 0);

	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	dnsmasq_pid = 0;

	/* nobody listening any more: a temporary failure, bounded in time */
	d = dns_new(base, servers, &err);
	assert_non_null(d);
	memset(&a, 0, sizeof(a));
	dns_query(d, "mail.test", DNS_MX, answer_cb, &a);
	run_until(base, &a, 20);
	assert_int_equal(a.done, 1);
	assert_int_equal(a.st, DNS_TEMPFAIL);
	dns_free(&d);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mx),
		cmocka_unit_test(test_null_mx),
		cmocka_unit_test(test_a_aaaa),
		cmocka_unit_test(test_txt),
		cmocka_unit_test(test_ptr),
		cmocka_unit_test(test_ns),
		cmocka_unit_test(test_empty_and_bad),
		cmocka_unit_test(test_reverse),
		cmocka_unit_test(test_servers),
		cmocka_unit_test_teardown(test_live_dnsmasq, live_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
