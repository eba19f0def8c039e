/*
 * auth_test.c - password schemes against known vectors (openssl passwd,
 * Python hashlib, libsodium, bcrypt), right and wrong passwords, bad stored
 * values; hash/verify round trips; strict base64 and PLAIN parsing; the
 * passwd-file passdb (case, duplicates, reload, errors); the throttle.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/passdb.h"
#include "auth/pwscheme.h"
#include "auth/sasl.h"
#include "auth/throttle.h"

#define PW "Secret-1"

static const char *const vectors[] = {
	"{SHA512-CRYPT}$6$saltsalt$.IvaZon6y00v95Hmay7einEVFelkigBGC5i8QyHClswv//RiyLclHW9Onx7i3HVkSo8kZBnUub4DjuhjzBNQO1",
	"$6$saltsalt$.IvaZon6y00v95Hmay7einEVFelkigBGC5i8QyHClswv//RiyLclHW9Onx7i3HVkSo8kZBnUub4DjuhjzBNQO1",
	"{CRYPT}$6$saltsalt$.IvaZon6y00v95Hmay7einEVFelkigBGC5i8QyHClswv//RiyLclHW9Onx7i3HVkSo8kZBnUub4DjuhjzBNQO1",
	"{SHA256-CRYPT}$5$saltsalt$M0.P4OgsG4e7kwDw2r9mfa0JmFzTlB/ml1ZXy/hUcr.",
	"{MD5-CRYPT}$1$saltsalt$8yk2Ya3KpfWOH4Sa.L8g21",
	"{BLF-CRYPT}$2b$05$abcdefghijklmnopqrstuuMXVsYZP0CjABc7bmWvnIvg1aikYsf.C",
	"{SSHA512}2adJXEqywQxSp7nO8qaawCiWZsd+SfHe/kuq3DlgRcytWh059xyE3e6DVlKqZ5S3U6KVCSnbLL765QwqxQ8gDQECAwRzYWx0",
	"{SSHA256}qujl4k7R1XIes2GXvGQ5VsyEc63wzqUuj+ncD3B5Hl8BAgMEc2FsdA==",
	"{SSHA}bPgcvAvJICNDb/3Jg47AJRsWtKcBAgMEc2FsdA==",
	"{SHA512}BSUwk2zdatenqHxS6Vb/c5uPilzikDoghxZ1DNoQp+cXNgXhU8PKTpRkMuKVFlOsjKOqLbEUu+M9nKpyYVYkhA==",
	"{SHA256}g66wxmeMQYTfrTAYROhnwOGnVuZ0xm8ejrIXtYXq87Y=",
	"{SHA}CFLsCSwo+fPvXjEG95j6YCld+ss=",
	"{ARGON2ID}$argon2id$v=19$m=8192,t=2,p=1$UkBoSc5Fbp+wONfnaKVSTA$OwEpYCTKp9ylWr16H9YujIIbYFWhRRxuSgfdek6n0/g",
	"{ARGON2I}$argon2i$v=19$m=8192,t=3,p=1$fmVt2TgusvqhZ8tPjjHOlQ$822kBAjLLdAbeiFmcXSzrzLRIEftLX8xXrb0nSn7wzg",
	/* doveadm pw -s SCRAM-SHA-256 (Dovecot 2.3) */
	"{SCRAM-SHA-256}4096,xf2PMLNMVdbGes6RX+5bqA==,LaO1OTBDo7tCE4QBzoYkGW4mPOmh3FuNrYf9CdstSFo=,PmM/q441Etci82uvfldRKq+rhGLsrZkr/L1Myn+b76Q=",
	"{PLAIN}" PW,
	"{CLEARTEXT}" PW,
	"{plain}" PW,
};

