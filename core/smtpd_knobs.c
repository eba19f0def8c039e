/*
 * smtpd_knobs.c - the SMTP server's dialogue settings (smtpd_knobs.h):
 * reject footer, EHLO keyword discarding (global and per client address),
 * SASL exception networks and forbidden (non-SMTP) commands.
 * Must not: talk to the client or log (callers log what they are given).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/table.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/netlist.h"
#include "core/smtpd_knobs.h"

#define MAPVALUE_MAX 4096

struct smtpd_knobs {
	char              *footer;		/* smtpd_reject_footer */
	unsigned           discard;		/* smtpd_discard_ehlo_keywords */
	struct table_list *discard_maps;	/* NULL: unset */
	struct netlist    *sasl_exceptions;	/* NULL: unset */
	struct strlist     forbidden;		/* upper-case names */
	struct table     **forbidden_tables;	/* type:name items */
	size_t             nforbidden_tables;
};

static const struct {
	const char *name;
	unsigned    bit;
} ehlo_names[] = {
	{ "8bitmime", SMTPD_EHLO_8BITMIME }, { "auth", SMTPD_EHLO_AUTH },
	{ "dsn", SMTPD_EHLO_DSN },
	{ "enhancedstatuscodes", SMTPD_EHLO_ENHANCEDSTATUSCODES },
	{ "etrn", SMTPD_EHLO_ETRN }, { "pipelining", SMTPD_EHLO_PIPELINING },
	{ "size", SMTPD_EHLO_SIZE }, { "starttls", SMTPD_EHLO_STARTTLS },
	{ "verp", SMTPD_EHLO_VERP }, { "vrfy", SMTPD_EHLO_VRFY },
	{ "xclient", SMTPD_EHLO_XCLIENT }, { "xforward", SMTPD_EHLO_XFORWARD },
	{ "smtputf8", SMTPD_EHLO_SMTPUTF8 }, { "chunking", SMTPD_EHLO_CHUNKING },
	{ "silent-discard", SMTPD_EHLO_SILENT },
};

/* The mask bit of an EHLO keyword (len bytes; "AUTH=" counts as AUTH). */
static unsigned
ehlo_bit(const char *w, size_t len)
{
	for (size_t i = 0; i < sizeof(ehlo_names) / sizeof(ehlo_names[0]); i++)
		if (strlen(ehlo_names[i].name) == len &&
		    strncasecmp(w, ehlo_names[i].name, len) == 0)
			return ehlo_names[i].bit;
	return 0;
}

unsigned
smtpd_knobs_ehlo_parse(const char *list)
{
	struct strlist l;
	unsigned m = 0;

	strlist_init(&l);
	if (list != NULL && strlist_split(&l, list) == 0)
		for (size_t i = 0; i < l.n; i++)
			m |= ehlo_bit(l.v[i], strlen(l.v[i]));
	strlist_free(&l);
	return m;
}

static const char *
get(const struct config *c, const char *name)
{
	const char *v = config_get(c, name);

	return v ? v : "";
}

struct smtpd_knobs *
smtpd_knobs_new(const struct config *c, struct errbuf *err)
{
	struct smtpd_knobs *k = xcalloc(1, sizeof(*k));
	struct errbuf e;
	struct strlist l;
	const char *v;

	strlist_init(&k->forbidden);
	/* raw, as Postfix's: $client_address etc. are expanded per reply */
	v = config_raw(c, "smtpd_reject_footer");
	k->footer = xstrdup(v ? v : "");
	k->discard = smtpd_knobs_ehlo_parse(get(c, "smtpd_discard_ehlo_keywords"));
	v = get(c, "smtpd_discard_ehlo_keyword_address_maps");
	if (*v != '\0') {
		errbuf_clear(&e);
		k->discard_maps = table_list_open(v, TABLE_F_FOLD, &e);
		if (k->discard_maps == NULL) {
			errbuf_set(err, "smtpd_discard_ehlo_keyword_address_maps: %s",
				   errbuf_str(&e));
			goto fail;
		}
	}
	v = get(c, "smtpd_sasl_exceptions_networks");
	if (*v != '\0') {
		errbuf_clear(&e);
		k->sasl_exceptions = netlist_new(v, &e);
		if (k->sasl_exceptions == NULL) {
			errbuf_set(err, "smtpd_sasl_exceptions_networks: %s",
				   errbuf_str(&e));
			goto fail;
		}
	}
	strlist_init(&l);
	if (strlist_split(&l, get(c, "smtpd_forbidden_commands")) < 0) {
		strlist_free(&l);
		errbuf_set(err, "smtpd_forbidden_commands: unbalanced braces");
		goto fail;
	}
	for (size_t i = 0; i < l.n; i++) {
		struct table *t;

		if (strchr(l.v[i], ':') == NULL) {
			for (char *p = l.v[i]; *p; p++)
				*p = (char)toupper((unsigned char)*p);
			strlist_add(&k->forbidden, l.v[i]);
			continue;
		}
		errbuf_clear(&e);
		/* keys as sent: regexp:{{/^[^A-Z]/ Bogus}} must see the case */
		if ((t = table_open(l.v[i], 0, &e)) == NULL) {
			errbuf_set(err, "smtpd_forbidden_commands: %s",
				   errbuf_str(&e));
			strlist_free(&l);
			goto fail;
		}
		k->forbidden_tables = xrealloc(k->forbidden_tables,
					       (k->nforbidden_tables + 1) *
					       sizeof(*k->forbidden_tables));
		k->forbidden_tables[k->nforbidden_tables++] = t;
	}
	strlist_free(&l);
	return k;
fail:
	smtpd_knobs_free(&k);
	return NULL;
}

