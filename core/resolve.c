/*
 * resolve.c - what a recipient means here: domain class (Postfix's address
 * classes), virtual alias expansion (recursive, deduplicated, limited), and
 * for hosted mailboxes the Maildir path and owner from virtual_mailbox_maps,
 * virtual_uid_maps and virtual_gid_maps.
 * Must not: decide relay permission, touch the file system beyond reading
 * /file domain lists at setup and alias_maps ":include:" files (only with
 * facteur_alias_include = yes), or build a Maildir path outside
 * virtual_mailbox_base. A table that cannot answer is TEMPFAIL, never UNKNOWN.
 * relocated_maps turns any address (hosted or remote, as Postfix's
 * resolver does) into "User has moved to ..." (UNKNOWN, 5.1.6), here and
 * at delivery; relay_recipient_maps (the list of valid relay_domains
 * recipients) applies only when the caller asks (RESOLVE_F_RELAY_RCPT:
 * the SMTP server), as in Postfix where only smtpd consults it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "backends/addr_find.h"
#include "backends/table.h"
#include "core/lib/buf.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/receive_override.h"
#include "core/resolve.h"
#include "core/rewrite.h"
#include "core/rewrite_alias.h"

#define DOMLIST_FILE_MAX (1024 * 1024)	/* a /file domain list */
#define VALUE_MAX        (256 * 1024)	/* one alias map value */

/* One item of a Postfix domain list (mydestination, relay_domains, ...). */
struct dom_item {
	bool          neg;	/* !item */
	char         *name;	/* lowercased domain, ".parent" form allowed */
	struct table *table;	/* type:name, the domain is the key */
};

struct domlist {
	const char      *param;	/* for messages */
	struct dom_item *v;
	size_t           n;
	bool             parent_matches;	/* relay_domains: x.d matches d */
};

struct resolve_ctx {
	char  *myorigin;
	char  *delimiter;
	char  *mailbox_base;
	long long min_uid;
	long long recursion_limit;
	long long expansion_limit;
	struct domlist alias_domains, mailbox_domains, mydestination, relay_domains;
	struct table_list *alias_maps, *mailbox_maps, *uid_maps, *gid_maps;
	struct table_list *relocated_maps, *relay_rcpt_maps;	/* NULL: unset */
	struct rewrite_ctx *rw;		/* canonical, masquerade (rewrite.c) */
	struct alias_db    *local_aliases;	/* alias_maps (rewrite_alias.c) */
	bool   alias_include;		/* facteur_alias_include */
	bool   prop_virtual, prop_alias;	/* propagate_unmatched_extensions */
	bool   blocking;
	bool   no_mappings;	/* receive_override_options (receiving side) */
};

static const char *
nz(const char *s)
{
	return s ? s : "";
}

static void
lower_ascii(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static void
domlist_free(struct domlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		if (l->v[i].table)
			table_close(&l->v[i].table);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int domlist_add(struct resolve_ctx *c, struct domlist *l, const char *item,
		       bool in_file, struct errbuf *err);

/* A "/file" item: its words (white space, commas; '#' comments) are items. */
static int
domlist_add_file(struct resolve_ctx *c, struct domlist *l, const char *path,
		 struct errbuf *err)
{
	struct strlist words;
	struct buf text;
	char chunk[4096];
	size_t n;
	FILE *f;
	char *p, *line, *save = NULL;
	int rc = 0;

	if ((f = fopen(path, "r")) == NULL) {
		errbuf_set(err, "%s: open %s: %s", l->param, path, strerror(errno));
		return -1;
	}
	buf_init(&text, DOMLIST_FILE_MAX);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&text, chunk, n) < 0) {
			errbuf_set(err, "%s: %s is larger than %d bytes", l->param,
				   path, DOMLIST_FILE_MAX);
			fclose(f);
			buf_free(&text);
			return -1;
		}
	}
	if (ferror(f)) {
		errbuf_set(err, "%s: read %s: %s", l->param, path, strerror(errno));
		fclose(f);
		buf_free(&text);
		return -1;
	}
	fclose(f);
	strlist_init(&words);
	p = (char *)buf_cstr(&text);
	for (line = strtok_r(p, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		if (strlist_split(&words, line) < 0) {
			errbuf_set(err, "%s: %s: unbalanced braces", l->param, path);
			rc = -1;
			break;
		}
	}
	for (size_t i = 0; rc == 0 && i < words.n; i++)
		rc = domlist_add(c, l, words.v[i], true, err);
	strlist_free(&words);
	buf_free(&text);
	return rc;
}

static int
domlist_add(struct resolve_ctx *c, struct domlist *l, const char *item,
	    bool in_file, struct errbuf *err)
{
	struct dom_item it = { false, NULL, NULL };

	if (*item == '!') {
		it.neg = true;
		item++;
	}
	if (*item == '\0') {
		errbuf_set(err, "%s: empty item after '!'", l->param);
		return -1;
	}
	if (*item == '/') {
		if (in_file || it.neg) {
			errbuf_set(err, "%s: file \"%s\" not allowed here", l->param, item);
			return -1;
		}
		return domlist_add_file(c, l, item, err);
	}
	if (*item != '[' && strchr(item, ':') != NULL) {
		struct errbuf why;
		errbuf_clear(&why);
		it.table = table_open(item, TABLE_F_FOLD, &why);
		if (it.table == NULL) {
			errbuf_set(err, "%s: %s", l->param, errbuf_str(&why));
			return -1;
		}
		if (table_flags(it.table) & TABLE_F_BLOCKING)
			c->blocking = true;
	} else {
		it.name = xstrdup(item);
		lower_ascii(it.name);
	}
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = it;
	return 0;
}

static int
domlist_open(struct resolve_ctx *c, struct domlist *l, const char *param,
	     const char *value, bool parent_matches, struct errbuf *err)
{
	struct strlist items;
	int rc = 0;

	l->param = param;
	l->v = NULL;
	l->n = 0;
	l->parent_matches = parent_matches;
	strlist_init(&items);
	if (strlist_split(&items, nz(value)) < 0) {
		errbuf_set(err, "%s: unbalanced braces in \"%s\"", param, nz(value));
		strlist_free(&items);
		return -1;
	}
	for (size_t i = 0; rc == 0 && i < items.n; i++)
		rc = domlist_add(c, l, items.v[i], false, err);
	strlist_free(&items);
	return rc;
}

