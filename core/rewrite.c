/*
 * rewrite.c - Postfix cleanup's address rewriting: local/remote context
 * (append_at_myorigin, append_dot_mydomain, remote_header_rewrite_domain),
 * sender/recipient canonical maps, canonical_maps, masquerade_domains;
 * for envelope addresses and for the address headers of a message.
 * Must not: touch anything in a header but its addr-specs, follow more
 * than REWRITE_RECURSION canonical steps, or answer for a map that failed
 * (the caller defers).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "backends/addr_find.h"
#include "backends/table.h"
#include "core/addr.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/params.h"
#include "core/rewrite.h"
#include "core/smtpd_ifaddrs.h"

#define REWRITE_RECURSION 10		/* Postfix cleanup_map11 */
#define REWRITE_VALUE_MAX (64 * 1024)
#define REWRITE_HDR_MAX   (1024 * 1024)	/* one logical header we rewrite */

enum hdr_client {
	HC_INET_INTERFACES = 1,
	HC_MYNETWORKS,
	HC_SASL,
	HC_MAP,
};

struct rewrite_ctx {
	char   *myorigin, *mydomain, *remote_domain, *delimiter;
	bool    append_at_myorigin, append_dot_mydomain, prop_canonical;
	struct table_list *canon, *send_canon, *rcpt_canon, *masq_exc_maps;
	unsigned canon_cls, send_cls, rcpt_cls, masq_cls;
	char   *masq;			/* masquerade_domains value */
	struct strlist masq_exc;	/* literal user names */
	enum hdr_client *hc;		/* local_header_rewrite_clients */
	struct table_list **hc_maps;	/* for HC_MAP items */
	size_t  nhc;
	struct strlist ifaddrs;		/* permit_inet_interfaces */
	rewrite_local_fn is_local;
	void   *is_local_arg;
	bool    blocking;
};

static const char *
nz(const char *s)
{
	return s ? s : "";
}

static void
lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

int
rewrite_parse_classes(const char *param, const char *value, unsigned *bits,
		      struct errbuf *err)
{
	static const struct { const char *name; unsigned bit; } names[] = {
		{ "envelope_sender", REWRITE_ENV_SENDER },
		{ "envelope_recipient", REWRITE_ENV_RCPT },
		{ "header_sender", REWRITE_HDR_SENDER },
		{ "header_recipient", REWRITE_HDR_RCPT },
	};
	struct strlist l;
	int rc = 0;

	*bits = 0;
	strlist_init(&l);
	strlist_split(&l, nz(value));
	for (size_t i = 0; i < l.n && rc == 0; i++) {
		size_t k;

		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (strcasecmp(l.v[i], names[k].name) == 0)
				break;
		if (k == sizeof(names) / sizeof(names[0])) {
			errbuf_set(err, "%s: unknown address class \"%s\" (expected "
				   "envelope_sender, envelope_recipient, "
				   "header_sender or header_recipient)", param,
				   l.v[i]);
			rc = -1;
		} else
			*bits |= names[k].bit;
	}
	strlist_free(&l);
	return rc;
}

static int
open_maps(struct rewrite_ctx *c, struct table_list **lp, const char *param,
	  const char *value, struct errbuf *err)
{
	return table_list_open_param(lp, param, nz(value), TABLE_F_FOLD,
				     &c->blocking, err);
}

static void interfaces_load(struct rewrite_ctx *c, const char *ifs);

static int
parse_hdr_clients(struct rewrite_ctx *c, const char *value, const char *ifs,
		  struct errbuf *err)
{
	struct strlist l;
	int rc = 0;

