/*
 * sieve_run.c - the Sieve interpreter: walks a checked script for one
 * message, evaluates tests, expands variables (RFC 5229), keeps the
 * imap4flags internal variable (RFC 5232) and collects actions into a
 * sieve_result, with limits on steps, actions and redirects.
 * Must not: perform any action (deliver.c does), write anything, block.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "delivery/sieve/sieve_int.h"
#include "delivery/sieve/sieve_mime.h"

#define MAX_VARS	255
#define MAX_VAR_LEN	4096
#define B(t) (1ULL << (t))

struct run {
	const struct sieve_script *sc;
	const struct sieve_msg *m;
	struct sieve_result *r;
	struct errbuf *err;
	long    steps;
	struct sieve_hdrs h;
	char  **vname, **vval;
	size_t  nvars;
	struct sieve_match_caps caps;
	struct strlist flags;	/* imap4flags internal variable */
	bool    stop;
	int     line;
};

/* ---- results ---- */

void
sieve_result_init(struct sieve_result *r)
{
	memset(r, 0, sizeof(*r));
}

static void
action_free(struct sieve_action *a)
{
	free(a->folder);
	free(a->flags);
	free(a->addr);
	free(a->reason);
	free(a->subject);
	free(a->from);
	free(a->handle);
	free(a->to);
	free(a->in_reply_to);
	free(a->orig_subject);
}

void
sieve_result_free(struct sieve_result *r)
{
	for (size_t i = 0; i < r->nact; i++)
		action_free(&r->act[i]);
	free(r->act);
	free(r->implicit_flags);
	memset(r, 0, sizeof(*r));
}

static struct sieve_action *
add_action(struct run *x, enum sieve_action_type t)
{
	struct sieve_result *r = x->r;
	struct sieve_action *a;

	if (r->nact >= SIEVE_MAX_ACTIONS) {
		errbuf_set(x->err, "%d: too many actions (limit %d)", x->line,
			   SIEVE_MAX_ACTIONS);
		return NULL;
	}
	r->act = xrealloc(r->act, (r->nact + 1) * sizeof(*r->act));
	a = &r->act[r->nact++];
	memset(a, 0, sizeof(*a));
	a->type = t;
	a->script = x->sc->name;
	a->line = x->line;
	return a;
}

/* ---- variables ---- */

static const char *
var_get(struct run *x, const char *name, size_t n)
{
	for (size_t i = 0; i < x->nvars; i++)
		if (strlen(x->vname[i]) == n && strncasecmp(x->vname[i], name, n) == 0)
			return x->vval[i];
	return "";
}

static void
var_set(struct run *x, const char *name, const char *val)
{
	size_t i;
	char *v = xstrndup(val, strnlen(val, MAX_VAR_LEN));

	for (i = 0; i < x->nvars; i++)
		if (strcasecmp(x->vname[i], name) == 0) {
			free(x->vval[i]);
			x->vval[i] = v;
			return;
		}
	if (x->nvars >= MAX_VARS) {
		free(v);
		return;
	}
	x->vname = xrealloc(x->vname, (x->nvars + 1) * sizeof(char *));
	x->vval = xrealloc(x->vval, (x->nvars + 1) * sizeof(char *));
	x->vname[x->nvars] = xstrdup(name);
	x->vval[x->nvars++] = v;
}

/* RFC 5229 3: "${name}" and "${N}"; anything else stays literal. */
static char *
expand(struct run *x, const char *s)
{
	struct buf b;

	if (!(x->sc->exts & EXT_VARIABLES) || strstr(s, "${") == NULL)
		return xstrdup(s);
	buf_init(&b, 0);
	while (*s) {
		if (s[0] == '$' && s[1] == '{') {
			const char *e = s + 2;
			bool num = isdigit((unsigned char)*e), ok = true;

			while (*e && *e != '}') {
				if (num ? !isdigit((unsigned char)*e)
				    : !(isalnum((unsigned char)*e) || *e == '_'
					|| *e == '.'))
					ok = false;
				e++;
			}
			if (*e == '}' && e > s + 2 && ok && b.len < 65536) {
				size_t n = (size_t)(e - s - 2);

				if (num) {
					int i = atoi(s + 2);

					if (n < 4 && i < 10 && x->caps.v[i])
						buf_puts(&b, x->caps.v[i]);
				} else if (memchr(s + 2, '.', n) == NULL) {
					buf_puts(&b, var_get(x, s + 2, n));
				} else
					buf_append(&b, s, (size_t)(e + 1 - s));
				s = e + 1;
				continue;
			}
		}
		buf_putc(&b, *s++);
	}
	return b.data ? buf_steal(&b) : xstrdup("");
}

