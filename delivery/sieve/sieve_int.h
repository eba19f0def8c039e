/*
 * sieve_int.h - internals shared by the Sieve lexer, parser, checker and
 * interpreter: tokens, the syntax tree, the checked command identities.
 * Not for use outside delivery/sieve/.
 */
#ifndef FACTEUR_SIEVE_INT_H
#define FACTEUR_SIEVE_INT_H
#include <stdbool.h>
#include <stddef.h>

#include "core/lib/buf.h"
#include "core/lib/errbuf.h"
#include "delivery/sieve/sieve.h"

/* ---- lexer (RFC 5228 section 8.1) ---- */
enum sieve_tok {
	TOK_EOF, TOK_IDENT, TOK_TAG, TOK_NUM, TOK_STR, TOK_LBRACK, TOK_RBRACK,
	TOK_LPAREN, TOK_RPAREN, TOK_LBRACE, TOK_RBRACE, TOK_COMMA, TOK_SEMI,
	TOK_ERR
};

struct sieve_lex {
	const char *p, *end;
	int     line, col;
	/* the current token */
	enum sieve_tok tok;
	int     tline, tcol;
	struct buf text;	/* IDENT / TAG (without ':') / STR value */
	unsigned long long num;
	bool    multiline;	/* STR came from text: ... . */
};

void sieve_lex_init(struct sieve_lex *lx, const char *text, size_t len);
void sieve_lex_free(struct sieve_lex *lx);
/* Advances to the next token; TOK_ERR with err "L:C: reason" on error. */
enum sieve_tok sieve_lex_next(struct sieve_lex *lx, struct errbuf *err);
const char *sieve_tok_name(enum sieve_tok t);

/* ---- syntax tree ---- */
enum sieve_arg_type { ARG_STRLIST, ARG_NUM, ARG_TAG };

struct sieve_arg {
	enum sieve_arg_type type;
	int     line, col;
	char  **s;		/* STRLIST: strings (a single string too) */
	size_t  ns;
	bool    is_list;	/* written with [ ] */
	unsigned long long num;
	char   *tag;		/* TAG: name without ':' */
};

struct sieve_node {
	char   *name;		/* lower-cased identifier */
	int     line, col;
	struct sieve_arg *args;
	size_t  nargs;
	struct sieve_node **tests;	/* test or test-list */
	size_t  ntests;
	bool    test_list;	/* tests written as ( ... ) */
	struct sieve_node **block;	/* { commands } */
	size_t  nblock;
	bool    has_block;
	/* filled by the checker */
	int     id;		/* enum sieve_id */
	struct sieve_arg *pos[4];	/* positional arguments, in order */
	size_t  npos;
	struct sieve_arg *tagarg[64];	/* tagarg[TAG_x]: value of a tag */
	unsigned long long tags;	/* bit TAG_x set when present */
	int     cmp;		/* enum sieve_cmp */
	int     mt;		/* enum sieve_mt */
	int     relop;		/* enum sieve_relop */
	int     part;		/* enum sieve_part */
	struct sieve_node *elsif;	/* if/elsif: next branch (elsif or else) */
};

/* Parses a whole script. NULL + err on the first syntax error. */
struct sieve_node *sieve_parse(const char *text, size_t len,
			       struct errbuf *err);
void sieve_node_free(struct sieve_node **np);

/* ---- checked identities ---- */
enum sieve_id {
	/* control */
	SV_REQUIRE = 1, SV_IF, SV_ELSIF, SV_ELSE, SV_STOP,
	/* actions */
	SV_KEEP, SV_DISCARD, SV_FILEINTO, SV_REDIRECT, SV_REJECT, SV_EREJECT,
	SV_VACATION, SV_SET, SV_SETFLAG, SV_ADDFLAG, SV_REMOVEFLAG,
	/* tests */
	SV_ADDRESS, SV_HEADER, SV_ENVELOPE, SV_EXISTS, SV_SIZE, SV_ALLOF,
	SV_ANYOF, SV_NOT, SV_TRUE, SV_FALSE, SV_STRING, SV_HASFLAG, SV_BODY,
	SV_MAILBOXEXISTS, SV_DATE, SV_CURRENTDATE,
	/* RFC 6609, RFC 5293, RFC 7352 */
	SV_INCLUDE, SV_RETURN, SV_GLOBAL, SV_ADDHEADER, SV_DELETEHEADER,
	SV_DUPLICATE,
};

