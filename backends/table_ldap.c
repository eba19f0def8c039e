/*
 * table_ldap.c - ldap:/path/file.cf tables (Postfix ldap_table(5)) over
 * OpenLDAP libldap: one search per lookup (%-expanded, RFC 4515-escaped
 * filter; RFC 4514-escaped search base), values of result_attribute joined
 * with commas, DN recursion through special_result_attribute, leaf and
 * terminal attributes; pooled connections, fail-over across server_host
 * URIs (libldap), back-off, timeouts, optional StartTLS and simple bind.
 * auth_bind = yes (for smtpd_sasl_passdb, see table_ldap.h): a user's
 * password is checked by binding as the user's DN on connections of their
 * own, never on the service-bound lookup connections.
 * Must not: run on the event loop (TABLE_F_BLOCKING), answer NOTFOUND when
 * the server could not answer (TEMPFAIL), follow referrals, or connect at
 * open time (a server down at start-up is no error).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LDAP_DEPRECATED 0
#include <ldap.h>

#include "backends/table_cache.h"
#include "backends/table_cf.h"
#include "backends/table_driver.h"
#include "backends/table_expand.h"
#include "backends/table_ldap.h"
#include "backends/table_net.h"
#include "core/lib/xmalloc.h"

#define LD_FILTER_MAX	((size_t)16384)

static const char *const ld_known[] = {
	"server_host", "server_port", "timeout", "search_base", "query_filter",
	"result_format", "domain", "result_attribute", "special_result_attribute",
	"terminal_result_attribute", "leaf_result_attribute", "scope", "bind",
	"bind_dn", "bind_pw", "dereference", "version", "recursion_limit",
	"expansion_limit", "size_limit", "start_tls", "tls_ca_cert_dir",
	"tls_ca_cert_file", "tls_cert", "tls_key", "tls_require_cert",
	"retry_interval", "auth_bind", "auth_bind_userdn", TABLE_CACHE_CF_KEYS, NULL
};

struct ld_table {
	char                *uris;		/* space-separated, for libldap */
	char                *search_base, *query_filter, *result_format;
	struct strlist       result, special, leaf, terminal;
	char               **attrs;		/* all of the above, NULL-terminated */
	int                  version, scope, deref, tls_require;	/* -1 unset */
	long                 timeout, size_limit, recursion_limit, expansion_limit;
	bool                 bind, start_tls;
	char                *bind_dn, *bind_pw;
	bool                 auth_bind;		/* passdb: bind as the user */
	char                *auth_bind_userdn;	/* DN template, or NULL: search */
	struct table_net_pool bind_pool;	/* user binds (auth_bind) */
	char                *tls_ca_file, *tls_ca_dir, *tls_cert, *tls_key;
	struct table_expand  x;
	struct table_net_pool pool;
	struct strlist       warnings;
};

struct ld_walk {
	struct ld_table *m;
	LDAP            *ld;
	const char      *key;
	struct buf      *value_r;
	long             count;
	struct errbuf   *err;
};

static void
ld_free(struct ld_table *m)
{
	free(m->uris);
	free(m->search_base);
	free(m->query_filter);
	free(m->result_format);
	strlist_free(&m->result);
	strlist_free(&m->special);
	strlist_free(&m->leaf);
	strlist_free(&m->terminal);
	if (m->attrs)
		for (char **a = m->attrs; *a; a++)
			free(*a);
	free(m->attrs);
	free(m->bind_dn);
	free(m->auth_bind_userdn);
	if (m->bind_pw) {
		memset(m->bind_pw, 0, strlen(m->bind_pw));
		free(m->bind_pw);
	}
	free(m->tls_ca_file);
	free(m->tls_ca_dir);
	free(m->tls_cert);
	free(m->tls_key);
	table_expand_free(&m->x);
	strlist_free(&m->warnings);
	free(m);
}

static char *
cf_dup(const struct table_cf *cf, const char *name, const char *def)
{
	const char *v = table_cf_str(cf, name, def);

	return v && *v ? xstrdup(v) : NULL;
}

