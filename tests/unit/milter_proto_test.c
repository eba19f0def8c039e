/*
 * milter_proto_test.c - the milter wire format (milter_proto.c): packets
 * as the MTA writes them (OPTNEG, CONNECT, strings, macros), reading the
 * milter's replies (incomplete, zero or oversized lengths, OPTNEG with
 * symbol lists, strings without their NUL, an index too short), REPLYCODE
 * texts; and the message editing of milter_edit.c (header index rules,
 * deletion, leading space, folding, body replacement and its bound).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/lib/buf.h"
#include "core/milter_edit.h"
#include "core/milter_proto.h"

static void
test_put_packets(void **state)
{
	struct buf b;
	const char *v[2] = { "Subject", " hi" };
	const char *names[1] = { "{auth_authen}" }, *vals[1] = { "alice" };
	static const unsigned char optneg[] = {
		0, 0, 0, 13, 'O', 0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0x1f, 0xf7, 0xff
	};
	static const unsigned char conn[] = {
		0, 0, 0, 23, 'C', 'h', '.', 't', 0, '4', 0x04, 0xd2,
		'1', '2', '7', '.', '0', '.', '0', '.', '1', 0
	};

	buf_init(&b, 0);
	milter_put_optneg(&b, 6, MILTER_F_ALL, MILTER_P_OFFER);
	assert_int_equal(b.len, sizeof(optneg));
	assert_memory_equal(b.data, optneg, sizeof(optneg));
	buf_reset(&b);
	milter_put_connect(&b, "h.t", "127.0.0.1", 1234);
	/* length: 'C' + "h.t\0" + '4' + port + "127.0.0.1\0" */
	assert_int_equal(b.len, 4 + 1 + 4 + 1 + 2 + 10);
	assert_memory_equal(b.data + 4, conn + 4, b.len - 4);
	assert_int_equal((unsigned char)b.data[3], b.len - 4);
	buf_reset(&b);
	milter_put_connect(&b, "unknown", NULL, 0);
	assert_int_equal(b.len, 4 + 1 + 8 + 1);
	assert_int_equal(b.data[b.len - 1], 'U');
	buf_reset(&b);
	milter_put_strings(&b, MILTER_C_HEADER, v, 2);
	assert_int_equal(b.len, 4 + 1 + 8 + 4);
	assert_memory_equal(b.data + 5, "Subject\0 hi\0", 12);
	buf_reset(&b);
	milter_put_macros(&b, MILTER_C_MAIL, names, vals, 1);
	assert_memory_equal(b.data + 4, "DM{auth_authen}\0alice\0", 22);
	assert_int_equal(b.len, 4 + 22);
	buf_reset(&b);
	milter_put(&b, MILTER_C_QUIT, NULL, 0);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "\0\0\0\1Q", 5);
	buf_free(&b);
}

static void
test_get_packets(void **state)
{
	const unsigned char *d;
	size_t dlen, used;
	int cmd;
	static const unsigned char two[] = {
		0, 0, 0, 1, 'c', 0, 0, 0, 3, 'h', 'a', 'b'
	};
	static const unsigned char zero[] = { 0, 0, 0, 0, 'c' };
	static const unsigned char huge[] = { 0x7f, 0, 0, 0, 'b' };

	assert_int_equal(milter_get(two, 3, 100, &cmd, &d, &dlen, &used), 0);
	assert_int_equal(milter_get(two, 4, 100, &cmd, &d, &dlen, &used), 0);
	assert_int_equal(milter_get(two, sizeof(two), 100, &cmd, &d, &dlen,
				    &used), 1);
	assert_int_equal(cmd, 'c');
	assert_int_equal(dlen, 0);
	assert_int_equal(used, 5);
	/* the second one, one byte short, then complete */
	assert_int_equal(milter_get(two + 5, 6, 100, &cmd, &d, &dlen, &used), 0);
	assert_int_equal(milter_get(two + 5, 7, 100, &cmd, &d, &dlen, &used), 1);
	assert_int_equal(cmd, 'h');
	assert_int_equal(dlen, 2);
	assert_memory_equal(d, "ab", 2);
	assert_int_equal(milter_get(zero, sizeof(zero), 100, &cmd, &d, &dlen,
				    &used), -1);
	assert_int_equal(milter_get(huge, sizeof(huge), MILTER_REPLY_MAX, &cmd,
				    &d, &dlen, &used), -1);
}