/* ---- flags (RFC 5232) ---- */

static void
flags_apply(struct strlist *fl, int op, const struct sieve_arg *a,
	    struct run *x)
{
	if (op == SV_SETFLAG) {
		strlist_free(fl);
		strlist_init(fl);
	}
	for (size_t i = 0; i < a->ns; i++) {
		char *s = expand(x, a->s[i]), *save = NULL;

		for (char *t = strtok_r(s, " \t", &save); t;
		     t = strtok_r(NULL, " \t", &save)) {
			size_t k;

			for (k = 0; k < fl->n; k++)
				if (strcasecmp(fl->v[k], t) == 0)
					break;
			if (op == SV_REMOVEFLAG) {
				if (k < fl->n) {
					free(fl->v[k]);
					memmove(&fl->v[k], &fl->v[k + 1],
						(fl->n - k) * sizeof(char *));
					fl->n--;
				}
			} else if (k == fl->n && fl->n < 64)
				strlist_add(fl, t);
		}
		free(s);
	}
}

static char *
flags_str(const struct strlist *fl)
{
	struct buf b;

	buf_init(&b, 0);
	for (size_t i = 0; i < fl->n; i++) {
		if (i)
			buf_putc(&b, ' ');
		buf_puts(&b, fl->v[i]);
	}
	return b.data ? buf_steal(&b) : xstrdup("");
}

/* The variable named by a setflag/addflag/... first argument. */
static void
flags_var_load(struct run *x, const char *name, struct strlist *fl)
{
	const char *v = var_get(x, name, strlen(name));
	struct sieve_arg a = { 0 };
	char *s = xstrdup(v);

	a.s = &s;
	a.ns = 1;
	strlist_init(fl);
	flags_apply(fl, SV_ADDFLAG, &a, x);
	free(s);
}

/* ---- tests ---- */

/* Matches every value against every key (or the count for :count). */
static int
match_values(struct run *x, const struct sieve_node *n, struct strlist *vals,
	     const struct sieve_arg *keys)
{
	struct sieve_match_caps *caps = (x->sc->exts & EXT_VARIABLES)
					? &x->caps : NULL;

	if (n->mt == MT_COUNT) {
		char cnt[32];

		snprintf(cnt, sizeof(cnt), "%zu", vals->n);
		for (size_t k = 0; k < keys->ns; k++) {
			char *key = expand(x, keys->s[k]);
			int o = sieve_cmp_order(n->cmp, cnt, key);

			free(key);
			if (sieve_relop_holds(n->relop, o))
				return 1;
		}
		return 0;
	}
	for (size_t i = 0; i < vals->n; i++)
		for (size_t k = 0; k < keys->ns; k++) {
			char *key = expand(x, keys->s[k]);
			int r = sieve_match_one(n->mt, n->cmp, n->relop,
						vals->v[i], key, caps,
						&x->steps, x->err);

			free(key);
			if (r != 0)
				return r;
		}
	return 0;
}

/* RFC 5233 with recipient_delimiter; 0 if the part does not exist. */
static int
addr_part(struct run *x, int part, const char *addr, struct buf *out)
{
	const char *at = strrchr(addr, '@');
	size_t ll = at ? (size_t)(at - addr) : strlen(addr);

	buf_reset(out);
	switch (part) {
	case PART_ALL:
		buf_puts(out, addr);
		return 1;
	case PART_DOMAIN:
		if (at == NULL)
			return 0;
		buf_puts(out, at + 1);
		return 1;
	case PART_LOCAL:
		buf_append(out, addr, ll);
		return 1;
	default: {
		const char *d = x->m->delimiters ? x->m->delimiters : "";
		size_t cut = ll;

		if (*d)
			for (size_t i = 0; i < ll; i++)
				if (strchr(d, addr[i])) {
					cut = i;
					break;
				}
		if (part == PART_USER)
			buf_append(out, addr, cut);
		else if (cut == ll)
			return 0;
		else
			buf_append(out, addr + cut + 1, ll - cut - 1);
		return 1;
	}
	}
}

static void
decoded(const char *raw, struct strlist *out)
{
	struct buf b;

	buf_init(&b, 0);
	sieve_mime_decode_header(raw, strlen(raw), &b);
	strlist_add(out, buf_cstr(&b));
	buf_free(&b);
}

