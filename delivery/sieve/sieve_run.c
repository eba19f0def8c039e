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

struct vars {
	char  **name, **val;
	size_t  n;
};

/* What a script shares with the scripts it includes (RFC 6609). */
struct shared {
	struct vars globals;	/* "global" variables */
	struct strlist once;	/* "p:NAME" / "g:NAME" included so far */
	struct strlist stack;	/* the include nesting, outermost first */
	int     nincludes;
	bool    stop;
	struct strlist flags;	/* imap4flags internal variable */
	struct sieve_hdrs h;	/* the header, as editheader leaves it */
};

struct run {
	const struct sieve_script *sc;
	const struct sieve_msg *m;
	struct sieve_result *r;
	struct errbuf *err;
	long    steps;
	struct shared *g;
	struct sieve_hdrs *h;	/* &g->h */
	struct strlist *flags;	/* &g->flags */
	struct vars vars;	/* this script's own variables */
	struct strlist gdecl;	/* names this script declared global */
	struct sieve_match_caps caps;
	bool    ret;		/* "return" ran */
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
	free(a->script);
}

void
sieve_result_free(struct sieve_result *r)
{
	for (size_t i = 0; i < r->nact; i++)
		action_free(&r->act[i]);
	free(r->act);
	free(r->implicit_flags);
	for (size_t i = 0; i < r->nver; i++)
		free(r->ver[i].data);
	free(r->ver);
	for (size_t i = 0; i < r->ndup; i++)
		free(r->dup[i].key);
	free(r->dup);
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
	a->script = xstrdup(x->sc->name);
	a->line = x->line;
	return a;
}

/*
 * keep / fileinto: a second store into the same mailbox is the same
 * action (RFC 5228 2.10.3); as in Pigeonhole it keeps its place and
 * takes the later flags. folder NULL (keep) is INBOX.
 */
static struct sieve_action *
store_action(struct run *x, enum sieve_action_type t, const char *folder)
{
	struct sieve_result *r = x->r;
	const char *f = folder ? folder : "INBOX";
	struct sieve_action *a;

	for (size_t i = 0; i < r->nact; i++) {
		const char *g;

		a = &r->act[i];
		if (a->type != SIEVE_ACT_KEEP && a->type != SIEVE_ACT_FILEINTO)
			continue;
		g = a->folder ? a->folder : "INBOX";
		if (strcmp(f, g) == 0 || (strcasecmp(f, "INBOX") == 0
					  && strcasecmp(g, "INBOX") == 0))
			return a;
	}
	if ((a = add_action(x, t)) != NULL && folder)
		a->folder = xstrdup(folder);
	return a;
}

/* editheader: a new version if the header changed since the last one. */
static int
cur_version(struct run *x)
{
	struct sieve_result *r = x->r;

	if (x->h->edited) {
		struct buf b;

		buf_init(&b, 0);
		sieve_hdrs_rebuild(x->h, &b);
		r->ver = xrealloc(r->ver, (r->nver + 1) * sizeof(*r->ver));
		r->ver[r->nver].len = b.len;
		r->ver[r->nver].data = b.data ? buf_steal(&b) : xstrdup("");
		r->nver++;
		x->h->edited = false;
		buf_free(&b);
	}
	return (int)r->nver;
}

const char *
sieve_action_message(const struct sieve_result *r,
		     const struct sieve_action *a, const char *orig,
		     size_t orig_len, size_t *len_r)
{
	if (a->ver > 0 && (size_t)a->ver <= r->nver) {
		*len_r = r->ver[a->ver - 1].len;
		return r->ver[a->ver - 1].data;
	}
	*len_r = orig_len;
	return orig;
}

/* ---- variables ---- */

static void
vars_free(struct vars *v)
{
	for (size_t i = 0; i < v->n; i++) {
		free(v->name[i]);
		free(v->val[i]);
	}
	free(v->name);
	free(v->val);
	memset(v, 0, sizeof(*v));
}

/*
 * The namespace of a variable name (RFC 6609 3.5): "global.NAME", or a
 * NAME this script declared with "global", lives in the shared set.
 */
static struct vars *
var_space(struct run *x, const char **name, size_t *n)
{
	if (!(x->sc->exts & EXT_INCLUDE))
		return &x->vars;
	if (*n > 7 && strncasecmp(*name, "global.", 7) == 0) {
		*name += 7;
		*n -= 7;
		return &x->g->globals;
	}
	for (size_t i = 0; i < x->gdecl.n; i++)
		if (strlen(x->gdecl.v[i]) == *n
		    && strncasecmp(x->gdecl.v[i], *name, *n) == 0)
			return &x->g->globals;
	return &x->vars;
}