static void
test_optneg_reply(void **state)
{
	struct milter_optneg o;
	static const unsigned char plain[] = {
		0, 0, 0, 6, 0, 0, 0, 0x3f, 0, 0x10, 0, 0x80
	};
	static const unsigned char lists[] = {
		0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0,
		0, 0, 0, 1, 'j', ' ', '{', 'x', '}', 0,
		0, 0, 0, 5, 'i', 0,
	};
	static const unsigned char badstage[] = {
		0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 'j', 0
	};
	static const unsigned char nonul[] = {
		0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 'j'
	};

	assert_int_equal(milter_parse_optneg(plain, sizeof(plain), &o), 0);
	assert_int_equal(o.version, 6);
	assert_int_equal(o.actions, 0x3f);
	assert_int_equal(o.protocol, 0x100080);
	assert_null(o.macros[MILTER_M_HELO]);
	assert_int_equal(milter_parse_optneg(lists, sizeof(lists), &o), 0);
	assert_int_equal(o.macros_len[MILTER_M_HELO], 5);
	assert_memory_equal(o.macros[MILTER_M_HELO], "j {x}", 5);
	assert_string_equal(o.macros[MILTER_M_EOM], "i");
	assert_int_equal(milter_parse_optneg(plain, 11, &o), -1);
	assert_int_equal(milter_parse_optneg(badstage, sizeof(badstage), &o), -1);
	assert_int_equal(milter_parse_optneg(nonul, sizeof(nonul), &o), -1);
}

static void
test_strings(void **state)
{
	const char *v[2];
	uint32_t idx = 0;
	static const unsigned char ins[] = {
		0, 0, 0, 2, 'X', 0, 'v', 0
	};

	assert_int_equal(milter_parse_strings((const unsigned char *)"a\0b\0", 4,
					      NULL, v, 2), 0);
	assert_string_equal(v[0], "a");
	assert_string_equal(v[1], "b");
	/* one too few, one too many, no NUL */
	assert_int_equal(milter_parse_strings((const unsigned char *)"a\0", 2,
					      NULL, v, 2), -1);
	assert_int_equal(milter_parse_strings((const unsigned char *)"a\0b\0", 4,
					      NULL, v, 1), -1);
	assert_int_equal(milter_parse_strings((const unsigned char *)"ab", 2,
					      NULL, v, 1), -1);
	assert_int_equal(milter_parse_strings(ins, sizeof(ins), &idx, v, 2), 0);
	assert_int_equal(idx, 2);
	assert_string_equal(v[0], "X");
	assert_int_equal(milter_parse_strings(ins, 3, &idx, v, 2), -1);
	assert_int_equal(milter_parse_strings_opt(
		(const unsigned char *)"<a@b>\0", 6, v, 2), 1);
	assert_int_equal(milter_parse_strings_opt(
		(const unsigned char *)"<a@b>\0SIZE=1\0", 13, v, 2), 2);
	assert_string_equal(v[1], "SIZE=1");
	assert_int_equal(milter_parse_strings_opt(
		(const unsigned char *)"<a@b>", 5, v, 2), -1);
	assert_int_equal(milter_parse_strings_opt(
		(const unsigned char *)"", 0, v, 2), -1);
}

static void
test_reply_text(void **state)
{
	struct buf b;

	buf_init(&b, 0);
	assert_int_equal(milter_reply_text("550 5.7.1 Go away", &b), 0);
	assert_string_equal(buf_cstr(&b), "550 5.7.1 Go away");
	assert_int_equal(milter_reply_text("451 4.7.1 a\r\n451 4.7.1 b", &b), 0);
	assert_string_equal(buf_cstr(&b), "451-4.7.1 a\r\n451 4.7.1 b");
	assert_int_equal(milter_reply_text("550", &b), 0);
	assert_string_equal(buf_cstr(&b), "550 5.7.1 Command rejected");
	assert_int_equal(milter_reply_text("250 ok", &b), -1);
	assert_int_equal(milter_reply_text("55x no", &b), -1);
	assert_int_equal(milter_reply_text("550 a\r\n451 b", &b), -1);
	assert_int_equal(milter_reply_text("550 a\001b", &b), -1);
	assert_int_equal(milter_reply_text("", &b), -1);
	buf_free(&b);
}

static const char msg[] =
	"Received: from x\n\tby y\n"
	"Subject: hello\n"
	"X-Tag: one\n"
	"x-tag: two\n"
	"\n"
	"Body line\n";

static char *
store(struct milter_msg *m, struct buf *out)
{
	assert_int_equal(milter_msg_store(m, out), 0);
	return out->data;
}

