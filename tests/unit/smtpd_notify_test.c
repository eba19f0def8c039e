/*
 * smtpd_notify_test.c - notify_classes on the SMTP server side: the class
 * of each kind of reply as Postfix's smtpd sets it, the class names, the
 * bounded transcript (oldest lines dropped, control bytes masked, lines
 * cut) and the notice's layout (Postfix's subject, wrapped lines).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/smtpd_notify.h"

static const struct { const char *reply; unsigned cls; } cases[] = {
	{ "250 2.1.5 Ok", 0 },
	{ "354 End data with <CR><LF>.<CR><LF>", 0 },
	{ "500 5.5.2 Error: command not recognized", SMTPD_NOTE_PROTOCOL },
	{ "500 5.5.2 Error: line too long", SMTPD_NOTE_PROTOCOL },
	{ "503 5.5.1 Error: need MAIL command", SMTPD_NOTE_PROTOCOL },
	{ "501 5.1.3 Bad recipient address syntax", SMTPD_NOTE_PROTOCOL },
	{ "421 4.7.0 mx Error: too many errors", SMTPD_NOTE_PROTOCOL },
	{ "553 5.6.7 Must declare SMTPUTF8 to send unicode address",
	  SMTPD_NOTE_PROTOCOL },
	{ "454 4.7.1 <a@far.example>: Relay access denied", SMTPD_NOTE_POLICY },
	{ "554 5.7.1 <x[1.2.3.4]>: Client host rejected: Access denied",
	  SMTPD_NOTE_POLICY },
	{ "504 5.5.2 <a>: Sender address rejected: need fully-qualified "
	  "address", SMTPD_NOTE_POLICY },
	{ "450 4.7.1 Error: too much mail from 1.2.3.4", SMTPD_NOTE_POLICY },
	{ "452 4.5.3 Error: too many recipients", SMTPD_NOTE_POLICY },
	{ "550 5.1.1 <n@example.test>: Recipient address rejected: User "
	  "unknown in virtual mailbox table", SMTPD_NOTE_BOUNCE },
	{ "552 5.3.4 Message size exceeds fixed limit", SMTPD_NOTE_BOUNCE },
	{ "451 4.3.0 Error: queue file write error", SMTPD_NOTE_RESOURCE },
	{ "452 4.3.1 Insufficient system storage", SMTPD_NOTE_RESOURCE },
	{ "451 4.3.5 Server configuration error", SMTPD_NOTE_SOFTWARE },
	{ "451 4.3.5 <a>: Recipient address rejected: Server configuration "
	  "error", SMTPD_NOTE_SOFTWARE },
	{ "454 4.7.0 TLS not available due to local problem",
	  SMTPD_NOTE_SOFTWARE },
	{ "451 4.3.0 <a@b>: Temporary lookup failure", SMTPD_NOTE_DATA },
	/* none: failed AUTH, STARTTLS required, time-out, shutdown */
	{ "535 5.7.8 Error: authentication failed: authentication failure", 0 },
	{ "454 4.7.0 Temporary authentication failure", 0 },
	{ "530 5.7.0 Must issue a STARTTLS command first", 0 },
	{ "421 4.4.2 mx Error: timeout exceeded", 0 },
	{ "421 4.3.2 mx Service shutting down, closing transmission channel",
	  0 },
	{ "503 5.7.0 Error: access denied for x[1.2.3.4]", 0 },
};

static void
test_classify(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned got = smtpd_notify_classify(cases[i].reply);

		if (got != cases[i].cls)
			fail_msg("%s: class %u, expected %u", cases[i].reply, got,
				 cases[i].cls);
	}
	assert_int_equal(smtpd_notify_classify(NULL), 0);
	assert_int_equal(smtpd_notify_classify("5"), 0);
	assert_int_equal(smtpd_notify_classify("5xx oops"), 0);
}

static void
test_mask_and_names(void **state)
{
	char names[80];

	(void)state;
	assert_int_equal(smtpd_notify_mask("resource, software"),
			 SMTPD_NOTE_RESOURCE | SMTPD_NOTE_SOFTWARE);
	assert_int_equal(smtpd_notify_mask("delay,2bounce"), 0);
	assert_int_equal(smtpd_notify_mask("  Policy\tPROTOCOL ,bogus"),
			 SMTPD_NOTE_POLICY | SMTPD_NOTE_PROTOCOL);
	assert_int_equal(smtpd_notify_mask(""), 0);
	assert_int_equal(smtpd_notify_mask(NULL), 0);
	smtpd_notify_names(SMTPD_NOTE_POLICY | SMTPD_NOTE_BOUNCE, names,
			   sizeof(names));
	assert_string_equal(names, "bounce, policy");
	smtpd_notify_names(0, names, sizeof(names));
	assert_string_equal(names, "");
}

