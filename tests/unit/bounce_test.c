/*
 * bounce_test.c - delivery status notifications: the RFC 3464 structure
 * (headers, boundaries, the three parts, per-message and per-recipient
 * fields), RET=HDRS and bounce_size_limit, delay warnings and success
 * reports, hostile values (CR/LF, control bytes, a boundary inside the
 * original), random content, and the reply/relay helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/bounce.h"

/* The parsed shape of a notification. */
struct parsed {
	char  boundary[512];
	char *head;		/* top-level header block */
	char *part[4];		/* each part: its headers, "\n", its body */
	int   nparts;
	bool  closed;		/* the closing delimiter was found */
};

static char *
dupn(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* A header's unfolded value from a header block, or NULL. */
static char *
header(const char *block, const char *name)
{
	size_t nl = strlen(name);
	const char *p = block;

	while (*p && *p != '\n') {
		const char *e = strchr(p, '\n');

		if (e == NULL)
			e = p + strlen(p);
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *end = e;
			char *out;

			/* continuation lines */
			while (*end == '\n' && (end[1] == ' ' || end[1] == '\t')) {
				const char *n2 = strchr(end + 1, '\n');
				end = n2 ? n2 : end + 1 + strlen(end + 1);
			}
			while (*v == ' ')
				v++;
			out = dupn(v, (size_t)(end - v));
			for (char *c = out; *c; c++)
				if (*c == '\n' || *c == '\t')
					*c = ' ';
			return out;
		}
		p = *e ? e + 1 : e;
	}
	return NULL;
}

/* Every header line is "Name: value" or a continuation (no injection). */
static void
check_header_block(const char *block, size_t len)
{
	const char *p = block, *end = block + len;

	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		size_t n = e ? (size_t)(e - p) : (size_t)(end - p), i;

		if (n == 0)
			break;
		if (p[0] != ' ' && p[0] != '\t') {
			for (i = 0; i < n && p[i] != ':'; i++)
				assert_true(p[i] > ' ' && p[i] < 0x7f);
			assert_true(i > 0 && i < n);
		}
		for (i = 0; i < n; i++)
			assert_true(p[i] == '\t' || ((unsigned char)p[i] >= 0x20
					&& (unsigned char)p[i] < 0x7f));
		p += n + 1;
	}
}

static void
parse(const char *msg, size_t len, struct parsed *pp)
{
	const char *hend, *p, *end = msg + len;
	char *ct, *b;
	char delim[600];
	size_t dl;

	memset(pp, 0, sizeof(*pp));
	hend = strstr(msg, "\n\n");
	assert_non_null(hend);
	pp->head = dupn(msg, (size_t)(hend - msg) + 1);
	check_header_block(msg, (size_t)(hend - msg) + 1);
	ct = header(pp->head, "Content-Type");
	assert_non_null(ct);
	assert_non_null(strstr(ct, "multipart/report"));
	assert_non_null(strstr(ct, "report-type=delivery-status"));
	b = strstr(ct, "boundary=\"");
	assert_non_null(b);
	b += 10;
	assert_non_null(strchr(b, '"'));
	snprintf(pp->boundary, sizeof(pp->boundary), "%.*s",
		 (int)(strchr(b, '"') - b), b);
	free(ct);
	dl = (size_t)snprintf(delim, sizeof(delim), "\n--%s", pp->boundary);
	/* RFC 2046 5.1.1: delimiters are whole lines */
	p = hend + 1;
	for (;;) {
		const char *d = NULL, *q;

		for (q = p; q + dl <= end; q++)
			if (memcmp(q, delim, dl) == 0
			    && (q[dl] == '\n' || (q[dl] == '-' && q[dl + 1] == '-'))) {
				d = q;
				break;
			}
		if (d == NULL)
			break;
		if (pp->nparts > 0 || p != hend + 1) {
			/* the part before this delimiter */
		}
		if (d[dl] == '-') {
			if (pp->nparts > 0)
				pp->part[pp->nparts - 1] = dupn(p, (size_t)(d - p) + 1);
			pp->closed = true;
			break;
		}
		if (pp->nparts > 0)
			pp->part[pp->nparts - 1] = dupn(p, (size_t)(d - p) + 1);
		assert_true(pp->nparts < 4);
		pp->nparts++;
		p = d + dl + 1;
	}
}

