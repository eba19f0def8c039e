/*
 * smtpd_check.c - compiles and evaluates smtpd_*_restrictions lists with
 * Postfix's semantics: each list stops at its first decision, PERMIT moves
 * on to the next list, defer_if_permit / defer_if_reject / warn_if_reject
 * change later outcomes, restriction classes and access-map values may
 * name further restrictions. Access maps (check_*_access) answer with
 * access(5) actions; check_policy_service asks a policy server. Replies
 * and DSN codes follow Postfix's smtpd_check.c.
 * Must not: accept an unknown restriction name silently, answer 5xx for a
 * lookup that could not be done, or talk to the client (it returns a reply).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "backends/addr_find.h"
#include "backends/table.h"
#include "core/greylist.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/netlist.h"
#include "core/policy.h"
#include "core/policy_dns.h"
#include "core/receive_override.h"
#include "core/smtpd_ccert.h"
#include "core/smtpd_check.h"
#include "core/smtpd_ifaddrs.h"
#include "core/smtpd_knobs.h"
#include "core/verify.h"

#define NAME_CLIENT	"Client host"
#define NAME_CCERT	"Client certificate"	/* check_ccert_access */
#define NAME_REV_CLIENT	"Unverified Client host"
#define NAME_HELO	"Helo command"
#define NAME_SENDER	"Sender address"
#define NAME_RCPT	"Recipient address"
#define NAME_DATA	"Data command"
#define NAME_EOD	"End-of-data"

#define RECURSION_MAX	100
#define REPLY_MAX	510

enum check_op {
	OP_PERMIT, OP_REJECT, OP_DEFER, OP_PERMIT_MYNETWORKS,
	OP_PERMIT_SASL, OP_REJECT_UNAUTH_DEST, OP_DEFER_UNAUTH_DEST,
	OP_REJECT_NON_FQDN_RCPT, OP_REJECT_UNLISTED_RCPT,
	OP_DEFER_IF_PERMIT, OP_DEFER_IF_REJECT, OP_WARN_IF_REJECT, OP_SLEEP,
	OP_REJECT_INVALID_HELO, OP_REJECT_NON_FQDN_HELO,
	OP_REJECT_NON_FQDN_SENDER, OP_REJECT_UNLISTED_SENDER,
	OP_CHECK_CLIENT, OP_CHECK_REV_CLIENT, OP_CHECK_HELO, OP_CHECK_SENDER,
	OP_CHECK_RCPT, OP_POLICY, OP_CLASS,
	OP_TLS_CLIENTCERTS, OP_TLS_ALL_CLIENTCERTS, OP_CHECK_CCERT,
	OP_UNKNOWN_SENDER_DOMAIN, OP_UNKNOWN_RCPT_DOMAIN, OP_UNKNOWN_HELO,
	OP_UNKNOWN_CLIENT, OP_UNKNOWN_REV_CLIENT, OP_RBL_CLIENT,
	OP_RHSBL_CLIENT, OP_RHSBL_REV_CLIENT, OP_RHSBL_SENDER, OP_RHSBL_HELO,
	OP_RHSBL_RCPT, OP_UNAUTH_PIPELINING,
	OP_SENDER_LOGIN, OP_AUTH_SENDER_LOGIN, OP_KNOWN_SENDER_LOGIN,
	OP_UNAUTH_SENDER_LOGIN, OP_GREYLIST,
	/* check_*_{mx,ns,a}_access (check_server) */
	OP_SRV_SENDER_MX, OP_SRV_SENDER_NS, OP_SRV_SENDER_A,
	OP_SRV_RCPT_MX, OP_SRV_RCPT_NS, OP_SRV_RCPT_A,
	OP_SRV_HELO_MX, OP_SRV_HELO_NS, OP_SRV_HELO_A,
	OP_SRV_CLIENT_MX, OP_SRV_CLIENT_NS, OP_SRV_CLIENT_A,
	OP_SRV_REV_MX, OP_SRV_REV_NS, OP_SRV_REV_A,
	OP_CHECK_SASL, OP_PERMIT_AUTH_DEST, OP_PERMIT_MX_BACKUP,
	OP_MULTI_RCPT_BOUNCE, OP_PLAINTEXT, OP_DNSWL_CLIENT, OP_RHSWL_CLIENT,
	OP_PERMIT_INET_IF, OP_MAPS_RBL,
	OP_VERIFY_SENDER, OP_VERIFY_RCPT,	/* core/verify.c */
};

/* Argument a restriction takes from the next list item. */
enum { ARG_NONE, ARG_MAP, ARG_NUM, ARG_POLICY, ARG_ZONE };

static const struct {
	const char *name;
	enum check_op op;
	int arg;
} check_names[] = {
	{ "permit", OP_PERMIT, ARG_NONE },
	{ "reject", OP_REJECT, ARG_NONE },
	{ "defer", OP_DEFER, ARG_NONE },
	{ "permit_mynetworks", OP_PERMIT_MYNETWORKS, ARG_NONE },
	{ "permit_sasl_authenticated", OP_PERMIT_SASL, ARG_NONE },
	{ "reject_unauth_destination", OP_REJECT_UNAUTH_DEST, ARG_NONE },
	{ "defer_unauth_destination", OP_DEFER_UNAUTH_DEST, ARG_NONE },
	{ "reject_non_fqdn_recipient", OP_REJECT_NON_FQDN_RCPT, ARG_NONE },
	{ "reject_unlisted_recipient", OP_REJECT_UNLISTED_RCPT, ARG_NONE },
	{ "check_recipient_maps", OP_REJECT_UNLISTED_RCPT, ARG_NONE },
	{ "defer_if_permit", OP_DEFER_IF_PERMIT, ARG_NONE },
	{ "defer_if_reject", OP_DEFER_IF_REJECT, ARG_NONE },
	{ "warn_if_reject", OP_WARN_IF_REJECT, ARG_NONE },
	{ "sleep", OP_SLEEP, ARG_NUM },
	{ "reject_invalid_helo_hostname", OP_REJECT_INVALID_HELO, ARG_NONE },
	{ "reject_invalid_hostname", OP_REJECT_INVALID_HELO, ARG_NONE },
	{ "reject_non_fqdn_helo_hostname", OP_REJECT_NON_FQDN_HELO, ARG_NONE },
	{ "reject_non_fqdn_hostname", OP_REJECT_NON_FQDN_HELO, ARG_NONE },
	{ "reject_non_fqdn_sender", OP_REJECT_NON_FQDN_SENDER, ARG_NONE },
	{ "reject_unlisted_sender", OP_REJECT_UNLISTED_SENDER, ARG_NONE },
	{ "check_client_access", OP_CHECK_CLIENT, ARG_MAP },
	{ "check_reverse_client_hostname_access", OP_CHECK_REV_CLIENT, ARG_MAP },
	{ "check_helo_access", OP_CHECK_HELO, ARG_MAP },
	{ "check_sender_access", OP_CHECK_SENDER, ARG_MAP },
	{ "check_recipient_access", OP_CHECK_RCPT, ARG_MAP },
	/* TLS client certificates (core/smtpd_ccert.h) */
	{ "permit_tls_clientcerts", OP_TLS_CLIENTCERTS, ARG_NONE },
	{ "permit_tls_all_clientcerts", OP_TLS_ALL_CLIENTCERTS, ARG_NONE },
	{ "check_ccert_access", OP_CHECK_CCERT, ARG_MAP },
	{ "check_policy_service", OP_POLICY, ARG_POLICY },
	{ "reject_unknown_sender_domain", OP_UNKNOWN_SENDER_DOMAIN, ARG_NONE },
	{ "reject_unknown_recipient_domain", OP_UNKNOWN_RCPT_DOMAIN, ARG_NONE },
	{ "reject_unknown_helo_hostname", OP_UNKNOWN_HELO, ARG_NONE },
	{ "reject_unknown_hostname", OP_UNKNOWN_HELO, ARG_NONE },
	{ "reject_unknown_client_hostname", OP_UNKNOWN_CLIENT, ARG_NONE },
	{ "reject_unknown_client", OP_UNKNOWN_CLIENT, ARG_NONE },
	{ "reject_unknown_reverse_client_hostname", OP_UNKNOWN_REV_CLIENT,
	  ARG_NONE },
	{ "reject_rbl_client", OP_RBL_CLIENT, ARG_ZONE },
	{ "reject_rhsbl_client", OP_RHSBL_CLIENT, ARG_ZONE },
	{ "reject_rhsbl_reverse_client", OP_RHSBL_REV_CLIENT, ARG_ZONE },
	{ "reject_rhsbl_sender", OP_RHSBL_SENDER, ARG_ZONE },
	{ "reject_rhsbl_helo", OP_RHSBL_HELO, ARG_ZONE },
	{ "reject_rhsbl_recipient", OP_RHSBL_RCPT, ARG_ZONE },
	{ "reject_unauth_pipelining", OP_UNAUTH_PIPELINING, ARG_NONE },
	{ "reject_sender_login_mismatch", OP_SENDER_LOGIN, ARG_NONE },
	{ "reject_authenticated_sender_login_mismatch", OP_AUTH_SENDER_LOGIN,
	  ARG_NONE },
	{ "reject_known_sender_login_mismatch", OP_KNOWN_SENDER_LOGIN, ARG_NONE },
	{ "reject_unauthenticated_sender_login_mismatch", OP_UNAUTH_SENDER_LOGIN,
	  ARG_NONE },
	{ "check_greylist", OP_GREYLIST, ARG_NONE },	/* core/greylist.c */
	{ "check_sender_mx_access", OP_SRV_SENDER_MX, ARG_MAP },
	{ "check_sender_ns_access", OP_SRV_SENDER_NS, ARG_MAP },
	{ "check_sender_a_access", OP_SRV_SENDER_A, ARG_MAP },
	{ "check_recipient_mx_access", OP_SRV_RCPT_MX, ARG_MAP },
	{ "check_recipient_ns_access", OP_SRV_RCPT_NS, ARG_MAP },
	{ "check_recipient_a_access", OP_SRV_RCPT_A, ARG_MAP },
	{ "check_helo_mx_access", OP_SRV_HELO_MX, ARG_MAP },
	{ "check_helo_ns_access", OP_SRV_HELO_NS, ARG_MAP },
	{ "check_helo_a_access", OP_SRV_HELO_A, ARG_MAP },
	{ "check_client_mx_access", OP_SRV_CLIENT_MX, ARG_MAP },
	{ "check_client_ns_access", OP_SRV_CLIENT_NS, ARG_MAP },
	{ "check_client_a_access", OP_SRV_CLIENT_A, ARG_MAP },
	{ "check_reverse_client_mx_access", OP_SRV_REV_MX, ARG_MAP },
	{ "check_reverse_client_ns_access", OP_SRV_REV_NS, ARG_MAP },
	{ "check_reverse_client_a_access", OP_SRV_REV_A, ARG_MAP },
	{ "check_sasl_access", OP_CHECK_SASL, ARG_MAP },
	{ "permit_auth_destination", OP_PERMIT_AUTH_DEST, ARG_NONE },
	{ "permit_mx_backup", OP_PERMIT_MX_BACKUP, ARG_NONE },
	{ "reject_multi_recipient_bounce", OP_MULTI_RCPT_BOUNCE, ARG_NONE },
	{ "reject_plaintext_session", OP_PLAINTEXT, ARG_NONE },
	{ "permit_dnswl_client", OP_DNSWL_CLIENT, ARG_ZONE },
	{ "permit_rhswl_client", OP_RHSWL_CLIENT, ARG_ZONE },
	{ "permit_inet_interfaces", OP_PERMIT_INET_IF, ARG_NONE },
	{ "reject_rbl", OP_RBL_CLIENT, ARG_ZONE },	/* obsolete name */
	{ "reject_maps_rbl", OP_MAPS_RBL, ARG_NONE },	/* maps_rbl_domains */
	{ "reject_unverified_sender", OP_VERIFY_SENDER, ARG_NONE },
	{ "reject_unverified_recipient", OP_VERIFY_RCPT, ARG_NONE },
};
#define NCHECK (sizeof(check_names) / sizeof(check_names[0]))

/* Postfix restriction names facteur does not implement yet: known, so a
 * typo gets a useful suggestion, and refused, never silently skipped. */
static const char *const later_names[] = {
	"check_etrn_access",
	"reject_unknown_forward_client_hostname",
	"reject_unauth_destination_mx",
	"check_relay_domains", "permit_naked_ip_address",
};
#define NLATER (sizeof(later_names) / sizeof(later_names[0]))

/* Restrictions Postfix 3.9 removed because they let anyone relay
 * (check_relay_domains trusts client host names, permit_naked_ip_address
 * any client that says HELO 1.2.3.4): refused, with what to use. */
static const struct {
	const char *name, *instead;
} removed_names[] = {
	{ "check_relay_domains", "reject_unauth_destination" },
	{ "permit_naked_ip_address",
	  "permit_mynetworks or permit_sasl_authenticated" },
};

struct item {
	enum check_op      op;
	char              *arg;		/* class name, map or policy spec */
	long               num;		/* sleep seconds */
	struct table      *table;	/* check_*_access */
	struct policy_svc *policy;
};

struct smtpd_restrictions {
	struct item *v;
	size_t       n;
	bool         blocking;
	/* blocking only through table lookups (check_*_access, sender login
	 * maps): may be tried on the loop in table_nonblock mode */
	bool         table_blocking;
};

struct check_class {
	char                      *name;
	struct smtpd_restrictions *list;
};

struct smtpd_check_conf {
	struct check_class *classes;
	size_t              nclasses;
	int   reject_code, defer_code, map_reject_code, map_defer_code;
	int   relay_code, non_fqdn_code, bad_name_code, unlisted_code;
	/* unknown_{local_recipient,virtual_alias,relay_recipient}_reject_code
	 * (unlisted_code is unknown_virtual_mailbox_reject_code) */
	int   unk_local_code, unk_alias_code, unk_relay_code;
	bool  reject_unl_rcpt, reject_unl_sender;	/* smtpd_reject_unlisted_* */
	bool  no_unknown_rcpt;	/* receive_override_options */
	bool  hide_unk_table;	/* show_user_unknown_table_name = no */
	bool  parent_matches;		/* parent_domain_matches_subdomains */
	char *null_key, *delim;
	long  policy_timeout, policy_retry_delay;
	int   policy_tries;
	long  policy_max_idle, policy_max_ttl, policy_request_limit;
	char *policy_default_action;
	/* DNS-based restrictions */
	int   unk_addr_code, unk_client_code, unk_name_code, rbl_code;
	bool  unk_addr_defer, unk_name_defer;	/* tempfail action "defer" */
	struct policy_dns *dns;			/* NULL: system resolver */
	struct table      *rbl_reply_maps;
	char              *def_rbl_reply;	/* NULL: Postfix's default */
	/* *_sender_login_mismatch */
	struct table_list *sender_login_maps;	/* NULL: not set */
	bool               sasl_enable;		/* smtpd_sasl_auth_enable */
	struct greylist   *greylist;		/* check_greylist */
	struct verify_smtpd verify;		/* reject_unverified_* */
	struct table_list *relay_clientcerts;	/* permit_tls_clientcerts */
	bool               ccert_blocking;	/* relay_clientcerts may block */
	bool               delay_reject;	/* smtpd_delay_reject */
	char              *queue_dir;	/* unix:private/x is relative to it */
	int                mul_rcpt_code;	/* multi_recipient_bounce_reject_code */
	int                plaintext_code;	/* plaintext_reject_code */
	struct strlist     ifaddrs;	/* inet_interfaces + proxy_interfaces */
	struct netlist    *mx_backup_nets;	/* permit_mx_backup_networks */
	struct strlist     maps_rbl;	/* maps_rbl_domains */
};

/* ---- actions ---- */

void
smtpd_check_actions_init(struct smtpd_check_actions *a)
{
	memset(a, 0, sizeof(*a));
	strlist_init(&a->prepend);
}

void
smtpd_check_actions_free(struct smtpd_check_actions *a)
{
	free(a->discard_why);
	free(a->hold_why);
	free(a->redirect);
	strlist_free(&a->prepend);
	smtpd_check_actions_init(a);
}

void
smtpd_check_actions_merge(struct smtpd_check_actions *dst,
			  struct smtpd_check_actions *src)
{
	if (src->discard && !dst->discard) {
		dst->discard = true;
		dst->discard_why = src->discard_why;
		src->discard_why = NULL;
	}
	if (src->hold && !dst->hold) {
		dst->hold = true;
		dst->hold_why = src->hold_why;
		src->hold_why = NULL;
	}
	if (src->redirect != NULL) {
		free(dst->redirect);
		dst->redirect = src->redirect;
		src->redirect = NULL;
	}
	for (size_t i = 0; i < src->prepend.n; i++)
		strlist_add(&dst->prepend, src->prepend.v[i]);
	smtpd_check_actions_free(src);
}

/* ---- compiling ---- */

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