/* 1 = the table has key, 0 = not, -1 = error (err set). */
static int
table_has(struct table *t, const char *key, struct buf *val, struct errbuf *err)
{
	struct errbuf why;
	enum table_status st;

	errbuf_clear(&why);
	st = table_lookup(t, key, val, &why);
	if (st == TABLE_FOUND)
		return 1;
	if (st == TABLE_NOTFOUND)
		return 0;
	errbuf_set(err, "%s lookup error for \"%s\": %s", table_name(t), key,
		   errbuf_str(&why));
	return st == TABLE_TEMPFAIL ? -2 : -3;
}

/*
 * Does the domain match one item? Exact names; ".parent" matches any
 * subdomain; with parent_matches a plain "parent" does too. Tables are
 * asked for the domain, then (Postfix's match_hostname) for each parent
 * as ".parent" and, with parent_matches, as "parent".
 * Returns 1, 0, or -2 (TEMPFAIL) / -3 (CONFIG) with err set.
 */
static int
dom_item_match(const struct domlist *l, const struct dom_item *it,
	       const char *domain, struct buf *val, struct errbuf *err)
{
	const char *p;
	int r;

	if (it->name) {
		if (strcasecmp(it->name, domain) == 0)
			return 1;
		for (p = strchr(domain, '.'); p; p = strchr(p + 1, '.')) {
			if (strcasecmp(it->name, p) == 0)
				return 1;
			if (l->parent_matches && strcasecmp(it->name, p + 1) == 0)
				return 1;
		}
		return 0;
	}
	if ((r = table_has(it->table, domain, val, err)) != 0)
		return r;
	for (p = strchr(domain, '.'); p; p = strchr(p + 1, '.')) {
		if (p[1] == '\0')
			break;
		if ((r = table_has(it->table, p, val, err)) != 0)
			return r;
		if (l->parent_matches &&
		    (r = table_has(it->table, p + 1, val, err)) != 0)
			return r;
	}
	return 0;
}

/* First matching item decides; a negated match is "no". 1, 0, -2, -3. */
static int
domlist_match(const struct domlist *l, const char *domain, struct errbuf *err)
{
	struct buf val;
	int r = 0;

	if (l->n == 0 || *domain == '\0')
		return 0;
	buf_init(&val, 0);
	for (size_t i = 0; i < l->n; i++) {
		r = dom_item_match(l, &l->v[i], domain, &val, err);
		if (r == 0)
			continue;
		if (r == 1 && l->v[i].neg)
			r = 0;
		break;
	}
	buf_free(&val);
	return r;
}

static int
maps_open(struct resolve_ctx *c, struct table_list **lp, const char *param,
	  const char *value, struct errbuf *err)
{
	return table_list_open_param(lp, param, nz(value), TABLE_F_FOLD,
				     &c->blocking, err);
}

static int domain_class(struct resolve_ctx *c, const char *domain,
			enum resolve_class *cls, struct errbuf *err);

/* For canonical's bare "user" key: is the domain in mydestination? */
static bool
is_local_domain(void *arg, const char *domain)
{
	enum resolve_class cls;
	struct errbuf err;

	errbuf_clear(&err);
	return domain_class(arg, domain, &cls, &err) == 0 &&
	       cls == RESOLVE_CLASS_LOCAL;
}

/*
 * receive_override_options = no_address_mappings (a receiving service
 * only): the rewriting context without canonical maps and masquerading,
 * trivial rewriting kept; alias expansion is skipped in expand().
 */
static struct rewrite_ctx *
rewriter_new(struct resolve_ctx *c, const struct settings *s,
	     struct errbuf *err)
{
	struct settings g;

	if (!c->no_mappings)
		return rewrite_ctx_new(s, is_local_domain, c, err);
	g = *s;		/* the context copies what it keeps */
	g.canonical_maps = (char *)"";
	g.sender_canonical_maps = (char *)"";
	g.recipient_canonical_maps = (char *)"";
	g.masquerade_domains = (char *)"";
	return rewrite_ctx_new(&g, is_local_domain, c, err);
}

static struct resolve_ctx *resolve_ctx_open(const struct settings *s,
					    bool receiving, struct errbuf *err);

struct resolve_ctx *
resolve_ctx_new(const struct settings *s, struct errbuf *err)
{
	return resolve_ctx_open(s, false, err);
}

struct resolve_ctx *
resolve_ctx_new_receiving(const struct settings *s, struct errbuf *err)
{
	return resolve_ctx_open(s, true, err);
}

static struct resolve_ctx *
resolve_ctx_open(const struct settings *s, bool receiving, struct errbuf *err)
{
	struct resolve_ctx *c = xcalloc(1, sizeof(*c));
	unsigned ovr = 0;

	if (receiving && receive_override_parse(s->receive_override_options,
						&ovr, err) < 0) {
		free(c);
		return NULL;
	}
	c->no_mappings = (ovr & RECV_OVR_NO_ADDRESS_MAPPINGS) != 0;

	c->myorigin = xstrdup(nz(s->myorigin));
	lower_ascii(c->myorigin);
	c->delimiter = xstrdup(nz(s->recipient_delimiter));
	c->mailbox_base = xstrdup(nz(s->virtual_mailbox_base));
	c->min_uid = s->virtual_minimum_uid;
	c->alias_include = s->facteur_alias_include;
	{
		/* unset (hand-made settings): Postfix's default */
		struct strlist pl;

		strlist_init(&pl);
		strlist_split(&pl, s->propagate_unmatched_extensions
			      ? s->propagate_unmatched_extensions
			      : "canonical, virtual");
		c->prop_virtual = strlist_contains(&pl, "virtual");
		c->prop_alias = strlist_contains(&pl, "alias");
		strlist_free(&pl);
	}
	c->recursion_limit = s->virtual_alias_recursion_limit > 0 ?
	    s->virtual_alias_recursion_limit : 1000;
	c->expansion_limit = s->virtual_alias_expansion_limit > 0 ?
	    s->virtual_alias_expansion_limit : 1000;
	if (domlist_open(c, &c->alias_domains, "virtual_alias_domains",
			 s->virtual_alias_domains, false, err) < 0 ||
	    domlist_open(c, &c->mailbox_domains, "virtual_mailbox_domains",
			 s->virtual_mailbox_domains, false, err) < 0 ||
	    domlist_open(c, &c->mydestination, "mydestination",
			 s->mydestination, false, err) < 0 ||
	    domlist_open(c, &c->relay_domains, "relay_domains",
			 s->relay_domains, true, err) < 0 ||
	    maps_open(c, &c->alias_maps, "virtual_alias_maps",
		      s->virtual_alias_maps, err) < 0 ||
	    maps_open(c, &c->mailbox_maps, "virtual_mailbox_maps",
		      s->virtual_mailbox_maps, err) < 0 ||
	    maps_open(c, &c->uid_maps, "virtual_uid_maps",
		      s->virtual_uid_maps, err) < 0 ||
	    maps_open(c, &c->gid_maps, "virtual_gid_maps",
		      s->virtual_gid_maps, err) < 0 ||
	    maps_open(c, &c->relocated_maps, "relocated_maps",
		      s->relocated_maps, err) < 0 ||
	    maps_open(c, &c->relay_rcpt_maps, "relay_recipient_maps",
		      s->relay_recipient_maps, err) < 0 ||
	    (c->rw = rewriter_new(c, s, err)) == NULL ||
	    (c->local_aliases = alias_db_open(s->alias_maps, err)) == NULL) {
		resolve_ctx_free(&c);
		return NULL;
	}
	if (alias_db_blocking(c->local_aliases))
		c->blocking = true;
	return c;
}

