/*
 * buf_test.c - the bounded growable buffer: the maximum is enforced by every
 * append function, a failed append leaves the buffer unchanged, the data is
 * always NUL-terminated, buf_steal hands over ownership, buf_printf at and
 * past the limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/lib/buf.h"

/* The invariants every public function must keep. */
static void
check_invariants(const struct buf *b)
{
	assert_true(b->max == 0 || b->len <= b->max);
	assert_non_null(buf_cstr(b));
	assert_int_equal(strlen(buf_cstr(b)), b->len);
	if (b->data != NULL) {
		assert_true(b->len < b->cap);
		assert_int_equal(b->data[b->len], '\0');
		/* never more memory than max + NUL once it is bounded */
		assert_true(b->max == 0 || b->cap <= b->max + 1);
	}
}

static void
test_empty(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 10);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 10);
	assert_string_equal(buf_cstr(&b), "");
	check_invariants(&b);
	/* An empty append still allocates a terminated string. */
	assert_int_equal(buf_append(&b, "", 0), 0);
	assert_string_equal(buf_cstr(&b), "");
	check_invariants(&b);
	buf_reset(&b);
	check_invariants(&b);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	assert_string_equal(buf_cstr(&b), "");
	/* A freed buffer can be used again. */
	assert_int_equal(buf_puts(&b, "again"), 0);
	assert_string_equal(buf_cstr(&b), "again");
	buf_free(&b);
	/* buf_free twice is harmless. */
	buf_free(&b);
}

enum op { OP_APPEND, OP_PUTS, OP_PUTC, OP_PRINTF, OP_SET };

struct limit_case {
	size_t      max;
	const char *before;	/* content put first (must fit) */
	enum op     op;
	const char *arg;	/* appended text / character / printf arg */
	int         rc;		/* expected result */
	const char *after;	/* expected content */
};

static const struct limit_case limit_cases[] = {
	/* exactly at the limit succeeds */
	{ 5, "", OP_APPEND, "abcde", 0, "abcde" },
	{ 5, "ab", OP_PUTS, "cde", 0, "abcde" },
	{ 5, "abcd", OP_PUTC, "e", 0, "abcde" },
	{ 5, "ab", OP_PRINTF, "cde", 0, "abcde" },
	{ 5, "xyz", OP_SET, "abcde", 0, "abcde" },
	/* one byte over fails and leaves the content alone */
	{ 5, "", OP_APPEND, "abcdef", -1, "" },
	{ 5, "ab", OP_PUTS, "cdef", -1, "ab" },
	{ 5, "abcde", OP_PUTC, "f", -1, "abcde" },
	{ 5, "ab", OP_PRINTF, "cdef", -1, "ab" },
	{ 5, "abcde", OP_PRINTF, "x", -1, "abcde" },
	/* an empty append at a full buffer is fine */
	{ 5, "abcde", OP_APPEND, "", 0, "abcde" },
	{ 5, "abcde", OP_PRINTF, "", 0, "abcde" },
	/* max 0 = unlimited */
	{ 0, "abc", OP_PUTS, "defghijklmnopqrstuvwxyz", 0,
	  "abcdefghijklmnopqrstuvwxyz" },
	/* limit larger than the first allocation (64) */
	{ 100, "", OP_PRINTF,
	  "0123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789"
	  "01234567890123456789", 0,
	  "0123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789"
	  "01234567890123456789" },
	{ 100, "x", OP_PRINTF,
	  "0123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789"
	  "01234567890123456789", -1, "x" },
	{ 1, "", OP_PUTC, "z", 0, "z" },
	{ 1, "z", OP_PUTC, "z", -1, "z" },
};