static void
test_vectors(void **state)
{
	static const char *const wrong[] = {
		"Secret-2", "secret-1", "Secret-1 ", "", "Secret-", "Secret-11",
	};
	struct errbuf err;

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		errbuf_clear(&err);
		if (pwscheme_verify(vectors[i], PW, strlen(PW), &err) != PW_MATCH)
			fail_msg("%s: right password refused: %s", vectors[i],
				 errbuf_str(&err));
		for (size_t j = 0; j < sizeof(wrong) / sizeof(wrong[0]); j++)
			if (pwscheme_verify(vectors[i], wrong[j], strlen(wrong[j]),
					    &err) != PW_MISMATCH)
				fail_msg("%s: wrong password \"%s\" accepted",
					 vectors[i], wrong[j]);
		/* A NUL inside the password never matches. */
		assert_int_equal(pwscheme_verify(vectors[i], PW "\0x",
						 sizeof(PW) + 1, &err),
				 PW_MISMATCH);
	}
}

static void
test_bad_stored(void **state)
{
	static const struct {
		const char *stored, *msg;
	} bad[] = {
		{ "{NOPE}abc", "unknown password scheme {NOPE}" },
		{ "{SSHA512}not base64!", "not valid base64" },
		{ "{SSHA}AAAA", "not valid base64 of the right length" },
		{ "{SHA256}AAAA", "right length" },
		{ "{ARGON2ID}$6$xx$yy", "not an argon2 hash" },
		{ "{SHA512-CRYPT}*", "locked or empty" },
		{ "!locked", "locked or empty" },
		{ "", "locked or empty" },
	};
	struct errbuf err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errbuf_clear(&err);
		if (pwscheme_verify(bad[i].stored, PW, strlen(PW), &err) != PW_ERROR)
			fail_msg("\"%s\" not an error", bad[i].stored);
		if (strstr(errbuf_str(&err), bad[i].msg) == NULL)
			fail_msg("\"%s\": %s", bad[i].stored, errbuf_str(&err));
	}
}

static void
test_roundtrip(void **state)
{
	static const char *const schemes[] = {
		"ARGON2ID", "argon2i", "SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT",
		"MD5-CRYPT", "SSHA512", "SSHA256", "SSHA", "SCRAM-SHA-256",
		"PLAIN",
	};
	struct errbuf err;

	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		char *h = pwscheme_hash(schemes[i], "pässword:x", &err), *h2;
		char want[40];

		assert_true(pwscheme_hash_known(schemes[i]));
		if (h == NULL)
			fail_msg("%s: %s", schemes[i], errbuf_str(&err));
		snprintf(want, sizeof(want), "{%s}", schemes[i]);
		for (char *p = want; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		assert_memory_equal(h, want, strlen(want));
		assert_int_equal(pwscheme_verify(h, "pässword:x", 11, &err), PW_MATCH);
		assert_int_equal(pwscheme_verify(h, "password:x", 10, &err),
				 PW_MISMATCH);
		/* salted: two hashes of one password differ */
		if (strcmp(schemes[i], "PLAIN") != 0) {
			h2 = pwscheme_hash(schemes[i], "pässword:x", &err);
			assert_string_not_equal(h, h2);
			free(h2);
		}
		free(h);
	}
	assert_false(pwscheme_hash_known("ROT13"));
	assert_false(pwscheme_hash_known("SHA512-CRYP"));
	assert_false(pwscheme_hash_known(""));
	assert_null(pwscheme_hash("ROT13", "x", &err));
	assert_non_null(strstr(errbuf_str(&err), "unknown password scheme"));
}

