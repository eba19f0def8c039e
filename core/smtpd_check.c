/*
 * smtpd_check.c - compiles and evaluates smtpd_*_restrictions lists.
 * Vocabulary so far: permit, reject, defer, permit_mynetworks,
 * permit_sasl_authenticated, reject_unauth_destination,
 * defer_unauth_destination, reject_non_fqdn_recipient,
 * reject_unlisted_recipient (the recipient lookup itself is done by the
 * session: here it only forces the check even without smtpd_delay_reject).
 * Replies follow Postfix's codes (relay 554 5.7.1 / 454 4.7.1).
 * Must not: accept an unknown restriction name silently.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/smtpd_check.h"

enum check_op {
	OP_PERMIT, OP_REJECT, OP_DEFER, OP_PERMIT_MYNETWORKS,
	OP_PERMIT_SASL, OP_REJECT_UNAUTH_DEST, OP_DEFER_UNAUTH_DEST,
	OP_REJECT_NON_FQDN_RCPT, OP_REJECT_UNLISTED_RCPT,
};

static const struct {
	const char *name;
	enum check_op op;
} check_names[] = {
	{ "permit", OP_PERMIT },
	{ "reject", OP_REJECT },
	{ "defer", OP_DEFER },
	{ "permit_mynetworks", OP_PERMIT_MYNETWORKS },
	{ "permit_sasl_authenticated", OP_PERMIT_SASL },
	{ "reject_unauth_destination", OP_REJECT_UNAUTH_DEST },
	{ "defer_unauth_destination", OP_DEFER_UNAUTH_DEST },
	{ "reject_non_fqdn_recipient", OP_REJECT_NON_FQDN_RCPT },
	{ "reject_unlisted_recipient", OP_REJECT_UNLISTED_RCPT },
};
#define NCHECK (sizeof(check_names) / sizeof(check_names[0]))

/* Postfix restriction names facteur does not implement yet: known, so a
 * typo gets a useful suggestion, and refused, never silently skipped. */
static const char *const later_names[] = {
	"defer_if_permit", "defer_if_reject", "warn_if_reject",
	"reject_unauth_pipelining", "sleep", "reject_invalid_helo_hostname",
	"reject_invalid_hostname", "reject_non_fqdn_helo_hostname",
	"reject_non_fqdn_hostname", "reject_unknown_helo_hostname",
	"reject_unknown_hostname", "reject_non_fqdn_sender",
	"reject_unknown_sender_domain", "reject_unknown_recipient_domain",
	"reject_unlisted_sender", "reject_unknown_client_hostname",
	"reject_unknown_client", "reject_unknown_reverse_client_hostname",
	"reject_rbl_client", "reject_rhsbl_client", "reject_rhsbl_sender",
	"reject_rhsbl_helo", "reject_rhsbl_reverse_client",
	"reject_rhsbl_recipient", "reject_rbl", "check_client_access",
	"check_reverse_client_hostname_access", "check_helo_access",
	"check_sender_access", "check_recipient_access",
	"check_policy_service", "check_sender_mx_access",
	"check_sender_ns_access", "check_recipient_mx_access",
	"check_helo_mx_access", "check_ccert_access", "check_sasl_access",
	"check_client_a_access", "check_client_mx_access",
	"check_client_ns_access", "reject_sender_login_mismatch",
	"reject_authenticated_sender_login_mismatch",
	"reject_known_sender_login_mismatch",
	"reject_unauthenticated_sender_login_mismatch",
	"reject_multi_recipient_bounce", "reject_plaintext_session",
	"reject_unverified_sender", "reject_unverified_recipient",
	"permit_tls_clientcerts", "permit_tls_all_clientcerts",
	"permit_auth_destination", "permit_mx_backup", "permit_inet_interfaces",
	"reject_unknown_forward_client_hostname", "permit_dnswl_client",
	"permit_rhswl_client", "reject_unauth_destination_mx",
};
#define NLATER (sizeof(later_names) / sizeof(later_names[0]))

struct smtpd_restrictions {
	enum check_op *ops;
	size_t n;
};