/* server_host items: URIs as they are, "host[:port]" as ldap://host:port. */
static int
ld_uris(struct ld_table *m, const struct table_cf *cf, struct errbuf *err)
{
	struct strlist hosts;
	struct buf u;
	long port;
	LDAP *probe = NULL;
	int rc;

	if (table_cf_long(cf, "server_port", 389, 1, 65535, &port, err) < 0)
		return -1;
	strlist_init(&hosts);
	if (strlist_split(&hosts, table_cf_str(cf, "server_host", "localhost")) < 0 ||
	    hosts.n == 0) {
		errbuf_set(err, "%s: server_host: expected a list of hosts or URIs",
			   table_cf_path(cf));
		strlist_free(&hosts);
		return -1;
	}
	buf_init(&u, 0);
	for (size_t i = 0; i < hosts.n; i++) {
		const char *h = hosts.v[i];

		if (u.len)
			buf_putc(&u, ' ');
		if (strstr(h, "://"))
			buf_puts(&u, h);
		else if (strchr(h, ':'))
			buf_printf(&u, "ldap://%s", h);
		else
			buf_printf(&u, "ldap://%s:%ld", h, port);
	}
	strlist_free(&hosts);
	/* libldap parses the list without connecting: bad URIs fail now. */
	rc = ldap_initialize(&probe, buf_cstr(&u));
	if (rc != LDAP_SUCCESS) {
		errbuf_set(err, "%s: server_host = %s: %s", table_cf_path(cf),
			   buf_cstr(&u), ldap_err2string(rc));
		buf_free(&u);
		return -1;
	}
	ldap_unbind_ext_s(probe, NULL, NULL);
	m->uris = buf_steal(&u);
	return 0;
}

static int
ld_attr_list(struct strlist *l, const struct table_cf *cf, const char *name,
	     const char *def, struct errbuf *err)
{
	if (strlist_split(l, table_cf_str(cf, name, def)) < 0) {
		errbuf_set(err, "%s: %s: unbalanced '{' or '}'", table_cf_path(cf), name);
		return -1;
	}
	return 0;
}

static int
ld_keyword(const struct table_cf *cf, const char *name, const char *def,
	   const char *const *words, const int *vals, int *r, struct errbuf *err)
{
	const char *v = table_cf_str(cf, name, def);

	for (size_t i = 0; words[i]; i++)
		if (strcasecmp(v, words[i]) == 0) {
			*r = vals[i];
			return 0;
		}
	errbuf_set(err, "%s: %s = %s: unknown value", table_cf_path(cf), name, v);
	return -1;
}

