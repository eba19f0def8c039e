/*
 * fuzz_smtpd_cmd.c - libFuzzer target for the SMTP command line parser,
 * the MAIL/RCPT/BDAT/HELO argument parsers and the address parser.
 * Checks, beyond "no crash": every argument stays inside the line, and a
 * parsed address formats to text that parses back to the same key.
 * Must not: keep state between inputs (every allocation is freed).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "core/smtpd_cmd.h"

/* A formatted address must re-parse, with the same key and flags. */
static void
check_roundtrip(const struct addr *a)
{
	struct addr b;
	const char *err, *rest;
	char *key, *fmt, *key2;

	key = addr_key(a);
	fmt = addr_format(a);
	if (a->is_null) {
		if (fmt[0] != '\0' || key[0] != '\0')
			abort();
		free(key);
		free(fmt);
		return;
	}
	if (addr_parse_path(fmt, strlen(fmt), ADDR_P_ALLOW_NODOM, &b, &rest,
			    &err) != 0)
		abort();
	if (*rest != '\0')
		abort();
	key2 = addr_key(&b);
	if (strcmp(key, key2) != 0 || b.utf8 != a->utf8 ||
	    strcmp(a->domain, b.domain) != 0)
		abort();
	/* The key form of a mailbox with a domain parses as a mailbox too
	 * unless its local part needs quoting; formatting is idempotent. */
	char *fmt2 = addr_format(&b);
	if (strcmp(fmt, fmt2) != 0)
		abort();
	if (a->domain[0] && !addr_domain_valid(a->domain))
		abort();
	free(fmt2);
	free(key2);
	addr_free(&b);
	free(key);
	free(fmt);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct smtpd_cmd cmd;
	struct smtpd_mail_args m;
	struct smtpd_rcpt_args r;
	struct smtpd_bdat_args b;
	struct addr a;
	const char *reply, *rest, *err;
	size_t alen;
	unsigned flags;

	if (size > 4096)
		return 0;
	smtpd_cmd_parse(line, size, &cmd, &alen);
	if (cmd.arg < line || cmd.arg + alen > line + size || cmd.name == NULL)
		abort();

	/* The argument parsers, on whatever the line's argument is. */
	for (int strict = 0; strict < 2; strict++) {
		if (smtpd_cmd_mail(cmd.arg, alen, strict, &m, &reply) == 0) {
			check_roundtrip(&m.addr);
			smtpd_mail_args_free(&m);
		} else if (reply == NULL || strlen(reply) < 4)
			abort();
		if (smtpd_cmd_rcpt(cmd.arg, alen, strict, strict, &r, &reply) == 0) {
			if (r.addr.is_null)
				abort();
			check_roundtrip(&r.addr);
			smtpd_rcpt_args_free(&r);
		} else if (reply == NULL || strlen(reply) < 4)
			abort();
	}
	if (smtpd_cmd_bdat(cmd.arg, alen, &b, &reply) == 0 && b.size < 0)
		abort();
	(void)smtpd_cmd_helo(cmd.arg, alen, &reply);

	/* The address parser on the raw input, under every flag set. */
	for (flags = 0; flags < 8; flags++) {
		if (addr_parse_path(line, size, flags, &a, &rest, &err) == 0) {
			if (rest < line || rest > line + size)
				abort();
			check_roundtrip(&a);
			addr_free(&a);
		} else if (err == NULL)
			abort();
	}
	/* And as a map value (NUL-terminated copy). */
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	if (addr_parse_mailbox(s, &a, &err) == 0) {
		check_roundtrip(&a);
		addr_free(&a);
	}
	(void)addr_domain_valid(s);
	free(s);
	return 0;
}
