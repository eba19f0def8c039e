/*
 * pipe.h - the pipe(8) delivery agent: runs a master.cf pipe service's
 * command (argv= with Postfix's ${macros}) without a shell, the message on
 * its standard input (with the flags= prepends and conversions), within a
 * time limit, and maps its exit status to a delivery outcome with
 * Postfix's sys_exits table.
 * pipe_deliver blocks (fork, write, wait): call it from a worker thread.
 * Must not: run a shell, run as any user but the daemon's (user= must be
 * the mail owner; checked by pipe_cfg_parse), pass an address starting
 * with '-' on a command line (bounced as bad syntax), reap other processes
 * (waitpid by pid only), or log (the outcome text goes to the caller).
 */
#ifndef FACTEUR_PIPE_H
#define FACTEUR_PIPE_H
#include <stdbool.h>
#include <stddef.h>

#include "core/lib/buf.h"
#include "core/lib/errbuf.h"
#include "core/lib/strlist.h"
#include "delivery/deliver.h"

/* flags= letters */
#define PIPE_F_B	(1u << 0)	/* blank line after the message */
#define PIPE_F_D	(1u << 1)	/* Delivered-To: recipient */
#define PIPE_F_F	(1u << 2)	/* "From sender date" first line */
#define PIPE_F_O	(1u << 3)	/* X-Original-To: original recipient */
#define PIPE_F_R	(1u << 4)	/* Return-Path: <sender> */
#define PIPE_F_X	(1u << 5)	/* final delivery (DSN "delivered") */
#define PIPE_F_h	(1u << 6)	/* fold domains (and nexthop) */
#define PIPE_F_q	(1u << 7)	/* quote address local parts */
#define PIPE_F_u	(1u << 8)	/* fold local parts */
#define PIPE_F_DOT	(1u << 9)	/* "." : dot-stuff lines starting with . */
#define PIPE_F_GT	(1u << 10)	/* ">" : ">From " quoting */

struct pipe_cfg {
	char      name[32];		/* the service (for "delivered via") */
	char    **argv;			/* templates, NULL-terminated, owned */
	unsigned  flags;
	long long size_limit;		/* size=, 0 = none */
	char      eol[8];		/* eol=, default "\n" */
	long long time_limit;		/* seconds */
	bool      per_rcpt;		/* one run per recipient */
	long long rcpt_limit;		/* NAME_destination_recipient_limit,
					 * 0 = none (set by the caller) */
};

/*
 * Builds cfg from a master.cf pipe line's user=, argv= and attributes
 * (flags=, size=, eol=). user must be mail_owner (or mail_owner:group).
 * 0, or -1 + err.
 */
int  pipe_cfg_parse(struct pipe_cfg *cfg, const char *name, const char *user,
		    const struct strlist *argv, const struct strlist *attrs,
		    const char *mail_owner, long long time_limit,
		    struct errbuf *err);
void pipe_cfg_free(struct pipe_cfg *cfg);

struct pipe_rcpt {
	const char *addr;		/* final recipient */
	const char *orig;		/* original recipient (may be NULL) */
};

struct pipe_req {
	const struct pipe_cfg *cfg;
	const char *sender, *nexthop, *queue_id;
	const char *client_addr, *client_name, *client_helo;
	const char *sasl_method, *sasl_username;
	const char *delimiter;		/* recipient_delimiter, for ${extension} */
	const struct pipe_rcpt *rcpt;
	size_t      nrcpt;
	const char *content;		/* LF line ends */
	size_t      len;
};

/*
 * Runs the command once for the recipients in req (the caller splits them
 * when cfg->per_rcpt). The outcome applies to every one of them; dsn gets
 * "2.0.0"/"4.x.y"/"5.x.y" and text the reason (with the command's output,
 * bounded).
 */
enum deliver_status pipe_deliver(const struct pipe_req *req,
				 char dsn[12], struct buf *text);

/* Expands one argv template for req (for tests). Caller frees. */
char *pipe_expand(const char *tmpl, const struct pipe_req *req, size_t ri);

#endif