void
resolve_ctx_free(struct resolve_ctx **cp)
{
	struct resolve_ctx *c = *cp;

	if (c == NULL)
		return;
	domlist_free(&c->alias_domains);
	domlist_free(&c->mailbox_domains);
	domlist_free(&c->mydestination);
	domlist_free(&c->relay_domains);
	if (c->alias_maps)
		table_list_free(&c->alias_maps);
	if (c->mailbox_maps)
		table_list_free(&c->mailbox_maps);
	if (c->uid_maps)
		table_list_free(&c->uid_maps);
	if (c->gid_maps)
		table_list_free(&c->gid_maps);
	if (c->relocated_maps)
		table_list_free(&c->relocated_maps);
	if (c->relay_rcpt_maps)
		table_list_free(&c->relay_rcpt_maps);
	rewrite_ctx_free(&c->rw);
	alias_db_free(&c->local_aliases);
	free(c->myorigin);
	free(c->delimiter);
	free(c->mailbox_base);
	free(c);
	*cp = NULL;
}

bool
resolve_ctx_blocking(const struct resolve_ctx *c)
{
	return c->blocking || (c->rw != NULL && rewrite_ctx_blocking(c->rw));
}

struct rewrite_ctx *
resolve_rewriter(struct resolve_ctx *c)
{
	return c->rw;
}

struct alias_db *
resolve_local_aliases(struct resolve_ctx *c)
{
	return c->local_aliases;
}

/*
 * Postfix's order: virtual_alias_domains, virtual_mailbox_domains,
 * mydestination, relay_domains. 0 on success; on a lookup error returns
 * -2 (TEMPFAIL) or -3 (CONFIG) with err set.
 */
static int
domain_class(struct resolve_ctx *c, const char *domain, enum resolve_class *cls,
	     struct errbuf *err)
{
	struct {
		struct domlist    *l;
		enum resolve_class cls;
	} order[] = {
		{ &c->alias_domains, RESOLVE_CLASS_ALIAS },
		{ &c->mailbox_domains, RESOLVE_CLASS_VIRTUAL },
		{ &c->mydestination, RESOLVE_CLASS_LOCAL },
		{ &c->relay_domains, RESOLVE_CLASS_RELAY },
	};
	char *d;
	int r;

	/* A domainless address is in $myorigin (Postfix appends it). */
	d = xstrdup(domain && *domain ? domain : c->myorigin);
	lower_ascii(d);
	/* One trailing dot means the same domain. */
	if (strlen(d) > 1 && d[strlen(d) - 1] == '.')
		d[strlen(d) - 1] = '\0';
	*cls = RESOLVE_CLASS_DEFAULT;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		r = domlist_match(order[i].l, d, err);
		if (r < 0) {
			free(d);
			return r;
		}
		if (r == 1) {
			*cls = order[i].cls;
			break;
		}
	}
	free(d);
	return 0;
}

/*
 * On a lookup error: returns RESOLVE_CLASS_DEFAULT with err set (callers
 * test errbuf_str(err)[0] and answer 4xx).
 */
enum resolve_class
resolve_domain_class(struct resolve_ctx *c, const char *domain,
		     struct errbuf *err)
{
	enum resolve_class cls;

	errbuf_clear(err);
	if (domain_class(c, domain, &cls, err) < 0)
		return RESOLVE_CLASS_DEFAULT;
	return cls;
}

/* Splits a key "local@domain" at its last '@' (the local part may hold '@'). */
static void
key_split(const char *key, char **local, char **domain)
{
	const char *at = strrchr(key, '@');

	if (at == NULL) {
		*local = xstrdup(key);
		*domain = xstrdup("");
	} else {
		*local = xstrndup(key, (size_t)(at - key));
		*domain = xstrdup(at + 1);
	}
}

static char *
key_join(const char *local, const char *domain)
{
	return *domain ? xasprintf("%s@%s", local, domain) : xstrdup(local);
}

/*
 * Builds the Maildir path for map value v (ends in '/'): relative values
 * live under virtual_mailbox_base; absolute ones must already be inside it.
 * Empty and "." components are dropped; ".." is refused.
 */