static void
test_limits(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(limit_cases) / sizeof(limit_cases[0]); i++) {
		const struct limit_case *c = &limit_cases[i];
		struct buf b;
		size_t cap_before;
		int rc = 0;

		buf_init(&b, c->max);
		assert_int_equal(buf_puts(&b, c->before), 0);
		cap_before = b.cap;
		switch (c->op) {
		case OP_APPEND:
			rc = buf_append(&b, c->arg, strlen(c->arg));
			break;
		case OP_PUTS:
			rc = buf_puts(&b, c->arg);
			break;
		case OP_PUTC:
			rc = buf_putc(&b, c->arg[0]);
			break;
		case OP_PRINTF:
			rc = buf_printf(&b, "%s", c->arg);
			break;
		case OP_SET:
			rc = buf_set(&b, c->arg);
			break;
		}
		if (rc != c->rc || strcmp(buf_cstr(&b), c->after) != 0)
			fail_msg("case %zu: rc %d (want %d), content \"%s\" "
				 "(want \"%s\")", i, rc, c->rc, buf_cstr(&b),
				 c->after);
		if (rc < 0)
			assert_int_equal(b.cap, cap_before);
		assert_int_equal(b.len, strlen(c->after));
		check_invariants(&b);
		buf_free(&b);
	}
}

static void
test_grow_many(void **state)
{
	struct buf b;
	const size_t max = 10000;

	(void)state;
	buf_init(&b, max);
	for (size_t i = 0; i < max; i++) {
		assert_int_equal(buf_putc(&b, 'a' + (int)(i % 26)), 0);
		if (i % 997 == 0)
			check_invariants(&b);
	}
	assert_int_equal(b.len, max);
	assert_int_equal(buf_putc(&b, 'x'), -1);
	assert_int_equal(buf_append(&b, "x", 1), -1);
	assert_int_equal(buf_printf(&b, "%d", 1), -1);
	assert_int_equal(b.len, max);
	check_invariants(&b);
	for (size_t i = 0; i < max; i++)
		assert_int_equal(b.data[i], 'a' + (int)(i % 26));
	buf_free(&b);
}

static void
test_binary(void **state)
{
	struct buf b;
	const char bin[] = { 'a', '\0', 'b', '\0' };

	(void)state;
	buf_init(&b, 16);
	assert_int_equal(buf_append(&b, bin, sizeof(bin)), 0);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, bin, 4);
	assert_int_equal(b.data[4], '\0');
	assert_int_equal(buf_putc(&b, 0), 0);
	assert_int_equal(b.len, 5);
	assert_int_equal(b.data[5], '\0');
	/* putc takes an int: only the low byte is stored */
	assert_int_equal(buf_putc(&b, 0x141), 0);
	assert_int_equal((unsigned char)b.data[5], 0x41);
	buf_free(&b);
}

/* A size_t close to SIZE_MAX must fail cleanly, not wrap around. */
static void
test_huge_append(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(buf_puts(&b, "keep"), 0);
	assert_int_equal(buf_append(&b, "x", SIZE_MAX), -1);
	assert_int_equal(buf_append(&b, "x", SIZE_MAX - 2), -1);
	assert_int_equal(buf_append(&b, "x", SIZE_MAX / 2), -1);
	assert_string_equal(buf_cstr(&b), "keep");
	check_invariants(&b);
	buf_free(&b);
}

struct printf_case {
	size_t      max;
	const char *fmt_s;	/* argument for "%s=%d" */
	int         num;
	int         rc;
	const char *after;
};

static const struct printf_case printf_cases[] = {
	{ 0, "a", 1, 0, "a=1" },
	{ 3, "a", 1, 0, "a=1" },
	{ 3, "a", 12, -1, "" },
	{ 8, "size", -99, 0, "size=-99" },
	{ 8, "size", -999, -1, "" },
};

