/*
 * milter_sync.c - non_smtpd_milters on a worker thread (see
 * milter_sync.h): a blocking conversation per milter, each read and
 * write under poll() against the milter's timeouts; the same wire format
 * (milter_proto.c) and message editing (milter_edit.c) as the SMTP
 * server's asynchronous client (milter.c).
 * Must not: run on the event loop; trust a reply (a malformed one fails
 * the milter, which then gets its default action).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/lib/xmalloc.h"
#include "core/log.h"
#include "core/milter.h"
#include "core/milter_edit.h"
#include "core/milter_proto.h"
#include "core/milter_sync.h"
#include "core/params.h"

#define SVC "cleanup"
#define MODS_MAX 1000

static const char tempfail_reply[] =
	"451 4.7.1 Service unavailable - try again later";
static const char reject_reply[] = "550 5.7.1 Command rejected";

struct conv {
	const struct settings *st;
	const struct milter_def *d;
	const char *name;		/* syslog name */
	struct milter_sync_msg *m;
	int       fd;
	uint32_t  proto;
	char     *macros[MILTER_M_COUNT];
	struct milter_msg msg;
	bool      loaded, changed;
	unsigned  nmods;
	char      why[300];		/* the failure, for the warning */
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for fd to be ready (POLLIN/POLLOUT) until deadline. */
static int
wait_fd(int fd, short ev, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = ev };

	for (;;) {
		long long left = deadline - now_ms();
		int r;

		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		r = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static int
conv_connect(struct conv *v)
{
	const struct milter_def *d = v->d;
	struct sockaddr_storage ss;
	socklen_t sl;
	long long deadline = now_ms() + d->conn_timeout * 1000;
	int fd, e;
	socklen_t el = sizeof(e);

	memset(&ss, 0, sizeof(ss));
	if (d->path != NULL) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;

		un->sun_family = AF_UNIX;
		snprintf(un->sun_path, sizeof(un->sun_path), "%s", d->path);
		sl = sizeof(*un);
	} else {
		struct addrinfo hints, *res = NULL;

		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICSERV;
		if (getaddrinfo(d->host, d->port, &hints, &res) != 0 ||
		    res == NULL) {
			snprintf(v->why, sizeof(v->why), "connect to Milter "
				 "service %s: host not found", d->name);
			return -1;
		}
		memcpy(&ss, res->ai_addr, res->ai_addrlen);
		sl = res->ai_addrlen;
		freeaddrinfo(res);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto fail;
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		if (errno != EINPROGRESS)
			goto fail;
		if (wait_fd(fd, POLLOUT, deadline) < 0)
			goto fail;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e != 0) {
			errno = e ? e : errno;
			goto fail;
		}
	}
	v->fd = fd;
	return 0;
