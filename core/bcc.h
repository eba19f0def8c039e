/*
 * bcc.h - automatic blind carbon copies, as Postfix's cleanup(8) adds them
 * when a message enters the queue (SMTP and local submission alike):
 * sender_bcc_maps looked up with the (rewritten) envelope sender,
 * recipient_bcc_maps with each original recipient after canonical
 * rewriting (before virtual aliases), then always_bcc. Lookup order:
 * user+ext@domain, user@domain, [user+ext, user for mydestination
 * domains], @domain. Each BCC address is resolved like a recipient
 * (canonical, virtual_alias_maps, alias_maps); the caller adds the
 * destinations it does not have yet, with NOTIFY=NEVER, and never puts
 * them in a header. A table that cannot answer fails the whole message
 * (the caller answers 4xx): a copy is never silently lost.
 * May block when a table does (bcc_ctx_blocking): call from a worker.
 * Must not: touch the message content, or decide delivery.
 */
#ifndef FACTEUR_BCC_H
#define FACTEUR_BCC_H
#include <stdbool.h>
#include <stddef.h>

#include "core/lib/errbuf.h"
#include "core/resolve.h"

struct settings;
struct bcc_ctx;

/* The BCC copies of one message: orig[i] is the BCC address, res[i]
 * its destinations (an address that is unknown here is one destination
 * with unknown set, so that the queue manager reports it). */
struct bcc_list {
	char                 **orig;	/* owned */
	struct resolve_result *res;	/* owned */
	size_t                 n;
};

/* Opens the maps named by s; NULL + err on a configuration error. */
struct bcc_ctx *bcc_ctx_new(const struct settings *s, struct errbuf *err);
void bcc_ctx_free(struct bcc_ctx **cp);
/* False when no BCC parameter is set (nothing to do). */
bool bcc_ctx_active(const struct bcc_ctx *c);
bool bcc_ctx_blocking(const struct bcc_ctx *c);

/*
 * Finds and resolves the BCC copies for sender ("" for <>, key form,
 * already rewritten) and the original recipients rcpts[0..n) (key form,
 * as received). Returns 0 (out filled, maybe empty; caller frees with
 * bcc_list_free), or -1 + err when a lookup could not be answered.
 */
int  bcc_expand(struct bcc_ctx *c, struct resolve_ctx *rc, const char *sender,
		const char *const *rcpts, size_t n, struct bcc_list *out,
		struct errbuf *err);
void bcc_list_free(struct bcc_list *l);

#endif