static int
maildir_path(const struct resolve_ctx *c, const char *key, const char *v,
	     char **path_r, char **reason_r)
{
	struct buf out, basebuf;
	const char *base = c->mailbox_base, *p, *s;
	char *joined;
	int rc = 0;

	*path_r = NULL;
	if (v[0] != '/' && (base[0] != '/')) {
		*reason_r = xasprintf("virtual_mailbox_maps: relative mailbox \"%s\" "
				      "for \"%s\" needs an absolute "
				      "virtual_mailbox_base", v, key);
		return -1;
	}
	joined = v[0] == '/' ? xstrdup(v) : xasprintf("%s/%s", base, v);
	buf_init(&out, 0);
	buf_init(&basebuf, 0);
	for (int pass = 0; pass < 2; pass++) {
		struct buf *b = pass == 0 ? &out : &basebuf;
		const char *src = pass == 0 ? joined : base;
		for (p = src; *p; ) {
			while (*p == '/')
				p++;
			s = p;
			while (*p && *p != '/')
				p++;
			if (p == s || (p - s == 1 && s[0] == '.'))
				continue;
			if (p - s == 2 && s[0] == '.' && s[1] == '.') {
				*reason_r = xasprintf(
				    "virtual_mailbox_maps: mailbox \"%s\" for \"%s\" "
				    "has a \"..\" component", v, key);
				rc = -1;
				goto done;
			}
			buf_putc(b, '/');
			buf_append(b, s, (size_t)(p - s));
		}
		buf_putc(b, '/');
	}
	/* Inside the base: the normalized base is a prefix ending at a '/'. */
	if (base[0] == '/' &&
	    strncmp(buf_cstr(&out), buf_cstr(&basebuf), basebuf.len) != 0) {
		*reason_r = xasprintf("virtual_mailbox_maps: mailbox \"%s\" for "
				      "\"%s\" is outside virtual_mailbox_base %s",
				      v, key, base);
		rc = -1;
		goto done;
	}
	if (base[0] != '/' || out.len <= basebuf.len) {
		if (base[0] != '/')
			*reason_r = xasprintf("virtual_mailbox_maps: absolute mailbox "
					      "\"%s\" for \"%s\" but "
					      "virtual_mailbox_base is not set", v, key);
		else
			*reason_r = xasprintf("virtual_mailbox_maps: mailbox \"%s\" "
					      "for \"%s\" is virtual_mailbox_base "
					      "itself", v, key);
		rc = -1;
		goto done;
	}
	*path_r = buf_steal(&out);
done:
	free(joined);
	buf_free(&out);
	buf_free(&basebuf);
	return rc;
}

static enum resolve_status
table_status_to_resolve(enum table_status st)
{
	return st == TABLE_TEMPFAIL ? RESOLVE_TEMPFAIL : RESOLVE_CONFIG;
}

/* uid/gid from a map (decimal), or the process's own when the map is unset. */
static enum resolve_status
id_lookup(struct resolve_ctx *c, struct table_list *l, const char *param,
	  const char *local, const char *domain, long long min, long long self,
	  long long *id_r, char **reason_r)
{
	struct buf val;
	struct errbuf err;
	enum table_status st;
	const char *v;
	char *end;
	long long x;

	if (table_list_empty(l)) {
		*id_r = self;
		return RESOLVE_OK;
	}
	buf_init(&val, VALUE_MAX);
	errbuf_clear(&err);
	st = addr_find(l, local, domain, c->delimiter, 0, &val, NULL, &err);
	if (st == TABLE_NOTFOUND) {
		*reason_r = xasprintf("%s: no entry for \"%s@%s\"", param, local, domain);
		buf_free(&val);
		return RESOLVE_CONFIG;
	}
	if (st != TABLE_FOUND) {
		*reason_r = xstrdup(errbuf_str(&err));
		buf_free(&val);
		return table_status_to_resolve(st);
	}
	v = buf_cstr(&val);
	errno = 0;
	x = (v[0] >= '0' && v[0] <= '9') ? strtoll(v, &end, 10) : -1;
	if (x < 0 || errno != 0 || *end != '\0' || x > 0x7fffffffLL || x < min) {
		*reason_r = xasprintf("%s: bad value \"%s\" for \"%s@%s\" (expected a "
				      "number >= %lld)", param, v, local, domain, min);
		buf_free(&val);
		return RESOLVE_CONFIG;
	}
	*id_r = x;
	buf_free(&val);
	return RESOLVE_OK;
}

/* virtual(8): virtual_mailbox_maps, then the owner from the uid/gid maps. */
static enum resolve_status
mailbox_lookup(struct resolve_ctx *c, const char *local, const char *domain,
	       struct resolve_dest *d, char **reason_r)
{
	struct buf val;
	struct errbuf err;
	enum table_status st;
	enum resolve_status rs;
	const char *v;
	char *key = key_join(local, domain);
	long long uid, gid;

	buf_init(&val, VALUE_MAX);
	errbuf_clear(&err);
	st = addr_find(c->mailbox_maps, local, domain, c->delimiter, 0, &val,
		       NULL, &err);
	if (st == TABLE_NOTFOUND) {
		*reason_r = xstrdup("User unknown in virtual mailbox table");
		rs = RESOLVE_UNKNOWN;
		goto out;
	}
	if (st != TABLE_FOUND) {
		*reason_r = xstrdup(errbuf_str(&err));
		rs = table_status_to_resolve(st);
		goto out;
	}
	v = buf_cstr(&val);
	d->maildir = NULL;
	if (v[val.len - 1] == '/' &&
	    maildir_path(c, key, v, &d->maildir, reason_r) < 0) {
		rs = RESOLVE_CONFIG;
		goto out;
	}
	rs = id_lookup(c, c->uid_maps, "virtual_uid_maps", local, domain,
		       c->min_uid, (long long)getuid(), &uid, reason_r);
	if (rs == RESOLVE_OK)
		rs = id_lookup(c, c->gid_maps, "virtual_gid_maps", local, domain,
			       0, (long long)getgid(), &gid, reason_r);
	if (rs != RESOLVE_OK) {
		xfree(&d->maildir);
		goto out;
	}
	d->uid = (uid_t)uid;
	d->gid = (gid_t)gid;
out:
	buf_free(&val);
	free(key);
	return rs;
}

/* Alias expansion state for one recipient. */
struct expand {
	struct resolve_ctx *c;
	const char     *orig;		/* the recipient, for messages */
	struct strlist  out;		/* final addresses (keys), in order */
	struct strlist  path;		/* addresses being expanded (ancestors) */
	struct strlist  done;		/* addresses already expanded */
	char           *reason;
	struct strlist  warnings;	/* alias_maps targets refused */
	bool            kept;		/* no_mappings: aliased, kept as is */
};

static enum resolve_status expand(struct expand *x, const char *local,
				  const char *domain, long long depth);
static enum resolve_status add_final(struct expand *x, const char *key);
static bool has_unquoted_at(const char *s);

/*
 * local(8)'s alias lookup: "user+ext", then "user" (lowercased). The
 * extension is not propagated (propagate_unmatched_extensions has no
 * "alias" by default).
 */