static int
body_values(struct run *x, const struct sieve_node *n, struct strlist *vals)
{
	const char *ct = sieve_hdrs_get(&x->h, "content-type");
	const char *cte = sieve_hdrs_get(&x->h, "content-transfer-encoding");
	struct buf b;

	buf_init(&b, 0);
	if (n->tags & B(TAG_RAW)) {
		buf_append(&b, x->h.body, x->h.body_len);
	} else if (ct && strncasecmp(ct, "multipart/", 10) == 0) {
		/* :text: text parts of one multipart level, decoded */
		const char *bp = strcasestr(ct, "boundary=");
		char bnd[128];
		size_t bl = 0;

		if (bp) {
			bp += 9;
			if (*bp == '"')
				bp++;
			while (bp[bl] && bp[bl] != '"' && bp[bl] != ';'
			       && bp[bl] != ' ' && bl < sizeof(bnd) - 3)
				bl++;
			bnd[0] = bnd[1] = '-';
			memcpy(bnd + 2, bp, bl);
			bnd[bl + 2] = '\0';
		}
		if (bl > 0) {
			const char *p = x->h.body, *end = x->h.body + x->h.body_len;

			p = memmem(p, (size_t)(end - p), bnd, bl + 2);
			while (p != NULL) {
				const char *q, *ps = p + bl + 2;
				struct sieve_hdrs ph;
				const char *pct, *pcte;

				if (ps + 2 <= end && ps[0] == '-' && ps[1] == '-')
					break;
				q = memmem(ps, (size_t)(end - ps), bnd, bl + 2);
				sieve_hdrs_parse(ps, (size_t)((q ? q : end) - ps), &ph);
				pct = sieve_hdrs_get(&ph, "content-type");
				pcte = sieve_hdrs_get(&ph, "content-transfer-encoding");
				if (pct == NULL || strncasecmp(pct, "text/", 5) == 0) {
					sieve_cte_decode(pcte, ph.body, ph.body_len, &b);
					buf_putc(&b, '\n');
				}
				sieve_hdrs_free(&ph);
				p = q;
			}
		}
	} else if (ct == NULL || strncasecmp(ct, "text/", 5) == 0) {
		sieve_cte_decode(cte, x->h.body, x->h.body_len, &b);
	}
	/* NULs would cut the value short: make them spaces */
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] == '\0')
			b.data[i] = ' ';
	strlist_add(vals, buf_cstr(&b));
	buf_free(&b);
	return 0;
}

/*
 * The fields named name, or with :index only the Nth of them (from the
 * end with :last), RFC 5260 6. Appends the raw values to out.
 */
static void
named_fields(struct run *x, const struct sieve_node *n, const char *name,
	     struct strlist *out)
{
	size_t count = 0, want = 0, seen = 0;

	if (n->tagarg[TAG_INDEX]) {
		for (size_t k = 0; k < x->h.n; k++)
			count += strcasecmp(x->h.h[k].name, name) == 0;
		if (n->tagarg[TAG_INDEX]->num > count)
			return;
		want = (size_t)n->tagarg[TAG_INDEX]->num;
		if (n->tags & B(TAG_LAST))
			want = count - want + 1;
	}
	for (size_t k = 0; k < x->h.n; k++)
		if (strcasecmp(x->h.h[k].name, name) == 0 && (want == 0 || ++seen == want))
			strlist_add(out, x->h.h[k].raw);
}

