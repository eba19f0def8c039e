/*
 * generic.h - smtp_generic_maps (Postfix's generic(5)): the SMTP client
 * rewrites the envelope sender, the envelope recipients and the address
 * headers (From, Sender, Reply-To, To, Cc, Bcc, Resent-*, Errors-To,
 * Return-Receipt-To, Apparently-To) of mail leaving through smtp, typically
 * to turn a local address into a valid Internet address. Lookup order:
 * user+ext@domain, user@domain, user+ext / user (only when domain is
 * $myorigin or a mydestination domain), @domain; a result "@domain" keeps
 * the user. Local deliveries and LMTP never see it. Uses the rewriting
 * engine of core/rewrite.h with smtp_generic_maps as its only table.
 * May block when a table does: call from a worker.
 * Must not: change the queued message (the rewritten copy is separate).
 */
#ifndef FACTEUR_GENERIC_H
#define FACTEUR_GENERIC_H
#include <stdbool.h>
#include <stddef.h>

#include "core/lib/buf.h"
#include "core/lib/errbuf.h"

struct settings;
struct resolve_ctx;
struct queue_env;
struct generic_ctx;

/* The rewritten copy of one message, for SMTP next hops. */
struct generic_msg {
	bool    active;		/* set: use the fields below */
	char   *sender;		/* owned */
	char  **rcpt;		/* owned; one per env->rcpt, same order */
	size_t  nrcpt;
	struct buf content;	/* empty when no header changed */
};

/* NULL + err on a configuration error; an empty smtp_generic_maps gives
 * an inactive context. rc (for mydestination) must outlive it. */
struct generic_ctx *generic_ctx_new(const struct settings *s,
				    struct resolve_ctx *rc, struct errbuf *err);
void generic_ctx_free(struct generic_ctx **cp);
bool generic_ctx_active(const struct generic_ctx *c);

/*
 * Fills out (zeroed by the caller) for env and its content. With an
 * inactive context, 0 and out stays inactive. -1 + err ("smtp_generic_maps
 * ...") when a table cannot answer: SMTP deliveries are then deferred.
 */
int  generic_rewrite(struct generic_ctx *c, const struct queue_env *env,
		     const char *content, size_t len, struct generic_msg *out,
		     struct errbuf *err);
void generic_msg_free(struct generic_msg *m);

#endif
