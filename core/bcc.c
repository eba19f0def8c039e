/*
 * bcc.c - always_bcc, sender_bcc_maps and recipient_bcc_maps (see bcc.h):
 * finds the BCC addresses of one message and resolves each like a
 * recipient. Used by the SMTP commit (smtpd_commit.c) and local
 * submission (pickup.c), once per message as it enters the queue.
 * Must not: touch the message content, keep state between messages, or
 * drop a copy when a table cannot answer (that is an error for the
 * caller to turn into 4xx). receive_override_options = no_address_mappings
 * turns it off.
 */
#include <stdlib.h>
#include <string.h>

#include "backends/addr_find.h"
#include "backends/table.h"
#include "core/addr.h"
#include "core/bcc.h"
#include "core/lib/buf.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/params.h"
#include "core/receive_override.h"
#include "core/rewrite.h"

struct bcc_ctx {
	struct table_list *sender_maps, *rcpt_maps;
	char              *always;	/* always_bcc, or NULL */
	char              *delimiter;	/* recipient_delimiter */
	bool               blocking;
};

struct bcc_ctx *
bcc_ctx_new(const struct settings *s, struct errbuf *err)
{
	struct bcc_ctx *c = xcalloc(1, sizeof(*c));
	const char *a = s->always_bcc ? s->always_bcc : "";
	unsigned ovr;

	if (receive_override_parse(s->receive_override_options, &ovr,
				   err) < 0) {
		free(c);
		return NULL;
	}
	c->delimiter = xstrdup(s->recipient_delimiter ? s->recipient_delimiter
						      : "");
	if (ovr & RECV_OVR_NO_ADDRESS_MAPPINGS)
		return c;	/* no automatic BCC: an inactive context */
	if (table_list_open_param(&c->sender_maps, "sender_bcc_maps",
				  s->sender_bcc_maps ? s->sender_bcc_maps : "",
				  TABLE_F_FOLD, &c->blocking, err) < 0 ||
	    table_list_open_param(&c->rcpt_maps, "recipient_bcc_maps",
				  s->recipient_bcc_maps ? s->recipient_bcc_maps
							: "",
				  TABLE_F_FOLD, &c->blocking, err) < 0) {
		bcc_ctx_free(&c);
		return NULL;
	}
	while (*a == ' ' || *a == '\t')
		a++;
	if (*a != '\0') {
		struct addr p;
		const char *why;
		size_t len = strlen(a);

		while (len > 0 && (a[len - 1] == ' ' || a[len - 1] == '\t'))
			len--;
		c->always = xstrndup(a, len);
		if (addr_parse_mailbox(c->always, &p, &why) < 0) {
			errbuf_set(err, "always_bcc: bad address \"%s\": %s",
				   c->always, why);
			bcc_ctx_free(&c);
			return NULL;
		}
		addr_free(&p);
	}
	return c;
}

void
bcc_ctx_free(struct bcc_ctx **cp)
{
	struct bcc_ctx *c = *cp;

	if (c == NULL)
		return;
	table_list_free(&c->sender_maps);
	table_list_free(&c->rcpt_maps);
	free(c->always);
	free(c->delimiter);
	free(c);
	*cp = NULL;
}

bool
bcc_ctx_active(const struct bcc_ctx *c)
{
	return c != NULL && (c->always != NULL ||
			     (c->sender_maps != NULL &&
			      !table_list_empty(c->sender_maps)) ||
			     (c->rcpt_maps != NULL &&
			      !table_list_empty(c->rcpt_maps)));
}

bool
bcc_ctx_blocking(const struct bcc_ctx *c)
{
	return c != NULL && c->blocking;
}

/*
 * Looks key ("local@domain") up in l with Postfix's address search order.
 * 1 with the value added to found (once), 0 not found, -1 + err.
 */
static int
bcc_lookup(struct bcc_ctx *c, struct resolve_ctx *rc, struct table_list *l,
	   const char *param, const char *key, struct strlist *found,
	   struct errbuf *err)
{
	const char *at = strrchr(key, '@');
	char *local = xstrndup(key, at ? (size_t)(at - key) : strlen(key));
	const char *domain = at ? at + 1 : "";
	unsigned flags = 0;
	struct errbuf derr;
	struct buf val;
	enum table_status st;
	int rc_ = 0;