/* RFC 5260 4: date and currentdate. */
static int
date_test(struct run *x, const struct sieve_node *n, struct strlist *vals)
{
	long long now = (long long)time(NULL), t;
	int zone, z;
	bool given_zone = false;
	struct buf v;
	char *part = expand(x, n->pos[n->id == SV_DATE ? 1 : 0]->s[0]);
	const struct sieve_arg *keys = n->pos[n->id == SV_DATE ? 2 : 1];
	int r = 0;

	if (n->tagarg[TAG_ZONE]) {
		char *zs = expand(x, n->tagarg[TAG_ZONE]->s[0]);

		/* a bad zone from a variable: the test fails (RFC 5260 4.1) */
		given_zone = sieve_zone_parse(zs, &zone) == 0;
		free(zs);
		if (!given_zone) {
			free(part);
			return 0;
		}
	}
	buf_init(&v, 0);
	if (n->id == SV_CURRENTDATE) {
		if (!given_zone)
			zone = sieve_local_zone(now);
		if (sieve_date_part(now, zone, part, &v))
			strlist_add(vals, buf_cstr(&v));
	} else {
		struct strlist raw;
		char *name = expand(x, n->pos[0]->s[0]);

		strlist_init(&raw);
		named_fields(x, n, name, &raw);
		for (size_t i = 0; i < raw.n; i++) {
			const char *d = raw.v[i];

			/* Received: the date follows the last ";" */
			if (strcasecmp(name, "received") == 0 && strrchr(d, ';'))
				d = strrchr(d, ';') + 1;
			if (sieve_date_parse(d, &t, &z) < 0)
				continue;
			if (!given_zone)
				zone = (n->tags & B(TAG_ORIGINALZONE)) ? z
				       : sieve_local_zone(t);
			if (sieve_date_part(t, zone, part, &v))
				strlist_add(vals, buf_cstr(&v));
		}
		strlist_free(&raw);
		free(name);
	}
	if (vals->n > 0 || n->mt == MT_COUNT)
		r = match_values(x, n, vals, keys);
	buf_free(&v);
	free(part);
	return r;
}

static int eval_test(struct run *x, const struct sieve_node *n);

static int
eval_test_inner(struct run *x, const struct sieve_node *n)
{
	struct strlist vals;
	struct buf part;
	int r = 0;

	strlist_init(&vals);
	buf_init(&part, 0);
	switch (n->id) {
	case SV_TRUE:
		r = 1;
		break;
	case SV_FALSE:
		r = 0;
		break;
	case SV_NOT:
		r = eval_test(x, n->tests[0]);
		if (r >= 0)
			r = !r;
		break;
	case SV_ALLOF:
	case SV_ANYOF:
		r = n->id == SV_ALLOF;
		for (size_t i = 0; i < n->ntests; i++) {
			int t = eval_test(x, n->tests[i]);

			if (t < 0)
				return t;
			if (n->id == SV_ALLOF && !t) {
				r = 0;
				break;
			}
			if (n->id == SV_ANYOF && t) {
				r = 1;
				break;
			}
		}
		break;
	case SV_SIZE:
		r = (n->tags & B(TAG_OVER)) ? (unsigned long long)x->m->len > n->pos[0]->num
					    : (unsigned long long)x->m->len < n->pos[0]->num;
		break;
	case SV_EXISTS:
		r = 1;
		for (size_t i = 0; i < n->pos[0]->ns && r; i++) {
			char *name = expand(x, n->pos[0]->s[i]);

			r = sieve_hdrs_get(&x->h, name) != NULL;
			free(name);
		}
		break;
	case SV_HEADER:
		for (size_t i = 0; i < n->pos[0]->ns; i++) {
			char *name = expand(x, n->pos[0]->s[i]);
			struct strlist raw;

			strlist_init(&raw);
			named_fields(x, n, name, &raw);
			for (size_t k = 0; k < raw.n; k++)
				decoded(raw.v[k], &vals);
			strlist_free(&raw);
			free(name);
		}
		r = match_values(x, n, &vals, n->pos[1]);
		break;
	case SV_DATE:
	case SV_CURRENTDATE:
		r = date_test(x, n, &vals);
		break;
	case SV_ADDRESS:
	case SV_ENVELOPE: {
		struct strlist addrs;

		strlist_init(&addrs);
		for (size_t i = 0; i < n->pos[0]->ns; i++) {
			char *name = expand(x, n->pos[0]->s[i]);

			if (n->id == SV_ADDRESS) {
				struct strlist raw;

				strlist_init(&raw);
				named_fields(x, n, name, &raw);
				for (size_t k = 0; k < raw.n; k++)
					sieve_addr_list(raw.v[k], &addrs);
				strlist_free(&raw);
			} else if (strcasecmp(name, "from") == 0) {
				if (x->m->env_from[0] == '\0')
					strlist_add(&vals, "");	/* RFC 5228 5.4 */
				else
					strlist_add(&addrs, x->m->env_from);
			} else if (strcasecmp(name, "to") == 0 && x->m->env_to)
				strlist_add(&addrs, x->m->env_to);
			free(name);
		}
		for (size_t i = 0; i < addrs.n; i++)
			if (addr_part(x, n->part, addrs.v[i], &part))
				strlist_add(&vals, buf_cstr(&part));
		strlist_free(&addrs);
		r = match_values(x, n, &vals, n->pos[1]);
		break;
	}
	case SV_STRING:
		for (size_t i = 0; i < n->pos[0]->ns; i++) {
			char *v = expand(x, n->pos[0]->s[i]);

			/* RFC 5229 5: for :count, empty strings don't count */
			if (n->mt != MT_COUNT || *v)
				strlist_add(&vals, v);
			free(v);
		}
		r = match_values(x, n, &vals, n->pos[1]);
		break;
	case SV_HASFLAG: {
		struct strlist fl;
		const struct sieve_arg *keys = n->pos[n->npos - 1];

		if (n->npos == 2) {
			/* the flags of the named variables */
			strlist_init(&fl);
			for (size_t i = 0; i < n->pos[0]->ns; i++) {
				struct strlist one;

				flags_var_load(x, n->pos[0]->s[i], &one);
				for (size_t k = 0; k < one.n; k++)
					strlist_add(&fl, one.v[k]);
				strlist_free(&one);
			}
		} else {
			strlist_init(&fl);
			for (size_t k = 0; k < x->flags.n; k++)
				strlist_add(&fl, x->flags.v[k]);
		}
		r = match_values(x, n, &fl, keys);
		strlist_free(&fl);
		break;
	}
	case SV_BODY:
		body_values(x, n, &vals);
		r = match_values(x, n, &vals, n->pos[0]);
		break;
	case SV_MAILBOXEXISTS:
		r = 1;
		for (size_t i = 0; i < n->pos[0]->ns && r; i++) {
			char *name = expand(x, n->pos[0]->s[i]);

			if (x->m->mailbox_exists)
				r = x->m->mailbox_exists(x->m->arg, name) == 1;
			else
				r = strcasecmp(name, "INBOX") == 0;
			free(name);
		}
		break;
	default:
		errbuf_set(x->err, "%d: '%s' is not a test", n->line, n->name);
		r = -1;
	}
	strlist_free(&vals);
	buf_free(&part);
	return r;
}