static const char *
var_get(struct run *x, const char *name, size_t n)
{
	struct vars *vs = var_space(x, &name, &n);

	for (size_t i = 0; i < vs->n; i++)
		if (strlen(vs->name[i]) == n && strncasecmp(vs->name[i], name, n) == 0)
			return vs->val[i];
	return "";
}

static void
var_set(struct run *x, const char *name, const char *val)
{
	size_t i, n = strlen(name);
	struct vars *vs = var_space(x, &name, &n);
	char *v = xstrndup(val, strnlen(val, MAX_VAR_LEN));

	for (i = 0; i < vs->n; i++)
		if (strlen(vs->name[i]) == n && strncasecmp(vs->name[i], name, n) == 0) {
			free(vs->val[i]);
			vs->val[i] = v;
			return;
		}
	if (vs->n >= MAX_VARS) {
		free(v);
		return;
	}
	vs->name = xrealloc(vs->name, (vs->n + 1) * sizeof(char *));
	vs->val = xrealloc(vs->val, (vs->n + 1) * sizeof(char *));
	vs->name[vs->n] = xstrndup(name, n);
	vs->val[vs->n++] = v;
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
				} else if (memchr(s + 2, '.', n) == NULL
					   || (n > 7 && strncasecmp(s + 2, "global.", 7) == 0
					       && memchr(s + 9, '.', n - 7) == NULL
					       && (x->sc->exts & EXT_INCLUDE))) {
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

/* The "--boundary" of a multipart Content-Type into bnd; its length or 0. */
static size_t
boundary_of(const char *ct, char *bnd, size_t size)
{
	const char *bp = strcasestr(ct, "boundary=");
	size_t bl = 0;

	if (bp == NULL)
		return 0;
	bp += 9;
	if (*bp == '"')
		bp++;
	while (bp[bl] && bp[bl] != '"' && bp[bl] != ';' && bp[bl] != ' '
	       && bl < size - 3)
		bl++;
	if (bl == 0)
		return 0;
	bnd[0] = bnd[1] = '-';
	memcpy(bnd + 2, bp, bl);
	bnd[bl + 2] = '\0';
	return bl + 2;
}

/* RFC 5173 5.3: does the part's type (NULL: text/plain) match one of the
 * :content types ("" any, "text" a main type, "text/html" exactly)? */
static bool
content_type_matches(struct run *x, const char *ct, const struct sieve_arg *types)
{
	char t[128];
	size_t n = 0;

	if (ct == NULL)
		ct = "text/plain";
	while (*ct == ' ' || *ct == '\t')
		ct++;
	while (ct[n] && ct[n] != ';' && ct[n] != ' ' && ct[n] != '\t'
	       && n < sizeof(t) - 1) {
		t[n] = (char)tolower((unsigned char)ct[n]);
		n++;
	}
	t[n] = '\0';
	if (types == NULL)
		return strncmp(t, "text/", 5) == 0;
	for (size_t i = 0; i < types->ns; i++) {
		char *want = expand(x, types->s[i]);
		bool ok = *want == '\0'
			  || (strchr(want, '/') ? strcasecmp(want, t) == 0
			      : (strncasecmp(t, want, strlen(want)) == 0
				 && t[strlen(want)] == '/'));

		free(want);
		if (ok)
			return true;
	}
	return false;
}

#define BODY_MAX_PARTS	64
#define BODY_MAX_DEPTH	8

/* Adds each leaf part of the given type, transfer-decoded, to vals. */
static void
body_walk(struct run *x, const struct sieve_arg *types, const char *ct,
	  const char *cte, const char *body, size_t len, int depth,
	  struct strlist *vals)
{
	char bnd[128];
	size_t bl;

	if (vals->n >= BODY_MAX_PARTS || depth > BODY_MAX_DEPTH)
		return;
	if (ct && strncasecmp(ct, "multipart/", 10) == 0
	    && (bl = boundary_of(ct, bnd, sizeof(bnd))) > 0) {
		const char *p = memmem(body, len, bnd, bl), *end = body + len;

		while (p != NULL && vals->n < BODY_MAX_PARTS) {
			const char *q, *ps = p + bl;
			struct sieve_hdrs ph;

			if (ps + 2 <= end && ps[0] == '-' && ps[1] == '-')
				break;
			/* the part starts after the boundary line */
			{
				const char *nl = memchr(ps, '\n', (size_t)(end - ps));

				ps = nl ? nl + 1 : end;
			}
			q = memmem(ps, (size_t)(end - ps), bnd, bl);
			sieve_hdrs_parse(ps, (size_t)((q ? q : end) - ps), &ph);
			/* the part's body ends before the line break that
			 * precedes the next boundary */
			{
				size_t bodylen = ph.body_len;

				if (q && bodylen > 0 && ph.body[bodylen - 1] == '\n')
					bodylen--;
				if (q && bodylen > 0 && ph.body[bodylen - 1] == '\r')
					bodylen--;
				body_walk(x, types, sieve_hdrs_get(&ph, "content-type"),
					  sieve_hdrs_get(&ph, "content-transfer-encoding"),
					  ph.body, bodylen, depth + 1, vals);
			}
			sieve_hdrs_free(&ph);
			p = q;
		}
		return;
	}
	if (ct && strncasecmp(ct, "message/rfc822", 14) == 0) {
		struct sieve_hdrs ph;

		sieve_hdrs_parse(body, len, &ph);
		body_walk(x, types, sieve_hdrs_get(&ph, "content-type"),
			  sieve_hdrs_get(&ph, "content-transfer-encoding"),
			  ph.body, ph.body_len, depth + 1, vals);
		sieve_hdrs_free(&ph);
		return;
	}
	if (content_type_matches(x, ct, types)) {
		struct buf b;

		buf_init(&b, 0);
		sieve_cte_decode(cte, body, len, &b);
		/* NULs would cut the value short: make them spaces */
		for (size_t i = 0; i < b.len; i++)
			if (b.data[i] == '\0')
				b.data[i] = ' ';
		strlist_add(vals, buf_cstr(&b));
		buf_free(&b);
	}
}

/* RFC 5173: :raw (the undecoded body), :text (default: the text parts)
 * and :content (the parts of the listed types), one value per part. */
static int
body_values(struct run *x, const struct sieve_node *n, struct strlist *vals)
{
	if (n->tags & B(TAG_RAW)) {
		struct buf b;

		buf_init(&b, 0);
		buf_append(&b, x->h->body, x->h->body_len);
		for (size_t i = 0; i < b.len; i++)
			if (b.data[i] == '\0')
				b.data[i] = ' ';
		strlist_add(vals, buf_cstr(&b));
		buf_free(&b);
		return 0;
	}
	body_walk(x, n->tagarg[TAG_CONTENT], sieve_hdrs_get(x->h, "content-type"),
		  sieve_hdrs_get(x->h, "content-transfer-encoding"), x->h->body,
		  x->h->body_len, 0, vals);
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
		for (size_t k = 0; k < x->h->n; k++)
			count += strcasecmp(x->h->h[k].name, name) == 0;
		if (n->tagarg[TAG_INDEX]->num > count)
			return;
		want = (size_t)n->tagarg[TAG_INDEX]->num;
		if (n->tags & B(TAG_LAST))
			want = count - want + 1;
	}
	for (size_t k = 0; k < x->h->n; k++)
		if (strcasecmp(x->h->h[k].name, name) == 0 && (want == 0 || ++seen == want))
			strlist_add(out, x->h->h[k].raw);
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

/*
 * RFC 7352: has this message's ID (Message-ID, the :header field or the
 * :uniqueid value) been seen under this handle within its period? The ID
 * is recorded (r->dup) for deliver.c to store once the message is
 * delivered: when it was not seen, or with :last on every occurrence.
 * No ID (no such field): false, nothing recorded.
 */
static int
duplicate_test(struct run *x, const struct sieve_node *n)
{
	char *id, *handle, *key;
	long secs = SIEVE_DUPLICATE_PERIOD;
	int seen;

	if (n->tagarg[TAG_UNIQUEID])
		id = expand(x, n->tagarg[TAG_UNIQUEID]->s[0]);
	else {
		char *name = n->tagarg[TAG_HEADER]
			     ? expand(x, n->tagarg[TAG_HEADER]->s[0])
			     : xstrdup("message-id");
		const char *v = sieve_hdrs_get(x->h, name);

		free(name);
		if (v == NULL)
			return 0;
		id = xstrdup(v);
	}
	handle = n->tagarg[TAG_HANDLE] ? expand(x, n->tagarg[TAG_HANDLE]->s[0])
				       : xstrdup("");
	key = xasprintf("%s\n%s", handle, id);
	free(handle);
	free(id);
	if (n->tagarg[TAG_SECONDS]
	    && n->tagarg[TAG_SECONDS]->num < (unsigned long long)SIEVE_DUPLICATE_PERIOD)
		secs = (long)n->tagarg[TAG_SECONDS]->num;
	seen = x->m->duplicate_seen ? x->m->duplicate_seen(x->m->arg, key) == 1 : 0;
	if ((!seen || (n->tags & B(TAG_LAST))) && x->r->ndup < SIEVE_MAX_ACTIONS) {
		struct sieve_result *r = x->r;
		size_t i;

		for (i = 0; i < r->ndup; i++)
			if (strcmp(r->dup[i].key, key) == 0)
				break;
		if (i == r->ndup) {
			r->dup = xrealloc(r->dup, (r->ndup + 1) * sizeof(*r->dup));
			r->dup[r->ndup].key = key;
			r->ndup++;
			key = NULL;
		}
		r->dup[i].seconds = secs;
	}
	free(key);
	return seen;
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

			r = sieve_hdrs_get(x->h, name) != NULL;
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
			for (size_t k = 0; k < x->flags->n; k++)
				strlist_add(&fl, x->flags->v[k]);
		}
		r = match_values(x, n, &fl, keys);
		strlist_free(&fl);
		break;
	}
	case SV_BODY:
		body_values(x, n, &vals);
		r = match_values(x, n, &vals, n->pos[0]);
		break;
	case SV_DUPLICATE:
		r = duplicate_test(x, n);
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
	/* flags an earlier script left apply even here (Pigeonhole) */
	if ((x->sc->exts & EXT_IMAP4FLAGS) || x->flags->n > 0)
		return flags_str(x->flags);
	return NULL;
}

