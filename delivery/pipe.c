/*
 * pipe.c - the pipe(8) delivery agent (see pipe.h): argv= macro expansion,
 * flags=, the child process (fork + execve, no shell, stdin the message,
 * stdout and stderr captured up to PIPE_OUTPUT_MAX bytes), the time limit
 * (SIGKILL to the process group) and Postfix's sys_exits mapping.
 * Must not: allocate or log between fork and exec, reap processes that are
 * not its own, or block without a deadline.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/lib/xmalloc.h"
#include "core/spawn.h"
#include "delivery/pipe.h"

#define PIPE_OUTPUT_MAX	2048	/* bytes of command output kept for the DSN */
#define PIPE_ARGV_MAX	1000

extern char **environ;

/* Postfix's sys_exits table: status, enhanced code, text. */
static const struct {
	int         status;
	const char *dsn;
	const char *text;
} sys_exits[] = {
	{ 64, "5.3.0", "command line usage error" },
	{ 65, "5.6.0", "data format error" },
	{ 66, "5.3.0", "cannot open input" },
	{ 67, "5.1.1", "user unknown" },
	{ 68, "5.1.2", "host name unknown" },
	{ 69, "5.3.0", "service unavailable" },
	{ 70, "5.3.0", "internal software error" },
	{ 71, "4.3.0", "system resource problem" },
	{ 72, "5.3.0", "critical OS file missing" },
	{ 73, "5.2.0", "can't create user output file" },
	{ 74, "5.3.0", "input/output error" },
	{ 75, "4.3.0", "temporary failure" },
	{ 76, "5.5.0", "remote error in protocol" },
	{ 77, "5.7.0", "permission denied" },
	{ 78, "5.3.5", "local configuration error" },
};

void
pipe_cfg_free(struct pipe_cfg *cfg)
{
	if (cfg->argv) {
		for (char **a = cfg->argv; *a; a++)
			free(*a);
		free(cfg->argv);
	}
	memset(cfg, 0, sizeof(*cfg));
}