static int
ld_open(struct table *t, const char *name, struct errbuf *err)
{
	static const char *const scopes[] = { "sub", "one", "base", NULL };
	static const int scope_v[] = { LDAP_SCOPE_SUBTREE, LDAP_SCOPE_ONELEVEL,
				       LDAP_SCOPE_BASE };
	static const char *const reqs[] = { "no", "yes", "never", "allow", "try",
					    "demand", "hard", NULL };
	static const int req_v[] = { LDAP_OPT_X_TLS_NEVER, LDAP_OPT_X_TLS_DEMAND,
				     LDAP_OPT_X_TLS_NEVER, LDAP_OPT_X_TLS_ALLOW,
				     LDAP_OPT_X_TLS_TRY, LDAP_OPT_X_TLS_DEMAND,
				     LDAP_OPT_X_TLS_HARD };
	struct table_cf *cf = NULL;
	struct ld_table *m;
	struct errbuf why;
	const char *bind;
	long version, deref, retry;
	size_t n = 0;
	int r;

	m = xcalloc(1, sizeof(*m));
	strlist_init(&m->warnings);
	strlist_init(&m->result);
	strlist_init(&m->special);
	strlist_init(&m->leaf);
	strlist_init(&m->terminal);
	table_expand_init(&m->x, t->spec);
	m->tls_require = -1;
	r = table_cf_load(name, ld_known, &cf, &m->warnings, &why);
	if (r != TABLE_CF_OK) {
		errbuf_set(err, "%s: %s", t->spec, errbuf_str(&why));
		ld_free(m);
		return r == TABLE_CF_UNREADABLE ? TABLE_OPEN_UNAVAILABLE : TABLE_OPEN_CONFIG;
	}
	if (ld_uris(m, cf, &why) < 0)
		goto bad;
	m->search_base = xstrdup(table_cf_str(cf, "search_base", ""));
	m->query_filter = xstrdup(table_cf_str(cf, "query_filter",
					       "(mailacceptinggeneralid=%s)"));
	m->result_format = xstrdup(table_cf_str(cf, "result_format", "%s"));
	m->bind_dn = xstrdup(table_cf_str(cf, "bind_dn", ""));
	m->bind_pw = xstrdup(table_cf_str(cf, "bind_pw", ""));
	m->tls_ca_file = cf_dup(cf, "tls_ca_cert_file", NULL);
	m->tls_ca_dir = cf_dup(cf, "tls_ca_cert_dir", NULL);
	m->tls_cert = cf_dup(cf, "tls_cert", NULL);
	m->tls_key = cf_dup(cf, "tls_key", NULL);
	bind = table_cf_str(cf, "bind", "yes");
	if (strcasecmp(bind, "sasl") == 0) {
		errbuf_set(&why, "%s: bind = sasl is not supported; use yes or no", name);
		goto bad;
	}
	if (ld_attr_list(&m->result, cf, "result_attribute", "maildrop", &why) < 0 ||
	    ld_attr_list(&m->special, cf, "special_result_attribute", "", &why) < 0 ||
	    ld_attr_list(&m->leaf, cf, "leaf_result_attribute", "", &why) < 0 ||
	    ld_attr_list(&m->terminal, cf, "terminal_result_attribute", "", &why) < 0 ||
	    ld_keyword(cf, "scope", "sub", scopes, scope_v, &m->scope, &why) < 0 ||
	    (table_cf_has(cf, "tls_require_cert") &&
	     ld_keyword(cf, "tls_require_cert", "no", reqs, req_v, &m->tls_require, &why) < 0) ||
	    table_cf_bool(cf, "bind", true, &m->bind, &why) < 0 ||
	    table_cf_bool(cf, "start_tls", false, &m->start_tls, &why) < 0 ||
	    table_cf_long(cf, "version", 3, 2, 3, &version, &why) < 0 ||
	    table_cf_long(cf, "dereference", 0, 0, 3, &deref, &why) < 0 ||
	    table_cf_long(cf, "timeout", 10, 1, 3600, &m->timeout, &why) < 0 ||
	    table_cf_long(cf, "size_limit", 0, 0, INT_MAX, &m->size_limit, &why) < 0 ||
	    table_cf_long(cf, "recursion_limit", 1000, 1, INT_MAX, &m->recursion_limit, &why) < 0 ||
	    table_cf_long(cf, "expansion_limit", 0, 0, INT_MAX, &m->expansion_limit, &why) < 0 ||
	    table_cf_long(cf, "retry_interval", 30, 1, 86400, &retry, &why) < 0 ||
	    table_cf_bool(cf, "auth_bind", false, &m->auth_bind, &why) < 0)
		goto bad;
	m->auth_bind_userdn = cf_dup(cf, "auth_bind_userdn", NULL);
	if (m->auth_bind_userdn && !m->auth_bind) {
		errbuf_set(&why, "%s: auth_bind_userdn needs auth_bind = yes", name);
		goto bad;
	}
	if (m->auth_bind_userdn &&
	    table_expand_parse(&m->x, m->auth_bind_userdn, true, &why) <= 0) {
		if (errbuf_str(&why)[0] == '\0')
			errbuf_set(&why, "%s: auth_bind_userdn = %s: expected a DN "
				   "template with %%u, %%s or %%d", name,
				   m->auth_bind_userdn);
		goto bad;
	}
	if (m->result.n + m->special.n + m->leaf.n + m->terminal.n == 0) {
		errbuf_set(&why, "%s: result_attribute: no attribute to return", name);
		goto bad;
	}
	m->version = (int)version;
	m->deref = (int)deref;
	m->attrs = xcalloc(m->result.n + m->special.n + m->leaf.n + m->terminal.n + 1,
			   sizeof(*m->attrs));
	for (size_t i = 0; i < m->result.n; i++)
		m->attrs[n++] = xstrdup(m->result.v[i]);
	for (size_t i = 0; i < m->special.n; i++)
		m->attrs[n++] = xstrdup(m->special.v[i]);
	for (size_t i = 0; i < m->leaf.n; i++)
		m->attrs[n++] = xstrdup(m->leaf.v[i]);
	for (size_t i = 0; i < m->terminal.n; i++)
		m->attrs[n++] = xstrdup(m->terminal.v[i]);
	if (table_expand_parse(&m->x, m->query_filter, true, &why) < 0 ||
	    table_expand_parse(&m->x, m->search_base, true, &why) < 0 ||
	    table_expand_parse(&m->x, m->result_format, false, &why) < 0 ||
	    table_expand_set_domain(&m->x, table_cf_str(cf, "domain", ""), &why) < 0 ||
	    table_cache_setup(t, cf, &why) < 0)
		goto bad;
	table_cf_free(&cf);
	table_net_pool_init(&m->pool, 1, (unsigned)retry, (unsigned)m->timeout);
	table_net_pool_init(&m->bind_pool, 1, (unsigned)retry, (unsigned)m->timeout);
	t->priv = m;
	return TABLE_OPEN_OK;
bad:
	errbuf_set(err, "%s: %s", t->spec, errbuf_str(&why));
	table_cf_free(&cf);
	ld_free(m);
	return TABLE_OPEN_CONFIG;
}