static void
test_base64(void **state)
{
	static const struct {
		const char *in;
		int rc;
		const char *out;
		size_t outlen;
	} cases[] = {
		{ "=", 0, "", 0 },
		{ "dGVzdA==", 0, "test", 4 },
		{ "AHVzZXIAcGFzcw==", 0, "\0user\0pass", 10 },
		{ "VXNlcm5hbWU6", 0, "Username:", 9 },
		{ "dGVzdA", -1, NULL, 0 },		/* padding required */
		{ "dGVzdA=", -1, NULL, 0 },
		{ "dGV zdA==", -1, NULL, 0 },
		{ "dGVzdA==dGVzdA==", -1, NULL, 0 },
		{ "*", -1, NULL, 0 },
		{ "", -1, NULL, 0 },
		{ "====", -1, NULL, 0 },
		{ "dGVzdA-_", -1, NULL, 0 },
	};
	struct buf out;

	buf_init(&out, SASL_RESPONSE_MAX);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = sasl_decode64(cases[i].in, strlen(cases[i].in), &out);

		if (rc != cases[i].rc)
			fail_msg("\"%s\": rc %d", cases[i].in, rc);
		if (rc == 0) {
			assert_int_equal(out.len, cases[i].outlen);
			assert_memory_equal(out.data ? out.data : "", cases[i].out,
					    cases[i].outlen);
		}
	}
	/* Too long: refused before decoding. */
	{
		size_t n = (SASL_RESPONSE_MAX / 3 + 2) * 4;
		char *big = malloc(n + 1);

		memset(big, 'A', n);
		big[n] = '\0';
		assert_int_equal(sasl_decode64(big, n, &out), -1);
		free(big);
	}
	buf_reset(&out);
	sasl_encode64("Password:", 9, &out);
	assert_string_equal(buf_cstr(&out), "UGFzc3dvcmQ6");
	buf_free(&out);
}