static void
parsed_free(struct parsed *pp)
{
	free(pp->head);
	for (int i = 0; i < 4; i++)
		free(pp->part[i]);
}

static const char *
part_body(const char *part)
{
	const char *b = strstr(part, "\n\n");

	if (part[0] == '\n')
		return part + 1;
	assert_non_null(b);
	return b + 2;
}

static const char sample[] =
	"Received: from x\n\tby y\nFrom: alice@example.test\n"
	"Subject: hello\nMessage-ID: <m1@example.test>\n\nbody line 1\nbody line 2\n";

static const struct bounce_rcpt two[] = {
	{ .addr = "bob@remote.test", .orig = "bob@remote.test",
	  .orcpt = "rfc822;Bob@Remote.test", .status = "5.1.1",
	  .remote_mta = "mx.remote.test", .diag_type = "smtp",
	  .diag = "550 5.1.1 <bob@remote.test>: Recipient address rejected",
	  .text = "host mx.remote.test[127.0.0.2] said: 550 5.1.1 "
		  "<bob@remote.test>: Recipient address rejected (in reply to "
		  "RCPT TO command)" },
	{ .addr = "carol@example.test", .orig = "info@example.test",
	  .status = "5.2.2", .diag_type = "x-unix",
	  .diag = "maildir over quota", .text = "maildir over quota" },
};

static struct bounce_req
base_req(enum bounce_kind kind)
{
	struct bounce_req r;

	memset(&r, 0, sizeof(r));
	r.kind = kind;
	r.myhostname = "mail.example.test";
	r.queue_id = "0123456789ABCDEF0";
	r.new_id = "0123456789ABCDEF1";
	r.sender = "alice@example.test";
	r.arrival = 1700000000;
	r.now = 1700000100;
	r.delay_warning_time = 4 * 3600;
	r.maximal_queue_lifetime = 5 * 86400;
	r.rcpt = two;
	r.nrcpt = 2;
	r.content = sample;
	r.len = sizeof(sample) - 1;
	r.size_limit = 50000;
	return r;
}

static struct parsed
build(const struct bounce_req *r, struct buf *out)
{
	struct parsed pp;

	buf_init(out, 0);
	assert_int_equal(bounce_format(r, out), 0);
	parse(out->data, out->len, &pp);
	assert_int_equal(pp.nparts, 3);
	assert_true(pp.closed);
	return pp;
}

static void
assert_header(const char *block, const char *name, const char *want)
{
	char *v = header(block, name);

	if (v == NULL || (want && strcmp(v, want) != 0))
		fail_msg("%s: got \"%s\", want \"%s\"", name, v ? v : "(none)",
			 want ? want : "(any)");
	free(v);
}

static void
test_failed_full(void **state)
{
	struct bounce_req r = base_req(BOUNCE_FAILED);
	struct buf out;
	struct parsed pp = build(&r, &out);
	const char *dsn;

	assert_header(pp.head, "From", "MAILER-DAEMON@mail.example.test (Mail Delivery System)");
	assert_header(pp.head, "To", "alice@example.test");
	assert_header(pp.head, "Subject", "Undelivered Mail Returned to Sender");
	assert_header(pp.head, "Auto-Submitted", "auto-replied");
	assert_header(pp.head, "MIME-Version", "1.0");
	assert_header(pp.head, "Date", NULL);
	assert_header(pp.head, "Message-Id", NULL);
	assert_non_null(strstr(pp.head, ".0123456789ABCDEF1@mail.example.test>"));
	assert_null(header(pp.head, "Content-Transfer-Encoding"));
	/* part 1: the text */
	assert_header(pp.part[0], "Content-Type", "text/plain; charset=us-ascii");
	assert_non_null(strstr(pp.part[0], "This is the mail system at host mail.example.test."));
	assert_non_null(strstr(pp.part[0], "could not\nbe delivered to one or more recipients"));
	assert_non_null(strstr(pp.part[0], "\n<bob@remote.test>: host mx.remote.test[127.0.0.2] said: 550 5.1.1\n    <bob@remote.test>"));
	assert_non_null(strstr(pp.part[0], "\n<carol@example.test> (expanded from <info@example.test>): maildir over quota\n"));
	/* part 2: message/delivery-status, per-message then per-recipient */
	assert_header(pp.part[1], "Content-Type", "message/delivery-status");
	dsn = part_body(pp.part[1]);
	assert_true(strncmp(dsn, "Reporting-MTA: dns; mail.example.test\n", 38) == 0);
	assert_non_null(strstr(dsn, "X-Postfix-Queue-ID: 0123456789ABCDEF0\n"));
	assert_non_null(strstr(dsn, "X-Postfix-Sender: rfc822; alice@example.test\n"));
	assert_non_null(strstr(dsn, "Arrival-Date: "));
	assert_null(strstr(dsn, "Original-Envelope-Id"));
	assert_non_null(strstr(dsn, "\n\nFinal-Recipient: rfc822; bob@remote.test\n"
			       "Original-Recipient: rfc822; Bob@Remote.test\n"
			       "Action: failed\nStatus: 5.1.1\n"
			       "Remote-MTA: dns; mx.remote.test\n"
			       "Diagnostic-Code: smtp; 550 5.1.1 <bob@remote.test>: "
			       "Recipient address rejected\n"));
	assert_non_null(strstr(dsn, "\n\nFinal-Recipient: rfc822; carol@example.test\n"
			       "Action: failed\nStatus: 5.2.2\n"
			       "Diagnostic-Code: x-unix; maildir over quota\n"));
	assert_null(strstr(dsn, "Will-Retry-Until"));
	check_header_block(dsn, strlen(dsn));
	/* part 3: the whole message */
	assert_header(pp.part[2], "Content-Type", "message/rfc822");
	assert_header(pp.part[2], "Content-Description", "Undelivered Message");
	assert_non_null(strstr(part_body(pp.part[2]), sample));
	parsed_free(&pp);
	buf_free(&out);
}