static void
ld_close_handle(void *h)
{
	ldap_unbind_ext_s(h, NULL, NULL);
}

/* Connects (libldap tries the URIs in order), StartTLS, and the service
 * bind (bind = yes) when service is true. */
static LDAP *
ld_connect(struct ld_table *m, bool service, struct errbuf *err)
{
	struct timeval tv = { .tv_sec = m->timeout };
	int rc, zero = 0, sl = (int)m->size_limit;
	LDAP *ld = NULL;

	rc = ldap_initialize(&ld, m->uris);
	if (rc != LDAP_SUCCESS) {
		errbuf_set(err, "%s: %s", m->uris, ldap_err2string(rc));
		return NULL;
	}
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &m->version);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
	ldap_set_option(ld, LDAP_OPT_TIMELIMIT, &m->timeout);
	ldap_set_option(ld, LDAP_OPT_SIZELIMIT, &sl);
	ldap_set_option(ld, LDAP_OPT_DEREF, &m->deref);
	ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	if (m->tls_require >= 0 || m->tls_ca_file || m->tls_ca_dir || m->tls_cert) {
		if (m->tls_require >= 0)
			ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &m->tls_require);
		if (m->tls_ca_file)
			ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, m->tls_ca_file);
		if (m->tls_ca_dir)
			ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTDIR, m->tls_ca_dir);
		if (m->tls_cert)
			ldap_set_option(ld, LDAP_OPT_X_TLS_CERTFILE, m->tls_cert);
		if (m->tls_key)
			ldap_set_option(ld, LDAP_OPT_X_TLS_KEYFILE, m->tls_key);
		ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
	}
	if (m->start_tls && (rc = ldap_start_tls_s(ld, NULL, NULL)) != LDAP_SUCCESS) {
		errbuf_set(err, "%s: StartTLS: %s", m->uris, ldap_err2string(rc));
		ldap_unbind_ext_s(ld, NULL, NULL);
		return NULL;
	}
	if (service && m->bind) {
		struct berval cred = { .bv_val = m->bind_pw, .bv_len = strlen(m->bind_pw) };

		rc = ldap_sasl_bind_s(ld, m->bind_dn, LDAP_SASL_SIMPLE, &cred,
				      NULL, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			errbuf_set(err, "%s: bind as \"%s\": %s", m->uris, m->bind_dn,
				   ldap_err2string(rc));
			ldap_unbind_ext_s(ld, NULL, NULL);
			return NULL;
		}
	}
	return ld;
}

/* Errors after which the connection is unusable. */
static bool
ld_conn_error(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR ||
	    rc == LDAP_TIMEOUT || rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY ||
	    rc == LDAP_LOCAL_ERROR || rc == LDAP_ENCODING_ERROR ||
	    rc == LDAP_DECODING_ERROR;
}

