/*
 * fuzz_milter.c - libFuzzer target for what a milter sends back: reply
 * packets split off a byte stream (milter_get), the OPTNEG reply, string
 * fields with and without an index, REPLYCODE texts, and the message
 * editing those replies drive (milter_edit.c) on a message also taken
 * from the input. Checks, beyond "no crash": a packet never claims bytes
 * past the input, a REPLYCODE accepted is a 4xx/5xx reply without bare
 * control characters, and an edited message stays within its bound.
 * Must not: keep state between inputs (every allocation is freed).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/lib/buf.h"
#include "core/milter_edit.h"
#include "core/milter_proto.h"

#define BOUND 4096

static void
apply(struct milter_msg *m, int cmd, const unsigned char *d, size_t len)
{
	const char *v[2];
	uint32_t idx;
	struct milter_optneg o;
	struct buf r;

	switch (cmd) {
	case MILTER_R_OPTNEG:
		(void)milter_parse_optneg(d, len, &o);
		break;
	case MILTER_R_ADDHEADER:
		if (milter_parse_strings(d, len, NULL, v, 2) == 0)
			(void)milter_msg_add(m, v[0], v[1], len & 1);
		break;
	case MILTER_R_INSHEADER:
		if (milter_parse_strings(d, len, &idx, v, 2) == 0)
			(void)milter_msg_insert(m, idx, v[0], v[1], len & 1);
		break;
	case MILTER_R_CHGHEADER:
		if (milter_parse_strings(d, len, &idx, v, 2) == 0)
			(void)milter_msg_change(m, idx, v[0], v[1], len & 1);
		break;
	case MILTER_R_REPLBODY:
		(void)milter_msg_body_chunk(m, (const char *)d, len);
		break;
	case MILTER_R_ADDRCPT_PAR:
	case MILTER_R_CHGFROM:
		(void)milter_parse_strings_opt(d, len, v, 2);
		break;
	case MILTER_R_REPLYCODE:
		buf_init(&r, 0);
		if (milter_parse_strings(d, len, NULL, v, 1) == 0 &&
		    milter_reply_text(v[0], &r) == 0) {
			if (r.len < 3 || (r.data[0] != '4' && r.data[0] != '5'))
				abort();
			for (size_t i = 0; i < r.len; i++)
				if ((unsigned char)r.data[i] < 0x20 &&
				    r.data[i] != '\t' && r.data[i] != '\r' &&
				    r.data[i] != '\n')
					abort();
		}
		buf_free(&r);
		break;
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* first byte: length of the message part (max 255) */
	size_t mlen = size > 0 ? data[0] : 0, off;
	struct milter_msg m;
	struct buf out;
	char *msg;

	if (size < 1 || mlen > size - 1)
		return 0;
	msg = malloc(mlen + 1);
	memcpy(msg, data + 1, mlen);
	msg[mlen] = '\0';
	milter_msg_load(&m, msg, mlen, BOUND);
	off = 1 + mlen;
	while (off < size) {
		const unsigned char *d;
		size_t dlen, used;
		int cmd, r = milter_get(data + off, size - off, BOUND, &cmd, &d,
					&dlen, &used);

		if (r <= 0)
			break;
		if (used > size - off || d + dlen > data + size)
			abort();
		apply(&m, cmd, d, dlen);
		off += used;
	}
	buf_init(&out, 0);
	if (milter_msg_store(&m, &out) == 0 && out.len > BOUND + 1024)
		abort();
	buf_free(&out);
	milter_msg_free(&m);
	free(msg);
	return 0;
}
