/*
 * managesieve_cmd.h - the ManageSieve (RFC 5804) command parser: one
 * command line of atoms, quoted strings and literals ({n} or {n+}, both
 * read at once: the server never sends a continuation for literals), and
 * the quoting of server strings. Pure functions, no I/O; bounded input.
 */
#ifndef FACTEUR_MANAGESIEVE_CMD_H
#define FACTEUR_MANAGESIEVE_CMD_H
#include <stdbool.h>
#include <stddef.h>

#include "core/lib/buf.h"

#define MSV_LINE_MAX	8192	/* bytes of a command outside its literals */
#define MSV_QUOTED_MAX	1024	/* RFC 5804 4: quoted strings */
#define MSV_TOKENS_MAX	4	/* command name + 3 arguments */

struct msv_tok {
	char   *s;		/* NUL-terminated copy (may contain NUL if literal) */
	size_t  len;
	bool    atom;		/* false: quoted string or literal */
};

struct msv_cmd {
	struct msv_tok v[MSV_TOKENS_MAX];
	size_t  n;
};

enum msv_parse_rc {
	MSV_FATAL = -2,		/* cannot resynchronise (oversized literal or
				   line): say BYE and close */
	MSV_BAD = -1,		/* syntax error: *used = bytes to skip */
	MSV_MORE = 0,		/* incomplete: wait until *need bytes are in */
	MSV_OK = 1,		/* c filled (caller frees), *used consumed */
};

/*
 * Parses one command line from p (len bytes buffered so far). Literal
 * bytes in one command may total lit_max. *why is set for BAD and FATAL.
 */
enum msv_parse_rc msv_parse(const char *p, size_t len, size_t lit_max,
			    struct msv_cmd *c, size_t *used, size_t *need,
			    const char **why);
void msv_cmd_free(struct msv_cmd *c);

/* Appends s as a quoted string, or as a literal {n} when it has CR, LF,
 * NUL or is longer than MSV_QUOTED_MAX. */
void msv_quote(struct buf *out, const char *s, size_t len);

/* A script name we store: 1..128 bytes of UTF-8 without control
 * characters or "/", not starting with ".". */
bool msv_name_ok(const char *s, size_t len);

#endif