/* Adds the values of attr in entry e. 1 some added, 0 none, -1 error. */
static int
ld_add_values(struct ld_walk *w, LDAPMessage *e, const char *attr)
{
	struct berval **vals = ldap_get_values_len(w->ld, e, attr);
	int added = 0;

	if (vals == NULL)
		return 0;
	for (size_t i = 0; vals[i]; i++) {
		struct errbuf why;
		char *v;
		int r;

		if (vals[i]->bv_len == 0)
			continue;
		if (memchr(vals[i]->bv_val, '\0', vals[i]->bv_len)) {
			errbuf_set(w->err, "attribute %s of the result for \"%s\" "
				   "contains a NUL byte", attr, w->key);
			ldap_value_free_len(vals);
			return -1;
		}
		v = xstrndup(vals[i]->bv_val, vals[i]->bv_len);
		r = table_expand(&w->m->x, w->m->result_format, v, w->key,
				 w->value_r, NULL, NULL, &why);
		free(v);
		if (r < 0) {
			errbuf_set(w->err, "result for \"%s\": %s", w->key, errbuf_str(&why));
			ldap_value_free_len(vals);
			return -1;
		}
		if (r > 0) {
			added = 1;
			if (w->m->expansion_limit > 0 && ++w->count > w->m->expansion_limit) {
				errbuf_set(w->err, "result for \"%s\" exceeds expansion_limit = %ld",
					   w->key, w->m->expansion_limit);
				ldap_value_free_len(vals);
				return -1;
			}
		}
	}
	ldap_value_free_len(vals);
	return added;
}

static int ld_search(struct ld_walk *w, const char *base, int scope,
		     const char *filter, long depth, int *rc_r);

/* Postfix's order: terminal attributes end the entry; leaf attributes
 * count only in entries without special (DN) attributes; special
 * attributes are DNs searched (base scope) in turn. */
static int
ld_entry(struct ld_walk *w, LDAPMessage *e, long depth)
{
	struct ld_table *m = w->m;
	bool has_special = false;
	int r;

	for (size_t i = 0; i < m->terminal.n; i++) {
		if ((r = ld_add_values(w, e, m->terminal.v[i])) < 0)
			return -1;
		if (r > 0)
			has_special = true;	/* reused as "terminal found" */
	}
	if (has_special)
		return 0;
	for (size_t i = 0; i < m->special.n; i++) {
		struct berval **vals = ldap_get_values_len(w->ld, e, m->special.v[i]);

		if (vals && vals[0])
			has_special = true;
		if (vals)
			ldap_value_free_len(vals);
	}
	for (size_t i = 0; i < m->result.n; i++)
		if (ld_add_values(w, e, m->result.v[i]) < 0)
			return -1;
	if (!has_special)
		for (size_t i = 0; i < m->leaf.n; i++)
			if (ld_add_values(w, e, m->leaf.v[i]) < 0)
				return -1;
	if (!has_special)
		return 0;
	if (depth >= m->recursion_limit) {
		errbuf_set(w->err, "recursion_limit = %ld exceeded for \"%s\"",
			   m->recursion_limit, w->key);
		return -1;
	}
	for (size_t i = 0; i < m->special.n; i++) {
		struct berval **vals = ldap_get_values_len(w->ld, e, m->special.v[i]);

		for (size_t j = 0; vals && vals[j]; j++) {
			char *dn;
			int rc;

			if (vals[j]->bv_len == 0 ||
			    memchr(vals[j]->bv_val, '\0', vals[j]->bv_len))
				continue;
			dn = xstrndup(vals[j]->bv_val, vals[j]->bv_len);
			r = ld_search(w, dn, LDAP_SCOPE_BASE, "(objectClass=*)",
				      depth + 1, &rc);
			free(dn);
			if (r < 0) {
				ldap_value_free_len(vals);
				return -1;
			}
		}
		if (vals)
			ldap_value_free_len(vals);
	}
	return 0;
}

/* One search and its entries. 0 done (a missing base is no error), -1 +
 * w->err; *rc_r = the LDAP result code. */
static int
ld_search(struct ld_walk *w, const char *base, int scope, const char *filter,
	  long depth, int *rc_r)
{
	struct timeval tv = { .tv_sec = w->m->timeout };
	LDAPMessage *res = NULL;
	int rc, r = 0;

	rc = ldap_search_ext_s(w->ld, base, scope, filter, w->m->attrs, 0,
			       NULL, NULL, &tv, (int)w->m->size_limit, &res);
	*rc_r = rc;
	if (rc == LDAP_NO_SUCH_OBJECT) {
		ldap_msgfree(res);
		return 0;
	}
	if (rc != LDAP_SUCCESS) {
		if (rc == LDAP_SIZELIMIT_EXCEEDED)
			errbuf_set(w->err, "search for \"%s\" exceeds size_limit = %ld",
				   w->key, w->m->size_limit);
		else
			errbuf_set(w->err, "search for \"%s\" under \"%s\" failed: %s",
				   w->key, base, ldap_err2string(rc));
		ldap_msgfree(res);
		return -1;
	}
	for (LDAPMessage *e = ldap_first_entry(w->ld, res); e;
	     e = ldap_next_entry(w->ld, e))
		if ((r = ld_entry(w, e, depth)) < 0)
			break;
	ldap_msgfree(res);
	return r;
}