static enum table_status
local_alias_find(struct resolve_ctx *c, const char *local, struct buf *val,
		 char **name_r, char **ext_r, struct errbuf *err)
{
	char *name = xstrdup(local);
	enum table_status st;

	*ext_r = NULL;
	lower_ascii(name);
	st = alias_db_lookup(c->local_aliases, name, val, err);
	if (st == TABLE_NOTFOUND && c->delimiter[0]) {
		size_t n = strcspn(name, c->delimiter);

		if (n > 0 && name[n] != '\0') {
			/* "delim + ext", as the address spelt it */
			char *ext = xstrdup(local + n);

			name[n] = '\0';
			st = alias_db_lookup(c->local_aliases, name, val, err);
			if (st == TABLE_FOUND)
				*ext_r = ext;
			else
				free(ext);
		}
	}
	*name_r = name;
	return st;
}

/* Splits an aliases(5) value at commas outside quotes; strips blanks. */
static void
split_alias_value(const char *v, struct strlist *out)
{
	const char *p = v;

	while (*p) {
		const char *s, *e;
		int q = 0;

		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		s = p;
		for (; *p && (q || *p != ','); p++) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				q = !q;
		}
		e = p;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		/* "|command args" / "/file": one quoted target */
		if (e - s >= 2 && *s == '"' && e[-1] == '"' &&
		    (s[1] == '|' || s[1] == '/' || s[1] == ':'))
			strlist_addn(out, s + 1, (size_t)(e - s - 2));
		else
			strlist_addn(out, s, (size_t)(e - s));
	}
}

#define INCLUDE_FILE_MAX (1024 * 1024)

/*
 * An ":include:/path" file: its addresses (commas or lines; "#" comments)
 * as one alias value, owned. NULL + *why_r when it cannot be read.
 */
static char *
read_include(const char *path, char **why_r)
{
	struct buf text, out;
	char chunk[4096];
	size_t n;
	FILE *f;

	*why_r = NULL;
	if (path[0] != '/') {
		*why_r = xasprintf(":include:%s: not an absolute path", path);
		return NULL;
	}
	if ((f = fopen(path, "r")) == NULL) {
		*why_r = xasprintf(":include:%s: %s", path, strerror(errno));
		return NULL;
	}
	buf_init(&text, INCLUDE_FILE_MAX);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(&text, chunk, n) < 0) {
			*why_r = xasprintf(":include:%s: larger than %d bytes",
					   path, INCLUDE_FILE_MAX);
			break;
		}
	fclose(f);
	if (*why_r != NULL) {
		buf_free(&text);
		return NULL;
	}
	buf_init(&out, 0);
	for (const char *p = buf_cstr(&text); *p; ) {
		const char *nl = strchr(p, '\n'), *e = nl ? nl : p + strlen(p);
		const char *s = p;

		while (s < e && isspace((unsigned char)*s))
			s++;
		if (s < e && *s != '#') {
			buf_append(&out, s, (size_t)(e - s));
			buf_putc(&out, ',');
		}
		p = nl ? nl + 1 : e;
	}
	buf_free(&text);
	if (out.data == NULL)
		buf_puts(&out, "");
	return buf_steal(&out);
}

/* The targets of a local alias; ext ("+tag" or NULL) goes on each target's
 * local part with propagate_unmatched_extensions = ... alias. */
static enum resolve_status
expand_local_alias(struct expand *x, const char *name, const char *key,
		   const char *value, const char *ext, long long depth)
{
	struct resolve_ctx *c = x->c;
	struct strlist targets;
	enum resolve_status rs = RESOLVE_OK;
	size_t used = 0;
	char *first_refusal = NULL;

	strlist_init(&targets);
	split_alias_value(value, &targets);
	strlist_add(&x->path, key);
	for (size_t i = 0; rs == RESOLVE_OK && i < targets.n; i++) {
		const char *t = targets.v[i], *what = NULL, *perr;
		struct addr a;
		char *text, *tkey;

		if (t[0] == '|')
			what = "mail to command is restricted";
		else if (t[0] == '/')
			what = "mail to file is restricted";
		else if (strncasecmp(t, ":include:", 9) == 0 && !c->alias_include)
			what = ":include: is restricted";
		else if (strncasecmp(t, ":include:", 9) == 0) {
			/* facteur_alias_include = yes: its addresses */
			char *why = NULL, *v;
			const char *path = t + 9;

			while (isspace((unsigned char)*path))
				path++;
			if (depth > c->recursion_limit ||
			    (v = read_include(path, &why)) == NULL) {
				x->reason = why ? why
				    : xasprintf("alias_maps: %s: :include: nesting "
						"too deep", name);
				rs = RESOLVE_TEMPFAIL;
				break;
			}
			rs = expand_local_alias(x, name, key, v, ext, depth + 1);
			free(v);
			if (rs == RESOLVE_UNKNOWN) {
				/* nothing usable in it: the others may be */
				xfree(&x->reason);
				rs = RESOLVE_OK;
			} else if (rs == RESOLVE_OK)
				used++;
			continue;
		}
		if (what != NULL) {
			/* facteur has no local delivery agent: refused, said */
			char *w = xasprintf("alias_maps: %s: \"%.200s\" refused: %s "
					    "(facteur delivers to addresses only)",
					    name, t, what);
			strlist_add(&x->warnings, w);
			if (first_refusal == NULL)
				first_refusal = xasprintf("%s (alias %s)", what, name);
			free(w);
			continue;
		}
		text = has_unquoted_at(t) ? xstrdup(t)
					  : xasprintf("%s@%s", t, c->myorigin);
		if (addr_parse_mailbox(text, &a, &perr) < 0) {
			x->reason = xasprintf("alias_maps: bad address \"%s\" in "
					      "the value for \"%s\": %s", t, name,
					      perr);
			free(text);
			rs = RESOLVE_CONFIG;
			break;
		}
		free(text);
		used++;
		if (ext != NULL && c->prop_alias) {
			char *nl = xasprintf("%s%s", a.local, ext);

			free(a.local);
			a.local = nl;
		}
		tkey = addr_key(&a);
		if (strcasecmp(tkey, key) == 0)
			rs = add_final(x, tkey);	/* "fred: fred, ...": kept */
		else
			rs = expand(x, a.local, a.domain, depth + 1);
		free(tkey);
		addr_free(&a);
	}
	free(x->path.v[--x->path.n]);
	x->path.v[x->path.n] = NULL;
	if (rs == RESOLVE_OK && used == 0) {
		x->reason = first_refusal ? first_refusal
			    : xasprintf("alias_maps: empty value for \"%s\"", name);
		first_refusal = NULL;
		rs = RESOLVE_UNKNOWN;
	}
	free(first_refusal);
	strlist_free(&targets);
	return rs;
}

