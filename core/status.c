/*
 * status.c - counters and the two renderings of the daemon's state (see
 * status.h): "name: value" text for `facteur status`, and Prometheus'
 * text exposition format 0.0.4 for the metrics endpoint.
 * Rates: one slot per second over the last 60 seconds, per counter.
 * Must not: block (status_queue_count runs on a worker), or hold its lock
 * while formatting.
 */
#include <dirent.h>
#include <netdb.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "backends/table_cache.h"
#include "core/lib/xmalloc.h"
#include "core/status.h"

#define RATE_SLOTS 60
#define STATUS_RECENT 3600	/* a table failure older than this is history */

static pthread_mutex_t st_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long st_total[STATUS_NCOUNTERS];
static unsigned long long st_slot[STATUS_NCOUNTERS][RATE_SLOTS];
static time_t st_slot_time[RATE_SLOTS];

static const char *const counter_names[STATUS_NCOUNTERS] = {
	"received", "delivered", "deferred", "bounced",
};

const char *const status_queue_states[STATUS_QUEUE_STATES] = {
	"incoming", "active", "deferred", "hold", "corrupt",
};

void
status_count(enum status_counter c)
{
	time_t now = time(NULL);
	size_t i = (size_t)(now % RATE_SLOTS);

	if ((unsigned)c >= STATUS_NCOUNTERS)
		return;
	pthread_mutex_lock(&st_lock);
	if (st_slot_time[i] != now) {
		for (size_t k = 0; k < STATUS_NCOUNTERS; k++)
			st_slot[k][i] = 0;
		st_slot_time[i] = now;
	}
	st_slot[c][i]++;
	st_total[c]++;
	pthread_mutex_unlock(&st_lock);
}

void
status_count_delivery(const char *status)
{
	if (status == NULL)
		return;
	if (strcmp(status, "sent") == 0)
		status_count(STATUS_DELIVERED);
	else if (strcmp(status, "deferred") == 0)
		status_count(STATUS_DEFERRED);
	else if (strcmp(status, "bounced") == 0)
		status_count(STATUS_BOUNCED);
}

void
status_counters(unsigned long long total[STATUS_NCOUNTERS],
		unsigned long long last_minute[STATUS_NCOUNTERS])
{
	time_t now = time(NULL);

	pthread_mutex_lock(&st_lock);
	for (size_t k = 0; k < STATUS_NCOUNTERS; k++) {
		total[k] = st_total[k];
		last_minute[k] = 0;
		for (size_t i = 0; i < RATE_SLOTS; i++)
			if (st_slot_time[i] > now - RATE_SLOTS &&
			    st_slot_time[i] <= now)
				last_minute[k] += st_slot[k][i];
	}
	pthread_mutex_unlock(&st_lock);
}

void
status_queue_count(const char *qdir, long counts[STATUS_QUEUE_STATES])
{
	char path[4096];

	for (size_t i = 0; i < STATUS_QUEUE_STATES; i++) {
		struct dirent *de;
		DIR *d;

		snprintf(path, sizeof(path), "%s/%s", qdir, status_queue_states[i]);
		counts[i] = -1;
		if ((d = opendir(path)) == NULL)
			continue;
		counts[i] = 0;
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				counts[i]++;
		closedir(d);
	}
}

char *
status_sockname(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port,
			sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return NULL;
	return xasprintf(ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
			 port);
}

