/*
 * status_http.h - the optional Prometheus endpoint (facteur_metrics_listen
 * = [host:]port; a bare port listens on 127.0.0.1 only): a minimal
 * HTTP/1.0 server on the daemon's loop answering GET /metrics with the
 * text exposition format 0.0.4 (core/status.c renders it).
 * Must not: block the loop, read more than one bounded request, or serve
 * anything but the metrics.
 */
#ifndef FACTEUR_STATUS_HTTP_H
#define FACTEUR_STATUS_HTTP_H
#include <stddef.h>

#include "core/lib/errbuf.h"

struct event_base;
struct status_http;
struct status_http_conn;

/* handler(arg, conn) for each GET /metrics; answer with status_http_reply. */
typedef void status_http_handler(void *arg, struct status_http_conn *c);

/* Binds spec (before the privilege drop). NULL + err. */
struct status_http *status_http_new(const char *spec, struct errbuf *err);
/* facteur check: spec parsed as status_http_new does, nothing bound. */
int status_http_check(const char *spec, struct errbuf *err);
/* Starts serving on base. */
void status_http_start(struct status_http *h, struct event_base *base,
		       status_http_handler *handler, void *arg);
void status_http_reply(struct status_http_conn *c, const char *body, size_t len);
const char *status_http_spec(const struct status_http *h);
void status_http_free(struct status_http **hp);

#endif