static void
test_printf(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(printf_cases) / sizeof(printf_cases[0]); i++) {
		const struct printf_case *c = &printf_cases[i];
		struct buf b;
		int rc;

		buf_init(&b, c->max);
		rc = buf_printf(&b, "%s=%d", c->fmt_s, c->num);
		if (rc != c->rc || strcmp(buf_cstr(&b), c->after) != 0)
			fail_msg("case %zu: rc %d content \"%s\"", i, rc,
				 buf_cstr(&b));
		check_invariants(&b);
		buf_free(&b);
	}
}

/* Repeated printf grows across several reallocations and keeps content. */
static void
test_printf_accumulate(void **state)
{
	struct buf b;
	char want[8192];
	size_t wl = 0;

	(void)state;
	buf_init(&b, 4096);
	for (int i = 0;; i++) {
		int n = snprintf(want + wl, sizeof(want) - wl, "[%d]", i);
		int rc = buf_printf(&b, "[%d]", i);

		if (wl + (size_t)n > 4096) {
			assert_int_equal(rc, -1);
			want[wl] = '\0';
			break;
		}
		assert_int_equal(rc, 0);
		wl += (size_t)n;
	}
	assert_int_equal(b.len, wl);
	assert_string_equal(buf_cstr(&b), want);
	check_invariants(&b);
	buf_free(&b);
}

static void
vprintf_helper(struct buf *b, int *rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	*rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
}

static void
test_vprintf(void **state)
{
	struct buf b;
	int rc;

	(void)state;
	buf_init(&b, 20);
	vprintf_helper(&b, &rc, "%s-%u-%c", "abc", 42u, 'z');
	assert_int_equal(rc, 0);
	assert_string_equal(buf_cstr(&b), "abc-42-z");
	vprintf_helper(&b, &rc, "%020d", 5);
	assert_int_equal(rc, -1);
	assert_string_equal(buf_cstr(&b), "abc-42-z");
	vprintf_helper(&b, &rc, "%012d", 5);
	assert_int_equal(rc, 0);
	assert_string_equal(buf_cstr(&b), "abc-42-z000000000005");
	check_invariants(&b);
	buf_free(&b);
}

static void
test_set_reset(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_set(&b, "hello"), 0);
	assert_string_equal(buf_cstr(&b), "hello");
	assert_int_equal(buf_set(&b, "bye"), 0);
	assert_string_equal(buf_cstr(&b), "bye");
	assert_int_equal(b.len, 3);
	/* buf_set replaces: a too long value fails. The old content is
	 * gone (set = reset + puts), but the buffer stays a valid string. */
	assert_int_equal(buf_set(&b, "123456789"), -1);
	check_invariants(&b);
	assert_true(b.len <= 8);
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	assert_non_null(b.data);	/* keeps memory */
	check_invariants(&b);
	/* After reset the full max is available again. */
	assert_int_equal(buf_puts(&b, "12345678"), 0);
	assert_string_equal(buf_cstr(&b), "12345678");
	buf_free(&b);
}

static void
test_steal(void **state)
{
	struct buf b;
	char *s;

	(void)state;
	/* before any append: an owned empty string */
	buf_init(&b, 32);
	s = buf_steal(&b);
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
	assert_null(b.data);
	assert_int_equal(b.len, 0);

	assert_int_equal(buf_printf(&b, "%s@%s", "user", "example.test"), 0);
	s = buf_steal(&b);
	assert_string_equal(s, "user@example.test");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.max, 32);	/* the limit survives */
	assert_string_equal(buf_cstr(&b), "");
	/* b is independent of s now */
	assert_int_equal(buf_puts(&b, "other"), 0);
	assert_string_equal(s, "user@example.test");
	assert_string_equal(buf_cstr(&b), "other");
	assert_int_equal(buf_puts(&b, "0123456789012345678901234567"), -1);
	free(s);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_grow_many),
		cmocka_unit_test(test_binary),
		cmocka_unit_test(test_huge_append),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_printf_accumulate),
		cmocka_unit_test(test_vprintf),
		cmocka_unit_test(test_set_reset),
		cmocka_unit_test(test_steal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