	strlist_init(&l);
	strlist_split(&l, nz(value));
	c->hc = xcalloc(l.n + 1, sizeof(*c->hc));
	c->hc_maps = xcalloc(l.n + 1, sizeof(*c->hc_maps));
	for (size_t i = 0; i < l.n && rc == 0; i++) {
		const char *it = l.v[i], *map = NULL;

		if (strcasecmp(it, "permit_inet_interfaces") == 0) {
			if (c->ifaddrs.n == 0)
				interfaces_load(c, ifs);
			c->hc[c->nhc++] = HC_INET_INTERFACES;
		}
		else if (strcasecmp(it, "permit_mynetworks") == 0)
			c->hc[c->nhc++] = HC_MYNETWORKS;
		else if (strcasecmp(it, "permit_sasl_authenticated") == 0)
			c->hc[c->nhc++] = HC_SASL;
		else if (strcasecmp(it, "check_address_map") == 0) {
			if (i + 1 >= l.n) {
				errbuf_set(err, "local_header_rewrite_clients: "
					   "check_address_map needs a TYPE:TABLE");
				rc = -1;
				break;
			}
			map = l.v[++i];
		} else if (strchr(it, ':') != NULL)
			map = it;
		else {
			errbuf_set(err, "local_header_rewrite_clients: unknown "
				   "item \"%s\" (expected permit_inet_interfaces, "
				   "permit_mynetworks, permit_sasl_authenticated "
				   "or check_address_map TYPE:TABLE)", it);
			rc = -1;
		}
		if (map != NULL && rc == 0) {
			struct table_list *t = NULL;

			if (open_maps(c, &t, "local_header_rewrite_clients", map,
				      err) < 0)
				rc = -1;
			else {
				c->hc_maps[c->nhc] = t;
				c->hc[c->nhc++] = HC_MAP;
			}
		}
	}
	strlist_free(&l);
	return rc;
}

struct rewrite_ctx *
rewrite_ctx_new(const struct settings *s, rewrite_local_fn is_local, void *arg,
		struct errbuf *err)
{
	struct rewrite_ctx *c = xcalloc(1, sizeof(*c));
	struct strlist l;

	c->myorigin = xstrdup(nz(s->myorigin));
	lower(c->myorigin);
	c->mydomain = xstrdup(nz(s->mydomain));
	lower(c->mydomain);
	c->remote_domain = xstrdup(nz(s->remote_header_rewrite_domain));
	lower(c->remote_domain);
	c->delimiter = xstrdup(nz(s->recipient_delimiter));
	c->append_at_myorigin = s->append_at_myorigin;
	c->append_dot_mydomain = s->append_dot_mydomain;
	strlist_init(&c->ifaddrs);
	c->masq = xstrdup(nz(s->masquerade_domains));
	c->is_local = is_local;
	c->is_local_arg = arg;
	strlist_init(&c->masq_exc);
	strlist_init(&l);
	strlist_split(&l, nz(s->propagate_unmatched_extensions));
	for (size_t i = 0; i < l.n; i++)
		if (strcasecmp(l.v[i], "canonical") == 0)
			c->prop_canonical = true;
	strlist_free(&l);
	if (rewrite_parse_classes("canonical_classes", s->canonical_classes,
				  &c->canon_cls, err) < 0 ||
	    rewrite_parse_classes("sender_canonical_classes",
				  s->sender_canonical_classes, &c->send_cls,
				  err) < 0 ||
	    rewrite_parse_classes("recipient_canonical_classes",
				  s->recipient_canonical_classes, &c->rcpt_cls,
				  err) < 0 ||
	    rewrite_parse_classes("masquerade_classes", s->masquerade_classes,
				  &c->masq_cls, err) < 0 ||
	    open_maps(c, &c->canon, "canonical_maps", s->canonical_maps, err) < 0 ||
	    open_maps(c, &c->send_canon, "sender_canonical_maps",
		      s->sender_canonical_maps, err) < 0 ||
	    open_maps(c, &c->rcpt_canon, "recipient_canonical_maps",
		      s->recipient_canonical_maps, err) < 0 ||
	    parse_hdr_clients(c, s->local_header_rewrite_clients,
			      s->inet_interfaces, err) < 0)
		goto fail;
	/* masquerade_exceptions: user names, or TYPE:TABLE lists of them */
	strlist_init(&l);
	strlist_split(&l, nz(s->masquerade_exceptions));
	{
		struct buf maps;

		buf_init(&maps, 0);
		for (size_t i = 0; i < l.n; i++) {
			if (strchr(l.v[i], ':') != NULL)
				buf_printf(&maps, "%s%s", maps.len ? ", " : "",
					   l.v[i]);
			else {
				char *u = xstrdup(l.v[i]);
				lower(u);
				strlist_add(&c->masq_exc, u);
				free(u);
			}
		}
		strlist_free(&l);
		if (open_maps(c, &c->masq_exc_maps, "masquerade_exceptions",
			      buf_cstr(&maps), err) < 0) {
			buf_free(&maps);
			goto fail;
		}
		buf_free(&maps);
	}
	return c;
fail:
	rewrite_ctx_free(&c);
	return NULL;
}

