/*
 * smtpd_cmd.h - SMTP command line parser (RFC 5321 4.1, RFC 1870 SIZE,
 * RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 3030 BDAT, RFC 3461 DSN args).
 * Pure: takes one line without CRLF, returns a verb and parsed arguments,
 * or an SMTP reply for a syntax error. No I/O, no session state; fuzzed.
 */
#ifndef FACTEUR_SMTPD_CMD_H
#define FACTEUR_SMTPD_CMD_H
#include <stdbool.h>
#include <stddef.h>

#include "core/addr.h"

enum smtpd_verb {
	SMTPD_UNKNOWN = 0, SMTPD_HELO, SMTPD_EHLO, SMTPD_MAIL, SMTPD_RCPT,
	SMTPD_DATA, SMTPD_BDAT, SMTPD_RSET, SMTPD_NOOP, SMTPD_QUIT,
	SMTPD_VRFY, SMTPD_EXPN, SMTPD_HELP, SMTPD_STARTTLS, SMTPD_AUTH,
	SMTPD_ETRN, SMTPD_XCLIENT, SMTPD_XFORWARD,
};

enum smtpd_body { SMTPD_BODY_NONE = 0, SMTPD_BODY_7BIT, SMTPD_BODY_8BITMIME,
		  SMTPD_BODY_BINARYMIME };

struct smtpd_cmd {
	enum smtpd_verb verb;
	const char     *name;	/* canonical verb in lower case ("ehlo"), for stats */
	const char     *arg;	/* points into the line: text after the verb and
				   one space, trailing space trimmed; "" if none */
};

/* MAIL FROM:<path> [SIZE=n] [BODY=..] [SMTPUTF8] [RET=..] [ENVID=..] [AUTH=..] */
struct smtpd_mail_args {
	struct addr addr;
	long long   size;	/* -1 when SIZE= not given */
	enum smtpd_body body;
	bool        smtputf8;
	char       *ret;	/* "FULL" / "HDRS" or NULL; owned */
	char       *envid;	/* xtext-decoded or NULL; owned */
	char       *auth;	/* AUTH= value or NULL; owned */
};

/* RCPT TO:<path> [NOTIFY=..] [ORCPT=rfc822;..] */
struct smtpd_rcpt_args {
	struct addr addr;
	unsigned    notify;	/* SMTPD_NOTIFY_* bits; 0 = not given */
	char       *orcpt;	/* "rfc822;addr" decoded, or NULL; owned */
	char       *vrfy_arg;	/* VRFY: the argument as sent (Postfix's 252
				   echoes it), or NULL; owned */
};
enum { SMTPD_NOTIFY_NEVER = 1, SMTPD_NOTIFY_SUCCESS = 2,
       SMTPD_NOTIFY_FAILURE = 4, SMTPD_NOTIFY_DELAY = 8 };

/* BDAT n [LAST] */
struct smtpd_bdat_args {
	long long size;
	bool      last;
};

/*
 * Splits a command line. Never fails: an unknown verb gives SMTPD_UNKNOWN.
 * line need not be NUL-terminated; cmd->arg points into it, so line must
 * outlive cmd; the parser NUL-terminates nothing (arg_len gives the length).
 */
void smtpd_cmd_parse(const char *line, size_t len, struct smtpd_cmd *cmd,
		     size_t *arg_len_r);

/*
 * Argument parsers. Return 0 on success. On a syntax error return -1 and set
 * *reply_r to a static complete reply without CRLF, e.g.
 * "501 5.5.4 Syntax: MAIL FROM:<address>", "501 5.1.7 Bad sender address
 * syntax", "555 5.5.4 Unsupported option: FOO", "501 5.1.3 Bad recipient
 * address syntax". utf8_ok: SMTPUTF8 was announced (UTF-8 in the path is
 * accepted without it only if utf8_ok). strict: strict_rfc821_envelopes.
 * The *_args_free functions release what the parsers allocated.
 */
int  smtpd_cmd_mail(const char *arg, size_t len, bool strict,
		    struct smtpd_mail_args *m, const char **reply_r);
int  smtpd_cmd_rcpt(const char *arg, size_t len, bool strict, bool utf8_ok,
		    struct smtpd_rcpt_args *r, const char **reply_r);
int  smtpd_cmd_bdat(const char *arg, size_t len, struct smtpd_bdat_args *b,
		    const char **reply_r);
/* HELO/EHLO argument: non-empty, one word. Returns 0 or -1 + reply. */
int  smtpd_cmd_helo(const char *arg, size_t len, const char **reply_r);
void smtpd_mail_args_free(struct smtpd_mail_args *m);
void smtpd_rcpt_args_free(struct smtpd_rcpt_args *r);

#endif