static void
unknown_name(const char *param, const char *name, struct errbuf *err)
{
	const char *bestname = NULL;
	size_t bestd = 99;

	for (size_t k = 0; k < NCHECK + NLATER; k++) {
		const char *nm = k < NCHECK ? check_names[k].name
					    : later_names[k - NCHECK];
		size_t d = edit_distance(name, nm);

		if (d < bestd) {
			bestd = d;
			bestname = nm;
		}
	}
	if (bestname != NULL && bestd <= 4)
		errbuf_set(err, "%s: unknown restriction \"%s\" (did you mean "
			   "\"%s\"?)", param, name, bestname);
	else
		errbuf_set(err, "%s: unknown restriction \"%s\"", param, name);
}

struct compile_opts {
	const struct strlist        *classes;	/* known class names */
	const struct smtpd_check_conf *conf;	/* policy settings */
	bool                         runtime;	/* from an access map value */
};

static struct smtpd_restrictions *
compile_list(const char *param, const char *value,
	     const struct compile_opts *o, struct errbuf *err)
{
	struct smtpd_restrictions *r = xcalloc(1, sizeof(*r));
	struct strlist items;

	strlist_init(&items);
	if (strlist_split(&items, value) < 0) {
		errbuf_set(err, "%s: unbalanced braces in \"%s\"", param, value);
		goto fail;
	}
	r->v = xcalloc(items.n ? items.n : 1, sizeof(*r->v));
	for (size_t i = 0; i < items.n; i++) {
		const char *name = items.v[i];
		struct item *it = &r->v[r->n];
		size_t k;

		for (k = 0; k < NCHECK; k++)
			if (strcasecmp(name, check_names[k].name) == 0)
				break;
		if (k == NCHECK) {
			if (o->classes && strlist_contains(o->classes, name)) {
				it->op = OP_CLASS;
				it->arg = xstrdup(name);
				r->n++;
				continue;
			}
			if (strchr(name, ':') != NULL && !o->runtime) {
				errbuf_set(err, "%s: \"%s\": a lookup table must "
					   "follow one of check_client_access, "
					   "check_reverse_client_hostname_access, "
					   "check_helo_access, check_sender_access, "
					   "check_recipient_access", param, name);
				goto fail;
			}
			for (k = 0; k < sizeof(removed_names) /
				    sizeof(removed_names[0]); k++) {
				if (strcasecmp(name, removed_names[k].name) == 0) {
					errbuf_set(err, "%s: restriction \"%s\" was "
						   "removed (as in Postfix 3.9): it "
						   "can make an open relay; use %s",
						   param, name,
						   removed_names[k].instead);
					goto fail;
				}
			}
			for (k = 0; k < NLATER; k++) {
				if (strcasecmp(name, later_names[k]) == 0) {
					errbuf_set(err, "%s: restriction \"%s\" is "
						   "not supported by this version "
						   "of facteur", param, name);
					goto fail;
				}
			}
			unknown_name(param, name, err);
			goto fail;
		}
		it->op = check_names[k].op;
		if (check_names[k].arg == ARG_NONE) {
			switch (it->op) {
			case OP_UNKNOWN_CLIENT:
			case OP_UNKNOWN_REV_CLIENT:
				/* the session's names (looked up at
				 * connect): no DNS here */
				break;
			case OP_UNKNOWN_SENDER_DOMAIN:
			case OP_UNKNOWN_RCPT_DOMAIN:
			case OP_UNKNOWN_HELO:
				/* DNS: on a worker. An access map value is
				 * evaluated wherever its list runs. */
				if (o->runtime) {
					errbuf_set(err, "%s: \"%s\": do not name "
						   "DNS-based restrictions inside "
						   "access map values; define a "
						   "restriction class", param,
						   name);
					goto fail;
				}
				r->blocking = true;
				break;
			case OP_SENDER_LOGIN:
			case OP_AUTH_SENDER_LOGIN:
			case OP_KNOWN_SENDER_LOGIN:
			case OP_UNAUTH_SENDER_LOGIN:
				if (o->conf == NULL || o->conf->sender_login_maps
				    == NULL || !table_list_blocking(
						o->conf->sender_login_maps))
					break;
				/* a blocking map: on a worker, as for DNS */
				if (o->runtime) {
					errbuf_set(err, "%s: \"%s\": do not name "
						   "restrictions that use "
						   "smtpd_sender_login_maps inside "
						   "access map values; define a "
						   "restriction class", param, name);
					goto fail;
				}
				r->table_blocking = true;
				break;
			case OP_TLS_CLIENTCERTS:	/* relay_clientcerts */
				if (o->conf != NULL && o->conf->ccert_blocking)
					r->table_blocking = true;
				break;
			case OP_GREYLIST:	/* store writes: on a worker */
			case OP_VERIFY_SENDER:	/* waits for a probe: */
			case OP_VERIFY_RCPT:	/* on a worker */
				r->blocking = true;
				break;
			case OP_PERMIT_MX_BACKUP:
			case OP_MAPS_RBL:
				if (o->runtime) {
					errbuf_set(err, "%s: \"%s\": do not name "
						   "DNS-based restrictions inside "
						   "access map values; define a "
						   "restriction class", param,
						   name);
					goto fail;
				}
				r->blocking = true;
				break;
			default:
				break;
			}
			r->n++;
			continue;
		}
		if (i + 1 >= items.n) {
			errbuf_set(err, "%s: restriction \"%s\" needs %s", param,
				   name, check_names[k].arg == ARG_NUM
				   ? "a number of seconds after it"
				   : check_names[k].arg == ARG_MAP
				   ? "a type:name table after it"
				   : check_names[k].arg == ARG_ZONE
				   ? "a DNS zone after it"
				   : "inet:host:port or unix:/path after it");
			goto fail;
		}
		{
			const char *a = items.v[++i];

			if (check_names[k].arg == ARG_NUM) {
				char *end;

				it->num = strtol(a, &end, 10);
				if (!isdigit((unsigned char)*a) || *end != '\0' ||
				    it->num > 3600) {
					errbuf_set(err, "%s: sleep: bad number of "
						   "seconds \"%s\"", param, a);
					goto fail;
				}
				r->blocking = true;
				r->n++;
				continue;
			}
			if (check_names[k].arg == ARG_ZONE) {
				const char *eq = strchr(a, '=');
				struct errbuf ferr;

				if (o->runtime) {
					errbuf_set(err, "%s: \"%s %s\": do not name "
						   "DNS lists inside access map "
						   "values; define a restriction "
						   "class", param, name, a);
					goto fail;
				}
				errbuf_clear(&ferr);
				if (eq == a || strchr(a, ':') != NULL ||
				    (eq && policy_dns_filter_check(eq + 1,
								   &ferr) < 0)) {
					errbuf_set(err, "%s: %s: bad DNS zone \"%s\"%s%s",
						   param, name, a, ferr.msg[0]
						   ? ": " : "", ferr.msg);
					goto fail;
				}
				it->arg = xstrdup(a);
				r->blocking = true;
				r->n++;
				continue;
			}
			if (o->runtime) {
				errbuf_set(err, "%s: \"%s %s\": do not name lookup "
					   "tables inside access map values; "
					   "define a restriction class", param,
					   name, a);
				goto fail;
			}
			it->arg = xstrdup(a);
			if (check_names[k].arg == ARG_MAP) {
				struct errbuf terr;

				errbuf_clear(&terr);
				if (strchr(a, ':') == NULL) {
					errbuf_set(err, "%s: %s: bad argument \"%s\": "
						   "need maptype:mapname", param,
						   name, a);
					goto fail_item;
				}
				it->table = table_open(a, TABLE_F_FOLD, &terr);
				if (it->table == NULL) {
					errbuf_set(err, "%s: %s %s: %s", param, name,
						   a, errbuf_str(&terr));
					goto fail_item;
				}
				if (table_flags(it->table) & TABLE_F_BLOCKING)
					r->table_blocking = true;
				if (it->op >= OP_SRV_SENDER_MX &&
				    it->op <= OP_SRV_REV_A)
					r->blocking = true;	/* DNS */
			} else {
				struct errbuf perr;
				char *rel = NULL;

				errbuf_clear(&perr);
				/* Postfix: a relative unix: path names a
				 * socket under queue_directory
				 * (unix:private/policyd-spf). */
				if (strncasecmp(a, "unix:", 5) == 0 &&
				    a[5] != '/' && a[5] != '\0' && o->conf &&
				    o->conf->queue_dir != NULL) {
					size_t rl = strlen(o->conf->queue_dir) +
						    strlen(a) + 2;

					rel = xmalloc(rl);
					snprintf(rel, rl, "unix:%s/%s",
						 o->conf->queue_dir, a + 5);
				}
				it->policy = policy_svc_new(rel ? rel : a,
					o->conf ? o->conf->policy_timeout : 100,
					o->conf ? o->conf->policy_tries : 2,
					o->conf ? o->conf->policy_retry_delay : 1,
					&perr);
				free(rel);
				if (it->policy == NULL) {
					errbuf_set(err, "%s: %s", param,
						   errbuf_str(&perr));
					goto fail_item;
				}
				if (o->conf != NULL)
					policy_svc_reuse(it->policy,
						o->conf->policy_max_idle,
						o->conf->policy_max_ttl,
						o->conf->policy_request_limit);
				r->blocking = true;
			}
			r->n++;
			continue;
fail_item:
			free(it->arg);
			it->arg = NULL;
			goto fail;
		}
	}
	strlist_free(&items);
	return r;
fail:
	strlist_free(&items);
	smtpd_check_free(&r);
	return NULL;
}

struct smtpd_restrictions *
smtpd_check_compile(const char *param, const char *value, struct errbuf *err)
{
	struct compile_opts o = { NULL, NULL, false };

	return compile_list(param, value, &o, err);
}

void
smtpd_check_free(struct smtpd_restrictions **rp)
{
	struct smtpd_restrictions *r = *rp;

	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].arg);
		table_close(&r->v[i].table);
		policy_svc_free(&r->v[i].policy);
	}
	free(r->v);
	free(r);
	*rp = NULL;
}

bool
smtpd_check_empty(const struct smtpd_restrictions *r)
{
	return r == NULL || r->n == 0;
}

/* ---- evaluation state ---- */

struct ev {
	const struct smtpd_check_conf  *conf;
	const struct smtpd_check_facts *f;
	struct buf                     *reply;
	struct smtpd_check_actions     *act;
	int                             recursion, warn_if_reject;
	bool                            dip_active, dir_active, discard;
	char                            dip[REPLY_MAX + 1], dir[REPLY_MAX + 1];
	char                            namaddr[600];
	struct policy_dns              *dns_own;	/* system resolver */
};

static const struct smtpd_check_conf default_conf = {
	.reject_code = 554, .defer_code = 450, .map_reject_code = 554,
	.map_defer_code = 450, .relay_code = 554, .non_fqdn_code = 504,
	.bad_name_code = 501, .unlisted_code = 550, .parent_matches = true,
	.unk_local_code = 550, .unk_alias_code = 550, .unk_relay_code = 550,
	.reject_unl_rcpt = true,
	.null_key = "<>", .delim = "", .policy_timeout = 100,
	.policy_retry_delay = 1, .policy_tries = 2,
	.policy_default_action = "451 4.3.5 Server configuration problem",
	.unk_addr_code = 450, .unk_client_code = 450, .unk_name_code = 450,
	.rbl_code = 554, .mul_rcpt_code = 550, .plaintext_code = 450,
};

static void
ev_init(struct ev *e, const struct smtpd_check_conf *conf,
	const struct smtpd_check_facts *f, struct buf *reply,
	struct smtpd_check_actions *act)
{
	memset(e, 0, sizeof(*e));
	e->conf = conf ? conf : &default_conf;
	e->f = f;
	e->reply = reply;
	e->act = act;
	snprintf(e->namaddr, sizeof(e->namaddr), "%s[%s]",
		 f->client_name ? f->client_name : "unknown",
		 f->client_addr ? f->client_addr : "");
}

static void
ev_deinit(struct ev *e)
{
	policy_dns_free(&e->dns_own);
}

/* Postfix's log_whatsup: "NOQUEUE: warn: RCPT from n[a]: text; from=<>..." */
static void
ev_log(const struct ev *e, const char *whatsup, const char *text)
{
	const struct smtpd_check_facts *f = e->f;
	struct buf line;

	if (f->syslog_name == NULL)
		return;
	if (f->log_hold != NULL)
		buf_putc(f->log_hold, 'I');
	buf_init(&line, 0);
	buf_printf(&line, "%s: %s: %s from %s: %s;",
		   f->queue_id && *f->queue_id ? f->queue_id : "NOQUEUE",
		   whatsup, f->where ? f->where : "RCPT", e->namaddr, text);
	if (f->sender)
		buf_printf(&line, " from=<%s>", f->sender);
	if (f->rcpt_text)
		buf_printf(&line, " to=%s", f->rcpt_text);
	buf_printf(&line, " proto=%s", f->esmtp ? "ESMTP" : "SMTP");
	if (f->helo)
		buf_printf(&line, " helo=<%s>", f->helo);
	if (f->log_hold != NULL) {
		buf_append(f->log_hold, line.data, line.len);
		buf_putc(f->log_hold, '\0');
	} else {
		log_write(f->syslog_name, "smtpd", LOG_LVL_INFO, "%s",
			  buf_cstr(&line));
	}
	buf_free(&line);
}