static int
eval_test(struct run *x, const struct sieve_node *n)
{
	int r;

	x->line = n->line;
	if (--x->steps < 0) {
		errbuf_set(x->err, "%d: CPU step limit exceeded", n->line);
		return -1;
	}
	r = eval_test_inner(x, n);
	if (r < 0 && x->err->msg[0] && !isdigit((unsigned char)x->err->msg[0])) {
		char tmp[sizeof(x->err->msg)];

		snprintf(tmp, sizeof(tmp), "%s", x->err->msg);
		errbuf_set(x->err, "%d: %s", n->line, tmp);
	}
	return r;
}

/* ---- commands ---- */

static char *
flags_for(struct run *x, const struct sieve_node *n)
{
	if (n->tagarg[TAG_FLAGS]) {
		struct strlist fl;
		char *s;

		strlist_init(&fl);
		flags_apply(&fl, SV_SETFLAG, n->tagarg[TAG_FLAGS], x);
		s = flags_str(&fl);
		strlist_free(&fl);
		return s;
	}
	if (x->sc->exts & EXT_IMAP4FLAGS)
		return flags_str(&x->flags);
	return NULL;
}

static const char *
tag_str(const struct sieve_node *n, int t)
{
	return n->tagarg[t] ? n->tagarg[t]->s[0] : NULL;
}