static const char *
tag_str(const struct sieve_node *n, int t)
{
	return n->tagarg[t] ? n->tagarg[t]->s[0] : NULL;
}

/*
 * RFC 5230 4.5-4.6: why no reply is to be sent (NULL: it is). The action
 * is still part of the result (as Pigeonhole's sieve-test shows it);
 * deliver.c sends nothing for it.
 */
static const char *
vacation_blocked(struct run *x, const struct sieve_node *n)
{
	const char *from = x->m->env_from, *v;
	struct strlist mine, hdr;
	bool found = false;
	const char *at;

	if (from[0] == '\0')
		return "null envelope sender";
	at = strrchr(from, '@');
	{
		size_t ll = at ? (size_t)(at - from) : strlen(from);

		if ((ll == 13 && strncasecmp(from, "mailer-daemon", 13) == 0)
		    || (ll >= 6 && strncasecmp(from, "owner-", 6) == 0)
		    || (ll >= 8 && strncasecmp(from + ll - 8, "-request", 8) == 0)
		    || (ll == 10 && strncasecmp(from, "listserv", 8) == 0))
			return "sender is a list or mailer daemon";
	}
	if ((v = sieve_hdrs_get(x->h, "auto-submitted")) != NULL
	    && strncasecmp(v, "no", 2) != 0)
		return "message is auto-submitted";
	if ((v = sieve_hdrs_get(x->h, "precedence")) != NULL
	    && (strcasecmp(v, "bulk") == 0 || strcasecmp(v, "list") == 0
		|| strcasecmp(v, "junk") == 0))
		return "bulk or list precedence";
	for (size_t i = 0; i < x->h->n; i++)
		if (strncasecmp(x->h->h[i].name, "list-", 5) == 0
		    || strcasecmp(x->h->h[i].name, "x-auto-response-suppress") == 0)
			return "list message or replies suppressed";
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
			return "sender is the recipient";
		}
	/* one of them must be among the visible recipients */
	strlist_init(&hdr);
	for (size_t i = 0; i < x->h->n; i++) {
		const char *hn = x->h->h[i].name;

		if (strcasecmp(hn, "to") == 0 || strcasecmp(hn, "cc") == 0
		    || strcasecmp(hn, "bcc") == 0
		    || strcasecmp(hn, "resent-to") == 0
		    || strcasecmp(hn, "resent-cc") == 0
		    || strcasecmp(hn, "resent-bcc") == 0)
			sieve_addr_list(x->h->h[i].raw, &hdr);
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
	return found ? NULL : "recipient not in To, Cc or Bcc";
}