static void
test_plain(void **state)
{
	static const struct {
		const char *msg;
		size_t len;
		int rc;
		const char *user, *pw, *why;
	} cases[] = {
		{ "\0user@x.test\0pw", 15, 0, "user@x.test", "pw", NULL },
		{ "user@x.test\0user@x.test\0pw", 26, 0, "user@x.test", "pw", NULL },
		{ "USER@x.test\0user@x.test\0pw", 26, 0, "user@x.test", "pw", NULL },
		{ "\0u\0p:a ss", 9, 0, "u", "p:a ss", NULL },
		{ "other\0user\0pw", 13, -1, NULL, NULL, "authorization identity" },
		{ "\0user\0", 6, -1, NULL, NULL, "empty password" },
		{ "\0\0pw", 4, -1, NULL, NULL, "empty user name" },
		{ "user\0pw", 7, -1, NULL, NULL, "one NUL" },
		{ "userpw", 6, -1, NULL, NULL, "no NUL" },
		{ "\0u\0p\0w", 6, -1, NULL, NULL, "NUL in password" },
		{ "", 0, -1, NULL, NULL, "no NUL" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *u = NULL, *p = NULL, *why = NULL;
		size_t ul = 0, pl = 0;
		int rc = sasl_plain_parse(cases[i].msg, cases[i].len, &u, &ul, &p,
					  &pl, &why);

		assert_int_equal(rc, cases[i].rc);
		if (rc == 0) {
			assert_int_equal(ul, strlen(cases[i].user));
			assert_memory_equal(u, cases[i].user, ul);
			assert_int_equal(pl, strlen(cases[i].pw));
			assert_memory_equal(p, cases[i].pw, pl);
		} else if (strstr(why, cases[i].why) == NULL) {
			fail_msg("case %zu: %s", i, why);
		}
	}
	assert_int_equal(sasl_mech_find("plain", 5), SASL_MECH_PLAIN);
	assert_int_equal(sasl_mech_find("LOGIN", 5), SASL_MECH_LOGIN);
	assert_int_equal(sasl_mech_find("cram-md5", 8), SASL_MECH_CRAM_MD5);
	assert_int_equal(sasl_mech_find("SCRAM-SHA-1", 11), SASL_MECH_NONE);
	assert_int_equal(sasl_mech_find("PLAINX", 6), SASL_MECH_NONE);
}

static void
write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void
test_passwd_file(void **state)
{
	char dir[] = "/tmp/facteur-auth-test.XXXXXX", path[64], spec[80];
	struct passdb *p;
	struct errbuf err;
	char *pass = NULL;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/users", dir);
	snprintf(spec, sizeof(spec), "passwd-file:%s", path);
	write_text(path, "# users\n"
		   "alice@example.test:{PLAIN}one:5000:5000::/home/alice::\n"
		   "\n"
		   "  Bob@Example.test:{SSHA}xyz\n"
		   "alice@example.test:{PLAIN}second\n"
		   "carol@example.test:{PLAIN}c\r\n");
	p = passdb_open(spec, &err);
	if (p == NULL)
		fail_msg("%s", errbuf_str(&err));
	assert_int_equal(passdb_lookup(p, "ALICE@example.TEST", &pass, &err),
			 PASSDB_FOUND);
	assert_string_equal(pass, "{PLAIN}one");	/* the first line wins */
	free(pass);
	assert_int_equal(passdb_lookup(p, "bob@example.test", &pass, &err),
			 PASSDB_FOUND);
	assert_string_equal(pass, "{SSHA}xyz");
	free(pass);
	assert_int_equal(passdb_lookup(p, "carol@example.test", &pass, &err),
			 PASSDB_FOUND);
	assert_string_equal(pass, "{PLAIN}c");
	free(pass);
	assert_int_equal(passdb_lookup(p, "dave@example.test", &pass, &err),
			 PASSDB_NOTFOUND);
	/* Changed file: read again (size differs). */
	write_text(path, "dave@example.test:{PLAIN}d\n");
	assert_int_equal(passdb_lookup(p, "dave@example.test", &pass, &err),
			 PASSDB_FOUND);
	free(pass);
	assert_int_equal(passdb_lookup(p, "alice@example.test", &pass, &err),
			 PASSDB_NOTFOUND);
	/* Gone: temporary failure, never "unknown user". */
	unlink(path);
	assert_int_equal(passdb_lookup(p, "dave@example.test", &pass, &err),
			 PASSDB_TEMPFAIL);
	assert_non_null(strstr(errbuf_str(&err), "No such file"));
	passdb_free(&p);
	assert_null(p);

	/* Open errors */
	assert_null(passdb_open(spec, &err));
	assert_non_null(strstr(errbuf_str(&err), "No such file"));
	write_text(path, "ok:{PLAIN}x\nbroken line\n");
	assert_null(passdb_open(spec, &err));
	assert_non_null(strstr(errbuf_str(&err), "line 2: expected user:password"));
	assert_null(passdb_open("texthash:/x", &err));
	assert_non_null(strstr(errbuf_str(&err), "unsupported type \"texthash\""));
	/* A directory passdb whose .cf cannot be read answers "try later",
	 * never "no such user". */
	assert_non_null(p = passdb_open("ldap:/nonexistent/auth.cf", &err));
	errbuf_clear(&err);
	pass = NULL;
	assert_int_equal(passdb_lookup(p, "alice@example.test", &pass, &err),
			 PASSDB_TEMPFAIL);
	assert_null(pass);
	assert_non_null(strstr(errbuf_str(&err), "No such file"));
	passdb_free(&p);
	assert_null(p);
	assert_null(passdb_open("/etc/passwd", &err));
	assert_non_null(strstr(errbuf_str(&err), "not TYPE:NAME"));
	unlink(path);
	rmdir(dir);
}

static void
test_throttle(void **state)
{
	time_t t = 1000000;

	assert_int_equal(throttle_auth_count("192.0.2.1", t), 0);
	assert_int_equal(throttle_auth_fail("192.0.2.1", t), 0);
	assert_int_equal(throttle_auth_fail("192.0.2.1", t), 0);
	assert_int_equal(throttle_auth_fail("192.0.2.1", t), 0);
	assert_int_equal(throttle_auth_fail("192.0.2.1", t), 1);
	assert_int_equal(throttle_auth_fail("192.0.2.1", t), 2);
	assert_int_equal(throttle_auth_count("192.0.2.1", t), 5);
	assert_int_equal(throttle_auth_count("192.0.2.2", t), 0);
	/* decays one per minute */
	assert_int_equal(throttle_auth_count("192.0.2.1", t + 120), 3);
	assert_int_equal(throttle_auth_count("192.0.2.1", t + 3600), 0);
	for (int i = 0; i < 100; i++)
		throttle_auth_fail("192.0.2.3", t);
	assert_int_equal(throttle_auth_fail("192.0.2.3", t), 30);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_bad_stored),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_passwd_file),
		cmocka_unit_test(test_throttle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
