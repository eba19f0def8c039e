/*
 * sieve_parse.c - the Sieve grammar (RFC 5228 section 8.2) into a syntax
 * tree: commands with arguments, tests, test lists and blocks. Knows no
 * command names (sieve_check.c does). Nesting is limited so that a hostile
 * script cannot exhaust the stack.
 * Must not: interpret anything, or keep pointers into the script text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/lib/xmalloc.h"
#include "delivery/sieve/sieve_int.h"

#define MAX_DEPTH 32
#define MAX_LIST 4096	/* strings in one list, arguments of one command */

struct parser {
	struct sieve_lex lx;
	struct errbuf *err;
};

static void
arg_free(struct sieve_arg *a)
{
	for (size_t i = 0; i < a->ns; i++)
		free(a->s[i]);
	free(a->s);
	free(a->tag);
}

void
sieve_node_free(struct sieve_node **np)
{
	struct sieve_node *n = *np;

	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nargs; i++)
		arg_free(&n->args[i]);
	free(n->args);
	for (size_t i = 0; i < n->ntests; i++)
		sieve_node_free(&n->tests[i]);
	free(n->tests);
	for (size_t i = 0; i < n->nblock; i++)
		sieve_node_free(&n->block[i]);
	free(n->block);
	free(n->name);
	free(n);
	*np = NULL;
}

static int
expect_fail(struct parser *ps, const char *what)
{
	if (ps->lx.tok != TOK_ERR)
		errbuf_set(ps->err, "%d:%d: expected %s, found %s",
			   ps->lx.tline, ps->lx.tcol, what,
			   sieve_tok_name(ps->lx.tok));
	return -1;
}

static enum sieve_tok
next(struct parser *ps)
{
	return sieve_lex_next(&ps->lx, ps->err);
}

static void
push_str(struct sieve_arg *a, const struct buf *b)
{
	a->s = xrealloc(a->s, (a->ns + 1) * sizeof(*a->s));
	a->s[a->ns++] = xstrndup(b->data ? b->data : "", b->len);
}

static int parse_test(struct parser *ps, struct sieve_node **r, int depth);

/* arguments = *argument [ test / test-list ]; current token is the first. */
static int
parse_args(struct parser *ps, struct sieve_node *n, bool tests_ok, int depth)
{
	for (;;) {
		struct sieve_lex *lx = &ps->lx;
		struct sieve_arg a;

		memset(&a, 0, sizeof(a));
		a.line = lx->tline;
		a.col = lx->tcol;
		if (lx->tok == TOK_STR) {
			a.type = ARG_STRLIST;
			push_str(&a, &lx->text);
		} else if (lx->tok == TOK_LBRACK) {
			a.type = ARG_STRLIST;
			a.is_list = true;
			for (;;) {
				if (next(ps) != TOK_STR) {
					arg_free(&a);
					return expect_fail(ps, "a string");
				}
				if (a.ns >= MAX_LIST) {
					arg_free(&a);
					errbuf_set(ps->err, "%d:%d: string list "
						   "too long", a.line, a.col);
					return -1;
				}
				push_str(&a, &lx->text);
				if (next(ps) == TOK_RBRACK)
					break;
				if (lx->tok != TOK_COMMA) {
					arg_free(&a);
					return expect_fail(ps, "',' or ']'");
				}
			}
		} else if (lx->tok == TOK_NUM) {
			a.type = ARG_NUM;
			a.num = lx->num;
		} else if (lx->tok == TOK_TAG) {
			a.type = ARG_TAG;
			a.tag = xstrdup(buf_cstr(&lx->text));
		} else
			break;
		if (n->nargs >= MAX_LIST) {
			arg_free(&a);
			errbuf_set(ps->err, "%d:%d: too many arguments", a.line,
				   a.col);
			return -1;
		}
		n->args = xrealloc(n->args, (n->nargs + 1) * sizeof(*n->args));
		n->args[n->nargs++] = a;
		if (next(ps) == TOK_ERR)
			return -1;
	}
	if (!tests_ok)
		return 0;
	if (ps->lx.tok == TOK_IDENT) {
		n->tests = xcalloc(1, sizeof(*n->tests));
		n->ntests = 1;
		return parse_test(ps, &n->tests[0], depth + 1);
	}
	if (ps->lx.tok == TOK_LPAREN) {
		n->test_list = true;
		for (;;) {
			if (next(ps) != TOK_IDENT)
				return expect_fail(ps, "a test");
			if (n->ntests >= MAX_LIST) {
				errbuf_set(ps->err, "%d:%d: too many tests",
					   ps->lx.tline, ps->lx.tcol);
				return -1;
			}
			n->tests = xrealloc(n->tests,
					    (n->ntests + 1) * sizeof(*n->tests));
			n->tests[n->ntests] = NULL;
			if (parse_test(ps, &n->tests[n->ntests++], depth + 1) < 0)
				return -1;
			if (ps->lx.tok == TOK_RPAREN)
				break;
			if (ps->lx.tok != TOK_COMMA)
				return expect_fail(ps, "',' or ')'");
		}
		return next(ps) == TOK_ERR ? -1 : 0;
	}
	return 0;
}

