/*
 * mime_walk_test.c - the streaming MIME walker: header classes (primary,
 * multipart part, nested message) and the MIME flag, folded headers,
 * boundaries as body lines, closing boundaries and the epilogue, a
 * message/rfc822 part ended by its enclosing boundary, multipart/digest
 * defaults, no_mime, the nesting limit, header truncation, and a copy
 * rebuilt from the callbacks equal to the input for random input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/lib/buf.h"
#include "core/mime_walk.h"

struct rec {
	struct buf log;		/* one event a line */
	struct buf copy;	/* the input rebuilt */
};

static const char *const cls_name[] = { "P", "M", "N" };

static void
on_header(void *arg, enum mime_hdr_class cls, bool is_mime, const char *t,
	  size_t n, bool nl, bool trunc)
{
	struct rec *r = arg;

	buf_printf(&r->log, "H%s%s%s %.*s\n", cls_name[cls], is_mime ? "m" : "",
		   trunc ? "t" : "", (int)n, t);
	buf_append(&r->copy, t, n);
	if (nl)
		buf_putc(&r->copy, '\n');
}

static void
on_end(void *arg, enum mime_hdr_class cls, const char *l, size_t n, bool nl)
{
	struct rec *r = arg;

	buf_printf(&r->log, "E%s\n", cls_name[cls]);
	buf_append(&r->copy, l, n);
	if (nl)
		buf_putc(&r->copy, '\n');
}

static void
on_body(void *arg, const char *l, size_t n, bool nl)
{
	struct rec *r = arg;

	buf_printf(&r->log, "B %.*s\n", (int)n, l);
	buf_append(&r->copy, l, n);
	if (nl)
		buf_putc(&r->copy, '\n');
}

static void
on_error(void *arg, unsigned err, const char *t, size_t n)
{
	struct rec *r = arg;

	buf_printf(&r->log, "X%u %.*s\n", err, (int)n, t);
}

static const struct mime_walk_cb cb = { on_header, on_end, on_body,
					 on_error };
static unsigned next_check;	/* the checks of the next walk() */
static size_t next_blimit;	/* its boundary_limit */

/* Walks msg; returns the event log (owned by r), checks the copy. */
static const char *
walk(struct rec *r, const char *msg, size_t hlimit, unsigned nlimit,
     bool no_mime, unsigned *errs)
{
	struct mime_walk *w;
	unsigned check = next_check;

	buf_init(&r->log, 0);
	buf_init(&r->copy, 0);
	struct mime_walk_opts o = { .header_limit = hlimit,
				    .nesting_limit = nlimit,
				    .no_mime = no_mime, .check = check,
				    .boundary_limit = next_blimit };

	w = mime_walk_new(&o, &cb, r);
	mime_walk_buffer(w, msg, strlen(msg));
	if (errs)
		*errs = mime_walk_errors(w);
	mime_walk_free(&w);
	assert_null(w);
	return buf_cstr(&r->log);
}

static void
rec_free(struct rec *r)
{
	buf_free(&r->log);
	buf_free(&r->copy);
}

static void
test_multipart(void **state)
{
	static const char msg[] =
	    "Subject: x\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed;\n boundary=\"=_b (c)\"\n"
	    "\n"
	    "preamble\n"
	    "--=_b (c)\n"
	    "Content-Type: text/plain\n"
	    "X-Part: 1\n"
	    "\n"
	    "text --=_b (c) not a boundary\n"
	    "--=_b (c)  \n"
	    "Content-Type: message/rfc822\n"
	    "\n"
	    "Subject: inner\n"
	    "Content-Type: text/plain\n"
	    "\n"
	    "inner body\n"
	    "--=_b (c)--\n"
	    "epilogue\n"
	    "Content-Type: not a header here\n";
	struct rec r;
	unsigned errs;
	const char *log = walk(&r, msg, 0, 0, false, &errs);

	assert_string_equal(log,
	    "HP Subject: x\n"
	    "HPm MIME-Version: 1.0\n"
	    "HPm Content-Type: multipart/mixed;\n boundary=\"=_b (c)\"\n"
	    "EP\n"
	    "B preamble\n"
	    "B --=_b (c)\n"
	    "HMm Content-Type: text/plain\n"
	    "HM X-Part: 1\n"
	    "EM\n"
	    "B text --=_b (c) not a boundary\n"
	    "B --=_b (c)  \n"
	    "HMm Content-Type: message/rfc822\n"
	    "EM\n"
	    "HN Subject: inner\n"
	    "HNm Content-Type: text/plain\n"
	    "EN\n"
	    "B inner body\n"
	    "B --=_b (c)--\n"
	    "B epilogue\n"
	    "B Content-Type: not a header here\n");
	assert_int_equal(errs, 0);
	assert_int_equal(r.copy.len, strlen(msg));
	assert_memory_equal(r.copy.data, msg, r.copy.len);
	rec_free(&r);
}

