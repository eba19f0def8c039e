/*
 * mime_downgrade_test.c - the 8BITMIME to 7BIT converter: quoted-printable
 * encoding (line length, soft breaks, '=', trailing white space; decoded
 * back it is the input), a plain message without MIME headers, a MIME text
 * part declared 8bit, a multipart with 8-bit, base64 and 7-bit parts, a
 * message/rfc822 part nested in a multipart, a multipart/digest, 7-bit
 * input and 8-bit headers left alone, deep nesting, and random input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/mime_downgrade.h"

/* Decodes quoted-printable text (soft breaks removed). */
static void
qp_decode(const char *s, size_t n, struct buf *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] != '=') {
			buf_putc(out, s[i]);
			continue;
		}
		if (i + 1 < n && s[i + 1] == '\n') {
			i++;
			continue;
		}
		assert_true(i + 2 < n);
		{
			char h[3] = { s[i + 1], s[i + 2], 0 };
			char *e;
			long v = strtol(h, &e, 16);
			assert_true(*e == '\0');
			buf_putc(out, (int)v);
		}
		i += 2;
	}
}

static void
assert_7bit_lines(const char *s, size_t n, size_t maxline)
{
	size_t i, col = 0;

	for (i = 0; i < n; i++) {
		assert_true((unsigned char)s[i] < 0x80);
		if (s[i] == '\n')
			col = 0;
		else
			assert_true(++col <= maxline);
	}
}

static char *
convert(const char *in, int expect)
{
	struct buf out;

	buf_init(&out, 0);
	assert_int_equal(mime_downgrade(in, strlen(in), &out), expect);
	return buf_steal(&out);
}

static void
test_qp(void **state)
{
	const char *in = "caf\xc3\xa9 = 100%\ntrailing space \ntab\t\n"
		"a line of 100 characters xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n\x01 ctl\nlast";
	struct buf enc, dec;

	buf_init(&enc, 0);
	buf_init(&dec, 0);
	mime_qp_encode(in, strlen(in), &enc);
	assert_7bit_lines(enc.data, enc.len, 76);
	assert_non_null(strstr(enc.data, "caf=C3=A9 =3D 100%\n"));
	assert_non_null(strstr(enc.data, "trailing space=20\n"));
	assert_non_null(strstr(enc.data, "tab=09\n"));
	assert_non_null(strstr(enc.data, "=01 ctl\n"));
	assert_non_null(strstr(enc.data, "=\n"));	/* a soft break */
	qp_decode(enc.data, enc.len, &dec);
	assert_int_equal(dec.len, strlen(in));
	assert_memory_equal(dec.data, in, dec.len);
	buf_free(&enc);
	buf_free(&dec);
}

/* The body (after the first blank line) of s. */
static const char *
body_of(const char *s)
{
	const char *b = strstr(s, "\n\n");
	assert_non_null(b);
	return b + 2;
}

static void
test_plain_message(void **state)
{
	char *o = convert("From: a@b\nSubject: x\n\nh\xc3\xa9llo\n", 1);
	struct buf dec;

	assert_non_null(strstr(o, "\nMIME-Version: 1.0\n"));
	assert_non_null(strstr(o, "\nContent-Type: text/plain; charset=utf-8\n"));
	assert_non_null(strstr(o, "\nContent-Transfer-Encoding: quoted-printable\n"));
	assert_string_equal(body_of(o), "h=C3=A9llo\n");
	buf_init(&dec, 0);
	qp_decode(body_of(o), strlen(body_of(o)), &dec);
	assert_string_equal(dec.data, "h\xc3\xa9llo\n");
	buf_free(&dec);
	free(o);
	/* Latin-1: not UTF-8 */
	o = convert("Subject: x\n\nh\xe9llo\n", 1);
	assert_non_null(strstr(o, "charset=unknown-8bit\n"));
	free(o);
}

static void
test_mime_text_8bit(void **state)
{
	char *o = convert("MIME-Version: 1.0\n"
			  "Content-Type: text/plain; charset=utf-8\n"
			  "Content-Transfer-Encoding: 8bit\n"
			  "Subject: s\n\n\xc3\xa0 bient\xc3\xb4t\n", 1);

	assert_string_equal(o, "MIME-Version: 1.0\n"
			    "Content-Type: text/plain; charset=utf-8\n"
			    "Content-Transfer-Encoding: quoted-printable\n"
			    "Subject: s\n\n=C3=A0 bient=C3=B4t\n");
	free(o);
}

static const char *MULTI =
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/mixed;\n boundary=\"=-b1\"\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"preamble\n"
	"--=-b1\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"\xc3\xa9t\xc3\xa9\n"
	"--=-b1\n"
	"Content-Type: application/octet-stream\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"AAECAwQ=\n"
	"--=-b1\n"
	"Content-Type: text/plain\n"
	"\n"
	"plain ascii\n"
	"--=-b1\n"
	"Content-Type: message/rfc822\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"Subject: inner\n"
	"MIME-Version: 1.0\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: 8bit\n"
	"\n"
	"inner \xc3\xbc\n"
	"--=-b1--\n"
	"epilogue\n";