void
rewrite_ctx_free(struct rewrite_ctx **cp)
{
	struct rewrite_ctx *c = *cp;

	if (c == NULL)
		return;
	if (c->canon)
		table_list_free(&c->canon);
	if (c->send_canon)
		table_list_free(&c->send_canon);
	if (c->rcpt_canon)
		table_list_free(&c->rcpt_canon);
	if (c->masq_exc_maps)
		table_list_free(&c->masq_exc_maps);
	for (size_t i = 0; i < c->nhc; i++)
		if (c->hc_maps[i])
			table_list_free(&c->hc_maps[i]);
	free(c->hc);
	free(c->hc_maps);
	strlist_free(&c->masq_exc);
	free(c->myorigin);
	free(c->mydomain);
	free(c->remote_domain);
	free(c->delimiter);
	strlist_free(&c->ifaddrs);
	free(c->masq);
	free(c);
	*cp = NULL;
}

bool
rewrite_ctx_blocking(const struct rewrite_ctx *c)
{
	return c->blocking;
}

/* ---- one address ---- */

static void
split_key(const char *key, char **local, char **domain)
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

/* trivial-rewrite: the local or remote context. Returns an owned key. */
static char *
rewrite_context(const struct rewrite_ctx *c, enum rewrite_hdr_mode mode,
		const char *key)
{
	char *local, *domain, *out;

	split_key(key, &local, &domain);
	if (*domain == '\0') {
		if (mode == REWRITE_HDR_REMOTE) {
			if (*c->remote_domain) {
				free(domain);
				domain = xstrdup(c->remote_domain);
			}
		} else if (c->append_at_myorigin && *c->myorigin) {
			free(domain);
			domain = xstrdup(c->myorigin);
		}
	} else if (mode != REWRITE_HDR_REMOTE && c->append_dot_mydomain &&
		   *c->mydomain && domain[0] != '[' &&
		   strchr(domain, '.') == NULL) {
		char *d = xasprintf("%s.%s", domain, c->mydomain);
		free(domain);
		domain = d;
	}
	out = *domain ? xasprintf("%s@%s", local, domain) : xstrdup(local);
	free(local);
	free(domain);
	return out;
}

/*
 * One canonical step (Postfix mail_addr_map): user+ext@domain, user@domain,
 * user+ext / user (local domains), @domain. A result "@other" keeps the
 * user. 1 = rewritten (*out_r), 0 = no match, -1 = lookup failure.
 */
static int
canon_step(struct rewrite_ctx *c, struct table_list *maps, const char *key,
	   char **out_r, struct errbuf *err)
{
	struct buf val;
	enum table_status st;
	char *local, *domain, *ext = NULL, *first, *comma;
	unsigned flags = 0;
	int rc = 0;

	*out_r = NULL;
	if (maps == NULL || table_list_empty(maps) || *key == '\0')
		return 0;
	split_key(key, &local, &domain);
	if (*domain == '\0' || (c->is_local && c->is_local(c->is_local_arg, domain)))
		flags |= ADDR_FIND_BARE_USER;
	buf_init(&val, REWRITE_VALUE_MAX);
	st = addr_find(maps, local, domain, c->delimiter, flags, &val, &ext, err);
	if (st == TABLE_NOTFOUND)
		goto out;
	if (st != TABLE_FOUND) {
		rc = -1;
		goto out;
	}
	/* canonical is 1:1: a list keeps its first address (Postfix warns) */
	first = xstrdup(buf_cstr(&val));
	if ((comma = strpbrk(first, ", \t")) != NULL)
		*comma = '\0';
	if (first[0] == '@') {
		*out_r = xasprintf("%s%s", local, first);
		/* the user part keeps its extension already */
		xfree(&ext);
	} else
		*out_r = xstrdup(first);
	free(first);
	if (ext != NULL && c->prop_canonical && *c->delimiter) {
		/* user+ext -> target+ext (the delimiter that was used) */
		size_t ll = strlen(local), el = strlen(ext);
		char d = ll > el ? local[ll - el - 1] : c->delimiter[0];
		char *tl, *td, *n;

		split_key(*out_r, &tl, &td);
		n = *td ? xasprintf("%s%c%s@%s", tl, d, ext, td)
			: xasprintf("%s%c%s", tl, d, ext);
		free(tl);
		free(td);
		free(*out_r);
		*out_r = n;
	}
	rc = 1;
out:
	free(ext);
	free(local);
	free(domain);
	buf_free(&val);
	return rc;
}