/* ${name} macros that differ per recipient */
static bool
per_rcpt_macro(const char *a)
{
	static const char *const m[] = {
		"${recipient}", "${original_recipient}", "${user}",
		"${extension}", "${mailbox}", "$recipient", "$user",
		"$extension", "$mailbox", "$original_recipient",
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (strstr(a, m[i]))
			return true;
	return false;
}

int
pipe_cfg_parse(struct pipe_cfg *cfg, const char *name, const char *user,
	       const struct strlist *argv, const struct strlist *attrs,
	       const char *mail_owner, long long time_limit, struct errbuf *err)
{
	size_t ul = user ? strcspn(user, ":") : 0;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->name, sizeof(cfg->name), "%s", name);
	snprintf(cfg->eol, sizeof(cfg->eol), "\n");
	cfg->time_limit = time_limit > 0 ? time_limit : 1000;
	/* user=owner or owner:group; the command runs with the daemon's
	 * own user and groups either way */
	if (user == NULL || mail_owner == NULL || ul != strlen(mail_owner)
	    || strncmp(user, mail_owner, ul) != 0) {
		errbuf_set(err, "service \"%s\" (pipe): user=%s: facteur runs "
			   "pipe commands as the mail owner only (user=%s)",
			   name, user ? user : "", mail_owner ? mail_owner : "");
		return -1;
	}
	if (argv->n == 0 || argv->n > PIPE_ARGV_MAX || argv->v[0][0] == '\0') {
		errbuf_set(err, "service \"%s\" (pipe): needs argv=command",
			   name);
		return -1;
	}
	cfg->argv = xcalloc(argv->n + 1, sizeof(*cfg->argv));
	for (size_t i = 0; i < argv->n; i++) {
		if (i == 0 && argv->v[0][0] != '/') {
			/* a bare name, as Postfix's stock "argv=uux": found
			 * now in a fixed PATH (no search after fork) */
			static const char *const path[] = {
				"/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
				"/usr/bin", "/sbin", "/bin",
			};
			for (size_t k = 0; k < sizeof(path) / sizeof(path[0]); k++) {
				char *f = xasprintf("%s/%s", path[k], argv->v[0]);

				if (strchr(argv->v[0], '/') == NULL
				    && access(f, X_OK) == 0) {
					cfg->argv[0] = f;
					break;
				}
				free(f);
			}
			if (cfg->argv[0] == NULL) {
				errbuf_set(err, "service \"%s\" (pipe): command "
					   "\"%.100s\" not found (give its absolute "
					   "path in argv=)", name, argv->v[0]);
				pipe_cfg_free(cfg);
				return -1;
			}
			continue;
		}
		cfg->argv[i] = xstrdup(argv->v[i]);
		if (per_rcpt_macro(argv->v[i]))
			cfg->per_rcpt = true;
	}
	for (size_t i = 0; attrs && i < attrs->n; i++) {
		const char *a = attrs->v[i];

		if (strncmp(a, "flags=", 6) == 0) {
			for (const char *f = a + 6; *f; f++) {
				switch (*f) {
				case 'B': cfg->flags |= PIPE_F_B; break;
				case 'D': cfg->flags |= PIPE_F_D; break;
				case 'F': cfg->flags |= PIPE_F_F; break;
				case 'O': cfg->flags |= PIPE_F_O; break;
				case 'R': cfg->flags |= PIPE_F_R; break;
				case 'X': cfg->flags |= PIPE_F_X; break;
				case 'h': cfg->flags |= PIPE_F_h; break;
				case 'q': cfg->flags |= PIPE_F_q; break;
				case 'u': cfg->flags |= PIPE_F_u; break;
				case '.': cfg->flags |= PIPE_F_DOT; break;
				case '>': cfg->flags |= PIPE_F_GT; break;
				case 'H':	/* sendmail's; no effect here */
					break;
				default:
					errbuf_set(err, "service \"%s\" (pipe): "
						   "unknown flag '%c' in %s "
						   "(expected B D F O R X h q u . >)",
						   name, *f, a);
					pipe_cfg_free(cfg);
					return -1;
				}
			}
		} else if (strncmp(a, "size=", 5) == 0) {
			char *e;

			errno = 0;
			cfg->size_limit = strtoll(a + 5, &e, 10);
			if (errno || e == a + 5 || *e || cfg->size_limit < 0) {
				errbuf_set(err, "service \"%s\" (pipe): bad %s "
					   "(expected a size in bytes)", name, a);
				pipe_cfg_free(cfg);
				return -1;
			}
		} else if (strncmp(a, "eol=", 4) == 0) {
			/* C escapes \r \n \t */
			size_t k = 0;

			for (const char *p = a + 4; *p; p++) {
				char c = *p;

				if (c == '\\' && p[1]) {
					p++;
					c = *p == 'r' ? '\r' : *p == 'n' ? '\n'
					    : *p == 't' ? '\t' : *p;
				}
				if (k + 1 >= sizeof(cfg->eol)) {
					errbuf_set(err, "service \"%s\" (pipe): "
						   "%s is too long", name, a);
					pipe_cfg_free(cfg);
					return -1;
				}
				cfg->eol[k++] = c;
			}
			cfg->eol[k] = '\0';
		}
	}
	/* Delivered-To: and X-Original-To: name one recipient */
	if (cfg->flags & (PIPE_F_D | PIPE_F_O))
		cfg->per_rcpt = true;
	return 0;
}

/* ---- macros ---- */

static void
put_folded(struct buf *b, const char *s, size_t n, bool fold)
{
	for (size_t i = 0; i < n; i++)
		buf_putc(b, fold ? (char)tolower((unsigned char)s[i]) : s[i]);
}

