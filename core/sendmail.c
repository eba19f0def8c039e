/*
 * sendmail.c - the Sendmail-compatible submission program (also run as
 * mailq): reads a message from stdin and hands it to facteurd over the
 * local socket $queue_directory/public/pickup (core/pickup.h), which does
 * the rest (the user's identity comes from the kernel there, not from us).
 * -bp lists the queue, -q flushes it, -bs speaks SMTP on stdin/stdout.
 * -bi (or the name newaliases) checks alias_maps: facteurd reads the
 * aliases(5) text files directly, so there is nothing to rebuild; the
 * files are read, their problems reported, and the count printed.
 * Exit codes are sysexits.h's: EX_TEMPFAIL when facteurd is not running,
 * so cron and PHP's mail() know the message was not taken.
 * Must not: need privileges, write queue files itself, or read more than
 * message_size_limit from stdin.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>
#include <grp.h>

#include "core/config.h"
#include "core/lib/buf.h"
#include "core/lib/strlist.h"
#include "core/lib/xmalloc.h"
#include "core/mailq.h"
#include "core/params.h"
#include "core/pickup.h"
#include "core/queue.h"
#include "core/rewrite_alias.h"

#if defined(__FreeBSD__) || defined(__DragonFly__)
#define FACTEUR_CONFIG_DIR "/usr/local/etc/facteur"
#else
#define FACTEUR_CONFIG_DIR "/etc/facteur"
#endif
#define IO_TIMEOUT 300		/* seconds for facteurd to answer */

static const char *progname = "sendmail";

static void
say(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
usage(void)
{
	say("usage: %s [-t] [-i|-oi] [-f sender] [-F full_name] [-C config_dir] "
	    "[-bp|-bs|-bm|-q] [--] [recipient ...]", progname);
	exit(EX_USAGE);
}

/* Connects to facteurd's pickup socket; -1 (errno) if it is not there. */
static int
pickup_connect(const struct settings *s)
{
	struct sockaddr_un sun;
	struct timeval tv = { IO_TIMEOUT, 0 };
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s",
			     s->queue_directory, PICKUP_SOCKET)
	    >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads the reply up to EOF (bounded). -1 on a read error. */
static int
read_reply(int fd, struct buf *r)
{
	char chunk[8192];
	ssize_t n;

	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		if (buf_append(r, chunk, (size_t)n) < 0)
			return -1;
	}
}

/*
 * One request; the reply's first line decides. Returns an exit code;
 * *rest_r (when not NULL) gets what follows "ok\n" (caller frees),
 * id_r (when not NULL) the queue ID. Errors are said on stderr.
 */
static int
request(const struct settings *s, const char *req, size_t len,
	const char *what, char **rest_r, char id_r[QUEUE_ID_SIZE])
{
	struct buf r;
	const char *line, *nl;
	int fd, ex;

	if ((fd = pickup_connect(s)) < 0) {
		say("fatal: %s: facteurd is not running (cannot connect to "
		    "%s/%s: %s)", what, s->queue_directory, PICKUP_SOCKET,
		    strerror(errno));
		return EX_TEMPFAIL;
	}
	buf_init(&r, 64 * 1024 * 1024);
	if (write_all(fd, req, len) < 0 || shutdown(fd, SHUT_WR) < 0 ||
	    read_reply(fd, &r) < 0 || r.len == 0) {
		say("fatal: %s: lost connection to facteurd: %s", what,
		    errno ? strerror(errno) : "no reply");
		close(fd);
		buf_free(&r);
		return EX_TEMPFAIL;
	}
	close(fd);
	line = buf_cstr(&r);
	nl = strchr(line, '\n');
	if (strncmp(line, "ok", 2) == 0 && (line[2] == ' ' || line[2] == '\n')) {
		if (id_r != NULL && line[2] == ' ')
			snprintf(id_r, QUEUE_ID_SIZE, "%.*s", (int)(nl ? nl -
				 line - 3 : QUEUE_ID_LEN), line + 3);
		if (rest_r != NULL)
			*rest_r = xstrdup(nl ? nl + 1 : "");
		buf_free(&r);
		return 0;
	}
	if (strncmp(line, "error ", 6) == 0) {
		char *end;

		ex = (int)strtol(line + 6, &end, 10);
		if (ex < EX__BASE || ex > EX__MAX)
			ex = EX_SOFTWARE;
		if (*end == ' ')
			end++;
		say("fatal: %s: %.*s", what, (int)(nl && nl >= end ? nl - end :
		    (long)strlen(end)), end);
		buf_free(&r);
		return ex;
	}
	say("fatal: %s: unexpected reply from facteurd", what);
	buf_free(&r);
	return EX_PROTOCOL;
}

