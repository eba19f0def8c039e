/*
 * log.c - Postfix-format log lines to maillog_file, syslog or stderr.
 * One line, one write(2) (O_APPEND), under a mutex, so lines from worker
 * threads never interleave. Syslog is a datagram to /dev/log written here
 * so the program name can change per line (NAME/SERVICE), which openlog()
 * cannot do safely with threads.
 * Must not: allocate per line on the heap, block (syslog datagrams are sent
 * with MSG_DONTWAIT and dropped if the socket is full).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define LOG_LINE_MAX 4096

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_name[128] = "facteur";
static char log_host[256];
static int log_fd = -1;			/* maillog_file */
static int log_sock = -1;		/* /dev/log */
static int log_stderr = 1;
static int log_cli;

static const char *const level_prefix[] = {
	[LOG_LVL_INFO] = "",
	[LOG_LVL_NOTICE] = "notice: ",
	[LOG_LVL_WARNING] = "warning: ",
	[LOG_LVL_ERROR] = "error: ",
	[LOG_LVL_FATAL] = "fatal: ",
};

/* syslog severities; the facility (syslog_facility, default mail = 2)
 * is added as facility << 3 */
static const int level_pri[] = {
	[LOG_LVL_INFO] = 6,
	[LOG_LVL_NOTICE] = 5,
	[LOG_LVL_WARNING] = 4,
	[LOG_LVL_ERROR] = 3,
	[LOG_LVL_FATAL] = 2,
};
static int log_facility = 2 << 3;

/* syslog(3)'s facility names and codes (RFC 5424 6.2.1). */
static const struct { const char *name; int code; } facilities[] = {
	{ "kern", 0 }, { "user", 1 }, { "mail", 2 }, { "daemon", 3 },
	{ "auth", 4 }, { "syslog", 5 }, { "lpr", 6 }, { "news", 7 },
	{ "uucp", 8 }, { "cron", 9 }, { "authpriv", 10 }, { "ftp", 11 },
	{ "local0", 16 }, { "local1", 17 }, { "local2", 18 }, { "local3", 19 },
	{ "local4", 20 }, { "local5", 21 }, { "local6", 22 }, { "local7", 23 },
};

int
log_facility_parse(const char *name, int *code_r, struct errbuf *err)
{
	for (size_t i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
		if (strcasecmp(name, facilities[i].name) == 0) {
			*code_r = facilities[i].code;
			return 0;
		}
	errbuf_set(err, "syslog_facility: unknown syslog facility \"%.64s\" "
		   "(mail, user, daemon, auth, local0 ... local7)", name);
	return -1;
}

void
log_set_facility(int code)
{
	pthread_mutex_lock(&log_lock);
	log_facility = (code & 31) << 3;
	pthread_mutex_unlock(&log_lock);
}

int
log_priority(enum log_level lvl)
{
	return log_facility + level_pri[lvl];
}

void
log_set_hostname(const char *host)
{
	pthread_mutex_lock(&log_lock);
	snprintf(log_host, sizeof(log_host), "%s", host);
	pthread_mutex_unlock(&log_lock);
}

void
log_set_cli(int cli)
{
	log_cli = cli;
}

int
log_open(const char *syslog_name, const char *maillog_file, int to_stderr)
{
	int fd = -1, sock = -1, saved;

	if (maillog_file != NULL && *maillog_file != '\0') {
		fd = open(maillog_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
			  0640);
		if (fd < 0)
			return -1;
	} else {
		struct sockaddr_un sun;

		sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "/dev/log");
		if (sock >= 0 && connect(sock, (struct sockaddr *)&sun,
					 sizeof(sun)) < 0) {
			saved = errno;
			close(sock);
			sock = -1;
			errno = saved;
		}
	}
	pthread_mutex_lock(&log_lock);
	if (log_fd >= 0)
		close(log_fd);
	if (log_sock >= 0)
		close(log_sock);
	log_fd = fd;
	log_sock = sock;
	log_stderr = to_stderr;
	if (syslog_name != NULL && *syslog_name != '\0')
		snprintf(log_name, sizeof(log_name), "%s", syslog_name);
	if (log_host[0] == '\0' && gethostname(log_host, sizeof(log_host)) < 0)
		snprintf(log_host, sizeof(log_host), "localhost");
	log_host[sizeof(log_host) - 1] = '\0';
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void
log_close(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_fd >= 0)
		close(log_fd);
	if (log_sock >= 0)
		close(log_sock);
	log_fd = log_sock = -1;
	log_stderr = 1;
	pthread_mutex_unlock(&log_lock);
}