static void
test_ret_hdrs_and_limit(void **state)
{
	struct bounce_req r = base_req(BOUNCE_FAILED);
	struct buf out, big;
	struct parsed pp;
	const char *body;

	r.ret = "HDRS";
	r.envid = "QQ314159";
	pp = build(&r, &out);
	assert_header(pp.part[2], "Content-Type", "text/rfc822-headers");
	body = part_body(pp.part[2]);
	assert_non_null(strstr(body, "Subject: hello\n"));
	assert_non_null(strstr(body, "\tby y\n"));
	assert_null(strstr(body, "body line"));
	assert_non_null(strstr(part_body(pp.part[1]), "Original-Envelope-Id: QQ314159\n"));
	parsed_free(&pp);
	buf_free(&out);

	/* bounce_size_limit: whole lines until the limit is reached */
	buf_init(&big, 0);
	buf_puts(&big, "Subject: big\n\n");
	for (int i = 0; i < 5000; i++)
		buf_printf(&big, "line %05d of the body.......\n", i);	/* 30 bytes */
	r = base_req(BOUNCE_FAILED);
	r.ret = "FULL";
	r.content = big.data;
	r.len = big.len;
	r.size_limit = 1000;
	pp = build(&r, &out);
	assert_header(pp.part[2], "Content-Type", "message/rfc822");
	body = part_body(pp.part[2]);
	assert_non_null(strstr(body, "line 00031 "));
	assert_null(strstr(body, "line 00033 "));
	assert_true(strlen(body) < 1100);
	parsed_free(&pp);
	buf_free(&out);
	/* 0 = no limit */
	r.size_limit = 0;
	pp = build(&r, &out);
	assert_non_null(strstr(part_body(pp.part[2]), "line 04999 "));
	parsed_free(&pp);
	buf_free(&out);
	buf_free(&big);
}

