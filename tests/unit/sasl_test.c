/*
 * sasl_test.c - the SASL mechanisms below the protocols: the RFC 7677
 * SCRAM-SHA-256 vector (key derivation, proof, server signature), the
 * SCRAM and CRAM-MD5 message parsers on good and malformed input, the
 * offered-mechanism set (smtpd_sasl_mechanisms and security options), and
 * whole exchanges (PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-256) driven through
 * sasl_exchange against a passwd-file, with right and wrong passwords,
 * unknown users and users whose stored hash does not allow the mechanism;
 * the dummy hash for unknown users (same cost as the passdb's usual one).
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

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "auth/passdb.h"
#include "auth/pwscheme.h"
#include "auth/sasl.h"
#include "auth/sasl_exchange.h"

/* RFC 7677 3 */
#define V_FIRST   "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define V_SFIRST  "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
		  "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define V_FINAL   "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
		  "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define V_SIG     "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static void
test_rfc7677_vector(void **state)
{
	struct scram_first f;
	struct scram_final fin;
	struct scram_cred c, c2;
	unsigned char salt[32], sig[SCRAM_KEY_LEN], want[SCRAM_KEY_LEN];
	const char *why = NULL;
	char am[512];
	long sl;
	char *text;

	assert_int_equal(sasl_scram_parse_first(V_FIRST, strlen(V_FIRST), &f,
						&why), 0);
	assert_int_equal(f.cbflag, 'n');
	assert_string_equal(f.user, "user");
	assert_string_equal(f.authzid, "");
	assert_int_equal(f.gs2_len, 3);
	assert_int_equal(f.cnonce_len, 20);
	assert_int_equal(sasl_scram_parse_final(V_FINAL, strlen(V_FINAL), &fin,
						&why), 0);
	assert_int_equal(fin.cbind_len, 4);
	assert_memory_equal(fin.cbind, "biws", 4);
	sl = sasl_decode64_to("W22ZaJ0SNY7soEsUEjb6gQ==", 24, salt, sizeof(salt));
	assert_int_equal(sl, 16);
	assert_int_equal(scram_cred_derive("pencil", 6, salt, (size_t)sl, 4096,
					   &c), 0);
	snprintf(am, sizeof(am), "%.*s,%s,%.*s", (int)f.bare_len, f.bare,
		 V_SFIRST, (int)fin.without_proof_len, fin.without_proof);
	assert_int_equal(scram_verify_proof(&c, am, strlen(am), fin.proof, sig), 1);
	assert_int_equal(sasl_decode64_to(V_SIG, strlen(V_SIG), want,
					  sizeof(want)), 32);
	assert_memory_equal(sig, want, 32);
	/* A wrong password fails the same proof. */
	assert_int_equal(scram_cred_derive("pencil2", 7, salt, 16, 4096, &c2), 0);
	assert_int_equal(scram_verify_proof(&c2, am, strlen(am), fin.proof, sig), 0);
	/* The stored form parses back to the same keys. */
	text = scram_cred_format(&c);
	assert_int_equal(scram_cred_parse(text, &c2, &why), 0);
	assert_int_equal(c2.iter, 4096);
	assert_memory_equal(c2.stored_key, c.stored_key, 32);
	assert_memory_equal(c2.server_key, c.server_key, 32);
	free(text);
}