void
log_vwrite(const char *name, const char *service, enum log_level lvl,
	   const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX], stamp[32];
	const char *prog;
	struct tm tm;
	time_t now;
	size_t hdr, body;
	int n, saved = errno;

	if ((unsigned)lvl > LOG_LVL_FATAL)
		lvl = LOG_LVL_ERROR;
	if (log_cli) {
		n = snprintf(line, sizeof(line), "facteur: %s", level_prefix[lvl]);
		if (n < 0)
			n = 0;
		hdr = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
		vsnprintf(line + hdr, sizeof(line) - hdr - 1, fmt, ap);
		body = strlen(line);
		line[body++] = '\n';
		if (write(STDERR_FILENO, line, body) < 0)
			errno = saved;
		errno = saved;
		return;
	}

	now = time(NULL);
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);

	pthread_mutex_lock(&log_lock);
	prog = name != NULL && *name != '\0' ? name : log_name;
	/*
	 * Leave room in front for the syslog "<PRI>" so one buffer serves
	 * every sink: line = "<PRI>" + "STAMP HOST " + "PROG/SVC[PID]: TEXT".
	 */
	n = snprintf(line, sizeof(line), "<%d>%s %s %s/%s[%ld]: %s",
		     log_facility + level_pri[lvl], stamp, log_host, prog,
		     service ? service : "facteurd", (long)getpid(),
		     level_prefix[lvl]);
	if (n < 0)
		n = 0;
	hdr = (size_t)n < sizeof(line) - 2 ? (size_t)n : sizeof(line) - 2;
	vsnprintf(line + hdr, sizeof(line) - hdr - 1, fmt, ap);
	body = strlen(line);
	/* One event, one line: never let a value break the line. */
	for (size_t i = hdr; i < body; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[body] = '\n';

	{
		const char *text = strchr(line, '>') + 1;	/* after <PRI> */
		size_t tlen = body + 1 - (size_t)(text - line);

		if (log_fd >= 0 && write(log_fd, text, tlen) < 0) {
			/* Nothing sane to do: the log itself is failing. */
		}
		if (log_sock >= 0) {
			/* syslog datagram: "<PRI>STAMP PROG/SVC[PID]: TEXT" */
			char dgram[LOG_LINE_MAX + 8];
			const char *after_host = text + strlen(stamp) + 1 +
						 strlen(log_host) + 1;
			int m = snprintf(dgram, sizeof(dgram), "<%d>%s %.*s",
					 log_facility + level_pri[lvl], stamp,
					 (int)(body - (size_t)(after_host - line)),
					 after_host);
			if (m > 0)
				(void)send(log_sock, dgram,
					   (size_t)m < sizeof(dgram) ? (size_t)m : sizeof(dgram) - 1,
					   MSG_DONTWAIT);
		}
		if (log_stderr || (log_fd < 0 && log_sock < 0)) {
			const char *after_host = text + strlen(stamp) + 1 +
						 strlen(log_host) + 1;
			if (write(STDERR_FILENO, after_host,
				  body + 1 - (size_t)(after_host - line)) < 0) {
				/* stderr gone: ignore */
			}
		}
	}
	pthread_mutex_unlock(&log_lock);
	errno = saved;
}

void
log_write(const char *name, const char *service, enum log_level lvl,
	  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(name, service, lvl, fmt, ap);
	va_end(ap);
}

void
log_fatal(const char *service, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(NULL, service, LOG_LVL_FATAL, fmt, ap);
	va_end(ap);
	exit(1);
}