fail:
	snprintf(v->why, sizeof(v->why), "connect to Milter service %s: %s",
		 d->name, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static int
put(struct conv *v, const struct buf *b)
{
	long long deadline = now_ms() + v->d->cmd_timeout * 1000;
	size_t off = 0;

	while (off < b->len) {
		ssize_t n = send(v->fd, b->data + off, b->len - off,
				 MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			goto fail;
		if (wait_fd(v->fd, POLLOUT, deadline) < 0)
			goto fail;
	}
	return 0;
fail:
	snprintf(v->why, sizeof(v->why), "milter %s: can't write packet: %s",
		 v->d->name, strerror(errno));
	return -1;
}

static int
read_n(struct conv *v, unsigned char *p, size_t n, long long deadline)
{
	size_t off = 0;

	while (off < n) {
		ssize_t r = recv(v->fd, p + off, n - off, 0);

		if (r > 0) {
			off += (size_t)r;
			continue;
		}
		if (r == 0) {
			errno = EPIPE;
			return -1;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -1;
		if (wait_fd(v->fd, POLLIN, deadline) < 0)
			return -1;
	}
	return 0;
}

/* One reply packet for command cmd: its code, data in pkt. -1 fails. */
static int
get(struct conv *v, int cmd, long long timeout, int *code, struct buf *pkt)
{
	unsigned char h[4];
	uint32_t n;
	long long deadline = now_ms() + timeout * 1000;

	buf_reset(pkt);
	for (;;) {
		if (read_n(v, h, 4, deadline) < 0)
			goto fail;
		n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
		    (uint32_t)h[2] << 8 | h[3];
		if (n == 0 || n > MILTER_REPLY_MAX) {
			snprintf(v->why, sizeof(v->why), "milter %s: bad %s "
				 "reply packet length %lu", v->d->name,
				 milter_cmd_name(cmd), (unsigned long)n);
			return -1;
		}
		{
			unsigned char *p = xmalloc(n);

			if (read_n(v, p, n, deadline) < 0) {
				free(p);
				goto fail;
			}
			*code = p[0];
			buf_reset(pkt);
			(void)buf_append(pkt, p + 1, n - 1);
			free(p);
		}
		if (*code != MILTER_R_PROGRESS)
			return 0;
		deadline = now_ms() + timeout * 1000;
	}
fail:
	snprintf(v->why, sizeof(v->why), "milter %s: can't read %s reply "
		 "packet header: %s", v->d->name, milter_cmd_name(cmd),
		 errno == ETIMEDOUT ? "Connection timed out" :
		 errno == EPIPE ? "Unexpected end-of-input" : strerror(errno));
	return -1;
}

static const char *
macro_value(struct conv *v, const char *name)
{
	const struct settings *st = v->st;

	if (strcmp(name, "j") == 0)
		return st->myhostname;
	if (strcmp(name, "_") == 0)
		return "localhost [127.0.0.1]";
	if (strcmp(name, "v") == 0)
		return st->milter_macro_v;
	if (strcmp(name, "{daemon_name}") == 0)
		return st->milter_macro_daemon_name;
	if (strcmp(name, "{client_addr}") == 0)
		return "127.0.0.1";
	if (strcmp(name, "{client_name}") == 0)
		return "localhost";
	if (strcmp(name, "i") == 0)
		return v->m->queue_id;
	if (strcmp(name, "{mail_addr}") == 0)
		return v->m->sender;
	return NULL;
}

static void
add_macros(struct conv *v, struct buf *out, int cmd, enum milter_stage s,
	   const char *rcpt)
{
	struct strlist names, keep, vals;
	struct buf tmp;

	buf_init(&tmp, 0);
	strlist_init(&names);
	strlist_init(&keep);
	strlist_init(&vals);
	(void)strlist_split(&names,
	    milter_stage_macros(v->st, v->macros[s], s));
	for (size_t i = 0; i < names.n; i++) {
		const char *val = strcmp(names.v[i], "{rcpt_addr}") == 0
				  ? rcpt : macro_value(v, names.v[i]);

		if (val == NULL)
			val = milter_macro_default(v->st->milter_macro_defaults,
						   names.v[i], &tmp);
		if (val == NULL)
			continue;
		strlist_add(&keep, names.v[i]);
		strlist_add(&vals, val);
	}
	if (keep.n > 0)
		milter_put_macros(out, cmd, (const char *const *)keep.v,
				  (const char *const *)vals.v, keep.n);
	strlist_free(&names);
	strlist_free(&keep);
	strlist_free(&vals);
	buf_free(&tmp);
}

/* Sends one command (with macros); reads its reply unless the milter
 * said it gives none. 1 = reply code in *code, 0 = none, -1 failed. */
static int
step(struct conv *v, int cmd, enum milter_stage s, uint32_t no, uint32_t nr,
     const char *const *strs, size_t n, const char *rcpt, int *code,
     struct buf *pkt)
{
	struct buf out;
	int r;

	if (v->proto & no)
		return 0;
	buf_init(&out, 0);
	if ((int)s >= 0)
		add_macros(v, &out, cmd, s, rcpt);
	if (n > 0)
		milter_put_strings(&out, cmd, strs, n);
	else
		milter_put(&out, cmd, NULL, 0);
	r = put(v, &out);
	buf_free(&out);
	if (r < 0)
		return -1;
	if (v->proto & nr)
		return 0;
	return get(v, cmd, v->d->cmd_timeout, code, pkt) < 0 ? -1 : 1;
}

/* One end-of-message change. -1 fails the milter. */
static int
change(struct conv *v, int code, const struct buf *pkt)
{
	const unsigned char *d = (const unsigned char *)pkt->data;
	size_t len = pkt->len;
	const char *s[2];
	uint32_t idx;
	bool lead = (v->proto & MILTER_P_HDR_LEADSPC) != 0;
	struct buf a;
	int rc = 0;

	if (++v->nmods > MODS_MAX)
		return -1;
	buf_init(&a, 0);
	switch (code) {
	case MILTER_R_ADDHEADER:
		rc = milter_parse_strings(d, len, NULL, s, 2) < 0 ? -1 :
		     milter_msg_add(&v->msg, s[0], s[1], lead);
		v->changed = true;
		break;
	case MILTER_R_INSHEADER:
	case MILTER_R_CHGHEADER:
		if (milter_parse_strings(d, len, &idx, s, 2) < 0)
			rc = -1;
		else if (code == MILTER_R_INSHEADER)
			rc = milter_msg_insert(&v->msg, idx, s[0], s[1], lead);
		else
			rc = milter_msg_change(&v->msg, idx, s[0], s[1], lead);
		v->changed = true;
		break;
	case MILTER_R_REPLBODY:
		rc = milter_msg_body_chunk(&v->msg, (const char *)d, len);
		v->changed = true;
		break;
	case MILTER_R_ADDRCPT:
	case MILTER_R_ADDRCPT_PAR:
		if (milter_parse_strings_opt(d, len, s, 2) < 1 ||
		    !milter_strip_addr(s[0], &a) || strchr(buf_cstr(&a), '@') == NULL ||
		    v->m->rcpts.n >= 10000)
			rc = -1;
		else
			strlist_add(&v->m->rcpts, buf_cstr(&a));
		break;
	case MILTER_R_DELRCPT:
		if (milter_parse_strings(d, len, NULL, s, 1) < 0 ||
		    !milter_strip_addr(s[0], &a)) {
			rc = -1;
			break;
		}
		for (size_t i = 0; i < v->m->rcpts.n; i++) {
			if (strcasecmp(v->m->rcpts.v[i], buf_cstr(&a)) != 0)
				continue;
			free(v->m->rcpts.v[i]);
			memmove(v->m->rcpts.v + i, v->m->rcpts.v + i + 1,
				(v->m->rcpts.n - i) * sizeof(char *));
			v->m->rcpts.n--;
			i--;
		}
		break;
	case MILTER_R_CHGFROM:
		if (milter_parse_strings_opt(d, len, s, 2) < 1 ||
		    !milter_strip_addr(s[0], &a) || a.len > 1000)
			rc = -1;
		else {
			free(v->m->sender);
			v->m->sender = xstrdup(buf_cstr(&a));
		}
		break;
	case MILTER_R_QUARANTINE:
		if (milter_parse_strings(d, len, NULL, s, 1) < 0)
			rc = -1;
		else {
			v->m->hold = true;
			snprintf(v->m->hold_why, sizeof(v->m->hold_why), "%s",
				 s[0]);
		}
		break;
	default:
		rc = -1;
		break;
	}
	buf_free(&a);
	return rc;
}

enum verdict { V_CONTINUE, V_ACCEPT, V_REJECT, V_TEMPFAIL, V_DISCARD,
	       V_FAIL };

/* A stage's reply as a verdict; the reply text into m->reply. */
static enum verdict
judge(struct conv *v, int code, const struct buf *pkt)
{
	const char *s[1];
	struct buf r;

	switch (code) {
	case MILTER_R_CONTINUE:
		return V_CONTINUE;
	case MILTER_R_ACCEPT:
		return V_ACCEPT;
	case MILTER_R_DISCARD:
		return V_DISCARD;
	case MILTER_R_REJECT:
		snprintf(v->m->reply, sizeof(v->m->reply), "%s", reject_reply);
		return V_REJECT;
	case MILTER_R_TEMPFAIL:
		snprintf(v->m->reply, sizeof(v->m->reply), "%s", tempfail_reply);
		return V_TEMPFAIL;
	case MILTER_R_REPLYCODE:
		buf_init(&r, 0);
		if (milter_parse_strings((const unsigned char *)pkt->data,
					 pkt->len, NULL, s, 1) < 0 ||
		    milter_reply_text(s[0], &r) < 0) {
			buf_free(&r);
			snprintf(v->m->reply, sizeof(v->m->reply), "%s",
				 tempfail_reply);
			return V_TEMPFAIL;
		}
		snprintf(v->m->reply, sizeof(v->m->reply), "%s", buf_cstr(&r));
		buf_free(&r);
		return v->m->reply[0] == '5' ? V_REJECT : V_TEMPFAIL;
	default:
		snprintf(v->why, sizeof(v->why), "milter %s: unexpected reply "
			 "'%c'", v->d->name, code);
		return V_FAIL;
	}
}

/* The whole conversation with one milter. */
static enum verdict
converse(struct conv *v)
{
	struct buf pkt, out, val;
	struct milter_optneg o;
	int code, r;
	enum verdict vd = V_CONTINUE;
	const char *s[2];
	char *a;

	buf_init(&pkt, 0);
	buf_init(&out, 0);
	buf_init(&val, 0);
	milter_put_optneg(&out, v->d->version, MILTER_F_ALL, MILTER_P_OFFER);
	if (put(v, &out) < 0 ||
	    get(v, MILTER_C_OPTNEG, v->d->cmd_timeout, &code, &pkt) < 0)
		goto fail;
	if (code != MILTER_R_OPTNEG ||
	    milter_parse_optneg((const unsigned char *)pkt.data, pkt.len,
				&o) < 0 || o.version < 2) {
		snprintf(v->why, sizeof(v->why), "milter %s: bad SMFIC_OPTNEG "
			 "reply packet", v->d->name);
		goto fail;
	}
	v->proto = o.protocol & MILTER_P_OFFER;	/* the rest is not done */
	for (int i = 0; i < MILTER_M_COUNT; i++)
		if (o.macros[i] != NULL)
			v->macros[i] = xstrndup(o.macros[i], o.macros_len[i]);

	/* connect: localhost [127.0.0.1], as Postfix for sendmail mail */
	if (!(v->proto & MILTER_P_NOCONNECT)) {
		buf_reset(&out);
		add_macros(v, &out, MILTER_C_CONNECT, MILTER_M_CONNECT, NULL);
		milter_put_connect(&out, "localhost", "127.0.0.1", 0);
		if (put(v, &out) < 0)
			goto fail;
		if (!(v->proto & MILTER_P_NR_CONN)) {
			if (get(v, MILTER_C_CONNECT, v->d->cmd_timeout, &code,
				&pkt) < 0)
				goto fail;
			if ((vd = judge(v, code, &pkt)) != V_CONTINUE)
				goto done;
		}
	}
#define STEP(cmd, st, no, nr, strs, n, rcpt) do {			\
		r = step(v, cmd, st, no, nr, strs, n, rcpt, &code, &pkt); \
		if (r < 0)						\
			goto fail;					\
		if (r > 0 && (vd = judge(v, code, &pkt)) != V_CONTINUE) \
			goto done;					\
	} while (0)
	s[0] = v->st->myhostname;
	STEP(MILTER_C_HELO, MILTER_M_HELO, MILTER_P_NOHELO, MILTER_P_NR_HELO,
	     s, 1, NULL);
	a = xasprintf("<%s>", v->m->sender);
	s[0] = a;
	r = step(v, MILTER_C_MAIL, MILTER_M_ENVFROM, MILTER_P_NOMAIL,
		 MILTER_P_NR_MAIL, s, 1, NULL, &code, &pkt);
	free(a);
	if (r < 0)
		goto fail;
	if (r > 0 && (vd = judge(v, code, &pkt)) != V_CONTINUE)
		goto done;
	for (size_t i = 0; i < v->m->rcpts.n; i++) {
		a = xasprintf("<%s>", v->m->rcpts.v[i]);
		s[0] = a;
		r = step(v, MILTER_C_RCPT, MILTER_M_ENVRCPT, MILTER_P_NORCPT,
			 MILTER_P_NR_RCPT, s, 1, v->m->rcpts.v[i], &code, &pkt);
		free(a);
		if (r < 0)
			goto fail;
		if (r > 0 && (vd = judge(v, code, &pkt)) != V_CONTINUE)
			goto done;
	}
	STEP(MILTER_C_DATA, MILTER_M_DATA, MILTER_P_NODATA, MILTER_P_NR_DATA,
	     NULL, 0, NULL);
	/* the message */
	milter_msg_load(&v->msg, v->m->content->data ? v->m->content->data : "",
			v->m->content->len, v->st->message_size_limit > 0
			? (size_t)v->st->message_size_limit + 65536 : 0);
	v->loaded = true;
	for (size_t i = 0; !(v->proto & MILTER_P_NOHDRS) &&
	     i < v->msg.hdrs.n; i++) {
		const char *h = v->msg.hdrs.v[i];
		char *name = xstrndup(h, milter_hdr_name(h));

		milter_hdr_value(h, v->proto & MILTER_P_HDR_LEADSPC, &val);
		s[0] = name;
		s[1] = buf_cstr(&val);
		r = step(v, MILTER_C_HEADER, (enum milter_stage)-1, 0,
			 MILTER_P_NR_HDR, s, 2, NULL, &code, &pkt);
		free(name);
		if (r < 0)
			goto fail;
		if (r > 0 && (vd = judge(v, code, &pkt)) != V_CONTINUE)
			goto done;
	}
	STEP(MILTER_C_EOH, MILTER_M_EOH, MILTER_P_NOEOH, MILTER_P_NR_EOH,
	     NULL, 0, NULL);
	if (!(v->proto & MILTER_P_NOBODY)) {
		size_t blen, off = 0;
		const char *b = milter_msg_body(&v->msg, &blen);

		while (off < blen) {
			buf_reset(&val);
			while (off < blen && val.len + 2 <= MILTER_CHUNK_MAX) {
				if (b[off] == '\n')
					(void)buf_putc(&val, '\r');
				(void)buf_putc(&val, b[off++]);
			}
			buf_reset(&out);
			milter_put(&out, MILTER_C_BODY, val.data, val.len);
			if (put(v, &out) < 0)
				goto fail;
			if (v->proto & MILTER_P_NR_BODY)
				continue;
			if (get(v, MILTER_C_BODY, v->d->content_timeout, &code,
				&pkt) < 0)
				goto fail;
			if (code == MILTER_R_SKIP)
				break;
			if ((vd = judge(v, code, &pkt)) != V_CONTINUE)
				goto done;
		}
	}
	buf_reset(&out);
	add_macros(v, &out, MILTER_C_BODYEOB, MILTER_M_EOM, NULL);
	milter_put(&out, MILTER_C_BODYEOB, NULL, 0);
	if (put(v, &out) < 0)
		goto fail;
	for (;;) {
		if (get(v, MILTER_C_BODYEOB, v->d->content_timeout, &code,
			&pkt) < 0)
			goto fail;
		switch (code) {
		case MILTER_R_ADDHEADER: case MILTER_R_INSHEADER:
		case MILTER_R_CHGHEADER: case MILTER_R_REPLBODY:
		case MILTER_R_ADDRCPT: case MILTER_R_ADDRCPT_PAR:
		case MILTER_R_DELRCPT: case MILTER_R_CHGFROM:
		case MILTER_R_QUARANTINE:
			if (change(v, code, &pkt) < 0) {
				snprintf(v->why, sizeof(v->why), "milter %s: "
					 "bad or too many changes (reply "
					 "'%c')", v->d->name, code);
				goto fail;
			}
			continue;
		default:
			break;
		}
		break;
	}
	vd = judge(v, code, &pkt);
	if ((vd == V_CONTINUE || vd == V_ACCEPT) && v->changed) {
		struct buf nc;

		buf_init(&nc, 0);
		if (milter_msg_store(&v->msg, &nc) == 0) {
			buf_free(v->m->content);
			*v->m->content = nc;
		} else
			buf_free(&nc);
	}
	goto done;
fail:
	vd = V_FAIL;
done:
#undef STEP
	buf_reset(&out);
	milter_put(&out, MILTER_C_QUIT, NULL, 0);
	(void)send(v->fd, out.data, out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	buf_free(&pkt);
	buf_free(&out);
	buf_free(&val);
	return vd;
}

enum milter_sync_result
milter_sync_run(const struct settings *st, const char *list, const char *name,
		struct milter_sync_msg *m)
{
	struct milter_def defs[MILTER_MAX];
	struct errbuf err;
	enum milter_sync_result res = MILTER_SYNC_OK;
	int n;

	m->reply[0] = '\0';
	if (list == NULL || *list == '\0')
		return MILTER_SYNC_OK;
	errbuf_clear(&err);
	n = milter_defs_parse(list, st, defs, &err);
	if (n < 0) {
		/* never mail without the milters the operator asked for */
		log_write(name, SVC, LOG_LVL_WARNING, "non_smtpd_milters: %s: "
			  "mail is deferred", errbuf_str(&err));
		snprintf(m->reply, sizeof(m->reply), "451 4.3.5 Server "
			 "configuration error");
		return MILTER_SYNC_TEMPFAIL;
	}
	for (int i = 0; i < n && res == MILTER_SYNC_OK && !m->discard; i++) {
		struct conv v;
		enum verdict vd;

		memset(&v, 0, sizeof(v));
		v.st = st;
		v.d = &defs[i];
		v.name = name;
		v.m = m;
		v.fd = -1;
		vd = conv_connect(&v) < 0 ? V_FAIL : converse(&v);
		if (v.fd >= 0)
			close(v.fd);
		for (int k = 0; k < MILTER_M_COUNT; k++)
			free(v.macros[k]);
		if (v.loaded)
			milter_msg_free(&v.msg);
		if (vd == V_FAIL) {
			log_write(name, SVC, LOG_LVL_WARNING, "%s", v.why);
			switch (defs[i].action) {
			case MA_ACCEPT:
				break;
			case MA_QUARANTINE:
				m->hold = true;
				snprintf(m->hold_why, sizeof(m->hold_why),
					 "milter triggers HOLD action");
				break;
			case MA_REJECT:
				snprintf(m->reply, sizeof(m->reply), "%s",
					 reject_reply);
				res = MILTER_SYNC_REJECT;
				break;
			default:
				snprintf(m->reply, sizeof(m->reply), "%s",
					 tempfail_reply);
				res = MILTER_SYNC_TEMPFAIL;
				break;
			}
		} else if (vd == V_REJECT) {
			res = MILTER_SYNC_REJECT;
		} else if (vd == V_TEMPFAIL) {
			res = MILTER_SYNC_TEMPFAIL;
		} else if (vd == V_DISCARD) {
			m->discard = true;
		}
	}
	for (int i = 0; i < n; i++)
		milter_def_free(&defs[i]);
	return res;
}