static struct sieve_node *
node_new(struct parser *ps)
{
	struct sieve_node *n = xcalloc(1, sizeof(*n));

	n->name = xstrdup(buf_cstr(&ps->lx.text));
	n->line = ps->lx.tline;
	n->col = ps->lx.tcol;
	return n;
}

/* Current token is the test's identifier; leaves the token after it. */
static int
parse_test(struct parser *ps, struct sieve_node **r, int depth)
{
	struct sieve_node *n;

	if (depth > MAX_DEPTH) {
		errbuf_set(ps->err, "%d:%d: tests nested too deeply",
			   ps->lx.tline, ps->lx.tcol);
		return -1;
	}
	n = node_new(ps);
	*r = n;
	if (next(ps) == TOK_ERR)
		return -1;
	return parse_args(ps, n, true, depth);
}

static int parse_commands(struct parser *ps, struct sieve_node *parent,
			  int depth);

/* Current token is the command's identifier. */
static int
parse_command(struct parser *ps, struct sieve_node *parent, int depth)
{
	struct sieve_node *n = node_new(ps);

	if (parent->nblock >= MAX_LIST) {
		sieve_node_free(&n);
		errbuf_set(ps->err, "%d:%d: too many commands in one block",
			   ps->lx.tline, ps->lx.tcol);
		return -1;
	}
	parent->block = xrealloc(parent->block,
				 (parent->nblock + 1) * sizeof(*parent->block));
	parent->block[parent->nblock++] = n;
	if (next(ps) == TOK_ERR || parse_args(ps, n, true, depth) < 0)
		return -1;
	if (ps->lx.tok == TOK_SEMI)
		return next(ps) == TOK_ERR ? -1 : 0;
	if (ps->lx.tok != TOK_LBRACE)
		return expect_fail(ps, "';' or '{'");
	if (depth >= MAX_DEPTH) {
		errbuf_set(ps->err, "%d:%d: blocks nested too deeply",
			   ps->lx.tline, ps->lx.tcol);
		return -1;
	}
	n->has_block = true;
	if (next(ps) == TOK_ERR || parse_commands(ps, n, depth + 1) < 0)
		return -1;
	if (ps->lx.tok != TOK_RBRACE)
		return expect_fail(ps, "'}'");
	return next(ps) == TOK_ERR ? -1 : 0;
}

static int
parse_commands(struct parser *ps, struct sieve_node *parent, int depth)
{
	while (ps->lx.tok == TOK_IDENT)
		if (parse_command(ps, parent, depth) < 0)
			return -1;
	return ps->lx.tok == TOK_ERR ? -1 : 0;
}

struct sieve_node *
sieve_parse(const char *text, size_t len, struct errbuf *err)
{
	struct parser ps;
	struct sieve_node *root = xcalloc(1, sizeof(*root));

	errbuf_clear(err);
	root->name = xstrdup("");
	root->has_block = true;
	if (len > SIEVE_MAX_SCRIPT_SIZE) {
		errbuf_set(err, "1:1: script too large (%zu bytes, limit %d)",
			   len, SIEVE_MAX_SCRIPT_SIZE);
		sieve_node_free(&root);
		return NULL;
	}
	sieve_lex_init(&ps.lx, text, len);
	ps.err = err;
	if (next(&ps) == TOK_ERR || parse_commands(&ps, root, 0) < 0
	    || (ps.lx.tok != TOK_EOF && expect_fail(&ps, "a command") < 0)) {
		sieve_lex_free(&ps.lx);
		sieve_node_free(&root);
		return NULL;
	}
	sieve_lex_free(&ps.lx);
	return root;
}
