/*
 * sasl_exchange.c - the server's SASL state machine for PLAIN, LOGIN,
 * CRAM-MD5 and SCRAM-SHA-256, shared by SMTP AUTH and ManageSieve
 * AUTHENTICATE (see sasl_exchange.h for the calling sequence). Passdb
 * lookups and slow verifications happen in sasl_exchange_work, which the
 * protocol runs on a worker; everything else is cheap and runs on the loop.
 * Must not: do I/O other than through the passdb, log (the protocol logs
 * sasl_exchange_why), reveal whether a user exists (same dialogue, same
 * failure, comparable time), or keep passwords and keys unwiped.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "auth/passdb.h"
#include "auth/pwscheme.h"
#include "auth/sasl_exchange.h"
#include "core/lib/xmalloc.h"

enum ex_state {
	EX_START, EX_LOGIN_PW, EX_CRAM, EX_SCRAM_FINAL, EX_SCRAM_ACK,
	EX_WORKING, EX_DONE,
};
enum ex_work { W_NONE, W_VERIFY, W_CRAM, W_SCRAM_CRED };

#define SCRAM_FAKE_SALT 16

struct sasl_exchange {
	enum sasl_mech    mech;
	struct passdb    *passdb;
	unsigned          flags;
	char             *hostname;
	char             *realm;		/* appended to names without '@' */
	enum ex_state     state;
	enum ex_work      work;
	int               result;	/* work: 1 ok, 0 failed, -1 temporary */
	char             *user;		/* login name as given */
	char             *pw;		/* PLAIN / LOGIN */
	size_t            pwlen;
	struct buf        out;
	struct errbuf     why;
	/* CRAM-MD5 */
	char             *challenge;
	unsigned char     digest[16];
	/* SCRAM-SHA-256 */
	char             *gs2, *first_bare, *server_first, *nonce;
	struct scram_cred cred;
	int               cred_ok;	/* 0: fake credential, always fails */
};

/* Per process: fake salts for names without a SCRAM credential. */
static unsigned char scram_secret[32];
static pthread_once_t scram_secret_once = PTHREAD_ONCE_INIT;

static void
scram_secret_init(void)
{
	randombytes_buf(scram_secret, sizeof(scram_secret));
}

struct sasl_exchange *
sasl_exchange_new(enum sasl_mech mech, struct passdb *passdb,
		  const char *hostname, const char *realm, unsigned flags)
{
	struct sasl_exchange *ex = xcalloc(1, sizeof(*ex));

	pthread_once(&scram_secret_once, scram_secret_init);
	ex->mech = mech;
	ex->passdb = passdb;
	ex->flags = flags;
	ex->hostname = xstrdup(hostname && *hostname ? hostname : "localhost");
	ex->realm = realm && *realm ? xstrdup(realm) : NULL;
	buf_init(&ex->out, 0);
	errbuf_clear(&ex->why);
	return ex;
}