static bool
set_has(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i], s) == 0)
			return true;
	return false;
}

static enum resolve_status
add_final(struct expand *x, const char *key)
{
	if (set_has(&x->out, key))
		return RESOLVE_OK;
	if ((long long)x->out.n >= x->c->expansion_limit) {
		x->reason = xasprintf("unreasonable virtual_alias_maps map expansion "
				      "size for %s", x->orig);
		return RESOLVE_LOOP;
	}
	strlist_add(&x->out, key);
	return RESOLVE_OK;
}

/*
 * Splits an alias value into targets: commas and white space separate,
 * except inside a quoted local part.
 */
static void
split_targets(const char *v, struct strlist *out)
{
	const char *p = v, *s;
	int quoted;

	for (;;) {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			return;
		s = p;
		quoted = 0;
		for (; *p; p++) {
			if (quoted) {
				if (*p == '\\' && p[1])
					p++;
				else if (*p == '"')
					quoted = 0;
			} else if (*p == '"')
				quoted = 1;
			else if (*p == ',' || isspace((unsigned char)*p))
				break;
		}
		strlist_addn(out, s, (size_t)(p - s));
	}
}

/* Is there an '@' outside a quoted string? */
static bool
has_unquoted_at(const char *s)
{
	int quoted = 0;

	for (; *s; s++) {
		if (quoted) {
			if (*s == '\\' && s[1])
				s++;
			else if (*s == '"')
				quoted = 0;
		} else if (*s == '"')
			quoted = 1;
		else if (*s == '@')
			return true;
	}
	return false;
}

static enum resolve_status
expand(struct expand *x, const char *local, const char *domain, long long depth)
{
	struct resolve_ctx *c = x->c;
	struct buf val;
	struct errbuf err;
	struct strlist targets;
	enum resolve_class cls;
	enum table_status st;
	enum resolve_status rs = RESOLVE_OK;
	char *key = key_join(local, domain), *ext = NULL;
	char delim[2] = { 0, 0 };
	int r;

	if (set_has(&x->path, key)) {
		x->reason = xasprintf("virtual_alias_maps loop for %s", x->orig);
		free(key);
		return RESOLVE_LOOP;
	}
	if (depth > c->recursion_limit) {
		x->reason = xasprintf("unreasonable virtual_alias_maps map nesting "
				      "for %s", x->orig);
		free(key);
		return RESOLVE_LOOP;
	}
	if (set_has(&x->done, key)) {
		free(key);
		return RESOLVE_OK;
	}
	/* Each distinct address is looked up once: bounds the work. */
	if ((long long)x->done.n >= 4 * c->expansion_limit) {
		x->reason = xasprintf("unreasonable virtual_alias_maps map expansion "
				      "size for %s", x->orig);
		free(key);
		return RESOLVE_LOOP;
	}
	strlist_add(&x->done, key);
	errbuf_clear(&err);
	if ((r = domain_class(c, domain, &cls, &err)) < 0) {
		x->reason = xstrdup(errbuf_str(&err));
		free(key);
		return r == -2 ? RESOLVE_TEMPFAIL : RESOLVE_CONFIG;
	}
	buf_init(&val, VALUE_MAX);
	st = addr_find(c->alias_maps, local, domain, c->delimiter,
		       cls == RESOLVE_CLASS_LOCAL ? ADDR_FIND_BARE_USER : 0,
		       &val, &ext, &err);
	if (st == TABLE_FOUND && c->no_mappings) {
		/* no_address_mappings: the address exists; it is kept
		 * unexpanded (a content filter's reinjection expands it) */
		x->kept = true;
		rs = add_final(x, key);
		goto out;
	}
	if (st == TABLE_NOTFOUND && cls == RESOLVE_CLASS_LOCAL &&
	    !alias_db_empty(c->local_aliases)) {
		/* local(8): alias_maps, after virtual_alias_maps */
		char *name = NULL, *lext = NULL;

		st = local_alias_find(c, local, &val, &name, &lext, &err);
		if (st == TABLE_FOUND)
			rs = expand_local_alias(x, name, key, buf_cstr(&val),
						lext, depth);
		else if (st != TABLE_NOTFOUND) {
			x->reason = xstrdup(errbuf_str(&err));
			rs = table_status_to_resolve(st);
		}
		free(lext);
		free(name);
		if (st != TABLE_NOTFOUND)
			goto out;
	}
	if (st == TABLE_NOTFOUND) {
		rs = add_final(x, key);
		goto out;
	}
	if (st != TABLE_FOUND) {
		x->reason = xstrdup(errbuf_str(&err));
		rs = table_status_to_resolve(st);
		goto out;
	}
	/* The delimiter that separated the extension we propagate. */
	if (ext && strlen(local) > strlen(ext))
		delim[0] = local[strlen(local) - strlen(ext) - 1];
	strlist_init(&targets);
	split_targets(buf_cstr(&val), &targets);
	if (targets.n == 0) {
		x->reason = xasprintf("virtual_alias_maps: empty value for \"%s\"", key);
		rs = RESOLVE_CONFIG;
	}
	strlist_add(&x->path, key);
	for (size_t i = 0; rs == RESOLVE_OK && i < targets.n; i++) {
		struct addr t;
		const char *perr;
		char *text, *tkey;

		if (targets.v[i][0] == '@') {
			/* "@other.domain": the same user in another domain. */
			struct addr same = { (char *)local, targets.v[i] + 1,
					     false, false };
			text = addr_format(&same);
		} else if (has_unquoted_at(targets.v[i]))
			text = xstrdup(targets.v[i]);
		else
			text = xasprintf("%s@%s", targets.v[i], c->myorigin);
		if (addr_parse_mailbox(text, &t, &perr) < 0) {
			x->reason = xasprintf("virtual_alias_maps: bad address \"%s\" "
					      "in the value for \"%s\": %s",
					      targets.v[i], key, perr);
			free(text);
			rs = RESOLVE_CONFIG;
			break;
		}
		free(text);
		/* propagate_unmatched_extensions: user+ext -> target+ext */
		if (ext && delim[0] && c->prop_virtual) {
			char *nl = xasprintf("%s%s%s", t.local, delim, ext);
			free(t.local);
			t.local = nl;
		}
		tkey = addr_key(&t);
		if (strcasecmp(tkey, key) == 0)
			rs = add_final(x, tkey);	/* maps to itself: kept */
		else
			rs = expand(x, t.local, t.domain, depth + 1);
		free(tkey);
		addr_free(&t);
	}
	free(x->path.v[--x->path.n]);
	x->path.v[x->path.n] = NULL;
	strlist_free(&targets);
out:
	free(ext);
	free(key);
	buf_free(&val);
	return rs;
}