static enum table_status
ld_lookup(struct table *t, const char *key, struct buf *value_r,
	  struct errbuf *err)
{
	struct ld_table *m = t->priv;
	struct table_net_conn *c;
	enum table_status st;
	struct errbuf why;
	struct buf filter, base;
	int r;

	st = table_expand_check_domain(&m->x, key, err);
	if (st != TABLE_FOUND)
		return st;
	buf_init(&filter, LD_FILTER_MAX);
	buf_init(&base, LD_FILTER_MAX);
	r = table_expand(&m->x, m->query_filter, key, NULL, &filter,
			 table_quote_ldap_filter, NULL, &why);
	if (r > 0 && m->search_base[0] != '\0')
		r = table_expand(&m->x, m->search_base, key, NULL, &base,
				 table_quote_ldap_dn, NULL, &why);
	if (r <= 0) {
		if (r < 0)
			errbuf_set(err, "%s", errbuf_str(&why));
		buf_free(&filter);
		buf_free(&base);
		return r < 0 ? TABLE_CONFIG : TABLE_NOTFOUND;
	}
	if ((c = table_net_acquire(&m->pool, err)) == NULL) {
		buf_free(&filter);
		buf_free(&base);
		return TABLE_TEMPFAIL;
	}
	for (int attempt = 0; ; attempt++) {
		bool reused = c->handle != NULL;
		struct ld_walk w = { .m = m, .key = key, .value_r = value_r, .err = err };
		unsigned wait_s;
		int order[1], rc;

		if (c->handle == NULL) {
			if (table_net_servers(&m->pool, false, order, &wait_s) == 0) {
				errbuf_set(err, "no LDAP server available (the last attempt "
					   "failed; next try in %u s)", wait_s);
				st = TABLE_TEMPFAIL;
				break;
			}
			if ((c->handle = ld_connect(m, true, err)) == NULL) {
				table_net_server_failed(&m->pool, 0);
				st = TABLE_TEMPFAIL;
				break;
			}
			table_net_server_ok(&m->pool, 0);
		}
		w.ld = c->handle;
		buf_reset(value_r);
		r = ld_search(&w, buf_cstr(&base), m->scope, buf_cstr(&filter), 0, &rc);
		if (r < 0 && ld_conn_error(rc)) {
			ld_close_handle(c->handle);
			c->handle = NULL;
			/* A kept connection may have been closed by the server
			 * meanwhile: one more try on a new one. */
			if (reused && attempt == 0)
				continue;
			table_net_server_failed(&m->pool, 0);
		}
		if (r < 0) {
			buf_reset(value_r);
			st = TABLE_TEMPFAIL;
		} else {
			st = value_r->len > 0 ? TABLE_FOUND : TABLE_NOTFOUND;
		}
		break;
	}
	table_net_release(&m->pool, c);
	buf_free(&filter);
	buf_free(&base);
	return st;
}

static void
ld_warnings(struct table *t, struct strlist *out)
{
	struct ld_table *m = t->priv;

	for (size_t i = 0; i < m->warnings.n; i++)
		strlist_add(out, m->warnings.v[i]);
}

static void
ld_close(struct table *t)
{
	struct ld_table *m = t->priv;

	table_net_pool_deinit(&m->pool, ld_close_handle);
	table_net_pool_deinit(&m->bind_pool, ld_close_handle);
	ld_free(m);
	t->priv = NULL;
}

/* ---- auth_bind: the LDAP server checks a user's password ---- */

/*
 * Runs op on a connection of pool (service-bound when service is true),
 * connecting as needed; a kept connection found dead is replaced once.
 * op returns an LDAP result code. 0: op ran, *rc_r its code (not a
 * connection error); -1 + err: no server could be reached.
 */
static int
ld_with_conn(struct ld_table *m, struct table_net_pool *pool, bool service,
	     int (*op)(LDAP *ld, void *arg), void *arg, int *rc_r,
	     struct errbuf *err)
{
	struct table_net_conn *c;
	int r = -1;

