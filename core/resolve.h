/*
 * resolve.h - what a recipient address means here: its domain class, its
 * virtual alias expansion, and for hosted mailboxes the Maildir path.
 * Domain classes follow Postfix's address classes: virtual_alias_domains,
 * virtual_mailbox_domains, mydestination (local), relay_domains, other.
 * Alias expansion: virtual_alias_maps applies to every recipient, with
 * multiple comma-separated targets, recursion (an address that maps to
 * itself among others is kept, as in virtual(5)), a loop/depth limit
 * (virtual_alias_recursion_limit) and a fan-out limit
 * (virtual_alias_expansion_limit). Lookups follow addr_find.h.
 * Before that, a recipient is rewritten as cleanup does (rewrite.h:
 * recipient_canonical_maps, canonical_maps, masquerading for
 * envelope_recipient); after virtual_alias_maps, an address in a
 * mydestination domain is looked up in alias_maps (rewrite_alias.h).
 * May block when a table is blocking (resolve_ctx_blocking): then call it
 * from a worker. Must not: decide relay permission (smtpd_check does).
 */
#ifndef FACTEUR_RESOLVE_H
#define FACTEUR_RESOLVE_H
#include <stdbool.h>
#include <sys/types.h>

#include "core/addr.h"
#include "core/lib/errbuf.h"
#include "core/params.h"

enum resolve_class {
	RESOLVE_CLASS_VIRTUAL = 1,	/* virtual_mailbox_domains: Maildir */
	RESOLVE_CLASS_ALIAS,		/* virtual_alias_domains (must be aliased) */
	RESOLVE_CLASS_LOCAL,		/* mydestination */
	RESOLVE_CLASS_RELAY,		/* relay_domains */
	RESOLVE_CLASS_DEFAULT,		/* anything else: needs relay permission */
};

enum resolve_status {
	RESOLVE_OK = 0,
	RESOLVE_UNKNOWN,	/* 550 5.1.1 user unknown (hosted domain) */
	RESOLVE_TEMPFAIL,	/* 451 4.3.0 lookup failure */
	RESOLVE_CONFIG,		/* 451 4.3.5 configuration error */
	RESOLVE_LOOP,		/* 554 5.4.6 alias loop / expansion limit */
};

/* One final destination after alias expansion. */
struct resolve_dest {
	char   *addr;		/* final address, key form (local@domain) */
	enum resolve_class cls;
	char   *maildir;	/* RESOLVE_CLASS_VIRTUAL: absolute path, ends in "/";
				   NULL if the map value is not a Maildir (mbox) */
	bool    unknown;	/* an alias target that does not exist: kept so
				   the other targets get the mail; it is
				   bounced when the queue delivers it */
	uid_t   uid;		/* from virtual_uid_maps (static: or per user) */
	gid_t   gid;
};

struct resolve_result {
	struct resolve_dest *v;	/* owned */
	size_t  n;
	char   *reason;		/* owned; for UNKNOWN/TEMPFAIL/CONFIG/LOOP, the
				   text for the reply/log ("User unknown in
				   virtual mailbox table") */
	char   *warning;	/* owned; RESOLVE_OK with an alias_maps target
				   refused (|command, /file, :include:): the
				   line to log */
	char   *uaddr;		/* owned; RESOLVE_UNKNOWN: the address found
				   unknown (key form), when there is one */
	enum resolve_class ucls;	/* RESOLVE_UNKNOWN: its class (which
				   unknown_*_reject_code applies), 0 if none */
};

struct resolve_ctx;

/* Opens the maps named by s. NULL + err on a configuration error. */
struct resolve_ctx *resolve_ctx_new(const struct settings *s, struct errbuf *err);
/*
 * The same for a receiving service (an smtpd listener, pickup): it honours
 * receive_override_options = no_address_mappings (no canonical mapping,
 * masquerading or virtual alias expansion; an address found in
 * virtual_alias_maps is valid and kept as it is). NULL + err also for an
 * unknown receive_override_options name.
 */
struct resolve_ctx *resolve_ctx_new_receiving(const struct settings *s,
					      struct errbuf *err);
void resolve_ctx_free(struct resolve_ctx **cp);
bool resolve_ctx_blocking(const struct resolve_ctx *c);
/* The rewriting (canonical, masquerade) and alias_maps of this context. */
struct rewrite_ctx *resolve_rewriter(struct resolve_ctx *c);
struct alias_db *resolve_local_aliases(struct resolve_ctx *c);

/* The class of a domain ("" = local, as Postfix appends $myorigin...). */
enum resolve_class resolve_domain_class(struct resolve_ctx *c, const char *domain,
					struct errbuf *err);
/*
 * Expands and resolves one recipient. RESOLVE_OK fills r->v with at least
 * one destination. For RESOLVE_CLASS_DEFAULT/RELAY destinations nothing is
 * looked up beyond alias expansion. A domainless address gets $myorigin.
 */
enum resolve_status resolve_rcpt(struct resolve_ctx *c, const struct addr *a,
				 struct resolve_result *r);
/* The same; flags RESOLVE_F_RELAY_RCPT: an unaliased relay_domains address
 * must be in relay_recipient_maps (when set), as smtpd checks it. */
#define RESOLVE_F_RELAY_RCPT	1u
enum resolve_status resolve_rcpt_ex(struct resolve_ctx *c, const struct addr *a,
				    struct resolve_result *r, unsigned flags);
bool resolve_relay_rcpt_maps_set(const struct resolve_ctx *c);
/*
 * After RESOLVE_UNKNOWN, when the unknown recipient is accepted anyway
 * (smtpd_reject_unlisted_recipient = no): r becomes one destination, the
 * address found unknown, marked unknown (bounced by the queue) except an
 * unlisted relay recipient, which is relayed. Nothing if r->uaddr is NULL.
 */
void resolve_result_keep_unknown(struct resolve_result *r);
/* Maildir lookup only (at delivery time, for a queued final address). */
enum resolve_status resolve_mailbox(struct resolve_ctx *c, const char *addr,
				    struct resolve_dest *d, char **reason_r);
void resolve_result_free(struct resolve_result *r);
void resolve_dest_free(struct resolve_dest *d);

#endif