/* RFC 5321 quoting of a local part with specials (flag q) */
static bool
needs_quote(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i])
		    && !strchr("!#$%&'*+-/=?^_`{|}~.", s[i]))
			return true;
	return n == 0 || s[0] == '.' || s[n - 1] == '.';
}

/* An address with flags h (domain), u (local part) and q (quoting). */
static void
put_addr(struct buf *b, const char *a, unsigned flags)
{
	const char *at = strrchr(a, '@');
	size_t ln = at ? (size_t)(at - a) : strlen(a);

	if (*a == '\0')
		return;
	if ((flags & PIPE_F_q) && needs_quote(a, ln)) {
		buf_putc(b, '"');
		for (size_t i = 0; i < ln; i++) {
			if (a[i] == '"' || a[i] == '\\')
				buf_putc(b, '\\');
			buf_putc(b, (flags & PIPE_F_u)
				 ? (char)tolower((unsigned char)a[i]) : a[i]);
		}
		buf_putc(b, '"');
	} else {
		put_folded(b, a, ln, flags & PIPE_F_u);
	}
	if (at) {
		buf_putc(b, '@');
		put_folded(b, at + 1, strlen(at + 1), flags & PIPE_F_h);
	}
}

char *
pipe_expand(const char *tmpl, const struct pipe_req *req, size_t ri)
{
	const struct pipe_rcpt *r = ri < req->nrcpt ? &req->rcpt[ri] : NULL;
	unsigned fl = req->cfg->flags;
	struct buf b;
	const char *p = tmpl;

	buf_init(&b, 0);
	while (*p) {
		const char *name, *end;
		size_t n;
		char nm[32];

		if (*p != '$') {
			buf_putc(&b, *p++);
			continue;
		}
		if (p[1] == '{') {
			name = p + 2;
			end = strchr(name, '}');
			if (end == NULL) {
				buf_puts(&b, p);
				break;
			}
			n = (size_t)(end - name);
			end++;
		} else if (isalpha((unsigned char)p[1]) || p[1] == '_') {
			name = p + 1;
			for (end = name; isalnum((unsigned char)*end) || *end == '_';
			     end++)
				;
			n = (size_t)(end - name);
		} else {
			buf_putc(&b, *p++);
			continue;
		}
		if (n >= sizeof(nm)) {
			buf_append(&b, p, (size_t)(end - p));
			p = end;
			continue;
		}
		memcpy(nm, name, n);
		nm[n] = '\0';
		p = end;
		if (strcmp(nm, "sender") == 0)
			put_addr(&b, req->sender ? req->sender : "", fl & PIPE_F_q);
		else if (strcmp(nm, "recipient") == 0 && r)
			put_addr(&b, r->addr, fl);
		else if (strcmp(nm, "original_recipient") == 0 && r)
			put_addr(&b, r->orig ? r->orig : r->addr, fl);
		else if (r && (strcmp(nm, "user") == 0 || strcmp(nm, "extension") == 0
			       || strcmp(nm, "mailbox") == 0
			       || strcmp(nm, "domain") == 0)) {
			const char *at = strrchr(r->addr, '@');
			size_t ln = at ? (size_t)(at - r->addr) : strlen(r->addr);
			size_t un = ln;
			const char *d = req->delimiter;

			if (d && *d)	/* the first delimiter character found */
				for (size_t i = 0; i < ln; i++)
					if (strchr(d, r->addr[i])) {
						un = i;
						break;
					}
			if (strcmp(nm, "user") == 0)
				put_folded(&b, r->addr, un, true);
			else if (strcmp(nm, "extension") == 0 && un < ln)
				put_folded(&b, r->addr + un + 1, ln - un - 1, false);
			else if (strcmp(nm, "mailbox") == 0)
				put_folded(&b, r->addr, ln, fl & PIPE_F_u);
			else if (strcmp(nm, "domain") == 0 && at)
				put_folded(&b, at + 1, strlen(at + 1), fl & PIPE_F_h);
		} else if (strcmp(nm, "nexthop") == 0)
			put_folded(&b, req->nexthop ? req->nexthop : "",
				   strlen(req->nexthop ? req->nexthop : ""),
				   fl & PIPE_F_h);
		else if (strcmp(nm, "size") == 0)
			buf_printf(&b, "%zu", req->len);
		else if (strcmp(nm, "queue_id") == 0)
			buf_puts(&b, req->queue_id ? req->queue_id : "");
		else if (strcmp(nm, "client_address") == 0)
			buf_puts(&b, req->client_addr ? req->client_addr : "");
		else if (strcmp(nm, "client_hostname") == 0)
			buf_puts(&b, req->client_name ? req->client_name : "");
		else if (strcmp(nm, "client_helo") == 0)
			buf_puts(&b, req->client_helo ? req->client_helo : "");
		else if (strcmp(nm, "sasl_method") == 0)
			buf_puts(&b, req->sasl_method ? req->sasl_method : "");
		else if (strcmp(nm, "sasl_username") == 0)
			buf_puts(&b, req->sasl_username ? req->sasl_username : "");
		/* other names expand to nothing, as unknown macros in Postfix
		 * are a configuration error we do not want to bounce for */
	}
	return buf_steal(&b);
}

