/*
 * rewrite.h - address rewriting as Postfix's cleanup(8) does it, in its
 * order: the trivial-rewrite "local" context (append_at_myorigin,
 * append_dot_mydomain) or "remote" context (remote_header_rewrite_domain),
 * then sender_canonical_maps / recipient_canonical_maps, then
 * canonical_maps (each for the classes named by its *_classes parameter),
 * then masquerade_domains (masquerade_classes, masquerade_exceptions).
 * virtual_alias_maps come after this (resolve.c).
 * Envelope addresses are always rewritten; message headers only for
 * clients matched by local_header_rewrite_clients, or, for the others,
 * when remote_header_rewrite_domain is set.
 * Lookups may block when a map does (rewrite_ctx_blocking): then call from
 * a worker. Must not: decide where mail goes, or change anything in a
 * message but the addresses of the address headers.
 */
#ifndef FACTEUR_REWRITE_H
#define FACTEUR_REWRITE_H
#include <stdbool.h>
#include <stddef.h>

#include "core/lib/buf.h"
#include "core/lib/errbuf.h"

struct settings;
struct rewrite_ctx;

/* canonical_classes / masquerade_classes bits */
enum rewrite_class {
	REWRITE_ENV_SENDER = 1 << 0,
	REWRITE_ENV_RCPT   = 1 << 1,
	REWRITE_HDR_SENDER = 1 << 2,
	REWRITE_HDR_RCPT   = 1 << 3,
};

/* Header rewriting context for one message. */
enum rewrite_hdr_mode {
	REWRITE_HDR_NONE = 0,	/* remote client, no remote_header_rewrite_domain */
	REWRITE_HDR_LOCAL,	/* local client: $myorigin / $mydomain appended */
	REWRITE_HDR_REMOTE,	/* remote client: $remote_header_rewrite_domain */
};

/* Is a domain local (mydestination)? For the bare "user" canonical key. */
typedef bool (*rewrite_local_fn)(void *arg, const char *domain);

/* NULL + err ("canonical_maps: ...") on a configuration error. */
struct rewrite_ctx *rewrite_ctx_new(const struct settings *s,
				    rewrite_local_fn is_local, void *arg,
				    struct errbuf *err);
void rewrite_ctx_free(struct rewrite_ctx **cp);
bool rewrite_ctx_blocking(const struct rewrite_ctx *c);

/*
 * Rewrites one envelope address (key form "local@domain", "" for <>):
 * cls is REWRITE_ENV_SENDER or REWRITE_ENV_RCPT. *out_r gets an owned
 * key (the same text when nothing applies). Returns 0, or -1 with err set
 * when a map cannot answer (the caller answers 4xx).
 */
int rewrite_envelope(struct rewrite_ctx *c, unsigned cls, const char *addr,
		     char **out_r, struct errbuf *err);

/*
 * The header mode for a client (local_header_rewrite_clients:
 * permit_inet_interfaces, permit_mynetworks, permit_sasl_authenticated,
 * check_address_map TYPE:TABLE / bare TYPE:TABLE). client_addr NULL means
 * local submission (always REWRITE_HDR_LOCAL).
 */
enum rewrite_hdr_mode rewrite_hdr_mode(struct rewrite_ctx *c,
				       const char *client_addr,
				       bool in_mynetworks, bool sasl_auth);

/*
 * Rewrites the address headers (From, Sender, Reply-To, Return-Receipt-To,
 * Errors-To, Resent-From/-Sender/-Reply-To as senders; To, Cc, Bcc,
 * Apparently-To, Resent-To/-Cc/-Bcc as recipients) of content (header
 * section, empty line, body). Only the addr-spec text is replaced;
 * display names, comments and folding stay. When something changed, out
 * (reset first) gets the new content and *changed is set. Returns 0, or
 * -1 + err on a lookup failure (nothing is to be kept then).
 */
int rewrite_headers(struct rewrite_ctx *c, enum rewrite_hdr_mode mode,
		    const char *content, size_t len, struct buf *out,
		    bool *changed, struct errbuf *err);

/*
 * Both at once for a whole message (local submission): *sender (owned,
 * key form) and content (replaced when a header changed). -1 + err on a
 * lookup failure, nothing changed then.
 */
int rewrite_message(struct rewrite_ctx *c, enum rewrite_hdr_mode mode,
		    char **sender, struct buf *content, struct errbuf *err);

/* Parses a *_classes value into bits; -1 + err naming param on a bad name. */
int rewrite_parse_classes(const char *param, const char *value, unsigned *bits,
			  struct errbuf *err);

/* Masquerades one key address with a masquerade_domains value (pure; for
 * tests): returns an owned new key, or NULL when unchanged. */
char *rewrite_masquerade(const char *masq_domains, const char *addr);

#endif