/* RFC 5230 4.5-4.6: the conditions under which no reply is sent. */
static bool
vacation_allowed(struct run *x, const struct sieve_node *n)
{
	const char *from = x->m->env_from, *v;
	struct strlist mine, hdr;
	bool found = false;
	const char *at;

	if (from[0] == '\0')
		return false;
	at = strrchr(from, '@');
	{
		size_t ll = at ? (size_t)(at - from) : strlen(from);

		if ((ll == 13 && strncasecmp(from, "mailer-daemon", 13) == 0)
		    || (ll >= 6 && strncasecmp(from, "owner-", 6) == 0)
		    || (ll >= 8 && strncasecmp(from + ll - 8, "-request", 8) == 0)
		    || (ll == 10 && strncasecmp(from, "listserv", 8) == 0))
			return false;
	}
	if ((v = sieve_hdrs_get(&x->h, "auto-submitted")) != NULL
	    && strncasecmp(v, "no", 2) != 0)
		return false;
	if ((v = sieve_hdrs_get(&x->h, "precedence")) != NULL
	    && (strcasecmp(v, "bulk") == 0 || strcasecmp(v, "list") == 0
		|| strcasecmp(v, "junk") == 0))
		return false;
	for (size_t i = 0; i < x->h.n; i++)
		if (strncasecmp(x->h.h[i].name, "list-", 5) == 0
		    || strcasecmp(x->h.h[i].name, "x-auto-response-suppress") == 0)
			return false;
	/* our own addresses: the recipient, :addresses */
	strlist_init(&mine);
	if (x->m->env_to)
		strlist_add(&mine, x->m->env_to);
	if (x->m->orig_to)
		strlist_add(&mine, x->m->orig_to);
	if (n->tagarg[TAG_ADDRESSES])
		for (size_t i = 0; i < n->tagarg[TAG_ADDRESSES]->ns; i++) {
			char *a = expand(x, n->tagarg[TAG_ADDRESSES]->s[i]);

			strlist_add(&mine, a);
			free(a);
		}
	for (size_t i = 0; i < mine.n; i++)
		if (strcasecmp(mine.v[i], from) == 0) {
			strlist_free(&mine);
			return false;
		}
	/* one of them must be among the visible recipients */
	strlist_init(&hdr);
	for (size_t i = 0; i < x->h.n; i++) {
		const char *hn = x->h.h[i].name;

		if (strcasecmp(hn, "to") == 0 || strcasecmp(hn, "cc") == 0
		    || strcasecmp(hn, "bcc") == 0
		    || strcasecmp(hn, "resent-to") == 0
		    || strcasecmp(hn, "resent-cc") == 0
		    || strcasecmp(hn, "resent-bcc") == 0)
			sieve_addr_list(x->h.h[i].raw, &hdr);
	}
	for (size_t i = 0; i < hdr.n && !found; i++)
		for (size_t k = 0; k < mine.n && !found; k++) {
			/* user+detail@domain also names user@domain */
			struct buf u1, u2;

			buf_init(&u1, 0);
			buf_init(&u2, 0);
			if (strcasecmp(hdr.v[i], mine.v[k]) == 0)
				found = true;
			else if (addr_part(x, PART_USER, mine.v[k], &u1)
				 && addr_part(x, PART_USER, hdr.v[i], &u2)) {
				const char *d1 = strrchr(mine.v[k], '@');
				const char *d2 = strrchr(hdr.v[i], '@');

				found = strcasecmp(buf_cstr(&u1), buf_cstr(&u2)) == 0
					&& d1 && d2 && strcasecmp(d1, d2) == 0;
			}
			buf_free(&u1);
			buf_free(&u2);
		}
	strlist_free(&hdr);
	strlist_free(&mine);
	return found;
}

static int run_block(struct run *x, struct sieve_node *const *b, size_t n);

static int
cancel_keep(struct run *x, const struct sieve_node *n)
{
	if (!(n->tags & B(TAG_COPY)))
		x->r->keep_cancelled = true;
	return 0;
}

