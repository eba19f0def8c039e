/*
 * netlist.c - matches client addresses against mynetworks-style lists:
 * networks, files of networks, tables, and "!" exclusions, first match wins.
 * Also the address/CIDR parsing the cidr: table shares.
 * Must not: resolve host names (a name in the list is an error, not a
 * DNS lookup), log, or treat a table that cannot answer as "no match".
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "backends/table.h"
#include "backends/table_driver.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/netlist.h"

#define NETLIST_DEPTH_MAX 4

struct netlist_item {
	bool                neg;
	struct netlist_cidr cidr;
	struct table       *table;	/* non-NULL: a table item */
};

struct netlist {
	struct netlist_item *v;
	size_t               n, cap;
};

static const unsigned char v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

static void
addr_unmap(struct netlist_addr *a)
{
	if (a->family == AF_INET6 && memcmp(a->a, v4mapped, 12) == 0) {
		memmove(a->a, a->a + 12, 4);
		memset(a->a + 4, 0, 12);
		a->family = AF_INET;
	}
}

/* Parses an address of at most len bytes at s, brackets already removed. */
static int
addr_parse_n(const char *s, size_t len, struct netlist_addr *a_r)
{
	char tmp[64];

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	memset(a_r, 0, sizeof(*a_r));
	if (inet_pton(AF_INET, tmp, a_r->a) == 1) {
		a_r->family = AF_INET;
		return 0;
	}
	if (strchr(tmp, ':') && inet_pton(AF_INET6, tmp, a_r->a) == 1) {
		a_r->family = AF_INET6;
		return 0;
	}
	return -1;
}

int
netlist_addr_parse(const char *s, struct netlist_addr *a_r)
{
	size_t len = strlen(s);

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
	}
	if (addr_parse_n(s, len, a_r) < 0)
		return -1;
	addr_unmap(a_r);
	return 0;
}

int
netlist_addr_from_sockaddr(const struct sockaddr *sa, struct netlist_addr *a_r)
{
	memset(a_r, 0, sizeof(*a_r));
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;

		a_r->family = AF_INET;
		memcpy(a_r->a, &sin->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;

		a_r->family = AF_INET6;
		memcpy(a_r->a, &sin6->sin6_addr, 16);
		addr_unmap(a_r);
		return 0;
	}
	return -1;
}

void
netlist_addr_format(const struct netlist_addr *a, char *buf, size_t size)
{
	if (inet_ntop(a->family, a->a, buf, (socklen_t)size) == NULL && size > 0)
		buf[0] = '\0';
}

int
netlist_cidr_parse(const char *s, struct netlist_cidr *c_r, struct errbuf *err)
{
	const char *slash = strchr(s, '/'), *addr = s;
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	struct netlist_addr a;
	unsigned maxbits, prefix;
	bool mapped;

	if (alen >= 2 && addr[0] == '[' && addr[alen - 1] == ']') {
		addr++;
		alen -= 2;
	}
	if (addr_parse_n(addr, alen, &a) < 0) {
		errbuf_set(err, "\"%s\": bad network address", s);
		return -1;
	}
	maxbits = a.family == AF_INET ? 32 : 128;
	prefix = maxbits;
	if (slash) {
		const char *p = slash + 1;

		if (*p == '\0' || strlen(p) > 3) {
			errbuf_set(err, "\"%s\": bad network prefix length", s);
			return -1;
		}
		prefix = 0;
		for (; *p; p++) {
			if (!isdigit((unsigned char)*p)) {
				errbuf_set(err, "\"%s\": bad network prefix length", s);
				return -1;
			}
			prefix = prefix * 10 + (unsigned)(*p - '0');
		}
		if (prefix > maxbits) {
			errbuf_set(err, "\"%s\": network prefix length larger than %u",
				   s, maxbits);
			return -1;
		}
	}
	for (unsigned bit = prefix; bit < maxbits; bit++)
		if (a.a[bit / 8] & (0x80 >> (bit % 8))) {
			struct netlist_addr n = a;
			char fixed[64];

			for (unsigned b = prefix; b < maxbits; b++)
				n.a[b / 8] &= (unsigned char)~(0x80 >> (b % 8));
			netlist_addr_format(&n, fixed, sizeof(fixed));
			errbuf_set(err, "non-null host address bits in \"%s\", perhaps you should use \"%s%s%s/%u\" instead",
				   s, a.family == AF_INET6 && addr != s ? "[" : "",
				   fixed, a.family == AF_INET6 && addr != s ? "]" : "",
				   prefix);
			return -1;
		}
	/* ::ffff:a.b.c.d/n with n >= 96 is an IPv4 network: clients are
	 * matched as IPv4 once unmapped. */
	mapped = a.family == AF_INET6 && prefix >= 96 &&
	    memcmp(a.a, v4mapped, 12) == 0;
	memset(c_r, 0, sizeof(*c_r));
	if (mapped) {
		c_r->family = AF_INET;
		memcpy(c_r->net, a.a + 12, 4);
		c_r->prefix = prefix - 96;
	} else {
		c_r->family = a.family;
		memcpy(c_r->net, a.a, 16);
		c_r->prefix = prefix;
	}
	return 0;
}