/* ---- the message as the command sees it ---- */

static void
put_line(struct buf *m, const char *l, size_t n, const struct pipe_cfg *c)
{
	if ((c->flags & PIPE_F_DOT) && n > 0 && l[0] == '.')
		buf_putc(m, '.');
	if ((c->flags & PIPE_F_GT) && n >= 5 && memcmp(l, "From ", 5) == 0)
		buf_putc(m, '>');
	if (n > 0 && l[n - 1] == '\r')
		n--;
	buf_append(m, l, n);
	buf_puts(m, c->eol);
}

static void
build_message(const struct pipe_req *req, struct buf *m)
{
	const struct pipe_cfg *c = req->cfg;
	const struct pipe_rcpt *r = req->nrcpt > 0 ? &req->rcpt[0] : NULL;
	const char *p = req->content, *end = req->content + req->len;
	struct buf h;

	buf_init(&h, 0);
	if (c->flags & PIPE_F_F) {
		time_t now = time(NULL);
		struct tm tm;
		char ts[64];

		localtime_r(&now, &tm);
		strftime(ts, sizeof(ts), "%a %b %e %H:%M:%S %Y", &tm);
		buf_printf(&h, "From %s  %s", req->sender && *req->sender
			   ? req->sender : "MAILER-DAEMON", ts);
		put_line(m, buf_cstr(&h), h.len, c);
		buf_reset(&h);
	}
	if (c->flags & PIPE_F_R) {
		buf_printf(&h, "Return-Path: <%s>", req->sender ? req->sender : "");
		put_line(m, buf_cstr(&h), h.len, c);
		buf_reset(&h);
	}
	if ((c->flags & PIPE_F_O) && r) {
		buf_printf(&h, "X-Original-To: %s", r->orig ? r->orig : r->addr);
		put_line(m, buf_cstr(&h), h.len, c);
		buf_reset(&h);
	}
	if ((c->flags & PIPE_F_D) && r) {
		buf_puts(&h, "Delivered-To: ");
		for (const char *a = r->addr; *a; a++)
			buf_putc(&h, (char)tolower((unsigned char)*a));
		put_line(m, buf_cstr(&h), h.len, c);
		buf_reset(&h);
	}
	buf_free(&h);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		put_line(m, p, n, c);
		p += n + (nl ? 1 : 0);
	}
	if (c->flags & PIPE_F_B)
		buf_puts(m, c->eol);
}

/* ---- running the command ---- */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
close_from(int lo)
{
#if defined(__FreeBSD__)
	closefrom(lo);
#else
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	if (close_range((unsigned)lo, ~0U, 0) == 0)
		return;
#endif
	for (int fd = lo; fd < 65536; fd++)
		(void)close(fd);
#endif
}