static void
test_digest_nested_boundaries(void **state)
{
	/* a digest's parts are messages; an inner multipart's boundary is
	 * closed by the outer one (no closing line of its own) */
	static const char msg[] =
	    "Content-Type: multipart/digest; boundary=d\n"
	    "\n"
	    "--d\n"
	    "\n"
	    "Subject: digest 1\n"
	    "Content-Type: multipart/alternative; boundary=in\n"
	    "\n"
	    "--in\n"
	    "X-A: 1\n"
	    "\n"
	    "a\n"
	    "--d\n"
	    "Subject: digest 2\n"
	    "\n"
	    "b\n"
	    "--d--";
	struct rec r;
	const char *log = walk(&r, msg, 0, 0, false, NULL);

	assert_string_equal(log,
	    "HPm Content-Type: multipart/digest; boundary=d\n"
	    "EP\n"
	    "B --d\n"
	    "EM\n"
	    "HN Subject: digest 1\n"
	    "HNm Content-Type: multipart/alternative; boundary=in\n"
	    "EN\n"
	    "B --in\n"
	    "HM X-A: 1\n"
	    "EM\n"
	    "B a\n"
	    "B --d\n"
	    "HM Subject: digest 2\n"
	    "EM\n"
	    "B b\n"
	    "B --d--\n");
	assert_int_equal(r.copy.len, strlen(msg));
	rec_free(&r);
}

static void
test_no_mime_and_encoded(void **state)
{
	static const char msg[] =
	    "Content-Type: multipart/mixed; boundary=b\n"
	    "\n"
	    "--b\n"
	    "Content-Type: text/plain\n"
	    "\n";
	static const char b64[] =
	    "Content-Type: message/rfc822\n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    "Subject: parsed all the same (Postfix)\n";
	struct rec r;

	assert_string_equal(walk(&r, msg, 0, 0, true, NULL),
	    "HP Content-Type: multipart/mixed; boundary=b\n"
	    "EP\n"
	    "B --b\n"
	    "B Content-Type: text/plain\n"
	    "B \n");
	rec_free(&r);
	assert_string_equal(walk(&r, b64, 0, 0, false, NULL),
	    "HPm Content-Type: message/rfc822\n"
	    "HPm Content-Transfer-Encoding: base64\n"
	    "EP\n"
	    "HN Subject: parsed all the same (Postfix)\n");
	rec_free(&r);
}

static void
test_limits(void **state)
{
	struct buf m;
	struct rec r;
	unsigned errs;
	const char *log;

	/* 10 levels of multipart with a limit of 3 (boundaries are
	 * matched by prefix, as Postfix: none is another's prefix here) */
	buf_init(&m, 0);
	buf_puts(&m, "Content-Type: multipart/mixed; boundary=l00\n\n");
	for (int i = 0; i < 10; i++)
		buf_printf(&m, "--l%02d\nContent-Type: multipart/mixed; "
			   "boundary=l%02d\n\n", i, i + 1);
	buf_puts(&m, "--l10\nX-Deep: 1\n\n");
	log = walk(&r, buf_cstr(&m), 0, 3, false, &errs);
	assert_int_equal(errs, MIME_WALK_ERR_NESTING);
	assert_non_null(strstr(log, "X1 l03\n"));	/* reported once */
	assert_null(strstr(strstr(log, "X1 ") + 1, "X1 "));
	assert_non_null(strstr(log, "B --l03\n"));	/* past the limit: body */
	assert_non_null(strstr(log, "B X-Deep: 1\n"));
	assert_int_equal(r.copy.len, m.len);
	rec_free(&r);
	buf_free(&m);

	/* a boundary over boundary_limit is cut and compared as a prefix */
	next_blimit = 4;
	log = walk(&r, "Content-Type: multipart/mixed; boundary=\"abcdefgh\"\n"
		   "\n--abcdefgh\nX-P: 1\n\nx\n--abcdXYZ--\nepilogue\n", 0, 0,
		   false, &errs);
	next_blimit = 0;
	assert_int_equal(errs, 0);
	assert_non_null(strstr(log, "B --abcdefgh\nHM X-P: 1\nEM\nB x\n"
			       "B --abcdXYZ--\nB epilogue\n"));
	rec_free(&r);

	/* a folded header over the limit is truncated */
	buf_init(&m, 0);
	buf_puts(&m, "X-Long: a");
	for (int i = 0; i < 100; i++)
		buf_puts(&m, "\n bbbbbbbbb");
	buf_puts(&m, "\nSubject: after\n\nbody\n");
	log = walk(&r, buf_cstr(&m), 64, 0, false, &errs);
	assert_int_equal(errs, MIME_WALK_ERR_TRUNC_HDR);
	assert_non_null(strstr(log, "X2 X-Long: a\n"));
	assert_non_null(strstr(log, "HPt X-Long: a\n"));
	assert_non_null(strstr(log, "HP Subject: after\n"));
	assert_int_equal(r.copy.len, 64 + 1 + strlen("Subject: after\n\nbody\n"));
	rec_free(&r);
	buf_free(&m);
}