static void
test_delayed_and_delivered(void **state)
{
	struct bounce_req r = base_req(BOUNCE_DELAYED);
	struct bounce_rcpt d = { .addr = "bob@remote.test", .status = "4.4.1",
				 .remote_mta = NULL, .diag_type = "x-unix",
				 .diag = "connect to mx[127.0.0.2]:25: refused" };
	struct buf out;
	struct parsed pp;
	const char *dsn;

	r.rcpt = &d;
	r.nrcpt = 1;
	pp = build(&r, &out);
	assert_header(pp.head, "Subject", "Delayed Mail (still being retried)");
	assert_non_null(strstr(pp.part[0], "# THIS IS A WARNING ONLY."));
	assert_non_null(strstr(pp.part[0], "could not be delivered for 4 hour(s).\n"));
	assert_non_null(strstr(pp.part[0], "until it is 5 day(s) old.\n"));
	dsn = part_body(pp.part[1]);
	assert_non_null(strstr(dsn, "Action: delayed\nStatus: 4.4.1\n"));
	assert_non_null(strstr(dsn, "Will-Retry-Until: "));
	assert_null(strstr(dsn, "Remote-MTA"));
	/* a delay warning returns the headers only, whatever RET says */
	assert_header(pp.part[2], "Content-Type", "text/rfc822-headers");
	parsed_free(&pp);
	buf_free(&out);

	r = base_req(BOUNCE_DELIVERED);
	d.status = "2.0.0";
	d.diag = "delivered to maildir";
	r.rcpt = &d;
	r.nrcpt = 1;
	pp = build(&r, &out);
	assert_header(pp.head, "Subject", "Successful Mail Delivery Report");
	assert_non_null(strstr(part_body(pp.part[1]), "Action: delivered\nStatus: 2.0.0\n"));
	assert_header(pp.part[2], "Content-Type", "text/rfc822-headers");
	parsed_free(&pp);
	buf_free(&out);
	r.ret = "FULL";
	pp = build(&r, &out);
	assert_header(pp.part[2], "Content-Type", "message/rfc822");
	parsed_free(&pp);
	buf_free(&out);
	d.action = "relayed";
	pp = build(&r, &out);
	assert_non_null(strstr(part_body(pp.part[1]), "Action: relayed\nStatus: 2.0.0\n"));
	parsed_free(&pp);
	buf_free(&out);
}

/* Values that try to break out of their header line or the MIME structure. */
/* notify_classes postmaster notices: subject, To:, text, no advice */
static void
test_postmaster_notice(void **state)
{
	struct bounce_req r = base_req(BOUNCE_FAILED);
	struct bounce_rcpt d = { .addr = "bob@remote.test", .status = "5.1.1",
				 .diag_type = "smtp", .diag = "550 5.1.1 unknown" };
	struct buf out;
	struct parsed pp;

	r.rcpt = &d;
	r.nrcpt = 1;
	r.postmaster = "postmaster@example.test";
	r.ret = "HDRS";
	pp = build(&r, &out);
	assert_header(pp.head, "Subject", "Postmaster Copy: Undelivered Mail");
	assert_header(pp.head, "To", "postmaster@example.test");
	assert_non_null(strstr(pp.part[0], "Enclosed is the mail delivery report "
			       "that you requested.\n"));
	assert_null(strstr(pp.part[0], "I'm sorry"));
	assert_null(strstr(pp.part[0], "For further assistance"));
	/* the original sender is still named in the report */
	assert_non_null(strstr(part_body(pp.part[1]), "X-Postfix-Sender: rfc822; "));
	assert_header(pp.part[2], "Content-Type", "text/rfc822-headers");
	parsed_free(&pp);
	buf_free(&out);
	r = base_req(BOUNCE_DELAYED);
	r.rcpt = &d;
	r.nrcpt = 1;
	r.postmaster = "pm@example.test";
	pp = build(&r, &out);
	assert_header(pp.head, "Subject", "Postmaster Warning: Delayed Mail");
	assert_header(pp.head, "To", "pm@example.test");
	parsed_free(&pp);
	buf_free(&out);
}

static void
test_hostile_values(void **state)
{
	struct bounce_req r = base_req(BOUNCE_FAILED);
	struct bounce_rcpt h = {
		.addr = "x@y\r\nBcc: victim@z", .orig = "o\n\nrig",
		.orcpt = "rfc822;\x01weird", .status = "5.0.0\nX-Evil: 1",
		.remote_mta = "mx\n.evil", .diag_type = "smtp\r",
		.diag = "550 no\r\nContent-Type: text/html", .text = NULL,
	};
	struct buf out, content;
	struct parsed pp;
	char line[256];

	/* the original contains what the boundary would be */
	buf_init(&content, 0);
	buf_puts(&content, "Subject: trap\n\n");
	snprintf(line, sizeof(line), "--%s.%lld/%s\n--%s.%lld/%s--\n", r.queue_id,
		 (long long)r.now, r.myhostname, r.queue_id, (long long)r.now,
		 r.myhostname);
	buf_puts(&content, line);
	buf_append(&content, "nul\0byte \xff\n", 11);
	r.content = content.data;
	r.len = content.len;
	r.sender = "a@b\nBcc: x@y";
	r.envid = "id\r\nX: y";
	r.rcpt = &h;
	r.nrcpt = 1;
	pp = build(&r, &out);
	assert_true(strcmp(pp.boundary, "0123456789ABCDEF0.1700000100/mail.example.test") != 0);
	assert_null(header(pp.head, "Bcc"));
	assert_header(pp.head, "Content-Transfer-Encoding", "8bit");
	check_header_block(part_body(pp.part[1]), strlen(part_body(pp.part[1])));
	assert_null(strstr(part_body(pp.part[1]), "\nX-Evil"));
	assert_null(strstr(part_body(pp.part[1]), "\nContent-Type"));
	assert_non_null(strstr(part_body(pp.part[2]), line));
	parsed_free(&pp);
	buf_free(&out);
	buf_free(&content);

	/* missing values: empty content, NULL text fields, no recipients */
	r = base_req(BOUNCE_FAILED);
	memset(&h, 0, sizeof(h));
	r.rcpt = &h;
	r.nrcpt = 1;
	r.content = NULL;
	r.len = 0;
	r.sender = "";
	r.myhostname = "";
	pp = build(&r, &out);
	assert_non_null(strstr(part_body(pp.part[1]), "Status: 5.0.0\n"));
	parsed_free(&pp);
	buf_free(&out);
	r.nrcpt = 0;
	pp = build(&r, &out);
	parsed_free(&pp);
	buf_free(&out);
}