static int
run_cmd(struct run *x, const struct sieve_node *n)
{
	struct sieve_action *a;

	x->line = n->line;
	if (--x->steps < 0) {
		errbuf_set(x->err, "%d: CPU step limit exceeded", n->line);
		return -1;
	}
	switch (n->id) {
	case SV_REQUIRE:
	case SV_ELSIF:
	case SV_ELSE:
		return 0;	/* elsif/else run from their if */
	case SV_IF: {
		const struct sieve_node *br = n;

		while (br) {
			int t = br->id == SV_ELSE ? 1 : eval_test(x, br->tests[0]);

			if (t < 0)
				return -1;
			if (t)
				return run_block(x, br->block, br->nblock);
			br = br->elsif;
		}
		return 0;
	}
	case SV_STOP:
		x->stop = true;
		return 0;
	case SV_KEEP:
		if ((a = add_action(x, SIEVE_ACT_KEEP)) == NULL)
			return -1;
		a->flags = flags_for(x, n);
		return 0;
	case SV_DISCARD:
		if ((a = add_action(x, SIEVE_ACT_DISCARD)) == NULL)
			return -1;
		x->r->keep_cancelled = true;
		return 0;
	case SV_FILEINTO:
		if ((a = add_action(x, SIEVE_ACT_FILEINTO)) == NULL)
			return -1;
		a->folder = expand(x, n->pos[0]->s[0]);
		a->flags = flags_for(x, n);
		a->create = (n->tags & B(TAG_CREATE)) != 0;
		return cancel_keep(x, n);
	case SV_REDIRECT:
		if (x->r->nredirects >= SIEVE_MAX_REDIRECTS) {
			errbuf_set(x->err, "%d: too many redirects (limit %d)",
				   n->line, SIEVE_MAX_REDIRECTS);
			return -1;
		}
		if ((a = add_action(x, SIEVE_ACT_REDIRECT)) == NULL)
			return -1;
		a->addr = expand(x, n->pos[0]->s[0]);
		{
			/* RFC 5228 4.2: an address, possibly <...>, no list */
			struct strlist one;

			strlist_init(&one);
			sieve_addr_list(a->addr, &one);
			if (one.n != 1 || strchr(one.v[0], '@') == NULL) {
				errbuf_set(x->err, "%d: redirect: bad address "
					   "\"%s\"", n->line, a->addr);
				strlist_free(&one);
				return -1;
			}
			free(a->addr);
			a->addr = xstrdup(one.v[0]);
			strlist_free(&one);
		}
		x->r->nredirects++;
		return cancel_keep(x, n);
	case SV_REJECT:
	case SV_EREJECT:
		if ((a = add_action(x, SIEVE_ACT_REJECT)) == NULL)
			return -1;
		a->reason = expand(x, n->pos[0]->s[0]);
		x->r->keep_cancelled = true;
		return 0;
	case SV_VACATION: {
		for (size_t i = 0; i < x->r->nact; i++)
			if (x->r->act[i].type == SIEVE_ACT_VACATION)
				return 0;	/* one reply per message */
		if (!vacation_allowed(x, n))
			return 0;
		if ((a = add_action(x, SIEVE_ACT_VACATION)) == NULL)
			return -1;
		a->reason = expand(x, n->pos[0]->s[0]);
		a->subject = tag_str(n, TAG_SUBJECT) ? expand(x, tag_str(n, TAG_SUBJECT)) : NULL;
		a->from = tag_str(n, TAG_FROM) ? expand(x, tag_str(n, TAG_FROM)) : NULL;
		a->handle = tag_str(n, TAG_HANDLE) ? expand(x, tag_str(n, TAG_HANDLE)) : NULL;
		a->mime = (n->tags & B(TAG_MIME)) != 0;
		/* RFC 5230 4.1: days default 7, at least 1 */
		if (n->tagarg[TAG_SECONDS])
			a->seconds = (long)(n->tagarg[TAG_SECONDS]->num > 86400 * 365ULL
					    ? 86400 * 365 : n->tagarg[TAG_SECONDS]->num);
		else {
			unsigned long long d = n->tagarg[TAG_DAYS]
					       ? n->tagarg[TAG_DAYS]->num : 7;

			if (d < 1)
				d = 1;
			if (d > 365)
				d = 365;
			a->seconds = (long)d * 86400;
		}
		a->to = xstrdup(x->m->env_from);
		{
			const char *v = sieve_hdrs_get(&x->h, "message-id");
			struct buf b;

			a->in_reply_to = v ? xstrdup(v) : NULL;
			buf_init(&b, 0);
			if ((v = sieve_hdrs_get(&x->h, "subject")) != NULL)
				sieve_mime_decode_header(v, strlen(v), &b);
			a->orig_subject = xstrdup(buf_cstr(&b));
			buf_free(&b);
		}
		return 0;
	}
	case SV_SET: {
		char *v = expand(x, n->pos[1]->s[0]);
		struct buf b;

		buf_init(&b, 0);
		if (n->tags & (B(TAG_LOWER) | B(TAG_UPPER)))
			for (char *p = v; *p; p++)
				*p = (char)((n->tags & B(TAG_LOWER))
					    ? tolower((unsigned char)*p)
					    : toupper((unsigned char)*p));
		if (*v && (n->tags & B(TAG_LOWERFIRST)))
			v[0] = (char)tolower((unsigned char)v[0]);
		if (*v && (n->tags & B(TAG_UPPERFIRST)))
			v[0] = (char)toupper((unsigned char)v[0]);
		if (n->tags & B(TAG_QUOTEWILDCARD)) {
			for (char *p = v; *p; p++) {
				if (*p == '*' || *p == '?' || *p == '\\')
					buf_putc(&b, '\\');
				buf_putc(&b, *p);
			}
			free(v);
			v = b.data ? buf_steal(&b) : xstrdup("");
		}
		if (n->tags & B(TAG_LENGTH)) {
			size_t len = 0;

			/* characters, not octets */
			for (char *p = v; *p; p++)
				if (((unsigned char)*p & 0xC0) != 0x80)
					len++;
			free(v);
			v = xasprintf("%zu", len);
		}
		buf_free(&b);
		var_set(x, n->pos[0]->s[0], v);
		free(v);
		return 0;
	}
	case SV_SETFLAG:
	case SV_ADDFLAG:
	case SV_REMOVEFLAG:
		if (n->npos == 2) {
			struct strlist fl;
			char *s;

			flags_var_load(x, n->pos[0]->s[0], &fl);
			flags_apply(&fl, n->id, n->pos[1], x);
			s = flags_str(&fl);
			var_set(x, n->pos[0]->s[0], s);
			free(s);
			strlist_free(&fl);
		} else
			flags_apply(&x->flags, n->id, n->pos[0], x);
		return 0;
	default:
		errbuf_set(x->err, "%d: '%s' is not a command", n->line, n->name);
		return -1;
	}
}