static void
test_strict(void **state)
{
	static const char msg[] =
	    "Subject: caf\xc3\xa9\n"
	    "Content-Type: multipart/mixed; boundary=b\n"
	    "\n"
	    "pr\xc3\xa9" "amble\n"
	    "--b\n"
	    "Content-Transfer-Encoding: 8bit\n"
	    "\n"
	    "d\xc3\xa9j\xc3\xa0 8bit\n"
	    "--b\n"
	    "Content-Type: message/rfc822\n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    "--b--\n";
	struct rec r;
	unsigned errs;
	const char *log;

	next_check = 0;
	(void)walk(&r, msg, 0, 0, false, &errs);
	assert_int_equal(errs, 0);	/* nothing asked, nothing seen */
	rec_free(&r);
	next_check = MIME_WALK_ERR_8BIT_HDR | MIME_WALK_ERR_8BIT_BODY |
		     MIME_WALK_ERR_DOMAIN;
	log = walk(&r, msg, 0, 0, false, &errs);
	assert_int_equal(errs, MIME_WALK_ERR_8BIT_HDR |
			 MIME_WALK_ERR_8BIT_BODY | MIME_WALK_ERR_DOMAIN);
	assert_non_null(strstr(log, "X4 Subject: caf"));
	assert_non_null(strstr(log, "X8 pr\xc3\xa9" "amble\n"));	/* 7bit */
	assert_null(strstr(log, "X8 d\xc3\xa9j"));	/* declared 8bit */
	assert_non_null(strstr(log, "X16 base64\n"));
	assert_string_equal(mime_walk_error_text(MIME_WALK_ERR_8BIT_BODY |
						 MIME_WALK_ERR_DOMAIN),
			    "improper use of 8-bit data in message body");
	rec_free(&r);
	/* disable_mime_input_processing: no strict checks either */
	(void)walk(&r, msg, 0, 0, true, &errs);
	assert_int_equal(errs, 0);
	rec_free(&r);
	next_check = 0;
}

static void
test_random(void **state)
{
	static const char *const atoms[] = {
		"\n", "--b\n", "--b--\n", "--c\n", " cont\n", "X: y\n",
		"Content-Type: multipart/mixed; boundary=c\n",
		"Content-Type: multipart/digest; boundary=b\n",
		"Content-Type: message/rfc822\n", "text\n", "\r\n", ":\n", "--",
	};
	unsigned seed = 42;

	for (int t = 0; t < 2000; t++) {
		struct buf m;
		struct rec r;

		buf_init(&m, 0);
		buf_puts(&m, "Content-Type: multipart/mixed; boundary=b\n\n");
		for (int i = 0; i < 40; i++) {
			seed = seed * 1103515245u + 12345u;
			buf_puts(&m, atoms[(seed >> 16) % (sizeof(atoms) /
							   sizeof(atoms[0]))]);
		}
		(void)walk(&r, buf_cstr(&m), 0, 5, false, NULL);
		assert_int_equal(r.copy.len, m.len);
		assert_memory_equal(r.copy.data, m.data, m.len);
		rec_free(&r);
		buf_free(&m);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_multipart),
		cmocka_unit_test(test_digest_nested_boundaries),
		cmocka_unit_test(test_no_mime_and_encoded),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