static void
test_scram_parse_errors(void **state)
{
	static const struct {
		const char *msg, *why;
	} firsts[] = {
		{ "p=tls-unique,,n=user,r=abc", "channel binding" },
		{ "x,,n=user,r=abc", "gs2 header" },
		{ "n,n=user,r=abc", "gs2 header" },
		{ "n,,m=ext,n=user,r=abc", "mandatory extension" },
		{ "n,,r=abc,n=user", "no user name" },
		{ "n,,n=,r=abc", "bad user name" },
		{ "n,,n=us=2Xer,r=abc", "bad user name" },
		{ "n,,n=user=,r=abc", "bad user name" },
		{ "n,,n=user", "no nonce" },
		{ "n,,n=user,r=", "empty nonce" },
		{ "n,,n=user,r=a b", "bad nonce" },
		{ "n,,n=user,r=abc,", "bad extension" },
		{ "n,a,n=user,r=abc", "authzid" },
		{ "", "gs2 header" },
		{ "n,,n=u\0x,r=abc", "NUL" },
	};
	static const struct {
		const char *msg, *why;
	} finals[] = {
		{ "r=abc,p=AAAA", "no channel binding" },
		{ "c=biws,p=AAAA", "no nonce" },
		{ "c=biws,r=abc", "no proof" },
		{ "c=biws,r=abc,p=AAAA", "bad proof" },
		{ "c=biws,r=abc,p=!!!!", "bad proof" },
		{ "c=biws,r=abc,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=y",
		  "no proof" },
	};
	struct scram_first f;
	struct scram_final fin;
	struct scram_cred c;
	const char *why;
	size_t len;

	for (size_t i = 0; i < sizeof(firsts) / sizeof(firsts[0]); i++) {
		why = NULL;
		len = strlen(firsts[i].msg);
		if (i == sizeof(firsts) / sizeof(firsts[0]) - 1)
			len = 17;
		if (sasl_scram_parse_first(firsts[i].msg, len, &f, &why) == 0)
			fail_msg("accepted: %s", firsts[i].msg);
		if (why == NULL || strstr(why, firsts[i].why) == NULL)
			fail_msg("%s: %s (want %s)", firsts[i].msg, why,
				 firsts[i].why);
	}
	for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
		why = NULL;
		if (sasl_scram_parse_final(finals[i].msg, strlen(finals[i].msg),
					   &fin, &why) == 0)
			fail_msg("accepted: %s", finals[i].msg);
		if (why == NULL || strstr(why, finals[i].why) == NULL)
			fail_msg("%s: %s (want %s)", finals[i].msg, why,
				 finals[i].why);
	}
	/* Escapes and authzid */
	assert_int_equal(sasl_scram_parse_first("y,a=a=3Db,n=a=3Db=2Cc,r=x,e=1",
						29, &f, &why), 0);
	assert_string_equal(f.user, "a=b,c");
	assert_string_equal(f.authzid, "a=b");
	assert_int_equal(f.cbflag, 'y');
	/* Stored credentials */
	assert_int_equal(scram_cred_parse("4096,c2FsdA==,AAAA,AAAA", &c, &why), -1);
	assert_int_equal(scram_cred_parse("0,c2FsdA==,a,b", &c, &why), -1);
	assert_int_equal(scram_cred_parse("4096,c2FsdA==", &c, &why), -1);
	assert_int_equal(scram_cred_parse("x096,c2FsdA==,a,b", &c, &why), -1);
}

static void
test_cram_parse(void **state)
{
	const char *u, *why;
	size_t ul;
	unsigned char d[16];
	const char *ok = "tim b913a602c7eda7a495b4e6e7334d3890";

	assert_int_equal(sasl_cram_parse(ok, strlen(ok), &u, &ul, d, &why), 0);
	assert_int_equal(ul, 3);
	assert_memory_equal(u, "tim", 3);
	assert_int_equal(d[0], 0xb9);
	assert_int_equal(d[15], 0x90);
	assert_int_equal(sasl_cram_parse("tim b913", 8, &u, &ul, d, &why), -1);
	assert_int_equal(sasl_cram_parse(" b913a602c7eda7a495b4e6e7334d3890", 33,
					 &u, &ul, d, &why), -1);
	assert_int_equal(sasl_cram_parse("tim-b913a602c7eda7a495b4e6e7334d3890",
					 36, &u, &ul, d, &why), -1);
	assert_int_equal(sasl_cram_parse("tim g913a602c7eda7a495b4e6e7334d3890",
					 36, &u, &ul, d, &why), -1);
}