/* Levenshtein distance, for "did you mean" hints on typos. */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, (lb + 1) * sizeof(size_t));
	}
	return prev[lb];
}

struct smtpd_restrictions *
smtpd_check_compile(const char *param, const char *value, struct errbuf *err)
{
	struct smtpd_restrictions *r = xcalloc(1, sizeof(*r));
	struct strlist items;

	strlist_init(&items);
	if (strlist_split(&items, value) < 0) {
		errbuf_set(err, "%s: unbalanced braces in \"%s\"", param, value);
		goto fail;
	}
	r->ops = xcalloc(items.n ? items.n : 1, sizeof(*r->ops));
	for (size_t i = 0; i < items.n; i++) {
		size_t k, bestd = 99;

		for (k = 0; k < NCHECK; k++)
			if (strcasecmp(items.v[i], check_names[k].name) == 0)
				break;
		if (k < NCHECK) {
			r->ops[r->n++] = check_names[k].op;
			continue;
		}
		for (k = 0; k < NLATER; k++) {
			if (strcasecmp(items.v[i], later_names[k]) == 0) {
				errbuf_set(err, "%s: restriction \"%s\" is not "
					   "supported by this version of facteur",
					   param, items.v[i]);
				goto fail;
			}
		}
		{
			const char *bestname = NULL;

			for (k = 0; k < NCHECK + NLATER; k++) {
				const char *nm = k < NCHECK ? check_names[k].name
							    : later_names[k - NCHECK];
				size_t d = edit_distance(items.v[i], nm);

				if (d < bestd) {
					bestd = d;
					bestname = nm;
				}
			}
			if (bestname != NULL && bestd <= 4)
				errbuf_set(err, "%s: unknown restriction \"%s\" "
					   "(did you mean \"%s\"?)", param,
					   items.v[i], bestname);
			else
				errbuf_set(err, "%s: unknown restriction \"%s\"",
					   param, items.v[i]);
		}
		goto fail;
	}
	strlist_free(&items);
	return r;
fail:
	strlist_free(&items);
	smtpd_check_free(&r);
	return NULL;
}

void
smtpd_check_free(struct smtpd_restrictions **rp)
{
	if (*rp == NULL)
		return;
	free((*rp)->ops);
	free(*rp);
	*rp = NULL;
}

bool
smtpd_check_empty(const struct smtpd_restrictions *r)
{
	return r == NULL || r->n == 0;
}

static bool
rcpt_is_local_dest(const struct smtpd_check_facts *f, enum smtpd_check_result *tf,
		   struct buf *reply)
{
	struct errbuf err;
	enum resolve_class cls;

	errbuf_clear(&err);
	cls = resolve_domain_class(f->resolve, f->rcpt->domain, &err);
	if (err.msg[0] != '\0') {
		buf_reset(reply);
		buf_printf(reply, "451 4.3.0 %s: Temporary lookup failure",
			   f->rcpt_text);
		*tf = SMTPD_CHECK_DEFER;
		return false;
	}
	return cls != RESOLVE_CLASS_DEFAULT;
}

