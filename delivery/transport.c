/*
 * transport.c - transport(5) entries: parses "name:nexthop" and picks the
 * entry for a recipient (transport_maps search order, then the class
 * default, then relayhost). Pure except for the map lookups, which may
 * block (worker threads only).
 * Must not: resolve host names or log (errors go back in an errbuf).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "backends/table.h"
#include "core/lib/buf.h"
#include "delivery/transport.h"

static int
parse_port(const char *p, int *port_r)
{
	char *e;
	long v;

	if (*p == '\0')
		return -1;
	v = strtol(p, &e, 10);
	if (*e != '\0' || v < 1 || v > 65535)
		return -1;
	*port_r = (int)v;
	return 0;
}

static bool
host_ok(const char *h)
{
	for (; *h; h++)
		if (!isgraph((unsigned char)*h) || *h == '[' || *h == ']')
			return false;
	return true;
}

int
transport_nexthop(const char *nh, struct transport *t, struct errbuf *err)
{
	size_t n;
	const char *c;

	t->host[0] = '\0';
	t->port = 0;
	t->mx = true;
	while (*nh == ' ' || *nh == '\t')
		nh++;
	if (*nh == '\0')
		return 0;
	if (*nh == '[') {
		const char *e = strchr(nh, ']');
		if (e == NULL || e == nh + 1)
			goto bad;
		n = (size_t)(e - nh - 1);
		if (n >= sizeof(t->host))
			goto bad;
		memcpy(t->host, nh + 1, n);
		t->host[n] = '\0';
		t->mx = false;
		if (e[1] == ':') {
			if (parse_port(e + 2, &t->port) < 0)
				goto bad;
		} else if (e[1] != '\0') {
			goto bad;
		}
		if (strncasecmp(t->host, "ipv6:", 5) == 0)
			memmove(t->host, t->host + 5, strlen(t->host + 5) + 1);
		if (!host_ok(t->host))
			goto bad;
		return 0;
	}
	c = strrchr(nh, ':');
	n = c ? (size_t)(c - nh) : strlen(nh);
	if (n == 0 || n >= sizeof(t->host))
		goto bad;
	memcpy(t->host, nh, n);
	t->host[n] = '\0';
	if (c && parse_port(c + 1, &t->port) < 0)
		goto bad;
	if (!host_ok(t->host))
		goto bad;
	return 0;
bad:
	errbuf_set(err, "bad next hop \"%.200s\" (expected host, host:port, "
		   "[host] or [host]:port)", nh);
	return -1;
}

int
transport_lmtp_nexthop(const char *nh, struct transport *t, struct errbuf *err)
{
	struct sockaddr_un sun;

	while (*nh == ' ' || *nh == '\t')
		nh++;
	t->unix_sock = false;
	if (strncmp(nh, "unix:", 5) == 0) {
		const char *p = nh + 5;
		size_t n = strlen(p);

		t->host[0] = '\0';
		t->port = 0;
		t->mx = false;
		if (n == 0 || n >= sizeof(sun.sun_path) || n >= sizeof(t->host)) {
			errbuf_set(err, "bad lmtp next hop \"%.200s\" (the socket "
				   "path is empty or longer than %zu bytes)", nh,
				   sizeof(sun.sun_path) - 1);
			return -1;
		}
		for (; *p; p++)
			if (!isgraph((unsigned char)*p)) {
				errbuf_set(err, "bad lmtp next hop \"%.200s\" "
					   "(white space or control character in "
					   "the socket path)", nh);
				return -1;
			}
		memcpy(t->host, nh + 5, n + 1);
		t->unix_sock = true;
		return 0;
	}
	if (strncmp(nh, "inet:", 5) == 0)
		nh += 5;
	if (transport_nexthop(nh, t, err) < 0)
		return -1;
	t->mx = false;		/* LMTP next hops are hosts, not domains */
	if (t->host[0] != '\0' && t->port == 0)
		t->port = 24;
	return 0;
}

