/*
 * table_mysql.c - mysql:/path/file.cf tables (Postfix mysql_table(5)) over
 * MariaDB Connector/C: several hosts tried in random order with fail-over
 * and back-off, pooled connections reused across lookups, bounded by
 * connect/read/write timeouts; every row and column of the result joined
 * with commas. Values in queries are escaped with mysql_real_escape_string.
 * Must not: run on the event loop (TABLE_F_BLOCKING), answer NOTFOUND when
 * the server could not answer (TEMPFAIL), allow several statements in one
 * query, or connect at open time (a server down at start-up is no error).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>
#include <errmsg.h>

#include "backends/table_cache.h"
#include "backends/table_cf.h"
#include "backends/table_driver.h"
#include "backends/table_expand.h"
#include "backends/table_mysql.h"
#include "backends/table_net.h"
#include "core/lib/xmalloc.h"

#define MY_QUERY_MAX	((size_t)65536)

static const char *const my_known[] = {
	"hosts", "user", "password", "dbname", "query", "result_format",
	"domain", "expansion_limit", "option_file", "option_group",
	"require_result_set", "tls_cert_file", "tls_key_file", "tls_CAfile",
	"tls_CApath", "tls_ciphers", "tls_verify_cert", "idle_interval",
	"retry_interval", "charset", "timeout", "table", "select_field",
	"where_field", "additional_conditions", TABLE_CACHE_CF_KEYS, NULL
};

struct my_host {
	char        *spec;		/* as configured, for messages */
	char        *host;		/* NULL for unix: */
	char        *socket;
	unsigned     port;
};

struct my_table {
	struct my_host      *hosts;
	size_t               nhosts;
	char                *user, *password, *dbname, *query, *result_format;
	char                *charset, *option_file, *option_group;
	char                *tls_cert, *tls_key, *tls_ca, *tls_capath, *tls_ciphers;
	bool                 tls_verify, require_result_set;
	long                 expansion_limit, timeout, idle_interval;
	struct table_expand  x;
	struct table_net_pool pool;
	struct strlist       warnings;
};

static pthread_once_t my_once = PTHREAD_ONCE_INIT;
static int my_lib_ok;

static void
my_library_init(void)
{
	my_lib_ok = mysql_library_init(0, NULL, NULL) == 0;
}

int
table_mysql_quote(void *arg, const char *s, struct buf *out, struct errbuf *err)
{
	MYSQL *db = arg;
	size_t n = strlen(s);
	char *tmp = xmalloc(2 * n + 1);
	unsigned long r = mysql_real_escape_string(db, tmp, s, (unsigned long)n);

	if (r == (unsigned long)-1) {
		free(tmp);
		errbuf_set(err, "cannot escape value: %s", mysql_error(db));
		return -1;
	}
	if (buf_append(out, tmp, r) < 0) {
		free(tmp);
		errbuf_set(err, "query longer than %zu bytes", out->max);
		return -1;
	}
	free(tmp);
	return 0;
}

/* "unix:/path", "inet:host[:port]", "host[:port]", "[v6addr][:port]". */
static int
my_host_parse(struct my_host *h, const char *spec, struct errbuf *err)
{
	const char *s = spec, *port = NULL, *end;
	char *endp;

	memset(h, 0, sizeof(*h));
	h->spec = xstrdup(spec);
	h->port = 3306;
	if (strncmp(s, "unix:", 5) == 0) {
		if (s[5] != '/') {
			errbuf_set(err, "hosts: \"%s\": expected unix:/absolute/path", spec);
			return -1;
		}
		h->socket = xstrdup(s + 5);
		return 0;
	}
	if (strncmp(s, "inet:", 5) == 0)
		s += 5;
	if (*s == '[') {
		end = strchr(s, ']');
		if (end == NULL || end == s + 1 || (end[1] != '\0' && end[1] != ':')) {
			errbuf_set(err, "hosts: \"%s\": expected [address]:port", spec);
			return -1;
		}
		h->host = xstrndup(s + 1, (size_t)(end - s - 1));
		if (end[1] == ':')
			port = end + 2;
	} else {
		end = strchr(s, ':');
		h->host = end ? xstrndup(s, (size_t)(end - s)) : xstrdup(s);
		if (end)
			port = end + 1;
		if (*h->host == '\0' || (end && strchr(end + 1, ':'))) {
			errbuf_set(err, "hosts: \"%s\": expected host, host:port, "
				   "inet:host:port or unix:/path", spec);
			return -1;
		}
	}
	if (port) {
		long p;

		errno = 0;
		p = strtol(port, &endp, 10);
		if (*port == '\0' || *endp != '\0' || errno || p < 1 || p > 65535) {
			errbuf_set(err, "hosts: \"%s\": bad port number", spec);
			return -1;
		}
		h->port = (unsigned)p;
	}
	return 0;
}