static void
test_mechs(void **state)
{
	struct errbuf err;
	unsigned m = 0;
	struct buf b;

	assert_int_equal(sasl_mechs_parse("plain, LOGIN scram-sha-256 cram-md5",
					  &m, &err), 0);
	buf_init(&b, 0);
	sasl_mechs_format(m, &b);
	assert_string_equal(buf_cstr(&b), "PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256");
	assert_int_equal(sasl_mechs_secure("x", "noanonymous, noplaintext", &m,
					   &err), 0);
	buf_reset(&b);
	sasl_mechs_format(m, &b);
	assert_string_equal(buf_cstr(&b), "CRAM-MD5 SCRAM-SHA-256");
	assert_int_equal(sasl_mechs_secure("x", "mutual_auth", &m, &err), 0);
	assert_int_equal(m, SASL_MECH_BIT(SASL_MECH_SCRAM_SHA256));
	assert_int_equal(sasl_mechs_secure("x", "nodictionary", &m, &err), 0);
	assert_int_equal(m, 0);
	assert_int_equal(sasl_mechs_secure("smtpd_sasl_security_options",
					   "noanonymous, bogus", &m, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "unknown option \"bogus\""));
	assert_int_equal(sasl_mechs_parse("plain digest-md5", &m, &err), -1);
	assert_non_null(strstr(errbuf_str(&err), "\"digest-md5\""));
	buf_free(&b);
}

/* ---- whole exchanges against a passwd-file ---- */

static char dir[] = "/tmp/facteur-sasl-test.XXXXXX";
static char path[80];
static struct passdb *db;

static int
setup(void **state)
{
	struct errbuf err;
	char spec[100], *scram;
	FILE *fp;

	assert_true(sodium_init() >= 0);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/users", dir);
	scram = pwscheme_hash("SCRAM-SHA-256", "scram pw", &err);
	assert_non_null(scram);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "plain@example.test:{PLAIN}plain pw\n"
		"scram@example.test:%s\n"
		"crypt@example.test:{SSHA256}qujl4k7R1XIes2GXvGQ5VsyEc63wzqUuj+"
		"ncD3B5Hl8BAgMEc2FsdA==\n"
		"broken@example.test:{SCRAM-SHA-256}4096,xx\n", scram);
	fclose(fp);
	free(scram);
	snprintf(spec, sizeof(spec), "passwd-file:%s", path);
	db = passdb_open(spec, &err);
	if (db == NULL)
		fail_msg("%s", errbuf_str(&err));
	return 0;
}

static int
teardown(void **state)
{
	passdb_free(&db);
	unlink(path);
	rmdir(dir);
	return 0;
}

/* Runs the worker part synchronously, as a protocol would on a worker. */
static enum sasl_action
run(struct sasl_exchange *ex, enum sasl_action a)
{
	if (a == SASL_WORK) {
		sasl_exchange_work(ex);
		a = sasl_exchange_resume(ex);
	}
	return a;
}

static enum sasl_action
step(struct sasl_exchange *ex, const char *msg, size_t len)
{
	return run(ex, sasl_exchange_step(ex, msg, len));
}