static void
test_edit_headers(void **state)
{
	struct milter_msg m;
	struct buf out, v;

	buf_init(&out, 0);
	buf_init(&v, 0);
	milter_msg_load(&m, msg, strlen(msg), 0);
	assert_int_equal(m.hdrs.n, 4);
	assert_string_equal(m.hdrs.v[0], "Received: from x\n\tby y");
	assert_int_equal(milter_hdr_name(m.hdrs.v[1]), 7);
	milter_hdr_value(m.hdrs.v[1], false, &v);
	assert_string_equal(buf_cstr(&v), "hello");
	milter_hdr_value(m.hdrs.v[1], true, &v);
	assert_string_equal(buf_cstr(&v), " hello");
	assert_string_equal(store(&m, &out), msg);	/* unchanged */

	/* the second X-Tag (any case), deletion of the first */
	assert_int_equal(milter_msg_change(&m, 2, "X-TAG", "deux", false), 0);
	assert_string_equal(m.hdrs.v[3], "X-TAG: deux");
	assert_int_equal(milter_msg_change(&m, 1, "X-Tag", "", false), 0);
	assert_int_equal(m.hdrs.n, 3);
	/* deleting what is not there changes nothing; changing adds */
	assert_int_equal(milter_msg_change(&m, 5, "X-Tag", "", false), 0);
	assert_int_equal(m.hdrs.n, 3);
	assert_int_equal(milter_msg_change(&m, 0, "X-New", "v", false), 0);
	assert_string_equal(m.hdrs.v[3], "X-New: v");
	/* insert at the top, past the end; leading space kept as sent */
	assert_int_equal(milter_msg_insert(&m, 0, "DKIM-Signature",
					   " v=1;\r\n\tb=x", true), 0);
	assert_string_equal(m.hdrs.v[0], "DKIM-Signature: v=1;\n\tb=x");
	assert_int_equal(milter_msg_insert(&m, 99, "X-Last", "z", false), 0);
	assert_string_equal(m.hdrs.v[m.hdrs.n - 1], "X-Last: z");
	/* a continuation line without white space gets a tab */
	assert_int_equal(milter_msg_add(&m, "X-Fold", "a\nb", false), 0);
	assert_string_equal(m.hdrs.v[m.hdrs.n - 1], "X-Fold: a\n\tb");
	/* bad names */
	assert_int_equal(milter_msg_add(&m, "Bad Name", "v", false), -1);
	assert_int_equal(milter_msg_add(&m, "", "v", false), -1);
	assert_int_equal(milter_msg_add(&m, "A:B", "v", false), -1);
	assert_string_equal(store(&m, &out),
		"DKIM-Signature: v=1;\n\tb=x\n"
		"Received: from x\n\tby y\n"
		"Subject: hello\n"
		"X-TAG: deux\n"
		"X-New: v\n"
		"X-Last: z\n"
		"X-Fold: a\n\tb\n"
		"\n"
		"Body line\n");
	milter_msg_free(&m);
	buf_free(&out);
	buf_free(&v);
}

static void
test_edit_body(void **state)
{
	struct milter_msg m;
	struct buf out;
	size_t n;
	const char *b;

	buf_init(&out, 0);
	milter_msg_load(&m, msg, strlen(msg), 120);
	b = milter_msg_body(&m, &n);
	assert_int_equal(n, 10);
	assert_memory_equal(b, "Body line\n", 10);
	/* CR LF split across chunks */
	assert_int_equal(milter_msg_body_chunk(&m, "new\r", 4), 0);
	assert_int_equal(milter_msg_body_chunk(&m, "\nbody\r\n", 7), 0);
	b = milter_msg_body(&m, &n);
	assert_int_equal(n, 9);
	assert_memory_equal(b, "new\nbody\n", 9);
	/* the bound: 120 bytes in all */
	{
		char big[200];

		memset(big, 'x', sizeof(big));
		assert_int_equal(milter_msg_body_chunk(&m, big, sizeof(big)), -1);
	}
	milter_msg_free(&m);
	/* a message without an empty line: all headers, no body */
	milter_msg_load(&m, "A: b\nC: d\n", 10, 0);
	assert_int_equal(m.hdrs.n, 2);
	b = milter_msg_body(&m, &n);
	assert_int_equal(n, 0);
	assert_string_equal(store(&m, &out), "A: b\nC: d\n\n");
	milter_msg_free(&m);
	/* a header bound */
	milter_msg_load(&m, msg, strlen(msg), 80);
	assert_int_equal(milter_msg_add(&m, "X-Big",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
		-1);
	milter_msg_free(&m);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_packets),
		cmocka_unit_test(test_get_packets),
		cmocka_unit_test(test_optneg_reply),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_reply_text),
		cmocka_unit_test(test_edit_headers),
		cmocka_unit_test(test_edit_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