enum sieve_tag {
	TAG_IS, TAG_CONTAINS, TAG_MATCHES, TAG_REGEX, TAG_VALUE, TAG_COUNT,
	TAG_COMPARATOR, TAG_ALL, TAG_LOCALPART, TAG_DOMAIN, TAG_USER,
	TAG_DETAIL, TAG_OVER, TAG_UNDER, TAG_COPY, TAG_CREATE, TAG_FLAGS,
	TAG_DAYS, TAG_SECONDS, TAG_SUBJECT, TAG_FROM, TAG_ADDRESSES, TAG_MIME,
	TAG_HANDLE, TAG_RAW, TAG_TEXT, TAG_CONTENT, TAG_LOWER, TAG_UPPER,
	TAG_LOWERFIRST, TAG_UPPERFIRST, TAG_QUOTEWILDCARD, TAG_LENGTH,
	TAG_ZONE, TAG_ORIGINALZONE, TAG_INDEX, TAG_LAST,
	TAG_PERSONAL, TAG_GLOBAL, TAG_ONCE, TAG_OPTIONAL, TAG_HEADER,
	TAG_UNIQUEID,
	TAG_COUNT_MAX
};

enum sieve_cmp { CMP_OCTET, CMP_CASEMAP, CMP_NUMERIC };
enum sieve_mt { MT_IS, MT_CONTAINS, MT_MATCHES, MT_REGEX, MT_VALUE, MT_COUNT };
enum sieve_relop { REL_GT, REL_GE, REL_LT, REL_LE, REL_EQ, REL_NE };
enum sieve_part { PART_ALL, PART_LOCAL, PART_DOMAIN, PART_USER, PART_DETAIL };

enum sieve_ext {
	EXT_FILEINTO = 1 << 0, EXT_ENVELOPE = 1 << 1, EXT_VARIABLES = 1 << 2,
	EXT_SUBADDRESS = 1 << 3, EXT_IMAP4FLAGS = 1 << 4, EXT_COPY = 1 << 5,
	EXT_BODY = 1 << 6, EXT_RELATIONAL = 1 << 7, EXT_REGEX = 1 << 8,
	EXT_REJECT = 1 << 9, EXT_EREJECT = 1 << 10, EXT_VACATION = 1 << 11,
	EXT_MAILBOX = 1 << 12, EXT_ENCODED = 1 << 13, EXT_NUMERIC = 1 << 14,
	EXT_VACATION_SECONDS = 1 << 15, EXT_DATE = 1 << 16, EXT_INDEX = 1 << 17,
	EXT_INCLUDE = 1 << 18, EXT_EDITHEADER = 1 << 19, EXT_DUPLICATE = 1 << 20,
};

/* RFC 6609 / Pigeonhole limits */
#define SIEVE_MAX_INCLUDE_DEPTH	10	/* nested includes */
#define SIEVE_MAX_INCLUDES	255	/* include commands run per script run */
/* RFC 7352: the default and the longest :seconds period (Pigeonhole:
 * default 14d capped by its 7d maximum) */
#define SIEVE_DUPLICATE_PERIOD	(7 * 86400)
/* RFC 5293: longest header value addheader writes */
#define SIEVE_MAX_HEADER_SIZE	2048

/* Is s a valid header field name (RFC 5322 ftext, 1..997 chars)? */
bool sieve_field_name_ok(const char *s);

/* ---- date (RFC 5260, sieve_date.c) ---- */
/*
 * Parses an RFC 5322 date-time (obsolete forms and zone names included):
 * 0 with the UTC time and the zone offset in minutes, -1 if not a date.
 */
int  sieve_date_parse(const char *s, long long *t_r, int *zone_r);
/* "+hhmm" / "-hhmm" to minutes; -1 if malformed. */
int  sieve_zone_parse(const char *s, int *zone_r);
/* Is name a date-part of RFC 5260 4.2? */
bool sieve_date_part_known(const char *name);
/* The date-part of time t shown in zone (minutes); 0 if unknown part. */
int  sieve_date_part(long long t, int zone, const char *part, struct buf *out);
/* The server's current offset from UTC in minutes. */
int  sieve_local_zone(long long t);

struct sieve_script {
	struct sieve_node *root;	/* a block: root->block[] */
	unsigned exts;
	char   *name;
	/* cache bookkeeping (sieve_cache.c) */
	int     refs;
};

/* Checks the tree, resolving ids, tags and extensions; applies
 * encoded-character. -1 + err "L:C: reason". */
int sieve_check(struct sieve_script *s, struct errbuf *err);

/* ---- matching (sieve_match.c) ---- */
struct sieve_match_caps {
	char   *v[10];		/* ${0}..${9}; owned */
	bool    set;
};
void sieve_caps_clear(struct sieve_match_caps *c);
/*
 * One value against one key. Returns 1 match, 0 no, -1 error (steps
 * exhausted, bad regex: err). caps (may be NULL) gets the match variables
 * for :matches and :regex.
 */
int sieve_match_one(int mt, int cmp, int relop, const char *value,
		    const char *key, struct sieve_match_caps *caps,
		    long *steps, struct errbuf *err);
/* Comparator ordering: <0, 0, >0 (i;ascii-numeric: RFC 4790 9.1.1). */
int sieve_cmp_order(int cmp, const char *a, const char *b);
bool sieve_relop_holds(int relop, int order);

#endif