enum transport_kind
transport_kind_of(const char *c)
{
	return strcmp(c, "smtp") == 0 ? TRANSPORT_SMTP
	       : strcmp(c, "lmtp") == 0 ? TRANSPORT_LMTP
	       : strcmp(c, "virtual") == 0 ? TRANSPORT_VIRTUAL
	       : strcmp(c, "error") == 0 ? TRANSPORT_ERROR
	       : strcmp(c, "discard") == 0 ? TRANSPORT_DISCARD
	       : TRANSPORT_PIPE;
}

int
transport_svc_find(const struct transport_svc *svcs, size_t n,
		   const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(svcs[i].name) == len
		    && strncmp(svcs[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

int
transport_parse(const char *spec, struct transport *t, struct errbuf *err)
{
	return transport_parse_svc(NULL, 0, spec, t, err);
}

int
transport_parse_svc(const struct transport_svc *svcs, size_t nsvcs,
		    const char *spec, struct transport *t, struct errbuf *err)
{
	int si;
	enum transport_kind kind = TRANSPORT_OTHER;

	const char *c = strchr(spec, ':');
	size_t n = c ? (size_t)(c - spec) : strlen(spec);
	const char *rest = c ? c + 1 : "";

	memset(t, 0, sizeof(*t));
	t->mx = true;
	while (n > 0 && isspace((unsigned char)spec[n - 1]))
		n--;
	if (n == 0 || n >= sizeof(t->name)) {
		errbuf_set(err, "bad transport \"%.200s\" (expected "
			   "transport:nexthop)", spec);
		return -1;
	}
	memcpy(t->name, spec, n);
	t->name[n] = '\0';
	t->svc = -1;
	si = transport_svc_find(svcs, nsvcs, t->name, n);
	if (si >= 0) {
		t->svc = si;
		kind = svcs[si].kind;
	} else if (strcmp(t->name, "smtp") == 0 || strcmp(t->name, "relay") == 0)
		kind = TRANSPORT_SMTP;
	else if (strcmp(t->name, "virtual") == 0)
		kind = TRANSPORT_VIRTUAL;
	else if (strcmp(t->name, "lmtp") == 0)
		kind = TRANSPORT_LMTP;
	else if (strcmp(t->name, "error") == 0)
		kind = TRANSPORT_ERROR;
	else if (strcmp(t->name, "discard") == 0)
		kind = TRANSPORT_DISCARD;
	t->kind = kind;
	switch (kind) {
	case TRANSPORT_SMTP:
		return transport_nexthop(rest, t, err);
	case TRANSPORT_VIRTUAL:
		return 0;
	case TRANSPORT_LMTP:
		return transport_lmtp_nexthop(rest, t, err);
	default:
		snprintf(t->text, sizeof(t->text), "%s", rest);
		return 0;
	}
}

/* One transport_maps key. 1 found, 0 not, -1 tempfail, -2 config. */
static int
map_try(struct table_list *maps, const char *key, struct buf *v,
	struct errbuf *err)
{
	switch (table_list_lookup(maps, key, v, err, NULL)) {
	case TABLE_FOUND:    return 1;
	case TABLE_NOTFOUND: return 0;
	case TABLE_TEMPFAIL: return -1;
	default:             return -2;
	}
}

/*
 * A sender-dependent table: the sender, then "@domain"; for <> the
 * null-sender key. 1 found (v set; "DUNNO" counts as not found and ends
 * the search, as Postfix), 0 not, -1 tempfail, -2 config.
 */
static int
sender_lookup(struct table_list *maps, const char *sender,
	      const char *null_key, struct buf *v, struct errbuf *err)
{
	int rc;

	if (maps == NULL || table_list_empty(maps) || sender == NULL)
		return 0;
	if (*sender == '\0') {
		if (null_key == NULL || *null_key == '\0')
			return 0;
		rc = map_try(maps, null_key, v, err);
	} else {
		const char *at = strrchr(sender, '@');

		rc = map_try(maps, sender, v, err);
		if (rc == 0 && at != NULL)
			rc = map_try(maps, at, v, err);
	}
	if (rc == 1 && strcasecmp(buf_cstr(v), "DUNNO") == 0)
		return 0;
	return rc;
}

int
transport_find(const struct transport_cfg *c, const char *addr,
	       enum resolve_class cls, struct transport *t, struct errbuf *err)
{
	return transport_find_sender(c, NULL, addr, cls, t, err);
}

int
transport_find_sender(const struct transport_cfg *c, const char *sender,
		      const char *addr, enum resolve_class cls,
		      struct transport *t, struct errbuf *err)
{
	const char *at = strrchr(addr, '@');
	const char *dom = at ? at + 1 : "";
	const char *spec = NULL;
	bool from_default = false;
	struct buf v;
	int rc = 0;

	buf_init(&v, 0);
	if (c->maps && !table_list_empty(c->maps)) {
		char key[1100];
		const char *d;

		/* transport(5): user@domain, domain, .parent ..., then "*" */
		rc = map_try(c->maps, addr, &v, err);
		if (rc == 0 && *dom)
			rc = map_try(c->maps, dom, &v, err);
		for (d = strchr(dom, '.'); rc == 0 && d; d = strchr(d + 1, '.')) {
			snprintf(key, sizeof(key), "%s", d);
			rc = map_try(c->maps, key, &v, err);
		}
		if (rc == 0)
			rc = map_try(c->maps, "*", &v, err);
		if (rc < 0) {
			buf_free(&v);
			return rc;
		}
		if (rc == 1)
			spec = buf_cstr(&v);
	}
	if (spec == NULL && cls == RESOLVE_CLASS_DEFAULT) {
		rc = sender_lookup(c->sd_transport_maps, sender,
				   c->sd_transport_null_key, &v, err);
		if (rc < 0) {
			buf_free(&v);
			return rc;
		}
		if (rc == 1) {
			spec = buf_cstr(&v);
			from_default = true;
		}
	}
	if (spec == NULL) {
		from_default = true;
		switch (cls) {
		case RESOLVE_CLASS_VIRTUAL: spec = c->virtual_transport; break;
		case RESOLVE_CLASS_RELAY:   spec = c->relay_transport; break;
		default:                    spec = c->default_transport; break;
		}
		if (spec == NULL || *spec == '\0')
			spec = cls == RESOLVE_CLASS_VIRTUAL ? "virtual" : "smtp";
	}
	if (transport_parse_svc(c->svcs, c->nsvcs, spec, t, err) < 0) {
		buf_free(&v);
		return -2;
	}
	buf_free(&v);
	if (t->kind == TRANSPORT_PIPE && t->text[0] == '\0')	/* ${nexthop} */
		snprintf(t->text, sizeof(t->text), "%s", dom);
	if (t->kind == TRANSPORT_SMTP && t->host[0] == '\0'
	    && from_default && cls != RESOLVE_CLASS_VIRTUAL) {
		/* sender_dependent_relayhost_maps overrides relayhost */
		struct buf rh;
		int rrc;

		buf_init(&rh, 0);
		rrc = sender_lookup(c->sd_relayhost_maps, sender,
				    c->sd_relayhost_null_key, &rh, err);
		if (rrc < 0) {
			buf_free(&rh);
			return rrc;
		}
		if (rrc == 1 && transport_nexthop(buf_cstr(&rh), t, err) < 0) {
			errbuf_set(err, "sender_dependent_relayhost_maps: bad next "
				   "hop \"%.200s\"", buf_cstr(&rh));
			buf_free(&rh);
			return -2;
		}
		buf_free(&rh);
		if (rrc == 1)
			return 0;
	}
	if (t->kind == TRANSPORT_SMTP && t->host[0] == '\0') {
		if (from_default && cls != RESOLVE_CLASS_VIRTUAL && c->relayhost
		    && *c->relayhost) {
			if (transport_nexthop(c->relayhost, t, err) < 0) {
				errbuf_set(err, "relayhost: bad next hop \"%.200s\"",
					   c->relayhost);
				return -2;
			}
		} else {
			snprintf(t->host, sizeof(t->host), "%s", dom);
			t->mx = true;
			t->port = 0;
		}
	}
	return 0;
}