static void
fmt_time(time_t t, char *out, size_t n)
{
	struct tm tm;

	if (t == 0) {
		snprintf(out, n, "never");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
status_format_text(const struct status_daemon *d, struct buf *out)
{
	unsigned long long total[STATUS_NCOUNTERS], minute[STATUS_NCOUNTERS];
	struct table_failure tf[32];
	size_t ntf = table_cache_failures(tf, 32);
	time_t now = time(NULL);
	char t1[64], t2[64];

	status_counters(total, minute);
	fmt_time(d->started, t1, sizeof(t1));
	fmt_time(d->last_reload, t2, sizeof(t2));
	buf_printf(out, "state: %s\n", d->stopping ? "stopping" : "running");
	buf_printf(out, "pid: %ld\n", d->pid);
	buf_printf(out, "config_directory: %s\n", d->config_dir);
	buf_printf(out, "started: %s\n", t1);
	buf_printf(out, "uptime_seconds: %lld\n", (long long)(now - d->started));
	buf_printf(out, "reloads: %lu (failed: %lu, last: %s)\n", d->reloads,
		   d->reload_failures, t2);
	for (size_t i = 0; i < d->nlisteners; i++) {
		const struct status_listener *l = &d->listeners[i];

		buf_printf(out, "listener: %s addresses=", l->service);
		for (size_t k = 0; k < l->naddrs; k++)
			buf_printf(out, "%s%s", k ? "," : "", l->addrs[k]);
		buf_printf(out, " sessions=%u max=%u", l->sessions,
			   l->max_sessions);
		if (l->command != NULL && strcmp(l->command, "smtpd") != 0)
			buf_printf(out, " command=%s", l->command);
		buf_puts(out, "\n");
	}
	buf_printf(out, "sessions: %lu\n", d->sessions);
	if (d->retired_listeners)
		buf_printf(out, "listeners_finishing_after_reload: %u\n",
			   d->retired_listeners);
	if (d->generations > 1)
		buf_printf(out, "configurations_in_use: %u (the queue manager or "
			   "local submission switches when idle)\n",
			   d->generations);
	buf_printf(out, "connections_total: %llu\n", d->connections);
	if (d->proxy_errors)
		buf_printf(out, "proxy_protocol_errors: %llu\n", d->proxy_errors);
	buf_puts(out, "queue:");
	for (size_t i = 0; i < STATUS_QUEUE_STATES; i++)
		buf_printf(out, " %s=%ld", status_queue_states[i], d->queue[i]);
	buf_printf(out, "\nqueue_manager_in_flight: %u\n", d->qmgr_in_flight);
	buf_puts(out, "last_minute:");
	for (size_t k = 0; k < STATUS_NCOUNTERS; k++)
		buf_printf(out, " %s=%llu", counter_names[k], minute[k]);
	buf_puts(out, "\ntotal:");
	for (size_t k = 0; k < STATUS_NCOUNTERS; k++)
		buf_printf(out, " %s=%llu", counter_names[k], total[k]);
	buf_puts(out, "\n");
	{
		size_t recent = 0;

		for (size_t i = 0; i < ntf; i++)
			if (now - tf[i].last <= STATUS_RECENT)
				recent++;
		if (recent == 0)
			buf_puts(out, "backends: ok\n");
	}
	for (size_t i = 0; i < ntf; i++) {
		if (now - tf[i].last > STATUS_RECENT)
			continue;	/* the metrics keep the whole count */
		fmt_time(tf[i].last, t1, sizeof(t1));
		buf_printf(out, "backend_failure: %s count=%llu last=%s "
			   "(%lds ago): %s\n", tf[i].table, tf[i].count, t1,
			   (long)(now - tf[i].last), tf[i].reason);
	}
}

/* A label value: backslash, double quote and newline escaped. */
static void
label(struct buf *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			buf_printf(out, "\\%c", *v);
		else if (*v == '\n')
			buf_puts(out, "\\n");
		else
			buf_putc(out, *v);
	}
}

static void
head(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The counters the metrics show as totals, in their order there. */
static const struct {
	const char *name, *help;
	enum status_counter counter;
} totals[] = {
	{ "facteur_messages_received_total",
	  "Messages queued (SMTP and sendmail).", STATUS_RECEIVED },
	{ "facteur_recipients_delivered_total",
	  "Recipient deliveries with status=sent.", STATUS_DELIVERED },
	{ "facteur_recipients_deferred_total",
	  "Recipient delivery attempts with status=deferred.",
	  STATUS_DEFERRED },
	{ "facteur_recipients_bounced_total",
	  "Recipients with status=bounced.", STATUS_BOUNCED },
};

void
status_format_metrics(const struct status_daemon *d, struct buf *out)
{
	unsigned long long total[STATUS_NCOUNTERS], minute[STATUS_NCOUNTERS];
	struct table_failure tf[32];
	size_t ntf = table_cache_failures(tf, 32);
	time_t now = time(NULL);

	status_counters(total, minute);
	head(out, "facteur_up", "gauge", "1 while facteurd runs (0 while it stops).");
	buf_printf(out, "facteur_up %d\n", d->stopping ? 0 : 1);
	head(out, "facteur_start_time_seconds", "gauge",
	     "When facteurd started, seconds since the Epoch.");
	buf_printf(out, "facteur_start_time_seconds %lld\n", (long long)d->started);
	head(out, "facteur_uptime_seconds", "gauge", "Seconds since facteurd started.");
	buf_printf(out, "facteur_uptime_seconds %lld\n",
		   (long long)(now - d->started));
	head(out, "facteur_reloads_total", "counter",
	     "Configuration reloads applied.");
	buf_printf(out, "facteur_reloads_total %lu\n", d->reloads);
	head(out, "facteur_reload_failures_total", "counter",
	     "Configuration reloads refused (the old configuration was kept).");
	buf_printf(out, "facteur_reload_failures_total %lu\n", d->reload_failures);
	head(out, "facteur_listener_sessions", "gauge",
	     "Open sessions per listener (SMTP or ManageSieve).");
	for (size_t i = 0; i < d->nlisteners; i++) {
		buf_puts(out, "facteur_listener_sessions{listener=\"");
		label(out, d->listeners[i].service);
		buf_puts(out, "\",command=\"");
		label(out, d->listeners[i].command ? d->listeners[i].command
						   : "smtpd");
		buf_printf(out, "\"} %u\n", d->listeners[i].sessions);
	}
	head(out, "facteur_sessions", "gauge",
	     "Open SMTP sessions, all listeners (also those finishing after a reload).");
	buf_printf(out, "facteur_sessions %lu\n", d->sessions);
	head(out, "facteur_connections_total", "counter",
	     "SMTP connections accepted.");
	buf_printf(out, "facteur_connections_total %llu\n", d->connections);
	head(out, "facteur_proxy_protocol_errors_total", "counter",
	     "Connections closed for a missing or malformed PROXY header.");
	buf_printf(out, "facteur_proxy_protocol_errors_total %llu\n",
		   d->proxy_errors);
	head(out, "facteur_queue_messages", "gauge",
	     "Messages in the queue, by state (-1: directory unreadable).");
	for (size_t i = 0; i < STATUS_QUEUE_STATES; i++)
		buf_printf(out, "facteur_queue_messages{state=\"%s\"} %ld\n",
			   status_queue_states[i], d->queue[i]);
	head(out, "facteur_qmgr_in_flight", "gauge",
	     "Messages the queue manager holds or delivers now.");
	buf_printf(out, "facteur_qmgr_in_flight %u\n", d->qmgr_in_flight);
	for (size_t i = 0; i < sizeof(totals) / sizeof(totals[0]); i++) {
		head(out, totals[i].name, "counter", totals[i].help);
		buf_printf(out, "%s %llu\n", totals[i].name,
			   total[totals[i].counter]);
	}
	head(out, "facteur_last_minute", "gauge",
	     "Events of the last 60 seconds, by kind.");
	for (size_t k = 0; k < STATUS_NCOUNTERS; k++)
		buf_printf(out, "facteur_last_minute{event=\"%s\"} %llu\n",
			   counter_names[k], minute[k]);
	head(out, "facteur_table_failures_total", "counter",
	     "Lookups that failed (temporary or configuration error), by table.");
	for (size_t i = 0; i < ntf; i++) {
		buf_puts(out, "facteur_table_failures_total{table=\"");
		label(out, tf[i].table);
		buf_printf(out, "\"} %llu\n", tf[i].count);
	}
	head(out, "facteur_table_last_failure_time_seconds", "gauge",
	     "When a table last failed, seconds since the Epoch.");
	for (size_t i = 0; i < ntf; i++) {
		buf_puts(out, "facteur_table_last_failure_time_seconds{table=\"");
		label(out, tf[i].table);
		buf_printf(out, "\"} %lld\n", (long long)tf[i].last);
	}
}