static char *
cf_dup(const struct table_cf *cf, const char *name, const char *def)
{
	const char *v = table_cf_str(cf, name, def);

	return v && *v ? xstrdup(v) : NULL;
}

static void
my_close_handle(void *h)
{
	mysql_close(h);
}

static void
my_free(struct my_table *m)
{
	for (size_t i = 0; i < m->nhosts; i++) {
		free(m->hosts[i].spec);
		free(m->hosts[i].host);
		free(m->hosts[i].socket);
	}
	free(m->hosts);
	free(m->user);
	if (m->password) {
		memset(m->password, 0, strlen(m->password));
		free(m->password);
	}
	free(m->dbname);
	free(m->query);
	free(m->result_format);
	free(m->charset);
	free(m->option_file);
	free(m->option_group);
	free(m->tls_cert);
	free(m->tls_key);
	free(m->tls_ca);
	free(m->tls_capath);
	free(m->tls_ciphers);
	table_expand_free(&m->x);
	strlist_free(&m->warnings);
	free(m);
}

/* The query: "query", or the old select_field/table/where_field form. */
static char *
my_build_query(const struct table_cf *cf, struct errbuf *err)
{
	const char *q = table_cf_str(cf, "query", NULL);
	const char *tab, *sel, *where, *more;

	if (q && *q)
		return xstrdup(q);
	tab = table_cf_str(cf, "table", NULL);
	sel = table_cf_str(cf, "select_field", NULL);
	where = table_cf_str(cf, "where_field", NULL);
	more = table_cf_str(cf, "additional_conditions", "");
	if (!tab || !sel || !where || !*tab || !*sel || !*where) {
		errbuf_set(err, "%s: missing \"query\" (or \"table\", \"select_field\" "
			   "and \"where_field\")", table_cf_path(cf));
		return NULL;
	}
	return xasprintf("SELECT %s FROM %s WHERE %s='%%s' %s", sel, tab, where, more);
}

static int
my_open(struct table *t, const char *name, struct errbuf *err)
{
	struct table_cf *cf = NULL;
	struct my_table *m;
	struct strlist hosts;
	struct errbuf why;
	long retry;
	int r;

	pthread_once(&my_once, my_library_init);
	if (!my_lib_ok) {
		errbuf_set(err, "%s: MariaDB client library initialization failed", t->spec);
		return TABLE_OPEN_UNAVAILABLE;
	}
	m = xcalloc(1, sizeof(*m));
	strlist_init(&m->warnings);
	table_expand_init(&m->x, t->spec);
	r = table_cf_load(name, my_known, &cf, &m->warnings, &why);
	if (r != TABLE_CF_OK) {
		errbuf_set(err, "%s: %s", t->spec, errbuf_str(&why));
		my_free(m);
		return r == TABLE_CF_UNREADABLE ? TABLE_OPEN_UNAVAILABLE : TABLE_OPEN_CONFIG;
	}
	strlist_init(&hosts);
	if (strlist_split(&hosts, table_cf_str(cf, "hosts", "localhost")) < 0 ||
	    hosts.n == 0) {
		errbuf_set(&why, "%s: hosts: expected a list of host names", name);
		goto bad;
	}
	m->hosts = xcalloc(hosts.n, sizeof(*m->hosts));
	for (size_t i = 0; i < hosts.n; i++) {
		m->nhosts++;
		if (my_host_parse(&m->hosts[i], hosts.v[i], &why) < 0)
			goto bad;
	}
	m->user = cf_dup(cf, "user", NULL);
	m->password = cf_dup(cf, "password", NULL);
	m->dbname = cf_dup(cf, "dbname", NULL);
	m->result_format = cf_dup(cf, "result_format", "%s");
	m->charset = cf_dup(cf, "charset", "utf8mb4");
	m->option_file = cf_dup(cf, "option_file", NULL);
	m->option_group = cf_dup(cf, "option_group", "client");
	m->tls_cert = cf_dup(cf, "tls_cert_file", NULL);
	m->tls_key = cf_dup(cf, "tls_key_file", NULL);
	m->tls_ca = cf_dup(cf, "tls_CAfile", NULL);
	m->tls_capath = cf_dup(cf, "tls_CApath", NULL);
	m->tls_ciphers = cf_dup(cf, "tls_ciphers", NULL);
	if (m->dbname == NULL) {
		errbuf_set(&why, "%s: missing \"dbname\"", name);
		goto bad;
	}
	if ((m->query = my_build_query(cf, &why)) == NULL)
		goto bad;
	if (table_cf_bool(cf, "tls_verify_cert", false, &m->tls_verify, &why) < 0 ||
	    table_cf_bool(cf, "require_result_set", true, &m->require_result_set, &why) < 0 ||
	    table_cf_long(cf, "expansion_limit", 0, 0, INT_MAX, &m->expansion_limit, &why) < 0 ||
	    table_cf_long(cf, "timeout", 10, 1, 3600, &m->timeout, &why) < 0 ||
	    table_cf_long(cf, "idle_interval", 60, 1, 86400, &m->idle_interval, &why) < 0 ||
	    table_cf_long(cf, "retry_interval", 60, 1, 86400, &retry, &why) < 0)
		goto bad;
	if (table_expand_parse(&m->x, m->query, true, &why) < 0 ||
	    table_expand_parse(&m->x, m->result_format, false, &why) < 0 ||
	    table_expand_set_domain(&m->x, table_cf_str(cf, "domain", ""), &why) < 0 ||
	    table_cache_setup(t, cf, &why) < 0)
		goto bad;
	strlist_free(&hosts);
	table_cf_free(&cf);
	table_net_pool_init(&m->pool, m->nhosts, (unsigned)retry, (unsigned)m->timeout);
	t->priv = m;
	return TABLE_OPEN_OK;
bad:
	errbuf_set(err, "%s: %s", t->spec, errbuf_str(&why));
	strlist_free(&hosts);
	table_cf_free(&cf);
	my_free(m);
	return TABLE_OPEN_CONFIG;
}

