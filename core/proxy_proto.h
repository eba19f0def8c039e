/*
 * proxy_proto.h - HAProxy's PROXY protocol header (versions 1 and 2), as a
 * load balancer sends it before the SMTP greeting when
 * smtpd_upstream_proxy_protocol = haproxy: who the real client is.
 * Pure parsing of bytes already read; the session (smtpd_session.c) does
 * the reading. Must not: read past the header (what follows belongs to the
 * SMTP or TLS stream), or accept a header it does not fully understand.
 */
#ifndef FACTEUR_PROXY_PROTO_H
#define FACTEUR_PROXY_PROTO_H
#include <stddef.h>
#include <sys/socket.h>

/* The longest header accepted: a v1 line is at most 107 bytes; a v2
 * header is 16 bytes + addresses + TLVs, which we skip, up to this. */
#define PROXY_PROTO_MAX 4096

struct proxy_info {
	int                     local;	/* v1 UNKNOWN, v2 LOCAL/UNSPEC: keep the
					   connection's own addresses */
	int                     version;	/* 1 or 2 */
	struct sockaddr_storage src;	/* the real client (when !local) */
	struct sockaddr_storage dst;	/* the address it connected to */
	socklen_t               srclen, dstlen;
};

/*
 * Parses the header at the start of buf[0..len). Returns its length in
 * bytes (> 0) when complete and valid, 0 when buf is a valid but
 * incomplete beginning (read more, everything so far belongs to the
 * header), -1 with err (a short reason, "bad v1 source address" ...)
 * when it is not a PROXY header or is malformed.
 */
int proxy_proto_parse(const unsigned char *buf, size_t len,
		      struct proxy_info *info, char *err, size_t errlen);

#endif