static void
wipe_str(char **p)
{
	if (*p != NULL) {
		sodium_memzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

static void
wipe_pw(struct sasl_exchange *ex)
{
	if (ex->pw != NULL) {
		sodium_memzero(ex->pw, ex->pwlen);
		free(ex->pw);
		ex->pw = NULL;
		ex->pwlen = 0;
	}
}

void
sasl_exchange_free(struct sasl_exchange **exp)
{
	struct sasl_exchange *ex = *exp;

	if (ex == NULL)
		return;
	wipe_pw(ex);
	wipe_str(&ex->user);
	free(ex->hostname);
	free(ex->realm);
	free(ex->challenge);
	free(ex->gs2);
	free(ex->first_bare);
	free(ex->server_first);
	free(ex->nonce);
	if (ex->out.data != NULL)
		sodium_memzero(ex->out.data, ex->out.cap);
	buf_free(&ex->out);
	sodium_memzero(&ex->cred, sizeof(ex->cred));
	free(ex);
	*exp = NULL;
}

static enum sasl_action
fail(struct sasl_exchange *ex, const char *why)
{
	errbuf_set(&ex->why, "%s", why);
	ex->state = EX_DONE;
	wipe_pw(ex);
	buf_reset(&ex->out);
	return SASL_FAIL;
}

static enum sasl_action
challenge(struct sasl_exchange *ex, const char *text)
{
	buf_reset(&ex->out);
	buf_puts(&ex->out, text);
	return SASL_CHALLENGE;
}

static enum sasl_action
need_work(struct sasl_exchange *ex, enum ex_work w)
{
	ex->work = w;
	ex->state = EX_WORKING;
	return SASL_WORK;
}

enum sasl_action
sasl_exchange_start(struct sasl_exchange *ex)
{
	if (ex->state != EX_START)
		return fail(ex, "exchange already started");
	switch (ex->mech) {
	case SASL_MECH_LOGIN:
		return challenge(ex, "Username:");
	case SASL_MECH_CRAM_MD5: {
		uint32_t r = randombytes_random();

		free(ex->challenge);
		ex->challenge = xasprintf("<%u.%lld@%s>", (unsigned)r,
					  (long long)time(NULL), ex->hostname);
		ex->state = EX_CRAM;
		return challenge(ex, ex->challenge);
	}
	case SASL_MECH_PLAIN:
	case SASL_MECH_SCRAM_SHA256:
		return challenge(ex, "");
	default:
		return fail(ex, "unknown mechanism");
	}
}

/*
 * The login name the passdb sees: as given, or NAME@realm when the name
 * has no domain and smtpd_sasl_local_domain names one (so "alice" logs in
 * as alice@example.com; logs and sender login maps see the full name).
 */
static void
set_user(struct sasl_exchange *ex, const char *u, size_t ul)
{
	wipe_str(&ex->user);
	if (ex->realm == NULL || memchr(u, '@', ul) != NULL) {
		ex->user = xstrndup(u, ul);
		return;
	}
	ex->user = xmalloc(ul + 1 + strlen(ex->realm) + 1);
	memcpy(ex->user, u, ul);
	ex->user[ul] = '@';
	strcpy(ex->user + ul + 1, ex->realm);
}

static enum sasl_action
step_first(struct sasl_exchange *ex, const char *msg, size_t len)
{
	const char *why, *u, *pw;
	size_t ul, pwl;

	switch (ex->mech) {
	case SASL_MECH_PLAIN:
		if (sasl_plain_parse(msg, len, &u, &ul, &pw, &pwl, &why) < 0)
			return fail(ex, why);
		set_user(ex, u, ul);
		ex->pw = xmalloc(pwl + 1);
		memcpy(ex->pw, pw, pwl);
		ex->pw[pwl] = '\0';
		ex->pwlen = pwl;
		return need_work(ex, W_VERIFY);
	case SASL_MECH_LOGIN:
		if (len == 0 || memchr(msg, '\0', len) != NULL)
			return fail(ex, "bad user name");
		set_user(ex, msg, len);
		ex->state = EX_LOGIN_PW;
		return challenge(ex, "Password:");
	case SASL_MECH_CRAM_MD5:
		return fail(ex, "CRAM-MD5 takes no initial response");
	case SASL_MECH_SCRAM_SHA256: {
		struct scram_first f;

		if (sasl_scram_parse_first(msg, len, &f, &why) < 0)
			return fail(ex, why);
		if (f.authzid[0] != '\0' && strcasecmp(f.authzid, f.user) != 0)
			return fail(ex, "authorization identity differs from "
				    "the user name");
		set_user(ex, f.user, strlen(f.user));
		ex->gs2 = xstrndup(f.gs2, f.gs2_len);
		ex->first_bare = xstrndup(f.bare, f.bare_len);
		ex->nonce = xstrndup(f.cnonce, f.cnonce_len);
		return need_work(ex, W_SCRAM_CRED);
	}
	default:
		return fail(ex, "unknown mechanism");
	}
}

static enum sasl_action
step_scram_final(struct sasl_exchange *ex, const char *msg, size_t len)
{
	struct scram_final f;
	struct buf cb, am;
	unsigned char sig[SCRAM_KEY_LEN];
	const char *why;
	int ok;

	if (sasl_scram_parse_final(msg, len, &f, &why) < 0)
		return fail(ex, why);
	buf_init(&cb, 0);
	sasl_encode64(ex->gs2, strlen(ex->gs2), &cb);
	ok = f.cbind_len == cb.len && memcmp(f.cbind, cb.data, cb.len) == 0;
	buf_free(&cb);
	if (!ok)
		return fail(ex, "SCRAM channel binding data differs from the "
			    "gs2 header");
	if (f.nonce_len != strlen(ex->nonce) ||
	    memcmp(f.nonce, ex->nonce, f.nonce_len) != 0)
		return fail(ex, "SCRAM nonce mismatch");
	buf_init(&am, 0);
	buf_printf(&am, "%s,%s,", ex->first_bare, ex->server_first);
	buf_append(&am, f.without_proof, f.without_proof_len);
	ok = scram_verify_proof(&ex->cred, am.data, am.len, f.proof, sig);
	buf_free(&am);
	if (!ex->cred_ok) {
		char w[sizeof(ex->why)];

		snprintf(w, sizeof(w), "%s", errbuf_str(&ex->why)[0] ?
			 errbuf_str(&ex->why) : "no SCRAM-SHA-256 credential");
		return fail(ex, w);
	}
	if (!ok) {
		char w[SCRAM_NAME_MAX + 40];

		snprintf(w, sizeof(w), "wrong password for %s", ex->user);
		return fail(ex, w);
	}
	buf_reset(&ex->out);
	buf_puts(&ex->out, "v=");
	sasl_encode64(sig, sizeof(sig), &ex->out);
	sodium_memzero(sig, sizeof(sig));
	if (ex->flags & SASL_EX_FINAL_IN_OK) {
		ex->state = EX_DONE;
		return SASL_OK;
	}
	ex->state = EX_SCRAM_ACK;
	return SASL_CHALLENGE;
}

enum sasl_action
sasl_exchange_step(struct sasl_exchange *ex, const char *msg, size_t len)
{
	const char *why, *u;
	size_t ul;

	switch (ex->state) {
	case EX_START:
		return step_first(ex, msg, len);
	case EX_LOGIN_PW:
		if (len == 0)
			return fail(ex, "empty password");
		ex->pw = xmalloc(len + 1);
		memcpy(ex->pw, msg, len);
		ex->pw[len] = '\0';
		ex->pwlen = len;
		return need_work(ex, W_VERIFY);
	case EX_CRAM:
		if (sasl_cram_parse(msg, len, &u, &ul, ex->digest, &why) < 0)
			return fail(ex, why);
		set_user(ex, u, ul);
		return need_work(ex, W_CRAM);
	case EX_SCRAM_FINAL:
		return step_scram_final(ex, msg, len);
	case EX_SCRAM_ACK:
		if (len != 0)
			return fail(ex, "SCRAM: data after the server's final "
				    "message");
		buf_reset(&ex->out);
		ex->state = EX_DONE;
		return SASL_OK;
	default:
		return fail(ex, "exchange already finished");
	}
}

/* ---- worker side ---- */

static void
work_verify(struct sasl_exchange *ex, const char *stored)
{
	struct errbuf e;

	errbuf_clear(&e);
	switch (pwscheme_verify(stored, ex->pw, ex->pwlen, &e)) {
	case PW_MATCH:
		ex->result = 1;
		break;
	case PW_MISMATCH:
		ex->result = 0;
		errbuf_set(&ex->why, "wrong password for %s", ex->user);
		break;
	default:	/* a broken entry is the operator's to fix: 4xx */
		ex->result = -1;
		errbuf_set(&ex->why, "stored password of %s: %s", ex->user,
			   errbuf_str(&e));
		break;
	}
}

static void
work_cram(struct sasl_exchange *ex, const char *stored)
{
	char scheme[32];
	const char *pw = pwscheme_split(stored, scheme, sizeof(scheme));
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;

	if (strcasecmp(scheme, "PLAIN") != 0 &&
	    strcasecmp(scheme, "CLEARTEXT") != 0) {
		ex->result = 0;
		errbuf_set(&ex->why, "no plaintext password stored for %s "
			   "(CRAM-MD5 needs {PLAIN})", ex->user);
		return;
	}
	if (HMAC(EVP_md5(), pw, (int)strlen(pw),
		 (const unsigned char *)ex->challenge, strlen(ex->challenge),
		 d, &dlen) == NULL || dlen != 16) {
		ex->result = -1;
		errbuf_set(&ex->why, "CRAM-MD5: HMAC-MD5 unavailable");
		return;
	}
	ex->result = sodium_memcmp(d, ex->digest, 16) == 0;
	if (!ex->result)
		errbuf_set(&ex->why, "wrong password for %s", ex->user);
	sodium_memzero(d, sizeof(d));
}

/* A salt that depends only on the name: the same at every attempt. */
static void
scram_name_salt(const char *user, unsigned char *salt, size_t n)
{
	unsigned char h[32];
	unsigned hl = sizeof(h);
	char *lc = xstrdup(user);

	for (char *c = lc; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	HMAC(EVP_sha256(), scram_secret, sizeof(scram_secret),
	     (const unsigned char *)lc, strlen(lc), h, &hl);
	memcpy(salt, h, n);
	free(lc);
}

static void
scram_fake(struct sasl_exchange *ex)
{
	ex->cred.iter = SCRAM_ITER_DEFAULT;
	ex->cred.salt_len = SCRAM_FAKE_SALT;
	scram_name_salt(ex->user, ex->cred.salt, SCRAM_FAKE_SALT);
	randombytes_buf(ex->cred.stored_key, SCRAM_KEY_LEN);
	randombytes_buf(ex->cred.server_key, SCRAM_KEY_LEN);
	ex->cred_ok = 0;
	ex->result = 1;		/* the dialogue goes on, and fails at the end */
}

static void
work_scram(struct sasl_exchange *ex, const char *stored)
{
	char scheme[32];
	const char *data = pwscheme_split(stored, scheme, sizeof(scheme));
	unsigned char salt[SCRAM_FAKE_SALT];
	const char *why;

	if (strcasecmp(scheme, "SCRAM-SHA-256") == 0) {
		if (scram_cred_parse(data, &ex->cred, &why) < 0) {
			ex->result = -1;
			errbuf_set(&ex->why, "stored password of %s: %s",
				   ex->user, why);
			return;
		}
		ex->cred_ok = 1;
		ex->result = 1;
		return;
	}
	if (strcasecmp(scheme, "PLAIN") == 0 ||
	    strcasecmp(scheme, "CLEARTEXT") == 0) {
		scram_name_salt(ex->user, salt, sizeof(salt));
		if (scram_cred_derive(data, strlen(data), salt, sizeof(salt),
				      SCRAM_ITER_DEFAULT, &ex->cred) < 0) {
			ex->result = -1;
			errbuf_set(&ex->why, "SCRAM-SHA-256: key derivation "
				   "failed");
			return;
		}
		ex->cred_ok = 1;
		ex->result = 1;
		return;
	}
	scram_fake(ex);
	errbuf_set(&ex->why, "stored password of %s does not allow "
		   "SCRAM-SHA-256 (needs {SCRAM-SHA-256} or {PLAIN})", ex->user);
}

void
sasl_exchange_work(struct sasl_exchange *ex)
{
	char *stored = NULL;
	struct errbuf e;

	errbuf_clear(&e);
	errbuf_clear(&ex->why);
	if (passdb_binds(ex->passdb)) {
		/* ldap: auth_bind = yes: the directory checks the password;
		 * there is no stored credential for CRAM-MD5 or SCRAM. */
		if (ex->work == W_VERIFY)
			ex->result = passdb_bind_verify(ex->passdb, ex->user,
							ex->pw, ex->pwlen,
							&ex->why);
		else if (ex->work == W_SCRAM_CRED) {
			scram_fake(ex);
			errbuf_set(&ex->why, "the passdb checks passwords by "
				   "LDAP bind: no SCRAM-SHA-256 credential");
		} else {
			ex->result = 0;
			errbuf_set(&ex->why, "the passdb checks passwords by "
				   "LDAP bind: no plaintext for CRAM-MD5");
		}
		wipe_pw(ex);
		return;
	}
	switch (passdb_lookup(ex->passdb, ex->user, &stored, &e)) {
	case PASSDB_FOUND:
		if (ex->work == W_VERIFY)
			work_verify(ex, stored);
		else if (ex->work == W_CRAM)
			work_cram(ex, stored);
		else
			work_scram(ex, stored);
		wipe_str(&stored);
		break;
	case PASSDB_NOTFOUND:
		if (ex->work == W_VERIFY)
			passdb_dummy_verify(ex->passdb, ex->pw, ex->pwlen);
		if (ex->work == W_SCRAM_CRED)
			scram_fake(ex);
		else
			ex->result = 0;
		errbuf_set(&ex->why, "unknown user %s", ex->user);
		break;
	default:
		ex->result = -1;
		errbuf_set(&ex->why, "%s", errbuf_str(&e));
		break;
	}
	wipe_pw(ex);
}

enum sasl_action
sasl_exchange_resume(struct sasl_exchange *ex)
{
	unsigned char rnd[18];
	char snonce[sodium_base64_ENCODED_LEN(sizeof(rnd),
					      sodium_base64_VARIANT_ORIGINAL)];
	struct buf salt;
	char *full;

	if (ex->state != EX_WORKING)
		return fail(ex, "no work pending");
	if (ex->result < 0) {
		ex->state = EX_DONE;
		return SASL_TEMPFAIL;
	}
	if (ex->work != W_SCRAM_CRED) {
		ex->state = EX_DONE;
		buf_reset(&ex->out);
		return ex->result > 0 ? SASL_OK : SASL_FAIL;
	}
	/* server-first-message: r=cnonce+snonce,s=salt,i=iter */
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2base64(snonce, sizeof(snonce), rnd, sizeof(rnd),
			  sodium_base64_VARIANT_ORIGINAL);
	full = xasprintf("%s%s", ex->nonce, snonce);
	free(ex->nonce);
	ex->nonce = full;
	buf_init(&salt, 0);
	sasl_encode64(ex->cred.salt, ex->cred.salt_len, &salt);
	free(ex->server_first);
	ex->server_first = xasprintf("r=%s,s=%s,i=%u", ex->nonce,
				     buf_cstr(&salt), ex->cred.iter);
	buf_free(&salt);
	ex->state = EX_SCRAM_FINAL;
	return challenge(ex, ex->server_first);
}

const char *
sasl_exchange_out(const struct sasl_exchange *ex, size_t *len_r)
{
	*len_r = ex->out.len;
	return ex->out.data ? ex->out.data : "";
}

const char *
sasl_exchange_user(const struct sasl_exchange *ex)
{
	return ex->user ? ex->user : "";
}

const char *
sasl_exchange_login(const struct sasl_exchange *ex)
{
	return ex->user;
}

const char *
sasl_exchange_why(const struct sasl_exchange *ex)
{
	return errbuf_str(&ex->why);
}

enum sasl_mech
sasl_exchange_mech(const struct sasl_exchange *ex)
{
	return ex->mech;
}