static void
dest_init(struct resolve_dest *d)
{
	memset(d, 0, sizeof(*d));
}

/*
 * relocated_maps (relocated(5)): a found address is UNKNOWN with "User has
 * moved to VALUE" (a value already starting with a 5.x.x code keeps it as
 * Postfix 3.11 allows; the reason then carries the code as its first word).
 */
static enum resolve_status
relocated_lookup(struct resolve_ctx *c, const char *local, const char *domain,
		 enum resolve_class cls, char **reason_r)
{
	struct buf val;
	struct errbuf err;
	enum table_status st;
	enum resolve_status rs = RESOLVE_OK;

	if (c->relocated_maps == NULL || table_list_empty(c->relocated_maps))
		return RESOLVE_OK;
	buf_init(&val, VALUE_MAX);
	errbuf_clear(&err);
	st = addr_find(c->relocated_maps, local, domain, c->delimiter,
		       cls == RESOLVE_CLASS_LOCAL ? ADDR_FIND_BARE_USER : 0,
		       &val, NULL, &err);
	if (st == TABLE_FOUND) {
		*reason_r = xasprintf("User has moved to %s", buf_cstr(&val));
		rs = RESOLVE_UNKNOWN;
	} else if (st != TABLE_NOTFOUND) {
		*reason_r = xstrdup(errbuf_str(&err));
		rs = table_status_to_resolve(st);
	}
	buf_free(&val);
	return rs;
}

/*
 * relay_recipient_maps: a relay_domains address must be listed (any value).
 * RESOLVE_OK when listed or when the parameter is empty.
 */
static enum resolve_status
relay_rcpt_lookup(struct resolve_ctx *c, const char *key, char **reason_r)
{
	struct buf val;
	struct errbuf err;
	enum table_status st;
	enum resolve_status rs = RESOLVE_OK;
	char *local, *domain;

	if (c->relay_rcpt_maps == NULL || table_list_empty(c->relay_rcpt_maps))
		return RESOLVE_OK;
	key_split(key, &local, &domain);
	buf_init(&val, VALUE_MAX);
	errbuf_clear(&err);
	st = addr_find(c->relay_rcpt_maps, local, domain, c->delimiter, 0,
		       &val, NULL, &err);
	if (st == TABLE_NOTFOUND) {
		*reason_r = xstrdup("User unknown in relay recipient table");
		rs = RESOLVE_UNKNOWN;
	} else if (st != TABLE_FOUND) {
		*reason_r = xstrdup(errbuf_str(&err));
		rs = table_status_to_resolve(st);
	}
	buf_free(&val);
	free(local);
	free(domain);
	return rs;
}

bool
resolve_relay_rcpt_maps_set(const struct resolve_ctx *c)
{
	return c->relay_rcpt_maps != NULL && !table_list_empty(c->relay_rcpt_maps);
}

/* The final step for one address: class, then what that class needs. */
static enum resolve_status
resolve_final(struct resolve_ctx *c, const char *key, struct resolve_dest *d,
	      char **reason_r)
{
	struct errbuf err;
	enum resolve_status rs = RESOLVE_OK;
	char *local, *domain;
	int r;

	dest_init(d);
	key_split(key, &local, &domain);
	errbuf_clear(&err);
	if ((r = domain_class(c, domain, &d->cls, &err)) < 0) {
		*reason_r = xstrdup(errbuf_str(&err));
		rs = r == -2 ? RESOLVE_TEMPFAIL : RESOLVE_CONFIG;
		goto out;
	}
	/* as Postfix's resolver: relocated_maps applies to every class */
	if ((rs = relocated_lookup(c, local, domain, d->cls, reason_r))
	    != RESOLVE_OK)
		goto out;
	switch (d->cls) {
	case RESOLVE_CLASS_VIRTUAL:
		rs = mailbox_lookup(c, local, domain, d, reason_r);
		break;
	case RESOLVE_CLASS_ALIAS:
		*reason_r = xstrdup("User unknown in virtual alias table");
		rs = RESOLVE_UNKNOWN;
		break;
	case RESOLVE_CLASS_LOCAL:
		/* No local(8) here: a local domain is served through aliases. */
		if (strcasecmp(local, "postmaster") == 0)
			*reason_r = xasprintf("User unknown in local recipient table "
					      "(postmaster@%s needs a virtual_alias_maps "
					      "entry)", domain);
		else
			*reason_r = xstrdup("User unknown in local recipient table");
		rs = RESOLVE_UNKNOWN;
		break;
	default:
		break;
	}
	if (rs == RESOLVE_OK)
		d->addr = xstrdup(key);
out:
	free(local);
	free(domain);
	return rs;
}

enum resolve_status
resolve_rcpt(struct resolve_ctx *c, const struct addr *a, struct resolve_result *r)
{
	return resolve_rcpt_ex(c, a, r, 0);
}

enum resolve_status
resolve_rcpt_ex(struct resolve_ctx *c, const struct addr *a,
		struct resolve_result *r, unsigned flags)
{
	struct expand x;
	enum resolve_status rs;
	char *orig, *domain, *local = NULL;

