/*
 * generic.c - smtp_generic_maps (see generic.h): a rewrite_ctx whose only
 * table is smtp_generic_maps, for every address class, without
 * masquerading and without appending domains, applied to a copy of the
 * envelope and the address headers.
 * Must not: touch the queue file, or rewrite for local or LMTP delivery.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/params.h"
#include "core/queue.h"
#include "core/resolve.h"
#include "core/rewrite.h"
#include "delivery/generic.h"

struct generic_ctx {
	struct rewrite_ctx *rw;		/* NULL: no smtp_generic_maps */
	struct resolve_ctx *rc;
	char               *myorigin;
};

/* generic(5): the bare user form for $myorigin and mydestination domains */
static bool
generic_is_local(void *arg, const char *domain)
{
	struct generic_ctx *c = arg;
	struct errbuf err;

	if (strcasecmp(domain, c->myorigin) == 0)
		return true;
	errbuf_clear(&err);
	return c->rc != NULL &&
	       resolve_domain_class(c->rc, domain, &err) == RESOLVE_CLASS_LOCAL;
}

struct generic_ctx *
generic_ctx_new(const struct settings *s, struct resolve_ctx *rc,
		struct errbuf *err)
{
	struct generic_ctx *c = xcalloc(1, sizeof(*c));
	struct settings g;
	struct strlist l;
	bool prop = false;

	c->rc = rc;
	c->myorigin = xstrdup(s->myorigin ? s->myorigin : "");
	if (s->smtp_generic_maps == NULL || *s->smtp_generic_maps == '\0')
		return c;
	strlist_init(&l);
	strlist_split(&l, s->propagate_unmatched_extensions
			  ? s->propagate_unmatched_extensions : "");
	for (size_t i = 0; i < l.n; i++)
		if (strcasecmp(l.v[i], "generic") == 0)
			prop = true;
	strlist_free(&l);
	/* a copy of the settings that names only the generic table; the
	 * context copies what it keeps */
	g = *s;
	g.canonical_maps = s->smtp_generic_maps;
	g.sender_canonical_maps = (char *)"";
	g.recipient_canonical_maps = (char *)"";
	g.canonical_classes = (char *)"envelope_sender, envelope_recipient, "
					"header_sender, header_recipient";
	g.sender_canonical_classes = (char *)"";
	g.recipient_canonical_classes = (char *)"";
	g.masquerade_domains = (char *)"";
	g.masquerade_exceptions = (char *)"";
	g.masquerade_classes = (char *)"";
	g.remote_header_rewrite_domain = (char *)"";
	g.local_header_rewrite_clients = (char *)"";
	g.propagate_unmatched_extensions = (char *)(prop ? "canonical" : "");
	g.append_at_myorigin = false;
	g.append_dot_mydomain = false;
	c->rw = rewrite_ctx_new(&g, generic_is_local, c, err);
	if (c->rw == NULL) {
		const char *why = errbuf_str(err);

		/* the engine names canonical_maps: say which table it is */
		if (strncmp(why, "canonical_maps", 14) == 0) {
			char *t = xstrdup(why + 14);

			errbuf_set(err, "smtp_generic_maps%s", t);
			free(t);
		}
		generic_ctx_free(&c);
		return NULL;
	}
	return c;
}

void
generic_ctx_free(struct generic_ctx **cp)
{
	struct generic_ctx *c = *cp;

	if (c == NULL)
		return;
	rewrite_ctx_free(&c->rw);
	free(c->myorigin);
	free(c);
	*cp = NULL;
}

bool
generic_ctx_active(const struct generic_ctx *c)
{
	return c != NULL && c->rw != NULL;
}

static void
generic_fail(struct errbuf *err)
{
	char *why = xstrdup(errbuf_str(err));

	errbuf_set(err, "smtp_generic_maps: %s", why);
	free(why);
}

int
generic_rewrite(struct generic_ctx *c, const struct queue_env *env,
		const char *content, size_t len, struct generic_msg *out,
		struct errbuf *err)
{
	bool changed = false;

	memset(out, 0, sizeof(*out));
	buf_init(&out->content, 0);
	if (!generic_ctx_active(c))
		return 0;
	if (rewrite_envelope(c->rw, REWRITE_ENV_SENDER, env->sender,
			     &out->sender, err) < 0)
		goto fail;
	out->rcpt = xcalloc(env->nrcpt ? env->nrcpt : 1, sizeof(*out->rcpt));
	for (size_t i = 0; i < env->nrcpt; i++) {
		if (rewrite_envelope(c->rw, REWRITE_ENV_RCPT, env->rcpt[i].addr,
				     &out->rcpt[i], err) < 0)
			goto fail;
		out->nrcpt++;
	}
	/* REMOTE without a remote_header_rewrite_domain: nothing appended */
	if (rewrite_headers(c->rw, REWRITE_HDR_REMOTE, content, len,
			    &out->content, &changed, err) < 0)
		goto fail;
	if (!changed)
		buf_reset(&out->content);
	out->active = true;
	return 0;
fail:
	generic_fail(err);
	generic_msg_free(out);
	return -1;
}

void
generic_msg_free(struct generic_msg *m)
{
	free(m->sender);
	for (size_t i = 0; i < m->nrcpt; i++)
		free(m->rcpt[i]);
	free(m->rcpt);
	buf_free(&m->content);
	memset(m, 0, sizeof(*m));
}