void
smtpd_knobs_free(struct smtpd_knobs **kp)
{
	struct smtpd_knobs *k = *kp;

	if (k == NULL)
		return;
	free(k->footer);
	if (k->discard_maps)
		table_list_free(&k->discard_maps);
	netlist_free(&k->sasl_exceptions);
	strlist_free(&k->forbidden);
	for (size_t i = 0; i < k->nforbidden_tables; i++)
		table_close(&k->forbidden_tables[i]);
	free(k->forbidden_tables);
	free(k);
	*kp = NULL;
}

const char *
smtpd_knobs_footer(const struct smtpd_knobs *k)
{
	return k && k->footer ? k->footer : "";
}

int
smtpd_knobs_ehlo_mask(const struct smtpd_knobs *k, const char *client_addr,
		      unsigned *mask_r, struct buf *why_r)
{
	unsigned m;
	struct errbuf e;
	int rc = 0;

	*mask_r = 0;
	if (k == NULL)
		return 0;
	m = k->discard;
	if (k->discard_maps != NULL && client_addr && *client_addr) {
		struct buf val;
		enum table_status st;

		buf_init(&val, MAPVALUE_MAX);
		errbuf_clear(&e);
		st = table_list_lookup(k->discard_maps, client_addr, &val, &e,
				       NULL);
		if (st == TABLE_FOUND)
			m = smtpd_knobs_ehlo_parse(buf_cstr(&val));
		else if (st != TABLE_NOTFOUND) {
			rc = -1;
			if (why_r != NULL)
				buf_printf(why_r, "smtpd_discard_ehlo_keyword_"
					   "address_maps: %s", errbuf_str(&e));
		}
		buf_free(&val);
	}
	*mask_r = m;
	return rc;
}

int
smtpd_knobs_sasl_exception(const struct smtpd_knobs *k, const char *client_addr,
			   struct buf *why_r)
{
	struct errbuf e;
	int r;

	if (k == NULL || k->sasl_exceptions == NULL || client_addr == NULL ||
	    *client_addr == '\0')
		return 0;
	errbuf_clear(&e);
	r = netlist_match_str(k->sasl_exceptions, client_addr, &e);
	if (r < 0 && why_r != NULL)
		buf_printf(why_r, "smtpd_sasl_exceptions_networks: %s",
			   errbuf_str(&e));
	return r < 0 ? -1 : r == 1;
}

char *
smtpd_knobs_ehlo_filter(const char *ehlo, unsigned mask, struct buf *names_r)
{
	struct buf out;
	const char *p = ehlo;
	bool first = true;

	buf_init(&out, 0);
	while (*p) {
		const char *e = strstr(p, "\r\n");
		size_t n = e ? (size_t)(e - p) : strlen(p);
		const char *w = p + (n >= 4 ? 4 : n);
		size_t wl = 0;
		unsigned bit;

		while (w + wl < p + n && w[wl] != ' ' && w[wl] != '=')
			wl++;
		bit = first ? 0 : ehlo_bit(w, wl);
		if (bit != 0 && (mask & bit)) {
			if (names_r != NULL && w[wl] != '=')	/* AUTH= once */
				buf_printf(names_r, "%s%.*s", names_r->len ? " " : "",
					   (int)wl, w);
		} else {
			buf_append(&out, p, n);
			buf_puts(&out, "\r\n");
		}
		first = false;
		p = e ? e + 2 : p + n;
	}
	/* every line "250-", the last "250 " */
	{
		char *line = out.data, *q;

		for (q = out.data; q != NULL && q < out.data + out.len; ) {
			line = q;
			if (q[3] == ' ')
				q[3] = '-';
			q = strstr(q, "\r\n");
			q = q ? q + 2 : NULL;
		}
		if (line != NULL)
			line[3] = ' ';
	}
	return buf_steal(&out);
}

/* Postfix's is_header(): "Label:" with a label of printable characters. */
static bool
is_header(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == ':')
			return i > 0;
		if (ch <= ' ' || ch >= 127)
			return false;
	}
	return false;
}

bool
smtpd_knobs_forbidden(const struct smtpd_knobs *k, const char *verb, size_t len)
{
	char name[64];
	struct buf val;
	struct errbuf e;
	bool hit = false;

	if (is_header(verb, len))
		return true;
	if (k == NULL || len == 0 || len >= sizeof(name))
		return false;
	memcpy(name, verb, len);
	name[len] = '\0';
	for (size_t i = 0; i < k->forbidden.n; i++)
		if (strcasecmp(k->forbidden.v[i], name) == 0)
			return true;
	buf_init(&val, MAPVALUE_MAX);
	for (size_t i = 0; i < k->nforbidden_tables && !hit; i++) {
		errbuf_clear(&e);
		hit = table_lookup(k->forbidden_tables[i], name, &val, &e)
		      == TABLE_FOUND;
	}
	buf_free(&val);
	return hit;
}
