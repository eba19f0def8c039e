/*
 * sieve_check.c - validates a parsed Sieve script: known commands and
 * tests, their place (command vs test, elsif/else after if), required
 * extensions, positional argument types, tagged arguments (one match type,
 * one comparator, one address part), relational operators, and applies
 * encoded-character (RFC 5228 2.4.2.4). Errors name line:column.
 * Must not: evaluate anything that depends on the message.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/lib/xmalloc.h"
#include "delivery/sieve/sieve_int.h"

enum kind { K_CONTROL, K_ACTION, K_TEST };
#define B(t) (1ULL << (t))
#define MATCH_TAGS (B(TAG_IS) | B(TAG_CONTAINS) | B(TAG_MATCHES) \
		    | B(TAG_REGEX) | B(TAG_VALUE) | B(TAG_COUNT) \
		    | B(TAG_COMPARATOR))
#define PART_TAGS (B(TAG_ALL) | B(TAG_LOCALPART) | B(TAG_DOMAIN) \
		   | B(TAG_USER) | B(TAG_DETAIL))

struct cmd_def {
	const char *name;
	int     id;
	enum kind kind;
	unsigned ext;		/* required extension, 0 = core */
	const char *pos;	/* S string, L string list, N number, ? optional S */
	char    tests;		/* 0 none, 'T' one test, 'X' test list */
	bool    block;
	unsigned long long tags;
};

/* Tags a command defines itself: they need no other extension
 * (duplicate :seconds, addheader :last, deleteheader :index). */
static unsigned long long
own_tags(int id)
{
	switch (id) {
	case SV_ADDHEADER:
		return B(TAG_LAST);
	case SV_DELETEHEADER:
		return B(TAG_INDEX) | B(TAG_LAST);
	case SV_DUPLICATE:
		return B(TAG_SECONDS) | B(TAG_LAST);
	default:
		return 0;
	}
}