static int run_block(struct run *x, struct sieve_node *const *b, size_t n);
static int run_include(struct run *x, const struct sieve_node *n);
static int run_addheader(struct run *x, const struct sieve_node *n);
static int run_deleteheader(struct run *x, const struct sieve_node *n);

static int
cancel_keep(struct run *x, const struct sieve_node *n)
{
	if (!(n->tags & B(TAG_COPY)))
		x->r->keep_cancelled = true;
	return 0;
}

static const char *
action_name(enum sieve_action_type t)
{
	switch (t) {
	case SIEVE_ACT_KEEP:
	case SIEVE_ACT_FILEINTO:
		return "store";
	case SIEVE_ACT_REDIRECT:
		return "redirect";
	case SIEVE_ACT_VACATION:
		return "vacation";
	case SIEVE_ACT_REJECT:
		return "reject";
	default:
		return "discard";
	}
}

/*
 * RFC 5429 2.1-2.2: reject cannot go with keep, fileinto, redirect or
 * vacation (a second response to the sender), nor twice. A conflict is a
 * run-time error, so the message is kept in INBOX (as Pigeonhole does).
 */
static int
reject_conflict(struct run *x, const struct sieve_node *n,
		enum sieve_action_type t)
{
	for (size_t i = 0; i < x->r->nact; i++) {
		const struct sieve_action *a = &x->r->act[i];

		if (a->implicit || a->type == SIEVE_ACT_DISCARD)
			continue;
		if (t == SIEVE_ACT_REJECT && a->type == SIEVE_ACT_REJECT) {
			errbuf_set(x->err, "%d: duplicate reject/ereject action "
				   "not allowed (the first is at line %d)",
				   n->line, a->line);
			return -1;
		}
		if ((t == SIEVE_ACT_REJECT) != (a->type == SIEVE_ACT_REJECT)) {
			errbuf_set(x->err, "%d: %s action conflicts with the %s "
				   "action at line %d", n->line, action_name(t),
				   action_name(a->type), a->line);
			return -1;
		}
	}
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
		x->g->stop = true;
		return 0;
	case SV_RETURN:
		x->ret = true;
		return 0;
	case SV_GLOBAL:
		for (size_t i = 0; i < n->pos[0]->ns; i++)
			if (x->gdecl.n < MAX_VARS)
				strlist_add(&x->gdecl, n->pos[0]->s[i]);
		return 0;
	case SV_INCLUDE:
		return run_include(x, n);
	case SV_ADDHEADER:
		return run_addheader(x, n);
	case SV_DELETEHEADER:
		return run_deleteheader(x, n);
	case SV_KEEP:
		if (reject_conflict(x, n, SIEVE_ACT_KEEP) < 0
		    || (a = store_action(x, SIEVE_ACT_KEEP, NULL)) == NULL)
			return -1;
		free(a->flags);
		a->flags = flags_for(x, n);
		a->ver = cur_version(x);
		/* RFC 5228 4.3: an explicit keep replaces the implicit one */
		x->r->keep_cancelled = true;
		return 0;
	case SV_DISCARD:
		if ((a = add_action(x, SIEVE_ACT_DISCARD)) == NULL)
			return -1;
		x->r->keep_cancelled = true;
		return 0;
	case SV_FILEINTO:
		if (reject_conflict(x, n, SIEVE_ACT_FILEINTO) < 0)
			return -1;
		{
			char *folder = expand(x, n->pos[0]->s[0]);

			a = store_action(x, SIEVE_ACT_FILEINTO, folder);
			free(folder);
			if (a == NULL)
				return -1;
		}
		free(a->flags);
		a->flags = flags_for(x, n);
		a->create |= (n->tags & B(TAG_CREATE)) != 0;
		a->ver = cur_version(x);
		return cancel_keep(x, n);
	case SV_REDIRECT:
		if (reject_conflict(x, n, SIEVE_ACT_REDIRECT) < 0)
			return -1;
		if (x->r->nredirects >= SIEVE_MAX_REDIRECTS) {
			errbuf_set(x->err, "%d: too many redirects (limit %d)",
				   n->line, SIEVE_MAX_REDIRECTS);
			return -1;
		}
		{
			char *addr = expand(x, n->pos[0]->s[0]);

			/* the same address twice: one redirect (RFC 5228 4.2) */
			for (size_t i = 0; i < x->r->nact; i++)
				if (x->r->act[i].type == SIEVE_ACT_REDIRECT
				    && strcmp(x->r->act[i].addr, addr) == 0) {
					free(addr);
					return cancel_keep(x, n);
				}
			if ((a = add_action(x, SIEVE_ACT_REDIRECT)) == NULL) {
				free(addr);
				return -1;
			}
			a->addr = addr;
		}
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
		a->ver = cur_version(x);
		return cancel_keep(x, n);
	case SV_REJECT:
	case SV_EREJECT:
		if (reject_conflict(x, n, SIEVE_ACT_REJECT) < 0
		    || (a = add_action(x, SIEVE_ACT_REJECT)) == NULL)
			return -1;
		a->reason = expand(x, n->pos[0]->s[0]);
		x->r->keep_cancelled = true;
		return 0;
	case SV_VACATION: {
		for (size_t i = 0; i < x->r->nact; i++)
			if (x->r->act[i].type == SIEVE_ACT_VACATION)
				return 0;	/* one reply per message */
		if (reject_conflict(x, n, SIEVE_ACT_VACATION) < 0
		    || (a = add_action(x, SIEVE_ACT_VACATION)) == NULL)
			return -1;
		a->skip = vacation_blocked(x, n);
		a->reason = expand(x, n->pos[0]->s[0]);
		a->subject = tag_str(n, TAG_SUBJECT) ? expand(x, tag_str(n, TAG_SUBJECT)) : NULL;
		a->from = tag_str(n, TAG_FROM) ? expand(x, tag_str(n, TAG_FROM)) : NULL;
		a->handle = tag_str(n, TAG_HANDLE) ? expand(x, tag_str(n, TAG_HANDLE)) : NULL;
		a->mime = (n->tags & B(TAG_MIME)) != 0;
		/* RFC 5230 4.1: days default 7, at least 1; :seconds (RFC
		 * 6131) within the same bounds (Pigeonhole's default
		 * sieve_vacation_min_period is 1d) */
		if (n->tagarg[TAG_SECONDS]) {
			unsigned long long v = n->tagarg[TAG_SECONDS]->num;

			a->seconds = (long)(v > 86400 * 365ULL ? 86400 * 365
					    : v < 86400 ? 86400 : v);
		}
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
			const char *v = sieve_hdrs_get(x->h, "message-id");
			struct buf b;

			a->in_reply_to = v ? xstrdup(v) : NULL;
			buf_init(&b, 0);
			if ((v = sieve_hdrs_get(x->h, "subject")) != NULL)
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
			flags_apply(x->flags, n->id, n->pos[0], x);
		return 0;
	default:
		errbuf_set(x->err, "%d: '%s' is not a command", n->line, n->name);
		return -1;
	}
}