/* One attempt at one host. NULL + err (the host is then in back-off). */
static MYSQL *
my_connect_host(struct my_table *m, const struct my_host *h, struct errbuf *err)
{
	unsigned int to = (unsigned int)m->timeout;
	my_bool off = 0, verify = m->tls_verify;
	MYSQL *db = mysql_init(NULL);

	if (db == NULL) {
		errbuf_set(err, "%s: out of memory", h->spec);
		return NULL;
	}
	mysql_options(db, MYSQL_OPT_CONNECT_TIMEOUT, &to);
	mysql_options(db, MYSQL_OPT_READ_TIMEOUT, &to);
	mysql_options(db, MYSQL_OPT_WRITE_TIMEOUT, &to);
	mysql_options(db, MYSQL_OPT_RECONNECT, &off);
	mysql_options(db, MYSQL_OPT_LOCAL_INFILE, &off);
	if (m->option_file)
		mysql_options(db, MYSQL_READ_DEFAULT_FILE, m->option_file);
	if (m->option_group)
		mysql_options(db, MYSQL_READ_DEFAULT_GROUP, m->option_group);
	mysql_options(db, MYSQL_SET_CHARSET_NAME, m->charset);
	if (m->tls_cert || m->tls_key || m->tls_ca || m->tls_capath || m->tls_ciphers) {
		mysql_ssl_set(db, m->tls_key, m->tls_cert, m->tls_ca, m->tls_capath,
			      m->tls_ciphers);
		mysql_options(db, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
	}
	/* No CLIENT_MULTI_STATEMENTS: one query can only ever be one
	 * statement, whatever a key contains. */
	if (mysql_real_connect(db, h->socket ? "localhost" : h->host, m->user,
			       m->password, m->dbname, h->socket ? 0 : h->port,
			       h->socket, 0) == NULL) {
		errbuf_set(err, "%s: %s", h->spec, mysql_error(db));
		mysql_close(db);
		return NULL;
	}
	return db;
}

/* Connects c to the first host that answers. 0, or -1 + err. */
static int
my_connect(struct my_table *m, struct table_net_conn *c, struct errbuf *err)
{
	int order[m->nhosts];
	unsigned wait_s;
	size_t n = table_net_servers(&m->pool, true, order, &wait_s);
	struct errbuf last;

	if (n == 0) {
		errbuf_set(err, "no MySQL server available (the last attempt failed; "
			   "next try in %u s)", wait_s);
		return -1;
	}
	errbuf_clear(&last);
	for (size_t i = 0; i < n; i++) {
		MYSQL *db = my_connect_host(m, &m->hosts[order[i]], &last);

		if (db) {
			table_net_server_ok(&m->pool, order[i]);
			c->handle = db;
			c->server = order[i];
			return 0;
		}
		table_net_server_failed(&m->pool, order[i]);
	}
	errbuf_set(err, "cannot connect to MySQL server %s", errbuf_str(&last));
	return -1;
}

static void
my_disconnect(struct table_net_conn *c)
{
	if (c->handle)
		mysql_close(c->handle);
	c->handle = NULL;
}

/* Errors after which the connection is unusable. */
static bool
my_conn_error(unsigned e)
{
	return e >= CR_MIN_ERROR && e <= CR_MAX_ERROR;
}

static enum table_status
my_collect(struct my_table *m, MYSQL_RES *res, const char *key,
	   struct buf *value_r, struct errbuf *err)
{
	unsigned nfields = mysql_num_fields(res);
	long count = 0;
	MYSQL_ROW row;

	while ((row = mysql_fetch_row(res)) != NULL) {
		unsigned long *len = mysql_fetch_lengths(res);

		for (unsigned i = 0; i < nfields; i++) {
			struct errbuf why;
			int r;

			if (row[i] == NULL)
				continue;
			if (memchr(row[i], '\0', len[i]) != NULL) {
				errbuf_set(err, "result for \"%s\" contains a NUL byte", key);
				return TABLE_TEMPFAIL;
			}
			r = table_expand(&m->x, m->result_format, row[i], key, value_r,
					 NULL, NULL, &why);
			if (r < 0) {
				errbuf_set(err, "result for \"%s\": %s", key, errbuf_str(&why));
				return TABLE_CONFIG;
			}
			if (r > 0 && m->expansion_limit > 0 && ++count > m->expansion_limit) {
				errbuf_set(err, "result for \"%s\" exceeds expansion_limit = %ld",
					   key, m->expansion_limit);
				return TABLE_TEMPFAIL;
			}
		}
	}
	return value_r->len > 0 ? TABLE_FOUND : TABLE_NOTFOUND;
}

static enum table_status
my_lookup(struct table *t, const char *key, struct buf *value_r,
	  struct errbuf *err)
{
	struct my_table *m = t->priv;
	struct table_net_conn *c;
	enum table_status st;
	struct errbuf why;
	struct buf q;

	st = table_expand_check_domain(&m->x, key, err);
	if (st != TABLE_FOUND)
		return st;
	if ((c = table_net_acquire(&m->pool, err)) == NULL)
		return TABLE_TEMPFAIL;
	if (c->handle && table_net_now_ms() - c->last_used_ms > m->idle_interval * 1000)
		my_disconnect(c);
	buf_init(&q, MY_QUERY_MAX);
	for (int attempt = 0; ; attempt++) {
		bool reused = c->handle != NULL;
		MYSQL_RES *res;
		unsigned e;
		int r;

		if (c->handle == NULL && my_connect(m, c, err) < 0) {
			st = TABLE_TEMPFAIL;
			break;
		}
		buf_reset(&q);
		r = table_expand(&m->x, m->query, key, NULL, &q, table_mysql_quote,
				 c->handle, &why);
		if (r <= 0) {
			if (r < 0)
				errbuf_set(err, "%s", errbuf_str(&why));
			st = r < 0 ? TABLE_CONFIG : TABLE_NOTFOUND;
			break;
		}
		if (mysql_real_query(c->handle, q.data, (unsigned long)q.len) != 0) {
			e = mysql_errno(c->handle);
			errbuf_set(err, "%s: query failed: %s",
				   m->hosts[c->server].spec, mysql_error(c->handle));
			if (my_conn_error(e)) {
				my_disconnect(c);
				/* A kept connection may have been closed by the
				 * server meanwhile: one more try on a new one. */
				if (reused && attempt == 0)
					continue;
				table_net_server_failed(&m->pool, c->server);
			}
			st = TABLE_TEMPFAIL;
			break;
		}
		res = mysql_store_result(c->handle);
		if (res == NULL) {
			if (mysql_field_count(c->handle) == 0) {
				if (m->require_result_set) {
					errbuf_set(err, "query for \"%s\" returned no result set", key);
					st = TABLE_TEMPFAIL;
				} else {
					st = TABLE_NOTFOUND;
				}
				break;
			}
			e = mysql_errno(c->handle);
			errbuf_set(err, "%s: reading the result failed: %s",
				   m->hosts[c->server].spec, mysql_error(c->handle));
			if (my_conn_error(e))
				my_disconnect(c);
			st = TABLE_TEMPFAIL;
			break;
		}
		st = my_collect(m, res, key, value_r, err);
		mysql_free_result(res);
		break;
	}
	buf_free(&q);
	table_net_release(&m->pool, c);
	return st;
}

static void
my_warnings(struct table *t, struct strlist *out)
{
	struct my_table *m = t->priv;

	for (size_t i = 0; i < m->warnings.n; i++)
		strlist_add(out, m->warnings.v[i]);
}

static void
my_close(struct table *t)
{
	struct my_table *m = t->priv;

	table_net_pool_deinit(&m->pool, my_close_handle);
	my_free(m);
	t->priv = NULL;
}

const struct table_driver table_mysql_driver = {
	.type = "mysql", .flags = TABLE_F_BLOCKING,
	.open = my_open, .lookup = my_lookup, .warnings = my_warnings,
	.close = my_close,
};