static const struct cmd_def cmds[] = {
	{ "require", SV_REQUIRE, K_CONTROL, 0, "L", 0, false, 0 },
	{ "if", SV_IF, K_CONTROL, 0, "", 'T', true, 0 },
	{ "elsif", SV_ELSIF, K_CONTROL, 0, "", 'T', true, 0 },
	{ "else", SV_ELSE, K_CONTROL, 0, "", 0, true, 0 },
	{ "stop", SV_STOP, K_CONTROL, 0, "", 0, false, 0 },
	{ "keep", SV_KEEP, K_ACTION, 0, "", 0, false, B(TAG_FLAGS) },
	{ "discard", SV_DISCARD, K_ACTION, 0, "", 0, false, 0 },
	{ "fileinto", SV_FILEINTO, K_ACTION, EXT_FILEINTO, "S", 0, false,
	  B(TAG_FLAGS) | B(TAG_COPY) | B(TAG_CREATE) },
	{ "redirect", SV_REDIRECT, K_ACTION, 0, "S", 0, false, B(TAG_COPY) },
	{ "reject", SV_REJECT, K_ACTION, EXT_REJECT, "S", 0, false, 0 },
	{ "ereject", SV_EREJECT, K_ACTION, EXT_EREJECT, "S", 0, false, 0 },
	{ "vacation", SV_VACATION, K_ACTION, EXT_VACATION, "S", 0, false,
	  B(TAG_DAYS) | B(TAG_SECONDS) | B(TAG_SUBJECT) | B(TAG_FROM)
	  | B(TAG_ADDRESSES) | B(TAG_MIME) | B(TAG_HANDLE) },
	{ "set", SV_SET, K_ACTION, EXT_VARIABLES, "SS", 0, false,
	  B(TAG_LOWER) | B(TAG_UPPER) | B(TAG_LOWERFIRST) | B(TAG_UPPERFIRST)
	  | B(TAG_QUOTEWILDCARD) | B(TAG_LENGTH) },
	{ "setflag", SV_SETFLAG, K_ACTION, EXT_IMAP4FLAGS, "?L", 0, false, 0 },
	{ "addflag", SV_ADDFLAG, K_ACTION, EXT_IMAP4FLAGS, "?L", 0, false, 0 },
	{ "removeflag", SV_REMOVEFLAG, K_ACTION, EXT_IMAP4FLAGS, "?L", 0,
	  false, 0 },
	{ "address", SV_ADDRESS, K_TEST, 0, "LL", 0, false,
	  MATCH_TAGS | PART_TAGS | B(TAG_INDEX) | B(TAG_LAST) },
	{ "header", SV_HEADER, K_TEST, 0, "LL", 0, false,
	  MATCH_TAGS | B(TAG_INDEX) | B(TAG_LAST) },
	{ "envelope", SV_ENVELOPE, K_TEST, EXT_ENVELOPE, "LL", 0, false,
	  MATCH_TAGS | PART_TAGS },
	{ "exists", SV_EXISTS, K_TEST, 0, "L", 0, false, 0 },
	{ "size", SV_SIZE, K_TEST, 0, "N", 0, false, B(TAG_OVER) | B(TAG_UNDER) },
	{ "allof", SV_ALLOF, K_TEST, 0, "", 'X', false, 0 },
	{ "anyof", SV_ANYOF, K_TEST, 0, "", 'X', false, 0 },
	{ "not", SV_NOT, K_TEST, 0, "", 'T', false, 0 },
	{ "true", SV_TRUE, K_TEST, 0, "", 0, false, 0 },
	{ "false", SV_FALSE, K_TEST, 0, "", 0, false, 0 },
	{ "string", SV_STRING, K_TEST, EXT_VARIABLES, "LL", 0, false,
	  MATCH_TAGS },
	{ "hasflag", SV_HASFLAG, K_TEST, EXT_IMAP4FLAGS, "?L", 0, false,
	  MATCH_TAGS },
	{ "body", SV_BODY, K_TEST, EXT_BODY, "L", 0, false,
	  MATCH_TAGS | B(TAG_RAW) | B(TAG_TEXT) | B(TAG_CONTENT) },
	{ "mailboxexists", SV_MAILBOXEXISTS, K_TEST, EXT_MAILBOX, "L", 0,
	  false, 0 },
	{ "date", SV_DATE, K_TEST, EXT_DATE, "SSL", 0, false,
	  MATCH_TAGS | B(TAG_ZONE) | B(TAG_ORIGINALZONE) | B(TAG_INDEX)
	  | B(TAG_LAST) },
	{ "currentdate", SV_CURRENTDATE, K_TEST, EXT_DATE, "SL", 0, false,
	  MATCH_TAGS | B(TAG_ZONE) },
	{ "include", SV_INCLUDE, K_ACTION, EXT_INCLUDE, "S", 0, false,
	  B(TAG_PERSONAL) | B(TAG_GLOBAL) | B(TAG_ONCE) | B(TAG_OPTIONAL) },
	{ "return", SV_RETURN, K_CONTROL, EXT_INCLUDE, "", 0, false, 0 },
	{ "global", SV_GLOBAL, K_ACTION, EXT_INCLUDE, "L", 0, false, 0 },
	{ "addheader", SV_ADDHEADER, K_ACTION, EXT_EDITHEADER, "SS", 0, false,
	  B(TAG_LAST) },
	/* deleteheader [:index N [:last]] [cmp] [mt] NAME [VALUES] */
	{ "deleteheader", SV_DELETEHEADER, K_ACTION, EXT_EDITHEADER, "?L", 0,
	  false, MATCH_TAGS | B(TAG_INDEX) | B(TAG_LAST) },
	{ "duplicate", SV_DUPLICATE, K_TEST, EXT_DUPLICATE, "", 0, false,
	  B(TAG_HANDLE) | B(TAG_HEADER) | B(TAG_UNIQUEID) | B(TAG_SECONDS)
	  | B(TAG_LAST) },
};

struct tag_def {
	const char *name;
	int     tag;
	char    arg;		/* 0 none, 'S' string, 'L' list, 'N' number */
	unsigned ext;		/* extension the tag needs */
};