static int
run_block(struct run *x, struct sieve_node *const *b, size_t n)
{
	for (size_t i = 0; i < n && !x->g->stop && !x->ret; i++)
		if (run_cmd(x, b[i]) < 0)
			return -1;
	return 0;
}

static void
run_free(struct run *x)
{
	vars_free(&x->vars);
	strlist_free(&x->gdecl);
	sieve_caps_clear(&x->caps);
}

/*
 * RFC 6609 include: runs the named script with this one's message,
 * result, header, flags and global variables; its own variables are its
 * own. A script already being included (a cycle), more than
 * SIEVE_MAX_INCLUDE_DEPTH levels or SIEVE_MAX_INCLUDES includes are
 * run-time errors; :once skips a script included before, :optional one
 * that does not exist.
 */
static int
run_include(struct run *x, const struct sieve_node *n)
{
	bool global = (n->tags & B(TAG_GLOBAL)) != 0;
	const char *name = n->pos[0]->s[0];
	struct sieve_script *sub = NULL;
	struct errbuf e2;
	struct run y;
	char *key = xasprintf("%c:%s", global ? 'g' : 'p', name);
	int rc;

	if ((n->tags & B(TAG_ONCE)) && strlist_contains(&x->g->once, key)) {
		free(key);
		return 0;
	}
	if (strlist_contains(&x->g->stack, key)) {
		errbuf_set(x->err, "%d: include: circular include of %s "
			   "script \"%s\"", n->line, global ? "global"
			   : "personal", name);
		free(key);
		return -1;
	}
	if (x->g->stack.n >= SIEVE_MAX_INCLUDE_DEPTH
	    || ++x->g->nincludes > SIEVE_MAX_INCLUDES) {
		errbuf_set(x->err, "%d: include: too many nested or repeated "
			   "includes (limits %d deep, %d in all)", n->line,
			   SIEVE_MAX_INCLUDE_DEPTH, SIEVE_MAX_INCLUDES);
		free(key);
		return -1;
	}
	errbuf_clear(&e2);
	rc = x->m->include ? x->m->include(x->m->arg, global, name, &sub, &e2) : 0;
	if (rc <= 0) {
		free(key);
		if (rc == 0 && (n->tags & B(TAG_OPTIONAL)))
			return 0;
		if (rc == 0)
			errbuf_set(x->err, "%d: include: %s script \"%s\" does "
				   "not exist", n->line, global ? "global"
				   : "personal", name);
		else
			errbuf_set(x->err, "%d: include: %s", n->line,
				   errbuf_str(&e2));
		return -1;
	}
	if (!strlist_contains(&x->g->once, key))
		strlist_add(&x->g->once, key);
	strlist_add(&x->g->stack, key);
	free(key);
	memset(&y, 0, sizeof(y));
	y.sc = sub;
	y.m = x->m;
	y.r = x->r;
	y.err = x->err;
	y.steps = x->steps;
	y.g = x->g;
	y.h = x->h;
	y.flags = x->flags;
	strlist_init(&y.gdecl);
	rc = run_block(&y, sub->root->block, sub->root->nblock);
	x->steps = y.steps;
	run_free(&y);
	free(x->g->stack.v[--x->g->stack.n]);
	sieve_script_unref(&sub);
	return rc;
}

