/*
 * sasl.c - SASL building blocks: the mechanism table, the offered set
 * (smtpd_sasl_mechanisms and the security options), strict base64
 * (libsodium's decoder, which rejects stray characters and bad padding).
 * Must not: accept a response longer than SASL_RESPONSE_MAX.
 */
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "auth/sasl.h"
#include "core/lib/strlist.h"

static const struct {
	const char    *name;
	enum sasl_mech m;
} mechs[] = {
	{ "PLAIN", SASL_MECH_PLAIN },
	{ "LOGIN", SASL_MECH_LOGIN },
	{ "CRAM-MD5", SASL_MECH_CRAM_MD5 },
	{ "SCRAM-SHA-256", SASL_MECH_SCRAM_SHA256 },
};
#define NMECHS (sizeof(mechs) / sizeof(mechs[0]))

enum sasl_mech
sasl_mech_find(const char *name, size_t len)
{
	for (size_t i = 0; i < NMECHS; i++)
		if (strlen(mechs[i].name) == len &&
		    strncasecmp(mechs[i].name, name, len) == 0)
			return mechs[i].m;
	return SASL_MECH_NONE;
}

const char *
sasl_mech_name(enum sasl_mech m)
{
	for (size_t i = 0; i < NMECHS; i++)
		if (mechs[i].m == m)
			return mechs[i].name;
	return "NONE";
}

int
sasl_mechs_parse(const char *list, unsigned *mask_r, struct errbuf *err)
{
	struct strlist v;
	unsigned mask = 0;
	int rc = 0;

	strlist_init(&v);
	strlist_split(&v, list);
	for (size_t i = 0; i < v.n; i++) {
		enum sasl_mech m = sasl_mech_find(v.v[i], strlen(v.v[i]));

		if (m == SASL_MECH_NONE) {
			errbuf_set(err, "smtpd_sasl_mechanisms: unknown mechanism "
				   "\"%.60s\" (expected plain, login, cram-md5, "
				   "scram-sha-256)", v.v[i]);
			rc = -1;
			break;
		}
		mask |= SASL_MECH_BIT(m);
	}
	strlist_free(&v);
	if (rc == 0)
		*mask_r = mask;
	return rc;
}

int
sasl_mechs_secure(const char *param, const char *options, unsigned *mask,
		  struct errbuf *err)
{
	static const char *const known[] = {
		"noanonymous", "noplaintext", "nodictionary", "noactive",
		"mutual_auth", "forward_secrecy",
	};
	struct strlist opts;
	int rc = 0;

	strlist_init(&opts);
	strlist_split(&opts, options);
	for (size_t i = 0; i < opts.n && rc == 0; i++) {
		size_t k;

		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (strcasecmp(opts.v[i], known[k]) == 0)
				break;
		switch (k) {
		case 1:
			*mask &= ~SASL_MECHS_PLAINTEXT;
			break;
		case 2:		/* every password mechanism is guessable */
			*mask = 0;
			break;
		case 4:
			*mask &= SASL_MECH_BIT(SASL_MECH_SCRAM_SHA256);
			break;
		case sizeof(known) / sizeof(known[0]):
			errbuf_set(err, "%s: unknown option \"%s\" (expected "
				   "noanonymous, noplaintext, nodictionary, "
				   "noactive, mutual_auth, forward_secrecy)",
				   param, opts.v[i]);
			rc = -1;
			break;
		default:
			break;
		}
	}
	strlist_free(&opts);
	return rc;
}

void
sasl_mechs_format(unsigned mask, struct buf *out)
{
	const char *sep = "";

	for (size_t i = 0; i < NMECHS; i++)
		if (mask & SASL_MECH_BIT(mechs[i].m)) {
			buf_printf(out, "%s%s", sep, mechs[i].name);
			sep = " ";
		}
}

long
sasl_decode64_to(const char *in, size_t len, unsigned char *out, size_t size)
{
	size_t n = 0;
	const char *end = NULL;

	if (len == 0 || len % 4 != 0 || len / 4 * 3 > size + 2)
		return -1;
	if (sodium_base642bin(out, size, in, len, NULL, &n, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != in + len)
		return -1;
	return (long)n;
}

int
sasl_decode64(const char *in, size_t len, struct buf *out)
{
	unsigned char tmp[SASL_RESPONSE_MAX + 3];
	size_t n = 0;
	const char *end = NULL;

	buf_reset(out);
	if (len == 1 && in[0] == '=')
		return 0;
	if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof(tmp))
		return -1;
	if (sodium_base642bin(tmp, sizeof(tmp), in, len, NULL, &n, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != in + len || n > SASL_RESPONSE_MAX) {
		sodium_memzero(tmp, sizeof(tmp));
		return -1;
	}
	if (buf_append(out, tmp, n) < 0)
		n = (size_t)-1;
	sodium_memzero(tmp, sizeof(tmp));
	return n == (size_t)-1 ? -1 : 0;
}

void
sasl_encode64(const void *p, size_t len, struct buf *out)
{
	char tmp[sodium_base64_ENCODED_LEN(SASL_RESPONSE_MAX,
					   sodium_base64_VARIANT_ORIGINAL)];

	if (len > SASL_RESPONSE_MAX)
		len = SASL_RESPONSE_MAX;
	sodium_bin2base64(tmp, sizeof(tmp), p, len,
			  sodium_base64_VARIANT_ORIGINAL);
	buf_puts(out, tmp);
}