/* cleanup_map11: repeat until the address maps to itself or no entry. */
static int
canon_map(struct rewrite_ctx *c, struct table_list *maps, char **addr,
	  struct errbuf *err)
{
	for (int i = 0; i < REWRITE_RECURSION; i++) {
		char *n = NULL;
		int r = canon_step(c, maps, *addr, &n, err);

		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		if (strcasecmp(n, *addr) == 0) {
			free(n);
			return 0;
		}
		free(*addr);
		*addr = n;
	}
	return 0;
}

char *
rewrite_masquerade(const char *masq_domains, const char *addr)
{
	struct strlist l;
	const char *at = strrchr(addr, '@'), *domain;
	size_t dlen;
	char *out = NULL;

	if (at == NULL || at[1] == '\0' || at[1] == '[')
		return NULL;
	domain = at + 1;
	dlen = strlen(domain);
	strlist_init(&l);
	strlist_split(&l, nz(masq_domains));
	for (size_t i = 0; i < l.n; i++) {
		const char *m = l.v[i];
		bool truncate = true;
		size_t mlen;

		if (*m == '!') {
			truncate = false;
			m++;
		}
		mlen = strlen(m);
		if (mlen == 0)
			continue;
		if (mlen == dlen) {
			if (strcasecmp(m, domain) == 0)
				break;		/* the domain itself: stop */
		} else if (mlen < dlen) {
			const char *parent = domain + dlen - mlen;

			if (parent[-1] == '.' && strcasecmp(m, parent) == 0) {
				if (truncate)
					out = xasprintf("%.*s@%s",
							(int)(at - addr), addr, m);
				break;
			}
		}
	}
	strlist_free(&l);
	if (out)
		lower(strrchr(out, '@'));
	return out;
}

static int
masquerade(struct rewrite_ctx *c, char **addr, struct errbuf *err)
{
	const char *at = strrchr(*addr, '@');
	char *user, *n;

	if (*c->masq == '\0' || at == NULL)
		return 0;
	user = xstrndup(*addr, (size_t)(at - *addr));
	lower(user);
	if (strlist_contains(&c->masq_exc, user)) {
		free(user);
		return 0;
	}
	if (!table_list_empty(c->masq_exc_maps)) {
		struct buf v;
		enum table_status st;

		buf_init(&v, REWRITE_VALUE_MAX);
		st = table_list_lookup(c->masq_exc_maps, user, &v, err, NULL);
		buf_free(&v);
		if (st == TABLE_FOUND) {
			free(user);
			return 0;
		}
		if (st != TABLE_NOTFOUND) {
			free(user);
			return -1;
		}
	}
	free(user);
	if ((n = rewrite_masquerade(c->masq, *addr)) != NULL) {
		free(*addr);
		*addr = n;
	}
	return 0;
}

/* Everything after the context step, for one class bit. */
static int
rewrite_maps(struct rewrite_ctx *c, unsigned bit, char **addr,
	     struct errbuf *err)
{
	bool sender = (bit & (REWRITE_ENV_SENDER | REWRITE_HDR_SENDER)) != 0;