static bool
header_protected(const char *name)
{
	/* Pigeonhole: never deleted (RFC 5293 section 6) */
	return strcasecmp(name, "received") == 0
	       || strcasecmp(name, "auto-submitted") == 0;
}

/* RFC 5293 4: addheader [:last] NAME VALUE */
static int
run_addheader(struct run *x, const struct sieve_node *n)
{
	char *name = expand(x, n->pos[0]->s[0]);
	char *value = expand(x, n->pos[1]->s[0]);
	struct buf enc;
	int rc = 0;

	buf_init(&enc, 0);
	if (!sieve_field_name_ok(name)) {
		errbuf_set(x->err, "%d: addheader: bad header field name "
			   "\"%s\"", n->line, name);
		rc = -1;
	} else if (strlen(value) > SIEVE_MAX_HEADER_SIZE) {
		errbuf_set(x->err, "%d: addheader: value longer than %d "
			   "bytes", n->line, SIEVE_MAX_HEADER_SIZE);
		rc = -1;
	} else {
		/* CR and LF would start a new field: they become spaces */
		for (char *p = value; *p; p++)
			if (*p == '\r' || *p == '\n')
				*p = ' ';
		sieve_hdr_encode(name, value, &enc);
		sieve_hdrs_add(x->h, name, buf_cstr(&enc),
			       (n->tags & B(TAG_LAST)) != 0);
	}
	buf_free(&enc);
	free(name);
	free(value);
	return rc;
}