static void
ev_warn(const struct ev *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
ev_warn(const struct ev *e, const char *fmt, ...)
{
	va_list ap;

	if (e->f->syslog_name == NULL)
		return;
	va_start(ap, fmt);
	if (e->f->log_hold != NULL) {
		buf_putc(e->f->log_hold, 'W');
		buf_vprintf(e->f->log_hold, fmt, ap);
		buf_putc(e->f->log_hold, '\0');
	} else {
		log_vwrite(e->f->syslog_name, "smtpd", LOG_LVL_WARNING, fmt, ap);
	}
	va_end(ap);
}

/* Formats "CODE D.S.N text" into out, with Postfix's sanity checks. */
static void
format_reply(char *out, size_t outsz, int code, const char *dsn,
	     const char *fmt, va_list ap)
{
	char text[REPLY_MAX + 1];
	char d[16];

	vsnprintf(text, sizeof(text), fmt, ap);
	snprintf(d, sizeof(d), "%s", dsn);
	if (code < 400 || code > 599) {
		snprintf(out, outsz, "450 4.7.1 Service unavailable");
		return;
	}
	/* The DSN class follows the reply code (RFC 3463 2.1). */
	d[0] = (char)('0' + code / 100);
	{
		int n = snprintf(out, outsz, "%d %s ", code, d);

		if (n > 0 && (size_t)n < outsz) {
			size_t tl = strnlen(text, outsz - (size_t)n - 1);

			memcpy(out + n, text, tl);
			out[(size_t)n + tl] = '\0';
		}
	}
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

/* smtpd_check_reject: honours warn_if_reject and defer_if_reject. */
static enum smtpd_check_result
ev_reject(struct ev *e, int code, const char *dsn, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static enum smtpd_check_result
ev_reject(struct ev *e, int code, const char *dsn, const char *fmt, ...)
{
	char out[REPLY_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	format_reply(out, sizeof(out), code, dsn, fmt, ap);
	va_end(ap);
	if (e->warn_if_reject) {
		ev_log(e, "reject_warning", out);
		return SMTPD_CHECK_DUNNO;
	}
	if (e->dir_active && out[0] == '5') {
		e->dir_active = false;
		e->warn_if_reject = 0;
		snprintf(out, sizeof(out), "%s", e->dir);
	}
	buf_reset(e->reply);
	buf_puts(e->reply, out);
	return out[0] == '5' ? SMTPD_CHECK_REJECT : SMTPD_CHECK_DEFER;
}

/* Configuration or software trouble: never a warning, never 5xx. */
static enum smtpd_check_result
ev_server_error(struct ev *e)
{
	buf_reset(e->reply);
	buf_puts(e->reply, "451 4.3.5 Server configuration error");
	return SMTPD_CHECK_DEFER;
}

static enum smtpd_check_result
ev_retry(struct ev *e, const char *reply_name)
{
	buf_reset(e->reply);
	buf_printf(e->reply, "451 4.3.0 <%s>: Temporary lookup failure",
		   reply_name);
	return SMTPD_CHECK_DEFER;
}

static void
ev_defer_if(struct ev *e, bool permit, int code, const char *dsn,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
ev_defer_if(struct ev *e, bool permit, int code, const char *dsn,
	    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (permit && !e->dip_active) {
		format_reply(e->dip, sizeof(e->dip), code, dsn, fmt, ap);
		e->dip_active = true;
	} else if (!permit && !e->dir_active) {
		format_reply(e->dir, sizeof(e->dir), code, dsn, fmt, ap);
		e->dir_active = true;
	}
	va_end(ap);
}

/* ---- name and address checks ---- */

static bool
valid_ipv4(const char *s)
{
	struct in_addr a;

	return inet_pton(AF_INET, s, &a) == 1;
}

/* "[1.2.3.4]" or "[IPv6:...]" */
static bool
valid_literal(const char *s)
{
	size_t n = strlen(s);
	char tmp[128];
	struct in6_addr a6;

	if (n < 3 || s[0] != '[' || s[n - 1] != ']' || n - 2 >= sizeof(tmp))
		return false;
	memcpy(tmp, s + 1, n - 2);
	tmp[n - 2] = '\0';
	if (strncasecmp(tmp, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, tmp + 5, &a6) == 1;
	return valid_ipv4(tmp);
}

/* Postfix's valid_hostname: labels of letters, digits, '-' and '_', no
 * label starting or ending in '-', not all-numeric, at most 255 bytes. */
static bool
valid_hostname(const char *name, bool utf8)
{
	size_t label = 0, total = 0;
	bool non_numeric = false;
	const unsigned char *p = (const unsigned char *)name;

	if (*p == '\0')
		return false;
	for (; *p; p++, total++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (isalpha(*p) || *p == '_' || (utf8 && *p >= 0x80))
			non_numeric = true;
		else if (*p == '-') {
			non_numeric = true;
			if (label == 0)
				return false;
		} else if (!isdigit(*p))
			return false;
		if (++label > 63)
			return false;
	}
	if (label == 0 || p[-1] == '-' || total > 255)
		return false;
	return non_numeric;
}

/* A trailing dot (but not two) is dropped before checking, as Postfix does. */
static void
trunc_dot(const char *in, char *out, size_t outsz)
{
	size_t n = strlen(in);

	snprintf(out, outsz, "%s", in);
	if (n > 1 && in[n - 1] == '.' && in[n - 2] != '.' && n - 1 < outsz)
		out[n - 1] = '\0';
}

static enum smtpd_check_result
check_helo_name(struct ev *e, bool need_fqdn)
{
	const char *h = e->f->helo;
	char t[300];

	if (h == NULL)
		return SMTPD_CHECK_DUNNO;
	if (h[0] == '[') {
		if (!valid_literal(h))
			return ev_reject(e, e->conf->bad_name_code, "5.5.2",
					 "<%s>: %s rejected: invalid ip address",
					 h, NAME_HELO);
		return SMTPD_CHECK_DUNNO;
	}
	trunc_dot(h, t, sizeof(t));
	if (!need_fqdn) {
		if (!valid_hostname(t, false) && !valid_ipv4(t))
			return ev_reject(e, e->conf->bad_name_code, "5.5.2",
					 "<%s>: %s rejected: Invalid name", h,
					 NAME_HELO);
		return SMTPD_CHECK_DUNNO;
	}
	if (!valid_hostname(t, true) || strchr(t, '.') == NULL)
		return ev_reject(e, e->conf->non_fqdn_code, "5.5.2",
				 "<%s>: %s rejected: need fully-qualified "
				 "hostname", h, NAME_HELO);
	return SMTPD_CHECK_DUNNO;
}

static enum smtpd_check_result
check_non_fqdn_addr(struct ev *e, const char *addr, const char *cls)
{
	const char *at = strrchr(addr, '@');
	const char *dom = at ? at + 1 : "";
	char t[300];

	if (dom[0] == '[')
		return SMTPD_CHECK_DUNNO;
	trunc_dot(dom, t, sizeof(t));
	if (*t == '\0' || !valid_hostname(t, true) || strchr(t, '.') == NULL)
		return ev_reject(e, e->conf->non_fqdn_code, "5.5.2",
				 "<%s>: %s rejected: need fully-qualified address",
				 addr, cls);
	return SMTPD_CHECK_DUNNO;
}

/*
 * The reply code for an unknown address of class cls (Postfix's
 * unknown_*_reject_code) and its DSN: 5.1.6 for a relocated user (550, or
 * unknown_virtual_alias_reject_code in an alias domain), else 5.1.0 for a
 * sender and 5.1.1 for a recipient.
 */
static int
unknown_code(const struct smtpd_check_conf *c, const struct resolve_result *res,
	     bool sender, const char **dsn_r)
{
	bool moved = res->reason != NULL &&
	    strncmp(res->reason, "User has moved to ", 18) == 0;

	*dsn_r = moved ? "5.1.6" : sender ? "5.1.0" : "5.1.1";
	if (moved)	/* Postfix: the error transport's 550, alias code */
		return res->ucls == RESOLVE_CLASS_ALIAS ? c->unk_alias_code : 550;
	switch (res->ucls) {
	case RESOLVE_CLASS_LOCAL:
		return c->unk_local_code;
	case RESOLVE_CLASS_ALIAS:
		return c->unk_alias_code;
	case RESOLVE_CLASS_RELAY:
		return c->unk_relay_code;
	default:
		return c->unlisted_code;
	}
}

/* The reason shown: "User unknown in X table" is only "User unknown" with
 * show_user_unknown_table_name = no. */
static const char *
unknown_text(const struct smtpd_check_conf *c, const char *reason)
{
	if (reason == NULL)
		return "User unknown";
	if (c->hide_unk_table && strncmp(reason, "User unknown in ", 16) == 0)
		return "User unknown";
	return reason;
}

void
smtpd_check_unknown_reply(const struct smtpd_check_lists *l,
			  const struct resolve_result *res,
			  const char *rcpt_text, struct buf *reply)
{
	const struct smtpd_check_conf *c = l->conf ? l->conf : &default_conf;
	const char *dsn;
	char d[16];
	int code = unknown_code(c, res, false, &dsn);

	snprintf(d, sizeof(d), "%s", dsn);
	d[0] = (char)('0' + code / 100);
	buf_reset(reply);
	buf_printf(reply, "%d %s %s: Recipient address rejected: %s", code, d,
		   rcpt_text, unknown_text(c, res->reason));
}

bool
smtpd_check_reject_unlisted_rcpt(const struct smtpd_check_lists *l)
{
	return l->conf == NULL ||
	       (l->conf->reject_unl_rcpt && !l->conf->no_unknown_rcpt);
}

/* reject_unlisted_sender / _recipient: the address must exist when its
 * domain is one we host (virtual mailbox, virtual alias, local, and relay
 * when relay_recipient_maps is set). */
static enum smtpd_check_result
check_unlisted(struct ev *e, const struct addr *a, const char *name,
	       const char *cls)
{
	struct resolve_result res;
	enum resolve_status rs;
	enum resolve_class dc;
	struct errbuf err;
	enum smtpd_check_result r = SMTPD_CHECK_DUNNO;
	const char *dsn;
	int code;

	if (e->f->resolve == NULL || a->is_null)
		return SMTPD_CHECK_DUNNO;
	errbuf_clear(&err);
	dc = resolve_domain_class(e->f->resolve, a->domain, &err);
	if (err.msg[0] != '\0') {
		ev_warn(e, "%s", errbuf_str(&err));
		return ev_retry(e, name);
	}
	if (dc == RESOLVE_CLASS_DEFAULT || (dc == RESOLVE_CLASS_RELAY &&
	    !resolve_relay_rcpt_maps_set(e->f->resolve)))
		return SMTPD_CHECK_DUNNO;
	memset(&res, 0, sizeof(res));
	rs = resolve_rcpt_ex(e->f->resolve, a, &res, RESOLVE_F_RELAY_RCPT);
	switch (rs) {
	case RESOLVE_OK:
		break;
	case RESOLVE_UNKNOWN:
		code = unknown_code(e->conf, &res, strcmp(cls, NAME_SENDER) == 0,
				    &dsn);
		r = ev_reject(e, code, dsn, "<%s>: %s rejected: %s", name, cls,
			      unknown_text(e->conf, res.reason));
		break;
	case RESOLVE_TEMPFAIL:
		if (res.reason)
			ev_warn(e, "%s", res.reason);
		r = ev_retry(e, name);
		break;
	default:
		r = ev_server_error(e);
		break;
	}
	resolve_result_free(&res);
	return r;
}

/* ---- access maps ---- */

static enum smtpd_check_result eval_list(struct ev *e,
					 const struct smtpd_restrictions *r,
					 const char *reply_name,
					 const char *cls);

/* A DSN at the start of text is split off (Postfix's dsn_split). */
static const char *
split_dsn(const char *text, const char *def, char *dsn, size_t dsnsz)
{
	const char *p = text;
	size_t n;

	if ((p[0] == '2' || p[0] == '4' || p[0] == '5') && p[1] == '.') {
		n = strspn(p + 2, "0123456789");
		if (n >= 1 && n <= 3 && p[2 + n] == '.') {
			size_t m = strspn(p + 3 + n, "0123456789");

			if (m >= 1 && m <= 3 &&
			    (p[3 + n + m] == ' ' || p[3 + n + m] == '\0') &&
			    3 + n + m < dsnsz) {
				memcpy(dsn, p, 3 + n + m);
				dsn[3 + n + m] = '\0';
				p += 3 + n + m;
				while (*p == ' ' || *p == '\t')
					p++;
				return p;
			}
		}
	}
	snprintf(dsn, dsnsz, "%s", def);
	return text;
}

/* Address-specific DSNs are fixed for the class (smtpd_dsn_fix.c). */
static void
dsn_fix(char *dsn, size_t dsnsz, const char *cls)
{
	static const char *const snd[] = { "4.1.0", "4.1.0", "4.1.8", "4.1.7",
		"4.1.0", "4.1.0", "4.1.0", "4.1.7", "4.1.8" };
	static const char *const rcp[] = { "4.1.0", "4.1.1", "4.1.2", "4.1.3",
		"4.1.4", "4.1.5", "4.1.6", "4.1.3", "4.1.2" };
	char c = dsn[0];
	int micro;

	if (strncmp(dsn + 1, ".1.", 3) != 0)
		return;
	micro = (dsn[4] >= '1' && dsn[4] <= '8' && dsn[5] == '\0') ? dsn[4] - '0'
								   : 0;
	if (strcmp(cls, NAME_SENDER) == 0)
		snprintf(dsn, dsnsz, "%s", snd[micro]);
	else if (strcmp(cls, NAME_RCPT) == 0)
		snprintf(dsn, dsnsz, "%s", rcp[micro]);
	else
		snprintf(dsn, dsnsz, "4.0.0");
	dsn[0] = c;
}

static bool
is_header(const char *s)
{
	size_t n = strcspn(s, ":");

	if (n == 0 || s[n] != ':')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static void
set_why(char **dst, const char *v)
{
	if (*dst == NULL)
		*dst = xstrdup(v);
}

/* check_table_result: one access(5) value. */
static enum smtpd_check_result
table_result(struct ev *e, const char *table, const char *value,
	     const char *reply_name, const char *cls)
{
	size_t clen = strcspn(value, " \t");
	const char *text = value + clen;
	char cmd[32], dsn[16], msg[REPLY_MAX + 1];

	while (*text == ' ' || *text == '\t')
		text++;
	snprintf(cmd, sizeof(cmd), "%.*s", (int)(clen < 31 ? clen : 31), value);
#define IS(x) (clen == strlen(x) && strcasecmp(cmd, x) == 0)
	if (IS("DUNNO"))
		return SMTPD_CHECK_DUNNO;
	/* An all-numeric value is OK (a time stamp from POP-before-SMTP). */
	if (IS("OK") || IS("RELAY") || strspn(value, "0123456789") == strlen(value))
		return SMTPD_CHECK_PERMIT;
	if (IS("REJECT") || IS("DEFER") || IS("DEFER_IF_PERMIT") ||
	    IS("DEFER_IF_REJECT")) {
		bool rej = IS("REJECT");
		const char *t = split_dsn(text, rej ? "5.7.1" : "4.7.1", dsn,
					  sizeof(dsn));

		dsn_fix(dsn, sizeof(dsn), cls);
		if (IS("DEFER_IF_PERMIT") || IS("DEFER_IF_REJECT")) {
			ev_defer_if(e, IS("DEFER_IF_PERMIT"), e->conf->map_defer_code,
				    dsn, "<%s>: %s rejected: %s", reply_name, cls,
				    *t ? t : "Service unavailable");
			return SMTPD_CHECK_DUNNO;
		}
		return ev_reject(e, rej ? e->conf->map_reject_code
					: e->conf->map_defer_code, dsn,
				 "<%s>: %s rejected: %s", reply_name, cls,
				 *t ? t : "Access denied");
	}
	if (clen == 3 && (cmd[0] == '4' || cmd[0] == '5') &&
	    isdigit((unsigned char)cmd[1]) && isdigit((unsigned char)cmd[2]) &&
	    *text) {
		char def[6] = "5.7.1";
		const char *t;

		def[0] = cmd[0];
		t = split_dsn(text, def, dsn, sizeof(dsn));
		dsn_fix(dsn, sizeof(dsn), cls);
		return ev_reject(e, atoi(cmd), dsn, "<%s>: %s rejected: %s",
				 reply_name, cls, *t ? t : "Access denied");
	}
	if (IS("WARN") || IS("INFO")) {
		ev_log(e, IS("WARN") ? "warn" : "info", text);
		return SMTPD_CHECK_DUNNO;
	}
	if (IS("HOLD") || IS("DISCARD")) {
		bool hold = IS("HOLD");

		snprintf(msg, sizeof(msg), "<%s>: %s %s", reply_name, cls,
			 *text ? text : hold ? "triggers HOLD action"
					     : "triggers DISCARD action");
		if (e->f->rcpt == NULL && e->f->sender == NULL) {
			/* Before MAIL there is no message to act on. */
			ev_warn(e, "access table %s: action %s is not allowed "
				"before MAIL FROM", table, cmd);
			return SMTPD_CHECK_DUNNO;
		}
		ev_log(e, hold ? "hold" : "discard", msg);
		if (e->act != NULL) {
			if (hold) {
				e->act->hold = true;
				set_why(&e->act->hold_why, msg);
			} else {
				e->act->discard = true;
				set_why(&e->act->discard_why, msg);
			}
		}
		if (hold)
			return SMTPD_CHECK_DUNNO;
		e->discard = true;
		return SMTPD_CHECK_PERMIT;
	}
	if (IS("REDIRECT")) {
		if (strchr(text, '@') == NULL) {
			ev_warn(e, "access table %s entry \"%s\" requires "
				"user@domain target", table, value);
			return SMTPD_CHECK_DUNNO;
		}
		snprintf(msg, sizeof(msg), "<%s>: %s triggers REDIRECT %s",
			 reply_name, cls, text);
		ev_log(e, "redirect", msg);
		if (e->act != NULL) {
			free(e->act->redirect);
			e->act->redirect = xstrdup(text);
		}
		return SMTPD_CHECK_DUNNO;
	}
	if (IS("PREPEND")) {
		if (!is_header(text)) {
			ev_warn(e, "access table %s entry \"%s\" requires "
				"header: text", table, value);
			return SMTPD_CHECK_DUNNO;
		}
		if (e->act != NULL)
			strlist_add(&e->act->prepend, text);
		return SMTPD_CHECK_DUNNO;
	}
	if (IS("FILTER") || IS("BCC") || IS("HANGUP") || IS("DELAY")) {
		/* Accepting the mail without doing what was asked would
		 * be wrong: defer it and say why. */
		ev_warn(e, "access table %s: action %s is not supported by this "
			"version of facteur", table, cmd);
		return ev_server_error(e);
	}
	if (strchr(value, ':') != NULL) {
		ev_warn(e, "access table %s has entry with lookup table: %s; "
			"define a restriction class and name it instead",
			table, value);
		return ev_server_error(e);
	}
	if (e->recursion > RECURSION_MAX) {
		ev_warn(e, "access table %s entry %s causes unreasonable "
			"recursion", table, value);
		return ev_server_error(e);
	}
	{
		/* A restriction class name or a list of restrictions. */
		struct strlist names;
		struct compile_opts o;
		struct smtpd_restrictions *r;
		struct errbuf err;
		enum smtpd_check_result res;

		strlist_init(&names);
		for (size_t i = 0; i < e->conf->nclasses; i++)
			strlist_add(&names, e->conf->classes[i].name);
		o.classes = &names;
		o.conf = e->conf;
		o.runtime = true;
		errbuf_clear(&err);
		r = compile_list(table, value, &o, &err);
		strlist_free(&names);
		if (r == NULL) {
			ev_warn(e, "access table %s: bad value \"%s\": %s", table,
				value, errbuf_str(&err));
			return ev_server_error(e);
		}
		if (r->n == 0) {
			smtpd_check_free(&r);
			return SMTPD_CHECK_PERMIT;
		}
		res = eval_list(e, r, reply_name, cls);
		smtpd_check_free(&r);
		return res;
	}
#undef IS
}

/* One key; *found tells whether the table had it. */
static enum smtpd_check_result
access_key(struct ev *e, struct table *t, const char *key, bool *found,
	   const char *reply_name, const char *cls)
{
	struct buf v;
	struct errbuf err;
	enum table_status st;
	enum smtpd_check_result r;

	buf_init(&v, 0);
	errbuf_clear(&err);
	st = table_lookup(t, key, &v, &err);
	*found = st != TABLE_NOTFOUND;
	switch (st) {
	case TABLE_FOUND:
		if (buf_cstr(&v)[0] == '\0') {
			ev_warn(e, "%s: empty value for \"%s\"", table_name(t),
				key);
			r = ev_server_error(e);
			break;
		}
		r = table_result(e, table_name(t), buf_cstr(&v), reply_name, cls);
		break;
	case TABLE_NOTFOUND:
		r = SMTPD_CHECK_DUNNO;
		break;
	case TABLE_TEMPFAIL:
		ev_warn(e, "%s lookup error for \"%s\": %s", table_name(t), key,
			errbuf_str(&err));
		r = ev_retry(e, reply_name);
		break;
	default:
		ev_warn(e, "%s lookup error for \"%s\": %s", table_name(t), key,
			errbuf_str(&err));
		r = ev_server_error(e);
		break;
	}
	buf_free(&v);
	return r;
}

static bool
pattern(const struct table *t)
{
	return (table_flags(t) & TABLE_F_PATTERN) != 0;
}

/* Domain, then its parents ("example.com" or ".example.com" style). */
static enum smtpd_check_result
access_domain(struct ev *e, struct table *t, const char *domain, bool *found,
	      bool partial_first, const char *reply_name, const char *cls)
{
	const char *name = domain, *next;
	char key[TABLE_KEY_MAX];
	enum smtpd_check_result r;

	*found = false;
	for (;;) {
		if (!(pattern(t) && (partial_first || name != domain))) {
			snprintf(key, sizeof(key), "%s", name);
			r = access_key(e, t, key, found, reply_name, cls);
			if (*found)
				return r;
		}
		if ((next = strchr(name + 1, '.')) == NULL)
			break;
		if (e->conf->parent_matches)
			next++;
		if (*next == '\0')
			break;
		name = next;
	}
	return SMTPD_CHECK_DUNNO;
}

/* Address, then shorter prefixes (1.2.3.4, 1.2.3, 1.2, 1; v6 by ':'). */
static enum smtpd_check_result
access_addr(struct ev *e, struct table *t, const char *addr, bool *found,
	    const char *reply_name, const char *cls)
{
	char key[64];
	char delim = strchr(addr, ':') ? ':' : '.';
	enum smtpd_check_result r;

	snprintf(key, sizeof(key), "%s", addr);
	for (;;) {
		r = access_key(e, t, key, found, reply_name, cls);
		if (*found || pattern(t))
			return r;
		{
			char *p = strrchr(key, delim);

			if (p == NULL)
				return SMTPD_CHECK_DUNNO;
			*p = '\0';
			if (key[0] == '\0')
				return SMTPD_CHECK_DUNNO;
		}
	}
}

static enum smtpd_check_result
access_client(struct ev *e, struct table *t, const char *name, const char *cls,
	      const char *reply_name)
{
	enum smtpd_check_result r;
	bool found = false;

	if (name && strcasecmp(name, "unknown") != 0) {
		r = access_domain(e, t, name, &found, false, reply_name, cls);
		if (found)
			return r;
	}
	if (e->f->client_addr && *e->f->client_addr)
		return access_addr(e, t, e->f->client_addr, &found, reply_name,
				   cls);
	return SMTPD_CHECK_DUNNO;
}

/* check_mail_access: user@domain, domain (and parents), user@. */
static enum smtpd_check_result
access_mail(struct ev *e, struct table *t, const char *addr, const char *cls)
{
	const char *at = strrchr(addr, '@');
	const char *delim = e->conf->delim;
	char key[TABLE_KEY_MAX], bare[TABLE_KEY_MAX];
	enum smtpd_check_result r;
	bool found = false;
	size_t lplen = at ? (size_t)(at - addr) : strlen(addr);

	bare[0] = '\0';
	if (delim && *delim) {
		size_t ext = strcspn(addr, delim);

		if (ext < lplen && ext > 0)
			snprintf(bare, sizeof(bare), "%.*s%s", (int)ext, addr,
				 at ? at : "");
	}
	r = access_key(e, t, addr, &found, addr, cls);
	if (found)
		return r;
	if (bare[0] && !pattern(t)) {
		r = access_key(e, t, bare, &found, addr, cls);
		if (found)
			return r;
	}
	if (at && at[1]) {
		r = access_domain(e, t, at + 1, &found, true, addr, cls);
		if (found)
			return r;
	}
	if (!pattern(t) && at) {
		const char *lp = bare[0] ? bare : addr;
		size_t n = bare[0] ? strcspn(bare, "@") : lplen;

		snprintf(key, sizeof(key), "%.*s@", (int)n, lp);
		r = access_key(e, t, key, &found, addr, cls);
		if (found)
			return r;
	}
	return SMTPD_CHECK_DUNNO;
}

/* ---- policy delegation ---- */

static void
attr(struct buf *b, const char *name, const char *v)
{
	buf_printf(b, "%s=", name);
	for (const char *p = v ? v : ""; *p; p++)
		buf_putc(b, (*p == '\n' || *p == '\r') ? ' ' : *p);
	buf_putc(b, '\n');
}

static enum smtpd_check_result
check_policy(struct ev *e, const struct item *it, const char *reply_name,
	     const char *cls)
{
	const struct smtpd_check_facts *f = e->f;
	struct buf req, action;
	struct errbuf err;
	enum smtpd_check_result r;
	char num[32];
	char *rcpt = f->rcpt ? addr_key(f->rcpt) : NULL;
	bool at_data = f->where && (strcmp(f->where, "DATA") == 0 ||
				    strcmp(f->where, "END-OF-MESSAGE") == 0);

	buf_init(&req, 64 * 1024);
	buf_init(&action, 0);
	attr(&req, "request", "smtpd_access_policy");
	attr(&req, "protocol_state", f->where ? f->where : "RCPT");
	attr(&req, "protocol_name", f->esmtp ? "ESMTP" : "SMTP");
	attr(&req, "client_address", f->client_addr);
	attr(&req, "client_name", f->client_name);
	attr(&req, "reverse_client_name", f->reverse_client_name
		   ? f->reverse_client_name : f->client_name);
	attr(&req, "helo_name", f->helo);
	attr(&req, "sender", f->sender);
	attr(&req, "recipient", rcpt);
	snprintf(num, sizeof(num), "%u", at_data ? f->rcpt_count : 0);
	attr(&req, "recipient_count", num);
	attr(&req, "queue_id", f->queue_id);
	attr(&req, "instance", f->instance);
	snprintf(num, sizeof(num), "%lld", f->size > 0 ? f->size : 0);
	attr(&req, "size", num);
	attr(&req, "etrn_domain", "");
	attr(&req, "stress", "");
	attr(&req, "sasl_method", f->sasl_method);
	attr(&req, "sasl_username", f->sasl_username);
	attr(&req, "sasl_sender", "");
	attr(&req, "ccert_subject", f->ccert ? f->ccert->subject_cn : "");
	attr(&req, "ccert_issuer", f->ccert ? f->ccert->issuer_cn : "");
	attr(&req, "ccert_fingerprint", f->ccert ? f->ccert->fingerprint : "");
	attr(&req, "ccert_pubkey_fingerprint",
	     f->ccert ? f->ccert->pkey_fingerprint : "");
	attr(&req, "encryption_protocol", f->tls_protocol);
	attr(&req, "encryption_cipher", f->tls_cipher);
	snprintf(num, sizeof(num), "%d", f->tls_bits);
	attr(&req, "encryption_keysize", num);
	attr(&req, "policy_context", "");
	free(rcpt);
	errbuf_clear(&err);
	if (policy_query(it->policy, buf_cstr(&req), &action, &err) < 0) {
		ev_warn(e, "problem talking to server %s: %s",
			policy_svc_name(it->policy), errbuf_str(&err));
		buf_set(&action, e->conf->policy_default_action);
	}
	r = table_result(e, policy_svc_name(it->policy), buf_cstr(&action),
			 reply_name, cls);
	buf_free(&req);
	buf_free(&action);
	return r;
}

/* ---- TLS client certificates ---- */

/*
 * permit_tls_all_clientcerts: any verified certificate.
 * permit_tls_clientcerts: a verified certificate whose fingerprint, or
 * public key fingerprint, is in relay_clientcerts.
 * check_ccert_access: the access map by certificate fingerprint, then by
 * public key fingerprint; the chain need not verify (Postfix).
 */
static enum smtpd_check_result
check_ccert(struct ev *e, const struct item *it)
{
	const struct smtpd_ccert *c = e->f->ccert;
	const char *prints[2];

	if (c == NULL)
		return SMTPD_CHECK_DUNNO;
	prints[0] = c->fingerprint;
	prints[1] = c->pkey_fingerprint;
	if (it->op == OP_TLS_ALL_CLIENTCERTS)
		return c->verified ? SMTPD_CHECK_PERMIT : SMTPD_CHECK_DUNNO;
	if (it->op == OP_TLS_CLIENTCERTS) {
		if (!c->verified || e->conf->relay_clientcerts == NULL)
			return SMTPD_CHECK_DUNNO;
		for (int i = 0; i < 2; i++) {
			struct buf v;
			struct errbuf err;
			enum table_status st;

			if (prints[i][0] == '\0')
				continue;
			buf_init(&v, 0);
			errbuf_clear(&err);
			st = table_list_lookup(e->conf->relay_clientcerts,
					       prints[i], &v, &err, NULL);
			buf_free(&v);
			if (st == TABLE_FOUND)
				return SMTPD_CHECK_PERMIT;
			if (st == TABLE_TEMPFAIL) {
				ev_warn(e, "relay_clientcerts: %s", errbuf_str(&err));
				return ev_retry(e, e->namaddr);
			}
			if (st != TABLE_NOTFOUND) {
				ev_warn(e, "relay_clientcerts: %s", errbuf_str(&err));
				return ev_server_error(e);
			}
		}
		return SMTPD_CHECK_DUNNO;
	}
	for (int i = 0; i < 2; i++) {
		enum smtpd_check_result r;
		bool found = false;

		if (prints[i][0] == '\0')
			continue;
		r = access_key(e, it->table, prints[i], &found, e->namaddr,
			       NAME_CCERT);
		if (found)
			return r;
	}
	return SMTPD_CHECK_DUNNO;
}

/* ---- DNS-based restrictions (worker threads only) ---- */

#define DNS_TIMEOUT_MS	10000

static const struct policy_dns *
ev_dns(struct ev *e)
{
	struct errbuf err;

	if (e->conf->dns != NULL)
		return e->conf->dns;
	if (e->dns_own == NULL) {
		errbuf_clear(&err);
		e->dns_own = policy_dns_new(NULL, DNS_TIMEOUT_MS, &err);
	}
	return e->dns_own;
}

/* Postfix's DEFER_IF_PERMIT2: *_tempfail_action = defer answers now. */
static enum smtpd_check_result
ev_tempfail(struct ev *e, bool defer_now, const char *dsn, const char *text,
	    const char *reply_name, const char *cls)
{
	if (defer_now)
		return ev_reject(e, 450, dsn, "<%s>: %s rejected: %s",
				 reply_name, cls, text);
	ev_defer_if(e, true, 450, dsn, "<%s>: %s rejected: %s", reply_name,
		    cls, text);
	return SMTPD_CHECK_DUNNO;
}

/* reject_unknown_sender_domain / _recipient_domain (reject_unknown_address):
 * only for domains we do not deliver to ourselves. */
static enum smtpd_check_result
check_unknown_domain(struct ev *e, const char *addr, const char *cls)
{
	const char *at = strrchr(addr, '@');
	const char *dom = at ? at + 1 : "";
	bool sender = strcmp(cls, NAME_SENDER) == 0;
	struct errbuf err;
	char t[300];

	if (*dom == '\0' || dom[0] == '[')
		return SMTPD_CHECK_DUNNO;
	if (e->f->resolve != NULL) {
		enum resolve_class dc;

		errbuf_clear(&err);
		dc = resolve_domain_class(e->f->resolve, dom, &err);
		if (err.msg[0] != '\0') {
			ev_warn(e, "%s", errbuf_str(&err));
			return ev_retry(e, addr);
		}
		if (dc != RESOLVE_CLASS_DEFAULT && dc != RESOLVE_CLASS_RELAY)
			return SMTPD_CHECK_DUNNO;
	}
	trunc_dot(dom, t, sizeof(t));
	errbuf_clear(&err);
	switch (policy_dns_mailhost(ev_dns(e), t, &err)) {
	case POLICY_DNS_FOUND:
		return SMTPD_CHECK_DUNNO;
	case POLICY_DNS_NULLMX:
		return ev_reject(e, sender ? 550 : 556, sender ? "5.7.27" : "5.1.10",
				 "<%s>: %s rejected: Domain %s does not accept "
				 "mail (nullMX)", addr, cls, t);
	case POLICY_DNS_NOTFOUND:
		return ev_reject(e, e->conf->unk_addr_code,
				 sender ? "4.1.8" : "4.1.2",
				 "<%s>: %s rejected: Domain not found", addr, cls);
	case POLICY_DNS_TEMPFAIL:
	default:
		ev_warn(e, "%s: %s", t, errbuf_str(&err));
		return ev_tempfail(e, e->conf->unk_addr_defer,
				   sender ? "4.1.8" : "4.1.2", "Domain not found",
				   addr, cls);
	}
}

static enum smtpd_check_result
check_unknown_helo(struct ev *e)
{
	const char *h = e->f->helo;
	struct errbuf err;
	char t[300];

	if (h == NULL || h[0] == '[' || *h == '\0')
		return SMTPD_CHECK_DUNNO;
	trunc_dot(h, t, sizeof(t));
	errbuf_clear(&err);
	switch (policy_dns_hostname(ev_dns(e), t, &err)) {
	case POLICY_DNS_FOUND:
	case POLICY_DNS_NULLMX:
		return SMTPD_CHECK_DUNNO;
	case POLICY_DNS_NOTFOUND:
		return ev_reject(e, e->conf->unk_name_code, "4.7.1",
				 "<%s>: %s rejected: Host not found", h, NAME_HELO);
	case POLICY_DNS_TEMPFAIL:
	default:
		ev_warn(e, "%s: %s", t, errbuf_str(&err));
		return ev_tempfail(e, e->conf->unk_name_defer, "4.7.1",
				   "Host not found", h, NAME_HELO);
	}
}

/* The status of the session's client name (core/smtpd_peername.c), or
 * of its PTR name; facts without one are judged by the name itself. */
static int
client_name_status(const struct ev *e, bool reverse)
{
	const struct smtpd_check_facts *f = e->f;
	const char *n = reverse && f->reverse_client_name
			? f->reverse_client_name : f->client_name;
	int st = reverse ? f->reverse_name_status : f->name_status;

	if (st != SMTPD_PEER_UNSET)
		return st;
	return n != NULL && *n && strcasecmp(n, "unknown") != 0
	       ? SMTPD_PEER_OK : SMTPD_PEER_PERM;
}

/* reject_unknown_client_hostname: the verified name (Postfix: 4.7.25,
 * unknown_client_reject_code unless the lookup failed temporarily);
 * reject_unknown_reverse_client_hostname: the PTR name (4.7.1). */
static enum smtpd_check_result
check_unknown_client(struct ev *e, bool reverse_only)
{
	int st = client_name_status(e, reverse_only);

	if (st == SMTPD_PEER_OK)
		return SMTPD_CHECK_DUNNO;
	if (reverse_only)
		return ev_reject(e, st == SMTPD_PEER_PERM
				 ? e->conf->unk_client_code : 450, "4.7.1",
				 "Client host rejected: cannot find your "
				 "reverse hostname, [%s]",
				 e->f->client_addr ? e->f->client_addr : "");
	return ev_reject(e, st >= SMTPD_PEER_PERM ? e->conf->unk_client_code
			 : 450, "4.7.25",
			 "Client host rejected: cannot find your hostname, [%s]",
			 e->f->client_addr ? e->f->client_addr : "");
}

struct rbl_vars {
	struct ev  *e;
	const char *domain, *what, *cls, *txt;
	char        code[8];
};

static const char *
rbl_var(void *ctx, const char *name)
{
	struct rbl_vars *v = ctx;
	const struct smtpd_check_facts *f = v->e->f;

	if (strcmp(name, "rbl_code") == 0)
		return v->code;
	if (strcmp(name, "rbl_domain") == 0)
		return v->domain;
	if (strcmp(name, "rbl_reason") == 0 || strcmp(name, "rbl_txt") == 0)
		return v->txt;
	if (strcmp(name, "rbl_what") == 0)
		return v->what;
	if (strcmp(name, "rbl_class") == 0)
		return v->cls;
	if (strcmp(name, "client") == 0)
		return v->e->namaddr;
	if (strcmp(name, "client_address") == 0)
		return f->client_addr ? f->client_addr : "";
	if (strcmp(name, "client_name") == 0)
		return f->client_name ? f->client_name : "unknown";
	if (strcmp(name, "helo_name") == 0)
		return f->helo ? f->helo : "";
	if (strcmp(name, "sender") == 0)
		return f->sender ? f->sender : "";
	if (strcmp(name, "recipient") == 0)
		return f->rcpt_text ? f->rcpt_text : "";
	return NULL;
}

#define DEF_RBL_REPLY	"$rbl_code Service unavailable; $rbl_class " \
			"[$rbl_what] blocked using $rbl_domain" \
			"${rbl_reason?; $rbl_reason}"

/* rbl_reject_reply: rbl_reply_maps, else default_rbl_reply. */
static enum smtpd_check_result
rbl_reply(struct ev *e, const char *zone, const char *what, const char *cls,
	  const char *txt)
{
	struct rbl_vars v;
	struct buf tmpl, out;
	struct errbuf err;
	char dom[256], dsn[16];
	const char *t;
	enum smtpd_check_result r;

	snprintf(dom, sizeof(dom), "%.*s", (int)strcspn(zone, "="), zone);
	v.e = e;
	v.domain = dom;
	v.what = what;
	v.cls = cls;
	v.txt = txt;
	snprintf(v.code, sizeof(v.code), "%d", e->conf->rbl_code);
	buf_init(&tmpl, 0);
	buf_init(&out, 4096);
	buf_set(&tmpl, e->conf->def_rbl_reply ? e->conf->def_rbl_reply
					      : DEF_RBL_REPLY);
	if (e->conf->rbl_reply_maps != NULL) {
		struct buf mv;
		enum table_status st;

		buf_init(&mv, 0);
		errbuf_clear(&err);
		st = table_lookup(e->conf->rbl_reply_maps, zone, &mv, &err);
		if (st == TABLE_FOUND)
			buf_set(&tmpl, buf_cstr(&mv));
		buf_free(&mv);
		if (st != TABLE_FOUND && st != TABLE_NOTFOUND) {
			ev_warn(e, "%s lookup error for \"%s\": %s",
				table_name(e->conf->rbl_reply_maps), zone,
				errbuf_str(&err));
			buf_free(&tmpl);
			buf_free(&out);
			return ev_server_error(e);
		}
	}
	errbuf_clear(&err);
	if (policy_dns_expand(buf_cstr(&tmpl), rbl_var, &v, &out, &err) < 0) {
		ev_warn(e, "bad rbl reply template for domain %s: %s: %s", zone,
			buf_cstr(&tmpl), errbuf_str(&err));
		errbuf_clear(&err);
		policy_dns_expand(DEF_RBL_REPLY, rbl_var, &v, &out, &err);
	}
	t = buf_cstr(&out);
	if ((t[0] != '4' && t[0] != '5') || !isdigit((unsigned char)t[1]) ||
	    !isdigit((unsigned char)t[2]) || t[3] != ' ') {
		ev_warn(e, "rbl response code configuration error: %s", t);
		r = ev_reject(e, 450, "4.7.1", "Service unavailable");
	} else {
		const char *text = split_dsn(t + 4, "4.7.1", dsn, sizeof(dsn));

		dsn_fix(dsn, sizeof(dsn), cls);
		r = ev_reject(e, atoi(t), dsn, "%s", *text ? text
							   : "Service unavailable");
	}
	buf_free(&tmpl);
	buf_free(&out);
	return r;
}

/* zone may carry "=filter"; the query goes to the zone alone. */
static enum smtpd_check_result
dnsxl(struct ev *e, const char *query_prefix, const char *zone,
      const char *what, const char *cls)
{
	const char *eq = strchr(zone, '=');
	char q[600];
	struct buf txt;
	struct errbuf err;
	enum policy_dns_xl st;
	enum smtpd_check_result r = SMTPD_CHECK_DUNNO;

	snprintf(q, sizeof(q), "%s.%.*s", query_prefix,
		 (int)(eq ? (size_t)(eq - zone) : strlen(zone)), zone);
	buf_init(&txt, 0);
	errbuf_clear(&err);
	st = policy_dns_xl(ev_dns(e), q, eq ? eq + 1 : NULL, &txt, &err);
	if (st == POLICY_DNS_XL_TEMPFAIL)
		/* An unreachable list must not stop all mail (Postfix). */
		ev_warn(e, "%s: RBL lookup error: %s", q, errbuf_str(&err));
	else if (st == POLICY_DNS_LISTED)
		r = rbl_reply(e, zone, what, cls, buf_cstr(&txt));
	buf_free(&txt);
	return r;
}

static enum smtpd_check_result
check_rbl_client(struct ev *e, const char *zone)
{
	const char *addr = e->f->client_addr;
	char rev[128];

	if (addr == NULL || *addr == '\0' ||
	    dns_reverse_name(addr, "", rev, sizeof(rev)) < 0)
		return SMTPD_CHECK_DUNNO;
	/* dns_reverse_name with an empty suffix leaves a trailing dot. */
	if (rev[0] && rev[strlen(rev) - 1] == '.')
		rev[strlen(rev) - 1] = '\0';
	return dnsxl(e, rev, zone, addr, NAME_CLIENT);
}

/* find_dnsxl_domain: the domain of what (after '@' if any). */
static enum smtpd_check_result
check_rhsbl(struct ev *e, const char *zone, const char *what, const char *cls)
{
	const char *at = strrchr(what, '@');
	const char *dom = at ? at + 1 : what;
	const char *suffix;
	char t[300];

	if (dom[0] == '[' || dom[0] == '\0')
		return SMTPD_CHECK_DUNNO;
	trunc_dot(dom, t, sizeof(t));
	if (!valid_hostname(t, false))
		return SMTPD_CHECK_DUNNO;
	/* Names ending in a numeric label are not looked up (Postfix). */
	suffix = strrchr(t, '.');
	suffix = suffix ? suffix + 1 : t;
	if (strspn(suffix, "0123456789") == strlen(suffix))
		return SMTPD_CHECK_DUNNO;
	return dnsxl(e, t, zone, what, cls);
}

/* The session's client name (verified) or PTR name (reverse), NULL
 * when it has none (reject_rhsbl_*client, check_reverse_client_...). */
static const char *
client_dns_name(struct ev *e, bool reverse)
{
	const char *n = reverse && e->f->reverse_client_name
			? e->f->reverse_client_name : e->f->client_name;

	if (client_name_status(e, reverse) != SMTPD_PEER_OK)
		return NULL;
	if (n != NULL && *n && strcasecmp(n, "unknown") != 0)
		return n;
	return NULL;
}

/* The reject_rhsbl_* family: what each one looks up, and its reply name. */
enum rhsbl_subject { RHS_CLIENT, RHS_REV_CLIENT, RHS_SENDER, RHS_HELO, RHS_RCPT };

static const struct {
	int                 op;
	enum rhsbl_subject  subject;
	const char         *cls;
} rhsbl_kinds[] = {
	{ OP_RHSBL_CLIENT, RHS_CLIENT, NAME_CLIENT },
	{ OP_RHSBL_REV_CLIENT, RHS_REV_CLIENT, NAME_REV_CLIENT },
	{ OP_RHSBL_SENDER, RHS_SENDER, NAME_SENDER },
	{ OP_RHSBL_HELO, RHS_HELO, NAME_HELO },
	{ OP_RHSBL_RCPT, RHS_RCPT, NAME_RCPT },
};

/* The name or address to look up (owned), NULL when there is none. */
static char *
rhsbl_subject_text(struct ev *e, enum rhsbl_subject subj)
{
	const struct smtpd_check_facts *f = e->f;
	const char *n = NULL;

	switch (subj) {
	case RHS_CLIENT:
	case RHS_REV_CLIENT:
		n = client_dns_name(e, subj == RHS_REV_CLIENT);
		break;
	case RHS_SENDER:
		n = f->sender;
		break;
	case RHS_HELO:
		n = f->helo;
		break;
	case RHS_RCPT:
		return f->rcpt != NULL && !f->rcpt->is_null ? addr_key(f->rcpt)
							    : NULL;
	}
	return n != NULL && *n ? xstrdup(n) : NULL;
}

static enum smtpd_check_result
eval_rhsbl(struct ev *e, int op, const char *zone)
{
	for (size_t i = 0; i < sizeof(rhsbl_kinds) / sizeof(rhsbl_kinds[0]); i++) {
		enum smtpd_check_result st;
		char *what;

		if (rhsbl_kinds[i].op != op)
			continue;
		if ((what = rhsbl_subject_text(e, rhsbl_kinds[i].subject)) == NULL)
			return SMTPD_CHECK_DUNNO;
		st = check_rhsbl(e, zone, what, rhsbl_kinds[i].cls);
		free(what);
		return st;
	}
	return SMTPD_CHECK_DUNNO;
}

/* ---- check_*_{mx,ns,a}_access (Postfix's check_server_access) ---- */

#define SERVER_HOSTS_MAX	32	/* MX or NS hosts looked at */

static const char *
server_type_name(enum dns_type t)
{
	return t == DNS_MX ? "MX" : t == DNS_NS ? "NS" : "A";
}

/* An address or host name lookup ended the search: found, or a decision. */
#define SERVER_DONE(st, found) ((st) != SMTPD_CHECK_DUNNO || (found))

/* The addresses of host, each looked up in t; a lookup failure is
 * logged and skipped. */
static enum smtpd_check_result
server_host_addrs(struct ev *e, struct table *t, const char *host,
		  enum dns_type type, bool *found, const char *reply_name,
		  const char *cls)
{
	struct dns_result addrs;
	struct errbuf err;
	enum smtpd_check_result st = SMTPD_CHECK_DUNNO;

	errbuf_clear(&err);
	if (policy_dns_addrs(ev_dns(e), host, &addrs, &err) != DNS_OK) {
		ev_warn(e, "Unable to look up %s host %s for %s %s: %s",
			server_type_name(type), host, cls, reply_name,
			errbuf_str(&err));
		return SMTPD_CHECK_DUNNO;
	}
	for (size_t i = 0; i < addrs.n; i++) {
		st = access_addr(e, t, addrs.rr[i].data, found, reply_name, cls);
		if (SERVER_DONE(st, *found))
			break;
	}
	dns_result_free(&addrs);
	return st;
}

/*
 * The MX hosts (a domain without MX is its own), the name servers (of the
 * domain or its nearest parent that has some) or the addresses of the
 * domain of name: host names first (with parent domains), then their
 * addresses, in t. The first match decides, DUNNO included. A DNS failure
 * is logged and gives DUNNO, as in Postfix.
 */
static enum smtpd_check_result
check_server(struct ev *e, struct table *t, const char *name,
	     enum dns_type type, const char *reply_name, const char *cls)
{
	const char *at = strrchr(name, '@');
	const char *domain = at ? at + 1 : name;
	struct dns_result list;
	struct errbuf err;
	enum dns_status ds;
	enum smtpd_check_result st = SMTPD_CHECK_DUNNO;
	bool found = false;
	char dom[300];

	if (*domain == '\0')
		return SMTPD_CHECK_DUNNO;
	if (domain[0] == '[') {
		/* an address literal is its own mail server (no NS) */
		size_t n = strlen(domain);
		char lit[128];
		const char *a = lit;
		unsigned char bin[16];

		if ((type != DNS_A && type != DNS_MX) || domain[n - 1] != ']' ||
		    n - 2 >= sizeof(lit))
			return SMTPD_CHECK_DUNNO;
		memcpy(lit, domain + 1, n - 2);
		lit[n - 2] = '\0';
		if (strncasecmp(lit, "IPv6:", 5) == 0)
			a = lit + 5;
		if (inet_pton(strchr(a, ':') ? AF_INET6 : AF_INET, a, bin) != 1)
			return SMTPD_CHECK_DUNNO;
		return access_addr(e, t, a, &found, reply_name, cls);
	}
	trunc_dot(domain, dom, sizeof(dom));
	if (!valid_hostname(dom, false))
		return SMTPD_CHECK_DUNNO;
	errbuf_clear(&err);
	if (type == DNS_A) {
		/* no address: nothing to look up (Postfix logs nothing) */
		ds = policy_dns_addrs(ev_dns(e), dom, &list, &err);
		if (ds != DNS_OK)
			return SMTPD_CHECK_DUNNO;
		for (size_t i = 0; i < list.n; i++) {
			st = access_addr(e, t, list.rr[i].data, &found,
					 reply_name, cls);
			if (SERVER_DONE(st, found))
				break;
		}
		dns_result_free(&list);
		return st;
	}
	ds = policy_dns_lookup(ev_dns(e), dom, type, &list, &err);
	if (ds == DNS_NOTFOUND && type == DNS_MX) {
		memset(&list, 0, sizeof(list));
		list.rr = xcalloc(1, sizeof(*list.rr));
		list.rr[0].type = DNS_MX;
		list.rr[0].data = xstrdup(dom);
		list.n = 1;
		ds = DNS_OK;
	} else if (ds == DNS_NOTFOUND) {
		/* NS: those of the nearest parent domain that has some (as
		 * Postfix 3, also after NXDOMAIN: some servers answer that
		 * for "no data") */
		for (const char *p = strchr(dom, '.'); p && p[1] &&
		     ds == DNS_NOTFOUND; p = strchr(p + 1, '.')) {
			errbuf_clear(&err);
			ds = policy_dns_lookup(ev_dns(e), p + 1, type, &list,
					       &err);
		}
	}
	if (ds != DNS_OK) {
		ev_warn(e, "Unable to look up %s host for %s: %s",
			server_type_name(type), dom, errbuf_str(&err));
		return SMTPD_CHECK_DUNNO;
	}
	for (size_t i = 0; i < list.n && i < SERVER_HOSTS_MAX; i++) {
		const char *host = list.rr[i].data;
		unsigned char bin[16];

		if (*host == '\0')	/* null MX (RFC 7505) */
			continue;
		if (inet_pton(AF_INET, host, bin) == 1 ||
		    inet_pton(AF_INET6, host, bin) == 1) {
			st = access_addr(e, t, host, &found, reply_name, cls);
			if (SERVER_DONE(st, found))
				break;
			continue;
		}
		st = access_domain(e, t, host, &found, false, reply_name, cls);
		if (SERVER_DONE(st, found))
			break;
		st = server_host_addrs(e, t, host, type, &found, reply_name, cls);
		if (SERVER_DONE(st, found))
			break;
	}
	dns_result_free(&list);
	return st;
}

/* The check_*_{mx,ns,a}_access family: what each looks at. */
static const struct {
	int            op;
	enum rhsbl_subject subject;
	enum dns_type  type;
	const char    *name, *cls;
} server_kinds[] = {
	{ OP_SRV_SENDER_MX, RHS_SENDER, DNS_MX, "check_sender_mx_access", NAME_SENDER },
	{ OP_SRV_SENDER_NS, RHS_SENDER, DNS_NS, "check_sender_ns_access", NAME_SENDER },
	{ OP_SRV_SENDER_A, RHS_SENDER, DNS_A, "check_sender_a_access", NAME_SENDER },
	{ OP_SRV_RCPT_MX, RHS_RCPT, DNS_MX, "check_recipient_mx_access", NAME_RCPT },
	{ OP_SRV_RCPT_NS, RHS_RCPT, DNS_NS, "check_recipient_ns_access", NAME_RCPT },
	{ OP_SRV_RCPT_A, RHS_RCPT, DNS_A, "check_recipient_a_access", NAME_RCPT },
	{ OP_SRV_HELO_MX, RHS_HELO, DNS_MX, "check_helo_mx_access", NAME_HELO },
	{ OP_SRV_HELO_NS, RHS_HELO, DNS_NS, "check_helo_ns_access", NAME_HELO },
	{ OP_SRV_HELO_A, RHS_HELO, DNS_A, "check_helo_a_access", NAME_HELO },
	{ OP_SRV_CLIENT_MX, RHS_CLIENT, DNS_MX, "check_client_mx_access", NAME_CLIENT },
	{ OP_SRV_CLIENT_NS, RHS_CLIENT, DNS_NS, "check_client_ns_access", NAME_CLIENT },
	{ OP_SRV_CLIENT_A, RHS_CLIENT, DNS_A, "check_client_a_access", NAME_CLIENT },
	{ OP_SRV_REV_MX, RHS_REV_CLIENT, DNS_MX, "check_reverse_client_mx_access", NAME_REV_CLIENT },
	{ OP_SRV_REV_NS, RHS_REV_CLIENT, DNS_NS, "check_reverse_client_ns_access", NAME_REV_CLIENT },
	{ OP_SRV_REV_A, RHS_REV_CLIENT, DNS_A, "check_reverse_client_a_access", NAME_REV_CLIENT },
};

static enum smtpd_check_result
eval_server(struct ev *e, const struct item *it)
{
	for (size_t i = 0; i < sizeof(server_kinds) / sizeof(server_kinds[0]);
	     i++) {
		enum smtpd_check_result st;
		const char *reply_name;
		char *what;

		if (server_kinds[i].op != (int)it->op)
			continue;
		if ((what = rhsbl_subject_text(e, server_kinds[i].subject)) == NULL)
			return SMTPD_CHECK_DUNNO;
		reply_name = server_kinds[i].subject == RHS_CLIENT ||
			     server_kinds[i].subject == RHS_REV_CLIENT
			     ? e->namaddr : what;
		st = check_server(e, it->table, what, server_kinds[i].type,
				  reply_name, server_kinds[i].cls);
		if (st == SMTPD_CHECK_PERMIT && !e->discard) {
			/* OK would allowlist by data the client controls */
			ev_warn(e, "restriction %s returns OK for %s; this is "
				"not allowed for security reasons: use DUNNO",
				server_kinds[i].name, what);
			st = ev_server_error(e);
		}
		free(what);
		return st;
	}
	return SMTPD_CHECK_DUNNO;
}

/* ---- destinations, MX backup ---- */

/* permit_auth_destination: 1 when the recipient's domain is one we
 * deliver or relay to, 0 when not (or no recipient), -1 on a lookup
 * failure (logged). */
static int
auth_destination(struct ev *e)
{
	const struct smtpd_check_facts *f = e->f;
	struct errbuf err;
	enum resolve_class dc;

	if (f->rcpt == NULL || f->resolve == NULL)
		return 0;
	if (f->rcpt->is_null)
		return 1;
	errbuf_clear(&err);
	dc = resolve_domain_class(f->resolve, f->rcpt->domain, &err);
	if (err.msg[0] != '\0') {
		ev_warn(e, "%s", errbuf_str(&err));
		return -1;
	}
	/* sender-specified routing (user@elsewhere@domain, user%elsewhere,
	 * host!user) to a domain that is not local: uncertain destination */
	if (dc != RESOLVE_CLASS_LOCAL && f->rcpt->local != NULL &&
	    strpbrk(f->rcpt->local, "@%!") != NULL)
		return 0;
	return dc != RESOLVE_CLASS_DEFAULT;
}

static enum smtpd_check_result
retry_rcpt(struct ev *e)
{
	buf_reset(e->reply);
	buf_printf(e->reply, "451 4.3.0 %s: Temporary lookup failure",
		   e->f->rcpt_text ? e->f->rcpt_text : "<>");
	return SMTPD_CHECK_DEFER;
}

/* Postfix's has_my_addr: one of host's addresses is ours. 1, 0, or -1
 * when the addresses could not be looked up. */
static int
host_is_me(struct ev *e, const char *host, struct dns_result *addrs_r)
{
	struct errbuf err;
	enum dns_status ds;
	int me = 0;

	errbuf_clear(&err);
	ds = policy_dns_addrs(ev_dns(e), host, addrs_r, &err);
	if (ds == DNS_TEMPFAIL)
		ev_warn(e, "%s", errbuf_str(&err));
	if (ds != DNS_OK)
		return ds == DNS_TEMPFAIL ? -1 : 0;
	for (size_t i = 0; i < addrs_r->n && !me; i++)
		if (smtpd_ifaddrs_match(&e->conf->ifaddrs, addrs_r->rr[i].data))
			me = 1;
	return me;
}

/* permit_mx_backup_networks: every primary MX has an address there. */
static bool
primaries_allowed(struct ev *e, const struct dns_result *mx, size_t nprim)
{
	if (e->conf->mx_backup_nets == NULL)
		return true;
	for (size_t i = 0; i < nprim; i++) {
		struct dns_result a;
		struct errbuf err;
		bool ok = false;

		errbuf_clear(&err);
		if (policy_dns_addrs(ev_dns(e), mx->rr[i].data, &a, &err) != DNS_OK)
			return false;
		for (size_t k = 0; k < a.n && !ok; k++)
			ok = netlist_match_str(e->conf->mx_backup_nets,
					       a.rr[k].data, &err) == 1;
		dns_result_free(&a);
		if (!ok)
			return false;
	}
	return true;
}

/*
 * permit_mx_backup: the recipient's domain is ours (as
 * permit_auth_destination), or we are one of its backup MX hosts (never
 * when we are a primary one, and, with permit_mx_backup_networks, only
 * when its primaries are in those networks). A failed MX lookup turns a
 * later reject into a deferral (450 4.4.4).
 */
static enum smtpd_check_result
check_mx_backup(struct ev *e, const char *reply_name, const char *cls)
{
	const struct smtpd_check_facts *f = e->f;
	struct dns_result mx, a;
	struct errbuf err;
	enum dns_status ds;
	size_t nprim;
	int auth = auth_destination(e);
	char dom[300];

	if (f->rcpt == NULL)
		return SMTPD_CHECK_DUNNO;
	if (auth < 0)
		return retry_rcpt(e);
	if (auth > 0)
		return SMTPD_CHECK_PERMIT;
	if (f->rcpt->domain == NULL || f->rcpt->domain[0] == '[' ||
	    f->rcpt->domain[0] == '\0')
		return SMTPD_CHECK_DUNNO;
	trunc_dot(f->rcpt->domain, dom, sizeof(dom));
	errbuf_clear(&err);
	ds = policy_dns_lookup(ev_dns(e), dom, DNS_MX, &mx, &err);
	if (ds == DNS_NOTFOUND) {
		/* perhaps a name of this host (a CNAME sent as a domain) */
		int me = host_is_me(e, dom, &a);

		dns_result_free(&a);
		return me == 1 ? SMTPD_CHECK_PERMIT : SMTPD_CHECK_DUNNO;
	}
	if (ds != DNS_OK) {
		ev_warn(e, "%s", errbuf_str(&err));
		ev_defer_if(e, false, 450, "4.4.4", "<%s>: %s rejected: Unable to "
			    "look up mail exchanger information: %s", reply_name,
			    cls, "Host or domain name not found");
		return SMTPD_CHECK_DUNNO;
	}
	dns_mx_sort(&mx);
	for (nprim = 1; nprim < mx.n && mx.rr[nprim].pref == mx.rr[0].pref;
	     nprim++)
		;
	for (size_t i = 0; i < mx.n && i < SERVER_HOSTS_MAX; i++) {
		int me;

		if (mx.rr[i].data[0] == '\0')
			continue;
		me = host_is_me(e, mx.rr[i].data, &a);
		dns_result_free(&a);
		if (me != 1)
			continue;
		if (i < nprim) {	/* a primary: not a backup */
			dns_result_free(&mx);
			return SMTPD_CHECK_DUNNO;
		}
		{
			bool ok = primaries_allowed(e, &mx, nprim);

			dns_result_free(&mx);
			return ok ? SMTPD_CHECK_PERMIT : SMTPD_CHECK_DUNNO;
		}
	}
	dns_result_free(&mx);
	return SMTPD_CHECK_DUNNO;
}

/* ---- DNS allowlists ---- */

/* permit_dnswl_client / permit_rhswl_client: a listed client is permitted,
 * but never for a recipient we would not accept anyway (safety, as in
 * Postfix); a failed lookup turns a later reject into a deferral. */
static enum smtpd_check_result
check_dnswl(struct ev *e, const char *zone, bool rhs)
{
	const struct smtpd_check_facts *f = e->f;
	const char *eq = strchr(zone, '=');
	char q[600], rev[300];
	const char *subject;
	struct buf txt;
	struct errbuf err;
	enum policy_dns_xl st;
	enum smtpd_check_result r = SMTPD_CHECK_DUNNO;

	if (f->rcpt != NULL && f->where && strcmp(f->where, "RCPT") == 0) {
		int auth = auth_destination(e);

		if (auth < 0)
			return retry_rcpt(e);
		if (auth == 0)
			return SMTPD_CHECK_DUNNO;
	}
	if (rhs) {
		const char *n = client_dns_name(e, false);
		char t[300];

		if (n == NULL)
			return SMTPD_CHECK_DUNNO;
		trunc_dot(n, t, sizeof(t));
		snprintf(rev, sizeof(rev), "%s", t);
		subject = rev;
	} else {
		if (f->client_addr == NULL || *f->client_addr == '\0' ||
		    dns_reverse_name(f->client_addr, "", rev, sizeof(rev)) < 0)
			return SMTPD_CHECK_DUNNO;
		if (rev[0] && rev[strlen(rev) - 1] == '.')
			rev[strlen(rev) - 1] = '\0';
		subject = rev;
	}
	snprintf(q, sizeof(q), "%s.%.*s", subject,
		 (int)(eq ? (size_t)(eq - zone) : strlen(zone)), zone);
	buf_init(&txt, 0);
	errbuf_clear(&err);
	st = policy_dns_xl(ev_dns(e), q, eq ? eq + 1 : NULL, &txt, &err);
	if (st == POLICY_DNS_LISTED) {
		r = SMTPD_CHECK_PERMIT;
	} else if (st == POLICY_DNS_XL_TEMPFAIL) {
		ev_warn(e, "%s: %s lookup error: %s", q, rhs ? "RHSWL" : "DNSWL",
			errbuf_str(&err));
		/* Postfix names the address (or name) looked up */
		ev_defer_if(e, false, 450, "4.7.1", "<%s>: %s rejected: Service "
			    "unavailable", rhs ? subject : f->client_addr,
			    NAME_CLIENT);
	}
	buf_free(&txt);
	return r;
}

/* reject_maps_rbl (obsolete): reject_rbl_client for each of
 * maps_rbl_domains. */
static enum smtpd_check_result
check_maps_rbl(struct ev *e)
{
	static bool warned;

	if (!warned) {
		warned = true;
		ev_warn(e, "support for restriction \"reject_maps_rbl\" will be "
			"removed; use \"reject_rbl_client domain-name\" instead");
	}
	for (size_t i = 0; i < e->conf->maps_rbl.n; i++) {
		enum smtpd_check_result st = check_rbl_client(e,
						e->conf->maps_rbl.v[i]);

		if (st != SMTPD_CHECK_DUNNO)
			return st;
	}
	return SMTPD_CHECK_DUNNO;
}

/* check_sasl_access: the SASL login name (one lookup, the name as it is;
 * the reply shows it with unprintable bytes as '_'). */
static enum smtpd_check_result
check_sasl_access(struct ev *e, struct table *t)
{
	const char *u = e->f->sasl_username;
	char name[TABLE_KEY_MAX];
	bool found;

	if (!e->conf->sasl_enable) {
		ev_warn(e, "restriction `check_sasl_access' ignored: no SASL "
			"support");
		return SMTPD_CHECK_DUNNO;
	}
	if (u == NULL || *u == '\0')
		return SMTPD_CHECK_DUNNO;
	snprintf(name, sizeof(name), "%s", u);
	for (char *p = name; *p; p++)	/* printable() */
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '_';
	/* the login name as it is, one key (no domain or user@ forms) */
	return access_key(e, t, u, &found, name, "SASL login name");
}

/* ---- sender login maps ---- */

/*
 * smtpd_sender_login_maps for the sender, in Postfix's order: address,
 * address without extension, local part alone when the domain is local,
 * @domain. 1 found (the owners in owners_r), 0 not listed, -1 lookup
 * failure (warning logged).
 */
static int
login_owners(struct ev *e, struct buf *owners_r)
{
	const char *sender = e->f->sender, *at = strrchr(sender, '@');
	char *local = at ? xstrndup(sender, (size_t)(at - sender))
			 : xstrdup(sender);
	const char *domain = at ? at + 1 : "";
	unsigned flags = 0;
	struct errbuf err;
	enum table_status st;

	errbuf_clear(&err);
	if (*domain != '\0' && e->f->resolve != NULL) {
		enum resolve_class dc;

		dc = resolve_domain_class(e->f->resolve, domain, &err);
		if (err.msg[0] != '\0') {
			ev_warn(e, "%s", errbuf_str(&err));
			free(local);
			return -1;
		}
		if (dc == RESOLVE_CLASS_LOCAL)
			flags |= ADDR_FIND_BARE_USER;
	}
	st = addr_find(e->conf->sender_login_maps, local, domain,
		       e->conf->delim, flags, owners_r, NULL, &err);
	free(local);
	if (st == TABLE_FOUND)
		return 1;
	if (st == TABLE_NOTFOUND)
		return 0;
	ev_warn(e, "smtpd_sender_login_maps: %s", errbuf_str(&err));
	return -1;
}

/* The SASL login names one owner value lists (comma or space apart). */
static bool
login_owned(const char *owners, const char *login)
{
	size_t n = strlen(login);

	for (const char *p = owners; *p != '\0';) {
		size_t len;

		p += strspn(p, ", \t\r\n");
		len = strcspn(p, ", \t\r\n");
		if (len == n && len > 0 && strncasecmp(p, login, n) == 0)
			return true;
		p += len;
	}
	return false;
}

/* reject_auth_sender_login_mismatch: a logged-in client that does not
 * own the sender address (nor, unless allow_unknown, an unlisted one). */
static enum smtpd_check_result
check_auth_login(struct ev *e, bool allow_unknown)
{
	const char *login = e->f->sasl_username;
	enum smtpd_check_result st = SMTPD_CHECK_DUNNO;
	struct buf owners;
	int found;

	if (e->conf->sender_login_maps == NULL || login == NULL || *login == '\0')
		return SMTPD_CHECK_DUNNO;
	buf_init(&owners, 0);
	found = login_owners(e, &owners);
	if (found < 0)
		st = ev_retry(e, e->f->sender);
	else if ((found == 0 && !allow_unknown) ||
		 (found == 1 && !login_owned(buf_cstr(&owners), login)))
		st = ev_reject(e, 553, "5.7.1", "<%s>: %s rejected: not owned "
			       "by user %s", e->f->sender, NAME_SENDER, login);
	buf_free(&owners);
	return st;
}

/* reject_unauth_sender_login_mismatch: a listed sender address used by a
 * client that has not logged in. */
static enum smtpd_check_result
check_unauth_login(struct ev *e)
{
	const char *login = e->f->sasl_username;
	enum smtpd_check_result st = SMTPD_CHECK_DUNNO;
	struct buf owners;
	int found;

	if (e->conf->sender_login_maps == NULL || (login != NULL && *login))
		return SMTPD_CHECK_DUNNO;
	buf_init(&owners, 0);
	found = login_owners(e, &owners);
	if (found < 0)
		st = ev_retry(e, e->f->sender);
	else if (found == 1)
		st = ev_reject(e, 553, "5.7.1", "<%s>: %s rejected: not logged "
			       "in", e->f->sender, NAME_SENDER);
	buf_free(&owners);
	return st;
}

/* The four *_sender_login_mismatch restrictions (Postfix's dispatch). */
static enum smtpd_check_result
check_sender_login(struct ev *e, enum check_op op)
{
	enum smtpd_check_result st;
	const char *login = e->f->sasl_username;

	if (e->f->sender == NULL || *e->f->sender == '\0')
		return SMTPD_CHECK_DUNNO;
	if (!e->conf->sasl_enable) {
		const char *name = "reject_sender_login_mismatch";

		for (size_t k = 0; k < NCHECK; k++)
			if (check_names[k].op == op)
				name = check_names[k].name;
		ev_warn(e, "restriction `%s' ignored: no SASL support", name);
		return SMTPD_CHECK_DUNNO;
	}
	switch (op) {
	case OP_SENDER_LOGIN:
		st = check_auth_login(e, false);
		if (st == SMTPD_CHECK_DUNNO)
			st = check_unauth_login(e);
		break;
	case OP_AUTH_SENDER_LOGIN:
		st = check_auth_login(e, false);
		break;
	case OP_KNOWN_SENDER_LOGIN:
		st = login != NULL && *login ? check_auth_login(e, true)
					     : check_unauth_login(e);
		break;
	default:
		st = check_unauth_login(e);
		break;
	}
	return st;
}

/* ---- greylisting (core/greylist.c) ---- */

static enum smtpd_check_result
check_greylist(struct ev *e, const char *reply_name, const char *cls)
{
	const struct smtpd_check_facts *f = e->f;
	struct greylist_query q;
	enum greylist_result gr;
	struct errbuf err;
	struct buf text;
	const char *why = "";
	char *rcpt;
	long left = 0;
	enum smtpd_check_result st;

	if (f->rcpt == NULL || e->conf->greylist == NULL)
		return SMTPD_CHECK_DUNNO;	/* only RCPT has a triplet */
	rcpt = addr_key(f->rcpt);
	memset(&q, 0, sizeof(q));
	q.client_addr = f->client_addr ? f->client_addr : "";
	q.sender = f->sender ? f->sender : "";
	q.rcpt = rcpt;
	q.in_mynetworks = f->in_mynetworks;
	q.sasl_authenticated = f->sasl_authenticated;
	q.now = time(NULL);
	q.syslog_name = f->syslog_name;
	errbuf_clear(&err);
	gr = greylist_check(e->conf->greylist, &q, &why, &left, &err);
	if (gr == GREYLIST_ERROR) {
		ev_warn(e, "check_greylist: %s", errbuf_str(&err));
		free(rcpt);
		return ev_retry(e, reply_name);
	}
	if (gr == GREYLIST_PASS) {
		free(rcpt);
		return SMTPD_CHECK_DUNNO;
	}
	buf_init(&text, 0);
	greylist_reply_text(e->conf->greylist, rcpt, left, &text);
	st = ev_reject(e, 450, "4.2.0", "<%s>: %s rejected: %s", reply_name,
		       cls, buf_cstr(&text));
	buf_free(&text);
	free(rcpt);
	return st;
}

/* ---- address verification (core/verify.c) ---- */

static enum smtpd_check_result
check_verify(struct ev *e, bool sender)
{
	struct verify_verdict vd;
	char *a;

	if (sender && (e->f->sender == NULL || *e->f->sender == '\0'))
		return SMTPD_CHECK_DUNNO;	/* <> is not verified */
	if (!sender && (e->f->rcpt == NULL || e->f->rcpt->is_null))
		return SMTPD_CHECK_DUNNO;
	a = sender ? xstrdup(e->f->sender) : addr_key(e->f->rcpt);
	verify_smtpd_check(&e->conf->verify, e->f->resolve, a, sender, &vd);
	if (vd.action == VERIFY_DEFER_IF_PERMIT && !e->warn_if_reject)
		ev_defer_if(e, true, vd.code, vd.dsn, "<%s>: %s rejected: %s", a,
			    sender ? NAME_SENDER : NAME_RCPT, vd.text);
	else if (vd.action != VERIFY_PASS) {
		enum smtpd_check_result st = ev_reject(e, vd.code, vd.dsn,
			"<%s>: %s rejected: %s", a, sender ? NAME_SENDER
			: NAME_RCPT, vd.text);

		free(a);
		return st;
	}
	free(a);
	return SMTPD_CHECK_DUNNO;
}

/* ---- the list walker (generic_checks) ---- */

static const struct smtpd_restrictions *
find_class(const struct smtpd_check_conf *c, const char *name)
{
	for (size_t i = 0; i < c->nclasses; i++)
		if (strcmp(c->classes[i].name, name) == 0)
			return c->classes[i].list;
	return NULL;
}

static enum smtpd_check_result
eval_list(struct ev *e, const struct smtpd_restrictions *r,
	  const char *reply_name, const char *cls)
{
	const struct smtpd_check_facts *f = e->f;
	enum smtpd_check_result st = SMTPD_CHECK_DUNNO;
	int saved = e->recursion++;

	if (r == NULL)
		goto out;
	for (size_t i = 0; i < r->n; i++) {
		const struct item *it = &r->v[i];
		enum smtpd_check_result tf = SMTPD_CHECK_DUNNO;

		if (e->discard)
			break;
		st = SMTPD_CHECK_DUNNO;
		switch (it->op) {
		case OP_WARN_IF_REJECT:
			if (e->warn_if_reject == 0)
				e->warn_if_reject = e->recursion;
			continue;
		case OP_PERMIT:
			st = SMTPD_CHECK_PERMIT;
			break;
		case OP_REJECT:
			st = ev_reject(e, e->conf->reject_code, "5.7.1",
				       "<%s>: %s rejected: Access denied",
				       reply_name, cls);
			break;
		case OP_DEFER:
			st = ev_reject(e, e->conf->defer_code, "4.3.2",
				       "<%s>: %s rejected: Try again later",
				       reply_name, cls);
			break;
		case OP_DEFER_IF_PERMIT:
			ev_defer_if(e, true, 450, "4.7.0", "<%s>: %s rejected: "
				    "defer_if_permit requested", reply_name, cls);
			break;
		case OP_DEFER_IF_REJECT:
			ev_defer_if(e, false, 450, "4.7.0", "<%s>: %s rejected: "
				    "defer_if_reject requested", reply_name, cls);
			break;
		case OP_SLEEP:
			if (it->num > 0)
				sleep((unsigned)it->num);
			break;
		case OP_PERMIT_MYNETWORKS:
			if (f->in_mynetworks)
				st = SMTPD_CHECK_PERMIT;
			break;
		case OP_PERMIT_SASL:
			if (f->sasl_authenticated)
				st = SMTPD_CHECK_PERMIT;
			break;
		case OP_REJECT_UNAUTH_DEST:
		case OP_DEFER_UNAUTH_DEST: {
			struct errbuf err;
			enum resolve_class dc;

			if (f->rcpt == NULL || f->resolve == NULL)
				break;
			errbuf_clear(&err);
			dc = resolve_domain_class(f->resolve, f->rcpt->domain, &err);
			if (err.msg[0] != '\0') {
				ev_warn(e, "%s", errbuf_str(&err));
				buf_reset(e->reply);
				buf_printf(e->reply, "451 4.3.0 %s: Temporary "
					   "lookup failure", f->rcpt_text);
				st = SMTPD_CHECK_DEFER;
				break;
			}
			if (dc != RESOLVE_CLASS_DEFAULT)
				break;
			if (it->op == OP_REJECT_UNAUTH_DEST)
				st = ev_reject(e, e->conf->relay_code, "5.7.1",
					       "%s: Relay access denied",
					       f->rcpt_text);
			else
				st = ev_reject(e, e->conf->relay_code - 100,
					       "4.7.1", "%s: Relay access denied",
					       f->rcpt_text);
			break;
		}
		case OP_REJECT_NON_FQDN_RCPT:
			if (f->rcpt != NULL && !f->rcpt->is_null) {
				char *k = addr_key(f->rcpt);

				st = check_non_fqdn_addr(e, k, NAME_RCPT);
				free(k);
			}
			break;
		case OP_REJECT_NON_FQDN_SENDER:
			if (f->sender && *f->sender)
				st = check_non_fqdn_addr(e, f->sender, NAME_SENDER);
			break;
		case OP_REJECT_UNLISTED_RCPT:
			/* receive_override_options =
			 * no_unknown_recipient_checks: not here */
			if (f->rcpt != NULL && !e->conf->no_unknown_rcpt) {
				char *k = addr_key(f->rcpt);

				st = check_unlisted(e, f->rcpt, k, NAME_RCPT);
				free(k);
			}
			break;
		case OP_SENDER_LOGIN:
		case OP_AUTH_SENDER_LOGIN:
		case OP_KNOWN_SENDER_LOGIN:
		case OP_UNAUTH_SENDER_LOGIN:
			st = check_sender_login(e, it->op);
			break;
		case OP_REJECT_UNLISTED_SENDER:
			if (f->sender && *f->sender) {
				struct addr a;
				const char *at = strrchr(f->sender, '@');

				memset(&a, 0, sizeof(a));
				a.local = at ? xstrndup(f->sender,
					(size_t)(at - f->sender)) : xstrdup(f->sender);
				a.domain = xstrdup(at ? at + 1 : "");
				st = check_unlisted(e, &a, f->sender, NAME_SENDER);
				free(a.local);
				free(a.domain);
			}
			break;
		case OP_REJECT_INVALID_HELO:
			st = check_helo_name(e, false);
			break;
		case OP_REJECT_NON_FQDN_HELO:
			st = check_helo_name(e, true);
			break;
		case OP_CHECK_CLIENT:
			st = access_client(e, it->table, f->client_name,
					   NAME_CLIENT, e->namaddr);
			break;
		case OP_TLS_CLIENTCERTS:
		case OP_TLS_ALL_CLIENTCERTS:
		case OP_CHECK_CCERT:
			st = check_ccert(e, it);
			break;
		case OP_CHECK_REV_CLIENT: {
			/* the PTR name, unverified, then the address (as
			 * Postfix's check_namadr_access) */
			const char *rn = client_dns_name(e, true);

			tf = access_client(e, it->table, rn, NAME_REV_CLIENT,
					   rn ? rn : "unknown");
			if (tf == SMTPD_CHECK_PERMIT && !e->discard) {
				/* Postfix forbids allowlisting by rDNS name. */
				ev_warn(e, "restriction %s returns OK for %s; "
					"this is not allowed for security "
					"reasons: use DUNNO", "check_reverse_"
					"client_hostname_access",
					rn ? rn : "unknown");
				tf = ev_server_error(e);
			}
			st = tf;
			break;
		}
		case OP_CHECK_HELO:
			if (f->helo) {
				bool found;

				st = access_domain(e, it->table, f->helo, &found,
						   false, f->helo, NAME_HELO);
			}
			break;
		case OP_CHECK_SENDER:
			if (f->sender && *f->sender)
				st = access_mail(e, it->table, f->sender,
						 NAME_SENDER);
			else if (f->sender) {
				bool found;

				st = access_key(e, it->table, e->conf->null_key,
						&found, f->sender, NAME_SENDER);
			}
			break;
		case OP_CHECK_RCPT:
			if (f->rcpt != NULL) {
				char *k = addr_key(f->rcpt);

				st = access_mail(e, it->table, k, NAME_RCPT);
				free(k);
			}
			break;
		case OP_POLICY:
			st = check_policy(e, it, reply_name, cls);
			break;
		case OP_UNKNOWN_SENDER_DOMAIN:
			if (f->sender && *f->sender)
				st = check_unknown_domain(e, f->sender, NAME_SENDER);
			break;
		case OP_UNKNOWN_RCPT_DOMAIN:
			if (f->rcpt != NULL && !f->rcpt->is_null) {
				char *k = addr_key(f->rcpt);

				st = check_unknown_domain(e, k, NAME_RCPT);
				free(k);
			}
			break;
		case OP_UNKNOWN_HELO:
			st = check_unknown_helo(e);
			break;
		case OP_UNKNOWN_CLIENT:
		case OP_UNKNOWN_REV_CLIENT:
			st = check_unknown_client(e, it->op == OP_UNKNOWN_REV_CLIENT);
			break;
		case OP_RBL_CLIENT:
			st = check_rbl_client(e, it->arg);
			break;
		case OP_RHSBL_CLIENT:
		case OP_RHSBL_REV_CLIENT:
		case OP_RHSBL_SENDER:
		case OP_RHSBL_HELO:
		case OP_RHSBL_RCPT:
			st = eval_rhsbl(e, it->op, it->arg);
			break;
		case OP_GREYLIST:
			st = check_greylist(e, reply_name, cls);
			break;
		case OP_VERIFY_SENDER:
		case OP_VERIFY_RCPT:
			st = check_verify(e, it->op == OP_VERIFY_SENDER);
			break;
		case OP_SRV_SENDER_MX: case OP_SRV_SENDER_NS: case OP_SRV_SENDER_A:
		case OP_SRV_RCPT_MX: case OP_SRV_RCPT_NS: case OP_SRV_RCPT_A:
		case OP_SRV_HELO_MX: case OP_SRV_HELO_NS: case OP_SRV_HELO_A:
		case OP_SRV_CLIENT_MX: case OP_SRV_CLIENT_NS: case OP_SRV_CLIENT_A:
		case OP_SRV_REV_MX: case OP_SRV_REV_NS: case OP_SRV_REV_A:
			st = eval_server(e, it);
			break;
		case OP_CHECK_SASL:
			st = check_sasl_access(e, it->table);
			break;
		case OP_PERMIT_AUTH_DEST: {
			int auth = f->rcpt ? auth_destination(e) : 0;

			st = auth < 0 ? retry_rcpt(e) : auth > 0
			     ? SMTPD_CHECK_PERMIT : SMTPD_CHECK_DUNNO;
			break;
		}
		case OP_PERMIT_MX_BACKUP:
			st = check_mx_backup(e, reply_name, cls);
			break;
		case OP_MULTI_RCPT_BOUNCE:
			/* at RCPT: one already accepted; later: more than one */
			if (f->sender && *f->sender == '\0' && f->rcpt_count >
			    (unsigned)(f->where == NULL ||
				       strcmp(f->where, "RCPT") != 0))
				st = ev_reject(e, e->conf->mul_rcpt_code, "5.5.3",
					       "<%s>: %s rejected: Multi-recipient "
					       "bounce", reply_name, cls);
			break;
		case OP_PLAINTEXT:
			if (!f->tls_active)
				st = ev_reject(e, e->conf->plaintext_code, "4.7.1",
					       "Session encryption is required");
			break;
		case OP_DNSWL_CLIENT:
		case OP_RHSWL_CLIENT:
			st = check_dnswl(e, it->arg, it->op == OP_RHSWL_CLIENT);
			break;
		case OP_PERMIT_INET_IF:
			if (f->client_addr && smtpd_ifaddrs_match(&e->conf->ifaddrs,
								  f->client_addr))
				st = SMTPD_CHECK_PERMIT;
			break;
		case OP_MAPS_RBL:
			st = check_maps_rbl(e);
			break;
		case OP_UNAUTH_PIPELINING:
			if (f->unauth_pipelining)
				st = ev_reject(e, 503, "5.5.0", "<%s>: %s rejected: "
					       "Improper use of SMTP command "
					       "pipelining", reply_name, cls);
			break;
		case OP_CLASS: {
			const struct smtpd_restrictions *cl =
				find_class(e->conf, it->arg);

			if (cl == NULL || e->recursion > RECURSION_MAX) {
				ev_warn(e, "restriction class \"%s\": %s",
					it->arg, cl ? "unreasonable recursion"
						    : "not defined");
				st = ev_server_error(e);
				break;
			}
			st = eval_list(e, cl, reply_name, cls);
			break;
		}
		}
		if (e->warn_if_reject >= e->recursion)
			e->warn_if_reject = 0;
		if (st != SMTPD_CHECK_DUNNO)
			break;
		if (e->dip_active && e->dir_active)
			break;
	}
out:
	e->recursion = saved;
	if (e->warn_if_reject > e->recursion)
		e->warn_if_reject = 0;
	return st;
}

/* One top-level list: warn_if_reject and defer_if_reject do not carry over
 * from one list to the next (Postfix's SMTPD_CHECK_RESET). */
static enum smtpd_check_result
eval_top(struct ev *e, const struct smtpd_restrictions *r,
	 const char *reply_name, const char *cls)
{
	e->warn_if_reject = 0;
	e->dir_active = false;
	e->recursion = 0;
	return eval_list(e, r, reply_name, cls);
}

static bool
stop(enum smtpd_check_result st)
{
	return st == SMTPD_CHECK_REJECT || st == SMTPD_CHECK_DEFER;
}

/*
 * The end of an evaluation: a defer_if_permit seen on the way turns a
 * result that did not reject or defer into that deferral.
 */
static enum smtpd_check_result
ev_finish(const struct ev *e, enum smtpd_check_result st, struct buf *reply)
{
	if (!stop(st) && e->dip_active) {
		buf_reset(reply);
		buf_puts(reply, e->dip);
		return SMTPD_CHECK_DEFER;
	}
	return st;
}

enum smtpd_check_result
smtpd_check_eval(const struct smtpd_restrictions *r,
		 const struct smtpd_check_facts *f, struct buf *reply)
{
	struct ev e;
	const char *name = f->rcpt ? f->rcpt_text : NULL;
	char rn[600];
	enum smtpd_check_result st;

	ev_init(&e, NULL, f, reply, NULL);
	if (name != NULL) {
		/* rcpt_text carries its brackets; the formats add them. */
		snprintf(rn, sizeof(rn), "%s", name[0] == '<' ? name + 1 : name);
		if (rn[0] && rn[strlen(rn) - 1] == '>' && name[0] == '<')
			rn[strlen(rn) - 1] = '\0';
	} else {
		snprintf(rn, sizeof(rn), "%s", e.namaddr);
	}
	st = eval_top(&e, r, rn, f->rcpt ? NAME_RCPT : NAME_CLIENT);
	ev_deinit(&e);
	return ev_finish(&e, st, reply);
}

enum smtpd_check_result
smtpd_check_rcpt(const struct smtpd_check_lists *l,
		 const struct smtpd_check_facts *f, struct buf *reply,
		 struct smtpd_check_actions *act)
{
	struct ev e;
	enum smtpd_check_result st;
	char rn[600];
	const char *t = f->rcpt_text ? f->rcpt_text : "";

	ev_init(&e, l->conf, f, reply, act);
	snprintf(rn, sizeof(rn), "%s", t[0] == '<' ? t + 1 : t);
	if (rn[0] && t[0] == '<' && rn[strlen(rn) - 1] == '>')
		rn[strlen(rn) - 1] = '\0';
	/* smtpd_delay_reject = no: those ran at CONNECT, HELO and MAIL */
	st = SMTPD_CHECK_DUNNO;
	if (l->conf->delay_reject)
		st = eval_top(&e, l->client, e.namaddr, NAME_CLIENT);
	if (!stop(st) && l->conf->delay_reject)
		st = eval_top(&e, l->helo, f->helo ? f->helo : "", NAME_HELO);
	if (!stop(st) && f->sender && l->conf->delay_reject)
		st = eval_top(&e, l->sender, f->sender, NAME_SENDER);
	if (!stop(st) && !smtpd_check_empty(l->relay))
		st = eval_top(&e, l->relay, rn, NAME_RCPT);
	if (!stop(st))
		st = eval_top(&e, l->rcpt, rn, NAME_RCPT);
	ev_deinit(&e);
	return ev_finish(&e, st, reply);
}

/*
 * smtpd_reject_unlisted_sender = yes: after the recipient passed, the
 * sender must exist when its domain is hosted here (as Postfix's
 * smtpd_check_rcptmap does it after the restrictions).
 */
enum smtpd_check_result
smtpd_check_unlisted_sender(const struct smtpd_check_lists *l,
			    const struct smtpd_check_facts *f, struct buf *reply)
{
	struct ev e;
	struct addr a;
	enum smtpd_check_result st;
	const char *at;

	if (l->conf == NULL || !l->conf->reject_unl_sender ||
	    f->sender == NULL || *f->sender == '\0')
		return SMTPD_CHECK_DUNNO;
	ev_init(&e, l->conf, f, reply, NULL);
	at = strrchr(f->sender, '@');
	memset(&a, 0, sizeof(a));
	a.local = at ? xstrndup(f->sender, (size_t)(at - f->sender))
		     : xstrdup(f->sender);
	a.domain = xstrdup(at ? at + 1 : "");
	st = check_unlisted(&e, &a, f->sender, NAME_SENDER);
	free(a.local);
	free(a.domain);
	ev_deinit(&e);
	return st;
}

bool
smtpd_check_delay_reject(const struct smtpd_check_lists *l)
{
	return l->conf == NULL || l->conf->delay_reject;
}

enum smtpd_check_result
smtpd_check_stage(const struct smtpd_check_lists *l, enum smtpd_check_stage stage,
		  const struct smtpd_check_facts *f, struct buf *reply,
		  struct smtpd_check_actions *act)
{
	const struct smtpd_restrictions *r;
	struct ev e;
	enum smtpd_check_result st;

	r = stage == SMTPD_STAGE_CLIENT ? l->client
	    : stage == SMTPD_STAGE_HELO ? l->helo : l->sender;
	if (smtpd_check_empty(r))
		return SMTPD_CHECK_DUNNO;
	ev_init(&e, l->conf, f, reply, act);
	if (stage == SMTPD_STAGE_CLIENT)
		st = eval_top(&e, r, e.namaddr, NAME_CLIENT);
	else if (stage == SMTPD_STAGE_HELO)
		st = eval_top(&e, r, f->helo ? f->helo : "", NAME_HELO);
	else
		st = eval_top(&e, r, f->sender ? f->sender : "", NAME_SENDER);
	ev_deinit(&e);
	return st;
}

/* One restriction list evaluated alone, as DATA and END-OF-DATA are. */
static enum smtpd_check_result
check_one(const struct smtpd_check_lists *l,
	  const struct smtpd_restrictions *r, const char *what, const char *cls,
	  const struct smtpd_check_facts *f, struct buf *reply,
	  struct smtpd_check_actions *act)
{
	struct ev e;
	enum smtpd_check_result st;

	ev_init(&e, l->conf, f, reply, act);
	st = eval_top(&e, r, what, cls);
	ev_deinit(&e);
	return ev_finish(&e, st, reply);
}

enum smtpd_check_result
smtpd_check_data(const struct smtpd_check_lists *l,
		 const struct smtpd_check_facts *f, struct buf *reply,
		 struct smtpd_check_actions *act)
{
	return check_one(l, l->data, "DATA", NAME_DATA, f, reply, act);
}

enum smtpd_check_result
smtpd_check_eod(const struct smtpd_check_lists *l,
		const struct smtpd_check_facts *f, struct buf *reply,
		struct smtpd_check_actions *act)
{
	return check_one(l, l->eod, "END-OF-MESSAGE", NAME_EOD, f, reply, act);
}

/* ---- configuration ---- */

static int
conf_int(const struct config *c, const char *name, int def)
{
	const char *v = config_get(c, name);
	long n;
	char *end;

	if (v == NULL || *v == '\0')
		return def;
	n = strtol(v, &end, 10);
	return *end == '\0' && n >= 0 && n < 1000 ? (int)n : def;
}

static long
conf_time(const struct config *c, const char *name, long def)
{
	const char *v = config_get(c, name);
	long long s;

	if (v == NULL || *v == '\0' || params_parse_time(v, 's', &s) < 0)
		return def;
	return (long)s;
}

/* *_tempfail_action: defer_if_permit (the default) or defer. */
static int
conf_tempfail(const struct config *c, const char *name, bool *defer_r,
	      struct errbuf *err)
{
	const char *v = config_get(c, name);
	const char *file;
	int line;

	*defer_r = false;
	if (v == NULL || *v == '\0' || strcasecmp(v, "defer_if_permit") == 0)
		return 0;
	if (strcasecmp(v, "defer") == 0) {
		*defer_r = true;
		return 0;
	}
	if (config_where(c, name, &file, &line))
		errbuf_set(err, "%s, line %d: %s: bad value \"%s\" (expected "
			   "defer_if_permit or defer)", file, line, name, v);
	else
		errbuf_set(err, "%s: bad value \"%s\" (expected "
			   "defer_if_permit or defer)", name, v);
	return -1;
}

static void
conf_free(struct smtpd_check_conf **cp)
{
	struct smtpd_check_conf *c = *cp;

	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nclasses; i++) {
		free(c->classes[i].name);
		smtpd_check_free(&c->classes[i].list);
	}
	free(c->classes);
	free(c->null_key);
	free(c->delim);
	free(c->policy_default_action);
	free(c->queue_dir);
	policy_dns_free(&c->dns);
	table_close(&c->rbl_reply_maps);
	free(c->def_rbl_reply);
	table_list_free(&c->sender_login_maps);
	table_list_free(&c->relay_clientcerts);
	greylist_free(&c->greylist);
	strlist_free(&c->ifaddrs);
	strlist_free(&c->maps_rbl);
	netlist_free(&c->mx_backup_nets);
	free(c);
	*cp = NULL;
}

static struct smtpd_restrictions *
compile_param(const struct config *c, const char *param,
	      const struct compile_opts *o, struct errbuf *err, int *failed)
{
	struct smtpd_restrictions *r;
	const char *value, *file;
	char reason[sizeof(err->msg)];
	int line;

	if (*failed)
		return NULL;
	value = config_get(c, param);
	r = compile_list(param, value ? value : "", o, err);
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
	struct smtpd_check_conf *cf = xcalloc(1, sizeof(*cf));
	struct strlist classes, pdms;
	struct compile_opts o;
	const char *v;
	int failed = 0;

	memset(l, 0, sizeof(*l));
	l->conf = cf;
	cf->reject_code = conf_int(c, "reject_code", 554);
	cf->defer_code = conf_int(c, "defer_code", 450);
	cf->map_reject_code = conf_int(c, "access_map_reject_code", 554);
	cf->map_defer_code = conf_int(c, "access_map_defer_code", 450);
	cf->relay_code = conf_int(c, "relay_domains_reject_code", 554);
	cf->non_fqdn_code = conf_int(c, "non_fqdn_reject_code", 504);
	cf->bad_name_code = conf_int(c, "invalid_hostname_reject_code", 501);
	cf->unlisted_code = conf_int(c, "unknown_virtual_mailbox_reject_code", 550);
	cf->unk_local_code = conf_int(c, "unknown_local_recipient_reject_code", 550);
	cf->unk_alias_code = conf_int(c, "unknown_virtual_alias_reject_code", 550);
	cf->unk_relay_code = conf_int(c, "unknown_relay_recipient_reject_code", 550);
	v = config_get(c, "smtpd_null_access_lookup_key");
	cf->null_key = xstrdup(v && *v ? v : "<>");
	v = config_get(c, "recipient_delimiter");
	cf->delim = xstrdup(v ? v : "");
	v = config_get(c, "queue_directory");
	cf->queue_dir = v && *v ? xstrdup(v) : NULL;
	strlist_init(&pdms);
	v = config_get(c, "parent_domain_matches_subdomains");
	if (v != NULL && strlist_split(&pdms, v) == 0)
		cf->parent_matches = strlist_contains(&pdms, "smtpd_access_maps");
	strlist_free(&pdms);
	cf->policy_timeout = conf_time(c, "smtpd_policy_service_timeout", 100);
	cf->policy_retry_delay = conf_time(c, "smtpd_policy_service_retry_delay", 1);
	cf->policy_tries = conf_int(c, "smtpd_policy_service_try_limit", 2);
	cf->policy_max_idle = conf_time(c, "smtpd_policy_service_max_idle", 300);
	cf->policy_max_ttl = conf_time(c, "smtpd_policy_service_max_ttl", 1000);
	cf->policy_request_limit = conf_int(c,
				"smtpd_policy_service_request_limit", 0);
	v = config_get(c, "smtpd_policy_service_default_action");
	cf->policy_default_action = xstrdup(v && *v ? v
		: "451 4.3.5 Server configuration problem");

	cf->unk_addr_code = conf_int(c, "unknown_address_reject_code", 450);
	cf->unk_client_code = conf_int(c, "unknown_client_reject_code", 450);
	cf->unk_name_code = conf_int(c, "unknown_hostname_reject_code", 450);
	cf->rbl_code = conf_int(c, "maps_rbl_reject_code", 554);
	cf->mul_rcpt_code = conf_int(c, "multi_recipient_bounce_reject_code",
				     550);
	cf->plaintext_code = conf_int(c, "plaintext_reject_code", 450);
	strlist_init(&cf->ifaddrs);
	smtpd_ifaddrs_load(&cf->ifaddrs, config_get(c, "inet_interfaces"),
			   config_get(c, "proxy_interfaces"));
	strlist_init(&cf->maps_rbl);
	v = config_get(c, "maps_rbl_domains");
	if (v != NULL && strlist_split(&cf->maps_rbl, v) < 0) {
		errbuf_set(err, "maps_rbl_domains: unbalanced braces");
		smtpd_check_lists_free(l);
		return -1;
	}
	v = config_get(c, "permit_mx_backup_networks");
	if (v != NULL && *v != '\0') {
		struct errbuf nerr;

		errbuf_clear(&nerr);
		cf->mx_backup_nets = netlist_new(v, &nerr);
		if (cf->mx_backup_nets == NULL) {
			errbuf_set(err, "permit_mx_backup_networks: %s",
				   errbuf_str(&nerr));
			smtpd_check_lists_free(l);
			return -1;
		}
	}
	if (conf_tempfail(c, "unknown_address_tempfail_action",
			  &cf->unk_addr_defer, err) < 0 ||
	    conf_tempfail(c, "unknown_helo_hostname_tempfail_action",
			  &cf->unk_name_defer, err) < 0) {
		smtpd_check_lists_free(l);
		return -1;
	}
	v = config_raw(c, "default_rbl_reply");
	if (v != NULL && *v != '\0')
		cf->def_rbl_reply = xstrdup(v);
	v = config_get(c, "rbl_reply_maps");
	if (v != NULL && *v != '\0') {
		struct errbuf terr;

		errbuf_clear(&terr);
		cf->rbl_reply_maps = table_open(v, TABLE_F_FOLD, &terr);
		if (cf->rbl_reply_maps == NULL) {
			errbuf_set(err, "rbl_reply_maps: %s", errbuf_str(&terr));
			smtpd_check_lists_free(l);
			return -1;
		}
	}
	v = config_get(c, "smtpd_sender_login_maps");
	if (v != NULL && *v != '\0') {
		struct errbuf terr;

		errbuf_clear(&terr);
		cf->sender_login_maps = table_list_open(v, TABLE_F_FOLD, &terr);
		if (cf->sender_login_maps == NULL) {
			errbuf_set(err, "smtpd_sender_login_maps: %s",
				   errbuf_str(&terr));
			smtpd_check_lists_free(l);
			return -1;
		}
	}
	if (table_list_open_param(&cf->relay_clientcerts, "relay_clientcerts",
				  config_get(c, "relay_clientcerts"), 0,
				  &cf->ccert_blocking, err) < 0) {
		smtpd_check_lists_free(l);
		return -1;
	}
	v = config_get(c, "smtpd_sasl_auth_enable");
	cf->sasl_enable = v != NULL && strcasecmp(v, "yes") == 0;
	if ((cf->greylist = greylist_new(c, err)) == NULL ||
	    verify_smtpd_conf(c, &cf->verify, err) < 0) {
		smtpd_check_lists_free(l);
		return -1;
	}
	v = config_get(c, "facteur_dns_servers");
	{
		struct errbuf derr;

		errbuf_clear(&derr);
		cf->dns = policy_dns_new(v, DNS_TIMEOUT_MS, &derr);
		if (cf->dns == NULL) {
			errbuf_set(err, "%s", errbuf_str(&derr));
			smtpd_check_lists_free(l);
			return -1;
		}
	}

	v = config_get(c, "smtpd_delay_reject");
	cf->delay_reject = true;
	if (v != NULL && params_parse_bool(v, &cf->delay_reject) < 0) {
		errbuf_set(err, "smtpd_delay_reject: bad value \"%.100s\" "
			   "(expected yes or no)", v);
		smtpd_check_lists_free(l);
		return -1;
	}
	{
		unsigned ovr;

		if (receive_override_parse(config_get(c,
					   "receive_override_options"), &ovr,
					   err) < 0) {
			smtpd_check_lists_free(l);
			return -1;
		}
		cf->no_unknown_rcpt = (ovr & RECV_OVR_NO_UNKNOWN_RCPT) != 0;
	}
	v = config_get(c, "smtpd_reject_unlisted_recipient");
	cf->reject_unl_rcpt = true;
	if (v != NULL && params_parse_bool(v, &cf->reject_unl_rcpt) < 0) {
		errbuf_set(err, "smtpd_reject_unlisted_recipient: bad value "
			   "\"%.100s\" (expected yes or no)", v);
		smtpd_check_lists_free(l);
		return -1;
	}
	v = config_get(c, "show_user_unknown_table_name");
	{
		bool show = true;

		if (v != NULL && params_parse_bool(v, &show) < 0) {
			errbuf_set(err, "show_user_unknown_table_name: bad value "
				   "\"%.100s\" (expected yes or no)", v);
			smtpd_check_lists_free(l);
			return -1;
		}
		cf->hide_unk_table = !show;
	}
	v = config_get(c, "smtpd_reject_unlisted_sender");
	cf->reject_unl_sender = false;
	if (v != NULL && params_parse_bool(v, &cf->reject_unl_sender) < 0) {
		errbuf_set(err, "smtpd_reject_unlisted_sender: bad value "
			   "\"%.100s\" (expected yes or no)", v);
		smtpd_check_lists_free(l);
		return -1;
	}

	strlist_init(&classes);
	v = config_get(c, "smtpd_restriction_classes");
	if (v != NULL && strlist_split(&classes, v) < 0) {
		errbuf_set(err, "smtpd_restriction_classes: unbalanced braces");
		failed = 1;
	}
	o.classes = &classes;
	o.conf = cf;
	o.runtime = false;
	if (!failed && classes.n) {
		cf->classes = xcalloc(classes.n, sizeof(*cf->classes));
		for (size_t i = 0; i < classes.n && !failed; i++) {
			const char *cv = config_get(c, classes.v[i]);

			if (cv == NULL || *cv == '\0') {
				errbuf_set(err, "smtpd_restriction_classes: "
					   "restriction class \"%s\" needs a "
					   "definition (%s = ...)", classes.v[i],
					   classes.v[i]);
				failed = 1;
				break;
			}
			cf->classes[i].name = xstrdup(classes.v[i]);
			cf->nclasses++;
			cf->classes[i].list = compile_param(c, classes.v[i], &o,
							    err, &failed);
		}
	}
	l->client = compile_param(c, "smtpd_client_restrictions", &o, err, &failed);
	l->helo = compile_param(c, "smtpd_helo_restrictions", &o, err, &failed);
	l->sender = compile_param(c, "smtpd_sender_restrictions", &o, err, &failed);
	l->relay = compile_param(c, "smtpd_relay_restrictions", &o, err, &failed);
	l->rcpt = compile_param(c, "smtpd_recipient_restrictions", &o, err, &failed);
	l->data = compile_param(c, "smtpd_data_restrictions", &o, err, &failed);
	l->eod = compile_param(c, "smtpd_end_of_data_restrictions", &o, err,
			       &failed);
	strlist_free(&classes);
	if (!failed && smtpd_check_empty(l->relay) && smtpd_check_empty(l->rcpt)) {
		errbuf_set(err, "smtpd_relay_restrictions and "
			   "smtpd_recipient_restrictions are both empty: at least "
			   "one must end with reject_unauth_destination or "
			   "defer_unauth_destination (this would be an open relay)");
		failed = 1;
	}
	if (!failed && (l->knobs = smtpd_knobs_new(c, err)) == NULL)
		failed = 1;
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
	smtpd_check_free(&l->data);
	smtpd_check_free(&l->eod);
	conf_free(&l->conf);
	smtpd_knobs_free(&l->knobs);
}

static bool
blocking(const struct smtpd_restrictions *r, bool tables)
{
	return r != NULL && (r->blocking || (tables && r->table_blocking));
}

static bool
lists_blocking(const struct smtpd_check_lists *l, bool tables)
{
	if (blocking(l->client, tables) || blocking(l->helo, tables) ||
	    blocking(l->sender, tables) || blocking(l->relay, tables) ||
	    blocking(l->rcpt, tables) || blocking(l->data, tables) ||
	    blocking(l->eod, tables))
		return true;
	if (l->conf != NULL)
		for (size_t i = 0; i < l->conf->nclasses; i++)
			if (blocking(l->conf->classes[i].list, tables))
				return true;
	return false;
}

bool
smtpd_check_lists_blocking(const struct smtpd_check_lists *l)
{
	return lists_blocking(l, true);
}

bool
smtpd_check_lists_need_worker(const struct smtpd_check_lists *l)
{
	return lists_blocking(l, false);
}