	errbuf_clear(&derr);
	if (*domain == '\0' ||
	    resolve_domain_class(rc, domain, &derr) == RESOLVE_CLASS_LOCAL)
		flags |= ADDR_FIND_BARE_USER;
	buf_init(&val, 0);
	st = addr_find(l, local, domain, c->delimiter, flags, &val, NULL, err);
	if (st == TABLE_FOUND) {
		const char *v = buf_cstr(&val);
		size_t len;

		while (*v == ' ' || *v == '\t')
			v++;
		len = strlen(v);
		while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
			len--;
		if (len > 0) {
			char *one = xstrndup(v, len);

			if (!strlist_contains(found, one))
				strlist_add(found, one);
			free(one);
		}
		rc_ = 1;
	} else if (st != TABLE_NOTFOUND) {
		char *why = xstrdup(errbuf_str(err));

		errbuf_set(err, "%s lookup error for \"%s\": %s", param, key, why);
		free(why);
		rc_ = -1;
	}
	buf_free(&val);
	free(local);
	return rc_;
}

/* Resolves one BCC address into out (appended). 0, or -1 + err. */
static int
bcc_resolve(struct resolve_ctx *rc, const char *bcc, struct bcc_list *out,
	    struct errbuf *err)
{
	struct resolve_result r;
	enum resolve_status rs;
	const char *why;
	struct addr a;
	char *key;

	memset(&r, 0, sizeof(r));
	if (addr_parse_mailbox(bcc, &a, &why) < 0) {
		errbuf_set(err, "BCC address \"%s\": %s", bcc, why);
		return -1;
	}
	key = addr_key(&a);
	rs = resolve_rcpt(rc, &a, &r);
	addr_free(&a);
	if (rs == RESOLVE_UNKNOWN || rs == RESOLVE_LOOP) {
		/*
		 * Not deliverable here: queued as it is, so the queue
		 * manager reports it (to nobody but the log: NOTIFY=NEVER).
		 */
		resolve_result_free(&r);
		memset(&r, 0, sizeof(r));
		r.v = xcalloc(1, sizeof(*r.v));
		r.v[0].addr = xstrdup(key);
		r.v[0].cls = RESOLVE_CLASS_DEFAULT;
		r.v[0].unknown = true;
		r.n = 1;
	} else if (rs != RESOLVE_OK) {
		errbuf_set(err, "BCC address \"%s\": %s", key,
			   r.reason ? r.reason : "temporary lookup failure");
		resolve_result_free(&r);
		free(key);
		return -1;
	}
	out->orig = xrealloc(out->orig, (out->n + 1) * sizeof(*out->orig));
	out->res = xrealloc(out->res, (out->n + 1) * sizeof(*out->res));
	out->orig[out->n] = key;
	out->res[out->n] = r;
	out->n++;
	return 0;
}

int
bcc_expand(struct bcc_ctx *c, struct resolve_ctx *rc, const char *sender,
	   const char *const *rcpts, size_t n, struct bcc_list *out,
	   struct errbuf *err)
{
	struct rewrite_ctx *rw = resolve_rewriter(rc);
	struct strlist found;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (!bcc_ctx_active(c))
		return 0;
	strlist_init(&found);
	if (sender != NULL && *sender != '\0' &&
	    c->sender_maps != NULL && !table_list_empty(c->sender_maps) &&
	    bcc_lookup(c, rc, c->sender_maps, "sender_bcc_maps", sender,
		       &found, err) < 0)
		goto out;
	for (size_t i = 0; i < n && c->rcpt_maps != NULL &&
	     !table_list_empty(c->rcpt_maps); i++) {
		char *key = NULL;
		int lr;

		if (rcpts[i] == NULL || *rcpts[i] == '\0')
			continue;
		/* the key is the address after canonical rewriting */
		if (rewrite_envelope(rw, REWRITE_ENV_RCPT, rcpts[i], &key,
				     err) < 0)
			goto out;
		lr = bcc_lookup(c, rc, c->rcpt_maps, "recipient_bcc_maps", key,
				&found, err);
		free(key);
		if (lr < 0)
			goto out;
	}
	if (c->always != NULL && !strlist_contains(&found, c->always))
		strlist_add(&found, c->always);
	for (size_t i = 0; i < found.n; i++)
		if (bcc_resolve(rc, found.v[i], out, err) < 0)
			goto out;
	ret = 0;
out:
	strlist_free(&found);
	if (ret < 0)
		bcc_list_free(out);
	return ret;
}

void
bcc_list_free(struct bcc_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->orig[i]);
		resolve_result_free(&l->res[i]);
	}
	free(l->orig);
	free(l->res);
	memset(l, 0, sizeof(*l));
}