/* -bp: from facteurd, else (root or mail_owner) from the queue itself. */
static int
list_queue(const struct settings *s)
{
	struct errbuf err;
	struct buf out;
	char *text = NULL;
	int fd;

	if ((fd = pickup_connect(s)) >= 0) {
		int ex;

		close(fd);
		if ((ex = request(s, "list\n", 5, "mailq", &text, NULL)) != 0)
			return ex;
		fputs(text, stdout);
		free(text);
		return fflush(stdout) == 0 ? 0 : EX_IOERR;
	}
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam(s->mail_owner);

		if (pw == NULL || pw->pw_uid == 0 || setgroups(1, &pw->pw_gid) < 0
		    || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
			say("fatal: cannot switch to mail_owner %s", s->mail_owner);
			return EX_SOFTWARE;
		}
	}
	buf_init(&out, 0);
	errbuf_clear(&err);
	if (mailq_format(s->queue_directory, 0, &out, &err) < 0) {
		say("fatal: Queue report unavailable - mail system is down (%s)",
		    errbuf_str(&err));
		buf_free(&out);
		return EX_UNAVAILABLE;
	}
	fwrite(out.data, 1, out.len, stdout);
	buf_free(&out);
	return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

/*
 * The message from stdin with LF line ends; without -i a line with a
 * single "." ends it. -1 (said) if it exceeds max bytes (0: no limit).
 */