bool
netlist_cidr_match(const struct netlist_cidr *c, const struct netlist_addr *a)
{
	unsigned full = c->prefix / 8, rest = c->prefix % 8;

	if (c->family != a->family)
		return false;
	if (memcmp(c->net, a->a, full) != 0)
		return false;
	if (rest) {
		unsigned char mask = (unsigned char)(0xff << (8 - rest));

		if ((c->net[full] & mask) != (a->a[full] & mask))
			return false;
	}
	return true;
}

static struct netlist_item *
netlist_push(struct netlist *nl)
{
	if (nl->n == nl->cap) {
		nl->cap = nl->cap ? nl->cap * 2 : 8;
		nl->v = xrealloc(nl->v, nl->cap * sizeof(*nl->v));
	}
	memset(&nl->v[nl->n], 0, sizeof(nl->v[nl->n]));
	return &nl->v[nl->n++];
}

static int netlist_add_value(struct netlist *nl, const char *value,
			     const char *where, int depth, struct errbuf *err);

static int
netlist_add_file(struct netlist *nl, const char *path, int depth,
		 struct errbuf *err)
{
	struct table_lines lr;
	struct buf data;
	struct stat st;
	const char *line;
	int lineno, r;

	if (depth >= NETLIST_DEPTH_MAX) {
		errbuf_set(err, "%s: files nested too deeply", path);
		return -1;
	}
	buf_init(&data, 0);
	if (table_file_read(path, &data, &st, err) != 0) {
		buf_free(&data);
		return -1;
	}
	table_lines_init(&lr, path, buf_cstr(&data), data.len);
	while ((r = table_lines_next(&lr, &line, &lineno, err)) > 0) {
		char *where = xasprintf("%s, line %d", path, lineno);

		r = netlist_add_value(nl, line, where, depth + 1, err);
		free(where);
		if (r < 0)
			break;
	}
	table_lines_free(&lr);
	buf_free(&data);
	return r < 0 ? -1 : 0;
}