static const struct tag_def tags[] = {
	{ "is", TAG_IS, 0, 0 }, { "contains", TAG_CONTAINS, 0, 0 },
	{ "matches", TAG_MATCHES, 0, 0 }, { "regex", TAG_REGEX, 0, EXT_REGEX },
	{ "value", TAG_VALUE, 'S', EXT_RELATIONAL },
	{ "count", TAG_COUNT, 'S', EXT_RELATIONAL },
	{ "comparator", TAG_COMPARATOR, 'S', 0 },
	{ "all", TAG_ALL, 0, 0 }, { "localpart", TAG_LOCALPART, 0, 0 },
	{ "domain", TAG_DOMAIN, 0, 0 }, { "user", TAG_USER, 0, EXT_SUBADDRESS },
	{ "detail", TAG_DETAIL, 0, EXT_SUBADDRESS },
	{ "over", TAG_OVER, 0, 0 }, { "under", TAG_UNDER, 0, 0 },
	{ "copy", TAG_COPY, 0, EXT_COPY }, { "create", TAG_CREATE, 0, EXT_MAILBOX },
	{ "flags", TAG_FLAGS, 'L', EXT_IMAP4FLAGS },
	{ "days", TAG_DAYS, 'N', 0 },
	{ "seconds", TAG_SECONDS, 'N', EXT_VACATION_SECONDS },
	{ "subject", TAG_SUBJECT, 'S', 0 }, { "from", TAG_FROM, 'S', 0 },
	{ "addresses", TAG_ADDRESSES, 'L', 0 }, { "mime", TAG_MIME, 0, 0 },
	{ "handle", TAG_HANDLE, 'S', 0 },
	{ "raw", TAG_RAW, 0, 0 }, { "text", TAG_TEXT, 0, 0 },
	{ "content", TAG_CONTENT, 'L', 0 },
	{ "lower", TAG_LOWER, 0, 0 }, { "upper", TAG_UPPER, 0, 0 },
	{ "lowerfirst", TAG_LOWERFIRST, 0, 0 },
	{ "upperfirst", TAG_UPPERFIRST, 0, 0 },
	{ "quotewildcard", TAG_QUOTEWILDCARD, 0, 0 },
	{ "length", TAG_LENGTH, 0, 0 },
	{ "zone", TAG_ZONE, 'S', EXT_DATE },
	{ "originalzone", TAG_ORIGINALZONE, 0, EXT_DATE },
	{ "index", TAG_INDEX, 'N', EXT_INDEX },
	{ "last", TAG_LAST, 0, EXT_INDEX },
	{ "personal", TAG_PERSONAL, 0, 0 }, { "global", TAG_GLOBAL, 0, 0 },
	{ "once", TAG_ONCE, 0, 0 }, { "optional", TAG_OPTIONAL, 0, 0 },
	{ "header", TAG_HEADER, 'S', 0 }, { "uniqueid", TAG_UNIQUEID, 'S', 0 },
};

static const struct { const char *name; unsigned ext; } exts[] = {
	{ "fileinto", EXT_FILEINTO }, { "envelope", EXT_ENVELOPE },
	{ "variables", EXT_VARIABLES }, { "subaddress", EXT_SUBADDRESS },
	{ "imap4flags", EXT_IMAP4FLAGS }, { "copy", EXT_COPY },
	{ "body", EXT_BODY }, { "relational", EXT_RELATIONAL },
	{ "regex", EXT_REGEX }, { "reject", EXT_REJECT },
	{ "ereject", EXT_EREJECT }, { "vacation", EXT_VACATION },
	{ "vacation-seconds", EXT_VACATION | EXT_VACATION_SECONDS },
	{ "mailbox", EXT_MAILBOX }, { "encoded-character", EXT_ENCODED },
	{ "comparator-i;ascii-numeric", EXT_NUMERIC },
	{ "comparator-i;octet", 0 }, { "comparator-i;ascii-casemap", 0 },
	{ "date", EXT_DATE }, { "index", EXT_INDEX },
	{ "include", EXT_INCLUDE }, { "editheader", EXT_EDITHEADER },
	{ "duplicate", EXT_DUPLICATE },
};

const char *
sieve_extensions(void)
{
	return "fileinto envelope variables subaddress imap4flags copy body "
	       "relational regex reject ereject vacation vacation-seconds "
	       "mailbox encoded-character comparator-i;ascii-numeric date "
	       "index include editheader duplicate";
}