	if (sender ? (c->send_cls & bit) : (c->rcpt_cls & bit))
		if (canon_map(c, sender ? c->send_canon : c->rcpt_canon, addr,
			      err) < 0)
			return -1;
	if ((c->canon_cls & bit) && canon_map(c, c->canon, addr, err) < 0)
		return -1;
	if ((c->masq_cls & bit) && masquerade(c, addr, err) < 0)
		return -1;
	return 0;
}

int
rewrite_envelope(struct rewrite_ctx *c, unsigned cls, const char *addr,
		 char **out_r, struct errbuf *err)
{
	char *a;

	*out_r = NULL;
	if (addr == NULL || *addr == '\0') {
		*out_r = xstrdup("");
		return 0;
	}
	a = rewrite_context(c, REWRITE_HDR_LOCAL, addr);
	if (rewrite_maps(c, cls, &a, err) < 0) {
		free(a);
		return -1;
	}
	*out_r = a;
	return 0;
}

/* ---- which clients get their headers rewritten ---- */

/*
 * Our addresses for permit_inet_interfaces, read once (as Postfix reads
 * inet_interfaces at start): core/smtpd_ifaddrs.c, without
 * proxy_interfaces (local submission has no proxy in front).
 */
static void
interfaces_load(struct rewrite_ctx *c, const char *ifs)
{
	smtpd_ifaddrs_load(&c->ifaddrs, ifs, NULL);
}

static bool
addr_is_interface(const struct rewrite_ctx *c, const char *client)
{
	struct in6_addr a6;
	struct in_addr a4;
	bool v4;

	v4 = inet_pton(AF_INET, client, &a4) == 1;
	if (!v4 && inet_pton(AF_INET6, client, &a6) != 1)
		return false;
	if (v4 && (ntohl(a4.s_addr) >> 24) == 127)
		return true;
	if (!v4 && IN6_IS_ADDR_LOOPBACK(&a6))
		return true;
	return smtpd_ifaddrs_match(&c->ifaddrs, client);
}

enum rewrite_hdr_mode
rewrite_hdr_mode(struct rewrite_ctx *c, const char *client_addr,
		 bool in_mynetworks, bool sasl_auth)
{
	if (client_addr == NULL)
		return REWRITE_HDR_LOCAL;
	for (size_t i = 0; i < c->nhc; i++) {
		bool yes = false;

		switch (c->hc[i]) {
		case HC_INET_INTERFACES:
			yes = addr_is_interface(c, client_addr);
			break;
		case HC_MYNETWORKS:
			yes = in_mynetworks;
			break;
		case HC_SASL:
			yes = sasl_auth;
			break;
		case HC_MAP: {
			struct buf v;
			struct errbuf e;

			buf_init(&v, REWRITE_VALUE_MAX);
			errbuf_clear(&e);
			/* a failed lookup: not local (the safe answer) */
			yes = table_list_lookup(c->hc_maps[i], client_addr, &v,
						&e, NULL) == TABLE_FOUND &&
			      strcasecmp(buf_cstr(&v), "REJECT") != 0 &&
			      strcasecmp(buf_cstr(&v), "DUNNO") != 0;
			buf_free(&v);
			break;
		}
		}
		if (yes)
			return REWRITE_HDR_LOCAL;
	}
	return *c->remote_domain ? REWRITE_HDR_REMOTE : REWRITE_HDR_NONE;
}

/* ---- headers ---- */

static unsigned
hdr_class(const char *name, size_t n)
{
	static const char *const senders[] = {
		"From", "Sender", "Reply-To", "Return-Receipt-To", "Errors-To",
		"Resent-From", "Resent-Sender", "Resent-Reply-To",
	};
	static const char *const rcpts[] = {
		"To", "Cc", "Bcc", "Apparently-To", "Resent-To", "Resent-Cc",
		"Resent-Bcc",
	};

	for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++)
		if (strlen(senders[i]) == n && strncasecmp(senders[i], name, n) == 0)
			return REWRITE_HDR_SENDER;
	for (size_t i = 0; i < sizeof(rcpts) / sizeof(rcpts[0]); i++)
		if (strlen(rcpts[i]) == n && strncasecmp(rcpts[i], name, n) == 0)
			return REWRITE_HDR_RCPT;
	return 0;
}