static void
child(int in, int out, char **argv)
{
	spawn_child_signals();
	(void)setpgid(0, 0);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(71);
	close_from(3);
	execve(argv[0], argv, environ);
	{
		static const char m[] = "cannot execute the command\n";

		(void)!write(1, m, sizeof(m) - 1);
	}
	_exit(71);	/* EX_OSERR: deferred */
}

/* The command's output, one line, bounded, for the DSN text. */
static void
put_output(struct buf *text, const char *o, size_t n)
{
	while (n > 0 && (o[n - 1] == '\n' || o[n - 1] == '\r' || o[n - 1] == ' '))
		n--;
	if (n == 0)
		return;
	buf_puts(text, ". Command output: ");
	for (size_t i = 0; i < n; i++)
		buf_putc(text, (o[i] == '\n' || o[i] == '\r' || o[i] == '\t')
			 ? ' ' : isprint((unsigned char)o[i]) ? o[i] : '?');
}

enum deliver_status
pipe_deliver(const struct pipe_req *req, char dsn[12], struct buf *text)
{
	const struct pipe_cfg *c = req->cfg;
	struct buf msg, outb;
	char **argv = NULL;
	size_t argc = 0, cap = 0, off = 0;
	int inp[2] = { -1, -1 }, outp[2] = { -1, -1 };
	pid_t pid;
	int status = 0;
	bool timed_out = false, out_open = true, in_open = true, lost = false;
	int werr = 0;
	long long deadline;
	enum deliver_status st;

	buf_reset(text);
	/* an address starting with '-' would be an option on the command
	 * line (Postfix's allow_min_user = no refuses them) */
	for (size_t i = 0; i <= req->nrcpt; i++) {
		const char *a = i == req->nrcpt ? req->sender : req->rcpt[i].addr;
		const char *o = i < req->nrcpt ? req->rcpt[i].orig : NULL;

		if ((a && a[0] == '-') || (o && o[0] == '-')) {
			snprintf(dsn, 12, i == req->nrcpt ? "5.1.7" : "5.1.3");
			buf_printf(text, "bad address syntax: \"%.200s\" begins "
				   "with '-' (refused on a command line)",
				   a && a[0] == '-' ? a : o);
			return DELIVER_BOUNCE;
		}
	}
	if (c->size_limit > 0 && (long long)req->len > c->size_limit) {
		snprintf(dsn, 12, "5.2.3");
		buf_printf(text, "message too large for the %s service (size=%lld)",
			   c->name, c->size_limit);
		return DELIVER_BOUNCE;
	}
	/* argv: a template word with ${recipient}-like macros and several
	 * recipients becomes one word per recipient, as pipe(8) does */
	for (char **a = c->argv; *a; a++) {
		size_t k, nr = per_rcpt_macro(*a) && req->nrcpt > 1 ? req->nrcpt : 1;

		for (k = 0; k < nr; k++) {
			if (argc + 2 > cap) {
				cap = cap ? 2 * cap : 16;
				argv = xrealloc(argv, cap * sizeof(*argv));
			}
			argv[argc++] = pipe_expand(*a, req, k);
		}
	}
	argv[argc] = NULL;
	buf_init(&msg, 0);
	buf_init(&outb, 0);
	build_message(req, &msg);
	if (pipe2(inp, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0) {
		snprintf(dsn, 12, "4.3.0");
		buf_printf(text, "cannot create a pipe: %s", strerror(errno));
		st = DELIVER_DEFER;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(dsn, 12, "4.3.0");
		buf_printf(text, "cannot fork: %s", strerror(errno));
		st = DELIVER_DEFER;
		goto out;
	}
	if (pid == 0)
		child(inp[0], outp[1], argv);
	close(inp[0]);
	close(outp[1]);
	inp[0] = outp[1] = -1;
	(void)fcntl(inp[1], F_SETFL, O_NONBLOCK);
	(void)fcntl(outp[0], F_SETFL, O_NONBLOCK);
	deadline = now_ms() + c->time_limit * 1000;
	if (msg.len == 0) {
		close(inp[1]);
		inp[1] = -1;
		in_open = false;
	}
	while (in_open || out_open) {
		struct pollfd pf[2];
		int npf = 0, r;
		long long left = deadline - now_ms();

		if (left <= 0) {
			timed_out = true;
			break;
		}
		if (in_open)
			pf[npf++] = (struct pollfd){ inp[1], POLLOUT, 0 };
		if (out_open)
			pf[npf++] = (struct pollfd){ outp[0], POLLIN, 0 };
		r = poll(pf, (nfds_t)npf, left > 1000 ? 1000 : (int)left);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		for (int i = 0; i < npf; i++) {
			if (pf[i].revents == 0)
				continue;
			if (pf[i].fd == inp[1]) {
				ssize_t w = write(inp[1], msg.data + off, msg.len - off);

				if (w > 0)
					off += (size_t)w;
				if ((w < 0 && errno != EAGAIN && errno != EINTR)
				    || off >= msg.len) {
					close(inp[1]);	/* EPIPE: it stopped reading */
					inp[1] = -1;
					in_open = false;
				}
			} else {
				char rb[4096];
				ssize_t n = read(outp[0], rb, sizeof(rb));

				if (n > 0) {
					if (outb.len < PIPE_OUTPUT_MAX)
						buf_append(&outb, rb, (size_t)n
							 > PIPE_OUTPUT_MAX - outb.len
							 ? PIPE_OUTPUT_MAX - outb.len
							 : (size_t)n);
				} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
					out_open = false;
				}
			}
		}
	}
	/* the output is closed (or the time is up): wait for the exit */
	while (!timed_out) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			lost = true;	/* never "sent" without a status */
			werr = errno;
			break;
		}
		if (now_ms() >= deadline)
			timed_out = true;
		else
			(void)poll(NULL, 0, 20);
	}
	if (timed_out) {
		(void)kill(-pid, SIGKILL);
		(void)kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (timed_out) {
		snprintf(dsn, 12, "4.3.0");
		buf_printf(text, "Command time limit exceeded: \"%s\"", argv[0]);
		st = DELIVER_DEFER;
	} else if (lost) {
		snprintf(dsn, 12, "4.3.0");
		buf_printf(text, "cannot get the exit status of \"%s\": %s",
			   argv[0], strerror(werr));
		st = DELIVER_DEFER;
	} else if (WIFSIGNALED(status)) {
		snprintf(dsn, 12, "4.3.0");
		buf_printf(text, "Command died with signal %d: \"%s\"",
			   WTERMSIG(status), argv[0]);
		put_output(text, outb.data ? outb.data : "", outb.len);
		st = DELIVER_DEFER;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		snprintf(dsn, 12, "2.0.0");
		buf_printf(text, "delivered via %s service", c->name);
		st = DELIVER_SENT;
	} else {
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
		const char *d = "5.3.0", *why = "unknown mail system error";

		for (size_t i = 0; i < sizeof(sys_exits) / sizeof(sys_exits[0]); i++)
			if (sys_exits[i].status == code) {
				d = sys_exits[i].dsn;
				why = sys_exits[i].text;
			}
		snprintf(dsn, 12, "%s", d);
		buf_printf(text, "Command died with status %d: \"%s\" (%s)", code,
			   argv[0], why);
		put_output(text, outb.data ? outb.data : "", outb.len);
		st = d[0] == '4' ? DELIVER_DEFER : DELIVER_BOUNCE;
	}
out:
	for (int *fd = &inp[0]; fd <= &inp[1]; fd++)
		if (*fd >= 0)
			close(*fd);
	for (int *fd = &outp[0]; fd <= &outp[1]; fd++)
		if (*fd >= 0)
			close(*fd);
	for (size_t i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
	buf_free(&msg);
	buf_free(&outb);
	return st;
}