/* smtpd_sasl_local_domain: a name without a domain gets "@realm". */
static void
test_exchange_realm(void **state)
{
	struct sasl_exchange *ex;

	(void)state;
	ex = sasl_exchange_new(SASL_MECH_PLAIN, db, "mx.test", "example.test", 0);
	assert_int_equal(step(ex, "\0PLAIN\0plain pw", 15), SASL_OK);
	assert_string_equal(sasl_exchange_user(ex), "PLAIN@example.test");
	sasl_exchange_free(&ex);

	/* a name with a domain is left alone */
	ex = sasl_exchange_new(SASL_MECH_PLAIN, db, "mx.test", "other.test", 0);
	assert_int_equal(step(ex, "\0PLAIN@example.test\0plain pw", 28), SASL_OK);
	assert_string_equal(sasl_exchange_user(ex), "PLAIN@example.test");
	sasl_exchange_free(&ex);

	/* without the realm, the bare name is unknown */
	ex = sasl_exchange_new(SASL_MECH_PLAIN, db, "mx.test", "", 0);
	assert_int_equal(step(ex, "\0PLAIN\0plain pw", 15), SASL_FAIL);
	sasl_exchange_free(&ex);

	ex = sasl_exchange_new(SASL_MECH_LOGIN, db, "mx.test", "example.test", 0);
	assert_int_equal(sasl_exchange_start(ex), SASL_CHALLENGE);
	assert_int_equal(step(ex, "crypt", 5), SASL_CHALLENGE);
	assert_string_equal(sasl_exchange_login(ex), "crypt@example.test");
	sasl_exchange_free(&ex);
}

static void
test_exchange_plain_login(void **state)
{
	struct sasl_exchange *ex;
	const char *out;
	size_t n;

	ex = sasl_exchange_new(SASL_MECH_PLAIN, db, "mx.test", NULL, 0);
	assert_int_equal(sasl_exchange_start(ex), SASL_CHALLENGE);
	out = sasl_exchange_out(ex, &n);
	assert_int_equal(n, 0);
	assert_int_equal(step(ex, "\0PLAIN@example.test\0plain pw", 28), SASL_OK);
	assert_string_equal(sasl_exchange_user(ex), "PLAIN@example.test");
	sasl_exchange_free(&ex);
	assert_null(ex);

	/* PLAIN against a SCRAM-SHA-256 stored value (doveadm's format) */
	ex = sasl_exchange_new(SASL_MECH_PLAIN, db, "mx.test", NULL, 0);
	assert_int_equal(step(ex, "\0scram@example.test\0scram pw", 28), SASL_OK);
	sasl_exchange_free(&ex);

	ex = sasl_exchange_new(SASL_MECH_PLAIN, db, "mx.test", NULL, 0);
	assert_int_equal(step(ex, "\0nobody@example.test\0x", 22), SASL_FAIL);
	assert_non_null(strstr(sasl_exchange_why(ex), "unknown user"));
	sasl_exchange_free(&ex);

	ex = sasl_exchange_new(SASL_MECH_LOGIN, db, "mx.test", NULL, 0);
	assert_int_equal(sasl_exchange_start(ex), SASL_CHALLENGE);
	out = sasl_exchange_out(ex, &n);
	assert_int_equal(n, 9);
	assert_memory_equal(out, "Username:", 9);
	assert_int_equal(step(ex, "crypt@example.test", 18), SASL_CHALLENGE);
	out = sasl_exchange_out(ex, &n);
	assert_memory_equal(out, "Password:", 9);
	assert_int_equal(step(ex, "Secret-2", 8), SASL_FAIL);
	assert_non_null(strstr(sasl_exchange_why(ex), "wrong password"));
	sasl_exchange_free(&ex);

	ex = sasl_exchange_new(SASL_MECH_LOGIN, db, "mx.test", NULL, 0);
	assert_int_equal(step(ex, "crypt@example.test", 18), SASL_CHALLENGE);
	assert_int_equal(step(ex, "Secret-1", 8), SASL_OK);
	sasl_exchange_free(&ex);

	ex = sasl_exchange_new(SASL_MECH_PLAIN, db, "mx.test", NULL, 0);
	assert_int_equal(step(ex, "\0broken@example.test\0x", 22), SASL_TEMPFAIL);
	sasl_exchange_free(&ex);
}

static void
cram_answer(const char *user, const char *pw, const char *chal, size_t clen,
	    char *out, size_t size)
{
	unsigned char d[16];
	unsigned dl = 16;
	char hex[33];

	HMAC(EVP_md5(), pw, (int)strlen(pw), (const unsigned char *)chal, clen,
	     d, &dl);
	sodium_bin2hex(hex, sizeof(hex), d, 16);
	snprintf(out, size, "%s %s", user, hex);
}