	if ((c = table_net_acquire(pool, err)) == NULL)
		return -1;
	for (int attempt = 0; ; attempt++) {
		bool reused = c->handle != NULL;
		unsigned wait_s;
		int order[1];

		if (c->handle == NULL) {
			if (table_net_servers(pool, false, order, &wait_s) == 0) {
				errbuf_set(err, "no LDAP server available (the last "
					   "attempt failed; next try in %u s)", wait_s);
				break;
			}
			if ((c->handle = ld_connect(m, service, err)) == NULL) {
				table_net_server_failed(pool, 0);
				break;
			}
			table_net_server_ok(pool, 0);
		}
		*rc_r = op(c->handle, arg);
		if (ld_conn_error(*rc_r)) {
			ld_close_handle(c->handle);
			c->handle = NULL;
			if (reused && attempt == 0)
				continue;
			table_net_server_failed(pool, 0);
			errbuf_set(err, "%s: %s", m->uris, ldap_err2string(*rc_r));
			break;
		}
		r = 0;
		break;
	}
	table_net_release(pool, c);
	return r;
}

struct ld_find {
	struct ld_table *m;
	const char      *base, *filter;
	char            *dn;		/* owned: the one entry found */
	int              entries;
};

static int
ld_find_op(LDAP *ld, void *arg)
{
	static char *no_attrs[] = { LDAP_NO_ATTRS, NULL };
	struct ld_find *f = arg;
	struct timeval tv = { .tv_sec = f->m->timeout };
	LDAPMessage *res = NULL;
	int rc;

	free(f->dn);
	f->dn = NULL;
	f->entries = 0;
	rc = ldap_search_ext_s(ld, f->base, f->m->scope, f->filter, no_attrs, 0,
			       NULL, NULL, &tv, 2, &res);
	if (rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED) {
		for (LDAPMessage *e = ldap_first_entry(ld, res); e;
		     e = ldap_next_entry(ld, e)) {
			if (f->entries++ == 0) {
				char *dn = ldap_get_dn(ld, e);

				f->dn = dn ? xstrdup(dn) : NULL;
				ldap_memfree(dn);
			}
		}
		if (rc == LDAP_SIZELIMIT_EXCEEDED)
			f->entries = 2;
		rc = LDAP_SUCCESS;
	}
	ldap_msgfree(res);
	return rc;
}

struct ld_bind {
	const char    *dn;
	struct berval  cred;
};

static int
ld_bind_op(LDAP *ld, void *arg)
{
	struct ld_bind *b = arg;

	return ldap_sasl_bind_s(ld, b->dn, LDAP_SASL_SIMPLE, &b->cred, NULL,
				NULL, NULL);
}

bool
table_ldap_is_auth_bind(const struct table *t)
{
	const struct ld_table *m = t->priv;

	return t->drv == &table_ldap_driver && m != NULL && m->auth_bind;
}

/* The user's DN: the auth_bind_userdn template, or the one entry that
 * query_filter finds under search_base (on a lookup connection). */
static enum table_status
ld_user_dn(struct ld_table *m, const char *user, char **dn_r,
	   struct errbuf *err)
{
	struct ld_find f = { .m = m };
	struct buf filter, base;
	struct errbuf why;
	int r, rc;