static bool
looks_like_table(const char *s)
{
	const char *colon = strchr(s, ':');

	if (colon == NULL || colon == s || !isalpha((unsigned char)*s))
		return false;
	for (const char *p = s; p < colon; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
			return false;
	return true;
}

static int
netlist_add_item(struct netlist *nl, const char *item, const char *where,
		 int depth, struct errbuf *err)
{
	struct errbuf why;
	struct netlist_cidr cidr;
	struct netlist_item *it;
	const char *s = item;
	bool neg = false;

	if (*s == '!') {
		neg = true;
		s++;
	}
	if (*s == '\0' || *s == '!') {
		errbuf_set(err, "%s: \"%s\": bad list item", where, item);
		return -1;
	}
	if (*s == '/') {
		if (neg) {
			errbuf_set(err, "%s: \"%s\": a file cannot be negated; negate the items inside it",
				   where, item);
			return -1;
		}
		return netlist_add_file(nl, s, depth, err);
	}
	errbuf_clear(&why);
	if (netlist_cidr_parse(s, &cidr, &why) == 0) {
		it = netlist_push(nl);
		it->neg = neg;
		it->cidr = cidr;
		return 0;
	}
	if (looks_like_table(s) && s[0] != '[') {
		struct table *t = table_open(s, 0, &why);

		if (t == NULL) {
			errbuf_set(err, "%s: %s", where, errbuf_str(&why));
			return -1;
		}
		it = netlist_push(nl);
		it->neg = neg;
		it->table = t;
		return 0;
	}
	if (strchr(s, '/') || strchr(s, ':') || isdigit((unsigned char)*s) || *s == '[')
		errbuf_set(err, "%s: %s", where, errbuf_str(&why));
	else
		errbuf_set(err, "%s: \"%s\": not a network address, file or table (host names are not supported)",
			   where, item);
	return -1;
}

static int
netlist_add_value(struct netlist *nl, const char *value, const char *where,
		  int depth, struct errbuf *err)
{
	struct strlist items;
	int r = 0;

	strlist_init(&items);
	if (strlist_split(&items, value) < 0) {
		errbuf_set(err, "%s: \"%s\": unbalanced '{' or '}'", where, value);
		strlist_free(&items);
		return -1;
	}
	for (size_t i = 0; i < items.n && r == 0; i++)
		r = netlist_add_item(nl, items.v[i], where, depth, err);
	strlist_free(&items);
	return r;
}

struct netlist *
netlist_new(const char *value, struct errbuf *err)
{
	struct netlist *nl = xcalloc(1, sizeof(*nl));

	errbuf_clear(err);
	if (netlist_add_value(nl, value ? value : "", "network list", 0, err) < 0) {
		netlist_free(&nl);
		return NULL;
	}
	return nl;
}

void
netlist_free(struct netlist **nlp)
{
	struct netlist *nl = *nlp;

	if (nl == NULL)
		return;
	for (size_t i = 0; i < nl->n; i++)
		table_close(&nl->v[i].table);
	free(nl->v);
	xfree(nlp);
}

bool
netlist_empty(const struct netlist *nl)
{
	return nl->n == 0;
}

static int
netlist_match_addr(const struct netlist *nl, const struct netlist_addr *a,
		   struct errbuf *err)
{
	char key[64];
	struct buf value;
	struct errbuf why;
	enum table_status st;

	errbuf_clear(err);
	key[0] = '\0';
	for (size_t i = 0; i < nl->n; i++) {
		const struct netlist_item *it = &nl->v[i];

		if (it->table == NULL) {
			if (netlist_cidr_match(&it->cidr, a))
				return it->neg ? 0 : 1;
			continue;
		}
		if (key[0] == '\0')
			netlist_addr_format(a, key, sizeof(key));
		buf_init(&value, 0);
		st = table_lookup(it->table, key, &value, &why);
		buf_free(&value);
		if (st == TABLE_FOUND)
			return it->neg ? 0 : 1;
		if (st != TABLE_NOTFOUND) {
			errbuf_set(err, "%s lookup error for \"%s\": %s",
				   table_name(it->table), key, errbuf_str(&why));
			return -1;
		}
	}
	return 0;
}

int
netlist_match(const struct netlist *nl, const struct sockaddr *sa,
	      struct errbuf *err)
{
	struct netlist_addr a;

	errbuf_clear(err);
	if (netlist_addr_from_sockaddr(sa, &a) < 0)
		return 0;
	return netlist_match_addr(nl, &a, err);
}

int
netlist_match_str(const struct netlist *nl, const char *ip, struct errbuf *err)
{
	struct netlist_addr a;

	errbuf_clear(err);
	if (ip == NULL || netlist_addr_parse(ip, &a) < 0)
		return 0;
	return netlist_match_addr(nl, &a, err);
}