static void
test_exchange_cram(void **state)
{
	struct sasl_exchange *ex;
	const char *out;
	size_t n;
	char ans[200];

	ex = sasl_exchange_new(SASL_MECH_CRAM_MD5, db, "mx.test", NULL, 0);
	assert_int_equal(sasl_exchange_start(ex), SASL_CHALLENGE);
	out = sasl_exchange_out(ex, &n);
	assert_true(n > 10 && out[0] == '<' && out[n - 1] == '>');
	assert_non_null(memmem(out, n, "@mx.test>", 9));
	cram_answer("plain@example.test", "plain pw", out, n, ans, sizeof(ans));
	assert_int_equal(step(ex, ans, strlen(ans)), SASL_OK);
	sasl_exchange_free(&ex);

	ex = sasl_exchange_new(SASL_MECH_CRAM_MD5, db, "mx.test", NULL, 0);
	sasl_exchange_start(ex);
	out = sasl_exchange_out(ex, &n);
	cram_answer("plain@example.test", "plain pX", out, n, ans, sizeof(ans));
	assert_int_equal(step(ex, ans, strlen(ans)), SASL_FAIL);
	sasl_exchange_free(&ex);

	/* A hashed password cannot do CRAM-MD5: the same failure. */
	ex = sasl_exchange_new(SASL_MECH_CRAM_MD5, db, "mx.test", NULL, 0);
	sasl_exchange_start(ex);
	out = sasl_exchange_out(ex, &n);
	cram_answer("crypt@example.test", "Secret-1", out, n, ans, sizeof(ans));
	assert_int_equal(step(ex, ans, strlen(ans)), SASL_FAIL);
	assert_non_null(strstr(sasl_exchange_why(ex), "no plaintext"));
	sasl_exchange_free(&ex);

	/* No initial response for a server-first mechanism */
	ex = sasl_exchange_new(SASL_MECH_CRAM_MD5, db, "mx.test", NULL, 0);
	assert_int_equal(step(ex, "x", 1), SASL_FAIL);
	sasl_exchange_free(&ex);
}

/* A client side of SCRAM-SHA-256, from the RFC's formulas. */
static int
scram_client(struct sasl_exchange *ex, const char *user, const char *pw,
	     unsigned flags, char *salt_b64, size_t salt_size)
{
	char first[300], final[600], am[2000];
	const char *out, *r, *sp, *ip;
	size_t n;
	unsigned char salt[64], salted[32], ck[32], sk[32], stored[32], sig[32];
	unsigned char proof[32], ssig[32], srvk[32];
	unsigned l = 32;
	long sl;
	int iter;
	char sfirst[400];
	struct buf b;
	enum sasl_action a;

	snprintf(first, sizeof(first), "n,,n=%s,r=clientnonce123", user);
	a = step(ex, first, strlen(first));
	if (a != SASL_CHALLENGE)
		return -1;
	out = sasl_exchange_out(ex, &n);
	snprintf(sfirst, sizeof(sfirst), "%.*s", (int)n, out);
	r = strstr(sfirst, "r=");
	sp = strstr(sfirst, ",s=");
	ip = strstr(sfirst, ",i=");
	assert_non_null(r);
	assert_non_null(sp);
	assert_non_null(ip);
	assert_memory_equal(r + 2, "clientnonce123", 14);
	snprintf(salt_b64, salt_size, "%.*s", (int)(ip - sp - 3), sp + 3);
	sl = sasl_decode64_to(sp + 3, (size_t)(ip - sp - 3), salt, sizeof(salt));
	assert_true(sl > 0);
	iter = atoi(ip + 3);
	PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, (int)sl, iter, EVP_sha256(),
			  32, salted);
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Client Key", 10,
	     ck, &l);
	EVP_Digest(ck, 32, stored, NULL, EVP_sha256(), NULL);
	snprintf(final, sizeof(final), "c=biws,r=%.*s", (int)(sp - r - 2), r + 2);
	snprintf(am, sizeof(am), "%s,%s,%s", first + 3, sfirst, final);
	HMAC(EVP_sha256(), stored, 32, (unsigned char *)am, strlen(am), sig, &l);
	for (int i = 0; i < 32; i++)
		proof[i] = ck[i] ^ sig[i];
	buf_init(&b, 0);
	buf_printf(&b, "%s,p=", final);
	sasl_encode64(proof, 32, &b);
	a = step(ex, b.data, b.len);
	buf_free(&b);
	if (a == SASL_FAIL)
		return 0;
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Server Key", 10,
	     srvk, &l);
	HMAC(EVP_sha256(), srvk, 32, (unsigned char *)am, strlen(am), ssig, &l);
	buf_init(&b, 0);
	buf_puts(&b, "v=");
	sasl_encode64(ssig, 32, &b);
	out = sasl_exchange_out(ex, &n);
	assert_int_equal(n, b.len);
	assert_memory_equal(out, b.data, n);	/* the server proves itself */
	buf_free(&b);
	(void)sk;
	if (flags & SASL_EX_FINAL_IN_OK)
		return a == SASL_OK ? 1 : -1;
	if (a != SASL_CHALLENGE)
		return -1;
	return step(ex, "", 0) == SASL_OK ? 1 : -1;
}