	memset(r, 0, sizeof(*r));
	if (a == NULL || a->is_null || a->local == NULL || a->local[0] == '\0') {
		r->reason = xstrdup("Null recipient address");
		return RESOLVE_UNKNOWN;
	}
	domain = xstrdup(a->domain && a->domain[0] ? a->domain : c->myorigin);
	lower_ascii(domain);
	orig = key_join(a->local, domain);
	{
		/* cleanup's order: canonical and masquerading, then aliases */
		struct errbuf rerr;
		char *nk = NULL;

		errbuf_clear(&rerr);
		if (rewrite_envelope(c->rw, REWRITE_ENV_RCPT, orig, &nk,
				     &rerr) < 0) {
			r->reason = xstrdup(errbuf_str(&rerr));
			free(orig);
			free(domain);
			return RESOLVE_TEMPFAIL;
		}
		free(orig);
		orig = nk;
		free(domain);
		key_split(orig, &local, &domain);
		lower_ascii(domain);
	}
	memset(&x, 0, sizeof(x));
	x.c = c;
	x.orig = orig;
	strlist_init(&x.out);
	strlist_init(&x.path);
	strlist_init(&x.done);
	strlist_init(&x.warnings);
	rs = expand(&x, local, domain, 0);
	for (size_t i = 0; i < x.warnings.n && r->warning == NULL; i++)
		r->warning = xstrdup(x.warnings.v[i]);
	strlist_free(&x.warnings);
	if (rs == RESOLVE_OK && x.out.n == 0) {
		x.reason = xasprintf("virtual_alias_maps: %s expands to nothing", orig);
		rs = RESOLVE_CONFIG;
	}
	if (rs == RESOLVE_OK) {
		/* Did virtual_alias_maps rewrite the address at all? */
		bool aliased = x.out.n != 1 || strcmp(x.out.v[0], orig) != 0;
		size_t nknown = 0;
		char *first_reason = NULL, *first_unknown = NULL;
		enum resolve_class first_cls = 0;

		r->v = xcalloc(x.out.n, sizeof(*r->v));
		for (size_t i = 0; i < x.out.n; i++) {
			char *why = NULL;

			rs = resolve_final(c, x.out.v[i], &r->v[r->n], &why);
			if (rs == RESOLVE_UNKNOWN && x.kept) {
				/* no_address_mappings: valid through its alias */
				free(why);
				why = NULL;
				xfree(&r->v[r->n].maildir);
				r->v[r->n].addr = xstrdup(x.out.v[i]);
				rs = RESOLVE_OK;
			}
			if (rs == RESOLVE_OK && !aliased &&
			    (flags & RESOLVE_F_RELAY_RCPT) &&
			    r->v[r->n].cls == RESOLVE_CLASS_RELAY) {
				/* Postfix: an aliased address is valid as
				 * such; only an unaliased one is looked up */
				rs = relay_rcpt_lookup(c, x.out.v[i], &why);
				if (rs != RESOLVE_OK) {
					r->ucls = RESOLVE_CLASS_RELAY;
					resolve_dest_free(&r->v[r->n]);
				}
			}
			if (rs == RESOLVE_UNKNOWN && first_unknown == NULL) {
				first_unknown = x.out.v[i];
				first_cls = r->v[r->n].cls;
			}
			if (rs == RESOLVE_UNKNOWN && aliased) {
				/*
				 * As Postfix: one stale member does not refuse
				 * a list. The target is kept and bounced by the
				 * queue (a DSN to the sender); the recipient is
				 * refused only when no target exists at all.
				 */
				if (first_reason == NULL)
					first_reason = why;
				else
					free(why);
				r->v[r->n].addr = xstrdup(x.out.v[i]);
				r->v[r->n].maildir = NULL;
				r->v[r->n].unknown = true;
				r->n++;
				rs = RESOLVE_OK;
				continue;
			}
			if (rs != RESOLVE_OK) {
				/* A lookup failure fails the whole recipient:
				 * 4xx now, never a partial answer. */
				r->reason = why;
				break;
			}
			free(why);
			r->n++;
			nknown++;
		}
		if (rs == RESOLVE_OK && nknown == 0) {
			rs = RESOLVE_UNKNOWN;
			r->reason = first_reason;
			first_reason = NULL;
		}
		free(first_reason);
		if (rs != RESOLVE_OK) {
			char *reason = r->reason;
			r->reason = NULL;
			resolve_result_free(r);
			r->reason = reason;
			if (rs == RESOLVE_UNKNOWN && first_unknown != NULL) {
				r->ucls = first_cls;
				r->uaddr = xstrdup(first_unknown);
			}
		}
	} else {
		r->reason = x.reason ? x.reason : xstrdup("alias expansion failed");
		if (rs == RESOLVE_UNKNOWN) {	/* alias_maps: a local name */
			r->ucls = RESOLVE_CLASS_LOCAL;
			r->uaddr = xstrdup(orig);
		}
	}
	if (rs == RESOLVE_OK || r->reason != x.reason)
		free(x.reason);
	strlist_free(&x.out);
	strlist_free(&x.path);
	strlist_free(&x.done);
	free(orig);
	free(local);
	free(domain);
	return rs;
}

enum resolve_status
resolve_mailbox(struct resolve_ctx *c, const char *addr, struct resolve_dest *d,
		char **reason_r)
{
	enum resolve_status rs;

	*reason_r = NULL;
	if (addr == NULL || *addr == '\0') {
		dest_init(d);
		*reason_r = xstrdup("Null recipient address");
		return RESOLVE_UNKNOWN;
	}
	rs = resolve_final(c, addr, d, reason_r);
	if (rs != RESOLVE_OK)
		resolve_dest_free(d);
	return rs;
}

void
resolve_dest_free(struct resolve_dest *d)
{
	if (d == NULL)
		return;
	xfree(&d->addr);
	xfree(&d->maildir);
}

void
resolve_result_free(struct resolve_result *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		resolve_dest_free(&r->v[i]);
	xfree(&r->v);
	r->n = 0;
	xfree(&r->reason);
	xfree(&r->warning);
	xfree(&r->uaddr);
	r->ucls = 0;
}

void
resolve_result_keep_unknown(struct resolve_result *r)
{
	char *addr = r->uaddr;
	enum resolve_class cls = r->ucls;
	bool relocated = r->reason != NULL &&
	    strncmp(r->reason, "User has moved to ", 18) == 0;

	r->uaddr = NULL;
	resolve_result_free(r);
	if (addr == NULL)
		return;
	r->v = xcalloc(1, sizeof(*r->v));
	r->v[0].addr = addr;
	r->v[0].cls = cls ? cls : RESOLVE_CLASS_VIRTUAL;
	/* an unlisted relay recipient is relayed (Postfix's smtpd alone
	 * consults relay_recipient_maps); the others bounce in the queue */
	r->v[0].unknown = cls != RESOLVE_CLASS_RELAY || relocated;
	r->n = 1;
}
