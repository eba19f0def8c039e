/*
 * log.h - one line per event in Postfix's maillog format.
 * Lines look like "Nov 23 11:22:49 HOST NAME/SERVICE[PID]: TEXT", where NAME
 * is syslog_name (default "facteur", or a per-listener override) and SERVICE
 * is the Postfix program the event belongs to (smtpd, cleanup, qmgr,
 * virtual ...), so pflogsumm and fail2ban read facteur's logs unchanged.
 * Thread-safe: worker threads log too. Never blocks on syslog.
 */
#ifndef FACTEUR_LOG_H
#define FACTEUR_LOG_H
#include <stdarg.h>

#include "core/lib/errbuf.h"

enum log_level {
	LOG_LVL_INFO,
	LOG_LVL_NOTICE,		/* "notice: " prefix */
	LOG_LVL_WARNING,	/* "warning: " */
	LOG_LVL_ERROR,		/* "error: " */
	LOG_LVL_FATAL,		/* "fatal: " */
};

/*
 * (Re)configures the sink. maillog_file NULL or "" means syslog (/dev/log,
 * facility mail); to_stderr copies every line to stderr (facteurd -f, CLI).
 * Before log_open is called, lines go to stderr only. Returns 0 or -1
 * (errno set) when maillog_file cannot be opened (stderr is kept then).
 */
int  log_open(const char *syslog_name, const char *maillog_file, int to_stderr);
void log_close(void);
/*
 * syslog_facility: "mail" (the default), "user", "daemon", "auth",
 * "local0" ... "local7" ... (syslog(3) names, case-insensitive). 0, or -1 +
 * err for an unknown name. Only the syslog sink carries the facility.
 */
int  log_facility_parse(const char *name, int *code_r, struct errbuf *err);
void log_set_facility(int code);
/* The "<PRI>" value of a line at lvl with the current facility. */
int  log_priority(enum log_level lvl);
/* The host name written in maillog_file lines (default: gethostname). */
void log_set_hostname(const char *host);
/* Only stderr, no prefix besides "LEVEL: " (for the CLI tools). */
void log_set_cli(int cli);

/* name NULL = the default syslog_name. */
void log_write(const char *name, const char *service, enum log_level lvl,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void log_vwrite(const char *name, const char *service, enum log_level lvl,
		const char *fmt, va_list ap);

#define log_info(svc, ...)    log_write(NULL, (svc), LOG_LVL_INFO, __VA_ARGS__)
#define log_notice(svc, ...)  log_write(NULL, (svc), LOG_LVL_NOTICE, __VA_ARGS__)
#define log_warning(svc, ...) log_write(NULL, (svc), LOG_LVL_WARNING, __VA_ARGS__)
#define log_error(svc, ...)   log_write(NULL, (svc), LOG_LVL_ERROR, __VA_ARGS__)
/* Logs "fatal: ..." and exits 1. */
void log_fatal(const char *service, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

#endif