/* Rewrites one addr-spec text; appends the new text (or the old) to out. */
static int
rewrite_spec(struct rewrite_ctx *c, enum rewrite_hdr_mode mode, unsigned bit,
	     const char *s, size_t n, struct buf *out, bool *changed,
	     struct errbuf *err)
{
	struct addr a;
	const char *why;
	char *text, *key, *nk;
	bool has_at = false, inq = false;
	int rc = 0;

	bool odd = false;	/* blanks, controls: not one addr-spec */

	for (size_t i = 0; i < n && !odd; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\0' || ch == '\r' || ch == '\n' || ch == 0x7f)
			odd = true;
		else if (inq) {
			if (ch == '\\' && i + 1 < n)
				i++;
			else if (ch == '"')
				inq = false;
		} else if (ch == '"')
			inq = true;
		else if (ch <= ' ')
			odd = true;
		else if (ch == '@')
			has_at = true;
	}
	if (n == 0 || n > ADDR_PATH_MAX || odd || inq) {
		buf_append(out, s, n);
		return 0;
	}
	text = has_at ? xstrndup(s, n) : xasprintf("%.*s@x.invalid", (int)n, s);
	if (addr_parse_mailbox(text, &a, &why) < 0) {
		/* not an address we understand: left as it is */
		free(text);
		buf_append(out, s, n);
		return 0;
	}
	free(text);
	if (!has_at) {
		xfree(&a.domain);
		a.domain = xstrdup("");
	}
	key = addr_key(&a);
	nk = rewrite_context(c, mode, key);
	if (rewrite_maps(c, bit, &nk, err) < 0)
		rc = -1;
	else if (strcmp(nk, key) == 0)
		buf_append(out, s, n);
	else {
		struct addr b;
		char *l, *d, *f;

		split_key(nk, &l, &d);
		b.local = l;
		b.domain = d;
		b.is_null = false;
		b.utf8 = false;
		f = addr_format(&b);
		if (*d == '\0' && f[strlen(f) - 1] == '@')
			f[strlen(f) - 1] = '\0';
		buf_puts(out, f);
		free(f);
		free(l);
		free(d);
		*changed = true;
	}
	free(nk);
	free(key);
	addr_free(&a);
	return rc;
}

/*
 * Walks an address-list value: each element's addr-spec is the text in
 * <...> when there is one, else the element without comments and outer
 * blanks. Groups ("name: a, b;") are followed.
 */
static int
rewrite_value(struct rewrite_ctx *c, enum rewrite_hdr_mode mode, unsigned bit,
	      const char *v, size_t n, struct buf *out, bool *changed,
	      struct errbuf *err)
{
	size_t i = 0;