static const char *
ext_name(unsigned e)
{
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
		if (exts[i].ext == e)
			return exts[i].name;
	return "?";
}

#define ERR(n, ...) do { errbuf_set(err, "%d:%d: ", (n)->line, (n)->col); \
	size_t _l = strlen(err->msg); \
	snprintf(err->msg + _l, sizeof(err->msg) - _l, __VA_ARGS__); \
	return -1; } while (0)

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void
put_utf8(struct buf *b, unsigned long cp)
{
	if (cp < 0x80)
		buf_putc(b, (int)cp);
	else if (cp < 0x800) {
		buf_putc(b, (int)(0xC0 | (cp >> 6)));
		buf_putc(b, (int)(0x80 | (cp & 0x3F)));
	} else if (cp < 0x10000) {
		buf_putc(b, (int)(0xE0 | (cp >> 12)));
		buf_putc(b, (int)(0x80 | ((cp >> 6) & 0x3F)));
		buf_putc(b, (int)(0x80 | (cp & 0x3F)));
	} else {
		buf_putc(b, (int)(0xF0 | (cp >> 18)));
		buf_putc(b, (int)(0x80 | ((cp >> 12) & 0x3F)));
		buf_putc(b, (int)(0x80 | ((cp >> 6) & 0x3F)));
		buf_putc(b, (int)(0x80 | (cp & 0x3F)));
	}
}

/*
 * "${hex: 41 42}" / "${unicode: 263a}" (RFC 5228 2.4.2.4). A malformed
 * sequence stays as it is. Returns -1 for a code point out of range.
 */
static int
encoded_one(const char *s, size_t *used, struct buf *out)
{
	bool hex;
	const char *p;

	if (strncasecmp(s, "${hex:", 6) == 0) {
		hex = true;
		p = s + 6;
	} else if (strncasecmp(s, "${unicode:", 10) == 0) {
		hex = false;
		p = s + 10;
	} else
		return 0;
	{
		struct buf tmp;
		int ok = 1;

		buf_init(&tmp, 0);
		for (;;) {
			unsigned long v = 0;
			int nd = 0;

			while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
				p++;
			if (*p == '}')
				break;
			while (hexval((unsigned char)*p) >= 0 && nd < 9) {
				v = v * 16 + (unsigned long)hexval((unsigned char)*p);
				p++;
				nd++;
			}
			if (nd == 0 || (*p != ' ' && *p != '\t' && *p != '}'
					&& *p != '\r' && *p != '\n')) {
				ok = 0;
				break;
			}
			if (hex) {
				if (v > 0xFF) {
					ok = 0;
					break;
				}
				buf_putc(&tmp, (int)v);
			} else {
				if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
					buf_free(&tmp);
					return -1;
				}
				put_utf8(&tmp, v);
			}
		}
		if (ok) {
			buf_append(out, tmp.data ? tmp.data : "", tmp.len);
			*used = (size_t)(p + 1 - s);
		}
		buf_free(&tmp);
		return ok;
	}
}

static int
encoded_apply(char **sp)
{
	const char *s = *sp;
	struct buf out;

	if (strstr(s, "${") == NULL)
		return 0;
	buf_init(&out, 0);
	while (*s) {
		size_t used = 0;
		int r = encoded_one(s, &used, &out);

		if (r < 0) {
			buf_free(&out);
			return -1;
		}
		if (r == 0) {
			buf_putc(&out, *s);
			s++;
		} else
			s += used;
	}
	free(*sp);
	*sp = buf_steal(&out);
	if (*sp == NULL)
		*sp = xstrdup("");
	return 0;
}

static const struct cmd_def *
find_cmd(const char *name)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

static int
check_node(struct sieve_script *sc, struct sieve_node *n, enum kind want,
	   struct errbuf *err);

bool
sieve_field_name_ok(const char *s)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if ((unsigned char)*s < 33 || (unsigned char)*s > 126 || *s == ':')
			return false;
	return n > 0 && n <= 997;
}

static bool
is_const(const struct sieve_script *sc, const char *s)
{
	return !(sc->exts & EXT_VARIABLES) || strstr(s, "${") == NULL;
}

