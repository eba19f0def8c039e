/*
 * deliver_test.c - local delivery: prepended header order (Postfix's
 * virtual(8)), Delivered-To: loop detection (header section only),
 * errno -> DSN mapping, and the delivery log's delay format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/qmgr.h"
#include "delivery/deliver.h"
#include "core/lib/xmalloc.h"
#include "testdir.h"

static char base[256];

static int
setup(void **state)
{
	return testdir_make(base, sizeof(base), "facteur-deliver-test");
}

static int
teardown(void **state)
{
	return testdir_remove(base);
}

/* The one file in maildir/new, read whole; NULL if not exactly one. */
static char *
only_message(const char *maildir, size_t *len)
{
	char dir[600], file[1200];
	struct dirent *de;
	DIR *d;
	FILE *f;
	char *b = NULL;
	int n = 0;
	long sz;

	snprintf(dir, sizeof(dir), "%snew", maildir);
	if ((d = opendir(dir)) == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.') {
			n++;
			snprintf(file, sizeof(file), "%s/%s", dir, de->d_name);
		}
	closedir(d);
	if (n != 1 || (f = fopen(file, "rb")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	rewind(f);
	b = xmalloc((size_t)sz + 1);
	*len = fread(b, 1, (size_t)sz, f);
	b[*len] = '\0';
	fclose(f);
	return b;
}

static void
test_header_order(void **state)
{
	static const struct {
		const char *sender, *orig, *rcpt, *want;
	} t[] = {
		{ "s@x.test", "postmaster@e.test", "alice@e.test",
		  "Return-Path: <s@x.test>\nX-Original-To: postmaster@e.test\n"
		  "Delivered-To: alice@e.test\n" },
		{ "", NULL, "bob@e.test",
		  "Return-Path: <>\nDelivered-To: bob@e.test\n" },
		{ "a\r\nBcc: x@y", "o\nX: y", "c@e.test",
		  "Return-Path: <a  Bcc: x@y>\nX-Original-To: o X: y\n"
		  "Delivered-To: c@e.test\n" },
	};
	static const char body[] = "Subject: hi\n\nbody\n";
	struct buf text;
	char dsn[8], md[512];
	size_t i, len;

	buf_init(&text, 0);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(md, sizeof(md), "%s/m%zu/", base, i);
		struct deliver_req req = { base, md, t[i].sender, t[i].orig, t[i].rcpt,
					   body, sizeof(body) - 1 };
		assert_int_equal(deliver_maildir(&req, dsn, &text), DELIVER_SENT);
		assert_string_equal(dsn, "2.0.0");
		assert_string_equal(buf_cstr(&text), "delivered to maildir");
		char *m = only_message(md, &len);
		assert_non_null(m);
		size_t wl = strlen(t[i].want);
		assert_int_equal(len, wl + sizeof(body) - 1);
		assert_memory_equal(m, t[i].want, wl);
		assert_memory_equal(m + wl, body, sizeof(body) - 1);
		free(m);
	}
	buf_free(&text);
}

static void
test_loop_detection(void **state)
{
	static const struct {
		const char *content, *rcpt;
		enum deliver_status want;
	} t[] = {
		{ "Delivered-To: alice@e.test\nSubject: x\n\nbody\n", "alice@e.test",
		  DELIVER_BOUNCE },
		{ "Subject: x\nDELIVERED-TO:   Alice@E.Test  \n\nbody\n", "alice@e.test",
		  DELIVER_BOUNCE },
		{ "Subject: x\r\ndelivered-to: alice@e.test\r\n\r\nbody\n", "alice@e.test",
		  DELIVER_BOUNCE },
		/* in the body only: not a loop */
		{ "Subject: x\n\nDelivered-To: alice@e.test\n", "alice@e.test",
		  DELIVER_SENT },
		/* another recipient */
		{ "Delivered-To: bob@e.test\n\nbody\n", "alice@e.test", DELIVER_SENT },
		/* a prefix of the address is not the address */
		{ "Delivered-To: alice@e.test.evil\n\nx\n", "alice@e.test", DELIVER_SENT },
		{ "X-Delivered-To: alice@e.test\n\nx\n", "alice@e.test", DELIVER_SENT },
		/* no header section at all */
		{ "", "alice@e.test", DELIVER_SENT },
	};
	struct buf text;
	char dsn[8], md[512];
	size_t i;

	buf_init(&text, 0);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(md, sizeof(md), "%s/loop%zu/", base, i);
		struct deliver_req req = { base, md, "s@x", NULL, t[i].rcpt,
					   t[i].content, strlen(t[i].content) };
		enum deliver_status st = deliver_maildir(&req, dsn, &text);
		if (st != t[i].want)
			fail_msg("case %zu: status %d, want %d (%s)", i, st,
				 t[i].want, buf_cstr(&text));
		if (st == DELIVER_BOUNCE) {
			assert_string_equal(dsn, "5.4.6");
			assert_string_equal(buf_cstr(&text),
					    "mail forwarding loop for alice@e.test");
			/* nothing was written */
			assert_int_equal(access(md, F_OK), -1);
		}
	}
	buf_free(&text);
}