enum smtpd_check_result
smtpd_check_eval(const struct smtpd_restrictions *r,
		 const struct smtpd_check_facts *f, struct buf *reply)
{
	const char *what = f->rcpt ? "Recipient address" : "Client host";
	char client[600];
	const char *obj;

	/* Postfix names the object in angle brackets: <rcpt> or <name[addr]>. */
	if (f->rcpt != NULL) {
		obj = f->rcpt_text;
	} else {
		snprintf(client, sizeof(client), "<%s[%s]>",
			 f->client_name ? f->client_name : "unknown",
			 f->client_addr ? f->client_addr : "");
		obj = client;
	}

	if (r == NULL)
		return SMTPD_CHECK_DUNNO;
	for (size_t i = 0; i < r->n; i++) {
		enum smtpd_check_result tf = SMTPD_CHECK_DUNNO;

		switch (r->ops[i]) {
		case OP_PERMIT:
			return SMTPD_CHECK_PERMIT;
		case OP_REJECT:
			buf_reset(reply);
			buf_printf(reply, "554 5.7.1 %s: %s rejected: Access denied",
				   obj, what);
			return SMTPD_CHECK_REJECT;
		case OP_DEFER:
			buf_reset(reply);
			buf_printf(reply, "450 4.7.1 %s: %s rejected: Try again later",
				   obj, what);
			return SMTPD_CHECK_DEFER;
		case OP_PERMIT_MYNETWORKS:
			if (f->in_mynetworks)
				return SMTPD_CHECK_PERMIT;
			break;
		case OP_PERMIT_SASL:
			if (f->sasl_authenticated)
				return SMTPD_CHECK_PERMIT;
			break;
		case OP_REJECT_UNAUTH_DEST:
		case OP_DEFER_UNAUTH_DEST:
			if (f->rcpt == NULL)
				break;
			if (rcpt_is_local_dest(f, &tf, reply))
				break;
			if (tf != SMTPD_CHECK_DUNNO)
				return tf;
			buf_reset(reply);
			if (r->ops[i] == OP_REJECT_UNAUTH_DEST) {
				buf_printf(reply, "554 5.7.1 %s: Relay access denied",
					   f->rcpt_text);
				return SMTPD_CHECK_REJECT;
			}
			buf_printf(reply, "454 4.7.1 %s: Relay access denied",
				   f->rcpt_text);
			return SMTPD_CHECK_DEFER;
		case OP_REJECT_NON_FQDN_RCPT:
			if (f->rcpt == NULL || f->rcpt->is_null)
				break;
			if (f->rcpt->domain[0] == '\0' ||
			    (f->rcpt->domain[0] != '[' &&
			     strchr(f->rcpt->domain, '.') == NULL)) {
				buf_reset(reply);
				buf_printf(reply, "504 5.5.2 %s: Recipient address "
					   "rejected: need fully-qualified address",
					   f->rcpt_text);
				return SMTPD_CHECK_REJECT;
			}
			break;
		case OP_REJECT_UNLISTED_RCPT:
			break;
		}
	}
	return SMTPD_CHECK_DUNNO;
}

static struct smtpd_restrictions *
compile_param(const struct config *c, const char *param, struct errbuf *err,
	      int *failed)
{
	struct smtpd_restrictions *r;
	const char *value, *file;
	char reason[sizeof(err->msg)];
	int line;

	if (*failed)
		return NULL;
	value = config_get(c, param);
	r = smtpd_check_compile(param, value ? value : "", err);
	if (r == NULL) {
		snprintf(reason, sizeof(reason), "%s", err->msg);
		if (config_where(c, param, &file, &line))
			errbuf_set(err, "%s, line %d: %s", file, line, reason);
		*failed = 1;
	}
	return r;
}

int
smtpd_check_lists_compile(struct smtpd_check_lists *l, const struct config *c,
			  struct errbuf *err)
{
	int failed = 0;

	memset(l, 0, sizeof(*l));
	l->client = compile_param(c, "smtpd_client_restrictions", err, &failed);
	l->helo = compile_param(c, "smtpd_helo_restrictions", err, &failed);
	l->sender = compile_param(c, "smtpd_sender_restrictions", err, &failed);
	l->relay = compile_param(c, "smtpd_relay_restrictions", err, &failed);
	l->rcpt = compile_param(c, "smtpd_recipient_restrictions", err, &failed);
	if (!failed && smtpd_check_empty(l->relay) && smtpd_check_empty(l->rcpt)) {
		errbuf_set(err, "smtpd_relay_restrictions and "
			   "smtpd_recipient_restrictions are both empty: at least "
			   "one must end with reject_unauth_destination or "
			   "defer_unauth_destination (this would be an open relay)");
		failed = 1;
	}
	if (failed) {
		smtpd_check_lists_free(l);
		return -1;
	}
	return 0;
}

void
smtpd_check_lists_free(struct smtpd_check_lists *l)
{
	smtpd_check_free(&l->client);
	smtpd_check_free(&l->helo);
	smtpd_check_free(&l->sender);
	smtpd_check_free(&l->relay);
	smtpd_check_free(&l->rcpt);
}