/* RFC 5293 5: deleteheader [:index N [:last]] [cmp] [mt] NAME [VALUES] */
static int
run_deleteheader(struct run *x, const struct sieve_node *n)
{
	char *name = expand(x, n->pos[0]->s[0]);
	const struct sieve_arg *keys = n->npos > 1 ? n->pos[1] : NULL;
	size_t count = 0, seen = 0, want = 0;
	int rc = 0;

	if (!sieve_field_name_ok(name)) {
		errbuf_set(x->err, "%d: deleteheader: bad header field name "
			   "\"%s\"", n->line, name);
		free(name);
		return -1;
	}
	if (header_protected(name)) {
		free(name);
		return 0;	/* not an error: the field simply stays */
	}
	for (size_t k = 0; k < x->h->n; k++)
		count += strcasecmp(x->h->h[k].name, name) == 0;
	if (n->tagarg[TAG_INDEX]) {
		if (n->tagarg[TAG_INDEX]->num > count) {
			free(name);
			return 0;
		}
		want = (size_t)n->tagarg[TAG_INDEX]->num;
		if (n->tags & B(TAG_LAST))
			want = count - want + 1;
	}
	for (size_t k = 0; k < x->h->n;) {
		bool del;

		if (strcasecmp(x->h->h[k].name, name) != 0) {
			k++;
			continue;
		}
		seen++;
		del = want == 0 || seen == want;
		if (del && keys) {
			struct strlist vals;

			strlist_init(&vals);
			decoded(x->h->h[k].raw, &vals);
			rc = match_values(x, n, &vals, keys);
			strlist_free(&vals);
			if (rc < 0)
				break;
			del = rc == 1;
			rc = 0;
		}
		if (del)
			sieve_hdrs_del(x->h, k);
		else
			k++;
	}
	free(name);
	return rc;
}