	while (i <= n) {
		/* one element: [i, e) */
		size_t e = i, lt = (size_t)-1, gt = (size_t)-1;
		size_t bs = (size_t)-1, be = 0;	/* bare spec span */
		int depth = 0;
		bool inq = false, group = false;

		for (; e < n; e++) {
			char ch = v[e];

			if (inq) {
				if (ch == '\\' && e + 1 < n)
					e++;
				else if (ch == '"')
					inq = false;
				if (bs == (size_t)-1)
					bs = e;
				be = e + 1;
				continue;
			}
			if (depth > 0) {
				if (ch == '\\' && e + 1 < n)
					e++;
				else if (ch == '(')
					depth++;
				else if (ch == ')')
					depth--;
				continue;
			}
			if (ch == '(') {
				depth = 1;
				continue;
			}
			if (lt != (size_t)-1 && gt == (size_t)-1) {
				if (ch == '>')
					gt = e;
				continue;
			}
			if (ch == '<' && lt == (size_t)-1) {
				lt = e;
				continue;
			}
			if (ch == ',' || ch == ';')
				break;
			if (ch == ':' && lt == (size_t)-1) {
				group = true;	/* display name of a group */
				break;
			}
			if (ch == '"')
				inq = true;
			if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') {
				if (bs == (size_t)-1)
					bs = e;
				be = e + 1;
			}
		}
		if (group) {
			buf_append(out, v + i, e + 1 - i);
			i = e + 1;
			continue;
		}
		if (lt != (size_t)-1 && gt != (size_t)-1) {
			size_t s0 = lt + 1;
			const char *colon;

			/* <@route:user@domain>: the route stays as it is */
			if (v[s0] == '@' && (colon = memchr(v + s0, ':', gt - s0)))
				s0 = (size_t)(colon - v) + 1;
			buf_append(out, v + i, s0 - i);
			if (rewrite_spec(c, mode, bit, v + s0, gt - s0, out,
					 changed, err) < 0)
				return -1;
			buf_append(out, v + gt, e - gt);
		} else if (bs != (size_t)-1) {
			buf_append(out, v + i, bs - i);
			if (rewrite_spec(c, mode, bit, v + bs, be - bs, out,
					 changed, err) < 0)
				return -1;
			buf_append(out, v + be, e - be);
		} else
			buf_append(out, v + i, e - i);
		if (e < n)
			buf_putc(out, v[e]);
		i = e + 1;
	}
	return 0;
}

int
rewrite_headers(struct rewrite_ctx *c, enum rewrite_hdr_mode mode,
		const char *content, size_t len, struct buf *out, bool *changed,
		struct errbuf *err)
{
	size_t p = 0;

	*changed = false;
	buf_reset(out);
	if (mode == REWRITE_HDR_NONE)
		return 0;
	while (p < len) {
		size_t e = p, colon;
		unsigned cls;

		/* end of the header section */
		if (content[p] == '\n' || (content[p] == '\r' && p + 1 < len &&
					   content[p + 1] == '\n'))
			break;
		/* one logical header: up to a newline not followed by blank */
		for (;;) {
			const char *nl = memchr(content + e, '\n', len - e);

			e = nl ? (size_t)(nl - content) + 1 : len;
			if (e >= len || (content[e] != ' ' && content[e] != '\t'))
				break;
		}
		size_t nend;

		for (colon = p; colon < e && content[colon] != ':' &&
		     content[colon] > ' ' && content[colon] < 0x7f; colon++)
			;
		nend = colon;
		/* "Name :" (blanks before the colon), as Postfix's is_header */
		while (colon < e && (content[colon] == ' ' || content[colon] == '\t'))
			colon++;
		cls = colon < e && content[colon] == ':' && nend > p ?
		      hdr_class(content + p, nend - p) : 0;
		if (cls != 0 && e - p <= REWRITE_HDR_MAX) {
			/* value without the final line end */
			size_t ve = e;

			if (ve > colon && content[ve - 1] == '\n')
				ve--;
			if (ve > colon && content[ve - 1] == '\r')
				ve--;
			buf_append(out, content + p, colon + 1 - p);
			if (rewrite_value(c, mode, cls, content + colon + 1,
					  ve - colon - 1, out, changed, err) < 0)
				return -1;
			buf_append(out, content + ve, e - ve);
		} else
			buf_append(out, content + p, e - p);
		p = e;
	}
	if (!*changed) {
		buf_reset(out);
		return 0;
	}
	buf_append(out, content + p, len - p);
	return 0;
}

int
rewrite_message(struct rewrite_ctx *c, enum rewrite_hdr_mode mode,
		char **sender, struct buf *content, struct errbuf *err)
{
	struct buf out;
	char *ns = NULL;
	bool changed = false;

	if (rewrite_envelope(c, REWRITE_ENV_SENDER, *sender, &ns, err) < 0)
		return -1;
	buf_init(&out, 0);
	if (rewrite_headers(c, mode, content->data ? content->data : "",
			    content->len, &out, &changed, err) < 0) {
		free(ns);
		buf_free(&out);
		return -1;
	}
	free(*sender);
	*sender = ns;
	if (changed) {
		buf_free(content);
		*content = out;
	} else
		buf_free(&out);
	return 0;
}
