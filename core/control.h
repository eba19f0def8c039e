/*
 * control.h - the daemon's local control socket,
 * $queue_directory/private/control (mode 0600, owned by mail_owner, in a
 * 0700 directory: only root and mail_owner reach it). One request per
 * connection: a command line ("status", "metrics", "reload", "stop"),
 * answered with text, then the daemon closes. `facteur status` talks to
 * it; reload and stop may also come as signals.
 * Must not: block the loop, or read more than one bounded line.
 */
#ifndef FACTEUR_CONTROL_H
#define FACTEUR_CONTROL_H
#include <stddef.h>

#include "core/lib/errbuf.h"

#define CONTROL_SOCKET "private/control"
#define CONTROL_LINE_MAX 128

struct event_base;
struct control;
struct control_conn;

/*
 * handler(arg, conn, command) runs on the loop for each request; it
 * answers now or later with control_reply (exactly once).
 */
typedef void control_handler(void *arg, struct control_conn *c,
			     const char *command);

/* Creates the socket (as mail_owner). NULL + err. */
struct control *control_new(struct event_base *base, const char *qdir,
			    control_handler *handler, void *arg,
			    struct errbuf *err);
/* Sends text and closes the connection (frees c once written). */
void control_reply(struct control_conn *c, const char *text, size_t len);
/* Removes the socket, closes every connection. */
void control_free(struct control **cp);

/*
 * Client side (facteur status/reload/stop): sends command, reads the
 * whole answer into *out (caller frees). 0, or -1 + err (daemon not
 * running, permission denied, timeout).
 */
int control_request(const char *qdir, const char *command, int timeout_s,
		    char **out, struct errbuf *err);

#endif