static bool
is_identifier(const char *s)
{
	if (!(isalpha((unsigned char)*s) || *s == '_'))
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

/* RFC 5229 3 / RFC 6609 3.5: the name a value is assigned to. */
static int
check_var_name(struct sieve_script *sc, const struct sieve_arg *a,
	       struct errbuf *err)
{
	const char *v = a->s[0];
	bool digits = *v != '\0';

	for (const char *p = v; *p; p++)
		if (!isdigit((unsigned char)*p))
			digits = false;
	if (digits)
		ERR(a, "cannot assign to match variable \"%s\"", v);
	if (strchr(v, '.') != NULL) {
		if ((sc->exts & EXT_INCLUDE) && strncasecmp(v, "global.", 7) == 0
		    && is_identifier(v + 7))
			return 0;
		ERR(a, "variable \"%s\" is in an unknown namespace", v);
	}
	if (!is_identifier(v))
		ERR(a, "bad variable name \"%s\"", v);
	return 0;
}

/* Checks of include, global, editheader and duplicate arguments, and of
 * the variable names set and the imap4flags commands assign to. */
static int
check_ext_args(struct sieve_script *sc, struct sieve_node *n,
	       const struct cmd_def *d, struct errbuf *err)
{
	switch (d->id) {
	case SV_SET:
		return check_var_name(sc, n->pos[0], err);
	case SV_SETFLAG:
	case SV_ADDFLAG:
	case SV_REMOVEFLAG:
		if (n->npos == 2 && (sc->exts & EXT_VARIABLES))
			return check_var_name(sc, n->pos[0], err);
		break;
	case SV_INCLUDE: {
		const char *name = n->pos[0]->s[0];

		if ((n->tags & B(TAG_PERSONAL)) && (n->tags & B(TAG_GLOBAL)))
			ERR(n, "include takes one of :personal and :global");
		/* RFC 6609 3.2: a constant script name, no path */
		if (!is_const(sc, name))
			ERR(n->pos[0], "include: the script name must be a "
			    "constant string");
		if (*name == '\0' || strchr(name, '/') != NULL
		    || strcmp(name, ".") == 0 || strcmp(name, "..") == 0
		    || strlen(name) > 255)
			ERR(n->pos[0], "include: bad script name \"%s\"", name);
		for (const char *p = name; *p; p++)
			if ((unsigned char)*p < 32 || *p == 127)
				ERR(n->pos[0], "include: bad script name");
		break;
	}
	case SV_GLOBAL:
		if (!(sc->exts & EXT_VARIABLES))
			ERR(n, "'global' needs require \"variables\"");
		for (size_t i = 0; i < n->pos[0]->ns; i++) {
			const char *v = n->pos[0]->s[i];

			for (const char *p = v; *p; p++)
				if (!(isalnum((unsigned char)*p) || *p == '_'))
					ERR(n->pos[0], "global: bad variable "
					    "name \"%s\"", v);
			if (*v == '\0' || isdigit((unsigned char)*v))
				ERR(n->pos[0], "global: bad variable name "
				    "\"%s\"", v);
		}
		break;
	case SV_ADDHEADER:
		if (is_const(sc, n->pos[0]->s[0])
		    && !sieve_field_name_ok(n->pos[0]->s[0]))
			ERR(n->pos[0], "addheader: bad header field name \"%s\"",
			    n->pos[0]->s[0]);
		break;
	case SV_DELETEHEADER:
		if (n->npos == 1 && n->pos[0]->is_list && n->pos[0]->ns != 1)
			ERR(n->pos[0], "deleteheader needs a single field name");
		if (is_const(sc, n->pos[0]->s[0])
		    && !sieve_field_name_ok(n->pos[0]->s[0]))
			ERR(n->pos[0], "deleteheader: bad header field name "
			    "\"%s\"", n->pos[0]->s[0]);
		if (n->npos == 1 && (n->tags & MATCH_TAGS & ~B(TAG_COMPARATOR)))
			ERR(n, "deleteheader: a match type needs value patterns");
		break;
	case SV_DUPLICATE:
		if ((n->tags & B(TAG_HEADER)) && (n->tags & B(TAG_UNIQUEID)))
			ERR(n, "duplicate takes one of :header and :uniqueid");
		if (n->tagarg[TAG_HEADER] && is_const(sc, n->tagarg[TAG_HEADER]->s[0])
		    && !sieve_field_name_ok(n->tagarg[TAG_HEADER]->s[0]))
			ERR(n->tagarg[TAG_HEADER], "duplicate: bad header field "
			    "name \"%s\"", n->tagarg[TAG_HEADER]->s[0]);
		break;
	default:
		break;
	}
	return 0;
}

static int
check_args(struct sieve_script *sc, struct sieve_node *n,
	   const struct cmd_def *d, struct errbuf *err)
{
	size_t np = 0, want = strlen(d->pos), opt = 0;

	for (const char *p = d->pos; *p; p++)
		if (*p == '?')
			opt++;
	for (size_t i = 0; i < n->nargs; i++) {
		struct sieve_arg *a = &n->args[i];

		if (sc->exts & EXT_ENCODED && a->type == ARG_STRLIST)
			for (size_t k = 0; k < a->ns; k++)
				if (encoded_apply(&a->s[k]) < 0)
					ERR(a, "bad ${unicode:} code point");
		if (a->type == ARG_TAG) {
			const struct tag_def *t = NULL;

			if (np > 0)
				ERR(a, "tag ':%s' after positional arguments of "
				    "'%s'", a->tag, n->name);
			for (size_t k = 0; k < sizeof(tags) / sizeof(tags[0]); k++)
				if (strcmp(tags[k].name, a->tag) == 0)
					t = &tags[k];
			if (t == NULL || !(d->tags & B(t->tag)))
				ERR(a, "unknown tag ':%s' for '%s'", a->tag,
				    n->name);
			if (t->ext && !(own_tags(d->id) & B(t->tag))
			    && (sc->exts & t->ext) != t->ext)
				ERR(a, "':%s' needs require \"%s\"", a->tag,
				    ext_name(t->ext & ~EXT_VACATION));
			if (n->tags & B(t->tag))
				ERR(a, "tag ':%s' given twice", a->tag);
			n->tags |= B(t->tag);
			if (t->arg) {
				struct sieve_arg *v;

				if (i + 1 >= n->nargs)
					ERR(a, "':%s' needs an argument", a->tag);
				v = &n->args[++i];
				if (sc->exts & EXT_ENCODED && v->type == ARG_STRLIST)
					for (size_t k = 0; k < v->ns; k++)
						if (encoded_apply(&v->s[k]) < 0)
							ERR(v, "bad ${unicode:} "
							    "code point");
				if ((t->arg == 'N') != (v->type == ARG_NUM)
				    || v->type == ARG_TAG
				    || (t->arg == 'S' && v->is_list
					&& v->ns != 1))
					ERR(v, "':%s' needs a %s", a->tag,
					    t->arg == 'N' ? "number"
					    : t->arg == 'S' ? "string"
					    : "string list");
				n->tagarg[t->tag] = v;
			}
			continue;
		}
		if (np >= 4 || np >= want)
			ERR(a, "too many arguments for '%s'", n->name);
		n->pos[np++] = a;
	}
	/* Optional leading string (setflag "var" "flags"): shift. */
	if (np + opt < want)
		ERR(n, "'%s' needs %zu argument%s", n->name, want - opt,
		    want - opt == 1 ? "" : "s");
	{
		const char *spec = d->pos + (np < want ? opt : 0);

		for (size_t i = 0; i < np; i++, spec++) {
			char c = *spec == '?' ? 'S' : *spec;
			struct sieve_arg *a = n->pos[i];

			if (c == 'N' && a->type != ARG_NUM)
				ERR(a, "'%s' needs a number here", n->name);
			if (c != 'N' && a->type != ARG_STRLIST)
				ERR(a, "'%s' needs a string%s here", n->name,
				    c == 'L' ? " list" : "");
			if (c == 'S' && a->is_list && a->ns != 1)
				ERR(a, "'%s' needs a single string here", n->name);
		}
	}
	n->npos = np;
	/* One match type, one comparator, one address part. */
	{
		int c = 0;

		n->mt = MT_IS;
		for (int t = TAG_IS; t <= TAG_COUNT; t++)
			if (n->tags & B(t)) {
				c++;
				n->mt = MT_IS + (t - TAG_IS);
			}
		if (c > 1)
			ERR(n, "more than one match type for '%s'", n->name);
		c = 0;
		n->part = PART_ALL;
		for (int t = TAG_ALL; t <= TAG_DETAIL; t++)
			if (n->tags & B(t)) {
				c++;
				n->part = PART_ALL + (t - TAG_ALL);
			}
		if (c > 1)
			ERR(n, "more than one address part for '%s'", n->name);
	}
	n->cmp = CMP_CASEMAP;
	if (n->tagarg[TAG_COMPARATOR]) {
		const char *c = n->tagarg[TAG_COMPARATOR]->s[0];

		if (strcmp(c, "i;octet") == 0)
			n->cmp = CMP_OCTET;
		else if (strcmp(c, "i;ascii-casemap") == 0)
			n->cmp = CMP_CASEMAP;
		else if (strcmp(c, "i;ascii-numeric") == 0
			 && (sc->exts & EXT_NUMERIC))
			n->cmp = CMP_NUMERIC;
		else
			ERR(n->tagarg[TAG_COMPARATOR], "unknown comparator "
			    "\"%s\"", c);
	}
	if (n->mt == MT_VALUE || n->mt == MT_COUNT) {
		static const char *const ops[] = { "gt", "ge", "lt", "le",
						   "eq", "ne" };
		const struct sieve_arg *a = n->tagarg[n->mt == MT_VALUE
						      ? TAG_VALUE : TAG_COUNT];
		size_t k;

		for (k = 0; k < 6; k++)
			if (strcasecmp(a->s[0], ops[k]) == 0)
				break;
		if (k == 6)
			ERR(a, "bad relational operator \"%s\"", a->s[0]);
		n->relop = REL_GT + (int)k;
	}
	if (n->mt == MT_REGEX && n->cmp == CMP_NUMERIC)
		ERR(n, ":regex cannot use i;ascii-numeric");
	/* RFC 5260 */
	if ((n->tags & B(TAG_LAST)) && !(n->tags & B(TAG_INDEX))
	    && d->id != SV_ADDHEADER && d->id != SV_DUPLICATE)
		ERR(n, "':last' needs ':index'");
	if (n->tagarg[TAG_INDEX] && n->tagarg[TAG_INDEX]->num == 0)
		ERR(n->tagarg[TAG_INDEX], "':index' counts from 1");
	if ((n->tags & B(TAG_ZONE)) && (n->tags & B(TAG_ORIGINALZONE)))
		ERR(n, "':zone' and ':originalzone' exclude each other");
	if (n->tagarg[TAG_ZONE] && strstr(n->tagarg[TAG_ZONE]->s[0], "${") == NULL) {
		int z;

		if (sieve_zone_parse(n->tagarg[TAG_ZONE]->s[0], &z) < 0)
			ERR(n->tagarg[TAG_ZONE], "bad time zone \"%s\" (expected "
			    "+hhmm or -hhmm)", n->tagarg[TAG_ZONE]->s[0]);
	}
	if (n->id == SV_DATE || n->id == SV_CURRENTDATE) {
		const struct sieve_arg *p = n->pos[n->id == SV_DATE ? 1 : 0];

		if (strstr(p->s[0], "${") == NULL
		    && !sieve_date_part_known(p->s[0]))
			ERR(p, "unknown date-part \"%s\"", p->s[0]);
	}
	if (check_ext_args(sc, n, d, err) < 0)
		return -1;
	if (d->id == SV_SIZE && !!(n->tags & B(TAG_OVER))
	    == !!(n->tags & B(TAG_UNDER)))
		ERR(n, "size needs exactly one of :over and :under");
	if (d->id == SV_BODY && !!(n->tags & B(TAG_RAW)) + !!(n->tags & B(TAG_TEXT))
	    + !!(n->tags & B(TAG_CONTENT)) > 1)
		ERR(n, "body takes one of :raw, :text and :content");
	if (d->id == SV_VACATION && (n->tags & B(TAG_DAYS))
	    && (n->tags & B(TAG_SECONDS)))
		ERR(n, "vacation takes one of :days and :seconds");
	/* Tests and blocks. */
	if (d->tests == 0 && n->ntests > 0)
		ERR(n->tests[0], "'%s' takes no test", n->name);
	if (d->tests == 'T' && (n->ntests != 1 || n->test_list))
		ERR(n, "'%s' needs one test", n->name);
	if (d->tests == 'X' && !n->test_list)
		ERR(n, "'%s' needs a test list ( ... )", n->name);
	for (size_t i = 0; i < n->ntests; i++)
		if (check_node(sc, n->tests[i], K_TEST, err) < 0)
			return -1;
	if (d->kind == K_TEST)
		return 0;
	if (d->block && !n->has_block)
		ERR(n, "'%s' needs a block { ... }", n->name);
	if (!d->block && n->has_block)
		ERR(n, "'%s' takes no block", n->name);
	return 0;
}

static int
check_block(struct sieve_script *sc, struct sieve_node *blk, bool top,
	    struct errbuf *err);

static int
check_node(struct sieve_script *sc, struct sieve_node *n, enum kind want,
	   struct errbuf *err)
{
	const struct cmd_def *d = find_cmd(n->name);

	if (d == NULL)
		ERR(n, "unknown %s '%s'", want == K_TEST ? "test" : "command",
		    n->name);
	if ((want == K_TEST) != (d->kind == K_TEST))
		ERR(n, "'%s' is a %s, not a %s", n->name,
		    d->kind == K_TEST ? "test" : "command",
		    want == K_TEST ? "test" : "command");
	if (d->ext && !(sc->exts & d->ext))
		ERR(n, "'%s' needs require \"%s\"", n->name, ext_name(d->ext));
	n->id = d->id;
	if (check_args(sc, n, d, err) < 0)
		return -1;
	if (n->has_block)
		return check_block(sc, n, false, err);
	return 0;
}

static int
check_block(struct sieve_script *sc, struct sieve_node *blk, bool top,
	    struct errbuf *err)
{
	bool reqs_ok = top;
	struct sieve_node *prev_if = NULL;

	for (size_t i = 0; i < blk->nblock; i++) {
		struct sieve_node *n = blk->block[i];

		if (strcmp(n->name, "require") == 0) {
			if (!reqs_ok)
				ERR(n, "require must come before other commands");
			if (check_node(sc, n, K_CONTROL, err) < 0)
				return -1;
			for (size_t k = 0; k < n->pos[0]->ns; k++) {
				const char *e = n->pos[0]->s[k];
				size_t j;

				for (j = 0; j < sizeof(exts) / sizeof(exts[0]); j++)
					if (strcmp(exts[j].name, e) == 0)
						break;
				if (j == sizeof(exts) / sizeof(exts[0]))
					ERR(n->pos[0], "unsupported extension "
					    "\"%s\"", e);
				sc->exts |= exts[j].ext;
			}
			continue;
		}
		reqs_ok = false;
		if (strcmp(n->name, "elsif") == 0 || strcmp(n->name, "else") == 0) {
			if (prev_if == NULL)
				ERR(n, "'%s' without a preceding 'if'", n->name);
			prev_if->elsif = n;
		}
		if (check_node(sc, n, K_ACTION, err) < 0)
			return -1;
		prev_if = (n->id == SV_IF || n->id == SV_ELSIF) ? n : NULL;
	}
	return 0;
}

int
sieve_check(struct sieve_script *s, struct errbuf *err)
{
	return check_block(s, s->root, true, err);
}

struct sieve_script *
sieve_compile(const char *text, size_t len, const char *name,
	      struct errbuf *err)
{
	struct sieve_script *s;
	struct sieve_node *root = sieve_parse(text, len, err);

	if (root == NULL)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->root = root;
	s->name = xstrdup(name ? name : "script");
	s->refs = 1;
	if (sieve_check(s, err) < 0) {
		sieve_script_free(&s);
		return NULL;
	}
	return s;
}

void
sieve_script_free(struct sieve_script **sp)
{
	if (*sp == NULL)
		return;
	sieve_node_free(&(*sp)->root);
	free((*sp)->name);
	free(*sp);
	*sp = NULL;
}