int
sieve_run(const struct sieve_script *s, const struct sieve_msg *msg,
	  struct sieve_result *r, struct errbuf *err)
{
	struct run x;
	struct shared g;
	int rc;

	memset(&x, 0, sizeof(x));
	memset(&g, 0, sizeof(g));
	errbuf_clear(err);
	x.sc = s;
	x.m = msg;
	x.r = r;
	x.err = err;
	x.steps = SIEVE_MAX_STEPS;
	x.g = &g;
	x.h = &g.h;
	x.flags = &g.flags;
	strlist_init(&g.flags);
	strlist_init(&g.once);
	strlist_init(&g.stack);
	strlist_init(&x.gdecl);
	/* an earlier script's flags and header edits stay (Pigeonhole) */
	if (r->implicit_flags && *r->implicit_flags) {
		struct sieve_arg a = { 0 };
		char *fs = r->implicit_flags;

		a.s = &fs;
		a.ns = 1;
		flags_apply(&g.flags, SV_ADDFLAG, &a, &x);
	}
	if (r->nver > 0)
		sieve_hdrs_parse(r->ver[r->nver - 1].data, r->ver[r->nver - 1].len,
				 &g.h);
	else
		sieve_hdrs_parse(msg->content, msg->len, &g.h);
	rc = run_block(&x, s->root->block, s->root->nblock);
	/* RFC 5232 3: the implicit keep gets the internal variable's flags */
	free(r->implicit_flags);
	r->implicit_flags = (s->exts & EXT_IMAP4FLAGS) || g.flags.n > 0
			    ? flags_str(&g.flags) : NULL;
	r->implicit_keep_wanted = !r->keep_cancelled;
	(void)cur_version(&x);	/* the implicit keep stores the last one */
	run_free(&x);
	vars_free(&g.globals);
	strlist_free(&g.flags);
	strlist_free(&g.once);
	strlist_free(&g.stack);
	sieve_hdrs_free(&g.h);
	return rc;
}

bool
sieve_result_continue(struct sieve_result *r)
{
	bool inbox = false;
	size_t o = 0;

	for (size_t i = 0; i < r->nact; i++) {
		const struct sieve_action *a = &r->act[i];

		if (a->type == SIEVE_ACT_KEEP && !a->implicit
		    && (a->folder == NULL || strcasecmp(a->folder, "INBOX") == 0))
			inbox = true;
	}
	if (r->keep_cancelled && !inbox)
		return false;
	/* the keep becomes the next script's implicit keep */
	for (size_t i = 0; i < r->nact; i++) {
		struct sieve_action *a = &r->act[i];

		if (a->type == SIEVE_ACT_KEEP && !a->implicit
		    && (a->folder == NULL || strcasecmp(a->folder, "INBOX") == 0)) {
			action_free(a);
			continue;
		}
		if (o != i)
			r->act[o] = *a;
		o++;
	}
	r->nact = o;
	r->keep_cancelled = false;
	return true;
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
	a->ver = (int)r->nver;
	r->keep_cancelled = true;	/* finished: nothing more to add */
}

static void
format_one(const struct sieve_action *a, struct buf *out)
{
	switch (a->type) {
	case SIEVE_ACT_VACATION:
		buf_printf(out, " * send vacation message to <%s>\n", a->to);
		buf_printf(out, "    => seconds : %ld\n", a->seconds);
		if (a->skip)
			buf_printf(out, "        (not sent: %s)\n", a->skip);
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
	/* duplicate IDs to record (RFC 7352), by handle */
	for (size_t i = 0; i < r->ndup; i++) {
		const char *k = r->dup[i].key, *nl = strchr(k, '\n');
		size_t hl = nl ? (size_t)(nl - k) : strlen(k);

		if (hl)
			buf_printf(out, " * track duplicate with handle: %.*s\n",
				   (int)hl, k);
		else
			buf_puts(out, " * track duplicate\n");
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
