/*
 * table_pcre.c - pcre: tables: Postfix pcre_table(5) files matched with
 * PCRE2, through the rule engine in table_regexp.c (if/endif, negation,
 * $n results). Matching is case-insensitive unless the "i" flag toggles it.
 * Must not: share match data between threads (one per lookup), or log.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "backends/table_driver.h"
#include "core/lib/xmalloc.h"

static void *
pcre_compile_one(const char *pattern, const char *flags, size_t *nsub_r,
		 struct errbuf *err)
{
	uint32_t opts = PCRE2_CASELESS, count = 0;
	PCRE2_SIZE erroff;
	pcre2_code *re;
	int rc;

	for (const char *f = flags; *f; f++) {
		switch (*f) {
		case 'i': opts ^= PCRE2_CASELESS; break;
		case 'm': opts ^= PCRE2_MULTILINE; break;
		case 's': opts ^= PCRE2_DOTALL; break;
		case 'x': opts ^= PCRE2_EXTENDED; break;
		case 'A': opts ^= PCRE2_ANCHORED; break;
		case 'E': opts ^= PCRE2_DOLLAR_ENDONLY; break;
		case 'U': opts ^= PCRE2_UNGREEDY; break;
		case 'X': break;	/* PCRE1 "extra": PCRE2 is always strict */
		default:
			errbuf_set(err, "unknown pcre option \"%c\"", *f);
			return NULL;
		}
	}
	re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts,
			   &rc, &erroff, NULL);
	if (re == NULL) {
		PCRE2_UCHAR msg[256];

		pcre2_get_error_message(rc, msg, sizeof(msg));
		errbuf_set(err, "%s at offset %zu", (const char *)msg, (size_t)erroff);
		return NULL;
	}
	pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &count);
	*nsub_r = count;
	return re;
}

static int
pcre_exec_one(void *re, const char *key, size_t nsub, long *ovec,
	      struct errbuf *err)
{
	pcre2_match_data *md = pcre2_match_data_create((uint32_t)nsub + 1, NULL);
	PCRE2_SIZE *ov;
	int rc;

	if (md == NULL) {
		errbuf_set(err, "pcre2: out of memory");
		return -1;
	}
	rc = pcre2_match(re, (PCRE2_SPTR)key, strlen(key), 0, 0, md, NULL);
	if (rc == PCRE2_ERROR_NOMATCH) {
		pcre2_match_data_free(md);
		return 0;
	}
	if (rc < 0) {
		PCRE2_UCHAR msg[256];

		pcre2_get_error_message(rc, msg, sizeof(msg));
		errbuf_set(err, "pcre2_match: %s", (const char *)msg);
		pcre2_match_data_free(md);
		return -1;
	}
	ov = pcre2_get_ovector_pointer(md);
	for (size_t i = 0; i <= nsub; i++) {
		bool set = (int)i < rc && ov[2 * i] != PCRE2_UNSET;

		ovec[2 * i] = set ? (long)ov[2 * i] : -1;
		ovec[2 * i + 1] = set ? (long)ov[2 * i + 1] : -1;
	}
	pcre2_match_data_free(md);
	return 1;
}

static void
pcre_free_one(void *re)
{
	pcre2_code_free(re);
}

static const struct table_pattern_ops pcre_ops = {
	.compile = pcre_compile_one, .exec = pcre_exec_one, .free = pcre_free_one,
};

static int
pcre_open(struct table *t, const char *name, struct errbuf *err)
{
	return table_pattern_open(t, name, &pcre_ops, err);
}

const struct table_driver table_pcre_driver = {
	.type = "pcre", .flags = TABLE_F_PATTERN,
	.open = pcre_open, .lookup = table_pattern_lookup,
	.warnings = table_pattern_warnings, .close = table_pattern_close,
};