static void
test_exchange_scram(void **state)
{
	struct sasl_exchange *ex;
	char s1[100], s2[100];
	unsigned flags[] = { 0, SASL_EX_FINAL_IN_OK };

	for (size_t i = 0; i < 2; i++) {
		ex = sasl_exchange_new(SASL_MECH_SCRAM_SHA256, db, "mx", NULL, flags[i]);
		assert_int_equal(scram_client(ex, "scram@example.test",
					      "scram pw", flags[i], s1,
					      sizeof(s1)), 1);
		assert_string_equal(sasl_exchange_user(ex), "scram@example.test");
		sasl_exchange_free(&ex);
		/* {PLAIN} stored: keys derived on the fly */
		ex = sasl_exchange_new(SASL_MECH_SCRAM_SHA256, db, "mx", NULL, flags[i]);
		assert_int_equal(scram_client(ex, "plain@example.test",
					      "plain pw", flags[i], s1,
					      sizeof(s1)), 1);
		sasl_exchange_free(&ex);
	}
	ex = sasl_exchange_new(SASL_MECH_SCRAM_SHA256, db, "mx", NULL, 0);
	assert_int_equal(scram_client(ex, "scram@example.test", "wrong",
				      0, s1, sizeof(s1)), 0);
	assert_non_null(strstr(sasl_exchange_why(ex), "wrong password"));
	sasl_exchange_free(&ex);
	/* Unknown user: a full-looking dialogue, a stable salt, a failure */
	ex = sasl_exchange_new(SASL_MECH_SCRAM_SHA256, db, "mx", NULL, 0);
	assert_int_equal(scram_client(ex, "ghost@example.test", "x", 0, s1,
				      sizeof(s1)), 0);
	assert_non_null(strstr(sasl_exchange_why(ex), "unknown user"));
	sasl_exchange_free(&ex);
	ex = sasl_exchange_new(SASL_MECH_SCRAM_SHA256, db, "mx", NULL, 0);
	assert_int_equal(scram_client(ex, "ghost@example.test", "y", 0, s2,
				      sizeof(s2)), 0);
	assert_string_equal(s1, s2);
	sasl_exchange_free(&ex);
	/* A hash SCRAM cannot use: the same failure at the end */
	ex = sasl_exchange_new(SASL_MECH_SCRAM_SHA256, db, "mx", NULL, 0);
	assert_int_equal(scram_client(ex, "crypt@example.test", "Secret-1", 0,
				      s1, sizeof(s1)), 0);
	assert_non_null(strstr(sasl_exchange_why(ex), "does not allow"));
	sasl_exchange_free(&ex);
	/* Channel binding asked for: refused at once */
	ex = sasl_exchange_new(SASL_MECH_SCRAM_SHA256, db, "mx", NULL, 0);
	assert_int_equal(step(ex, "p=tls-exporter,,n=scram@example.test,r=abc",
			      42), SASL_FAIL);
	sasl_exchange_free(&ex);
	/* A final message with another nonce */
	ex = sasl_exchange_new(SASL_MECH_SCRAM_SHA256, db, "mx", NULL, 0);
	assert_int_equal(step(ex, "n,,n=scram@example.test,r=abc", 29),
			 SASL_CHALLENGE);
	assert_int_equal(step(ex, "c=biws,r=abcdef,p=dHzbZapWIk4jUhN+Ute9ytag9"
			      "zjfMHgsqmmiz7AndVQ=", 62), SASL_FAIL);
	assert_non_null(strstr(sasl_exchange_why(ex), "nonce"));
	sasl_exchange_free(&ex);
}

