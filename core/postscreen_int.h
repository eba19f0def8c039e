/*
 * postscreen_int.h - state shared by postscreen.c (accept, access list,
 * pre-greet and DNSBL tests, cache) and postscreen_smtp.c (the dummy SMTP
 * engine of the after-220 tests and of "enforce" actions).
 * Internal to postscreen.
 */
#ifndef FACTEUR_POSTSCREEN_INT_H
#define FACTEUR_POSTSCREEN_INT_H
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "core/lib/strlist.h"
#include "core/postscreen.h"
#include "core/postscreen_dnsbl.h"

struct bufferevent;
struct event;
struct dns;
struct kvstore;
struct netlist;
struct table;
struct smtpd_listener;

#define PS_SVC "postscreen"

enum ps_action { PS_IGNORE = 0, PS_ENFORCE, PS_DROP };

/* Per-test pass expiry times kept in the cache (0 = not passed). */
enum ps_test { PS_T_PREGREET, PS_T_DNSBL, PS_T_PIPE, PS_T_NSMTP, PS_T_BARENL,
	       PS_T_N };

struct postscreen {
	struct smtpd_listener *l;
	const char     *syslog_name;	/* the listener's */
	/* access list: permit_mynetworks and type:table items, in order */
	struct strlist  access;
	struct table  **access_tables;	/* parallel to access.v, NULL for
					   permit_mynetworks */
	enum ps_action  deny_action, greet_action, dnsbl_action;
	enum ps_action  pipe_action, nsmtp_action, barenl_action;
	bool            pipe_enable, nsmtp_enable, barenl_enable;
	bool            helo_required;
	long long       greet_wait, greet_ttl, dnsbl_min_ttl, dnsbl_max_ttl;
	long long       dnsbl_timeout;	/* a DNSBL answer later is ignored */
	long long       pipe_ttl, nsmtp_ttl, barenl_ttl, retention;
	long long       cleanup_interval, command_time_limit;
	long long       command_count_limit;
	long long       pre_queue_limit;	/* clients being screened */
	long long       post_queue_limit;	/* SMTP sessions behind it */
	long long       client_count_limit;	/* per client address (0 = none) */
	struct ps_dnsbl dnsbl;
	struct table   *dnsbl_reply_map;	/* secret name -> shown name */
	long long       dnsbl_threshold, allow_threshold;
	char           *greet_banner;	/* "" = no 220- teaser */
	char           *banner;		/* full "220 ..." line text */
	char           *hostname;
	struct strlist  forbidden;	/* upper-case verbs */
	char           *cache_path;	/* NULL: no cache */
	char           *dns_servers;
	long long       map_size;
	/* postscreen_allowlist_interfaces: local addresses where a client
	   may become allowlisted (NULL: all, the static:all default) */
	struct netlist *allow_ifaces;
	/* opened at the first connection */
	struct kvstore *cache;
	bool            cache_failed, dns_failed;
	struct dns     *dns;
	struct event   *cleanup_timer;
	struct event   *sync_timer;	/* flushes the cache on a worker */
	bool            dirty;		/* written since the last flush */
	struct ps_conn *conns;		/* being screened (doubly linked) */
	unsigned        nconns;
};

struct ps_query {
	struct ps_conn *c;
	size_t          idx;		/* domain index */
	bool            pending;	/* asked, not answered yet */
	bool            expired;	/* postscreen_dnsbl_timeout passed:
					   its answer will not count */
};

struct ps_conn {
	struct postscreen *ps;
	struct ps_conn  *prev, *next;
	bool             listed;	/* in ps->conns */
	int              fd;		/* -1 once handed off or closed */
	struct sockaddr_storage sa;
	int              salen;
	char             addr[INET6_ADDRSTRLEN], port[8];
	struct timeval   start;
	struct event    *rd, *timer;
	struct ps_query *queries;	/* one per DNSBL domain */
	unsigned         dns_pending;	/* asked, not answered (expired too) */
	unsigned         dns_live;	/* pending and not expired */
	struct event    *dns_timer;	/* postscreen_dnsbl_timeout */
	bool             dns_started;
	int              dnsbl_score;
	int              dnsbl_best;	/* highest positive weight so far */
	const char      *dnsbl_name;	/* its domain (owned by ps) */
	time_t           pass[PS_T_N];	/* cached expiry times */
	bool             todo[PS_T_N];	/* tests to run now */
	bool             failed[PS_T_N];
	/* "enforce": reject at RCPT with this reply (owned) */
	char            *enforce_reply;
	/* dummy SMTP engine */
	struct bufferevent *bev;
	char            *helo, *sender;
	unsigned         ncmds;
	bool             tls_pending;	/* 220 to STARTTLS queued */
	bool             in_tls;
	bool             done;		/* closed or handed off */
	bool             veto;		/* connected to a local address not in
					   postscreen_allowlist_interfaces:
					   never handed off, nothing cached */
};

/* postscreen.c */
void ps_log(struct ps_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
const char *ps_elapsed(const struct ps_conn *c, char *buf, size_t size);
/* Stores the test results; logs PASS NEW when every test has passed. */
void ps_cache_update(struct ps_conn *c);
bool ps_all_passed(const struct ps_conn *c, time_t now);
/* Marks the connection finished (socket gone) and frees it when no DNS
 * query still refers to it. */
void ps_conn_done(struct ps_conn *c);
void ps_set_enforce(struct ps_conn *c, const char *reply);

/* postscreen_smtp.c: runs the dummy engine on c->fd (owns it from now). */
void ps_smtp_start(struct ps_conn *c);
/* Frees the engine's state (bufferevent, strings). */
void ps_smtp_free(struct ps_conn *c);

#endif