static void
test_errno_mapping(void **state)
{
	struct buf text;
	char dsn[8], md[700], f[800];
	FILE *fp;

	buf_init(&text, 0);
	/* base missing: ENOENT defers 4.2.0 with the maildir text */
	struct deliver_req req = { "/nonexistent-facteur", "/nonexistent-facteur/u/",
				   "s@x", NULL, "u@x", "x\n", 2 };
	assert_int_equal(deliver_maildir(&req, dsn, &text), DELIVER_DEFER);
	assert_string_equal(dsn, "4.2.0");
	assert_non_null(strstr(buf_cstr(&text), "No such file or directory"));
	/* bad path: configuration problem, deferred 4.3.5 */
	req.maildir = "relative/";
	assert_int_equal(deliver_maildir(&req, dsn, &text), DELIVER_DEFER);
	assert_string_equal(dsn, "4.3.5");
	req.maildir = NULL;
	assert_int_equal(deliver_maildir(&req, dsn, &text), DELIVER_DEFER);
	assert_string_equal(dsn, "4.3.5");
	/* ENOTDIR: defer */
	snprintf(f, sizeof(f), "%s/plainfile", base);
	fp = fopen(f, "w");
	assert_non_null(fp);
	fclose(fp);
	snprintf(md, sizeof(md), "%s/plainfile/u/", base);
	req.base = base;
	req.maildir = md;
	assert_int_equal(deliver_maildir(&req, dsn, &text), DELIVER_DEFER);
	assert_string_equal(dsn, "4.2.0");
	buf_free(&text);

	static const struct { int e; const char *dsn; enum deliver_status st; } t[] = {
		{ EAGAIN, "4.2.0", DELIVER_DEFER }, { ESTALE, "4.2.0", DELIVER_DEFER },
		{ ENOSPC, "4.3.0", DELIVER_DEFER }, { EIO, "4.3.0", DELIVER_DEFER },
		{ EROFS, "4.3.0", DELIVER_DEFER }, { EACCES, "4.2.0", DELIVER_DEFER },
		{ ENOENT, "4.2.0", DELIVER_DEFER }, { EINVAL, "4.3.5", DELIVER_DEFER },
		{ EDQUOT, "5.2.2", DELIVER_BOUNCE }, { EFBIG, "5.2.2", DELIVER_BOUNCE },
		{ 0, "4.2.0", DELIVER_DEFER }, { 99999, "4.2.0", DELIVER_DEFER },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		enum deliver_status st = DELIVER_SENT;
		assert_string_equal(deliver_errno_dsn(t[i].e, &st), t[i].dsn);
		assert_int_equal(st, t[i].st);
	}
}

static void
test_delay_format(void **state)
{
	static const struct { double v; const char *want; } t[] = {
		{ 0, "0" }, { -1, "0" }, { 0.001, "0" }, { 0.005, "0.01" },
		{ 0.01, "0.01" }, { 0.1, "0.1" }, { 0.123, "0.12" }, { 0.999, "1" },
		{ 1, "1" }, { 1.25, "1.2" }, { 1.26, "1.3" }, { 9.99, "10" },
		{ 12.3, "12" }, { 123.7, "124" }, { 86400, "86400" },
	};
	char out[32];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		qmgr_format_delay(t[i].v, out);
		if (strcmp(out, t[i].want) != 0)
			fail_msg("%g: \"%s\", want \"%s\"", t[i].v, out, t[i].want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_header_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop_detection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errno_mapping, setup, teardown),
		cmocka_unit_test(test_delay_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
