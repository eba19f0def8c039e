/*
 * fuzz_bounce.c - libFuzzer target for delivery status notifications.
 * The input is split at NUL bytes into the sender, ENVID, recipient,
 * original recipient, ORCPT, diagnostic and remote MTA, the rest being the
 * original message. Checks, beyond "no crash": the top-level header block
 * is printable ASCII, and the boundary starts exactly four lines (three
 * parts and the close), so nothing enclosed can end a part early.
 * Must not: keep state between inputs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/bounce.h"

#define NFIELDS 7

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *f[NFIELDS], *p, *end, *b, *q;
	struct bounce_rcpt r;
	struct bounce_req req;
	struct buf out;
	size_t i, n, count;
	char delim[600];

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	p = copy;
	end = copy + size;
	for (i = 0; i < NFIELDS; i++) {
		f[i] = p;
		p += strlen(p);
		if (p < end)
			p++;
	}
	memset(&r, 0, sizeof(r));
	r.addr = f[2];
	r.orig = f[3];
	r.orcpt = f[4][0] ? f[4] : NULL;
	r.status = size % 2 ? "5.1.1" : "";
	r.diag_type = size % 3 ? "smtp" : "x-unix";
	r.diag = f[5];
	r.remote_mta = f[6];
	memset(&req, 0, sizeof(req));
	req.kind = (enum bounce_kind)(size % 3);
	req.myhostname = "mx.example.test";
	req.queue_id = "0123456789ABCDEF0";
	req.new_id = "0123456789ABCDEF1";
	req.sender = f[0];
	req.envid = f[1];
	req.ret = size % 5 == 0 ? "HDRS" : size % 5 == 1 ? "FULL" : NULL;
	req.arrival = 1700000000;
	req.now = 1700000100;
	req.delay_warning_time = 3600;
	req.maximal_queue_lifetime = 86400;
	req.rcpt = &r;
	req.nrcpt = 1;
	req.content = p;
	req.len = (size_t)(end - p);
	req.size_limit = size % 7 ? 0 : 100;
	buf_init(&out, 0);
	if (bounce_format(&req, &out) != 0)
		abort();
	/* the top-level header block: printable ASCII, tab, newline */
	q = strstr(out.data, "\n\n");
	if (q == NULL)
		abort();
	for (b = out.data; b < q; b++)
		if (*b != '\n' && *b != '\t' && (*b < 0x20 || *b >= 0x7f))
			abort();
	b = strstr(out.data, "\n\tboundary=\"");
	if (b == NULL || b > q)
		abort();
	b += 12;
	n = strcspn(b, "\"");
	if (n == 0 || n > 500)
		abort();
	delim[0] = '\n';
	delim[1] = delim[2] = '-';
	memcpy(delim + 3, b, n);
	n += 3;
	count = 0;
	for (q = out.data; (size_t)(out.data + out.len - q) >= n; q++)
		if (memcmp(q, delim, n) == 0)
			count++;
	if (count != 4)
		abort();
	buf_free(&out);
	free(copy);
	return 0;
}
