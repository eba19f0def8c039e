/*
 * status.h - what `facteur status` and the Prometheus endpoint report:
 * message counters with one-minute rates (fed from smtpd, pickup and the
 * delivery log, on any thread), lookup tables that failed recently
 * (fed by backends/table.c through table_cache_note_failure), queue sizes
 * by state (counted on a worker), and the daemon's listeners and sessions
 * (given by facteurd.c as a struct status_daemon).
 * Must not: block the loop (directory counts run on the worker pool).
 */
#ifndef FACTEUR_STATUS_H
#define FACTEUR_STATUS_H
#include <stddef.h>
#include <time.h>

#include "core/lib/buf.h"

enum status_counter {
	STATUS_RECEIVED = 0,	/* queued from SMTP or sendmail */
	STATUS_DELIVERED,	/* recipients: status=sent */
	STATUS_DEFERRED,	/* recipients: status=deferred */
	STATUS_BOUNCED,		/* recipients: status=bounced */
	STATUS_NCOUNTERS
};

/* Thread-safe. */
void status_count(enum status_counter c);
/* Delivery log status ("sent", "deferred", "bounced", ...). */
void status_count_delivery(const char *status);
/* Totals, and the counts of the last 60 seconds. */
void status_counters(unsigned long long total[STATUS_NCOUNTERS],
		     unsigned long long last_minute[STATUS_NCOUNTERS]);

#define STATUS_QUEUE_STATES 5
extern const char *const status_queue_states[STATUS_QUEUE_STATES];
/* Blocking (worker): files in incoming/ active/ deferred/ hold/ corrupt/;
 * -1 for a directory that cannot be read. */
void status_queue_count(const char *qdir, long counts[STATUS_QUEUE_STATES]);

struct status_listener {
	const char *service;
	const char *command;		/* smtpd, postscreen, managesieved */
	char      **addrs;		/* "host:port" */
	size_t      naddrs;
	unsigned    sessions, max_sessions;
};

struct status_daemon {
	long        pid;
	time_t      started, last_reload;
	const char *config_dir;
	unsigned long reloads, reload_failures;
	struct status_listener *listeners;
	size_t      nlisteners;
	unsigned long sessions;		/* all, retired listeners too */
	unsigned long long connections, proxy_errors;
	unsigned    retired_listeners;	/* finishing sessions after reloads */
	unsigned    generations;	/* configurations still in use (1 once
					   the qmgr and pickup switched) */
	unsigned    qmgr_in_flight;
	long        queue[STATUS_QUEUE_STATES];
	int         stopping;
};

/* "host:port" ("[v6]:port") a listening socket is bound to, or NULL. */
char *status_sockname(int fd);

/* Text for `facteur status` ("name: value" lines); tables that failed in
 * the last hour are listed, else "backends: ok". */
void status_format_text(const struct status_daemon *d, struct buf *out);
/* Prometheus text exposition format 0.0.4, facteur_* metrics. */
void status_format_metrics(const struct status_daemon *d, struct buf *out);

#endif