static void
test_multipart(void **state)
{
	char *o = convert(MULTI, 1);
	const char *p;

	/* the multipart itself: 7bit, same boundary and preamble */
	assert_non_null(strstr(o, "Content-Type: multipart/mixed;\n boundary=\"=-b1\"\n"
			       "Content-Transfer-Encoding: 7bit\n\npreamble\n--=-b1\n"));
	/* the 8-bit text part */
	assert_non_null(strstr(o, "--=-b1\nContent-Type: text/plain; charset=utf-8\n"
			       "Content-Transfer-Encoding: quoted-printable\n\n"
			       "=C3=A9t=C3=A9\n--=-b1\n"));
	/* base64 and 7-bit parts as they were */
	assert_non_null(strstr(o, "Content-Transfer-Encoding: base64\n\nAAECAwQ=\n--=-b1\n"));
	assert_non_null(strstr(o, "Content-Type: text/plain\n\nplain ascii\n--=-b1\n"));
	/* message/rfc822: 7bit outside, the inner text converted */
	p = strstr(o, "Content-Type: message/rfc822\n");
	assert_non_null(p);
	assert_non_null(strstr(p, "Content-Transfer-Encoding: 7bit\n\nSubject: inner\n"));
	assert_non_null(strstr(p, "Content-Transfer-Encoding: quoted-printable\n\n"
			       "inner =C3=BC\n--=-b1--\nepilogue\n"));
	assert_7bit_lines(o, strlen(o), 998);
	free(o);
}

static void
test_digest_and_crlf(void **state)
{
	/* multipart/digest parts default to message/rfc822; CRLF input */
	char *o = convert("MIME-Version: 1.0\r\n"
			  "Content-Type: multipart/digest; boundary=d\r\n\r\n"
			  "--d\r\n\r\n"
			  "Subject: one\r\nMIME-Version: 1.0\r\n"
			  "Content-Transfer-Encoding: 8bit\r\n\r\n"
			  "\xc3\xb6\r\n"
			  "--d--\r\n", 1);

	assert_non_null(strstr(o, "Subject: one\r\nMIME-Version: 1.0\r\n"
			       "Content-Transfer-Encoding: quoted-printable\n\r\n"
			       "=C3=B6\r\n--d--\r\n"));
	assert_7bit_lines(o, strlen(o), 998);
	free(o);
}

static void
test_left_alone(void **state)
{
	const char *seven = "Subject: plain\n\nascii only\n";
	const char *hdr8 = "Subject: caf\xc3\xa9\n\nascii body\n";
	const char *b64 = "MIME-Version: 1.0\nContent-Transfer-Encoding: base64\n"
			  "\n\xff\xfe garbage\n";
	char *o;

	o = convert(seven, 0);
	assert_string_equal(o, seven);
	free(o);
	o = convert(hdr8, 0);
	assert_string_equal(o, hdr8);
	free(o);
	o = convert(b64, 0);
	assert_string_equal(o, b64);
	free(o);
}

static void
test_deep_nesting(void **state)
{
	struct buf in, out;
	int i;

	buf_init(&in, 0);
	buf_puts(&in, "MIME-Version: 1.0\n");
	for (i = 0; i < 200; i++)
		buf_printf(&in, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n",
			   i, i);
	buf_puts(&in, "Content-Type: text/plain\n\n\xc3\xa9\n");
	buf_init(&out, 0);
	(void)mime_downgrade(in.data, in.len, &out);
	assert_true(out.len >= in.len);	/* converted or copied, never cut */
	buf_free(&in);
	buf_free(&out);
}

static void
test_random(void **state)
{
	static const char *const pieces[] = {
		"MIME-Version: 1.0\n", "Content-Type: multipart/mixed; boundary=x\n",
		"Content-Type: message/rfc822\n", "Content-Transfer-Encoding: 8bit\n",
		"\n", "--x\n", "--x--\n", "\xc3\xa9", "=", " \n", "\r\n", "text",
		"Content-Type: text/plain\n", "\t folded\n", "\xff",
	};
	unsigned seed = 12345;
	int round;

	for (round = 0; round < 3000; round++) {
		struct buf in, out;
		int n = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 40, k;

		buf_init(&in, 0);
		for (k = 0; k < n; k++) {
			seed = seed * 1103515245u + 12345u;
			buf_puts(&in, pieces[(seed >> 16) % (sizeof(pieces) / sizeof(pieces[0]))]);
		}
		buf_init(&out, 0);
		(void)mime_downgrade(in.data ? in.data : "", in.len, &out);
		buf_free(&in);
		buf_free(&out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qp),
		cmocka_unit_test(test_plain_message),
		cmocka_unit_test(test_mime_text_8bit),
		cmocka_unit_test(test_multipart),
		cmocka_unit_test(test_digest_and_crlf),
		cmocka_unit_test(test_left_alone),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