/* Random originals never break the structure (a small in-process fuzz). */
static void
test_random_content(void **state)
{
	static const char alphabet[] = "ab:-\n\n\r \t\x80\xff.0/";
	unsigned seed = 12345;
	char content[600];
	int round;

	for (round = 0; round < 400; round++) {
		struct bounce_req r = base_req(round % 3 == 0 ? BOUNCE_DELAYED
					       : BOUNCE_FAILED);
		struct parsed pp;
		struct buf out;
		size_t n, i;

		seed = seed * 1103515245u + 12345u;
		n = (seed >> 8) % sizeof(content);
		for (i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			content[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		/* sometimes plant the boundary at a line start */
		if (round % 5 == 0 && n > 80)
			memcpy(content + 1, "\n--0123456789ABCDEF0.1700000100/mail.example.test\n", 50);
		r.content = content;
		r.len = n;
		r.ret = round % 2 ? "HDRS" : NULL;
		r.size_limit = (size_t)(seed % 300);
		pp = build(&r, &out);
		parsed_free(&pp);
		buf_free(&out);
	}
}

static void
test_helpers(void **state)
{
	static const struct { const char *in, *want; } t[] = {
		{ "host mx.a[1.2.3.4] said: 550 5.1.1 no such user (in reply to RCPT TO command)",
		  "550 5.1.1 no such user" },
		{ "host mx.a[1.2.3.4] said: 554 x (y) (in reply to end of DATA command)",
		  "554 x (y)" },
		{ "host mx.a[1.2.3.4] said: 421 closing", "421 closing" },
		{ "connect to mx.a[1.2.3.4]:25: Connection refused", NULL },
		{ "host x said: ", NULL },
		{ "", NULL },
	};
	char out[64], small[6];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		bool ok = bounce_smtp_reply(t[i].in, out, sizeof(out));

		if (t[i].want == NULL)
			assert_false(ok);
		else {
			assert_true(ok);
			assert_string_equal(out, t[i].want);
		}
	}
	assert_false(bounce_smtp_reply(NULL, out, sizeof(out)));
	assert_true(bounce_smtp_reply(t[0].in, small, sizeof(small)));
	assert_string_equal(small, "550 5");
	assert_true(bounce_relay_host("mx.a[1.2.3.4]:25", out, sizeof(out)));
	assert_string_equal(out, "mx.a");
	assert_true(bounce_relay_host("mx.b", out, sizeof(out)));
	assert_string_equal(out, "mx.b");
	assert_false(bounce_relay_host("none", out, sizeof(out)));
	assert_false(bounce_relay_host("", out, sizeof(out)));
	assert_false(bounce_relay_host("[1.2.3.4]:25", out, sizeof(out)));
	assert_false(bounce_relay_host(NULL, out, sizeof(out)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_full),
		cmocka_unit_test(test_ret_hdrs_and_limit),
		cmocka_unit_test(test_delayed_and_delivered),
		cmocka_unit_test(test_postmaster_notice),
		cmocka_unit_test(test_hostile_values),
		cmocka_unit_test(test_random_content),
		cmocka_unit_test(test_helpers),
	};

	setenv("TZ", "UTC", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