static int
read_message(FILE *in, bool dot_ends, long long max, struct buf *msg)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, in)) > 0) {
		if (n >= 2 && line[n - 2] == '\r' && line[n - 1] == '\n') {
			line[n - 2] = '\n';
			line[--n] = '\0';
		}
		if (dot_ends && (strcmp(line, ".\n") == 0 || strcmp(line, ".") == 0))
			break;
		if (max > 0 && (long long)(msg->len + (size_t)n) > max) {
			say("fatal: message file too big (message_size_limit "
			    "is %lld bytes)", max);
			free(line);
			return -1;
		}
		buf_append(msg, line, (size_t)n);
	}
	free(line);
	if (ferror(in)) {
		say("fatal: error reading the message: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* A request line must be one line: no LF or CR in its value. */
static bool
one_line(const char *v)
{
	return strpbrk(v, "\r\n") == NULL;
}

static int
submit(const struct settings *s, const char *sender, const char *fullname,
       bool extract, char **rcpts, int nrcpts, const struct buf *msg,
       char id_r[QUEUE_ID_SIZE])
{
	struct buf req;
	int ex;

	buf_init(&req, 0);
	buf_puts(&req, "submit\n");
	if (sender != NULL) {
		if (!one_line(sender)) {
			say("fatal: bad sender address: line break");
			return EX_USAGE;
		}
		buf_printf(&req, "sender %s\n", sender);
	}
	if (fullname != NULL && *fullname && one_line(fullname))
		buf_printf(&req, "name %.500s\n", fullname);
	if (extract)
		buf_puts(&req, "extract\n");
	for (int i = 0; i < nrcpts; i++) {
		if (!one_line(rcpts[i]) || strlen(rcpts[i]) > 1000) {
			say("fatal: bad recipient address: %.100s", rcpts[i]);
			buf_free(&req);
			return EX_USAGE;
		}
		buf_printf(&req, "rcpt %s\n", rcpts[i]);
	}
	buf_printf(&req, "data %zu\n", msg->len);
	buf_append(&req, msg->data ? msg->data : "", msg->len);
	ex = request(s, req.data, req.len, "send mail", NULL, id_r);
	buf_free(&req);
	return ex;
}

/* ---- -bs: SMTP on stdin/stdout, each message submitted as above ---- */

static void
smtp_reply(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void
smtp_reply(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputs("\r\n", stdout);
	fflush(stdout);
}

/* The address inside "FROM:<a>" / "TO:<a>" (ESMTP parameters ignored). */
static char *
smtp_path(const char *arg)
{
	const char *lt, *gt;

	while (*arg == ' ')
		arg++;
	if ((lt = strchr(arg, '<')) != NULL && (gt = strchr(lt, '>')) != NULL)
		return xstrndup(lt + 1, (size_t)(gt - lt - 1));
	return xstrndup(arg, strcspn(arg, " "));
}

static int
smtp_stdio(const struct settings *s)
{
	struct strlist rcpts;
	char *sender = NULL, *line = NULL;
	size_t cap = 0;
	ssize_t n;
	bool have_mail = false;

	strlist_init(&rcpts);
	smtp_reply("220 %s ESMTP %s", s->myhostname, s->mail_name);
	while ((n = getline(&line, &cap, stdin)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (strncasecmp(line, "HELO", 4) == 0) {
			smtp_reply("250 %s", s->myhostname);
		} else if (strncasecmp(line, "EHLO", 4) == 0) {
			smtp_reply("250-%s", s->myhostname);
			smtp_reply("250 8BITMIME");
		} else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
			if (have_mail) {
				smtp_reply("503 5.5.1 Error: nested MAIL command");
				continue;
			}
			free(sender);
			sender = smtp_path(line + 10);
			have_mail = true;
			smtp_reply("250 2.1.0 Ok");
		} else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
			char *a = smtp_path(line + 8);

			if (!have_mail)
				smtp_reply("503 5.5.1 Error: need MAIL command");
			else if (*a == '\0')
				smtp_reply("501 5.1.3 Bad recipient address syntax");
			else {
				strlist_add(&rcpts, a);
				smtp_reply("250 2.1.5 Ok");
			}
			free(a);
		} else if (strcasecmp(line, "DATA") == 0) {
			struct buf msg;
			char id[QUEUE_ID_SIZE] = "";
			int ex;

			if (rcpts.n == 0) {
				smtp_reply("503 5.5.1 Error: need RCPT command");
				continue;
			}
			smtp_reply("354 End data with <CR><LF>.<CR><LF>");
			buf_init(&msg, 0);
			if (read_message(stdin, true, s->message_size_limit,
					 &msg) < 0) {
				smtp_reply("552 5.3.4 Error: message file too big");
				buf_free(&msg);
				break;
			}
			/* undo the dot-stuffing (RFC 5321 4.5.2) */
			for (size_t i = 0; i < msg.len; i++)
				if (msg.data[i] == '.' &&
				    (i == 0 || msg.data[i - 1] == '\n')) {
					memmove(msg.data + i, msg.data + i + 1,
						msg.len - i - 1);
					msg.len--;
				}
			ex = submit(s, sender, NULL, false, rcpts.v, (int)rcpts.n,
				    &msg, id);
			buf_free(&msg);
			if (ex == 0)
				smtp_reply("250 2.0.0 Ok: queued as %s", id);
			else if (ex == EX_TEMPFAIL)
				smtp_reply("451 4.3.0 Error: temporary failure, "
					   "try again later");
			else if (ex == EX_NOUSER)
				smtp_reply("550 5.1.1 Error: recipient unknown");
			else
				smtp_reply("554 5.7.1 Error: message refused");
			strlist_free(&rcpts);
			strlist_init(&rcpts);
			have_mail = false;
		} else if (strcasecmp(line, "RSET") == 0) {
			strlist_free(&rcpts);
			strlist_init(&rcpts);
			have_mail = false;
			smtp_reply("250 2.0.0 Ok");
		} else if (strcasecmp(line, "NOOP") == 0) {
			smtp_reply("250 2.0.0 Ok");
		} else if (strcasecmp(line, "QUIT") == 0) {
			smtp_reply("221 2.0.0 Bye");
			break;
		} else {
			smtp_reply("502 5.5.2 Error: command not recognized");
		}
	}
	free(line);
	free(sender);
	strlist_free(&rcpts);
	return 0;
}

/* -bi / newaliases: read every alias_maps source as facteurd will. */
static int
new_aliases(const struct settings *s)
{
	struct alias_db *d;
	struct strlist w;
	struct errbuf err;
	size_t n = 0;
	int ex = 0;

	errbuf_clear(&err);
	if ((d = alias_db_open(s->alias_maps, &err)) == NULL) {
		say("fatal: %s", errbuf_str(&err));
		return EX_CONFIG;
	}
	strlist_init(&w);
	if (alias_db_check(d, &n, &w, &err) < 0) {
		say("fatal: %s", errbuf_str(&err));
		ex = EX_NOINPUT;
	}
	for (size_t i = 0; i < w.n; i++)
		say("warning: %s", w.v[i]);
	if (ex == 0)
		printf("%s: %zu aliases in alias_maps (read directly by facteurd, "
		       "nothing to rebuild)\n", progname, n);
	strlist_free(&w);
	alias_db_free(&d);
	return ex;
}

int
main(int argc, char **argv)
{
	const char *dir = FACTEUR_CONFIG_DIR, *sender = NULL, *fullname = NULL;
	const char *base = strrchr(argv[0], '/');
	bool extract = false, dot_ends = true;
	enum { M_SEND, M_LIST, M_FLUSH, M_SMTP, M_ALIASES } mode = M_SEND;
	struct strlist warnings;
	struct settings s;
	struct config *cfg;
	struct errbuf err;
	struct buf msg;
	int i, ex;

	base = base ? base + 1 : argv[0];
	if (strcmp(base, "mailq") == 0) {
		progname = "mailq";
		mode = M_LIST;
	} else if (strcmp(base, "newaliases") == 0) {
		progname = "newaliases";
		mode = M_ALIASES;
	}
	signal(SIGPIPE, SIG_IGN);
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i];
		/* options with a value: -fX or -f X */
#define OPTARG(dst) do { \
		if (a[2]) (dst) = a + 2; \
		else if (i + 1 < argc) (dst) = argv[++i]; \
		else usage(); } while (0)

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		switch (a[1]) {
		case 'f':
		case 'r':	/* old name of -f */
			OPTARG(sender);
			break;
		case 'F':
			OPTARG(fullname);
			break;
		case 'C':
			OPTARG(dir);
			break;
		case 't':
			extract = true;
			break;
		case 'i':
			dot_ends = false;
			break;
		case 'o':
			/* -oi as -i; other -oX options are Sendmail's and ignored */
			if (strcmp(a, "-oi") == 0)
				dot_ends = false;
			else if (a[2] == '\0' && i + 1 < argc)
				i++;
			break;
		case 'b':
			if (strcmp(a, "-bp") == 0)
				mode = M_LIST;
			else if (strcmp(a, "-bs") == 0)
				mode = M_SMTP;
			else if (strcmp(a, "-bm") == 0)
				mode = M_SEND;
			else if (strcmp(a, "-bi") == 0)
				mode = M_ALIASES;
			else {
				say("fatal: unsupported: %s", a);
				return EX_USAGE;
			}
			break;
		case 'q':
			/* -q: flush now; -qINTERVAL (a queue runner) is a no-op */
			if (a[2] == '\0')
				mode = M_FLUSH;
			else
				return 0;
			break;
		case 'N':	/* DSN notify: the daemon's defaults apply */
		case 'R':
		case 'V':
		case 'B':
		case 'L':
		case 'X':
			{
				const char *ign;

				OPTARG(ign);
				(void)ign;
			}
			break;
		case 'v':
		case 'm':
		case 'n':
		case 'U':
			break;
		default:
			say("fatal: unknown option: %s", a);
			usage();
		}
#undef OPTARG
	}

	memset(&s, 0, sizeof(s));
	strlist_init(&warnings);
	errbuf_clear(&err);
	if ((cfg = config_load(dir, &warnings, &err)) == NULL ||
	    settings_load(&s, cfg, &err) < 0) {
		say("fatal: %s", errbuf_str(&err));
		return EX_CONFIG;
	}
	strlist_free(&warnings);

	switch (mode) {
	case M_LIST:
		ex = list_queue(&s);
		break;
	case M_FLUSH:
		ex = request(&s, "flush\n", 6, "flush the queue", NULL, NULL);
		if (ex == EX_TEMPFAIL)
			ex = EX_UNAVAILABLE;	/* as postqueue -f */
		break;
	case M_SMTP:
		ex = smtp_stdio(&s);
		break;
	case M_ALIASES:
		ex = new_aliases(&s);
		break;
	case M_SEND:
	default:
		if (i >= argc && !extract) {
			say("fatal: Recipient addresses must be specified on the "
			    "command line or via the -t option");
			ex = EX_USAGE;
			break;
		}
		if (fullname == NULL)
			fullname = getenv("NAME");
		buf_init(&msg, 0);
		if (read_message(stdin, dot_ends, s.message_size_limit, &msg) < 0)
			ex = EX_DATAERR;
		else
			ex = submit(&s, sender, fullname, extract, argv + i,
				    argc - i, &msg, NULL);
		buf_free(&msg);
		break;
	}
	settings_free(&s);
	config_free(&cfg);
	return ex;
}