static void
test_dummy_cost(void **state)
{
	struct errbuf err;
	char *d;

	d = pwscheme_dummy("{ARGON2ID}$argon2id$v=19$m=8192,t=3,p=1$UkBoSc5Fbp+"
			   "wONfnaKVSTA$OwEpYCTKp9ylWr16H9YujIIbYFWhRRxuSgfdek6n0/g",
			   &err);
	assert_non_null(d);
	assert_non_null(strstr(d, "{ARGON2ID}$argon2id$v=19$m=8192,t=3,"));
	free(d);
	d = pwscheme_dummy("{SHA512-CRYPT}$6$rounds=7000$abc$xyz", &err);
	assert_non_null(d);
	assert_non_null(strstr(d, "{SHA512-CRYPT}$6$rounds=7000$abc$"));
	free(d);
	d = pwscheme_dummy("{SCRAM-SHA-256}8192,c2FsdA==,a,b", &err);
	assert_non_null(d);
	assert_memory_equal(d, "{SCRAM-SHA-256}8192,", 20);
	free(d);
	d = pwscheme_dummy(NULL, &err);
	assert_non_null(d);
	assert_memory_equal(d, "{ARGON2ID}$argon2id$", 20);
	free(d);
}

static void
test_sample_is_most_common(void **state)
{
	char p2[100];
	struct errbuf err;
	struct passdb_file *f;
	FILE *fp;
	char *sm;

	snprintf(p2, sizeof(p2), "%s/mixed", dir);
	fp = fopen(p2, "w");
	assert_non_null(fp);
	fputs("a@x:{PLAIN}a\n"
	      "b@x:{SHA512-CRYPT}$6$rounds=9000$s1$h\n"
	      "c@x:{ARGON2ID}$argon2id$v=19$m=8192,t=2,p=1$AAAA$BBBB\n"
	      "d@x:{argon2id}$argon2id$v=19$m=4096,t=2,p=1$AAAA$BBBB\n", fp);
	fclose(fp);
	f = passdb_file_open(p2, &err);
	assert_non_null(f);
	sm = passdb_file_sample(f);
	assert_non_null(sm);
	assert_string_equal(sm, "{ARGON2ID}$argon2id$v=19$m=8192,t=2,p=1$AAAA$BBBB");
	free(sm);
	passdb_file_free(&f);
	unlink(p2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7677_vector),
		cmocka_unit_test(test_scram_parse_errors),
		cmocka_unit_test(test_cram_parse),
		cmocka_unit_test(test_mechs),
		cmocka_unit_test(test_exchange_plain_login),
		cmocka_unit_test(test_exchange_realm),
		cmocka_unit_test(test_exchange_cram),
		cmocka_unit_test(test_exchange_scram),
		cmocka_unit_test(test_dummy_cost),
		cmocka_unit_test(test_sample_is_most_common),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