	buf_init(&base, LD_FILTER_MAX);
	if (m->auth_bind_userdn) {
		r = table_expand(&m->x, m->auth_bind_userdn, user, NULL, &base,
				 table_quote_ldap_dn, NULL, &why);
		if (r < 0)
			errbuf_set(err, "%s", errbuf_str(&why));
		else if (r == 0)
			errbuf_set(err, "no DN for \"%s\" from auth_bind_userdn", user);
		if (r > 0)
			*dn_r = buf_steal(&base);
		buf_free(&base);
		return r > 0 ? TABLE_FOUND : r < 0 ? TABLE_CONFIG : TABLE_NOTFOUND;
	}
	buf_init(&filter, LD_FILTER_MAX);
	r = table_expand(&m->x, m->query_filter, user, NULL, &filter,
			 table_quote_ldap_filter, NULL, &why);
	if (r > 0 && m->search_base[0] != '\0')
		r = table_expand(&m->x, m->search_base, user, NULL, &base,
				 table_quote_ldap_dn, NULL, &why);
	if (r <= 0) {
		if (r < 0)
			errbuf_set(err, "%s", errbuf_str(&why));
		else
			errbuf_set(err, "unknown user \"%s\"", user);
		buf_free(&filter);
		buf_free(&base);
		return r < 0 ? TABLE_CONFIG : TABLE_NOTFOUND;
	}
	f.base = buf_cstr(&base);
	f.filter = buf_cstr(&filter);
	r = ld_with_conn(m, &m->pool, true, ld_find_op, &f, &rc, err);
	buf_free(&filter);
	buf_free(&base);
	if (r < 0) {
		free(f.dn);
		return TABLE_TEMPFAIL;
	}
	if (rc == LDAP_NO_SUCH_OBJECT || (rc == LDAP_SUCCESS && f.entries == 0)) {
		errbuf_set(err, "unknown user \"%s\"", user);
		free(f.dn);
		return TABLE_NOTFOUND;
	}
	if (rc != LDAP_SUCCESS || f.entries > 1 || f.dn == NULL) {
		if (rc != LDAP_SUCCESS)
			errbuf_set(err, "search for \"%s\" failed: %s", user,
				   ldap_err2string(rc));
		else
			errbuf_set(err, "search for \"%s\" found %s", user,
				   f.dn ? "more than one entry" : "an entry without DN");
		free(f.dn);
		return TABLE_TEMPFAIL;
	}
	*dn_r = f.dn;
	return TABLE_FOUND;
}

enum table_status
table_ldap_auth_bind(struct table *t, const char *user, const char *pw,
		     size_t pwlen, struct errbuf *err)
{
	struct ld_table *m = t->priv;
	char key[TABLE_KEY_MAX + 1];
	struct ld_bind b;
	enum table_status st;
	char *dn = NULL;
	size_t len;
	int rc;

	errbuf_clear(err);
	if (t->surrogate) {
		errbuf_set(err, "%s", t->surrogate);
		return TABLE_TEMPFAIL;
	}
	if (!table_ldap_is_auth_bind(t)) {
		errbuf_set(err, "%s: auth_bind = yes is not set", t->spec);
		return TABLE_CONFIG;
	}
	len = strnlen(user, TABLE_KEY_MAX + 1);
	if (len == 0 || len > TABLE_KEY_MAX) {
		errbuf_set(err, "unknown user");
		return TABLE_NOTFOUND;
	}
	/* An empty password would be an unauthenticated bind, which servers
	 * accept as anonymous (RFC 4513 5.1.2): never a success. */
	if (pwlen == 0 || memchr(pw, '\0', pwlen) != NULL) {
		errbuf_set(err, "empty password or NUL in password for \"%s\"", user);
		return TABLE_NOTFOUND;
	}
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)user[i];

		key[i] = ((t->flags & TABLE_F_FOLD) && c >= 'A' && c <= 'Z')
			 ? (char)(c + 32) : (char)c;
	}
	st = table_expand_check_domain(&m->x, key, err);
	if (st != TABLE_FOUND) {
		if (st == TABLE_NOTFOUND)
			errbuf_set(err, "unknown user \"%s\" (domain)", key);
		return st;
	}
	if ((st = ld_user_dn(m, key, &dn, err)) != TABLE_FOUND)
		return st;
	b.dn = dn;
	b.cred.bv_val = (char *)pw;
	b.cred.bv_len = pwlen;
	if (ld_with_conn(m, &m->bind_pool, false, ld_bind_op, &b, &rc, err) < 0) {
		st = TABLE_TEMPFAIL;
	} else if (rc == LDAP_SUCCESS) {
		st = TABLE_FOUND;
	} else if (rc == LDAP_INVALID_CREDENTIALS || rc == LDAP_INVALID_DN_SYNTAX ||
		   rc == LDAP_NO_SUCH_OBJECT || rc == LDAP_INAPPROPRIATE_AUTH ||
		   rc == LDAP_UNWILLING_TO_PERFORM) {
		errbuf_set(err, "bind as \"%s\": %s", dn, ldap_err2string(rc));
		st = TABLE_NOTFOUND;
	} else {
		errbuf_set(err, "bind as \"%s\": %s", dn, ldap_err2string(rc));
		st = TABLE_TEMPFAIL;
	}
	free(dn);
	return st;
}

const struct table_driver table_ldap_driver = {
	.type = "ldap", .flags = TABLE_F_BLOCKING,
	.open = ld_open, .lookup = ld_lookup, .warnings = ld_warnings,
	.close = ld_close,
};