static int
run_block(struct run *x, struct sieve_node *const *b, size_t n)
{
	for (size_t i = 0; i < n && !x->stop; i++)
		if (run_cmd(x, b[i]) < 0)
			return -1;
	return 0;
}

int
sieve_run(const struct sieve_script *s, const struct sieve_msg *msg,
	  struct sieve_result *r, struct errbuf *err)
{
	struct run x;
	int rc;

	memset(&x, 0, sizeof(x));
	errbuf_clear(err);
	x.sc = s;
	x.m = msg;
	x.r = r;
	x.err = err;
	x.steps = SIEVE_MAX_STEPS;
	strlist_init(&x.flags);
	sieve_hdrs_parse(msg->content, msg->len, &x.h);
	rc = run_block(&x, s->root->block, s->root->nblock);
	/* RFC 5232 3: the implicit keep gets the internal variable's flags */
	free(r->implicit_flags);
	r->implicit_flags = (s->exts & EXT_IMAP4FLAGS) ? flags_str(&x.flags) : NULL;
	r->implicit_keep_wanted = !r->keep_cancelled;
	for (size_t i = 0; i < x.nvars; i++) {
		free(x.vname[i]);
		free(x.vval[i]);
	}
	free(x.vname);
	free(x.vval);
	sieve_caps_clear(&x.caps);
	strlist_free(&x.flags);
	sieve_hdrs_free(&x.h);
	return rc;
}

void
sieve_result_finish(struct sieve_result *r)
{
	struct sieve_action *a;

	if (r->keep_cancelled)
		return;
	r->act = xrealloc(r->act, (r->nact + 1) * sizeof(*r->act));
	a = &r->act[r->nact++];
	memset(a, 0, sizeof(*a));
	a->type = SIEVE_ACT_KEEP;
	a->implicit = true;
	a->flags = r->implicit_flags && *r->implicit_flags
		   ? xstrdup(r->implicit_flags) : NULL;
	r->keep_cancelled = true;	/* finished: nothing more to add */
}

static void
format_one(const struct sieve_action *a, struct buf *out)
{
	switch (a->type) {
	case SIEVE_ACT_VACATION:
		buf_printf(out, " * send vacation message to <%s>\n", a->to);
		break;
	case SIEVE_ACT_REDIRECT:
		buf_printf(out, " * redirect message to <%s>\n", a->addr);
		break;
	case SIEVE_ACT_REJECT:
		buf_printf(out, " * reject message with reason: %s\n", a->reason);
		break;
	case SIEVE_ACT_DISCARD:
		buf_puts(out, " * discard\n");
		break;
	default:
		buf_printf(out, " * store message in folder: %s",
			   a->folder ? a->folder : "INBOX");
		if (a->flags && *a->flags)
			buf_printf(out, " (flags: %s)", a->flags);
		if (a->create)
			buf_puts(out, " (create)");
		buf_putc(out, '\n');
	}
}

void
sieve_result_format(const struct sieve_result *r, struct buf *out)
{
	bool any = false;

	buf_puts(out, "\nPerformed actions:\n\n");
	for (size_t i = 0; i < r->nact; i++)
		if (!r->act[i].implicit) {
			format_one(&r->act[i], out);
			any = true;
		}
	if (!any)
		buf_puts(out, "  (none)\n");
	buf_puts(out, "\nImplicit keep:\n\n");
	any = false;
	for (size_t i = 0; i < r->nact; i++)
		if (r->act[i].implicit) {
			format_one(&r->act[i], out);
			any = true;
		}
	if (!any)
		buf_puts(out, "  (none)\n");
}