static void
test_transcript_bounded(void **state)
{
	struct smtpd_notify *n = smtpd_notify_new(SMTPD_NOTE_PROTOCOL);
	char line[40], big[2000];
	const char *t;
	size_t len;
	unsigned dropped;

	(void)state;
	t = smtpd_notify_text(n, &len, &dropped);
	assert_string_equal(t, "");
	assert_int_equal(len, 0);
	/* control bytes masked */
	smtpd_notify_add(n, "In:  ", "A\tB\x01\xff", 5);
	t = smtpd_notify_text(n, &len, NULL);
	assert_string_equal(t, "In:  A?B??\n");
	/* many lines: the newest stay, the total stays bounded */
	for (int i = 0; i < 1000; i++) {
		int k = snprintf(line, sizeof(line), "NOOP %d", i);

		smtpd_notify_add(n, "In:  ", line, (size_t)k);
	}
	t = smtpd_notify_text(n, &len, &dropped);
	assert_true(len <= SMTPD_NOTIFY_MAX);
	assert_true(dropped > 0);
	assert_non_null(strstr(t, "In:  NOOP 999\n"));
	assert_null(strstr(t, "In:  NOOP 1\n"));
	assert_null(strstr(t, "A?B"));
	assert_int_equal(t[len - 1], '\n');
	/* the text starts with a whole line */
	assert_memory_equal(t, "In:  NOOP ", 10);
	/* an over-long line is cut */
	memset(big, 'x', sizeof(big));
	smtpd_notify_add(n, "In:  ", big, sizeof(big));
	t = smtpd_notify_text(n, &len, NULL);
	assert_true(len <= SMTPD_NOTIFY_MAX);
	assert_int_equal(strlen(strrchr(t, 'I')), 5 + SMTPD_NOTIFY_LINE + 1);
	/* classes: due only when listed and once seen */
	assert_int_equal(smtpd_notify_due(n), 0);
	smtpd_notify_note(n, SMTPD_NOTE_POLICY);
	assert_int_equal(smtpd_notify_due(n), 0);
	smtpd_notify_note(n, SMTPD_NOTE_PROTOCOL);
	assert_int_equal(smtpd_notify_due(n), SMTPD_NOTE_PROTOCOL);
	smtpd_notify_destroy(&n);
	assert_null(n);
	smtpd_notify_destroy(&n);
}

static void
test_format(void **state)
{
	struct smtpd_notice_info i;
	struct buf b;
	char longline[200];
	const char *t, *body;

	(void)state;
	memset(longline, 0, sizeof(longline));
	memcpy(longline, "Out: 550 5.7.1 ", 15);
	for (size_t k = 15; k < 180; k++)
		longline[k] = (k % 10 == 0) ? ' ' : 'w';
	memset(&i, 0, sizeof(i));
	i.date = 0;
	i.myhostname = "mx.example.test";
	i.mail_name = "facteur";
	i.origin = "example.test";
	i.to = "postmaster@example.test";
	i.client_name = "client.example";
	i.client_addr = "192.0.2.7";
	i.id = "06B12CFF62254E000";
	i.dropped = 3;
	{
		char tr[400];

		snprintf(tr, sizeof(tr), "Out: 220 hi\nIn:  EHLO x\n%s\n",
			 longline);
		i.transcript = tr;
		buf_init(&b, 0);
		smtpd_notify_format(&i, &b);
	}
	t = buf_cstr(&b);
	assert_non_null(strstr(t, "\nSubject: facteur SMTP server: errors from "
			       "client.example[192.0.2.7]\n"));
	assert_non_null(strstr(t, "\nFrom: Mail Delivery System "
			       "<MAILER-DAEMON@example.test>\n"));
	assert_non_null(strstr(t, "\nTo: Postmaster <postmaster@example.test>\n"));
	assert_non_null(strstr(t, "\nMessage-ID: <06B12CFF62254E000.notify@"
			       "mx.example.test>\n"));
	body = strstr(t, "\n\n");
	assert_non_null(body);
	assert_non_null(strstr(body, "\n\nTranscript of session follows.\n\n"
			       " (3 earlier lines not kept)\n"
			       " Out: 220 hi\n In:  EHLO x\n Out: 550 5.7.1 "));
	/* every body line fits in 79 columns; continuations are indented */
	for (const char *p = body + 2; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		assert_true(n <= 79);
		p += n + (nl ? 1 : 0);
	}
	assert_non_null(strstr(body, "\n     w"));
	assert_non_null(strstr(t, "\nFor other details, see the local mail "
			       "logfile\n"));
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_mask_and_names),
		cmocka_unit_test(test_transcript_bounded),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
